// Goal: the ephemeral store, the AP path's pure core (src/ap/ephemeral-store.ts, docs/ap.md), keeps Distro's
// promises on one member: copies merge entry by entry with last-writer-wins on hybrid-logical-clock versions, in any
// order; a tombstone beats every older registration (no resurrection from a stale copy); the per-service checksum is
// equal exactly when the live contents are; tombstones are bounded in time and count; expiry follows Nacos's timings
// (unhealthy after 15 s, removed after 30 s, NACOS.md §5.3) and the `preserved.*` metadata overrides, counts silence
// from a takeover (grace) for a healthy instance while an unhealthy one keeps its removal deadline across handovers,
// revives an instance on a beat, and scans in bounded slices.
//
// Method: stores on a fake clock injected at the seam (`now`), driven directly; "members" are separate stores whose
// records are exchanged with exportRecord/merge, as the Distro node does over the wire.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { limits } from '../../src/limits.ts';
import { EMPTY_CHECKSUM, EphemeralStore, mergeOverrides, serviceIdOfKey, entryIdOf, type InstanceOverride, type StoreLimits } from '../../src/ap/ephemeral-store.ts';
import { isCairnError } from '../../src/errors.ts';
import type { InstanceKey } from '../../src/naming/model.ts';

const service = { namespace: 'public', group: 'DEFAULT_GROUP', service: 'orders' };
const keyOf = (ip: string, port = 8080, cluster = 'DEFAULT'): InstanceKey => ({ ...service, cluster, ip, port });
const fields = { weight: 1, enabled: true, healthy: true, metadata: {} };
const serviceId = serviceIdOfKey(service);

/** Clock is a fake wall clock. */
class Clock {
  constructor(public ms = 1_700_000_000_000) {}
  now = (): number => this.ms;
  advance(ms: number): void {
    this.ms += ms;
  }
}

function storeOf(self: string, clock: Clock, overrides: Partial<StoreLimits> = {}) {
  const changes: string[] = [];
  const store = new EphemeralStore({
    self, now: clock.now, limits: { ...limits, ...overrides },
    events: { onEntryChanged: () => undefined, onServiceChanged: (record) => changes.push(record.key.service) },
  });
  return { store, changes };
}

function ips(store: EphemeralStore): string[] {
  return store.instancesOf(service).map((instance) => `${instance.ip}:${instance.port}${instance.healthy ? '' : '(unhealthy)'}`);
}

test('last writer wins: copies merged in either order agree, and an older copy never replaces a newer one', () => {
  const clock = new Clock();
  const { store: a } = storeOf('a', clock);
  const { store: b } = storeOf('b', clock);
  a.put(keyOf('10.0.0.1'), { ...fields, weight: 1 }, '', 'register');
  const first = a.exportRecord(a.record(serviceId)!);
  b.merge(first);
  // b writes later (its clock observed a's version, so its version is newer even at the same wall time).
  b.put(keyOf('10.0.0.1'), { ...fields, weight: 7 }, '', 'register');
  const second = b.exportRecord(b.record(serviceId)!);
  const { store: c } = storeOf('c', clock);
  const { store: d } = storeOf('d', clock);
  c.merge(first);
  c.merge(second);
  d.merge(second);
  assert.equal(d.merge(first), 0, 'the older copy changes nothing');
  for (const store of [b, c, d]) assert.equal(store.instancesOf(service)[0]?.weight, 7);
  assert.equal(c.checksum(serviceId), d.checksum(serviceId));
  assert.equal(a.merge(second), 1);
  assert.equal(a.checksum(serviceId), b.checksum(serviceId));
});

test('a tombstone beats every older registration: a stale copy does not resurrect a deregistered instance', () => {
  const clock = new Clock();
  const { store: owner } = storeOf('a', clock);
  const { store: peer } = storeOf('b', clock);
  owner.put(keyOf('10.0.0.1'), fields, '', 'register');
  const stale = owner.exportRecord(owner.record(serviceId)!);
  clock.advance(5);
  assert.deepEqual(owner.remove(keyOf('10.0.0.1')).removed, true);
  const removed = owner.exportRecord(owner.record(serviceId)!);
  assert.equal(removed.entries[0]?.removed, true);
  // The peer learns of the deregistration first, then the stale registration arrives: it stays gone.
  peer.merge(removed);
  peer.merge(stale);
  assert.deepEqual(ips(peer), []);
  // In the other order, the tombstone removes it.
  const { store: other } = storeOf('c', clock);
  other.merge(stale);
  assert.deepEqual(ips(other), ['10.0.0.1:8080']);
  other.merge(removed);
  assert.deepEqual(ips(other), []);
  assert.equal(owner.remove(keyOf('10.0.0.1')).removed, false, 'removing an absent instance is not an error');
  // A registration after the deregistration (a newer version) wins again.
  clock.advance(5);
  owner.put(keyOf('10.0.0.1'), fields, '', 'register');
  peer.merge(owner.exportRecord(owner.record(serviceId)!));
  assert.deepEqual(ips(peer), ['10.0.0.1:8080']);
});

