// Replica: the driver around the pure Raft core. It owns time (a tick timer), the disk (RaftStorage), the network
// (PeerTransport) and the state machine, and runs the Ready loop of docs/raft.md:
//
//   ready() -> persist (one batch, fsync'd when needed) -> send -> apply (one atomic batch with the applied index)
//           -> settle proposals and reads -> advance() -> maybe snapshot
//
// Group commit falls out of the loop: while one Ready is being fsynced, proposals keep arriving and are appended
// to the core's in-memory log; the next Ready carries them all in one write and one fsync.
import { assert } from '../assert.ts';
import { CairnError, cairnErrorFromRaft, isCairnErrorCode } from '../errors.ts';
import { Prng } from '../raft/prng.ts';
import { RaftCore, type RaftStatus } from '../raft/raft-core.ts';
import type { Entry, HardState, Membership, Message, NodeId, RaftConfig, Ready, Snapshot } from '../raft/types.ts';
import type { CommandProposer, ProposeOptions } from './proposer.ts';
import type { ReplicatedStateMachine, BatchWrite, ApplyBatch } from './state-machine.ts';
import { digestKeyspace, type StateDigest } from './state-digest.ts';
import { CheckpointWatch, type CheckpointMetrics, type CheckpointReport } from './checkpoints.ts';
import type { AppliedWrite, RaftStorage } from './storage.ts';
import { crc32c } from './codec.ts';
import type { ForwardRequest, ForwardResponse, PeerTransport } from './transport.ts';
import { liveBackup, type LiveImage } from './backup.ts';
import { monotonicMs } from '../clock.ts';
import { limits } from '../limits.ts';

/** ReplicaLogger is the subset of pino the driver uses. */
export interface ReplicaLogger {
  info(object: object, message: string): void;
  warn(object: object, message: string): void;
  error(object: object, message: string): void;
}

/** ReplicaMetrics receives the driver's measurements; the composition root maps them to Prometheus. */
export interface ReplicaMetrics extends Partial<CheckpointMetrics> {
  fsyncSeconds(seconds: number): void;
  readyBatch(entries: number, committed: number, messages: number): void;
  proposal(outcome: 'ok' | 'refused' | 'dropped' | 'unknown' | 'forwarded' | 'no_leader'): void;
  /**
   * snapshot counts the log's compactions, the images this member encoded for a follower behind its compacted log,
   * and the snapshots it installed from a leader (optional: the tests' drivers need not count).
   */
  snapshot?(event: SnapshotEvent): void;
  /**
   * peerContactRefused counts messages dropped because their sender was new and contacts could not be recorded:
   * limits.peerContactsMax peers recorded already ('full'), or limits.peerContactSendersPendingMax first contacts
   * being recorded at once ('busy').
   */
  peerContactRefused?(reason: 'full' | 'busy'): void;
}

/** SnapshotEvent is what cairn_raft_snapshots_total counts. */
export type SnapshotEvent = 'compacted' | 'image_encoded' | 'installed';

/** checkpointPollMsDefault is how often a member compares its checkpoint digests with its peers' by default. */
export const checkpointPollMsDefault = 10_000;

/** ReplicaOptions configure one driver. Limits come from src/limits.ts through the composition root (absent optional ones: its values). */
export interface ReplicaOptions {
  readonly id: NodeId;
  readonly raft: Omit<RaftConfig, 'id' | 'seed'>;
  readonly seed: number;
  readonly tickMs: number;
  /** requestTimeoutMs bounds every client wait: no quorum is reported within it (DESIGN.md: 5 s). */
  readonly requestTimeoutMs: number;
  /** proposalsPendingMax bounds the proposals waiting to commit on this member (back-pressure beyond it). */
  readonly proposalsPendingMax: number;
  /** snapshotEntries: the log is compacted (the stored keyspace becomes the snapshot) every this many applied entries. */
  readonly snapshotEntries: number;
  /**
   * snapshotCatchUpEntries: how many entries before the applied index a compaction keeps in the log, so that a
   * follower that far behind goes on from the log rather than from an image (etcd's SnapshotCatchUpEntries); absent:
   * catchUpTrail(snapshotEntries). The CLI bounds it (limits.snapshotCatchUpEntriesMax): the kept entries stay in memory.
   */
  readonly snapshotCatchUpEntries?: number;
  /** peerContactsMax bounds the peers whose contact is recorded (absent: limits.peerContactsMax). */
  readonly peerContactsMax?: number;
  /** peerContactSendersPendingMax bounds first contacts being recorded at once (absent: limits.peerContactSendersPendingMax). */
  readonly peerContactSendersPendingMax?: number;
  /**
   * checkpointEvery: the stored keyspace is digested at every applied index that is a multiple of it, and compared
   * with the peers' digests at the same indexes (checkpoints.ts); 0 or absent: no checkpoints.
   */
  readonly checkpointEvery?: number;
  /** checkpointPollMs: how often the peers' checkpoint digests are fetched and compared (checkpointPollMsDefault). */
  readonly checkpointPollMs?: number;
  readonly storage: RaftStorage;
  readonly transport: PeerTransport;
  readonly stateMachine: ReplicatedStateMachine;
  readonly logger: ReplicaLogger;
  readonly metrics?: ReplicaMetrics;
  /** onFatal is called when the member must stop (a failed write, corruption); it should exit the process. */
  readonly onFatal: (error: Error) => void;
  /**
   * unsafe plants known bugs for the jepsen-like suite's positive controls, never for production: `localReads`
   * answers linearizable reads from local state without ReadIndex; `noFsync` never fsyncs the log.
   */
  readonly unsafe?: { readonly localReads?: boolean; readonly noFsync?: boolean };
}

/** PendingProposal is a proposal in the local log, waiting for the entry at (index, term) to apply. */
interface PendingProposal {
  readonly index: number;
  readonly term: number;
  readonly resolve: (result: Uint8Array) => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
}

/**
 * QueuedProposal is a write waiting for the next Ready, where every write queued since the last one joins the log in
 * one proposal (proposeQueued); its timer runs from the call, so its deadline covers the wait.
 */
interface QueuedProposal {
  readonly command: Uint8Array;
  readonly deadline: number;
  readonly resolve: (result: Uint8Array) => void;
  readonly reject: (error: Error) => void;
  timer: NodeJS.Timeout | null;
}

/**
 * NotProposed is the refusal of a queued write that never reached the log because this member stopped being the
 * leader before the write's Ready: propose() sends it on to the new leader, onForward names the leader.
 */
class NotProposed extends CairnError {}

/** PendingRead is a linearizable read waiting for its ReadState and then for the state machine to catch up. */
interface PendingRead {
  index: number | null;
  readonly resolve: () => void;
  readonly retry: () => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
}


/**
 * forwardAttemptsMax bounds how often one client request is retried across leader changes, at least: a write is
 * retried until its deadline, one attempt per tick at most while its leader is unreachable (propose), so the bound is
 * also the deadline over the tick. Ten attempts a tick apart gave up ~1 s after a leader died, while the followers
 * still named it and before the election that follows (an audit: `registerInstance` failed on every member).
 */
const forwardAttemptsMax = 10;

/**
 * leaderlessRefuseElections: a member that had a leader and has had none for this many election timeouts refuses
 * writes and linearizable reads at once (CAIRN_NO_QUORUM) instead of waiting out each request's deadline: a member
 * cut off from its peers made every write wait the whole 5 s, the same as the Nacos clients' own timeout, which then
 * gave up first without the answer. Three election timeouts cover an election and a split vote after it.
 */
const leaderlessRefuseElections = 3;

