// instance-decoding: the client's decoder of the responses that carry instances (ListInstancesResponse,
// RegisterInstanceResponse), written against naming.proto's wire format instead of proto-loader's generic
// decode-then-toObject, which built every instance twice (the message, then the plain copy) and was ~270 µs of
// client CPU for a list of 100 (bench/README.md, "What bounds each missed target").
//
// Contract: the objects are exactly those proto-loader's responseDeserialize returns with the loader options of
// proto.ts (camelCase names; absent fields absent; proto3 `optional` fields with their synthetic oneof name beside
// them, `_weight: 'weight'`; empty maps and repeated fields absent; 64-bit integers as numbers; strings decoded as
// node's Buffer decodes UTF-8), with the keys in field-number order. test/api/grpc/instance-decoding.test.ts
// compares both decoders on seeded random messages, unknown fields, repeated fields and odd field orders. Only
// Instance is decoded here; every other field of a response (the Service, the scalars) is handed to proto-loader's
// own decoder, so nothing else has to be kept in step with the proto by hand.
//
// Malformed bytes throw, as protobufjs does: a truncated varint or length, a length past the end, a wire type the
// field cannot have, or a group (wire types 3 and 4, unused by proto3).

import { loaderNamingType } from './list-encoding.ts';

/** Decoder is a response deserializer: bytes to the plain object proto-loader would give. */
export type Decoder = (bytes: Buffer) => Record<string, unknown>;

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_BYTES = 2;
const WIRE_FIXED32 = 5;

/** Utf8Slicing is node's Buffer#utf8Slice (untyped in @types/node): the UTF-8 text of a range, U+FFFD for bad bytes. */
interface Utf8Slicing {
  utf8Slice(start: number, end: number): string;
}

// Short strings repeat across the instances of a list (metadata keys, clusters, most label values): a direct-mapped
// table of the last string seen per hash slot answers them without creating a new string each time. Bounded:
// internedSlots entries of at most internedBytesMax bytes each. A hit compares the bytes, so it is never wrong.
const internedBytesMax = 24;
const internedSlots = 2048;
const internedBytes: Array<Uint8Array | undefined> = new Array<Uint8Array | undefined>(internedSlots);
const internedText: Array<string | undefined> = new Array<string | undefined>(internedSlots);

function interned(buf: Buffer, start: number, length: number): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < length; i++) hash = Math.imul(hash ^ (buf[start + i] as number), 0x01000193);
  const slot = (hash >>> 0) % internedSlots;
  const known = internedBytes[slot];
  if (known !== undefined && known.length === length) {
    let same = true;
    for (let i = 0; i < length && same; i++) same = known[i] === buf[start + i];
    if (same) return internedText[slot] as string;
  }
  const text = (buf as unknown as Utf8Slicing).utf8Slice(start, start + length);
  internedBytes[slot] = Uint8Array.prototype.slice.call(buf, start, start + length);
  internedText[slot] = text;
  return text;
}

class Cursor {
  pos: number;
  constructor(readonly buf: Buffer, start: number, public end: number) {
    this.pos = start;
  }

  /** varint32 reads a varint and keeps its low 32 bits (unsigned), as protobufjs's uint32() does. */
  varint32(): number {
    let value = 0;
    for (let shift = 0; shift < 70; shift += 7) {
      if (this.pos >= this.end) throw new RangeError('instance decoding: truncated varint');
      const byte = this.buf[this.pos++] as number;
      if (shift < 32) value |= (byte & 0x7f) << shift;
      if (byte < 0x80) return value >>> 0;
    }
    throw new RangeError('instance decoding: varint longer than 10 bytes');
  }

