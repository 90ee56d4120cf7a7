// MemoryStorage: the in-memory twin of LevelStorage (STYLE.md §2). It passes the same compliance suite
// (test/replica/storage-compliance.ts) and applies the same contract checks, exported here as the reference model of
// RaftStorage's rules: LevelStorage imports them, so both stores refuse exactly the same writes.
//
// Durability model: every write is durable the moment it resolves, synced or not; there is no crash that loses
// unsynced writes (the simulator's SimDisk models that). A restart is a new MemoryStorage over the same MemoryDisk.
// Records are deep-copied on the way in and out (entries through the real codec, so anything LevelStorage could not
// store is refused here too), so callers can neither alias nor mutate stored state.
import type { Entry, HardState, Membership, Snapshot, SnapshotMeta } from '../raft/types.ts';
import { assert } from '../assert.ts';
import { CairnError } from '../errors.ts';
import { decodeEntry, decodeHardState, decodeSnapshotMeta, encodeEntry, encodeHardState, encodeSnapshotMeta } from './codec.ts';
import type { BatchWrite } from './state-machine.ts';
import { KEYSPACE_BATCH_RECORDS, type KeyspaceBatch, type KeyspaceView, type MemberIdentity, type PeerContactOutcome, type RaftStorage, type ReadyWrite, type StoredRaftState } from './storage.ts';

// --- The contract both stores enforce --------------------------------------------------------------------------

/**
 * StoreBounds is what a store keeps in memory to check and plan writes. Invariants:
 * snapshotIndex <= lastIndex; the log holds exactly the entries (snapshotIndex, lastIndex]; applied <= lastIndex.
 */
export interface StoreBounds {
  readonly snapshotIndex: number;
  readonly lastIndex: number;
  readonly applied: number;
  readonly hardState: HardState;
}

/** assertEntriesContiguous asserts that a batch of entries has consecutive indexes and non-decreasing terms (Raft §5.3). */
export function assertEntriesContiguous(entries: readonly Entry[]): void {
  for (let i = 1; i < entries.length; i++) {
    const previous = entries[i - 1];
    const entry = entries[i];
    assert(previous !== undefined && entry !== undefined, 'entries: unreachable hole in the array');
    assert(entry.index === previous.index + 1, `entries: index ${entry.index} follows ${previous.index}`);
    assert(entry.term >= previous.term, `entries: term ${entry.term} at ${entry.index} after term ${previous.term}`);
  }
}

/** assertHardStateSuccessor asserts that a hard state may replace `previous`: the term never decreases, a vote never changes within a term. */
export function assertHardStateSuccessor(previous: HardState, next: HardState): void {
  assert(next.term >= previous.term, `hard state: term ${next.term} below stored term ${previous.term}`);
  if (next.term === previous.term && previous.vote !== null) {
    assert(next.vote === previous.vote, `hard state: vote changed from ${previous.vote} to ${String(next.vote)} within term ${next.term}`);
  }
}

/**
 * boundsAfterReadyWrite asserts that `write` is a valid successor of the stored state and returns the bounds after it.
 * A snapshot must be newer than the stored one and replaces the whole log; entries must start after the snapshot and
 * no later than lastIndex + 1 (no hole), and everything stored from their first index on is replaced.
 */
export function boundsAfterReadyWrite(bounds: StoreBounds, write: ReadyWrite): StoreBounds {
  let { snapshotIndex, lastIndex } = bounds;
  if (write.snapshot !== null) {
    const index = write.snapshot.meta.index;
    assert(index > snapshotIndex, `writeReady: snapshot at ${index} is not newer than the stored one at ${snapshotIndex}`);
    snapshotIndex = index;
    lastIndex = index;
  }
  assertEntriesContiguous(write.entries);
  const first = write.entries[0];
  const last = write.entries[write.entries.length - 1];
  if (first !== undefined && last !== undefined) {
    assert(first.index > snapshotIndex, `writeReady: entry ${first.index} is at or below the snapshot at ${snapshotIndex}`);
    assert(first.index <= lastIndex + 1, `writeReady: entry ${first.index} leaves a hole after the last index ${lastIndex}`);
    lastIndex = last.index;
  }
  if (write.hardState !== null) assertHardStateSuccessor(bounds.hardState, write.hardState);
  return { snapshotIndex, lastIndex, applied: bounds.applied, hardState: write.hardState ?? bounds.hardState };
}

