// Goal: one bad item of a Distro peer message is dropped alone; the message's other items are kept. Each entry of a
// sync, pull answer or snapshot chunk, each request of a forward batch, each key of a renewal or a pull, each
// checksum and each instance of a last-beats question is another client's: before this, one of them that failed
// validation (an instance whose metadata held a lone UTF-16 surrogate, a bad IP, a port beyond 65535, an oversize
// string) refused the whole message, and every other client's acknowledged write in it was lost for that peer until
// anti-entropy, or forever while the bad entry was still there (the audit of session 32). A message whose envelope
// is bad (undecodable framing, too many items, an empty batch, a renewal inside a batch, no operation) is still
// refused whole. A forwarded request so dropped is answered with its own error, in its place, never a silent success.
//
// Method: messages encoded by the real encoders, mixing bad items with good ones; a lone surrogate goes through the
// encoder as an older member would send it (bytes that are not UTF-8, which fail protobufjs's decoding of the whole
// message). Every test first decodes such a mixed message, which the decoders before the fix refused (they threw).
// The new helpers are read through the module namespace so that, run against the old decoder, each test fails on its
// assertion about the batch rather than on an import.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as codec from '../../src/ap/distro-codec.ts';
import { HEARD_NEVER, type EntryData, type RecordData } from '../../src/ap/ephemeral-store.ts';
import type { ForwardRequest, ForwardResponse } from '../../src/ap/transport.ts';
import { isCairnError } from '../../src/errors.ts';
import { limits } from '../../src/limits.ts';

const orders = { namespace: 'public', group: 'DEFAULT_GROUP', service: 'orders' };
const version = { wallMs: 1_700_000_000_123, counter: 4, member: '127.0.1.220:18848' };
const good: EntryData = {
  cluster: 'DEFAULT', ip: '10.0.0.1', port: 8080, version, lineage: version,
  removed: false, weight: 1, enabled: true, healthy: true, metadata: { zone: 'a' }, owner: '',
};
const ikey = { ...orders, cluster: 'DEFAULT', ip: '10.0.0.1', port: 8080 };
const lone = 'x\uD800y';
const refusal = (error: unknown): boolean => isCairnError(error, 'CAIRN_INVALID_ARGUMENT');

/** screened is the value and drops of a decoded message (through `unknown`: the decoders before the fix returned the value alone). */
function screened<T>(decoded: unknown): { value: T; dropped: codec.DroppedItem[] } {
  return decoded as { value: T; dropped: codec.DroppedItem[] };
}

test('a DistroRecords keeps its good entries and drops each bad one, reporting its service and reason', () => {
  const records: RecordData[] = [
    {
      key: orders,
      entries: [
        good,
        { ...good, ip: '10.0.0.2', metadata: { zone: lone } },
        { ...good, ip: '10.0.0.3' },
        { ...good, ip: '999.1.1.1' },
        { ...good, ip: '10.0.0.5', port: 70_000 },
        { ...good, ip: 'h'.repeat(limits.ipCharsMax + 1) },
        { ...good, ip: '10.0.0.7', removed: true, weight: 0, enabled: false, metadata: {} },
      ],
    },
    // A record whose service key is bad goes with its entries, counted once.
    { key: { ...orders, service: 'bad service' }, entries: [good] },
    // A record all of whose entries are bad is left out.
    { key: { ...orders, service: 'payments' }, entries: [{ ...good, cluster: 'bad cluster!' }] },
    { key: { ...orders, service: 'inventory' }, entries: [good] },
  ];
  const decoded = screened<RecordData[]>(codec.decodeRecords(codec.encodeRecords(records), limits));
  const kept = [{ key: orders, entries: [good, { ...good, ip: '10.0.0.3' }, { ...good, ip: '10.0.0.7', removed: true, weight: 0, enabled: false, metadata: {} }] }, records[3]!];
  assert.deepEqual(decoded.value, kept);
  // The good entries decode exactly as they do from a message without the bad ones (decoded level by level here).
  assert.deepEqual(decoded.value, screened<RecordData[]>(codec.decodeRecords(codec.encodeRecords(kept), limits)).value);
  assert.deepEqual(decoded.dropped.map((item) => item.service), [
    'public/DEFAULT_GROUP/orders', 'public/DEFAULT_GROUP/orders', 'public/DEFAULT_GROUP/orders', 'public/DEFAULT_GROUP/orders',
    'public/DEFAULT_GROUP/bad service', 'public/DEFAULT_GROUP/payments',
  ]);
  const reasons = decoded.dropped.map((item) => item.reason);
  assert.match(reasons[0]!, /^CAIRN_INVALID_ARGUMENT: .*undecodable DistroEntry/, 'the lone surrogate');
  assert.match(reasons[1]!, /not a valid IPv4 address/);
  assert.match(reasons[2]!, /'port' must be an integer within 0\.\.65535/);
  assert.match(reasons[3]!, /^CAIRN_NAME_TOO_LONG: /);
  assert.match(reasons[4]!, /'serviceName'/);
  assert.match(reasons[5]!, /'clusterName'/);
});

