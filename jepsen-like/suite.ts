// suite: the named sets of runs. `ci` is the short pair the CI test runs (a safe run that must be valid, and the
// stale-read positive control that must be invalid). `full` covers the cases of reference/PEERS.md §2.3 that the
// harness can build today, 5 minutes each unless --time says otherwise; the rest are listed as not run, with why.
// A suite passes when every case got the verdict it expects (positive controls expect 'invalid').

import { watchStartsLines } from './checkers-watch.ts';
import type { NemesisOptions } from './nemesis.ts';
import type { RunResults, Verdict } from './report.ts';
import { type RunOptions, type RunResult, runTest } from './runner.ts';

/** SuiteName names a suite. */
export type SuiteName = 'ci' | 'full';

/** SuiteCase is one run of a suite and the verdict it must get. */
export interface SuiteCase {
  readonly id: string;
  readonly title: string;
  readonly expect: Verdict;
  /** configure derives the case's options from the base options (time, seed, store). */
  readonly configure: (base: RunOptions) => RunOptions;
  /** because, for a positive control, says what is wrong when the run was invalid for another reason than its bug (null: right reason). */
  readonly because?: (results: RunResults) => string | null;
  /**
   * premise says what the case meant to exercise and the run did not (null: it did). Reported beside the verdict,
   * not judged: whether a seed's faults bring it about is up to the seed, but a case that stops exercising what its
   * title promises (B3 after the catch-up trail) must not go unnoticed.
   */
  readonly premise?: (results: RunResults) => string | null;
}

/** imagesInstalled: the case meant followers to catch up through a leader's image (B3). */
function imagesInstalled(results: RunResults): string | null {
  const snapshots = results.snapshots;
  if (snapshots === undefined) return 'the members\' snapshot counters were not read';
  return snapshots.installed > 0 ? null : `no follower installed an image (${snapshots.compacted} compactions, ${snapshots.imagesEncoded} images encoded; counts of killed members are lost)`;
}

/** notLinearizable: a positive control's bug must show as a history the linearizability checker finds illegal. */
/** staleThroughBackups: A16-control must be invalid because a read through a backup lacked acknowledged adds. */
function staleThroughBackups(results: RunResults): string | null {
  const stale = results.set?.staleCount ?? 0;
  return stale > 0 ? null : `the set checker found ${stale} stale reads (every non-final read goes through a backup, so a stale one is a backup's)`;
}

/**
 * a16 is case A16: the set workload with half of its operations reads, every non-final read taken through a backup
 * of the member (`cairn backup save --from`'s code: a linearizable barrier, then the image at the applied index),
 * under leader isolation, halves and single-member partitions and kills. The set checker holds each backup to a
 * read's rules: every add acknowledged before it started is in it, nothing never attempted or refused is.
 */
function a16(b: RunOptions, name: string): RunOptions {
  return {
    ...b, name, nodes: 3, workloads: ['set'], setReadShare: 0.5, setBackupShare: 1,
    nemesis: faults(b, { kinds: ['partition', 'kill'], partitionModes: ['leader', 'halves', 'one'], killTargets: ['one', 'leader'] }),
  };
}

/** replicasDiffer: A7-silent-control must be invalid because the replica check found the planted divergence. */
function replicasDiffer(results: RunResults): string | null {
  return results.reasons.some((reason) => reason.startsWith('replicas: state digests DIFFER')) ? null : 'the replica check did not report differing digests';
}

/** periodicDiverged: A7-periodic-control must be invalid because the members' own checkpoint comparisons found it. */
function periodicDiverged(results: RunResults): string | null {
  return results.reasons.some((reason) => reason.startsWith("replicas: the members' periodic checkpoint comparisons found a DIVERGENCE"))
    ? null : 'the periodic checkpoint comparisons did not report a divergence';
}

function notLinearizable(results: RunResults): string | null {
  const result = results.linearizability?.result ?? 'not checked';
  return result === 'illegal' ? null : `the linearizability checker said '${result}', not 'illegal'`;
}

