// Goal: show that a member that crashes and restarts from its durable state (hard state, snapshot, log after it,
// applied index) rejoins safely: it keeps its term, vote and log, catches up on what it missed, never re-applies
// an entry its state machine already holds, and loses only what was never committed.
//
// Method: the harness crash() throws the core away and keeps the member's disk and state machine; restart()
// builds a new RaftCore(config, persisted) from them. The harness state machine asserts on every applied entry
// that it follows the previous one (no gap, no re-application), so every test here also checks that.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import type { NodeId } from '../../src/raft/types.ts';
import { Network } from './harness.ts';

const THREE: readonly NodeId[] = ['a', 'b', 'c'];

describe('crash and restart (Raft §5.1, Figure 2; §7)', () => {
  test('a restarted follower keeps its term, vote and log, rejoins and catches up', () => {
    // Reference: Raft Figure 2 (currentTerm, votedFor and log[] are persistent state) and §5.5 (a restarted
    // follower receives the RPCs it missed; AppendEntries is idempotent).
    const net = new Network({ voters: THREE });
    net.elect('a');
    assert.ok(net.propose('a', 'before').ok);
    net.stabilize();
    const before = { term: net.core('c').term, vote: net.core('c').vote, lastIndex: net.core('c').lastIndex };
    net.crash('c');
    for (let i = 0; i < 5; i++) assert.ok(net.propose('a', `missed${i}`).ok);
    net.stabilize();
    net.restart('c');
    const c = net.core('c');
    assert.deepEqual({ term: c.term, vote: c.vote, lastIndex: c.lastIndex }, before);
    net.run(2);
    assert.deepEqual(net.appliedValues('c'), ['before', 'missed0', 'missed1', 'missed2', 'missed3', 'missed4']);
    assert.equal(net.core('c').lastIndex, net.core('a').lastIndex);
  });

  const stateMachineCases = [
    { stateMachine: 'durable', firstReapplied: null, why: 'the state machine kept what it applied: nothing is applied twice' },
    { stateMachine: 'from-snapshot', firstReapplied: 1, why: 'the state machine restarts from the snapshot (index 0): the log is applied again' },
  ] as const;
  for (const { stateMachine, firstReapplied, why } of stateMachineCases) {
    test(`a restarted member resumes applying after its applied index (${why})`, () => {
      // Reference: Raft §5.3 / Figure 2 (lastApplied), src/raft/types.ts PersistedState.applied.
      const net = new Network({ voters: THREE });
      net.elect('a');
      for (let i = 0; i < 3; i++) assert.ok(net.propose('a', `x${i}`).ok);
      net.stabilize();
      net.run(1);
      const appliedIndex = net.node('b').appliedIndex;
      assert.equal(appliedIndex, 4);
      net.crash('b');
      net.restart('b', stateMachine);
      assert.equal(net.core('b').appliedIndex, stateMachine === 'durable' ? appliedIndex : 0);
      net.node('b').readies.length = 0;
      net.run(2);
      const reapplied = net.node('b').readies.flatMap((ready) => ready.committedEntries.map((entry) => entry.index));
      assert.equal(reapplied[0] ?? null, firstReapplied);
      if (stateMachine === 'durable') assert.deepEqual(reapplied, []);
      assert.deepEqual(net.appliedValues('b'), ['x0', 'x1', 'x2']);
    });
  }

  test('a restarted member whose state machine is durable does not re-apply entries committed later either', () => {
    // Reference: Raft Figure 2 (lastApplied); the harness asserts applied indexes follow one another.
    const net = new Network({ voters: THREE });
    net.elect('a');
    assert.ok(net.propose('a', 'x').ok);
    net.stabilize();
    net.run(1);
    net.crash('b');
    net.restart('b');
    assert.ok(net.propose('a', 'y').ok);
    net.stabilize();
    net.run(1);
    assert.deepEqual(net.applied('b').map((entry) => entry.index), [1, 2, 3]);
  });

  test('a leader that crashes with an uncommitted entry loses it to the next leader and then follows', () => {
    // Reference: Raft §5.3 (the leader forces followers' logs to duplicate its own; conflicting uncommitted
    // entries are overwritten) and §5.4 (only committed entries are durable promises).
    const net = new Network({ voters: THREE });
    net.elect('a');
    assert.ok(net.propose('a', 'committed').ok);
    net.stabilize();
    net.isolate('a');
    assert.ok(net.propose('a', 'uncommitted').ok);
    net.stabilize();
    net.crash('a');
    net.heal();
    net.runUntil(() => net.leader() !== null, 60);
    const leader = net.leader();
    assert.ok(leader === 'b' || leader === 'c');
    assert.ok(net.propose(leader, 'new').ok);
    net.stabilize();
    net.restart('a');
    net.run(3);
    assert.equal(net.core('a').role, 'follower');
    for (const id of THREE) assert.deepEqual(net.appliedValues(id), ['committed', 'new'], id);
    assert.equal(net.core('a').lastIndex, net.core(leader).lastIndex);
  });

  test('the whole group restarts and keeps every committed entry', () => {
    // Reference: Raft §5.4 (Leader Completeness) across a full restart from durable state.
    const net = new Network({ voters: THREE });
    net.elect('a');
    for (let i = 0; i < 4; i++) assert.ok(net.propose('a', `x${i}`).ok);
    net.stabilize();
    for (const id of THREE) net.crash(id);
    for (const id of THREE) net.restart(id);
    net.runUntil(() => net.leader() !== null, 60);
    const leader = net.leader();
    assert.ok(leader !== null);
    assert.ok(net.propose(leader, 'after').ok);
    net.stabilize();
    net.run(1);
    for (const id of THREE) assert.deepEqual(net.appliedValues(id), ['x0', 'x1', 'x2', 'x3', 'after'], id);
  });
});
