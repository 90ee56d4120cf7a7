// memory-transport: the in-process twin of the gRPC peer transport (STYLE.md §2), for driver tests.
//
// A MemoryNetwork connects MemoryTransports by NodeId. It keeps the contract of GrpcPeerTransport: send() never
// blocks, each (sender, receiver) pair is a FIFO with the same bounded queue (overflow drops the newest message and
// counts it), delivery is asynchronous (one setImmediate turn, like a socket), a receiver accepts only messages
// addressed to it, and a sender hears onUnreachable when its messages cannot be delivered. Every message and every
// forwarded write is encoded and decoded with src/replica/peer-codec.ts on the way, so tests that use this twin
// also exercise the codec and its validation.
//
// Faults: cut(from, to) drops everything on one direction of a link until heal(from, to); a closed or not yet
// started transport is unreachable. A forward over a cut link, or to a member that is not listening, is refused
// before it is sent (CAIRN_NO_LEADER); one whose answer is lost on the way back, or that outlives its deadline,
// is CAIRN_OUTCOME_UNKNOWN, as over gRPC.
import { assert } from '../assert.ts';
import type { Message, NodeId } from '../raft/types.ts';
import type { GrpcTransportLimits, PeerTransportEvent } from './grpc-transport.ts';
import { peerTransportEvents } from './grpc-transport.ts';
import {
  decodeForwardRequest,
  decodeForwardResponse,
  decodeCheckpointsRequest,
  decodeCheckpointsResponse,
  decodeHelloRequest,
  decodeHelloResponse,
  encodeCheckpointsRequest,
  encodeCheckpointsResponse,
  encodeHelloRequest,
  encodeHelloResponse,
  decodeRaftBatch,
  encodeForwardRequest,
  encodeForwardResponse,
  encodeRaftBatch,
  encodeRaftMessage,
  raftBatchFramedBytes,
} from './peer-codec.ts';
import type { ForwardRequest, ForwardResponse, PeerHandlers, PeerHello, PeerTransport } from './transport.ts';
import type { PeerCheckpoints } from './checkpoints.ts';

/** MemoryNetwork is a set of in-process members and the state of the links between them. */
export class MemoryNetwork {
  /** limits are shared by every transport of the network, as by the members of a real cluster. */
  readonly limits: GrpcTransportLimits;
  private readonly members = new Map<NodeId, MemoryTransport>();
  private readonly cuts = new Set<string>();

  constructor(limits: GrpcTransportLimits) {
    this.limits = limits;
  }

  /** transport creates the transport of member `id`; it joins the network when started. */
  transport(id: NodeId, options: { onEvent?: (event: PeerTransportEvent) => void } = {}): MemoryTransport {
    return new MemoryTransport(this, id, options.onEvent ?? null);
  }

  /** cut drops every message and forward from `from` to `to` (one direction) until heal(). */
  cut(from: NodeId, to: NodeId): void {
    this.cuts.add(linkKey(from, to));
  }

  /** heal restores the link from `from` to `to`. */
  heal(from: NodeId, to: NodeId): void {
    this.cuts.delete(linkKey(from, to));
  }

  /** isolate cuts every link to and from `id` among the listening members. */
  isolate(id: NodeId): void {
    for (const other of this.members.keys()) {
      if (other === id) continue;
      this.cut(id, other);
      this.cut(other, id);
    }
  }

  /** healAll restores every link. */
  healAll(): void {
    this.cuts.clear();
  }

  /** reachable tells whether a message from `from` would now reach a listening `to`. */
  reachable(from: NodeId, to: NodeId): boolean {
    return !this.cuts.has(linkKey(from, to)) && this.members.has(to);
  }

  /** listening returns the started transport of `id`, if any (internal to this module's transports). */
  listening(id: NodeId): MemoryTransport | undefined {
    return this.members.get(id);
  }

  /** join registers a started transport; leave removes it. */
  join(transport: MemoryTransport): void {
    assert(!this.members.has(transport.self), `memory network: ${transport.self} is already listening`);
    this.members.set(transport.self, transport);
  }

  /** leave unregisters a closed transport. */
  leave(transport: MemoryTransport): void {
    if (this.members.get(transport.self) === transport) this.members.delete(transport.self);
  }
}

function linkKey(from: NodeId, to: NodeId): string {
  return `${from}\u0000${to}`;
}

/** Outbox is one peer's FIFO of encoded messages waiting for the next delivery turn. */
interface Outbox {
  readonly messages: Uint8Array[];
  bytes: number;
  scheduled: boolean;
  /** unreachableReported is set once undeliverable messages were reported, until a delivery succeeds. */
  unreachableReported: boolean;
}

