// distro-codec: encoding and validating the messages of proto/cairn/peer/v1/distro.proto (protobufjs reflection).
// Peer messages are outside input: every decoded value is checked like a client's (names, IPs, ports, weights and
// metadata by src/naming/validation.ts; counts by src/limits.ts; numbers are safe integers), and a bad message is a
// CairnError CAIRN_INVALID_ARGUMENT (the gRPC server answers INVALID_ARGUMENT), never a crash.

import path from 'node:path';
import protobuf from 'protobufjs';
import { CairnError } from '../errors.ts';
import { limits as defaultLimits, type Limits } from '../limits.ts';
import type { InstanceKey, Metadata, ServiceKey } from '../naming/model.ts';
import { validateInstanceKey, validateMetadata, validateServiceKey, validateWeight, validateClusterName, validateIp, validatePort } from '../naming/validation.ts';
import { protoRoot } from '../replica/proto.ts';
import type { EntryData, InstanceOverride, RecordData } from './ephemeral-store.ts';
import type { ForwardRequest, ForwardResponse, LastBeatsQuery, ServiceChecksum } from './transport.ts';
import { compareVersions, type Version } from './version.ts';

/** CodecLimits are the bounds a decoded Distro message must respect. */
export type CodecLimits = Pick<Limits, 'distroSyncBatchMax' | 'distroMessageEntriesMax' | 'distroForwardBatchEntriesMax'>;

/** memberIdCharsMax bounds member ids and session owners in peer messages (a host:port, or host:port/uuid). */
export const memberIdCharsMax = 300;
/** checksumCharsMax bounds a checksum string ("<count>-<hex>-<hex>"). */
const checksumCharsMax = 64;

let root: protobuf.Root | null = null;

function type(name: string): protobuf.Type {
  if (root === null) {
    const loaded = new protobuf.Root();
    loaded.resolvePath = (_origin, target) => (path.isAbsolute(target) ? target : path.join(protoRoot, target));
    loaded.loadSync(['cairn/peer/v1/distro.proto'], { keepCase: false });
    loaded.resolveAll();
    root = loaded;
  }
  return root.lookupType(`cairn.peer.v1.${name}`);
}

const toObjectOptions: protobuf.IConversionOptions = { longs: String, defaults: true, arrays: true, objects: true, oneofs: true };

function decode(name: string, bytes: Uint8Array): Record<string, unknown> {
  let message: protobuf.Message;
  try {
    message = type(name).decode(bytes);
  } catch (error) {
    throw invalid(`undecodable ${name}: ${error instanceof Error ? error.message : String(error)}`);
  }
  return type(name).toObject(message, toObjectOptions) as Record<string, unknown>;
}

function encode(name: string, value: Record<string, unknown>): Uint8Array {
  const messageType = type(name);
  return messageType.encode(messageType.fromObject(value)).finish();
}

function invalid(reason: string): CairnError {
  return new CairnError('CAIRN_INVALID_ARGUMENT', `invalid distro message: ${reason}`);
}

function object(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid(`${what} is missing`);
  return value as Record<string, unknown>;
}

function list(value: unknown, what: string, max: number): unknown[] {
  if (!Array.isArray(value)) throw invalid(`${what} is not a list`);
  if (value.length > max) throw invalid(`${what} holds ${value.length} items, more than ${max}`);
  return value;
}

function text(value: unknown, what: string, max: number): string {
  if (typeof value !== 'string' || value.length > max) throw invalid(`${what} is not a string of at most ${max} characters`);
  return value;
}

function safeInteger(value: unknown, what: string, max = Number.MAX_SAFE_INTEGER): number {
  const number = typeof value === 'string' ? Number(value) : value;
  if (typeof number !== 'number' || !Number.isSafeInteger(number) || number < 0 || number > max) throw invalid(`${what} is not an integer within 0..${max}`);
  return number;
}

function bool(value: unknown): boolean {
  return value === true;
}

// --- Keys, versions, entries ---

function serviceKeyFrom(value: unknown): ServiceKey {
  const raw = object(value, 'service key');
  return validateServiceKey({ namespace: raw['namespace'] as string, group: raw['group'] as string, service: raw['service'] as string });
}

function instanceKeyFrom(value: unknown): InstanceKey {
  const raw = object(value, 'instance key');
  return validateInstanceKey({
    namespace: raw['namespace'] as string, group: raw['group'] as string, service: raw['service'] as string,
    cluster: raw['cluster'] as string, ip: raw['ip'] as string, port: raw['port'] as number,
  });
}

