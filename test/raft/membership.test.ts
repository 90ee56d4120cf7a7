// Goal: show that single-member changes (thesis §4.1) keep the group safe and live: a learner receives the log
// but neither votes nor counts for commitment; a promoted learner does both; a removed member stops counting;
// only one change may be uncommitted at a time and invalid changes are refused with typed codes; a leader that
// removes itself steps down once the removal commits; a group grows from one voter to three and shrinks back while
// committing at every step.
//
// Method: scripted groups on the harness network. A joining member starts from the group's bootstrap disk (the
// same index-0 snapshot as the founders) and learns every configuration from the log. Commitment is tested by
// cutting links so that exactly the members under test can acknowledge.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import type { MembershipChange, NodeId } from '../../src/raft/types.ts';
import { bootstrapState, Network } from './harness.ts';

const THREE: readonly NodeId[] = ['a', 'b', 'c'];

/** change proposes a membership change on `leader`, asserts it was accepted and stabilizes. */
function change(net: Network, leader: NodeId, membershipChange: MembershipChange): void {
  const result = net.core(leader).proposeMembership(membershipChange);
  assert.ok(result.ok, `${membershipChange.type} ${membershipChange.node}: ${JSON.stringify(result)}`);
  net.stabilize();
  net.tick(leader);
  net.stabilize();
}

/** commits tells whether a fresh proposal on `leader` commits with the links as they are. */
function commits(net: Network, leader: NodeId, value: string): boolean {
  const result = net.propose(leader, value);
  assert.ok(result.ok, JSON.stringify(result));
  net.stabilize();
  return net.core(leader).commitIndex >= result.lastIndex;
}

/** groupWithLearner builds a, b, c led by a, plus d added as a learner (committed). */
function groupWithLearner(): Network {
  const net = new Network({ voters: THREE });
  net.elect('a');
  net.addNode('d', { seed: 4 }, bootstrapState(THREE));
  change(net, 'a', { type: 'add-learner', node: 'd' });
  return net;
}

