// commands: the persistent registry's command set and its results, as typed values and as protobuf bytes
// (proto/cairn/cp/v1/commands.proto). A command is the data of one Raft log entry; its result travels back to the
// proposer, possibly on another member, so both are bytes.
//
// Decoding validates everything with the same rules as the API (src/naming/validation.ts): bytes that do not decode,
// or decode to an invalid command, give a typed failure ({ok: false, code, detail}), never a throw, so a bad entry in
// the log applies as a failure on every member alike. Encoding is deterministic: maps are written as pairs sorted by
// key, so the same command always gives the same bytes (the request-id table compares digests of them).

import type protobuf from 'protobufjs';
import { encodeReusing, encodeWithWriter, lookupMessage } from '../replica/proto.ts';
import { CairnError, isCairnErrorCode, type CairnErrorCode, type CairnErrorDetails } from '../errors.ts';
import { assertNever } from '../assert.ts';
import { limits } from '../limits.ts';
import {
  instanceId,
  redactCluster,
  type ClusterConfig,
  type ClusterView,
  type HealthChecker,
  type Instance,
  type Metadata,
  type Selector,
  type ServiceDefinition,
  type ServiceKey,
  type ServiceKind,
} from '../naming/model.ts';
import {
  validateBoolean,
  validateCheckPort,
  validateClusterName,
  validateHealthChecker,
  validateIp,
  validateMetadata,
  validatePort,
  validateProtectThreshold,
  validateRequestId,
  validateSelector,
  validateServiceKey,
  validateWeight,
} from '../naming/validation.ts';
import { PROBE_MEMBERS_MAX } from './probe-assignment.ts';
import { intern } from '../naming/intern.ts';

/** InstanceAddress locates an instance inside its service: cluster, ip and port. */
export interface InstanceAddress {
  readonly cluster: string;
  readonly ip: string;
  readonly port: number;
}

/** InstanceValues are the attributes a registration or full update sets (a persistent instance: ephemeral is false). */
export interface InstanceValues extends InstanceAddress {
  readonly weight: number;
  readonly enabled: boolean;
  readonly healthy: boolean;
  readonly metadata: Metadata;
  /** version is the stored instance's version (InstanceRecord); absent in commands (InstanceSpec has none). */
  readonly version?: number;
}

/** VersionPrecondition is a compare-and-set write's expected instance version (0: the instance must not exist). */
export interface VersionPrecondition {
  readonly expectedVersion?: number;
}

/** HealthFlip is one health-check verdict: the instance at `address` in service `key` becomes `healthy`. */
export interface HealthFlip {
  readonly key: ServiceKey;
  readonly address: InstanceAddress;
  readonly healthy: boolean;
}

/** HealthBatchFence says why a whole SetHealthBatch was refused ('' when it was not): see registry-state-machine.ts. */
export type HealthBatchFence = '' | 'stale-term' | 'stale-assignment' | 'not-a-prober';

/** PROBER_ID_CHARS_MAX bounds a prober's member id (host:port, as the peer codec's node ids). */
export const PROBER_ID_CHARS_MAX = 260;

/** RegistryCommand is one write to the persistent registry. */
export type RegistryCommand =
  | { readonly type: 'createService'; readonly key: ServiceKey; readonly protectThreshold: number; readonly metadata: Metadata; readonly selector: Selector; readonly kind: ServiceKind | null }
  | { readonly type: 'updateService'; readonly key: ServiceKey; readonly protectThreshold?: number; readonly metadata?: Metadata; readonly selector?: Selector }
  | { readonly type: 'deleteService'; readonly key: ServiceKey }
  | { readonly type: 'putCluster'; readonly key: ServiceKey; readonly config: ClusterConfig }
  | ({ readonly type: 'registerInstance'; readonly key: ServiceKey; readonly instance: InstanceValues } & VersionPrecondition)
  | ({ readonly type: 'updateInstance'; readonly key: ServiceKey; readonly instance: InstanceValues } & VersionPrecondition)
  | ({ readonly type: 'patchInstance'; readonly key: ServiceKey; readonly address: InstanceAddress; readonly weight?: number; readonly enabled?: boolean; readonly healthy?: boolean; readonly metadata?: Metadata } & VersionPrecondition)
  | ({ readonly type: 'deregisterInstance'; readonly key: ServiceKey; readonly address: InstanceAddress } & VersionPrecondition)
  | { readonly type: 'setInstanceHealth'; readonly key: ServiceKey; readonly address: InstanceAddress; readonly healthy: boolean }
  | { readonly type: 'setHealthBatch'; readonly term: number; readonly prober: string; readonly assignment: number; readonly flips: readonly HealthFlip[] }
  | { readonly type: 'assignProbers'; readonly term: number; readonly members: readonly string[] };

