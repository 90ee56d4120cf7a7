// Goal: pin the error catalog, the contract clients match on (STYLE.md §4). Any change to a code, its HTTP status,
// its gRPC status or its retryability must show up as a change to this file, and every code must be explained in
// docs/errors.md with the same statuses.
// Method: a golden table written out literally is compared with the catalog in both directions; structural rules
// (unique codes, the CAIRN_ pattern, valid statuses) are checked per entry; docs/errors.md is read and each code's
// table row is parsed and compared; CairnError and the Raft-code mapping are exercised directly.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ProposeErrorCode, ReadIndexErrorCode } from '../src/raft/types.ts';
import {
  CairnError,
  GrpcStatus,
  cairnCodeOfRaftError,
  cairnErrorFromRaft,
  errorCatalog,
  errorCodes,
  isCairnError,
  isCairnErrorCode,
  type CairnErrorCode,
  type RaftErrorCode,
  type TransferErrorCode,
} from '../src/errors.ts';
import { AssertionError, assertNever } from '../src/assert.ts';

// code, httpStatus, grpcStatus, retryable — written out literally on purpose.
const golden: ReadonlyArray<readonly [string, number, number, boolean]> = [
  ['CAIRN_INVALID_ARGUMENT', 400, 3, false],
  ['CAIRN_NAME_TOO_LONG', 400, 3, false],
  ['CAIRN_METADATA_TOO_LARGE', 400, 3, false],
  ['CAIRN_REQUEST_TOO_LARGE', 413, 3, false],
  ['CAIRN_ENTRY_TOO_LARGE', 413, 3, false],
  ['CAIRN_REQUEST_ID_REUSED', 409, 9, false],
  ['CAIRN_REQUEST_TIMEOUT', 408, 4, true],
  ['CAIRN_MEMBER_STALLED', 503, 14, true],
  ['CAIRN_INSTANCES_PER_SERVICE_EXCEEDED', 409, 8, false],
  ['CAIRN_CLUSTERS_PER_SERVICE_EXCEEDED', 409, 8, false],
  ['CAIRN_SERVICES_PER_NAMESPACE_EXCEEDED', 409, 8, false],
  ['CAIRN_NAMESPACES_EXCEEDED', 409, 8, false],
  ['CAIRN_SUBSCRIBERS_PER_SERVICE_EXCEEDED', 429, 8, true],
  ['CAIRN_SUBSCRIBERS_EXCEEDED', 429, 8, true],
  ['CAIRN_SUBSCRIBER_TOO_SLOW', 429, 8, true],
  ['CAIRN_MEMBER_BEHIND', 503, 14, true],
  ['CAIRN_SESSION_EXPIRED', 410, 10, true],
  ['CAIRN_NOT_LEADER', 503, 14, true],
  ['CAIRN_NO_LEADER', 503, 14, true],
  ['CAIRN_NO_QUORUM', 503, 14, true],
  ['CAIRN_OUTCOME_UNKNOWN', 504, 4, true],
  ['CAIRN_PROPOSAL_DROPPED', 503, 14, true],
  ['CAIRN_UNCOMMITTED_BYTES_EXCEEDED', 503, 8, true],
  ['CAIRN_TOO_MANY_PENDING_READS', 503, 8, true],
  ['CAIRN_TRANSFER_IN_PROGRESS', 503, 14, true],
  ['CAIRN_MEMBERSHIP_CHANGE_PENDING', 409, 10, true],
  ['CAIRN_MEMBERSHIP_CHANGE_INVALID', 400, 9, false],
  ['CAIRN_MEMBER_NOT_FOUND', 404, 5, false],
  ['CAIRN_MEMBER_STATE_MISSING', 503, 9, false],
  ['CAIRN_NAMESPACE_NOT_FOUND', 404, 5, false],
  ['CAIRN_SERVICE_NOT_FOUND', 404, 5, false],
  ['CAIRN_SERVICE_ALREADY_EXISTS', 409, 6, false],
  ['CAIRN_SERVICE_HAS_INSTANCES', 409, 9, false],
  ['CAIRN_INSTANCE_NOT_FOUND', 404, 5, false],
  ['CAIRN_VERSION_MISMATCH', 409, 9, false],
  ['CAIRN_EPHEMERAL_MISMATCH', 400, 9, false],
  ['CAIRN_HEALTH_CHECK_ACTIVE', 400, 9, false],
  ['CAIRN_DISTRO_UNAVAILABLE', 503, 14, true],
  ['CAIRN_SESSION_CLOSED', 409, 9, false],
  ['CAIRN_UNAUTHORIZED', 401, 16, false],
  ['CAIRN_FORBIDDEN', 403, 7, false],
  ['CAIRN_SHUTTING_DOWN', 503, 14, true],
  ['CAIRN_STORAGE_CORRUPT', 500, 15, false],
  ['CAIRN_STORAGE_IO_ERROR', 503, 9, false],
  ['CAIRN_DATA_DIR_IN_USE', 409, 9, false],
  ['CAIRN_NOT_IMPLEMENTED', 501, 12, false],
  ['CAIRN_INTERNAL', 500, 13, false],
  ['CAIRN_SESSION_INSTANCES_EXCEEDED', 409, 8, false],
  ['CAIRN_SESSIONS_EXCEEDED', 503, 8, true],
];

