// grpc-distro: the Distro protocol over gRPC on the peer port (proto/cairn/peer/v1/distro.proto).
//
// Server side: distroService() returns the service definition and implementation that the member adds to its
// existing peer server (GrpcPeerTransport.addService); the handlers are looked up per call, so the service can be
// added before the Distro node exists (calls then answer UNAVAILABLE). Every request is decoded and validated by
// distro-codec.ts; one whose envelope is invalid is answered INVALID_ARGUMENT. The items of a request that fail
// validation alone are dropped and the rest served (a refused forwarded request answered with its own error, in its
// place): the handlers hear of the drops (DroppedItemsObserver), which they count and log.
//
// Client side: GrpcDistroTransport keeps one gRPC client (one HTTP/2 connection) per peer, leaving from the member's
// own address (source-address.ts). A call first waits for the connection to be ready, at most the call's deadline:
// if it never is (refused, or packets dropped), the request certainly never left (DistroCallError notSent).

import {
  Client,
  Metadata,
  credentials,
  status as grpcStatus,
  type ServerUnaryCall,
  type ServerWritableStream,
  type ServiceError,
  type UntypedServiceImplementation,
  type sendUnaryData,
} from '@grpc/grpc-js';
import { isCairnError } from '../errors.ts';
import type { Limits } from '../limits.ts';
import type { ServiceKey } from '../naming/model.ts';
import { waitForReady } from '../replica/grpc-transport.ts';
import { bindPeerSource } from '../replica/source-address.ts';
import { distroProtocolVersion, isPeerProtocolRefusal, peerCallMetadata } from '../replica/peer-protocol.ts';
import {
  answerForward,
  answerForwardBatch,
  answerLastBeats,
  decodeChecksums,
  decodeForwardBatch,
  decodeForwardBatchResponse,
  decodeForwardRequest,
  decodeForwardResponse,
  decodeHeartbeat,
  decodeLastBeatsRequest,
  decodeLastBeatsResponse,
  decodePullRequest,
  decodeRecords,
  encodeAck,
  encodeChecksums,
  encodeForwardBatch,
  encodeForwardBatchResponse,
  encodeForwardRequest,
  encodeForwardResponse,
  encodeHeartbeat,
  encodeLastBeatsRequest,
  encodeLastBeatsResponse,
  encodePullRequest,
  encodeRecords,
  encodeSnapshotRequest,
  lastBeatsQuerySize,
  memberIdCharsMax,
  DroppedItemsLogGate,
  droppedItemsWarningMessage,
  type DroppedItem,
  type DroppedItemMessage,
  type DroppedItemsObserver,
  type DroppedItemsSource,
} from './distro-codec.ts';
import type { RecordData } from './ephemeral-store.ts';
import { DistroCallError, type DistroHandlers, type DistroTransport, type ForwardRequest, type ForwardResponse, type LastBeatsQuery, type ServiceChecksum } from './transport.ts';
import { grpcDeadline, monotonicMs } from '../clock.ts';

/** GrpcDistroLimits are the limits the gRPC Distro transport uses. */
export type GrpcDistroLimits = Pick<Limits, 'distroSyncBatchMax' | 'distroMessageEntriesMax' | 'distroForwardBatchEntriesMax' | 'distroPeerTimeoutMs' | 'peerMessageBytesMax' | 'distroSnapshotTimeoutMs'>;

const SERVICE = '/cairn.peer.v1.Distro';
const FROM_METADATA_KEY = 'cairn-from';

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
function fromBuffer(bytes: Buffer): Buffer {
  return bytes;
}

function method(name: string, responseStream = false): object {
  return {
    path: `${SERVICE}/${name}`, requestStream: false, responseStream,
    requestSerialize: toBuffer, requestDeserialize: fromBuffer, responseSerialize: toBuffer, responseDeserialize: fromBuffer,
  };
}

/** distroServiceDefinition is the Distro service with raw-bytes (de)serialisers: decoding is distro-codec.ts's. */
export const distroServiceDefinition = Object.freeze({
  Heartbeat: method('Heartbeat'),
  Sync: method('Sync'),
  Verify: method('Verify'),
  Pull: method('Pull'),
  Snapshot: method('Snapshot', true),
  Forward: method('Forward'),
  ForwardBatch: method('ForwardBatch'),
  LastBeats: method('LastBeats'),
});

