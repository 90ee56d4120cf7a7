// Goal: show that LevelStorage keeps a member's Raft state on disk as DESIGN.md requires: it passes the RaftStorage
// compliance suite through real reopens of a real LevelDB directory; corruption (a flipped byte, a truncated or
// misplaced record, a hole in the log, damaged meta or snapshot data) is detected by load() and reported as
// CAIRN_STORAGE_CORRUPT naming the index or key, never served; every entry acknowledged after a sync=true write
// survives the writer being killed with SIGKILL mid-stream; an installed snapshot's chunks (and those of an install
// that never finished) are deleted by the next compaction or install; compactLog leaves the keyspace as the snapshot
// (format cairn-raft-v3), a cairn-raft-v2 store is read and renamed, and a keyspace snapshot whose applied index is
// behind it is refused.
// Method: stores live in temporary directories under os.tmpdir(), removed after each test. Corruption is planted
// through a second, raw classic-level handle on the closed database (the layout comes from levelLayout), then a
// fresh LevelStorage loads it. The crash test spawns test/replica/fixtures/storage-writer.ts with
// `node --import tsx`, kills it with SIGKILL after a number of acknowledgements, three times over on the same
// directory, and checks that every acknowledged entry is there with its term and content. A failed batch is simulated
// by wrapping the store's one write path (classic-level's private _batch, countBatches).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
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
import { crc32c, decodeChecksummed, encodeChecksummed, encodeIndexValue, encodeStoredEntry, indexKey } from '../../src/replica/codec.ts';
import { LevelStorage, levelLayout } from '../../src/replica/level-storage.ts';
import { KEYSPACE_BATCH_RECORDS, type StoredRaftState } from '../../src/replica/storage.ts';
import { payloadOf } from './fixtures/storage-writer.ts';
import { normal, runStorageCompliance } from './storage-compliance.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '..', '..');
// Small chunks, so the compliance suite's 10 KB snapshot is stored as 11 chunks.
const options = { snapshotChunkBytes: 1000 };
const membership = { voters: ['a', 'b', 'c'], learners: [] };
const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

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

/** dataOfPreparedStore is the image of preparedStore's installed snapshot at 2. */
const dataOfPreparedStore = Uint8Array.from({ length: 2500 }, (_, i) => i & 0xff);

/**
 * preparedStore builds a closed store: a snapshot at 2 installed from the leader, whose 2,500 bytes take 3 chunks,
 * followed by the log 3..8 in the same Ready; the snapshot restored, then applied up to 4 (keyspace k=1).
 */
async function preparedStore(dataDir: string): Promise<string> {
  const storage = await LevelStorage.open(dataDir, options);
  await storage.initialise({ clusterId: 'c', memberId: 'a' }, membership);
  const snapshot = { meta: { index: 2, term: 1, membership }, data: dataOfPreparedStore };
  await storage.writeReady({ snapshot, entries: entriesOfPreparedStore.slice(2), hardState: { term: 2, vote: 'a', commit: 4 } }, true);
  await storage.writeApplied([], 2, true);
  await storage.writeApplied([{ type: 'put', key: 'k', value: new Uint8Array([1]) }], 4, false);
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
      assert.deepEqual(state.snapshot, { index: 2, term: 1, membership });
      assert.deepEqual(state.snapshotData, dataOfPreparedStore);
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

});

/** countBatches wraps classic-level's batch of `storage` (a seam: the store's only write path), failing call `failAt`. */
function countBatches(storage: LevelStorage, failAt = Infinity): { calls: number } {
  const db = (storage as unknown as { db: { _batch: (ops: unknown[], options: object) => Promise<void> } }).db;
  const original = db._batch.bind(db);
  const counter = { calls: 0 };
  db._batch = async (ops, batchOptions) => {
    counter.calls += 1;
    if (counter.calls === failAt) throw new Error('simulated crash: this batch never reached the disk');
    return original(ops, batchOptions);
  };
  return counter;
}

const bytesOf = (length: number, seed: number): Uint8Array => Uint8Array.from({ length }, (_, i) => (i * 31 + seed) & 0xff);

/** generations lists the generations of the stored snapshot chunks of a closed store ('(legacy)' for unprefixed ones). */
async function generations(location: string): Promise<string[]> {
  let keys: string[] = [];
  await withRawStore(location, async (raw) => {
    keys = await raw.snapshot.keys().all();
  });
  return [...new Set(keys.map((key) => (key.includes('!') ? key.slice(0, key.indexOf('!')) : '(legacy)')))].sort();
}

