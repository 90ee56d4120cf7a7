// Goal: show, on real `cairn server` processes, that DESIGN.md "Subscriptions and pushes" holds end to end: a gRPC
// Subscribe on a FOLLOWER gets the current snapshot, then every change made through the LEADER (registration,
// health set with PUT /nacos/v1/ns/health/instance, weight update, deregistration) well under 2 s each, with growing
// revisions; a resume at another member (another epoch) gets the full current snapshot with a greater revision; a v1
// list with udpPort makes the member push the change by UDP to the request's source address (not the clientIP
// parameter) and count the ack in its metrics; a gRPC Session on the real AP registry registers an ephemeral
// instance that a subscriber at another member sees, and that vanishes when the stream ends.
// Method: three members on this file's own 127.0.1.150-152 (HTTP port 18848, gRPC +1000), persistent instances on
// 127.x addresses with the cluster's health checker set to NONE (the AP path is built in parallel), a grpc-js client
// for Subscribe, node:http with a chosen local address for the list, and real UDP sockets on 127.0.1.163/164. The
// change-to-snapshot latency (HTTP write answered -> snapshot received on the follower) is printed.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { request as httpRequestRaw } from 'node:http';
import * as grpc from '@grpc/grpc-js';
import { methodDefinitionOf } from '../../src/api/grpc/proto.ts';
import { decodePushPacket } from '../../src/naming/udp-push.ts';
import { httpRequest, startCluster, waitFor, type Member } from '../support/cluster.ts';

const hosts = ['127.0.1.150', '127.0.1.151', '127.0.1.152'];
const Naming = 'cairn.naming.v1.Naming';
type Message = Record<string, unknown>;

function grpcAddrOf(member: Member): string {
  return `${member.host}:${member.port + 1000}`;
}

/** subscribe opens a Subscribe stream at `member` and collects its snapshots. */
function subscribe(member: Member, request: object): { messages: Array<Message & { at: number }>; call: grpc.ClientReadableStream<Message>; client: grpc.Client } {
  const client = new grpc.Client(grpcAddrOf(member), grpc.credentials.createInsecure());
  const method = methodDefinitionOf(Naming, 'Subscribe');
  const call = client.makeServerStreamRequest(method.path, method.requestSerialize, method.responseDeserialize, request) as grpc.ClientReadableStream<Message>;
  const messages: Array<Message & { at: number }> = [];
  call.on('data', (message: Message) => messages.push({ ...message, at: Date.now() }));
  call.on('error', () => undefined);
  return { messages, call, client };
}

function hostsOf(message: Message): string[] {
  return ((message['instances'] ?? []) as Array<{ ip: string; port: number; healthy: boolean; weight: number }>)
    .map((instance) => `${instance.ip}:${instance.port}/w${instance.weight}${instance.healthy ? '' : '/down'}`);
}

async function ok(member: Member, method: string, path: string): Promise<number> {
  const answer = await httpRequest(member.addr, method, path);
  assert.equal(answer.status, 200, `${method} ${path} at ${member.addr}: ${answer.status} ${answer.text}`);
  return Date.now();
}

