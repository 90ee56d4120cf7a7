// forward-batcher: the per-peer queues of forwarded writes and beats (docs/ap.md "Responsibility"). A member that is
// not responsible for a service forwards its writes and beats to the responsible member; one unary gRPC call each
// cost more (HTTP/2 frames, a writev, a stream on both sides) than applying a beat, so requests bound for one peer
// leave together in ForwardBatch calls. The batching adapts to the load, as a group commit does: a request for a
// peer with no call in flight leaves at once (no added latency when it is quiet); while a call is in flight, requests
// gather and leave when it settles, or after distroForwardBatchDelayMs if it is slow, or as soon as they fill a batch
// (distroForwardBatchEntriesMax requests or ~distroMessageBytesMax estimated bytes). Each request is answered with
// its own response; a failed call rejects every request of the batch with its DistroCallError, and the caller
// (DistroNode route) applies the retry-once rule to each. Requests queued or in flight to one peer are bounded
// (distroForwardPendingMax): beyond it a request is refused at once with CAIRN_DISTRO_UNAVAILABLE (retryable).
//
// Allocation: per request one promise (its executor and the two settle functions) and three array slots; no other
// closure, no per-request object.

import { CairnError } from '../errors.ts';
import type { Limits } from '../limits.ts';
import { forwardRequestBytesEstimate } from './distro-codec.ts';
import { DistroCallError, type ForwardRequest, type ForwardResponse } from './transport.ts';

/** ForwardBatcherLimits are the limits a ForwardBatcher runs with. */
export type ForwardBatcherLimits = Pick<Limits, 'distroForwardBatchDelayMs' | 'distroForwardBatchEntriesMax' | 'distroForwardPendingMax' | 'distroMessageBytesMax'>;

/** ForwardBatcherOptions configure a ForwardBatcher. */
export interface ForwardBatcherOptions {
  readonly limits: ForwardBatcherLimits;
  /** send is the peer call (DistroTransport.forwardBatch), stamped with the time it leaves. */
  send(to: string, requests: readonly ForwardRequest[], sentAtMs: number): Promise<readonly ForwardResponse[]>;
  /** now is the member's steady clock (epoch ms): the batch's stamp, carried by a failure as DistroCallError.sentAtMs. */
  now(): number;
  /** onBatch is told of every call made: its size and whether it failed (once per batch, not per request). */
  onBatch?(to: string, size: number, failure: DistroCallError | null): void;
  /** onOverflow is told of every request refused because the peer's queue was full. */
  onOverflow?(to: string): void;
}

/** PeerQueue holds one peer's requests not yet sent, with their settle functions, and its pending count. */
class PeerQueue {
  requests: ForwardRequest[] = [];
  resolves: Array<(response: ForwardResponse) => void> = [];
  rejects: Array<(error: Error) => void> = [];
  bytes = 0;
  /** pending counts the requests queued here plus those in calls not yet answered. */
  pending = 0;
  timer: NodeJS.Timeout | null = null;
  /** inFlight counts the calls to this peer not yet settled. */
  inFlight = 0;
  constructor(readonly peer: string) {}
}

/** ForwardBatcher queues forwarded requests per peer and sends them in batches; see the file comment. */
export class ForwardBatcher {
  private readonly queues = new Map<string, PeerQueue>();
  private closed = false;
  private readonly flushQueue = (queue: PeerQueue): void => {
    queue.timer = null;
    this.flush(queue);
  };

  constructor(private readonly options: ForwardBatcherOptions) {}

