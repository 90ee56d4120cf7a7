// health workload (PEERS.md §2.3 C1, C4): Cairn's active TCP health checks judged against a scripted ground truth.
//
// The harness itself runs the probe targets: one node `net` server per target on 127.0.0.15 (so the workload needs
// 3-member runs, whose members use 127.0.0.11-13), ports 61000 and up. They are registered as persistent instances
// of `jepsen-health`, whose DEFAULT cluster gets the TCP checker with Cairn's fixed interval (`intervalMs`, 2500 ms
// by default) so that the timings below are predictable. A script opens and closes the listeners (the truth: a
// closed listener answers a probe with a reset, "connection refused", which Cairn flips at once) and pollers read
// the instance list with consistency=linearizable on random members, recording every target's `healthy`.
//
// Every change of the truth is a nemesis line: `start-target-down` (invoke before the listener closes, info once it
// is closed) and `stop-target-down` (invoke before it reopens, info once it listens), with the target and an id, so
// the timeline shades each down interval and the checker (checkers-health.ts) knows, with the uncertainty of the
// invoke..info windows, when each target was up or down.
//
// Faults (with --nemesis partition; the generic partition nemesis does not run for this workload), one at a time:
// - `isolate-prober`: a member that owns targets is cut from the other members (rules between member addresses or
//   cgroups only; everyone still reaches 127.0.0.15). Its targets are scripted: closed just after the cut, reopened
//   after 2 s (before the new owner can take them over: the cut-off prober is left holding a verdict nobody else
//   agrees with) or after 9 s (the new owner commits the flip, then the recovery), then held open until 8 s after
//   the heal. Any commit of the cut-off prober's stale verdict shows as an unjustified flip.
// - `prober-targets`: the owner of some targets can no longer reach 127.0.0.15 (one rule: its cgroup's packets to
//   the target address are dropped; needs cgroup v2, because probes leave from 127.0.0.1, not the member's address),
//   while it stays in the cluster. Nacos's behaviour, which Cairn copies: its probes time out, so after 3 failures
//   it reports its targets unhealthy although they listen, and healthy again after 3 successes once the cut heals.
// With --nemesis kill and/or pause (C4) the faults are kills and pauses of the leader or a prober instead, with the
// victim's targets flipped around them (crashes() below); the targets timestamp every probe they accept, so the
// checker can bound the probes per window (no probe storm).
// With a protectThreshold (C2, PEERS.md §2.3: a degraded prober NIC) the service is `jepsen-protect`, created first
// with that threshold through the Nacos service API, as a user would; its 6 targets are chosen (by port) so that one
// member, the degraded one, probes 4 and each other member 1; the faults (--nemesis partition) are `degraded-nic`:
// the degraded member can no longer reach all but one of its targets (one DROP rule per target port, by its cgroup,
// as prober-targets), while the cluster's links are left alone; each poll reads the stored health (per-instance
// gets) between served lists, so checkers-protect.ts can judge the protectThreshold semantics and C1's checker the
// verdicts (see protectPoll()).
// The owner of a target is computed with Cairn's own rule (src/cp/probe-assignment.ts probeOwner over the sorted
// member addresses, the assignment when every member is live) and written into the history's `health-setup` line.

import net from 'node:net';
import { ClientApiClient, GrpcCallError } from '../../src/api/grpc/client.ts';
import { namingServiceName } from '../../src/api/grpc/proto.ts';
import { probeOwner } from '../../src/cp/probe-assignment.ts';
import type { ServedList } from '../checkers-protect.ts';
import type { Outcome } from '../client.ts';
import { absentCodes, outcomeOfCode } from '../client.ts';
import { httpRequest } from '../client-http.ts';
import type { MemberCgroups } from '../cgroup.ts';
import type { Cluster, Member } from '../control.ts';
import type { Generator, OperationSource, PlannedOperation } from '../generator.ts';
import type { HistoryRecorder } from '../history.ts';
import type { Drop, Firewall } from '../iptables.ts';
import type { ClusterMonitor } from '../monitor.ts';
import { type Random, sleep } from '../random.ts';

/** healthService is the service whose instances are the targets. */
export const healthService = 'jepsen-health';
/** protectService is C2's service, created with a protectThreshold. */
export const protectService = 'jepsen-protect';
/** protectOwnedByDegraded: C2's degraded member probes this many targets, every other member one. */
const protectOwnedByDegraded = 4;
/** protectPortsSearched bounds the search for C2's target ports (the owners come from a hash of the address). */
const protectPortsSearched = 5000;
/** targetHost is where the harness's targets listen (never a member's address in 3-member runs). */
export const targetHost = '127.0.0.15';
/** targetPortBase is the first target's port (above the register and set ranges). */
export const targetPortBase = 61_000;
/** healthFaultIdBase numbers this workload's faults apart from the generic nemesis's. */
const healthFaultIdBase = 1_000_000;
/** setupBoundMs bounds the registration and configuration of the targets. */
const setupBoundMs = 30_000;
/** sharesBoundMs bounds C4's wait for every member to probe its full-membership share again before a fault. */
const sharesBoundMs = 20_000;
/** flipBackAfterMs: a paused victim's targets flip back this long into the pause (its pending verdict goes stale). */
const flipBackAfterMs = 2000;

/** HealthFaultKind is a family of scripted faults: C1's partitions, C4's kills and pauses of probers and leaders. */
export type HealthFaultKind = 'partition' | 'kill' | 'pause';

/** HealthOptions shape the workload. */
export interface HealthOptions {
  readonly targets: number;
  readonly intervalMs: number;
  readonly pollers: number;
  readonly ratePerSecond: number;
  /** faults: partition (C1) or kill and/or pause (C4); empty: no faults, the targets still toggle. */
  readonly faults: readonly HealthFaultKind[];
  /** protectThreshold: above 0, case C2 (the protected service, its targets, degraded-nic faults); 0: C1 or C4. */
  readonly protectThreshold: number;
  /** degradedMember: C2's degraded member, as an index into the sorted member addresses (taken modulo their number). */
  readonly degradedMember: number;
}

