// nemesis: the faults of a run, scheduled and composable. Each enabled kind runs its own loop (so faults of
// different kinds overlap, as with Jepsen's combined nemesis): wait a quiet interval, start a fault, hold it,
// stop it, until the deadline; then everything is healed. Every start and stop is recorded as a nemesis
// invoke/info pair with the fault's id, so the report can shade each fault's interval.
//
// - partition: iptables drops between member cgroups (iptables.ts). Modes: 'halves' (random halves), 'leader'
//   (isolate the leader: Jepsen's :primaries), 'follower' (isolate a random follower), 'one' (isolate a random member), 'ring' (majorities ring: each
//   member sees a majority, no two the same one; with 3 members this is 'bridge'), 'bridge' (two halves and one
//   member that sees both), 'one-way-leader' (the leader's outgoing packets are dropped, incoming ones are not).
// - kill: SIGKILL then restart. Targets 'one', 'leader', 'minority', 'majority', 'all'. With the lazyfs emulation
//   on, a killed member also loses what it never fsynced (lazyfs.ts) before it restarts.
// - pause: SIGSTOP then SIGCONT. Targets 'leader', 'one'.
// - transfer: ask the leader to hand leadership to a random other member (instantaneous).
// - member (PEERS.md A4): shrink then grow. Pick a victim (the leader or a follower, membership.ts), ask the leader
//   to remove it until the removal is known to have committed, kill it and wipe its data directory; hold; then
//   start it empty with --join and ask the leader to add it back until it is a voter. One fault at a time, only
//   from the full membership, so the group never has fewer than votersMin (3) voters: it needs 5 members. A removal
//   that never settles leaves the victim as it is (it may still be a voter: wiping it would lose its votes).
//   heal-all re-adds any member that is not a voter (removal confirmed, wipe, --join, add), so a run always ends
//   with every member a voter; the runner then checks that every member reports that membership.
// - wipe (PEERS.md A9): a member that lost its data, or whose data moved to another address, must not come back as
//   a voter that forgot its votes. One fault, only from the full membership, on a running member no other fault
//   holds (so kill, pause and member leave it alone): it is killed, then alternately (a) 'wiped': its data
//   directory is deleted and it is started with exactly its normal flags (no --join), which Cairn must refuse
//   (non-zero exit, CAIRN_MEMBER_STATE_MISSING); the fault's stop then restores it by the documented path (remove,
//   wipe, --join, add until it is a voter); or (b) 'moved' (only while a reserved address 127.0.0.11-15 is free,
//   i.e. with 3 members): its data directory is started under a free address, with --members naming the cluster
//   plus that address, which Cairn must refuse (CAIRN_INVALID_ARGUMENT, "belongs to member"); the stop restarts it
//   on its own address with its data and waits until it reports itself a voter under a leader. A start that is
//   accepted (prints ready, answers HTTP), hangs past the bound, or ends another way is a nemesis problem (the run
//   is invalid); such a process is killed by pid after at most servedObserveMs of serving.
// - corrupt (PEERS.md A7, corruption.ts): one member at a time, only from the full membership, is killed, one of its
//   LevelDB files is damaged (bits flipped in a table or the write-ahead log, or the newest file truncated; seeded),
//   and it is started again with its normal flags. Its storage is probed before and after the damage (a copy opened
//   with LevelStorage). A start refused with CAIRN_STORAGE_CORRUPT is rebuilt by the documented path at the fault's
//   stop (as the wipe nemesis's: remove, wipe, --join, add); a member that started stays, and one that stops by
//   itself with a corruption error while the fault holds it is rebuilt the same way. Every fault's file, offsets,
//   bytes, probes and outcome go into its start-corrupt / stop-corrupt lines.
// - clock (PEERS.md A12, clock-faults.ts, faketime.ts): the members' clocks moved through their libfaketime control
//   files: a bump (one member, the leader or all, ±2..±90 s, sometimes several accumulating) or a strobe (one
//   member's offset flipping between +X and -X every 1-2 s). Wall mode moves only CLOCK_REALTIME, and a fault's end
//   resets every file to +0; monotonic mode moves both clocks, forward only, and keeps the offsets. Every write is a
//   `clock-step` line; each fault's first step is checked in the members' HTTP Date headers (`clock-probe`), and a
//   step no member shows within the bound is a problem (a clock fault that moves no clock tests nothing).

import { memberHosts, type Cluster, type Member, type StartAttempt } from './control.ts';
import type { MemberCgroups } from './cgroup.ts';
import { clusterView, httpRequest, transferLeader } from './client-http.ts';
import type { HistoryRecorder } from './history.ts';
import type { Drop, Firewall } from './iptables.ts';
import {
  addMember,
  awaitSelfVoter,
  chooseVictim,
  freeHosts,
  judgeAttempt,
  movedRefusal,
  refusalBoundMs,
  removeMember,
  roleInGroup,
  servedObserveMs,
  votersMin,
  votersSeenBy,
  wipedRefusal,
  wipeModeOf,
  type AttemptObservation,
  type ChangeReport,
  type WipeMode,
} from './membership.ts';
import type { ClusterMonitor } from './monitor.ts';
import {
  applyCorruption,
  databaseDirOf,
  diffProbes,
  judgeCorruption,
  listLevelFiles,
  mentionsCorruption,
  planCorruption,
  probeStorage,
  type CorruptionJudgement,
  type StorageProbe,
} from './corruption.ts';
import path from 'node:path';
import { type Random, sleep } from './random.ts';
import {
  checkClockFaultOptions,
  formatOffsets,
  healedOffsets,
  planClockFault,
  probeClock,
  StepPlayer,
  type ClockFaultOptions,
  type ClockPlan,
  type ClockShape,
  type ClockStep,
  type ClockTarget,
} from './clock-faults.ts';

