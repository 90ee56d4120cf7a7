// grpc-transport: the PeerTransport of a real member, over @grpc/grpc-js on the peer port (DESIGN.md: :7848),
// with the protobuf messages of proto/cairn/peer/v1/peer.proto.
//
// Outbound, each peer has a PeerLink: a bounded queue of encoded messages (limits.peerSendQueueMessagesMax and
// peerSendQueueBytesMax; overflow drops the newest message and counts it) drained into a single client-streaming
// Stream call, so messages to one peer arrive in the order they were sent. Whatever is queued when the link
// flushes goes out as one RaftBatch of at most limits.messageBytesMax (always at least one message). The link
// honours the stream's back-pressure (write() returning false waits for 'drain'), and holds writes until the
// server's response headers arrive, which proves the stream is established; messages therefore do not pile into a
// call that is still connecting to a dead peer. A call that fails or ends is reported to the driver
// (handlers.onUnreachable, so the core probes the peer again) and replaced after an exponential backoff with
// jitter. The links only open calls while they have something to send.
//
// Inbound, the Stream handler decodes every message of every batch on its own, drops (and counts) any that is
// invalid or not addressed to this member, and hands the rest to handlers.onMessage in arrival order. The port takes
// at most limits.peerConnectionsMax connections at once (capped-grpc-server.ts): one more is closed at once, counted
// (connection_refused) and logged at most once per limits.connectionRefusalLogIntervalMs.
//
// Forwarded writes go through a ForwardQueue (forward-queue.ts): the writes bound for one peer in one turn of the
// event loop leave in one ForwardBatch call, a lone write in a Forward call. Both are unary calls bounded by the
// clients' deadlines (a batch by the latest; a write whose own deadline comes first is answered at it). Their
// failures are mapped so that a client never hears "certainly not written" about a write that may have reached the
// leader (DESIGN.md: an outcome that is unknown is reported as unknown): a call that never left (the peer's channel
// never became ready) is CAIRN_NO_LEADER (retryable); a call that left and then failed or timed out is
// CAIRN_OUTCOME_UNKNOWN. A leader that does not serve ForwardBatch (a release before it) answers UNIMPLEMENTED before
// reading the call, so its writes certainly were not: they go again in Forward calls, and the peer is sent no batch
// for forwardBatchRetryMs.
import {
  Client,
  Metadata,
  connectivityState,
  credentials,
  status as grpcStatus,
  type ChannelInterface,
  type ChannelOptions,
  type ClientWritableStream,
  type ServerReadableStream,
  type ServerUnaryCall,
  type ServerWritableStream,
  type ServiceError,
  type sendUnaryData,
  type ServiceDefinition,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';

import { assert } from '../assert.ts';
import type { Limits } from '../limits.ts';
import { bindPeerSource } from './source-address.ts';
import { CappedGrpcServer } from './capped-grpc-server.ts';
import type { Message, NodeId } from '../raft/types.ts';
import {
  decodeBackupRequest,
  encodeBackupChunk,
  decodeForwardBatchRequest,
  decodeForwardBatchResponse,
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
  encodeForwardBatchRequest,
  encodeForwardBatchResponse,
  encodeForwardRequest,
  encodeForwardResponse,
  encodeRaftBatch,
  encodeRaftMessage,
  nodeIdCharsMax,
  raftBatchFramedBytes,
  type PeerDecodeError,
} from './peer-codec.ts';
import type { ForwardRequest, ForwardResponse, PeerHandlers, PeerHello, PeerTransport } from './transport.ts';
import type { PeerCheckpoints } from './checkpoints.ts';
import { ForwardQueue } from './forward-queue.ts';
import { guardService, isPeerProtocolRefusal, peerCallMetadata, peerProtocolVersion, type ProtocolGuard } from './peer-protocol.ts';
import { grpcDeadline, monotonicMs } from '../clock.ts';
import { isCairnError } from '../errors.ts';

/** PeerTransportEvent names what a peer transport counts; a metrics hook turns each into a counter. */
export type PeerTransportEvent =
  | 'message_queued'
  | 'batch_sent'
  | 'send_dropped_queue_full'
  | 'send_dropped_too_large'
  | 'send_dropped_unknown_peer'
  | 'stream_connected'
  | 'channel_replaced'
  | 'stream_failed'
  | 'message_received'
  | 'receive_dropped_invalid'
  | 'receive_dropped_misaddressed'
  | 'forward_sent'
  | 'forward_not_sent'
  | 'forward_outcome_unknown'
  | 'forward_served'
  | 'forward_invalid'
  /** forward_batch_sent counts ForwardBatch calls made (forward_sent counts their writes too). */
  | 'forward_batch_sent'
  /** forward_batch_served counts ForwardBatch calls answered (forward_served counts their writes too). */
  | 'forward_batch_served'
  /** forward_batch_unsupported counts ForwardBatch calls a peer answered UNIMPLEMENTED (a release before it). */
  | 'forward_batch_unsupported'
  | 'checkpoints_invalid'
  | 'peer_protocol_refused'
  /** connection_refused counts connections to the peer port closed at once because peerConnectionsMax were open. */
  | 'connection_refused';

/** peerTransportEvents lists every PeerTransportEvent, e.g. to register the counters up front. */
export const peerTransportEvents: readonly PeerTransportEvent[] = Object.freeze([
  'message_queued',
  'batch_sent',
  'send_dropped_queue_full',
  'send_dropped_too_large',
  'send_dropped_unknown_peer',
  'stream_connected',
  'channel_replaced',
  'stream_failed',
  'message_received',
  'receive_dropped_invalid',
  'receive_dropped_misaddressed',
  'forward_sent',
  'forward_not_sent',
  'forward_outcome_unknown',
  'forward_served',
  'forward_invalid',
  'forward_batch_sent',
  'forward_batch_served',
  'forward_batch_unsupported',
  'checkpoints_invalid',
  'peer_protocol_refused',
  'connection_refused',
]);

/** PeerLogger is the logging a transport needs; a pino logger fits it. */
export interface PeerLogger {
  info(object: object, message: string): void;
  warn(object: object, message: string): void;
  error(object: object, message: string): void;
}

/** GrpcTransportLimits is the subset of src/limits.ts the gRPC transport enforces. */
export type GrpcTransportLimits = Pick<
  Limits,
  | 'messageBytesMax'
  | 'snapshotChunkBytes'
  | 'entryBytesMax'
  | 'peerMessageBytesMax'
  | 'peerStreamsPerConnectionMax'
  | 'peerConnectionsMax'
  | 'connectionRefusalLogIntervalMs'
  | 'peerSendQueueMessagesMax'
  | 'peerSendQueueBytesMax'
  | 'forwardBatchRequestsMax'
  | 'proposalsPendingMax'
>;

/** GrpcTransportTuning holds the transport's timings; grpcTransportTuning has the production values. */
export interface GrpcTransportTuning {
  /** reconnectBackoffMsMin is the delay before the first reconnection after a stream fails (before jitter). */
  readonly reconnectBackoffMsMin: number;
  /** reconnectBackoffMsMax caps the doubling delay: a peer that comes back is reached again within about this. */
  readonly reconnectBackoffMsMax: number;
  /** keepaliveTimeMs is the HTTP/2 ping interval; with keepaliveTimeoutMs it bounds how long a dead peer goes unnoticed. */
  readonly keepaliveTimeMs: number;
  /** keepaliveTimeoutMs is how long a ping may go unanswered before the connection is dropped. */
  readonly keepaliveTimeoutMs: number;
  /**
   * streamEstablishTimeoutMs bounds the wait for a new Stream call's response headers; a peer that swallows packets
   * (no connection refused) would otherwise hold the call for gRPC's 20 s connect timeout, unreported.
   */
  readonly streamEstablishTimeoutMs: number;
  /** closeGraceMs bounds how long close() lets in-flight calls finish before it cuts them. */
  readonly closeGraceMs: number;
  /** forwardBatchRetryMs is how long a peer that answered ForwardBatch with UNIMPLEMENTED is sent Forward calls only. */
  readonly forwardBatchRetryMs: number;
  /**
   * forwardEarlyAnswerSlackMs: a write of a batch whose deadline comes this much before the batch's (the latest of its
   * writes') gets a timer of its own, so that it is answered at its deadline rather than with the batch.
   */
  readonly forwardEarlyAnswerSlackMs: number;
}

/**
 * grpcTransportTuning: reconnect after 50 ms, doubling to at most 1 s (jittered to [50%, 100%]), so a restarted peer
 * is reached again well within one election timeout (1-2 s) and a dead one costs one connection attempt a second;
 * ping every second and give up after one more, so a dead peer is noticed within about 2 s, and allow a new stream
 * as long to be established; let in-flight calls finish for up to 1 s on close; offer ForwardBatch again to a peer that
 * refused it a minute later (it may have been upgraded); answer a batched write 50 ms or more before its batch's
 * deadline on its own timer.
 */
export const grpcTransportTuning: GrpcTransportTuning = Object.freeze({
  reconnectBackoffMsMin: 50,
  reconnectBackoffMsMax: 1000,
  keepaliveTimeMs: 1000,
  keepaliveTimeoutMs: 1000,
  streamEstablishTimeoutMs: 2000,
  closeGraceMs: 1000,
  forwardBatchRetryMs: 60_000,
  forwardEarlyAnswerSlackMs: 50,
});

/** GrpcPeerTransportOptions configures a GrpcPeerTransport. */
export interface GrpcPeerTransportOptions {
  /** self is this member's NodeId; only messages addressed to it are accepted. */
  readonly self: NodeId;
  readonly listenHost: string;
  /** listenPort is the peer port to listen on; 0 picks a free one (see `port` after start). */
  readonly listenPort: number;
  /** peerAddressOf returns "host:port" of a member's peer listener (production: host:(httpPort - 1000)). */
  peerAddressOf(id: NodeId): string;
  readonly limits: GrpcTransportLimits;
  readonly logger: PeerLogger;
  /** onEvent is called once per counted event (metrics). */
  readonly onEvent?: (event: PeerTransportEvent) => void;
  readonly tuning?: Partial<GrpcTransportTuning>;
  /** services are further gRPC services served on the peer port beside Peer (e.g. Distro, src/ap/grpc-distro.ts). */
  readonly services?: readonly PeerServiceRegistration[];
  /** protocolVersion is the Peer service's protocol this member speaks (peer-protocol.ts); only tests set another. */
  readonly protocolVersion?: number;
  /** serveForwardBatch false leaves ForwardBatch unserved, as a release before it did; only tests set it. */
  readonly serveForwardBatch?: boolean;
}

/**
 * PeerServiceRegistration is one further service of the peer server: its definition, implementation, and the protocol
 * version its callers must speak (peer-protocol.ts), under `protocol`'s name.
 */
export interface PeerServiceRegistration {
  readonly definition: ServiceDefinition;
  readonly implementation: UntypedServiceImplementation;
  readonly protocol: { readonly service: string; readonly version: number };
}

const STREAM_PATH = '/cairn.peer.v1.Peer/Stream';
const FORWARD_PATH = '/cairn.peer.v1.Peer/Forward';
const FORWARD_BATCH_PATH = '/cairn.peer.v1.Peer/ForwardBatch';
/** forwardBatchInvalidPrefix starts the details of a ForwardBatch refused as a whole (INVALID_ARGUMENT): nothing was written. */
const forwardBatchInvalidPrefix = 'invalid forward batch';
const HELLO_PATH = '/cairn.peer.v1.Peer/Hello';
const CHECKPOINTS_PATH = '/cairn.peer.v1.Peer/Checkpoints';
/** BACKUP_PATH is the Backup method (peer.proto): `cairn backup save --from` calls it. */
export const BACKUP_PATH = '/cairn.peer.v1.Peer/Backup';
/** backupChunkBytesMax is the image bytes per chunk of a Backup stream (well under peerMessageBytesMax). */
const backupChunkBytesMax = 1024 * 1024;
/** FROM_METADATA_KEY names the sending member on every call. */
const FROM_METADATA_KEY = 'cairn-from';
const EMPTY = new Uint8Array(0);

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
function fromBuffer(bytes: Buffer): Buffer {
  return bytes;
}

/** hostPort joins a host and a port, bracketing an IPv6 host. */
function hostPort(host: string, port: number): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** isPowerOfTwo keeps repeated warnings logarithmic: the 1st, 2nd, 4th, 8th... occurrence is logged. */
function isPowerOfTwo(count: number): boolean {
  return count > 0 && (count & (count - 1)) === 0;
}

/** LinkContext is what a PeerLink needs from its transport. */
interface LinkContext {
  readonly self: NodeId;
  readonly protocolVersion: number;
  readonly limits: GrpcTransportLimits;
  readonly tuning: GrpcTransportTuning;
  readonly logger: PeerLogger;
  readonly channelOptions: ChannelOptions;
  count(event: PeerTransportEvent): void;
  reportUnreachable(peer: NodeId): void;
}

/**
 * PeerLink is the outbound side towards one peer: its queue, its Stream call, its reconnection schedule and the
 * gRPC client (one channel, one HTTP/2 connection) that Forward calls share.
 * Invariants: `established` implies `call !== null`; `retryTimer !== null` implies `call === null`;
 * queuedBytes is the sum of the queued messages' lengths.
 */
class PeerLink {
  private readonly queue: Uint8Array[] = [];
  private head = 0;
  private queuedBytes = 0;
  private client: Client | null = null;
  private call: ClientWritableStream<Uint8Array> | null = null;
  private established = false;
  private waitingForDrain = false;
  private flushScheduled = false;
  /** failures counts consecutive failed calls; it sets the backoff and is reset when a call is established. */
  private failures = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  private establishTimer: NodeJS.Timeout | null = null;
  /** overflowReported is set once a full queue has been reported unreachable, until the queue empties again. */
  private overflowReported = false;
  private closed = false;

  constructor(
    readonly peer: NodeId,
    readonly address: string,
    private readonly context: LinkContext,
  ) {}

  /** queueDepth is the number of messages waiting to be written. */
  get queueDepth(): number {
    return this.queue.length - this.head;
  }

  /** enqueue queues one encoded RaftMessage, or drops and counts it when the queue is full. */
  enqueue(bytes: Uint8Array): void {
    if (this.closed) return;
    const { peerSendQueueMessagesMax, peerSendQueueBytesMax } = this.context.limits;
    if (this.queueDepth >= peerSendQueueMessagesMax || this.queuedBytes + bytes.length > peerSendQueueBytesMax) {
      this.context.count('send_dropped_queue_full');
      if (!this.overflowReported) {
        this.overflowReported = true;
        this.context.logger.warn({ peer: this.peer, queued: this.queueDepth, queuedBytes: this.queuedBytes }, 'peer send queue full; dropping messages');
        this.context.reportUnreachable(this.peer);
      }
      return;
    }
    this.queue.push(bytes);
    this.queuedBytes += bytes.length;
    this.context.count('message_queued');
    if (this.call === null && this.retryTimer === null) this.openStream();
    else this.scheduleFlush();
  }

  /** getClient returns the peer's gRPC client, creating it on first use. */
  getClient(): Client {
    assert(!this.closed, `peer link to ${this.peer} used after close`);
    this.client ??= new Client(this.address, credentials.createInsecure(), this.context.channelOptions);
    return this.client;
  }

  private openStream(): void {
    const metadata = peerCallMetadata(FROM_METADATA_KEY, this.context.self, this.context.protocolVersion);
    const call = this.getClient().makeClientStreamRequest<Uint8Array, Buffer>(
      STREAM_PATH, toBuffer, fromBuffer, metadata, {}, (error) => this.onStreamEnd(call, error),
    );
    // The response headers come first from our server's Stream handler: from then on the stream is established.
    call.on('metadata', () => {
      if (this.call !== call) return;
      this.clearEstablishTimer();
      this.established = true;
      if (this.failures > 0) this.context.logger.info({ peer: this.peer, failures: this.failures }, 'peer stream re-established');
      this.failures = 0;
      this.context.count('stream_connected');
      this.scheduleFlush();
    });
    // Failures arrive through the status callback; this listener keeps a stray stream error from being unhandled.
    call.on('error', () => {});
    this.call = call;
    this.established = false;
    this.waitingForDrain = false;
    // A call that is not established in time is cancelled, which fails it like any other (see onStreamEnd). The
    // client goes with it: its channel may be stuck in a TCP connect whose SYNs a partition swallowed, and the
    // kernel retries those SYNs at growing intervals (1, 2, 4, 8 s...) under gRPC's 20 s connect timeout, so after
    // the partition heals a reused channel could stay disconnected for many seconds. A fresh channel connects at once.
    this.establishTimer = setTimeout(() => {
      this.establishTimer = null;
      if (this.call !== call || this.established) return;
      call.cancel();
      this.replaceClient();
    }, this.context.tuning.streamEstablishTimeoutMs);
    this.establishTimer.unref();
  }

  /** replaceClient closes the peer's client so the next call opens a new channel (and a new TCP connection). */
  private replaceClient(): void {
    this.context.count('channel_replaced');
    this.client?.close();
    this.client = null;
  }

  private clearEstablishTimer(): void {
    if (this.establishTimer !== null) clearTimeout(this.establishTimer);
    this.establishTimer = null;
  }

  private onStreamEnd(call: ClientWritableStream<Uint8Array>, error: ServiceError | null): void {
    if (this.call !== call) return;
    this.clearEstablishTimer();
    this.call = null;
    this.established = false;
    this.waitingForDrain = false;
    if (this.closed) return;
    this.context.count('stream_failed');
    if (this.failures === 0) {
      const detail = error === null ? { peer: this.peer, status: 'OK' } : { peer: this.peer, code: error.code, details: error.details };
      if (isPeerProtocolRefusal(error)) this.context.logger.error(detail, 'the peer runs another peer protocol version and refuses this member; retrying with backoff');
      else this.context.logger.warn(detail, 'peer stream ended; reconnecting with backoff');
    }
    this.failures++;
    this.context.reportUnreachable(this.peer);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (!this.closed && this.queueDepth > 0) this.openStream();
    }, this.backoffMs());
    this.retryTimer.unref();
  }

  /** backoffMs doubles from reconnectBackoffMsMin up to reconnectBackoffMsMax, jittered down to half. */
  private backoffMs(): number {
    const { reconnectBackoffMsMin, reconnectBackoffMsMax } = this.context.tuning;
    const exponent = Math.min(this.failures - 1, 30);
    const ceiling = Math.min(reconnectBackoffMsMax, reconnectBackoffMsMin * 2 ** exponent);
    return Math.round(ceiling * (0.5 + 0.5 * Math.random()));
  }

  /** flushNow writes the queue at once (a no-op while the stream is not established or waits for 'drain'). */
  flushNow(): void {
    if (this.queueDepth > 0) this.flush();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || !this.established) return;
    this.flushScheduled = true;
    // One turn of the event loop lets a sender queue several messages, which then share a batch (the Raft driver
    // calls flush() after a Ready's messages instead of waiting for this turn).
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    const call = this.call;
    if (call === null || !this.established || this.waitingForDrain || this.closed) return;
    while (this.queueDepth > 0) {
      const batch = this.takeBatch();
      this.context.count('batch_sent');
      if (!call.write(batch)) {
        this.waitingForDrain = true;
        call.once('drain', () => {
          if (this.call !== call) return;
          this.waitingForDrain = false;
          this.flush();
        });
        return;
      }
    }
  }

  /** takeBatch removes queued messages up to messageBytesMax of framed bytes (at least one) and frames them. */
  private takeBatch(): Uint8Array {
    const taken: Uint8Array[] = [];
    let bytes = 0;
    while (this.head < this.queue.length) {
      const next = this.queue[this.head];
      assert(next !== undefined, 'peer queue hole');
      const framed = raftBatchFramedBytes(next.length);
      if (taken.length > 0 && bytes + framed > this.context.limits.messageBytesMax) break;
      taken.push(next);
      bytes += framed;
      this.queuedBytes -= next.length;
      this.head++;
    }
    if (this.head === this.queue.length) {
      this.queue.length = 0;
      this.head = 0;
      this.overflowReported = false;
    } else if (this.head >= 1024) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
    return encodeRaftBatch(taken);
  }

  /** close drops the queue, cancels the stream and closes the client; in-flight Forward calls are cancelled. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.clearEstablishTimer();
    const call = this.call;
    this.call = null;
    this.established = false;
    call?.cancel();
    this.queue.length = 0;
    this.head = 0;
    this.queuedBytes = 0;
    this.client?.close();
    this.client = null;
  }

  /** isClosed tells whether close() was called. */
  get isClosed(): boolean {
    return this.closed;
  }
}