/** defaultHealthOptions: 9 targets (about 3 per member), probes every 2.5 s, 3 pollers at 10 reads a second. */
export const defaultHealthOptions: HealthOptions = { targets: 9, intervalMs: 2500, pollers: 3, ratePerSecond: 10, faults: [], protectThreshold: 0, degradedMember: 0 };

/** protectPollsPerSecond: C2's poll rate (each poll is 3 lists and one get per target). */
export const protectPollsPerSecond = 5;

/** crashFaultsOf tells whether the faults are C4's (kills or pauses: a share moves away and back). */
export function crashFaultsOf(faults: readonly HealthFaultKind[]): boolean {
  return faults.includes('kill') || faults.includes('pause');
}

/** HealthBounds are the checker's time bounds, derived from the probe interval (see checkers-health.ts). */
export interface HealthBounds {
  /** boundMs: how long a committed health may legitimately lag the truth. */
  readonly boundMs: number;
  /** commitMarginMs: how long a verdict may take from its probe to its commit. */
  readonly commitMarginMs: number;
  /** stormWindowMs: the sliding window in which a target's accepted probe connections are counted. */
  readonly stormWindowMs: number;
  /** stormSteadyMax: probes a target may receive per window while no fault can move its share (one prober). */
  readonly stormSteadyMax: number;
  /** stormHandoverMax: probes per window while a fault may move shares (handover), up to handoverTailMs after it ends. */
  readonly stormHandoverMax: number;
  /** handoverTailMs: how long after a fault ends shares may still be moving back (the storm check's handover window). */
  readonly handoverTailMs: number;
}

/** settleMs and reconcileMs are the checker's defaults (src/health/health-checker.ts defaultHealthTuning). */
const assignerSettleMs = 1000;
const reconcileMs = 500;
/** harnessLagMs: how much later than the member connected the harness may timestamp an accept (its event loop). */
const harnessLagMs = 500;

/**
 * healthBounds derives the bounds. A probe runs every intervalMs +-10% jitter (at most 1.1 * interval apart). A flip
 * to healthy needs 3 consecutive successes (limits.healthFlipProbes), so after a target comes up the committed
 * health may say unhealthy for up to 3 * 1.1 * interval; a flip to unhealthy needs 1 refused probe or 3 failed
 * ones (each up to the 2 s probe timeout, within the interval), so the same bound covers it. Ownership may move
 * first (a member cut off loses its share after the election timeout, 1-2 s, plus the assigner's 1 s settle, the
 * 0.5 s reconcile and the commit; the new owner's first probe is at a random point of one interval: 1.1 * interval
 * more). A verdict takes at most the request timeout (5 s) plus one 1 s retry to commit, and a linearizable read
 * returns what was committed when it was served. Sum: 4 * 1.1 * interval + 4.5 s handover + an 8 s commit margin
 * (5 s + 1 s retry, rounded up for a loaded 2-core machine). With 2500 ms: 23.5 s.
 *
 * `handovers` is how many share moves one transition may have to wait for. C1's faults move a share once while
 * they matter (1). C4's kills and pauses move it twice within one transition: away from the victim, and back when
 * it restarts or wakes, which discards the interim owner's counts; the second move needs no election (the leader
 * sees the victim again): settle 1 s + reconcile 0.5 s + the returning owner's first probe at a random point of one
 * interval (1.1 * interval), so 2 handovers add 1.5 s + 1.1 * interval: 27.75 s with 2500 ms.
 *
 * Probe storm (checked on the targets' accepted connections; refused probes of a closed target cannot be counted):
 * one prober starts a target's probes at least 0.9 * interval apart (the next is armed when a probe ends, with
 * -10% jitter at most), so in a window of 0.9 * interval - harnessLagMs (1750 ms) it starts at most one: steady
 * state allows 1. During a handover at most 3 probes may legitimately land in one window: the stale holder's
 * overdue probe (a paused member fires its due timer when it wakes, before it applies the move; a killed member's
 * last probe), the interim owner's probe, and the returning owner's first probe under the new assignment (random
 * within an interval, so possibly at once). A member that probed every target of every member, or a scheduler that
 * caught up on missed ticks in a burst, exceeds these. A handover lasts from the fault's start until
 * handoverTailMs after its end: an election if a woken leader disrupts (2 s) + the settle (1 s) + the reconcile
 * (0.5 s) + the assignment's commit (the 8 s commit margin) = 11.5 s, after which the interim owner has applied the
 * move back and stopped probing.
 */
export function healthBounds(intervalMs: number, handovers = 1): HealthBounds {
  const commitMarginMs = 8000;
  const returnMs = (handovers - 1) * (assignerSettleMs + reconcileMs + 1.1 * intervalMs);
  return {
    boundMs: Math.ceil(4 * 1.1 * intervalMs + 4500 + commitMarginMs + returnMs),
    commitMarginMs,
    stormWindowMs: Math.floor(0.9 * intervalMs - harnessLagMs),
    stormSteadyMax: 1,
    stormHandoverMax: 3,
    handoverTailMs: 2000 + assignerSettleMs + reconcileMs + commitMarginMs,
  };
}

/** targetAddress is target i's "ip:port". */
export function targetAddress(i: number): string {
  return `${targetHost}:${targetPortBase + i}`;
}

/**
 * protectPorts chooses C2's target ports, the lowest from targetPortBase up: protectOwnedByDegraded owned by
 * `degraded` and one owned by each other member (owner = probeOwner over the sorted members, as everywhere here),
 * so that one member's NIC can make most of the service's targets look unhealthy.
 */
