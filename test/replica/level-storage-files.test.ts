// Goal: show that damage to a member's LevelDB files on disk (PEERS.md A7, what the jepsen-like corrupt nemesis does)
// never reaches the registry unnoticed: a bit flipped inside a keyspace record's value or key in a sorted table is
// reported by keyspace() as CAIRN_STORAGE_CORRUPT (the record's CRC-32C covers its key and value), a table cut short
// is reported by load() as CAIRN_STORAGE_CORRUPT (not as LevelDB's own IO error, which carries no Cairn code), and a
// store of the earlier format (cairn-raft-v1, keyspace records without checksums) still loads and is rewritten once
// in the checksummed format.
// Method: real stores in temporary directories. A store is written through LevelStorage and closed; a raw classic-level
// open and close then recovers its write-ahead log into a level-0 table (LevelDB does so on every open), so the
// records sit in an .ldb file. The test finds a record's bytes in that file (a value or key that occurs once, stored
// as a snappy literal or uncompressed, so byte for byte), flips one bit there, and loads the store again. LevelDB
// reads tables without verifying block checksums (classic-level does not turn verify_checksums on), so before the
// keyspace records carried their own checksum, the flipped value was served as it was (the jepsen-like run
// 2026-11-22T07-13-32-180Z-A7-s11700, fault #3, found one such record).
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { readdirSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { ClassicLevel } from 'classic-level';

import { isCairnError } from '../../src/errors.ts';
import { encodeChecksummed } from '../../src/replica/codec.ts';
import { LevelStorage, levelLayout } from '../../src/replica/level-storage.ts';
import { normal } from './storage-compliance.ts';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** valueMarker and keyMarker occur once each in the store and share no 4 bytes with the rest (snappy would back-reference them). */
const valueMarker = 'V0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEFGHIJKLMNOPQRSTUVWXYZ';
const keyMarker = 'ins!key-marker-zyxwvutsrqponmlkjihgfedcba';

async function withTemporaryDirectory(run: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cairn-level-files-'));
  try {
    await run(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** writeStore writes a small member store: 3 entries, applied 3, two keyspace records (one with each marker). */
async function writeStore(dataDir: string): Promise<void> {
  const storage = await LevelStorage.open(dataDir);
  await storage.initialise({ clusterId: 'c', memberId: 'a' }, { voters: ['a', 'b', 'c'], learners: [] });
  await storage.writeReady({ snapshot: null, entries: [normal(1, 1, 'x'), normal(2, 1, 'y'), normal(3, 1, 'z')], hardState: { term: 1, vote: 'a', commit: 3 } }, true);
  await storage.writeApplied([
    { type: 'put', key: 'svc!service-record', value: encoder.encode(valueMarker) },
    { type: 'put', key: keyMarker, value: encoder.encode('instance-record') },
  ], 3, false);
  await storage.close();
}

/** recoverIntoTable opens and closes the database raw: LevelDB recovers its write-ahead log into a level-0 table. */
async function recoverIntoTable(dataDir: string): Promise<string> {
  const location = path.join(dataDir, levelLayout.directory);
  const db = new ClassicLevel(location);
  await db.open();
  await db.close();
  const tables = readdirSync(location).filter((name) => name.endsWith('.ldb'));
  assert.equal(tables.length, 1, `one table after recovery: ${tables.join(', ')}`);
  return path.join(location, tables[0] as string);
}

/** flipInFile flips bit 0 of the byte `at` characters into the only occurrence of `marker` in `file`. */
function flipInFile(file: string, marker: string, at: number): void {
  const bytes = readFileSync(file);
  const offset = bytes.indexOf(marker);
  assert.ok(offset >= 0, `${marker} is stored byte for byte in ${path.basename(file)}`);
  assert.equal(bytes.indexOf(marker, offset + 1), -1, `${marker} occurs once`);
  bytes[offset + at] = (bytes[offset + at] ?? 0) ^ 0x01;
  writeFileSync(file, bytes);
}

async function keyspaceOf(storage: LevelStorage): Promise<Array<[string, string]>> {
  const pairs: Array<[string, string]> = [];
  for await (const batch of storage.keyspace()) for (const [key, value] of batch) pairs.push([key, decoder.decode(value)]);
  return pairs;
}

/** expectCorrupt asserts that `work` fails with CAIRN_STORAGE_CORRUPT whose message matches `message`. */
async function expectCorrupt(work: Promise<unknown>, message: RegExp): Promise<void> {
  await assert.rejects(work, (error: unknown) => {
    assert.ok(isCairnError(error, 'CAIRN_STORAGE_CORRUPT'), `expected CAIRN_STORAGE_CORRUPT, got ${String(error)}`);
    assert.match(error.message, message);
    return true;
  });
}

describe('LevelStorage: damaged files on disk', () => {
  test('the undamaged store, recovered into a table, loads with its keyspace (the baseline)', async () => {
    await withTemporaryDirectory(async (dir) => {
      await writeStore(dir);
      await recoverIntoTable(dir);
      const storage = await LevelStorage.open(dir);
      try {
        const stored = await storage.load();
        assert.equal(stored?.entries.length, 3);
        assert.deepEqual(await keyspaceOf(storage), [[keyMarker, 'instance-record'], ['svc!service-record', valueMarker]]);
      } finally {
        await storage.close();
      }
    });
  });

  test('a bit flipped inside a keyspace value in a table is CAIRN_STORAGE_CORRUPT, never the changed value', async () => {
    await withTemporaryDirectory(async (dir) => {
      await writeStore(dir);
      flipInFile(await recoverIntoTable(dir), valueMarker, 30);
      const storage = await LevelStorage.open(dir);
      try {
        assert.equal((await storage.load())?.entries.length, 3, 'the log and meta are intact');
        await expectCorrupt(keyspaceOf(storage), /state!svc!service-record: .*crc32c mismatch/);
      } finally {
        await storage.close();
      }
    });
  });

  test('a bit flipped inside a keyspace key is CAIRN_STORAGE_CORRUPT (the checksum covers the key)', async () => {
    await withTemporaryDirectory(async (dir) => {
      await writeStore(dir);
      flipInFile(await recoverIntoTable(dir), keyMarker, 20);
      const storage = await LevelStorage.open(dir);
      try {
        await storage.load();
        await expectCorrupt(keyspaceOf(storage), /crc32c mismatch/);
      } finally {
        await storage.close();
      }
    });
  });

  test('a table cut short is CAIRN_STORAGE_CORRUPT from load(), not LevelDB\'s uncoded error', async () => {
    await withTemporaryDirectory(async (dir) => {
      await writeStore(dir);
      const table = await recoverIntoTable(dir);
      truncateSync(table, Math.floor(statSync(table).size / 2));
      const storage = await LevelStorage.open(dir);
      try {
        await expectCorrupt(storage.load(), /LevelDB could not read its files: .*000005\.ldb/);
      } finally {
        await storage.close();
      }
    });
  });

  test('a store of format cairn-raft-v1 (keyspace without checksums) loads, and is rewritten once as checksummed', async () => {
    await withTemporaryDirectory(async (dir) => {
      await writeStore(dir);
      // Make it what an earlier Cairn wrote: the v1 format name and bare keyspace values.
      const location = path.join(dir, levelLayout.directory);
      const raw = new ClassicLevel<string, Uint8Array>(location, { valueEncoding: 'view' });
      await raw.open();
      const meta = raw.sublevel<string, Uint8Array>(levelLayout.sublevels.meta, { valueEncoding: 'view' });
      const state = raw.sublevel<string, Uint8Array>(levelLayout.sublevels.state, { valueEncoding: 'view' });
      await meta.put(levelLayout.metaKeys.format, encodeChecksummed(encoder.encode(levelLayout.formatV1)));
      await state.put('svc!service-record', encoder.encode(valueMarker));
      await state.put(keyMarker, encoder.encode('instance-record'));
      await raw.close();
      for (let open = 0; open < 2; open++) {
        const storage = await LevelStorage.open(dir);
        try {
          assert.equal((await storage.load())?.entries.length, 3);
          assert.deepEqual(await keyspaceOf(storage), [[keyMarker, 'instance-record'], ['svc!service-record', valueMarker]], `open ${open}`);
        } finally {
          await storage.close();
        }
      }
      const again = new ClassicLevel<string, Uint8Array>(location, { valueEncoding: 'view' });
      await again.open();
      try {
        const format = await again.sublevel<string, Uint8Array>(levelLayout.sublevels.meta, { valueEncoding: 'view' }).get(levelLayout.metaKeys.format);
        assert.equal(decoder.decode((format ?? new Uint8Array(4)).subarray(4)), levelLayout.format);
        const stored = await again.sublevel<string, Uint8Array>(levelLayout.sublevels.state, { valueEncoding: 'view' }).get('svc!service-record');
        assert.equal(stored?.length, valueMarker.length + 4, 'the migrated value carries its 4-byte checksum');
      } finally {
        await again.close();
      }
    });
  });
});
