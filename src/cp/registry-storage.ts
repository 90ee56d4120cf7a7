// registry-storage: the persistent registry's state to and from bytes: the snapshot (RegistrySnapshot, sorted so
// that equal states give equal bytes) and the LevelDB keyspace (keyspace.ts). Both rebuild a RegistryState with
// the same validation as commands; anything that does not fit (an undecodable record, a key that does not match
// its record, an instance without its service, a repeated key) is CAIRN_STORAGE_CORRUPT: never served.

import type { ApplyBatch } from '../replica/state-machine.ts';
import { concatBytes } from '../replica/codec.ts';
import { CairnError } from '../errors.ts';
import { validateRequestId } from '../naming/validation.ts';
import { sameServiceKey, type ClusterConfig, type Instance, type ServiceKey } from '../naming/model.ts';
import {
  decodeClusterConfig,
  decodeInstanceValues,
  decodeMessage,
  decodeServiceDefinition,
  encodeClusterConfig,
  encodeInstanceValues,
  encodeMessage,
  encodeServiceDefinition,
  readList,
  readMessage,
  readNumber,
  readSafeInteger,
  readString,
  toInstance,
  type InstanceAddress,
  type InstanceValues,
  type Plain,
} from './commands.ts';
import { clusterStorageKey, instanceStorageKey, parseStorageKey, PROBE_ASSIGNMENT_STORAGE_KEY, requestStorageKey, serviceStorageKey } from './keyspace.ts';
import { PROBE_MEMBERS_MAX, type ProbeAssignment } from './probe-assignment.ts';
import { addressKey, RegistryState, type RememberedRequest, type ServiceSettings } from './registry-state.ts';

/** SNAPSHOT_FORMAT_VERSION is written in every snapshot; a snapshot of another version is refused. */
export const SNAPSHOT_FORMAT_VERSION = 1;

const SHA256_BYTES = 32;

function corrupt(detail: string, cause?: unknown): never {
  throw new CairnError('CAIRN_STORAGE_CORRUPT', `registry: ${detail}`, cause === undefined ? {} : { cause });
}

/** guard runs a decoding step and reports any failure as CAIRN_STORAGE_CORRUPT naming `what`. */
function guard<T>(what: string, step: () => T): T {
  try {
    return step();
  } catch (error) {
    if (error instanceof CairnError && error.code === 'CAIRN_STORAGE_CORRUPT') throw error;
    return corrupt(`${what}: ${error instanceof Error ? error.message : String(error)}`, error);
  }
}

function encodeRemembered(request: RememberedRequest): Plain {
  return { requestId: request.requestId, index: request.index, digest: request.digest, result: request.result };
}

