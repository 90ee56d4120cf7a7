// Goal: membership changes work one member at a time on real processes, and a member whose data directory was
// wiped is refused as a voter (it forgot its votes and acknowledged entries; Raft §5.1, §5.4) until an operator
// re-adds it through the documented path, after which it has all the data.
//
// Method: three members on 127.0.1.60-62 and a fourth on 127.0.1.63 (this file's block is 127.0.1.60-64), with
// unique persistent registrations recorded in a ledger throughout. (1) Add: the fourth starts with --join, an empty
// data directory and --members listing the three plus itself (the CLI requires its own --addr in --members); POST
// /cairn/v1/cluster/members?addr=<it> on the leader must answer 200 once it is a voter; every member must then list
// it as a voter (role follower), it must list exactly what the others list, and a write through it must be
// acknowledged, and an ephemeral instance registered through one of the three must be listed by it (the AP path
// follows the membership); with two of the original three paused (SIGSTOP), the new member and the last one are 2 of 4
// voters, so for 7 s (several election timeouts) it must not lead and a write through it must not be
// acknowledged. (2) Remove: DELETE /cairn/v1/cluster/members?addr=<it> on the leader must bring the membership back
// to the three; writes through each of them must still be acknowledged. (3) A wiped member: one follower is
// stopped (SIGTERM), its data directory deleted, and it is started again with the same --members: it must exit
// non-zero with CAIRN_MEMBER_STATE_MISSING and the advice (DELETE, start with --join, POST) on stderr, while the
// other two keep acknowledging writes. (4) Re-add it as advised: DELETE on the leader, start it with --join on an
// empty directory, POST on the leader; it must become a voter again and list what the others list. Every step ends
// with the convergence check: every acknowledged instance on every member, nothing never attempted listed. Between
// (2) and (3): an add cut short by a leadership transfer (the joiner paused, so it stays a learner) is finished by
// the same POST on the new leader, and a POST for a voter changes nothing.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkConvergence, type Cluster, holdsFor, Ledger, type Member, sleep, startCluster, waitFor } from '../support/cluster.ts';
import { limits } from '../../src/limits.ts';

const hosts = ['127.0.1.60', '127.0.1.61', '127.0.1.62', '127.0.1.63', '127.0.1.64'];

/** changeTimeoutMs bounds a membership request: adding waits for the learner to catch up (memberCatchUpMs 60 s). */
const changeTimeoutMs = 70_000;

/** membersSeenBy reads the members `member` reports, with their roles. */
async function membersSeenBy(member: Member): Promise<Map<string, string>> {
  const view = await member.status();
  return new Map(view.members.map((entry) => [entry.addr, entry.role]));
}

/** waitForMembership polls until every one of `askers` reports exactly `expected` as the members, none a learner. */
async function waitForMembership(askers: readonly Member[], expected: readonly Member[], what: string): Promise<void> {
  const wanted = expected.map((member) => member.addr).sort();
  await waitFor(async () => {
    for (const asker of askers) {
      const seen = await membersSeenBy(asker);
      const addrs = [...seen.keys()].sort();
      if (addrs.join(',') !== wanted.join(',')) throw new Error(`${asker.addr} reports members ${addrs.join(',')}`);
      const learners = [...seen].filter(([, role]) => role === 'learner').map(([addr]) => addr);
      if (learners.length > 0) throw new Error(`${asker.addr} still reports learners ${learners.join(',')}`);
    }
    return true;
  }, { timeoutMs: 10_000, what });
}

/** writeThroughEach registers one instance through each member and asserts each is acknowledged. */
async function writeThroughEach(ledger: Ledger, members: readonly Member[], service: string): Promise<void> {
  for (const member of members) {
    let outcome = await ledger.register(member, service);
    // A member just resumed from SIGSTOP refuses writes for a moment (CAIRN_MEMBER_STALLED, nothing written: the
    // stall fence, src/stall.ts); a client retries, and so does this one, a bounded number of times.
    for (let retry = 0; retry < stalledRetriesMax && outcome.kind === 'failed' && outcome.detail === 'CAIRN_MEMBER_STALLED'; retry++) {
      await sleep(limits.stallGraceMs);
      outcome = await ledger.register(member, service);
    }
    assert.equal(outcome.kind, 'ok', `a write through ${member.addr} (${service}): ${outcome.detail}`);
  }
}

