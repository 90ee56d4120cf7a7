// Goal: two promises of the AP path with real member processes (DESIGN.md "The AP path", NACOS.md §6). (1) Writes
// are forwarded: an ephemeral registration sent to a member that is not responsible for its service is applied by
// the responsible member and becomes visible on every member. (2) A restarted member loads a snapshot from a peer:
// killed with SIGKILL (its ephemeral data is memory only) while the others take writes, then started again with the
// same data directory, it lists every instance, deregistrations included, and says it loaded a snapshot
// (cairn_ap_snapshot_loaded 1, the log line "distro snapshot loaded").
//
// Method: three members on 127.0.1.135-137 (this file's block is 127.0.1.135-139). The responsible member of a
// service is computed with the members' own function (src/ap/responsibility.ts) over the sorted member list, and
// the write goes to another member; cairn_ap_forwards_total{result="served"} on the responsible member proves
// the hop. Times are printed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startCluster, waitFor, type Member } from '../support/cluster.ts';
import { deregisterEphemeral, describeList, listEphemeral, metricValue, registerEphemeral } from '../support/ephemeral.ts';
import { responsibleMember, serviceIdOf } from '../../src/ap/responsibility.ts';

const hosts = ['127.0.1.135', '127.0.1.136', '127.0.1.137', '127.0.1.138', '127.0.1.139'];

async function everywhere(members: readonly Member[], service: string, expected: string, timeoutMs = 10_000): Promise<number> {
  const started = Date.now();
  await waitFor(async () => {
    const views = await Promise.all(members.map(async (member) => describeList(await listEphemeral(member, service))));
    return views.every((view) => view === expected) || (() => { throw new Error(views.join(' | ')); })();
  }, { timeoutMs, intervalMs: 50, what: `${service} = ${expected} on ${members.map((m) => m.addr).join(', ')}` });
  return Date.now() - started;
}

test('forwarding and a restarted member\'s snapshot load', { timeout: 180_000 }, async (t) => {
  const cluster = await startCluster(t, { file: 'ephemeral-restart', hosts, size: 3 });
  const sorted = [...cluster.memberAddrs].sort();

  await cluster.step(t, 'a write to a non-responsible member is applied by the responsible one and seen everywhere', async () => {
    const service = 'fwd-svc';
    const responsibleAddr = responsibleMember(serviceIdOf('public', 'DEFAULT_GROUP', service), sorted);
    const responsible = cluster.member(responsibleAddr);
    const other = cluster.members.find((member) => member !== responsible)!;
    const servedBefore = (await metricValue(responsible, 'cairn_ap_forwards_total', '{result="served"}')) ?? 0;
    await registerEphemeral(other, service, '10.0.0.1', 8080);
    const ms = await everywhere(cluster.members, service, '10.0.0.1:8080');
    t.diagnostic(`the forwarded write was on every member ${ms} ms after it was acknowledged`);
    assert.ok(((await metricValue(responsible, 'cairn_ap_forwards_total', '{result="served"}')) ?? 0) > servedBefore, 'the responsible member served the forward');
    await deregisterEphemeral(other, service, '10.0.0.1', 8080);
    await everywhere(cluster.members, service, '');
  });

  await cluster.step(t, 'a member killed and restarted with the same data directory loads a snapshot from a peer', async () => {
    const [m1, m2, m3] = cluster.members as [Member, Member, Member];
    for (let i = 0; i < 10; i++) await registerEphemeral(m1, `snap-${i}`, '10.0.0.1', 8080);
    await everywhere(cluster.members, 'snap-9', '10.0.0.1:8080');
    await m3.kill9();
    for (let i = 0; i < 10; i++) await registerEphemeral(i % 2 === 0 ? m1 : m2, `snap-${i}`, '10.0.0.2', 8080);
    await deregisterEphemeral(m2, 'snap-0', '10.0.0.1', 8080);
    await registerEphemeral(m2, 'snap-while-down', '10.0.0.3', 8080);
    const started = Date.now();
    await m3.restart();
    t.diagnostic(`restarted ${m3.addr} in ${Date.now() - started} ms`);
    await waitFor(async () => (await metricValue(m3, 'cairn_ap_snapshot_loaded')) === 1, { timeoutMs: 20_000, what: 'the snapshot load on the restarted member' });
    t.diagnostic(`snapshot loaded ${Date.now() - started} ms after the restart began`);
    assert.ok(m3.log.tail(400).some((line) => line.includes('distro snapshot loaded')), 'the restarted member logs its snapshot load');
    assert.equal(describeList(await listEphemeral(m3, 'snap-while-down')), '10.0.0.3:8080');
    assert.equal(describeList(await listEphemeral(m3, 'snap-0')), '10.0.0.2:8080');
    for (let i = 1; i < 10; i++) assert.equal(describeList(await listEphemeral(m3, `snap-${i}`)), '10.0.0.1:8080,10.0.0.2:8080', `snap-${i}`);
  });
});
