// bench/beats.ts: ephemeral instances at scale (issue 5). N ephemeral instances (default 100 000) registered over
// Nacos v1 HTTP across a 3-member cluster (127.0.2.31-33), each beating every interval (default 5 s: 20 000
// beats/s for 100 000), the way Java clients beat once lightBeatEnabled is on (no beat body). It reports what the
// cluster holds: beats/s offered and answered, p50/p99 beat latency, CPU per member and of the client, memory per
// instance (RSS growth per member over the registered instances: every member holds every instance), and whether
// any instance was marked unhealthy or removed (a beat that came too late).
//
//   node --import tsx bench/beats.ts [--instances 100000] [--interval-ms 5000] [--window 30] [--connections 32]
//
// Instances are spread over --services services (default 1000) and are sent to member i % 3, as clients pick any
// member; a member that is not responsible for the service forwards the beat. Their addresses are 127.x (never
// contacted: ephemeral instances are not probed). The client is one node process with undici pools; when it
// cannot offer the full rate (the 2-core machine runs the client and all three members), the table says what was
// offered, so the figure is a lower bound of what Cairn holds, not of what it needs.
import { mkdtemp, rm, writeFile, mkdir, readFile } from 'node:fs/promises';
import { tmpdir, cpus, totalmem, loadavg } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import { startCairn, type RunningCluster } from './lib/clusters.ts';
import { cpuSecondsOf, rssBytesOf, sleep, trackDirectory } from './lib/processes.ts';
import { boundedRequest } from '../test/support/http.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const addrs = ['127.0.2.31:18848', '127.0.2.32:18848', '127.0.2.33:18848'];
/** inFlightPerMemberMax bounds the requests outstanding at one member (back-pressure: the client falls behind, counted). */
const inFlightPerMemberMax = 256;

/** LatencyHistogram counts latencies in 0.1 ms buckets up to 10 s (bounded memory whatever the run length). */
class LatencyHistogram {
  private readonly buckets = new Uint32Array(100_001);
  count = 0;
  record(ms: number): void {
    this.buckets[Math.min(this.buckets.length - 1, Math.round(ms * 10))]! += 1;
    this.count += 1;
  }
  quantile(q: number): number {
    let seen = 0;
    const wanted = Math.ceil(q * this.count);
    for (let i = 0; i < this.buckets.length; i++) {
      seen += this.buckets[i]!;
      if (seen >= wanted && wanted > 0) return i / 10;
    }
    return Number.NaN;
  }
  reset(): void {
    this.buckets.fill(0);
    this.count = 0;
  }
}

interface Counters {
  offered: number;
  answered: number;
  found: number;
  notFound: number;
  failed: number;
  behind: number;
}

function instanceOf(i: number, services: number): { service: string; ip: string; port: number } {
  return { service: `beats-${i % services}`, ip: `127.${100 + ((i >> 16) & 127)}.${(i >> 8) & 255}.${i & 255}`, port: 8080 };
}

async function register(pools: readonly Pool[], count: number, services: number, onRegistered: (i: number) => void): Promise<number> {
  let next = 0;
  let failures = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      const { service, ip, port } = instanceOf(i, services);
      const pool = pools[i % pools.length]!;
      const query = `serviceName=${service}&ip=${ip}&port=${port}&ephemeral=true`;
      for (let attempt = 0; ; attempt++) {
        const response = await pool.request({ method: 'POST', path: `/nacos/v1/ns/instance?${query}` }).catch(() => null);
        const text = response === null ? '' : await response.body.text();
        if (response?.statusCode === 200) break;
        if (attempt >= 5) {
          failures += 1;
          process.stderr.write(`register ${i}: ${response?.statusCode ?? 'no answer'} ${text.slice(0, 200)}\n`);
          break;
        }
        await sleep(100 * (attempt + 1));
      }
      onRegistered(i);
    }
  };
  await Promise.all(Array.from({ length: 64 * pools.length }, worker));
  return failures;
}

/** Beater sends every registered instance a light beat every interval, spread evenly, and measures the answers. */
class Beater {
  readonly histogram = new LatencyHistogram();
  readonly counters: Counters = { offered: 0, answered: 0, found: 0, notFound: 0, failed: 0, behind: 0 };
  private readonly registered: number[] = [];
  private readonly inFlight: number[];
  private cursor = 0;
  private credit = 0;
  private timer: NodeJS.Timeout | null = null;
  private lastTick = performance.now();

  constructor(private readonly pools: readonly Pool[], private readonly services: number, private readonly intervalMs: number) {
    this.inFlight = pools.map(() => 0);
  }

  add(i: number): void {
    this.registered.push(i);
  }

  start(): void {
    this.timer = setInterval(() => this.tick(), 10);
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
  }

