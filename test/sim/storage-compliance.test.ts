// Goal: the store the simulator runs on (SimDisk and its KvStateMachine, disk.ts) honours the same RaftStorage
// contract as LevelStorage and MemoryStorage (the CP-cluster requirement: one shared compliance suite for the LevelDB
// store and the simulator's in-memory store), and its crash model is pinned where it matters: an unsynced Ready batch
// is lost by a crash, a synced one is not, and no later write overtakes an unsynced one.
// Method: the shared suite (test/replica/storage-compliance.ts) over SimStorage (sim-storage.ts), with reopen = a new
// SimStorage over the same SimDrive (a process restart: unsynced writes stay readable). Then sim-only tests: a crash
// (SimDrive.crash, i.e. SimDisk.crash, as NodeDriver.crash does) before a reopen; a SimDisk driven exactly as
// NodeDriver drives it, read back through SimStorage; and the places where the sim's store differs from LevelDB.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import type { Entry, Snapshot } from '../../src/raft/types.ts';
import { AssertionError } from '../../src/assert.ts';
import type { RaftStorage, ReadyWrite, StoredRaftState } from '../../src/replica/storage.ts';
import { runStorageCompliance } from '../replica/storage-compliance.ts';
import { bootstrapSnapshot, SimDisk } from './disk.ts';
import { encodeCommand } from './kv-state-machine.ts';
import { SimDrive, SimStorage } from './sim-storage.ts';

runStorageCompliance('sim disk', async () => {
  const drive = new SimDrive();
  let current: RaftStorage = new SimStorage(drive);
  return {
    storage: current,
    reopen: async () => {
      await current.close();
      current = new SimStorage(drive);
      return current;
    },
    cleanup: async () => {
      await current.close();
    },
  };
});

const identity = { clusterId: 'sim', memberId: 'n1' };
const membership = { voters: ['n1', 'n2', 'n3'], learners: [] };
const text = (value: string): Uint8Array => new TextEncoder().encode(value);

function put(index: number, term: number, key: string, value: string): Entry {
  return { kind: 'normal', index, term, data: encodeCommand({ key, value }) };
}

function ready(partial: Partial<ReadyWrite>): ReadyWrite {
  return { snapshot: null, entries: [], hardState: null, ...partial };
}

async function loaded(storage: RaftStorage): Promise<StoredRaftState> {
  const state = await storage.load();
  assert.ok(state !== null, 'the store is initialised');
  return state;
}

async function keyspaceOf(storage: RaftStorage): Promise<Array<[string, string]>> {
  const pairs: Array<[string, string]> = [];
  for await (const batch of storage.keyspace()) for (const [key, value] of batch) pairs.push([key, new TextDecoder().decode(value)]);
  return pairs;
}

/** restartAfterCrash is NodeDriver.crash followed by a start: the unsynced batch is lost, then the store is reopened. */
async function restartAfterCrash(storage: RaftStorage, drive: SimDrive): Promise<RaftStorage> {
  await storage.close();
  drive.crash();
  return new SimStorage(drive);
}

