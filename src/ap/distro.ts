// distro: the AP path's EphemeralRegistry (DESIGN.md "The AP path", docs/ap.md): one member's Distro node.
//
// - Liveness: every distroHeartbeatIntervalMs the node heartbeats each peer on the peer port; a peer is down after
//   distroHeartbeatMissesMax failures in a row, or at once when the call certainly never reached it (refused).
//   The live set (self plus the peers up) is this member's own view, so both sides of a partition keep serving.
// - Responsibility: responsibleMember(service) over the sorted live set. Writes and beats go to the responsible
//   member (forwarded over the peer port when it is another one); a forward that fails marks the target down,
//   recomputes and retries once, then answers CAIRN_DISTRO_UNAVAILABLE. Forwards to one peer are batched
//   (forward-batcher.ts: up to distroForwardBatchDelayMs, one ForwardBatch call, one response per request; the
//   retry rule applies to each request of a failed batch). A forwarded request is applied by whoever receives it
//   (no second hop), so members that briefly disagree on the live set still converge by merging.
// - Sync: every local change (write, expiry, a beat reviving an instance) is queued per service and entry, and
//   every distroSyncDelayMs the queued entries go to every live peer in merged batches (fire and forget).
// - Verify: every distroVerifyIntervalMs the node sends the checksums of the services it is responsible for to every
//   live peer; a peer pulls the services whose checksum differs, merges them, and pushes its own copy back when it
//   still differs (it holds writes the responsible member lacks, e.g. from the other side of a healed partition).
//   When a peer comes back up (down -> up), the node pushes it everything it holds, so a healed partition converges
//   at once, services unknown to one side included.
// - Snapshot: at start the node loads a full snapshot from the first peer that gives one (bounded rounds). Until
//   the load is done or has given up (every round failed, or a round found no peer reachable), reads of ephemeral
//   instances are refused (`servesReads`, `readsServed`; the naming layer answers CAIRN_MEMBER_BEHIND): a member
//   that just restarted holds only the few beats it happened to receive, and a client would take that partial (or
//   empty) list for the truth. Writes and beats are taken throughout; they merge with the snapshot by version.
// - Expiry: only the responsible member scans (bounded slices, ephemeral-store.ts), and after a takeover it counts
//   silence from the takeover (the grace of one full timeout). Before it flags or removes anything it asks every
//   peer when it last heard from those clients (confirmExpiry): members may disagree on who is responsible, and the
//   beats may have gone to another member meanwhile. When every member live in its view answered, the grace counts
//   from the latest death it knows of (coverageFloorMs; a member down in its view counts as dead since it was seen
//   going down), not from the takeover.
// - Sessions: instances written with a session as owner are renewed by this member at their responsible members
//   every beatIntervalMs while the session lives, and deregistered when it closes or falls silent (a registration on
//   its way at the close included). A renewal that finds an instance missing at its responsible member (a stale
//   removal, or a deregistration by anyone but the session, won there) registers it again: while its session lives,
//   an instance stays, as a Nacos 2 connection keeps its client's instances; only the session's own deregistration
//   ends its hold. The member's shutdown ends the sessions without deregistering anything (endSessions).

import { randomUUID } from 'node:crypto';
import { CairnError, isCairnError, isCairnErrorCode } from '../errors.ts';
import { limits as defaultLimits, type Limits } from '../limits.ts';
import { instanceId, type Instance, type InstanceKey, type ServiceKey } from '../naming/model.ts';
import type {
  BeatInput,
  BeatResult,
  DeregisterResult,
  EphemeralRegistry,
  EphemeralSession,
  EphemeralWrite,
  InstanceWriteResult,
  RequestContext,
  ServiceChangeListener,
} from '../naming/naming-service.ts';
import {
  entryIdOf,
  EphemeralStore,
  HEARD_NEVER,
  NOT_COVERED,
  serviceIdOfKey,
  timeoutsOf,
  type EntryData,
  type ExpiryOutcome,
  type RecordData,
  type ServiceRecord,
} from './ephemeral-store.ts';
import { responsibleMember } from './responsibility.ts';
import { compareVersions, type Version } from './version.ts';
import {
  DistroCallError, type DistroHandlers, type DistroTransport, type ForwardedFields, type ForwardRequest, type ForwardResponse, type LastBeatsQuery, type ServiceChecksum,
} from './transport.ts';
import { chunkRecords } from './chunks.ts';
import {
  beatResponseOf, DroppedItemsLogGate, droppedItemsWarningMessage, isDroppedItemsSource, type DroppedItem, type DroppedItemMessage, type DroppedItemsObserver,
} from './distro-codec.ts';
import { ForwardBatcher } from './forward-batcher.ts';
import { LastBeatsQueryBuilder, type LastBeatsRound } from './last-beats.ts';
import { steadyWallMs } from '../clock.ts';

/** DistroLimits is the subset of src/limits.ts a Distro node runs with (tests pass shorter timings). */
export type DistroLimits = Pick<Limits,
  'beatIntervalMs' | 'unhealthyAfterMs' | 'removeAfterMs' | 'instancesPerServiceMax' | 'namespacesMax' | 'servicesPerNamespaceMax' | 'distroTombstoneRetentionMs' |
  'distroTombstonesMax' | 'preservedTimeoutMsMax' | 'distroSyncDelayMs' | 'distroSyncBatchMax' | 'distroVerifyIntervalMs' |
  'distroHeartbeatIntervalMs' | 'distroHeartbeatMissesMax' | 'distroMessageBytesMax' | 'distroMessageEntriesMax' |
  'distroExpiryTickMs' | 'distroExpiryScanEntriesMax' | 'distroSnapshotRetriesMax' | 'distroSnapshotRetryDelayMs' |
  'distroSessionTimeoutMs' | 'distroSessionsMax' | 'distroSessionInstancesMax' | 'distroForwardBatchDelayMs' |
  'distroForwardBatchEntriesMax' | 'distroForwardPendingMax' | 'distroPeerTimeoutMs' | 'distroForwardFenceMs' | 'distroForwardSkewMs'>;

/**
 * DistroWrite is what DistroNode.write takes: an EphemeralWrite, whose deregistration may name the session it is sent
 * through (`owner`), so that only the session's own deregistration ends its hold on the instance (deregisterThrough).
 */
export type DistroWrite = Exclude<EphemeralWrite, { readonly type: 'deregister' }> | { readonly type: 'deregister'; readonly key: InstanceKey; readonly owner?: string };

/** DistroEvent names what a node counts; metrics.ts turns each into a Prometheus counter. */
export type DistroEvent =
  | 'beat_found' | 'beat_not_found' | 'beat_reregistered' | 'beat_forwarded' | 'session_reregistered'
  | 'forward_ok' | 'forward_failed' | 'forward_retried' | 'forward_served' | 'forward_overflow' | 'forward_batch_sent' | 'forward_batch_failed'
  | 'forward_expired' | 'forward_fence_waits'
  | 'sync_sent' | 'sync_failed' | 'sync_received' | 'verify_sent' | 'verify_mismatch' | 'pushback_sent' | 'full_push_sent'
  | 'expired_unhealthy' | 'expired_removed' | 'expiry_spared' | 'expiry_deferred' | 'tombstones_collected' | 'listener_failed' | 'snapshot_loaded' | 'snapshot_failed'
  | 'channel_replaced'
  | 'entries_dropped_records' | 'entries_dropped_forward' | 'entries_dropped_checksums' | 'entries_dropped_pull_keys' | 'entries_dropped_last_beats';

/** droppedEvents maps each kind of message whose items are validated one by one to the event counting its drops. */
const droppedEvents: { readonly [message in DroppedItemMessage]: DistroEvent } = {
  records: 'entries_dropped_records',
  forward: 'entries_dropped_forward',
  checksums: 'entries_dropped_checksums',
  pull_keys: 'entries_dropped_pull_keys',
  last_beats: 'entries_dropped_last_beats',
};

/** DistroLogger is the logging a node needs; a pino logger fits it. */
export interface DistroLogger {
  info(object: object, message: string): void;
  warn(object: object, message: string): void;
  error(object: object, message: string): void;
}

/** DistroNodeOptions configure a DistroNode. */
export interface DistroNodeOptions {
  /** self is this member's id (its --addr). */
  readonly self: string;
  /** members are every member's id, self included (the --members list). */
  readonly members: readonly string[];
  readonly limits: DistroLimits;
  readonly logger: DistroLogger;
  /** now is the wall clock: epoch ms for versions and expiry (default steadyWallMs, which a step of the system clock does not move: src/clock.ts). */
  readonly now?: () => number;
  readonly onEvent?: (event: DistroEvent, count: number) => void;
}

/** PeerState is what the node knows of one peer's liveness. */
interface PeerState {
  up: boolean;
  misses: number;
  inFlight: boolean;
  /**
   * downSinceMs is when this member last saw the peer go down (or added it, down), 0 if never: had it died, it died
   * before then, and the beats only it heard with it (coverageFloorMs).
   */
  downSinceMs: number;
}

/**
 * SessionBinding is one instance a session keeps: its key, the fields it was last registered with (to register it
 * again when a renewal finds it missing), and the state of that repair.
 */
interface SessionBinding {
  readonly key: InstanceKey;
  readonly fields: ForwardedFields;
  /** repair is the registration a renewal started because the instance was missing; writes of the key wait for it. */
  repair: Promise<void> | null;
  /** leaving is set while this member routes the client's deregistration of the instance: no repair then. */
  leaving: boolean;
  /**
   * lineage is the session's registration of the instance as the responsible member answered it (its latest repair
   * after that), or null from a member older than the answer's lineage: the close ends that registration.
   */
  lineage: Version | null;
}

