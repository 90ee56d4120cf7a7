// snapshot-writer: the bulk of a registry snapshot, its instance records and remembered requests, encoded by hand
// into large shared slabs: byte for byte what protobufjs writes for the same messages (test/cp/snapshot-writer.test.ts
// compares the two on random records), with almost no garbage.
//
// Why: through protobufjs, every instance became a plain object, a pair object per metadata entry and an operation
// object per field written, ~30 short-lived objects per instance and ~30M for a 1M-instance snapshot, plus a fresh
// buffer per piece. On the 2-vCPU VM the collections they caused stood the leader's event loop still for ~0.7 s
// while it encoded an image for a lagging follower, against a 1 s election timeout (bench/README.md "A lagging
// follower's catch-up through a snapshot"). Here a piece is a view of a slab the writer fills in place; the only
// allocations are the slabs themselves and one small view per piece.
//
// Wire facts relied on (protobuf encoding; protobufjs's generated encoders): fields are written in field-number
// order; a proto3 scalar that holds its default (an empty string or bytes, 0, false; for a double only +0, not -0)
// is not written (protobufjs 8's encoders check the value); a repeated message is one length-delimited record per
// element; uint64 is a plain varint for the safe integers stored here; double is 8 bytes little-endian. Strings
// are UTF-8. The registry's strings are well formed (every one was decoded from UTF-8 bytes by Node); a lone
// surrogate, should one appear, is written as U+FFFD, as Node's own encoder does. A protobufjs upgrade that changed
// any of this would fail test/cp/snapshot-writer.test.ts.

import { assert } from '../assert.ts';
import type { Instance } from '../naming/model.ts';
import type { RememberedRequest } from './registry-state.ts';

/** SLAB_BYTES is the size of one slab: large enough that a 335 MB image takes ~80 of them, small enough to waste little. */
const SLAB_BYTES = 4 * 1024 * 1024;

/**
 * SHORT_STRING_CHARS: strings up to this length are measured and written by the loops below; longer ones through
 * Buffer's native UTF-8 code, whose per-call cost only pays off on long strings.
 */
const SHORT_STRING_CHARS = 64;

// Tags (field number << 3 | wire type) of the messages written here (proto/cairn/cp/v1/commands.proto).
const TAG_SERVICE_SNAPSHOT_INSTANCE = 0x1a; // ServiceSnapshot.instances = 3, length-delimited
const TAG_RECORD_CLUSTER = 0x0a; // InstanceRecord.cluster = 1
const TAG_RECORD_IP = 0x12; // InstanceRecord.ip = 2
const TAG_RECORD_PORT = 0x18; // InstanceRecord.port = 3, varint
const TAG_RECORD_WEIGHT = 0x21; // InstanceRecord.weight = 4, fixed64
const TAG_RECORD_ENABLED = 0x28; // InstanceRecord.enabled = 5, varint
const TAG_RECORD_HEALTHY = 0x30; // InstanceRecord.healthy = 6, varint
const TAG_RECORD_METADATA = 0x3a; // InstanceRecord.metadata = 7, length-delimited
const TAG_RECORD_VERSION = 0x40; // InstanceRecord.version = 8, varint
const TAG_PAIR_KEY = 0x0a; // Pair.key = 1
const TAG_PAIR_VALUE = 0x12; // Pair.value = 2
const TAG_REGISTRY_SNAPSHOT_REQUEST = 0x1a; // RegistrySnapshot.requests = 3, length-delimited
const TAG_REQUEST_ID = 0x0a; // RememberedRequest.request_id = 1
const TAG_REQUEST_INDEX = 0x10; // RememberedRequest.index = 2, varint
const TAG_REQUEST_DIGEST = 0x1a; // RememberedRequest.digest = 3
const TAG_REQUEST_RESULT = 0x22; // RememberedRequest.result = 4
const TAG_REQUEST_INSTANCE_REF = 0x2a; // RememberedRequest.instance_ref = 5
const TAG_REF_INSTANCE = 0x0a; // InstanceRef.instance = 1
const TAG_REF_REVISION = 0x10; // InstanceRef.revision = 2, varint

/** varintBytes is the length of `value` (a non-negative safe integer) as a varint. */
export function varintBytes(value: number): number {
  let bytes = 1;
  for (let rest = value; rest >= 0x80; rest = Math.floor(rest / 0x80)) bytes++;
  return bytes;
}