export function protectPorts(members: readonly string[], degraded: string): number[] {
  const wanted = new Map(members.map((member) => [member, member === degraded ? protectOwnedByDegraded : 1]));
  const ports: number[] = [];
  for (let port = targetPortBase; port < targetPortBase + protectPortsSearched && [...wanted.values()].some((n) => n > 0); port++) {
    const owner = probeOwner(members, targetHost, port) ?? '';
    const left = wanted.get(owner) ?? 0;
    if (left === 0) continue;
    wanted.set(owner, left - 1);
    ports.push(port);
  }
  if ([...wanted.values()].some((n) => n > 0)) throw new Error(`no C2 target ports within ${protectPortsSearched} ports from ${targetPortBase}`);
  return ports;
}

/** HealthSetup is the history's `health-setup` observation: what the checker needs to judge. */
export interface HealthSetup {
  readonly targets: readonly string[];
  /** owners maps each target to its prober when every member is live. */
  readonly owners: Readonly<Record<string, string>>;
  readonly members: readonly string[];
  readonly intervalMs: number;
  readonly boundMs: number;
  readonly commitMarginMs: number;
  /** storm bounds (absent in histories recorded before C4: the storm check is then skipped). */
  readonly stormWindowMs?: number;
  readonly stormSteadyMax?: number;
  readonly stormHandoverMax?: number;
  readonly handoverTailMs?: number;
  /** C2: the service, its protectThreshold and the degraded member (absent in C1 and C4). */
  readonly service?: string;
  readonly protectThreshold?: number;
  readonly degraded?: string;
}

/** acceptsPerTargetMax bounds the accepted probe connections a target remembers (overflow is counted). */
const acceptsPerTargetMax = 20_000;

/** Target is one listener the harness opens and closes. */
class Target {
  private server: net.Server | null = null;
  private readonly sockets = new Set<net.Socket>();
  /** scripted: a fault controls this target; the random toggler leaves it alone. */
  scripted = false;
  /** accepts are the recorder times (ns) of the probe connections this target accepted, at most acceptsPerTargetMax. */
  readonly accepts: number[] = [];
  /** acceptsDropped counts accepts beyond acceptsPerTargetMax (itself a storm). */
  acceptsDropped = 0;

  constructor(
    readonly index: number,
    readonly port: number,
    readonly address: string,
    private readonly recorder: HistoryRecorder,
    private readonly nextId: () => number,
  ) {}

  get isOpen(): boolean {
    return this.server !== null;
  }

  /** open starts listening (recorded as the end of a down interval unless `initial`). */
  async open(initial = false): Promise<void> {
    if (this.server !== null) return;
    const id = initial ? null : this.downId;
    if (id !== null) this.recorder.nemesis('invoke', 'stop-target-down', { id, target: this.address });
    const server = net.createServer((socket) => {
      if (this.accepts.length < acceptsPerTargetMax) this.accepts.push(this.recorder.now());
      else this.acceptsDropped++;
      this.sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: targetHost, port: this.port }, () => resolve());
    });
    this.server = server;
    if (id !== null) this.recorder.nemesis('info', 'stop-target-down', { id, target: this.address });
  }

  private downId: number | null = null;

  /** close stops listening (and drops accepted connections): probes are now refused. */
  close(): void {
    const server = this.server;
    if (server === null) return;
    const id = this.nextId();
    this.downId = id;
    this.recorder.nemesis('invoke', 'start-target-down', { id, target: this.address });
    server.close();
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    this.server = null;
    this.recorder.nemesis('info', 'start-target-down', { id, target: this.address });
  }

  /** shutdown closes without recording (teardown). */
  shutdown(): void {
    this.server?.close();
    for (const socket of this.sockets) socket.destroy();
    this.server = null;
  }
}

/** HealthDeps are what the workload acts on. */
export interface HealthDeps {
  readonly cluster: Cluster;
  readonly recorder: HistoryRecorder;
  readonly monitor: ClusterMonitor;
  readonly firewall: Firewall | null;
  readonly cgroups: MemberCgroups | null;
}

/** HealthWorkload owns the targets, the pollers' operations and the scripted faults. */
export class HealthWorkload implements OperationSource {
  readonly name = 'health';
  readonly bounds: HealthBounds;
  private readonly targets: Target[] = [];
  private faultId = healthFaultIdBase;
  private readonly owners = new Map<string, string>();
  /** problems lists what went wrong while scripting (a rule that could not be applied, for instance). */
  readonly problems: string[] = [];
  /** notes lists what the script chose not to do and why. */
  readonly notes: string[] = [];
  /** service is the service whose instances are the targets (C2's protected one, or C1's). */
  readonly service: string;
  /** degraded is C2's degraded member (null in C1 and C4). */
  private readonly degraded: string | null;
  /** grpcClients: one gRPC channel per member for C2's polls (HTTP address -> client). */
  private readonly grpcClients = new Map<string, ClientApiClient>();

  constructor(
    readonly options: HealthOptions,
    private readonly deps: HealthDeps,
  ) {
    if (deps.cluster.members.length !== 3) throw new Error('the health workload needs --nodes 3 (its targets listen on 127.0.0.15)');
    if (crashFaultsOf(options.faults) && options.faults.includes('partition')) throw new Error('the health workload runs partitions (C1) or kills and pauses (C4), not both');
    if (options.protectThreshold > 0 && crashFaultsOf(options.faults)) throw new Error('the health workload with a protectThreshold (C2) runs degraded-nic faults (--nemesis partition), not kills or pauses');
    this.bounds = healthBounds(options.intervalMs, crashFaultsOf(options.faults) ? 2 : 1);
    const members = deps.cluster.members.map((member) => member.addr).sort();
    const protect = options.protectThreshold > 0;
    this.service = protect ? protectService : healthService;
    this.degraded = protect ? (members[options.degradedMember % members.length] ?? null) : null;
    const ports = this.degraded === null ? Array.from({ length: options.targets }, (_, i) => targetPortBase + i) : protectPorts(members, this.degraded);
    for (const [i, port] of ports.entries()) {
      const address = `${targetHost}:${port}`;
      this.targets.push(new Target(i, port, address, deps.recorder, () => this.faultId++));
      this.owners.set(address, probeOwner(members, targetHost, port) ?? '');
    }
    if (protect) for (const member of deps.cluster.members) this.grpcClients.set(member.addr, new ClientApiClient(member.grpcAddr, 6500));
  }

