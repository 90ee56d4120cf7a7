// Goal: the NamingService façade, the one entry point of the HTTP and gRPC adapters, applies Nacos's defaults,
// validates before anything reaches the log, routes writes to the registry of the instance's kind (persistent:
// Raft; ephemeral: the AP seam, unimplemented for now with a clear error), merges both registries on reads, honours
// read consistency, deduplicates writes by request id, and calls the authorization hook on every method.
// Method: a NamingService over the real RegistryStateMachine and a DirectProposer (test/support: a one-member log
// that commits at once; Raft is tested elsewhere). Scripted scenarios per method check results and errors; a
// recording authorizer checks the (identity, namespace, resource, action) of every call; a fake EphemeralRegistry
// stands in for the AP issue to check routing, merging and the one-kind-per-service rule.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CairnError, type CairnErrorCode } from '../../src/errors.ts';
import { CpRegistry } from '../../src/cp/cp-registry.ts';
import { RegistryStateMachine } from '../../src/cp/registry-state-machine.ts';
import { instanceId, type Instance, type ServiceKey } from '../../src/naming/model.ts';
import {
  NamingService,
  type AuthorizationAction,
  type DeregisterResult,
  type BeatResult,
  type EphemeralRegistry,
  type EphemeralSession,
  type EphemeralWrite,
  type Identity,
  type InstanceWriteResult,
  type RequestContext,
} from '../../src/naming/naming-service.ts';
import { DirectProposer, createDirectNaming } from '../support/direct-proposer.ts';

const anonymous: RequestContext = { identity: null };
const orders: ServiceKey = { namespace: 'public', group: 'DEFAULT_GROUP', service: 'orders' };

async function rejectsWith(promise: Promise<unknown>, code: CairnErrorCode, fragment?: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof CairnError, String(error));
    assert.equal(error.code, code, error.message);
    if (fragment !== undefined) assert.match(error.message, fragment);
    return true;
  });
}

interface Setup {
  readonly naming: NamingService;
  readonly proposer: DirectProposer;
  readonly machine: RegistryStateMachine;
  readonly calls: string[];
}

/** setup wires a NamingService with a recording authorizer and, optionally, an ephemeral registry. */
function setup(ephemeral?: EphemeralRegistry, refuse = false): Setup {
  const machine = new RegistryStateMachine();
  const proposer = new DirectProposer(machine);
  const calls: string[] = [];
  const authorize = (identity: Identity | null, namespace: string, resource: string, action: AuthorizationAction): void => {
    calls.push(`${identity?.principal ?? '-'} ${namespace} ${resource} ${action}`);
    if (refuse) throw new CairnError('CAIRN_FORBIDDEN', `${action} ${resource}`);
  };
  const cp = new CpRegistry(proposer, machine);
  const naming = new NamingService(ephemeral === undefined ? { cp, authorize } : { cp, authorize, ephemeral });
  return { naming, proposer, machine, calls };
}

const persistent = { ...orders, ip: '10.0.0.1', port: 3306, ephemeral: false };

test('createDirectNaming gives a working NamingService over a fresh state machine', async () => {
  const { naming, stateMachine } = createDirectNaming();
  await naming.registerInstance(anonymous, persistent);
  assert.equal(stateMachine.counts().instances, 1);
});

test('registerInstance: Nacos defaults, auto-created service, instance id; ephemeral by default is not implemented yet', async () => {
  const { naming } = setup();
  const { instance, revision } = await naming.registerInstance(anonymous, persistent);
  assert.deepEqual(instance, {
    ip: '10.0.0.1', port: 3306, cluster: 'DEFAULT', weight: 1, enabled: true, healthy: true, ephemeral: false, metadata: {},
    instanceId: instanceId('10.0.0.1', 3306, 'DEFAULT', 'DEFAULT_GROUP', 'orders'), version: 1,
  });
  assert.equal(revision, 1);
  assert.equal((await naming.getService(anonymous, orders)).service.kind, 'persistent');
  await rejectsWith(naming.registerInstance(anonymous, { ...orders, service: 'fresh', ip: '10.0.0.2', port: 80 }), 'CAIRN_NOT_IMPLEMENTED',
    /ephemeral instances arrive with the AP issue; register with ephemeral=false/);
});