/** SessionState is one open session and the instances it keeps. */
interface SessionState {
  readonly id: string;
  /** keys maps serviceId + NUL + entryId to the instance the session keeps. */
  readonly keys: Map<string, SessionBinding>;
  /** writes are the session's registrations (and repairs) on their way; its close waits for them (closeSession). */
  readonly writes: Set<Promise<unknown>>;
  lastAliveMs: number;
  closed: boolean;
  /** shutDown is set when the member's shutdown ended the session (endSessions): it removes nothing. */
  shutDown: boolean;
  /** settleClosed settles `closedPromise`: resolved when the session closed, rejected with CAIRN_SHUTTING_DOWN at shutdown. */
  settleClosed: (shutDown: boolean) => void;
  readonly closedPromise: Promise<void>;
  closing: Promise<void> | null;
}

/** ClosingKey is an instance a closed session deregisters, with the lineage of the session's registration of it. */
interface ClosingKey {
  readonly key: InstanceKey;
  readonly lineage: Version | null;
}

/** sessionClosed is the refusal of a write through a session that has ended. */
function sessionClosed(id: string): CairnError {
  return new CairnError('CAIRN_SESSION_CLOSED', `session ${id} is not open on this member`);
}

/** shuttingDown ends the sessions of a member that is shutting down (endSessions), and refuses new ones. */
function shuttingDown(): CairnError {
  return new CairnError('CAIRN_SHUTTING_DOWN', 'the member is shutting down; open a session at another member and register again');
}

/** lineageOfAnswer is the registration's lineage in a responsible member's answer; null from an older member (none). */
function lineageOfAnswer(entry: EntryData): Version | null {
  return entry.lineage.wallMs === 0 ? null : entry.lineage;
}

/**
 * ReadsServed is how a node came to serve reads of ephemeral instances (DistroNode.readsServed): `loaded` after its
 * start-up snapshot was loaded from a peer, `gave_up` when the load gave up (it serves what it has), `standalone`
 * with no peer to load from; `closed` when the node was closed before, and never served.
 */
export interface ReadsServed {
  readonly load: 'loaded' | 'gave_up' | 'standalone' | 'closed';
  /** waitedMs is how long reads were refused, from the node's start. */
  readonly waitedMs: number;
}

/** LoadRound is how one round of the start-up load ended: loaded, no peer reachable, or some peer answered an error. */
type LoadRound = 'loaded' | 'unreachable' | 'failed';

/** closeKeptLoggedMax bounds the instances one closed session's log line names (limits.logItemsNamedMax). */
const closeKeptLoggedMax = defaultLimits.logItemsNamedMax;

/** disagreementLogIntervalMs spaces the warnings about members that disagree on who is responsible (expiryRound). */
const disagreementLogIntervalMs = 30_000;
/** expiredLogMs spaces the warnings about forwarded batches refused past their fence (a skewed clock refuses many). */
const expiredLogMs = 10_000;

const notFoundBeats = new Map<number, BeatResult>();
const foundBeats = new Map<number, BeatResult>();

/** beatResultOf returns a shared, frozen BeatResult (beats allocate no answer object). */
function beatResultOf(found: boolean, intervalMs: number): BeatResult {
  const cache = found ? foundBeats : notFoundBeats;
  let result = cache.get(intervalMs);
  if (result === undefined) {
    result = Object.freeze({ found, clientBeatIntervalMs: intervalMs });
    if (cache.size < defaultLimits.beatAnswersCachedMax) cache.set(intervalMs, result);
  }
  return result;
}

/** DistroNode is one member's ephemeral registry; see the file comment. */
export class DistroNode implements EphemeralRegistry {
  readonly store: EphemeralStore;
  /** handlers serve the peers; they also hear of the items dropped from peers' messages (distro-codec.ts). */
  readonly handlers: DistroHandlers & DroppedItemsObserver;
  private readonly options: DistroNodeOptions;
  private readonly limits: DistroLimits;
  /** expiredLoggedAtMs is when a refused late batch was last logged (refuseExpired). */
  private expiredLoggedAtMs = Number.NEGATIVE_INFINITY;
  /** droppedItemsLog bounds the warnings about items dropped from peers' messages (onItemsDropped). */
  private readonly droppedItemsLog = new DroppedItemsLogGate();
  private readonly now: () => number;
  private readonly peers = new Map<string, PeerState>();
  /** expiryHeld is true while this member sees fewer than half of the group live and holds expiry (inMinority). */
  private expiryHeld = false;
  private live: readonly string[];
  private epoch = 0;
  private transport: DistroTransport | null = null;
  private readonly listeners = new Set<ServiceChangeListener>();
  /** dirty holds the entries changed here and not yet synced: record -> entry ids. */
  private dirty = new Map<ServiceRecord, Set<string>>();
  /** merging is true while entries from a peer are merged: those changes are not synced again. */
  private merging = false;
  private readonly sessions = new Map<string, SessionState>();
  /** disagreements counts the expiry rounds since the last warning that spared instances a peer heard. */
  private disagreements = { loggedAtMs: -Infinity, rounds: 0, spared: 0 };
  /** sessionOfEntry maps serviceId + NUL + entryId to the session keeping that instance. */
  private readonly sessionOfEntry = new Map<string, SessionState>();
  private readonly timers: NodeJS.Timeout[] = [];
  /** sessionsEnded is set once endSessions ran (the member is shutting down): no session opens after it. */
  private sessionsEnded = false;
  /** forwarder batches the writes and beats forwarded to each peer (forward-batcher.ts). */
  private readonly forwarder: ForwardBatcher;
  private loaded = false;
  /**
   * serving is set once reads of ephemeral instances are served: the start-up load is done or gave up, or there is
   * no peer (standalone). It never goes back.
   */
  private serving: ReadsServed | null = null;
  private settleReadsServed: (served: ReadsServed) => void = () => undefined;
  /** readsServed resolves once this node serves reads of ephemeral instances (servesReads), saying how it came to. */
  readonly readsServed: Promise<ReadsServed>;
  /**
   * loadRefusedBy holds the peers whose answer refused the start-up snapshot (a peer whose Distro node is not running
   * yet: the whole cluster is starting); the first heartbeat heard from one of them (its node runs now) wakes the
   * load from its pause between rounds, once per peer (loadWokenBy), so a cluster starting together does not wait a
   * full distroSnapshotRetryDelayMs.
   */
  private readonly loadRefusedBy = new Set<string>();
  private readonly loadWokenBy = new Set<string>();
  /** wakeLoad ends the load's pause between rounds (null when it is not pausing); wakePending: a wake came before it. */
  private wakeLoad: (() => void) | null = null;
  private wakePending = false;
  private closed = false;
  /** confirming is true while an expiry round waits for its peers' answers (one round at a time). */
  private confirming = false;
  /** deferredSinceMs is when expiry rounds began to be held back by a live peer that does not answer (0: they are not). */
  private deferredSinceMs = 0;
  /** lastDeferredMs is when the last round was held back (or acted past its window). */
  private lastDeferredMs = 0;
  /** deferralExpired is true once the current deferral outlasted its window (expiry acts; said once). */
  private deferralExpired = false;
  /** startedAtMs is when this node was made: what this member heard before (an earlier process) is gone. */
  private readonly startedAtMs: number;
  /** peerLeftAtMs is when a peer last left the group (it is no longer asked; what it heard is gone), 0 if never. */
  private peerLeftAtMs = 0;

  constructor(options: DistroNodeOptions) {
    this.options = options;
    this.limits = options.limits;
    this.now = options.now ?? steadyWallMs;
    this.startedAtMs = this.now();
    this.readsServed = new Promise<ReadsServed>((resolve) => (this.settleReadsServed = resolve));
    for (const member of options.members) {
      if (member !== options.self) this.peers.set(member, { up: true, misses: 0, inFlight: false, downSinceMs: 0 });
    }
    this.live = this.computeLive();
    // With no peer there is nothing to load: reads are served from the start (start() or not).
    if (this.peers.size === 0) {
      this.loaded = true;
      this.serveReads('standalone', {});
    }
    this.store = new EphemeralStore({
      self: options.self,
      now: this.now,
      limits: options.limits,
      events: {
        onEntryChanged: (record, entry) => this.entryChanged(record, entry.id),
        onServiceChanged: (record) => this.serviceChanged(record),
      },
    });
    this.handlers = {
      onHeartbeat: (from) => this.heardHeartbeat(from),
      onSync: (from, records) => this.receiveSync(from, records),
      onVerify: (from, checksums) => this.receiveVerify(from, checksums),
      onPull: (_from, keys) => this.answerPull(keys),
      onSnapshot: () => this.snapshotChunks(),
      onForward: (_from, request) => this.serveForward(request),
      onForwardBatch: (from, requests, sentAtMs) => this.serveForwardBatch(from, requests, sentAtMs),
      onLastBeats: (_from, query) => this.answerLastBeats(query),
      onItemsDropped: (from, message, dropped) => this.noteItemsDropped(from, message, dropped),
    };
    this.forwarder = new ForwardBatcher({
      limits: options.limits,
      now: this.now,
      send: (to, requests, sentAtMs) => {
        if (this.transport === null) throw new DistroCallError('the distro transport is not attached', true);
        return this.transport.forwardBatch(to, requests, sentAtMs);
      },
      onBatch: (to, size, failure) => {
        if (failure === null) {
          this.count('forward_batch_sent');
          return;
        }
        this.count('forward_batch_failed');
        this.options.logger.warn({ target: to, requests: size, err: failure.message }, 'forwarding a batch of ephemeral writes and beats failed; recomputing the responsible member');
      },
      onOverflow: () => this.count('forward_overflow'),
    });
  }

