// record-reader: the stored InstanceRecord decoded by hand, straight into the validated InstanceValues that
// decodeInstanceValues(decodeMessage('InstanceRecord', bytes), true) builds: the same values, the same checks, the
// same interning. test/cp/record-reader.test.ts compares the two on random and on damaged records.
//
// Why: a member reads every stored instance when it starts (a million records for a 1M-instance registry) and a
// follower every instance of an image it installs. Through protobufjs each record became a message object, a plain
// object, an object per metadata pair and two intermediate copies of the values before the frozen result: on the
// 2-vCPU VM decoding was ~16% of a 1M-instance start-up's busy time, and its garbage much of the 30% spent in GC
// (bench/README.md "Memory and restart ..., session 21": 18 s to 11 s with this reader and batched reads). Here a
// record makes its frozen values, its metadata map and the strings not already interned, nothing else.
//
// Wire rules, as protobufjs 8's generated decoder applies them (node_modules/protobufjs/src/decoder.js, reader.js):
// fields may come in any order; for a singular field the last occurrence wins; repeated pairs are kept in order; a
// field of unknown number, or of a known number with another wire type than its declared one, is skipped by its
// wire type (groups included, nested at most 100 deep); field number 0 and wire types 4, 6 and 7 are refused. A tag
// is a varint of at most 5 bytes that fits 32 bits, a length one of at most 5 bytes below 2^31; uint32 keeps the low
// 32 bits of a varint of up to 10 bytes; a bool is true when any bit of its varint is set; uint64 is read as
// hi * 2^32 + lo (longs: Number) and must be a safe integer. Strings are strict UTF-8 (src/replica/proto.ts gives
// protobufjs's reader the same). Only the error texts differ: this reader's say "malformed record".
//
// src/api/grpc/instance-decoding.ts is the other hand decoder in the tree, on the client side. It is kept apart on
// purpose: it must match protobufjs 7 as grpc's proto-loader uses it (lenient UTF-8, a wrong wire type refused,
// RangeErrors), where this one must match protobufjs 8 as the state machine uses it (strict UTF-8, a wrong wire type
// skipped, CAIRN_INVALID_ARGUMENT); a shared cursor would have to carry both rule sets.

import { CairnError } from '../errors.ts';
import { internUtf8 } from '../naming/intern.ts';
import { validateClusterName, validateIp, validatePort, validateWeight } from '../naming/validation.ts';
import { readFlatStrictUtf8 } from '../replica/proto.ts';
import { metadataFromPairs, type InstanceValues } from './commands.ts';

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_BYTES = 2;
const WIRE_START_GROUP = 3;
const WIRE_END_GROUP = 4;
const WIRE_FIXED32 = 5;
/** GROUP_DEPTH_MAX is protobufjs's recursion limit (util.recursionLimit), which bounds nested groups. */
const GROUP_DEPTH_MAX = 100;

function malformed(what: string): never {
  throw new CairnError('CAIRN_INVALID_ARGUMENT', `malformed record: ${what}`);
}

/**
 * RecordReader walks one message's bytes. Its methods advance `pos`; every read checks the bounds and throws
 * CAIRN_INVALID_ARGUMENT past them. One module-level reader is reused: decoding is synchronous and never nested
 * across calls of readInstanceRecord.
 */
class RecordReader {
  buf: Uint8Array = new Uint8Array(0);
  pos = 0;
  end = 0;
  /** high holds the upper 32 bits of the last varint read by varint64. */
  high = 0;

  reset(buf: Uint8Array, start: number, end: number): void {
    this.buf = buf;
    this.pos = start;
    this.end = end;
  }

  /** uint32 reads a varint and keeps its low 32 bits, as protobufjs's uint32 does (up to 10 bytes). */
  uint32(): number {
    return this.varint64();
  }

  /** bool reads a varint: true when any of its bits is set (protobufjs 8's bool). */
  bool(): boolean {
    const low = this.varint64();
    return (low | this.high) !== 0;
  }

