// Goal: the persistent registry's state machine applies every command with Nacos's semantics and Cairn's decisions
// (see the header of src/cp/registry-state-machine.ts), deterministically (Raft §5.3: same log, same state), with
// its keyspace always equal to its memory, request ids deduplicated, limits enforced with typed errors, and corrupt
// storage refused.
// Method: (1) a table of scripted cases: each sets up state with commands, applies one command and checks the
// result (ok + payload, or the error code) and the resulting reads; (2) determinism: two machines fed the same
// commands give byte-identical snapshots, snapshot -> restore gives identical reads and keyspace, load() from the
// keyspace equals the live state; (3) request-id dedupe and its bounded, index-ordered eviction; (4) each limit with
// small limits; (5) corrupt snapshots and keyspaces; (6) a seeded randomized run of 2000 commands over a small
// universe, applied to one machine directly and to another through a mid-run snapshot, with invariants checked at
// every step and snapshots, results and a keyspace reload compared at the end.

import { createHash } from 'node:crypto';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AssertionError } from '../../src/assert.ts';
import { CairnError, type CairnErrorCode } from '../../src/errors.ts';
import {
  decodeMessage,
  decodeResult,
  encodeCommand,
  encodeInstanceRecord,
  encodeMessage,
  messageType,
  type CommandResult,
  type InstanceValues,
  type RegistryCommand,
} from '../../src/cp/commands.ts';
import { RegistryStateMachine, ALL_GROUPS, type RegistryLimits } from '../../src/cp/registry-state-machine.ts';
import { instanceStorageKey, serviceStorageKey, requestStorageKey } from '../../src/cp/keyspace.ts';
import type { ClusterConfig, HealthChecker, Instance, ServiceKey } from '../../src/naming/model.ts';
import { addressKey, compareInstances, EMPTY_RESULT, type RegistryState } from '../../src/cp/registry-state.ts';
import { MemoryKeyspace } from '../support/direct-proposer.ts';

const orders: ServiceKey = { namespace: 'public', group: 'DEFAULT_GROUP', service: 'orders' };
const users: ServiceKey = { namespace: 'public', group: 'DEFAULT_GROUP', service: 'users' };

function values(ip: string, extra: Partial<InstanceValues> = {}): InstanceValues {
  return { cluster: 'DEFAULT', ip, port: 8080, weight: 1, enabled: true, healthy: true, metadata: {}, ...extra };
}

function cluster(name: string, healthChecker: HealthChecker = { type: 'NONE' }): ClusterConfig {
  return { name, healthChecker, checkPort: 80, useInstancePort4Check: true, metadata: {} };
}

const register = (key: ServiceKey, instance: InstanceValues): RegistryCommand => ({ type: 'registerInstance', key, instance });
const create = (key: ServiceKey, kind: 'persistent' | 'ephemeral' | null = null): RegistryCommand =>
  ({ type: 'createService', key, protectThreshold: 0, metadata: {}, selector: { type: 'none' }, kind });
const address = (ip: string, clusterName = 'DEFAULT') => ({ cluster: clusterName, ip, port: 8080 });

/** Member is one state machine with its keyspace and its log position. */
class Member {
  readonly machine: RegistryStateMachine;
  readonly keyspace = new MemoryKeyspace();
  index = 0;
  lastWrites = 0;

  constructor(limits: Partial<RegistryLimits> = {}) {
    this.machine = new RegistryStateMachine({ limits });
  }

  /** applyBytes applies raw command bytes at the next index and commits the batch (`wanted` as apply's). */
  applyBytes(bytes: Uint8Array, wanted = true): Uint8Array {
    this.index += 1;
    const batch = this.keyspace.batch();
    const result = this.machine.apply(bytes, this.index, 1, batch, wanted);
    this.keyspace.commit(batch.writes);
    this.lastWrites = batch.writes.length;
    return result;
  }

  run(command: RegistryCommand, requestId = `req-${this.index + 1}`): CommandResult {
    return decodeResult(this.applyBytes(encodeCommand({ requestId, command })));
  }

  runAll(commands: readonly RegistryCommand[]): void {
    for (const command of commands) {
      const result = this.run(command);
      assert.ok(result.ok, `setup ${command.type}: ${result.ok ? '' : `${result.code} ${result.detail}`}`);
    }
  }
}

function expectCode(result: CommandResult, code: CairnErrorCode): void {
  assert.equal(result.ok, false, `expected ${code}`);
  if (!result.ok) assert.equal(result.code, code, result.detail);
}

function expectOk(result: CommandResult): Extract<CommandResult, { ok: true }> {
  assert.ok(result.ok, result.ok ? '' : `${result.code}: ${result.detail}`);
  return result;
}

interface Case {
  readonly name: string;
  readonly setup: readonly RegistryCommand[];
  readonly command: RegistryCommand;
  /** error is the expected code; otherwise `check` inspects the successful result and the machine. */
  readonly error?: CairnErrorCode;
  readonly check?: (result: Extract<CommandResult, { ok: true }>, member: Member) => void;
}

