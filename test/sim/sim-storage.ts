// SimStorage: the simulator's own store (SimDisk, disk.ts, with its KvStateMachine) behind the RaftStorage interface
// of src/replica/storage.ts, so that the shared compliance suite (test/replica/storage-compliance.ts) checks the very
// store the simulator runs on, next to LevelStorage and MemoryStorage.
//
// Choice: an adapter (option a) over the SimDisk itself, plus one read-only method added to SimDisk (view(): the
// durable state with the unsynced batch applied, by running sync() on a copy). Every Raft write goes through the
// disk's own write()/sync()/compact(), every state-machine write through its KvStateMachine, every read through
// view()/termAt()/stateMachine: the adapter holds no Raft state or keyspace of its own, so it is not a second
// store. What it adds is what RaftStorage has and the simulator does not: the identity and the peer contacts (kept
// on SimDrive beside the disk), "not initialised yet" (SimDrive.disk is null until initialise()), the contract checks
// of memory-storage.ts (reused, so the three stores refuse the same writes, before anything changes), deep copies
// through the real codec (SimDisk keeps the objects it is given; a serialising store cannot alias them), and the
// translation between batch writes of bytes and the string-valued KvStateMachine.
//
// Durability, mapped onto SimDisk's model (at most one unsynced batch; the state machine durable at once):
// - writeReady(w, true) writes w and syncs it; writeReady(w, false) leaves w as the disk's unsynced batch, readable
//   at once (view()), kept across a close and reopen (a process restart), lost by SimDrive.crash() (a power loss).
// - Any later write first syncs an outstanding batch. That keeps LevelDB's write-ahead-log order (a crash loses a
//   suffix of the writes, never an earlier one while keeping a later one): since SimDisk makes state-machine writes
//   and compactions durable at once, they must not overtake an unsynced Ready batch. It is more durable than LevelDB
//   for two unsynced writeReady calls in a row (LevelDB may lose both, this keeps the first): the simulator's driver
//   never does that (one Ready at a time, each synced before the next).
// - writeApplied is durable at once, as the simulator's state machine is. LevelStorage does NOT fsync it: a power
//   loss can take the applied index and keyspace back, and can leave applied < snapshot.index (a synced Ready
//   snapshot kept, its unsynced restore lost). That is a real difference, left as it is (the simulator must not
//   change here): the sim keeps what LevelDB may lose, so it never exercises those restarts (in seeds 1..300, none
//   of 1722 restarts found the snapshot ahead of the state machine; NodeDriver.start's restore branch stays unused).
//   A sim-only test in storage-compliance.test.ts pins the current behaviour.
// Values: KvStateMachine holds strings, so writeApplied refuses values that are not well-formed UTF-8 (LevelDB
// stores any bytes) and keyspace() returns the UTF-8 bytes of the stored strings. writeApplied keeps the machine's
// membership as it is (RaftStorage's keyspace does not carry one). compactLog also refuses a snapshot whose term is
// not the log's term at its index (SimDisk.compact's own check, raised before anything changes).
// Snapshots: SimDisk keeps a Snapshot (meta and data) for every snapshot. compactLog hands SimDisk.compact one with
// empty data, since its image is the KvStateMachine (the keyspace is the snapshot, compactLog's contract), and load()
// returns snapshotData only for a snapshot that writeReady installed (SimDrive.installedImages, keyed by the very
// object SimDisk keeps, so a crash that loses the unsynced install loses the mark with it). Every other snapshot on
// the disk (initialise's bootstrap, compactLog's, and the simulator's own compactions on a disk handed to a SimDrive)
// is the keyspace's: the sim restores an installed snapshot as soon as it is synced, so its applied index is never
// below one of those.
import type { Entry, HardState, Membership, Snapshot, SnapshotMeta } from '../../src/raft/types.ts';
import { assert, AssertionError } from '../../src/assert.ts';
import { CairnError } from '../../src/errors.ts';
import { decodeEntry, decodeHardState, decodeSnapshotMeta, encodeEntry, encodeHardState, encodeSnapshotMeta } from '../../src/replica/codec.ts';
import {
  assertAppliedWrite, assertCompaction, assertIdentity, batchesOf, boundsAfterReadyWrite, compareKeys, type StoreBounds,
} from '../../src/replica/memory-storage.ts';
import type { BatchWrite } from '../../src/replica/state-machine.ts';
import { KEYSPACE_BATCH_RECORDS, type KeyspaceBatch, type KeyspaceView, type MemberIdentity, type PeerContactOutcome, type RaftStorage, type ReadyWrite, type StoredRaftState } from '../../src/replica/storage.ts';
import { SimDisk } from './disk.ts';
import { deserialiseValues, serialiseValues } from './kv-state-machine.ts';

