// Goal: every registry command and result survives encode -> decode unchanged, encoding is deterministic (the
// request-id table compares digests of command bytes), and decoding never throws: malformed bytes and well-formed
// protobuf carrying invalid values both become typed failures, so a bad log entry applies alike on every member.
// Method: a table with one sample of each command type is round-tripped and re-encoded byte for byte; metadata in
// another key order must give the same bytes; then hand-built protobuf with invalid fields, truncations of valid
// commands and seeded random byte strings are decoded and must give {ok: false} with a catalog code. Results
// (success with each payload kind, failures with details) are round-tripped, and a cluster result must not carry
// the MySQL password.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isCairnErrorCode } from '../../src/errors.ts';
import {
  REDACTED_SECRET,
  decodeCommand,
  decodeResult,
  decodePairs,
  encodeCommand,
  encodeInstanceRecord,
  encodeInstanceValues,
  encodeMessage,
  encodeResult,
  encodeServiceKey,
  messageType,
  type CommandEnvelope,
  type CommandResult,
  type RegistryCommand,
} from '../../src/cp/commands.ts';
import { redactCluster, type ServiceKey } from '../../src/naming/model.ts';
import { isCairnError } from '../../src/errors.ts';

const key: ServiceKey = { namespace: 'public', group: 'DEFAULT_GROUP', service: 'orders' };
const address = { cluster: 'DEFAULT', ip: '10.0.0.1', port: 3306 };

/** samples has one command of every type (and the optional fields both present and absent). */
const samples: readonly RegistryCommand[] = [
  { type: 'createService', key, protectThreshold: 0.25, metadata: { team: 'pay' }, selector: { type: 'label', expression: 'CONSUMER.label.a = PROVIDER.label.a' }, kind: 'persistent' },
  { type: 'createService', key, protectThreshold: 0, metadata: {}, selector: { type: 'none' }, kind: null },
  { type: 'updateService', key, protectThreshold: 0, metadata: {}, selector: { type: 'none' } },
  { type: 'updateService', key },
  { type: 'updateService', key, metadata: { a: 'b' } },
  { type: 'deleteService', key },
  { type: 'putCluster', key, config: { name: 'DEFAULT', healthChecker: { type: 'MYSQL', user: 'probe', password: 'pw', sql: 'select 1' }, checkPort: 0, useInstancePort4Check: true, metadata: { dc: 'eu' } } },
  { type: 'putCluster', key, config: { name: 'dc2', healthChecker: { type: 'HTTP', path: '/ok', headers: { Host: 'x' }, expectedResponseCode: 204 }, checkPort: 8081, useInstancePort4Check: false, metadata: {} } },
  { type: 'putCluster', key, config: { name: 'dc3', healthChecker: { type: 'NONE' }, checkPort: 80, useInstancePort4Check: true, metadata: {} } },
  { type: 'putCluster', key, config: { name: 'dc4', healthChecker: { type: 'TCP', intervalMs: 5000 }, checkPort: 80, useInstancePort4Check: true, metadata: {} } },
  { type: 'putCluster', key, config: { name: 'dc5', healthChecker: { type: 'MYSQL', user: 'u', password: '', sql: 'select 1', intervalMs: 3000 }, checkPort: 80, useInstancePort4Check: true, metadata: {} } },
  { type: 'registerInstance', key, instance: { ...address, weight: 2.5, enabled: true, healthy: false, metadata: { role: 'primary' } } },
  { type: 'updateInstance', key, instance: { ...address, weight: 0, enabled: false, healthy: true, metadata: {} } },
  { type: 'patchInstance', key, address, weight: 0, enabled: false, healthy: false, metadata: {} },
  { type: 'patchInstance', key, address },
  { type: 'deregisterInstance', key, address },
  { type: 'setInstanceHealth', key, address, healthy: false },
];

test('every command round-trips and re-encodes to the same bytes', () => {
  for (const [i, command] of samples.entries()) {
    const envelope: CommandEnvelope = { requestId: `req-${i}`, command };
    const bytes = encodeCommand(envelope);
    const decoded = decodeCommand(bytes);
    assert.ok(decoded.ok, `${command.type}: ${decoded.ok ? '' : decoded.detail}`);
    assert.deepEqual(decoded.envelope, envelope, command.type);
    assert.deepEqual(encodeCommand(decoded.envelope), bytes, `${command.type} re-encodes identically`);
  }
});

