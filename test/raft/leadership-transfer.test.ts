// Goal: show that leadership transfer (thesis §3.10) hands leadership to the chosen voter quickly and safely: a
// caught-up target gets TimeoutNow at once and wins the next term without waiting for a timeout; a lagging target
// is caught up first; the leader refuses proposals while the transfer runs; an unfinished transfer is abandoned
// after an election timeout; and the transfer's VoteRequest passes the followers' leader lease.
//
// Method: scripted three-member groups on the harness network. No test ticks a follower, so no ordinary election
// can explain a change of leader: only the transfer can.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import type { NodeId } from '../../src/raft/types.ts';
import { Network } from './harness.ts';

const THREE: readonly NodeId[] = ['a', 'b', 'c'];

describe('leadership transfer (thesis §3.10)', () => {
  const caughtUpCases = [
    { preVote: false, checkQuorum: false },
    { preVote: true, checkQuorum: false },
    { preVote: true, checkQuorum: true },
  ];
  for (const { preVote, checkQuorum } of caughtUpCases) {
    test(`to a caught-up follower: TimeoutNow at once, leader in the next term (preVote ${preVote}, checkQuorum ${checkQuorum})`, () => {
      // Reference: thesis §3.10 steps 2-3 (the leader sends TimeoutNow once the target's log matches; the target
      // starts an election at once, skipping PreVote) and §9.6 (the transfer's vote bypasses the lease).
      const net = new Network({ voters: THREE, config: { preVote, checkQuorum } });
      net.elect('a');
      assert.ok(net.propose('a', 'x').ok);
      net.stabilize();
      const term = net.core('a').term;
      net.clearSent();
      assert.deepEqual(net.core('a').transferLeadership('b'), { ok: true });
      net.flush();
      assert.deepEqual(net.queue.map((message) => [message.type, message.to]), [['TimeoutNow', 'b']]);
      net.stabilize();
      assert.equal(net.core('b').role, 'leader');
      assert.equal(net.core('b').term, term + 1);
      assert.equal(net.core('a').role, 'follower');
      assert.equal(net.core('a').leader, 'b');
      assert.equal(net.sentOf('PreVoteRequest').length, 0, 'a transfer skips PreVote');
      assert.ok(net.sentOf('VoteRequest').every((message) => message.transfer));
      assert.ok(net.propose('b', 'y').ok);
      net.stabilize();
      assert.deepEqual(net.appliedValues('a'), ['x', 'y']);
    });
  }

  test('to a lagging follower: the leader catches it up first, then sends TimeoutNow', () => {
    // Reference: thesis §3.10 step 2 (the prior leader brings the target's log up to date before TimeoutNow).
    const net = new Network({ voters: THREE });
    net.elect('a');
    net.isolate('b');
    for (let i = 0; i < 5; i++) assert.ok(net.propose('a', `x${i}`).ok);
    net.stabilize();
    net.heal();
    net.clearSent();
    const lastIndex = net.core('a').lastIndex;
    assert.deepEqual(net.core('a').transferLeadership('b'), { ok: true });
    net.flush();
    assert.equal(net.queuedOf('TimeoutNow').length, 0, 'no TimeoutNow while b lags');
    net.stabilize();
    const position = (predicate: (message: (typeof net.sent)[number]) => boolean): number => net.sent.findIndex(predicate);
    const caughtUp = position((message) => message.type === 'AppendResponse' && message.from === 'b' && message.success && message.matchIndex === lastIndex);
    const timeoutNow = position((message) => message.type === 'TimeoutNow');
    assert.ok(caughtUp >= 0 && timeoutNow > caughtUp, `TimeoutNow (${timeoutNow}) after b matched ${lastIndex} (${caughtUp})`);
    assert.equal(net.core('b').role, 'leader');
    assert.deepEqual(net.appliedValues('b'), ['x0', 'x1', 'x2', 'x3', 'x4']);
  });

  test('proposals and membership changes are refused with transfer-in-progress while a transfer runs', () => {
    // Reference: thesis §3.10 step 1 (the prior leader stops accepting new client requests during a transfer).
    const net = new Network({ voters: THREE });
    net.elect('a');
    net.isolate('b');
    assert.ok(net.propose('a', 'x').ok);
    net.stabilize();
    assert.deepEqual(net.core('a').transferLeadership('b'), { ok: true });
    assert.deepEqual(net.propose('a', 'y'), { ok: false, code: 'transfer-in-progress', leaderHint: null });
    assert.deepEqual(net.core('a').proposeMembership({ type: 'add-learner', node: 'd' }), { ok: false, code: 'transfer-in-progress', leaderHint: null });
  });

  test('an unfinished transfer is abandoned after an election timeout and the leader serves again', () => {
    // Reference: thesis §3.10 (if the transfer does not complete within an election timeout, the prior leader
    // aborts it and resumes accepting client requests).
    const net = new Network({ voters: THREE });
    net.elect('a');
    net.isolate('b');
    assert.deepEqual(net.core('a').transferLeadership('b'), { ok: true });
    const refusedAfter: number[] = [];
    for (let ticks = 1; ticks <= 10; ticks++) {
      net.tick('a');
      net.stabilize();
      const result = net.propose('a', `t${ticks}`);
      if (!result.ok) refusedAfter.push(ticks);
    }
    assert.deepEqual(refusedAfter, [1, 2, 3, 4, 5, 6, 7, 8, 9], 'refused until the 10th tick');
    assert.equal(net.core('a').role, 'leader');
    net.stabilize();
    assert.deepEqual(net.appliedValues('c'), ['t10']);
  });

  const resultCases: { name: string; caller: NodeId; to: NodeId; ongoing: NodeId | null; expected: unknown }[] = [
    { name: 'from a follower', caller: 'b', to: 'c', ongoing: null, expected: { ok: false, code: 'not-leader', leaderHint: 'a' } },
    { name: 'to a non-member', caller: 'a', to: 'z', ongoing: null, expected: { ok: false, code: 'unknown-member', leaderHint: null } },
    { name: 'to itself', caller: 'a', to: 'a', ongoing: null, expected: { ok: true } },
    { name: 'again to the same target', caller: 'a', to: 'b', ongoing: 'b', expected: { ok: true } },
    { name: 'to another target during a transfer', caller: 'a', to: 'c', ongoing: 'b', expected: { ok: false, code: 'transfer-in-progress', leaderHint: null } },
  ];
  for (const { name, caller, to, ongoing, expected } of resultCases) {
    test(`transferLeadership ${name}`, () => {
      // Reference: thesis §3.10; src/raft/types.ts TransferResult.
      const net = new Network({ voters: THREE });
      net.elect('a');
      net.isolate('b');
      if (ongoing !== null) assert.deepEqual(net.core('a').transferLeadership(ongoing), { ok: true });
      assert.deepEqual(net.core(caller).transferLeadership(to), expected);
    });
  }

  test('TimeoutNow from a member that is not the follower\'s leader is ignored', () => {
    // Reference: thesis §3.10 (only the current leader hands over leadership).
    const net = new Network({ voters: THREE });
    net.elect('a');
    const b = net.core('b');
    b.step({ type: 'TimeoutNow', from: 'c', to: 'b', term: b.term });
    assert.equal(b.role, 'follower');
    assert.equal(b.term, 1);
  });
});
