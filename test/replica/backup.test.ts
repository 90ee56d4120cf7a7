// Goal: the backup file and the two halves of a backup (src/replica/backup.ts) do what docs/operations.md promises:
// a backup holds the member's state as of the last entry it knew committed (entries committed but not yet applied
// included, entries not known committed excluded) and the voters at that entry; the data directory it reads is not
// written; a damaged file (any truncation, any flipped bit) is refused, never read as another backup; a header that
// breaks a field rule is refused with what is wrong; a restore refuses a data directory that is not empty and writes
// a store that a member loads as a snapshot installed from its leader.
// Method: real LevelStorage stores in temporary directories, written with the registry's own commands through the
// real RegistryStateMachine; no member process (test/cluster/backup.test.ts runs the CLI against a real cluster).
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { encodeCommand, type RegistryCommand } from '../../src/cp/commands.ts';
import { RegistryStateMachine } from '../../src/cp/registry-state-machine.ts';
import { isCairnError } from '../../src/errors.ts';
import type { Entry } from '../../src/raft/types.ts';
import { backupMagic, checkImage, decodeBackup, encodeBackup, restoreBackup, takeBackup, type Backup, type BackupHeader } from '../../src/replica/backup.ts';
import { crc32c } from '../../src/replica/codec.ts';
import { LevelStorage } from '../../src/replica/level-storage.ts';
import type { BatchWrite } from '../../src/replica/state-machine.ts';
import { mountOrSkip, skipUnlessRoot, unmount } from '../support/mounts.ts';

const service = { namespace: 'public', group: 'DEFAULT_GROUP', service: 'orders' };
const self = '127.0.0.1:8848';

function register(n: number): RegistryCommand {
  return { type: 'registerInstance', key: service, instance: { cluster: 'DEFAULT', ip: `10.0.0.${n}`, port: 3306, weight: 1, enabled: true, healthy: true, metadata: { n: String(n) } } };
}

function entry(index: number, term: number, command: RegistryCommand): Entry {
  return { kind: 'normal', index, term, data: encodeCommand({ requestId: `r-${index}`, command }) };
}

