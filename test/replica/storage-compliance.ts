// Goal: one compliance suite for every RaftStorage (STYLE.md §2: the in-memory twin passes the same suite as the real
// store), pinning the contract of src/replica/storage.ts and the Ready contract of src/raft/types.ts: load/initialise,
// appends, the overwrite of a suffix (Raft §5.3), a snapshot replacing the whole log (Raft §7), the hard state
// (Raft Figure 2), the applied index written atomically with the state machine's batch, compaction (compactLog: the
// stored keyspace becomes the snapshot, as etcd's bbolt backend is its snapshot; an installed snapshot's image is kept
// until then), keyspace order, refusal of writes that break the contract, serialisation of concurrent callers, and
// survival across a reopen.
// Method: each test gets a fresh store from the factory, drives it through the public interface only and checks what
// load() and keyspace() return, before and after reopen() (a real reopen of the directory for LevelDB, a new
// MemoryStorage over the same MemoryDisk for the twin). Contract violations must reject with AssertionError and leave
// the store exactly as it was.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import type { Entry, HardState, Membership, Snapshot, SnapshotMeta } from '../../src/raft/types.ts';
import { AssertionError } from '../../src/assert.ts';
import { isCairnError } from '../../src/errors.ts';
import type { BatchWrite } from '../../src/replica/state-machine.ts';
import type { MemberIdentity, RaftStorage, ReadyWrite, StoredRaftState } from '../../src/replica/storage.ts';

/** StorageHarness is one fresh store: `reopen` closes the current handle and opens the same durable store again. */
export interface StorageHarness {
  readonly storage: RaftStorage;
  readonly reopen: () => Promise<RaftStorage>;
  readonly cleanup: () => Promise<void>;
}

/** MakeStorage builds a fresh, empty store; the suite calls it once per test. */
export type MakeStorage = () => Promise<StorageHarness>;

const identity: MemberIdentity = { clusterId: 'cluster-3b9d', memberId: '10.0.0.1:8848' };
const membership: Membership = { voters: ['10.0.0.1:8848', '10.0.0.2:8848', '10.0.0.3:8848'], learners: ['10.0.0.4:8848'] };
const text = (value: string): Uint8Array => new TextEncoder().encode(value);

/** normal builds a normal entry whose data names its index and term, so a misplaced entry shows. */
export function normal(index: number, term: number, label = ''): Entry {
  return { kind: 'normal', index, term, data: text(`cmd ${index}@${term}${label}`) };
}

function range(from: number, to: number, term: number): Entry[] {
  const entries: Entry[] = [];
  for (let index = from; index <= to; index++) entries.push(normal(index, term));
  return entries;
}

function ready(partial: Partial<ReadyWrite>): ReadyWrite {
  return { snapshot: null, entries: [], hardState: null, ...partial };
}

function snapshotAt(index: number, term: number, data: Uint8Array = text(`image@${index}`)): Snapshot {
  return { meta: metaAt(index, term), data };
}

/** metaAt is the snapshot meta of a compaction at `index`, whose entry has `term`. */
function metaAt(index: number, term: number): SnapshotMeta {
  return { index, term, membership };
}

function put(key: string, value: string): BatchWrite {
  return { type: 'put', key, value: text(value) };
}

async function keyspaceOf(storage: RaftStorage): Promise<Array<[string, string]>> {
  const pairs: Array<[string, string]> = [];
  for await (const batch of storage.keyspace()) for (const [key, value] of batch) pairs.push([key, new TextDecoder().decode(value)]);
  return pairs;
}

async function loaded(storage: RaftStorage): Promise<StoredRaftState> {
  const state = await storage.load();
  assert.ok(state !== null, 'the store is initialised');
  return state;
}

/** initialised returns a store that was initialised (and so may be written). */
async function initialised(harness: StorageHarness): Promise<RaftStorage> {
  await harness.storage.initialise(identity, membership);
  return harness.storage;
}

/** runStorageCompliance registers the suite for one RaftStorage implementation. */
export function runStorageCompliance(name: string, makeStorage: MakeStorage): void {
  const withStore = (run: (harness: StorageHarness) => Promise<void>) => async (): Promise<void> => {
    const harness = await makeStorage();
    try {
      await run(harness);
    } finally {
      await harness.cleanup();
    }
  };

  describe(`RaftStorage compliance: ${name}`, () => {
    registerLifecycle(withStore);
    registerLog(withStore);
    registerSnapshots(withStore);
    registerApplied(withStore);
    registerContract(withStore);
    registerConcurrency(withStore);
    registerView(withStore);
  });
}