/** utf8Bytes is the length of `text` in UTF-8 (a lone surrogate counts as U+FFFD's 3 bytes, as Node counts it). */
export function utf8Bytes(text: string): number {
  const chars = text.length;
  if (chars > SHORT_STRING_CHARS) return Buffer.byteLength(text, 'utf8');
  let bytes = chars;
  for (let i = 0; i < chars; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0x80) continue;
    if (unit < 0x800) bytes += 1;
    else if (isPairAt(text, i, unit)) {
      bytes += 2; // two UTF-16 units, four bytes
      i++;
    } else bytes += 2;
  }
  return bytes;
}

/** isPairAt tells whether `unit`, at `i`, is a high surrogate followed by a low one. */
function isPairAt(text: string, i: number, unit: number): boolean {
  if (unit < 0xd800 || unit > 0xdbff || i + 1 >= text.length) return false;
  const next = text.charCodeAt(i + 1);
  return next >= 0xdc00 && next <= 0xdfff;
}

/**
 * SlabWriter writes records into slabs. A caller sizes what it writes first (begin), fills exactly that many bytes
 * with the write methods, and takes them as one piece (end): a view of the slab, never copied.
 */
export class SlabWriter {
  private slab: Buffer = Buffer.alloc(0);
  private pieceStart = 0;
  private pos = 0;
  private pieceEnd = 0;

  /** begin starts a piece of exactly `bytes` bytes, in a new slab when the current one lacks the room. */
  begin(bytes: number): void {
    if (this.slab.length - this.pos < bytes) {
      this.slab = Buffer.allocUnsafeSlow(Math.max(SLAB_BYTES, bytes));
      this.pos = 0;
    }
    this.pieceStart = this.pos;
    this.pieceEnd = this.pos + bytes;
  }

  /** end returns the piece begun last, which must be exactly full. */
  end(): Uint8Array {
    if (this.pos !== this.pieceEnd) assert(false, `snapshot writer: piece sized ${this.pieceEnd - this.pieceStart} bytes, ${this.pos - this.pieceStart} written`);
    return this.slab.subarray(this.pieceStart, this.pos);
  }

  /** varint writes a non-negative safe integer as a varint. */
  varint(value: number): void {
    const slab = this.slab;
    let pos = this.pos;
    let rest = value;
    while (rest >= 0x80) {
      slab[pos++] = (rest % 0x80) | 0x80;
      rest = Math.floor(rest / 0x80);
    }
    slab[pos++] = rest;
    this.pos = pos;
  }

  /** double writes an IEEE 754 double, little-endian. */
  double(value: number): void {
    this.pos = this.slab.writeDoubleLE(value, this.pos);
  }

  /** string writes `text`'s UTF-8 bytes (`bytes` of them, as utf8Bytes measured), without a length. */
  string(text: string, bytes: number): void {
    if (text.length > SHORT_STRING_CHARS) {
      const written = this.slab.write(text, this.pos, bytes, 'utf8');
      if (written !== bytes) assert(false, `snapshot writer: a string measured ${bytes} bytes wrote ${written}`);
      this.pos += written;
      return;
    }
    const slab = this.slab;
    let pos = this.pos;
    for (let i = 0; i < text.length; i++) {
      const unit = text.charCodeAt(i);
      if (unit < 0x80) slab[pos++] = unit;
      else if (unit < 0x800) {
        slab[pos++] = 0xc0 | (unit >> 6);
        slab[pos++] = 0x80 | (unit & 0x3f);
      } else if (isPairAt(text, i, unit)) {
        const point = 0x10000 + ((unit - 0xd800) << 10) + (text.charCodeAt(++i) - 0xdc00);
        slab[pos++] = 0xf0 | (point >> 18);
        slab[pos++] = 0x80 | ((point >> 12) & 0x3f);
        slab[pos++] = 0x80 | ((point >> 6) & 0x3f);
        slab[pos++] = 0x80 | (point & 0x3f);
      } else {
        const point = unit >= 0xd800 && unit <= 0xdfff ? 0xfffd : unit;
        slab[pos++] = 0xe0 | (point >> 12);
        slab[pos++] = 0x80 | ((point >> 6) & 0x3f);
        slab[pos++] = 0x80 | (point & 0x3f);
      }
    }
    this.pos = pos;
  }

