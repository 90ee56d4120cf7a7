// Goal: pin the Nacos v2 Open API as Cairn serves it (reference/NACOS.md §1.9): the `{code, message, data}` envelope
// on every answer, the data shapes of Nacos 2.x (ServiceInfo with its hosts, instance detail, ServiceDetailInfo,
// ServiceNameView, operator metrics), and the numeric error codes of api/model/v2/ErrorCode.java with their HTTP
// statuses, each refusal writing nothing.
// Method: buildApp() over the real naming layer and registry state machine (no Raft), driven with inject().

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildHarness, call, fixedNow, query, type Harness, type Method } from './harness.ts';

const v2 = '/nacos/v2/ns';
const persistent = { serviceName: 'svc', ip: '10.0.0.1', port: 8080, ephemeral: false };

async function ok(h: Harness, method: Method, url: string, body?: string): Promise<void> {
  const answer = await call(h.app, method, url, body === undefined ? {} : { body });
  assert.equal(answer.status, 200, answer.text);
  assert.deepEqual(answer.json(), { code: 0, message: 'success', data: 'ok' });
}

async function data(h: Harness, url: string): Promise<unknown> {
  const answer = await call(h.app, 'GET', url);
  assert.equal(answer.status, 200, answer.text);
  const body = answer.json() as { code: number; message: string; data: unknown };
  assert.deepEqual([body.code, body.message], [0, 'success']);
  return body.data;
}

test('instance lifecycle in v2: every write answers {code:0, message:"success", data:"ok"}, PATCH a plain "ok"', async () => {
  const h = await buildHarness();
  await ok(h, 'POST', `${v2}/instance`, query({ ...persistent, weight: 2, metadata: '{"a":"1"}' }));
  await ok(h, 'PUT', `${v2}/instance`, query({ ...persistent, weight: 3, metadata: '{"a":"2"}' }));
  // Nacos 2.x's InstanceControllerV2.patch returns the String "ok", not the envelope.
  const patched = await call(h.app, 'PATCH', `${v2}/instance`, { body: query({ serviceName: 'svc', ip: '10.0.0.1', port: 8080, weight: 4 }) });
  assert.deepEqual([patched.status, patched.text, patched.contentType], [200, 'ok', 'text/plain; charset=utf-8']);
  const detail = await data(h, `${v2}/instance?serviceName=svc&ip=10.0.0.1&port=8080`);
  assert.deepEqual(detail, {
    serviceName: 'DEFAULT_GROUP@@svc', ip: '10.0.0.1', port: 8080, clusterName: 'DEFAULT', weight: 4, healthy: true,
    instanceId: '10.0.0.1#8080#DEFAULT#DEFAULT_GROUP@@svc', metadata: { a: '2' },
  });
  await ok(h, 'DELETE', `${v2}/instance?serviceName=svc&ip=10.0.0.1&port=8080`);
  assert.deepEqual((await data(h, `${v2}/instance/list?serviceName=svc`) as { hosts: unknown[] }).hosts, []);
  await h.app.close();
});

test('GET /v2/ns/instance/list: Nacos 2.x\'s ServiceInfo field by field', async () => {
  const h = await buildHarness();
  await ok(h, 'POST', `${v2}/instance`, query({ ...persistent, groupName: 'g', clusterName: 'c1', metadata: '{"preserved.heart.beat.interval":"3000"}' }));
  const info = await data(h, `${v2}/instance/list?serviceName=svc&groupName=g&clusterName=c1`) as Record<string, unknown>;
  assert.match(String(info['checksum']), /^[0-9a-f]{32}$/);
  assert.deepEqual({ ...info, checksum: '<md5>' }, {
    name: 'g@@svc', groupName: 'g', clusters: 'c1', cacheMillis: 10_000,
    hosts: [{
      instanceId: '10.0.0.1#8080#c1#g@@svc', ip: '10.0.0.1', port: 8080, weight: 1, healthy: true, enabled: true,
      ephemeral: false, clusterName: 'c1', serviceName: 'g@@svc', metadata: { 'preserved.heart.beat.interval': '3000' },
      instanceHeartBeatInterval: 3000, instanceHeartBeatTimeOut: 15_000, ipDeleteTimeout: 30_000, instanceIdGenerator: 'simple',
    }],
    lastRefTime: fixedNow, checksum: '<md5>', allIPs: false, reachProtectionThreshold: false, valid: true,
  });
  const unknown = await data(h, `${v2}/instance/list?serviceName=nosvc`) as Record<string, unknown>;
  assert.deepEqual([unknown['name'], unknown['hosts'], unknown['valid']], ['DEFAULT_GROUP@@nosvc', [], true]);
  await h.app.close();
});

