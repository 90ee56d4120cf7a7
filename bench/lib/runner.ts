// The closed-loop load runner: N clients, each issuing its next operation as soon as the previous one answered,
// for a fixed window after a short warm-up. It records every latency of the window (bounded), counts errors by
// message (bounded), and samples CPU (utime+stime from /proc) of the bench process and of each member before and
// after the window, so every figure comes with its CPU per operation. It also samples the members of the systems
// not under test (bystanders): every system runs during the whole bench, and one that spins (a ZooKeeper ensemble
// reloading its database in a loop) takes the CPU the system under test needs, which the row then says.
import { cpuSecondsOf, describe, schedDelta, schedOf, type ThreadSched } from './processes.ts';
import type { SnapshotEvents } from './clusters.ts';

/** NotMeasured is thrown by an operation that the system under test cannot perform (e.g. UNIMPLEMENTED). */
export class NotMeasured extends Error {
  override readonly name = 'NotMeasured';
}

/** Exhausted is thrown by an operation that has nothing left to do (e.g. no registered instance left to remove). */
export class Exhausted extends Error {
  override readonly name = 'Exhausted';
}

/**
 * Operation performs one operation for client `client` (0-based). It resolves with nothing (its latency is the
 * time it took) or with a latency in milliseconds it measured itself (change-to-notification).
 */
export type Operation = (client: number) => Promise<number | void>;

/** RunOptions: concurrency, window, warm-up, and the pids whose CPU is sampled (members, in order; bystanders). */
export interface RunOptions {
  readonly clients: number;
  readonly durationMs: number;
  readonly warmupMs: number;
  readonly memberPids: readonly number[];
  /** bystanderPids: the members of the other systems, running but not under test; their CPU is summed. */
  readonly bystanderPids?: readonly number[];
}

/** CpuPerOp is CPU time per operation in microseconds: the bench process (client) and each member. */
export interface CpuPerOp {
  readonly clientUs: number;
  readonly membersUs: readonly number[];
  readonly membersTotalUs: number;
}

/**
 * SchedPerOp is what the scheduler says of the window, per operation, summed over each process's threads
 * (/proc/<pid>/task/<tid>/schedstat): the microseconds runnable but waiting for a CPU (the run queue), and the times
 * put on a CPU (each wake-up or preemption). It tells whether a latency is work or waiting for a core. The `main`
 * figures count only the thread whose id is the process's: the event loop of a Node process (the bench client,
 * Cairn's members), which every request and message of a write passes through; for etcd (Go) and ZooKeeper (JVM)
 * that thread is not on the path of a request, so only their all-thread figures mean anything.
 */
export interface SchedPerOp {
  readonly clientWaitUs: number;
  readonly membersWaitUs: readonly number[];
  readonly membersWaitTotalUs: number;
  readonly clientSlices: number;
  readonly membersSlices: readonly number[];
  readonly clientMainWaitUs: number;
  readonly membersMainWaitUs: readonly number[];
  readonly clientMainSlices: number;
  readonly membersMainSlices: readonly number[];
}

/** RunResult is the outcome of one window. */
export interface RunResult {
  readonly status: 'ok' | 'not-measured';
  readonly reason?: string;
  readonly ops: number;
  readonly errors: number;
  readonly errorSamples: Readonly<Record<string, number>>;
  readonly seconds: number;
  readonly opsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly cpu: CpuPerOp;
  /** sched: run-queue wait and slices per op; absent in results written before session 28. */
  readonly sched?: SchedPerOp;
  /**
   * snapshots: Cairn cells only, since session 29: the cluster's compactions during the cell, and the whole-registry
   * images a follower needed (a cell with an image is not a steady state). Null when the counters could not be read.
   */
  readonly snapshots?: SnapshotEvents | null;
  readonly exhausted: boolean;
  /**
   * bystanderCores: the CPU the other systems' members used during the measured window, in cores (1 = one core
   * busy all the time); NaN when there were none. Idle clusters use a few hundredths of a core (heartbeats).
   */
  readonly bystanderCores: number;
}

/** latencySamplesMax bounds the latencies kept per window (beyond it they are counted, not kept). */
const latencySamplesMax = 2_000_000;
/** errorKindsMax bounds the distinct error messages kept per window. */
const errorKindsMax = 20;
/** consecutiveErrorsMax stops a client that fails this many times in a row (a dead target must not spin). */
const consecutiveErrorsMax = 1000;

/** percentile reads the p-th percentile of sorted values (nearest rank). */
export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] ?? Number.NaN;
}

