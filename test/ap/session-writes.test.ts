// Goal: a session's instances follow one rule whatever is written to them and wherever it is sent (docs/ap.md "Beats,
// expiry and sessions"; the 2026-11-24 gRPC audit found each of these broken):
// - an operator's update or patch of a session's instance, sent to the session's own member, keeps it the session's:
//   renewed while the session lives, removed when it closes (it used to be unbound, and expired under a live session);
// - a registration still on its way when its session closes is removed again when its answer comes back, long before
//   it would expire (it used to stay, held by no live session, until expiry);
// - a live session is the authority for its instances, as a Nacos 2.x connection is for its client's: a deregistration
//   by anyone else (another session, a unary one), at any member, the session's own included, is undone within a
//   renewal round; the session's own deregistration is final (the session's own member used to make any
//   deregistration final, the others none);
// - session quotas answer RESOURCE_EXHAUSTED codes of their own: CAIRN_SESSION_INSTANCES_EXCEEDED (not retryable) and
//   CAIRN_SESSIONS_EXCEEDED (retryable), not CAIRN_INVALID_ARGUMENT;
// - the member's shutdown (endSessions) ends its sessions with CAIRN_SHUTTING_DOWN and deregisters nothing.
//
// Method: real DistroNodes in one process over MemoryDistroNetwork with short timings (renewals every 100 ms), the
// forwards of the session's member wrapped where a test must hold one on its way; outcomes polled with bounded waits.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { limits } from '../../src/limits.ts';
import { DistroNode, type DistroLimits } from '../../src/ap/distro.ts';
import { DistroCallError, MemoryDistroNetwork, type DistroTransport } from '../../src/ap/transport.ts';
import { serviceIdOfKey } from '../../src/ap/ephemeral-store.ts';
import { responsibleMember } from '../../src/ap/responsibility.ts';
import { GrpcStatus, isCairnError } from '../../src/errors.ts';
import type { InstanceKey, ServiceKey } from '../../src/naming/model.ts';
import { holdsFor, waitFor } from '../support/cluster.ts';
import { startNodesCountingRepairs } from '../support/distro-nodes.ts';

const fast: DistroLimits = {
  ...limits,
  distroSyncDelayMs: 20,
  distroVerifyIntervalMs: 200,
  distroHeartbeatIntervalMs: 50,
  distroHeartbeatMissesMax: 2,
  distroExpiryTickMs: 20,
  distroSnapshotRetryDelayMs: 50,
  beatIntervalMs: 100,
  distroSessionTimeoutMs: 400,
};
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
const anonymous = { identity: null };
const members = ['m1', 'm2', 'm3'];
/** shortLived expires an instance 600 ms after its last renewal: what a session stops renewing goes quickly. */
const shortLived = { 'preserved.heart.beat.interval': '100', 'preserved.heart.beat.timeout': '300', 'preserved.ip.delete.timeout': '600' };

function startNodes(network: MemoryDistroNetwork, options: Partial<DistroLimits> = {}, m1Forwards?: (transport: DistroTransport) => Pick<DistroTransport, 'forwardBatch'>): DistroNode[] {
  return members.map((id) => {
    const node = new DistroNode({ self: id, members, limits: { ...fast, ...options }, logger: quiet });
    const transport = network.attach(id, node.handlers);
    node.start(id !== 'm1' || m1Forwards === undefined ? transport : {
      heartbeat: (to) => transport.heartbeat(to),
      sync: (to, records) => transport.sync(to, records),
      verify: (to, checksums) => transport.verify(to, checksums),
      pull: (to, keys) => transport.pull(to, keys),
      snapshot: (to, onChunk) => transport.snapshot(to, onChunk),
      forward: (to, request) => transport.forward(to, request),
      lastBeats: (to, query) => transport.lastBeats?.(to, query) ?? Promise.reject(new DistroCallError('unimplemented', true, true)),
      ...m1Forwards(transport),
    });
    return node;
  });
}

function closeAll(nodes: readonly DistroNode[]): void {
  for (const node of nodes) node.close();
}

function key(service: string, ip: string, port = 80): InstanceKey {
  return { namespace: 'public', group: 'DEFAULT_GROUP', service, cluster: 'DEFAULT', ip, port };
}

/** serviceOf finds a service name whose responsible member among all three is (or is not) m1. */
function serviceOf(prefix: string, m1Responsible: boolean): string {
  const name = Array.from({ length: 200 }, (_, k) => `${prefix}${k}`)
    .find((candidate) => (responsibleMember(serviceIdOfKey(key(candidate, '')), members) === 'm1') === m1Responsible);
  assert.ok(name !== undefined);
  return name;
}

