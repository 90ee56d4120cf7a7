// Shared pieces of the seeded fuzz campaigns against a live member (test/api/grpc/fuzz.test.ts for the client API,
// test/replica/peer-fuzz.test.ts for the peer port):
// - Prng: a tiny seeded generator (mulberry32), so one seed decides every input; fuzzSeed() reads CAIRN_FUZZ_SEED.
// - a raw protobuf writer (tags, varints, length-delimited fields, doubles) able to write what protobufjs refuses to:
//   invalid UTF-8 in string fields, negative varints, wrong wire types, unknown fields, repeated singular fields;
// - hostileMessage(): a structurally valid message of a protobufjs Type whose every field takes a hostile value;
// - mutate(): truncations, bit flips, byte splices and garbage tails of a valid encoding;
// - runPool(): runs N async jobs with bounded concurrency (inputs are all drawn before, so they stay deterministic).
import protobuf from 'protobufjs';
import type { Member } from './cluster.ts';

/** Prng is mulberry32: 32 bits of state, good enough to pick fuzz inputs, deterministic for a seed. */
export class Prng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** next returns a float in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** int returns an integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** chance is true with probability p. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** pick returns one element of a non-empty list. */
  pick<T>(items: readonly T[]): T {
    const item = items[this.int(items.length)];
    if (item === undefined) throw new Error('pick from an empty list');
    return item;
  }

  /** bytes returns n random bytes. */
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }
}

/** fuzzSeed is CAIRN_FUZZ_SEED when set (to replay a failure), else `fallback`. */
export function fuzzSeed(fallback: number): number {
  const given = process.env['CAIRN_FUZZ_SEED'];
  if (given === undefined || given === '') return fallback;
  const seed = Number(given);
  if (!Number.isSafeInteger(seed)) throw new Error(`CAIRN_FUZZ_SEED must be an integer, got ${given}`);
  return seed;
}

// ---------------------------------------------------------------------------------------------------------------
// Raw protobuf writing.

/** varint encodes a 64-bit value (negative numbers as their two's complement, ten bytes). */
export function varint(value: bigint | number): number[] {
  let v = BigInt.asUintN(64, BigInt(value));
  const out: number[] = [];
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return out;
}

/** tag is a field key: number and wire type. */
export function tag(field: number, wireType: number): number[] {
  return varint(BigInt(field) * 8n + BigInt(wireType));
}

/** varintField writes field `field` as a varint. */
export function varintField(field: number, value: bigint | number): number[] {
  return [...tag(field, 0), ...varint(value)];
}

/** bytesField writes field `field` as length-delimited bytes. */
export function bytesField(field: number, bytes: Uint8Array | readonly number[]): number[] {
  return [...tag(field, 2), ...varint(bytes.length), ...bytes];
}

/** doubleField writes field `field` as a 64-bit double. */
export function doubleField(field: number, value: number): number[] {
  const buffer = Buffer.alloc(8);
  buffer.writeDoubleLE(value);
  return [...tag(field, 1), ...buffer];
}

/** fixed32Field writes field `field` as 32 raw bits. */
export function fixed32Field(field: number, value: number): number[] {
  const buffer = Buffer.alloc(4);
  buffer.writeUInt32LE(value >>> 0);
  return [...tag(field, 5), ...buffer];
}

/** utf8 encodes a string as UTF-8 bytes. */
export function utf8(text: string): number[] {
  return [...Buffer.from(text, 'utf8')];
}

/** invalidUtf8 are byte strings that are not UTF-8: a lone continuation, an overlong form, a surrogate, past U+10FFFF. */
export const invalidUtf8: readonly (readonly number[])[] = Object.freeze([[0xff], [0x80], [0xc3, 0x28], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0x61, 0xfe, 0x62]]);

// ---------------------------------------------------------------------------------------------------------------
// Hostile values.

/** HostileOptions steer hostileMessage: per field name a generator that replaces the generic one. */
export interface HostileOptions {
  /** strings overrides the string values of fields by name (e.g. keep `ip` on loopback). */
  readonly strings?: Readonly<Record<string, (prng: Prng) => readonly number[]>>;
  /** depthMax bounds nesting. */
  readonly depthMax?: number;
  /** bigStrings allows strings of tens of KiB (a message near or over the receiver's size limit). */
  readonly bigStrings?: boolean;
}