describe('SimStorage: crashes (sim only)', () => {
  test('a crash loses the unsynced Ready batch and keeps the synced ones, the applied state and the contacts', async () => {
    const drive = new SimDrive();
    const storage = new SimStorage(drive);
    await storage.initialise(identity, membership);
    await storage.recordPeerContact('n2', 10);
    await storage.writeReady(ready({ entries: [put(1, 1, 'a', '1'), put(2, 1, 'b', '2')], hardState: { term: 1, vote: 'n1', commit: 1 } }), true);
    await storage.writeApplied([{ type: 'put', key: 'a', value: text('1') }], 1, false);
    await storage.writeReady(ready({ entries: [put(3, 2, 'c', '3')], hardState: { term: 2, vote: 'n2', commit: 2 } }), false);
    assert.deepEqual((await loaded(storage)).entries.map((e) => e.index), [1, 2, 3], 'an unsynced write is readable at once');
    const restarted = await restartAfterCrash(storage, drive);
    const state = await loaded(restarted);
    assert.deepEqual(state.entries.map((e) => e.index), [1, 2]);
    assert.deepEqual(state.hardState, { term: 1, vote: 'n1', commit: 1 });
    assert.equal(state.applied, 1);
    assert.deepEqual(await keyspaceOf(restarted), [['a', '1']]);
    assert.deepEqual(await restarted.peerContacts(10), ['n2']);
    await restarted.writeReady(ready({ entries: [put(3, 3, 'c', 'x')], hardState: { term: 3, vote: null, commit: 2 } }), true);
    assert.deepEqual((await loaded(restarted)).entries.map((e) => [e.index, e.term]), [[1, 1], [2, 1], [3, 3]]);
  });

  test('a close and reopen without a crash (a process restart) keeps the unsynced batch; a crash after it still loses it', async () => {
    const drive = new SimDrive();
    const storage = new SimStorage(drive);
    await storage.initialise(identity, membership);
    await storage.writeReady(ready({ entries: [put(1, 1, 'a', '1')] }), false);
    await storage.close();
    const reopened = new SimStorage(drive);
    assert.deepEqual((await loaded(reopened)).entries.map((e) => e.index), [1]);
    const crashed = await restartAfterCrash(reopened, drive);
    assert.deepEqual((await loaded(crashed)).entries, []);
  });

  test('no write overtakes an unsynced batch (write-ahead-log order): a later write makes it durable first', async () => {
    const later: ReadonlyArray<readonly [string, (storage: RaftStorage) => Promise<void>]> = [
      ['a synced writeReady', (storage) => storage.writeReady(ready({ entries: [put(3, 1, 'c', '3')] }), true)],
      ['an unsynced writeReady (more durable than LevelDB, which may lose both)', (storage) => storage.writeReady(ready({ entries: [put(3, 1, 'c', '3')] }), false)],
      ['writeApplied (durable at once in the sim)', (storage) => storage.writeApplied([], 2, false)],
      ['compactLog', async (storage) => {
        await storage.writeApplied([], 1, false);
        await storage.compactLog({ index: 1, term: 1, membership });
      }],
      ['a compactLog below the stored snapshot (a no-op that still makes earlier writes durable, as LevelStorage\'s flush does)', (storage) => storage.compactLog({ index: 0, term: 0, membership })],
    ];
    for (const [name, write] of later) {
      const drive = new SimDrive();
      const storage = new SimStorage(drive);
      await storage.initialise(identity, membership);
      await storage.writeReady(ready({ entries: [put(1, 1, 'a', '1')] }), true);
      await storage.writeReady(ready({ entries: [put(2, 1, 'b', '2')], hardState: { term: 1, vote: null, commit: 2 } }), false);
      await write(storage);
      const state = await loaded(await restartAfterCrash(storage, drive));
      assert.ok(state.snapshot.index + state.entries.length >= 2, `${name}: entry 2 survives the crash`);
      assert.deepEqual(state.hardState, { term: 1, vote: null, commit: 2 }, name);
    }
  });

  test('a crash that loses an unsynced install loses its image: the compacted keyspace is the snapshot again', async () => {
    const drive = new SimDrive();
    const storage = new SimStorage(drive);
    await storage.initialise(identity, membership);
    await storage.writeReady(ready({ entries: [put(1, 1, 'a', '1'), put(2, 1, 'b', '2')], hardState: { term: 1, vote: null, commit: 2 } }), true);
    await storage.writeApplied([{ type: 'put', key: 'a', value: text('1') }, { type: 'put', key: 'b', value: text('2') }], 2, false);
    await storage.compactLog({ index: 2, term: 1, membership });
    const image = text('leader image');
    await storage.writeReady(ready({ snapshot: { meta: { index: 10, term: 2, membership }, data: image } }), false);
    let state = await loaded(storage);
    assert.equal(state.snapshot.index, 10, 'the unsynced install is readable at once');
    assert.deepEqual(state.snapshotData, image);
    const restarted = await restartAfterCrash(storage, drive);
    state = await loaded(restarted);
    assert.deepEqual(state.snapshot, { index: 2, term: 1, membership });
    assert.equal(state.snapshotData, null);
    assert.equal(state.applied, 2);
    assert.deepEqual(await keyspaceOf(restarted), [['a', '1'], ['b', '2']]);
  });

  test('known difference from LevelDB: writeApplied survives a crash (LevelStorage does not fsync it; a power loss may take it back)', async () => {
    const drive = new SimDrive();
    const storage = new SimStorage(drive);
    await storage.initialise(identity, membership);
    await storage.writeReady(ready({ entries: [put(1, 1, 'a', '1')], hardState: { term: 1, vote: null, commit: 1 } }), true);
    await storage.writeApplied([{ type: 'put', key: 'a', value: text('1') }], 1, false);
    const restarted = await restartAfterCrash(storage, drive);
    assert.equal((await loaded(restarted)).applied, 1);
    assert.deepEqual(await keyspaceOf(restarted), [['a', '1']]);
  });
});

