// Goal: the hand-written InstanceRecord decoder (src/cp/record-reader.ts) reads every stored record exactly as the
// protobufjs path (decodeInstanceValues(decodeMessage('InstanceRecord', bytes), true)) does: the same frozen values,
// the same validation errors, and refuses exactly the bytes that path refuses.
// Method: seeded random records, valid and invalid (clusters and ips that fail validation, empty and multi-byte
// strings, unsorted and repeated-looking metadata, weights and ports at and past their edges, versions from absent
// to past 2^53), encoded by protobufjs and decoded both ways; the same records damaged (bytes flipped, cut short,
// bytes inserted) decoded both ways, which must agree on refusing and on the values read; and hand-made wire forms:
// fields out of order and repeated (the last wins), unknown fields of every wire type and groups, a known field in
// another wire type (skipped), long varints and tags, bad UTF-8, a repeated metadata key.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeInstanceValues, decodeMessage, encodeInstanceValues, encodeMessage, type InstanceValues } from '../../src/cp/commands.ts';
import { readInstanceRecord } from '../../src/cp/record-reader.ts';
import { CairnError } from '../../src/errors.ts';
import { Prng } from '../support/fuzz.ts';

const alphabets: readonly string[] = ['abcxyz019._-:', 'é߿ü', '中文ࠀ￿', '😀𝄞\u{10ffff}'];

function randomString(prng: Prng, maxChars: number, plainShare = 0.6): string {
  const chars = prng.int(maxChars + 1);
  let text = '';
  while (text.length < chars) {
    const alphabet = [...(prng.chance(plainShare) ? (alphabets[0] as string) : prng.pick(alphabets))];
    text += prng.pick(alphabet);
  }
  return text;
}

const clusterChars = [...'abcXYZ019-_'];

function randomValues(prng: Prng): InstanceValues {
  const metadata: Record<string, string> = {};
  const pairs = prng.int(6);
  for (let i = 0; i < pairs; i++) {
    // Numeric keys come first in an object's own key order; a few empty keys and oversized maps fail validation.
    const key = prng.chance(0.2) ? String(prng.int(200)) : prng.chance(0.01) ? '' : randomString(prng, prng.chance(0.1) ? 120 : 12);
    metadata[key] = prng.chance(0.1) ? '' : randomString(prng, prng.chance(0.01) ? 1100 : 20);
  }
  let cluster = '';
  const clusterLength = prng.chance(0.02) ? 0 : prng.int(prng.chance(0.02) ? 80 : 12) + 1;
  for (let i = 0; i < clusterLength; i++) cluster += prng.pick(clusterChars);
  if (prng.chance(0.02)) cluster += prng.pick(['é', ' ', '中']);
  const ip = prng.chance(0.85)
    ? prng.pick([`10.${prng.int(256)}.${prng.int(256)}.${prng.int(256)}`, 'db-1.internal', '::1', randomString(prng, 30, 1)])
    : prng.pick(['256.1.1.1', '', randomString(prng, 30), 'a b']);
  const values = {
    cluster,
    ip,
    port: prng.chance(0.97) ? prng.pick([0, 1, 127, 128, 65535, prng.int(65536)]) : 65536,
    weight: prng.chance(0.97) ? prng.pick([0, -0, 1, 0.5, 10000, 1e-7, prng.next() * 100]) : prng.pick([10000.5, -1]),
    enabled: prng.chance(0.5),
    healthy: prng.chance(0.5),
    metadata,
  };
  if (prng.chance(0.1)) return values;
  return { ...values, version: prng.pick([0, 1, 127, 128, 2 ** 31, 2 ** 32 + 5, Number.MAX_SAFE_INTEGER, prng.chance(0.1) ? 2 ** 60 : 7, prng.int(1000) + 1]) };
}

type Outcome = { readonly ok: true; readonly values: InstanceValues } | { readonly ok: false; readonly error: unknown };

function outcome(decode: () => InstanceValues): Outcome {
  try {
    return { ok: true, values: decode() };
  } catch (error) {
    return { ok: false, error };
  }
}

const viaProtobufjs = (bytes: Uint8Array): Outcome => outcome(() => decodeInstanceValues(decodeMessage('InstanceRecord', bytes), true));
const byHand = (bytes: Uint8Array): Outcome => outcome(() => readInstanceRecord(bytes));

function describe(result: Outcome): string {
  if (result.ok) return JSON.stringify(result.values);
  return result.error instanceof Error ? `${result.error.name}: ${result.error.message}` : String(result.error);
}