test('service lifecycle in v2: ServiceDetailInfo and ServiceNameView shapes', async () => {
  const h = await buildHarness();
  await ok(h, 'POST', `${v2}/service`, query({ serviceName: 'svc', protectThreshold: 0.5, metadata: 'k=v', selector: '{"type":"none"}', ephemeral: false }));
  await ok(h, 'POST', `${v2}/service`, query({ serviceName: 'other', groupName: 'g2' }));
  await ok(h, 'POST', `${v2}/instance`, query(persistent));
  const detail = await data(h, `${v2}/service?serviceName=svc`);
  assert.deepEqual(detail, {
    namespaceId: 'public', groupName: 'DEFAULT_GROUP', serviceName: 'svc',
    clusterMap: { DEFAULT: { clusterName: 'DEFAULT', healthChecker: { type: 'TCP' }, metadata: {}, healthyCheckPort: 80, useInstancePortForCheck: true } },
    metadata: { k: 'v' }, protectThreshold: 0.5, selector: { type: 'none' }, ephemeral: false,
  });
  await ok(h, 'PUT', `${v2}/service`, query({ serviceName: 'svc', metadata: 'k=w' }));
  const updated = await data(h, `${v2}/service?serviceName=svc`) as Record<string, unknown>;
  // v2 defaults protectThreshold to 0 on update (Nacos 2.x's ServiceForm).
  assert.deepEqual([updated['protectThreshold'], updated['metadata']], [0, { k: 'w' }]);
  assert.deepEqual(await data(h, `${v2}/service/list`), { count: 1, services: ['svc'] });
  assert.deepEqual(await data(h, `${v2}/service/list?groupName=*`), { count: 2, services: ['svc', 'other'] });
  assert.deepEqual(await data(h, `${v2}/service/list?groupName=*&pageNo=2&pageSize=1`), { count: 2, services: ['other'] });
  await ok(h, 'DELETE', `${v2}/service?serviceName=other&groupName=g2`);
  assert.deepEqual(await data(h, `${v2}/service/list?groupName=*`), { count: 1, services: ['svc'] });
  await h.app.close();
});

test('health and operator in v2', async () => {
  const h = await buildHarness();
  await ok(h, 'POST', `${v2}/instance`, query(persistent));
  const cluster = query({ serviceName: 'svc', clusterName: 'DEFAULT', checkPort: 80, useInstancePort4Check: true, healthChecker: '{"type":"NONE"}' });
  assert.equal((await call(h.app, 'PUT', `/nacos/v1/ns/cluster?${cluster}`)).text, 'ok');
  await ok(h, 'PUT', `${v2}/health/instance`, query({ serviceName: 'svc', ip: '10.0.0.1', port: 8080, healthy: false }));
  assert.equal((await data(h, `${v2}/instance?serviceName=svc&ip=10.0.0.1&port=8080`) as { healthy: boolean }).healthy, false);
  assert.deepEqual(await data(h, `${v2}/operator/metrics`), { status: 'UP' });
  const full = await data(h, `${v2}/operator/metrics?onlyStatus=false`) as Record<string, unknown>;
  assert.deepEqual(Object.keys(full), ['status', 'serviceCount', 'instanceCount', 'subscribeCount', 'clientCount',
    'connectionBasedClientCount', 'ephemeralIpPortClientCount', 'persistentIpPortClientCount', 'responsibleClientCount', 'cpu', 'load', 'mem']);
  assert.deepEqual([full['serviceCount'], full['instanceCount']], [1, 1]);
  await h.app.close();
});

