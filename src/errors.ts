// The catalog of operating errors (STYLE.md §4): every expected failure a client can see has one permanent code
// here, with the HTTP status, the gRPC status and whether the same request may succeed if sent again.
//
// Clients match on `code`, never on the message. A code is never renamed or reused; a new failure gets a new code,
// a line in docs/errors.md and a line in the golden list of test/errors.test.ts.
//
// `retryable: true` means: the same request may succeed later (after a backoff, possibly at another member)
// without the client or an operator changing anything. Writes are resent with the same request id, so a retry of
// a write that did commit is recognised and not applied twice.
//
// The httpStatus is what Cairn's own routes answer and the default of the Nacos routes; where Nacos clients depend
// on a different status for one route, the Nacos adapter keeps Nacos's and docs/nacos-compatibility.md says so.

import type { NodeId, ProposeErrorCode, ReadIndexErrorCode, TransferResult } from './raft/types.ts';
import { assertNever } from './assert.ts';

/** GrpcStatus names the numeric gRPC status codes (grpc/doc/statuscodes.md), so the catalog needs no dependency. */
export const GrpcStatus = Object.freeze({
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const);

/** GrpcStatusCode is one numeric gRPC status code. */
export type GrpcStatusCode = (typeof GrpcStatus)[keyof typeof GrpcStatus];

/** ErrorSpec is a catalog entry before its code is attached. */
interface ErrorSpec {
  readonly message: string;
  readonly httpStatus: number;
  readonly grpcStatus: GrpcStatusCode;
  readonly retryable: boolean;
}

/** CatalogEntry is one operating error: its permanent code, a short abstract message and how it is answered. */
export interface CatalogEntry<Code extends string = string> extends ErrorSpec {
  readonly code: Code;
}

const G = GrpcStatus;

const specs = {
  // Request validation. Nothing was written; the request must change before it can succeed.
  CAIRN_INVALID_ARGUMENT: { message: 'invalid argument', httpStatus: 400, grpcStatus: G.INVALID_ARGUMENT, retryable: false },
  CAIRN_NAME_TOO_LONG: { message: 'name too long', httpStatus: 400, grpcStatus: G.INVALID_ARGUMENT, retryable: false },
  CAIRN_METADATA_TOO_LARGE: { message: 'metadata too large', httpStatus: 400, grpcStatus: G.INVALID_ARGUMENT, retryable: false },
  CAIRN_REQUEST_TOO_LARGE: { message: 'request body too large', httpStatus: 413, grpcStatus: G.INVALID_ARGUMENT, retryable: false },
  CAIRN_ENTRY_TOO_LARGE: { message: 'command too large for one log entry', httpStatus: 413, grpcStatus: G.INVALID_ARGUMENT, retryable: false },
  CAIRN_REQUEST_ID_REUSED: { message: 'request id already used by a different write', httpStatus: 409, grpcStatus: G.FAILED_PRECONDITION, retryable: false },
  // HTTP only: the request did not arrive within limits.requestReceiveMsMax; it was not read, so nothing was written.
  CAIRN_REQUEST_TIMEOUT: { message: 'the request did not arrive in time', httpStatus: 408, grpcStatus: G.DEADLINE_EXCEEDED, retryable: true },
  // A write read as the member resumed from a stall (src/stall.ts): it may have waited while its client gave up.
  CAIRN_MEMBER_STALLED: { message: 'this member stood still and refuses writes read as it resumes; nothing was written', httpStatus: 503, grpcStatus: G.UNAVAILABLE, retryable: true },

  // Quotas. Nothing was written; something must be removed (or the limit raised) first.
  CAIRN_INSTANCES_PER_SERVICE_EXCEEDED: { message: 'too many instances in this service', httpStatus: 409, grpcStatus: G.RESOURCE_EXHAUSTED, retryable: false },
  CAIRN_CLUSTERS_PER_SERVICE_EXCEEDED: { message: 'too many clusters in this service', httpStatus: 409, grpcStatus: G.RESOURCE_EXHAUSTED, retryable: false },
  CAIRN_SERVICES_PER_NAMESPACE_EXCEEDED: { message: 'too many services in this namespace', httpStatus: 409, grpcStatus: G.RESOURCE_EXHAUSTED, retryable: false },
  CAIRN_NAMESPACES_EXCEEDED: { message: 'too many namespaces', httpStatus: 409, grpcStatus: G.RESOURCE_EXHAUSTED, retryable: false },
  CAIRN_SUBSCRIBERS_PER_SERVICE_EXCEEDED: { message: 'too many subscribers of this service', httpStatus: 429, grpcStatus: G.RESOURCE_EXHAUSTED, retryable: true },
  CAIRN_SUBSCRIBERS_EXCEEDED: { message: 'too many subscribers on this member', httpStatus: 429, grpcStatus: G.RESOURCE_EXHAUSTED, retryable: true },

  // Streams (Subscribe, Session) ended by the member. The client opens a new stream.
  CAIRN_SUBSCRIBER_TOO_SLOW: { message: 'the subscriber did not read its stream; resume from the last revision received', httpStatus: 429, grpcStatus: G.RESOURCE_EXHAUSTED, retryable: true },
  CAIRN_MEMBER_BEHIND: { message: 'this member is behind (its state is older than what was asked for, or still loading); ask another member or later', httpStatus: 503, grpcStatus: G.UNAVAILABLE, retryable: true },
  CAIRN_SESSION_EXPIRED: { message: 'the session was silent past its timeout and its instances were removed', httpStatus: 410, grpcStatus: G.ABORTED, retryable: true },

  // Consensus: the write or linearizable read could not be served now. Each says whether the write committed.
  CAIRN_NOT_LEADER: { message: 'this member is not the leader', httpStatus: 503, grpcStatus: G.UNAVAILABLE, retryable: true },
  CAIRN_NO_LEADER: { message: 'the cluster has no leader', httpStatus: 503, grpcStatus: G.UNAVAILABLE, retryable: true },
  CAIRN_NO_QUORUM: { message: 'this member cannot reach a majority of the cluster', httpStatus: 503, grpcStatus: G.UNAVAILABLE, retryable: true },
  CAIRN_OUTCOME_UNKNOWN: { message: 'timed out after the proposal left: outcome unknown', httpStatus: 504, grpcStatus: G.DEADLINE_EXCEEDED, retryable: true },
  CAIRN_PROPOSAL_DROPPED: { message: 'the proposal was dropped and did not commit', httpStatus: 503, grpcStatus: G.UNAVAILABLE, retryable: true },
  CAIRN_UNCOMMITTED_BYTES_EXCEEDED: { message: 'too many uncommitted writes', httpStatus: 503, grpcStatus: G.RESOURCE_EXHAUSTED, retryable: true },
  CAIRN_TOO_MANY_PENDING_READS: { message: 'too many linearizable reads pending', httpStatus: 503, grpcStatus: G.RESOURCE_EXHAUSTED, retryable: true },
  CAIRN_TRANSFER_IN_PROGRESS: { message: 'leadership transfer in progress', httpStatus: 503, grpcStatus: G.UNAVAILABLE, retryable: true },

  // Membership.
  CAIRN_MEMBERSHIP_CHANGE_PENDING: { message: 'another membership change is pending', httpStatus: 409, grpcStatus: G.ABORTED, retryable: true },
  CAIRN_MEMBERSHIP_CHANGE_INVALID: { message: 'invalid membership change', httpStatus: 400, grpcStatus: G.FAILED_PRECONDITION, retryable: false },
  CAIRN_MEMBER_NOT_FOUND: { message: 'no such member', httpStatus: 404, grpcStatus: G.NOT_FOUND, retryable: false },
  CAIRN_MEMBER_STATE_MISSING: { message: 'member has no state for its cluster and refuses to rejoin as a voter', httpStatus: 503, grpcStatus: G.FAILED_PRECONDITION, retryable: false },

  // The registry's model.
  CAIRN_NAMESPACE_NOT_FOUND: { message: 'namespace not found', httpStatus: 404, grpcStatus: G.NOT_FOUND, retryable: false },
  CAIRN_SERVICE_NOT_FOUND: { message: 'service not found', httpStatus: 404, grpcStatus: G.NOT_FOUND, retryable: false },
  CAIRN_SERVICE_ALREADY_EXISTS: { message: 'service already exists', httpStatus: 409, grpcStatus: G.ALREADY_EXISTS, retryable: false },
  CAIRN_SERVICE_HAS_INSTANCES: { message: 'service still has instances', httpStatus: 409, grpcStatus: G.FAILED_PRECONDITION, retryable: false },
  CAIRN_INSTANCE_NOT_FOUND: { message: 'instance not found', httpStatus: 404, grpcStatus: G.NOT_FOUND, retryable: false },
  CAIRN_VERSION_MISMATCH: { message: 'instance version is not the expected one', httpStatus: 409, grpcStatus: G.FAILED_PRECONDITION, retryable: false },
  CAIRN_EPHEMERAL_MISMATCH: { message: 'a service holds either ephemeral or persistent instances, not both', httpStatus: 400, grpcStatus: G.FAILED_PRECONDITION, retryable: false },
  CAIRN_HEALTH_CHECK_ACTIVE: { message: 'health check is still working', httpStatus: 400, grpcStatus: G.FAILED_PRECONDITION, retryable: false },

  // The AP path (ephemeral instances, Distro).
  CAIRN_DISTRO_UNAVAILABLE: { message: 'the member responsible for this service could not be reached', httpStatus: 503, grpcStatus: G.UNAVAILABLE, retryable: true },
  CAIRN_SESSION_CLOSED: { message: 'the session is closed', httpStatus: 409, grpcStatus: G.FAILED_PRECONDITION, retryable: false },

  // Authentication and authorization (reserved: answered once auth is switched on).
  CAIRN_UNAUTHORIZED: { message: 'authentication required', httpStatus: 401, grpcStatus: G.UNAUTHENTICATED, retryable: false },
  CAIRN_FORBIDDEN: { message: 'permission denied', httpStatus: 403, grpcStatus: G.PERMISSION_DENIED, retryable: false },

  // The member itself.
  CAIRN_SHUTTING_DOWN: { message: 'member is shutting down', httpStatus: 503, grpcStatus: G.UNAVAILABLE, retryable: true },
  CAIRN_STORAGE_CORRUPT: { message: 'storage corruption detected', httpStatus: 500, grpcStatus: G.DATA_LOSS, retryable: false },
  // The filesystem refused a read or write of the data directory (permissions, a read-only mount, a full disk, a path
  // that is not a directory): the files were not found damaged, so the operator fixes the filesystem, never wipes.
  CAIRN_STORAGE_IO_ERROR: { message: 'the filesystem refused a read or write of the data directory (not corruption)', httpStatus: 503, grpcStatus: G.FAILED_PRECONDITION, retryable: false },
  CAIRN_DATA_DIR_IN_USE: { message: 'the data directory is in use by another process', httpStatus: 409, grpcStatus: G.FAILED_PRECONDITION, retryable: false },
  CAIRN_NOT_IMPLEMENTED: { message: 'not implemented', httpStatus: 501, grpcStatus: G.UNIMPLEMENTED, retryable: false },
  CAIRN_INTERNAL: { message: 'internal error', httpStatus: 500, grpcStatus: G.INTERNAL, retryable: false },

  // Session quotas (gRPC Session, the AP path). Nothing was written.
  // One session keeps at most limits.distroSessionInstancesMax instances: the client must deregister some first.
  CAIRN_SESSION_INSTANCES_EXCEEDED: { message: 'too many instances in this session', httpStatus: 409, grpcStatus: G.RESOURCE_EXHAUSTED, retryable: false },
  // A member holds at most limits.distroSessionsMax open sessions: sessions end, and other members have room.
  CAIRN_SESSIONS_EXCEEDED: { message: 'too many sessions on this member', httpStatus: 503, grpcStatus: G.RESOURCE_EXHAUSTED, retryable: true },
} as const satisfies Record<string, ErrorSpec>;

/** CairnErrorCode is every permanent error code of the catalog. */
export type CairnErrorCode = keyof typeof specs;

/** ErrorCatalog maps each code to its entry. */
export type ErrorCatalog = { readonly [Code in CairnErrorCode]: Readonly<CatalogEntry<Code>> };

function buildCatalog(): ErrorCatalog {
  const catalog: Record<string, Readonly<CatalogEntry>> = {};
  for (const [code, spec] of Object.entries(specs)) catalog[code] = Object.freeze({ code, ...spec });
  return Object.freeze(catalog) as ErrorCatalog;
}

/** errorCatalog is the frozen catalog of every operating error, keyed by code. */
export const errorCatalog: ErrorCatalog = buildCatalog();

/** errorCodes lists every code in catalog order. */
export const errorCodes: readonly CairnErrorCode[] = Object.freeze(Object.keys(specs) as CairnErrorCode[]);

/** isCairnErrorCode tells whether `value` is a code of the catalog. */
export function isCairnErrorCode(value: unknown): value is CairnErrorCode {
  return typeof value === 'string' && Object.hasOwn(specs, value);
}

/** CairnErrorDetails is structured context for a client (a leader hint, a limit and the value that broke it). */
export type CairnErrorDetails = Readonly<Record<string, string | number | boolean | null>>;

/** CairnErrorOptions carries the optional structured details and cause of a CairnError. */
export interface CairnErrorOptions {
  readonly details?: CairnErrorDetails;
  readonly cause?: unknown;
}

/**
 * messageOf joins a catalog message and a detail: "abstract: detail". A detail that already starts with the abstract
 * as a phrase (the Nacos adapter shows details alone, so some read "service not found: <service>") is the message as
 * it is: gRPC status messages said "service not found: service not found: ..." (session 32). Details are stored in
 * the remembered results of the Raft log and digested with the keyspace, so they are not rewritten: the join is.
 */
function messageOf(abstract: string, detail: string | undefined): string {
  if (detail === undefined || detail === '') return abstract;
  const repeats = detail.startsWith(abstract) && !/^[\p{L}\p{N}]/u.test(detail.slice(abstract.length));
  return repeats ? detail : `${abstract}: ${detail}`;
}

/** CairnError is an operating error: a catalog code with its statuses, an optional detail message and details. */
export class CairnError extends Error {
  override readonly name = 'CairnError';
  /** code is the permanent catalog code clients match on. */
  readonly code: CairnErrorCode;
  readonly httpStatus: number;
  readonly grpcStatus: GrpcStatusCode;
  readonly retryable: boolean;
  /** detail is the request-specific part of the message (the abstract part is the catalog's), if any. */
  readonly detail: string | undefined;
  readonly details: CairnErrorDetails | undefined;

  constructor(code: CairnErrorCode, detail?: string, options: CairnErrorOptions = {}) {
    const entry = errorCatalog[code];
    super(messageOf(entry.message, detail), options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.httpStatus = entry.httpStatus;
    this.grpcStatus = entry.grpcStatus;
    this.retryable = entry.retryable;
    this.detail = detail === '' ? undefined : detail;
    this.details = options.details === undefined ? undefined : Object.freeze({ ...options.details });
  }

  /** toJSON is the body a client sees: code, message, retryable and details; never the stack or the cause. */
  toJSON(): { code: CairnErrorCode; message: string; retryable: boolean; details?: CairnErrorDetails } {
    const body = { code: this.code, message: this.message, retryable: this.retryable };
    return this.details === undefined ? body : { ...body, details: this.details };
  }
}

/** isCairnError tells whether `value` is a CairnError, and, given `code`, one with that code. */
export function isCairnError(value: unknown, code?: CairnErrorCode): value is CairnError {
  return value instanceof CairnError && (code === undefined || value.code === code);
}

/** TransferErrorCode is why transferLeadership() refused, as the Raft core reports it. */
export type TransferErrorCode = Extract<TransferResult, { ok: false }>['code'];

/** RaftErrorCode is every refusal code of the Raft core: propose, readIndex and transferLeadership. */
export type RaftErrorCode = ProposeErrorCode | ReadIndexErrorCode | TransferErrorCode;

/** cairnCodeOfRaftError maps a refusal of the Raft core to its catalog code; every refusal certainly did not commit. */
export function cairnCodeOfRaftError(code: RaftErrorCode): CairnErrorCode {
  switch (code) {
    case 'not-leader':
      return 'CAIRN_NOT_LEADER';
    case 'no-leader':
      return 'CAIRN_NO_LEADER';
    case 'transfer-in-progress':
      return 'CAIRN_TRANSFER_IN_PROGRESS';
    case 'uncommitted-bytes-exceeded':
      return 'CAIRN_UNCOMMITTED_BYTES_EXCEEDED';
    case 'entry-too-large':
      return 'CAIRN_ENTRY_TOO_LARGE';
    case 'membership-change-pending':
      return 'CAIRN_MEMBERSHIP_CHANGE_PENDING';
    case 'membership-change-invalid':
      return 'CAIRN_MEMBERSHIP_CHANGE_INVALID';
    case 'too-many-pending-reads':
      return 'CAIRN_TOO_MANY_PENDING_READS';
    case 'unknown-member':
      return 'CAIRN_MEMBER_NOT_FOUND';
    default:
      return assertNever(code, 'unknown Raft error code');
  }
}

/**
 * cairnErrorFromRaft builds the CairnError for a refusal of the Raft core, with the leader hint in its details.
 * A "not leader" refusal without any known leader is reported as CAIRN_NO_LEADER: there is nobody to go to.
 */
export function cairnErrorFromRaft(code: RaftErrorCode, leaderHint: NodeId | null): CairnError {
  const cairnCode = code === 'not-leader' && leaderHint === null ? 'CAIRN_NO_LEADER' : cairnCodeOfRaftError(code);
  return new CairnError(cairnCode, undefined, { details: { leader: leaderHint } });
}
