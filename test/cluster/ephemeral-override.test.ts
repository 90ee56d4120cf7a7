// Goal: an operator's change of an ephemeral instance outlives the client's re-registrations on real members
// (docs/ap.md "Operator changes", PEERS.md C3): made through a member that forwards it, it reaches every member by
// sync; the client's re-registration keeps it; the responsible member killed, the survivors still hold it and a
// re-registration at the new responsible member keeps it; the operator's next change undoes it everywhere.
//
// A second test partitions one member from the other two (iptables DROP rules tagged
// `cairn-test-ephemeral-override-<pid>`, removed even on failure): one operator disables the instance on one side,
// another sets its weight on the other; after the heal every member shows both changes (docs/ap.md: the override
// merges attribute by attribute).
//
// Method: three members on 127.0.1.78-80 (this file's block); instances kept alive for 10 minutes without beats
// (longLived metadata), so nothing but the writes below changes them; every member's local list is read.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startCluster, waitFor, type Member } from '../support/cluster.ts';
import { describeList, listEphemeral, longLived, metricValue, registerEphemeral } from '../support/ephemeral.ts';
import { Partitioner, requireIptables } from '../support/iptables.ts';
import { responsibleMember, serviceIdOf } from '../../src/ap/responsibility.ts';

const hosts = ['127.0.1.78', '127.0.1.79', '127.0.1.80'];
const service = 'override-svc';

async function views(members: readonly Member[]): Promise<string[]> {
  return Promise.all(members.map(async (member) => describeList(await listEphemeral(member, service))));
}

async function untilEverywhere(members: readonly Member[], expected: string, what: string): Promise<void> {
  await waitFor(async () => {
    const seen = await views(members);
    return seen.every((view) => view === expected) || (() => { throw new Error(seen.join(' | ')); })();
  }, { timeoutMs: 15_000, intervalMs: 100, what });
}

async function patch(member: Member, params: Record<string, string>): Promise<void> {
  const query = new URLSearchParams({ serviceName: service, ip: '10.0.0.1', port: '8080', ...params }).toString();
  const answer = await member.request('PATCH', `/nacos/v1/ns/instance?${query}`);
  assert.equal(answer.status, 200, `PATCH through ${member.addr}: ${answer.text}`);
}

/** detail is the v1 instance detail (Nacos's shape has no `enabled`: the lists say that). */
async function detail(member: Member): Promise<{ weight: number; metadata: Record<string, string> }> {
  const answer = await member.request('GET', `/nacos/v1/ns/instance?serviceName=${service}&ip=10.0.0.1&port=8080`);
  assert.equal(answer.status, 200, `detail at ${member.addr}: ${answer.text}`);
  return JSON.parse(answer.text) as { weight: number; metadata: Record<string, string> };
}

/** untilDetail waits until every member's detail shows the client's `zone` and the operator's weight 3. */
async function untilDetail(members: readonly Member[], zone: string): Promise<void> {
  await waitFor(async () => {
    const seen = await Promise.all(members.map(async (member) => detail(member)));
    return seen.every((one) => one.metadata['zone'] === zone && one.weight === 3) || (() => { throw new Error(JSON.stringify(seen)); })();
  }, { timeoutMs: 15_000, intervalMs: 100, what: `zone ${zone} with the operator's weight 3 on every member` });
}

