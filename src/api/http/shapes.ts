// shapes: the JSON bodies of the Nacos routes, field by field and in Nacos's field order (reference/NACOS.md §1.2,
// §1.3, §1.5, §1.6, §1.9), built from the naming model. Pure functions, so tests pin each shape directly too.
//
// Numbers: Nacos's Java doubles (weight 1.0, protectThreshold 0.0) serialise as JSON numbers; JavaScript writes
// them without a fraction (1, 0). Every Nacos client parses either form (Jackson and fastjson read 1 as 1.0, the npm
// client uses the number as is), so nothing is lost.

import type { ClusterView, Instance, Metadata, RedactedHealthChecker, Selector, ServiceDetail } from '../../naming/model.ts';
import { groupedName } from '../../naming/model.ts';
import type { InstanceList } from '../../naming/naming-service.ts';
import { limits } from '../../limits.ts';

/** defaultCacheMillis is how long a v1 client may cache an instance list (Nacos's defaultCacheMillis). */
export const defaultCacheMillis = 3000;
/** v2CacheMillis is the cacheMillis of v2 instance lists (Nacos 2.x answers 10000). */
export const v2CacheMillis = 10_000;

/** NacosV1Host is one entry of `hosts` in a v1 instance list. */
export interface NacosV1Host {
  readonly ip: string;
  readonly port: number;
  readonly valid: boolean;
  readonly healthy: boolean;
  readonly marked: boolean;
  readonly instanceId: string;
  readonly metadata: Metadata;
  readonly enabled: boolean;
  readonly weight: number;
  readonly clusterName: string;
  readonly serviceName: string;
  readonly ephemeral: boolean;
}

/** ListContext is what a list body echoes from the request and how it names the service. */
export interface ListContext {
  readonly group: string;
  readonly service: string;
  /** clusters is the `clusters` parameter as sent ('' when absent). */
  readonly clusters: string;
  readonly env: string;
  /** groupedForClient: Java clients >= 1.0 (and the npm client) get the grouped name in `dom` and hosts' serviceName. */
  readonly groupedForClient: boolean;
  readonly lastRefTime: number;
}

/** v1Host renders one instance as an entry of a v1 instance list (`valid` duplicates `healthy`; `marked` is always false). */
export function v1Host(instance: Instance, serviceName: string): NacosV1Host {
  return {
    ip: instance.ip,
    port: instance.port,
    valid: instance.healthy,
    healthy: instance.healthy,
    marked: false,
    instanceId: instance.instanceId,
    metadata: instance.metadata,
    enabled: instance.enabled,
    weight: instance.weight,
    clusterName: instance.cluster,
    serviceName,
    ephemeral: instance.ephemeral,
  };
}

/** NacosV1UnknownServiceList is Nacos's answer for a service that does not exist: 200 with no hosts. */
export interface NacosV1UnknownServiceList {
  readonly name: string;
  readonly clusters: string;
  readonly cacheMillis: number;
  readonly hosts: readonly NacosV1Host[];
}

/** NacosV1InstanceList is the body of GET /nacos/v1/ns/instance/list for an existing service. */
export interface NacosV1InstanceList {
  readonly hosts: readonly NacosV1Host[];
  readonly dom: string;
  readonly name: string;
  readonly cacheMillis: number;
  readonly lastRefTime: number;
  readonly checksum: string;
  readonly useSpecifiedURL: boolean;
  readonly clusters: string;
  readonly env: string;
  readonly metadata: Metadata;
  readonly reachProtectionThreshold: boolean;
}

/** v1InstanceList renders a v1 instance list: Nacos's short form for an unknown service, else the full one. */
export function v1InstanceList(list: InstanceList, context: ListContext, withHosts = true): NacosV1InstanceList | NacosV1UnknownServiceList {
  const grouped = groupedName(context.group, context.service);
  if (list.service === null) return { name: grouped, clusters: context.clusters, cacheMillis: defaultCacheMillis, hosts: [] };
  const clientName = context.groupedForClient ? grouped : context.service;
  return {
    hosts: withHosts ? list.hosts.map((instance) => v1Host(instance, clientName)) : [],
    dom: clientName,
    name: grouped,
    cacheMillis: defaultCacheMillis,
    lastRefTime: context.lastRefTime,
    checksum: list.checksum,
    useSpecifiedURL: false,
    clusters: context.clusters,
    env: context.env,
    metadata: list.service.metadata,
    reachProtectionThreshold: list.reachProtectionThreshold,
  };
}