/** InboundStream is one Stream call from a peer, with the callback that ends it. */
interface InboundStream {
  readonly call: ServerReadableStream<Buffer, Uint8Array>;
  readonly callback: sendUnaryData<Uint8Array>;
}

/** GrpcPeerTransport is the PeerTransport of a real member: gRPC streams per peer, forwarding by unary calls. */
export class GrpcPeerTransport implements PeerTransport {
  private readonly options: GrpcPeerTransportOptions;
  private readonly tuning: GrpcTransportTuning;
  private readonly links = new Map<NodeId, PeerLink>();
  private readonly inbound = new Set<InboundStream>();
  private readonly counts = new Map<PeerTransportEvent, number>();
  private readonly linkContext: LinkContext;
  private handlers: PeerHandlers | null = null;
  private server: CappedGrpcServer | null = null;
  private boundPort = 0;
  private closed = false;
  private backupInFlight = false;
  private readonly protocolVersion: number;
  private readonly forwards: ForwardQueue;
  /** batchRefusedUntil holds, per peer that answered ForwardBatch with UNIMPLEMENTED, until when it gets Forward calls only. */
  private readonly batchRefusedUntil = new Map<NodeId, number>();

  constructor(options: GrpcPeerTransportOptions) {
    assert(options.self.length > 0 && options.self.length <= nodeIdCharsMax, 'transport: invalid self id');
    assert(options.limits.peerMessageBytesMax >= 2 * options.limits.messageBytesMax, 'transport: peerMessageBytesMax < 2 * messageBytesMax');
    this.options = options;
    this.protocolVersion = options.protocolVersion ?? peerProtocolVersion;
    assert(Number.isSafeInteger(this.protocolVersion) && this.protocolVersion >= 1, 'transport: invalid peer protocol version');
    this.tuning = Object.freeze({ ...grpcTransportTuning, ...options.tuning });
    assert(this.tuning.reconnectBackoffMsMin >= 1 && this.tuning.reconnectBackoffMsMin <= this.tuning.reconnectBackoffMsMax, 'transport: invalid backoff');
    for (const event of peerTransportEvents) this.counts.set(event, 0);
    this.linkContext = {
      self: options.self,
      protocolVersion: this.protocolVersion,
      limits: options.limits,
      tuning: this.tuning,
      logger: options.logger,
      channelOptions: this.channelOptions(),
      count: (event) => this.count(event),
      reportUnreachable: (peer) => this.handlers?.onUnreachable(peer),
    };
    this.forwards = new ForwardQueue({
      limits: options.limits,
      sendOne: (to, request) => this.forwardOne(to, request),
      sendBatch: (to, requests, answer) => this.forwardBatch(to, requests, answer),
    });
  }