  private tick(): void {
    const now = performance.now();
    // Every registered instance once per interval: the rate follows the registered count.
    this.credit += ((now - this.lastTick) * this.registered.length) / this.intervalMs;
    this.lastTick = now;
    // A tick sends at most one interval's worth (a stalled event loop does not turn into a burst of everything).
    this.credit = Math.min(this.credit, this.registered.length);
    while (this.credit >= 1) {
      this.credit -= 1;
      const i = this.registered[this.cursor++ % this.registered.length]!;
      const member = i % this.pools.length;
      if (this.inFlight[member]! >= inFlightPerMemberMax) {
        this.counters.behind += 1;
        continue;
      }
      this.beat(i, member);
    }
  }

  private beat(i: number, member: number): void {
    const { service, ip, port } = instanceOf(i, this.services);
    const started = performance.now();
    this.counters.offered += 1;
    this.inFlight[member]! += 1;
    this.pools[member]!.request({ method: 'PUT', path: `/nacos/v1/ns/instance/beat?serviceName=${service}&ip=${ip}&port=${port}&clusterName=DEFAULT` })
      .then(async (response) => {
        const text = await response.body.text();
        this.histogram.record(performance.now() - started);
        this.counters.answered += 1;
        if (response.statusCode !== 200) this.counters.failed += 1;
        else if (text.includes('10200')) this.counters.found += 1;
        else this.counters.notFound += 1;
      }, () => {
        this.counters.failed += 1;
      })
      .finally(() => {
        this.inFlight[member]! -= 1;
      });
  }
}

/** machineBusyTicks reads the whole machine's busy and total CPU ticks from /proc/stat (every process, not only ours). */
async function machineTicks(): Promise<{ busy: number; total: number }> {
  const line = (await readFile('/proc/stat', 'utf8')).split('\n')[0] ?? '';
  const fields = line.trim().split(/\s+/).slice(1).map(Number);
  const total = fields.reduce((sum, value) => sum + value, 0);
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
  return { busy: total - idle, total };
}

/** ForwardCounts are a member's forwarded-request counters (GET /metrics): requests answered and batch calls. */
interface ForwardCounts {
  forwarded: number;
  batches: number;
}

async function forwardCountsOf(addr: string): Promise<ForwardCounts> {
  const { text } = await boundedRequest(addr, 'GET', '/metrics', { timeoutMs: 10_000 });
  const value = (pattern: RegExp): number => Number(pattern.exec(text)?.[1] ?? 0);
  return {
    forwarded: value(/^cairn_ap_forwards_total\{result="ok"\} (\S+)$/m),
    batches: value(/^cairn_ap_forward_batches_total\{result="sent"\} (\S+)$/m),
  };
}