/**
 * a14 is case A14's run (PEERS.md §2.3): the register workload on few keys at a time (two groups of 5 workers)
 * with many deletes and reads, 30% of the writes, compare-and-sets and deletes sent first with an 8 ms deadline
 * (impatient clients: the request leaves, the answer is not awaited, so the write is outcome-unknown although it
 * applies), every outcome-unknown one resent with its request id (generator.ts); the leader isolated, the cluster
 * cut in halves, the leader killed, so that writes also end unknown at the faults. Safe when a retry is answered
 * from its request id; applied twice, a write shows a value or version the register model cannot place.
 */
function a14(b: RunOptions, name: string): RunOptions {
  return {
    ...b,
    name,
    workloads: ['register'],
    registerWorkers: 10,
    processesPerKey: 5,
    registerMix: { readShare: 0.5, casShare: 0.35, deleteShare: 0.3 },
    impatientShare: 0.3,
    nemesis: faults(b, { kinds: ['partition', 'kill'], partitionModes: ['leader', 'halves'], killTargets: ['leader'] }),
  };
}

/** reEnabled: C3's control must show as disabled instances listed again after a client's registration (listed-disabled). */
function reEnabled(results: RunResults): string | null {
  const counts = results.overrides?.violationCounts;
  const after = counts?.listedDisabledAfterRegistration ?? 0;
  return after > 0 ? null : `the overrides checker found ${counts?.listedDisabled ?? 0} listed-disabled read(s), ${after} after a client registration (the control expects some)`;
}

/**
 * c3 is case C3's run (PEERS.md §2.3): the overrides workload, 5 members, under the AP workloads' partitions
 * (halves, one, leader, bridge, as D1), with quiet periods of 10-16 s: the checker judges reads only from 8 s after a
 * heal (healSettleMs) to the next partition, so D1's 3-8 s quiet periods would leave nothing to judge.
 */
function c3(b: RunOptions, name: string): RunOptions {
  return { ...b, name, nodes: 5, workloads: ['overrides'], nemesis: faults(b, { kinds: ['partition'], partitionModes: ['halves', 'one', 'leader', 'bridge'], faultMs: [4000, 10_000], quietMs: [10_000, 16_000] }) };
}

/** falselyEvicted: the clock control's monotonic jump must show as beating instances evicted with no silence to explain it. */
function falselyEvicted(results: RunResults): string | null {
  const unexplained = results.beats?.falseEvictions.unexplained ?? 0;
  return unexplained > 0 ? null : `the beats checker found ${unexplained} unexplained false eviction(s) (the control expects some)`;
}

/**
 * a12Beats is the beats workload of D2 (5 members, one service per member, so every member is the responsible member
 * of one service) with clock faults on members instead of partitions: `clock` options as given, D2's timing.
 */
function a12Beats(b: RunOptions, name: string, clock: NemesisOptions['clock']): RunOptions {
  return { ...b, name, nodes: 5, workloads: ['beats'], nemesis: faults(b, { kinds: ['clock'], clock, faultMs: [4000, 12_000], quietMs: [4000, 8000] }) };
}

function faults(base: RunOptions, nemesis: Partial<NemesisOptions>): NemesisOptions {
  return { ...base.nemesis, ...nemesis };
}

/** ciCases: the CI pair (3 members each, about 100 s together). */
export const ciCases: readonly SuiteCase[] = [
  {
    id: 'ci-safe',
    title: 'set + register under partitions and kills, 3 members',
    expect: 'valid',
    configure: (base) => ({ ...base, name: 'ci-safe', nodes: 3, workloads: ['set', 'register'], nemesis: faults(base, { kinds: ['partition', 'kill'], killTargets: ['one', 'leader', 'minority', 'all'], faultMs: [3000, 6000], quietMs: [2000, 4000] }) }),
  },
  {
    id: 'ci-stale-control',
    title: 'positive control: register with --unsafe-local-reads, leader isolated',
    expect: 'invalid',
    configure: (base) => ({ ...base, name: 'ci-stale-control', nodes: 3, workloads: ['register'], unsafeLocalReads: true, nemesis: faults(base, { kinds: ['partition'], partitionModes: ['leader'], faultMs: [7000, 9000], quietMs: [1500, 2500] }) }),
  },
];

