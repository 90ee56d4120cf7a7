// bench/seed.ts: Cairn's memory per persistent instance and its restart time, on data directories seeded offline.
//
// Registering 1M persistent instances through Raft at ~1k writes/s would take most of an hour, so the data
// directory is built offline, exactly as replication would build it on a standalone member: this tool opens a fresh
// LevelStorage, initialises it as a one-voter member, and feeds register commands (encoded by src/cp/commands.ts,
// each with its own request id, as a member's proposals carry) through the real RegistryStateMachine in large
// batches: each batch is appended to the Raft log (writeReady), applied, and its keyspace writes committed with the
// applied index (writeApplied); at the end the state machine's snapshot is saved, which compacts the log, as the
// member's periodic snapshots do. Every cluster has the health checker NONE (the instances are not real).
// Then the real member (`bin/cairn server`, standalone) starts on that directory: restart time is from spawn until
// GET /cairn/v1/health answers 200; RSS is read from /proc once it has settled.
//
//   node --import tsx bench/seed.ts --seed DIR --addr HOST:PORT --instances N     (the seeding child process)
//   the memory workload of bench/main.ts calls measureMemory().
import { randomUUID } from 'node:crypto';
import { execFileSync, spawn } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { decodeResult, encodeCommand, type RegistryCommand } from '../src/cp/commands.ts';
import { RegistryStateMachine } from '../src/cp/registry-state-machine.ts';
import { LevelStorage } from '../src/replica/level-storage.ts';
import type { BatchWrite } from '../src/replica/state-machine.ts';
import type { Entry } from '../src/raft/types.ts';
import { cairnHealthy, startCairnMember } from './lib/clusters.ts';
import { metadataOf } from './lib/driver.ts';
import { describe, rssBytesOf, sleep, stopProcess, waitUntil } from './lib/processes.ts';

/** instancesPerService is how many instances each seeded service holds (Cairn's per-service maximum). */
const instancesPerService = 2000;
/** entriesPerBatch is how many commands one seeding batch appends and applies (one LevelDB write each). */
const entriesPerBatch = 5000;
const settleMs = 3000;

/** MemoryResult is one measured size. */
export interface MemoryResult {
  readonly instances: number;
  readonly status: 'ok' | 'not-measured';
  readonly reason?: string;
  readonly seedSeconds: number;
  readonly restartSeconds: number;
  readonly rssBytes: number;
  readonly emptyRssBytes: number;
  readonly bytesPerInstance: number;
  readonly dataDirBytes: number;
}

function* commands(instances: number): Generator<RegistryCommand> {
  const services = Math.ceil(instances / instancesPerService);
  for (let s = 0; s < services; s++) {
    const key = { namespace: 'public', group: 'DEFAULT_GROUP', service: `seeded-${s}` };
    const count = Math.min(instancesPerService, instances - s * instancesPerService);
    for (let i = 0; i < count; i++) {
      const n = s * instancesPerService + i;
      const slot = { service: s, ip: `127.${20 + ((n >> 16) & 0x7f)}.${(n >> 8) & 255}.${n & 255}`, port: 8080 };
      yield { type: 'registerInstance', key, instance: { cluster: 'DEFAULT', ip: slot.ip, port: slot.port, weight: 1, enabled: true, healthy: true, metadata: metadataOf(slot) } };
    }
    yield { type: 'putCluster', key, config: { name: 'DEFAULT', healthChecker: { type: 'NONE' }, checkPort: 80, useInstancePort4Check: true, metadata: {} } };
  }
}

/** seed builds a standalone member's data directory holding `instances` persistent instances. */
export async function seed(dataDir: string, addr: string, instances: number): Promise<void> {
  const storage = await LevelStorage.open(dataDir);
  try {
    if ((await storage.load()) !== null) throw new Error(`${dataDir} is not empty`);
    const membership = { voters: [addr], learners: [] };
    await storage.initialise({ clusterId: randomUUID(), memberId: addr }, membership);
    const machine = new RegistryStateMachine();
    let index = 0;
    let pending: Uint8Array[] = [];
    const flush = async (): Promise<void> => {
      if (pending.length === 0) return;
      const first = index + 1;
      const entries: Entry[] = pending.map((data, k) => ({ kind: 'normal', index: first + k, term: 1, data }));
      const last = first + pending.length - 1;
      await storage.writeReady({ snapshot: null, entries, hardState: { term: 1, vote: addr, commit: last } }, false);
      const writes: BatchWrite[] = [];
      const batch = { put: (key: string, value: Uint8Array) => writes.push({ type: 'put', key, value }), del: (key: string) => writes.push({ type: 'del', key }) };
      for (const entry of entries) {
        if (entry.kind !== 'normal') continue;
        const result = decodeResult(machine.apply(entry.data, entry.index, entry.term, batch));
        if (!result.ok) throw new Error(`seeding entry ${entry.index}: ${result.code} ${result.detail}`);
      }
      await storage.writeApplied(writes, last, false);
      index = last;
      pending = [];
    };
    let n = 0;
    for (const command of commands(instances)) {
      pending.push(encodeCommand({ requestId: `seed-${n++}-${randomUUID()}`, command }));
      if (pending.length >= entriesPerBatch) await flush();
    }
    await flush();
    // The member's own periodic compaction would have done the same: the keyspace becomes the snapshot (fsynced).
    await storage.compactLog({ index, term: 1, membership });
  } finally {
    await storage.close();
  }
}