type WithStore = (run: (harness: StorageHarness) => Promise<void>) => () => Promise<void>;

function registerLifecycle(withStore: WithStore): void {
  test('load on a fresh store returns null, also after a reopen', withStore(async (harness) => {
    assert.equal(await harness.storage.load(), null);
    assert.equal(await (await harness.reopen()).load(), null);
  }));

  test('initialise then load returns the bootstrap state: snapshot 0 with the membership (the empty keyspace), empty log', withStore(async (harness) => {
    const storage = await initialised(harness);
    const expected: StoredRaftState = {
      identity,
      hardState: { term: 0, vote: null, commit: 0 },
      snapshot: metaAt(0, 0),
      snapshotData: null,
      entries: [],
      applied: 0,
    };
    assert.deepEqual(await storage.load(), expected);
    assert.deepEqual(await (await harness.reopen()).load(), expected);
  }));

  test('peer contacts are recorded durably, before and after initialise, and do not make a store look initialised', withStore(async (harness) => {
    assert.equal(await harness.storage.recordPeerContact('127.0.1.2:8848', 10), 'recorded');
    assert.equal(await harness.storage.recordPeerContact('127.0.1.2:8848', 10), 'known');
    assert.equal(await harness.storage.load(), null, 'a contact record alone is not Raft state');
    const storage = await initialised(harness);
    assert.equal(await storage.recordPeerContact('127.0.1.3:8848', 10), 'recorded');
    const reopened = await harness.reopen();
    assert.deepEqual(await reopened.peerContacts(10), ['127.0.1.2:8848', '127.0.1.3:8848']);
    assert.deepEqual(await reopened.peerContacts(1), ['127.0.1.2:8848'], 'the listing is bounded');
    assert.equal(await reopened.hasPeerContact('127.0.1.3:8848'), true);
    assert.equal(await reopened.hasPeerContact('127.0.1.4:8848'), false);
  }));

  test('peer contacts stop at contactsMax: a new peer beyond it is refused and not recorded, a recorded one stays known, across a reopen', withStore(async (harness) => {
    // Made-up sender ids that sort before a real member's: a listing of the first contactsMax would hide the real one.
    assert.equal(await harness.storage.recordPeerContact('127.0.1.9:8848', 3), 'recorded');
    for (const junk of ['0-a', '0-b']) assert.equal(await harness.storage.recordPeerContact(junk, 3), 'recorded');
    assert.equal(await harness.storage.recordPeerContact('0-c', 3), 'full');
    assert.equal(await harness.storage.hasPeerContact('0-c'), false, 'a refused contact is not recorded');
    assert.equal(await harness.storage.recordPeerContact('127.0.1.9:8848', 3), 'known', 'a recorded peer is still known at the bound');
    const reopened = await harness.reopen();
    assert.equal(await reopened.recordPeerContact('0-d', 3), 'full', 'the bound holds after a reopen (the count is read back)');
    assert.equal(await reopened.recordPeerContact('0-d', 4), 'recorded', 'a higher bound lets one more in');
    assert.equal(await reopened.hasPeerContact('127.0.1.9:8848'), true, 'found by a point lookup whatever sorts before it');
    assert.deepEqual(await reopened.peerContacts(2), ['0-a', '0-b']);
  }));

  test('initialise refuses an initialised store, before and after a reopen', withStore(async (harness) => {
    const storage = await initialised(harness);
    await assert.rejects(storage.initialise(identity, membership), AssertionError);
    const reopened = await harness.reopen();
    await assert.rejects(reopened.initialise({ clusterId: 'other', memberId: 'x' }, membership), AssertionError);
    assert.deepEqual((await loaded(reopened)).identity, identity, 'the identity is unchanged');
  }));

  test('reopen after close keeps everything: identity, hard state, snapshot, log, applied index, keyspace', withStore(async (harness) => {
    const storage = await initialised(harness);
    await storage.writeReady(ready({ entries: range(1, 6, 1), hardState: { term: 1, vote: '10.0.0.2:8848', commit: 0 } }), true);
    await storage.writeApplied([put('ns/a', 'A'), put('ns/b', 'B')], 4, false);
    await storage.compactLog(metaAt(3, 1));
    await storage.writeReady(ready({ entries: [normal(7, 2)], hardState: { term: 2, vote: null, commit: 4 } }), false);
    const before = await loaded(storage);
    const keysBefore = await keyspaceOf(storage);
    const reopened = await harness.reopen();
    assert.deepEqual(await reopened.load(), before);
    assert.deepEqual(await keyspaceOf(reopened), keysBefore);
    assert.deepEqual(before.entries.map((e) => e.index), [4, 5, 6, 7]);
    assert.deepEqual(before.snapshot, metaAt(3, 1));
    assert.equal(before.snapshotData, null);
    assert.equal(before.applied, 4);
  }));

  test('close waits for pending writes, and later calls are refused with CAIRN_SHUTTING_DOWN', withStore(async (harness) => {
    const storage = await initialised(harness);
    const pending = storage.writeReady(ready({ entries: range(1, 3, 1) }), true);
    await storage.close();
    await pending;
    await assert.rejects(storage.writeReady(ready({ entries: [normal(4, 1)] }), true), (e: unknown) => isCairnError(e, 'CAIRN_SHUTTING_DOWN'));
    await assert.rejects(storage.load(), (e: unknown) => isCairnError(e, 'CAIRN_SHUTTING_DOWN'));
    const reopened = await harness.reopen();
    assert.deepEqual((await loaded(reopened)).entries, range(1, 3, 1));
  }));

  test('close waits for a compaction called before it, which completes', withStore(async (harness) => {
    const storage = await initialised(harness);
    await storage.writeReady(ready({ entries: range(1, 4, 1) }), true);
    await storage.writeApplied([put('a', '1')], 3, false);
    const compaction = storage.compactLog(metaAt(3, 1));
    await storage.close();
    await compaction;
    await assert.rejects(storage.compactLog(metaAt(4, 1)), (e: unknown) => isCairnError(e, 'CAIRN_SHUTTING_DOWN'));
    const reopened = await harness.reopen();
    const state = await loaded(reopened);
    assert.deepEqual(state.snapshot, metaAt(3, 1));
    assert.deepEqual(state.entries, range(4, 4, 1));
    assert.deepEqual(await keyspaceOf(reopened), [['a', '1']]);
  }));
}

