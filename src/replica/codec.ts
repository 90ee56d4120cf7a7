// codec: the byte formats of Raft's durable records (proto/cairn/peer/v1/log.proto) and of the storage keys.
//
// Encoders take values the Raft core produced, so a bad value is a programmer error: they assert. Decoders take
// bytes from disk or from a peer, so a bad record is an operating condition: they throw a CodecError saying what is
// wrong, and the caller decides what it means (LevelStorage turns it into CAIRN_STORAGE_CORRUPT naming the key
// with `storageCorruption`; the transport drops the message). Every decoder validates everything the Raft core
// relies on: indexes and terms are safe non-negative integers (a uint64 above Number.MAX_SAFE_INTEGER is refused,
// never rounded), enums are known, records the kind needs are present and the ones it forbids absent.
//
// Decoded bytes are copied into plain Uint8Arrays: protobufjs returns views into the input buffer, and a decoded
// entry must not pin (or alias) the LevelDB value or the network frame it came from.
import type { IConversionOptions, Type } from 'protobufjs';
import type { Entry, HardState, Membership, MembershipChange, NodeId, SnapshotMeta } from '../raft/types.ts';
import { assert, assertNever } from '../assert.ts';
import { CairnError, type CairnErrorDetails } from '../errors.ts';
import { encodeReusing, lookupMessage } from './proto.ts';

/** CodecError says that bytes do not decode into a valid record: which record, and why. */
export class CodecError extends Error {
  override readonly name = 'CodecError';
  /** record names the record type being decoded, e.g. "Entry". */
  readonly record: string;
  /** reason is what is wrong with it. */
  readonly reason: string;

  constructor(record: string, reason: string, options: { readonly cause?: unknown } = {}) {
    super(`cannot decode ${record}: ${reason}`, options.cause === undefined ? undefined : { cause: options.cause });
    this.record = record;
    this.reason = reason;
  }
}

/** storageCorruption wraps a decoding failure of the record at `location` as CAIRN_STORAGE_CORRUPT (never retryable). */
export function storageCorruption(location: string, error: unknown, details?: CairnErrorDetails): CairnError {
  const reason = error instanceof Error ? error.message : String(error);
  return new CairnError('CAIRN_STORAGE_CORRUPT', `${location}: ${reason}`,
    details === undefined ? { cause: error } : { cause: error, details });
}

// --- CRC-32C (Castagnoli), table-driven -------------------------------------------------------------------------
// CRC-32C rather than zlib's CRC-32: it is what LevelDB, RocksDB, etcd's WAL and iSCSI use, detects more error
// patterns in short records, and node's zlib.crc32 (plain CRC-32) exists only from Node 20.15/22.2.

const crc32cPolynomialReversed = 0x82f63b78;
/**
 * crc32cTables are the 8 tables of the slicing-by-8 method: table k maps a byte to the CRC of that byte followed by
 * k zero bytes, so eight input bytes are folded per step instead of one (1.6x faster here: a 76 MB snapshot's
 * checksum took ~200 ms byte by byte and ~120 ms this way, all of it on the event loop).
 */
const crc32cTables: readonly Uint32Array[] = buildCrc32cTables();
const crc32cTable0 = crc32cTables[0] as Uint32Array;
const crc32cTable1 = crc32cTables[1] as Uint32Array;
const crc32cTable2 = crc32cTables[2] as Uint32Array;
const crc32cTable3 = crc32cTables[3] as Uint32Array;
const crc32cTable4 = crc32cTables[4] as Uint32Array;
const crc32cTable5 = crc32cTables[5] as Uint32Array;
const crc32cTable6 = crc32cTables[6] as Uint32Array;
const crc32cTable7 = crc32cTables[7] as Uint32Array;