test('a DistroRecords whose envelope is bad is still refused whole, bad entries counted in its bounds', () => {
  const mixed: RecordData[] = [{ key: orders, entries: [good, { ...good, ip: '999.1.1.1' }, { ...good, ip: '10.0.0.3', metadata: { zone: lone } }] }];
  const bytes = codec.encodeRecords(mixed);
  assert.equal(screened<RecordData[]>(codec.decodeRecords(bytes, limits)).value[0]?.entries.length, 1);
  // Too many entries (the bad ones count: the bound is on what was sent), too many records.
  assert.throws(() => codec.decodeRecords(bytes, { ...limits, distroMessageEntriesMax: 2 }), refusal);
  const many = Array.from({ length: 3 }, (_, i) => ({ key: { ...orders, service: `s${i}` }, entries: [good] }));
  assert.throws(() => codec.decodeRecords(codec.encodeRecords(many), { ...limits, distroSyncBatchMax: 2 }), refusal);
  // Framing cut short, with and without an item that does not decode: nothing of it is trusted.
  assert.throws(() => codec.decodeRecords(bytes.subarray(0, bytes.length - 5), limits), refusal);
  assert.throws(() => codec.decodeRecords(Uint8Array.from([0x0a, 0xff, 0xff, 0xff]), limits), refusal);
});

test('a forward batch serves its good requests and answers each bad one with its own error, in its place', () => {
  const requests: ForwardRequest[] = [
    { type: 'register', key: ikey, owner: '', fields: { weight: 1, enabled: true, healthy: true, metadata: { zone: 'a' } } },
    { type: 'register', key: { ...ikey, port: 8081 }, owner: '', fields: { weight: 1, enabled: true, healthy: true, metadata: { zone: lone } } },
    { type: 'beat', key: { ...ikey, port: 8082 } },
    { type: 'patch', key: { ...ikey, port: 8083 }, weight: 20_000 },
    { type: 'deregister', key: { ...ikey, ip: '999.1.1.1' } },
    { type: 'beat', key: ikey, body: { weight: 1, metadata: { k: 'v'.repeat(limits.metadataCharsMax + 1) } } },
    { type: 'deregister', key: { ...ikey, port: 8084 } },
  ];
  const batch = codec.decodeForwardBatch(codec.encodeForwardBatch(requests, 1_795_396_118_307), limits);
  assert.deepEqual(batch.requests, [requests[0], requests[2], requests[6]]);
  assert.equal(batch.sentAtMs, 1_795_396_118_307);
  assert.deepEqual(batch.refused.map((item) => [item.position, item.response.ok ? 'ok' : item.response.code]), [
    [1, 'CAIRN_INVALID_ARGUMENT'], [3, 'CAIRN_INVALID_ARGUMENT'], [4, 'CAIRN_INVALID_ARGUMENT'], [5, 'CAIRN_METADATA_TOO_LARGE'],
  ]);
  const message = (response: ForwardResponse | undefined): string => (response !== undefined && !response.ok ? response.message : '');
  assert.match(message(batch.refused[0]?.response), /^the responsible member refused the forwarded request: .*undecodable DistroWrite/);
  assert.match(message(batch.refused[1]?.response), /weights range/);
  assert.equal(batch.dropped.length, 4);
  assert.equal(batch.dropped[1]?.service, 'public/DEFAULT_GROUP/orders');
  // The answer holds one response per request sent, in order: the served ones' and the refused ones' errors.
  const served: ForwardResponse[] = [
    { ok: true, type: 'instance', entry: good, revision: 1 },
    { ok: true, type: 'beat', found: true, clientBeatIntervalMs: 5000 },
    { ok: true, type: 'removed', removed: true, revision: 2 },
  ];
  const answers = codec.answerForwardBatch(batch, served);
  assert.deepEqual(answers, [served[0], batch.refused[0]!.response, served[1], batch.refused[1]!.response, batch.refused[2]!.response, batch.refused[3]!.response, served[2]]);
  // It travels back as such, and the forwarding member reads each answer (decodeForwardBatchResponse).
  assert.deepEqual(codec.decodeForwardBatchResponse(codec.encodeForwardBatchResponse(answers), requests.length), answers);
  // A batch all of whose requests are bad is answered too, request by request.
  const allBad = codec.decodeForwardBatch(codec.encodeForwardBatch([requests[1]!, requests[4]!], 1), limits);
  assert.deepEqual(codec.answerForwardBatch(allBad, []).map((response) => response.ok), [false, false]);
});