function registerLog(withStore: WithStore): void {
  test('writeReady appends entries of every kind and persists the hard state', withStore(async (harness) => {
    const storage = await initialised(harness);
    const entries: Entry[] = [
      { kind: 'noop', index: 1, term: 1 },
      normal(2, 1),
      { kind: 'membership', index: 3, term: 1, change: { type: 'add-learner', node: '10.0.0.5:8848' }, membership: { voters: ['10.0.0.1:8848'], learners: ['10.0.0.5:8848'] } },
      { kind: 'normal', index: 4, term: 2, data: new Uint8Array(0) },
    ];
    const hardState: HardState = { term: 2, vote: '10.0.0.1:8848', commit: 3 };
    await storage.writeReady(ready({ entries: entries.slice(0, 2), hardState: { term: 1, vote: '10.0.0.1:8848', commit: 0 } }), true);
    await storage.writeReady(ready({ entries: entries.slice(2), hardState }), true);
    const state = await loaded(storage);
    assert.deepEqual(state.entries, entries);
    assert.deepEqual(state.hardState, hardState);
    assert.deepEqual((await loaded(await harness.reopen())).entries, entries);
  }));

  test('entries overwrite the stored suffix from their first index (Raft §5.3): shorter, equal and longer', withStore(async (harness) => {
    const storage = await initialised(harness);
    await storage.writeReady(ready({ entries: range(1, 5, 1) }), true);
    await storage.writeReady(ready({ entries: range(3, 4, 2) }), true);
    assert.deepEqual((await loaded(storage)).entries, [...range(1, 2, 1), ...range(3, 4, 2)], 'entry 5 is gone');
    await storage.writeReady(ready({ entries: range(2, 7, 3) }), true);
    assert.deepEqual((await loaded(storage)).entries, [...range(1, 1, 1), ...range(2, 7, 3)]);
    await storage.writeReady(ready({ entries: [normal(8, 3)] }), true);
    await storage.writeReady(ready({ entries: range(1, 2, 4) }), true);
    const reopened = await harness.reopen();
    assert.deepEqual((await loaded(reopened)).entries, range(1, 2, 4), 'a rewrite from index 1 drops everything after it');
    await reopened.writeReady(ready({ entries: [normal(3, 4)] }), true);
    assert.deepEqual((await loaded(reopened)).entries, range(1, 3, 4), 'appends continue from the new last index after a reopen');
  }));

  test('a hard state alone and an empty write change nothing else', withStore(async (harness) => {
    const storage = await initialised(harness);
    await storage.writeReady(ready({ entries: range(1, 2, 1) }), true);
    await storage.writeReady(ready({ hardState: { term: 3, vote: null, commit: 2 } }), false);
    await storage.writeReady(ready({}), true);
    const state = await loaded(storage);
    assert.deepEqual(state.entries, range(1, 2, 1));
    assert.deepEqual(state.hardState, { term: 3, vote: null, commit: 2 });
  }));
}

