// runner: one jepsen-like test run, end to end. Prepare a run directory (jepsen-like/store/<run>/), clear any
// rule with our tag, start the members, wait for a leader, run the workloads and the nemesis for the run's time,
// heal everything, let the clients go on for a recovery window, stop them, wait until every member answers a
// linearizable read again and reports the intended membership (every member a voter, membership.ts), make the set's
// final reads, compare the members' state digests at one applied index (`cairn check`'s rule), tear everything down (also on errors), then check the history and write results.json and
// timeline.html. The verdict is 'valid' only when every checker passed, nothing was left undecided, something was
// actually tested, the membership converged, no two members hold different states at one applied index, and no
// member died by itself.

import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MemberCgroups, cgroupProblem } from './cgroup.ts';
import { availability, checkRegister, checkSet, recovery, summarizeRetries, type LinearizabilityResult, type SetResult } from './checkers.ts';
import { beatBounds, checkBeats } from './checkers-beats.ts';
import { checkD3, d3Bounds } from './checkers-d3.ts';
import { checkEphemeral, ephemeralExpectation, roundProblems } from './checkers-ephemeral.ts';
import { checkOverrides, overrideBounds, overrideRoundProblems } from './checkers-overrides.ts';
import { checkCorruption, registerFinalReads } from './corruption.ts';
import { checkHealth } from './checkers-health.ts';
import { checkProtect } from './checkers-protect.ts';
import { checkSessions, sessionBounds } from './checkers-sessions.ts';
import { checkWatch } from './checkers-watch.ts';
import { clientTimeoutMsDefault } from './client.ts';
import { checkpointEveryJepsen, Cluster, reapOrphans, type Member } from './control.ts';
import { ClientPool, defaultRetryPolicy, Generator, type RetryPolicy, type TargetPolicy, type TransportPolicy, type WorkerPlan } from './generator.ts';
import { HistoryRecorder, isClientEvent, isNemesisEvent, type RecordedEvent } from './history.ts';
import { Firewall, iptablesProblem, removeTaggedRules } from './iptables.ts';
import { compileJournalLibrary } from './lazyfs.ts';
import { clockReport, defaultClockFaultOptions } from './clock-faults.ts';
import { faketimeLibrary, faketimeProblem } from './faketime.ts';
import { acquireRunLock } from './lock.ts';
import { awaitMembership, membershipBoundMs, type MembershipConvergence } from './membership.ts';
import { ClusterMonitor } from './monitor.ts';
import { Nemesis, type NemesisOptions } from './nemesis.ts';
import { Random, sleep } from './random.ts';
import { summaryLines, writeResults, type RunResults, type SnapshotTotals, type Verdict } from './report.ts';
import { writeTimeline } from './timeline.ts';
import { defaultRegisterMix, RegisterWorkload, type RegisterMix } from './workloads/register.ts';
import { SetWorkload } from './workloads/set.ts';
import { BeatsWorkload, defaultBeatsOptions, massCutBeatsOptions, type BeatFaultKind, type BeatsOptions } from './workloads/beats.ts';
import { convergenceBoundMs, distroVerifyMs, EphemeralWorkload } from './workloads/ephemeral.ts';
import { defaultHealthOptions, type HealthFaultKind, type HealthOptions, HealthWorkload, protectPollsPerSecond } from './workloads/health.ts';
import { WatchWorkload } from './workloads/watch.ts';
import { defaultSessionsOptions, sessionFaultKinds, SessionsWorkload } from './workloads/sessions.ts';
import { defaultOverridesOptions, OverridesWorkload, type OverrideOperators } from './workloads/overrides.ts';
import { askCheckpoints, compareMembers } from '../src/cli/check.ts';
import { rewriteInstanceWeight } from './tamper.ts';
import { instanceStorageKey } from '../src/cp/keyspace.ts';
import { boundedRequest } from '../test/support/http.ts';

/** storeDir is where runs are written. */
export const storeDir = fileURLToPath(new URL('./store/', import.meta.url));

/** WorkloadName names a workload. */
export type WorkloadName = 'register' | 'set' | 'health' | 'ephemeral' | 'watch' | 'beats' | 'sessions' | 'overrides';
/** workloadNames lists every workload, for the command line. */
export const workloadNames: readonly WorkloadName[] = ['register', 'set', 'health', 'ephemeral', 'watch', 'beats', 'sessions', 'overrides'];

/** RunOptions is everything that shapes one run. */
export interface RunOptions {
  readonly name: string;
  readonly workloads: readonly WorkloadName[];
  readonly nemesis: NemesisOptions;
  readonly timeSeconds: number;
  readonly nodes: number;
  readonly seed: number;
  readonly unsafeLocalReads: boolean;
  readonly unsafeNoFsync: boolean;
  /** unsafeNoRequestDedup: members ignore request ids, so retried writes apply again (the A14 positive control). */
  readonly unsafeNoRequestDedup: boolean;
  /**
   * plantDivergence: the A7-silent-control positive control. After the history ends, one member is killed, one
   * instance record of its stored keyspace is rewritten under a valid frame, and it is restarted: a divergence no
   * checksum sees, which only the replica check can find.
   */
  readonly plantDivergence: boolean;
  /**
   * plantDivergenceDuring: the A7-periodic-control positive control. A sentinel service with one persistent
   * instance (checker NONE, on 127.0.0.250, which nobody probes) is registered before the history; at 40% of the run
   * the last member is killed, the sentinel's record rewritten under a valid frame, and the member restarted. The
   * workload never touches the sentinel, so the divergence stands, and the members' periodic checkpoint comparisons
   * during the rest of the run must find it.
   */
  readonly plantDivergenceDuring: boolean;
  /** lazyfs: killed members also lose what they never fsynced (lazyfs.ts). */
  readonly lazyfs: boolean;
  readonly snapshotEntries: number | null;
  readonly targets: TargetPolicy;
  readonly transports: TransportPolicy;
  readonly registerWorkers: number;
  readonly registerRate: number;
  /** registerMix: the register workload's shares of reads, compare-and-sets and deletes (the rest are writes). */
  readonly registerMix: RegisterMix;
  /** retry bounds the retries of outcome-unknown idempotent operations (generator.ts). */
  readonly retry: RetryPolicy;
  /** impatientShare: the share of idempotent operations whose first attempt has the short deadline below (A14; 0: none). */
  readonly impatientShare: number;
  /** watchEdgeStartShare: the watch workload's share of edge starts (B4, workloads/watch.ts; 0: plain resumes only). */
  readonly watchEdgeStartShare: number;
  /** impatientTimeoutMs is that short deadline: below a write's usual latency, so the request left but the answer is not awaited. */
  readonly impatientTimeoutMs: number;
  /** protectThreshold: above 0, the health workload runs case C2 (its service created with this threshold, degraded-nic faults). */
  readonly protectThreshold: number;
  readonly processesPerKey: number;
  readonly opsPerKey: number;
  readonly setWorkers: number;
  readonly setRate: number;
  /** setReadShare is the probability that a set operation is a read. */
  readonly setReadShare: number;
  /** setBackupShare is the probability that a set read goes through a backup of the member (A15). */
  readonly setBackupShare: number;
  readonly recoverySeconds: number;
  readonly port: number;
  readonly logLevel: string;
  readonly checkTimeoutSeconds: number;
  readonly checkStepsMax: number;
  readonly storeDir: string;
  /** beatFaults: the beats workload's scripted faults, instead of those --nemesis implies (D3: ['all-clients-cut']). */
  readonly beatFaults?: readonly BeatFaultKind[];
  /**
   * overrideControl: the overrides workload's operator sends its changes as client registrations (POST), which the
   * client's next registration legitimately replaces: case C3's positive control (workloads/overrides.ts).
   */
  readonly overrideControl?: boolean;
  /**
   * overrideOperators: the overrides workload's operators: 'one' per service naming the whole override (C3, the
   * default), or 'per-attribute', E toggling `enabled` and W setting weights, each through its own random member (C3b).
   */
  readonly overrideOperators?: OverrideOperators;
}