// The bodies of instance lists as JSON text. Clients poll their lists every few seconds, and a list's `hosts` is
// most of its bytes and most of the work of answering it (JSON.stringify of a 100-instance list was ~47% of a
// member's CPU in bench/'s HTTP list cell). A list object (naming-service.ts) is immutable and memoized while its
// inputs stay the same, so the hosts' JSON is kept beside it, per list and rendering name; the few fields that
// change per request (lastRefTime, the echoed clusters and env) are rendered each time around it. The text equals
// JSON.stringify of v1InstanceList / v2ServiceInfo (test/api/http/list-json.test.ts), keys in the same order.
// Bounded: one entry per live list object, held weakly, so it goes when naming-service's bounded list cache drops
// the list.

/** jsonContentType is the content type fastify gives a JSON body; list bodies sent as text carry it too. */
export const jsonContentType = 'application/json; charset=utf-8';

/** v2SuccessJson is JSON.stringify(v2Success(data)) (errors.ts) for data already rendered as JSON text. */
export function v2SuccessJson(dataJson: string): string {
  return `{"code":0,"message":"success","data":${dataJson}}`;
}

interface HostsJson {
  readonly name: string;
  readonly json: string;
}

const v1HostsJson = new WeakMap<InstanceList, HostsJson>();
const v2HostsJson = new WeakMap<InstanceList, HostsJson>();

function hostsJsonOf(cache: WeakMap<InstanceList, HostsJson>, list: InstanceList, name: string, render: (instance: Instance, name: string) => object): string {
  const known = cache.get(list);
  if (known !== undefined && known.name === name) return known.json;
  const json = JSON.stringify(list.hosts.map((instance) => render(instance, name)));
  cache.set(list, { name, json });
  return json;
}

/** v1InstanceListJson is JSON.stringify(v1InstanceList(list, context)), with the hosts' text reused while the list is. */
export function v1InstanceListJson(list: InstanceList, context: ListContext): string {
  if (list.service === null || list.hosts.length === 0) return JSON.stringify(v1InstanceList(list, context));
  const { hosts: _hosts, ...rest } = v1InstanceList(list, context, false) as NacosV1InstanceList;
  // `hosts` is v1InstanceList's first key; `rest` keeps the others in their order and is never empty.
  return `{"hosts":${hostsJsonOf(v1HostsJson, list, rest.dom, v1Host)},${JSON.stringify(rest).slice(1)}`;
}

/** v2ServiceInfoJson is JSON.stringify(v2ServiceInfo(list, context)), with the hosts' text reused while the list is. */
export function v2ServiceInfoJson(list: InstanceList, context: ListContext): string {
  const info = v2ServiceInfo(list, context, false);
  if (list.hosts.length === 0) return JSON.stringify(info);
  const { name, groupName, clusters, cacheMillis, hosts: _hosts, ...after } = info;
  // Nacos's order: name, groupName, clusters, cacheMillis, hosts, then the rest (v2ServiceInfo).
  const before = JSON.stringify({ name, groupName, clusters, cacheMillis });
  return `${before.slice(0, -1)},"hosts":${hostsJsonOf(v2HostsJson, list, name, v2Host)},${JSON.stringify(after).slice(1)}`;
}

/** NacosV2Host is one entry of `hosts` in a v2 instance list (Nacos 2.x's Instance). */
export interface NacosV2Host {
  readonly instanceId: string;
  readonly ip: string;
  readonly port: number;
  readonly weight: number;
  readonly healthy: boolean;
  readonly enabled: boolean;
  readonly ephemeral: boolean;
  readonly clusterName: string;
  readonly serviceName: string;
  readonly metadata: Metadata;
  readonly instanceHeartBeatInterval: number;
  readonly instanceHeartBeatTimeOut: number;
  readonly ipDeleteTimeout: number;
  readonly instanceIdGenerator: string;
}

