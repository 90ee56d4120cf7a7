// Goal: pin the byte formats of Raft's durable records (proto/cairn/peer/v1/log.proto) and prove that every decoder
// refuses what the Raft core must never see: truncated or malformed bytes, unknown kinds and change types, indexes
// and terms beyond Number.MAX_SAFE_INTEGER (never rounded), missing required parts and checksum mismatches.
// Method: round trips of every record kind through encode/decode; published CRC-32C check values (RFC 3720 B.4);
// invalid records built directly with the protobufjs types, bypassing the encoders' assertions, each expected to
// throw a CodecError naming the record; every strict prefix of a stored entry must fail to decode.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import type { Entry, HardState, Membership, SnapshotMeta } from '../../src/raft/types.ts';
import { AssertionError } from '../../src/assert.ts';
import { isCairnError } from '../../src/errors.ts';
import {
  CodecError, crc32c, crc32cOfText, decodeChecksummed, decodeEntry, decodeHardState, decodeIndexValue, decodeMembership,
  decodeSnapshotMeta, decodeStoredEntry, encodeChecksummed, encodeEntry, encodeHardState, encodeIndexValue,
  encodeMembership, encodeSnapshotMeta, encodeStoredEntry, entryFromPlain, entryToPlain, indexKey, parseIndexKey,
  storageCorruption,
} from '../../src/replica/codec.ts';
import { lookupMessage } from '../../src/replica/proto.ts';

const bytes = (...values: number[]): Uint8Array => new Uint8Array(values);
const text = (value: string): Uint8Array => new TextEncoder().encode(value);

/** raw encodes a plain object with a log.proto type directly, so invalid records can be built. */
function raw(type: string, plain: Record<string, unknown>): Uint8Array {
  const messageType = lookupMessage(`cairn.peer.v1.${type}`);
  return messageType.encode(messageType.fromObject(plain)).finish();
}

function assertCodecError(decode: () => unknown, record: string, reason: RegExp): void {
  assert.throws(decode, (error: unknown) => {
    assert.ok(error instanceof CodecError, `expected a CodecError, got ${String(error)}`);
    assert.equal(error.record, record);
    assert.match(error.reason, reason);
    return true;
  });
}

const entries: readonly Entry[] = [
  { kind: 'normal', index: 1, term: 1, data: text('register a.b.c 10.0.0.1:8080') },
  { kind: 'normal', index: 2, term: 1, data: new Uint8Array(0) },
  { kind: 'noop', index: 3, term: 2 },
  { kind: 'membership', index: 4, term: 2, change: { type: 'add-learner', node: '10.0.0.4:8848' }, membership: { voters: ['10.0.0.1:8848'], learners: ['10.0.0.4:8848'] } },
  { kind: 'membership', index: 5, term: 2, change: { type: 'promote', node: '10.0.0.4:8848' }, membership: { voters: ['10.0.0.1:8848', '10.0.0.4:8848'], learners: [] } },
  { kind: 'membership', index: 6, term: 3, change: { type: 'remove', node: '10.0.0.1:8848' }, membership: { voters: ['10.0.0.4:8848'], learners: [] } },
  { kind: 'normal', index: Number.MAX_SAFE_INTEGER, term: Number.MAX_SAFE_INTEGER, data: bytes(0, 255, 1) },
];

