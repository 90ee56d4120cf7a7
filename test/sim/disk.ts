// SimDisk: one member's in-memory storage. Raft's writes (snapshot, entries, hard state) arrive from a Ready as one
// unsynced batch (a snapshot replaces the whole stored log) and become durable only when the simulated fsync completes; a crash before that loses them. The
// state machine (KvStateMachine) is written by apply, atomically and durably, as the production LevelDB batch is.
import type { Entry, HardState, Membership, PersistedState, Snapshot } from '../../src/raft/types.ts';
import { KvStateMachine, serialiseValues } from './kv-state-machine.ts';

/** PendingWrite is one Ready's writes, accepted by the disk but not yet synced. */
export interface PendingWrite {
  readonly snapshot: Snapshot | null;
  readonly entries: readonly Entry[];
  readonly hardState: HardState | null;
}

/** bootstrapSnapshot is the snapshot every member starts from: index 0, the initial voters, an empty state. */
export function bootstrapSnapshot(voters: readonly string[]): Snapshot {
  const membership: Membership = { voters: [...voters], learners: [] };
  return { meta: { index: 0, term: 0, membership }, data: serialiseValues(new Map()) };
}

/** SimDisk is durable Raft storage plus an at-most-one unsynced batch, and the durable state machine. */
export class SimDisk {
  private hardStateValue: HardState = { term: 0, vote: null, commit: 0 };
  private snapshotValue: Snapshot;
  /** entries are the durable entries after snapshotValue.meta.index, contiguous. */
  private entries: Entry[] = [];
  private pending: PendingWrite | null = null;
  /** stateMachine is durable: apply writes values, applied index and membership together. */
  readonly stateMachine: KvStateMachine;

  constructor(bootstrap: Snapshot) {
    this.snapshotValue = bootstrap;
    this.stateMachine = new KvStateMachine(bootstrap.meta.membership);
  }

  /** hardState is the durable hard state. */
  get hardState(): HardState {
    return this.hardStateValue;
  }

  /** snapshot is the durable snapshot. */
  get snapshot(): Snapshot {
    return this.snapshotValue;
  }

  /** lastIndex is the index of the last durable entry (or the snapshot's index when no entry follows it). */
  get lastIndex(): number {
    return this.snapshotValue.meta.index + this.entries.length;
  }

  /** hasPendingWrite tells whether an unsynced batch is outstanding. */
  get hasPendingWrite(): boolean {
    return this.pending !== null;
  }

  /** termAt returns the durable term at `index` (the snapshot's index included), or undefined. */
  termAt(index: number): number | undefined {
    const snapshotIndex = this.snapshotValue.meta.index;
    if (index === snapshotIndex) return this.snapshotValue.meta.term;
    if (index < snapshotIndex) return undefined;
    return this.entries[index - snapshotIndex - 1]?.term;
  }

  /** write accepts one Ready's writes as an unsynced batch; only one may be outstanding (one Ready at a time). */
  write(batch: PendingWrite): void {
    if (this.pending !== null) throw new Error('sim disk: a second write before the first was synced');
    validateBatch(batch);
    this.pending = batch;
  }

  /** sync makes the outstanding batch durable: snapshot, then entries, then hard state (the Ready contract's order). */
  sync(): void {
    const batch = this.pending;
    if (batch === null) return;
    this.pending = null;
    // A snapshot from the leader replaces the whole stored log (types.ts Ready contract, step 1).
    if (batch.snapshot !== null) this.installSnapshot(batch.snapshot, false);
    if (batch.entries.length > 0) this.writeEntries(batch.entries);
    if (batch.hardState !== null) this.hardStateValue = batch.hardState;
  }

  /** crash discards the unsynced batch, as a power loss does. */
  crash(): void {
    this.pending = null;
  }

  /**
   * compact makes a snapshot of this member's own state machine durable and drops the entries it covers; the driver
   * calls it before RaftCore.compact, never while a batch is outstanding.
   */
  compact(snapshot: Snapshot): void {
    if (this.pending !== null) throw new Error('sim disk: compact while a write is outstanding');
    if (this.termAt(snapshot.meta.index) !== snapshot.meta.term) {
      throw new Error(`sim disk: compaction at ${snapshot.meta.index}/${snapshot.meta.term} does not match the durable log`);
    }
    this.installSnapshot(snapshot, true);
  }

  /**
   * view returns the Raft state a reader of this disk sees: the durable state with the unsynced batch applied by the
   * same code as sync() (a write is readable at once and survives a process restart; only crash() loses it). The
   * simulator never calls it (its driver reads the core); the RaftStorage adapter (sim-storage.ts) does.
   */
  view(): { readonly hardState: HardState; readonly snapshot: Snapshot; readonly entries: readonly Entry[] } {
    if (this.pending === null) return { hardState: this.hardStateValue, snapshot: this.snapshotValue, entries: [...this.entries] };
    const copy = new SimDisk(this.snapshotValue);
    copy.hardStateValue = this.hardStateValue;
    copy.entries = [...this.entries];
    copy.pending = this.pending;
    copy.sync();
    return copy.view();
  }

  /** load returns what a restarting member reads from this disk. */
  load(): PersistedState {
    const snapshot = this.snapshotValue;
    return {
      hardState: this.hardStateValue,
      snapshot: snapshot.meta,
      entries: [...this.entries],
      applied: Math.max(this.stateMachine.appliedIndex, snapshot.meta.index),
    };
  }

  /** installSnapshot makes `snapshot` durable; keepSuffix keeps the entries after it (compaction) or drops them all. */
  private installSnapshot(snapshot: Snapshot, keepSuffix: boolean): void {
    const index = snapshot.meta.index;
    if (index < this.snapshotValue.meta.index) {
      throw new Error(`sim disk: snapshot at ${index} is older than the durable one at ${this.snapshotValue.meta.index}`);
    }
    const firstKept = index - this.snapshotValue.meta.index; // position of the entry at index + 1
    this.entries = keepSuffix ? this.entries.slice(firstKept) : [];
    this.snapshotValue = snapshot;
  }

  private writeEntries(entries: readonly Entry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    const snapshotIndex = this.snapshotValue.meta.index;
    if (first.index <= snapshotIndex) {
      throw new Error(`sim disk: entries from ${first.index} overlap the durable snapshot at ${snapshotIndex}`);
    }
    if (first.index > this.lastIndex + 1) {
      throw new Error(`sim disk: entries from ${first.index} leave a gap after the durable last index ${this.lastIndex}`);
    }
    this.entries.length = first.index - snapshotIndex - 1;
    for (const entry of entries) this.entries.push(entry);
  }
}

function validateBatch(batch: PendingWrite): void {
  let expected = batch.entries[0]?.index ?? 0;
  for (const entry of batch.entries) {
    if (entry.index !== expected) throw new Error(`ready entries not contiguous: index ${entry.index}, expected ${expected}`);
    expected++;
  }
  const first = batch.entries[0];
  if (batch.snapshot !== null && first !== undefined && first.index <= batch.snapshot.meta.index) {
    throw new Error(`ready entries from ${first.index} do not follow its snapshot at ${batch.snapshot.meta.index}`);
  }
}