function register(node: DistroNode, k: InstanceKey, metadata: Record<string, string>, owner?: string) {
  const instance = { ...k, weight: 1, enabled: true, healthy: true, metadata };
  return node.write(owner === undefined ? { type: 'register', instance } : { type: 'register', instance, owner }, anonymous);
}

function view(node: DistroNode, service: ServiceKey): string {
  return node.instancesOf(service).map((instance) => `${instance.ip}:${instance.port}`).join(',');
}

function listedEverywhere(nodes: readonly DistroNode[], svc: InstanceKey): boolean {
  return nodes.every((node) => view(node, svc) === `${svc.ip}:${svc.port}`);
}

function goneEverywhere(nodes: readonly DistroNode[], svc: InstanceKey): boolean {
  return nodes.every((node) => view(node, svc) === '');
}

test('an operator\'s update or patch at the session\'s own member keeps the instance the session\'s: renewed, then removed with it', async (t) => {
  const network = new MemoryDistroNetwork();
  const nodes = startNodes(network);
  t.after(() => closeAll(nodes));
  const [m1] = nodes as [DistroNode];
  const session = m1.openSession();
  const keepAlive = setInterval(() => session.keepAlive(), 50);
  t.after(() => clearInterval(keepAlive));
  // One instance whose responsible member is m1 itself, one whose is another member.
  const services = [key(serviceOf('u', true), '10.0.1.1'), key(serviceOf('v', false), '10.0.1.2')];
  for (const svc of services) await register(m1, svc, shortLived, session.id);
  for (const svc of services) await waitFor(() => listedEverywhere(nodes, svc), { timeoutMs: 3000, what: `${svc.service} registered everywhere` });
  const [first, second] = services as [InstanceKey, InstanceKey];
  await m1.write({ type: 'update', instance: { ...first, weight: 5, enabled: true, healthy: true, metadata: shortLived } }, anonymous);
  await m1.write({ type: 'patch', key: second, enabled: false }, anonymous);
  // Ten times the delete timeout: without the session's renewals they would be gone.
  await holdsFor(() => services.every((svc) => listedEverywhere(nodes, svc)), { durationMs: 1500, intervalMs: 50, what: 'the updated instances kept by their session' });
  assert.equal(m1.instancesOf(first)[0]?.weight, 5);
  assert.equal(m1.instancesOf(second)[0]?.enabled, false);
  await session.close();
  for (const svc of services) await waitFor(() => goneEverywhere(nodes, svc), { timeoutMs: 3000, what: `${svc.service} removed with its session` });
});

test('a registration on its way when its session closes is removed when its answer comes back, not left to expire', async (t) => {
  // The race of a client that sends `register` and cancels its stream at once, the responsible member remote:
  //   1. m1 forwards the registration; the test holds the forward on its way.
  //   2. The session closes (it holds nothing yet, so its close removes nothing).
  //   3. The forward lands: a registration owned by a closed session, which nothing renews (and, before the fix,
  //      nothing removed: it stayed listed until it expired, 30 s later).
  const network = new MemoryDistroNetwork();
  let hold: Promise<void> | null = null;
  let release: () => void = () => undefined;
  let held = false;
  const nodes = startNodes(network, {}, (transport) => ({
    forwardBatch: async (to, requests, sentAtMs) => {
      if (hold !== null && requests.some((request) => request.type === 'register')) {
        held = true;
        await hold;
      }
      return transport.forwardBatch(to, requests, sentAtMs);
    },
  }));
  t.after(() => closeAll(nodes));
  const [m1] = nodes as [DistroNode];
  const svc = key(serviceOf('w', false), '10.0.2.1');
  const session = m1.openSession();
  hold = new Promise((resolve) => (release = resolve));
  const registration = register(m1, svc, {}, session.id);
  await waitFor(() => held, { timeoutMs: 3000, what: 'the registration held on its way' });
  const closing = session.close();
  release();
  await assert.rejects(registration, (error: unknown) => isCairnError(error, 'CAIRN_SESSION_CLOSED'));
  await closing;
  // Default timeouts (removed after 30 s without renewal): only a removal can take it away this soon.
  await waitFor(() => goneEverywhere(nodes, svc), { timeoutMs: 3000, what: 'the late registration removed everywhere' });
});

