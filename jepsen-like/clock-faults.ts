// clock-faults: what the clock nemesis does (PEERS.md §2.3 A12, "clock bump/strobe on the leader"), as pure plans
// the nemesis plays (nemesis.ts) on the members' libfaketime control files (faketime.ts).
//
// Shapes, drawn from the seed like every other fault:
// - bump: the target members' offsets move by a whole number of seconds drawn from offsetSeconds (±2..±90 s by
//   default: in wall mode the sign is drawn per member, in monotonic mode it is always forward). Sometimes
//   (severalBumpsChance) one fault makes 2..bumpsPerFaultMax bumps, 1-3 s apart, each adding to the last: offsets
//   accumulate, as when NTP steps a clock that is then stepped again.
// - strobe: one member's offset alternates between +X and -X (X drawn from offsetSeconds) every 1-2 s for the fault's
//   hold: a clock that jumps back and forth, as with two time sources that disagree. Wall mode only: a monotonic
//   clock never goes back (faketime.ts).
// Targets: 'one' (a random running member), 'leader' (the Raft leader; strobe takes the leader too), 'all' (every
// member, each with its own draw, so they disagree with each other too).
//
// A fault's end and the heal: in wall mode every control file goes back to "+0" (the clocks are right again, as
// after NTP's next correction); in monotonic mode the offsets stay (faketime.ts: taking a monotonic offset back
// would freeze the member's timers). Every write is a `clock-step` observer line with every offset it set (the
// fault's start and stop are the usual start-clock / stop-clock nemesis pairs), so the history says when which
// member's clock moved by how much; whether the member's clock really moved is checked at each fault's start through
// the HTTP `Date` header of the member's answers (probeClock, a `clock-probe` observer line).

import type { RecordedEvent } from './history.ts';
import { isNemesisEvent, isObserverEvent } from './history.ts';
import { formatOffset, type ClockMode } from './faketime.ts';
import type { Random } from './random.ts';
import { boundedRequest } from '../test/support/http.ts';

/** ClockShape is the shape of a clock fault. */
export type ClockShape = 'bump' | 'strobe';
/** clockShapes lists every shape, for the command line. */
export const clockShapes: readonly ClockShape[] = ['bump', 'strobe'];
/** ClockTarget is which members a clock fault moves. */
export type ClockTarget = 'one' | 'leader' | 'all';
/** clockTargets lists every target, for the command line. */
export const clockTargets: readonly ClockTarget[] = ['one', 'leader', 'all'];

/** ClockFaultOptions shape the clock nemesis. */
export interface ClockFaultOptions {
  readonly mode: ClockMode;
  readonly shapes: readonly ClockShape[];
  readonly targets: readonly ClockTarget[];
  /** offsetSeconds: one bump's size, or a strobe's swing, [min, max] whole seconds. */
  readonly offsetSeconds: readonly [number, number];
}

/** defaultClockFaultOptions: wall steps of 2-90 s either way, bumps and strobes, on one member, the leader or all. */
export const defaultClockFaultOptions: ClockFaultOptions = { mode: 'wall', shapes: ['bump', 'strobe'], targets: ['one', 'leader', 'all'], offsetSeconds: [2, 90] };

/** severalBumpsChance: the share of bump faults that bump more than once. */
export const severalBumpsChance = 0.3;
/** bumpsPerFaultMax bounds the bumps of one fault. */
export const bumpsPerFaultMax = 3;
/** bumpSpacingMs: the time between two bumps of one fault. */
export const bumpSpacingMs: readonly [number, number] = [1000, 3000];
/** strobePeriodMs: the time between two flips of a strobe. */
export const strobePeriodMs: readonly [number, number] = [1000, 2000];
/** strobeStepsMax bounds a strobe's flips whatever its hold (a 10-minute fault at one flip a second). */
export const strobeStepsMax = 600;
/** wallOffsetTotalMaxSeconds bounds a member's accumulated wall offset: a bump that would pass it goes the other way. */
export const wallOffsetTotalMaxSeconds = 180;
/** monotonicOffsetTotalMaxSeconds bounds a member's accumulated monotonic offset (they only grow): an hour. */
export const monotonicOffsetTotalMaxSeconds = 3600;
/** offsetSecondsLimit bounds --clock-offset-seconds: at most the accumulated wall bound, so a reversed bump stays in it. */
export const offsetSecondsLimit = wallOffsetTotalMaxSeconds;