test('validation happens before the log: an invalid write proposes nothing', async () => {
  const { naming, proposer } = setup();
  const invalid: Array<[Promise<unknown>, CairnErrorCode]> = [
    [naming.registerInstance(anonymous, { ...persistent, weight: 10_001 }), 'CAIRN_INVALID_ARGUMENT'],
    [naming.registerInstance(anonymous, { ...persistent, ip: '300.1.1.1' }), 'CAIRN_INVALID_ARGUMENT'],
    [naming.registerInstance(anonymous, { ...persistent, service: 'a@@b' }), 'CAIRN_INVALID_ARGUMENT'],
    [naming.registerInstance(anonymous, { ...persistent, metadata: { k: 'v'.repeat(2000) } }), 'CAIRN_METADATA_TOO_LARGE'],
    [naming.registerInstance(anonymous, { ...persistent, namespace: 'n'.repeat(65) }), 'CAIRN_NAME_TOO_LONG'],
    [naming.createService(anonymous, { ...orders, protectThreshold: 2 }), 'CAIRN_INVALID_ARGUMENT'],
    [naming.registerInstance({ identity: null, requestId: 'has space' }, persistent), 'CAIRN_INVALID_ARGUMENT'],
    [naming.registerInstance(anonymous, { ...persistent, expectedVersion: -1 }), 'CAIRN_INVALID_ARGUMENT'],
    [naming.registerInstance(anonymous, { ...persistent, expectedVersion: 1.5 }), 'CAIRN_INVALID_ARGUMENT'],
    [naming.patchInstance(anonymous, { ...orders, ip: '10.0.0.1', port: 3306, ephemeral: false, weight: 2, expectedVersion: 2 ** 53 }), 'CAIRN_INVALID_ARGUMENT'],
    [naming.deregisterInstance(anonymous, { ...orders, ip: '10.0.0.1', port: 3306, ephemeral: true, expectedVersion: 1 }), 'CAIRN_INVALID_ARGUMENT'],
    [naming.putCluster(anonymous, { ...orders, cluster: 'DEFAULT', healthChecker: { type: 'HTTP', path: 'x', headers: {}, expectedResponseCode: 200 } }), 'CAIRN_INVALID_ARGUMENT'],
  ];
  for (const [promise, code] of invalid) await rejectsWith(promise, code);
  assert.equal(proposer.log.length, 0);
});

test('instance lifecycle: update, patch, get, deregister (absent is ok), list with protect threshold', async () => {
  const { naming } = setup();
  await naming.createService(anonymous, { ...orders, protectThreshold: 0.6 });
  await naming.registerInstance(anonymous, persistent);
  await naming.registerInstance(anonymous, { ...persistent, ip: '10.0.0.2', healthy: false });
  await rejectsWith(naming.updateInstance(anonymous, { ...persistent, ip: '10.0.0.3' }), 'CAIRN_INSTANCE_NOT_FOUND');
  const updated = await naming.updateInstance(anonymous, { ...persistent, weight: 4, metadata: { role: 'primary' } });
  assert.deepEqual([updated.instance.weight, updated.instance.metadata], [4, { role: 'primary' }]);
  const patched = await naming.patchInstance(anonymous, { ...orders, ip: '10.0.0.1', port: 3306, enabled: false });
  assert.deepEqual([patched.instance.weight, patched.instance.enabled], [4, false]);
  assert.equal((await naming.getInstance(anonymous, { ...orders, ip: '10.0.0.1', port: 3306 })).enabled, false);
  // 10.0.0.1 is disabled, so the share is 0 of 1 healthy enabled instance: below 0.6, protection fires.
  const list = await naming.listInstances(anonymous, orders);
  assert.deepEqual([list.reachProtectionThreshold, list.hosts.map((h) => [h.ip, h.healthy])], [true, [['10.0.0.2', true]]]);
  assert.equal(list.service?.revision, list.revision);
  assert.match(list.checksum, /^[0-9a-f]{32}$/);
  assert.deepEqual(await naming.deregisterInstance(anonymous, { ...orders, ip: '10.9.9.9', port: 1 }), { removed: false, revision: list.revision });
  const removed = await naming.deregisterInstance(anonymous, { ...orders, ip: '10.0.0.2', port: 3306 });
  // The no-op deregistration above took one log index without changing the service; this one takes the next.
  assert.deepEqual(removed, { removed: true, revision: list.revision + 2 });
  await rejectsWith(naming.getInstance(anonymous, { ...orders, ip: '10.0.0.2', port: 3306 }), 'CAIRN_INSTANCE_NOT_FOUND', /no matched ip found/);
  await rejectsWith(naming.getInstance(anonymous, { ...orders, service: 'nope', ip: '10.0.0.2', port: 3306 }), 'CAIRN_SERVICE_NOT_FOUND', /no service/);
});