function registerSnapshots(withStore: WithStore): void {
  test('a snapshot in a Ready replaces the whole log (Raft §7), with or without entries after it', withStore(async (harness) => {
    const storage = await initialised(harness);
    await storage.writeReady(ready({ entries: range(1, 5, 1) }), true);
    await storage.writeReady(ready({ snapshot: snapshotAt(10, 2), entries: range(11, 12, 2), hardState: { term: 2, vote: null, commit: 10 } }), true);
    let state = await loaded(storage);
    assert.deepEqual(state.snapshot, metaAt(10, 2));
    assert.deepEqual(state.snapshotData, snapshotAt(10, 2).data);
    assert.deepEqual(state.entries, range(11, 12, 2));
    await storage.writeReady(ready({ snapshot: snapshotAt(11, 2) }), true);
    state = await loaded(storage);
    assert.deepEqual(state.entries, [], 'entry 12, after the snapshot, is replaced too: the whole log goes');
    assert.deepEqual(state.snapshot, metaAt(11, 2));
    assert.deepEqual(state.snapshotData, snapshotAt(11, 2).data);
    const reopened = await harness.reopen();
    assert.deepEqual(await reopened.load(), state);
    await reopened.writeReady(ready({ entries: [normal(12, 3)] }), true);
    assert.deepEqual((await loaded(reopened)).entries, [normal(12, 3)]);
  }));

  test('a snapshot installed by writeReady but not yet restored: load reports applied below the snapshot index, with the image', withStore(async (harness) => {
    // The crash window between persisting a Ready's snapshot and the restore's writeApplied: the keyspace and the
    // applied index are still the old ones while the log they followed is gone. load() reports it as it is
    // (applied < snapshot.index, the image in snapshotData); the driver must restore the snapshot before applying anything.
    const storage = await initialised(harness);
    await storage.writeReady(ready({ entries: range(1, 3, 1) }), true);
    await storage.writeApplied([put('old', 'state')], 2, false);
    await storage.writeReady(ready({ snapshot: snapshotAt(8, 2) }), true);
    const reopened = await harness.reopen();
    const state = await loaded(reopened);
    assert.equal(state.applied, 2);
    assert.equal(state.snapshot.index, 8);
    assert.deepEqual(state.snapshotData, snapshotAt(8, 2).data);
    assert.deepEqual(state.entries, []);
    assert.deepEqual(await keyspaceOf(reopened), [['old', 'state']]);
    await reopened.writeApplied([put('new', 'state')], 8, true);
    assert.deepEqual(await keyspaceOf(reopened), [['new', 'state']]);
    assert.equal((await loaded(await harness.reopen())).applied, 8);
  }));

  test('compactLog makes the keyspace the snapshot and drops the log up to its index only', withStore(async (harness) => {
    const storage = await initialised(harness);
    await storage.writeReady(ready({ entries: range(1, 8, 1) }), true);
    await storage.writeApplied([put('a', '1'), put('b', '2')], 6, false);
    await storage.compactLog(metaAt(5, 1));
    let state = await loaded(storage);
    assert.deepEqual(state.snapshot, metaAt(5, 1));
    assert.equal(state.snapshotData, null, 'no image is stored: the keyspace is the snapshot');
    assert.deepEqual(state.entries, range(6, 8, 1));
    assert.equal(state.applied, 6, 'the applied index is the keyspace\'s, past the snapshot');
    await storage.compactLog(metaAt(6, 1));
    state = await loaded(storage);
    assert.deepEqual(state.snapshot, metaAt(6, 1));
    assert.deepEqual(state.entries, range(7, 8, 1));
    assert.deepEqual(await keyspaceOf(storage), [['a', '1'], ['b', '2']], 'compaction leaves the keyspace as it is');
    const reopened = await harness.reopen();
    assert.deepEqual(await reopened.load(), state);
    assert.deepEqual(await keyspaceOf(reopened), [['a', '1'], ['b', '2']]);
    await reopened.writeReady(ready({ entries: [normal(9, 1)] }), true);
    assert.deepEqual((await loaded(reopened)).entries, range(7, 9, 1), 'appends continue after the compacted log');
  }));

  test('compactLog at the last index leaves an empty log, and appends continue after it', withStore(async (harness) => {
    const storage = await initialised(harness);
    await storage.writeReady(ready({ entries: range(1, 4, 1), hardState: { term: 1, vote: null, commit: 4 } }), true);
    await storage.writeApplied([put('k', 'v')], 4, false);
    await storage.compactLog(metaAt(4, 1));
    const reopened = await harness.reopen();
    const state = await loaded(reopened);
    assert.deepEqual(state.snapshot, metaAt(4, 1));
    assert.deepEqual(state.entries, []);
    assert.equal(state.applied, 4);
    await reopened.writeReady(ready({ entries: [normal(5, 2)] }), true);
    await reopened.writeApplied([put('k', 'w')], 5, false);
    assert.deepEqual((await loaded(await harness.reopen())).entries, [normal(5, 2)]);
  }));

  test('a compaction at or below the stored snapshot changes nothing (one racing an install from the leader)', withStore(async (harness) => {
    const storage = await initialised(harness);
    await storage.writeReady(ready({ entries: range(1, 6, 1) }), true);
    await storage.writeApplied([put('k', 'v')], 5, false);
    await storage.compactLog(metaAt(4, 1));
    let before = await loaded(storage);
    await storage.compactLog(metaAt(4, 1));
    await storage.compactLog(metaAt(2, 1));
    await storage.compactLog(metaAt(0, 0));
    assert.deepEqual(await storage.load(), before);
    // The member compacts at its applied index 5 while a snapshot at 10 from the leader is installed first: the
    // compaction arrives below the stored snapshot and must neither drop the image nor touch the log after it.
    await storage.writeReady(ready({ snapshot: snapshotAt(10, 2), entries: range(11, 12, 2) }), true);
    before = await loaded(storage);
    await storage.compactLog(metaAt(5, 1));
    assert.deepEqual(await storage.load(), before);
    assert.deepEqual((await loaded(await harness.reopen())).snapshotData, snapshotAt(10, 2).data);
  }));

  test('an installed snapshot\'s image is returned as snapshotData, after its restore too, until compactLog drops it', withStore(async (harness) => {
    const storage = await initialised(harness);
    await storage.writeReady(ready({ entries: range(1, 3, 1) }), true);
    await storage.writeApplied([put('old', '1')], 3, false);
    const image = snapshotAt(10, 2, text('leader image'));
    await storage.writeReady(ready({ snapshot: image, entries: range(11, 13, 2), hardState: { term: 2, vote: null, commit: 12 } }), true);
    await storage.writeApplied([put('restored', '10')], 10, true);
    await storage.writeApplied([put('applied', '11')], 11, false);
    let reopened = await harness.reopen();
    let state = await loaded(reopened);
    assert.deepEqual(state.snapshot, image.meta);
    assert.deepEqual(state.snapshotData, image.data, 'kept while the log still starts at the installed snapshot');
    assert.equal(state.applied, 11);
    await reopened.compactLog(metaAt(11, 2));
    state = await loaded(reopened);
    assert.deepEqual(state.snapshot, metaAt(11, 2));
    assert.equal(state.snapshotData, null, 'the keyspace is the snapshot now');
    assert.deepEqual(state.entries, range(12, 13, 2));
    reopened = await harness.reopen();
    assert.deepEqual(await reopened.load(), state);
    assert.deepEqual(await keyspaceOf(reopened), [['applied', '11'], ['restored', '10']]);
  }));

  test('large snapshot data round-trips, and a smaller snapshot leaves nothing of the larger one; an empty image is not "no image"', withStore(async (harness) => {
    const storage = await initialised(harness);
    await storage.writeReady(ready({ entries: range(1, 4, 1) }), true);
    const large = Uint8Array.from({ length: 10_007 }, (_, i) => (i * 31 + 7) & 0xff);
    await storage.writeReady(ready({ snapshot: snapshotAt(10, 1, large) }), true);
    assert.deepEqual((await loaded(await harness.reopen())).snapshotData, large);
    const again = await harness.reopen();
    await again.load();
    await again.writeReady(ready({ snapshot: snapshotAt(11, 1, text('small')) }), true);
    assert.deepEqual((await loaded(await harness.reopen())).snapshotData, text('small'));
    const third = await harness.reopen();
    await third.load();
    await third.writeReady(ready({ snapshot: snapshotAt(12, 1, new Uint8Array(0)) }), true);
    const state = await loaded(await harness.reopen());
    assert.deepEqual(state.snapshotData, new Uint8Array(0), 'an installed empty image is an image (restore it), not the keyspace');
    assert.equal(state.applied, 0);
  }));
}