  // --- Lifecycle ---

  /** start attaches the transport and starts the timers and the snapshot load. */
  start(transport: DistroTransport): void {
    this.transport = transport;
    // The answers this member decodes (pulls, snapshot chunks) lose their invalid entries alone, as its requests do.
    if (isDroppedItemsSource(transport)) transport.observeDroppedItems(this.handlers);
    const every = (ms: number, task: () => void): void => {
      const timer = setInterval(() => {
        if (!this.closed) task();
      }, ms);
      timer.unref();
      this.timers.push(timer);
    };
    every(this.limits.distroHeartbeatIntervalMs, () => this.heartbeatRound());
    every(this.limits.distroSyncDelayMs, () => this.flushSync());
    every(this.limits.distroVerifyIntervalMs, () => this.verifyRound());
    every(this.limits.distroExpiryTickMs, () => this.expiryTick());
    every(this.limits.beatIntervalMs, () => this.sessionRound());
    this.heartbeatRound();
    void this.loadSnapshot();
  }

  /** close stops the timers and ends the sessions as endSessions does (nothing is deregistered). */
  close(): void {
    this.endSessions();
    this.closed = true;
    this.wakeLoad?.();
    if (this.serving === null) this.settleReadsServed(Object.freeze({ load: 'closed', waitedMs: Math.max(0, Math.round(this.now() - this.startedAtMs)) }));
    this.forwarder.close();
    for (const timer of this.timers) clearInterval(timer);
    this.timers.length = 0;
  }

  /**
   * endSessions ends every session for the member's shutdown, and refuses new ones (CAIRN_SHUTTING_DOWN): their
   * `closed` promises reject with CAIRN_SHUTTING_DOWN, so the Session streams end with UNAVAILABLE (docs/grpc.md), and
   * nothing is deregistered, the session's close included. The clients redo at another member (their new sessions
   * then own the instances, which stay listed throughout); a client that does not is expired by the responsible
   * members (docs/ap.md "Beats, expiry and sessions": the session's member shuts down). The member calls it before
   * it stops its gRPC server, so the streams end while they can still be told why (idempotent).
   */
  endSessions(): void {
    this.sessionsEnded = true;
    for (const session of this.sessions.values()) {
      session.closed = true;
      session.shutDown = true;
      session.closing ??= Promise.resolve();
      session.keys.clear();
      session.settleClosed(true);
    }
    this.sessions.clear();
    this.sessionOfEntry.clear();
  }

  /** self is this member's id. */
  get self(): string {
    return this.options.self;
  }

  /** snapshotLoaded tells whether the start-up snapshot was loaded (or there was no peer to load it from). */
  get snapshotLoaded(): boolean {
    return this.loaded;
  }

  /**
   * servesReads tells whether this member serves reads of ephemeral instances: once its start-up snapshot is loaded,
   * or its load gave up, at once without peers. Until then it holds only what reached it since its start, and the
   * naming layer refuses those reads (CAIRN_MEMBER_BEHIND) rather than answer a partial list.
   */
  servesReads(): boolean {
    return this.serving !== null;
  }

  /**
   * setMembers follows the group's membership (the Raft configuration's voters and learners; the member falls back
   * to its --members list while it has none). A member that joined is a peer from now on, down until it answers a
   * heartbeat (then it gets everything this member is responsible for, as after any outage, and its share of the
   * responsibility); a member that left is dropped and its connection released. This member always stays.
   */
  setMembers(members: readonly string[]): void {
    if (this.closed) return;
    const self = this.options.self;
    const wanted = new Set(members.filter((member) => member !== self));
    const left = [...this.peers.keys()].filter((peer) => !wanted.has(peer));
    const joined = [...wanted].filter((member) => !this.peers.has(member));
    if (left.length === 0 && joined.length === 0) return;
    const now = this.now();
    for (const peer of left) {
      this.peers.delete(peer);
      this.transport?.forgetPeer?.(peer);
    }
    if (left.length > 0) this.peerLeftAtMs = now;
    for (const member of joined) this.peers.set(member, { up: false, misses: 0, inFlight: false, downSinceMs: now });
    this.options.logger.info({ joined, left, live: this.computeLive() }, 'distro members follow the group membership');
    this.onLiveChanged();
    if (joined.length > 0) this.heartbeatRound();
  }

  /** liveMembers is this member's current view of the live members, sorted. */
  liveMembers(): readonly string[] {
    return this.live;
  }

  /** sessionCount is the number of open sessions. */
  get sessionCount(): number {
    return this.sessions.size;
  }

  private count(event: DistroEvent, n = 1): void {
    if (n > 0) this.options.onEvent?.(event, n);
  }

  /**
   * noteItemsDropped counts the items a peer's message (or answer) lost to validation, the rest of which was kept
   * (distro-codec.ts), and warns about them, at most every few seconds (DroppedItemsLogGate): a bad entry comes
   * back with every verify round until it is gone.
   */
  private noteItemsDropped(peer: string, message: DroppedItemMessage, dropped: readonly DroppedItem[]): void {
    this.count(droppedEvents[message], dropped.length);
    const warning = this.droppedItemsLog.admit(this.now(), peer, message, dropped);
    if (warning !== null) this.options.logger.warn(warning, droppedItemsWarningMessage);
  }

  // --- Liveness and responsibility ---

  private computeLive(): string[] {
    const live = [this.options.self];
    for (const [peer, state] of this.peers) if (state.up) live.push(peer);
    return live.sort();
  }

  private heartbeatRound(): void {
    const transport = this.transport;
    if (transport === null) return;
    for (const [peer, state] of this.peers) {
      if (state.inFlight) continue;
      state.inFlight = true;
      transport.heartbeat(peer).then(() => {
        state.inFlight = false;
        state.misses = 0;
        // A peer that left the group meanwhile (setMembers) is not brought back by a late answer.
        if (!state.up && this.peers.get(peer) === state) this.setPeerUp(peer, state, true);
      }, (error: unknown) => {
        state.inFlight = false;
        if (this.peers.get(peer) !== state) return;
        state.misses++;
        const refused = error instanceof DistroCallError && error.notSent;
        if (state.up && (refused || state.misses >= this.limits.distroHeartbeatMissesMax)) this.setPeerUp(peer, state, false);
      });
    }
  }

  /** markDown records that `peer` failed a call (a forward): it is down until its heartbeats answer again. */
  private markDown(peer: string): void {
    const state = this.peers.get(peer);
    if (state !== undefined && state.up) {
      state.misses = this.limits.distroHeartbeatMissesMax;
      this.setPeerUp(peer, state, false);
    }
  }

  private setPeerUp(peer: string, state: PeerState, up: boolean): void {
    state.up = up;
    if (!up) state.downSinceMs = this.now();
    this.options.logger.info({ peer, up, live: this.computeLive() }, up ? 'distro peer is up' : 'distro peer is down');
    this.onLiveChanged();
    if (up && !this.closed) void this.pushEverything(peer);
  }

  /**
   * onLiveChanged recomputes the live set; services this member takes over get the takeover grace from now (which
   * the coverage rule shortens when the peers' answers cover the beats that went elsewhere: coverageFloorMs).
   */
  private onLiveChanged(): void {
    this.live = this.computeLive();
    this.epoch++;
    const now = this.now();
    const self = this.options.self;
    for (const record of this.store.allRecords()) {
      const before = record.responsible;
      const after = this.responsibleOf(record);
      if (after === self && before !== self) record.ownedSinceMs = now;
    }
  }

  /**
   * coverageFloorMs is the latest time a member may have died (or left) taking with it beats that nobody else heard:
   * this member's own start, and when it last saw each peer go down or leave. A member that died did so before the
   * others saw it down, and one that came back answers for what it heard since. So once every member live in this
   * member's view has answered, a beat since the floor is in an answer or in this member's own record
   * (ephemeral-store.ts silenceSinceMs). A peer down in this view now counts as dead since it was seen going down: if
   * it is in fact alive behind a cut, hearing beats nobody here hears, this side's silence is the side's own, and
   * expiring is what an AP registry does there (the takeover grace gave the same: a full timeout from the cut).
   * Bounded by the membership (one pass over the peers).
   */
  coverageFloorMs(): number {
    let floor = Math.max(this.startedAtMs, this.peerLeftAtMs);
    for (const state of this.peers.values()) floor = Math.max(floor, state.downSinceMs);
    return floor;
  }

  /** responsibleOf returns the member responsible for a record's service (cached per membership epoch). */
  private responsibleOf(record: ServiceRecord): string {
    if (record.responsibleEpoch !== this.epoch) {
      record.responsible = responsibleMember(record.id, this.live);
      record.responsibleEpoch = this.epoch;
    }
    return record.responsible;
  }

  /** responsibleForId returns the member responsible for a service id (cached when the service is held). */
  responsibleFor(serviceId: string): string {
    const record = this.store.record(serviceId);
    return record === undefined ? responsibleMember(serviceId, this.live) : this.responsibleOf(record);
  }

  // --- Store events ---

  private entryChanged(record: ServiceRecord, entryId: string): void {
    if (this.merging) return;
    let ids = this.dirty.get(record);
    if (ids === undefined) this.dirty.set(record, (ids = new Set()));
    ids.add(entryId);
  }

  private serviceChanged(record: ServiceRecord): void {
    for (const listener of this.listeners) {
      try {
        listener(record.key);
      } catch (error) {
        this.count('listener_failed');
        this.options.logger.error({ err: error, service: record.key }, 'an ephemeral change listener failed');
      }
    }
  }

