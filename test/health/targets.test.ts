// Goal: pin TargetCatalog (src/health/targets.ts), the walk that turns the registry into this member's probe targets
// at every reconcile: targets exist exactly for the persistent instances of actively checked clusters that this member
// owns, with the probe port Nacos's rules give; a service is rebuilt only when its revision or the assignment moved;
// and a service whose instances all sit in NONE clusters is never walked instance by instance, however large (that
// walk, repeated after every write, grew with the registry and cost the leader 6% of its CPU at 125 000 instances).
// Method: a real RegistryStateMachine behind a DirectProposer (test/support), a view that counts how often each
// service's instances are iterated, and the catalog's collect() called as the health checker calls it.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CpRegistry } from '../../src/cp/cp-registry.ts';
import { RegistryStateMachine, type RegistryView } from '../../src/cp/registry-state-machine.ts';
import { TargetCatalog } from '../../src/health/targets.ts';
import type { HealthChecker, ServiceKey } from '../../src/naming/model.ts';
import { DirectProposer } from '../support/direct-proposer.ts';

const self = '127.0.1.105:18848';
const quiet: HealthChecker = { type: 'NONE' };
const tcp: HealthChecker = { type: 'TCP' };
const key = (service: string): ServiceKey => ({ namespace: 'public', group: 'DEFAULT_GROUP', service });

/** countingView is the machine's view with a count of instance walks per service. */
function countingView(machine: RegistryStateMachine, walks: Map<string, number>): RegistryView {
  return new Proxy(machine as RegistryView, {
    get(target, property, receiver) {
      if (property === 'instancesOf') {
        return (service: ServiceKey) => {
          walks.set(service.service, (walks.get(service.service) ?? 0) + 1);
          return target.instancesOf(service);
        };
      }
      const value: unknown = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

async function setUp(): Promise<{ machine: RegistryStateMachine; cp: CpRegistry }> {
  const machine = new RegistryStateMachine();
  const cp = new CpRegistry(new DirectProposer(machine), machine);
  await cp.assignProbers(1, [self]);
  return { machine, cp };
}

async function fill(cp: CpRegistry, service: string, clusters: Array<[name: string, checker: HealthChecker | null]>, perCluster: number): Promise<void> {
  await cp.createService({ key: key(service), protectThreshold: 0, metadata: {}, selector: { type: 'none' }, kind: null });
  for (const [name, checker] of clusters) {
    if (checker !== null) await cp.putCluster(key(service), { name, healthChecker: checker, checkPort: 3306, useInstancePort4Check: false, metadata: {} });
    for (let i = 0; i < perCluster; i++) {
      await cp.registerInstance(key(service), { cluster: name, ip: `10.0.${i >> 8}.${i & 255}`, port: 8000, weight: 1, enabled: true, healthy: true, metadata: {} });
    }
  }
}

test('targets: only persistent instances of checked clusters, with the cluster\'s probe port; unconfigured clusters get Nacos\'s TCP default', async () => {
  const { machine, cp } = await setUp();
  await fill(cp, 'mixed', [['quiet', quiet], ['checked', tcp], ['unconfigured', null]], 3);
  const targets = new TargetCatalog(self).collect(machine, machine.probeAssignment());
  const seen = [...targets.values()].map((target) => `${target.address.cluster} ${target.host}:${target.port} ${target.checker.type}`).sort();
  assert.deepEqual(seen, [
    'checked 10.0.0.0:3306 TCP', 'checked 10.0.0.1:3306 TCP', 'checked 10.0.0.2:3306 TCP',
    'unconfigured 10.0.0.0:8000 TCP', 'unconfigured 10.0.0.1:8000 TCP', 'unconfigured 10.0.0.2:8000 TCP',
  ]);
  assert.equal(new TargetCatalog('127.0.1.106:18848').collect(machine, machine.probeAssignment()).size, 0, 'a member outside the assignment owns nothing');
});

test('a service whose instances all sit in NONE clusters is never walked; a changed checked service is walked once per revision', async () => {
  const { machine, cp } = await setUp();
  await fill(cp, 'big-quiet', [['a', quiet], ['b', quiet]], 200);
  await fill(cp, 'small-checked', [['DEFAULT', tcp]], 2);
  const walks = new Map<string, number>();
  const view = countingView(machine, walks);
  const catalog = new TargetCatalog(self);
  assert.equal(catalog.collect(view, machine.probeAssignment()).size, 2);
  // Writes to both services move their revisions; each reconcile rebuilds them.
  for (let round = 0; round < 5; round++) {
    await cp.registerInstance(key('big-quiet'), { cluster: 'a', ip: '10.9.9.9', port: 9000 + round, weight: 1, enabled: true, healthy: true, metadata: {} });
    await cp.registerInstance(key('small-checked'), { cluster: 'DEFAULT', ip: '10.9.9.9', port: 9000 + round, weight: 1, enabled: true, healthy: true, metadata: {} });
    assert.equal(catalog.collect(view, machine.probeAssignment()).size, 3 + round);
  }
  catalog.collect(view, machine.probeAssignment());
  assert.equal(walks.get('big-quiet') ?? 0, 0, 'the NONE service was walked instance by instance');
  assert.equal(walks.get('small-checked'), 6, 'once at first and once per changed revision, not when nothing changed');
  // A checker switched on makes the service's instances targets at the next reconcile.
  await cp.putCluster(key('big-quiet'), { name: 'b', healthChecker: tcp, checkPort: 0, useInstancePort4Check: true, metadata: {} });
  assert.equal(catalog.collect(view, machine.probeAssignment()).size, 7 + 200);
  assert.equal(walks.get('big-quiet'), 1);
});
