// Goal: the naming model's validation accepts what Nacos accepts (NACOS.md §1.2, §1.5, §4.1, §5.6) within Cairn's
// limits, refuses the rest with a CairnError whose code is right and whose message names the parameter, and keeps
// Cairn's documented deviations (control characters, unknown checker types, empty metadata keys, port 0 allowed).
// Method: tables of accepted and refused inputs per validator, each refusal checked for its code, its
// details.parameter and a message fragment; parsers (metadata, selector, health checker, grouped names) are checked
// on Nacos's wire forms, with the length limits probed exactly at and one past the bound.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CairnError, type CairnErrorCode } from '../../src/errors.ts';
import { limits } from '../../src/limits.ts';
import { MYSQL_READ_ONLY_SQL, instanceId, parseGroupedName, groupedName, redactCluster, defaultClusterConfig } from '../../src/naming/model.ts';
import {
  parseHeaders,
  parseHealthChecker,
  parseMetadata,
  parseSelector,
  validateCheckPort,
  validateClusterName,
  validateGroup,
  validateHealthChecker,
  validateIp,
  validateMetadata,
  validateNamespace,
  validatePage,
  validatePort,
  validateProtectThreshold,
  validateRequestId,
  validateSelector,
  validateServiceName,
  validateWeight,
} from '../../src/naming/validation.ts';