test('a forward batch whose envelope is bad is still refused whole', () => {
  const beat: ForwardRequest = { type: 'beat', key: ikey };
  const bad: ForwardRequest = { type: 'beat', key: { ...ikey, ip: '999.1.1.1' } };
  const bounds = { distroSyncBatchMax: 10, distroMessageEntriesMax: 100, distroForwardBatchEntriesMax: 3 };
  assert.equal(codec.decodeForwardBatch(codec.encodeForwardBatch([beat, bad], 1), bounds).requests.length, 1);
  assert.throws(() => codec.decodeForwardBatch(codec.encodeForwardBatch([beat, bad, beat, bad], 1), bounds), refusal, 'too many requests, bad ones included');
  assert.throws(() => codec.decodeForwardBatch(codec.encodeForwardBatch([], 1), bounds), refusal, 'no request');
  // A renewal travels alone: one inside a batch breaks the protocol, even one whose keys are bad.
  assert.throws(() => codec.decodeForwardBatch(codec.encodeForwardBatch([beat, { type: 'renew', keys: [{ ...ikey, ip: '999.1.1.1' }] }], 1), bounds), refusal, 'a renewal');
  const bytes = codec.encodeForwardBatch([beat, bad], 1);
  assert.throws(() => codec.decodeForwardBatch(bytes.subarray(0, bytes.length - 3), bounds), refusal, 'framing cut short');
});

test('a lone Forward: a bad write is answered with its error; a renewal drops its bad keys and answers for the keys sent', () => {
  const write = codec.decodeForwardRequest(codec.encodeForwardRequest({ type: 'register', key: ikey, owner: '', fields: { weight: 1, enabled: true, healthy: true, metadata: { zone: lone } } }), limits);
  assert.ok(!write.ok, 'a write that fails validation is not served');
  assert.ok(!write.response.ok && write.response.code === 'CAIRN_INVALID_ARGUMENT', JSON.stringify(write.response));
  assert.equal(write.dropped.length, 1);
  const keys = [ikey, { ...ikey, ip: '999.1.1.1' }, { ...ikey, port: 2 }, { ...ikey, cluster: lone }, { ...ikey, port: 4 }];
  const renewal = codec.decodeForwardRequest(codec.encodeForwardRequest({ type: 'renew', keys }), limits);
  assert.ok(renewal.ok && renewal.request.type === 'renew', JSON.stringify(renewal));
  assert.deepEqual(renewal.request.keys, [keys[0], keys[2], keys[4]]);
  assert.equal(renewal.dropped.length, 2);
  // The member answers for the keys it was given; the answer is mapped back to the keys sent.
  const answer = codec.answerForward(renewal, { ok: true, type: 'renewed', count: 1, missing: [1, 2] });
  assert.deepEqual(answer, { ok: true, type: 'renewed', count: 1, missing: [2, 4] });
  // The envelope: no operation, too many keys.
  assert.throws(() => codec.decodeForwardRequest(new Uint8Array(0), limits), refusal);
  assert.throws(() => codec.decodeForwardRequest(codec.encodeForwardRequest({ type: 'renew', keys }), { ...limits, distroMessageEntriesMax: 4 }), refusal);
});

