// checkpoints: the periodic replica-consistency check. `cairn check` compares the members' state digests on demand,
// and only when they stand at one applied index, which a cluster under steady writes rarely does. Checkpoints remove
// that condition: every member digests its stored keyspace at the same applied indexes, the multiples of the
// checkpoint interval (`--checkpoint-every`, default 100 000 entries), whatever its batches look like; the driver
// cuts the Ready that passes such an index so that the keyspace is written exactly there before the view is taken
// (replica.ts, applyWithCheckpoint). Members then ask one another for their latest checkpoint digests over the peer
// port (the Checkpoints method of peer.proto) and compare the ones at shared indexes. This is the periodic side of
// etcd's corruption checks, which compare hashes of the members' key-value stores at one revision.
//
// What it cannot see: a replica that never reaches a checkpoint (it restored a snapshot past it, or was down); two
// members configured with different intervals (no shared index, reported as nothing to compare). A member that
// restarts takes the checkpoints its replay passes again.

import { assert } from '../assert.ts';
import { isCairnError } from '../errors.ts';
import type { NodeId } from '../raft/types.ts';
import { digestView, type DigestPace, type StateDigest } from './state-digest.ts';
import type { RaftStorage } from './storage.ts';
import type { PeerTransport } from './transport.ts';

/** checkpointDigestsMax bounds the checkpoint digests a member keeps (the newest; older ones are forgotten). */
export const checkpointDigestsMax = 8;

/**
 * peerCheckpointDigestsMax bounds the digests accepted in one peer's answer: twice what a member keeps, so a later
 * release may keep more without older members refusing its answers.
 */
export const peerCheckpointDigestsMax = 16;

/** checkpointComparisonsMax bounds the peers whose last comparison a member remembers (members of a group). */
export const checkpointComparisonsMax = 16;

/**
 * checkpointDigestShare bounds the share of the event loop a checkpoint digest takes: after each read batch it rests
 * three times as long as it worked. Every member reaches a checkpoint at the same index at about the same time, so an
 * unpaced digest of the whole keyspace ran on all three at once, beside the writes: at ~100 000 records it doubled
 * the p99 of the 64-client register cell it fell in (bench/README.md, session 28). Paced, a digest takes about four
 * times as long, which the interval (a checkpoint is skipped while the previous one is still being digested) allows.
 */
export const checkpointDigestShare = 0.25;

/** checkpointRestMsMax bounds one rest of a paced digest (a batch that took long, e.g. on a stalled machine). */
export const checkpointRestMsMax = 200;

/**
 * checkpointRestMs is how long a paced digest rests after working `workedMs`: long enough that working and resting
 * together give it checkpointDigestShare of the time, at most checkpointRestMsMax.
 */
export function checkpointRestMs(workedMs: number): number {
  if (!(workedMs > 0)) return 0;
  return Math.min(checkpointRestMsMax, (workedMs * (1 - checkpointDigestShare)) / checkpointDigestShare);
}

/** checkpointPace is the DigestPace of checkpoint digests: it rests checkpointRestMs after each batch. */
export const checkpointPace: DigestPace = (workedMs) => {
  const restMs = checkpointRestMs(workedMs);
  if (restMs <= 0) return Promise.resolve();
  return new Promise((resolve) => setTimeout(resolve, restMs).unref());
};

/** CheckpointDigest is a state digest taken at a checkpoint (its `applied` is a multiple of the interval). */
export type CheckpointDigest = StateDigest;

/** PeerCheckpoints is a member's answer to Checkpoints. */
export interface PeerCheckpoints {
  readonly memberId: NodeId;
  /** interval is the member's checkpoint interval in entries; 0 when it takes none. */
  readonly interval: number;
  /** digests are newest first, at distinct indexes. */
  readonly digests: readonly CheckpointDigest[];
}

/** CheckpointComparison is the outcome of comparing this member's digest with a peer's at their newest shared index. */
export interface CheckpointComparison {
  readonly peer: NodeId;
  readonly applied: number;
  readonly agree: boolean;
  readonly ours: CheckpointDigest;
  readonly theirs: CheckpointDigest;
  /** comparedAtMs is the wall-clock time of the comparison (for the operator's report). */
  readonly comparedAtMs: number;
}