  /** port is the bound peer port (useful with listenPort 0); 0 before start(). */
  get port(): number {
    return this.boundPort;
  }

  /** counters returns how often each event happened since the transport was created. */
  counters(): Readonly<Record<PeerTransportEvent, number>> {
    return Object.fromEntries(this.counts) as Record<PeerTransportEvent, number>;
  }

  /** queueDepth returns how many messages wait in `peer`'s send queue (0 for an unknown peer). */
  queueDepth(peer: NodeId): number {
    return this.links.get(peer)?.queueDepth ?? 0;
  }

  private count(event: PeerTransportEvent): void {
    this.counts.set(event, (this.counts.get(event) ?? 0) + 1);
    this.options.onEvent?.(event);
  }

  private channelOptions(): ChannelOptions {
    const { peerMessageBytesMax } = this.options.limits;
    return {
      'grpc.max_send_message_length': peerMessageBytesMax,
      'grpc.max_receive_message_length': peerMessageBytesMax,
      'grpc.keepalive_time_ms': this.tuning.keepaliveTimeMs,
      'grpc.keepalive_timeout_ms': this.tuning.keepaliveTimeoutMs,
      'grpc.keepalive_permit_without_calls': 1,
      // The channel's own reconnection follows ours; its default (1 s doubling to 120 s) would keep a restarted
      // peer unreachable for minutes.
      'grpc.initial_reconnect_backoff_ms': this.tuning.reconnectBackoffMsMin,
      'grpc.max_reconnect_backoff_ms': this.tuning.reconnectBackoffMsMax,
      // Retries are the driver's decision (a forwarded write must not be sent twice behind its back).
      'grpc.enable_retries': 0,
      // Each transport owns its connections, so two transports in one process (tests) never share one.
      'grpc.use_local_subchannel_pool': 1,
      // channelz (grpc-js's introspection, which Cairn does not serve) would time-stamp and count every message.
      'grpc.enable_channelz': 0,
    };
  }

