// Goal: HTTP checker headers that a probe cannot send (undici 7 refuses Transfer-Encoding, Expect, Keep-Alive,
// Upgrade, an invalid Content-Length or Connection, a second Host, a value outside Latin-1) are refused at the API
// with CAIRN_INVALID_ARGUMENT naming the header, over HTTP (PUT /nacos/v1/ns/cluster) and gRPC
// (SetClusterHealthChecker); a Raft command or a stored record holding one still decodes (an older member wrote it,
// and replay must accept what it accepted); and the prober drops such headers of a stored checker and probes with
// the rest, so its instances stay healthy, counting every probe that dropped some and logging once per checker
// (session 32's audit: such checkers were accepted and every probe failed). Also: a gRPC not-found answer says
// "service not found" once (it said "service not found: service not found: ...").
// Method: refusedProbeHeaders as a table; buildApp() over the real naming layer (app.inject, no socket) and
// buildGrpcServer() on 127.0.1.242, both over a RegistryStateMachine behind a DirectProposer (test/support); the
// command codec and a keyspace reload; an ActiveHealthChecker probing a real HTTP server on 127.0.1.243 that records
// the headers it receives. This file's block is 127.0.1.240-247.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import { CairnError } from '../../src/errors.ts';
import { refusedProbeHeaders, validateProbeHeaders } from '../../src/naming/validation.ts';
import type { HealthChecker, ServiceKey } from '../../src/naming/model.ts';
import { decodeCommand, encodeCommand } from '../../src/cp/commands.ts';
import { CpRegistry } from '../../src/cp/cp-registry.ts';
import { RegistryStateMachine } from '../../src/cp/registry-state-machine.ts';
import { NamingService } from '../../src/naming/naming-service.ts';
import { buildGrpcServer, listenGrpcServer, shutdownGrpcServer } from '../../src/api/grpc/server.ts';
import { ClientApiClient, GrpcCallError } from '../../src/api/grpc/client.ts';
import { ActiveHealthChecker } from '../../src/health/health-checker.ts';
import { HttpProber } from '../../src/health/http-prober.ts';
import { DirectProposer, soleLeader } from '../support/direct-proposer.ts';
import { sleep, waitFor } from '../support/cluster.ts';
import { buildHarness, call, query, type Harness } from '../api/http/harness.ts';

const grpcHost = '127.0.1.242';
const targetHost = '127.0.1.243';
const Naming = 'cairn.naming.v1.Naming';

test('refusedProbeHeaders: what a probe cannot send, by rule; what it can', () => {
  const table: ReadonlyArray<[Record<string, string>, ReadonlyArray<[string, string]>]> = [
    [{ 'Transfer-Encoding': 'chunked' }, [['Transfer-Encoding', 'framing']]],
    [{ Expect: '100-continue' }, [['Expect', 'framing']]],
    [{ 'keep-alive': 'timeout=5' }, [['keep-alive', 'framing']]],
    [{ Upgrade: 'websocket' }, [['Upgrade', 'framing']]],
    [{ 'Content-Length': '0' }, [['Content-Length', 'framing']]],
    [{ Connection: 'upgrade' }, [['Connection', 'connection']]],
    [{ Connection: 'keep-alive, close' }, [['Connection', 'connection']]],
    [{ Host: 'a.local', host: 'b.local' }, [['host', 'host']]],
    [{ 'X-Name': '\u4e2d' }, [['X-Name', 'value']]],
    [{ 'X-Ctl': 'a\u0001b' }, [['X-Ctl', 'value']]],
    [{ Host: 'svc.local', Connection: 'Keep-Alive', 'X-Latin': 'caf\u00e9', Authorization: 'Bearer t\tok', 'User-Agent': 'mine' }, []],
  ];
  for (const [headers, expected] of table) {
    assert.deepEqual(refusedProbeHeaders(headers).map((refusal) => [refusal.name, refusal.rule]), expected, JSON.stringify(headers));
  }
  const tcp: HealthChecker = { type: 'TCP' };
  assert.equal(validateProbeHeaders(tcp), tcp);
});

let harness: Harness;
let server: grpc.Server;
let client: ClientApiClient;

before(async () => {
  harness = await buildHarness();
  const machine = new RegistryStateMachine();
  const naming = new NamingService({ cp: new CpRegistry(new DirectProposer(machine), machine) });
  server = buildGrpcServer({ naming, ready: () => true, logger: { error: () => undefined } });
  client = new ClientApiClient(`${grpcHost}:${await listenGrpcServer(server, grpcHost, 0)}`, 5000);
});

after(async () => {
  client.close();
  await shutdownGrpcServer(server, 1000);
  await harness.app.close();
});

async function grpcFailure(method: string, request: object): Promise<GrpcCallError> {
  try {
    await client.call(Naming, method, request);
  } catch (error) {
    assert.ok(error instanceof GrpcCallError, String(error));
    return error;
  }
  return assert.fail(`${method} should have failed`);
}

