// verdicts: from probe results to committed health (NACOS.md §4.3, DESIGN.md "Active health checks").
//
// Counting (decideFlip): consecutive results per target; an OK resets the failure count and a failure the OK count.
// A healthy instance becomes unhealthy after flipProbes consecutive failures, or at once when the target refused the
// connection; an unhealthy one becomes healthy after flipProbes consecutive OKs. An inconclusive result (a MySQL
// server at its connection limit) is skipped: it neither counts nor resets, and never flips. The comparison is with the health
// COMMITTED in this member's applied state, not with a local guess, so every member's verdicts start from the truth.
//
// Sending (FlipSender): a verdict is stamped with the Raft term and assignment epoch this member saw when it was
// reached, and waits (one per target, the newest wins) to be sent in a SetHealthBatch through CpRegistry, which
// proposes on the leader or forwards from a follower. Batches hold verdicts of one stamp only, at most
// flipsPerBatchMax, and are sent one at a time after a short merge window. A verdict whose stamp is no longer this
// member's stamp is dropped before sending. A batch that fails (no leader, no quorum, outcome unknown) is retried
// with its original stamp while that stamp is current, unless a newer result of the target contradicts it (then it
// is withdrawn: the target's health moved back before the verdict could commit). The state machine fences what this member cannot know: a
// prober that was partitioned still holds its old stamp when the partition heals, and its first retry may reach
// the leader before it applied the entries that moved the term or its share; the leader's log refuses it.

import type { HealthBatchInput, HealthBatchWrite, WriteOptions } from '../cp/cp-registry.ts';
import type { HealthFlip } from '../cp/commands.ts';
import type { ProbeResult } from './probe.ts';

/** Counts are a target's consecutive OK and failed probes; at most one of them is non-zero. */
export interface Counts {
  ok: number;
  failed: number;
}

/** countResult updates a target's consecutive counts with one result; an inconclusive result leaves them as they are. */
export function countResult(counts: Counts, result: ProbeResult): void {
  if (result.inconclusive === true) return;
  if (result.healthy) {
    counts.ok += 1;
    counts.failed = 0;
  } else {
    counts.failed += 1;
    counts.ok = 0;
  }
}

/** decideFlip returns the health to commit after a result, or null to keep the committed health. */
export function decideFlip(committedHealthy: boolean, counts: Counts, result: ProbeResult, flipProbes: number): boolean | null {
  if (result.inconclusive === true) return null;
  if (committedHealthy && !result.healthy && (result.refused || counts.failed >= flipProbes)) return false;
  if (!committedHealthy && result.healthy && counts.ok >= flipProbes) return true;
  return null;
}

/** Stamp is what a verdict was reached under: the Raft term and the probe assignment's epoch. */
export interface Stamp {
  readonly term: number;
  readonly epoch: number;
}

/** sameStamp tells whether two stamps are equal. */
export function sameStamp(a: Stamp, b: Stamp): boolean {
  return a.term === b.term && a.epoch === b.epoch;
}

/** FlipSink commits health batches: CpRegistry. */
export interface FlipSink {
  setHealthBatch(input: HealthBatchInput, options?: WriteOptions): Promise<HealthBatchWrite>;
}

/** BatchOutcome is how a sent batch ended: committed (applied or not), fenced by the state machine, failed, or dropped before sending. */
export type BatchOutcome = 'committed' | 'fenced' | 'failed' | 'dropped';

/** FlipSenderOptions configure a sender. */
export interface FlipSenderOptions {
  readonly self: string;
  readonly sink: FlipSink;
  readonly flipsPerBatchMax: number;
  readonly mergeMs: number;
  readonly retryMs: number;
  readonly timeoutMs: number;
  /** onBatch reports each batch's outcome and flip counts (applied are those that changed an instance). */
  readonly onBatch: (outcome: BatchOutcome, flips: number, applied: number) => void;
  readonly onError: (error: unknown) => void;
}

interface PendingFlip {
  readonly flip: HealthFlip;
  readonly stamp: Stamp;
}

