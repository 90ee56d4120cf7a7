// Goal: a step of a member's system clock (what NTP, an operator or a restored VM does to CLOCK_REALTIME) does not
// change what ephemeral expiry decides (docs/operations.md "Clocks"): a forward step of the responsible member's
// clock does not remove an instance whose client keeps beating, and a backward step does not keep a silent one
// past its delete timeout. Persistent writes through the stepped member still commit. Before src/clock.ts the AP
// layer measured silence on Date.now(): a +120 s step removed every beating instance the member was responsible
// for, a -240 s step kept silent ones four minutes longer.
//
// Method: three members on 127.0.1.75-77 (this file's block), each started under libfaketime
// (LD_PRELOAD, Debian `libfaketime`) with its own control file and FAKETIME_DONT_FAKE_MONOTONIC=1, so writing "+120"
// into a file steps only that member's wall clock, within FAKETIME_CACHE_DURATION (1 s). The step is confirmed from
// the member itself (cairn_clock_wall_offset_seconds), so the test cannot pass with a clock that never moved.
// Timings are shortened with preserved.* metadata (2 s interval, 5 s unhealthy, 8 s removal). One client beats
// through a member that forwards to the stepped one, the other beats the stepped member itself. Only the second
// exposed the old clock: for the first, the member that forwarded its beats reported when it last heard the client
// (a duration, on that member's own clock) before the stepped member could act.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { holdsFor, sleep, startCluster, waitFor, type Member } from '../support/cluster.ts';
import { beatOnce, describeList, listEphemeral, metricValue, registerEphemeral } from '../support/ephemeral.ts';
import { responsibleMember, serviceIdOf } from '../../src/ap/responsibility.ts';
import { limits } from '../../src/limits.ts';

const hosts = ['127.0.1.75', '127.0.1.76', '127.0.1.77'];
const faketimeLibrary = '/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1';
const missingFaketimeAdvice = `libfaketime is not installed (${faketimeLibrary}): apt-get install faketime libfaketime`;
/** beatMs: the clients beat at the interval they are told, as the Nacos clients do (with 0.5 s beats a scan rarely fell between a beat and the next). */
const beatMs = 2000;
const deleteMs = 8000;
const metadata = { 'preserved.heart.beat.interval': String(beatMs), 'preserved.heart.beat.timeout': '5000', 'preserved.ip.delete.timeout': String(deleteMs) };
/** slackMs: an expiry scan period, a sync delay, a poll interval and scheduling noise on a loaded machine. */
const slackMs = limits.distroExpiryTickMs + limits.distroSyncDelayMs + 100 + 1200;

/** requireFaketime: true when libfaketime is there; otherwise fails under CAIRN_REQUIRE_ALL=1, else skips. */
function requireFaketime(t: TestContext): boolean {
  if (existsSync(faketimeLibrary)) return true;
  if (process.env['CAIRN_REQUIRE_ALL'] === '1') throw new Error(`CAIRN_REQUIRE_ALL=1: ${missingFaketimeAdvice}`);
  t.skip(missingFaketimeAdvice);
  return false;
}

async function views(members: readonly Member[], service: string): Promise<string[]> {
  return Promise.all(members.map(async (member) => describeList(await listEphemeral(member, service))));
}

/** untilOffset waits until `member` reports its wall clock `sign` of its steady clock by more than 100 s. */
async function untilOffset(member: Member, sign: 1 | -1): Promise<number> {
  return waitFor(async () => {
    const offset = await metricValue(member, 'cairn_clock_wall_offset_seconds');
    if (offset === null) throw new Error('cairn_clock_wall_offset_seconds is missing');
    return offset * sign > 100 ? offset : (() => { throw new Error(`offset ${offset} s`); })();
  }, { timeoutMs: 10_000, intervalMs: 200, what: `${member.addr}'s wall clock stepped ${sign > 0 ? 'forward' : 'back'} (cairn_clock_wall_offset_seconds)` });
}

