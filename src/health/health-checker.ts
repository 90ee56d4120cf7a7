// health-checker: the active health checks of persistent instances, one per member (DESIGN.md "Active health checks").
//
// Every reconcileMs the checker
//   1. on the leader, proposes the live voters as the probe assignment when they changed (responsibility.ts);
//   2. stamps new verdicts with this member's Raft term and the assignment's epoch (verdicts.ts);
//   3. when the applied state moved, recomputes the targets it owns (targets.ts) and updates the scheduler.
// The scheduler (scheduler.ts) probes each target with the prober of its type; each result is counted against the
// committed health, and a flip is sent to the leader in a fenced SetHealthBatch. Nothing here decides health alone:
// only what the log commits is health, and every member serves the same.
//
// Layering: health/ reads the registry (cp/ RegistryView) and proposes through cp/ CpRegistry; the Raft status comes
// through a one-method interface, so tests drive the checker with a scripted status.

import type { RaftStatus } from '../raft/raft-core.ts';
import type { Registry } from 'prom-client';
import type { HealthBatchInput, HealthBatchWrite, WriteOptions } from '../cp/cp-registry.ts';
import type { HealthBatchFence } from '../cp/commands.ts';
import type { RegistryView } from '../cp/registry-state-machine.ts';
import { limits } from '../limits.ts';
import { healthMetrics, type HealthMetrics } from './metrics.ts';
import { HttpProber } from './http-prober.ts';
import { MysqlProber } from './mysql-prober.ts';
import type { ProbeHeaderRefusal } from '../naming/validation.ts';
import type { ActiveCheckerType, Prober, ProbeResult, ProbeTarget } from './probe.ts';
import { ProbeAssigner } from './responsibility.ts';
import { clampBounds, NACOS_INTERVAL_BOUNDS, ProbeScheduler, sameTarget, type IntervalBounds } from './scheduler.ts';
import { TargetCatalog, type InstanceTarget } from './targets.ts';
import { TcpProber } from './tcp-prober.ts';
import { countResult, decideFlip, FlipSender, type Counts } from './verdicts.ts';
import { monotonicMs } from '../clock.ts';

/** RaftStatusSource is what the checker needs of the Raft driver: its status (role, term, voters, followers' activity). */
export interface RaftStatusSource {
  status(): RaftStatus;
}

/** HealthProposer is what the checker needs of CpRegistry: the two health commands. */
export interface HealthProposer {
  setHealthBatch(input: HealthBatchInput, options?: WriteOptions): Promise<HealthBatchWrite>;
  assignProbers(term: number, members: readonly string[], options?: WriteOptions): Promise<HealthBatchFence>;
}

/** HealthLogger is the subset of pino the checker uses. */
export interface HealthLogger {
  info(object: object, message: string): void;
  warn(object: object, message: string): void;
}

/** HealthTuning are the checker's timings and bounds; defaults come from limits.ts and Nacos (NACOS.md §4.3). */
export interface HealthTuning {
  readonly reconcileMs: number;
  readonly settleMs: number;
  readonly retryMs: number;
  readonly mergeMs: number;
  readonly timeoutMs: number;
  readonly concurrencyMax: number;
  readonly flipProbes: number;
  readonly flipsPerBatchMax: number;
  readonly requestTimeoutMs: number;
  readonly bounds: Readonly<Record<ActiveCheckerType, IntervalBounds>>;
}

/** defaultHealthTuning is the production tuning. */
export function defaultHealthTuning(): HealthTuning {
  const clamp = (type: ActiveCheckerType): IntervalBounds => clampBounds(NACOS_INTERVAL_BOUNDS[type], limits.probeIntervalMsMin, limits.probeIntervalMsMax);
  return {
    // Targets follow registry changes within half a second; an unchanged registry costs one status read.
    reconcileMs: 500,
    // A changed live view must hold this long before shares move (a fresh leader's first heartbeat round, a slow peer).
    settleMs: 1000,
    retryMs: 1000,
    // Verdicts reached within this window share one log entry.
    mergeMs: 20,
    timeoutMs: limits.probeTimeoutMs,
    concurrencyMax: limits.probeConcurrencyMax,
    flipProbes: limits.healthFlipProbes,
    flipsPerBatchMax: limits.healthFlipsPerEntryMax,
    requestTimeoutMs: limits.requestTimeoutMs,
    bounds: { TCP: clamp('TCP'), HTTP: clamp('HTTP'), MYSQL: clamp('MYSQL') },
  };
}

