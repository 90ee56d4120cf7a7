// Goal: show that GrpcPeerTransport keeps the PeerTransport contract over real gRPC: messages to one peer arrive
// complete and in send order (10k of them, measured), every member reaches every other, a peer that restarts on
// the same address is reconnected, a full queue towards a dead peer drops the newest messages and counts them,
// invalid or misaddressed input from a raw gRPC client is dropped and counted while the stream goes on, forwarded
// writes come back with the leader's answer or with the right code when the leader is dead (CAIRN_NO_LEADER,
// quickly) or silent (CAIRN_OUTCOME_UNKNOWN at the deadline), a frozen peer is noticed by keepalive and a peer that
// swallows connections by the stream's establish timeout within a few seconds, and close() leaves nothing running.
//
// Method: transports listen on this file's own loopback addresses 127.0.1.10-12 on ports the kernel picks (port 0);
// a dead peer is an address whose port was just bound and released. Nothing sleeps for a fixed time: every wait
// polls a condition with a bounded deadline (waitFor). Raw input is written with a plain grpc-js Client on the
// Peer/Stream method. The "no open handles" check runs a child process that must exit on its own after close().
// The last suite runs the same checks against the in-process twin, MemoryTransport, which driver tests rely on.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer as createHttp2Server, constants as http2Constants } from 'node:http2';
import { createServer, type Socket } from 'node:net';
import { describe, test } from 'node:test';
import { Client, Metadata, Server, ServerCredentials, credentials } from '@grpc/grpc-js';
import { pino } from 'pino';

import { limits } from '../../src/limits.ts';
import type { HeartbeatRequest, Message, NodeId } from '../../src/raft/types.ts';
import {
  GrpcPeerTransport,
  type GrpcTransportLimits,
  type PeerLogger,
} from '../../src/replica/grpc-transport.ts';
import { MemoryNetwork, type MemoryTransport } from '../../src/replica/memory-transport.ts';
import { encodeRaftBatch, encodeRaftMessage } from '../../src/replica/peer-codec.ts';
import { lookupMessage } from '../../src/replica/proto.ts';
import type { ForwardRequest, ForwardResponse, PeerHandlers } from '../../src/replica/transport.ts';

const A = '127.0.1.10';
const B = '127.0.1.11';
const C = '127.0.1.12';

// The transport's logger interface takes a pino logger as is (checked by the compiler).
const pinoFits: PeerLogger = pino({ enabled: false });
void pinoFits;

/** waitFor polls `condition` every 2 ms and fails the test after `timeoutMs`. */
async function waitFor(what: string, condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** freePort binds port 0 on `host`, notes the port and releases it: nothing listens there afterwards. */
async function freePort(host: string): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const address = server.address();
  assert.ok(address !== null && typeof address === 'object');
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return address.port;
}

/** Member is one started transport with what its handlers saw. */
interface Member {
  readonly id: NodeId;
  readonly transport: GrpcPeerTransport;
  readonly received: Message[];
  readonly unreachable: NodeId[];
  readonly logs: string[];
}

/** Cluster starts members on known hosts and resolves their peer addresses from the ports they bound. */
class Cluster {
  readonly ports = new Map<NodeId, number>();
  readonly members: Member[] = [];

