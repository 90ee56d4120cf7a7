// How an operating error leaves the HTTP API, in the three shapes its clients expect (docs/errors.md):
// - Nacos v1 (`/nacos/v1/ns/...`): a plain-text body with Nacos's status (reference/NACOS.md §1.8);
// - Nacos v2 (`/nacos/v2/ns/...`): the `{code, message, data}` envelope with Nacos's numeric codes (§1.9);
// - Cairn's own routes: the CairnError JSON `{code, message, retryable, details}` with the catalog's status.
// Every shape carries the Cairn code (in the text, or as `code`) and the `Cairn-Error-Code` header, so clients can
// match on it. Anything that is not a CairnError is a bug or a framework refusal: framework refusals (body too
// large, unreadable body) become their catalog code; anything else is CAIRN_INTERNAL, logged, its message withheld.

import { maxHeaderSize, STATUS_CODES } from 'node:http';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { CairnError, isCairnError, type CairnErrorCode } from '../../errors.ts';
import { limits } from '../../limits.ts';
import { assertNever } from '../../assert.ts';

/** errorCodeHeader is the response header carrying the Cairn code of an error answer. */
export const errorCodeHeader = 'cairn-error-code';

/** ApiFlavour is which error shape a URL answers with. */
export type ApiFlavour = 'nacos-v1' | 'nacos-v2' | 'cairn';

/** flavourOf picks the error shape from the request path. */
export function flavourOf(url: string): ApiFlavour {
  if (url.startsWith('/nacos/v2/')) return 'nacos-v2';
  if (url.startsWith('/nacos/')) return 'nacos-v1';
  return 'cairn';
}

function isFastifyError(error: unknown): error is FastifyError {
  return error instanceof Error && typeof (error as { code?: unknown }).code === 'string';
}

/** toCairnError turns anything thrown while serving a request into the CairnError the client sees. */
export function toCairnError(error: unknown): CairnError {
  if (isCairnError(error)) return error;
  if (isFastifyError(error)) {
    if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return new CairnError('CAIRN_REQUEST_TOO_LARGE', `the body exceeds ${limits.requestBodyBytesMax} bytes.`);
    }
    const status = error.statusCode ?? 500;
    if (status >= 400 && status < 500) return new CairnError('CAIRN_INVALID_ARGUMENT', error.message, { cause: error });
  }
  return new CairnError('CAIRN_INTERNAL', undefined, { cause: error });
}

/**
 * errorText is the human-readable text of an error followed by its code: the request-specific sentence when there
 * is one (Nacos's own wording where Cairn keeps it, e.g. `Param 'ip' is required.`), else the catalog's message.
 */
export function errorText(error: CairnError): string {
  return `${error.detail ?? error.message} (${error.code})`;
}

/**
 * nacosStatusOf is the HTTP status of an error on a Nacos route (`path` without its query). Nacos reports conflicts
 * ("specified service already exists") as 400, and a missing resource as 404 only when reading it; a write naming a
 * missing service or instance is 400 there too ("instance not found", "specified service not exist"). Nacos 2.x's
 * v2 service endpoints answer a missing service with 400 on every method, reads included (ServiceOperatorV2Impl
 * throws NacosApiException(INVALID_PARAM, SERVICE_NOT_EXIST), and NacosApiExceptionHandler answers its errCode as
 * the status). Other statuses are the catalog's.
 */
export function nacosStatusOf(error: CairnError, method: string, flavour: 'nacos-v1' | 'nacos-v2', path = ''): number {
  if (error.httpStatus === 409) return 400;
  if (error.httpStatus === 404 && flavour === 'nacos-v1' && method !== 'GET') return 400;
  if (error.code === 'CAIRN_SERVICE_NOT_FOUND' && flavour === 'nacos-v2' && isV2ServicePath(path)) return 400;
  return error.httpStatus;
}

/** isV2ServicePath tells whether `path` (without its query) is one of the v2 service endpoints. */
function isV2ServicePath(path: string): boolean {
  return path.startsWith('/nacos/v2/ns/service');
}

/** NacosV2Code is one of Nacos's v2 error codes (api/model/v2/ErrorCode.java) with its abstract message. */
export interface NacosV2Code {
  readonly code: number;
  readonly message: string;
}