  /** start listens on listenHost:listenPort and begins delivering to `handlers`. */
  async start(handlers: PeerHandlers): Promise<void> {
    assert(this.handlers === null && !this.closed, 'transport: start() called twice or after close()');
    this.handlers = handlers;
    const server = new CappedGrpcServer({
      'grpc.max_send_message_length': this.options.limits.peerMessageBytesMax,
      'grpc.max_receive_message_length': this.options.limits.peerMessageBytesMax,
      'grpc.max_concurrent_streams': this.options.limits.peerStreamsPerConnectionMax,
      'grpc.keepalive_time_ms': this.tuning.keepaliveTimeMs,
      'grpc.keepalive_timeout_ms': this.tuning.keepaliveTimeoutMs,
      'grpc.enable_channelz': 0,
    }, {
      listener: 'peer',
      connectionsMax: this.options.limits.peerConnectionsMax,
      refusalLogIntervalMs: this.options.limits.connectionRefusalLogIntervalMs,
      onRefused: () => this.count('connection_refused'),
      logger: this.options.logger,
    });
    // Every method of every service on this port serves only members of this member's version of its protocol
    // (peer-protocol.ts).
    const onRefused = (from: string | null, callerVersion: number | null, method: string, version: number): void => this.refusedProtocol(from, callerVersion, method, version);
    const guard: ProtocolGuard = { service: 'peer', version: this.protocolVersion, self: this.options.self, onRefused };
    server.addService(peerServiceDefinition, guardService({
      Stream: (call: ServerReadableStream<Buffer, Uint8Array>, callback: sendUnaryData<Uint8Array>) => this.serveStream(call, callback),
      Forward: (call: ServerUnaryCall<Buffer, Uint8Array>, callback: sendUnaryData<Uint8Array>) => this.serveForward(call, callback),
      ...(this.options.serveForwardBatch === false ? {} : {
        ForwardBatch: (call: ServerUnaryCall<Buffer, Uint8Array>, callback: sendUnaryData<Uint8Array>) => this.serveForwardBatch(call, callback),
      }),
      Hello: (call: ServerUnaryCall<Buffer, Uint8Array>, callback: sendUnaryData<Uint8Array>) => this.serveHello(call, callback),
      Backup: (call: ServerWritableStream<Buffer, Uint8Array>) => void this.serveBackup(call),
      Checkpoints: (call: ServerUnaryCall<Buffer, Uint8Array>, callback: sendUnaryData<Uint8Array>) => this.serveCheckpoints(call, callback),
    }, guard, FROM_METADATA_KEY, peerServiceDefinition));
    for (const service of this.options.services ?? []) {
      const serviceGuard: ProtocolGuard = { service: service.protocol.service, version: service.protocol.version, self: this.options.self, onRefused };
      server.addService(service.definition, guardService(service.implementation, serviceGuard, FROM_METADATA_KEY, service.definition));
    }
    this.server = server;
    this.boundPort = await server.listenCapped(this.options.listenHost, this.options.listenPort);
    this.options.logger.info({ address: hostPort(this.options.listenHost, this.boundPort) }, 'peer transport listening');
  }