/** RegistryCommandType names the commands. */
export type RegistryCommandType = RegistryCommand['type'];

/** CommandEnvelope is a command with the request id that makes it idempotent. */
export interface CommandEnvelope {
  readonly requestId: string;
  readonly command: RegistryCommand;
}

/** ResultPayload is what a successful command returns besides the revision. */
export type ResultPayload =
  | { readonly type: 'none' }
  | { readonly type: 'service'; readonly service: ServiceDefinition }
  | { readonly type: 'instance'; readonly key: ServiceKey; readonly instance: Instance }
  | { readonly type: 'cluster'; readonly cluster: ClusterView }
  | { readonly type: 'removed'; readonly removed: boolean }
  | { readonly type: 'healthBatch'; readonly applied: number; readonly skipped: number; readonly fenced: HealthBatchFence };

/** CommandFailure is a failed command: a catalog code, the request-specific detail and structured details. */
export interface CommandFailure {
  readonly ok: false;
  readonly code: CairnErrorCode;
  readonly detail: string;
  readonly details?: CairnErrorDetails;
}

/** CommandResult is the outcome of applying a command: success with the service's revision and a payload, or a failure. */
export type CommandResult =
  | { readonly ok: true; readonly revision: number; readonly payload: ResultPayload }
  | CommandFailure;

/** DecodedCommand is a decoded and validated command, or why it is not one. */
export type DecodedCommand = { readonly ok: true; readonly envelope: CommandEnvelope } | CommandFailure;

/** Plain is a protobuf message as a plain object (protobufjs toObject, longs as numbers, absent fields omitted). */
export type Plain = Readonly<Record<string, unknown>>;

const toObjectOptions: protobuf.IConversionOptions = { longs: Number, oneofs: true };

// Types by short name: protobufjs's lookup walks the namespace tree on every call (~7% of encoding a command).
const messageTypes = new Map<string, protobuf.Type>();

/** messageType returns a cairn.cp.v1 message type by its short name. */
export function messageType(name: string): protobuf.Type {
  let type = messageTypes.get(name);
  if (type === undefined) {
    type = lookupMessage(`cairn.cp.v1.${name}`);
    messageTypes.set(name, type);
  }
  return type;
}

/**
 * encodeMessage encodes a plain object as the cairn.cp.v1 message `name`. The plain objects built in this file carry
 * every field in the JavaScript type protobufjs writes (strings, numbers, booleans, Uint8Array, arrays of plain
 * messages), so they are encoded as they are: converting them with fromObject first allocated a second copy of every
 * message on every member's apply path for the same bytes (test/cp/commands.test.ts compares both encodings).
 */
export function encodeMessage(name: string, plain: Plain): Uint8Array {
  return encodeReusing(messageType(name), plain);
}

/** decodeMessage decodes bytes as the cairn.cp.v1 message `name` into a plain object; throws on malformed bytes. */
export function decodeMessage(name: string, bytes: Uint8Array): Plain {
  const type = messageType(name);
  return type.toObject(type.decode(bytes), toObjectOptions);
}

// --- Reading plain objects: absent fields are proto3 defaults; a field of the wrong type is malformed. ---

function malformed(what: string): never {
  throw new CairnError('CAIRN_INVALID_ARGUMENT', `malformed command: ${what}`);
}

/** readString reads a string field (absent: ''). */
export function readString(plain: Plain, name: string): string {
  const value = plain[name] ?? '';
  if (typeof value !== 'string') malformed(`${name} is not a string`);
  return value;
}

/** readNumber reads a numeric field (absent: 0). */
export function readNumber(plain: Plain, name: string): number {
  const value = plain[name] ?? 0;
  if (typeof value !== 'number') malformed(`${name} is not a number`);
  return value;
}

/** readBoolean reads a boolean field (absent: false). */
export function readBoolean(plain: Plain, name: string): boolean {
  const value = plain[name] ?? false;
  if (typeof value !== 'boolean') malformed(`${name} is not a boolean`);
  return value;
}

/** readMessage reads a nested message field, or null when absent. */
export function readMessage(plain: Plain, name: string): Plain | null {
  const value = plain[name];
  if (value === undefined || value === null) return null;
  if (typeof value !== 'object' || Array.isArray(value)) malformed(`${name} is not a message`);
  return value as Plain;
}

function requireMessage(plain: Plain, name: string): Plain {
  return readMessage(plain, name) ?? malformed(`${name} is missing`);
}

