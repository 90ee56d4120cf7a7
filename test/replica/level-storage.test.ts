// Goal: show that LevelStorage keeps a member's Raft state on disk as DESIGN.md requires: it passes the RaftStorage
// compliance suite through real reopens of a real LevelDB directory; corruption (a flipped byte, a truncated or
// misplaced record, a hole in the log, damaged meta or snapshot data) is detected by load() and reported as
// CAIRN_STORAGE_CORRUPT naming the index or key, never served; and every entry acknowledged after a sync=true write
// survives the writer being killed with SIGKILL mid-stream.
// Method: stores live in temporary directories under os.tmpdir(), removed after each test. Corruption is planted
// through a second, raw classic-level handle on the closed database (the layout comes from levelLayout), then a
// fresh LevelStorage loads it. The crash test spawns test/replica/fixtures/storage-writer.ts with
// `node --import tsx`, kills it with SIGKILL after a number of acknowledgements, three times over on the same
// directory, and checks that every acknowledged entry is there with its term and content.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ClassicLevel } from 'classic-level';

import type { Entry } from '../../src/raft/types.ts';
import { AssertionError } from '../../src/assert.ts';
import { isCairnError } from '../../src/errors.ts';
import { crc32c, encodeChecksummed, encodeIndexValue, encodeStoredEntry, indexKey } from '../../src/replica/codec.ts';
import { LevelStorage, levelLayout } from '../../src/replica/level-storage.ts';
import { payloadOf } from './fixtures/storage-writer.ts';
import { normal, runStorageCompliance } from './storage-compliance.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '..', '..');
// Small chunks, so the compliance suite's 10 KB snapshot is stored as 11 chunks.
const options = { snapshotChunkBytes: 1000 };

async function temporaryDirectory(): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), 'cairn-level-storage-'));
}