/** preservedMs reads a `preserved.*` duration from instance metadata (Nacos's per-instance override), else the default. */
function preservedMs(metadata: Metadata, key: string, fallback: number): number {
  const text = metadata[key];
  const value = text !== undefined && /^\d{1,9}$/.test(text) ? Number(text) : Number.NaN;
  return Number.isFinite(value) ? value : fallback;
}

/** v2Host renders one instance as Nacos 2.x does, with its heart-beat settings. */
export function v2Host(instance: Instance, grouped: string): NacosV2Host {
  const metadata = instance.metadata;
  return {
    instanceId: instance.instanceId,
    ip: instance.ip,
    port: instance.port,
    weight: instance.weight,
    healthy: instance.healthy,
    enabled: instance.enabled,
    ephemeral: instance.ephemeral,
    clusterName: instance.cluster,
    serviceName: grouped,
    metadata,
    instanceHeartBeatInterval: preservedMs(metadata, 'preserved.heart.beat.interval', limits.beatIntervalMs),
    instanceHeartBeatTimeOut: preservedMs(metadata, 'preserved.heart.beat.timeout', limits.unhealthyAfterMs),
    ipDeleteTimeout: preservedMs(metadata, 'preserved.ip.delete.timeout', limits.removeAfterMs),
    instanceIdGenerator: metadata['preserved.instance.id.generator'] ?? 'simple',
  };
}

/** NacosV2ServiceInfo is the `data` of GET /nacos/v2/ns/instance/list (Nacos 2.x's ServiceInfo). */
export interface NacosV2ServiceInfo {
  readonly name: string;
  readonly groupName: string;
  readonly clusters: string;
  readonly cacheMillis: number;
  readonly hosts: readonly NacosV2Host[];
  readonly lastRefTime: number;
  readonly checksum: string;
  readonly allIPs: boolean;
  readonly reachProtectionThreshold: boolean;
  readonly valid: boolean;
}

/** v2ServiceInfo renders a v2 instance list; an unknown service is an empty list. */
export function v2ServiceInfo(list: InstanceList, context: ListContext, withHosts = true): NacosV2ServiceInfo {
  const grouped = groupedName(context.group, context.service);
  return {
    name: grouped,
    groupName: context.group,
    clusters: context.clusters,
    cacheMillis: v2CacheMillis,
    hosts: withHosts ? list.hosts.map((instance) => v2Host(instance, grouped)) : [],
    lastRefTime: context.lastRefTime,
    checksum: list.checksum,
    allIPs: false,
    reachProtectionThreshold: list.reachProtectionThreshold,
    valid: true,
  };
}

/** NacosInstanceDetail is the body of GET /instance (v1) and the data of GET /v2/ns/instance. */
export interface NacosInstanceDetail {
  readonly service?: string;
  readonly serviceName?: string;
  readonly ip: string;
  readonly port: number;
  readonly clusterName: string;
  readonly weight: number;
  readonly healthy: boolean;
  readonly instanceId: string;
  readonly metadata: Metadata;
}

/** instanceDetail renders one instance as Nacos's detail; v1 names the service `service`, v2 `serviceName`. */
export function instanceDetail(instance: Instance, grouped: string, version: 'v1' | 'v2'): NacosInstanceDetail {
  const rest = {
    ip: instance.ip,
    port: instance.port,
    clusterName: instance.cluster,
    weight: instance.weight,
    healthy: instance.healthy,
    instanceId: instance.instanceId,
    metadata: instance.metadata,
  };
  return version === 'v1' ? { service: grouped, ...rest } : { serviceName: grouped, ...rest };
}

/** NacosSelector is a selector as Nacos serialises it. */
export type NacosSelector = { readonly type: 'none' } | { readonly type: 'label'; readonly expression: string };

/** nacosSelector renders a selector. */
export function nacosSelector(selector: Selector): NacosSelector {
  return selector.type === 'none' ? { type: 'none' } : { type: 'label', expression: selector.expression };
}

/** NacosHealthChecker is a cluster's checker as Nacos serialises it, with the MySQL password withheld; `intervalMs` only when fixed. */
export type NacosHealthChecker = { readonly intervalMs?: number } & (
  | { readonly type: 'NONE' | 'TCP' }
  | { readonly type: 'HTTP'; readonly path: string; readonly headers: string; readonly expectedResponseCode: number }
  | { readonly type: 'MYSQL'; readonly user: string; readonly cmd: string; readonly passwordSet: boolean });

