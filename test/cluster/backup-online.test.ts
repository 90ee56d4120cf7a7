// Goal: `cairn backup save --from` takes a backup of a running cluster without stopping anything (docs/operations.md
// "Backups and disaster recovery"): asked of a follower or of the leader while writers keep registering, the backup
// holds every write acknowledged before the command started (the member passes a linearizable barrier first),
// nothing never attempted and nothing refused with a certain failure; the cluster keeps acknowledging writes
// meanwhile; the file is a backup like any other (`inspect` checks it, `restore` starts a new member that lists
// exactly what it holds). Misuse is refused without writing: an existing --out, an address where nothing answers,
// --from together with --data-dir or --with-uncommitted.
//
// Method: three real members on 127.0.1.34-36 and a restored standalone member on 127.0.1.37 (this file's block is
// 127.0.1.34-37); the real CLI as its own process for every command; writers register unique persistent instances
// through every member the whole time (test/support/cluster.ts's Ledger). Each backup file is decoded in-process
// and compared with the ledger as it stood when the command started.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { backupContents, type CliRun, runCairn, Ledger, type Member, readInstances, startCluster, waitFor, Writer } from '../support/cluster.ts';

const hosts = ['127.0.1.34', '127.0.1.35', '127.0.1.36', '127.0.1.37'];
const services = ['live-a', 'live-b'];

/** cli runs `cairn <args>` as its own process (60 s at most). */
function cli(args: readonly string[]): Promise<CliRun> {
  return runCairn(args, 60_000);
}

/** backupKeys decodes a backup file and lists the instances of `services` it holds, as "service/ip:port". */
function backupKeys(file: string): { index: number; sourceMember: string; keys: Set<string> } {
  const { header, keys } = backupContents(file, services);
  return { index: header.index, sourceMember: header.sourceMember, keys };
}

function acknowledged(ledger: Ledger): Set<string> {
  return new Set(ledger.byKind('ok').map((outcome) => `${outcome.service}/${outcome.key}`));
}

test('backups of a running cluster under writes: every earlier acknowledged write, no pause, and they restore', async (t) => {
  const cluster = await startCluster(t, { file: 'backup-online', hosts, size: 3 });
  const dir = mkdtempSync(path.join(tmpdir(), 'cairn-backup-online-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const { leader } = await cluster.waitForLeader();
  const follower = cluster.members.find((member) => member !== leader);
  assert.ok(follower !== undefined);

  const ledger = new Ledger();
  const writer = new Writer(ledger, { services, concurrency: 4, targets: () => cluster.members }).start();
  t.after(() => writer.stop());
  await waitFor(() => writer.ackCount >= 50, { timeoutMs: 20_000, what: '50 writes acknowledged' });

  const files = new Map<Member, string>();
  for (const member of [follower, leader]) {
    await cluster.step(t, `a backup from the ${member === leader ? 'leader' : 'follower'} while writes go on`, async (st) => {
      const file = path.join(dir, `${member === leader ? 'leader' : 'follower'}.bak`);
      const before = acknowledged(ledger);
      const acksBefore = writer.ackCount;
      const started = Date.now();
      const run = await cli(['backup', 'save', '--from', member.addr, '--out', file]);
      const tookMs = Date.now() - started;
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, new RegExp(`wrote ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: index \\d+ \\(term \\d+\\) of member ${member.addr.replace(/\./g, '\\.')}`));
      const held = backupKeys(file);
      assert.equal(held.sourceMember, member.addr);
      const missing = [...before].filter((key) => !held.keys.has(key));
      assert.deepEqual(missing, [], `acknowledged before the backup started but not in it (index ${held.index})`);
      const neverAttempted = [...held.keys].filter((key) => !ledger.attempted.has(key));
      assert.deepEqual(neverAttempted, [], 'instances in the backup that were never attempted');
      const refused = [...held.keys].filter((key) => ledger.outcomes.get(key)?.kind === 'failed');
      assert.deepEqual(refused, [], 'instances in the backup whose write was refused with a certain failure');
      // The cluster kept serving: writes go on being acknowledged after the backup (and were during it, reported).
      const acksDuring = writer.ackCount - acksBefore;
      await waitFor(() => writer.ackCount >= acksBefore + acksDuring + 20, { timeoutMs: 15_000, what: '20 more writes acknowledged after the backup' });
      st.diagnostic(`backup from ${member.addr}: index ${held.index}, ${held.keys.size} instances (${before.size} acknowledged before it), ${tookMs} ms, ${acksDuring} writes acknowledged meanwhile`);
      const inspected = await cli(['backup', 'inspect', '--in', file]);
      assert.equal(inspected.code, 0, inspected.stderr);
      assert.match(inspected.stdout, /is whole: index \d+/);
      files.set(member, file);
    });
  }

  await cluster.step(t, 'misuse is refused without writing', async () => {
    const file = files.get(follower) ?? '';
    const bytes = readFileSync(file);
    const again = await cli(['backup', 'save', '--from', follower.addr, '--out', file]);
    assert.equal(again.code, 2, again.stderr);
    assert.match(again.stderr, /already exists; a backup never replaces a file/);
    assert.deepEqual(readFileSync(file), bytes);
    // An address of this file's block where no member runs (the restore target, not started yet).
    const nobody = path.join(dir, 'nobody.bak');
    const unreachable = await cli(['backup', 'save', '--from', `${hosts[3]}:18848`, '--out', nobody]);
    assert.equal(unreachable.code, 1, unreachable.stderr);
    assert.match(unreachable.stderr, /nothing answers on the peer port/);
    assert.equal(existsSync(nobody), false);
    for (const args of [['--from', follower.addr, '--data-dir', dir], ['--from', follower.addr, '--with-uncommitted'], ['--data-dir', dir, '--peer-port', '17848']]) {
      const misuse = await cli(['backup', 'save', ...args, '--out', nobody]);
      assert.equal(misuse.code, 2, `${args.join(' ')}: ${misuse.stderr}`);
      assert.equal(existsSync(nobody), false);
    }
  });

  const report = await writer.stop();
  t.diagnostic(`writes: ${ledger.summary()}; longest gap between two acknowledgements ${report.longestAckGapMs} ms`);

  await cluster.step(t, 'the follower\'s backup restores a new member that lists exactly what it holds', async () => {
    const file = files.get(follower) ?? '';
    const held = backupKeys(file);
    // The file's fourth address, never started until now: its data directory exists and is empty.
    const [target] = cluster.spares;
    assert.ok(target !== undefined);
    const restoreRun = await cli(['backup', 'restore', '--in', file, '--data-dir', target.dataDir, '--addr', target.addr]);
    assert.equal(restoreRun.code, 0, restoreRun.stderr);
    await target.start({ members: [target.addr] });
    const listed = new Set<string>();
    for (const service of services) {
      for (const key of await readInstances(target, service, 'linearizable')) listed.add(`${service}/${key}`);
    }
    assert.deepEqual([...listed].sort(), [...held.keys].sort());
  });
});