  /** setup opens every target, registers them, configures the TCP checker and records `health-setup`. */
  async setup(random: Random): Promise<void> {
    await Promise.all(this.targets.map((target) => target.open(true)));
    const members = this.deps.cluster.members.map((member) => member.addr);
    const deadline = Date.now() + setupBoundMs;
    const threshold = this.options.protectThreshold;
    if (threshold > 0) {
      // As a user would: create the service with its threshold (Nacos v1 service API), then check it took.
      await retry(deadline, `create ${this.service} with protectThreshold ${threshold}`, async () => {
        const created = await httpOk(random.pick(members), 'POST', `/nacos/v1/ns/service?serviceName=${this.service}&protectThreshold=${threshold}`);
        const stored = await serviceThreshold(random.pick(members), this.service);
        return stored === threshold ? null : `created: ${created ?? 'ok'}; threshold read back: ${String(stored)}`;
      });
    }
    for (const target of this.targets) {
      const [ip, port] = target.address.split(':');
      await retry(deadline, `register ${target.address}`, () => httpOk(random.pick(members), 'POST', `/nacos/v1/ns/instance?serviceName=${this.service}&ip=${ip ?? ''}&port=${port ?? ''}&ephemeral=false`));
    }
    const checker = encodeURIComponent(JSON.stringify({ type: 'TCP', intervalMs: this.options.intervalMs }));
    await retry(deadline, 'configure the TCP checker', () => httpOk(random.pick(members), 'PUT', `/nacos/v1/ns/cluster?serviceName=${this.service}&clusterName=DEFAULT&checkPort=0&useInstancePort4Check=true&healthChecker=${checker}`));
    const setup: HealthSetup = {
      targets: this.targets.map((target) => target.address),
      owners: Object.fromEntries(this.owners),
      members: [...members].sort(),
      intervalMs: this.options.intervalMs,
      ...this.bounds,
      ...(this.degraded === null ? {} : { service: this.service, protectThreshold: threshold, degraded: this.degraded }),
    };
    this.deps.recorder.observe('health-setup', setup, this.deps.recorder.now());
  }

  /** next is a poller's linearizable read: the instance list (C1, C4), or C2's poll of served lists and stored health. */
  next(_worker: number, random: Random): PlannedOperation {
    return this.readOf(false, 'linearizable', random);
  }

  /** readOf is one read of the workload's kind: healthReadOf (C1, C4) or protectPoll (C2). */
  private readOf(final: boolean, consistency: 'linearizable' | 'local', random: Random): PlannedOperation {
    if (this.degraded === null) return healthReadOf(final, consistency);
    const httpHealthyOnly = random.chance(0.5);
    const grpcHealthyOnly = random.chance(0.5);
    return {
      f: 'health-read',
      transport: 'grpc',
      value: final ? { consistency, protect: true, final } : { consistency, protect: true },
      run: async (_client, addr): Promise<Outcome<unknown>> => this.protectPoll(addr, consistency, httpHealthyOnly, grpcHealthyOnly),
      complete: (poll) => poll as Record<string, unknown>,
    };
  }

  /**
   * protectPoll is C2's read, on one member, calls one after the other: gRPC ListInstances (healthy_only false, the
   * service's revision r1), a GetInstance per target in parallel (the stored health, never protected), the HTTP v1
   * list (healthyOnly as drawn), gRPC ListInstances (healthy_only as drawn, revision r2). `pinned` when r1 = r2: the
   * service did not change in between, so every answer was served from the state the gets show (checkers-protect.ts).
   */
  private async protectPoll(addr: string, consistency: 'linearizable' | 'local', httpHealthyOnly: boolean, grpcHealthyOnly: boolean): Promise<Outcome<unknown>> {
    const client = this.grpcClients.get(addr);
    if (client === undefined) return { type: 'fail', error: `no gRPC client for ${addr}` };
    const first = await grpcList(client, this.service, false, consistency);
    if (first.type !== 'ok') return first;
    const gets = await Promise.all(this.targets.map((target) => grpcStoredHealth(client, this.service, target.address, consistency)));
    const failed = gets.find((get) => get.type !== 'ok');
    if (failed !== undefined) return failed;
    const served = await httpList(addr, this.service, httpHealthyOnly, consistency);
    if (served.type !== 'ok') return served;
    const last = await grpcList(client, this.service, grpcHealthyOnly, consistency);
    if (last.type !== 'ok') return last;
    const health = Object.fromEntries(this.targets.map((target, i) => [target.address, (gets[i] as { value: boolean | null }).value]));
    const r1 = first.value.revision ?? 0;
    const r2 = last.value.revision ?? 0;
    return { type: 'ok', value: { health, lists: [first.value, served.value, last.value], revisions: [r1, r2], pinned: r1 > 0 && r1 === r2 } };
  }

  /** run toggles the targets at random and scripts the options' faults (C1, C2 or C4) until `deadline`. */
  async run(deadline: number, random: Random): Promise<void> {
    const loops = this.targets.map((target) => this.toggle(target, deadline, random.fork()));
    if (this.degraded !== null) {
      if (this.options.faults.includes('partition')) loops.push(this.degradations(this.degraded, deadline, random.fork()));
    } else if (this.options.faults.includes('partition')) loops.push(this.faults(deadline, random.fork()));
    else if (crashFaultsOf(this.options.faults)) loops.push(this.crashes(deadline, random.fork()));
    await Promise.all(loops);
  }