function registerApplied(withStore: WithStore): void {
  test('writeApplied writes the state batch and the applied index together', withStore(async (harness) => {
    const storage = await initialised(harness);
    await storage.writeReady(ready({ entries: range(1, 3, 1) }), true);
    await storage.writeApplied([put('b', '1'), put('a', '1'), put('c', '1')], 2, false);
    await storage.writeApplied([{ type: 'del', key: 'b' }, put('a', '2'), { type: 'del', key: 'missing' }], 3, false);
    assert.deepEqual(await keyspaceOf(storage), [['a', '2'], ['c', '1']]);
    assert.equal((await loaded(storage)).applied, 3);
    const reopened = await harness.reopen();
    assert.equal((await loaded(reopened)).applied, 3);
    assert.deepEqual(await keyspaceOf(reopened), [['a', '2'], ['c', '1']]);
  }));

  test('writeReady with an applied batch writes entries, hard state, keyspace and applied index in one write', withStore(async (harness) => {
    const storage = await initialised(harness);
    await storage.writeReady(ready({ entries: range(1, 2, 1) }), true);
    // Applies entries of earlier writes and of this one (a follower may learn an entry and its commit together).
    await storage.writeReady(ready({ entries: range(3, 4, 1), hardState: { term: 1, vote: null, commit: 3 }, applied: { writes: [put('a', '1'), put('b', '1')], index: 3 } }), true);
    // A commit-only Ready: no entries, the hard state and what the newly committed entry changed.
    await storage.writeReady(ready({ hardState: { term: 1, vote: null, commit: 4 }, applied: { writes: [{ type: 'del', key: 'a' }, put('c', '4')], index: 4 } }), false);
    const check = async (store: RaftStorage): Promise<void> => {
      const state = await loaded(store);
      assert.equal(state.applied, 4);
      assert.deepEqual(state.hardState, { term: 1, vote: null, commit: 4 });
      assert.deepEqual(state.entries, range(1, 4, 1));
      assert.deepEqual(await keyspaceOf(store), [['b', '1'], ['c', '4']]);
    };
    await check(storage);
    await check(await harness.reopen());
  }));

  test('clearKeyspace replaces the whole keyspace in the same batch (a snapshot restore)', withStore(async (harness) => {
    const storage = await initialised(harness);
    await storage.writeReady(ready({ entries: range(1, 2, 1) }), true);
    const many = Array.from({ length: 2500 }, (_, i) => put(`old/${String(i).padStart(5, '0')}`, 'x'));
    await storage.writeApplied([...many, put('kept', 'old')], 1, false);
    await storage.writeReady(ready({ snapshot: snapshotAt(9, 2) }), true);
    await storage.writeApplied([put('kept', 'new'), put('z', 'restored')], 9, true);
    assert.deepEqual(await keyspaceOf(storage), [['kept', 'new'], ['z', 'restored']]);
    const state = await loaded(await harness.reopen());
    assert.equal(state.applied, 9);
    assert.deepEqual(state.snapshot, metaAt(9, 2));
  }));

  test('keyspace iterates in UTF-8 byte order, as LevelDB orders keys', withStore(async (harness) => {
    const storage = await initialised(harness);
    await storage.writeReady(ready({ entries: [normal(1, 1)] }), true);
    // '\u{10000}' sorts before '\uffff' by UTF-16 code units but after it by UTF-8 bytes (F0.. > EF..).
    const keys = ['b', '\u{10000}', 'a/2', '\uffff', 'é', 'a', 'a/10', 'B', ''];
    await storage.writeApplied(keys.map((key) => put(key, key)), 1, false);
    const expected = ['', 'B', 'a', 'a/10', 'a/2', 'b', 'é', '\uffff', '\u{10000}'];
    assert.deepEqual((await keyspaceOf(storage)).map(([key]) => key), expected);
    for await (const batch of storage.keyspace()) for (const [, value] of batch) assert.equal(Object.getPrototypeOf(value), Uint8Array.prototype);
    assert.deepEqual((await keyspaceOf(await harness.reopen())).map(([key]) => key), expected);
  }));
}