/** readList reads a repeated message field (absent: []). */
export function readList(plain: Plain, name: string): readonly Plain[] {
  const value = plain[name] ?? [];
  if (!Array.isArray(value)) malformed(`${name} is not a list`);
  return value.map((item: unknown) => (typeof item === 'object' && item !== null ? (item as Plain) : malformed(`${name} item`)));
}

/** readSafeInteger reads a non-negative integer field that must be exactly representable (log indexes). */
export function readSafeInteger(plain: Plain, name: string): number {
  const value = readNumber(plain, name);
  if (!Number.isSafeInteger(value) || value < 0) malformed(`${name} is not a non-negative safe integer`);
  return value;
}

// --- Shared pieces: pairs, keys, selectors, checkers ---

// encodePairs remembers its last answer: apply encodes the same instance's metadata twice in a row (its stored
// record and its result), and a map is immutable once frozen, so the same frozen object gives the same pairs.
let lastPairsOf: Metadata | null = null;
let lastPairs: readonly Plain[] = [];

/** encodePairs writes a string map as pairs sorted by key (deterministic); the array returned is frozen. */
export function encodePairs(metadata: Metadata): readonly Plain[] {
  if (metadata === lastPairsOf) return lastPairs;
  const entries = Object.entries(metadata);
  // Validated metadata is already sorted (validation.ts freezes it with sorted keys): sort only when it is not.
  let sorted = true;
  for (let i = 1; i < entries.length && sorted; i++) sorted = (entries[i - 1] as [string, string])[0] < (entries[i] as [string, string])[0];
  if (!sorted) entries.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const pairs: readonly Plain[] = Object.freeze(entries.map(([key, value]) => Object.freeze({ key, value })));
  if (Object.isFrozen(metadata)) {
    lastPairsOf = metadata;
    lastPairs = pairs;
  }
  return pairs;
}

/**
 * decodePairs reads pairs into a validated metadata map; a repeated key is malformed. Keys and values are interned
 * and handed to metadataFromPairs, which src/cp/record-reader.ts shares.
 */
export function decodePairs(list: readonly Plain[], parameter: string): Metadata {
  const keys = scratchKeys;
  const values = scratchValues;
  let count = 0;
  try {
    for (const pair of list) {
      // Interned: the same keys and many of the same values recur on every instance the state keeps.
      keys[count] = intern(readString(pair, 'key'));
      values[count] = intern(readString(pair, 'value'));
      count++;
    }
    return metadataFromPairs(keys, values, count, parameter);
  } finally {
    keys.length = 0;
    values.length = 0;
  }
}

// Scratch lists of decodePairs, emptied after each call (their length is one message's pairs).
const scratchKeys: string[] = [];
const scratchValues: string[] = [];

/**
 * metadataFromPairs builds the validated metadata map of the first `count` pairs (keys[i], values[i]), in order; a
 * repeated key is malformed. Pairs written by encodePairs come with strictly increasing keys, which rules out
 * repeats and leaves nothing to sort: those are checked as validateMetadata would (no empty key, the size limit)
 * and frozen in one pass; anything else goes through validateMetadata.
 */
export function metadataFromPairs(keys: readonly string[], values: readonly string[], count: number, parameter: string): Metadata {
  const map: Record<string, string> = {};
  let chars = 0;
  let previous: string | null = null;
  let increasing = true;
  let seen: Set<string> | null = null;
  for (let i = 0; i < count; i++) {
    const key = keys[i] as string;
    const value = values[i] as string;
    if (increasing && previous !== null && !(previous < key)) {
      increasing = false;
      seen = new Set(Object.keys(map));
    }
    if (seen !== null) {
      if (seen.has(key)) malformed(`${parameter} repeats key '${key}'`);
      seen.add(key);
    }
    previous = key;
    // An own property even for '__proto__' (as Object.fromEntries would make it), never the prototype setter.
    if (key === '__proto__') Object.defineProperty(map, key, { value, enumerable: true, writable: true, configurable: true });
    else map[key] = value;
    chars += key.length + value.length;
  }
  if (!increasing || map[''] !== undefined || chars > limits.metadataCharsMax) return validateMetadata(map, parameter);
  return Object.freeze(map);
}

/** decodeServiceKey reads and validates a ServiceKey message. */
export function decodeServiceKey(plain: Plain | null): ServiceKey {
  if (plain === null) return malformed('service key is missing');
  return validateServiceKey({ namespace: intern(readString(plain, 'namespace')), group: intern(readString(plain, 'group')), service: intern(readString(plain, 'service')) });
}

/** encodeServiceKey writes a ServiceKey message. */
export function encodeServiceKey(key: ServiceKey): Plain {
  return { namespace: key.namespace, group: key.group, service: key.service };
}

