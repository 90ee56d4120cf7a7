// Goal: Distro peer messages (proto/cairn/peer/v1/distro.proto, src/ap/distro-codec.ts) round-trip exactly, and a
// peer message is validated like any outside input, never a crash. A defect of the envelope (undecodable bytes, too
// many records, entries, requests or keys, an empty forward batch, a renewal inside one, a forward request with no
// operation) refuses the whole message with CAIRN_INVALID_ARGUMENT. A defect of one item (a bad name, IP, port,
// weight, oversized metadata, an unsafe integer, a string that is not UTF-8) drops that item alone, reported with
// its service and reason, and keeps the others: each item is another client's write (the audit of session 32: one
// bad entry refused a whole batch). A forwarded request so refused is answered with its own error, in its place.
// The chunker keeps every message within the bounds, and so does the builder of the question asked before an expiry
// (LastBeats).
//
// Method: encode/decode pairs, then hand-built bad messages, and batches mixing bad items with good ones.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { limits } from '../../src/limits.ts';
import {
  decodeChecksums, decodeForwardBatch, decodeForwardBatchResponse, decodeForwardRequest, decodeForwardResponse, decodePullRequest, decodeRecords,
  encodeChecksums, encodeForwardBatch, encodeForwardBatchResponse, encodeForwardRequest, encodeForwardResponse, encodePullRequest, encodeRecords,
  forwardRequestBytesEstimate, decodeLastBeatsRequest, decodeLastBeatsResponse, encodeLastBeatsRequest, encodeLastBeatsResponse,
  type Screened, type ScreenedForwardRequest,
} from '../../src/ap/distro-codec.ts';
import { LastBeatsQueryBuilder } from '../../src/ap/last-beats.ts';
import { EphemeralStore } from '../../src/ap/ephemeral-store.ts';
import { chunkRecords } from '../../src/ap/chunks.ts';
import type { EntryData, InstanceOverride, RecordData } from '../../src/ap/ephemeral-store.ts';
import type { ForwardRequest, ForwardResponse } from '../../src/ap/transport.ts';
import { isCairnError } from '../../src/errors.ts';

const key = { namespace: 'public', group: 'DEFAULT_GROUP', service: 'orders' };
const ikey = { ...key, cluster: 'DEFAULT', ip: '10.0.0.1', port: 8080 };
const version = { wallMs: 1_700_000_000_123, counter: 4, member: '127.0.1.130:18848' };
const entry: EntryData = {
  cluster: 'DEFAULT', ip: '10.0.0.1', port: 8080, version, lineage: version,
  removed: false, weight: 2.5, enabled: true, healthy: false, metadata: { a: '1', b: '2' }, owner: '127.0.1.130:18848/abc',
};
const refusal = (error: unknown): boolean => isCairnError(error) && ['CAIRN_INVALID_ARGUMENT', 'CAIRN_NAME_TOO_LONG', 'CAIRN_METADATA_TOO_LARGE'].includes(error.code);

/** whole is the value of a decoded message that must have lost nothing. */
function whole<T>(screened: Screened<T>): T {
  assert.deepEqual(screened.dropped, [], 'nothing dropped');
  return screened.value;
}

/** requestOf is the request of a decoded lone Forward that must have lost nothing. */
function requestOf(screened: ScreenedForwardRequest): ForwardRequest {
  assert.ok(screened.ok && screened.positions === null && screened.dropped.length === 0, JSON.stringify(screened));
  return screened.request;
}

/** droppedAlone asserts that a DistroRecords of one record and one entry lost its entry, for a reason matching `reason`. */
function droppedAlone(bytes: Uint8Array, reason: RegExp, what = ''): void {
  const decoded = decodeRecords(bytes, limits);
  assert.deepEqual(decoded.value, [], `${what}: nothing kept`);
  assert.equal(decoded.dropped.length, 1, `${what}: one item dropped`);
  assert.match(decoded.dropped[0]!.reason, reason, what);
}