/** sampleCpu reads the CPU seconds of the bench process, then of each member, then of each bystander. */
async function sampleCpu(pids: readonly number[], bystanderPids: readonly number[]): Promise<number[]> {
  const usage = process.cpuUsage();
  const others = await Promise.all([...pids, ...bystanderPids].map(cpuSecondsOf));
  return [(usage.user + usage.system) / 1e6, ...others];
}

/** sampleSched reads the scheduler's counters of the bench process's threads, then of each member's. */
function sampleSched(pids: readonly number[]): Promise<Map<number, ThreadSched>[]> {
  return Promise.all([schedOf('self'), ...pids.map((pid) => schedOf(pid))]);
}

/** schedPerOp turns two samples of sampleSched into SchedPerOp for `ops` operations. */
function schedPerOp(before: readonly Map<number, ThreadSched>[], after: readonly Map<number, ThreadSched>[], ops: number, pids: readonly number[]): SchedPerOp {
  const unread: ThreadSched = { runNs: Number.NaN, waitNs: Number.NaN, slices: Number.NaN };
  // A process not readable at either end counts NaN (an empty first sample would count its whole life).
  const deltas = after.map((sample, i) => {
    const then = before[i];
    return then === undefined || then.size === 0 || sample.size === 0 ? unread : schedDelta(then, sample);
  });
  // The main thread of each process: its thread id is the process id (the bench process: process.pid).
  const mains = after.map((sample, i) => {
    const tid = i === 0 ? process.pid : pids[i - 1]!;
    const now = sample.get(tid);
    const then = before[i]?.get(tid);
    return now === undefined || then === undefined ? unread : schedDelta(new Map([[tid, then]]), new Map([[tid, now]]));
  });
  const per = (value: number): number => (ops > 0 ? value / ops : Number.NaN);
  const membersWaitUs = deltas.slice(1).map((delta) => per(delta.waitNs / 1000));
  return {
    clientWaitUs: per((deltas[0]?.waitNs ?? Number.NaN) / 1000),
    membersWaitUs,
    membersWaitTotalUs: membersWaitUs.reduce((sum, value) => sum + value, 0),
    clientSlices: per(deltas[0]?.slices ?? Number.NaN),
    membersSlices: deltas.slice(1).map((delta) => per(delta.slices)),
    clientMainWaitUs: per((mains[0]?.waitNs ?? Number.NaN) / 1000),
    membersMainWaitUs: mains.slice(1).map((main) => per(main.waitNs / 1000)),
    clientMainSlices: per(mains[0]?.slices ?? Number.NaN),
    membersMainSlices: mains.slice(1).map((main) => per(main.slices)),
  };
}

/** finiteDeltaSum sums after[i] - before[i] from index `first` on; a process not readable at both ends counts nothing. */
function finiteDeltaSum(before: readonly number[], after: readonly number[], first: number): number {
  let sum = 0;
  for (let i = first; i < after.length; i++) {
    const delta = (after[i] ?? Number.NaN) - (before[i] ?? Number.NaN);
    if (Number.isFinite(delta)) sum += delta;
  }
  return sum;
}

/** SettleOptions: the quiet a cell waits for before it starts (see settle). */
export interface SettleOptions {
  /** coresMax: the most CPU the watched processes may use together over one window, in cores. */
  readonly coresMax: number;
  readonly windowMs: number;
  /** waitMsMax: how long settle waits at most; the cell then starts anyway and its row says so. */
  readonly waitMsMax: number;
}

/** SettleResult: how long settle waited, whether the quiet came, and the CPU of its last window (cores). */
export interface SettleResult {
  readonly waitedMs: number;
  readonly quiet: boolean;
  readonly cores: number;
}

/**
 * settleDefaults: three idle clusters use ~0.05-0.1 of a core together (heartbeats, timers). /proc counts CPU in
 * ticks of 10 ms, so over a 400 ms window each process reads up to 0.025 cores off: nine of them stay under 0.25.
 */
export const settleDefaults: SettleOptions = { coresMax: 0.25, windowMs: 400, waitMsMax: 10_000 };

/**
 * settle waits until the processes `pids` together use at most coresMax over one window, or waitMsMax has passed.
 * A cell that starts while a system still works off the previous cell (sessions and leases that just ended with
 * thousands of instances and keys to remove, a compaction) would measure that work too, whichever system it is for.
 */
export async function settle(pids: readonly number[], options: SettleOptions = settleDefaults): Promise<SettleResult> {
  const started = performance.now();
  let cores = Number.NaN;
  // Bounded by waitMsMax: each pass takes windowMs.
  for (;;) {
    const before = await Promise.all(pids.map(cpuSecondsOf));
    const windowStart = performance.now();
    await new Promise((resolve) => setTimeout(resolve, options.windowMs));
    const after = await Promise.all(pids.map(cpuSecondsOf));
    const seconds = (performance.now() - windowStart) / 1000;
    cores = finiteDeltaSum(before, after, 0) / seconds;
    const waitedMs = performance.now() - started;
    if (cores <= options.coresMax) return { waitedMs, quiet: true, cores };
    if (waitedMs >= options.waitMsMax) return { waitedMs, quiet: false, cores };
  }
}

