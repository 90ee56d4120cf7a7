// subscriptions: the member's one subscription hub (DESIGN.md "Subscriptions and pushes"). It hears every change of
// both registries (the CP state machine's onServiceChanged hook and the EphemeralRegistry's onChange), merges the
// changes of one service (pushed at once after a quiet window, else merged until the window ends; the window is
// pushMergeWindowMs scaled by the service's subscribers, see schedule()), then computes the service's snapshot once per distinct filter
// (clusters, healthyOnly) with the very selection of NamingService.listInstances (protect threshold included), and
// offers it to that filter's subscribers: gRPC Subscribe streams (api/grpc/subscribe.ts) and Nacos v1 UDP push
// targets (udp-push.ts), both behind SubscriberTransport.
//
// Revisions. The hub numbers changes with one member-local counter that only grows: it starts at the wall clock in
// microseconds (so a restarted member starts above what it numbered before, in practice), every merged change takes
// the next number, and a resume that names a greater number raises the counter above it (a Lamport clock), so the
// revisions one client sees only grow, even across members. `epoch` names this hub (one per process start).
// Invariant: a snapshot with revision R computed at time t reflects every change visible at t; every change that
// becomes visible after t is numbered above the counter at t, hence above R. Therefore a resume (R, epoch) may skip
// the current snapshot exactly when epoch is this hub's, R is at most the counter, and the service's last change
// (tracked per subscribed service; one conservative number for all other services) is at most R. In every other
// case (another member, a restart, a service nobody followed) the current snapshot is sent first.
//
// Bounds. Subscribers per service: subscribersPerServiceMax (CAIRN_SUBSCRIBERS_PER_SERVICE_EXCEEDED); gRPC
// subscribers of the whole member: grpcSubscribersMax (CAIRN_SUBSCRIBERS_EXCEEDED). Per
// subscriber, one snapshot in its transport and at most one waiting: a newer snapshot replaces the waiting one
// (counted). A subscriber whose transport takes nothing while pushQueueMessagesMax snapshots replaced each other,
// or for pushStallMsMax, is cut off with CAIRN_SUBSCRIBER_TOO_SLOW naming the last revision handed over. A snapshot
// whose filtered view equals the last one offered (same checksum, same existence) is not offered again.

import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { assert } from '../assert.ts';
import { CairnError } from '../errors.ts';
import { limits as defaultLimits, type Limits } from '../limits.ts';
import type { RegistryChangeListener } from '../cp/registry-state-machine.ts';
import { groupedName, type ServiceKey } from './model.ts';
import type { InstanceList } from './naming-service.ts';
import { noPushMetrics, type PushMetrics, type PushTransport } from './push-metrics.ts';
import { steadyWallMs } from '../clock.ts';

/** SnapshotSource computes a service's filtered instance list from local state (NamingService implements it). */
export interface SnapshotSource {
  /** localInstanceList is listInstances over local state, synchronous, unauthorized; clusters normalised. */
  localInstanceList(key: ServiceKey, clusters: readonly string[], healthyOnly: boolean): InstanceList;
  /** onEphemeralChange registers a listener for changes of ephemeral instances; returns its removal. */
  onEphemeralChange(listener: (key: ServiceKey) => void): () => void;
}

/** CpChangeSource is the CP state machine's change hook (RegistryStateMachine implements it). */
export interface CpChangeSource {
  /** onServiceChanged registers a listener for every applied change; returns its removal. */
  onServiceChanged(listener: RegistryChangeListener): () => void;
}

/** Snapshot is one service's filtered instance list at one revision of this hub. */
export interface Snapshot {
  readonly key: ServiceKey;
  readonly list: InstanceList;
  /** revision is this hub's number for the last change the snapshot reflects (see the file comment). */
  readonly revision: number;
  /** epoch names the hub (member process) that numbered `revision`. */
  readonly epoch: string;
  /** changedAtMs is performance.now() when the first change merged into it was heard; null for a first snapshot. */
  readonly changedAtMs: number | null;
}