const cases: readonly Case[] = [
  {
    name: 'CreateService creates with the given settings and revision = its index',
    setup: [],
    command: { type: 'createService', key: orders, protectThreshold: 0.5, metadata: { team: 'pay' }, selector: { type: 'none' }, kind: null },
    check: (result, member) => {
      assert.equal(result.revision, 1);
      assert.deepEqual(member.machine.getService(orders), { namespace: 'public', group: 'DEFAULT_GROUP', name: 'orders', protectThreshold: 0.5, metadata: { team: 'pay' }, selector: { type: 'none' }, kind: null, revision: 1 });
    },
  },
  { name: 'CreateService of an existing service', setup: [create(orders)], command: create(orders), error: 'CAIRN_SERVICE_ALREADY_EXISTS' },
  {
    name: 'CreateService may declare the kind (Nacos v2 ephemeral flag)',
    setup: [],
    command: create(orders, 'ephemeral'),
    check: (_, member) => assert.equal(member.machine.getService(orders)?.kind, 'ephemeral'),
  },
  { name: 'UpdateService of a missing service', setup: [], command: { type: 'updateService', key: orders, protectThreshold: 0.1 }, error: 'CAIRN_SERVICE_NOT_FOUND' },
  {
    name: 'UpdateService changes only what it carries',
    setup: [{ type: 'createService', key: orders, protectThreshold: 0.5, metadata: { a: '1' }, selector: { type: 'none' }, kind: null }],
    command: { type: 'updateService', key: orders, metadata: { b: '2' } },
    check: (result, member) => {
      const service = member.machine.getService(orders);
      assert.deepEqual([service?.protectThreshold, service?.metadata, service?.revision, result.revision], [0.5, { b: '2' }, 2, 2]);
    },
  },
  {
    name: 'UpdateService that changes nothing keeps the revision and writes only its request id',
    setup: [create(orders)],
    command: { type: 'updateService', key: orders, protectThreshold: 0, metadata: {}, selector: { type: 'none' } },
    check: (result, member) => {
      assert.equal(result.revision, 1);
      assert.equal(member.lastWrites, 1);
    },
  },
  { name: 'DeleteService of a missing service', setup: [], command: { type: 'deleteService', key: orders }, error: 'CAIRN_SERVICE_NOT_FOUND' },
  { name: 'DeleteService while instances remain', setup: [register(orders, values('10.0.0.1'))], command: { type: 'deleteService', key: orders }, error: 'CAIRN_SERVICE_HAS_INSTANCES' },
  {
    name: 'DeleteService of an empty service removes it and its cluster configurations',
    setup: [create(orders), { type: 'putCluster', key: orders, config: cluster('dc1') }, register(orders, values('10.0.0.1')), { type: 'deregisterInstance', key: orders, address: address('10.0.0.1') }],
    command: { type: 'deleteService', key: orders },
    check: (result, member) => {
      assert.equal(result.revision, 5);
      assert.equal(member.machine.getService(orders), null);
      assert.deepEqual([...member.keyspace.values.keys()].filter((k) => !k.startsWith('req')), []);
      assert.deepEqual(member.machine.counts(), { namespaces: 0, services: 0, instances: 0, rememberedRequests: 5 });
    },
  },
  { name: 'PutCluster on a missing service', setup: [], command: { type: 'putCluster', key: orders, config: cluster('DEFAULT') }, error: 'CAIRN_SERVICE_NOT_FOUND' },
  {
    name: 'PutCluster configures the cluster; reads redact the MySQL password; the health checker still sees it',
    setup: [create(orders)],
    command: { type: 'putCluster', key: orders, config: cluster('db', { type: 'MYSQL', user: 'probe', password: 'hunter2', sql: 'select 1' }) },
    check: (result, member) => {
      assert.deepEqual(result.payload.type === 'cluster' && result.payload.cluster.healthChecker, { type: 'MYSQL', user: 'probe', passwordSet: true, sql: 'select 1' });
      const detail = member.machine.getServiceDetail(orders);
      assert.ok(!JSON.stringify(detail).includes('hunter2'));
      assert.deepEqual(member.machine.clusterConfig(orders, 'db')?.healthChecker, { type: 'MYSQL', user: 'probe', password: 'hunter2', sql: 'select 1' });
      assert.deepEqual(member.machine.clusterConfig(orders, 'other')?.healthChecker, { type: 'TCP' }, 'unconfigured clusters use TCP');
    },
  },
  {
    name: 'RegisterInstance auto-creates the service with defaults, kind persistent',
    setup: [],
    command: register(orders, values('10.0.0.1', { metadata: { v: '1' } })),
    check: (result, member) => {
      assert.equal(result.payload.type, 'instance');
      const service = member.machine.getService(orders);
      assert.deepEqual([service?.kind, service?.protectThreshold, service?.revision], ['persistent', 0, 1]);
      const instance = member.machine.getInstance({ ...orders, ...address('10.0.0.1') });
      assert.deepEqual(instance, { ip: '10.0.0.1', port: 8080, cluster: 'DEFAULT', weight: 1, enabled: true, healthy: true, ephemeral: false, metadata: { v: '1' }, instanceId: '10.0.0.1#8080#DEFAULT#DEFAULT_GROUP@@orders', version: 1 });
      assert.deepEqual(member.machine.getServiceDetail(orders)?.clusters.map((c) => [c.name, c.healthChecker.type]), [['DEFAULT', 'TCP']]);
    },
  },
  { name: 'RegisterInstance into a service declared ephemeral', setup: [create(orders, 'ephemeral')], command: register(orders, values('10.0.0.1')), error: 'CAIRN_EPHEMERAL_MISMATCH' },
  {
    name: 'RegisterInstance upserts an existing instance',
    setup: [register(orders, values('10.0.0.1'))],
    command: register(orders, values('10.0.0.1', { weight: 5, metadata: { a: 'b' } })),
    check: (result, member) => {
      assert.equal(result.revision, 2);
      assert.deepEqual(member.machine.listInstances(orders).map((i) => [i.weight, i.metadata]), [[5, { a: 'b' }]]);
    },
  },
  {
    name: 'RegisterInstance of an identical instance changes nothing (no revision bump)',
    setup: [register(orders, values('10.0.0.1'))],
    command: register(orders, values('10.0.0.1')),
    check: (result, member) => {
      assert.equal(result.revision, 1);
      assert.equal(member.lastWrites, 1, 'only the request id is written');
    },
  },
  {
    name: 'Re-registration keeps the checker-owned health under an active checker',
    setup: [register(orders, values('10.0.0.1'))],
    command: register(orders, values('10.0.0.1', { healthy: false })),
    check: (_, member) => assert.equal(member.machine.listInstances(orders)[0]?.healthy, true),
  },
  {
    name: 'Re-registration applies the client health under a NONE checker',
    setup: [create(orders), { type: 'putCluster', key: orders, config: cluster('DEFAULT') }, register(orders, values('10.0.0.1'))],
    command: register(orders, values('10.0.0.1', { healthy: false })),
    check: (_, member) => assert.equal(member.machine.listInstances(orders)[0]?.healthy, false),
  },
  {
    name: 'A new instance takes the client health even under an active checker',
    setup: [],
    command: register(orders, values('10.0.0.1', { healthy: false })),
    check: (_, member) => assert.equal(member.machine.listInstances(orders)[0]?.healthy, false),
  },
  { name: 'UpdateInstance on a missing service', setup: [], command: { type: 'updateInstance', key: orders, instance: values('10.0.0.1') }, error: 'CAIRN_SERVICE_NOT_FOUND' },
  { name: 'UpdateInstance on a missing instance', setup: [register(orders, values('10.0.0.1'))], command: { type: 'updateInstance', key: orders, instance: values('10.0.0.2') }, error: 'CAIRN_INSTANCE_NOT_FOUND' },
  {
    name: 'UpdateInstance replaces the attributes',
    setup: [register(orders, values('10.0.0.1', { metadata: { a: '1' } }))],
    command: { type: 'updateInstance', key: orders, instance: values('10.0.0.1', { enabled: false, weight: 0 }) },
    check: (_, member) => assert.deepEqual(member.machine.listInstances(orders).map((i) => [i.enabled, i.weight, i.metadata]), [[false, 0, {}]]),
  },
  { name: 'PatchInstance on a missing instance', setup: [create(orders)], command: { type: 'patchInstance', key: orders, address: address('10.0.0.1'), weight: 2 }, error: 'CAIRN_INSTANCE_NOT_FOUND' },
  {
    name: 'PatchInstance changes only what it carries; metadata replaces the map',
    setup: [register(orders, values('10.0.0.1', { weight: 3, metadata: { a: '1', b: '2' } }))],
    command: { type: 'patchInstance', key: orders, address: address('10.0.0.1'), enabled: false, metadata: { c: '3' } },
    check: (_, member) => assert.deepEqual(member.machine.listInstances(orders).map((i) => [i.weight, i.enabled, i.metadata]), [[3, false, { c: '3' }]]),
  },
  {
    name: 'DeregisterInstance of a missing service succeeds with removed=false, revision 0',
    setup: [],
    command: { type: 'deregisterInstance', key: orders, address: address('10.0.0.1') },
    check: (result) => assert.deepEqual([result.revision, result.payload], [0, { type: 'removed', removed: false }]),
  },
  {
    name: 'DeregisterInstance of a missing instance succeeds with removed=false and keeps the revision',
    setup: [register(orders, values('10.0.0.1'))],
    command: { type: 'deregisterInstance', key: orders, address: address('10.0.0.2') },
    check: (result) => assert.deepEqual([result.revision, result.payload], [1, { type: 'removed', removed: false }]),
  },
  {
    name: 'DeregisterInstance removes; the undeclared service stays, empty, with kind null',
    setup: [register(orders, values('10.0.0.1'))],
    command: { type: 'deregisterInstance', key: orders, address: address('10.0.0.1') },
    check: (result, member) => {
      assert.deepEqual([result.revision, result.payload], [2, { type: 'removed', removed: true }]);
      assert.deepEqual([member.machine.getService(orders)?.kind, member.machine.listInstances(orders).length], [null, 0]);
      assert.equal(member.keyspace.values.has(instanceStorageKey(orders, address('10.0.0.1'))), false);
    },
  },
  { name: 'SetInstanceHealth under the default TCP checker', setup: [register(orders, values('10.0.0.1'))], command: { type: 'setInstanceHealth', key: orders, address: address('10.0.0.1'), healthy: false }, error: 'CAIRN_HEALTH_CHECK_ACTIVE' },
  { name: 'SetInstanceHealth on a missing service', setup: [], command: { type: 'setInstanceHealth', key: orders, address: address('10.0.0.1'), healthy: false }, error: 'CAIRN_SERVICE_NOT_FOUND' },
  { name: 'SetInstanceHealth on a missing instance', setup: [create(orders)], command: { type: 'setInstanceHealth', key: orders, address: address('10.0.0.1'), healthy: false }, error: 'CAIRN_INSTANCE_NOT_FOUND' },
  {
    name: 'versions count the client writes that change an instance: register, upsert, update, patch, health set',
    setup: [
      create(orders), { type: 'putCluster', key: orders, config: cluster('DEFAULT') },
      register(orders, values('10.0.0.1')),
      register(orders, values('10.0.0.1')),
      register(orders, values('10.0.0.1', { metadata: { v: '2' } })),
      { type: 'updateInstance', key: orders, instance: values('10.0.0.1', { weight: 3 }) },
      { type: 'patchInstance', key: orders, address: address('10.0.0.1'), enabled: false },
    ],
    command: { type: 'setInstanceHealth', key: orders, address: address('10.0.0.1'), healthy: false },
    check: (result, member) => {
      assert.equal(result.payload.type === 'instance' ? result.payload.instance.version : -1, 5, 'an identical re-register is not a change');
      assert.equal(member.machine.getInstance({ ...orders, ...address('10.0.0.1') })?.version, 5);
    },
  },
  {
    name: 'CAS: RegisterInstance with expectedVersion 0 creates an absent instance at version 1',
    setup: [],
    command: { type: 'registerInstance', key: orders, instance: values('10.0.0.1'), expectedVersion: 0 },
    check: (result) => assert.equal(result.payload.type === 'instance' ? result.payload.instance.version : -1, 1),
  },
  { name: 'CAS: RegisterInstance with expectedVersion 0 on an existing instance', setup: [register(orders, values('10.0.0.1'))], command: { type: 'registerInstance', key: orders, instance: values('10.0.0.1', { metadata: { v: 'x' } }), expectedVersion: 0 }, error: 'CAIRN_VERSION_MISMATCH' },
  { name: 'CAS: RegisterInstance with a version on an absent service creates nothing', setup: [], command: { type: 'registerInstance', key: orders, instance: values('10.0.0.1'), expectedVersion: 1 }, error: 'CAIRN_VERSION_MISMATCH' },
  {
    name: 'CAS: RegisterInstance at the current version replaces and counts one more',
    setup: [register(orders, values('10.0.0.1')), register(orders, values('10.0.0.1', { metadata: { v: '2' } }))],
    command: { type: 'registerInstance', key: orders, instance: values('10.0.0.1', { metadata: { v: '3' } }), expectedVersion: 2 },
    check: (_, member) => {
      const instance = member.machine.getInstance({ ...orders, ...address('10.0.0.1') });
      assert.deepEqual([instance?.version, instance?.metadata], [3, { v: '3' }]);
    },
  },
  { name: 'CAS: UpdateInstance at a stale version', setup: [register(orders, values('10.0.0.1')), register(orders, values('10.0.0.1', { weight: 2 }))], command: { type: 'updateInstance', key: orders, instance: values('10.0.0.1', { weight: 5 }), expectedVersion: 1 }, error: 'CAIRN_VERSION_MISMATCH' },
  { name: 'CAS: PatchInstance at a stale version', setup: [register(orders, values('10.0.0.1'))], command: { type: 'patchInstance', key: orders, address: address('10.0.0.1'), metadata: { v: 'x' }, expectedVersion: 2 }, error: 'CAIRN_VERSION_MISMATCH' },
  {
    name: 'CAS: PatchInstance at the current version',
    setup: [register(orders, values('10.0.0.1'))],
    command: { type: 'patchInstance', key: orders, address: address('10.0.0.1'), metadata: { v: 'x' }, expectedVersion: 1 },
    check: (result) => assert.equal(result.payload.type === 'instance' ? result.payload.instance.version : -1, 2),
  },
  { name: 'CAS: DeregisterInstance at a stale version', setup: [register(orders, values('10.0.0.1'))], command: { type: 'deregisterInstance', key: orders, address: address('10.0.0.1'), expectedVersion: 2 }, error: 'CAIRN_VERSION_MISMATCH' },
  { name: 'CAS: DeregisterInstance of an absent instance expecting a version', setup: [create(orders)], command: { type: 'deregisterInstance', key: orders, address: address('10.0.0.1'), expectedVersion: 1 }, error: 'CAIRN_VERSION_MISMATCH' },
  {
    name: 'CAS: DeregisterInstance at the current version removes; a re-registration starts again at version 1',
    setup: [register(orders, values('10.0.0.1')), register(orders, values('10.0.0.1', { weight: 2 })), { type: 'deregisterInstance', key: orders, address: address('10.0.0.1'), expectedVersion: 2 }],
    command: register(orders, values('10.0.0.1')),
    check: (result) => assert.equal(result.payload.type === 'instance' ? result.payload.instance.version : -1, 1),
  },
  {
    name: 'CAS: DeregisterInstance of an absent instance expecting version 0 succeeds with removed=false',
    setup: [create(orders)],
    command: { type: 'deregisterInstance', key: orders, address: address('10.0.0.1'), expectedVersion: 0 },
    check: (result) => assert.deepEqual(result.payload, { type: 'removed', removed: false }),
  },
  {
    name: 'SetInstanceHealth under a NONE checker sets the health',
    setup: [create(orders), { type: 'putCluster', key: orders, config: cluster('DEFAULT') }, register(orders, values('10.0.0.1'))],
    command: { type: 'setInstanceHealth', key: orders, address: address('10.0.0.1'), healthy: false },
    check: (result, member) => {
      assert.equal(result.revision, 4);
      assert.equal(member.machine.listInstances(orders)[0]?.healthy, false);
    },
  },
];