/** DistroServiceLogger is the logging the service needs. */
export interface DistroServiceLogger {
  warn(object: object, message: string): void;
}

/**
 * DistroServiceHandlers are the handlers the service calls: a DistroNode's hear of the items dropped from what it
 * was sent, too (without it, the service logs them itself, bounded, and nothing counts them).
 */
export type DistroServiceHandlers = DistroHandlers & Partial<DroppedItemsObserver>;

function senderOf(call: { readonly metadata: Metadata }): string | null {
  const claimed = call.metadata.get(FROM_METADATA_KEY)[0];
  return typeof claimed === 'string' && claimed.length > 0 && claimed.length <= memberIdCharsMax ? claimed : null;
}

/**
 * refuse is the status of a Distro call whose handler threw: a CairnError leaves with the catalog's gRPC status and
 * its code first in the message (as on the client port, docs/errors.md), so a peer tells a bad request
 * (INVALID_ARGUMENT) from a member shutting down (UNAVAILABLE); anything else is a bug, INTERNAL, and its message
 * stays in this member's log.
 */
function refuse(error: unknown): Partial<ServiceError> {
  if (isCairnError(error)) return { code: error.grpcStatus, details: `${error.code}: ${error.message}` };
  return { code: grpcStatus.INTERNAL, details: 'CAIRN_INTERNAL: the member failed to serve the distro call (see its log)' };
}

/**
 * distroService returns the implementation of the Distro service over `handlers()` (null while the node is not
 * running: calls answer UNAVAILABLE).
 */
export function distroService(handlers: () => DistroServiceHandlers | null, limits: GrpcDistroLimits, logger: DistroServiceLogger): UntypedServiceImplementation {
  const gate = new DroppedItemsLogGate();
  const report = (from: string, h: DistroServiceHandlers, message: DroppedItemMessage, dropped: readonly DroppedItem[]): void => {
    if (dropped.length === 0) return;
    if (h.onItemsDropped !== undefined) return h.onItemsDropped(from, message, dropped);
    const warning = gate.admit(Date.now(), from, message, dropped);
    if (warning !== null) logger.warn(warning, droppedItemsWarningMessage);
  };
  const unary = (name: string, serve: (from: string, h: DistroServiceHandlers, request: Buffer) => Uint8Array | Promise<Uint8Array>) =>
    (call: ServerUnaryCall<Buffer, Uint8Array>, callback: sendUnaryData<Uint8Array>): void => {
      const h = handlers();
      const from = senderOf(call);
      if (h === null) return callback({ code: grpcStatus.UNAVAILABLE, details: 'distro is not running on this member' }, null);
      if (from === null) return callback({ code: grpcStatus.INVALID_ARGUMENT, details: `missing or invalid ${FROM_METADATA_KEY}` }, null);
      Promise.resolve().then(() => serve(from, h, call.request)).then((answer) => callback(null, answer), (error: unknown) => {
        // A CairnError is the caller's to fix (its message says what); anything else is a bug here: keep its stack.
        const detail = isCairnError(error) ? error.message : error instanceof Error ? (error.stack ?? error.message) : String(error);
        logger.warn({ from, method: name, code: isCairnError(error) ? error.code : 'CAIRN_INTERNAL', err: detail }, 'refused a distro call');
        callback(refuse(error), null);
      });
    };
  return {
    Heartbeat: unary('Heartbeat', (from, h, request) => {
      decodeHeartbeat(request);
      h.onHeartbeat(from);
      return encodeHeartbeat('');
    }),
    Sync: unary('Sync', (from, h, request) => {
      const records = decodeRecords(request, limits);
      report(from, h, 'records', records.dropped);
      h.onSync(from, records.value);
      return encodeAck();
    }),
    Verify: unary('Verify', (from, h, request) => {
      const checksums = decodeChecksums(request, limits);
      report(from, h, 'checksums', checksums.dropped);
      h.onVerify(from, checksums.value);
      return encodeAck();
    }),
    Pull: unary('Pull', (from, h, request) => {
      const keys = decodePullRequest(request, limits);
      report(from, h, 'pull_keys', keys.dropped);
      return encodeRecords(h.onPull(from, keys.value));
    }),
    Forward: unary('Forward', async (from, h, request) => {
      const screened = decodeForwardRequest(request, limits);
      report(from, h, 'forward', screened.dropped);
      if (!screened.ok) return encodeForwardResponse(screened.response);
      return encodeForwardResponse(answerForward(screened, await h.onForward(from, screened.request)));
    }),
    ForwardBatch: unary('ForwardBatch', (from, h, request) => {
      const batch = decodeForwardBatch(request, limits);
      report(from, h, 'forward', batch.dropped);
      const responses = batch.requests.length === 0 ? [] : h.onForwardBatch(from, batch.requests, batch.sentAtMs);
      return encodeForwardBatchResponse(answerForwardBatch(batch, responses));
    }),
    LastBeats: unary('LastBeats', (from, h, request) => {
      const query = decodeLastBeatsRequest(request, limits);
      report(from, h, 'last_beats', query.dropped);
      return encodeLastBeatsResponse(answerLastBeats(query, h.onLastBeats(from, query.value)));
    }),
    Snapshot: (call: ServerWritableStream<Buffer, Uint8Array>) => {
      const h = handlers();
      const from = senderOf(call);
      if (h === null || from === null) {
        call.emit('error', { code: h === null ? grpcStatus.UNAVAILABLE : grpcStatus.INVALID_ARGUMENT, details: 'snapshot refused' });
        return;
      }
      void streamSnapshot(call, h.onSnapshot(from));
    },
  };
}