describe('membership changes (thesis §4.1)', () => {
  test('a learner receives the log but does not vote and is not counted for commitment', () => {
    // Reference: thesis §4.2.1 (new servers join as non-voting members and catch up) and §4.1.
    const net = groupWithLearner();
    assert.ok(net.propose('a', 'x').ok);
    net.stabilize();
    assert.deepEqual(net.core('d').membership, { voters: ['a', 'b', 'c'], learners: ['d'] });
    assert.deepEqual(net.appliedValues('d'), ['x'], 'the learner has the log');
    // Not counted: with b and c cut off, a and d are two of four members but one of three voters.
    net.partition(['a', 'd'], ['b', 'c']);
    assert.equal(commits(net, 'a', 'y'), false);
    assert.equal(net.core('d').lastIndex, net.core('a').lastIndex, 'd stores y all the same');
    net.heal();
    net.stabilize();
    // Not a voter: a learner never campaigns and is never asked for a vote.
    net.isolate('d');
    for (let i = 0; i < 50; i++) {
      net.tick('d');
      net.stabilize();
    }
    assert.equal(net.core('d').role, 'follower');
    assert.equal(net.sentOf('VoteRequest', (message) => message.from === 'd').length, 0);
    net.heal();
    net.clearSent();
    net.campaign('b');
    assert.equal(net.core('b').role, 'leader');
    assert.deepEqual(net.sentOf('VoteRequest').map((message) => message.to).sort(), ['a', 'c']);
  });

  test('a promoted learner votes and is counted for commitment', () => {
    // Reference: thesis §4.1 (a configuration change takes effect on each server as soon as it is in its log).
    const net = groupWithLearner();
    change(net, 'a', { type: 'promote', node: 'd' });
    assert.deepEqual(net.core('d').membership, { voters: ['a', 'b', 'c', 'd'], learners: [] });
    // Four voters: a majority is three. a and d alone do not commit; with b they do.
    net.partition(['a', 'd'], ['b', 'c']);
    assert.equal(commits(net, 'a', 'two of four'), false);
    net.heal();
    net.partition(['a', 'b', 'd'], ['c']);
    net.stabilize();
    assert.equal(commits(net, 'a', 'three of four'), true);
    // And d can now lead.
    net.heal();
    net.stabilize();
    net.elect('d');
  });

  test('a removed member is no longer counted and no longer replicated to', () => {
    // Reference: thesis §4.1.
    const net = new Network({ voters: THREE });
    net.elect('a');
    change(net, 'a', { type: 'remove', node: 'c' });
    assert.deepEqual(net.core('a').membership, { voters: ['a', 'b'], learners: [] });
    net.clearSent();
    assert.equal(commits(net, 'a', 'x'), true);
    assert.equal(net.sentOf('AppendRequest', (message) => message.to === 'c').length, 0);
    // Two voters: b's acknowledgement is now required.
    net.cut('b', 'a');
    assert.equal(commits(net, 'a', 'y'), false);
  });

  test('a second change while one is uncommitted is refused with membership-change-pending', () => {
    // Reference: thesis §4.1 (a leader does not start a new change until the previous one is committed).
    const net = new Network({ voters: THREE });
    net.elect('a');
    net.partition(['a'], ['b', 'c']);
    assert.ok(net.core('a').proposeMembership({ type: 'add-learner', node: 'd' }).ok);
    assert.deepEqual(net.core('a').proposeMembership({ type: 'add-learner', node: 'e' }), {
      ok: false, code: 'membership-change-pending', leaderHint: null,
    });
    assert.ok(net.propose('a', 'ordinary entries still go').ok);
    net.heal();
    net.stabilize();
    assert.ok(net.core('a').proposeMembership({ type: 'add-learner', node: 'e' }).ok, 'accepted once the first committed');
  });

  const invalidCases: { name: string; voters: readonly NodeId[]; setup: MembershipChange[]; change: MembershipChange }[] = [
    { name: 'add a voter as a learner', voters: THREE, setup: [], change: { type: 'add-learner', node: 'b' } },
    { name: 'add an existing learner again', voters: THREE, setup: [{ type: 'add-learner', node: 'd' }], change: { type: 'add-learner', node: 'd' } },
    { name: 'promote a voter', voters: THREE, setup: [], change: { type: 'promote', node: 'b' } },
    { name: 'promote a non-member', voters: THREE, setup: [], change: { type: 'promote', node: 'z' } },
    { name: 'remove a non-member', voters: THREE, setup: [], change: { type: 'remove', node: 'z' } },
    { name: 'remove the last voter', voters: ['a'], setup: [], change: { type: 'remove', node: 'a' } },
  ];
  for (const { name, voters, setup, change: invalid } of invalidCases) {
    test(`an invalid change is refused with membership-change-invalid: ${name}`, () => {
      // Reference: thesis §4.1; src/raft/membership.ts validateChange.
      const net = new Network({ voters });
      net.elect('a');
      for (const step of setup) change(net, 'a', step);
      const lastIndex = net.core('a').lastIndex;
      assert.deepEqual(net.core('a').proposeMembership(invalid), { ok: false, code: 'membership-change-invalid', leaderHint: null });
      assert.equal(net.core('a').lastIndex, lastIndex, 'nothing was appended');
    });
  }

  test('a change proposed to a follower is refused with not-leader and a hint', () => {
    // Reference: Raft §5.1 (clients are redirected to the leader).
    const net = new Network({ voters: THREE });
    net.elect('a');
    assert.deepEqual(net.core('b').proposeMembership({ type: 'add-learner', node: 'd' }), { ok: false, code: 'not-leader', leaderHint: 'a' });
  });

  test('a leader that removes itself leads until the removal commits, then steps down and does not campaign', () => {
    // Reference: thesis §4.2.2 (a leader removed from the configuration steps down once the new configuration
    // is committed; until then it manages a cluster it is not part of, not counting itself).
    const net = new Network({ voters: THREE });
    net.elect('a');
    const result = net.core('a').proposeMembership({ type: 'remove', node: 'a' });
    assert.ok(result.ok);
    assert.equal(net.core('a').role, 'leader', 'still leading while the removal is uncommitted');
    net.stabilize((message) => message.type === 'AppendResponse');
    assert.equal(net.core('a').role, 'leader');
    net.stabilize();
    assert.equal(net.core('a').role, 'follower', 'stepped down once the removal committed');
    assert.deepEqual(net.core('a').membership, { voters: ['b', 'c'], learners: [] });
    // b and c elect a new leader on their own; a never campaigns.
    net.clearSent();
    net.runUntil(() => net.leader() !== null && net.leader() !== 'a', 60);
    assert.equal(net.sentOf('VoteRequest', (message) => message.from === 'a').length, 0);
    const leader = net.leader();
    assert.ok(leader === 'b' || leader === 'c');
    assert.equal(commits(net, leader, 'after removal'), true);
  });

  const removedCases = [
    { checkQuorum: true, disrupted: false, why: 'the members in lease ignore its VoteRequests' },
    { checkQuorum: false, disrupted: true, why: 'control: without leases its higher term deposes the leader' },
  ];
  for (const { checkQuorum, disrupted, why } of removedCases) {
    test(`a removed member that never learned of its removal ${disrupted ? 'disrupts' : 'does not disrupt'} the group (${why})`, () => {
      // Reference: thesis §4.2.3 (disruptive servers: a removed server times out and starts elections with
      // newer terms; servers that heard from a leader within the minimum election timeout ignore them).
      const net = new Network({ voters: THREE, config: { checkQuorum } });
      net.elect('a');
      net.isolate('c');
      change(net, 'a', { type: 'remove', node: 'c' });
      assert.deepEqual(net.core('c').membership, { voters: ['a', 'b', 'c'], learners: [] }, 'c missed its removal');
      for (let i = 0; i < 40; i++) {
        net.tickAll();
        net.stabilize();
      }
      const term = net.core('a').term;
      assert.ok(net.core('c').term > term, 'c kept campaigning');
      net.heal();
      for (let i = 0; i < 25; i++) {
        net.tickAll();
        net.stabilize();
      }
      if (disrupted) {
        assert.ok(net.core('a').term > term, 'the control must show the disruption');
      } else {
        assert.equal(net.leader(), 'a');
        assert.equal(net.core('a').term, term);
        assert.equal(net.core('b').term, term);
      }
    });
  }

  test('a group grows from one voter to three and shrinks back, committing at every step', () => {
    // Reference: thesis §4.1 (any sequence of single-server changes is safe) and §4.2.1 (catch up as learner).
    const net = new Network({ voters: ['a'] });
    net.elect('a');
    assert.equal(commits(net, 'a', 'one voter'), true);
    const steps: { change: MembershipChange; voters: NodeId[]; learners: NodeId[] }[] = [
      { change: { type: 'add-learner', node: 'b' }, voters: ['a'], learners: ['b'] },
      { change: { type: 'promote', node: 'b' }, voters: ['a', 'b'], learners: [] },
      { change: { type: 'add-learner', node: 'c' }, voters: ['a', 'b'], learners: ['c'] },
      { change: { type: 'promote', node: 'c' }, voters: ['a', 'b', 'c'], learners: [] },
      { change: { type: 'remove', node: 'c' }, voters: ['a', 'b'], learners: [] },
      { change: { type: 'remove', node: 'b' }, voters: ['a'], learners: [] },
    ];
    for (const { change: step, voters, learners } of steps) {
      if (step.type === 'add-learner') net.addNode(step.node, {}, bootstrapState(['a']));
      change(net, 'a', step);
      assert.deepEqual(net.core('a').membership, { voters, learners }, `${step.type} ${step.node}`);
      assert.equal(commits(net, 'a', `after ${step.type} ${step.node}`), true, `${step.type} ${step.node}`);
      for (const id of [...voters, ...learners]) assert.deepEqual(net.appliedValues(id), net.appliedValues('a'), id);
    }
    // With two voters, the second one really is needed.
    const two = new Network({ voters: ['a'] });
    two.elect('a');
    two.addNode('b', {}, bootstrapState(['a']));
    change(two, 'a', { type: 'add-learner', node: 'b' });
    change(two, 'a', { type: 'promote', node: 'b' });
    two.isolate('b');
    assert.equal(commits(two, 'a', 'without b'), false);
  });
});
