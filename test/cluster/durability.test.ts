// Goal: an acknowledged persistent write survives the simultaneous crash of every member: a member answers "ok"
// only after the entry is fsynced by a majority and applied, so kill -9 of the whole cluster loses nothing that
// was acknowledged, and what the restarted cluster serves is what was written.
//
// Method: three members on 127.0.1.65-67 (this file's block is 127.0.1.65-69). Eight concurrent writers register
// unique persistent instances through all three members (round robin over four services) and record each answer:
// acknowledged, certainly refused, or unknown (timeouts, broken connections, CAIRN_OUTCOME_UNKNOWN). Once a few
// hundred writes are acknowledged, all three members get SIGKILL in the same instant, while writes are in flight.
// The members restart on their data directories; once they agree on a leader, every member's local list must hold
// every acknowledged instance and the lists must be equal; nothing never attempted or certainly refused may be
// listed (unknown writes may go either way). Reads with consistency=linearizable on every member must hold every
// acknowledged instance, and the restarted cluster must acknowledge new writes through every member. The crash and
// recovery run twice, the second time on top of the first's data. Recovery times are printed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertLinearizableReads, checkConvergence, Ledger, startCluster, waitFor, Writer } from '../support/cluster.ts';

const hosts = ['127.0.1.65', '127.0.1.66', '127.0.1.67', '127.0.1.68', '127.0.1.69'];

/** ackedBeforeCrash is how many acknowledged writes each round waits for before it kills everything. */
const ackedBeforeCrash = 200;

test('kill -9 of every member under write load loses no acknowledged write', { timeout: 180_000 }, async (t) => {
  const cluster = await startCluster(t, { file: 'durability', hosts, size: 3 });
  const ledger = new Ledger();
  const initial = await cluster.waitForLeader({ timeoutMs: 15_000 });
  t.diagnostic(`initial leader ${initial.leader.addr}, agreed ${initial.ms} ms after every member was ready`);

  for (const round of [1, 2]) {
    await cluster.step(t, `round ${round}: kill -9 of all members while 8 writers are busy`, async (st) => {
      const before = ledger.byKind('ok').length;
      const services = [0, 1, 2, 3].map((n) => `durability-r${round}-${n}`);
      const writer = new Writer(ledger, { services, concurrency: 8, targets: () => cluster.running, writesMax: 4 * 1500 }).start();
      try {
        await waitFor(() => writer.ackCount >= ackedBeforeCrash, { timeoutMs: 30_000, what: `${ackedBeforeCrash} acknowledged writes before the crash` });
        const pids = cluster.members.map((member) => member.pid);
        await Promise.all(cluster.members.map((member) => member.kill9()));
        st.diagnostic(`killed pids ${pids.join(', ')} with ${writer.ackCount} writes of this round acknowledged`);
      } finally {
        await writer.stop();
      }
      st.diagnostic(`load so far: ${ledger.summary()}`);
      assert.ok(ledger.byKind('ok').length - before >= ackedBeforeCrash);
    });

    await cluster.step(t, `round ${round}: after a restart of all, every acknowledged write is on every member`, async (st) => {
      const restartedAt = Date.now();
      await Promise.all(cluster.members.map((member) => member.restart()));
      const readyMs = Date.now() - restartedAt;
      const agreement = await cluster.waitForLeader({ among: cluster.members, timeoutMs: 15_000 });
      const leaderMs = Date.now() - restartedAt;
      const convergence = await checkConvergence(ledger, cluster.members);
      st.diagnostic(
        `recovery: all ready ${readyMs} ms after the restart, leader ${agreement.leader.addr} (term ${agreement.term}) agreed at ${leaderMs} ms, ` +
          `every acknowledged write listed everywhere at ${Date.now() - restartedAt} ms; ${convergence.acked} acknowledged, ` +
          `unknown writes: ${convergence.unknownPresent} listed, ${convergence.unknownAbsent} not`,
      );
    });

    await cluster.step(t, `round ${round}: linearizable reads on every member see every acknowledged write`, async () => {
      await assertLinearizableReads(ledger, cluster.members);
    });

    await cluster.step(t, `round ${round}: the restarted cluster acknowledges writes through every member`, async () => {
      for (const member of cluster.members) {
        const outcome = await ledger.register(member, `durability-r${round}-after`);
        assert.equal(outcome.kind, 'ok', `a write through ${member.addr} after the restart: ${outcome.detail}`);
      }
      await checkConvergence(ledger, cluster.members);
    });
  }
});