  /** latin1 writes a string of code units up to 0xff as one byte each (a digest held as a latin1 string). */
  latin1(text: string): void {
    const slab = this.slab;
    let pos = this.pos;
    for (let i = 0; i < text.length; i++) slab[pos++] = text.charCodeAt(i) & 0xff;
    this.pos = pos;
  }

  /** bytes writes raw bytes. */
  bytes(data: Uint8Array): void {
    this.slab.set(data, this.pos);
    this.pos += data.length;
  }
}

/**
 * StringLengths keeps the UTF-8 lengths a piece's sizing pass measured, in order, for its writing pass to use
 * again (each string is measured once). Reused from piece to piece; its length is bounded by one piece's strings.
 */
class StringLengths {
  private readonly lengths: number[] = [];
  private next = 0;

  /** measure records `text`'s UTF-8 length and returns it. */
  measure(text: string): number {
    const bytes = utf8Bytes(text);
    this.lengths.push(bytes);
    return bytes;
  }

  /** take returns the next recorded length. */
  take(): number {
    const bytes = this.lengths[this.next++];
    assert(bytes !== undefined, 'snapshot writer: more strings written than measured');
    return bytes;
  }

  reset(): void {
    this.lengths.length = 0;
    this.next = 0;
  }
}

/** fieldBytes is the size of a length-delimited field of `bytes` bytes with a one-byte tag. */
function fieldBytes(bytes: number): number {
  return 1 + varintBytes(bytes) + bytes;
}

/** optionalFieldBytes is fieldBytes, or 0 for an empty field (proto3 does not write it). */
function optionalFieldBytes(bytes: number): number {
  return bytes === 0 ? 0 : fieldBytes(bytes);
}

/** varintFieldBytes is the size of a varint field with a one-byte tag, or 0 for 0 (not written). */
function varintFieldBytes(value: number): number {
  return value === 0 ? 0 : 1 + varintBytes(value);
}

/**
 * sortedMetadataKeys returns the metadata's keys in byte order: the keys as they are when already sorted
 * (validation freezes metadata so), else sorted. Only an unsorted map allocates.
 */
function sortedMetadataKeys(metadata: Instance['metadata']): string[] {
  const keys = Object.keys(metadata);
  for (let i = 1; i < keys.length; i++) {
    if ((keys[i - 1] as string) >= (keys[i] as string)) return keys.sort();
  }
  return keys;
}

/**
 * SnapshotWriter writes the repeated records of a snapshot, a bounded run of them per piece. One writer per
 * snapshot: its pieces stay views of its slabs, which live as long as a piece does.
 */
export class SnapshotWriter {
  private readonly out = new SlabWriter();
  private readonly lengths = new StringLengths();
  private readonly bodies: number[] = [];
  private readonly keyLists: string[][] = [];

  /**
   * instancesPiece encodes instances [from, to) as ServiceSnapshot.instances fields (InstanceRecord each): what
   * protobufjs writes for `{ instances: list.slice(from, to).map(encodeInstanceValues) }` as a ServiceSnapshot.
   */
  instancesPiece(list: readonly Instance[], from: number, to: number): Uint8Array {
    this.lengths.reset();
    this.bodies.length = 0;
    this.keyLists.length = 0;
    let total = 0;
    for (let i = from; i < to; i++) {
      const body = this.sizeInstance(list[i] as Instance);
      this.bodies.push(body);
      total += fieldBytes(body);
    }
    this.out.begin(total);
    for (let i = from; i < to; i++) this.writeInstance(list[i] as Instance, this.bodies[i - from] as number, this.keyLists[i - from] as string[]);
    return this.out.end();
  }

  private sizeInstance(instance: Instance): number {
    const lengths = this.lengths;
    let body = optionalFieldBytes(lengths.measure(instance.cluster)) + optionalFieldBytes(lengths.measure(instance.ip));
    body += varintFieldBytes(instance.port) + (Object.is(instance.weight, 0) ? 0 : 9) + (instance.enabled ? 2 : 0) + (instance.healthy ? 2 : 0);
    const keys = sortedMetadataKeys(instance.metadata);
    this.keyLists.push(keys);
    for (const key of keys) {
      body += fieldBytes(optionalFieldBytes(lengths.measure(key)) + optionalFieldBytes(lengths.measure(instance.metadata[key] as string)));
    }
    return body + varintFieldBytes(instance.version ?? 0);
  }

