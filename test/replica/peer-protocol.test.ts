// Goal: members of two peer protocol versions never exchange a message (src/replica/peer-protocol.ts): Raft
// messages, forwarded writes, Hello and Distro calls from a member of another version are refused before anything
// they carry is read, counted and logged on both sides (a refused Distro call is "not sent", as across a cut); a forwarded write refused that way is "not written"
// (CAIRN_NO_LEADER, retryable), never "outcome unknown"; members of the same version, and callers that send no
// version (members built before the check, which spoke version 1), are served as before.
// Method: real GrpcPeerTransports on this file's loopback addresses 127.0.1.27-29, one of them built with another
// protocolVersion (the option exists for this test); raw grpc-js calls for the metadata no member sends (absent,
// malformed, repeated). Every wait polls with a bounded deadline; "nothing arrived" is checked after a message sent
// later on a served path has arrived, so it cannot pass by being early.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Client, Metadata, credentials, status as grpcStatus, type ServiceError } from '@grpc/grpc-js';

import { GrpcDistroTransport, distroService, distroServiceDefinition } from '../../src/ap/grpc-distro.ts';
import { DistroCallError } from '../../src/ap/transport.ts';
import { limits } from '../../src/limits.ts';
import type { HeartbeatRequest, Message, NodeId } from '../../src/raft/types.ts';
import { BACKUP_PATH, GrpcPeerTransport, type PeerServiceRegistration } from '../../src/replica/grpc-transport.ts';
import { encodeBackupRequest, encodeRaftBatch, encodeRaftMessage } from '../../src/replica/peer-codec.ts';
import { PEER_PROTOCOL_METADATA_KEY, distroProtocolVersion, isPeerProtocolRefusal, peerProtocolVersion } from '../../src/replica/peer-protocol.ts';
import type { ForwardRequest } from '../../src/replica/transport.ts';

const A = '127.0.1.27';
const B = '127.0.1.28';
const C = '127.0.1.29';

