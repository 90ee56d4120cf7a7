// Goal: pin Nacos's v1 instance endpoints as Cairn serves them (reference/NACOS.md §1.2-§1.4): register, update,
// patch, deregister, detail, list and beat; their response shapes field by field (§1.3, as the npm `nacos` client and
// curl users read them); their refusals of bad input (missing, blank, malformed, overlong, out of range) with
// Nacos's status and a clear message, writing nothing; the protect threshold as Cairn decides it (DESIGN.md: it
// protects only when above 0 and the healthy share is below it); and `consistency=linearizable` on reads.
// Method: buildApp() over the real naming layer and registry state machine (no Raft), driven with inject(). Every
// refusal is followed by a read showing nothing was written.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jsonDepthOf } from '../../../src/api/http/app.ts';
import { limits } from '../../../src/limits.ts';
import { buildHarness, call, fixedNow, javaClient, query, type Harness } from './harness.ts';

const base = '/nacos/v1/ns';
const persistent = { serviceName: 'svc', ip: '10.0.0.1', port: 8080, ephemeral: false };

async function register(h: Harness, params: Record<string, string | number | boolean>): Promise<void> {
  const answer = await call(h.app, 'POST', `${base}/instance?${query(params)}`);
  assert.equal(answer.status, 200, answer.text);
  assert.equal(answer.text, 'ok');
}

async function list(h: Harness, params: Record<string, string | number | boolean>, headers: Record<string, string> = javaClient): Promise<Record<string, unknown>> {
  const answer = await call(h.app, 'GET', `${base}/instance/list?${query(params)}`, { headers });
  assert.equal(answer.status, 200, answer.text);
  return answer.json() as Record<string, unknown>;
}

function hostsOf(body: Record<string, unknown>): Array<Record<string, unknown>> {
  return body['hosts'] as Array<Record<string, unknown>>;
}

/** assertNothingRegistered shows the registry is still empty: the list of `serviceName` is Nacos's unknown-service form. */
async function assertNothingRegistered(h: Harness, serviceName = 'svc'): Promise<void> {
  assert.deepEqual(await list(h, { serviceName }), { name: `DEFAULT_GROUP@@${serviceName}`, clusters: '', cacheMillis: 3000, hosts: [] });
  const services = await call(h.app, 'GET', `${base}/service/list?pageNo=1&pageSize=100`);
  assert.deepEqual(services.json(), { count: 0, doms: [] });
}

test('register as the npm client does (query string only, grouped name), then list: the v1 shape field by field', async () => {
  const h = await buildHarness();
  const answer = await call(h.app, 'POST', `${base}/instance?${query({
    namespaceId: 'public', serviceName: 'DEFAULT_GROUP@@svc', groupName: 'DEFAULT_GROUP', clusterName: 'NODEJS',
    ip: '1.1.1.1', port: '8080', weight: '1', enable: 'true', healthy: 'true', ephemeral: 'false', metadata: '{"app":"demo"}',
  })}`, { headers: { ...javaClient, requestid: 'e4f1c2d0-0000-4000-8000-000000000001' } });
  assert.equal(answer.status, 200);
  assert.equal(answer.text, 'ok');
  assert.match(answer.contentType, /^text\/plain/);
  const body = await list(h, { namespaceId: 'public', serviceName: 'DEFAULT_GROUP@@svc', clusters: '', udpPort: 55_555, clientIP: '192.168.1.9', healthyOnly: false });
  assert.match(String(body['checksum']), /^[0-9a-f]{32}$/);
  assert.deepEqual({ ...body, checksum: '<md5>' }, {
    hosts: [{
      ip: '1.1.1.1', port: 8080, valid: true, healthy: true, marked: false,
      instanceId: '1.1.1.1#8080#NODEJS#DEFAULT_GROUP@@svc', metadata: { app: 'demo' }, enabled: true, weight: 1,
      clusterName: 'NODEJS', serviceName: 'DEFAULT_GROUP@@svc', ephemeral: false,
    }],
    dom: 'DEFAULT_GROUP@@svc', name: 'DEFAULT_GROUP@@svc', cacheMillis: 3000, lastRefTime: fixedNow, checksum: '<md5>',
    useSpecifiedURL: false, clusters: '', env: '', metadata: {}, reachProtectionThreshold: false,
  });
  assert.deepEqual(Object.keys(body), ['hosts', 'dom', 'name', 'cacheMillis', 'lastRefTime', 'checksum', 'useSpecifiedURL', 'clusters', 'env', 'metadata', 'reachProtectionThreshold']);
  await h.app.close();
});

