// Goal: the replica-consistency digest (src/replica/state-digest.ts) is a function of the stored keyspace and its
// applied index alone: LevelDB and the in-memory twin give the same digest for the same writes, in the documented
// format; any changed, added or removed record changes it; it is taken from one view between writes (a write queued
// after the view is not in it, however long the read takes); a keyspace that is not the state at any index (a
// snapshot from the leader not restored yet) is refused with CAIRN_MEMBER_BEHIND.
// Method: real LevelStorage on a temporary directory beside MemoryStorage, fed the same entries and keyspace writes;
// the expected digest is computed here from the format's definition.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { isCairnError } from '../../src/errors.ts';
import { LevelStorage } from '../../src/replica/level-storage.ts';
import { MemoryDisk, MemoryStorage } from '../../src/replica/memory-storage.ts';
import type { BatchWrite } from '../../src/replica/state-machine.ts';
import { digestKeyspace, digestView } from '../../src/replica/state-digest.ts';
import { KEYSPACE_BATCH_RECORDS, type RaftStorage } from '../../src/replica/storage.ts';
import { normal } from './storage-compliance.ts';

const membership = { voters: ['a', 'b', 'c'], learners: [] };
const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

/** expectedDigest is the format's definition: per record in UTF-8 key order, 4+4 length bytes, key, value. */
function expectedDigest(records: ReadonlyMap<string, Uint8Array>): string {
  const hash = createHash('sha256');
  const keys = [...records.keys()].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  for (const key of keys) {
    const value = records.get(key) ?? new Uint8Array(0);
    const lengths = Buffer.alloc(8);
    lengths.writeUInt32BE(Buffer.byteLength(key), 0);
    lengths.writeUInt32BE(value.length, 4);
    hash.update(lengths).update(Buffer.from(key)).update(value);
  }
  return hash.digest('hex');
}

async function prepared(storage: RaftStorage, entries: number): Promise<void> {
  await storage.initialise({ clusterId: 'c', memberId: 'a' }, membership);
  await storage.writeReady({ snapshot: null, entries: Array.from({ length: entries }, (_, i) => normal(i + 1, 1)), hardState: { term: 1, vote: null, commit: entries } }, true);
}

async function withBoth(run: (stores: readonly RaftStorage[]) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cairn-state-digest-'));
  const level = await LevelStorage.open(dir);
  const memory = new MemoryStorage(new MemoryDisk());
  try {
    await run([level, memory]);
  } finally {
    await level.close();
    await memory.close();
    await rm(dir, { recursive: true, force: true });
  }
}

test('LevelDB and the twin give the digest the format defines; every change of a record changes it', async () => {
  await withBoth(async (stores) => {
    const records = new Map<string, Uint8Array>();
    // More than one read batch, keys whose UTF-8 order differs from their UTF-16 order, an empty value.
    for (let i = 0; i < KEYSPACE_BATCH_RECORDS + 300; i++) records.set(`svc/${String(i).padStart(5, '0')}`, bytes(`value ${i}`));
    records.set('z\u{1F600}', bytes('astral'));
    records.set('z\uFFFD', bytes('bmp'));
    records.set('empty', new Uint8Array(0));
    const writes: BatchWrite[] = [...records].map(([key, value]) => ({ type: 'put', key, value }));
    for (const storage of stores) {
      await prepared(storage, 10);
      await storage.writeApplied(writes, 4, false);
    }
    const [level, memory] = await Promise.all(stores.map((storage) => digestKeyspace(storage)));
    assert.deepEqual(level, memory);
    assert.equal(level?.applied, 4);
    assert.equal(level?.records, records.size);
    assert.equal(level?.sha256, expectedDigest(records));
    assert.equal(level?.bytes, [...records].reduce((sum, [key, value]) => sum + Buffer.byteLength(key) + value.length, 0));

    const seen = new Set([level?.sha256]);
    const changes: ReadonlyArray<readonly [string, BatchWrite]> = [
      ['a value changed by one bit', { type: 'put', key: 'svc/00007', value: bytes('value 6') }],
      ['a record removed', { type: 'del', key: 'svc/00008' }],
      ['a record added', { type: 'put', key: 'svc/00008x', value: bytes('value 8') }],
      ['a key and value split differently', { type: 'put', key: 'svc/0001', value: bytes('0value') }],
    ];
    let applied = 4;
    for (const [what, write] of changes) {
      applied++;
      if (write.type === 'put') records.set(write.key, write.value);
      else records.delete(write.key);
      for (const storage of stores) await storage.writeApplied([write], applied, false);
      const digests = await Promise.all(stores.map((storage) => digestKeyspace(storage)));
      assert.equal(digests[0]?.sha256, expectedDigest(records), what);
      assert.deepEqual(digests[0], digests[1], what);
      assert.equal(seen.has(digests[0]?.sha256), false, `${what}: the digest did not change`);
      seen.add(digests[0]?.sha256);
    }
  });
});

