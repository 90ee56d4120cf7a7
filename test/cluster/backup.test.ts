// Goal: a cluster that lost a majority comes back from a backup with every write it acknowledged before the backup
// (docs/operations.md "Backups and disaster recovery"): `cairn backup save` reads a stopped member's data directory,
// `cairn backup inspect` checks a file and says what it holds, `cairn backup restore` writes the members of a new
// cluster, and they elect a leader, list what the old cluster listed, and take writes. Also what an operator gets wrong: a backup of a running member, a restore over a data
// directory, a damaged or foreign file: each is refused with its code, and a refused restore writes nothing.
//
// Method: three members on 127.0.1.20-22 (this file's block is 127.0.1.20-25), persistent registrations through
// each recorded in a ledger, a service changed (protect threshold, metadata) and an instance disabled. One follower
// is asked for a backup while it runs (refused), then stopped with SIGTERM once it applied the leader's commit
// index, and backed up by the real CLI. The whole old cluster is then killed (the disaster), and three new members
// on 127.0.1.23-25 are restored from the file and started as `cairn server --members` of the three. Checks: the
// convergence check over the old ledger (every acknowledged instance on every new member, nothing never attempted
// listed), the changed service and the disabled instance read back equal, and new writes through each new member.
//
// Second test, the documented recovery after losing a majority: writers keep registering while the leader is killed
// and restarted three times (so the members' log tails differ), then all three members are killed at once under load.
// Each is backed up with --with-uncommitted; the backup with the highest term, then index, is restored into a new
// cluster. Raft's election argument says that log holds every committed entry, so the convergence check must pass:
// every acknowledged write listed, none refused with a certain failure, nothing never attempted. Every backup is also
// decoded in-process and compared with the ledger, and what the others lack is reported (not asserted: whether a
// less up-to-date member missed an acknowledged write depends on timing).
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { backupContents, type CliRun, runCairn, checkConvergence, Ledger, type Member, readInstances, startCluster, waitFor, Writer } from '../support/cluster.ts';

const hosts = ['127.0.1.20', '127.0.1.21', '127.0.1.22', '127.0.1.23', '127.0.1.24', '127.0.1.25'];

/** cli runs `cairn <args>` as its own process (30 s at most). */
function cli(args: readonly string[]): Promise<CliRun> {
  return runCairn(args, 30_000);
}

/** serviceView reads a service's Nacos v1 definition (what a client sees of its settings). */
async function serviceView(member: Member, service: string): Promise<unknown> {
  const answer = await member.request('GET', `/nacos/v1/ns/service?serviceName=${service}`);
  assert.equal(answer.status, 200, `${member.addr} GET service ${service}: ${answer.status} ${answer.text}`);
  return JSON.parse(answer.text);
}

/** instanceView reads one persistent instance's Nacos v1 detail (shown whether or not it is enabled). */
async function instanceView(member: Member, service: string, ip: string, port: number): Promise<Record<string, unknown>> {
  const answer = await member.request('GET', `/nacos/v1/ns/instance?serviceName=${service}&ip=${ip}&port=${port}&ephemeral=false`);
  assert.equal(answer.status, 200, `${member.addr} GET instance ${ip}:${port}: ${answer.status} ${answer.text}`);
  return JSON.parse(answer.text) as Record<string, unknown>;
}