async function streamSnapshot(call: ServerWritableStream<Buffer, Uint8Array>, chunks: Iterable<readonly RecordData[]>): Promise<void> {
  let cancelled = false;
  call.on('cancelled', () => {
    cancelled = true;
  });
  for (const chunk of chunks) {
    if (cancelled) return;
    if (!call.write(encodeRecords(chunk))) await new Promise((resolve) => call.once('drain', resolve));
  }
  call.end();
}

/** GrpcDistroTransportOptions configure a GrpcDistroTransport. */
export interface GrpcDistroTransportOptions {
  readonly self: string;
  /** listenHost is the member's own host: connections to peers leave from it. */
  readonly listenHost: string;
  /** peerAddressOf returns "host:port" of a member's peer listener. */
  peerAddressOf(member: string): string;
  readonly limits: GrpcDistroLimits;
  /** protocolVersion is the Distro protocol the member speaks (default: this build's, src/replica/peer-protocol.ts). */
  readonly protocolVersion?: number;
  /** onChannelReplaced is called each time a peer's channel is replaced for staying unconnected (see ready; metrics). */
  readonly onChannelReplaced?: (member: string) => void;
}

/**
 * GrpcDistroTransport is the DistroTransport of a real member. The answers it decodes (a pull's, a snapshot's chunks)
 * lose their invalid entries alone, as the requests its peers decode do; the observer hears of them.
 */
export class GrpcDistroTransport implements DistroTransport, DroppedItemsSource {
  private readonly clients = new Map<string, Client>();
  private droppedItemsObserver: DroppedItemsObserver | null = null;
  /** notReadySince: per member, since when (monotonic ms) its channel has not been ready when a call wanted it. */
  private readonly notReadySince = new Map<string, number>();
  private channelsReplaced = 0;
  private closed = false;

  constructor(private readonly options: GrpcDistroTransportOptions) {}

  private client(member: string): Client {
    if (this.closed) throw new DistroCallError('the distro transport is closed', true);
    let client = this.clients.get(member);
    if (client === undefined) {
      const endpoint = this.options.peerAddressOf(member);
      bindPeerSource(endpoint, this.options.listenHost);
      client = new Client(endpoint, credentials.createInsecure(), {
        'grpc.max_send_message_length': this.options.limits.peerMessageBytesMax,
        'grpc.max_receive_message_length': this.options.limits.peerMessageBytesMax,
        'grpc.keepalive_time_ms': 1000,
        'grpc.keepalive_timeout_ms': 1000,
        'grpc.keepalive_permit_without_calls': 1,
        'grpc.initial_reconnect_backoff_ms': 50,
        'grpc.max_reconnect_backoff_ms': 1000,
        'grpc.enable_retries': 0,
        'grpc.use_local_subchannel_pool': 1,
        'grpc.enable_channelz': 0,
      });
      this.clients.set(member, client);
    }
    return client;
  }