test('a live session is the authority for its instances: only its own deregistration is final, on every member', async (t) => {
  // Nacos 2.x: a connection's instances are removed by that connection (or its end) only; a deregistration through
  // the Open API or another connection does not stick while the connection lives. Cairn: a deregistration by anyone
  // else is undone by the session within a renewal round, wherever it was sent.
  const network = new MemoryDistroNetwork();
  const { nodes, count } = startNodesCountingRepairs(network, members, fast, quiet);
  t.after(() => closeAll(nodes));
  const [m1, m2] = nodes as [DistroNode, DistroNode];
  const owner = m1.openSession();
  const other = m1.openSession();
  const keepAlive = setInterval(() => {
    owner.keepAlive();
    other.keepAlive();
  }, 50);
  t.after(() => clearInterval(keepAlive));
  const services = [key(serviceOf('a', true), '10.0.3.1'), key(serviceOf('b', false), '10.0.3.2')];
  for (const svc of services) {
    await register(m1, svc, { zone: 'a' }, owner.id);
    await waitFor(() => listedEverywhere(nodes, svc), { timeoutMs: 3000, what: `${svc.service} registered everywhere` });
    // Another session's deregistration at the session's own member, then at another member; a unary one at the
    // session's own member, then at another member.
    for (const [node, by] of [[m1, other.id], [m2, other.id], [m1, undefined], [m2, undefined]] as const) {
      const before = count.repairs;
      const answer = await node.write(by === undefined ? { type: 'deregister', key: svc } : { type: 'deregister', key: svc, owner: by }, anonymous);
      assert.deepEqual('removed' in answer && answer.removed, true, `${svc.service}: removed at ${node.self}`);
      await waitFor(() => count.repairs > before && listedEverywhere(nodes, svc), { timeoutMs: 3000, what: `${svc.service} restored after a deregistration by ${by ?? 'a unary call'} at ${node.self}` });
      assert.deepEqual(m1.instancesOf(svc).map((instance) => instance.metadata), [{ zone: 'a' }]);
    }
    // The session's own deregistration is final.
    await m1.write({ type: 'deregister', key: svc, owner: owner.id }, anonymous);
    await waitFor(() => goneEverywhere(nodes, svc), { timeoutMs: 3000, what: `${svc.service} deregistered by its session` });
    await holdsFor(() => goneEverywhere(nodes, svc), { durationMs: 10 * fast.beatIntervalMs, intervalMs: 20, what: `${svc.service} stays deregistered` });
  }
});

test('session quotas answer RESOURCE_EXHAUSTED: CAIRN_SESSION_INSTANCES_EXCEEDED per session, CAIRN_SESSIONS_EXCEEDED (retryable) per member', async (t) => {
  const network = new MemoryDistroNetwork();
  const nodes = startNodes(network, { distroSessionsMax: 1, distroSessionInstancesMax: 2 });
  t.after(() => closeAll(nodes));
  const [m1] = nodes as [DistroNode];
  const session = m1.openSession();
  assert.throws(() => m1.openSession(), (error: unknown) => isCairnError(error, 'CAIRN_SESSIONS_EXCEEDED')
    && error.grpcStatus === GrpcStatus.RESOURCE_EXHAUSTED && error.retryable && error.details?.['limit'] === 1);
  await register(m1, key('q', '10.0.4.1'), {}, session.id);
  await register(m1, key('q', '10.0.4.2'), {}, session.id);
  // Registering one it keeps again is no new instance.
  await register(m1, key('q', '10.0.4.2'), {}, session.id);
  await assert.rejects(register(m1, key('q', '10.0.4.3'), {}, session.id), (error: unknown) => isCairnError(error, 'CAIRN_SESSION_INSTANCES_EXCEEDED')
    && error.grpcStatus === GrpcStatus.RESOURCE_EXHAUSTED && !error.retryable && error.details?.['limit'] === 2);
  await session.close();
  // Room again once the session ended.
  m1.openSession();
});

test('the member\'s shutdown ends its sessions with CAIRN_SHUTTING_DOWN and deregisters nothing', async (t) => {
  const network = new MemoryDistroNetwork();
  const nodes = startNodes(network);
  t.after(() => closeAll(nodes));
  const [m1, m2] = nodes as [DistroNode, DistroNode];
  const session = m1.openSession();
  const svc = key(serviceOf('s', false), '10.0.5.1');
  await register(m1, svc, {}, session.id);
  await waitFor(() => listedEverywhere(nodes, svc), { timeoutMs: 3000, what: 'registered everywhere' });
  m1.endSessions();
  await assert.rejects(session.closed, (error: unknown) => isCairnError(error, 'CAIRN_SHUTTING_DOWN'));
  assert.throws(() => m1.openSession(), (error: unknown) => isCairnError(error, 'CAIRN_SHUTTING_DOWN'));
  await assert.rejects(register(m1, key('s', '10.0.5.2'), {}, session.id), (error: unknown) => isCairnError(error, 'CAIRN_SESSION_CLOSED'));
  // The stream's end closes the session too (gRPC cancels it): still nothing is removed.
  await session.close();
  await holdsFor(() => view(m2, svc) === '10.0.5.1:80', { durationMs: 500, intervalMs: 20, what: 'the instance left to its redo or its expiry' });
});