  /** mergeFromPeer merges records without queueing them for sync again. */
  private mergeFromPeer(records: readonly RecordData[]): number {
    this.merging = true;
    let changed = 0;
    try {
      for (const record of records) changed += this.store.merge(record);
    } finally {
      this.merging = false;
    }
    return changed;
  }

  // --- EphemeralRegistry ---

  /** onChange registers a listener for every change to a service's ephemeral instances on this member. */
  onChange(listener: ServiceChangeListener): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /** instancesOf lists the live ephemeral instances of a service held by this member. */
  instancesOf(service: ServiceKey): readonly Instance[] {
    return this.store.instancesOf(service);
  }

  /** serviceKeys lists the services of a namespace holding live ephemeral instances on this member. */
  serviceKeys(namespace: string): readonly ServiceKey[] {
    return this.store.serviceKeys(namespace);
  }

  /**
   * write applies an ephemeral write at the responsible member (forwarding it there when needed), and keeps this
   * member's sessions in step with it (docs/ap.md "Beats, expiry and sessions"):
   * - a registration through a session binds the instance to it (the session's renewals keep it); one without an
   *   owner (a beat-kept registration) ends any hold a session of this member had on it;
   * - an update or a patch is an operator's change: the instance keeps its owner (ephemeral-store.ts put), so its
   *   session keeps it too (until 2026-11-24 it unbound it here, and the instance expired under a live session);
   * - a deregistration ends a session's hold only when sent through that session (deregisterThrough).
   */
  async write(operation: DistroWrite, _context: RequestContext): Promise<InstanceWriteResult | DeregisterResult> {
    if (operation.type === 'deregister') return this.deregisterThrough(operation.key, operation.owner);
    const request = this.requestOf(operation);
    const key = operation.type === 'patch' ? operation.key : operation.instance;
    const global = globalEntryId(key);
    // Only a registration binds: an update keeps the owner the instance has, whatever it names.
    const session = operation.type === 'register' && operation.owner !== undefined ? this.openSessionOf(operation.owner) : null;
    if (session !== null) this.checkSessionRoom(session, global);
    const repair = this.repairOf(global);
    if (repair !== null) await repair;
    let response: ForwardResponse;
    if (session !== null && request.type === 'register') {
      if (session.closed) throw sessionClosed(session.id);
      response = await this.trackSessionWrite(session, this.registerThrough(session, global, request));
    } else {
      response = await this.route(key, request);
      // A registration without an owner makes the instance beat-kept (ephemeral-store.ts put).
      if (request.type === 'register' && response.ok) this.unbindFromSession(global);
    }
    if (!response.ok) throw errorOf(response);
    if (response.type !== 'instance') throw new CairnError('CAIRN_INTERNAL', `a write was answered with ${response.type}`);
    return { instance: instanceOf(key, response.entry), revision: response.revision };
  }

  /** checkSessionRoom refuses a session's registration of a new instance beyond distroSessionInstancesMax. */
  private checkSessionRoom(session: SessionState, global: string): void {
    const max = this.limits.distroSessionInstancesMax;
    if (session.keys.size >= max && !session.keys.has(global)) {
      throw new CairnError('CAIRN_SESSION_INSTANCES_EXCEEDED', `session ${session.id} already keeps ${session.keys.size} instances (limit ${max}); deregister some through it or open another session`,
        { details: { limit: max } });
    }
  }

  /**
   * registerThrough routes a session's registration and binds the instance to the session; when the session closed
   * while it was on its way, it ends the registration as the close would have (the close only removes what the session held when it closed). The race, with the
   * responsible member remote (found by the 2026-11-24 gRPC audit: 19 of 30 cancelled sessions left their instance
   * listed until it expired, 30 s later):
   *   1. The client sends `register` and cancels its stream at once.
   *   2. The registration is forwarded; meanwhile the cancel closes the session, which holds nothing yet.
   *   3. The registration lands, owned by the closed session: nothing renews it and nothing removes it.
   * A session ended by the member's shutdown removes nothing (endSessions), so neither does this.
   */
  private async registerThrough(session: SessionState, global: string, request: Extract<ForwardRequest, { readonly fields: ForwardedFields }>): Promise<ForwardResponse> {
    const { key } = request;
    const response = await this.route(key, request);
    if (!response.ok || response.type !== 'instance') return response;
    if (!session.closed) {
      this.bindToSession(session, global, key, request.fields, lineageOfAnswer(response.entry));
      return response;
    }
    if (session.shutDown) throw shuttingDown();
    this.options.logger.info({ session: session.id, service: key.service, ip: key.ip, port: key.port }, 'a session closed while its registration was on its way; removing it again');
    await this.deregisterClosed(session.id, [{ key, lineage: lineageOfAnswer(response.entry) }]);
    throw sessionClosed(session.id);
  }

  /** repairOf is a session's repair registration of the instance in flight: a write waits for it, so it cannot undo the write. */
  private repairOf(global: string): Promise<void> | null {
    return this.sessionOfEntry.get(global)?.keys.get(global)?.repair ?? null;
  }

  /** trackSessionWrite keeps a session's write in flight where its close waits for it (closeSession). */
  private async trackSessionWrite<T>(session: SessionState, write: Promise<T>): Promise<T> {
    session.writes.add(write);
    try {
      return await write;
    } finally {
      session.writes.delete(write);
    }
  }

  /**
   * deregisterThrough routes a deregistration. The instance is removed wherever it is sent; whether the session of
   * this member that keeps it (if any) lets it go follows one rule on every member: a live session is the authority
   * for its instances, as a Nacos 2.x connection is for its client's (docs/ap.md "Beats, expiry and sessions"). Only
   * the session's own deregistration (`owner` its id) ends its hold; any other (a unary or HTTP deregistration,
   * another session's) is undone by the session's next renewal round, here as on every other member.
   */
  private async deregisterThrough(key: InstanceKey, owner: string | undefined): Promise<DeregisterResult> {
    const global = globalEntryId(key);
    const repair = this.repairOf(global);
    if (repair !== null) await repair;
    const holder = this.sessionOfEntry.get(global);
    const binding = holder !== undefined && owner === holder.id ? holder.keys.get(global) : undefined;
    // While the client's own deregistration is under way, no renewal restores the instance (repairSession).
    if (binding !== undefined) binding.leaving = true;
    let response: ForwardResponse;
    try {
      response = await this.route(key, { type: 'deregister', key });
    } finally {
      if (binding !== undefined) binding.leaving = false;
    }
    if (!response.ok) throw errorOf(response);
    if (response.type !== 'removed') throw new CairnError('CAIRN_INTERNAL', `a deregistration was answered with ${response.type}`);
    if (binding !== undefined && holder?.keys.get(global) === binding) this.unbindFromSession(global);
    return { removed: response.removed, revision: response.revision };
  }

  private requestOf(operation: Exclude<DistroWrite, { readonly type: 'deregister' }>): ForwardRequest {
    switch (operation.type) {
      case 'register':
      case 'update': {
        const { instance } = operation;
        // Refuse bad preserved.* timeouts here, before anything travels (the responsible member checks again).
        timeoutsOf(instance.metadata, this.limits, true);
        return {
          type: operation.type, key: keyOf(instance), owner: operation.owner ?? '',
          fields: { weight: instance.weight, enabled: instance.enabled, healthy: instance.healthy, metadata: instance.metadata },
        };
      }
      case 'patch':
        if (operation.metadata !== undefined) timeoutsOf(operation.metadata, this.limits, true);
        return operation;
    }
  }

  /** beat keeps a beat-kept instance alive at its responsible member (see BeatInput for re-registration). */
  async beat(input: BeatInput, _context: RequestContext): Promise<BeatResult> {
    const key = input.key;
    const serviceId = serviceIdOfKey(key);
    if (this.responsibleFor(serviceId) === this.options.self) {
      // The hot path: one lookup and one number write, and a shared answer object.
      const entry = this.store.beat(serviceId, entryIdOf(key.cluster, key.ip, key.port), true);
      if (entry !== undefined) {
        this.count('beat_found');
        return beatResultOf(true, entry.timeouts.intervalMs);
      }
    } else {
      this.count('beat_forwarded');
      // The client is alive now, whoever applies the beat: the responsible member may ask (confirmExpiry).
      this.store.noteHeard(serviceId, entryIdOf(key.cluster, key.ip, key.port));
    }
    if (input.instance !== undefined) timeoutsOf(input.instance.metadata, this.limits, true);
    const response = await this.route(key, input.instance === undefined ? { type: 'beat', key } : { type: 'beat', key, body: input.instance });
    if (!response.ok) throw errorOf(response);
    if (response.type !== 'beat') throw new CairnError('CAIRN_INTERNAL', `a beat was answered with ${response.type}`);
    return beatResultOf(response.found, response.clientBeatIntervalMs);
  }

  /**
   * route sends a request to the member responsible for `key`'s service, or applies it here when that is this
   * member. A forward that fails marks the target down and is retried once at the recomputed member.
   */
  private async route(key: InstanceKey, request: ForwardRequest): Promise<ForwardResponse> {
    const serviceId = serviceIdOfKey(key);
    let lastFailure = '';
    for (let attempt = 0; attempt < 2; attempt++) {
      const target = this.responsibleFor(serviceId);
      if (target === this.options.self || this.transport === null) return this.applyLocal(request);
      try {
        // Queued with the other requests bound for `target`; a full queue throws CAIRN_DISTRO_UNAVAILABLE at once.
        const response = await this.forwarder.enqueue(target, request);
        this.count('forward_ok');
        return response;
      } catch (error) {
        if (!(error instanceof DistroCallError)) throw error;
        // The batch failed as a whole (logged once by the batcher): each of its requests retries on its own.
        lastFailure = `${target}: ${error.message}`;
        this.count(attempt === 0 ? 'forward_retried' : 'forward_failed');
        this.markDown(target);
        await this.waitOutFence(error);
      }
    }
    throw new CairnError('CAIRN_DISTRO_UNAVAILABLE', lastFailure);
  }

