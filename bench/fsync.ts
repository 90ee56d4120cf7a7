// bench/fsync.ts: how long a durable append takes on this machine's disk, the way Cairn's Raft log does it (a
// LevelDB batch with sync: true, classic-level) against the way etcd's WAL does it (a write into a preallocated file,
// then fdatasync), with 1 or more processes appending at once (a 3-member cluster on one machine fsyncs from three
// processes). It answers "is the log's fsync what bounds write latency, and would a WAL of our own change it?".
//
//   node --import tsx bench/fsync.ts [--writers 3] [--appends 1500] [--bytes 420] [--dir /tmp]
//
// Each writer is a child process (a real concurrent fsync, not one event loop's threadpool) appending --appends
// records of --bytes, one at a time, 1 ms apart; it prints p50 / p99 / max of its appends in ms. Writers clean up
// their files. Nothing here runs in npm test.
import { spawn } from 'node:child_process';
import { mkdtemp, open, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClassicLevel } from 'classic-level';

type Mode = 'leveldb' | 'prealloc';

function option(name: string, fallback: number): number {
  const at = process.argv.indexOf(name);
  const value = at < 0 ? fallback : Number(process.argv[at + 1]);
  if (!Number.isSafeInteger(value) || value <= 0 || value > 1_000_000) throw new Error(`${name} must be a positive integer (<= 1000000)`);
  return value;
}

function quantiles(samples: number[]): string {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number): string => (sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))] ?? 0).toFixed(2);
  return `p50 ${at(0.5)} ms, p99 ${at(0.99)} ms, max ${at(1)} ms`;
}

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function writer(mode: Mode, dir: string, appends: number, bytes: number): Promise<string> {
  const record = new Uint8Array(bytes).fill(7);
  const times: number[] = [];
  if (mode === 'leveldb') {
    const db = new ClassicLevel<string, Uint8Array>(path.join(dir, 'db'), { valueEncoding: 'view' });
    await db.open();
    for (let i = 0; i < appends; i++) {
      const started = performance.now();
      await db.batch([{ type: 'put', key: `log!${String(i).padStart(16, '0')}`, value: record }], { sync: true });
      times.push(performance.now() - started);
      await pause(1);
    }
    await db.close();
  } else {
    const slot = Math.ceil(bytes / 512) * 512;
    const file = await open(path.join(dir, 'wal'), 'w+');
    await file.write(new Uint8Array(appends * slot), 0, appends * slot, 0);
    await file.sync();
    for (let i = 0; i < appends; i++) {
      const started = performance.now();
      await file.write(record, 0, bytes, i * slot);
      await file.datasync();
      times.push(performance.now() - started);
      await pause(1);
    }
    await file.close();
  }
  return quantiles(times);
}

async function main(): Promise<void> {
  const appends = option('--appends', 1500);
  const bytes = option('--bytes', 420);
  if (process.argv[2] === '--child') {
    const mode = process.argv[3] as Mode;
    const dir = process.argv[4] ?? '';
    process.stdout.write(await writer(mode, dir, appends, bytes));
    return;
  }
  const writers = option('--writers', 3);
  if (writers > 16) throw new Error('--writers is at most 16');
  const base = process.argv.includes('--dir') ? process.argv[process.argv.indexOf('--dir') + 1] ?? os.tmpdir() : os.tmpdir();
  const self = fileURLToPath(import.meta.url);
  for (const mode of ['leveldb', 'prealloc'] as const) {
    const dirs = await Promise.all(Array.from({ length: writers }, () => mkdtemp(path.join(base, 'cairn-fsync-'))));
    try {
      const results = await Promise.all(dirs.map((dir) => new Promise<string>((resolve, reject) => {
        const child = spawn(process.execPath, [...process.execArgv, self, '--child', mode, dir, '--appends', String(appends), '--bytes', String(bytes)], { stdio: ['ignore', 'pipe', 'inherit'] });
        let out = '';
        child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString(); });
        child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${mode} writer exited with ${String(code)}`))));
      })));
      const label = mode === 'leveldb' ? 'LevelDB batch, sync: true' : 'preallocated file, write + fdatasync';
      results.forEach((result, i) => process.stdout.write(`${label}, writer ${i + 1} of ${writers}: ${result}\n`));
    } finally {
      await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
    }
  }
}

await main();
