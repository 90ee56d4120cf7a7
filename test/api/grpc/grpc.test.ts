// Goal: show that Cairn's client gRPC port (proto/cairn/naming/v1/naming.proto) behaves as DESIGN.md "gRPC on port
// + 1000" and docs/grpc.md promise: every Naming method's happy path and its errors, each error a gRPC status code
// from the catalog with the Cairn code in the status message, the `cairn-error-code` metadata and the
// google.rpc.ErrorInfo of grpc-status-details-bin; reads LINEARIZABLE unless they ask for LOCAL; the streams answered
// UNIMPLEMENTED when the server has no subscription hub or no AP registry (test/api/grpc/streams.test.ts serves them); the standard health service following `ready()`; reflection listing the
// services; deadlines handed to the registry as its timeout; oversize and undecodable requests refused; unexpected
// exceptions answered INTERNAL without their text.
// Method: buildGrpcServer() over the real NamingService and registry state machine with a direct proposer (no Raft;
// a subclass can hold linearizable barriers and records their options), bound to this file's own loopback address
// 127.0.1.40 on a free port (never 127.0.0.1), called through real channels: the ClientApiClient of
// src/api/grpc/client.ts for unary calls and grpc-js stream calls for the rest.

import { after, before, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { CairnError, cairnErrorFromRaft } from '../../../src/errors.ts';
import { CpRegistry } from '../../../src/cp/cp-registry.ts';
import { RegistryStateMachine } from '../../../src/cp/registry-state-machine.ts';
import { NamingService, type AuthorizationHook } from '../../../src/naming/naming-service.ts';
import type { ProposeOptions } from '../../../src/replica/proposer.ts';
import { limits } from '../../../src/limits.ts';
import { buildGrpcServer, listenGrpcServer, shutdownGrpcServer } from '../../../src/api/grpc/server.ts';
import { ClientApiClient, GrpcCallError } from '../../../src/api/grpc/client.ts';
import { decodeErrorInfo, statusDetailsMetadataKey } from '../../../src/api/grpc/errors.ts';
import { methodDefinitionOf } from '../../../src/api/grpc/proto.ts';
import { healthWatchIntervalMs } from '../../../src/api/grpc/health.ts';
import { DirectProposer } from '../../support/direct-proposer.ts';

const host = '127.0.1.40';
const Naming = 'cairn.naming.v1.Naming';
const Health = 'grpc.health.v1.Health';

/** GatedProposer is a DirectProposer whose linearizable barriers can be held, recording the options of each. */
class GatedProposer extends DirectProposer {
  readonly barrierOptions: Array<ProposeOptions | undefined> = [];
  held: Array<() => void> | null = null;

  override async linearizableBarrier(options?: ProposeOptions): Promise<void> {
    this.barrierOptions.push(options);
    if (this.held !== null) await new Promise<void>((resolve) => this.held?.push(resolve));
    return super.linearizableBarrier(options);
  }

  release(): void {
    for (const resolve of this.held ?? []) resolve();
    this.held = null;
  }
}

let server: grpc.Server;
let address = '';
let client: ClientApiClient;
let proposer: GatedProposer;
let ready = true;
let authorizeHook: AuthorizationHook = () => undefined;
const logged: Array<Record<string, unknown>> = [];

before(async () => {
  const stateMachine = new RegistryStateMachine();
  proposer = new GatedProposer(stateMachine);
  const naming = new NamingService({ cp: new CpRegistry(proposer, stateMachine), authorize: (...args) => authorizeHook(...args) });
  server = buildGrpcServer({ naming, ready: () => ready, logger: { error: (fields) => logged.push(fields) } });
  address = `${host}:${await listenGrpcServer(server, host, 0)}`;
  client = new ClientApiClient(address, 5000);
});

after(async () => {
  client.close();
  await shutdownGrpcServer(server, 1000);
});

beforeEach(() => {
  ready = true;
  authorizeHook = () => undefined;
  proposer.release();
});

function call(method: string, request: object): Promise<Record<string, unknown>> {
  return client.call(Naming, method, request);
}

/** failure makes a call that must fail and returns its error after checking the status and the Cairn code everywhere. */
async function failure(method: string, request: object, status: grpc.status, cairnCode: string): Promise<GrpcCallError> {
  try {
    await call(method, request);
  } catch (error) {
    assert.ok(error instanceof GrpcCallError, String(error));
    assert.equal(error.statusName, grpc.status[status], error.message);
    assert.equal(error.cairnCode, cairnCode);
    assert.ok(error.message.startsWith(`${cairnCode}: `), error.message);
    const details = error.metadata.get(statusDetailsMetadataKey)[0];
    assert.ok(Buffer.isBuffer(details), 'grpc-status-details-bin is set');
    const info = decodeErrorInfo(details);
    assert.equal(info?.reason, cairnCode);
    assert.equal(info?.domain, 'cairn');
    return error;
  }
  assert.fail(`${method} should have failed with ${cairnCode}`);
}

const instance = (ip: string, port: number, extra: object = {}): object => ({ ip, port, ...extra });

test('RegisterInstance stores a persistent instance with Nacos defaults, and returns it with the revision', async () => {
  const answer = await call('RegisterInstance', { service: 'orders', instance: instance('10.0.0.1', 8080, { metadata: { zone: 'a' } }) });
  assert.deepEqual(answer['instance'], {
    ip: '10.0.0.1', port: 8080, cluster: 'DEFAULT', weight: 1, _weight: 'weight', enabled: true, _enabled: 'enabled',
    healthy: true, _healthy: 'healthy', ephemeral: false, metadata: { zone: 'a' }, instanceId: '10.0.0.1#8080#DEFAULT#DEFAULT_GROUP@@orders', version: 1,
  });
  assert.ok(typeof answer['revision'] === 'number' && answer['revision'] > 0);
  // An explicit zero weight and disabled instance are kept: `optional` fields tell zero from absent.
  const zero = await call('RegisterInstance', { namespace: 'dev', group: 'g1', service: 'orders', instance: instance('10.0.0.2', 1, { cluster: 'c1', weight: 0, enabled: false }) });
  assert.deepEqual([Reflect.get(zero['instance'] as object, 'weight'), Reflect.get(zero['instance'] as object, 'enabled')], [0, false]);
  assert.equal(Reflect.get(zero['instance'] as object, 'instanceId'), '10.0.0.2#1#c1#g1@@orders');
});

test('RegisterInstance refuses bad input with INVALID_ARGUMENT, naming the field as the .proto spells it', async () => {
  const missing = await failure('RegisterInstance', { instance: instance('10.0.0.1', 1) }, grpc.status.INVALID_ARGUMENT, 'CAIRN_INVALID_ARGUMENT');
  assert.match(missing.message, /Param 'service' is required\./);
  assert.match((await failure('RegisterInstance', { service: 's' }, grpc.status.INVALID_ARGUMENT, 'CAIRN_INVALID_ARGUMENT')).message, /'instance' is required/);
  assert.match((await failure('RegisterInstance', { service: 's', instance: { port: 1 } }, grpc.status.INVALID_ARGUMENT, 'CAIRN_INVALID_ARGUMENT')).message, /'instance\.ip' is required/);
  assert.match((await failure('RegisterInstance', { service: 's', instance: instance('300.1.1.1', 1) }, grpc.status.INVALID_ARGUMENT, 'CAIRN_INVALID_ARGUMENT')).message, /not a valid IPv4/);
  assert.match((await failure('RegisterInstance', { service: 's', instance: instance('10.0.0.1', 70000) }, grpc.status.INVALID_ARGUMENT, 'CAIRN_INVALID_ARGUMENT')).message, /'instance\.port' must be an integer within 0\.\.65535/);
  assert.match((await failure('RegisterInstance', { service: 's', instance: instance('10.0.0.1', 1, { weight: 10001 }) }, grpc.status.INVALID_ARGUMENT, 'CAIRN_INVALID_ARGUMENT')).message, /weights range from 0\.0 to 10000\.0/);
  await failure('RegisterInstance', { service: 's', group: 'bad group', instance: instance('10.0.0.1', 1) }, grpc.status.INVALID_ARGUMENT, 'CAIRN_INVALID_ARGUMENT');
  await failure('RegisterInstance', { service: 'x'.repeat(limits.serviceNameCharsMax + 1), instance: instance('10.0.0.1', 1) }, grpc.status.INVALID_ARGUMENT, 'CAIRN_NAME_TOO_LONG');
  await failure('RegisterInstance', { service: 's', instance: instance('10.0.0.1', 1, { metadata: { k: 'v'.repeat(limits.metadataCharsMax) } }) }, grpc.status.INVALID_ARGUMENT, 'CAIRN_METADATA_TOO_LARGE');
  const requestId = await failure('RegisterInstance', { service: 's', instance: instance('10.0.0.1', 1), requestId: 'has space' }, grpc.status.INVALID_ARGUMENT, 'CAIRN_INVALID_ARGUMENT');
  assert.match(requestId.message, /'request_id'/);
  assert.equal(decodeErrorInfo(requestId.metadata.get(statusDetailsMetadataKey)[0] as Buffer)?.metadata['parameter'], 'request_id');
});

test('RegisterInstance of an ephemeral instance is UNIMPLEMENTED until the AP path exists', async () => {
  await failure('RegisterInstance', { service: 'eph', instance: instance('10.0.0.1', 1, { ephemeral: true }) }, grpc.status.UNIMPLEMENTED, 'CAIRN_NOT_IMPLEMENTED');
});

test('a write resent with the same request_id is answered with the first result; a different write reusing it is refused', async () => {
  const request = { service: 'idem', instance: instance('10.0.1.1', 80), requestId: 'req-idem-1' };
  const first = await call('RegisterInstance', request);
  const retry = await call('RegisterInstance', request);
  assert.deepEqual(retry, first);
  await failure('RegisterInstance', { ...request, instance: instance('10.0.1.2', 80) }, grpc.status.FAILED_PRECONDITION, 'CAIRN_REQUEST_ID_REUSED');
});

test('UpdateInstance changes only the fields present; metadata is replaced as a whole when present', async () => {
  await call('RegisterInstance', { service: 'upd', instance: instance('10.0.2.1', 80, { weight: 5, metadata: { a: '1' } }) });
  const weight = await call('UpdateInstance', { service: 'upd', ip: '10.0.2.1', port: 80, weight: 7 });
  assert.equal(Reflect.get(weight['instance'] as object, 'weight'), 7);
  assert.deepEqual(Reflect.get(weight['instance'] as object, 'metadata'), { a: '1' });
  const metadata = await call('UpdateInstance', { service: 'upd', ip: '10.0.2.1', port: 80, metadata: { entries: { b: '2' } }, enabled: false });
  assert.deepEqual(Reflect.get(metadata['instance'] as object, 'metadata'), { b: '2' });
  assert.equal(Reflect.get(metadata['instance'] as object, 'enabled'), false);
  const cleared = await call('UpdateInstance', { service: 'upd', ip: '10.0.2.1', port: 80, metadata: {} });
  assert.equal(Reflect.get(cleared['instance'] as object, 'metadata'), undefined, 'an empty map is absent on the wire');
  await failure('UpdateInstance', { service: 'upd', ip: '10.0.2.9', port: 80, weight: 1 }, grpc.status.NOT_FOUND, 'CAIRN_INSTANCE_NOT_FOUND');
});

test('expected_version makes a write a compare-and-set on the instance version; a mismatch changes nothing', async () => {
  const versionOf = (answer: Record<string, unknown>): unknown => Reflect.get(answer['instance'] as object, 'version');
  const created = await call('RegisterInstance', { service: 'cas', instance: instance('10.0.2.5', 80, { metadata: { v: 'a' } }), expectedVersion: 0 });
  assert.equal(versionOf(created), 1, 'expected_version 0 creates an absent instance');
  const again = await failure('RegisterInstance', { service: 'cas', instance: instance('10.0.2.5', 80, { metadata: { v: 'b' } }), expectedVersion: 0 }, grpc.status.FAILED_PRECONDITION, 'CAIRN_VERSION_MISMATCH');
  assert.deepEqual(decodeErrorInfo(again.metadata.get(statusDetailsMetadataKey)[0] as Buffer)?.metadata, { expected: '0', actual: '1' });
  const updated = await call('UpdateInstance', { service: 'cas', ip: '10.0.2.5', port: 80, metadata: { entries: { v: 'c' } }, expectedVersion: 1 });
  assert.equal(versionOf(updated), 2);
  await failure('UpdateInstance', { service: 'cas', ip: '10.0.2.5', port: 80, metadata: { entries: { v: 'd' } }, expectedVersion: 1 }, grpc.status.FAILED_PRECONDITION, 'CAIRN_VERSION_MISMATCH');
  const read = await call('GetInstance', { service: 'cas', ip: '10.0.2.5', port: 80 });
  assert.deepEqual([versionOf(read), Reflect.get(read['instance'] as object, 'metadata')], [2, { v: 'c' }], 'the refused writes changed nothing');
  const listed = await call('ListInstances', { service: 'cas' });
  assert.equal(Reflect.get((listed['instances'] as object[])[0] ?? {}, 'version'), 2, 'lists carry versions too');
  await failure('DeregisterInstance', { service: 'cas', ip: '10.0.2.5', port: 80, expectedVersion: 1 }, grpc.status.FAILED_PRECONDITION, 'CAIRN_VERSION_MISMATCH');
  const removed = await call('DeregisterInstance', { service: 'cas', ip: '10.0.2.5', port: 80, expectedVersion: 2 });
  assert.equal(removed['removed'], true);
  const reborn = await call('RegisterInstance', { service: 'cas', instance: instance('10.0.2.5', 80), expectedVersion: 0 });
  assert.equal(versionOf(reborn), 1, 'a re-registration starts again at version 1');
  const ephemeral = await failure('RegisterInstance', { service: 'cas-eph', instance: instance('10.0.2.6', 80, { ephemeral: true }), expectedVersion: 0 }, grpc.status.INVALID_ARGUMENT, 'CAIRN_INVALID_ARGUMENT');
  assert.match(ephemeral.message, /persistent instances only/);
});

test('GetInstance returns one instance, or NOT_FOUND naming what is missing', async () => {
  await call('RegisterInstance', { service: 'get', instance: instance('10.0.3.1', 80, { cluster: 'east' }) });
  const answer = await call('GetInstance', { service: 'get', cluster: 'east', ip: '10.0.3.1', port: 80 });
  assert.equal(Reflect.get(answer['instance'] as object, 'instanceId'), '10.0.3.1#80#east#DEFAULT_GROUP@@get');
  await failure('GetInstance', { service: 'get', ip: '10.0.3.1', port: 80 }, grpc.status.NOT_FOUND, 'CAIRN_INSTANCE_NOT_FOUND');
  await failure('GetInstance', { service: 'nope', ip: '10.0.3.1', port: 80 }, grpc.status.NOT_FOUND, 'CAIRN_SERVICE_NOT_FOUND');
});

test('ListInstances filters by cluster and health, and answers an unknown service with an empty list', async () => {
  await call('RegisterInstance', { service: 'list', instance: instance('10.0.4.1', 80, { cluster: 'a' }) });
  await call('RegisterInstance', { service: 'list', instance: instance('10.0.4.2', 80, { cluster: 'b' }) });
  const all = await call('ListInstances', { service: 'list' });
  assert.deepEqual((all['instances'] as object[]).map((item) => Reflect.get(item, 'ip')), ['10.0.4.1', '10.0.4.2']);
  assert.equal(Reflect.get(all['service'] as object, 'kind'), 'SERVICE_KIND_PERSISTENT');
  assert.equal(typeof all['checksum'], 'string');
  const onlyB = await call('ListInstances', { service: 'list', clusters: ['b'] });
  assert.deepEqual((onlyB['instances'] as object[]).map((item) => Reflect.get(item, 'ip')), ['10.0.4.2']);
  const unknown = await call('ListInstances', { service: 'unknown-service' });
  assert.deepEqual([unknown['service'], unknown['instances'], unknown['revision']], [undefined, undefined, 0]);
  await failure('ListInstances', { service: 'list', clusters: ['bad cluster'] }, grpc.status.INVALID_ARGUMENT, 'CAIRN_INVALID_ARGUMENT');
});

test('reads are LINEARIZABLE by default (a ReadIndex barrier) and LOCAL only when asked; unknown values are refused', async () => {
  const before = proposer.barrierOptions.length;
  await call('ListInstances', { service: 'list' });
  assert.equal(proposer.barrierOptions.length, before + 1, 'the default read passed a barrier');
  await call('ListInstances', { service: 'list', consistency: 'LINEARIZABLE' });
  await call('GetService', { service: 'list' });
  await call('ListServices', {});
  assert.equal(proposer.barrierOptions.length, before + 4);
  await call('ListInstances', { service: 'list', consistency: 'LOCAL' });
  await call('GetService', { service: 'list', consistency: 'LOCAL' });
  assert.equal(proposer.barrierOptions.length, before + 4, 'LOCAL reads pass no barrier');
  assert.match((await failure('ListInstances', { service: 'list', consistency: 7 }, grpc.status.INVALID_ARGUMENT, 'CAIRN_INVALID_ARGUMENT')).message, /'consistency' must be one of LINEARIZABLE, LOCAL/);
});

test('DeregisterInstance removes an instance and succeeds with removed=false when it is absent', async () => {
  await call('RegisterInstance', { service: 'dereg', instance: instance('10.0.5.1', 80) });
  const removed = await call('DeregisterInstance', { service: 'dereg', ip: '10.0.5.1', port: 80 });
  assert.equal(removed['removed'], true);
  const again = await call('DeregisterInstance', { service: 'dereg', ip: '10.0.5.1', port: 80 });
  assert.equal(again['removed'], false);
  await failure('DeregisterInstance', { service: 'dereg', port: 80 }, grpc.status.INVALID_ARGUMENT, 'CAIRN_INVALID_ARGUMENT');
});

test('CreateService, UpdateService, GetService, DeleteService: the service lifecycle and its errors', async () => {
  const created = await call('CreateService', {
    service: 'svc-life', protectThreshold: 0.5, metadata: { owner: 'team' },
    selector: { type: 'SELECTOR_TYPE_LABEL', expression: 'CONSUMER.label.zone = PROVIDER.label.zone' }, kind: 'SERVICE_KIND_PERSISTENT',
  });
  assert.deepEqual(created['service'], {
    namespace: 'public', group: 'DEFAULT_GROUP', service: 'svc-life', protectThreshold: 0.5, metadata: { owner: 'team' },
    selector: { type: 'SELECTOR_TYPE_LABEL', expression: 'CONSUMER.label.zone = PROVIDER.label.zone' }, kind: 'SERVICE_KIND_PERSISTENT',
    revision: Reflect.get(created['service'] as object, 'revision'),
  });
  await failure('CreateService', { service: 'svc-life' }, grpc.status.ALREADY_EXISTS, 'CAIRN_SERVICE_ALREADY_EXISTS');
  await failure('CreateService', { service: 'svc-bad', protectThreshold: 1.5 }, grpc.status.INVALID_ARGUMENT, 'CAIRN_INVALID_ARGUMENT');
  await failure('CreateService', { service: 'svc-bad', selector: { expression: 'x' } }, grpc.status.INVALID_ARGUMENT, 'CAIRN_INVALID_ARGUMENT');

  const updated = await call('UpdateService', { service: 'svc-life', protectThreshold: 0.25 });
  assert.equal(Reflect.get(updated['service'] as object, 'protectThreshold'), 0.25);
  assert.deepEqual(Reflect.get(updated['service'] as object, 'metadata'), { owner: 'team' }, 'absent fields are unchanged');
  await failure('UpdateService', { service: 'svc-missing', protectThreshold: 0.1 }, grpc.status.NOT_FOUND, 'CAIRN_SERVICE_NOT_FOUND');

  await call('RegisterInstance', { service: 'svc-life', instance: instance('10.0.6.1', 80, { cluster: 'west' }) });
  const detail = await call('GetService', { service: 'svc-life' });
  assert.deepEqual((detail['clusters'] as object[]).map((cluster) => Reflect.get(cluster, 'name')), ['west']);
  assert.deepEqual(Reflect.get((detail['clusters'] as object[])[0] ?? {}, 'healthChecker'), { tcp: {}, checker: 'tcp', intervalMs: 0 });
  await failure('GetService', { service: 'svc-missing' }, grpc.status.NOT_FOUND, 'CAIRN_SERVICE_NOT_FOUND');

  await failure('DeleteService', { service: 'svc-life' }, grpc.status.FAILED_PRECONDITION, 'CAIRN_SERVICE_HAS_INSTANCES');
  await call('DeregisterInstance', { service: 'svc-life', cluster: 'west', ip: '10.0.6.1', port: 80 });
  const deleted = await call('DeleteService', { service: 'svc-life' });
  assert.ok(typeof deleted['revision'] === 'number' && deleted['revision'] > 0);
  await failure('DeleteService', { service: 'svc-life' }, grpc.status.NOT_FOUND, 'CAIRN_SERVICE_NOT_FOUND');
});

test('ListServices pages a namespace, of one group or of every group', async () => {
  for (const name of ['p3', 'p1', 'p2']) await call('CreateService', { namespace: 'paging', service: name });
  await call('CreateService', { namespace: 'paging', group: 'other', service: 'p0' });
  const first = await call('ListServices', { namespace: 'paging', pageSize: 2 });
  assert.equal(first['count'], 3);
  assert.deepEqual((first['services'] as object[]).map((service) => Reflect.get(service, 'service')), ['p1', 'p2']);
  const second = await call('ListServices', { namespace: 'paging', pageNo: 2, pageSize: 2 });
  assert.deepEqual((second['services'] as object[]).map((service) => Reflect.get(service, 'service')), ['p3']);
  const every = await call('ListServices', { namespace: 'paging', group: '*' });
  assert.equal(every['count'], 4);
  assert.deepEqual((every['services'] as object[]).map((service) => Reflect.get(service, 'group')), ['DEFAULT_GROUP', 'DEFAULT_GROUP', 'DEFAULT_GROUP', 'other']);
  await failure('ListServices', { namespace: 'bad namespace' }, grpc.status.INVALID_ARGUMENT, 'CAIRN_INVALID_ARGUMENT');
});

test('SetClusterHealthChecker configures a cluster; a MySQL password is accepted but never returned', async () => {
  await call('CreateService', { service: 'checked' });
  const http = await call('SetClusterHealthChecker', {
    service: 'checked', cluster: 'web', healthChecker: { http: { path: '/health', headers: { Host: 'svc' }, expectedStatus: 204 } },
    useInstancePort: false, checkPort: 8081, metadata: { dc: 'x' },
  });
  assert.deepEqual(http['cluster'], {
    name: 'web', healthChecker: { http: { path: '/health', headers: { Host: 'svc' }, expectedStatus: 204 }, checker: 'http', intervalMs: 0 },
    checkPort: 8081, useInstancePort: false, metadata: { dc: 'x' },
  });
  const mysql = await call('SetClusterHealthChecker', { service: 'checked', cluster: 'db', healthChecker: { mysql: { user: 'probe', password: 's3cret-pw' } } });
  const checker = Reflect.get(Reflect.get(mysql['cluster'] as object, 'healthChecker') as object, 'mysql') as Record<string, unknown>;
  assert.deepEqual(checker, { user: 'probe', sql: "show global variables where variable_name='read_only'", passwordSet: true });
  const fixed = await call('SetClusterHealthChecker', { service: 'checked', cluster: 'fixed', healthChecker: { tcp: {}, intervalMs: 5000 } });
  assert.equal(Reflect.get(Reflect.get(fixed['cluster'] as object, 'healthChecker') as object, 'intervalMs'), 5000);
  await failure('SetClusterHealthChecker', { service: 'checked', cluster: 'fast', healthChecker: { tcp: {}, intervalMs: 100 } }, grpc.status.INVALID_ARGUMENT, 'CAIRN_INVALID_ARGUMENT');
  const detail = await call('GetService', { service: 'checked' });
  assert.doesNotMatch(JSON.stringify(detail), /s3cret-pw/);
  assert.match(JSON.stringify(detail), /"passwordSet":true/);

  await failure('SetClusterHealthChecker', { service: 'checked', cluster: 'db' }, grpc.status.INVALID_ARGUMENT, 'CAIRN_INVALID_ARGUMENT');
  await failure('SetClusterHealthChecker', { service: 'checked', healthChecker: {} }, grpc.status.INVALID_ARGUMENT, 'CAIRN_INVALID_ARGUMENT');
  await failure('SetClusterHealthChecker', { service: 'checked', healthChecker: { mysql: { password: 'p' } } }, grpc.status.INVALID_ARGUMENT, 'CAIRN_INVALID_ARGUMENT');
  await failure('SetClusterHealthChecker', { service: 'checked', healthChecker: { tcp: {} }, useInstancePort: false, checkPort: 0 }, grpc.status.INVALID_ARGUMENT, 'CAIRN_INVALID_ARGUMENT');
  await failure('SetClusterHealthChecker', { service: 'unchecked', healthChecker: { tcp: {} } }, grpc.status.NOT_FOUND, 'CAIRN_SERVICE_NOT_FOUND');
});

test('health set by a client applies only while the cluster checker is NONE', async () => {
  await call('RegisterInstance', { service: 'manual', instance: instance('10.0.7.1', 80) });
  const probed = await call('UpdateInstance', { service: 'manual', ip: '10.0.7.1', port: 80, healthy: false });
  assert.equal(Reflect.get(probed['instance'] as object, 'healthy'), true, 'the TCP checker decides, not the client');
  await call('SetClusterHealthChecker', { service: 'manual', healthChecker: { none: {} } });
  const manual = await call('UpdateInstance', { service: 'manual', ip: '10.0.7.1', port: 80, healthy: false });
  assert.equal(Reflect.get(manual['instance'] as object, 'healthy'), false);
  const healthyOnly = await call('ListInstances', { service: 'manual', healthyOnly: true });
  assert.equal(healthyOnly['instances'], undefined, 'healthy_only leaves the unhealthy instance out');
  const all = await call('ListInstances', { service: 'manual' });
  assert.deepEqual((all['instances'] as object[]).map((item) => Reflect.get(item, 'healthy')), [false]);
});

test('consensus errors carry their status, retryability and the leader hint', async () => {
  authorizeHook = () => {
    throw cairnErrorFromRaft('not-leader', '127.0.1.9:8848');
  };
  const notLeader = await failure('ListServices', {}, grpc.status.UNAVAILABLE, 'CAIRN_NOT_LEADER');
  assert.equal(notLeader.retryable, true);
  assert.equal(notLeader.leader, '127.0.1.9:8848');
  authorizeHook = () => {
    throw new CairnError('CAIRN_FORBIDDEN', 'no access to public');
  };
  const forbidden = await failure('ListServices', {}, grpc.status.PERMISSION_DENIED, 'CAIRN_FORBIDDEN');
  assert.equal(forbidden.retryable, false);
  assert.equal(forbidden.leader, undefined);
});

test('an unexpected exception is INTERNAL, logged, and its text never reaches the client', async () => {
  authorizeHook = () => {
    throw new Error('secret detail of a bug');
  };
  const internal = await failure('GetService', { service: 'x' }, grpc.status.INTERNAL, 'CAIRN_INTERNAL');
  assert.equal(internal.message, 'CAIRN_INTERNAL: internal error');
  assert.doesNotMatch(JSON.stringify(internal.metadata.getMap()), /secret detail/);
  const entry = logged.at(-1);
  assert.equal(entry?.['method'], 'cairn.naming.v1.Naming/GetService');
  assert.match(String(entry?.['err']), /secret detail of a bug/);
});

test('a request that is not a valid message is INVALID_ARGUMENT, not INTERNAL', async () => {
  const definition = methodDefinitionOf(Naming, 'GetService');
  const raw = new grpc.Client(address, grpc.credentials.createInsecure());
  const error = await new Promise<grpc.ServiceError | null>((resolve) => {
    // Field 1 (namespace) as a length-delimited string of 10 bytes with only 1 present: truncated.
    raw.makeUnaryRequest(definition.path, (bytes: Buffer) => bytes, definition.responseDeserialize, Buffer.from([0x0a, 0x0a, 0x61]), (err) => resolve(err));
  });
  raw.close();
  assert.equal(error?.code, grpc.status.INVALID_ARGUMENT);
  assert.equal(error?.metadata.get('cairn-error-code')[0], 'CAIRN_INVALID_ARGUMENT');
});

test('a request larger than requestBodyBytesMax is refused by the transport with RESOURCE_EXHAUSTED', async () => {
  try {
    await call('RegisterInstance', { service: 'big', instance: instance('10.0.8.1', 80, { metadata: { k: 'v'.repeat(limits.requestBodyBytesMax + 1) } }) });
    assert.fail('an oversize request must be refused');
  } catch (error) {
    assert.ok(error instanceof GrpcCallError);
    assert.equal(error.code, grpc.status.RESOURCE_EXHAUSTED);
  }
  await call('ListServices', {}); // the server still serves
});

test('the client deadline becomes the registry timeout, capped at requestTimeoutMs; a held read ends DEADLINE_EXCEEDED', async () => {
  proposer.held = [];
  const short = new ClientApiClient(address, 300);
  const started = Date.now();
  try {
    await short.call(Naming, 'ListInstances', { service: 'list' });
    assert.fail('a held barrier cannot answer within the deadline');
  } catch (error) {
    assert.ok(error instanceof GrpcCallError);
    assert.equal(error.code, grpc.status.DEADLINE_EXCEEDED);
  } finally {
    short.close();
  }
  assert.ok(Date.now() - started < 2000, 'the deadline ended the call');
  const timeoutMs = proposer.barrierOptions.at(-1)?.timeoutMs ?? -1;
  assert.ok(timeoutMs > 0 && timeoutMs <= 300, `the barrier waited at most the remaining deadline (got ${timeoutMs})`);
  proposer.release();

  const long = new ClientApiClient(address, 60_000);
  await long.call(Naming, 'ListInstances', { service: 'list' });
  long.close();
  assert.equal(proposer.barrierOptions.at(-1)?.timeoutMs, limits.requestTimeoutMs, 'a long deadline is capped by the member bound');
});

function streamError(call: grpc.ClientReadableStream<unknown> | grpc.ClientDuplexStream<unknown, unknown>): Promise<grpc.ServiceError> {
  return new Promise((resolve, reject) => {
    call.on('data', () => reject(new Error('no message expected')));
    call.on('error', (error: grpc.ServiceError) => resolve(error));
  });
}

test('Subscribe without a subscription hub, and Session without an AP registry, answer UNIMPLEMENTED with CAIRN_NOT_IMPLEMENTED', async () => {
  const raw = new grpc.Client(address, grpc.credentials.createInsecure());
  const subscribe = methodDefinitionOf(Naming, 'Subscribe');
  const subscribeError = await streamError(raw.makeServerStreamRequest(subscribe.path, subscribe.requestSerialize, subscribe.responseDeserialize, { service: 's' }));
  assert.equal(subscribeError.code, grpc.status.UNIMPLEMENTED);
  assert.match(subscribeError.details, /^CAIRN_NOT_IMPLEMENTED: .*without a subscription hub/);
  assert.equal(subscribeError.metadata.get('cairn-error-code')[0], 'CAIRN_NOT_IMPLEMENTED');
  const session = methodDefinitionOf(Naming, 'Session');
  const duplex = raw.makeBidiStreamRequest(session.path, session.requestSerialize, session.responseDeserialize);
  const sessionError = await streamError(duplex);
  assert.equal(sessionError.code, grpc.status.UNIMPLEMENTED);
  assert.match(sessionError.details, /^CAIRN_NOT_IMPLEMENTED: .*sessions keep ephemeral instances/);
  raw.close();
});

test('the health service reports SERVING exactly while ready() is true, and NOT_FOUND for unknown services', async () => {
  assert.deepEqual(await client.call(Health, 'Check', {}), { status: 'SERVING' });
  assert.deepEqual(await client.call(Health, 'Check', { service: Naming }), { status: 'SERVING' });
  ready = false;
  assert.deepEqual(await client.call(Health, 'Check', { service: Naming }), { status: 'NOT_SERVING' });
  await assert.rejects(client.call(Health, 'Check', { service: 'no.such.Service' }), (error: unknown) => error instanceof GrpcCallError && error.code === grpc.status.NOT_FOUND);
});

test('health Watch sends the current status at once and every change after it', async () => {
  const raw = new grpc.Client(address, grpc.credentials.createInsecure());
  const watch = methodDefinitionOf(Health, 'Watch');
  const stream = raw.makeServerStreamRequest(watch.path, watch.requestSerialize, watch.responseDeserialize, { service: '' });
  stream.on('error', () => undefined); // the cancellation below ends it with CANCELLED
  const statuses: unknown[] = [];
  const changed = new Promise<void>((resolve) => {
    stream.on('data', (message: { status: string }) => {
      statuses.push(message.status);
      if (statuses.length === 1) ready = false;
      if (statuses.length === 2) resolve();
    });
  });
  const deadline = setTimeout(() => stream.cancel(), healthWatchIntervalMs * 5);
  await changed;
  clearTimeout(deadline);
  assert.deepEqual(statuses, ['SERVING', 'NOT_SERVING']);
  stream.cancel();
  const unknown = raw.makeServerStreamRequest(watch.path, watch.requestSerialize, watch.responseDeserialize, { service: 'no.such.Service' });
  unknown.on('error', () => undefined);
  const first = await new Promise<unknown>((resolve) => unknown.once('data', (message: { status: string }) => resolve(message.status)));
  assert.equal(first, 'SERVICE_UNKNOWN');
  unknown.cancel();
  raw.close();
});

test('server reflection lists the Naming and Health services and serves their descriptors', async () => {
  const definition = loadSync('grpc/reflection/v1/reflection.proto', {
    includeDirs: [new URL('../../../node_modules/@grpc/reflection/build/proto', import.meta.url).pathname],
    keepCase: true, defaults: true, oneofs: true,
  });
  const method = definition['grpc.reflection.v1.ServerReflection'];
  assert.ok(method !== undefined && !('format' in method));
  const info = method['ServerReflectionInfo'];
  assert.ok(info !== undefined);
  const raw = new grpc.Client(address, grpc.credentials.createInsecure());
  const stream = raw.makeBidiStreamRequest(info.path, info.requestSerialize, info.responseDeserialize);
  const answers: Array<Record<string, unknown>> = [];
  const done = new Promise<void>((resolve, reject) => {
    stream.on('data', (answer: Record<string, unknown>) => {
      answers.push(answer);
      if (answers.length === 2) stream.end();
    });
    stream.on('end', resolve);
    stream.on('error', reject);
  });
  stream.write({ list_services: '*' });
  stream.write({ file_containing_symbol: 'cairn.naming.v1.Naming' });
  await done;
  raw.close();
  const listed = Reflect.get(answers[0]?.['list_services_response'] as object, 'service') as Array<{ name: string }>;
  const names = listed.map((service) => service.name);
  assert.ok(names.includes('cairn.naming.v1.Naming'), names.join(','));
  assert.ok(names.includes('grpc.health.v1.Health'), names.join(','));
  const files = Reflect.get(answers[1]?.['file_descriptor_response'] as object, 'file_descriptor_proto') as Buffer[];
  assert.ok(files.length >= 1 && files.some((file) => file.includes('RegisterInstance')));
});
