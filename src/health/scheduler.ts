// scheduler: when each target is probed (NACOS.md §4.3, with Cairn's bounds).
//
// - One timer per target. Its interval adapts to the target's response time as Nacos's "check RT":
//   next = factor * previous + (1 - factor) * rt, clamped to the type's [min, max]; a failed (or inconclusive) probe
//   counts as rt = max, so failing targets are probed less often and fast healthy ones at the minimum. rt is the
//   probe's own exchange: the HTTP prober never queues a probe behind another (http-prober.ts). Each delay gets +-10% jitter so
//   targets added together drift apart.
// - Bounds per type are Nacos's (TCP 1-5 s, HTTP 0.5-5 s, MySQL 2-3 s) clamped into limits.probeIntervalMsMin/Max
//   (2.5-10 s): Nacos's 0.5-1.25 s probing is what users complain about (#11230), and limits.ts keeps the minimum
//   above the probe timeout so probes of one target never overlap.
// - A cluster may fix its interval instead (the checker's `intervalMs`, Cairn's extension, like Consul's `interval`):
//   its targets are then probed every intervalMs with the same jitter, whatever their response time.
// - No probe storm: a new target's first probe is at a uniformly random point of its first interval, so the targets
//   a member takes on at start, after a leader change or when a member leaves are spread over one interval.
// - Bounded concurrency: at most concurrencyMax probes in flight; a due target beyond that waits in a FIFO queue
//   (bounded: a target is at most once in it) and the wait is reported as lag behind schedule.
// - A target is probed by at most one probe at a time; removing it cancels its timer, and a probe still in flight
//   for it has its result dropped.

import { assert } from '../assert.ts';
import type { ActiveCheckerType, Prober, ProbeResult, ProbeTarget } from './probe.ts';
import { monotonicMs } from '../clock.ts';

/** IntervalBounds are one checker type's adaptive interval bounds and smoothing factor. */
export interface IntervalBounds {
  readonly minMs: number;
  readonly maxMs: number;
  /** factor is the weight of the previous interval (Nacos's checkRT factor), in [0, 1). */
  readonly factor: number;
}

/** NACOS_INTERVAL_BOUNDS are Nacos's per-type bounds and factors (SwitchDomain's tcp/http/mysqlHealthParams). */
export const NACOS_INTERVAL_BOUNDS: Readonly<Record<ActiveCheckerType, IntervalBounds>> = Object.freeze({
  TCP: { minMs: 1000, maxMs: 5000, factor: 0.75 },
  HTTP: { minMs: 500, maxMs: 5000, factor: 0.85 },
  MYSQL: { minMs: 2000, maxMs: 3000, factor: 0.65 },
});

/** clampBounds fits Nacos's bounds into Cairn's [minMs, maxMs] (limits.probeIntervalMsMin/Max). */
export function clampBounds(bounds: IntervalBounds, minMs: number, maxMs: number): IntervalBounds {
  assert(minMs <= maxMs, 'clampBounds: empty range');
  const min = Math.min(Math.max(bounds.minMs, minMs), maxMs);
  const max = Math.min(Math.max(bounds.maxMs, min), maxMs);
  return { minMs: min, maxMs: max, factor: bounds.factor };
}

/** nextInterval is Nacos's reEvaluateCheckRT: smooth the response time into the interval, then clamp. */
export function nextInterval(previousMs: number, result: ProbeResult, bounds: IntervalBounds): number {
  const rt = result.healthy ? result.latencyMs : bounds.maxMs;
  const next = bounds.factor * previousMs + (1 - bounds.factor) * rt;
  return Math.min(bounds.maxMs, Math.max(bounds.minMs, next));
}

/** sameTarget tells whether two targets probe the same address with the same checker (secrets compared, never shown). */
export function sameTarget(a: ProbeTarget, b: ProbeTarget): boolean {
  return a.id === b.id && a.host === b.host && a.port === b.port && JSON.stringify(a.checker) === JSON.stringify(b.checker);
}

/** JITTER_FRACTION spreads each delay by up to +-10%. */
export const JITTER_FRACTION = 0.1;

/** SchedulerHooks receive what the scheduler observes. */
export interface SchedulerHooks {
  /** onResult is called with every probe result of a target still scheduled. */
  onResult(target: ProbeTarget, result: ProbeResult): void;
  /** onLag reports how late a probe started (ms after it was due); 0 when on time. */
  onLag(lagMs: number): void;
  /** onQueue reports how many due targets wait for a free probe slot. */
  onQueue(waiting: number): void;
}

/** SchedulerOptions configure a scheduler; tests shorten intervals and inject randomness and time. */
export interface SchedulerOptions {
  readonly probers: Readonly<Record<ActiveCheckerType, Prober>>;
  readonly bounds: Readonly<Record<ActiveCheckerType, IntervalBounds>>;
  readonly timeoutMs: number;
  readonly concurrencyMax: number;
  readonly hooks: SchedulerHooks;
  readonly random?: () => number;
  readonly now?: () => number;
}

/** Task is one scheduled target. Invariant: at most one of (timer set, queued, running). */
interface Task {
  target: ProbeTarget;
  intervalMs: number;
  dueAt: number;
  timer: NodeJS.Timeout | null;
  queued: boolean;
  running: boolean;
  removed: boolean;
}

