// RaftLog: the in-memory log since the last snapshot, with the commit, persisted and applied marks.
//
// The core reads the log only from memory (LevelDB reads are async and the core is synchronous); snapshots keep
// it small. The log keeps only the snapshot's meta: the image itself is the driver's (its stored keyspace), handed
// to the core on demand when a follower needs it (RaftCore.offerSnapshot). The configurations in the log are tracked beside it so the membership at any index is known without
// scanning: a member uses the latest configuration in its log, committed or not (Raft thesis §4.1).
import { invariant } from './invariant.ts';
import type { Entry, Membership, Snapshot, SnapshotMeta } from './types.ts';

/** ConfigPoint is the membership in force from `index` on (until the next ConfigPoint). */
interface ConfigPoint {
  readonly index: number;
  readonly membership: Membership;
}

/** entryBytes is the size an entry counts for flow control and limits. */
export function entryBytes(entry: Entry): number {
  switch (entry.kind) {
    case 'normal':
      return entry.data.length + 16;
    case 'noop':
      return 16;
    case 'membership': {
      let bytes = 32 + entry.change.node.length;
      for (const member of [...entry.membership.voters, ...entry.membership.learners]) bytes += member.length + 2;
      return bytes;
    }
  }
}

/**
 * RaftLog holds the snapshot's meta and the entries after it.
 * Invariants: entries[i].index === snapshot.index + 1 + i; applied <= committed <= lastIndex;
 * snapshot.index <= applied; persisted <= lastIndex; terms never decrease along the log.
 */
export class RaftLog {
  private snapshotValue: SnapshotMeta;
  private entries: Entry[];
  private configs: ConfigPoint[] = [];
  /** committed is the highest index known committed. */
  committed: number;
  /** applied is the highest index the state machine has applied (acknowledged through advance()). */
  applied: number;
  /** persisted is the highest index known durable on this member's disk. */
  persisted: number;
  /** pendingSnapshot is a received snapshot that the next Ready must persist and restore. */
  pendingSnapshot: Snapshot | null = null;

  constructor(snapshot: SnapshotMeta, entries: readonly Entry[], committed: number, applied: number) {
    this.snapshotValue = snapshot;
    this.entries = [];
    for (const entry of entries) this.appendOne(entry);
    this.committed = Math.max(committed, snapshot.index, applied);
    this.applied = Math.max(applied, snapshot.index);
    this.persisted = this.lastIndex;
    invariant(this.committed <= this.lastIndex, () => `restart: commit ${this.committed} beyond last index ${this.lastIndex}`);
  }

  /** snapshotMeta identifies the last snapshot: the log starts after its index. */
  get snapshotMeta(): SnapshotMeta {
    return this.snapshotValue;
  }
  get snapshotIndex(): number {
    return this.snapshotValue.index;
  }
  get firstIndex(): number {
    return this.snapshotValue.index + 1;
  }
  get lastIndex(): number {
    return this.snapshotValue.index + this.entries.length;
  }
  get lastTerm(): number {
    return this.termAt(this.lastIndex) ?? 0;
  }

  /** termAt returns the term at `index` (the snapshot's own index included), or undefined outside the log. */
  termAt(index: number): number | undefined {
    if (index === this.snapshotValue.index) return this.snapshotValue.term;
    return this.entryAt(index)?.term;
  }

  /** entryAt returns the entry at `index`, or undefined when compacted or beyond the log. */
  entryAt(index: number): Entry | undefined {
    const offset = index - this.snapshotValue.index - 1;
    if (offset < 0 || offset >= this.entries.length) return undefined;
    return this.entries[offset];
  }

  /** slice returns entries [from, to] inclusive, stopping early after `bytesMax` (at least one entry). */
  slice(from: number, to: number, bytesMax: number): Entry[] {
    invariant(from >= this.firstIndex, () => `slice from ${from} below first index ${this.firstIndex}`);
    const result: Entry[] = [];
    let bytes = 0;
    for (let index = from; index <= Math.min(to, this.lastIndex); index++) {
      const entry = this.entryAt(index);
      invariant(entry !== undefined, `slice: hole at ${index}`);
      bytes += entryBytes(entry);
      if (result.length > 0 && bytes > bytesMax) break;
      result.push(entry);
    }
    return result;
  }