  /** send queues `message` for its `to` member; it never blocks (a full queue drops the message and counts it). */
  send(message: Message): void {
    assert(message.from === this.options.self, `transport: sending a message from ${message.from} as ${this.options.self}`);
    assert(message.to !== this.options.self, 'transport: sending a message to self');
    if (this.closed) return;
    const link = this.links.get(message.to);
    if (link === undefined) {
      this.count('send_dropped_unknown_peer');
      return;
    }
    const bytes = encodeRaftMessage(message);
    if (raftBatchFramedBytes(bytes.length) > this.options.limits.peerMessageBytesMax) {
      this.count('send_dropped_too_large');
      this.options.logger.error({ peer: message.to, type: message.type, bytes: bytes.length }, 'peer message larger than peerMessageBytesMax; dropped');
      return;
    }
    link.enqueue(bytes);
  }

  /** flush writes every link's queue now instead of a turn of the event loop later. */
  flush(): void {
    if (this.closed) return;
    for (const link of this.links.values()) link.flushNow();
  }

  /** setPeers opens a link to each new member and closes the links to members no longer listed. */
  setPeers(peers: readonly NodeId[]): void {
    if (this.closed) return;
    const wanted = new Set(peers.filter((peer) => peer !== this.options.self));
    for (const [peer, link] of this.links) {
      if (wanted.has(peer)) continue;
      link.close();
      this.links.delete(peer);
    }
    for (const peer of wanted) {
      if (this.links.has(peer)) continue;
      const endpoint = this.options.peerAddressOf(peer);
      // Connect from this member's own address, so rules between member addresses cut exactly their links.
      bindPeerSource(endpoint, this.options.listenHost);
      this.links.set(peer, new PeerLink(peer, endpoint, this.linkContext));
    }
  }

  /**
   * forward sends a client write to `to` with the other writes of this turn of the event loop (forward-queue.ts) and
   * waits, at most request.deadlineMs, for its answer.
   */
  async forward(to: NodeId, request: ForwardRequest): Promise<ForwardResponse> {
    if (this.closed) return refusal('CAIRN_SHUTTING_DOWN', `${this.options.self} is shutting down`);
    if (!this.links.has(to)) return this.notSent(`${to} is not a known member`);
    if (!(request.deadlineMs > 0)) return this.notSent('the request deadline passed before the write was forwarded');
    return this.forwards.enqueue(to, request);
  }

  /** forwardOne sends one write in a Forward call and waits, at most request.deadlineMs, for its answer. */
  private async forwardOne(to: NodeId, request: ForwardRequest): Promise<ForwardResponse> {
    const link = this.links.get(to);
    if (this.closed) return refusal('CAIRN_SHUTTING_DOWN', `${this.options.self} is shutting down`);
    if (link === undefined) return this.notSent(`${to} is not a known member`);
    if (!(request.deadlineMs > 0)) return this.notSent('the request deadline passed before the write was forwarded');
    const deadline = monotonicMs() + request.deadlineMs;
    const client = link.getClient();
    if (!(await waitForReady(client.getChannel(), deadline)) || link.isClosed) {
      return this.notSent(`peer ${to} is unreachable`);
    }
    const remainingMs = deadline - monotonicMs();
    if (remainingMs <= 0) return this.notSent('the request deadline passed before the write was forwarded');
    this.count('forward_sent');
    const metadata = peerCallMetadata(FROM_METADATA_KEY, this.options.self, this.protocolVersion);
    const argument = encodeForwardRequest({ command: request.command, deadlineMs: remainingMs });
    return new Promise<ForwardResponse>((resolve) => {
      client.makeUnaryRequest<Uint8Array, Buffer>(FORWARD_PATH, toBuffer, fromBuffer, argument, metadata, { deadline: grpcDeadline(deadline) }, (error, value) => {
        resolve(error !== null || value === undefined ? this.forwardFailure(to, error) : this.forwardAnswer(to, value));
      });
    });
  }

  /**
   * forwardBatch sends 2..forwardBatchRequestsMax writes in one ForwardBatch call and gives each its answer (see
   * ForwardQueueOptions.sendBatch); a peer that does not serve ForwardBatch gets them in Forward calls.
   */
  private async forwardBatch(to: NodeId, requests: readonly ForwardRequest[], answer: (index: number, response: ForwardResponse) => void): Promise<void> {
    const refusedUntil = this.batchRefusedUntil.get(to);
    if (refusedUntil !== undefined && monotonicMs() < refusedUntil) return this.forwardEach(to, requests, requests.map((_, i) => i), answer);
    const link = this.links.get(to);
    const notSent = (why: string): void => requests.forEach((_, i) => answer(i, this.notSent(why)));
    if (this.closed) return requests.forEach((_, i) => answer(i, refusal('CAIRN_SHUTTING_DOWN', `${this.options.self} is shutting down`)));
    if (link === undefined) return notSent(`${to} is not a known member`);
    const started = monotonicMs();
    const deadlines = requests.map((request) => started + request.deadlineMs);
    const latest = Math.max(...deadlines);
    const client = link.getClient();
    if (!(await waitForReady(client.getChannel(), latest)) || link.isClosed) return notSent(`peer ${to} is unreachable`);
    const now = monotonicMs();
    const live: number[] = [];
    for (let i = 0; i < requests.length; i++) {
      if ((deadlines[i] as number) > now) live.push(i);
      else answer(i, this.notSent('the request deadline passed before the write was forwarded'));
    }
    if (live.length === 0) return;
    const sent = live.map((i) => ({ command: (requests[i] as ForwardRequest).command, deadlineMs: (deadlines[i] as number) - now }));
    const callDeadline = Math.max(...live.map((i) => deadlines[i] as number));
    this.count('forward_batch_sent');
    for (let i = 0; i < live.length; i++) this.count('forward_sent');
    const timers: NodeJS.Timeout[] = [];
    for (const i of live) {
      const deadline = deadlines[i] as number;
      if (deadline >= callDeadline - this.tuning.forwardEarlyAnswerSlackMs) continue;
      timers.push(setTimeout(() => answer(i, this.unknownOutcome(to, 'no answer before the deadline')), Math.max(1, deadline - monotonicMs())));
    }
    const metadata = peerCallMetadata(FROM_METADATA_KEY, this.options.self, this.protocolVersion);
    const { error, value } = await new Promise<{ error: ServiceError | null; value: Buffer | undefined }>((resolve) => {
      client.makeUnaryRequest<Uint8Array, Buffer>(FORWARD_BATCH_PATH, toBuffer, fromBuffer, encodeForwardBatchRequest(sent), metadata, { deadline: grpcDeadline(callDeadline) }, (error, value) => resolve({ error, value }));
    });
    for (const timer of timers) clearTimeout(timer);
    if (error === null && value !== undefined) return this.settleForwardBatch(to, value, live, answer);
    if (error?.code === grpcStatus.UNIMPLEMENTED) {
      // Answered before the call was read: nothing of it was written. The same writes go again, one call each.
      const retryMs = this.tuning.forwardBatchRetryMs;
      this.count('forward_batch_unsupported');
      this.batchRefusedUntil.set(to, monotonicMs() + retryMs);
      this.options.logger.info({ peer: to, retryMs }, 'peer does not serve ForwardBatch (an older release); forwarding one write per call');
      const again = monotonicMs();
      return this.forwardEach(to, live.map((i) => ({ command: (requests[i] as ForwardRequest).command, deadlineMs: Math.max(0, (deadlines[i] as number) - again) })), live, answer);
    }
    const response = error?.code === grpcStatus.INVALID_ARGUMENT && error.details.startsWith(forwardBatchInvalidPrefix)
      ? refusal('CAIRN_INVALID_ARGUMENT', `the leader ${to} refused the forwarded batch: ${error.details}`)
      : this.forwardFailure(to, error, live.length);
    for (const i of live) answer(i, response);
  }