/** encodeSelector writes a Selector message. */
export function encodeSelector(selector: Selector): Plain {
  return selector.type === 'label' ? { type: 'label', expression: selector.expression } : { type: 'none' };
}

/** decodeSelector reads and validates a Selector message. */
export function decodeSelector(plain: Plain | null): Selector {
  if (plain === null) return Object.freeze({ type: 'none' });
  return validateSelector({ type: readString(plain, 'type'), expression: readString(plain, 'expression') });
}

/** encodeHealthChecker writes a HealthChecker message (secrets included: for the log and storage only). */
export function encodeHealthChecker(checker: HealthChecker): Plain {
  switch (checker.type) {
    case 'NONE':
      return { type: checker.type };
    case 'TCP':
      return { type: checker.type, intervalMs: checker.intervalMs ?? 0 };
    case 'HTTP':
      return { type: 'HTTP', httpPath: checker.path, httpHeaders: encodePairs(checker.headers), httpExpectedResponseCode: checker.expectedResponseCode, intervalMs: checker.intervalMs ?? 0 };
    case 'MYSQL':
      return { type: 'MYSQL', mysqlUser: checker.user, mysqlPassword: checker.password, mysqlSql: checker.sql, intervalMs: checker.intervalMs ?? 0 };
    default:
      return assertNever(checker);
  }
}

/** decodeHealthChecker reads and validates a HealthChecker message. */
export function decodeHealthChecker(plain: Plain | null): HealthChecker {
  if (plain === null) return malformed('health checker is missing');
  const type = readString(plain, 'type');
  const stored = readNumber(plain, 'intervalMs');
  const interval = stored === 0 ? {} : { intervalMs: stored };
  if (type === 'HTTP') {
    const headers = Object.fromEntries(readList(plain, 'httpHeaders').map((pair) => [readString(pair, 'key'), readString(pair, 'value')]));
    return validateHealthChecker({ type, path: readString(plain, 'httpPath'), headers, expectedResponseCode: readNumber(plain, 'httpExpectedResponseCode'), ...interval });
  }
  if (type === 'MYSQL') {
    return validateHealthChecker({ type, user: readString(plain, 'mysqlUser'), password: readString(plain, 'mysqlPassword'), sql: readString(plain, 'mysqlSql'), ...interval });
  }
  return validateHealthChecker(type === 'NONE' ? { type } : { type, ...interval });
}

/** encodeClusterConfig writes a ClusterRecord message. */
export function encodeClusterConfig(config: ClusterConfig): Plain {
  return {
    name: config.name,
    healthChecker: encodeHealthChecker(config.healthChecker),
    checkPort: config.checkPort,
    useInstancePort4Check: config.useInstancePort4Check,
    metadata: encodePairs(config.metadata),
  };
}

/** decodeClusterConfig reads and validates a ClusterRecord message (or the cluster part of a PutCluster). */
export function decodeClusterConfig(plain: Plain, nameField: string): ClusterConfig {
  const useInstancePort4Check = readBoolean(plain, 'useInstancePort4Check');
  return Object.freeze({
    name: validateClusterName(readString(plain, nameField)),
    healthChecker: decodeHealthChecker(readMessage(plain, 'healthChecker')),
    checkPort: validateCheckPort(readNumber(plain, 'checkPort'), useInstancePort4Check),
    useInstancePort4Check,
    metadata: decodePairs(readList(plain, 'metadata'), 'clusterMetadata'),
  });
}

/** decodeAddress reads and validates an InstanceAddress message (or the address fields of an instance). */
export function decodeAddress(plain: Plain | null): InstanceAddress {
  if (plain === null) return malformed('instance address is missing');
  return Object.freeze({
    cluster: validateClusterName(intern(readString(plain, 'cluster'))),
    ip: validateIp(readString(plain, 'ip')),
    port: validatePort(readNumber(plain, 'port')),
  });
}

/** encodeAddress writes an InstanceAddress message. */
export function encodeAddress(address: InstanceAddress): Plain {
  return { cluster: address.cluster, ip: address.ip, port: address.port };
}

/** encodeInstanceValues writes an InstanceSpec, or an InstanceRecord (the same fields and the version, when known). */
export function encodeInstanceValues(values: InstanceValues): Plain {
  const plain: Record<string, unknown> = {
    cluster: values.cluster, ip: values.ip, port: values.port,
    weight: values.weight, enabled: values.enabled, healthy: values.healthy, metadata: encodePairs(values.metadata),
  };
  if (values.version !== undefined) plain['version'] = values.version;
  return plain;
}

/**
 * decodeInstanceValues reads and validates an InstanceSpec message, or with `record` an InstanceRecord, whose
 * version is read too (a record without one, written before versions existed, reads as version 1).
 */