/** SubscriberTransport carries snapshots to one subscriber (a gRPC stream, a UDP target). */
export interface SubscriberTransport {
  readonly kind: PushTransport;
  /** write hands one snapshot over; the transport calls `taken` once it can take the next (at once, or on drain). */
  write(snapshot: Snapshot, taken: () => void): void;
  /** cutOff ends the subscriber with `error`; the hub has already forgotten it. */
  cutOff(error: CairnError): void;
}

/** SubscribeOptions name what to follow and where a resumed stream left off. */
export interface SubscribeOptions {
  readonly key: ServiceKey;
  /** clusters is the clusters filter, normalised (sorted, deduplicated; empty = all). */
  readonly clusters: readonly string[];
  readonly healthyOnly: boolean;
  /** initial: offer the current snapshot at once (gRPC), unless the resume rule allows skipping it. UDP: false. */
  readonly initial: boolean;
  readonly afterRevision?: number;
  readonly afterEpoch?: string;
}

/** HubLimits are the limits the hub runs with; tests shrink them. */
export type HubLimits = Pick<Limits, 'subscribersPerServiceMax' | 'grpcSubscribersMax' | 'pushQueueMessagesMax' | 'pushMergeWindowMs' | 'pushMergeFullSubscribers' | 'pushStallMsMax' | 'subscribeRevisionAheadMsMax'>;

/** HubLogger is the part of pino the hub uses. */
export interface HubLogger {
  warn(fields: Record<string, unknown>, message: string): void;
}

/** SubscriptionHubOptions wire a hub. */
export interface SubscriptionHubOptions {
  readonly source: SnapshotSource;
  readonly cp?: CpChangeSource;
  readonly limits?: Partial<HubLimits>;
  readonly metrics?: PushMetrics;
  readonly logger?: HubLogger;
  /** epoch names this hub; default a random UUID. */
  readonly epoch?: string;
  /** firstRevision is the counter's start; default the wall clock in microseconds. */
  readonly firstRevision?: number;
  /** nowMs is the wall clock that bounds a resume's after_revision (default steadyWallMs: src/clock.ts). */
  readonly nowMs?: () => number;
}

/** HubStats are the hub's sizes, for tests and diagnostics. */
export interface HubStats {
  readonly subscribers: number;
  readonly services: number;
  readonly pendingSnapshots: number;
  readonly revision: number;
  readonly cutOffs: number;
}

/** afterRevisionMax bounds a resume's after_revision, so the Lamport bump keeps revisions safe integers. */
export const afterRevisionMax = 2 ** 52;

/** FilterGroup is the subscribers of one service with one filter. */
interface FilterGroup {
  readonly clusters: readonly string[];
  readonly healthyOnly: boolean;
  readonly subscriptions: Set<Subscription>;
}

/** PushTimer is a scheduled push of a service. */
type PushTimer = { readonly kind: 'immediate'; readonly handle: NodeJS.Immediate } | { readonly kind: 'timeout'; readonly handle: NodeJS.Timeout };

/** cancelPush cancels a scheduled push. */
function cancelPush(timer: PushTimer): void {
  if (timer.kind === 'immediate') clearImmediate(timer.handle);
  else clearTimeout(timer.handle);
}

/** ServiceEntry is a subscribed service: its filter groups, its merge timer and its last change. */
interface ServiceEntry {
  readonly key: ServiceKey;
  readonly groups: Map<string, FilterGroup>;
  count: number;
  lastChangeRevision: number;
  /** timer is the pending push: an immediate for a change after a quiet window, a timeout within the window. */
  timer: PushTimer | null;
  changedAtMs: number | null;
  /** lastFlushMs is performance.now() at the last push of this service (-Infinity before any). */
  lastFlushMs: number;
}

function serviceId(key: ServiceKey): string {
  return `${key.namespace}\n${groupedName(key.group, key.service)}`;
}

function filterId(clusters: readonly string[], healthyOnly: boolean): string {
  return `${healthyOnly ? 'h' : 'a'}:${clusters.join(',')}`;
}