test('listInstances: unknown service is an empty list; clusters filter and healthyOnly', async () => {
  const { naming } = setup();
  const empty = await naming.listInstances(anonymous, { ...orders, service: 'ghost' });
  assert.deepEqual([empty.service, empty.hosts, empty.revision, empty.reachProtectionThreshold], [null, [], 0, false]);
  await naming.registerInstance(anonymous, { ...persistent, cluster: 'A' });
  await naming.registerInstance(anonymous, { ...persistent, cluster: 'B', healthy: false });
  const onlyA = await naming.listInstances(anonymous, { ...orders, clusters: ['A'] });
  assert.deepEqual([onlyA.clusters, onlyA.hosts.map((h) => h.cluster)], [['A'], ['A']]);
  const healthy = await naming.listInstances(anonymous, { ...orders, healthyOnly: true });
  assert.deepEqual(healthy.hosts.map((h) => h.cluster), ['A']);
  // Threshold 0 with the only B instance down: Cairn reports it unhealthy.
  const onlyB = await naming.listInstances(anonymous, { ...orders, clusters: ['B'] });
  assert.deepEqual([onlyB.reachProtectionThreshold, onlyB.hosts.map((h) => h.healthy)], [false, [false]]);
  await rejectsWith(naming.listInstances(anonymous, { ...orders, clusters: ['bad name'] }), 'CAIRN_INVALID_ARGUMENT');
});

test('consistency: linearizable reads pass the barrier, local ones do not; anything else is refused', async () => {
  const { naming, proposer } = setup();
  await naming.registerInstance(anonymous, persistent);
  await naming.listInstances(anonymous, orders);
  await naming.getService(anonymous, orders, { consistency: 'local' });
  assert.equal(proposer.barriers, 0);
  await naming.listInstances(anonymous, { ...orders, consistency: 'linearizable' });
  await naming.getInstance(anonymous, { ...orders, ip: '10.0.0.1', port: 3306 }, { consistency: 'linearizable' });
  await naming.listServices(anonymous, { namespace: 'public', group: '*', pageNo: 1, pageSize: 10, consistency: 'linearizable' });
  assert.equal(proposer.barriers, 3);
  await rejectsWith(naming.getService(anonymous, orders, { consistency: 'eventual' as 'local' }), 'CAIRN_INVALID_ARGUMENT', /consistency/);
});

test('setInstanceHealth: refused under an active checker (Nacos message), allowed after PUT cluster with NONE', async () => {
  const { naming } = setup();
  await naming.registerInstance(anonymous, persistent);
  const input = { ...orders, ip: '10.0.0.1', port: 3306, healthy: false };
  await rejectsWith(naming.setInstanceHealth(anonymous, input), 'CAIRN_HEALTH_CHECK_ACTIVE', /health check is still working/);
  const { cluster } = await naming.putCluster(anonymous, { ...orders, cluster: 'DEFAULT', healthChecker: { type: 'NONE' } });
  assert.deepEqual(cluster, { name: 'DEFAULT', healthChecker: { type: 'NONE' }, checkPort: 80, useInstancePort4Check: true, metadata: {} });
  assert.equal((await naming.setInstanceHealth(anonymous, input)).instance.healthy, false);
});