/** defaultRunOptions are the defaults of `npm run jepsen`. */
export function defaultRunOptions(): RunOptions {
  return {
    name: 'run',
    workloads: ['register'],
    nemesis: { kinds: [], partitionModes: ['halves', 'leader', 'one', 'ring', 'bridge'], killTargets: ['one', 'leader', 'minority', 'majority', 'all'], pauseTargets: ['leader', 'one'], faultMs: [4000, 10_000], quietMs: [3000, 8000], clock: defaultClockFaultOptions },
    timeSeconds: 60,
    nodes: 5,
    seed: Date.now() % 1_000_000,
    unsafeLocalReads: false,
    unsafeNoFsync: false,
    unsafeNoRequestDedup: false,
    plantDivergence: false,
    plantDivergenceDuring: false,
    lazyfs: false,
    snapshotEntries: null,
    targets: 'random',
    transports: 'mixed',
    registerWorkers: 10,
    registerRate: 60,
    registerMix: defaultRegisterMix,
    retry: defaultRetryPolicy,
    impatientShare: 0,
    watchEdgeStartShare: 0,
    impatientTimeoutMs: 8,
    protectThreshold: 0,
    processesPerKey: 5,
    opsPerKey: 150,
    setWorkers: 4,
    setRate: 20,
    setReadShare: 0.1,
    setBackupShare: 0,
    recoverySeconds: 5,
    port: 8100,
    logLevel: 'warn',
    checkTimeoutSeconds: 120,
    checkStepsMax: 2_000_000,
    storeDir,
  };
}

/** PrerequisiteError is a run that cannot start on this machine (iptables, cgroups, a C compiler or libfaketime missing). */
export class PrerequisiteError extends Error {
  override readonly name = 'PrerequisiteError';
}

/** RunResult is a run's verdict, the summary lines and where its files are. */
export interface RunResult {
  readonly verdict: Verdict;
  readonly reasons: readonly string[];
  readonly dir: string;
  readonly summary: readonly string[];
  readonly results: RunResults;
}

/** memberRecoveryBoundMs bounds the wait for every member to answer after the final heal. */
const memberRecoveryBoundMs = 60_000;
/** finalReadBoundMs bounds the set's final reads. */
const finalReadBoundMs = 60_000;
/** leaderBoundMs bounds the wait for the first leader. */
const leaderBoundMs = 30_000;
/** lockWaitMs bounds the wait for another run on this machine to finish (lock.ts). */
const lockWaitMs = 15 * 60_000;
/** finalProcessBase numbers the final reads' processes apart from the workers'. */
const finalProcessBase = 10_000_000;

/** checkPrerequisites throws a PrerequisiteError when the options need what this machine lacks. */
export function checkPrerequisites(options: RunOptions): void {
  if (options.nemesis.kinds.includes('partition')) {
    const problem = iptablesProblem();
    if (problem !== null) throw new PrerequisiteError(problem);
  }
  if (options.nemesis.kinds.includes('clock')) {
    const problem = faketimeProblem();
    if (problem !== null) throw new PrerequisiteError(problem);
  }
}

interface Environment {
  readonly dir: string;
  readonly recorder: HistoryRecorder;
  readonly cluster: Cluster;
  readonly monitor: ClusterMonitor;
  readonly firewall: Firewall | null;
  readonly cgroups: MemberCgroups | null;
  readonly random: Random;
}

function prepare(options: RunOptions): Environment {
  checkPrerequisites(options);
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const dir = path.join(options.storeDir, `${stamp}-${options.name}-s${options.seed}`);
  mkdirSync(dir, { recursive: true });
  if (iptablesProblem() === null) removeTaggedRules();
  const partitions = options.nemesis.kinds.includes('partition');
  // Member cgroups make the rules independent of source addresses; without cgroup v2, rules match member addresses.
  // CAIRN_JEPSEN_CGROUPS=off forces address rules (to exercise that path where cgroup v2 exists).
  const cgroupsWanted = process.env['CAIRN_JEPSEN_CGROUPS'] !== 'off';
  const cgroups = partitions && cgroupsWanted && cgroupProblem() === null ? new MemberCgroups() : null;
  const firewall = partitions ? new Firewall() : null;
  let lazyfsLibrary: string | null = null;
  if (options.lazyfs) {
    try {
      lazyfsLibrary = compileJournalLibrary(dir);
    } catch (error) {
      throw new PrerequisiteError(error instanceof Error ? error.message : String(error));
    }
  }
  const cluster = new Cluster({ runDir: dir, nodes: options.nodes, port: options.port, logLevel: options.logLevel, snapshotEntries: options.snapshotEntries, unsafeLocalReads: options.unsafeLocalReads, unsafeNoFsync: options.unsafeNoFsync, unsafeNoRequestDedup: options.unsafeNoRequestDedup, cgroups, lazyfsLibrary, clock: options.nemesis.kinds.includes('clock') ? { library: faketimeLibrary, mode: options.nemesis.clock.mode } : null });
  const recorder = new HistoryRecorder(path.join(dir, 'history.jsonl'));
  const monitor = new ClusterMonitor(cluster.members.map((member) => member.addr), () => recorder.now());
  return { dir, recorder, cluster, monitor, firewall, cgroups, random: new Random(options.seed) };
}

