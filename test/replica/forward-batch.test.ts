// Goal: show that forwarded writes travel in ForwardBatch calls over real gRPC and keep the Forward contract: the
// writes a follower takes in one turn of its event loop reach the leader in one call, each is handled on its own and
// gets its own answer; a lone write still goes in a Forward call; a leader of the release before ForwardBatch (which
// answers UNIMPLEMENTED) gets the same writes in Forward calls, each written once; a write whose deadline comes before
// the batch's is answered CAIRN_OUTCOME_UNKNOWN at its deadline; invalid input from a raw client is refused in place
// (one bad request) or as a whole (damaged framing, unnamed sender) and never reaches the handler.
//
// Method: two GrpcPeerTransports on this file's own loopback addresses 127.0.1.95 (the follower) and 127.0.1.96 (the
// leader), ports picked by the kernel. The leader's onForward is the handler under the transport (the Replica's seam);
// it records what arrives and answers with the command reversed. Raw input is written with a plain grpc-js Client.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Client, Metadata, credentials, status as grpcStatus, type ServiceError } from '@grpc/grpc-js';

import { limits } from '../../src/limits.ts';
import type { NodeId } from '../../src/raft/types.ts';
import { GrpcPeerTransport } from '../../src/replica/grpc-transport.ts';
import { decodeForwardBatchResponse, encodeForwardBatchRequest, encodeForwardRequest } from '../../src/replica/peer-codec.ts';
import { peerProtocolVersion, PEER_PROTOCOL_METADATA_KEY } from '../../src/replica/peer-protocol.ts';
import type { ForwardRequest, ForwardResponse, PeerHandlers } from '../../src/replica/transport.ts';

const FOLLOWER = '127.0.1.95';
const LEADER = '127.0.1.96';

/** Pair is a follower and a leader transport, started, with what the leader's handler saw. */
interface Pair {
  readonly follower: GrpcPeerTransport;
  readonly leader: GrpcPeerTransport;
  readonly seen: ForwardRequest[];
  readonly leaderPort: number;
}

async function startPair(t: { after(fn: () => Promise<void>): void }, options: { serveForwardBatch?: boolean; onForward?: PeerHandlers['onForward'] } = {}): Promise<Pair> {
  const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
  const ports = new Map<NodeId, number>();
  const make = (self: NodeId, serveForwardBatch: boolean): GrpcPeerTransport => new GrpcPeerTransport({
    self, listenHost: self, listenPort: 0, peerAddressOf: (peer) => `${peer}:${ports.get(peer) ?? 1}`, limits, logger: quiet, serveForwardBatch,
  });
  const follower = make(FOLLOWER, true);
  const leader = make(LEADER, options.serveForwardBatch ?? true);
  t.after(async () => {
    await follower.close();
    await leader.close();
  });
  const seen: ForwardRequest[] = [];
  const reversed = (request: ForwardRequest): Promise<ForwardResponse> => Promise.resolve({ ok: true, result: request.command.slice().reverse(), index: request.command[0] ?? 0 });
  const onForward = options.onForward ?? ((_from, request) => reversed(request));
  const handlers = (record: boolean): PeerHandlers => ({
    onMessage: () => undefined,
    onUnreachable: () => undefined,
    onForward: (from, request) => {
      if (record) seen.push(request);
      return onForward(from, request);
    },
  });
  await follower.start(handlers(false));
  await leader.start(handlers(true));
  ports.set(FOLLOWER, follower.port);
  ports.set(LEADER, leader.port);
  follower.setPeers([LEADER]);
  return { follower, leader, seen, leaderPort: leader.port };
}

function command(i: number): Uint8Array {
  return new Uint8Array([i, 100 + (i % 100), 7]);
}