async function temporaryDirectory(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cairn-backup-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const ipsOf = (machine: RegistryStateMachine): string[] => machine.listInstances(service).map((instance) => instance.ip).sort();

/**
 * prepareMember writes a one-voter member whose log holds entries 1..6 (registrations of 10.0.0.1-6; entry 4 in term
 * 2, then a membership entry adding two voters at 5), of which 1-2 are applied to the stored keyspace and the hard
 * state says 5 are committed.
 */
async function prepareMember(dataDir: string): Promise<void> {
  const storage = await LevelStorage.open(dataDir);
  try {
    await storage.initialise({ clusterId: 'c', memberId: self }, { voters: [self], learners: [] });
    const three = { voters: [self, '127.0.0.2:8848', '127.0.0.3:8848'], learners: [] };
    const entries: Entry[] = [
      entry(1, 1, register(1)),
      entry(2, 1, register(2)),
      entry(3, 1, register(3)),
      entry(4, 2, register(4)),
      { kind: 'membership', index: 5, term: 2, change: { type: 'add-learner', node: '127.0.0.2:8848' }, membership: three },
      entry(6, 2, register(6)),
    ];
    await storage.writeReady({ snapshot: null, entries, hardState: { term: 2, vote: self, commit: 5 }, applied: null }, true);
    const machine = new RegistryStateMachine();
    const writes: BatchWrite[] = [];
    const batch = { put: (key: string, value: Uint8Array) => writes.push({ type: 'put', key, value }), del: (key: string) => writes.push({ type: 'del', key }) };
    for (const applied of entries.slice(0, 2)) if (applied.kind === 'normal') machine.apply(applied.data, applied.index, applied.term, batch);
    await storage.writeApplied(writes, 2, true);
  } finally {
    await storage.close();
  }
}

test('a backup holds the committed entries (applied or not), not the uncommitted one unless asked, with the voters and term at its index; no record of the member changes', async (t) => {
  const dataDir = await temporaryDirectory(t);
  await prepareMember(dataDir);
  const storedBefore = await (async () => {
    const storage = await LevelStorage.open(dataDir);
    try {
      return await storage.load();
    } finally {
      await storage.close();
    }
  })();
  const backup = await takeBackup(dataDir, new RegistryStateMachine(), { now: new Date('2026-11-22T10:00:00Z') });
  assert.deepEqual({ ...backup.header, imageBytes: 0, imageCrc32c: 0 }, {
    format: 1, index: 5, term: 2, beyondCommit: 0, members: [self, '127.0.0.2:8848', '127.0.0.3:8848'], sourceMember: self, createdAt: '2026-11-22T10:00:00.000Z', imageBytes: 0, imageCrc32c: 0,
  });
  assert.equal(backup.header.imageBytes, backup.image.length);
  assert.equal(backup.header.imageCrc32c, crc32c(backup.image));
  const restored = new RegistryStateMachine();
  checkImage(backup, restored, 'the image');
  assert.deepEqual(ipsOf(restored), ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4'], 'entries 3 and 4 were committed but not applied; 6 was not committed');
  const whole = await takeBackup(dataDir, new RegistryStateMachine(), { withUncommitted: true });
  assert.deepEqual([whole.header.index, whole.header.term, whole.header.beyondCommit], [6, 2, 1]);
  const all = new RegistryStateMachine();
  checkImage(whole, all, 'the image');
  assert.deepEqual(ipsOf(all), ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.6'], 'withUncommitted covers the whole log');
  const storage = await LevelStorage.open(dataDir);
  try {
    assert.deepEqual(await storage.load(), storedBefore, 'taking backups changed no record of the member');
  } finally {
    await storage.close();
  }
});

test('takeBackup refuses a directory that holds no member and creates nothing', async (t) => {
  const root = await temporaryDirectory(t);
  const missing = path.join(root, 'nothing-here');
  await assert.rejects(takeBackup(missing, new RegistryStateMachine()), (error: unknown) => isCairnError(error, 'CAIRN_INVALID_ARGUMENT') && /holds no member data/.test(error.message));
  assert.equal(existsSync(missing), false);
});

async function sampleBackup(t: { after(fn: () => Promise<void>): void }): Promise<Backup> {
  const dataDir = await temporaryDirectory(t);
  await prepareMember(dataDir);
  return takeBackup(dataDir, new RegistryStateMachine());
}

test('the file round-trips; every truncation and every flipped bit is refused, never read as a backup', async (t) => {
  const backup = await sampleBackup(t);
  const bytes = encodeBackup(backup);
  assert.equal(new TextDecoder().decode(bytes.subarray(0, 8)), backupMagic);
  const decoded = decodeBackup(bytes, 'f');
  assert.deepEqual(decoded.header, backup.header);
  assert.deepEqual(decoded.image, backup.image);
  const refused = (damaged: Uint8Array, what: string): void => {
    assert.throws(() => decodeBackup(damaged, 'f'), (error: unknown) => isCairnError(error, 'CAIRN_STORAGE_CORRUPT') || isCairnError(error, 'CAIRN_INVALID_ARGUMENT'), what);
  };
  for (let length = 0; length < bytes.length; length++) refused(bytes.subarray(0, length), `cut to ${length} bytes`);
  refused(Uint8Array.from([...bytes, 0]), 'a byte appended');
  for (let at = 0; at < bytes.length; at++) {
    for (let bit = 0; bit < 8; bit++) {
      const damaged = Uint8Array.from(bytes);
      damaged[at] = (damaged[at] ?? 0) ^ (1 << bit);
      refused(damaged, `bit ${bit} of byte ${at} flipped`);
    }
  }
});

test('header fields that break a rule are refused with what is wrong', async (t) => {
  const backup = await sampleBackup(t);
  const withHeader = (header: Record<string, unknown>): Uint8Array => encodeBackup({ header: header as unknown as BackupHeader, image: backup.image });
  const good = backup.header as unknown as Record<string, unknown>;
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ ...good, format: 2 }, /backup format 2 is not supported/],
    [{ ...good, extra: true }, /unknown field "extra"/],
    [{ ...good, index: -1 }, /index is not a non-negative safe integer/],
    [{ ...good, index: 2 ** 53 }, /index is not a non-negative safe integer/],
    [{ ...good, term: 0 }, /index and term are not both zero or both positive/],
    [{ ...good, beyondCommit: 6 }, /beyondCommit is not a count within its index/],
    [{ ...good, beyondCommit: -1 }, /beyondCommit is not a count within its index/],
    [{ ...good, members: [self, self] }, /members are not a list/],
    [{ ...good, members: ['a b'] }, /members are not a list/],
    [{ ...good, members: Array.from({ length: 16 }, (_, i) => `m${i}:1`) }, /members are not a list/],
    [{ ...good, sourceMember: '' }, /sourceMember is not a member address/],
    [{ ...good, createdAt: 'yesterday' }, /createdAt is not a date/],
    [{ ...good, imageCrc32c: 2 ** 32 }, /imageCrc32c is not a 32-bit checksum/],
  ];
  for (const [header, message] of cases) {
    assert.throws(() => decodeBackup(withHeader(header), 'f'), (error: unknown) => isCairnError(error, 'CAIRN_INVALID_ARGUMENT') && message.test(error.message), String(message));
  }
  assert.throws(() => decodeBackup(withHeader({ ...good, imageBytes: backup.image.length + 1 }), 'f'), (error: unknown) => isCairnError(error, 'CAIRN_STORAGE_CORRUPT') && /the header says/.test(error.message));
  const undecodable = encodeBackup({ header: { ...backup.header, imageBytes: 3, imageCrc32c: crc32c(Uint8Array.of(1, 2, 3)) }, image: Uint8Array.of(1, 2, 3) });
  assert.throws(() => checkImage(decodeBackup(undecodable, 'f'), new RegistryStateMachine(), 'f'), (error: unknown) => isCairnError(error, 'CAIRN_STORAGE_CORRUPT') && /does not decode/.test(error.message));
});

