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

/** instancesField encodes the repeated `instances` field: for each instance, its key, its length and its bytes. */
function instancesField(instances: readonly InstanceMessage[]): Uint8Array {
  const known = instancesFields.get(instances);
  if (known !== undefined) return known;
  const { instance: type } = messageTypes();
  const writer = protobuf.Writer.create();
  let cacheable = Object.isFrozen(instances);
  for (const instance of instances) {
    cacheable &&= frozenMessage(instance);
    type.encode(type.fromObject(instance), writer.uint32(INSTANCES_KEY).fork()).ldelim();
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
