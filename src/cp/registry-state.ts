// registry-state: the persistent registry's in-memory indexes, shared by apply, restore and load so that all three
// build exactly the same structure. No I/O and no batch here: RegistryStateMachine decides what to write.
//
// Indexes: namespace -> (group, service) -> service -> {configured clusters by name, instances by (cluster, ip, port),
// instance counts per cluster}. Sorted views (services of a namespace, instances of a service) and the frozen
// ServiceDefinition are cached and dropped on every change of what they cover, so reads are cheap and writes O(1).
// Sort orders use plain string comparison (UTF-16 code units), identical on every member.

import { assert } from '../assert.ts';
import {
  defaultClusterConfig,
  type ClusterConfig,
  type Instance,
  type Metadata,
  type Selector,
  type ServiceDefinition,
  type ServiceKey,
  type ServiceKind,
} from '../naming/model.ts';
import { instanceStorageKey, KEY_SEPARATOR } from './keyspace.ts';
import type { InstanceAddress } from './commands.ts';
import type { ProbeAssignment } from './probe-assignment.ts';

/** ServiceSettings are a service's own settings as stored (without clusters and instances). */
export interface ServiceSettings {
  readonly key: ServiceKey;
  readonly protectThreshold: number;
  readonly metadata: Metadata;
  readonly selector: Selector;
  readonly declaredKind: ServiceKind | null;
  readonly revision: number;
}

/** ServiceState is one service in memory. Invariant: instancesPerCluster counts `instances` by cluster, no zero entries. */
export interface ServiceState {
  settings: ServiceSettings;
  readonly clusters: Map<string, ClusterConfig>;
  readonly instances: Map<string, Instance>;
  readonly instancesPerCluster: Map<string, number>;
  cachedDefinition: ServiceDefinition | null;
  cachedInstances: readonly Instance[] | null;
}

/** NamespaceState holds one namespace's services by `group\0service`, and their sorted list (cached). */
export interface NamespaceState {
  readonly services: Map<string, ServiceState>;
  cachedSorted: readonly ServiceState[] | null;
}

/**
 * RememberedRequest is one entry of the request-id table: the first result of a write, by request id. Either
 * `result` holds its bytes, or (`instanceRef` set, `result` empty) the result was an instance payload whose instance
 * is still stored unchanged, and the bytes are rebuilt from it on a retry; before that instance changes, the state
 * machine writes the full result in its place (materialize).
 */
export interface RememberedRequest {
  readonly requestId: string;
  readonly index: number;
  /**
   * digest is the SHA-256 of the command's bytes as a 32-character latin1 string: ~48 bytes of heap, where a
   * Uint8Array of its own cost ~230 (the view, its ArrayBuffer and the backing store), once per remembered request.
   */
  readonly digest: string;
  /** result is empty (EMPTY_RESULT, shared) when instanceRef is set. */
  readonly result: Uint8Array;
  readonly instanceRef: InstanceRef | null;
}

/** EMPTY_RESULT is the one `result` of every remembered request kept as an instance reference (never written to). */
export const EMPTY_RESULT = new Uint8Array(0);

/** SHA256_BYTES is the length of a remembered request's digest. */
export const SHA256_BYTES = 32;

/**
 * InstanceRef names the stored instance a remembered result shows (also by its keyspace key), and that result's
 * revision. `key` and `address` are the stored service's own key and the stored Instance itself where the state
 * builds them (apply, restore), so that a reference adds no copies of the names it points at.
 */
export interface InstanceRef {
  readonly instance: string;
  readonly key: ServiceKey;
  readonly address: InstanceAddress;
  readonly revision: number;
}

/** compareStrings orders strings by UTF-16 code units (deterministic, locale-free). */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** compareInstances orders instances by cluster, ip, then port. */
export function compareInstances(a: InstanceAddress, b: InstanceAddress): number {
  return compareStrings(a.cluster, b.cluster) || compareStrings(a.ip, b.ip) || a.port - b.port;
}

/** addressKey is the in-memory key of an instance inside its service. */
export function addressKey(address: InstanceAddress): string {
  return `${address.cluster}${KEY_SEPARATOR}${address.ip}${KEY_SEPARATOR}${address.port}`;
}