/** runClosedLoop runs `operation` with `clients` closed-loop clients over a warm-up and then a measured window. */
export async function runClosedLoop(operation: Operation, options: RunOptions): Promise<RunResult> {
  const latencies = new Float64Array(Math.min(latencySamplesMax, 1 << 16));
  let buffer = latencies;
  let kept = 0;
  let ops = 0;
  let errors = 0;
  const errorSamples = new Map<string, number>();
  let notMeasured: string | null = null;
  let exhausted = false;
  const bystanderPids = options.bystanderPids ?? [];
  const started = performance.now();
  const windowStart = started + options.warmupMs;
  const windowEnd = windowStart + options.durationMs;
  let stop = false;
  let cpuBefore: number[] = [];
  let schedBefore: Map<number, ThreadSched>[] = [];
  let measuredStart = windowStart;
  const startSample = new Promise<void>((resolve) => {
    setTimeout(() => {
      measuredStart = performance.now();
      void Promise.all([sampleCpu(options.memberPids, bystanderPids), sampleSched(options.memberPids)]).then(([cpu, sched]) => {
        cpuBefore = cpu;
        schedBefore = sched;
        resolve();
      });
    }, options.warmupMs);
  });
  let measuredEnd = windowEnd;

  const record = (ms: number): void => {
    ops++;
    if (kept >= buffer.length && buffer.length < latencySamplesMax) {
      const grown = new Float64Array(Math.min(latencySamplesMax, buffer.length * 2));
      grown.set(buffer);
      buffer = grown;
    }
    if (kept < buffer.length) buffer[kept++] = ms;
  };

  const client = async (id: number): Promise<void> => {
    let consecutiveErrors = 0;
    while (!stop) {
      const begin = performance.now();
      if (begin >= windowEnd) break;
      try {
        const measured = await operation(id);
        const end = performance.now();
        consecutiveErrors = 0;
        if (begin >= measuredStart && end <= windowEnd) record(typeof measured === 'number' ? measured : end - begin);
      } catch (error) {
        if (error instanceof NotMeasured) {
          notMeasured ??= error.message;
          stop = true;
          break;
        }
        if (error instanceof Exhausted) {
          exhausted = true;
          if (!stop) measuredEnd = Math.min(measuredEnd, performance.now());
          stop = true;
          break;
        }
        if (performance.now() >= measuredStart) errors++;
        const message = describe(error).slice(0, 200);
        if (errorSamples.has(message) || errorSamples.size < errorKindsMax) errorSamples.set(message, (errorSamples.get(message) ?? 0) + 1);
        if (++consecutiveErrors >= consecutiveErrorsMax) break;
      }
    }
  };

  await Promise.all([...Array.from({ length: options.clients }, (_, id) => client(id)), startSample]);
  const [cpuAfter, schedAfter] = await Promise.all([sampleCpu(options.memberPids, bystanderPids), sampleSched(options.memberPids)]);
  const sampledSeconds = Math.max(0.001, (performance.now() - measuredStart) / 1000);
  measuredEnd = Math.min(measuredEnd, performance.now());
  const seconds = Math.max(0.001, (measuredEnd - measuredStart) / 1000);
  const sorted = buffer.subarray(0, kept).sort();
  const perOp = (i: number): number => (ops > 0 ? (((cpuAfter[i] ?? Number.NaN) - (cpuBefore[i] ?? Number.NaN)) * 1e6) / ops : Number.NaN);
  const membersUs = options.memberPids.map((_, i) => perOp(i + 1));
  const bystanderSeconds = finiteDeltaSum(cpuBefore, cpuAfter, options.memberPids.length + 1);
  const result: RunResult = {
    status: notMeasured === null ? 'ok' : 'not-measured',
    ...(notMeasured === null ? {} : { reason: notMeasured }),
    ops,
    errors,
    errorSamples: Object.fromEntries(errorSamples),
    seconds,
    opsPerSecond: ops / seconds,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    maxMs: sorted.length > 0 ? (sorted[sorted.length - 1] ?? Number.NaN) : Number.NaN,
    cpu: { clientUs: perOp(0), membersUs, membersTotalUs: membersUs.reduce((sum, value) => sum + value, 0) },
    sched: schedPerOp(schedBefore, schedAfter, ops, options.memberPids),
    exhausted,
    bystanderCores: bystanderPids.length > 0 ? bystanderSeconds / sampledSeconds : Number.NaN,
  };
  return result;
}