  private async toggle(target: Target, deadline: number, random: Random): Promise<void> {
    await sleep(random.between(1000, 6000));
    while (Date.now() < deadline) {
      await sleep(target.isOpen ? random.between(5000, 14_000) : random.between(3000, 9000));
      if (Date.now() >= deadline || target.scripted) continue;
      if (target.isOpen) target.close();
      else await target.open();
    }
  }

  private ownedBy(member: string): Target[] {
    return this.targets.filter((target) => this.owners.get(target.address) === member);
  }

  private async faults(deadline: number, random: Random): Promise<void> {
    const owning = this.deps.cluster.members.map((member) => member.addr).filter((addr) => this.ownedBy(addr).length > 0);
    if (owning.length === 0 || this.deps.firewall === null) return;
    let kind: 'isolate-prober' | 'prober-targets' = 'isolate-prober';
    for (let round = 0; round < 10_000; round++) {
      await sleep(Math.min(random.between(3000, 5000), deadline - Date.now()));
      if (deadline - Date.now() < 10_000) return;
      const prober = random.pick(owning);
      if (kind === 'isolate-prober') await this.isolate(prober, deadline, random);
      else if (this.deps.cgroups === null) {
        if (!this.notes.includes('prober-targets skipped: needs cgroup v2')) this.notes.push('prober-targets skipped: needs cgroup v2 (probes leave from 127.0.0.1, so address rules cannot single out one prober)');
      } else await this.cutFromTargets(prober, deadline, random);
      kind = kind === 'isolate-prober' ? 'prober-targets' : 'isolate-prober';
    }
  }

  private hostOf(addr: string): string {
    return addr.slice(0, addr.lastIndexOf(':'));
  }

  private drop(from: string, to: string): Drop {
    return { fromHost: from, fromCgroup: this.deps.cgroups === null ? null : this.deps.cgroups.relativePath(from), toHost: to };
  }

  private async isolate(prober: string, deadline: number, random: Random): Promise<void> {
    const firewall = this.deps.firewall;
    if (firewall === null) return;
    const id = this.faultId++;
    const host = this.hostOf(prober);
    const others = this.deps.cluster.members.map((member) => member.host).filter((other) => other !== host);
    const leader = await this.deps.monitor.findLeader();
    const owned = this.ownedBy(prober);
    const reopenAfterMs = random.chance(0.5) ? 2000 : 9000;
    // Held long enough that the targets were up for more than the commit margin before the heal, so that a stale
    // "unhealthy" committed at the heal cannot be excused by the down interval.
    const holdMs = Math.min(Math.max(random.between(12_000, 15_000), reopenAfterMs + this.bounds.commitMarginMs + 3000), deadline - Date.now());
    const value = { id, mode: 'isolate-prober', member: prober, wasLeader: leader === prober, targets: owned.map((t) => t.address), reopenAfterMs };
    this.deps.recorder.nemesis('invoke', 'start-partition', value);
    for (const target of owned) target.scripted = true;
    try {
      firewall.apply(others.flatMap((other) => [this.drop(host, other), this.drop(other, host)]));
    } catch (error) {
      this.problems.push(`isolate ${prober}: ${String(error)}`);
    }
    this.deps.recorder.nemesis('info', 'start-partition', { ...value, grudge: { [host]: others, ...Object.fromEntries(others.map((other) => [other, [host]])) } });
    await sleep(300);
    for (const target of owned) target.close();
    await sleep(reopenAfterMs);
    for (const target of owned) await target.open();
    await sleep(Math.max(0, holdMs - reopenAfterMs - 300));
    this.deps.recorder.nemesis('invoke', 'stop-partition', { id });
    const healed = firewall.heal();
    this.deps.recorder.nemesis('info', 'stop-partition', { id, result: `healed ${healed} rules` });
    // The targets stay open a while after the heal: a stale verdict committed now must stand out as unjustified.
    await sleep(8000);
    for (const target of owned) target.scripted = false;
  }

  private async cutFromTargets(prober: string, deadline: number, random: Random): Promise<void> {
    const firewall = this.deps.firewall;
    if (firewall === null) return;
    const id = this.faultId++;
    const holdMs = Math.min(random.between(13_000, 16_000), deadline - Date.now());
    const value = { id, mode: 'prober-targets', member: prober, targets: this.ownedBy(prober).map((t) => t.address) };
    this.deps.recorder.nemesis('invoke', 'start-partition', value);
    try {
      firewall.apply([this.drop(this.hostOf(prober), targetHost)]);
    } catch (error) {
      this.problems.push(`cut ${prober} from the targets: ${String(error)}`);
    }
    this.deps.recorder.nemesis('info', 'start-partition', { ...value, grudge: { [this.hostOf(prober)]: [targetHost] } });
    await sleep(holdMs);
    this.deps.recorder.nemesis('invoke', 'stop-partition', { id });
    const healed = firewall.heal();
    this.deps.recorder.nemesis('info', 'stop-partition', { id, result: `healed ${healed} rules` });
  }

  /**
   * degradations is C2's fault loop, one fault at a time, 3-5 s apart: the degraded member's NIC loses its reach to
   * all but one of its targets (which one keeps working is drawn each time) for 13-16 s: one DROP rule per lost target
   * (its port on 127.0.0.15, matched by the member's cgroup because probes leave from 127.0.0.1), and nothing between
   * members. Cairn, like Nacos, then commits those targets unhealthy after 3 timed-out probes although they listen; the
   * service's healthy share drops, and protectThreshold must take over (checkers-protect.ts).
   */
  private async degradations(member: string, deadline: number, random: Random): Promise<void> {
    const firewall = this.deps.firewall;
    if (firewall === null) return;
    if (this.deps.cgroups === null) {
      this.problems.push('degraded-nic faults need cgroup v2 (probes leave from 127.0.0.1, so address rules cannot single out one prober): C2 ran without its fault');
      return;
    }
    const owned = this.ownedBy(member);
    for (let round = 0; round < 10_000; round++) {
      await sleep(Math.min(random.between(3000, 5000), Math.max(0, deadline - Date.now())));
      if (deadline - Date.now() < 10_000) return;
      const kept = random.pick(owned);
      await this.degrade(member, owned.filter((target) => target !== kept), kept, deadline, random);
    }
  }

