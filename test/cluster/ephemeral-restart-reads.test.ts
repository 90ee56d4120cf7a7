// Goal: a restarted member never answers an empty or partial list of a service whose ephemeral instances live on
// (docs/ap.md "Start-up: reads wait for the snapshot"). The nacos audit of session 32 restarted a member of three
// (kill -9, then start) and polled its instance list: for ~14 ms it answered `[]` for a service with three live,
// beating instances, before its start-up Distro snapshot had loaded; with the load delayed it answered the one
// instance whose beats it had received. A Java client applies an empty list, and every client a partial one. Now the
// member answers only the full list, or a retryable refusal (503 CAIRN_MEMBER_BEHIND) until the load is done. And a
// standalone member, with nothing to load, serves at once.
//
// Method: three real members on 127.0.1.248-250 (this file's block is 127.0.1.248-251; the standalone member is
// 127.0.1.251). The service is one the restarted member is responsible for (src/ap/responsibility.ts over the
// sorted members), so the beats it receives during the load register instances there (Nacos's re-registration from
// the beat body), which is how the partial list arose. Three instances are registered; their clients beat (with
// body) the restarted member every second, a third of a second apart; the test polls the restarted member's v1 instance list as fast as it
// answers, from its process start until the full list has been seen for a second. Two restarts: a plain one, and one
// with the first peer the member asks for its snapshot paused (SIGSTOP), which holds the load back ~2 s (the call's
// connect bound) and so makes the window wide: without the refusal, that step saw empty and partial lists every time.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sleep, startCluster, waitFor, type Member } from '../support/cluster.ts';
import { describeList, listEphemeral, longLived, registerEphemeral } from '../support/ephemeral.ts';
import { responsibleMember, serviceIdOf } from '../../src/ap/responsibility.ts';

const hosts = ['127.0.1.248', '127.0.1.249', '127.0.1.250'];
const standaloneHosts = ['127.0.1.251'];
const ips = ['10.3.0.1', '10.3.0.2', '10.3.0.3'];
const full = ips.map((ip) => `${ip}:8080`).join(',');

function form(params: Record<string, string | number>): string {
  return new URLSearchParams(Object.entries(params).map(([k, v]): [string, string] => [k, String(v)])).toString();
}

/**
 * Beater sends each instance's beat, with the npm client's body, to `target` every second, the three clients a
 * third of a second apart (real clients are not in step); failures (the member not listening yet) are ignored.
 */
class Beater {
  private stopped = false;
  private readonly done: Promise<void>;
  constructor(target: Member, service: string) {
    this.done = Promise.all(ips.map(async (ip, index) => {
      await sleep(index * 333);
      const beat = JSON.stringify({ serviceName: service, ip, port: 8080, cluster: 'DEFAULT', weight: 1, metadata: longLived });
      while (!this.stopped) {
        await target.request('PUT', `/nacos/v1/ns/instance/beat?${form({ serviceName: service, beat })}`, { timeoutMs: 1000 }).catch(() => undefined);
        await sleep(1000);
      }
    })).then(() => undefined);
  }
  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }
}

/** servingLine is the restarted process's "serving ephemeral reads" log line, parsed (null if it logged none). */
function servingLine(member: Member): Record<string, unknown> | null {
  const tail = member.log.tail(400);
  let started = -1;
  tail.forEach((line, index) => {
    if (line.startsWith('--- started pid')) started = index;
  });
  const line = tail.slice(started + 1).find((text) => text.includes('serving ephemeral reads'));
  return line === undefined ? null : JSON.parse(line) as Record<string, unknown>;
}

/** PollReport counts what the polled member answered, by kind, and keeps the first answers that broke the rule. */
interface PollReport {
  full: number;
  refused: number;
  down: number;
  wrong: string[];
  firstFullMs: number | null;
}

/**
 * pollList asks `member` for `service`'s list as fast as it answers until the full list has been answered for
 * `afterFullMs` (or `timeoutMs` passed): only the full list or a 503 CAIRN_MEMBER_BEHIND is right.
 */