test('random records decode to the same frozen values, and fail with the same errors', () => {
  const prng = new Prng(21);
  let valid = 0;
  let invalid = 0;
  for (let i = 0; i < 4000; i++) {
    const bytes = encodeMessage('InstanceRecord', encodeInstanceValues(randomValues(prng)));
    const expected = viaProtobufjs(bytes);
    const actual = byHand(bytes);
    if (expected.ok) {
      valid++;
      assert.ok(actual.ok, `record ${i}: the hand decoder refused what protobufjs reads: ${describe(actual)}`);
      assert.deepStrictEqual(actual.values, expected.values, `record ${i}`);
      assert.deepStrictEqual(Object.keys(actual.values), Object.keys(expected.values), `record ${i}: field order`);
      assert.deepStrictEqual(Object.keys(actual.values.metadata), Object.keys(expected.values.metadata), `record ${i}: metadata order`);
      assert.ok(Object.isFrozen(actual.values) && Object.isFrozen(actual.values.metadata), `record ${i}: frozen`);
    } else {
      invalid++;
      assert.ok(!actual.ok, `record ${i}: the hand decoder accepted what protobufjs refuses (${describe(expected)})`);
      // Both run the same validators in the same order, so a record that decodes but is invalid fails alike.
      assert.ok(actual.error instanceof CairnError && expected.error instanceof CairnError, `record ${i}: ${describe(actual)} / ${describe(expected)}`);
      assert.equal(actual.error.code, expected.error.code, `record ${i}`);
      // The protobufjs path says "malformed command" for a record too.
      assert.equal(actual.error.message, expected.error.message.replace('malformed command', 'malformed record'), `record ${i}`);
    }
  }
  // The generator must exercise both sides.
  assert.ok(valid > 2000 && invalid > 400, `valid ${valid}, invalid ${invalid}`);
});

test('damaged records: refused by both decoders or read alike by both', () => {
  const prng = new Prng(22);
  let damaged = 0;
  let refusedByBoth = 0;
  let readAlike = 0;
  for (let i = 0; i < 6000; i++) {
    let values = randomValues(prng);
    // Damage valid records: an invalid one fails validation either way, which the first test covers.
    while (!viaProtobufjs(encodeMessage('InstanceRecord', encodeInstanceValues(values))).ok) values = randomValues(prng);
    const bytes = Buffer.from(encodeMessage('InstanceRecord', encodeInstanceValues(values)));
    let broken: Buffer;
    const kind = prng.int(3);
    if (kind === 0) {
      broken = Buffer.from(bytes);
      const flips = prng.int(3) + 1;
      for (let f = 0; f < flips; f++) broken[prng.int(broken.length)] = prng.int(256);
    } else if (kind === 1) broken = bytes.subarray(0, prng.int(bytes.length));
    else {
      const at = prng.int(bytes.length + 1);
      broken = Buffer.concat([bytes.subarray(0, at), Buffer.from([prng.int(256), prng.int(256)]), bytes.subarray(at)]);
    }
    damaged++;
    const expected = viaProtobufjs(broken);
    const actual = byHand(broken);
    if (actual.ok) {
      assert.ok(expected.ok, `damaged ${i} (${broken.toString('hex')}): accepted by hand, refused by protobufjs (${describe(expected)})`);
      assert.deepStrictEqual(actual.values, expected.values, `damaged ${i} (${broken.toString('hex')})`);
      readAlike++;
    } else {
      assert.ok(!expected.ok, `damaged ${i} (${broken.toString('hex')}): refused by hand only (${describe(actual)})`);
      refusedByBoth++;
    }
  }
  assert.ok(refusedByBoth > 1000 && readAlike > 300, `damaged ${damaged}, refused by both ${refusedByBoth}, read alike ${readAlike}`);
});

/** field builds one field's bytes: a tag and a payload. */
function varint(value: bigint): number[] {
  const out: number[] = [];
  let rest = value;
  while (rest >= 0x80n) {
    out.push(Number(rest & 0x7fn) | 0x80);
    rest >>= 7n;
  }
  out.push(Number(rest));
  return out;
}
function text(field: number, value: string | Uint8Array): number[] {
  const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  return [...varint(BigInt((field << 3) | 2)), ...varint(BigInt(bytes.length)), ...bytes];
}
function number(field: number, value: bigint): number[] {
  return [...varint(BigInt(field << 3)), ...varint(value)];
}
function double(field: number, value: number): number[] {
  const bytes = Buffer.alloc(8);
  bytes.writeDoubleLE(value);
  return [...varint(BigInt((field << 3) | 1)), ...bytes];
}
function pair(key: string, value: string): number[] {
  return text(7, Uint8Array.from([...text(1, key), ...text(2, value)]));
}