/** membershipListenersMax bounds the membership listeners (the member registers one: its AP path). */
const membershipListenersMax = 8;
/** betweenReadyWaitersMax bounds the callers waiting for the end of a Ready (backups: the transport serves one at a time). */
const betweenReadyWaitersMax = 16;
/** checksumSliceBytes is how much of a backup image is checksummed between two looks at the event loop. */
const checksumSliceBytes = 1024 * 1024;

/**
 * deferredWritesMax bounds the state-machine writes held for a later storage write (defer); a Ready that would pass
 * it writes at once. Under load every Ready appends and nothing waits, so this matters only for a burst of commits.
 */
const deferredWritesMax = 4096;

/**
 * snapshotSpreadMax: a member's compaction threshold is scaled by a factor drawn in [1, 1 + snapshotSpreadMax) each
 * time, so a group's members compact (and flush LevelDB's memtable) at different indexes (see shouldCompact).
 */
const snapshotSpreadMax = 0.5;

/**
 * imageHoldEntriesFactor: while a follower installs an image, the log after it is kept for up to this many times
 * snapshotEntries entries (10 x the default 10 000: etcd's default snapshot count), so that the follower can go on
 * from the log once it has it.
 */
const imageHoldEntriesFactor = 10;

/**
 * catchUpShare: a compaction keeps this share of snapshotEntries of the log before the applied index (5 000 entries
 * at the default 10 000, as many as etcd's SnapshotCatchUpEntries). Without it a member compacted to its applied
 * index, so a follower only a few entries behind (slow, just restarted, or facing a new leader that compacted while
 * it was a follower) was sent the whole registry as an image, which at 1M instances is a 335 MB transfer and a
 * minute of catch-up (docs/operations.md), where the log held what it needed.
 */
const catchUpShare = 0.5;

/**
 * catchUpEntriesMax caps the trail, so that a large --snapshot-entries (up to 1 000 000) does not keep half a million
 * more entries in memory: past it a follower that far behind is better served by an image anyway.
 */
const catchUpEntriesMax = 10_000;

/** catchUpTrail is how many entries before the applied index a compaction keeps in the log, unless configured. */
export function catchUpTrail(snapshotEntries: number): number {
  return Math.min(catchUpEntriesMax, Math.floor(snapshotEntries * catchUpShare));
}

/** snapshotSliceMs is how long the background encoding of a snapshot image works before it lets other work run. */
const snapshotSliceMs = 4;

