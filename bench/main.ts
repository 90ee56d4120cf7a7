// bench/main.ts: Cairn against etcd and ZooKeeper on the same machine, in the same run (issue 7).
//
//   npm run bench -- [--vs etcd,zookeeper] [--workload register,list,beat,...] [--clients N[,N...]] [--duration S]
//                    [--quick] [--api grpc,http] [--via leader|follower|spread] [--memory-sizes 100000,1000000] [--profile DIR] [--warmup S]
//                    [--tail-duration S] [--rounds N]
//
// Starts a 3-member Cairn cluster and 3-member etcd and ZooKeeper clusters on loopback (installing Debian's
// etcd-server and zookeeper when missing), runs each workload with closed-loop clients against each target (all
// clients talk to the current leader of their system), prints a Markdown table with the Cairn/etcd and
// Cairn/ZooKeeper ratios and CPU per operation, writes bench/results/<time>.json, and stops every process it started
// (also on failure and Ctrl-C). Workloads: register, deregister, list (linearizable), list-local, get, beat
// (ephemeral register with keep-alives), notify (change-to-notification latency), memory (Cairn's RSS per instance
// and restart time on an offline-seeded data directory, bench/seed.ts). bench/README.md explains every choice.
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CairnGrpc, CairnHttp } from './lib/cairn.ts';
import { cairnGrpcAddress, cairnSnapshotEvents, profileCairnMembers, findEtcd, findZooKeeperClasspath, installPeers, startCairn, startEtcd, startZooKeeper, type RunningCluster } from './lib/clusters.ts';
import { listSlot, registerSlot, type Driver, type Slot, type TargetId } from './lib/driver.ts';
import { EtcdGrpc, EtcdHttp } from './lib/etcd.ts';
import { describe, forgetDirectory, runningCount, trackDirectory } from './lib/processes.ts';
import { Exhausted, NotMeasured, runClosedLoop, settle, type RunResult } from './lib/runner.ts';
import { renderReport, type Row } from './lib/report.ts';
import { measureMemory, type MemoryResult } from './seed.ts';
import { SpreadDriver } from './lib/spread.ts';
import { SystemWatch } from './lib/system-watch.ts';
import { ZooKeeperTarget } from './lib/zookeeper.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** workloadNames are every workload, in the order they run. */
export const workloadNames = ['register', 'deregister', 'list', 'list-local', 'get', 'beat', 'notify', 'memory'] as const;
export type WorkloadName = (typeof workloadNames)[number];

/** registerServices is how many services the register workload spreads over (Cairn holds 2 000 instances per service). */
const registerServicesFull = 100;
const registerServicesQuick = 16;
const instancesPerServiceMax = 2000;
const listSize = 100;
/**
 * tailWorkloads are the workloads whose p99 at 1 client is a target (register, change-to-notification). A p99 over
 * the ~2 000 writes of a 3-5 s cell is its ~20 slowest writes, and moved by 2x between runs (etcd's register p99: 3.3
 * to 8 ms), so their 1-client cells run at least --tail-duration seconds (15 s: ~5 000-11 000 operations).
 */
const tailWorkloads: ReadonlySet<WorkloadName> = new Set(['register', 'notify']);
/** roundsMax bounds --rounds (the run's length, and the register services prepared: registerServices per round). */
const roundsMax = 20;

interface Options {
  readonly vs: ReadonlyArray<'etcd' | 'zookeeper'>;
  readonly workloads: readonly WorkloadName[];
  readonly clients: readonly number[];
  readonly durationMs: number;
  /** tailDurationMs: the least a 1-client cell of a tailWorkloads workload measures (see tailWorkloads). */
  readonly tailDurationMs: number;
  readonly warmupMs: number;
  /** systemWarmupMs: before the first cell, each target runs register, deregister and list unmeasured (JIT warm-up). */
  readonly systemWarmupMs: number;
  readonly quick: boolean;
  readonly apis: ReadonlyArray<'grpc' | 'http'>;
  /**
   * via: the member every client talks to, each system's leader or the member after it in start order (a follower),
   * or all of them in turn (spread, bench/lib/spread.ts).
   */
  readonly via: 'leader' | 'follower' | 'spread';
  readonly memorySizes: readonly number[];
  readonly resultsDir: string;
  readonly cairnHosts: readonly string[];
  readonly cairnPort: number;
  readonly etcdHosts: readonly string[];
  readonly zkHosts: readonly string[];
  readonly memoryAddr: string;
  readonly registerServices: number;
  /** rounds: passes over every cell; rows and target ratios are reported as medians over them (report.ts). */
  readonly rounds: number;
  /** decodeRecords: etcd's and ZooKeeper's lists decode every record they return, as Cairn's clients always do. */
  readonly decodeRecords: boolean;
}