/** rawMetaText reads a text meta record of a closed store (its payload after the 4-byte CRC-32C, verified). */
async function rawMetaText(location: string, key: string, from = 0): Promise<string> {
  let payload: Uint8Array = new Uint8Array(0);
  await withRawStore(location, async (raw) => {
    payload = decodeChecksummed(await rawGet(raw.meta, key), `meta!${key}`);
  });
  return textDecoder.decode(payload.subarray(from));
}

/** summaryGeneration is the generation named by a closed store's data summary (after its length and CRC-32C). */
function summaryGeneration(location: string): Promise<string> {
  return rawMetaText(location, levelLayout.metaKeys.snapshotData, 12);
}

async function loadClosed(dataDir: string): Promise<{ state: StoredRaftState; keyspace: Array<[string, number[]]> }> {
  const storage = await LevelStorage.open(dataDir, options);
  try {
    const state = await storage.load();
    assert.ok(state !== null);
    const keyspace: Array<[string, number[]]> = [];
    for await (const batch of storage.keyspace()) for (const [key, value] of batch) keyspace.push([key, [...value]]);
    return { state, keyspace };
  } finally {
    await storage.close();
  }
}

describe('LevelStorage snapshots on disk: installs, compactLog, formats', () => {
  test('compactLog deletes the installed image\'s chunks and leaves a store that loads with snapshotData null and the keyspace intact, also after close and reopen', async () => {
    const dataDir = await temporaryDirectory();
    try {
      const location = await preparedStore(dataDir);
      assert.equal((await generations(location)).length, 1);
      const storage = await LevelStorage.open(dataDir, options);
      await storage.load();
      await storage.compactLog({ index: 4, term: 2, membership });
      const expected = { snapshot: { index: 4, term: 2, membership }, snapshotData: null, entries: entriesOfPreparedStore.slice(4), applied: 4 };
      const state = await storage.load();
      assert.deepEqual({ snapshot: state?.snapshot, snapshotData: state?.snapshotData, entries: state?.entries, applied: state?.applied }, expected);
      const keys: string[] = [];
      for await (const batch of storage.keyspace()) for (const [key] of batch) keys.push(key);
      assert.deepEqual(keys, ['k']);
      await storage.close();
      assert.deepEqual(await generations(location), [], 'no chunk is left: the keyspace is the image');
      assert.equal(await summaryGeneration(location), 'keyspace');
      assert.equal(await rawMetaText(location, levelLayout.metaKeys.format), levelLayout.format);
      for (let open = 0; open < 2; open++) {
        const reloaded = await loadClosed(dataDir);
        assert.deepEqual(reloaded.state, state, `open ${open}`);
        assert.deepEqual(reloaded.keyspace, [['k', [1]]]);
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  test('compactLog has LevelDB write the unsynced keyspace batches before it to a table (memtable flush) before its own batch', async () => {
    const dataDir = await temporaryDirectory();
    const marker = 'M0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEFGHIJKLMNOPQRSTUVWXYZ';
    try {
      const storage = await LevelStorage.open(dataDir, options);
      try {
        await storage.initialise({ clusterId: 'c', memberId: 'a' }, membership);
        await storage.writeReady({ snapshot: null, entries: entriesOfPreparedStore.slice(0, 3), hardState: { term: 1, vote: 'a', commit: 3 } }, true);
        await storage.writeApplied([{ type: 'put', key: 'svc!marked', value: textEncoder.encode(marker) }], 3, false);
        const inTables = (): boolean => readdirSync(storage.location).filter((name) => name.endsWith('.ldb'))
          .some((name) => readFileSync(path.join(storage.location, name)).includes(marker));
        assert.equal(inTables(), false, 'an unsynced apply sits in the memtable and the write-ahead log only');
        await storage.compactLog({ index: 3, term: 1, membership });
        assert.equal(inTables(), true, 'the flush put it in a table, fsynced with the MANIFEST');
      } finally {
        await storage.close();
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  test('keyspace records are never left in an unsynced batch: writeApplied fsyncs, and a restore in batches is flushed to tables before the fsynced applied index that trusts it', async () => {
    // LevelDB does not fsync a write-ahead log it rotates away from: an unsynced keyspace batch could be lost in a
    // power failure while a later synced one survives, a hole under a later applied index.
    const dataDir = await temporaryDirectory();
    try {
      const storage = await LevelStorage.open(dataDir, options);
      try {
        await storage.initialise({ clusterId: 'c', memberId: 'a' }, membership);
        await storage.writeReady({ snapshot: null, entries: entriesOfPreparedStore.slice(0, 3), hardState: { term: 1, vote: 'a', commit: 3 } }, true);
        const db = (storage as unknown as { db: { _batch: (ops: Array<{ key: string }>, options: { sync: boolean }) => Promise<void>; compactRange: (a: string, b: string) => Promise<void> } }).db;
        const events: string[] = [];
        const batch = db._batch.bind(db);
        const compactRange = db.compactRange.bind(db);
        db._batch = async (ops, batchOptions) => {
          const state = ops.some((op) => op.key.startsWith('!state!'));
          events.push(`${state ? 'state' : 'meta'}${batchOptions.sync ? '+sync' : ''}`);
          return batch(ops, batchOptions);
        };
        db.compactRange = async (a, b) => {
          events.push('flush');
          return compactRange(a, b);
        };
        await storage.writeApplied([{ type: 'put', key: 'svc!a', value: new Uint8Array([1]) }], 3, false);
        assert.deepEqual(events, ['state+sync'], 'a writeApplied is one fsynced batch');
        // A snapshot installed past the log, then restored in batches of at most 1 MiB (3 MiB of keyspace here).
        events.length = 0;
        await storage.writeReady({ snapshot: { meta: { index: 10, term: 2, membership }, data: new Uint8Array(10) }, entries: [], hardState: { term: 2, vote: null, commit: 10 } }, true);
        events.length = 0;
        const big = Array.from({ length: 3 }, (_, i) => ({ type: 'put' as const, key: `svc!big${i}`, value: new Uint8Array(1024 * 1024) }));
        await storage.writeApplied(big, 10, true);
        const flushAt = events.indexOf('flush');
        assert.ok(events.filter((e) => e.startsWith('state')).length >= 3, `the keyspace went in several batches: ${events.join(', ')}`);
        assert.ok(flushAt > 0 && events.slice(0, flushAt).every((e) => e.startsWith('state')), `every keyspace batch comes before the flush: ${events.join(', ')}`);
        assert.deepEqual(events.slice(flushAt + 1), ['meta+sync'], 'then the applied index, fsynced');
      } finally {
        await storage.close();
      }
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
      const counter = countBatches(storage);
      await storage.writeReady({ snapshot, entries: [], hardState: { term: 3, vote: null, commit: 20 } }, true);
      assert.equal(counter.calls, 4, 'three chunk batches of at most 1 MiB, then the batch that names their generation');
      await storage.close();
      assert.equal((await generations(location)).length, 1);
      const { state } = await loadClosed(dataDir);
      assert.equal(state.snapshot.index, 20);
      assert.ok(state.snapshotData !== null);
      assert.equal(crc32c(state.snapshotData), crc32c(snapshot.data));
      assert.deepEqual(state.entries, []);
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  const nextWrites: ReadonlyArray<readonly [string, (storage: LevelStorage) => Promise<string[]>]> = [
    ['the next compaction', async (storage) => {
      await storage.compactLog({ index: 4, term: 2, membership });
      return [];
    }],
    ['the next install', async (storage) => {
      await storage.writeReady({ snapshot: { meta: { index: 12, term: 3, membership }, data: bytesOf(1500, 8) }, entries: [], hardState: { term: 3, vote: null, commit: 12 } }, true);
      return ['one new generation'];
    }],
  ];
  for (const [name, next] of nextWrites) {
    test(`chunks of an install whose last batch failed are ignored by load() and deleted by ${name}`, async () => {
      const dataDir = await temporaryDirectory();
      try {
        const location = await preparedStore(dataDir);
        const [current] = await generations(location);
        let storage = await LevelStorage.open(dataDir, options);
        await storage.load();
        // The chunks reach the disk (batch 1), the batch naming their generation does not (batch 2).
        countBatches(storage, 2);
        const interrupted = { meta: { index: 10, term: 3, membership }, data: bytesOf(2500, 4) };
        await assert.rejects(storage.writeReady({ snapshot: interrupted, entries: [], hardState: { term: 3, vote: null, commit: 10 } }, true), /simulated crash/);
        await storage.close();
        const leftover = (await generations(location)).filter((generation) => generation !== current);
        assert.equal(leftover.length, 1, 'the interrupted install left its chunks');
        const { state } = await loadClosed(dataDir);
        assert.equal(state.snapshot.index, 2);
        assert.deepEqual(state.snapshotData, dataOfPreparedStore, 'the stored snapshot is the one before the install');
        assert.deepEqual(state.entries, entriesOfPreparedStore.slice(2));
        storage = await LevelStorage.open(dataDir, options);
        await storage.load();
        const expected = await next(storage);
        await storage.close();
        const after = await generations(location);
        assert.equal(after.length, expected.length, JSON.stringify(after));
        assert.ok(after.every((generation) => generation !== current && !leftover.includes(generation)), 'neither the old image nor the leftover chunks remain');
        assert.equal(await summaryGeneration(location), after[0] ?? 'keyspace');
      } finally {
        await rm(dataDir, { recursive: true, force: true });
      }
    });
  }

  test('a store written before generations (chunks keyed by number, a 12-byte summary) loads, and the next compaction deletes its chunks', async () => {
    const dataDir = await temporaryDirectory();
    try {
      const location = await preparedStore(dataDir);
      // Rewrite the prepared snapshot in the old layout: plain chunk keys and the summary without a generation.
      const data = dataOfPreparedStore;
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
      assert.deepEqual(state.snapshotData, data);
      await storage.compactLog({ index: 4, term: 2, membership });
      await storage.close();
      assert.deepEqual(await generations(location), []);
      assert.equal((await loadClosed(dataDir)).state.snapshotData, null);
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  test('restoring an installed snapshot rewrites the keyspace in batches of at most 1 MiB, the applied index last; a crash half way leaves the applied index below the snapshot\'s, so load() has it restored again', async () => {
    const dataDir = await temporaryDirectory();
    const fresh = Array.from({ length: 3000 }, (_, i) => ({ type: 'put' as const, key: `new-${String(i).padStart(5, '0')}`, value: bytesOf(1000, i) }));
    const keysOf = async (storage: LevelStorage): Promise<string[]> => {
      const keys: string[] = [];
      for await (const batch of storage.keyspace()) for (const [key] of batch) keys.push(key);
      return keys;
    };
    try {
      const storage = await LevelStorage.open(dataDir, options);
      await storage.initialise({ clusterId: 'c1', memberId: 'a' }, membership);
      // More old keys than one read batch (1 024), some of them also among the new keys (deleted, then put again).
      const old = Array.from({ length: 2500 }, (_, i) => ({ type: 'put' as const, key: i < 100 ? `new-${String(i).padStart(5, '0')}` : `old-${i}`, value: bytesOf(10, i) }));
      await storage.writeApplied(old, 0, false);
      await storage.writeReady({ snapshot: { meta: { index: 20, term: 3, membership }, data: bytesOf(100, 3) }, entries: [], hardState: { term: 3, vote: null, commit: 20 } }, true);
      const counter = countBatches(storage);
      await storage.writeApplied(fresh, 20, true);
      // 2 500 deletes in three batches, ~3 MB of puts in three batches of at most 1 MiB, then the applied index alone.
      assert.ok(counter.calls >= 7, `${counter.calls} batches`);
      const restored = new Map<string, Uint8Array>();
      for await (const batch of storage.keyspace()) for (const [key, value] of batch) restored.set(key, value);
      assert.deepEqual([...restored.keys()], fresh.map((write) => write.key), 'exactly the new keys, the old ones deleted');
      assert.deepEqual(restored.get('new-00042'), bytesOf(1000, 42), 'a key both old and new holds its new value');
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
      const { state: after } = await loadClosed(dataDir);
      assert.equal(after.snapshot.index, 30);
      assert.ok(after.applied < after.snapshot.index, `applied ${after.applied} stays below the snapshot's 30: the keyspace is not trusted`);
      assert.deepEqual(after.snapshotData, bytesOf(100, 4), 'the image to restore again is there');
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  test('a store of format cairn-raft-v2 loads as it is and is renamed cairn-raft-v3', async () => {
    const dataDir = await temporaryDirectory();
    try {
      const location = await preparedStore(dataDir);
      const before = await loadClosed(dataDir);
      // Make it what the previous Cairn wrote: the same records under the v2 format name.
      await withRawStore(location, async (raw) => {
        await raw.meta.put(levelLayout.metaKeys.format, encodeChecksummed(textEncoder.encode(levelLayout.formatV2)));
      });
      assert.equal(await rawMetaText(location, levelLayout.metaKeys.format), levelLayout.formatV2);
      for (let open = 0; open < 2; open++) {
        assert.deepEqual(await loadClosed(dataDir), before, `open ${open}: the same state, the installed image included`);
        assert.equal(await rawMetaText(location, levelLayout.metaKeys.format), levelLayout.format, `open ${open}`);
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  test('a keyspace snapshot whose applied index is below it is refused with CAIRN_STORAGE_CORRUPT', async () => {
    const dataDir = await temporaryDirectory();
    try {
      await preparedStore(dataDir);
      const storage = await LevelStorage.open(dataDir, options);
      await storage.load();
      await storage.compactLog({ index: 4, term: 2, membership });
      await storage.close();
      assert.equal(await summaryGeneration(storage.location), 'keyspace');
      // compactLog wrote the keyspace durably before the snapshot relying on it: a keyspace behind it is damage.
      await withRawStore(storage.location, async (raw) => {
        await raw.meta.put(levelLayout.metaKeys.applied, encodeChecksummed(encodeIndexValue(3)));
      });
      const damaged = await LevelStorage.open(dataDir, options);
      try {
        await assert.rejects(damaged.load(), (error: unknown) => {
          assert.ok(isCairnError(error, 'CAIRN_STORAGE_CORRUPT'), `expected CAIRN_STORAGE_CORRUPT, got ${String(error)}`);
          assert.match(error.message, /the keyspace is the snapshot at 4 but its applied index is 3/);
          assert.equal(error.details?.['index'], 3);
          return true;
        });
        await assert.rejects(damaged.compactLog({ index: 5, term: 2, membership }), AssertionError, 'a store that failed to load is never written');
      } finally {
        await damaged.close();
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

test('a data directory whose LevelDB another opener holds is refused with CAIRN_DATA_DIR_IN_USE, and opens once it is let go', async () => {
  const dataDir = await temporaryDirectory();
  try {
    const first = await LevelStorage.open(dataDir, options);
    try {
      await assert.rejects(LevelStorage.open(dataDir, options), (error: unknown) => {
        assert.ok(isCairnError(error, 'CAIRN_DATA_DIR_IN_USE'), `expected CAIRN_DATA_DIR_IN_USE, got ${String(error)}`);
        assert.match(error.message, /is a member still running on this data directory\?/);
        return true;
      });
    } finally {
      await first.close();
    }
    const second = await LevelStorage.open(dataDir, options);
    assert.equal(await second.load(), null);
    await second.close();
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});

test('the keyspace is read in full batches of KEYSPACE_BATCH_RECORDS instance-sized records, not classic-level\'s 16 KiB default', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cairn-level-batches-'));
  const storage = await LevelStorage.open(dir);
  try {
    await storage.initialise({ clusterId: 'c', memberId: 'a' }, { voters: ['a'], learners: [] });
    await storage.writeReady({ snapshot: null, entries: [normal(1, 1)], hardState: { term: 1, vote: null, commit: 1 } }, true);
    // ~450 bytes a record, as an instance with its metadata: 16 KiB held ~35 of them.
    const records = 2 * KEYSPACE_BATCH_RECORDS + 10;
    const value = new Uint8Array(450).fill(7);
    await storage.writeApplied(Array.from({ length: records }, (_, i) => ({ type: 'put' as const, key: `i/svc/${String(i).padStart(6, '0')}`, value })), 1, false);
    const sizes: number[] = [];
    for await (const batch of storage.keyspace()) sizes.push(batch.length);
    assert.deepEqual(sizes, [KEYSPACE_BATCH_RECORDS, KEYSPACE_BATCH_RECORDS, 10]);
    const viewSizes: number[] = [];
    for await (const batch of (await storage.keyspaceView()).batches) viewSizes.push(batch.length);
    assert.deepEqual(viewSizes, sizes, 'a keyspace view (state digests) reads the same batches');
  } finally {
    await storage.close();
    await rm(dir, { recursive: true, force: true });
  }
});
