// Goal: a live member survives a large seeded campaign of hostile input on its peer port (Raft Stream, Forward,
// ForwardBatch, Hello, Checkpoints, and every Distro method) without crashing, exiting or hanging, answers every bad call within a bound with
// a documented answer (peer.proto: invalid Raft messages are dropped and counted, the Stream still ends with its
// StreamAck; a bad ForwardRequest is a ForwardResponse carrying a catalog code, in a ForwardBatch in its place, and a
// batch whose framing is damaged is INVALID_ARGUMENT; distro.proto: an invalid Distro
// request is INVALID_ARGUMENT), never INTERNAL or UNKNOWN, and keeps its persistent state: messages the decoder
// refuses change nothing at all (term, commit index, registry), and afterwards the member still serves reads and
// writes and restarts on its data directory with the same state.
//
// Peer calls are not authenticated yet (a later wave adds mutual TLS): a WELL-FORMED message from a forged sender can
// legitimately move the member's term or be acted upon. Phase 2 sends such messages and only asserts liveness and
// recovery; what they did is printed as diagnostics (the report of what an unauthenticated peer can do).
//
// Method: one standalone member process (test/support/cluster.ts) on 127.0.1.17 (HTTP 8848, peer port 7848), its own
// temporary data directory; the test connects from 127.0.1.18 (source-address.ts) with a grpc-js generic client
// whose serializers are the identity, so the bytes reach the member unparsed. Inputs: raw random bytes; truncated,
// bit-flipped and spliced encodings of valid messages; structurally valid messages with hostile values (absurd terms
// and indexes, unknown enum values, wrong and huge member ids, oversized batches and entries, unknown fields; see
// test/support/fuzz.ts). Every frame is decoded here first with the member's own codec (peer-codec.ts): those it
// accepts as addressed to the member are held back for phase 2. Sender ids stay on 127.0.0.0/8 (a member may call a
// sender back, e.g. a Distro repair pulls from it) and every instance address in a forwarded command is loopback.
// One seed decides every input: it is printed, and CAIRN_FUZZ_SEED replays it.

import assert from 'node:assert/strict';
import net, { isIP } from 'node:net';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { isCairnErrorCode } from '../../src/errors.ts';
import { limits } from '../../src/limits.ts';
import { validateIp } from '../../src/naming/validation.ts';
import { encodeCommand, decodeCommand, decodeResult, type RegistryCommand } from '../../src/cp/commands.ts';
import { nodeIdCharsMax, decodeCheckpointsResponse, decodeForwardBatchRequest, decodeForwardBatchResponse, decodeForwardResponse, decodeRaftBatch, encodeRaftBatch, encodeRaftMessage, encodeForwardRequest } from '../../src/replica/peer-codec.ts';
import { lookupMessage } from '../../src/replica/proto.ts';
import { bindPeerSource } from '../../src/replica/source-address.ts';
import { protoRoot } from '../../src/replica/proto.ts';
import { PEER_PROTOCOL_METADATA_KEY, distroProtocolVersion } from '../../src/replica/peer-protocol.ts';
import type { Entry, Message } from '../../src/raft/types.ts';
import { readInstances, startCluster, waitFor, type Member } from '../support/cluster.ts';
import { Failures, memberAlive, Prng, fuzzSeed, hex, hostileMessage, mutate, oneHostileField, randomBytes, runPool, utf8 } from '../support/fuzz.ts';

const host = '127.0.1.17';
const fakeHost = '127.0.1.18';
const self = `${host}:8848`;
const peerAddr = `${host}:7848`;
const fake = `${fakeHost}:8848`;
const seed = fuzzSeed(0x5eed_0017);
const answerBoundMs = 5500;
const concurrency = 16;

const distroRoot = (() => {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => (target.startsWith('/') ? target : `${protoRoot}/${target}`);
  root.loadSync(['cairn/peer/v1/distro.proto'], { keepCase: false });
  root.resolveAll();
  return root;
})();
const distroType = (name: string): protobuf.Type => distroRoot.lookupType(`cairn.peer.v1.${name}`);

const identity = (bytes: Buffer): Buffer => bytes;
const fromBytes = (bytes: Uint8Array): Buffer => Buffer.from(bytes);

/** senderIds are the cairn-from values used: forged, this member's own, huge, and none (all loopback when dialable). */
const senderIds = [fake, fake, self, `${fakeHost}:9`, 'x'.repeat(300), ''];

/**
 * metadataFrom is a call's metadata: the claimed sender, and for the Distro service its protocol version (the Peer
 * service's calls go unversioned, which is version 1, its own: the fuzzing is of what the guard lets through).
 */
