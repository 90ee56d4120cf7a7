// registry-storage: the persistent registry's state to and from bytes: the snapshot (RegistrySnapshot, sorted so
// that equal states give equal bytes) and the LevelDB keyspace (keyspace.ts). Both rebuild a RegistryState with
// the same validation as commands; anything that does not fit (an undecodable record, a key that does not match
// its record, an instance without its service, a repeated key) is CAIRN_STORAGE_CORRUPT: never served.

import protobuf from 'protobufjs';
import type { ApplyBatch } from '../replica/state-machine.ts';
import { concatBytes } from '../replica/codec.ts';
import { CairnError } from '../errors.ts';
import { validateRequestId } from '../naming/validation.ts';
import { sameServiceKey, type ClusterConfig, type Instance, type ServiceKey } from '../naming/model.ts';
import {
  decodeClusterConfig,
  decodeMessage,
  decodeServiceDefinition,
  encodeClusterConfig,
  encodeInstanceValues,
  encodeMessage,
  encodeServiceDefinition,
  readMessage,
  readSafeInteger,
  readString,
  toInstance,
  type InstanceAddress,
  type InstanceValues,
  type Plain,
} from './commands.ts';
import { clusterStorageKey, instanceKeyPrefix, instanceStorageKey, parseInstanceKeyRest, parseStorageKey, PROBE_ASSIGNMENT_STORAGE_KEY, requestStorageKey, serviceStorageKey } from './keyspace.ts';
import { PROBE_MEMBERS_MAX, type ProbeAssignment } from './probe-assignment.ts';
import { addressKey, EMPTY_RESULT, RegistryState, SHA256_BYTES, type RememberedRequest, type ServiceSettings } from './registry-state.ts';
import { readInstanceRecord } from './record-reader.ts';
import { SnapshotWriter } from './snapshot-writer.ts';
import type { KeyspaceBatch } from '../replica/storage.ts';

/**
 * SNAPSHOT_FORMAT_VERSION is written in every snapshot; a snapshot of another version is refused, except format 1
 * (before remembered results could be instance references), which reads as a format 2 snapshot without references.
 * A member of an older version refuses a format 2 snapshot rather than serve retries empty results.
 */
export const SNAPSHOT_FORMAT_VERSION = 2;
const SNAPSHOT_FORMATS_READ: ReadonlySet<number> = new Set([1, 2]);

function corrupt(detail: string, cause?: unknown): never {
  throw new CairnError('CAIRN_STORAGE_CORRUPT', `registry: ${detail}`, cause === undefined ? {} : { cause });
}

/** corruptBecause reports a decoding failure as CAIRN_STORAGE_CORRUPT naming `what` (one already of that code as it is). */
function corruptBecause(what: string, error: unknown): never {
  if (error instanceof CairnError && error.code === 'CAIRN_STORAGE_CORRUPT') throw error;
  return corrupt(`${what}: ${error instanceof Error ? error.message : String(error)}`, error);
}

/** guard runs a decoding step and reports any failure as CAIRN_STORAGE_CORRUPT naming `what`. */
function guard<T>(what: string, step: () => T): T {
  try {
    return step();
  } catch (error) {
    return corruptBecause(what, error);
  }
}

/** encodeRemembered writes a RememberedRequest message (its full result, or the reference it is rebuilt from). */
export function encodeRemembered(request: RememberedRequest): Plain {
  const ref = request.instanceRef;
  const digest = Buffer.from(request.digest, 'latin1');
  if (ref === null) return { requestId: request.requestId, index: request.index, digest, result: request.result };
  return { requestId: request.requestId, index: request.index, digest, instanceRef: { instance: ref.instance, revision: ref.revision } };
}

/** readBytes copies a bytes field out of the decoded buffer (absent or empty: the shared EMPTY_RESULT). */
function readBytes(plain: Plain, name: string): Uint8Array {
  const value = plain[name] ?? EMPTY_RESULT;
  if (!(value instanceof Uint8Array)) return corrupt(`${name} is not bytes`);
  return value.length === 0 ? EMPTY_RESULT : new Uint8Array(value);
}

/** encodeProbeAssignment writes a ProbeAssignment message. */
export function encodeProbeAssignment(assignment: ProbeAssignment): Plain {
  return { epoch: assignment.epoch, members: [...assignment.members], term: assignment.term };
}

