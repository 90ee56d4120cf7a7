// Goal: `cairn backup` answers bad usage with exit 2 and a line that says what is wrong, and failures at run time
// with exit 1 and the Cairn code, before touching any file (the real runs are in test/cluster/backup.test.ts).
// Method: runBackup in-process with a capturing output, against paths in a fresh temporary directory.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { runBackup } from '../../src/cli/backup.ts';

async function backup(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runBackup(args, { stdout: (text) => (stdout += text), stderr: (text) => (stderr += text) });
  return { code, stdout, stderr };
}

test('cairn backup: usage errors exit 2 with the reason, run-time failures exit 1 with the code, and nothing is written', async (t) => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'cairn-backup-usage-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const usage: Array<[readonly string[], RegExp]> = [
    [[], /say save, inspect or restore/],
    [['copy'], /unknown action 'copy'/],
    [['save', '--out', path.join(root, 'x.bak')], /say where the backup comes from: --from HOST:PORT \(a running member\) or --data-dir DIR/],
    [['save', '--from', '127.0.0.1:8848', '--data-dir', root, '--out', path.join(root, 'x.bak')], /say where the backup comes from/],
    [['save', '--from', '127.0.0.1:8848', '--with-uncommitted', '--out', path.join(root, 'x.bak')], /--with-uncommitted reads a stopped member's log: use it with --data-dir/],
    [['save', '--data-dir', root, '--peer-port', '7848', '--out', path.join(root, 'x.bak')], /--peer-port goes with --from/],
    [['save', '--from', 'no-port', '--out', path.join(root, 'x.bak')], /--from: 'no-port' is not HOST:PORT/],
    [['save', '--from', '127.0.0.1:8848', '--peer-port', '0', '--out', path.join(root, 'x.bak')], /--peer-port/],
    [['save', '--data-dir', root], /--out is required/],
    [['save', '--data-dir', root, '--out', path.join(root, 'x.bak'), '--force'], /Unknown option '--force'/],
    [['inspect', '--in', path.join(root, 'missing.bak')], /missing\.bak does not exist/],
    [['inspect', '--in', root], /is not a file \(a backup is one file/],
    [['save', '--data-dir', root, '--out', path.join(root, 'no-such-dir', 'x.bak')], /--out: the directory .*no-such-dir does not exist \(or is not a directory\); create it first/],
    [['restore', '--in', path.join(root, 'missing.bak'), '--data-dir', path.join(root, 'd'), '--addr', '127.0.0.1:8848'], /missing\.bak does not exist/],
    [['restore', '--in', path.join(root, 'x.bak'), '--data-dir', path.join(root, 'd'), '--addr', 'no-port'], /--addr: 'no-port' is not HOST:PORT/],
    [['restore', '--in', path.join(root, 'x.bak'), '--data-dir', path.join(root, 'd'), '--addr', '127.0.0.1:8848', '--members', '127.0.0.2:8848'], /--members must include this member's own --addr/],
  ];
  for (const [args, reason] of usage) {
    const answer = await backup(args);
    assert.equal(answer.code, 2, `${args.join(' ')}: ${answer.stderr}`);
    assert.match(answer.stderr, reason, args.join(' '));
    assert.match(answer.stderr, /Run 'cairn backup --help' for usage\./);
  }
  const help = await backup(['--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /cairn backup save --data-dir DIR --out FILE \[--with-uncommitted\]/);

  const noMember = await backup(['save', '--data-dir', path.join(root, 'empty'), '--out', path.join(root, 'x.bak')]);
  assert.equal(noMember.code, 1, noMember.stderr);
  assert.match(noMember.stderr, /^cairn backup: CAIRN_INVALID_ARGUMENT: .*holds no member data/);
  await writeFile(path.join(root, 'short.bak'), 'CAIRNBK1\u0000\u0000');
  const short = await backup(['inspect', '--in', path.join(root, 'short.bak')]);
  assert.equal(short.code, 1, short.stderr);
  assert.match(short.stderr, /CAIRN_STORAGE_CORRUPT: .*cut short/);
  assert.deepEqual((await readdir(root)).sort(), ['short.bak'], 'no command above wrote a file or a directory');
});
