// wire-check: checks that a request's bytes are a well-formed protobuf message of its method's type before the
// loader's decoder reads them (server.ts, decodingTolerant).
//
// Why: protobufjs's decoder is lenient where a client's fault must be refused. Given a Node Buffer (what grpc-js
// hands over) it reads a string whose declared length runs past the end of the message as whatever bytes are left
// (BufferReader.string clamps instead of failing), it reads any bytes of a string field as UTF-8 (replacing what is
// not with U+FFFD), and it reads a known field whatever its wire type. So a truncated RegisterInstance or
// DeregisterInstance could be served as another, shorter request (a service name cut short, a namespace read from
// a broken tail), and a name in invalid UTF-8 could be stored as a different name. docs/grpc.md: "A request that is
// not a valid protobuf message of its method's type is INVALID_ARGUMENT"; proto3 requires a string field to hold
// UTF-8 (protobuf's language guide, "Scalar Value Types").
//
// The walk reads with protobufjs's plain Reader (which checks every length against the end of the buffer), follows
// the message type's declared fields (unknown fields are skipped, as proto3 says), checks each known field's wire
// type (a repeated scalar may also come packed), every string's UTF-8, and every nested message and map entry within
// its own length. Nesting is bounded by the schema: it only descends into declared message fields.

import { isUtf8 } from 'node:buffer';
import path from 'node:path';
import protobuf from 'protobufjs';
import { grpcProtoRoot, namingProtoFiles } from './proto.ts';

/** Slot is what a position of the wire format holds: a field, or the key or value of a map entry. */
interface Slot {
  readonly name: string;
  readonly type: string;
  readonly message: protobuf.Type | null;
  readonly repeated: boolean;
}

const fixed64Types = new Set(['double', 'fixed64', 'sfixed64']);
const fixed32Types = new Set(['float', 'fixed32', 'sfixed32']);
const wireLengthDelimited = 2;

function wireTypeOf(slot: Slot): number {
  if (slot.message !== null || slot.type === 'string' || slot.type === 'bytes') return wireLengthDelimited;
  if (fixed64Types.has(slot.type)) return 1;
  if (fixed32Types.has(slot.type)) return 5;
  return 0;
}

// Slots by field, built once: resolving a field and allocating its slot on every request doubled the check's cost.
const slots = new WeakMap<protobuf.FieldBase, Slot>();

function slotOf(field: protobuf.FieldBase): Slot {
  let slot = slots.get(field);
  if (slot === undefined) {
    const resolved = field.resolve().resolvedType;
    slot = { name: field.name, type: field.type, message: resolved instanceof protobuf.Type ? resolved : null, repeated: field.repeated };
    slots.set(field, slot);
  }
  return slot;
}

function checkSlot(slot: Slot, wire: number, reader: protobuf.Reader, where: string): void {
  const expected = wireTypeOf(slot);
  const packed = slot.repeated && expected !== wireLengthDelimited && wire === wireLengthDelimited;
  if (wire !== expected && !packed) throw new Error(`${where} has wire type ${wire}, expected ${expected}`);
  if (wire !== wireLengthDelimited || (slot.type !== 'string' && slot.message === null)) {
    reader.skipType(wire);
    return;
  }
  const length = reader.uint32();
  const start = reader.pos;
  if (length > reader.len - start) throw new Error(`${where} declares ${length} bytes but ${reader.len - start} are left`);
  const message = slot.message;
  if (message !== null) checkFields(start + length, reader, where, (id) => message.fieldsById[id]);
  else if (!isUtf8(reader.buf.subarray(start, start + length))) throw new Error(`${where} is not valid UTF-8`);
  reader.pos = start + length;
}

/** checkFields walks the fields up to `end`, looking each one up with `fieldOf` (undefined: unknown, skipped). */
function checkFields(end: number, reader: protobuf.Reader, where: string, fieldOf: (id: number) => protobuf.FieldBase | undefined): void {
  while (reader.pos < end) {
    const key = reader.uint32();
    const id = key >>> 3;
    const wire = key & 7;
    if (id === 0) throw new Error(`${where} holds a field numbered 0`);
    const field = fieldOf(id);
    if (field === undefined) reader.skipType(wire);
    else if (field instanceof protobuf.MapField) checkMapEntry(field, wire, reader, `${where}.${field.name}`);
    else checkSlot(slotOf(field), wire, reader, `${where}.${field.name}`);
    if (reader.pos > end) throw new Error(`a field of ${where} runs past the end of its message`);
  }
}

function checkMapEntry(field: protobuf.MapField, wire: number, reader: protobuf.Reader, where: string): void {
  if (wire !== wireLengthDelimited) throw new Error(`${where} has wire type ${wire}, expected ${wireLengthDelimited}`);
  const length = reader.uint32();
  const start = reader.pos;
  if (length > reader.len - start) throw new Error(`${where} declares ${length} bytes but ${reader.len - start} are left`);
  const value = slotOf(field);
  const key: Slot = { name: 'key', type: field.keyType, message: null, repeated: false };
  const end = start + length;
  while (reader.pos < end) {
    const tag = reader.uint32();
    const id = tag >>> 3;
    if (id === 1) checkSlot(key, tag & 7, reader, `${where} key`);
    else if (id === 2) checkSlot(value, tag & 7, reader, `${where} value`);
    else if (id === 0) throw new Error(`${where} holds a field numbered 0`);
    else reader.skipType(tag & 7);
    if (reader.pos > end) throw new Error(`a field of ${where} runs past the end of its entry`);
  }
}

/**
 * wireProblem returns why `bytes` are not a well-formed message of `type` (null: they are): a length past the end, a
 * known field with the wrong wire type, a string that is not UTF-8, a field numbered 0, a broken varint.
 */
export function wireProblem(type: protobuf.Type, bytes: Uint8Array): string | null {
  // A plain Uint8Array view, so protobufjs picks its bounds-checking Reader rather than the lenient BufferReader.
  const reader = protobuf.Reader.create(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  try {
    checkFields(bytes.length, reader, type.name, (id) => type.fieldsById[id]);
    return null;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

let clientApiRoot: protobuf.Root | null = null;

/** requestTypeOf returns the request message type of a client API method, e.g. ('cairn.naming.v1.Naming', 'ListInstances'). */
export function requestTypeOf(service: string, method: string): protobuf.Type | null {
  if (clientApiRoot === null) {
    const root = new protobuf.Root();
    root.resolvePath = (_origin, target) => (path.isAbsolute(target) ? target : path.join(grpcProtoRoot, target));
    root.loadSync([...namingProtoFiles], { keepCase: false });
    root.resolveAll();
    clientApiRoot = root;
  }
  const found = clientApiRoot.lookup(service);
  if (!(found instanceof protobuf.Service)) return null;
  return found.methods[method]?.resolvedRequestType ?? null;
}