/** minIndex is the lower of two optional indexes (null when both are). */
function minIndex(a: number | null, b: number | null): number | null {
  if (a === null) return b;
  return b === null ? a : Math.min(a, b);
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Replica runs one member's Raft group and serves as its CommandProposer. */
export class Replica implements CommandProposer {
  private readonly core: RaftCore;
  private readonly options: ReplicaOptions;
  private readonly proposals = new Map<number, PendingProposal>();
  /** queued holds the writes since the last Ready, in arrival order (with `proposals`, at most proposalsPendingMax). */
  private queued: QueuedProposal[] = [];
  private readonly reads = new Map<string, PendingRead>();
  private readonly leaderWaiters = new Set<() => void>();
  /** leaderlessSinceMs is when this member lost the leader it had (monotonic), null while it knows one or never had one. */
  private leaderlessSinceMs: number | null = null;
  private everHadLeader = false;
  private tickTimer: NodeJS.Timeout | null = null;
  private processing = false;
  private readonly betweenReadyWaiters: Array<() => void> = [];
  private scheduled = false;
  private closed = false;
  /** digesting is the state digest under way (stateDigest), shared by the callers that ask meanwhile. */
  private digesting: Promise<StateDigest> | null = null;
  private failed = false;
  private readSequence = 0;
  /** appliedSinceSnapshot counts the entries applied since the last compaction (or installed snapshot). */
  private appliedSinceSnapshot = 0;
  /** compacting is true while a compaction of the log is being written (compactLog). */
  private compacting = false;
  /**
   * encodingImageIndex is the applied index of the state machine's image being encoded in the background for a
   * follower that needs a snapshot (offerSnapshotImage), else null: the log keeps no image, the stored keyspace is
   * the snapshot.
   */
  private encodingImageIndex: number | null = null;
  private membersKey = '';
  /** syncedMembership and syncedLeader are what syncPeers last worked from. */
  private syncedMembership: Membership | null = null;
  private syncedLeader: NodeId | null = null;
  /** configurationKey is the last configuration (voters and learners) announced to the membership listeners. */
  private configurationKey: string | null = null;
  /** membershipListeners hear the configuration's members (the AP path follows them); a handful at most. */
  private readonly membershipListeners = new Set<(members: readonly NodeId[]) => void>();
  /**
   * contacted are the peers whose contact is durably recorded; messages from others wait for the record. Bounded by
   * what storage holds: at most contactsMax recorded (a store written before that bound may hold more, found one by
   * one as 'known').
   */
  private readonly contacted = new Set<NodeId>();
  /** awaitingContact holds the messages of senders whose first contact is being recorded (at most contactSendersPendingMax). */
  private readonly awaitingContact = new Map<NodeId, Message[]>();
  private readonly contactsMax: number;
  private readonly contactSendersPendingMax: number;
  /** contactsRefused counts the messages dropped by refuseContact (its log lines are spaced by powers of two). */
  private contactsRefused = 0;
  /**
   * deferred is what Readys that needed no fsync (a commit index moved, entries applied, nothing appended) left to
   * write: the latest hard state and the applied batches with their index. The stored keyspace is a cache of the log
   * (a restart re-applies from the stored applied index), so these ride along with the next write instead of
   * costing a storage write of their own; deferTimer bounds how long they wait (see writeDeferred).
   */
  private deferred: { hardState: HardState | null; writes: BatchWrite[]; index: number } | null = null;
  private deferTimer: NodeJS.Timeout | null = null;
  /**
   * snapshotSpread scales this member's compaction threshold, drawn anew in [1, 1 + snapshotSpreadMax) for each
   * compaction from the member's seed, so the members of a group do not all compact at the same index.
   */
  private snapshotSpread: number;
  private readonly random: Prng;
  private flushDeferred = false;
  /** checkpoints takes this member's checkpoint digests and compares them with the peers' (checkpoints.ts). */
  private readonly checkpoints: CheckpointWatch;
  /** catchUpEntries is the trail a compaction keeps before the applied index (snapshotCatchUpEntries). */
  private readonly catchUpEntries: number;

  private constructor(options: ReplicaOptions, core: RaftCore) {
    this.options = options;
    this.core = core;
    const configured = options.snapshotCatchUpEntries;
    assert(configured === undefined || (Number.isSafeInteger(configured) && configured >= 0), `snapshotCatchUpEntries ${String(configured)} is not a non-negative integer`);
    this.catchUpEntries = configured ?? catchUpTrail(options.snapshotEntries);
    this.contactsMax = options.peerContactsMax ?? limits.peerContactsMax;
    this.contactSendersPendingMax = options.peerContactSendersPendingMax ?? limits.peerContactSendersPendingMax;
    assert(Number.isSafeInteger(this.contactsMax) && this.contactsMax >= 1, `peerContactsMax ${this.contactsMax} is not a positive integer`);
    assert(Number.isSafeInteger(this.contactSendersPendingMax) && this.contactSendersPendingMax >= 1, `peerContactSendersPendingMax ${this.contactSendersPendingMax} is not a positive integer`);
    const metrics = options.metrics;
    this.checkpoints = new CheckpointWatch({
      self: options.id, every: options.checkpointEvery ?? 0, pollMs: options.checkpointPollMs ?? checkpointPollMsDefault,
      storage: options.storage, transport: options.transport, logger: options.logger,
      peers: () => {
        const { voters, learners } = this.core.membership;
        return [...voters, ...learners];
      },
      ...(metrics === undefined ? {} : {
        metrics: {
          checkpoint: (outcome) => metrics.checkpoint?.(outcome),
          checkpointComparison: (outcome) => metrics.checkpointComparison?.(outcome),
        },
      }),
    });
    // Its own stream: the core draws its election timeouts from the same seed.
    this.random = new Prng(options.seed ^ 0x5eed_5a17);
    this.snapshotSpread = 1 + snapshotSpreadMax * this.random.nextFloat();
  }

  /** open loads the member's state from storage and starts the driver; the storage must be initialised. */
  static async open(options: ReplicaOptions): Promise<Replica> {
    const stored = await options.storage.load();
    if (stored === null) throw new CairnError('CAIRN_MEMBER_STATE_MISSING', 'the storage was never initialised');
    let applied = stored.applied;
    if (applied < stored.snapshot.index) {
      // The member crashed after persisting a snapshot from its leader but before restoring it: the entries the
      // snapshot covers are gone from the log, so the state machine must be rebuilt from the snapshot now. (A
      // compaction of its own log writes the keyspace durably first; the storage refuses a store where it did not.)
      if (stored.snapshotData === null) {
        throw new CairnError('CAIRN_STORAGE_CORRUPT', `the stored keyspace (applied ${applied}) is behind the snapshot at ${stored.snapshot.index} it stands for`);
      }
      const batch = new CollectingBatch();
      options.stateMachine.restore(stored.snapshotData, batch);
      await options.storage.writeApplied(batch.writes, stored.snapshot.index, true);
      applied = stored.snapshot.index;
    } else {
      await options.stateMachine.load(options.storage.keyspace());
    }
    const core = new RaftCore(
      { ...options.raft, id: options.id, seed: options.seed },
      { hardState: stored.hardState, snapshot: stored.snapshot, entries: stored.entries, applied },
    );
    const replica = new Replica(options, core);
    for (const peer of await options.storage.peerContacts(replica.contactsMax)) replica.contacted.add(peer);
    await replica.start();
    return replica;
  }

  private async start(): Promise<void> {
    const transport = this.options.transport;
    this.syncPeers();
    await transport.start({
      onMessage: (message) => this.onMessage(message),
      onForward: (from, request) => this.onForward(from, request),
      onBackup: async (requester) => {
        this.options.logger.info({ requester }, 'backup requested');
        // Linearizable: the image holds every write acknowledged before the request, wherever it was acknowledged.
        await this.linearizableBarrier();
        return liveBackup(await this.liveImage());
      },
      onUnreachable: (peer) => {
        this.core.reportUnreachable(peer);
        this.schedule();
      },
      onCheckpoints: () => this.checkpoints.answer(),
    });
    this.tickTimer = setInterval(() => this.onTick(), this.options.tickMs);
    this.checkpoints.start();
    // A single-voter group elects itself at once instead of waiting an election timeout.
    if (this.core.membership.voters.length === 1 && this.core.membership.voters[0] === this.options.id) this.core.campaign();
    this.schedule();
  }

  // ---------------------------------------------------------------------------------------------------------
  // CommandProposer.

  /** propose commits `command` through the log, forwarding it to the leader from a follower. */
  async propose(command: Uint8Array, options: ProposeOptions = {}): Promise<Uint8Array> {
    const deadline = monotonicMs() + (options.timeoutMs ?? this.options.requestTimeoutMs);
    this.assertOpen();
    let lastError: CairnError | null = null;
    const attemptsMax = Math.max(forwardAttemptsMax, Math.ceil((deadline - monotonicMs()) / this.options.tickMs) + 2);
    for (let attempt = 0; attempt < attemptsMax && monotonicMs() < deadline; attempt++) {
      if (this.core.role === 'leader') {
        try {
          return await this.proposeLocally(command, deadline);
        } catch (error) {
          // Leadership moved while the write waited for its Ready: it never reached this log; try the new leader.
          if (!(error instanceof NotProposed) || monotonicMs() >= deadline) throw error;
          lastError = error;
          // Still leading (handing leadership over): wait for the new leader, or a tick, before trying again.
          if (this.core.role === 'leader') await this.waitForLeaderNews(Math.min(deadline, monotonicMs() + this.options.tickMs));
          continue;
        }
      }
      const leader = this.core.leader ?? (await this.waitForLeader(deadline).catch((error: unknown) => {
        // Refused here, before any leader saw it: no member would count it otherwise.
        this.options.metrics?.proposal('no_leader');
        throw error;
      }));
      if (leader === this.options.id) continue;
      const response = await this.options.transport.forward(leader, { command, deadlineMs: Math.max(0, deadline - monotonicMs()) });
      this.options.metrics?.proposal('forwarded');
      if (response.ok) return response.result;
      lastError = errorFromForward(response);
      // Refusals that certainly did not reach a log (the target was not, or no longer, the leader) are retried
      // while the client still waits; anything else (dropped, unknown, invalid) goes back to the client.
      // A leader handing its leadership over refuses writes until the transfer ends: also certainly not written, and
      // the next leader is a tick or two away.
      const certainlyNotWritten = response.code === 'CAIRN_NOT_LEADER' || response.code === 'CAIRN_NO_LEADER' || response.code === 'CAIRN_TRANSFER_IN_PROGRESS';
      if (!certainlyNotWritten || monotonicMs() >= deadline) throw lastError;
      // The leader this member names did not take it (gone, or no longer leading): wait a tick, or less if a leader
      // is announced meanwhile, and try again until the deadline; the election after a leader's death takes longer
      // than the attempts a fixed count allowed.
      await this.waitForLeaderNews(Math.min(deadline, monotonicMs() + this.options.tickMs));
    }
    throw lastError ?? new CairnError('CAIRN_NO_LEADER', 'leadership kept moving while the write was forwarded');
  }

  /** linearizableBarrier waits until this member has applied everything committed before the call (thesis §6.4). */
  async linearizableBarrier(options: ProposeOptions = {}): Promise<void> {
    const deadline = monotonicMs() + (options.timeoutMs ?? this.options.requestTimeoutMs);
    this.assertOpen();
    if (this.options.unsafe?.localReads === true) return;
    // One attempt waits at most two election timeouts: a read lost with a dead leader is asked again of the next.
    const attemptMs = this.options.tickMs * this.options.raft.electionTicks * 2;
    for (let attempt = 0; attempt < forwardAttemptsMax && monotonicMs() < deadline; attempt++) {
      const context = `${this.options.id}/${++this.readSequence}`;
      const result = this.core.readIndex(context);
      if (!result.ok) {
        if (result.code === 'too-many-pending-reads') throw cairnErrorFromRaft(result.code, result.leaderHint);
        await this.waitForLeader(deadline);
        continue;
      }
      this.schedule();
      if (await this.waitForRead(context, Math.min(deadline, monotonicMs() + attemptMs))) return;
    }
    throw new CairnError('CAIRN_NO_QUORUM', 'no majority confirmed the leader in time for a linearizable read');
  }

  /**
   * proposeLocally queues a write for the next Ready (group commit). The writes of one Ready join the log in one
   * proposal, so each follower gets them in one AppendRequest and answers once, and the commit that follows is one
   * notice per follower: proposed one by one, a 64-write Ready sent 64 appends to each follower, took 64
   * acknowledgements from each and sent 64 commit notices back (bench/README.md, session 24).
   */
  private proposeLocally(command: Uint8Array, deadline: number): Promise<Uint8Array> {
    if (this.proposals.size + this.queued.length >= this.options.proposalsPendingMax) {
      this.options.metrics?.proposal('refused');
      return Promise.reject(new CairnError('CAIRN_UNCOMMITTED_BYTES_EXCEEDED', 'too many writes are waiting to commit'));
    }
    return new Promise<Uint8Array>((resolve, reject) => {
      const queued: QueuedProposal = { command, deadline, resolve, reject, timer: null };
      queued.timer = setTimeout(() => {
        // Still queued at its deadline (the Ready before it never finished): it never reached the log.
        const at = this.queued.indexOf(queued);
        if (at < 0) return;
        this.queued.splice(at, 1);
        this.options.metrics?.proposal('refused');
        reject(new CairnError('CAIRN_PROPOSAL_DROPPED', 'the write waited out its deadline before this member could append it to its log; it was not written'));
      }, Math.max(1, deadline - monotonicMs()));
      this.queued.push(queued);
      this.schedule();
    });
  }

  /**
   * proposeQueued proposes every queued write as one batch of entries (called before each Ready is taken). When the
   * core refuses the batch for its size (one entry too large, or the uncommitted bytes), each write is proposed on
   * its own, so that each gets its own answer; a refusal for leadership refuses them all.
   */
  private proposeQueued(): void {
    if (this.queued.length === 0) return;
    const batch = this.queued;
    this.queued = [];
    const result = this.core.propose(batch.map((queued) => queued.command));
    if (result.ok) {
      for (let i = 0; i < batch.length; i++) this.track(batch[i] as QueuedProposal, result.firstIndex + i, result.term);
      return;
    }
    const sizeRefusal = result.code === 'entry-too-large' || result.code === 'uncommitted-bytes-exceeded';
    for (const queued of batch) {
      const one = sizeRefusal && batch.length > 1 ? this.core.propose([queued.command]) : result;
      if (one.ok) {
        this.track(queued, one.firstIndex, one.term);
        continue;
      }
      if (queued.timer !== null) clearTimeout(queued.timer);
      this.options.metrics?.proposal('refused');
      const error = cairnErrorFromRaft(one.code, one.leaderHint);
      // Not in the log: not-leader, and a transfer under way (its target leads in a moment), are tried again at the
      // next leader while the write's deadline lasts.
      queued.reject(one.code === 'not-leader' || one.code === 'transfer-in-progress' ? new NotProposed(error.code, undefined, { details: { leader: one.leaderHint } }) : error);
    }
  }

  /** track waits for the entry a queued write became, until the write's deadline; then its outcome is unknown. */
  private track(queued: QueuedProposal, index: number, term: number): void {
    if (queued.timer !== null) clearTimeout(queued.timer);
    const { resolve, reject } = queued;
    const timer = setTimeout(() => {
      this.proposals.delete(index);
      this.options.metrics?.proposal('unknown');
      // The entry is in the leader's log: it may still commit. The client must not assume either outcome.
      reject(new CairnError('CAIRN_OUTCOME_UNKNOWN', `no majority acknowledged entry ${index} in time`));
    }, Math.max(1, queued.deadline - monotonicMs()));
    this.proposals.set(index, { index, term, resolve, reject, timer });
  }

  private waitForRead(context: string, deadline: number): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.reads.delete(context);
        resolve(false);
      }, Math.max(1, deadline - monotonicMs()));
      this.reads.set(context, { index: null, resolve: () => resolve(true), retry: () => resolve(false), reject, timer });
    });
  }

  /** waitForLeaderNews waits until a leader is announced or `until` (monotonic ms), whichever comes first. */
  private waitForLeaderNews(until: number): Promise<void> {
    const remaining = until - monotonicMs();
    if (remaining <= 0 || this.closed) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, remaining);
      const waiters = this.leaderWaiters;
      function done(): void {
        clearTimeout(timer);
        waiters.delete(done);
        resolve();
      }
      waiters.add(done);
    });
  }

  /**
   * waitForLeader resolves with the leader once one is known, or rejects with CAIRN_NO_QUORUM at the deadline, or
   * sooner once this member has been without the leader it had for leaderlessRefuseElections election timeouts.
   */
  private async waitForLeader(deadline: number): Promise<NodeId> {
    const refuseAfterMs = leaderlessRefuseElections * this.options.raft.electionTicks * this.options.tickMs;
    for (;;) {
      const leader = this.core.leader;
      if (leader !== null) return leader;
      const now = monotonicMs();
      const since = this.leaderlessSinceMs;
      if (since !== null && now - since >= refuseAfterMs) {
        throw new CairnError('CAIRN_NO_QUORUM', `this member has had no leader for ${Math.round(now - since)} ms: it cannot reach a majority (member ${this.options.id})`);
      }
      const until = since === null ? deadline : Math.min(deadline, since + refuseAfterMs);
      const remaining = until - now;
      if (remaining <= 0 || this.closed) {
        throw new CairnError('CAIRN_NO_QUORUM', `no leader was elected within the request timeout (member ${this.options.id})`);
      }
      await this.waitForLeaderNews(now + Math.min(remaining, this.options.tickMs * 2));
    }
  }

  // ---------------------------------------------------------------------------------------------------------
  // Peers.

  /**
   * onMessage steps a peer's message into the core. The first message ever from a peer waits until the contact is
   * durably recorded: from then on the peer may have counted on something this member said (a vote, an
   * acknowledgement), and a wiped member must be able to learn that (see RaftStorage.recordPeerContact).
   */
  private onMessage(message: Message): void {
    if (this.closed) return;
    if (this.contacted.has(message.from)) {
      this.core.step(message);
      this.schedule();
      return;
    }
    const waiting = this.awaitingContact.get(message.from);
    if (waiting !== undefined) {
      // Bounded: beyond it messages are dropped, which Raft tolerates.
      if (waiting.length < limits.peerContactBacklogMessagesMax) waiting.push(message);
      return;
    }
    // The peer port is not authenticated (DESIGN.md): a sender id is whatever a caller wrote, so new senders are
    // bounded twice, here (first contacts in flight) and in storage (contacts recorded). A real peer refused here
    // sends again; Raft tolerates the drop.
    if (this.awaitingContact.size >= this.contactSendersPendingMax) {
      this.refuseContact(message.from, 'busy', 1);
      return;
    }
    this.awaitingContact.set(message.from, [message]);
    this.options.storage.recordPeerContact(message.from, this.contactsMax).then((outcome) => {
      const backlog = this.awaitingContact.get(message.from) ?? [];
      this.awaitingContact.delete(message.from);
      if (outcome === 'full') {
        this.refuseContact(message.from, 'full', backlog.length);
        return;
      }
      this.contacted.add(message.from);
      for (const queued of backlog) this.onMessage(queued);
    }, (error: unknown) => this.fail(error instanceof Error ? error : new Error(String(error))));
  }

  /** refuseContact drops `dropped` messages of a sender whose contact could not be recorded, counts and logs them. */
  private refuseContact(from: NodeId, reason: 'full' | 'busy', dropped: number): void {
    for (let i = 0; i < dropped; i++) this.options.metrics?.peerContactRefused?.(reason);
    const before = this.contactsRefused;
    this.contactsRefused += dropped;
    // Logged when the count passes 1, 2, 4, 8...: a flood of made-up senders cannot flood the log.
    if (before === 0 || Math.floor(Math.log2(this.contactsRefused)) > Math.floor(Math.log2(before))) {
      this.options.logger.warn(
        { from, reason, refused: this.contactsRefused, contactsMax: this.contactsMax },
        reason === 'full'
          ? 'dropped a message from a new peer: the contacts this member records are at their bound (peerContactsMax)'
          : 'dropped a message from a new peer: too many first contacts are being recorded at once',
      );
    }
  }

  /** hasHeardFrom tells whether contact with `peer` is durably recorded. */
  hasHeardFrom(peer: NodeId): boolean {
    return this.contacted.has(peer);
  }

  /** onForward serves a write forwarded by a follower; only the leader proposes, there is no second hop. */
  private async onForward(_from: NodeId, request: ForwardRequest): Promise<ForwardResponse> {
    // Peer input is validated before it is written (DESIGN.md; peer calls are not authenticated yet): bytes that are
    // no command never reach the log, where every member would store and apply them.
    const refused = this.options.stateMachine.validateCommand?.(request.command) ?? null;
    if (refused !== null) return { ok: false, code: refused.code, message: refused.message, leaderHint: null };
    if (this.core.role !== 'leader') {
      return { ok: false, code: 'CAIRN_NOT_LEADER', message: `${this.options.id} is not the leader`, leaderHint: this.core.leader };
    }
    try {
      const timeoutMs = Math.max(1, Math.min(request.deadlineMs, this.options.requestTimeoutMs));
      const result = await this.proposeLocally(request.command, monotonicMs() + timeoutMs);
      return { ok: true, result, index: 0 };
    } catch (error) {
      if (error instanceof CairnError) {
        const hint = typeof error.details?.['leader'] === 'string' ? error.details['leader'] : null;
        return { ok: false, code: error.code, message: error.message, leaderHint: hint };
      }
      throw error;
    }
  }

  /**
   * onMembershipChanged calls `listener` with the members of the configuration (voters and learners, sorted; empty
   * for a --join member not added yet) now and after every change; returns its removal.
   */
  onMembershipChanged(listener: (members: readonly NodeId[]) => void): () => void {
    assert(this.membershipListeners.size < membershipListenersMax, 'too many membership listeners');
    this.membershipListeners.add(listener);
    listener(this.configurationMembers());
    return () => this.membershipListeners.delete(listener);
  }

  private configurationMembers(): NodeId[] {
    const membership = this.core.membership;
    return [...membership.voters, ...membership.learners].sort();
  }

  private syncPeers(): void {
    // Called after every Ready: nothing to do unless the configuration (a stable object until it changes) or the
    // known leader moved.
    const membership = this.core.membership;
    const leader = this.core.leader;
    if (membership === this.syncedMembership && leader === this.syncedLeader) return;
    this.syncedMembership = membership;
    this.syncedLeader = leader;
    const configuration = this.configurationMembers();
    const configurationKey = configuration.join(',');
    if (configurationKey !== this.configurationKey) {
      this.configurationKey = configurationKey;
      for (const listener of [...this.membershipListeners]) listener(configuration);
    }
    const peers = new Set(configuration);
    // A leader removing itself keeps replicating until the removal commits, then steps down (thesis §4.2.2); its
    // followers apply the new configuration as soon as they append it, so they must keep answering the leader they
    // know even though the configuration no longer names it, or the removal never commits on its watch.
    if (leader !== null) peers.add(leader);
    const members = [...peers].filter((member) => member !== this.options.id).sort();
    const key = members.join(',');
    if (key === this.membersKey) return;
    this.membersKey = key;
    this.options.transport.setPeers(members);
  }

  // ---------------------------------------------------------------------------------------------------------
  // The Ready loop.

  private onTick(): void {
    if (this.closed) return;
    this.core.tick();
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled || this.processing || this.closed) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.processReady();
    });
  }

  private async processReady(): Promise<void> {
    if (this.processing || this.closed) return;
    this.proposeQueued();
    const hasReady = this.core.hasReady();
    if (!hasReady && !this.flushDeferred && !this.imageWanted()) return;
    this.processing = true;
    try {
      if (!hasReady) {
        if (this.flushDeferred) await this.writeDeferred();
        this.offerSnapshotImage();
        return;
      }
      const ready = this.core.ready();
      // A leader's replication may leave before its own fsync (Raft thesis §10.2.1; Ready.messagesBeforePersist):
      // followers write in parallel with the leader, so a commit costs one fsync on the critical path, not two.
      if (ready.messagesBeforePersist) this.sendAll(ready.messages);
      if (ready.snapshot === null) {
        // The hot path: committed entries are applied in memory first and their proposals answered at once (a
        // committed entry is durable on a majority, this leader's own persisted log counting only once written;
        // the keyspace on disk is a cache of the log, re-applied from it after a crash), then everything this Ready
        // writes (entries, hard state, the applied batch and index) goes to storage as one batch.
        const first = ready.committedEntries[0];
        const cut = first === undefined ? -1 : this.checkpoints.cutIn(first.index, first.index + ready.committedEntries.length - 1);
        if (cut < 0) await this.persist(ready, this.applyCommitted(ready.committedEntries));
        else await this.persistWithCheckpoint(ready, cut);
        if (!ready.messagesBeforePersist) this.sendAll(ready.messages);
      } else {
        // Installing a snapshot: the log is replaced first, then the keyspace (writeApplied clears it).
        const started = monotonicMs();
        await this.persist(ready, null);
        if (!ready.messagesBeforePersist) this.sendAll(ready.messages);
        if (!(await this.restoreSnapshot(ready.snapshot, monotonicMs() - started))) return;
        const applied = this.applyCommitted(ready.committedEntries);
        if (applied !== null) await this.options.storage.writeApplied(applied.writes, applied.index, false);
      }
      this.settleReads(ready);
      this.core.advance(ready);
      this.afterAdvance(ready);
      if (this.shouldCompact()) this.startCompaction();
      this.offerSnapshotImage();
    } catch (error) {
      this.fail(error instanceof Error ? error : new Error(String(error)));
      return;
    } finally {
      this.processing = false;
      // Whoever waits for the state machine and the core to agree (liveImage) runs now, before the next Ready.
      for (const resolve of this.betweenReadyWaiters.splice(0)) resolve();
    }
    this.schedule();
  }

  /**
   * persistWithCheckpoint is persist for a Ready whose committed entries pass a checkpoint (the entry at `cut`): the
   * entries up to it are applied and written with the Ready (or on their own, when the Ready would have deferred
   * them), the checkpoint's keyspace view is taken before anything else is written, and the rest is applied and
   * deferred like any applied batch. Costs one more storage write per checkpoint.
   */
  private async persistWithCheckpoint(ready: Ready, cut: number): Promise<void> {
    const entries = ready.committedEntries;
    const checkpoint = entries[cut];
    assert(checkpoint !== undefined, `checkpoint position ${cut} outside the ${entries.length} committed entries`);
    await this.persist(ready, this.applyCommitted(entries.slice(0, cut + 1)));
    if (this.deferred !== null) await this.writeDeferred();
    this.checkpoints.take(checkpoint.index);
    // A second checkpoint in the same Ready (an interval shorter than a batch) is skipped and counted: one digest
    // runs at a time, and the one just taken has not finished.
    const later = entries[cut + 1];
    if (later !== undefined) assert(this.checkpoints.cutIn(later.index, checkpoint.index + entries.length - 1 - cut) < 0, 'a second checkpoint cut while one is digested');
    const rest = this.applyCommitted(entries.slice(cut + 1));
    if (rest !== null && !this.defer(null, rest)) {
      await this.options.storage.writeReady({ snapshot: null, entries: [], hardState: null, applied: rest }, this.options.unsafe?.noFsync !== true);
    }
  }

  /** sendAll hands one Ready's messages to the transport and has them written at once (they share a write per peer). */
  private sendAll(messages: readonly Message[]): void {
    if (messages.length === 0) return;
    for (const message of messages) this.options.transport.send(message);
    this.options.transport.flush?.();
  }

  /**
   * persist writes a Ready. One that needs no fsync and appends nothing (at low load, every commit index a follower
   * learns and every commit on the leader: half of all writes) is deferred and joins the next write; anything
   * deferred joins this one otherwise (older first, so the newest hard state and applied index win).
   */
  private async persist(ready: Ready, applied: AppliedWrite | null): Promise<void> {
    if (ready.snapshot === null && ready.entries.length === 0 && ready.hardState === null && applied === null) return;
    if (ready.snapshot === null && ready.entries.length === 0 && !ready.mustSync && this.defer(ready.hardState, applied)) {
      this.options.metrics?.readyBatch(0, ready.committedEntries.length, ready.messages.length);
      return;
    }
    const deferred = this.takeDeferred();
    const hardState = ready.hardState ?? deferred?.hardState ?? null;
    const merged = deferred === null || (deferred.writes.length === 0 && deferred.index === 0)
      ? applied
      : applied === null ? { writes: deferred.writes, index: deferred.index } : { writes: deferred.writes.concat(applied.writes), index: applied.index };
    const started = process.hrtime.bigint();
    // Keyspace records are always fsynced (level-storage.ts, "Durability"): a batch of them lost to a power failure
    // while a later synced write survives would leave a hole under a later applied index. Under load every such
    // Ready appends and syncs anyway; at low load they were deferred and join the next (synced) write.
    const sync = (ready.mustSync || merged !== null) && this.options.unsafe?.noFsync !== true;
    await this.options.storage.writeReady({ snapshot: ready.snapshot, entries: ready.entries, hardState, applied: merged }, sync);
    if (sync) this.options.metrics?.fsyncSeconds(Number(process.hrtime.bigint() - started) / 1e9);
    this.options.metrics?.readyBatch(ready.entries.length, ready.committedEntries.length, ready.messages.length);
  }

  /**
   * defer keeps a Ready's hard state (a commit index: term and vote changes always fsync) and applied batch for the
   * next write; false when the deferred writes would pass deferredWritesMax (then they are written now).
   */
  private defer(hardState: HardState | null, applied: AppliedWrite | null): boolean {
    const deferred = this.deferred ?? { hardState: null, writes: [], index: 0 };
    if (applied !== null && deferred.writes.length + applied.writes.length > deferredWritesMax) return false;
    if (hardState !== null) deferred.hardState = hardState;
    if (applied !== null) {
      for (const write of applied.writes) deferred.writes.push(write);
      deferred.index = applied.index;
    }
    this.deferred = deferred;
    if (this.deferTimer === null) {
      // Bounded staleness of the stored keyspace when no write follows: one tick.
      this.deferTimer = setTimeout(() => {
        this.deferTimer = null;
        this.flushDeferred = true;
        this.schedule();
      }, this.options.tickMs);
      this.deferTimer.unref();
    }
    return true;
  }

  /** takeDeferred hands out (and forgets) what defer() kept. */
  private takeDeferred(): { hardState: HardState | null; writes: BatchWrite[]; index: number } | null {
    const deferred = this.deferred;
    this.deferred = null;
    this.flushDeferred = false;
    if (this.deferTimer !== null) {
      clearTimeout(this.deferTimer);
      this.deferTimer = null;
    }
    return deferred;
  }

  /** writeDeferred writes what defer() kept on its own (its timer ran out, a snapshot is saved, the member closes). */
  private async writeDeferred(): Promise<void> {
    const deferred = this.takeDeferred();
    if (deferred === null) return;
    const applied = deferred.index === 0 ? null : { writes: deferred.writes, index: deferred.index };
    // Synced when it carries keyspace records (see persist); off the answer path: what waits here was answered.
    await this.options.storage.writeReady({ snapshot: null, entries: [], hardState: deferred.hardState, applied }, applied !== null && this.options.unsafe?.noFsync !== true);
  }

  /**
   * restoreSnapshot replaces the state machine by an installed snapshot (whose image took persistedMs to store),
   * writes its keyspace and logs how long each step took; false when the member closed while the restore ran (in
   * slices): nothing was written, and a restart restores the stored snapshot (its stored applied index is below the
   * snapshot's).
   */
  private async restoreSnapshot(snapshot: Snapshot, persistedMs: number): Promise<boolean> {
    const batch = new CollectingBatch();
    const machine = this.options.stateMachine;
    const started = monotonicMs();
    if (machine.restoreInSlices === undefined) machine.restore(snapshot.data, batch);
    else if (!(await this.runInSlices(machine.restoreInSlices(snapshot.data, batch)))) return false;
    const restored = monotonicMs();
    await this.options.storage.writeApplied(batch.writes, snapshot.meta.index, true);
    const { index, term } = snapshot.meta;
    const bytes = snapshot.data.length;
    this.options.logger.info({ index, term, bytes, persistedMs, restoredMs: restored - started, writtenMs: monotonicMs() - restored }, 'snapshot from the leader installed');
    this.options.metrics?.snapshot?.('installed');
    this.appliedSinceSnapshot = 0;
    this.failProposalsUpTo(snapshot.meta.index);
    return true;
  }

  /**
   * applyCommitted applies committed entries to the state machine in memory, answers their proposals, and returns
   * the keyspace batch and applied index still to be written (null when there was nothing to apply).
   */
  private applyCommitted(entries: readonly Entry[]): AppliedWrite | null {
    const last = entries[entries.length - 1];
    if (last === undefined) return null;
    const batch = new CollectingBatch();
    for (const entry of entries) {
      const result = entry.kind === 'normal' ? this.options.stateMachine.apply(entry.data, entry.index, entry.term, batch, this.proposals.has(entry.index)) : null;
      this.settleProposal(entry, result);
    }
    this.appliedSinceSnapshot += entries.length;
    return { writes: batch.writes, index: last.index };
  }

  private settleProposal(entry: Entry, result: Uint8Array | null): void {
    const pending = this.proposals.get(entry.index);
    if (pending === undefined) return;
    this.proposals.delete(entry.index);
    clearTimeout(pending.timer);
    if (pending.term === entry.term && result !== null) {
      this.options.metrics?.proposal('ok');
      pending.resolve(result);
    } else {
      // Another leader's entry took this index: ours was overwritten and can never commit (Raft §5.3).
      this.options.metrics?.proposal('dropped');
      pending.reject(new CairnError('CAIRN_PROPOSAL_DROPPED', `entry ${entry.index} was replaced after a leader change`));
    }
  }

  /** failProposalsUpTo settles proposals covered by an installed snapshot: their outcome is unknown here. */
  private failProposalsUpTo(index: number): void {
    for (const [proposalIndex, pending] of this.proposals) {
      if (proposalIndex > index) continue;
      this.proposals.delete(proposalIndex);
      clearTimeout(pending.timer);
      pending.reject(new CairnError('CAIRN_OUTCOME_UNKNOWN', `entry ${proposalIndex} was covered by a snapshot before it applied here`));
    }
  }

  private settleReads(ready: Ready): void {
    for (const state of ready.readStates) {
      const read = this.reads.get(state.context);
      if (read !== undefined) read.index = state.index;
    }
    for (const context of ready.droppedReads) {
      // Leadership changed before the read was confirmed: the caller asks again while it still has time.
      const read = this.reads.get(context);
      if (read === undefined) continue;
      this.reads.delete(context);
      clearTimeout(read.timer);
      read.retry();
    }
  }

  private afterAdvance(ready: Ready): void {
    const applied = this.core.appliedIndex;
    for (const [context, read] of this.reads) {
      if (read.index === null || read.index > applied) continue;
      this.reads.delete(context);
      clearTimeout(read.timer);
      read.resolve();
    }
    if (ready.softState !== null) {
      this.options.logger.info({ role: ready.softState.role, term: ready.softState.term, leader: ready.softState.leader }, 'raft role changed');
      if (ready.softState.leader !== null) {
        this.everHadLeader = true;
        this.leaderlessSinceMs = null;
        for (const wake of [...this.leaderWaiters]) wake();
      } else if (this.everHadLeader && this.leaderlessSinceMs === null) {
        this.leaderlessSinceMs = monotonicMs();
      }
    }
    this.syncPeers();
  }

  /**
   * shouldCompact: snapshotEntries (times this member's spread) applied since the last compaction. A compaction is
   * cheap whatever the registry's size: the stored keyspace is the snapshot, so it writes only the snapshot's meta
   * and the log deletions (compactLog); the image is encoded only when a follower needs one (offerSnapshotImage).
   */
  private shouldCompact(): boolean {
    if (this.compacting || this.closed) return false;
    return this.appliedSinceSnapshot >= this.options.snapshotEntries * this.snapshotSpread;
  }

  /**
   * startCompaction compacts the log up to the catch-up trail before the applied index in the background: the writes
   * kept for later are queued now (so the stored keyspace reaches the applied index, ahead of any later write; the
   * snapshot's index may be below it, as the storage contract allows), the storage makes them durable
   * and records the snapshot (compactLog), and only then does the core drop its entries. Ready writes go on
   * meanwhile; a snapshot installed from the leader in between makes the compaction a no-op.
   */
  private startCompaction(): void {
    const applied = this.core.appliedIndex;
    // The keyspace stays at the applied index; the log keeps the catch-up trail before it (catchUpEntries).
    let index = applied - this.catchUpEntries;
    // A follower installing an image (being encoded, or streamed) goes on from the log after the image's index: keep
    // that log, up to imageHoldEntriesFactor x snapshotEntries entries (a follower that never finishes must not hold
    // the log for ever; it will need a newer image).
    const held = minIndex(this.core.offeredSnapshotIndex, this.encodingImageIndex);
    if (held !== null && applied - held <= this.options.snapshotEntries * imageHoldEntriesFactor) index = Math.min(index, held);
    const term = this.core.termAt(index);
    if (index <= this.core.snapshotIndex || term === undefined) return;
    const meta = { index, term, membership: this.core.membershipAt(index) };
    this.compacting = true;
    this.appliedSinceSnapshot = 0;
    this.snapshotSpread = 1 + snapshotSpreadMax * this.random.nextFloat();
    const started = monotonicMs();
    const written = this.writeDeferred();
    written.then(() => this.options.storage.compactLog(meta)).then(() => {
      this.compacting = false;
      if (this.closed) return;
      this.core.compact(index);
      this.options.logger.info({ index, applied, ms: monotonicMs() - started }, 'log compacted');
      this.options.metrics?.snapshot?.('compacted');
      this.schedule();
    }, (error: unknown) => {
      this.compacting = false;
      // Storage refuses writes once it is closing: a compaction cut short by shutdown is no failure.
      if (this.closed) return;
      this.fail(error instanceof Error ? error : new Error(String(error)));
    });
  }

  /**
   * liveImage captures the state machine at the applied index between two Readys (when it and the core's applied
   * index agree; snapshotPieces keeps what it captured immutable, so writes go on meanwhile) and encodes it in
   * slices, as an image for a follower is: a backup of a running member (`cairn backup save --from`).
   */
  async liveImage(): Promise<LiveImage> {
    this.assertOpen();
    await this.betweenReadys();
    this.assertOpen();
    const index = this.core.appliedIndex;
    const term = this.core.termAt(index);
    assert(term !== undefined, `liveImage: no term at the applied index ${index}`);
    const voters = [...this.core.membershipAt(index).voters];
    const collected = await this.collectInSlices(this.options.stateMachine.snapshotPieces());
    if (collected === null) throw new CairnError('CAIRN_SHUTTING_DOWN', 'the member is shutting down');
    const { parts, bytes: imageBytes } = collected;
    // The checksum too, a slice at a time (~100 ms for 50 MB in one go would stall the member's clients).
    let checksum = 0;
    const checksumSteps = function* (): Generator<void, void, void> {
      for (const part of parts) {
        for (let offset = 0; offset < part.length; offset += checksumSliceBytes) {
          checksum = crc32c(part.subarray(offset, offset + checksumSliceBytes), checksum);
          yield;
        }
      }
    };
    if (!(await this.runInSlices(checksumSteps()))) throw new CairnError('CAIRN_SHUTTING_DOWN', 'the member is shutting down');
    return { index, term, voters, sourceMember: this.options.id, parts, imageBytes, imageCrc32c: checksum };
  }

  /** betweenReadys resolves when no Ready is being processed (at once when none is). */
  private betweenReadys(): Promise<void> {
    if (!this.processing) return Promise.resolve();
    assert(this.betweenReadyWaiters.length < betweenReadyWaitersMax, 'too many waiters for the end of a Ready');
    return new Promise<void>((resolve) => this.betweenReadyWaiters.push(resolve));
  }

  /** imageWanted tells whether the core waits for a snapshot image that is not being encoded yet. */
  private imageWanted(): boolean {
    return this.encodingImageIndex === null && !this.closed && this.core.wantsSnapshot;
  }

  /**
   * offerSnapshotImage captures the state machine at the applied index (cheap: it keeps what it captured immutable)
   * when the core needs an image for a follower, encodes it in the background, at most snapshotSliceMs at a time
   * between other work, and offers it to the core, which streams it and lets it go when no follower needs it. Called
   * only between Readys, when the state machine and the core's applied index agree.
   */
  private offerSnapshotImage(): void {
    if (!this.imageWanted()) return;
    const index = this.core.appliedIndex;
    const pieces = this.options.stateMachine.snapshotPieces();
    this.encodingImageIndex = index;
    const started = monotonicMs();
    this.encodeInSlices(pieces).then((data) => {
      this.encodingImageIndex = null;
      if (data === null || this.closed) return;
      const taken = this.core.offerSnapshot(index, data);
      this.options.logger.info({ index, bytes: data.length, encodedMs: monotonicMs() - started, taken }, 'snapshot image encoded for a follower');
      this.options.metrics?.snapshot?.('image_encoded');
      this.schedule();
    }, (error: unknown) => {
      this.encodingImageIndex = null;
      if (this.closed) return;
      this.fail(error instanceof Error ? error : new Error(String(error)));
    });
  }

  /**
   * collectInSlices takes the state machine's pieces into a list, yielding to the event loop every snapshotSliceMs
   * (an empty piece marks a point where it may); null once closed.
   */
  private async collectInSlices(pieces: Iterator<Uint8Array, void, void>): Promise<{ parts: Uint8Array[]; bytes: number } | null> {
    const parts: Uint8Array[] = [];
    let bytes = 0;
    const collect = function* (): Generator<void, void, void> {
      for (let next = pieces.next(); next.done !== true; next = pieces.next()) {
        if (next.value.length > 0) {
          parts.push(next.value);
          bytes += next.value.length;
        }
        yield;
      }
    };
    return (await this.runInSlices(collect())) ? { parts, bytes } : null;
  }

  /** encodeInSlices collects the pieces and joins them, both between other work; null once closed. */
  private async encodeInSlices(pieces: Iterator<Uint8Array, void, void>): Promise<Uint8Array | null> {
    const collected = await this.collectInSlices(pieces);
    if (collected === null) return null;
    // Joined a part at a time too: one copy of a 335 MB image (1M instances) held the event loop ~0.3-1 s.
    const joined = new Uint8Array(collected.bytes);
    let offset = 0;
    const copy = function* (): Generator<void, void, void> {
      for (const part of collected.parts) {
        joined.set(part, offset);
        offset += part.length;
        yield;
      }
    };
    return (await this.runInSlices(copy())) ? joined : null;
  }

  /**
   * runInSlices runs `steps` to the end, at most snapshotSliceMs at a time before it lets other work run; false when
   * the member closed meanwhile (the steps are abandoned).
   */
  private async runInSlices(steps: Iterator<void, void, void>): Promise<boolean> {
    let sliceStarted = performance.now();
    while (steps.next().done !== true) {
      if (performance.now() - sliceStarted < snapshotSliceMs) continue;
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (this.closed) return false;
      sliceStarted = performance.now();
    }
    return true;
  }

  private fail(error: Error): void {
    this.failed = true;
    this.options.logger.error({ err: error }, 'raft driver failed; the member stops and recovers from disk');
    void this.close();
    this.options.onFatal(error);
  }

  private assertOpen(): void {
    if (this.closed) throw new CairnError('CAIRN_SHUTTING_DOWN', 'the member is shutting down');
  }

  // ---------------------------------------------------------------------------------------------------------
  // Cluster control.

  /** status reports the core's view: role, term, leader, indexes, membership, followers' progress. */
  status(): RaftStatus {
    return this.core.status();
  }

  /**
   * stateDigest digests the stored keyspace at the applied index it has reached (src/replica/state-digest.ts). One
   * digest runs at a time: callers that ask meanwhile share it.
   */
  stateDigest(): Promise<StateDigest> {
    this.assertOpen();
    if (this.digesting === null) {
      this.digesting = digestKeyspace(this.options.storage).finally(() => {
        this.digesting = null;
      });
    }
    return this.digesting;
  }

  /** checkpointReport is this member's checkpoint digests and its last comparison with each peer (checkpoints.ts). */
  checkpointReport(): CheckpointReport {
    return this.checkpoints.report();
  }

  /** transferLeadership asks the leader to hand over to `to` and waits until `to` leads (or the request times out). */
  async transferLeadership(to: NodeId): Promise<void> {
    const result = this.core.transferLeadership(to);
    if (!result.ok) throw cairnErrorFromRaft(result.code, result.leaderHint);
    this.schedule();
    await this.waitUntil(() => this.core.leader === to, `leadership did not move to ${to} in time`);
  }

  /** addMember adds `member` as a learner, waits until it has caught up, then promotes it to voter (thesis §4.1). */
  async addMember(member: NodeId, catchUpTimeoutMs: number): Promise<void> {
    // Idempotent and resumable: a member that is already a voter is left as it is, and a learner (an earlier add
    // whose promotion was cut short by a leader change or a timeout) is caught up and promoted, so retrying the same
    // request on the current leader always finishes the job. Only the leader's view counts; others are refused below.
    const status = this.core.status();
    const leading = status.role === 'leader';
    if (leading && status.membership.voters.includes(member)) return;
    if (!(leading && status.membership.learners.includes(member))) await this.changeMembership({ type: 'add-learner', node: member });
    await this.waitUntil(() => {
      const now = this.core.status();
      if (now.role !== 'leader') {
        throw new CairnError(now.leader === null ? 'CAIRN_NO_LEADER' : 'CAIRN_NOT_LEADER',
          `leadership moved while ${member} was catching up: it is a learner; add it again on the leader to promote it`,
          { details: { leader: now.leader } });
      }
      const progress = now.progress[member];
      return progress !== undefined && progress.match >= this.core.commitIndex;
    }, `${member} did not catch up within ${catchUpTimeoutMs} ms; it stays a learner (add it again to retry)`, catchUpTimeoutMs);
    await this.changeMembership({ type: 'promote', node: member });
  }

  /** removeMember removes `member` from the group. */
  async removeMember(member: NodeId): Promise<void> {
    await this.changeMembership({ type: 'remove', node: member });
  }

  private async changeMembership(change: { type: 'add-learner' | 'promote' | 'remove'; node: NodeId }): Promise<void> {
    const result = this.core.proposeMembership(change);
    if (!result.ok) throw cairnErrorFromRaft(result.code, result.leaderHint);
    this.schedule();
    await this.waitUntil(() => this.core.commitIndex >= result.lastIndex && this.core.appliedIndex >= result.lastIndex,
      `the ${change.type} of ${change.node} did not commit in time: outcome unknown`);
    if (this.core.termAt(result.lastIndex) !== result.term) {
      throw new CairnError('CAIRN_PROPOSAL_DROPPED', `the ${change.type} of ${change.node} was replaced after a leader change`);
    }
  }

  private async waitUntil(condition: () => boolean, timeoutMessage: string, timeoutMs = this.options.requestTimeoutMs): Promise<void> {
    const deadline = monotonicMs() + timeoutMs;
    while (!condition()) {
      if (monotonicMs() >= deadline || this.closed) throw new CairnError('CAIRN_OUTCOME_UNKNOWN', timeoutMessage);
      await delay(this.options.tickMs);
    }
  }

  /** close stops the timer, fails waiting callers, lets the in-flight Ready finish and closes transport and storage. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.tickTimer !== null) clearInterval(this.tickTimer);
    this.checkpoints.close();
    for (const [index, pending] of this.proposals) {
      clearTimeout(pending.timer);
      pending.reject(new CairnError('CAIRN_OUTCOME_UNKNOWN', `the member shut down before entry ${index} applied`));
    }
    this.proposals.clear();
    for (const queued of this.queued.splice(0)) {
      if (queued.timer !== null) clearTimeout(queued.timer);
      queued.reject(new CairnError('CAIRN_SHUTTING_DOWN', 'the member shut down before the write reached its log; it was not written'));
    }
    for (const read of this.reads.values()) {
      clearTimeout(read.timer);
      read.reject(new CairnError('CAIRN_SHUTTING_DOWN', 'the member is shutting down'));
    }
    this.reads.clear();
    for (const wake of [...this.leaderWaiters]) wake();
    for (let waited = 0; this.processing && waited < 100; waited++) await delay(20);
    // What waited for a later write is written now, unless the driver failed (a failed store is not written again;
    // the log holds it all anyway).
    if (!this.processing && !this.failed) await this.writeDeferred().catch(() => undefined);
    else this.takeDeferred();
    await this.options.transport.close();
    await this.options.storage.close();
  }
}

/** CollectingBatch gathers a state machine's writes for one atomic storage batch. */
class CollectingBatch implements ApplyBatch {
  readonly writes: BatchWrite[] = [];
  put(key: string, value: Uint8Array): void {
    this.writes.push({ type: 'put', key, value });
  }
  del(key: string): void {
    this.writes.push({ type: 'del', key });
  }
}

/** errorFromForward rebuilds the leader's error; an unknown code from a newer peer becomes CAIRN_INTERNAL. */
function errorFromForward(response: Extract<ForwardResponse, { ok: false }>): CairnError {
  const code = isCairnErrorCode(response.code) ? response.code : 'CAIRN_INTERNAL';
  return new CairnError(code, response.message, { details: { leader: response.leaderHint } });
}
