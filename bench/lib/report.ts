// Rendering: the Markdown table (one row per workload, client count and target, with CPU per operation and the
// ratios against Cairn), and the issue's targets checked from the rows.
import type { TargetId } from './driver.ts';
import type { RunResult, SchedPerOp } from './runner.ts';
import type { MemoryResult } from '../seed.ts';

/** Row is one measured (or not measured) cell: a workload at a client count against one target. */
export interface Row extends RunResult {
  /**
   * settle: how long the cell waited for a quiet machine before it started (every system's members together under
   * settleDefaults.coresMax), and whether that quiet came; absent in rows of older runs and of cells not measured.
   */
  readonly settle?: { readonly waitedMs: number; readonly quiet: boolean; readonly cores: number };
  readonly workload: string;
  readonly clients: number;
  readonly target: TargetId;
  readonly member: string;
  /** round: which pass over every cell this row was measured in (1-based; --rounds). */
  readonly round: number;
}

/**
 * TargetCheck is one of the issue's targets: what it asks, the measured ratio, and whether it is met. Over several
 * rounds, the ratio is the median of the rounds' ratios (each from two cells measured one after the other), judged
 * against the target, and `ratios` holds every round's.
 */
export interface TargetCheck {
  readonly target: string;
  readonly ratio: number | null;
  readonly met: boolean | null;
  readonly detail: string;
  /** bound: the ratio the target asks for; atLeast: whether the ratio must reach it (ops) or stay under it (p99). */
  readonly bound: number;
  readonly atLeast: boolean;
  readonly ratios?: readonly number[];
  /** disturbed: a cell behind the ratio (in any round) was disturbed (see `disturbed`: busy bystanders, or no quiet start). */
  readonly disturbed?: boolean;
}

/**
 * bystanderCoresMax: above this much CPU used by the other systems' members during a cell (in cores), the cell is
 * marked disturbed. Idle clusters heartbeat: the two not under test use about 0.02-0.07 of a core together here.
 */
export const bystanderCoresMax = 0.3;

/**
 * disturbed tells whether the other systems used more than bystanderCoresMax during the row's window, or whether the
 * cell had to start before the machine was quiet (settle gave up).
 */
export function disturbed(row: Row): boolean {
  return busyBystanders(row) || row.settle?.quiet === false;
}

function busyBystanders(row: Row): boolean {
  return Number.isFinite(row.bystanderCores) && row.bystanderCores > bystanderCoresMax;
}

function disturbance(row: Row): string {
  const causes: string[] = [];
  if (busyBystanders(row)) causes.push(`the other systems used ${row.bystanderCores.toFixed(2)} cores`);
  if (row.settle?.quiet === false) causes.push(`it started after ${(row.settle.waitedMs / 1000).toFixed(1)} s without a quiet machine (${row.settle.cores.toFixed(2)} cores)`);
  return `${labels[row.target]} ${row.workload} at ${row.clients}: ${causes.join(', and ')}`;
}

const labels: Record<TargetId, string> = {
  'cairn-grpc': 'Cairn gRPC',
  'etcd-grpc': 'etcd gRPC',
  zookeeper: 'ZooKeeper',
  'cairn-http': 'Cairn HTTP (Nacos v1)',
  'etcd-http': 'etcd HTTP (JSON gateway)',
};

/** baselineOf is the Cairn target a peer row is compared with. */
function baselineOf(target: TargetId): TargetId | null {
  if (target === 'etcd-grpc' || target === 'zookeeper') return 'cairn-grpc';
  if (target === 'etcd-http') return 'cairn-http';
  return null;
}

function num(value: number, digits: number): string {
  return Number.isFinite(value) ? value.toFixed(digits) : '-';
}

function ratio(a: number, b: number): number {
  return Number.isFinite(a) && Number.isFinite(b) && b > 0 ? a / b : Number.NaN;
}