/** viewOf reads a keyspaceView to its end as [key, text] pairs. */
async function viewOf(storage: RaftStorage): Promise<{ applied: number; trusted: boolean; pairs: Array<[string, string]> }> {
  assert.ok(storage.keyspaceView !== undefined, 'the store offers keyspaceView');
  const view = await storage.keyspaceView();
  const pairs: Array<[string, string]> = [];
  for await (const batch of view.batches) for (const [key, value] of batch) pairs.push([key, new TextDecoder().decode(value)]);
  return { applied: view.applied, trusted: view.trusted, pairs };
}

function registerView(withStore: WithStore): void {
  test('keyspaceView: the keyspace and its applied index as of the call, later writes unseen; untrusted while a snapshot is unrestored', withStore(async (harness) => {
    const storage = await initialised(harness);
    await storage.writeReady(ready({ entries: range(1, 6, 1) }), true);
    await storage.writeApplied([put('b', '1'), put('a', '1')], 2, false);
    assert.ok(storage.keyspaceView !== undefined, 'the store offers keyspaceView');
    const view = await storage.keyspaceView();
    await storage.writeApplied([put('a', '2'), put('c', '2'), { type: 'del', key: 'b' }], 4, false);
    const pairs: Array<[string, string]> = [];
    for await (const batch of view.batches) for (const [key, value] of batch) pairs.push([key, new TextDecoder().decode(value)]);
    assert.deepEqual({ applied: view.applied, trusted: view.trusted, pairs }, { applied: 2, trusted: true, pairs: [['a', '1'], ['b', '1']] });
    assert.deepEqual(await viewOf(storage), { applied: 4, trusted: true, pairs: [['a', '2'], ['c', '2']] });
    await storage.writeReady(ready({ snapshot: snapshotAt(9, 2) }), true);
    assert.deepEqual((await viewOf(storage)).trusted, false);
    await storage.writeApplied([put('z', '9')], 9, true);
    assert.deepEqual(await viewOf(storage), { applied: 9, trusted: true, pairs: [['z', '9']] });
    const reopened = await harness.reopen();
    await loaded(reopened);
    assert.deepEqual(await viewOf(reopened), { applied: 9, trusted: true, pairs: [['z', '9']] });
  }));
}