const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** SimDrive is the durable medium of a SimStorage: a SimDisk plus the records RaftStorage has and SimDisk lacks. */
export class SimDrive {
  /** disk is null until initialise() succeeds; then it is the member's SimDisk, as the simulator uses it. */
  disk: SimDisk | null;
  /** identity is written with the disk by initialise() (or given with an existing disk). */
  identity: MemberIdentity | null;
  /** contacts are the peers recorded by recordPeerContact; fsynced, they outlive a crash and the Raft state. */
  readonly contacts = new Set<string>();
  /** installedImages are the snapshots writeReady handed the disk (images from the leader); see the file comment. */
  readonly installedImages = new WeakSet<Snapshot>();

  constructor(disk: SimDisk | null = null, identity: MemberIdentity | null = null) {
    assert((disk === null) === (identity === null), 'SimDrive: a disk and its identity come together');
    this.disk = disk;
    this.identity = identity;
  }

  /** crash is a power loss: the disk's unsynced batch is lost (SimDisk.crash); everything synced stays. */
  crash(): void {
    this.disk?.crash();
  }
}

/** SimStorage implements RaftStorage over a SimDrive; a new SimStorage over the same drive is a restart. */
export class SimStorage implements RaftStorage {
  /** drive is the durable medium; pass it to a new SimStorage to reopen. */
  readonly drive: SimDrive;
  private loaded = false;
  private closed = false;

  constructor(drive: SimDrive = new SimDrive()) {
    this.drive = drive;
  }

  /** load returns copies of what the disk holds (the unsynced batch included), or null before initialise(). */
  async load(): Promise<StoredRaftState | null> {
    this.assertOpen('load');
    const { disk, identity } = this.drive;
    if (disk === null || identity === null) return null;
    const view = disk.view();
    this.loaded = true;
    return {
      identity: { ...identity },
      hardState: copyHardState(view.hardState),
      snapshot: copyMeta(view.snapshot.meta),
      snapshotData: this.drive.installedImages.has(view.snapshot) ? new Uint8Array(view.snapshot.data) : null,
      entries: view.entries.map(copyEntry),
      // Not SimDisk.load()'s max(applied, snapshot index): a snapshot written but not yet restored shows as it is.
      applied: disk.stateMachine.appliedIndex,
    };
  }

  /** initialise creates the member's SimDisk from the bootstrap snapshot (index 0, `membership`, the empty keyspace). */
  async initialise(identity: MemberIdentity, membership: Membership): Promise<void> {
    this.assertOpen('initialise');
    assert(this.drive.disk === null, 'initialise: the store is already initialised');
    assertIdentity(identity);
    const bootstrap = copySnapshot({ meta: { index: 0, term: 0, membership }, data: new Uint8Array(0) });
    this.drive.disk = new SimDisk(bootstrap);
    this.drive.identity = { clusterId: identity.clusterId, memberId: identity.memberId };
    this.loaded = true;
  }

  /** writeReady hands the Ready's writes to the disk as its unsynced batch and syncs it when `sync`. */
  async writeReady(write: ReadyWrite, sync: boolean): Promise<void> {
    const disk = this.disk('writeReady');
    const next = boundsAfterReadyWrite(boundsOf(disk), write);
    const applied = write.applied ?? null;
    if (applied !== null) assertAppliedWrite(next, applied.writes, applied.index);
    const batch = {
      snapshot: write.snapshot === null ? null : copySnapshot(write.snapshot),
      entries: write.entries.map(copyEntry),
      hardState: write.hardState === null ? null : copyHardState(write.hardState),
    };
    // Every check and copy is done: the disk's own checks cannot fail from here on.
    if (batch.snapshot !== null) this.drive.installedImages.add(batch.snapshot);
    disk.sync();
    disk.write(batch);
    if (sync || applied !== null) disk.sync();
    // The applied part is durable at once here (see writeApplied), so the entries under it are synced first: the
    // sim never holds an applied index beyond its durable log (LevelDB writes both in one batch).
    if (applied !== null) await this.writeApplied(applied.writes, applied.index, false);
  }

  /** writeApplied writes the batch and `applied` into the KvStateMachine in one synchronous restore (atomic). */
  async writeApplied(writes: readonly BatchWrite[], applied: number, clearKeyspace: boolean): Promise<void> {
    const disk = this.disk('writeApplied');
    assertAppliedWrite(boundsOf(disk), writes, applied);
    const machine = disk.stateMachine;
    const values = clearKeyspace ? new Map<string, string>() : deserialiseValues(machine.serialise());
    const decoded = writes.map((w) => (w.type === 'put' ? { key: w.key, value: decodeValue(w.key, w.value) } : { key: w.key, value: null }));
    for (const { key, value } of decoded) {
      if (value === null) values.delete(key);
      else values.set(key, value);
    }
    const image: Snapshot = { meta: { index: applied, term: 0, membership: machine.membership }, data: serialiseValues(values) };
    disk.sync();
    machine.restore(image);
  }