function buildCrc32cTables(): Uint32Array[] {
  const first = new Uint32Array(256);
  for (let byte = 0; byte < 256; byte++) {
    let crc = byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ crc32cPolynomialReversed : crc >>> 1;
    first[byte] = crc >>> 0;
  }
  const tables = [first];
  for (let k = 1; k < 8; k++) {
    const previous = tables[k - 1] as Uint32Array;
    const table = new Uint32Array(256);
    for (let byte = 0; byte < 256; byte++) {
      const crc = previous[byte] as number;
      table[byte] = ((first[crc & 0xff] as number) ^ (crc >>> 8)) >>> 0;
    }
    tables.push(table);
  }
  return tables;
}

/** crc32c returns the CRC-32C of `bytes` as an unsigned 32-bit integer (crc32c("123456789") = 0xe3069283). */
export function crc32c(bytes: Uint8Array, previous = 0): number {
  // `previous` continues a checksum: crc32c(b, crc32c(a)) === crc32c(a ++ b).
  let crc = (previous ^ 0xffffffff) >>> 0;
  const length = bytes.length;
  let i = 0;
  // Eight bytes at a time (slicing-by-8), then the rest one by one. Indexes stay within bounds by the loop conditions.
  for (; i + 8 <= length; i += 8) {
    const low = (crc ^ ((bytes[i] as number) | ((bytes[i + 1] as number) << 8) | ((bytes[i + 2] as number) << 16) | ((bytes[i + 3] as number) << 24))) >>> 0;
    crc = (crc32cTable7[low & 0xff] as number) ^ (crc32cTable6[(low >>> 8) & 0xff] as number)
      ^ (crc32cTable5[(low >>> 16) & 0xff] as number) ^ (crc32cTable4[low >>> 24] as number)
      ^ (crc32cTable3[bytes[i + 4] as number] as number) ^ (crc32cTable2[bytes[i + 5] as number] as number)
      ^ (crc32cTable1[bytes[i + 6] as number] as number) ^ (crc32cTable0[bytes[i + 7] as number] as number);
  }
  for (; i < length; i++) crc = (crc32cTable0[(crc ^ (bytes[i] as number)) & 0xff] as number) ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

const utf8Encoder = new TextEncoder();

/**
 * crc32cOfText is crc32c of `text`'s UTF-8 bytes. An ASCII text is its own UTF-8, one byte per character, so its
 * characters are fed in directly; any other text is encoded first. (Every keyspace record's checksum starts with its
 * key: the encoding cost a buffer per record written and per record read at start-up.)
 */
export function crc32cOfText(text: string, previous = 0): number {
  let crc = (previous ^ 0xffffffff) >>> 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit >= 0x80) return crc32c(utf8Encoder.encode(text), previous);
    crc = (crc32cTable0[(crc ^ unit) & 0xff] as number) ^ (crc >>> 8);
  }
  return (crc ^ 0xffffffff) >>> 0;
}

// --- Keys and fixed-width values ----------------------------------------------------------------------------------

/**
 * indexKey is the storage key of the log entry at `index`: the 8-byte big-endian index (DESIGN.md), written as 16
 * lowercase hex digits. Fixed-width lowercase hex sorts byte-wise exactly as the numbers do, so LevelDB's order is
 * the log's order. A string rather than a Buffer key keeps one key encoding (utf8) across every sublevel, so one
 * typed batch spans the log, the meta and the state sublevels; it costs 8 bytes per key, nothing next to an entry,
 * and the log stays readable in a dump.
 */
export function indexKey(index: number): string {
  assert(Number.isSafeInteger(index) && index >= 0, `indexKey: index must be a safe non-negative integer, got ${index}`);
  return index.toString(16).padStart(16, '0');
}

/** parseIndexKey returns the index a log key names, or throws a CodecError for anything indexKey cannot produce. */
export function parseIndexKey(key: string): number {
  if (!/^[0-9a-f]{16}$/.test(key)) throw new CodecError('log key', `not 16 lowercase hex digits: ${JSON.stringify(key)}`);
  const index = Number.parseInt(key, 16);
  if (!Number.isSafeInteger(index)) throw new CodecError('log key', `index ${key} exceeds Number.MAX_SAFE_INTEGER`);
  return index;
}