function registerContract(withStore: WithStore): void {
  test('writes before load() or initialise() are refused', withStore(async (harness) => {
    await initialised(harness);
    const reopened = await harness.reopen();
    await assert.rejects(reopened.writeReady(ready({ entries: [normal(1, 1)] }), true), AssertionError);
    await assert.rejects(reopened.writeApplied([], 0, false), AssertionError);
    await assert.rejects(reopened.compactLog(metaAt(0, 0)), AssertionError);
  }));

  test('writes that break the contract are refused and leave the store as it was', withStore(async (harness) => {
    const storage = await initialised(harness);
    await storage.writeReady(ready({ entries: range(1, 4, 2), hardState: { term: 2, vote: '10.0.0.2:8848', commit: 0 } }), true);
    await storage.writeApplied([put('k', 'v')], 2, false);
    await storage.compactLog(metaAt(2, 2));
    const before = await loaded(storage);
    const refused: ReadonlyArray<readonly [string, () => Promise<void>]> = [
      ['a hole after the last index', () => storage.writeReady(ready({ entries: [normal(6, 2)] }), true)],
      ['entries at or below the snapshot', () => storage.writeReady(ready({ entries: [normal(2, 2)] }), true)],
      ['entries not contiguous', () => storage.writeReady(ready({ entries: [normal(5, 2), normal(7, 2)] }), true)],
      ['terms decreasing within a write', () => storage.writeReady(ready({ entries: [normal(5, 3), normal(6, 2)] }), true)],
      ['the term going back', () => storage.writeReady(ready({ hardState: { term: 1, vote: null, commit: 0 } }), true)],
      ['the vote changing within a term', () => storage.writeReady(ready({ hardState: { term: 2, vote: '10.0.0.3:8848', commit: 0 } }), true)],
      ['a snapshot not newer than the stored one', () => storage.writeReady(ready({ snapshot: snapshotAt(2, 2) }), true)],
      ['a bad entry together with a good hard state', () => storage.writeReady(ready({ entries: [{ kind: 'noop', index: 5, term: 0 }], hardState: { term: 5, vote: null, commit: 0 } }), true)],
      ['applied going back', () => storage.writeApplied([put('x', 'y')], 1, false)],
      ['applied beyond the last index', () => storage.writeApplied([put('x', 'y')], 5, false)],
      ['a Ready applying beyond its own last entry', () => storage.writeReady(ready({ entries: [normal(5, 2)], applied: { writes: [put('x', 'y')], index: 6 } }), true)],
      ['a Ready applying below the stored applied index (its entries are refused with it)', () => storage.writeReady(ready({ entries: [normal(5, 2)], applied: { writes: [put('x', 'y')], index: 1 } }), true)],
      ['a compaction beyond the applied index (the keyspace has not reached it)', () => storage.compactLog(metaAt(3, 2))],
      ['a compaction beyond the last index', () => storage.compactLog(metaAt(9, 2))],
    ];
    for (const [name, write] of refused) await assert.rejects(write(), AssertionError, name);
    assert.deepEqual(await storage.load(), before);
    assert.deepEqual(await keyspaceOf(storage), [['k', 'v']]);
    await storage.writeReady(ready({ entries: [normal(5, 2)], hardState: { term: 3, vote: null, commit: 0 } }), true);
    assert.deepEqual((await loaded(storage)).entries, [...range(3, 4, 2), normal(5, 2)], 'the store still accepts valid writes');
    await storage.writeApplied([], 4, false);
    await storage.compactLog(metaAt(4, 2));
    assert.deepEqual((await loaded(await harness.reopen())).entries, [normal(5, 2)], 'and a valid compaction');
  }));

  test('stored records are copies: mutating what was written or loaded changes nothing', withStore(async (harness) => {
    const storage = await initialised(harness);
    const entry = normal(1, 1);
    const value = text('value');
    await storage.writeReady(ready({ entries: [entry] }), true);
    await storage.writeApplied([{ type: 'put', key: 'k', value }], 1, false);
    if (entry.kind === 'normal') entry.data.fill(0);
    value.fill(0);
    const first = await loaded(storage);
    const firstEntry = first.entries[0];
    if (firstEntry?.kind === 'normal') firstEntry.data.fill(1);
    assert.deepEqual((await loaded(storage)).entries, [normal(1, 1)]);
    assert.deepEqual(await keyspaceOf(storage), [['k', 'value']]);
  }));
}