  async start(id: NodeId, options: { port?: number; limits?: GrpcTransportLimits; onForward?: PeerHandlers['onForward']; onCheckpoints?: PeerHandlers['onCheckpoints'] } = {}): Promise<Member> {
    const logs: string[] = [];
    const log = (level: string) => (object: object, message: string): void => {
      logs.push(`${level} ${message} ${JSON.stringify(object)}`);
    };
    const transport = new GrpcPeerTransport({
      self: id,
      listenHost: id,
      listenPort: options.port ?? 0,
      peerAddressOf: (peer) => `${peer}:${this.ports.get(peer) ?? 1}`,
      limits: options.limits ?? limits,
      logger: { info: log('info'), warn: log('warn'), error: log('error') },
    });
    const member: Member = { id, transport, received: [], unreachable: [], logs };
    await transport.start({
      onMessage: (message) => member.received.push(message),
      onForward: options.onForward ?? (() => Promise.resolve({ ok: false, code: 'CAIRN_NOT_LEADER', message: 'not the leader', leaderHint: null })),
      onUnreachable: (peer) => member.unreachable.push(peer),
      ...(options.onCheckpoints === undefined ? {} : { onCheckpoints: options.onCheckpoints }),
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

function sequences(messages: readonly Message[], from: NodeId): number[] {
  return messages.filter((message) => message.from === from).map((message) => (message.type === 'HeartbeatRequest' ? message.commit : -1));
}

function range(from: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => from + i);
}

describe('GrpcPeerTransport', () => {
  test('Checkpoints: a peer\'s digests come back decoded; a peer that does not serve them yet, an older release without the method and a dead peer give null', async (t) => {
    const cluster = new Cluster();
    t.after(() => cluster.close());
    const answer = { memberId: B, interval: 100, digests: [{ applied: 200, records: 4, bytes: 400, sha256: 'ab'.repeat(32) }, { applied: 100, records: 2, bytes: 200, sha256: 'cd'.repeat(32) }] };
    let serving = false;
    const asked: NodeId[] = [];
    const a = await cluster.start(A);
    await cluster.start(B, { onCheckpoints: (from) => {
      asked.push(from);
      return serving ? answer : null;
    } });
    // An older release: a gRPC server on the peer port without the Checkpoints method (it answers UNIMPLEMENTED).
    const older = new Server();
    t.after(() => older.forceShutdown());
    cluster.ports.set(C, await new Promise<number>((resolve, reject) => older.bindAsync(`${C}:0`, ServerCredentials.createInsecure(), (error, port) => (error === null ? resolve(port) : reject(error)))));
    a.transport.setPeers([A, B, C]);
    assert.equal(await a.transport.checkpoints(B, 3000), null, 'a member not serving its checkpoints yet');
    serving = true;
    assert.deepEqual(await a.transport.checkpoints(B, 3000), answer);
    assert.deepEqual(asked, [A, A]);
    assert.equal(await a.transport.checkpoints(C, 3000), null, 'an older release');
    assert.equal(await a.transport.checkpoints('127.0.1.13', 500), null, 'a member the transport does not know');
  });

  test('one connection to the peer port has at most peerStreamsPerConnectionMax calls open; a further one waits for a free stream', async (t) => {
    const cluster = new Cluster();
    t.after(() => cluster.close());
    const a = await cluster.start(A, { limits: { ...limits, peerStreamsPerConnectionMax: 2 } });
    const client = new Client(`${A}:${a.transport.port}`, credentials.createInsecure());
    t.after(() => client.close());
    const identity = (bytes: Buffer): Buffer => bytes;
    // Stream calls stay open until ended; the member answers each one's headers at once (serveStream).
    const open = [0, 1, 2].map(() => {
      let headers = false;
      const call = client.makeClientStreamRequest<Buffer, Buffer>('/cairn.peer.v1.Peer/Stream', identity, identity, new Metadata(), () => undefined);
      call.on('metadata', () => {
        headers = true;
      });
      call.on('error', () => undefined);
      return { call, answered: () => headers };
    });
    await waitFor('the first two calls answered', () => open[0]!.answered() && open[1]!.answered());
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(open[2]!.answered(), false, 'the third call waits: the connection allows two streams');
    open[0]!.call.end();
    await waitFor('the third call answered once a stream was free', () => open[2]!.answered());
    for (const { call } of open.slice(1)) call.end();
  });

  test('delivers 10k messages between two members completely and in order', async (t) => {
    const cluster = new Cluster();
    t.after(() => cluster.close());
    const a = await cluster.start(A);
    const b = await cluster.start(B);
    a.transport.setPeers([A, B]);
    b.transport.setPeers([A, B]);
    // One message first, so the measurement starts on an established stream.
    a.transport.send({ type: 'TimeoutNow', from: A, to: B, term: 1 });
    await waitFor('the first message', () => b.received.length === 1);
    const total = 10_000;
    const data = new Uint8Array(100).fill(0x5a);
    // Two rounds: the first pays for V8's warm-up of the codec and gRPC paths, the second shows the steady rate.
    for (const round of ['cold', 'warm']) {
      b.received.length = 0;
      const started = performance.now();
      let sent = 0;
      // Send as fast as the queue allows (a driver is paced by the core's flow control the same way).
      while (sent < total) {
        while (sent < total && a.transport.queueDepth(B) < limits.peerSendQueueMessagesMax) {
          a.transport.send({
            type: 'AppendRequest', from: A, to: B, term: 1, prevLogIndex: sent, prevLogTerm: sent === 0 ? 0 : 1, commit: sent,
            entries: [{ kind: 'normal', index: sent + 1, term: 1, data }],
          });
          sent++;
        }
        await new Promise((resolve) => setImmediate(resolve));
      }
      await waitFor(`10k messages (${round})`, () => b.received.length === total, 20_000);
      const elapsedMs = performance.now() - started;
      const order = b.received.map((message) => (message.type === 'AppendRequest' ? message.prevLogIndex : -1));
      assert.deepEqual(order, range(0, total));
      t.diagnostic(`${round}: 10k AppendRequests (one 100-byte entry each) in ${elapsedMs.toFixed(0)} ms = ${Math.round(total / (elapsedMs / 1000))} msgs/s`);
    }
    assert.equal(a.transport.counters().send_dropped_queue_full, 0);
    assert.equal(b.transport.counters().receive_dropped_invalid, 0);
    t.diagnostic(`${a.transport.counters().batch_sent} batches for ${2 * total + 1} messages`);
  });

  test('three members reach each other all-to-all, in per-sender order', async (t) => {
    const cluster = new Cluster();
    t.after(() => cluster.close());
    const members = [await cluster.start(A), await cluster.start(B), await cluster.start(C)];
    for (const member of members) member.transport.setPeers([A, B, C]);
    const perPair = 300;
    for (let sequence = 0; sequence < perPair; sequence++) {
      for (const from of members) {
        for (const to of members) if (to !== from) from.transport.send(heartbeat(from.id, to.id, sequence));
      }
    }
    await waitFor('all-to-all delivery', () => members.every((member) => member.received.length === 2 * perPair));
    for (const to of members) {
      for (const from of members) {
        if (from !== to) assert.deepEqual(sequences(to.received, from.id), range(0, perPair), `${from.id} -> ${to.id}`);
      }
    }
  });

  test('a peer that restarts on the same address is reconnected and messages flow again', async (t) => {
    const cluster = new Cluster();
    t.after(() => cluster.close());
    const a = await cluster.start(A);
    const b = await cluster.start(B);
    a.transport.setPeers([B]);
    b.transport.setPeers([A]);
    a.transport.send(heartbeat(A, B, 0));
    await waitFor('first message', () => b.received.length === 1);

    await b.transport.close();
    await waitFor('the stream failure to be reported', () => a.unreachable.includes(B));
    const restarted = await cluster.start(B, { port: cluster.ports.get(B) ?? 0 });
    restarted.transport.setPeers([A]);
    // A heartbeat every 10 ms, as a leader would send, until one gets through.
    const reconnecting = performance.now();
    let sequence = 1;
    while (restarted.received.length === 0) {
      assert.ok(performance.now() - reconnecting < 5000, 'reconnected within 5 s');
      a.transport.send(heartbeat(A, B, sequence++));
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    t.diagnostic(`reconnected ${(performance.now() - reconnecting).toFixed(0)} ms after the restart`);
    const first = sequences(restarted.received, A)[0] ?? 0;
    for (let i = 0; i < 100; i++) a.transport.send(heartbeat(A, B, sequence++));
    restarted.transport.send(heartbeat(B, A, 1000));
    await waitFor('messages after the restart', () => sequences(restarted.received, A).at(-1) === sequence - 1);
    assert.deepEqual(sequences(restarted.received, A), range(first, sequence - first));
    await waitFor('the restarted peer reaching back', () => sequences(a.received, B).includes(1000));
  });

  test('with the peer down, a full queue drops the newest messages and counts them', async (t) => {
    const cluster = new Cluster();
    t.after(() => cluster.close());
    const deadPort = await freePort(C);
    cluster.ports.set(C, deadPort);
    const small: GrpcTransportLimits = { ...limits, peerSendQueueMessagesMax: 50 };
    const a = await cluster.start(A, { limits: small });
    a.transport.setPeers([C]);
    for (let sequence = 0; sequence < 80; sequence++) a.transport.send(heartbeat(A, C, sequence));
    assert.equal(a.transport.queueDepth(C), 50);
    assert.equal(a.transport.counters().send_dropped_queue_full, 30);
    assert.deepEqual(a.unreachable, [C], 'the overflow is reported once');
    await waitFor('a failed connection attempt', () => a.transport.counters().stream_failed >= 1);
    assert.equal(a.transport.queueDepth(C), 50, 'nothing is written into a stream that never opened');

    // The byte bound: room for three and a half messages.
    const append: Message = {
      type: 'AppendRequest', from: B, to: C, term: 1, prevLogIndex: 0, prevLogTerm: 0, commit: 0,
      entries: [{ kind: 'normal', index: 1, term: 1, data: new Uint8Array(300) }],
    };
    const tight: GrpcTransportLimits = { ...limits, peerSendQueueBytesMax: Math.floor(3.5 * encodeRaftMessage(append).length) };
    const b = await cluster.start(B, { limits: tight });
    b.transport.setPeers([C]);
    for (let i = 0; i < 5; i++) b.transport.send(append);
    assert.equal(b.transport.queueDepth(C), 3);
    assert.equal(b.transport.counters().send_dropped_queue_full, 2);

    // Once the peer comes up, what stayed queued is delivered, in order.
    const c = await cluster.start(C, { port: deadPort });
    await waitFor('the queued messages', () => c.received.length === 53);
    assert.deepEqual(sequences(c.received, A), range(0, 50));
  });

  test('invalid and misaddressed input from a raw client is dropped and counted; the stream goes on', async (t) => {
    const cluster = new Cluster();
    t.after(() => cluster.close());
    const b = await cluster.start(B);
    const RaftMessage = lookupMessage('cairn.peer.v1.RaftMessage');
    const client = new Client(`${B}:${b.transport.port}`, credentials.createInsecure());
    t.after(() => client.close());
    const open = (metadata: Metadata) =>
      client.makeClientStreamRequest<Uint8Array, Buffer>('/cairn.peer.v1.Peer/Stream', (bytes) => Buffer.from(bytes), (bytes) => bytes, metadata, {}, () => {});
    const raw = open(new Metadata());
    raw.write(new Uint8Array([0xff, 0xff, 0xff]));
    raw.write(encodeRaftBatch([encodeRaftMessage(heartbeat(A, C, 0))]));
    raw.write(encodeRaftBatch([RaftMessage.encode({ from: A, to: B, term: 1, type: 99 }).finish(), encodeRaftMessage(heartbeat(A, B, 1))]));
    raw.write(encodeRaftBatch([RaftMessage.encode({ from: A, to: B, term: { low: -1, high: -1, unsigned: true }, type: 11, timeoutNow: {} }).finish()]));
    raw.write(encodeRaftBatch([encodeRaftMessage(heartbeat(A, B, 2))]));
    await waitFor('the valid messages', () => b.received.length === 2);
    assert.deepEqual(sequences(b.received, A), [1, 2]);
    assert.equal(b.transport.counters().receive_dropped_invalid, 3);
    assert.equal(b.transport.counters().receive_dropped_misaddressed, 1);
    assert.ok(b.logs.some((line) => line.startsWith('warn dropped an invalid peer message')));

    // A stream that names its sender may only carry that sender's messages.
    const metadata = new Metadata();
    metadata.set('cairn-from', A);
    const named = open(metadata);
    named.write(encodeRaftBatch([encodeRaftMessage(heartbeat(C, B, 3)), encodeRaftMessage(heartbeat(A, B, 4))]));
    await waitFor('the named sender', () => b.received.length === 3);
    assert.deepEqual(sequences(b.received, A), [1, 2, 4]);
    assert.equal(b.transport.counters().receive_dropped_misaddressed, 2);
    raw.end();
    named.end();
  });

  test('forward carries a write to the leader and its answer back', async (t) => {
    const cluster = new Cluster();
    t.after(() => cluster.close());
    const seen: [NodeId, ForwardRequest][] = [];
    let answer: (request: ForwardRequest) => Promise<ForwardResponse> = (request) =>
      Promise.resolve({ ok: true, result: request.command.slice().reverse(), index: 42 });
    const a = await cluster.start(A);
    await cluster.start(B, {
      onForward: (from, request) => {
        seen.push([from, request]);
        return answer(request);
      },
    });
    a.transport.setPeers([B]);
    const ok = await a.transport.forward(B, { command: new Uint8Array([1, 2, 3]), deadlineMs: 2000 });
    assert.deepStrictEqual(ok, { ok: true, result: new Uint8Array([3, 2, 1]), index: 42 });
    assert.equal(seen[0]?.[0], A);
    assert.deepStrictEqual(seen[0]?.[1].command, new Uint8Array([1, 2, 3]));
    assert.ok((seen[0]?.[1].deadlineMs ?? 0) > 1000 && (seen[0]?.[1].deadlineMs ?? 0) <= 2000, 'the remaining deadline travels');

    const refusal = { ok: false, code: 'CAIRN_NOT_LEADER', message: 'b is not the leader', leaderHint: C } as const;
    answer = () => Promise.resolve(refusal);
    assert.deepStrictEqual(await a.transport.forward(B, { command: new Uint8Array([1]), deadlineMs: 2000 }), refusal);

    answer = () => Promise.reject(new Error('handler bug'));
    const failed = await a.transport.forward(B, { command: new Uint8Array([1]), deadlineMs: 2000 });
    assert.equal(failed.ok ? 'ok' : failed.code, 'CAIRN_INTERNAL');

    const expired = await a.transport.forward(B, { command: new Uint8Array([1]), deadlineMs: 0 });
    assert.equal(expired.ok ? 'ok' : expired.code, 'CAIRN_NO_LEADER', 'a spent deadline is never sent');
    assert.equal(seen.length, 3);
  });

  test('forward to a dead peer answers CAIRN_NO_LEADER quickly', async (t) => {
    const cluster = new Cluster();
    t.after(() => cluster.close());
    cluster.ports.set(C, await freePort(C));
    const a = await cluster.start(A);
    a.transport.setPeers([C]);
    for (let attempt = 0; attempt < 2; attempt++) {
      const started = performance.now();
      const response = await a.transport.forward(C, { command: new Uint8Array([1]), deadlineMs: 3000 });
      const elapsedMs = performance.now() - started;
      assert.equal(response.ok ? 'ok' : response.code, 'CAIRN_NO_LEADER');
      assert.ok(elapsedMs < 1000, `answered in ${elapsedMs.toFixed(0)} ms`);
    }
    const unknown = await a.transport.forward('127.0.1.99', { command: new Uint8Array([1]), deadlineMs: 3000 });
    assert.equal(unknown.ok ? 'ok' : unknown.code, 'CAIRN_NO_LEADER');
    assert.equal(a.transport.counters().forward_not_sent, 3);
  });

  test('forward refused by the peer before it read the call (HTTP/2 REFUSED_STREAM, a member stopping) is certainly not sent: CAIRN_NO_LEADER', async (t) => {
    // A stopping leader refuses new streams; RFC 9113 §8.7: a refused stream was not processed. Session 32's upgrade
    // audit saw such forwards answered CAIRN_OUTCOME_UNKNOWN (none of the nine was written), so the follower did not
    // try the next leader and the client had to read the state back for nothing.
    const cluster = new Cluster();
    t.after(() => cluster.close());
    const refusing = createHttp2Server();
    refusing.on('stream', (stream) => {
      stream.on('error', () => undefined);
      stream.close(http2Constants.NGHTTP2_REFUSED_STREAM);
    });
    const port = await new Promise<number>((resolve) => refusing.listen(0, C, () => resolve((refusing.address() as { port: number }).port)));
    t.after(() => new Promise<void>((resolve) => refusing.close(() => resolve())));
    cluster.ports.set(C, port);
    const a = await cluster.start(A);
    a.transport.setPeers([C]);
    const response = await a.transport.forward(C, { command: new Uint8Array([1]), deadlineMs: 3000 });
    assert.equal(response.ok ? 'ok' : response.code, 'CAIRN_NO_LEADER');
    assert.equal(a.transport.counters().forward_outcome_unknown, 0);
  });

  test('forward to a peer that never answers is CAIRN_OUTCOME_UNKNOWN at the deadline', async (t) => {
    const cluster = new Cluster();
    t.after(() => cluster.close());
    const a = await cluster.start(A);
    await cluster.start(B, { onForward: () => new Promise<never>(() => {}) });
    a.transport.setPeers([B]);
    const started = performance.now();
    const response = await a.transport.forward(B, { command: new Uint8Array([1]), deadlineMs: 300 });
    const elapsedMs = performance.now() - started;
    assert.equal(response.ok ? 'ok' : response.code, 'CAIRN_OUTCOME_UNKNOWN');
    assert.ok(elapsedMs >= 290 && elapsedMs < 2000, `answered after ${elapsedMs.toFixed(0)} ms`);
  });

  test('a frozen peer (SIGSTOP) is noticed by keepalive within a few seconds', async (t) => {
    const cluster = new Cluster();
    t.after(() => cluster.close());
    const module = new URL('../../src/replica/grpc-transport.ts', import.meta.url).href;
    const limitsModule = new URL('../../src/limits.ts', import.meta.url).href;
    const script = `
      const { GrpcPeerTransport } = await import(${JSON.stringify(module)});
      const { limits } = await import(${JSON.stringify(limitsModule)});
      const quiet = { info() {}, warn() {}, error() {} };
      const c = new GrpcPeerTransport({ self: '${C}', listenHost: '${C}', listenPort: 0, limits, logger: quiet, peerAddressOf: () => '${A}:1' });
      await c.start({ onMessage() {}, onForward: () => new Promise(() => {}), onUnreachable() {} });
      console.log('port ' + c.port);
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    t.after(() => child.kill('SIGKILL'));
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    await waitFor('the child to listen', () => /port \d+/.test(output), 10_000);
    cluster.ports.set(C, Number(/port (\d+)/.exec(output)?.[1]));
    const a = await cluster.start(A);
    a.transport.setPeers([C]);
    a.transport.send(heartbeat(A, C, 0));
    await waitFor('the stream to the child', () => a.transport.counters().stream_connected === 1);
    child.kill('SIGSTOP');
    const frozen = performance.now();
    await waitFor('the frozen peer to be reported', () => a.unreachable.includes(C), 8000);
    const noticedMs = performance.now() - frozen;
    t.diagnostic(`frozen peer noticed after ${noticedMs.toFixed(0)} ms`);
    assert.ok(noticedMs < 5000, `noticed after ${noticedMs.toFixed(0)} ms`);
  });

  test('a peer that accepts connections but never answers is reported, and forwards to it are not sent', async (t) => {
    const cluster = new Cluster();
    t.after(() => cluster.close());
    // A TCP listener that never speaks HTTP/2: the gRPC connection never becomes ready.
    const sockets = new Set<Socket>();
    const silent = createServer((socket) => sockets.add(socket));
    await new Promise<void>((resolve) => silent.listen(0, C, resolve));
    t.after(() => {
      for (const socket of sockets) socket.destroy();
      silent.close();
    });
    const address = silent.address();
    assert.ok(address !== null && typeof address === 'object');
    cluster.ports.set(C, address.port);
    const a = await cluster.start(A);
    a.transport.setPeers([C]);
    const started = performance.now();
    a.transport.send(heartbeat(A, C, 0));
    const forwarded = await a.transport.forward(C, { command: new Uint8Array([1]), deadlineMs: 300 });
    assert.equal(forwarded.ok ? 'ok' : forwarded.code, 'CAIRN_NO_LEADER', 'never ready, so never sent');
    await waitFor('the silent peer to be reported', () => a.unreachable.includes(C), 5000);
    const reportedMs = performance.now() - started;
    assert.ok(reportedMs < 4000, `reported after ${reportedMs.toFixed(0)} ms`);
    assert.equal(a.transport.queueDepth(C), 1, 'the message waits for a working stream');
  });

  test('close() leaves no open handles: a process that closes its transports exits by itself', async () => {
    const module = new URL('../../src/replica/grpc-transport.ts', import.meta.url).href;
    const limitsModule = new URL('../../src/limits.ts', import.meta.url).href;
    // Two members exchange messages; a forward is left hanging on a silent handler, so close() must cut it.
    const script = `
      const { GrpcPeerTransport } = await import(${JSON.stringify(module)});
      const { limits } = await import(${JSON.stringify(limitsModule)});
      const ports = new Map();
      const quiet = { info() {}, warn() {}, error() {} };
      const make = (id) => new GrpcPeerTransport({ self: id, listenHost: id, listenPort: 0, limits, logger: quiet,
        peerAddressOf: (peer) => peer + ':' + ports.get(peer), tuning: { closeGraceMs: 200 } });
      const a = make('${A}'), b = make('${B}');
      let received = 0;
      const handlers = { onMessage: () => { received++; }, onForward: () => new Promise(() => {}), onUnreachable() {} };
      await a.start(handlers); await b.start(handlers);
      ports.set('${A}', a.port); ports.set('${B}', b.port);
      a.setPeers(['${B}']); b.setPeers(['${A}']);
      a.send({ type: 'TimeoutNow', from: '${A}', to: '${B}', term: 1 });
      b.send({ type: 'TimeoutNow', from: '${B}', to: '${A}', term: 1 });
      while (received < 2) await new Promise((resolve) => setTimeout(resolve, 2));
      const pending = a.forward('${B}', { command: new Uint8Array([1]), deadlineMs: 60000 });
      while (b.counters().forward_served < 1) await new Promise((resolve) => setTimeout(resolve, 2));
      await b.close();
      const response = await pending;
      await a.close();
      console.log('closed ' + response.code);
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const code = await new Promise<number | null>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`the process did not exit within 15 s after close():\n${output}`));
      }, 15_000);
      child.on('exit', (exitCode) => {
        clearTimeout(timer);
        resolve(exitCode);
      });
    });
    assert.equal(code, 0, output);
    assert.match(output, /closed CAIRN_OUTCOME_UNKNOWN/);
  });
});