/** refuses asserts that `run` throws a CairnError with `code`, naming `parameter`, with `fragment` in its message. */
function refuses(run: () => unknown, code: CairnErrorCode, parameter: string, fragment?: string | RegExp): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof CairnError, `expected a CairnError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    assert.equal(error.details?.['parameter'], parameter, error.message);
    if (typeof fragment === 'string') assert.ok(error.message.includes(fragment), error.message);
    else if (fragment !== undefined) assert.match(error.message, fragment);
    return true;
  });
}

const nul = '\u0000';

test('names: accepted and refused per Nacos 2.x patterns, plus control characters', () => {
  const cases: ReadonlyArray<readonly [(value: unknown) => unknown, string, readonly unknown[], readonly unknown[]]> = [
    [validateNamespace, 'namespaceId', ['public', 'dev-1', 'a_b', '6f1c-4d2e'], ['', 'a b', 'a.b', 'ns/1', `a${nul}`, 7]],
    [validateGroup, 'groupName', ['DEFAULT_GROUP', 'a:b.c-d_e'], ['', 'a@b', 'a b', `g${nul}`, 'g/1']],
    [validateServiceName, 'serviceName', ['orders', 'a@b', 'a.b:c-d_e', 'svc@', 'ümlaut', 'providers:com.foo.Bar:1.0.0:'],
      ['', '@orders', 'a@@b', 'a b', 'x\ty', '订单', ` lead`, `a${nul}b`, 'a\u007f']],
    [validateClusterName, 'clusterName', ['DEFAULT', 'dc-1', 'dc_1'], ['', 'dc.1', 'dc 1', 'dc:1', `d${nul}`]],
    [validateIp, 'ip', ['10.0.0.1', '001.002.003.004', 'fe80::1', 'db.example.com', 'host_1'], ['', '256.1.1.1', '1.2.3', '1..2.3', 'a b', `h${nul}`, '主机']],
  ];
  for (const [validate, parameter, good, bad] of cases) {
    for (const value of good) assert.equal(validate(value), value, `${parameter} ${String(value)}`);
    for (const value of bad) {
      assert.throws(() => validate(value), (error: unknown) => error instanceof CairnError && error.code === 'CAIRN_INVALID_ARGUMENT' && error.details?.['parameter'] === parameter, `${parameter} ${JSON.stringify(value)}`);
    }
  }
});

test('name lengths: the Nacos 2.x maxima are inclusive; one more is CAIRN_NAME_TOO_LONG', () => {
  const table: ReadonlyArray<readonly [(value: unknown) => unknown, string, number, string]> = [
    [validateNamespace, 'namespaceId', limits.namespaceIdCharsMax, 'n'],
    [validateGroup, 'groupName', limits.groupNameCharsMax, 'g'],
    [validateServiceName, 'serviceName', limits.serviceNameCharsMax, 's'],
    [validateClusterName, 'clusterName', limits.clusterNameCharsMax, 'c'],
    [validateIp, 'ip', limits.ipCharsMax, 'h'],
    [validateRequestId, 'requestId', limits.requestIdCharsMax, 'r'],
  ];
  for (const [validate, parameter, max, char] of table) {
    assert.equal(validate(char.repeat(max)), char.repeat(max));
    refuses(() => validate(char.repeat(max + 1)), 'CAIRN_NAME_TOO_LONG', parameter, `longer than ${max}`);
  }
});

test('numbers: port 0..65535 (0 allowed, as Nacos), weight [0, 10000], protectThreshold [0, 1]', () => {
  for (const port of [0, 1, 8080, 65_535]) assert.equal(validatePort(port), port);
  for (const port of [-1, 65_536, 1.5, Number.NaN, '80']) refuses(() => validatePort(port), 'CAIRN_INVALID_ARGUMENT', 'port', '0..65535');
  for (const weight of [0, 0.01, 1, 10_000]) assert.equal(validateWeight(weight), weight);
  for (const weight of [-0.1, 10_000.5, Number.POSITIVE_INFINITY, Number.NaN]) {
    refuses(() => validateWeight(weight), 'CAIRN_INVALID_ARGUMENT', 'weight', 'The weights range from 0.0 to 10000.0');
  }
  for (const threshold of [0, 0.5, 1]) assert.equal(validateProtectThreshold(threshold), threshold);
  for (const threshold of [-0.01, 1.01, Number.NaN]) refuses(() => validateProtectThreshold(threshold), 'CAIRN_INVALID_ARGUMENT', 'protectThreshold');
  assert.equal(validateCheckPort(0, true), 0);
  refuses(() => validateCheckPort(0, false), 'CAIRN_INVALID_ARGUMENT', 'checkPort', '1..65535');
});

test('request ids: printable ASCII without spaces', () => {
  assert.equal(validateRequestId('3f2c-uuid'), '3f2c-uuid');
  for (const bad of ['a b', 'é', `a${nul}`, '']) assert.throws(() => validateRequestId(bad), CairnError);
});

test('metadata: JSON or k=v as Nacos parses it; anything else is "metadata format incorrect"', () => {
  const accepted: ReadonlyArray<readonly [string, Record<string, string>]> = [
    ['', {}],
    ['   ', {}],
    ['{"b":"2","a":"1"}', { a: '1', b: '2' }],
    ['{"n":1,"t":true}', { n: '1', t: 'true' }],
    ['k1=v1,k2=v2', { k1: 'v1', k2: 'v2' }],
    ['k=v,', { k: 'v' }],
    ['k=1,k=2', { k: '2' }],
    ['{}', {}],
    // Jackson keeps a null value, which a Java client reads as absent (the npm client sends {"a":null} for a: null).
    ['{"a":null,"b":"2"}', { b: '2' }],
  ];
  for (const [text, expected] of accepted) {
    const parsed = parseMetadata(text);
    assert.deepEqual({ ...parsed }, expected, text);
    assert.ok(Object.isFrozen(parsed));
    assert.deepEqual(Object.keys(parsed), Object.keys(expected).sort(), `${text}: keys sorted`);
  }
  for (const text of ['k', 'k=', '=v', 'a=b=c', 'a=1,,b=2', '[1,2]', '{"a":{"b":"c"}}', '{"a":[null]}', '"str"', '{"a":"1"']) {
    refuses(() => parseMetadata(text), 'CAIRN_INVALID_ARGUMENT', 'metadata', 'metadata format incorrect');
  }
});

test('metadata size: keys plus values up to metadataCharsMax; one more is CAIRN_METADATA_TOO_LARGE', () => {
  const max = limits.metadataCharsMax;
  assert.doesNotThrow(() => validateMetadata({ k: 'v'.repeat(max - 1) }));
  refuses(() => validateMetadata({ k: 'v'.repeat(max) }), 'CAIRN_METADATA_TOO_LARGE', 'metadata', `more than ${max}`);
  refuses(() => parseMetadata(`k=${'v'.repeat(max)}`), 'CAIRN_METADATA_TOO_LARGE', 'metadata');
  refuses(() => validateMetadata({ '': 'v' }), 'CAIRN_INVALID_ARGUMENT', 'metadata', 'empty key');
  refuses(() => validateMetadata({ k: 1 }), 'CAIRN_INVALID_ARGUMENT', 'metadata', 'must be a string');
  refuses(() => validateMetadata(['a']), 'CAIRN_INVALID_ARGUMENT', 'metadata');
  refuses(() => validateMetadata({ k: 'v'.repeat(max) }, 'clusterMetadata'), 'CAIRN_METADATA_TOO_LARGE', 'clusterMetadata');
});

test('selector: none, label with Nacos grammar; blank is none; anything else is refused', () => {
  assert.deepEqual(parseSelector(''), { type: 'none' });
  assert.deepEqual(parseSelector('{"type":"none"}'), { type: 'none' });
  assert.deepEqual(parseSelector('{"type":"label","expression":""}'), { type: 'label', expression: '' });
  const expression = 'CONSUMER.label.zone = PROVIDER.label.zone & CONSUMER.label.env=PROVIDER.label.env';
  assert.deepEqual(parseSelector(JSON.stringify({ type: 'label', expression })), { type: 'label', expression });
  assert.deepEqual(parseSelector('{"type":"LABEL"}'), { type: 'label', expression: '' });
  for (const text of ['{"type":"cmdb"}', '{}', 'none', '[1]', '{"type":"label","expression":"CONSUMER.label.a = PROVIDER.label.b"}',
    '{"type":"label","expression":"zone=zone"}', '{"type":"label","expression":5}']) {
    refuses(() => parseSelector(text), 'CAIRN_INVALID_ARGUMENT', 'selector');
  }
  const long = `CONSUMER.label.${'k'.repeat(limits.selectorExpressionCharsMax)}=PROVIDER.label.k`;
  refuses(() => parseSelector(JSON.stringify({ type: 'label', expression: long })), 'CAIRN_INVALID_ARGUMENT', 'selector', 'longer than');
});

test('health checkers: a fixed intervalMs (Cairn\'s extension) within the probe bounds, as a number or a numeric string', () => {
  const { probeIntervalMsMin: min, probeIntervalMsMax: max } = limits;
  assert.deepEqual(parseHealthChecker('{"type":"TCP","intervalMs":5000}'), { type: 'TCP', intervalMs: 5000 });
  assert.deepEqual(parseHealthChecker(`{"type":"TCP","intervalMs":"${min}"}`), { type: 'TCP', intervalMs: min });
  assert.deepEqual(parseHealthChecker(`{"type":"HTTP","intervalMs":${max}}`), { type: 'HTTP', path: '', headers: {}, expectedResponseCode: 200, intervalMs: max });
  assert.deepEqual(parseHealthChecker('{"type":"MYSQL","user":"u","intervalMs":3000}'), { type: 'MYSQL', user: 'u', password: '', sql: MYSQL_READ_ONLY_SQL, intervalMs: 3000 });
  // NONE does not probe, so an interval means nothing there and is dropped.
  assert.deepEqual(parseHealthChecker('{"type":"NONE","intervalMs":5000}'), { type: 'NONE' });
  for (const bad of [min - 1, max + 1, 2600.5, '"5s"', '-5000', 'true']) {
    assert.throws(() => parseHealthChecker(`{"type":"TCP","intervalMs":${String(bad)}}`),
      (error: unknown) => error instanceof CairnError && error.code === 'CAIRN_INVALID_ARGUMENT' && error.message.includes('intervalMs'), String(bad));
  }
});

test('health checkers: Nacos JSON forms, defaults, and unknown types refused (Cairn) instead of NONE (Nacos)', () => {
  assert.deepEqual(parseHealthChecker('{"type":"TCP"}'), { type: 'TCP' });
  assert.deepEqual(parseHealthChecker('{"type":"none"}'), { type: 'NONE' });
  assert.deepEqual(parseHealthChecker('{"type":"HTTP"}'), { type: 'HTTP', path: '', headers: {}, expectedResponseCode: 200 });
  assert.deepEqual(
    parseHealthChecker('{"type":"HTTP","path":"/health","headers":"Host:svc.local|X-Probe: 1","expectedResponseCode":"204"}'),
    { type: 'HTTP', path: '/health', headers: { Host: 'svc.local', 'X-Probe': '1' }, expectedResponseCode: 204 },
  );
  assert.deepEqual(
    parseHealthChecker('{"type":"MYSQL","user":"probe","pwd":"s3cret","cmd":"select 1"}'),
    { type: 'MYSQL', user: 'probe', password: 's3cret', sql: 'select 1' },
  );
  assert.deepEqual(parseHealthChecker('{"type":"MYSQL","user":"probe"}'), { type: 'MYSQL', user: 'probe', password: '', sql: MYSQL_READ_ONLY_SQL });
  const refused: ReadonlyArray<readonly [string, string]> = [
    ['', 'is required'],
    ['{"type":"GRPC"}', 'must be one of NONE, TCP, HTTP, MYSQL'],
    ['{}', 'must be one of'],
    ['not json', 'not valid JSON'],
    ['{"type":"HTTP","path":"health"}', 'absolute path'],
    ['{"type":"HTTP","expectedResponseCode":99}', '100..599'],
    ['{"type":"HTTP","headers":"nocolon"}', "'name:value' pairs"],
    ['{"type":"HTTP","headers":"Bad Name:v"}', 'not an HTTP token'],
    ['{"type":"MYSQL"}', 'user is required'],
    ['{"type":"MYSQL","user":"u","cmd":"  "}', 'sql must be'],
  ];
  for (const [text, fragment] of refused) {
    assert.throws(() => parseHealthChecker(text), (error: unknown) => error instanceof CairnError && error.code === 'CAIRN_INVALID_ARGUMENT' && error.message.includes(fragment), text);
  }
  assert.throws(() => validateHealthChecker({ type: 'HTTP', path: '/', headers: { 'X-A': 'a\r\nb' }, expectedResponseCode: 200 }), /CR, LF or NUL/);
  const big = { type: 'MYSQL', user: 'u', password: 'p'.repeat(limits.healthCheckerCharsMax), sql: 'select 1' };
  assert.throws(() => validateHealthChecker(big), /too large/);
  assert.deepEqual(parseHeaders(''), {});
});

test('redaction: the MySQL password never appears in a cluster view', () => {
  const config = { ...defaultClusterConfig('DEFAULT'), healthChecker: { type: 'MYSQL' as const, user: 'u', password: 'hunter2', sql: 'select 1' } };
  const view = redactCluster(config);
  assert.deepEqual(view.healthChecker, { type: 'MYSQL', user: 'u', passwordSet: true, sql: 'select 1' });
  assert.ok(!JSON.stringify(view).includes('hunter2'));
  assert.deepEqual(defaultClusterConfig('dc1'), { name: 'dc1', healthChecker: { type: 'TCP' }, checkPort: 80, useInstancePort4Check: true, metadata: {} });
});

test('grouped names: Nacos rules, stricter on malformed names', () => {
  assert.deepEqual(parseGroupedName('orders'), { group: 'DEFAULT_GROUP', service: 'orders' });
  assert.deepEqual(parseGroupedName('orders', 'g1'), { group: 'g1', service: 'orders' });
  assert.deepEqual(parseGroupedName('g2@@orders', 'g1'), { group: 'g2', service: 'orders' });
  assert.throws(() => parseGroupedName('@@orders'), /groupName can't be empty/);
  assert.throws(() => parseGroupedName('g@@'), /format as 'groupName@@serviceName'/);
  assert.throws(() => parseGroupedName('a@@b@@c'), /format as 'groupName@@serviceName'/);
  assert.equal(groupedName('g', 's'), 'g@@s');
  assert.equal(instanceId('10.0.0.1', 8080, 'DEFAULT', 'DEFAULT_GROUP', 'orders'), '10.0.0.1#8080#DEFAULT#DEFAULT_GROUP@@orders');
});

test('pages: 1-based, and sizes above the namespace bound are clamped (no page can hold more)', () => {
  assert.deepEqual(validatePage(1, 20), { pageNo: 1, pageSize: 20 });
  assert.deepEqual(validatePage(2, 1_000_000), { pageNo: 2, pageSize: limits.servicesPerNamespaceMax });
  refuses(() => validatePage(0, 10), 'CAIRN_INVALID_ARGUMENT', 'pageNo');
  refuses(() => validatePage(1, 0), 'CAIRN_INVALID_ARGUMENT', 'pageSize');
});

test('a lone UTF-16 surrogate is refused in every free-text value; paired surrogates (astral characters) are text', () => {
  // UTF-8 cannot carry a lone surrogate: stored or replicated, the value would turn into another string (session 31:
  // one in ephemeral metadata made every peer refuse the Distro batch that carried it, other clients' writes with it).
  const lone = ['\ud800', 'a\udc00', 'x\ud83dy'];
  for (const text of lone) {
    refuses(() => validateMetadata({ k: text }), 'CAIRN_INVALID_ARGUMENT', 'metadata', 'well-formed');
    refuses(() => validateMetadata({ [text]: 'v' }), 'CAIRN_INVALID_ARGUMENT', 'metadata', 'well-formed');
    refuses(() => parseMetadata(JSON.stringify({ k: text })), 'CAIRN_INVALID_ARGUMENT', 'metadata', 'well-formed');
    refuses(() => validateServiceName(`svc${text}`), 'CAIRN_INVALID_ARGUMENT', 'serviceName', 'well-formed');
    refuses(() => validateIp(`host${text}`), 'CAIRN_INVALID_ARGUMENT', 'ip', 'well-formed');
    refuses(() => validateHealthChecker({ type: 'HTTP', path: `/x${text}` }), 'CAIRN_INVALID_ARGUMENT', 'healthChecker');
    refuses(() => validateHealthChecker({ type: 'HTTP', path: '/x', headers: { h: text } }), 'CAIRN_INVALID_ARGUMENT', 'healthChecker', 'well-formed');
    refuses(() => validateHealthChecker({ type: 'MYSQL', user: 'u', password: text }), 'CAIRN_INVALID_ARGUMENT', 'healthChecker', 'well-formed');
    refuses(() => validateSelector({ type: 'label', expression: text }), 'CAIRN_INVALID_ARGUMENT', 'selector', 'well-formed');
  }
  assert.deepEqual(validateMetadata({ emoji: '\ud83d\ude00' }), { emoji: '😀' });
  assert.equal(validateServiceName('svc-\ud83d\ude00'), 'svc-😀');
});

test('JSON metadata keeps each number as written, as Jackson reads it into a string map', () => {
  // String(JSON.parse(...)) turned 1.0 into "1", 1e2 into "100", and 9007199254740993 into "9007199254740992".
  assert.deepEqual(parseMetadata('{"id":9007199254740993,"v":1.0,"e":1e2,"n":-0.5,"s":"x,1","b":true}'),
    { b: 'true', e: '1e2', id: '9007199254740993', n: '-0.5', s: 'x,1', v: '1.0' });
  assert.deepEqual(parseMetadata('{ "a" : 1.50 , "k\\"q" : 12, "a": 2.0 }'), { a: '2.0', 'k"q': '12' }, 'a repeated key keeps its last value, as JSON.parse does');
});
