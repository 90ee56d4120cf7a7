// Goal: show that the subscription hub (src/naming/subscriptions.ts) keeps the promises of DESIGN.md "Subscriptions
// and pushes" and docs/grpc.md: changes of one service merged for pushMergeWindowMs into one snapshot; one snapshot
// computed per change per distinct filter with listInstances's selection (clusters, healthyOnly, protect threshold);
// revisions strictly increasing along a subscriber, also across a resume (a Lamport bump above after_revision);
// the resume rule (skip the first snapshot only for this epoch and no change since); bounded per-subscriber queues (a
// newer snapshot supersedes a waiting one; beyond pushQueueMessagesMax, or after pushStallMsMax, the subscriber is
// cut off with CAIRN_SUBSCRIBER_TOO_SLOW naming its last revision); the subscribers-per-service bound; changes heard
// from both registries (the CP state machine's hook, including a restore, and the ephemeral onChange); listeners
// that throw cannot break apply; close ends everything with CAIRN_SHUTTING_DOWN.
// Method: the real NamingService over the real RegistryStateMachine with a direct proposer (no Raft), writes through
// the façade, a hub with shrunken limits, and recording transports (one that takes every snapshot at once, one that
// never takes anything). Waits are bounded polls, never bare sleeps deciding an outcome.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CairnError } from '../../src/errors.ts';
import { limits } from '../../src/limits.ts';
import type { ServiceKey } from '../../src/naming/model.ts';
import type { InstanceList } from '../../src/naming/naming-service.ts';
import { SubscriptionHub, type HubLimits, type Snapshot, type SnapshotSource, type SubscriberTransport } from '../../src/naming/subscriptions.ts';
import { createDirectNaming } from '../support/direct-proposer.ts';
import { waitFor } from '../support/cluster.ts';

const ctx = { identity: null };
const svc: ServiceKey = { namespace: 'public', group: 'DEFAULT_GROUP', service: 'orders' };

/** Recorder is a transport that records what it is handed; `taking` false makes it never take anything. */
class Recorder implements SubscriberTransport {
  readonly kind = 'grpc' as const;
  readonly snapshots: Snapshot[] = [];
  readonly cuts: CairnError[] = [];
  constructor(private readonly taking = true) {}
  write(snapshot: Snapshot, taken: () => void): void {
    this.snapshots.push(snapshot);
    if (this.taking) taken();
  }
  cutOff(error: CairnError): void {
    this.cuts.push(error);
  }
  get last(): Snapshot {
    const last = this.snapshots.at(-1);
    assert.ok(last !== undefined, 'no snapshot yet');
    return last;
  }
  ips(): string[] {
    return this.last.list.hosts.map((host) => `${host.cluster}/${host.ip}:${host.port}${host.healthy ? '' : '!'}`);
  }
}

/** setup builds naming + hub; `ephemeral` lets a test play the AP registry's onChange. */
function setup(limits: Partial<HubLimits> = {}, options: { epoch?: string; firstRevision?: number; nowMs?: () => number } = {}) {
  const { naming, stateMachine } = createDirectNaming();
  const ephemeralListeners = new Set<(key: ServiceKey) => void>();
  const computed: string[] = [];
  const source: SnapshotSource = {
    localInstanceList: (key, clusters, healthyOnly): InstanceList => {
      computed.push(`${key.service}|${clusters.join(',')}|${healthyOnly}`);
      return naming.localInstanceList(key, clusters, healthyOnly);
    },
    onEphemeralChange: (listener) => {
      ephemeralListeners.add(listener);
      return () => ephemeralListeners.delete(listener);
    },
  };
  const hub = new SubscriptionHub({ source, cp: stateMachine, limits: { pushMergeWindowMs: 5, ...limits }, epoch: options.epoch ?? 'epoch-a', firstRevision: options.firstRevision ?? 1000, ...(options.nowMs === undefined ? {} : { nowMs: options.nowMs }) });
  const register = (ip: string, extra: Record<string, unknown> = {}) =>
    naming.registerInstance(ctx, { ...svc, ip, port: 8080, ephemeral: false, ...extra });
  return { naming, stateMachine, hub, computed, ephemeralListeners, register };
}