  /** settleForwardBatch gives the writes at `live` their answers from a ForwardBatchResponse; what is invalid in it is unknown. */
  private settleForwardBatch(to: NodeId, value: Buffer, live: readonly number[], answer: (index: number, response: ForwardResponse) => void): void {
    const decoded = decodeForwardBatchResponse(value, this.options.limits, live.length);
    if (!decoded.ok) {
      this.options.logger.warn({ peer: to, field: decoded.error.field, reason: decoded.error.reason }, 'invalid forward batch response');
      const response = this.unknownOutcome(to, 'the answer was invalid', live.length);
      for (const i of live) answer(i, response);
      return;
    }
    decoded.value.forEach((item, k) => {
      const i = live[k] as number;
      if (item.ok) return answer(i, item.value);
      this.options.logger.warn({ peer: to, field: item.error.field, reason: item.error.reason }, 'invalid forward response');
      answer(i, this.unknownOutcome(to, 'the answer was invalid'));
    });
  }

  /** forwardEach sends `requests` (the writes at `indexes` of a batch) in Forward calls, and answers each. */
  private async forwardEach(to: NodeId, requests: readonly ForwardRequest[], indexes: readonly number[], answer: (index: number, response: ForwardResponse) => void): Promise<void> {
    await Promise.all(requests.map(async (request, k) => answer(indexes[k] as number, await this.forwardOne(to, request))));
  }

  private unknownOutcome(to: NodeId, why: string, writes = 1): ForwardResponse {
    for (let i = 0; i < writes; i++) this.count('forward_outcome_unknown');
    return refusal('CAIRN_OUTCOME_UNKNOWN', `write forwarded to ${to}: ${why}`);
  }

  private notSent(message: string): ForwardResponse {
    this.count('forward_not_sent');
    return refusal('CAIRN_NO_LEADER', message);
  }

  /** forwardFailure maps a failed Forward or ForwardBatch call (of `writes` writes): only a call that certainly never left is "not written". */
  private forwardFailure(to: NodeId, error: ServiceError | null, writes = 1): ForwardResponse {
    const code = error?.code;
    if (code === grpcStatus.UNAVAILABLE && error?.details.startsWith('No connection established') === true) {
      return this.notSent(`peer ${to} is unreachable`);
    }
    // HTTP/2 REFUSED_STREAM (grpc-js: "Stream refused by server"): the peer refused the call before reading it, as a
    // stopping member does (RFC 9113 §8.7: a refused stream was not processed). Certainly not written: the write
    // goes on to the next leader instead of coming back as an unknown outcome.
    if (code === grpcStatus.UNAVAILABLE && error?.details === 'Stream refused by server') {
      return this.notSent(`peer ${to} refused the call unread (it is stopping)`);
    }
    if (code === grpcStatus.UNIMPLEMENTED) return refusal('CAIRN_INTERNAL', `peer ${to} does not serve Forward`);
    // Refused before the leader read it: certainly not written, and no leader this member can reach.
    if (isPeerProtocolRefusal(error)) return this.notSent(`the leader ${to} runs another peer protocol version (a cluster in the middle of an upgrade): ${error?.details ?? ''}`);
    const why = code === grpcStatus.DEADLINE_EXCEEDED ? 'no answer before the deadline' : `the call failed (${error?.details ?? 'no response'})`;
    return this.unknownOutcome(to, why, writes);
  }

  private forwardAnswer(to: NodeId, bytes: Buffer): ForwardResponse {
    const decoded = decodeForwardResponse(bytes, this.options.limits);
    if (decoded.ok) return decoded.value;
    this.count('forward_outcome_unknown');
    this.options.logger.warn({ peer: to, field: decoded.error.field, reason: decoded.error.reason }, 'invalid forward response');
    return refusal('CAIRN_OUTCOME_UNKNOWN', `write forwarded to ${to}: the answer was invalid`);
  }

  /** serveStream accepts one peer's Stream call and delivers its messages in order. */
  private serveStream(call: ServerReadableStream<Buffer, Uint8Array>, callback: sendUnaryData<Uint8Array>): void {
    const stream: InboundStream = { call, callback };
    const claimed = call.metadata.get(FROM_METADATA_KEY)[0];
    const sender = typeof claimed === 'string' ? claimed : null;
    this.inbound.add(stream);
    // Headers first: they tell the sender the stream is established (see PeerLink.openStream).
    call.sendMetadata(new Metadata());
    call.on('data', (bytes: Buffer) => this.receiveBatch(bytes, sender));
    call.on('end', () => {
      if (this.inbound.delete(stream)) callback(null, EMPTY);
    });
    call.on('error', () => this.inbound.delete(stream));
    call.on('cancelled', () => this.inbound.delete(stream));
  }

  private receiveBatch(bytes: Buffer, sender: string | null): void {
    const handlers = this.handlers;
    if (handlers === null || this.closed) return;
    const { messages, errors } = decodeRaftBatch(bytes, this.options.limits);
    for (const error of errors) this.dropInvalid(error, sender);
    for (const message of messages) {
      if (message.to !== this.options.self || (sender !== null && message.from !== sender)) {
        this.count('receive_dropped_misaddressed');
        const dropped = this.counts.get('receive_dropped_misaddressed') ?? 0;
        if (isPowerOfTwo(dropped)) {
          this.options.logger.warn({ from: message.from, to: message.to, sender, dropped }, 'dropped a peer message not addressed to this member');
        }
        continue;
      }
      this.count('message_received');
      handlers.onMessage(message);
    }
  }

  private dropInvalid(error: PeerDecodeError, sender: string | null): void {
    this.count('receive_dropped_invalid');
    const dropped = this.counts.get('receive_dropped_invalid') ?? 0;
    if (isPowerOfTwo(dropped)) {
      this.options.logger.warn({ sender, field: error.field, reason: error.reason, dropped }, 'dropped an invalid peer message');
    }
  }

