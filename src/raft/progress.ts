// Progress: what the leader knows of one follower's log, and the flow control of what it sends it.
//
// probe:     the leader does not know where the follower's log matches; one AppendRequest at a time, the next
//            waits for its answer (or a heartbeat answer).
// replicate: the follower matched; the leader pipelines AppendRequests optimistically (next moves on as it
//            sends), bounded by inflightMessagesMax messages and inflightBytesMax bytes not yet acknowledged.
// snapshot:  the entries the follower needs were compacted away; the leader streams a snapshot in chunks, or waits
//            for its driver to offer one (snapshot null: the core keeps no snapshot image of its own).
import type { Snapshot } from './types.ts';

/** ProgressState is how the leader replicates to one follower. */
export type ProgressState = 'probe' | 'replicate' | 'snapshot';

/** Inflight is one AppendRequest not yet acknowledged: its last index and its entry bytes. */
interface Inflight {
  readonly lastIndex: number;
  readonly bytes: number;
}

/** Progress tracks one follower. Invariants: match < next; inflight lastIndexes increase. */
export class Progress {
  match = 0;
  next: number;
  state: ProgressState = 'probe';
  /** probeSent pauses a probing follower until it answers. */
  probeSent = false;
  /** lastHeardTick is the leader tick at which the follower last sent anything in this term (CheckQuorum). */
  lastHeardTick: number;
  /** commitSent is the highest commit index sent to the follower, so a stale one is refreshed once. */
  commitSent = 0;
  /** readRoundAcked is the latest ReadIndex round the follower acknowledged in this term. */
  readRoundAcked = 0;
  /**
   * snapshot being sent while in state 'snapshot' (null: waiting for the driver to offer one), the offset
   * acknowledged and the ticks since the last chunk.
   */
  snapshot: Snapshot | null = null;
  snapshotOffset = 0;
  snapshotChunkInFlight = false;
  snapshotTicksSinceSend = 0;
  private inflights: Inflight[] = [];
  private inflightBytes = 0;

  constructor(next: number, lastHeardTick: number) {
    this.next = next;
    this.lastHeardTick = lastHeardTick;
  }

  /** inflightFull tells whether the pipeline to this follower is at its message or byte limit. */
  inflightFull(messagesMax: number, bytesMax: number): boolean {
    return this.inflights.length >= messagesMax || this.inflightBytes >= bytesMax;
  }

  /** inflightBytesFree is how many entry bytes may still be sent before the byte limit. */
  inflightBytesFree(bytesMax: number): number {
    return Math.max(0, bytesMax - this.inflightBytes);
  }

  /** sentAppend records an AppendRequest ending at `lastIndex` carrying `bytes` of entries. */
  sentAppend(lastIndex: number, bytes: number, entryCount: number): void {
    if (this.state === 'replicate') {
      if (entryCount > 0) {
        this.next = lastIndex + 1;
        this.inflights.push({ lastIndex, bytes });
        this.inflightBytes += bytes;
      }
    } else if (this.state === 'probe') {
      this.probeSent = true;
    }
  }

  /** freeFirstInflight forgets the oldest unacknowledged append, making room for one more. */
  freeFirstInflight(): void {
    const first = this.inflights.shift();
    if (first !== undefined) this.inflightBytes -= first.bytes;
  }

  /** acknowledge raises match to `index`, frees the inflights it covers; false when it says nothing new. */
  acknowledge(index: number): boolean {
    let freed = 0;
    while (freed < this.inflights.length && (this.inflights[freed]?.lastIndex ?? Infinity) <= index) {
      this.inflightBytes -= this.inflights[freed]?.bytes ?? 0;
      freed++;
    }
    if (freed > 0) this.inflights.splice(0, freed);
    this.probeSent = false;
    if (index <= this.match) return false;
    this.match = index;
    this.next = Math.max(this.next, index + 1);
    return true;
  }

  /** becomeProbe restarts probing from `next` (after a reject, an unreachable report or a snapshot). */
  becomeProbe(next: number): void {
    this.state = 'probe';
    this.next = Math.max(next, this.match + 1);
    this.probeSent = false;
    this.clearInflights();
    this.snapshot = null;
  }

  /**
   * forgetFrom lowers match below `missingFrom`, the first index the follower reports it lacks although it had
   * acknowledged it (its disk lost acknowledged writes), and probes from there. Commitment is unaffected: the commit
   * index never goes down, and a lower match only delays later commits until the follower has the entries again.
   */
  forgetFrom(missingFrom: number): void {
    this.match = Math.min(this.match, missingFrom - 1);
    this.becomeProbe(missingFrom);
  }

  /** becomeReplicate starts pipelining after the follower matched. */
  becomeReplicate(): void {
    this.state = 'replicate';
    this.next = this.match + 1;
    this.probeSent = false;
    this.clearInflights();
  }

  /** becomeSnapshot starts streaming `snapshot` from its first byte; null waits for one (RaftCore.offerSnapshot). */
  becomeSnapshot(snapshot: Snapshot | null): void {
    this.state = 'snapshot';
    this.snapshot = snapshot;
    this.snapshotOffset = 0;
    this.snapshotChunkInFlight = false;
    this.snapshotTicksSinceSend = 0;
    this.clearInflights();
  }

  private clearInflights(): void {
    this.inflights = [];
    this.inflightBytes = 0;
  }
}