const subscribeAll = { key: svc, clusters: [] as string[], healthyOnly: false, initial: true };

test('the first snapshot is the current state; a change after a quiet window is pushed at once; changes inside the window after a push become one snapshot', async () => {
  // A long window makes the two behaviours tell apart without tight timing: at once means well before it ends.
  const windowMs = 1500;
  const { hub, register } = setup({ pushMergeWindowMs: windowMs, pushMergeFullSubscribers: 1 });
  await register('10.0.0.1');
  const recorder = new Recorder();
  hub.subscribe(subscribeAll, recorder);
  assert.equal(recorder.snapshots.length, 1);
  assert.deepEqual(recorder.ips(), ['DEFAULT/10.0.0.1:8080']);
  assert.equal(recorder.last.changedAtMs, null);
  const lone = Date.now();
  await register('10.0.0.2');
  await waitFor(() => recorder.snapshots.length >= 2, { timeoutMs: 2000, intervalMs: 2, what: 'the leading-edge push' });
  assert.ok(Date.now() - lone < windowMs / 2, `a lone change is pushed at once (${Date.now() - lone} ms), not after the ${windowMs} ms window`);
  const burst = Date.now();
  await register('10.0.0.3');
  await register('10.0.0.4');
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal(recorder.snapshots.length, 2, 'changes right after a push wait for the window');
  await waitFor(() => recorder.snapshots.length >= 3, { timeoutMs: windowMs * 3, intervalMs: 5, what: 'the merged push' });
  assert.ok(Date.now() - burst >= windowMs / 2, 'the merged push came at the end of the window');
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal(recorder.snapshots.length, 3, 'two registrations within the window make one push');
  assert.deepEqual(recorder.ips(), ['DEFAULT/10.0.0.1:8080', 'DEFAULT/10.0.0.2:8080', 'DEFAULT/10.0.0.3:8080', 'DEFAULT/10.0.0.4:8080']);
  assert.ok(recorder.last.revision > (recorder.snapshots[1]?.revision ?? Infinity));
  hub.close();
});

test('the merge window scales with the subscribers: a few are pushed on every change, many get the full window', async () => {
  const windowMs = 1500;
  const full = 100;
  const { hub, register } = setup({ pushMergeWindowMs: windowMs, pushMergeFullSubscribers: full });
  const recorder = new Recorder();
  hub.subscribe(subscribeAll, recorder);
  await register('10.0.9.1');
  await waitFor(() => recorder.snapshots.length >= 2, { timeoutMs: 2000, intervalMs: 2, what: 'the first push' });
  const few = Date.now();
  await register('10.0.9.2');
  await waitFor(() => recorder.snapshots.length >= 3, { timeoutMs: 2000, intervalMs: 2, what: 'the push right after a push' });
  assert.ok(Date.now() - few < windowMs / 2, `one subscriber: a ${windowMs / full} ms window, not ${windowMs} ms (${Date.now() - few} ms)`);
  const others = Array.from({ length: full - 1 }, () => new Recorder());
  for (const other of others) hub.subscribe(subscribeAll, other);
  await register('10.0.9.3');
  await waitFor(() => recorder.snapshots.length >= 4, { timeoutMs: windowMs * 3, intervalMs: 5, what: 'the push after a quiet window' });
  const many = Date.now();
  await register('10.0.9.4');
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal(recorder.snapshots.length, 4, `${full} subscribers: a change right after a push waits for the full window`);
  await waitFor(() => recorder.snapshots.length >= 5, { timeoutMs: windowMs * 3, intervalMs: 5, what: 'the windowed push' });
  assert.ok(Date.now() - many >= windowMs / 2, 'it came at the end of the full window');
  assert.ok(others.every((other) => other.ips().length === 4), 'every subscriber got the last state');
  hub.close();
});