describe('CRC-32C', () => {
  test('matches the published check values', () => {
    // Reference: RFC 3720 (iSCSI) appendix B.4, and the CRC catalogue's check value for "123456789".
    const incrementing = Uint8Array.from({ length: 32 }, (_, i) => i);
    const table: ReadonlyArray<readonly [string, Uint8Array, number]> = [
      ['empty', new Uint8Array(0), 0x00000000],
      ['"123456789"', text('123456789'), 0xe3069283],
      ['32 zero bytes', new Uint8Array(32), 0x8a9136aa],
      ['32 0xff bytes', new Uint8Array(32).fill(0xff), 0x62a8ab43],
      ['0..31', incrementing, 0x46dd794e],
      ['31..0', incrementing.slice().reverse(), 0x113fdb5c],
    ];
    for (const [name, input, expected] of table) assert.equal(crc32c(input), expected, name);
  });

  test('eight bytes at a time (slicing-by-8) equals the bit-by-bit definition at every length and alignment', () => {
    const bitwise = (input: Uint8Array): number => {
      let crc = 0xffffffff;
      for (const byte of input) {
        crc ^= byte;
        for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
      }
      return (crc ^ 0xffffffff) >>> 0;
    };
    const source = Uint8Array.from({ length: 300 }, (_, i) => (i * 167 + 13) & 0xff);
    for (let offset = 0; offset < 9; offset++) {
      for (let length = 0; length <= 70; length++) {
        const input = source.subarray(offset, offset + length);
        assert.equal(crc32c(input), bitwise(input), `offset ${offset} length ${length}`);
      }
    }
  });

  test('a checksum continued over pieces equals the checksum of the whole, wherever the pieces split', () => {
    const source = Uint8Array.from({ length: 200 }, (_, i) => (i * 89 + 7) & 0xff);
    for (let cut = 0; cut <= source.length; cut += 13) {
      for (let second = cut; second <= source.length; second += 29) {
        const continued = crc32c(source.subarray(second), crc32c(source.subarray(cut, second), crc32c(source.subarray(0, cut))));
        assert.equal(continued, crc32c(source), `cuts ${cut} and ${second}`);
      }
    }
  });
  test('crc32cOfText equals crc32c of the UTF-8 bytes, ASCII or not, fresh or continued', () => {
    const texts = ['', 'a', 'state key\0public\0DEFAULT_GROUP', 'é', 'ins\0中文\0😀', 'x'.repeat(300), 'ascii then é at the end'];
    for (const text of texts) {
      const bytes = new TextEncoder().encode(text);
      assert.equal(crc32cOfText(text), crc32c(bytes), JSON.stringify(text));
      assert.equal(crc32cOfText(text, 0x12345678), crc32c(bytes, 0x12345678), `${JSON.stringify(text)} continued`);
    }
  });
});