test('a step of the responsible member\'s wall clock neither removes a beating instance nor keeps a silent one', { timeout: 180_000 }, async (t) => {
  if (!requireFaketime(t)) return;
  const clockDir = mkdtempSync(path.join(tmpdir(), 'cairn-clock-step-'));
  t.after(() => rmSync(clockDir, { recursive: true, force: true }));
  const controlFile = (host: string): string => path.join(clockDir, `${host}.faketime`);
  for (const host of hosts) writeFileSync(controlFile(host), '+0\n');
  const cluster = await startCluster(t, {
    file: 'clock-step',
    hosts,
    size: 3,
    memberEnv: (host) => ({
      LD_PRELOAD: faketimeLibrary,
      FAKETIME_TIMESTAMP_FILE: controlFile(host),
      FAKETIME_CACHE_DURATION: '1',
      FAKETIME_DONT_FAKE_MONOTONIC: '1',
    }),
  });
  const service = 'clock-svc';
  const responsibleAddr = responsibleMember(serviceIdOf('public', 'DEFAULT_GROUP', service), [...cluster.memberAddrs].sort());
  const responsible = cluster.members.find((member) => member.addr === responsibleAddr)!;
  const via = cluster.members.find((member) => member !== responsible)!;
  t.diagnostic(`responsible member ${responsible.addr}; beats through ${via.addr}`);

  // One client beats a member that forwards its beats, the other beats the responsible member itself (no other
  // member hears it, so nothing but the responsible member's own measure of its silence decides its expiry).
  const clients = [{ ip: '10.0.0.1', through: via }, { ip: '10.0.0.2', through: responsible }];
  const everywhere = '10.0.0.1:8080,10.0.0.2:8080';
  for (const client of clients) await registerEphemeral(client.through, service, client.ip, 8080, metadata);
  let beating = true;
  let lastBeat = 0;
  const beater = (async () => {
    while (beating) {
      for (const client of clients) {
        const answer = await beatOnce(client.through, service, client.ip, 8080);
        assert.equal(answer.code, 10200, `beat of ${client.ip} through ${client.through.addr} answered ${JSON.stringify(answer)}`);
      }
      lastBeat = Date.now();
      await sleep(beatMs);
    }
  })();
  // A failed beat (the instance gone) ends the loop: its rejection is reported by the step that awaits it.
  beater.catch(() => undefined);
  t.after(() => {
    beating = false;
  });
  await waitFor(async () => (await views(cluster.members, service)).every((view) => view === everywhere), { timeoutMs: 10_000, what: 'the instances listed healthy everywhere' });

  await cluster.step(t, 'the responsible member\'s clock steps 120 s forward: beating instances stay, healthy, everywhere', async (step) => {
    writeFileSync(controlFile(responsible.host), '+120\n');
    const offset = await untilOffset(responsible, 1);
    step.diagnostic(`${responsible.addr} reports its wall clock ${offset.toFixed(1)} s ahead of its steady clock`);
    // Past the delete timeout (8 s) on the stepped clock many times over, and past it in real time too.
    await holdsFor(async () => {
      const seen = await views(cluster.members, service);
      if (!seen.every((view) => view === everywhere)) throw new Error(`listed as ${seen.join(' | ')}`);
      return true;
    }, { durationMs: deleteMs + 2000, intervalMs: 200, what: 'both beating instances listed healthy on every member' });
  });

  await cluster.step(t, 'the clock steps 240 s back: silent instances are still removed after their 8 s, everywhere', async (step) => {
    writeFileSync(controlFile(responsible.host), '-120\n');
    const offset = await untilOffset(responsible, -1);
    step.diagnostic(`${responsible.addr} reports its wall clock ${(-offset).toFixed(1)} s behind its steady clock`);
    beating = false;
    await beater;
    const removedAt = await waitFor(async () => {
      const seen = await views(cluster.members, service);
      return seen.every((view) => view === '') ? Date.now() : (() => { throw new Error(seen.join(' | ')); })();
    }, { timeoutMs: deleteMs + slackMs + 2000, intervalMs: 100, what: 'the silent instances removed on every member' }) - lastBeat;
    step.diagnostic(`removed on every member ${removedAt} ms after the last beat (delete timeout ${deleteMs} ms)`);
    assert.ok(removedAt >= deleteMs - 100 && removedAt <= deleteMs + slackMs, `removed after ${removedAt} ms`);
  });

  await cluster.step(t, 'a persistent write through the stepped member commits', async () => {
    const answer = await responsible.request('POST', `/nacos/v1/ns/instance?serviceName=clock-cp&ip=10.0.0.9&port=9000&ephemeral=false`);
    assert.equal(answer.status, 200, answer.text);
    await waitFor(async () => {
      const listed = await listEphemeral(via, 'clock-cp');
      return listed.get('10.0.0.9:9000') === true;
    }, { timeoutMs: 10_000, what: 'the persistent instance listed by another member' });
  });
});