  /**
   * waitOutFence returns once a failed forward can no longer be applied: at once when it was certainly not sent;
   * otherwise when distroForwardFenceMs + distroForwardSkewMs have passed since it left, after which the receiver
   * refuses it (serveForwardBatch). Retrying elsewhere or answering earlier would let a late copy (a paused or
   * slow member reading it later) be applied after the client's next write, with a newer version that wins.
   */
  private async waitOutFence(error: DistroCallError): Promise<void> {
    if (error.notSent || error.sentAtMs === null) return;
    const limit = this.limits.distroForwardFenceMs + this.limits.distroForwardSkewMs;
    const waitMs = Math.min(limit, error.sentAtMs + limit - this.now());
    if (waitMs <= 0) return;
    this.count('forward_fence_waits');
    await new Promise<void>((resolve) => setTimeout(resolve, waitMs));
  }

  /**
   * serveForwardBatch applies each request of a batch on its own; an error is that request's response. A batch
   * older than distroForwardFenceMs by this member's clock (sent at `sentAtMs` by the sender's; 0: not said) is
   * refused whole and nothing of it applied: its sender may have given up and applied it elsewhere (waitOutFence).
   */
  private serveForwardBatch(from: string, requests: readonly ForwardRequest[], sentAtMs: number): ForwardResponse[] {
    const ageMs = sentAtMs > 0 ? this.now() - sentAtMs : 0;
    if (ageMs > this.limits.distroForwardFenceMs) return this.refuseExpired(from, requests.length, ageMs);
    this.count('forward_served', requests.length);
    const responses = new Array<ForwardResponse>(requests.length);
    for (let i = 0; i < requests.length; i++) {
      const request = requests[i]!;
      try {
        responses[i] = this.applyLocal(request);
      } catch (error) {
        responses[i] = this.errorResponseOf(error);
      }
    }
    return responses;
  }

  /** refuseExpired answers each request of a batch that arrived past its fence, logging at most every expiredLogMs. */
  private refuseExpired(from: string, count: number, ageMs: number): ForwardResponse[] {
    this.count('forward_expired', count);
    const now = this.now();
    if (now - this.expiredLoggedAtMs >= expiredLogMs) {
      this.expiredLoggedAtMs = now;
      this.options.logger.warn({ peer: from, requests: count, ageMs, fenceMs: this.limits.distroForwardFenceMs },
        'a forwarded batch arrived past its fence and was refused (this member was paused or slow, or its clock is ahead of the sender\'s)');
    }
    const refusal: ForwardResponse = Object.freeze({
      ok: false, code: 'CAIRN_DISTRO_UNAVAILABLE',
      message: `the forwarded writes arrived ${ageMs} ms after they were sent, past the ${this.limits.distroForwardFenceMs} ms fence; not applied`,
    });
    return new Array<ForwardResponse>(count).fill(refusal);
  }

  private errorResponseOf(error: unknown): ForwardResponse {
    if (isCairnError(error)) return { ok: false, code: error.code, message: error.detail ?? error.message };
    this.options.logger.error({ err: error }, 'applying a forwarded ephemeral write failed');
    return { ok: false, code: 'CAIRN_INTERNAL', message: 'the responsible member failed to apply the write' };
  }

  /** serveForward applies a request forwarded by a peer, answering errors as values. */
  private async serveForward(request: ForwardRequest): Promise<ForwardResponse> {
    this.count('forward_served');
    try {
      return this.applyLocal(request);
    } catch (error) {
      return this.errorResponseOf(error);
    }
  }

  /** applyLocal applies a request to this member's store (it is, or is believed to be, responsible). */
  private applyLocal(request: ForwardRequest): ForwardResponse {
    switch (request.type) {
      case 'register':
      case 'update': {
        const { instance, revision, lineage } = this.store.put(request.key, request.fields, request.owner, request.type);
        // The entry carries the registration's lineage (as its version too: an answer is no copy to merge), so a
        // session's member knows which registration its close must end.
        return { ok: true, type: 'instance', entry: { ...entryOfInstance(instance, request.owner), version: lineage, lineage }, revision };
      }
      case 'patch': {
        const { key, type: _type, ...changes } = request;
        const { instance, revision } = this.store.patch(key, changes);
        return { ok: true, type: 'instance', entry: entryOfInstance(instance, ''), revision };
      }
      case 'deregister': {
        if (request.owner === undefined || request.owner === '') {
          const { removed, revision } = this.store.remove(request.key);
          return { ok: true, type: 'removed', removed, revision };
        }
        const { removed, revision } = this.store.removeOwned(request.key, request.owner);
        if (removed) return { ok: true, type: 'removed', removed, revision };
        const copy = this.noteUnownedClose(request.key, request.owner);
        return copy === null ? { ok: true, type: 'removed', removed, revision } : { ok: true, type: 'removed', removed, revision, heldLineage: copy.lineage };
      }
      case 'beat':
        return this.beatLocal(request.key, request.body);
      case 'renew': {
        let count = 0;
        const missing: number[] = [];
        for (let position = 0; position < request.keys.length; position++) {
          const key = request.keys[position]!;
          if (this.store.beat(serviceIdOfKey(key), entryIdOf(key.cluster, key.ip, key.port), true) !== undefined) count++;
          else missing.push(position);
        }
        return { ok: true, type: 'renewed', count, missing };
      }
    }
  }

  /**
   * noteUnownedClose logs (info) a closing session's removal that removed nothing here: the instance is held by another
   * session (the client's redo: expected), by no session, or is not live here (already removed, or this member's copy
   * has not arrived). One line per instance of a closed session left in place.
   */
  private noteUnownedClose(key: InstanceKey, owner: string): { readonly lineage: Version } | null {
    const copy = this.store.copyOf(key);
    const lineage = copy === null ? 'none' : `${copy.lineage.wallMs}.${copy.lineage.counter}@${copy.lineage.member}`;
    this.options.logger.info({ service: key.service, ip: key.ip, port: key.port, closing: owner, live: copy?.live ?? false, holder: copy?.owner ?? '', lineage },
      copy?.live === true ? 'a closed session\'s instance is held by another session here; left in place' : 'a closed session\'s instance is not live here; nothing to remove');
    return copy;
  }

  private beatLocal(key: InstanceKey, body: { readonly weight: number; readonly metadata: InstanceFieldsMetadata } | undefined): ForwardResponse {
    const entry = this.store.beat(serviceIdOfKey(key), entryIdOf(key.cluster, key.ip, key.port), true);
    if (entry !== undefined) {
      this.count('beat_found');
      return beatResponseOf(true, entry.timeouts.intervalMs);
    }
    if (body === undefined) {
      // Still loading the start-up snapshot: "unknown" may only mean "not loaded yet". 20404 would send a live
      // client re-registering; a retryable refusal sends it to another member (Nacos answers 503 while starting).
      if (!this.servesReads()) {
        return { ok: false, code: 'CAIRN_MEMBER_BEHIND', message: 'this member has just started and is still loading the ephemeral instances from its peers; beat another member, or this one shortly' };
      }
      this.count('beat_not_found');
      return beatResponseOf(false, this.limits.beatIntervalMs);
    }
    // Nacos's "data compensation": the beat carries the instance, so an unknown one is registered again from it.
    this.store.put(key, { weight: body.weight, enabled: true, healthy: true, metadata: body.metadata }, '', 'register');
    this.count('beat_reregistered');
    return beatResponseOf(true, timeoutsOf(body.metadata, this.limits, false).intervalMs);
  }

  // --- Sync ---

  /** flushSync sends the queued changes to every live peer in merged batches. */
  private flushSync(): void {
    const transport = this.transport;
    if (this.dirty.size === 0 || transport === null) return;
    const dirty = this.dirty;
    this.dirty = new Map();
    const records: RecordData[] = [];
    for (const [record, ids] of dirty) {
      const entries: EntryData[] = [];
      for (const id of ids) {
        const entry = record.entries.get(id);
        if (entry !== undefined) entries.push(this.store.exportEntry(entry));
      }
      if (entries.length > 0) records.push({ key: record.key, entries });
    }
    const chunks = chunkRecords(records, this.limits);
    for (const peer of this.livePeers()) {
      for (const chunk of chunks) {
        transport.sync(peer, chunk).then(() => this.count('sync_sent'), () => this.count('sync_failed'));
      }
    }
  }

  /**
   * inMinority tells whether this member sees fewer than half of the group live (itself included): then it neither
   * flags nor removes instances for silence (self-preservation, as Eureka's). Cut off from most members, it is
   * responsible in its own view for services whose clients beat on the other side; expiring them wrote tombstones
   * that won the merge everywhere after the heal, so every member, the side that heard those clients throughout
   * included, lost up to 14 % of its instances for 10-16 s (session 32's scale audit: a 30 s cut of one member of
   * three, 12 000 instances). Dead clients on this side are expired once the view is back to half or more, counting
   * silence from then (the takeover grace). Transitions are logged.
   */
  private inMinority(): boolean {
    const group = this.peers.size + 1;
    const minority = (this.livePeers().length + 1) * 2 < group;
    if (minority !== this.expiryHeld) {
      this.expiryHeld = minority;
      if (minority) this.options.logger.warn({ live: this.livePeers().length + 1, members: group }, 'fewer than half of the members are live in this member\'s view: it stops expiring instances for silence until they are back');
      else this.options.logger.info({ live: this.livePeers().length + 1, members: group }, 'half of the members or more are live again: expiry resumes');
    }
    return minority;
  }