test('checksums, pull keys and last-beats questions drop their bad items alone; a dropped instance is answered HEARD_NEVER', () => {
  const badKey = { ...orders, service: lone };
  const checksums = screened<unknown[]>(codec.decodeChecksums(codec.encodeChecksums([{ key: orders, checksum: '1-a-b' }, { key: badKey, checksum: '1-c-d' }, { key: orders, checksum: 'x'.repeat(65) }]), limits));
  assert.deepEqual(checksums.value, [{ key: orders, checksum: '1-a-b' }]);
  assert.equal(checksums.dropped.length, 2);
  const keys = screened<unknown[]>(codec.decodePullRequest(codec.encodePullRequest([orders, { ...orders, group: '' }, { ...orders, service: 'billing' }]), limits));
  assert.deepEqual(keys.value, [orders, { ...orders, service: 'billing' }]);
  assert.equal(keys.dropped.length, 1);
  assert.throws(() => codec.decodePullRequest(codec.encodePullRequest([orders, badKey, orders]), { ...limits, distroSyncBatchMax: 2 }), refusal, 'too many keys');

  const address = (port: number, ip = '10.0.0.1'): { cluster: string; ip: string; port: number } => ({ cluster: 'DEFAULT', ip, port });
  const question = [
    { key: orders, instances: [address(1), address(70_000), address(3)] },
    { key: badKey, instances: [address(4), address(5)] },
    { key: { ...orders, service: 'billing' }, instances: [address(6, lone), address(7)] },
  ];
  const query = codec.decodeLastBeatsRequest(codec.encodeLastBeatsRequest(question), limits);
  const kept = screened<unknown[]>(query);
  assert.deepEqual(kept.value, [
    { key: orders, instances: [address(1), address(3)] },
    { key: { ...orders, service: 'billing' }, instances: [address(7)] },
  ]);
  assert.equal(kept.dropped.length, 3, 'a port, a service (with its two instances), an address');
  // One value per instance sent, in order; HEARD_NEVER where this member could hold nothing.
  assert.deepEqual(codec.answerLastBeats(query, [10, 30, 70]), [10, HEARD_NEVER, 30, HEARD_NEVER, HEARD_NEVER, HEARD_NEVER, 70]);
  assert.throws(() => codec.decodeLastBeatsRequest(codec.encodeLastBeatsRequest(question), { ...limits, distroMessageEntriesMax: 6 }), refusal, 'too many instances');
});

test('the warnings about dropped items are bounded: one per interval, naming a few items and counting the rest', () => {
  const gate = new codec.DroppedItemsLogGate();
  const count = limits.logItemsNamedMax + 12;
  const dropped = Array.from({ length: count }, (_, i) => ({ service: `public/DEFAULT_GROUP/s${i}`, reason: 'CAIRN_INVALID_ARGUMENT: bad' }));
  const first = gate.admit(1_000, 'peer', 'records', dropped);
  assert.ok(first !== null);
  assert.equal(first.dropped, count);
  assert.equal(first.items.length, limits.logItemsNamedMax);
  assert.equal(first.notNamed, 12);
  for (let t = 1_001; t < 11_000; t += 10) assert.equal(gate.admit(t, 'peer', 'forward', dropped.slice(0, 1)), null);
  const next = gate.admit(11_000, 'peer', 'checksums', dropped.slice(0, 2));
  assert.ok(next !== null);
  assert.equal(next.notNamed, 1000, 'the 1000 drops logged by no line since the first');
  assert.deepEqual(next.items.map((item) => item.service), ['public/DEFAULT_GROUP/s0', 'public/DEFAULT_GROUP/s1']);
});