/** encodeIndexValue encodes an index (the applied index) as 8 bytes, big-endian. */
export function encodeIndexValue(index: number): Uint8Array {
  assert(Number.isSafeInteger(index) && index >= 0, `encodeIndexValue: index must be a safe non-negative integer, got ${index}`);
  const bytes = new Uint8Array(8);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(index), false);
  return bytes;
}

/** decodeIndexValue decodes 8 big-endian bytes written by encodeIndexValue. */
export function decodeIndexValue(bytes: Uint8Array): number {
  if (bytes.length !== 8) throw new CodecError('index', `expected 8 bytes, got ${bytes.length}`);
  const value = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(0, false);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new CodecError('index', `${value} exceeds Number.MAX_SAFE_INTEGER`);
  return Number(value);
}

/** encodeChecksummed frames a record as its 4-byte big-endian CRC-32C followed by the payload (used for meta values). */
export function encodeChecksummed(payload: Uint8Array): Uint8Array {
  const framed = new Uint8Array(4 + payload.length);
  new DataView(framed.buffer).setUint32(0, crc32c(payload), false);
  framed.set(payload, 4);
  return framed;
}

/** decodeChecksummed verifies and strips the frame of encodeChecksummed; it returns a copy of the payload. */
export function decodeChecksummed(framed: Uint8Array, record: string): Uint8Array {
  if (framed.length < 4) throw new CodecError(record, `checksummed record of ${framed.length} bytes is truncated`);
  const stored = new DataView(framed.buffer, framed.byteOffset, framed.byteLength).getUint32(0, false);
  const payload = framed.slice(4);
  const computed = crc32c(payload);
  if (stored !== computed) throw new CodecError(record, `crc32c mismatch: stored ${hex32(stored)}, computed ${hex32(computed)}`);
  return payload;
}

function hex32(value: number): string {
  return `0x${value.toString(16).padStart(8, '0')}`;
}

// --- protobufjs plumbing -------------------------------------------------------------------------------------------

interface RecordTypes {
  readonly entry: Type;
  readonly storedEntry: Type;
  readonly hardState: Type;
  readonly snapshotMeta: Type;
  readonly membership: Type;
}

let typesCache: RecordTypes | null = null;

function recordTypes(): RecordTypes {
  typesCache ??= {
    entry: lookupMessage('cairn.peer.v1.Entry'),
    storedEntry: lookupMessage('cairn.peer.v1.StoredEntry'),
    hardState: lookupMessage('cairn.peer.v1.HardState'),
    snapshotMeta: lookupMessage('cairn.peer.v1.SnapshotMeta'),
    membership: lookupMessage('cairn.peer.v1.Membership'),
  };
  return typesCache;
}

/** PlainRecord is a decoded message as protobufjs's toObject returns it, before validation. */
type PlainRecord = Readonly<Record<string, unknown>>;

// uint64 as exact decimal strings (never a rounded number), enums as numbers (unknown values survive to be
// rejected), absent fields absent (so a missing sub-message is visible), repeated fields always arrays.
const conversion: IConversionOptions = { longs: String, enums: Number, defaults: false, arrays: true };

// The encoders assert every value first, so plain objects go to encode() as they are: protobufjs's fromObject
// would only repeat the conversion (it doubled the cost of encoding an entry).
function encodeWith(type: Type, plain: PlainRecord): Uint8Array {
  return encodeReusing(type, plain);
}

function decodeWith(type: Type, record: string, bytes: Uint8Array): PlainRecord {
  let plain: PlainRecord;
  try {
    plain = type.toObject(type.decode(bytes), conversion);
  } catch (error) {
    throw new CodecError(record, `malformed protobuf (${error instanceof Error ? error.message : String(error)})`, { cause: error });
  }
  return plain;
}