  private livePeers(): string[] {
    const peers: string[] = [];
    for (const [peer, state] of this.peers) if (state.up) peers.push(peer);
    return peers;
  }

  private receiveSync(_from: string, records: readonly RecordData[]): void {
    this.count('sync_received');
    this.mergeFromPeer(records);
  }

  /** pushEverything sends a peer that just came up every service this member holds (healing a partition at once). */
  private async pushEverything(peer: string): Promise<void> {
    const transport = this.transport;
    if (transport === null) return;
    try {
      for (const chunk of this.snapshotChunks()) await transport.sync(peer, chunk);
      this.count('full_push_sent');
    } catch {
      this.count('sync_failed');
    }
  }

  // --- Verify ---

  private verifyRound(): void {
    const transport = this.transport;
    if (transport === null) return;
    const checksums: ServiceChecksum[] = [];
    for (const record of this.store.allRecords()) {
      if (this.responsibleOf(record) === this.options.self) checksums.push({ key: record.key, checksum: record.checksum() });
    }
    if (checksums.length === 0) return;
    for (const peer of this.livePeers()) {
      for (let start = 0; start < checksums.length; start += this.limits.distroMessageEntriesMax) {
        transport.verify(peer, checksums.slice(start, start + this.limits.distroMessageEntriesMax))
          .then(() => this.count('verify_sent'), () => this.count('sync_failed'));
      }
    }
  }

  private receiveVerify(from: string, checksums: readonly ServiceChecksum[]): void {
    // Repair calls the sender back, so only a member of the group is listened to: peer calls are not authenticated
    // yet, and a forged cairn-from would make this member connect to whatever host it names, with a client kept per
    // name (found by test/replica/peer-fuzz.test.ts).
    if (!this.peers.has(from)) return;
    const differing: ServiceChecksum[] = [];
    for (const item of checksums) {
      if (this.store.checksum(serviceIdOfKey(item.key)) !== item.checksum) differing.push(item);
    }
    if (differing.length === 0) return;
    this.count('verify_mismatch', differing.length);
    void this.repair(from, differing);
  }

  /** repair pulls the differing services from `from`, merges them, and pushes back what still differs. */
  private async repair(from: string, differing: readonly ServiceChecksum[]): Promise<void> {
    const transport = this.transport;
    if (transport === null) return;
    try {
      for (let start = 0; start < differing.length; start += this.limits.distroSyncBatchMax) {
        const batch = differing.slice(start, start + this.limits.distroSyncBatchMax);
        this.mergeFromPeer(await transport.pull(from, batch.map((item) => item.key)));
        const pushBack: RecordData[] = [];
        for (const item of batch) {
          const record = this.store.record(serviceIdOfKey(item.key));
          if (record !== undefined && record.checksum() !== item.checksum) pushBack.push(this.store.exportRecord(record));
        }
        for (const chunk of chunkRecords(pushBack, this.limits)) {
          await transport.sync(from, chunk);
          this.count('pushback_sent');
        }
      }
    } catch (error) {
      this.count('sync_failed');
      this.options.logger.warn({ peer: from, err: error instanceof Error ? error.message : String(error) }, 'distro repair failed; the next verify round retries');
    }
  }

  private answerPull(keys: readonly ServiceKey[]): RecordData[] {
    const records: RecordData[] = [];
    for (const key of keys) {
      const record = this.store.record(serviceIdOfKey(key));
      if (record !== undefined) records.push(this.store.exportRecord(record));
    }
    // One answer is one message: cut at the bounds; what is left is pulled in the next verify round.
    return chunkRecords(records, this.limits)[0]?.slice() ?? [];
  }

  /** snapshotChunks yields every record (tombstones included) in message-sized chunks. */
  private *snapshotChunks(): Generator<readonly RecordData[]> {
    const records: RecordData[] = [];
    for (const record of this.store.allRecords()) records.push(this.store.exportRecord(record));
    yield* chunkRecords(records, this.limits);
  }

  /**
   * loadSnapshot loads a full snapshot from the first peer that gives one, in at most distroSnapshotRetriesMax rounds
   * distroSnapshotRetryDelayMs apart, then serves reads (serveReads). It gives up, and serves what it has, when every
   * round failed or when a round found no peer reachable (every call failed unsent: the peers are down or cut off,
   * and nobody this member can reach holds more than it does). A standalone member serves at once.
   */
  private async loadSnapshot(): Promise<void> {
    const peers = [...this.peers.keys()];
    if (peers.length === 0) return; // standalone: served since the constructor
    for (let round = 0; round < this.limits.distroSnapshotRetriesMax; round++) {
      const outcome = await this.loadRound(peers, round);
      if (this.closed || outcome === 'loaded') return;
      if (outcome === 'unreachable') {
        this.serveReads('gave_up', { rounds: round + 1, reason: 'no peer was reachable' });
        return;
      }
      if (round + 1 < this.limits.distroSnapshotRetriesMax) await this.pauseLoad();
    }
    if (!this.closed) this.serveReads('gave_up', { rounds: this.limits.distroSnapshotRetriesMax, reason: 'every round failed' });
  }

  /** loadRound asks each peer in turn for a full snapshot until one gives it; it says how the round ended. */
  private async loadRound(peers: readonly string[], round: number): Promise<LoadRound> {
    let reachable = false;
    for (const peer of peers) {
      const transport = this.transport;
      if (transport === null || this.closed) return 'failed';
      try {
        let merged = 0;
        let services = 0;
        await transport.snapshot(peer, (chunk) => {
          services += chunk.length;
          merged += this.mergeFromPeer(chunk);
        });
        this.loaded = true;
        this.count('snapshot_loaded');
        this.options.logger.info({ peer, services, merged }, 'distro snapshot loaded');
        this.serveReads('loaded', { peer });
        return 'loaded';
      } catch (error) {
        const unsent = error instanceof DistroCallError && error.notSent;
        if (!unsent) {
          reachable = true;
          this.loadRefusedBy.add(peer);
        }
        this.count('snapshot_failed');
        this.options.logger.warn({ peer, round, err: error instanceof Error ? error.message : String(error) }, 'distro snapshot load failed; trying the next peer');
      }
    }
    return reachable ? 'failed' : 'unreachable';
  }