/** decodeProbeAssignment reads a stored ProbeAssignment; anything that does not fit is CAIRN_STORAGE_CORRUPT. */
export function decodeProbeAssignment(plain: Plain): ProbeAssignment {
  const epoch = readSafeInteger(plain, 'epoch');
  const term = readSafeInteger(plain, 'term');
  const raw = plain['members'] ?? [];
  if (!Array.isArray(raw) || raw.length === 0 || raw.length > PROBE_MEMBERS_MAX) return corrupt('probe assignment members');
  const members = raw.map((member: unknown) => (typeof member === 'string' && member !== '' ? member : corrupt('probe assignment member')));
  for (let i = 1; i < members.length; i++) if ((members[i - 1] ?? '') >= (members[i] ?? '')) corrupt('probe assignment members are not sorted');
  if (epoch < 1 || term < 1) corrupt('probe assignment epoch or term below 1');
  return Object.freeze({ epoch, members: Object.freeze(members), term });
}

function decodeRemembered(plain: Plain): RememberedRequest {
  const digestBytes = plain['digest'] ?? EMPTY_RESULT;
  if (!(digestBytes instanceof Uint8Array) || digestBytes.length !== SHA256_BYTES) corrupt('remembered request digest is not SHA-256');
  // One flat 32-character string (a view of the decoded bytes is read, not copied first).
  const digest = Buffer.from(digestBytes.buffer, digestBytes.byteOffset, digestBytes.byteLength).toString('latin1');
  const index = readSafeInteger(plain, 'index');
  if (index < 1) corrupt('remembered request index below 1');
  const result = readBytes(plain, 'result');
  const ref = readMessage(plain, 'instanceRef');
  if (ref === null) return { requestId: validateRequestId(readString(plain, 'requestId')), index, digest, result, instanceRef: null };
  if (result.length > 0) corrupt('remembered request holds both a result and an instance reference');
  const instance = readString(ref, 'instance');
  const parsed = parseStorageKey(instance);
  if (parsed === null || parsed.prefix !== 'ins' || instanceStorageKey(parsed.key, parsed.address) !== instance) {
    return corrupt(`remembered request refers to ${JSON.stringify(instance)}, not an instance key`);
  }
  // That the instance is stored (with this very key) is checked once the state is assembled.
  const instanceRef = { instance, key: parsed.key, address: parsed.address, revision: readSafeInteger(ref, 'revision') };
  return { requestId: validateRequestId(readString(plain, 'requestId')), index, digest, result, instanceRef };
}

/** encodeSnapshot encodes a state as a RegistrySnapshot: services, clusters and instances sorted, requests by index. */
export function encodeSnapshot(state: RegistryState): Uint8Array {
  return concatBytes([...snapshotPieces(state)]);
}

/**
 * SNAPSHOT_PIECE_ITEMS bounds the instances or remembered requests encoded into one piece of a snapshot: the driver
 * encodes a large registry's snapshot a few pieces at a time between its other work (a 100 000-instance registry
 * with a full request table took ~3 s in one call on the development VM, long enough for followers to elect a new
 * leader), so no piece may be much more than a millisecond of work.
 */
const SNAPSHOT_PIECE_ITEMS = 256;

/** CapturedService is one service of a captured snapshot: immutable values held by reference. */
interface CapturedService {
  readonly plain: Plain;
  readonly instances: readonly Instance[];
}

/**
 * snapshotPieces captures the state as of the call and returns a generator of the snapshot's pieces, whose
 * concatenation is exactly encodeSnapshot's bytes (protobuf's repeated and length-delimited fields are written as
 * consecutive field records, so pieces may be encoded one by one). The capture is cheap: every part it keeps is
 * immutable in RegistryState (frozen definitions and sorted instance arrays that a change replaces, cluster configs
 * replaced whole, remembered requests never changed), so later applies do not alter what the pieces encode.
 */
export function snapshotPieces(state: RegistryState): Generator<Uint8Array, void, void> {
  const services: CapturedService[] = [];
  for (const namespace of state.sortedNamespaces()) {
    for (const service of state.sortedServices(namespace)) {
      services.push({
        plain: {
          service: encodeServiceDefinition(state.definition(service), service.settings.declaredKind),
          clusters: state.sortedClusters(service).map(encodeClusterConfig),
        },
        instances: state.sortedInstances(service),
      });
    }
  }
  const requests = [...state.requests.values()].sort((a, b) => a.index - b.index);
  return generatePieces(services, requests, state.probeAssignment);
}

