// Goal: expiry stays right while members disagree on who is responsible for a service (docs/ap.md "Beats, expiry
// and sessions"; jepsen-like D2, 2026-11-22). Each member computes responsibility over its own view of the live
// members, and a failed forward marks the target down at once on that member only, while the others wait for missed
// heartbeats; meanwhile a client's beats land at the member responsible in the forwarding member's view. Neither the
// member still responsible in the old view (case 2 of the D2 finding) nor the one that took over in the new view
// (case 1) may flag a beating instance unhealthy because the beats went to the other. A silent instance is still
// flagged and removed on time, even while a peer still seen up cannot be reached at all; a live peer that gets the
// question and does not answer holds expiry back for at most one detection window; a peer that only holds a
// replicated copy (a snapshot, a sync) never claims to have heard the client.
//
// Method: five real DistroNodes over MemoryDistroNetwork with its per-link cut (a call over a cut link fails as a
// refused connection does); heartbeats every 60 s so that views change only by failed forwards, exactly as in the
// finding; instances with the jepsen D2 timings divided by ten (100 ms interval, 300 ms unhealthy, 600 ms delete),
// expiry every 20 ms. Beats are sent every 100 ms for 15 unhealthy timeouts; the test counts every flag any member
// makes (the `expired_unhealthy` event) and polls every member's list. Outcomes are polled with bounded waits.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { limits } from '../../src/limits.ts';
import { DistroNode, type DistroEvent, type DistroLimits } from '../../src/ap/distro.ts';
import { MemoryDistroNetwork, type DistroTransport } from '../../src/ap/transport.ts';
import { EphemeralStore, HEARD_NEVER, entryIdOf, serviceIdOfKey } from '../../src/ap/ephemeral-store.ts';
import { responsibleMember } from '../../src/ap/responsibility.ts';
import type { InstanceKey } from '../../src/naming/model.ts';
import { sleep, waitFor } from '../support/cluster.ts';

const members = ['m1', 'm2', 'm3', 'm4', 'm5'];
const fourLive = ['m1', 'm2', 'm3', 'm4'];
const timings = { 'preserved.heart.beat.interval': '100', 'preserved.heart.beat.timeout': '300', 'preserved.ip.delete.timeout': '600' };
const slow: DistroLimits = {
  ...limits,
  distroSyncDelayMs: 10,
  distroVerifyIntervalMs: 200,
  distroHeartbeatIntervalMs: 60_000,
  distroExpiryTickMs: 20,
  beatIntervalMs: 100,
};
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
const anonymous = { identity: null };

interface Cluster {
  readonly network: MemoryDistroNetwork;
  readonly nodes: Map<string, DistroNode>;
  readonly flags: string[];
}

function startCluster(t: { after(fn: () => void): void }, wrap: (id: string, transport: DistroTransport) => DistroTransport = (_id, transport) => transport, options: Partial<DistroLimits> = {}): Cluster {
  const network = new MemoryDistroNetwork();
  const nodes = new Map<string, DistroNode>();
  const flags: string[] = [];
  for (const id of members) {
    const onEvent = (event: DistroEvent, count: number): void => {
      if (event === 'expired_unhealthy' || event === 'expired_removed') flags.push(`${id} ${event} x${count}`);
    };
    const node = new DistroNode({ self: id, members, limits: { ...slow, ...options }, logger: quiet, onEvent });
    node.start(wrap(id, network.attach(id, node.handlers)));
    nodes.set(id, node);
  }
  t.after(() => {
    for (const node of nodes.values()) node.close();
  });
  return { network, nodes, flags };
}

function node(cluster: Cluster, id: string): DistroNode {
  const found = cluster.nodes.get(id);
  assert.ok(found !== undefined, id);
  return found;
}

function key(service: string, ip = '10.0.0.1'): InstanceKey {
  return { namespace: 'public', group: 'DEFAULT_GROUP', service, cluster: 'DEFAULT', ip, port: 80 };
}

/** serviceWhere finds a service name whose responsible members over all five and over m1-m4 satisfy `wanted`. */
function serviceWhere(prefix: string, wanted: (overFive: string, overFour: string) => boolean): string {
  for (let i = 0; i < 10_000; i++) {
    const name = `${prefix}${i}`;
    const id = serviceIdOfKey(key(name));
    if (wanted(responsibleMember(id, members), responsibleMember(id, fourLive))) return name;
  }
  throw new Error(`no service for ${prefix}`);
}

function listing(target: DistroNode, service: string): string {
  return target.instancesOf(key(service)).map((instance) => `${instance.ip}${instance.healthy ? '' : '(unhealthy)'}`).join(',');
}