interface Phases {
  memberRecoveryMs: Record<string, number | null>;
  healTime: number | null;
  nemesisProblems: string[];
  finalReadsMissing: string[];
  /** membership: the final membership check (null when the run failed before it). */
  membership: MembershipConvergence | null;
  /** notes are what a workload chose not to do, or found missing in Cairn (a feature not served yet). */
  notes: string[];
  /** replicas: the members' state digests compared at one applied index (null when the run failed before it). */
  replicas: ReplicaComparison | null;
  /** snapshots: the members' snapshot events at the end (null when the run failed before it). */
  snapshots: SnapshotTotals | null;
}

/** replicaCheckBoundMs bounds the wait for every member to answer its state digest at one applied index. */
const replicaCheckBoundMs = 30_000;

/** ReplicaComparison is the outcome of comparing the members' state digests (`cairn check`'s rule). */
interface ReplicaComparison {
  readonly verdict: 'agree' | 'differ' | 'retry';
  readonly note: string;
}

/**
 * plantDivergence kills the last member, rewrites the first instance record of its stored keyspace with another
 * weight under a valid frame (tamper.ts), and starts it again: the member loads the record and serves that weight.
 */
async function plantDivergence(members: readonly Member[], log: (line: string) => void, key?: string): Promise<string> {
  const member = members.at(-1);
  if (member === undefined) throw new Error('plantDivergence: no member');
  await member.kill();
  const planted = (await rewriteInstanceWeight(member.dataDir, 7.25, key)).split('\u0000').join('/');
  await member.start();
  log(`replicas control: ${member.addr}'s record ${planted} rewritten with weight 7.25 under a valid frame`);
  return `replicas control: ${member.addr} was killed, its stored record ${planted} rewritten with weight 7.25 under a valid frame, and restarted`;
}

/** sentinel is the service and instance plantDivergenceDuring rewrites (the workloads never touch it). */
const sentinel = { service: 'jepsen-sentinel', ip: '127.0.0.250', port: 1 } as const;

/**
 * registerSentinel registers the sentinel instance, persistent, in a cluster with the checker NONE (nobody probes
 * it, so nothing writes it again), through any member that answers; throws when none does within the bound.
 */
async function registerSentinel(addrs: readonly string[]): Promise<void> {
  const calls = [
    `POST /nacos/v1/ns/service?serviceName=${sentinel.service}`,
    `PUT /nacos/v1/ns/cluster?serviceName=${sentinel.service}&clusterName=DEFAULT&checkPort=0&useInstancePort4Check=true&healthChecker=${encodeURIComponent('{"type":"NONE"}')}`,
    `POST /nacos/v1/ns/instance?serviceName=${sentinel.service}&ip=${sentinel.ip}&port=${sentinel.port}&ephemeral=false`,
  ];
  const deadline = Date.now() + leaderBoundMs;
  for (const call of calls) {
    const [method = 'GET', path = '/'] = call.split(' ');
    for (let attempt = 0; ; attempt++) {
      const addr = addrs[attempt % addrs.length] as string;
      const answer = await boundedRequest(addr, method, path, { timeoutMs: 5000 }).then((response) => response.status, () => 0);
      if (answer === 200 || (answer === 400 && call.includes('/service?') && attempt > 0)) break;
      if (Date.now() > deadline) throw new Error(`sentinel: ${call} not answered 200 within ${leaderBoundMs} ms (last ${answer})`);
      await sleep(200);
    }
  }
}

/**
 * compareReplicas asks every member for the digest of its stored keyspace until all answer at one applied index
 * (src/cli/check.ts): equal digests there are required; a member unreachable or the indexes never meeting within
 * the bound is only noted (the health workload's probes may still be writing).
 */
async function compareReplicas(addrs: readonly string[], boundMs: number): Promise<ReplicaComparison> {
  // Checkpoint digests only at the deadline: the live state at the end of the run is the stronger comparison.
  const { outcome, answers, rounds } = await compareMembers(addrs, boundMs, boundMs);
  const where = outcome.verdict !== 'retry' && outcome.checkpoint ? `checkpoint ${outcome.appliedIndex} (the members never stood at one applied index)` : `applied index ${outcome.verdict === 'retry' ? 0 : outcome.appliedIndex}`;
  if (outcome.verdict === 'agree') {
    return { verdict: 'agree', note: `replicas: all ${addrs.length} members hold the same state at ${where} (${outcome.digest.records} records, sha256 ${outcome.digest.sha256.slice(0, 16)}, round ${rounds})` };
  }
  if (outcome.verdict === 'differ') {
    const digests = outcome.digests.map((digest) => `${digest.member} ${digest.sha256.slice(0, 16)} (${digest.records} records)`).join('; ');
    return { verdict: 'differ', note: `replicas: state digests DIFFER at ${where}: ${digests}` };
  }
  const heard = answers.map((answer) => (answer.ok ? `${answer.digest.member} at ${answer.digest.appliedIndex}` : `${answer.member}: ${answer.error}`)).join('; ');
  return { verdict: 'retry', note: `replicas: not compared within ${boundMs} ms: ${outcome.reason} (${heard})` };
}

/**
 * periodicComparisons reads what the members' own periodic check found during the run (GET
 * /cairn/v1/state/checkpoints: each member's last comparison with each peer, src/replica/checkpoints.ts). Any
 * comparison that disagreed makes the run invalid; none at all (a run too short to pass a checkpoint with every
 * member up) is only noted.
 */