/** assertAppliedWrite asserts that `applied` may be recorded: it never decreases and never passes the last index. */
export function assertAppliedWrite(bounds: StoreBounds, writes: readonly BatchWrite[], applied: number): void {
  assert(Number.isSafeInteger(applied), `writeApplied: applied ${applied} is not a safe integer`);
  assert(applied >= bounds.applied, `writeApplied: applied ${applied} below the stored ${bounds.applied}`);
  assert(applied <= bounds.lastIndex, `writeApplied: applied ${applied} beyond the last index ${bounds.lastIndex}`);
  for (const write of writes) {
    assert(typeof write.key === 'string', 'writeApplied: keys are strings');
    assert(write.type === 'del' || write.value instanceof Uint8Array, `writeApplied: value of ${write.key} is not bytes`);
  }
}

/**
 * assertCompaction asserts that the log may be compacted at `meta.index` (above the stored snapshot: one at or below
 * it changes nothing): reached by the stored keyspace, which becomes the snapshot, hence within the log.
 */
export function assertCompaction(bounds: StoreBounds, meta: SnapshotMeta): void {
  const index = meta.index;
  assert(Number.isSafeInteger(index) && index >= bounds.snapshotIndex, `compactLog: snapshot at ${index} is older than the stored one at ${bounds.snapshotIndex}`);
  assert(index <= bounds.applied, `compactLog: snapshot at ${index} is beyond the stored keyspace's applied index ${bounds.applied}`);
}

/** assertIdentity asserts that a member identity names a cluster and a member. */
export function assertIdentity(identity: MemberIdentity): void {
  assert(identity.clusterId !== '', 'initialise: clusterId must not be empty');
  assert(identity.memberId !== '', 'initialise: memberId must not be empty');
}

/** batchesOf hands out batches already read, as an AsyncIterable. */
export async function* batchesOf(batches: readonly KeyspaceBatch[]): AsyncIterable<KeyspaceBatch> {
  yield* batches;
}

/** compareKeys orders state-machine keys as LevelDB does: by their UTF-8 bytes (not by UTF-16 code units). */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

// --- Deep copies through the codec -------------------------------------------------------------------------------

function copyEntry(entry: Entry): Entry {
  return decodeEntry(encodeEntry(entry));
}

function copySnapshot(snapshot: Snapshot): Snapshot {
  return { meta: copyMeta(snapshot.meta), data: new Uint8Array(snapshot.data) };
}

function copyMeta(meta: SnapshotMeta): SnapshotMeta {
  return decodeSnapshotMeta(encodeSnapshotMeta(meta));
}

function copyHardState(hardState: HardState): HardState {
  return decodeHardState(encodeHardState(hardState));
}

// --- The store ----------------------------------------------------------------------------------------------------

/** MemoryImage is everything a MemoryDisk holds once initialised. Invariant: entries are (snapshot index, ...], contiguous. */
interface MemoryImage {
  readonly identity: MemberIdentity;
  hardState: HardState;
  snapshot: SnapshotMeta;
  /** snapshotData is the image of a snapshot installed from the leader; null once the keyspace is the snapshot. */
  snapshotData: Uint8Array | null;
  entries: Entry[];
  applied: number;
  readonly state: Map<string, Uint8Array>;
}

