// list-encoding: the wire encoding of ListInstancesResponse without proto-loader's per-call object conversion.
//
// proto-loader serializes every response as Type.fromObject (a new message object per instance, per metadata map)
// then Type.encode; for a list of 100 instances that conversion and encoding were ~35% of a member's CPU per list
// (bench/README.md "Hot path work"). Here the repeated `instances` field (field 2) is encoded once per hosts array
// and kept while that array lives: the answers are memoized by the NamingService (src/naming/list-cache.ts), which
// hands out the same frozen hosts array while the service is unchanged. The service (field 1) is kept per frozen
// Service message the same way, and the three scalars are encoded per call. The bytes are exactly those
// proto-loader would produce (same fields, same order; test/api/grpc/list-encoding.test.ts compares them).
//
// Only frozen objects are cached (identity then implies equal content); anything else is encoded every time.
//
// The encoder is the protobufjs that @grpc/proto-loader itself uses (its own dependency, 7.x at the time of
// writing), not the project's: protobufjs 8 leaves proto3 fields with default values (`ephemeral: false`,
// `reach_protection_threshold: false`) off the wire where 7 writes them, and a client loading with `defaults: false`
// would see those fields absent. Same library, same bytes.

import { createRequire } from 'node:module';
import path from 'node:path';
import type protobufTypes from 'protobufjs';
import { grpcProtoRoot } from './proto.ts';

const requireFromLoader = createRequire(createRequire(import.meta.url).resolve('@grpc/proto-loader'));
const protobuf = requireFromLoader('protobufjs') as typeof protobufTypes;
import type { InstanceMessage, ServiceMessage } from './messages.ts';

/** ListInstancesResponseMessage is ListInstancesResponse in the loader's camelCase form. */
export interface ListInstancesResponseMessage {
  readonly service?: ServiceMessage;
  readonly instances: readonly InstanceMessage[];
  readonly reachProtectionThreshold: boolean;
  readonly checksum: string;
  readonly revision: number;
}

interface Types {
  readonly instance: protobufTypes.Type;
  readonly service: protobufTypes.Type;
  readonly response: protobufTypes.Type;
}

let namingRoot: protobufTypes.Root | null = null;

/** loaderNamingType returns a naming.proto message type (camelCase field names) from the loader's own protobufjs. */
export function loaderNamingType(fullName: string): protobufTypes.Type {
  if (namingRoot === null) {
    const root = new protobuf.Root();
    root.resolvePath = (_origin, target) => (path.isAbsolute(target) ? target : path.join(grpcProtoRoot, target));
    root.loadSync('cairn/naming/v1/naming.proto', { keepCase: false });
    root.resolveAll();
    namingRoot = root;
  }
  return namingRoot.lookupType(fullName);
}

let types: Types | null = null;

function messageTypes(): Types {
  types ??= {
    instance: loaderNamingType('cairn.naming.v1.Instance'),
    service: loaderNamingType('cairn.naming.v1.Service'),
    response: loaderNamingType('cairn.naming.v1.ListInstancesResponse'),
  };
  return types;
}

/** Field keys (field number << 3 | wire type 2) of ListInstancesResponse's message fields. */
const SERVICE_KEY = (1 << 3) | 2;
const INSTANCES_KEY = (2 << 3) | 2;

// Encoded field 2 (every instance, with its key and length) per frozen instances array, and field 1 per frozen
// service message. Weak: an entry lives as long as the array or message does (the list cache bounds those).
const instancesFields = new WeakMap<readonly InstanceMessage[], Uint8Array>();
const serviceFields = new WeakMap<ServiceMessage, Uint8Array>();

function frozenMessage(message: { readonly metadata: object }): boolean {
  return Object.isFrozen(message) && Object.isFrozen(message.metadata);
}

/**
 * writeInstance writes an Instance's fields as proto-loader's serializer does (protobufjs 7's fromObject, then its
 * generated encode), without the intermediate message object: each field present (not null or undefined) in field
 * order, converted as fromObject converts it (String, >>> 0, Number, Boolean; a uint64 from a number), default
 * values included; the metadata map entry by entry in Object.keys order, key then value. naming.proto's Instance:
 * ip 1, port 2, cluster 3, weight 4 (double), enabled 5, healthy 6, ephemeral 7, metadata 8, instance_id 9, version
 * 10 (uint64). test/api/grpc/list-encoding.test.ts compares the bytes with the serializer's on random instances.
 */
export function writeInstance(writer: protobufTypes.Writer, instance: InstanceMessage): protobufTypes.Writer {
  const m = instance as unknown as Readonly<Record<string, unknown>>;
  if (m['ip'] != null) writer.uint32((1 << 3) | 2).string(String(m['ip']));
  if (m['port'] != null) writer.uint32(2 << 3).uint32((m['port'] as number) >>> 0);
  if (m['cluster'] != null) writer.uint32((3 << 3) | 2).string(String(m['cluster']));
  if (m['weight'] != null) writer.uint32((4 << 3) | 1).double(Number(m['weight']));
  if (m['enabled'] != null) writer.uint32(5 << 3).bool(Boolean(m['enabled']));
  if (m['healthy'] != null) writer.uint32(6 << 3).bool(Boolean(m['healthy']));
  if (m['ephemeral'] != null) writer.uint32(7 << 3).bool(Boolean(m['ephemeral']));
  const metadata = m['metadata'];
  if (metadata) {
    if (typeof metadata !== 'object') throw new TypeError('.cairn.naming.v1.Instance.metadata: object expected');
    const entries = metadata as Readonly<Record<string, unknown>>;
    for (const key of Object.keys(entries)) {
      writer.uint32((8 << 3) | 2).fork().uint32((1 << 3) | 2).string(key).uint32((2 << 3) | 2).string(String(entries[key])).ldelim();
    }
  }
  if (m['instanceId'] != null) writer.uint32((9 << 3) | 2).string(String(m['instanceId']));
  if (m['version'] != null) writer.uint32(10 << 3).uint64(m['version'] as number);
  return writer;
}

