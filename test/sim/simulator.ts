// runSeed: one deterministic simulation. One seeded Prng decides everything (the scenario, then child generators for
// the network, the disks, the nemesis, the workload and each core's config.seed); virtual time advances only through
// the event queue. A run has two phases: safety (faults on, scenario.safetyMs of simulated time), then liveness (the
// network heals and becomes reliable, crashed members restart, paused ones resume, no new faults or client
// operations): within livenessBoundMs a leader of the current membership must commit a probe write that every
// member applies. Invariants run after every event; the client history is checked for linearizability at the end.
import { Prng } from '../../src/raft/prng.ts';
import type { Entry, Message, NodeId, RaftConfig, TestOnlyBugs } from '../../src/raft/types.ts';
import { describeMessage, describeReady, describeScenario } from './describe.ts';
import { bootstrapSnapshot, SimDisk } from './disk.ts';
import { EventQueue, eventKindCodes, type EventKind } from './event-queue.ts';
import { Nemesis } from './faults.ts';
import { checkClientHistory } from './history-check.ts';
import { LivenessProbe } from './liveness.ts';
import { reliableNetwork, SimNetwork } from './network.ts';
import { NodeDriver, type DriverHooks } from './node-driver.ts';
import { SafetyMonitor } from './safety-monitor.ts';
import { drawScenario, type BugName, type Scenario } from './scenario.ts';
import { LivenessFailure, SafetyViolation, SimBoundExceeded } from './sim-errors.ts';
import { nodeIdsMax, simEventsPerSeedMax, simQueueLengthMax } from './sim-limits.ts';
import { SimStats } from './stats.ts';
import { SimTrace, type TraceMode } from './trace.ts';
import { Workload } from './workload.ts';

/** RunOptions configure one seed's run. */
export interface RunOptions {
  /** bug plants one positive-control bug (default none). */
  readonly bug?: BugName | null;
  /** safetyMs overrides the scenario's safety-phase length (longer runs explore deeper histories). */
  readonly safetyMs?: number;
  /** trace selects the trace lines kept (default 'none'; the digest is always computed). */
  readonly trace?: TraceMode;
  /** traceSink receives every line in 'full' mode (default: none). */
  readonly traceSink?: (line: string) => void;
  /**
   * plantBug plants `bug` (default true); false keeps only the bug's scenario bias, to show that the same fault mix
   * without the bug runs clean.
   */
  readonly plantBug?: boolean;
  /**
   * directChecks runs the checks of protocol rules besides those of their consequences (default true): durable
   * before send (Raft Figure 2) and commit only current-term entries by counting (Raft §5.4.2).
   */
  readonly directChecks?: boolean;
}

/** Outcome classifies a run: clean, or the failure class (and exit code) of main.ts. */
export type Outcome = 'clean' | 'crash' | 'safety' | 'liveness';

/** SeedResult is what runSeed reports. */
export interface SeedResult {
  readonly seed: number;
  readonly bug: BugName | null;
  readonly outcome: Outcome;
  /** message describes the failure (empty when clean). */
  readonly message: string;
  /** digest folds every event of the run: the same seed (and code) gives the same digest. */
  readonly digest: string;
  readonly stats: SimStats;
  readonly simulatedMs: number;
  readonly historyOperations: number;
  readonly scenario: string;
  readonly traceTail: readonly string[];
}

/** runSeed runs one seed to completion and classifies the outcome; it never throws for a failing run. */
export function runSeed(seed: number, options: RunOptions = {}): SeedResult {
  const simulation = new Simulation(seed, options);
  let outcome: Outcome = 'clean';
  let message = '';
  try {
    simulation.run();
  } catch (error) {
    outcome = classify(error);
    message = error instanceof Error ? (outcome === 'crash' ? (error.stack ?? error.message) : error.message) : String(error);
    simulation.trace.digest.mixString(message);
  }
  return {
    seed,
    bug: options.bug ?? null,
    outcome,
    message,
    digest: simulation.trace.digest.hex(),
    stats: simulation.stats,
    simulatedMs: simulation.nowMs,
    historyOperations: simulation.workload.history.length,
    scenario: describeScenario(simulation.scenario),
    traceTail: simulation.trace.tail(),
  };
}

function classify(error: unknown): Outcome {
  if (error instanceof SafetyViolation) return 'safety';
  if (error instanceof LivenessFailure) return 'liveness';
  return 'crash';
}

const nodeIds: readonly NodeId[] = Array.from({ length: nodeIdsMax }, (_, i) => `n${i + 1}`);