for (const scripted of cases) {
  test(`semantics: ${scripted.name}`, async () => {
    const member = new Member();
    member.runAll(scripted.setup);
    const result = member.run(scripted.command);
    if (scripted.error !== undefined) {
      expectCode(result, scripted.error);
      assert.equal(member.lastWrites, 1, 'a refused command writes only its remembered result');
    } else {
      scripted.check?.(expectOk(result), member);
    }
    assert.deepEqual((await reload(member)).snapshot(), member.machine.snapshot(), 'keyspace reload equals live state');
  });
}

/** reload loads a member's keyspace into a fresh machine. */
/**
 * keyspaceBytes is a member's keyspace with every value as a Buffer: a restore stores an instance as the view of the
 * image that held it (a Uint8Array), apply as a Buffer; the bytes are what must be equal.
 */
function keyspaceBytes(member: Member): Map<string, Buffer> {
  return new Map([...member.keyspace.values].map(([key, value]) => [key, Buffer.from(value)] as const));
}

/** restoredFrom is a new member restored from `member`'s snapshot, at its position in the log (a follower's install). */
function restoredFrom(member: Member, limits: Partial<RegistryLimits>): Member {
  const restored = new Member(limits);
  const batch = restored.keyspace.batch();
  restored.machine.restore(member.machine.snapshot(), batch);
  restored.keyspace.commit(batch.writes);
  restored.index = member.index;
  return restored;
}

async function reload(member: Member, limits: Partial<RegistryLimits> = {}): Promise<RegistryStateMachine> {
  const reloaded = new RegistryStateMachine({ limits });
  await reloaded.load(member.keyspace.entries());
  return reloaded;
}