async function periodicComparisons(addrs: readonly string[]): Promise<ReplicaComparison> {
  const seen: string[] = [];
  const differing: string[] = [];
  const silent: string[] = [];
  for (const answer of await Promise.all(addrs.map((addr) => askCheckpoints(addr, 5000)))) {
    if (!answer.ok) {
      silent.push(`${answer.member}: ${answer.error}`);
      continue;
    }
    for (const comparison of answer.comparisons) {
      const line = `${answer.member} vs ${comparison.peer} at ${comparison.appliedIndex}`;
      seen.push(line);
      if (!comparison.agree) differing.push(line);
    }
  }
  if (differing.length > 0) return { verdict: 'differ', note: `replicas: the members' periodic checkpoint comparisons found a DIVERGENCE: ${differing.join('; ')}` };
  const unread = silent.length === 0 ? '' : ` (not read: ${silent.join('; ')})`;
  if (seen.length === 0) return { verdict: 'retry', note: `replicas: no periodic checkpoint comparison was made during the run (every ${checkpointEveryJepsen} entries)${unread}` };
  return { verdict: 'agree', note: `replicas: ${seen.length} periodic checkpoint comparisons, all agree (${seen.slice(0, 3).join(', ')}${seen.length > 3 ? ', ...' : ''})${unread}` };
}

/**
 * memberCounters reads one counter's values by its `event` label from each member's /metrics, in the order of
 * `addrs` (null: the member did not answer). Counts restart with a member, so a member restarted during the run
 * counts from its restart.
 */
async function memberCounters(addrs: readonly string[], metric: string): Promise<Array<Map<string, number> | null>> {
  const line = new RegExp(`^${metric}\\{event="([^"]+)"\\} (\\d+)$`, 'gm');
  return Promise.all(addrs.map(async (addr) => {
    try {
      const { status, text } = await boundedRequest(addr, 'GET', '/metrics', { timeoutMs: 5000 });
      if (status < 200 || status > 299) return null;
      return new Map([...text.matchAll(line)].map((match) => [match[1] ?? '', Number(match[2])]));
    } catch {
      return null;
    }
  }));
}

/** unreadSuffix is the notes' "; N member(s) not read" when some did not answer. */
function unreadSuffix(unread: number): string {
  return `counts since each member's last start${unread > 0 ? `; ${unread} member(s) not read` : ''}`;
}

/**
 * forwardingNote reads how many writes the members forwarded to a leader and in how many calls that carried several
 * (ForwardBatch), from each member's /metrics (cairn_peer_transport_events_total). A diagnostic, not a check: it
 * shows whether a run exercised batched forwarding.
 */
async function forwardingNote(addrs: readonly string[]): Promise<string> {
  const counted = (await memberCounters(addrs, 'cairn_peer_transport_events_total')).filter((counts) => counts !== null);
  const sum = (event: string): number => counted.reduce((total, counts) => total + (counts.get(event) ?? 0), 0);
  return `forwarding: ${sum('forward_sent')} writes forwarded to a leader, ${sum('forward_batch_sent')} ForwardBatch calls (${unreadSuffix(addrs.length - counted.length)})`;
}

/**
 * snapshotNote sums the members' snapshot counters (cairn_raft_snapshots_total): the compactions, and the images a
 * follower behind the compacted log needed. It tells whether a case meant to send images (B3: followers cut off or
 * killed catch up through one) did; a member that answers without all three counters counts as not read.
 */
async function snapshotNote(addrs: readonly string[]): Promise<{ readonly note: string; readonly totals: SnapshotTotals }> {
  const events = ['compacted', 'image_encoded', 'installed'];
  const counted = (await memberCounters(addrs, 'cairn_raft_snapshots_total')).filter((counts): counts is Map<string, number> => counts !== null && events.every((event) => counts.has(event)));
  const sum = (event: string): number => counted.reduce((total, counts) => total + (counts.get(event) ?? 0), 0);
  const totals: SnapshotTotals = { compacted: sum('compacted'), imagesEncoded: sum('image_encoded'), installed: sum('installed'), unread: addrs.length - counted.length };
  const note = `snapshots: ${totals.compacted} compactions, ${totals.imagesEncoded} images encoded for a follower, ${totals.installed} installed (${unreadSuffix(totals.unread)})`;
  return { note, totals };
}

async function waitForLeader(monitor: ClusterMonitor): Promise<void> {
  const deadline = Date.now() + leaderBoundMs;
  while (Date.now() < deadline) {
    if ((await monitor.findLeader()) !== null) return;
    await sleep(200);
  }
  throw new Error(`no leader within ${leaderBoundMs} ms of the start`);
}

interface Extras {
  readonly health: HealthWorkload | null;
  readonly ephemeral: EphemeralWorkload | null;
  readonly watch: WatchWorkload | null;
  readonly beats: BeatsWorkload | null;
  readonly sessions: SessionsWorkload | null;
  readonly overrides: OverridesWorkload | null;
}

function workerPlans(options: RunOptions, register: RegisterWorkload, set: SetWorkload, extras: Extras): WorkerPlan[] {
  const plans: WorkerPlan[] = [];
  if (options.workloads.includes('register')) plans.push({ source: register, workers: options.registerWorkers, ratePerSecond: options.registerRate });
  if (options.workloads.includes('set')) plans.push({ source: set, workers: options.setWorkers, ratePerSecond: options.setRate });
  if (extras.health !== null) plans.push({ source: extras.health, workers: extras.health.options.pollers, ratePerSecond: extras.health.options.ratePerSecond });
  if (extras.ephemeral !== null) plans.push({ source: extras.ephemeral, workers: 4, ratePerSecond: 20 });
  if (extras.watch !== null) plans.push({ source: extras.watch, workers: 3, ratePerSecond: 8 });
  return plans;
}

/**
 * genericNemesis: the health workload scripts its own partitions (C1), kills and pauses (C4), the beats workload its own partitions and kills
 * (aimed at responsible members), the sessions workload its own kills (aimed at members serving sessions, D5); the
 * generic loops of those kinds must not run with them.
 */
function genericNemesis(options: RunOptions): NemesisOptions {
  const scripted = [...(options.workloads.includes('health') ? ['partition', 'kill', 'pause'] : []), ...(options.workloads.includes('beats') ? ['partition', 'kill'] : [])];
  if (options.workloads.includes('sessions')) scripted.push('kill');
  if (scripted.length === 0) return options.nemesis;
  return { ...options.nemesis, kinds: options.nemesis.kinds.filter((kind) => !scripted.includes(kind)) };
}

/**
 * healthOptionsOf maps --nemesis kinds to the health workload's scripted faults (partition: C1, kill/pause: C4); with a
 * protectThreshold, C2: partition means degraded-nic faults, the degraded member is drawn from the seed, and the
 * pollers make fewer, larger polls.
 */
function healthOptionsOf(options: RunOptions): HealthOptions {
  const faults = options.nemesis.kinds.filter((kind): kind is HealthFaultKind => kind === 'partition' || kind === 'kill' || kind === 'pause');
  if (options.protectThreshold <= 0) return { ...defaultHealthOptions, faults };
  return { ...defaultHealthOptions, faults, protectThreshold: options.protectThreshold, degradedMember: options.seed % options.nodes, ratePerSecond: protectPollsPerSecond };
}