test('a backup of a stopped follower restores a new cluster with every acknowledged write; misuse is refused and writes nothing', { timeout: 180_000 }, async (t) => {
  const cluster = await startCluster(t, { file: 'backup', hosts, size: 3 });
  const ledger = new Ledger();
  const old = cluster.members;
  const fresh = cluster.spares;
  assert.equal(fresh.length, 3);
  const file = path.join(cluster.root, 'registry.bak');

  await cluster.step(t, 'writes, a service change and a disabled instance on the old cluster', async () => {
    await cluster.waitForLeader({ timeoutMs: 15_000 });
    for (let round = 0; round < 5; round++) {
      for (const member of old) {
        const outcome = await ledger.register(member, `backup-${round % 2}`);
        assert.equal(outcome.kind, 'ok', `a write through ${member.addr}: ${outcome.detail}`);
      }
    }
    const [first] = old;
    assert.ok(first !== undefined);
    const changed = await first.request('PUT', `/nacos/v1/ns/service?serviceName=backup-0&protectThreshold=0.5&metadata=${encodeURIComponent('team=payments')}`);
    assert.equal(changed.status, 200, `PUT service: ${changed.status} ${changed.text}`);
    // Outside the ledger's services: a disabled instance is not listed, so the convergence check never sees it.
    const registered = await first.request('POST', '/nacos/v1/ns/instance?serviceName=backup-extra&ip=10.9.9.9&port=5432&ephemeral=false');
    assert.equal(registered.status, 200, `POST instance: ${registered.status} ${registered.text}`);
    const disabled = await first.request('PUT', '/nacos/v1/ns/instance?serviceName=backup-extra&ip=10.9.9.9&port=5432&ephemeral=false&enabled=false&weight=3');
    assert.equal(disabled.status, 200, `PUT instance: ${disabled.status} ${disabled.text}`);
    await checkConvergence(ledger, old);
  });

  const before = { service: null as unknown, instance: null as Record<string, unknown> | null };
  await cluster.step(t, 'a running member is not backed up; a stopped follower is', async (st) => {
    const { leader } = await cluster.waitForLeader({ timeoutMs: 15_000 });
    const follower = old.find((member) => member !== leader);
    assert.ok(follower !== undefined);
    before.service = await serviceView(leader, 'backup-0');
    before.instance = await instanceView(leader, 'backup-extra', '10.9.9.9', 5432);
    assert.equal(before.instance['weight'], 3);
    assert.deepEqual([...(await readInstances(leader, 'backup-extra'))], [], 'a disabled instance is left out of lists');
    const running = await cli(['backup', 'save', '--data-dir', follower.dataDir, '--out', file]);
    assert.equal(running.code, 1, `backup of a running member: exit ${String(running.code)}: ${running.stderr}`);
    assert.match(running.stderr, /CAIRN_DATA_DIR_IN_USE/);
    assert.deepEqual(readdirSync(cluster.root).filter((name) => name.startsWith('registry.bak')), [], 'a refused backup leaves no file');

    const commit = (await leader.selfView()).commitIndex;
    await waitFor(async () => (await follower.selfView()).appliedIndex >= commit, { timeoutMs: 10_000, what: `${follower.addr} to apply the leader's commit index ${commit}` });
    await follower.terminate();
    const saved = await cli(['backup', 'save', '--data-dir', follower.dataDir, '--out', file]);
    assert.equal(saved.code, 0, `backup save: exit ${String(saved.code)}: ${saved.stderr}`);
    assert.match(saved.stdout, new RegExp(`of member ${follower.addr.replace(/\./g, '\\.')} \\(voters `));
    st.diagnostic(saved.stdout.trim());
    // 15 ledger writes and the disabled instance, in backup-0, backup-1 and backup-extra.
    const held = `${ledger.byKind('ok').length + 1} persistent instances in 3 services of 1 namespaces`;
    assert.match(saved.stdout, new RegExp(held));
    const inspected = await cli(['backup', 'inspect', '--in', file]);
    assert.equal(inspected.code, 0, `backup inspect: exit ${String(inspected.code)}: ${inspected.stderr}`);
    assert.match(inspected.stdout, new RegExp(`is whole: index \\d+ .*; ${held}`));
    const again = await cli(['backup', 'save', '--data-dir', follower.dataDir, '--out', file]);
    assert.equal(again.code, 2, `a backup over an existing file: exit ${String(again.code)}: ${again.stderr}`);
    assert.match(again.stderr, /already exists/);
  });

  await cluster.step(t, 'the old cluster is lost; damaged and foreign files are refused without writing', async () => {
    for (const member of old) if (member.running) await member.kill9();
    const [target] = fresh;
    assert.ok(target !== undefined);
    const bytes = readFileSync(file);
    const damaged = Buffer.from(bytes);
    const at = damaged.length - 7;
    damaged[at] = (damaged[at] ?? 0) ^ 0x10;
    const damagedFile = path.join(cluster.root, 'damaged.bak');
    writeFileSync(damagedFile, damaged);
    const foreignFile = path.join(cluster.root, 'foreign.bak');
    writeFileSync(foreignFile, 'not a backup at all\n');
    const members = fresh.map((member) => member.addr).join(',');
    const inspected = await cli(['backup', 'inspect', '--in', damagedFile]);
    assert.equal(inspected.code, 1, `inspect of a damaged backup: exit ${String(inspected.code)}: ${inspected.stderr}`);
    assert.match(inspected.stderr, /CAIRN_STORAGE_CORRUPT: .*the image fails its CRC-32C/);
    for (const [input, code] of [[damagedFile, 'CAIRN_STORAGE_CORRUPT'], [foreignFile, 'CAIRN_INVALID_ARGUMENT']] as const) {
      const refused = await cli(['backup', 'restore', '--in', input, '--data-dir', target.dataDir, '--addr', target.addr, '--members', members]);
      assert.equal(refused.code, 1, `restore of ${path.basename(input)}: exit ${String(refused.code)}: ${refused.stderr}`);
      assert.match(refused.stderr, new RegExp(code));
      assert.deepEqual(readdirSync(target.dataDir), [], `a refused restore of ${path.basename(input)} writes nothing`);
    }
    const outsider = await cli(['backup', 'restore', '--in', file, '--data-dir', target.dataDir, '--addr', target.addr, '--members', old.map((m) => m.addr).join(',')]);
    assert.equal(outsider.code, 2, `--members without --addr: exit ${String(outsider.code)}: ${outsider.stderr}`);
    assert.deepEqual(readdirSync(target.dataDir), []);
  });

  await cluster.step(t, 'three new members restored from the backup serve every acknowledged write and take new ones', async (st) => {
    const members = fresh.map((member) => member.addr);
    for (const member of fresh) {
      const restored = await cli(['backup', 'restore', '--in', file, '--data-dir', member.dataDir, '--addr', member.addr, '--members', members.join(',')]);
      assert.equal(restored.code, 0, `restore for ${member.addr}: exit ${String(restored.code)}: ${restored.stderr}`);
      assert.match(restored.stdout, new RegExp(`start it with: cairn server --addr ${member.addr.replace(/\./g, '\\.')} --members `));
    }
    const [first] = fresh;
    assert.ok(first !== undefined);
    const over = await cli(['backup', 'restore', '--in', file, '--data-dir', first.dataDir, '--addr', first.addr, '--members', members.join(',')]);
    assert.equal(over.code, 1, `a restore over a restored member: exit ${String(over.code)}: ${over.stderr}`);
    assert.match(over.stderr, /CAIRN_INVALID_ARGUMENT: .*is not empty/);

    const started = Date.now();
    await Promise.all(fresh.map((member) => member.start({ members })));
    const { leader } = await cluster.waitForLeader({ among: fresh, timeoutMs: 20_000 });
    st.diagnostic(`restored cluster: ${leader.addr} leads ${Date.now() - started} ms after the start`);
    await checkConvergence(ledger, fresh, { what: 'the restored members to list every write the old cluster acknowledged' });
    for (const member of fresh) {
      assert.deepEqual(await serviceView(member, 'backup-0'), before.service, `${member.addr}: the changed service reads back as it was`);
      assert.deepEqual(await instanceView(member, 'backup-extra', '10.9.9.9', 5432), before.instance, `${member.addr}: the changed instance reads back as it was`);
      assert.deepEqual([...(await readInstances(member, 'backup-extra'))], [], `${member.addr}: the disabled instance is still left out of lists`);
    }
    for (const member of fresh) {
      const outcome = await ledger.register(member, 'backup-after');
      assert.equal(outcome.kind, 'ok', `a write through restored ${member.addr}: ${outcome.detail}`);
    }
    await checkConvergence(ledger, fresh);
  });
});