/** ProbeScheduler probes a changing set of targets; see the file comment. */
export class ProbeScheduler {
  private readonly options: SchedulerOptions;
  private readonly tasks = new Map<string, Task>();
  /** waiting holds due tasks in due order; each task is in it at most once, so it never exceeds tasks.size. */
  private readonly waiting: Task[] = [];
  private running = 0;
  private closed = false;
  private readonly random: () => number;
  private readonly now: () => number;

  constructor(options: SchedulerOptions) {
    assert(options.concurrencyMax >= 1, 'ProbeScheduler: concurrencyMax >= 1');
    this.options = options;
    this.random = options.random ?? Math.random;
    this.now = options.now ?? monotonicMs;
  }

  /** size is the number of scheduled targets. */
  get size(): number {
    return this.tasks.size;
  }

  /** inFlight is the number of probes running. */
  get inFlight(): number {
    return this.running;
  }

  /** has tells whether a target is scheduled. */
  has(targetId: string): boolean {
    return this.tasks.has(targetId);
  }

  /**
   * upsert schedules a new target (first probe at a random point of its first interval) or updates a scheduled one.
   * A changed checker or address keeps the schedule but releases what the prober kept for the old one.
   */
  upsert(target: ProbeTarget): void {
    assert(!this.closed, 'upsert after close');
    const existing = this.tasks.get(target.id);
    if (existing !== undefined) {
      if (sameTarget(existing.target, target)) return;
      this.options.probers[existing.target.checker.type].forget(target.id);
      existing.target = target;
      existing.intervalMs = Math.min(Math.max(existing.intervalMs, this.bounds(target).minMs), this.bounds(target).maxMs);
      return;
    }
    const intervalMs = this.bounds(target).maxMs;
    const task: Task = { target, intervalMs, dueAt: 0, timer: null, queued: false, running: false, removed: false };
    this.tasks.set(target.id, task);
    this.arm(task, this.random() * intervalMs);
  }

  /** remove stops probing a target and releases what its prober kept. */
  remove(targetId: string): void {
    const task = this.tasks.get(targetId);
    if (task === undefined) return;
    this.tasks.delete(targetId);
    task.removed = true;
    if (task.timer !== null) clearTimeout(task.timer);
    task.timer = null;
    if (task.queued) {
      const at = this.waiting.indexOf(task);
      if (at >= 0) this.waiting.splice(at, 1);
      task.queued = false;
      this.options.hooks.onQueue(this.waiting.length);
    }
    this.options.probers[task.target.checker.type].forget(targetId);
  }

  /** targetIds lists the scheduled targets' ids. */
  targetIds(): string[] {
    return [...this.tasks.keys()];
  }

  /** close cancels every timer and forgets every target; probes in flight finish and are ignored. */
  close(): void {
    this.closed = true;
    for (const id of [...this.tasks.keys()]) this.remove(id);
  }

  /** bounds are the target's interval bounds: its cluster's fixed interval when set, else its type's adaptive ones. */
  private bounds(target: ProbeTarget): IntervalBounds {
    const fixed = target.checker.intervalMs;
    if (fixed !== undefined) return { minMs: fixed, maxMs: fixed, factor: 0 };
    return this.options.bounds[target.checker.type];
  }

  private arm(task: Task, delayMs: number): void {
    task.dueAt = this.now() + delayMs;
    task.timer = setTimeout(() => this.onDue(task), Math.max(0, Math.round(delayMs)));
  }

  private onDue(task: Task): void {
    task.timer = null;
    if (task.removed || this.closed) return;
    if (this.running < this.options.concurrencyMax) {
      this.start(task);
      return;
    }
    task.queued = true;
    this.waiting.push(task);
    this.options.hooks.onQueue(this.waiting.length);
  }

  private start(task: Task): void {
    assert(!task.running && task.timer === null, 'start: the task is already running or armed');
    task.running = true;
    this.running += 1;
    this.options.hooks.onLag(Math.max(0, this.now() - task.dueAt));
    const target = task.target;
    // Probers never reject; a bug that makes one reject still counts as a failed probe rather than a lost task.
    void this.options.probers[target.checker.type].probe(target, this.options.timeoutMs)
      .catch((error: unknown): ProbeResult => ({ healthy: false, refused: false, latencyMs: 0, detail: `prober failed: ${String(error)}` }))
      .then((result) => this.finish(task, target, result));
  }

  private finish(task: Task, target: ProbeTarget, result: ProbeResult): void {
    task.running = false;
    this.running -= 1;
    if (!task.removed && !this.closed) {
      // A result for a target whose checker changed while the probe ran says nothing about the new checker.
      if (task.target === target) this.options.hooks.onResult(target, result);
      task.intervalMs = nextInterval(task.intervalMs, result, this.bounds(task.target));
      const jitter = 1 + (this.random() * 2 - 1) * JITTER_FRACTION;
      this.arm(task, task.intervalMs * jitter);
    }
    this.pump();
  }

  /** pump starts waiting tasks while probe slots are free. */
  private pump(): void {
    let started = false;
    while (this.running < this.options.concurrencyMax && this.waiting.length > 0) {
      const task = this.waiting.shift();
      if (task === undefined) break;
      task.queued = false;
      started = true;
      if (!task.removed) this.start(task);
    }
    if (started) this.options.hooks.onQueue(this.waiting.length);
  }
}