  private writeInstance(instance: Instance, body: number, keys: readonly string[]): void {
    const out = this.out;
    const lengths = this.lengths;
    out.varint(TAG_SERVICE_SNAPSHOT_INSTANCE);
    out.varint(body);
    writeStringField(out, TAG_RECORD_CLUSTER, instance.cluster, lengths.take());
    writeStringField(out, TAG_RECORD_IP, instance.ip, lengths.take());
    writeVarintField(out, TAG_RECORD_PORT, instance.port);
    if (!Object.is(instance.weight, 0)) {
      out.varint(TAG_RECORD_WEIGHT);
      out.double(instance.weight);
    }
    writeVarintField(out, TAG_RECORD_ENABLED, instance.enabled ? 1 : 0);
    writeVarintField(out, TAG_RECORD_HEALTHY, instance.healthy ? 1 : 0);
    for (const key of keys) {
      const keyBytes = lengths.take();
      const valueBytes = lengths.take();
      out.varint(TAG_RECORD_METADATA);
      out.varint(optionalFieldBytes(keyBytes) + optionalFieldBytes(valueBytes));
      writeStringField(out, TAG_PAIR_KEY, key, keyBytes);
      writeStringField(out, TAG_PAIR_VALUE, instance.metadata[key] as string, valueBytes);
    }
    writeVarintField(out, TAG_RECORD_VERSION, instance.version ?? 0);
  }

  /**
   * requestsPiece encodes requests [from, to) as RegistrySnapshot.requests fields: what protobufjs writes for
   * `{ requests: list.slice(from, to).map(encodeRemembered) }` as a RegistrySnapshot.
   */
  requestsPiece(list: readonly RememberedRequest[], from: number, to: number): Uint8Array {
    this.lengths.reset();
    this.bodies.length = 0;
    let total = 0;
    for (let i = from; i < to; i++) {
      const body = this.sizeRequest(list[i] as RememberedRequest);
      this.bodies.push(body);
      total += fieldBytes(body);
    }
    this.out.begin(total);
    for (let i = from; i < to; i++) this.writeRequest(list[i] as RememberedRequest, this.bodies[i - from] as number);
    return this.out.end();
  }

  private sizeRequest(request: RememberedRequest): number {
    const body = optionalFieldBytes(this.lengths.measure(request.requestId)) + varintFieldBytes(request.index) + optionalFieldBytes(request.digest.length);
    const ref = request.instanceRef;
    if (ref === null) return body + optionalFieldBytes(request.result.length);
    return body + fieldBytes(optionalFieldBytes(this.lengths.measure(ref.instance)) + varintFieldBytes(ref.revision));
  }

  private writeRequest(request: RememberedRequest, body: number): void {
    const out = this.out;
    out.varint(TAG_REGISTRY_SNAPSHOT_REQUEST);
    out.varint(body);
    writeStringField(out, TAG_REQUEST_ID, request.requestId, this.lengths.take());
    writeVarintField(out, TAG_REQUEST_INDEX, request.index);
    if (request.digest.length > 0) {
      out.varint(TAG_REQUEST_DIGEST);
      out.varint(request.digest.length);
      out.latin1(request.digest);
    }
    const ref = request.instanceRef;
    if (ref === null) {
      if (request.result.length === 0) return;
      out.varint(TAG_REQUEST_RESULT);
      out.varint(request.result.length);
      out.bytes(request.result);
      return;
    }
    const instanceBytes = this.lengths.take();
    out.varint(TAG_REQUEST_INSTANCE_REF);
    out.varint(optionalFieldBytes(instanceBytes) + varintFieldBytes(ref.revision));
    writeStringField(out, TAG_REF_INSTANCE, ref.instance, instanceBytes);
    writeVarintField(out, TAG_REF_REVISION, ref.revision);
  }
}

/** writeStringField writes a string field of `bytes` UTF-8 bytes; nothing for an empty one. */
function writeStringField(out: SlabWriter, tag: number, text: string, bytes: number): void {
  if (bytes === 0) return;
  out.varint(tag);
  out.varint(bytes);
  out.string(text, bytes);
}

/** writeVarintField writes a varint field; nothing for 0. */
function writeVarintField(out: SlabWriter, tag: number, value: number): void {
  if (value === 0) return;
  out.varint(tag);
  out.varint(value);
}