/** checkClockFaultOptions returns why `options` cannot be played, or null. */
export function checkClockFaultOptions(options: ClockFaultOptions): string | null {
  const [min, max] = options.offsetSeconds;
  if (!Number.isInteger(min) || !Number.isInteger(max) || min < 1 || max < min || max > offsetSecondsLimit) return `clock offsets ${min}..${max} s: whole seconds with 1 <= min <= max <= ${offsetSecondsLimit}`;
  if (options.shapes.length === 0) return 'no clock fault shape';
  if (options.targets.length === 0) return 'no clock fault target';
  if (options.mode === 'monotonic' && options.shapes.includes('strobe')) return 'a strobe takes the clock back, and a monotonic clock never goes back: use --clock-mode wall for strobes';
  return null;
}

/** ClockStep is one write of a fault: the offsets (whole seconds, relative to the real clock) it sets per member. */
export interface ClockStep {
  /** afterMs: the wait since the fault's previous step (0 for the first, written when the fault starts). */
  readonly afterMs: number;
  readonly offsets: Readonly<Record<string, number>>;
}

/** ClockPlan is a planned clock fault. */
export interface ClockPlan {
  readonly shape: ClockShape;
  readonly members: readonly string[];
  readonly steps: readonly ClockStep[];
}

/** drawDelta draws one bump: a magnitude in `offsetSeconds`, forward in monotonic mode, either way in wall mode. */
export function drawDelta(random: Random, offsetSeconds: readonly [number, number], mode: ClockMode): number {
  const magnitude = random.between(offsetSeconds[0], offsetSeconds[1]);
  return mode === 'monotonic' || random.chance(0.5) ? magnitude : -magnitude;
}

/**
 * accumulate adds a bump to a member's offset within the mode's bound: a wall bump that would pass
 * ±wallOffsetTotalMaxSeconds is taken the other way (still a step of the drawn size); a monotonic one stops at
 * monotonicOffsetTotalMaxSeconds.
 */
export function accumulate(current: number, delta: number, mode: ClockMode): number {
  if (mode === 'monotonic') return Math.min(current + Math.abs(delta), monotonicOffsetTotalMaxSeconds);
  const next = current + delta;
  return Math.abs(next) <= wallOffsetTotalMaxSeconds ? next : current - delta;
}

/**
 * planClockFault plans one fault of `shape` on `members` (chosen by the nemesis; a strobe takes the first only),
 * from their current offsets, for a hold of at most `holdMsMax`: no step is planned after it.
 */
export function planClockFault(shape: ClockShape, members: readonly string[], current: ReadonlyMap<string, number>, holdMsMax: number, options: ClockFaultOptions, random: Random): ClockPlan {
  if (members.length === 0) throw new Error('planClockFault: no member to move');
  const problem = checkClockFaultOptions(options);
  if (problem !== null) throw new Error(`planClockFault: ${problem}`);
  const steps: ClockStep[] = [];
  if (shape === 'bump') {
    const bumps = random.chance(severalBumpsChance) ? random.between(2, bumpsPerFaultMax) : 1;
    const offsets = new Map(members.map((member) => [member, current.get(member) ?? 0]));
    let elapsedMs = 0;
    for (let bump = 0; bump < bumps; bump++) {
      const afterMs = bump === 0 ? 0 : random.between(...bumpSpacingMs);
      if (elapsedMs + afterMs > holdMsMax) break;
      elapsedMs += afterMs;
      for (const [member, offset] of offsets) offsets.set(member, accumulate(offset, drawDelta(random, options.offsetSeconds, options.mode), options.mode));
      steps.push({ afterMs, offsets: Object.fromEntries(offsets) });
    }
    return { shape, members: [...members], steps };
  }
  const member = members[0] ?? '';
  const swing = random.between(...options.offsetSeconds);
  let elapsedMs = 0;
  for (let flip = 0; flip < strobeStepsMax; flip++) {
    const afterMs = flip === 0 ? 0 : random.between(...strobePeriodMs);
    if (elapsedMs + afterMs > holdMsMax) break;
    elapsedMs += afterMs;
    steps.push({ afterMs, offsets: { [member]: flip % 2 === 0 ? swing : -swing } });
  }
  return { shape, members: [member], steps };
}