function versionFrom(value: unknown): Version {
  const raw = object(value, 'version');
  return {
    wallMs: safeInteger(raw['wallMs'], 'version.wall_ms'),
    counter: safeInteger(raw['counter'], 'version.counter', 0xffff_ffff),
    member: text(raw['memberId'], 'version.member_id', memberIdCharsMax),
  };
}

/** lineageFrom reads an entry's lineage: absent means its version; never newer than the version. */
function lineageFrom(value: unknown, version: Version): Version {
  if (value === null || value === undefined) return version;
  const lineage = versionFrom(value);
  if (compareVersions(lineage, version) > 0) throw invalid('entry.lineage is newer than entry.version');
  return compareVersions(lineage, version) === 0 ? version : lineage;
}

function metadataFrom(value: unknown): Metadata {
  return validateMetadata(object(value, 'metadata'));
}

function entryFrom(value: unknown): EntryData {
  const raw = object(value, 'entry');
  const removed = bool(raw['removed']);
  const version = versionFrom(raw['version']);
  return {
    cluster: validateClusterName(raw['cluster']),
    ip: validateIp(raw['ip']),
    port: validatePort(raw['port']),
    version,
    lineage: lineageFrom(raw['lineage'], version),
    removed,
    weight: removed ? 0 : validateWeight(raw['weight']),
    enabled: bool(raw['enabled']),
    healthy: bool(raw['healthy']),
    metadata: removed ? {} : metadataFrom(raw['metadata']),
    owner: text(raw['owner'], 'entry.owner', memberIdCharsMax),
    ...overrideFrom(raw['override']),
  };
}

/**
 * overrideFrom reads an entry's operator override (absent: none). Its version is required; an attribute's own
 * version (a member of this version or later sends one for an attribute set by an older write) only for a set
 * attribute, and never newer than the override's version, which is its newest attribute's.
 */
function overrideFrom(value: unknown): { override?: InstanceOverride } {
  if (value === null || value === undefined) return {};
  const raw = object(value, 'entry.override');
  const version = versionFrom(raw['version']);
  const attributeVersionFrom = (name: 'enabled' | 'weight' | 'metadata', set: boolean): { readonly [key: string]: Version } => {
    const field = raw[`${name}Version`];
    if (field === null || field === undefined) return {};
    if (!set) throw invalid(`entry.override.${name}Version is given for an attribute that is not set`);
    const own = versionFrom(field);
    if (compareVersions(own, version) > 0) throw invalid(`entry.override.${name}Version is newer than the override's version`);
    // Equal to the override's version: the canonical form leaves it out.
    return compareVersions(own, version) === 0 ? {} : { [`${name}Version`]: own };
  };
  const enabledSet = bool(raw['enabledSet']);
  const weightSet = bool(raw['weightSet']);
  const metadataSet = bool(raw['metadataSet']);
  // An override that sets nothing overrides nothing (a member before the attribute versions could send one after a
  // change of health alone): read as none.
  if (!enabledSet && !weightSet && !metadataSet) return {};
  const override: InstanceOverride = {
    ...(enabledSet ? { enabled: bool(raw['enabled']) } : {}),
    ...(weightSet ? { weight: validateWeight(raw['weight']) } : {}),
    ...(metadataSet ? { metadata: metadataFrom(raw['metadata']) } : {}),
    version,
    ...attributeVersionFrom('enabled', enabledSet),
    ...attributeVersionFrom('weight', weightSet),
    ...attributeVersionFrom('metadata', metadataSet),
  };
  return { override };
}

function versionTo(version: Version): Record<string, unknown> {
  return { wallMs: version.wallMs, counter: version.counter, memberId: version.member };
}

function overrideTo(override: InstanceOverride | undefined): Record<string, unknown> {
  if (override === undefined) return {};
  return {
    override: {
      enabledSet: override.enabled !== undefined, enabled: override.enabled ?? false,
      weightSet: override.weight !== undefined, weight: override.weight ?? 0,
      metadataSet: override.metadata !== undefined, metadata: { ...(override.metadata ?? {}) },
      version: versionTo(override.version),
      ...(override.enabledVersion === undefined ? {} : { enabledVersion: versionTo(override.enabledVersion) }),
      ...(override.weightVersion === undefined ? {} : { weightVersion: versionTo(override.weightVersion) }),
      ...(override.metadataVersion === undefined ? {} : { metadataVersion: versionTo(override.metadataVersion) }),
    },
  };
}