function readBytes(plain: Plain, name: string): Uint8Array {
  const value = plain[name] ?? new Uint8Array();
  if (!(value instanceof Uint8Array)) return corrupt(`${name} is not bytes`);
  return new Uint8Array(value);
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
  const digest = readBytes(plain, 'digest');
  if (digest.length !== SHA256_BYTES) corrupt('remembered request digest is not SHA-256');
  const index = readSafeInteger(plain, 'index');
  if (index < 1) corrupt('remembered request index below 1');
  return { requestId: validateRequestId(readString(plain, 'requestId')), index, digest, result: readBytes(plain, 'result') };
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

function* generatePieces(services: readonly CapturedService[], requests: readonly RememberedRequest[], probeAssignment: ProbeAssignment | null): Generator<Uint8Array, void, void> {
  yield encodeMessage('RegistrySnapshot', { formatVersion: SNAPSHOT_FORMAT_VERSION });
  for (const service of services) {
    // A ServiceSnapshot is field 2 of the RegistrySnapshot: its tag and length, then its own fields in pieces.
    const body: Uint8Array[] = [encodeMessage('ServiceSnapshot', service.plain)];
    for (let i = 0; i < service.instances.length; i += SNAPSHOT_PIECE_ITEMS) {
      body.push(encodeMessage('ServiceSnapshot', { instances: service.instances.slice(i, i + SNAPSHOT_PIECE_ITEMS).map(encodeInstanceValues) }));
      // An empty piece: a point where the driver may pause inside a large service.
      yield new Uint8Array(0);
    }
    let length = 0;
    for (const piece of body) length += piece.length;
    yield fieldHeader(2, length);
    yield* body;
  }
  for (let i = 0; i < requests.length; i += SNAPSHOT_PIECE_ITEMS) {
    yield encodeMessage('RegistrySnapshot', { requests: requests.slice(i, i + SNAPSHOT_PIECE_ITEMS).map(encodeRemembered) });
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

function settingsOf(plain: Plain): ServiceSettings {
  const { definition, declaredKind } = decodeServiceDefinition(plain);
  const key = { namespace: definition.namespace, group: definition.group, service: definition.name };
  const { protectThreshold, metadata, selector, revision } = definition;
  return { key, protectThreshold, metadata, selector, declaredKind, revision };
}

/** assemble builds a RegistryState from decoded parts, checking the invariants the state relies on. */
function assemble(parts: readonly ServiceParts[], requests: readonly RememberedRequest[], probeAssignment: ProbeAssignment | null): RegistryState {
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
    }
  }
  const sorted = [...requests].sort((a, b) => a.index - b.index);
  for (const request of sorted) {
    if (state.requests.has(request.requestId)) corrupt(`request id ${request.requestId} appears twice`);
    state.remember(request);
  }
  return state;
}

/** buildFromSnapshot decodes a RegistrySnapshot into a fresh RegistryState (CAIRN_STORAGE_CORRUPT if it is not one). */
export function buildFromSnapshot(data: Uint8Array): RegistryState {
  const plain = guard('snapshot', () => decodeMessage('RegistrySnapshot', data));
  const version = guard('snapshot version', () => readNumber(plain, 'formatVersion'));
  if (version !== SNAPSHOT_FORMAT_VERSION) corrupt(`snapshot format ${version}, expected ${SNAPSHOT_FORMAT_VERSION}`);
  const parts = guard('snapshot services', () => readList(plain, 'services').map((item): ServiceParts => ({
    settings: settingsOf(readMessage(item, 'service') ?? corrupt('service record missing')),
    clusters: readList(item, 'clusters').map((cluster) => decodeClusterConfig(cluster, 'name')),
    instances: readList(item, 'instances').map((instance) => decodeInstanceValues(instance, true)),
  })));
  const requests = guard('snapshot requests', () => readList(plain, 'requests').map(decodeRemembered));
  const assignment = guard('snapshot probe assignment', () => readMessage(plain, 'probeAssignment'));
  return assemble(parts, requests, assignment === null ? null : guard('snapshot probe assignment', () => decodeProbeAssignment(assignment)));
}

/** KeyspaceRecords collects decoded keyspace records by kind while the keyspace is read. */
interface KeyspaceRecords {
  readonly services: ServiceSettings[];
  readonly clusters: Array<{ readonly key: ServiceKey; readonly config: ClusterConfig }>;
  readonly instances: Array<{ readonly key: ServiceKey; readonly values: InstanceValues }>;
  readonly requests: RememberedRequest[];
  probeAssignment: ProbeAssignment | null;
}

function sameAddress(a: InstanceAddress, b: InstanceAddress): boolean {
  return a.cluster === b.cluster && a.ip === b.ip && a.port === b.port;
}

function collectRecord(records: KeyspaceRecords, storageKey: string, value: Uint8Array): void {
  const parsed = parseStorageKey(storageKey);
  const printable = JSON.stringify(storageKey);
  if (parsed === null) return corrupt(`unknown key ${printable}`);
  switch (parsed.prefix) {
    case 'svc': {
      const settings = guard(printable, () => settingsOf(decodeMessage('ServiceRecord', value)));
      if (!sameServiceKey(settings.key, parsed.key)) corrupt(`key ${printable} holds another service`);
      records.services.push(settings);
      return;
    }
    case 'cls': {
      const config = guard(printable, () => decodeClusterConfig(decodeMessage('ClusterRecord', value), 'name'));
      if (config.name !== parsed.cluster) corrupt(`key ${printable} holds cluster ${config.name}`);
      records.clusters.push({ key: parsed.key, config });
      return;
    }
    case 'ins': {
      const values = guard(printable, () => decodeInstanceValues(decodeMessage('InstanceRecord', value), true));
      if (!sameAddress(values, parsed.address)) corrupt(`key ${printable} holds another instance`);
      records.instances.push({ key: parsed.key, values });
      return;
    }
    case 'req': {
      const request = guard(printable, () => decodeRemembered(decodeMessage('RememberedRequest', value)));
      if (request.requestId !== parsed.requestId) corrupt(`key ${printable} holds request ${request.requestId}`);
      records.requests.push(request);
      return;
    }
    case 'prb':
      records.probeAssignment = guard(printable, () => decodeProbeAssignment(decodeMessage('ProbeAssignment', value)));
      return;
  }
}

function partsOf(records: KeyspaceRecords): ServiceParts[] {
  const byKey = new Map<string, ServiceParts>();
  for (const settings of records.services) byKey.set(serviceStorageKey(settings.key), { settings, clusters: [], instances: [] });
  const partOf = (key: ServiceKey, what: string): ServiceParts =>
    byKey.get(serviceStorageKey(key)) ?? corrupt(`${what} of missing service ${key.namespace}/${key.group}@@${key.service}`);
  for (const { key, config } of records.clusters) partOf(key, `cluster ${config.name}`).clusters.push(config);
  for (const { key, values } of records.instances) partOf(key, `instance ${values.ip}:${values.port}`).instances.push(values);
  return [...byKey.values()];
}

/** buildFromKeyspace reads the stored keyspace into a fresh RegistryState (CAIRN_STORAGE_CORRUPT if it does not fit). */
export async function buildFromKeyspace(entries: AsyncIterable<readonly [string, Uint8Array]>): Promise<RegistryState> {
  const records: KeyspaceRecords = { services: [], clusters: [], instances: [], requests: [], probeAssignment: null };
  // Bounded by the keyspace, which the limits bound (services, instances, clusters, remembered requests).
  for await (const [key, value] of entries) collectRecord(records, key, value);
  return assemble(partsOf(records), records.requests, records.probeAssignment);
}

/** writeState puts every record of a state into `batch` (after a restore, into a cleared keyspace). */
export function writeState(state: RegistryState, batch: ApplyBatch): void {
  for (const namespace of state.sortedNamespaces()) {
    for (const service of state.sortedServices(namespace)) {
      const key = service.settings.key;
      batch.put(serviceStorageKey(key), encodeMessage('ServiceRecord', encodeServiceDefinition(state.definition(service), service.settings.declaredKind)));
      for (const cluster of state.sortedClusters(service)) batch.put(clusterStorageKey(key, cluster.name), encodeMessage('ClusterRecord', encodeClusterConfig(cluster)));
      for (const instance of state.sortedInstances(service)) batch.put(instanceStorageKey(key, instance), encodeMessage('InstanceRecord', encodeInstanceValues(instance)));
    }
  }
  for (const request of state.requests.values()) batch.put(requestStorageKey(request.requestId), encodeMessage('RememberedRequest', encodeRemembered(request)));
  if (state.probeAssignment !== null) batch.put(PROBE_ASSIGNMENT_STORAGE_KEY, encodeMessage('ProbeAssignment', encodeProbeAssignment(state.probeAssignment)));
}