/** FlipSender batches stamped verdicts to the leader; see the file comment. */
export class FlipSender {
  private readonly options: FlipSenderOptions;
  /** pending holds one verdict per target id; bounded by the targets this member probes. */
  private readonly pending = new Map<string, PendingFlip>();
  private stamp: Stamp = { term: 0, epoch: 0 };
  private timer: NodeJS.Timeout | null = null;
  private sending = false;
  private closed = false;

  constructor(options: FlipSenderOptions) {
    this.options = options;
  }

  /** waiting counts the verdicts not yet committed. */
  get waiting(): number {
    return this.pending.size;
  }

  /** setStamp records this member's current term and epoch; verdicts under another stamp are dropped before sending. */
  setStamp(stamp: Stamp): void {
    this.stamp = stamp;
  }

  /** currentStamp is the stamp new verdicts get. */
  currentStamp(): Stamp {
    return this.stamp;
  }

  /** enqueue records a verdict for a target under the current stamp and schedules a send. */
  enqueue(targetId: string, flip: HealthFlip): void {
    if (this.closed) return;
    this.pending.set(targetId, { flip, stamp: this.stamp });
    this.schedule(this.options.mergeMs);
  }

  /**
   * forget drops a target's waiting verdict (the target is no longer this member's). The verdict counts as dropped:
   * a prober back from a partition applies the entry that moved its share and forgets the verdict in the same step,
   * before the next send could find its stamp stale.
   */
  forget(targetId: string): void {
    if (this.pending.delete(targetId)) this.options.onBatch('dropped', 1, 0);
  }

  /**
   * withdrawContradicted drops a target's waiting verdict when a newer probe result says the opposite (the verdict
   * says unhealthy and the target answers again, or the reverse): a verdict still waiting, its batch failing for want
   * of a leader, would otherwise commit a health the target no longer has, which then takes flipProbes more results
   * to undo. Counted as dropped. A batch already in flight is not recalled: if it commits, counting undoes it.
   */
  withdrawContradicted(targetId: string, healthyNow: boolean): void {
    const pending = this.pending.get(targetId);
    if (pending === undefined || pending.flip.healthy === healthyNow) return;
    this.pending.delete(targetId);
    this.options.onBatch('dropped', 1, 0);
  }

  /** close stops sending; a batch in flight completes on its own. */
  close(): void {
    this.closed = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.pending.clear();
  }

  private schedule(delayMs: number): void {
    if (this.timer !== null || this.sending || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.flush();
    }, delayMs);
  }

  /** nextBatch drops verdicts whose stamp is not current and takes up to flipsPerBatchMax of the rest. */
  private nextBatch(): { stamp: Stamp; entries: Array<[string, PendingFlip]> } | null {
    const entries: Array<[string, PendingFlip]> = [];
    for (const [id, pending] of this.pending) {
      if (!sameStamp(pending.stamp, this.stamp)) {
        this.pending.delete(id);
        this.options.onBatch('dropped', 1, 0);
        continue;
      }
      if (entries.length < this.options.flipsPerBatchMax) entries.push([id, pending]);
    }
    return entries.length === 0 ? null : { stamp: this.stamp, entries };
  }

  private async flush(): Promise<void> {
    if (this.sending || this.closed) return;
    const batch = this.nextBatch();
    if (batch === null) return;
    this.sending = true;
    const flips = batch.entries.map(([, pending]) => pending.flip);
    let retry = false;
    try {
      const input: HealthBatchInput = { term: batch.stamp.term, prober: this.options.self, assignment: batch.stamp.epoch, flips };
      const outcome = await this.options.sink.setHealthBatch(input, { timeoutMs: this.options.timeoutMs });
      this.options.onBatch(outcome.fenced === '' ? 'committed' : 'fenced', flips.length, outcome.applied);
      this.settle(batch.entries);
    } catch (error) {
      this.options.onBatch('failed', flips.length, 0);
      this.options.onError(error);
      retry = true;
    } finally {
      this.sending = false;
    }
    if (this.pending.size > 0) this.schedule(retry ? this.options.retryMs : 0);
  }

  /** settle removes the sent verdicts, unless a newer verdict for the same target replaced one meanwhile. */
  private settle(entries: ReadonlyArray<[string, PendingFlip]>): void {
    for (const [id, pending] of entries) {
      if (this.pending.get(id) === pending) this.pending.delete(id);
    }
  }
}
