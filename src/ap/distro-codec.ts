// distro-codec: encoding and validating the messages of proto/cairn/peer/v1/distro.proto (protobufjs reflection).
// Peer messages are outside input: every decoded value is checked like a client's (names, IPs, ports, weights and
// metadata by src/naming/validation.ts; counts by src/limits.ts; numbers are safe integers), and a bad message is a
// CairnError CAIRN_INVALID_ARGUMENT (the gRPC server answers INVALID_ARGUMENT), never a crash.
//
// A message that carries many items (the entries of DistroRecords, the requests of a DistroForwardBatch, the keys of
// a renewal or a pull, the checksums of a verify round, the instances of a last-beats question) is checked in two
// layers. Its envelope (framing that does not decode, too many records, entries or requests, an empty batch, a
// renewal inside a batch, a forward request naming no operation, a bad sent_at_ms) refuses the whole message. An
// item that fails validation or does not decode (see decode) is dropped alone and reported in the decoder's answer
// (`Screened.dropped`; the refused requests of a batch with the error their clients are answered with), and the
// message's other items are kept: each item is one client's write, and one client's bad value (a lone surrogate, a
// bad IP, a port beyond 65535, an oversize string, often let through by an older member's rules) must not lose the
// acknowledged writes of every other client in the same batch, for that peer, until anti-entropy, or forever while
// the bad item is still there.
// The receiver counts and logs what it dropped (cairn_ap_entries_dropped_total; DistroNode.handlers.onItemsDropped).

import path from 'node:path';
import protobuf from 'protobufjs';
import { assert } from '../assert.ts';
import { CairnError, isCairnError } from '../errors.ts';
import { limits as defaultLimits, type Limits } from '../limits.ts';
import type { InstanceKey, Metadata, ServiceKey } from '../naming/model.ts';
import { validateInstanceKey, validateMetadata, validateServiceKey, validateWeight, validateClusterName, validateIp, validatePort } from '../naming/validation.ts';
import { protoRoot } from '../replica/proto.ts';
import { HEARD_NEVER, type EntryData, type InstanceOverride, type RecordData } from './ephemeral-store.ts';
import type { ForwardRequest, ForwardResponse, InstanceAddress, LastBeatsQuery, ServiceChecksum } from './transport.ts';
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

/**
 * decode decodes a whole message. When it fails, the message may still be sound but for some of its items: proto3
 * strings must be UTF-8, and a lone UTF-16 surrogate that an older member let into one client's metadata leaves its
 * encoder as bytes that are not, which fails the decoding of the whole message. So the message is decoded again
 * level by level (framedObject): only an envelope whose own framing or fields do not decode refuses the message, and
 * an item that does not decode becomes an Undecodable, which its reader refuses like any invalid item (object()).
 */