  private metadata(): Metadata {
    // The Distro protocol version too: the peer port serves only members of its own (src/replica/peer-protocol.ts).
    return peerCallMetadata(FROM_METADATA_KEY, this.options.self, this.options.protocolVersion ?? distroProtocolVersion);
  }

  /**
   * unary makes one call within `timeoutMs`. With `connectedOnly` it does not wait for a connection: a peer with no
   * connection ready now fails at once as notSent.
   */
  private async unary(to: string, name: string, request: Uint8Array, timeoutMs = this.options.limits.distroPeerTimeoutMs, connectedOnly = false): Promise<Buffer> {
    const client = this.client(to);
    const deadline = monotonicMs() + timeoutMs;
    if (!(await this.ready(to, client, connectedOnly ? monotonicMs() : deadline, connectedOnly))) throw new DistroCallError(`peer ${to} is unreachable`, true);
    return new Promise<Buffer>((resolve, reject) => {
      client.makeUnaryRequest<Uint8Array, Buffer>(`${SERVICE}/${name}`, toBuffer, fromBuffer, request, this.metadata(), { deadline: grpcDeadline(deadline) }, (error, value) => {
        if (error === null && value !== undefined) return resolve(value);
        // A peer of another peer protocol version refuses a call before reading it: certainly not applied there, and
        // to this path that peer is as good as cut off (src/replica/peer-protocol.ts).
        const notSent = (error?.code === grpcStatus.UNAVAILABLE && error.details.startsWith('No connection established')) || isPeerProtocolRefusal(error);
        reject(new DistroCallError(`${name} to ${to} failed: ${error?.details ?? 'no response'}`, notSent, error?.code === grpcStatus.UNIMPLEMENTED));
      });
    });
  }

  /** heartbeat proves `to` alive. */
  async heartbeat(to: string): Promise<void> {
    await this.unary(to, 'Heartbeat', encodeHeartbeat(this.options.self));
  }

  /** sync pushes records to `to`. */
  async sync(to: string, records: readonly RecordData[]): Promise<void> {
    await this.unary(to, 'Sync', encodeRecords(records));
  }

  /** verify announces checksums to `to`. */
  async verify(to: string, checksums: readonly ServiceChecksum[]): Promise<void> {
    await this.unary(to, 'Verify', encodeChecksums(checksums));
  }

  /** observeDroppedItems makes `observer` hear of the entries dropped from the answers of peers (DroppedItemsSource). */
  observeDroppedItems(observer: DroppedItemsObserver): void {
    this.droppedItemsObserver = observer;
  }

  /** recordsOf decodes a peer's DistroRecords answer, reporting the entries it dropped. */
  private recordsOf(from: string, bytes: Uint8Array): RecordData[] {
    const records = decodeRecords(bytes, this.options.limits);
    if (records.dropped.length > 0) this.droppedItemsObserver?.onItemsDropped(from, 'records', records.dropped);
    return records.value;
  }

  /** pull fetches whole services from `to`. */
  async pull(to: string, keys: readonly ServiceKey[]): Promise<RecordData[]> {
    return this.recordsOf(to, await this.unary(to, 'Pull', encodePullRequest(keys)));
  }

  /** forward hands a request to `to`. */
  async forward(to: string, request: ForwardRequest): Promise<ForwardResponse> {
    return decodeForwardResponse(await this.unary(to, 'Forward', encodeForwardRequest(request)));
  }

  /** forwardBatch hands many requests to `to` in one call; a malformed answer fails the whole call. */
  async forwardBatch(to: string, requests: readonly ForwardRequest[], sentAtMs: number): Promise<readonly ForwardResponse[]> {
    const answer = await this.unary(to, 'ForwardBatch', encodeForwardBatch(requests, sentAtMs));
    try {
      return decodeForwardBatchResponse(answer, requests.length);
    } catch (error) {
      throw new DistroCallError(`ForwardBatch to ${to} was answered wrongly: ${error instanceof Error ? error.message : String(error)}`, false);
    }
  }

