// Goal: prove that the shared writer of src/replica/proto.ts (encodeReusing, encodeWithWriter) gives exactly the
// bytes of a fresh protobufjs writer, whatever came before it on the same writer: messages of growing and shrinking
// sizes, one above the reuse bound (the writer is dropped), and an encode that threw half way (a fork left open).
// Method: random InstanceRecord and Result messages from a seeded generator, each encoded both ways and compared;
// the results are also decoded back; returned buffers must not alias each other (a later encode must not change an
// earlier result).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { encodeReusing, encodeWithWriter, lookupMessage, readFlatStrictUtf8 } from '../../src/replica/proto.ts';
import { Prng } from '../../src/raft/prng.ts';
import protobuf from 'protobufjs';

function protobufWriterOf(write: (writer: protobuf.Writer) => void): Uint8Array {
  const writer = protobuf.Writer.create();
  write(writer);
  return writer.finish();
}

const instanceRecord = lookupMessage('cairn.cp.v1.InstanceRecord');
const result = lookupMessage('cairn.cp.v1.Result');

function randomRecord(prng: Prng, labels: number, valueChars: number): Record<string, unknown> {
  const metadata: Array<{ key: string; value: string }> = [];
  for (let i = 0; i < labels; i++) metadata.push({ key: `k${i}`, value: 'v'.repeat(prng.nextInt(valueChars + 1)) + 'é' });
  return {
    cluster: 'DEFAULT', ip: `10.0.${prng.nextInt(256)}.${prng.nextInt(256)}`, port: 1 + prng.nextInt(65535), weight: prng.nextInt(100) / 7,
    enabled: prng.nextInt(2) === 1, healthy: prng.nextInt(2) === 1, metadata, version: prng.nextInt(1000),
  };
}

test('encodeReusing gives the bytes of a fresh writer for messages of every size, in any order', () => {
  const prng = new Prng(7);
  const earlier: Array<{ bytes: Uint8Array; copy: Uint8Array }> = [];
  for (let i = 0; i < 400; i++) {
    // Mostly small, sometimes ~100 KiB (above the 64 KiB bound, so the writer is replaced), then small again.
    const big = prng.nextInt(40) === 0;
    const record = randomRecord(prng, big ? 200 : prng.nextInt(12), big ? 500 : 40);
    const plain = prng.nextInt(2) === 0 ? record : { revision: prng.nextInt(1 << 20), key: { namespace: 'public', group: 'G', service: `s${i}` }, instance: record };
    const type = plain === record ? instanceRecord : result;
    const reused = encodeReusing(type, plain);
    const fresh = type.encode(plain).finish();
    assert.deepEqual(Buffer.from(reused), Buffer.from(fresh), `message ${i} (${fresh.length} bytes)`);
    assert.deepEqual(type.toObject(type.decode(reused)), type.toObject(type.decode(fresh)));
    earlier.push({ bytes: reused, copy: Uint8Array.prototype.slice.call(reused) });
  }
  for (const [i, kept] of earlier.entries()) assert.deepEqual(kept.bytes, kept.copy, `result ${i} changed by a later encode`);
});

test('a write that throws half way (a fork left open) does not spoil the next message', () => {
  assert.throws(() => encodeWithWriter((writer) => {
    writer.uint32(0x0a).fork().string('unfinished');
    throw new Error('boom');
  }), /boom/);
  // An encode of an invalid message also throws inside protobufjs, mid-message.
  assert.throws(() => encodeReusing(instanceRecord, { cluster: 'x', metadata: [null] }));
  const plain = randomRecord(new Prng(3), 5, 30);
  assert.deepEqual(Buffer.from(encodeReusing(instanceRecord, plain)), Buffer.from(instanceRecord.encode(plain).finish()));
  const framed = encodeWithWriter((writer) => writer.uint32(0x0a).string('ab').uint32(0x12).fork().uint32(8).uint32(1).ldelim());
  assert.deepEqual([...framed], [0x0a, 2, 0x61, 0x62, 0x12, 2, 8, 1]);
});

