// Goal: the replica-consistency check (`cairn check`, GET /cairn/v1/state/digest; docs/operations.md "Checking that
// the replicas agree") says the replicas agree when they do, whichever way each reached its state (applying the log,
// installing a snapshot from the leader, restarting from its own keyspace), and finds a replica whose state diverged
// without any checksum noticing: a record rewritten whole, under a valid frame, while its member was stopped.
//
// Method: three real members on 127.0.1.84-86 (this file's block), snapshots every 40 entries
// (CAIRN_SNAPSHOT_ENTRIES) keeping a catch-up trail of 80 entries (CAIRN_SNAPSHOT_CATCHUP_ENTRIES: a member away for
// 150 writes needs an image, since the leader compacts every 40-60 entries and its last compaction leaves it at least
// ~17 entries past the member; one a few dozen behind on a loaded machine does not, so no image heals the rewritten
// record before the periodic check sees it), the services' health checker NONE (no probe verdicts: the state moves only by the test's writes). Writers register persistent instances through every member; the third member is stopped
// while the others take 150 more acknowledged writes (the leader compacts its log past it, so it comes back through a snapshot),
// deregistrations and a service change follow, and it restarts. `cairn check` (the real CLI) must exit 0 with equal
// digests. Then the second member is stopped, one instance record in its LevelDB keyspace is rewritten through
// LevelStorage (the same record with a later weight field appended: valid protobuf, valid frame, so the member
// loads it and serves the new weight), the member restarts, and `cairn check` must exit 1 naming the digests.
// The periodic check runs throughout (checkpoints every 100 entries, CAIRN_CHECKPOINT_EVERY): the members' checkpoint
// digests agree until the rewrite, and after it, at the next checkpoint, every member reports the divergence on its own
// (GET /cairn/v1/state/checkpoints, the differ counter in /metrics, an error in its log), naming the second member.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { instanceStorageKey } from '../../src/cp/keyspace.ts';
import { rewriteInstanceWeight } from '../../jepsen-like/tamper.ts';
import { type HttpAnswer, runCairn, Ledger, startCluster, waitFor, Writer } from '../support/cluster.ts';

const hosts = ['127.0.1.84', '127.0.1.85', '127.0.1.86'];
const services = ['digest-a', 'digest-b'];
/** checkpointEvery is the members' checkpoint interval (CAIRN_CHECKPOINT_EVERY). */
const checkpointEvery = 100;
/**
 * catchUpEntries is the log the members keep before their applied index at a compaction (CAIRN_SNAPSHOT_CATCHUP_ENTRIES).
 * At the default for 40 (20 entries) a member just restarted, a few Readys behind on a loaded CI machine, was most
 * likely sent an image during the last step, which healed the rewritten record (session 28's CI failure).
 */
const catchUpEntries = 80;

/** CheckpointsBody is the part of GET /cairn/v1/state/checkpoints this test reads. */
interface CheckpointsBody {
  readonly every: number;
  readonly checkpoints: ReadonlyArray<{ readonly appliedIndex: number; readonly sha256: string }>;
  readonly comparisons: ReadonlyArray<{ readonly peer: string; readonly appliedIndex: number; readonly agree: boolean }>;
}

