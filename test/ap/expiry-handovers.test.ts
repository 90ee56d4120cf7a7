// Goal: repeated handovers of a service do not keep a dead instance listed (jepsen-like D4 11901, 2026-11-22), and the
// takeover grace still protects what it was made for. A member taking a service over counted a healthy instance's
// silence from the takeover (its beats may have gone to the old owner); every change of the live set moves most
// services (the hash is taken modulo the live count), so a member killed and restarted every few seconds restarted
// the grace of instances it never owned, at every kill and every return, and a stopped instance was flagged only
// when the kills paused. Now, when every member of the group is live in the member's view and answered the expiry
// question (Distro LastBeats), the answers cover every beat except those heard only by a member that died before the
// member last saw one go down: silence counts from the latest beat anyone heard, or from that floor, whichever is
// later (docs/ap.md "The takeover grace and the answers"). So a member coming back moves services without restarting
// their grace, while the death of the owner that clients beat directly still gives its successor a full grace (no
// coverage while a member is down), and a restarted member's snapshot is not a beat.
//
// Method: (1) the store's rule on a fake clock: a takeover with complete answers and a floor before the last beat, the
// same without complete answers (the old grace), a floor after the last beat, a restarted member that received the
// instance by snapshot, an unhealthy instance after a takeover; (2) five DistroNodes over MemoryDistroNetwork with
// heartbeats every 20 ms (views follow kills at once, as refused connections do), instances with 100 ms beats, 600 ms
// unhealthy and 1200 ms delete timeouts: m4 is killed and restarted every 400 ms, which moves the service back and
// forth between two survivors with no gap as long as the unhealthy timeout; one instance of it has stopped, another
// keeps beating through m1. (3) the grace's purpose: the owner dies while its client beats it directly, and the client
// finds another member only after a while; the successor must not flag it. (4) the floor a DistroNode computes: none
// while a member is down in its view, and after it is back, when it went down. Outcomes are polled with bounded waits.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { limits } from '../../src/limits.ts';
import { steadyWallMs } from '../../src/clock.ts';
import { DistroNode, type DistroLimits } from '../../src/ap/distro.ts';
import { MemoryDistroNetwork } from '../../src/ap/transport.ts';
import { EphemeralStore, NOT_COVERED, entryIdOf, serviceIdOfKey, type ExpiryCandidate } from '../../src/ap/ephemeral-store.ts';
import { responsibleMember } from '../../src/ap/responsibility.ts';
import type { InstanceKey } from '../../src/naming/model.ts';
import { sleep, waitFor } from '../support/cluster.ts';

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
const anonymous = { identity: null };

function key(service: string, ip: string): InstanceKey {
  return { namespace: 'public', group: 'DEFAULT_GROUP', service, cluster: 'DEFAULT', ip, port: 80 };
}

// --- (1) The rule, on a fake clock ---

const jepsenTimings = { 'preserved.heart.beat.interval': '1000', 'preserved.heart.beat.timeout': '3000', 'preserved.ip.delete.timeout': '6000' };

function storeOf(self: string, clock: { ms: number }): EphemeralStore {
  return new EphemeralStore({ self, now: () => clock.ms, limits, events: { onEntryChanged: () => undefined, onServiceChanged: () => undefined } });
}

/** candidatesOf is findExpiring's answer with every entry accepted. */
function candidatesOf(store: EphemeralStore, coveredSinceMs: number): ExpiryCandidate[] {
  const found: ExpiryCandidate[] = [];
  store.findExpiring(100, () => true, (candidate) => found.push(candidate) > 0, coveredSinceMs);
  return found;
}

function listed(store: EphemeralStore, service: string): string {
  return store.instancesOf(key(service, '0.0.0.0')).map((instance) => `${instance.ip}${instance.healthy ? '' : '(unhealthy)'}`).join(',');
}