function serviceMapKey(key: ServiceKey): string {
  return `${key.group}${KEY_SEPARATOR}${key.service}`;
}

/** rememberedBytes is what one remembered request counts against limits.requestResultsBytesMax. */
export function rememberedBytes(request: RememberedRequest): number {
  // The id, the digest, the result (or the reference's names) and a fixed allowance for the map entry and the index.
  const ref = request.instanceRef;
  const refBytes = ref === null ? 0 : ref.instance.length + 16;
  return request.requestId.length + request.digest.length + request.result.length + refBytes + 64;
}

// The sorted instance list of a service is kept up to date by copying it with one instance inserted, replaced or
// removed (O(n)) once somebody has read it, instead of being dropped and re-sorted (O(n log n) comparisons) on the
// next read: the health checker reads it after every change, so a write to a large service paid a full sort. Each
// change still gives a new frozen array (readers and the list cache rely on that).

/** positionOf is where `address` is, or would be inserted, in `sorted` (binary search by compareInstances). */
function positionOf(sorted: readonly Instance[], address: InstanceAddress): number {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (compareInstances(sorted[middle] as Instance, address) < 0) low = middle + 1;
    else high = middle;
  }
  return low;
}

function withInstance(sorted: readonly Instance[], instance: Instance, replaces: boolean): readonly Instance[] {
  const at = positionOf(sorted, instance);
  const next = [...sorted];
  next.splice(at, replaces ? 1 : 0, instance);
  return Object.freeze(next);
}

function withoutInstance(sorted: readonly Instance[], address: InstanceAddress): readonly Instance[] {
  const next = [...sorted];
  next.splice(positionOf(sorted, address), 1);
  return Object.freeze(next);
}

/** requestOrderSlackMin: forgotten ids kept at the front of requestOrder before it is compacted (small tables never are). */
const requestOrderSlackMin = 1024;

/** RegistryState is the persistent registry in memory; see the file comment. */
export class RegistryState {
  readonly namespaces = new Map<string, NamespaceState>();
  /** requests is the request-id table in increasing index order (insertion order is index order). */
  readonly requests = new Map<string, RememberedRequest>();
  requestBytes = 0;
  /**
   * requestOrder holds the remembered request ids in index order from requestOrderHead on (those before it were
   * forgotten), so that forgetOldest finds the oldest in O(1). Asking the Map for its first entry walked over the
   * holes its deletions leave at its front until V8 rehashed it: up to ~100 µs per write on every member once the
   * table was full (a 100 000-entry Map, insert and evict: 8-99 µs per pair). Its length stays under twice the
   * table's plus requestOrderSlackMin (forgetOldest drops the forgotten prefix once it is half the array).
   */
  private requestOrder: string[] = [];
  private requestOrderHead = 0;
  /**
   * references lists, per instance (by its keyspace key), the remembered requests whose result is rebuilt from it (instanceRef), oldest
   * first. Bounded by the request table.
   */
  private readonly references = new Map<string, string[]>();
  instanceCount = 0;
  serviceCount = 0;
  /** probeAssignment is the probe assignment in force, or null until a leader committed one. */
  probeAssignment: ProbeAssignment | null = null;

  /** findService returns a service's state, or undefined. */
  findService(key: ServiceKey): ServiceState | undefined {
    return this.namespaces.get(key.namespace)?.services.get(serviceMapKey(key));
  }

  /** addService inserts a new service with no clusters and no instances. */
  addService(settings: ServiceSettings): ServiceState {
    let namespace = this.namespaces.get(settings.key.namespace);
    if (namespace === undefined) {
      namespace = { services: new Map(), cachedSorted: null };
      this.namespaces.set(settings.key.namespace, namespace);
    }
    const mapKey = serviceMapKey(settings.key);
    assert(!namespace.services.has(mapKey), 'addService: the service exists');
    const service: ServiceState = {
      settings, clusters: new Map(), instances: new Map(), instancesPerCluster: new Map(), cachedDefinition: null, cachedInstances: null,
    };
    namespace.services.set(mapKey, service);
    namespace.cachedSorted = null;
    this.serviceCount += 1;
    return service;
  }

