// Goal: Distro nodes (src/ap/distro.ts) keep the AP path's promises among several members (DESIGN.md "The AP
// path", NACOS.md §6): a write sent to any member lands at the responsible member and reaches every member; both
// sides of a partition keep taking writes, and after it heals every member agrees (checksums and contents), with
// deregistered instances staying gone; a member that starts late loads a snapshot from a peer; a forward to a member
// that just died is retried at the recomputed responsible member; sessions keep their instances until closed or
// silent; beats re-register an unknown instance from their body; a throwing change listener breaks nothing;
// forwards are batched per peer: many beats at a non-responsible member travel as few ForwardBatch calls and each is
// answered on its own, a failed batch retries each request once at the recomputed member (then answers
// CAIRN_DISTRO_UNAVAILABLE), and a full per-peer queue refuses at once with that typed retryable error, counted.
//
// Method: real DistroNodes in one process over MemoryDistroNetwork (the in-memory twin of the gRPC transport, with
// partitions that fail calls as refused connections do), real timers with short timings (limits overridden: sync
// every 20 ms, verify every 200 ms, heartbeats every 50 ms); outcomes are polled with bounded waits, never slept on.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { limits } from '../../src/limits.ts';
import { DistroNode, type DistroLimits } from '../../src/ap/distro.ts';
import { DistroCallError, MemoryDistroNetwork, type DistroTransport, type ForwardRequest } from '../../src/ap/transport.ts';
import { serviceIdOfKey } from '../../src/ap/ephemeral-store.ts';
import { responsibleMember } from '../../src/ap/responsibility.ts';
import { isCairnError } from '../../src/errors.ts';
import type { InstanceKey, ServiceKey } from '../../src/naming/model.ts';
import { waitFor } from '../support/cluster.ts';
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

function startNodes(network: MemoryDistroNetwork, ids: readonly string[], options: Partial<DistroLimits> = {}): DistroNode[] {
  return ids.map((id) => {
    const node = new DistroNode({ self: id, members, limits: { ...fast, ...options }, logger: quiet });
    node.start(network.attach(id, node.handlers));
    return node;
  });
}

function key(service: string, ip: string, port = 80): InstanceKey {
  return { namespace: 'public', group: 'DEFAULT_GROUP', service, cluster: 'DEFAULT', ip, port };
}

function register(node: DistroNode, k: InstanceKey, metadata: Record<string, string> = {}, owner?: string) {
  const instance = { ...k, weight: 1, enabled: true, healthy: true, metadata };
  return node.write(owner === undefined ? { type: 'register', instance } : { type: 'register', instance, owner }, anonymous);
}

function view(node: DistroNode, service: ServiceKey): string {
  return node.instancesOf(service).map((instance) => `${instance.ip}:${instance.port}`).join(',');
}
test('a closed session\'s deregistration answered with an error (a batch refused past its fence) is tried again (jepsen-like D6 49203)', async (t) => {
  // The responsible member answers the close's deregistration with an error for a while, as it does a batch that
  // reached it past its fence: nothing removed. Before the fix the answer counted as done and the instance stayed,
  // held by a closed session, until expiry; now the close tries again, and the instance is removed once it lands.
  const network = new MemoryDistroNetwork();
  let refuse = false;
  let refused = 0;
  const nodes = nodesWithM1Forwards(network, (transport) => ({
    forward: (to, request) => transport.forward(to, request),
    forwardBatch: async (to, requests, sentAtMs) => {
      if (!refuse || !requests.some((request) => request.type === 'deregister')) return transport.forwardBatch(to, requests, sentAtMs);
      refused += requests.length;
      return requests.map(() => ({ ok: false, code: 'CAIRN_DISTRO_UNAVAILABLE', message: 'arrived past its fence; not applied (test)' }) as const);
    },
  }));
  t.after(() => closeAll(nodes));
  const [m1] = nodes as [DistroNode];
  // A service another member is responsible for, so m1's close forwards its deregistration.
  const name = Array.from({ length: 200 }, (_, k) => `f${k}`).find((candidate) => responsibleMember(serviceIdOfKey(key(candidate, '')), members) !== 'm1');
  assert.ok(name !== undefined);
  const svc = key(name, '10.0.0.10');
  const session = m1.openSession();
  await register(m1, svc, {}, session.id);
  await converged(nodes, [svc], 'the session\'s instance everywhere');
  refuse = true;
  setTimeout(() => {
    refuse = false;
  }, 300);
  await session.close();
  assert.ok(refused > 0, 'the deregistration was refused at least once');
  await waitFor(() => nodes.every((node) => view(node, svc) === ''), { timeoutMs: 3000, what: 'the closed session\'s instance removed everywhere' });
});

test('a closed session\'s removal answered by a member still behind its registration is tried again (jepsen-like D6 49203)', async (t) => {
  // The responsible member m1 missed the later session's registration (applied at another member while m1 was cut off
  // from the session's member, and m1 deaf to replication: sync and verify to it are dropped) and holds an older copy,
  // the earlier session's registration. The later session's close reaches m1, which removes nothing (another session
  // holds it there). Before the fix that ended the close: once m1 caught up, the later registration stood, held by a
  // closed session, until expiry (removeAfterMs, 30 s; in D6 far longer, as churn restarts it). Now m1 answers the
  // lineage it holds, older than the session's, and the close tries again until m1 has caught up and removes it.
  const network = new MemoryDistroNetwork();
  let deaf = false;
  const nodes = members.map((id) => {
    const node = new DistroNode({ self: id, members, limits: fast, logger: quiet });
    const handlers = id !== 'm1' ? node.handlers : {
      ...node.handlers,
      onSync: (from: string, records: Parameters<typeof node.handlers.onSync>[1]) => (deaf ? undefined : node.handlers.onSync(from, records)),
      onVerify: (from: string, checksums: Parameters<typeof node.handlers.onVerify>[1]) => (deaf ? undefined : node.handlers.onVerify(from, checksums)),
    };
    node.start(network.attach(id, handlers));
    return node;
  });
  t.after(() => closeAll(nodes));
  const [m1, m2, m3] = nodes as [DistroNode, DistroNode, DistroNode];
  // A service m1 is responsible for among all three.
  const name = Array.from({ length: 200 }, (_, k) => `b${k}`).find((candidate) => responsibleMember(serviceIdOfKey(key(candidate, '')), members) === 'm1');
  assert.ok(name !== undefined);
  const svc = key(name, '10.0.0.9');
  const earlier = m2.openSession();
  const later = m3.openSession();
  const keepAlive = setInterval(() => {
    earlier.keepAlive();
    later.keepAlive();
  }, 50);
  t.after(() => clearInterval(keepAlive));
  await register(m2, svc, {}, earlier.id);
  await converged(nodes, [svc], 'the earlier session\'s registration everywhere');

  deaf = true;
  network.cut('m3', 'm1');
  await waitFor(() => !m3.liveMembers().includes('m1'), { timeoutMs: 3000, what: 'm3 to see m1 down' });
  await register(m3, svc, {}, later.id);
  await waitFor(() => m2.store.copyOf(svc)?.owner === later.id, { timeoutMs: 3000, what: 'the later registration at m2' });
  assert.equal(m1.store.copyOf(svc)?.owner, earlier.id, 'm1 missed the later registration');
  network.heal();
  await waitFor(() => m3.liveMembers().includes('m1'), { timeoutMs: 3000, what: 'm3 to see m1 again' });

  // The later session closes first: m1 holds the earlier session's copy, removes nothing.
  const closed = later.close();
  await new Promise((resolve) => setTimeout(resolve, 100));
  // The earlier session closes: m1 removes its registration (a tombstone of the older lineage, which loses to the
  // later registration elsewhere).
  await earlier.close();
  assert.equal(m1.store.copyOf(svc)?.live, false);
  // m1 stays behind for a while: every attempt of the later close meanwhile reaches it and removes nothing.
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.equal(view(m3, svc), '10.0.0.9:80', 'still listed while m1 is behind');
  deaf = false;
  await closed;
  await waitFor(() => nodes.every((node) => view(node, svc) === ''), { timeoutMs: 3000, what: 'the later session\'s registration removed everywhere' });
});