const v2 = {
  parameterMissing: { code: 10000, message: 'parameter missing' },
  accessDenied: { code: 10001, message: 'access denied' },
  parameterValidate: { code: 20002, message: 'parameter validate error' },
  resourceConflict: { code: 20005, message: 'resource conflict' },
  serviceName: { code: 21000, message: 'service name error' },
  weight: { code: 21001, message: 'weight error' },
  instanceMetadata: { code: 21002, message: 'instance metadata error' },
  instanceNotFound: { code: 21003, message: 'instance not found' },
  instance: { code: 21004, message: 'instance error' },
  serviceMetadata: { code: 21005, message: 'service metadata error' },
  selector: { code: 21006, message: 'selector error' },
  serviceAlreadyExist: { code: 21007, message: 'service already exist' },
  serviceNotExist: { code: 21008, message: 'service not exist' },
  serviceDeleteFailure: { code: 21009, message: 'service delete failure' },
  healthyParamMiss: { code: 21010, message: 'healthy param miss' },
  healthCheckStillRunning: { code: 21011, message: 'health check still running' },
  namespaceNotExist: { code: 22001, message: 'namespace not exist' },
  serverError: { code: 30000, message: 'server error' },
} as const satisfies Record<string, NacosV2Code>;

/** nacosV2Codes lists the Nacos v2 codes Cairn answers with. */
export const nacosV2Codes: Readonly<Record<keyof typeof v2, NacosV2Code>> = v2;

function invalidArgumentCode(error: CairnError, serviceRoute: boolean): NacosV2Code {
  const param = error.details?.['parameter'];
  const missing = error.details?.['problem'] === 'missing' || (error.detail?.endsWith('is required.') ?? false);
  if (missing) return param === 'healthy' ? v2.healthyParamMiss : v2.parameterMissing;
  switch (param) {
    case 'weight':
      return v2.weight;
    case 'metadata':
      return serviceRoute ? v2.serviceMetadata : v2.instanceMetadata;
    case 'selector':
      return v2.selector;
    case 'serviceName':
    case 'groupName':
      return v2.serviceName;
    default:
      return v2.parameterValidate;
  }
}

/** nacosV2CodeOf maps a Cairn error to Nacos's v2 code; `serviceRoute` tells service metadata from instance metadata. */
export function nacosV2CodeOf(error: CairnError, serviceRoute: boolean): NacosV2Code {
  const code: CairnErrorCode = error.code;
  switch (code) {
    case 'CAIRN_INVALID_ARGUMENT':
      return invalidArgumentCode(error, serviceRoute);
    case 'CAIRN_METADATA_TOO_LARGE':
      return serviceRoute ? v2.serviceMetadata : v2.instanceMetadata;
    case 'CAIRN_NAME_TOO_LONG':
    case 'CAIRN_REQUEST_TOO_LARGE':
    case 'CAIRN_ENTRY_TOO_LARGE':
      return v2.parameterValidate;
    case 'CAIRN_REQUEST_ID_REUSED':
      return v2.parameterValidate;
    case 'CAIRN_REQUEST_TIMEOUT':
      // Never answered in a v2 envelope (the request was not read, so its API is unknown); mapped for completeness.
      return v2.serverError;
    case 'CAIRN_HEALTH_CHECK_ACTIVE':
      return v2.healthCheckStillRunning;
    case 'CAIRN_INSTANCES_PER_SERVICE_EXCEEDED':
    case 'CAIRN_CLUSTERS_PER_SERVICE_EXCEEDED':
    case 'CAIRN_SERVICES_PER_NAMESPACE_EXCEEDED':
    case 'CAIRN_NAMESPACES_EXCEEDED':
    case 'CAIRN_SUBSCRIBERS_PER_SERVICE_EXCEEDED':
    case 'CAIRN_SUBSCRIBERS_EXCEEDED':
    case 'CAIRN_SESSION_INSTANCES_EXCEEDED':
    case 'CAIRN_SESSIONS_EXCEEDED':
    case 'CAIRN_SUBSCRIBER_TOO_SLOW':
    case 'CAIRN_MEMBERSHIP_CHANGE_PENDING':
    case 'CAIRN_VERSION_MISMATCH':
      return v2.resourceConflict;
    case 'CAIRN_NAMESPACE_NOT_FOUND':
      return v2.namespaceNotExist;
    case 'CAIRN_SERVICE_NOT_FOUND':
      return v2.serviceNotExist;
    case 'CAIRN_SERVICE_ALREADY_EXISTS':
      return v2.serviceAlreadyExist;
    case 'CAIRN_SERVICE_HAS_INSTANCES':
      return v2.serviceDeleteFailure;
    case 'CAIRN_INSTANCE_NOT_FOUND':
      return v2.instanceNotFound;
    case 'CAIRN_EPHEMERAL_MISMATCH':
    case 'CAIRN_SESSION_CLOSED':
    case 'CAIRN_SESSION_EXPIRED':
      return v2.instance;
    case 'CAIRN_UNAUTHORIZED':
    case 'CAIRN_FORBIDDEN':
      return v2.accessDenied;
    case 'CAIRN_MEMBERSHIP_CHANGE_INVALID':
    case 'CAIRN_MEMBER_NOT_FOUND':
      return v2.parameterValidate;
    case 'CAIRN_NOT_LEADER':
    case 'CAIRN_NO_LEADER':
    case 'CAIRN_NO_QUORUM':
    case 'CAIRN_MEMBER_BEHIND':
    case 'CAIRN_OUTCOME_UNKNOWN':
    case 'CAIRN_PROPOSAL_DROPPED':
    case 'CAIRN_UNCOMMITTED_BYTES_EXCEEDED':
    case 'CAIRN_TOO_MANY_PENDING_READS':
    case 'CAIRN_TRANSFER_IN_PROGRESS':
    case 'CAIRN_MEMBER_STATE_MISSING':
    case 'CAIRN_SHUTTING_DOWN':
    case 'CAIRN_MEMBER_STALLED':
    case 'CAIRN_DISTRO_UNAVAILABLE':
    case 'CAIRN_STORAGE_CORRUPT':
    case 'CAIRN_STORAGE_IO_ERROR':
    case 'CAIRN_DATA_DIR_IN_USE':
    case 'CAIRN_NOT_IMPLEMENTED':
    case 'CAIRN_INTERNAL':
      return v2.serverError;
    default:
      return assertNever(code, 'unmapped Cairn error code');
  }
}