describe('SimStorage: the simulator\'s own disk (sim only)', () => {
  test('a SimDisk driven as NodeDriver drives it reads back through SimStorage as SimDisk.load() gives it', async () => {
    // NodeDriver: pump writes the Ready as one unsynced batch, completeReady syncs it and applies, compact snapshots.
    const disk = new SimDisk(bootstrapSnapshot(['n1', 'n2', 'n3']));
    disk.write({ snapshot: null, entries: [put(1, 1, 'a', '1'), put(2, 1, 'b', '2'), put(3, 1, 'a', '3')], hardState: { term: 1, vote: 'n1', commit: 2 } });
    disk.sync();
    disk.stateMachine.apply(put(1, 1, 'a', '1'));
    disk.stateMachine.apply(put(2, 1, 'b', '2'));
    const machine = disk.stateMachine;
    const snapshot: Snapshot = { meta: { index: 2, term: 1, membership: machine.membership }, data: machine.serialise() };
    disk.compact(snapshot);
    disk.write({ snapshot: null, entries: [put(4, 1, 'c', '4')], hardState: null });
    const storage = new SimStorage(new SimDrive(disk, identity));
    const state = await loaded(storage);
    const durable = disk.load();
    assert.deepEqual(state.hardState, durable.hardState);
    assert.deepEqual(state.snapshot, durable.snapshot);
    assert.equal(state.snapshotData, null, 'the simulator\'s own compaction is a keyspace snapshot: its state machine');
    assert.deepEqual(state.entries, [...durable.entries, put(4, 1, 'c', '4')], 'the unsynced batch is readable');
    assert.equal(state.applied, durable.applied);
    assert.deepEqual(await keyspaceOf(storage), [['a', '1'], ['b', '2']]);
    // And the other way: what SimStorage writes is what a restarting core would load from the disk.
    await storage.writeReady(ready({ hardState: { term: 2, vote: null, commit: 4 } }), true);
    await storage.writeApplied([{ type: 'put', key: 'a', value: text('3') }, { type: 'put', key: 'c', value: text('4') }], 4, false);
    assert.deepEqual(disk.load().entries.map((e) => e.index), [3, 4]);
    assert.deepEqual(disk.load().hardState, { term: 2, vote: null, commit: 4 });
    assert.equal(disk.load().applied, 4);
    assert.equal(disk.stateMachine.read('a'), '3');
    assert.equal(disk.stateMachine.read('c'), '4');
  });

  test('values that are not UTF-8 are refused (the sim\'s state machine holds strings), and nothing changes', async () => {
    const storage = new SimStorage();
    await storage.initialise(identity, membership);
    await storage.writeReady(ready({ entries: [put(1, 1, 'a', '1')] }), true);
    await assert.rejects(storage.writeApplied([{ type: 'put', key: 'k', value: new Uint8Array([0xff, 0xfe]) }], 1, false), AssertionError);
    assert.equal((await loaded(storage)).applied, 0);
    assert.deepEqual(await keyspaceOf(storage), []);
  });

  test('compactLog refuses a term that is not the log\'s at its index (SimDisk.compact\'s check), and nothing changes', async () => {
    const storage = new SimStorage();
    await storage.initialise(identity, membership);
    await storage.writeReady(ready({ entries: [put(1, 1, 'a', '1'), put(2, 2, 'b', '2')] }), true);
    await storage.writeApplied([], 2, false);
    const before = await loaded(storage);
    await assert.rejects(storage.compactLog({ index: 2, term: 1, membership }), AssertionError);
    assert.deepEqual(await storage.load(), before);
  });
});
