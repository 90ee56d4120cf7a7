// Goal: the upgrade procedure of docs/operations.md ("Upgrades") across a peer protocol version: members restarted
// one at a time on a build of another version. Members of the two versions never exchange a message (each side
// refuses the other, counts it in /metrics); the group holding a majority of the voters takes writes in every phase
// (the old members first, the upgraded ones once they are a majority); nothing acknowledged is lost, nothing refused
// with a certain failure is written, and once every member runs the new version the three converge and nothing is
// refused any more.
//
// Method: three real members on 127.0.1.31-33 (this file's block is 127.0.1.31-33); "the new build" is the same
// binary started with --unsafe-peer-protocol-version 2, which only changes the version it speaks and accepts, so
// the test shows the protocol check, not a format change. Writers register unique persistent instances through
// every running member the whole time, with a 2 s timeout (a member on the minority's side waits for a leader
// until then, or refuses, and the writer moves on).
// Order: a follower, then the leader, then the last follower; each is stopped with SIGTERM and started on its own
// data directory. After each step the majority's side must agree on a leader and acknowledge new writes. The
// convergence check then reads every member. Timing is reported, not asserted: the restart that moves the majority
// leaves no group with a majority until it is back (documented), and its length depends on the machine.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkConvergence, Ledger, type Member, protocolRefusals, startCluster, waitFor, Writer } from '../support/cluster.ts';

const hosts = ['127.0.1.31', '127.0.1.32', '127.0.1.33'];
const newVersion = ['--unsafe-peer-protocol-version', '2'];

test('an upgrade across a peer protocol version, one member at a time: available on the majority side, nothing lost', async (t) => {
  const cluster = await startCluster(t, { file: 'upgrade', hosts, size: 3 });
  const { leader } = await cluster.waitForLeader();
  const followers = cluster.members.filter((member) => member !== leader);
  const order = [followers[0], leader, followers[1]].filter((member): member is Member => member !== undefined);
  assert.equal(order.length, 3);

  const ledger = new Ledger();
  const writer = new Writer(ledger, { services: ['upgrade-a', 'upgrade-b'], concurrency: 4, targets: () => cluster.running, timeoutMs: 2000 }).start();
  t.after(() => writer.stop());
  await waitFor(() => writer.ackCount >= 20, { timeoutMs: 15_000, what: '20 writes acknowledged before the upgrade' });

  const upgraded: Member[] = [];
  for (const [step, member] of order.entries()) {
    await cluster.step(t, `step ${step + 1}: ${member === leader ? 'the leader' : 'a follower'} restarted on the new version`, async (st) => {
      const restartAt = Date.now();
      const ackedBefore = writer.ackCount;
      await member.terminate();
      await member.start({ args: newVersion });
      upgraded.push(member);
      const older = cluster.members.filter((other) => !upgraded.includes(other));
      const majority = upgraded.length >= 2 ? upgraded : older;
      const agreement = await cluster.waitForLeader({ among: majority, timeoutMs: 30_000 });
      assert.ok(majority.includes(agreement.leader), `the leader ${agreement.leader.addr} is on the majority's side`);
      await waitFor(() => writer.ackCount >= ackedBefore + 20, { timeoutMs: 30_000, what: `20 more writes acknowledged after step ${step + 1}` });
      st.diagnostic(`step ${step + 1}: leader ${agreement.leader.addr} (${upgraded.length >= 2 ? 'new' : 'old'} version), 20 more writes ${Date.now() - restartAt} ms after the stop`);
      if (older.length > 0) {
        // Mixed: each side refuses the other, and says so in its metrics.
        const [someOlder] = older;
        assert.ok(someOlder !== undefined);
        await waitFor(async () => (await protocolRefusals(member)) > 0 && (await protocolRefusals(someOlder)) > 0, { timeoutMs: 10_000, what: `refusals counted by ${member.addr} and ${someOlder.addr}` });
      }
    });
  }

  const report = await writer.stop();
  t.diagnostic(`writes: ${ledger.summary()}; longest gap between two acknowledgements ${report.longestAckGapMs} ms`);
  await cluster.waitForLeader({ among: cluster.members, timeoutMs: 20_000 });
  const converged = await checkConvergence(ledger, cluster.members, { timeoutMs: 30_000 });
  t.diagnostic(`converged in ${converged.ms} ms: ${converged.acked} acknowledged; unknown outcomes present ${converged.unknownPresent}, absent ${converged.unknownAbsent}`);
  assert.ok(converged.acked >= 80, `at least 80 acknowledged writes (${converged.acked})`);

  // One version everywhere: the refusals stop. Counted twice, a second apart, after a write has gone through all three.
  const before = await Promise.all(cluster.members.map(protocolRefusals));
  const [first] = cluster.members;
  assert.ok(first !== undefined);
  assert.equal((await ledger.register(first, 'upgrade-a', 10_000)).kind, 'ok');
  await checkConvergence(ledger, cluster.members, { timeoutMs: 10_000 });
  await new Promise((resolve) => setTimeout(resolve, 1000));
  assert.deepEqual(await Promise.all(cluster.members.map(protocolRefusals)), before, 'no refusal once every member speaks the new version');
});