test('a deregistration of an instance this member never saw still leaves a tombstone: the registration arriving later stays gone (jepsen-like D1)', () => {
  const clock = new Clock();
  // Two sides of a partition: the registration is acknowledged on one, the deregistration on the other.
  const { store: left } = storeOf('a', clock);
  const { store: right } = storeOf('b', clock);
  left.put(keyOf('10.0.0.9'), fields, '', 'register');
  const registered = left.exportRecord(left.record(serviceId)!);
  clock.advance(5);
  assert.equal(right.remove(keyOf('10.0.0.9')).removed, false, 'unknown here: answered, nothing was live');
  const record = right.record(serviceId);
  assert.ok(record !== undefined, 'the tombstone needs a record even for a service this member never held');
  const deregistered = right.exportRecord(record);
  assert.equal(deregistered.entries[0]?.removed, true);
  // After the heal each side merges the other's copy: the instance is gone on both, in either order.
  right.merge(registered);
  left.merge(deregistered);
  assert.deepEqual(ips(right), []);
  assert.deepEqual(ips(left), []);
  assert.equal(left.checksum(serviceId), right.checksum(serviceId));
  assert.deepEqual(right.serviceKeys(service.namespace), [], 'a tombstone-only service is not listed');
});

test('the checksum is equal exactly when the live contents are, whatever the order, and is kept incrementally', () => {
  const clock = new Clock();
  const { store: a } = storeOf('a', clock);
  assert.equal(a.checksum(serviceId), EMPTY_CHECKSUM);
  for (let i = 1; i <= 5; i++) a.put(keyOf(`10.0.0.${i}`), fields, '', 'register');
  a.remove(keyOf('10.0.0.3'));
  const record = a.exportRecord(a.record(serviceId)!);
  const { store: b } = storeOf('b', clock);
  b.merge({ key: record.key, entries: [...record.entries].reverse() });
  assert.equal(b.checksum(serviceId), a.checksum(serviceId));
  // A different version of one instance differs.
  a.put(keyOf('10.0.0.1'), { ...fields, weight: 2 }, '', 'register');
  assert.notEqual(b.checksum(serviceId), a.checksum(serviceId));
  b.merge(a.exportRecord(a.record(serviceId)!));
  assert.equal(b.checksum(serviceId), a.checksum(serviceId));
  // Tombstones do not count: a member that forgot a tombstone still agrees.
  const { store: c } = storeOf('c', clock);
  c.merge({ key: record.key, entries: record.entries.filter((entry) => !entry.removed) });
  c.merge(a.exportRecord(a.record(serviceId)!));
  assert.equal(c.checksum(serviceId), a.checksum(serviceId));
  // Removing everything returns to the empty checksum.
  for (let i = 1; i <= 5; i++) a.remove(keyOf(`10.0.0.${i}`));
  assert.equal(a.checksum(serviceId), EMPTY_CHECKSUM);
});

test('an operator\'s override replicates with its entry, survives re-registration and the tombstone, and goes with the tombstone', () => {
  const clock = new Clock();
  const { store: a } = storeOf('a', clock);
  const { store: b } = storeOf('b', clock);
  const key = keyOf('10.0.0.1');
  a.put(key, { ...fields, weight: 2, metadata: { zone: 'a' } }, '', 'register');
  a.patch(key, { enabled: false, metadata: { drain: 'yes' } });
  a.put(key, { ...fields, weight: 3, metadata: { zone: 'b' } }, '', 'register');
  const served = (store: EphemeralStore) => store.instancesOf(service).map((i) => [i.enabled, i.weight, i.metadata]);
  assert.deepEqual(served(a), [[false, 3, { zone: 'b', drain: 'yes' }]]);
  // A peer's copy carries the client's fields and the override apart, and serves the same.
  b.merge(a.exportRecord(a.record(serviceId)!));
  assert.deepEqual(served(b), served(a));
  assert.equal(b.checksum(serviceId), a.checksum(serviceId));
  // Health flips keep it: expiry flags the instance unhealthy, a beat revives it, the override stays.
  clock.advance(limits.unhealthyAfterMs);
  a.scanExpiry(1000, () => true);
  assert.deepEqual(a.instancesOf(service).map((i) => [i.healthy, i.enabled]), [[false, false]]);
  // Removed and registered again within the tombstone retention: the override is back.
  a.remove(key);
  clock.advance(limits.distroTombstoneRetentionMs - 1);
  a.put(key, fields, '', 'register');
  assert.deepEqual(served(a), [[false, 1, { drain: 'yes' }]]);
  // Removed, and the tombstone forgotten: a new registration is the client's alone.
  a.remove(key);
  clock.advance(limits.distroTombstoneRetentionMs);
  a.collectTombstones();
  a.put(key, fields, '', 'register');
  assert.deepEqual(served(a), [[true, 1, {}]]);
  // An operator's update of a session's instance keeps it the session's (and overrides, not replaces, its fields).
  const owned = keyOf('10.0.0.9');
  a.put(owned, { ...fields, metadata: { zone: 'a' } }, 'session-1', 'register');
  a.put(owned, { weight: 4, enabled: false, healthy: true, metadata: { tier: 'gold' } }, '', 'update');
  const exported = a.exportRecord(a.record(serviceId)!).entries.find((e) => e.ip === '10.0.0.9');
  assert.deepEqual([exported?.owner, exported?.weight, exported?.metadata], ['session-1', 1, { zone: 'a' }]);
  assert.deepEqual({ ...exported?.override, version: undefined }, { enabled: false, weight: 4, metadata: { tier: 'gold' }, version: undefined });
  assert.equal(a.removeOwned(owned, 'session-1').removed, true, 'its session\'s close still removes it');
});