function entryTo(entry: EntryData): Record<string, unknown> {
  return {
    cluster: entry.cluster, ip: entry.ip, port: entry.port,
    version: versionTo(entry.version),
    ...(compareVersions(entry.lineage, entry.version) === 0 ? {} : { lineage: versionTo(entry.lineage) }),
    removed: entry.removed, weight: entry.weight, enabled: entry.enabled, healthy: entry.healthy, metadata: { ...entry.metadata }, owner: entry.owner,
    ...overrideTo(entry.override),
  };
}

function serviceKeyTo(key: ServiceKey): Record<string, unknown> {
  return { namespace: key.namespace, group: key.group, service: key.service };
}

function instanceKeyTo(key: InstanceKey): Record<string, unknown> {
  return { namespace: key.namespace, group: key.group, service: key.service, cluster: key.cluster, ip: key.ip, port: key.port };
}

// --- Messages ---

/** encodeHeartbeat encodes a DistroHeartbeat naming `member`. */
export function encodeHeartbeat(member: string): Uint8Array {
  return encode('DistroHeartbeat', { memberId: member });
}

/** decodeHeartbeat decodes a DistroHeartbeat's member id. */
export function decodeHeartbeat(bytes: Uint8Array): string {
  return text(decode('DistroHeartbeat', bytes)['memberId'], 'member_id', memberIdCharsMax);
}

/** encodeAck encodes the empty DistroAck. */
export function encodeAck(): Uint8Array {
  return encode('DistroAck', {});
}

/** encodeRecords encodes a DistroRecords. */
export function encodeRecords(records: readonly RecordData[]): Uint8Array {
  return encode('DistroRecords', { records: records.map((record) => ({ key: serviceKeyTo(record.key), entries: record.entries.map(entryTo) })) });
}

/** decodeRecords decodes and validates a DistroRecords. */
export function decodeRecords(bytes: Uint8Array, limits: CodecLimits): RecordData[] {
  const raw = decode('DistroRecords', bytes);
  let entries = 0;
  return list(raw['records'], 'records', limits.distroSyncBatchMax).map((item) => {
    const record = object(item, 'record');
    const rawEntries = list(record['entries'], 'entries', limits.distroMessageEntriesMax);
    entries += rawEntries.length;
    if (entries > limits.distroMessageEntriesMax) throw invalid(`more than ${limits.distroMessageEntriesMax} entries`);
    return { key: serviceKeyFrom(record['key']), entries: rawEntries.map(entryFrom) };
  });
}

/** encodeChecksums encodes a DistroChecksums. */
export function encodeChecksums(checksums: readonly ServiceChecksum[]): Uint8Array {
  return encode('DistroChecksums', { checksums: checksums.map((item) => ({ key: serviceKeyTo(item.key), checksum: item.checksum })) });
}

/** decodeChecksums decodes and validates a DistroChecksums. */
export function decodeChecksums(bytes: Uint8Array, limits: CodecLimits): ServiceChecksum[] {
  const raw = decode('DistroChecksums', bytes);
  return list(raw['checksums'], 'checksums', limits.distroMessageEntriesMax).map((item) => {
    const checksum = object(item, 'checksum');
    return { key: serviceKeyFrom(checksum['key']), checksum: text(checksum['checksum'], 'checksum', checksumCharsMax) };
  });
}

/** encodePullRequest encodes a DistroPullRequest. */
export function encodePullRequest(keys: readonly ServiceKey[]): Uint8Array {
  return encode('DistroPullRequest', { keys: keys.map(serviceKeyTo) });
}

/** decodePullRequest decodes and validates a DistroPullRequest. */
export function decodePullRequest(bytes: Uint8Array, limits: CodecLimits): ServiceKey[] {
  return list(decode('DistroPullRequest', bytes)['keys'], 'keys', limits.distroSyncBatchMax).map(serviceKeyFrom);
}

/** encodeSnapshotRequest encodes the empty DistroSnapshotRequest. */
export function encodeSnapshotRequest(): Uint8Array {
  return encode('DistroSnapshotRequest', {});
}

/** encodeForwardRequest encodes a ForwardRequest. */
export function encodeForwardRequest(request: ForwardRequest): Uint8Array {
  return encode('DistroForwardRequest', forwardRequestTo(request));
}

