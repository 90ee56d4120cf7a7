// bounds: the client gRPC port's maxima (STYLE.md §3), each derived from src/limits.ts with its reason, so they move
// with the model's limits instead of drifting from them.
//
// Requests: at most limits.requestBodyBytesMax, like an HTTP body; a larger message is refused by grpc-js before any
// handler runs, with status RESOURCE_EXHAUSTED (gRPC's own answer to an oversize message).
// Responses: the largest answers the model allows are a full instance list (limits.instancesPerServiceMax instances
// of the largest size) and a service with all its clusters (limits.clustersPerServiceMax clusters with the largest
// checkers); the send bound is the larger of the two. Every other answer is smaller, except a page of services,
// whose size is therefore clamped so that a page also fits. A response can thus never exceed the send bound.

import type { Limits } from '../../limits.ts';

// UTF-8 takes at most 3 bytes per UTF-16 code unit (a surrogate pair: 4 bytes for 2 units).
const utf8BytesPerChar = 3;
// A map entry costs its strings plus at most 8 bytes of framing (entry tag and length, key and value tags and
// lengths for strings of at most 1024 chars); a map with N summed chars has at most N entries (keys are non-empty).
const mapBytesPerChar = utf8BytesPerChar + 8;
// Tags, lengths and the fixed-size fields (numbers, booleans, enums) of one instance or service message.
const messageFramingBytes = 128;

/** instanceMessageBytesMax bounds one encoded Instance: ip and cluster (twice: also in instance_id), group, service, metadata. */
export function instanceMessageBytesMax(l: Limits): number {
  const chars = 2 * l.ipCharsMax + 2 * l.clusterNameCharsMax + l.groupNameCharsMax + l.serviceNameCharsMax;
  return utf8BytesPerChar * chars + mapBytesPerChar * l.metadataCharsMax + messageFramingBytes;
}

/** serviceMessageBytesMax bounds one encoded Service: its names, selector expression and metadata. */
export function serviceMessageBytesMax(l: Limits): number {
  const chars = l.namespaceIdCharsMax + l.groupNameCharsMax + l.serviceNameCharsMax + l.selectorExpressionCharsMax;
  return utf8BytesPerChar * chars + mapBytesPerChar * l.metadataCharsMax + messageFramingBytes;
}

/** clusterMessageBytesMax bounds one encoded Cluster: its name, checker strings (headers as a map) and metadata. */
export function clusterMessageBytesMax(l: Limits): number {
  return utf8BytesPerChar * l.clusterNameCharsMax + mapBytesPerChar * (l.healthCheckerCharsMax + l.metadataCharsMax) + messageFramingBytes;
}

// Room for the response's own framing and scalar fields (revision, checksum, counts).
const responseMarginBytes = 4096;

/** grpcResponseBytesMax is the send bound: the larger of a full instance list and a full service detail, with a margin. */
export function grpcResponseBytesMax(l: Limits): number {
  const instanceList = l.instancesPerServiceMax * instanceMessageBytesMax(l);
  const serviceDetail = l.clustersPerServiceMax * clusterMessageBytesMax(l);
  return Math.max(instanceList, serviceDetail) + serviceMessageBytesMax(l) + responseMarginBytes;
}

/** servicesPageSizeMax is the largest ListServices page that always fits in one response. */
export function servicesPageSizeMax(l: Limits): number {
  return Math.min(l.servicesPerNamespaceMax, Math.floor((grpcResponseBytesMax(l) - responseMarginBytes) / serviceMessageBytesMax(l)));
}

