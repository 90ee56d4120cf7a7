// client: a small client of the client gRPC port over the same definitions as the server (proto.ts), for the
// `cairn` CLI, tests and workload drivers. Unary calls only; each has a deadline. A failed call rejects with a
// GrpcCallError that carries the gRPC status and the Cairn code the server put in the trailing metadata.

import { Client, Metadata, credentials, status as grpcStatus, type ServiceError } from '@grpc/grpc-js';
import { errorCodeMetadataKey, leaderMetadataKey, retryableMetadataKey } from './errors.ts';
import { methodDefinitionOf } from './proto.ts';

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

/** ClientApiClient calls the methods of the client port's services (Naming, Health) at one address. */
export class ClientApiClient {
  private readonly client: Client;

  /** constructor opens a channel to `address` ("host:port") without TLS; `deadlineMs` bounds every call. */
  constructor(address: string, private readonly deadlineMs: number) {
    this.client = new Client(address, credentials.createInsecure());
  }

  /** call makes one unary call of `service` (fully qualified) `method` and resolves with the decoded response. */
  call(service: string, method: string, request: object): Promise<Record<string, unknown>> {
    const definition = methodDefinitionOf(service, method);
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest(
        definition.path,
        definition.requestSerialize,
        (bytes: Buffer): Record<string, unknown> => ({ ...definition.responseDeserialize(bytes) }),
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

  /** close closes the channel. */
  close(): void {
    this.client.close();
  }
}

function unexpectedEmpty(): ServiceError {
  return Object.assign(new Error('empty response'), { code: grpcStatus.INTERNAL, details: 'empty response', metadata: new Metadata() });
}
