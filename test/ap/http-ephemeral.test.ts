// Goal: ephemeral instances work through the Nacos Open API v1 and v2 (reference/NACOS.md §1.2-§1.4, §1.9) over the
// real AP registry: registration (ephemeral by default), update, patch, detail, list and deregistration; the beat
// routes `PUT /nacos/v{1,2}/ns/instance/beat` answer Nacos's un-enveloped objects (10200 with lightBeatEnabled, 20404
// for an unknown instance without a body), take ip/port/cluster from the parameters or the beat JSON, register an
// unknown instance again from the beat body (the npm `nacos` client relies on it, §10), honour
// `preserved.heart.beat.interval`, and refuse malformed beat JSON and illegal preserved timeouts with a 400 that
// names the problem, never a crash.
//
// Method: buildApp() with app.inject() (fastify's testing guide) over a NamingService whose CP side applies commands
// directly (test/support/direct-proposer.ts) and whose ephemeral side is a real, standalone DistroNode.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { buildApp } from '../../src/api/http/app.ts';
import { CpRegistry } from '../../src/cp/cp-registry.ts';
import { RegistryStateMachine } from '../../src/cp/registry-state-machine.ts';
import { NamingService } from '../../src/naming/naming-service.ts';
import { DistroNode } from '../../src/ap/distro.ts';
import { limits } from '../../src/limits.ts';
import { DirectProposer } from '../support/direct-proposer.ts';
import { call, FakeCluster, javaClient, query } from '../api/http/harness.ts';

const v1 = '/nacos/v1/ns';
const v2 = '/nacos/v2/ns';
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

async function setup() {
  const stateMachine = new RegistryStateMachine();
  const cp = new CpRegistry(new DirectProposer(stateMachine), stateMachine);
  const ephemeral = new DistroNode({ self: '127.0.1.130:18848', members: ['127.0.1.130:18848'], limits, logger: quiet });
  const naming = new NamingService({ cp, ephemeral });
  const app = buildApp({ naming, cluster: new FakeCluster(), metrics: new Registry(), logger: false });
  await app.ready();
  return { app, ephemeral };
}

type Host = { ip: string; port: number; healthy: boolean; ephemeral: boolean; weight: number; metadata: Record<string, string>; clusterName: string };

async function hosts(app: Awaited<ReturnType<typeof setup>>['app'], params: Record<string, string>): Promise<Host[]> {
  const answer = await call(app, 'GET', `${v1}/instance/list?${query(params)}`);
  assert.equal(answer.status, 200, answer.text);
  return (answer.json() as { hosts: Host[] }).hosts;
}

/** okOn returns a request helper for `app` that asserts a 200 answer. */
function okOn(app: Awaited<ReturnType<typeof setup>>['app']) {
  return async (method: 'POST' | 'PUT' | 'PATCH' | 'DELETE', url: string, headers: Record<string, string> = {}) => {
    const answer = await call(app, method, url, { headers });
    assert.equal(answer.status, 200, `${method} ${url}: ${answer.text}`);
    return answer;
  };
}