export function decodeInstanceValues(plain: Plain | null, record = false): InstanceValues {
  if (plain === null) return malformed('instance is missing');
  const values = {
    ...decodeAddress(plain),
    weight: validateWeight(readNumber(plain, 'weight')),
    enabled: readBoolean(plain, 'enabled'),
    healthy: readBoolean(plain, 'healthy'),
    metadata: decodePairs(readList(plain, 'metadata'), 'metadata'),
  };
  return Object.freeze(record ? { ...values, version: Math.max(1, readSafeInteger(plain, 'version')) } : values);
}

/** toInstance builds the model Instance of a persistent instance of service `key`. */
export function toInstance(key: ServiceKey, values: InstanceValues): Instance {
  return Object.freeze({
    ip: values.ip,
    port: values.port,
    cluster: values.cluster,
    weight: values.weight,
    enabled: values.enabled,
    healthy: values.healthy,
    ephemeral: false,
    metadata: values.metadata,
    instanceId: instanceId(values.ip, values.port, values.cluster, key.group, key.service),
    ...(values.version === undefined ? {} : { version: values.version }),
  });
}

function decodeKind(text: string): ServiceKind | null {
  if (text === '') return null;
  if (text === 'persistent' || text === 'ephemeral') return text;
  return malformed(`kind '${text}' is not persistent or ephemeral`);
}

/** encodeKind writes a kind as the proto's string ('' for none). */
export function encodeKind(kind: ServiceKind | null): string {
  return kind ?? '';
}

/** decodeKindField reads a kind string field. */
export function decodeKindField(plain: Plain, name: string): ServiceKind | null {
  return decodeKind(readString(plain, name));
}

// --- Commands ---

function encodeCommandBody(command: RegistryCommand): Plain {
  if (command.type === 'setHealthBatch') {
    const flips = command.flips.map((flip) => ({ key: encodeServiceKey(flip.key), address: encodeAddress(flip.address), healthy: flip.healthy }));
    return { term: command.term, prober: command.prober, assignment: command.assignment, flips };
  }
  if (command.type === 'assignProbers') return { term: command.term, members: [...command.members] };
  const key = encodeServiceKey(command.key);
  switch (command.type) {
    case 'createService':
      return { key, protectThreshold: command.protectThreshold, metadata: encodePairs(command.metadata), selector: encodeSelector(command.selector), kind: encodeKind(command.kind) };
    case 'updateService': {
      const body: Record<string, unknown> = { key, setMetadata: command.metadata !== undefined, metadata: encodePairs(command.metadata ?? {}) };
      if (command.protectThreshold !== undefined) body['protectThreshold'] = command.protectThreshold;
      if (command.selector !== undefined) body['selector'] = encodeSelector(command.selector);
      return body;
    }
    case 'deleteService':
      return { key };
    case 'putCluster': {
      const { name, ...rest } = encodeClusterConfig(command.config);
      return { key, cluster: name, ...rest };
    }
    case 'registerInstance':
    case 'updateInstance': {
      const { version: _stored, ...spec } = command.instance;
      return withExpectedVersion({ key, instance: encodeInstanceValues(spec) }, command);
    }
    case 'patchInstance': {
      const body: Record<string, unknown> = { key, address: encodeAddress(command.address), setMetadata: command.metadata !== undefined, metadata: encodePairs(command.metadata ?? {}) };
      if (command.weight !== undefined) body['weight'] = command.weight;
      if (command.enabled !== undefined) body['enabled'] = command.enabled;
      if (command.healthy !== undefined) body['healthy'] = command.healthy;
      return withExpectedVersion(body, command);
    }
    case 'deregisterInstance':
      return withExpectedVersion({ key, address: encodeAddress(command.address) }, command);
    case 'setInstanceHealth':
      return { key, address: encodeAddress(command.address), healthy: command.healthy };
    default:
      return assertNever(command);
  }
}

/** withExpectedVersion adds a command's compare-and-set precondition to its encoded body. */
function withExpectedVersion(body: Record<string, unknown>, precondition: VersionPrecondition): Plain {
  if (precondition.expectedVersion !== undefined) body['expectedVersion'] = precondition.expectedVersion;
  return body;
}

/** decodeExpectedVersion reads a command's optional compare-and-set precondition. */
function decodeExpectedVersion(body: Plain): VersionPrecondition {
  return body['expectedVersion'] === undefined ? {} : { expectedVersion: readSafeInteger(body, 'expectedVersion') };
}

/** encodeCommand encodes a command and its request id as a Command message (deterministic bytes). */
export function encodeCommand(envelope: CommandEnvelope): Uint8Array {
  return encodeMessage('Command', { requestId: envelope.requestId, [envelope.command.type]: encodeCommandBody(envelope.command) });
}

