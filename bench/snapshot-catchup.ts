// bench/snapshot-catchup.ts: how long a 3-member Cairn cluster holding N persistent instances takes to catch a
// lagging follower up through a snapshot image, and how long the LEADER's event loop stands still meanwhile. A stall
// near the 1 s election timeout risks the leader's term; one over 1 s trips its stall fence (src/stall.ts), which
// refuses client writes.
//
// How: a standalone data directory is seeded offline with N instances (bench/seed.ts's child-process mode, as the
// memory workload does), saved with `cairn backup save --data-dir` and restored into three members on
// 127.0.2.81-83:18848 (`cairn backup restore ... --members`), which start with --snapshot-entries 1000 and
// --log-level info. Once a leader is known, one follower is stopped (SIGTERM) and W persistent instances are
// registered through the leader (16 in flight), so the leader compacts its log past the follower. The follower then
// starts again on its data directory; from its spawn until its applied index reaches the leader's commit index
// (both polled every 500 ms) a probe sends GET /cairn/v1/health to the leader, 10 ms after each answer (2 s timeout
// each), and records each latency with its time since the spawn. The leader's log gives the image it encoded
// ('snapshot image encoded for a follower'), its stalls and, with --trace-gc (node --trace-gc through
// CAIRN_NODE_ARGS), its GC pauses, aligned on the follower's spawn through the leader's own spawn time (node's
// `NNN ms:` counts from its start, so the alignment is good to some tens of ms).
//
// Read the numbers knowing: the catch-up time includes the follower's own start (node, tsx, loading its data
// directory: its Raft ran 2.8 s after the spawn at 20 000 instances on the 2-vCPU VM) and is known to the 500 ms poll; at --log-level info every member also logs each HTTP
// request (two lines per probe and per write), a small, steady cost on the leader's loop; --writes is spread over
// services of instancesPerServiceMax instances (a service holds no more).
//
// --catchup-entries N passes --snapshot-catchup-entries N to the members (default: theirs, half of the 1000 entries per
// snapshot): with fewer writes than the trail the follower goes on from the log and no image is sent, which is what
// the trail is for; --catchup-entries 0 sends the image for the same gap, for a comparison.
//
//   node --import tsx bench/snapshot-catchup.ts --instances N [--writes W] [--catchup-entries N] [--timeout S] [--trace-gc] [--keep] [--work-dir DIR]
//
// The report goes to the console and to bench/results/snapshot-catchup-<time>.json. Every process it starts is
// stopped by its pid on every way out; the work directory is removed unless --keep.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { ClusterStatus } from '../src/api/http/deps.ts';
import { limits } from '../src/limits.ts';
import { prepareCairnServices } from './lib/cairn.ts';
import { cairnHealthy, startCairnMember, type MemberProcess } from './lib/clusters.ts';
import { HttpTarget } from './lib/http.ts';
import { describe, forgetDirectory, isRunning, killProcess, rssBytesOf, sleep, startProcess, stopProcess, trackDirectory, waitUntil } from './lib/processes.ts';
import { boundedRequest } from '../test/support/http.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** addrs are the three members' HTTP addresses (bench/ owns 127.0.2.0/24; .81-.83 are used by nothing else). */
const addrs = ['127.0.2.81:18848', '127.0.2.82:18848', '127.0.2.83:18848'];
// The probe's and the poll's pace (the brief of the hand measurement this repeats), and bounds on every wait: each
// step fails with a message rather than hang (seeding 1M instances offline takes some minutes).
const probeIntervalMs = 10;
const probeTimeoutMs = 2000;
const pollIntervalMs = 500;
const writesInFlight = 16;
const longestCount = 10;
const thresholdsMs = [250, 500, 1000];
const seedTimeoutMs = 60 * 60_000;
const backupTimeoutMs = 30 * 60_000;
const readyTimeoutMs = 20 * 60_000;
const stopGraceMs = 20_000;

/** Probe is one health request to the leader: when it left (ms since the follower's spawn), its latency, its status (0: failed). */
interface Probe { readonly atMs: number; readonly latencyMs: number; readonly status: number }
/** GcPause is one line of the leader's --trace-gc output. */
interface GcPause { readonly kind: string; readonly pauseMs: number; readonly atMs: number }
/** LeaderLogFacts is what the leader's log tells (see leaderLogFacts). */
interface LeaderLogFacts {
  readonly images: readonly Record<string, unknown>[];
  readonly stallsMs: readonly number[];
  readonly roleChanges: number;
  readonly compactedIndex: unknown;
  readonly gcPauses: readonly GcPause[];
}

