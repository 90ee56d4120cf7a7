// ReadIndexQueue: linearizable reads without log writes (Raft thesis §6.4).
//
// A read is registered with the commit index at the moment it arrives. It may be answered once the leader has
// confirmed, by a heartbeat round sent after the read arrived, that a majority still follows it. Rounds batch:
// every read that arrives while a round is in flight waits for the next round, so one round confirms many reads.
//
// Why a round must start after the read arrived (the race this prevents):
//   1. leader L (term 5) sends round 7 to its followers;
//   2. a partition isolates L; the others elect L' (term 6), which commits a write W;
//   3. a read arrives at L; if L counted the late answers to round 7 (sent before the read), it would serve the
//      read at its stale commit index, missing W. A round numbered after the read cannot be answered by members
//      that now follow L', so the read waits and is dropped when L learns of term 6.
import { invariant } from './invariant.ts';
import type { NodeId } from './types.ts';

/** PendingRead is one read waiting for confirmation: `round` 0 means not yet assigned to a round. */
export interface PendingRead {
  readonly context: string;
  /** requester is the member that asked (the leader itself, or a follower that forwarded the read). */
  readonly requester: NodeId;
  readonly index: number;
  round: number;
}

/** ReadIndexQueue holds the leader's pending reads and its heartbeat rounds. Bounded by `pendingMax`. */
export class ReadIndexQueue {
  private reads: PendingRead[] = [];
  /** roundSent is the latest round broadcast; roundConfirmed the latest confirmed by a majority. */
  roundSent = 0;
  roundConfirmed = 0;
  /** roundDispatched is the latest round whose heartbeats have been handed to the driver. */
  roundDispatched = 0;

  constructor(private readonly pendingMax: number) {}

  get size(): number {
    return this.reads.length;
  }

  /** full tells whether another read would exceed the bound. */
  get full(): boolean {
    return this.reads.length >= this.pendingMax;
  }

  /**
   * add registers a read at commit index `index`. While the heartbeats of the latest round have not yet left the
   * core, the read joins that round: they will leave after it arrived, which is all the round must prove.
   */
  add(context: string, requester: NodeId, index: number): void {
    invariant(!this.full, 'read queue full');
    const joinable = this.roundSent > this.roundDispatched && this.roundSent > this.roundConfirmed;
    this.reads.push({ context, requester, index, round: joinable ? this.roundSent : 0 });
  }

  /** markDispatched records that the heartbeats of every round started so far have left the core. */
  markDispatched(): void {
    this.roundDispatched = this.roundSent;
  }

  /** roundInFlight tells whether a sent round awaits confirmation. */
  get roundInFlight(): boolean {
    return this.roundSent > this.roundConfirmed;
  }

  /** hasUnassigned tells whether reads wait for a round to be started. */
  get hasUnassigned(): boolean {
    return this.reads.some((read) => read.round === 0);
  }

  /** startRound assigns every unassigned read to a new round and returns its number. */
  startRound(): number {
    this.roundSent++;
    for (const read of this.reads) if (read.round === 0) read.round = this.roundSent;
    return this.roundSent;
  }

  /** confirm marks rounds up to `round` confirmed and returns the reads they release, oldest first. */
  confirm(round: number): PendingRead[] {
    if (round <= this.roundConfirmed) return [];
    invariant(round <= this.roundSent, () => `confirmed round ${round} never sent (sent ${this.roundSent})`);
    this.roundConfirmed = round;
    const released = this.reads.filter((read) => read.round !== 0 && read.round <= round);
    this.reads = this.reads.filter((read) => read.round === 0 || read.round > round);
    return released;
  }

  /** releaseAll confirms every read at once (a single-voter group needs no round). */
  releaseAll(): PendingRead[] {
    const released = this.reads;
    this.reads = [];
    return released;
  }

  /** dropAll forgets every read (leadership lost) and returns them so their callers learn it. */
  dropAll(): PendingRead[] {
    const dropped = this.reads;
    this.reads = [];
    this.roundSent = 0;
    this.roundConfirmed = 0;
    this.roundDispatched = 0;
    return dropped;
  }
}