/** healedOffsets: what the heal leaves: every offset 0 in wall mode; in monotonic mode they stay (see the file comment). */
export function healedOffsets(mode: ClockMode, current: ReadonlyMap<string, number>): Map<string, number> {
  return new Map([...current].map(([member, offset]) => [member, mode === 'wall' ? 0 : offset]));
}

/** formatOffsets renders per-member offsets as libfaketime reads them, for the history. */
export function formatOffsets(offsets: Readonly<Record<string, number>> | ReadonlyMap<string, number>): Record<string, string> {
  const entries = offsets instanceof Map ? [...offsets] : Object.entries(offsets);
  return Object.fromEntries(entries.map(([member, seconds]) => [member, formatOffset(seconds)]));
}

/**
 * StepPlayer plays a plan's steps after the first (which the nemesis writes when the fault starts), each after its
 * wait, until the plan ends or stop() is called; stop() wakes a wait at once and resolves when the player is done,
 * so no step is written after it.
 */
export class StepPlayer {
  private stopped = false;
  private wake: (() => void) | null = null;
  private readonly done: Promise<void>;

  /** constructor starts playing `plan` (from its second step) through `apply`, one step at a time. */
  constructor(plan: ClockPlan, apply: (step: ClockStep, index: number) => Promise<void>) {
    this.done = this.play(plan, apply);
  }

  private async play(plan: ClockPlan, apply: (step: ClockStep, index: number) => Promise<void>): Promise<void> {
    for (let index = 1; index < plan.steps.length && !this.stopped; index++) {
      const step = plan.steps[index];
      if (step === undefined) return;
      await this.wait(step.afterMs);
      if (this.stopped) return;
      await apply(step, index);
    }
  }