test('services: create, update, get (clusters, secrets redacted), list by group and *, delete', async () => {
  const { naming } = setup();
  const created = await naming.createService(anonymous, { ...orders, metadata: { team: 'pay' } });
  assert.deepEqual([created.kind, created.protectThreshold, created.metadata], [null, 0, { team: 'pay' }]);
  await rejectsWith(naming.createService(anonymous, orders), 'CAIRN_SERVICE_ALREADY_EXISTS');
  const updated = await naming.updateService(anonymous, { ...orders, protectThreshold: 0.3 });
  assert.deepEqual([updated.protectThreshold, updated.metadata], [0.3, { team: 'pay' }]);
  await naming.putCluster(anonymous, { ...orders, cluster: 'db', healthChecker: { type: 'MYSQL', user: 'probe', password: 'hunter2', sql: 'select 1' } });
  await naming.registerInstance(anonymous, { ...persistent, cluster: 'app' });
  const detail = await naming.getService(anonymous, orders);
  assert.deepEqual(detail.clusters.map((c) => [c.name, c.healthChecker.type]), [['app', 'TCP'], ['db', 'MYSQL']]);
  assert.ok(!JSON.stringify(detail).includes('hunter2'));
  await naming.createService(anonymous, { ...orders, group: 'A', service: 'zeta' });
  await naming.createService(anonymous, { ...orders, group: 'A', service: 'alpha', ephemeral: false });
  const all = await naming.listServices(anonymous, { namespace: 'public', group: '*', pageNo: 1, pageSize: 2 });
  assert.deepEqual([all.count, all.services.map((s) => `${s.group}@@${s.name}`)], [3, ['A@@alpha', 'A@@zeta']]);
  const defaults = await naming.listServices(anonymous, { namespace: 'public', group: 'DEFAULT_GROUP', pageNo: 1, pageSize: 10 });
  assert.deepEqual(defaults.services.map((s) => s.name), ['orders']);
  await rejectsWith(naming.deleteService(anonymous, orders), 'CAIRN_SERVICE_HAS_INSTANCES');
  await naming.deregisterInstance(anonymous, { ...persistent, cluster: 'app' });
  const { revision } = await naming.deleteService(anonymous, orders);
  assert.ok(revision > updated.revision);
  await rejectsWith(naming.getService(anonymous, orders), 'CAIRN_SERVICE_NOT_FOUND');
  await rejectsWith(naming.deleteService(anonymous, orders), 'CAIRN_SERVICE_NOT_FOUND');
});

test('catalog: counts per service, filters and pages', async () => {
  const { naming } = setup();
  await naming.registerInstance(anonymous, persistent);
  await naming.registerInstance(anonymous, { ...persistent, ip: '10.0.0.2', cluster: 'B', healthy: false });
  await naming.createService(anonymous, { ...orders, service: 'empty' });
  const page = await naming.catalog(anonymous, { namespace: 'public', pageNo: 1, pageSize: 10 });
  assert.deepEqual(page.services.map((e) => [e.name, e.clusterCount, e.instanceCount, e.healthyInstanceCount, e.kind]), [['empty', 0, 0, 0, null], ['orders', 2, 2, 1, 'persistent']]);
  assert.equal((await naming.catalog(anonymous, { namespace: 'public', pageNo: 1, pageSize: 10, withInstancesOnly: true })).count, 1);
  assert.equal((await naming.catalog(anonymous, { namespace: 'public', pageNo: 1, pageSize: 10, serviceNameContains: 'mpt' })).count, 1);
  assert.equal((await naming.catalog(anonymous, { namespace: 'public', pageNo: 2, pageSize: 1 })).services[0]?.name, 'orders');
});