/** NO_PIECE is yielded as a pause point: an empty piece adds nothing to the snapshot. */
const NO_PIECE = new Uint8Array(0);

function* generatePieces(services: readonly CapturedService[], requests: readonly RememberedRequest[], probeAssignment: ProbeAssignment | null): Generator<Uint8Array, void, void> {
  // The instances and requests, nearly all of a large snapshot, are written by hand (snapshot-writer.ts: what
  // protobufjs writes, without its garbage); the few per-service and per-snapshot messages through protobufjs.
  const writer = new SnapshotWriter();
  yield encodeMessage('RegistrySnapshot', { formatVersion: SNAPSHOT_FORMAT_VERSION });
  for (const service of services) {
    // A ServiceSnapshot is field 2 of the RegistrySnapshot: its tag and length, then its own fields in pieces.
    const body: Uint8Array[] = [encodeMessage('ServiceSnapshot', service.plain)];
    for (let i = 0; i < service.instances.length; i += SNAPSHOT_PIECE_ITEMS) {
      body.push(writer.instancesPiece(service.instances, i, Math.min(i + SNAPSHOT_PIECE_ITEMS, service.instances.length)));
      // A point where the driver may pause inside a large service.
      yield NO_PIECE;
    }
    let length = 0;
    for (const piece of body) length += piece.length;
    yield fieldHeader(2, length);
    yield* body;
  }
  for (let i = 0; i < requests.length; i += SNAPSHOT_PIECE_ITEMS) {
    yield writer.requestsPiece(requests, i, Math.min(i + SNAPSHOT_PIECE_ITEMS, requests.length));
  }
  if (probeAssignment !== null) yield encodeMessage('RegistrySnapshot', { probeAssignment: encodeProbeAssignment(probeAssignment) });
}

/** fieldHeader is the tag and length of a length-delimited protobuf field, as protobufjs writes them. */
function fieldHeader(field: number, length: number): Uint8Array {
  const bytes: number[] = [];
  for (let value = (field << 3) | 2; ; value >>>= 7) {
    if (value < 0x80) { bytes.push(value); break; }
    bytes.push((value & 0x7f) | 0x80);
  }
  for (let value = length; ; value = Math.floor(value / 128)) {
    if (value < 0x80) { bytes.push(value); break; }
    bytes.push((value % 128) | 0x80);
  }
  return Uint8Array.from(bytes);
}

/** ServiceParts are one service's decoded records before they are assembled into a RegistryState. */
interface ServiceParts {
  readonly settings: ServiceSettings;
  readonly clusters: ClusterConfig[];
  readonly instances: InstanceValues[];
}

/** ImagePart is a ServiceParts decoded from an image, with each instance's InstanceRecord bytes (a view of the image). */
interface ImagePart extends ServiceParts {
  readonly instanceBytes: Uint8Array[];
}

/** DecodedImage is a snapshot decoded into its state, with the parts it was assembled from. */
export interface DecodedImage {
  readonly state: RegistryState;
  readonly parts: readonly ImagePart[];
}

function settingsOf(plain: Plain): ServiceSettings {
  const { definition, declaredKind } = decodeServiceDefinition(plain);
  const key = { namespace: definition.namespace, group: definition.group, service: definition.name };
  const { protectThreshold, metadata, selector, revision } = definition;
  return { key, protectThreshold, metadata, selector, declaredKind, revision };
}

/** assemble builds a RegistryState from decoded parts, checking the invariants the state relies on. */
function assemble(parts: readonly ServiceParts[], requests: readonly RememberedRequest[], probeAssignment: ProbeAssignment | null): RegistryState {
  return drain(assembleInSlices(parts, requests, probeAssignment));
}

function inIndexOrder(requests: readonly RememberedRequest[]): boolean {
  for (let i = 1; i < requests.length; i++) if ((requests[i - 1] as RememberedRequest).index >= (requests[i] as RememberedRequest).index) return false;
  return true;
}

/** drain runs a sliced step to its end in one go. */
function drain<T>(steps: Generator<void, T, void>): T {
  for (;;) {
    const step = steps.next();
    if (step.done === true) return step.value;
  }
}