/** Subscription is one subscriber of one service: its queue of at most one waiting snapshot, and its transport. */
export class Subscription {
  /** lastRevision is the revision of the last snapshot handed to the transport (0: none yet). */
  lastRevision = 0;
  private offeredRevision = 0;
  private offeredView: string | null = null;
  private inFlight = false;
  private pending: Snapshot | null = null;
  private heldBack = 0;
  private stallTimer: NodeJS.Timeout | null = null;
  private closedFlag = false;

  constructor(
    private readonly hub: SubscriptionHub,
    readonly key: ServiceKey,
    readonly group: string,
    private readonly transport: SubscriberTransport,
  ) {}

  /** kind is the transport's kind. */
  get kind(): PushTransport {
    return this.transport.kind;
  }

  /** closed is true once the subscriber was closed or cut off. */
  get closed(): boolean {
    return this.closedFlag;
  }

  /** skipTo records that the subscriber holds `revision` already (a resume that needs no first snapshot). */
  skipTo(revision: number): void {
    this.offeredRevision = Math.max(this.offeredRevision, revision);
    this.lastRevision = Math.max(this.lastRevision, revision);
  }

  /** offer hands `snapshot` over, or keeps it waiting (replacing an older waiting one) while the transport is busy. */
  offer(snapshot: Snapshot): void {
    if (this.closedFlag || snapshot.revision <= this.offeredRevision) return;
    const view = `${snapshot.list.service === null ? 'absent' : 'present'}:${snapshot.list.checksum}`;
    if (view === this.offeredView) return;
    this.offeredRevision = snapshot.revision;
    this.offeredView = view;
    if (!this.inFlight) {
      this.handOver(snapshot);
      return;
    }
    if (this.pending === null) this.hub.pendingChanged(1);
    else this.hub.metrics.pushSuperseded();
    this.pending = snapshot;
    this.heldBack += 1;
    if (this.heldBack > this.hub.limits.pushQueueMessagesMax) {
      this.cutOff(`${this.heldBack} snapshots waited while the stream took none`);
      return;
    }
    this.stallTimer ??= setTimeout(() => this.cutOff(`the stream took nothing for ${this.hub.limits.pushStallMsMax} ms`), this.hub.limits.pushStallMsMax);
  }

  private handOver(snapshot: Snapshot): void {
    this.inFlight = true;
    this.lastRevision = snapshot.revision;
    this.hub.metrics.pushSent(this.transport.kind);
    if (snapshot.changedAtMs !== null) this.hub.metrics.changeToPush((performance.now() - snapshot.changedAtMs) / 1000);
    try {
      this.transport.write(snapshot, () => this.taken());
    } catch (error) {
      this.hub.logger?.warn({ err: error, service: serviceId(this.key) }, 'a subscriber transport failed; the subscriber is dropped');
      this.close();
    }
  }

  private taken(): void {
    if (this.closedFlag) return;
    this.inFlight = false;
    this.heldBack = 0;
    if (this.stallTimer !== null) clearTimeout(this.stallTimer);
    this.stallTimer = null;
    const next = this.pending;
    if (next === null) return;
    this.pending = null;
    this.hub.pendingChanged(-1);
    this.handOver(next);
  }

  private cutOff(why: string): void {
    if (this.closedFlag) return;
    this.close();
    this.hub.cutOffCount += 1;
    this.hub.metrics.pushFailed(this.transport.kind, 'cut_off');
    this.transport.cutOff(new CairnError('CAIRN_SUBSCRIBER_TOO_SLOW',
      `${why}; the last snapshot handed to it had revision ${this.lastRevision} (epoch ${this.hub.epoch}): subscribe again with after_revision and after_epoch of the last snapshot received`,
      { details: { lastRevision: this.lastRevision, epoch: this.hub.epoch, service: `${this.key.namespace}/${groupedName(this.key.group, this.key.service)}` } }));
  }

  /** close forgets the subscriber (idempotent); its transport is not touched. */
  close(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    if (this.stallTimer !== null) clearTimeout(this.stallTimer);
    this.stallTimer = null;
    if (this.pending !== null) this.hub.pendingChanged(-1);
    this.pending = null;
    this.hub.remove(this);
  }

  /** endWith closes the subscriber and ends its transport with `error` (member shutdown). */
  endWith(error: CairnError): void {
    if (this.closedFlag) return;
    this.close();
    this.transport.cutOff(error);
  }
}