describe('entries', () => {
  test('every kind round-trips, plain and stored, and decoded bytes are fresh copies', () => {
    for (const entry of entries) {
      assert.deepEqual(decodeEntry(encodeEntry(entry)), entry);
      assert.deepEqual(decodeStoredEntry(encodeStoredEntry(entry)), entry);
    }
    const encoded = encodeEntry({ kind: 'normal', index: 7, term: 1, data: bytes(1, 2, 3) });
    const decoded = decodeEntry(encoded);
    encoded.fill(0);
    assert.ok(decoded.kind === 'normal');
    assert.deepEqual(decoded.data, bytes(1, 2, 3));
    assert.equal(Object.getPrototypeOf(decoded.data), Uint8Array.prototype, 'a plain Uint8Array, not a Buffer view');
  });

  test('entryToPlain and entryFromPlain round-trip through the Entry type (the transport embeds Entry messages)', () => {
    const type = lookupMessage('cairn.peer.v1.Entry');
    for (const entry of entries) {
      const message = type.decode(type.encode(type.fromObject(entryToPlain(entry))).finish());
      assert.deepEqual(entryFromPlain(type.toObject(message, { longs: String, enums: Number, arrays: true })), entry);
    }
  });

  test('invalid entries are refused with a reason', () => {
    const table: ReadonlyArray<readonly [string, Uint8Array, RegExp]> = [
      ['kind unknown', raw('Entry', { index: 1, term: 1, kind: 9 }), /unknown kind 9/],
      ['kind unspecified', raw('Entry', { index: 1, term: 1, kind: 0 }), /unknown kind 0/],
      ['index 0', raw('Entry', { index: 0, term: 1, kind: 2 }), /index must be >= 1/],
      ['term 0', raw('Entry', { index: 1, term: 0, kind: 2 }), /term must be >= 1/],
      ['index 2^53', raw('Entry', { index: '9007199254740992', term: 1, kind: 2 }), /index 9007199254740992 exceeds/],
      ['index 2^64-1', raw('Entry', { index: '18446744073709551615', term: 1, kind: 2 }), /index .* exceeds/],
      ['term 2^53+1', raw('Entry', { index: 1, term: '9007199254740993', kind: 2 }), /term .* exceeds/],
      ['normal with a change', raw('Entry', { index: 1, term: 1, kind: 1, change: { type: 1, node: 'n' } }), /carries a membership change/],
      ['noop with data', raw('Entry', { index: 1, term: 1, kind: 2, data: bytes(1) }), /carries data or a change/],
      ['membership without change', raw('Entry', { index: 1, term: 1, kind: 3 }), /has no change/],
      ['membership with data', raw('Entry', { index: 1, term: 1, kind: 3, data: bytes(1), change: { type: 1, node: 'n' } }), /carries data/],
      ['change with empty node', raw('Entry', { index: 1, term: 1, kind: 3, change: { type: 1, node: '' } }), /empty member id/],
      ['change type unspecified', raw('Entry', { index: 1, term: 1, kind: 3, change: { type: 0, node: 'n' } }), /unknown change type/],
      ['change type unknown', raw('Entry', { index: 1, term: 1, kind: 3, change: { type: 7, node: 'n' } }), /unknown change type/],
      ['membership without its configuration', raw('Entry', { index: 1, term: 1, kind: 3, change: { type: 1, node: 'n' } }), /has no configuration/],
      ['garbage', bytes(0xff, 0xff, 0xff, 0xff), /malformed protobuf/],
      ['empty', new Uint8Array(0), /index must be >= 1/],
    ];
    for (const [name, input, reason] of table) {
      assert.throws(() => decodeEntry(input), (error: unknown) => error instanceof CodecError && reason.test(error.reason), name);
    }
  });

  test('a truncated entry is refused', () => {
    const encoded = encodeEntry({ kind: 'normal', index: 300, term: 2, data: text('some command bytes') });
    assertCodecError(() => decodeEntry(encoded.subarray(0, encoded.length - 1)), 'Entry', /malformed protobuf/);
  });

  test('encoders assert on values the core can never produce', () => {
    const invalid: readonly Entry[] = [
      { kind: 'noop', index: 0, term: 1 },
      { kind: 'noop', index: 1, term: 0 },
      { kind: 'noop', index: 1.5, term: 1 },
      { kind: 'noop', index: Number.MAX_SAFE_INTEGER + 1, term: 1 },
      { kind: 'membership', index: 1, term: 1, change: { type: 'promote', node: '' }, membership: { voters: ['a'], learners: [] } },
    ];
    for (const entry of invalid) assert.throws(() => encodeEntry(entry), AssertionError, JSON.stringify(entry));
  });
});

describe('stored entries', () => {
  const stored = encodeStoredEntry({ kind: 'normal', index: 42, term: 3, data: text('a command of some length') });

  test('a flipped bit anywhere in the entry is a checksum mismatch', () => {
    const inner = decodeStoredEntryField(stored);
    for (let offset = 0; offset < inner.length; offset++) {
      const flipped = encodeRawStored(inner.map((b, i) => (i === offset ? b ^ 0x01 : b)), crc32c(inner));
      assertCodecError(() => decodeStoredEntry(flipped), 'StoredEntry', /crc32c mismatch/);
    }
  });

  test('a wrong checksum is refused, and a matching checksum of an invalid entry still fails validation', () => {
    const inner = decodeStoredEntryField(stored);
    assertCodecError(() => decodeStoredEntry(encodeRawStored(inner, (crc32c(inner) + 1) >>> 0)), 'StoredEntry', /crc32c mismatch: stored 0x[0-9a-f]{8}, computed/);
    const badKind = raw('Entry', { index: 1, term: 1, kind: 9 });
    assertCodecError(() => decodeStoredEntry(encodeRawStored(badKind, crc32c(badKind))), 'Entry', /unknown kind/);
    assertCodecError(() => decodeStoredEntry(raw('StoredEntry', { crc32c: 0 })), 'StoredEntry', /entry bytes are missing/);
  });

  test('every strict prefix of a stored entry is refused', () => {
    for (let length = 0; length < stored.length; length++) {
      assert.throws(() => decodeStoredEntry(stored.subarray(0, length)), CodecError, `prefix of ${length} bytes`);
    }
  });
});