const grpcNameOf = new Map<number, string>(Object.entries(GrpcStatus).map(([name, value]) => [value, name]));

test('the catalog matches the golden table exactly, in order', () => {
  const actual = errorCodes.map((code) => {
    const entry = errorCatalog[code];
    return [entry.code, entry.httpStatus, entry.grpcStatus, entry.retryable] as const;
  });
  assert.deepEqual(actual, golden);
});

test('codes are unique, match /^CAIRN_[A-Z_]+$/ and equal their catalog key', () => {
  assert.equal(new Set(errorCodes).size, errorCodes.length);
  for (const code of errorCodes) {
    assert.match(code, /^CAIRN_[A-Z_]+$/);
    assert.equal(errorCatalog[code].code, code);
  }
});

test('every entry has a valid 4xx/5xx HTTP status, a known non-OK gRPC status and a message', () => {
  for (const code of errorCodes) {
    const entry = errorCatalog[code];
    assert.ok(Number.isInteger(entry.httpStatus) && entry.httpStatus >= 400 && entry.httpStatus <= 599, `${code} httpStatus`);
    assert.ok(grpcNameOf.has(entry.grpcStatus) && entry.grpcStatus !== GrpcStatus.OK, `${code} grpcStatus`);
    assert.ok(entry.message.length > 0, `${code} message`);
  }
});

test('the catalog and its entries are frozen', () => {
  assert.ok(Object.isFrozen(errorCatalog));
  assert.ok(Object.isFrozen(errorCodes));
  for (const code of errorCodes) assert.ok(Object.isFrozen(errorCatalog[code]), code);
});

test('the gRPC status map has the standard numbers', () => {
  assert.deepEqual(Object.entries(GrpcStatus), [
    ['OK', 0], ['CANCELLED', 1], ['UNKNOWN', 2], ['INVALID_ARGUMENT', 3], ['DEADLINE_EXCEEDED', 4],
    ['NOT_FOUND', 5], ['ALREADY_EXISTS', 6], ['PERMISSION_DENIED', 7], ['RESOURCE_EXHAUSTED', 8],
    ['FAILED_PRECONDITION', 9], ['ABORTED', 10], ['OUT_OF_RANGE', 11], ['UNIMPLEMENTED', 12], ['INTERNAL', 13],
    ['UNAVAILABLE', 14], ['DATA_LOSS', 15], ['UNAUTHENTICATED', 16],
  ]);
});

test('docs/errors.md documents every code with the same statuses and retryability', () => {
  const docPath = fileURLToPath(new URL('../docs/errors.md', import.meta.url));
  const doc = readFileSync(docPath, 'utf8');
  for (const code of errorCodes) {
    const entry = errorCatalog[code];
    const row = doc.split('\n').find((line) => line.startsWith(`| \`${code}\` |`));
    assert.ok(row !== undefined, `${code} has no table row in docs/errors.md`);
    const cells = row.split('|').map((cell) => cell.trim());
    // cells: ['', code, http, grpc, retryable, ...]
    assert.equal(cells[2], String(entry.httpStatus), `${code} HTTP status in docs`);
    assert.equal(cells[3], `${entry.grpcStatus} ${grpcNameOf.get(entry.grpcStatus) ?? '?'}`, `${code} gRPC status in docs`);
    assert.equal(cells[4], entry.retryable ? 'yes' : 'no', `${code} retryability in docs`);
  }
  assert.match(doc, /timed out after the proposal left: outcome unknown/i);
  assert.match(doc, /retry with the same request id/i);
});

