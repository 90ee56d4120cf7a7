// Goal: an upgrade across a Distro protocol version alone (docs/operations.md "Upgrades"), as from the build before
// the lineage of ephemeral entries (Distro 1) to this one (Distro 2): Raft is never cut, because its protocol did not
// change, so all three members agree on one leader at every step and an upgraded member takes persistent writes even
// while it is the only one (under one version for everything it would be cut off and answer CAIRN_NO_LEADER); the
// ephemeral path is split into the upgraded and the older members, which refuse each other's Distro calls; instances
// kept by their clients' beats are listed everywhere once every member is upgraded.
//
// Method: three real members on 127.0.1.70-72 (this file's block), started with --unsafe-distro-protocol-version 1
// (they speak Distro 1 as the older build did; their merge is this build's, so the test shows the protocol split and
// what Raft keeps across it, not the old merge), then restarted one at a time without the flag: a follower, the
// leader, the last follower. Writers register unique persistent instances through every running member throughout;
// beaters send Nacos v1 beats with their body (which registers an unknown instance again, as the client does on
// "not found") every second through rotating members, for instances first registered through an older member.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkConvergence, Ledger, type Member, protocolRefusals, startCluster, waitFor, Writer } from '../support/cluster.ts';
import { beatOnce, describeList, listEphemeral, registerEphemeral } from '../support/ephemeral.ts';

const hosts = ['127.0.1.70', '127.0.1.71', '127.0.1.72'];
const olderDistro = ['--unsafe-distro-protocol-version', '1'];
const service = 'upgrade-distro-eph';
const instances = ['10.9.0.1', '10.9.0.2', '10.9.0.3', '10.9.0.4'];

test('an upgrade across the Distro protocol alone keeps Raft whole: one leader, writes through every member at every step; the ephemeral path converges once all are upgraded', async (t) => {
  const cluster = await startCluster(t, { file: 'upgrade-distro', hosts, size: 3, args: olderDistro });
  const { leader } = await cluster.waitForLeader();
  const followers = cluster.members.filter((member) => member !== leader);
  const order = [followers[0], leader, followers[1]].filter((member): member is Member => member !== undefined);
  assert.equal(order.length, 3);

  const ledger = new Ledger();
  const writer = new Writer(ledger, { services: ['upgrade-distro-a'], concurrency: 3, targets: () => cluster.running, timeoutMs: 2000 }).start();
  t.after(() => writer.stop());
  // Ephemeral instances registered before the upgrade, through the older members, and kept by beats from then on.
  for (const [index, ip] of instances.entries()) {
    const via = cluster.members[index % cluster.members.length];
    assert.ok(via !== undefined);
    await registerEphemeral(via, service, ip, 8080, {});
  }
  let beating = true;
  let beats = 0;
  let beatFailures = 0;
  const beaters = (async () => {
    for (let round = 0; beating; round++) {
      const running = cluster.running;
      await Promise.all(instances.map(async (ip, index) => {
        const via = running[(round + index) % Math.max(1, running.length)];
        if (via === undefined) return;
        try {
          await beatOnce(via, service, ip, 8080, { weight: 1, metadata: {} });
          beats++;
        } catch {
          beatFailures++; // a member restarting; the next round goes elsewhere
        }
      }));
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  })();
  t.after(async () => {
    beating = false;
    await beaters;
  });
  await waitFor(() => writer.ackCount >= 10, { timeoutMs: 15_000, what: '10 writes acknowledged before the upgrade' });

  const upgraded: Member[] = [];
  for (const [step, member] of order.entries()) {
    await cluster.step(t, `step ${step + 1}: ${member === leader ? 'the leader' : 'a follower'} restarted on the new Distro version`, async (st) => {
      const restartAt = Date.now();
      await member.terminate();
      await member.start();
      upgraded.push(member);
      // Raft is whole: every member, of either version, names the same leader.
      const agreement = await cluster.waitForLeader({ among: cluster.members, timeoutMs: 30_000 });
      // The upgraded member takes a persistent write itself, also when it is the only one of its version.
      const outcome = await ledger.register(member, 'upgrade-distro-b', 10_000);
      assert.equal(outcome.kind, 'ok', `a write through the upgraded ${member.addr} at step ${step + 1}: ${outcome.detail}`);
      st.diagnostic(`step ${step + 1}: leader ${agreement.leader.addr}, a write through ${member.addr} acknowledged ${Date.now() - restartAt} ms after the stop`);
      const older = cluster.members.filter((other) => !upgraded.includes(other));
      const [someOlder] = older;
      if (someOlder !== undefined) {
        // Mixed: the Distro calls between the two groups are refused, on both sides.
        await waitFor(async () => (await protocolRefusals(member)) > 0 && (await protocolRefusals(someOlder)) > 0, { timeoutMs: 10_000, what: `Distro refusals counted by ${member.addr} and ${someOlder.addr}` });
      }
    });
  }

  // One Distro version everywhere: every member lists every beaten instance, healthy.
  const expected = instances.map((ip) => `${ip}:8080`).sort().join(',');
  await waitFor(async () => {
    const lists = await Promise.all(cluster.members.map((member) => listEphemeral(member, service)));
    return lists.every((list) => describeList(list) === expected);
  }, { timeoutMs: 20_000, what: `every member to list ${expected} healthy` });
  t.diagnostic(`beats: ${beats} answered, ${beatFailures} failed (members restarting)`);

  const report = await writer.stop();
  t.diagnostic(`writes: ${ledger.summary()}; longest gap between two acknowledgements ${report.longestAckGapMs} ms`);
  const converged = await checkConvergence(ledger, cluster.members, { timeoutMs: 30_000 });
  assert.ok(converged.acked >= 13, `at least 13 acknowledged writes (${converged.acked})`);

  // The refusals stop once one version is spoken everywhere.
  const before = await Promise.all(cluster.members.map(protocolRefusals));
  await new Promise((resolve) => setTimeout(resolve, 2000));
  assert.deepEqual(await Promise.all(cluster.members.map(protocolRefusals)), before, 'no refusal once every member speaks the new Distro version');
});
