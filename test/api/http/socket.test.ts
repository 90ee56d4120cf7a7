// Goal: show the HTTP API works over a real socket the way its two kinds of clients speak it: the npm `nacos` client
// (every parameter in the query string, even on POST/PUT/DELETE, with its User-Agent, Client-Version and RequestId
// headers; reference/NACOS.md §10) and curl (form bodies from -d, plain-text answers). Also what only a socket
// shows: the body limit before parsing, 501 for unknown routes, keep-alive, and answers' headers.
// Method: buildApp() over the real naming layer and registry state machine (no Raft), listening on this file's own
// loopback address 127.0.1.30 on a free port (never 127.0.0.1:8848), driven with fetch().

import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { buildHarness, query, type Harness } from './harness.ts';

const host = '127.0.1.30';
let h: Harness;
let origin = '';

before(async () => {
  h = await buildHarness();
  await h.app.listen({ host, port: 0 });
  const address = h.app.server.address();
  assert.ok(address !== null && typeof address === 'object');
  origin = `http://${host}:${address.port}`;
});

after(async () => {
  await h.app.close();
});

/** requestTimeoutMs bounds every request: the server runs in this process and answers in milliseconds. */
const requestTimeoutMs = 10_000;

/**
 * send is fetch with a deadline: this file drives the server with fetch on purpose (its keep-alive pool, its
 * headers), and without a deadline a connection the server drops could leave a test waiting forever.
 */
function send(url: string, init: RequestInit = {}): Promise<Response> {
  return fetch(url, { ...init, signal: AbortSignal.timeout(requestTimeoutMs) });
}

/** npmClient sends a request the way nacos-sdk-nodejs's NameProxy does: query string only, its headers. */
async function npmClient(method: string, api: string, params: Record<string, string>): Promise<Response> {
  return send(`${origin}/nacos/v1/ns${api}?${query({ ...params, namespaceId: 'public' })}`, {
    method,
    headers: {
      'User-Agent': 'Nacos-Java-Client:v1.0.0',
      'Client-Version': 'Nacos-Java-Client:v1.0.0',
      'Accept-Encoding': 'gzip,deflate,sdch',
      'Request-Module': 'Naming',
      Connection: 'Keep-Alive',
      RequestId: randomUUID(),
    },
  });
}

test('the npm client\'s calls: register, list, health probe, service list, deregister', async () => {
  const registered = await npmClient('POST', '/instance', {
    serviceName: 'DEFAULT_GROUP@@npm.svc', groupName: 'DEFAULT_GROUP', clusterName: 'NODEJS', ip: '1.1.1.1', port: '8080',
    weight: '1', enable: 'true', healthy: 'true', ephemeral: 'false', metadata: '{}',
  });
  assert.deepEqual([registered.status, await registered.text()], [200, 'ok']);
  const listed = await npmClient('GET', '/instance/list', { serviceName: 'DEFAULT_GROUP@@npm.svc', clusters: 'NODEJS', udpPort: '0', clientIP: '10.9.9.9', healthyOnly: 'false' });
  assert.equal(listed.status, 200);
  assert.match(listed.headers.get('content-type') ?? '', /^application\/json/);
  const body = JSON.parse(await listed.text()) as { dom: string; hosts: Array<{ ip: string; clusterName: string }> };
  assert.equal(body.dom, 'DEFAULT_GROUP@@npm.svc');
  assert.deepEqual(body.hosts.map((hostEntry) => [hostEntry.ip, hostEntry.clusterName]), [['1.1.1.1', 'NODEJS']]);
  const probe = await npmClient('GET', '/operator/metrics', {});
  assert.deepEqual(JSON.parse(await probe.text()), { status: 'UP' });
  const services = await npmClient('GET', '/service/list', { pageNo: '1', pageSize: '10', groupName: 'DEFAULT_GROUP' });
  assert.deepEqual(JSON.parse(await services.text()), { count: 1, doms: ['npm.svc'] });
  // The npm client deregisters with the bare name and no groupName: DEFAULT_GROUP applies.
  const removed = await npmClient('DELETE', '/instance', { serviceName: 'npm.svc', clusterName: 'NODEJS', ip: '1.1.1.1', port: '8080', ephemeral: 'false' });
  assert.deepEqual([removed.status, await removed.text()], [200, 'ok']);
  const after = await npmClient('GET', '/instance/list', { serviceName: 'DEFAULT_GROUP@@npm.svc' });
  assert.deepEqual((JSON.parse(await after.text()) as { hosts: unknown[] }).hosts, []);
});