async function pollList(member: Member, service: string, afterFullMs: number, timeoutMs: number): Promise<PollReport> {
  const report: PollReport = { full: 0, refused: 0, down: 0, wrong: [], firstFullMs: null };
  const began = Date.now();
  while (Date.now() - began < timeoutMs && (report.firstFullMs === null || Date.now() - began < report.firstFullMs + afterFullMs)) {
    let answer;
    try {
      answer = await member.request('GET', `/nacos/v1/ns/instance/list?${form({ serviceName: service })}`, { timeoutMs: 1000 });
    } catch {
      report.down++; // not listening yet
      await sleep(1);
      continue;
    }
    const ms = Date.now() - began;
    if (answer.status === 503 && answer.text.includes('CAIRN_MEMBER_BEHIND')) {
      report.refused++;
      continue;
    }
    const listed = answer.status === 200
      ? (JSON.parse(answer.text) as { hosts: Array<{ ip: string; port: number }> }).hosts.map((h) => `${h.ip}:${h.port}`).sort().join(',')
      : `HTTP ${answer.status} ${answer.text.slice(0, 120)}`;
    if (listed === full) {
      report.full++;
      report.firstFullMs ??= ms;
    } else if (report.wrong.length < 20) {
      report.wrong.push(`${ms} ms: [${listed}]`);
    } else {
      report.wrong.length++;
    }
  }
  return report;
}

test('a restarted member answers only the full list or a refusal, never an empty or partial one', { timeout: 240_000 }, async (t) => {
  const cluster = await startCluster(t, { file: 'ephemeral-restart-reads', hosts, size: 3 });
  const [m1, m2, m3] = cluster.members as [Member, Member, Member];
  const sorted = [...cluster.memberAddrs].sort();
  let service = 'restart-reads-0';
  for (let i = 1; responsibleMember(serviceIdOf('public', 'DEFAULT_GROUP', service), sorted) !== m3.addr; i++) service = `restart-reads-${i}`;
  for (const ip of ips) await registerEphemeral(m1, service, ip, 8080);
  await waitFor(async () => {
    const views = await Promise.all(cluster.members.map(async (member) => describeList(await listEphemeral(member, service))));
    return views.every((view) => view === full) || (() => { throw new Error(views.join(' | ')); })();
  }, { timeoutMs: 10_000, intervalMs: 50, what: `${service} listed everywhere` });

  const restartPolling = async (what: string, during?: { before(): void; after(): void }): Promise<void> => {
    await m3.kill9();
    const beater = new Beater(m3, service);
    during?.before();
    const started = m3.restart();
    let report: PollReport;
    try {
      report = await pollList(m3, service, 1000, 30_000);
    } finally {
      during?.after();
      await beater.stop();
      await started;
    }
    t.diagnostic(`${what}: first full list ${String(report.firstFullMs)} ms after the start; ${report.full} full, ${report.refused} refused (CAIRN_MEMBER_BEHIND), ${report.down} not listening yet`);
    const serving = servingLine(m3);
    t.diagnostic(`${what}: ${serving === null ? 'no "serving ephemeral reads" line' : JSON.stringify(serving)}`);
    assert.deepEqual(report.wrong, [], `${what}: answers other than the full list or a refusal`);
    assert.ok(report.firstFullMs !== null, `${what}: the full list was answered`);
    assert.equal(serving?.['load'], 'loaded', `${what}: the member logs that it serves reads after loading the snapshot`);
  };

  await cluster.step(t, 'a plain restart', () => restartPolling('plain restart'));
  // m3 asks its peers in the --members order: m1 first. Paused, m1 holds the load for the connect bound (2 s).
  await cluster.step(t, 'a restart while the first peer asked is paused', () => restartPolling('first peer paused', {
    before: () => m1.pause(),
    after: () => m1.resume(),
  }));
  assert.equal(describeList(await listEphemeral(m2, service)), full, 'nothing was lost meanwhile');
});

test('a standalone member serves ephemeral reads at once', { timeout: 120_000 }, async (t) => {
  const cluster = await startCluster(t, { file: 'ephemeral-restart-reads-standalone', hosts: standaloneHosts, size: 1 });
  const [solo] = cluster.members as [Member];
  await registerEphemeral(solo, 'solo-svc', '10.3.1.1', 8080);
  assert.equal(describeList(await listEphemeral(solo, 'solo-svc')), '10.3.1.1:8080');
  await solo.kill9();
  const started = solo.restart();
  // From its first answer on, the restarted standalone member serves (its ephemeral instances died with it).
  let answers = 0;
  const began = Date.now();
  while (answers < 50 && Date.now() - began < 30_000) {
    const answer = await solo.request('GET', `/nacos/v1/ns/instance/list?${form({ serviceName: 'solo-svc' })}`, { timeoutMs: 1000 }).catch(() => null);
    if (answer === null) {
      await sleep(1);
      continue;
    }
    answers++;
    assert.equal(answer.status, 200, `answer ${answers}: ${answer.text}`);
  }
  await started;
  assert.equal(answers, 50);
  const serving = servingLine(solo);
  assert.equal(serving?.['load'], 'standalone', JSON.stringify(serving));
  assert.ok(Number(serving?.['waitedMs']) < 100, JSON.stringify(serving));
});