runStorageCompliance('LevelStorage', async () => {
  const dataDir = await temporaryDirectory();
  let current = await LevelStorage.open(dataDir, options);
  return {
    storage: current,
    reopen: async () => {
      await current.close();
      current = await LevelStorage.open(dataDir, options);
      return current;
    },
    cleanup: async () => {
      await current.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
});

type Sublevel = ReturnType<typeof rawSublevel>;

function rawSublevel(db: ClassicLevel<string, Uint8Array>, name: string) {
  return db.sublevel<string, Uint8Array>(name, { valueEncoding: 'view' });
}

/** RawStore is a second handle on a closed store's database, to plant corruption record by record. */
interface RawStore {
  readonly log: Sublevel;
  readonly meta: Sublevel;
  readonly snapshot: Sublevel;
}

async function withRawStore(location: string, change: (raw: RawStore) => Promise<void>): Promise<void> {
  const db = new ClassicLevel<string, Uint8Array>(location, { valueEncoding: 'view' });
  await db.open();
  try {
    const { log, meta, snapshot } = levelLayout.sublevels;
    await change({ log: rawSublevel(db, log), meta: rawSublevel(db, meta), snapshot: rawSublevel(db, snapshot) });
  } finally {
    await db.close();
  }
}

async function rawGet(sublevel: Sublevel, key: string): Promise<Uint8Array> {
  const value = await sublevel.get(key);
  assert.ok(value !== undefined, `raw key ${key} exists`);
  return new Uint8Array(value);
}

/** chunkKeyOf finds the raw key of snapshot chunk `chunk` (its generation prefix is random). */
async function chunkKeyOf(raw: RawStore, chunk: number): Promise<string> {
  const keys = (await raw.snapshot.keys().all()).filter((key) => key.endsWith(`!${indexKey(chunk)}`));
  assert.equal(keys.length, 1, `one stored chunk ${chunk}: ${JSON.stringify(keys)}`);
  return keys[0] as string;
}

function flipByte(value: Uint8Array, offset: number): Uint8Array {
  const copy = value.slice();
  copy[offset] = (copy[offset] ?? 0) ^ 0x40;
  return copy;
}

/** entriesOfPreparedStore are the log of preparedStore: entries 1..4 of term 1, 5..8 of term 2. */
const entriesOfPreparedStore: readonly Entry[] = Array.from({ length: 8 }, (_, i) => normal(i + 1, i < 4 ? 1 : 2, ' '.repeat(48)));

/** preparedStore builds a closed store: log 3..8 after a snapshot at 2 whose 2,500 bytes take 3 chunks; applied 4. */
async function preparedStore(dataDir: string): Promise<string> {
  const storage = await LevelStorage.open(dataDir, options);
  await storage.initialise({ clusterId: 'c', memberId: 'a' }, { voters: ['a', 'b', 'c'], learners: [] });
  await storage.writeReady({ snapshot: null, entries: entriesOfPreparedStore, hardState: { term: 2, vote: 'a', commit: 4 } }, true);
  await storage.writeApplied([{ type: 'put', key: 'k', value: new Uint8Array([1]) }], 4, false);
  const data = Uint8Array.from({ length: 2500 }, (_, i) => i & 0xff);
  await storage.saveSnapshot({ meta: { index: 2, term: 1, membership: { voters: ['a', 'b', 'c'], learners: [] } }, data });
  const location = storage.location;
  await storage.close();
  return location;
}

interface CorruptionCase {
  readonly name: string;
  readonly plant: (raw: RawStore) => Promise<void>;
  readonly message: RegExp;
  readonly index?: number;
}

const corruptionCases: readonly CorruptionCase[] = [
  {
    name: 'a flipped byte inside entry 5',
    plant: async (raw) => raw.log.put(indexKey(5), flipByte(await rawGet(raw.log, indexKey(5)), 12)),
    message: /log entry 5: cannot decode StoredEntry: crc32c mismatch/,
    index: 5,
  },
  {
    name: 'entry 5 truncated',
    plant: async (raw) => raw.log.put(indexKey(5), (await rawGet(raw.log, indexKey(5))).subarray(0, 20)),
    message: /log entry 5: cannot decode/,
    index: 5,
  },
  {
    name: 'entry 5 deleted: a hole in the log',
    plant: async (raw) => raw.log.del(indexKey(5)),
    message: /log entry 5: missing \(hole in the log: the next stored entry is 6\)/,
    index: 5,
  },
  {
    name: 'the first entry after the snapshot deleted',
    plant: async (raw) => raw.log.del(indexKey(3)),
    message: /log entry 3: missing/,
    index: 3,
  },
  {
    name: "entry 6's record stored under key 5",
    plant: async (raw) => raw.log.put(indexKey(5), await rawGet(raw.log, indexKey(6))),
    message: /log entry 5: record holds entry 6/,
    index: 5,
  },
  {
    name: 'a valid entry whose term goes back',
    plant: async (raw) => raw.log.put(indexKey(6), encodeStoredEntry(normal(6, 1))),
    message: /log entry 6: term 1 after term 2/,
    index: 6,
  },
  {
    name: 'a log key that is not an index',
    plant: async (raw) => raw.log.put('not-an-index', encodeStoredEntry(normal(9, 2))),
    message: /log after entry 8: cannot decode log key/,
    index: 9,
  },
  {
    name: 'a flipped byte in the hard state',
    plant: async (raw) => raw.meta.put(levelLayout.metaKeys.hardState, flipByte(await rawGet(raw.meta, levelLayout.metaKeys.hardState), 5)),
    message: /meta!hard-state: cannot decode meta!hard-state: crc32c mismatch/,
  },
  {
    name: 'the applied index missing',
    plant: async (raw) => raw.meta.del(levelLayout.metaKeys.applied),
    message: /meta!applied missing/,
  },
  {
    name: 'an applied index beyond the log',
    plant: async (raw) => raw.meta.put(levelLayout.metaKeys.applied, encodeChecksummed(encodeIndexValue(99))),
    message: /applied index 99 beyond the last log index 8/,
    index: 99,
  },
  {
    name: 'the format record missing while records remain',
    plant: async (raw) => raw.meta.del(levelLayout.metaKeys.format),
    message: /records present but meta!format missing/,
  },
  {
    name: 'an unknown format',
    plant: async (raw) => raw.meta.put(levelLayout.metaKeys.format, encodeChecksummed(new TextEncoder().encode('cairn-raft-v9'))),
    message: /unknown storage format "cairn-raft-v9"/,
  },
  {
    name: 'a snapshot chunk missing',
    plant: async (raw) => raw.snapshot.del(await chunkKeyOf(raw, 1)),
    message: /snapshot data: chunk 1 missing/,
  },
  {
    name: 'a flipped byte in a snapshot chunk',
    plant: async (raw) => {
      const key = await chunkKeyOf(raw, 2);
      await raw.snapshot.put(key, flipByte(await rawGet(raw.snapshot, key), 100));
    },
    message: /snapshot data: crc32c mismatch/,
  },
];

describe('LevelStorage on disk', () => {
  test('the prepared store loads cleanly (the baseline of the corruption cases)', async () => {
    const dataDir = await temporaryDirectory();
    try {
      await preparedStore(dataDir);
      const storage = await LevelStorage.open(dataDir, options);
      const state = await storage.load();
      await storage.close();
      assert.ok(state !== null);
      assert.deepEqual(state.entries, entriesOfPreparedStore.slice(2));
      assert.equal(state.snapshot.data.length, 2500);
      assert.equal(state.applied, 4);
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  for (const corruption of corruptionCases) {
    test(`corruption is detected by load(): ${corruption.name}`, async () => {
      const dataDir = await temporaryDirectory();
      try {
        await withRawStore(await preparedStore(dataDir), corruption.plant);
        const storage = await LevelStorage.open(dataDir, options);
        try {
          await assert.rejects(storage.load(), (error: unknown) => {
            assert.ok(isCairnError(error, 'CAIRN_STORAGE_CORRUPT'), `expected CAIRN_STORAGE_CORRUPT, got ${String(error)}`);
            assert.match(error.message, corruption.message);
            if (corruption.index !== undefined) assert.equal(error.details?.['index'], corruption.index);
            return true;
          });
          // A store that failed to load is never written: the member must stop.
          await assert.rejects(storage.writeReady({ snapshot: null, entries: [], hardState: { term: 9, vote: null, commit: 0 } }, true), AssertionError);
        } finally {
          await storage.close();
        }
      } finally {
        await rm(dataDir, { recursive: true, force: true });
      }
    });
  }

  test('open creates a missing data directory, and the database lives in <dataDir>/raft', async () => {
    const root = await temporaryDirectory();
    try {
      const dataDir = path.join(root, 'nested', 'member-1');
      const storage = await LevelStorage.open(dataDir);
      assert.equal(storage.location, path.join(dataDir, levelLayout.directory));
      assert.equal(await storage.load(), null);
      await storage.close();
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});

/** WriterRun is what one writer process acknowledged before it was killed. */
interface WriterRun {
  readonly readyLastIndex: number;
  readonly acks: ReadonlyArray<{ readonly index: number; readonly term: number }>;
  readonly signal: NodeJS.Signals | null;
  readonly stderr: string;
}

/** runWriterUntilKilled starts the writer and sends SIGKILL once `killAfterAcks` entries were acknowledged. */
function runWriterUntilKilled(dataDir: string, killAfterAcks: number): Promise<WriterRun> {
  const fixture = path.join(here, 'fixtures', 'storage-writer.ts');
  const child = spawn(process.execPath, ['--import', 'tsx', fixture, dataDir, '1000000'], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  const acks: Array<{ index: number; term: number }> = [];
  let readyLastIndex = -1;
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  const lines = createInterface({ input: child.stdout });
  lines.on('line', (line) => {
    const [word, first, second] = line.split(' ');
    if (word === 'ready') readyLastIndex = Number(first);
    if (word === 'ack') acks.push({ index: Number(first), term: Number(second) });
    if (acks.length === killAfterAcks) child.kill('SIGKILL');
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    // 'close' waits for stdout to end, so every acknowledgement written before death has been read.
    child.on('close', (_code, signal) => resolve({ readyLastIndex, acks, signal, stderr }));
  });
}

describe('LevelStorage crash safety', () => {
  test('a writer killed with SIGKILL mid-stream loses no acknowledged entry (three crashes)', { timeout: 120_000 }, async () => {
    const dataDir = await temporaryDirectory();
    try {
      const acknowledged: Array<{ index: number; term: number }> = [];
      for (let round = 0; round < 3; round++) {
        const run = await runWriterUntilKilled(dataDir, 40 + 20 * round);
        assert.equal(run.signal, 'SIGKILL', `the writer died of SIGKILL, not on its own: ${run.stderr}`);
        const lastAcknowledged = acknowledged[acknowledged.length - 1]?.index ?? 0;
        assert.ok(run.readyLastIndex >= lastAcknowledged, `round ${round} found last index ${run.readyLastIndex} < acknowledged ${lastAcknowledged}`);
        assert.ok(run.acks.length >= 40 + 20 * round);
        acknowledged.push(...run.acks);
      }
      const storage = await LevelStorage.open(dataDir);
      const state = await storage.load();
      await storage.close();
      assert.ok(state !== null);
      const last = acknowledged[acknowledged.length - 1];
      assert.ok(last !== undefined);
      assert.ok(state.entries.length >= last.index, `${state.entries.length} entries stored, ${last.index} acknowledged`);
      assert.ok(state.hardState.term >= last.term);
      for (const { index, term } of acknowledged) {
        const entry: Entry | undefined = state.entries[index - 1];
        assert.ok(entry?.kind === 'normal' && entry.index === index && entry.term === term, `entry ${index} of term ${term}`);
        assert.deepEqual(entry.data, payloadOf(index, term));
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  describe('staged snapshots (stageSnapshot, then saveSnapshot with what it staged)', () => {
    const membership = { voters: ['a', 'b', 'c'], learners: [] };
    const bytesOf = (length: number, seed: number): Uint8Array => Uint8Array.from({ length }, (_, i) => (i * 31 + seed) & 0xff);
    const generations = async (location: string): Promise<string[]> => {
      let keys: string[] = [];
      await withRawStore(location, async (raw) => {
        keys = await raw.snapshot.keys().all();
      });
      return [...new Set(keys.map((key) => (key.includes('!') ? key.slice(0, key.indexOf('!')) : '(legacy)')))].sort();
    };

    test('staged data becomes the snapshot only when saved, and the save drops every other generation', async () => {
      const dataDir = await temporaryDirectory();
      try {
        const location = await preparedStore(dataDir);
        assert.equal((await generations(location)).length, 1);
        const storage = await LevelStorage.open(dataDir, options);
        await storage.load();
        const data = bytesOf(4321, 3);
        const snapshot = { meta: { index: 4, term: 2, membership }, data };
        const staged = await storage.stageSnapshot(snapshot);
        assert.deepEqual({ index: staged.index, length: staged.length, crc32c: staged.crc32c }, { index: 4, length: 4321, crc32c: crc32c(data) });
        // Staged but not saved: a reopened store still has the old snapshot; the staged chunks lie beside it.
        await storage.close();
        assert.equal((await generations(location)).length, 2);
        let reopened = await LevelStorage.open(dataDir, options);
        let state = await reopened.load();
        assert.ok(state !== null);
        assert.equal(state.snapshot.meta.index, 2);
        assert.equal(state.snapshot.data.length, 2500);
        // Staged again and saved: the new data loads, the log is compacted to it, and one generation is left.
        const again = await reopened.stageSnapshot(snapshot);
        await reopened.saveSnapshot(snapshot, again);
        await reopened.close();
        assert.deepEqual(await generations(location), [again.generation]);
        reopened = await LevelStorage.open(dataDir, options);
        state = await reopened.load();
        await reopened.close();
        assert.ok(state !== null);
        assert.deepEqual(state.snapshot, snapshot);
        assert.deepEqual(state.entries, entriesOfPreparedStore.slice(4));
      } finally {
        await rm(dataDir, { recursive: true, force: true });
      }
    });

    test('Ready writes pass between the staging batches (the Ready loop is not held for the whole snapshot)', async () => {
      const dataDir = await temporaryDirectory();
      try {
        await preparedStore(dataDir);
        const storage = await LevelStorage.open(dataDir, options);
        await storage.load();
        // 3 MiB: at least three staging batches of at most 1 MiB.
        const snapshot = { meta: { index: 4, term: 2, membership }, data: bytesOf(3 * 1024 * 1024, 9) };
        const order: string[] = [];
        const staging = storage.stageSnapshot(snapshot).then((staged) => {
          order.push('staged');
          return staged;
        });
        // Queued after the first staging batch: it must not wait for the last one.
        await new Promise((resolve) => setImmediate(resolve));
        await storage.writeReady({ snapshot: null, entries: [normal(9, 2, 'x')], hardState: { term: 2, vote: 'a', commit: 4 } }, true);
        order.push('ready');
        const staged = await staging;
        assert.deepEqual(order, ['ready', 'staged']);
        await storage.saveSnapshot(snapshot, staged);
        await storage.close();
        const reopened = await LevelStorage.open(dataDir, options);
        const state = await reopened.load();
        await reopened.close();
        assert.ok(state !== null);
        assert.equal(state.snapshot.data.length, snapshot.data.length);
        assert.equal(crc32c(state.snapshot.data), crc32c(snapshot.data));
        assert.deepEqual(state.entries.map((entry) => entry.index), [5, 6, 7, 8, 9]);
      } finally {
        await rm(dataDir, { recursive: true, force: true });
      }
    });

    test('a store written before generations (chunks keyed by number, a 12-byte summary) loads, and the next save replaces it', async () => {
      const dataDir = await temporaryDirectory();
      try {
        const location = await preparedStore(dataDir);
        // Rewrite the prepared snapshot in the old layout: plain chunk keys and the summary without a generation.
        const data = Uint8Array.from({ length: 2500 }, (_, i) => i & 0xff);
        await withRawStore(location, async (raw) => {
          for (const key of await raw.snapshot.keys().all()) await raw.snapshot.del(key);
          for (let chunk = 0; chunk * 1000 < data.length; chunk++) await raw.snapshot.put(indexKey(chunk), data.subarray(chunk * 1000, (chunk + 1) * 1000));
          const summary = new Uint8Array(12);
          summary.set(encodeIndexValue(data.length), 0);
          new DataView(summary.buffer).setUint32(8, crc32c(data), false);
          await raw.meta.put(levelLayout.metaKeys.snapshotData, encodeChecksummed(summary));
        });
        assert.deepEqual(await generations(location), ['(legacy)']);
        const storage = await LevelStorage.open(dataDir, options);
        const state = await storage.load();
        assert.ok(state !== null);
        assert.deepEqual(state.snapshot.data, data);
        const snapshot = { meta: { index: 4, term: 2, membership }, data: bytesOf(1500, 1) };
        const staged = await storage.stageSnapshot(snapshot);
        await storage.saveSnapshot(snapshot, staged);
        await storage.close();
        assert.deepEqual(await generations(location), [staged.generation]);
      } finally {
        await rm(dataDir, { recursive: true, force: true });
      }
    });

    test('a large snapshot installed by writeReady is written in several batches and loads as one generation', async () => {
      const dataDir = await temporaryDirectory();
      try {
        const location = await preparedStore(dataDir);
        const storage = await LevelStorage.open(dataDir, options);
        await storage.load();
        // A leader's snapshot beyond this member's log: it replaces the whole log (2.5 MiB: three chunk batches).
        const snapshot = { meta: { index: 20, term: 3, membership }, data: bytesOf(2.5 * 1024 * 1024, 5) };
        await storage.writeReady({ snapshot, entries: [], hardState: { term: 3, vote: null, commit: 20 } }, true);
        await storage.close();
        assert.equal((await generations(location)).length, 1);
        const reopened = await LevelStorage.open(dataDir, options);
        const state = await reopened.load();
        await reopened.close();
        assert.ok(state !== null);
        assert.equal(state.snapshot.meta.index, 20);
        assert.equal(crc32c(state.snapshot.data), crc32c(snapshot.data));
        assert.deepEqual(state.entries, []);
      } finally {
        await rm(dataDir, { recursive: true, force: true });
      }
    });

    test('restoring an installed snapshot rewrites the keyspace in batches of at most 1 MiB, the applied index last; a crash half way leaves the applied index below the snapshot\'s, so load() has it restored again', async () => {
      const dataDir = await temporaryDirectory();
      /** countBatches wraps classic-level's batch of `storage` (a seam: the store's only write path), failing call `failAt`. */
      const countBatches = (storage: LevelStorage, failAt = Infinity): { calls: number } => {
        const db = (storage as unknown as { db: { _batch: (ops: unknown[], options: object) => Promise<void> } }).db;
        const original = db._batch.bind(db);
        const counter = { calls: 0 };
        db._batch = async (ops, batchOptions) => {
          counter.calls += 1;
          if (counter.calls === failAt) throw new Error('simulated crash: this batch never reached the disk');
          return original(ops, batchOptions);
        };
        return counter;
      };
      const fresh = Array.from({ length: 3000 }, (_, i) => ({ type: 'put' as const, key: `new-${String(i).padStart(5, '0')}`, value: bytesOf(1000, i) }));
      const keysOf = async (storage: LevelStorage): Promise<string[]> => {
        const keys: string[] = [];
        for await (const [key] of storage.keyspace()) keys.push(key);
        return keys;
      };
      try {
        const storage = await LevelStorage.open(dataDir, options);
        await storage.initialise({ clusterId: 'c1', memberId: 'a' }, membership);
        await storage.writeApplied([{ type: 'put', key: 'old-1', value: bytesOf(10, 1) }, { type: 'put', key: 'old-2', value: bytesOf(10, 2) }], 0, false);
        await storage.writeReady({ snapshot: { meta: { index: 20, term: 3, membership }, data: bytesOf(100, 3) }, entries: [], hardState: { term: 3, vote: null, commit: 20 } }, true);
        const counter = countBatches(storage);
        await storage.writeApplied(fresh, 20, true);
        // ~3 MB of puts and two deletes: three batches of at most 1 MiB, then the applied index alone.
        assert.ok(counter.calls >= 4, `${counter.calls} batches`);
        // Any other writeApplied (the stored applied index is the snapshot's now) stays one batch.
        counter.calls = 0;
        await storage.writeApplied(fresh.slice(0, 1500), 20, true);
        assert.equal(counter.calls, 1);
        await storage.writeApplied(fresh, 20, true);
        await storage.close();
        const reopened = await LevelStorage.open(dataDir, options);
        const state = await reopened.load();
        assert.equal(state?.applied, 20);
        assert.deepEqual(await keysOf(reopened), fresh.map((write) => write.key));
        // A newer snapshot is installed; its restore dies at its second batch.
        await reopened.writeReady({ snapshot: { meta: { index: 30, term: 3, membership }, data: bytesOf(100, 4) }, entries: [], hardState: { term: 3, vote: null, commit: 30 } }, true);
        countBatches(reopened, 2);
        await assert.rejects(reopened.writeApplied(fresh.map((write) => ({ ...write, value: bytesOf(1000, 7) })), 30, true), /simulated crash/);
        await reopened.close();
        const recovered = await LevelStorage.open(dataDir, options);
        const after = await recovered.load();
        await recovered.close();
        assert.ok(after !== null);
        assert.equal(after.snapshot.meta.index, 30);
        assert.ok(after.applied < after.snapshot.meta.index, `applied ${after.applied} stays below the snapshot's 30: the keyspace is not trusted`);
      } finally {
        await rm(dataDir, { recursive: true, force: true });
      }
    });

    test('saving with data staged for another snapshot is refused (a driver bug), and nothing changes', async () => {
      const dataDir = await temporaryDirectory();
      try {
        await preparedStore(dataDir);
        const storage = await LevelStorage.open(dataDir, options);
        await storage.load();
        const staged = await storage.stageSnapshot({ meta: { index: 3, term: 1, membership }, data: bytesOf(100, 2) });
        await assert.rejects(storage.saveSnapshot({ meta: { index: 4, term: 2, membership }, data: bytesOf(100, 2) }, staged), AssertionError);
        await storage.close();
        const reopened = await LevelStorage.open(dataDir, options);
        const state = await reopened.load();
        await reopened.close();
        assert.equal(state?.snapshot.meta.index, 2);
      } finally {
        await rm(dataDir, { recursive: true, force: true });
      }
    });
  });
});