  private async degrade(member: string, lost: readonly Target[], kept: Target, deadline: number, random: Random): Promise<void> {
    const firewall = this.deps.firewall;
    const cgroups = this.deps.cgroups;
    if (firewall === null || cgroups === null) return;
    const id = this.faultId++;
    const host = this.hostOf(member);
    const holdMs = Math.min(random.between(13_000, 16_000), deadline - Date.now());
    const value = { id, mode: 'degraded-nic', member, targets: lost.map((t) => t.address), kept: kept.address };
    this.deps.recorder.nemesis('invoke', 'start-partition', value);
    try {
      firewall.apply(lost.map((target) => ({ fromHost: host, fromCgroup: cgroups.relativePath(host), toHost: targetHost, toPort: target.port })));
    } catch (error) {
      this.problems.push(`degrade ${member}'s reach to ${lost.map((t) => t.address).join(', ')}: ${String(error)}`);
    }
    this.deps.recorder.nemesis('info', 'start-partition', { ...value, grudge: { [host]: lost.map((t) => t.address) } });
    await sleep(holdMs);
    this.deps.recorder.nemesis('invoke', 'stop-partition', { id });
    const healed = firewall.heal();
    this.deps.recorder.nemesis('info', 'stop-partition', { id, result: `healed ${healed} rules` });
  }

  /**
   * crashes is C4's fault loop, one fault at a time: once every member reports the share it has under the full
   * membership (`cairn_health_targets` on /metrics, see shares()), the victim, the leader or a prober that does not
   * lead (alternating), is killed (SIGKILL, restarted after 5-9 s) or paused (SIGSTOP, SIGCONT after 13-16 s),
   * alternating between the enabled kinds. "In the middle of probing": the victim's targets are flipped (open ones
   * closed, closed ones opened) just before the fault, which comes 0-2.75 s later (one probe interval: the victim
   * may be counting, or sending a verdict). A paused victim's targets are flipped back 2 s into the pause, so a
   * verdict it reached or was sending is stale when it wakes (the pause lasts that + the commit margin + 3 s, so a
   * stale commit at the wake cannot be excused by the truth it saw: the fencing check). The last state is then held
   * until boundMs after the victim is back, so every transition must show within the bound (no lost transitions).
   */
  private async crashes(deadline: number, random: Random): Promise<void> {
    const kinds = this.options.faults.filter((kind): kind is 'kill' | 'pause' => kind === 'kill' || kind === 'pause');
    let kind = random.pick(kinds);
    let aimAtLeader = random.chance(0.5);
    for (let round = 0; round < 10_000; round++) {
      await sleep(Math.min(random.between(3000, 5000), Math.max(0, deadline - Date.now())));
      // A pause needs its 13-16 s before the deadline, a kill (5-9 s and the restart) 12 s.
      if (kind === 'pause' && deadline - Date.now() < 20_000 && kinds.includes('kill')) kind = 'kill';
      if (deadline - Date.now() < (kind === 'pause' ? 20_000 : 12_000)) return;
      const shares = await this.shares(deadline);
      const leader = await this.deps.monitor.findLeader();
      const running = this.deps.cluster.members.filter((member) => member.state === 'running');
      const candidates = running.filter((member) => (member.addr === leader) === aimAtLeader && this.ownedBy(member.addr).length > 0);
      if (candidates.length === 0) {
        this.notes.push(`round ${round}: no ${aimAtLeader ? 'leader' : 'prober'} to ${kind} (leader ${String(leader)})`);
        aimAtLeader = !aimAtLeader;
        continue;
      }
      await this.crash(kind, random.pick(candidates), leader, shares, deadline, random);
      kind = kinds[(kinds.indexOf(kind) + 1) % kinds.length] ?? kind;
      aimAtLeader = !aimAtLeader;
    }
  }

  /**
   * shares waits (at most sharesBoundMs) until every member's `cairn_health_targets` equals the number of targets it
   * owns under the full membership, i.e. the committed assignment names every member again after the last fault,
   * and records what it read (`health-shares`). This is how the harness knows who probes what: the owner rule is
   * Cairn's own (probeOwner), and the gauge confirms each member applied the assignment it is computed over.
   */
  private async shares(deadline: number): Promise<Record<string, number | null>> {
    const until = Math.min(deadline, Date.now() + sharesBoundMs);
    let read: Record<string, number | null> = {};
    for (let attempt = 0; attempt < 100; attempt++) {
      read = {};
      for (const member of this.deps.cluster.members) read[member.addr] = await targetsGauge(member.addr);
      const settled = this.deps.cluster.members.every((member) => read[member.addr] === this.ownedBy(member.addr).length);
      if (settled || Date.now() >= until) {
        this.deps.recorder.observe('health-shares', { targets: read, expected: Object.fromEntries(this.deps.cluster.members.map((m) => [m.addr, this.ownedBy(m.addr).length])), settled }, this.deps.recorder.now());
        if (!settled) this.notes.push(`shares not back to the full assignment within ${sharesBoundMs} ms: ${JSON.stringify(read)}`);
        return read;
      }
      await sleep(500);
    }
    return read;
  }

