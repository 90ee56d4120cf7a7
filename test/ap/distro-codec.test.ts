// Goal: Distro peer messages (proto/cairn/peer/v1/distro.proto, src/ap/distro-codec.ts) round-trip exactly, and a
// peer message is validated like any outside input: undecodable bytes, bad names, IPs, ports, weights, oversized
// metadata, unsafe integers, unknown operations and too many records or entries are each refused with
// CAIRN_INVALID_ARGUMENT, never a crash. The chunker keeps every message within the bounds.
//
// Method: encode/decode pairs, then hand-built bad messages.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { limits } from '../../src/limits.ts';
import {
  decodeChecksums, decodeForwardRequest, decodeForwardResponse, decodePullRequest, decodeRecords,
  encodeChecksums, encodeForwardRequest, encodeForwardResponse, encodePullRequest, encodeRecords,
} from '../../src/ap/distro-codec.ts';
import { chunkRecords } from '../../src/ap/chunks.ts';
import type { EntryData, RecordData } from '../../src/ap/ephemeral-store.ts';
import type { ForwardRequest, ForwardResponse } from '../../src/ap/transport.ts';
import { isCairnError } from '../../src/errors.ts';

const key = { namespace: 'public', group: 'DEFAULT_GROUP', service: 'orders' };
const ikey = { ...key, cluster: 'DEFAULT', ip: '10.0.0.1', port: 8080 };
const entry: EntryData = {
  cluster: 'DEFAULT', ip: '10.0.0.1', port: 8080, version: { wallMs: 1_700_000_000_123, counter: 4, member: '127.0.1.130:18848' },
  removed: false, weight: 2.5, enabled: true, healthy: false, metadata: { a: '1', b: '2' }, owner: '127.0.1.130:18848/abc',
};
const refusal = (error: unknown): boolean => isCairnError(error) && ['CAIRN_INVALID_ARGUMENT', 'CAIRN_NAME_TOO_LONG', 'CAIRN_METADATA_TOO_LARGE'].includes(error.code);

test('every message round-trips', () => {
  const records: RecordData[] = [{ key, entries: [entry, { ...entry, ip: '10.0.0.2', removed: true, weight: 0, enabled: false, metadata: {}, owner: '' }] }];
  assert.deepEqual(decodeRecords(encodeRecords(records), limits), records);
  assert.deepEqual(decodeChecksums(encodeChecksums([{ key, checksum: '1-abc-def' }]), limits), [{ key, checksum: '1-abc-def' }]);
  assert.deepEqual(decodePullRequest(encodePullRequest([key]), limits), [key]);
  const requests: ForwardRequest[] = [
    { type: 'register', key: ikey, owner: 's1', fields: { weight: 1, enabled: true, healthy: true, metadata: { x: 'y' } } },
    { type: 'update', key: ikey, owner: '', fields: { weight: 0, enabled: false, healthy: false, metadata: {} } },
    { type: 'patch', key: ikey, weight: 3 },
    { type: 'patch', key: ikey, enabled: false, healthy: true, metadata: {} },
    { type: 'deregister', key: ikey },
    { type: 'beat', key: ikey },
    { type: 'beat', key: ikey, body: { weight: 2, metadata: { v: '1' } } },
    { type: 'renew', keys: [ikey, { ...ikey, port: 1 }] },
  ];
  for (const request of requests) assert.deepEqual(decodeForwardRequest(encodeForwardRequest(request), limits), request);
  const responses: ForwardResponse[] = [
    { ok: true, type: 'instance', entry, revision: 12 },
    { ok: true, type: 'removed', removed: true, revision: 3 },
    { ok: true, type: 'beat', found: false, clientBeatIntervalMs: 5000 },
    { ok: true, type: 'renewed', count: 2 },
    { ok: false, code: 'CAIRN_INSTANCE_NOT_FOUND', message: 'no such instance' },
  ];
  for (const response of responses) assert.deepEqual(decodeForwardResponse(encodeForwardResponse(response)), response);
});

test('invalid peer messages are refused with typed errors, never a crash', () => {
  assert.throws(() => decodeRecords(Uint8Array.from([0xff, 0xff, 0xff, 0xff]), limits), refusal);
  const bad: Array<[string, Partial<EntryData>]> = [
    ['ip', { ip: '999.1.1.1' }], ['port', { port: 70_000 }], ['weight', { weight: 20_000 }], ['cluster', { cluster: 'bad cluster!' }],
    ['metadata', { metadata: { k: 'v'.repeat(limits.metadataCharsMax + 1) } }],
  ];
  for (const [what, change] of bad) {
    assert.throws(() => decodeRecords(encodeRecords([{ key, entries: [{ ...entry, ...change }] }]), limits), refusal, what);
  }
  assert.throws(() => decodeRecords(encodeRecords([{ key: { ...key, service: '' }, entries: [] }]), limits), refusal);
  // A wall time beyond 2^53 cannot be a JavaScript number: refused, not rounded.
  assert.throws(() => decodeRecords(encodeRecords([{ key, entries: [{ ...entry, version: { ...entry.version, wallMs: 2 ** 60 } }] }]), limits), refusal);
  // Too many records, entries or keys.
  const many = Array.from({ length: 3 }, (_, i) => ({ key: { ...key, service: `s${i}` }, entries: [entry] }));
  assert.throws(() => decodeRecords(encodeRecords(many), { distroSyncBatchMax: 2, distroMessageEntriesMax: 100 }), refusal);
  assert.throws(() => decodeRecords(encodeRecords(many), { distroSyncBatchMax: 10, distroMessageEntriesMax: 2 }), refusal);
  assert.throws(() => decodePullRequest(encodePullRequest([key, key, key]), { distroSyncBatchMax: 2, distroMessageEntriesMax: 2 }), refusal);
  // A forward request without an operation, or with an unknown write type.
  assert.throws(() => decodeForwardRequest(new Uint8Array(0), limits), refusal);
  const unknownType = encodeForwardRequest({ type: 'deregister', key: ikey });
  const patched = Buffer.from(unknownType).toString('latin1').replace('deregister', 'deleteeeee');
  assert.throws(() => decodeForwardRequest(Buffer.from(patched, 'latin1'), limits), refusal);
});

test('chunks respect the record, entry and byte bounds and lose nothing', () => {
  const bounds = { distroSyncBatchMax: 3, distroMessageEntriesMax: 10, distroMessageBytesMax: 4000 };
  const records: RecordData[] = Array.from({ length: 7 }, (_, r) => ({
    key: { ...key, service: `s${r}` },
    entries: Array.from({ length: r * 4 }, (_, i) => ({ ...entry, port: i, metadata: { big: 'x'.repeat(100) } })),
  }));
  const chunks = chunkRecords(records, bounds);
  let total = 0;
  for (const chunk of chunks) {
    const entries = chunk.reduce((sum, record) => sum + record.entries.length, 0);
    total += entries;
    assert.ok(chunk.length <= bounds.distroSyncBatchMax);
    assert.ok(entries <= bounds.distroMessageEntriesMax);
    assert.ok(encodeRecords(chunk).length <= bounds.distroMessageBytesMax, `${encodeRecords(chunk).length} bytes`);
  }
  assert.equal(total, records.reduce((sum, record) => sum + record.entries.length, 0));
});