test('a restore that fails half way (a full disk) leaves nothing: no target, no staging directory, and a retry succeeds once there is room', async (t) => {
  if (skipUnlessRoot(t)) return;
  const root = await temporaryDirectory(t);
  const disk = path.join(root, 'disk');
  await mkdir(disk);
  if (!mountOrSkip(t, ['-t', 'tmpfs', '-o', 'size=512k', 'tmpfs', disk])) return;
  try {
    // A backup whose image cannot fit: the restore's snapshot chunks run out of space after the store was initialised.
    const sample = await sampleBackup(t);
    const image = randomBytes(2 * 1024 * 1024);
    const big: Backup = { header: { ...sample.header, imageBytes: image.length, imageCrc32c: crc32c(image) }, image };
    const target = { dataDir: path.join(disk, 'member'), addr: '127.0.0.22:8848', members: ['127.0.0.22:8848'], clusterId: 'restored' };
    await assert.rejects(restoreBackup(big, target), (error: unknown) => isCairnError(error, 'CAIRN_STORAGE_IO_ERROR') && /wrote nothing there/.test(error.message));
    assert.deepEqual(await readdir(disk), [], 'neither the target nor a staging directory is left');
    await restoreBackup(sample, target);
    const storage = await LevelStorage.open(target.dataDir);
    try {
      assert.equal((await storage.load())?.snapshot.index, sample.header.index);
    } finally {
      await storage.close();
    }
  } finally {
    unmount(disk);
  }
});

test('a restore writes a store a member loads as an installed snapshot, and refuses a data directory that is not empty', async (t) => {
  const backup = await sampleBackup(t);
  const root = await temporaryDirectory(t);
  const members = ['127.0.0.21:8848', '127.0.0.22:8848', '127.0.0.23:8848'];
  const target = { dataDir: path.join(root, 'new'), addr: '127.0.0.22:8848', members, clusterId: 'restored' };
  await restoreBackup(backup, target);
  const storage = await LevelStorage.open(target.dataDir);
  try {
    const stored = await storage.load();
    assert.ok(stored !== null);
    assert.deepEqual(stored.identity, { clusterId: 'restored', memberId: '127.0.0.22:8848' });
    assert.deepEqual(stored.snapshot, { index: 5, term: 2, membership: { voters: members, learners: [] } });
    assert.deepEqual(stored.snapshotData, backup.image);
    assert.equal(stored.applied, 0, 'the member restores the image at its first start');
    assert.deepEqual(stored.hardState, { term: 2, vote: null, commit: 5 });
    assert.deepEqual(stored.entries, []);
  } finally {
    await storage.close();
  }
  await assert.rejects(restoreBackup(backup, target), (error: unknown) => isCairnError(error, 'CAIRN_INVALID_ARGUMENT') && /is not empty/.test(error.message));
  const other = path.join(root, 'other');
  await writeFile(path.join(root, 'stray'), 'x');
  await assert.rejects(restoreBackup(backup, { ...target, dataDir: root }), (error: unknown) => isCairnError(error, 'CAIRN_INVALID_ARGUMENT') && /is not empty/.test(error.message));
  await assert.rejects(restoreBackup(backup, { ...target, dataDir: other, addr: 'y:1' }), (error: unknown) => isCairnError(error, 'CAIRN_INVALID_ARGUMENT') && /do not include/.test(error.message));
  assert.deepEqual((await readdir(root)).sort(), ['new', 'stray'], 'refused restores created nothing');
});