test('request ids: a retried write with the same id returns the first result and is applied once', async () => {
  const { naming, machine } = setup();
  const context: RequestContext = { identity: null, requestId: 'client-42' };
  const first = await naming.createService(context, orders);
  assert.deepEqual(await naming.createService(context, orders), first);
  await rejectsWith(naming.createService(context, { ...orders, service: 'other' }), 'CAIRN_REQUEST_ID_REUSED');
  assert.equal(machine.counts().services, 1);
});

test('authorization: every method calls the hook with (identity, namespace, resource, action); a refusal writes nothing', async () => {
  const { naming, calls } = setup();
  const alice: RequestContext = { identity: { principal: 'alice' } };
  const address = { ...orders, ip: '10.0.0.1', port: 3306 };
  await naming.createService(alice, orders);
  await naming.updateService(alice, { ...orders, protectThreshold: 0.1 });
  await naming.putCluster(alice, { ...orders, cluster: 'DEFAULT', healthChecker: { type: 'NONE' } });
  await naming.registerInstance(alice, persistent);
  await naming.updateInstance(alice, persistent);
  await naming.patchInstance(alice, { ...address, weight: 2 });
  await naming.setInstanceHealth(alice, { ...address, healthy: true });
  await naming.getInstance(alice, address);
  await naming.listInstances(alice, orders);
  await naming.getService(alice, orders);
  await naming.listServices(alice, { namespace: 'public', group: 'DEFAULT_GROUP', pageNo: 1, pageSize: 1 });
  await naming.listServices(alice, { namespace: 'public', group: '*', pageNo: 1, pageSize: 1 });
  await naming.catalog(alice, { namespace: 'public', pageNo: 1, pageSize: 1 });
  await naming.deregisterInstance(alice, address);
  await naming.deleteService(alice, orders);
  const service = 'alice public DEFAULT_GROUP@@orders';
  assert.deepEqual(calls, [
    `${service} write`, `${service} write`, `${service} write`, `${service} write`, `${service} write`, `${service} write`, `${service} write`,
    `${service} read`, `${service} read`, `${service} read`,
    'alice public DEFAULT_GROUP@@* read', 'alice public * read', 'alice public * read',
    `${service} write`, `${service} write`,
  ]);
  const refused = setup(undefined, true);
  await rejectsWith(refused.naming.registerInstance(alice, persistent), 'CAIRN_FORBIDDEN');
  await rejectsWith(refused.naming.listInstances(alice, orders), 'CAIRN_FORBIDDEN');
  assert.equal(refused.proposer.log.length, 0);
});

/** FakeEphemeral stands in for the AP registry: it holds instances in memory and records the writes it gets. */
class FakeEphemeral implements EphemeralRegistry {
  readonly instances = new Map<string, { key: ServiceKey; instance: Instance }>();
  readonly writes: EphemeralWrite[] = [];

  async write(operation: EphemeralWrite): Promise<InstanceWriteResult | DeregisterResult> {
    this.writes.push(operation);
    if (operation.type === 'deregister') {
      const id = `${operation.key.service}/${operation.key.ip}:${operation.key.port}`;
      return { removed: this.instances.delete(id), revision: 0 };
    }
    if (operation.type === 'patch') throw new CairnError('CAIRN_NOT_IMPLEMENTED', 'fake');
    const { namespace, group, service, cluster, ip, port, weight, enabled, healthy, metadata } = operation.instance;
    const instance: Instance = { ip, port, cluster, weight, enabled, healthy, ephemeral: true, metadata, instanceId: instanceId(ip, port, cluster, group, service) };
    this.instances.set(`${service}/${ip}:${port}`, { key: { namespace, group, service }, instance });
    return { instance, revision: 0 };
  }

  async beat(): Promise<BeatResult> {
    throw new CairnError('CAIRN_NOT_IMPLEMENTED', 'fake');
  }

  openSession(): EphemeralSession {
    throw new CairnError('CAIRN_NOT_IMPLEMENTED', 'fake');
  }

  onChange(): () => void {
    return () => undefined;
  }

