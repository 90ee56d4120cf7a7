// Goal: show, on real `cairn server` processes, how a gRPC Session ends (docs/grpc.md "Session", docs/ap.md "Beats,
// expiry and sessions"), where the 2026-11-24 gRPC audit found it wrong:
// - a stream cancelled right after its `register` (the responsible member remote for most services) leaves nothing
//   behind: the registration still on its way at the cancel is removed when it lands (it used to stay listed until it
//   expired, 30 s later, for 19 of 30 such sessions);
// - a member shutting down (SIGTERM) ends its Session streams with UNAVAILABLE (CAIRN_SHUTTING_DOWN), as it ends
//   Subscribe streams, not ABORTED (CAIRN_SESSION_EXPIRED), and deregisters nothing: the instance stays listed at the
//   other members for the client to redo (it expires later if the client does not).
// Method: three members on this file's own 127.0.1.116-118 with Nacos's default timeouts (an instance nothing renews
// is listed 30 s), raw grpc-js bidirectional streams; outcomes polled with bounded waits.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { methodDefinitionOf } from '../../src/api/grpc/proto.ts';
import { responsibleMember, serviceIdOf } from '../../src/ap/responsibility.ts';
import { holdsFor, httpRequest, startCluster, waitFor, type Member } from '../support/cluster.ts';

const hosts = ['127.0.1.116', '127.0.1.117', '127.0.1.118'];
const Naming = 'cairn.naming.v1.Naming';
type Message = Record<string, unknown>;

/** SessionStream is one raw Session call: its answers and its final status. */
interface SessionStream {
  readonly call: grpc.ClientDuplexStream<Message, Message>;
  readonly answers: Message[];
  status(): grpc.StatusObject | null;
}

function openSession(client: grpc.Client): SessionStream {
  const method = methodDefinitionOf(Naming, 'Session');
  const call = client.makeBidiStreamRequest(method.path, method.requestSerialize, method.responseDeserialize) as grpc.ClientDuplexStream<Message, Message>;
  const answers: Message[] = [];
  let status: grpc.StatusObject | null = null;
  call.on('data', (message: Message) => answers.push(message));
  call.on('status', (s: grpc.StatusObject) => (status = s));
  call.on('error', () => undefined);
  return { call, answers, status: () => status };
}

/** listed is the ephemeral instances of `service` that `member` lists from its own state. */
async function listed(member: Member, service: string): Promise<string[]> {
  const answer = await httpRequest(member.addr, 'GET', `/nacos/v1/ns/instance/list?serviceName=${service}`);
  assert.equal(answer.status, 200, answer.text);
  return ((JSON.parse(answer.text) as { hosts: Array<{ ip: string; port: number }> }).hosts).map((host) => `${host.ip}:${host.port}`);
}

test('a Session cancelled with its register on the way leaves nothing; a member\'s shutdown ends Sessions with UNAVAILABLE and removes nothing', { timeout: 120_000 }, async (t) => {
  const cluster = await startCluster(t, { file: 'session-lifecycle', hosts, size: 3 });
  await cluster.waitForLeader();
  const [first, second, third] = cluster.members as [Member, Member, Member];

  await cluster.step(t, 'sessions cancelled while their register is on its way leave no instance behind', async () => {
    // The registrations go to `second` (responsible for these services), paused for 400 ms: they are on their way
    // when the cancels close the sessions at `first`, and land after (well within the forward fence and the stall
    // threshold, so `second` applies them). Before the fix they stayed listed for 30 s.
    const sorted = [...cluster.memberAddrs].sort();
    const services = Array.from({ length: 400 }, (_, i) => `race-${i}`)
      .filter((service) => responsibleMember(serviceIdOf('public', 'DEFAULT_GROUP', service), sorted) === second.addr).slice(0, 10);
    assert.equal(services.length, 10);
    const clients = services.map(() => new grpc.Client(`${first.host}:${first.port + 1000}`, grpc.credentials.createInsecure()));
    t.after(() => clients.forEach((client) => client.close()));
    const sessions = clients.map((client) => openSession(client));
    await waitFor(() => sessions.every((session) => session.answers.length >= 1), { timeoutMs: 5000, intervalMs: 5, what: 'every session started' });
    second.pause();
    try {
      for (const [i, session] of sessions.entries()) session.call.write({ register: { service: services[i], instance: { ip: '127.0.9.30', port: 80, ephemeral: true } } });
      // Their answers wait for `second`, so nothing tells when `first` has read and forwarded them: a loopback
      // round trip takes well under the 100 ms given; then the cancels, and `second` stays paused a little longer.
      await new Promise((resolve) => setTimeout(resolve, 100));
      for (const session of sessions) session.call.cancel();
      await new Promise((resolve) => setTimeout(resolve, 300));
    } finally {
      second.resume();
    }
    const resumedAt = Date.now();
    const noneListed = async (): Promise<boolean> => {
      for (const member of cluster.members) {
        for (const service of services) if ((await listed(member, service)).length > 0) return false;
      }
      return true;
    };
    // A registration that lands after its session closed is listed until its removal follows it (a round trip and a
    // sync later); nothing renews one, and Nacos's timeouts would list it for 30 s. So from a second after the
    // resume on, none may be listed for the next three.
    await waitFor(async () => Date.now() - resumedAt >= 1000 && (await noneListed()), { timeoutMs: 8000, intervalMs: 250, what: 'no cancelled session\'s instance listed on any member' });
    await holdsFor(noneListed, { durationMs: 3000, intervalMs: 250, what: 'no cancelled session\'s instance listed on any member' });
  });

  await cluster.step(t, 'SIGTERM ends the member\'s Session streams with UNAVAILABLE CAIRN_SHUTTING_DOWN, deregistering nothing', async () => {
    const client = new grpc.Client(`${third.host}:${third.port + 1000}`, grpc.credentials.createInsecure());
    t.after(() => client.close());
    const session = openSession(client);
    session.call.write({ register: { service: 'shutdown', instance: { ip: '127.0.9.31', port: 80, ephemeral: true } } });
    await waitFor(() => session.answers.length >= 2, { timeoutMs: 5000, intervalMs: 5, what: 'registered' });
    assert.ok(session.answers[1]!['registered'] !== undefined, JSON.stringify(session.answers[1]));
    await waitFor(async () => (await listed(first, 'shutdown')).length === 1, { timeoutMs: 5000, what: 'the instance listed at another member' });
    const keepAlive = setInterval(() => session.call.write({ keepAlive: {} }), 500);
    t.after(() => clearInterval(keepAlive));
    const exit = third.terminate();
    const status = await waitFor(() => session.status(), { timeoutMs: 10_000, intervalMs: 10, what: 'the stream\'s end' });
    clearInterval(keepAlive);
    assert.equal(status.code, grpc.status.UNAVAILABLE, status.details);
    assert.equal(status.metadata.get('cairn-error-code')[0], 'CAIRN_SHUTTING_DOWN');
    await exit;
    // Nothing was deregistered: the client would redo at another member; here nobody does, and it stays until expiry.
    for (const member of [first, second]) assert.deepEqual(await listed(member, 'shutdown'), ['127.0.9.31:80'], `at ${member.addr}`);
  });
});
