// Goal: writes that reach a follower of a real 3-member cluster travel to the leader in ForwardBatch calls and lose
// nothing: every acknowledged write is listed by every member (also by a linearizable read), nothing certainly
// refused is, and each write is applied once (the lists hold exactly the attempted keys). Then the leader is killed
// with SIGKILL while a burst of writes through a follower is in flight: each write is answered (acknowledged,
// certainly refused, or unknown), and once a new leader is agreed on the survivors converge on every acknowledged
// write, with nothing certainly refused among them.
//
// Method: three `cairn server` processes on this file's addresses 127.0.1.73, 127.0.1.74 and 127.0.1.97. Bursts of
// concurrent Nacos v1 registrations (HTTP, one connection each) go to one follower; the members' /metrics
// (cairn_peer_transport_events_total) show whether batches were sent and served, so the test fails if the writes
// went one call each.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertLinearizableReads, checkConvergence, Ledger, startCluster, type Member, type WriteOutcome } from '../support/cluster.ts';

const hosts = ['127.0.1.73', '127.0.1.74', '127.0.1.97'];

async function transportEvent(member: Member, event: string): Promise<number> {
  const answer = await member.request('GET', '/metrics', { timeoutMs: 3000 });
  const match = new RegExp(`cairn_peer_transport_events_total\\{event="${event}"\\} (\\d+)`).exec(answer.text);
  if (match === null) throw new Error(`${member.addr}: no ${event} counter in /metrics`);
  return Number(match[1]);
}

test('writes through a follower travel in batches and lose nothing, also when the leader dies under them', { timeout: 180_000 }, async (t) => {
  const cluster = await startCluster(t, { file: 'forwarded-writes', hosts, size: 3 });
  const ledger = new Ledger();
  const { leader } = await cluster.waitForLeader({ timeoutMs: 15_000 });
  const follower = cluster.members.find((member) => member !== leader);
  assert.ok(follower !== undefined);

  await cluster.step(t, 'bursts through a follower: one call per burst, every write acknowledged, listed once everywhere', async (st) => {
    for (let burst = 0; burst < 4; burst++) {
      const outcomes: WriteOutcome[] = await Promise.all(Array.from({ length: 48 }, () => ledger.register(follower, `forwarded-${burst % 2}`)));
      const notOk = outcomes.filter((outcome) => outcome.kind !== 'ok');
      assert.equal(notOk.length, 0, `writes through ${follower.addr} not acknowledged: ${ledger.summary()}`);
    }
    const sent = await transportEvent(follower, 'forward_batch_sent');
    const forwarded = await transportEvent(follower, 'forward_sent');
    const served = await transportEvent(leader, 'forward_batch_served');
    st.diagnostic(`${forwarded} writes forwarded in ${sent} batches (and single calls); the leader served ${served} batches`);
    assert.ok(forwarded >= 192, `every write was forwarded (${forwarded})`);
    assert.ok(sent >= 1 && served >= 1, `the bursts went in ForwardBatch calls (sent ${sent}, served ${served})`);
    assert.ok(sent < forwarded / 2, `most writes shared a call (${forwarded} writes, ${sent} batches)`);
    const report = await checkConvergence(ledger, cluster.members);
    assert.equal(report.acked, ledger.attempted.size);
    await assertLinearizableReads(ledger, cluster.members);
  });

  await cluster.step(t, 'the leader is killed under a burst through a follower: every write answered, no acknowledged write lost', async (st) => {
    const current = (await cluster.waitForLeader()).leader;
    const through = cluster.members.find((member) => member !== current);
    assert.ok(through !== undefined);
    const burst = Promise.all(Array.from({ length: 64 }, (_, i) => ledger.register(through, `forwarded-kill-${i % 2}`, 15_000)));
    await current.kill9();
    const outcomes = await burst;
    const kinds = new Map<string, number>();
    for (const outcome of outcomes) kinds.set(outcome.kind, (kinds.get(outcome.kind) ?? 0) + 1);
    st.diagnostic(`burst outcomes: ${[...kinds].map(([kind, count]) => `${kind} ${count}`).join(', ')}; ${ledger.summary()}`);
    assert.equal(outcomes.length, 64);
    const survivors = cluster.members.filter((member) => member !== current);
    await cluster.waitForLeader({ among: survivors, timeoutMs: 15_000 });
    const after = await ledger.register(through, 'forwarded-after', 15_000);
    assert.equal(after.kind, 'ok', `a write through ${through.addr} after the failover: ${after.detail}`);
    const report = await checkConvergence(ledger, survivors, { timeoutMs: 30_000 });
    st.diagnostic(`converged in ${report.ms} ms: ${report.acked} acknowledged, unknown present ${report.unknownPresent}, absent ${report.unknownAbsent}`);
  });
});