/** nodesWithM1Forwards starts the three members; m1's forwards go through `forwards` (the seam the test controls). */
function nodesWithM1Forwards(network: MemoryDistroNetwork, forwards: (transport: DistroTransport) => Pick<DistroTransport, 'forward' | 'forwardBatch'>): DistroNode[] {
  return members.map((id) => {
    const node = new DistroNode({ self: id, members, limits: fast, logger: quiet });
    const transport = network.attach(id, node.handlers);
    node.start(id !== 'm1' ? transport : {
      heartbeat: (to) => transport.heartbeat(to),
      sync: (to, records) => transport.sync(to, records),
      verify: (to, checksums) => transport.verify(to, checksums),
      pull: (to, keys) => transport.pull(to, keys),
      snapshot: (to, onChunk) => transport.snapshot(to, onChunk),
      lastBeats: (to, query) => transport.lastBeats?.(to, query) ?? Promise.reject(new DistroCallError('unimplemented', true, true)),
      ...forwards(transport),
    });
    return node;
  });
}

async function converged(nodes: readonly DistroNode[], services: readonly ServiceKey[], what: string): Promise<void> {
  await waitFor(() => {
    for (const service of services) {
      const views = nodes.map((node) => view(node, service));
      const sums = nodes.map((node) => node.store.checksum(serviceIdOfKey(service)));
      if (new Set(views).size !== 1 || new Set(sums).size !== 1) throw new Error(`${service.service}: ${views.join(' | ')}`);
    }
    return true;
  }, { timeoutMs: 5000, intervalMs: 20, what });
}

function closeAll(nodes: readonly DistroNode[]): void {
  for (const node of nodes) node.close();
}

/** nonResponsible finds a node that is not responsible for `service`. */
function nonResponsible(nodes: readonly DistroNode[], service: ServiceKey): DistroNode {
  const responsible = nodes[0]!.responsibleFor(serviceIdOfKey(service));
  const found = nodes.find((node) => node.liveMembers().length === 3 && responsible !== node.self);
  assert.ok(found !== undefined);
  return found;
}

test('a write at a non-responsible member is forwarded, applied once, and reaches every member', async (t) => {
  const network = new MemoryDistroNetwork();
  const nodes = startNodes(network, members);
  t.after(() => closeAll(nodes));
  const svc = key('fwd', '10.0.0.1');
  const via = nonResponsible(nodes, svc);
  const result = await register(via, svc);
  assert.ok('instance' in result && result.instance.ephemeral);
  await converged(nodes, [svc], 'the forwarded registration on every member');
  assert.equal(view(nodes[0]!, svc), '10.0.0.1:80');
  const removed = await via.write({ type: 'deregister', key: svc }, anonymous);
  assert.deepEqual('removed' in removed && removed.removed, true);
  await converged(nodes, [svc], 'the deregistration on every member');
  assert.equal(view(nodes[0]!, svc), '');
});

test('a partition: both sides take writes; after the heal all agree and deregistered instances stay gone', async (t) => {
  const network = new MemoryDistroNetwork();
  const nodes = startNodes(network, members);
  t.after(() => closeAll(nodes));
  const [m1, m2, m3] = nodes as [DistroNode, DistroNode, DistroNode];
  const services = ['p0', 'p1', 'p2', 'p3', 'p4', 'p5'].map((name) => key(name, '10.0.0.1'));
  for (const svc of services) await register(m1, svc);
  await converged(nodes, services, 'the first registrations everywhere');
  network.isolate('m3');
  await waitFor(() => m3.liveMembers().length === 1 && m1.liveMembers().length === 2, { timeoutMs: 2000, what: 'both sides to see the partition' });
  for (const svc of services) {
    await register(m1, { ...svc, ip: '10.0.1.1' });
    await register(m3, { ...svc, ip: '10.0.3.3' });
    await m1.write({ type: 'deregister', key: svc }, anonymous);
  }
  await register(m3, key('only-minority', '10.9.9.9'));
  assert.equal(view(m3, services[0]!), '10.0.0.1:80,10.0.3.3:80');
  assert.equal(view(m2, services[0]!), '10.0.1.1:80');
  network.heal();
  const all = [...services, key('only-minority', '10.9.9.9')];
  await converged(nodes, all, 'every member after the heal');
  assert.equal(view(m2, services[0]!), '10.0.1.1:80,10.0.3.3:80', 'both sides\' writes survive; the deregistered one stays gone');
  assert.equal(view(m1, key('only-minority', '')), '10.9.9.9:80');
});