/** fullCases: PEERS.md §2.3 cases the harness builds (5 members by default). */
export const fullCases: readonly SuiteCase[] = [
  { id: 'A1', title: 'register under every partition mode', expect: 'valid', configure: (b) => ({ ...b, name: 'A1', workloads: ['register'], nemesis: faults(b, { kinds: ['partition'], partitionModes: ['halves', 'leader', 'one', 'ring', 'bridge'] }) }) },
  { id: 'A2', title: 'set under kills (minority, majority, all) and partitions', expect: 'valid', configure: (b) => ({ ...b, name: 'A2', workloads: ['set'], nemesis: faults(b, { kinds: ['kill', 'partition'], killTargets: ['minority', 'majority', 'all'] }) }) },
  { id: 'A3-stale', title: 'positive control: register with --unsafe-local-reads, leader isolated', expect: 'invalid', configure: (b) => ({ ...b, name: 'A3-stale', workloads: ['register'], unsafeLocalReads: true, nemesis: faults(b, { kinds: ['partition'], partitionModes: ['leader'] }) }) },
  { id: 'A3-fsync', title: 'positive control: set with --unsafe-no-fsync, kill all with lost page cache', expect: 'invalid', configure: (b) => ({ ...b, name: 'A3-fsync', workloads: ['set'], unsafeNoFsync: true, lazyfs: true, nemesis: faults(b, { kinds: ['kill'], killTargets: ['all'] }) }) },
  { id: 'A4', title: 'register + set; members removed (leader or follower), wiped and re-added with --join, during leader isolation and halves partitions; all members voters at the end', expect: 'valid', configure: (b) => ({ ...b, name: 'A4', nodes: 5, workloads: ['register', 'set'], nemesis: faults(b, { kinds: ['member', 'partition'], partitionModes: ['leader', 'halves'] }) }) },
  { id: 'A9', title: 'register + set, 3 members; a member wiped and started without --join (must be refused), then removed and re-added with --join; the data of a member started under a free address (must be refused), then restarted as itself; leader isolation and halves partitions', expect: 'valid', configure: (b) => ({ ...b, name: 'A9', nodes: 3, workloads: ['register', 'set'], nemesis: faults(b, { kinds: ['wipe', 'partition'], partitionModes: ['leader', 'halves'] }) }) },
  { id: 'A7', title: 'register; one member of 5 killed, a LevelDB table or log bit-flipped or truncated, restarted: refused (CAIRN_STORAGE_CORRUPT) and rebuilt, or serving what the others serve', expect: 'valid', configure: (b) => ({ ...b, name: 'A7', nodes: 5, workloads: ['register'], nemesis: faults(b, { kinds: ['corrupt'], faultMs: [3000, 6000], quietMs: [2000, 5000] }) }) },
  {
    id: 'A7-silent-control',
    title: 'positive control: register; after the history ends one member is killed, one instance record of its stored keyspace rewritten under a valid frame (a divergence no checksum sees), and restarted: the replica check must find it',
    expect: 'invalid',
    because: replicasDiffer,
    configure: (b) => ({ ...b, name: 'A7-silent-control', nodes: 3, workloads: ['register'], plantDivergence: true, nemesis: faults(b, { kinds: ['partition'], partitionModes: ['leader', 'halves'] }) }),
  },
  {
    id: 'A7-periodic-control',
    title: 'positive control: register; at 40% of the run one member is killed, a sentinel instance record (which no workload touches) rewritten under a valid frame, and restarted: the members\' periodic checkpoint comparisons (every 200 entries) must find it during the run',
    expect: 'invalid',
    because: periodicDiverged,
    configure: (b) => ({ ...b, name: 'A7-periodic-control', nodes: 3, workloads: ['register'], plantDivergenceDuring: true, nemesis: faults(b, { kinds: ['partition'], partitionModes: ['leader', 'halves'] }) }),
  },
  { id: 'A5', title: 'set with frequent reads; kill all / majority, then restart', expect: 'valid', configure: (b) => ({ ...b, name: 'A5', workloads: ['set'], setReadShare: 0.3, nemesis: faults(b, { kinds: ['kill'], killTargets: ['all', 'majority'] }) }) },
  { id: 'A6', title: 'set; kills lose the page cache (lazyfs emulation), fsync on', expect: 'valid', configure: (b) => ({ ...b, name: 'A6', workloads: ['set'], lazyfs: true, nemesis: faults(b, { kinds: ['kill'], killTargets: ['one', 'majority', 'all'] }) }) },
  { id: 'A8', title: 'register + set, snapshot every 100 entries; a follower partitioned away for long; kills', expect: 'valid', configure: (b) => ({ ...b, name: 'A8', workloads: ['register', 'set'], snapshotEntries: 100, nemesis: faults(b, { kinds: ['partition', 'kill'], partitionModes: ['follower'], killTargets: ['one'], faultMs: [8000, 15_000] }) }) },
  { id: 'A10', title: 'register under one-way, bridge and majorities-ring partitions; leader churn', expect: 'valid', configure: (b) => ({ ...b, name: 'A10', workloads: ['register'], nemesis: faults(b, { kinds: ['partition'], partitionModes: ['one-way-leader', 'bridge', 'ring'] }) }) },
  { id: 'A11', title: 'register; the leader paused (SIGSTOP) beyond the election timeout', expect: 'valid', configure: (b) => ({ ...b, name: 'A11', workloads: ['register'], nemesis: faults(b, { kinds: ['pause'], pauseTargets: ['leader'], faultMs: [4000, 9000] }) }) },
  { id: 'A13', title: 'register under load; repeated leadership transfer and rolling restarts', expect: 'valid', configure: (b) => ({ ...b, name: 'A13', workloads: ['register'], registerRate: 100, nemesis: faults(b, { kinds: ['transfer', 'kill'], killTargets: ['one', 'leader'], quietMs: [2000, 5000] }) }) },
  { id: 'A14', title: 'register, few keys, many deletes and reads; outcome-unknown writes (impatient first attempts, leader isolated, halves, leader killed) retried with their request id', expect: 'valid', configure: (b) => a14(b, 'A14') },
  { id: 'A14-control', title: 'positive control: A14 with --unsafe-no-request-dedup (retries applied again)', expect: 'invalid', because: notLinearizable, configure: (b) => ({ ...a14(b, 'A14-control'), unsafeNoRequestDedup: true }) },
  { id: 'A12', title: 'register; wall-clock bumps (±2-90 s, sometimes accumulating) and strobes (±X every 1-2 s) on the leader, one member or all (libfaketime, CLOCK_REALTIME only): reads go through ReadIndex, so no stale read', expect: 'valid', configure: (b) => ({ ...b, name: 'A12', workloads: ['register'], nemesis: faults(b, { kinds: ['clock'], clock: { mode: 'wall', shapes: ['bump', 'strobe'], targets: ['leader', 'one', 'all'], offsetSeconds: [2, 90] } }) }) },
  { id: 'A12-beats', title: 'beats (D2\'s checker) while responsible members\' wall clocks are bumped (±2-90 s) or strobed: no false eviction, no late expiry (5 members)', expect: 'valid', configure: (b) => a12Beats(b, 'A12-beats', { mode: 'wall', shapes: ['bump', 'strobe'], targets: ['one', 'all'], offsetSeconds: [2, 90] }) },
  { id: 'A12-control', title: 'positive control: beats while every member\'s monotonic (and wall) clock jumps +20-60 s at once, as after a freeze of their host: each takes its clients for silent past the delete timeout, and no peer can vouch for them (false evictions)', expect: 'invalid', because: falselyEvicted, configure: (b) => a12Beats(b, 'A12-control', { mode: 'monotonic', shapes: ['bump'], targets: ['all'], offsetSeconds: [20, 60] }) },
  { id: 'A16', title: 'set, every read taken through a live backup of the member (cairn backup save --from), 3 members; leader isolated, halves, one member cut off, kills', expect: 'valid', configure: (b) => a16(b, 'A16') },
  { id: 'A16-control', title: 'positive control: A16 with --unsafe-local-reads (the backup skips its linearizable barrier): a backup from a cut-off member misses acknowledged adds (stale)', expect: 'invalid', because: staleThroughBackups, configure: (b) => ({ ...a16(b, 'A16-control'), unsafeLocalReads: true, nemesis: faults(b, { kinds: ['partition'], partitionModes: ['leader', 'one'] }) }) },
  { id: 'A15', title: 'register through followers only, HTTP and gRPC mixed; the forwarding follower isolated', expect: 'valid', configure: (b) => ({ ...b, name: 'A15', workloads: ['register'], targets: 'followers', transports: 'mixed', nemesis: faults(b, { kinds: ['partition'], partitionModes: ['follower', 'leader'] }) }) },
  { id: 'A15-batched', title: 'register + set through followers only at 40 clients and up to 1500 operations/s, so that the writes a follower takes in one turn share a ForwardBatch call; partitions, kills and pauses', expect: 'valid', configure: (b) => ({ ...b, name: 'A15-batched', workloads: ['register', 'set'], targets: 'followers', registerWorkers: 40, registerRate: 1500, nemesis: faults(b, { kinds: ['partition', 'kill', 'pause'] }) }) },
  { id: 'A17', title: 'combined faults (Jepsen\'s combined nemesis): register + set over HTTP and gRPC, 5 members, snapshot every 100 entries; partitions of every mode, kills (one, leader, minority, majority, all), pauses, leadership transfers and members removed, wiped and re-added, overlapping', expect: 'valid', configure: (b) => ({ ...b, name: 'A17', nodes: 5, workloads: ['register', 'set'], transports: 'mixed', snapshotEntries: 100, nemesis: faults(b, { kinds: ['partition', 'kill', 'pause', 'transfer', 'member'] }) }) },
  { id: 'C1', title: 'health checks vs a scripted target timeline; prober isolated from the cluster, prober cut from the targets (3 members)', expect: 'valid', configure: (b) => ({ ...b, name: 'C1', nodes: 3, workloads: ['health'], nemesis: faults(b, { kinds: ['partition'] }) }) },
  { id: 'C2', title: 'protectThreshold 0.5 under a degraded prober NIC: one member probes 4 of the service\'s 6 TCP targets and loses its reach to 3 of them (cluster links untouched); every served list (gRPC, HTTP v1, healthyOnly or not) judged against the stored health of its revision; never empty while a target is healthy; C1\'s verdict checks (3 members)', expect: 'valid', configure: (b) => ({ ...b, name: 'C2', nodes: 3, workloads: ['health'], protectThreshold: 0.5, nemesis: faults(b, { kinds: ['partition'] }) }) },
  { id: 'C4', title: 'health checks vs a scripted target timeline; the leader or a prober killed (restarted) or paused mid-probing, its targets flipped around the fault; resumption within the bound, no probe storm, no stale verdict (3 members)', expect: 'valid', configure: (b) => ({ ...b, name: 'C4', nodes: 3, workloads: ['health'], nemesis: faults(b, { kinds: ['kill', 'pause'] }) }) },
  { id: 'C3', title: 'operator overrides (PATCH enabled/weight) of ephemeral instances whose clients beat (1/3/6 s), restart, redeploy (DELETE, POST) and pause beats, under partitions: no quiet read lists an instance the last acknowledged action disabled, weights persist, every member shows the operator\'s state after the heal', expect: 'valid', configure: (b) => c3(b, 'C3') },
  { id: 'C3b', title: 'C3 with two operators per service, E toggling enabled and W setting fresh weights (PATCH naming one attribute), each action through a random member, so partitions split them: each attribute shows its own last acknowledged action (the per-attribute merge), no quiet read lists an instance E disabled, W\'s weights persist, every member shows both after the heal', expect: 'valid', configure: (b) => ({ ...c3(b, 'C3b'), overrideOperators: 'per-attribute' }) },
  { id: 'C3-control', title: 'positive control: C3 with the operator\'s changes sent as client registrations (POST enabled=false), which the client\'s next registration replaces: disabled instances listed again (listed-disabled)', expect: 'invalid', because: reEnabled, configure: (b) => ({ ...c3(b, 'C3-control'), overrideControl: true }) },
  { id: 'D1', title: 'ephemeral (AP) registrations and deregistrations under partitions; convergence within T after the heal', expect: 'valid', configure: (b) => ({ ...b, name: 'D1', workloads: ['ephemeral'], nemesis: faults(b, { kinds: ['partition'], partitionModes: ['halves', 'one', 'leader', 'bridge'] }) }) },
  { id: 'D2', title: 'beats (1 s interval, 3 s unhealthy, 6 s delete per instance) while the responsible member is cut from the others, from the clients, or both; false evictions and expiry latency', expect: 'valid', configure: (b) => ({ ...b, name: 'D2', nodes: 5, workloads: ['beats'], nemesis: faults(b, { kinds: ['partition'], faultMs: [4000, 12_000], quietMs: [4000, 8000] }) }) },
  { id: 'D3', title: 'mass heartbeat loss: every beating client cut from every member (iptables, by the clients\' own address) for 11-14 s, beyond the 6 s delete timeout; no early expiry, every instance flagged and removed in time, every beating instance listed healthy again within 9 s of the heal', expect: 'valid', configure: (b) => ({ ...b, name: 'D3', nodes: 4, workloads: ['beats'], beatFaults: ['all-clients-cut'], nemesis: faults(b, { kinds: ['partition'], faultMs: [11_000, 14_000], quietMs: [9500, 12_000] }) }) },
  { id: 'D4', title: 'beats while the responsible member of a service is killed and restarted repeatedly (3 in a row per service); no TTL reset for ever, no early expiry', expect: 'valid', configure: (b) => ({ ...b, name: 'D4', nodes: 5, workloads: ['beats'], nemesis: faults(b, { kinds: ['kill'], faultMs: [3000, 8000], quietMs: [2000, 5000] }) }) },
  { id: 'D5', title: 'gRPC Session-bound instances: clients die (cancel, silent), members serving sessions killed and restarted (the clients redo elsewhere), streams abandoned and redone, a duplicate session closed; partitions; removal within B1, presence within B2, no ghost', expect: 'valid', configure: (b) => ({ ...b, name: 'D5', nodes: 5, workloads: ['sessions'], nemesis: faults(b, { kinds: ['kill', 'partition'], partitionModes: ['one', 'halves'], faultMs: [3000, 8000], quietMs: [4000, 8000] }) }) },
  // No kills: the ephemeral workload has no beats, so a write acknowledged by a member killed before it could sync is
  // lost for good (by design, docs/ap.md "In a partition"), which D1's convergence checker would call a violation.
  { id: 'D6', title: 'combined faults on the AP side: ephemeral registrations beside gRPC Session-bound instances, 5 members; partitions of every mode and pauses of one member or the Raft leader, overlapping (a paused member reads forwards its senders gave up on: the fence); D1\'s convergence and D5\'s bounds', expect: 'valid', configure: (b) => ({ ...b, name: 'D6', nodes: 5, workloads: ['ephemeral', 'sessions'], nemesis: faults(b, { kinds: ['partition', 'pause'] }) }) },
  { id: 'B1', title: 'Subscribe streams per service vs linearized writes under partitions, kills, pauses and transfers', expect: 'valid', configure: (b) => ({ ...b, name: 'B1', workloads: ['watch'], nemesis: faults(b, { kinds: ['partition', 'kill', 'pause', 'transfer'], killTargets: ['one', 'leader', 'minority'] }) }) },
  { id: 'B2', title: 'Subscribe resumes (after_revision/after_epoch) across leader isolation and leader kills', expect: 'valid', configure: (b) => ({ ...b, name: 'B2', workloads: ['watch'], nemesis: faults(b, { kinds: ['partition', 'kill'], partitionModes: ['leader', 'halves'], killTargets: ['leader'] }) }) },
  { id: 'B3', title: 'Subscribe streams and resumes while every member compacts its log every 20 entries and followers cut off or killed catch up by installing a leader\'s image', expect: 'valid', premise: imagesInstalled, configure: (b) => ({ ...b, name: 'B3', workloads: ['watch'], snapshotEntries: 20, nemesis: faults(b, { kinds: ['partition', 'kill'], partitionModes: ['follower'], killTargets: ['one', 'leader'], faultMs: [8000, 15_000] }) }) },
  { id: 'B5', title: 'combined faults: Subscribe streams beside register, 5 members, snapshot every 100 entries; partitions, kills, pauses, transfers, members removed and re-added and wall-clock bumps and strobes, overlapping', expect: 'valid', configure: (b) => ({ ...b, name: 'B5', nodes: 5, workloads: ['register', 'watch'], snapshotEntries: 100, nemesis: faults(b, { kinds: ['partition', 'kill', 'pause', 'transfer', 'member', 'clock'] }) }) },
  {
    id: 'B4',
    title: 'Subscribe start-revision edge cases (40% of opens: after_revision 0, an unknown epoch, 1 s-17 min ahead, 2 days ahead and 2^52+2, the last two refused) under leader isolation, halves and leader kills; the Resume rule, refusals that disturb nothing, and B1/B2\'s checks',
    expect: 'valid',
    configure: (b) => ({ ...b, name: 'B4', workloads: ['watch'], watchEdgeStartShare: 0.4, nemesis: faults(b, { kinds: ['partition', 'kill'], partitionModes: ['leader', 'halves'], killTargets: ['leader'] }) }),
  },
];