test('a takeover with every member live and answering counts silence from the latest beat anyone heard, not from the takeover', () => {
  const clock = { ms: 1_700_000_000_000 };
  const start = clock.ms;
  const owner = storeOf('a', clock);
  const taker = storeOf('b', clock);
  const k = key('moved', '10.0.0.1');
  const serviceId = serviceIdOfKey(k);
  owner.put(k, { weight: 1, enabled: true, healthy: true, metadata: jepsenTimings }, '', 'register');
  taker.merge(owner.exportRecord(owner.record(serviceId)!));
  // The owner heard the client's last beat at +1 s (taker did not); at +2.5 s a member comes back and the service
  // moves to taker. The floor (the last death taker knows of) is before the beat.
  clock.ms = start + 1000;
  owner.beat(serviceId, entryIdOf(k.cluster, k.ip, k.port), true);
  clock.ms = start + 2500;
  taker.record(serviceId)!.ownedSinceMs = clock.ms;
  const floor = start - 60_000;
  // A new owner first waits one beat interval (the clients beating it need no question).
  clock.ms = start + 3499;
  assert.equal(candidatesOf(taker, floor).length, 0, 'not within one interval of the takeover');
  clock.ms = start + 3500;
  // Taker knows only the registration (at 0): a candidate; the owner's answer (heard at +1 s) spares it.
  const early = candidatesOf(taker, floor);
  assert.equal(early.length, 1, 'a candidate: 3 s after the registration, the last contact taker knows of');
  taker.heardElsewhere(early[0]!.entry, start + 1000);
  assert.deepEqual(taker.expireConfirmed(early, () => true, floor), { scanned: 1, unhealthy: 0, removed: 0 }, 'spared: heard 2.5 s ago');
  clock.ms = start + 4000;
  const candidates = candidatesOf(taker, floor);
  assert.equal(candidates.length, 1, 'due 3 s after the beat of +1 s: the takeover at +2.5 s gives no grace');
  // Without complete answers, the takeover grace stands (3 s from +2.5 s).
  assert.deepEqual(taker.expireConfirmed(candidates, () => true, NOT_COVERED), { scanned: 1, unhealthy: 0, removed: 0 });
  assert.deepEqual(taker.expireConfirmed(candidates, () => true, floor), { scanned: 1, unhealthy: 1, removed: 0 });
  assert.equal(listed(taker, 'moved'), '10.0.0.1(unhealthy)');
});

test('coverage never counts from before the last death this member knows of, nor from a snapshot\'s arrival', () => {
  const clock = { ms: 1_700_000_000_000 };
  const start = clock.ms;
  const owner = storeOf('a', clock);
  const k = key('floor', '10.0.0.1');
  const serviceId = serviceIdOfKey(k);
  owner.put(k, { weight: 1, enabled: true, healthy: true, metadata: jepsenTimings }, '', 'register');
  // A peer went down at +2 s (it may have heard beats up to then that nobody else heard): silence counts from +2 s.
  const successor = storeOf('b', clock);
  clock.ms = start + 500;
  successor.merge(owner.exportRecord(owner.record(serviceId)!));
  clock.ms = start + 2000;
  successor.record(serviceId)!.ownedSinceMs = clock.ms;
  clock.ms = start + 4999;
  assert.equal(candidatesOf(successor, start + 2000).length, 0, 'the floor (+2 s) holds, though the last beat heard was at 0');
  clock.ms = start + 5000;
  assert.equal(candidatesOf(successor, start + 2000).length, 1);
  // A member restarted at +10 s loads the instance from a snapshot at +10.2 s and is responsible: its own start is its
  // floor (it may have heard beats before it died); the arrival is not a beat.
  clock.ms = start + 10_200;
  const restarted = storeOf('c', clock);
  restarted.merge(owner.exportRecord(owner.record(serviceId)!));
  clock.ms = start + 13_000;
  assert.equal(candidatesOf(restarted, start + 10_000).length, 1, 'due 3 s after its start, not 3 s after the snapshot');
  assert.equal(candidatesOf(restarted, NOT_COVERED).length, 0, 'the grace alone counts from the arrival');
});

