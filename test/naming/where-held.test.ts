// Goal: a write that names an existing instance without saying its kind (gRPC DeregisterInstance and UpdateInstance,
// HTTP DELETE, PATCH and PUT-as-update without `ephemeral`) reaches the registry that holds the instance, whatever
// this member's own copies say, so its outcome is the same at every member: a deregistration never answers "ok"
// with removed=false while the instance stays, and an update never answers "not found" for an instance that exists.
// An update without `healthy` keeps the instance's health (Nacos 2.x's update changes enabled, weight, metadata).
//
// Method: a NamingService as member B of a cluster, in process. Its AP registry is a fake whose writes land at the
// instance's responsible member R (which holds what was registered) while B's own copy (instancesOf) lags behind,
// empty: what B sees just after a registration made at member A. Its CP registry applies writes at the "leader"
// at once, while B's view of the registry (a second state machine) applies the log only when a linearizable
// barrier asks it to catch up, as a follower that has not applied the latest entries yet. Each scenario writes
// through B and checks the answer and what R or the leader hold afterwards.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CairnError, type CairnErrorCode } from '../../src/errors.ts';
import { CpRegistry } from '../../src/cp/cp-registry.ts';
import { RegistryStateMachine } from '../../src/cp/registry-state-machine.ts';
import { instanceId, type Instance, type InstanceKey, type ServiceKey } from '../../src/naming/model.ts';
import {
  NamingService,
  type BeatResult,
  type DeregisterResult,
  type EphemeralRegistry,
  type EphemeralSession,
  type EphemeralWrite,
  type InstanceWriteResult,
  type RequestContext,
} from '../../src/naming/naming-service.ts';
import type { CommandProposer } from '../../src/replica/proposer.ts';
import { DirectProposer, MemoryKeyspace } from '../support/direct-proposer.ts';

const anonymous: RequestContext = { identity: null };
const cache: ServiceKey = { namespace: 'public', group: 'DEFAULT_GROUP', service: 'cache' };
const orders: ServiceKey = { namespace: 'public', group: 'DEFAULT_GROUP', service: 'orders' };
const x = { ...cache, ip: '10.1.0.1', port: 6379 };
const p = { ...orders, ip: '10.0.0.1', port: 3306 };

async function rejectsWith(promise: Promise<unknown>, code: CairnErrorCode): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof CairnError, String(error));
    assert.equal(error.code, code, error.message);
    return true;
  });
}

function idOf(key: InstanceKey): string {
  return `${key.namespace}/${key.group}/${key.service}/${key.cluster}/${key.ip}:${key.port}`;
}

/**
 * ResponsibleElsewhere is the AP registry as member B sees it: writes go to the responsible member R (`held`), and
 * B's own copy has not received R's sync yet (instancesOf is empty).
 */
class ResponsibleElsewhere implements EphemeralRegistry {
  readonly held = new Map<string, Instance>();
  readonly writes: string[] = [];

  async write(operation: EphemeralWrite): Promise<InstanceWriteResult | DeregisterResult> {
    const key = operation.type === 'register' || operation.type === 'update' ? operation.instance : operation.key;
    const id = idOf({ ...key, cluster: key.cluster });
    this.writes.push(`${operation.type} ${key.service}/${key.ip}:${key.port}`);
    const existing = this.held.get(id);
    switch (operation.type) {
      case 'deregister':
        return { removed: this.held.delete(id), revision: 1 };
      case 'patch': {
        if (existing === undefined) throw new CairnError('CAIRN_INSTANCE_NOT_FOUND', `instance not found: ${id}`);
        const { type: _type, key: _key, ...changes } = operation;
        const instance = { ...existing, ...changes };
        this.held.set(id, instance);
        return { instance, revision: 1 };
      }
      case 'register':
      case 'update': {
        if (operation.type === 'update' && existing === undefined) throw new CairnError('CAIRN_INSTANCE_NOT_FOUND', `instance not found: ${id}`);
        const { group, service, cluster, ip, port, weight, enabled, healthy, metadata } = operation.instance;
        const instance: Instance = { ip, port, cluster, weight, enabled, healthy, ephemeral: true, metadata, instanceId: instanceId(ip, port, cluster, group, service) };
        this.held.set(id, instance);
        return { instance, revision: 1 };
      }
    }
  }

  beat(): Promise<BeatResult> {
    throw new CairnError('CAIRN_NOT_IMPLEMENTED', 'fake');
  }

  openSession(): EphemeralSession {
    throw new CairnError('CAIRN_NOT_IMPLEMENTED', 'fake');
  }

  instancesOf(_service: ServiceKey): readonly Instance[] {
    return [];
  }