/** beatFaultsOf maps --nemesis kinds to the beats workload's scripted faults (partition: D2, kill: D4), unless --beat-faults names them. */
function beatFaultsOf(options: RunOptions): BeatFaultKind[] {
  if (options.beatFaults !== undefined) return [...options.beatFaults];
  const kinds = options.nemesis.kinds;
  return [
    ...(kinds.includes('partition') ? (['isolate-responsible', 'client-cut', 'isolate-responsible+client'] as const) : []),
    ...(kinds.includes('kill') ? (['kill'] as const) : []),
  ];
}

/** beatsOptionsOf: D3's cuts of every client (alone: they need the beaters' own address and long lives), or D2/D4's faults. */
function beatsOptionsOf(options: RunOptions): BeatsOptions {
  const faults = beatFaultsOf(options);
  if (!faults.includes('all-clients-cut')) return defaultBeatsOptions(faults, options.nemesis.faultMs, options.nemesis.quietMs);
  if (faults.length > 1) throw new Error(`beats: all-clients-cut runs alone, not with ${faults.filter((f) => f !== 'all-clients-cut').join(', ')}`);
  return massCutBeatsOptions(options.nemesis.faultMs, options.nemesis.quietMs, d3Bounds().recoveryBoundMs);
}

async function execute(options: RunOptions, env: Environment, log: (line: string) => void, phases: Phases, signal?: AbortSignal): Promise<void> {
  const { cluster, monitor, recorder, random } = env;
  log(`starting ${options.nodes} members (${cluster.members.map((m) => m.addr).join(', ')}) in ${env.dir}`);
  await cluster.start();
  monitor.start();
  await waitForLeader(monitor);
  const pool = new ClientPool(cluster.members, clientTimeoutMsDefault);
  const impatientPool = options.impatientShare > 0 ? new ClientPool(cluster.members, options.impatientTimeoutMs) : null;
  const generator = new Generator({
    recorder, pool, random: random.fork(), targets: options.targets, transports: options.transports, leader: () => monitor.leader(), retry: options.retry,
    ...(impatientPool === null ? {} : { impatient: { share: options.impatientShare, pool: impatientPool } }),
  });
  // An abort stops the workers at once (runLocked has already killed the members); the phases below stop at the next check.
  const stopOnAbort = (): void => void generator.stop();
  signal?.addEventListener('abort', stopOnAbort, { once: true });
  const register = new RegisterWorkload({ processesPerKey: options.processesPerKey, opsPerKey: options.opsPerKey, ...options.registerMix });
  const set = new SetWorkload({ elementsPerService: 1000, readShare: options.setReadShare, backupShare: options.setBackupShare });
  const extras: Extras = {
    health: options.workloads.includes('health') ? new HealthWorkload(healthOptionsOf(options), { cluster, recorder, monitor, firewall: env.firewall, cgroups: env.cgroups }) : null,
    ephemeral: options.workloads.includes('ephemeral') ? new EphemeralWorkload({ elementsPerService: 800, removeShare: 0.3 }) : null,
    watch: options.workloads.includes('watch') ? new WatchWorkload({ services: 2, subscribersPerService: 3, removeShare: 0.4, edgeStartShare: options.watchEdgeStartShare }, cluster.members, recorder) : null,
    beats: options.workloads.includes('beats') ? new BeatsWorkload(beatsOptionsOf(options), { cluster, recorder, firewall: env.firewall, cgroups: env.cgroups, generator }) : null,
    // sessions (D5): its client faults always; kills of serving members with --nemesis kill.
    sessions: options.workloads.includes('sessions')
      ? new SessionsWorkload({ ...defaultSessionsOptions, faults: sessionFaultKinds.filter((kind) => kind !== 'kill-serving' || options.nemesis.kinds.includes('kill')) }, { cluster, recorder, generator })
      : null,
    overrides: options.workloads.includes('overrides')
      ? new OverridesWorkload(defaultOverridesOptions(options.overrideControl === true ? 'client-register' : 'patch', options.overrideOperators ?? 'one'), { cluster, recorder, generator })
      : null,
  };
  try {
    const nemesis = new Nemesis(genericNemesis(options), { cluster, recorder, monitor, firewall: env.firewall, cgroups: env.cgroups, random: random.fork() });
    if (extras.health !== null) await extras.health.setup(random.fork());
    if (extras.watch !== null) {
      await extras.watch.setup(generator, finalProcessBase + 3_000_000, random.fork());
      extras.watch.startSubscribers(random.fork());
    }
    if (options.plantDivergenceDuring) await registerSentinel(cluster.members.map((member) => member.addr));
    log(`running ${options.workloads.join('+')} for ${options.timeSeconds} s under ${options.nemesis.kinds.join(',') || 'no'} faults`);
    generator.start(workerPlans(options, register, set, extras));
    extras.beats?.start(random.fork());
    extras.overrides?.start(random.fork());
    await extras.sessions?.start(random.fork(), { bounds: sessionBounds() });
    const deadline = Date.now() + options.timeSeconds * 1000;
    await Promise.all([
      nemesis.run(deadline, signal),
      sleep(deadline - Date.now(), signal),
      extras.health?.run(deadline, random.fork()) ?? Promise.resolve(),
      extras.beats?.runFaults(deadline, random.fork()) ?? Promise.resolve(),
      extras.sessions?.runFaults(deadline, random.fork()) ?? Promise.resolve(),
      extras.overrides?.run(deadline, random.fork()) ?? Promise.resolve(),
      options.plantDivergenceDuring
        ? sleep(options.timeSeconds * 400, signal).then(async () => {
          const key = instanceStorageKey({ namespace: 'public', group: 'DEFAULT_GROUP', service: sentinel.service }, { cluster: 'DEFAULT', ip: sentinel.ip, port: sentinel.port });
          phases.notes.push(await plantDivergence(cluster.members, log, key));
        })
        : Promise.resolve(),
    ]);
    signal?.throwIfAborted();
    phases.healTime = recorder.now();
    await nemesis.healAll();
    phases.nemesisProblems.push(...nemesis.problems, ...(extras.health?.problems ?? []), ...(extras.beats?.problems ?? []), ...(extras.sessions?.problems ?? []));
    phases.notes.push(...(extras.health?.notes ?? []));
    log(`healed; clients go on for ${options.recoverySeconds} s`);
    const probes = memberRecovery(cluster.members.map((m) => m.addr), generator, register, phases.healTime, recorder, random.fork());
    await sleep(options.recoverySeconds * 1000, signal);
    signal?.throwIfAborted();
    await generator.stop();
    phases.memberRecoveryMs = await probes;
    phases.membership = await finalMembership(cluster.members.map((m) => m.addr), recorder, phases.notes);
    if (options.workloads.includes('set')) {
      phases.finalReadsMissing = await set.finalReads(generator, cluster.members.map((m) => m.addr), Date.now() + finalReadBoundMs, finalProcessBase, random.fork());
    }
    const addrs = cluster.members.map((m) => m.addr);
    if (options.nemesis.kinds.includes('corrupt') && options.workloads.includes('register')) {
      log(`register: reading all ${register.keysUsed} keys on every member to compare their states`);
      phases.finalReadsMissing.push(...await registerFinalReads(generator, register.keysUsed, addrs, Date.now() + finalReadBoundMs, finalProcessBase + 7_000_000, random.fork()));
    }
    if (extras.health !== null) {
      log(`health: final truth set; reading every member until it agrees (at most ${extras.health.bounds.boundMs + 5000} ms)`);
      await extras.health.finalPhase(generator, finalProcessBase + 4_000_000, random.fork());
    }
    if (extras.ephemeral !== null) {
      if (extras.ephemeral.notImplemented) phases.notes.push('ephemeral: a member answered CAIRN_NOT_IMPLEMENTED: the AP path is not served');
      log(`ephemeral: reading every member's local lists until they converge (T = ${convergenceBoundMs} ms)`);
      const agrees = (reads: ReadonlyMap<string, ReadonlyMap<string, readonly number[]>>): boolean => roundProblems(ephemeralExpectation(recorder.events()), reads, addrs).length === 0;
      await extras.ephemeral.convergence(generator, addrs, Date.now() + convergenceBoundMs + distroVerifyMs + 2000, finalProcessBase + 5_000_000, random.fork(), agrees);
    }
    if (extras.watch !== null) {
      if (extras.watch.notImplemented) phases.notes.push('watch: a member answered Subscribe with UNIMPLEMENTED: subscriptions are not served');
      log('watch: final linearizable reads, then waiting for every subscriber to show them');
      await extras.watch.finalPhase(generator, finalProcessBase + 6_000_000, random.fork());
    }
    if (extras.beats !== null) {
      const boundMs = beatBounds(extras.beats.options.timeouts, extras.beats.options.pollMs).lateBoundMs + 5000;
      log(`beats: every beater stops; reading every member until every instance has expired everywhere (at most ${boundMs} ms)`);
      await extras.beats.stopBeating();
      const after = await extras.beats.finalPhase(boundMs);
      phases.notes.push(...extras.beats.notes, `beats: every member listed no instance ${after === null ? `still after ${boundMs} ms` : `${after} ms after the beaters stopped`}`);
    }
    if (extras.sessions !== null) {
      const boundMs = sessionBounds().b1SilentMs + 5000;
      log(`sessions: reading every member until dead clients' instances are gone and live ones listed everywhere (at most ${boundMs} ms)`);
      const after = await extras.sessions.finalPhase(boundMs);
      phases.notes.push(...extras.sessions.notes, `sessions: every member agreed with the clients ${after === null ? `not within ${boundMs} ms` : `${after} ms after the final phase began`}`);
    }
    if (extras.overrides !== null) {
      const boundMs = overrideBounds().finalBoundMs + distroVerifyMs + 2000;
      log(`overrides: reading every member's lists and details until they show the operator's state (at most ${boundMs} ms)`);
      const after = await extras.overrides.finalPhase(Date.now() + boundMs, random.fork(), (round) => overrideRoundProblems(recorder.events(), round).length === 0);
      phases.notes.push(`overrides: every member showed the operator's state ${after === null ? `not within ${boundMs} ms` : `${after} ms after the final phase began`}`);
    }
    if (options.plantDivergence) phases.notes.push(await plantDivergence(cluster.members, log));
    const bound = replicaCheckBoundMs;
    log(`replicas: comparing every member's state digest at one applied index (at most ${bound} ms)`);
    const periodic = await periodicComparisons(addrs);
    phases.notes.push(periodic.note);
    const snapshots = await snapshotNote(addrs);
    phases.notes.push(await forwardingNote(addrs), snapshots.note);
    phases.snapshots = snapshots.totals;
    phases.replicas = await compareReplicas(addrs, bound);
    phases.notes.push(phases.replicas.note);
    if (periodic.verdict === 'differ') phases.replicas = periodic;
  } finally {
    signal?.removeEventListener('abort', stopOnAbort);
    await extras.overrides?.stopAll();
    await extras.sessions?.stopAll();
    await extras.beats?.stopAll();
    extras.health?.close();
    await extras.watch?.stop();
    extras.watch?.close();
    pool.close();
    impatientPool?.close();
  }
}