/** NemesisKind is one kind of fault. */
export type NemesisKind = 'partition' | 'kill' | 'pause' | 'transfer' | 'member' | 'wipe' | 'corrupt' | 'clock';
/** nemesisKinds lists every kind, for the command line. */
export const nemesisKinds: readonly NemesisKind[] = ['partition', 'kill', 'pause', 'transfer', 'member', 'wipe', 'corrupt', 'clock'];
/** memberNemesisNodesMin: removing one of fewer members would leave fewer than votersMin voters. */
export const memberNemesisNodesMin = votersMin + 1;
/** wipeNemesisNodesMin: with one of fewer members dead, the others are no majority and cannot remove it. */
export const wipeNemesisNodesMin = 3;
/** corruptNemesisNodesMin: the damaged member is rebuilt by a removal, which the others must commit without it. */
export const corruptNemesisNodesMin = 3;
/** PartitionMode is the shape of a partition. */
export type PartitionMode = 'halves' | 'leader' | 'follower' | 'one' | 'ring' | 'bridge' | 'one-way-leader';
/** partitionModes lists every partition mode. */
export const partitionModes: readonly PartitionMode[] = ['halves', 'leader', 'follower', 'one', 'ring', 'bridge', 'one-way-leader'];
/** KillTarget is which members a kill takes. */
export type KillTarget = 'one' | 'leader' | 'minority' | 'majority' | 'all';
/** killTargets lists every kill target. */
export const killTargets: readonly KillTarget[] = ['one', 'leader', 'minority', 'majority', 'all'];
/** PauseTarget is which member a pause stops. */
export type PauseTarget = 'leader' | 'one';
/** pauseTargets lists every pause target. */
export const pauseTargets: readonly PauseTarget[] = ['leader', 'one'];

/** NemesisOptions choose the faults and their timing (milliseconds, [min, max]). */
export interface NemesisOptions {
  readonly kinds: readonly NemesisKind[];
  readonly partitionModes: readonly PartitionMode[];
  readonly killTargets: readonly KillTarget[];
  readonly pauseTargets: readonly PauseTarget[];
  readonly faultMs: readonly [number, number];
  readonly quietMs: readonly [number, number];
  /** clock shapes the clock nemesis (mode, shapes, targets, offsets); read only when kinds include 'clock'. */
  readonly clock: ClockFaultOptions;
}

/** NemesisDeps are what the nemesis acts on. */
export interface NemesisDeps {
  readonly cluster: Cluster;
  readonly recorder: HistoryRecorder;
  readonly monitor: ClusterMonitor;
  readonly firewall: Firewall | null;
  readonly cgroups: MemberCgroups | null;
  readonly random: Random;
}

/** memberViewTimeoutMs bounds the leader's view read before a membership fault. */
const memberViewTimeoutMs = 2000;
/** restoreRoundsMax bounds the attempts to make one member a voter again (a second one after a learner was left). */
const restoreRoundsMax = 2;
/** attemptPollMs spaces the HTTP probes of a start Cairn should refuse (any answer means it started). */
const attemptPollMs = 1000;
/** attemptProbeTimeoutMs bounds one such probe: a local member answers GET /cairn/v1/cluster in milliseconds. */
const attemptProbeTimeoutMs = 1000;
/**
 * rejoinBoundMs bounds the wait for a restarted member to report itself a voter under a leader: a partition lasts at
 * most 10 s, then an election timeout (1-2 s).
 */
const rejoinBoundMs = 30_000;

/** Fault is a started fault: how to stop it. */
interface Fault {
  readonly id: number;
  readonly kind: NemesisKind;
  readonly stop: () => Promise<unknown>;
}

/** Grudge maps a member's host to the hosts it cannot send to. */
export type Grudge = Map<string, Set<string>>;

/** Nemesis runs the fault loops of a run. */
export class Nemesis {
  private nextId = 0;
  /** problems lists what went wrong while injecting or healing (restarts that failed, for instance). */
  readonly problems: string[] = [];
  /** outOfService holds the members a membership or wipe fault has taken (by address): the other kinds leave them alone. */
  private readonly outOfService = new Set<string>();
  /**
   * starting holds the members a kill fault is restarting: already 'running' to the Member, not yet ready. No other
   * kind may take them meanwhile (B5, seed 42002: the member nemesis killed and wiped a member the kill nemesis was
   * restarting, and the restart failed).
   */
  private readonly starting = new Set<string>();
  /**
   * removalOwed holds the members whose data was wiped while they were voters (wipe nemesis), until their removal is
   * known to have committed: they must not be started with --join (or at all) before, since a wiped voter that
   * runs is exactly the amnesia Cairn refuses.
   */
  private readonly removalOwed = new Set<string>();
  /** wipeFaults counts the wipe faults started, to alternate their modes (wipeModeOf). */
  private wipeFaults = 0;

  constructor(
    private readonly options: NemesisOptions,
    private readonly deps: NemesisDeps,
  ) {
    if (options.kinds.includes('partition') && deps.firewall === null) {
      throw new Error('the partition nemesis needs iptables');
    }
    if (options.kinds.includes('member') && deps.cluster.members.length < memberNemesisNodesMin) {
      throw new Error(`the member nemesis needs at least ${memberNemesisNodesMin} members: removing one of ${deps.cluster.members.length} would leave fewer than ${votersMin} voters`);
    }
    if (options.kinds.includes('corrupt') && deps.cluster.members.length < corruptNemesisNodesMin) {
      throw new Error(`the corrupt nemesis needs at least ${corruptNemesisNodesMin} members: the damaged one is rebuilt by a removal the others commit`);
    }
    if (options.kinds.includes('wipe') && deps.cluster.members.length < wipeNemesisNodesMin) {
      throw new Error(`the wipe nemesis needs at least ${wipeNemesisNodesMin} members: with one of ${deps.cluster.members.length} dead the others cannot remove it`);
    }
    if (options.kinds.includes('clock')) {
      const problem = checkClockFaultOptions(options.clock);
      if (problem !== null) throw new Error(`the clock nemesis: ${problem}`);
      if (deps.cluster.members.some((member) => member.clockFile === null)) throw new Error('the clock nemesis needs every member started under libfaketime (ClusterOptions.clock)');
      if (deps.cluster.options.clock?.mode !== options.clock.mode) throw new Error(`the clock nemesis plays ${options.clock.mode} faults on members started for ${deps.cluster.options.clock?.mode ?? 'no'} clock faults`);
    }
  }