/** readUint reads a uint64/uint32 field as a safe integer >= min; an absent field reads as 0. */
function readUint(plain: PlainRecord, field: string, record: string, min: number): number {
  const raw = plain[field];
  let value: number;
  if (raw === undefined) value = 0;
  else if (typeof raw === 'number') value = raw;
  else if (typeof raw === 'string' && /^[0-9]{1,20}$/.test(raw)) value = Number(raw);
  else throw new CodecError(record, `${field} is not an unsigned integer`);
  if (!Number.isSafeInteger(value)) throw new CodecError(record, `${field} ${String(raw)} exceeds Number.MAX_SAFE_INTEGER`);
  if (value < min) throw new CodecError(record, `${field} must be >= ${min}, got ${value}`);
  return value;
}

function readBytes(plain: PlainRecord, field: string, record: string): Uint8Array {
  const raw = plain[field];
  if (raw === undefined) return new Uint8Array(0);
  if (!(raw instanceof Uint8Array)) throw new CodecError(record, `${field} is not bytes`);
  return new Uint8Array(raw);
}

function readString(plain: PlainRecord, field: string, record: string): string {
  const raw = plain[field];
  if (raw === undefined) return '';
  if (typeof raw !== 'string') throw new CodecError(record, `${field} is not a string`);
  return raw;
}

function readMessage(plain: PlainRecord, field: string, record: string): PlainRecord | null {
  const raw = plain[field];
  if (raw === undefined || raw === null) return null;
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new CodecError(record, `${field} is not a message`);
  return raw as PlainRecord;
}

function readEnum(plain: PlainRecord, field: string, record: string): number {
  const raw = plain[field];
  if (raw === undefined) return 0;
  if (typeof raw !== 'number' || !Number.isInteger(raw)) throw new CodecError(record, `${field} is not an enum value`);
  return raw;
}

function assertSafeUint(value: number, what: string, min: number): void {
  assert(Number.isSafeInteger(value) && value >= min, `${what} must be a safe integer >= ${min}, got ${value}`);
}

// --- Membership -----------------------------------------------------------------------------------------------------

function membershipToPlain(membership: Membership): PlainRecord {
  assertMembership(membership);
  return { voters: [...membership.voters], learners: [...membership.learners] };
}

function assertMembership(membership: Membership): void {
  const seen = new Set<NodeId>();
  for (const node of [...membership.voters, ...membership.learners]) {
    assert(node !== '', 'membership: a member id must not be empty');
    assert(!seen.has(node), `membership: member ${node} listed twice`);
    seen.add(node);
  }
}

function readMemberList(plain: PlainRecord, field: string, record: string, seen: Set<string>): NodeId[] {
  const raw = plain[field] ?? [];
  if (!Array.isArray(raw)) throw new CodecError(record, `${field} is not a list`);
  const nodes: NodeId[] = [];
  for (const node of raw) {
    if (typeof node !== 'string' || node === '') throw new CodecError(record, `${field} holds an empty or non-string member id`);
    if (seen.has(node)) throw new CodecError(record, `member ${node} listed twice`);
    seen.add(node);
    nodes.push(node);
  }
  return nodes;
}

function membershipFromPlain(plain: PlainRecord, record: string): Membership {
  const seen = new Set<string>();
  const voters = readMemberList(plain, 'voters', record, seen);
  const learners = readMemberList(plain, 'learners', record, seen);
  return { voters, learners };
}

/** encodeMembership encodes a configuration (voters and learners; ids non-empty and distinct). */
export function encodeMembership(membership: Membership): Uint8Array {
  return encodeWith(recordTypes().membership, membershipToPlain(membership));
}

/** decodeMembership decodes and validates a configuration: member ids non-empty, no id listed twice. */
export function decodeMembership(bytes: Uint8Array): Membership {
  return membershipFromPlain(decodeWith(recordTypes().membership, 'Membership', bytes), 'Membership');
}

