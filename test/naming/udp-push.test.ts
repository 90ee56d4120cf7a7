// Goal: show that Nacos v1 UDP pushes (src/naming/udp-push.ts, reference/NACOS.md §2) work as docs/nacos-compatibility.md
// says: the packet codec (`{"type":"dom","data":"<JSON string>","lastRefTime":N}`, gzip from 1024 bytes on, clients
// detect it by magic), ack parsing (lastRefTime as a number or a string; malformed acks ignored safely); a list with
// udpPort registers a target keyed by the SOURCE address of the HTTP request, never the clientIP parameter; a change
// is pushed, an ack stops the retry, a receiver that never acks gets exactly one retry and is then given up; packets
// above udpPacketBytesMax are skipped and counted; targets expire after their last list; the target table is bounded.
// Method: codec functions called directly; then the real HTTP API (buildApp) over the real NamingService and state
// machine with a direct proposer, listening on this file's own 127.0.1.156, with a real hub and UdpPusher bound on
// 127.0.1.156 (shortened ack timeout and expiry), and real UDP receiver sockets on 127.0.1.160-162. HTTP requests
// leave from a chosen local address (http.request localAddress) so the source address is known.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { request as httpRequest } from 'node:http';
import { gunzipSync, gzipSync } from 'node:zlib';
import { Registry } from 'prom-client';
import { buildApp } from '../../src/api/http/app.ts';
import { udpPushRenderer } from '../../src/api/http/push-shape.ts';
import { SubscriptionHub } from '../../src/naming/subscriptions.ts';
import { decodeAck, decodePushPacket, encodePushPacket, gzipThresholdBytes, normaliseSourceAddress, UdpPusher, type UdpPushLimits } from '../../src/naming/udp-push.ts';
import { createDirectNaming } from '../support/direct-proposer.ts';
import { waitFor } from '../support/cluster.ts';
import { FakeCluster } from '../api/http/harness.ts';

const serverHost = '127.0.1.156';

test('packets: small ones are plain JSON, from 1024 bytes on gzipped; data is the list as a JSON string', () => {
  const small = encodePushPacket('{"hosts":[]}', 42);
  assert.notEqual(small[0], 0x1f);
  assert.deepEqual(JSON.parse(small.toString('utf8')), { type: 'dom', data: '{"hosts":[]}', lastRefTime: 42 });
  assert.deepEqual(decodePushPacket(small), { type: 'dom', data: '{"hosts":[]}', lastRefTime: 42, gzipped: false });
  // Find the boundary: the plain packet of `data` is 1023 bytes -> plain; 1024 -> gzipped.
  const overhead = Buffer.byteLength(JSON.stringify({ type: 'dom', data: '', lastRefTime: 7 }));
  const below = encodePushPacket('x'.repeat(gzipThresholdBytes - 1 - overhead), 7);
  assert.equal(below.length, 1023);
  assert.equal(decodePushPacket(below).gzipped, false);
  const at = encodePushPacket('x'.repeat(gzipThresholdBytes - overhead), 7);
  assert.deepEqual([at[0], at[1]], [0x1f, 0x8b]);
  assert.equal(gunzipSync(at).length, 1024);
  assert.equal(decodePushPacket(at).data.length, gzipThresholdBytes - overhead);
});