  /** run runs one loop per kind until `deadline` (Date.now() ms), each ending with its fault stopped. */
  /** run injects faults until `deadline`, or until `signal` aborts (then it starts nothing more and ends the fault in force). */
  async run(deadline: number, signal?: AbortSignal): Promise<void> {
    await Promise.all(this.options.kinds.map((kind) => this.loop(kind, deadline, this.deps.random.fork(), signal)));
  }

  private async loop(kind: NemesisKind, deadline: number, random: Random, signal: AbortSignal | undefined): Promise<void> {
    for (let round = 0; round < 100_000 && Date.now() < deadline && !aborted(signal); round++) {
      await sleep(Math.min(random.between(...this.options.quietMs), deadline - Date.now()), signal);
      if (Date.now() >= deadline || aborted(signal)) return;
      if (kind === 'transfer') {
        await this.transfer(random);
        continue;
      }
      const fault = await this.startFault(kind, random);
      if (fault === null) continue;
      await sleep(Math.min(random.between(...this.options.faultMs), deadline - Date.now()), signal);
      // After an abort the run's teardown kills the members and removes the rules; stopping the fault would race it.
      if (aborted(signal)) return;
      await this.stopFault(fault);
    }
  }

  private async startFault(kind: Exclude<NemesisKind, 'transfer'>, random: Random): Promise<Fault | null> {
    const id = this.nextId++;
    switch (kind) {
      case 'partition':
        return this.startPartition(id, random.pick(this.options.partitionModes), random);
      case 'kill':
        return this.startKill(id, random.pick(this.options.killTargets), random);
      case 'pause':
        return this.startPause(id, random.pick(this.options.pauseTargets), random);
      case 'member':
        return this.startMember(id, random);
      case 'wipe':
        return this.startWipe(id, random);
      case 'corrupt':
        return this.startCorrupt(id, random);
      case 'clock':
        return this.startClock(id, random.pick(this.options.clock.shapes), random.pick(this.options.clock.targets), random);
    }
  }

  private async stopFault(fault: Fault): Promise<void> {
    const { recorder } = this.deps;
    recorder.nemesis('invoke', `stop-${fault.kind}`, { id: fault.id });
    let result: unknown;
    try {
      result = await fault.stop();
    } catch (error) {
      result = `failed: ${error instanceof Error ? error.message : String(error)}`;
      this.problems.push(`stop-${fault.kind} #${fault.id}: ${String(result)}`);
    }
    recorder.nemesis('info', `stop-${fault.kind}`, { id: fault.id, result });
  }

  private async startPartition(id: number, mode: PartitionMode, random: Random): Promise<Fault | null> {
    const { recorder, firewall, cgroups } = this.deps;
    if (firewall === null) return null;
    const hosts = this.deps.cluster.members.map((member) => member.host);
    const leader = mode === 'one' || mode === 'halves' ? null : hostOfAddr(await this.deps.monitor.findLeader());
    recorder.nemesis('invoke', 'start-partition', { id, mode, leader });
    const grudge = grudgeOf(mode, hosts, leader, random);
    const drops: Drop[] = [];
    for (const [from, tos] of grudge) {
      for (const to of tos) drops.push({ fromHost: from, fromCgroup: cgroups === null ? null : cgroups.relativePath(from), toHost: to });
    }
    firewall.apply(drops);
    recorder.nemesis('info', 'start-partition', { id, mode, leader, grudge: Object.fromEntries([...grudge].map(([from, tos]) => [from, [...tos]])) });
    return { id, kind: 'partition', stop: () => Promise.resolve(`healed ${firewall.heal()} rules`) };
  }

  private async startKill(id: number, target: KillTarget, random: Random): Promise<Fault | null> {
    const victims = await this.choose(target, random);
    if (victims.length === 0) return null;
    this.deps.recorder.nemesis('invoke', 'start-kill', { id, target, members: victims.map((m) => m.addr) });
    await Promise.all(victims.map((member) => member.kill()));
    const losses = victims.map((member) => ({ member: member.addr, lost: member.loseUnsyncedWrites() }));
    this.deps.recorder.nemesis('info', 'start-kill', { id, target, members: victims.map((m) => m.addr), losses });
    return { id, kind: 'kill', stop: () => this.restart(victims) };
  }

  private async restart(members: readonly Member[]): Promise<string[]> {
    const results = await Promise.all(members.map(async (member) => {
      if (member.state !== 'killed') return `${member.addr}: ${member.state}, not restarted`;
      // Even with --join: the group still counts it a voter, and an empty voter is the amnesia Cairn refuses.
      if (this.removalOwed.has(member.addr)) return `${member.addr}: wiped while a voter, not restarted before its removal commits`;
      try {
        this.starting.add(member.addr);
        try {
          await member.start();
        } finally {
          this.starting.delete(member.addr);
        }
        return `${member.addr}: restarted`;
      } catch (error) {
        const problem = `${member.addr}: restart failed: ${error instanceof Error ? error.message : String(error)}`;
        this.problems.push(problem);
        return problem;
      }
    }));
    return results;
  }

  private async startPause(id: number, target: PauseTarget, random: Random): Promise<Fault | null> {
    const [victim] = await this.choose(target, random);
    if (victim === undefined || victim.state !== 'running') return null;
    this.deps.recorder.nemesis('invoke', 'start-pause', { id, target, member: victim.addr });
    victim.pause();
    this.deps.recorder.nemesis('info', 'start-pause', { id, target, member: victim.addr, pid: victim.pid });
    return {
      id,
      kind: 'pause',
      stop: () => {
        victim.resume();
        return Promise.resolve(`resumed ${victim.addr}`);
      },
    };
  }

