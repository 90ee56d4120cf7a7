// forward-queue: a follower's forwarded writes, gathered per leader into ForwardBatch calls (docs/raft.md,
// "Forwarded writes").
//
// A follower hands every client write it takes to the leader (replica.ts, propose). One unary call per write cost the
// forwarding member ~420 µs of CPU per write at 64 clients, most of it gRPC's per-call work on both sides (a stream,
// headers, trailers; bench/README.md, session 24), while the leader puts the writes of one Ready into one proposal
// anyway. So the writes bound for one peer wait for the end of the current turn of the event loop (setImmediate) and
// leave together: all that arrived in the same read from the clients' sockets share one call. Nothing waits for a call
// in flight, so the added latency is at most one turn of the loop, and a write alone in its turn leaves in a plain
// Forward call, as before. A batch leaves early once it holds forwardBatchRequestsMax writes or messageBytesMax of
// commands.
//
// Bounded: the writes queued or in flight to one peer are at most proposalsPendingMax (the leader's own bound on the
// writes it holds); beyond it a write is refused at once, certainly not written.
//
// Allocation: per write one promise and two array slots; per batch one setImmediate.

import type { Limits } from '../limits.ts';
import { monotonicMs } from '../clock.ts';
import type { NodeId } from '../raft/types.ts';
import type { ForwardRequest, ForwardResponse } from './transport.ts';

/** ForwardQueueLimits are the limits a ForwardQueue runs with. */
export type ForwardQueueLimits = Pick<Limits, 'forwardBatchRequestsMax' | 'messageBytesMax' | 'proposalsPendingMax'>;

/** ForwardQueueOptions connect a ForwardQueue to the calls that carry its writes. */
export interface ForwardQueueOptions {
  readonly limits: ForwardQueueLimits;
  /** sendOne forwards one write in its own call and resolves with its answer; it never rejects. */
  sendOne(to: NodeId, request: ForwardRequest): Promise<ForwardResponse>;
  /**
   * sendBatch forwards 2..forwardBatchRequestsMax writes in one call. It gives every write its answer through
   * `answer` (its index in `requests`), possibly at different times (a write's own deadline may come first), and
   * resolves once every write has one. It never rejects.
   */
  sendBatch(to: NodeId, requests: readonly ForwardRequest[], answer: (index: number, response: ForwardResponse) => void): Promise<void>;
}

/** PeerForwards holds one peer's writes not yet sent, and how many are queued or in flight (kept while any are). */
class PeerForwards {
  requests: ForwardRequest[] = [];
  resolves: Array<(response: ForwardResponse) => void> = [];
  bytes = 0;
  /** since is when the first queued write was queued (its deadline was relative to then). */
  since = 0;
  scheduled = false;
  /** pending counts the writes queued here plus those in calls not yet over. */
  pending = 0;
  constructor(readonly peer: NodeId) {}
}

/** ForwardQueue queues forwarded writes per peer and sends them in batches; see the file comment. */
export class ForwardQueue {
  private readonly peers = new Map<NodeId, PeerForwards>();
  private closed = false;

  constructor(private readonly options: ForwardQueueOptions) {}

  /** enqueue forwards `request` to `to` with the other writes of this turn, and resolves with its answer. */
  enqueue(to: NodeId, request: ForwardRequest): Promise<ForwardResponse> {
    if (this.closed) return Promise.resolve(refused('CAIRN_SHUTTING_DOWN', 'the member is shutting down; the write was not forwarded'));
    const limits = this.options.limits;
    let peer = this.peers.get(to);
    if (peer === undefined) this.peers.set(to, (peer = new PeerForwards(to)));
    if (peer.pending >= limits.proposalsPendingMax) {
      return Promise.resolve(refused('CAIRN_UNCOMMITTED_BYTES_EXCEEDED', `${peer.pending} writes are already waiting on the leader ${to}, the most this member forwards at once; the write was not forwarded`));
    }
    if (peer.requests.length > 0 && peer.bytes + request.command.length > limits.messageBytesMax) this.flush(peer);
    if (peer.requests.length === 0) peer.since = monotonicMs();
    const target = peer;
    const promise = new Promise<ForwardResponse>((resolve) => {
      target.resolves.push(resolve);
    });
    peer.requests.push(request);
    peer.bytes += request.command.length;
    peer.pending++;
    if (peer.requests.length >= limits.forwardBatchRequestsMax) this.flush(peer);
    else if (!peer.scheduled) {
      peer.scheduled = true;
      setImmediate(() => {
        target.scheduled = false;
        this.flush(target);
      });
    }
    return promise;
  }

  /** pendingTo is the number of writes queued or in flight to `to`. */
  pendingTo(to: NodeId): number {
    return this.peers.get(to)?.pending ?? 0;
  }

  /** close answers every queued write (not sent: CAIRN_SHUTTING_DOWN) and refuses new ones; calls in flight end on their own. */
  close(): void {
    this.closed = true;
    for (const peer of this.peers.values()) {
      const resolves = peer.resolves;
      peer.pending -= resolves.length;
      peer.requests = [];
      peer.resolves = [];
      peer.bytes = 0;
      const answer = refused('CAIRN_SHUTTING_DOWN', 'the member is shutting down; the write was not forwarded');
      for (const resolve of resolves) resolve(answer);
    }
  }

  private flush(peer: PeerForwards): void {
    const requests = peer.requests;
    if (requests.length === 0) return;
    const resolves = peer.resolves;
    peer.requests = [];
    peer.resolves = [];
    peer.bytes = 0;
    // The deadlines were relative to when each write was queued: take off what the queue held them (at most a turn).
    const waited = monotonicMs() - peer.since;
    const sent = waited < 1 ? requests : requests.map((request) => ({ command: request.command, deadlineMs: Math.max(0, request.deadlineMs - waited) }));
    const done = (): void => {
      peer.pending -= requests.length;
      // A peer with nothing queued or in flight is forgotten: the map holds only peers with writes on the way.
      if (peer.pending === 0 && !peer.scheduled && this.peers.get(peer.peer) === peer) this.peers.delete(peer.peer);
    };
    if (sent.length === 1) {
      const resolve = resolves[0] as (response: ForwardResponse) => void;
      this.options.sendOne(peer.peer, sent[0] as ForwardRequest).then(resolve, (error: unknown) => resolve(unknownOutcome(peer.peer, error))).finally(done);
      return;
    }
    this.options.sendBatch(peer.peer, sent, (index, response) => resolves[index]?.(response)).then(() => {
      // A sender that broke its contract and left a write unanswered: its outcome is unknown (a no-op for the others,
      // whose promises are settled already).
      for (const resolve of resolves) resolve(unknownOutcome(peer.peer, null));
    }, (error: unknown) => {
      for (const resolve of resolves) resolve(unknownOutcome(peer.peer, error));
    }).finally(done);
  }
}

function refused(code: string, message: string): ForwardResponse {
  return { ok: false, code, message, leaderHint: null };
}

function unknownOutcome(peer: NodeId, error: unknown): ForwardResponse {
  const why = error === null ? 'the batch ended without an answer for it' : `the call failed (${error instanceof Error ? error.message : String(error)})`;
  return refused('CAIRN_OUTCOME_UNKNOWN', `write forwarded to ${peer}: ${why}`);
}