  instancesOf(service: ServiceKey): readonly Instance[] {
    return [...this.instances.values()].filter((entry) => entry.key.service === service.service && entry.key.namespace === service.namespace && entry.key.group === service.group).map((entry) => entry.instance);
  }

  serviceKeys(namespace: string): readonly ServiceKey[] {
    const keys = new Map<string, ServiceKey>();
    for (const entry of this.instances.values()) if (entry.key.namespace === namespace) keys.set(entry.key.service, entry.key);
    return [...keys.values()];
  }
}

test('ephemeral seam: routing by kind, one kind per service, merged reads', async () => {
  const ephemeral = new FakeEphemeral();
  const { naming, proposer } = setup(ephemeral);
  const cache = { ...orders, service: 'cache' };
  await naming.registerInstance(anonymous, { ...cache, ip: '10.1.0.1', port: 6379 });
  assert.equal(proposer.log.length, 0, 'an ephemeral registration does not touch the Raft log');
  assert.equal(ephemeral.writes.length, 1);
  await rejectsWith(naming.registerInstance(anonymous, { ...cache, ip: '10.1.0.2', port: 6379, ephemeral: false }), 'CAIRN_EPHEMERAL_MISMATCH');
  await naming.registerInstance(anonymous, persistent);
  await rejectsWith(naming.registerInstance(anonymous, { ...orders, ip: '10.0.0.9', port: 1 }), 'CAIRN_EPHEMERAL_MISMATCH');
  // Reads see the ephemeral-only service as an implicit service of kind ephemeral.
  const list = await naming.listInstances(anonymous, cache);
  assert.deepEqual([list.service?.kind, list.hosts.map((h) => [h.ip, h.ephemeral])], ['ephemeral', [['10.1.0.1', true]]]);
  assert.equal((await naming.getInstance(anonymous, { ...cache, ip: '10.1.0.1', port: 6379 })).ephemeral, true);
  assert.deepEqual((await naming.getService(anonymous, cache)).clusters.map((c) => c.name), ['DEFAULT']);
  const services = await naming.listServices(anonymous, { namespace: 'public', group: '*', pageNo: 1, pageSize: 10 });
  assert.deepEqual(services.services.map((s) => [s.name, s.kind]), [['cache', 'ephemeral'], ['orders', 'persistent']]);
  assert.deepEqual((await naming.catalog(anonymous, { namespace: 'public', pageNo: 1, pageSize: 10 })).services.map((e) => [e.name, e.instanceCount]), [['cache', 1], ['orders', 1]]);
  // A declared-ephemeral CP service with AP instances cannot be deleted while they remain.
  await naming.createService(anonymous, { ...orders, service: 'declared', ephemeral: true });
  await naming.registerInstance(anonymous, { ...orders, service: 'declared', ip: '10.2.0.1', port: 1 });
  await rejectsWith(naming.deleteService(anonymous, { ...orders, service: 'declared' }), 'CAIRN_SERVICE_HAS_INSTANCES');
  // Deregistration without `ephemeral` goes where the instance is.
  const before = proposer.log.length;
  assert.deepEqual(await naming.deregisterInstance(anonymous, { ...cache, ip: '10.1.0.1', port: 6379 }), { removed: true, revision: 0 });
  assert.equal(proposer.log.length, before);
  assert.equal((await naming.deregisterInstance(anonymous, { ...orders, ip: '10.0.0.1', port: 3306 })).removed, true);
  assert.equal(proposer.log.length, before + 1);
});