  /** removeService deletes an empty service, and its namespace when that was the last service. */
  removeService(service: ServiceState): void {
    assert(service.instances.size === 0, 'removeService: the service has instances');
    const key = service.settings.key;
    const namespace = this.namespaces.get(key.namespace);
    assert(namespace !== undefined && namespace.services.delete(serviceMapKey(key)), 'removeService: unknown service');
    namespace.cachedSorted = null;
    if (namespace.services.size === 0) this.namespaces.delete(key.namespace);
    this.serviceCount -= 1;
  }

  /** setSettings replaces a service's settings (its revision included). */
  setSettings(service: ServiceState, settings: ServiceSettings): void {
    service.settings = settings;
    service.cachedDefinition = null;
  }

  /** setInstance inserts or replaces an instance. */
  setInstance(service: ServiceState, instance: Instance): void {
    const mapKey = addressKey(instance);
    const exists = service.instances.has(mapKey);
    if (!exists) {
      service.instancesPerCluster.set(instance.cluster, (service.instancesPerCluster.get(instance.cluster) ?? 0) + 1);
      this.instanceCount += 1;
    }
    service.instances.set(mapKey, instance);
    if (service.cachedInstances !== null) service.cachedInstances = withInstance(service.cachedInstances, instance, exists);
    service.cachedDefinition = null;
  }

  /** deleteInstance removes an instance; it must exist. */
  deleteInstance(service: ServiceState, address: InstanceAddress): void {
    assert(service.instances.delete(addressKey(address)), 'deleteInstance: unknown instance');
    const remaining = (service.instancesPerCluster.get(address.cluster) ?? 0) - 1;
    assert(remaining >= 0, 'deleteInstance: cluster count below zero');
    if (remaining === 0) service.instancesPerCluster.delete(address.cluster);
    else service.instancesPerCluster.set(address.cluster, remaining);
    this.instanceCount -= 1;
    if (service.cachedInstances !== null) service.cachedInstances = withoutInstance(service.cachedInstances, address);
    service.cachedDefinition = null;
  }

  /** setCluster inserts or replaces a configured cluster. */
  setCluster(service: ServiceState, config: ClusterConfig): void {
    service.clusters.set(config.name, config);
  }

  /** remember appends a request to the table; its index must exceed every remembered index. */
  remember(request: RememberedRequest): void {
    assert(!this.requests.has(request.requestId), 'remember: request id already remembered');
    assert(request.instanceRef === null || request.result.length === 0, 'remember: a reference with a result');
    this.requests.set(request.requestId, request);
    this.requestOrder.push(request.requestId);
    this.requestBytes += rememberedBytes(request);
    const ref = request.instanceRef;
    if (ref === null) return;
    const list = this.references.get(ref.instance);
    if (list === undefined) this.references.set(ref.instance, [request.requestId]);
    else list.push(request.requestId);
  }

  /** forgetOldest removes and returns the remembered request with the lowest index. */
  forgetOldest(): RememberedRequest {
    const requestId = this.requestOrder[this.requestOrderHead];
    assert(requestId !== undefined, 'forgetOldest: the table is empty');
    const oldest = this.requests.get(requestId);
    assert(oldest !== undefined, 'forgetOldest: the order names a request the table does not hold');
    this.requestOrderHead += 1;
    if (this.requestOrderHead >= requestOrderSlackMin && 2 * this.requestOrderHead >= this.requestOrder.length) {
      this.requestOrder = this.requestOrder.slice(this.requestOrderHead);
      this.requestOrderHead = 0;
    }
    this.requests.delete(requestId);
    this.requestBytes -= rememberedBytes(oldest);
    this.unreference(oldest);
    return oldest;
  }

  /** referencing lists the remembered requests whose result is rebuilt from the instance at `key`/`address`. */
  referencing(key: ServiceKey, address: InstanceAddress): readonly string[] {
    return this.references.get(instanceStorageKey(key, address)) ?? [];
  }