  /**
   * enqueue queues `request` for `to` and resolves with its response, or rejects with the batch's DistroCallError.
   * It throws CAIRN_DISTRO_UNAVAILABLE at once when `to` already has distroForwardPendingMax requests pending.
   */
  enqueue(to: string, request: ForwardRequest): Promise<ForwardResponse> {
    if (this.closed) throw new CairnError('CAIRN_DISTRO_UNAVAILABLE', 'the distro node is closed');
    const limits = this.options.limits;
    let queue = this.queues.get(to);
    if (queue === undefined) this.queues.set(to, (queue = new PeerQueue(to)));
    if (queue.pending >= limits.distroForwardPendingMax) {
      this.options.onOverflow?.(to);
      throw new CairnError('CAIRN_DISTRO_UNAVAILABLE', `${queue.pending} requests are already pending to ${to}, the most this member queues`);
    }
    const bytes = forwardRequestBytesEstimate(request);
    if (queue.requests.length > 0 && queue.bytes + bytes > limits.distroMessageBytesMax) this.flush(queue);
    const target = queue;
    const promise = new Promise<ForwardResponse>((resolve, reject) => {
      target.resolves.push(resolve);
      target.rejects.push(reject);
    });
    queue.requests.push(request);
    queue.bytes += bytes;
    queue.pending++;
    if (queue.requests.length >= limits.distroForwardBatchEntriesMax || queue.inFlight === 0) this.flush(queue);
    else if (queue.timer === null) queue.timer = setTimeout(this.flushQueue, limits.distroForwardBatchDelayMs, queue);
    return promise;
  }

  /** pendingTo is the number of requests queued or in flight to `to`. */
  pendingTo(to: string): number {
    return this.queues.get(to)?.pending ?? 0;
  }

  /** close fails every queued request (not sent) and refuses new ones; calls in flight still settle theirs. */
  close(): void {
    this.closed = true;
    for (const queue of this.queues.values()) {
      if (queue.timer !== null) clearTimeout(queue.timer);
      queue.timer = null;
      const rejects = queue.rejects;
      queue.pending -= rejects.length;
      queue.requests = [];
      queue.resolves = [];
      queue.rejects = [];
      queue.bytes = 0;
      const error = new DistroCallError('the distro node is closed', true);
      for (const reject of rejects) reject(error);
    }
  }

  private flush(queue: PeerQueue): void {
    if (queue.timer !== null) {
      clearTimeout(queue.timer);
      queue.timer = null;
    }
    const requests = queue.requests;
    if (requests.length === 0) return;
    const resolves = queue.resolves;
    const rejects = queue.rejects;
    queue.requests = [];
    queue.resolves = [];
    queue.rejects = [];
    queue.bytes = 0;
    let call: Promise<readonly ForwardResponse[]>;
    queue.inFlight++;
    const sentAtMs = this.options.now();
    try {
      call = this.options.send(queue.peer, requests, sentAtMs);
    } catch (error) {
      call = Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    call.then((responses) => {
      this.settled(queue);
      queue.pending -= requests.length;
      if (responses.length !== requests.length) {
        this.fail(queue, requests.length, rejects, new DistroCallError(`ForwardBatch to ${queue.peer}: ${responses.length} responses for ${requests.length} requests`, false, false, sentAtMs));
        return;
      }
      this.options.onBatch?.(queue.peer, requests.length, null);
      for (let i = 0; i < resolves.length; i++) resolves[i]!(responses[i]!);
    }, (error: unknown) => {
      this.settled(queue);
      queue.pending -= requests.length;
      const failure = error instanceof DistroCallError ? new DistroCallError(error.message, error.notSent, error.unimplemented, sentAtMs)
        : new DistroCallError(`ForwardBatch to ${queue.peer} failed: ${error instanceof Error ? error.message : String(error)}`, false, false, sentAtMs);
      this.fail(queue, requests.length, rejects, failure);
    });
  }

  /** settled ends a call: what gathered while the peer's last call was in flight leaves now. */
  private settled(queue: PeerQueue): void {
    queue.inFlight--;
    if (queue.inFlight === 0 && queue.requests.length > 0 && !this.closed) this.flush(queue);
  }

  private fail(queue: PeerQueue, size: number, rejects: ReadonlyArray<(error: Error) => void>, error: DistroCallError): void {
    this.options.onBatch?.(queue.peer, size, error);
    for (const reject of rejects) reject(error);
  }
}