function forwardRequestTo(request: ForwardRequest): Record<string, unknown> {
  switch (request.type) {
    case 'register':
    case 'update':
      return { write: {
        type: request.type, key: instanceKeyTo(request.key), weight: request.fields.weight, enabled: request.fields.enabled,
        healthy: request.fields.healthy, metadata: { ...request.fields.metadata }, owner: request.owner,
        hasWeight: true, hasEnabled: true, hasHealthy: true, hasMetadata: true,
      } };
    case 'patch':
      return { write: {
        type: 'patch', key: instanceKeyTo(request.key), weight: request.weight ?? 0, enabled: request.enabled ?? false,
        healthy: request.healthy ?? false, metadata: { ...(request.metadata ?? {}) }, owner: '',
        hasWeight: request.weight !== undefined, hasEnabled: request.enabled !== undefined,
        hasHealthy: request.healthy !== undefined, hasMetadata: request.metadata !== undefined,
      } };
    case 'deregister':
      return { write: { type: 'deregister', key: instanceKeyTo(request.key), owner: request.owner ?? '' } };
    case 'beat':
      return { beat: {
        key: instanceKeyTo(request.key), hasBody: request.body !== undefined, weight: request.body?.weight ?? 0,
        metadata: { ...(request.body?.metadata ?? {}) },
      } };
    case 'renew':
      return { renew: { keys: request.keys.map(instanceKeyTo) } };
  }
}

/** decodeForwardRequest decodes and validates a DistroForwardRequest. */
export function decodeForwardRequest(bytes: Uint8Array, limits: CodecLimits): ForwardRequest {
  return forwardRequestFrom(decode('DistroForwardRequest', bytes), limits);
}

function forwardRequestFrom(raw: Record<string, unknown>, limits: CodecLimits): ForwardRequest {
  switch (raw['operation']) {
    case 'write':
      return writeFrom(object(raw['write'], 'write'));
    case 'beat': {
      const beat = object(raw['beat'], 'beat');
      const key = instanceKeyFrom(beat['key']);
      return bool(beat['hasBody'])
        ? { type: 'beat', key, body: { weight: validateWeight(beat['weight']), metadata: metadataFrom(beat['metadata']) } }
        : { type: 'beat', key };
    }
    case 'renew':
      return { type: 'renew', keys: list(object(raw['renew'], 'renew')['keys'], 'renew.keys', limits.distroMessageEntriesMax).map(instanceKeyFrom) };
    default:
      throw invalid('a forward request names no operation');
  }
}

function writeFrom(write: Record<string, unknown>): ForwardRequest {
  const key = instanceKeyFrom(write['key']);
  const kind = write['type'];
  switch (kind) {
    case 'register':
    case 'update':
      return {
        type: kind, key, owner: text(write['owner'], 'write.owner', memberIdCharsMax),
        fields: { weight: validateWeight(write['weight']), enabled: bool(write['enabled']), healthy: bool(write['healthy']), metadata: metadataFrom(write['metadata']) },
      };
    case 'patch':
      return {
        type: 'patch', key,
        ...(bool(write['hasWeight']) ? { weight: validateWeight(write['weight']) } : {}),
        ...(bool(write['hasEnabled']) ? { enabled: bool(write['enabled']) } : {}),
        ...(bool(write['hasHealthy']) ? { healthy: bool(write['healthy']) } : {}),
        ...(bool(write['hasMetadata']) ? { metadata: metadataFrom(write['metadata']) } : {}),
      };
    case 'deregister': {
      const owner = text(write['owner'], 'write.owner', memberIdCharsMax);
      return owner === '' ? { type: 'deregister', key } : { type: 'deregister', key, owner };
    }
    default:
      throw invalid(`unknown write type ${JSON.stringify(String(kind).slice(0, 32))}`);
  }
}

/** encodeForwardResponse encodes a ForwardResponse. */
export function encodeForwardResponse(response: ForwardResponse): Uint8Array {
  return encode('DistroForwardResponse', forwardResponseTo(response));
}

