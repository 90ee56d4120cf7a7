// Goal: pin Nacos's v1 service, cluster, health, catalog and operator endpoints as Cairn serves them
// (reference/NACOS.md §1.2 health rows, §1.5, §1.6, §1.7): response shapes field by field, Nacos's replace
// semantics on service update, the refusals of bad input with Nacos's statuses and clear messages (nothing
// written), secrets never returned, and operator/metrics as the liveness probe the Nacos clients use.
// Method: buildApp() over the real naming layer and registry state machine (no Raft) and a fake ClusterControl,
// driven with inject(); every refusal is followed by a read.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildHarness, call, query, type Harness, type Method } from './harness.ts';

const base = '/nacos/v1/ns';
const persistent = { serviceName: 'svc', ip: '10.0.0.1', port: 8080, ephemeral: false };

async function ok(h: Harness, method: Method, url: string): Promise<void> {
  const answer = await call(h.app, method, url);
  assert.equal(answer.status, 200, `${method} ${url}: ${answer.text}`);
  assert.equal(answer.text, 'ok');
}

async function json(h: Harness, url: string): Promise<Record<string, unknown>> {
  const answer = await call(h.app, 'GET', url);
  assert.equal(answer.status, 200, `${url}: ${answer.text}`);
  return answer.json() as Record<string, unknown>;
}

async function refused(h: Harness, method: Method, url: string, status: number, text: RegExp): Promise<void> {
  const answer = await call(h.app, method, url);
  assert.equal(answer.status, status, `${method} ${url}: ${answer.text}`);
  assert.match(answer.text, text, `${method} ${url}`);
}

test('POST then GET /service: Nacos 1.x\'s shape field by field', async () => {
  const h = await buildHarness();
  const selector = JSON.stringify({ type: 'label', expression: 'CONSUMER.label.zone = PROVIDER.label.zone' });
  await ok(h, 'POST', `${base}/service?${query({ serviceName: 'svc', groupName: 'g', protectThreshold: 0.25, metadata: '{"owner":"team"}', selector })}`);
  const body = await json(h, `${base}/service?serviceName=g@@svc`);
  assert.deepEqual(body, {
    name: 'svc', namespaceId: 'public', protectThreshold: 0.25, metadata: { owner: 'team' },
    selector: { type: 'label', expression: 'CONSUMER.label.zone = PROVIDER.label.zone' }, groupName: 'g', clusters: [],
  });
  assert.deepEqual(Object.keys(body), ['name', 'namespaceId', 'protectThreshold', 'metadata', 'selector', 'groupName', 'clusters']);
  await h.app.close();
});

test('PUT /service replaces metadata and selector (absent means empty and none) and requires protectThreshold', async () => {
  const h = await buildHarness();
  await ok(h, 'POST', `${base}/service?serviceName=svc&metadata=a%3D1&protectThreshold=0.5`);
  await refused(h, 'PUT', `${base}/service?serviceName=svc&metadata=a%3D2`, 400, /^Param 'protectThreshold' is required\./);
  await ok(h, 'PUT', `${base}/service?serviceName=svc&protectThreshold=0.1`);
  const body = await json(h, `${base}/service?serviceName=svc`);
  assert.deepEqual([body['protectThreshold'], body['metadata'], body['selector']], [0.1, {}, { type: 'none' }]);
  await h.app.close();
});