function dirBytes(dir: string): number {
  try {
    return Number(execFileSync('du', ['-sb', dir], { encoding: 'utf8' }).split('\t')[0]);
  } catch {
    return Number.NaN;
  }
}

/** seedInChild runs the seeding in a child process with a large heap (the snapshot of 1M instances is big). */
async function seedInChild(root: string, dir: string, addr: string, instances: number, timeoutMs: number): Promise<void> {
  const child = spawn(process.execPath, ['--max-old-space-size=12288', '--import', 'tsx', path.join(root, 'bench', 'seed.ts'), '--seed', dir, '--addr', addr, '--instances', String(instances)], {
    cwd: root, stdio: ['ignore', 'inherit', 'inherit'],
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | string>((resolve) => child.once('exit', (exitCode, signal) => resolve(signal ?? exitCode ?? -1)));
  clearTimeout(timer);
  if (code !== 0) throw new Error(`seeding ${instances} instances failed (${code})`);
}

/** startAndMeasure starts a standalone member on `dir` and returns its time to health 200 and its settled RSS. */
async function startAndMeasure(root: string, addr: string, dir: string, logDir: string, timeoutMs: number): Promise<{ seconds: number; rss: number }> {
  const started = performance.now();
  const member = await startCairnMember(root, addr, [], dir, logDir);
  try {
    await waitUntil(`${addr} healthy`, () => cairnHealthy(addr), timeoutMs, [member.process], 50);
    const seconds = (performance.now() - started) / 1000;
    await sleep(settleMs);
    return { seconds, rss: await rssBytesOf(member.process.pid) };
  } finally {
    await stopProcess(member.process, 20_000);
  }
}

/** measureMemory measures an empty member, then each size: seed offline, restart, read RSS. */
export async function measureMemory(options: { root: string; addr: string; sizes: readonly number[]; workDir: string; logDir: string }): Promise<MemoryResult[]> {
  const results: MemoryResult[] = [];
  const emptyDir = path.join(options.workDir, 'memory-empty');
  await mkdir(emptyDir, { recursive: true });
  const empty = await startAndMeasure(options.root, options.addr, emptyDir, options.logDir, 60_000);
  for (const instances of options.sizes) {
    const dir = path.join(options.workDir, `memory-${instances}`);
    try {
      const seedStarted = performance.now();
      await seedInChild(options.root, dir, options.addr, instances, 40 * 60_000);
      const seedSeconds = (performance.now() - seedStarted) / 1000;
      const measured = await startAndMeasure(options.root, options.addr, dir, options.logDir, 20 * 60_000);
      results.push({
        instances, status: 'ok', seedSeconds, restartSeconds: measured.seconds, rssBytes: measured.rss, emptyRssBytes: empty.rss,
        bytesPerInstance: (measured.rss - empty.rss) / instances, dataDirBytes: dirBytes(dir),
      });
    } catch (error) {
      results.push({
        instances, status: 'not-measured', reason: describe(error), seedSeconds: Number.NaN, restartSeconds: Number.NaN, rssBytes: Number.NaN,
        emptyRssBytes: empty.rss, bytesPerInstance: Number.NaN, dataDirBytes: Number.NaN,
      });
    }
    process.stderr.write(`bench: memory ${instances}: ${JSON.stringify(results[results.length - 1])}\n`);
  }
  return results;
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { seed: { type: 'string' }, addr: { type: 'string' }, instances: { type: 'string' } } });
  if (values.seed === undefined || values.addr === undefined || values.instances === undefined) {
    process.stderr.write('usage: node --import tsx bench/seed.ts --seed DIR --addr HOST:PORT --instances N\n');
    process.exitCode = 2;
  } else {
    const started = performance.now();
    await seed(values.seed, values.addr, Number(values.instances));
    process.stderr.write(`seeded ${values.instances} instances into ${values.seed} in ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
  }
}
