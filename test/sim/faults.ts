// Nemesis: the fault injector of the safety phase. At intervals drawn per seed it picks a fault kind by the seed's
// weights: partitions (isolate the leader, halves, a bridge node that sees both halves, one-way cuts), crashes (any
// member, the leader, or a member right after it grants a vote or acknowledges entries), pauses, membership changes
// (add a learner from the spare ids, promote it, remove a member) and leadership transfers. Every fault undoes
// itself after a drawn duration; the liveness phase undoes them all (see simulator.ts).
import type { Prng } from '../../src/raft/prng.ts';
import type { MembershipChange, Message } from '../../src/raft/types.ts';
import type { EventKind } from './event-queue.ts';
import { symmetricCut, type SimNetwork } from './network.ts';
import type { NodeDriver } from './node-driver.ts';
import { faultKinds, pick, type FaultKind, type FaultParams } from './scenario.ts';
import type { SimStats } from './stats.ts';

/** NemesisWorld is what the nemesis needs from the simulation. */
export interface NemesisWorld {
  readonly prng: Prng;
  readonly drivers: readonly NodeDriver[];
  readonly network: SimNetwork;
  readonly stats: SimStats;
  schedule(delayMs: number, kind: EventKind, node: number, action: () => void): void;
  /** leader returns the running, unpaused member that leads the highest term, if any. */
  leader(): NodeDriver | undefined;
  crash(node: NodeDriver): void;
  restart(node: NodeDriver): void;
  /** startSpare starts a never-started member with the bootstrap state, so it can be added as a learner. */
  startSpare(node: NodeDriver): void;
  note(text: string): void;
}

type Trigger = 'vote' | 'ack' | 'new-leader';

/** triggerWindowMs is how long an armed crash-after-vote or crash-after-ack waits for its message. */
const triggerWindowMs = 1000;

/** Nemesis injects the safety phase's faults. */
export class Nemesis {
  private readonly world: NemesisWorld;
  private readonly params: FaultParams;
  private readonly weightTotal: number;
  private active = true;
  private partitionGeneration = 0;
  private armed: { readonly trigger: Trigger; readonly untilMs: number } | null = null;
  private nowMs = 0;
  /** removedIds are the members a removal was proposed for: never re-added, since a removed id is retired for good. */
  private readonly removedIds = new Set<string>();

  constructor(world: NemesisWorld, params: FaultParams) {
    this.world = world;
    this.params = params;
    this.weightTotal = faultKinds.reduce((sum, kind) => sum + params.weights[kind], 0);
  }

  /** start schedules the first fault. */
  start(): void {
    this.scheduleNext();
  }

  /** stop injects no more faults and disarms the triggers (the liveness phase). */
  stop(): void {
    this.active = false;
    this.armed = null;
    this.partitionGeneration++;
  }

  /** messageSent fires an armed crash-after-vote or crash-after-ack trigger when its message leaves `node`. */
  messageSent(node: NodeDriver, message: Message, nowMs: number): void {
    const armed = this.armed;
    if (armed === null) return;
    if (nowMs > armed.untilMs) {
      this.armed = null;
      return;
    }
    const fires =
      (armed.trigger === 'vote' && message.type === 'VoteResponse' && message.granted) ||
      (armed.trigger === 'ack' && message.type === 'AppendResponse' && message.success);
    if (!fires) return;
    this.armed = null;
    const incarnation = node.incarnation;
    this.world.schedule(this.world.prng.nextInt(3), 'fault', node.index, () => {
      if (!this.active || node.incarnation !== incarnation || !node.up) return;
      this.world.note(`nemesis: crash ${node.id} right after it sent ${message.type} (term ${message.term}) to ${message.to}`);
      this.crashFor(node, this.params.downtimeMaxMs);
    });
  }

  /**
   * leaderElected fires an armed isolate-new-leader trigger: the new leader is cut off from everyone a few
   * milliseconds after winning, often before its no-op or the older entries it replicates reach a majority (the
   * preconditions of Figure 8 in the Raft paper, §5.4.2).
   */
  leaderElected(node: NodeDriver, nowMs: number): void {
    const armed = this.armed;
    if (armed === null || armed.trigger !== 'new-leader') return;
    this.armed = null;
    if (nowMs > armed.untilMs) return;
    const term = node.core?.term;
    this.world.schedule(this.world.prng.nextInt(40), 'fault', node.index, () => {
      if (!this.active || node.core === null || node.core.role !== 'leader' || node.core.term !== term) return;
      this.isolate(node, `new leader ${node.id} (term ${String(term)})`);
    });
  }

