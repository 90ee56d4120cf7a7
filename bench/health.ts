// bench/health.ts: active health checks at scale (issue 4). 10 000 persistent instances, each a loopback TCP listener
// of this process, probed by a 3-member cluster with the default TCP checker: probes per second (per member and in
// total), CPU per member, and the p99 lag of probes behind their schedule, measured over a window after the shares
// settled. Not a test: it prints Markdown and writes bench/results/health-<time>.json.
//
//   node --import tsx bench/health.ts [--instances 10000] [--window 30] [--interval-ms 5000]
//
// Members run as real processes on 127.0.2.21-23, targets listen on 127.0.2.30 (bench/'s loopback range). The
// interval adapts between the TCP bounds (2.5-5 s in Cairn): a fast target settles at 2.5 s, so the load is about
// twice that of the 5 s interval. The members are started and stopped (by process group, also on Ctrl-C)
// through bench/lib like the main bench's clusters; their logs go to a directory removed at the end.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startCairn, type RunningCluster } from './lib/clusters.ts';
import { cpuSecondsOf, forgetDirectory, trackDirectory } from './lib/processes.ts';
import { boundedRequest } from '../test/support/http.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const addrs = ['127.0.2.21:18848', '127.0.2.22:18848', '127.0.2.23:18848'];
const targetHost = '127.0.2.30';
const instancesPerService = 2000;

async function openTargets(count: number): Promise<{ ports: number[]; servers: net.Server[] }> {
  const servers: net.Server[] = [];
  const ports: number[] = [];
  for (let i = 0; i < count; i++) {
    const server = net.createServer((socket) => socket.on('error', () => undefined).destroy());
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, targetHost, () => resolve()));
    servers.push(server);
    ports.push((server.address() as AddressInfo).port);
  }
  return { ports, servers };
}

/** requestTimeoutMs bounds each registration, cluster setting and scrape: a loopback member answers within its own 5 s. */
const requestTimeoutMs = 10_000;

async function register(addr: string, ports: readonly number[]): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < ports.length) {
      const index = next++;
      const service = `probed-${Math.floor(index / instancesPerService)}`;
      for (let attempt = 0; attempt < 5; attempt++) {
        const { status } = await boundedRequest(addr, 'POST', `/nacos/v1/ns/instance?serviceName=${service}&ip=${targetHost}&port=${ports[index]}&ephemeral=false`, { timeoutMs: requestTimeoutMs });
        if (status === 200) break;
      }
    }
  };
  await Promise.all(Array.from({ length: 64 }, worker));
}

/** fixIntervals sets every bench service's DEFAULT cluster to a TCP checker with a fixed interval. */
async function fixIntervals(addr: string, services: number, intervalMs: number): Promise<void> {
  const checker = encodeURIComponent(JSON.stringify({ type: 'TCP', intervalMs }));
  for (let i = 0; i < services; i++) {
    const { status, text } = await boundedRequest(addr, 'PUT', `/nacos/v1/ns/cluster?serviceName=probed-${i}&clusterName=DEFAULT&checkPort=80&useInstancePort4Check=true&healthChecker=${checker}`, { timeoutMs: requestTimeoutMs });
    if (status !== 200) throw new Error(`PUT /cluster probed-${i}: ${status} ${text}`);
  }
}

/** Scrape is the part of a member's /metrics the bench reads. */
interface Scrape {
  readonly targets: number;
  readonly probes: number;
  readonly lagBuckets: Map<number, number>;
}

async function scrape(addr: string): Promise<Scrape> {
  const { text } = await boundedRequest(addr, 'GET', '/metrics', { timeoutMs: requestTimeoutMs });
  let targets = 0;
  let probes = 0;
  const lagBuckets = new Map<number, number>();
  for (const line of text.split('\n')) {
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (line.startsWith('cairn_health_targets ')) targets = value;
    else if (line.startsWith('cairn_health_probes_total{')) probes += value;
    else if (line.startsWith('cairn_health_probe_lag_seconds_bucket{')) {
      const le = /le="([^"]+)"/.exec(line)?.[1] ?? '+Inf';
      lagBuckets.set(le === '+Inf' ? Infinity : Number(le), value);
    }
  }
  return { targets, probes, lagBuckets };
}