test('encoding is deterministic: metadata key order does not change the bytes', () => {
  const a = encodeCommand({ requestId: 'r', command: { type: 'registerInstance', key, instance: { ...address, weight: 1, enabled: true, healthy: true, metadata: { a: '1', b: '2', c: '3' } } } });
  const b = encodeCommand({ requestId: 'r', command: { type: 'registerInstance', key, instance: { ...address, weight: 1, enabled: true, healthy: true, metadata: { c: '3', a: '1', b: '2' } } } });
  assert.deepEqual(a, b);
});

function failsWith(bytes: Uint8Array, code: string, fragment?: RegExp): void {
  const decoded = decodeCommand(bytes);
  assert.equal(decoded.ok, false);
  if (decoded.ok) return;
  assert.equal(decoded.code, code, decoded.detail);
  if (fragment !== undefined) assert.match(decoded.detail, fragment);
}

test('well-formed protobuf with invalid values decodes to a typed failure naming the problem', () => {
  const instance = { cluster: 'DEFAULT', ip: '10.0.0.1', port: 80, weight: 1, enabled: true, healthy: true };
  const keyPlain = { namespace: 'public', group: 'G', service: 's' };
  const cases: ReadonlyArray<readonly [Record<string, unknown>, string, RegExp]> = [
    [{ requestId: '', deleteService: { key: keyPlain } }, 'CAIRN_INVALID_ARGUMENT', /requestId/],
    [{ requestId: 'r' }, 'CAIRN_INVALID_ARGUMENT', /no body/],
    [{ requestId: 'r', deleteService: {} }, 'CAIRN_INVALID_ARGUMENT', /service key is missing/],
    [{ requestId: 'r', deleteService: { key: { ...keyPlain, service: 'a\u0000b' } } }, 'CAIRN_INVALID_ARGUMENT', /serviceName/],
    [{ requestId: 'r', deleteService: { key: { ...keyPlain, service: 's'.repeat(513) } } }, 'CAIRN_NAME_TOO_LONG', /serviceName/],
    [{ requestId: 'r', registerInstance: { key: keyPlain } }, 'CAIRN_INVALID_ARGUMENT', /instance is missing/],
    [{ requestId: 'r', registerInstance: { key: keyPlain, instance: { ...instance, weight: 10_001 } } }, 'CAIRN_INVALID_ARGUMENT', /weights range/],
    [{ requestId: 'r', registerInstance: { key: keyPlain, instance: { ...instance, port: 70_000 } } }, 'CAIRN_INVALID_ARGUMENT', /port/],
    [{ requestId: 'r', registerInstance: { key: keyPlain, instance: { ...instance, ip: '999.1.1.1' } } }, 'CAIRN_INVALID_ARGUMENT', /IPv4/],
    [{ requestId: 'r', registerInstance: { key: keyPlain, instance: { ...instance, metadata: [{ key: 'a', value: '1' }, { key: 'a', value: '2' }] } } }, 'CAIRN_INVALID_ARGUMENT', /repeats key 'a'/],
    [{ requestId: 'r', registerInstance: { key: keyPlain, instance: { ...instance, metadata: [{ key: 'k', value: 'v'.repeat(2000) }] } } }, 'CAIRN_METADATA_TOO_LARGE', /metadata/],
    [{ requestId: 'r', createService: { key: keyPlain, protectThreshold: 1.5 } }, 'CAIRN_INVALID_ARGUMENT', /protectThreshold/],
    [{ requestId: 'r', createService: { key: keyPlain, kind: 'both' } }, 'CAIRN_INVALID_ARGUMENT', /kind/],
    [{ requestId: 'r', createService: { key: keyPlain, selector: { type: 'cmdb' } } }, 'CAIRN_INVALID_ARGUMENT', /selector/],
    [{ requestId: 'r', putCluster: { key: keyPlain, cluster: 'DEFAULT' } }, 'CAIRN_INVALID_ARGUMENT', /health checker is missing/],
    [{ requestId: 'r', putCluster: { key: keyPlain, cluster: 'DEFAULT', healthChecker: { type: 'ICMP' } } }, 'CAIRN_INVALID_ARGUMENT', /NONE, TCP, HTTP, MYSQL/],
    [{ requestId: 'r', putCluster: { key: keyPlain, cluster: 'DEFAULT', healthChecker: { type: 'TCP' }, useInstancePort4Check: false, checkPort: 0 } }, 'CAIRN_INVALID_ARGUMENT', /checkPort/],
    [{ requestId: 'r', patchInstance: { key: keyPlain, address: { cluster: 'a b', ip: '1.1.1.1', port: 1 } } }, 'CAIRN_INVALID_ARGUMENT', /clusterName/],
  ];
  for (const [plain, code, fragment] of cases) failsWith(encodeMessage('Command', plain), code, fragment);
});