/** instancesField encodes the repeated `instances` field: for each instance, its key, its length and its bytes. */
function instancesField(instances: readonly InstanceMessage[]): Uint8Array {
  const known = instancesFields.get(instances);
  if (known !== undefined) return known;
  const writer = protobuf.Writer.create();
  let cacheable = Object.isFrozen(instances);
  for (const instance of instances) {
    cacheable &&= frozenMessage(instance);
    writeInstance(writer.uint32(INSTANCES_KEY).fork(), instance).ldelim();
  }
  const bytes = writer.finish();
  if (cacheable) instancesFields.set(instances, bytes);
  return bytes;
}

/** serviceField encodes the `service` field: its key, its length and the Service message. */
function serviceField(service: ServiceMessage): Uint8Array {
  const known = serviceFields.get(service);
  if (known !== undefined) return known;
  const { service: type } = messageTypes();
  const bytes = type.encode(type.fromObject(service), protobuf.Writer.create().uint32(SERVICE_KEY).fork()).ldelim().finish();
  if (frozenMessage(service) && Object.isFrozen(service.selector)) serviceFields.set(service, bytes);
  return bytes;
}

// The last whole response encoded per frozen instances array: a memoized list answered again (same hosts, service
// message and scalars) is sent without re-assembling (copying) its bytes.
const responses = new WeakMap<readonly InstanceMessage[], { readonly response: ListInstancesResponseMessage; readonly bytes: Buffer }>();

function sameResponse(a: ListInstancesResponseMessage, b: ListInstancesResponseMessage): boolean {
  return a.service === b.service && a.instances === b.instances && a.reachProtectionThreshold === b.reachProtectionThreshold &&
    a.checksum === b.checksum && a.revision === b.revision;
}

/** encodeListInstancesResponse encodes a ListInstancesResponse (the ListInstances method's responseSerialize). */
export function encodeListInstancesResponse(response: ListInstancesResponseMessage): Buffer {
  const last = responses.get(response.instances);
  if (last !== undefined && sameResponse(last.response, response)) return last.bytes;
  const bytes = assemble(response);
  if (instancesFields.has(response.instances) && (response.service === undefined || serviceFields.has(response.service))) {
    responses.set(response.instances, { response: { ...response }, bytes });
  }
  return bytes;
}

function assemble(response: ListInstancesResponseMessage): Buffer {
  const { response: type } = messageTypes();
  // The scalars (fields 3-5) through protobufjs as proto-loader would: fromObject keeps only the fields present.
  const scalars = type.encode(type.fromObject({
    reachProtectionThreshold: response.reachProtectionThreshold,
    checksum: response.checksum,
    revision: response.revision,
  })).finish();
  const parts = response.service === undefined
    ? [instancesField(response.instances), scalars]
    : [serviceField(response.service), instancesField(response.instances), scalars];
  return Buffer.concat(parts);
}

/**
 * instanceResponseSerializer returns the serializer of a response whose field 1 is an Instance and whose other fields
 * come after it (RegisterInstanceResponse, UpdateInstanceResponse, GetInstanceResponse): the instance is written by
 * writeInstance, the other fields by `rest` (proto-loader's serializer of the same message, given the response
 * without its instance) and appended, which is the order protobufjs writes them in. Same bytes as `rest` on the
 * whole response (tested); null when the message does not have that shape (then proto-loader serializes it).
 */
export function instanceResponseSerializer(fullName: string, rest: (value: object) => Buffer): ((value: object) => Buffer) | null {
  const type = loaderNamingType(fullName);
  const fields = [...type.fieldsArray].sort((a, b) => a.id - b.id);
  const first = fields[0];
  if (first === undefined || first.id !== 1 || first.repeated) return null;
  first.resolve();
  if (first.resolvedType?.fullName !== '.cairn.naming.v1.Instance') return null;
  for (const field of fields.slice(1)) {
    field.resolve();
    if (field.resolvedType?.fullName === '.cairn.naming.v1.Instance') return null;
  }
  const name = first.name;
  return (value: object): Buffer => {
    const response = value as Readonly<Record<string, unknown>>;
    const instance = response[name];
    const others: Record<string, unknown> = {};
    for (const key of Object.keys(response)) if (key !== name) others[key] = response[key];
    const tail = rest(others);
    if (instance == null) return tail;
    if (typeof instance !== 'object') throw new TypeError(`${fullName}.${name}: object expected`);
    const head = writeInstance(protobuf.Writer.create().uint32((1 << 3) | 2).fork(), instance as InstanceMessage).ldelim().finish();
    return tail.length === 0 ? Buffer.from(head.buffer, head.byteOffset, head.length) : Buffer.concat([head, tail]);
  };
}