const { values } = parseArgs({ options: {
  instances: { type: 'string' }, writes: { type: 'string', default: '3000' }, timeout: { type: 'string', default: '300' },
  'trace-gc': { type: 'boolean', default: false }, keep: { type: 'boolean', default: false }, 'work-dir': { type: 'string' },
  'catchup-entries': { type: 'string' },
} });
const instances = Number(values.instances);
const writes = Number(values.writes);
const timeoutMs = Number(values.timeout) * 1000;
const catchUpEntries = values['catchup-entries'] === undefined ? null : Number(values['catchup-entries']);
if (!(Number.isInteger(instances) && instances > 0 && Number.isInteger(writes) && writes > 0 && timeoutMs > 0 && (catchUpEntries === null || (Number.isInteger(catchUpEntries) && catchUpEntries >= 0)))) {
  process.stderr.write('usage: node --import tsx bench/snapshot-catchup.ts --instances N [--writes W] [--catchup-entries N] [--timeout S] [--trace-gc] [--keep] [--work-dir DIR]\n');
  process.exit(2);
}
/**
 * memberArgs: compact every 1000 entries (the writes outrun the stopped follower); info for the leader's image line;
 * the catch-up trail when --catchup-entries is given.
 */
const memberArgs = ['--snapshot-entries', '1000', '--log-level', 'info', ...(catchUpEntries === null ? [] : ['--snapshot-catchup-entries', String(catchUpEntries)])];

/** runToEnd runs a command as a tracked process and fails unless it exits 0 within `limitMs`. */
async function runToEnd(name: string, command: string, args: readonly string[], logFile: string, limitMs: number): Promise<void> {
  const child = startProcess(name, command, args, logFile);
  const timer = setTimeout(() => void killProcess(child), limitMs);
  const code = await child.exited;
  clearTimeout(timer);
  if (code !== '0') throw new Error(`${name} failed (${code}); see ${logFile}`);
}