function find(rows: readonly Row[], workload: string, clients: number, target: TargetId): Row | undefined {
  return rows.find((row) => row.workload === workload && row.clients === clients && row.target === target && row.status === 'ok' && row.ops > 0);
}

function closestClients(rows: readonly Row[], workload: string, wanted: number): number | null {
  const counts = [...new Set(rows.filter((row) => row.workload === workload).map((row) => row.clients))];
  if (counts.length === 0) return null;
  return counts.sort((a, b) => Math.abs(a - wanted) - Math.abs(b - wanted) || a - b)[0] ?? null;
}

/** checkTargets evaluates the issue's targets on the rows (at the client count asked, else the closest measured). */
export function checkTargets(rows: readonly Row[]): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const compare = (name: string, workload: string, clients: number, peer: TargetId, metric: 'ops' | 'p99', bound: number): void => {
    const at = closestClients(rows, workload, clients);
    const cairn = at === null ? undefined : find(rows, workload, at, 'cairn-grpc');
    const other = at === null ? undefined : find(rows, workload, at, peer);
    if (cairn === undefined || other === undefined) {
      checks.push({ target: name, ratio: null, met: null, bound, atLeast: metric === 'ops', detail: `not measured (${cairn === undefined ? 'Cairn' : labels[peer]} has no result${at === null ? '' : ` at ${at} clients`})` });
      return;
    }
    const value = metric === 'ops' ? ratio(cairn.opsPerSecond, other.opsPerSecond) : ratio(cairn.p99Ms, other.p99Ms);
    const met = metric === 'ops' ? value >= bound : value <= bound;
    const measuredDetail = metric === 'ops'
      ? `${at} clients: ${num(cairn.opsPerSecond, 0)} vs ${num(other.opsPerSecond, 0)} ops/s`
      : `${at} clients: p99 ${num(cairn.p99Ms, 2)} vs ${num(other.p99Ms, 2)} ms`;
    const spoiled = [cairn, other].filter(disturbed);
    const detail = spoiled.length === 0 ? measuredDetail : `${measuredDetail}; DISTURBED (${spoiled.map(disturbance).join('; ')})`;
    checks.push({ target: name, ratio: Number.isFinite(value) ? Number(value.toFixed(3)) : null, met, bound, atLeast: metric === 'ops', detail, ...(spoiled.length > 0 ? { disturbed: true } : {}) });
  };
  compare('register throughput at 64 clients >= 1.0x etcd put', 'register', 64, 'etcd-grpc', 'ops', 1.0);
  compare('register throughput at 64 clients >= 1.0x ZooKeeper create', 'register', 64, 'zookeeper', 'ops', 1.0);
  compare('register p99 at 1 client <= 1.2x etcd', 'register', 1, 'etcd-grpc', 'p99', 1.2);
  compare('linearizable list of 100 >= 1.0x etcd linearizable range (64 clients)', 'list', 64, 'etcd-grpc', 'ops', 1.0);
  compare('local list of 100 >= 1.0x ZooKeeper getChildren (64 clients)', 'list-local', 64, 'zookeeper', 'ops', 1.0);
  compare('change-to-notification p99 <= etcd watch p99 (1 client)', 'notify', 1, 'etcd-grpc', 'p99', 1.0);
  return checks;
}

/** median of a non-empty list (the mean of the middle two for an even count). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** finiteMedian is the median of the finite values, NaN when there is none (rows of older runs lack bystanderCores). */
function finiteMedian(values: readonly (number | undefined)[]): number {
  const finite = values.filter((value): value is number => value !== undefined && Number.isFinite(value));
  return finite.length === 0 ? Number.NaN : median(finite);
}

/** foldedSettle: the longest wait of the rounds, quiet only if every round started quiet; nothing for older rows. */
function foldedSettle(rows: readonly Row[]): Pick<Row, 'settle'> {
  const settles = rows.flatMap((row) => (row.settle === undefined ? [] : [row.settle]));
  if (settles.length === 0) return {};
  return { settle: { waitedMs: Math.max(...settles.map((s) => s.waitedMs)), quiet: settles.every((s) => s.quiet), cores: Math.max(...settles.map((s) => s.cores)) } };
}