/**
 * checkpointIn is the position in `indexes` (consecutive applied indexes, ascending) of the first multiple of
 * `every`, or -1 (also when `every` is 0: checkpoints off).
 */
export function checkpointIn(firstIndex: number, lastIndex: number, every: number): number {
  if (every <= 0 || lastIndex < firstIndex) return -1;
  const next = Math.ceil(firstIndex / every) * every;
  return next <= lastIndex ? next - firstIndex : -1;
}

/** CheckpointLedger keeps a member's newest checkpoint digests and its last comparison with each peer, bounded. */
export class CheckpointLedger {
  private digests: CheckpointDigest[] = [];
  private readonly comparisons = new Map<NodeId, CheckpointComparison>();

  constructor(readonly every: number) {
    assert(Number.isSafeInteger(every) && every >= 0, `checkpoint interval ${every} is not a non-negative integer`);
  }

  /** record keeps `digest` (replacing one at the same index: a replay after a restart takes it again). */
  record(digest: CheckpointDigest): void {
    assert(this.every > 0 && digest.applied % this.every === 0, `checkpoint at ${digest.applied} is not a multiple of ${this.every}`);
    const kept = this.digests.filter((known) => known.applied !== digest.applied);
    kept.push(digest);
    kept.sort((a, b) => b.applied - a.applied);
    this.digests = kept.slice(0, checkpointDigestsMax);
  }

  /** list is the kept digests, newest first. */
  list(): readonly CheckpointDigest[] {
    return this.digests;
  }

  /**
   * compare compares this member's digests with a peer's at the newest index both hold: null when they share none.
   * Only a comparison at a newer index than the last one with that peer is returned (and remembered), so a
   * divergence is reported once per checkpoint, not at every poll.
   */
  compare(peer: PeerCheckpoints, nowMs: number): CheckpointComparison | null {
    const shared = newestShared(this.digests, peer.digests);
    if (shared === null) return null;
    const last = this.comparisons.get(peer.memberId);
    if (last !== undefined && last.applied >= shared.ours.applied) return null;
    const agree = shared.ours.sha256 === shared.theirs.sha256 && shared.ours.records === shared.theirs.records && shared.ours.bytes === shared.theirs.bytes;
    const comparison: CheckpointComparison = { peer: peer.memberId, applied: shared.ours.applied, agree, ours: shared.ours, theirs: shared.theirs, comparedAtMs: nowMs };
    if (!this.comparisons.has(peer.memberId) && this.comparisons.size >= checkpointComparisonsMax) {
      const oldest = this.comparisons.keys().next().value;
      if (oldest !== undefined) this.comparisons.delete(oldest);
    }
    this.comparisons.set(peer.memberId, comparison);
    return comparison;
  }

  /** forgetPeersBut drops the comparisons with members no longer in the group. */
  forgetPeersBut(members: readonly NodeId[]): void {
    for (const peer of [...this.comparisons.keys()]) if (!members.includes(peer)) this.comparisons.delete(peer);
  }

  /** lastComparisons is the last comparison with each peer, by peer name. */
  lastComparisons(): readonly CheckpointComparison[] {
    return [...this.comparisons.values()].sort((a, b) => (a.peer < b.peer ? -1 : a.peer > b.peer ? 1 : 0));
  }
}

/** newestShared is the pair of digests at the newest index both lists hold, or null. */
function newestShared(ours: readonly CheckpointDigest[], theirs: readonly CheckpointDigest[]): { ours: CheckpointDigest; theirs: CheckpointDigest } | null {
  let best: { ours: CheckpointDigest; theirs: CheckpointDigest } | null = null;
  for (const mine of ours) {
    const match = theirs.find((digest) => digest.applied === mine.applied);
    if (match !== undefined && (best === null || mine.applied > best.ours.applied)) best = { ours: mine, theirs: match };
  }
  return best;
}

