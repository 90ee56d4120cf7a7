// How an operating error leaves the gRPC API (docs/grpc.md, docs/errors.md): the status code is the catalog's
// grpcStatus, and the Cairn code travels in three places, so every kind of client finds it:
// - the status message starts with it: "CAIRN_SERVICE_NOT_FOUND: service not found: ...";
// - trailing metadata `cairn-error-code` (plus `cairn-retryable`, and `cairn-leader` when a leader is known);
// - `grpc-status-details-bin`, the richer error model of gRPC (google.rpc.Status with one google.rpc.ErrorInfo:
//   reason = the Cairn code, domain = "cairn", metadata = the error's details as strings), which grpcurl and the
//   official clients decode.
// Anything that is not a CairnError is a bug: it becomes CAIRN_INTERNAL (status INTERNAL) with the catalog's
// abstract message, is logged, and its message and stack never reach the client.

import { Metadata, type StatusObject } from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { CairnError, isCairnError, type CairnErrorDetails } from '../../errors.ts';

/** errorCodeMetadataKey is the trailing-metadata key carrying the Cairn code of an error. */
export const errorCodeMetadataKey = 'cairn-error-code';
/** retryableMetadataKey is the trailing-metadata key carrying "true" or "false": may the same request succeed later. */
export const retryableMetadataKey = 'cairn-retryable';
/** leaderMetadataKey is the trailing-metadata key carrying the leader's address when the error knows it. */
export const leaderMetadataKey = 'cairn-leader';
/** statusDetailsMetadataKey is gRPC's key for the binary google.rpc.Status of the richer error model. */
export const statusDetailsMetadataKey = 'grpc-status-details-bin';
/** errorInfoDomain is the google.rpc.ErrorInfo domain of every Cairn error. */
export const errorInfoDomain = 'cairn';
/** errorInfoTypeUrl is the google.protobuf.Any type URL of google.rpc.ErrorInfo. */
export const errorInfoTypeUrl = 'type.googleapis.com/google.rpc.ErrorInfo';

// The two messages of google/rpc/status.proto and google/rpc/error_details.proto that Cairn sends, declared here
// (field names and numbers as upstream) rather than loaded from files nobody else needs; `Any` stands in for
// google.protobuf.Any with the same fields (only the wire format matters).
const anyType = new protobuf.Type('Any').add(new protobuf.Field('type_url', 1, 'string')).add(new protobuf.Field('value', 2, 'bytes'));
const statusType = new protobuf.Type('Status')
  .add(new protobuf.Field('code', 1, 'int32'))
  .add(new protobuf.Field('message', 2, 'string'))
  .add(new protobuf.Field('details', 3, 'Any', 'repeated'));
const errorInfoType = new protobuf.Type('ErrorInfo')
  .add(new protobuf.Field('reason', 1, 'string'))
  .add(new protobuf.Field('domain', 2, 'string'))
  .add(new protobuf.MapField('metadata', 3, 'string', 'string'));
new protobuf.Root().define('google.rpc').add(anyType).add(statusType).add(errorInfoType);

/** ErrorInfo is the google.rpc.ErrorInfo of a Cairn error. */
export interface ErrorInfo {
  readonly reason: string;
  readonly domain: string;
  readonly metadata: Readonly<Record<string, string>>;
}

function detailsAsStrings(details: CairnErrorDetails | undefined): Record<string, string> {
  const strings: Record<string, string> = {};
  for (const [key, value] of Object.entries(details ?? {})) if (value !== null) strings[key] = String(value);
  return strings;
}

/** encodeStatusDetails encodes the google.rpc.Status (with its ErrorInfo) of an error, for grpc-status-details-bin. */
export function encodeStatusDetails(error: CairnError): Buffer {
  const info = errorInfoType.encode(errorInfoType.fromObject({ reason: error.code, domain: errorInfoDomain, metadata: detailsAsStrings(error.details) })).finish();
  const status = statusType.fromObject({ code: error.grpcStatus, message: statusMessageOf(error), details: [{ type_url: errorInfoTypeUrl, value: info }] });
  return Buffer.from(statusType.encode(status).finish());
}

/** decodeErrorInfo reads the ErrorInfo out of a grpc-status-details-bin value; null when it carries none. */
export function decodeErrorInfo(bytes: Uint8Array): ErrorInfo | null {
  const status = statusType.toObject(statusType.decode(bytes), { arrays: true });
  const details: unknown = status['details'];
  if (!Array.isArray(details)) return null;
  for (const detail of details as Array<{ type_url?: unknown; value?: unknown }>) {
    if (detail.type_url === errorInfoTypeUrl && detail.value instanceof Uint8Array) {
      const info = errorInfoType.toObject(errorInfoType.decode(detail.value), { objects: true, defaults: true });
      return { reason: String(info['reason']), domain: String(info['domain']), metadata: info['metadata'] as Record<string, string> };
    }
  }
  return null;
}

/** statusMessageOf is the status message of an error: its code, then its message ("CAIRN_X: abstract: detail"). */
export function statusMessageOf(error: CairnError): string {
  return `${error.code}: ${error.message}`;
}

/** toCairnError turns anything a handler threw into the CairnError the client sees (CAIRN_INTERNAL for the unexpected). */
export function toCairnError(error: unknown): CairnError {
  return isCairnError(error) ? error : new CairnError('CAIRN_INTERNAL', undefined, { cause: error });
}

/** errorMetadata is the trailing metadata of an error answer. */
export function errorMetadata(error: CairnError): Metadata {
  const metadata = new Metadata();
  metadata.set(errorCodeMetadataKey, error.code);
  metadata.set(retryableMetadataKey, String(error.retryable));
  const leader = error.details?.['leader'];
  if (typeof leader === 'string' && leader !== '') metadata.set(leaderMetadataKey, leader);
  metadata.set(statusDetailsMetadataKey, encodeStatusDetails(error));
  return metadata;
}

/** statusOfError is the gRPC status a handler answers for `error` (already turned into a CairnError). */
export function statusOfError(error: CairnError): StatusObject {
  return { code: error.grpcStatus, details: statusMessageOf(error), metadata: errorMetadata(error) };
}