// --- Entry ----------------------------------------------------------------------------------------------------------

const entryKind = { normal: 1, noop: 2, membership: 3 } as const;
const changeType = { 'add-learner': 1, promote: 2, remove: 3 } as const;
const changeTypeByNumber: ReadonlyMap<number, MembershipChange['type']> = new Map([
  [1, 'add-learner'],
  [2, 'promote'],
  [3, 'remove'],
]);

/** entryToPlain turns an Entry into the plain object protobufjs encodes (for transports embedding Entry messages). */
export function entryToPlain(entry: Entry): PlainRecord {
  assertSafeUint(entry.index, 'entry index', 1);
  assertSafeUint(entry.term, 'entry term', 1);
  const base = { index: entry.index, term: entry.term, kind: entryKind[entry.kind] };
  switch (entry.kind) {
    case 'normal':
      return { ...base, data: entry.data };
    case 'noop':
      return base;
    case 'membership':
      assert(entry.change.node !== '', 'membership entry: change.node must not be empty');
      assert(changeType[entry.change.type] !== undefined, `membership entry: unknown change type ${String(entry.change.type)}`);
      return { ...base, change: { type: changeType[entry.change.type], node: entry.change.node }, membership: membershipToPlain(entry.membership) };
    default:
      return assertNever(entry, 'entryToPlain: unknown entry kind');
  }
}

/** entryFromPlain validates a decoded Entry message (protobufjs toObject with codec's conversion) into an Entry. */
export function entryFromPlain(plain: PlainRecord, record = 'Entry'): Entry {
  const index = readUint(plain, 'index', record, 1);
  const term = readUint(plain, 'term', record, 1);
  const kind = readEnum(plain, 'kind', record);
  const data = readBytes(plain, 'data', record);
  const change = readMessage(plain, 'change', record);
  if (kind === entryKind.normal) {
    if (change !== null) throw new CodecError(record, `normal entry ${index} carries a membership change`);
    return { kind: 'normal', index, term, data };
  }
  if (kind === entryKind.noop) {
    if (change !== null || data.length > 0) throw new CodecError(record, `no-op entry ${index} carries data or a change`);
    return { kind: 'noop', index, term };
  }
  if (kind === entryKind.membership) {
    if (change === null) throw new CodecError(record, `membership entry ${index} has no change`);
    if (data.length > 0) throw new CodecError(record, `membership entry ${index} carries data`);
    const parsedChange = changeFromPlain(change, index, record);
    const membership = readMessage(plain, 'membership', record);
    if (membership === null) throw new CodecError(record, `membership entry ${index} has no configuration`);
    return { kind: 'membership', index, term, change: parsedChange, membership: membershipFromPlain(membership, record) };
  }
  throw new CodecError(record, `entry ${index} has unknown kind ${kind}`);
}

function changeFromPlain(plain: PlainRecord, index: number, record: string): MembershipChange {
  const type = changeTypeByNumber.get(readEnum(plain, 'type', record));
  if (type === undefined) throw new CodecError(record, `membership entry ${index} has an unknown change type`);
  const node = readString(plain, 'node', record);
  if (node === '') throw new CodecError(record, `membership entry ${index} changes an empty member id`);
  return { type, node };
}

/** encodeEntry encodes a log entry of any kind as a cairn.peer.v1.Entry. */
export function encodeEntry(entry: Entry): Uint8Array {
  return encodeWith(recordTypes().entry, entryToPlain(entry));
}

/** decodeEntry decodes and validates a cairn.peer.v1.Entry; it throws a CodecError for anything invalid. */
export function decodeEntry(bytes: Uint8Array): Entry {
  return entryFromPlain(decodeWith(recordTypes().entry, 'Entry', bytes));
}