/**
 * RESTORE_PIECE_ITEMS bounds the records decoded, assembled or written between two pause points of a sliced restore
 * (restoreInSlices): a 100 000-instance registry's snapshot took ~3 s to restore in one call on the development VM,
 * which a follower spent without heartbeats, Distro traffic or client reads.
 */
const RESTORE_PIECE_ITEMS = 256;

/** assembleInSlices is assemble, pausing every RESTORE_PIECE_ITEMS records. */
function* assembleInSlices(parts: readonly ServiceParts[], requests: readonly RememberedRequest[], probeAssignment: ProbeAssignment | null): Generator<void, RegistryState, void> {
  let done = 0;
  const state = new RegistryState();
  state.probeAssignment = probeAssignment;
  for (const part of parts) {
    const { key } = part.settings;
    if (state.findService(key) !== undefined) corrupt(`service ${key.namespace}/${key.group}@@${key.service} appears twice`);
    if (part.settings.declaredKind === 'ephemeral' && part.instances.length > 0) corrupt(`ephemeral service ${key.service} holds persistent instances`);
    const service = state.addService(part.settings);
    for (const cluster of part.clusters) {
      if (service.clusters.has(cluster.name)) corrupt(`cluster ${cluster.name} of ${key.service} appears twice`);
      state.setCluster(service, cluster);
    }
    for (const values of part.instances) {
      if (service.instances.has(addressKey(values))) corrupt(`instance ${values.ip}:${values.port} of ${key.service} appears twice`);
      state.setInstance(service, toInstance(key, values));
      if (++done % RESTORE_PIECE_ITEMS === 0) yield;
    }
  }
  // A snapshot lists them by index already; the keyspace by request id.
  const sorted = inIndexOrder(requests) ? requests : [...requests].sort((a, b) => a.index - b.index);
  for (const request of sorted) {
    if (state.requests.has(request.requestId)) corrupt(`request id ${request.requestId} appears twice`);
    const ref = request.instanceRef;
    if (ref === null) state.remember(request);
    else {
      const service = state.findService(ref.key);
      const stored = service?.instances.get(addressKey(ref.address));
      if (service === undefined || stored === undefined) {
        corrupt(`request ${request.requestId} refers to instance ${ref.address.ip}:${ref.address.port} of ${ref.key.service}, which is not stored`);
      }
      // The stored service's key and instance instead of the ones parsed from the reference (no copies kept).
      state.remember({ ...request, instanceRef: { ...ref, key: service.settings.key, address: stored } });
    }
    if (++done % RESTORE_PIECE_ITEMS === 0) yield;
  }
  return state;
}

/** buildFromSnapshot decodes a RegistrySnapshot into a fresh RegistryState (CAIRN_STORAGE_CORRUPT if it is not one). */
export function buildFromSnapshot(data: Uint8Array): RegistryState {
  return drain(buildFromSnapshotInSlices(data));
}

/** Field numbers of RegistrySnapshot and ServiceSnapshot (cp.proto), read one record at a time below. */
const SNAPSHOT_FIELDS = { formatVersion: 1, services: 2, requests: 3, probeAssignment: 4 } as const;
const SERVICE_SNAPSHOT_FIELDS = { service: 1, clusters: 2, instances: 3 } as const;

/** WireField is one top-level field of a protobuf message: its number and, when length-delimited, its bytes. */
interface WireField {
  readonly field: number;
  readonly bytes: Uint8Array | null;
  readonly varint: number;
}

/**
 * fieldsOf reads the top-level fields of a protobuf message one by one (a length-delimited field's bytes are a view,
 * not a copy), so that a large message can be decoded record by record; protobufjs's decode of the whole message is
 * one call. Other wire types than varint and length-delimited are skipped, as protobufjs skips unknown fields.
 */
function* fieldsOf(data: Uint8Array, what: string): Generator<WireField, void, void> {
  const reader = protobuf.Reader.create(data);
  while (reader.pos < reader.len) {
    const next = guard(what, (): WireField | null => {
      const tag = reader.uint32();
      const field = tag >>> 3;
      const wire = tag & 7;
      if (field === 0) return corrupt(`${what}: field number 0`);
      if (wire === 2) return { field, bytes: reader.bytes(), varint: 0 };
      if (wire === 0) return { field, bytes: null, varint: reader.uint32() };
      reader.skipType(wire);
      return null;
    });
    if (next !== null) yield next;
  }
}