test('subscriptions and pushes on a 3-member cluster: follower subscribers see leader writes; UDP pushes reach the source address', { timeout: 120_000 }, async (t) => {
  const cluster = await startCluster(t, { file: 'subscriptions', hosts, size: 3 });
  const { leader } = await cluster.waitForLeader();
  const follower = cluster.members.find((member) => member !== leader);
  assert.ok(follower !== undefined);
  const service = 'web';
  await ok(leader, 'POST', `/nacos/v1/ns/service?serviceName=${service}`);
  await ok(leader, 'PUT', `/nacos/v1/ns/cluster?serviceName=${service}&clusterName=DEFAULT&checkPort=80&useInstancePort4Check=true&healthChecker=${encodeURIComponent('{"type":"NONE"}')}`);
  const latencies: number[] = [];

  await cluster.step(t, 'a follower subscriber sees every change made through the leader within 2 s', async () => {
    // The follower applies the service asynchronously: wait until it has it, so the first snapshot is not "absent".
    await waitFor(async () => (await httpRequest(follower.addr, 'GET', `/nacos/v1/ns/instance/list?serviceName=${service}`)).text.includes('"dom"'), { timeoutMs: 5000, what: 'the service on the follower' });
    const stream = subscribe(follower, { service });
    t.after(() => {
      stream.call.cancel();
      stream.client.close();
    });
    await waitFor(() => stream.messages.length >= 1, { timeoutMs: 5000, intervalMs: 5, what: 'the first snapshot' });
    assert.deepEqual(hostsOf(stream.messages[0]!), []);
    const steps: Array<[string, string, string, string[]]> = [
      ['register', 'POST', `/nacos/v1/ns/instance?serviceName=${service}&ip=127.0.9.1&port=80&ephemeral=false`, ['127.0.9.1:80/w1']],
      ['health set', 'PUT', `/nacos/v1/ns/health/instance?serviceName=${service}&ip=127.0.9.1&port=80&healthy=false`, ['127.0.9.1:80/w1/down']],
      ['weight update', 'PUT', `/nacos/v1/ns/instance?serviceName=${service}&ip=127.0.9.1&port=80&ephemeral=false&weight=5&healthy=false`, ['127.0.9.1:80/w5/down']],
      ['second register', 'POST', `/nacos/v1/ns/instance?serviceName=${service}&ip=127.0.9.2&port=80&ephemeral=false`, ['127.0.9.1:80/w5/down', '127.0.9.2:80/w1']],
      ['deregister', 'DELETE', `/nacos/v1/ns/instance?serviceName=${service}&ip=127.0.9.1&port=80&ephemeral=false`, ['127.0.9.2:80/w1']],
    ];
    for (const [what, method, path, expected] of steps) {
      const before = stream.messages.length;
      const answeredAt = await ok(leader, method, path);
      const snapshot = await waitFor(() => stream.messages.slice(before).find((message) => hostsOf(message).join() === expected.join()), { timeoutMs: 2000, intervalMs: 2, what: `the ${what} on the follower stream` });
      latencies.push(Math.max(0, snapshot.at - answeredAt));
    }
    const revisions = stream.messages.map((message) => Number(message['revision']));
    for (let i = 1; i < revisions.length; i++) assert.ok(revisions[i]! > revisions[i - 1]!, `revisions grow: ${revisions.join(',')}`);
    t.diagnostic(`write answered -> snapshot on the follower, ms: ${latencies.join(', ')} (max ${Math.max(...latencies)})`);
    assert.ok(Math.max(...latencies) < 2000);
    // Resume at the leader (another epoch) with the follower's last revision: the current snapshot, with a greater revision.
    const last = stream.messages.at(-1)!;
    const resumed = subscribe(leader, { service, afterRevision: last['revision'], afterEpoch: last['epoch'] });
    t.after(() => {
      resumed.call.cancel();
      resumed.client.close();
    });
    await waitFor(() => resumed.messages.length >= 1, { timeoutMs: 5000, intervalMs: 5, what: 'the resumed first snapshot' });
    assert.notEqual(resumed.messages[0]!['epoch'], last['epoch']);
    assert.ok(Number(resumed.messages[0]!['revision']) > Number(last['revision']), 'revisions keep growing across members');
    assert.deepEqual(hostsOf(resumed.messages[0]!), ['127.0.9.2:80/w1']);
  });

  await cluster.step(t, 'a v1 list with udpPort gets UDP pushes at its source address, and the ack is counted', async () => {
    const receiver = createSocket('udp4');
    const decoy = createSocket('udp4');
    await new Promise<void>((resolve) => receiver.bind(0, '127.0.1.163', () => resolve()));
    const port = receiver.address().port;
    await new Promise<void>((resolve) => decoy.bind(port, '127.0.1.164', () => resolve()));
    t.after(() => {
      receiver.close();
      decoy.close();
    });
    const pushes: Array<{ hosts: string[]; at: number }> = [];
    const decoyPackets: Buffer[] = [];
    decoy.on('message', (message) => decoyPackets.push(message));
    receiver.on('message', (message, remote) => {
      const packet = decodePushPacket(message);
      const data = JSON.parse(packet.data) as { hosts: Array<{ ip: string }> };
      pushes.push({ hosts: data.hosts.map((host) => host.ip), at: Date.now() });
      receiver.send(JSON.stringify({ type: 'push-ack', lastRefTime: packet.lastRefTime, data: '' }), remote.port, remote.address);
    });
    await new Promise<void>((resolve, reject) => {
      const request = httpRequestRaw({
        host: follower.host, port: follower.port, localAddress: '127.0.1.163',
        path: `/nacos/v1/ns/instance/list?serviceName=${service}&udpPort=${port}&clientIP=127.0.1.164`,
        headers: { 'user-agent': 'Nacos-Java-Client:v1.0.0' },
      }, (response) => {
        response.resume();
        response.on('end', () => (response.statusCode === 200 ? resolve() : reject(new Error(`list answered ${response.statusCode}`))));
      });
      request.on('error', reject);
      request.end();
    });
    const answeredAt = await ok(leader, 'POST', `/nacos/v1/ns/instance?serviceName=${service}&ip=127.0.9.3&port=80&ephemeral=false`);
    const push = await waitFor(() => pushes.find((p) => p.hosts.includes('127.0.9.3')), { timeoutMs: 2000, intervalMs: 2, what: 'the UDP push' });
    t.diagnostic(`write answered at the leader -> UDP push from the follower: ${Math.max(0, push.at - answeredAt)} ms`);
    await waitFor(async () => /cairn_push_acked_total \d*[1-9]/.test((await httpRequest(follower.addr, 'GET', '/metrics')).text), { timeoutMs: 3000, what: 'the ack counted in /metrics' });
    assert.equal(decoyPackets.length, 0, 'nothing went to the clientIP parameter');
    const metrics = (await httpRequest(follower.addr, 'GET', '/metrics')).text;
    assert.match(metrics, /cairn_subscribers\{transport="udp"\} 1/);
    assert.match(metrics, /cairn_push_change_to_push_seconds_count \d+/);
    // The peer transport's counts are exported when scraped: this follower received Raft messages, and refused no
    // peer for its protocol version (one version runs here).
    assert.match(metrics, /cairn_peer_transport_events_total\{event="message_received"\} [1-9]\d*/);
    assert.match(metrics, /cairn_peer_transport_events_total\{event="peer_protocol_refused"\} 0/);
  });

  await cluster.step(t, 'a Session on the real AP registry: its instance is pushed to a subscriber at another member and vanishes when the stream ends', async () => {
    const ephemeralService = 'eph-web';
    const watcher = subscribe(leader, { service: ephemeralService });
    const client = new grpc.Client(grpcAddrOf(follower), grpc.credentials.createInsecure());
    t.after(() => {
      watcher.call.cancel();
      watcher.client.close();
      client.close();
    });
    const method = methodDefinitionOf(Naming, 'Session');
    const call = client.makeBidiStreamRequest(method.path, method.requestSerialize, method.responseDeserialize) as grpc.ClientDuplexStream<Message, Message>;
    const answers: Message[] = [];
    let status: grpc.StatusObject | null = null;
    call.on('data', (message: Message) => answers.push(message));
    call.on('status', (s: grpc.StatusObject) => (status = s));
    call.on('error', () => undefined);
    await waitFor(() => answers.length >= 1, { timeoutMs: 5000, intervalMs: 5, what: 'started' });
    assert.ok(answers[0]!['started'] !== undefined);
    call.write({ register: { service: ephemeralService, instance: { ip: '127.0.9.20', port: 81, ephemeral: true } } });
    await waitFor(() => answers.length >= 2, { timeoutMs: 5000, intervalMs: 5, what: 'registered' });
    assert.ok(answers[1]!['registered'] !== undefined, `registered, got ${JSON.stringify(answers[1])}`);
    await waitFor(() => watcher.messages.some((message) => hostsOf(message).includes('127.0.9.20:81/w1')), { timeoutMs: 5000, intervalMs: 10, what: 'the session instance at the other member' });
    call.end();
    await waitFor(() => status, { timeoutMs: 5000, intervalMs: 5, what: 'the stream end' });
    assert.equal((status as grpc.StatusObject | null)?.code, grpc.status.OK);
    await waitFor(() => {
      const last = watcher.messages.at(-1);
      return last !== undefined && hostsOf(last).length === 0;
    }, { timeoutMs: 10_000, intervalMs: 10, what: 'the session instance gone at the other member' });
  });
});