test('the override and the client\'s part merge each by its own version: a re-registration on the far side of a partition keeps a later operator change, and an older override never replaces a newer one', () => {
  const clock = new Clock();
  const { store: a } = storeOf('a', clock);
  const { store: b } = storeOf('b', clock);
  const key = keyOf('10.0.0.1');
  a.put(key, { ...fields, weight: 2 }, '', 'register');
  const plain = a.exportRecord(a.record(serviceId)!);
  b.merge(plain);
  // Partitioned: the operator disables it at a; then the client re-registers at b, which never saw the change.
  clock.advance(10);
  a.patch(key, { enabled: false });
  const patched = a.exportRecord(a.record(serviceId)!);
  clock.advance(10);
  b.put(key, { ...fields, weight: 9, metadata: { restarted: 'yes' } }, '', 'register');
  // Healed: both merge the other's copy, in either order, and agree: the client's newer fields, the operator's override.
  const fromA = a.exportRecord(a.record(serviceId)!);
  const fromB = b.exportRecord(b.record(serviceId)!);
  assert.equal(a.merge(fromB), 1);
  assert.equal(b.merge(fromA), 1);
  for (const store of [a, b]) {
    const [instance] = store.instancesOf(service);
    assert.deepEqual([instance?.enabled, instance?.weight, instance?.metadata], [false, 9, { restarted: 'yes' }]);
  }
  assert.equal(a.checksum(serviceId), b.checksum(serviceId));
  assert.equal(a.merge(fromB), 0, 'the same copy again changes nothing');
  // The operator enables it at b; an older copy from a (still carrying the disabling override) changes nothing at b.
  clock.advance(10);
  b.patch(key, { enabled: true });
  assert.equal(b.merge(fromA), 0);
  assert.equal(b.instancesOf(service)[0]?.enabled, true);
  a.merge(b.exportRecord(b.record(serviceId)!));
  assert.equal(a.instancesOf(service)[0]?.enabled, true);
  assert.equal(a.checksum(serviceId), b.checksum(serviceId));
  // Copies that differ only in the override checksum differently, so verify finds them.
  const { store: c } = storeOf('c', clock);
  const { store: d } = storeOf('d', clock);
  c.merge(plain);
  d.merge(patched);
  assert.equal(c.exportRecord(c.record(serviceId)!).entries[0]?.version, d.exportRecord(d.record(serviceId)!).entries[0]?.version);
  assert.notEqual(c.checksum(serviceId), d.checksum(serviceId));
  // The other order: the client re-registers at b first, then the operator changes the weight at a (which holds the
  // client's older fields): the operator's change does not carry those older fields over the re-registration.
  const other = keyOf('10.0.0.2');
  a.put(other, { ...fields, weight: 1 }, '', 'register');
  b.merge(a.exportRecord(a.record(serviceId)!));
  clock.advance(10);
  b.put(other, { ...fields, weight: 1, metadata: { build: '2' } }, '', 'register');
  clock.advance(10);
  a.patch(other, { weight: 3 });
  a.merge(b.exportRecord(b.record(serviceId)!));
  b.merge(a.exportRecord(a.record(serviceId)!));
  for (const store of [a, b]) {
    const instance = store.instancesOf(service).find((i) => i.ip === '10.0.0.2');
    assert.deepEqual([instance?.weight, instance?.metadata], [3, { build: '2' }]);
  }
  assert.equal(a.checksum(serviceId), b.checksum(serviceId));
});

test('tombstones are forgotten after distroTombstoneRetentionMs, and the oldest beyond distroTombstonesMax early', () => {
  const clock = new Clock();
  const { store } = storeOf('a', clock, { distroTombstonesMax: 3 });
  for (let i = 1; i <= 5; i++) store.put(keyOf(`10.0.0.${i}`), fields, '', 'register');
  for (let i = 1; i <= 5; i++) {
    clock.advance(1);
    store.remove(keyOf(`10.0.0.${i}`));
  }
  assert.equal(store.sizes().tombstones, 5);
  assert.equal(store.collectTombstones(), 2);
  assert.deepEqual(store.sizes(), { services: 1, instances: 0, tombstones: 3, tombstonesDropped: 2 });
  const kept = store.exportRecord(store.record(serviceId)!).entries.map((entry) => entry.ip);
  assert.deepEqual(kept.sort(), ['10.0.0.3', '10.0.0.4', '10.0.0.5'], 'the oldest are dropped first');
  clock.advance(limits.distroTombstoneRetentionMs - 10);
  assert.equal(store.collectTombstones(), 0, 'kept for the whole retention');
  clock.advance(10);
  assert.equal(store.collectTombstones(), 3);
  assert.deepEqual(store.sizes(), { services: 0, instances: 0, tombstones: 0, tombstonesDropped: 2 }, 'an empty record is dropped');
  assert.ok(limits.distroTombstoneRetentionMs >= limits.removeAfterMs + 2 * limits.distroVerifyIntervalMs);
});

