// Goal: show that the gRPC streams keep docs/grpc.md's promises. Subscribe: a request validated like ListInstances,
// authorized through the read hook, the current snapshot first (service absent when it does not exist), then one per
// change with growing revisions; a resume with after_revision/after_epoch; a client cancel forgets the subscriber; a
// subscriber that never reads is cut off with RESOURCE_EXHAUSTED (CAIRN_SUBSCRIBER_TOO_SLOW naming its last revision)
// while the member holds at most one waiting snapshot for it. Session: `started` first, then every request answered
// in order; register binds an ephemeral instance to the session; ephemeral=false and bad input are answered with a
// per-request `error` and the stream goes on; a message with no request ends it with INVALID_ARGUMENT; ending the
// stream closes the session; a session the registry ends (silent) ends the stream with ABORTED (CAIRN_SESSION_EXPIRED);
// one the member's shutdown ends (the registry rejects `closed` with CAIRN_SHUTTING_DOWN) with UNAVAILABLE, as Subscribe.
// Method: buildGrpcServer() over the real NamingService and state machine with a direct proposer (no Raft), a real
// SubscriptionHub with shrunken limits, and, for Session, a small fake EphemeralRegistry injected at the NamingService
// seam (the AP registry is built in parallel); bound on this file's own 127.0.1.155, called through real grpc-js
// channels with raw stream calls.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import http2 from 'node:http2';
import { CairnError } from '../../../src/errors.ts';
import { CpRegistry } from '../../../src/cp/cp-registry.ts';
import { RegistryStateMachine } from '../../../src/cp/registry-state-machine.ts';
import { instanceId, type Instance, type ServiceKey } from '../../../src/naming/model.ts';
import {
  NamingService,
  type EphemeralRegistry,
  type EphemeralSession,
  type EphemeralWrite,
  type ServiceChangeListener,
} from '../../../src/naming/naming-service.ts';
import { SubscriptionHub } from '../../../src/naming/subscriptions.ts';
import { buildGrpcServer, listenGrpcServer, shutdownGrpcServer } from '../../../src/api/grpc/server.ts';
import { methodDefinitionOf } from '../../../src/api/grpc/proto.ts';
import { DirectProposer } from '../../support/direct-proposer.ts';
import { waitFor } from '../../support/cluster.ts';

const host = '127.0.1.155';
const Naming = 'cairn.naming.v1.Naming';

/**
 * FakeSession records what happens to one session; expire() plays the registry ending a silent session, shutDown()
 * the member's shutdown ending it (DistroNode.endSessions).
 */
class FakeSession implements EphemeralSession {
  readonly id: string;
  keepAlives = 0;
  closeCalls = 0;
  readonly closed: Promise<void>;
  private resolveClosed: () => void = () => undefined;
  private rejectClosed: (reason: CairnError) => void = () => undefined;
  private shutdown = false;
  constructor(id: string, private readonly registry: FakeEphemeralRegistry) {
    this.id = id;
    this.closed = new Promise((resolve, reject) => {
      this.resolveClosed = resolve;
      this.rejectClosed = reject;
    });
  }
  keepAlive(): void {
    this.keepAlives += 1;
  }
  async close(): Promise<void> {
    this.closeCalls += 1;
    // As DistroNode's: a session the shutdown ended removes nothing when it is closed.
    if (!this.shutdown) this.expire();
  }
  expire(): void {
    this.registry.dropOwner(this.id);
    this.resolveClosed();
  }
  shutDown(): void {
    this.shutdown = true;
    this.rejectClosed(new CairnError('CAIRN_SHUTTING_DOWN', 'the member is shutting down (test)'));
  }
}

/** FakeEphemeralRegistry holds ephemeral instances in a map, with owners, and reports changes. */
class FakeEphemeralRegistry implements EphemeralRegistry {
  readonly instances = new Map<string, { key: ServiceKey; instance: Instance; owner: string | undefined }>();
  readonly sessions: FakeSession[] = [];
  private readonly listeners = new Set<ServiceChangeListener>();