test('acks: lastRefTime as a number or a string of digits, plain or gzipped; anything else is ignored', () => {
  assert.deepEqual(decodeAck(Buffer.from('{"type":"push-ack","lastRefTime":123456789,"data":""}')), { lastRefTime: 123456789 });
  assert.deepEqual(decodeAck(Buffer.from('{"type":"push-ack","lastRefTime":"987654321012","data":""}')), { lastRefTime: 987654321012 });
  assert.deepEqual(decodeAck(gzipSync(Buffer.from('{"type":"push-ack","lastRefTime":5}'))), { lastRefTime: 5 });
  const malformed = [
    '', 'not json', '[]', 'null', '42', '{"type":"dump-ack","lastRefTime":1}', '{"type":"push-ack"}',
    '{"type":"push-ack","lastRefTime":-1}', '{"type":"push-ack","lastRefTime":1.5}', '{"type":"push-ack","lastRefTime":"12a"}',
    '{"type":"push-ack","lastRefTime":"99999999999999999"}', '{"type":"push-ack","lastRefTime":1e300}', '{"type":"push-ack","lastRefTime":null}',
    '{"type":"push-ack","lastRefTime":{"a":1}}',
  ];
  for (const text of malformed) assert.equal(decodeAck(Buffer.from(text)), null, text);
  assert.equal(decodeAck(Buffer.from([0x1f, 0x8b, 0, 1, 2])), null, 'broken gzip');
  assert.equal(decodeAck(gzipSync(Buffer.alloc(200_000, 0x20)), 1024), null, 'a gzip bomb beyond the bound');
  assert.equal(normaliseSourceAddress('::ffff:127.0.1.5'), '127.0.1.5');
  assert.equal(normaliseSourceAddress('127.0.1.5'), '127.0.1.5');
});

/** Receiver is a UDP socket that records pushes and acks them unless told not to. */
class Receiver {
  readonly packets: Array<{ data: Record<string, unknown>; lastRefTime: number; gzipped: boolean; from: number; fromAddress: string }> = [];
  private constructor(readonly socket: Socket, readonly host: string, public acking: boolean, public ackAsString = false) {}

  static async open(host: string, port = 0, acking = true): Promise<Receiver> {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(port, host, () => resolve());
    });
    const receiver = new Receiver(socket, host, acking);
    socket.on('message', (message, remote) => {
      const packet = decodePushPacket(message);
      receiver.packets.push({ data: JSON.parse(packet.data) as Record<string, unknown>, lastRefTime: packet.lastRefTime, gzipped: packet.gzipped, from: remote.port, fromAddress: remote.address });
      if (receiver.acking) {
        const lastRefTime = receiver.ackAsString ? String(packet.lastRefTime) : packet.lastRefTime;
        socket.send(JSON.stringify({ type: 'push-ack', lastRefTime, data: '' }), remote.port, remote.address);
      }
    });
    return receiver;
  }

  get port(): number {
    return this.socket.address().port;
  }

  hosts(): string[] {
    const last = this.packets.at(-1);
    return ((last?.data['hosts'] ?? []) as Array<{ ip: string }>).map((host) => host.ip);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}

/** get sends a GET from `localAddress` and resolves with the status and body. */
function get(port: number, path: string, localAddress: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: serverHost, port, path, localAddress, headers: { 'user-agent': 'Nacos-Java-Client:v1.0.0' } }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function startMember(limits: Partial<UdpPushLimits>) {
  const { naming, stateMachine } = createDirectNaming();
  const hub = new SubscriptionHub({ source: naming, cp: stateMachine, limits: { pushMergeWindowMs: 5 } });
  const pusher = new UdpPusher({ hub, host: serverHost, render: udpPushRenderer, limits });
  await pusher.start();
  const app = buildApp({ naming, cluster: new FakeCluster(), metrics: new Registry(), logger: false, pushTargets: pusher });
  await app.listen({ host: serverHost, port: 0 });
  const address = app.server.address();
  assert.ok(address !== null && typeof address === 'object');
  const close = async (): Promise<void> => {
    await app.close();
    hub.close();
    await pusher.close();
  };
  const register = (ip: string) => naming.registerInstance({ identity: null }, { namespace: 'public', group: 'DEFAULT_GROUP', service: 'pay', ip, port: 80, ephemeral: false });
  return { naming, hub, pusher, port: address.port, close, register };
}