/** SubscriptionHub is the member's subscription hub; see the file comment. */
export class SubscriptionHub {
  /** epoch names this hub: one per member process start. */
  readonly epoch: string;
  /** limits are the bounds the hub runs with. */
  readonly limits: HubLimits;
  /** metrics receive the push counters. */
  readonly metrics: PushMetrics;
  /** logger receives failures of sources and transports. */
  readonly logger: HubLogger | undefined;
  /** cutOffCount counts subscribers cut off for not taking their snapshots. */
  cutOffCount = 0;
  private readonly source: SnapshotSource;
  private readonly entries = new Map<string, ServiceEntry>();
  private readonly removals: Array<() => void> = [];
  private readonly subscriberCounts = new Map<PushTransport, number>();
  /** revision is the counter: the greatest revision numbered or handed out. */
  private revision: number;
  private readonly nowMs: () => number;
  /** untrackedChangeRevision bounds from above the last change of every service without an entry. */
  private untrackedChangeRevision: number;
  private pendingSnapshots = 0;
  private closed = false;

  constructor(options: SubscriptionHubOptions) {
    this.source = options.source;
    this.limits = { ...defaultLimits, ...options.limits };
    this.metrics = options.metrics ?? noPushMetrics;
    this.logger = options.logger;
    this.epoch = options.epoch ?? randomUUID();
    this.nowMs = options.nowMs ?? steadyWallMs;
    this.revision = options.firstRevision ?? this.nowMs() * 1000;
    assert(Number.isSafeInteger(this.revision) && this.revision >= 0 && this.revision < afterRevisionMax, 'SubscriptionHub: bad first revision');
    this.untrackedChangeRevision = this.revision;
    this.removals.push(this.source.onEphemeralChange((key) => this.serviceChanged(key)));
    if (options.cp !== undefined) {
      this.removals.push(options.cp.onServiceChanged((change) => {
        if (change.type === 'service') this.serviceChanged(change.key);
        else this.everythingChanged();
      }));
    }
  }

  /** serviceChanged hears that `key` changed: a subscribed service's push is scheduled, any other is only recorded. */
  serviceChanged(key: ServiceKey): void {
    if (this.closed) return;
    const entry = this.entries.get(serviceId(key));
    if (entry === undefined) {
      this.untrackedChangeRevision = this.nextRevision();
      return;
    }
    this.schedule(entry);
  }

  /** everythingChanged hears that the whole state was replaced (a snapshot installed): every service may differ. */
  everythingChanged(): void {
    if (this.closed) return;
    this.untrackedChangeRevision = this.nextRevision();
    for (const entry of this.entries.values()) this.schedule(entry);
  }

  private nextRevision(): number {
    this.revision += 1;
    return this.revision;
  }

  /**
   * schedule arranges the service's next push. The merge window is a rate bound, not a delay: a change after a quiet
   * window is pushed at once (setImmediate, so every change applied in the same turn, e.g. one Ready's entries, still
   * goes in that one push; a zero setTimeout would wait at least 1 ms, Node's floor for timers), and changes arriving within the window after a push are merged into one push at the
   * window's end. So one lone change costs no window (the bench's change-to-notification latency), and a busy
   * service is pushed at most once per window. The window is what the fan-out needs: the full pushMergeWindowMs from
   * pushMergeFullSubscribers subscribers on, proportionally less below, so the snapshots offered per service and
   * window stay under max(pushMergeFullSubscribers, subscribers) while a service followed by a few clients is pushed
   * on every change, as etcd's watches are.
   */
  private schedule(entry: ServiceEntry): void {
    if (entry.timer !== null) return;
    const now = performance.now();
    entry.changedAtMs = now;
    const windowMs = this.limits.pushMergeWindowMs * Math.min(1, entry.count / this.limits.pushMergeFullSubscribers);
    const delayMs = Math.max(0, entry.lastFlushMs + windowMs - now);
    entry.timer = delayMs <= 0
      ? { kind: 'immediate', handle: setImmediate(() => this.flush(entry)) }
      : { kind: 'timeout', handle: setTimeout(() => this.flush(entry), delayMs) };
  }