test('a client that is not a Java client >= 1.0 (curl) gets the bare name in dom and hosts[].serviceName', async () => {
  const h = await buildHarness();
  await register(h, { ...persistent, groupName: 'g1' });
  const body = await list(h, { serviceName: 'svc', groupName: 'g1', env: 'prod' }, {});
  assert.equal(body['dom'], 'svc');
  assert.equal(body['name'], 'g1@@svc');
  assert.equal(body['env'], 'prod');
  assert.equal(hostsOf(body)[0]?.['serviceName'], 'svc');
  assert.equal(hostsOf(body)[0]?.['instanceId'], '10.0.0.1#8080#DEFAULT#g1@@svc');
  await h.app.close();
});

test('register from a form body with legacy aliases and k=v metadata; disabled instances are never listed', async () => {
  const h = await buildHarness();
  const form = 'serviceName=svc&ip=10.0.0.1&port=8080&ephemeral=false&cluster=c1&weight=0.5&metadata=a%3D1%2Cb%3D2';
  assert.equal((await call(h.app, 'POST', `${base}/instance`, { body: form })).text, 'ok');
  assert.equal((await call(h.app, 'POST', `${base}/instance`, { body: 'serviceName=svc&ip=10.0.0.2&port=8080&ephemeral=false&enable=false' })).text, 'ok');
  const hosts = hostsOf(await list(h, { serviceName: 'svc' }));
  assert.equal(hosts.length, 1);
  assert.deepEqual([hosts[0]?.['clusterName'], hosts[0]?.['weight'], hosts[0]?.['metadata']], ['c1', 0.5, { a: '1', b: '2' }]);
  const detail = await call(h.app, 'GET', `${base}/instance?serviceName=svc&ip=10.0.0.2&port=8080`);
  assert.equal(detail.status, 200, 'the disabled instance exists');
  await h.app.close();
});

test('register from a JSON body: objects are accepted for metadata', async () => {
  const h = await buildHarness();
  const answer = await call(h.app, 'POST', `${base}/instance`, {
    body: JSON.stringify({ ...persistent, weight: 3, metadata: { zone: 'a' } }),
    headers: { 'content-type': 'application/json' },
  });
  assert.equal(answer.text, 'ok');
  const host = hostsOf(await list(h, { serviceName: 'svc' }))[0];
  assert.deepEqual([host?.['weight'], host?.['metadata']], [3, { zone: 'a' }]);
  await h.app.close();
});

test('GET /instance: Nacos\'s detail shape; 404 for an unknown service or instance', async () => {
  const h = await buildHarness();
  await register(h, { ...persistent, metadata: 'k=v', weight: 2 });
  const detail = await call(h.app, 'GET', `${base}/instance?serviceName=svc&ip=10.0.0.1&port=8080`);
  assert.deepEqual(detail.json(), {
    service: 'DEFAULT_GROUP@@svc', ip: '10.0.0.1', port: 8080, clusterName: 'DEFAULT', weight: 2, healthy: true,
    instanceId: '10.0.0.1#8080#DEFAULT#DEFAULT_GROUP@@svc', metadata: { k: 'v' },
  });
  const noInstance = await call(h.app, 'GET', `${base}/instance?serviceName=svc&ip=10.0.0.9&port=8080`);
  assert.equal(noInstance.status, 404);
  assert.match(noInstance.text, /^no matched ip found! .*\(CAIRN_INSTANCE_NOT_FOUND\)$/);
  const otherCluster = await call(h.app, 'GET', `${base}/instance?serviceName=svc&ip=10.0.0.1&port=8080&clusterName=c2`);
  assert.equal(otherCluster.status, 404);
  const noService = await call(h.app, 'GET', `${base}/instance?serviceName=nosvc&ip=10.0.0.1&port=8080`);
  assert.equal(noService.status, 404);
  assert.match(noService.text, /^no service public\/DEFAULT_GROUP@@nosvc found! \(CAIRN_SERVICE_NOT_FOUND\)$/);
  await h.app.close();
});