/** prepareDataDirs seeds N instances offline, backs them up and restores the backup into one directory per member. */
async function prepareDataDirs(work: string, logDir: string): Promise<string[]> {
  const seedDir = path.join(work, 'seed');
  const backupFile = path.join(work, 'seed.bak');
  const loader = pathToFileURL(path.join(root, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href;
  const seedArgs = ['--max-old-space-size=12288', '--import', loader, path.join(root, 'bench', 'seed.ts'), '--seed', seedDir, '--addr', addrs[0] ?? '', '--instances', String(instances)];
  await runToEnd('seed', process.execPath, seedArgs, path.join(logDir, 'seed.log'), seedTimeoutMs);
  const cairn = path.join(root, 'bin', 'cairn');
  await runToEnd('backup save', cairn, ['backup', 'save', '--data-dir', seedDir, '--out', backupFile], path.join(logDir, 'backup.log'), backupTimeoutMs);
  const dataDirs = addrs.map((_, i) => path.join(work, `member-${i + 1}`));
  for (const [i, addr] of addrs.entries()) {
    const restoreArgs = ['backup', 'restore', '--in', backupFile, '--data-dir', dataDirs[i] ?? '', '--addr', addr, '--members', addrs.join(',')];
    await runToEnd(`backup restore ${addr}`, cairn, restoreArgs, path.join(logDir, 'backup.log'), backupTimeoutMs);
  }
  return dataDirs;
}

/** statusOf reads GET /cairn/v1/cluster of one member, or null when it does not answer. */
async function statusOf(addr: string): Promise<ClusterStatus | null> {
  try {
    const { status, text } = await boundedRequest(addr, 'GET', '/cairn/v1/cluster', { timeoutMs: probeTimeoutMs });
    return status === 200 ? (JSON.parse(text) as ClusterStatus) : null;
  } catch {
    return null;
  }
}

/**
 * registerThroughLeader registers `writes` persistent instances, 16 in flight, in fresh services of at most
 * instancesPerServiceMax instances each (more is refused with CAIRN_INSTANCES_PER_SERVICE_EXCEEDED); resolves with
 * the number of writes that failed and the first failure.
 */
async function registerThroughLeader(leader: string): Promise<{ failed: number; firstFailure: string | null }> {
  const http = new HttpTarget(leader, writesInFlight);
  const perService = limits.instancesPerServiceMax;
  const services = Array.from({ length: Math.ceil(writes / perService) }, (_, k) => `catchup-${Date.now()}-${k}`);
  let next = 0;
  let failed = 0;
  let firstFailure: string | null = null;
  const worker = async (): Promise<void> => {
    while (next < writes) {
      const n = next++;
      const query = `serviceName=${services[Math.floor(n / perService)] ?? ''}&ip=127.10.${(n >> 8) & 255}.${n & 255}&port=${9000 + (n >> 16)}&ephemeral=false`;
      const answer = await http.send('POST', `/nacos/v1/ns/instance?${query}`).catch((error: unknown) => ({ status: 0, text: describe(error) }));
      if (answer.status === 200) continue;
      failed++;
      firstFailure ??= `${answer.status} ${answer.text.slice(0, 200)}`;
    }
  };
  try {
    await prepareCairnServices(http, services, true);
    await Promise.all(Array.from({ length: writesInFlight }, worker));
  } finally {
    await http.close();
  }
  return { failed, firstFailure };
}

/**
 * watchCatchUp probes the leader's health every 10 ms (sequentially) until the follower's applied index reaches the
 * leader's commit index or the timeout; `spawnedAt` is the follower's spawn (performance.now()).
 */
async function watchCatchUp(leader: MemberProcess, follower: MemberProcess, spawnedAt: number): Promise<{ catchUpMs: number | null; probes: Probe[]; peakRssBytes: number }> {
  const deadline = spawnedAt + timeoutMs;
  // Bounded by the timeout: one probe per interval at most.
  const probesMax = Math.ceil(timeoutMs / probeIntervalMs) + 1;
  const probes: Probe[] = [];
  let catchUpMs: number | null = null;
  let peakRssBytes = 0;
  const poll = async (): Promise<void> => {
    while (catchUpMs === null && performance.now() < deadline) {
      if (!isRunning(follower.process)) throw new Error(`${follower.name} exited (${await follower.process.exited}); see ${follower.process.logFile}`);
      const [ours, theirs] = await Promise.all([statusOf(leader.client), statusOf(follower.client)]);
      peakRssBytes = Math.max(peakRssBytes, await rssBytesOf(leader.process.pid));
      const commit = ours?.members.find((member) => member.addr === leader.client)?.commitIndex;
      const applied = theirs?.members.find((member) => member.addr === follower.client)?.appliedIndex;
      if (commit !== undefined && commit !== null && applied !== undefined && applied !== null && applied >= commit) catchUpMs = performance.now() - spawnedAt;
      else await sleep(pollIntervalMs);
    }
  };
  const probe = async (): Promise<void> => {
    const http = new HttpTarget(leader.client, 1, probeTimeoutMs);
    try {
      while (catchUpMs === null && performance.now() < deadline && probes.length < probesMax) {
        const sent = performance.now();
        const status = await http.send('GET', '/cairn/v1/health').then((answer) => answer.status, () => 0);
        probes.push({ atMs: sent - spawnedAt, latencyMs: performance.now() - sent, status });
        await sleep(probeIntervalMs);
      }
    } finally {
      await http.close();
    }
  };
  await Promise.all([poll(), probe()]);
  return { catchUpMs, probes, peakRssBytes };
}

/**
 * leaderLogFacts reads the leader's log: the images it encoded, its stalls and role changes since `sinceEpochMs`, the
 * index of its last log compaction, and its GC pauses (their times relative to the follower's spawn).
 */
async function leaderLogFacts(leader: MemberProcess, sinceEpochMs: number, leaderSpawnToFollowerMs: number): Promise<LeaderLogFacts> {
  const images: Record<string, unknown>[] = [];
  const stallsMs: number[] = [];
  const gcPauses: GcPause[] = [];
  let roleChanges = 0;
  let compactedIndex: unknown = null;
  const gcLine = /^\[(\d+):0x[0-9a-f]+\]\s+(\d+) ms: ([A-Za-z-]+(?: \([a-z ]+\))?) [\d.]+ \([\d.]+\) -> [\d.]+ \([\d.]+\) MB, ([\d.]+) \/ [\d.]+ ms/;
  for (const line of (await readFile(leader.process.logFile, 'utf8')).split('\n')) {
    const gc = gcLine.exec(line);
    if (gc !== null && Number(gc[1]) === leader.process.pid) {
      gcPauses.push({ kind: gc[3] ?? '', pauseMs: Number(gc[4]), atMs: Number(gc[2]) - leaderSpawnToFollowerMs });
      continue;
    }
    if (!line.startsWith('{')) continue;
    let entry: Record<string, unknown>;
    try {
      entry = JSON.parse(line) as Record<string, unknown>;
    } catch {
      continue;
    }
    const { msg, index, bytes, encodedMs, taken, stalledMs } = entry;
    if (msg === 'log compacted') compactedIndex = index;
    if (typeof entry['time'] !== 'number' || entry['time'] < sinceEpochMs) continue;
    if (msg === 'snapshot image encoded for a follower') images.push({ atS: (entry['time'] - sinceEpochMs) / 1000, index, bytes, encodedMs, taken });
    else if (msg === 'raft role changed') roleChanges++;
    else if (typeof stalledMs === 'number') stallsMs.push(stalledMs);
  }
  return { images, stallsMs, roleChanges, compactedIndex, gcPauses };
}

/** leaderOf waits until a member names a leader that answers health 200, and returns it. */
async function leaderOf(members: readonly MemberProcess[]): Promise<MemberProcess> {
  let leader: MemberProcess | undefined;
  await waitUntil('a leader', async () => {
    const status = await statusOf(members[0]?.client ?? '');
    leader = members.find((member) => member.client === status?.leader);
    return leader !== undefined && (await cairnHealthy(leader.client));
  }, readyTimeoutMs, members.map((member) => member.process), 250);
  if (leader === undefined) throw new Error('no leader');
  return leader;
}

/** measure runs the steps on running members and returns the report. */
async function measure(members: MemberProcess[], spawnedAt: number[], dataDirs: readonly string[], logDir: string): Promise<Record<string, unknown>> {
  for (const member of members) await waitUntil(`${member.name} healthy`, () => cairnHealthy(member.client), readyTimeoutMs, members.map((m) => m.process), 250);
  const leader = await leaderOf(members);
  const followerIndex = members.findIndex((member) => member !== leader);
  const stopped = members[followerIndex];
  if (stopped === undefined) throw new Error('no follower');
  const followerAppliedWhenStopped = (await statusOf(stopped.client))?.members.find((member) => member.addr === stopped.client)?.appliedIndex ?? null;
  await stopProcess(stopped.process, stopGraceMs);
  const writeStarted = performance.now();
  const { failed: failedWrites, firstFailure } = await registerThroughLeader(leader.client);
  // Writes that fail leave the log short of what the measurement needs: say so rather than report a quiet run.
  if (failedWrites > 0) process.stderr.write(`snapshot-catchup: ${failedWrites} of ${writes} writes failed, first: ${firstFailure ?? ''}\n`);
  const writeSeconds = (performance.now() - writeStarted) / 1000;
  const before = await statusOf(leader.client);
  const rssBeforeBytes = await rssBytesOf(leader.process.pid);
  const sinceEpochMs = Date.now();
  const followerSpawnedAt = performance.now();
  const follower = await startCairnMember(root, stopped.client, addrs, dataDirs[followerIndex] ?? '', logDir, memberArgs);
  members[followerIndex] = follower;
  const watched = await watchCatchUp(leader, follower, followerSpawnedAt);
  const after = await statusOf(leader.client);
  const log = await leaderLogFacts(leader, sinceEpochMs, followerSpawnedAt - (spawnedAt[members.indexOf(leader)] ?? 0));
  // Evidence that the follower caught up through an image rather than from the log: the leader says it gave one.
  if (!log.images.some((image) => image.taken === true)) process.stderr.write('snapshot-catchup: the leader logged no snapshot image taken for a follower: it went on from the log (fewer writes than the catch-up trail?)\n');
  const windowEndMs = (watched.catchUpMs ?? timeoutMs) + 1000;
  const byLatency = [...watched.probes].sort((a, b) => b.latencyMs - a.latencyMs);
  return {
    instances, writes, catchUpEntries, failedWrites, firstFailure, writeSeconds, leader: leader.client, follower: follower.client,
    catchUpSeconds: watched.catchUpMs === null ? null : watched.catchUpMs / 1000,
    followerAppliedWhenStopped, leaderCompactedIndex: log.compactedIndex, images: log.images, probes: watched.probes.length, failedProbes: watched.probes.filter((p) => p.status !== 200).length,
    longestProbes: byLatency.slice(0, longestCount).map((p) => ({ atS: p.atMs / 1000, latencyMs: p.latencyMs, status: p.status })),
    probesOver: Object.fromEntries(thresholdsMs.map((ms) => [`${ms}ms`, watched.probes.filter((p) => p.latencyMs > ms).length])),
    leaderBefore: { leader: before?.leader ?? null, term: before?.term ?? null },
    leaderAfter: { leader: after?.leader ?? null, term: after?.term ?? null },
    leaderRoleChanges: log.roleChanges, leaderStallsMs: log.stallsMs,
    leaderRssBytes: { before: rssBeforeBytes, peak: watched.peakRssBytes, after: await rssBytesOf(leader.process.pid) },
    traceGc: values['trace-gc'],
    gcPausesDuringCatchUp: log.gcPauses.filter((gc) => gc.atMs >= 0 && gc.atMs <= windowEndMs).sort((a, b) => b.pauseMs - a.pauseMs).slice(0, longestCount),
    gcLongestOverall: [...log.gcPauses].sort((a, b) => b.pauseMs - a.pauseMs)[0] ?? null,
  };
}

/** printSummary writes the report's main numbers to the console. */
function printSummary(report: Record<string, unknown>): void {
  const mib = (bytes: unknown): string => (typeof bytes === 'number' ? `${(bytes / 2 ** 20).toFixed(0)} MiB` : '?');
  const rss = report['leaderRssBytes'] as { before: number; peak: number; after: number };
  const lines = [
    `instances ${instances}, writes ${writes}, --snapshot-catchup-entries ${catchUpEntries ?? 'default'} (${String(report['failedWrites'])} failed, ${Number(report['writeSeconds']).toFixed(1)} s), leader ${String(report['leader'])}, follower ${String(report['follower'])}`,
    `catch-up: ${report['catchUpSeconds'] === null ? `not within ${timeoutMs / 1000} s` : `${Number(report['catchUpSeconds']).toFixed(1)} s`}`,
    `follower applied ${String(report['followerAppliedWhenStopped'])} when stopped; leader's log compacted to ${String(report['leaderCompactedIndex'])}; images encoded by the leader: ${JSON.stringify(report['images'])}`,
    `probes: ${String(report['probes'])} (${String(report['failedProbes'])} failed), over 250/500/1000 ms: ${Object.values(report['probesOver'] as object).join('/')}`,
    `longest probes (s since the follower's start: ms): ${(report['longestProbes'] as { atS: number; latencyMs: number }[]).map((p) => `${p.atS.toFixed(2)}: ${p.latencyMs.toFixed(0)}`).join(', ')}`,
    `leader before ${JSON.stringify(report['leaderBefore'])}, after ${JSON.stringify(report['leaderAfter'])}, role changes ${String(report['leaderRoleChanges'])}, stalls ${JSON.stringify(report['leaderStallsMs'])}`,
    `leader RSS: before ${mib(rss.before)}, peak ${mib(rss.peak)}, after ${mib(rss.after)}`,
  ];
  if (values['trace-gc'] === true) {
    const pauses = report['gcPausesDuringCatchUp'] as GcPause[];
    lines.push(`leader GC pauses during catch-up (s since the follower's start: kind ms): ${pauses.map((gc) => `${(gc.atMs / 1000).toFixed(2)}: ${gc.kind} ${gc.pauseMs.toFixed(1)}`).join(', ')}`);
    lines.push(`leader's longest GC pause overall: ${JSON.stringify(report['gcLongestOverall'])}`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

async function main(): Promise<number> {
  const parent = values['work-dir'] === undefined ? os.tmpdir() : path.resolve(values['work-dir']);
  await mkdir(parent, { recursive: true });
  const work = await mkdtemp(path.join(parent, 'cairn-snapshot-catchup-'));
  if (values.keep !== true) trackDirectory(work);
  const logDir = path.join(work, 'logs');
  await mkdir(logDir);
  const members: MemberProcess[] = [];
  try {
    const dataDirs = await prepareDataDirs(work, logDir);
    // bin/cairn passes CAIRN_NODE_ARGS to node; the members inherit this process's environment.
    if (values['trace-gc'] === true) process.env['CAIRN_NODE_ARGS'] = `${process.env['CAIRN_NODE_ARGS'] ?? ''} --trace-gc`.trim();
    const spawnedAt: number[] = [];
    for (const [i, addr] of addrs.entries()) {
      spawnedAt.push(performance.now());
      members.push(await startCairnMember(root, addr, addrs, dataDirs[i] ?? '', logDir, memberArgs));
    }
    const report = await measure(members, spawnedAt, dataDirs, logDir);
    printSummary(report);
    const resultsDir = path.join(root, 'bench', 'results');
    await mkdir(resultsDir, { recursive: true });
    const file = path.join(resultsDir, `snapshot-catchup-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    await writeFile(file, `${JSON.stringify(report, null, 2)}\n`);
    process.stdout.write(`results: ${file}${values.keep === true ? `\nwork directory (kept): ${work}` : ''}\n`);
    return 0;
  } catch (error) {
    process.stderr.write(`snapshot-catchup: ${describe(error)}\n`);
    return 1;
  } finally {
    await Promise.all(members.map((member) => stopProcess(member.process, stopGraceMs)));
    if (values.keep !== true) {
      await rm(work, { recursive: true, force: true });
      forgetDirectory(work);
    }
  }
}

process.exitCode = await main();