  private async transfer(random: Random): Promise<void> {
    const { recorder, cluster } = this.deps;
    const id = this.nextId++;
    const leader = await this.deps.monitor.findLeader();
    const others = cluster.members.filter((member) => member.addr !== leader && member.state === 'running');
    if (leader === null || others.length === 0) return;
    const to = random.pick(others).addr;
    recorder.nemesis('invoke', 'transfer', { id, from: leader, to });
    const result = await transferLeader(leader, to, 5000);
    recorder.nemesis('info', 'transfer', { id, from: leader, to, result });
  }

  private async startMember(id: number, random: Random): Promise<Fault | null> {
    const { cluster, monitor, recorder } = this.deps;
    const leader = await monitor.findLeader();
    const view = leader === null ? null : await clusterView(leader, memberViewTimeoutMs);
    if (leader === null || view === null || view.leader !== leader) return null;
    const voters = votersSeenBy(view, leader);
    // Only from the full membership, so one member at most is out and the group keeps at least votersMin voters.
    if (voters.join(',') !== cluster.members.map((member) => member.addr).sort().join(',')) return null;
    const eligible = cluster.members.filter((member) => this.available(member)).map((member) => member.addr);
    const victim = chooseVictim(leader, voters, eligible, random);
    const member = victim === null ? undefined : cluster.byAddr(victim.addr);
    // One member out at a time across the member and wipe faults; no await lies between this check and the add.
    if (victim === null || member === undefined || this.outOfService.size > 0) return null;
    this.outOfService.add(member.addr);
    recorder.nemesis('invoke', 'start-member', { id, target: victim.role, member: member.addr, leader, voters });
    const removal = await removeMember(member.addr, () => monitor.findLeader());
    if (removal.problem !== null) this.problems.push(`start-member #${id}: ${removal.problem}`);
    let wipe = 'not wiped: the removal is not known to have committed, so the member may still be a voter';
    if (removal.settled) {
      await member.kill();
      wipe = this.tryWipe(member, `start-member #${id}`);
    }
    recorder.nemesis('info', 'start-member', { id, target: victim.role, member: member.addr, leader, removed: removal.settled, removal: reportOf(removal), wipe });
    return { id, kind: 'member', stop: () => this.restoreMember(member, `stop-member #${id}`) };
  }

  private tryWipe(member: Member, context: string): string {
    try {
      member.wipe();
      return 'killed and wiped';
    } catch (error) {
      const problem = `${context}: wipe of ${member.addr} failed: ${error instanceof Error ? error.message : String(error)}`;
      this.problems.push(problem);
      return problem;
    }
  }

  /**
   * restoreMember makes `member` a voter again, by Cairn's documented path (docs/operations.md): nothing when it is
   * one (a stopped voter is only restarted); otherwise its removal is confirmed, it is killed and wiped (unless it is
   * wiped already and its removal known: a member the wipe nemesis wiped while a voter is removed first), started
   * empty with --join and added by the leader. Failures are recorded as problems. A member
   * left a learner by an interrupted addition (membership.ts) is recorded as a problem and then made again once
   * (removed, wiped, added), so one such event does not end the membership faults of the run.
   */
  private async restoreMember(member: Member, context: string): Promise<Record<string, unknown>> {
    const rounds: Record<string, unknown>[] = [];
    try {
      for (let round = 0; round < restoreRoundsMax; round++) {
        const steps = await this.restoreOnce(member, context);
        rounds.push(steps);
        if (steps['learnerLeft'] !== true) break;
      }
    } finally {
      this.outOfService.delete(member.addr);
    }
    return rounds.length === 1 ? (rounds[0] ?? {}) : { member: member.addr, rounds };
  }

