// Goal: instance-list queries follow Nacos's filtering order (NACOS.md §1.3: clusters -> protect threshold ->
// healthyOnly, disabled always dropped) with Cairn's protect-threshold rule (DESIGN.md: protection only when the
// threshold is above 0 and the healthy share is strictly below it), and the checksum is deterministic.
// Method: a table of (healthy, total, threshold) with the expected verdict under Cairn's rule and under Nacos's
// (`healthy / total <= threshold`), including the cases where they differ (threshold 0 with everything down; share
// exactly at the threshold); then scripted lists exercise the filter order, healthyOnly under protection, disabled
// instances and the clusters filter; the checksum is compared across reorderings and changes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Instance, ServiceDefinition } from '../../src/naming/model.ts';
import { instancesChecksum, normaliseClusters, parseClusters, protectionApplies, selectInstances } from '../../src/naming/query.ts';

function service(protectThreshold: number): ServiceDefinition {
  return { namespace: 'public', group: 'DEFAULT_GROUP', name: 'orders', protectThreshold, metadata: {}, selector: { type: 'none' }, kind: 'persistent', revision: 7 };
}

function instance(ip: string, healthy: boolean, extra: Partial<Instance> = {}): Instance {
  const cluster = extra.cluster ?? 'DEFAULT';
  return {
    ip, port: 8080, cluster, weight: 1, enabled: true, healthy, ephemeral: false, metadata: {},
    instanceId: `${ip}#8080#${cluster}#DEFAULT_GROUP@@orders`, ...extra,
  };
}

// healthy, total, threshold, Cairn protects?, Nacos protects?
const protectTable: ReadonlyArray<readonly [number, number, number, boolean, boolean]> = [
  [0, 3, 0, false, true], // all down, default threshold: Nacos reports all healthy; Cairn reports them down
  [3, 3, 0, false, false],
  [1, 3, 0, false, false],
  [0, 0, 0.5, false, false], // no instances: nothing to protect
  [1, 4, 0.5, true, true],
  [2, 4, 0.5, false, true], // exactly at the threshold: Nacos protects (<=), Cairn does not (<)
  [3, 4, 0.5, false, false],
  [0, 4, 0.5, true, true],
  [4, 4, 1, false, true], // threshold 1: Nacos always protects; Cairn only below 100 % healthy
  [3, 4, 1, true, true],
  [1, 10, 0.1, false, true],
  [0, 10, 0.1, true, true],
];

test('protect threshold: Cairn rule vs Nacos rule', () => {
  for (const [healthy, total, threshold, cairn, nacos] of protectTable) {
    const label = `${healthy}/${total} at ${threshold}`;
    assert.equal(protectionApplies(healthy, total, threshold), cairn, `cairn ${label}`);
    assert.equal(protectionApplies(healthy, total, threshold, 'cairn'), cairn, `cairn ${label}`);
    assert.equal(protectionApplies(healthy, total, threshold, 'nacos'), nacos, `nacos ${label}`);
  }
});

test('an all-unhealthy service with threshold 0 is reported unhealthy (Cairn), not healthy (Nacos)', () => {
  const hosts = [instance('10.0.0.1', false), instance('10.0.0.2', false)];
  const cairn = selectInstances(service(0), hosts, { clusters: [], healthyOnly: false });
  assert.equal(cairn.reachProtectionThreshold, false);
  assert.deepEqual(cairn.hosts.map((h) => h.healthy), [false, false]);
  assert.deepEqual(selectInstances(service(0), hosts, { clusters: [], healthyOnly: true }).hosts, []);
  const nacos = selectInstances(service(0), hosts, { clusters: [], healthyOnly: false }, 'nacos');
  assert.equal(nacos.reachProtectionThreshold, true);
  assert.deepEqual(nacos.hosts.map((h) => h.healthy), [true, true]);
});

test('under protection every instance is returned, reported healthy, and passes healthyOnly', () => {
  const hosts = [instance('10.0.0.3', false), instance('10.0.0.1', true), instance('10.0.0.2', false), instance('10.0.0.4', false)];
  for (const healthyOnly of [false, true]) {
    const result = selectInstances(service(0.5), hosts, { clusters: [], healthyOnly });
    assert.equal(result.reachProtectionThreshold, true);
    assert.deepEqual(result.hosts.map((h) => [h.ip, h.healthy]), [['10.0.0.1', true], ['10.0.0.2', true], ['10.0.0.3', true], ['10.0.0.4', true]]);
    assert.deepEqual([result.healthyCount, result.total], [1, 4]);
  }
  // The input is never mutated: protection returns copies.
  assert.equal(hosts[0]?.healthy, false);
});