  private wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wake = null;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  /** stop ends the playing and resolves once no step can be written any more. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.done;
  }
}

/** dateProbeTimeoutMs bounds one probe request: a local member answers its cluster view in milliseconds. */
const dateProbeTimeoutMs = 1000;
/** probeClockBoundMs: libfaketime's reread (1 s) + Node's Date header cache (1 s) + two seconds of margin. */
export const probeClockBoundMs = 4000;
/** probePollMs spaces the probes of one member. */
const probePollMs = 250;

/**
 * memberClockSeconds reads how far a member's wall clock stands from the harness's (seconds, positive: ahead), from
 * the `Date` header Node puts on every HTTP answer; null without an answer. The header has whole seconds and Node
 * keeps it up to a second, so the reading is the offset less up to about 1 s.
 */
export async function memberClockSeconds(addr: string): Promise<number | null> {
  try {
    const answer = await boundedRequest(addr, 'GET', '/cairn/v1/cluster', { timeoutMs: dateProbeTimeoutMs });
    const header = answer.headers['date'] ?? null;
    const at = Date.now();
    const memberMs = header === null ? Number.NaN : Date.parse(header);
    return Number.isFinite(memberMs) ? (memberMs - at) / 1000 : null;
  } catch {
    return null;
  }
}

/** offsetSeen: a Date-header reading (memberClockSeconds) agrees with an offset written to the control file. */
export function offsetSeen(observedSeconds: number, offsetSeconds: number): boolean {
  return observedSeconds >= offsetSeconds - 1.6 && observedSeconds <= offsetSeconds + 0.6;
}

/** ClockProbe is what one member's clock showed after a fault's first step. */
export interface ClockProbe {
  readonly member: string;
  readonly expected: number;
  /** seenAfterMs: when a reading first agreed with the step, or null when none did within probeClockBoundMs. */
  readonly seenAfterMs: number | null;
  /** lastObserved: the last reading (seconds), or null when the member never answered. */
  readonly lastObserved: number | null;
}

/**
 * probeClock polls `member`'s Date header until a reading agrees with one of the offsets `accepted()` names (the
 * step written, or one a strobe wrote since), at most probeClockBoundMs.
 */
export async function probeClock(member: string, expected: number, accepted: () => readonly number[]): Promise<ClockProbe> {
  const started = Date.now();
  let lastObserved: number | null = null;
  const roundsMax = Math.ceil(probeClockBoundMs / probePollMs) + 1;
  for (let round = 0; round < roundsMax && Date.now() - started < probeClockBoundMs; round++) {
    const observed = await memberClockSeconds(member);
    if (observed !== null) {
      lastObserved = Math.round(observed * 10) / 10;
      if (accepted().some((offset) => offsetSeen(observed, offset))) return { member, expected, seenAfterMs: Date.now() - started, lastObserved };
    }
    await new Promise((resolve) => setTimeout(resolve, probePollMs));
  }
  return { member, expected, seenAfterMs: null, lastObserved };
}

/** ClockMove is one member's offset set at one time (ms since the run started). */
export interface ClockMove {
  readonly atMs: number;
  readonly member: string;
  readonly offset: string;
  readonly reason: string;
}

/** ClockReport summarises a run's clock faults for results.json. */
export interface ClockReport {
  readonly mode: ClockMode;
  readonly faults: number;
  /** moves: every offset written, in order (at most clockMovesKept). */
  readonly moves: readonly ClockMove[];
  /** perMember: how many writes, and the furthest ahead and behind each member was put (seconds). */
  readonly perMember: Readonly<Record<string, { readonly writes: number; readonly aheadMax: number; readonly behindMax: number }>>;
  /** probes: fault starts whose clock change showed in the member's Date header, and those that did not. */
  readonly probes: { readonly seen: number; readonly notSeen: readonly string[] };
}

/** clockMovesKept bounds the moves results.json lists (a strobe writes once a second). */
const clockMovesKept = 2000;

/** clockReport reads the clock nemesis's lines of a history (clock-step, start-clock, clock-probe). */
export function clockReport(events: readonly RecordedEvent[], mode: ClockMode): ClockReport {
  const moves: ClockMove[] = [];
  const perMember: Record<string, { writes: number; aheadMax: number; behindMax: number }> = {};
  let faults = 0;
  let seen = 0;
  const notSeen: string[] = [];
  for (const event of events) {
    if (isNemesisEvent(event) && event.f === 'start-clock' && event.type === 'info') faults++;
    if (!isObserverEvent(event)) continue;
    const value = (event.value ?? {}) as Record<string, unknown>;
    if (event.f === 'clock-probe') {
      for (const probe of Array.isArray(value['probes']) ? (value['probes'] as ClockProbe[]) : []) {
        if (probe.seenAfterMs === null) notSeen.push(`#${String(value['id'])} ${probe.member}: ${formatOffset(probe.expected)} not seen (last reading ${probe.lastObserved ?? 'none'} s)`);
        else seen++;
      }
    }
    if (event.f !== 'clock-step') continue;
    for (const [member, offset] of Object.entries((value['offsets'] ?? {}) as Record<string, string>)) {
      const seconds = Number(offset);
      const stats = (perMember[member] ??= { writes: 0, aheadMax: 0, behindMax: 0 });
      stats.writes++;
      stats.aheadMax = Math.max(stats.aheadMax, seconds);
      stats.behindMax = Math.max(stats.behindMax, -seconds);
      if (moves.length < clockMovesKept) moves.push({ atMs: Math.round(event.time / 1e6), member, offset, reason: String(value['reason'] ?? '') });
    }
  }
  return { mode, faults, moves, perMember, probes: { seen, notSeen } };
}
