// Goal: a member that has just started refuses reads of ephemeral instances until its start-up Distro snapshot is
// loaded, or the load gave up (docs/ap.md "Start-up: reads wait for the snapshot"). Before, it answered what it
// happened to hold: an empty list for a service with live instances elsewhere (the nacos audit of session 32 saw
// `[]` for ~14 ms after a restart; a Java client applies it), or a partial one built from the beats it received
// while the load failed (a subscriber got 1 instance of 3). Nacos 1.4 answers 503 until its Distro load is done.
// What is checked:
// - while the snapshot is held back: HTTP v1 and v2 instance list and detail answer 503 CAIRN_MEMBER_BEHIND; gRPC
//   ListInstances, GetInstance and Subscribe end UNAVAILABLE with CAIRN_MEMBER_BEHIND; a persistent service (Raft
//   state) is served; ephemeral registrations and beats are taken; then, the snapshot loaded, the full list is
//   served everywhere and one log line says reads are served, how long they waited and that the load succeeded;
// - the load gives up (every round answered an error; no peer reachable): reads are served, with a warning;
// - a standalone member serves at once (nothing to load), even unstarted; a node closed while loading never serves;
// - a peer that refused the snapshot because its own Distro node was not running yet (a cluster starting together)
//   is asked again as soon as its first heartbeat arrives, not after the pause between rounds.
//
// Method: in-process DistroNodes on a MemoryDistroNetwork; the starting member's transport holds its snapshot call
// back on a gate (or fails it). Its NamingService (CP side: a direct proposer) is served by buildApp() through
// app.inject() and by the real gRPC server bound on this file's 127.0.1.252.
import { responsibleMember, serviceIdOf } from '../../src/ap/responsibility.ts';
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import { buildApp } from '../../src/api/http/app.ts';
import { buildGrpcServer, listenGrpcServer, shutdownGrpcServer } from '../../src/api/grpc/server.ts';
import { methodDefinitionOf } from '../../src/api/grpc/proto.ts';
import { CpRegistry } from '../../src/cp/cp-registry.ts';
import { RegistryStateMachine } from '../../src/cp/registry-state-machine.ts';
import { NamingService } from '../../src/naming/naming-service.ts';
import { SubscriptionHub } from '../../src/naming/subscriptions.ts';
import { DistroNode, type DistroLimits } from '../../src/ap/distro.ts';
import { DistroCallError, MemoryDistroNetwork, type DistroHandlers, type DistroTransport } from '../../src/ap/transport.ts';
import type { RecordData } from '../../src/ap/ephemeral-store.ts';
import { limits } from '../../src/limits.ts';
import { DirectProposer } from '../support/direct-proposer.ts';
import { waitFor } from '../support/cluster.ts';
import { call, FakeCluster, query } from '../api/http/harness.ts';

const host = '127.0.1.252';
const Naming = 'cairn.naming.v1.Naming';
const v1 = '/nacos/v1/ns';
const v2 = '/nacos/v2/ns';
const anonymous = { identity: null };
const fast: DistroLimits = { ...limits, distroSyncDelayMs: 5, distroHeartbeatIntervalMs: 50, distroVerifyIntervalMs: 200, distroSnapshotRetryDelayMs: 30, distroSnapshotRetriesMax: 3 };

/** LogLine is one line a node logged. */
interface LogLine {
  readonly level: 'info' | 'warn' | 'error';
  readonly fields: Record<string, unknown>;
  readonly message: string;
}

function capture(): { lines: LogLine[]; logger: { info(o: object, m: string): void; warn(o: object, m: string): void; error(o: object, m: string): void } } {
  const lines: LogLine[] = [];
  const at = (level: LogLine['level']) => (fields: object, message: string): void => void lines.push({ level, fields: fields as Record<string, unknown>, message });
  return { lines, logger: { info: at('info'), warn: at('warn'), error: at('error') } };
}

/** servingLines are the lines saying that reads of ephemeral instances are served. */
function servingLines(lines: readonly LogLine[]): LogLine[] {
  return lines.filter((line) => line.message.startsWith('serving ephemeral reads'));
}

