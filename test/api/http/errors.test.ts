// Goal: pin how every operating error of the catalog leaves the HTTP API: its Nacos v1 status (Nacos's 400/404
// choices for conflicts and missing resources), its Nacos v2 numeric code (api/model/v2/ErrorCode.java), the text
// that carries the Cairn code, and the mapping of framework refusals (body too large, unreadable body) and of
// anything unexpected (CAIRN_INTERNAL, message withheld).
// Method: a golden table over the whole catalog, written out literally, compared in both directions with the
// mapping functions of src/api/http/errors.ts; a new catalog code fails here until it is given its Nacos answer.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CairnError, errorCodes, type CairnErrorCode } from '../../../src/errors.ts';
import { errorText, flavourOf, nacosStatusOf, nacosV2CodeOf, toCairnError } from '../../../src/api/http/errors.ts';
import { paramInvalid, paramMissing } from '../../../src/api/http/params.ts';

// code -> [v1 status for a write, v1 status for a GET, v2 code on an instance route]
const golden: Readonly<Record<CairnErrorCode, readonly [number, number, number]>> = {
  CAIRN_INVALID_ARGUMENT: [400, 400, 20002],
  CAIRN_NAME_TOO_LONG: [400, 400, 20002],
  CAIRN_METADATA_TOO_LARGE: [400, 400, 21002],
  CAIRN_REQUEST_TOO_LARGE: [413, 413, 20002],
  CAIRN_ENTRY_TOO_LARGE: [413, 413, 20002],
  CAIRN_REQUEST_ID_REUSED: [400, 400, 20002],
  CAIRN_REQUEST_TIMEOUT: [408, 408, 30000],
  CAIRN_INSTANCES_PER_SERVICE_EXCEEDED: [400, 400, 20005],
  CAIRN_CLUSTERS_PER_SERVICE_EXCEEDED: [400, 400, 20005],
  CAIRN_SERVICES_PER_NAMESPACE_EXCEEDED: [400, 400, 20005],
  CAIRN_NAMESPACES_EXCEEDED: [400, 400, 20005],
  CAIRN_SUBSCRIBERS_PER_SERVICE_EXCEEDED: [429, 429, 20005],
  CAIRN_SUBSCRIBERS_EXCEEDED: [429, 429, 20005],
  CAIRN_SUBSCRIBER_TOO_SLOW: [429, 429, 20005],
  CAIRN_SESSION_EXPIRED: [410, 410, 21004],
  CAIRN_MEMBER_BEHIND: [503, 503, 30000],
  CAIRN_NOT_LEADER: [503, 503, 30000],
  CAIRN_NO_LEADER: [503, 503, 30000],
  CAIRN_NO_QUORUM: [503, 503, 30000],
  CAIRN_OUTCOME_UNKNOWN: [504, 504, 30000],
  CAIRN_PROPOSAL_DROPPED: [503, 503, 30000],
  CAIRN_UNCOMMITTED_BYTES_EXCEEDED: [503, 503, 30000],
  CAIRN_TOO_MANY_PENDING_READS: [503, 503, 30000],
  CAIRN_TRANSFER_IN_PROGRESS: [503, 503, 30000],
  CAIRN_MEMBERSHIP_CHANGE_PENDING: [400, 400, 20005],
  CAIRN_VERSION_MISMATCH: [400, 400, 20005],
  CAIRN_MEMBERSHIP_CHANGE_INVALID: [400, 400, 20002],
  CAIRN_MEMBER_NOT_FOUND: [400, 404, 20002],
  CAIRN_MEMBER_STATE_MISSING: [503, 503, 30000],
  CAIRN_NAMESPACE_NOT_FOUND: [400, 404, 22001],
  CAIRN_SERVICE_NOT_FOUND: [400, 404, 21008],
  CAIRN_SERVICE_ALREADY_EXISTS: [400, 400, 21007],
  CAIRN_SERVICE_HAS_INSTANCES: [400, 400, 21009],
  CAIRN_INSTANCE_NOT_FOUND: [400, 404, 21003],
  CAIRN_EPHEMERAL_MISMATCH: [400, 400, 21004],
  CAIRN_HEALTH_CHECK_ACTIVE: [400, 400, 21011],
  CAIRN_DISTRO_UNAVAILABLE: [503, 503, 30000],
  CAIRN_SESSION_CLOSED: [400, 400, 21004],
  CAIRN_UNAUTHORIZED: [401, 401, 10001],
  CAIRN_FORBIDDEN: [403, 403, 10001],
  CAIRN_SHUTTING_DOWN: [503, 503, 30000],
  CAIRN_MEMBER_STALLED: [503, 503, 30000],
  CAIRN_STORAGE_CORRUPT: [500, 500, 30000],
  CAIRN_STORAGE_IO_ERROR: [503, 503, 30000],
  CAIRN_DATA_DIR_IN_USE: [400, 400, 30000],
  CAIRN_NOT_IMPLEMENTED: [501, 501, 30000],
  CAIRN_INTERNAL: [500, 500, 30000],
  CAIRN_SESSION_INSTANCES_EXCEEDED: [400, 400, 20005],
  CAIRN_SESSIONS_EXCEEDED: [503, 503, 20005],
};