  /** varint64 reads a varint of up to 10 bytes; returns its low 32 bits (unsigned) and leaves the high ones in `high`. */
  varint64(): number {
    const buf = this.buf;
    let pos = this.pos;
    let low = 0;
    let high = 0;
    for (let shift = 0; ; shift += 7) {
      if (pos >= this.end) malformed('varint runs past the end');
      if (shift >= 70) malformed('varint longer than 10 bytes');
      const byte = buf[pos++] as number;
      const bits = byte & 0x7f;
      if (shift < 28) low |= bits << shift;
      else if (shift === 28) {
        low |= (bits & 0x0f) << 28;
        high |= bits >>> 4;
      } else if (shift < 64) high |= bits << (shift - 32);
      if (byte < 0x80) break;
    }
    this.pos = pos;
    this.high = high >>> 0;
    return low >>> 0;
  }

  /** uint64 reads a varint as hi * 2^32 + lo (protobufjs's longs: Number); callers check it is a safe integer. */
  uint64(): number {
    const low = this.varint64();
    return this.high * 0x1_0000_0000 + low;
  }

  /** tag reads a field tag: a varint of at most 5 bytes that fits 32 bits (protobufjs's tag). */
  tag(): number {
    const start = this.pos;
    const value = this.varint64();
    if (this.pos - start > 5 || this.high !== 0) malformed('invalid tag encoding');
    return value;
  }

  /** length reads a length prefix (at most 5 bytes, below 2^31) and returns the end of the bytes it announces. */
  length(): number {
    const start = this.pos;
    const length = this.varint64();
    if (this.pos - start > 5 || this.high !== 0 || length > 0x7fff_ffff) malformed('invalid length encoding');
    const end = this.pos + length;
    if (end > this.end) malformed(`a field of ${length} bytes runs past the end`);
    return end;
  }

  /** string reads a length-delimited string field, strict UTF-8; `interned`: through the intern table. */
  string(interned: boolean): string {
    const end = this.length();
    const start = this.pos;
    this.pos = end;
    if (start === end) return '';
    return interned ? internUtf8(this.buf, start, end, readFlatStrictUtf8) : readFlatStrictUtf8(this.buf, start, end);
  }

  double(): number {
    if (this.pos + 8 > this.end) malformed('a double runs past the end');
    const buf = this.buf;
    const pos = this.pos;
    // Through a scratch double: a DataView per read cost more than the read.
    if (hostLittleEndian) for (let i = 0; i < 8; i++) doubleBytes[i] = buf[pos + i] as number;
    else for (let i = 0; i < 8; i++) doubleBytes[7 - i] = buf[pos + i] as number;
    this.pos = pos + 8;
    return doubleScratch[0] as number;
  }

  /**
   * skip skips a field by its wire type (protobufjs's skipType): a group up to its end-group tag of the same field
   * number, nested groups within GROUP_DEPTH_MAX.
   */
  skip(wire: number, field: number, depth = 0): void {
    if (depth > GROUP_DEPTH_MAX) malformed('groups nested too deep');
    if (field === 0) malformed('field number 0');
    if (wire === WIRE_VARINT) this.skipVarint();
    else if (wire === WIRE_FIXED64) this.advance(8);
    else if (wire === WIRE_BYTES) this.pos = this.length();
    else if (wire === WIRE_FIXED32) this.advance(4);
    else if (wire === WIRE_START_GROUP) {
      for (;;) {
        const tag = this.tag();
        const nested = tag >>> 3;
        if (nested === 0) malformed('field number 0');
        if ((tag & 7) === WIRE_END_GROUP) {
          if (nested !== field) malformed('invalid end group tag');
          return;
        }
        this.skip(tag & 7, nested, depth + 1);
      }
    } else malformed(`invalid wire type ${wire}`);
  }

  /** skipVarint skips a varint of any length (protobufjs's skip). */
  private skipVarint(): void {
    const buf = this.buf;
    do {
      if (this.pos >= this.end) malformed('varint runs past the end');
    } while ((buf[this.pos++] as number) >= 0x80);
  }

  private advance(bytes: number): void {
    if (this.pos + bytes > this.end) malformed('a field runs past the end');
    this.pos += bytes;
  }
}

