// Goal: show that LevelStorage.open never lets LevelDB destroy a data directory, and that it tells damage from a
// filesystem that refuses, since the two have opposite remedies (docs/errors.md): CAIRN_STORAGE_CORRUPT says "wipe
// and re-add the member", CAIRN_STORAGE_IO_ERROR says "fix the filesystem, do not wipe".
// - A directory whose CURRENT file is missing (the tables and MANIFEST still there) is refused as CAIRN_STORAGE_CORRUPT
//   and left exactly as it was, byte for byte, whether a member or `cairn backup save --data-dir` (takeBackup) opens
//   it; with CURRENT written back by hand, the store loads whole. Before, open() passed create_if_missing, and LevelDB
//   created an empty database over the directory, deleting its tables, before Cairn noticed "meta!format missing".
// - A filesystem that refuses (raft/ a regular file, a directory the user may not write, a read-only mount, a full
//   disk at restart) is CAIRN_STORAGE_IO_ERROR carrying the system's message, not CAIRN_STORAGE_CORRUPT with the bare
//   "Database failed to open".
// - Damage LevelDB reports at open (a MANIFEST or table gone) stays CAIRN_STORAGE_CORRUPT, now with LevelDB's message.
// Method: real stores in temporary directories, damaged or constrained from outside, then opened through
// LevelStorage. The mounts (a read-only bind mount, a 1 MiB tmpfs) need root: those tests skip with the reason when
// not root or when mounting is refused, and fail instead when CAIRN_REQUIRE_ALL=1. As root, the unwritable directory
// is opened by a child process running as uid 65534 (root writes anywhere); as another user, by this process.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, readdirSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ClassicLevel } from 'classic-level';

import { RegistryStateMachine } from '../../src/cp/registry-state-machine.ts';
import { isCairnError, type CairnErrorCode } from '../../src/errors.ts';
import { takeBackup } from '../../src/replica/backup.ts';
import { LevelStorage, levelLayout } from '../../src/replica/level-storage.ts';
import { normal } from './storage-compliance.ts';
import { isRoot, mountOrSkip, skipUnlessRoot, unmount } from '../support/mounts.ts';

const encoder = new TextEncoder();
const repositoryRoot = fileURLToPath(new URL('../../', import.meta.url));
const levelStorageModule = fileURLToPath(new URL('../../src/replica/level-storage.ts', import.meta.url));

/** keyspaceRecords is the number of keyspace records writeStore writes: about 200 KiB, a table's worth. */
const keyspaceRecords = 200;