  /** varint64 reads an unsigned 64-bit varint as a number (protobufjs's LongBits.toNumber(true)). */
  varint64(): number {
    let lo = 0;
    let hi = 0;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new RangeError('instance decoding: truncated varint');
      const byte = this.buf[this.pos++] as number;
      const bits = byte & 0x7f;
      if (i < 4) lo |= bits << (7 * i);
      else if (i === 4) {
        lo |= (bits & 0x0f) << 28;
        hi |= bits >>> 4;
      } else hi |= bits << (7 * i - 32);
      if (byte < 0x80) return (hi >>> 0) * 4294967296 + (lo >>> 0);
    }
    throw new RangeError('instance decoding: varint longer than 10 bytes');
  }

  /** length reads a length prefix and checks that many bytes remain. */
  length(): number {
    const length = this.varint32();
    if (length > this.end - this.pos) throw new RangeError('instance decoding: length beyond the end of the message');
    return length;
  }

  string(): string {
    const length = this.length();
    const start = this.pos;
    this.pos += length;
    if (length <= internedBytesMax) return interned(this.buf, start, length);
    // Buffer's own utf8Slice, as protobufjs's BufferReader uses it: toString's argument handling doubled the cost.
    return (this.buf as unknown as Utf8Slicing).utf8Slice(start, this.pos);
  }

  double(): number {
    if (this.end - this.pos < 8) throw new RangeError('instance decoding: truncated double');
    const value = this.buf.readDoubleLE(this.pos);
    this.pos += 8;
    return value;
  }

  skip(wireType: number): void {
    switch (wireType) {
      case WIRE_VARINT:
        this.varint64();
        return;
      case WIRE_FIXED64:
        if (this.end - this.pos < 8) throw new RangeError('instance decoding: truncated fixed64');
        this.pos += 8;
        return;
      case WIRE_BYTES: {
        const length = this.length();
        this.pos += length;
        return;
      }
      case WIRE_FIXED32:
        if (this.end - this.pos < 4) throw new RangeError('instance decoding: truncated fixed32');
        this.pos += 4;
        return;
      default:
        throw new RangeError(`instance decoding: invalid wire type ${wireType}`);
    }
  }
}

function expectWire(actual: number, expected: number, field: string): void {
  if (actual !== expected) throw new RangeError(`instance decoding: ${field} has wire type ${actual}, not ${expected}`);
}

/** metadataEntry reads one map<string, string> entry (key = 1, value = 2) into `map`. */
function metadataEntry(cursor: Cursor, map: Record<string, string>): void {
  const length = cursor.length();
  const end = cursor.pos + length;
  const outer = cursor.end;
  // The entry is read by the same cursor, bounded to the entry's end for the while.
  cursor.end = end;
  let key = '';
  let value = '';
  while (cursor.pos < end) {
    const tag = cursor.varint32();
    const field = tag >>> 3;
    if (field === 1) {
      expectWire(tag & 7, WIRE_BYTES, 'metadata key');
      key = cursor.string();
    } else if (field === 2) {
      expectWire(tag & 7, WIRE_BYTES, 'metadata value');
      value = cursor.string();
    } else cursor.skip(tag & 7);
  }
  cursor.end = outer;
  // An own property even for '__proto__', as protobufjs's map decoding makes it.
  if (key === '__proto__') Object.defineProperty(map, key, { value, enumerable: true, writable: true, configurable: true });
  else map[key] = value;
}

/** decodeInstance reads the Instance message between cursor.pos and `end`. */
function decodeInstance(buf: Buffer, start: number, end: number): Record<string, unknown> {
  const cursor = new Cursor(buf, start, end);
  let ip: string | undefined;
  let port: number | undefined;
  let cluster: string | undefined;
  let weight: number | undefined;
  let enabled: boolean | undefined;
  let healthy: boolean | undefined;
  let ephemeral: boolean | undefined;
  let metadata: Record<string, string> | undefined;
  let instanceId: string | undefined;
  let version: number | undefined;
  while (cursor.pos < end) {
    const tag = cursor.varint32();
    const wire = tag & 7;
    switch (tag >>> 3) {
      case 1: expectWire(wire, WIRE_BYTES, 'ip'); ip = cursor.string(); break;
      case 2: expectWire(wire, WIRE_VARINT, 'port'); port = cursor.varint32(); break;
      case 3: expectWire(wire, WIRE_BYTES, 'cluster'); cluster = cursor.string(); break;
      case 4: expectWire(wire, WIRE_FIXED64, 'weight'); weight = cursor.double(); break;
      case 5: expectWire(wire, WIRE_VARINT, 'enabled'); enabled = cursor.varint64() !== 0; break;
      case 6: expectWire(wire, WIRE_VARINT, 'healthy'); healthy = cursor.varint64() !== 0; break;
      case 7: expectWire(wire, WIRE_VARINT, 'ephemeral'); ephemeral = cursor.varint64() !== 0; break;
      case 8:
        expectWire(wire, WIRE_BYTES, 'metadata');
        metadata ??= {};
        metadataEntry(cursor, metadata);
        break;
      case 9: expectWire(wire, WIRE_BYTES, 'instanceId'); instanceId = cursor.string(); break;
      case 10: expectWire(wire, WIRE_VARINT, 'version'); version = cursor.varint64(); break;
      default: cursor.skip(wire);
    }
  }
  // Field-number order, as proto-loader's toObject assigns them.
  const instance: Record<string, unknown> = {};
  if (ip !== undefined) instance['ip'] = ip;
  if (port !== undefined) instance['port'] = port;
  if (cluster !== undefined) instance['cluster'] = cluster;
  if (weight !== undefined) {
    instance['weight'] = weight;
    instance['_weight'] = 'weight';
  }
  if (enabled !== undefined) {
    instance['enabled'] = enabled;
    instance['_enabled'] = 'enabled';
  }
  if (healthy !== undefined) {
    instance['healthy'] = healthy;
    instance['_healthy'] = 'healthy';
  }
  if (ephemeral !== undefined) instance['ephemeral'] = ephemeral;
  if (metadata !== undefined && Object.keys(metadata).length > 0) instance['metadata'] = metadata;
  if (instanceId !== undefined) instance['instanceId'] = instanceId;
  if (version !== undefined) instance['version'] = version;
  return instance;
}