const reader = new RecordReader();
const doubleScratch = new Float64Array(1);
const doubleBytes = new Uint8Array(doubleScratch.buffer);
/** hostLittleEndian: a Float64Array is in the host's byte order; the wire's doubles are little-endian. */
const hostLittleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

// Tags of InstanceRecord and Pair (proto/cairn/cp/v1/commands.proto).
const TAG_CLUSTER = (1 << 3) | WIRE_BYTES;
const TAG_IP = (2 << 3) | WIRE_BYTES;
const TAG_PORT = (3 << 3) | WIRE_VARINT;
const TAG_WEIGHT = (4 << 3) | WIRE_FIXED64;
const TAG_ENABLED = (5 << 3) | WIRE_VARINT;
const TAG_HEALTHY = (6 << 3) | WIRE_VARINT;
const TAG_METADATA = (7 << 3) | WIRE_BYTES;
const TAG_VERSION = (8 << 3) | WIRE_VARINT;
const TAG_PAIR_KEY = (1 << 3) | WIRE_BYTES;
const TAG_PAIR_VALUE = (2 << 3) | WIRE_BYTES;

// Scratch lists of one record's metadata pairs, emptied after each record.
const pairKeys: string[] = [];
const pairValues: string[] = [];

/**
 * readInstanceRecord decodes and validates a stored InstanceRecord (proto/cairn/cp/v1/commands.proto): what
 * decodeInstanceValues(decodeMessage('InstanceRecord', bytes), true) returns, and throws where it throws.
 */
export function readInstanceRecord(bytes: Uint8Array): InstanceValues {
  const r = reader;
  r.reset(bytes, 0, bytes.length);
  let cluster = '';
  let ip = '';
  let port = 0;
  let weight = 0;
  let enabled = false;
  let healthy = false;
  let version = 0;
  let count = 0;
  try {
    while (r.pos < r.end) {
      const tag = r.tag();
      // Tags as written (field << 3 | wire type); any other tag, a known field in another wire type included, is
      // skipped as protobufjs skips it.
      switch (tag) {
        case TAG_CLUSTER:
          cluster = r.string(true);
          break;
        case TAG_IP:
          ip = r.string(false);
          break;
        case TAG_PORT:
          port = r.uint32();
          break;
        case TAG_WEIGHT:
          weight = r.double();
          break;
        case TAG_ENABLED:
          enabled = r.bool();
          break;
        case TAG_HEALTHY:
          healthy = r.bool();
          break;
        case TAG_METADATA:
          readPair(r, r.length(), count);
          count++;
          break;
        case TAG_VERSION:
          version = r.uint64();
          break;
        default:
          r.skip(tag & 7, tag >>> 3);
      }
    }
    // The checks and their order are decodeInstanceValues's: address, weight, metadata, version.
    const checkedCluster = validateClusterName(cluster);
    const checkedIp = validateIp(ip);
    const checkedPort = validatePort(port);
    const checkedWeight = validateWeight(weight);
    const metadata = metadataFromPairs(pairKeys, pairValues, count, 'metadata');
    if (!Number.isSafeInteger(version) || version < 0) malformed('version is not a non-negative safe integer');
    return Object.freeze({
      cluster: checkedCluster, ip: checkedIp, port: checkedPort, weight: checkedWeight, enabled, healthy, metadata, version: Math.max(1, version),
    });
  } finally {
    pairKeys.length = 0;
    pairValues.length = 0;
    r.reset(EMPTY, 0, 0);
  }
}

const EMPTY = new Uint8Array(0);

/** readPair reads one Pair message (key = 1, value = 2, last occurrence wins) ending at `end` into slot `index`. */
function readPair(r: RecordReader, end: number, index: number): void {
  const outer = r.end;
  r.end = end;
  let key = '';
  let value = '';
  while (r.pos < end) {
    const tag = r.tag();
    if (tag === TAG_PAIR_KEY) key = r.string(true);
    else if (tag === TAG_PAIR_VALUE) value = r.string(true);
    else r.skip(tag & 7, tag >>> 3);
  }
  r.end = outer;
  pairKeys[index] = key;
  pairValues[index] = value;
}