test('a service known only through its ephemeral instances takes UpdateService and cluster settings (declared in the CP registry)', async () => {
  const ephemeral = new FakeEphemeral();
  const { naming, proposer } = setup(ephemeral);
  const cache = { ...orders, service: 'cache' };
  await naming.registerInstance(anonymous, { ...cache, ip: '10.1.0.1', port: 6379 });
  assert.equal((await naming.getService(anonymous, cache)).service.revision, 0, 'implicit before');
  const updated = await naming.updateService(anonymous, { ...cache, protectThreshold: 0.5, metadata: { owner: 'ops' } });
  assert.deepEqual([updated.kind, updated.protectThreshold, updated.metadata], ['ephemeral', 0.5, { owner: 'ops' }]);
  assert.equal(proposer.log.length, 3, 'the refused update (the state machine decides), the declaration, the update');
  // The request id is the update's own, so a retry of it is still answered from the remembered result.
  const retried = await naming.updateService({ identity: null, requestId: 'r-1' }, { ...cache, protectThreshold: 0.25 });
  const again = await naming.updateService({ identity: null, requestId: 'r-1' }, { ...cache, protectThreshold: 0.25 });
  assert.deepEqual([retried.protectThreshold, again.revision], [0.25, retried.revision]);
  const cluster = await naming.putCluster(anonymous, { ...cache, cluster: 'DEFAULT', healthChecker: { type: 'NONE' }, metadata: { zone: 'a' } });
  assert.deepEqual([cluster.cluster.name, cluster.cluster.metadata], ['DEFAULT', { zone: 'a' }]);
  const detail = await naming.getService(anonymous, cache);
  assert.deepEqual([detail.service.kind, detail.service.protectThreshold, detail.clusters.map((c) => [c.name, c.metadata])],
    ['ephemeral', 0.25, [['DEFAULT', { zone: 'a' }]]]);
  // A cluster of a service no registry knows is still not found, and declares nothing.
  const before = proposer.log.length;
  await rejectsWith(naming.updateService(anonymous, { ...orders, service: 'nowhere', protectThreshold: 0.1 }), 'CAIRN_SERVICE_NOT_FOUND');
  await rejectsWith(naming.putCluster(anonymous, { ...orders, service: 'nowhere', cluster: 'DEFAULT' }), 'CAIRN_SERVICE_NOT_FOUND');
  assert.equal(proposer.log.length, before + 2, 'the two refused writes, no declaration');
  // The declared service keeps refusing persistent instances, as the implicit one did.
  await rejectsWith(naming.registerInstance(anonymous, { ...cache, ip: '10.1.0.2', port: 1, ephemeral: false }), 'CAIRN_EPHEMERAL_MISMATCH');
});

/**
 * FrozenEphemeral keeps the AP registry's contract that the list cache relies on: instancesOf returns the same
 * frozen array while the service's instances are unchanged, and a new one after every change.
 */
class FrozenEphemeral extends FakeEphemeral {
  private readonly arrays = new Map<string, readonly Instance[]>();

  override async write(operation: EphemeralWrite): Promise<InstanceWriteResult | DeregisterResult> {
    this.arrays.clear();
    return super.write(operation);
  }

  override instancesOf(service: ServiceKey): readonly Instance[] {
    const id = `${service.namespace}/${service.group}/${service.service}`;
    let array = this.arrays.get(id);
    if (array === undefined) {
      array = Object.freeze(super.instancesOf(service).map((instance) => Object.freeze({ ...instance })));
      this.arrays.set(id, array);
    }
    return array;
  }
}