// The in-process twin (src/replica/memory-transport.ts) that driver tests use keeps the same contract; these
// checks mirror the ones above on a MemoryNetwork, plus its link cuts.
describe('MemoryTransport (the in-process twin)', () => {
  async function memoryCluster(ids: readonly NodeId[], options: { limits?: GrpcTransportLimits; onForward?: PeerHandlers['onForward'] } = {}) {
    const network = new MemoryNetwork(options.limits ?? limits);
    const members = new Map<NodeId, { transport: MemoryTransport; received: Message[]; unreachable: NodeId[] }>();
    for (const id of ids) {
      const member = { transport: network.transport(id), received: [] as Message[], unreachable: [] as NodeId[] };
      await member.transport.start({
        onMessage: (message) => member.received.push(message),
        onForward: options.onForward ?? (() => Promise.resolve({ ok: true, result: new Uint8Array([7]), index: 1 })),
        onUnreachable: (peer) => member.unreachable.push(peer),
      });
      member.transport.setPeers(ids);
      members.set(id, member);
    }
    const get = (id: NodeId) => {
      const member = members.get(id);
      assert.ok(member !== undefined);
      return member;
    };
    return { network, get, close: () => Promise.all([...members.values()].map((member) => member.transport.close())) };
  }

  test('delivers in per-sender order, all-to-all, through the codec', async (t) => {
    const cluster = await memoryCluster([A, B, C]);
    t.after(() => cluster.close());
    for (let sequence = 0; sequence < 500; sequence++) {
      for (const from of [A, B, C]) for (const to of [A, B, C]) if (to !== from) cluster.get(from).transport.send(heartbeat(from, to, sequence));
      if (sequence % 100 === 99) await new Promise((resolve) => setImmediate(resolve));
    }
    await waitFor('all-to-all delivery', () => [A, B, C].every((id) => cluster.get(id).received.length === 1000));
    for (const to of [A, B, C]) {
      for (const from of [A, B, C]) if (from !== to) assert.deepEqual(sequences(cluster.get(to).received, from), range(0, 500));
    }
    assert.deepStrictEqual(cluster.get(B).received[0], heartbeat(A, B, 0));
  });

  test('a cut direction drops and reports unreachable; heal restores it', async (t) => {
    const cluster = await memoryCluster([A, B]);
    t.after(() => cluster.close());
    cluster.network.cut(A, B);
    cluster.get(A).transport.send(heartbeat(A, B, 0));
    cluster.get(B).transport.send(heartbeat(B, A, 0));
    await waitFor('the other direction', () => cluster.get(A).received.length === 1);
    await waitFor('the unreachable report', () => cluster.get(A).unreachable.length === 1);
    assert.equal(cluster.get(B).received.length, 0);
    assert.equal(cluster.get(A).transport.counters().stream_failed, 1);
    cluster.network.heal(A, B);
    cluster.get(A).transport.send(heartbeat(A, B, 1));
    await waitFor('delivery after heal', () => cluster.get(B).received.length === 1);
    assert.deepEqual(sequences(cluster.get(B).received, A), [1]);
  });

  test('a full queue drops the newest messages and counts them', async (t) => {
    const cluster = await memoryCluster([A, B], { limits: { ...limits, peerSendQueueMessagesMax: 10 } });
    t.after(() => cluster.close());
    for (let sequence = 0; sequence < 15; sequence++) cluster.get(A).transport.send(heartbeat(A, B, sequence));
    assert.equal(cluster.get(A).transport.queueDepth(B), 10);
    assert.equal(cluster.get(A).transport.counters().send_dropped_queue_full, 5);
    await waitFor('the queued messages', () => cluster.get(B).received.length === 10);
    assert.deepEqual(sequences(cluster.get(B).received, A), range(0, 10));
  });

  test('invalid and misaddressed batches are dropped and counted', async (t) => {
    const cluster = await memoryCluster([A, B]);
    t.after(() => cluster.close());
    const b = cluster.get(B);
    b.transport.receive(new Uint8Array([0xff, 0xff, 0xff]));
    b.transport.receive(encodeRaftBatch([encodeRaftMessage(heartbeat(A, C, 0)), encodeRaftMessage(heartbeat(A, B, 1))]));
    assert.deepEqual(sequences(b.received, A), [1]);
    assert.equal(b.transport.counters().receive_dropped_invalid, 1);
    assert.equal(b.transport.counters().receive_dropped_misaddressed, 1);
  });

  test('forward: round trip, refused before sending, silent leader, lost answer', async (t) => {
    let silent = false;
    const cluster = await memoryCluster([A, B], {
      onForward: (from, request) => (silent ? new Promise<never>(() => {}) : Promise.resolve({ ok: true, result: request.command, index: from.length })),
    });
    t.after(() => cluster.close());
    const a = cluster.get(A).transport;
    assert.deepStrictEqual(await a.forward(B, { command: new Uint8Array([4, 5]), deadlineMs: 1000 }), { ok: true, result: new Uint8Array([4, 5]), index: A.length });
    cluster.network.cut(A, B);
    const refused = await a.forward(B, { command: new Uint8Array([1]), deadlineMs: 1000 });
    assert.equal(refused.ok ? 'ok' : refused.code, 'CAIRN_NO_LEADER');
    cluster.network.heal(A, B);
    cluster.network.cut(B, A);
    const lost = await a.forward(B, { command: new Uint8Array([1]), deadlineMs: 1000 });
    assert.equal(lost.ok ? 'ok' : lost.code, 'CAIRN_OUTCOME_UNKNOWN');
    cluster.network.heal(B, A);
    silent = true;
    const started = performance.now();
    const timedOut = await a.forward(B, { command: new Uint8Array([1]), deadlineMs: 50 });
    assert.equal(timedOut.ok ? 'ok' : timedOut.code, 'CAIRN_OUTCOME_UNKNOWN');
    assert.ok(performance.now() - started >= 45);
    await cluster.get(B).transport.close();
    const closed = await a.forward(B, { command: new Uint8Array([1]), deadlineMs: 1000 });
    assert.equal(closed.ok ? 'ok' : closed.code, 'CAIRN_NO_LEADER');
  });
});