/** quantile reads a quantile (upper bucket bound) from cumulative histogram bucket deltas. */
function quantile(buckets: Map<number, number>, q: number): number {
  const bounds = [...buckets.keys()].sort((a, b) => a - b);
  const total = buckets.get(Infinity) ?? 0;
  for (const bound of bounds) if ((buckets.get(bound) ?? 0) >= q * total) return bound;
  return Infinity;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { instances: { type: 'string', default: '10000' }, window: { type: 'string', default: '30' }, 'interval-ms': { type: 'string', default: '0' } } });
  const instances = Number(values.instances);
  const windowSeconds = Number(values.window);
  // 0 keeps the adaptive interval; otherwise every cluster fixes it (the checker's intervalMs, e.g. 5000 as the issue asks).
  const intervalMs = Number(values['interval-ms']);
  const dataRoot = await mkdtemp(path.join(tmpdir(), 'cairn-bench-health-'));
  trackDirectory(dataRoot);
  let cluster: RunningCluster | null = null;
  const { ports, servers } = await openTargets(instances);
  try {
    const logDir = path.join(dataRoot, 'logs');
    await mkdir(logDir);
    cluster = await startCairn(root, addrs, dataRoot, logDir);
    const pids = cluster.members.map((member) => member.process.pid);
    const registerStarted = Date.now();
    await register(addrs[0] ?? '', ports);
    const registerSeconds = (Date.now() - registerStarted) / 1000;
    if (intervalMs > 0) await fixIntervals(addrs[0] ?? '', Math.ceil(instances / instancesPerService), intervalMs);
    for (let waited = 0; waited < 120; waited++) {
      const scrapes = await Promise.all(addrs.map(scrape));
      if (scrapes.reduce((sum, s) => sum + s.targets, 0) === instances) break;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    await new Promise((resolve) => setTimeout(resolve, 10_000));
    const before = await Promise.all(addrs.map(scrape));
    const cpuBefore = await Promise.all(pids.map(cpuSecondsOf));
    await new Promise((resolve) => setTimeout(resolve, windowSeconds * 1000));
    const after = await Promise.all(addrs.map(scrape));
    const cpuAfter = await Promise.all(pids.map(cpuSecondsOf));
    const rows = addrs.map((addr, i) => {
      const b = before[i] as Scrape;
      const a = after[i] as Scrape;
      const lag = new Map([...a.lagBuckets].map(([bound, count]) => [bound, count - (b.lagBuckets.get(bound) ?? 0)]));
      return {
        addr,
        targets: a.targets,
        probesPerSecond: Math.round((a.probes - b.probes) / windowSeconds),
        cpuPercent: Math.round((((cpuAfter[i] ?? 0) - (cpuBefore[i] ?? 0)) / windowSeconds) * 100),
        lagP99Seconds: quantile(lag, 0.99),
      };
    });
    const total = rows.reduce((sum, row) => sum + row.probesPerSecond, 0);
    console.log(`| member | targets | probes/s | CPU % | p99 lag (bucket) |\n|---|---|---|---|---|`);
    for (const row of rows) console.log(`| ${row.addr} | ${row.targets} | ${row.probesPerSecond} | ${row.cpuPercent} | <= ${row.lagP99Seconds} s |`);
    console.log(`\n${instances} instances registered in ${registerSeconds.toFixed(1)} s; ${total} probes/s in total over ${windowSeconds} s (one probe per instance every ${(instances / total).toFixed(2)} s)`);
    await mkdir(path.join(root, 'bench', 'results'), { recursive: true });
    const file = path.join(root, 'bench', 'results', `health-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    await writeFile(file, JSON.stringify({ instances, windowSeconds, registerSeconds, totalProbesPerSecond: total, members: rows }, null, 2));
  } finally {
    await cluster?.stop();
    for (const server of servers) server.close();
    await rm(dataRoot, { recursive: true, force: true });
    forgetDirectory(dataRoot);
  }
}

await main();
