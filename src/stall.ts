// stall: the stall fence. A member whose event loop stood still (SIGSTOP, a VM paused by its host, a GC or a
// synchronous task of seconds) finds, when it runs again, the requests that arrived meanwhile waiting in its sockets.
// Their clients may have timed out, redone the write through another member and moved on (deregistered the
// instance there, say); a late registration applied now would win over that (docs/ap.md, "Forwarding"). Nothing in
// the Nacos Open API or in Node's socket API tells when a request left its client, but the member can tell that it
// was not running: a timer notes every stallCheckMs that the loop turns, and a gap over stallThresholdMs is a stall.
//
// fenceWrite() is called by the API adapters when a client write is read (HTTP: the request's headers; gRPC: a unary
// write or a Session register/deregister). It refuses with CAIRN_MEMBER_STALLED (retryable; nothing written):
// - while the timer is overdue by more than the threshold: the loop is running again but has not reached its timers,
//   so this is the first turn after a stall, when what queued in the sockets is read;
// - and after the timer saw the stall, until the loop keeps time again: at least stallGraceMs (a connection accepted
//   in the first turn is read in the next), and beyond it for as long as the timer still fires late, since the loop
//   is then still draining what queued during the stall (after a 38 s pause an audit saw a queued write read 154 ms
//   after the stall was seen, with a fixed 150 ms grace); the grace ends at the first two ticks in a row that come
//   on time after stallGraceMs, and at stallGraceMsMax whatever the ticks say, so a member starved of CPU for good
//   still serves writes.
// Writes read later are served. fenceRead() refuses reads of the registry in the same window (HTTP GETs of the Nacos
// naming API, gRPC reads): their answers would come from the state the member stood still with, before it has read
// what its peers sent meanwhile. A member's stall is logged and counted; so is each refusal.
//
// It narrows the window, it does not close it: a request whose client gave up before a stall shorter than the
// threshold, or one delayed in the network rather than in the member, is still applied (see requestReceiveMsMax for
// the network). A refusal costs a client a retry, and a member that is starved of CPU for over a second refuses
// writes as if it had stopped, which is what such a member should do.
import { CairnError } from './errors.ts';
import { assert } from './assert.ts';
import { monotonicMs } from './clock.ts';

/** onTimeTicksToSettle is how many ticks in a row must come on time after a stall before the grace may end. */
const onTimeTicksToSettle = 2;

/** StallApi names the adapter a refused write came through (a label of the refusal counter). */
export type StallApi = 'http' | 'grpc' | 'session';

/** WriteFence is what the API adapters need of a StallWatch. */
export interface WriteFence {
  fenceWrite(api: StallApi): void;
  /** fenceRead refuses, in the same window, a read whose answer would come from the state the member stood still with. */
  fenceRead?(api: StallApi): void;
}

/** StallWatchOptions configure a StallWatch (production: the stall* values of src/limits.ts). */
export interface StallWatchOptions {
  readonly checkMs: number;
  readonly thresholdMs: number;
  readonly graceMs: number;
  /** graceMaxMs ends the grace however late the timer still fires (default: graceMs, a fixed grace). */
  readonly graceMaxMs?: number;
  /** onStall is told each stall the timer sees, with how long the loop stood still (log and count it). */
  readonly onStall?: (stalledMs: number) => void;
  /** onRefused is told each write refused. */
  readonly onRefused?: (api: StallApi) => void;
  /** onReadRefused is told each read refused. */
  readonly onReadRefused?: (api: StallApi) => void;
  /** now is the monotonic clock in ms (tests may pass their own). */
  readonly now?: () => number;
}

/**
 * StallWatch tells whether a write read now may have waited through a stall of this process. Invariants: lastTickMs
 * only grows; graceUntilMs is -Infinity until the first stall.
 */
export class StallWatch implements WriteFence {
  private readonly now: () => number;
  private lastTickMs: number;
  private graceUntilMs = Number.NEGATIVE_INFINITY;
  /** graceMinUntilMs is when the current grace may end at the earliest (stallGraceMs after the stall was seen). */
  private graceMinUntilMs = Number.NEGATIVE_INFINITY;
  /** onTimeTicks counts the ticks in a row, since the stall, that came no later than onTimeGapMs. */
  private onTimeTicks = 0;
  private lastStallMs = 0;
  private timer: NodeJS.Timeout | null = null;
  private stallCount = 0;
  private refusedCount = 0;