function decodeStoredEntryField(stored: Uint8Array): Uint8Array {
  const type = lookupMessage('cairn.peer.v1.StoredEntry');
  const plain = type.toObject(type.decode(stored));
  const inner: unknown = plain['entry'];
  assert.ok(inner instanceof Uint8Array);
  return new Uint8Array(inner);
}

function encodeRawStored(entry: Uint8Array, checksum: number): Uint8Array {
  return raw('StoredEntry', { entry, crc32c: checksum });
}

describe('hard state, snapshot meta and membership', () => {
  test('round trips', () => {
    const hardStates: readonly HardState[] = [
      { term: 0, vote: null, commit: 0 },
      { term: 5, vote: '10.0.0.2:8848', commit: 17 },
      { term: Number.MAX_SAFE_INTEGER, vote: null, commit: Number.MAX_SAFE_INTEGER },
    ];
    for (const hardState of hardStates) assert.deepEqual(decodeHardState(encodeHardState(hardState)), hardState);
    const memberships: readonly Membership[] = [
      { voters: [], learners: [] },
      { voters: ['a:1', 'b:2', 'c:3'], learners: ['d:4'] },
    ];
    for (const membership of memberships) assert.deepEqual(decodeMembership(encodeMembership(membership)), membership);
    const metas: readonly SnapshotMeta[] = [
      { index: 0, term: 0, membership: { voters: ['a:1'], learners: [] } },
      { index: 1000, term: 7, membership: { voters: ['a:1', 'b:2', 'c:3'], learners: ['d:4'] } },
      { index: 9, term: 2, membership: { voters: [], learners: [] } },
    ];
    for (const meta of metas) assert.deepEqual(decodeSnapshotMeta(encodeSnapshotMeta(meta)), meta);
  });

  test('invalid records are refused with a reason', () => {
    assertCodecError(() => decodeHardState(raw('HardState', { term: 0, vote: 'a:1' })), 'HardState', /vote for a:1 at term 0/);
    assertCodecError(() => decodeHardState(raw('HardState', { term: 1, commit: '18446744073709551615' })), 'HardState', /commit .* exceeds/);
    assertCodecError(() => decodeHardState(bytes(0x08)), 'HardState', /malformed protobuf/);
    assertCodecError(() => decodeSnapshotMeta(raw('SnapshotMeta', { index: 3, term: 1 })), 'SnapshotMeta', /membership is missing/);
    assertCodecError(() => decodeSnapshotMeta(raw('SnapshotMeta', { index: 3, term: 0, membership: {} })), 'SnapshotMeta', /index 3 with term 0/);
    assertCodecError(() => decodeSnapshotMeta(raw('SnapshotMeta', { index: 0, term: 2, membership: {} })), 'SnapshotMeta', /index 0 with term 2/);
    assertCodecError(() => decodeSnapshotMeta(raw('SnapshotMeta', { index: 2, term: 1, membership: { voters: ['a', ''] } })), 'SnapshotMeta', /empty/);
    assertCodecError(() => decodeMembership(raw('Membership', { voters: ['a', 'b'], learners: ['a'] })), 'Membership', /member a listed twice/);
    assertCodecError(() => decodeMembership(raw('Membership', { voters: ['a', 'a'] })), 'Membership', /listed twice/);
  });

  test('encoders assert on impossible values', () => {
    assert.throws(() => encodeHardState({ term: 1, vote: '', commit: 0 }), AssertionError);
    assert.throws(() => encodeHardState({ term: 0, vote: 'a', commit: 0 }), AssertionError);
    assert.throws(() => encodeHardState({ term: -1, vote: null, commit: 0 }), AssertionError);
    assert.throws(() => encodeSnapshotMeta({ index: 1, term: 0, membership: { voters: [], learners: [] } }), AssertionError);
    assert.throws(() => encodeMembership({ voters: ['a'], learners: ['a'] }), AssertionError);
  });
});