test('CairnError carries the catalog fields, the detail and the details', () => {
  const error = new CairnError('CAIRN_SERVICE_NOT_FOUND', 'public/DEFAULT_GROUP@@orders', { details: { service: 'orders' } });
  assert.ok(error instanceof Error);
  assert.equal(error.name, 'CairnError');
  assert.equal(error.code, 'CAIRN_SERVICE_NOT_FOUND');
  assert.equal(error.httpStatus, 404);
  assert.equal(error.grpcStatus, GrpcStatus.NOT_FOUND);
  assert.equal(error.retryable, false);
  assert.equal(error.message, 'service not found: public/DEFAULT_GROUP@@orders');
  assert.equal(error.detail, 'public/DEFAULT_GROUP@@orders');
  assert.deepEqual(error.details, { service: 'orders' });
  assert.deepEqual(JSON.parse(JSON.stringify(error)), {
    code: 'CAIRN_SERVICE_NOT_FOUND',
    message: 'service not found: public/DEFAULT_GROUP@@orders',
    retryable: false,
    details: { service: 'orders' },
  });
});

test('CairnError without a detail uses the catalog message and keeps its cause', () => {
  const cause = new Error('socket closed');
  const error = new CairnError('CAIRN_OUTCOME_UNKNOWN', undefined, { cause });
  assert.equal(error.message, 'timed out after the proposal left: outcome unknown');
  assert.equal(error.detail, undefined);
  assert.equal(error.details, undefined);
  assert.equal(error.cause, cause);
  assert.equal(error.retryable, true);
  assert.deepEqual(error.toJSON(), { code: 'CAIRN_OUTCOME_UNKNOWN', message: error.message, retryable: true });
});

test('isCairnError and isCairnErrorCode recognise catalog errors only', () => {
  const error = new CairnError('CAIRN_NO_QUORUM');
  assert.equal(isCairnError(error), true);
  assert.equal(isCairnError(error, 'CAIRN_NO_QUORUM'), true);
  assert.equal(isCairnError(error, 'CAIRN_NO_LEADER'), false);
  assert.equal(isCairnError(new Error('x')), false);
  assert.equal(isCairnError({ code: 'CAIRN_NO_QUORUM' }), false);
  assert.equal(isCairnError(null), false);
  assert.equal(isCairnErrorCode('CAIRN_NO_QUORUM'), true);
  assert.equal(isCairnErrorCode('CAIRN_NOPE'), false);
  assert.equal(isCairnErrorCode('toString'), false);
  assert.equal(isCairnErrorCode(3), false);
});

test('every Raft core refusal maps to its catalog code', () => {
  const proposeCodes: Record<ProposeErrorCode, CairnErrorCode> = {
    'not-leader': 'CAIRN_NOT_LEADER',
    'transfer-in-progress': 'CAIRN_TRANSFER_IN_PROGRESS',
    'uncommitted-bytes-exceeded': 'CAIRN_UNCOMMITTED_BYTES_EXCEEDED',
    'entry-too-large': 'CAIRN_ENTRY_TOO_LARGE',
    'membership-change-pending': 'CAIRN_MEMBERSHIP_CHANGE_PENDING',
    'membership-change-invalid': 'CAIRN_MEMBERSHIP_CHANGE_INVALID',
  };
  const readCodes: Record<ReadIndexErrorCode, CairnErrorCode> = {
    'no-leader': 'CAIRN_NO_LEADER',
    'too-many-pending-reads': 'CAIRN_TOO_MANY_PENDING_READS',
  };
  const transferCodes: Record<TransferErrorCode, CairnErrorCode> = {
    'not-leader': 'CAIRN_NOT_LEADER',
    'unknown-member': 'CAIRN_MEMBER_NOT_FOUND',
    'transfer-in-progress': 'CAIRN_TRANSFER_IN_PROGRESS',
  };
  for (const table of [proposeCodes, readCodes, transferCodes]) {
    for (const [raftCode, cairnCode] of Object.entries(table)) {
      assert.equal(cairnCodeOfRaftError(raftCode as RaftErrorCode), cairnCode, raftCode);
    }
  }
});

test('cairnErrorFromRaft carries the leader hint and reports not-leader without a leader as no leader', () => {
  const withLeader = cairnErrorFromRaft('not-leader', '127.0.0.12:8848');
  assert.equal(withLeader.code, 'CAIRN_NOT_LEADER');
  assert.deepEqual(withLeader.details, { leader: '127.0.0.12:8848' });
  const withoutLeader = cairnErrorFromRaft('not-leader', null);
  assert.equal(withoutLeader.code, 'CAIRN_NO_LEADER');
  assert.deepEqual(withoutLeader.details, { leader: null });
  assert.equal(cairnErrorFromRaft('entry-too-large', null).code, 'CAIRN_ENTRY_TOO_LARGE');
});

test('an unknown Raft code is a programmer error', () => {
  assert.throws(() => cairnCodeOfRaftError('no-such-code' as RaftErrorCode), AssertionError);
  assert.throws(() => assertNever('x' as never), { name: 'AssertionError', message: /"x"/ });
});
