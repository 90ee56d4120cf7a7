// Goal: the CP state machine's change hook (RegistryStateMachine.onServiceChanged) fires exactly as subscriptions
// need: once per service an applied command changed (instances, health, settings, clusters, deletion), with the
// entry's log index, after the change is visible to reads; never for a refused command or a write that changes
// nothing; `restored` after a snapshot is installed; and a listener that throws is counted and cannot break apply.
// Method: the real NamingService over the real state machine with a direct proposer (indexes 1, 2, 3, ...), a
// recording listener that reads the state machine from inside the callback.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RegistryChange } from '../../src/cp/registry-state-machine.ts';
import { CairnError } from '../../src/errors.ts';
import { createDirectNaming } from '../support/direct-proposer.ts';

const ctx = { identity: null };
const svc = { namespace: 'public', group: 'DEFAULT_GROUP', service: 'hooked' };

test('one change per changed service, with its index, visible from the listener; none for refusals or no-ops', async () => {
  const { naming, stateMachine } = createDirectNaming();
  const heard: Array<{ change: RegistryChange; hosts: number; exists: boolean }> = [];
  const remove = stateMachine.onServiceChanged((change) => {
    heard.push({ change, hosts: stateMachine.listInstances(svc).length, exists: stateMachine.getService(svc) !== null });
  });
  const spec = { ...svc, ip: '10.0.0.1', port: 80, ephemeral: false };
  const registered = await naming.registerInstance(ctx, spec);
  assert.deepEqual(heard.map((h) => [h.change, h.hosts]), [[{ type: 'service', key: svc, index: registered.revision }, 1]]);
  await naming.registerInstance(ctx, spec); // identical: no change
  assert.equal(heard.length, 1);
  await assert.rejects(naming.updateService(ctx, { ...svc, service: 'absent', protectThreshold: 0.5 }), CairnError);
  assert.equal(heard.length, 1, 'a refused command is not a change');
  await naming.putCluster(ctx, { ...svc, cluster: 'DEFAULT', healthChecker: { type: 'NONE' } });
  await naming.setInstanceHealth(ctx, { ...spec, healthy: false });
  await naming.updateService(ctx, { ...svc, protectThreshold: 0.3 });
  await naming.deregisterInstance(ctx, spec);
  await naming.deleteService(ctx, svc);
  assert.equal(heard.length, 6);
  const last = heard.at(-1);
  assert.equal(last?.exists, false, 'the deletion is visible from the listener');
  const indexes = heard.map((h) => (h.change.type === 'service' ? h.change.index : -1));
  assert.deepEqual(indexes, [...indexes].sort((a, b) => a - b));
  remove();
  await naming.registerInstance(ctx, spec);
  assert.equal(heard.length, 6, 'a removed listener hears nothing');
});

test('a snapshot install is heard as `restored`; a throwing listener is counted and the write still applies', async () => {
  const { naming, stateMachine } = createDirectNaming();
  const other = createDirectNaming();
  await other.naming.registerInstance(ctx, { ...svc, ip: '10.0.0.2', port: 80, ephemeral: false });
  const heard: RegistryChange[] = [];
  stateMachine.onServiceChanged((change) => heard.push(change));
  stateMachine.onServiceChanged(() => {
    throw new Error('broken listener');
  });
  await naming.registerInstance(ctx, { ...svc, ip: '10.0.0.3', port: 80, ephemeral: false });
  assert.equal(stateMachine.listenerFailures, 1);
  assert.equal(stateMachine.listInstances(svc).length, 1, 'the write applied despite the broken listener');
  stateMachine.restore(other.stateMachine.snapshot(), { put: () => undefined, del: () => undefined });
  assert.deepEqual(heard.map((change) => change.type), ['service', 'restored']);
  assert.equal(stateMachine.listenerFailures, 2);
  assert.deepEqual(stateMachine.listInstances(svc).map((instance) => instance.ip), ['10.0.0.2']);
});
