// bench/level-write.ts: what a member's storage costs per registration as the registry grows, alone (no Raft, no
// network): LevelStorage (the member's real storage, on disk) takes what a member writes under a register load, Ready
// after Ready, and the CPU of the whole process (LevelDB's compaction thread and libuv's pool included) is reported
// per write for each window of writes.
//
//   node --import tsx bench/level-write.ts [--writes 150000] [--window 25000] [--batch 20] [--services 64]
//                                          [--runs 2] [--dir DIR]
//
// Each Ready appends --batch log entries of a register command's size (~620 bytes), fsynced, with the applied part of
// the Ready before (per write: the instance record, ~420 bytes under a key of its service and address; the
// remembered request, ~100 bytes under a random id; the service record, rewritten), and the request table's eviction
// of its oldest id once it holds limits.requestIdsRememberedMax. Every limits.snapshotEntries entries the log is
// compacted (compactLog: a memtable flush, then the log deleted up to the applied index), as a member does.
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { LevelStorage } from '../src/replica/level-storage.ts';
import { limits } from '../src/limits.ts';
import type { Entry, Membership } from '../src/raft/types.ts';
import type { BatchWrite } from '../src/replica/state-machine.ts';

const { values } = parseArgs({
  options: {
    writes: { type: 'string', default: '150000' },
    window: { type: 'string', default: '25000' },
    batch: { type: 'string', default: '20' },
    services: { type: 'string', default: '64' },
    runs: { type: 'string', default: '2' },
    dir: { type: 'string' },
  },
});

function positiveInteger(name: string, text: string, max: number): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 1 || value > max) throw new Error(`--${name}: '${text}' is not an integer in 1..${max}`);
  return value;
}

const writeCount = positiveInteger('writes', values.writes, 10_000_000);
const windowWrites = positiveInteger('window', values.window, writeCount);
const batchSize = positiveInteger('batch', values.batch, 10_000);
const serviceCount = positiveInteger('services', values.services, 100_000);
const runs = positiveInteger('runs', values.runs, 20);
const membership: Membership = { voters: ['127.0.2.45:18848'], learners: [] };
const SEP = '\u0000';

async function directoryBytes(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += (await stat(path.join(entry.parentPath, entry.name))).size;
  }
  return total;
}

interface WindowResult { readonly writes: number; readonly cpuUsPerWrite: number; readonly writesPerSecond: number; readonly dataMiB: number }

async function run(): Promise<WindowResult[]> {
  const dir = await mkdtemp(path.join(values.dir ?? os.tmpdir(), 'cairn-level-write-'));
  const storage = await LevelStorage.open(dir);
  const results: WindowResult[] = [];
  try {
    await storage.initialise({ clusterId: 'bench', memberId: membership.voters[0]! }, membership);
    const command = randomBytes(620);
    const record = randomBytes(420);
    const remembered = randomBytes(100);
    const serviceRecord = randomBytes(150);
    const requestIds: string[] = [];
    let oldestRequest = 0;
    let pendingApplied: BatchWrite[] = [];
    let appliedIndex = 0;
    let compactedAt = 0;
    let windowStart = { cpu: process.cpuUsage(), at: performance.now(), writes: 0 };
    for (let first = 1; first <= writeCount; first += batchSize) {
      const last = Math.min(first + batchSize - 1, writeCount);
      const entries: Entry[] = [];
      for (let index = first; index <= last; index++) entries.push({ kind: 'normal', index, term: 1, data: command });
      const applied = pendingApplied.length === 0 ? null : { writes: pendingApplied, index: first - 1 };
      await storage.writeReady({ snapshot: null, entries, hardState: { term: 1, vote: null, commit: first - 1 }, applied }, true);
      if (applied !== null) appliedIndex = applied.index;
      // What applying these entries writes, carried by the next Ready (as a member's apply is).
      pendingApplied = [];
      for (let index = first; index <= last; index++) {
        const service = `bench-register-${index % serviceCount}`;
        const slot = Math.floor(index / serviceCount);
        const requestId = randomUUID();
        requestIds.push(requestId);
        pendingApplied.push({ type: 'put', key: ['ins', 'public', 'DEFAULT_GROUP', service, 'DEFAULT', `10.${(slot >> 16) & 255}.${(slot >> 8) & 255}.${slot & 255}`, '8080'].join(SEP), value: record });
        pendingApplied.push({ type: 'put', key: ['req', requestId].join(SEP), value: remembered });
        pendingApplied.push({ type: 'put', key: ['svc', 'public', 'DEFAULT_GROUP', service].join(SEP), value: serviceRecord });
        if (requestIds.length - oldestRequest > limits.requestIdsRememberedMax) {
          pendingApplied.push({ type: 'del', key: ['req', requestIds[oldestRequest]!].join(SEP) });
          oldestRequest += 1;
        }
      }
      if (oldestRequest > 100_000) {
        requestIds.splice(0, oldestRequest);
        oldestRequest = 0;
      }
      if (appliedIndex - compactedAt >= limits.snapshotEntries) {
        await storage.compactLog({ index: appliedIndex, term: 1, membership });
        compactedAt = appliedIndex;
      }
      if (last - windowStart.writes >= windowWrites || last === writeCount) {
        const cpu = process.cpuUsage(windowStart.cpu);
        const writes = last - windowStart.writes;
        const seconds = (performance.now() - windowStart.at) / 1000;
        results.push({ writes: last, cpuUsPerWrite: (cpu.user + cpu.system) / writes, writesPerSecond: writes / seconds, dataMiB: (await directoryBytes(dir)) / 1048576 });
        windowStart = { cpu: process.cpuUsage(), at: performance.now(), writes: last };
      }
    }
  } finally {
    await storage.close();
    if (values.dir === undefined) await rm(dir, { recursive: true, force: true });
  }
  return results;
}

console.log(`level-write: ${writeCount} registrations in Readies of ${batchSize}, ${serviceCount} services, ${runs} runs`);
console.log('\n| run | writes so far | CPU µs per write (whole process) | writes/s | data dir MiB |\n|---|---|---|---|---|');
for (let r = 1; r <= runs; r++) {
  for (const window of await run()) {
    console.log(`| ${r} | ${window.writes} | ${window.cpuUsPerWrite.toFixed(1)} | ${Math.round(window.writesPerSecond)} | ${window.dataMiB.toFixed(1)} |`);
  }
}