/** lengthDelimited returns a field's bytes, or reports the wrong wire type as corruption. */
function lengthDelimited(field: WireField, what: string): Uint8Array {
  return field.bytes ?? corrupt(`${what} is not length-delimited`);
}

/**
 * buildFromSnapshotInSlices is buildFromSnapshot in steps: the snapshot's records (each instance, cluster, service
 * and remembered request) are decoded one at a time, with the same checks, and a pause (a yield) every
 * RESTORE_PIECE_ITEMS of them; the state is returned at the end. Equivalent to decoding the whole RegistrySnapshot
 * (protobuf repeated fields are consecutive records; for a singular field the last occurrence wins, as there).
 */
export function* buildFromSnapshotInSlices(data: Uint8Array): Generator<void, RegistryState, void> {
  return (yield* decodeImageInSlices(data)).state;
}

/** decodeImageInSlices is buildFromSnapshotInSlices, also returning the parts (with each instance's record bytes). */
export function* decodeImageInSlices(data: Uint8Array): Generator<void, DecodedImage, void> {
  let version = 0;
  let assignment: ProbeAssignment | null = null;
  const parts: ImagePart[] = [];
  const requests: RememberedRequest[] = [];
  let done = 0;
  for (const top of fieldsOf(data, 'snapshot')) {
    switch (top.field) {
      case SNAPSHOT_FIELDS.formatVersion:
        version = top.varint;
        break;
      case SNAPSHOT_FIELDS.services: {
        let settings: ServiceSettings | null = null;
        const clusters: ClusterConfig[] = [];
        const instances: InstanceValues[] = [];
        const instanceBytes: Uint8Array[] = [];
        for (const inner of fieldsOf(lengthDelimited(top, 'snapshot service'), 'snapshot service')) {
          const bytes = inner.field === SERVICE_SNAPSHOT_FIELDS.service || inner.field === SERVICE_SNAPSHOT_FIELDS.clusters || inner.field === SERVICE_SNAPSHOT_FIELDS.instances
            ? lengthDelimited(inner, 'snapshot service record')
            : null;
          if (bytes === null) continue;
          if (inner.field === SERVICE_SNAPSHOT_FIELDS.service) settings = guard('snapshot services', () => settingsOf(decodeMessage('ServiceRecord', bytes)));
          else if (inner.field === SERVICE_SNAPSHOT_FIELDS.clusters) clusters.push(guard('snapshot services', () => decodeClusterConfig(decodeMessage('ClusterRecord', bytes), 'name')));
          else {
            instances.push(guard('snapshot services', () => readInstanceRecord(bytes)));
            instanceBytes.push(bytes);
          }
          if (++done % RESTORE_PIECE_ITEMS === 0) yield;
        }
        parts.push({ settings: settings ?? corrupt('snapshot services: service record missing'), clusters, instances, instanceBytes });
        break;
      }
      case SNAPSHOT_FIELDS.requests: {
        const bytes = lengthDelimited(top, 'snapshot request');
        requests.push(guard('snapshot requests', () => decodeRemembered(decodeMessage('RememberedRequest', bytes))));
        if (++done % RESTORE_PIECE_ITEMS === 0) yield;
        break;
      }
      case SNAPSHOT_FIELDS.probeAssignment: {
        const bytes = lengthDelimited(top, 'snapshot probe assignment');
        assignment = guard('snapshot probe assignment', () => decodeProbeAssignment(decodeMessage('ProbeAssignment', bytes)));
        break;
      }
      default:
        break;
    }
  }
  if (!SNAPSHOT_FORMATS_READ.has(version)) corrupt(`snapshot format ${version}, expected ${[...SNAPSHOT_FORMATS_READ].join(' or ')}`);
  const state = yield* assembleInSlices(parts, requests, assignment);
  return { state, parts };
}