  /**
   * materialize replaces a referencing request by the same request holding its full `result` (the instance it named
   * is about to change); its place in the table (index order) is kept.
   */
  materialize(requestId: string, result: Uint8Array): RememberedRequest {
    const request = this.requests.get(requestId);
    assert(request !== undefined && request.instanceRef !== null, 'materialize: not a referencing request');
    const full: RememberedRequest = { ...request, result, instanceRef: null };
    this.unreference(request);
    this.requests.set(requestId, full);
    this.requestBytes += rememberedBytes(full) - rememberedBytes(request);
    return full;
  }

  private unreference(request: RememberedRequest): void {
    const ref = request.instanceRef;
    if (ref === null) return;
    const list = this.references.get(ref.instance);
    assert(list !== undefined, 'unreference: no references to the instance');
    const at = list.indexOf(request.requestId);
    assert(at >= 0, 'unreference: the request is not listed');
    list.splice(at, 1);
    if (list.length === 0) this.references.delete(ref.instance);
  }

  /** sortedServices lists a namespace's services sorted by group, then name. */
  sortedServices(namespaceId: string): readonly ServiceState[] {
    const namespace = this.namespaces.get(namespaceId);
    if (namespace === undefined) return [];
    if (namespace.cachedSorted === null) {
      namespace.cachedSorted = Object.freeze([...namespace.services.values()].sort((a, b) =>
        compareStrings(a.settings.key.group, b.settings.key.group) || compareStrings(a.settings.key.service, b.settings.key.service)));
    }
    return namespace.cachedSorted;
  }

  /** sortedNamespaces lists the namespace ids holding services, sorted. */
  sortedNamespaces(): readonly string[] {
    return [...this.namespaces.keys()].sort(compareStrings);
  }

  /** sortedInstances lists a service's instances sorted by cluster, ip, port. */
  sortedInstances(service: ServiceState): readonly Instance[] {
    if (service.cachedInstances === null) service.cachedInstances = Object.freeze([...service.instances.values()].sort(compareInstances));
    return service.cachedInstances;
  }

  /** sortedClusters lists a service's configured clusters sorted by name. */
  sortedClusters(service: ServiceState): readonly ClusterConfig[] {
    return [...service.clusters.values()].sort((a, b) => compareStrings(a.name, b.name));
  }

  /** clusterNames lists every cluster of a service, configured or holding instances, sorted. */
  clusterNames(service: ServiceState): readonly string[] {
    const names = new Set<string>(service.clusters.keys());
    for (const name of service.instancesPerCluster.keys()) names.add(name);
    return [...names].sort(compareStrings);
  }

  /** clusterCount counts the clusters of a service, configured or holding instances. */
  clusterCount(service: ServiceState): number {
    let count = service.clusters.size;
    for (const name of service.instancesPerCluster.keys()) if (!service.clusters.has(name)) count += 1;
    return count;
  }

  /** hasCluster tells whether a service has a cluster, configured or holding instances. */
  hasCluster(service: ServiceState, name: string): boolean {
    return service.clusters.has(name) || service.instancesPerCluster.has(name);
  }

  /** effectiveCluster returns a cluster's configuration, or Nacos's defaults when nobody configured it. */
  effectiveCluster(service: ServiceState, name: string): ClusterConfig {
    return service.clusters.get(name) ?? defaultClusterConfig(name);
  }

  /** definition returns the frozen ServiceDefinition of a service (cached until it changes). */
  definition(service: ServiceState): ServiceDefinition {
    if (service.cachedDefinition === null) {
      const { key, protectThreshold, metadata, selector, declaredKind, revision } = service.settings;
      const kind = declaredKind ?? (service.instances.size > 0 ? 'persistent' : null);
      service.cachedDefinition = Object.freeze({
        namespace: key.namespace, group: key.group, name: key.service, protectThreshold, metadata, selector, kind, revision,
      });
    }
    return service.cachedDefinition;
  }

  /** maxIndex is the highest log index recorded anywhere in the state (revisions, remembered requests, the probe assignment). */
  maxIndex(): number {
    let max = 0;
    for (const namespace of this.namespaces.values()) {
      for (const service of namespace.services.values()) max = Math.max(max, service.settings.revision);
    }
    for (const request of this.requests.values()) max = Math.max(max, request.index);
    return Math.max(max, this.probeAssignment?.epoch ?? 0);
  }
}