/** prng is a small deterministic generator (mulberry32) so the random inputs are reproducible. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('malformed bytes never throw: truncations, bit flips and random bytes give {ok:false} or a valid command', () => {
  const inputs: Uint8Array[] = [new Uint8Array(), new Uint8Array([0xff]), new Uint8Array([0x0a, 0x05, 0x61])];
  const valid = samples.map((command, i) => encodeCommand({ requestId: `r${i}`, command }));
  for (const bytes of valid) for (let cut = 1; cut < bytes.length; cut += 1) inputs.push(bytes.slice(0, cut));
  const random = prng(20_240_601);
  for (let i = 0; i < 500; i += 1) {
    const source = valid[i % valid.length] ?? new Uint8Array();
    const flipped = source.slice();
    const at = Math.floor(random() * flipped.length);
    flipped[at] = (flipped[at] ?? 0) ^ (1 << Math.floor(random() * 8));
    inputs.push(flipped);
    inputs.push(Uint8Array.from({ length: Math.floor(random() * 64) }, () => Math.floor(random() * 256)));
  }
  let failures = 0;
  for (const bytes of inputs) {
    const decoded = decodeCommand(bytes);
    if (!decoded.ok) {
      failures += 1;
      assert.ok(isCairnErrorCode(decoded.code));
    } else {
      // Whatever decodes must be a valid command: it re-encodes and decodes to itself.
      assert.deepEqual(decodeCommand(encodeCommand(decoded.envelope)), decoded);
    }
  }
  assert.ok(failures > inputs.length / 2, `most malformed inputs fail (${failures} of ${inputs.length})`);
});

test('results round-trip: every payload kind, failures with details', () => {
  const instance = { ...address, weight: 1, enabled: true, healthy: true, ephemeral: false, metadata: { a: 'b' }, instanceId: '10.0.0.1#3306#DEFAULT#DEFAULT_GROUP@@orders', version: 7 };
  const definition = { namespace: 'public', group: 'DEFAULT_GROUP', name: 'orders', protectThreshold: 0.5, metadata: {}, selector: { type: 'none' as const }, kind: 'persistent' as const, revision: 42 };
  const cluster = redactCluster({ name: 'DEFAULT', healthChecker: { type: 'HTTP', path: '/', headers: {}, expectedResponseCode: 200 }, checkPort: 80, useInstancePort4Check: true, metadata: {} });
  const results: readonly CommandResult[] = [
    { ok: true, revision: 0, payload: { type: 'none' } },
    { ok: true, revision: 9, payload: { type: 'removed', removed: false } },
    { ok: true, revision: 9, payload: { type: 'removed', removed: true } },
    { ok: true, revision: 42, payload: { type: 'service', service: definition } },
    { ok: true, revision: 42, payload: { type: 'instance', key, instance } },
    { ok: true, revision: 42, payload: { type: 'cluster', cluster } },
    { ok: false, code: 'CAIRN_SERVICE_NOT_FOUND', detail: 'service not found: public/DEFAULT_GROUP@@orders' },
    { ok: false, code: 'CAIRN_INSTANCES_PER_SERVICE_EXCEEDED', detail: 'x', details: { limit: 2000, parameter: 'port', flag: true, none: null } },
  ];
  for (const result of results) assert.deepEqual(decodeResult(encodeResult(result)), result);
});

test('a cluster result never carries the MySQL password', () => {
  const view = redactCluster({ name: 'db', healthChecker: { type: 'MYSQL', user: 'u', password: 'hunter2', sql: 'select 1' }, checkPort: 80, useInstancePort4Check: true, metadata: {} });
  const bytes = encodeResult({ ok: true, revision: 1, payload: { type: 'cluster', cluster: view } });
  assert.ok(!Buffer.from(bytes).includes('hunter2'));
  assert.ok(Buffer.from(bytes).includes(REDACTED_SECRET));
  assert.deepEqual(decodeResult(bytes), { ok: true, revision: 1, payload: { type: 'cluster', cluster: view } });
});

test('undecodable or unknown results become CAIRN_INTERNAL failures, never throws', () => {
  for (const bytes of [new Uint8Array([0xff, 0xff]), encodeMessage('Result', { errorCode: 'CAIRN_NOPE', errorDetail: 'x' })]) {
    const result = decodeResult(bytes);
    assert.equal(result.ok, false);
    if (!result.ok) assert.equal(result.code, 'CAIRN_INTERNAL');
  }
});

test('an instance result is the nested encoding byte for byte, whatever the record size (1, 2 and 3-byte lengths)', () => {
  // encodeResult splices the stored record's bytes after the Result's other fields instead of encoding the
  // instance again; the bytes must stay those of the nested message, or members would remember different results.
  for (const [revision, padding] of [[0, 0], [1, 10], [42, 200], [2 ** 40, 900], [7, 20_000]] as const) {
    const instance = Object.freeze({ ...address, weight: 1.5, enabled: true, healthy: revision % 2 === 0, ephemeral: false,
      metadata: Object.freeze({ a: 'b', pad: 'x'.repeat(padding) }), instanceId: 'id', version: 3 });
    const spliced = encodeResult({ ok: true, revision, payload: { type: 'instance', key, instance } });
    const nested = encodeMessage('Result', { revision, key: encodeServiceKey(key), instance: encodeInstanceValues(instance) });
    const viaFromObject = messageType('Result').encode(messageType('Result').fromObject({ revision, key: encodeServiceKey(key), instance: encodeInstanceValues(instance) })).finish();
    assert.deepEqual(Buffer.from(spliced), Buffer.from(nested), `padding ${padding}`);
    assert.deepEqual(Buffer.from(spliced), Buffer.from(viaFromObject), `padding ${padding}`);
    // Above the metadata limit (the 3-byte length) a result cannot be decoded; below it, it decodes to the instance.
    if (padding < 1000) assert.deepEqual(decodeResultInstance(spliced), { ...instance, instanceId: '10.0.0.1#3306#DEFAULT#DEFAULT_GROUP@@orders' });
    // The memo answers for the same frozen instance only: an equal but distinct one is encoded afresh, to the same bytes.
    assert.deepEqual(encodeInstanceRecord({ ...instance }), encodeInstanceRecord(instance));
  }
});

function decodeResultInstance(bytes: Uint8Array): unknown {
  const decoded = decodeResult(bytes);
  assert.ok(decoded.ok && decoded.payload.type === 'instance');
  return decoded.payload.instance;
}

test('decodePairs: sorted pairs take the one-pass path, and every other shape is validated as before', () => {
  const pairs = (...list: Array<[string, string]>): Array<{ key: string; value: string }> => list.map(([k, v]) => ({ key: k, value: v }));
  const sorted = decodePairs(pairs(['a', '1'], ['b', '2'], ['c', '3']), 'metadata');
  assert.deepEqual(sorted, { a: '1', b: '2', c: '3' });
  assert.ok(Object.isFrozen(sorted));
  // Out of order: sorted like validateMetadata does; a repeat is malformed in either order.
  assert.deepEqual(Object.keys(decodePairs(pairs(['b', '2'], ['a', '1']), 'metadata')), ['a', 'b']);
  assert.throws(() => decodePairs(pairs(['a', '1'], ['b', '2'], ['a', '3']), 'metadata'), /repeats key 'a'/);
  assert.throws(() => decodePairs(pairs(['a', '1'], ['a', '1']), 'metadata'), /repeats key 'a'/);
  // '__proto__' is an ordinary own key, never the prototype.
  const proto = decodePairs(pairs(['__proto__', 'x'], ['a', '1']), 'metadata');
  assert.deepEqual(Object.entries(proto), [['__proto__', 'x'], ['a', '1']]);
  assert.equal(Object.getPrototypeOf(proto), Object.prototype);
  // The checks of validateMetadata still apply on the fast path: an empty key, and the size limit.
  const rejected = (list: Array<{ key: string; value: string }>): string => {
    try {
      decodePairs(list, 'metadata');
    } catch (error) {
      assert.ok(isCairnError(error));
      return error.code;
    }
    return 'accepted';
  };
  assert.equal(rejected(pairs(['', 'x'], ['a', '1'])), 'CAIRN_INVALID_ARGUMENT');
  assert.equal(rejected(pairs(['a', 'x'.repeat(2000)])), 'CAIRN_METADATA_TOO_LARGE');
  assert.equal(rejected(pairs(['a', 'x'.repeat(500)], ['b', 'y'.repeat(400)])), 'accepted');
});
