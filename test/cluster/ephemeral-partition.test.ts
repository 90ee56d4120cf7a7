// Goal: the AP path stays available on both sides of a network partition and converges after it heals (DESIGN.md
// "The AP path": "Ephemeral data stays readable and writable on both sides of a partition and converges after it
// heals"; NACOS.md §6). Each side computes its own responsible members from its own peer heartbeats (not Raft), so
// the isolated member, which has no Raft leader, still takes ephemeral writes. After the heal all members list the
// same instances within two verify rounds (2 x distroVerifyIntervalMs = 10 s, plus the ~1-2 s it takes heartbeats to
// see the peer back), and instances deregistered on either side during the partition stay gone (tombstones, no
// resurrection) for longer than a further verify round.
//
// Method: three real members on 127.0.1.130-132 (this file's block is 127.0.1.130-134) and iptables DROP rules
// between the isolated member's address and the others (tagged `cairn-test-ephemeral-partition-<pid>`, removed even
// on failure; the test client talks to every member from 127.0.0.1, which the rules do not touch). Instances carry
// preserved.* metadata with 10-minute timeouts so nothing expires during the test; the isolated side's view of the
// live set is read from cairn_ap_live_members. Times are printed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { holdsFor, startCluster, waitFor, type Member } from '../support/cluster.ts';
import { Partitioner, requireIptables } from '../support/iptables.ts';
import { deregisterEphemeral, describeList, listEphemeral, metricValue, registerEphemeral } from '../support/ephemeral.ts';
import { limits } from '../../src/limits.ts';

const hosts = ['127.0.1.130', '127.0.1.131', '127.0.1.132', '127.0.1.133', '127.0.1.134'];
const services = ['part-a', 'part-b', 'part-c', 'part-d'];

async function listings(members: readonly Member[], service: string): Promise<string[]> {
  return Promise.all(members.map(async (member) => describeList(await listEphemeral(member, service))));
}

test('both sides of a partition take ephemeral writes; after the heal all agree and nothing resurrects', { timeout: 180_000 }, async (t) => {
  if (!requireIptables(t)) return;
  const partitioner = new Partitioner('ephemeral-partition');
  t.after(() => partitioner.close());
  const cluster = await startCluster(t, { file: 'ephemeral-partition', hosts, size: 3 });
  const [m1, m2, m3] = cluster.members as [Member, Member, Member];

  await cluster.step(t, 'before the partition, writes through any member reach every member', async () => {
    for (const [index, service] of services.entries()) {
      await registerEphemeral(cluster.members[index % 3]!, service, '10.0.0.1', 8080);
      await registerEphemeral(cluster.members[(index + 1) % 3]!, service, '10.0.0.2', 8080);
    }
    for (const service of services) {
      await waitFor(async () => {
        const views = await listings(cluster.members, service);
        return views.every((view) => view === '10.0.0.1:8080,10.0.0.2:8080') || (() => { throw new Error(views.join(' | ')); })();
      }, { timeoutMs: 10_000, what: `${service} on every member` });
    }
  });

  await cluster.step(t, 'isolated, each side serves writes and reads on its own', async () => {
    partitioner.isolate(m3.host, [m1.host, m2.host]);
    const started = Date.now();
    await waitFor(async () => (await metricValue(m3, 'cairn_ap_live_members')) === 1 && (await metricValue(m1, 'cairn_ap_live_members')) === 2,
      { timeoutMs: 20_000, intervalMs: 200, what: 'both sides to see the partition' });
    t.diagnostic(`both sides saw the partition after ${Date.now() - started} ms`);
    for (const service of services) {
      await registerEphemeral(m1, service, '10.0.1.1', 8080);
      await registerEphemeral(m3, service, '10.0.3.3', 8080);
      await deregisterEphemeral(m2, service, '10.0.0.1', 8080);
      await deregisterEphemeral(m3, service, '10.0.0.2', 8080);
    }
    await registerEphemeral(m3, 'part-minority-only', '10.0.9.9', 8080);
    for (const service of services) {
      assert.equal((await listings([m3], service))[0], '10.0.0.1:8080,10.0.3.3:8080', `${service} on the isolated member`);
      await waitFor(async () => {
        const views = await listings([m1, m2], service);
        return views.every((view) => view === '10.0.0.2:8080,10.0.1.1:8080') || (() => { throw new Error(views.join(' | ')); })();
      }, { timeoutMs: 10_000, what: `${service} on the majority side` });
    }
  });

  await cluster.step(t, 'after the heal all members agree within two verify rounds, and nothing deregistered comes back', async () => {
    partitioner.heal();
    const healed = Date.now();
    const expected = '10.0.1.1:8080,10.0.3.3:8080';
    for (const service of [...services, 'part-minority-only']) {
      await waitFor(async () => {
        const views = await listings(cluster.members, service);
        const want = service === 'part-minority-only' ? '10.0.9.9:8080' : expected;
        return views.every((view) => view === want) || (() => { throw new Error(`${service}: ${views.join(' | ')}`); })();
      }, { timeoutMs: 30_000, intervalMs: 200, what: `${service} to converge after the heal` });
    }
    const convergedMs = Date.now() - healed;
    t.diagnostic(`all members agreed ${convergedMs} ms after the heal`);
    assert.ok(convergedMs <= 2 * limits.distroVerifyIntervalMs + 3000, `converged after ${convergedMs} ms, more than two verify rounds plus liveness detection`);
    await holdsFor(async () => {
      for (const service of services) {
        const views = await listings(cluster.members, service);
        if (!views.every((view) => view === expected)) throw new Error(`${service}: ${views.join(' | ')}`);
      }
      return true;
    }, { durationMs: limits.distroVerifyIntervalMs + 2000, intervalMs: 500, what: 'the converged listings (no resurrection)' });
  });
});