async function waitFor(what: string, condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

interface Member {
  readonly id: NodeId;
  readonly transport: GrpcPeerTransport;
  readonly received: Message[];
  readonly forwards: ForwardRequest[];
  readonly logs: string[];
}

class Cluster {
  readonly ports = new Map<NodeId, number>();
  readonly members: Member[] = [];

  /** start starts a member speaking `versions` (default: this build's) of the Peer and Distro protocols. */
  async start(id: NodeId, versions: { readonly peer?: number; readonly distro?: number } = {}): Promise<Member> {
    const logs: string[] = [];
    const log = (level: string) => (object: object, message: string): void => {
      logs.push(`${level} ${message} ${JSON.stringify(object)}`);
    };
    const transport = new GrpcPeerTransport({
      self: id,
      listenHost: id,
      listenPort: 0,
      peerAddressOf: (peer) => `${peer}:${this.ports.get(peer) ?? 1}`,
      limits,
      logger: { info: log('info'), warn: log('warn'), error: log('error') },
      tuning: { reconnectBackoffMsMin: 20, reconnectBackoffMsMax: 200 },
      // The Distro service as a member serves it (handlers null: "not running"), to show extra services are guarded.
      services: [{
        definition: distroServiceDefinition as unknown as PeerServiceRegistration['definition'],
        implementation: distroService(() => null, limits, { warn: log('warn') }),
        protocol: { service: 'distro', version: versions.distro ?? distroProtocolVersion },
      }],
      ...(versions.peer === undefined ? {} : { protocolVersion: versions.peer }),
    });
    const member: Member = { id, transport, received: [], forwards: [], logs };
    await transport.start({
      onMessage: (message) => member.received.push(message),
      onForward: (_from, request) => {
        member.forwards.push(request);
        return Promise.resolve({ ok: true, result: new Uint8Array([1]), index: 1 });
      },
      onHello: (from) => Promise.resolve({ memberId: id, initialised: true, heardFromYou: from === 'nobody', clusterId: 'c1' }),
      onUnreachable: () => undefined,
    });
    this.ports.set(id, transport.port);
    this.members.push(member);
    return member;
  }

  async close(): Promise<void> {
    await Promise.all(this.members.map((member) => member.transport.close()));
  }
}

function heartbeat(from: NodeId, to: NodeId, sequence: number): HeartbeatRequest {
  return { type: 'HeartbeatRequest', from, to, term: 1, commit: sequence, readRound: sequence };
}

/** rawCall makes one unary call on the peer port with exactly the metadata given. */
function rawCall(client: Client, path: string, metadata: Metadata): Promise<ServiceError | null> {
  return new Promise((resolve) => {
    client.makeUnaryRequest<Uint8Array, Buffer>(path, (bytes) => Buffer.from(bytes), (bytes) => bytes, new Uint8Array(0), metadata, { deadline: Date.now() + 5000 }, (error) => resolve(error));
  });
}

function withVersion(...values: string[]): Metadata {
  const metadata = new Metadata();
  metadata.set('cairn-from', A);
  for (const value of values) metadata.add(PEER_PROTOCOL_METADATA_KEY, value);
  return metadata;
}

describe('peer protocol versions', () => {
  test('members of two versions refuse each other\'s Raft messages, forwards and Hello; the same version is served', async (t) => {
    const cluster = new Cluster();
    t.after(() => cluster.close());
    const a = await cluster.start(A);
    const next = { peer: peerProtocolVersion + 1, distro: distroProtocolVersion + 1 };
    const b = await cluster.start(B, next);
    const c = await cluster.start(C, next);
    for (const member of [a, b, c]) member.transport.setPeers([A, B, C].filter((id) => id !== member.id));

    // B and C share a version: their messages flow both ways (the positive control of the refusals below).
    b.transport.send(heartbeat(B, C, 1));
    c.transport.send(heartbeat(C, B, 1));
    await waitFor('B and C to hear each other', () => c.received.length === 1 && b.received.length === 1);

    // A and B do not: each one's stream to the other is refused, counted by the refuser, logged by both.
    for (let i = 0; i < 5; i++) {
      a.transport.send(heartbeat(A, B, i));
      b.transport.send(heartbeat(B, A, i));
    }
    await waitFor('both refusals to be counted', () => a.transport.counters().peer_protocol_refused > 0 && b.transport.counters().peer_protocol_refused > 0);
    await waitFor('both senders to log the refusal', () => [a, b].every((m) => m.logs.some((line) => line.startsWith('error the peer runs another peer protocol version'))));
    assert.ok(a.logs.some((line) => line.startsWith('error refused a peer of another peer protocol version') && line.includes(`"callerVersion":${peerProtocolVersion + 1}`)), a.logs.join('\n'));
    // Messages sent after the refusals to the same-version peer arrive; none from the other version ever did.
    b.transport.send(heartbeat(B, C, 2));
    await waitFor('B -> C after the refusals', () => c.received.length === 2);
    assert.deepEqual(a.received, []);
    assert.equal(b.received.filter((message) => message.from === A).length, 0);
    assert.equal(b.received.length, 1);

    // A write forwarded across versions is certainly not written: NO_LEADER, and the leader's handler never ran.
    const forwarded = await b.transport.forward(A, { command: new Uint8Array([1, 2, 3]), deadlineMs: 3000 });
    assert.equal(forwarded.ok, false);
    assert.equal(forwarded.ok === false ? forwarded.code : null, 'CAIRN_NO_LEADER');
    assert.match(forwarded.ok === false ? forwarded.message : '', /another peer protocol version/);
    assert.deepEqual(a.forwards, []);
    // The same forward within a version reaches the handler.
    const served = await b.transport.forward(C, { command: new Uint8Array([1, 2, 3]), deadlineMs: 3000 });
    assert.equal(served.ok, true);
    assert.equal(c.forwards.length, 1);

    // Hello across versions gets no answer; within a version it does.
    assert.equal(await b.transport.hello(A, 2000), null);
    assert.equal((await b.transport.hello(C, 2000))?.memberId, C);

    // Distro's client (this build's version) calling a member of another version: refused, and "not sent", so the
    // AP path treats that member as cut off (as in a partition), never as "asked and silent".
    const distro = new GrpcDistroTransport({ self: A, listenHost: A, peerAddressOf: (peer) => `${peer}:${cluster.ports.get(peer) ?? 1}`, limits });
    t.after(() => distro.close());
    const failure = await distro.heartbeat(B).then(() => null, (error: unknown) => error);
    assert.ok(failure instanceof DistroCallError, String(failure));
    assert.equal(failure.notSent, true);
    assert.match(failure.message, /peer protocol mismatch/);
  });

  test('calls with no version are version 1; each service serves its own version only; malformed or repeated versions are refused; every peer service is guarded', async (t) => {
    const cluster = new Cluster();
    t.after(() => cluster.close());
    const a = await cluster.start(A);
    assert.equal(peerProtocolVersion, 1, 'this test names version 1 as the one before the check');
    assert.equal(distroProtocolVersion, 2, 'this test names Distro version 2 as this build\'s');
    const client = new Client(`${A}:${a.transport.port}`, credentials.createInsecure());
    t.after(() => client.close());
    const hello = '/cairn.peer.v1.Peer/Hello';
    const distro = '/cairn.peer.v1.Distro/Heartbeat';

    // Served: the Peer service with no version (a member built before the check) and its own, 1; the Distro service
    // with its own, 2.
    for (const metadata of [new Metadata(), withVersion('1')]) {
      // Hello with an empty request is refused by Hello itself (UNAVAILABLE), which shows the guard let it through.
      const answer = await rawCall(client, hello, metadata);
      assert.equal(answer?.code, grpcStatus.UNAVAILABLE, answer?.details);
    }
    const distroAnswer = await rawCall(client, distro, withVersion('2'));
    assert.equal(distroAnswer?.code, grpcStatus.UNAVAILABLE);
    assert.match(distroAnswer?.details ?? '', /distro is not running/);
    assert.equal(a.transport.counters().peer_protocol_refused, 0);

    // Refused: another version, a malformed one, two values; for Distro also no version and version 1 (a member
    // before the lineage of entries would merge them differently).
    const refusedBefore = a.transport.counters().peer_protocol_refused;
    const malformed = [withVersion('one'), withVersion('01'), withVersion('9999999')];
    const refusals: Array<[string, Metadata, string]> = [
      ...[withVersion('2'), withVersion('1', '1'), ...malformed].map((metadata): [string, Metadata, string] => [hello, metadata, 'peer protocol 1']),
      ...[new Metadata(), withVersion('1'), withVersion('3'), withVersion('2', '2'), ...malformed].map((metadata): [string, Metadata, string] => [distro, metadata, 'distro protocol 2']),
    ];
    for (const [path, metadata, speaks] of refusals) {
      const answer = await rawCall(client, path, metadata);
      assert.ok(isPeerProtocolRefusal(answer), `${path} with ${JSON.stringify(metadata.get(PEER_PROTOCOL_METADATA_KEY))}: ${answer?.code} ${answer?.details}`);
      assert.match(answer?.details ?? '', new RegExp(`${A} speaks ${speaks}`));
    }
    assert.equal(a.transport.counters().peer_protocol_refused - refusedBefore, 12);

    // The server-streaming Backup method is guarded too (refused through the stream's status, not a callback).
    const backup = (metadata: Metadata): Promise<ServiceError | null> => new Promise((resolve) => {
      const call = client.makeServerStreamRequest<Uint8Array, Buffer>(BACKUP_PATH, (bytes) => Buffer.from(bytes), (bytes) => bytes, encodeBackupRequest('test'), metadata, { deadline: Date.now() + 5000 });
      call.on('data', () => undefined);
      call.on('error', (error: ServiceError) => resolve(error));
      call.on('end', () => resolve(null));
    });
    const refusedBackup = await backup(withVersion('2'));
    assert.ok(isPeerProtocolRefusal(refusedBackup), `${refusedBackup?.code} ${refusedBackup?.details}`);
    // Served (this test's member has no backup handler, so it says it does not serve backups yet).
    const servedBackup = await backup(withVersion('1'));
    assert.equal(servedBackup?.code, grpcStatus.UNAVAILABLE);
    assert.match(servedBackup?.details ?? '', /does not serve backups yet/);
    assert.equal(a.transport.counters().peer_protocol_refused - refusedBefore, 13);

    // A refused stream delivers nothing, even a valid batch written on it; an unversioned one delivers.
    const open = (metadata: Metadata) =>
      client.makeClientStreamRequest<Uint8Array, Buffer>('/cairn.peer.v1.Peer/Stream', (bytes) => Buffer.from(bytes), (bytes) => bytes, metadata, {}, () => undefined);
    const refused = open(withVersion('2'));
    refused.on('error', () => undefined);
    refused.write(encodeRaftBatch([encodeRaftMessage(heartbeat(B, A, 7))]));
    const accepted = open(new Metadata());
    accepted.write(encodeRaftBatch([encodeRaftMessage(heartbeat(B, A, 8))]));
    await waitFor('the unversioned stream\'s message', () => a.received.length === 1);
    await waitFor('the refused stream to be counted', () => a.transport.counters().peer_protocol_refused - refusedBefore === 14);
    accepted.end();
    assert.deepEqual(a.received.map((message) => (message.type === 'HeartbeatRequest' ? message.commit : -1)), [8]);
  });
});