test('service writes refuse bad input and conflicts with Nacos\'s 400; reads of a missing service are 404', async () => {
  const h = await buildHarness();
  await ok(h, 'POST', `${base}/service?serviceName=svc&protectThreshold=0.5&metadata=a%3D1`);
  const cases: Array<[Method, string, number, RegExp]> = [
    ['POST', 'protectThreshold=0.5', 400, /^Param 'serviceName' is required\./],
    ['POST', 'serviceName=svc', 400, /^specified service already exists.*\(CAIRN_SERVICE_ALREADY_EXISTS\)$/],
    ['POST', 'serviceName=s2&protectThreshold=1.5', 400, /^Param 'protectThreshold' must be a number within \[0, 1\]/],
    ['POST', 'serviceName=s2&protectThreshold=half', 400, /^Param 'protectThreshold' must be a number \(got 'half'\)/],
    ['POST', 'serviceName=s2&metadata=%7B%22a%22%3A%5B%5D%7D', 400, /^metadata format incorrect/],
    ['POST', 'serviceName=s2&selector=%7Bnot-json', 400, /^Param 'selector' is not valid JSON/],
    ['POST', 'serviceName=s2&selector=%7B%22type%22%3A%22label%22%2C%22expression%22%3A%22a%3Db%22%7D', 400, /^Param 'selector' expression must be/],
    ['POST', 'serviceName=s2&ephemeral=sometimes', 400, /^Param 'ephemeral' must be true or false/],
    ['PUT', 'serviceName=nosvc&protectThreshold=0.5', 400, /^service not found.*\(CAIRN_SERVICE_NOT_FOUND\)$/],
    ['PUT', 'serviceName=svc&protectThreshold=-0.1', 400, /^Param 'protectThreshold' must be a number within \[0, 1\]/],
    ['DELETE', 'serviceName=nosvc', 400, /CAIRN_SERVICE_NOT_FOUND/],
    ['DELETE', '', 400, /^Param 'serviceName' is required\./],
    ['GET', 'serviceName=nosvc', 404, /^service public\/DEFAULT_GROUP@@nosvc not found! \(CAIRN_SERVICE_NOT_FOUND\)$/],
    ['GET', 'serviceName=svc&consistency=eventual', 400, /^Param 'consistency' must be local or linearizable/],
  ];
  for (const [method, params, status, text] of cases) await refused(h, method, `${base}/service?${params}`, status, text);
  const body = await json(h, `${base}/service?serviceName=svc`);
  assert.deepEqual([body['protectThreshold'], body['metadata']], [0.5, { a: '1' }]);
  assert.deepEqual(await json(h, `${base}/service/list?pageNo=1&pageSize=10`), { count: 1, doms: ['svc'] });
  await h.app.close();
});