function registerConcurrency(withStore: WithStore): void {
  test('concurrent callers are serialised in call order', withStore(async (harness) => {
    const storage = await initialised(harness);
    const writes: Promise<void>[] = [];
    for (let index = 1; index <= 40; index++) {
      writes.push(storage.writeReady(ready({ entries: [normal(index, 1)], hardState: { term: 1, vote: null, commit: index - 1 } }), index % 2 === 0));
      // Each apply is checked against the last index when it runs, so it only passes if the append before it ran first.
      writes.push(storage.writeApplied([put(`k${String(index).padStart(2, '0')}`, String(index))], index, false));
    }
    writes.push(storage.compactLog(metaAt(30, 1)));
    await Promise.all(writes);
    const state = await loaded(storage);
    assert.deepEqual(state.entries, range(31, 40, 1));
    assert.equal(state.applied, 40);
    assert.deepEqual(state.hardState, { term: 1, vote: null, commit: 39 });
    assert.equal((await keyspaceOf(storage)).length, 40);
  }));

  test('compactLog sees every write called before it, and writes called after it are neither lost nor reordered', withStore(async (harness) => {
    const storage = await initialised(harness);
    const writes: Promise<void>[] = [];
    for (let index = 1; index <= 20; index++) {
      writes.push(storage.writeReady(ready({ entries: [normal(index, 1)] }), false));
      writes.push(storage.writeApplied([put(`k${String(index).padStart(2, '0')}`, String(index))], index, false));
    }
    // Refused unless the twenty applies called before it ran first (the applied index must have reached 20).
    writes.push(storage.compactLog(metaAt(20, 1)));
    // Called after it, not awaited: whether they run before or after the compaction's own batch, none is lost.
    writes.push(storage.writeReady(ready({ entries: range(21, 22, 2), hardState: { term: 2, vote: null, commit: 21 } }), true));
    writes.push(storage.writeApplied([put('k21', '21')], 21, false));
    await Promise.all(writes);
    const check = async (store: RaftStorage): Promise<void> => {
      const state = await loaded(store);
      assert.deepEqual(state.snapshot, metaAt(20, 1));
      assert.equal(state.snapshotData, null);
      assert.deepEqual(state.entries, range(21, 22, 2));
      assert.equal(state.applied, 21);
      assert.equal((await keyspaceOf(store)).length, 21);
    };
    await check(storage);
    await check(await harness.reopen());
  }));
}