test('the tombstone queue stays bounded when one instance is registered and removed again and again', () => {
  // Each removal queues a reference; before the queue dropped its stale ones, 500 000 cycles behind one young
  // tombstone left 500 001 references for the whole retention while only 2 tombstones were current.
  const clock = new Clock();
  const tombstonesMax = 10;
  const { store } = storeOf('a', clock, { distroTombstonesMax: tombstonesMax });
  store.put(keyOf('10.0.0.1'), fields, '', 'register');
  store.remove(keyOf('10.0.0.1'));
  let most = 0;
  for (let i = 0; i < 20_000; i++) {
    store.put(keyOf('10.0.0.2'), fields, '', 'register');
    store.remove(keyOf('10.0.0.2'));
    most = Math.max(most, store.tombstoneReferencesQueued());
  }
  assert.equal(store.sizes().tombstones, 2);
  assert.ok(most <= 2 * tombstonesMax + 1024, `at most ${most} references queued`);
  // The current tombstones are still collected in order once their retention ends.
  clock.advance(limits.distroTombstoneRetentionMs + 1);
  assert.equal(store.collectTombstones(), 2);
  assert.equal(store.tombstoneReferencesQueued(), 0);
  assert.deepEqual(store.sizes(), { services: 0, instances: 0, tombstones: 0, tombstonesDropped: 0 });
});

test('expiry: unhealthy after 15 s without a beat, healthy again on a beat, removed after 30 s (NACOS.md §5.3)', () => {
  const clock = new Clock();
  const { store, changes } = storeOf('a', clock);
  store.put(keyOf('10.0.0.1'), fields, '', 'register');
  const owns = (): boolean => true;
  clock.advance(14_999);
  store.scanExpiry(1000, owns);
  assert.deepEqual(ips(store), ['10.0.0.1:8080']);
  clock.advance(1);
  assert.equal(store.scanExpiry(1000, owns).unhealthy, 1);
  assert.deepEqual(ips(store), ['10.0.0.1:8080(unhealthy)']);
  // A beat makes it healthy again (a versioned write, reported as a change).
  const before = changes.length;
  assert.ok(store.beat(serviceId, entryIdOf('DEFAULT', '10.0.0.1', 8080), true) !== undefined);
  assert.deepEqual(ips(store), ['10.0.0.1:8080']);
  assert.equal(changes.length, before + 1);
  clock.advance(29_999);
  store.scanExpiry(1000, owns);
  assert.deepEqual(ips(store), ['10.0.0.1:8080(unhealthy)']);
  clock.advance(1);
  assert.equal(store.scanExpiry(1000, owns).removed, 1);
  assert.deepEqual(ips(store), []);
  assert.equal(store.beat(serviceId, entryIdOf('DEFAULT', '10.0.0.1', 8080), true), undefined, 'a removed instance is unknown to beats');
  // A member that is not responsible never expires anything.
  store.put(keyOf('10.0.0.2'), fields, '', 'register');
  clock.advance(60_000);
  assert.deepEqual(store.scanExpiry(1000, () => false), { scanned: 1, unhealthy: 0, removed: 0 });
});

test('preserved.* metadata overrides the timings, and a timeout shorter than the interval is refused (Nacos 2.x)', () => {
  const clock = new Clock();
  const { store } = storeOf('a', clock);
  const metadata = { 'preserved.heart.beat.interval': '1000', 'preserved.heart.beat.timeout': '3000', 'preserved.ip.delete.timeout': '6000' };
  store.put(keyOf('10.0.0.1'), { ...fields, metadata }, '', 'register');
  assert.equal(store.beat(serviceId, entryIdOf('DEFAULT', '10.0.0.1', 8080), true)?.timeouts.intervalMs, 1000);
  clock.advance(3000);
  store.scanExpiry(10, () => true);
  assert.deepEqual(ips(store), ['10.0.0.1:8080(unhealthy)']);
  clock.advance(3000);
  store.scanExpiry(10, () => true);
  assert.deepEqual(ips(store), []);
  const refused: Array<[Record<string, string>, RegExp]> = [
    [{ 'preserved.heart.beat.interval': '5000', 'preserved.heart.beat.timeout': '3000' }, /must less than 'heart beat timeout'/],
    [{ 'preserved.heart.beat.interval': '5000', 'preserved.ip.delete.timeout': '4000' }, /must less than/],
    [{ 'preserved.heart.beat.timeout': 'soon' }, /must be a number of milliseconds/],
    [{ 'preserved.ip.delete.timeout': '0' }, /must be a number of milliseconds/],
  ];
  for (const [bad, message] of refused) {
    assert.throws(() => store.put(keyOf('10.0.0.9'), { ...fields, metadata: bad }, '', 'register'),
      (error: unknown) => isCairnError(error, 'CAIRN_INVALID_ARGUMENT') && message.test(error.message), JSON.stringify(bad));
  }
  assert.deepEqual(ips(store), [], 'nothing was registered');
});

test('takeover grace: silence counts from when this member became responsible, not from the last beat it saw', () => {
  const clock = new Clock();
  const { store } = storeOf('a', clock);
  store.put(keyOf('10.0.0.1'), fields, '', 'register');
  clock.advance(40_000);
  // This member takes over now: beats went to the old owner meanwhile.
  store.record(serviceId)!.ownedSinceMs = clock.ms;
  clock.advance(14_000);
  store.scanExpiry(10, () => true);
  assert.deepEqual(ips(store), ['10.0.0.1:8080']);
  clock.advance(1000);
  store.scanExpiry(10, () => true);
  assert.deepEqual(ips(store), ['10.0.0.1:8080(unhealthy)']);
});