/** notRun lists the PEERS.md §2.3 cases the suite does not run yet, with why. */
export const notRun: readonly string[] = [];

/** SuiteRow is one case's outcome. */
export interface SuiteRow {
  readonly id: string;
  readonly title: string;
  readonly expect: Verdict;
  readonly verdict: Verdict;
  readonly passed: boolean;
  readonly seconds: number;
  readonly dir: string;
  readonly reasons: readonly string[];
  /** premiseUnmet: what the case meant to exercise and this run did not (null: it did, or the case says nothing). */
  readonly premiseUnmet: string | null;
}

/** runSuite runs every case in order; each case's summary goes to `log`. */
export async function runSuite(cases: readonly SuiteCase[], base: RunOptions, log: (line: string) => void): Promise<SuiteRow[]> {
  const rows: SuiteRow[] = [];
  for (const [index, suiteCase] of cases.entries()) {
    const options = suiteCase.configure({ ...base, seed: base.seed + index });
    log(`=== ${suiteCase.id}: ${suiteCase.title} (expect ${suiteCase.expect}, ${options.timeSeconds} s, ${options.nodes} members)`);
    const started = Date.now();
    const result: RunResult = await runTest(options, log);
    for (const line of result.summary) log(line);
    // The summary (report.ts) does not know B4's start kinds; they follow it.
    for (const line of watchStartsLines(result.results.watch)) log(line);
    const wrongReason = result.verdict === 'invalid' ? (suiteCase.because?.(result.results) ?? null) : null;
    const passed = result.verdict === suiteCase.expect && wrongReason === null;
    const reasons = wrongReason === null ? result.reasons : [`invalid for another reason than the planted bug: ${wrongReason}`, ...result.reasons];
    const premiseUnmet = suiteCase.premise?.(result.results) ?? null;
    rows.push({ id: suiteCase.id, title: suiteCase.title, expect: suiteCase.expect, verdict: result.verdict, passed, seconds: Math.round((Date.now() - started) / 1000), dir: result.dir, reasons, premiseUnmet });
    log(`=== ${suiteCase.id}: ${result.verdict} (expected ${suiteCase.expect}${wrongReason === null ? '' : `; ${wrongReason}`}): ${passed ? 'PASS' : 'FAIL'}`);
    if (premiseUnmet !== null) log(`=== ${suiteCase.id}: premise not met (reported, not judged): ${premiseUnmet}`);
  }
  return rows;
}

/** suiteTable renders the rows as a Markdown table. */
export function suiteTable(rows: readonly SuiteRow[]): string[] {
  const lines = ['| case | what | expected | verdict | pass | seconds | run |', '|---|---|---|---|---|---|---|'];
  for (const row of rows) lines.push(`| ${row.id} | ${row.title} | ${row.expect} | ${row.verdict} | ${row.passed ? 'yes' : 'NO'} | ${row.seconds} | ${row.dir.split('/').pop() ?? ''} |`);
  return lines;
}

/** premiseLines lists the cases whose run did not exercise what they meant to (empty when every one did). */
export function premiseLines(rows: readonly SuiteRow[]): string[] {
  return rows.filter((row) => row.premiseUnmet !== null).map((row) => `premise not met (reported, not judged): ${row.id}: ${row.premiseUnmet ?? ''}`);
}