test('revisions strictly increase along a subscriber over many changes, and an absent service is said so', async () => {
  const { hub, naming, register } = setup();
  const recorder = new Recorder();
  hub.subscribe(subscribeAll, recorder);
  assert.equal(recorder.last.list.service, null, 'the first snapshot of an absent service has no service');
  for (let i = 1; i <= 5; i++) {
    await register(`10.0.1.${i}`);
    await waitFor(() => recorder.ips().length === i, { timeoutMs: 2000, intervalMs: 2, what: `push ${i}` });
  }
  await naming.patchInstance(ctx, { ...svc, ip: '10.0.1.1', port: 8080, weight: 7 });
  await waitFor(() => recorder.last.list.hosts[0]?.weight === 7, { timeoutMs: 2000, intervalMs: 2, what: 'the weight push' });
  const revisions = recorder.snapshots.map((snapshot) => snapshot.revision);
  for (let i = 1; i < revisions.length; i++) assert.ok((revisions[i] ?? 0) > (revisions[i - 1] ?? 0), `revisions increase: ${revisions.join(',')}`);
  assert.ok(recorder.snapshots.every((snapshot) => snapshot.epoch === 'epoch-a'));
  hub.close();
});

test('one snapshot per distinct filter per change; a filter whose view did not change gets nothing', async () => {
  const { hub, naming, register, computed } = setup();
  await register('10.0.2.1', { cluster: 'A' });
  await register('10.0.2.2', { cluster: 'B', healthy: false });
  const all1 = new Recorder();
  const all2 = new Recorder();
  const onlyA = new Recorder();
  const healthy = new Recorder();
  hub.subscribe(subscribeAll, all1);
  hub.subscribe(subscribeAll, all2);
  hub.subscribe({ ...subscribeAll, clusters: ['A'] }, onlyA);
  hub.subscribe({ ...subscribeAll, healthyOnly: true }, healthy);
  assert.deepEqual(healthy.ips(), ['A/10.0.2.1:8080']);
  computed.length = 0;
  await register('10.0.2.3', { cluster: 'B' });
  await waitFor(() => all1.snapshots.length === 2 && all2.snapshots.length === 2, { timeoutMs: 2000, intervalMs: 2, what: 'pushes to both' });
  await waitFor(() => healthy.snapshots.length === 2, { timeoutMs: 2000, intervalMs: 2, what: 'the healthy-only push' });
  assert.equal(computed.length, 3, `one computation per filter (all, A, healthy): ${computed.join(' ; ')}`);
  assert.equal(onlyA.snapshots.length, 1, 'cluster A did not change: no push to its subscriber');
  assert.deepEqual(healthy.ips(), ['A/10.0.2.1:8080', 'B/10.0.2.3:8080']);
  assert.equal(all1.last, all2.last, 'subscribers with one filter share the very snapshot');
  // Protect threshold: 2 healthy of 3 is below 0.8, so every instance is reported healthy.
  await naming.updateService(ctx, { ...svc, protectThreshold: 0.8 });
  await waitFor(() => all1.last.list.reachProtectionThreshold, { timeoutMs: 2000, intervalMs: 2, what: 'protection in the push' });
  assert.deepEqual(all1.ips(), ['A/10.0.2.1:8080', 'B/10.0.2.2:8080', 'B/10.0.2.3:8080']);
  hub.close();
});