test('without protection healthyOnly drops unhealthy instances', () => {
  const hosts = [instance('10.0.0.1', true), instance('10.0.0.2', false), instance('10.0.0.3', true)];
  const result = selectInstances(service(0.2), hosts, { clusters: [], healthyOnly: true });
  assert.equal(result.reachProtectionThreshold, false);
  assert.deepEqual(result.hosts.map((h) => h.ip), ['10.0.0.1', '10.0.0.3']);
});

test('disabled instances are never returned and do not count in the healthy share', () => {
  const hosts = [
    instance('10.0.0.1', true, { enabled: false }),
    instance('10.0.0.2', true, { enabled: false }),
    instance('10.0.0.3', false),
    instance('10.0.0.4', true),
  ];
  // Enabled: 1 healthy of 2 -> share 0.5 < 0.6 protects. (Counting disabled ones, 3/4, would not.)
  const result = selectInstances(service(0.6), hosts, { clusters: [], healthyOnly: false });
  assert.equal(result.reachProtectionThreshold, true);
  assert.deepEqual(result.hosts.map((h) => h.ip), ['10.0.0.3', '10.0.0.4']);
});

test('clusters filter: empty means all; otherwise only the listed clusters, before protection', () => {
  const hosts = [
    instance('10.0.0.1', true, { cluster: 'A' }),
    instance('10.0.0.2', false, { cluster: 'B' }),
    instance('10.0.0.3', false, { cluster: 'B' }),
    instance('10.0.0.4', true, { cluster: 'C' }),
  ];
  assert.equal(selectInstances(service(0.4), hosts, { clusters: [], healthyOnly: false }).hosts.length, 4);
  const onlyB = selectInstances(service(0.4), hosts, { clusters: ['B'], healthyOnly: false });
  assert.equal(onlyB.reachProtectionThreshold, true, 'B alone is 0 % healthy');
  assert.deepEqual(onlyB.hosts.map((h) => h.ip), ['10.0.0.2', '10.0.0.3']);
  const aAndC = selectInstances(service(0.4), hosts, { clusters: ['C', 'A'], healthyOnly: false });
  assert.deepEqual(aAndC.hosts.map((h) => h.ip), ['10.0.0.1', '10.0.0.4']);
  assert.deepEqual(selectInstances(service(0.4), hosts, { clusters: ['Z'], healthyOnly: false }).hosts, []);
});

test('an unknown service selects nothing; results are sorted by cluster, ip, port', () => {
  assert.deepEqual(selectInstances(null, [instance('10.0.0.1', true)], { clusters: [], healthyOnly: false }).hosts, []);
  const hosts = [instance('10.0.0.2', true, { cluster: 'B' }), instance('10.0.0.9', true, { cluster: 'A', port: 90 }), instance('10.0.0.9', true, { cluster: 'A', port: 80 })];
  const result = selectInstances(service(0), hosts, { clusters: [], healthyOnly: false });
  assert.deepEqual(result.hosts.map((h) => `${h.cluster}/${h.ip}:${h.port}`), ['A/10.0.0.9:80', 'A/10.0.0.9:90', 'B/10.0.0.2:8080']);
});

test('clusters parameter: comma list, blanks ignored, sorted, deduplicated, validated', () => {
  assert.deepEqual(parseClusters(''), []);
  assert.deepEqual(parseClusters('b, a,,b'), ['a', 'b']);
  assert.deepEqual(normaliseClusters(['z', 'a', 'z']), ['a', 'z']);
  assert.throws(() => parseClusters('a,b c'), /clusters/);
});

test('checksum: deterministic, independent of metadata key order, sensitive to every reported field', () => {
  const base = [instance('10.0.0.1', true, { metadata: { a: '1', b: '2' } }), instance('10.0.0.2', true)];
  const reordered = [instance('10.0.0.1', true, { metadata: { b: '2', a: '1' } }), instance('10.0.0.2', true)];
  const sum = instancesChecksum(service(0), base);
  assert.match(sum, /^[0-9a-f]{32}$/);
  assert.equal(instancesChecksum(service(0), reordered), sum);
  const variants: Instance[][] = [
    [instance('10.0.0.1', false, { metadata: { a: '1', b: '2' } }), instance('10.0.0.2', true)],
    [instance('10.0.0.1', true, { metadata: { a: '1', b: '3' } }), instance('10.0.0.2', true)],
    [instance('10.0.0.1', true, { metadata: { a: '1', b: '2' }, weight: 2 }), instance('10.0.0.2', true)],
    [instance('10.0.0.1', true, { metadata: { a: '1', b: '2' } })],
  ];
  for (const variant of variants) assert.notEqual(instancesChecksum(service(0), variant), sum);
  assert.notEqual(instancesChecksum(service(0.5), base), sum);
  assert.notEqual(instancesChecksum(null, base), sum);
});