/**
 * cutFromM5 makes `via` alone see m5 down, as a failed forward does in the finding: the link via-m5 is cut and a
 * write for a service m5 is responsible for is sent at `via` (the forward fails, `via` marks m5 down and retries at
 * the member responsible over the other four). The others still see m5 up: their heartbeats are a minute apart.
 */
async function cutFromM5(cluster: Cluster, via: string): Promise<void> {
  cluster.network.cut(via, 'm5');
  const probe = serviceWhere('probe', (overFive) => overFive === 'm5');
  await node(cluster, via).write({ type: 'register', instance: { ...key(probe, '10.9.9.9'), weight: 1, enabled: true, healthy: true, metadata: {} } }, anonymous);
  assert.deepEqual(node(cluster, via).liveMembers(), fourLive);
  for (const other of members) if (other !== via && other !== 'm5') assert.equal(node(cluster, other).liveMembers().length, 5, `${other} still sees m5`);
}

/** beatFor beats `service`'s instance through `via` every interval for `ms`, checking every member's list each time. */
async function beatFor(cluster: Cluster, via: string, service: string, ms: number): Promise<string[]> {
  const seen: string[] = [];
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const answer = await node(cluster, via).beat({ key: key(service) }, anonymous);
    assert.equal(answer.found, true, `the beat at ${via} found the instance`);
    for (const [id, member] of cluster.nodes) {
      const list = listing(member, service);
      if (list !== '10.0.0.1') seen.push(`${id}: '${list}'`);
    }
    await sleep(100);
  }
  return seen;
}

async function registerEverywhere(cluster: Cluster, service: string): Promise<void> {
  await node(cluster, 'm1').write({ type: 'register', instance: { ...key(service), weight: 1, enabled: true, healthy: true, metadata: timings } }, anonymous);
  await waitFor(() => [...cluster.nodes.values()].every((member) => listing(member, service) === '10.0.0.1'), { timeoutMs: 3000, intervalMs: 10, what: 'the instance on every member' });
}

test('D2 case 2: the member still responsible in its old view does not flag an instance whose beats go to the new view\'s member', async (t) => {
  const cluster = startCluster(t);
  // S: .13's over all five (old view), .14's over the four without m5 (new view); m1 forwards the beats.
  const service = serviceWhere('case2-', (overFive, overFour) => overFive === 'm3' && overFour === 'm4');
  await registerEverywhere(cluster, service);
  await cutFromM5(cluster, 'm1');
  const seen = await beatFor(cluster, 'm1', service, 4500);
  assert.deepEqual(cluster.flags, [], 'no member flagged or removed the beating instance');
  assert.deepEqual(seen, [], 'every member listed it healthy at every beat');
});

test('D2 case 1: the member that took a service over in its new view does not flag an instance whose beats go to the old owner', async (t) => {
  const cluster = startCluster(t);
  // S: m3's over all five, m1's over the four; m1 alone sees m5 down and takes S over (grace: one timeout from
  // now), while m2, still in the old view, forwards the beats to m3.
  const service = serviceWhere('case1-', (overFive, overFour) => overFive === 'm3' && overFour === 'm1');
  await registerEverywhere(cluster, service);
  await cutFromM5(cluster, 'm1');
  assert.equal(node(cluster, 'm1').responsibleFor(serviceIdOfKey(key(service))), 'm1');
  assert.equal(node(cluster, 'm2').responsibleFor(serviceIdOfKey(key(service))), 'm3');
  const seen = await beatFor(cluster, 'm2', service, 4500);
  assert.deepEqual(cluster.flags, [], 'no member flagged or removed the beating instance');
  assert.deepEqual(seen, [], 'every member listed it healthy at every beat');
});