/** MemoryTransport is one member's PeerTransport on a MemoryNetwork. */
export class MemoryTransport implements PeerTransport {
  /** self is this member's NodeId. */
  readonly self: NodeId;
  private readonly network: MemoryNetwork;
  private readonly onEvent: ((event: PeerTransportEvent) => void) | null;
  private readonly outboxes = new Map<NodeId, Outbox>();
  private readonly counts = new Map<PeerTransportEvent, number>();
  private handlers: PeerHandlers | null = null;
  private closed = false;

  constructor(network: MemoryNetwork, self: NodeId, onEvent: ((event: PeerTransportEvent) => void) | null) {
    this.network = network;
    this.self = self;
    this.onEvent = onEvent;
    for (const event of peerTransportEvents) this.counts.set(event, 0);
  }

  /** counters returns how often each event happened, with the names GrpcPeerTransport uses. */
  counters(): Readonly<Record<PeerTransportEvent, number>> {
    return Object.fromEntries(this.counts) as Record<PeerTransportEvent, number>;
  }

  /** queueDepth returns how many messages to `peer` wait for the next delivery turn. */
  queueDepth(peer: NodeId): number {
    return this.outboxes.get(peer)?.messages.length ?? 0;
  }

  private count(event: PeerTransportEvent): void {
    this.counts.set(event, (this.counts.get(event) ?? 0) + 1);
    this.onEvent?.(event);
  }

  /** start joins the network and begins delivering to `handlers`. */
  start(handlers: PeerHandlers): Promise<void> {
    assert(this.handlers === null && !this.closed, 'memory transport: start() called twice or after close()');
    this.handlers = handlers;
    this.network.join(this);
    return Promise.resolve();
  }

  /** send queues `message` for delivery to its `to` member on the next turn; a full queue drops and counts it. */
  send(message: Message): void {
    assert(message.from === this.self, `memory transport: sending a message from ${message.from} as ${this.self}`);
    assert(message.to !== this.self, 'memory transport: sending a message to self');
    if (this.closed) return;
    const outbox = this.outboxes.get(message.to);
    if (outbox === undefined) {
      this.count('send_dropped_unknown_peer');
      return;
    }
    const bytes = encodeRaftMessage(message);
    const { peerSendQueueMessagesMax, peerSendQueueBytesMax, peerMessageBytesMax } = this.network.limits;
    if (raftBatchFramedBytes(bytes.length) > peerMessageBytesMax) {
      this.count('send_dropped_too_large');
      return;
    }
    if (outbox.messages.length >= peerSendQueueMessagesMax || outbox.bytes + bytes.length > peerSendQueueBytesMax) {
      this.count('send_dropped_queue_full');
      this.reportUnreachable(message.to, outbox);
      return;
    }
    this.count('message_queued');
    outbox.messages.push(bytes);
    outbox.bytes += bytes.length;
    if (!outbox.scheduled) {
      outbox.scheduled = true;
      setImmediate(() => this.deliver(message.to, outbox));
    }
  }

  /** deliver hands one peer's queued messages, as one batch, to the peer if the link is up, else reports it. */
  private deliver(peer: NodeId, outbox: Outbox): void {
    outbox.scheduled = false;
    const messages = outbox.messages.splice(0);
    outbox.bytes = 0;
    if (this.closed || messages.length === 0 || this.outboxes.get(peer) !== outbox) return;
    const target = this.network.listening(peer);
    if (target === undefined || !this.network.reachable(this.self, peer)) {
      this.count('stream_failed');
      this.reportUnreachable(peer, outbox);
      return;
    }
    outbox.unreachableReported = false;
    this.count('batch_sent');
    target.receive(encodeRaftBatch(messages));
  }

  private reportUnreachable(peer: NodeId, outbox: Outbox): void {
    if (outbox.unreachableReported) return;
    outbox.unreachableReported = true;
    this.handlers?.onUnreachable(peer);
  }

  /** receive validates a batch from the network and delivers its messages addressed to this member, in order. */
  receive(batch: Uint8Array): void {
    const handlers = this.handlers;
    if (handlers === null || this.closed) return;
    const { messages, errors } = decodeRaftBatch(batch, this.network.limits);
    for (let i = 0; i < errors.length; i++) this.count('receive_dropped_invalid');
    for (const message of messages) {
      if (message.to !== this.self) {
        this.count('receive_dropped_misaddressed');
        continue;
      }
      this.count('message_received');
      handlers.onMessage(message);
    }
  }