/** KeyspaceRecords collects decoded keyspace records by kind while the keyspace is read. */
interface KeyspaceRecords {
  readonly services: ServiceSettings[];
  readonly clusters: Array<{ readonly key: ServiceKey; readonly config: ClusterConfig }>;
  readonly instances: Array<{ readonly key: ServiceKey; readonly values: InstanceValues }>;
  readonly requests: RememberedRequest[];
  probeAssignment: ProbeAssignment | null;
  /**
   * The instance keys of a service come one after another (key order), so the service part of the last one parsed
   * is kept: a key that starts with instancePrefix is parsed from there on, with instanceService as its service.
   */
  instancePrefix: string;
  instanceService: ServiceKey | null;
}

function sameAddress(a: InstanceAddress, b: InstanceAddress): boolean {
  return a.cluster === b.cluster && a.ip === b.ip && a.port === b.port;
}

/** decodeRecord decodes a keyspace record, reporting a failure as CAIRN_STORAGE_CORRUPT naming its key. */
function decodeRecord<T>(storageKey: string, decode: (value: Uint8Array) => T, value: Uint8Array): T {
  try {
    return decode(value);
  } catch (error) {
    // The key is printed only here: guard's closure and message would cost every record of a start-up.
    return corruptBecause(JSON.stringify(storageKey), error);
  }
}

const decodeServiceRecord = (value: Uint8Array): ServiceSettings => settingsOf(decodeMessage('ServiceRecord', value));
const decodeClusterRecord = (value: Uint8Array): ClusterConfig => decodeClusterConfig(decodeMessage('ClusterRecord', value), 'name');
const decodeInstanceRecord = readInstanceRecord;
const decodeRequestRecord = (value: Uint8Array): RememberedRequest => decodeRemembered(decodeMessage('RememberedRequest', value));
const decodeProbeRecord = (value: Uint8Array): ProbeAssignment => decodeProbeAssignment(decodeMessage('ProbeAssignment', value));

// Every record is read once per start-up (a million instances: a million calls), so nothing here allocates for the
// error path: the key is printed only when a record does not fit.
function collectRecord(records: KeyspaceRecords, storageKey: string, value: Uint8Array): void {
  const service = records.instanceService;
  if (service !== null && storageKey.startsWith(records.instancePrefix)) {
    const address = parseInstanceKeyRest(storageKey, records.instancePrefix.length);
    if (address === null) return corrupt(`unknown key ${JSON.stringify(storageKey)}`);
    collectInstance(records, storageKey, service, address, value);
    return;
  }
  const parsed = parseStorageKey(storageKey);
  if (parsed === null) return corrupt(`unknown key ${JSON.stringify(storageKey)}`);
  switch (parsed.prefix) {
    case 'svc': {
      const settings = decodeRecord(storageKey, decodeServiceRecord, value);
      if (!sameServiceKey(settings.key, parsed.key)) corrupt(`key ${JSON.stringify(storageKey)} holds another service`);
      records.services.push(settings);
      return;
    }
    case 'cls': {
      const config = decodeRecord(storageKey, decodeClusterRecord, value);
      if (config.name !== parsed.cluster) corrupt(`key ${JSON.stringify(storageKey)} holds cluster ${config.name}`);
      records.clusters.push({ key: parsed.key, config });
      return;
    }
    case 'ins':
      records.instancePrefix = instanceKeyPrefix(parsed.key);
      records.instanceService = parsed.key;
      collectInstance(records, storageKey, parsed.key, parsed.address, value);
      return;
    case 'req': {
      const request = decodeRecord(storageKey, decodeRequestRecord, value);
      if (request.requestId !== parsed.requestId) corrupt(`key ${JSON.stringify(storageKey)} holds request ${request.requestId}`);
      records.requests.push(request);
      return;
    }
    case 'prb':
      records.probeAssignment = decodeRecord(storageKey, decodeProbeRecord, value);
      return;
  }
}

function collectInstance(records: KeyspaceRecords, storageKey: string, key: ServiceKey, address: InstanceAddress, value: Uint8Array): void {
  const values = decodeRecord(storageKey, decodeInstanceRecord, value);
  if (!sameAddress(values, address)) corrupt(`key ${JSON.stringify(storageKey)} holds another instance`);
  records.instances.push({ key, values });
}