test('an unhealthy instance keeps its removal deadline across takeovers and restarts: the TTL is not reset by a handover', () => {
  // Found by jepsen-like D4: with the grace counted from every takeover, a member killed and restarted every few
  // seconds (each change of the live set moves most services) kept dead instances listed for a minute.
  const clock = new Clock();
  const start = clock.ms;
  const metadata = { 'preserved.heart.beat.interval': '1000', 'preserved.heart.beat.timeout': '3000', 'preserved.ip.delete.timeout': '6000' };
  const { store: owner } = storeOf('a', clock);
  const { store: survivor } = storeOf('b', clock);
  owner.put(keyOf('10.0.0.1'), { ...fields, metadata }, '', 'register');
  survivor.merge(owner.exportRecord(owner.record(serviceId)!));
  clock.advance(3000);
  assert.equal(owner.scanExpiry(10, () => true).unhealthy, 1, 'the owner flips it after 3 s of silence');
  const flipped = owner.exportRecord(owner.record(serviceId)!);
  // A restarted member loads the flip in its snapshot 1 s later; the survivor receives it by sync at once.
  clock.advance(1000);
  const { store: restarted } = storeOf('c', clock);
  restarted.merge(flipped);
  survivor.merge(flipped);
  // Both take the service over now (the owner died): neither restarts the 6 s delete timeout from here; each waits
  // three beat intervals for a beat that would revive it, then removes it (at 7 s, not at 4 + 6 = 10 s).
  for (const store of [restarted, survivor]) store.record(serviceId)!.ownedSinceMs = clock.ms;
  clock.advance(2999);
  for (const store of [restarted, survivor]) assert.equal(store.scanExpiry(10, () => true).removed, 0, 'not before three beat intervals after the takeover');
  clock.advance(1);
  assert.equal(clock.ms - start, 7000);
  for (const store of [restarted, survivor]) assert.equal(store.scanExpiry(10, () => true).removed, 1, 'removed 7 s after the last beat, not 6 s after the takeover');
  // A takeover long after the flip: the last beat was 20 s ago, yet the new owner still waits three intervals.
  const { store: late } = storeOf('d', clock);
  const { store: first } = storeOf('e', clock);
  first.put(keyOf('10.0.0.3'), { ...fields, metadata }, '', 'register');
  clock.advance(3000);
  first.scanExpiry(10, () => true);
  clock.advance(17_000);
  late.merge(first.exportRecord(first.record(serviceId)!));
  late.record(serviceId)!.ownedSinceMs = clock.ms;
  clock.advance(2999);
  assert.equal(late.scanExpiry(10, () => true).removed, 0);
  clock.advance(1);
  assert.equal(late.scanExpiry(10, () => true).removed, 1);
  // A healthy instance still gets the takeover grace: its beats may have gone to the old owner.
  survivor.put(keyOf('10.0.0.2'), { ...fields, metadata }, '', 'register');
  clock.advance(10_000);
  survivor.record(serviceId)!.ownedSinceMs = clock.ms;
  clock.advance(2999);
  assert.equal(survivor.scanExpiry(10, () => true).unhealthy, 0);
  // And a beat revives an unhealthy instance at its new owner, which then counts from that beat.
  clock.advance(1);
  assert.equal(survivor.scanExpiry(10, () => true).unhealthy, 1);
  assert.ok(survivor.beat(serviceId, entryIdOf('DEFAULT', '10.0.0.2', 8080), true) !== undefined);
  clock.advance(5999);
  assert.equal(survivor.scanExpiry(10, () => true).removed, 0);
  assert.deepEqual(ips(survivor), ['10.0.0.2:8080(unhealthy)']);
});

test('the expiry scan looks at a bounded slice per call and resumes where it stopped', () => {
  const clock = new Clock();
  const { store } = storeOf('a', clock);
  for (let i = 0; i < 100; i++) store.put(keyOf('10.0.0.1', 1000 + i), fields, '', 'register');
  clock.advance(limits.removeAfterMs);
  let removed = 0;
  for (let call = 0; call < 20 && store.instancesOf(service).length > 0; call++) {
    const outcome = store.scanExpiry(10, () => true);
    assert.ok(outcome.scanned <= 10);
    removed += outcome.removed;
  }
  assert.equal(removed, 100);
});

test('registrations: update needs an existing instance, patches keep other fields, the per-service bound holds', () => {
  const clock = new Clock();
  const { store } = storeOf('a', clock, { instancesPerServiceMax: 2 });
  assert.throws(() => store.put(keyOf('10.0.0.1'), fields, '', 'update'), (error: unknown) => isCairnError(error, 'CAIRN_INSTANCE_NOT_FOUND'));
  store.put(keyOf('10.0.0.1'), { ...fields, metadata: { a: '1' } }, '', 'register');
  const patched = store.patch(keyOf('10.0.0.1'), { weight: 3 }).instance;
  assert.deepEqual([patched.weight, patched.metadata, patched.ephemeral, patched.instanceId], [3, { a: '1' }, true, '10.0.0.1#8080#DEFAULT#DEFAULT_GROUP@@orders']);
  store.put(keyOf('10.0.0.2'), fields, '', 'register');
  assert.throws(() => store.put(keyOf('10.0.0.3'), fields, '', 'register'), (error: unknown) => isCairnError(error, 'CAIRN_INSTANCES_PER_SERVICE_EXCEEDED'));
  store.put(keyOf('10.0.0.2'), { ...fields, weight: 5 }, '', 'register');
  assert.deepEqual(store.serviceKeys('public'), [service]);
  assert.deepEqual(store.serviceKeys('other'), []);
});