test('an operator\'s disable survives the client\'s re-registrations and the responsible member\'s death', { timeout: 180_000 }, async (t) => {
  const cluster = await startCluster(t, { file: 'ephemeral-override', hosts, size: 3 });
  const responsibleAddr = responsibleMember(serviceIdOf('public', 'DEFAULT_GROUP', service), [...cluster.memberAddrs].sort());
  const responsible = cluster.members.find((member) => member.addr === responsibleAddr)!;
  const [client, operator] = cluster.members.filter((member) => member !== responsible) as [Member, Member];
  t.diagnostic(`responsible ${responsible.addr}; the client registers through ${client.addr}, the operator through ${operator.addr}`);
  await registerEphemeral(client, service, '10.0.0.1', 8080, { ...longLived, zone: 'a' });
  await registerEphemeral(client, service, '10.0.0.2', 8080, longLived);
  await untilEverywhere(cluster.members, '10.0.0.1:8080,10.0.0.2:8080', 'both instances listed everywhere');

  await cluster.step(t, 'the operator disables 10.0.0.1; the client registers it again: still out everywhere', async () => {
    await patch(operator, { enabled: 'false', weight: '3' });
    await untilEverywhere(cluster.members, '10.0.0.2:8080', 'the disabled instance unlisted everywhere');
    await registerEphemeral(client, service, '10.0.0.1', 8080, { ...longLived, zone: 'b' });
    await untilEverywhere(cluster.members, '10.0.0.2:8080', 'still unlisted after the re-registration');
    // The re-registration reaches the other members by sync: each shows the client's new metadata, still out of the
    // lists, with the operator's weight.
    await untilDetail(cluster.members, 'b');
    await untilEverywhere(cluster.members, '10.0.0.2:8080', 'still unlisted once every member has the re-registration');
  });

  await cluster.step(t, 'the responsible member dies: the survivors keep the change through another re-registration', async () => {
    await responsible.kill9();
    const survivors = cluster.members.filter((member) => member !== responsible);
    // Until the survivors see the death, a write may be routed to the dead member and fail: retried.
    await waitFor(async () => {
      await registerEphemeral(client, service, '10.0.0.1', 8080, { ...longLived, zone: 'c' });
      return true;
    }, { timeoutMs: 20_000, intervalMs: 500, what: 'a re-registration accepted after the responsible member died' });
    await untilDetail(survivors, 'c');
    await untilEverywhere(survivors, '10.0.0.2:8080', 'still unlisted on the survivors');
    await patch(operator, { enabled: 'true' });
    await untilEverywhere(survivors, '10.0.0.1:8080,10.0.0.2:8080', 'listed again once the operator enabled it');
    assert.equal((await detail(client)).weight, 3, 'the operator\'s weight stays until the operator changes it');
  });
});

test('two operators\' changes of different attributes on the two sides of a partition both stand after the heal', { timeout: 180_000 }, async (t) => {
  if (!requireIptables(t)) return;
  const partitioner = new Partitioner('ephemeral-override');
  t.after(() => partitioner.close());
  const cluster = await startCluster(t, { file: 'ephemeral-override', hosts, size: 3 });
  const [lone, left, right] = cluster.members as [Member, Member, Member];
  await registerEphemeral(left, service, '10.0.0.1', 8080, longLived);
  await registerEphemeral(left, service, '10.0.0.2', 8080, longLived);
  await untilEverywhere(cluster.members, '10.0.0.1:8080,10.0.0.2:8080', 'both instances listed everywhere');

  await cluster.step(t, 'partitioned: the operator disables 10.0.0.1 on the lone side; another sets its weight on the majority side', async () => {
    partitioner.isolate(lone.host, [left.host, right.host]);
    await waitFor(async () => (await metricValue(lone, 'cairn_ap_live_members')) === 1 && (await metricValue(left, 'cairn_ap_live_members')) === 2,
      { timeoutMs: 20_000, intervalMs: 200, what: 'both sides to see the partition' });
    await patch(lone, { enabled: 'false' });
    await patch(right, { weight: '5' });
    await untilEverywhere([lone], '10.0.0.2:8080', 'disabled on the lone side');
    await untilEverywhere([left, right], '10.0.0.1:8080,10.0.0.2:8080', 'still enabled on the majority side');
  });

  await cluster.step(t, 'healed: every member keeps the instance out and shows the weight 5', async () => {
    partitioner.heal();
    await untilEverywhere(cluster.members, '10.0.0.2:8080', 'the disable stands everywhere');
    await waitFor(async () => {
      const seen = await Promise.all(cluster.members.map(async (member) => (await detail(member)).weight));
      return seen.every((weight) => weight === 5) || (() => { throw new Error(seen.join(' | ')); })();
    }, { timeoutMs: 15_000, intervalMs: 100, what: 'the weight 5 on every member' });
  });
});