/** checkpointPollTimeoutMs bounds one Checkpoints call to a peer (a slow peer is asked again at the next poll). */
const checkpointPollTimeoutMs = 2000;

/**
 * checkpointSettleMs: a member asks its peers this long after its own checkpoint digest is done (they reach the same
 * index at about the same time, and digest about as fast), instead of waiting for the next periodic poll.
 */
const checkpointSettleMs = 1000;

/** CheckpointLogger is the logging the watch needs; a pino logger fits it. */
export interface CheckpointLogger {
  info(object: object, message: string): void;
  warn(object: object, message: string): void;
  error(object: object, message: string): void;
}

/** CheckpointMetrics counts checkpoints taken (or not) and comparisons made; the composition root maps them. */
export interface CheckpointMetrics {
  checkpoint(outcome: 'digested' | 'skipped' | 'failed'): void;
  checkpointComparison(outcome: 'agree' | 'differ'): void;
}

/** CheckpointWatchOptions wire a watch to its member's storage, transport and group. */
export interface CheckpointWatchOptions {
  readonly self: NodeId;
  /** every: a checkpoint at every applied index that is a multiple of it; 0 turns checkpoints off. */
  readonly every: number;
  /** pollMs: how often the member asks its peers for their digests and compares. */
  readonly pollMs: number;
  readonly storage: Pick<RaftStorage, 'keyspaceView'>;
  readonly transport: Pick<PeerTransport, 'checkpoints'>;
  /** peers lists the other members of the group (voters and learners). */
  readonly peers: () => readonly NodeId[];
  readonly logger: CheckpointLogger;
  readonly metrics?: CheckpointMetrics;
  /** nowMs is the wall clock (for the report only). */
  readonly nowMs?: () => number;
  /** pace is awaited between the digest's read batches; checkpointPace when not given. */
  readonly pace?: DigestPace;
}

/** CheckpointReport is what a member tells its operator (GET /cairn/v1/state/checkpoints). */
export interface CheckpointReport {
  readonly every: number;
  readonly digests: readonly CheckpointDigest[];
  readonly comparisons: readonly CheckpointComparison[];
}

/**
 * CheckpointWatch takes a member's checkpoints and compares them with its peers'. The driver asks cutIn() where a
 * Ready's committed entries pass a checkpoint, writes the keyspace up to exactly that entry, and calls take() before
 * it writes anything else; the digest then runs in the background, one at a time (a checkpoint reached while the
 * previous one is still being digested is skipped and counted).
 */
export class CheckpointWatch {
  readonly ledger: CheckpointLedger;
  private digesting = false;
  private polling = false;
  private closed = false;
  private timer: NodeJS.Timeout | null = null;
  private settleTimer: NodeJS.Timeout | null = null;

  constructor(private readonly options: CheckpointWatchOptions) {
    assert(Number.isSafeInteger(options.pollMs) && options.pollMs > 0, `checkpoint poll ${options.pollMs} ms is not a positive integer`);
    this.ledger = new CheckpointLedger(options.storage.keyspaceView === undefined ? 0 : options.every);
  }

  /**
   * cutIn is the position of a checkpoint among committed entries firstIndex..lastIndex this member takes, or -1
   * (none there, checkpoints off, no other member to compare with, or the previous digest still running: skipped).
   */
  cutIn(firstIndex: number, lastIndex: number): number {
    const position = checkpointIn(firstIndex, lastIndex, this.ledger.every);
    if (position < 0 || this.closed) return -1;
    // A member alone in its group (standalone) has nobody to compare with: its digests would cost and tell nothing.
    if (!this.options.peers().some((peer) => peer !== this.options.self)) return -1;
    if (this.digesting) {
      this.options.metrics?.checkpoint('skipped');
      this.options.logger.warn({ index: firstIndex + position }, 'checkpoint skipped: the previous checkpoint is still being digested');
      return -1;
    }
    return position;
  }