test('a resume skips the first snapshot only for this epoch with no change since; otherwise revisions jump above after_revision', async () => {
  const { hub, register } = setup({}, { epoch: 'epoch-a', firstRevision: 5000 });
  await register('10.0.3.1');
  const first = new Recorder();
  const subscription = hub.subscribe(subscribeAll, first);
  const held = first.last.revision;
  subscription.close();
  // Same epoch, nothing changed: nothing is sent first, the next change is.
  const resumed = new Recorder();
  hub.subscribe({ ...subscribeAll, afterRevision: held, afterEpoch: 'epoch-a' }, resumed);
  assert.equal(resumed.snapshots.length, 0, 'no change since: no first snapshot');
  await register('10.0.3.2');
  await waitFor(() => resumed.snapshots.length === 1, { timeoutMs: 2000, intervalMs: 2, what: 'the next change' });
  assert.ok(resumed.last.revision > held);
  // Same epoch but a change since: the current snapshot first.
  const stale = new Recorder();
  hub.subscribe({ ...subscribeAll, afterRevision: held, afterEpoch: 'epoch-a' }, stale);
  assert.equal(stale.snapshots.length, 1);
  assert.deepEqual(stale.ips(), ['DEFAULT/10.0.3.1:8080', 'DEFAULT/10.0.3.2:8080']);
  // Another epoch (another member, a restart), even with a small revision: the current snapshot first.
  const other = new Recorder();
  hub.subscribe({ ...subscribeAll, afterRevision: 10, afterEpoch: 'epoch-b' }, other);
  assert.equal(other.snapshots.length, 1);
  // Another epoch with a revision from "the future": the snapshot's revision is above it, and so is every later one.
  const future = new Recorder();
  hub.subscribe({ ...subscribeAll, afterRevision: 9_000_000, afterEpoch: 'epoch-b' }, future);
  assert.ok(future.last.revision > 9_000_000);
  await register('10.0.3.3');
  await waitFor(() => future.snapshots.length === 2, { timeoutMs: 2000, intervalMs: 2, what: 'the change after the bump' });
  assert.ok(future.last.revision > 9_000_001);
  // This epoch but a revision it never issued: in doubt, the full snapshot.
  const unknown = new Recorder();
  hub.subscribe({ ...subscribeAll, afterRevision: 50_000_000, afterEpoch: 'epoch-a' }, unknown);
  assert.equal(unknown.snapshots.length, 1);
  assert.throws(() => hub.subscribe({ ...subscribeAll, afterRevision: 2 ** 60 }, new Recorder()), (error: unknown) => error instanceof CairnError && error.code === 'CAIRN_INVALID_ARGUMENT');
  hub.close();
});

test('an after_revision ahead of any member\'s clock is refused and leaves the counter alone (one client cannot lift every stream past 2^52)', async () => {
  const nowMs = 1_700_000_000_000;
  const aheadMs = limits.subscribeRevisionAheadMsMax;
  const { hub, register } = setup({}, { epoch: 'epoch-a', firstRevision: nowMs * 1000, nowMs: () => nowMs });
  await register('10.0.4.1');
  const counter = hub.stats().revision;
  // Another member's revision within the bound (its clock up to a day ahead): accepted, and the counter jumps over it.
  const nearFuture = (nowMs + aheadMs) * 1000;
  const near = new Recorder();
  hub.subscribe({ ...subscribeAll, afterRevision: nearFuture, afterEpoch: 'epoch-b' }, near);
  assert.ok(near.last.revision > nearFuture);
  const lifted = hub.stats().revision;
  assert.ok(lifted > counter);
  // Beyond it (the old behaviour lifted the counter to 2^52 + 1, after which every resume was refused): refused.
  for (const bogus of [nearFuture + 2_000_000_000, 2 ** 52]) {
    assert.throws(() => hub.subscribe({ ...subscribeAll, afterRevision: bogus, afterEpoch: 'epoch-b' }, new Recorder()),
      (error: unknown) => error instanceof CairnError && error.code === 'CAIRN_INVALID_ARGUMENT' && /ahead of any revision/.test(error.message));
  }
  assert.equal(hub.stats().revision, lifted, 'a refused resume moves nothing');
  // A revision this member issued is always accepted, even past the bound of its clock now.
  const again = new Recorder();
  hub.subscribe({ ...subscribeAll, afterRevision: near.last.revision, afterEpoch: 'epoch-a' }, again);
  assert.equal(again.snapshots.length, 0, 'its own latest revision, nothing changed since: nothing first');
  hub.close();
});

