// Goal: pin Nacos's parameter conventions as the HTTP adapter reads them (reference/NACOS.md §1.1): where a value
// comes from (query string first, then the body), blank equals absent, legacy aliases, grouped service names, and
// the strict type checks Cairn adds (numbers, booleans, metadata, request ids, member addresses), each refusal a
// CAIRN_INVALID_ARGUMENT whose details name the parameter and say whether it was missing or invalid.
// Method: table-driven calls of the pure functions in src/api/http/params.ts; no server.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CairnError } from '../../../src/errors.ts';
import {
  NacosParams,
  clientKindOf,
  compact,
  consistencyOf,
  memberAddress,
  pageOf,
  requestIdOf,
  serviceKeyOf,
} from '../../../src/api/http/params.ts';

function params(query: Record<string, unknown>, body: unknown = undefined): NacosParams {
  return NacosParams.from(query, body);
}

function refusal(run: () => unknown): { detail: string | undefined; parameter: unknown; problem: unknown } {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof CairnError, `expected a CairnError, got ${String(error)}`);
    assert.equal(error.code, 'CAIRN_INVALID_ARGUMENT');
    return { detail: error.detail, parameter: error.details?.['parameter'], problem: error.details?.['problem'] };
  }
  assert.fail('expected a refusal');
}

test('the query string wins over the body, and a repeated parameter counts once', () => {
  const p = params({ ip: ['1.1.1.1', '2.2.2.2'], port: '80' }, { ip: '3.3.3.3', weight: 2, healthy: false });
  assert.equal(p.optional('ip'), '1.1.1.1');
  assert.equal(p.optional('weight'), '2');
  assert.equal(p.boolean('healthy'), false);
});

test('a JSON body may carry objects: they are kept as JSON text', () => {
  const p = params({}, { metadata: { a: 'b' } });
  assert.deepEqual(p.metadata('metadata'), { a: 'b' });
});

test('blank is absent: optional takes the default, required refuses with Nacos\'s message', () => {
  const p = params({ serviceName: '  ', ip: '' });
  assert.equal(p.optional('serviceName'), undefined);
  const missing = refusal(() => p.required('ip'));
  assert.deepEqual(missing, { detail: "Param 'ip' is required.", parameter: 'ip', problem: 'missing' });
});

test('legacy aliases are read when the new name is absent', () => {
  const p = params({ cluster: 'c1', enable: 'false', valid: 'true', dom: 'svc' });
  assert.equal(p.optional('clusterName', 'cluster'), 'c1');
  assert.equal(p.boolean('enabled', 'enable'), false);
  assert.equal(p.boolean('healthy', 'valid'), true);
  assert.deepEqual(serviceKeyOf(p), { namespace: 'public', group: 'DEFAULT_GROUP', service: 'svc' });
});

test('integers: strict decimal digits within Java int and the given range', () => {
  const cases: Array<[string, number | 'refused']> = [
    ['80', 80], [' 80 ', 80], ['+7', 7], ['-1', -1], ['0', 0],
    ['x', 'refused'], ['8.5', 'refused'], ['1e3', 'refused'], ['0x10', 'refused'], ['99999999999', 'refused'], ['', 'refused'],
  ];
  for (const [text, expected] of cases) {
    const p = params({ port: text });
    if (text === '') assert.equal(p.integer('port'), undefined);
    else if (expected === 'refused') assert.equal(refusal(() => p.integer('port')).parameter, 'port', text);
    else assert.equal(p.integer('port'), expected, text);
  }
  assert.match(refusal(() => params({ port: '70000' }).integer('port', { min: 0, max: 65535 })).detail ?? '', /between 0 and 65535/);
});

test('decimals: what Double.parseDouble reads, without NaN or Infinity', () => {
  const cases: Array<[string, number | 'refused']> = [
    ['1', 1], ['0.5', 0.5], ['.5', 0.5], ['1.', 1], ['1e2', 100], ['-3', -3],
    ['abc', 'refused'], ['NaN', 'refused'], ['Infinity', 'refused'], ['1,5', 'refused'], ['0x1', 'refused'],
  ];
  for (const [text, expected] of cases) {
    const p = params({ weight: text });
    if (expected === 'refused') assert.equal(refusal(() => p.number('weight')).parameter, 'weight', text);
    else assert.equal(p.number('weight'), expected, text);
  }
});

test('booleans: true or false in any case; anything else is refused (Nacos reads it as false)', () => {
  assert.equal(params({ healthy: 'TRUE' }).boolean('healthy'), true);
  assert.equal(params({ healthy: 'False' }).boolean('healthy'), false);
  for (const text of ['yes', '1', '0', 'on', 't']) {
    assert.deepEqual(refusal(() => params({ healthy: text }).boolean('healthy')).parameter, 'healthy', text);
  }
});