  /**
   * take takes the keyspace view now, which the storage queues behind the write that put the keyspace at `index`
   * and before any later one, and digests it in the background. A view at another index is not recorded.
   */
  take(index: number): void {
    const keyspaceView = this.options.storage.keyspaceView;
    assert(keyspaceView !== undefined && !this.digesting, 'checkpoint taken without a keyspace view or while another one runs');
    this.digesting = true;
    const started = Date.now();
    keyspaceView.call(this.options.storage).then(async (view) => {
      if (view.applied !== index) throw new Error(`the keyspace view is at ${view.applied}, not at the checkpoint ${index}`);
      const digest = await digestView(view, this.options.pace ?? checkpointPace);
      this.ledger.record(digest);
      this.options.metrics?.checkpoint('digested');
      this.options.logger.info({ index, records: digest.records, bytes: digest.bytes, sha256: digest.sha256, ms: Date.now() - started }, 'checkpoint digested');
      this.pollSoon();
    }).catch((error: unknown) => {
      if (this.closed || isCairnError(error, 'CAIRN_SHUTTING_DOWN')) return;
      this.options.metrics?.checkpoint('failed');
      this.options.logger.warn({ index, err: error }, 'checkpoint not digested');
    }).finally(() => {
      this.digesting = false;
    });
  }

  /** answer is this member's answer to a peer's Checkpoints call. */
  answer(): PeerCheckpoints {
    return { memberId: this.options.self, interval: this.ledger.every, digests: this.ledger.list() };
  }

  /** report is the member's digests and its last comparison with each peer. */
  report(): CheckpointReport {
    return { every: this.ledger.every, digests: this.ledger.list(), comparisons: this.ledger.lastComparisons() };
  }

  /** start polls the peers every pollMs (nothing when checkpoints are off or the transport cannot ask). */
  start(): void {
    if (this.ledger.every === 0 || this.options.transport.checkpoints === undefined || this.timer !== null || this.closed) return;
    this.timer = setInterval(() => void this.poll(), this.options.pollMs);
    this.timer.unref();
  }

  /** pollSoon polls checkpointSettleMs from now (once: a poll already planned stands), when polls run at all. */
  private pollSoon(): void {
    if (this.timer === null || this.settleTimer !== null || this.closed) return;
    this.settleTimer = setTimeout(() => {
      this.settleTimer = null;
      void this.poll();
    }, checkpointSettleMs);
    this.settleTimer.unref();
  }

  /** poll asks each peer for its digests and compares them with this member's (one poll at a time). */
  async poll(): Promise<void> {
    const ask = this.options.transport.checkpoints;
    if (this.polling || this.closed || ask === undefined) return;
    this.polling = true;
    try {
      const peers = this.options.peers().filter((peer) => peer !== this.options.self).slice(0, checkpointComparisonsMax);
      this.ledger.forgetPeersBut(peers);
      if (this.ledger.list().length === 0) return;
      for (const peer of peers) {
        const answer = await ask.call(this.options.transport, peer, checkpointPollTimeoutMs);
        if (this.closed) return;
        if (answer === null || answer.memberId !== peer) continue;
        const comparison = this.ledger.compare(answer, (this.options.nowMs ?? Date.now)());
        if (comparison !== null) this.reportComparison(comparison);
      }
    } catch (error) {
      this.options.logger.warn({ err: error }, 'checkpoint poll failed');
    } finally {
      this.polling = false;
    }
  }

  /** close stops the polls; a digest under way ends with the storage. */
  close(): void {
    this.closed = true;
    if (this.timer !== null) clearInterval(this.timer);
    if (this.settleTimer !== null) clearTimeout(this.settleTimer);
    this.timer = null;
    this.settleTimer = null;
  }

  private reportComparison(comparison: CheckpointComparison): void {
    this.options.metrics?.checkpointComparison(comparison.agree ? 'agree' : 'differ');
    const fields = { peer: comparison.peer, index: comparison.applied, ours: comparison.ours, theirs: comparison.theirs };
    if (comparison.agree) {
      this.options.logger.info(fields, 'checkpoint agrees with the peer');
      return;
    }
    this.options.logger.error(fields, 'REPLICAS DIVERGED: this member and the peer hold different states at the same applied index; see docs/operations.md "Checking that the replicas agree"');
  }
}