/** Simulation is one run's world: queue, clock, network, members, workload, nemesis and checks. */
class Simulation {
  readonly trace: SimTrace;
  readonly stats = new SimStats();
  readonly scenario: Scenario;
  readonly workload: Workload;
  nowMs = 0;
  private readonly seed: number;
  private readonly bug: BugName | null;
  private readonly queue = new EventQueue(simQueueLengthMax);
  private readonly prngs: { network: Prng; disk: Prng; faults: Prng; workload: Prng; cores: Prng; ticks: Prng };
  private readonly network: SimNetwork;
  private readonly drivers: NodeDriver[];
  private readonly monitor: SafetyMonitor;
  private readonly nemesis: Nemesis;
  private readonly probe: LivenessProbe;
  private phase: 'safety' | 'liveness' = 'safety';
  private readonly membershipIndexes = new Set<number>();
  private finished = false;

  constructor(seed: number, options: RunOptions) {
    this.seed = seed;
    this.bug = options.plantBug === false ? null : (options.bug ?? null);
    this.trace = new SimTrace(options.trace ?? 'none', options.traceSink ?? null);
    const root = new Prng(seed);
    const drawn = drawScenario(new Prng(root.nextUint32()), options.bug ?? null);
    this.scenario = options.safetyMs === undefined ? drawn : { ...drawn, safetyMs: options.safetyMs };
    const child = (): Prng => new Prng(root.nextUint32());
    this.prngs = { network: child(), disk: child(), faults: child(), workload: child(), cores: child(), ticks: child() };
    this.network = new SimNetwork(this.prngs.network, this.scenario.network, (id) => this.indexOf(id), (delay, message, to) => this.scheduleDelivery(delay, message, to), this.stats);
    this.monitor = new SafetyMonitor(nodeIds.length, this.stats, options.directChecks ?? true, (node) => this.leaderElected(node));
    const initial = nodeIds.slice(0, this.scenario.clusterSize);
    const hooks = this.driverHooks();
    this.drivers = nodeIds.map((id, index) => new NodeDriver(id, index, new SimDisk(bootstrapSnapshot(initial)), hooks, { ackBeforeSync: this.bug === 'ack-before-sync' }));
    this.workload = new Workload(
      {
        prng: this.prngs.workload,
        drivers: this.drivers,
        readWithoutReadIndex: this.bug === 'read-without-readindex',
        now: () => this.nowMs,
        schedule: (delay, kind, node, action) => this.schedule(delay, kind, node, action),
        indexOf: (id) => this.indexOf(id),
        ackedWrite: (node, entry) => this.monitor.ackedWrite(node, entry),
        traceEnabled: this.trace.enabled,
        note: (text) => this.note(text),
      },
      this.scenario.workload,
    );
    this.nemesis = new Nemesis(
      {
        prng: this.prngs.faults,
        drivers: this.drivers,
        network: this.network,
        stats: this.stats,
        schedule: (delay, kind, node, action) => this.schedule(delay, kind, node, action),
        leader: () => this.leader(),
        crash: (node) => this.crash(node),
        restart: (node) => this.restart(node),
        startSpare: (node) => this.startMember(node),
        note: (text) => this.note(text),
      },
      this.scenario.faults,
    );
    this.probe = new LivenessProbe({ drivers: this.drivers, ledger: this.monitor.ledger, leader: () => this.leader(), note: (text) => this.note(text) });
  }

  /** run executes the whole seed; throws on the first failure. */
  run(): void {
    this.note(`seed ${this.seed}${this.bug === null ? '' : ` bug ${this.bug}`}\n${describeScenario(this.scenario)}`);
    for (const driver of this.drivers.slice(0, this.scenario.clusterSize)) this.startMember(driver);
    this.workload.start();
    this.nemesis.start();
    this.schedule(this.scenario.safetyMs, 'phase', -1, () => this.enterLiveness());
    while (!this.finished) this.step();
    this.finish();
  }

  private step(): void {
    const event = this.queue.pop();
    if (event === undefined) throw new SimBoundExceeded('event queue ran dry');
    this.nowMs = event.time;
    this.nemesis.setNow(event.time);
    if (++this.stats.events > simEventsPerSeedMax) throw new SimBoundExceeded(`more than ${simEventsPerSeedMax} events (simEventsPerSeedMax)`);
    const digest = this.trace.digest;
    digest.mix(event.time);
    digest.mix(eventKindCodes[event.kind]);
    digest.mix(event.node + 1);
    event.action();
    this.monitor.afterEvent(this.drivers);
  }