  /** serveForward answers a forwarded write with the driver's response; it never fails the call itself. */
  private serveForward(call: ServerUnaryCall<Buffer, Uint8Array>, callback: sendUnaryData<Uint8Array>): void {
    const handlers = this.handlers;
    const claimed = call.metadata.get(FROM_METADATA_KEY)[0];
    const decoded = decodeForwardRequest(call.request, this.options.limits);
    const answer = (response: ForwardResponse): void => callback(null, encodeForwardResponse(response));
    if (handlers === null || this.closed) return answer(refusal('CAIRN_SHUTTING_DOWN', `${this.options.self} is shutting down`));
    if (typeof claimed !== 'string' || claimed.length === 0 || claimed.length > nodeIdCharsMax || !decoded.ok) {
      this.count('forward_invalid');
      const reason = decoded.ok ? `missing or invalid ${FROM_METADATA_KEY} metadata` : decoded.error.message;
      return answer({ ok: false, code: 'CAIRN_INVALID_ARGUMENT', message: reason, leaderHint: null });
    }
    this.count('forward_served');
    handlers.onForward(claimed, decoded.value).then(answer, (error: unknown) => {
      this.options.logger.error({ from: claimed, err: error }, 'forward handler failed');
      answer(refusal('CAIRN_INTERNAL', 'the leader failed while handling the forwarded write'));
    });
  }

  /**
   * serveForwardBatch answers a batch of forwarded writes: each is handled as if it came in its own Forward call, and
   * the answer goes when all have their outcome. Only a batch whose framing or sender is invalid is refused as a
   * whole (INVALID_ARGUMENT, before anything is written).
   */
  private serveForwardBatch(call: ServerUnaryCall<Buffer, Uint8Array>, callback: sendUnaryData<Uint8Array>): void {
    const handlers = this.handlers;
    const claimed = call.metadata.get(FROM_METADATA_KEY)[0];
    const decoded = decodeForwardBatchRequest(call.request, this.options.limits);
    if (typeof claimed !== 'string' || claimed.length === 0 || claimed.length > nodeIdCharsMax || !decoded.ok) {
      this.count('forward_invalid');
      const reason = decoded.ok ? `missing or invalid ${FROM_METADATA_KEY} metadata` : decoded.error.message;
      callback({ code: grpcStatus.INVALID_ARGUMENT, details: `${forwardBatchInvalidPrefix}: ${reason}` }, null);
      return;
    }
    this.count('forward_batch_served');
    const answers = decoded.value.map((item): ForwardResponse | Promise<ForwardResponse> => {
      if (handlers === null || this.closed) return refusal('CAIRN_SHUTTING_DOWN', `${this.options.self} is shutting down`);
      if (!item.ok) {
        this.count('forward_invalid');
        return { ok: false, code: 'CAIRN_INVALID_ARGUMENT', message: item.error.message, leaderHint: null };
      }
      this.count('forward_served');
      return handlers.onForward(claimed, item.value).catch((error: unknown) => {
        this.options.logger.error({ from: claimed, err: error }, 'forward handler failed');
        return refusal('CAIRN_INTERNAL', 'the leader failed while handling the forwarded write');
      });
    });
    void Promise.all(answers).then((responses) => {
      // Room for gRPC's framing under the message bound the follower receives with.
      const { bytes, replaced } = encodeForwardBatchResponse(responses, this.options.limits.peerMessageBytesMax - 1024);
      if (replaced > 0) this.options.logger.warn({ from: claimed, writes: responses.length, replaced }, 'forwarded batch: results too large for one answer; the last were answered CAIRN_OUTCOME_UNKNOWN');
      callback(null, bytes);
    });
  }

  /** hello asks `to` what it knows of this member; null when unreachable or silent within `timeoutMs`. */
  async hello(to: NodeId, timeoutMs: number): Promise<PeerHello | null> {
    const answer = await this.askPeer(to, HELLO_PATH, encodeHelloRequest(this.options.self), timeoutMs);
    return answer === null ? null : decodeHelloResponse(answer);
  }

  /**
   * checkpoints asks `to` for its checkpoint digests; null when unreachable, silent within `timeoutMs`, of a release
   * without the method (UNIMPLEMENTED) or when its answer is invalid (counted as checkpoints_invalid).
   */
  async checkpoints(to: NodeId, timeoutMs: number): Promise<PeerCheckpoints | null> {
    const answer = await this.askPeer(to, CHECKPOINTS_PATH, encodeCheckpointsRequest(this.options.self), timeoutMs);
    if (answer === null) return null;
    const decoded = decodeCheckpointsResponse(answer);
    if (decoded.ok) return decoded.value;
    this.count('checkpoints_invalid');
    this.options.logger.warn({ peer: to, field: decoded.error.field, reason: decoded.error.reason }, 'invalid Checkpoints answer from a peer; ignored');
    return null;
  }

  /**
   * askPeer makes one unary call to `to` on its link, within `timeoutMs` including the wait for a connection; the
   * answer's bytes, or null when the peer is unknown, unreachable, silent or answers with an error status.
   */
  private async askPeer(to: NodeId, path: string, request: Uint8Array, timeoutMs: number): Promise<Buffer | null> {
    const link = this.links.get(to);
    if (this.closed || link === undefined) return null;
    const deadline = monotonicMs() + timeoutMs;
    const client = link.getClient();
    if (!(await waitForReady(client.getChannel(), deadline)) || link.isClosed) return null;
    return new Promise<Buffer | null>((resolve) => {
      client.makeUnaryRequest<Uint8Array, Buffer>(path, toBuffer, fromBuffer, request, peerCallMetadata(FROM_METADATA_KEY, this.options.self, this.protocolVersion), { deadline: grpcDeadline(deadline) },
        (error, value) => resolve(error !== null || value === undefined ? null : value));
    });
  }

  /** serveCheckpoints answers Checkpoints through the handlers; a member without the handler refuses it (UNAVAILABLE). */
  private serveCheckpoints(call: ServerUnaryCall<Buffer, Uint8Array>, callback: sendUnaryData<Uint8Array>): void {
    const from = decodeCheckpointsRequest(call.request);
    const onCheckpoints = this.handlers?.onCheckpoints;
    if (from === null) return callback({ code: grpcStatus.INVALID_ARGUMENT, details: 'CAIRN_INVALID_ARGUMENT: malformed CheckpointsRequest' }, null);
    const answer = onCheckpoints === undefined || this.closed ? null : onCheckpoints(from);
    if (answer === null) return callback({ code: grpcStatus.UNAVAILABLE, details: 'checkpoints not served (yet)' }, null);
    callback(null, encodeCheckpointsResponse(answer));
  }

  /** refusedProtocol counts a call refused for its peer protocol version and logs the first and every 2^n-th. */
  private refusedProtocol(from: string | null, callerVersion: number | null, method: string, version: number): void {
    this.count('peer_protocol_refused');
    const refused = this.counts.get('peer_protocol_refused') ?? 0;
    if (isPowerOfTwo(refused)) {
      this.options.logger.error({ from, callerVersion, version, method, refused }, 'refused a peer of another peer protocol version (a cluster in the middle of an upgrade?)');
    }
  }