describe('ForwardBatch', () => {
  test('the writes of one turn reach the leader in one call and each gets its own answer; a lone write goes in a Forward call', async (t) => {
    const pair = await startPair(t);
    // Warm the channel with one write, so the burst below is not held by the first connection.
    const first = await pair.follower.forward(LEADER, { command: command(200), deadlineMs: 2000 });
    assert.ok(first.ok);
    assert.equal(pair.follower.counters().forward_batch_sent, 0, 'a lone write is no batch');
    assert.equal(pair.leader.counters().forward_served, 1);

    const burst = Array.from({ length: 64 }, (_, i) => pair.follower.forward(LEADER, { command: command(i), deadlineMs: 2000 }));
    const answers = await Promise.all(burst);
    answers.forEach((answer, i) => {
      assert.ok(answer.ok, `write ${i}: ${JSON.stringify(answer)}`);
      assert.deepStrictEqual(answer.result, command(i).slice().reverse(), `write ${i} got its own result`);
      assert.equal(answer.index, i);
    });
    const sent = pair.follower.counters();
    const served = pair.leader.counters();
    assert.equal(sent.forward_batch_sent, 1, 'one call for the burst');
    assert.equal(served.forward_batch_served, 1);
    assert.equal(sent.forward_sent, 65);
    assert.equal(served.forward_served, 65, 'each write handled on its own');
    assert.deepStrictEqual(pair.seen.slice(1).map((request) => request.command[0]), Array.from({ length: 64 }, (_, i) => i), 'in the order they were taken');
    for (const request of pair.seen.slice(1)) assert.ok(request.deadlineMs > 1000 && request.deadlineMs <= 2000, `the remaining deadline travels (${request.deadlineMs})`);
  });

  test('a burst larger than forwardBatchRequestsMax is cut into full batches; refusals come back per write', async (t) => {
    const pair = await startPair(t, {
      onForward: (_from, request) => Promise.resolve((request.command[0] ?? 0) % 2 === 0
        ? { ok: true, result: request.command, index: 1 }
        : { ok: false, code: 'CAIRN_NOT_LEADER', message: 'odd writes are refused', leaderHint: '127.0.1.97' }),
    });
    await pair.follower.forward(LEADER, { command: command(1), deadlineMs: 2000 });
    const count = limits.forwardBatchRequestsMax + 10;
    const answers = await Promise.all(Array.from({ length: count }, (_, i) => pair.follower.forward(LEADER, { command: command(i % 250), deadlineMs: 2000 })));
    answers.forEach((answer, i) => {
      if ((i % 250) % 2 === 0) assert.ok(answer.ok, `write ${i}`);
      else assert.deepStrictEqual(answer, { ok: false, code: 'CAIRN_NOT_LEADER', message: 'odd writes are refused', leaderHint: '127.0.1.97' });
    });
    assert.equal(pair.follower.counters().forward_batch_sent, 2, `${count} writes: one full batch and one of 10`);
    assert.equal(pair.leader.counters().forward_served, count + 1);
  });

  test('a leader without ForwardBatch (an older release) gets the same writes in Forward calls, each once', async (t) => {
    const pair = await startPair(t, { serveForwardBatch: false });
    await pair.follower.forward(LEADER, { command: command(200), deadlineMs: 2000 });
    for (let round = 0; round < 2; round++) {
      const answers = await Promise.all(Array.from({ length: 16 }, (_, i) => pair.follower.forward(LEADER, { command: command(i), deadlineMs: 2000 })));
      answers.forEach((answer, i) => assert.deepStrictEqual(answer, { ok: true, result: command(i).slice().reverse(), index: i }));
    }
    const sent = pair.follower.counters();
    assert.equal(sent.forward_batch_sent, 1, 'the second burst is not offered as a batch again');
    assert.equal(sent.forward_batch_unsupported, 1);
    assert.equal(pair.leader.counters().forward_batch_served, 0);
    assert.equal(pair.seen.length, 33, 'every write handled exactly once');
  });

  test('a write whose deadline comes before its batch\'s is answered CAIRN_OUTCOME_UNKNOWN at it; the others get their answers', async (t) => {
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const pair = await startPair(t, {
      onForward: async (_from, request) => {
        if (request.command[0] !== 200) await held;
        return { ok: true, result: request.command, index: 1 };
      },
    });
    await pair.follower.forward(LEADER, { command: command(200), deadlineMs: 2000 });
    const started = performance.now();
    const short = pair.follower.forward(LEADER, { command: command(1), deadlineMs: 300 }).then((answer) => ({ answer, ms: performance.now() - started }));
    const long = pair.follower.forward(LEADER, { command: command(2), deadlineMs: 5000 });
    const { answer, ms } = await short;
    assert.equal(answer.ok ? 'ok' : answer.code, 'CAIRN_OUTCOME_UNKNOWN');
    assert.ok(ms >= 280 && ms < 2000, `answered after ${ms.toFixed(0)} ms`);
    release();
    const other = await long;
    assert.ok(other.ok, JSON.stringify(other));
    assert.equal(pair.follower.counters().forward_batch_sent, 1);
  });

  test('invalid input from a raw client: a bad request is refused in its place, a damaged batch or an unnamed sender as a whole', async (t) => {
    const pair = await startPair(t);
    const client = new Client(`${LEADER}:${pair.leaderPort}`, credentials.createInsecure());
    t.after(() => client.close());
    const call = (bytes: Uint8Array, from: string | null): Promise<{ error: ServiceError | null; value: Buffer | undefined }> => {
      const metadata = new Metadata();
      if (from !== null) metadata.set('cairn-from', from);
      metadata.set(PEER_PROTOCOL_METADATA_KEY, String(peerProtocolVersion));
      return new Promise((resolve) => {
        client.makeUnaryRequest<Uint8Array, Buffer>('/cairn.peer.v1.Peer/ForwardBatch', (b) => Buffer.from(b), (b) => b, bytes, metadata, { deadline: Date.now() + 3000 }, (error, value) => resolve({ error, value }));
      });
    };
    // The middle request has an empty command: refused alone.
    const mixed = encodeForwardBatchRequest([
      { command: command(1), deadlineMs: 1000 },
      { command: new Uint8Array(0), deadlineMs: 1000 },
      { command: command(3), deadlineMs: 1000 },
    ]);
    const answer = await call(mixed, FOLLOWER);
    assert.equal(answer.error, null);
    const decoded = decodeForwardBatchResponse(answer.value ?? Buffer.alloc(0), limits, 3);
    assert.ok(decoded.ok);
    const [one, two, three] = decoded.value.map((item) => (item.ok ? item.value : null));
    assert.ok(one?.ok === true && three?.ok === true);
    assert.equal(two?.ok === false ? two.code : 'ok', 'CAIRN_INVALID_ARGUMENT');
    assert.equal(pair.seen.length, 2, 'the bad request never reached the handler');

    const tooMany = encodeForwardBatchRequest(Array.from({ length: limits.forwardBatchRequestsMax + 1 }, () => ({ command: command(1), deadlineMs: 1000 })));
    const damaged = Uint8Array.from([...encodeForwardBatchRequest([{ command: command(1), deadlineMs: 1000 }]), 0x0a, 0x7f, 1]);
    for (const [what, bytes, from] of [
      ['too many requests', tooMany, FOLLOWER],
      ['an empty batch', new Uint8Array(0), FOLLOWER],
      ['a length past the end', damaged, FOLLOWER],
      ['no sender', encodeForwardBatchRequest([{ command: command(1), deadlineMs: 1000 }]), null],
    ] as const) {
      const refused = await call(bytes, from);
      assert.equal(refused.error?.code, grpcStatus.INVALID_ARGUMENT, what);
      assert.match(refused.error?.details ?? '', /^invalid forward batch/, what);
    }
    assert.equal(pair.seen.length, 2, 'nothing of a refused batch reached the handler');
    assert.ok(pair.leader.counters().forward_invalid >= 5);
    // A single Forward request framed as a batch item still decodes the same way (the item is a ForwardRequest).
    assert.deepStrictEqual(encodeForwardBatchRequest([{ command: command(9), deadlineMs: 5 }]).subarray(2), encodeForwardRequest({ command: command(9), deadlineMs: 5 }));
  });

  test('close() answers the writes still queued CAIRN_SHUTTING_DOWN; nothing is sent after it', async (t) => {
    const pair = await startPair(t);
    await pair.follower.forward(LEADER, { command: command(200), deadlineMs: 2000 });
    const queued = Array.from({ length: 8 }, (_, i) => pair.follower.forward(LEADER, { command: command(i), deadlineMs: 2000 }));
    await pair.follower.close();
    for (const answer of await Promise.all(queued)) assert.equal(answer.ok ? 'ok' : answer.code, 'CAIRN_SHUTTING_DOWN');
    assert.equal(pair.seen.length, 1);
    const after = await pair.follower.forward(LEADER, { command: command(1), deadlineMs: 2000 });
    assert.equal(after.ok ? 'ok' : after.code, 'CAIRN_SHUTTING_DOWN');
  });
});
