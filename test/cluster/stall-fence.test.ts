// Goal: a member that stood still (SIGSTOP) does not apply, when it resumes, the client writes that waited in its
// sockets meanwhile and whose clients had given up (src/stall.ts): they are refused with CAIRN_MEMBER_STALLED and
// counted, and writes made after the grace are served again. Without the fence both writes below are applied.
// Method: a real one-member cluster on 127.0.1.83 (this file's address). A control write of each kind first. Then
// the member is paused; an HTTP registration of an ephemeral instance (the nacos client's default) and a gRPC
// RegisterInstance of a persistent one are sent to it, and both clients give up after 1 s (the HTTP client closes its
// connection, the gRPC call hits its deadline). The member is resumed 2.5 s after the pause; the test then asserts
// neither instance exists, the refusals are counted by API, the stall is counted, and a fresh registration of the
// same ephemeral instance is served. A list request sent during the pause by a client that still waits is refused
// too (its answer would be the state the member stood still with), and counted apart.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { ClientApiClient, GrpcCallError } from '../../src/api/grpc/client.ts';
import { limits } from '../../src/limits.ts';
import { HttpFailure, sleep, startCluster, waitFor } from '../support/cluster.ts';
import { describeList, listEphemeral, metricValue, registerEphemeral } from '../support/ephemeral.ts';

const Naming = 'cairn.naming.v1.Naming';
const service = 'stall-fence';
const persistentService = 'stall-fence-persistent';

function form(fields: Readonly<Record<string, string | number>>): string {
  return new URLSearchParams(Object.entries(fields).map(([key, value]): [string, string] => [key, String(value)])).toString();
}

test('writes read as a paused member resumes are refused (CAIRN_MEMBER_STALLED), not applied after their clients gave up', { timeout: 120_000 }, async (t) => {
  const cluster = await startCluster(t, { file: 'stall-fence', hosts: ['127.0.1.83'], size: 1 });
  const member = cluster.members[0];
  assert.ok(member !== undefined);
  await cluster.waitForLeader();
  const client = new ClientApiClient(`${member.host}:${member.port + 1000}`, 5000);
  t.after(() => client.close());
  const persistent = (ip: string): object => ({ service: persistentService, instance: { ip, port: 80, ephemeral: false } });

  // Control: both kinds of write are served by a running member.
  await registerEphemeral(member, service, '10.9.0.1', 80);
  await client.call(Naming, 'RegisterInstance', persistent('10.9.1.1'));

  member.pause();
  const pausedAt = Date.now();
  let lateRead: Promise<string> = Promise.resolve('not sent');
  try {
    const late = await member.request('POST', `/nacos/v1/ns/instance?${form({ serviceName: service, ip: '10.9.0.2', port: 80, ephemeral: 'true' })}`, { timeoutMs: 1000 })
      .then((answer) => `answered ${answer.status}`, (error: unknown) => error);
    assert.ok(late instanceof HttpFailure && late.reason === 'timeout', `the HTTP client gave up: ${String(late)}`);
    // A read that waits in the socket with a client still waiting: answered as the member resumes, refused too.
    lateRead = member.request('GET', `/nacos/v1/ns/instance/list?serviceName=${service}`, { timeoutMs: 10_000 })
      .then((answer) => `${answer.status} ${answer.code ?? ''}`, (error: unknown) => String(error));
    const shortClient = new ClientApiClient(`${member.host}:${member.port + 1000}`, 1000);
    try {
      const lateGrpc = await shortClient.call(Naming, 'RegisterInstance', persistent('10.9.1.2')).then(() => 'answered', (error: unknown) => error);
      assert.ok(lateGrpc instanceof GrpcCallError && lateGrpc.code === grpc.status.DEADLINE_EXCEEDED, `the gRPC call hit its deadline: ${String(lateGrpc)}`);
    } finally {
      shortClient.close();
    }
    await sleep(Math.max(0, 2500 - (Date.now() - pausedAt)));
  } finally {
    member.resume();
  }

  // The member reads both writes as it resumes and refuses them.
  await waitFor(async () => ((await metricValue(member, 'cairn_stall_refused_writes_total', '{api="http"}')) ?? 0) >= 1
    && ((await metricValue(member, 'cairn_stall_refused_writes_total', '{api="grpc"}')) ?? 0) >= 1,
  { timeoutMs: 10_000, what: 'both late writes refused' });
  assert.equal(await lateRead, '503 CAIRN_MEMBER_STALLED', 'the list read as the member resumed');
  assert.ok(((await metricValue(member, 'cairn_stall_refused_reads_total', '{api="http"}')) ?? 0) >= 1, 'the refused read was counted');
  assert.ok(((await metricValue(member, 'cairn_member_stalls_total')) ?? 0) >= 1, 'the stall was counted');
  // Reads are served again once the member has caught up (the grace is over).
  await waitFor(async () => (await member.request('GET', `/nacos/v1/ns/instance/list?serviceName=${service}`, { timeoutMs: 5000 })).status === 200,
    { timeoutMs: limits.stallGraceMsMax + 5000, what: 'reads served again after the grace' });
  assert.ok(((await metricValue(member, 'cairn_member_stall_seconds_max')) ?? 0) >= 2, 'the stall lasted over 2 s');
  assert.equal(describeList(await listEphemeral(member, service)), '10.9.0.1:80', 'the late ephemeral registration was not applied');
  const hosts = await client.call(Naming, 'ListInstances', { service: persistentService, consistency: 'LINEARIZABLE' });
  const persisted = (hosts['instances'] as Array<{ ip: string }>).map((instance) => instance.ip).sort();
  assert.deepEqual(persisted, ['10.9.1.1'], 'the late persistent registration was not applied');

  // After the grace, the same writes are served.
  await sleep(limits.stallGraceMs);
  await registerEphemeral(member, service, '10.9.0.2', 80);
  await client.call(Naming, 'RegisterInstance', persistent('10.9.1.2'));
  assert.equal(describeList(await listEphemeral(member, service)), '10.9.0.1:80,10.9.0.2:80');
});