  private async restoreOnce(member: Member, context: string): Promise<Record<string, unknown>> {
    const findLeader = (): Promise<string | null> => this.deps.monitor.findLeader();
    const steps: Record<string, unknown> = { member: member.addr };
    const fail = (problem: string, extra: Record<string, unknown> = {}): Record<string, unknown> => {
      this.problems.push(`${context}: ${problem}`);
      return { ...steps, ...extra, problem };
    };
    try {
      // A member wiped while it was a voter (wipe nemesis) is removed first, as one that was never wiped.
      if (!member.wiped || this.removalOwed.has(member.addr)) {
        const role = await roleInGroup(member.addr, findLeader);
        steps['role'] = role ?? 'unknown';
        if (role === null) return fail(`no leader told what ${member.addr} is; left as it is`);
        if (role === 'voter' && !member.wiped) {
          if (member.state === 'killed' || member.state === 'stopped') await member.start();
          steps['result'] = `a voter already (${member.state})`;
          return steps;
        }
        const removal = await removeMember(member.addr, findLeader);
        steps['removal'] = reportOf(removal);
        if (!removal.settled) return fail(removal.problem ?? `the removal of ${member.addr} (a ${role}) never settled; not wiped`);
        this.removalOwed.delete(member.addr);
        await member.kill();
        steps['wipe'] = this.tryWipe(member, context);
        if (!member.wiped) return { ...steps, problem: steps['wipe'] };
      }
      if (member.state !== 'running') await member.start();
      steps['started'] = 'with --join';
      const addition = await addMember(member.addr, findLeader);
      steps['addition'] = reportOf(addition);
      if (!addition.settled) return fail(addition.problem ?? `${member.addr} was not added back as a voter (${addition.role})`, { learnerLeft: addition.role === 'learner' });
      steps['result'] = 'a voter again';
      return steps;
    } catch (error) {
      return fail(`restoring ${member.addr} failed: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  /**
   * startWipe starts a wipe fault (see the file comment): from the full membership only, on a running member that no
   * other fault holds; the refused start is made and judged before the fault is recorded as started.
   */
  /**
   * pickFromFullMembership picks the member a wipe or corrupt fault takes out: only while the leader's view lists the
   * full membership (with 3 members a second member out would leave no majority), only a running member no other
   * fault holds, and only when no member is out already (one at a time across the member, wipe and corrupt faults).
   * No await lies between its last check and the caller's outOfService.add.
   */
  private async pickFromFullMembership(random: Random): Promise<{ readonly leader: string; readonly member: Member } | null> {
    const { cluster, monitor } = this.deps;
    const leader = await monitor.findLeader();
    const view = leader === null ? null : await clusterView(leader, memberViewTimeoutMs);
    if (leader === null || view === null || view.leader !== leader) return null;
    if (votersSeenBy(view, leader).join(',') !== cluster.members.map((member) => member.addr).sort().join(',')) return null;
    const eligible = cluster.members.filter((member) => this.available(member));
    if (eligible.length === 0 || this.outOfService.size > 0) return null;
    return { leader, member: random.pick(eligible) };
  }

  private async startWipe(id: number, random: Random): Promise<Fault | null> {
    const { cluster, recorder } = this.deps;
    const picked = await this.pickFromFullMembership(random);
    if (picked === null) return null;
    const { leader, member } = picked;
    const free = freeHosts(memberHosts, cluster.members.map((m) => m.host));
    const mode = wipeModeOf(this.wipeFaults++, free.length);
    const moved = mode === 'moved' ? random.pick(free) : null;
    const context = `start-wipe #${id} (${mode} ${member.addr}${moved === null ? '' : ` as ${moved}`})`;
    const skipped = free.length === 0 ? { moveSkipped: `no free address in 127.0.0.11-15 (all ${cluster.members.length} are members): the address change is not tried` } : {};
    this.outOfService.add(member.addr);
    const role = member.addr === leader ? 'leader' : 'follower';
    recorder.nemesis('invoke', 'start-wipe', { id, mode, member: member.addr, role, leader, ...(moved === null ? {} : { movedTo: moved }), ...skipped });
    let observed: Record<string, unknown>;
    try {
      observed = await this.refusedStart(member, mode, moved, context);
    } catch (error) {
      const problem = `${context}: ${error instanceof Error ? error.message : String(error)}`;
      this.problems.push(problem);
      observed = { problem };
    }
    recorder.nemesis('info', 'start-wipe', { id, mode, member: member.addr, role, leader, ...observed, ...skipped });
    const stop = mode === 'wiped' ? () => this.restoreMember(member, `stop-wipe #${id}`) : () => this.restartMoved(member, `stop-wipe #${id}`);
    return { id, kind: 'wipe', stop };
  }

  /** refusedStart kills `member`, wipes or moves its data, makes the start Cairn must refuse, and judges it. */
  private async refusedStart(member: Member, mode: WipeMode, moved: string | null, context: string): Promise<Record<string, unknown>> {
    await member.kill();
    // With the lazyfs emulation a kill also loses what was never fsynced, as the kill nemesis does.
    const lost = member.loseUnsyncedWrites();
    let attempt: StartAttempt;
    if (mode === 'wiped') {
      member.wipe();
      this.removalOwed.add(member.addr);
      attempt = member.attemptStart();
    } else {
      if (moved === null) throw new Error('a moved fault needs a free address');
      attempt = member.attemptStartAt(moved);
    }
    const observation = await this.watchAttempt(attempt);
    const judgement = judgeAttempt(observation.observed, mode === 'wiped' ? wipedRefusal : movedRefusal);
    if (judgement.verdict !== 'refused') this.problems.push(`${context}: ${judgement.verdict}: ${judgement.detail}`);
    return {
      ...(lost === null ? {} : { lost }),
      attempt: {
        addr: attempt.addr,
        pid: attempt.pid,
        exitCode: observation.observed.exitCode,
        signal: observation.observed.signal,
        code: judgement.code,
        verdict: judgement.verdict,
        detail: judgement.detail,
        ms: observation.ms,
        lastLines: observation.observed.output.slice(-2).map((line) => line.slice(0, 400)),
        ...(observation.served === null ? {} : { served: observation.served }),
      },
    };
  }

  /**
   * watchAttempt waits for a start Cairn should refuse to end, at most refusalBoundMs, probing its HTTP address
   * meanwhile; a start that was accepted is watched servedObserveMs more (what it serves is the evidence). Whatever
   * happened, the process is dead when this returns.
   */
  private async watchAttempt(attempt: StartAttempt): Promise<{ observed: AttemptObservation; ms: number; served: string | null }> {
    let servedAt: number | null = null;
    let served: string | null = null;
    // The time bounds end the loop; the count bound only guards against a clock that does not move.
    const roundsMax = Math.ceil((refusalBoundMs + servedObserveMs) / attemptPollMs) + 1;
    for (let round = 0; round < roundsMax; round++) {
      if (await attempt.waitExit(attemptPollMs)) break;
      const result = await httpRequest(attempt.addr, 'GET', '/cairn/v1/cluster', attemptProbeTimeoutMs);
      if ('answer' in result) {
        servedAt ??= Date.now();
        served = `${result.answer.status} ${result.answer.text.slice(0, 300)}`;
      }
      const readyAt = attempt.readyAfterMs === null ? null : attempt.startedAt + attempt.readyAfterMs;
      const acceptedAt = servedAt ?? readyAt;
      if (acceptedAt === null ? Date.now() - attempt.startedAt >= refusalBoundMs : Date.now() - acceptedAt >= servedObserveMs) break;
    }
    const ms = Date.now() - attempt.startedAt;
    await attempt.kill();
    const exit = attempt.exit;
    const observed: AttemptObservation = {
      exitCode: exit?.code ?? null,
      signal: exit?.signal ?? (exit === null ? 'not reaped' : null),
      killedByHarness: exit?.killedByHarness ?? true,
      readyAfterMs: attempt.readyAfterMs,
      servedAfterMs: servedAt === null ? null : servedAt - attempt.startedAt,
      output: attempt.output(),
    };
    return { observed, ms, served };
  }

  /** restartMoved starts a member whose data was tried under another address again, on its own address with its data. */
  private async restartMoved(member: Member, context: string): Promise<Record<string, unknown>> {
    const steps: Record<string, unknown> = { member: member.addr };
    try {
      if (member.state === 'killed' || member.state === 'stopped') await member.start();
      steps['started'] = 'on its own address with its data';
      const rejoin = await awaitSelfVoter(member.addr, rejoinBoundMs);
      steps['rejoin'] = rejoin;
      if (rejoin.afterMs === null) {
        const problem = `${context}: ${member.addr} did not report itself a voter under a leader within ${rejoinBoundMs} ms of its restart (last view: ${rejoin.last})`;
        this.problems.push(problem);
        steps['problem'] = problem;
      }
    } catch (error) {
      const problem = `${context}: restarting ${member.addr} failed: ${error instanceof Error ? error.message : String(error)}`;
      this.problems.push(problem);
      steps['problem'] = problem;
    } finally {
      this.outOfService.delete(member.addr);
    }
    return steps;
  }

  /**
   * startCorrupt starts a corrupt fault (see the file comment and corruption.ts): from the full membership only, on a
   * running member no other fault holds; the damage, the probes and the start are made and judged before the fault is
   * recorded as started.
   */
  private async startCorrupt(id: number, random: Random): Promise<Fault | null> {
    const { recorder } = this.deps;
    const picked = await this.pickFromFullMembership(random);
    if (picked === null) return null;
    const { leader, member } = picked;
    this.outOfService.add(member.addr);
    const role = member.addr === leader ? 'leader' : 'follower';
    recorder.nemesis('invoke', 'start-corrupt', { id, member: member.addr, role, leader });
    const context = `start-corrupt #${id} (${member.addr})`;
    let observed: Record<string, unknown>;
    let refused = false;
    try {
      const result = await this.corruptAndStart(member, random);
      observed = result.observed;
      refused = result.refused;
    } catch (error) {
      const problem = `${context}: ${error instanceof Error ? error.message : String(error)}`;
      this.problems.push(problem);
      observed = { problem };
    }
    if (typeof observed['outcome'] === 'string' && observed['outcome'] === 'refused-uncoded') this.problems.push(`${context}: refused-uncoded: ${String(observed['detail'])}`);
    recorder.nemesis('info', 'start-corrupt', { id, member: member.addr, role, leader, ...observed });
    return { id, kind: 'corrupt', stop: () => this.stopCorrupt(member, refused, `stop-corrupt #${id}`) };
  }

  /**
   * corruptAndStart kills `member`, probes its storage, damages one file as planned from `random`, probes again and
   * starts it; a refused start leaves it wiped and owing its removal (as the wipe nemesis leaves a wiped voter).
   */
  private async corruptAndStart(member: Member, random: Random): Promise<{ observed: Record<string, unknown>; refused: boolean }> {
    await member.kill();
    const lost = member.loseUnsyncedWrites();
    const databaseDir = databaseDirOf(member.dataDir);
    const scratch = path.join(path.dirname(member.dataDir), `.probe-${member.host}`);
    const before = await probeStorage(member.dataDir, scratch);
    const plan = planCorruption(listLevelFiles(databaseDir), random);
    if (plan === null) {
      await member.start();
      return { observed: { skipped: 'no LevelDB table or log file big enough to damage; restarted as it was' }, refused: false };
    }
    const applied = applyCorruption(databaseDir, plan);
    const after = await probeStorage(member.dataDir, scratch);
    const diff = before.error === null && after.error === null ? diffProbes(before, after) : null;
    const started = Date.now();
    const refusal = await member.startOrRefusal();
    const start = refusal === null ? { ready: true, exitCode: null, signal: null, lastLines: [] } : { ready: false, exitCode: refusal.exitCode, signal: refusal.signal, lastLines: refusal.lastLines };
    const judgement: CorruptionJudgement = judgeCorruption(start, diff, after.error);
    if (refusal !== null) {
      member.wipe();
      this.removalOwed.add(member.addr);
    }
    const observed = {
      ...(lost === null ? {} : { lost }),
      plan: { mode: applied.mode, file: applied.file, kind: applied.kind, sizeBefore: applied.sizeBefore, flips: applied.flips, truncateTo: applied.truncateTo },
      changes: applied.changes,
      sizeAfter: applied.sizeAfter,
      probeBefore: probeSummary(before),
      probeAfter: probeSummary(after),
      ...(diff === null ? {} : { diff }),
      start: { ready: start.ready, ms: Date.now() - started, exitCode: start.exitCode, signal: start.signal, lastLines: start.lastLines.map((line) => line.slice(0, 400)) },
      outcome: judgement.outcome,
      detail: judgement.detail,
    };
    return { observed, refused: refusal !== null };
  }

  /**
   * stopCorrupt ends a corrupt fault: a refused member is rebuilt by the documented path; a started one that stopped
   * by itself since is judged by its last lines ('detected-later' when they name corruption, else a problem) and
   * rebuilt; a running one is left as it is.
   */
  private async stopCorrupt(member: Member, refused: boolean, context: string): Promise<Record<string, unknown>> {
    const exits = member.toleratedExits.splice(0);
    member.toleratesExits = false;
    if (refused) return { rebuilt: await this.restoreMember(member, context) };
    if (member.state !== 'stopped') {
      try {
        // A member that started on damaged data must still take part: its own view names a leader and lists it a voter.
        const rejoin = member.state === 'running' ? await awaitSelfVoter(member.addr, rejoinBoundMs) : null;
        if (rejoin !== null && rejoin.afterMs === null) {
          const problem = `${context}: ${member.addr} started on damaged data but did not report itself a voter under a leader within ${rejoinBoundMs} ms (last view: ${rejoin.last})`;
          this.problems.push(problem);
          return { result: `${member.addr} ${member.state}; left as it is`, rejoin, problem };
        }
        return { result: `${member.addr} ${member.state}; left as it is`, ...(rejoin === null ? {} : { rejoin }) };
      } finally {
        this.outOfService.delete(member.addr);
      }
    }
    const last = exits.at(-1);
    const lines = last?.lastLines ?? [];
    let exit: Record<string, unknown>;
    if (mentionsCorruption(lines)) {
      exit = { member: member.addr, outcome: 'detected-later', detail: `stopped by itself after it started: ${last?.detail ?? ''}`.slice(0, 600) };
    } else {
      const problem = `${context}: ${member.addr} stopped by itself without naming corruption: ${last?.detail ?? 'no exit recorded'}`;
      this.problems.push(problem);
      exit = { problem };
    }
    member.wipe();
    this.removalOwed.add(member.addr);
    return { ...exit, rebuilt: await this.restoreMember(member, context) };
  }

  /**
   * startClock starts a clock fault (clock-faults.ts): picks its members, plans its steps for the longest hold
   * (faultMs max: the stop ends the playing earlier), writes the first step and plays the rest in the background,
   * while the members' HTTP Date headers are read until they show the first step. The stop ends the playing, waits
   * for the probes and, in wall mode, resets every control file to +0.
   */
  private async startClock(id: number, shape: ClockShape, target: ClockTarget, random: Random): Promise<Fault | null> {
    const { recorder } = this.deps;
    const members = await this.clockMembers(shape, target, random);
    if (members.length === 0) return null;
    const mode = this.options.clock.mode;
    const plan = planClockFault(shape, members.map((member) => member.addr), this.clockOffsets(), this.options.faultMs[1], this.options.clock, random);
    const first = plan.steps[0];
    if (first === undefined) return null;
    const planned = { steps: plan.steps.length, last: formatOffsets(plan.steps[plan.steps.length - 1]?.offsets ?? {}) };
    recorder.nemesis('invoke', 'start-clock', { id, mode: shape, target, clockMode: mode, members: plan.members });
    // Every offset this fault wrote, per member: a probe may read any of them (a strobe flips within a second).
    const written = new Map<string, number[]>();
    const write = async (step: ClockStep, reason: string): Promise<void> => {
      for (const [member, seconds] of Object.entries(step.offsets)) written.set(member, [...(written.get(member) ?? []), seconds].slice(-plan.steps.length));
      await this.writeClockStep(id, step, reason);
    };
    await write(first, shape);
    recorder.nemesis('info', 'start-clock', { id, mode: shape, target, clockMode: mode, members: plan.members, offsets: formatOffsets(first.offsets), planned });
    const player = new StepPlayer(plan, (step) => write(step, shape));
    const probes = this.probeClockStep(id, plan, first, (member) => written.get(member) ?? []);
    return { id, kind: 'clock', stop: () => this.stopClock(id, player, probes) };
  }

  /** clockMembers picks a clock fault's members: a strobe moves one member (the leader for 'leader'), a bump 'all'. */
  private async clockMembers(shape: ClockShape, target: ClockTarget, random: Random): Promise<Member[]> {
    if (target === 'leader') return this.choose('leader', random);
    const running = this.deps.cluster.members.filter((member) => member.state === 'running');
    if (target === 'one' || shape === 'strobe') return running.length === 0 ? [] : [random.pick(running)];
    // A member that is down now keeps its file and starts with the offset the file holds then.
    return [...this.deps.cluster.members];
  }

  /** clockOffsets is every member's current offset (seconds), as its control file holds it. */
  private clockOffsets(): Map<string, number> {
    return new Map(this.deps.cluster.members.map((member) => [member.addr, member.clockFile?.offsetSeconds ?? 0]));
  }

  /**
   * writeClockStep writes one step's offsets into the members' control files and, once they hold them, records them
   * (`clock-step`: the members' clocks follow within libfaketime's reread, a second). A write that failed is a
   * problem, and the line names it.
   */
  private async writeClockStep(id: number, step: ClockStep, reason: string): Promise<void> {
    const entries = Object.entries(step.offsets);
    const results = await Promise.allSettled(entries.map(([addr, seconds]) => this.deps.cluster.byAddr(addr)?.clockFile?.set(seconds) ?? Promise.reject(new Error(`${addr} has no clock control file`))));
    const failed: string[] = [];
    for (const [index, result] of results.entries()) {
      if (result.status === 'fulfilled') continue;
      failed.push(`${entries[index]?.[0] ?? '?'}: ${result.reason instanceof Error ? result.reason.message : String(result.reason)}`);
    }
    for (const failure of failed) this.problems.push(`clock #${id}: writing the offset failed: ${failure}`);
    this.deps.recorder.observe('clock-step', { id, reason, offsets: formatOffsets(step.offsets), ...(failed.length > 0 ? { failed } : {}) }, this.deps.recorder.now());
  }

  /**
   * probeClockStep reads each running member's Date header until it shows the fault's first step (or one written
   * since), and records what it saw (`clock-probe`); a member still running that never showed it is a problem.
   */
  private async probeClockStep(id: number, plan: ClockPlan, first: ClockStep, written: (member: string) => readonly number[]): Promise<void> {
    const members = plan.members.map((addr) => this.deps.cluster.byAddr(addr)).filter((member): member is Member => member !== undefined && member.state === 'running');
    const before = new Map(members.map((member) => [member.addr, member.transitions]));
    const probes = await Promise.all(members.map((member) => probeClock(member.addr, first.offsets[member.addr] ?? 0, () => written(member.addr))));
    this.deps.recorder.observe('clock-probe', { id, probes }, this.deps.recorder.now());
    for (const probe of probes) {
      const member = this.deps.cluster.byAddr(probe.member);
      // A member another nemesis stopped, killed or paused meanwhile (even if running again by now) may not have
      // answered in time: nothing to judge (B5, seed 42002: members killed and restarted during the probe).
      const untouched = member !== undefined && member.state === 'running' && member.transitions === before.get(probe.member);
      if (probe.seenAfterMs === null && untouched) {
        this.problems.push(`start-clock #${id}: ${probe.member}'s clock did not show ${String(probe.expected)} s in its Date header (last reading ${String(probe.lastObserved)} s): libfaketime did not move it`);
      }
    }
  }

  private async stopClock(id: number, player: StepPlayer, probes: Promise<void>): Promise<Record<string, unknown>> {
    await player.stop();
    await probes;
    return await this.healClocks(id, 'reset');
  }

  /**
   * healClocks ends the clock faults: in wall mode every control file is set to +0 (`clock-step` with reason
   * `reason`); in monotonic mode the offsets stay, since a monotonic clock never goes back (faketime.ts).
   */
  private async healClocks(id: number, reason: string): Promise<Record<string, unknown>> {
    const current = this.clockOffsets();
    if (this.options.clock.mode === 'monotonic') return { kept: formatOffsets(current), why: 'a monotonic clock never goes back' };
    const healed = healedOffsets('wall', current);
    await this.writeClockStep(id, { afterMs: 0, offsets: Object.fromEntries(healed) }, reason);
    return { reset: formatOffsets(healed) };
  }

  /** available: running, and held by no other fault (neither out for a membership change nor being restarted). */
  private available(member: Member): boolean {
    return member.state === 'running' && !this.outOfService.has(member.addr) && !this.starting.has(member.addr);
  }

  /** choose picks the members a kill or pause target names, among those running and not taken by a membership fault. */
  private async choose(target: KillTarget | PauseTarget, random: Random): Promise<Member[]> {
    const running = this.deps.cluster.members.filter((member) => this.available(member));
    const n = this.deps.cluster.members.length;
    switch (target) {
      case 'one':
        return running.length === 0 ? [] : [random.pick(running)];
      case 'leader': {
        const leader = await this.deps.monitor.findLeader();
        return running.filter((member) => member.addr === leader);
      }
      case 'minority':
        return random.shuffle(running).slice(0, Math.floor((n - 1) / 2));
      case 'majority':
        return random.shuffle(running).slice(0, Math.floor(n / 2) + 1);
      case 'all':
        return running;
    }
  }

  /**
   * healAll removes every partition, resumes paused members, sets wall clocks right (clock nemesis) and restarts
   * killed ones (a wiped one with --join); with the member nemesis it then makes every member a voter again, one
   * change at a time.
   */
  async healAll(): Promise<void> {
    const { recorder, cluster, firewall } = this.deps;
    recorder.nemesis('invoke', 'heal-all', {});
    const rules = firewall?.heal() ?? 0;
    for (const member of cluster.members) member.resume();
    // The clocks first: a member restarted below starts with the offset its file holds.
    const clock = this.options.kinds.includes('clock') ? await this.healClocks(-1, 'heal') : null;
    const restarted = await this.restart(cluster.members.filter((member) => member.state === 'killed'));
    const membership: Record<string, unknown>[] = [];
    if (this.options.kinds.includes('member') || this.options.kinds.includes('wipe') || this.options.kinds.includes('corrupt')) {
      for (const member of cluster.members) membership.push(await this.restoreMember(member, 'heal-all'));
    }
    recorder.nemesis('info', 'heal-all', { rules, restarted, ...(membership.length > 0 ? { membership } : {}), ...(clock === null ? {} : { clock }) });
  }
}

/** probeSummary shapes a storage probe for a nemesis line (the keyspace as a count). */
function probeSummary(probe: StorageProbe): Record<string, unknown> {
  if (probe.error !== null) return { error: probe.error, code: probe.code };
  const { snapshotIndex, lastIndex, applied, term, vote, commit } = probe;
  return { snapshotIndex, lastIndex, applied, term, vote, commit, keyspaceRecords: probe.keyspace.size };
}

/** reportOf shapes a membership change's report for a nemesis line. */
function reportOf(report: ChangeReport): Record<string, unknown> {
  return { settled: report.settled, role: report.role, ms: report.ms, attempts: report.attempts, ...(report.problem === null ? {} : { problem: report.problem }) };
}

function hostOfAddr(addr: string | null): string | null {
  return addr === null ? null : addr.slice(0, addr.lastIndexOf(':'));
}

function cutBetween(grudge: Grudge, a: readonly string[], b: readonly string[]): void {
  for (const x of a) {
    for (const y of b) {
      grudge.get(x)?.add(y);
      grudge.get(y)?.add(x);
    }
  }
}

/** grudgeOf computes who cannot send to whom for a partition mode (leader: the leader's host, if known). */
export function grudgeOf(mode: PartitionMode, hosts: readonly string[], leader: string | null, random: Random): Grudge {
  const grudge: Grudge = new Map(hosts.map((host) => [host, new Set<string>()]));
  const shuffled = random.shuffle(hosts);
  const isolated = leader ?? shuffled[0] ?? '';
  const follower = shuffled.find((host) => host !== leader) ?? '';
  switch (mode) {
    case 'halves':
      cutBetween(grudge, shuffled.slice(0, Math.floor(hosts.length / 2)), shuffled.slice(Math.floor(hosts.length / 2)));
      break;
    case 'leader':
    case 'one':
    case 'follower': {
      const alone = mode === 'one' ? (shuffled[0] ?? '') : mode === 'follower' ? follower : isolated;
      cutBetween(grudge, [alone], hosts.filter((host) => host !== alone));
      break;
    }
    case 'one-way-leader':
      for (const host of hosts) if (host !== isolated) grudge.get(isolated)?.add(host);
      break;
    case 'bridge': {
      const half = Math.floor(hosts.length / 2);
      cutBetween(grudge, shuffled.slice(0, half), shuffled.slice(half + 1));
      break;
    }
    case 'ring':
      if (hosts.length < 5) return grudgeOf('bridge', hosts, leader, random);
      // Member i keeps i-1 and i+1 (a majority of 5 with itself); it cannot reach i+2 and i-2.
      for (const [i, host] of shuffled.entries()) cutBetween(grudge, [host], [shuffled[(i + 2) % shuffled.length] ?? host]);
      break;
  }
  return grudge;
}

/** aborted reads a signal's state (a function, so that TypeScript does not narrow it across awaits). */
function aborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}