function list(text: string): string[] {
  return text.split(',').map((part) => part.trim()).filter((part) => part !== '');
}

const usage = `usage: npm run bench -- [options]
  --vs etcd,zookeeper|none   systems to compare with (default: etcd,zookeeper)
  --workload W[,W...]        ${workloadNames.join(', ')} (default: all; --quick: all but memory)
  --clients N[,N...]         closed-loop clients per cell, 1..1024 (default: 1,16,64,256; --quick: 16)
  --api grpc,http            Cairn and etcd client families (default: both)
  --via leader|follower|spread  the member every client talks to: each system's leader (default), a follower (so
                             that every write is forwarded to the leader), or every member in turn, request by
                             request, as Nacos and etcd clients spread them (register, deregister, list, get only)
  --duration S               measured seconds per cell (default: 5; --quick: 1.5)
  --tail-duration S          measured seconds of the 1-client register and notify cells (default: 15; --quick: 0)
  --warmup S                 unmeasured warm-up per system before the first cell (default: 5; --quick: 1)
  --memory-sizes N[,N...]    instances for the memory and restart workload (default: 100000,1000000)
  --results-dir DIR          where the JSON goes (default: bench/results)
  --profile DIR              run every Cairn member under node --cpu-prof, profiles into DIR
  --rounds N                 pass over every cell N times, 1..20 (default 1); the table shows each cell's median and
                             each target the median of its per-round ratios (robust to a slow phase of the machine)
  --decode-records           etcd's and ZooKeeper's lists decode every record they return into an object (etcd: the
                             value's JSON; ZooKeeper: the child name, URL-decoded, then JSON), as Cairn's clients
                             always do and as any consumer must before it uses an instance (default: they count them)
  --quick                    every workload but memory in about 80 s
  --cairn-hosts, --cairn-port, --memory-addr   where Cairn's members listen (defaults in bench/README.md)
See bench/README.md for what each workload measures.
`;

/** UsageError is a bad command line: printed with the usage, exit code 2, no stack. */
class UsageError extends Error {}

function parseOptions(argv: readonly string[]): Options | null {
  const { values } = parseArgsOrUsage(argv);
  if (values.help === true) return null;
  return optionsOf(values);
}