  /** flush numbers the merged change and offers each filter group its freshly computed snapshot. */
  private flush(entry: ServiceEntry): void {
    entry.timer = null;
    entry.lastFlushMs = performance.now();
    const revision = this.nextRevision();
    entry.lastChangeRevision = revision;
    const changedAtMs = entry.changedAtMs;
    entry.changedAtMs = null;
    for (const group of [...entry.groups.values()]) {
      const list = this.listOf(entry.key, group.clusters, group.healthyOnly);
      if (list === null) continue;
      const snapshot: Snapshot = Object.freeze({ key: entry.key, list, revision, epoch: this.epoch, changedAtMs });
      for (const subscription of [...group.subscriptions]) subscription.offer(snapshot);
    }
  }

  private listOf(key: ServiceKey, clusters: readonly string[], healthyOnly: boolean): InstanceList | null {
    try {
      return this.source.localInstanceList(key, clusters, healthyOnly);
    } catch (error) {
      this.logger?.warn({ err: error, service: serviceId(key) }, 'a snapshot could not be computed; its subscribers wait for the next change');
      return null;
    }
  }

  /** lastChangeOf bounds from above the revision of the last change of `key`. */
  private lastChangeOf(key: ServiceKey): number {
    return this.entries.get(serviceId(key))?.lastChangeRevision ?? this.untrackedChangeRevision;
  }

  /** mayResume tells whether a resume from (afterRevision, afterEpoch) may skip the current snapshot of `key`. */
  mayResume(key: ServiceKey, afterRevision: number, afterEpoch: string): boolean {
    return afterRevision > 0 && afterEpoch === this.epoch && afterRevision <= this.revision && this.lastChangeOf(key) <= afterRevision;
  }

  /**
   * subscribe adds a subscriber; with `initial` it is offered the current snapshot at once, unless mayResume. Throws
   * CAIRN_SUBSCRIBERS_PER_SERVICE_EXCEEDED at the bound, CAIRN_INVALID_ARGUMENT for a bad after_revision and
   * CAIRN_SHUTTING_DOWN once the hub is closed.
   */
  subscribe(options: SubscribeOptions, transport: SubscriberTransport): Subscription {
    if (this.closed) throw new CairnError('CAIRN_SHUTTING_DOWN', 'the member is shutting down; subscribe at another member');
    const afterRevision = options.afterRevision ?? 0;
    if (!Number.isSafeInteger(afterRevision) || afterRevision < 0 || afterRevision > afterRevisionMax) {
      throw new CairnError('CAIRN_INVALID_ARGUMENT', `Param 'after_revision' must be within 0..${afterRevisionMax}`, { details: { parameter: 'after_revision' } });
    }
    // A revision this member issued is always accepted; one from another member is at most its clock offset ahead.
    const aheadMax = Math.max(this.revision, (this.nowMs() + this.limits.subscribeRevisionAheadMsMax) * 1000);
    if (afterRevision > aheadMax) {
      throw new CairnError('CAIRN_INVALID_ARGUMENT',
        `Param 'after_revision' ${afterRevision} is ahead of any revision a member can have issued (revisions count microseconds of the wall clock; this member's counter is ${this.revision}): resume with a revision you received, or 0 for a fresh stream`,
        { details: { parameter: 'after_revision' } });
    }
    const id = serviceId(options.key);
    let entry = this.entries.get(id);
    if (entry !== undefined && entry.count >= this.limits.subscribersPerServiceMax) {
      throw new CairnError('CAIRN_SUBSCRIBERS_PER_SERVICE_EXCEEDED',
        `${options.key.namespace}/${groupedName(options.key.group, options.key.service)} already has ${this.limits.subscribersPerServiceMax} subscribers`,
        { details: { limit: this.limits.subscribersPerServiceMax } });
    }
    if (transport.kind === 'grpc' && (this.subscriberCounts.get('grpc') ?? 0) >= this.limits.grpcSubscribersMax) {
      throw new CairnError('CAIRN_SUBSCRIBERS_EXCEEDED', `this member already serves ${this.limits.grpcSubscribersMax} gRPC subscribers; subscribe at another member or retry later`,
        { details: { limit: this.limits.grpcSubscribersMax } });
    }
    const skip = !options.initial || this.mayResume(options.key, afterRevision, options.afterEpoch ?? '');
    // Computed before anything is registered, so a failure leaves nothing behind.
    const list = skip ? null : this.source.localInstanceList(options.key, options.clusters, options.healthyOnly);
    if (entry === undefined) {
      entry = { key: options.key, groups: new Map(), count: 0, lastChangeRevision: this.untrackedChangeRevision, timer: null, changedAtMs: null, lastFlushMs: -Infinity };
      this.entries.set(id, entry);
    }
    const groupId = filterId(options.clusters, options.healthyOnly);
    let group = entry.groups.get(groupId);
    if (group === undefined) {
      group = { clusters: options.clusters, healthyOnly: options.healthyOnly, subscriptions: new Set() };
      entry.groups.set(groupId, group);
    }
    const subscription = new Subscription(this, options.key, groupId, transport);
    group.subscriptions.add(subscription);
    entry.count += 1;
    this.countSubscriber(transport.kind, 1);
    if (list === null) {
      subscription.skipTo(afterRevision);
      return subscription;
    }
    // Lamport: the first snapshot must be newer than whatever the client holds, wherever it came from.
    if (afterRevision >= this.revision) this.revision = afterRevision + 1;
    subscription.offer(Object.freeze({ key: options.key, list, revision: this.revision, epoch: this.epoch, changedAtMs: null }));
    return subscription;
  }