function forwardResponseTo(response: ForwardResponse): Record<string, unknown> {
  if (!response.ok) return { ok: false, code: response.code, message: response.message };
  switch (response.type) {
    case 'instance':
      return { ok: true, result: 'instance', entry: entryTo(response.entry), revision: response.revision };
    case 'removed':
      return {
        ok: true, result: 'removed', removed: response.removed, revision: response.revision,
        ...(response.heldLineage === undefined ? {} : { heldLineage: versionTo(response.heldLineage) }),
      };
    case 'beat':
      return { ok: true, result: 'beat', found: response.found, clientBeatIntervalMs: response.clientBeatIntervalMs };
    case 'renewed':
      return { ok: true, result: 'renewed', count: response.count, missing: [...response.missing] };
  }
}

/** decodeForwardResponse decodes and validates a DistroForwardResponse. */
export function decodeForwardResponse(bytes: Uint8Array): ForwardResponse {
  return forwardResponseFrom(decode('DistroForwardResponse', bytes));
}

function forwardResponseFrom(raw: Record<string, unknown>): ForwardResponse {
  if (!bool(raw['ok'])) {
    return { ok: false, code: text(raw['code'], 'code', 64), message: text(raw['message'], 'message', 4096) };
  }
  switch (raw['result']) {
    case 'instance':
      return { ok: true, type: 'instance', entry: entryFrom(raw['entry']), revision: safeInteger(raw['revision'], 'revision') };
    case 'removed': {
      const removed = { ok: true, type: 'removed', removed: bool(raw['removed']), revision: safeInteger(raw['revision'], 'revision') } as const;
      return raw['heldLineage'] === null || raw['heldLineage'] === undefined ? removed : { ...removed, heldLineage: versionFrom(raw['heldLineage']) };
    }
    case 'beat':
      return beatResponseOf(bool(raw['found']), safeInteger(raw['clientBeatIntervalMs'], 'client_beat_interval_ms', 0xffff_ffff));
    case 'renewed':
      return {
        ok: true, type: 'renewed', count: safeInteger(raw['count'], 'count'),
        // Positions in a renewal, which holds at most distroMessageEntriesMax keys (the caller checks its own count).
        missing: list(raw['missing'] ?? [], 'missing', defaultLimits.distroMessageEntriesMax)
          .map((position) => safeInteger(position, 'missing', defaultLimits.distroMessageEntriesMax - 1)),
      };
    default:
      throw invalid('a forward response names no result');
  }
}

// --- Batched forwards ---

const foundBeatResponses = new Map<number, ForwardResponse>();
const notFoundBeatResponses = new Map<number, ForwardResponse>();

/** beatResponseOf returns a shared, frozen beat ForwardResponse (a beat's answer allocates nothing on either side). */
export function beatResponseOf(found: boolean, clientBeatIntervalMs: number): ForwardResponse {
  const cache = found ? foundBeatResponses : notFoundBeatResponses;
  let response = cache.get(clientBeatIntervalMs);
  if (response === undefined) {
    response = Object.freeze({ ok: true, type: 'beat', found, clientBeatIntervalMs });
    if (cache.size < 1024) cache.set(clientBeatIntervalMs, response);
  }
  return response;
}

/** ForwardBatch is a decoded DistroForwardBatch: its requests and when the sender sent it (0: not said). */
export interface ForwardBatch {
  readonly requests: ForwardRequest[];
  readonly sentAtMs: number;
}

/** encodeForwardBatch encodes a DistroForwardBatch sent at `sentAtMs` (the sender's steady clock, epoch ms). */
export function encodeForwardBatch(requests: readonly ForwardRequest[], sentAtMs: number): Uint8Array {
  return encode('DistroForwardBatch', { requests: requests.map(forwardRequestTo), sentAtMs });
}

/**
 * decodeForwardBatch decodes and validates a DistroForwardBatch: 1..distroForwardBatchEntriesMax requests, each
 * validated as a lone Forward is, and no renewal (a renewal travels alone); sent_at_ms a safe integer.
 */
export function decodeForwardBatch(bytes: Uint8Array, limits: CodecLimits): ForwardBatch {
  const message = decode('DistroForwardBatch', bytes);
  const sentAtMs = message['sentAtMs'] === undefined ? 0 : safeInteger(message['sentAtMs'], 'sent_at_ms');
  const raw = list(message['requests'], 'requests', limits.distroForwardBatchEntriesMax);
  if (raw.length === 0) throw invalid('a forward batch holds no request');
  const requests = new Array<ForwardRequest>(raw.length);
  for (let i = 0; i < raw.length; i++) {
    const request = forwardRequestFrom(object(raw[i], 'request'), limits);
    if (request.type === 'renew') throw invalid('a forward batch holds a renewal');
    requests[i] = request;
  }
  return { requests, sentAtMs };
}

