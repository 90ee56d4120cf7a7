// Goal: the hand-written snapshot encoder (src/cp/snapshot-writer.ts) writes exactly the bytes protobufjs writes for
// the same InstanceRecord and RememberedRequest messages, so snapshots stay byte-identical across members and
// versions, and its pieces, views of shared slabs, never overwrite one another.
// Method: seeded random records (ASCII, two-, three- and four-byte UTF-8, strings on both sides of the writer's
// short-string bound, proto3 defaults that are not written (empty strings and bytes, 0, false, +0 but not -0),
// unsorted and numeric metadata keys, ports and versions at their edges, results and instance references) encoded
// both ways and compared byte for byte; many pieces across slab boundaries and one piece larger than a slab, each
// compared again after all were written; a piece not filled to its size refused; lone surrogates written as U+FFFD,
// as Node writes them. (test/cp/registry-state-machine.test.ts checks whole snapshots against protobufjs the same way.)

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeInstanceValues, encodeMessage, decodeMessage, type Plain } from '../../src/cp/commands.ts';
import { encodeRemembered } from '../../src/cp/registry-storage.ts';
import type { RememberedRequest } from '../../src/cp/registry-state.ts';
import { AssertionError } from '../../src/assert.ts';
import { SlabWriter, SnapshotWriter, utf8Bytes, varintBytes } from '../../src/cp/snapshot-writer.ts';
import type { Instance } from '../../src/naming/model.ts';
import { Prng } from '../support/fuzz.ts';

const alphabets: readonly string[] = ['abcxyz019._-:', 'é߿ü', '中文ࠀ￿', '😀𝄞\u{10ffff}'];

function randomString(prng: Prng, maxChars: number): string {
  const chars = prng.int(maxChars + 1);
  let text = '';
  while (text.length < chars) {
    const alphabet = [...(prng.chance(0.6) ? (alphabets[0] as string) : prng.pick(alphabets))];
    text += prng.pick(alphabet);
  }
  return text;
}

function randomInstance(prng: Prng): Instance {
  const metadata: Record<string, string> = {};
  const pairs = prng.int(5);
  for (let i = 0; i < pairs; i++) {
    // Numeric keys come first in an object's own key order: the encoder must still write them in byte order.
    const key = prng.chance(0.2) ? String(prng.int(200)) : randomString(prng, prng.chance(0.1) ? 120 : 12);
    metadata[key] = prng.chance(0.1) ? '' : randomString(prng, prng.chance(0.2) ? 300 : 20);
  }
  const ports = [0, 1, 127, 128, 16383, 16384, 65535, prng.int(65536)];
  const versions = [undefined, 1, 127, 128, 2 ** 31, 2 ** 32 + 5, Number.MAX_SAFE_INTEGER, prng.int(1000) + 1];
  const weights = [0, -0, 1, 0.5, 10000, 1e-7, prng.next() * 100];
  const version = versions[prng.int(versions.length)];
  const base = {
    ip: prng.chance(0.1) ? '' : randomString(prng, prng.chance(0.2) ? 128 : 15),
    port: prng.pick(ports),
    cluster: randomString(prng, prng.chance(0.1) ? 90 : 10),
    weight: prng.pick(weights),
    enabled: prng.chance(0.5),
    healthy: prng.chance(0.5),
    ephemeral: false,
    metadata,
    instanceId: 'ignored by the record',
  };
  return version === undefined ? base : { ...base, version };
}

/** expectedInstances is protobufjs's encoding of list[from, to) as ServiceSnapshot.instances. */
function expectedInstances(list: readonly Instance[], from: number, to: number): Buffer {
  return Buffer.from(encodeMessage('ServiceSnapshot', { instances: list.slice(from, to).map(encodeInstanceValues) }));
}

function randomRequest(prng: Prng, index: number): RememberedRequest {
  let digest = '';
  if (prng.chance(0.95)) for (let i = 0; i < 32; i++) digest += String.fromCharCode(prng.int(256));
  const requestId = randomString(prng, prng.chance(0.2) ? 100 : 36);
  if (prng.chance(0.5)) {
    const result = prng.chance(0.2) ? new Uint8Array(0) : Uint8Array.from({ length: prng.int(300) }, () => prng.int(256));
    return { requestId, index, digest, result, instanceRef: null };
  }
  const address = { cluster: 'DEFAULT', ip: randomString(prng, 20), port: prng.int(65536) };
  const instance = ['ins', 'public', 'DEFAULT_GROUP', randomString(prng, 30), address.cluster, address.ip, String(address.port)].join('\0');
  const key = { namespace: 'public', group: 'DEFAULT_GROUP', service: 's' };
  return { requestId, index, digest, result: new Uint8Array(0), instanceRef: { instance, key, address, revision: prng.pick([0, 1, 128, 2 ** 40, prng.int(1e6) + 1]) } };
}