  private scheduleNext(): void {
    if (!this.active || this.weightTotal === 0) return;
    const { intervalMinMs, intervalMaxMs } = this.params;
    const delay = intervalMinMs + this.world.prng.nextInt(intervalMaxMs - intervalMinMs + 1);
    this.world.schedule(delay, 'fault', -1, () => {
      if (!this.active) return;
      this.inject(this.pickKind());
      this.scheduleNext();
    });
  }

  private pickKind(): FaultKind {
    let ticket = this.world.prng.nextInt(this.weightTotal);
    for (const kind of faultKinds) {
      ticket -= this.params.weights[kind];
      if (ticket < 0) return kind;
    }
    throw new Error('nemesis: fault weights exhausted');
  }

  /** inject applies one fault of `kind` (or nothing when it does not apply now, e.g. no leader to isolate). */
  private inject(kind: FaultKind): void {
    const applied = this.apply(kind);
    if (applied) this.world.stats.countFault(kind);
  }

  private apply(kind: FaultKind): boolean {
    switch (kind) {
      case 'partition-isolate-leader':
        return this.isolateLeader();
      case 'partition-halves':
        return this.partitionHalves(false);
      case 'partition-bridge':
        return this.partitionHalves(true);
      case 'partition-one-way':
        return this.partitionOneWay();
      case 'heal':
        this.world.network.heal();
        this.world.note('nemesis: heal');
        return true;
      case 'crash':
        return this.crashRandom();
      case 'crash-leader':
        return this.crashLeader();
      case 'crash-after-vote':
        return this.arm('vote');
      case 'crash-after-ack':
        return this.arm('ack');
      case 'isolate-new-leader':
        return this.arm('new-leader');
      case 'pause':
        return this.pauseRandom();
      case 'membership':
        return this.changeMembership();
      case 'transfer-leader':
        return this.transferLeader();
      default: {
        const unknown: never = kind;
        throw new Error(`nemesis: unknown fault ${String(unknown)}`);
      }
    }
  }

  private live(): NodeDriver[] {
    return this.world.drivers.filter((driver) => driver.started && !driver.retired);
  }

  private partitionFor(links: Array<readonly [number, number]>, description: string): boolean {
    if (links.length === 0) return false;
    this.world.network.partition(links);
    this.world.note(`nemesis: partition ${description}`);
    const generation = ++this.partitionGeneration;
    const duration = 1 + this.world.prng.nextInt(this.params.partitionMaxMs);
    this.world.schedule(duration, 'heal', -1, () => {
      if (generation !== this.partitionGeneration) return;
      this.world.network.heal();
      this.world.note('nemesis: partition healed');
    });
    return true;
  }

  private isolateLeader(): boolean {
    const leader = this.world.leader();
    if (leader === undefined) return false;
    return this.isolate(leader, `leader ${leader.id}`);
  }

  private isolate(node: NodeDriver, description: string): boolean {
    const others = this.live().filter((driver) => driver !== node).map((driver) => driver.index);
    return this.partitionFor(symmetricCut([node.index], others), `isolate ${description}`);
  }

  private partitionHalves(bridge: boolean): boolean {
    const nodes = shuffle(this.world.prng, this.live().map((driver) => driver.index));
    const bridgeNode = bridge ? nodes.pop() : undefined;
    if (nodes.length < 2) return false;
    const cut = 1 + this.world.prng.nextInt(nodes.length - 1);
    const a = nodes.slice(0, cut);
    const b = nodes.slice(cut);
    const name = (group: number[]): string => group.map((index) => this.world.drivers[index]?.id ?? '?').join(',');
    const description = `${name(a)} | ${name(b)}${bridgeNode === undefined ? '' : ` (bridge ${this.world.drivers[bridgeNode]?.id ?? '?'})`}`;
    return this.partitionFor(symmetricCut(a, b), description);
  }

  private partitionOneWay(): boolean {
    const nodes = this.live();
    if (nodes.length < 2) return false;
    const node = pick(this.world.prng, nodes);
    const others = nodes.filter((driver) => driver !== node).map((driver) => driver.index);
    const outbound = this.world.prng.chance(0.5);
    const links = others.map((other): readonly [number, number] => (outbound ? [node.index, other] : [other, node.index]));
    return this.partitionFor(links, `one-way: ${node.id} ${outbound ? 'cannot send' : 'cannot receive'}`);
  }