/** finalMembership waits for every member to report every member as a voter; records it and notes the outcome. */
async function finalMembership(addrs: readonly string[], recorder: HistoryRecorder, notes: string[]): Promise<MembershipConvergence> {
  const result = await awaitMembership(addrs);
  recorder.observe('membership-final', result, recorder.now());
  if (result.convergedAfterMs !== null) notes.push(`membership: all ${addrs.length} members report the ${addrs.length} members as voters (after ${result.convergedAfterMs} ms, ${result.polls} poll(s))`);
  return result;
}

/** memberRecovery polls each member with a linearizable read until it answers ok; returns ms after the heal. */
async function memberRecovery(addrs: readonly string[], generator: Generator, register: RegisterWorkload, healTime: number, recorder: HistoryRecorder, random: Random): Promise<Record<string, number | null>> {
  const result: Record<string, number | null> = {};
  const deadline = Date.now() + memberRecoveryBoundMs;
  let process = finalProcessBase + 1_000_000;
  await Promise.all(addrs.map(async (addr, index) => {
    result[addr] = null;
    for (let attempt = 0; Date.now() < deadline; attempt++) {
      const probe = register.next(index, random);
      if (probe.f !== 'read') continue;
      if ((await generator.invokeOn(probe, process++, addr, random)) === 'ok') {
        result[addr] = Math.round((recorder.now() - healTime) / 1e6);
        return;
      }
      await sleep(200);
    }
  }));
  return result;
}