  /** membership returns the latest configuration in the log. */
  get membership(): Membership {
    return this.configs[this.configs.length - 1]?.membership ?? this.snapshotValue.membership;
  }

  /** lastConfigIndex is the index of the latest membership entry in the log, or the snapshot index. */
  get lastConfigIndex(): number {
    return this.configs[this.configs.length - 1]?.index ?? this.snapshotValue.index;
  }

  /** membershipAt returns the configuration in force at `index`. */
  membershipAt(index: number): Membership {
    let membership = this.snapshotValue.membership;
    for (const point of this.configs) {
      if (point.index > index) break;
      membership = point.membership;
    }
    return membership;
  }

  /** append adds entries at the end; their indexes must follow the last index. */
  append(entries: readonly Entry[]): void {
    for (const entry of entries) this.appendOne(entry);
  }

  private appendOne(entry: Entry): void {
    invariant(entry.index === this.lastIndex + 1, () => `append: index ${entry.index} after last ${this.lastIndex}`);
    invariant(entry.term >= this.lastTerm, () => `append: term ${entry.term} below last term ${this.lastTerm}`);
    this.entries.push(entry);
    if (entry.kind === 'membership') {
      this.configs.push({ index: entry.index, membership: entry.membership });
    }
  }

  /** truncateFrom drops the entries at `index` and after; committed entries are never dropped (Raft §5.3). */
  truncateFrom(index: number): void {
    invariant(index > this.committed, () => `truncate at ${index} would drop committed entries (commit ${this.committed})`);
    invariant(index >= this.firstIndex, () => `truncate at ${index} below first index ${this.firstIndex}`);
    this.entries.length = index - this.firstIndex;
    this.configs = this.configs.filter((point) => point.index < index);
    this.persisted = Math.min(this.persisted, index - 1);
  }

  /** commitTo raises the commit index; it never moves back. */
  commitTo(index: number): boolean {
    if (index <= this.committed) return false;
    invariant(index <= this.lastIndex, () => `commit ${index} beyond last index ${this.lastIndex}`);
    this.committed = index;
    return true;
  }

  /** compact replaces the prefix up to `snapshot.index` (which must be in the log and applied) by the snapshot. */
  compact(snapshot: SnapshotMeta): void {
    const index = snapshot.index;
    invariant(index <= this.applied, () => `compact at ${index} beyond applied ${this.applied}`);
    invariant(index <= this.persisted, () => `compact at ${index} beyond persisted ${this.persisted}`);
    if (index <= this.snapshotIndex) return;
    invariant(this.termAt(index) === snapshot.term, `compact: term mismatch at ${index}`);
    this.entries = this.entries.slice(index - this.snapshotIndex);
    this.configs = this.configs.filter((point) => point.index > index);
    this.snapshotValue = snapshot;
  }

  /** restore replaces the whole log by a snapshot received from the leader (Raft §7); nothing of the log is kept. */
  restore(snapshot: Snapshot): void {
    invariant(snapshot.meta.index > this.committed, `restore: snapshot at or below commit`);
    this.snapshotValue = snapshot.meta;
    this.entries = [];
    this.configs = [];
    this.committed = snapshot.meta.index;
    this.persisted = snapshot.meta.index;
    this.pendingSnapshot = snapshot;
  }

  /** firstIndexOfTerm returns the first index of the run of `term` that contains `index` (fast backtracking). */
  firstIndexOfTerm(index: number, term: number): number {
    let first = index;
    while (first - 1 > this.snapshotIndex && this.termAt(first - 1) === term) first--;
    return first;
  }

  /** lastIndexOfTerm returns the last index at or below `from` whose term is `term`, or 0 when there is none. */
  lastIndexOfTerm(from: number, term: number): number {
    for (let index = Math.min(from, this.lastIndex); index >= this.snapshotIndex; index--) {
      const t = this.termAt(index);
      if (t === undefined || t < term) return 0;
      if (t === term) return index;
    }
    return 0;
  }

  /** isUpToDate tells whether a log ending at (lastTerm, lastIndex) is at least as up to date as ours (Raft §5.4.1). */
  isUpToDate(lastTerm: number, lastIndex: number): boolean {
    return lastTerm > this.lastTerm || (lastTerm === this.lastTerm && lastIndex >= this.lastIndex);
  }
}