function metadataFrom(from: string, path: string): grpc.Metadata {
  const metadata = new grpc.Metadata();
  if (from !== '') metadata.set('cairn-from', from);
  if (path.startsWith('/cairn.peer.v1.Distro/')) metadata.set(PEER_PROTOCOL_METADATA_KEY, String(distroProtocolVersion));
  return metadata;
}

// ---------------------------------------------------------------------------------------------------------------
// Valid messages with hostile values.

const hugeIndexes = [0, 1, 2, 3, 100, 2 ** 31, 2 ** 40, Number.MAX_SAFE_INTEGER];

function command(prng: Prng): Uint8Array {
  const key = { namespace: 'public', group: 'DEFAULT_GROUP', service: `peer-fz-${prng.int(5)}` };
  const commands: RegistryCommand[] = [
    { type: 'createService', key, protectThreshold: 0, metadata: {}, selector: { type: 'none' }, kind: null },
    { type: 'deleteService', key },
    { type: 'updateService', key, protectThreshold: 0.5 },
  ];
  return encodeCommand({ requestId: `peer-fz-${prng.int(1_000_000)}`, command: prng.pick(commands) });
}

function entries(prng: Prng, from: number, count: number, term: number): Entry[] {
  return Array.from({ length: count }, (_, i): Entry => {
    const index = from + i;
    return prng.chance(0.5) ? { kind: 'noop', index, term } : { kind: 'normal', index, term, data: prng.chance(0.5) ? command(prng) : prng.bytes(prng.int(64)) };
  });
}

/** validMessage builds a Message the codec accepts, with hostile values; its sender and receiver are chosen too. */
function validMessage(prng: Prng, from: string, to: string): Message {
  const term = prng.pick([0, 1, 2, 3, 5, 1000, Number.MAX_SAFE_INTEGER - 1, Number.MAX_SAFE_INTEGER]);
  const base = { from, to, term };
  const index = (): number => prng.pick(hugeIndexes);
  switch (prng.int(13)) {
    case 0: return { ...base, type: 'PreVoteRequest', lastLogIndex: index(), lastLogTerm: index() };
    case 1: return { ...base, type: 'PreVoteResponse', granted: prng.chance(0.5) };
    case 2: return { ...base, type: 'VoteRequest', lastLogIndex: index(), lastLogTerm: index(), transfer: prng.chance(0.3) };
    case 3: return { ...base, type: 'VoteResponse', granted: prng.chance(0.5) };
    case 4: {
      const prevLogIndex = prng.pick([0, 1, 2, 5, 1000, 2 ** 40]);
      return { ...base, type: 'AppendRequest', prevLogIndex, prevLogTerm: prng.pick([0, 1, term]), entries: entries(prng, prevLogIndex + 1, prng.pick([0, 1, 3]), Math.max(1, Math.min(term, 5))), commit: index(), ...(prng.chance(0.2) ? { noReply: true as const } : {}) };
    }
    case 5: return { ...base, type: 'AppendResponse', success: prng.chance(0.5), matchIndex: index(), conflictIndex: index(), conflictTerm: index(), rejectedIndex: index() };
    case 6: return { ...base, type: 'HeartbeatRequest', commit: index(), readRound: index() };
    case 7: return { ...base, type: 'HeartbeatResponse', readRound: index(), missingFrom: prng.pick([0, 1, 2, 1000]) };
    case 8: {
      const totalBytes = prng.pick([0, 10, 1000]);
      const data = prng.bytes(Math.min(totalBytes, prng.pick([0, 10])));
      return { ...base, type: 'SnapshotRequest', meta: { index: index(), term: Math.max(1, Math.min(term, 3)), membership: { voters: [prng.pick([self, fake])], learners: [] } }, offset: prng.pick([0, 5]), totalBytes, data, done: prng.chance(0.5) };
    }
    case 9: return { ...base, type: 'SnapshotResponse', index: index(), nextOffset: index(), installed: prng.chance(0.5) };
    case 10: return { ...base, type: 'TimeoutNow' };
    case 11: return { ...base, type: 'ReadIndexRequest', context: prng.pick(['', 'ctx', `${self}/1`, 'c'.repeat(200)]) };
    default: return { ...base, type: 'ReadIndexResponse', context: prng.pick(['ctx', `${self}/1`, `${self}/999`]), index: index(), rejected: prng.chance(0.5) };
  }
}

const raftBatchType = lookupMessage('cairn.peer.v1.RaftBatch');
const raftMessageType = lookupMessage('cairn.peer.v1.RaftMessage');