async function withTemporaryDirectory(run: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cairn-level-open-'));
  try {
    await run(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** writeStore writes a member store: 3 log entries, applied 3, keyspaceRecords records of 1 KiB. */
async function writeStore(dataDir: string): Promise<void> {
  const storage = await LevelStorage.open(dataDir);
  try {
    await storage.initialise({ clusterId: 'c', memberId: 'a' }, { voters: ['a'], learners: [] });
    await storage.writeReady({ snapshot: null, entries: [normal(1, 1, 'x'), normal(2, 1, 'y'), normal(3, 1, 'z')], hardState: { term: 1, vote: 'a', commit: 3 } }, true);
    const writes = Array.from({ length: keyspaceRecords }, (_, i) => ({ type: 'put' as const, key: `svc!${String(i).padStart(4, '0')}`, value: encoder.encode(`${i}:`.padEnd(1024, 'v')) }));
    await storage.writeApplied(writes, 3, true);
  } finally {
    await storage.close();
  }
}

/** recoverIntoTable opens and closes the database raw, so LevelDB writes its write-ahead log into a table. */
async function recoverIntoTable(dataDir: string): Promise<void> {
  const db = new ClassicLevel(path.join(dataDir, levelLayout.directory));
  await db.open();
  await db.close();
}

/** expectStoreWhole opens the store and checks every record writeStore wrote. */
async function expectStoreWhole(dataDir: string): Promise<void> {
  const storage = await LevelStorage.open(dataDir);
  try {
    const stored = await storage.load();
    assert.equal(stored?.entries.length, 3);
    assert.equal(stored?.applied, 3);
    let records = 0;
    for await (const batch of storage.keyspace()) records += batch.length;
    assert.equal(records, keyspaceRecords);
  } finally {
    await storage.close();
  }
}

/** fingerprint maps every file of the LevelDB directory to the SHA-256 of its bytes. */
function fingerprint(dataDir: string): Record<string, string> {
  const location = path.join(dataDir, levelLayout.directory);
  const files: Record<string, string> = {};
  for (const name of readdirSync(location).sort()) files[name] = createHash('sha256').update(readFileSync(path.join(location, name))).digest('hex');
  return files;
}

/** expectCode asserts that `work` fails with `code` and a message matching every pattern. */
async function expectCode(work: Promise<unknown>, code: CairnErrorCode, ...patterns: RegExp[]): Promise<void> {
  await assert.rejects(work, (error: unknown) => {
    assert.ok(isCairnError(error, code), `expected ${code}, got ${String(error)}`);
    for (const pattern of patterns) assert.match(error.message, pattern);
    return true;
  });
}

describe('LevelStorage.open: a directory whose CURRENT file is missing', () => {
  test('is refused as CAIRN_STORAGE_CORRUPT and left byte for byte as it was; with CURRENT written back it loads whole', async () => {
    await withTemporaryDirectory(async (dir) => {
      await writeStore(dir);
      await recoverIntoTable(dir);
      const location = path.join(dir, levelLayout.directory);
      const current = readFileSync(path.join(location, 'CURRENT'), 'utf8');
      assert.ok(readdirSync(location).some((name) => name.endsWith('.ldb')), 'the records are in a table');
      unlinkSync(path.join(location, 'CURRENT'));
      const before = fingerprint(dir);
      await expectCode(LevelStorage.open(dir), 'CAIRN_STORAGE_CORRUPT', /CURRENT file is missing/, /nothing was changed/, new RegExp(current.trim()));
      assert.deepEqual(fingerprint(dir), before, 'no file was created, changed or deleted');
      // cairn backup save --data-dir documents that it changes nothing.
      await expectCode(takeBackup(dir, new RegistryStateMachine()), 'CAIRN_STORAGE_CORRUPT', /CURRENT file is missing/);
      assert.deepEqual(fingerprint(dir), before, 'takeBackup changed no file');
      writeFileSync(path.join(location, 'CURRENT'), current);
      await expectStoreWhole(dir);
    });
  });

  test('a directory holding only LevelDB\'s lock and info log (a first start stopped early) is created as new', async () => {
    await withTemporaryDirectory(async (dir) => {
      const location = path.join(dir, levelLayout.directory);
      await mkdir(location);
      writeFileSync(path.join(location, 'LOCK'), '');
      writeFileSync(path.join(location, 'LOG'), 'info\n');
      const storage = await LevelStorage.open(dir);
      try {
        assert.equal(await storage.load(), null, 'an empty store');
      } finally {
        await storage.close();
      }
    });
  });
});

describe('LevelStorage.open: a filesystem that refuses is CAIRN_STORAGE_IO_ERROR, never CAIRN_STORAGE_CORRUPT', () => {
  test('raft/ a regular file', async () => {
    await withTemporaryDirectory(async (dir) => {
      const location = path.join(dir, levelLayout.directory);
      writeFileSync(location, 'not a directory');
      await expectCode(LevelStorage.open(dir), 'CAIRN_STORAGE_IO_ERROR', /ENOTDIR/, /do not wipe/);
      assert.equal(readFileSync(location, 'utf8'), 'not a directory');
    });
  });

  test('a data directory the user may not write', async () => {
    await withTemporaryDirectory(async (dir) => {
      await writeStore(dir);
      const location = path.join(dir, levelLayout.directory);
      for (const name of readdirSync(location)) chmodSync(path.join(location, name), 0o444);
      chmodSync(location, 0o555);
      chmodSync(dir, 0o755);
      try {
        const failure = isRoot ? openAsNobody(dir) : await openHere(dir);
        assert.equal(failure.code, 'CAIRN_STORAGE_IO_ERROR', failure.message);
        assert.match(failure.message, /Permission denied/);
        assert.match(failure.message, /do not wipe/);
      } finally {
        chmodSync(location, 0o755);
        for (const name of readdirSync(location)) chmodSync(path.join(location, name), 0o644);
      }
      await expectStoreWhole(dir);
    });
  });

  test('a read-only mount (root only)', async (t) => {
    if (skipUnlessRoot(t)) return;
    await withTemporaryDirectory(async (dir) => {
      await writeStore(dir);
      if (!mountOrSkip(t, ['--bind', dir, dir])) return;
      try {
        if (!mountOrSkip(t, ['-o', 'remount,bind,ro', dir])) return;
        await expectCode(LevelStorage.open(dir), 'CAIRN_STORAGE_IO_ERROR', /Read-only file system/, /do not wipe/);
      } finally {
        unmount(dir);
      }
      await expectStoreWhole(dir);
    });
  });

  test('a full disk at restart, when LevelDB must write its log into a table (root only)', async (t) => {
    if (skipUnlessRoot(t)) return;
    await withTemporaryDirectory(async (dir) => {
      if (!mountOrSkip(t, ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir])) return;
      try {
        await writeStore(dir);
        const filler = path.join(dir, 'filler');
        assert.throws(() => writeFileSync(filler, Buffer.alloc(4 << 20)), { code: 'ENOSPC' });
        await expectCode(LevelStorage.open(dir), 'CAIRN_STORAGE_IO_ERROR', /No space left on device/, /do not wipe/);
        rmSync(filler);
        await expectStoreWhole(dir);
      } finally {
        unmount(dir);
      }
    });
  });
});

describe('LevelStorage writes: the filesystem refusing a write is CAIRN_STORAGE_IO_ERROR', () => {
  test('a disk that fills while the member writes (root only)', async (t) => {
    if (skipUnlessRoot(t)) return;
    await withTemporaryDirectory(async (dir) => {
      if (!mountOrSkip(t, ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir])) return;
      try {
        const storage = await LevelStorage.open(dir);
        try {
          await storage.initialise({ clusterId: 'c', memberId: 'a' }, { voters: ['a'], learners: [] });
          // Bounded: 64 fsynced entries of 64 KiB are four times the disk; one of the writes must fail.
          let refusal: unknown = null;
          for (let i = 0; i < 64 && refusal === null; i++) {
            const entry = normal(i + 1, 1, ''.padEnd(64 * 1024, 'v'));
            await storage.writeReady({ snapshot: null, entries: [entry], hardState: { term: 1, vote: 'a', commit: 0 } }, true).catch((error: unknown) => (refusal = error));
          }
          assert.ok(isCairnError(refusal, 'CAIRN_STORAGE_IO_ERROR'), `a full disk is CAIRN_STORAGE_IO_ERROR: ${String(refusal)}`);
          assert.match((refusal as Error).message, /No space left on device/);
          assert.match((refusal as Error).message, /do not wipe/);
        } finally {
          await storage.close().catch(() => undefined);
        }
      } finally {
        unmount(dir);
      }
    });
  });
});

describe('LevelStorage.open: damage LevelDB reports at open stays CAIRN_STORAGE_CORRUPT, with LevelDB\'s message', () => {
  test('the MANIFEST gone', async () => {
    await withTemporaryDirectory(async (dir) => {
      await writeStore(dir);
      const location = path.join(dir, levelLayout.directory);
      const manifest = readFileSync(path.join(location, 'CURRENT'), 'utf8').trim();
      unlinkSync(path.join(location, manifest));
      await expectCode(LevelStorage.open(dir), 'CAIRN_STORAGE_CORRUPT', new RegExp(`${manifest}: No such file or directory`));
    });
  });

  test('a table gone', async () => {
    await withTemporaryDirectory(async (dir) => {
      await writeStore(dir);
      await recoverIntoTable(dir);
      const location = path.join(dir, levelLayout.directory);
      const table = readdirSync(location).find((name) => name.endsWith('.ldb'));
      assert.ok(table !== undefined && statSync(path.join(location, table)).size > 0);
      unlinkSync(path.join(location, table));
      await expectCode(LevelStorage.open(dir), 'CAIRN_STORAGE_CORRUPT', /Corruption: 1 missing files/, new RegExp(table));
    });
  });
});

/** OpenFailure is how an open failed: the error's code (if any) and its message. */
interface OpenFailure {
  readonly code: string | undefined;
  readonly message: string;
}

/** openHere opens the store in this process and returns how it failed. */
async function openHere(dataDir: string): Promise<OpenFailure> {
  try {
    const storage = await LevelStorage.open(dataDir);
    await storage.close();
  } catch (error) {
    return { code: isCairnError(error) ? error.code : undefined, message: String(error) };
  }
  assert.fail(`${dataDir} opened`);
}

/** openAsNobody opens the store in a child process running as uid and gid 65534 and returns how it failed. */
function openAsNobody(dataDir: string): OpenFailure {
  const script = `
    const { LevelStorage } = await import(${JSON.stringify(levelStorageModule)});
    try {
      const storage = await LevelStorage.open(${JSON.stringify(dataDir)});
      await storage.close();
      console.log(JSON.stringify({ code: 'opened', message: 'opened' }));
    } catch (error) {
      console.log(JSON.stringify({ code: error.code, message: String(error) }));
    }`;
  const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '--eval', script], {
    cwd: repositoryRoot, uid: 65534, gid: 65534, encoding: 'utf8', env: { ...process.env, HOME: os.tmpdir() }, timeout: 60_000,
  });
  assert.equal(child.status, 0, `the child ran: ${child.stderr}`);
  const line = child.stdout.trim().split('\n').at(-1) ?? '';
  return JSON.parse(line) as OpenFailure;
}