  private finish(): void {
    this.workload.finish();
    this.monitor.fullScan(this.drivers);
    this.stats.commits = this.monitor.ledger.committedMax;
    for (const event of this.workload.history) {
      if (event.type === 'ok' && event.f === 'write') this.stats.okWrites++;
      else if (event.type === 'ok') this.stats.okReads++;
      else if (event.type === 'info') this.stats.unknownOps++;
    }
    const verdict = checkClientHistory(this.workload.history);
    this.stats.checkerStepsMax = verdict.partitionStepsMax;
    const digest = this.trace.digest;
    digest.mix(this.monitor.ledger.committedMax);
    digest.mix(this.workload.history.length);
    digest.mix(verdict.steps);
    this.note(`done: ${verdict.operations} operations linearizable (${verdict.steps} checker steps), ${this.workload.okWrites} writes acknowledged`);
  }

  private enterLiveness(): void {
    this.phase = 'liveness';
    this.note('liveness phase: heal, restart, resume; no more faults or client operations');
    this.nemesis.stop();
    this.workload.stop();
    this.network.heal();
    this.network.setParams(reliableNetwork);
    for (const driver of this.drivers) {
      if (!driver.started || driver.retired) continue;
      if (!driver.up) this.restart(driver);
      else if (driver.paused) driver.resume();
    }
    this.probe.start(this.nowMs);
    this.scheduleProbe();
  }

  private scheduleProbe(): void {
    this.schedule(this.probe.intervalMs, 'probe', -1, () => {
      if (this.probe.check(this.nowMs)) this.finished = true;
      else this.scheduleProbe();
    });
  }

  /** schedule queues `action` after `delayMs` of virtual time. */
  private schedule(delayMs: number, kind: EventKind, node: number, action: () => void): void {
    this.queue.push(this.nowMs + delayMs, kind, node, action);
  }

  private scheduleDelivery(delayMs: number, message: Message, to: number): void {
    const from = this.indexOf(message.from);
    this.schedule(delayMs, 'deliver', to, () => {
      const driver = this.drivers[to];
      if (driver === undefined) return;
      if (this.network.isBlocked(from, to)) {
        this.stats.countFault('message-partitioned');
        return;
      }
      if (!driver.up) {
        const sender = this.drivers[from];
        if (sender !== undefined) this.reportUnreachable(sender, message);
      }
      if (this.trace.enabled) this.trace.line(this.nowMs, `${driver.up ? '' : '(down) '}deliver ${describeMessage(message)}`);
      driver.receive(message);
    });
  }

  private leaderElected(node: NodeDriver): void {
    this.note(`${node.id} leads term ${node.core?.term ?? '?'}`);
    if (this.phase === 'safety') this.nemesis.leaderElected(node, this.nowMs);
  }

  /**
   * reportUnreachable tells a sender, a millisecond later (as a transport's error callback would), that a message
   * could not be sent; the core uses it to probe the peer again (types.ts reportUnreachable).
   */
  private reportUnreachable(node: NodeDriver, message: Message): void {
    const incarnation = node.incarnation;
    this.schedule(1, 'deliver', node.index, () => {
      if (node.incarnation === incarnation) node.run((core) => core.reportUnreachable(message.to));
    });
  }

  private startMember(driver: NodeDriver): void {
    const firstStart = !driver.started;
    driver.start(this.coreConfig(driver.id));
    this.note(`start ${driver.id} (incarnation ${driver.incarnation}, durable term ${driver.disk.hardState.term}, applied ${driver.disk.stateMachine.appliedIndex})`);
    if (firstStart) this.scheduleTicks(driver, this.prngs.ticks.nextInt(this.scenario.tickMs) + 1);
  }

  private scheduleTicks(driver: NodeDriver, delayMs: number): void {
    // Each member's clock drifts a little: its tick interval is tickMs - 1, tickMs or tickMs + 1.
    const intervalMs = this.scenario.tickMs - 1 + (driver.index % 3);
    this.schedule(delayMs, 'tick', driver.index, () => {
      if (driver.retired) return;
      driver.tick();
      this.scheduleTicks(driver, intervalMs);
    });
  }

  private restart(driver: NodeDriver): void {
    this.stats.countFault('restart');
    this.startMember(driver);
  }

  private crash(driver: NodeDriver): void {
    driver.crash();
    this.workload.nodeCrashed(driver);
    this.note(`crash ${driver.id}: durable term ${driver.disk.hardState.term} vote ${String(driver.disk.hardState.vote)}, durable log ..${driver.disk.lastIndex}`);
  }

  private retire(driver: NodeDriver): void {
    if (driver.retired) return;
    if (driver.up) this.crash(driver);
    driver.retired = true;
    this.note(`retire ${driver.id}: its removal is committed`);
  }