/** drawBatchFrame draws one RaftBatch frame: random, a mutated valid batch, or hostile fields. */
function drawBatchFrame(prng: Prng, from: string): Uint8Array {
  const valid = (): Uint8Array => encodeRaftBatch(Array.from({ length: 1 + prng.int(3) }, () => encodeRaftMessage(validMessage(prng, from, prng.chance(0.8) ? self : fake))));
  switch (prng.int(5)) {
    case 0: return randomBytes(prng);
    case 1: case 2: return mutate(prng, valid());
    case 3: return Uint8Array.from(hostileMessage(prng, raftBatchType, { bigStrings: false }));
    default: {
      // A valid message with one hostile field appended inside its frame.
      const message = Uint8Array.from([...encodeRaftMessage(validMessage(prng, from, self)), ...oneHostileField(prng, raftMessageType, { bigStrings: false })]);
      return encodeRaftBatch([message]);
    }
  }
}

/** acceptedMessages is what the member's own codec accepts of a frame as addressed to it from `sender`. */
function acceptedMessages(frame: Uint8Array, sender: string): Message[] {
  const { messages } = decodeRaftBatch(Uint8Array.from(frame), limits);
  return messages.filter((message) => message.to === self && (sender === '' || message.from === sender));
}

// ---------------------------------------------------------------------------------------------------------------
// Calls.

interface Answer {
  readonly code: number;
  readonly details: string;
  readonly ms: number;
  readonly response: Buffer | undefined;
}

function unary(client: grpc.Client, path: string, bytes: Uint8Array, from: string): Promise<Answer> {
  const started = Date.now();
  return new Promise((resolve) => {
    client.makeUnaryRequest<Uint8Array, Buffer>(path, fromBytes, identity, bytes, metadataFrom(from, path), { deadline: new Date(Date.now() + 8000) }, (error, value) => {
      resolve({ code: error === null ? grpc.status.OK : error.code, details: error?.details ?? '', ms: Date.now() - started, response: value });
    });
  });
}

/** stream opens a Stream call, writes the frames, then ends or cancels it, and waits for its status. */
function stream(client: grpc.Client, frames: readonly Uint8Array[], from: string, cancel: boolean): Promise<Answer> {
  const started = Date.now();
  return new Promise((resolve) => {
    const call = client.makeClientStreamRequest<Uint8Array, Buffer>('/cairn.peer.v1.Peer/Stream', fromBytes, identity, metadataFrom(from, '/cairn.peer.v1.Peer/Stream'), { deadline: new Date(Date.now() + 8000) }, (error, value) => {
      resolve({ code: error === null ? grpc.status.OK : error.code, details: error?.details ?? '', ms: Date.now() - started, response: value });
    });
    call.on('error', () => undefined);
    for (const frame of frames) call.write(frame);
    if (cancel) call.cancel();
    else call.end();
  });
}

function snapshotStream(client: grpc.Client, bytes: Uint8Array, from: string): Promise<Answer & { chunks: number }> {
  const started = Date.now();
  return new Promise((resolve) => {
    let chunks = 0;
    const call = client.makeServerStreamRequest<Uint8Array, Buffer>('/cairn.peer.v1.Distro/Snapshot', fromBytes, identity, bytes, metadataFrom(from, '/cairn.peer.v1.Distro/Snapshot'), { deadline: new Date(Date.now() + 8000) });
    call.on('data', () => chunks++);
    call.on('error', () => undefined);
    call.on('status', (status: grpc.StatusObject) => resolve({ code: status.code, details: status.details, ms: Date.now() - started, response: undefined, chunks }));
  });
}

/** judgeStatus: within the bound, and a status the peer protocol documents for a bad call (never INTERNAL/UNKNOWN). */
function judgeStatus(answer: Answer, allowed: ReadonlySet<number>, sentBytes: number): string | null {
  if (answer.ms > answerBoundMs) return `answered after ${answer.ms} ms: ${answer.code} ${answer.details}`;
  if (answer.code === grpc.status.RESOURCE_EXHAUSTED && sentBytes > limits.peerMessageBytesMax) return null;
  if (!allowed.has(answer.code)) return `status ${grpc.status[answer.code] ?? answer.code}: ${answer.details}`;
  return null;
}

// ---------------------------------------------------------------------------------------------------------------
// Forward.

/** ipsAreLoopback tells whether every instance address a command could store is loopback (or invalid). */
function ipsAreLoopback(command: Uint8Array): boolean {
  for (const view of [Uint8Array.from(command), Buffer.from(command)]) {
    const decoded = decodeCommand(view);
    if (!decoded.ok) continue;
    const body = decoded.envelope.command as { instance?: { ip?: unknown }; address?: { ip?: unknown } };
    for (const ip of [body.instance?.ip, body.address?.ip]) {
      if (typeof ip !== 'string') continue;
      try {
        validateIp(ip);
      } catch {
        continue;
      }
      if (!(isIP(ip) === 4 && ip.startsWith('127.'))) return false;
    }
  }
  return true;
}