/** FieldLayout names, in field-number order, a response's fields; `instanceFields` are those holding an Instance. */
export interface FieldLayout {
  readonly order: readonly { readonly number: number; readonly name: string }[];
  readonly instanceFields: ReadonlyMap<number, { readonly name: string; readonly repeated: boolean }>;
}

/** layoutOf reads a naming.proto response's field layout from the proto itself (so it cannot drift from it). */
export function layoutOf(fullName: string): FieldLayout {
  const type = loaderNamingType(fullName);
  const fields = [...type.fieldsArray].sort((a, b) => a.id - b.id);
  const instanceFields = new Map<number, { readonly name: string; readonly repeated: boolean }>();
  for (const field of fields) {
    field.resolve();
    if (field.resolvedType?.fullName === '.cairn.naming.v1.Instance') instanceFields.set(field.id, { name: field.name, repeated: field.repeated });
  }
  return { order: fields.map((field) => ({ number: field.id, name: field.name })), instanceFields };
}

/**
 * instanceResponseDecoder builds the decoder of a response message: fields in `layout.instanceFields` are decoded
 * here, every other field's bytes are copied out unchanged and decoded by `rest` (proto-loader's deserializer of
 * the same message), and the object is assembled in field-number order.
 */
export function instanceResponseDecoder(layout: FieldLayout, rest: Decoder): Decoder {
  return (bytes: Buffer): Record<string, unknown> => {
    const cursor = new Cursor(bytes, 0, bytes.length);
    const found = new Map<number, Array<Record<string, unknown>>>();
    const others: Array<[number, number]> = [];
    while (cursor.pos < bytes.length) {
      const fieldStart = cursor.pos;
      const tag = cursor.varint32();
      const held = layout.instanceFields.get(tag >>> 3);
      if (held === undefined) {
        cursor.skip(tag & 7);
        others.push([fieldStart, cursor.pos]);
        continue;
      }
      expectWire(tag & 7, WIRE_BYTES, held.name);
      const length = cursor.length();
      const instance = decodeInstance(bytes, cursor.pos, cursor.pos + length);
      cursor.pos += length;
      const list = found.get(tag >>> 3);
      // A singular message field seen twice is merged by protobufjs; Cairn's server never sends that, so the
      // decoder refuses it rather than approximate the merge.
      if (list !== undefined && !held.repeated) throw new RangeError(`instance decoding: ${held.name} appears twice`);
      if (list === undefined) found.set(tag >>> 3, [instance]);
      else list.push(instance);
    }
    const decodedRest = others.length === 0 ? {} : rest(others.length === 1 && others[0]?.[0] === 0 && others[0][1] === bytes.length
      ? bytes
      : Buffer.concat(others.map(([start, end]) => bytes.subarray(start, end))));
    const response: Record<string, unknown> = {};
    for (const { number, name } of layout.order) {
      const held = layout.instanceFields.get(number);
      if (held === undefined) {
        if (Object.hasOwn(decodedRest, name)) response[name] = decodedRest[name];
        continue;
      }
      const list = found.get(number);
      if (list === undefined) continue;
      response[name] = held.repeated ? list : list[0];
    }
    return response;
  };
}

const decoders = new Map<string, Decoder>();

/**
 * responseDecoder returns the deserializer of a Naming method's response: this file's decoder when the response
 * holds Instance fields, else proto-loader's own (`fallback`).
 */
export function responseDecoder(service: string, method: string, fallback: Decoder): Decoder {
  const key = `${service}/${method}`;
  let decoder = decoders.get(key);
  if (decoder === undefined) {
    decoder = fallback;
    if (service === 'cairn.naming.v1.Naming') {
      const responseType = loaderNamingType('cairn.naming.v1.Instance').root.lookupService(service).methods[method]?.responseType;
      if (responseType !== undefined) {
        const layout = layoutOf(responseType.startsWith('.') ? responseType.slice(1) : `cairn.naming.v1.${responseType}`);
        if (layout.instanceFields.size > 0) decoder = instanceResponseDecoder(layout, fallback);
      }
    }
    decoders.set(key, decoder);
  }
  return decoder;
}