test('every catalog code has a Nacos answer, and the golden table has no stale code', () => {
  assert.deepEqual(Object.keys(golden).sort(), [...errorCodes].sort());
});

test('v1 statuses: conflicts are 400; a missing resource is 404 when read, 400 when written', () => {
  for (const code of errorCodes) {
    const error = new CairnError(code);
    const [write, read] = golden[code];
    assert.equal(nacosStatusOf(error, 'POST', 'nacos-v1'), write, `${code} on a write`);
    assert.equal(nacosStatusOf(error, 'GET', 'nacos-v1'), read, `${code} on a read`);
  }
});

test('v2 statuses keep 404 for missing resources on every method (Nacos 2.x NacosApiException), but a missing service is 400 on the service endpoints', () => {
  assert.equal(nacosStatusOf(new CairnError('CAIRN_INSTANCE_NOT_FOUND'), 'PUT', 'nacos-v2'), 404);
  assert.equal(nacosStatusOf(new CairnError('CAIRN_SERVICE_ALREADY_EXISTS'), 'POST', 'nacos-v2'), 400);
  // ServiceOperatorV2Impl: NacosApiException(INVALID_PARAM, SERVICE_NOT_EXIST) on query, update and delete.
  for (const method of ['GET', 'PUT', 'DELETE']) {
    assert.equal(nacosStatusOf(new CairnError('CAIRN_SERVICE_NOT_FOUND'), method, 'nacos-v2', '/nacos/v2/ns/service'), 400, method);
  }
  assert.equal(nacosStatusOf(new CairnError('CAIRN_SERVICE_NOT_FOUND'), 'GET', 'nacos-v2', '/nacos/v2/ns/instance'), 404);
  assert.equal(nacosStatusOf(new CairnError('CAIRN_SERVICE_NOT_FOUND'), 'GET', 'nacos-v1', '/nacos/v1/ns/service'), 404);
});

test('v2 codes: the golden table, and parameter-specific codes', () => {
  for (const code of errorCodes) assert.equal(nacosV2CodeOf(new CairnError(code), false).code, golden[code][2], code);
  const cases: Array<[CairnError, boolean, number]> = [
    [paramMissing('ip'), false, 10000],
    [paramMissing('healthy'), false, 21010],
    [paramInvalid('weight', 'is bad'), false, 21001],
    [paramInvalid('metadata', 'is bad'), false, 21002],
    [paramInvalid('metadata', 'is bad'), true, 21005],
    [new CairnError('CAIRN_METADATA_TOO_LARGE'), true, 21005],
    [paramInvalid('selector', 'is bad'), true, 21006],
    [paramInvalid('serviceName', 'is bad'), false, 21000],
    [paramInvalid('port', 'is bad'), false, 20002],
    // The naming layer's own "is required." errors count as missing too.
    [new CairnError('CAIRN_INVALID_ARGUMENT', "Param 'ip' is required.", { details: { parameter: 'ip' } }), false, 10000],
  ];
  for (const [error, serviceRoute, expected] of cases) assert.equal(nacosV2CodeOf(error, serviceRoute).code, expected, error.message);
  assert.equal(nacosV2CodeOf(paramMissing('ip'), false).message, 'parameter missing');
});

test('error text: the request-specific sentence, else the catalog message; always ending with the code', () => {
  assert.equal(errorText(paramMissing('serviceName')), "Param 'serviceName' is required. (CAIRN_INVALID_ARGUMENT)");
  assert.equal(errorText(new CairnError('CAIRN_NO_QUORUM')), 'this member cannot reach a majority of the cluster (CAIRN_NO_QUORUM)');
  assert.equal(errorText(new CairnError('CAIRN_SERVICE_NOT_FOUND', 'DEFAULT_GROUP@@a')), 'DEFAULT_GROUP@@a (CAIRN_SERVICE_NOT_FOUND)');
});

test('framework refusals become catalog codes; anything else is CAIRN_INTERNAL with its message withheld', () => {
  const tooLarge = Object.assign(new Error('Request body is too large'), { code: 'FST_ERR_CTP_BODY_TOO_LARGE', statusCode: 413 });
  assert.equal(toCairnError(tooLarge).code, 'CAIRN_REQUEST_TOO_LARGE');
  const badRequest = Object.assign(new Error('bad content length'), { code: 'FST_ERR_CTP_INVALID_CONTENT_LENGTH', statusCode: 400 });
  assert.equal(toCairnError(badRequest).code, 'CAIRN_INVALID_ARGUMENT');
  const bug = toCairnError(new TypeError('secret internals'));
  assert.equal(bug.code, 'CAIRN_INTERNAL');
  assert.doesNotMatch(errorText(bug), /secret internals/);
  const same = new CairnError('CAIRN_NO_LEADER');
  assert.equal(toCairnError(same), same);
});

test('the flavour of an answer follows the path', () => {
  assert.equal(flavourOf('/nacos/v1/ns/instance'), 'nacos-v1');
  assert.equal(flavourOf('/nacos/v2/ns/instance'), 'nacos-v2');
  assert.equal(flavourOf('/nacos/anything'), 'nacos-v1');
  assert.equal(flavourOf('/cairn/v1/cluster'), 'cairn');
  assert.equal(flavourOf('/metrics'), 'cairn');
});
