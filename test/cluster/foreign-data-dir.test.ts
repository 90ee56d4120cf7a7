// Goal: a member refuses to start on a data directory of another cluster. Once initialised, a member goes on with
// its stored configuration whatever --members says (membership changes at run time move the two apart), and it used
// to do so silently even when --members named other members its stored configuration had never held. The audit of
// session 31 started a standalone member's directory with --members A,B,C while B and C were new: B and C formed a
// group with A as a voter while A led a group of its own, and a linearizable list on A missed a write acknowledged
// by the others. Such a start is now refused (CAIRN_INVALID_ARGUMENT, naming the stored configuration and the way
// out), while a start whose --members merely differs from the stored configuration is allowed and logged.
//
// Method: one real member on 127.0.1.201 (spares 127.0.1.202-203, never started), its own data directory. It starts
// standalone and takes a persistent write; it is stopped and started with --members naming the two spares beside
// it, then naming one spare beside it: both refused, nothing served; then as before: served, the write still listed.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readInstances, startCluster } from '../support/cluster.ts';

const hosts = ['127.0.1.201', '127.0.1.202', '127.0.1.203'];

test('a standalone member\'s data directory started with --members naming other members is refused; started as before it serves its data', { timeout: 120_000 }, async (t) => {
  const cluster = await startCluster(t, { file: 'foreign-data-dir', hosts, size: 1, logLevel: 'warn' });
  const member = cluster.members[0];
  assert.ok(member !== undefined);
  const others = cluster.spares.map((spare) => spare.addr);

  await cluster.step(t, 'a standalone member takes a write', async () => {
    const answer = await member.request('POST', '/nacos/v1/ns/instance?serviceName=foreign&ip=127.0.4.9&port=9&ephemeral=false');
    assert.equal(answer.status, 200, answer.text);
    assert.deepEqual([...(await readInstances(member, 'foreign'))], ['127.0.4.9:9']);
    await member.terminate();
  });

  for (const members of [[member.addr, ...others], [member.addr, others[0] ?? '']]) {
    await cluster.step(t, `started with --members ${members.join(',')}: refused`, async () => {
      const refused = await member.startExpectingExit({ members, timeoutMs: 30_000 });
      assert.notEqual(refused.code, 0, `exit ${JSON.stringify({ code: refused.code, signal: refused.signal })}`);
      assert.equal(refused.signal, null);
      assert.match(refused.stderr, /CAIRN_INVALID_ARGUMENT/, refused.stderr);
      assert.ok(refused.stderr.includes(`holds a cluster of ${member.addr}`), `names the stored configuration: ${refused.stderr}`);
      assert.ok(refused.stderr.includes(`--members ${member.addr}`), `says how to start it: ${refused.stderr}`);
    });
  }

  await cluster.step(t, 'started as before: it serves its data', async () => {
    await member.start({ members: [member.addr] });
    assert.deepEqual([...(await readInstances(member, 'foreign'))], ['127.0.4.9:9']);
  });
});