test('a member cut off from most of the group does not expire the instances whose clients beat on the other side (session 32)', async (t) => {
  // Before: m3, alone in its view and so responsible for every service there, flagged and removed the instances
  // homed on m1 and m2, and its tombstones won the merge after the heal: m1 and m2, which heard those clients beat
  // throughout, lost them too until the clients registered again.
  const network = new MemoryDistroNetwork();
  const nodes = startNodes(network, members);
  t.after(() => closeAll(nodes));
  const [m1, m2, m3] = nodes as [DistroNode, DistroNode, DistroNode];
  const timings = { 'preserved.heart.beat.interval': '100', 'preserved.heart.beat.timeout': '300', 'preserved.ip.delete.timeout': '600' };
  const services = Array.from({ length: 6 }, (_, i) => key(`majority-${i}`, '10.0.7.1'));
  for (const svc of services) await register(m1, svc, timings);
  await converged(nodes, services, 'the registrations everywhere');
  network.isolate('m3');
  await waitFor(() => m3.liveMembers().length === 1 && m1.liveMembers().length === 2, { timeoutMs: 2000, what: 'both sides to see the partition' });
  // The clients keep beating on the majority side for ten delete timeouts.
  for (const started = Date.now(); Date.now() - started < 6000;) {
    for (const svc of services) await m1.beat({ key: svc }, anonymous);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.equal(services.map((svc) => view(m3, svc)).join(';'), services.map(() => '10.0.7.1:80').join(';'), 'the minority member kept them');
  network.heal();
  await waitFor(() => m3.liveMembers().length === 3, { timeoutMs: 2000, what: 'm3 to see its peers again' });
  for (let round = 0; round < 10; round++) {
    for (const svc of services) await m1.beat({ key: svc }, anonymous);
    await new Promise((resolve) => setTimeout(resolve, 100));
    for (const node of [m1, m2]) {
      assert.equal(services.filter((svc) => view(node, svc) === '').length, 0, `after the heal (round ${round}), a member that heard the clients lost none`);
    }
  }
});

test('members follow the group membership: a joined member is a peer once it answers, gets everything and its share; one that left is dropped', async (t) => {
  const network = new MemoryDistroNetwork();
  const two = ['m1', 'm2'];
  const nodes = two.map((id) => {
    const node = new DistroNode({ self: id, members: two, limits: fast, logger: quiet });
    node.start(network.attach(id, node.handlers));
    return node;
  });
  const [m1, m2] = nodes as [DistroNode, DistroNode];
  t.after(() => closeAll(nodes));
  const services = Array.from({ length: 12 }, (_, i) => key(`grow${i}`, '10.0.0.1'));
  for (const svc of services) await register(m1, svc);
  await converged(nodes, services, 'the registrations on both members');
  // m3 joins: the group's configuration names it; it starts with that configuration (as a --join member does).
  const three = ['m1', 'm2', 'm3'];
  const m3 = new DistroNode({ self: 'm3', members: three, limits: fast, logger: quiet });
  m3.start(network.attach('m3', m3.handlers));
  t.after(() => m3.close());
  for (const node of nodes) node.setMembers(three);
  await waitFor(() => m1.liveMembers().length === 3 && m2.liveMembers().length === 3, { timeoutMs: 2000, what: 'm3 live at m1 and m2' });
  await converged([m1, m2, m3], services, 'm3 to hold every service');
  const taken = services.find((svc) => responsibleMember(serviceIdOfKey(svc), three) === 'm3');
  assert.ok(taken !== undefined, 'm3 is responsible for some of the 12 services');
  assert.equal(m1.responsibleFor(serviceIdOfKey(taken)), 'm3', 'the joined member got its share');
  await register(m1, { ...taken, ip: '10.0.0.2' });
  await converged([m1, m2, m3], [taken], 'a write forwarded to m3 reaching everyone');
  // m3 leaves the group: the others drop it at once and take its share back.
  for (const node of nodes) node.setMembers(two);
  assert.deepEqual(m1.liveMembers(), two);
  assert.equal(m1.responsibleFor(serviceIdOfKey(taken)), responsibleMember(serviceIdOfKey(taken), two));
  m3.close();
  await register(m2, { ...taken, ip: '10.0.0.3' });
  await converged([m1, m2], [taken], 'writes after m3 left');
  assert.equal(view(m1, taken), '10.0.0.1:80,10.0.0.2:80,10.0.0.3:80');
});

test('a member that starts late loads a snapshot from a peer, tombstones included', async (t) => {
  const network = new MemoryDistroNetwork();
  const nodes = startNodes(network, ['m1', 'm2']);
  t.after(() => closeAll(nodes));
  for (let i = 0; i < 20; i++) await register(nodes[0]!, key(`snap${i}`, '10.0.0.1'));
  await nodes[0]!.write({ type: 'deregister', key: key('snap0', '10.0.0.1') }, anonymous);
  const [late] = startNodes(network, ['m3']);
  assert.ok(late !== undefined);
  t.after(() => late.close());
  await waitFor(() => late.snapshotLoaded, { timeoutMs: 2000, what: 'the snapshot load' });
  assert.equal(late.store.sizes().instances, 19);
  assert.equal(late.store.sizes().tombstones, 1);
});

test('a forward to a member that just died is retried at the recomputed responsible member', async (t) => {
  const network = new MemoryDistroNetwork();
  const nodes = startNodes(network, members, { distroHeartbeatIntervalMs: 60_000 });
  t.after(() => closeAll(nodes));
  // Heartbeats are rare here, so nobody notices the death before the forward does.
  let svc = key('retry0', '10.0.0.1');
  for (let i = 1; nodes[0]!.responsibleFor(serviceIdOfKey(svc)) !== 'm3'; i++) svc = key(`retry${i}`, '10.0.0.1');
  network.detach('m3');
  nodes[2]!.close();
  await register(nodes[0]!, svc);
  assert.deepEqual(nodes[0]!.liveMembers(), ['m1', 'm2']);
  assert.equal(view(nodes[0]!, svc) || view(nodes[1]!, svc), '10.0.0.1:80');
  // With every peer gone, a forward fails twice and answers the typed retryable error.
  const lonely = new MemoryDistroNetwork();
  const [alone] = ['x1'].map((id) => {
    const node = new DistroNode({ self: id, members: ['x1', 'x2', 'x3'], limits: { ...fast, distroHeartbeatIntervalMs: 60_000 }, logger: quiet });
    node.start({
      heartbeat: () => Promise.reject(new Error('never')), sync: async () => undefined, verify: async () => undefined,
      pull: async () => [], snapshot: async () => undefined,
      forward: () => lonely.reach('x1', 'nobody').then(() => ({ ok: false, code: 'CAIRN_INTERNAL', message: '' })),
      forwardBatch: () => lonely.reach('x1', 'nobody').then(() => []),
    });
    return node;
  });
  assert.ok(alone !== undefined);
  t.after(() => alone.close());
  // A service x2 is responsible for, and x3 once x2 is down: both forwards fail, and the write answers
  // CAIRN_DISTRO_UNAVAILABLE (retryable) rather than waiting or guessing.
  let target = key('lonely0', '10.0.0.1');
  const chosen = (k: InstanceKey): boolean =>
    responsibleMember(serviceIdOfKey(k), ['x1', 'x2', 'x3']) === 'x2' && responsibleMember(serviceIdOfKey(k), ['x1', 'x3']) === 'x3';
  for (let i = 1; !chosen(target); i++) target = key(`lonely${i}`, '10.0.0.1');
  await assert.rejects(register(alone, target), (error: unknown) => isCairnError(error, 'CAIRN_DISTRO_UNAVAILABLE') && error.retryable);
  assert.deepEqual(alone.liveMembers(), ['x1']);
  // Now x1 is alone and responsible for everything: the same write succeeds locally.
  await register(alone, target);
  assert.equal(view(alone, target), '10.0.0.1:80');
});

test('beats: an unknown instance is registered again from the beat body; without a body it is not found', async (t) => {
  const network = new MemoryDistroNetwork();
  const nodes = startNodes(network, members);
  t.after(() => closeAll(nodes));
  const svc = key('beats', '10.0.0.7');
  const via = nonResponsible(nodes, svc);
  assert.deepEqual(await via.beat({ key: svc }, anonymous), { found: false, clientBeatIntervalMs: fast.beatIntervalMs });
  const metadata = { 'preserved.heart.beat.interval': '1000', 'preserved.heart.beat.timeout': '3000', 'preserved.ip.delete.timeout': '6000' };
  assert.deepEqual(await via.beat({ key: svc, instance: { weight: 2, metadata } }, anonymous), { found: true, clientBeatIntervalMs: 1000 });
  await converged(nodes, [svc], 'the re-registered instance everywhere');
  assert.equal(nodes[0]!.instancesOf(svc)[0]?.weight, 2);
  assert.deepEqual(await via.beat({ key: svc }, anonymous), { found: true, clientBeatIntervalMs: 1000 });
  await assert.rejects(via.beat({ key: key('beats', '10.0.0.8'), instance: { weight: 1, metadata: { 'preserved.heart.beat.timeout': '1' } } }, anonymous),
    (error: unknown) => isCairnError(error, 'CAIRN_INVALID_ARGUMENT'));
});

test('sessions keep their instances alive until closed or silent; then they are removed everywhere', async (t) => {
  const network = new MemoryDistroNetwork();
  const metadata = { 'preserved.heart.beat.interval': '100', 'preserved.heart.beat.timeout': '300', 'preserved.ip.delete.timeout': '600' };
  const nodes = startNodes(network, members);
  t.after(() => closeAll(nodes));
  const [m1] = nodes as [DistroNode];
  const session = m1.openSession();
  const keepAlive = setInterval(() => session.keepAlive(), 50);
  t.after(() => clearInterval(keepAlive));
  const services = ['s0', 's1', 's2', 's3'].map((name) => key(name, '10.0.0.1'));
  for (const svc of services) await register(m1, svc, metadata, session.id);
  const beatKept = key('s0', '10.0.0.2');
  // Taken before the registration: the instance's silence starts at its install, which is no earlier, so the bound
  // below holds however slowly the registration's answer comes back on a loaded machine.
  const started = Date.now();
  await register(m1, beatKept, metadata);
  // m1 may not be responsible for s0: its copy arrives by replication, and the expiry below must be seen after it.
  await waitFor(() => view(m1, services[0]!) === '10.0.0.1:80,10.0.0.2:80', { timeoutMs: 3000, what: 'the beat-kept instance replicated to m1' });
  // Well past the delete timeout, renewals keep the session's instances; the beat-kept one expires.
  await waitFor(() => view(m1, services[0]!) === '10.0.0.1:80', { timeoutMs: 3000, what: 'the beat-kept instance to expire' });
  assert.ok(Date.now() - started >= 500);
  for (const svc of services) await waitFor(() => nodes.every((node) => view(node, svc) === '10.0.0.1:80'), { timeoutMs: 3000, what: `${svc.service} kept by its session` });
  const session2 = m1.openSession();
  await register(m1, key('s9', '10.0.0.9'), {}, session2.id);
  clearInterval(keepAlive);
  await session.close();
  await session.closed;
  await converged(nodes, services, 'the closed session\'s instances removed');
  assert.ok(services.every((svc) => view(m1, svc) === ''));
  await assert.rejects(register(m1, key('s0', '10.0.0.5'), {}, session.id), (error: unknown) => isCairnError(error, 'CAIRN_SESSION_CLOSED'));
  // session2 falls silent: it times out and its instance goes.
  let ended = false;
  void session2.closed.then(() => {
    ended = true;
  });
  await waitFor(() => ended, { timeoutMs: 3000, what: 'the silent session to time out' });
  await waitFor(() => nodes.every((node) => view(node, key('s9', '')) === ''), { timeoutMs: 3000, what: 'the silent session\'s instance removed' });
});

test('a closing session removes only what it still owns: a redo through another session keeps the instance (jepsen-like D5)', async (t) => {
  // The client's stream to m1 broke (or it holds a second session): it registered the same instance again through a
  // session on m2. When m1 then closes (or times out) its session, the instance must stay: m2's session owns it.
  const network = new MemoryDistroNetwork();
  const nodes = startNodes(network, members);
  t.after(() => closeAll(nodes));
  const [m1, m2] = nodes as [DistroNode, DistroNode];
  const first = m1.openSession();
  const redo = m2.openSession();
  const keepAlive = setInterval(() => redo.keepAlive(), 50);
  t.after(() => clearInterval(keepAlive));
  const services = ['r0', 'r1', 'r2', 'r3'].map((name) => key(name, '10.0.0.7'));
  for (const svc of services) await register(m1, svc, {}, first.id);
  await converged(nodes, services, 'the first session\'s instances everywhere');
  for (const svc of services) await register(m2, svc, {}, redo.id);
  await first.close();
  await converged(nodes, services, 'every member after the first session closed');
  for (const svc of services) assert.deepEqual(nodes.map((node) => view(node, svc)), ['10.0.0.7:80', '10.0.0.7:80', '10.0.0.7:80'], `${svc.service} kept by the redo`);
  // The owner closing removes them everywhere.
  await redo.close();
  await converged(nodes, services, 'every member after the owning session closed');
  for (const svc of services) assert.equal(view(m1, svc), '');
});

test('a live session registers its instance again when a renewal finds it removed (the owner of a shared instance closed)', async (t) => {
  // Two sessions hold the same instance; the later (its owner) closes and removes it everywhere. The earlier still
  // keeps it: its member's next renewal finds it missing and registers it again, with the fields it was registered
  // with. (Before 2026-11-22 it stayed removed; so did a redo whose registration a partition kept from the member that
  // applied an older session's removal: jepsen-like D5's open limitation.) The earlier closing then removes it.
  const network = new MemoryDistroNetwork();
  const { nodes, count } = startNodesCountingRepairs(network, members, fast, quiet);
  t.after(() => closeAll(nodes));
  const [m1, m2] = nodes as [DistroNode, DistroNode];
  const earlier = m1.openSession();
  const later = m2.openSession();
  const keepAlive = setInterval(() => {
    earlier.keepAlive();
    later.keepAlive();
  }, 50);
  t.after(() => clearInterval(keepAlive));
  const services = ['h0', 'h1', 'h2', 'h3'].map((name) => key(name, '10.0.0.6'));
  for (const svc of services) await register(m1, svc, { zone: 'a' }, earlier.id);
  await converged(nodes, services, 'the earlier session\'s instances everywhere');
  for (const svc of services) await register(m2, svc, { zone: 'a' }, later.id);
  await converged(nodes, services, 'the later session\'s registrations everywhere');
  assert.equal(count.repairs, 0, 'nothing was missing while both sessions held the instances');
  await later.close();
  // Removed at the responsible members (so each renewal of m1's finds it missing: one repair per instance), then
  // back on every member.
  await waitFor(() => count.repairs >= services.length, { timeoutMs: 3000, what: 'm1 to register every removed instance again' });
  for (const svc of services) {
    await waitFor(() => nodes.every((node) => view(node, svc) === '10.0.0.6:80'), { timeoutMs: 3000, what: `${svc.service} registered again by the earlier session` });
    assert.deepEqual(m1.instancesOf(svc).map((instance) => instance.metadata), [{ zone: 'a' }], 'registered again with its own fields');
  }
  // It is the earlier session's now: closing it removes the instances everywhere, for good.
  await earlier.close();
  await converged(nodes, services, 'every member after the earlier session closed');
  for (const svc of services) assert.equal(view(m1, svc), '');
});

test('a client\'s own deregistration through its session is not undone by the session\'s renewals', async (t) => {
  const network = new MemoryDistroNetwork();
  const nodes = startNodes(network, members);
  t.after(() => closeAll(nodes));
  const [m1] = nodes as [DistroNode];
  const session = m1.openSession();
  const keepAlive = setInterval(() => session.keepAlive(), 50);
  t.after(() => clearInterval(keepAlive));
  const services = ['g0', 'g1', 'g2', 'g3'].map((name) => key(name, '10.0.0.5'));
  for (const svc of services) await register(m1, svc, {}, session.id);
  await converged(nodes, services, 'the session\'s instances everywhere');
  for (const svc of services) await m1.write({ type: 'deregister', key: svc, owner: session.id }, anonymous);
  await converged(nodes, services, 'the deregistrations everywhere');
  // Ten renewal rounds later they are still gone, and the session is still open.
  await new Promise((resolve) => setTimeout(resolve, 10 * fast.beatIntervalMs));
  for (const svc of services) assert.deepEqual(nodes.map((node) => view(node, svc)), ['', '', ''], `${svc.service} stays deregistered`);
  assert.equal(m1.sessionCount, 1);
});

test('a closed session\'s deregistration that finds its targets cut off is tried again until it lands (jepsen-like D5 16001)', async (t) => {
  // m1's forwards fail for a while (a partition its heartbeats have not noticed yet), so the route and its one retry
  // both fail. Before the fix the instance was left to expire (removeAfterMs, 30 s); now it is removed once a retry lands.
  const network = new MemoryDistroNetwork();
  let failForwards = false;
  const cut = (): never => {
    throw new DistroCallError('cut off (test)', true);
  };
  const nodes = nodesWithM1Forwards(network, (transport) => ({
    forward: async (to, request) => (failForwards ? cut() : transport.forward(to, request)),
    forwardBatch: async (to, requests, sentAtMs) => (failForwards ? cut() : transport.forwardBatch(to, requests, sentAtMs)),
  }));
  t.after(() => closeAll(nodes));
  const [m1] = nodes as [DistroNode];
  // A service m2 or m3 is responsible for, and still not m1 once that one is marked down: both attempts leave m1.
  const name = Array.from({ length: 200 }, (_, k) => `c${k}`).find((candidate) => {
    const id = serviceIdOfKey(key(candidate, ''));
    const first = responsibleMember(id, members);
    return first !== 'm1' && responsibleMember(id, members.filter((m) => m !== first)) !== 'm1';
  });
  assert.ok(name !== undefined);
  const svc = key(name, '10.0.0.8');
  const session = m1.openSession();
  await register(m1, svc, {}, session.id);
  await converged(nodes, [svc], 'the session\'s instance everywhere');
  failForwards = true;
  setTimeout(() => {
    failForwards = false;
  }, 300);
  await session.close();
  await waitFor(() => nodes.every((node) => view(node, svc) === ''), { timeoutMs: 3000, what: 'the closed session\'s instance removed everywhere' });
});

test('change listeners hear every change after it is visible; a throwing listener breaks nothing', async (t) => {
  const network = new MemoryDistroNetwork();
  const nodes = startNodes(network, members);
  t.after(() => closeAll(nodes));
  const heard: string[] = [];
  for (const node of nodes) {
    node.onChange(() => {
      throw new Error('a broken listener');
    });
    node.onChange((service) => heard.push(`${service.service}:${node.instancesOf(service).length}`));
  }
  const svc = key('listen', '10.0.0.1');
  await register(nodes[0]!, svc);
  await waitFor(() => heard.filter((item) => item === 'listen:1').length === 3, { timeoutMs: 2000, what: 'every member to hear the change' });
  const stop = nodes[1]!.onChange(() => heard.push('removed-listener'));
  stop();
  await nodes[0]!.write({ type: 'deregister', key: svc }, anonymous);
  await waitFor(() => heard.filter((item) => item === 'listen:0').length === 3, { timeoutMs: 2000, what: 'every member to hear the removal' });
  assert.ok(!heard.includes('removed-listener'));
});

/** CountingTransport wraps a transport and records every ForwardBatch call (target and size) and unary Forward. */
function counting(inner: DistroTransport): DistroTransport & { readonly batches: Array<{ to: string; size: number }>; forwards: number } {
  const batches: Array<{ to: string; size: number }> = [];
  const wrapped = {
    batches,
    forwards: 0,
    heartbeat: (to: string) => inner.heartbeat(to),
    sync: (...args: Parameters<DistroTransport['sync']>) => inner.sync(...args),
    verify: (...args: Parameters<DistroTransport['verify']>) => inner.verify(...args),
    pull: (...args: Parameters<DistroTransport['pull']>) => inner.pull(...args),
    snapshot: (...args: Parameters<DistroTransport['snapshot']>) => inner.snapshot(...args),
    forward: (...args: Parameters<DistroTransport['forward']>) => {
      wrapped.forwards++;
      return inner.forward(...args);
    },
    forwardBatch: (to: string, requests: readonly ForwardRequest[], sentAtMs: number) => {
      batches.push({ to, size: requests.length });
      return inner.forwardBatch(to, requests, sentAtMs);
    },
  };
  return wrapped;
}

/** servicesOwnedBy finds `count` service names whose responsible member among `live` is `owner`. */
function servicesOwnedBy(owner: string, live: readonly string[], count: number, prefix: string): string[] {
  const names: string[] = [];
  for (let i = 0; names.length < count; i++) {
    if (responsibleMember(serviceIdOfKey(key(`${prefix}${i}`, '')), live) === owner) names.push(`${prefix}${i}`);
  }
  return names;
}

test('many beats at a non-responsible member travel as few batched peer calls, each answered on its own', async (t) => {
  const network = new MemoryDistroNetwork();
  const nodes = ['m1', 'm2', 'm3'].map((id) => new DistroNode({ self: id, members, limits: { ...fast, distroForwardBatchDelayMs: 5 }, logger: quiet }));
  const transports = nodes.map((node) => counting(network.attach(node.self, node.handlers)));
  nodes.forEach((node, i) => node.start(transports[i]!));
  t.after(() => closeAll(nodes));
  // 200 instances of services m2 and m3 own, registered there directly; m1 beats them all (and 40 unknown ones).
  const owned = [...servicesOwnedBy('m2', members, 5, 'b2-'), ...servicesOwnedBy('m3', members, 5, 'b3-')];
  const slow = { 'preserved.heart.beat.interval': '2000', 'preserved.heart.beat.timeout': '20000', 'preserved.ip.delete.timeout': '40000' };
  const keys: InstanceKey[] = [];
  for (const [s, service] of owned.entries()) {
    const owner = nodes.find((node) => node.self === nodes[0]!.responsibleFor(serviceIdOfKey(key(service, ''))))!;
    for (let i = 0; i < 20; i++) {
      const k = key(service, `10.1.${s}.${i}`);
      keys.push(k);
      await register(owner, k, i % 2 === 0 ? slow : {});
    }
  }
  const m1 = transports[0]!;
  const before = m1.batches.length;
  const unknown = owned.flatMap((service, s) => [0, 1, 2, 3].map((i) => key(service, `10.2.${s}.${i}`)));
  const answers = await Promise.all([...keys, ...unknown].map((k) => nodes[0]!.beat({ key: k }, anonymous)));
  // Each beat has its own answer: found with its own interval, or not found.
  keys.forEach((k, i) => assert.deepEqual(answers[i], { found: true, clientBeatIntervalMs: Number(k.ip.split('.')[3]) % 2 === 0 ? 2000 : fast.beatIntervalMs }, `${k.service} ${k.ip}`));
  unknown.forEach((k, i) => assert.deepEqual(answers[keys.length + i], { found: false, clientBeatIntervalMs: fast.beatIntervalMs }, `${k.service} ${k.ip}`));
  // 240 beats went to two peers as a handful of calls (one per peer and window), none as a unary Forward.
  const calls = m1.batches.slice(before);
  assert.equal(calls.reduce((sum, call) => sum + call.size, 0), 240);
  assert.ok(calls.length <= 4, `${calls.length} ForwardBatch calls: ${JSON.stringify(calls)}`);
  assert.deepEqual([...new Set(calls.map((call) => call.to))].sort(), ['m2', 'm3']);
  assert.equal(m1.forwards, 0);
  // Writes are batched the same way, and each answers for itself (an error of one is not the others').
  const writes = await Promise.allSettled([
    register(nodes[0]!, key(owned[0]!, '10.3.0.1')),
    nodes[0]!.write({ type: 'patch', key: key(owned[1]!, '10.9.9.9'), weight: 3 }, anonymous),
    nodes[0]!.write({ type: 'deregister', key: keys[0]! }, anonymous),
  ]);
  assert.equal(writes[0]!.status, 'fulfilled');
  assert.ok(writes[1]!.status === 'rejected' && isCairnError(writes[1]!.reason, 'CAIRN_INSTANCE_NOT_FOUND'), JSON.stringify(writes[1]));
  assert.ok(writes[2]!.status === 'fulfilled' && 'removed' in writes[2]!.value && writes[2]!.value.removed);
});

test('a failed batch: every request retries once at the recomputed member, then answers CAIRN_DISTRO_UNAVAILABLE', async (t) => {
  const network = new MemoryDistroNetwork();
  // Heartbeats are rare, so the forwards are what notice the death.
  const nodes = startNodes(network, members, { distroHeartbeatIntervalMs: 60_000 });
  t.after(() => closeAll(nodes));
  const [m1, m2, m3] = nodes as [DistroNode, DistroNode, DistroNode];
  const services = servicesOwnedBy('m3', members, 4, 'dead-');
  const keys = services.flatMap((service) => [1, 2, 3, 4, 5].map((i) => key(service, `10.4.0.${i}`)));
  for (const k of keys) await register(m3, k);
  await converged(nodes, keys, 'the registrations everywhere');
  network.detach('m3');
  m3.close();
  // 20 beats and a write queued together for m3: the batch fails, each request retries at m1 or m2 and is answered.
  const answers = await Promise.all([...keys.map((k) => m1.beat({ key: k }, anonymous)), register(m1, key(services[0]!, '10.4.1.1'))]);
  for (const answer of answers.slice(0, keys.length)) assert.deepEqual(answer, { found: true, clientBeatIntervalMs: fast.beatIntervalMs });
  assert.deepEqual(m1.liveMembers(), ['m1', 'm2']);
  await converged([m1, m2], keys, 'the retried write on both live members');
  assert.equal(view(m2, key(services[0]!, '')), '10.4.0.1:80,10.4.0.2:80,10.4.0.3:80,10.4.0.4:80,10.4.0.5:80,10.4.1.1:80');
  // A member whose every peer fails: a batch to x2 fails, each request retries at x3 (fails too) and answers
  // CAIRN_DISTRO_UNAVAILABLE, every one of them.
  const lonely = new MemoryDistroNetwork();
  const sentTo: string[] = [];
  const alone = new DistroNode({ self: 'x1', members: ['x1', 'x2', 'x3'], limits: { ...fast, distroHeartbeatIntervalMs: 60_000 }, logger: quiet });
  alone.start({
    heartbeat: () => Promise.reject(new Error('never')), sync: async () => undefined, verify: async () => undefined,
    pull: async () => [], snapshot: async () => undefined,
    forward: () => lonely.reach('x1', 'nobody').then(() => ({ ok: false, code: 'CAIRN_INTERNAL', message: '' })),
    forwardBatch: (to, requests) => {
      sentTo.push(...requests.map(() => to));
      return lonely.reach('x1', 'nobody').then(() => []);
    },
  });
  t.after(() => alone.close());
  const chosen = servicesOwnedBy('x2', ['x1', 'x2', 'x3'], 40, 'lone-')
    .filter((service) => responsibleMember(serviceIdOfKey(key(service, '')), ['x1', 'x3']) === 'x3').slice(0, 5);
  assert.equal(chosen.length, 5);
  const outcomes = await Promise.allSettled(chosen.flatMap((service) => [1, 2, 3].map((i) => alone.beat({ key: key(service, `10.5.0.${i}`) }, anonymous))));
  assert.equal(outcomes.length, 15);
  for (const outcome of outcomes) {
    assert.ok(outcome.status === 'rejected' && isCairnError(outcome.reason, 'CAIRN_DISTRO_UNAVAILABLE') && outcome.reason.retryable, JSON.stringify(outcome));
  }
  // Each request went out exactly twice: once to x2, once (the retry) to x3; a handful of calls carried them (the
  // first of each peer alone, the rest gathered behind it).
  assert.equal(sentTo.filter((to) => to === 'x2').length, 15);
  assert.equal(sentTo.filter((to) => to === 'x3').length, 15);
  assert.equal(sentTo.length, 30);
});

/**
 * holdingNode starts member `self` of [self, peer] on a transport whose peer holds every ForwardBatch call until
 * released: `held` are the releases, `heldSizes` the size of each call, in order.
 */
function holdingNode(self: string, peer: string, limits: Partial<DistroLimits>, onEvent?: (event: string, n: number) => void): { node: DistroNode; held: Array<() => void>; heldSizes: number[] } {
  const held: Array<() => void> = [];
  const heldSizes: number[] = [];
  const node = new DistroNode({
    self, members: [self, peer], logger: quiet, ...(onEvent === undefined ? {} : { onEvent }),
    limits: { ...fast, distroHeartbeatIntervalMs: 60_000, ...limits },
  });
  const ok = { ok: true, type: 'beat', found: true, clientBeatIntervalMs: 100 } as const;
  node.start({
    heartbeat: () => new Promise(() => undefined), sync: async () => undefined, verify: async () => undefined,
    pull: async () => [], snapshot: async () => undefined, forward: async () => ok,
    forwardBatch: (_to, requests) => {
      heldSizes.push(requests.length);
      return new Promise((resolve) => held.push(() => resolve(requests.map(() => ok))));
    },
  });
  return { node, held, heldSizes };
}

test('a full per-peer forward queue refuses at once with CAIRN_DISTRO_UNAVAILABLE, counted', async (t) => {
  const events: string[] = [];
  const { node, held, heldSizes } = holdingNode('y1', 'y2', { distroForwardBatchEntriesMax: 4, distroForwardPendingMax: 8 },
    (event, n) => events.push(...Array.from({ length: n }, () => event)));
  t.after(() => node.close());
  const services = servicesOwnedBy('y2', ['y1', 'y2'], 10, 'full-');
  const first = services.slice(0, 8).map((service) => node.beat({ key: key(service, '10.6.0.1') }, anonymous));
  await assert.rejects(node.beat({ key: key(services[8]!, '10.6.0.1') }, anonymous),
    (error: unknown) => isCairnError(error, 'CAIRN_DISTRO_UNAVAILABLE') && error.retryable);
  assert.equal(events.filter((event) => event === 'forward_overflow').length, 1);
  // The first beat left alone at once (no call was in flight); the next four filled a batch; three wait for a call
  // to settle (or for the window).
  assert.deepEqual(heldSizes, [1, 4]);
  // Release every call as it comes until all eight are answered.
  let released = 0;
  const releasing = setInterval(() => {
    while (released < held.length) held[released++]!();
  }, 1);
  try {
    for (const answer of await Promise.all(first)) assert.deepEqual(answer, { found: true, clientBeatIntervalMs: 100 });
  } finally {
    clearInterval(releasing);
  }
  assert.deepEqual(heldSizes, [1, 4, 3]);
  // Once answered, the queue has room again.
  const later = node.beat({ key: key(services[9]!, '10.6.0.1') }, anonymous);
  await waitFor(() => held.length === 4, { timeoutMs: 2000, what: 'the next batch' });
  held[3]!();
  assert.deepEqual(await later, { found: true, clientBeatIntervalMs: 100 });
});

test('a forward to a peer with no call in flight leaves at once; those arriving meanwhile leave together when it settles', async (t) => {
  // A window far longer than the test: only the settle of the call in flight can send the gathered requests.
  const { node, held, heldSizes } = holdingNode('z1', 'z2', { distroForwardBatchDelayMs: 600_000 });
  t.after(() => node.close());
  const services = servicesOwnedBy('z2', ['z1', 'z2'], 6, 'adaptive-');
  const first = node.beat({ key: key(services[0]!, '10.7.0.1') }, anonymous);
  await waitFor(() => heldSizes.length === 1, { timeoutMs: 2000, what: 'the first forward' });
  assert.deepEqual(heldSizes, [1], 'the first request left alone, without waiting for the window');
  const rest = services.slice(1).map((service) => node.beat({ key: key(service, '10.7.0.1') }, anonymous));
  // Nothing else leaves while the first call is in flight.
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.deepEqual(heldSizes, [1]);
  held[0]!();
  assert.deepEqual(await first, { found: true, clientBeatIntervalMs: 100 });
  await waitFor(() => heldSizes.length === 2, { timeoutMs: 2000, what: 'the gathered batch' });
  assert.deepEqual(heldSizes, [1, 5], 'the five that arrived meanwhile left as one call when the first settled');
  held[1]!();
  for (const answer of await Promise.all(rest)) assert.deepEqual(answer, { found: true, clientBeatIntervalMs: 100 });
});

/**
 * withForwardBatch is `inner` with its forwardBatch replaced and its heartbeats to members `down` names failing (a
 * transport is a class: its methods do not spread).
 */
function withForwardBatch(inner: DistroTransport, forwardBatch: DistroTransport['forwardBatch'], down: (to: string) => boolean = () => false): DistroTransport {
  return {
    heartbeat: (to) => (down(to) ? Promise.reject(new DistroCallError(`${to} does not answer (test)`, false)) : inner.heartbeat(to)),
    sync: (to, records) => inner.sync(to, records),
    verify: (to, checksums) => inner.verify(to, checksums),
    pull: (to, keys) => inner.pull(to, keys),
    snapshot: (to, onChunk) => inner.snapshot(to, onChunk),
    forward: (to, request) => inner.forward(to, request),
    lastBeats: (to, query) => inner.lastBeats?.(to, query) ?? Promise.reject(new DistroCallError('unimplemented', true, true)),
    forwardBatch,
  };
}

// jepsen-like D6 (seed 42001): a member forwarded a registration to the responsible member, which was paused
// (SIGSTOP); the connection dropped, the sender retried elsewhere and answered ok, the client deregistered the
// instance, and 7 s later the paused member woke, read the registration still in its socket and applied it with a
// newer version than the deregistration's tombstone: the instance came back everywhere. Here m1's forward to m3 is
// "delivered late": the call fails at once as a dropped connection does (it may have been sent), and the test hands
// the same batch to m3 afterwards. Fenced, m3 refuses it and the instance stays gone; without a stamp (a member
// older than the fence) the same late batch brings it back, which is the bug.
test('a forwarded write delivered after its sender gave up is refused (the fence), so it cannot undo a later write', async (t) => {
  const fenced: Partial<DistroLimits> = { distroForwardFenceMs: 300, distroForwardSkewMs: 60 };
  const network = new MemoryDistroNetwork();
  const late: Array<{ requests: readonly ForwardRequest[]; sentAtMs: number }> = [];
  let paused = false;
  const nodes = members.map((id) => {
    const node = new DistroNode({ self: id, members, limits: { ...fast, ...fenced }, logger: quiet });
    const transport = network.attach(id, node.handlers);
    node.start(id !== 'm1' ? transport : withForwardBatch(transport, async (to, requests, sentAtMs) => {
      if (to !== 'm3') return transport.forwardBatch(to, requests, sentAtMs);
      late.push({ requests, sentAtMs });
      throw new DistroCallError('ForwardBatch to m3 failed: Connection dropped (test)', false);
    }, (to) => paused && to === 'm3'));
    return node;
  });
  t.after(() => closeAll(nodes));
  const [m1, m2, m3] = nodes as [DistroNode, DistroNode, DistroNode];
  await waitFor(() => nodes.every((node) => node.liveMembers().length === 3), { timeoutMs: 5000, intervalMs: 10, what: 'every member live' });
  const service = servicesOwnedBy('m3', members, 1, 'late-')[0]!;
  const instance = key(service, '10.7.0.1');
  const serviceKey = key(service, '');

  // m3 is "paused": m1's heartbeats to it go unanswered. The registration through m1: its forward to m3 fails as
  // maybe-sent, so m1 waits out the fence before it retries elsewhere (m3 marked down) and answers.
  paused = true;
  const started = performance.now();
  await register(m1, instance);
  const tookMs = performance.now() - started;
  assert.equal(late.length, 1);
  assert.ok(late[0]!.sentAtMs > 0, 'the batch carries its send time');
  assert.ok(tookMs >= 300 + 60 - 15, `the retry waited out the fence and the skew allowance (took ${tookMs.toFixed(0)} ms)`);
  await converged(nodes, [serviceKey], 'the registration everywhere');
  // The client goes on: it deregisters the instance (through m2), acknowledged, and every member agrees.
  await m2.write({ type: 'deregister', key: instance }, anonymous);
  await converged(nodes, [serviceKey], 'the deregistration everywhere');
  assert.equal(view(m3, serviceKey), '');

  // m3 "wakes" and reads the stale batch: past its fence, refused whole, nothing applied.
  paused = false;
  const { requests, sentAtMs } = late[0]!;
  const responses = m3.handlers.onForwardBatch('m1', requests, sentAtMs);
  assert.equal(responses.length, 1);
  assert.ok(!responses[0]!.ok && responses[0]!.code === 'CAIRN_DISTRO_UNAVAILABLE', JSON.stringify(responses[0]));
  await converged(nodes, [serviceKey], 'the refused late batch changed nothing');
  assert.deepEqual(nodes.map((node) => view(node, serviceKey)), ['', '', '']);

  // The same batch without a stamp, as from a member older than the fence, is applied: the instance is back on every
  // member although its last acknowledged write removed it (what the fence prevents).
  const unfenced = m3.handlers.onForwardBatch('m1', requests, 0);
  assert.ok(unfenced[0]!.ok, JSON.stringify(unfenced[0]));
  await waitFor(() => nodes.every((node) => view(node, serviceKey) === '10.7.0.1:80'), { timeoutMs: 5000, intervalMs: 20, what: 'the unfenced late batch resurrecting the instance' });
});

test('a forward that certainly was not sent is retried at once, without waiting for a fence', async (t) => {
  const network = new MemoryDistroNetwork();
  let refused = 0;
  const nodes = members.map((id) => {
    const node = new DistroNode({ self: id, members, limits: { ...fast, distroForwardFenceMs: 1500, distroForwardSkewMs: 400 }, logger: quiet });
    const transport = network.attach(id, node.handlers);
    node.start(id !== 'm1' ? transport : withForwardBatch(transport, async (to, requests, sentAtMs) => {
      if (to === 'm3') {
        refused++;
        throw new DistroCallError('m3 refused the connection (test)', true);
      }
      return transport.forwardBatch(to, requests, sentAtMs);
    }, (to) => to === 'm3'));
    return node;
  });
  t.after(() => closeAll(nodes));
  const service = servicesOwnedBy('m3', members, 1, 'unsent-')[0]!;
  const started = performance.now();
  await register(nodes[0]!, key(service, '10.7.1.1'));
  const tookMs = performance.now() - started;
  assert.equal(refused, 1, 'the first attempt went to m3 and was refused');
  assert.ok(tookMs < 1500, `a refused connection is retried without the fence's wait (took ${tookMs.toFixed(0)} ms)`);
  await converged(nodes, [key(service, '')], 'the registration everywhere');
});