/** HealthCheckerOptions wire a checker; `probers` and `tuning` are for tests. */
export interface HealthCheckerOptions {
  readonly self: string;
  readonly raft: RaftStatusSource;
  readonly proposer: HealthProposer;
  readonly view: RegistryView;
  readonly registry: Registry;
  readonly logger: HealthLogger;
  readonly tuning?: Partial<HealthTuning>;
  readonly probers?: Partial<Record<ActiveCheckerType, Prober>>;
}

/** ActiveHealthChecker probes the persistent instances this member owns and commits flips; see the file comment. */
export class ActiveHealthChecker {
  private readonly options: HealthCheckerOptions;
  private readonly tuning: HealthTuning;
  private readonly metrics: HealthMetrics;
  private readonly probers: Readonly<Record<ActiveCheckerType, Prober>>;
  private readonly scheduler: ProbeScheduler;
  private readonly sender: FlipSender;
  private readonly assigner: ProbeAssigner;
  private readonly catalog: TargetCatalog;
  private readonly targets = new Map<string, InstanceTarget>();
  /** counts hold consecutive results per target; bounded by the targets (removed with them). */
  private readonly counts = new Map<string, Counts>();
  private timer: NodeJS.Timeout | null = null;
  private lastApplied = -1;
  private lastEpoch = -1;
  private closed = false;

  constructor(options: HealthCheckerOptions) {
    this.options = options;
    this.tuning = { ...defaultHealthTuning(), ...options.tuning };
    this.metrics = healthMetrics(options.registry);
    this.probers = {
      TCP: options.probers?.TCP ?? new TcpProber(),
      HTTP: options.probers?.HTTP ?? new HttpProber({ onHeadersDropped: (target, dropped, first) => this.onHeadersDropped(target, dropped, first) }),
      MYSQL: options.probers?.MYSQL ?? new MysqlProber(),
    };
    this.scheduler = new ProbeScheduler({
      probers: this.probers,
      bounds: this.tuning.bounds,
      timeoutMs: this.tuning.timeoutMs,
      concurrencyMax: this.tuning.concurrencyMax,
      hooks: {
        onResult: (target, result) => this.onResult(target, result),
        onLag: (lagMs) => this.metrics.lag(lagMs),
        onQueue: (waiting) => this.metrics.waiting(waiting),
      },
    });
    this.sender = new FlipSender({
      self: options.self,
      sink: options.proposer,
      flipsPerBatchMax: this.tuning.flipsPerBatchMax,
      mergeMs: this.tuning.mergeMs,
      retryMs: this.tuning.retryMs,
      timeoutMs: this.tuning.requestTimeoutMs,
      onBatch: (outcome, flips, applied) => this.metrics.batch(outcome, flips, applied),
      onError: (error) => options.logger.warn({ err: describe(error) }, 'health verdicts not committed yet; retrying'),
    });
    this.assigner = new ProbeAssigner({ settleMs: this.tuning.settleMs, retryMs: this.tuning.retryMs });
    this.catalog = new TargetCatalog(options.self);
  }

  /** start begins reconciling and probing. */
  start(): void {
    if (this.timer !== null || this.closed) return;
    this.timer = setInterval(() => this.reconcile(), this.tuning.reconcileMs);
    this.reconcile();
  }

  /** targetCount is the number of targets this member probes. */
  get targetCount(): number {
    return this.scheduler.size;
  }