/** nacosHealthChecker renders a checker in Nacos's field names (`headers` as `k:v|k2:v2`, MySQL `cmd`); never the password. */
export function nacosHealthChecker(checker: RedactedHealthChecker): NacosHealthChecker {
  switch (checker.type) {
    case 'NONE':
      return { type: checker.type };
    case 'TCP':
      return { type: checker.type, ...fixedInterval(checker) };
    case 'HTTP': {
      const headers = Object.entries(checker.headers).map(([key, value]) => `${key}:${value}`).join('|');
      return { type: 'HTTP', path: checker.path, headers, expectedResponseCode: checker.expectedResponseCode, ...fixedInterval(checker) };
    }
    case 'MYSQL':
      return { type: 'MYSQL', user: checker.user, cmd: checker.sql, passwordSet: checker.passwordSet, ...fixedInterval(checker) };
  }
}

function fixedInterval(checker: { readonly intervalMs?: number }): { readonly intervalMs?: number } {
  return checker.intervalMs === undefined ? {} : { intervalMs: checker.intervalMs };
}

/** NacosV1ServiceDetail is the body of GET /nacos/v1/ns/service. */
export interface NacosV1ServiceDetail {
  readonly name: string;
  readonly namespaceId: string;
  readonly protectThreshold: number;
  readonly metadata: Metadata;
  readonly selector: NacosSelector;
  readonly groupName: string;
  readonly clusters: ReadonlyArray<{ readonly name: string; readonly healthChecker: NacosHealthChecker; readonly metadata: Metadata }>;
}

/** v1ServiceDetail renders a service as Nacos 1.x's GET /service (bare name, clusters with checker and metadata). */
export function v1ServiceDetail(detail: ServiceDetail): NacosV1ServiceDetail {
  const { service } = detail;
  return {
    name: service.name,
    namespaceId: service.namespace,
    protectThreshold: service.protectThreshold,
    metadata: service.metadata,
    selector: nacosSelector(service.selector),
    groupName: service.group,
    clusters: detail.clusters.map((cluster) => ({
      name: cluster.name,
      healthChecker: nacosHealthChecker(cluster.healthChecker),
      metadata: cluster.metadata,
    })),
  };
}

/** NacosV2ClusterInfo is one cluster of a v2 service detail. */
export interface NacosV2ClusterInfo {
  readonly clusterName: string;
  readonly healthChecker: NacosHealthChecker;
  readonly metadata: Metadata;
  readonly healthyCheckPort: number;
  readonly useInstancePortForCheck: boolean;
}

/** NacosV2ServiceDetail is the data of GET /nacos/v2/ns/service (Nacos 2.x's ServiceDetailInfo). */
export interface NacosV2ServiceDetail {
  readonly namespaceId: string;
  readonly groupName: string;
  readonly serviceName: string;
  readonly clusterMap: Readonly<Record<string, NacosV2ClusterInfo>>;
  readonly metadata: Metadata;
  readonly protectThreshold: number;
  readonly selector: NacosSelector;
  readonly ephemeral: boolean;
}

function v2ClusterInfo(cluster: ClusterView): NacosV2ClusterInfo {
  return {
    clusterName: cluster.name,
    healthChecker: nacosHealthChecker(cluster.healthChecker),
    metadata: cluster.metadata,
    healthyCheckPort: cluster.checkPort,
    useInstancePortForCheck: cluster.useInstancePort4Check,
  };
}

/** v2ServiceDetail renders a service as Nacos 2.x's v2 GET /service; `ephemeral` is false unless it holds ephemeral instances. */
export function v2ServiceDetail(detail: ServiceDetail): NacosV2ServiceDetail {
  const { service } = detail;
  const clusterMap = Object.fromEntries(detail.clusters.map((cluster) => [cluster.name, v2ClusterInfo(cluster)]));
  return {
    namespaceId: service.namespace,
    groupName: service.group,
    serviceName: service.name,
    clusterMap,
    metadata: service.metadata,
    protectThreshold: service.protectThreshold,
    selector: nacosSelector(service.selector),
    ephemeral: service.kind === 'ephemeral',
  };
}