test('v1 and v2: register (ephemeral by default), update, patch, detail, list, deregister', async (t) => {
  const { app } = await setup();
  t.after(() => app.close());
  const ok = okOn(app);
  await ok('POST', `${v1}/instance?${query({ serviceName: 'eph', ip: '10.0.0.1', port: 8080, metadata: 'a=1' })}`);
  await ok('POST', `${v2}/instance?${query({ serviceName: 'eph', ip: '10.0.0.2', port: 8080, clusterName: 'c2' })}`);
  let list = await hosts(app, { serviceName: 'eph' });
  assert.deepEqual(list.map((h) => [h.ip, h.ephemeral, h.clusterName, h.metadata]), [['10.0.0.1', true, 'DEFAULT', { a: '1' }], ['10.0.0.2', true, 'c2', {}]]);
  // PUT: a Java client updates (must exist), curl upserts.
  assert.equal((await call(app, 'PUT', `${v1}/instance?${query({ serviceName: 'eph', ip: '10.0.0.9', port: 1 })}`, { headers: javaClient })).status, 400, 'v1 answers a write to a missing instance with 400');
  await ok('PUT', `${v1}/instance?${query({ serviceName: 'eph', ip: '10.0.0.1', port: 8080, weight: 3 })}`, javaClient);
  await ok('PUT', `${v2}/instance?${query({ serviceName: 'eph', ip: '10.0.0.2', port: 8080, clusterName: 'c2', weight: 4 })}`);
  await ok('PATCH', `${v1}/instance?${query({ serviceName: 'eph', ip: '10.0.0.1', port: 8080, enabled: false })}`);
  await ok('PATCH', `${v2}/instance?${query({ serviceName: 'eph', ip: '10.0.0.2', port: 8080, clusterName: 'c2', metadata: '{"k":"v"}' })}`);
  const detail = (await call(app, 'GET', `${v1}/instance?${query({ serviceName: 'eph', ip: '10.0.0.1', port: 8080 })}`)).json() as { weight: number; metadata: Record<string, string> };
  assert.deepEqual([detail.weight, detail.metadata], [3, { a: '1' }], 'an update is laid over the client\'s registration: its metadata keys stay');
  const detail2 = (await call(app, 'GET', `${v2}/instance?${query({ serviceName: 'eph', ip: '10.0.0.2', port: 8080, clusterName: 'c2' })}`)).json() as { data: { weight: number; metadata: Record<string, string> } };
  assert.deepEqual([detail2.data.weight, detail2.data.metadata], [4, { k: 'v' }]);
  list = await hosts(app, { serviceName: 'eph' });
  assert.deepEqual(list.map((h) => h.ip), ['10.0.0.2'], 'a disabled instance is not listed');
  const v2list = (await call(app, 'GET', `${v2}/instance/list?${query({ serviceName: 'eph' })}`)).json() as { data: { hosts: Host[] } };
  assert.deepEqual(v2list.data.hosts.map((h) => [h.ip, h.weight]), [['10.0.0.2', 4]]);
  await ok('DELETE', `${v1}/instance?${query({ serviceName: 'eph', ip: '10.0.0.1', port: 8080 })}`);
  await ok('DELETE', `${v2}/instance?${query({ serviceName: 'eph', ip: '10.0.0.2', port: 8080, clusterName: 'c2' })}`);
  await ok('DELETE', `${v1}/instance?${query({ serviceName: 'eph', ip: '10.0.0.2', port: 8080, clusterName: 'c2' })}`);
  assert.deepEqual(await hosts(app, { serviceName: 'eph' }), []);
  // A persistent instance in the now-empty ephemeral service is accepted (the kind follows the instances).
  await ok('POST', `${v1}/instance?${query({ serviceName: 'eph', ip: '10.0.0.3', port: 1, ephemeral: false })}`);
});

test('an operator\'s change outlives the client\'s re-registrations and a deregistration followed by a registration within the tombstone retention (Nacos 2.x, PEERS.md C3)', async (t) => {
  const { app } = await setup();
  t.after(() => app.close());
  const ok = okOn(app);
  const instance = { serviceName: 'ops', ip: '10.0.1.1', port: 8080 };
  const detail = async () => (await call(app, 'GET', `${v1}/instance?${query(instance)}`)).json() as { weight: number; enabled?: boolean; metadata: Record<string, string> };
  await ok('POST', `${v1}/instance?${query({ ...instance, weight: 2, metadata: 'zone=a,role=api' })}`);
  await ok('POST', `${v1}/instance?${query({ serviceName: 'ops', ip: '10.0.1.2', port: 8080 })}`);
  // The operator takes 10.0.1.1 out of rotation, halves its weight and tags it.
  await ok('PATCH', `${v1}/instance?${query({ ...instance, enabled: false, weight: 1, metadata: 'drain=yes' })}`);
  assert.deepEqual((await hosts(app, { serviceName: 'ops' })).map((h) => h.ip), ['10.0.1.2']);
  // The client registers again with its own fields (a restart): the operator's change stays laid over them.
  await ok('POST', `${v1}/instance?${query({ ...instance, weight: 5, metadata: 'zone=b,role=api' })}`);
  assert.deepEqual((await hosts(app, { serviceName: 'ops' })).map((h) => h.ip), ['10.0.1.2'], 'still disabled after the client re-registered');
  const seen = await detail();
  assert.deepEqual([seen.weight, seen.metadata], [1, { zone: 'b', role: 'api', drain: 'yes' }], 'the operator\'s weight and metadata over the client\'s new fields');
  // Deregistered (the client's shutdown, or expiry) and registered again within the tombstone retention: still there.
  await ok('DELETE', `${v1}/instance?${query(instance)}`);
  await ok('POST', `${v1}/instance?${query({ ...instance, weight: 5 })}`);
  assert.deepEqual((await hosts(app, { serviceName: 'ops' })).map((h) => h.ip), ['10.0.1.2'], 'still disabled after a deregistration and a new registration');
  // The operator lets it back in: enabled again, the operator's weight kept until changed.
  await ok('PATCH', `${v1}/instance?${query({ ...instance, enabled: true })}`);
  assert.deepEqual((await hosts(app, { serviceName: 'ops' })).map((h) => [h.ip, h.weight]), [['10.0.1.1', 1], ['10.0.1.2', 1]]);
  await ok('PATCH', `${v1}/instance?${query({ ...instance, weight: 5 })}`);
  assert.equal((await detail()).weight, 5);
});