  /** remove forgets a closed subscription (called by Subscription.close). */
  remove(subscription: Subscription): void {
    const id = serviceId(subscription.key);
    const entry = this.entries.get(id);
    const group = entry?.groups.get(subscription.group);
    if (entry === undefined || group === undefined || !group.subscriptions.delete(subscription)) return;
    entry.count -= 1;
    this.countSubscriber(subscription.kind, -1);
    if (group.subscriptions.size === 0) entry.groups.delete(subscription.group);
    if (entry.count > 0) return;
    this.entries.delete(id);
    if (entry.timer !== null) {
      cancelPush(entry.timer);
      // The merged change was never numbered: number it now, for every untracked service.
      this.untrackedChangeRevision = this.nextRevision();
    } else {
      this.untrackedChangeRevision = Math.max(this.untrackedChangeRevision, entry.lastChangeRevision);
    }
  }

  /** pendingChanged moves the count of waiting snapshots (called by Subscription). */
  pendingChanged(delta: number): void {
    this.pendingSnapshots += delta;
    assert(this.pendingSnapshots >= 0, 'SubscriptionHub: negative pending snapshots');
    this.metrics.pendingSnapshots(this.pendingSnapshots);
  }

  private countSubscriber(kind: PushTransport, delta: number): void {
    const count = (this.subscriberCounts.get(kind) ?? 0) + delta;
    this.subscriberCounts.set(kind, count);
    this.metrics.subscribers(kind, count);
  }

  /** subscriberCount is the number of subscribers of `key` (both transports). */
  subscriberCount(key: ServiceKey): number {
    return this.entries.get(serviceId(key))?.count ?? 0;
  }

  /** stats reports the hub's sizes. */
  stats(): HubStats {
    let subscribers = 0;
    for (const count of this.subscriberCounts.values()) subscribers += count;
    return { subscribers, services: this.entries.size, pendingSnapshots: this.pendingSnapshots, revision: this.revision, cutOffs: this.cutOffCount };
  }

  /** close stops hearing changes and ends every subscriber with CAIRN_SHUTTING_DOWN (idempotent). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const removal of this.removals.splice(0)) removal();
    const error = new CairnError('CAIRN_SHUTTING_DOWN', 'the member is shutting down; subscribe again at another member');
    for (const entry of [...this.entries.values()]) {
      if (entry.timer !== null) cancelPush(entry.timer);
      entry.timer = null;
      for (const group of [...entry.groups.values()]) for (const subscription of [...group.subscriptions]) subscription.endWith(error);
    }
  }
}