/** hostileString returns the UTF-8 bytes of a hostile string value (or bytes that are no UTF-8 at all). */
export function hostileString(prng: Prng, big = true): number[] {
  const lengths = [63, 64, 65, 127, 128, 129, 511, 512, 513, 1023, 1024, 1025, 4096, ...(big ? [70_000] : [])];
  switch (prng.int(8)) {
    case 0: return [];
    case 1: return utf8(prng.pick(['a', 'svc', 'fz-1', 'DEFAULT', 'public', 'DEFAULT_GROUP', '*', '127.0.3.9', 'c1']));
    case 2: return utf8(prng.pick(['x', 'é', '服', '🙂', 'a-b_c', '.']).repeat(prng.pick(lengths)));
    case 3: return utf8(prng.pick(['\u0000', 'a\u0000b', '\u0001\u001f', '\u007f', '\t', ' ', 'a b', '\r\n', '\u2028', '\ufeff', '\ud800', '\uffff']));
    case 4: return utf8(prng.pick(['..', '../etc/passwd', '@@', 'a@@b', '%00', '${x}', '<script>', "' or 1=1", 'a:b', 'a/b', 'a#b#c', '服务名']));
    case 5: return [...prng.pick(invalidUtf8)];
    case 6: return utf8(String(prng.pick([-1, 0, 1, 65535, 65536, 2 ** 53, 1e308, NaN])));
    default: return [...prng.bytes(prng.int(40))];
  }
}

/** hostileVarint returns a hostile integer: zero, limits, beyond 2^32 and 2^53, 2^64 - 1, negative. */
export function hostileVarint(prng: Prng): bigint {
  return prng.pick([0n, 1n, 2n, 80n, 65_535n, 65_536n, 2n ** 31n - 1n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 63n, 2n ** 64n - 1n, -1n, -(2n ** 31n), 10_000n, 10_001n]);
}

/** hostileDouble returns a hostile double: NaN, infinities, negative zero, limits and beyond. */
export function hostileDouble(prng: Prng): number {
  return prng.pick([NaN, Infinity, -Infinity, -0, 0, 0.5, 1, 1.0000001, -1, 10_000, 10_000.5, 10_001, 1e308, -1e308, 5e-324, 2 ** 53]);
}

function scalarField(prng: Prng, field: protobuf.Field, options: HostileOptions): number[] {
  const id = field.id;
  const override = options.strings?.[field.name];
  switch (field.type) {
    case 'string':
      return bytesField(id, override === undefined ? hostileString(prng, options.bigStrings ?? true) : override(prng));
    case 'bytes':
      return bytesField(id, prng.bytes(prng.pick([0, 1, 16, 300])));
    case 'double':
      return doubleField(id, hostileDouble(prng));
    case 'float':
      return fixed32Field(id, prng.int(2 ** 32));
    case 'bool':
      return varintField(id, prng.pick([0n, 1n, 2n, 2n ** 64n - 1n]));
    default:
      return varintField(id, hostileVarint(prng));
  }
}

function fieldValue(prng: Prng, field: protobuf.Field, depth: number, options: HostileOptions): number[] {
  const resolved = field.resolve().resolvedType;
  if (resolved instanceof protobuf.Type) {
    if (depth >= (options.depthMax ?? 3)) return bytesField(field.id, []);
    return bytesField(field.id, hostileMessage(prng, resolved, options, depth + 1));
  }
  if (resolved instanceof protobuf.Enum) {
    const known = Object.values(resolved.values);
    return varintField(field.id, prng.chance(0.6) ? BigInt(prng.pick(known)) : prng.pick([3n, 99n, -1n, 2n ** 31n - 1n, 2n ** 32n]));
  }
  return scalarField(prng, field, options);
}

function mapEntries(prng: Prng, field: protobuf.MapField): number[] {
  const out: number[] = [];
  const count = prng.pick([0, 1, 2, 5, 40, 300]);
  for (let i = 0; i < count; i++) {
    const key = prng.chance(0.5) ? utf8(`k${i}`) : hostileString(prng, false);
    const value = field.type === 'string' ? (prng.chance(0.5) ? utf8(`v${i}`) : hostileString(prng, false)) : [];
    append(out, bytesField(field.id, [...bytesField(1, key), ...bytesField(2, value)]));
  }
  // A map entry with a missing key, one with a missing value, and a duplicate key.
  if (prng.chance(0.2)) append(out, bytesField(field.id, bytesField(2, utf8('no-key'))));
  if (prng.chance(0.2)) append(out, bytesField(field.id, bytesField(1, utf8('no-value'))));
  if (prng.chance(0.2)) append(out, bytesField(field.id, [...bytesField(1, utf8('k0')), ...bytesField(2, utf8('dup'))]));
  return out;
}

/** unknownField writes a field the type does not declare (or a declared one with the wrong wire type). */
function strangeField(prng: Prng, type: protobuf.Type): number[] {
  const declared = type.fieldsArray.map((f) => f.id);
  const id = prng.chance(0.5) && declared.length > 0 ? prng.pick(declared) : prng.pick([15, 16, 99, 1000, 536_870_911]);
  switch (prng.int(4)) {
    case 0: return varintField(id, hostileVarint(prng));
    case 1: return bytesField(id, prng.bytes(prng.int(20)));
    case 2: return doubleField(id, hostileDouble(prng));
    default: return fixed32Field(id, prng.int(2 ** 32));
  }
}

/** append adds `items` to `out` one by one (a spread of tens of thousands of bytes overflows the call stack). */
function append(out: number[], items: readonly number[]): void {
  for (const item of items) out.push(item);
}