/** workload is a fixed script touching every command type, two namespaces and several groups. */
function workload(): RegistryCommand[] {
  const beta: ServiceKey = { namespace: 'beta', group: 'G2', service: 'billing' };
  return [
    create(users),
    { type: 'createService', key: beta, protectThreshold: 0.3, metadata: { z: '1', a: '2' }, selector: { type: 'label', expression: 'CONSUMER.label.dc = PROVIDER.label.dc' }, kind: 'persistent' },
    register(orders, values('10.0.0.2', { metadata: { b: '1', a: '2' } })),
    register(orders, values('10.0.0.1', { cluster: 'dc2' })),
    register(orders, values('10.0.0.1')),
    { type: 'putCluster', key: orders, config: cluster('dc2', { type: 'HTTP', path: '/h', headers: { B: '1', A: '2' }, expectedResponseCode: 204 }) },
    { type: 'putCluster', key: beta, config: cluster('db', { type: 'MYSQL', user: 'u', password: 'p', sql: 'select 1' }) },
    register(beta, values('10.1.0.1', { cluster: 'db', port: 3306 })),
    { type: 'patchInstance', key: orders, address: address('10.0.0.2'), weight: 7 },
    { type: 'deregisterInstance', key: orders, address: address('10.0.0.1') },
    { type: 'updateService', key: users, protectThreshold: 0.9 },
    { type: 'putCluster', key: orders, config: cluster('DEFAULT') },
    { type: 'setInstanceHealth', key: orders, address: address('10.0.0.2'), healthy: false },
  ];
}

test('determinism: two machines fed the same commands give identical snapshot bytes and results', () => {
  const a = new Member();
  const b = new Member();
  for (const command of workload()) assert.deepEqual(a.run(command), b.run(command));
  assert.deepEqual(a.machine.snapshot(), b.machine.snapshot());
  assert.deepEqual([...a.keyspace.values.entries()], [...b.keyspace.values.entries()]);
});

test('snapshot -> restore gives identical reads, snapshot bytes and keyspace', () => {
  const source = new Member();
  source.runAll(workload());
  const target = new Member();
  target.runAll([create({ namespace: 'old', group: 'G', service: 'gone' })]);
  target.keyspace.clear();
  const batch = target.keyspace.batch();
  target.machine.restore(source.machine.snapshot(), batch);
  target.keyspace.commit(batch.writes);
  assert.deepEqual(target.machine.snapshot(), source.machine.snapshot());
  assert.deepEqual(keyspaceBytes(target), keyspaceBytes(source));
  for (const namespace of ['public', 'beta', 'old']) {
    assert.deepEqual(target.machine.services(namespace, ALL_GROUPS), source.machine.services(namespace, ALL_GROUPS));
    assert.deepEqual(target.machine.summaries(namespace), source.machine.summaries(namespace));
    for (const service of source.machine.services(namespace, ALL_GROUPS)) {
      const key = { namespace, group: service.group, service: service.name };
      assert.deepEqual(target.machine.getServiceDetail(key), source.machine.getServiceDetail(key));
      assert.deepEqual(target.machine.listInstances(key), source.machine.listInstances(key));
    }
  }
  assert.deepEqual(target.machine.counts(), source.machine.counts());
  // The restored machine keeps applying from the snapshot's position.
  target.index = source.index;
  assert.deepEqual(target.run(register(users, values('10.9.9.9'))), source.run(register(users, values('10.9.9.9'))));
});

test('a restore stores each instance as the bytes its image held, and those load back to the restored state', async () => {
  const source = new Member();
  source.runAll(workload());
  // An image not written by this version's encoder: versions left out, metadata pairs reversed.
  const plain = decodeMessage('RegistrySnapshot', source.machine.snapshot()) as { services: Array<{ instances?: Array<Record<string, unknown>> }> };
  for (const service of plain.services) {
    for (const instance of service.instances ?? []) {
      delete instance['version'];
      instance['metadata'] = [...((instance['metadata'] as unknown[] | undefined) ?? [])].reverse();
    }
  }
  const image = encodeMessage('RegistrySnapshot', plain);
  const target = new Member();
  const batch = target.keyspace.batch();
  target.machine.restore(image, batch);
  target.keyspace.commit(batch.writes);
  // The stored record of an instance with two metadata pairs is the image's (pairs reversed), not a fresh encoding.
  const key = instanceStorageKey(orders, address('10.0.0.2'));
  const stored = target.keyspace.values.get(key);
  assert.ok(stored !== undefined);
  const canonical = encodeInstanceRecord(target.machine.listInstances(orders).find((instance) => instance.ip === '10.0.0.2') as Instance);
  assert.notDeepEqual(Buffer.from(stored), Buffer.from(canonical));
  // Reading the keyspace back gives the restored state exactly, and the snapshots agree.
  const reloaded = await reload(target);
  assert.deepEqual(reloaded.snapshot(), target.machine.snapshot());
  assert.deepEqual(reloaded.listInstances(orders), target.machine.listInstances(orders));
});

test('load() from the keyspace equals the live state, after every command of the workload', async () => {
  const member = new Member();
  for (const command of workload()) {
    member.run(command);
    const reloaded = await reload(member);
    assert.deepEqual(reloaded.snapshot(), member.machine.snapshot());
  }
  assert.ok(member.keyspace.values.has(serviceStorageKey(orders)));
});

test('request ids: a retry gets the first result and is not applied twice; reuse with other bytes is refused', () => {
  const member = new Member();
  const first = member.run(create(orders), 'client-1');
  expectOk(first);
  const retry = member.run(create(orders), 'client-1');
  assert.deepEqual(retry, first, 'the retry is answered with the first result, not ALREADY_EXISTS');
  assert.equal(member.lastWrites, 0, 'a deduplicated retry writes nothing');
  expectCode(member.run(create(users), 'client-1'), 'CAIRN_REQUEST_ID_REUSED');
  assert.equal(member.machine.getService(users), null);
  // A failed first attempt is remembered too: its retry gets the same failure even after the cause is gone.
  expectCode(member.run({ type: 'deleteService', key: users }, 'client-2'), 'CAIRN_SERVICE_NOT_FOUND');
  member.run(create(users), 'client-3');
  expectCode(member.run({ type: 'deleteService', key: users }, 'client-2'), 'CAIRN_SERVICE_NOT_FOUND');
  assert.notEqual(member.machine.getService(users), null);
});

test('request ids: the table is bounded; the lowest index is forgotten first, in memory and in the keyspace', async () => {
  const limits = { requestIdsRememberedMax: 3 };
  const member = new Member(limits);
  member.run(create(orders), 'a');
  for (const id of ['b', 'c', 'd']) member.run({ type: 'deleteService', key: users }, id);
  assert.equal(member.machine.counts().rememberedRequests, 3);
  assert.equal(member.keyspace.values.has(requestStorageKey('a')), false);
  assert.equal(member.keyspace.values.has(requestStorageKey('b')), true);
  // 'a' is forgotten, so its retry is applied again and now finds the service.
  expectCode(member.run(create(orders), 'a'), 'CAIRN_SERVICE_ALREADY_EXISTS');
  assert.equal(member.keyspace.values.has(requestStorageKey('b')), false);
  assert.deepEqual((await reload(member, limits)).snapshot(), member.machine.snapshot());
});

test('request ids: over thousands of evictions (the eviction order is compacted every 1 024 or more) the table holds exactly the latest ids, in index order', async () => {
  const limits = { requestIdsRememberedMax: 25 };
  const member = new Member(limits);
  member.run(create(orders), 'first');
  for (let i = 0; i < 5000; i++) member.run({ type: 'deleteService', key: users }, `id-${i}`);
  assert.equal(member.machine.counts().rememberedRequests, 25);
  const stored = [...member.keyspace.values.keys()].filter((key) => key.startsWith(requestStorageKey(''))).sort();
  assert.deepEqual(stored, Array.from({ length: 25 }, (_, i) => requestStorageKey(`id-${4975 + i}`)).sort());
  // The latest is answered from the table; one evicted long ago applies again (and now finds the service).
  expectCode(member.run({ type: 'deleteService', key: users }, 'id-4999'), 'CAIRN_SERVICE_NOT_FOUND');
  assert.equal(member.machine.counts().rememberedRequests, 25, 'a remembered retry adds nothing');
  expectCode(member.run(create(orders), 'first'), 'CAIRN_SERVICE_ALREADY_EXISTS');
  // The next eviction is the oldest left, id-4975; the reloaded keyspace agrees with memory.
  assert.equal(member.keyspace.values.has(requestStorageKey('id-4975')), false);
  assert.equal(member.keyspace.values.has(requestStorageKey('id-4976')), true);
  assert.deepEqual((await reload(member, limits)).snapshot(), member.machine.snapshot());
});

