// Goal: pin the pure parts of the gRPC port that its socket tests cannot cover exhaustively: every code of the error
// catalog leaves with its catalog gRPC status and carries its Cairn code in the status message, the metadata and
// the google.rpc.ErrorInfo of grpc-status-details-bin; a client deadline becomes a bounded timeout; the port's
// size bounds follow src/limits.ts so that every answer the model allows fits in one response.
// Method: table-driven calls of statusOfError, callBudget and the bounds functions; no server, no sockets.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CairnError, errorCatalog, errorCodes } from '../../../src/errors.ts';
import { limits } from '../../../src/limits.ts';
import {
  decodeErrorInfo,
  errorCodeMetadataKey,
  leaderMetadataKey,
  retryableMetadataKey,
  statusDetailsMetadataKey,
  statusOfError,
  toCairnError,
} from '../../../src/api/grpc/errors.ts';
import { callBudget } from '../../../src/api/grpc/server.ts';
import {
  clusterMessageBytesMax,
  grpcResponseBytesMax,
  instanceMessageBytesMax,
  serviceMessageBytesMax,
  servicesPageSizeMax,
} from '../../../src/api/grpc/bounds.ts';

test('every catalog code leaves with its gRPC status and its code in the message, metadata and ErrorInfo', () => {
  for (const code of errorCodes) {
    const status = statusOfError(new CairnError(code, 'some detail', { details: { parameter: 'x', limit: 3, leader: null } }));
    assert.equal(status.code, errorCatalog[code].grpcStatus, code);
    assert.equal(status.details, `${code}: ${errorCatalog[code].message}: some detail`);
    assert.deepEqual(status.metadata.get(errorCodeMetadataKey), [code]);
    assert.deepEqual(status.metadata.get(retryableMetadataKey), [String(errorCatalog[code].retryable)]);
    assert.deepEqual(status.metadata.get(leaderMetadataKey), [], 'a null leader is not sent');
    const bytes = status.metadata.get(statusDetailsMetadataKey)[0];
    assert.ok(Buffer.isBuffer(bytes));
    assert.deepEqual(decodeErrorInfo(bytes), { reason: code, domain: 'cairn', metadata: { parameter: 'x', limit: '3' } });
  }
});

test('a leader hint travels as cairn-leader; anything that is not a CairnError becomes CAIRN_INTERNAL without its text', () => {
  const withLeader = statusOfError(new CairnError('CAIRN_NOT_LEADER', undefined, { details: { leader: '127.0.1.2:8848' } }));
  assert.deepEqual(withLeader.metadata.get(leaderMetadataKey), ['127.0.1.2:8848']);
  const internal = toCairnError(new TypeError('x is undefined at secret.ts:12'));
  assert.equal(internal.code, 'CAIRN_INTERNAL');
  assert.equal(statusOfError(internal).details, 'CAIRN_INTERNAL: internal error');
  assert.equal(decodeErrorInfo(Buffer.from([])), null, 'a status without details carries no ErrorInfo');
});

test('callBudget: no deadline, a remaining deadline less the answer margin, capped by the member bound, and a passed deadline', () => {
  const now = 1_000_000;
  const cases: Array<[string, Date | number, ReturnType<typeof callBudget>]> = [
    ['no deadline', Infinity, { timeoutMs: undefined }],
    ['250 ms left: answered 100 ms before the deadline', now + 250, { timeoutMs: 150 }],
    ['a Date deadline', new Date(now + 1200), { timeoutMs: 1100 }],
    ['150 ms left (under twice the margin): half of it', now + 150, { timeoutMs: 75 }],
    ['1 ms left', now + 1, { timeoutMs: 1 }],
    ['a minute left is capped', now + 60_000, { timeoutMs: 5000 }],
    ['just passed', now, 'expired'],
    ['long passed', now - 10, 'expired'],
  ];
  for (const [name, deadline, expected] of cases) assert.deepEqual(callBudget(deadline, now, 5000, 100), expected, name);
  assert.equal(limits.grpcAnswerMarginMs, 250);
});

test('size bounds: the largest instance list and service detail fit one response, and a services page never exceeds it', () => {
  const responseMax = grpcResponseBytesMax(limits);
  assert.ok(limits.instancesPerServiceMax * instanceMessageBytesMax(limits) < responseMax);
  assert.ok(limits.clustersPerServiceMax * clusterMessageBytesMax(limits) < responseMax);
  const pageMax = servicesPageSizeMax(limits);
  assert.ok(pageMax >= 100, `the default page size fits (page max ${pageMax})`);
  assert.ok(pageMax * serviceMessageBytesMax(limits) < responseMax);
  // Requests are bounded like HTTP bodies, and are far smaller than what a response may need.
  assert.ok(limits.requestBodyBytesMax < responseMax);
});