test('registrations keep the persistent registry\'s quotas: services per namespace and namespaces; a refused one leaves nothing behind', () => {
  const clock = new Clock();
  const { store } = storeOf('a', clock, { servicesPerNamespaceMax: 2, namespacesMax: 2 });
  const at = (namespace: string, name: string): InstanceKey => ({ namespace, group: 'DEFAULT_GROUP', service: name, cluster: 'DEFAULT', ip: '10.0.0.1', port: 80 });
  store.put(at('public', 's1'), fields, '', 'register');
  store.put(at('public', 's2'), fields, '', 'register');
  assert.throws(() => store.put(at('public', 's3'), fields, '', 'register'), (error: unknown) => isCairnError(error, 'CAIRN_SERVICES_PER_NAMESPACE_EXCEEDED'));
  store.put({ ...at('public', 's2'), ip: '10.0.0.2' }, fields, '', 'register');
  store.put(at('ns2', 's1'), fields, '', 'register');
  assert.throws(() => store.put(at('ns3', 's1'), fields, '', 'register'), (error: unknown) => isCairnError(error, 'CAIRN_NAMESPACES_EXCEEDED'));
  assert.deepEqual(store.sizes(), { services: 3, instances: 4, tombstones: 0, tombstonesDropped: 0 }, 'the refused registrations created no record');
  // A service left with tombstones only still counts until they are collected; then its room is free again.
  store.remove(at('ns2', 's1'));
  assert.throws(() => store.put(at('ns3', 's1'), fields, '', 'register'), (error: unknown) => isCairnError(error, 'CAIRN_NAMESPACES_EXCEEDED'));
  clock.advance(limits.distroTombstoneRetentionMs + 1);
  store.collectTombstones();
  store.put(at('ns3', 's1'), fields, '', 'register');
  // A peer's copy is merged whatever the quotas: the member responsible for it admitted it.
  const { store: peer } = storeOf('b', clock);
  peer.put(at('ns4', 's9'), fields, '', 'register');
  assert.equal(store.merge(peer.exportRecord(peer.record(serviceIdOfKey(at('ns4', 's9')))!)), 1);
  assert.equal(store.instancesOf(at('ns4', 's9')).length, 1);
});

test('two operators\' changes of different attributes on either side of a partition both stay; the same attribute goes to the later write', () => {
  const clock = new Clock();
  const { store: a } = storeOf('a', clock);
  const { store: b } = storeOf('b', clock);
  const key = keyOf('10.0.0.1');
  a.put(key, { ...fields, weight: 2, metadata: { build: '1' } }, '', 'register');
  b.merge(a.exportRecord(a.record(serviceId)!));
  // Partitioned: one operator disables the instance at a, another sets its weight and metadata at b, later.
  clock.advance(10);
  a.patch(key, { enabled: false });
  clock.advance(10);
  b.patch(key, { weight: 5, metadata: { drain: 'no' } });
  // A patch of health alone makes no override.
  const { store: c } = storeOf('c', clock);
  c.put(key, fields, '', 'register');
  c.patch(key, { healthy: false });
  assert.equal(c.exportRecord(c.record(serviceId)!).entries[0]?.override, undefined);
  // Healed, in either order: both changes stand (before, the later override replaced the earlier whole and the
  // instance came back enabled).
  const fromA = a.exportRecord(a.record(serviceId)!);
  const fromB = b.exportRecord(b.record(serviceId)!);
  assert.equal(a.merge(fromB), 1);
  assert.equal(b.merge(fromA), 1);
  for (const store of [a, b]) {
    const [instance] = store.instancesOf(service);
    assert.deepEqual([instance?.enabled, instance?.weight, instance?.metadata], [false, 5, { build: '1', drain: 'no' }]);
  }
  assert.equal(a.checksum(serviceId), b.checksum(serviceId));
  assert.equal(a.merge(fromB), 0, 'the same copy again changes nothing');
  assert.equal(b.merge(fromA), 0);
  // The same attribute on both sides: the later write wins, whichever copy arrives first.
  clock.advance(10);
  b.patch(key, { weight: 7 });
  clock.advance(10);
  a.patch(key, { weight: 8 });
  const laterA = a.exportRecord(a.record(serviceId)!);
  const earlierB = b.exportRecord(b.record(serviceId)!);
  assert.equal(a.merge(earlierB), 0, 'an older weight changes nothing');
  assert.equal(b.merge(laterA), 1);
  for (const store of [a, b]) assert.deepEqual([store.instancesOf(service)[0]?.weight, store.instancesOf(service)[0]?.enabled], [8, false]);
  // A full update (PUT) sets every attribute; a newer patch of one attribute on the other side still stands.
  clock.advance(10);
  a.put(key, { ...fields, enabled: true, weight: 1, metadata: { build: '1' } }, '', 'update');
  clock.advance(10);
  b.patch(key, { enabled: false });
  a.merge(b.exportRecord(b.record(serviceId)!));
  b.merge(a.exportRecord(a.record(serviceId)!));
  for (const store of [a, b]) assert.deepEqual([store.instancesOf(service)[0]?.enabled, store.instancesOf(service)[0]?.weight], [false, 1]);
  assert.equal(a.checksum(serviceId), b.checksum(serviceId));
});