async function teardown(env: Environment): Promise<void> {
  env.monitor.stop();
  await env.cluster.teardown();
  env.firewall?.close();
  env.cgroups?.close();
  env.recorder.close();
}

/**
 * runTest runs one test and returns its verdict; `log` receives progress lines. Throws PrerequisiteError early.
 * `signal` (a test's timeout, Ctrl-C) aborts the run: it stops waiting for the lock, or kills every member, heals
 * every rule and rejects with RunAbortedError without checking the history (a test runner's timeout alone would
 * fail the test and leave the run going, members and rules included, until the process exits).
 */
export async function runTest(options: RunOptions, log: (line: string) => void = () => undefined, signal?: AbortSignal): Promise<RunResult> {
  checkPrerequisites(options);
  const release = await acquireRunLock(lockWaitMs, log, signal);
  try {
    return await runLocked(options, log, signal);
  } finally {
    release();
  }
}

/** abortSettleMs bounds the wait, after an abort's teardown, for the run's own tasks to end. */
const abortSettleMs = 20_000;

/** RunAbortedError is how runTest ends when its signal aborts: the members were killed and the rules healed. */
export class RunAbortedError extends Error {
  constructor(readonly dir: string, reason: unknown) {
    super(`the run in ${dir} was aborted (${reason instanceof Error ? reason.message : String(reason)}); its members were killed and its rules removed; the history was not checked`);
    this.name = 'RunAbortedError';
  }
}

/** abortedBy resolves when `signal` aborts (never without one); `dispose` drops the listener. */
function abortedBy(signal: AbortSignal | undefined): { readonly promise: Promise<'aborted'>; dispose(): void } {
  if (signal === undefined) return { promise: new Promise<'aborted'>(() => undefined), dispose: () => undefined };
  let onAbort = (): void => undefined;
  const promise = new Promise<'aborted'>((resolve) => {
    onAbort = () => resolve('aborted');
    if (signal.aborted) resolve('aborted');
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  return { promise, dispose: () => signal.removeEventListener('abort', onAbort) };
}

async function runLocked(options: RunOptions, log: (line: string) => void, signal: AbortSignal | undefined): Promise<RunResult> {
  signal?.throwIfAborted();
  for (const orphan of reapOrphans()) log(`killed a member left by an earlier, killed run: ${orphan}`);
  const env = prepare(options);
  const started = Date.now();
  const phases: Phases = { memberRecoveryMs: {}, healTime: null, nemesisProblems: [], finalReadsMissing: [], membership: null, notes: [], replicas: null, snapshots: null };
  let failure: string | null = null;
  const abort = abortedBy(signal);
  let aborted = false;
  const running = execute(options, env, log, phases, signal);
  // After an abort the run's own tasks go on until they notice; their errors are no longer anyone's news.
  running.catch(() => undefined);
  try {
    aborted = (await Promise.race([running.then(() => 'done' as const), abort.promise])) === 'aborted';
  } catch (error) {
    failure = `the run itself failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`;
    log(failure);
  } finally {
    abort.dispose();
    await teardown(env);
  }
  if (aborted) {
    // The members are dead and the rules gone; the run's own tasks get a bounded time to notice and end (the nemesis
    // and the main phases stop at once, a workload's fault loop at its next check or its deadline), so that none of
    // them reaches a later run's members on the same addresses once the lock is released.
    let timer: NodeJS.Timeout | undefined;
    const settled = await Promise.race([running.then(() => true, () => true), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), abortSettleMs)))]);
    clearTimeout(timer);
    log(settled ? `aborted: members killed, rules removed (${env.dir})` : `aborted: members killed, rules removed; the run's own tasks had not ended ${abortSettleMs} ms later (${env.dir})`);
    throw new RunAbortedError(env.dir, signal?.reason);
  }
  log('checking the history');
  return judge(options, env, phases, failure, (Date.now() - started) / 1000);
}