/** NacosV2Envelope is the body of every v2 answer: code 0 and `success` with the data, or an error code with its text. */
export interface NacosV2Envelope<T> {
  readonly code: number;
  readonly message: string;
  readonly data: T;
}

/** v2Success wraps a v2 answer's data in Nacos's envelope. */
export function v2Success<T>(data: T): NacosV2Envelope<T> {
  return { code: 0, message: 'success', data };
}

/** sendError answers `error` in the shape of the request's API and logs what the client cannot fix. */
export function sendError(error: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const cairnError = toCairnError(error);
  if (cairnError.code === 'CAIRN_INTERNAL' || cairnError.code === 'CAIRN_STORAGE_CORRUPT') {
    request.log.error({ err: error }, 'request failed');
  }
  reply.header(errorCodeHeader, cairnError.code);
  const path = request.url.split('?')[0] ?? request.url;
  const flavour = flavourOf(path);
  switch (flavour) {
    case 'nacos-v1':
      return reply.code(nacosStatusOf(cairnError, request.method, flavour)).type('text/plain; charset=utf-8').send(errorText(cairnError));
    case 'nacos-v2': {
      const code = nacosV2CodeOf(cairnError, isV2ServicePath(path));
      const body: NacosV2Envelope<string> = { code: code.code, message: code.message, data: errorText(cairnError) };
      return reply.code(nacosStatusOf(cairnError, request.method, flavour, path)).send(body);
    }
    case 'cairn':
      return reply.code(cairnError.httpStatus).send(cairnError.toJSON());
    default:
      return assertNever(flavour, 'unknown API flavour');
  }
}

/** sendNoSuchApi answers a request no route matches: Nacos's 501 `no such api:<METHOD>:<uri>` (DistroFilter). */
export function sendNoSuchApi(request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const path = request.url.split('?')[0] ?? request.url;
  if (flavourOf(path) === 'cairn') {
    return sendError(new CairnError('CAIRN_NOT_IMPLEMENTED', `no such api: ${request.method} ${path}`), request, reply);
  }
  reply.header(errorCodeHeader, 'CAIRN_NOT_IMPLEMENTED');
  return reply.code(501).type('text/plain; charset=utf-8').send(`no such api:${request.method}:${path}`);
}

/**
 * clientErrorAnswer is the raw HTTP/1.1 answer to a request Node's parser refused before fastify saw it: a malformed
 * request line, header or body framing, or a header section over Node's maxHeaderSize. The request's path, and so
 * its API, is unknown, so the answer takes Cairn's own shape. A request that did not arrive within
 * limits.requestReceiveMsMax gets 408 CAIRN_REQUEST_TIMEOUT.
 */
export function clientErrorAnswer(error: Error & { readonly code?: unknown }): string {
  const cairnError = error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
    ? new CairnError('CAIRN_REQUEST_TIMEOUT', 'the request did not arrive within the receive bound (limits.requestReceiveMsMax) of its start.')
    : error.code === 'HPE_HEADER_OVERFLOW'
      ? new CairnError('CAIRN_REQUEST_TOO_LARGE', `the request's header section exceeds ${maxHeaderSize} bytes.`)
      : new CairnError('CAIRN_INVALID_ARGUMENT', 'the request is not well-formed HTTP/1.1.');
  const body = JSON.stringify(cairnError.toJSON());
  return [
    `HTTP/1.1 ${cairnError.httpStatus} ${STATUS_CODES[cairnError.httpStatus] ?? ''}`,
    'Content-Type: application/json; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    `${errorCodeHeader}: ${cairnError.code}`,
    'Connection: close',
    '',
    body,
  ].join('\r\n');
}