/** HeldTransport is a member's transport whose snapshot calls go through `snapshot` (a gate or a failure). */
class HeldTransport implements DistroTransport {
  constructor(private readonly inner: DistroTransport, private readonly before: (to: string) => Promise<void>) {}
  heartbeat(to: string): Promise<void> {
    return this.inner.heartbeat(to);
  }
  sync(to: string, records: readonly RecordData[]): Promise<void> {
    return this.inner.sync(to, records);
  }
  verify(...args: Parameters<DistroTransport['verify']>): Promise<void> {
    return this.inner.verify(...args);
  }
  pull(...args: Parameters<DistroTransport['pull']>): ReturnType<DistroTransport['pull']> {
    return this.inner.pull(...args);
  }
  async snapshot(to: string, onChunk: (records: readonly RecordData[]) => void): Promise<void> {
    await this.before(to);
    return this.inner.snapshot(to, onChunk);
  }
  forward(...args: Parameters<DistroTransport['forward']>): ReturnType<DistroTransport['forward']> {
    return this.inner.forward(...args);
  }
  forwardBatch(...args: Parameters<DistroTransport['forwardBatch']>): ReturnType<DistroTransport['forwardBatch']> {
    return this.inner.forwardBatch(...args);
  }
  lastBeats(...args: Parameters<NonNullable<DistroTransport['lastBeats']>>): Promise<readonly number[]> {
    return this.inner.lastBeats!(...args);
  }
}