test('a write that encodes another message through the shared writer (nested) gets the same bytes for both', () => {
  const inner = randomRecord(new Prng(11), 4, 20);
  let nested: Uint8Array = new Uint8Array(0);
  const outer = encodeWithWriter((writer) => {
    writer.uint32(0x0a).string('before');
    nested = encodeReusing(instanceRecord, inner);
    writer.uint32(0x12).bytes(nested);
  });
  assert.deepEqual(Buffer.from(nested), Buffer.from(instanceRecord.encode(inner).finish()));
  const expected = protobufWriterOf((writer) => writer.uint32(0x0a).string('before').uint32(0x12).bytes(instanceRecord.encode(inner).finish()));
  assert.deepEqual(Buffer.from(outer), Buffer.from(expected));
});

// --- Flat strings (proto.ts replaces protobufjs 8's Reader#stringVerify) ---

/** protobufjs's own strict reader, still exported as util.utf8.readStrict: the reference the replacement must match. */
const referenceReadStrict = (protobuf.util as unknown as { utf8: { readStrict(buf: Uint8Array, start: number, end: number): string } }).utf8.readStrict;

/** randomUtf8ish returns bytes that are mostly ASCII, sometimes valid multi-byte UTF-8, sometimes broken UTF-8. */
function randomUtf8ish(prng: Prng, length: number): Uint8Array {
  const pieces: number[] = [];
  const broken = [[0x80], [0xc0, 0x80], [0xe0, 0x80, 0x80], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xc3], [0xe2, 0x82], [0xff], [0xef, 0xbb, 0xbf]];
  const valid = [[0xc3, 0xa9], [0xe2, 0x82, 0xac], [0xf0, 0x9f, 0x98, 0x80], [0x00], [0x7f]];
  while (pieces.length < length) {
    const roll = prng.nextInt(100);
    if (roll < 3) pieces.push(...(broken[prng.nextInt(broken.length)] as number[]));
    else if (roll < 12) pieces.push(...(valid[prng.nextInt(valid.length)] as number[]));
    else pieces.push(0x20 + prng.nextInt(0x5f));
  }
  return Uint8Array.from(pieces);
}

function outcome(read: () => string): { ok: true; text: string } | { ok: false; kind: string } {
  try {
    return { ok: true, text: read() };
  } catch (error) {
    return { ok: false, kind: error instanceof Error ? error.constructor.name : typeof error };
  }
}

test('readFlatStrictUtf8 accepts and rejects exactly what protobufjs readStrict does, with the same text', () => {
  const prng = new Prng(11);
  let rejected = 0;
  for (let i = 0; i < 4000; i++) {
    const bytes = randomUtf8ish(prng, prng.nextInt(i % 10 === 0 ? 9000 : 140));
    const start = prng.nextInt(Math.min(4, bytes.length + 1));
    const end = start + prng.nextInt(bytes.length - start + 1);
    const ours = outcome(() => readFlatStrictUtf8(bytes, start, end));
    const theirs = outcome(() => referenceReadStrict(bytes, start, end));
    assert.deepEqual(ours, theirs, `bytes ${Buffer.from(bytes.subarray(start, end)).toString('hex')}`);
    if (!theirs.ok) rejected += 1;
  }
  // The generator must exercise both sides, or the comparison proves little.
  assert.ok(rejected > 200 && rejected < 3800, `rejected ${rejected} of 4000`);
});

test('decoding through protobufjs uses the flat reader: strings of every length round-trip, bad UTF-8 and a short buffer are refused', () => {
  const pair = lookupMessage('cairn.cp.v1.Pair');
  assert.equal((protobuf.Reader.prototype as unknown as { stringVerify: { name: string } }).stringVerify.name, 'stringVerifyFlat');
  const prng = new Prng(12);
  for (let length = 0; length < 140; length++) {
    const key = 'k'.repeat(length);
    const value = Array.from({ length }, () => String.fromCharCode(0x20 + prng.nextInt(0x5f))).join('') + (length % 3 === 0 ? 'é😀' : '');
    const bytes = pair.encode({ key, value }).finish();
    assert.deepEqual(pair.toObject(pair.decode(bytes)), length === 0 ? (value === '' ? {} : { value }) : { key, value });
  }
  // Field 1 (key), length 2, bytes C3 28: not UTF-8.
  assert.throws(() => pair.decode(Uint8Array.from([0x0a, 0x02, 0xc3, 0x28])), TypeError);
  // Field 1, length 5, only 2 bytes follow: protobufjs's own message.
  assert.throws(() => pair.decode(Uint8Array.from([0x0a, 0x05, 0x61, 0x62])), { name: 'RangeError', message: 'index out of range: 2 + 5 > 4' });
});