  /**
   * pauseLoad waits distroSnapshotRetryDelayMs before the next round, or less: the first heartbeat of a peer that
   * refused the snapshot ends it (heardHeartbeat), as does the node's close.
   */
  private pauseLoad(): Promise<void> {
    if (this.wakePending || this.closed) {
      this.wakePending = false;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => wake(), this.limits.distroSnapshotRetryDelayMs);
      timer.unref();
      const wake = (): void => {
        clearTimeout(timer);
        this.wakeLoad = null;
        resolve();
      };
      this.wakeLoad = wake;
    });
  }

  /**
   * heardHeartbeat hears a peer's heartbeat. During the start-up load, the first one from a peer that refused the
   * snapshot (its Distro node was not running: it was starting too) says its node runs now, so the load asks again
   * at once instead of after its pause.
   */
  private heardHeartbeat(from: string): void {
    if (this.serving !== null || !this.loadRefusedBy.has(from) || this.loadWokenBy.has(from)) return;
    this.loadWokenBy.add(from);
    if (this.wakeLoad !== null) this.wakeLoad();
    else this.wakePending = true;
  }

  /**
   * serveReads starts serving reads of ephemeral instances, once, and logs it with how long they were refused and
   * whether the load succeeded: a warning when it gave up (what this member lists may lack instances its peers hold
   * until verify rounds bring them).
   */
  private serveReads(load: Exclude<ReadsServed['load'], 'closed'>, fields: Readonly<Record<string, string | number>>): void {
    if (this.serving !== null || this.closed) return;
    const served: ReadsServed = Object.freeze({ load, waitedMs: Math.max(0, Math.round(this.now() - this.startedAtMs)) });
    this.serving = served;
    this.loadRefusedBy.clear();
    this.wakeLoad = null;
    const line = { ...fields, load, waitedMs: served.waitedMs };
    if (load === 'gave_up') {
      this.options.logger.warn(line, 'serving ephemeral reads without a start-up snapshot (no peer gave one); instances this member lacks arrive with verify rounds');
    } else {
      this.options.logger.info(line, load === 'loaded' ? 'serving ephemeral reads: the start-up snapshot is loaded' : 'serving ephemeral reads: standalone, nothing to load');
    }
    this.settleReadsServed(served);
  }

  // --- Expiry ---

  private expiryTick(): void {
    const self = this.options.self;
    const owns = (record: ServiceRecord): boolean => this.responsibleOf(record) === self;
    this.count('tombstones_collected', this.store.collectTombstones());
    if (this.inMinority()) return;
    const lastBeats = this.transport?.lastBeats?.bind(this.transport);
    if (lastBeats === undefined || this.peers.size === 0) {
      this.countExpiry(this.store.scanExpiry(this.limits.distroExpiryScanEntriesMax, owns));
      return;
    }
    if (this.confirming) return;
    const builder = new LastBeatsQueryBuilder(this.limits);
    // Candidates are what may be due once every peer answers (the answers only make the silence shorter).
    this.store.findExpiring(this.limits.distroExpiryScanEntriesMax, owns, (candidate) => builder.add(candidate), this.coverageFloorMs());
    if (builder.size === 0) return;
    const round = builder.build();
    const required = this.livePeers();
    if (required.length === 0) {
      // Alone in this member's view: every peer counts as dead since it was seen going down (coverageFloorMs).
      this.countExpiry(this.store.expireConfirmed(round.candidates, owns, this.coverageFloorMs()));
      return;
    }
    this.confirming = true;
    void this.confirmExpiry(lastBeats, round, required, owns).finally(() => {
      this.confirming = false;
    });
  }

  /**
   * confirmExpiry asks every peer how long ago it last heard from the candidates' clients, moves each candidate's
   * last beat to the latest report, and then flags or removes those still silent for their timeouts. Every peer live
   * in this member's view is waited for; peers it sees down are asked too, and their answers used if they arrive
   * first. A peer with no connection now fails at once and is passed over: it is dead, restarting or cut off, and
   * what it heard is lost or on the far side of the cut, where this member's silence is the side's own. A live peer that got the question but did not answer holds the round back (the reports are
   * kept): the next round asks again, for at most one detection window (holdExpiry).
   *
   * The race it prevents (jepsen-like D2, 2026-11-22; 5 members, .15 cut off, 1 s beats, 3 s unhealthy timeout):
   *   1. .11's forward to .15 fails and .11 marks .15 down at once; .12-.14 still see .15 up (3 missed heartbeats
   *      take about 6 s).
   *   2. Service S is .13's over the 5 members and .14's over the 4 without .15: .11 now forwards S's beats to .14,
   *      which applies them (a forwarded request gets no second hop), while .13 still believes itself responsible.
   *   3. .13 hears no beat for 3 s and flags a beating instance unhealthy (and, once the service moves again, can
   *      remove a stopped one early). The same with a member that took S over in the smaller view while the beats
   *      go to the old owner.
   * With the question, .13 learns at step 3 that .14 (and .11, which forwarded) heard the client 1 s ago, and waits.
   * Only a member that cannot reach any member that heard the client still acts on the silence: the far side of a
   * partition, exactly as before.
   */
  private async confirmExpiry(
    lastBeats: (to: string, query: readonly LastBeatsQuery[]) => Promise<readonly number[]>,
    round: LastBeatsRound,
    required: readonly string[],
    owns: (record: ServiceRecord) => boolean,
  ): Promise<void> {
    const reports: Array<{ readonly silentMs: readonly number[]; readonly atMs: number }> = [];
    const ask = (peer: string): Promise<void> => lastBeats(peer, round.query).then((silentMs) => {
      reports.push({ silentMs, atMs: this.now() });
    });
    const requiredSet = new Set(required);
    for (const peer of this.peers.keys()) if (!requiredSet.has(peer)) ask(peer).catch(() => undefined);
    const results = await Promise.allSettled(required.map(ask));
    if (this.closed) return;
    const { candidates } = round;
    let heardElsewhere = 0;
    for (const report of reports) {
      for (let i = 0; i < candidates.length; i++) {
        const silentMs = report.silentMs[i];
        if (silentMs !== undefined && silentMs !== HEARD_NEVER && this.store.heardElsewhere(candidates[i]!.entry, report.atMs - silentMs)) heardElsewhere++;
      }
    }
    // A peer that could not be reached at all (notSent) has nothing to tell: its clients, if any, are on the other
    // side of a cut or it is dead. A peer of an older version (unimplemented) cannot tell. Only a peer that got the
    // question and gave no answer holds the round back.
    const unanswered = required.filter((_peer, i) => {
      const result = results[i];
      return result?.status === 'rejected' && !(result.reason instanceof DistroCallError && (result.reason.notSent || result.reason.unimplemented));
    });
    if (unanswered.length === 0) {
      this.deferredSinceMs = 0;
      this.deferralExpired = false;
    } else if (this.holdExpiry(unanswered, candidates.length)) return;
    // Coverage (the takeover grace may end early) only when every member live in this view answered (one that could
    // not be reached, or of an older version, may hold beats nobody else heard and is not seen down yet); the floor is
    // taken now, so a peer seen down during the round moves it to its going down.
    const covered = results.every((result) => result.status === 'fulfilled');
    const outcome = this.store.expireConfirmed(candidates, owns, covered ? this.coverageFloorMs() : NOT_COVERED);
    this.countExpiry(outcome);
    const spared = candidates.length - outcome.unhealthy - outcome.removed;
    this.count('expiry_spared', spared);
    // Rare when members agree (the member that heard a client is then the one asking): a sign that they do not. It
    // lasts as long as a partition or a view change does, and rounds run every distroExpiryTickMs: one line per
    // disagreementLogIntervalMs, with the rounds it stands for.
    if (spared > 0 && heardElsewhere > 0) {
      this.disagreements.rounds++;
      this.disagreements.spared += spared;
      const now = this.now();
      if (now - this.disagreements.loggedAtMs >= disagreementLogIntervalMs) {
        this.options.logger.warn({ candidates: candidates.length, spared, heardElsewhere, rounds: this.disagreements.rounds, sparedInRounds: this.disagreements.spared },
          'expiry spared instances whose clients a peer heard: members disagree on who is responsible');
        this.disagreements = { loggedAtMs: now, rounds: 0, spared: 0 };
      }
    }
  }

  /**
   * holdExpiry says whether a round some live peers did not answer waits (true) or acts on the answers it has. It
   * waits at most one detection window (distroHeartbeatMissesMax heartbeats, each up to its deadline): a peer that
   * is really gone is marked down by then, and one that answers heartbeats but never this question (a fault of its
   * own) must not hold expiry back for ever.
   */
  private holdExpiry(unanswered: readonly string[], candidates: number): boolean {
    const now = this.now();
    const limits = this.limits;
    const windowMs = limits.distroHeartbeatMissesMax * (limits.distroHeartbeatIntervalMs + limits.distroPeerTimeoutMs);
    // A deferral long after the last one (rounds answered, or no candidate since) starts a new window.
    if (this.deferredSinceMs === 0 || now - this.lastDeferredMs > windowMs) {
      this.deferredSinceMs = now;
      this.deferralExpired = false;
      this.options.logger.warn({ peers: unanswered, candidates }, 'expiry waits: a live peer did not say when it last heard from the clients');
    }
    this.lastDeferredMs = now;
    if (now - this.deferredSinceMs < windowMs) {
      this.count('expiry_deferred', candidates);
      return true;
    }
    if (!this.deferralExpired) {
      this.deferralExpired = true;
      this.options.logger.warn({ peers: unanswered, candidates, waitedMs: now - this.deferredSinceMs }, 'expiry acts without the answers of some live peers: they did not answer for a detection window');
    }
    return false;
  }

  private countExpiry(outcome: ExpiryOutcome): void {
    this.count('expired_unhealthy', outcome.unhealthy);
    this.count('expired_removed', outcome.removed);
  }

  /** answerLastBeats says how long ago this member last heard from each instance's client (HEARD_NEVER: never). */
  private answerLastBeats(query: readonly LastBeatsQuery[]): number[] {
    const answer: number[] = [];
    for (const item of query) {
      const serviceId = serviceIdOfKey(item.key);
      for (const address of item.instances) answer.push(this.store.silenceHeardMs(serviceId, entryIdOf(address.cluster, address.ip, address.port)));
    }
    return answer;
  }

  // --- Sessions ---

  /**
   * openSession starts a session; writes with its id as owner bind instances to it. Beyond distroSessionsMax open
   * sessions it refuses with CAIRN_SESSIONS_EXCEEDED (retryable: sessions end, and other members have room), and
   * once the member is shutting down with CAIRN_SHUTTING_DOWN.
   */
  openSession(): EphemeralSession {
    if (this.sessionsEnded) throw shuttingDown();
    if (this.sessions.size >= this.limits.distroSessionsMax) {
      throw new CairnError('CAIRN_SESSIONS_EXCEEDED', `this member holds ${this.sessions.size} sessions (limit ${this.limits.distroSessionsMax}); retry later or at another member`,
        { details: { limit: this.limits.distroSessionsMax } });
    }
    let settleClosed: (shutDown: boolean) => void = () => undefined;
    const closedPromise = new Promise<void>((resolve, reject) => {
      settleClosed = (shutDown) => (shutDown ? reject(shuttingDown()) : resolve());
    });
    // A shutdown rejects it; whoever waits on it hears why, and nobody waiting is no unhandled rejection.
    closedPromise.catch(() => undefined);
    const state: SessionState = {
      id: `${this.options.self}/${randomUUID()}`, keys: new Map(), writes: new Set(), lastAliveMs: this.now(), closed: false, shutDown: false,
      settleClosed, closedPromise, closing: null,
    };
    this.sessions.set(state.id, state);
    return Object.freeze({
      id: state.id,
      closed: closedPromise,
      keepAlive: () => {
        if (!state.closed) state.lastAliveMs = this.now();
      },
      close: () => this.closeSession(state),
    });
  }

  private openSessionOf(id: string): SessionState {
    const session = this.sessions.get(id);
    if (session === undefined || session.closed) throw sessionClosed(id);
    session.lastAliveMs = this.now();
    return session;
  }

  private bindToSession(session: SessionState, global: string, key: InstanceKey, fields: ForwardedFields, lineage: Version | null): void {
    const previous = this.sessionOfEntry.get(global);
    if (previous !== undefined && previous !== session) previous.keys.delete(global);
    session.keys.set(global, { key, fields, repair: null, leaving: false, lineage });
    this.sessionOfEntry.set(global, session);
  }

  private unbindFromSession(global: string): void {
    const session = this.sessionOfEntry.get(global);
    if (session === undefined) return;
    session.keys.delete(global);
    this.sessionOfEntry.delete(global);
  }

  /**
   * closeSession ends a session and deregisters its instances everywhere (idempotent). It resolves once they are
   * removed, those of the registrations and repairs still on their way at the close included (registerThrough,
   * repairSession): each of those removes its own when its answer comes back.
   */
  private closeSession(session: SessionState): Promise<void> {
    session.closing ??= (async () => {
      session.closed = true;
      this.sessions.delete(session.id);
      session.settleClosed(false);
      const keys = [...session.keys.values()].map((binding) => ({ key: binding.key, lineage: binding.lineage }));
      for (const { key } of keys) {
        const global = globalEntryId(key);
        if (this.sessionOfEntry.get(global) === session) this.sessionOfEntry.delete(global);
      }
      session.keys.clear();
      await this.deregisterClosed(session.id, keys);
      await Promise.allSettled([...session.writes]);
    })();
    return session.closing;
  }

  /**
   * deregisterClosed removes a closed session's instances at their responsible members, each only while the session
   * still owns it: the client may have registered it again through another session (its redo after this stream broke,
   * or a second session), which must keep it (jepsen-like D5). A route already retries once at the recomputed member;
   * in a partition both can be cut off (views lag the cut by up to 3 heartbeats), so what failed is tried again every
   * distroHeartbeatIntervalMs, by when the failed targets are down in this view and the route finds a reachable
   * member, for at most removeAfterMs (by then the responsible member has expired them anyway). jepsen-like D5 16001:
   * with one retry, a session that timed out during a partition left its instance listed 30 s more.
   */
  private async deregisterClosed(sessionId: string, keys: readonly ClosingKey[]): Promise<void> {
    const attemptsMax = Math.max(1, Math.ceil(this.limits.removeAfterMs / this.limits.distroHeartbeatIntervalMs));
    let pending = keys;
    const kept = new Set<string>();
    let removedCount = 0;
    let behindRounds = 0;
    for (let attempt = 1; pending.length > 0; attempt++) {
      const failed: ClosingKey[] = [];
      let lastError = '';
      let behind = false;
      await Promise.all(pending.map(async (closing) => {
        const { key, lineage } = closing;
        const name = `${key.service}/${key.ip}:${key.port}`;
        try {
          const response = await this.route(key, { type: 'deregister', key, owner: sessionId });
          // An error answer (a batch refused past its fence, the responsible member failing) removed nothing: try
          // again, as after a failed call. Until 2026-11-23 it counted as done, and the instance stayed with no session
          // to end it (jepsen-like D6 seed 49203: a cancelled session's removal refused past the fence).
          if (!response.ok) {
            failed.push(closing);
            lastError = `${name}: ${response.code}: ${response.message}`;
            return;
          }
          if (response.type !== 'removed' || response.removed) {
            if (response.type === 'removed') removedCount++;
            kept.delete(name);
            return;
          }
          // Removed nothing. A copy older than this session's registration means the member that answered has not
          // received that registration yet (it was applied elsewhere, during a partition or a pause): the close tries
          // again once the copies have had time to converge, or the registration would be left with no session to
          // end it (jepsen-like D6 seed 49203). A newer copy (the client's redo) or none ends the close for this key.
          if (lineage !== null && response.heldLineage !== undefined && compareVersions(response.heldLineage, lineage) < 0) {
            behind = true;
            failed.push(closing);
            lastError = `${name}: the responsible member holds an older registration than this session's`;
            return;
          }
          if (kept.size < closeKeptLoggedMax) kept.add(name);
        } catch (error) {
          failed.push(closing);
          lastError = error instanceof Error ? error.message : String(error);
        }
      }));
      pending = failed;
      if (pending.length === 0) {
        // One line per close: what it removed, what it left, and how many rounds met a member behind (the trail of
        // jepsen-like D6 seed 49203, where a dead client's instance outlived every session that held it).
        this.options.logger.info({ session: sessionId, instances: keys.length, removed: removedCount, kept: [...kept], behindRounds, attempts: attempt },
          'a closed session\'s instances were deregistered');
        return;
      }
      if (behind) {
        behindRounds++;
        if (behindRounds === 1) this.options.logger.info({ session: sessionId, instances: pending.length }, 'a closed session\'s removal reached a member still behind its registration; trying again');
      }
      if (attempt >= attemptsMax || this.closed) {
        this.options.logger.warn({ session: sessionId, instances: pending.length, attempts: attempt, err: lastError },
          'deregistering a closed session\'s instances failed; their responsible members expire them');
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, this.limits.distroHeartbeatIntervalMs));
    }
  }

  /** sessionRound closes silent sessions and renews the instances of the others at their responsible members. */
  private sessionRound(): void {
    const now = this.now();
    const remote = new Map<string, { session: SessionState; binding: SessionBinding }[]>();
    for (const session of [...this.sessions.values()]) {
      if (now - session.lastAliveMs > this.limits.distroSessionTimeoutMs) {
        this.options.logger.info({ session: session.id }, 'session timed out; removing its instances');
        void this.closeSession(session);
        continue;
      }
      for (const binding of session.keys.values()) {
        const key = binding.key;
        const serviceId = serviceIdOfKey(key);
        const target = this.responsibleFor(serviceId);
        if (target === this.options.self) {
          if (this.store.beat(serviceId, entryIdOf(key.cluster, key.ip, key.port), true) === undefined) this.repairSession(session, binding);
          continue;
        }
        let bindings = remote.get(target);
        if (bindings === undefined) remote.set(target, (bindings = []));
        bindings.push({ session, binding });
      }
    }
    const transport = this.transport;
    if (transport === null) return;
    for (const [target, bindings] of remote) {
      for (let start = 0; start < bindings.length; start += this.limits.distroMessageEntriesMax) {
        const sent = bindings.slice(start, start + this.limits.distroMessageEntriesMax);
        transport.forward(target, { type: 'renew', keys: sent.map((item) => item.binding.key) }).then((response) => {
          this.count('forward_ok');
          if (!response.ok || response.type !== 'renewed') return;
          for (const position of response.missing) {
            const item = sent[position];
            if (item !== undefined) this.repairSession(item.session, item.binding);
          }
        }, () => this.count('forward_failed'));
      }
    }
  }

  /**
   * repairSession registers a session's instance again where a renewal found it missing: a removal that was stale
   * won at the responsible member (a closing session's, applied where a partition kept the client's redo away; or
   * the closing of the owner of an instance another session still holds). Nothing is repaired for a session that
   * closed, an instance it no longer keeps (registered since through another session, deregistered by the client),
   * or one whose deregistration this member is routing; a repair already in flight is not started twice.
   */
  private repairSession(session: SessionState, binding: SessionBinding): void {
    const global = globalEntryId(binding.key);
    if (session.closed || session.keys.get(global) !== binding || binding.leaving || binding.repair !== null) return;
    this.count('session_reregistered');
    this.options.logger.info({ session: session.id, service: binding.key.service, ip: binding.key.ip, port: binding.key.port },
      'a session\'s instance was missing at its responsible member; registering it again');
    const request: ForwardRequest = { type: 'register', key: binding.key, fields: binding.fields, owner: session.id };
    const repair = this.route(binding.key, request).then(
      async (response) => {
        if (!response.ok || response.type !== 'instance') return;
        // The close must end the repair's registration, a lineage of its own.
        const lineage = lineageOfAnswer(response.entry);
        binding.lineage = lineage;
        // A close meanwhile may have reached the responsible member first: end the repair's registration again, as
        // registerThrough does for a session's registration.
        if (session.closed && !session.shutDown) await this.deregisterClosed(session.id, [{ key: binding.key, lineage }]);
      },
      (error: unknown) => {
        // The next renewal finds it missing again and retries.
        this.options.logger.warn({ session: session.id, service: binding.key.service, err: error instanceof Error ? error.message : String(error) },
          'registering a session\'s missing instance again failed');
      },
    );
    binding.repair = this.trackSessionWrite(session, repair).finally(() => {
      binding.repair = null;
    });
  }
}