  /**
   * serveBackup streams a backup from the handlers (one at a time: another request meanwhile is refused with
   * RESOURCE_EXHAUSTED): the header chunk, then the image in chunks of backupChunkBytesMax, each written when the
   * call has room (its 'drain'), and stops as soon as the caller goes away.
   */
  private async serveBackup(call: ServerWritableStream<Buffer, Uint8Array>): Promise<void> {
    const refuse = (code: grpcStatus, details: string): void => {
      call.emit('error', { code, details });
    };
    const requester = decodeBackupRequest(call.request);
    const onBackup = this.handlers?.onBackup;
    if (requester === null) return refuse(grpcStatus.INVALID_ARGUMENT, 'CAIRN_INVALID_ARGUMENT: malformed BackupRequest');
    if (this.closed) return refuse(grpcStatus.UNAVAILABLE, `CAIRN_SHUTTING_DOWN: ${this.options.self} is shutting down`);
    if (onBackup === undefined) return refuse(grpcStatus.UNAVAILABLE, `${this.options.self} does not serve backups yet (it is still starting); try again`);
    if (this.backupInFlight) return refuse(grpcStatus.RESOURCE_EXHAUSTED, `a backup is already being taken from ${this.options.self}; try again when it is done`);
    this.backupInFlight = true;
    let gone = false;
    const goneOrDrained = (): Promise<void> => new Promise<void>((resolve) => {
      const done = (): void => {
        call.off('drain', done);
        call.off('cancelled', done);
        call.off('close', done);
        resolve();
      };
      call.once('drain', done);
      call.once('cancelled', done);
      call.once('close', done);
    });
    call.once('cancelled', () => (gone = true));
    const started = monotonicMs();
    try {
      const backup = await onBackup(requester);
      const header = new TextEncoder().encode(JSON.stringify(backup.header));
      // Each chunk is assembled and encoded when it is written, so the member holds the image's parts and one chunk.
      let written = call.write(encodeBackupChunk({ header, data: EMPTY }));
      for (const data of backupChunks(backup.parts, backupChunkBytesMax)) {
        if (!written) await goneOrDrained();
        if (gone || this.closed) break;
        written = call.write(encodeBackupChunk({ header: EMPTY, data }));
      }
      if (gone || this.closed) {
        this.options.logger.warn({ requester, index: backup.header.index }, 'backup stream abandoned before its end');
        return;
      }
      call.end();
      this.options.logger.info({ requester, index: backup.header.index, bytes: backup.header.imageBytes, ms: monotonicMs() - started }, 'backup streamed');
    } catch (error) {
      if (isCairnError(error)) return refuse(error.grpcStatus, `${error.code}: ${error.message}`);
      this.options.logger.error({ requester, err: error }, 'backup failed');
      refuse(grpcStatus.INTERNAL, 'CAIRN_INTERNAL: the member failed to take the backup (see its log)');
    } finally {
      this.backupInFlight = false;
    }
  }

  /** serveHello answers Hello through the handlers; a member without a Hello handler refuses it (UNAVAILABLE). */
  private serveHello(call: ServerUnaryCall<Buffer, Uint8Array>, callback: sendUnaryData<Uint8Array>): void {
    const from = decodeHelloRequest(call.request);
    const onHello = this.handlers?.onHello;
    if (from === null || onHello === undefined || this.closed) {
      callback({ code: grpcStatus.UNAVAILABLE, details: 'hello not served' }, null);
      return;
    }
    onHello(from).then((hello) => callback(null, encodeHelloResponse(hello)), (error: unknown) => {
      this.options.logger.error({ from, err: error }, 'hello handler failed');
      callback({ code: grpcStatus.INTERNAL, details: 'hello failed' }, null);
    });
  }

  /** close stops listening (in-flight calls get closeGraceMs to finish), ends inbound streams and drops the links. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.forwards.close();
    for (const link of this.links.values()) link.close();
    this.links.clear();
    for (const stream of this.inbound) stream.callback(null, EMPTY);
    this.inbound.clear();
    const server = this.server;
    this.server = null;
    if (server === null) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        server.forceShutdown();
        resolve();
      }, this.tuning.closeGraceMs);
      server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

function refusal(code: string, message: string): ForwardResponse {
  return { ok: false, code, message, leaderHint: null };
}

/**
 * waitForReady resolves true once the channel is READY, false as soon as it fails to connect (TRANSIENT_FAILURE,
 * e.g. connection refused; unless `failOnTransientFailure` is false, then it keeps waiting for a reconnect) or at the
 * deadline. Nothing is sent before it resolves true, so false means "not written".
 */
export function waitForReady(channel: ChannelInterface, deadline: number, failOnTransientFailure = true): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const check = (): void => {
      try {
        const state = channel.getConnectivityState(true);
        if (state === connectivityState.READY) return resolve(true);
        if ((failOnTransientFailure && state === connectivityState.TRANSIENT_FAILURE) || state === connectivityState.SHUTDOWN || monotonicMs() >= deadline) {
          return resolve(false);
        }
        channel.watchConnectivityState(state, grpcDeadline(deadline), (error) => (error === undefined ? check() : resolve(false)));
      } catch {
        // The link was closed under us (setPeers or close): nothing was sent.
        resolve(false);
      }
    };
    check();
  });
}

/**
 * backupChunks cuts an image given in parts into chunks of at most `chunkBytes`, in order: parts are joined into a
 * chunk (one copy per chunk) and a part larger than a chunk is cut.
 */
export function* backupChunks(parts: readonly Uint8Array[], chunkBytes: number): Generator<Uint8Array, void, void> {
  let chunk = new Uint8Array(chunkBytes);
  let filled = 0;
  for (const part of parts) {
    for (let offset = 0; offset < part.length;) {
      const take = Math.min(chunkBytes - filled, part.length - offset);
      chunk.set(part.subarray(offset, offset + take), filled);
      filled += take;
      offset += take;
      if (filled === chunkBytes) {
        yield chunk;
        chunk = new Uint8Array(chunkBytes);
        filled = 0;
      }
    }
  }
  if (filled > 0) yield chunk.subarray(0, filled);
}

/** rawMethod is one method of a service definition whose messages stay bytes (the peer codec decodes them). */
function rawMethod(path: string, requestStream: boolean, responseStream: boolean) {
  return { path, requestStream, responseStream, requestSerialize: toBuffer, requestDeserialize: fromBuffer, responseSerialize: toBuffer, responseDeserialize: fromBuffer };
}

/** peerServiceDefinition is the Peer service of peer.proto with raw-bytes (de)serialisers: decoding is ours. */
const peerServiceDefinition = {
  Stream: rawMethod(STREAM_PATH, true, false),
  Hello: rawMethod(HELLO_PATH, false, false),
  Forward: rawMethod(FORWARD_PATH, false, false),
  ForwardBatch: rawMethod(FORWARD_BATCH_PATH, false, false),
  Checkpoints: rawMethod(CHECKPOINTS_PATH, false, false),
  Backup: rawMethod(BACKUP_PATH, false, true),
};