  private async crash(kind: 'kill' | 'pause', victim: Member, leader: string | null, shares: Record<string, number | null>, deadline: number, random: Random): Promise<void> {
    const id = this.faultId++;
    const owned = this.ownedBy(victim.addr);
    const wasLeader = victim.addr === leader;
    const mode = `${kind}-${wasLeader ? 'leader' : 'prober'}`;
    const value = { id, mode, member: victim.addr, wasLeader, targets: owned.map((t) => t.address), shares };
    for (const target of owned) target.scripted = true;
    for (const target of owned) await this.flip(target);
    let lastFlip = Date.now();
    await sleep(random.between(0, Math.round(1.1 * this.options.intervalMs)));
    this.deps.recorder.nemesis('invoke', `start-${kind}`, value);
    if (kind === 'kill') {
      await victim.kill();
      this.deps.recorder.nemesis('info', 'start-kill', { ...value, members: [victim.addr] });
      await sleep(random.between(5000, 9000));
    } else {
      victim.pause();
      this.deps.recorder.nemesis('info', 'start-pause', { ...value, pid: victim.pid });
      await sleep(flipBackAfterMs);
      for (const target of owned) await this.flip(target);
      lastFlip = Date.now();
      await sleep(Math.max(random.between(13_000, 16_000), flipBackAfterMs + this.bounds.commitMarginMs + 3000) - flipBackAfterMs);
    }
    this.deps.recorder.nemesis('invoke', `stop-${kind}`, { id });
    let result: string;
    if (kind === 'pause') {
      victim.resume();
      result = `resumed ${victim.addr}`;
    } else {
      try {
        await victim.start();
        result = `restarted ${victim.addr}`;
      } catch (error) {
        result = `${victim.addr}: restart failed: ${error instanceof Error ? error.message : String(error)}`;
        this.problems.push(`stop-kill #${id}: ${result}`);
      }
    }
    this.deps.recorder.nemesis('info', `stop-${kind}`, { id, result });
    // Hold the last state until the bound (which counts both share moves) has passed since the last flip, so that a
    // transition the new or returning owner never commits shows as reads against the truth.
    const holdUntil = lastFlip + this.bounds.boundMs + 1000;
    await sleep(Math.max(0, Math.min(holdUntil, deadline) - Date.now()));
    for (const target of owned) target.scripted = false;
  }

  private async flip(target: Target): Promise<void> {
    if (target.isOpen) target.close();
    else await target.open();
  }

  /**
   * finalPhase sets the final truth (every other target down, so both verdicts are checked), then reads every member
   * (linearizable and local) once a second until every target's health equals its truth on every member, or the
   * bound passes; then one more round, recorded with final: true, which the checker judges.
   */
  async finalPhase(generator: Generator, firstProcess: number, random: Random): Promise<void> {
    for (const target of this.targets) {
      target.scripted = true;
      if (target.index % 2 === 0) target.close();
      else await target.open();
    }
    const truth = new Map(this.targets.map((target) => [target.address, target.isOpen]));
    const members = this.deps.cluster.members.map((member) => member.addr);
    const deadline = Date.now() + this.bounds.boundMs + 5000;
    let process = firstProcess;
    for (;;) {
      let agreed = true;
      for (const member of members) {
        for (const consistency of ['linearizable', 'local'] as const) {
          const op = this.readOf(false, consistency, random);
          let seen: Record<string, boolean | null> | null = null;
          const wrapped: PlannedOperation = { ...op, complete: (result) => {
            const value = op.complete(result);
            seen = value['health'] as Record<string, boolean | null>;
            return value;
          } };
          const type = await generator.invokeOn(wrapped, process++, member, random);
          const health = seen as Record<string, boolean | null> | null;
          if (type !== 'ok' || health === null || [...truth].some(([address, up]) => health[address] !== up)) agreed = false;
        }
      }
      if (agreed || Date.now() >= deadline) break;
      await sleep(1000);
    }
    for (const member of members) {
      for (const consistency of ['linearizable', 'local'] as const) await generator.invokeOn(this.readOf(true, consistency, random), process++, member, random);
    }
    // Evidence of fencing from the members themselves: what became of each member's verdicts (committed, fenced by
    // the state machine, failed and retried, dropped because the member's term or assignment moved on).
    const flips: Record<string, Record<string, number>> = {};
    for (const member of members) {
      const result = await httpRequest(member, 'GET', '/metrics', 5000);
      if (!('answer' in result) || result.answer.status !== 200) continue;
      const counts: Record<string, number> = {};
      for (const line of result.answer.text.split('\n')) {
        const match = /^cairn_health_flips_total\{outcome="([a-z]+)"\} (\d+)/.exec(line);
        if (match !== null) counts[match[1] ?? '?'] = Number(match[2]);
      }
      flips[member] = counts;
    }
    this.deps.recorder.observe('health-metrics', { flips }, this.deps.recorder.now());
    // The targets' own evidence for the storm check: when each accepted a probe connection.
    for (const target of this.targets) {
      this.deps.recorder.observe('health-probes', { target: target.address, accepts: target.accepts, dropped: target.acceptsDropped }, this.deps.recorder.now());
    }
  }

  /** close stops every listener and closes C2's gRPC channels. */
  close(): void {
    for (const target of this.targets) target.shutdown();
    for (const client of this.grpcClients.values()) client.close();
    this.grpcClients.clear();
  }
}

/** targetsGauge reads a member's `cairn_health_targets` (the targets it probes), or null when it does not answer. */
async function targetsGauge(addr: string): Promise<number | null> {
  const result = await httpRequest(addr, 'GET', '/metrics', 2000);
  if (!('answer' in result) || result.answer.status !== 200) return null;
  const match = /^cairn_health_targets (\d+)/m.exec(result.answer.text);
  return match === null ? null : Number(match[1]);
}

async function httpOk(addr: string, method: string, pathAndQuery: string): Promise<string | null> {
  const result = await httpRequest(addr, method, pathAndQuery, 6500);
  if (!('answer' in result)) return `no answer: ${result.failure}`;
  return result.answer.status === 200 ? null : `${result.answer.status} ${result.answer.code ?? ''} ${result.answer.text.slice(0, 200)}`;
}