  /** leader returns the running, unpaused member that leads the highest term. */
  private leader(): NodeDriver | undefined {
    let best: NodeDriver | undefined;
    for (const driver of this.drivers) {
      const core = driver.core;
      if (core === null || driver.paused || core.role !== 'leader') continue;
      if (best === undefined || core.term > (best.core?.term ?? 0)) best = driver;
    }
    return best;
  }

  private coreConfig(id: NodeId): RaftConfig {
    const core = this.scenario.core;
    const config: RaftConfig = {
      id,
      electionTicks: core.electionTicks,
      heartbeatTicks: core.heartbeatTicks,
      seed: this.prngs.cores.nextUint32(),
      preVote: core.preVote,
      checkQuorum: core.checkQuorum,
      inflightMessagesMax: core.inflightMessagesMax,
      inflightBytesMax: core.messageBytesMax * core.inflightMessagesMax,
      messageBytesMax: core.messageBytesMax,
      uncommittedBytesMax: core.uncommittedBytesMax,
      committedBytesPerReadyMax: core.committedBytesPerReadyMax,
      snapshotChunkBytes: core.snapshotChunkBytes,
      pendingReadsMax: core.pendingReadsMax,
    };
    const bugs = this.coreBugs();
    return bugs === null ? config : { ...config, testOnlyBugs: bugs };
  }

  private coreBugs(): TestOnlyBugs | null {
    if (this.bug === 'vote-without-persist') return { voteWithoutPersist: true };
    if (this.bug === 'commit-prior-term') return { commitPriorTermByCounting: true };
    return null;
  }

  private driverHooks(): DriverHooks {
    return {
      scheduleSync: (node, incarnation) => {
        const { syncLatencyMinMs, syncLatencyMaxMs } = this.scenario.disk;
        const latency = syncLatencyMinMs + this.prngs.disk.nextInt(syncLatencyMaxMs - syncLatencyMinMs + 1);
        this.schedule(latency, 'sync', node.index, () => node.syncCompleted(incarnation));
      },
      send: (node, message) => {
        const fate = this.network.send(message);
        if (fate === 'refused') this.reportUnreachable(node, message);
        if (this.phase === 'safety') this.nemesis.messageSent(node, message, this.nowMs);
      },
      readyCreated: (node, ready) => {
        if (this.trace.enabled) this.trace.line(this.nowMs, `${node.id} ready: ${describeReady(ready)}`);
        this.monitor.readyCreated(node, ready);
      },
      synced: (node, before) => this.monitor.synced(node, before),
      beforeSend: (node, message) => this.monitor.beforeSend(node, message),
      beforeApply: (node, entry) => this.monitor.beforeApply(node, entry),
      applied: (node, entry) => this.entryApplied(node, entry),
      beforeRestore: (node, snapshot) => this.monitor.beforeRestore(node, snapshot),
      restored: (node, snapshot) => {
        this.stats.snapshotRestores++;
        this.note(`${node.id} restores snapshot ${snapshot.meta.index}/${snapshot.meta.term}`);
        this.workload.snapshotRestored(node, snapshot.meta.index);
      },
      readReady: (node, readState) => this.workload.readReady(node, readState),
      readDropped: (node, context) => this.workload.readDropped(node, context),
      shouldCompact: (node) => this.shouldCompact(node),
      compacted: (node, snapshot) => {
        if (this.trace.enabled) this.trace.line(this.nowMs, `${node.id} compacts at ${snapshot.meta.index}/${snapshot.meta.term}`);
        this.monitor.compacted(node, snapshot);
      },
    };
  }

  private entryApplied(node: NodeDriver, entry: Entry): void {
    this.workload.entryApplied(node, entry);
    if (entry.kind === 'membership' && !this.membershipIndexes.has(entry.index)) {
      this.membershipIndexes.add(entry.index);
      this.stats.membershipCommitted++;
      this.note(`membership change committed at ${entry.index}: ${entry.change.type} ${entry.change.node}`);
    }
    if (entry.kind === 'membership' && entry.change.type === 'remove') {
      const removed = this.drivers.find((driver) => driver.id === entry.change.node);
      if (removed !== undefined && !removed.retired) this.schedule(0, 'retire', removed.index, () => this.retire(removed));
    }
  }

  private shouldCompact(node: NodeDriver): boolean {
    const core = node.core;
    if (core === null) return false;
    const { entriesMin, rate } = this.scenario.compaction;
    return node.disk.stateMachine.appliedIndex - core.snapshotIndex >= entriesMin && this.prngs.disk.chance(rate);
  }

  private indexOf(id: NodeId): number {
    return nodeIds.indexOf(id);
  }

  private note(text: string): void {
    if (this.trace.enabled) this.trace.line(this.nowMs, text);
  }
}