  serviceKeys(): readonly ServiceKey[] {
    return [];
  }

  onChange(): () => void {
    return () => undefined;
  }
}

/**
 * LaggingFollower proposes through the leader (a DirectProposer: applied at once) and keeps member B's state machine
 * behind it: B applies the log only at a linearizable barrier, which fails with `barrierError` when set (no quorum).
 */
class LaggingFollower implements CommandProposer {
  readonly leader = new DirectProposer(new RegistryStateMachine());
  readonly follower = new RegistryStateMachine();
  barrierError: CairnError | null = null;
  barriers = 0;
  private applied = 0;
  private readonly keyspace = new MemoryKeyspace();

  propose(command: Uint8Array): Promise<Uint8Array> {
    return this.leader.propose(command);
  }

  async linearizableBarrier(): Promise<void> {
    this.barriers += 1;
    if (this.barrierError !== null) throw this.barrierError;
    for (; this.applied < this.leader.log.length; this.applied++) {
      const batch = this.keyspace.batch();
      this.follower.apply(this.leader.log[this.applied]!, this.applied + 1, 1, batch);
      this.keyspace.commit(batch.writes);
    }
  }
}

function memberB(): { naming: NamingService; ap: ResponsibleElsewhere; cp: LaggingFollower } {
  const ap = new ResponsibleElsewhere();
  const cp = new LaggingFollower();
  return { naming: new NamingService({ cp: new CpRegistry(cp, cp.follower), ephemeral: ap }), ap, cp };
}

test('an ephemeral instance registered elsewhere, not yet synced here: deregistration without `ephemeral` removes it at its responsible member', async () => {
  const { naming, ap, cp } = memberB();
  await naming.registerInstance(anonymous, x);
  assert.equal(ap.held.size, 1);
  // Deciding from this member's (empty) AP copy sent this to the CP registry: removed=false, and X stayed.
  assert.deepEqual(await naming.deregisterInstance(anonymous, x), { removed: true, revision: 1 });
  assert.equal(ap.held.size, 0, 'the responsible member no longer holds it');
  assert.equal(cp.leader.log.length, 0, 'no Raft write');
  assert.equal(cp.barriers, 0, 'found at the responsible member: no linearizable check needed');
});

test('an ephemeral instance registered elsewhere, not yet synced here: PATCH and PUT without `ephemeral` change it there', async () => {
  const { naming, ap } = memberB();
  await naming.registerInstance(anonymous, x);
  // Deciding from this member's AP copy sent this to the CP registry: CAIRN_SERVICE_NOT_FOUND for an existing service.
  const patched = await naming.patchInstance(anonymous, { ...x, weight: 5 });
  assert.deepEqual([patched.instance.weight, patched.instance.ephemeral], [5, true]);
  const updated = await naming.updateInstance(anonymous, { ...x, weight: 7, metadata: { v: '2' } });
  assert.deepEqual([updated.instance.weight, updated.instance.metadata], [7, { v: '2' }]);
  assert.deepEqual(ap.writes, ['register cache/10.1.0.1:6379', 'patch cache/10.1.0.1:6379', 'update cache/10.1.0.1:6379']);
});

test('a persistent instance committed but not applied here yet: the AP miss is followed by a linearizable check, then the CP write', async () => {
  const { naming, ap, cp } = memberB();
  await naming.registerInstance(anonymous, { ...p, ephemeral: false });
  assert.equal(cp.follower.getInstance({ ...p, cluster: 'DEFAULT' }), null, 'member B has not applied it');
  const patched = await naming.patchInstance(anonymous, { ...p, weight: 3 });
  assert.deepEqual([patched.instance.weight, patched.instance.ephemeral], [3, false]);
  assert.equal(cp.barriers, 1);
  const updated = await naming.updateInstance(anonymous, { ...p, weight: 4 });
  assert.deepEqual([updated.instance.weight, updated.instance.ephemeral], [4, false]);
  assert.deepEqual(await naming.deregisterInstance(anonymous, p), { removed: true, revision: cp.leader.log.length });
  assert.equal(cp.leader.stateMachine.getInstance({ ...p, cluster: 'DEFAULT' }), null);
  // Applied here since the first barrier: the later writes went to the CP registry first, the AP registry saw one miss.
  assert.deepEqual(ap.writes, ['patch orders/10.0.0.1:3306']);
});

