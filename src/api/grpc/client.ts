// client: a small client of the client gRPC port over the same definitions as the server (proto.ts), for the
// `cairn` CLI, tests and workload drivers. Unary calls each have a deadline; a server stream (`stream`, for
// Subscribe) has none and is bounded by its cancel() instead, with HTTP/2 keepalive pings (`keepaliveMs`) noticing a
// peer that vanished without closing the connection. A failed call rejects with a GrpcCallError that carries the
// gRPC status and the Cairn code the server put in the trailing metadata.

import { Client, Metadata, credentials, status as grpcStatus, type ChannelOptions, type ClientReadableStream, type ServiceError } from '@grpc/grpc-js';
import { limits } from '../../limits.ts';
import { grpcResponseBytesMax } from './bounds.ts';
import { errorCodeMetadataKey, leaderMetadataKey, retryableMetadataKey } from './errors.ts';
import { methodDefinitionOf } from './proto.ts';
import { responseDecoder } from './instance-decoding.ts';

/** GrpcCallError is a failed call: the gRPC status, its message, and the Cairn code when the server sent one. */
export class GrpcCallError extends Error {
  override readonly name = 'GrpcCallError';
  /** code is the numeric gRPC status code. */
  readonly code: number;
  /** cairnCode is the Cairn error code (`cairn-error-code`), or undefined for failures of the transport itself. */
  readonly cairnCode: string | undefined;
  /** retryable is the server's `cairn-retryable` verdict, or undefined when it sent none. */
  readonly retryable: boolean | undefined;
  /** leader is the leader's address the server named (`cairn-leader`), if any. */
  readonly leader: string | undefined;
  /** metadata is the call's trailing metadata. */
  readonly metadata: Metadata;

  constructor(error: ServiceError) {
    super(error.details === '' ? error.message : error.details);
    this.code = error.code;
    this.metadata = error.metadata ?? new Metadata();
    this.cairnCode = textOf(this.metadata, errorCodeMetadataKey);
    const retryable = textOf(this.metadata, retryableMetadataKey);
    this.retryable = retryable === undefined ? undefined : retryable === 'true';
    this.leader = textOf(this.metadata, leaderMetadataKey);
  }

  /** statusName is the name of the gRPC status code ('NOT_FOUND'), or its number when unknown. */
  get statusName(): string {
    return grpcStatus[this.code] ?? String(this.code);
  }
}

function textOf(metadata: Metadata, key: string): string | undefined {
  const value = metadata.get(key)[0];
  return typeof value === 'string' ? value : undefined;
}

/** ClientOptions tune the channel. */
export interface ClientOptions {
  /**
   * keepaliveMs: while a call is open, ping the server after this long without traffic, and drop the connection
   * (the call fails with UNAVAILABLE) when the ping is not answered within keepaliveTimeoutMs. Unset: no pings.
   */
  readonly keepaliveMs?: number;
  readonly keepaliveTimeoutMs?: number;
}

/** ServerStream is an open server-streaming call. */
export interface ServerStream {
  /**
   * messages yields each decoded message in order. It ends when the server ends the stream with OK and throws a
   * GrpcCallError otherwise (CANCELLED after cancel()). Iterate it once.
   */
  readonly messages: AsyncIterable<Record<string, unknown>>;
  /** cancel ends the call (idempotent); the server sees the cancellation. */
  cancel(): void;
}

/**
 * clientFlowControlWindowBytes is the HTTP/2 receive window (per stream and per connection) of a client channel:
 * how much response data the member may send before this client reads it. Bounded: it is also the most a channel
 * buffers unread.
 */
export const clientFlowControlWindowBytes = 4 * 1024 * 1024;

/** ClientApiClient calls the methods of the client port's services (Naming, Health) at one address. */
export class ClientApiClient {
  private readonly client: Client;

  /** constructor opens a channel to `address` ("host:port") without TLS; `deadlineMs` bounds every unary call. */
  constructor(address: string, private readonly deadlineMs: number, options: ClientOptions = {}) {
    const channelOptions: ChannelOptions = {
      // What the member may send (a full instance list), not grpc-js's default 4 MiB receive bound.
      'grpc.max_receive_message_length': grpcResponseBytesMax(limits),
      // channelz (grpc-js's introspection) would time-stamp and count every call of a client nobody inspects.
      'grpc.enable_channelz': 0,
      // HTTP/2's initial window is 64 KiB per stream and per connection: concurrent lists (44 KB for 100 instances)
      // on one channel would trickle through it, a WINDOW_UPDATE round trip every 32 KiB (bench: +9-14% lists/s
      // at 64 clients, a quarter less member CPU per list, with the larger window).
      'grpc-node.flow_control_window': clientFlowControlWindowBytes,
      ...(options.keepaliveMs === undefined ? {} : {
        'grpc.keepalive_time_ms': options.keepaliveMs,
        'grpc.keepalive_timeout_ms': options.keepaliveTimeoutMs ?? 10_000,
      }),
    };
    this.client = new Client(address, credentials.createInsecure(), channelOptions);
  }

  /** call makes one unary call of `service` (fully qualified) `method` and resolves with the decoded response. */
  call(service: string, method: string, request: object): Promise<Record<string, unknown>> {
    const definition = methodDefinitionOf(service, method);
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest(
        definition.path,
        definition.requestSerialize,
        responseDecoder(service, method, (bytes: Buffer): Record<string, unknown> => ({ ...definition.responseDeserialize(bytes) })),
        request,
        new Metadata(),
        { deadline: Date.now() + this.deadlineMs },
        (error, response) => {
          if (error !== null) reject(new GrpcCallError(error));
          else if (response === undefined) reject(new GrpcCallError(unexpectedEmpty()));
          else resolve(response);
        },
      );
    });
  }

  /**
   * stream opens a server-streaming call of `service` `method` (Subscribe) without a deadline: it lasts until the
   * server ends it, the connection breaks (keepalive, if configured, notices a silent peer) or cancel() is called.
   * Messages are read with back-pressure: the next is taken when the consumer asks for it.
   */
  stream(service: string, method: string, request: object): ServerStream {
    const definition = methodDefinitionOf(service, method);
    const call: ClientReadableStream<Record<string, unknown>> = this.client.makeServerStreamRequest(
      definition.path,
      definition.requestSerialize,
      responseDecoder(service, method, (bytes: Buffer): Record<string, unknown> => ({ ...definition.responseDeserialize(bytes) })),
      request,
      new Metadata(),
      {},
    );
    // The iterator reports the error; this listener keeps an error emitted after the iteration stopped (a cancel
    // after a break) from being an unhandled 'error' event.
    call.on('error', () => undefined);
    return { messages: messagesOf(call), cancel: () => call.cancel() };
  }

  /** close closes the channel. */
  close(): void {
    this.client.close();
  }
}

async function* messagesOf(call: ClientReadableStream<Record<string, unknown>>): AsyncGenerator<Record<string, unknown>> {
  try {
    for await (const message of call) yield message as Record<string, unknown>;
  } catch (error) {
    throw isServiceError(error) ? new GrpcCallError(error) : error;
  } finally {
    call.cancel();
  }
}

function isServiceError(error: unknown): error is ServiceError {
  return error instanceof Error && typeof Reflect.get(error, 'code') === 'number' && 'metadata' in error;
}

function unexpectedEmpty(): ServiceError {
  return Object.assign(new Error('empty response'), { code: grpcStatus.INTERNAL, details: 'empty response', metadata: new Metadata() });
}
