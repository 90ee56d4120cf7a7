// model: the naming data model of DESIGN.md "Data model" (Nacos's): namespace > group > service > cluster > instance
// ip:port, plus the service definition and the per-cluster health-checker configuration.
//
// This file and validation.ts are leaves: they import only src/errors.ts, so every registry (cp/ today, ap/ later)
// shares one vocabulary; the rest of naming/ (queries, the NamingService façade) sits above the registries.
// Every value here is plain, immutable data: registries copy on write and hand out frozen objects.

import { CairnError } from '../errors.ts';

/** DEFAULT_NAMESPACE is Nacos's default namespace id. */
export const DEFAULT_NAMESPACE = 'public';
/** DEFAULT_GROUP is Nacos's default group. */
export const DEFAULT_GROUP = 'DEFAULT_GROUP';
/** DEFAULT_CLUSTER is Nacos's default cluster name. */
export const DEFAULT_CLUSTER = 'DEFAULT';
/** GROUP_SEPARATOR joins a group and a service into Nacos's grouped name `group@@service`. */
export const GROUP_SEPARATOR = '@@';
/** DEFAULT_WEIGHT is an instance's weight when the client gives none (Nacos: 1.0). */
export const DEFAULT_WEIGHT = 1;
/** WEIGHT_MAX is the largest instance weight (Nacos's MAX_WEIGHT_VALUE). */
export const WEIGHT_MAX = 10_000;
/** DEFAULT_CHECK_PORT is a cluster's probe port when the instance's own port is not used (Nacos: 80). */
export const DEFAULT_CHECK_PORT = 80;
/** DEFAULT_HTTP_EXPECTED_RESPONSE_CODE is the status an HTTP probe expects by default (Nacos: 200). */
export const DEFAULT_HTTP_EXPECTED_RESPONSE_CODE = 200;
/** MYSQL_READ_ONLY_SQL is the query whose `read_only = ON` answer marks a MySQL replica unhealthy (Nacos's convention). */
export const MYSQL_READ_ONLY_SQL = "show global variables where variable_name='read_only'";

/** Metadata is a string map attached to an instance, a service or a cluster (bounded by limits.metadataCharsMax). */
export type Metadata = Readonly<Record<string, string>>;

/** ServiceKey names one service: namespace id, group and the bare service name (never the grouped name). */
export interface ServiceKey {
  readonly namespace: string;
  readonly group: string;
  readonly service: string;
}

/** InstanceKey names one instance: its service, cluster and address (Nacos's identity for updates, NACOS.md §5.1). */
export interface InstanceKey extends ServiceKey {
  readonly cluster: string;
  readonly ip: string;
  readonly port: number;
}

/** Instance is one registered endpoint of a service. Invariant: 0 <= weight <= WEIGHT_MAX, 0 <= port <= 65535. */
export interface Instance {
  readonly ip: string;
  readonly port: number;
  readonly cluster: string;
  readonly weight: number;
  readonly enabled: boolean;
  readonly healthy: boolean;
  /** ephemeral instances live on the AP path and expire without beats; persistent ones are Raft commands. */
  readonly ephemeral: boolean;
  readonly metadata: Metadata;
  /** instanceId is Nacos's default ("simple") id `ip#port#cluster#group@@service`. */
  readonly instanceId: string;
  /**
   * version counts the client writes that changed a persistent instance (1 at registration; the probes' verdicts do
   * not count; it starts again after a deregistration): what compare-and-set writes compare. Absent for ephemeral
   * instances and for values not read from the registry.
   */
  readonly version?: number;
}

/** ServiceKind is the kind of instance a service holds: a service never holds both (Nacos 2's rule). */
export type ServiceKind = 'persistent' | 'ephemeral';

/** Selector is Nacos's service selector: none, or a label expression (`CONSUMER.label.k = PROVIDER.label.k & ...`). */
export type Selector = { readonly type: 'none' } | { readonly type: 'label'; readonly expression: string };

/** ServiceDefinition is a service's own settings and its revision. Invariant: 0 <= protectThreshold <= 1. */
export interface ServiceDefinition {
  readonly namespace: string;
  readonly group: string;
  readonly name: string;
  readonly protectThreshold: number;
  readonly metadata: Metadata;
  readonly selector: Selector;
  /** kind is the service's declared kind, else the kind of the instances it holds, else null (empty, undeclared). */
  readonly kind: ServiceKind | null;
  /** revision is the log index of the service's last change (definition, clusters or instances); it only grows. */
  readonly revision: number;
}

/** HealthCheckerType names the probe kinds of NACOS.md §4.1. */
export type HealthCheckerType = 'NONE' | 'TCP' | 'HTTP' | 'MYSQL';

/** HealthChecker is a cluster's active health check of its persistent instances (NACOS.md §4.1; default TCP). */
export type HealthChecker =
  | { readonly type: 'NONE' }
  | ({ readonly type: 'TCP' } & FixedInterval)
  | ({
      readonly type: 'HTTP';
      /** path is requested with GET; '' means '/'. */
      readonly path: string;
      /** headers are sent with every probe (Nacos's `k:v|k2:v2` string, parsed). */
      readonly headers: Metadata;
      /** expectedResponseCode is the status that counts as healthy (Nacos ignores it; Cairn honours it). */
      readonly expectedResponseCode: number;
    } & FixedInterval)
  | ({
      readonly type: 'MYSQL';
      readonly user: string;
      /** password is a secret: stored and replicated, never returned by user-facing reads (see RedactedHealthChecker). */
      readonly password: string;
      readonly sql: string;
    } & FixedInterval);

