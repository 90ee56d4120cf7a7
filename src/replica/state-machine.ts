// The seam between the driver and the replicated state machine: the driver knows the registry only through this.

import type { KeyspaceBatch } from './storage.ts';

/** BatchWrite is one write of a state-machine batch: a put or a delete of a key in the state machine's keyspace. */
export type BatchWrite =
  | { readonly type: 'put'; readonly key: string; readonly value: Uint8Array }
  | { readonly type: 'del'; readonly key: string };

/** ApplyBatch collects the writes of applying committed entries; the driver commits it atomically with the applied index. */
export interface ApplyBatch {
  put(key: string, value: Uint8Array): void;
  del(key: string): void;
}

/**
 * ReplicatedStateMachine is what the Raft log drives (Raft §5.3: every member applies the same commands in the same
 * order). Implementations keep their state in memory for reads and write every change into the batch; the driver
 * writes the batch and the applied index in one atomic LevelDB write, so a restart neither loses nor repeats one.
 */
export interface ReplicatedStateMachine {
  /**
   * apply applies one committed command and returns its encoded result (handed to the proposer, possibly on another
   * member, so it is bytes). It must be deterministic (no clock, no randomness: the same command gives the same
   * result on every member), must never throw for a bad command (return an encoded failure instead), and writes
   * its changes to `batch`. `index` and `term` identify the entry. `wanted` false says nobody waits for the result
   * (the driver holds no proposal for this entry: a follower's apply, or a proposal that timed out); the returned
   * bytes are then discarded, and an implementation may return empty bytes instead of encoding them. Whether
   * `wanted` is set must change nothing else: the state and the batch are the same either way.
   */
  apply(command: Uint8Array, index: number, term: number, batch: ApplyBatch, wanted?: boolean): Uint8Array;
  /** load rebuilds the in-memory state from the stored keyspace at start-up. */
  load(entries: AsyncIterable<KeyspaceBatch>): Promise<void>;
  /** snapshot serialises the whole state as of the last applied entry. */
  snapshot(): Uint8Array;
  /**
   * snapshotPieces captures the state as of the last applied entry, cheaply, and returns the pieces of its snapshot
   * in order (their concatenation is snapshot()'s bytes; empty pieces are only places to pause). Later applies must
   * not change what the pieces encode: the driver pulls them a few at a time between its other work.
   */
  snapshotPieces(): Iterator<Uint8Array, void, void>;
  /** restore replaces the whole state by a snapshot: clears the in-memory state and writes the new keyspace to `batch` (after a clear). */
  restore(data: Uint8Array, batch: ApplyBatch): void;
  /**
   * restoreInSlices (optional) is restore in steps: the driver runs it a few milliseconds at a time between its other
   * work, so a large snapshot does not hold the event loop. Until the last step the state is unchanged (the new one
   * is built aside and replaces it at the end); no apply runs meanwhile.
   */
  restoreInSlices?(data: Uint8Array, batch: ApplyBatch): Generator<void, void, void>;
  /**
   * validateCommand (optional) checks a command that arrived from outside this member (a write a follower forwarded)
   * before the driver proposes it: null when apply would accept its encoding, else a catalog code and why not. Without
   * it such bytes enter the log as they are, and apply answers them with an encoded failure on every member.
   */
  validateCommand?(command: Uint8Array): { readonly code: string; readonly message: string } | null;
}