test('an unhealthy instance taken over with complete answers is removed by its flip\'s silence, with no wait after the takeover', () => {
  const clock = { ms: 1_700_000_000_000 };
  const start = clock.ms;
  const owner = storeOf('a', clock);
  const k = key('flipped', '10.0.0.1');
  const serviceId = serviceIdOfKey(k);
  owner.put(k, { weight: 1, enabled: true, healthy: true, metadata: jepsenTimings }, '', 'register');
  clock.ms = start + 3000;
  assert.equal(owner.scanExpiry(10, () => true).unhealthy, 1);
  const taker = storeOf('b', clock);
  taker.merge(owner.exportRecord(owner.record(serviceId)!));
  clock.ms = start + 5000;
  taker.record(serviceId)!.ownedSinceMs = clock.ms;
  clock.ms = start + 5999;
  assert.equal(candidatesOf(taker, start - 60_000).length, 0);
  clock.ms = start + 6000;
  const candidates = candidatesOf(taker, start - 60_000);
  assert.equal(candidates.length, 1, 'due 6 s after the silence its flip carries');
  assert.equal(taker.expireConfirmed(candidates, () => true, NOT_COVERED).removed, 0, 'without complete answers: three intervals after the takeover');
  assert.equal(taker.expireConfirmed(candidates, () => true, start - 60_000).removed, 1);
  assert.equal(listed(taker, 'flipped'), '');
});

// --- (2) and (3): DistroNodes ---

const members = ['m1', 'm2', 'm3', 'm4', 'm5'];
const timings = { 'preserved.heart.beat.interval': '100', 'preserved.heart.beat.timeout': '600', 'preserved.ip.delete.timeout': '1200' };
const fast: DistroLimits = {
  ...limits,
  distroSyncDelayMs: 10,
  distroVerifyIntervalMs: 200,
  distroHeartbeatIntervalMs: 20,
  distroPeerTimeoutMs: 300,
  distroExpiryTickMs: 20,
  distroSnapshotRetryDelayMs: 50,
  beatIntervalMs: 100,
};

interface Cluster {
  readonly network: MemoryDistroNetwork;
  readonly nodes: Map<string, DistroNode>;
}

function startNode(cluster: Cluster, id: string): void {
  const node = new DistroNode({ self: id, members, limits: fast, logger: quiet });
  node.start(cluster.network.attach(id, node.handlers));
  cluster.nodes.set(id, node);
}

function startCluster(t: { after(fn: () => void): void }): Cluster {
  const cluster: Cluster = { network: new MemoryDistroNetwork(), nodes: new Map() };
  for (const id of members) startNode(cluster, id);
  t.after(() => {
    for (const node of cluster.nodes.values()) node.close();
  });
  return cluster;
}

/** kill stops a member as SIGKILL does: its calls and answers stop; what it heard is gone. */
function kill(cluster: Cluster, id: string): void {
  cluster.nodes.get(id)?.close();
  cluster.nodes.delete(id);
  cluster.network.detach(id);
}

function node(cluster: Cluster, id: string): DistroNode {
  const found = cluster.nodes.get(id);
  assert.ok(found !== undefined, id);
  return found;
}

function listing(target: DistroNode, service: string): string {
  return target.instancesOf(key(service, '0.0.0.0')).map((instance) => `${instance.ip}${instance.healthy ? '' : '(unhealthy)'}`).join(',');
}

async function register(cluster: Cluster, service: string, ip: string): Promise<void> {
  await node(cluster, 'm1').write({ type: 'register', instance: { ...key(service, ip), weight: 1, enabled: true, healthy: true, metadata: timings } }, anonymous);
}

/** CycleOutcome is what the survivors showed while a member was killed and restarted every 400 ms. */
interface CycleOutcome {
  /** goneMs: when the stopped instance was gone from every survivor, after its last beat (-1: never). */
  readonly goneMs: number;
  readonly evictions: readonly string[];
  readonly beatFailures: readonly string[];
}

/**
 * killCycles registers two instances of `service` through m1; 10.0.0.2 keeps beating through m1 every interval while
 * 10.0.0.1 beats twice more and stops. Then `cycler` is killed and restarted six times, 400 ms down and 400 ms back
 * (4.8 s, four delete timeouts), while the survivors' lists are watched every 10 ms.
 */