test('mergeOverrides is commutative, associative and idempotent (random overrides from a fixed seed)', () => {
  let seed = 0x2545f491;
  const next = (n: number): number => {
    seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0;
    return seed % n;
  };
  const versionOf = (): { wallMs: number; counter: number; member: string } => ({ wallMs: 1000 + next(4), counter: next(3), member: ['a', 'b', 'c'][next(3)]! });
  const randomOverride = (): InstanceOverride | undefined => {
    if (next(6) === 0) return undefined;
    let result: InstanceOverride | undefined;
    // Built by merging single-attribute writes, the way stores build them.
    for (let i = 0; i < 1 + next(3); i++) {
      const version = versionOf();
      const write: InstanceOverride = [
        { enabled: next(2) === 0, version },
        { weight: next(10), version },
        { metadata: { k: String(next(3)) }, version },
      ][next(3)]!;
      result = mergeOverrides(result, write);
    }
    return result;
  };
  for (let round = 0; round < 2000; round++) {
    const [x, y, z] = [randomOverride(), randomOverride(), randomOverride()];
    assert.deepEqual(mergeOverrides(x, y), mergeOverrides(y, x), `commutative: ${JSON.stringify([x, y])}`);
    assert.deepEqual(mergeOverrides(mergeOverrides(x, y), z), mergeOverrides(x, mergeOverrides(y, z)), `associative: ${JSON.stringify([x, y, z])}`);
    assert.deepEqual(mergeOverrides(x, x), x, `idempotent: ${JSON.stringify(x)}`);
  }
});

test('a deregistration of an instance already removed keeps the operator\'s change its tombstone held', () => {
  const clock = new Clock();
  const { store: a } = storeOf('a', clock);
  const { store: b } = storeOf('b', clock);
  const key = keyOf('10.0.0.1');
  a.put(key, fields, '', 'register');
  a.patch(key, { weight: 113 });
  b.merge(a.exportRecord(a.record(serviceId)!));
  // Cut off, a alone takes a newer weight; then the instance is removed there and deregistered again (a redeploy's
  // DELETE reaching the member that had already expired it).
  clock.advance(10);
  a.patch(key, { weight: 118 });
  a.remove(key);
  clock.advance(10);
  assert.equal(a.remove(key).removed, false);
  assert.equal(a.exportRecord(a.record(serviceId)!).entries[0]?.override?.weight, 118, 'the second tombstone keeps the override');
  // Healed: b learns the tombstone and the newer weight; the client registers again at b: weight 118 everywhere.
  b.merge(a.exportRecord(a.record(serviceId)!));
  clock.advance(10);
  b.put(key, fields, '', 'register');
  a.merge(b.exportRecord(b.record(serviceId)!));
  for (const store of [a, b]) assert.equal(store.instancesOf(service)[0]?.weight, 118);
});

test('a closing session\'s removal applied late, from a copy older than a registration made meanwhile through another session, loses to that registration everywhere (jepsen-like D6, seed 44001)', () => {
  const clock = new Clock();
  const { store: stale } = storeOf('a', clock);
  const { store: peer } = storeOf('b', clock);
  const key = keyOf('10.0.0.1');
  stale.put(key, fields, 'session-1', 'register');
  peer.merge(stale.exportRecord(stale.record(serviceId)!));
  // The stale member is paused; the client opens a new session elsewhere and registers the instance again.
  clock.advance(7_000);
  peer.put(key, { ...fields, weight: 2 }, 'session-2', 'register');
  const redo = peer.exportRecord(peer.record(serviceId)!);
  // The stale member wakes, reads the old stream's cancel and removes what session-1 owns in its stale copy: a
  // tombstone with a version newer than the redo's.
  clock.advance(1);
  assert.equal(stale.removeOwned(key, 'session-1').removed, true);
  const close = stale.exportRecord(stale.record(serviceId)!);
  const closeEntry = close.entries[0]!;
  assert.equal(closeEntry.removed, true);
  assert.ok(closeEntry.version.wallMs > redo.entries[0]!.version.wallMs, 'the close\'s version is the newer one');
  // Merged either way round, on either member or a third: the redo stays, owned by the new session.
  assert.equal(peer.merge(close), 0, 'the late close changes nothing where the redo is');
  assert.equal(stale.merge(redo), 1);
  const { store: third } = storeOf('c', clock);
  third.merge(close);
  third.merge(redo);
  for (const store of [stale, peer, third]) {
    assert.deepEqual(store.instancesOf(service).map((i) => [i.ip, i.weight]), [['10.0.0.1', 2]]);
    assert.equal(store.exportRecord(store.record(serviceId)!).entries[0]?.owner, 'session-2');
    assert.equal(store.checksum(serviceId), peer.checksum(serviceId));
  }
  // The close of the session that owns it now removes it, and that removal wins everywhere.
  clock.advance(1);
  assert.equal(peer.removeOwned(key, 'session-2').removed, true);
  const secondClose = peer.exportRecord(peer.record(serviceId)!);
  stale.merge(secondClose);
  third.merge(secondClose);
  for (const store of [stale, peer, third]) assert.deepEqual(ips(store), []);
});