/** roundsOf lists the rounds present in the rows, in order. */
function roundsOf(rows: readonly Row[]): number[] {
  return [...new Set(rows.map((row) => row.round))].sort((a, b) => a - b);
}

/** foldedSched is the median of each round's scheduler figures, or nothing when no round has them (older runs). */
function foldedSched(ok: readonly Row[], memberCount: number): { sched?: SchedPerOp } {
  const withSched = ok.filter((row) => row.sched !== undefined);
  if (withSched.length === 0) return {};
  const of = (pick: (sched: SchedPerOp) => number | undefined): number => finiteMedian(withSched.map((row) => pick(row.sched!)));
  return {
    sched: {
      clientWaitUs: of((sched) => sched.clientWaitUs),
      membersWaitUs: Array.from({ length: memberCount }, (_unused, i) => of((sched) => sched.membersWaitUs[i])),
      membersWaitTotalUs: of((sched) => sched.membersWaitTotalUs),
      clientSlices: of((sched) => sched.clientSlices),
      membersSlices: Array.from({ length: memberCount }, (_unused, i) => of((sched) => sched.membersSlices[i])),
      clientMainWaitUs: of((sched) => sched.clientMainWaitUs),
      membersMainWaitUs: Array.from({ length: memberCount }, (_unused, i) => of((sched) => sched.membersMainWaitUs?.[i])),
      clientMainSlices: of((sched) => sched.clientMainSlices),
      membersMainSlices: Array.from({ length: memberCount }, (_unused, i) => of((sched) => sched.membersMainSlices?.[i])),
    },
  };
}

/**
 * medianRows folds the rounds of each cell (workload, clients, target) into one row: the median of each figure over
 * the rounds that measured it (ops/s, p50, p99, max, CPU per op of the client and of each member), errors and
 * operations summed, exhausted when any round was. A cell no round measured keeps its first round's row. Rows of a
 * single round are returned as they are. Cells keep the order of their first appearance.
 */
export function medianRows(rows: readonly Row[]): Row[] {
  if (roundsOf(rows).length <= 1) return [...rows];
  const cells = new Map<string, Row[]>();
  for (const row of rows) {
    const key = `${row.workload}|${row.clients}|${row.target}`;
    const cell = cells.get(key);
    if (cell === undefined) cells.set(key, [row]);
    else cell.push(row);
  }
  const folded: Row[] = [];
  for (const cell of cells.values()) {
    const ok = cell.filter((row) => row.status === 'ok' && row.ops > 0);
    const first = cell[0]!;
    if (ok.length === 0) {
      folded.push(first);
      continue;
    }
    const of = (pick: (row: Row) => number): number => median(ok.map(pick));
    const memberCount = Math.min(...ok.map((row) => row.cpu.membersUs.length));
    const membersUs = Array.from({ length: memberCount }, (_unused, i) => of((row) => row.cpu.membersUs[i]!));
    folded.push({
      ...ok[0]!,
      ops: ok.reduce((sum, row) => sum + row.ops, 0),
      errors: ok.reduce((sum, row) => sum + row.errors, 0),
      seconds: ok.reduce((sum, row) => sum + row.seconds, 0),
      opsPerSecond: of((row) => row.opsPerSecond),
      p50Ms: of((row) => row.p50Ms),
      p99Ms: of((row) => row.p99Ms),
      maxMs: of((row) => row.maxMs),
      cpu: { clientUs: of((row) => row.cpu.clientUs), membersUs, membersTotalUs: of((row) => row.cpu.membersTotalUs) },
      exhausted: ok.some((row) => row.exhausted),
      bystanderCores: finiteMedian(ok.map((row) => row.bystanderCores)),
      ...foldedSettle(ok),
      ...foldedSched(ok, memberCount),
    });
  }
  return folded;
}