/** encodeStoredEntry encodes an entry as written to disk: the encoded Entry with its CRC-32C. */
export function encodeStoredEntry(entry: Entry): Uint8Array {
  const encoded = encodeEntry(entry);
  return encodeWith(recordTypes().storedEntry, { entry: encoded, crc32c: crc32c(encoded) });
}

/** decodeStoredEntry verifies the CRC-32C of a stored entry before decoding the entry it carries. */
export function decodeStoredEntry(bytes: Uint8Array): Entry {
  const plain = decodeWith(recordTypes().storedEntry, 'StoredEntry', bytes);
  const encoded = readBytes(plain, 'entry', 'StoredEntry');
  if (encoded.length === 0) throw new CodecError('StoredEntry', 'entry bytes are missing');
  const stored = readUint(plain, 'crc32c', 'StoredEntry', 0);
  const computed = crc32c(encoded);
  if (stored !== computed) {
    throw new CodecError('StoredEntry', `crc32c mismatch: stored ${hex32(stored)}, computed ${hex32(computed)}`);
  }
  return decodeEntry(encoded);
}

// --- HardState and SnapshotMeta ---------------------------------------------------------------------------------------

/** encodeHardState encodes term, vote (null as the empty string) and commit. */
export function encodeHardState(hardState: HardState): Uint8Array {
  assertSafeUint(hardState.term, 'hard state term', 0);
  assertSafeUint(hardState.commit, 'hard state commit', 0);
  assert(hardState.vote !== '', 'hard state vote: use null for no vote, never the empty string');
  assert(hardState.vote === null || hardState.term > 0, 'hard state: a vote needs a term >= 1');
  const plain = { term: hardState.term, commit: hardState.commit, ...(hardState.vote === null ? {} : { vote: hardState.vote }) };
  return encodeWith(recordTypes().hardState, plain);
}

/** decodeHardState decodes and validates a hard state; a vote requires a term >= 1. */
export function decodeHardState(bytes: Uint8Array): HardState {
  const plain = decodeWith(recordTypes().hardState, 'HardState', bytes);
  const term = readUint(plain, 'term', 'HardState', 0);
  const commit = readUint(plain, 'commit', 'HardState', 0);
  const voteText = readString(plain, 'vote', 'HardState');
  const vote = voteText === '' ? null : voteText;
  if (vote !== null && term === 0) throw new CodecError('HardState', `vote for ${vote} at term 0`);
  return { term, vote, commit };
}

/** encodeSnapshotMeta encodes a snapshot's index, term and membership (index 0 pairs with term 0: the bootstrap). */
export function encodeSnapshotMeta(meta: SnapshotMeta): Uint8Array {
  assertSafeUint(meta.index, 'snapshot index', 0);
  assertSafeUint(meta.term, 'snapshot term', 0);
  assert((meta.index === 0) === (meta.term === 0), `snapshot meta: index ${meta.index} with term ${meta.term}`);
  return encodeWith(recordTypes().snapshotMeta, { index: meta.index, term: meta.term, membership: membershipToPlain(meta.membership) });
}

/** decodeSnapshotMeta decodes and validates snapshot metadata; the membership is required. */
export function decodeSnapshotMeta(bytes: Uint8Array): SnapshotMeta {
  const plain = decodeWith(recordTypes().snapshotMeta, 'SnapshotMeta', bytes);
  const index = readUint(plain, 'index', 'SnapshotMeta', 0);
  const term = readUint(plain, 'term', 'SnapshotMeta', 0);
  if ((index === 0) !== (term === 0)) throw new CodecError('SnapshotMeta', `index ${index} with term ${term}`);
  const membership = readMessage(plain, 'membership', 'SnapshotMeta');
  if (membership === null) throw new CodecError('SnapshotMeta', 'membership is missing');
  return { index, term, membership: membershipFromPlain(membership, 'SnapshotMeta') };
}

/** concatBytes joins byte arrays into one. */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const part of parts) length += part.length;
  const joined = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    joined.set(part, offset);
    offset += part.length;
  }
  return joined;
}