type InstanceFieldsMetadata = Readonly<Record<string, string>>;

function globalEntryId(key: InstanceKey): string {
  return `${serviceIdOfKey(key)}\u0000${entryIdOf(key.cluster, key.ip, key.port)}`;
}

function keyOf(key: InstanceKey): InstanceKey {
  return { namespace: key.namespace, group: key.group, service: key.service, cluster: key.cluster, ip: key.ip, port: key.port };
}

/** noVersion stands in for the version of an entry that travels as a request's payload, not as a copy to merge. */
const noVersion: Version = Object.freeze({ wallMs: 0, counter: 0, member: '' });

function entryOfInstance(instance: Instance, owner: string): EntryData {
  return {
    cluster: instance.cluster, ip: instance.ip, port: instance.port, version: noVersion, lineage: noVersion, removed: false,
    weight: instance.weight, enabled: instance.enabled, healthy: instance.healthy, metadata: instance.metadata, owner,
  };
}

function instanceOf(key: InstanceKey, entry: EntryData): Instance {
  return Object.freeze({
    ip: entry.ip, port: entry.port, cluster: entry.cluster, weight: entry.weight, enabled: entry.enabled, healthy: entry.healthy,
    ephemeral: true, metadata: entry.metadata, instanceId: instanceId(entry.ip, entry.port, entry.cluster, key.group, key.service),
  });
}

function errorOf(response: Extract<ForwardResponse, { ok: false }>): CairnError {
  return new CairnError(isCairnErrorCode(response.code) ? response.code : 'CAIRN_INTERNAL', response.message);
}
