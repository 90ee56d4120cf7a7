// Goal: the simulated storage behaves like the production storage it stands for: Raft's writes from a Ready are lost
// on a crash until their fsync completes (the reason the Ready contract orders "persist, then send", Raft Figure 2);
// entries overwrite the log from their first index; a leader's snapshot replaces the whole log while a compaction
// keeps the entries after it; the state machine's values, applied index and membership change together (one atomic
// batch) and round-trip through snapshot data.
//
// Method: scripted writes, syncs and crashes on a SimDisk, and applies and restores on a KvStateMachine.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Entry, Snapshot } from '../../src/raft/types.ts';
import { bootstrapSnapshot, SimDisk } from './disk.ts';
import { encodeCommand, KvStateMachine } from './kv-state-machine.ts';

function put(index: number, term: number, key: string, value: string): Entry {
  return { kind: 'normal', index, term, data: encodeCommand({ key, value }) };
}

function snapshotOf(machine: KvStateMachine, term: number): Snapshot {
  return { meta: { index: machine.appliedIndex, term, membership: machine.membership }, data: machine.serialise() };
}

describe('SimDisk', () => {
  test('an unsynced write is lost on a crash; a synced one survives', () => {
    const disk = new SimDisk(bootstrapSnapshot(['n1', 'n2', 'n3']));
    disk.write({ snapshot: null, entries: [put(1, 1, 'a', '1')], hardState: { term: 1, vote: 'n1', commit: 0 } });
    disk.crash();
    assert.deepEqual(disk.load().entries, []);
    assert.equal(disk.load().hardState.term, 0);
    disk.write({ snapshot: null, entries: [put(1, 1, 'a', '1')], hardState: { term: 1, vote: 'n1', commit: 0 } });
    disk.sync();
    disk.crash();
    assert.equal(disk.load().entries.length, 1);
    assert.deepEqual(disk.load().hardState, { term: 1, vote: 'n1', commit: 0 });
  });

  test('entries overwrite the log from their first index; a gap is refused', () => {
    const disk = new SimDisk(bootstrapSnapshot(['n1']));
    disk.write({ snapshot: null, entries: [put(1, 1, 'a', '1'), put(2, 1, 'a', '2'), put(3, 1, 'a', '3')], hardState: null });
    disk.sync();
    disk.write({ snapshot: null, entries: [put(2, 2, 'a', 'x')], hardState: null });
    disk.sync();
    assert.deepEqual(disk.load().entries.map((entry) => [entry.index, entry.term]), [[1, 1], [2, 2]]);
    disk.write({ snapshot: null, entries: [put(4, 2, 'a', 'y')], hardState: null });
    assert.throws(() => disk.sync(), /gap/);
  });

  test("a leader's snapshot replaces the whole stored log; a compaction keeps the entries after it", () => {
    const machine = new KvStateMachine({ voters: ['n1'], learners: [] });
    machine.apply(put(1, 1, 'a', '1'));
    const snapshot = snapshotOf(machine, 1);
    const disk = new SimDisk(bootstrapSnapshot(['n1']));
    disk.write({ snapshot: null, entries: [put(1, 1, 'a', '1'), put(2, 1, 'a', '2')], hardState: null });
    disk.sync();
    disk.compact(snapshot);
    assert.deepEqual(disk.load().entries.map((entry) => entry.index), [2]);
    assert.throws(() => disk.compact({ ...snapshot, meta: { ...snapshot.meta, index: 2, term: 9 } }), /does not match/);
    disk.write({ snapshot: { ...snapshot, meta: { ...snapshot.meta, index: 2, term: 1 } }, entries: [], hardState: null });
    disk.sync();
    assert.deepEqual(disk.load().entries, []);
    assert.equal(disk.load().snapshot.index, 2);
  });

  test('a restart reports applied at least the snapshot index', () => {
    const disk = new SimDisk(bootstrapSnapshot(['n1']));
    const other = new KvStateMachine({ voters: ['n1'], learners: [] });
    other.apply(put(1, 1, 'a', '1'));
    disk.write({ snapshot: snapshotOf(other, 1), entries: [], hardState: { term: 1, vote: null, commit: 1 } });
    disk.sync();
    assert.equal(disk.load().applied, 1);
  });
});

describe('KvStateMachine', () => {
  test('applies in order, tracks membership, and round-trips through a snapshot', () => {
    const machine = new KvStateMachine({ voters: ['n1', 'n2'], learners: [] });
    machine.apply(put(1, 1, 'k', 'v1'));
    machine.apply({ kind: 'membership', index: 2, term: 1, change: { type: 'add-learner', node: 'n3' }, membership: { voters: ['n1', 'n2'], learners: ['n3'] } });
    machine.apply({ kind: 'membership', index: 3, term: 1, change: { type: 'promote', node: 'n3' }, membership: { voters: ['n1', 'n2', 'n3'], learners: [] } });
    machine.apply({ kind: 'membership', index: 4, term: 1, change: { type: 'remove', node: 'n1' }, membership: { voters: ['n2', 'n3'], learners: [] } });
    machine.apply({ kind: 'noop', index: 5, term: 2 });
    assert.throws(() => machine.apply(put(7, 2, 'k', 'v2')), /entry 7 applied after 5/);
    assert.deepEqual(machine.membership, { voters: ['n2', 'n3'], learners: [] });
    const copy = new KvStateMachine({ voters: [], learners: [] });
    copy.restore(snapshotOf(machine, 2));
    assert.equal(copy.read('k'), 'v1');
    assert.equal(copy.read('absent'), null);
    assert.equal(copy.appliedIndex, 5);
    assert.equal(copy.digest(), machine.digest());
  });
});