/** gate returns a promise and the function that opens it. */
function gate(): { readonly opened: Promise<void>; open(): void } {
  let open: () => void = () => undefined;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

const svc = (service: string, ip: string) => ({ namespace: 'public', group: 'DEFAULT_GROUP', service, ip, port: 80, cluster: 'DEFAULT' });
const fields = { weight: 1, enabled: true, healthy: true, metadata: { 'preserved.heart.beat.timeout': '600000', 'preserved.ip.delete.timeout': '600000' } };

async function registerAt(node: DistroNode, service: string, ip: string): Promise<void> {
  await node.write({ type: 'register', instance: { ...svc(service, ip), ...fields } }, anonymous);
}

/** memberOver builds a member's naming layer over `ephemeral`: HTTP app, and gRPC server on this file's address. */
async function memberOver(ephemeral: DistroNode) {
  const stateMachine = new RegistryStateMachine();
  const naming = new NamingService({ cp: new CpRegistry(new DirectProposer(stateMachine), stateMachine), ephemeral });
  const app = buildApp({ naming, cluster: new FakeCluster(), metrics: new Registry(), logger: false });
  await app.ready();
  const hub = new SubscriptionHub({ source: naming, cp: stateMachine, limits: { pushMergeWindowMs: 2, pushQueueMessagesMax: 4, pushStallMsMax: 60_000 }, epoch: 'test-epoch' });
  const server = buildGrpcServer({ naming, ready: () => true, subscriptions: hub });
  const address = `${host}:${await listenGrpcServer(server, host, 0)}`;
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  const close = async (): Promise<void> => {
    client.close();
    hub.close();
    await shutdownGrpcServer(server, 1000);
    await app.close();
  };
  return { naming, app, client, close };
}

type Message = Record<string, unknown>;

function unary(client: grpc.Client, name: 'ListInstances' | 'GetInstance', request: object): Promise<{ error: grpc.ServiceError | null; response: Message | null }> {
  const method = methodDefinitionOf(Naming, name);
  return new Promise((resolve) => {
    client.makeUnaryRequest(method.path, method.requestSerialize, method.responseDeserialize, request, (error: grpc.ServiceError | null, response?: unknown) => {
      resolve({ error, response: (response ?? null) as Message | null });
    });
  });
}

/** subscribeFirst opens a Subscribe stream and resolves with its first snapshot, or the status that ended it. */
function subscribeFirst(client: grpc.Client, service: string): Promise<{ snapshot: Message | null; error: grpc.ServiceError | null }> {
  const method = methodDefinitionOf(Naming, 'Subscribe');
  const stream = client.makeServerStreamRequest(method.path, method.requestSerialize, method.responseDeserialize, { service }) as grpc.ClientReadableStream<Message>;
  return new Promise((resolve) => {
    stream.on('data', (message: Message) => {
      resolve({ snapshot: message, error: null });
      stream.cancel();
    });
    stream.on('error', (error: grpc.ServiceError) => resolve({ snapshot: null, error }));
  });
}

function ipsOf(instances: unknown): string {
  return ((instances ?? []) as Array<{ ip: string }>).map((instance) => instance.ip).sort().join(',');
}

async function listV1(app: Awaited<ReturnType<typeof memberOver>>['app'], service: string) {
  const answer = await call(app, 'GET', `${v1}/instance/list?${query({ serviceName: service })}`);
  return { status: answer.status, code: answer.headers['cairn-error-code'], text: answer.text, ips: answer.status === 200 ? ipsOf((answer.json() as { hosts: unknown }).hosts) : null };
}

const nodes: DistroNode[] = [];
after(() => {
  for (const node of nodes) node.close();
});

function startNode(network: MemoryDistroNetwork, self: string, members: readonly string[], options: { limits?: DistroLimits; logger?: ReturnType<typeof capture>['logger']; hold?: (to: string) => Promise<void> } = {}): DistroNode {
  const node = new DistroNode({ self, members, limits: options.limits ?? fast, logger: options.logger ?? capture().logger });
  nodes.push(node);
  const transport = network.attach(self, node.handlers);
  node.start(options.hold === undefined ? transport : new HeldTransport(transport, options.hold));
  return node;
}

test('while its start-up snapshot is held back, a member refuses ephemeral reads (HTTP v1/v2, gRPC), serves persistent ones, takes writes; then serves the full list', async (t) => {
  const network = new MemoryDistroNetwork();
  const peer = startNode(network, 'p1', ['p1', 'r1']);
  await waitFor(() => peer.servesReads(), { timeoutMs: 2000, intervalMs: 5, what: 'the peer serving (r1 unreachable: it gives up at once)' });
  for (const ip of ['10.0.0.1', '10.0.0.2', '10.0.0.3']) await registerAt(peer, 'orders', ip);

  const held = gate();
  let asked = 0;
  const { lines, logger } = capture();
  const restarted = startNode(network, 'r1', ['p1', 'r1'], {
    logger,
    hold: async () => {
      asked++;
      await held.opened;
    },
  });
  const member = await memberOver(restarted);
  t.after(() => member.close());
  await waitFor(() => asked > 0, { timeoutMs: 2000, intervalMs: 5, what: 'the snapshot call' });
  assert.equal(restarted.servesReads(), false);

  await t.test('ephemeral reads are refused with CAIRN_MEMBER_BEHIND (503; gRPC UNAVAILABLE)', async () => {
    const list = await listV1(member.app, 'orders');
    assert.deepEqual([list.status, list.code], [503, 'CAIRN_MEMBER_BEHIND'], list.text);
    const refusals = [
      await call(member.app, 'GET', `${v2}/instance/list?${query({ serviceName: 'orders' })}`),
      await call(member.app, 'GET', `${v1}/instance?${query({ serviceName: 'orders', ip: '10.0.0.1', port: 80 })}`),
      await call(member.app, 'GET', `${v2}/instance?${query({ serviceName: 'orders', ip: '10.0.0.1', port: 80 })}`),
      // A service this member has never heard of may be ephemeral at its peers: refused too.
      await call(member.app, 'GET', `${v1}/instance/list?${query({ serviceName: 'unknown-here' })}`),
    ];
    for (const answer of refusals) assert.deepEqual([answer.status, answer.headers['cairn-error-code']], [503, 'CAIRN_MEMBER_BEHIND'], answer.text);
    assert.equal((refusals[0]!.json() as { code: number }).code, 30000, 'v2: the server-error envelope');
    for (const [name, request] of [['ListInstances', { service: 'orders' }], ['GetInstance', { service: 'orders', ip: '10.0.0.1', port: 80 }]] as const) {
      const answer = await unary(member.client, name, request);
      assert.equal(answer.error?.code, grpc.status.UNAVAILABLE, `${name}: ${answer.error?.message ?? 'answered'}`);
      assert.match(answer.error.details, /CAIRN_MEMBER_BEHIND/);
    }
    const subscription = await subscribeFirst(member.client, 'orders');
    assert.equal(subscription.snapshot, null, 'Subscribe sent no snapshot');
    assert.equal(subscription.error?.code, grpc.status.UNAVAILABLE);
    assert.match(subscription.error.details, /CAIRN_MEMBER_BEHIND/);
  });

  await t.test('a persistent service (Raft state) is served meanwhile', async () => {
    await member.naming.registerInstance(anonymous, { namespace: 'public', group: 'DEFAULT_GROUP', service: 'ledger', ip: '10.9.0.1', port: 80, ephemeral: false });
    const list = await listV1(member.app, 'ledger');
    assert.deepEqual([list.status, list.ips], [200, '10.9.0.1'], list.text);
    const detail = await call(member.app, 'GET', `${v1}/instance?${query({ serviceName: 'ledger', ip: '10.9.0.1', port: 80 })}`);
    assert.equal(detail.status, 200, detail.text);
    assert.equal(ipsOf((await unary(member.client, 'ListInstances', { service: 'ledger' })).response?.['instances']), '10.9.0.1');
    assert.ok((await subscribeFirst(member.client, 'ledger')).snapshot !== null);
  });

  await t.test('ephemeral writes and beats are taken', async () => {
    const register = await call(member.app, 'POST', `${v1}/instance?${query({ serviceName: 'orders', ip: '10.0.0.4', port: 80, metadata: JSON.stringify(fields.metadata) })}`);
    assert.equal(register.status, 200, register.text);
    const beat = await call(member.app, 'PUT', `${v1}/instance/beat?${query({ serviceName: 'orders', ip: '10.0.0.4', port: 80 })}`);
    assert.deepEqual([beat.status, beat.text], [200, '{"clientBeatInterval":5000,"code":10200,"lightBeatEnabled":true}']);
    // A light beat of an instance not loaded yet is no "unknown instance" (20404 would make a live client register
    // again): it is refused as retryable, and the client beats another member.
    // A service this member is responsible for, so that the beat is answered here, not by the loaded peer.
    const own = Array.from({ length: 64 }, (_, i) => `early-${i}`).find((name) => responsibleMember(serviceIdOf('public', 'DEFAULT_GROUP', name), ['p1', 'r1']) === 'r1');
    assert.ok(own !== undefined);
    const early = await call(member.app, 'PUT', `${v1}/instance/beat?${query({ serviceName: own, ip: '10.0.0.1', port: 80 })}`);
    assert.equal(early.status, 503, early.text);
    assert.match(early.text, /CAIRN_MEMBER_BEHIND/);
    assert.equal(restarted.servesReads(), false, 'still loading');
  });

  await t.test('once the snapshot is loaded, the full list is served, and one line says so', async () => {
    held.open();
    await waitFor(() => restarted.servesReads(), { timeoutMs: 2000, intervalMs: 5, what: 'reads served after the load' });
    const list = await listV1(member.app, 'orders');
    assert.deepEqual([list.status, list.ips], [200, '10.0.0.1,10.0.0.2,10.0.0.3,10.0.0.4'], list.text);
    const v2list = await call(member.app, 'GET', `${v2}/instance/list?${query({ serviceName: 'orders' })}`);
    assert.equal(ipsOf((v2list.json() as { data: { hosts: unknown } }).data.hosts), '10.0.0.1,10.0.0.2,10.0.0.3,10.0.0.4');
    assert.equal((await call(member.app, 'GET', `${v1}/instance?${query({ serviceName: 'orders', ip: '10.0.0.2', port: 80 })}`)).status, 200);
    assert.equal(ipsOf((await unary(member.client, 'ListInstances', { service: 'orders' })).response?.['instances']), '10.0.0.1,10.0.0.2,10.0.0.3,10.0.0.4');
    const got = await unary(member.client, 'GetInstance', { service: 'orders', ip: '10.0.0.3', port: 80 });
    assert.equal((got.response?.['instance'] as { ip?: string } | undefined)?.ip, '10.0.0.3', got.error?.message);
    assert.equal(ipsOf((await subscribeFirst(member.client, 'orders')).snapshot?.['instances']), '10.0.0.1,10.0.0.2,10.0.0.3,10.0.0.4');
    const unknown = await listV1(member.app, 'unknown-here');
    assert.deepEqual([unknown.status, unknown.ips], [200, '']);
    const served = servingLines(lines);
    assert.equal(served.length, 1, 'one line');
    assert.equal(served[0]!.level, 'info');
    assert.equal(served[0]!.fields['load'], 'loaded');
    assert.equal(served[0]!.fields['peer'], 'p1');
    assert.equal(typeof served[0]!.fields['waitedMs'], 'number');
    assert.deepEqual(await restarted.readsServed, { load: 'loaded', waitedMs: served[0]!.fields['waitedMs'] });
  });
});

test('a load that gives up serves what it has, with a warning: every round answered an error, or no peer reachable', async (t) => {
  await t.test('every round answered an error', async () => {
    const network = new MemoryDistroNetwork();
    startNode(network, 'p2', ['p2', 'r2']);
    const { lines, logger } = capture();
    let calls = 0;
    const refusing = gate();
    const restarted = startNode(network, 'r2', ['p2', 'r2'], {
      logger,
      hold: async (to) => {
        calls++;
        if (calls === 1) await refusing.opened;
        throw new DistroCallError(`Snapshot from ${to} failed: the peer answered an error (test)`, false);
      },
    });
    const member = await memberOver(restarted);
    t.after(() => member.close());
    await registerAt(restarted, 'beaten', '10.1.0.1');
    const list = await listV1(member.app, 'beaten');
    assert.deepEqual([list.status, list.code], [503, 'CAIRN_MEMBER_BEHIND'], 'refused while the rounds go on');
    refusing.open();
    const served = await restarted.readsServed;
    assert.equal(served.load, 'gave_up');
    assert.equal(calls, fast.distroSnapshotRetriesMax, 'every round asked');
    await waitFor(async () => {
      const list = await listV1(member.app, 'beaten');
      return list.status === 200 && list.ips === '10.1.0.1';
    }, { timeoutMs: 2000, intervalMs: 5, what: 'what it has, served' });
    const line = servingLines(lines);
    assert.equal(line.length, 1);
    assert.deepEqual([line[0]!.level, line[0]!.fields['load'], line[0]!.fields['reason'], line[0]!.fields['rounds']], ['warn', 'gave_up', 'every round failed', fast.distroSnapshotRetriesMax]);
  });

  await t.test('no peer reachable: it gives up after one round', async () => {
    const network = new MemoryDistroNetwork();
    const { lines, logger } = capture();
    const lone = startNode(network, 'r3', ['r3', 'gone1', 'gone2'], { logger, limits: { ...fast, distroSnapshotRetryDelayMs: 60_000 } });
    const served = await lone.readsServed;
    assert.equal(served.load, 'gave_up');
    const line = servingLines(lines);
    assert.deepEqual([line[0]!.level, line[0]!.fields['reason'], line[0]!.fields['rounds']], ['warn', 'no peer was reachable', 1]);
  });
});

test('a standalone member serves at once', async (t) => {
  const { lines, logger } = capture();
  const standalone = startNode(new MemoryDistroNetwork(), 'solo', ['solo'], { logger });
  assert.equal(standalone.servesReads(), true, 'right after start, before any await');
  const member = await memberOver(standalone);
  t.after(() => member.close());
  await registerAt(standalone, 'alone', '10.2.0.1');
  const list = await listV1(member.app, 'alone');
  assert.deepEqual([list.status, list.ips], [200, '10.2.0.1'], list.text);
  assert.deepEqual(servingLines(lines).map((line) => [line.fields['load'], line.fields['waitedMs'] as number < 1000]), [['standalone', true]]);
  // Served from its construction: a node that is never started (in-process tests) serves too.
  const unstarted = new DistroNode({ self: 'solo2', members: ['solo2'], limits: fast, logger: capture().logger });
  assert.equal(unstarted.servesReads(), true);
  assert.equal((await unstarted.readsServed).load, 'standalone');
});

test('a node closed while it loads never serves, and says so to whoever waits for it', async () => {
  const never = gate();
  const node = startNode(new MemoryDistroNetwork(), 'r5', ['p5', 'r5'], { hold: () => never.opened });
  await new Promise((resolve) => setTimeout(resolve, 20));
  node.close();
  assert.equal((await node.readsServed).load, 'closed');
  assert.equal(node.servesReads(), false);
});

test('a peer that refused the snapshot (its Distro not running yet) is asked again at its first heartbeat, not after the pause', async () => {
  const network = new MemoryDistroNetwork();
  // p4's process is up but its Distro node is not: its answers refuse (as grpc-distro answers UNAVAILABLE then).
  const notRunning = (): never => {
    throw new Error('distro is not running on this member (test)');
  };
  const starting: DistroHandlers = {
    onHeartbeat: notRunning, onSync: notRunning, onVerify: notRunning, onPull: notRunning, onSnapshot: notRunning,
    onForward: notRunning, onForwardBatch: notRunning, onLastBeats: notRunning,
  };
  network.attach('p4', starting);
  const slow = { ...fast, distroSnapshotRetryDelayMs: 60_000 };
  const { lines, logger } = capture();
  const first = startNode(network, 'r4', ['p4', 'r4'], { logger, limits: slow });
  await waitFor(() => lines.some((line) => line.message.startsWith('distro snapshot load failed')), { timeoutMs: 2000, intervalMs: 5, what: 'the refused round' });
  assert.equal(first.servesReads(), false, 'p4 was reachable: no give-up');
  const began = Date.now();
  startNode(network, 'p4', ['p4', 'r4'], { limits: slow });
  const served = await first.readsServed;
  assert.equal(served.load, 'loaded');
  assert.ok(Date.now() - began < 5000, `loaded ${Date.now() - began} ms after p4's node started (the pause is 60 s)`);
});