/** encodeForwardBatchResponse encodes a DistroForwardBatchResponse. */
export function encodeForwardBatchResponse(responses: readonly ForwardResponse[]): Uint8Array {
  return encode('DistroForwardBatchResponse', { responses: responses.map(forwardResponseTo) });
}

/** decodeForwardBatchResponse decodes and validates a DistroForwardBatchResponse answering `expected` requests. */
export function decodeForwardBatchResponse(bytes: Uint8Array, expected: number): ForwardResponse[] {
  const raw = list(decode('DistroForwardBatchResponse', bytes)['responses'], 'responses', expected);
  if (raw.length !== expected) throw invalid(`a forward batch of ${expected} requests was answered with ${raw.length} responses`);
  const responses = new Array<ForwardResponse>(raw.length);
  for (let i = 0; i < raw.length; i++) responses[i] = forwardResponseFrom(object(raw[i], 'response'));
  return responses;
}

/** forwardRequestBytesEstimate over-estimates a forwarded request's encoded size (UTF-8: at most 3 bytes a char). */
export function forwardRequestBytesEstimate(request: ForwardRequest): number {
  if (request.type === 'renew') return 64 * request.keys.length;
  const key = request.key;
  let chars = key.namespace.length + key.group.length + key.service.length + key.cluster.length + key.ip.length;
  const metadata = request.type === 'register' || request.type === 'update' ? request.fields.metadata
    : request.type === 'patch' ? request.metadata : request.type === 'beat' ? request.body?.metadata : undefined;
  if (metadata !== undefined) {
    for (const name in metadata) chars += name.length + (metadata[name]?.length ?? 0) + 4;
  }
  if (request.type === 'register' || request.type === 'update') chars += request.owner.length;
  return 64 + 3 * chars;
}

// --- Last beats (asked before an expiry) ---

/** encodeLastBeatsRequest encodes a DistroLastBeatsRequest. */
export function encodeLastBeatsRequest(query: readonly LastBeatsQuery[]): Uint8Array {
  return encode('DistroLastBeatsRequest', {
    services: query.map((item) => ({ key: serviceKeyTo(item.key), instances: item.instances.map((address) => ({ cluster: address.cluster, ip: address.ip, port: address.port })) })),
  });
}

/**
 * decodeLastBeatsRequest decodes and validates a DistroLastBeatsRequest: at most distroSyncBatchMax services and
 * distroMessageEntriesMax instances in all, each address valid.
 */
export function decodeLastBeatsRequest(bytes: Uint8Array, limits: CodecLimits): LastBeatsQuery[] {
  const raw = list(decode('DistroLastBeatsRequest', bytes)['services'], 'services', limits.distroSyncBatchMax);
  let instances = 0;
  return raw.map((item) => {
    const service = object(item, 'service');
    const addresses = list(service['instances'], 'instances', limits.distroMessageEntriesMax);
    instances += addresses.length;
    if (instances > limits.distroMessageEntriesMax) throw invalid(`more than ${limits.distroMessageEntriesMax} instances`);
    return {
      key: serviceKeyFrom(service['key']),
      instances: addresses.map((value) => {
        const address = object(value, 'instance');
        return { cluster: validateClusterName(address['cluster']), ip: validateIp(address['ip']), port: validatePort(address['port']) };
      }),
    };
  });
}

/** lastBeatsQuerySize counts the instances of a query (the number of values its answer holds). */
export function lastBeatsQuerySize(query: readonly LastBeatsQuery[]): number {
  let size = 0;
  for (const item of query) size += item.instances.length;
  return size;
}

/** encodeLastBeatsResponse encodes a DistroLastBeatsResponse. */
export function encodeLastBeatsResponse(silentMs: readonly number[]): Uint8Array {
  return encode('DistroLastBeatsResponse', { silentMs: [...silentMs] });
}

/** decodeLastBeatsResponse decodes and validates a DistroLastBeatsResponse answering `expected` instances. */
export function decodeLastBeatsResponse(bytes: Uint8Array, expected: number): number[] {
  const raw = list(decode('DistroLastBeatsResponse', bytes)['silentMs'], 'silent_ms', expected);
  if (raw.length !== expected) throw invalid(`a last-beats query of ${expected} instances was answered with ${raw.length} values`);
  return raw.map((value) => safeInteger(value, 'silent_ms', 0xffff_ffff));
}