test('HTTP PUT /nacos/v1/ns/cluster refuses each such header, naming it; a probeable checker is accepted', async () => {
  const created = await call(harness.app, 'POST', `/nacos/v1/ns/service?${query({ serviceName: 'checked', ephemeral: false })}`);
  assert.equal(created.status, 200, created.text);
  const put = (headers: string) => call(harness.app, 'PUT', `/nacos/v1/ns/cluster?${query({
    serviceName: 'checked', clusterName: 'DEFAULT', checkPort: 80, useInstancePort4Check: true,
    healthChecker: JSON.stringify({ type: 'HTTP', path: '/ok', headers }),
  })}`);
  for (const [headers, named] of [
    ['Transfer-Encoding:chunked', 'Transfer-Encoding'], ['Expect:100-continue', 'Expect'], ['keep-alive:timeout=5', 'keep-alive'],
    ['Upgrade:h2c', 'Upgrade'], ['Content-Length:5', 'Content-Length'], ['Connection:upgrade', 'Connection'],
    ['Host:a.local|host:b.local', 'host'], ['X-Probe:\u4e2d', 'X-Probe'],
  ]) {
    const answer = await put(headers as string);
    assert.equal(answer.status, 400, `${headers}: ${answer.text}`);
    assert.match(answer.text, new RegExp(`header '${named}' cannot be sent by a probe.*\\(CAIRN_INVALID_ARGUMENT\\)$`), headers);
  }
  const accepted = await put('Host:svc.local|Connection:close|X-Probe:cairn');
  assert.equal(accepted.status, 200, accepted.text);
});

test('gRPC SetClusterHealthChecker refuses such a header, naming it', async () => {
  await client.call(Naming, 'CreateService', { service: 'checked' });
  const refused = await grpcFailure('SetClusterHealthChecker', {
    service: 'checked', cluster: 'DEFAULT', healthChecker: { http: { path: '/ok', headers: { 'transfer-encoding': 'chunked' } } },
  });
  assert.equal(refused.code, grpc.status.INVALID_ARGUMENT, refused.message);
  assert.equal(refused.cairnCode, 'CAIRN_INVALID_ARGUMENT');
  assert.match(refused.message, /header 'transfer-encoding' cannot be sent by a probe/);
  await client.call(Naming, 'SetClusterHealthChecker', { service: 'checked', cluster: 'DEFAULT', healthChecker: { http: { path: '/ok', headers: { 'x-probe': 'cairn' } } } });
});

test('gRPC not-found answers say "service not found" once; the Nacos adapter\'s text is unchanged', async () => {
  const missing = await grpcFailure('SetClusterHealthChecker', { service: 'nosuch', healthChecker: { tcp: {} } });
  assert.equal(missing.code, grpc.status.NOT_FOUND);
  assert.equal(missing.message, 'CAIRN_SERVICE_NOT_FOUND: service not found: public/DEFAULT_GROUP@@nosuch');
  const update = await grpcFailure('UpdateService', { service: 'nosuch', protectThreshold: 0.1 });
  assert.equal(update.message, 'CAIRN_SERVICE_NOT_FOUND: service not found: public/DEFAULT_GROUP@@nosuch');
  // Every detail that repeats its catalog message as a phrase, on either path.
  assert.equal(new CairnError('CAIRN_INSTANCE_NOT_FOUND', 'instance not found: 10.0.0.1:80').message, 'instance not found: 10.0.0.1:80');
  assert.equal(new CairnError('CAIRN_HEALTH_CHECK_ACTIVE', 'health check is still working, service: g@@s').message, 'health check is still working, service: g@@s');
  assert.equal(new CairnError('CAIRN_SERVICE_NOT_FOUND', 'service not foundry').message, 'service not found: service not foundry');
  // The Nacos adapter shows the detail alone, as before.
  const nacos = await call(harness.app, 'PUT', `/nacos/v1/ns/service?${query({ serviceName: 'nosuch', protectThreshold: 0.5 })}`);
  assert.match(nacos.text, /^service not found: public\/DEFAULT_GROUP@@nosuch \(CAIRN_SERVICE_NOT_FOUND\)$/);
});

const web: ServiceKey = { namespace: 'public', group: 'DEFAULT_GROUP', service: 'web' };
const stored: HealthChecker = {
  type: 'HTTP', path: '/ok', expectedResponseCode: 200,
  headers: { Expect: '100-continue', 'Transfer-Encoding': 'chunked', 'X-Probe': 'cairn', 'keep-alive': 'timeout=5' },
};