function decodeUpdateService(key: ServiceKey, body: Plain): RegistryCommand {
  const threshold = body['protectThreshold'];
  const selector = readMessage(body, 'selector');
  return {
    type: 'updateService',
    key,
    ...(threshold === undefined ? {} : { protectThreshold: validateProtectThreshold(threshold) }),
    ...(readBoolean(body, 'setMetadata') ? { metadata: decodePairs(readList(body, 'metadata'), 'metadata') } : {}),
    ...(selector === null ? {} : { selector: decodeSelector(selector) }),
  };
}

function decodePatchInstance(key: ServiceKey, body: Plain): RegistryCommand {
  const weight = body['weight'];
  const enabled = body['enabled'];
  const healthy = body['healthy'];
  return {
    type: 'patchInstance',
    key,
    address: decodeAddress(readMessage(body, 'address')),
    ...(weight === undefined ? {} : { weight: validateWeight(weight) }),
    ...(enabled === undefined ? {} : { enabled: validateBoolean(enabled, 'enabled') }),
    ...(healthy === undefined ? {} : { healthy: validateBoolean(healthy, 'healthy') }),
    ...(readBoolean(body, 'setMetadata') ? { metadata: decodePairs(readList(body, 'metadata'), 'metadata') } : {}),
    ...decodeExpectedVersion(body),
  };
}

function decodeProber(text: string): string {
  if (text === '' || text.length > PROBER_ID_CHARS_MAX || /[\u0000-\u001f\s]/.test(text)) malformed(`prober id '${text.slice(0, 64)}' is not a member id`);
  return text;
}

function decodeSetHealthBatch(body: Plain): RegistryCommand {
  const list = readList(body, 'flips');
  if (list.length > limits.healthFlipsPerEntryMax) malformed(`${list.length} flips exceed healthFlipsPerEntryMax ${limits.healthFlipsPerEntryMax}`);
  const flips = list.map((flip): HealthFlip => Object.freeze({
    key: decodeServiceKey(readMessage(flip, 'key')),
    address: decodeAddress(readMessage(flip, 'address')),
    healthy: readBoolean(flip, 'healthy'),
  }));
  return {
    type: 'setHealthBatch',
    term: readSafeInteger(body, 'term'),
    prober: decodeProber(readString(body, 'prober')),
    assignment: readSafeInteger(body, 'assignment'),
    flips: Object.freeze(flips),
  };
}

function decodeAssignProbers(body: Plain): RegistryCommand {
  const raw = body['members'] ?? [];
  if (!Array.isArray(raw)) return malformed('members is not a list');
  if (raw.length === 0 || raw.length > PROBE_MEMBERS_MAX) malformed(`an assignment has 1 to ${PROBE_MEMBERS_MAX} members (got ${raw.length})`);
  const members = raw.map((member: unknown) => decodeProber(typeof member === 'string' ? member : malformed('member is not a string')));
  for (let i = 1; i < members.length; i++) {
    if ((members[i - 1] ?? '') >= (members[i] ?? '')) malformed('assignment members must be sorted and distinct');
  }
  return { type: 'assignProbers', term: readSafeInteger(body, 'term'), members: Object.freeze(members) };
}

function decodeCommandBody(type: string, body: Plain): RegistryCommand {
  if (type === 'setHealthBatch') return decodeSetHealthBatch(body);
  if (type === 'assignProbers') return decodeAssignProbers(body);
  const key = decodeServiceKey(readMessage(body, 'key'));
  switch (type) {
    case 'createService':
      return {
        type, key,
        protectThreshold: validateProtectThreshold(readNumber(body, 'protectThreshold')),
        metadata: decodePairs(readList(body, 'metadata'), 'metadata'),
        selector: decodeSelector(readMessage(body, 'selector')),
        kind: decodeKindField(body, 'kind'),
      };
    case 'updateService':
      return decodeUpdateService(key, body);
    case 'deleteService':
      return { type, key };
    case 'putCluster':
      return { type, key, config: decodeClusterConfig(body, 'cluster') };
    case 'registerInstance':
    case 'updateInstance':
      return { type, key, instance: decodeInstanceValues(readMessage(body, 'instance')), ...decodeExpectedVersion(body) };
    case 'patchInstance':
      return decodePatchInstance(key, body);
    case 'deregisterInstance':
      return { type, key, address: decodeAddress(readMessage(body, 'address')), ...decodeExpectedVersion(body) };
    case 'setInstanceHealth':
      return { type, key, address: decodeAddress(readMessage(body, 'address')), healthy: readBoolean(body, 'healthy') };
    default:
      return malformed(`unknown command '${type}'`);
  }
}