function judge(options: RunOptions, env: Environment, phases: Phases, failure: string | null, wallSeconds: number): RunResult {
  const events = env.recorder.events();
  const linearizability = options.workloads.includes('register')
    ? checkRegister(events, { maxSteps: options.checkStepsMax, timeoutMs: options.checkTimeoutSeconds * 1000 })
    : null;
  const set = options.workloads.includes('set') ? checkSet(events) : null;
  const health = options.workloads.includes('health') ? checkHealth(events) : null;
  const protect = options.workloads.includes('health') ? checkProtect(events) : null;
  const ephemeral = options.workloads.includes('ephemeral') ? checkEphemeral(events, env.cluster.members.map((m) => m.addr)) : null;
  const watch = options.workloads.includes('watch') ? checkWatch(events) : null;
  const beats = options.workloads.includes('beats') ? checkBeats(events) : null;
  const d3 = options.workloads.includes('beats') && beatFaultsOf(options).includes('all-clients-cut') ? checkD3(events) : null;
  const sessions = options.workloads.includes('sessions') ? checkSessions(events) : null;
  const overrides = options.workloads.includes('overrides') ? checkOverrides(events) : null;
  const corruption = options.nemesis.kinds.includes('corrupt') ? checkCorruption(events, env.cluster.members.map((m) => m.addr)) : null;
  const fs = [
    ...(options.workloads.includes('register') ? ['read', 'write'] : []),
    ...(options.workloads.includes('set') ? ['add', 'read-set'] : []),
    ...(health !== null ? ['health-read'] : []),
    ...(ephemeral !== null ? ['eph-add'] : []),
    ...(watch !== null ? ['watch-add'] : []),
    ...(beats !== null ? ['beat'] : []),
    ...(sessions !== null ? ['sess-read'] : []),
    ...(overrides !== null ? ['ovr-beat'] : []),
  ];
  const results: RunResults = {
    name: options.name,
    dir: env.dir,
    seed: options.seed,
    options: { ...options, storeDir: undefined },
    startedAt: new Date(Date.now() - wallSeconds * 1000).toISOString(),
    wallSeconds,
    linearizability,
    set,
    health,
    ephemeral,
    watch,
    ...(beats === null ? {} : { beats }),
    ...(d3 === null ? {} : { d3 }),
    ...(sessions === null ? {} : { sessions }),
    ...(overrides === null ? {} : { overrides }),
    ...(corruption === null ? {} : { corruption }),
    ...(protect === null ? {} : { protect }),
    ...(options.nemesis.kinds.includes('clock') ? { clock: clockReport(events, options.nemesis.clock.mode) } : {}),
    retries: summarizeRetries(events),
    notes: phases.notes,
    ...(phases.snapshots === null ? {} : { snapshots: phases.snapshots }),
    availability: availability(events),
    recovery: recovery(events, phases.healTime, fs),
    memberRecoveryMs: phases.memberRecoveryMs,
    leaders: env.monitor.summary(),
    nemesisProblems: phases.nemesisProblems,
    unexpectedExits: env.cluster.unexpectedExits(),
    faults: countFaults(events),
    verdict: 'invalid',
    reasons: [],
  };
  const reasons = reasonsOf(results, linearizability, set, phases, failure, events);
  if (health !== null && !health.valid) reasons.push(`health: ${Object.entries(health.counts).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(', ')}${health.problems.length > 0 ? `; ${health.problems.join('; ')}` : ''}`);
  if (protect !== null && !protect.valid) reasons.push(`protectThreshold: ${[...Object.entries(protect.counts).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`), ...protect.problems].join(', ')}${protect.violations.length > 0 ? `; ${protect.violations[0] ?? ''}` : ''}`);
  if (ephemeral !== null && !ephemeral.valid) reasons.push(`ephemeral: ${ephemeral.problems.join('; ')}`);
  if (watch !== null && !watch.valid) reasons.push(`watch: ${Object.entries(watch.counts).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(', ')}${watch.problems.length > 0 ? `; ${watch.problems.join('; ')}` : ''}`);
  if (corruption !== null && !corruption.valid) reasons.push(`corruption: ${corruption.problems.slice(0, 8).join('; ')}`);
  if (beats !== null && !beats.valid) reasons.push(`beats: ${[...beats.violations.slice(0, 3), ...beats.problems.slice(0, 3)].join('; ')}${beats.violations.length > 3 ? ` (${beats.violations.length} violations listed)` : ''}`);
  if (d3 !== null && !d3.valid) reasons.push(`d3: ${[...d3.violations.slice(0, 3), ...d3.problems.slice(0, 3)].join('; ')}${d3.violations.length > 3 ? ` (${Object.entries(d3.counts).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(', ')})` : ''}`);
  if (sessions !== null && !sessions.valid) reasons.push(`sessions: ${[...sessions.violations.slice(0, 3), ...sessions.problems.slice(0, 3)].join('; ')}${sessions.violations.length > 3 ? ` (${Object.entries(sessions.violationCounts).map(([k, n]) => `${k} ${n}`).join(', ')})` : ''}`);
  if (overrides !== null && !overrides.valid) reasons.push(`overrides: ${[...overrides.violations.slice(0, 3), ...overrides.problems.slice(0, 3)].join('; ')} (${Object.entries(overrides.violationCounts).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(', ') || 'no violation counted'})`);
  for (const note of phases.notes) if (note.includes('not served')) reasons.push(note);
  const final: RunResults = { ...results, verdict: reasons.length === 0 ? 'valid' : 'invalid', reasons };
  writeResults(path.join(env.dir, 'results.json'), final);
  const flagged = [...(linearizability?.anomalies ?? []), ...(set?.anomalies ?? []), ...(health?.anomalies ?? []), ...(protect?.anomalies ?? []), ...(ephemeral?.anomalies ?? []), ...(watch?.anomalies ?? []), ...(beats?.anomalies ?? []), ...(d3?.anomalies ?? []), ...(sessions?.anomalies ?? []), ...(overrides?.anomalies ?? [])];
  writeTimeline(path.join(env.dir, 'timeline.html'), `${options.name} (seed ${options.seed}): ${final.verdict}`, events, flagged);
  return { verdict: final.verdict, reasons, dir: env.dir, summary: summaryLines(final), results: final };
}

function countFaults(events: readonly RecordedEvent[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const event of events) {
    if (!isNemesisEvent(event) || event.type !== 'info' || event.f.startsWith('stop-') || event.f === 'heal-all') continue;
    const value = (event.value ?? {}) as Record<string, unknown>;
    const detail = event.f === 'start-target-down' ? '' : String(value['mode'] ?? value['target'] ?? '');
    const name = `${event.f.replace('start-', '')}:${detail}`.replace(/:$/, '');
    counts[name] = (counts[name] ?? 0) + 1;
  }
  return counts;
}

function reasonsOf(results: RunResults, linearizability: LinearizabilityResult | null, set: SetResult | null, phases: Phases, failure: string | null, events: readonly RecordedEvent[]): string[] {
  const reasons: string[] = [];
  if (failure !== null) reasons.push(failure.split('\n')[0] ?? failure);
  if (linearizability?.result === 'illegal') reasons.push(`register: not linearizable on ${linearizability.illegalKeys.length} key(s): ${linearizability.illegalKeys.slice(0, 5).join(', ')}`);
  if (linearizability?.result === 'unknown') reasons.push(`unknown: checker budget exhausted, rerun smaller (${linearizability.unknownKeys.length} key(s) undecided)`);
  if (set !== null && !set.valid) reasons.push(`set: lost ${set.lostCount}, stale reads ${set.staleCount}; see the set line${set.problems.length > 0 ? `; ${set.problems.join('; ')}` : ''}`);
  for (const missing of phases.finalReadsMissing) reasons.push(`final read never succeeded: ${missing}`);
  if (phases.replicas?.verdict === 'differ') reasons.push(phases.replicas.note);
  for (const exit of results.unexpectedExits) reasons.push(`member died: ${exit}`);
  for (const problem of phases.nemesisProblems) reasons.push(`nemesis: ${problem}`);
  for (const [addr, ms] of Object.entries(phases.memberRecoveryMs)) if (ms === null) reasons.push(`${addr} answered no linearizable read within ${memberRecoveryBoundMs} ms of the final heal`);
  if (phases.membership !== null && phases.membership.convergedAfterMs === null) {
    reasons.push(`membership: not every member reports all ${Object.keys(phases.membership.voters).length} members as voters within ${membershipBoundMs} ms after the recovery window: ${phases.membership.problems.slice(0, 6).join('; ')}`);
  }
  if (results.retries !== undefined && results.retries.reusedRefusals > 0) {
    reasons.push(`retries: ${results.retries.reusedRefusals} attempt(s) of a repeated request were refused CAIRN_REQUEST_ID_REUSED (the very same request must get its first answer)`);
  }
  const oks = events.filter((event) => isClientEvent(event) && event.type === 'ok').length;
  if (oks === 0) reasons.push('no operation succeeded: nothing was tested');
  return reasons;
}