/**
 * FixedInterval is Cairn's per-cluster probe interval (Consul's `interval`; Nacos has none): when set, every
 * instance of the cluster is probed every `intervalMs` (jittered), within limits.probeIntervalMsMin..Max; when
 * absent, the interval adapts to the response time within the checker type's bounds, as Nacos does.
 */
export interface FixedInterval {
  readonly intervalMs?: number;
}

/** RedactedHealthChecker is a HealthChecker as users see it: the MySQL password replaced by whether one is set. */
export type RedactedHealthChecker =
  | Exclude<HealthChecker, { readonly type: 'MYSQL' }>
  | ({ readonly type: 'MYSQL'; readonly user: string; readonly passwordSet: boolean; readonly sql: string } & FixedInterval);

/** ClusterConfig is one cluster's settings: how its persistent instances are probed, and its metadata. */
export interface ClusterConfig {
  readonly name: string;
  readonly healthChecker: HealthChecker;
  /** checkPort is probed when useInstancePort4Check is false (MySQL probes always use the instance port). */
  readonly checkPort: number;
  readonly useInstancePort4Check: boolean;
  readonly metadata: Metadata;
}

/** ClusterView is a ClusterConfig with its secrets redacted: what reads meant for users return. */
export interface ClusterView {
  readonly name: string;
  readonly healthChecker: RedactedHealthChecker;
  readonly checkPort: number;
  readonly useInstancePort4Check: boolean;
  readonly metadata: Metadata;
}

/** ServiceDetail is a service with its clusters: every configured cluster and every cluster holding an instance. */
export interface ServiceDetail {
  readonly service: ServiceDefinition;
  readonly clusters: readonly ClusterView[];
}

/** defaultHealthChecker is a cluster's checker until one is configured: TCP on the instance's port, as in Nacos. */
export const defaultHealthChecker: HealthChecker = Object.freeze({ type: 'TCP' });

/** defaultClusterConfig returns the settings of a cluster nobody configured (Nacos's defaults, NACOS.md §4.2). */
export function defaultClusterConfig(name: string): ClusterConfig {
  return Object.freeze({
    name,
    healthChecker: defaultHealthChecker,
    checkPort: DEFAULT_CHECK_PORT,
    useInstancePort4Check: true,
    metadata: Object.freeze({}),
  });
}

/** redactHealthChecker returns the checker without its secret (the MySQL password). */
export function redactHealthChecker(checker: HealthChecker): RedactedHealthChecker {
  if (checker.type !== 'MYSQL') return checker;
  const redacted = { type: 'MYSQL' as const, user: checker.user, passwordSet: checker.password !== '', sql: checker.sql };
  return Object.freeze(checker.intervalMs === undefined ? redacted : { ...redacted, intervalMs: checker.intervalMs });
}

/** redactCluster returns the user-facing view of a cluster configuration. */
export function redactCluster(config: ClusterConfig): ClusterView {
  return Object.freeze({ ...config, healthChecker: redactHealthChecker(config.healthChecker) });
}

/** groupedName returns Nacos's grouped service name `group@@service`. */
export function groupedName(group: string, service: string): string {
  return `${group}${GROUP_SEPARATOR}${service}`;
}

/** GroupedName is a grouped name split into its group and bare service name. */
export interface GroupedName {
  readonly group: string;
  readonly service: string;
}

/**
 * parseGroupedName splits a `serviceName` parameter by Nacos's rules (NACOS.md §1.1): a name without `@@` belongs to
 * `group` (default DEFAULT_GROUP); a name with `@@` carries its own group and `group` is ignored. Unlike Java's
 * split, a name with more than one `@@`, or an empty part, is refused rather than silently truncated.
 */
export function parseGroupedName(serviceName: string, group: string = DEFAULT_GROUP): GroupedName {
  const at = serviceName.indexOf(GROUP_SEPARATOR);
  if (at < 0) return { group, service: serviceName };
  const groupPart = serviceName.slice(0, at);
  const servicePart = serviceName.slice(at + GROUP_SEPARATOR.length);
  if (servicePart === '' || servicePart.includes(GROUP_SEPARATOR)) {
    throw new CairnError('CAIRN_INVALID_ARGUMENT',
      "Param 'serviceName' is illegal, it should be format as 'groupName@@serviceName'", { details: { parameter: 'serviceName' } });
  }
  if (groupPart === '') {
    throw new CairnError('CAIRN_INVALID_ARGUMENT', "Param 'serviceName' is illegal, groupName can't be empty",
      { details: { parameter: 'serviceName' } });
  }
  return { group: groupPart, service: servicePart };
}

/** instanceId returns Nacos's default instance id `ip#port#cluster#group@@service`. */
export function instanceId(ip: string, port: number, cluster: string, group: string, service: string): string {
  // join builds one flat string; a template literal would leave a rope of cons cells, kept as long as the instance.
  return [ip, port, cluster, groupedName(group, service)].join('#');
}

/** sameServiceKey tells whether two keys name the same service. */
export function sameServiceKey(a: ServiceKey, b: ServiceKey): boolean {
  return a.namespace === b.namespace && a.group === b.group && a.service === b.service;
}