function partsOf(records: KeyspaceRecords): ServiceParts[] {
  const byKey = new Map<string, ServiceParts>();
  for (const settings of records.services) byKey.set(serviceStorageKey(settings.key), { settings, clusters: [], instances: [] });
  const partOf = (key: ServiceKey, what: string): ServiceParts =>
    byKey.get(serviceStorageKey(key)) ?? corrupt(`${what} of missing service ${key.namespace}/${key.group}@@${key.service}`);
  for (const { key, config } of records.clusters) partOf(key, `cluster ${config.name}`).clusters.push(config);
  // The keyspace lists a service's instances together (key order), so the last service found is usually the one.
  let last: { key: ServiceKey; part: ServiceParts } | null = null;
  for (const { key, values } of records.instances) {
    if (last === null || (last.key !== key && !sameServiceKey(last.key, key))) last = { key, part: partOf(key, `instance ${values.ip}:${values.port}`) };
    last.part.instances.push(values);
  }
  return [...byKey.values()];
}

/** buildFromKeyspace reads the stored keyspace into a fresh RegistryState (CAIRN_STORAGE_CORRUPT if it does not fit). */
export async function buildFromKeyspace(entries: AsyncIterable<KeyspaceBatch>): Promise<RegistryState> {
  const records: KeyspaceRecords = {
    services: [], clusters: [], instances: [], requests: [], probeAssignment: null, instancePrefix: '', instanceService: null,
  };
  // Bounded by the keyspace, which the limits bound (services, instances, clusters, remembered requests).
  for await (const batch of entries) for (const [key, value] of batch) collectRecord(records, key, value);
  return assemble(partsOf(records), records.requests, records.probeAssignment);
}

/** writeState puts every record of a state into `batch` (after a restore, into a cleared keyspace). */
export function writeState(state: RegistryState, batch: ApplyBatch): void {
  drain(writeStateInSlices(state, batch));
}

/** writeStateInSlices is writeState, pausing every RESTORE_PIECE_ITEMS records. */
export function* writeStateInSlices(state: RegistryState, batch: ApplyBatch): Generator<void, void, void> {
  yield* writeRecordsInSlices(state, null, batch);
}

/**
 * writeImageInSlices is writeStateInSlices for a state decoded from an image: each instance is written as the bytes
 * its image held for it instead of being encoded again. Those bytes decoded to the instance just stored, so the
 * stored keyspace loads back to the same state; an image written by this version holds exactly the bytes encoding
 * would give (src/cp/snapshot-writer.ts). At 1M instances that is a million encodings, and ~450 MB of new buffers,
 * a follower no longer makes while it installs an image.
 */
export function* writeImageInSlices(image: DecodedImage, batch: ApplyBatch): Generator<void, void, void> {
  yield* writeRecordsInSlices(image.state, image.parts, batch);
}

function* writeRecordsInSlices(state: RegistryState, parts: readonly ImagePart[] | null, batch: ApplyBatch): Generator<void, void, void> {
  let done = 0;
  for (const namespace of state.sortedNamespaces()) {
    for (const service of state.sortedServices(namespace)) {
      const key = service.settings.key;
      batch.put(serviceStorageKey(key), encodeMessage('ServiceRecord', encodeServiceDefinition(state.definition(service), service.settings.declaredKind)));
      for (const cluster of state.sortedClusters(service)) batch.put(clusterStorageKey(key, cluster.name), encodeMessage('ClusterRecord', encodeClusterConfig(cluster)));
      if (parts !== null) continue;
      for (const instance of state.sortedInstances(service)) {
        batch.put(instanceStorageKey(key, instance), encodeMessage('InstanceRecord', encodeInstanceValues(instance)));
        if (++done % RESTORE_PIECE_ITEMS === 0) yield;
      }
    }
  }
  // Assembly put every part's instances into the state (or refused the image), so these are the state's instances.
  for (const part of parts ?? []) {
    for (let i = 0; i < part.instances.length; i++) {
      batch.put(instanceStorageKey(part.settings.key, part.instances[i] as InstanceValues), part.instanceBytes[i] as Uint8Array);
      if (++done % RESTORE_PIECE_ITEMS === 0) yield;
    }
  }
  for (const request of state.requests.values()) {
    batch.put(requestStorageKey(request.requestId), encodeMessage('RememberedRequest', encodeRemembered(request)));
    if (++done % RESTORE_PIECE_ITEMS === 0) yield;
  }
  if (state.probeAssignment !== null) batch.put(PROBE_ASSIGNMENT_STORAGE_KEY, encodeMessage('ProbeAssignment', encodeProbeAssignment(state.probeAssignment)));
}