async function unhealthyShare(pool: Pool, services: number): Promise<{ listed: number; unhealthy: number }> {
  let listed = 0;
  let unhealthy = 0;
  for (let s = 0; s < Math.min(services, 50); s++) {
    const response = await pool.request({ method: 'GET', path: `/nacos/v1/ns/instance/list?serviceName=beats-${s}` });
    const body = (await response.body.json()) as { hosts?: Array<{ healthy: boolean }> };
    for (const host of body.hosts ?? []) {
      listed += 1;
      if (!host.healthy) unhealthy += 1;
    }
  }
  return { listed, unhealthy };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: {
    instances: { type: 'string', default: '100000' }, 'interval-ms': { type: 'string', default: '5000' },
    window: { type: 'string', default: '30' }, connections: { type: 'string', default: '32' }, services: { type: 'string', default: '1000' },
  } });
  const instances = Number(values.instances);
  const intervalMs = Number(values['interval-ms']);
  const windowSeconds = Number(values.window);
  const services = Number(values.services);
  const dataRoot = await mkdtemp(path.join(tmpdir(), 'cairn-bench-beats-'));
  trackDirectory(dataRoot);
  const logDir = path.join(dataRoot, 'logs');
  await mkdir(logDir, { recursive: true });
  let cluster: RunningCluster | null = null;
  const pools = addrs.map((addr) => new Pool(`http://${addr}`, { connections: Number(values.connections), pipelining: 1 }));
  try {
    cluster = await startCairn(root, addrs, dataRoot, logDir);
    const pids = cluster.members.map((member) => member.process.pid);
    await sleep(2000);
    const rssBefore = await Promise.all(pids.map(rssBytesOf));
    const beater = new Beater(pools, services, intervalMs);
    beater.start();
    const registerStarted = Date.now();
    const failures = await register(pools, instances, services, (i) => beater.add(i));
    const registerSeconds = (Date.now() - registerStarted) / 1000;
    process.stderr.write(`${instances} instances registered in ${registerSeconds.toFixed(1)} s (${failures} failed); warming up\n`);
    await sleep(Math.max(intervalMs * 2, 10_000));
    const cpuBefore = await Promise.all(pids.map(cpuSecondsOf));
    const clientBefore = process.cpuUsage();
    const machineBefore = await machineTicks();
    const forwardsBefore = await Promise.all(addrs.map(forwardCountsOf));
    const countersBefore = { ...beater.counters };
    beater.histogram.reset();
    const windowStarted = performance.now();
    await sleep(windowSeconds * 1000);
    // Rates are over the window as it really lasted (a starved client's timers fire late).
    const elapsedSeconds = (performance.now() - windowStarted) / 1000;
    const cpuAfter = await Promise.all(pids.map(cpuSecondsOf));
    const clientAfter = process.cpuUsage(clientBefore);
    const machineAfter = await machineTicks();
    const load = loadavg()[0] ?? 0;
    const forwardsAfter = await Promise.all(addrs.map(forwardCountsOf));
    const rssAfter = await Promise.all(pids.map(rssBytesOf));
    // Counters as the window ended (the health sample below takes seconds while the beater keeps going).
    const counters = { ...beater.counters };
    const p50 = beater.histogram.quantile(0.5);
    const p99 = beater.histogram.quantile(0.99);
    const delta = (key: keyof Counters): number => (counters[key] - countersBefore[key]) / elapsedSeconds;
    const health = await unhealthyShare(pools[0]!, services);
    beater.stop();
    const result = {
      date: new Date().toISOString(), machine: { cpus: cpus().length, memoryBytes: totalmem() },
      instances, intervalMs, windowSeconds, elapsedSeconds, services, registerSeconds, registerFailures: failures,
      // The machine as a whole during the window (other engineers' processes included) and its 1-minute load.
      machineCpuPercent: (100 * (machineAfter.busy - machineBefore.busy)) / Math.max(1, machineAfter.total - machineBefore.total) * cpus().length,
      loadAverage1m: load,
      targetBeatsPerSecond: (instances * 1000) / intervalMs,
      offeredPerSecond: delta('offered'), answeredPerSecond: delta('answered'), foundPerSecond: delta('found'),
      notFoundPerSecond: delta('notFound'), failedPerSecond: delta('failed'), behindPerSecond: delta('behind'),
      latencyMs: { p50, p99 },
      clientCpuPercent: ((clientAfter.user + clientAfter.system) / 1e6 / elapsedSeconds) * 100,
      members: addrs.map((addr, i) => ({
        addr,
        cpuPercent: (((cpuAfter[i] ?? 0) - (cpuBefore[i] ?? 0)) / elapsedSeconds) * 100,
        rssMiB: (rssAfter[i] ?? 0) / 2 ** 20,
        bytesPerInstance: ((rssAfter[i] ?? 0) - (rssBefore[i] ?? 0)) / instances,
        forwardedPerSecond: ((forwardsAfter[i]?.forwarded ?? 0) - (forwardsBefore[i]?.forwarded ?? 0)) / elapsedSeconds,
        forwardCallsPerSecond: ((forwardsAfter[i]?.batches ?? 0) - (forwardsBefore[i]?.batches ?? 0)) / elapsedSeconds,
      })),
      sampledHealth: health,
    };
    const lines = [
      `| instances | beats/s wanted | offered | answered (10200 / 20404 / failed) | behind | p50 ms | p99 ms | client CPU |`,
      '|---|---|---|---|---|---|---|---|',
      `| ${instances} | ${result.targetBeatsPerSecond.toFixed(0)} | ${result.offeredPerSecond.toFixed(0)} | ${result.answeredPerSecond.toFixed(0)} (${result.foundPerSecond.toFixed(0)} / ${result.notFoundPerSecond.toFixed(0)} / ${result.failedPerSecond.toFixed(0)}) | ${result.behindPerSecond.toFixed(0)} | ${result.latencyMs.p50} | ${result.latencyMs.p99} | ${result.clientCpuPercent.toFixed(0)} % |`,
      '',
      '| member | CPU | RSS MiB | bytes per instance | forwards/s | ForwardBatch calls/s |',
      '|---|---|---|---|---|---|',
      ...result.members.map((member) => `| ${member.addr} | ${member.cpuPercent.toFixed(0)} % | ${member.rssMiB.toFixed(0)} | ${member.bytesPerInstance.toFixed(0)} | ${member.forwardedPerSecond.toFixed(0)} | ${member.forwardCallsPerSecond.toFixed(0)} |`),
      '',
      `sampled ${health.listed} instances of ${Math.min(services, 50)} services: ${health.unhealthy} unhealthy; registered in ${registerSeconds.toFixed(1)} s (${(instances / registerSeconds).toFixed(0)}/s)`,
      `window ${elapsedSeconds.toFixed(1)} s; whole machine busy ${result.machineCpuPercent.toFixed(0)} % of ${cpus().length * 100} % (all processes), load average ${load.toFixed(1)}`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    const file = path.join(root, 'bench', 'results', `beats-${result.date.replace(/[:.]/g, '-')}.json`);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, JSON.stringify(result, null, 2));
    process.stdout.write(`results: ${path.relative(root, file)}\n`);
  } finally {
    await Promise.all(pools.map((pool) => pool.close()));
    if (cluster !== null) await cluster.stop();
    await rm(dataRoot, { recursive: true, force: true });
  }
}

await main();