  /** forward sends a client write to `to` through the codec and waits at most request.deadlineMs for its answer. */
  async forward(to: NodeId, request: ForwardRequest): Promise<ForwardResponse> {
    if (this.closed) return refusal('CAIRN_SHUTTING_DOWN', `${this.self} is shutting down`);
    const target = this.network.listening(to);
    if (!this.outboxes.has(to) || target === undefined || !this.network.reachable(this.self, to) || !(request.deadlineMs > 0)) {
      this.count('forward_not_sent');
      return refusal('CAIRN_NO_LEADER', `peer ${to} is unreachable`);
    }
    this.count('forward_sent');
    const bytes = await withDeadline(target.serveForward(this.self, encodeForwardRequest(request)), request.deadlineMs);
    if (bytes === null || this.closed || !this.network.reachable(to, this.self)) {
      this.count('forward_outcome_unknown');
      return refusal('CAIRN_OUTCOME_UNKNOWN', `write forwarded to ${to}: no answer before the deadline`);
    }
    const decoded = decodeForwardResponse(bytes, this.network.limits);
    if (decoded.ok) return decoded.value;
    this.count('forward_outcome_unknown');
    return refusal('CAIRN_OUTCOME_UNKNOWN', `write forwarded to ${to}: the answer was invalid`);
  }

  /** serveForward decodes a forwarded write and answers it with the handler's encoded response. */
  async serveForward(from: NodeId, bytes: Uint8Array): Promise<Uint8Array> {
    const handlers = this.handlers;
    if (handlers === null || this.closed) return encodeForwardResponse(refusal('CAIRN_SHUTTING_DOWN', `${this.self} is shutting down`));
    const decoded = decodeForwardRequest(bytes, this.network.limits);
    if (!decoded.ok) {
      this.count('forward_invalid');
      return encodeForwardResponse({ ok: false, code: 'CAIRN_INVALID_ARGUMENT', message: decoded.error.message, leaderHint: null });
    }
    this.count('forward_served');
    try {
      return encodeForwardResponse(await handlers.onForward(from, decoded.value));
    } catch {
      return encodeForwardResponse(refusal('CAIRN_INTERNAL', 'the leader failed while handling the forwarded write'));
    }
  }

  /** hello asks `to` what it knows of this member, through the codec; null when unreachable. */
  async hello(to: NodeId, timeoutMs: number): Promise<PeerHello | null> {
    const target = this.network.listening(to);
    if (this.closed || target === undefined || !this.network.reachable(this.self, to) || !this.network.reachable(to, this.self)) return null;
    const bytes = await withDeadline(target.serveHello(encodeHelloRequest(this.self)), timeoutMs);
    return bytes === null ? null : decodeHelloResponse(bytes);
  }

  /** serveHello answers a Hello with the handler's encoded answer; null when not served. */
  async serveHello(request: Uint8Array): Promise<Uint8Array | null> {
    const from = decodeHelloRequest(request);
    const onHello = this.handlers?.onHello;
    if (from === null || onHello === undefined || this.closed) return null;
    return encodeHelloResponse(await onHello(from));
  }

  /** checkpoints asks `to` for its checkpoint digests, through the codec; null when unreachable or not served. */
  async checkpoints(to: NodeId, timeoutMs: number): Promise<PeerCheckpoints | null> {
    const target = this.network.listening(to);
    if (this.closed || target === undefined || !this.network.reachable(this.self, to) || !this.network.reachable(to, this.self)) return null;
    const bytes = await withDeadline(Promise.resolve(target.serveCheckpoints(encodeCheckpointsRequest(this.self))), timeoutMs);
    if (bytes === null) return null;
    const decoded = decodeCheckpointsResponse(bytes);
    return decoded.ok ? decoded.value : null;
  }

  /** serveCheckpoints answers Checkpoints with the handler's encoded answer; null when not served. */
  serveCheckpoints(request: Uint8Array): Uint8Array | null {
    const from = decodeCheckpointsRequest(request);
    const onCheckpoints = this.handlers?.onCheckpoints;
    const answer = from === null || onCheckpoints === undefined || this.closed ? null : onCheckpoints(from);
    return answer === null ? null : encodeCheckpointsResponse(answer);
  }

  /** setPeers opens an outbox per new member and drops those of members no longer listed. */
  setPeers(peers: readonly NodeId[]): void {
    if (this.closed) return;
    const wanted = new Set(peers.filter((peer) => peer !== this.self));
    for (const peer of this.outboxes.keys()) {
      if (!wanted.has(peer)) this.outboxes.delete(peer);
    }
    for (const peer of wanted) {
      if (!this.outboxes.has(peer)) this.outboxes.set(peer, { messages: [], bytes: 0, scheduled: false, unreachableReported: false });
    }
  }

  /** close leaves the network and drops whatever is queued. */
  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.outboxes.clear();
      this.network.leave(this);
    }
    return Promise.resolve();
  }
}

/** withDeadline resolves with what `answer` resolves to, or null once `deadlineMs` has passed. */
function withDeadline<T>(answer: Promise<T>, deadlineMs: number): Promise<T | null> {
  return new Promise<T | null>((resolve, reject) => {
    const timer = setTimeout(() => resolve(null), deadlineMs);
    answer.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}

function refusal(code: string, message: string): ForwardResponse {
  return { ok: false, code, message, leaderHint: null };
}