function same(bytes: number[]): InstanceValues {
  const record = Uint8Array.from(bytes);
  const expected = viaProtobufjs(record);
  const actual = byHand(record);
  assert.ok(expected.ok, `protobufjs refused: ${describe(expected)}`);
  assert.ok(actual.ok, `hand decoder refused: ${describe(actual)}`);
  assert.deepStrictEqual(actual.values, expected.values);
  return actual.values;
}

test('wire forms: any field order, the last of a repeated singular field, unknown fields, long varints', () => {
  const values = same([
    ...pair('zone', 'b'), ...number(8, 7n), ...text(2, '10.0.0.9'), ...number(3, 80n), ...text(1, 'ONE'), ...text(1, 'TWO'),
    ...double(4, 2.5), ...number(6, 1n), ...pair('app', 'a'),
    // Unknown fields: varint, fixed64, length-delimited, fixed32.
    ...number(20, 5n), ...double(21, 1), ...text(22, 'x'), ...varint(BigInt((23 << 3) | 5)), 1, 2, 3, 4,
    ...number(3, 81n),
  ]);
  assert.equal(values.cluster, 'TWO');
  assert.equal(values.port, 81);
  assert.equal(values.version, 7);
  assert.deepStrictEqual(Object.keys(values.metadata), ['app', 'zone']);
  // A port varint past 32 bits keeps its low 32 (protobufjs's uint32); a bool with only high bits set is true.
  assert.equal(same([...text(1, 'C'), ...text(2, 'h'), ...number(3, (1n << 35n) + 443n)]).port, 443);
  assert.equal(same([...text(1, 'C'), ...text(2, 'h'), ...number(3, 1n), ...number(5, 1n << 40n)]).enabled, true);
  // A ten-byte varint, and a version of 0 or absent, which reads as 1.
  assert.equal(same([...text(1, 'C'), ...text(2, 'h'), ...number(3, 1n), ...number(8, (1n << 52n) + 3n)]).version, 2 ** 52 + 3);
  assert.equal(same([...text(1, 'C'), ...text(2, 'h'), ...number(3, 1n), ...number(8, 0n)]).version, 1);
  assert.equal(same([...text(1, 'C'), ...text(2, 'h'), ...number(3, 1n)]).version, 1);
});

test('refusals: bad UTF-8, a repeated metadata key, an unsafe version, a truncated field, a wrong wire type', () => {
  const base = [...text(1, 'C'), ...text(2, '10.0.0.1'), ...number(3, 80n)];
  const refused = (bytes: number[], pattern: RegExp): void => {
    const record = Uint8Array.from(bytes);
    assert.equal(viaProtobufjs(record).ok, false, 'protobufjs refuses it too');
    const actual = byHand(record);
    assert.ok(!actual.ok, 'refused by hand');
    assert.match(describe(actual), pattern);
  };
  refused([...base, ...text(2, Uint8Array.from([0x31, 0xff, 0x32]))], /TypeError|encoded data|utf-?8/i);
  refused([...base, ...pair('k', 'a'), ...pair('k', 'b')], /repeats key 'k'/);
  refused([...base, ...number(8, 1n << 60n)], /version/);
  refused([...base, ...text(7, Uint8Array.from([0x0a, 0x05, 0x61]))], /runs past the end/);
  refused([...base, 0x80], /varint runs past the end/);
  refused([...base, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0x00], /invalid tag encoding/);
  refused([...base, 0x3a, 0xff, 0xff, 0xff, 0xff, 0x0f], /invalid length encoding/);
  refused([...base, ...number(0, 1n)], /field number 0/);
  refused([...base, 0x0c], /invalid wire type 4/);
  refused([...base, ...varint(BigInt((30 << 3) | 3)), ...number(1, 1n), ...varint(BigInt((31 << 3) | 4))], /invalid end group tag/);
});

test('a known field in another wire type, and groups, are skipped as protobufjs skips them', () => {
  // ip (2) as a varint and port (3) as a string: both skipped, so the earlier ip and the later port stand.
  const values = same([
    ...text(1, 'C'), ...text(2, '10.0.0.1'), ...number(2, 5n), ...text(3, 'x'), ...number(3, 81n),
    ...varint(BigInt((30 << 3) | 3)), ...number(1, 1n), ...text(2, 'inside a group'), ...varint(BigInt((30 << 3) | 4)),
    ...double(5, 1), ...pair('k', 'v'),
  ]);
  assert.equal(values.ip, '10.0.0.1');
  assert.equal(values.port, 81);
  assert.equal(values.enabled, false);
  assert.deepStrictEqual(values.metadata, { k: 'v' });
});