test('beats: 10200 when known, 20404 when unknown without a body, re-registration from the body; v2 is not enveloped', async (t) => {
  const { app, ephemeral } = await setup();
  t.after(() => app.close());
  const metadata = { 'preserved.heart.beat.interval': '1000', 'preserved.heart.beat.timeout': '3000', 'preserved.ip.delete.timeout': '6000' };
  assert.equal((await call(app, 'POST', `${v1}/instance?${query({ serviceName: 'g@@beat', ip: '10.0.0.1', port: 80, metadata: JSON.stringify(metadata) })}`)).status, 200);
  const known = await call(app, 'PUT', `${v1}/instance/beat?${query({ serviceName: 'g@@beat', ip: '10.0.0.1', port: 80 })}`);
  assert.deepEqual([known.status, known.text], [200, '{"clientBeatInterval":1000,"code":10200,"lightBeatEnabled":true}']);
  const unknown = await call(app, 'PUT', `${v2}/instance/beat?${query({ serviceName: 'beat', groupName: 'g', ip: '10.0.0.2', port: 80 })}`);
  assert.deepEqual([unknown.status, unknown.text], [200, '{"clientBeatInterval":5000,"code":20404}']);
  // The npm client: grouped name, query-string parameters, the full RsInfo body, no ip/port parameters.
  const beat = JSON.stringify({ serviceName: 'g@@beat', ip: '10.0.0.2', port: 81, cluster: 'NODEJS', weight: 2, metadata: { v: 1 }, scheduled: true });
  const body = await call(app, 'PUT', `${v1}/instance/beat?${query({ serviceName: 'g@@beat', namespaceId: 'public', beat })}`, { headers: javaClient });
  assert.deepEqual([body.status, body.text], [200, '{"clientBeatInterval":5000,"code":10200,"lightBeatEnabled":true}']);
  const list = await hosts(app, { serviceName: 'beat', groupName: 'g' });
  assert.deepEqual(list.map((h) => [h.ip, h.port, h.clusterName, h.weight, h.metadata]), [['10.0.0.1', 80, 'DEFAULT', 1, metadata], ['10.0.0.2', 81, 'NODEJS', 2, { v: '1' }]]);
  const v2beat = await call(app, 'PUT', `${v2}/instance/beat?${query({ serviceName: 'g@@beat', beat })}`);
  assert.deepEqual(v2beat.json(), { clientBeatInterval: 5000, code: 10200, lightBeatEnabled: true });
  assert.equal(ephemeral.store.sizes().instances, 2);
  // Parameters and a body that disagree: the body is the instance's record and wins, as in Nacos 1.4 (the parameters
  // name 10.0.0.1:80, whose beat this is not; the body's instance, unknown, is registered again from it).
  const both = JSON.stringify({ serviceName: 'g@@beat', ip: '10.0.0.3', port: 82, cluster: 'BODY', weight: 3 });
  const mixed = await call(app, 'PUT', `${v1}/instance/beat?${query({ serviceName: 'g@@beat', ip: '10.0.0.1', port: 80, clusterName: 'PARAM', beat: both })}`);
  assert.deepEqual([mixed.status, mixed.text], [200, '{"clientBeatInterval":5000,"code":10200,"lightBeatEnabled":true}']);
  const after = await hosts(app, { serviceName: 'beat', groupName: 'g' });
  assert.deepEqual(after.map((h) => [h.ip, h.port, h.clusterName, h.weight]).sort(), [['10.0.0.1', 80, 'DEFAULT', 1], ['10.0.0.2', 81, 'NODEJS', 2], ['10.0.0.3', 82, 'BODY', 3]]);
  // A body without an address takes the parameters'.
  const bare = await call(app, 'PUT', `${v1}/instance/beat?${query({ serviceName: 'g@@beat', ip: '10.0.0.1', port: 80, beat: '{"weight":1}' })}`);
  assert.deepEqual([bare.status, bare.text], [200, '{"clientBeatInterval":1000,"code":10200,"lightBeatEnabled":true}']);
  assert.equal(ephemeral.store.sizes().instances, 3);
});