/**
 * checkTargetsOverRounds checks every target in each round alone (its two cells were measured one after the other,
 * so a slow phase of the machine touches both) and reports, per target, the median of the rounds' ratios, judged
 * against the target, with every round's ratio and the range in the detail. One round: checkTargets.
 */
export function checkTargetsOverRounds(rows: readonly Row[]): TargetCheck[] {
  const rounds = roundsOf(rows);
  if (rounds.length <= 1) return checkTargets(rows);
  const perRound = rounds.map((round) => checkTargets(rows.filter((row) => row.round === round)));
  return perRound[0]!.map((first, index) => {
    const checks = perRound.map((checks) => checks[index]!);
    const measured = checks.filter((check) => check.ratio !== null);
    if (measured.length === 0) return first;
    const ratios = measured.map((check) => check.ratio!);
    const value = Number(median(ratios).toFixed(3));
    const met = first.atLeast ? value >= first.bound : value <= first.bound;
    const range = `${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)}x`;
    const closest = measured.reduce((best, check) => (Math.abs(check.ratio! - value) < Math.abs(best.ratio! - value) ? check : best));
    const spoiledRounds = rounds.filter((_round, i) => checks[i]!.disturbed === true);
    const spoiledNote = spoiledRounds.length === 0 ? '' : `; DISTURBED in round ${spoiledRounds.join(', ')} (the other systems were busy)`;
    return {
      target: first.target, ratio: value, met, bound: first.bound, atLeast: first.atLeast, ratios,
      detail: `median of ${ratios.length} rounds (${ratios.map((r) => `${r.toFixed(2)}x`).join(', ')}; range ${range}); round nearest the median: ${closest.detail}${spoiledNote}`,
      ...(spoiledRounds.length > 0 ? { disturbed: true } : {}),
    };
  });
}

/** decodedRecordsNote heads a report run with --decode-records: its etcd and ZooKeeper list rows are not the default ones. */
export const decodedRecordsNote = 'Records decoded (--decode-records): the etcd and ZooKeeper rows of list and list-local include decoding every record they return into an object (etcd: the value\'s JSON; ZooKeeper: the child name, URL-decoded, then JSON), as Cairn\'s rows always do; the targets below are judged on those rows, so they are not the issue\'s range-alone and getChildren-alone comparisons.';