const forwardRequestType = lookupMessage('cairn.peer.v1.ForwardRequest');

/**
 * drawForwardBatch draws a ForwardBatchRequest: random bytes, 1-6 drawn ForwardRequests framed as its items (a
 * hostile item among them is refused in its place), or such a frame mutated; never one whose commands name an
 * address off loopback.
 */
function drawForwardBatch(prng: Prng): Uint8Array {
  for (;;) {
    const roll = prng.int(4);
    if (roll === 0) {
      const bytes = randomBytes(prng);
      const decoded = decodeForwardBatchRequest(bytes, limits);
      if (decoded.ok && !decoded.value.every((item) => !item.ok || ipsAreLoopback(item.value.command))) continue;
      return bytes;
    }
    const writer = protobuf.Writer.create();
    for (let i = 0, items = 1 + prng.int(6); i < items; i++) writer.uint32(0x0a).bytes(drawForward(prng).bytes);
    const framed = writer.finish();
    return roll === 1 ? mutateLoopbackBatch(prng, framed) : framed;
  }
}

/** mutateLoopbackBatch mutates a framed batch until what the member's decoder accepts of it stays on loopback. */
function mutateLoopbackBatch(prng: Prng, framed: Uint8Array): Uint8Array {
  for (;;) {
    const bytes = mutate(prng, framed);
    const decoded = decodeForwardBatchRequest(bytes, limits);
    if (!decoded.ok || decoded.value.every((item) => !item.ok || ipsAreLoopback(item.value.command))) return bytes;
  }
}