/** failureOf turns a thrown value into a CommandFailure: a CairnError keeps its code, anything else is `fallback`. */
export function failureOf(error: unknown, fallback: CairnErrorCode, prefix: string): CommandFailure {
  if (error instanceof CairnError) {
    const base = { ok: false as const, code: error.code, detail: error.detail ?? '' };
    return error.details === undefined ? base : { ...base, details: error.details };
  }
  return { ok: false, code: fallback, detail: `${prefix}: ${error instanceof Error ? error.message : String(error)}` };
}

/**
 * decodeCommand decodes and validates a Command message. It never throws: bytes that are not a valid command give a
 * failure (CAIRN_INVALID_ARGUMENT, or the validation error's own code such as CAIRN_NAME_TOO_LONG).
 */
export function decodeCommand(bytes: Uint8Array): DecodedCommand {
  try {
    const plain = decodeMessage('Command', bytes);
    const requestId = validateRequestId(readString(plain, 'requestId'));
    const type = plain['body'];
    if (typeof type !== 'string') return malformed('command has no body');
    const command = decodeCommandBody(type, requireMessage(plain, type));
    return { ok: true, envelope: { requestId, command } };
  } catch (error) {
    return failureOf(error, 'CAIRN_INVALID_ARGUMENT', 'undecodable command');
  }
}

// --- Results ---

/** REDACTED_SECRET stands for a secret in a result: results reach users, secrets never do. */
export const REDACTED_SECRET = '******';

function encodeClusterView(view: ClusterView): Plain {
  const checker = view.healthChecker;
  const full: HealthChecker = checker.type === 'MYSQL'
    ? { type: 'MYSQL', user: checker.user, password: checker.passwordSet ? REDACTED_SECRET : '', sql: checker.sql, ...(checker.intervalMs === undefined ? {} : { intervalMs: checker.intervalMs }) }
    : checker;
  return encodeClusterConfig({ ...view, healthChecker: full });
}

function encodePayload(payload: ResultPayload): Plain {
  switch (payload.type) {
    case 'none':
      return {};
    case 'service':
      return { service: encodeServiceDefinition(payload.service, null) };
    case 'instance':
      return { key: encodeServiceKey(payload.key), instance: encodeInstanceValues(payload.instance) };
    case 'cluster':
      return { cluster: encodeClusterView(payload.cluster) };
    case 'removed':
      return { removed: payload.removed };
    case 'healthBatch':
      return { healthBatch: { applied: payload.applied, skipped: payload.skipped, fenced: payload.fenced } };
    default:
      return assertNever(payload);
  }
}

/** encodeResult encodes a command's result as a Result message. */
export function encodeResult(result: CommandResult): Uint8Array {
  if (!result.ok) {
    return encodeMessage('Result', {
      errorCode: result.code,
      errorDetail: result.detail,
      errorDetails: result.details === undefined ? '' : JSON.stringify(result.details),
    });
  }
  const payload = result.payload;
  if (payload.type === 'instance') {
    // Result's fields are written in field-number order and `instance` (11) is the last one set, so the Result is
    // its other fields followed by the instance as a length-delimited field: the very bytes of the nested encoding
    // (test/cp/commands.test.ts compares them), reusing the record apply has just stored.
    const record = encodeInstanceRecord(payload.instance);
    const head = encodeMessage('Result', { revision: result.revision, key: encodeServiceKey(payload.key) });
    return appendLengthDelimited(head, RESULT_INSTANCE_TAG, record);
  }
  return encodeMessage('Result', { revision: result.revision, ...encodePayload(payload) });
}

/** RESULT_INSTANCE_TAG is Result.instance's tag: field 11, length-delimited. */
const RESULT_INSTANCE_TAG = (11 << 3) | 2;

/** appendLengthDelimited returns `head` followed by the field `tag` holding `body`, as a new Buffer. */
function appendLengthDelimited(head: Uint8Array, tag: number, body: Uint8Array): Uint8Array {
  const prefix = encodeWithWriter((writer) => {
    writer.uint32(tag).uint32(body.length);
  });
  return Buffer.concat([head, prefix, body]);
}

// encodeInstanceRecord remembers its last answer: apply stores an instance's record and then returns the same
// instance in its result; instances are frozen, so the same object gives the same bytes. One entry, not a map:
// caching every instance's bytes would add its record's size to each instance held in memory.
let lastRecordOf: InstanceValues | null = null;
let lastRecord: Uint8Array = new Uint8Array(0);