test('a command or a stored record holding such a header still decodes (older members wrote them)', async () => {
  const command = { type: 'putCluster' as const, key: web, config: { name: 'DEFAULT', healthChecker: stored, checkPort: 80, useInstancePort4Check: true, metadata: {} } };
  const decoded = decodeCommand(encodeCommand({ requestId: 'older-member-1', command }));
  assert.equal(decoded.ok, true, JSON.stringify(decoded));
  const machine = new RegistryStateMachine();
  const proposer = new DirectProposer(machine);
  const cp = new CpRegistry(proposer, machine);
  await cp.createService({ key: web, protectThreshold: 0, metadata: {}, selector: { type: 'none' }, kind: null });
  await cp.putCluster(web, command.config);
  const reloaded = new RegistryStateMachine();
  await reloaded.load(proposer.keyspace.entries());
  assert.deepEqual(reloaded.clusterConfig(web, 'DEFAULT')?.healthChecker, stored);
});

test('the prober drops them from a stored checker: the instance stays healthy, counted per probe, logged once', async (t) => {
  const seen: http.IncomingHttpHeaders[] = [];
  const target = http.createServer((request, response) => {
    seen.push(request.headers);
    response.end('ok');
  });
  await new Promise<void>((resolve) => target.listen(0, targetHost, () => resolve()));
  t.after(() => new Promise<void>((resolve) => {
    target.closeAllConnections();
    target.close(() => resolve());
  }));
  const port = (target.address() as AddressInfo).port;
  const machine = new RegistryStateMachine();
  const proposer = new DirectProposer(machine);
  const cp = new CpRegistry(proposer, machine);
  await cp.createService({ key: web, protectThreshold: 0, metadata: {}, selector: { type: 'none' }, kind: null });
  // Straight into the registry, as a checker stored before the API refused such headers.
  await cp.putCluster(web, { name: 'DEFAULT', healthChecker: stored, checkPort: 80, useInstancePort4Check: true, metadata: {} });
  await cp.registerInstance(web, { cluster: 'DEFAULT', ip: targetHost, port, weight: 1, enabled: true, healthy: false, metadata: {} });
  const self = `${targetHost}:18848`;
  const raft = soleLeader(self, proposer);
  const metrics = new Registry();
  const warnings: Array<{ fields: object; message: string }> = [];
  const bounds = { minMs: 60, maxMs: 80, factor: 0.5 };
  const checker = new ActiveHealthChecker({
    self, raft, proposer: cp, view: machine, registry: metrics,
    logger: { info: () => undefined, warn: (fields, message) => warnings.push({ fields, message }) },
    tuning: { reconcileMs: 20, settleMs: 0, timeoutMs: 1000, bounds: { TCP: bounds, HTTP: bounds, MYSQL: bounds } },
  });
  checker.start();
  t.after(() => checker.close());
  await waitFor(() => machine.getInstance({ ...web, cluster: 'DEFAULT', ip: targetHost, port })?.healthy === true, { timeoutMs: 5000, what: 'the instance to turn healthy' });
  // Closed first, so that no probe is between counting its dropped headers and reaching the server.
  await checker.close();
  await sleep(100);
  const first = seen[0];
  assert.equal(first?.['x-probe'], 'cairn', 'the other headers are sent');
  assert.equal(first?.['user-agent'], 'Cairn-Health-Check');
  assert.equal(first?.['transfer-encoding'], undefined);
  assert.equal(first?.['expect'], undefined);
  const found = (await metrics.getMetricsAsJSON()).find((entry) => entry.name === 'cairn_health_probe_headers_dropped_total');
  const framing = found?.values.find((entry) => entry.labels['rule'] === 'framing')?.value ?? 0;
  assert.equal(framing, 3 * seen.length, 'three headers dropped by every probe');
  const dropped = warnings.filter((warning) => /headers a probe cannot send are dropped/.test(warning.message));
  assert.equal(dropped.length, 1, `logged once for ${seen.length} probes: ${JSON.stringify(warnings)}`);
  assert.match(JSON.stringify(dropped[0]?.fields), /Transfer-Encoding/);
  assert.doesNotMatch(JSON.stringify(dropped[0]?.fields), /chunked|100-continue/, 'values are never logged');
});

test('a checker\'s own User-Agent, in any case, replaces Cairn\'s: one is sent', async (t) => {
  const seen: string[][] = [];
  const target = http.createServer((request, response) => {
    const agents: string[] = [];
    for (let index = 0; index + 1 < request.rawHeaders.length; index += 2) {
      if (request.rawHeaders[index]?.toLowerCase() === 'user-agent') agents.push(request.rawHeaders[index + 1] ?? '');
    }
    seen.push(agents);
    response.end('ok');
  });
  await new Promise<void>((resolve) => target.listen(0, targetHost, () => resolve()));
  t.after(() => new Promise<void>((resolve) => {
    target.closeAllConnections();
    target.close(() => resolve());
  }));
  const prober = new HttpProber();
  t.after(() => prober.close());
  const port = (target.address() as AddressInfo).port;
  const result = await prober.probe({ id: 'ua', host: targetHost, port, checker: { type: 'HTTP', path: '/', headers: { 'User-Agent': 'mine/1' }, expectedResponseCode: 200 } }, 1000);
  assert.equal(result.healthy, true, result.detail);
  assert.deepEqual(seen[0], ['mine/1']);
});