test('a list with udpPort subscribes its SOURCE address: pushes arrive there (not at clientIP), are acked, and carry the v1 list', async (t) => {
  const member = await startMember({ udpPushAckTimeoutMs: 300 });
  t.after(() => member.close());
  await member.register('10.1.0.1');
  const atSource = await Receiver.open('127.0.1.161');
  t.after(() => atSource.close());
  const atClientIp = await Receiver.open('127.0.1.162', atSource.port);
  t.after(() => atClientIp.close());
  atSource.ackAsString = true;
  const list = await get(member.port, `/nacos/v1/ns/instance/list?serviceName=pay&udpPort=${atSource.port}&clientIP=127.0.1.162`, '127.0.1.161');
  assert.equal(list.status, 200);
  assert.equal(member.pusher.stats().targets, 1);
  await member.register('10.1.0.2');
  await waitFor(() => atSource.packets.length === 1, { timeoutMs: 2000, intervalMs: 5, what: 'the push at the source address' });
  assert.deepEqual(atSource.hosts(), ['10.1.0.1', '10.1.0.2']);
  assert.equal(atSource.packets[0]?.data['dom'], 'DEFAULT_GROUP@@pay', 'a Java >= 1.0 client gets the grouped name');
  assert.equal(atSource.packets[0]?.from, member.pusher.port, 'pushes leave from the pusher socket');
  assert.equal(atSource.packets[0]?.fromAddress, serverHost, 'the pusher socket binds the member host, not 0.0.0.0');
  await waitFor(() => member.pusher.stats().acked === 1, { timeoutMs: 2000, intervalMs: 5, what: 'the string-lastRefTime ack' });
  await new Promise((resolve) => setTimeout(resolve, 500));
  assert.equal(member.pusher.stats().retried, 0, 'an acked push is not retried');
  assert.equal(atClientIp.packets.length, 0, 'nothing goes to the clientIP parameter');
  assert.equal(atSource.packets.length, 1);
});

test('a receiver that never acks gets exactly one retry, then the push is given up and counted', async (t) => {
  const member = await startMember({ udpPushAckTimeoutMs: 200 });
  t.after(() => member.close());
  const silent = await Receiver.open('127.0.1.160', 0, false);
  t.after(() => silent.close());
  await get(member.port, `/nacos/v1/ns/instance/list?serviceName=pay&udpPort=${silent.port}`, '127.0.1.160');
  await member.register('10.2.0.1');
  await waitFor(() => member.pusher.stats().failed === 1, { timeoutMs: 3000, intervalMs: 10, what: 'the push given up' });
  await new Promise((resolve) => setTimeout(resolve, 500));
  assert.equal(silent.packets.length, 2, 'the first send and exactly one retry');
  assert.equal(silent.packets[0]?.lastRefTime, silent.packets[1]?.lastRefTime, 'the retry is the same packet');
  assert.deepEqual({ ...member.pusher.stats() }, { ...member.pusher.stats(), sent: 1, retried: 1, failed: 1, acked: 0, pendingAcks: 0 });
});

test('targets expire after their last list; a too large packet is skipped and counted; the target table is bounded', async (t) => {
  const member = await startMember({ udpPushTargetExpiryMs: 300, udpPacketBytesMax: 600, udpPushTargetsMax: 2 });
  t.after(() => member.close());
  const receiver = await Receiver.open('127.0.1.160');
  t.after(() => receiver.close());
  await get(member.port, `/nacos/v1/ns/instance/list?serviceName=pay&udpPort=${receiver.port}`, '127.0.1.160');
  await get(member.port, `/nacos/v1/ns/instance/list?serviceName=pay&clusters=A&udpPort=${receiver.port}`, '127.0.1.160');
  const third = await get(member.port, `/nacos/v1/ns/instance/list?serviceName=pay&clusters=B&udpPort=${receiver.port}`, '127.0.1.160');
  assert.equal(third.status, 200, 'a refused target does not change the answer');
  assert.equal(member.pusher.stats().targets, 2);
  await member.register('10.3.0.1');
  await waitFor(() => receiver.packets.length === 1, { timeoutMs: 2000, intervalMs: 5, what: 'the push of the all-clusters target' });
  // Twenty instances make a list far above 600 bytes (gzip cannot bring it under): skipped, counted.
  for (let i = 2; i <= 20; i++) await member.register(`10.3.0.${i}`);
  await waitFor(() => member.pusher.stats().tooLarge >= 1, { timeoutMs: 2000, intervalMs: 5, what: 'a skipped packet' });
  await waitFor(() => member.pusher.stats().targets === 0, { timeoutMs: 3000, intervalMs: 20, what: 'the targets to expire' });
  assert.equal(member.hub.stats().subscribers, 0, 'expired targets leave the hub');
});