test('request ids: the byte bound evicts too, but always keeps the latest result', () => {
  const member = new Member({ requestResultsBytesMax: 1 });
  member.run(create(orders), 'a');
  member.run(create(users), 'b');
  assert.equal(member.machine.counts().rememberedRequests, 1);
  assert.deepEqual(member.run(create(users), 'b').ok, true, 'the latest is still remembered');
});

test('limits: instances per service, clusters per service, services per namespace, namespaces', () => {
  const member = new Member({ instancesPerServiceMax: 3, clustersPerServiceMax: 2, servicesPerNamespaceMax: 2, namespacesMax: 2 });
  member.runAll([register(orders, values('10.0.0.1')), register(orders, values('10.0.0.2', { cluster: 'dc2' }))]);
  expectCode(member.run(register(orders, values('10.0.0.3', { cluster: 'dc3' }))), 'CAIRN_CLUSTERS_PER_SERVICE_EXCEEDED');
  expectOk(member.run(register(orders, values('10.0.0.3'))));
  expectCode(member.run(register(orders, values('10.0.0.4'))), 'CAIRN_INSTANCES_PER_SERVICE_EXCEEDED');
  expectOk(member.run(register(orders, values('10.0.0.1', { weight: 3 }))));
  expectOk(member.run({ type: 'putCluster', key: orders, config: cluster('dc2') }));
  expectCode(member.run({ type: 'putCluster', key: orders, config: cluster('dc9') }), 'CAIRN_CLUSTERS_PER_SERVICE_EXCEEDED');
  member.runAll([create(users)]);
  expectCode(member.run(create({ ...orders, service: 'third' })), 'CAIRN_SERVICES_PER_NAMESPACE_EXCEEDED');
  expectCode(member.run(register({ ...orders, service: 'third' }, values('10.0.0.9'))), 'CAIRN_SERVICES_PER_NAMESPACE_EXCEEDED');
  member.runAll([create({ namespace: 'two', group: 'G', service: 's' })]);
  expectCode(member.run(create({ namespace: 'three', group: 'G', service: 's' })), 'CAIRN_NAMESPACES_EXCEEDED');
  assert.deepEqual(member.machine.counts(), { namespaces: 2, services: 3, instances: 3, rememberedRequests: member.index });
});

test('reads: listServices pages by group or all groups; catalog filters and counts', () => {
  const member = new Member();
  member.runAll([
    register({ ...orders, group: 'B' }, values('10.0.0.1', { healthy: false })),
    register({ ...orders, group: 'A' }, values('10.0.0.1')),
    create({ ...orders, group: 'A', service: 'alpha' }),
    register({ ...orders, group: 'A', service: 'zeta' }, values('10.0.0.2', { cluster: 'x' })),
  ]);
  const names = (items: readonly { group: string; name: string }[]) => items.map((s) => `${s.group}@@${s.name}`);
  assert.deepEqual(names(member.machine.services('public', ALL_GROUPS)), ['A@@alpha', 'A@@orders', 'A@@zeta', 'B@@orders']);
  assert.deepEqual(names(member.machine.services('public', 'A')), ['A@@alpha', 'A@@orders', 'A@@zeta']);
  const page = member.machine.listServices('public', ALL_GROUPS, { pageNo: 2, pageSize: 3 });
  assert.deepEqual([page.count, names(page.items)], [4, ['B@@orders']]);
  assert.deepEqual(member.machine.listServices('nope', ALL_GROUPS, { pageNo: 1, pageSize: 10 }), { count: 0, items: [] });
  const catalog = member.machine.catalog('public', { serviceNameContains: 'or', withInstancesOnly: true }, { pageNo: 1, pageSize: 10 });
  assert.deepEqual(catalog.items.map((s) => [s.service.group, s.instanceCount, s.healthyInstanceCount, s.clusterCount]), [['A', 1, 1, 1], ['B', 1, 0, 1]]);
  assert.equal(member.machine.catalog('public', { groupNameContains: 'B' }, { pageNo: 1, pageSize: 10 }).count, 1);
});

test('an undecodable command applies as a typed failure and changes nothing', () => {
  const member = new Member();
  member.runAll([create(orders)]);
  const before = member.machine.snapshot();
  for (const bytes of [new Uint8Array([0xff, 0xff, 0xff]), encodeMessage('Command', { requestId: 'r', deleteService: { key: { namespace: 'a b', group: 'G', service: 's' } } })]) {
    const result = decodeResult(member.applyBytes(bytes));
    expectCode(result, 'CAIRN_INVALID_ARGUMENT');
    assert.equal(member.lastWrites, 0);
  }
  assert.deepEqual(member.machine.snapshot(), before);
});

test('apply asserts that indexes only grow (a driver bug crashes, it is not a result)', () => {
  const member = new Member();
  member.runAll([create(orders)]);
  assert.throws(() => member.machine.apply(encodeCommand({ requestId: 'x', command: create(users) }), 1, 1, member.keyspace.batch()), AssertionError);
});

test('corrupt snapshots and keyspaces are CAIRN_STORAGE_CORRUPT', async () => {
  const isCorrupt = (error: unknown): boolean => error instanceof CairnError && error.code === 'CAIRN_STORAGE_CORRUPT';
  const machine = new RegistryStateMachine();
  assert.throws(() => machine.restore(new Uint8Array([0xff, 0xff]), new MemoryKeyspace().batch()), isCorrupt);
  assert.throws(() => machine.restore(encodeMessage('RegistrySnapshot', { formatVersion: 3 }), new MemoryKeyspace().batch()), isCorrupt);
  const source = new Member();
  source.runAll(workload());
  const breakers: ReadonlyArray<(keyspace: MemoryKeyspace) => void> = [
    (k) => k.values.set('zzz\u0000what', new Uint8Array()),
    (k) => k.values.delete(serviceStorageKey(orders)),
    (k) => k.values.set(serviceStorageKey(users), k.values.get(serviceStorageKey(orders)) ?? new Uint8Array()),
    (k) => k.values.set(instanceStorageKey(orders, address('10.0.0.2')), new Uint8Array([0x22, 0x01])),
    (k) => k.values.set(requestStorageKey('req-1'), k.values.get(requestStorageKey('req-2')) ?? new Uint8Array()),
    // Keys that follow an instance key of the same service, whose service part the load does not parse again: an
    // extra part, a port that is not a number, a record of another instance.
    (k) => k.values.set(`${instanceStorageKey(orders, address('10.0.0.2'))}\u0000x`, k.values.get(instanceStorageKey(orders, address('10.0.0.2'))) ?? new Uint8Array()),
    (k) => k.values.set(instanceStorageKey(orders, address('10.0.0.2')).replace(/8080$/, 'http'), k.values.get(instanceStorageKey(orders, address('10.0.0.2'))) ?? new Uint8Array()),
    (k) => k.values.set(instanceStorageKey(orders, address('10.0.0.9')), k.values.get(instanceStorageKey(orders, address('10.0.0.2'))) ?? new Uint8Array()),
  ];
  assert.ok(source.keyspace.values.has(instanceStorageKey(orders, address('10.0.0.2'))), 'the workload keeps orders 10.0.0.2');
  for (const [i, breakKeyspace] of breakers.entries()) {
    const copy = new MemoryKeyspace();
    for (const [key, value] of source.keyspace.values) copy.values.set(key, value);
    breakKeyspace(copy);
    await assert.rejects(new RegistryStateMachine().load(copy.entries()), isCorrupt, `breaker ${i}`);
  }
});