async function killCycles(cluster: Cluster, service: string, cycler: string, survivors: readonly string[]): Promise<CycleOutcome> {
  await register(cluster, service, '10.0.0.1');
  await register(cluster, service, '10.0.0.2');
  await waitFor(() => survivors.every((id) => listing(node(cluster, id), service) === '10.0.0.1,10.0.0.2'),
    { timeoutMs: 3000, intervalMs: 10, what: 'both instances on every member' });
  let beating = true;
  const beatFailures: string[] = [];
  const beater = (async () => {
    while (beating) {
      try {
        await node(cluster, 'm1').beat({ key: key(service, '10.0.0.2') }, anonymous);
      } catch (error) {
        beatFailures.push(error instanceof Error ? error.message : String(error));
      }
      await sleep(100);
    }
  })();
  for (let i = 0; i < 2; i++) {
    await node(cluster, 'm1').beat({ key: key(service, '10.0.0.1') }, anonymous);
    await sleep(100);
  }
  const lastBeatMs = Date.now();
  const evictions: string[] = [];
  let goneMs = -1;
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      const lists = survivors.map((id) => listing(node(cluster, id), service));
      for (const [i, list] of lists.entries()) if (!list.split(',').includes('10.0.0.2')) evictions.push(`${survivors[i]}: '${list}' at ${Date.now() - lastBeatMs} ms`);
      if (goneMs < 0 && lists.every((list) => !list.includes('10.0.0.1'))) goneMs = Date.now() - lastBeatMs;
      await sleep(10);
    }
  })();
  for (let cycle = 0; cycle < 6; cycle++) {
    await sleep(cycle === 0 ? 100 : 400);
    kill(cluster, cycler);
    await sleep(400);
    startNode(cluster, cycler);
  }
  await sleep(400);
  watching = false;
  beating = false;
  await Promise.all([watcher, beater]);
  return { goneMs, evictions, beatFailures };
}

/** serviceMovedBy finds a service whose owner over `withCycler` differs from its owner over `without`, both survivors. */
function serviceMovedBy(prefix: string, withCycler: readonly string[], without: readonly string[], ownerWith?: string): string {
  for (let i = 0; i < 10_000; i++) {
    const id = serviceIdOfKey(key(`${prefix}-${i}`, '0.0.0.0'));
    const before = responsibleMember(id, withCycler);
    const after = responsibleMember(id, without);
    if (without.includes(before) && before !== after && (ownerWith === undefined || before === ownerWith)) return `${prefix}-${i}`;
  }
  assert.fail(`no ${prefix} service moves between survivors`);
}

test('a member killed and restarted every 400 ms moves a service between survivors without keeping its stopped instance (D4 11901)', async (t) => {
  const cluster = startCluster(t);
  // S: m3's over all five, another survivor's over the four without m4: every kill and every return of m4 moves it,
  // every 400 ms, less than the 600 ms unhealthy timeout.
  const survivors = ['m1', 'm2', 'm3', 'm5'];
  const service = serviceMovedBy('d4', members, survivors, 'm3');
  const { goneMs, evictions, beatFailures } = await killCycles(cluster, service, 'm4', survivors);
  console.log(`stopped instance gone from every survivor ${goneMs} ms after its last beat (delete timeout 1200 ms, handovers every 400 ms for 4800 ms)`);
  assert.deepEqual(beatFailures, [], 'every beat was answered');
  assert.deepEqual(evictions, [], 'the beating instance stayed listed, healthy, on every survivor');
  // The bound of one fault's handovers: the kill's successor's grace from the kill, its removal after the flip, and
  // one takeover's three intervals: about 100 + 600 + 600 + 300 ms, plus ticks; before the fix, never while the kills
  // went on.
  assert.ok(goneMs >= 1200 - 20 && goneMs < 2600, `the stopped instance was gone ${goneMs} ms after its last beat (not before its delete timeout)`);
});

test('while one member stays down, another killed and restarted every 400 ms does not keep a stopped instance listed', async (t) => {
  // Until 2026-11-23 a member down in the owner's view meant no coverage at all: every handover among the others
  // restarted the takeover grace, so with m5 dead for good and m4 flapping, the stopped instance stayed healthy for as
  // long as m4 flapped. m5 now counts as dead since it was seen going down, and m4's kills as deaths (the floor).
  const cluster = startCluster(t);
  kill(cluster, 'm5');
  const survivors = ['m1', 'm2', 'm3'];
  await waitFor(() => survivors.every((id) => node(cluster, id).liveMembers().length === 4), { timeoutMs: 2000, intervalMs: 5, what: 'm5 down everywhere' });
  const service = serviceMovedBy('m5-down', ['m1', 'm2', 'm3', 'm4'], survivors);
  const { goneMs, evictions, beatFailures } = await killCycles(cluster, service, 'm4', survivors);
  console.log(`with m5 down: stopped instance gone from every survivor ${goneMs} ms after its last beat`);
  assert.deepEqual(beatFailures, [], 'every beat was answered');
  assert.deepEqual(evictions, [], 'the beating instance stayed listed, healthy, on every survivor');
  assert.ok(goneMs >= 1200 - 20 && goneMs < 2600, `the stopped instance was gone ${goneMs} ms after its last beat (-1: never while m4 flapped)`);
});