test('cairn check: the replicas agree after a snapshot install and restarts; a record rewritten under a valid frame is found', { timeout: 240_000 }, async (t) => {
  const cluster = await startCluster(t, { file: 'state-digest', hosts, size: 3, env: { CAIRN_SNAPSHOT_ENTRIES: '40', CAIRN_SNAPSHOT_CATCHUP_ENTRIES: String(catchUpEntries), CAIRN_CHECKPOINT_EVERY: String(checkpointEvery) } });
  const [first, second, third] = cluster.members;
  assert.ok(first !== undefined && second !== undefined && third !== undefined);
  const members = cluster.memberAddrs.join(',');
  const ledger = new Ledger();

  /** writeAll registers `count` instances through the running members and waits until every one is acknowledged. */
  const writeAll = async (count: number): Promise<void> => {
    // Refusals during an election (the member stopped may be the leader) count against writesMax, not as acks.
    const writer = new Writer(ledger, { services, concurrency: 4, targets: () => cluster.running, writesMax: 2 * count }).start();
    try {
      await waitFor(() => {
        if (writer.ackCount < count) throw new Error(`${writer.ackCount} acknowledged by this writer; the ledger: ${ledger.summary()}`);
        return true;
      }, { timeoutMs: 60_000, what: `${count} acknowledged registrations` });
    } finally {
      await writer.stop();
    }
    assert.ok(writer.ackCount >= count, ledger.summary());
  };

  await cluster.step(t, 'writes through every member, the third member away for 150 of them', async () => {
    await cluster.waitForLeader({ timeoutMs: 15_000 });
    // The instances are not real: with the checker NONE nobody probes them, so the state stands still between the
    // test's own writes (probe verdicts would be writes too, and could bring the second member back by a snapshot).
    for (const service of services) {
      assert.equal((await first.request('POST', `/nacos/v1/ns/service?serviceName=${service}`)).status, 200);
      const none = await first.request('PUT', `/nacos/v1/ns/cluster?serviceName=${service}&clusterName=DEFAULT&checkPort=0&useInstancePort4Check=true&healthChecker=${encodeURIComponent('{"type":"NONE"}')}`);
      assert.equal(none.status, 200, none.text);
    }
    await writeAll(60);
    await third.terminate();
    await writeAll(150);
    // Deregistrations and a service change: records deleted and rewritten, not only added.
    const registered = ledger.byKind('ok').slice(0, 10);
    for (const outcome of registered) {
      const [ip, port] = outcome.key.split(':');
      const answer: HttpAnswer = await first.request('DELETE', `/nacos/v1/ns/instance?serviceName=${outcome.service}&ip=${ip}&port=${port}&ephemeral=false`);
      assert.equal(answer.status, 200, answer.text);
    }
    const changed = await second.request('PUT', '/nacos/v1/ns/service?serviceName=digest-a&protectThreshold=0.5&metadata=team%3Dcore');
    assert.equal(changed.status, 200, changed.text);
    await third.start();
    // The leader compacted its log past what the third member had: it comes back through a snapshot.
    await waitFor(() => third.events.some((event) => event.msg === 'snapshot from the leader installed'), {
      timeoutMs: 30_000, what: `${third.addr} to install a snapshot from the leader (CAIRN_SNAPSHOT_ENTRIES=40, CAIRN_SNAPSHOT_CATCHUP_ENTRIES=${catchUpEntries})`,
    });
    // Every compaction kept the configured trail before its applied index (the default for 40 would be 20 entries).
    const compactions = cluster.members.flatMap((member) => member.events.filter((event) => event.msg === 'log compacted'));
    assert.ok(compactions.length >= 2, `${compactions.length} compactions logged`);
    for (const event of compactions) {
      const kept = Number(event.fields['applied']) - Number(event.fields['index']);
      assert.ok(kept >= catchUpEntries, `a compaction kept ${kept} entries before its applied index: ${JSON.stringify(event.fields)}`);
    }
  });

  await cluster.step(t, 'cairn check: the three replicas agree', async () => {
    const run = await runCairn(['check', '--members', members, '--wait', '60'], 90_000);
    assert.equal(run.code, 0, `cairn check: ${run.stdout}${run.stderr}`);
    assert.match(run.stdout, /^the 3 replicas agree at applied index \d+: \d+ records, sha256 [0-9a-f]{64}\n$/);
    const json = await runCairn(['check', '--members', members, '--json'], 60_000);
    assert.equal(json.code, 0, json.stderr);
    const answers = (JSON.parse(json.stdout) as { verdict: string; answers: Array<{ member: string; records: number; sha256: string }> });
    assert.equal(answers.verdict, 'agree');
    assert.deepEqual(answers.answers.map((answer) => answer.member), cluster.memberAddrs);
    // 200 instances and their remembered request ids, two services: the digest covers them all.
    assert.ok((answers.answers[0]?.records ?? 0) > 200, JSON.stringify(answers.answers[0]));
  });

  /** checkpointsOf reads a member's checkpoint report. */
  const checkpointsOf = async (member: typeof first): Promise<CheckpointsBody> => {
    const answer = await member.request('GET', '/cairn/v1/state/checkpoints');
    assert.equal(answer.status, 200, answer.text);
    return JSON.parse(answer.text) as CheckpointsBody;
  };
  /** verdictsAt waits until every member has compared its checkpoint at `index` or later with both peers. */
  const verdictsAt = async (index: number): Promise<Map<string, Record<string, boolean>>> => {
    const verdicts = new Map<string, Record<string, boolean>>();
    await waitFor(async () => {
      for (const member of cluster.members) {
        const body = await checkpointsOf(member);
        if (body.comparisons.length !== 2 || body.comparisons.some((comparison) => comparison.appliedIndex < index)) {
          throw new Error(`${member.addr} has compared ${JSON.stringify(body.comparisons)}, its checkpoints ${body.checkpoints.map((c) => c.appliedIndex).join()}`);
        }
        verdicts.set(member.addr, Object.fromEntries(body.comparisons.map((comparison) => [comparison.peer, comparison.agree])));
      }
      return true;
    }, { timeoutMs: 40_000, what: `every member's checkpoint comparisons at ${index} or later` });
    return verdicts;
  };
  /** appliedOf is a member's applied index as it reports it. */
  const appliedOf = async (member: typeof first): Promise<number> => {
    const status = JSON.parse((await member.request('GET', '/cairn/v1/cluster')).text) as { members: Array<{ addr: string; appliedIndex: number }> };
    return status.members.find((entry) => entry.addr === member.addr)?.appliedIndex ?? 0;
  };

  await cluster.step(t, 'the periodic check: the members compare their checkpoint digests by themselves, and agree', async () => {
    const body = await checkpointsOf(first);
    assert.equal(body.every, checkpointEvery);
    const before = await appliedOf(first);
    // Pass the next checkpoint with everyone up: the third member, back through a snapshot, may have jumped the earlier ones.
    await writeAll(checkpointEvery + 10);
    const verdicts = await verdictsAt(Math.floor(before / checkpointEvery) * checkpointEvery + checkpointEvery);
    for (const [addr, seen] of verdicts) assert.ok(Object.values(seen).every((agree) => agree), `${addr}: ${JSON.stringify(seen)}`);
  });

  const victim = ledger.byKind('ok').at(-1);
  assert.ok(victim !== undefined);
  const [victimIp = '', victimPort = ''] = victim.key.split(':');

  await cluster.step(t, 'one record of the second member rewritten whole while it is stopped', async () => {
    await second.terminate();
    const key = instanceStorageKey({ namespace: 'public', group: 'DEFAULT_GROUP', service: victim.service }, { cluster: 'DEFAULT', ip: victimIp, port: Number(victimPort) });
    assert.equal(await rewriteInstanceWeight(second.dataDir, 7.5, key), key);
    await second.start();
    // The member took the record as valid and serves it: a silent divergence, visible only by comparing replicas.
    await waitFor(async () => {
      const answer = await second.request('GET', `/nacos/v1/ns/instance?serviceName=${victim.service}&ip=${victimIp}&port=${victimPort}&ephemeral=false`);
      return answer.status === 200 && (JSON.parse(answer.text) as { weight: number }).weight === 7.5;
    }, { timeoutMs: 15_000, what: `${second.addr} serving the rewritten weight` });
    const elsewhere = await first.request('GET', `/nacos/v1/ns/instance?serviceName=${victim.service}&ip=${victimIp}&port=${victimPort}&ephemeral=false`);
    assert.equal((JSON.parse(elsewhere.text) as { weight: number }).weight, 1);
  });

  await cluster.step(t, 'cairn check: the replicas differ, every digest printed', async () => {
    const run = await runCairn(['check', '--members', members, '--wait', '60'], 90_000);
    assert.equal(run.code, 1, `cairn check: ${run.stdout}${run.stderr}`);
    assert.match(run.stderr, /the replicas DIFFER at applied index \d+/);
    const lines = run.stderr.split('\n').filter((line) => line.includes('sha256'));
    assert.equal(lines.length, 3, run.stderr);
    const digestOf = (addr: string): string => /sha256 ([0-9a-f]{64})/.exec(lines.find((line) => line.includes(addr)) ?? '')?.[1] ?? '';
    assert.equal(digestOf(first.addr), digestOf(third.addr));
    assert.notEqual(digestOf(second.addr), digestOf(first.addr));
  });

  await cluster.step(t, 'the periodic check finds the rewritten record at the next checkpoint, on every member', async () => {
    const before = await appliedOf(first);
    const since = Date.now();
    await writeAll(checkpointEvery + 10);
    const verdicts = await verdictsAt(Math.floor(before / checkpointEvery) * checkpointEvery + checkpointEvery);
    // A snapshot from the leader replaces the second member's keyspace, and with it the rewritten record.
    const installs = cluster.members.flatMap((member) => member.events.filter((event) => event.time >= since && event.msg === 'snapshot from the leader installed').map((event) => `${member.addr} at ${JSON.stringify(event.fields['index'])}`));
    assert.deepEqual(installs, [], 'no member installs a snapshot while it is only a few entries behind');
    assert.deepEqual(verdicts.get(first.addr), { [second.addr]: false, [third.addr]: true });
    assert.deepEqual(verdicts.get(second.addr), { [first.addr]: false, [third.addr]: false });
    assert.deepEqual(verdicts.get(third.addr), { [first.addr]: true, [second.addr]: false });
    const metrics = await first.request('GET', '/metrics');
    const differ = /cairn_replica_checkpoint_comparisons_total\{outcome="differ"\} (\d+)/.exec(metrics.text);
    assert.ok(differ !== null && Number(differ[1]) >= 1, `the differ counter of ${first.addr}: ${differ?.[0] ?? 'missing'}`);
    assert.ok(second.events.some((event) => event.msg.startsWith('REPLICAS DIVERGED')), `${second.addr} logged no divergence`);
  });
});