test('every message round-trips', () => {
  // An entry derived from an older registration (a health flip, a closing session's tombstone) carries its lineage.
  const lineage = { wallMs: 1_700_000_000_001, counter: 0, member: '127.0.1.131:18848' };
  const records: RecordData[] = [{ key, entries: [entry, { ...entry, ip: '10.0.0.2', removed: true, weight: 0, enabled: false, metadata: {}, owner: '' }, { ...entry, ip: '10.0.0.3', lineage }] }];
  assert.deepEqual(whole(decodeRecords(encodeRecords(records), limits)), records);
  assert.deepEqual(whole(decodeChecksums(encodeChecksums([{ key, checksum: '1-abc-def' }]), limits)), [{ key, checksum: '1-abc-def' }]);
  assert.deepEqual(whole(decodePullRequest(encodePullRequest([key]), limits)), [key]);
  const requests: ForwardRequest[] = [
    { type: 'register', key: ikey, owner: 's1', fields: { weight: 1, enabled: true, healthy: true, metadata: { x: 'y' } } },
    { type: 'update', key: ikey, owner: '', fields: { weight: 0, enabled: false, healthy: false, metadata: {} } },
    { type: 'patch', key: ikey, weight: 3 },
    { type: 'patch', key: ikey, enabled: false, healthy: true, metadata: {} },
    { type: 'deregister', key: ikey },
    { type: 'deregister', key: ikey, owner: '127.0.0.11:8100/0b6c3c4e-session' },
    { type: 'beat', key: ikey },
    { type: 'beat', key: ikey, body: { weight: 2, metadata: { v: '1' } } },
    { type: 'renew', keys: [ikey, { ...ikey, port: 1 }] },
  ];
  for (const request of requests) assert.deepEqual(requestOf(decodeForwardRequest(encodeForwardRequest(request), limits)), request);
  const responses: ForwardResponse[] = [
    { ok: true, type: 'instance', entry, revision: 12 },
    { ok: true, type: 'removed', removed: true, revision: 3 },
    // A closing session's removal that removed nothing names the lineage held there (absent: none, or an older member).
    { ok: true, type: 'removed', removed: false, revision: 4, heldLineage: { wallMs: 1_795_418_027_875, counter: 2, member: '127.0.0.14:8100' } },
    { ok: true, type: 'beat', found: false, clientBeatIntervalMs: 5000 },
    // An empty `missing` is absent on the wire, as in the answer of a member older than the field.
    { ok: true, type: 'renewed', count: 2, missing: [] },
    { ok: true, type: 'renewed', count: 1, missing: [0, 5] },
    { ok: false, code: 'CAIRN_INSTANCE_NOT_FOUND', message: 'no such instance' },
  ];
  for (const response of responses) assert.deepEqual(decodeForwardResponse(encodeForwardResponse(response)), response);
  // A position no renewal can hold is refused.
  const beyond = encodeForwardResponse({ ok: true, type: 'renewed', count: 0, missing: [limits.distroMessageEntriesMax] });
  assert.throws(() => decodeForwardResponse(beyond), refusal);
});

test('an entry\'s operator override round-trips attribute by attribute; an entry without one has none', () => {
  const version = { wallMs: 1_700_000_000_200, counter: 0, member: '127.0.1.131:18848' };
  const overrides: InstanceOverride[] = [{ enabled: false, version }, { weight: 0, version }, { metadata: {}, version }, { enabled: true, weight: 7.5, metadata: { drain: 'yes' }, version }];
  for (const override of overrides) {
    const records: RecordData[] = [{ key, entries: [{ ...entry, override }, { ...entry, ip: '10.0.0.2', removed: true, weight: 0, enabled: false, metadata: {}, owner: '', override }] }];
    assert.deepEqual(whole(decodeRecords(encodeRecords(records), limits)), records);
  }
  const plain = whole(decodeRecords(encodeRecords([{ key, entries: [entry] }]), limits))[0]?.entries[0];
  assert.equal(plain !== undefined && 'override' in plain, false);
  // A bad weight or metadata in an override is refused like a client's: the entry is dropped.
  droppedAlone(encodeRecords([{ key, entries: [{ ...entry, override: { weight: -1, version } }] }]), /weight/, 'a negative override weight');
  droppedAlone(encodeRecords([{ key, entries: [{ ...entry, override: { metadata: { '': 'x' }, version } }] }]), /empty key/, 'an override metadata key that is empty');
});