test('the owner dies while its client beats it directly: the successor still waits a full timeout from the death', async (t) => {
  const cluster = startCluster(t);
  let service = '';
  for (let i = 0; i < 10_000 && service === ''; i++) {
    if (responsibleMember(serviceIdOfKey(key(`grace-${i}`, '0.0.0.0')), members) === 'm3') service = `grace-${i}`;
  }
  const successor = responsibleMember(serviceIdOfKey(key(service, '0.0.0.0')), ['m1', 'm2', 'm4', 'm5']);
  await register(cluster, service, '10.0.0.1');
  const others = members.filter((id) => id !== 'm3');
  await waitFor(() => others.every((id) => listing(node(cluster, id), service) === '10.0.0.1'), { timeoutMs: 3000, intervalMs: 10, what: 'the instance everywhere' });
  // The client beats the owner itself (nobody else hears it) for two timeouts, so what the others heard is old.
  for (let i = 0; i < 12; i++) {
    await node(cluster, 'm3').beat({ key: key(service, '10.0.0.1') }, anonymous);
    await sleep(100);
  }
  kill(cluster, 'm3');
  const killedMs = Date.now();
  // The client notices only after 450 ms (less than the 600 ms timeout) and goes on through m1.
  await sleep(450);
  const seen: string[] = [];
  for (let i = 0; i < 15; i++) {
    await node(cluster, 'm1').beat({ key: key(service, '10.0.0.1') }, anonymous);
    for (const id of others) {
      const list = listing(node(cluster, id), service);
      if (list !== '10.0.0.1') seen.push(`${id}: '${list}' at ${Date.now() - killedMs} ms`);
    }
    await sleep(100);
  }
  assert.equal(node(cluster, successor).responsibleFor(serviceIdOfKey(key(service, '0.0.0.0'))), successor);
  assert.deepEqual(seen, [], 'no survivor flagged or removed the instance whose beats died with its owner');
});

test('the coverage floor: when a member was seen going down, while it is down and after it is back', async (t) => {
  const cluster = startCluster(t);
  const m1 = node(cluster, 'm1');
  await waitFor(() => m1.liveMembers().length === 5, { timeoutMs: 2000, intervalMs: 5, what: 'all five live in m1\'s view' });
  const startFloor = m1.coverageFloorMs();
  // The instants compared with the floor are read on the members' own clock (steadyWallMs), not Date.now(): the
  // steady clock follows the wall clock only by slewing, so the two can stand a millisecond or more apart (a CI run
  // of session 27 saw the floor 1 ms "before" a cut read on Date.now()).
  assert.ok(Number.isFinite(startFloor) && startFloor <= steadyWallMs(), 'm1\'s own start while nobody went down');
  const cutMs = steadyWallMs();
  cluster.network.isolate('m5');
  await waitFor(() => m1.liveMembers().length === 4, { timeoutMs: 2000, intervalMs: 5, what: 'm5 down in m1\'s view' });
  // m5 may be dead (its beats gone) or alive behind the cut (hearing beats nobody here hears, this side's silence
  // being its own): it counts as dead since m1 saw it go down.
  const downFloor = m1.coverageFloorMs();
  assert.ok(downFloor >= cutMs && downFloor < cutMs + 100, `while m5 is down, the floor is when m1 saw it go down (${downFloor - cutMs} ms after the cut)`);
  await sleep(100);
  cluster.network.heal();
  await waitFor(() => m1.liveMembers().length === 5, { timeoutMs: 2000, intervalMs: 5, what: 'm5 back in m1\'s view' });
  const floor = m1.coverageFloorMs();
  assert.equal(floor, downFloor, 'after m5 is back, still when m1 saw it go down, not its return');
});