test('metadata: JSON object or k=v,k=v; anything else is "metadata format incorrect"', () => {
  assert.deepEqual(params({ metadata: '{"a":"1","n":2,"b":true}' }).metadata('metadata'), { a: '1', b: 'true', n: '2' });
  assert.deepEqual(params({ metadata: 'a=1,b=2' }).metadata('metadata'), { a: '1', b: '2' });
  assert.deepEqual(params({ metadata: '{"a":null,"b":"2"}' }).metadata('metadata'), { b: '2' }, 'a null value leaves its key out (Jackson: read as absent)');
  for (const text of ['a', 'a=1=2', '=v', '{"a":{"b":1}}', '{"a":', '[1]', '{"a":[null]}']) {
    const refused = refusal(() => params({ metadata: text }).metadata('metadata'));
    assert.equal(refused.parameter, 'metadata', text);
    assert.match(refused.detail ?? '', /metadata/, text);
  }
});

test('grouped names: group@@svc carries its group; malformed grouped names are refused', () => {
  assert.deepEqual(serviceKeyOf(params({ serviceName: 'g1@@svc', groupName: 'other', namespaceId: 'ns' })),
    { namespace: 'ns', group: 'g1', service: 'svc' });
  assert.deepEqual(serviceKeyOf(params({ serviceName: 'svc', groupName: 'g2' })), { namespace: 'public', group: 'g2', service: 'svc' });
  for (const name of ['@@svc', 'g@@', 'a@@b@@c']) assert.equal(refusal(() => serviceKeyOf(params({ serviceName: name }))).parameter, 'serviceName', name);
  assert.deepEqual(refusal(() => serviceKeyOf(params({}))), { detail: "Param 'serviceName' is required.", parameter: 'serviceName', problem: 'missing' });
});

test('consistency: local by default, linearizable on request, anything else refused', () => {
  assert.equal(consistencyOf(params({})), 'local');
  assert.equal(consistencyOf(params({ consistency: 'linearizable' })), 'linearizable');
  assert.equal(refusal(() => consistencyOf(params({ consistency: 'strong' }))).parameter, 'consistency');
});

test('pages: v1 requires both numbers, v2 defaults to 1/20; sizes beyond a namespace are clamped, never cut', () => {
  assert.equal(refusal(() => pageOf(params({ pageNo: '1' }), true)).parameter, 'pageSize');
  assert.deepEqual(pageOf(params({}), false), { pageNo: 1, pageSize: 20 });
  assert.equal(refusal(() => pageOf(params({ pageNo: '0', pageSize: '10' }), true)).parameter, 'pageNo');
  assert.deepEqual(pageOf(params({ pageNo: '2', pageSize: '99999' }), true), { pageNo: 2, pageSize: 10_000 });
});

test('request ids: Cairn-Request-Id first, then Nacos\'s RequestId; malformed ids are refused', () => {
  assert.equal(requestIdOf({}), undefined);
  assert.equal(requestIdOf({ requestid: 'nacos-1' }), 'nacos-1');
  assert.equal(requestIdOf({ 'cairn-request-id': 'cairn-1', requestid: 'nacos-1' }), 'cairn-1');
  assert.throws(() => requestIdOf({ 'cairn-request-id': 'has space' }), CairnError);
  assert.throws(() => requestIdOf({ 'cairn-request-id': 'x'.repeat(129) }), CairnError);
});

test('member addresses: HOST:PORT or [IPv6]:PORT', () => {
  assert.equal(memberAddress(params({ to: '127.0.0.12:8848' }), 'to'), '127.0.0.12:8848');
  assert.equal(memberAddress(params({ to: '[::1]:8848' }), 'to'), '[::1]:8848');
  for (const text of ['127.0.0.1', 'a:0', 'a:70000', 'a b:1', ':1']) assert.equal(refusal(() => memberAddress(params({ to: text }), 'to')).parameter, 'to', text);
  assert.equal(refusal(() => memberAddress(params({}), 'to')).problem, 'missing');
});

test('client kind: User-Agent first, Client-Version only when it is empty (Nacos WebUtils.getUserAgent); only Java clients >= 1.0 (and the npm client) count', () => {
  assert.equal(clientKindOf({ 'user-agent': 'Nacos-Java-Client:v1.0.0' }).javaV1, true);
  // The Java client sends Client-Version as a bare version: User-Agent decides.
  assert.equal(clientKindOf({ 'user-agent': 'Nacos-Java-Client:v1.4.1', 'client-version': '1.4.1' }).javaV1, true);
  assert.equal(clientKindOf({ 'client-version': 'Nacos-Java-Client:v2.1.0', 'user-agent': 'curl/8' }).javaV1, false);
  assert.equal(clientKindOf({ 'client-version': 'Nacos-Java-Client:v2.1.0', 'user-agent': '' }).javaV1, true);
  assert.equal(clientKindOf({ 'client-version': 'Nacos-Java-Client:v2.1.0' }).javaV1, true);
  assert.equal(clientKindOf({ 'user-agent': 'Nacos-Java-Client:v0.9.0' }).javaV1, false);
  assert.equal(clientKindOf({ 'user-agent': 'curl/8.5.0' }).javaV1, false);
  assert.equal(clientKindOf({}).javaV1, false);
});

test('compact drops undefined fields', () => {
  assert.deepEqual(compact({ a: 1, b: undefined, c: false }), { a: 1, c: false });
});
