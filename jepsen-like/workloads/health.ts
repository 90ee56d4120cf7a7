// health workload (PEERS.md §2.3 C1): Cairn's active TCP health checks judged against a scripted ground truth.
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
// The owner of a target is computed with Cairn's own rule (src/cp/probe-assignment.ts probeOwner over the sorted
// member addresses, the assignment when every member is live) and written into the history's `health-setup` line.

import net from 'node:net';
import { probeOwner } from '../../src/cp/probe-assignment.ts';
import type { Outcome } from '../client.ts';
import { outcomeOfCode } from '../client.ts';
import { httpRequest } from '../client-http.ts';
import type { MemberCgroups } from '../cgroup.ts';
import type { Cluster } from '../control.ts';
import type { Generator, OperationSource, PlannedOperation } from '../generator.ts';
import type { HistoryRecorder } from '../history.ts';
import type { Drop, Firewall } from '../iptables.ts';
import type { ClusterMonitor } from '../monitor.ts';
import { type Random, sleep } from '../random.ts';

/** healthService is the service whose instances are the targets. */
export const healthService = 'jepsen-health';
/** targetHost is where the harness's targets listen (never a member's address in 3-member runs). */
export const targetHost = '127.0.0.15';
/** targetPortBase is the first target's port (above the register and set ranges). */
export const targetPortBase = 61_000;
/** healthFaultIdBase numbers this workload's faults apart from the generic nemesis's. */
const healthFaultIdBase = 1_000_000;
/** setupBoundMs bounds the registration and configuration of the targets. */
const setupBoundMs = 30_000;

/** HealthOptions shape the workload. */
export interface HealthOptions {
  readonly targets: number;
  readonly intervalMs: number;
  readonly pollers: number;
  readonly ratePerSecond: number;
}

/** defaultHealthOptions: 9 targets (about 3 per member), probes every 2.5 s, 3 pollers at 10 reads a second. */
export const defaultHealthOptions: HealthOptions = { targets: 9, intervalMs: 2500, pollers: 3, ratePerSecond: 10 };

/** HealthBounds are the checker's time bounds, derived from the probe interval (see checkers-health.ts). */
export interface HealthBounds {
  /** boundMs: how long a committed health may legitimately lag the truth. */
  readonly boundMs: number;
  /** commitMarginMs: how long a verdict may take from its probe to its commit. */
  readonly commitMarginMs: number;
}

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
 */
export function healthBounds(intervalMs: number): HealthBounds {
  const commitMarginMs = 8000;
  return { boundMs: Math.ceil(4 * 1.1 * intervalMs + 4500 + commitMarginMs), commitMarginMs };
}

/** targetAddress is target i's "ip:port". */
export function targetAddress(i: number): string {
  return `${targetHost}:${targetPortBase + i}`;
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
}

/** Target is one listener the harness opens and closes. */
class Target {
  private server: net.Server | null = null;
  private readonly sockets = new Set<net.Socket>();
  /** scripted: a fault controls this target; the random toggler leaves it alone. */
  scripted = false;

  constructor(
    readonly index: number,
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
      this.sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: targetHost, port: targetPortBase + this.index }, () => resolve());
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

  constructor(
    readonly options: HealthOptions,
    private readonly deps: HealthDeps,
  ) {
    if (deps.cluster.members.length !== 3) throw new Error('the health workload needs --nodes 3 (its targets listen on 127.0.0.15)');
    this.bounds = healthBounds(options.intervalMs);
    const members = deps.cluster.members.map((member) => member.addr).sort();
    for (let i = 0; i < options.targets; i++) {
      const address = targetAddress(i);
      this.targets.push(new Target(i, address, deps.recorder, () => this.faultId++));
      this.owners.set(address, probeOwner(members, targetHost, targetPortBase + i) ?? '');
    }
  }

  /** setup opens every target, registers them, configures the TCP checker and records `health-setup`. */
  async setup(random: Random): Promise<void> {
    await Promise.all(this.targets.map((target) => target.open(true)));
    const members = this.deps.cluster.members.map((member) => member.addr);
    const deadline = Date.now() + setupBoundMs;
    for (const target of this.targets) {
      const [ip, port] = target.address.split(':');
      await retry(deadline, `register ${target.address}`, () => httpOk(random.pick(members), 'POST', `/nacos/v1/ns/instance?serviceName=${healthService}&ip=${ip ?? ''}&port=${port ?? ''}&ephemeral=false`));
    }
    const checker = encodeURIComponent(JSON.stringify({ type: 'TCP', intervalMs: this.options.intervalMs }));
    await retry(deadline, 'configure the TCP checker', () => httpOk(random.pick(members), 'PUT', `/nacos/v1/ns/cluster?serviceName=${healthService}&clusterName=DEFAULT&checkPort=0&useInstancePort4Check=true&healthChecker=${checker}`));
    const setup: HealthSetup = {
      targets: this.targets.map((target) => target.address),
      owners: Object.fromEntries(this.owners),
      members: [...members].sort(),
      intervalMs: this.options.intervalMs,
      ...this.bounds,
    };
    this.deps.recorder.observe('health-setup', setup, this.deps.recorder.now());
  }

  /** next is a poller's linearizable read of the instance list. */
  next(_worker: number, _random: Random): PlannedOperation {
    return healthReadOf(false, 'linearizable');
  }

  /** run toggles the targets at random and, with partitions on, scripts the faults until `deadline`. */
  async run(deadline: number, partitions: boolean, random: Random): Promise<void> {
    const loops = this.targets.map((target) => this.toggle(target, deadline, random.fork()));
    if (partitions) loops.push(this.faults(deadline, random.fork()));
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
          const op = healthReadOf(false, consistency);
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
      for (const consistency of ['linearizable', 'local'] as const) await generator.invokeOn(healthReadOf(true, consistency), process++, member, random);
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
  }

  /** close stops every listener. */
  close(): void {
    for (const target of this.targets) target.shutdown();
  }
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