/** MemoryDisk is the durable medium of a MemoryStorage; it outlives the store, so a new MemoryStorage over it is a restart. */
export class MemoryDisk {
  /** image is null until initialise() succeeds. */
  image: MemoryImage | null = null;
  /** contacts are the peers recorded by recordPeerContact; they outlive the image, as on disk. */
  readonly contacts = new Set<string>();
}

/**
 * MemoryStorage implements RaftStorage in memory with LevelStorage's semantics. As with LevelStorage, load() or
 * initialise() must come first: they establish the bounds every later write is checked against.
 */
export class MemoryStorage implements RaftStorage {
  /** disk is the durable medium; pass it to a new MemoryStorage to simulate a restart. */
  readonly disk: MemoryDisk;
  private loaded = false;
  private closed = false;

  constructor(disk: MemoryDisk = new MemoryDisk()) {
    this.disk = disk;
  }

  /** load returns deep copies of the stored state, or null when the disk was never initialised. */
  async load(): Promise<StoredRaftState | null> {
    this.assertOpen('load');
    const image = this.disk.image;
    if (image === null) return null;
    this.loaded = true;
    return {
      identity: { ...image.identity },
      hardState: { ...image.hardState },
      snapshot: copyMeta(image.snapshot),
      snapshotData: image.snapshotData === null ? null : new Uint8Array(image.snapshotData),
      entries: image.entries.map(copyEntry),
      applied: image.applied,
    };
  }

  /** initialise writes the identity and the bootstrap state; it refuses an initialised disk. */
  async initialise(identity: MemberIdentity, membership: Membership): Promise<void> {
    this.assertOpen('initialise');
    assert(this.disk.image === null, 'initialise: the store is already initialised');
    assertIdentity(identity);
    const snapshot = copyMeta({ index: 0, term: 0, membership });
    this.disk.image = {
      identity: { clusterId: identity.clusterId, memberId: identity.memberId },
      hardState: { term: 0, vote: null, commit: 0 },
      snapshot,
      snapshotData: null,
      entries: [],
      applied: 0,
      state: new Map(),
    };
    this.loaded = true;
  }

  /** writeReady stores a Ready's snapshot, entries and hard state; every write is durable, so `sync` changes nothing. */
  async writeReady(write: ReadyWrite, _sync: boolean): Promise<void> {
    const image = this.image('writeReady');
    const next = boundsAfterReadyWrite(boundsOf(image), write);
    const applied = write.applied ?? null;
    if (applied !== null) assertAppliedWrite(next, applied.writes, applied.index);
    const snapshot = write.snapshot === null ? null : copySnapshot(write.snapshot);
    const entries = write.entries.map(copyEntry);
    const hardState = write.hardState === null ? null : copyHardState(write.hardState);
    const appliedCopies = applied === null ? [] : copyWrites(applied.writes);
    // Every check and copy is done: from here on nothing throws, so the write is all or nothing.
    if (snapshot !== null) {
      image.snapshot = snapshot.meta;
      image.snapshotData = snapshot.data;
      image.entries = [];
    }
    const first = entries[0];
    if (first !== undefined) {
      image.entries.length = first.index - image.snapshot.index - 1;
      image.entries.push(...entries);
    }
    if (hardState !== null) image.hardState = hardState;
    if (applied !== null) applyWrites(image, appliedCopies, applied.index);
  }

  /** writeApplied applies a state-machine batch and records `applied`, all or nothing. */
  async writeApplied(writes: readonly BatchWrite[], applied: number, clearKeyspace: boolean): Promise<void> {
    const image = this.image('writeApplied');
    assertAppliedWrite(boundsOf(image), writes, applied);
    const copies = copyWrites(writes);
    if (clearKeyspace) image.state.clear();
    applyWrites(image, copies, applied);
  }