test('a service nobody followed counts as changed for resumes (conservative), a followed one does not', async () => {
  const { hub, register } = setup({}, { firstRevision: 100 });
  const one = new Recorder();
  const first = hub.subscribe(subscribeAll, one);
  const held = one.last.revision;
  first.close();
  // Nobody follows `orders` now; a change of it must make a resume from `held` send the snapshot.
  await register('10.0.4.1');
  const resumed = new Recorder();
  hub.subscribe({ ...subscribeAll, afterRevision: held, afterEpoch: 'epoch-a' }, resumed);
  assert.equal(resumed.snapshots.length, 1);
  assert.deepEqual(resumed.ips(), ['DEFAULT/10.0.4.1:8080']);
  hub.close();
});

test('a subscriber that takes nothing holds at most one snapshot and is cut off beyond pushQueueMessagesMax', async () => {
  const { hub, register } = setup({ pushQueueMessagesMax: 3, pushStallMsMax: 60_000 });
  const slow = new Recorder(false);
  const fast = new Recorder();
  hub.subscribe(subscribeAll, slow);
  hub.subscribe(subscribeAll, fast);
  const handed = slow.last.revision;
  for (let i = 1; i <= 3; i++) {
    await register(`10.0.5.${i}`);
    await waitFor(() => fast.ips().length === i, { timeoutMs: 2000, intervalMs: 2, what: `change ${i}` });
    assert.equal(hub.stats().pendingSnapshots, 1, 'one waiting snapshot, however many changes');
  }
  assert.equal(slow.snapshots.length, 1, 'the slow transport was handed only the first');
  assert.equal(slow.cuts.length, 0);
  await register('10.0.5.4');
  await waitFor(() => slow.cuts.length === 1, { timeoutMs: 2000, intervalMs: 2, what: 'the cut-off' });
  const cut = slow.cuts[0];
  assert.equal(cut?.code, 'CAIRN_SUBSCRIBER_TOO_SLOW');
  assert.equal(cut?.grpcStatus, 8);
  assert.match(cut?.message ?? '', new RegExp(`revision ${handed}\\b`));
  assert.equal(cut?.details?.['lastRevision'], handed);
  assert.deepEqual(hub.stats(), { ...hub.stats(), subscribers: 1, pendingSnapshots: 0, cutOffs: 1 });
  assert.equal(fast.cuts.length, 0, 'the fast subscriber goes on');
  hub.close();
});

test('a subscriber whose transport takes nothing for pushStallMsMax while a snapshot waits is cut off', async () => {
  const { hub, register } = setup({ pushQueueMessagesMax: 100, pushStallMsMax: 100 });
  const slow = new Recorder(false);
  hub.subscribe(subscribeAll, slow);
  await register('10.0.6.1');
  await waitFor(() => slow.cuts.length === 1, { timeoutMs: 3000, intervalMs: 10, what: 'the stall cut-off' });
  assert.equal(slow.cuts[0]?.code, 'CAIRN_SUBSCRIBER_TOO_SLOW');
  assert.equal(hub.stats().subscribers, 0);
  hub.close();
});

test('subscribers of one service are bounded with CAIRN_SUBSCRIBERS_PER_SERVICE_EXCEEDED; leaving frees a place', () => {
  const { hub } = setup({ subscribersPerServiceMax: 2 });
  const first = hub.subscribe(subscribeAll, new Recorder());
  hub.subscribe({ ...subscribeAll, clusters: ['X'] }, new Recorder());
  assert.throws(() => hub.subscribe(subscribeAll, new Recorder()), (error: unknown) => error instanceof CairnError && error.code === 'CAIRN_SUBSCRIBERS_PER_SERVICE_EXCEEDED');
  hub.subscribe({ ...subscribeAll, key: { ...svc, service: 'other' } }, new Recorder());
  first.close();
  hub.subscribe(subscribeAll, new Recorder());
  assert.equal(hub.subscriberCount(svc), 2);
  hub.close();
});