test('v2 errors: Nacos\'s numeric codes and HTTP statuses, the Cairn code in data; nothing written', async () => {
  const h = await buildHarness();
  await ok(h, 'POST', `${v2}/instance`, query(persistent));
  await ok(h, 'POST', `${v2}/service`, query({ serviceName: 'eph', ephemeral: true }));
  const inst = (overrides: Record<string, string | number | boolean>): string => `${v2}/instance?${query({ ...persistent, ip: '10.0.0.2', ...overrides })}`;
  const cases: Array<[Method, string, number, number, string, RegExp]> = [
    ['POST', `${v2}/instance?serviceName=svc&port=8080`, 400, 10000, 'parameter missing', /^Param 'ip' is required\. \(CAIRN_INVALID_ARGUMENT\)$/],
    ['POST', inst({ port: 'x' }), 400, 20002, 'parameter validate error', /^Param 'port' must be an integer/],
    ['POST', inst({ weight: 10_001 }), 400, 21001, 'weight error', /^instance format invalid/],
    ['POST', inst({ metadata: 'oops' }), 400, 21002, 'instance metadata error', /^metadata format incorrect/],
    ['POST', inst({ serviceName: '@@svc' }), 400, 21000, 'service name error', /groupName can't be empty/],
    ['POST', inst({ serviceName: 'eph' }), 400, 21004, 'instance error', /CAIRN_EPHEMERAL_MISMATCH/],
    ['PATCH', inst({ weight: 2 }), 404, 21003, 'instance not found', /CAIRN_INSTANCE_NOT_FOUND/],
    ['GET', inst({}), 404, 21003, 'instance not found', /CAIRN_INSTANCE_NOT_FOUND/],
    ['POST', `${v2}/service?serviceName=svc`, 400, 21007, 'service already exist', /CAIRN_SERVICE_ALREADY_EXISTS/],
    ['POST', `${v2}/service?serviceName=s2&metadata=oops`, 400, 21005, 'service metadata error', /^metadata format incorrect/],
    ['POST', `${v2}/service?serviceName=s2&selector=%7B%22type%22%3A%22bogus%22%7D`, 400, 21006, 'selector error', /^Param 'selector' type must be/],
    // Nacos 2.x: NacosApiException(INVALID_PARAM, SERVICE_NOT_EXIST) on every method, so 400 (ServiceOperatorV2Impl).
    ['GET', `${v2}/service?serviceName=nosvc`, 400, 21008, 'service not exist', /CAIRN_SERVICE_NOT_FOUND/],
    ['PUT', `${v2}/service?serviceName=nosvc`, 400, 21008, 'service not exist', /CAIRN_SERVICE_NOT_FOUND/],
    ['DELETE', `${v2}/service?serviceName=nosvc`, 400, 21008, 'service not exist', /CAIRN_SERVICE_NOT_FOUND/],
    ['DELETE', `${v2}/service?serviceName=svc`, 400, 21009, 'service delete failure', /is not empty, can't be delete/],
    ['PUT', `${v2}/health/instance?serviceName=svc&ip=10.0.0.1&port=8080`, 400, 21010, 'healthy param miss', /^Param 'healthy' is required\./],
    ['PUT', `${v2}/health/instance?serviceName=svc&ip=10.0.0.1&port=8080&healthy=false`, 400, 21011, 'health check still running', /CAIRN_HEALTH_CHECK_ACTIVE/],
    ['POST', `${v2}/instance?serviceName=s3&ip=10.0.0.3&port=1`, 501, 30000, 'server error', /CAIRN_NOT_IMPLEMENTED/],
    // A beat for a service that holds persistent instances is refused (beats keep ephemeral instances only).
    ['PUT', `${v2}/instance/beat?serviceName=svc&ip=10.0.0.1&port=8080`, 400, 21004, 'instance error', /CAIRN_EPHEMERAL_MISMATCH/],
  ];
  for (const [method, url, status, code, message, text] of cases) {
    const answer = await call(h.app, method, url);
    assert.equal(answer.status, status, `${method} ${url}`);
    const body = answer.json() as { code: number; message: string; data: string };
    assert.deepEqual([body.code, body.message], [code, message], `${method} ${url}`);
    assert.match(body.data, text, `${method} ${url}`);
  }
  const hosts = (await data(h, `${v2}/instance/list?serviceName=svc`) as { hosts: Array<{ ip: string; healthy: boolean }> }).hosts;
  assert.deepEqual(hosts.map((host) => [host.ip, host.healthy]), [['10.0.0.1', true]]);
  assert.deepEqual(await data(h, `${v2}/service/list`), { count: 2, services: ['eph', 'svc'] });
  const unknown = await call(h.app, 'GET', `${v2}/nothing`);
  assert.deepEqual([unknown.status, unknown.text], [501, 'no such api:GET:/nacos/v2/ns/nothing']);
  await h.app.close();
});

test('PUT /v2/ns/instance without `ephemeral` updates a persistent instance where it is (Nacos 2.x ignores the kind on update)', async () => {
  const h = await buildHarness();
  await ok(h, 'POST', `${v2}/instance`, query(persistent));
  const { ephemeral: _kind, ...withoutKind } = persistent;
  await ok(h, 'PUT', `${v2}/instance`, query({ ...withoutKind, weight: 5, metadata: '{"v":"2"}' }));
  const detail = await data(h, `${v2}/instance?serviceName=svc&ip=10.0.0.1&port=8080`) as { weight: number; metadata: unknown };
  assert.deepEqual([detail.weight, detail.metadata], [5, { v: '2' }]);
  await h.app.close();
});

test('an update without `healthy` keeps a health set by hand under a NONE checker (Nacos 2.x updates enabled, weight, metadata only)', async () => {
  const h = await buildHarness();
  await ok(h, 'POST', `${v2}/instance`, query(persistent));
  const cluster = query({ serviceName: 'svc', clusterName: 'DEFAULT', checkPort: 80, useInstancePort4Check: true, healthChecker: '{"type":"NONE"}' });
  assert.equal((await call(h.app, 'PUT', `/nacos/v1/ns/cluster?${cluster}`)).text, 'ok');
  const healthOf = async (): Promise<boolean> => (await data(h, `${v2}/instance?serviceName=svc&ip=10.0.0.1&port=8080`) as { healthy: boolean }).healthy;
  await ok(h, 'PUT', `${v2}/health/instance`, query({ serviceName: 'svc', ip: '10.0.0.1', port: 8080, healthy: false }));
  await ok(h, 'PUT', `${v2}/instance`, query({ ...persistent, weight: 2 }));
  assert.equal(await healthOf(), false, 'a v2 update without healthy');
  const javaUpdate = await call(h.app, 'PUT', `/nacos/v1/ns/instance?${query({ ...persistent, weight: 3 })}`, { headers: { 'user-agent': 'Nacos-Java-Client:v1.4.1', 'client-version': '1.4.1' } });
  assert.equal(javaUpdate.text, 'ok');
  assert.equal(await healthOf(), false, 'a v1 update from a Java client without healthy');
  const detail = await data(h, `${v2}/instance?serviceName=svc&ip=10.0.0.1&port=8080`) as { weight: number };
  assert.equal(detail.weight, 3, 'the update still changed the weight');
  // An update that names the health sets it, as before (the checker is NONE).
  await ok(h, 'PUT', `${v2}/instance`, query({ ...persistent, weight: 3, healthy: true }));
  assert.equal(await healthOf(), true, 'an update with healthy=true');
  await h.app.close();
});