/** hostileMessage encodes a message of `type` whose fields carry hostile values (fields may repeat or be unknown). */
export function hostileMessage(prng: Prng, type: protobuf.Type, options: HostileOptions = {}, depth = 0): number[] {
  const out: number[] = [];
  for (const field of type.fieldsArray) {
    if (!prng.chance(0.65)) continue;
    if (field instanceof protobuf.MapField) {
      append(out, mapEntries(prng, field));
      continue;
    }
    // Many repetitions only at the top: nested ones multiply (100 records of 100 entries of 100 keys...).
    const count = field.repeated ? prng.pick(depth === 0 ? [0, 1, 2, 5, 100] : [0, 1, 2, 5]) : prng.chance(0.12) ? 2 : 1;
    for (let i = 0; i < count; i++) append(out, fieldValue(prng, field, depth, options));
  }
  if (prng.chance(0.15)) append(out, strangeField(prng, type));
  return out;
}

/**
 * oneHostileField encodes one field of `type` with a hostile value (descending into a message field most of the
 * time). Appended to a valid encoding it overrides that field only (proto3: the last value of a singular field wins,
 * message fields merge), so the request goes deeper than validation of its first bad field.
 */
export function oneHostileField(prng: Prng, type: protobuf.Type, options: HostileOptions = {}): number[] {
  const field = prng.pick(type.fieldsArray);
  if (field instanceof protobuf.MapField) return mapEntries(prng, field);
  const resolved = field.resolve().resolvedType;
  if (resolved instanceof protobuf.Type && resolved.fieldsArray.length > 0 && prng.chance(0.7)) {
    return bytesField(field.id, oneHostileField(prng, resolved, options));
  }
  return fieldValue(prng, field, 0, options);
}

// ---------------------------------------------------------------------------------------------------------------
// Mutations of valid encodings.

/** mutate damages a valid encoding: truncation, bit flips, a random splice, a garbage tail, or a duplicate. */
export function mutate(prng: Prng, valid: Uint8Array): Uint8Array {
  const bytes = Uint8Array.from(valid);
  switch (prng.int(6)) {
    case 0: return bytes.subarray(0, prng.int(Math.max(1, bytes.length)));
    case 1: {
      const flips = 1 + prng.int(4);
      for (let i = 0; i < flips && bytes.length > 0; i++) {
        const at = prng.int(bytes.length);
        bytes[at] = (bytes[at] ?? 0) ^ (1 << prng.int(8));
      }
      return bytes;
    }
    case 2: {
      const at = prng.int(bytes.length + 1);
      return Uint8Array.from([...bytes.subarray(0, at), ...prng.bytes(1 + prng.int(8)), ...bytes.subarray(at)]);
    }
    case 3: return Uint8Array.from([...bytes, ...prng.bytes(1 + prng.int(16))]);
    case 4: {
      if (bytes.length === 0) return Uint8Array.from([0xff]);
      const at = prng.int(bytes.length);
      bytes[at] = prng.pick([0x00, 0x7f, 0x80, 0xff]);
      return bytes;
    }
    default: return Uint8Array.from([...bytes, ...bytes]);
  }
}

/** randomBytes are raw random bytes of a random length, sometimes empty. */
export function randomBytes(prng: Prng): Uint8Array {
  return prng.bytes(prng.pick([0, 1, 2, 5, 17, 64, 300, 4096]));
}

// ---------------------------------------------------------------------------------------------------------------
// Running.

/** runPool runs `jobs` with at most `concurrency` at once and resolves when all have settled. */
export async function runPool(jobs: readonly (() => Promise<void>)[], concurrency: number): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < jobs.length) {
      const job = jobs[next++];
      if (job !== undefined) await job();
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, jobs.length) }, worker));
}

/** Failures collects what went wrong, bounded, for one assertion message at the end. */
export class Failures {
  readonly items: string[] = [];
  total = 0;

  /** add records one failure (the first `keepMax` are kept verbatim). */
  add(text: string, keepMax = 60): void {
    this.total++;
    if (this.items.length < keepMax) this.items.push(text);
  }

  /** report renders every kept failure, or '' when there was none. */
  report(seed: number): string {
    if (this.total === 0) return '';
    return `${this.total} failure(s) (replay: CAIRN_FUZZ_SEED=${seed}):\n${this.items.join('\n')}`;
  }
}

/** memberAlive records a failure when the member's process has exited or its health route does not answer 200. */
export async function memberAlive(member: Member, failures: Failures, when: string): Promise<void> {
  if (!member.running) {
    failures.add(`the member process exited ${when}`);
    return;
  }
  const answer = await member.request('GET', '/cairn/v1/health', { timeoutMs: 5000 }).catch((error: unknown) => ({ status: 0, text: String(error) }));
  if (answer.status !== 200) failures.add(`GET /cairn/v1/health ${when}: ${answer.status} ${answer.text.slice(0, 200)}`);
}

/** hex renders the start of a byte string for a failure message. */
export function hex(bytes: Uint8Array, max = 48): string {
  const shown = Buffer.from(bytes.subarray(0, max)).toString('hex');
  return bytes.length > max ? `${shown}... (${bytes.length} bytes)` : shown;
}