  async write(operation: EphemeralWrite): Promise<{ instance: Instance; revision: number } | { removed: boolean; revision: number }> {
    if (operation.type === 'register' || operation.type === 'update') {
      const { namespace, group, service, ip, port, cluster, weight, enabled, healthy, metadata } = operation.instance;
      const instance: Instance = { ip, port, cluster, weight, enabled, healthy, metadata, ephemeral: true, instanceId: instanceId(ip, port, cluster, group, service) };
      this.instances.set(`${service}|${cluster}|${ip}|${port}`, { key: { namespace, group, service }, instance, owner: operation.owner });
      this.changed({ namespace, group, service });
      return { instance, revision: 0 };
    }
    if (operation.type === 'deregister') {
      const { namespace, group, service, ip, port, cluster } = operation.key;
      const removed = this.instances.delete(`${service}|${cluster}|${ip}|${port}`);
      this.changed({ namespace, group, service });
      return { removed, revision: 0 };
    }
    throw new CairnError('CAIRN_NOT_IMPLEMENTED', 'patch is not faked');
  }
  beat(): Promise<never> {
    return Promise.reject(new CairnError('CAIRN_NOT_IMPLEMENTED', 'no beats in the fake'));
  }
  openSession(): EphemeralSession {
    const session = new FakeSession(`session-${this.sessions.length + 1}`, this);
    this.sessions.push(session);
    return session;
  }
  instancesOf(service: ServiceKey): readonly Instance[] {
    return [...this.instances.values()].filter((entry) => entry.key.service === service.service && entry.key.group === service.group && entry.key.namespace === service.namespace)
      .map((entry) => entry.instance).sort((a, b) => (a.ip < b.ip ? -1 : 1));
  }
  serviceKeys(): readonly ServiceKey[] {
    return [];
  }
  onChange(listener: ServiceChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  dropOwner(owner: string): void {
    for (const [id, entry] of this.instances) {
      if (entry.owner === owner) {
        this.instances.delete(id);
        this.changed(entry.key);
      }
    }
  }
  private changed(key: ServiceKey): void {
    for (const listener of this.listeners) listener(key);
  }
}

let server: grpc.Server;
let address = '';
let raw: grpc.Client;
let naming: NamingService;
let hub: SubscriptionHub;
let ephemeral: FakeEphemeralRegistry;
let refuseReads = false;
const ctx = { identity: null };

before(async () => {
  const stateMachine = new RegistryStateMachine();
  ephemeral = new FakeEphemeralRegistry();
  naming = new NamingService({
    cp: new CpRegistry(new DirectProposer(stateMachine), stateMachine),
    ephemeral,
    authorize: (_identity, _namespace, resource, action) => {
      if (refuseReads && action === 'read' && resource.endsWith('@@secret')) throw new CairnError('CAIRN_FORBIDDEN', 'no reading secret');
    },
  });
  hub = new SubscriptionHub({ source: naming, cp: stateMachine, limits: { pushMergeWindowMs: 2, pushQueueMessagesMax: 4, pushStallMsMax: 60_000 }, epoch: 'test-epoch' });
  server = buildGrpcServer({ naming, ready: () => true, subscriptions: hub, subscribeCatchUpMs: 500, subscribeCatchUpWaitersMax: 2 });
  address = `${host}:${await listenGrpcServer(server, host, 0)}`;
  raw = new grpc.Client(address, grpc.credentials.createInsecure());
});

after(async () => {
  raw.close();
  hub.close();
  await shutdownGrpcServer(server, 1000);
});

type Message = Record<string, unknown>;

/** Stream collects a server stream's messages and its final status. */
class Stream {
  readonly messages: Message[] = [];
  status: grpc.StatusObject | null = null;
  error: grpc.ServiceError | null = null;
  constructor(readonly call: grpc.ClientReadableStream<Message> | grpc.ClientDuplexStream<Message, Message>, read = true) {
    if (read) this.read();
    call.on('status', (status: grpc.StatusObject) => (this.status = status));
    call.on('error', (error: grpc.ServiceError) => (this.error = error));
  }
  read(): void {
    this.call.on('data', (message: Message) => this.messages.push(message));
  }
  async next(count: number, what: string): Promise<Message> {
    await waitFor(() => this.messages.length >= count || this.error !== null, { timeoutMs: 3000, intervalMs: 2, what });
    const message = this.messages[count - 1];
    assert.ok(message !== undefined, `${what}: stream ended with ${this.error?.message ?? 'nothing'}`);
    return message;
  }
  async ended(what: string): Promise<grpc.StatusObject> {
    return waitFor(() => this.status, { timeoutMs: 3000, intervalMs: 2, what });
  }
}

function subscribe(request: object, read = true): Stream {
  const method = methodDefinitionOf(Naming, 'Subscribe');
  return new Stream(raw.makeServerStreamRequest(method.path, method.requestSerialize, method.responseDeserialize, request) as grpc.ClientReadableStream<Message>, read);
}

function session(): Stream {
  const method = methodDefinitionOf(Naming, 'Session');
  return new Stream(raw.makeBidiStreamRequest(method.path, method.requestSerialize, method.responseDeserialize) as grpc.ClientDuplexStream<Message, Message>);
}

function ips(message: Message): string[] {
  return ((message['instances'] ?? []) as Array<{ ip: string }>).map((instance) => instance.ip);
}

const persistent = (service: string, ip: string, extra: Record<string, unknown> = {}) =>
  naming.registerInstance(ctx, { namespace: 'public', group: 'DEFAULT_GROUP', service, ip, port: 80, ephemeral: false, ...extra });

test('Subscribe: the current snapshot first (absent service said so), then each change with a greater revision', async () => {
  const stream = subscribe({ service: 'orders' });
  const first = await stream.next(1, 'the first snapshot');
  assert.equal(first['service'], undefined, 'the service does not exist yet');
  assert.deepEqual(ips(first), []);
  assert.equal(first['epoch'], 'test-epoch');
  await persistent('orders', '10.5.0.1');
  const second = await stream.next(2, 'the registration');
  assert.deepEqual(ips(second), ['10.5.0.1']);
  assert.equal((second['service'] as Message)['service'], 'orders');
  await naming.deregisterInstance(ctx, { namespace: 'public', group: 'DEFAULT_GROUP', service: 'orders', ip: '10.5.0.1', port: 80, ephemeral: false });
  const third = await stream.next(3, 'the deregistration');
  assert.deepEqual(ips(third), []);
  const revisions = stream.messages.map((message) => Number(message['revision']));
  assert.ok(revisions[0]! < revisions[1]! && revisions[1]! < revisions[2]!, `revisions grow: ${revisions.join(',')}`);
  // Resume from the last snapshot: nothing changed since, so nothing comes first; the next change does.
  stream.call.cancel();
  const resumed = subscribe({ service: 'orders', afterRevision: revisions[2], afterEpoch: 'test-epoch' });
  await persistent('orders', '10.5.0.2');
  const next = await resumed.next(1, 'the change after the resume');
  assert.deepEqual(ips(next), ['10.5.0.2']);
  assert.ok(Number(next['revision']) > revisions[2]!);
  resumed.call.cancel();
  await waitFor(() => hub.subscriberCount({ namespace: 'public', group: 'DEFAULT_GROUP', service: 'orders' }) === 0, { timeoutMs: 2000, intervalMs: 5, what: 'cancelled subscribers forgotten' });
  assert.equal((await stream.ended('the cancelled status')).code, grpc.status.CANCELLED);
});

test('Subscribe: a resume with min_applied_index waits until this member applied that far, and never shows older state (jepsen-like B1/B2)', async () => {
  const first = subscribe({ service: 'floor' });
  const applied = Number((await first.next(1, 'the first snapshot'))['appliedIndex']);
  assert.ok(applied >= 0);
  first.call.cancel();
  // A client that saw state at applied + 2 resumes here: nothing comes while this member is behind it.
  const resumed = subscribe({ service: 'floor', minAppliedIndex: applied + 2 });
  await new Promise((resolve) => setTimeout(resolve, 150));
  assert.equal(resumed.messages.length, 0, 'no snapshot from a member behind the stream');
  await persistent('floor-elsewhere', '10.6.0.1');
  await persistent('floor-elsewhere', '10.6.0.2');
  const caughtUp = await resumed.next(1, 'the snapshot once caught up');
  assert.ok(Number(caughtUp['appliedIndex']) >= applied + 2, `applied_index ${String(caughtUp['appliedIndex'])} >= ${applied + 2}`);
  resumed.call.cancel();
  // A member that does not catch up in time ends the stream with UNAVAILABLE, CAIRN_MEMBER_BEHIND.
  const stuck = subscribe({ service: 'floor', minAppliedIndex: applied + 1_000_000 });
  const status = await stuck.ended('the behind member to give up');
  assert.equal(status.code, grpc.status.UNAVAILABLE);
  assert.match(status.details, /CAIRN_MEMBER_BEHIND|below min_applied_index/);
  assert.equal(stuck.messages.length, 0);
});

test('Subscribe: at most subscribeCatchUpWaitersMax resumes wait for this member at once; another is sent elsewhere at once', async () => {
  const first = subscribe({ service: 'crowd' });
  const applied = Number((await first.next(1, 'the first snapshot'))['appliedIndex']);
  first.call.cancel();
  const waiting = [subscribe({ service: 'crowd', minAppliedIndex: applied + 1_000_000 }), subscribe({ service: 'crowd', minAppliedIndex: applied + 1_000_000 })];
  await new Promise((resolve) => setTimeout(resolve, 100));
  const third = subscribe({ service: 'crowd', minAppliedIndex: applied + 1_000_000 });
  const status = await third.ended('the third resume to be refused');
  assert.equal(status.code, grpc.status.UNAVAILABLE);
  // Refused at once for the crowd, not after the catch-up bound ("... after 500 ms").
  assert.match(status.details, /already 2 streams wait for it to catch up/);
  for (const stream of waiting) stream.call.cancel();
  // Once they are gone, a resume that needs no wait is served.
  const served = subscribe({ service: 'crowd', minAppliedIndex: applied });
  assert.ok((await served.next(1, 'a resume at an index already applied')) !== undefined);
  served.call.cancel();
});

test('Subscribe: invalid requests are INVALID_ARGUMENT, refused reads PERMISSION_DENIED', async () => {
  const missing = subscribe({});
  assert.equal((await missing.ended('the missing service')).code, grpc.status.INVALID_ARGUMENT);
  const badCluster = subscribe({ service: 'x', clusters: ['bad cluster!'] });
  assert.equal((await badCluster.ended('the bad cluster')).code, grpc.status.INVALID_ARGUMENT);
  refuseReads = true;
  try {
    const refused = subscribe({ service: 'secret' });
    const status = await refused.ended('the refusal');
    assert.equal(status.code, grpc.status.PERMISSION_DENIED);
    assert.equal(status.metadata.get('cairn-error-code')[0], 'CAIRN_FORBIDDEN');
    assert.equal(refused.messages.length, 0);
  } finally {
    refuseReads = false;
  }
});

/**
 * RawSubscribe is a Subscribe call over a bare HTTP/2 stream that is paused from the start: unlike a grpc-js client
 * (which keeps reading the socket and buffers messages without bound), it really stops reading, so HTTP/2 flow
 * control stops the member's writes, as with a client that hangs.
 */
class RawSubscribe {
  readonly session: http2.ClientHttp2Session;
  readonly stream: http2.ClientHttp2Stream;
  readonly chunks: Buffer[] = [];
  trailers: http2.IncomingHttpHeaders | null = null;
  constructor(request: object) {
    const method = methodDefinitionOf(Naming, 'Subscribe');
    this.session = http2.connect(`http://${address}`);
    this.stream = this.session.request({ ':method': 'POST', ':path': method.path, 'content-type': 'application/grpc', te: 'trailers' });
    const body = method.requestSerialize(request);
    const frame = Buffer.alloc(5 + body.length);
    frame.writeUInt32BE(body.length, 1);
    body.copy(frame, 5);
    this.stream.end(frame);
    this.stream.pause();
    this.stream.on('trailers', (trailers) => (this.trailers = trailers));
  }
  readAll(): void {
    this.stream.on('data', (chunk: Buffer) => this.chunks.push(chunk));
    this.stream.resume();
  }
  /** revisions decodes the gRPC frames read so far into their revisions. */
  revisions(): number[] {
    const method = methodDefinitionOf(Naming, 'Subscribe');
    const bytes = Buffer.concat(this.chunks);
    const revisions: number[] = [];
    for (let offset = 0; offset + 5 <= bytes.length;) {
      const length = bytes.readUInt32BE(offset + 1);
      const message = method.responseDeserialize(bytes.subarray(offset + 5, offset + 5 + length)) as Message;
      revisions.push(Number(message['revision']));
      offset += 5 + length;
    }
    return revisions;
  }
  close(): void {
    this.session.destroy();
  }
}

test('Subscribe: a subscriber that never reads is cut off with RESOURCE_EXHAUSTED; the member holds at most one snapshot for it', async (t) => {
  const service = 'bulky';
  const key = { namespace: 'public', group: 'DEFAULT_GROUP', service };
  // Big instances: each snapshot is ~100 KiB, more than the HTTP/2 stream window (64 KiB) the client grants.
  const metadata = { blob: 'm'.repeat(1000) };
  for (let i = 0; i < 100; i++) await persistent(service, `10.6.0.${i}`, { metadata });
  const slow = new RawSubscribe({ service });
  t.after(() => slow.close());
  await waitFor(() => hub.subscriberCount(key) === 1, { timeoutMs: 2000, intervalMs: 5, what: 'the subscriber' });
  const cutOffsBefore = hub.stats().cutOffs;
  let maxPending = 0;
  let changes = 0;
  for (; changes < 60 && hub.stats().cutOffs === cutOffsBefore; changes++) {
    await naming.patchInstance(ctx, { ...key, ip: '10.6.0.0', port: 80, weight: (changes % 50) + 2 });
    await new Promise((resolve) => setTimeout(resolve, 5));
    maxPending = Math.max(maxPending, hub.stats().pendingSnapshots);
  }
  assert.equal(hub.stats().cutOffs, cutOffsBefore + 1, 'the slow subscriber was cut off');
  assert.ok(changes <= 4 + 4, `cut off after pushQueueMessagesMax (4) waiting snapshots beyond the few in flight (took ${changes} changes)`);
  assert.ok(maxPending <= 1, `at most one waiting snapshot (saw ${maxPending})`);
  assert.equal(hub.stats().pendingSnapshots, 0);
  assert.equal(hub.subscriberCount(key), 0);
  // The client finally reads: the snapshots in flight, then the status naming the last revision handed over.
  slow.readAll();
  const trailers = await waitFor(() => slow.trailers, { timeoutMs: 3000, intervalMs: 5, what: 'the trailers' });
  assert.equal(trailers['grpc-status'], String(grpc.status.RESOURCE_EXHAUSTED));
  assert.equal(trailers['cairn-error-code'], 'CAIRN_SUBSCRIBER_TOO_SLOW');
  const last = slow.revisions().at(-1);
  assert.ok(last !== undefined);
  assert.match(decodeURIComponent(String(trailers['grpc-message'])), new RegExp(`revision ${last} \\(epoch test-epoch\\)`), 'the status names the last revision handed over');
});

test('Session: started first, then answers in order; errors answer one request; ending the stream closes the session', async () => {
  const stream = session();
  const started = await stream.next(1, 'started');
  const sessionId = (started['started'] as Message)['sessionId'];
  assert.equal(sessionId, `session-${ephemeral.sessions.length}`);
  assert.equal((started['started'] as Message)['keepAliveIntervalMs'], 5000);
  const fake = ephemeral.sessions.at(-1)!;
  const watcher = subscribe({ service: 'eph' });
  await watcher.next(1, 'the watcher first snapshot');
  const call = stream.call as grpc.ClientDuplexStream<Message, Message>;
  call.write({ register: { service: 'eph', instance: { ip: '10.7.0.1', port: 81, ephemeral: true } } });
  call.write({ register: { service: 'eph', instance: { ip: '10.7.0.2', port: 81 } } }); // ephemeral=false: refused
  call.write({ register: { service: 'eph', instance: { ip: 'not an ip!', port: 81, ephemeral: true } } });
  call.write({ keepAlive: {} });
  call.write({ deregister: { service: 'eph', ip: '10.7.0.9', port: 81 } });
  const answers = [await stream.next(2, 'a1'), await stream.next(3, 'a2'), await stream.next(4, 'a3'), await stream.next(5, 'a4'), await stream.next(6, 'a5')];
  assert.equal(((answers[0]!['registered'] as Message)['instance'] as Message)['ip'], '10.7.0.1');
  assert.equal((answers[1]!['error'] as Message)['cairnCode'], 'CAIRN_INVALID_ARGUMENT');
  assert.equal((answers[1]!['error'] as Message)['code'], grpc.status.INVALID_ARGUMENT);
  assert.ok((answers[2]!['error'] as Message)['cairnCode'] !== undefined);
  assert.deepEqual(answers[3], { keepAlive: {}, response: 'keepAlive' });
  assert.equal((answers[4]!['deregistered'] as Message)['removed'], false);
  assert.equal([...ephemeral.instances.values()][0]?.owner, sessionId, 'the instance is bound to the session');
  const seen = await watcher.next(2, 'the ephemeral registration pushed');
  assert.deepEqual(ips(seen), ['10.7.0.1']);
  assert.ok(fake.keepAlives >= 3);
  call.end();
  assert.equal((await stream.ended('the clean end')).code, grpc.status.OK);
  assert.equal(fake.closeCalls, 1, 'ending the stream closed the session');
  assert.equal(ephemeral.instances.size, 0, 'its instances are gone');
  const emptied = await watcher.next(3, 'the removal pushed');
  assert.deepEqual(ips(emptied), []);
  watcher.call.cancel();
});

test('Session: a message with no request ends the stream with INVALID_ARGUMENT; a cancel closes the session', async () => {
  const bad = session();
  await bad.next(1, 'started');
  (bad.call as grpc.ClientDuplexStream<Message, Message>).write({});
  const status = await bad.ended('the malformed end');
  assert.equal(status.code, grpc.status.INVALID_ARGUMENT);
  await waitFor(() => ephemeral.sessions.at(-1)?.closeCalls === 1, { timeoutMs: 2000, intervalMs: 5, what: 'the session closed' });
  const cancelled = session();
  await cancelled.next(1, 'started');
  const fake = ephemeral.sessions.at(-1)!;
  cancelled.call.cancel();
  await waitFor(() => fake.closeCalls === 1, { timeoutMs: 2000, intervalMs: 5, what: 'the cancelled session closed' });
});

test('Session: a session the registry ends (silent past its timeout) ends the stream with ABORTED, CAIRN_SESSION_EXPIRED', async () => {
  const stream = session();
  await stream.next(1, 'started');
  const fake = ephemeral.sessions.at(-1)!;
  (stream.call as grpc.ClientDuplexStream<Message, Message>).write({ register: { service: 'eph2', instance: { ip: '10.8.0.1', port: 1, ephemeral: true } } });
  await stream.next(2, 'registered');
  fake.expire();
  const status = await stream.ended('the expiry');
  assert.equal(status.code, grpc.status.ABORTED);
  assert.equal(status.metadata.get('cairn-error-code')[0], 'CAIRN_SESSION_EXPIRED');
  assert.equal(ephemeral.instances.size, 0);
});

test('Session: a session the member\'s shutdown ends ends the stream with UNAVAILABLE, CAIRN_SHUTTING_DOWN, and removes nothing', async () => {
  const stream = session();
  await stream.next(1, 'started');
  const fake = ephemeral.sessions.at(-1)!;
  (stream.call as grpc.ClientDuplexStream<Message, Message>).write({ register: { service: 'eph3', instance: { ip: '10.9.0.1', port: 1, ephemeral: true } } });
  await stream.next(2, 'registered');
  fake.shutDown();
  const status = await stream.ended('the shutdown');
  assert.equal(status.code, grpc.status.UNAVAILABLE);
  assert.equal(status.metadata.get('cairn-error-code')[0], 'CAIRN_SHUTTING_DOWN');
  await waitFor(() => fake.closeCalls === 1, { timeoutMs: 2000, intervalMs: 5, what: 'the stream\'s end closed the session' });
  assert.equal(ephemeral.instances.size, 1, 'left for the client to redo at another member');
  ephemeral.dropOwner(fake.id);
});