/** backupTermIndex is what the recovery test reads of a backup: its (term, index) and the instances it holds. */
function backupTermIndex(file: string, services: readonly string[]): { term: number; index: number; keys: Set<string> } {
  const { header, keys } = backupContents(file, services);
  return { term: header.term, index: header.index, keys };
}

test('after every member is killed under load, the most up-to-date backup (--with-uncommitted) restores every acknowledged write', { timeout: 180_000 }, async (t) => {
  const cluster = await startCluster(t, { file: 'backup-majority', hosts, size: 3 });
  const ledger = new Ledger();
  const old = cluster.members;
  const fresh = cluster.spares;
  const services = ['dr-0', 'dr-1'];

  await cluster.step(t, 'writes under leader kills, then every member killed at once', async (st) => {
    await cluster.waitForLeader({ timeoutMs: 15_000 });
    const writer = new Writer(ledger, { services, concurrency: 6, targets: () => cluster.running, timeoutMs: 5000 }).start();
    try {
      for (let kill = 0; kill < 3; kill++) {
        await waitFor(() => writer.ackCount >= 40 * (kill + 1), { timeoutMs: 30_000, what: `${40 * (kill + 1)} acknowledged writes` });
        const { leader } = await cluster.waitForLeader({ timeoutMs: 15_000 });
        await leader.kill9();
        await new Promise((resolve) => setTimeout(resolve, 300));
        await leader.start();
      }
      await waitFor(() => writer.ackCount >= 160, { timeoutMs: 30_000, what: '160 acknowledged writes' });
    } finally {
      await Promise.all(old.filter((member) => member.running).map((member) => member.kill9()));
      await writer.stop();
    }
    st.diagnostic(`ledger: ${ledger.summary()}`);
    assert.ok(ledger.byKind('ok').length >= 160);
  });

  await cluster.step(t, 'restore the backup with the highest term, then index: every acknowledged write is there', async (st) => {
    const backups = [];
    for (const [i, member] of old.entries()) {
      const file = path.join(cluster.root, `survivor-${i}.bak`);
      const saved = await cli(['backup', 'save', '--with-uncommitted', '--data-dir', member.dataDir, '--out', file]);
      assert.equal(saved.code, 0, `backup of ${member.addr}: exit ${String(saved.code)}: ${saved.stderr}`);
      backups.push({ member, file, ...backupTermIndex(file, services) });
    }
    const acked = ledger.byKind('ok').map((outcome) => `${outcome.service}/${outcome.key}`);
    for (const backup of backups) {
      const missing = acked.filter((key) => !backup.keys.has(key)).length;
      st.diagnostic(`${backup.member.addr}: term ${backup.term}, index ${backup.index}, ${backup.keys.size} instances, ${missing} of ${acked.length} acknowledged writes missing`);
    }
    const best = [...backups].sort((a, b) => b.term - a.term || b.index - a.index)[0];
    assert.ok(best !== undefined);
    assert.deepEqual(acked.filter((key) => !best.keys.has(key)), [], `the most up-to-date backup (${best.member.addr}) holds every acknowledged write`);

    const members = fresh.map((member) => member.addr);
    for (const member of fresh) {
      const restored = await cli(['backup', 'restore', '--in', best.file, '--data-dir', member.dataDir, '--addr', member.addr, '--members', members.join(',')]);
      assert.equal(restored.code, 0, `restore for ${member.addr}: exit ${String(restored.code)}: ${restored.stderr}`);
    }
    await Promise.all(fresh.map((member) => member.start({ members })));
    await cluster.waitForLeader({ among: fresh, timeoutMs: 20_000 });
    const report = await checkConvergence(ledger, fresh, { what: 'the restored cluster to list every acknowledged write' });
    st.diagnostic(`restored from ${best.member.addr}: ${report.acked} acknowledged listed; unknown writes listed ${report.unknownPresent}, not ${report.unknownAbsent}`);
  });
});