/** prng is mulberry32: the randomized test is reproducible from its seed. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomCommand(random: () => number): RegistryCommand {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const key: ServiceKey = { namespace: pick(['public', 'dev']), group: pick(['DEFAULT_GROUP', 'G']), service: pick(['a', 'b', 'c']) };
  const where = { cluster: pick(['DEFAULT', 'dc2']), ip: pick(['10.0.0.1', '10.0.0.2', '10.0.0.3', 'db.local']), port: pick([80, 8080]) };
  const instance = { ...where, weight: pick([0, 1, 2.5]), enabled: random() < 0.8, healthy: random() < 0.7, metadata: pick([{}, { a: '1' }, { b: '2', a: '1' }]) };
  const checker: HealthChecker = pick([{ type: 'NONE' }, { type: 'TCP' }, { type: 'MYSQL', user: 'u', password: 'p', sql: 'select 1' }]);
  switch (pick(['create', 'update', 'delete', 'cluster', 'register', 'register', 'register', 'updateInstance', 'patch', 'deregister', 'deregister', 'health'] as const)) {
    case 'create': return { type: 'createService', key, protectThreshold: pick([0, 0.5]), metadata: {}, selector: { type: 'none' }, kind: pick([null, null, 'persistent', 'ephemeral'] as const) };
    case 'update': return { type: 'updateService', key, protectThreshold: pick([0, 0.2, 1]) };
    case 'delete': return { type: 'deleteService', key };
    case 'cluster': return { type: 'putCluster', key, config: { ...cluster(where.cluster, checker) } };
    case 'register': return { type: 'registerInstance', key, instance };
    case 'updateInstance': return { type: 'updateInstance', key, instance };
    case 'patch': return { type: 'patchInstance', key, address: where, healthy: random() < 0.5, weight: pick([1, 3]) };
    case 'deregister': return { type: 'deregisterInstance', key, address: where };
    case 'health': return { type: 'setInstanceHealth', key, address: where, healthy: random() < 0.5 };
  }
}

/** checkInvariants compares the counts with what the reads list, and checks the limits and kinds. */
function checkInvariants(machine: RegistryStateMachine, limits: Partial<RegistryLimits>): void {
  let services = 0;
  let instances = 0;
  for (const namespace of ['public', 'dev']) {
    for (const service of machine.services(namespace, ALL_GROUPS)) {
      services += 1;
      const listed = machine.listInstances({ namespace, group: service.group, service: service.name });
      instances += listed.length;
      // The sorted list is kept incrementally once read: strictly ordered, frozen, each entry the stored instance.
      assert.ok(Object.isFrozen(listed));
      for (let i = 1; i < listed.length; i++) assert.ok(compareInstances(listed[i - 1] as Instance, listed[i] as Instance) < 0, 'listInstances is strictly sorted');
      for (const instance of listed) assert.equal(machine.getInstance({ namespace, group: service.group, service: service.name, ...instance }), instance);
      assert.ok(listed.length <= (limits.instancesPerServiceMax ?? Infinity));
      if (service.kind === 'ephemeral') assert.equal(listed.length, 0, 'an ephemeral service holds no persistent instance');
      if (listed.length > 0) assert.equal(service.kind === null, false);
    }
  }
  const counts = machine.counts();
  assert.deepEqual([counts.services, counts.instances], [services, instances]);
  assert.ok(counts.rememberedRequests <= (limits.requestIdsRememberedMax ?? Infinity));
}

test('randomized: 2000 random commands on two machines (one through a mid-run snapshot) agree; a reload agrees', async () => {
  const limits = { instancesPerServiceMax: 6, clustersPerServiceMax: 2, servicesPerNamespaceMax: 10, requestIdsRememberedMax: 50 };
  const random = prng(7_2024);
  const direct = new Member(limits);
  let follower = new Member(limits);
  // A member nobody waits on (apply's `wanted` false, as on a follower): same state and writes, no result bytes.
  const quiet = new Member(limits);
  const outcomes = new Map<string, number>();
  for (let step = 0; step < 2000; step += 1) {
    const command = randomCommand(random);
    // One command in eight reuses a recent request id (a client retry, or a misuse with other content).
    const requestId = random() < 0.125 ? `id-${Math.max(0, step - 1 - Math.floor(random() * 60))}` : `id-${step}`;
    const bytes = encodeCommand({ requestId, command });
    const expected = direct.applyBytes(bytes);
    assert.deepEqual(follower.applyBytes(bytes), expected, `step ${step}`);
    const quietResult = quiet.applyBytes(bytes, false);
    assert.ok(quietResult.length === 0 || Buffer.from(quietResult).equals(Buffer.from(expected)), `step ${step}: an unwanted result is empty or the same`);
    assert.equal(quiet.lastWrites, direct.lastWrites, `step ${step}: the same writes`);
    const result = decodeResult(expected);
    const outcome = result.ok ? 'ok' : result.code;
    outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
    checkInvariants(direct.machine, limits);
    if (step === 1000) follower = restoredFrom(follower, limits);
  }
  assert.deepEqual(follower.machine.snapshot(), direct.machine.snapshot());
  assert.deepEqual(quiet.machine.snapshot(), direct.machine.snapshot());
  assert.deepEqual([...quiet.keyspace.values].sort(), [...direct.keyspace.values].sort());
  assert.deepEqual((await reload(direct, limits)).snapshot(), direct.machine.snapshot());
  assert.deepEqual((await reload(follower, limits)).snapshot(), direct.machine.snapshot());
  // The workload reaches the interesting outcomes, so the comparison is not vacuous.
  for (const outcome of ['ok', 'CAIRN_SERVICE_NOT_FOUND', 'CAIRN_INSTANCE_NOT_FOUND', 'CAIRN_HEALTH_CHECK_ACTIVE', 'CAIRN_EPHEMERAL_MISMATCH', 'CAIRN_REQUEST_ID_REUSED', 'CAIRN_SERVICE_HAS_INSTANCES']) {
    assert.ok((outcomes.get(outcome) ?? 0) > 0, `outcome ${outcome} never happened: ${JSON.stringify([...outcomes])}`);
  }
});

test('encodeMessage writes plain objects as protobufjs would after fromObject: every message of a random run, byte for byte', () => {
  // encodeMessage skips fromObject (one copy fewer of every message on the apply path); the bytes must not change,
  // or members of different versions would remember different results and snapshots. Every plain object encoded
  // while 600 random commands apply (commands, results, records, remembered requests) and a snapshot is taken is
  // re-encoded through fromObject and compared.
  const names = ['Command', 'Result', 'InstanceRecord', 'ServiceRecord', 'ClusterRecord', 'RememberedRequest', 'RegistrySnapshot', 'ServiceSnapshot', 'ProbeAssignment'];
  const captured: Array<{ name: string; plain: Record<string, unknown> }> = [];
  const restore: Array<() => void> = [];
  for (const name of names) {
    const type = messageType(name);
    const original = type.encode;
    restore.push(() => { type.encode = original; });
    type.encode = (message, writer) => {
      captured.push({ name, plain: message as Record<string, unknown> });
      return original.call(type, message, writer);
    };
  }
  try {
    const random = prng(7);
    const member = new Member();
    for (let step = 0; step < 600; step += 1) member.applyBytes(encodeCommand({ requestId: `id-${step}`, command: randomCommand(random) }));
    member.machine.snapshot();
  } finally {
    for (const undo of restore) undo();
  }
  const seen = new Set(captured.map(({ name }) => name));
  for (const name of ['Command', 'Result', 'InstanceRecord', 'ServiceRecord', 'ClusterRecord', 'RememberedRequest', 'RegistrySnapshot']) assert.ok(seen.has(name), `the run encoded a ${name}`);
  for (const { name, plain } of captured) {
    const type = messageType(name);
    assert.deepEqual(encodeMessage(name, plain), type.encode(type.fromObject(plain)).finish(), `${name} ${JSON.stringify(plain).slice(0, 200)}`);
  }
});

