// Goal: under `npm run bench -- --decode-records` etcd's and ZooKeeper's lists hand back the instances a consumer
// works with, as Cairn's clients do, so the decoding must give back exactly the record the bench stored (from an
// etcd value as bytes or base64, and from a ZooKeeper child name, URL-encoded) and must refuse what is not a record
// rather than count it.
// Method: the bench's own record of list slots, encoded as each system stores it, through decodeRecord; no server
// (the drivers' calls are exercised against the real systems by `npm run bench`, which needs etcd and ZooKeeper).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeRecord, listSlot, metadataOf, recordJson, recordOf } from '../../bench/lib/driver.ts';
import { decodedRecordsNote, renderReport } from '../../bench/lib/report.ts';

test('a stored record decodes to the record the bench wrote, whichever way the system stores it', () => {
  for (const i of [0, 1, 99, 250, 4_321]) {
    const slot = listSlot(i);
    const expected = JSON.parse(JSON.stringify(recordOf(slot, metadataOf(slot)))) as unknown;
    const json = recordJson(slot);
    assert.ok(json.length >= 380 && json.length <= 420, `the record is ~400 bytes (${json.length})`);
    // etcd over gRPC: the value's bytes; over the JSON gateway: base64; ZooKeeper: the child name, URL-encoded.
    assert.deepEqual(decodeRecord(Buffer.from(json, 'utf8').toString('utf8')), expected);
    assert.deepEqual(decodeRecord(Buffer.from(Buffer.from(json).toString('base64'), 'base64').toString('utf8')), expected);
    const childName = encodeURIComponent(json);
    assert.ok(!childName.includes('/'), 'a child name holds no path separator');
    assert.deepEqual(decodeRecord(decodeURIComponent(childName)), expected);
    const decoded = decodeRecord(json);
    assert.equal(decoded['ip'], slot.ip);
    assert.equal(decoded['port'], slot.port);
    assert.equal((decoded['metadata'] as Record<string, string>)['app'], 'checkout-api');
  }
});

test('what is not a record is refused, not counted', () => {
  assert.throws(() => decodeRecord('[1,2]'), /not a JSON object/);
  assert.throws(() => decodeRecord('null'), /not a JSON object/);
  assert.throws(() => decodeRecord('"text"'), /not a JSON object/);
  assert.throws(() => decodeRecord('{"ip":'), SyntaxError);
});

test('a report of a run with --decode-records says so above its rows; one without does not', () => {
  const meta = { date: '2026-11-24T00:00:00.000Z', machine: {}, versions: {} };
  assert.ok(renderReport([], [], { ...meta, options: { decodeRecords: true } }).markdown.includes(decodedRecordsNote));
  assert.ok(!renderReport([], [], { ...meta, options: { decodeRecords: false } }).markdown.includes(decodedRecordsNote));
  assert.match(decodedRecordsNote, /not the issue's range-alone and getChildren-alone comparisons/);
});