test('with views apart, an instance nobody hears from is still flagged and removed on time; an unreachable peer holds nothing back', async (t) => {
  const cluster = startCluster(t);
  const service = serviceWhere('silent-', (overFive, overFour) => overFive === 'm3' && overFour === 'm4');
  await registerEverywhere(cluster, service);
  await cutFromM5(cluster, 'm1');
  // m5 is now cut from everyone, yet m2-m4 still see it up: their questions to it fail as not sent, and they go on.
  cluster.network.isolate('m5');
  const reachable = fourLive.map((id) => node(cluster, id));
  await node(cluster, 'm1').beat({ key: key(service) }, anonymous);
  const lastBeatMs = Date.now();
  await waitFor(() => reachable.every((member) => listing(member, service) === '10.0.0.1(unhealthy)'),
    { timeoutMs: 3000, intervalMs: 5, what: 'the silent instance flagged on m1-m4' });
  const flaggedMs = Date.now() - lastBeatMs;
  await waitFor(() => reachable.every((member) => listing(member, service) === ''),
    { timeoutMs: 3000, intervalMs: 5, what: 'the silent instance removed on m1-m4' });
  const removedMs = Date.now() - lastBeatMs;
  console.log(`silent instance: unhealthy everywhere after ${flaggedMs} ms, removed after ${removedMs} ms (timeouts 300 / 600 ms)`);
  assert.ok(flaggedMs >= 300 - 5 && flaggedMs < 300 + 400, `flagged after ${flaggedMs} ms`);
  assert.ok(removedMs >= 600 - 5 && removedMs < 600 + 400, `removed after ${removedMs} ms`);
});

test('a live peer that does not answer holds expiry back, for at most one detection window', async (t) => {
  let refusing = true;
  const cluster = startCluster(t, (id, transport) => {
    const lastBeats = transport.lastBeats?.bind(transport);
    assert.ok(lastBeats !== undefined);
    return Object.assign(Object.create(transport) as DistroTransport, {
      lastBeats: (to: string, query: Parameters<typeof lastBeats>[1]) =>
        (refusing && id === 'm3' && to === 'm2' ? Promise.reject(new Error('no answer')) : lastBeats(to, query)),
    });
  }, { distroHeartbeatMissesMax: 2, distroPeerTimeoutMs: 300 });
  // Detection window here: 2 misses x (60 s heartbeat + 0.3 s deadline); the test lifts the refusal long before.
  const service = serviceWhere('held-', (overFive) => overFive === 'm3');
  await registerEverywhere(cluster, service);
  await sleep(1500);
  assert.deepEqual(cluster.flags, [], 'm3 does not act while m2, live in its view, does not answer');
  assert.equal(listing(node(cluster, 'm3'), service), '10.0.0.1');
  refusing = false;
  await waitFor(() => listing(node(cluster, 'm3'), service) === '', { timeoutMs: 3000, intervalMs: 10, what: 'the removal once m2 answers' });
  // The bound: a peer that never answers holds expiry back for one detection window, then expiry acts without it.
  const bounded = startCluster(t, (id, transport) => Object.assign(Object.create(transport) as DistroTransport, {
    lastBeats: (to: string) => (id === 'm3' && to === 'm2' ? Promise.reject(new Error('no answer')) : Promise.resolve([] as number[])),
  }), { distroHeartbeatIntervalMs: 100, distroHeartbeatMissesMax: 2, distroPeerTimeoutMs: 200 });
  await registerEverywhere(bounded, service);
  const startMs = Date.now();
  await waitFor(() => listing(node(bounded, 'm3'), service) === '', { timeoutMs: 5000, intervalMs: 10, what: 'the removal after one detection window' });
  const tookMs = Date.now() - startMs;
  console.log(`expiry held back by a peer that never answers: removed after ${tookMs} ms (delete timeout 600 ms, window 600 ms)`);
  assert.ok(tookMs >= 600 && tookMs < 600 + 600 + 800, `removed after ${tookMs} ms`);
});

test('a member answers only for clients it heard itself: a replicated copy never counts as a beat', () => {
  const now = { ms: 1_700_000_000_000 };
  const storeOf = (self: string) => new EphemeralStore({
    self, now: () => now.ms, limits, events: { onEntryChanged: () => undefined, onServiceChanged: () => undefined },
  });
  const owner = storeOf('a');
  const copy = storeOf('b');
  const k = key('heard');
  const serviceId = serviceIdOfKey(k);
  const entryId = entryIdOf(k.cluster, k.ip, k.port);
  owner.put(k, { weight: 1, enabled: true, healthy: true, metadata: timings }, '', 'register');
  now.ms += 250;
  copy.merge(owner.exportRecord(owner.record(serviceId)!));
  assert.equal(owner.silenceHeardMs(serviceId, entryId), 250, 'the registration was heard from the client');
  assert.equal(copy.silenceHeardMs(serviceId, entryId), HEARD_NEVER, 'a synced copy was not');
  copy.noteHeard(serviceId, entryId);
  now.ms += 40;
  assert.equal(copy.silenceHeardMs(serviceId, entryId), 40, 'a beat it forwarded was');
  assert.equal(owner.silenceHeardMs(serviceId, entryIdOf('DEFAULT', '10.0.0.2', 80)), HEARD_NEVER, 'an unknown instance');
});