  private crashFor(node: NodeDriver, downtimeMaxMs: number): void {
    this.world.crash(node);
    const incarnation = node.incarnation;
    this.world.schedule(1 + this.world.prng.nextInt(downtimeMaxMs), 'restart', node.index, () => {
      if (node.up || node.retired || node.incarnation !== incarnation) return;
      this.world.restart(node);
    });
  }

  private crashRandom(): boolean {
    const candidates = this.live().filter((driver) => driver.up);
    if (candidates.length === 0) return false;
    const node = pick(this.world.prng, candidates);
    this.world.note(`nemesis: crash ${node.id}`);
    this.crashFor(node, this.params.downtimeMaxMs);
    return true;
  }

  private crashLeader(): boolean {
    const leader = this.world.leader();
    if (leader === undefined) return false;
    this.world.note(`nemesis: crash leader ${leader.id}`);
    this.crashFor(leader, this.params.downtimeMaxMs);
    return true;
  }

  private arm(trigger: Trigger): boolean {
    this.armed = { trigger, untilMs: this.nowMs + triggerWindowMs };
    return true;
  }

  private pauseRandom(): boolean {
    const candidates = this.live().filter((driver) => driver.up && !driver.paused);
    if (candidates.length === 0) return false;
    const node = pick(this.world.prng, candidates);
    node.pause();
    this.world.note(`nemesis: pause ${node.id}`);
    const incarnation = node.incarnation;
    this.world.schedule(1 + this.world.prng.nextInt(this.params.pauseMaxMs), 'unpause', node.index, () => {
      if (node.incarnation !== incarnation || !node.paused) return;
      this.world.note(`nemesis: resume ${node.id}`);
      node.resume();
    });
    return true;
  }

  /** changeMembership proposes one single-member change on the leader (thesis §4.1); the core refuses a second while one is pending. */
  private changeMembership(): boolean {
    const leader = this.world.leader();
    const core = leader?.core;
    if (leader === undefined || core === undefined || core === null) return false;
    const change = this.pickChange(core.membership.voters, core.membership.learners);
    if (change === null) return false;
    const node = this.world.drivers.find((driver) => driver.id === change.node);
    if (change.type === 'add-learner' && node !== undefined && !node.started) this.world.startSpare(node);
    const result = core.proposeMembership(change);
    if (result.ok && change.type === 'remove') this.removedIds.add(change.node);
    this.world.note(`nemesis: ${leader.id} proposes ${change.type} ${change.node}: ${result.ok ? `index ${result.firstIndex}` : result.code}`);
    if (!result.ok) this.world.stats.countFault(`membership-refused`);
    leader.pump();
    return true;
  }

  private pickChange(voters: readonly string[], learners: readonly string[]): MembershipChange | null {
    const spares = this.world.drivers.filter(
      (driver) => !driver.retired && !this.removedIds.has(driver.id) && !voters.includes(driver.id) && !learners.includes(driver.id),
    );
    const options: MembershipChange[] = [];
    const spare = spares[0];
    if (spare !== undefined) options.push({ type: 'add-learner', node: spare.id });
    for (const learner of learners) options.push({ type: 'promote', node: learner }, { type: 'remove', node: learner });
    if (voters.length > 1) for (const voter of voters) options.push({ type: 'remove', node: voter });
    return options.length === 0 ? null : pick(this.world.prng, options);
  }

  private transferLeader(): boolean {
    const leader = this.world.leader();
    const core = leader?.core;
    if (leader === undefined || core === undefined || core === null) return false;
    const targets = core.membership.voters.filter((id) => id !== leader.id);
    if (targets.length === 0) return false;
    const target = pick(this.world.prng, targets);
    const result = core.transferLeadership(target);
    this.world.note(`nemesis: ${leader.id} transfers leadership to ${target}: ${result.ok ? 'ok' : result.code}`);
    leader.pump();
    return true;
  }

  /** setNow tells the nemesis the current virtual time (for trigger windows). */
  setNow(nowMs: number): void {
    this.nowMs = nowMs;
  }
}

/** shuffle returns a seeded Fisher-Yates permutation of `items`. */
export function shuffle<T>(prng: Prng, items: readonly T[]): T[] {
  const result = [...items];
  for (let i = result.length - 1; i > 0; i--) {
    const j = prng.nextInt(i + 1);
    const a = result[i] as T;
    result[i] = result[j] as T;
    result[j] = a;
  }
  return result;
}
