// query: instance-list queries as pure functions over model objects (NACOS.md §1.3 filtering order, §5.4, §5.5).
//
// Order: clusters filter (empty = all) -> disabled instances dropped -> protect threshold -> healthyOnly.
// The label selector is not applied: Nacos resolves labels through a CMDB, and without one (Cairn has none) it returns
// every instance, which is what skipping it does.
//
// Protect threshold, Cairn's rule (DESIGN.md, docs/nacos-compatibility.md): protection fires only when the threshold
// is above 0 and the healthy share is strictly below it; then every selected instance is returned and reported
// healthy, and reachProtectionThreshold is true. Nacos fires when `healthy / total <= threshold`, so with the default
// threshold 0 a service whose instances are all down is reported entirely healthy; Cairn reports it unhealthy.
// Decisions where Nacos versions differ:
// - The share is computed over the enabled instances of the selected clusters: a disabled instance is never
//   returned, so it should not hold protection off (Nacos 1.4 counts disabled instances too).
// - healthyOnly filters after protection, as Nacos 1.4: protection is the server's decision and does not depend on
//   how a client filters; under protection the returned instances are all reported healthy, so they pass. (Nacos 2.x
//   filters first, which makes protection never fire for healthyOnly clients.)

import { createHash } from 'node:crypto';
import { groupedName, type Instance, type Metadata, type ServiceDefinition } from './model.ts';
import { validateClusterName } from './validation.ts';

/** ProtectionRule chooses the protect-threshold comparison: Cairn's (default) or Nacos's (for comparison and tests). */
export type ProtectionRule = 'cairn' | 'nacos';

/** InstanceSelection is what a list query asks for. */
export interface InstanceSelection {
  /** clusters to include; empty means all. */
  readonly clusters: readonly string[];
  readonly healthyOnly: boolean;
}

/** SelectedInstances is the answer: the hosts to return and whether protection fired. */
export interface SelectedInstances {
  readonly hosts: readonly Instance[];
  readonly reachProtectionThreshold: boolean;
  /** healthyCount and total are the share protection was decided on (enabled instances of the selected clusters). */
  readonly healthyCount: number;
  readonly total: number;
}

/** parseClusters splits Nacos's `clusters` parameter (comma list, blanks ignored), validates, sorts and deduplicates. */
export function parseClusters(text: string, parameter = 'clusters'): readonly string[] {
  const names = text.split(',').map((name) => name.trim()).filter((name) => name !== '');
  return normaliseClusters(names.map((name) => validateClusterName(name, parameter)));
}

/** normaliseClusters sorts and deduplicates a clusters filter. */
export function normaliseClusters(clusters: readonly string[]): readonly string[] {
  return Object.freeze([...new Set(clusters)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** protectionApplies decides whether `healthy` of `total` instances trips `threshold` under `rule`. */
export function protectionApplies(healthy: number, total: number, threshold: number, rule: ProtectionRule = 'cairn'): boolean {
  if (total === 0) return false;
  const share = healthy / total;
  return rule === 'cairn' ? threshold > 0 && share < threshold : share <= threshold;
}

function compareInstances(a: Instance, b: Instance): number {
  if (a.cluster !== b.cluster) return a.cluster < b.cluster ? -1 : 1;
  if (a.ip !== b.ip) return a.ip < b.ip ? -1 : 1;
  return a.port - b.port;
}

/**
 * selectInstances applies a list query to a service's instances (of both kinds); the result is sorted by cluster,
 * ip, port. `service` null (unknown service) selects nothing.
 */
export function selectInstances(
  service: ServiceDefinition | null,
  instances: readonly Instance[],
  selection: InstanceSelection,
  rule: ProtectionRule = 'cairn',
): SelectedInstances {
  if (service === null) return { hosts: [], reachProtectionThreshold: false, healthyCount: 0, total: 0 };
  const clusters = new Set(selection.clusters);
  const enabled = instances
    .filter((instance) => instance.enabled && (clusters.size === 0 || clusters.has(instance.cluster)))
    .sort(compareInstances);
  const healthyCount = enabled.reduce((count, instance) => count + (instance.healthy ? 1 : 0), 0);
  const protect = protectionApplies(healthyCount, enabled.length, service.protectThreshold, rule);
  const reported = protect
    ? enabled.map((instance) => (instance.healthy ? instance : Object.freeze({ ...instance, healthy: true })))
    : enabled;
  const hosts = selection.healthyOnly ? reported.filter((instance) => instance.healthy) : reported;
  return { hosts: Object.freeze(hosts), reachProtectionThreshold: protect, healthyCount, total: enabled.length };
}

function canonical(metadata: Metadata): string {
  return JSON.stringify(Object.entries(metadata).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)));
}

/**
 * instancesChecksum is a deterministic digest (MD5 hex, like Nacos's) of a service's identity and settings and of
 * the hosts as reported: equal answers give equal checksums, any visible change gives another one.
 */
export function instancesChecksum(service: ServiceDefinition | null, hosts: readonly Instance[]): string {
  const hash = createHash('md5');
  if (service !== null) {
    hash.update(`${service.namespace}\n${groupedName(service.group, service.name)}\n${service.protectThreshold}\n`);
    hash.update(`${canonical(service.metadata)}\n${JSON.stringify(service.selector)}\n`);
  }
  for (const host of hosts) {
    hash.update(`${host.ip}:${host.port}_${host.weight}_${host.healthy}_${host.enabled}_${host.ephemeral}_${host.cluster}_${canonical(host.metadata)},`);
  }
  return hash.digest('hex');
}