test('a registration\'s end is final: a health flip or an operator\'s change made from a copy that had not heard of it does not bring the instance back; a new registration does', () => {
  const clock = new Clock();
  const { store: a } = storeOf('a', clock);
  const { store: b } = storeOf('b', clock);
  const key = keyOf('10.0.0.1');
  a.put(key, fields, 'session-1', 'register');
  b.merge(a.exportRecord(a.record(serviceId)!));
  // The session closes at a; b, not yet told, changes the instance (later versions than the close's tombstone).
  clock.advance(1);
  a.removeOwned(key, 'session-1');
  clock.advance(1);
  b.patch(key, { healthy: false });
  clock.advance(1);
  b.patch(key, { weight: 9 });
  const closed = a.exportRecord(a.record(serviceId)!);
  const changed = b.exportRecord(b.record(serviceId)!);
  a.merge(changed);
  b.merge(closed);
  assert.deepEqual(ips(a), []);
  assert.deepEqual(ips(b), []);
  // A client's deregistration beats a later flip of an older registration the same way.
  clock.advance(1);
  a.put(keyOf('10.0.0.2'), fields, '', 'register');
  b.merge(a.exportRecord(a.record(serviceId)!));
  clock.advance(1);
  a.remove(keyOf('10.0.0.2'));
  clock.advance(1);
  b.patch(keyOf('10.0.0.2'), { healthy: false });
  a.merge(b.exportRecord(b.record(serviceId)!));
  b.merge(a.exportRecord(a.record(serviceId)!));
  assert.deepEqual(ips(a), []);
  assert.deepEqual(ips(b), []);
  // A registration after the end starts a new lineage and wins.
  clock.advance(1);
  b.put(key, fields, 'session-3', 'register');
  a.merge(b.exportRecord(b.record(serviceId)!));
  assert.deepEqual(ips(a), ['10.0.0.1:8080']);
  assert.equal(a.checksum(serviceId), b.checksum(serviceId));
});

test('an expiry\'s removal ends only the registration it was made for: the client\'s re-registration made meanwhile elsewhere stays', () => {
  const clock = new Clock();
  const { store: owner } = storeOf('a', clock);
  const { store: other } = storeOf('b', clock);
  const key = keyOf('10.0.0.1');
  owner.put(key, fields, '', 'register');
  other.merge(owner.exportRecord(owner.record(serviceId)!));
  // The client's beats stop reaching the owner; it registers again through the other member, which has not synced.
  clock.advance(10_000);
  other.put(key, { ...fields, weight: 5 }, '', 'register');
  clock.advance(limits.removeAfterMs);
  assert.equal(owner.scanExpiry(1000, () => true).removed, 1, 'the owner, unaware, removes the old registration');
  const expired = owner.exportRecord(owner.record(serviceId)!);
  assert.ok(expired.entries[0]!.version.wallMs > other.exportRecord(other.record(serviceId)!).entries[0]!.version.wallMs);
  assert.equal(other.merge(expired), 0);
  owner.merge(other.exportRecord(other.record(serviceId)!));
  for (const store of [owner, other]) assert.deepEqual(store.instancesOf(service).map((i) => [i.ip, i.weight]), [['10.0.0.1', 5]]);
});

test('copies of one address merged in any order agree (random lineages, versions and removals from a fixed seed)', () => {
  let seed = 0x1b873593;
  const next = (n: number): number => {
    seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0;
    return seed % n;
  };
  const key = keyOf('10.0.0.1');
  const versionOf = (wallMs: number) => ({ wallMs, counter: next(2), member: ['a', 'b', 'c'][next(3)]! });
  for (let round = 0; round < 300; round++) {
    // Up to five copies, each lineage no newer than its version; one version is one write (a version seen twice is
    // dropped: two different copies of one write cannot exist).
    const copies = Array.from({ length: 5 }, () => {
      const lineage = versionOf(1000 + next(4));
      const version = next(2) === 0 ? lineage : versionOf(lineage.wallMs + 1 + next(3));
      const removed = next(3) === 0;
      return { cluster: key.cluster, ip: key.ip, port: key.port, version, lineage, removed, weight: removed ? 0 : 1 + next(5), enabled: true, healthy: !removed, metadata: {}, owner: '' };
    }).filter((copy, i, all) => all.findIndex((other) => JSON.stringify(other.version) === JSON.stringify(copy.version)) === i);
    const results = new Set<string>();
    for (let order = 0; order < 6; order++) {
      const { store } = storeOf('z', new Clock());
      const shuffled = [...copies].sort(() => next(3) - 1);
      for (const copy of shuffled) store.merge({ key: service, entries: [copy] });
      const entry = store.exportRecord(store.record(serviceId)!).entries[0]!;
      results.add(JSON.stringify([entry.lineage, entry.version, entry.removed, entry.weight]));
    }
    assert.equal(results.size, 1, `round ${round}: ${[...results].join(' | ')}`);
  }
});