  constructor(private readonly options: StallWatchOptions) {
    assert(options.checkMs > 0 && options.thresholdMs > options.checkMs && options.graceMs >= 0 && (options.graceMaxMs ?? options.graceMs) >= options.graceMs, 'stall watch: bad timings');
    this.now = options.now ?? monotonicMs;
    this.lastTickMs = this.now();
  }

  /** start begins noting the loop's turns; the timer does not keep the process alive. */
  start(): void {
    if (this.timer !== null) return;
    this.lastTickMs = this.now();
    this.timer = setInterval(() => this.tick(), this.options.checkMs);
    this.timer.unref();
  }

  /** stop ends the watch; fenceWrite() then refuses nothing. */
  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** tick is the timer's: a gap since the last one over the threshold was a stall (exported for tests). */
  tick(): void {
    const now = this.now();
    const gap = now - this.lastTickMs;
    this.lastTickMs = Math.max(this.lastTickMs, now);
    if (gap > this.options.thresholdMs) {
      this.stallCount += 1;
      this.lastStallMs = gap;
      this.graceMinUntilMs = now + this.options.graceMs;
      this.graceUntilMs = now + (this.options.graceMaxMs ?? this.options.graceMs);
      this.onTimeTicks = 0;
      this.options.onStall?.(gap);
      return;
    }
    if (now >= this.graceUntilMs) return;
    // In a grace: it ends once the loop keeps time again (two ticks in a row on time) and the least grace is over.
    this.onTimeTicks = gap <= this.onTimeGapMs() ? this.onTimeTicks + 1 : 0;
    if (this.onTimeTicks >= onTimeTicksToSettle && now >= this.graceMinUntilMs) this.graceUntilMs = now;
  }

  /** onTimeGapMs is the longest gap between ticks that counts as on time: half a period late. */
  private onTimeGapMs(): number {
    return this.options.checkMs * 1.5;
  }

  /** fenceWrite throws CAIRN_MEMBER_STALLED when a client write read now may have waited through a stall. */
  fenceWrite(api: StallApi): void {
    const stalledMs = this.stalledNow();
    if (stalledMs === null) return;
    this.refusedCount += 1;
    this.options.onRefused?.(api);
    throw new CairnError('CAIRN_MEMBER_STALLED', `this member stood still for ${stalledMs} ms (paused, or starved of CPU) and refuses the writes it reads as it resumes: they may have waited in its socket while their clients gave up. Nothing was written; retry, here or at another member.`, {
      details: { stalledMs },
    });
  }

  /**
   * fenceRead throws CAIRN_MEMBER_STALLED for a read in the same window: its answer would come from the state the
   * member stood still with, before it has read what its peers sent meanwhile (an audit saw a Nacos client's queued
   * list answered with a 12 s old list, and the client applied it). A client told so reads at another member.
   */
  fenceRead(api: StallApi): void {
    const stalledMs = this.stalledNow();
    if (stalledMs === null) return;
    this.options.onReadRefused?.(api);
    throw new CairnError('CAIRN_MEMBER_STALLED', `this member stood still for ${stalledMs} ms (paused, or starved of CPU) and has not yet caught up with what its peers sent meanwhile: its answer could be out of date. Read again, here shortly or at another member.`, {
      details: { stalledMs },
    });
  }

  /** stalledNow is the stall a request read now may have waited through (ms), or null when it is served. */
  private stalledNow(): number | null {
    if (this.timer === null) return null;
    const now = this.now();
    const overdue = now - this.lastTickMs;
    if (overdue <= this.options.thresholdMs && now >= this.graceUntilMs) return null;
    return Math.round(overdue > this.options.thresholdMs ? overdue : this.lastStallMs);
  }

  /** stalls is how many stalls the timer saw. */
  stalls(): number {
    return this.stallCount;
  }

  /** refused is how many writes fenceWrite() refused. */
  refused(): number {
    return this.refusedCount;
  }
}