test('snapshotPieces: the pieces join into snapshot()\'s bytes, and encode the state as of the capture even while applies go on', () => {
  const random = prng(11);
  const member = new Member();
  // A service large enough to be encoded in several pieces (256 instances each), and a full mix of other commands.
  member.runAll([create(orders)]);
  for (let i = 0; i < 700; i++) member.run(register(orders, values(`10.1.${i >> 8}.${i & 255}`, { metadata: { n: String(i) } })));
  for (let step = 0; step < 400; step += 1) member.applyBytes(encodeCommand({ requestId: `mix-${step}`, command: randomCommand(random) }));
  const expected = member.machine.snapshot();
  const pieces = member.machine.snapshotPieces();
  const taken: Uint8Array[] = [];
  let first = pieces.next();
  assert.ok(first.done !== true);
  taken.push(first.value);
  // Applies between pieces (as while the driver pauses) change nothing of what the pieces encode.
  for (let step = 0; step < 300; step += 1) {
    member.applyBytes(encodeCommand({ requestId: `later-${step}`, command: randomCommand(random) }));
    member.run({ type: 'deregisterInstance', key: orders, address: address(`10.1.${step >> 8}.${step & 255}`) });
    const next = pieces.next();
    if (next.done === true) break;
    taken.push(next.value);
  }
  for (first = pieces.next(); first.done !== true; first = pieces.next()) taken.push(first.value);
  assert.ok(taken.length > 5, `several pieces (${taken.length})`);
  // The joined pieces are the bytes protobufjs writes for the whole message in one call.
  const type = messageType('RegistrySnapshot');
  assert.deepEqual(Buffer.from(type.encode(type.decode(expected)).finish()), Buffer.from(expected), 'piecewise = one-shot encoding');
  assert.deepEqual(Buffer.concat(taken), Buffer.from(expected));
  assert.notDeepEqual(Buffer.from(member.machine.snapshot()), Buffer.from(expected), 'the state did move on meanwhile');
  const restored = new Member();
  restored.machine.restore(Buffer.concat(taken), restored.keyspace.batch());
  assert.deepEqual(restored.machine.snapshot(), expected);
});

test('restoreInSlices pauses every few hundred records, leaves the state as it was until its last step, and ends exactly where restore ends', () => {
  const source = new Member();
  const commands: RegistryCommand[] = [];
  for (let i = 0; i < 1500; i++) commands.push(register(i % 2 === 0 ? orders : users, values(`10.1.${Math.floor(i / 250)}.${i % 250}`)));
  source.runAll(commands);
  const target = new Member();
  const old = { namespace: 'old', group: 'G', service: 'gone' };
  target.runAll([create(old)]);
  target.keyspace.clear();
  const batch = target.keyspace.batch();
  const steps = target.machine.restoreInSlices(source.machine.snapshot(), batch);
  let pauses = 0;
  while (steps.next().done !== true) {
    pauses += 1;
    // Until the last step the machine serves what it held before.
    assert.notEqual(target.machine.getService(old), null, `the old state stays in place (pause ${pauses})`);
    assert.equal(target.machine.counts().instances, 0);
  }
  // 1 500 instances decoded, 1 500 assembled, 1 500 + 1 500 requests written: a pause every 256 records.
  assert.ok(pauses >= 15, `${pauses} pauses`);
  target.keyspace.commit(batch.writes);
  assert.equal(target.machine.getService(old), null);
  assert.deepEqual(target.machine.snapshot(), source.machine.snapshot());
  assert.deepEqual(keyspaceBytes(target), keyspaceBytes(source));
  assert.deepEqual(target.machine.counts(), source.machine.counts());
});

test('the snapshot is decoded record by record with protobuf\'s rules: unknown fields are skipped, a wrong wire type, a truncation or a service without its record is CAIRN_STORAGE_CORRUPT', () => {
  const isCorrupt = (error: unknown): boolean => error instanceof CairnError && error.code === 'CAIRN_STORAGE_CORRUPT';
  const source = new Member();
  source.runAll(workload());
  const snapshot = source.machine.snapshot();
  const restoreOf = (data: Uint8Array): RegistryStateMachine => {
    const machine = new RegistryStateMachine();
    machine.restore(data, new MemoryKeyspace().batch());
    return machine;
  };
  // Unknown fields (a newer writer's): field 15 as a varint and field 14 as bytes, before and after the records.
  const unknown = Uint8Array.from([15 << 3, 0x2a, (14 << 3) | 2, 2, 0x01, 0x02]);
  const padded = new Uint8Array(unknown.length * 2 + snapshot.length);
  padded.set(unknown, 0);
  padded.set(snapshot, unknown.length);
  padded.set(unknown, unknown.length + snapshot.length);
  assert.deepEqual(restoreOf(padded).snapshot(), snapshot);
  // The services field (2) as a varint instead of a message.
  assert.throws(() => restoreOf(Uint8Array.from([...encodeMessage('RegistrySnapshot', { formatVersion: 1 }), 2 << 3, 1])), isCorrupt);
  // Cut inside a record.
  assert.throws(() => restoreOf(snapshot.subarray(0, snapshot.length - 3)), isCorrupt);
  // A service snapshot holding only clusters.
  const clusterOnly = encodeMessage('RegistrySnapshot', { formatVersion: 1, services: [{ clusters: [] }, {}] });
  assert.throws(() => restoreOf(clusterOnly), (error: unknown) => isCorrupt(error) && /service record missing/.test((error as Error).message));
  // No format version at all.
  assert.throws(() => restoreOf(new Uint8Array(0)), isCorrupt);
});

test('request ids: an instance result is remembered as a reference to the stored instance, and written in full before that instance changes or goes; a retry always gets the first result\'s bytes', async () => {
  const member = new Member();
  const first = new Map<string, { bytes: Uint8Array; result: Uint8Array }>();
  const write = (requestId: string, command: RegistryCommand): Uint8Array => {
    const bytes = encodeCommand({ requestId, command });
    const result = member.applyBytes(bytes);
    first.set(requestId, { bytes, result });
    return result;
  };
  const retry = (requestId: string, what: string): void => {
    const known = first.get(requestId);
    assert.ok(known !== undefined);
    assert.deepEqual(Buffer.from(member.applyBytes(known.bytes)), Buffer.from(known.result), `${what}: the retry of ${requestId} gets its first result`);
    assert.equal(member.lastWrites, 0, `${what}: a retry writes nothing`);
  };
  const stored = (requestId: string): Record<string, unknown> => decodeMessage('RememberedRequest', member.keyspace.values.get(requestStorageKey(requestId)) ?? new Uint8Array());
  write('r1', register(orders, values('10.0.0.1', { metadata: { zone: 'a' } })));
  // Kept as a reference: no copy of the instance in the table.
  assert.equal(stored('r1')['result'], undefined);
  assert.ok(stored('r1')['instanceRef'] !== undefined);
  retry('r1', 'unchanged');
  // The same instance again (nothing changes): a second reference to the same instance.
  write('r2', register(orders, values('10.0.0.1', { metadata: { zone: 'a' } })));
  retry('r1', 'after an identical register');
  retry('r2', 'after an identical register');
  // A change: both references are written in full first, and keep their results.
  write('r3', register(orders, values('10.0.0.1', { metadata: { zone: 'b' } })));
  assert.ok(stored('r1')['result'] instanceof Uint8Array && stored('r1')['instanceRef'] === undefined, 'r1 is kept in full now');
  assert.ok(stored('r2')['result'] instanceof Uint8Array);
  retry('r1', 'after a change');
  retry('r2', 'after a change');
  retry('r3', 'after a change');
  // Health set, patch, then deregistration: each retry still gets its own first result.
  write('r4', { type: 'setInstanceHealth', key: orders, address: address('10.0.0.1'), healthy: false });
  write('r5', { type: 'patchInstance', key: orders, address: address('10.0.0.1'), weight: 7 });
  retry('r3', 'after a health set and a patch');
  retry('r4', 'after a patch');
  write('r6', { type: 'deregisterInstance', key: orders, address: address('10.0.0.1') });
  for (const id of ['r1', 'r2', 'r3', 'r4', 'r5', 'r6']) retry(id, 'after the deregistration');
  // The table, restored from a snapshot or reloaded from the keyspace, answers the same.
  write('r7', register(users, values('10.0.0.9')));
  const restored = new RegistryStateMachine();
  restored.restore(member.machine.snapshot(), new MemoryKeyspace().batch());
  const reloaded = await reload(member);
  let index = member.index;
  for (const [id, known] of first) {
    index += 1;
    for (const [name, machine] of [['restored', restored], ['reloaded', reloaded]] as const) {
      assert.deepEqual(Buffer.from(machine.apply(known.bytes, index, 1, new MemoryKeyspace().batch())), Buffer.from(known.result), `${name}: ${id}`);
    }
  }
});