describe('keys and fixed-width values', () => {
  test('indexKey sorts byte-wise as the indexes sort numerically, and parseIndexKey inverts it', () => {
    const indexes = [0, 1, 9, 10, 15, 16, 255, 256, 4095, 65_536, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 3, Number.MAX_SAFE_INTEGER];
    const keys = indexes.map(indexKey);
    assert.deepEqual([...keys].sort(), keys, 'lexicographic order is numeric order');
    for (const key of keys) assert.match(key, /^[0-9a-f]{16}$/);
    assert.deepEqual(keys.map(parseIndexKey), indexes);
    assert.equal(indexKey(0x0102030405), '0000000102030405', 'the 8-byte big-endian index, in hex');
  });

  test('parseIndexKey refuses what indexKey cannot produce', () => {
    for (const key of ['', '1', '000000000000000G', '000000000000000A', '00000000000000001', 'ffffffffffffffff', '0020000000000000']) {
      assert.throws(() => parseIndexKey(key), CodecError, JSON.stringify(key));
    }
    assert.throws(() => indexKey(-1), AssertionError);
    assert.throws(() => indexKey(Number.MAX_SAFE_INTEGER + 1), AssertionError);
  });

  test('index values are 8 bytes big-endian and refuse oversized numbers', () => {
    assert.deepEqual(encodeIndexValue(258), bytes(0, 0, 0, 0, 0, 0, 1, 2));
    for (const index of [0, 1, 2 ** 32, Number.MAX_SAFE_INTEGER]) assert.equal(decodeIndexValue(encodeIndexValue(index)), index);
    assertCodecError(() => decodeIndexValue(bytes(0, 0x20, 0, 0, 0, 0, 0, 0)), 'index', /exceeds/);
    assertCodecError(() => decodeIndexValue(bytes(1, 2, 3)), 'index', /expected 8 bytes/);
  });

  test('checksummed frames round-trip and detect damage', () => {
    const payload = text('cluster-7f3a');
    const framed = encodeChecksummed(payload);
    assert.deepEqual(decodeChecksummed(framed, 'meta!cluster-id'), payload);
    const damaged = framed.slice();
    damaged[6] = (damaged[6] ?? 0) ^ 0x80;
    assertCodecError(() => decodeChecksummed(damaged, 'meta!cluster-id'), 'meta!cluster-id', /crc32c mismatch/);
    assertCodecError(() => decodeChecksummed(bytes(1, 2, 3), 'meta!applied'), 'meta!applied', /truncated/);
  });

  test('storageCorruption wraps a codec failure as CAIRN_STORAGE_CORRUPT naming where', () => {
    const cause = new CodecError('StoredEntry', 'crc32c mismatch');
    const error = storageCorruption('log entry 12', cause, { index: 12 });
    assert.ok(isCairnError(error, 'CAIRN_STORAGE_CORRUPT'));
    assert.match(error.message, /log entry 12: cannot decode StoredEntry: crc32c mismatch/);
    assert.deepEqual(error.details, { index: 12 });
    assert.equal(error.cause, cause);
    assert.equal(error.retryable, false);
  });
});