/** renderReport renders the results as Markdown and returns the target checks with it. */
export function renderReport(allRows: readonly Row[], memory: readonly MemoryResult[], meta: { date: string; machine: Record<string, unknown>; versions: Record<string, unknown>; options: Record<string, unknown> }): { markdown: string; targets: TargetCheck[] } {
  const rows = medianRows(allRows);
  const lines: string[] = [];
  const m = meta.machine;
  lines.push(`Run of ${meta.date} on ${String(m['hostname'])}: ${String(m['cpus'])} x ${String(m['cpuModel'])}, ${String(m['memoryGiB'])} GiB, Linux ${String(m['kernel'])}, Node ${String(m['node'])}; ` +
    `etcd ${String(meta.versions['etcd'])}, ZooKeeper ${String(meta.versions['zookeeper'])}; ${JSON.stringify(meta.options)}`);
  lines.push('');
  lines.push('CPU per op: microseconds of CPU (utime+stime from /proc) per operation, for the bench client process and for each of the three members in order (the JSON field `member` names the member every client talks to: the leader, unless --via follower; `spread` under --via spread, every member in turn).');
  lines.push('Run-queue wait per op: microseconds the threads of the client and of the three members were ready to run but waiting for a CPU (/proc/<pid>/task/*/schedstat), the client first, then Σ over the members: the share of a latency spent waiting for a core rather than working.');
  lines.push('Ratios are Cairn ÷ this row (gRPC and ZooKeeper rows against Cairn gRPC, HTTP rows against Cairn HTTP): ops ratio > 1 and p99 ratio < 1 favour Cairn.');
  const rounds = roundsOf(allRows).length;
  if (meta.options['decodeRecords'] === true) lines.push(decodedRecordsNote);
  if (rounds > 1) lines.push(`Rounds: ${rounds}. Each row is the median of its cell's ${rounds} rounds (errors summed); each target's ratio is the median of the ratios of the rounds, each taken between two cells of one round (the JSON keeps every round's rows).`);
  lines.push('');
  lines.push('| workload | clients | target | ops/s | p50 ms | p99 ms | errors | CPU µs/op client | CPU µs/op members | run-queue wait µs/op client, Σ members | Cairn÷this ops | Cairn÷this p99 |');
  lines.push('|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const row of rows) {
    if (row.status !== 'ok') {
      lines.push(`| ${row.workload} | ${row.clients} | ${labels[row.target]} | not measured: ${row.reason ?? ''} | | | | | | | | |`);
      continue;
    }
    const base = baselineOf(row.target);
    const cairn = base === null ? undefined : find(rows, row.workload, row.clients, base);
    const members = row.cpu.membersUs.map((us) => num(us, 0)).join(' / ');
    const opsRatio = cairn === undefined ? '' : `${num(ratio(cairn.opsPerSecond, row.opsPerSecond), 2)}x`;
    const p99Ratio = cairn === undefined ? '' : `${num(ratio(cairn.p99Ms, row.p99Ms), 2)}x`;
    const suffix = row.exhausted ? ' (pool exhausted)' : '';
    const wait = row.sched === undefined ? '-' : `${num(row.sched.clientWaitUs, 0)}, Σ ${num(row.sched.membersWaitTotalUs, 0)}`;
    lines.push(`| ${row.workload} | ${row.clients} | ${labels[row.target]} | ${num(row.opsPerSecond, 0)}${suffix} | ${num(row.p50Ms, 2)} | ${num(row.p99Ms, 2)} | ${row.errors} | ${num(row.cpu.clientUs, 0)} | ${members} (Σ ${num(row.cpu.membersTotalUs, 0)}) | ${wait} | ${opsRatio} | ${p99Ratio} |`);
  }
  const spoiled = rows.filter((row) => row.status === 'ok' && disturbed(row));
  if (spoiled.length > 0) {
    lines.push('');
    lines.push(`Disturbed cells (the systems not under test used more than ${bystanderCoresMax} of a core while they ran, or the machine was not quiet when they started, so they measured a busier machine; JSON fields \`bystanderCores\`, \`settle\`): ${spoiled.map(disturbance).join('; ')}.`);
  }
  const targets = checkTargetsOverRounds(allRows);
  lines.push('');
  lines.push('| target | Cairn÷peer | met | detail |');
  lines.push('|---|---|---|---|');
  for (const check of targets) lines.push(`| ${check.target} | ${check.ratio === null ? '-' : `${check.ratio.toFixed(2)}x`} | ${check.met === null ? 'n/a' : check.met ? 'yes' : 'NO'} | ${check.detail} |`);
  if (memory.length > 0) {
    lines.push('');
    lines.push('| persistent instances | seeding (offline) s | restart until health 200 s | RSS MiB | RSS of an empty member MiB | bytes per instance | data dir MiB |');
    lines.push('|---|---|---|---|---|---|---|');
    for (const row of memory) {
      if (row.status !== 'ok') {
        lines.push(`| ${row.instances} | not measured: ${row.reason ?? ''} | | | | | |`);
        continue;
      }
      lines.push(`| ${row.instances} | ${num(row.seedSeconds, 1)} | ${num(row.restartSeconds, 2)} | ${num(row.rssBytes / 2 ** 20, 0)} | ${num(row.emptyRssBytes / 2 ** 20, 0)} | ${num(row.bytesPerInstance, 0)} | ${num(row.dataDirBytes / 2 ** 20, 0)} |`);
    }
  }
  return { markdown: lines.join('\n'), targets };
}