function drawForward(prng: Prng): { bytes: Uint8Array; commandBytes: Uint8Array | null } {
  for (;;) {
    const roll = prng.int(6);
    let commandBytes: Uint8Array | null = null;
    let bytes: Uint8Array;
    if (roll === 0) bytes = randomBytes(prng);
    else if (roll === 1) bytes = mutate(prng, encodeForwardRequest({ command: command(prng), deadlineMs: 1000 }));
    else if (roll === 2) bytes = Uint8Array.from(hostileMessage(prng, forwardRequestType, { bigStrings: false }));
    else {
      commandBytes = roll === 3 ? command(prng) : roll === 4 ? mutate(prng, command(prng)) : prng.pick([new Uint8Array(0), prng.bytes(30), new Uint8Array(limits.entryBytesMax + 1)]);
      bytes = encodeForwardRequest({ command: commandBytes, deadlineMs: prng.pick([1, 1000, 5000, 3_600_000]) });
    }
    const decoded = (() => {
      try {
        return forwardRequestType.toObject(forwardRequestType.decode(Uint8Array.from(bytes))) as { command?: Uint8Array };
      } catch {
        return {};
      }
    })();
    if (decoded.command !== undefined && !ipsAreLoopback(decoded.command)) continue;
    if (commandBytes !== null && !ipsAreLoopback(commandBytes)) continue;
    return { bytes, commandBytes };
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Distro.

const distroMethods: ReadonlyArray<[string, string]> = [
  ['Heartbeat', 'DistroHeartbeat'], ['Sync', 'DistroRecords'], ['Verify', 'DistroChecksums'], ['Pull', 'DistroPullRequest'],
  ['Forward', 'DistroForwardRequest'], ['ForwardBatch', 'DistroForwardBatch'], ['LastBeats', 'DistroLastBeatsRequest'],
];

const distroKey = (prng: Prng): object => ({ namespace: 'public', group: 'DEFAULT_GROUP', service: `peer-eph-${prng.int(4)}` });
const distroInstanceKey = (prng: Prng): object => ({ ...distroKey(prng), cluster: 'DEFAULT', ip: `127.0.6.${1 + prng.int(50)}`, port: 80 + prng.int(5) });
const distroEntry = (prng: Prng): object => ({
  cluster: 'DEFAULT', ip: `127.0.6.${1 + prng.int(50)}`, port: 80, version: { wallMs: 1_700_000_000_000 + prng.int(1000), counter: prng.int(5), memberId: fake },
  removed: prng.chance(0.2), weight: 1, enabled: true, healthy: true, metadata: { a: 'b' },
});

function validDistro(prng: Prng, method: string): object {
  switch (method) {
    case 'Heartbeat': return { memberId: fake };
    case 'Sync': return { records: [{ key: distroKey(prng), entries: [distroEntry(prng), distroEntry(prng)] }] };
    case 'Verify': return { checksums: [{ key: distroKey(prng), checksum: prng.pick(['', 'abc', 'x'.repeat(64)]) }] };
    case 'Pull': return { keys: [distroKey(prng)] };
    case 'Forward': return { write: { type: prng.pick(['register', 'deregister', 'update', 'patch', 'bogus']), key: distroInstanceKey(prng), weight: 1, enabled: true, healthy: true } };
    case 'ForwardBatch': return { requests: [{ beat: { key: distroInstanceKey(prng), hasBody: true, weight: 1 } }, { write: { type: 'register', key: distroInstanceKey(prng), weight: 1, enabled: true, healthy: true } }] };
    default: return { services: [{ key: distroKey(prng), instances: [{ cluster: 'DEFAULT', ip: '127.0.6.1', port: 80 }] }] };
  }
}

function drawDistro(prng: Prng, method: string, typeName: string): Uint8Array {
  const type = distroType(typeName);
  const valid = (): Uint8Array => type.encode(type.fromObject(validDistro(prng, method))).finish();
  switch (prng.int(5)) {
    case 0: return randomBytes(prng);
    case 1: return mutate(prng, valid());
    case 2: return Uint8Array.from(hostileMessage(prng, type, { bigStrings: prng.chance(0.05) }));
    case 3: return Uint8Array.from([...valid(), ...oneHostileField(prng, type, { bigStrings: false })]);
    default: return valid();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// State.

interface RaftView {
  readonly term: number;
  readonly commitIndex: number;
  readonly role: string;
  readonly leader: string | null;
}

async function raftView(member: Member): Promise<RaftView> {
  const view = await member.status();
  const me = view.members.find((m) => m.addr === self);
  return { term: view.term, commitIndex: me?.commitIndex ?? -1, role: me?.role ?? '?', leader: view.leader };
}

const sentinelService = 'peer-sentinel';

async function register(member: Member, service: string, port: number): Promise<void> {
  const answer = await member.request('POST', `/nacos/v1/ns/instance?serviceName=${service}&ip=127.0.4.1&port=${port}&ephemeral=false`);
  if (answer.status !== 200 || answer.text !== 'ok') throw new Error(`register ${service} ${port}: ${answer.status} ${answer.code ?? ''} ${answer.text.slice(0, 200)}`);
}

async function sentinelState(member: Member): Promise<string> {
  return [...(await readInstances(member, sentinelService))].sort().join(',');
}

// ---------------------------------------------------------------------------------------------------------------
// The test.

test('the peer port of a live member survives a seeded fuzz campaign', { timeout: 180_000 }, async (t) => {
  t.diagnostic(`seed ${seed} (replay with CAIRN_FUZZ_SEED=${seed})`);
  const cluster = await startCluster(t, { file: 'peer-fuzz', hosts: [host], size: 1, httpPort: 8848, logLevel: 'warn' });
  const member = cluster.members[0];
  assert.ok(member !== undefined);
  bindPeerSource(peerAddr, fakeHost);
  // The forged sender's peer port: the member has no reason to call a non-member back, so nothing may connect here.
  const callbacks: string[] = [];
  const forgedPeerPort = net.createServer((socket) => {
    callbacks.push(`${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`);
    socket.destroy();
  });
  await new Promise<void>((resolve, reject) => forgedPeerPort.once('error', reject).listen(7848, fakeHost, resolve));
  t.after(() => new Promise<void>((resolve) => forgedPeerPort.close(() => resolve())));
  const client = new grpc.Client(peerAddr, grpc.credentials.createInsecure(), { 'grpc.max_send_message_length': 64 * 1024 * 1024, 'grpc.max_receive_message_length': 64 * 1024 * 1024 });
  t.after(() => client.close());
  const prng = new Prng(seed);
  const failures = new Failures();
  const counts = { stream: 0, frames: 0, forward: 0, forwardBatch: 0, forwardApplied: 0, hello: 0, checkpoints: 0, distro: 0, distroOk: 0 };
  const started = Date.now();

  await waitFor(async () => (await raftView(member)).role === 'leader', { timeoutMs: 10_000, what: 'the member to lead its group of one' });
  for (const port of [4001, 4002, 4003]) await register(member, sentinelService, port);
  // Nobody probes the sentinel (checker NONE), so nothing but a peer message could move the commit index.
  const checker = encodeURIComponent(JSON.stringify({ type: 'NONE' }));
  const configured = await member.request('PUT', `/nacos/v1/ns/cluster?serviceName=${sentinelService}&clusterName=DEFAULT&checkPort=80&useInstancePort4Check=true&healthChecker=${checker}`);
  assert.equal(configured.status, 200, configured.text);
  // The leader commits its probe assignment on its own a little after it is elected: wait for the log to settle.
  let lastCommit = -1;
  await waitFor(async () => {
    const commit = (await raftView(member)).commitIndex;
    const settled = commit === lastCommit;
    lastCommit = commit;
    return settled;
  }, { timeoutMs: 20_000, intervalMs: 1500, what: 'the commit index to settle' });
  const sentinelBefore = await sentinelState(member);
  const wellFormed: Array<{ frame: Uint8Array; from: string }> = [];

  await cluster.step(t, 'phase 1: Raft Stream frames the codec refuses change nothing', async () => {
    const before = await raftView(member);
    const jobs: Array<() => Promise<void>> = [];
    for (let i = 0; i < 400; i++) {
      const from = prng.pick(senderIds);
      const claimed = from === '' ? prng.pick([fake, self]) : from;
      const frames: Uint8Array[] = [];
      for (let f = 0; f < 1 + prng.int(6); f++) {
        const frame = drawBatchFrame(prng, claimed);
        if (acceptedMessages(frame, from).length > 0) wellFormed.push({ frame, from });
        else frames.push(frame);
      }
      if (prng.chance(0.03)) frames.push(new Uint8Array(limits.peerMessageBytesMax + 10)); // oversized batch
      const cancel = prng.chance(0.15);
      jobs.push(async () => {
        const answer = await stream(client, frames, from, cancel);
        counts.stream++;
        counts.frames += frames.length;
        const sent = frames.reduce((sum, frame) => Math.max(sum, frame.length), 0);
        const why = cancel ? (answer.ms > answerBoundMs ? `cancel answered after ${answer.ms} ms` : null) : judgeStatus(answer, new Set([grpc.status.OK]), sent);
        if (why !== null) failures.add(`Stream from '${from.slice(0, 40)}' (${frames.length} frames: ${frames.map((f) => hex(f, 12)).join(' | ')}): ${why}`);
      });
    }
    await runPool(jobs, concurrency);
    await memberAlive(member, failures, 'after phase 1');
    const after = await raftView(member);
    if (JSON.stringify(after) !== JSON.stringify(before)) failures.add(`refused Raft frames changed the member: before ${JSON.stringify(before)}, after ${JSON.stringify(after)}`);
    if ((await sentinelState(member)) !== sentinelBefore) failures.add('refused Raft frames changed the registry');
  });

  await cluster.step(t, 'Hello, Checkpoints, Forward and ForwardBatch: random, mutated and hostile requests', async () => {
    const jobs: Array<() => Promise<void>> = [];
    for (let i = 0; i < 150; i++) {
      const roll = prng.int(3);
      const bytes = roll === 0 ? randomBytes(prng) : roll === 1 ? Uint8Array.from(hostileMessage(prng, lookupMessage('cairn.peer.v1.HelloRequest'))) : Uint8Array.from([0x0a, ...utf8(prng.pick([fake, 'ghost:1', '']).slice(0, 100)).length === 0 ? [0] : [utf8(fake).length, ...utf8(fake)]]);
      jobs.push(async () => {
        const answer = await unary(client, '/cairn.peer.v1.Peer/Hello', bytes, '');
        counts.hello++;
        const why = judgeStatus(answer, new Set([grpc.status.OK, grpc.status.UNAVAILABLE]), bytes.length);
        if (why !== null) failures.add(`Hello ${hex(bytes)}: ${why}`);
      });
    }
    for (let i = 0; i < 100; i++) {
      const roll = prng.int(2);
      const bytes = roll === 0 ? randomBytes(prng) : Uint8Array.from(hostileMessage(prng, lookupMessage('cairn.peer.v1.CheckpointsRequest')));
      jobs.push(async () => {
        const answer = await unary(client, '/cairn.peer.v1.Peer/Checkpoints', bytes, '');
        counts.checkpoints++;
        const why = judgeStatus(answer, new Set([grpc.status.OK, grpc.status.INVALID_ARGUMENT, grpc.status.UNAVAILABLE]), bytes.length);
        if (why !== null) return failures.add(`Checkpoints ${hex(bytes)}: ${why}`);
        if (answer.response !== undefined && !decodeCheckpointsResponse(Uint8Array.from(answer.response)).ok) failures.add(`Checkpoints ${hex(bytes)}: an invalid CheckpointsResponse ${hex(answer.response)}`);
      });
    }
    for (let i = 0; i < 600; i++) {
      const { bytes, commandBytes } = drawForward(prng);
      const from = prng.pick(senderIds);
      jobs.push(async () => {
        const answer = await unary(client, '/cairn.peer.v1.Peer/Forward', bytes, from);
        counts.forward++;
        const why = judgeStatus(answer, new Set([grpc.status.OK]), bytes.length);
        if (why !== null) return failures.add(`Forward ${hex(bytes)}: ${why}`);
        if (answer.response === undefined) return;
        const decoded = decodeForwardResponse(Uint8Array.from(answer.response), limits);
        if (!decoded.ok) return failures.add(`Forward ${hex(bytes)}: undecodable ForwardResponse ${hex(answer.response)}`);
        const response = decoded.value;
        if (!response.ok) {
          if (!isCairnErrorCode(response.code) || response.code === 'CAIRN_INTERNAL') failures.add(`Forward ${hex(bytes)}: answered ${response.code}: ${response.message}`);
        } else if (decodeResult(response.result).ok) {
          counts.forwardApplied++;
        }
        if (response.ok && commandBytes !== null && !decodeCommand(Uint8Array.from(commandBytes)).ok) {
          failures.add(`Forward of a command that is no valid command (${hex(commandBytes)}) was proposed and applied: it entered the Raft log`);
        }
      });
    }
    for (let i = 0; i < 150; i++) {
      const bytes = drawForwardBatch(prng);
      const from = prng.pick(senderIds);
      // The member's own decoder and the sender's id say what the answer must be: a refusal of the whole batch (damaged
      // framing, or a sender id that is empty or longer than nodeIdCharsMax), or one answer per request.
      const decodedBatch = decodeForwardBatchRequest(bytes, limits);
      const expected = from.length > 0 && from.length <= nodeIdCharsMax ? decodedBatch : { ok: false as const };
      jobs.push(async () => {
        const answer = await unary(client, '/cairn.peer.v1.Peer/ForwardBatch', bytes, from);
        counts.forwardBatch++;
        const why = judgeStatus(answer, new Set([expected.ok ? grpc.status.OK : grpc.status.INVALID_ARGUMENT]), bytes.length);
        if (why !== null) return failures.add(`ForwardBatch ${hex(bytes)}: ${why}`);
        if (!expected.ok || answer.response === undefined) return;
        const decoded = decodeForwardBatchResponse(Uint8Array.from(answer.response), limits, expected.value.length);
        if (!decoded.ok) return failures.add(`ForwardBatch ${hex(bytes)}: undecodable ForwardBatchResponse ${hex(answer.response)}`);
        decoded.value.forEach((item, k) => {
          const request = expected.value[k];
          if (!item.ok) return failures.add(`ForwardBatch ${hex(bytes)}: answer ${k} is no valid ForwardResponse`);
          const response = item.value;
          if (!response.ok) {
            if (!isCairnErrorCode(response.code) || response.code === 'CAIRN_INTERNAL') failures.add(`ForwardBatch ${hex(bytes)}: request ${k} answered ${response.code}: ${response.message}`);
            return;
          }
          if (request === undefined || !request.ok) return failures.add(`ForwardBatch ${hex(bytes)}: request ${k}, which the codec refuses, was applied`);
          if (!decodeCommand(request.value.command).ok) failures.add(`ForwardBatch ${hex(bytes)}: request ${k}, no valid command, was proposed and applied`);
          if (decodeResult(response.result).ok) counts.forwardApplied++;
        });
      });
    }
    await runPool(jobs, concurrency);
    await memberAlive(member, failures, 'after Hello, Checkpoints and Forward');
  });

  await cluster.step(t, 'Distro: every method, random, mutated and hostile requests', async () => {
    const jobs: Array<() => Promise<void>> = [];
    const allowed = new Set([grpc.status.OK, grpc.status.INVALID_ARGUMENT, grpc.status.UNAVAILABLE]);
    const slowestMs = new Map<string, { ms: number; status: string }>();
    for (const [method, typeName] of distroMethods) {
      for (let i = 0; i < 200; i++) {
        const bytes = drawDistro(prng, method, typeName);
        const from = prng.pick(senderIds);
        jobs.push(async () => {
          const answer = await unary(client, `/cairn.peer.v1.Distro/${method}`, bytes, from);
          counts.distro++;
          if (answer.code === grpc.status.OK) counts.distroOk++;
          const slowest = slowestMs.get(method);
          if (slowest === undefined || answer.ms > slowest.ms) slowestMs.set(method, { ms: answer.ms, status: `${answer.code} ${answer.details.slice(0, 80)}` });
          const why = judgeStatus(answer, allowed, bytes.length);
          if (why !== null) failures.add(`Distro/${method} from '${from.slice(0, 40)}' ${hex(bytes)}: ${why}`);
        });
      }
    }
    for (let i = 0; i < 40; i++) {
      const bytes = prng.chance(0.5) ? randomBytes(prng) : new Uint8Array(0);
      const from = prng.pick(senderIds);
      jobs.push(async () => {
        const answer = await snapshotStream(client, bytes, from);
        counts.distro++;
        const why = judgeStatus(answer, allowed, bytes.length);
        if (why !== null) failures.add(`Distro/Snapshot from '${from.slice(0, 40)}' ${hex(bytes)}: ${why}`);
      });
    }
    await runPool(jobs, concurrency);
    t.diagnostic(`Distro slowest answers: ${[...slowestMs].map(([method, slowest]) => `${method} ${slowest.ms} ms (${slowest.status})`).join('; ')}`);
    await memberAlive(member, failures, 'after the Distro campaign');
    if (callbacks.length > 0) failures.add(`the member connected to the peer port of a forged, non-member sender ${fake} ${callbacks.length} times (from ${callbacks[0] ?? ''})`);
    if ((await sentinelState(member)) !== sentinelBefore) failures.add('the Distro campaign changed the persistent registry');
  });

  await cluster.step(t, 'phase 2: well-formed Raft messages from a forged sender (unauthenticated): the member survives and recovers', async () => {
    const before = await raftView(member);
    const jobs = wellFormed.map(({ frame, from }) => async () => {
      const answer = await stream(client, [frame], from, false);
      counts.stream++;
      counts.frames++;
      const why = judgeStatus(answer, new Set([grpc.status.OK]), frame.length);
      if (why !== null) failures.add(`Stream (well-formed) from '${from.slice(0, 40)}' ${hex(frame)}: ${why}`);
    });
    await runPool(jobs, 4);
    const during = await raftView(member).catch((error: unknown) => String(error));
    await memberAlive(member, failures, 'after phase 2');
    t.diagnostic(`phase 2: ${wellFormed.length} well-formed frames; before ${JSON.stringify(before)}, right after ${JSON.stringify(during)}`);
    const recovered = await waitFor(async () => {
      const view = await raftView(member);
      if (view.role !== 'leader') throw new Error(`role ${view.role}, leader ${String(view.leader)}, term ${view.term}`);
      return view;
    }, { timeoutMs: 15_000, what: 'the member to lead again after the forged messages' }).catch((error: unknown) => {
      failures.add(`after phase 2 the member does not lead its group of one again: ${String(error)}`);
      return null;
    });
    t.diagnostic(`phase 2: recovered ${JSON.stringify(recovered)}`);
  });

  const injected = await readInstances(member, 'peer-eph-0').catch(() => new Set<string>());
  t.diagnostic(`unauthenticated effects: ${counts.forwardApplied} forwarded writes applied, ${counts.distroOk} Distro calls answered OK, ${injected.size} ephemeral instances injected into peer-eph-0 by Distro calls`);
  t.diagnostic(`calls: ${counts.stream} Stream (${counts.frames} frames), ${counts.forward} Forward, ${counts.forwardBatch} ForwardBatch, ${counts.hello} Hello, ${counts.checkpoints} Checkpoints, ${counts.distro} Distro in ${Date.now() - started} ms`);

  await cluster.step(t, 'afterwards the member serves reads and writes and restarts with the same state', async () => {
    await memberAlive(member, failures, 'at the end');
    try {
      await register(member, 'peer-after', 5000);
      const listed = await readInstances(member, 'peer-after', 'linearizable');
      if (!listed.has('127.0.4.1:5000')) failures.add('a write after the campaign is not listed');
    } catch (error) {
      failures.add(`a write after the campaign failed: ${String(error)}`);
    }
    const sentinelNow = await sentinelState(member);
    if (sentinelNow !== sentinelBefore) failures.add(`the sentinel changed: ${sentinelBefore} -> ${sentinelNow}`);
    const afterBefore = [...(await readInstances(member, 'peer-after'))].sort().join(',');
    await member.terminate();
    await member.restart();
    await waitFor(async () => (await raftView(member)).role === 'leader', { timeoutMs: 15_000, what: 'the restarted member to lead' });
    const sentinelRestarted = await sentinelState(member);
    if (sentinelRestarted !== sentinelBefore) failures.add(`the sentinel differs after the restart: ${sentinelBefore} -> ${sentinelRestarted}`);
    const afterRestarted = [...(await readInstances(member, 'peer-after'))].sort().join(',');
    if (afterRestarted !== afterBefore) failures.add(`peer-after differs after the restart: ${afterBefore} -> ${afterRestarted}`);
  });

  for (const event of member.events.filter((e) => e.level >= 50)) failures.add(`the member logged an error: ${JSON.stringify(event.fields).slice(0, 600)}`);
  t.diagnostic(`total ${Date.now() - started} ms`);
  assert.equal(failures.report(seed), '');
});