test('request ids: references keep the table small; a format 1 snapshot (results in full) still loads; a reference to a missing instance is CAIRN_STORAGE_CORRUPT', async () => {
  const isCorrupt = (error: unknown): boolean => error instanceof CairnError && error.code === 'CAIRN_STORAGE_CORRUPT';
  const member = new Member();
  for (let i = 0; i < 500; i++) member.run(register(orders, values(`10.1.${i >> 8}.${i & 255}`, { metadata: { zone: 'eu-west-1a', rack: `r${i % 7}`, owner: 'payments-team' } })));
  const table = [...member.keyspace.values].filter(([key]) => key.startsWith(requestStorageKey('')));
  const perRequest = table.reduce((sum, [, value]) => sum + value.length, 0) / table.length;
  // The instance record alone is ~150 bytes here; a reference is the ids, the digest and the names.
  assert.ok(perRequest < 130, `${perRequest.toFixed(0)} bytes per remembered request`);
  // Format 1: the result in full, read as it was written.
  const command = encodeCommand({ requestId: 'old-1', command: create(users) });
  const digest = new Uint8Array(createHash('sha256').update(command).digest());
  const legacy = encodeMessage('RegistrySnapshot', { formatVersion: 1, requests: [{ requestId: 'old-1', index: 3, digest, result: Uint8Array.from([1, 2, 3]) }] });
  const machine = new RegistryStateMachine();
  machine.restore(legacy, new MemoryKeyspace().batch());
  assert.deepEqual(Buffer.from(machine.apply(command, 4, 1, new MemoryKeyspace().batch())), Buffer.from([1, 2, 3]));
  // A reference to an instance the snapshot (or keyspace) does not hold.
  const dangling = encodeMessage('RegistrySnapshot', {
    formatVersion: 2,
    requests: [{ requestId: 'r', index: 3, digest, instanceRef: { instance: instanceStorageKey(orders, address('10.0.0.1')), revision: 3 } }],
  });
  assert.throws(() => new RegistryStateMachine().restore(dangling, new MemoryKeyspace().batch()), isCorrupt);
  // A reference that is not an instance's key as the keyspace writes it (a leading zero in the port).
  const source = new Member();
  source.runAll([register(orders, values('10.0.0.1'))]);
  const snapshotWith = (instance: string): Uint8Array => Uint8Array.from([
    ...source.machine.snapshot(),
    ...encodeMessage('RegistrySnapshot', { requests: [{ requestId: 'x', index: 9, digest, instanceRef: { instance, revision: 1 } }] }),
  ]);
  assert.doesNotThrow(() => new RegistryStateMachine().restore(snapshotWith(instanceStorageKey(orders, address('10.0.0.1'))), new MemoryKeyspace().batch()));
  assert.throws(() => new RegistryStateMachine().restore(snapshotWith(`${instanceStorageKey(orders, { cluster: 'DEFAULT', ip: '10.0.0.1', port: 0 }).slice(0, -1)}08080`), new MemoryKeyspace().batch()), isCorrupt);
  assert.throws(() => new RegistryStateMachine().restore(snapshotWith(serviceStorageKey(orders)), new MemoryKeyspace().batch()), isCorrupt);
  const keyspace = new MemoryKeyspace();
  for (const [key, value] of member.keyspace.values) if (!key.startsWith('ins')) keyspace.values.set(key, value);
  await assert.rejects(new RegistryStateMachine().load(keyspace.entries()), isCorrupt);
});

test('randomized: 2500 random commands with retries; every retry of a remembered request gets its first result\'s bytes, also through a snapshot and a reload', async () => {
  const limits = { instancesPerServiceMax: 6, clustersPerServiceMax: 2, servicesPerNamespaceMax: 10, requestIdsRememberedMax: 40 };
  const random = prng(2026_1122);
  let member = new Member(limits);
  const shadow = new Member(limits);
  const twin = new Member(limits);
  const first = new Map<string, { bytes: Uint8Array; result: Uint8Array }>();
  const recent: string[] = [];
  let retries = 0;
  for (let step = 0; step < 2500; step += 1) {
    if (recent.length > 0 && random() < 0.25) {
      // A retry of one of the last 30 new requests: still remembered (the table holds 40).
      const id = recent[Math.floor(random() * recent.length)] as string;
      const known = first.get(id);
      assert.ok(known !== undefined);
      assert.deepEqual(Buffer.from(member.applyBytes(known.bytes)), Buffer.from(known.result), `step ${step}: retry of ${id}`);
      retries += 1;
    } else {
      const id = `id-${step}`;
      const bytes = encodeCommand({ requestId: id, command: randomCommand(random) });
      first.set(id, { bytes, result: member.applyBytes(bytes) });
      // Applied where nobody waited (a follower), a retry there must still get the bytes its first result had
      // where somebody did (the twin, at the same indexes).
      const wantedFirst = twin.applyBytes(bytes);
      shadow.applyBytes(bytes, false);
      assert.deepEqual(Buffer.from(shadow.applyBytes(bytes)), Buffer.from(wantedFirst), `step ${step}: shadow retry of ${id}`);
      assert.deepEqual(Buffer.from(twin.applyBytes(bytes)), Buffer.from(wantedFirst), `step ${step}: twin retry of ${id}`);
      recent.push(id);
      if (recent.length > 30) recent.shift();
    }
    if (step === 1200) member = restoredFrom(member, limits);
  }
  assert.ok(retries > 500, `${retries} retries`);
  const reloaded = await reload(member, limits);
  let index = member.index;
  for (const id of recent) {
    const known = first.get(id);
    assert.ok(known !== undefined);
    assert.deepEqual(Buffer.from(reloaded.apply(known.bytes, ++index, 1, new MemoryKeyspace().batch())), Buffer.from(known.result), `reloaded: ${id}`);
  }
});

test('request ids: a reference holds the stored service\'s key and the stored instance, not copies (after apply, a snapshot restore and a keyspace reload)', async () => {
  const member = new Member();
  for (let i = 0; i < 40; i++) member.run(register(i % 2 === 0 ? orders : users, values(`10.2.0.${i}`, { metadata: { zone: 'a' } })));
  const restored = new RegistryStateMachine();
  restored.restore(member.machine.snapshot(), new MemoryKeyspace().batch());
  const reloaded = await reload(member);
  for (const [name, machine] of [['applied', member.machine], ['restored', restored], ['reloaded', reloaded]] as const) {
    const state = (machine as unknown as { readonly state: RegistryState }).state;
    let references = 0;
    for (const request of state.requests.values()) {
      const ref = request.instanceRef;
      if (ref === null) continue;
      references += 1;
      const service = state.findService(ref.key);
      assert.ok(service !== undefined, `${name}: ${request.requestId} names a stored service`);
      assert.equal(ref.key, service.settings.key, `${name}: ${request.requestId} holds the service's own key object`);
      assert.equal(ref.address, service.instances.get(addressKey(ref.address)), `${name}: ${request.requestId} holds the stored instance itself`);
      assert.equal(request.result, EMPTY_RESULT, `${name}: ${request.requestId} shares the empty result`);
      assert.equal(request.digest.length, 32, `${name}: ${request.requestId} digest is 32 latin1 characters`);
    }
    assert.equal(references, 40, `${name}: every registration is remembered by reference`);
  }
});