/** encodeInstanceRecord encodes an instance as its stored InstanceRecord (callers must not modify the bytes). */
export function encodeInstanceRecord(instance: InstanceValues): Uint8Array {
  if (instance === lastRecordOf) return lastRecord;
  const bytes = encodeMessage('InstanceRecord', encodeInstanceValues(instance));
  if (Object.isFrozen(instance)) {
    lastRecordOf = instance;
    lastRecord = bytes;
  }
  return bytes;
}

function decodeDetails(text: string): CairnErrorDetails | undefined {
  if (text === '') return undefined;
  const parsed: unknown = JSON.parse(text);
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return malformed('error details');
  const entries = Object.entries(parsed).filter((entry): entry is [string, string | number | boolean | null] => {
    const value: unknown = entry[1];
    return value === null || typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean';
  });
  return Object.fromEntries(entries);
}

function decodeFence(text: string): HealthBatchFence {
  if (text === '' || text === 'stale-term' || text === 'stale-assignment' || text === 'not-a-prober') return text;
  return malformed(`unknown fence '${text}'`);
}

function decodePayload(plain: Plain): ResultPayload {
  switch (plain['payload']) {
    case undefined:
      return { type: 'none' };
    case 'service':
      return { type: 'service', service: decodeServiceDefinition(requireMessage(plain, 'service')).definition };
    case 'instance': {
      const key = decodeServiceKey(readMessage(plain, 'key'));
      return { type: 'instance', key, instance: toInstance(key, decodeInstanceValues(readMessage(plain, 'instance'), true)) };
    }
    case 'cluster':
      return { type: 'cluster', cluster: redactCluster(decodeClusterConfig(requireMessage(plain, 'cluster'), 'name')) };
    case 'removed':
      return { type: 'removed', removed: readBoolean(plain, 'removed') };
    case 'healthBatch': {
      const outcome = requireMessage(plain, 'healthBatch');
      return { type: 'healthBatch', applied: readSafeInteger(outcome, 'applied'), skipped: readSafeInteger(outcome, 'skipped'), fenced: decodeFence(readString(outcome, 'fenced')) };
    }
    default:
      return malformed(`unknown payload '${String(plain['payload'])}'`);
  }
}

/** decodeResult decodes a Result message; bytes that are not one give a CAIRN_INTERNAL failure (a bug, never a throw). */
export function decodeResult(bytes: Uint8Array): CommandResult {
  try {
    const plain = decodeMessage('Result', bytes);
    const code = readString(plain, 'errorCode');
    if (code !== '') {
      if (!isCairnErrorCode(code)) return { ok: false, code: 'CAIRN_INTERNAL', detail: `unknown error code ${code}: ${readString(plain, 'errorDetail')}` };
      const details = decodeDetails(readString(plain, 'errorDetails'));
      const base = { ok: false as const, code, detail: readString(plain, 'errorDetail') };
      return details === undefined ? base : { ...base, details };
    }
    return { ok: true, revision: readSafeInteger(plain, 'revision'), payload: decodePayload(plain) };
  } catch (error) {
    return failureOf(error instanceof CairnError ? new CairnError('CAIRN_INTERNAL', error.message) : error, 'CAIRN_INTERNAL', 'undecodable result');
  }
}

// --- Service records (stored, and carried in results) ---

/** encodeServiceDefinition writes a ServiceRecord: the definition, and the declared kind when stored (null in results). */
export function encodeServiceDefinition(service: ServiceDefinition, declaredKind: ServiceKind | null): Plain {
  return {
    key: encodeServiceKey({ namespace: service.namespace, group: service.group, service: service.name }),
    protectThreshold: service.protectThreshold,
    metadata: encodePairs(service.metadata),
    selector: encodeSelector(service.selector),
    declaredKind: encodeKind(declaredKind),
    kind: encodeKind(service.kind),
    revision: service.revision,
  };
}

/** DecodedServiceRecord is a ServiceRecord read back: the definition and the declared kind. */
export interface DecodedServiceRecord {
  readonly definition: ServiceDefinition;
  readonly declaredKind: ServiceKind | null;
}

/** decodeServiceDefinition reads and validates a ServiceRecord. */
export function decodeServiceDefinition(plain: Plain): DecodedServiceRecord {
  const key = decodeServiceKey(readMessage(plain, 'key'));
  const definition: ServiceDefinition = Object.freeze({
    namespace: key.namespace,
    group: key.group,
    name: key.service,
    protectThreshold: validateProtectThreshold(readNumber(plain, 'protectThreshold')),
    metadata: decodePairs(readList(plain, 'metadata'), 'serviceMetadata'),
    selector: decodeSelector(readMessage(plain, 'selector')),
    kind: decodeKindField(plain, 'kind'),
    revision: readSafeInteger(plain, 'revision'),
  });
  return { definition, declaredKind: decodeKindField(plain, 'declaredKind') };
}