function decode(name: string, bytes: Uint8Array): Record<string, unknown> {
  const messageType = type(name);
  try {
    return messageType.toObject(messageType.decode(bytes), toObjectOptions) as Record<string, unknown>;
  } catch {
    try {
      return framedObject(messageType, bytes);
    } catch (error) {
      throw invalid(`undecodable ${name}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
}

/** Undecodable stands for an item whose bytes did not decode: a defect of that item alone (see decode). */
class Undecodable {
  constructor(readonly reason: string) {}
}

/** frameTypes caches, per message type, its frame: the same fields, its message fields read as raw bytes. */
const frameTypes = new Map<protobuf.Type, protobuf.Type>();
let frameRoot: protobuf.Root | null = null;

/**
 * frameOf returns the frame of `messageType`: a type with the same field numbers, names and oneofs whose message
 * fields are `bytes` (the same wire format: length-delimited), so that its items can be decoded one by one.
 */
function frameOf(messageType: protobuf.Type): protobuf.Type {
  let frame = frameTypes.get(messageType);
  if (frame !== undefined) return frame;
  const fields: Record<string, protobuf.IField | protobuf.IMapField> = {};
  for (const field of messageType.fieldsArray) {
    fields[field.name] = field instanceof protobuf.MapField
      ? { id: field.id, type: field.type, keyType: field.keyType }
      : { id: field.id, type: field.resolvedType instanceof protobuf.Type ? 'bytes' : field.type, ...(field.repeated ? { rule: 'repeated' } : {}) };
  }
  const oneofs: Record<string, protobuf.IOneOf> = {};
  for (const oneof of messageType.oneofsArray) oneofs[oneof.name] = { oneof: [...oneof.oneof] };
  // fromJSON makes a proto3 type, as distro.proto's are: its strings must be UTF-8 too (utf8_validation VERIFY), so an
  // item is never kept with its text silently replaced.
  frame = protobuf.Type.fromJSON(`${messageType.name}Frame`, { fields, ...(messageType.oneofsArray.length > 0 ? { oneofs } : {}) });
  (frameRoot ??= new protobuf.Root()).add(frame);
  frameRoot.resolveAll();
  frameTypes.set(messageType, frame);
  return frame;
}

/**
 * framedObject decodes `bytes` as `messageType` level by level: the message's own fields at once (throwing when they
 * do not decode), each message field on its own (itemObject). The result has the shape of toObject's.
 */
function framedObject(messageType: protobuf.Type, bytes: Uint8Array): Record<string, unknown> {
  const frameType = frameOf(messageType);
  const frame = frameType.decode(bytes);
  const result = frameType.toObject(frame, toObjectOptions) as Record<string, unknown>;
  for (const field of messageType.fieldsArray) {
    const nested = field.resolvedType;
    if (!(nested instanceof protobuf.Type) || field instanceof protobuf.MapField) continue;
    if (field.repeated) result[field.name] = (result[field.name] as Uint8Array[]).map((item) => itemObject(nested, item));
    else result[field.name] = Object.hasOwn(frame, field.name) ? itemObject(nested, result[field.name] as Uint8Array) : null;
  }
  return result;
}

/** itemObject decodes one item: whole, else level by level, else an Undecodable saying why. */
function itemObject(messageType: protobuf.Type, bytes: Uint8Array): Record<string, unknown> | Undecodable {
  try {
    return messageType.toObject(messageType.decode(bytes), toObjectOptions) as Record<string, unknown>;
  } catch {
    try {
      return framedObject(messageType, bytes);
    } catch (error) {
      return new Undecodable(`undecodable ${messageType.name}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
}

function encode(name: string, value: Record<string, unknown>): Uint8Array {
  const messageType = type(name);
  return messageType.encode(messageType.fromObject(value)).finish();
}

function invalid(reason: string): CairnError {
  return new CairnError('CAIRN_INVALID_ARGUMENT', `invalid distro message: ${reason}`);
}

function object(value: unknown, what: string): Record<string, unknown> {
  if (value instanceof Undecodable) throw invalid(`${what}: ${value.reason}`);
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

// --- Items dropped from a message ---

/** DroppedItemMessage names the kinds of message whose items are validated one by one (the label of the drop counter). */
export type DroppedItemMessage = 'records' | 'forward' | 'checksums' | 'pull_keys' | 'last_beats';

/**
 * DroppedItem is one item left out of a peer message because it failed validation (the message's other items are
 * kept): an entry of a record, or a whole record whose service key is bad; a forwarded request; a renewal's or a
 * pull's key; a checksum; a last-beats question's instance, or a service of it.
 */
export interface DroppedItem {
  /** service is the item's service key as the peer sent it, "namespace/group/service", each part cut for the log. */
  readonly service: string;
  /** reason is why it was refused: the validation error's code and message, cut for the log. */
  readonly reason: string;
}

/** Screened is a decoded message's valid items (`value`) and the items dropped from it (empty: none). */
export interface Screened<T> {
  readonly value: T;
  readonly dropped: readonly DroppedItem[];
}

/** DroppedItemsObserver hears of the items dropped from the peer messages a member decoded (DistroNode counts and logs them). */
export interface DroppedItemsObserver {
  /** onItemsDropped is called once per message that lost items (`dropped` is never empty); `peer` sent the message. */
  onItemsDropped(peer: string, message: DroppedItemMessage, dropped: readonly DroppedItem[]): void;
}

/**
 * DroppedItemsSource is the optional capability of a DistroTransport that decodes what its peers answer (a pull, a
 * snapshot) to report what it dropped from those answers (STYLE.md §2: a new capability as an optional interface).
 */
export interface DroppedItemsSource {
  /** observeDroppedItems makes `observer` hear of every item dropped from an answer from now on. */
  observeDroppedItems(observer: DroppedItemsObserver): void;
}

/** isDroppedItemsSource says whether `transport` reports the items it drops (DroppedItemsSource). */
export function isDroppedItemsSource(transport: object): transport is DroppedItemsSource {
  return typeof (transport as Partial<DroppedItemsSource>).observeDroppedItems === 'function';
}

/** loggedPartCharsMax bounds each part of a dropped item's service key as logged (the peer's strings are unchecked). */
const loggedPartCharsMax = Math.floor(defaultLimits.logPeerTextCharsMax / 4);
/** loggedReasonCharsMax bounds a dropped item's reason, and the message a refused forwarded request is answered with. */
const loggedReasonCharsMax = defaultLimits.logPeerTextCharsMax;
const loneSurrogates = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** printable cuts a string from a peer to `max` characters and replaces its lone surrogates (which UTF-8 cannot carry). */
function printable(value: string, max: number): string {
  const cut = value.length > max ? `${value.slice(0, max)}...` : value;
  return cut.replace(loneSurrogates, '\uFFFD');
}

/** describeService names an item's service for the log from its raw key (any shape: the key may be what is bad). */
function describeService(rawKey: unknown): string {
  if (typeof rawKey !== 'object' || rawKey === null) return '';
  const key = rawKey as Record<string, unknown>;
  const part = (value: unknown): string => printable(typeof value === 'string' ? value : '', loggedPartCharsMax);
  return `${part(key['namespace'])}/${part(key['group'])}/${part(key['service'])}`;
}

/** reasonOf is the message of a validation error, cut for the log and for an answer. */
function reasonOf(error: CairnError): string {
  return printable(`${error.code}: ${error.detail ?? error.message}`, loggedReasonCharsMax);
}

/**
 * refusalOf returns the error that refused one item. Only an operating error (a CairnError, which every check
 * throws) drops an item; anything else is a bug in this file and is thrown on.
 */
function refusalOf(error: unknown): CairnError {
  if (!isCairnError(error)) throw error;
  return error;
}

/** droppedOf describes an item refused by `error`, whose service key the peer sent as `rawKey`. */
function droppedOf(error: unknown, rawKey: unknown): DroppedItem {
  return { service: describeService(rawKey), reason: reasonOf(refusalOf(error)) };
}

/** noDrops is the `dropped` of every message that lost nothing (shared: the common case allocates nothing). */
const noDrops: readonly DroppedItem[] = Object.freeze([]);

/** droppedItemsWarningMessage is the message of the warning about items dropped from a peer's message. */
export const droppedItemsWarningMessage = 'dropped invalid items of a distro message and kept the rest';
/** droppedItemsLogIntervalMs spaces the warnings about dropped items: a bad entry comes back every verify round. */
const droppedItemsLogIntervalMs = 10_000;
/** droppedItemsNamedMax bounds the dropped items one warning names (the others are counted in it; limits.logItemsNamedMax). */
const droppedItemsNamedMax = defaultLimits.logItemsNamedMax;

/** DroppedItemsWarning is the object of a warning about dropped items (DroppedItemsLogGate). */
export interface DroppedItemsWarning {
  readonly peer: string;
  /** kind is the kind of message that lost them. */
  readonly kind: DroppedItemMessage;
  /** dropped is the number of items the message lost. */
  readonly dropped: number;
  /** items name the first droppedItemsNamedMax of them: service key and reason. */
  readonly items: readonly DroppedItem[];
  /** notNamed counts the items dropped since the previous warning (this message's included) that no warning named. */
  readonly notNamed: number;
}

/**
 * DroppedItemsLogGate bounds the warnings about dropped items (STYLE.md: a log that can repeat per input is
 * bounded): at most one every droppedItemsLogIntervalMs, naming at most droppedItemsNamedMax items with their service
 * key and reason, and counting those it does not name. The counter counts every one.
 */
export class DroppedItemsLogGate {
  private loggedAtMs = Number.NEGATIVE_INFINITY;
  /** notNamed counts the items dropped since the last warning that it did not name. */
  private notNamed = 0;

  /** admit returns the warning to log now about `dropped`, or null when the last one is too recent (they count in the next). */
  admit(nowMs: number, peer: string, message: DroppedItemMessage, dropped: readonly DroppedItem[]): DroppedItemsWarning | null {
    if (nowMs - this.loggedAtMs < droppedItemsLogIntervalMs) {
      this.notNamed += dropped.length;
      return null;
    }
    this.loggedAtMs = nowMs;
    const items = dropped.slice(0, droppedItemsNamedMax).map((item) => ({ service: item.service, reason: item.reason }));
    const warning = { peer, kind: message, dropped: dropped.length, items, notNamed: this.notNamed + dropped.length - items.length };
    this.notNamed = 0;
    return warning;
  }
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

/**
 * decodeRecords decodes and validates a DistroRecords (a sync, a pull's answer, a snapshot's chunk). Refused whole:
 * undecodable bytes, more than distroSyncBatchMax records or distroMessageEntriesMax entries in all. Dropped alone:
 * an entry that fails validation, and a record whose service key does (with its entries); a record that held
 * entries and lost them all is left out.
 */
export function decodeRecords(bytes: Uint8Array, limits: CodecLimits): Screened<RecordData[]> {
  const items = list(decode('DistroRecords', bytes)['records'], 'records', limits.distroSyncBatchMax);
  // The envelope first: its bounds count every entry sent, valid or not.
  const rawRecords = new Array<Record<string, unknown>>(items.length);
  const rawEntries = new Array<unknown[]>(items.length);
  let entries = 0;
  for (let i = 0; i < items.length; i++) {
    const record = object(items[i], 'record');
    const sent = list(record['entries'], 'entries', limits.distroMessageEntriesMax);
    entries += sent.length;
    if (entries > limits.distroMessageEntriesMax) throw invalid(`more than ${limits.distroMessageEntriesMax} entries`);
    rawRecords[i] = record;
    rawEntries[i] = sent;
  }
  let dropped: DroppedItem[] | null = null;
  const records: RecordData[] = [];
  for (let i = 0; i < items.length; i++) {
    const rawKey = rawRecords[i]!['key'];
    const sent = rawEntries[i]!;
    let key: ServiceKey;
    try {
      key = serviceKeyFrom(rawKey);
    } catch (error) {
      (dropped ??= []).push(droppedOf(error, rawKey));
      continue;
    }
    const kept: EntryData[] = [];
    for (const item of sent) {
      try {
        kept.push(entryFrom(item));
      } catch (error) {
        (dropped ??= []).push(droppedOf(error, rawKey));
      }
    }
    if (kept.length > 0 || sent.length === 0) records.push({ key, entries: kept });
  }
  return { value: records, dropped: dropped ?? noDrops };
}

/** encodeChecksums encodes a DistroChecksums. */
export function encodeChecksums(checksums: readonly ServiceChecksum[]): Uint8Array {
  return encode('DistroChecksums', { checksums: checksums.map((item) => ({ key: serviceKeyTo(item.key), checksum: item.checksum })) });
}

/**
 * decodeChecksums decodes and validates a DistroChecksums. Refused whole: undecodable bytes, more than
 * distroMessageEntriesMax checksums. Dropped alone: a checksum whose service key or text is bad (that service is not
 * compared this round; the others are).
 */
export function decodeChecksums(bytes: Uint8Array, limits: CodecLimits): Screened<ServiceChecksum[]> {
  const items = list(decode('DistroChecksums', bytes)['checksums'], 'checksums', limits.distroMessageEntriesMax);
  let dropped: DroppedItem[] | null = null;
  const checksums: ServiceChecksum[] = [];
  for (const item of items) {
    const checksum = object(item, 'checksum');
    try {
      checksums.push({ key: serviceKeyFrom(checksum['key']), checksum: text(checksum['checksum'], 'checksum', checksumCharsMax) });
    } catch (error) {
      (dropped ??= []).push(droppedOf(error, checksum['key']));
    }
  }
  return { value: checksums, dropped: dropped ?? noDrops };
}

/** encodePullRequest encodes a DistroPullRequest. */
export function encodePullRequest(keys: readonly ServiceKey[]): Uint8Array {
  return encode('DistroPullRequest', { keys: keys.map(serviceKeyTo) });
}

/**
 * decodePullRequest decodes and validates a DistroPullRequest. Refused whole: undecodable bytes, more than
 * distroSyncBatchMax keys. Dropped alone: a bad key (the answer holds the other services).
 */
export function decodePullRequest(bytes: Uint8Array, limits: CodecLimits): Screened<ServiceKey[]> {
  const items = list(decode('DistroPullRequest', bytes)['keys'], 'keys', limits.distroSyncBatchMax);
  let dropped: DroppedItem[] | null = null;
  const keys: ServiceKey[] = [];
  for (const item of items) {
    try {
      keys.push(serviceKeyFrom(item));
    } catch (error) {
      (dropped ??= []).push(droppedOf(error, item));
    }
  }
  return { value: keys, dropped: dropped ?? noDrops };
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

/**
 * ScreenedForwardRequest is a decoded DistroForwardRequest: a request to serve (ok), or a write or beat that failed
 * validation, with the error response its sender is answered with at once (not ok). A renewal's bad keys are dropped
 * alone: `positions` then maps each key kept to its position in the keys sent (null: none dropped), and
 * answerForward maps the answer back.
 */
export type ScreenedForwardRequest =
  | { readonly ok: true; readonly request: ForwardRequest; readonly positions: readonly number[] | null; readonly dropped: readonly DroppedItem[] }
  | { readonly ok: false; readonly response: ForwardResponse; readonly dropped: readonly DroppedItem[] };

/**
 * decodeForwardRequest decodes and validates a DistroForwardRequest. Refused whole: undecodable bytes, no operation,
 * a renewal of more than distroMessageEntriesMax keys. Answered with its validation error: a bad write or beat (the
 * request is that one client's; a refusal of the call would make its sender take this member for down). Dropped
 * alone: a renewal's bad key (it cannot be held here; it is not reported missing, which would only start a
 * registration this member refuses again).
 */
export function decodeForwardRequest(bytes: Uint8Array, limits: CodecLimits): ScreenedForwardRequest {
  const raw = decode('DistroForwardRequest', bytes);
  const operation = raw['operation'];
  if (operation === 'renew') return renewFrom(object(raw['renew'], 'renew'), limits);
  if (operation !== 'write' && operation !== 'beat') throw invalid('a forward request names no operation');
  try {
    return { ok: true, request: forwardRequestFrom(raw), positions: null, dropped: noDrops };
  } catch (error) {
    const refusal = refusalOf(error);
    return { ok: false, response: refusedResponseOf(refusal), dropped: [droppedOf(refusal, rawKeyOfRequest(raw))] };
  }
}

/** forwardRequestFrom reads a write or a beat (a renewal is renewFrom's). */
function forwardRequestFrom(raw: Record<string, unknown>): ForwardRequest {
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
    default:
      throw invalid('a forward request names no operation');
  }
}

/** renewFrom reads a renewal: at most distroMessageEntriesMax keys (else refused whole), its bad keys dropped alone. */
function renewFrom(renew: Record<string, unknown>, limits: CodecLimits): ScreenedForwardRequest {
  const sent = list(renew['keys'], 'renew.keys', limits.distroMessageEntriesMax);
  const keys: InstanceKey[] = [];
  let positions: number[] | null = null;
  let dropped: DroppedItem[] | null = null;
  for (let position = 0; position < sent.length; position++) {
    let key: InstanceKey;
    try {
      key = instanceKeyFrom(sent[position]);
    } catch (error) {
      (dropped ??= []).push(droppedOf(error, sent[position]));
      // Until the first drop every key kept stood at its own index.
      positions ??= Array.from(keys, (_, index) => index);
      continue;
    }
    keys.push(key);
    positions?.push(position);
  }
  return { ok: true, request: { type: 'renew', keys }, positions, dropped: dropped ?? noDrops };
}

/** rawKeyOfRequest is the instance key a raw write or beat names (for the log of its drop), if any. */
function rawKeyOfRequest(raw: Record<string, unknown>): unknown {
  const operation = raw['operation'];
  const body = operation === 'write' || operation === 'beat' ? raw[operation] : undefined;
  return typeof body === 'object' && body !== null ? (body as Record<string, unknown>)['key'] : undefined;
}

/** refusedResponseOf is the answer to a forwarded request that failed validation here: the client's own error. */
function refusedResponseOf(error: CairnError): ForwardResponse {
  return {
    ok: false, code: error.code,
    message: printable(`the responsible member refused the forwarded request: ${error.detail ?? error.message}`, loggedReasonCharsMax),
  };
}

/**
 * answerForward is the answer to a forwarded request screened by decodeForwardRequest, from the answer to what was
 * kept of it: a renewal's `missing` positions are mapped back to the keys sent.
 */
export function answerForward(screened: Extract<ScreenedForwardRequest, { ok: true }>, response: ForwardResponse): ForwardResponse {
  const positions = screened.positions;
  if (positions === null || !response.ok || response.type !== 'renewed') return response;
  return {
    ...response,
    missing: response.missing.map((position) => {
      const sent = positions[position];
      assert(sent !== undefined, `a renewal of ${positions.length} keys was answered missing at ${position}`);
      return sent;
    }),
  };
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
    if (cache.size < defaultLimits.beatAnswersCachedMax) cache.set(clientBeatIntervalMs, response);
  }
  return response;
}

/** RefusedRequest is a request of a forward batch that failed validation: its position in the batch and its answer. */
export interface RefusedRequest {
  readonly position: number;
  /** response is the error its client is answered with (the validation error's code and message). */
  readonly response: ForwardResponse;
  readonly dropped: DroppedItem;
}

/** ForwardBatch is a decoded DistroForwardBatch: its valid requests, those refused, and when the sender sent it (0: not said). */
export interface ForwardBatch {
  /** requests are the batch's valid requests, in order: every request of the batch when `refused` is empty. */
  readonly requests: ForwardRequest[];
  readonly sentAtMs: number;
  /** refused are the requests that failed validation, by increasing position (answerForwardBatch puts their answers back). */
  readonly refused: readonly RefusedRequest[];
  /** dropped describes the refused requests, for the log (empty: none). */
  readonly dropped: readonly DroppedItem[];
}

/** encodeForwardBatch encodes a DistroForwardBatch sent at `sentAtMs` (the sender's steady clock, epoch ms). */
export function encodeForwardBatch(requests: readonly ForwardRequest[], sentAtMs: number): Uint8Array {
  return encode('DistroForwardBatch', { requests: requests.map(forwardRequestTo), sentAtMs });
}

/**
 * decodeForwardBatch decodes and validates a DistroForwardBatch. Refused whole (the envelope): undecodable bytes,
 * no request or more than distroForwardBatchEntriesMax, a renewal among them (a renewal travels alone: only a sender
 * that breaks the protocol puts one here), sent_at_ms not a safe integer. Refused alone, each answered with its
 * validation error (RefusedRequest) while the others are served: a write or beat that fails validation as a lone
 * Forward would, or a request naming no operation (one a newer member added, say).
 */
export function decodeForwardBatch(bytes: Uint8Array, limits: CodecLimits): ForwardBatch {
  const message = decode('DistroForwardBatch', bytes);
  const sentAtMs = message['sentAtMs'] === undefined ? 0 : safeInteger(message['sentAtMs'], 'sent_at_ms');
  const raw = list(message['requests'], 'requests', limits.distroForwardBatchEntriesMax);
  if (raw.length === 0) throw invalid('a forward batch holds no request');
  const rawRequests = new Array<Record<string, unknown>>(raw.length);
  for (let i = 0; i < raw.length; i++) {
    const request = object(raw[i], 'request');
    if (request['operation'] === 'renew') throw invalid('a forward batch holds a renewal');
    rawRequests[i] = request;
  }
  const requests: ForwardRequest[] = [];
  let refused: RefusedRequest[] | null = null;
  for (let i = 0; i < rawRequests.length; i++) {
    const request = rawRequests[i]!;
    try {
      requests.push(forwardRequestFrom(request));
    } catch (error) {
      const refusal = refusalOf(error);
      (refused ??= []).push({ position: i, response: refusedResponseOf(refusal), dropped: droppedOf(refusal, rawKeyOfRequest(request)) });
    }
  }
  if (refused === null) return { requests, sentAtMs, refused: noRefusals, dropped: noDrops };
  return { requests, sentAtMs, refused, dropped: refused.map((item) => item.dropped) };
}

const noRefusals: readonly RefusedRequest[] = Object.freeze([]);

/**
 * answerForwardBatch is the answer to a whole forward batch (one response per request sent, in order) from the
 * answers to its valid requests (`responses`, in order): each refused request's error response at its position.
 */
export function answerForwardBatch(batch: ForwardBatch, responses: readonly ForwardResponse[]): readonly ForwardResponse[] {
  assert(responses.length === batch.requests.length, `${responses.length} responses to ${batch.requests.length} forwarded requests`);
  if (batch.refused.length === 0) return responses;
  const answers = new Array<ForwardResponse>(batch.requests.length + batch.refused.length);
  let served = 0;
  let refused = 0;
  for (let position = 0; position < answers.length; position++) {
    const next = batch.refused[refused];
    if (next !== undefined && next.position === position) {
      answers[position] = next.response;
      refused++;
    } else {
      answers[position] = responses[served++]!;
    }
  }
  return answers;
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

/** ScreenedLastBeatsQuery is a decoded last-beats question: its valid part, and where each instance kept stood in it. */
export interface ScreenedLastBeatsQuery extends Screened<LastBeatsQuery[]> {
  /** size is the number of instances sent: the answer holds one value for each (answerLastBeats). */
  readonly size: number;
  /** positions maps each instance kept (services, then instances) to its position among those sent; null: none dropped. */
  readonly positions: readonly number[] | null;
}

/**
 * decodeLastBeatsRequest decodes and validates a DistroLastBeatsRequest. Refused whole: undecodable bytes, more than
 * distroSyncBatchMax services or distroMessageEntriesMax instances in all. Dropped alone: a bad address, and a
 * service whose key is bad (with its addresses); answerLastBeats answers them HEARD_NEVER, which is true: this member
 * refuses such an instance on every path, so it never heard from its client.
 */
export function decodeLastBeatsRequest(bytes: Uint8Array, limits: CodecLimits): ScreenedLastBeatsQuery {
  const raw = list(decode('DistroLastBeatsRequest', bytes)['services'], 'services', limits.distroSyncBatchMax);
  const services = new Array<Record<string, unknown>>(raw.length);
  const sent = new Array<unknown[]>(raw.length);
  let size = 0;
  for (let i = 0; i < raw.length; i++) {
    const service = object(raw[i], 'service');
    const addresses = list(service['instances'], 'instances', limits.distroMessageEntriesMax);
    size += addresses.length;
    if (size > limits.distroMessageEntriesMax) throw invalid(`more than ${limits.distroMessageEntriesMax} instances`);
    services[i] = service;
    sent[i] = addresses;
  }
  const query: LastBeatsQuery[] = [];
  // Assigned in drop() too: typed with `as` so that the compiler does not narrow them to null in the loop.
  let dropped = null as DroppedItem[] | null;
  let positions = null as number[] | null;
  let kept = 0;
  let position = 0;
  const drop = (error: unknown, rawKey: unknown): void => {
    (dropped ??= []).push(droppedOf(error, rawKey));
    // Until the first drop every instance kept stood at its own index.
    positions ??= Array.from({ length: kept }, (_, index) => index);
  };
  for (let i = 0; i < services.length; i++) {
    const rawKey = services[i]!['key'];
    const addresses = sent[i]!;
    let key: ServiceKey;
    try {
      key = serviceKeyFrom(rawKey);
    } catch (error) {
      drop(error, rawKey);
      position += addresses.length;
      continue;
    }
    const instances: InstanceAddress[] = [];
    for (const value of addresses) {
      try {
        instances.push(addressFrom(value));
        positions?.push(position);
        kept++;
      } catch (error) {
        drop(error, rawKey);
      }
      position++;
    }
    if (instances.length > 0 || addresses.length === 0) query.push({ key, instances });
  }
  return { value: query, dropped: dropped ?? noDrops, size, positions };
}

function addressFrom(value: unknown): InstanceAddress {
  const address = object(value, 'instance');
  return { cluster: validateClusterName(address['cluster']), ip: validateIp(address['ip']), port: validatePort(address['port']) };
}

/**
 * answerLastBeats is the answer to a whole last-beats question (one value per instance sent, in order) from the
 * answer to its valid part: HEARD_NEVER for each instance dropped.
 */
export function answerLastBeats(query: ScreenedLastBeatsQuery, silentMs: readonly number[]): readonly number[] {
  const positions = query.positions;
  if (positions === null) return silentMs;
  assert(silentMs.length === positions.length, `${silentMs.length} values answer ${positions.length} instances`);
  const answer = new Array<number>(query.size).fill(HEARD_NEVER);
  for (let i = 0; i < positions.length; i++) answer[positions[i]!] = silentMs[i]!;
  return answer;
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