test('the digest is of the view taken between writes: a write made after the view was taken is not in it', async () => {
  await withBoth(async (stores) => {
    const level = stores[0] as LevelStorage;
    await prepared(level, 10);
    const records = new Map<string, Uint8Array>();
    for (let i = 0; i < 3 * KEYSPACE_BATCH_RECORDS; i++) records.set(`k${String(i).padStart(6, '0')}`, bytes(`v${i}`.repeat(8)));
    await level.writeApplied([...records].map(([key, value]) => ({ type: 'put', key, value })), 3, false);
    const before = expectedDigest(records);
    // Written after the view was taken and before a record of it is read: a record removed, 100 rewritten.
    const view = await level.keyspaceView();
    const later: BatchWrite[] = [{ type: 'del', key: 'k000000' }, ...Array.from({ length: 100 }, (_, i) => ({ type: 'put' as const, key: `k${String(3000 + i).padStart(6, '0')}`, value: bytes('rewritten') }))];
    await level.writeApplied(later, 6, false);
    const digest = await digestView(view);
    assert.equal(digest.applied, 3);
    assert.equal(digest.sha256, before);
    records.delete('k000000');
    for (const write of later) if (write.type === 'put') records.set(write.key, write.value);
    const after = await digestKeyspace(level);
    assert.equal(after.applied, 6);
    assert.equal(after.sha256, expectedDigest(records));
  });
});

test('a snapshot received but not restored yet is the state at no index: CAIRN_MEMBER_BEHIND', async () => {
  await withBoth(async (stores) => {
    for (const storage of stores) {
      await prepared(storage, 2);
      await storage.writeApplied([{ type: 'put', key: 'old', value: bytes('x') }], 2, false);
      await storage.writeReady({ snapshot: { meta: { index: 20, term: 3, membership }, data: bytes('image') }, entries: [], hardState: { term: 3, vote: null, commit: 20 } }, true);
      await assert.rejects(digestKeyspace(storage), (error: unknown) => isCairnError(error) && error.code === 'CAIRN_MEMBER_BEHIND');
      // Restored (the keyspace rewritten with the snapshot's index): trusted again.
      await storage.writeApplied([{ type: 'del', key: 'old' }, { type: 'put', key: 'new', value: bytes('y') }], 20, true);
      const digest = await digestKeyspace(storage);
      assert.equal(digest.applied, 20);
      assert.equal(digest.sha256, expectedDigest(new Map([['new', bytes('y')]])));
    }
  });
});

test('a store closed while a digest reads refuses it CAIRN_SHUTTING_DOWN, not as corruption', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cairn-state-digest-'));
  const level = await LevelStorage.open(dir);
  try {
    await prepared(level, 3);
    const writes: BatchWrite[] = Array.from({ length: 4 * KEYSPACE_BATCH_RECORDS }, (_, i) => ({ type: 'put', key: `k${String(i).padStart(6, '0')}`, value: bytes('v'.repeat(100)) }));
    await level.writeApplied(writes, 2, false);
    const view = await level.keyspaceView();
    const batches = view.batches[Symbol.asyncIterator]();
    assert.equal((await batches.next()).done, false);
    await level.close();
    await assert.rejects(async () => {
      while ((await batches.next()).done !== true) { /* read on until the closed store refuses */ }
    }, (error: unknown) => isCairnError(error) && error.code === 'CAIRN_SHUTTING_DOWN');
    await assert.rejects(level.keyspaceView(), (error: unknown) => isCairnError(error) && error.code === 'CAIRN_SHUTTING_DOWN');
  } finally {
    await level.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('a store without keyspaceView (an optional capability of the seam) cannot be digested: CAIRN_NOT_IMPLEMENTED', async () => {
  const memory = new MemoryStorage(new MemoryDisk());
  await prepared(memory, 1);
  const without = Object.create(memory, { keyspaceView: { value: undefined } }) as RaftStorage;
  await assert.rejects(digestKeyspace(without), (error: unknown) => isCairnError(error) && error.code === 'CAIRN_NOT_IMPLEMENTED');
  await memory.close();
});

test('a paced digest awaits its pace once per read batch, with the time it worked, and digests the same view', async () => {
  await withBoth(async (stores) => {
    const records = new Map<string, Uint8Array>();
    for (let i = 0; i < 2 * KEYSPACE_BATCH_RECORDS + 5; i++) records.set(`p${String(i).padStart(6, '0')}`, bytes(`value ${i}`.repeat(4)));
    for (const storage of stores) {
      await prepared(storage, 10);
      await storage.writeApplied([...records].map(([key, value]) => ({ type: 'put', key, value })), 7, false);
      const worked: number[] = [];
      let resting = false;
      const paced = await digestView(await storage.keyspaceView!(), async (workedMs) => {
        assert.equal(resting, false, 'the digest waits for its pace before it goes on');
        worked.push(workedMs);
        resting = true;
        await new Promise((resolve) => setTimeout(resolve, 2));
        resting = false;
      });
      assert.equal(paced.sha256, expectedDigest(records));
      assert.equal(paced.records, records.size);
      assert.equal(paced.applied, 7);
      // One pace per read batch: a batch holds at most KEYSPACE_BATCH_RECORDS records (LevelDB's nextv may hand out fewer).
      assert.ok(worked.length >= Math.ceil(records.size / KEYSPACE_BATCH_RECORDS) && worked.length <= records.size, `paces: ${worked.length}`);
      for (const ms of worked) assert.ok(Number.isFinite(ms) && ms >= 0, `worked ${ms} ms`);
      assert.equal((await digestKeyspace(storage)).sha256, paced.sha256, 'paced or not, one digest');
    }
  });
});