/** stalledRetriesMax bounds writeThroughEach's retries of a write refused by the stall fence. */
const stalledRetriesMax = 5;

/** changeMembership sends POST or DELETE /cairn/v1/cluster/members?addr= to the current leader of `voters`. */
async function changeMembership(cluster: Cluster, voters: readonly Member[], method: 'POST' | 'DELETE', addr: string): Promise<number> {
  const { leader } = await cluster.waitForLeader({ among: voters });
  const started = Date.now();
  const answer = await leader.request(method, `/cairn/v1/cluster/members?addr=${addr}`, { timeoutMs: changeTimeoutMs });
  assert.equal(answer.status, 200, `${method} /cairn/v1/cluster/members?addr=${addr} on ${leader.addr}: ${answer.status} ${answer.code ?? ''} ${answer.text}`);
  return Date.now() - started;
}

test('add and remove a member; a wiped member is refused, then re-added', { timeout: 240_000 }, async (t) => {
  const cluster = await startCluster(t, { file: 'membership', hosts, size: 3 });
  const [a, b, c] = cluster.members;
  const [d] = cluster.spares;
  assert.ok(a !== undefined && b !== undefined && c !== undefined && d !== undefined);
  const three = [a, b, c];
  const ledger = new Ledger();
  await cluster.waitForLeader({ timeoutMs: 15_000 });
  for (let i = 0; i < 10; i++) await writeThroughEach(ledger, three, 'membership-before');

  await cluster.step(t, 'a fourth member started with --join and added by the leader becomes a voter with all data', async (st) => {
    const started = Date.now();
    await d.start({ join: true, members: [...cluster.memberAddrs, d.addr] });
    const joinerSelf = await d.selfView();
    assert.notEqual(joinerSelf.role, 'leader', 'a --join member must not lead before it is added');
    const addMs = await changeMembership(cluster, three, 'POST', d.addr);
    const four = [a, b, c, d];
    const convergence = await checkConvergence(ledger, four, { what: `${d.addr} to list what the others list` });
    st.diagnostic(`add: POST answered in ${addMs} ms; ${d.addr} held every acknowledged write ${Date.now() - started} ms after its start (poll ${convergence.ms} ms)`);
    await writeThroughEach(ledger, four, 'membership-four');
    await checkConvergence(ledger, four);
    await waitForMembership(four, four, `all four members to report ${four.map((m) => m.addr).join(', ')} as voters`);
    // The AP path follows the group: the three started with --members naming only themselves, yet an ephemeral
    // instance registered through one of them reaches the added member (its Distro peers follow the configuration).
    const registered = await a.request('POST', '/nacos/v1/ns/instance?serviceName=membership-eph&ip=127.0.1.64&port=7001&ephemeral=true');
    assert.equal(registered.status, 200, registered.text);
    await waitFor(async () => {
      const listed = await d.request('GET', '/nacos/v1/ns/instance/list?serviceName=membership-eph');
      return listed.status === 200 && listed.text.includes('"ip":"127.0.1.64"');
    }, { timeoutMs: 10_000, intervalMs: 200, what: `the ephemeral instance registered through ${a.addr} to be listed by ${d.addr}` });
  });

  await cluster.step(t, 'the added member counts the others: without a majority of the four it acknowledges nothing', async (st) => {
    // Two of the original three stop (SIGSTOP): the fourth and one other are 2 of 4 voters, no majority.
    const paused = [b, c];
    for (const member of paused) member.pause();
    const pausedAt = Date.now();
    try {
      // Writes and the watch run together: for several election timeouts (1-2 s each), the new member must never
      // report itself leader, and no write sent to it (one after another through the window) may be acknowledged.
      // They go to a ledger of their own, so what they leave behind does not blur the later steps' checks.
      const minority = new Ledger();
      let watching = true;
      const writes = (async () => {
        while (watching && minority.attempted.size < 50) await minority.register(d, 'membership-minority', 15_000);
      })();
      // The watch records the first time the new member leads and goes on, so the writes see the whole window.
      let leading: string | null = null;
      await holdsFor(async () => {
        const view = await d.status();
        if (view.leader === d.addr && leading === null) {
          leading = `${d.addr} led term ${view.term} ${Date.now() - pausedAt} ms after the pause with only 2 of 4 voters running; it reported members ${view.members.map((m) => `${m.addr}=${m.role}`).join(', ')}`;
        }
        return true;
      }, { durationMs: 8000, intervalMs: 100, what: `watching ${d.addr}` });
      watching = false;
      await writes;
      st.diagnostic(`writes through ${d.addr} with ${paused.map((m) => m.addr).join(', ')} paused: ${minority.summary()}`);
      const acknowledged = minority.byKind('ok');
      const first = acknowledged[0];
      assert.equal(acknowledged.length, 0, `${d.addr} acknowledged ${acknowledged.length} write(s) while only 2 of 4 voters were running, the first ${first === undefined ? '' : first.sentAt - pausedAt} ms after the pause (${minority.summary()})${leading === null ? '' : `; ${String(leading)}`}`);
      assert.equal(leading, null, `${d.addr} must not lead while only 2 of 4 voters run`);
    } finally {
      for (const member of paused) member.resume();
    }
    await cluster.waitForLeader({ among: [a, b, c], timeoutMs: 15_000 });
    await writeThroughEach(ledger, [a, b, c], 'membership-after-minority');
    await checkConvergence(ledger, [a, b, c]);
  });

  await cluster.step(t, 'removing the fourth member brings the membership back to three; writes go on', async (st) => {
    const { leader } = await cluster.waitForLeader({ among: three });
    if (leader === d) {
      // Keep the test about removing a follower: move leadership to one of the three first.
      const moved = await d.request('POST', `/cairn/v1/cluster/transfer-leader?to=${a.addr}`);
      assert.equal(moved.status, 200, `transfer away from ${d.addr}: ${moved.status} ${moved.text}`);
    }
    const removeMs = await changeMembership(cluster, three, 'DELETE', d.addr);
    await waitForMembership(three, three, `the three members to report only ${three.map((m) => m.addr).join(', ')}`);
    st.diagnostic(`remove: DELETE answered in ${removeMs} ms`);
    await d.terminate();
    await writeThroughEach(ledger, three, 'membership-after-remove');
    await checkConvergence(ledger, three);
  });

  await cluster.step(t, 'an add cut short by a leader change leaves a learner; the same POST on the new leader promotes it; the leader removing itself is answered', async (st) => {
    // The fourth member, removed above, joins again empty but paused, so it cannot catch up: the leader's POST
    // waits with it a learner. Leadership then moves: the old leader's POST must end (not leader), the member stays
    // a learner, and the same POST on the new leader must finish the job; a POST for a voter changes nothing.
    d.wipe();
    await d.start({ join: true, members: [...cluster.memberAddrs, d.addr] });
    d.pause();
    let learnerSeen = false;
    try {
      const { leader } = await cluster.waitForLeader({ among: three });
      const pending = leader.request('POST', `/cairn/v1/cluster/members?addr=${d.addr}`, { timeoutMs: changeTimeoutMs });
      await waitFor(async () => (await membersSeenBy(leader)).get(d.addr) === 'learner', { timeoutMs: 10_000, what: `${leader.addr} to list ${d.addr} as a learner` });
      const next = three.find((member) => member !== leader);
      assert.ok(next !== undefined);
      const moved = await leader.request('POST', `/cairn/v1/cluster/transfer-leader?to=${next.addr}`);
      assert.equal(moved.status, 200, `transfer to ${next.addr}: ${moved.status} ${moved.text}`);
      const cut = await pending;
      assert.ok(cut.code === 'CAIRN_NOT_LEADER' || cut.code === 'CAIRN_NO_LEADER', `the old leader's POST ends when leadership moves: ${cut.status} ${cut.code ?? ''} ${cut.text}`);
      assert.match(cut.text, /learner/);
      learnerSeen = (await membersSeenBy(next)).get(d.addr) === 'learner';
      assert.ok(learnerSeen, `${d.addr} is left a learner`);
    } finally {
      d.resume();
    }
    const addMs = await changeMembership(cluster, three, 'POST', d.addr);
    const four = [a, b, c, d];
    await waitForMembership(four, four, `all four to report ${d.addr} as a voter after the second POST`);
    const againMs = await changeMembership(cluster, three, 'POST', d.addr);
    await waitForMembership(four, four, 'the membership unchanged by a POST for a voter');
    st.diagnostic(`resumed add: the second POST promoted the learner in ${addMs} ms; a POST for the voter answered in ${againMs} ms`);
    await writeThroughEach(ledger, four, 'membership-resumed-add');
    await checkConvergence(ledger, four);
    // Now remove the leader itself: it must keep replicating until its removal commits, then step down (thesis
    // §4.2.2), so the DELETE is answered 200, not an ambiguous timeout.
    const { leader } = await cluster.waitForLeader({ among: four });
    if (leader !== d) {
      const moved = await leader.request('POST', `/cairn/v1/cluster/transfer-leader?to=${d.addr}`);
      assert.equal(moved.status, 200, `transfer to ${d.addr}: ${moved.status} ${moved.text}`);
      await waitFor(async () => (await d.status()).leader === d.addr, { timeoutMs: 10_000, what: `${d.addr} to lead` });
    }
    const removed = await d.request('DELETE', `/cairn/v1/cluster/members?addr=${d.addr}`, { timeoutMs: changeTimeoutMs });
    assert.equal(removed.status, 200, `the leader removing itself: ${removed.status} ${removed.code ?? ''} ${removed.text}`);
    await waitForMembership(three, three, `the three members to report only ${three.map((m) => m.addr).join(', ')} again`);
    const after = await cluster.waitForLeader({ among: three, timeoutMs: 15_000 });
    st.diagnostic(`the removed leader's DELETE answered 200; ${after.leader.addr} leads the three`);
    await writeThroughEach(ledger, three, 'membership-after-leader-removal');
    await d.terminate();
  });

  let wiped: Member | null = null;
  await cluster.step(t, 'a member whose data directory was wiped refuses to start as a voter, with the advice', async (st) => {
    const { leader } = await cluster.waitForLeader({ among: three });
    const victim = three.find((member) => member !== leader);
    assert.ok(victim !== undefined);
    const stopped = await victim.terminate();
    assert.equal(stopped.code, 0, `SIGTERM stop of ${victim.addr}: ${JSON.stringify(stopped)}`);
    victim.wipe();
    wiped = victim;
    const started = Date.now();
    const refused = await victim.startExpectingExit({ timeoutMs: 30_000 });
    st.diagnostic(`refusal: ${victim.addr} exited with code ${String(refused.code)} ${Date.now() - started} ms after its start`);
    assert.notEqual(refused.code, 0, `the wiped member exited with ${JSON.stringify({ code: refused.code, signal: refused.signal })}`);
    assert.equal(refused.signal, null, 'the wiped member was killed instead of exiting');
    assert.match(refused.stderr, /CAIRN_MEMBER_STATE_MISSING/, `stderr: ${refused.stderr}`);
    assert.ok(refused.stderr.includes(`DELETE /cairn/v1/cluster/members?addr=${victim.addr}`), `the advice names the DELETE: ${refused.stderr}`);
    assert.ok(refused.stderr.includes('--join'), `the advice names --join: ${refused.stderr}`);
    assert.ok(refused.stderr.includes(`POST /cairn/v1/cluster/members?addr=${victim.addr}`), `the advice names the POST: ${refused.stderr}`);
    const others = three.filter((member) => member !== victim);
    await writeThroughEach(ledger, others, 'membership-while-wiped');
    await checkConvergence(ledger, others);
  });

  await cluster.step(t, 'the wiped member re-added as advised (DELETE, start with --join, POST) catches up', async (st) => {
    const victim = wiped;
    assert.ok(victim !== null, 'no member was wiped by the previous step');
    const others = three.filter((member) => member !== victim);
    const started = Date.now();
    await changeMembership(cluster, others, 'DELETE', victim.addr);
    await waitForMembership(others, others, `the two others to drop ${victim.addr}`);
    victim.wipe();
    await victim.start({ join: true });
    const addMs = await changeMembership(cluster, others, 'POST', victim.addr);
    await checkConvergence(ledger, three, { what: `${victim.addr} to list what the others list after its re-addition` });
    st.diagnostic(`re-add: POST answered in ${addMs} ms; ${victim.addr} caught up ${Date.now() - started} ms after the DELETE`);
    await writeThroughEach(ledger, three, 'membership-after-readd');
    await checkConvergence(ledger, three);
    st.diagnostic(`ledger: ${ledger.summary()}`);
    await waitForMembership(three, three, `all three to report ${three.map((m) => m.addr).join(', ')} as voters again`);
  });
});