test('list cache: a repeated list is memoized; every change of the service is seen (same answers as without the cache)', async () => {
  const ephemeral = new FrozenEphemeral();
  const machine = new RegistryStateMachine();
  const cp = new CpRegistry(new DirectProposer(machine), machine);
  const naming = new NamingService({ cp, ephemeral });
  const reference = new NamingService({ cp, ephemeral, listCache: { entriesMax: 0, instancesMax: 0 } });
  const cache = { ...orders, service: 'cache' };
  const queries = [orders, { ...orders, healthyOnly: true }, { ...orders, clusters: ['DEFAULT'] }, cache, { ...orders, service: 'ghost' }];
  const same = async (step: string): Promise<void> => {
    for (const query of queries) {
      const [cached, fresh] = [await naming.listInstances(anonymous, query), await reference.listInstances(anonymous, query)];
      assert.deepEqual(cached, fresh, `${step}: ${JSON.stringify(query)}`);
      assert.equal(await naming.listInstances(anonymous, query), cached, `${step}: the repeated list is the memoized answer`);
    }
  };
  await same('empty registry');
  await naming.registerInstance(anonymous, persistent);
  await same('register');
  const hitsBefore = naming.listCacheStats().hits;
  await naming.listInstances(anonymous, orders);
  assert.equal(naming.listCacheStats().hits, hitsBefore + 1);
  assert.equal(reference.listCacheStats().entries, 0, 'a cache bounded to 0 entries holds nothing');
  await naming.registerInstance(anonymous, { ...persistent, ip: '10.0.0.2' });
  await same('second register');
  await naming.registerInstance(anonymous, persistent);
  await same('identical re-register (no change)');
  await naming.putCluster(anonymous, { ...orders, cluster: 'DEFAULT', healthChecker: { type: 'NONE' } });
  await same('cluster checker NONE');
  const beforeFlip = await naming.listInstances(anonymous, { ...orders, healthyOnly: true });
  await naming.setInstanceHealth(anonymous, { ...orders, ip: '10.0.0.2', port: 3306, healthy: false });
  await same('health flip');
  assert.notDeepEqual((await naming.listInstances(anonymous, { ...orders, healthyOnly: true })).hosts, beforeFlip.hosts);
  const beforeMetadata = (await naming.listInstances(anonymous, orders)).checksum;
  await naming.patchInstance(anonymous, { ...orders, ip: '10.0.0.1', port: 3306, metadata: { zone: 'b' } });
  await same('instance metadata patch');
  const afterInstanceMetadata = (await naming.listInstances(anonymous, orders)).checksum;
  assert.notEqual(afterInstanceMetadata, beforeMetadata);
  await naming.updateService(anonymous, { ...orders, metadata: { owner: 'team-a' } });
  await same('service metadata update');
  assert.notEqual((await naming.listInstances(anonymous, orders)).checksum, afterInstanceMetadata);
  await naming.updateService(anonymous, { ...orders, protectThreshold: 0.9 });
  await same('protect threshold');
  assert.equal((await naming.listInstances(anonymous, orders)).reachProtectionThreshold, true);
  await naming.registerInstance(anonymous, { ...cache, ip: '10.1.0.1', port: 6379 });
  await same('ephemeral register');
  await naming.registerInstance(anonymous, { ...cache, ip: '10.1.0.2', port: 6379, healthy: false });
  await same('second ephemeral register');
  await naming.deregisterInstance(anonymous, { ...cache, ip: '10.1.0.1', port: 6379 });
  await same('ephemeral deregister');
  await naming.deregisterInstance(anonymous, { ...orders, ip: '10.0.0.1', port: 3306 });
  await same('persistent deregister');
});

test('list cache: bounded by entries; registries that hand out mutable arrays are never memoized', async () => {
  const machine = new RegistryStateMachine();
  const cp = new CpRegistry(new DirectProposer(machine), machine);
  const naming = new NamingService({ cp, listCache: { entriesMax: 2, instancesMax: 1000 } });
  for (const service of ['a', 'b', 'c']) {
    await naming.registerInstance(anonymous, { ...persistent, service });
    await naming.listInstances(anonymous, { ...orders, service });
  }
  assert.equal(naming.listCacheStats().entries, 2);
  const tight = new NamingService({ cp, listCache: { entriesMax: 10, instancesMax: 1 } });
  await tight.listInstances(anonymous, { ...orders, service: 'a' });
  assert.equal(tight.listCacheStats().entries, 0, 'an answer heavier than the instance bound is not kept');
  const mutable = new FakeEphemeral();
  const withFake = new NamingService({ cp: new CpRegistry(new DirectProposer(new RegistryStateMachine()), new RegistryStateMachine()), ephemeral: mutable });
  await withFake.registerInstance(anonymous, { ...orders, service: 'cache', ip: '10.1.0.1', port: 6379 });
  await withFake.listInstances(anonymous, { ...orders, service: 'cache' });
  assert.equal(withFake.listCacheStats().entries, 0);
});