test('utf8Bytes and varintBytes agree with Node and protobufjs', () => {
  const prng = new Prng(7);
  for (let i = 0; i < 2000; i++) {
    const text = randomString(prng, prng.chance(0.3) ? 200 : 70);
    assert.equal(utf8Bytes(text), Buffer.byteLength(text, 'utf8'), JSON.stringify(text));
  }
  for (const lone of ['\ud800', 'a\udc00b', '\ud83d', 'x'.repeat(70) + '\ud800']) assert.equal(utf8Bytes(lone), Buffer.byteLength(lone, 'utf8'));
  for (const value of [1, 127, 128, 16383, 16384, 2 ** 21, 2 ** 28, 2 ** 35, 2 ** 49, Number.MAX_SAFE_INTEGER]) {
    assert.equal(varintBytes(value), encodeMessage('InstanceRecord', { version: value }).length - 1, String(value));
  }
});

test('instance pieces are byte for byte protobufjs\'s ServiceSnapshot.instances, and stay so as more pieces are written', () => {
  const prng = new Prng(20261123);
  const writer = new SnapshotWriter();
  const taken: { list: Instance[]; from: number; to: number; piece: Uint8Array }[] = [];
  let bytes = 0;
  // Enough pieces to fill several 4 MiB slabs.
  while (bytes < 10 * 1024 * 1024) {
    const list = Array.from({ length: 1 + prng.int(300) }, () => randomInstance(prng));
    const from = prng.int(list.length);
    const to = from + 1 + prng.int(list.length - from);
    const piece = writer.instancesPiece(list, from, to);
    assert.deepEqual(Buffer.from(piece), expectedInstances(list, from, to));
    taken.push({ list, from, to, piece });
    bytes += piece.length;
  }
  assert.ok(taken.length > 100, `${taken.length} pieces`);
  for (const { list, from, to, piece } of taken) assert.deepEqual(Buffer.from(piece), expectedInstances(list, from, to));
});

test('a piece larger than a slab gets a slab of its own', () => {
  const prng = new Prng(3);
  const writer = new SnapshotWriter();
  const small = [randomInstance(prng)];
  const before = writer.instancesPiece(small, 0, 1);
  const huge = Array.from({ length: 300 }, (_, i) => ({ ...randomInstance(prng), metadata: { big: 'v'.repeat(20_000 + i) } }));
  const piece = writer.instancesPiece(huge, 0, huge.length);
  assert.ok(piece.length > 4 * 1024 * 1024, `${piece.length} bytes`);
  assert.deepEqual(Buffer.from(piece), expectedInstances(huge, 0, huge.length));
  const after = writer.instancesPiece(small, 0, 1);
  assert.deepEqual(Buffer.from(before), expectedInstances(small, 0, 1));
  assert.deepEqual(Buffer.from(after), expectedInstances(small, 0, 1));
});

test('request pieces are byte for byte protobufjs\'s RegistrySnapshot.requests', () => {
  const prng = new Prng(99);
  const writer = new SnapshotWriter();
  for (let round = 0; round < 200; round++) {
    const list = Array.from({ length: 1 + prng.int(40) }, (_, i) => randomRequest(prng, 1 + round * 100 + i));
    const piece = writer.requestsPiece(list, 0, list.length);
    const expected = encodeMessage('RegistrySnapshot', { requests: list.map(encodeRemembered) });
    assert.deepEqual(Buffer.from(piece), Buffer.from(expected));
  }
});

test('a lone surrogate is written as U+FFFD, in short and long strings alike', () => {
  const writer = new SnapshotWriter();
  for (const cluster of ['a\ud800b', `${'x'.repeat(80)}\udc00`]) {
    const instance = { ...randomInstance(new Prng(1)), cluster, metadata: {} };
    const plain: Plain = decodeMessage('ServiceSnapshot', writer.instancesPiece([instance], 0, 1));
    const record = (plain['instances'] as Plain[])[0] as Plain;
    assert.equal(record['cluster'], cluster.replace(/[\ud800-\udfff]/g, '\ufffd'));
  }
});

test('a piece not filled to the size it was begun with is a programmer error', () => {
  const out = new SlabWriter();
  out.begin(3);
  out.varint(300);
  assert.throws(() => out.end(), AssertionError);
  out.begin(2);
  out.varint(300);
  assert.deepEqual(Buffer.from(out.end()), Buffer.from([0xac, 0x02]));
});