test('an override\'s attribute versions round-trip; one newer than the override, one for an unset attribute, are refused; an override that sets nothing reads as none', () => {
  const older = { wallMs: 1_700_000_000_100, counter: 3, member: '127.0.1.132:18848' };
  const version = { wallMs: 1_700_000_000_200, counter: 0, member: '127.0.1.131:18848' };
  const newer = { wallMs: 1_700_000_000_300, counter: 0, member: '127.0.1.131:18848' };
  const mixed: InstanceOverride = { enabled: false, weight: 3, metadata: { zone: 'a' }, version, weightVersion: older, metadataVersion: older };
  const records: RecordData[] = [{ key, entries: [{ ...entry, override: mixed }] }];
  assert.deepEqual(whole(decodeRecords(encodeRecords(records), limits)), records);
  // An attribute version equal to the override's is the canonical form's absence.
  const equal = whole(decodeRecords(encodeRecords([{ key, entries: [{ ...entry, override: { enabled: false, version, enabledVersion: version } }] }]), limits))[0]?.entries[0];
  assert.deepEqual(equal?.override, { enabled: false, version });
  droppedAlone(encodeRecords([{ key, entries: [{ ...entry, override: { enabled: false, version, enabledVersion: newer } }] }]), /newer than the override's version/, 'an attribute version newer than the override');
  droppedAlone(encodeRecords([{ key, entries: [{ ...entry, override: { enabled: false, version, weightVersion: older } }] }]), /not set/, 'a version for an unset attribute');
  const none = whole(decodeRecords(encodeRecords([{ key, entries: [{ ...entry, override: { version } }] }]), limits))[0]?.entries[0];
  assert.equal(none !== undefined && 'override' in none, false);
});

test('invalid peer messages and items are refused with typed errors, never a crash', () => {
  assert.throws(() => decodeRecords(Uint8Array.from([0xff, 0xff, 0xff, 0xff]), limits), refusal);
  const bad: Array<[string, Partial<EntryData>, RegExp]> = [
    ['ip', { ip: '999.1.1.1' }, /'ip'/], ['port', { port: 70_000 }, /'port'/], ['weight', { weight: 20_000 }, /weights range/],
    ['cluster', { cluster: 'bad cluster!' }, /'clusterName'/],
    ['metadata', { metadata: { k: 'v'.repeat(limits.metadataCharsMax + 1) } }, /CAIRN_METADATA_TOO_LARGE/],
    // A lineage newer than the entry's version cannot be.
    ['lineage', { lineage: { ...entry.version, counter: entry.version.counter + 1 } }, /entry\.lineage is newer than entry\.version/],
    // A wall time beyond 2^53 cannot be a JavaScript number: refused, not rounded.
    ['wall time', { version: { ...entry.version, wallMs: 2 ** 60 } }, /version\.wall_ms/],
  ];
  for (const [what, change, reason] of bad) droppedAlone(encodeRecords([{ key, entries: [{ ...entry, ...change }] }]), reason, what);
  // A record whose service key is bad is dropped, with its entries.
  droppedAlone(encodeRecords([{ key: { ...key, service: '' }, entries: [entry] }]), /'serviceName'/, 'an empty service name');
  // Too many records, entries or keys.
  const many = Array.from({ length: 3 }, (_, i) => ({ key: { ...key, service: `s${i}` }, entries: [entry] }));
  assert.throws(() => decodeRecords(encodeRecords(many), { distroSyncBatchMax: 2, distroMessageEntriesMax: 100, distroForwardBatchEntriesMax: 10 }), refusal);
  assert.throws(() => decodeRecords(encodeRecords(many), { distroSyncBatchMax: 10, distroMessageEntriesMax: 2, distroForwardBatchEntriesMax: 10 }), refusal);
  assert.throws(() => decodePullRequest(encodePullRequest([key, key, key]), { distroSyncBatchMax: 2, distroMessageEntriesMax: 2, distroForwardBatchEntriesMax: 10 }), refusal);
  // A forward request without an operation is refused; one with an unknown write type is answered with its error.
  assert.throws(() => decodeForwardRequest(new Uint8Array(0), limits), refusal);
  const unknownType = encodeForwardRequest({ type: 'deregister', key: ikey });
  const patched = Buffer.from(unknownType).toString('latin1').replace('deregister', 'deleteeeee');
  const answered = decodeForwardRequest(Buffer.from(patched, 'latin1'), limits);
  assert.ok(!answered.ok && !answered.response.ok && answered.response.code === 'CAIRN_INVALID_ARGUMENT', JSON.stringify(answered));
  assert.match(answered.response.message, /unknown write type "deleteeeee"/);
});

test('a forward batch round-trips, each request and response in order', () => {
  const requests: ForwardRequest[] = [
    { type: 'beat', key: ikey },
    { type: 'beat', key: { ...ikey, port: 9 }, body: { weight: 2, metadata: { v: '1' } } },
    { type: 'register', key: ikey, owner: '', fields: { weight: 1, enabled: true, healthy: true, metadata: { x: 'y' } } },
    { type: 'patch', key: ikey, healthy: false },
    { type: 'deregister', key: ikey },
  ];
  assert.deepEqual(decodeForwardBatch(encodeForwardBatch(requests, 1_795_396_118_307), limits), { requests, sentAtMs: 1_795_396_118_307, refused: [], dropped: [] });
  // A batch from a member older than the stamp says nothing: 0, no fence.
  assert.equal(decodeForwardBatch(encodeForwardBatch(requests, 0), limits).sentAtMs, 0);
  const responses: ForwardResponse[] = [
    { ok: true, type: 'beat', found: true, clientBeatIntervalMs: 5000 },
    { ok: true, type: 'beat', found: false, clientBeatIntervalMs: 5000 },
    { ok: true, type: 'instance', entry, revision: 12 },
    { ok: false, code: 'CAIRN_INSTANCE_NOT_FOUND', message: 'no such instance' },
    { ok: true, type: 'removed', removed: false, revision: 0 },
    { ok: true, type: 'removed', removed: false, revision: 7, heldLineage: { wallMs: 1_795_418_027_875, counter: 0, member: '127.0.0.11:8100' } },
  ];
  const decoded = decodeForwardBatchResponse(encodeForwardBatchResponse(responses), responses.length);
  assert.deepEqual(decoded, responses);
  // Beat answers are shared frozen objects: decoding 1000 of them allocates no answer object.
  const beats = decodeForwardBatchResponse(encodeForwardBatchResponse([responses[0]!, responses[0]!]), 2);
  assert.equal(beats[0], beats[1]);
  assert.ok(Object.isFrozen(beats[0]));
  // The size estimate over-estimates the encoding of each request.
  for (const request of requests) assert.ok(forwardRequestBytesEstimate(request) >= encodeForwardRequest(request).length);
});

test('malformed forward batches are refused with typed errors, never a crash; a bad request is refused alone', () => {
  const beat: ForwardRequest = { type: 'beat', key: ikey };
  const bounds = { distroSyncBatchMax: 10, distroMessageEntriesMax: 100, distroForwardBatchEntriesMax: 3 };
  // Undecodable bytes, an empty batch, too many requests.
  assert.throws(() => decodeForwardBatch(Uint8Array.from([0x0a, 0xff, 0xff, 0xff]), bounds), refusal);
  assert.throws(() => decodeForwardBatch(encodeForwardBatch([], 1), bounds), refusal);
  assert.throws(() => decodeForwardBatch(encodeForwardBatch([beat, beat, beat, beat], 1), bounds), refusal);
  assert.equal(decodeForwardBatch(encodeForwardBatch([beat, beat, beat], 1), bounds).requests.length, 3);
  // A renewal travels alone, never inside a batch.
  assert.throws(() => decodeForwardBatch(encodeForwardBatch([beat, { type: 'renew', keys: [ikey] }], 1), bounds), refusal);
  // One bad request (an invalid IP, a port beyond 65535, oversized metadata, no operation) is refused alone: the
  // batch keeps the others, and the bad one's position is answered with its error.
  const refusedAt = (bytes: Uint8Array, position: number, code: string): void => {
    const batch = decodeForwardBatch(bytes, bounds);
    assert.deepEqual(batch.refused.map((item) => item.position), [position]);
    const response = batch.refused[0]!.response;
    assert.ok(!response.ok && response.code === code, JSON.stringify(response));
    assert.equal(batch.dropped.length, 1);
  };
  refusedAt(encodeForwardBatch([beat, { type: 'beat', key: { ...ikey, ip: '999.1.1.1' } }], 1), 1, 'CAIRN_INVALID_ARGUMENT');
  refusedAt(encodeForwardBatch([{ type: 'beat', key: { ...ikey, port: 70_000 } }], 1), 0, 'CAIRN_INVALID_ARGUMENT');
  refusedAt(encodeForwardBatch([{ type: 'beat', key: ikey, body: { weight: 1, metadata: { k: 'v'.repeat(limits.metadataCharsMax + 1) } } }], 1), 0, 'CAIRN_METADATA_TOO_LARGE');
  const noOperation = Buffer.concat([Buffer.from(encodeForwardBatch([beat], 1)), Buffer.from([0x0a, 0x00])]);
  refusedAt(noOperation, 1, 'CAIRN_INVALID_ARGUMENT');
  // Responses: a count other than the requests', an unsafe interval, a result of no known kind.
  const ok = encodeForwardBatchResponse([{ ok: true, type: 'beat', found: true, clientBeatIntervalMs: 5000 }]);
  assert.throws(() => decodeForwardBatchResponse(ok, 2), refusal);
  assert.throws(() => decodeForwardBatchResponse(Buffer.concat([Buffer.from(ok), Buffer.from(ok)]), 1), refusal);
  assert.throws(() => decodeForwardBatchResponse(Buffer.from([0x0a, 0x02, 0x08, 0x01]), 1), refusal);
  assert.throws(() => decodeForwardBatchResponse(Uint8Array.from([0x0a, 0xff, 0xff]), 1), refusal);
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

test('the last-beats question and answer round-trip; bad ones are refused; the builder keeps one message within the bounds', () => {
  const query = [
    { key, instances: [{ cluster: 'DEFAULT', ip: '10.0.0.1', port: 8080 }, { cluster: 'c2', ip: '::1', port: 1 }] },
    { key: { ...key, service: 'billing' }, instances: [{ cluster: 'DEFAULT', ip: '10.0.0.3', port: 65535 }] },
  ];
  assert.deepEqual(whole(decodeLastBeatsRequest(encodeLastBeatsRequest(query), limits)), query);
  assert.deepEqual(decodeLastBeatsResponse(encodeLastBeatsResponse([0, 1234, 0xffff_ffff]), 3), [0, 1234, 0xffff_ffff]);
  const bounds = { distroSyncBatchMax: 1, distroMessageEntriesMax: 2, distroForwardBatchEntriesMax: 3 };
  assert.throws(() => decodeLastBeatsRequest(encodeLastBeatsRequest(query), bounds), refusal, 'too many services');
  assert.throws(() => decodeLastBeatsRequest(encodeLastBeatsRequest([{ key, instances: [...query[0]!.instances, ...query[0]!.instances] }]), { ...bounds, distroMessageEntriesMax: 3 }), refusal, 'too many instances');
  // A bad address is dropped alone (answered HEARD_NEVER: see the test of batches with bad items).
  assert.equal(decodeLastBeatsRequest(encodeLastBeatsRequest([{ key, instances: [{ cluster: 'DEFAULT', ip: '999.1.1.1', port: 80 }] }]), limits).dropped.length, 1, 'a bad IP');
  assert.equal(decodeLastBeatsRequest(encodeLastBeatsRequest([{ key, instances: [{ cluster: 'DEFAULT', ip: '10.0.0.1', port: 70_000 }] }]), limits).dropped.length, 1, 'a bad port');
  assert.throws(() => decodeLastBeatsRequest(Uint8Array.from([0x0a, 0xff, 0xff]), limits), refusal, 'undecodable');
  assert.throws(() => decodeLastBeatsResponse(encodeLastBeatsResponse([1, 2]), 3), refusal, 'fewer values than instances');
  assert.throws(() => decodeLastBeatsResponse(encodeLastBeatsResponse([1, 2, 3, 4]), 3), refusal, 'more values than instances');
  // The builder: one message of at most distroSyncBatchMax services and distroMessageEntriesMax instances.
  const store = new EphemeralStore({ self: 'a', now: () => 1_700_000_000_000, limits, events: { onEntryChanged: () => undefined, onServiceChanged: () => undefined } });
  for (let i = 0; i < 5; i++) store.put({ ...ikey, service: `s${i % 3}`, port: 1000 + i }, { weight: 1, enabled: true, healthy: true, metadata: {} }, '', 'register');
  const builder = new LastBeatsQueryBuilder({ distroSyncBatchMax: 2, distroMessageEntriesMax: 3, distroMessageBytesMax: limits.distroMessageBytesMax });
  const taken: boolean[] = [];
  for (const record of store.allRecords()) for (const candidate of record.entries.values()) taken.push(builder.add({ record, entry: candidate }));
  const round = builder.build();
  assert.ok(round.query.length <= 2 && builder.size <= 3 && taken.filter(Boolean).length === builder.size);
  assert.deepEqual(round.candidates.map((candidate) => candidate.entry.port), round.query.flatMap((item) => item.instances.map((address) => address.port)), 'candidates in answer order');
  assert.ok(whole(decodeLastBeatsRequest(encodeLastBeatsRequest(round.query), { distroSyncBatchMax: 2, distroMessageEntriesMax: 3, distroForwardBatchEntriesMax: 1 })).length === round.query.length);
});