  /** compactLog makes the keyspace the snapshot at `meta.index` and drops the log up to it (and any stored image). */
  async compactLog(meta: SnapshotMeta): Promise<void> {
    const image = this.image('compactLog');
    if (meta.index <= image.snapshot.index) return;
    assertCompaction(boundsOf(image), meta);
    const copy = copyMeta(meta);
    image.entries = image.entries.slice(copy.index - image.snapshot.index);
    image.snapshot = copy;
    image.snapshotData = null;
  }

  /** keyspace yields copies of the state machine's keys and values in UTF-8 byte order, as of the call. */
  async *keyspace(): AsyncIterable<KeyspaceBatch> {
    this.assertOpen('keyspace');
    const image = this.disk.image;
    if (image === null) return;
    const keys = [...image.state.keys()].sort(compareKeys);
    const records = keys.map((key) => [key, new Uint8Array(image.state.get(key) ?? new Uint8Array(0))] as const);
    for (let i = 0; i < records.length; i += KEYSPACE_BATCH_RECORDS) yield records.slice(i, i + KEYSPACE_BATCH_RECORDS);
  }

  /** keyspaceView copies the keyspace now, with the applied index it is at (writes are synchronous: nothing is half done). */
  async keyspaceView(): Promise<KeyspaceView> {
    const image = this.image('keyspaceView');
    const bounds = boundsOf(image);
    if (bounds.applied < bounds.snapshotIndex) return { applied: bounds.applied, trusted: false, batches: batchesOf([]) };
    const records: KeyspaceBatch[] = [];
    for await (const batch of this.keyspace()) records.push(batch);
    return { applied: bounds.applied, trusted: true, batches: batchesOf(records) };
  }

  /** close releases the store; later calls are refused with CAIRN_SHUTTING_DOWN (writes are synchronous, so none is pending). */
  /** recordPeerContact records that `peer` was heard from, at most contactsMax peers (durable at once). */
  async recordPeerContact(peer: string, contactsMax: number): Promise<PeerContactOutcome> {
    this.assertOpen('recordPeerContact');
    assert(peer.length > 0, 'recordPeerContact: empty peer id');
    assert(Number.isSafeInteger(contactsMax) && contactsMax >= 1, 'recordPeerContact: invalid contactsMax');
    if (this.disk.contacts.has(peer)) return 'known';
    if (this.disk.contacts.size >= contactsMax) return 'full';
    this.disk.contacts.add(peer);
    return 'recorded';
  }

  /** hasPeerContact tells whether `peer` is recorded. */
  async hasPeerContact(peer: string): Promise<boolean> {
    this.assertOpen('hasPeerContact');
    return this.disk.contacts.has(peer);
  }

  /** peerContacts lists the recorded peers in key order, at most listedMax. */
  async peerContacts(listedMax: number): Promise<string[]> {
    this.assertOpen('peerContacts');
    return [...this.disk.contacts].sort().slice(0, listedMax);
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private assertOpen(operation: string): void {
    if (this.closed) throw new CairnError('CAIRN_SHUTTING_DOWN', `${operation} after close()`);
  }

  private image(operation: string): MemoryImage {
    this.assertOpen(operation);
    assert(this.loaded, `${operation} before load() or initialise()`);
    const image = this.disk.image;
    assert(image !== null, `${operation} on a store that was never initialised`);
    return image;
  }
}

function copyWrites(writes: readonly BatchWrite[]): BatchWrite[] {
  return writes.map((w): BatchWrite => (w.type === 'put' ? { type: 'put', key: w.key, value: new Uint8Array(w.value) } : w));
}

function applyWrites(image: MemoryImage, writes: readonly BatchWrite[], applied: number): void {
  for (const write of writes) {
    if (write.type === 'put') image.state.set(write.key, write.value);
    else image.state.delete(write.key);
  }
  image.applied = applied;
}

function boundsOf(image: MemoryImage): StoreBounds {
  const snapshotIndex = image.snapshot.index;
  return { snapshotIndex, lastIndex: snapshotIndex + image.entries.length, applied: image.applied, hardState: image.hardState };
}