test('PATCH changes only the fields given; an unknown instance is 400 and nothing is created', async () => {
  const h = await buildHarness();
  await register(h, { ...persistent, weight: 2, metadata: 'a=1' });
  const patched = await call(h.app, 'PATCH', `${base}/instance?serviceName=svc&ip=10.0.0.1&port=8080&weight=7`);
  assert.equal(patched.text, 'ok');
  const host = hostsOf(await list(h, { serviceName: 'svc' }))[0];
  assert.deepEqual([host?.['weight'], host?.['metadata'], host?.['enabled']], [7, { a: '1' }, true]);
  const absent = await call(h.app, 'PATCH', `${base}/instance?serviceName=svc&ip=10.0.0.9&port=8080&weight=7`);
  assert.equal(absent.status, 400);
  assert.match(absent.text, /instance not found.*\(CAIRN_INSTANCE_NOT_FOUND\)$/);
  assert.equal(hostsOf(await list(h, { serviceName: 'svc' })).length, 1);
  await h.app.close();
});

test('PUT: curl upserts (Nacos for non-Java clients); a Java client updates, and an absent instance is 400', async () => {
  const h = await buildHarness();
  assert.equal((await call(h.app, 'PUT', `${base}/instance?${query({ ...persistent, weight: 4 })}`)).text, 'ok');
  assert.equal(hostsOf(await list(h, { serviceName: 'svc' }))[0]?.['weight'], 4);
  assert.equal((await call(h.app, 'PUT', `${base}/instance?${query({ ...persistent, weight: 5 })}`, { headers: javaClient })).text, 'ok');
  assert.equal(hostsOf(await list(h, { serviceName: 'svc' }))[0]?.['weight'], 5);
  const absent = await call(h.app, 'PUT', `${base}/instance?${query({ ...persistent, ip: '10.0.0.2' })}`, { headers: javaClient });
  assert.equal(absent.status, 400);
  assert.match(absent.text, /CAIRN_INSTANCE_NOT_FOUND/);
  assert.equal(hostsOf(await list(h, { serviceName: 'svc' })).length, 1);
  await h.app.close();
});

test('the Java client 1.x as it really sends its headers (User-Agent named, Client-Version bare): updates, grouped dom', async () => {
  // Nacos's WebUtils.getUserAgent reads User-Agent and falls back to Client-Version only when it is empty; the Java
  // client sends Client-Version as a bare version, which names no client.
  const java = { 'user-agent': 'Nacos-Java-Client:v1.4.1', 'client-version': '1.4.1' };
  const h = await buildHarness();
  await register(h, { ...persistent, groupName: 'g1' });
  const absent = await call(h.app, 'PUT', `${base}/instance?${query({ ...persistent, groupName: 'g1', ip: '10.0.0.2' })}`, { headers: java });
  assert.equal(absent.status, 400, 'an update of an absent instance, not an upsert');
  assert.match(absent.text, /CAIRN_INSTANCE_NOT_FOUND/);
  const body = await list(h, { serviceName: 'svc', groupName: 'g1' }, java);
  assert.deepEqual([body['dom'], hostsOf(body).length], ['g1@@svc', 1]);
  await h.app.close();
});

test('DELETE removes; an absent instance or service answers ok (Nacos)', async () => {
  const h = await buildHarness();
  await register(h, persistent);
  await register(h, { ...persistent, ip: '10.0.0.2' });
  assert.equal((await call(h.app, 'DELETE', `${base}/instance?serviceName=svc&ip=10.0.0.1&port=8080`)).text, 'ok');
  assert.deepEqual(hostsOf(await list(h, { serviceName: 'svc' })).map((host) => host['ip']), ['10.0.0.2']);
  assert.equal((await call(h.app, 'DELETE', `${base}/instance?serviceName=svc&ip=10.0.0.1&port=8080&ephemeral=false`)).text, 'ok');
  assert.equal((await call(h.app, 'DELETE', `${base}/instance?serviceName=nosvc&ip=10.0.0.1&port=8080`)).text, 'ok');
  await h.app.close();
});