test('the npm client\'s ephemeral registration and beats get 501, which it logs and survives', async () => {
  const registered = await npmClient('POST', '/instance', { serviceName: 'DEFAULT_GROUP@@eph.svc', ip: '1.1.1.1', port: '8080', ephemeral: 'true' });
  assert.equal(registered.status, 501);
  assert.match(await registered.text(), /CAIRN_NOT_IMPLEMENTED/);
  const beat = await npmClient('PUT', '/instance/beat', { serviceName: 'DEFAULT_GROUP@@eph.svc', beat: JSON.stringify({ serviceName: 'DEFAULT_GROUP@@eph.svc', ip: '1.1.1.1', port: 8080, cluster: 'DEFAULT' }) });
  assert.equal(beat.status, 501);
  await beat.text();
});

test('curl: form bodies (-d), an empty form or JSON body, plain-text answers', async () => {
  const form = { 'content-type': 'application/x-www-form-urlencoded' };
  const posted = await send(`${origin}/nacos/v1/ns/instance`, { method: 'POST', headers: form, body: 'serviceName=curl.svc&ip=10.1.1.1&port=80&ephemeral=false&metadata=a%3D1' });
  assert.deepEqual([posted.status, posted.headers.get('content-type'), await posted.text()], [200, 'text/plain; charset=utf-8', 'ok']);
  const put = await send(`${origin}/nacos/v1/ns/instance?serviceName=curl.svc&ip=10.1.1.1&port=80&ephemeral=false&weight=3&metadata=a%3D1`, { method: 'PUT', headers: form, body: '' });
  assert.deepEqual([put.status, await put.text()], [200, 'ok']);
  const patched = await send(`${origin}/nacos/v1/ns/instance?serviceName=curl.svc&ip=10.1.1.1&port=80&enabled=true`, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: '' });
  assert.deepEqual([patched.status, await patched.text()], [200, 'ok']);
  const detail = await send(`${origin}/nacos/v1/ns/instance?serviceName=curl.svc&ip=10.1.1.1&port=80`);
  assert.deepEqual(JSON.parse(await detail.text()), {
    service: 'DEFAULT_GROUP@@curl.svc', ip: '10.1.1.1', port: 80, clusterName: 'DEFAULT', weight: 3, healthy: true,
    instanceId: '10.1.1.1#80#DEFAULT#DEFAULT_GROUP@@curl.svc', metadata: { a: '1' },
  });
  const missing = await send(`${origin}/nacos/v1/ns/instance`, { method: 'POST', headers: form, body: 'ip=10.1.1.1&port=80' });
  assert.deepEqual([missing.status, missing.headers.get('cairn-error-code'), await missing.text()],
    [400, 'CAIRN_INVALID_ARGUMENT', "Param 'serviceName' is required. (CAIRN_INVALID_ARGUMENT)"]);
});

test('a body over the limit is refused with 413 before parsing, and the connection stays usable', async () => {
  const big = `serviceName=big.svc&ip=10.2.2.2&port=80&ephemeral=false&pad=${'x'.repeat(512 * 1024)}`;
  const refused = await send(`${origin}/nacos/v1/ns/instance`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: big });
  assert.equal(refused.status, 413);
  assert.match(await refused.text(), /CAIRN_REQUEST_TOO_LARGE/);
  const list = await send(`${origin}/nacos/v1/ns/instance/list?serviceName=big.svc`);
  assert.deepEqual((JSON.parse(await list.text()) as { hosts: unknown[] }).hosts, []);
});

test('unknown routes answer 501 no such api; Cairn\'s health answers 200 with the request id echoed', async () => {
  const unknown = await send(`${origin}/nacos/v1/ns/instance/statuses?key=x`);
  assert.deepEqual([unknown.status, await unknown.text()], [501, 'no such api:GET:/nacos/v1/ns/instance/statuses']);
  const health = await send(`${origin}/cairn/v1/health`, { headers: { 'Cairn-Request-Id': 'socket-1' } });
  assert.equal(health.status, 200);
  assert.equal(health.headers.get('cairn-request-id'), 'socket-1');
  assert.equal((JSON.parse(await health.text()) as { status: string }).status, 'UP');
});