  /** close stops every timer and probe and closes the probers' connections. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.scheduler.close();
    this.sender.close();
    await Promise.all(Object.values(this.probers).map((prober) => prober.close()));
  }

  /** reconcile runs the three steps of the file comment. */
  reconcile(): void {
    if (this.closed) return;
    const status = this.options.raft.status();
    const view = this.options.view;
    const assignment = view.probeAssignment();
    this.maybeAssign(status, assignment);
    const epoch = assignment?.epoch ?? 0;
    this.sender.setStamp({ term: status.term, epoch });
    if (status.appliedIndex === this.lastApplied && epoch === this.lastEpoch) return;
    this.lastApplied = status.appliedIndex;
    this.lastEpoch = epoch;
    this.syncTargets(this.catalog.collect(view, assignment));
  }

  private maybeAssign(status: RaftStatus, assignment: ReturnType<RegistryView['probeAssignment']>): void {
    const members = this.assigner.decide(status, assignment, monotonicMs());
    if (members === null) return;
    this.options.logger.info({ members, term: status.term }, 'proposing the probe assignment');
    this.options.proposer.assignProbers(status.term, members, { timeoutMs: this.tuning.requestTimeoutMs }).then(
      () => {
        this.metrics.assignment(true);
        this.assigner.settled(true, monotonicMs());
      },
      (error: unknown) => {
        this.metrics.assignment(false);
        this.assigner.settled(false, monotonicMs());
        this.options.logger.warn({ err: describe(error) }, 'probe assignment not committed');
      },
    );
  }

  private syncTargets(next: Map<string, InstanceTarget>): void {
    for (const id of this.scheduler.targetIds()) {
      if (next.has(id)) continue;
      this.scheduler.remove(id);
      this.targets.delete(id);
      this.counts.delete(id);
      this.sender.forget(id);
    }
    for (const [id, target] of next) {
      const previous = this.targets.get(id);
      if (previous === target) continue;
      this.targets.set(id, target);
      // A service's targets are rebuilt whenever its revision moves (another instance's flip, say): only a new or
      // really changed target starts counting afresh, as results of an old checker say nothing of a new one.
      if (previous !== undefined && sameTarget(previous, target)) continue;
      this.counts.set(id, { ok: 0, failed: 0 });
      this.scheduler.upsert(target);
    }
    this.metrics.targets(this.scheduler.size);
  }

  /**
   * onHeadersDropped counts the headers of a stored HTTP checker that a probe could not send, and logs them (names and
   * why, never values: they may hold tokens) once per stored checker: the API refuses such checkers since session 32.
   */
  private onHeadersDropped(probed: ProbeTarget, dropped: readonly ProbeHeaderRefusal[], first: boolean): void {
    this.metrics.headersDropped(dropped.map((refusal) => refusal.rule));
    if (!first) return;
    const target = this.targets.get(probed.id);
    this.options.logger.warn({
      ...(target === undefined ? {} : {
        service: `${target.key.namespace}/${target.key.group}@@${target.key.service}`,
        cluster: target.address.cluster,
      }),
      headers: dropped.map((refusal) => `${refusal.name}: ${refusal.reason}`),
    }, 'HTTP checker headers a probe cannot send are dropped; set the cluster\'s checker again without them');
  }

  private onResult(probed: ProbeTarget, result: ProbeResult): void {
    this.metrics.probe(probed.checker.type, result);
    const target = this.targets.get(probed.id);
    const counts = this.counts.get(probed.id);
    if (target === undefined || counts === undefined) return;
    countResult(counts, result);
    const instance = this.options.view.getInstance({ ...target.key, ...target.address });
    if (instance === null) return;
    const healthy = decideFlip(instance.healthy, counts, result, this.tuning.flipProbes);
    if (healthy === null) {
      // A verdict still waiting to commit that this result contradicts is stale: withdraw it.
      if (result.inconclusive !== true) this.sender.withdrawContradicted(probed.id, result.healthy);
      return;
    }
    this.metrics.verdict(healthy);
    this.options.logger.info({
      service: `${target.key.namespace}/${target.key.group}@@${target.key.service}`,
      instance: `${target.address.ip}:${target.address.port}`,
      cluster: target.address.cluster,
      checker: target.checker.type,
      healthy,
      detail: result.detail,
    }, 'health verdict');
    this.sender.enqueue(probed.id, { key: target.key, address: target.address, healthy });
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