async function retry(deadline: number, what: string, attempt: () => Promise<string | null>): Promise<void> {
  let last = '';
  while (Date.now() < deadline) {
    const problem = await attempt();
    if (problem === null) return;
    last = problem;
    await sleep(300);
  }
  throw new Error(`health setup: ${what} did not succeed: ${last}`);
}

/** healthReadOf reads the service's instance list and maps every target to its `healthy` (null: not listed). */
export function healthReadOf(final: boolean, consistency: 'linearizable' | 'local'): PlannedOperation {
  const query = `/nacos/v1/ns/instance/list?serviceName=${healthService}${consistency === 'linearizable' ? '&consistency=linearizable' : ''}`;
  return {
    f: 'health-read',
    transport: 'http',
    value: final ? { consistency, final } : { consistency },
    run: async (_client, addr): Promise<Outcome<unknown>> => {
      const result = await httpRequest(addr, 'GET', query, 6500);
      if (!('answer' in result)) return result.maybeSent ? { type: 'info', error: result.failure } : { type: 'fail', error: result.failure };
      const { answer } = result;
      if (answer.status !== 200) return outcomeOfCode(answer.code, `status ${answer.status}: ${answer.text.slice(0, 200)}`);
      const body = JSON.parse(answer.text) as { hosts?: { ip: string; port: number; healthy?: boolean }[] };
      const health: Record<string, boolean> = {};
      for (const host of body.hosts ?? []) health[`${host.ip}:${host.port}`] = host.healthy !== false;
      return { type: 'ok', value: health };
    },
    complete: (health) => ({ health }),
  };
}

/** serviceThreshold reads a service's protectThreshold (GET /nacos/v1/ns/service), or null when it cannot. */
async function serviceThreshold(addr: string, service: string): Promise<number | null> {
  const result = await httpRequest(addr, 'GET', `/nacos/v1/ns/service?serviceName=${service}`, 6500);
  if (!('answer' in result) || result.answer.status !== 200) return null;
  const threshold = (JSON.parse(result.answer.text) as { protectThreshold?: unknown }).protectThreshold;
  return typeof threshold === 'number' ? threshold : null;
}

function grpcOutcome<T>(error: unknown): Outcome<T> {
  if (error instanceof GrpcCallError && error.cairnCode !== undefined) return outcomeOfCode(error.cairnCode, error.message);
  if (error instanceof GrpcCallError) return { type: 'info', error: `grpc ${error.statusName}: ${error.message.slice(0, 160)}` };
  return { type: 'info', error: error instanceof Error ? error.message : String(error) };
}

interface WireHost {
  readonly ip?: string;
  readonly port?: number;
  readonly healthy?: boolean;
}

/** grpcList is a served list over gRPC ListInstances: hosts as served, reach_protection_threshold, the revision. */
async function grpcList(client: ClientApiClient, service: string, healthyOnly: boolean, consistency: 'linearizable' | 'local'): Promise<Outcome<ServedList>> {
  try {
    const response = await client.call(namingServiceName, 'ListInstances', { service, healthyOnly, consistency: consistency === 'linearizable' ? 'LINEARIZABLE' : 'LOCAL' });
    const hosts: Record<string, boolean> = {};
    for (const host of (response['instances'] as WireHost[] | undefined) ?? []) hosts[`${host.ip ?? ''}:${host.port ?? 0}`] = host.healthy === true;
    return { type: 'ok', value: { via: 'grpc', healthyOnly, protected: response['reachProtectionThreshold'] === true, hosts, revision: Number(response['revision'] ?? 0) } };
  } catch (error) {
    return grpcOutcome(error);
  }
}

/** grpcStoredHealth is one instance's stored health over gRPC GetInstance (null: not found). */
async function grpcStoredHealth(client: ClientApiClient, service: string, address: string, consistency: 'linearizable' | 'local'): Promise<Outcome<boolean | null>> {
  const [ip, port] = address.split(':');
  try {
    const response = await client.call(namingServiceName, 'GetInstance', { service, ip, port: Number(port), consistency: consistency === 'linearizable' ? 'LINEARIZABLE' : 'LOCAL' });
    return { type: 'ok', value: (response['instance'] as WireHost | undefined)?.healthy === true };
  } catch (error) {
    if (error instanceof GrpcCallError && error.cairnCode !== undefined && absentCodes.has(error.cairnCode)) return { type: 'ok', value: null };
    return grpcOutcome(error);
  }
}

/** httpList is a served list over the Nacos v1 HTTP API (what a Nacos 1.x client sees; it reports no revision). */
async function httpList(addr: string, service: string, healthyOnly: boolean, consistency: 'linearizable' | 'local'): Promise<Outcome<ServedList>> {
  const query = `/nacos/v1/ns/instance/list?serviceName=${service}&healthyOnly=${String(healthyOnly)}${consistency === 'linearizable' ? '&consistency=linearizable' : ''}`;
  const result = await httpRequest(addr, 'GET', query, 6500);
  if (!('answer' in result)) return result.maybeSent ? { type: 'info', error: result.failure } : { type: 'fail', error: result.failure };
  const { answer } = result;
  if (answer.status !== 200) return outcomeOfCode(answer.code, `status ${answer.status}: ${answer.text.slice(0, 200)}`);
  const body = JSON.parse(answer.text) as { hosts?: { ip: string; port: number; healthy?: boolean }[]; reachProtectionThreshold?: boolean };
  const hosts: Record<string, boolean> = {};
  for (const host of body.hosts ?? []) hosts[`${host.ip}:${host.port}`] = host.healthy === true;
  return { type: 'ok', value: { via: 'http', healthyOnly, protected: body.reachProtectionThreshold === true, hosts, revision: null } };
}