test('gRPC subscribers of the whole member are bounded with CAIRN_SUBSCRIBERS_EXCEEDED, over every service, services that do not exist included; UDP ones are not counted', () => {
  const { hub } = setup({ grpcSubscribersMax: 3 });
  const first = hub.subscribe({ ...subscribeAll, key: { ...svc, service: 'made-up-1' } }, new Recorder());
  hub.subscribe({ ...subscribeAll, key: { ...svc, service: 'made-up-2' } }, new Recorder());
  hub.subscribe(subscribeAll, new Recorder());
  const refused = (error: unknown): boolean => error instanceof CairnError && error.code === 'CAIRN_SUBSCRIBERS_EXCEEDED' && error.details?.['limit'] === 3;
  assert.throws(() => hub.subscribe({ ...subscribeAll, key: { ...svc, service: 'made-up-3' } }, new Recorder()), refused);
  const udp = Object.assign(new Recorder(), { kind: 'udp' as const });
  hub.subscribe({ ...subscribeAll, key: { ...svc, service: 'made-up-3' } }, udp);
  first.close();
  hub.subscribe({ ...subscribeAll, key: { ...svc, service: 'made-up-4' } }, new Recorder());
  assert.throws(() => hub.subscribe(subscribeAll, new Recorder()), refused);
  hub.close();
});

test('changes are heard from the ephemeral registry and from a restore; a throwing CP listener cannot break apply', async () => {
  const { hub, stateMachine, ephemeralListeners, register, naming } = setup();
  const recorder = new Recorder();
  hub.subscribe(subscribeAll, recorder);
  await register('10.0.7.1');
  await waitFor(() => recorder.snapshots.length === 2, { timeoutMs: 2000, intervalMs: 2, what: 'the CP push' });
  // The AP registry says the service changed: a fresh snapshot is computed (same view: not offered again, so add a CP change).
  for (const listener of ephemeralListeners) listener(svc);
  await register('10.0.7.2');
  await waitFor(() => recorder.snapshots.length === 3, { timeoutMs: 2000, intervalMs: 2, what: 'the push after an ephemeral notice' });
  // Restore the state of another machine (a snapshot install): everything may have changed.
  const other = createDirectNaming();
  await other.naming.registerInstance(ctx, { ...svc, ip: '10.9.9.9', port: 1, ephemeral: false });
  const batch = { put: () => undefined, del: () => undefined };
  stateMachine.restore(other.stateMachine.snapshot(), batch);
  await waitFor(() => recorder.ips().join() === 'DEFAULT/10.9.9.9:1', { timeoutMs: 2000, intervalMs: 2, what: 'the push after a restore' });
  const removeThrowing = stateMachine.onServiceChanged(() => {
    throw new Error('a broken listener');
  });
  await naming.registerInstance(ctx, { ...svc, ip: '10.0.7.3', port: 8080, ephemeral: false });
  assert.ok(stateMachine.listenerFailures >= 1);
  assert.ok(naming.localInstanceList(svc, [], false).hosts.some((host) => host.ip === '10.0.7.3'), 'the write applied');
  removeThrowing();
  await waitFor(() => recorder.ips().includes('DEFAULT/10.0.7.3:8080'), { timeoutMs: 2000, intervalMs: 2, what: 'the push despite the broken listener' });
  hub.close();
});

test('deleting a service pushes a snapshot without a service; close ends every subscriber with CAIRN_SHUTTING_DOWN', async () => {
  const { hub, naming } = setup();
  await naming.createService(ctx, { ...svc });
  const recorder = new Recorder();
  hub.subscribe(subscribeAll, recorder);
  assert.notEqual(recorder.last.list.service, null);
  await naming.deleteService(ctx, svc);
  await waitFor(() => recorder.snapshots.length === 2, { timeoutMs: 2000, intervalMs: 2, what: 'the deletion push' });
  assert.equal(recorder.last.list.service, null);
  hub.close();
  assert.equal(recorder.cuts[0]?.code, 'CAIRN_SHUTTING_DOWN');
  assert.throws(() => hub.subscribe(subscribeAll, new Recorder()), (error: unknown) => error instanceof CairnError && error.code === 'CAIRN_SHUTTING_DOWN');
  assert.equal(hub.stats().subscribers, 0);
});