test('an unknown service lists as Nacos\'s short form: 200 with no hosts', async () => {
  const h = await buildHarness();
  const body = await list(h, { serviceName: 'nosvc', clusters: 'a,b' });
  assert.deepEqual(body, { name: 'DEFAULT_GROUP@@nosvc', clusters: 'a,b', cacheMillis: 3000, hosts: [] });
  await h.app.close();
});

test('ephemeral registration (Nacos\'s default) answers 501 until the AP path lands, and writes nothing', async () => {
  const h = await buildHarness();
  const answer = await call(h.app, 'POST', `${base}/instance?serviceName=svc&ip=10.0.0.1&port=8080`);
  assert.equal(answer.status, 501);
  assert.equal(answer.text, 'ephemeral instances arrive with the AP issue; register with ephemeral=false (CAIRN_NOT_IMPLEMENTED)');
  await assertNothingRegistered(h);
  await h.app.close();
});

test('a service holds one kind: an ephemeral instance in a persistent service is refused with 400', async () => {
  const h = await buildHarness();
  await register(h, persistent);
  const answer = await call(h.app, 'POST', `${base}/instance?${query({ ...persistent, ip: '10.0.0.2', ephemeral: true })}`);
  assert.equal(answer.status, 400);
  assert.match(answer.text, /is persistent service, can't register ephemeral instance\. \(CAIRN_EPHEMERAL_MISMATCH\)$/);
  assert.equal(hostsOf(await list(h, { serviceName: 'svc' })).length, 1);
  await h.app.close();
});

test('PUT /instance/beat over a naming layer without an ephemeral registry answers 501; its parameters are checked first (the real beats: test/ap/http-ephemeral.test.ts)', async () => {
  const h = await buildHarness();
  const beat = JSON.stringify({ serviceName: 'DEFAULT_GROUP@@svc', ip: '1.1.1.1', port: 8080, cluster: 'NODEJS', weight: 1, metadata: {}, scheduled: false });
  const answer = await call(h.app, 'PUT', `${base}/instance/beat?${query({ serviceName: 'DEFAULT_GROUP@@svc', namespaceId: 'public', beat })}`, { headers: javaClient });
  assert.equal(answer.status, 501);
  assert.match(answer.text, /\(CAIRN_NOT_IMPLEMENTED\)$/);
  const cases: Array<[string, RegExp]> = [
    ['beat=%7B', /^Param 'serviceName' is required\./],
    ['serviceName=svc&beat=%7B', /^Param 'beat' must be a JSON object/],
    ['serviceName=svc&beat=%5B%5D', /^Param 'beat' must be a JSON object/],
    ['serviceName=svc', /^Param 'ip' is required\./],
    ['serviceName=svc&ip=1.1.1.1&port=x', /^Param 'port' must be an integer/],
  ];
  for (const [params, text] of cases) {
    const refused = await call(h.app, 'PUT', `${base}/instance/beat?${params}`);
    assert.equal(refused.status, 400, params);
    assert.match(refused.text, text, params);
  }
  await h.app.close();
});

test('register refuses bad input with 400 (413 for a huge body) and a message naming the parameter; nothing is written', async () => {
  const h = await buildHarness();
  const p = (overrides: Record<string, string | number | boolean>): string => query({ ...persistent, ...overrides });
  const cases: Array<[string, number, RegExp]> = [
    [query({ ip: '10.0.0.1', port: 8080, ephemeral: false }), 400, /^Param 'serviceName' is required\. \(CAIRN_INVALID_ARGUMENT\)$/],
    [p({ serviceName: '   ' }), 400, /^Param 'serviceName' is required\./],
    [query({ serviceName: 'svc', port: 8080, ephemeral: false }), 400, /^Param 'ip' is required\./],
    [query({ serviceName: 'svc', ip: '10.0.0.1', ephemeral: false }), 400, /^Param 'port' is required\./],
    [p({ port: 'x' }), 400, /^Param 'port' must be an integer \(got 'x'\)\./],
    [p({ port: 70_000 }), 400, /^Param 'port' must be between 0 and 65535/],
    [p({ port: -1 }), 400, /^Param 'port' must be between 0 and 65535/],
    [p({ weight: 'abc' }), 400, /^Param 'weight' must be a number/],
    [p({ weight: 20_000 }), 400, /^instance format invalid: The weights range from 0\.0 to 10000\.0/],
    [p({ weight: -1 }), 400, /^instance format invalid/],
    [p({ healthy: 'yes' }), 400, /^Param 'healthy' must be true or false \(got 'yes'\)\./],
    [p({ enabled: 'maybe' }), 400, /^Param 'enabled' must be true or false/],
    [p({ ephemeral: 'perhaps' }), 400, /^Param 'ephemeral' must be true or false/],
    [p({ metadata: 'not-metadata' }), 400, /^metadata format incorrect/],
    [p({ metadata: '{"a":' }), 400, /^metadata format incorrect/],
    [p({ metadata: JSON.stringify({ big: 'x'.repeat(1100) }) }), 400, /^Param 'metadata' is too large.*\(CAIRN_METADATA_TOO_LARGE\)$/],
    [p({ serviceName: 's'.repeat(513) }), 400, /^Param 'serviceName' is longer than 512 characters.*\(CAIRN_NAME_TOO_LONG\)$/],
    [p({ namespaceId: 'bad ns' }), 400, /^Param 'namespaceId' can only have these characters/],
    [p({ clusterName: 'bad!cluster' }), 400, /^Param 'clusterName' can only have these characters/],
    [p({ groupName: 'bad group' }), 400, /^Param 'groupName' can only have these characters/],
    [p({ ip: '999.1.1.1' }), 400, /^Param 'ip' is not a valid IPv4 address/],
    [p({ ip: '10.0.0.1 ' }), 400, /^Param 'ip' must not contain whitespace/],
    [p({ serviceName: '@@svc' }), 400, /^Param 'serviceName' is illegal, groupName can't be empty/],
    [p({ serviceName: 'g@@' }), 400, /^Param 'serviceName' is illegal, it should be format as 'groupName@@serviceName'/],
  ];
  for (const [params, status, text] of cases) {
    const answer = await call(h.app, 'POST', `${base}/instance?${params}`);
    assert.equal(answer.status, status, params.slice(0, 120));
    assert.match(answer.text, text, params.slice(0, 120));
    assert.match(answer.contentType, /^text\/plain/);
  }
  const json = { 'content-type': 'application/json' };
  const badJson = await call(h.app, 'POST', `${base}/instance`, { body: '{"serviceName":', headers: json });
  assert.deepEqual([badJson.status, badJson.text], [400, 'the request body is not valid JSON. (CAIRN_INVALID_ARGUMENT)']);
  const arrayJson = await call(h.app, 'POST', `${base}/instance`, { body: '[1,2]', headers: json });
  assert.equal(arrayJson.status, 400);
  const huge = await call(h.app, 'POST', `${base}/instance`, { body: `${p({})}&pad=${'x'.repeat(300 * 1024)}` });
  assert.deepEqual([huge.status, huge.headers['cairn-error-code']], [413, 'CAIRN_REQUEST_TOO_LARGE']);
  await assertNothingRegistered(h);
  await h.app.close();
});

test('the other instance endpoints refuse bad input with 400 and change nothing', async () => {
  const h = await buildHarness();
  await register(h, { ...persistent, weight: 2 });
  const cases: Array<['GET' | 'PUT' | 'PATCH' | 'DELETE', string, RegExp]> = [
    ['PATCH', 'serviceName=svc&port=8080&weight=3', /^Param 'ip' is required\./],
    ['PATCH', 'serviceName=svc&ip=10.0.0.1&port=8080&weight=abc', /^Param 'weight' must be a number/],
    ['PATCH', 'serviceName=svc&ip=10.0.0.1&port=8080&weight=10001', /^instance format invalid/],
    ['PATCH', 'serviceName=svc&ip=10.0.0.1&port=8080&metadata=%7Bx', /^metadata format incorrect/],
    ['PUT', 'serviceName=svc&ip=10.0.0.1&port=8080&weight=NaN&ephemeral=false', /^Param 'weight' must be a number/],
    ['DELETE', 'serviceName=svc&ip=10.0.0.1', /^Param 'port' is required\./],
    ['DELETE', 'serviceName=svc&ip=10.0.0.1&port=8080&ephemeral=nope', /^Param 'ephemeral' must be true or false/],
    ['GET', 'serviceName=svc&port=8080', /^Param 'ip' is required\./],
    ['GET', 'serviceName=svc&ip=10.0.0.1&port=80.5', /^Param 'port' must be an integer/],
  ];
  for (const [method, params, text] of cases) {
    const answer = await call(h.app, method, `${base}/instance?${params}`);
    assert.equal(answer.status, 400, `${method} ${params}`);
    assert.match(answer.text, text, `${method} ${params}`);
  }
  const listCases: Array<[string, RegExp]> = [
    ['', /^Param 'serviceName' is required\./],
    ['serviceName=svc&healthyOnly=maybe', /^Param 'healthyOnly' must be true or false/],
    ['serviceName=svc&udpPort=x', /^Param 'udpPort' must be an integer/],
    ['serviceName=svc&clusters=bad!', /^Param 'clusters' can only have these characters/],
    ['serviceName=svc&consistency=strong', /^Param 'consistency' must be local or linearizable/],
  ];
  for (const [params, text] of listCases) {
    const answer = await call(h.app, 'GET', `${base}/instance/list?${params}`);
    assert.equal(answer.status, 400, params);
    assert.match(answer.text, text, params);
  }
  const host = hostsOf(await list(h, { serviceName: 'svc' }))[0];
  assert.deepEqual([host?.['weight'], host?.['metadata']], [2, {}]);
  await h.app.close();
});

test('clusters filter: a comma list selects clusters and is echoed as sent', async () => {
  const h = await buildHarness();
  await register(h, { ...persistent, clusterName: 'A' });
  await register(h, { ...persistent, ip: '10.0.0.2', clusterName: 'B' });
  await register(h, { ...persistent, ip: '10.0.0.3', clusterName: 'C' });
  const a = await list(h, { serviceName: 'svc', clusters: 'A' });
  assert.deepEqual(hostsOf(a).map((host) => host['ip']), ['10.0.0.1']);
  assert.equal(a['clusters'], 'A');
  const ab = await list(h, { serviceName: 'svc', clusters: 'B, A' });
  assert.deepEqual(hostsOf(ab).map((host) => host['clusterName']), ['A', 'B']);
  assert.equal(ab['clusters'], 'B, A');
  assert.equal(hostsOf(await list(h, { serviceName: 'svc' })).length, 3);
  await h.app.close();
});

test('protectThreshold: 0 never protects (an all-down service is reported down); above 0 it protects below the share', async () => {
  const h = await buildHarness();
  await register(h, { ...persistent, healthy: false });
  await register(h, { ...persistent, ip: '10.0.0.2', healthy: false });
  // Nacos reports both healthy here (0/2 <= 0); Cairn reports them as they are.
  const allDown = await list(h, { serviceName: 'svc' });
  assert.deepEqual(hostsOf(allDown).map((host) => [host['healthy'], host['valid']]), [[false, false], [false, false]]);
  assert.equal(allDown['reachProtectionThreshold'], false);
  assert.deepEqual(hostsOf(await list(h, { serviceName: 'svc', healthyOnly: true })), []);

  await register(h, { ...persistent, ip: '10.0.0.3', healthy: true });
  assert.equal((await call(h.app, 'PUT', `${base}/service?serviceName=svc&protectThreshold=0.6`)).text, 'ok');
  // 1 of 3 healthy (0.33) is below 0.6: every instance is returned, reported healthy.
  const protectedList = await list(h, { serviceName: 'svc' });
  assert.equal(protectedList['reachProtectionThreshold'], true);
  assert.deepEqual(hostsOf(protectedList).map((host) => [host['ip'], host['healthy'], host['valid']]),
    [['10.0.0.1', true, true], ['10.0.0.2', true, true], ['10.0.0.3', true, true]]);
  assert.equal(hostsOf(await list(h, { serviceName: 'svc', healthyOnly: true })).length, 3);

  assert.equal((await call(h.app, 'PUT', `${base}/service?serviceName=svc&protectThreshold=0.3`)).text, 'ok');
  // 0.33 is not below 0.3: no protection; healthyOnly keeps the one healthy instance.
  const unprotected = await list(h, { serviceName: 'svc' });
  assert.equal(unprotected['reachProtectionThreshold'], false);
  assert.deepEqual(hostsOf(unprotected).map((host) => host['healthy']), [false, false, true]);
  assert.deepEqual(hostsOf(await list(h, { serviceName: 'svc', healthyOnly: true })).map((host) => host['ip']), ['10.0.0.3']);
  await h.app.close();
});

test('consistency=linearizable is accepted on every read and answers the same data', async () => {
  const h = await buildHarness();
  await register(h, persistent);
  const reads = [
    `${base}/instance/list?serviceName=svc`,
    `${base}/instance?serviceName=svc&ip=10.0.0.1&port=8080`,
    `${base}/service?serviceName=svc`,
    `${base}/service/list?pageNo=1&pageSize=10`,
    `${base}/catalog/services`,
    `${base}/catalog/service?serviceName=svc`,
    '/nacos/v2/ns/instance/list?serviceName=svc',
  ];
  for (const url of reads) {
    const local = await call(h.app, 'GET', url);
    const linearizable = await call(h.app, 'GET', `${url}${url.includes('?') ? '&' : '?'}consistency=linearizable`);
    assert.equal(linearizable.status, 200, url);
    assert.equal(linearizable.text, local.text, url);
  }
  await h.app.close();
});

test('a JSON body nested deeper than limits.requestJsonDepthMax is refused with 400, not a 500 from a stack overflow; nothing is written', async () => {
  // Found by test/api/http/fuzz.test.ts: `{"serviceName": [[[...]]]}` thousands deep overflowed JSON.stringify while
  // the parameters were read, and the member answered 500 CAIRN_INTERNAL.
  const h = await buildHarness();
  const json = { 'content-type': 'application/json' };
  const deep = (depth: number): string => `${'['.repeat(depth)}${']'.repeat(depth)}`;
  const bodies = [
    `{"serviceName":"svc","ip":"10.0.0.1","port":8080,"ephemeral":false,"metadata":${deep(20_000)}}`,
    `{"serviceName":${'{"a":'.repeat(20_000)}1${'}'.repeat(20_000)}}`,
    `{"serviceName":"svc","ip":"10.0.0.1","port":8080,"ephemeral":false,"metadata":${deep(limits.requestJsonDepthMax)}}`,
  ];
  for (const body of bodies) {
    for (const url of [`${base}/instance`, '/nacos/v2/ns/instance', '/cairn/v1/cluster/members']) {
      const answer = await call(h.app, 'POST', url, { body, headers: json });
      assert.equal(answer.status, 400, `${url} ${body.slice(0, 80)}: ${answer.text.slice(0, 200)}`);
      assert.equal(answer.headers['cairn-error-code'], 'CAIRN_INVALID_ARGUMENT', url);
    }
  }
  const refused = await call(h.app, 'POST', `${base}/instance`, { body: bodies[0] ?? '', headers: json });
  assert.equal(refused.text, `the JSON request body nests deeper than ${limits.requestJsonDepthMax} levels. (CAIRN_INVALID_ARGUMENT)`);
  await assertNothingRegistered(h);
  // Nesting within the bound is read as before: the metadata object is one level below the body.
  const nested = await call(h.app, 'POST', `${base}/instance`, { body: JSON.stringify({ ...persistent, metadata: { zone: 'a' } }), headers: json });
  assert.equal(nested.text, 'ok');
  await h.app.close();
});

test('jsonDepthOf counts nesting outside strings, escapes included', () => {
  const cases: Array<[string, number]> = [
    ['1', 0], ['{}', 1], ['[[]]', 2], ['{"a":[{"b":1}]}', 3], ['{"a":"[[[{{{"}', 1], ['{"a":"\\"[[["}', 1], ['{"a\\\\":[1]}', 2],
  ];
  for (const [text, depth] of cases) assert.equal(jsonDepthOf(text), depth, text);
});