test('an instance held nowhere: deregistration answers removed=false, an update not found; without a linearizable answer it is refused, never "ok"', async () => {
  const { naming, cp } = memberB();
  assert.equal((await naming.deregisterInstance(anonymous, x)).removed, false);
  await rejectsWith(naming.patchInstance(anonymous, { ...x, weight: 2 }), 'CAIRN_INSTANCE_NOT_FOUND');
  await rejectsWith(naming.updateInstance(anonymous, { ...x, weight: 2 }), 'CAIRN_INSTANCE_NOT_FOUND');
  assert.equal(cp.leader.log.length, 0, 'nothing written to the Raft log');
  cp.barrierError = new CairnError('CAIRN_NO_QUORUM', 'no quorum');
  // A persistent instance may be committed but not applied here: without the check, removed=false would be a guess.
  await rejectsWith(naming.deregisterInstance(anonymous, x), 'CAIRN_NO_QUORUM');
  // The AP path keeps working without a quorum when the responsible member holds the instance.
  await naming.registerInstance(anonymous, x);
  assert.equal((await naming.deregisterInstance(anonymous, x)).removed, true);
});

test('an expected version implies a persistent instance: it goes to the CP registry without a detour', async () => {
  const { naming, ap, cp } = memberB();
  const { instance } = await naming.registerInstance(anonymous, { ...p, ephemeral: false });
  await rejectsWith(naming.deregisterInstance(anonymous, { ...p, expectedVersion: (instance.version ?? 0) + 1 }), 'CAIRN_VERSION_MISMATCH');
  assert.equal((await naming.deregisterInstance(anonymous, { ...p, expectedVersion: instance.version ?? 0 })).removed, true);
  assert.deepEqual(ap.writes, []);
  assert.equal(cp.barriers, 0);
});

test('an update without `healthy` keeps a persistent instance\'s health; one that names it sets it (NONE checker)', async () => {
  const { naming, cp } = memberB();
  await naming.registerInstance(anonymous, { ...p, ephemeral: false });
  await naming.putCluster(anonymous, { ...orders, cluster: 'DEFAULT', healthChecker: { type: 'NONE' } });
  await naming.setInstanceHealth(anonymous, { ...p, healthy: false });
  const kept = await naming.updateInstance(anonymous, { ...p, ephemeral: false, weight: 2 });
  assert.deepEqual([kept.instance.healthy, kept.instance.weight, kept.instance.enabled, kept.instance.metadata], [false, 2, true, {}]);
  const set = await naming.updateInstance(anonymous, { ...p, ephemeral: false, weight: 2, healthy: true });
  assert.equal(set.instance.healthy, true);
  assert.equal(cp.leader.stateMachine.getInstance({ ...p, cluster: 'DEFAULT' })?.healthy, true);
});

/** HeldHere is an AP registry whose writes have reached this member's own copy too (instancesOf lists them). */
class HeldHere extends ResponsibleElsewhere {
  override instancesOf(service: ServiceKey): readonly Instance[] {
    const prefix = `${service.namespace}/${service.group}/${service.service}/`;
    return [...this.held].filter(([id]) => id.startsWith(prefix)).map(([, instance]) => instance);
  }
}

test('a linearizable read of a service held on the AP path is served here without a Raft quorum; of a persistent one it still waits for ReadIndex', async () => {
  // Ephemeral instances are replicated asynchronously: waiting for a quorum made them unreadable in a minority
  // partition (gRPC reads are linearizable by default) without making the read any more linearizable.
  const ap = new HeldHere();
  const cp = new LaggingFollower();
  const naming = new NamingService({ cp: new CpRegistry(cp, cp.follower), ephemeral: ap });
  await naming.registerInstance(anonymous, x);
  await naming.registerInstance(anonymous, { ...p, ephemeral: false });
  await cp.linearizableBarrier();
  cp.barrierError = new CairnError('CAIRN_NO_QUORUM', 'no quorum');
  const barriers = cp.barriers;
  const list = await naming.listInstances(anonymous, { ...cache, consistency: 'linearizable' });
  assert.deepEqual(list.hosts.map((host) => `${host.ip}:${host.port}`), ['10.1.0.1:6379']);
  const one = await naming.getInstance(anonymous, { ...x, cluster: 'DEFAULT' }, { consistency: 'linearizable' });
  assert.equal(one.ip, '10.1.0.1');
  assert.equal(cp.barriers, barriers, 'no barrier for the ephemeral service');
  await rejectsWith(naming.listInstances(anonymous, { ...orders, consistency: 'linearizable' }), 'CAIRN_NO_QUORUM');
  await rejectsWith(naming.listInstances(anonymous, { ...cache, consistency: 'nonsense' as 'local' }), 'CAIRN_INVALID_ARGUMENT');
  assert.equal((await naming.listInstances(anonymous, { ...orders, consistency: 'local' })).hosts.length, 1);
});