test('DELETE /service: refused while instances remain (Nacos 2.x), ok once empty', async () => {
  const h = await buildHarness();
  await ok(h, 'POST', `${base}/instance?${query(persistent)}`);
  await refused(h, 'DELETE', `${base}/service?serviceName=svc`, 400, /is not empty, can't be delete\. Please unregister instance first \(CAIRN_SERVICE_HAS_INSTANCES\)$/);
  await ok(h, 'DELETE', `${base}/instance?serviceName=svc&ip=10.0.0.1&port=8080`);
  await ok(h, 'DELETE', `${base}/service?serviceName=svc`);
  await refused(h, 'GET', `${base}/service?serviceName=svc`, 404, /CAIRN_SERVICE_NOT_FOUND/);
  await h.app.close();
});

test('GET /service/list: {count, doms} with bare names; pageNo and pageSize required; groups and pages', async () => {
  const h = await buildHarness();
  for (const name of ['a', 'b', 'c']) await ok(h, 'POST', `${base}/service?serviceName=${name}`);
  await ok(h, 'POST', `${base}/service?serviceName=x&groupName=g2`);
  assert.deepEqual(await json(h, `${base}/service/list?pageNo=1&pageSize=2`), { count: 3, doms: ['a', 'b'] });
  assert.deepEqual(await json(h, `${base}/service/list?pageNo=2&pageSize=2`), { count: 3, doms: ['c'] });
  assert.deepEqual(await json(h, `${base}/service/list?pageNo=9&pageSize=2`), { count: 3, doms: [] });
  assert.deepEqual(await json(h, `${base}/service/list?pageNo=1&pageSize=10&groupName=g2`), { count: 1, doms: ['x'] });
  assert.deepEqual(await json(h, `${base}/service/list?pageNo=1&pageSize=10&groupName=*`), { count: 4, doms: ['a', 'b', 'c', 'x'] });
  assert.deepEqual(await json(h, `${base}/service/list?pageNo=1&pageSize=10&namespaceId=other`), { count: 0, doms: [] });
  assert.deepEqual(await json(h, `${base}/service/list?pageNo=1&pageSize=10&selector=%7B%22type%22%3A%22none%22%7D`), { count: 3, doms: ['a', 'b', 'c'] });
  const cases: Array<[string, number, RegExp]> = [
    ['pageSize=10', 400, /^Param 'pageNo' is required\./],
    ['pageNo=1', 400, /^Param 'pageSize' is required\./],
    ['pageNo=0&pageSize=10', 400, /^Param 'pageNo' must be between 1 and/],
    ['pageNo=1&pageSize=ten', 400, /^Param 'pageSize' must be an integer/],
    ['pageNo=1&pageSize=10&groupName=bad%20group', 400, /^Param 'groupName' can only have these characters/],
    ['pageNo=1&pageSize=10&selector=%7B%22type%22%3A%22label%22%2C%22expression%22%3A%22INSTANCE.metadata.a%3D1%22%7D', 501, /selector.*\(CAIRN_NOT_IMPLEMENTED\)$/],
  ];
  for (const [params, status, text] of cases) await refused(h, 'GET', `${base}/service/list?${params}`, status, text);
  await h.app.close();
});

test('PUT /cluster: every Nacos parameter required; the checker shows in GET /service, the MySQL password never', async () => {
  const h = await buildHarness();
  await ok(h, 'POST', `${base}/instance?${query(persistent)}`);
  const http = JSON.stringify({ type: 'HTTP', path: '/health', headers: 'X-A:1|X-B:2', expectedResponseCode: 204 });
  const cluster = { serviceName: 'svc', clusterName: 'DEFAULT', checkPort: 9090, useInstancePort4Check: false, healthChecker: http, metadata: 'tier=web' };
  await ok(h, 'PUT', `${base}/cluster?${query(cluster)}`);
  assert.deepEqual((await json(h, `${base}/service?serviceName=svc`))['clusters'], [{
    name: 'DEFAULT', healthChecker: { type: 'HTTP', path: '/health', headers: 'X-A:1|X-B:2', expectedResponseCode: 204 }, metadata: { tier: 'web' },
  }]);
  const mysql = JSON.stringify({ type: 'MYSQL', user: 'probe', pwd: 's3cret', cmd: 'select 1' });
  await ok(h, 'PUT', `${base}/cluster?${query({ ...cluster, clusterName: 'db', useInstancePort4Check: true, healthChecker: mysql })}`);
  const service = await call(h.app, 'GET', `${base}/service?serviceName=svc`);
  assert.doesNotMatch(service.text, /s3cret/);
  const clusters = (service.json() as { clusters: Array<{ name: string; healthChecker: unknown }> }).clusters;
  assert.deepEqual(clusters.find((c) => c.name === 'db')?.healthChecker, { type: 'MYSQL', user: 'probe', cmd: 'select 1', passwordSet: true });
  const catalog = await call(h.app, 'GET', `${base}/catalog/service?serviceName=svc`);
  assert.doesNotMatch(catalog.text, /s3cret/);
  // Cairn's fixed interval travels with the checker and shows beside Nacos's fields.
  await ok(h, 'PUT', `${base}/cluster?${query({ ...cluster, clusterName: 'fixed', healthChecker: '{"type":"TCP","intervalMs":5000}' })}`);
  const fixed = (await json(h, `${base}/service?serviceName=svc`))['clusters'] as Array<{ name: string; healthChecker: unknown }>;
  assert.deepEqual(fixed.find((c) => c.name === 'fixed')?.healthChecker, { type: 'TCP', intervalMs: 5000 });
  await refused(h, 'PUT', `${base}/cluster?${query({ ...cluster, clusterName: 'fast', healthChecker: '{"type":"TCP","intervalMs":100}' })}`, 400, /intervalMs/);
  await h.app.close();
});

test('PUT /cluster refuses bad input with 400 and changes nothing', async () => {
  const h = await buildHarness();
  await ok(h, 'POST', `${base}/instance?${query(persistent)}`);
  const good = { serviceName: 'svc', clusterName: 'DEFAULT', checkPort: 80, useInstancePort4Check: true, healthChecker: '{"type":"TCP"}' };
  const without = (name: string): Record<string, string | number | boolean> => Object.fromEntries(Object.entries(good).filter(([key]) => key !== name));
  const cases: Array<[Record<string, string | number | boolean>, number, RegExp]> = [
    [without('clusterName'), 400, /^Param 'clusterName' is required\./],
    [without('checkPort'), 400, /^Param 'checkPort' is required\./],
    [without('useInstancePort4Check'), 400, /^Param 'useInstancePort4Check' is required\./],
    [without('healthChecker'), 400, /^Param 'healthChecker' is required\./],
    [{ ...good, checkPort: 'eighty' }, 400, /^Param 'checkPort' must be an integer/],
    [{ ...good, useInstancePort4Check: 'sure' }, 400, /^Param 'useInstancePort4Check' must be true or false/],
    [{ ...good, healthChecker: '{"type":"PING"}' }, 400, /^Param 'healthChecker' type must be one of NONE, TCP, HTTP, MYSQL/],
    [{ ...good, healthChecker: '{"type":' }, 400, /^Param 'healthChecker' is not valid JSON/],
    [{ ...good, healthChecker: '{"type":"HTTP","expectedResponseCode":999}' }, 400, /expectedResponseCode' must be an integer within 100\.\.599/],
    [{ ...good, clusterName: 'bad name' }, 400, /^Param 'clusterName' can only have these characters/],
    [{ ...good, metadata: 'x' }, 400, /^metadata format incorrect/],
    [{ ...good, serviceName: 'nosvc' }, 400, /CAIRN_SERVICE_NOT_FOUND/],
  ];
  for (const [params, status, text] of cases) await refused(h, 'PUT', `${base}/cluster?${query(params)}`, status, text);
  assert.deepEqual((await json(h, `${base}/service?serviceName=svc`))['clusters'], [{ name: 'DEFAULT', healthChecker: { type: 'TCP' }, metadata: {} }]);
  await h.app.close();
});

test('PUT /health/instance (and its alias /health with legacy valid): only under a NONE checker', async () => {
  const h = await buildHarness();
  await ok(h, 'POST', `${base}/instance?${query(persistent)}`);
  const health = `serviceName=svc&ip=10.0.0.1&port=8080`;
  await refused(h, 'PUT', `${base}/health/instance?${health}&healthy=false`, 400, /^health check is still working.*\(CAIRN_HEALTH_CHECK_ACTIVE\)$/);
  await ok(h, 'PUT', `${base}/cluster?${query({ serviceName: 'svc', clusterName: 'DEFAULT', checkPort: 80, useInstancePort4Check: true, healthChecker: '{"type":"NONE"}' })}`);
  await ok(h, 'PUT', `${base}/health/instance?${health}&healthy=false`);
  assert.equal((await json(h, `${base}/instance?${health}`))['healthy'], false);
  await ok(h, 'PUT', `${base}/health?${health}&valid=true`);
  assert.equal((await json(h, `${base}/instance?${health}`))['healthy'], true);
  await refused(h, 'PUT', `${base}/health/instance?${health}`, 400, /^Param 'healthy' is required\./);
  await refused(h, 'PUT', `${base}/health/instance?${health}&healthy=down`, 400, /^Param 'healthy' must be true or false/);
  await refused(h, 'PUT', `${base}/health/instance?serviceName=svc&ip=10.0.0.9&port=8080&healthy=false`, 400, /CAIRN_INSTANCE_NOT_FOUND/);
  assert.equal((await json(h, `${base}/instance?${health}`))['healthy'], true);
  await h.app.close();
});

test('catalog/services and catalog/service: Nacos\'s console shapes', async () => {
  const h = await buildHarness();
  await ok(h, 'POST', `${base}/instance?${query(persistent)}`);
  await ok(h, 'POST', `${base}/instance?${query({ ...persistent, ip: '10.0.0.2', clusterName: 'c2', healthy: false })}`);
  await ok(h, 'POST', `${base}/service?serviceName=empty&groupName=g2`);
  assert.deepEqual(await json(h, `${base}/catalog/services?pageNo=1&pageSize=10`), {
    serviceList: [
      { name: 'svc', groupName: 'DEFAULT_GROUP', clusterCount: 2, ipCount: 2, healthyInstanceCount: 1, triggerFlag: 'false' },
      { name: 'empty', groupName: 'g2', clusterCount: 0, ipCount: 0, healthyInstanceCount: 0, triggerFlag: 'false' },
    ].sort((a, b) => (a.groupName < b.groupName ? -1 : 1)),
    count: 2,
  });
  assert.deepEqual(await json(h, `${base}/catalog/services?hasIpCount=true`), (await json(h, `${base}/catalog/services?serviceNameParam=sv`)));
  assert.equal((await json(h, `${base}/catalog/services?groupNameParam=g2`))['count'], 1);
  assert.deepEqual(await json(h, `${base}/catalog/service?serviceName=svc`), {
    service: { name: 'svc', protectThreshold: 0, groupName: 'DEFAULT_GROUP', selector: { type: 'none' }, metadata: {} },
    clusters: [
      { serviceName: 'DEFAULT_GROUP@@svc', name: 'DEFAULT', healthChecker: { type: 'TCP' }, defaultPort: 80, defaultCheckPort: 80, useIPPort4Check: true, metadata: {} },
      { serviceName: 'DEFAULT_GROUP@@svc', name: 'c2', healthChecker: { type: 'TCP' }, defaultPort: 80, defaultCheckPort: 80, useIPPort4Check: true, metadata: {} },
    ],
  });
  await refused(h, 'GET', `${base}/catalog/services?withInstances=true`, 501, /CAIRN_NOT_IMPLEMENTED/);
  await refused(h, 'GET', `${base}/catalog/services?pageNo=x`, 400, /^Param 'pageNo' must be an integer/);
  await refused(h, 'GET', `${base}/catalog/services?hasIpCount=1`, 400, /^Param 'hasIpCount' must be true or false/);
  await refused(h, 'GET', `${base}/catalog/service?serviceName=nosvc`, 404, /CAIRN_SERVICE_NOT_FOUND/);
  await h.app.close();
});

test('operator/metrics: {status:"UP"} by default (the clients\' liveness probe); counts with onlyStatus=false', async () => {
  const h = await buildHarness();
  await ok(h, 'POST', `${base}/instance?${query(persistent)}`);
  await ok(h, 'POST', `${base}/instance?${query({ ...persistent, ip: '10.0.0.2' })}`);
  const probe = await call(h.app, 'GET', `${base}/operator/metrics`);
  assert.deepEqual([probe.status, probe.json()], [200, { status: 'UP' }]);
  const full = await json(h, `${base}/operator/metrics?onlyStatus=false`);
  assert.deepEqual(Object.keys(full), ['status', 'serviceCount', 'instanceCount', 'raftNotifyTaskCount', 'responsibleServiceCount', 'responsibleInstanceCount', 'cpu', 'load', 'mem']);
  assert.deepEqual([full['status'], full['serviceCount'], full['instanceCount'], full['responsibleInstanceCount']], ['UP', 1, 2, 2]);
  for (const key of ['cpu', 'load', 'mem']) assert.equal(typeof full[key], 'number');
  h.cluster.readyNow = false;
  assert.deepEqual(await json(h, `${base}/operator/metrics`), { status: 'DOWN' });
  await refused(h, 'GET', `${base}/operator/metrics?onlyStatus=no`, 400, /^Param 'onlyStatus' must be true or false/);
  await h.app.close();
});

test('operator/servers: the members in Nacos\'s Member shape, with Cairn\'s Raft view in extendInfo', async () => {
  const h = await buildHarness();
  const body = await json(h, `${base}/operator/servers`);
  const servers = body['servers'] as Array<Record<string, unknown>>;
  assert.deepEqual(servers[0], {
    ip: '127.0.1.1', port: 8848, state: 'UP', address: '127.0.1.1:8848',
    extendInfo: { raftMetaData: { leader: '127.0.1.1:8848', term: 7 }, role: 'leader', term: 7, commitIndex: 42, appliedIndex: 42, matchIndex: 43, lastContactMs: 0 },
    failAccessCnt: 0,
  });
  assert.deepEqual(servers.map((server) => server['state']), ['UP', 'UP', 'DOWN']);
  const healthy = await json(h, `${base}/operator/servers?healthy=true`);
  assert.deepEqual((healthy['servers'] as Array<Record<string, unknown>>).map((server) => server['address']), ['127.0.1.1:8848', '127.0.1.2:8848']);
  await h.app.close();
});