  /**
   * compactLog makes the keyspace the snapshot at `meta.index` and drops the log up to it (SimDisk.compact), after
   * making an outstanding batch durable (LevelStorage's memtable flush); one at or below the stored snapshot is a no-op.
   */
  async compactLog(meta: SnapshotMeta): Promise<void> {
    const disk = this.disk('compactLog');
    const bounds = boundsOf(disk);
    if (meta.index <= bounds.snapshotIndex) {
      disk.sync();
      return;
    }
    assertCompaction(bounds, meta);
    const copy = copyMeta(meta);
    const term = termInView(disk, copy.index);
    assert(term === copy.term, `compactLog: snapshot at ${copy.index} has term ${copy.term}, the log has ${String(term)} there`);
    disk.sync();
    disk.compact({ meta: copy, data: new Uint8Array(0) });
  }

  /** recordPeerContact records that `peer` was heard from, at most contactsMax peers (durable at once). */
  async recordPeerContact(peer: string, contactsMax: number): Promise<PeerContactOutcome> {
    this.assertOpen('recordPeerContact');
    assert(peer.length > 0, 'recordPeerContact: empty peer id');
    assert(Number.isSafeInteger(contactsMax) && contactsMax >= 1, 'recordPeerContact: invalid contactsMax');
    if (this.drive.contacts.has(peer)) return 'known';
    if (this.drive.contacts.size >= contactsMax) return 'full';
    this.drive.contacts.add(peer);
    return 'recorded';
  }

  /** hasPeerContact tells whether `peer` is recorded. */
  async hasPeerContact(peer: string): Promise<boolean> {
    this.assertOpen('hasPeerContact');
    return this.drive.contacts.has(peer);
  }

  /** peerContacts lists the recorded peers in key order, at most listedMax. */
  async peerContacts(listedMax: number): Promise<string[]> {
    this.assertOpen('peerContacts');
    return [...this.drive.contacts].sort(compareKeys).slice(0, listedMax);
  }

  /** keyspace yields the KvStateMachine's keys and the UTF-8 bytes of their values, in UTF-8 key order, as of the call. */
  async *keyspace(): AsyncIterable<KeyspaceBatch> {
    this.assertOpen('keyspace');
    const disk = this.drive.disk;
    if (disk === null) return;
    const values = deserialiseValues(disk.stateMachine.serialise());
    const pairs = [...values].sort((a, b) => compareKeys(a[0], b[0])).map(([key, value]) => [key, utf8.encode(value)] as const);
    for (let i = 0; i < pairs.length; i += KEYSPACE_BATCH_RECORDS) yield pairs.slice(i, i + KEYSPACE_BATCH_RECORDS);
  }

  /** keyspaceView copies the keyspace now, with the applied index it is at (every call completes at once). */
  async keyspaceView(): Promise<KeyspaceView> {
    const bounds = boundsOf(this.disk('keyspaceView'));
    if (bounds.applied < bounds.snapshotIndex) return { applied: bounds.applied, trusted: false, batches: batchesOf([]) };
    const records: KeyspaceBatch[] = [];
    for await (const batch of this.keyspace()) records.push(batch);
    return { applied: bounds.applied, trusted: true, batches: batchesOf(records) };
  }

  /**
   * close releases the store; later calls are refused. Every call completed when it resolved, so nothing waits; an
   * unsynced batch stays on the disk, as unsynced writes stay in the OS cache across a process restart.
   */
  async close(): Promise<void> {
    this.closed = true;
  }

  private assertOpen(operation: string): void {
    if (this.closed) throw new CairnError('CAIRN_SHUTTING_DOWN', `${operation} after close()`);
  }

  private disk(operation: string): SimDisk {
    this.assertOpen(operation);
    assert(this.loaded, `${operation} before load() or initialise()`);
    const disk = this.drive.disk;
    assert(disk !== null, `${operation} on a store that was never initialised`);
    return disk;
  }
}

/** boundsOf reads the bounds the contract checks need from what a reader of the disk sees. */
function boundsOf(disk: SimDisk): StoreBounds {
  const view = disk.view();
  const snapshotIndex = view.snapshot.meta.index;
  return { snapshotIndex, lastIndex: snapshotIndex + view.entries.length, applied: disk.stateMachine.appliedIndex, hardState: view.hardState };
}

/** termInView is the term at `index` as a reader sees it (the snapshot's index included), or undefined. */
function termInView(disk: SimDisk, index: number): number | undefined {
  const { snapshot, entries } = disk.view();
  if (index === snapshot.meta.index) return snapshot.meta.term;
  return index > snapshot.meta.index ? entries[index - snapshot.meta.index - 1]?.term : undefined;
}

function decodeValue(key: string, value: Uint8Array): string {
  try {
    return strictUtf8.decode(value);
  } catch {
    throw new AssertionError(`writeApplied: the value of ${key} is not UTF-8; the simulator's state machine holds strings`);
  }
}

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