  /**
   * lastBeats asks `to` how long ago it last heard from each instance's client. It does not wait for a connection:
   * a peer not connected now (killed, cut off, restarting) fails at once as notSent, and the asking member goes on
   * without it instead of waiting out a deadline. A member that does not know the call (an older version during a
   * rolling upgrade) answers UNIMPLEMENTED, thrown as a DistroCallError with `unimplemented`: it knows nothing, so
   * it does not hold expiry back, and its silence covers nothing (the takeover grace stays).
   */
  async lastBeats(to: string, query: readonly LastBeatsQuery[]): Promise<readonly number[]> {
    const size = lastBeatsQuerySize(query);
    const answer = await this.unary(to, 'LastBeats', encodeLastBeatsRequest(query), this.options.limits.distroPeerTimeoutMs, true);
    try {
      return decodeLastBeatsResponse(answer, size);
    } catch (error) {
      throw new DistroCallError(`LastBeats to ${to} was answered wrongly: ${error instanceof Error ? error.message : String(error)}`, false);
    }
  }

  /** snapshot streams every service `to` holds into `onChunk`. */
  async snapshot(to: string, onChunk: (records: readonly RecordData[]) => void): Promise<void> {
    const client = this.client(to);
    const deadline = monotonicMs() + this.options.limits.distroSnapshotTimeoutMs;
    if (!(await this.ready(to, client, Math.min(deadline, monotonicMs() + this.options.limits.distroPeerTimeoutMs), false))) {
      throw new DistroCallError(`peer ${to} is unreachable`, true);
    }
    await new Promise<void>((resolve, reject) => {
      const call = client.makeServerStreamRequest<Uint8Array, Buffer>(`${SERVICE}/Snapshot`, toBuffer, fromBuffer, encodeSnapshotRequest(), this.metadata(), { deadline: grpcDeadline(deadline) });
      call.on('data', (bytes: Buffer) => {
        try {
          onChunk(this.recordsOf(to, bytes));
        } catch (error) {
          call.cancel();
          reject(error instanceof Error ? error : new Error(String(error)));
        }
      });
      call.on('error', (error: ServiceError) => reject(new DistroCallError(`Snapshot from ${to} failed: ${error.details}`, false)));
      call.on('status', (status: { code: number }) => {
        if (status.code === grpcStatus.OK) resolve();
      });
    });
  }

  /**
   * ready waits (until `deadline`) for the member's channel to be ready. A channel not ready for
   * distroPeerTimeoutMs is replaced, so the next call starts a fresh connect: during a partition that drops packets
   * the channel's TCP connect hangs in SYN-SENT, and its retransmissions come at growing intervals (1, 3, 7, 15, 31 s
   * ...), so a channel kept after the heal can wait that long for its next SYN, and grpc-js has no connect timeout of
   * its own. The Raft transport replaces its channel the same way (test/replica/grpc-transport-partition.test.ts).
   * Without it, jepsen-like D6 (seed 49200) saw a member's Distro channel to a peer stay unconnected for over four
   * minutes after the last partition between them while their Raft streams were back: the member saw the peer
   * down throughout, sent it no sync, and the peer never converged.
   */
  private async ready(to: string, client: Client, deadline: number, connectedOnly: boolean): Promise<boolean> {
    if (await waitForReady(client.getChannel(), deadline, connectedOnly)) {
      this.notReadySince.delete(to);
      return true;
    }
    const now = monotonicMs();
    const since = this.notReadySince.get(to);
    if (since === undefined) {
      this.notReadySince.set(to, now);
    } else if (now - since >= this.options.limits.distroPeerTimeoutMs && this.clients.get(to) === client) {
      client.close();
      this.clients.delete(to);
      this.notReadySince.delete(to);
      this.channelsReplaced++;
      this.options.onChannelReplaced?.(to);
    }
    return false;
  }

  /** replacedChannels counts the channels replaced because they stayed unconnected (see ready). */
  replacedChannels(): number {
    return this.channelsReplaced;
  }

  /** forgetPeer closes the client of a member that left the group. */
  forgetPeer(member: string): void {
    this.clients.get(member)?.close();
    this.clients.delete(member);
    this.notReadySince.delete(member);
  }

  /** close closes every client. */
  close(): void {
    this.closed = true;
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }
}
