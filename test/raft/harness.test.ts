// Goal: show that the test harness (test/raft/harness.ts) is a faithful driver, so that the other test files can
// trust it: it refuses a core that breaks the Ready contract, a crash keeps exactly the durable state, and a
// restart rebuilds the member from it.
//
// Method: positive controls with the core's planted bugs (config.testOnlyBugs), and a crash/restart round trip
// compared field by field with what was persisted.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import type { NodeId } from '../../src/raft/types.ts';
import { Network } from './harness.ts';

const THREE: readonly NodeId[] = ['a', 'b', 'c'];

describe('the harness', () => {
  test('refuses a core that sends a vote before it is durable (voteWithoutPersist planted)', () => {
    // Reference: Raft §5.1, Figure 2; the Ready contract. Without the bug, the same election passes.
    const healthy = new Network({ voters: THREE });
    healthy.elect('a');
    const buggy = new Network({ voters: THREE, config: { testOnlyBugs: { voteWithoutPersist: true } } });
    assert.throws(() => buggy.campaign('a'), /a vote for a leaves before it is durable/);
  });

  test('a crash keeps the disk and the state machine; a restart rebuilds the member from them', () => {
    // Reference: Raft Figure 2 (persistent state) and §5.1.
    const net = new Network({ voters: THREE });
    net.elect('a');
    assert.ok(net.propose('a', 'x').ok);
    net.stabilize();
    net.tick('a');
    net.stabilize();
    const node = net.node('b');
    const disk = node.persistedState();
    net.crash('b');
    assert.equal(node.live, false);
    assert.throws(() => net.core('b'), /b is crashed/);
    assert.ok(net.propose('a', 'y').ok);
    net.stabilize();
    assert.deepEqual(node.persistedState(), disk, 'a crashed member\'s disk does not change');
    net.restart('b');
    const b = net.core('b');
    assert.equal(b.term, disk.hardState.term);
    assert.equal(b.vote, disk.hardState.vote);
    assert.equal(b.lastIndex, disk.entries.length);
    assert.equal(b.appliedIndex, disk.applied);
    assert.deepEqual(net.appliedValues('b'), ['x']);
  });
});
