// bench/cp-register.ts: persistent registrations per second through one member of a 3-member cluster, with N
// concurrent HTTP clients, and the leader failover time. Not a test: it prints numbers (Markdown) and writes
// bench/results/cp-register-<time>.json. The comparison against etcd and ZooKeeper is bench/'s own issue.
//
//   node --import tsx bench/cp-register.ts [--clients 64] [--duration 20] [--via follower|leader]
//
// Members run as real processes on 127.0.2.1-3 (bench/'s loopback range), each with its own data directory and log
// file, started and stopped (by process group, also on Ctrl-C) through bench/lib like the main bench's clusters.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startCairn, type MemberProcess } from './lib/clusters.ts';
import { forgetDirectory, killProcess, trackDirectory } from './lib/processes.ts';
import { boundedRequest } from '../test/support/http.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const addrs = ['127.0.2.1:18848', '127.0.2.2:18848', '127.0.2.3:18848'];

async function clusterLeader(addr: string): Promise<string | null> {
  try {
    const { text } = await boundedRequest(addr, 'GET', '/cairn/v1/cluster', { timeoutMs: 1000 });
    const body = JSON.parse(text) as { leader: string | null };
    return body.leader;
  } catch {
    return null;
  }
}

async function waitForLeader(candidates: readonly string[], except: string | null, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    for (const addr of candidates) {
      const leader = await clusterLeader(addr);
      if (leader !== null && leader !== except) return leader;
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error('no leader');
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

/**
 * prepareServices creates the bench services with the health checker NONE: the instances are not real, and the
 * server must neither probe them (every instance address is loopback anyway) nor add health writes to the load.
 */
async function prepareServices(target: string, services: number): Promise<void> {
  for (let i = 0; i < services; i++) {
    const service = `bench-${i}`;
    await boundedRequest(target, 'POST', `/nacos/v1/ns/service?serviceName=${service}`, { timeoutMs: 10_000 });
    const checker = encodeURIComponent('{"type":"NONE"}');
    const { status, text } = await boundedRequest(target, 'PUT', `/nacos/v1/ns/cluster?serviceName=${service}&clusterName=DEFAULT&checkPort=0&useInstancePort4Check=true&healthChecker=${checker}`, { timeoutMs: 10_000 });
    if (status !== 200) throw new Error(`cluster config for ${service}: ${status} ${text}`);
  }
}

async function load(target: string, clients: number, durationMs: number): Promise<{ ok: number; failed: number; latencies: number[] }> {
  const latencies: number[] = [];
  let ok = 0;
  let failed = 0;
  let sequence = 0;
  const deadline = Date.now() + durationMs;
  const client = async (id: number): Promise<void> => {
    while (Date.now() < deadline) {
      const n = sequence++;
      // Loopback instance addresses only: nothing may ever send traffic outside 127.0.0.0/8 from this machine.
      const ip = `127.${3 + (id % 64)}.${(n >> 8) & 255}.${n & 255}`;
      const started = performance.now();
      try {
        const { status } = await boundedRequest(target, 'POST', `/nacos/v1/ns/instance?serviceName=bench-${n % 64}&ip=${ip}&port=3306&ephemeral=false`, { timeoutMs: 10_000 });
        if (status === 200) {
          ok++;
          latencies.push(performance.now() - started);
        } else failed++;
      } catch {
        failed++;
      }
    }
  };
  await Promise.all(Array.from({ length: clients }, (_, id) => client(id)));
  return { ok, failed, latencies: latencies.sort((a, b) => a - b) };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { clients: { type: 'string' }, duration: { type: 'string' }, via: { type: 'string' } } });
  const clients = Number(values.clients ?? 64);
  const durationMs = Number(values.duration ?? 20) * 1000;
  const via = values.via ?? 'follower';
  const dir = await mkdtemp(path.join(tmpdir(), 'cairn-bench-'));
  trackDirectory(dir);
  const logDir = path.join(dir, 'logs');
  await mkdir(logDir);
  const cluster = await startCairn(root, addrs, dir, logDir).catch(async (error: unknown) => {
    await rm(dir, { recursive: true, force: true });
    throw error;
  });
  try {
    const leader = await waitForLeader(addrs, null, 10_000);
    const target = via === 'leader' ? leader : (addrs.find((addr) => addr !== leader) ?? leader);
    await prepareServices(target, 64);
    await load(target, 8, 2000); // warm-up
    const result = await load(target, clients, durationMs);
    const rate = result.ok / (durationMs / 1000);
    const failover = await measureFailover(cluster.members, leader);
    const report = {
      clients, durationMs, via, target, leader, ok: result.ok, failed: result.failed,
      registrationsPerSecond: Math.round(rate),
      p50Ms: percentile(result.latencies, 50), p99Ms: percentile(result.latencies, 99), failoverMs: failover,
    };
    console.log('| clients | via | registrations/s | p50 ms | p99 ms | failed | leader failover ms |');
    console.log('|---|---|---|---|---|---|---|');
    console.log(`| ${clients} | ${via} | ${report.registrationsPerSecond} | ${report.p50Ms.toFixed(1)} | ${report.p99Ms.toFixed(1)} | ${result.failed} | ${failover} |`);
    await mkdir(path.join(root, 'bench', 'results'), { recursive: true });
    await writeFile(path.join(root, 'bench', 'results', `cp-register-${new Date().toISOString().replace(/[:.]/g, '-')}.json`), JSON.stringify(report, null, 2));
  } finally {
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
    forgetDirectory(dir);
  }
}

/** measureFailover kills the leader with SIGKILL and times until another member reports a new leader. */
async function measureFailover(members: readonly MemberProcess[], leader: string): Promise<number> {
  const victim = members.find((member) => member.client === leader);
  if (victim === undefined) return Number.NaN;
  const started = performance.now();
  await killProcess(victim.process);
  await waitForLeader(addrs.filter((addr) => addr !== leader), leader, 15_000);
  return Math.round(performance.now() - started);
}

await main();