test('malformed beats and illegal preserved timeouts are refused with a 400 naming the problem', async (t) => {
  const { app } = await setup();
  t.after(() => app.close());
  const cases: Array<[string, RegExp]> = [
    ['serviceName=s&beat=%7B', /^Param 'beat' must be a JSON object/],
    ['serviceName=s&beat=%5B1%5D', /^Param 'beat' must be a JSON object/],
    ['serviceName=s&beat=null', /^Param 'beat' must be a JSON object/],
    [`serviceName=s&${query({ beat: '{"ip":1,"port":80}' })}`, /^Param 'beat' must be Nacos's beat JSON: 'ip' must be a string/],
    [`serviceName=s&${query({ beat: '{"ip":"1.1.1.1","port":"x"}' })}`, /'port' must be a number/],
    [`serviceName=s&${query({ beat: '{"ip":"1.1.1.1","port":70000}' })}`, /'port' must be an integer within 0..65535/],
    [`serviceName=s&${query({ beat: '{"ip":"1.1.1.1","port":1.5}' })}`, /'port' must be an integer/],
    [`serviceName=s&${query({ beat: '{"ip":"1.1.1.1","port":80,"metadata":[1]}' })}`, /'metadata' must be an object/],
    [`serviceName=s&${query({ beat: '{"ip":"1.1.1.1","port":80,"metadata":{"a":{}}}' })}`, /metadata value of 'a' must be a string/],
    [`serviceName=s&${query({ beat: '{"ip":"1.1.1.1","port":80,"weight":"heavy"}' })}`, /'weight' must be a number/],
    [`serviceName=s&${query({ beat: '{"ip":"1.1.1.1","port":80,"weight":-1}' })}`, /weights range from 0.0 to 10000.0/],
    [`serviceName=s&${query({ beat: '{"port":80}' })}`, /^Param 'ip' is required\./],
    [`serviceName=s&${query({ beat: '{"ip":"1.1.1.1"}' })}`, /^Param 'port' is required\./],
    [`serviceName=s&${query({ beat: '{"ip":"1.1.1.1","port":80,"metadata":{"preserved.heart.beat.interval":"20000"}}' })}`, /must less than 'heart beat timeout'/],
  ];
  for (const [params, text] of cases) {
    const answer = await call(app, 'PUT', `${v1}/instance/beat?${params}`);
    assert.equal(answer.status, 400, `${params}: ${answer.text}`);
    assert.match(answer.text, text, params);
  }
  const refused = await call(app, 'POST', `${v2}/instance?${query({ serviceName: 's', ip: '10.0.0.1', port: 1, metadata: '{"preserved.ip.delete.timeout":"100"}' })}`);
  assert.equal(refused.status, 400);
  assert.match((refused.json() as { data: string }).data, /must less than 'heart beat timeout' and 'ip delete timeout'/);
  assert.deepEqual(await hosts(app, { serviceName: 's' }), [], 'nothing was registered');
  // A beat for a service holding persistent instances is refused.
  await call(app, 'POST', `${v1}/instance?${query({ serviceName: 'p', ip: '10.0.0.1', port: 1, ephemeral: false })}`);
  const mismatch = await call(app, 'PUT', `${v1}/instance/beat?${query({ serviceName: 'p', ip: '10.0.0.1', port: 1 })}`);
  assert.equal(mismatch.status, 400);
  assert.match(mismatch.text, /CAIRN_EPHEMERAL_MISMATCH/);
});