function parseArgsOrUsage(argv: readonly string[]): ReturnType<typeof parseBenchArgs> {
  try {
    return parseBenchArgs(argv);
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
}

function parseBenchArgs(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    options: {
      vs: { type: 'string' }, workload: { type: 'string' }, clients: { type: 'string' }, duration: { type: 'string' },
      quick: { type: 'boolean' }, api: { type: 'string' }, 'memory-sizes': { type: 'string' }, 'results-dir': { type: 'string' },
      'cairn-hosts': { type: 'string' }, 'cairn-port': { type: 'string' }, 'memory-addr': { type: 'string' }, profile: { type: 'string' },
      warmup: { type: 'string' }, 'tail-duration': { type: 'string' }, rounds: { type: 'string' }, via: { type: 'string' }, 'decode-records': { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
}

function optionsOf(values: ReturnType<typeof parseBenchArgs>['values']): Options {
  const quick = values.quick === true;
  // --profile DIR: every Cairn member runs under `node --cpu-prof` and writes its profile into DIR when it stops.
  if (values.profile !== undefined) profileCairnMembers(path.resolve(values.profile));
  const vs = list(values.vs ?? 'etcd,zookeeper').filter((name) => name !== 'none');
  for (const name of vs) if (name !== 'etcd' && name !== 'zookeeper') throw new UsageError(`--vs: unknown system '${name}' (etcd, zookeeper, none)`);
  const workloads = list(values.workload ?? (quick ? workloadNames.filter((w) => w !== 'memory').join(',') : workloadNames.join(',')));
  for (const name of workloads) if (!(workloadNames as readonly string[]).includes(name)) throw new UsageError(`--workload: unknown '${name}' (${workloadNames.join(', ')})`);
  const clients = list(values.clients ?? (quick ? '16' : '1,16,64,256')).map(Number);
  for (const c of clients) if (!Number.isInteger(c) || c < 1 || c > 1024) throw new UsageError(`--clients: ${c} is not an integer in 1..1024`);
  const duration = Number(values.duration ?? (quick ? '1.5' : '5'));
  if (!(duration > 0 && duration <= 600)) throw new UsageError('--duration: seconds in (0, 600]');
  // --quick keeps its short cells: it checks that everything runs, not the tail.
  const tailDuration = Number(values['tail-duration'] ?? (quick ? '0' : '15'));
  if (!(tailDuration >= 0 && tailDuration <= 600)) throw new UsageError('--tail-duration: seconds in [0, 600]');
  const systemWarmup = Number(values.warmup ?? (quick ? '1' : '5'));
  if (!(systemWarmup >= 0 && systemWarmup <= 600)) throw new UsageError('--warmup: seconds in [0, 600]');
  const rounds = Number(values.rounds ?? '1');
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > roundsMax) throw new UsageError(`--rounds: an integer in 1..${roundsMax}`);
  const apis = list(values.api ?? 'grpc,http');
  for (const api of apis) if (api !== 'grpc' && api !== 'http') throw new UsageError(`--api: unknown '${api}'`);
  const via = values.via ?? 'leader';
  if (via !== 'leader' && via !== 'follower' && via !== 'spread') throw new UsageError(`--via: unknown '${via}' (leader, follower, spread)`);
  const memorySizes = list(values['memory-sizes'] ?? (quick ? '20000' : '100000,1000000')).map(Number);
  const cairnHosts = list(values['cairn-hosts'] ?? '127.0.2.41,127.0.2.42,127.0.2.43');
  return {
    vs: vs as Array<'etcd' | 'zookeeper'>,
    workloads: workloads as WorkloadName[],
    clients,
    durationMs: duration * 1000,
    tailDurationMs: tailDuration * 1000,
    warmupMs: Math.min(1000, duration * 200),
    systemWarmupMs: systemWarmup * 1000,
    quick,
    apis: apis as Array<'grpc' | 'http'>,
    via,
    memorySizes,
    resultsDir: path.resolve(values['results-dir'] ?? path.join(root, 'bench', 'results')),
    cairnHosts,
    cairnPort: Number(values['cairn-port'] ?? '18848'),
    etcdHosts: ['127.0.2.51', '127.0.2.52', '127.0.2.53'],
    zkHosts: ['127.0.2.61', '127.0.2.62', '127.0.2.63'],
    memoryAddr: values['memory-addr'] ?? '127.0.2.45:18848',
    // Registration slots are never reused (a deregistered one too), so each round gets its own services' worth.
    registerServices: (quick ? registerServicesQuick : registerServicesFull) * rounds,
    rounds,
    decodeRecords: values['decode-records'] === true,
  };
}

/** Target is a driver with the cluster it measures and its per-run state. */
interface Target {
  readonly driver: Driver;
  readonly cluster: RunningCluster;
  /** member is the index of the member its clients talk to: the leader, or a follower under --via follower; -1 under --via spread. */
  readonly member: number;
  /** registered holds, per client count, the instances its register run created: its deregister run removes them. */
  readonly registered: Map<number, Slot[]>;
  nextRegister: number;
  nextEphemeral: number;
}

/** stopDebianServices stops a packaged etcd / ZooKeeper service the install may have started (ports 2379 / 2181 on 127.0.0.1). */
function stopDebianServices(): string[] {
  const notes: string[] = [];
  let listening = '';
  try {
    listening = execFileSync('ss', ['-ltnpH'], { encoding: 'utf8' });
  } catch {
    return notes;
  }
  for (const [port, service] of [['2379', 'etcd'], ['2181', 'zookeeper']] as const) {
    if (!new RegExp(`127\\.0\\.0\\.1:${port}\\s|\\*:${port}\\s|0\\.0\\.0\\.0:${port}\\s`).test(listening)) continue;
    for (const command of [['systemctl', 'stop', service], [`/etc/init.d/${service}`, 'stop']]) {
      try {
        execFileSync(command[0] ?? '', command.slice(1), { stdio: 'ignore', timeout: 30_000 });
        notes.push(`stopped the packaged ${service} service (${command.join(' ')})`);
        break;
      } catch {
        // Try the next way.
      }
    }
  }
  return notes;
}

function toolVersion(command: string, args: readonly string[]): string {
  try {
    return execFileSync(command, args, { encoding: 'utf8', timeout: 10_000 }).split('\n')[0]?.trim() ?? '';
  } catch {
    return 'unknown';
  }
}

function machine(): Record<string, unknown> {
  const cpus = os.cpus();
  return {
    hostname: os.hostname(), cpus: cpus.length, cpuModel: cpus[0]?.model ?? 'unknown', memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: os.release(), node: process.version, loadAverage: os.loadavg().map((value) => Number(value.toFixed(2))),
  };
}

/** cellDurationMs is how long one cell measures: --duration, or at least --tail-duration for a 1-client tail cell. */
function cellDurationMs(workload: WorkloadName, clients: number, options: Options): number {
  return clients === 1 && tailWorkloads.has(workload) ? Math.max(options.durationMs, options.tailDurationMs) : options.durationMs;
}

async function runWorkload(workload: WorkloadName, target: Target, clients: number, options: Options, bystanders: readonly RunningCluster[]): Promise<RunResult> {
  const memberPids = target.cluster.members.map((member) => member.process.pid);
  const bystanderPids = bystanders.filter((cluster) => cluster !== target.cluster).flatMap((cluster) => cluster.members.map((member) => member.process.pid));
  const closedLoop = (operation: (client: number) => Promise<number | void>): Promise<RunResult> =>
    runClosedLoop(operation, { clients, durationMs: cellDurationMs(workload, clients, options), warmupMs: options.warmupMs, memberPids, bystanderPids });
  // Cairn's cells also count the snapshot events of their window: a follower sent a whole-registry image would make
  // the cell no steady state, and the counters say so (etcd and ZooKeeper keep no such counter the bench reads).
  const run = target.cluster.system !== 'cairn' ? closedLoop : async (operation: (client: number) => Promise<number | void>): Promise<RunResult> => {
    const addrs = target.cluster.members.map((member) => member.client);
    const before = await cairnSnapshotEvents(addrs);
    const result = await closedLoop(operation);
    const after = await cairnSnapshotEvents(addrs);
    const snapshots = before === null || after === null ? null : {
      compacted: after.compacted - before.compacted, imagesEncoded: after.imagesEncoded - before.imagesEncoded, installed: after.installed - before.installed,
    };
    return { ...result, snapshots };
  };
  const capacity = options.registerServices * instancesPerServiceMax;
  switch (workload) {
    case 'register': {
      const pool: Slot[] = target.registered.get(clients) ?? [];
      target.registered.set(clients, pool);
      return run(async () => {
        const n = target.nextRegister++;
        if (n >= capacity) throw new Exhausted(`every register service holds ${instancesPerServiceMax} instances`);
        const slot = registerSlot(n, options.registerServices);
        await target.driver.register(slot);
        pool.push(slot);
      });
    }
    case 'deregister': {
      const pool = target.registered.get(clients) ?? [];
      return run(async () => {
        const slot = pool.pop();
        if (slot === undefined) throw new Exhausted('no registered instance left to remove');
        await target.driver.deregister(slot);
      });
    }
    case 'list':
    case 'list-local':
      return run(async () => {
        const count = await target.driver.list(workload === 'list' ? 'linearizable' : 'local');
        if (count !== listSize) throw new Error(`list returned ${count} instances, expected ${listSize}`);
      });
    case 'get': {
      let next = 0;
      return run(async () => target.driver.get(listSlot(next++ % listSize), 'linearizable'));
    }
    case 'beat': {
      let pool;
      try {
        pool = await target.driver.openEphemeral(clients);
      } catch (error) {
        if (error instanceof NotMeasured) return notMeasured(error.message);
        throw error;
      }
      try {
        return await run(async (client) => {
          const n = target.nextEphemeral++;
          await pool.register(client, { service: n, ip: `127.${100 + ((n >> 16) & 0x7f)}.${(n >> 8) & 255}.${n & 255}`, port: 8081 });
        });
      } finally {
        await pool.close();
      }
    }
    case 'notify': {
      const pairs = await target.driver.openNotify(clients);
      try {
        return await run((client) => pairs.change(client));
      } finally {
        await pairs.close();
      }
    }
    case 'memory':
      throw new Error('memory is not a per-target workload');
  }
}

/**
 * warmUp runs register, then deregister of what it registered, then local and linearizable lists, on one target at
 * 16 clients for `ms` in all, measuring nothing. Cairn (V8) and ZooKeeper (the JVM) compile their hot paths while
 * they run: without it the first cells (register at 1 client) measured code the JIT had not optimized yet, which etcd
 * (compiled ahead of time) never pays. Each cell still has its own short warm-up (warmupMs).
 */
async function warmUp(target: Target, ms: number, services: number): Promise<void> {
  if (ms <= 0) return;
  const clients = 16;
  const phase = (share: number): { clients: number; durationMs: number; warmupMs: number; memberPids: readonly number[] } =>
    ({ clients, durationMs: Math.max(1, Math.round(ms * share)), warmupMs: 0, memberPids: [] });
  const registered: Slot[] = [];
  await runClosedLoop(async () => {
    const slot = registerSlot(target.nextRegister++, services);
    await target.driver.register(slot);
    registered.push(slot);
  }, phase(0.4));
  // Bounded by what the register phase added (an empty pool ends the phase early).
  await runClosedLoop(async () => {
    const slot = registered.pop();
    if (slot === undefined) throw new Exhausted('warm-up: nothing left to remove');
    await target.driver.deregister(slot);
  }, phase(0.3));
  let next = 0;
  await runClosedLoop(async () => {
    const count = await target.driver.list(next++ % 2 === 0 ? 'local' : 'linearizable');
    if (count !== listSize) throw new Error(`warm-up: list returned ${count} instances, expected ${listSize}`);
  }, phase(0.3));
}

function notMeasured(reason: string): RunResult {
  return {
    status: 'not-measured', reason, ops: 0, errors: 0, errorSamples: {}, seconds: 0, opsPerSecond: Number.NaN, p50Ms: Number.NaN, p99Ms: Number.NaN,
    maxMs: Number.NaN, cpu: { clientUs: Number.NaN, membersUs: [], membersTotalUs: Number.NaN }, exhausted: false, bystanderCores: Number.NaN,
  };
}

/** zookeeperApplies tells whether ZooKeeper takes part in a workload at all (it has no linearizable read here). */
function applies(workload: WorkloadName, id: TargetId): string | null {
  if (id === 'zookeeper' && (workload === 'list' || workload === 'get')) return 'ZooKeeper reads are local to the server (no sync() in node-zookeeper-client): compared in list-local';
  if ((id === 'cairn-http' || id === 'etcd-http') && workload === 'notify') return 'the notification workload compares gRPC streams';
  return null;
}

async function main(): Promise<number> {
  let parsed: Options | null;
  try {
    parsed = parseOptions(process.argv.slice(2));
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`bench: ${error.message}\n${usage}`);
    return 2;
  }
  if (parsed === null) {
    process.stdout.write(usage);
    return 0;
  }
  const options = parsed;
  const startedAt = new Date();
  const notes: string[] = [];
  const wallStart = performance.now();
  let etcdBinary = options.vs.includes('etcd') ? findEtcd() : null;
  let zkClasspath = options.vs.includes('zookeeper') ? findZooKeeperClasspath() : null;
  if ((options.vs.includes('etcd') && etcdBinary === null) || (options.vs.includes('zookeeper') && zkClasspath === null)) {
    process.stderr.write('bench: installing etcd-server and zookeeper with apt-get\n');
    notes.push(`apt-get install -y etcd-server zookeeper: ${installPeers()}`);
    etcdBinary = options.vs.includes('etcd') ? findEtcd() : null;
    zkClasspath = options.vs.includes('zookeeper') ? findZooKeeperClasspath() : null;
  }
  notes.push(...stopDebianServices());
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'cairn-bench-'));
  trackDirectory(tmp);
  const logDir = path.join(tmp, 'logs');
  await mkdir(logDir, { recursive: true });
  const clusters: RunningCluster[] = [];
  const drivers: Driver[] = [];
  const rows: Row[] = [];
  let memory: MemoryResult[] = [];
  const runWorkloads = options.workloads.filter((w) => w !== 'memory');
  let failure: unknown = null;
  try {
    const targets: Target[] = [];
    if (runWorkloads.length > 0) {
      const cairnAddrs = options.cairnHosts.map((host) => `${host}:${options.cairnPort}`);
      const cairn = await startCairn(root, cairnAddrs, tmp, logDir);
      clusters.push(cairn);
      const etcd = etcdBinary === null ? null : await startEtcd(etcdBinary, options.etcdHosts, tmp, logDir);
      if (etcd !== null) clusters.push(etcd);
      const zk = zkClasspath === null ? null : await startZooKeeper(zkClasspath, options.zkHosts, tmp, logDir);
      if (zk !== null) clusters.push(zk);
      const maxClients = Math.max(...options.clients);
      const add = (driver: Driver, cluster: RunningCluster, member: number): void => {
        drivers.push(driver);
        targets.push({ driver, cluster, member, registered: new Map(), nextRegister: 0, nextEphemeral: 0 });
      };
      // --via follower: every client of a system talks to the member after its leader (so a write is forwarded);
      // --via spread: to every member in turn (spread.ts), member index -1.
      const entry = async (cluster: RunningCluster): Promise<number> => {
        if (options.via === 'spread') return -1;
        const leader = await cluster.leaderIndex();
        return options.via === 'leader' ? leader : (leader + 1) % cluster.members.length;
      };
      const reach = async (cluster: RunningCluster, open: (client: string) => Driver | Promise<Driver>): Promise<void> => {
        const member = await entry(cluster);
        const clients = member < 0 ? cluster.members.map((m) => m.client) : [cluster.members[member]?.client ?? ''];
        const opened = await Promise.all(clients.map((client) => open(client)));
        add(opened.length === 1 ? (opened[0] as Driver) : new SpreadDriver(opened), cluster, member);
      };
      if (options.apis.includes('grpc')) await reach(cairn, (addr) => new CairnGrpc(cairnGrpcAddress(addr), addr));
      if (etcd !== null && options.apis.includes('grpc')) await reach(etcd, (client) => new EtcdGrpc(client, options.decodeRecords));
      if (zk !== null) await reach(zk, (client) => ZooKeeperTarget.open(client, options.decodeRecords));
      if (options.apis.includes('http')) await reach(cairn, (addr) => new CairnHttp(addr, maxClients));
      if (etcd !== null && options.apis.includes('http')) await reach(etcd, (client) => new EtcdHttp(client, maxClients, options.decodeRecords));
      // One preparation per system: the list service of 100 and the register services (Cairn: checker NONE).
      const prepared = new Set<string>();
      for (const target of targets) {
        if (prepared.has(target.cluster.system)) continue;
        prepared.add(target.cluster.system);
        await target.driver.prepare(options.registerServices, listSize);
      }
      for (const target of targets) await warmUp(target, options.systemWarmupMs, options.registerServices);
      const watch = new SystemWatch(clusters);
      process.stderr.write(`bench: clusters up, prepared and warmed up in ${((performance.now() - wallStart) / 1000).toFixed(1)} s; clients talk to (${options.via}): ${targets.map((t) => `${t.driver.id}=${t.member < 0 ? 'every member' : (t.cluster.members[t.member]?.client ?? '?')}`).join(' ')}\n`);
      for (let round = 1; round <= options.rounds; round++) {
        for (const workload of runWorkloads) {
          for (const clients of options.clients) {
            for (const target of targets) {
              const skip = applies(workload, target.driver.id) ?? watch.stoppedReason(target.cluster.system);
              let result: RunResult;
              // Every cell starts on a quiet machine (runner.ts, settle): what a system still does after its last cell
              // is not measured in the next one, its own or another system's.
              const settled = skip === null ? await settle(watch.running().flatMap((cluster) => cluster.members.map((member) => member.process.pid))) : null;
              try {
                result = skip === null ? await runWorkload(workload, target, clients, options, watch.running()) : notMeasured(skip);
              } catch (error) {
                result = notMeasured(`failed: ${describe(error)}`);
              }
              const settleField = settled === null ? {} : { settle: { waitedMs: Math.round(settled.waitedMs), quiet: settled.quiet, cores: Number(settled.cores.toFixed(3)) } };
              const row: Row = { workload, clients, target: target.driver.id, member: target.member < 0 ? 'spread' : (target.cluster.members[target.member]?.client ?? ''), round, ...settleField, ...result };
              rows.push(row);
              const waited = settled === null || (settled.quiet && settled.waitedMs < 1000) ? '' : `; started after ${(settled.waitedMs / 1000).toFixed(1)} s${settled.quiet ? '' : ` without the quiet (${settled.cores.toFixed(2)} cores)`}`;
              const shown = row.status === 'ok'
                ? `${row.opsPerSecond.toFixed(0)} ops/s p50 ${row.p50Ms.toFixed(2)} ms p99 ${row.p99Ms.toFixed(2)} ms errors ${row.errors}${row.exhausted ? ' (pool exhausted)' : ''}${waited}`
                : `not measured: ${row.reason ?? ''}`;
              process.stderr.write(`bench: ${options.rounds > 1 ? `round ${round} ` : ''}${workload} c=${clients} ${target.driver.id}: ${shown}\n`);
              if ((row.snapshots?.imagesEncoded ?? 0) > 0 || (row.snapshots?.installed ?? 0) > 0) {
                const note = `${options.rounds > 1 ? `round ${round} ` : ''}${workload} c=${clients} ${target.driver.id}: a follower fell behind the compacted log (${row.snapshots?.imagesEncoded ?? 0} image(s) encoded, ${row.snapshots?.installed ?? 0} installed): not a steady state`;
                notes.push(note);
                process.stderr.write(`bench: ${note}\n`);
              }
              if (skip !== null) continue;
              for (const event of await watch.check(`${options.rounds > 1 ? `round ${round} ` : ''}${workload} c=${clients} ${target.driver.id}`)) {
                notes.push(`${event.system} ${event.detail}`);
                process.stderr.write(`bench: ${event.system} ${event.detail}\n`);
                // Its clients go too: a client that keeps reconnecting to a stopped system spends the bench process's CPU.
                if (event.outcome === 'stopped') {
                  for (const stopped of targets.filter((t) => t.cluster.system === event.system)) await stopped.driver.close().catch(() => undefined);
                }
              }
            }
          }
        }
      }
    }
    if (options.workloads.includes('memory')) {
      memory = await measureMemory({ root, addr: options.memoryAddr, sizes: options.memorySizes, workDir: tmp, logDir });
    }
  } catch (error) {
    failure = error;
  } finally {
    for (const driver of drivers) await driver.close().catch(() => undefined);
    for (const cluster of clusters) await cluster.stop();
  }
  const leftRunning = runningCount();
  const finishedAt = new Date();
  const report = {
    schema: 'cairn-bench/1',
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    wallSeconds: Number(((performance.now() - wallStart) / 1000).toFixed(1)),
    machine: machine(),
    versions: {
      cairn: (JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8')) as { version: string }).version,
      etcd: etcdBinary === null ? null : toolVersion(etcdBinary, ['--version']),
      zookeeper: zkClasspath === null ? null : '3.8 (Debian zookeeper package)',
    },
    options: {
      vs: options.vs, workloads: options.workloads, clients: options.clients, durationSeconds: options.durationMs / 1000,
      tailDurationSeconds: options.tailDurationMs / 1000, tailWorkloads: [...tailWorkloads], warmupSeconds: options.warmupMs / 1000,
      systemWarmupSeconds: options.systemWarmupMs / 1000, quick: options.quick, apis: options.apis, rounds: options.rounds, via: options.via, decodeRecords: options.decodeRecords,
    },
    notes,
    results: rows,
    memory,
    processesLeftRunning: leftRunning,
    pids: clusters.flatMap((cluster) => cluster.members.map((member) => ({ system: cluster.system, client: member.client, pid: member.process.pid }))),
    error: failure === null ? null : describe(failure),
  };
  const rendered = renderReport(report.results, memory, { date: finishedAt.toISOString(), machine: report.machine, versions: report.versions, options: report.options });
  process.stdout.write(`${rendered.markdown}\n`);
  (report as Record<string, unknown>)['targets'] = rendered.targets;
  await mkdir(options.resultsDir, { recursive: true });
  const file = path.join(options.resultsDir, `${finishedAt.toISOString().replace(/[:.]/g, '-')}.json`);
  await writeFile(file, `${JSON.stringify(report, (_key, value: unknown) => (typeof value === 'number' && !Number.isFinite(value) ? null : value), 2)}\n`);
  process.stdout.write(`\nresults: ${file}\n`);
  if (failure !== null) {
    process.stderr.write(`bench: failed: ${describe(failure)}\n`);
    const kept = path.join(os.tmpdir(), `cairn-bench-logs-${finishedAt.getTime()}`);
    await rm(kept, { recursive: true, force: true });
    await rename(logDir, kept).catch(() => undefined);
    process.stderr.write(`bench: member logs kept in ${kept}\n`);
  }
  await rm(tmp, { recursive: true, force: true });
  forgetDirectory(tmp);
  if (failure !== null) return 1;
  return leftRunning === 0 ? 0 : 1;
}

process.exitCode = await main();
