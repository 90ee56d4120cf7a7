// naming-service: the one façade the HTTP and gRPC adapters call. It validates, authorizes, sends each write to the
// registry of the instance's kind (persistent: cp/ through Raft; ephemeral: the EphemeralRegistry of the AP path)
// and merges both registries on reads (DESIGN.md "Layout of src/": naming reads from both, writes to the right one).
//
// Inputs are typed values (adapters parse their wire formats with validation.ts first); every field is validated
// again here, so the gRPC and HTTP adapters cannot diverge. Defaults are Nacos's (NACOS.md §1.2, §1.5).
//
// API (kept stable; adapters depend on it):
//   registerInstance(context, InstanceSpec)          -> InstanceWriteResult   (upsert; auto-creates the service)
//   updateInstance(context, InstanceSpec)            -> InstanceWriteResult   (must exist)
//   patchInstance(context, InstancePatch)            -> InstanceWriteResult   (partial; must exist)
//   deregisterInstance(context, DeregisterInput)     -> DeregisterResult      (ok when absent)
//   getInstance(context, InstanceAddress, ReadOptions) -> Instance           (CAIRN_SERVICE_NOT_FOUND / CAIRN_INSTANCE_NOT_FOUND)
//   listInstances(context, ListInstancesQuery)       -> InstanceList          (unknown service: empty list, service null)
//   setInstanceHealth(context, InstanceHealthInput)  -> InstanceWriteResult   (only when the cluster's checker is NONE)
//   createService(context, ServiceSpec)              -> ServiceDefinition
//   updateService(context, ServiceUpdate)            -> ServiceDefinition
//   deleteService(context, ServiceKey)               -> DeleteServiceResult   (refused while instances remain)
//   getService(context, ServiceKey, ReadOptions)     -> ServiceDetail
//   listServices(context, ListServicesQuery)         -> ServicePage
//   putCluster(context, ClusterSpec)                 -> ClusterWriteResult
//   catalog(context, CatalogQuery)                   -> CatalogPage
// Every method throws a CairnError (src/errors.ts) on failure and calls the authorization hook first.

import { CairnError } from '../errors.ts';
import type { CpRegistry, ReadConsistency, WriteOptions } from '../cp/cp-registry.ts';
import type { InstanceAddress as CpInstanceAddress, InstanceValues } from '../cp/commands.ts';
import { ALL_GROUPS, type RegistryView } from '../cp/registry-state-machine.ts';
import {
  DEFAULT_CHECK_PORT,
  DEFAULT_CLUSTER,
  DEFAULT_WEIGHT,
  defaultClusterConfig,
  defaultHealthChecker,
  groupedName,
  redactCluster,
  type ClusterView,
  type HealthChecker,
  type Instance,
  type InstanceKey,
  type Metadata,
  type Selector,
  type ServiceDefinition,
  type ServiceDetail,
  type ServiceKey,
  type ServiceKind,
} from './model.ts';
import { limits } from '../limits.ts';
import { EMPTY_INSTANCES, ListCache, type ListCacheBounds, type ListInputs } from './list-cache.ts';
import { instancesChecksum, normaliseClusters, selectInstances } from './query.ts';
import {
  validateBoolean,
  validateCheckPort,
  validateClusterName,
  validateGroup,
  validateHealthChecker,
  validateInstanceKey,
  validateMetadata,
  validateNamespace,
  validatePage,
  validateProbeHeaders,
  validateProtectThreshold,
  validateSelector,
  validateServiceKey,
  validateWeight,
} from './validation.ts';

/** Consistency chooses how a read is served: 'local' (this member's state, Nacos's semantics) or 'linearizable' (ReadIndex). */
export type Consistency = ReadConsistency;

/** Identity is the authenticated caller; null in a RequestContext means anonymous (auth is off until a later wave). */
export interface Identity {
  /** principal is the user or service account name. */
  readonly principal: string;
}

/** RequestContext travels with every call: who asks, the write's request id and how long to wait. */
export interface RequestContext {
  readonly identity: Identity | null;
  /** requestId makes a write idempotent: a retry with the same id returns the first result. Generated when absent. */
  readonly requestId?: string;
  /** timeoutMs bounds the wait for Raft (default limits.requestTimeoutMs). */
  readonly timeoutMs?: number;
}

/** AuthorizationAction is what a call does to its resource. */
export type AuthorizationAction = 'read' | 'write';

/**
 * AuthorizationHook decides whether `identity` may perform `action` on `resource` in `namespace` (DESIGN.md
 * Security); it throws a CairnError (CAIRN_UNAUTHORIZED or CAIRN_FORBIDDEN) to refuse. `resource` is the grouped
 * service name `group@@service`, `group@@*` for a listing of one group, or `*` for a listing of the namespace.
 */
export type AuthorizationHook = (
  identity: Identity | null,
  namespace: string,
  resource: string,
  action: AuthorizationAction,
) => void | Promise<void>;

/** allowAll is the default AuthorizationHook: it allows everything (auth arrives in a later wave). */
export const allowAll: AuthorizationHook = () => undefined;

/** ReadOptions choose a read's consistency (default 'local', Nacos's semantics; gRPC adapters pass 'linearizable'). */
export interface ReadOptions {
  readonly consistency?: Consistency;
}

/** InstanceAddress names an instance; `cluster` defaults to DEFAULT. */
export interface InstanceAddress extends ServiceKey {
  readonly ip: string;
  readonly port: number;
  readonly cluster?: string;
}

/**
 * InstanceSpec is a registration or full update; defaults: weight 1, enabled, healthy, ephemeral (Nacos), metadata {}.
 * An update without `ephemeral` finds the instance where it is held, and without `healthy` keeps its health.
 */
export interface InstanceSpec extends InstanceAddress, ExpectedVersion {
  readonly weight?: number;
  readonly enabled?: boolean;
  readonly healthy?: boolean;
  readonly ephemeral?: boolean;
  readonly metadata?: Metadata;
}

/**
 * ExpectedVersion makes a write to a persistent instance a compare-and-set: it applies only when the instance's
 * version is this one (0: the instance does not exist), else CAIRN_VERSION_MISMATCH and nothing changes. Refused
 * for ephemeral instances (CAIRN_INVALID_ARGUMENT): they carry no versions.
 */
export interface ExpectedVersion {
  readonly expectedVersion?: number;
}

/**
 * InstancePatch changes only the fields it carries (Nacos's PATCH; metadata replaces the whole map). Without
 * `ephemeral`, the instance is found where it is held (NamingService.writeWhereHeld), the same at every member.
 */
export interface InstancePatch extends InstanceAddress, ExpectedVersion {
  readonly weight?: number;
  readonly enabled?: boolean;
  readonly healthy?: boolean;
  readonly metadata?: Metadata;
  readonly ephemeral?: boolean;
}

/** DeregisterInput names the instance to remove; without `ephemeral` it is resolved as for InstancePatch. */
export interface DeregisterInput extends InstanceAddress, ExpectedVersion {
  readonly ephemeral?: boolean;
}

/** InstanceHealthInput sets a persistent instance's health by hand (Nacos's PUT /health/instance). */
export interface InstanceHealthInput extends InstanceAddress {
  readonly healthy: boolean;
}

/** InstanceWriteResult is the instance after a write and its service's revision. */
export interface InstanceWriteResult {
  readonly instance: Instance;
  readonly revision: number;
}

/** DeregisterResult says whether an instance was removed, and the service's revision afterwards (0: no service). */
export interface DeregisterResult {
  readonly removed: boolean;
  readonly revision: number;
}

/** ListInstancesQuery is Nacos's instance list: clusters (empty = all), healthyOnly (false). */
export interface ListInstancesQuery extends ServiceKey, ReadOptions {
  readonly clusters?: readonly string[];
  readonly healthyOnly?: boolean;
}

/** InstanceList is the answer to a ListInstancesQuery (the fields Nacos's list responses are built from). */
export interface InstanceList {
  /** service is the definition, or null when the service does not exist (Nacos answers an empty list then). */
  readonly service: ServiceDefinition | null;
  /** hosts are the selected, enabled instances; under protection every one is reported healthy. */
  readonly hosts: readonly Instance[];
  /** reachProtectionThreshold is true when protectThreshold made unhealthy instances be returned as healthy. */
  readonly reachProtectionThreshold: boolean;
  /** clusters is the clusters filter as applied (sorted, deduplicated; empty = all). */
  readonly clusters: readonly string[];
  /** checksum is a deterministic digest of the service and its hosts (equal lists give equal checksums). */
  readonly checksum: string;
  /** revision is the service's revision (0 when it does not exist). */
  readonly revision: number;
}

/** ServiceSpec creates a service; defaults: protectThreshold 0, metadata {}, selector none, kind undeclared. */
export interface ServiceSpec extends ServiceKey {
  readonly protectThreshold?: number;
  readonly metadata?: Metadata;
  readonly selector?: Selector;
  /** ephemeral declares the service's kind up front (Nacos v2's `ephemeral`); undefined: decided by its first instance. */
  readonly ephemeral?: boolean;
}

/** ServiceUpdate changes only the fields it carries (the Nacos adapter passes all three to keep Nacos's replace semantics). */
export interface ServiceUpdate extends ServiceKey {
  readonly protectThreshold?: number;
  readonly metadata?: Metadata;
  readonly selector?: Selector;
}

/** DeleteServiceResult is the log index at which the service was deleted. */
export interface DeleteServiceResult {
  readonly revision: number;
}

/** ClusterSpec configures a cluster of an existing service; defaults: TCP checker, checkPort 80, instance port, metadata {}. */
export interface ClusterSpec extends ServiceKey {
  readonly cluster: string;
  readonly healthChecker?: HealthChecker;
  readonly checkPort?: number;
  readonly useInstancePort4Check?: boolean;
  readonly metadata?: Metadata;
}

/** ClusterWriteResult is the cluster as configured (secrets redacted) and the service's revision. */
export interface ClusterWriteResult {
  readonly cluster: ClusterView;
  readonly revision: number;
}

/** ListServicesQuery pages a namespace's services; group '*' lists every group. pageNo starts at 1. */
export interface ListServicesQuery extends ReadOptions {
  readonly namespace: string;
  readonly group: string;
  readonly pageNo: number;
  readonly pageSize: number;
}

/** ServicePage is one page of services (sorted by group, then name) and the total count. */
export interface ServicePage {
  readonly count: number;
  readonly services: readonly ServiceDefinition[];
}

/** CatalogQuery pages the catalog (Nacos's /catalog/services): substring filters on names, optionally non-empty only. */
export interface CatalogQuery extends ReadOptions {
  readonly namespace: string;
  readonly pageNo: number;
  readonly pageSize: number;
  readonly serviceNameContains?: string;
  readonly groupNameContains?: string;
  readonly withInstancesOnly?: boolean;
}

/** CatalogEntry summarises one service for the catalog. */
export interface CatalogEntry {
  readonly namespace: string;
  readonly group: string;
  readonly name: string;
  readonly kind: ServiceKind | null;
  readonly clusterCount: number;
  readonly instanceCount: number;
  readonly healthyInstanceCount: number;
  readonly revision: number;
}

/** CatalogPage is one page of the catalog and the total count of matching services. */
export interface CatalogPage {
  readonly count: number;
  readonly services: readonly CatalogEntry[];
}

/**
 * EphemeralWrite is what the EphemeralRegistry is asked to do. A register or update may carry `owner`: the id of the
 * gRPC Session that registered the instance (EphemeralSession), so the instance lives as long as that session does;
 * without an owner the instance lives on client beats (Nacos v1).
 */
export type EphemeralWrite =
  | { readonly type: 'register'; readonly instance: InstanceKey & Omit<Instance, 'ip' | 'port' | 'cluster' | 'instanceId' | 'ephemeral'>; readonly owner?: string }
  | { readonly type: 'update'; readonly instance: InstanceKey & Omit<Instance, 'ip' | 'port' | 'cluster' | 'instanceId' | 'ephemeral'>; readonly owner?: string }
  | { readonly type: 'patch'; readonly key: InstanceKey; readonly weight?: number; readonly enabled?: boolean; readonly healthy?: boolean; readonly metadata?: Metadata }
  | { readonly type: 'deregister'; readonly key: InstanceKey; readonly owner?: string };

/**
 * BeatInput is one client beat (Nacos v1 `PUT /instance/beat`). `instance` is the beat body (Nacos's RsInfo) when
 * the client sent one: an unknown instance is then registered again from it (Nacos's "data compensation"; the npm
 * `nacos` client never re-registers on its own and relies on this).
 */
export interface BeatInput {
  readonly key: InstanceKey;
  readonly instance?: { readonly weight: number; readonly metadata: Metadata };
}

/** BeatResult is Nacos's beat answer: `found` false is code 20404 (unknown, no body to re-register from), else 10200. */
export interface BeatResult {
  readonly found: boolean;
  /** clientBeatIntervalMs is the interval the client should beat at: `preserved.heart.beat.interval` or 5000. */
  readonly clientBeatIntervalMs: number;
}

/**
 * EphemeralSession binds ephemeral instances to one client connection (the gRPC `Session` stream, like Nacos 2's
 * connection-bound clients and etcd's leases): what it registers vanishes from every member when it is closed, or
 * when it falls silent (no keepAlive or request) past the session timeout of limits.ts.
 */
export interface EphemeralSession {
  /** id is unique per member and process start; it is the `owner` of the instances the session registers. */
  readonly id: string;
  /** keepAlive proves the client alive. Every register and deregister does too. */
  keepAlive(): void;
  /** closed resolves when the session ended (closed here or timed out); its instances are then being removed. */
  readonly closed: Promise<void>;
  /** close ends the session and removes its instances (idempotent). */
  close(): Promise<void>;
}

/** NamingSession is a session as the adapters see it: EphemeralSession plus validated, authorized writes. */
export interface NamingSession {
  readonly id: string;
  readonly closed: Promise<void>;
  keepAlive(): void;
  close(): Promise<void>;
  /** register registers an ephemeral instance bound to this session (ephemeral=false is refused). */
  register(context: RequestContext, spec: InstanceSpec): Promise<InstanceWriteResult>;
  /** deregister removes an ephemeral instance (registered in this session or not, as Nacos 2 allows). */
  deregister(context: RequestContext, input: DeregisterInput): Promise<DeregisterResult>;
}

/** ServiceChangeListener hears that a service's instances (or definition) changed on this member; it reads the state itself. */
export type ServiceChangeListener = (service: ServiceKey) => void;

/**
 * EphemeralRegistry is the seam for the AP path (ephemeral instances, Distro, src/ap/). Writes return what the CP
 * path returns; reads are local and synchronous. The default, unimplementedEphemeralRegistry, holds nothing and
 * refuses writes.
 */
export interface EphemeralRegistry {
  /** write applies one ephemeral write; a deregister of an absent instance answers removed=false. */
  write(operation: EphemeralWrite, context: RequestContext): Promise<InstanceWriteResult | DeregisterResult>;
  /** beat keeps a beat-kept instance alive (and healthy again); see BeatInput for re-registration. */
  beat(input: BeatInput, context: RequestContext): Promise<BeatResult>;
  /** openSession starts a session; writes with its id as `owner` bind instances to it. */
  openSession(): EphemeralSession;
  /** instancesOf lists the ephemeral instances of a service held by this member (sorted by cluster, ip, port). */
  instancesOf(service: ServiceKey): readonly Instance[];
  /** serviceKeys lists the services of a namespace that hold ephemeral instances on this member. */
  serviceKeys(namespace: string): readonly ServiceKey[];
  /** onChange registers a listener for every change to a service's ephemeral instances on this member; returns its removal. */
  onChange(listener: ServiceChangeListener): () => void;
  /**
   * servesReads tells whether this member's ephemeral instances may be read: false while a member that just started
   * is still loading them from its peers (it holds only what reached it since), and the reads that may concern them
   * are then refused with CAIRN_MEMBER_BEHIND. Absent: always.
   */
  servesReads?(): boolean;
}

/** unimplementedEphemeralRegistry is the EphemeralRegistry until the AP issue: empty, and every write refused. */
export const unimplementedEphemeralRegistry: EphemeralRegistry = Object.freeze({
  write(): Promise<never> {
    return Promise.reject(new CairnError('CAIRN_NOT_IMPLEMENTED',
      'ephemeral instances arrive with the AP issue; register with ephemeral=false'));
  },
  beat(): Promise<never> {
    return Promise.reject(new CairnError('CAIRN_NOT_IMPLEMENTED',
      'ephemeral instances arrive with the AP issue; register with ephemeral=false'));
  },
  openSession(): never {
    throw new CairnError('CAIRN_NOT_IMPLEMENTED', 'sessions keep ephemeral instances, which arrive with the AP issue');
  },
  instancesOf(): readonly Instance[] {
    return [];
  },
  serviceKeys(): readonly ServiceKey[] {
    return [];
  },
  onChange(): () => void {
    return () => undefined;
  },
});

/** NamingServiceOptions wire a NamingService: the CP registry, the AP seam and the authorization hook. */
export interface NamingServiceOptions {
  readonly cp: CpRegistry;
  readonly ephemeral?: EphemeralRegistry;
  readonly authorize?: AuthorizationHook;
  /** listCache bounds the memoized list answers (default: limits.listCacheEntriesMax / listCacheInstancesMax). */
  readonly listCache?: ListCacheBounds;
}

function sameAddress(instance: Instance, key: InstanceKey): boolean {
  return instance.cluster === key.cluster && instance.ip === key.ip && instance.port === key.port;
}

function compareDefinitions(a: ServiceDefinition, b: ServiceDefinition): number {
  if (a.group !== b.group) return a.group < b.group ? -1 : 1;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/** mergeDefinition is a service's definition as users see it: the CP definition, with the kind of the AP instances. */
function mergeDefinition(key: ServiceKey, definition: ServiceDefinition | null, ephemeralCount: number): ServiceDefinition | null {
  if (definition === null) return ephemeralCount > 0 ? implicitDefinition(key) : null;
  if (definition.kind === null && ephemeralCount > 0) return Object.freeze({ ...definition, kind: 'ephemeral' });
  return definition;
}

/** listCacheKey names one list query: the service, healthyOnly and the normalised clusters (names hold no NUL). */
function listCacheKey(key: ServiceKey, clusters: readonly string[], healthyOnly: boolean): string {
  return `${key.namespace}\u0000${key.group}\u0000${key.service}\u0000${healthyOnly ? 1 : 0}\u0000${clusters.join('\u0000')}`;
}

/** implicitDefinition is the definition of a service that exists only through its ephemeral instances (Nacos's defaults). */
function implicitDefinition(key: ServiceKey): ServiceDefinition {
  return Object.freeze({
    namespace: key.namespace, group: key.group, name: key.service, protectThreshold: 0,
    metadata: Object.freeze({}), selector: Object.freeze({ type: 'none' }), kind: 'ephemeral', revision: 0,
  });
}

function pageItems<T>(items: readonly T[], pageNo: number, pageSize: number): readonly T[] {
  const start = (pageNo - 1) * pageSize;
  return items.slice(start, start + pageSize);
}

function isInstanceWrite(result: InstanceWriteResult | DeregisterResult): result is InstanceWriteResult {
  return 'instance' in result;
}

function expectInstanceWrite(result: InstanceWriteResult | DeregisterResult): InstanceWriteResult {
  if (!isInstanceWrite(result)) throw new CairnError('CAIRN_INTERNAL', 'the ephemeral registry answered a write without an instance');
  return result;
}

function expectDeregister(result: InstanceWriteResult | DeregisterResult): DeregisterResult {
  if (isInstanceWrite(result)) throw new CairnError('CAIRN_INTERNAL', 'the ephemeral registry answered a deregistration with an instance');
  return result;
}

/** NotHeld is the answer of a registry that does not hold the instance a write names; `answer` gives (or throws) its reply. */
class NotHeld<T> {
  readonly answer: () => T;
  constructor(answer: () => T) {
    this.answer = answer;
  }
}

/** HeldWrite is one write that names an existing instance, as each registry would run it (writeWhereHeld). */
interface HeldWrite<T> {
  readonly ephemeral: () => Promise<T | NotHeld<T>>;
  readonly persistent: () => Promise<T | NotHeld<T>>;
}

/** notHeldOnMiss turns a registry's "no such service or instance" refusal of a write into NotHeld. */
async function notHeldOnMiss<T>(write: Promise<T>): Promise<T | NotHeld<T>> {
  try {
    return await write;
  } catch (error) {
    if (error instanceof CairnError && (error.code === 'CAIRN_INSTANCE_NOT_FOUND' || error.code === 'CAIRN_SERVICE_NOT_FOUND')) {
      return new NotHeld<T>(() => {
        throw error;
      });
    }
    throw error;
  }
}

/** notHeldUnlessRemoved turns a deregistration that removed nothing into NotHeld (its answer is that removal). */
async function notHeldUnlessRemoved(write: Promise<DeregisterResult>): Promise<DeregisterResult | NotHeld<DeregisterResult>> {
  const result = await write;
  return result.removed ? result : new NotHeld(() => result);
}

/** preconditionOf validates a write's expected version: a non-negative safe integer, on a persistent instance only. */
function preconditionOf(input: ExpectedVersion, ephemeral: boolean): { readonly expectedVersion?: number } {
  const expected = input.expectedVersion;
  if (expected === undefined) return {};
  if (typeof expected !== 'number' || !Number.isSafeInteger(expected) || expected < 0) {
    throw new CairnError('CAIRN_INVALID_ARGUMENT', `Param 'expectedVersion' must be a non-negative integer (got ${String(expected)})`,
      { details: { parameter: 'expectedVersion' } });
  }
  if (ephemeral) {
    throw new CairnError('CAIRN_INVALID_ARGUMENT', 'expectedVersion applies to persistent instances only: ephemeral instances carry no versions',
      { details: { parameter: 'expectedVersion' } });
  }
  return { expectedVersion: expected };
}

function mismatch(key: ServiceKey, holds: 'persistent' | 'ephemeral'): CairnError {
  const other = holds === 'persistent' ? 'ephemeral' : 'persistent';
  return new CairnError('CAIRN_EPHEMERAL_MISMATCH',
    `Current service ${key.namespace}/${groupedName(key.group, key.service)} is ${holds} service, can't register ${other} instance.`);
}

/** NamingService is the façade of the naming model over both registries; see the API list at the top of this file. */
export class NamingService {
  private readonly cp: CpRegistry;
  private readonly ephemeral: EphemeralRegistry;
  /** hasEphemeralRegistry is false without an AP registry: then every instance is persistent, wherever it is looked for. */
  private readonly hasEphemeralRegistry: boolean;
  private readonly authorize: AuthorizationHook;
  /** lists memoizes list answers while the registries' arrays they came from are unchanged (list-cache.ts). */
  private readonly lists: ListCache<InstanceList>;

  constructor(options: NamingServiceOptions) {
    this.cp = options.cp;
    this.ephemeral = options.ephemeral ?? unimplementedEphemeralRegistry;
    this.hasEphemeralRegistry = options.ephemeral !== undefined && options.ephemeral !== unimplementedEphemeralRegistry;
    this.authorize = options.authorize ?? allowAll;
    this.lists = new ListCache(options.listCache ?? { entriesMax: limits.listCacheEntriesMax, instancesMax: limits.listCacheInstancesMax });
  }

  /** listCacheStats reports the list cache's size and hit counts (tests and metrics). */
  listCacheStats(): { readonly entries: number; readonly hits: number; readonly misses: number } {
    return { entries: this.lists.size, hits: this.lists.hits, misses: this.lists.misses };
  }

  // --- Helpers ---

  private async authorizeService(context: RequestContext, key: ServiceKey, action: AuthorizationAction): Promise<void> {
    await this.authorize(context.identity, key.namespace, groupedName(key.group, key.service), action);
  }

  private writeOptions(context: RequestContext): WriteOptions {
    return {
      ...(context.requestId === undefined ? {} : { requestId: context.requestId }),
      ...(context.timeoutMs === undefined ? {} : { timeoutMs: context.timeoutMs }),
    };
  }

  private view(context: RequestContext, options: ReadOptions): Promise<RegistryView> {
    const consistency = options.consistency ?? 'local';
    if (consistency !== 'local' && consistency !== 'linearizable') {
      throw new CairnError('CAIRN_INVALID_ARGUMENT', `Param 'consistency' must be local or linearizable (got ${String(consistency)})`,
        { details: { parameter: 'consistency' } });
    }
    return this.cp.read(consistency, context.timeoutMs);
  }

  /**
   * instanceView is the view an instance read of `key` is served from. A linearizable read of a service this member
   * holds on the AP path (ephemeral instances here, no persistent one in its applied state; a service holds one kind)
   * is served from this member's own state, as a local read: ephemeral instances are replicated asynchronously, so no
   * read of them is linearizable, and waiting for a Raft quorum would only make them unavailable in a partition,
   * which the AP path must never be (DESIGN.md). A linearizable read of anything else waits for ReadIndex as before.
   */
  private instanceView(context: RequestContext, options: ReadOptions, key: ServiceKey): Promise<RegistryView> {
    if (options.consistency === 'linearizable' && this.hasEphemeralRegistry && this.ephemeral.instancesOf(key).length > 0) {
      const local = this.cp.localView();
      if (local.listInstances(key).length === 0) return Promise.resolve(local);
    }
    return this.view(context, options);
  }

  /**
   * refuseWhileLoading refuses a read of `key`'s instances while the ephemeral registry does not serve reads yet (a
   * member that just started, loading its peers' ephemeral instances: docs/ap.md "Start-up"), unless `view` shows
   * the service persistent, whose instances are all in Raft state. A service that is ephemeral, undeclared or
   * unknown here may hold instances this member has not loaded yet: an empty or partial answer would be taken for
   * the truth (a Java client applies an empty list; every client applies a partial one), so the client is sent to
   * another member, as Nacos 1.4 answers 503 until its Distro load is done. CAIRN_MEMBER_BEHIND is retryable (503,
   * UNAVAILABLE): the Nacos clients try the next server.
   */
  private refuseWhileLoading(view: RegistryView, key: ServiceKey): void {
    if (!this.hasEphemeralRegistry || (this.ephemeral.servesReads?.() ?? true)) return;
    if (view.getService(key)?.kind === 'persistent') return;
    throw new CairnError('CAIRN_MEMBER_BEHIND',
      'this member has just started and is still loading the ephemeral instances from its peers; ask another member, or this one shortly');
  }

  private ephemeralInstance(key: InstanceKey): Instance | undefined {
    return this.ephemeral.instancesOf(key).find((instance) => sameAddress(instance, key));
  }

  /**
   * kindOf is the registry a write naming an existing instance goes to when the request says (or implies) it:
   * true for ephemeral, false for persistent, undefined when it must be found (writeWhereHeld). An expected
   * version implies persistent, as only persistent instances carry versions; it is refused (preconditionOf) for an
   * instance this member holds as ephemeral, and elsewhere the CP registry refuses it (nothing holds that version).
   */
  private kindOf(key: InstanceKey, input: { readonly ephemeral?: boolean } & ExpectedVersion): boolean | undefined {
    if (input.ephemeral !== undefined) return validateBoolean(input.ephemeral, 'ephemeral');
    if (!this.hasEphemeralRegistry) return false;
    if (input.expectedVersion !== undefined) return this.ephemeralInstance(key) !== undefined;
    return undefined;
  }

  /**
   * writeWhereHeld runs a write that names an existing instance of unsaid kind at the registry that holds it, so
   * the outcome is the same whichever member receives it. This member's copies are not enough to decide (the race
   * it prevents, seen with gRPC DeregisterInstance and UpdateInstance):
   *   1. A client registers ephemeral X at member A; A forwards it to X's responsible member R, which applies it.
   *   2. At once the client deregisters X at member B. R's sync has not reached B: B's AP copy lacks X, and B's CP
   *      registry never held it.
   *   3. Deciding from B's AP copy sent the write to the CP registry, which answered removed=false ("ok") while X
   *      stayed listed; an update answered CAIRN_SERVICE_NOT_FOUND for a service that exists.
   * So: the CP registry when this member's applied state holds X (a persistent instance leaves only through the
   * log); otherwise the AP registry, whose writes travel to R, the member that decides for X; and when R does not
   * hold X either, the CP registry after a linearizable check (X may be persistent and committed but not applied
   * here yet). Each registry also gets its turn when the first one tried no longer holds X. Without a linearizable
   * answer (no quorum) a miss at R is refused with the CP error rather than answered as if nothing stayed.
   */
  private async writeWhereHeld<T>(context: RequestContext, key: InstanceKey, write: HeldWrite<T>): Promise<T> {
    if (this.cp.localView().getInstance(key) !== null) {
      const persistent = await write.persistent();
      if (!(persistent instanceof NotHeld)) return persistent;
      const ephemeral = await write.ephemeral();
      return ephemeral instanceof NotHeld ? persistent.answer() : ephemeral;
    }
    const ephemeral = await write.ephemeral();
    if (!(ephemeral instanceof NotHeld)) return ephemeral;
    const view = await this.cp.read('linearizable', context.timeoutMs);
    if (view.getInstance(key) === null) return ephemeral.answer();
    const persistent = await write.persistent();
    return persistent instanceof NotHeld ? ephemeral.answer() : persistent;
  }

  /** mergedDefinition is a service's definition as users see it: the CP definition, with the kind of the AP instances. */
  private mergedDefinition(view: RegistryView, key: ServiceKey): ServiceDefinition | null {
    return mergeDefinition(key, view.getService(key), this.ephemeral.instancesOf(key).length);
  }

  private checkKindForWrite(key: ServiceKey, ephemeral: boolean): void {
    if (ephemeral) {
      if (this.cp.localView().getService(key)?.kind === 'persistent') throw mismatch(key, 'persistent');
    } else if (this.ephemeral.instancesOf(key).length > 0) {
      throw mismatch(key, 'ephemeral');
    }
  }

  // --- Instances ---

  private async writeInstance(context: RequestContext, spec: InstanceSpec, mode: 'register' | 'update', owner?: string): Promise<InstanceWriteResult> {
    const key = instanceKeyOf(spec);
    const values = instanceValuesOf(spec, key);
    // A registration is ephemeral unless it says otherwise (Nacos's default); an update finds the instance where it is.
    const kind = mode === 'register' ? validateBoolean(spec.ephemeral ?? true, 'ephemeral') : this.kindOf(key, spec);
    if (owner !== undefined && kind !== true) {
      throw new CairnError('CAIRN_INVALID_ARGUMENT', 'a session registers ephemeral instances only; register persistent ones with RegisterInstance',
        { details: { parameter: 'ephemeral' } });
    }
    const precondition = preconditionOf(spec, kind === true);
    await this.authorizeService(context, key, 'write');
    const ephemeral = async (): Promise<InstanceWriteResult> => {
      const { weight, enabled, healthy, metadata } = values;
      const instance = { ...key, weight, enabled, healthy, metadata };
      return expectInstanceWrite(await this.ephemeral.write(owner === undefined ? { type: mode, instance } : { type: mode, instance, owner }, context));
    };
    const persistent = (): Promise<InstanceWriteResult> => mode === 'register'
      ? this.cp.registerInstance(serviceKeyOf(key), values, this.writeOptions(context), precondition)
      : this.updatePersistent(context, key, values, spec.healthy === undefined, precondition);
    if (kind === undefined) return this.writeWhereHeld(context, key, { ephemeral: () => notHeldOnMiss(ephemeral()), persistent: () => notHeldOnMiss(persistent()) });
    this.checkKindForWrite(key, kind);
    return kind ? ephemeral() : persistent();
  }

  /**
   * updatePersistent replaces a persistent instance's weight, enabled and metadata, and its health only when the
   * update names it. Nacos 2.x's update changes only enabled, weight and metadata (InstanceOperatorClientImpl
   * .updateInstance), and 1.4 keeps an updated instance's health (Cluster.updateIps), so an update without
   * `healthy` must not undo a health set by hand under a NONE checker. Without `healthy` it is a patch of the other
   * three: one command, so the health kept is the one at apply time, not this member's possibly older copy.
   */
  private updatePersistent(context: RequestContext, key: InstanceKey, values: InstanceValues, keepHealth: boolean,
    precondition: { readonly expectedVersion?: number }): Promise<InstanceWriteResult> {
    if (!keepHealth) return this.cp.updateInstance(serviceKeyOf(key), values, this.writeOptions(context), precondition);
    const { weight, enabled, metadata } = values;
    return this.cp.patchInstance({ key: serviceKeyOf(key), address: addressOf(key), weight, enabled, metadata, ...precondition }, this.writeOptions(context));
  }

  /** registerInstance registers or replaces an instance (upsert); a persistent one auto-creates its service. */
  registerInstance(context: RequestContext, spec: InstanceSpec): Promise<InstanceWriteResult> {
    return this.writeInstance(context, spec, 'register');
  }

  /**
   * updateInstance replaces an existing instance's attributes (CAIRN_INSTANCE_NOT_FOUND when absent). Without
   * `ephemeral` the instance is found where it is (writeWhereHeld); without `healthy` its health is kept.
   */
  updateInstance(context: RequestContext, spec: InstanceSpec): Promise<InstanceWriteResult> {
    return this.writeInstance(context, spec, 'update');
  }

  /** patchInstance changes only the given attributes of an existing instance. */
  async patchInstance(context: RequestContext, patch: InstancePatch): Promise<InstanceWriteResult> {
    const key = instanceKeyOf(patch);
    const changes = {
      ...(patch.weight === undefined ? {} : { weight: validateWeight(patch.weight) }),
      ...(patch.enabled === undefined ? {} : { enabled: validateBoolean(patch.enabled, 'enabled') }),
      ...(patch.healthy === undefined ? {} : { healthy: validateBoolean(patch.healthy, 'healthy') }),
      ...(patch.metadata === undefined ? {} : { metadata: validateMetadata(patch.metadata) }),
    };
    const kind = this.kindOf(key, patch);
    const precondition = preconditionOf(patch, kind === true);
    await this.authorizeService(context, key, 'write');
    const ephemeral = async (): Promise<InstanceWriteResult> => expectInstanceWrite(await this.ephemeral.write({ type: 'patch', key, ...changes }, context));
    const persistent = (): Promise<InstanceWriteResult> =>
      this.cp.patchInstance({ key: serviceKeyOf(key), address: addressOf(key), ...changes, ...precondition }, this.writeOptions(context));
    if (kind === undefined) return this.writeWhereHeld(context, key, { ephemeral: () => notHeldOnMiss(ephemeral()), persistent: () => notHeldOnMiss(persistent()) });
    return kind ? ephemeral() : persistent();
  }

  /**
   * deregisterInstance removes an instance; removing an absent one succeeds with removed=false (Nacos). `owner` is
   * the session it is sent through (a session's own deregistration, which alone ends the session's hold on it).
   */
  async deregisterInstance(context: RequestContext, input: DeregisterInput, owner?: string): Promise<DeregisterResult> {
    const key = instanceKeyOf(input);
    const kind = this.kindOf(key, input);
    const precondition = preconditionOf(input, kind === true);
    await this.authorizeService(context, key, 'write');
    const write: EphemeralWrite = owner === undefined ? { type: 'deregister', key } : { type: 'deregister', key, owner };
    const ephemeral = async (): Promise<DeregisterResult> => expectDeregister(await this.ephemeral.write(write, context));
    const persistent = (): Promise<DeregisterResult> => this.cp.deregisterInstance(serviceKeyOf(key), addressOf(key), this.writeOptions(context), precondition);
    if (kind === undefined) return this.writeWhereHeld(context, key, { ephemeral: () => notHeldUnlessRemoved(ephemeral()), persistent: () => notHeldUnlessRemoved(persistent()) });
    return kind ? ephemeral() : persistent();
  }

  /**
   * beat is Nacos v1's client beat for an ephemeral instance: it keeps the instance alive, and registers it again
   * from the beat body when it is unknown (BeatInput). A beat for a service that holds persistent instances is refused.
   */
  async beat(context: RequestContext, input: InstanceAddress & { readonly instance?: { readonly weight?: number; readonly metadata?: Metadata } }): Promise<BeatResult> {
    const key = instanceKeyOf(input);
    const body = input.instance === undefined ? undefined
      : { weight: validateWeight(input.instance.weight ?? DEFAULT_WEIGHT), metadata: validateMetadata(input.instance.metadata ?? {}) };
    await this.authorizeService(context, key, 'write');
    this.checkKindForWrite(key, true);
    return this.ephemeral.beat(body === undefined ? { key } : { key, instance: body }, context);
  }

  /**
   * openSession starts a session (the gRPC `Session` stream): instances registered through it are ephemeral and
   * vanish when it ends or falls silent. Writes through a session validate and authorize exactly as the plain ones.
   */
  openSession(): NamingSession {
    const session = this.ephemeral.openSession();
    return Object.freeze({
      id: session.id,
      closed: session.closed,
      keepAlive: () => session.keepAlive(),
      close: () => session.close(),
      register: (context: RequestContext, spec: InstanceSpec) => {
        session.keepAlive();
        return this.writeInstance(context, { ...spec, ephemeral: spec.ephemeral ?? true }, 'register', session.id);
      },
      deregister: (context: RequestContext, input: DeregisterInput) => {
        session.keepAlive();
        return this.deregisterInstance(context, { ...input, ephemeral: true }, session.id);
      },
    });
  }

  /** localAppliedIndex is the highest Raft log index this member's persistent registry reflects (Subscribe's resume floor). */
  localAppliedIndex(): number {
    return this.cp.localView().appliedThrough();
  }

  /** getInstance returns one instance of either kind. */
  async getInstance(context: RequestContext, address: InstanceAddress, options: ReadOptions = {}): Promise<Instance> {
    const key = instanceKeyOf(address);
    await this.authorizeService(context, key, 'read');
    const view = await this.instanceView(context, options, key);
    const persistent = view.getInstance(key);
    if (persistent !== null) return persistent;
    this.refuseWhileLoading(view, key);
    const instance = this.ephemeralInstance(key);
    if (instance !== undefined) return instance;
    const where = `${key.namespace}/${groupedName(key.group, key.service)}`;
    if (this.mergedDefinition(view, key) === null) throw new CairnError('CAIRN_SERVICE_NOT_FOUND', `no service ${where} found!`);
    throw new CairnError('CAIRN_INSTANCE_NOT_FOUND', `no matched ip found! ${key.ip}:${key.port} in cluster ${key.cluster} of ${where}`);
  }

  /** listInstances answers Nacos's instance list: clusters filter, protect threshold, healthyOnly, disabled dropped. */
  async listInstances(context: RequestContext, query: ListInstancesQuery): Promise<InstanceList> {
    const key = validateServiceKey(query);
    const clusters = normaliseClusters((query.clusters ?? []).map((name) => validateClusterName(name, 'clusters')));
    const healthyOnly = validateBoolean(query.healthyOnly ?? false, 'healthyOnly');
    await this.authorizeService(context, key, 'read');
    const view = await this.instanceView(context, query, key);
    this.refuseWhileLoading(view, key);
    return this.instanceListIn(view, key, clusters, healthyOnly);
  }

  /** instanceListIn is the merged, selected instance list of `key` in `view` (listInstances after its checks). */
  // The answer is a pure function of the CP definition and both registries' instance arrays; it is memoized while
  // those are the same (immutable) objects, so a repeated list costs four lookups instead of a selection and an MD5
  // over every instance (list-cache.ts explains why identity is enough).
  private instanceListIn(view: RegistryView, key: ServiceKey, clusters: readonly string[], healthyOnly: boolean): InstanceList {
    const persistent = view.listInstances(key);
    const ephemeral = this.ephemeral.instancesOf(key);
    const inputs: ListInputs = {
      view,
      definition: view.getService(key),
      persistent: persistent.length === 0 ? EMPTY_INSTANCES : persistent,
      ephemeral: ephemeral.length === 0 ? EMPTY_INSTANCES : ephemeral,
    };
    const cacheKey = listCacheKey(key, clusters, healthyOnly);
    const cached = this.lists.get(cacheKey, inputs);
    if (cached !== undefined) return cached;
    const service = mergeDefinition(key, inputs.definition, inputs.ephemeral.length);
    const selected = selectInstances(service, [...inputs.persistent, ...inputs.ephemeral], { clusters, healthyOnly });
    const list: InstanceList = Object.freeze({
      service,
      hosts: selected.hosts,
      reachProtectionThreshold: selected.reachProtectionThreshold,
      clusters,
      checksum: instancesChecksum(service, selected.hosts),
      revision: service?.revision ?? 0,
    });
    this.lists.set(cacheKey, inputs, list, selected.hosts.length);
    return list;
  }

  /**
   * localInstanceList is listInstances over this member's local state, synchronous and without authorization: the
   * subscription hub (subscriptions.ts) computes push snapshots with it after the subscriber was authorized.
   * `clusters` must be normalised (normaliseClusters) and validated already.
   */
  localInstanceList(key: ServiceKey, clusters: readonly string[], healthyOnly: boolean): InstanceList {
    return this.instanceListIn(this.cp.localView(), key, clusters, healthyOnly);
  }

  /**
   * authorizeRead passes a read of `key` by `context`'s caller through the authorization hook, then refuses it as
   * listInstances does while this member is still loading its ephemeral instances (refuseWhileLoading): Subscribe
   * uses it before its first snapshot, which would otherwise show a partial list.
   */
  async authorizeRead(context: RequestContext, key: ServiceKey): Promise<void> {
    await this.authorizeService(context, key, 'read');
    this.refuseWhileLoading(this.cp.localView(), key);
  }

  /** onEphemeralChange registers a listener for changes of ephemeral instances (the AP registry's onChange); returns its removal. */
  onEphemeralChange(listener: ServiceChangeListener): () => void {
    return this.ephemeral.onChange(listener);
  }

  /** setInstanceHealth sets a persistent instance's health; refused while its cluster's checker is not NONE. */
  async setInstanceHealth(context: RequestContext, input: InstanceHealthInput): Promise<InstanceWriteResult> {
    const key = instanceKeyOf(input);
    const healthy = validateBoolean(input.healthy, 'healthy');
    await this.authorizeService(context, key, 'write');
    return this.cp.setInstanceHealth(serviceKeyOf(key), addressOf(key), healthy, this.writeOptions(context));
  }

  // --- Services and clusters ---

  /** createService creates a service (CAIRN_SERVICE_ALREADY_EXISTS if it exists). */
  async createService(context: RequestContext, spec: ServiceSpec): Promise<ServiceDefinition> {
    const key = validateServiceKey(spec);
    const protectThreshold = validateProtectThreshold(spec.protectThreshold ?? 0);
    const metadata = validateMetadata(spec.metadata ?? {});
    const selector = validateSelector(spec.selector ?? { type: 'none' });
    const kind = spec.ephemeral === undefined ? null : validateBoolean(spec.ephemeral, 'ephemeral') ? 'ephemeral' : 'persistent';
    await this.authorizeService(context, key, 'write');
    if (kind === 'persistent' && this.ephemeral.instancesOf(key).length > 0) throw mismatch(key, 'ephemeral');
    return this.cp.createService({ key, protectThreshold, metadata, selector, kind }, this.writeOptions(context));
  }

  /** updateService changes the given settings of an existing service. */
  async updateService(context: RequestContext, update: ServiceUpdate): Promise<ServiceDefinition> {
    const key = validateServiceKey(update);
    const changes = {
      ...(update.protectThreshold === undefined ? {} : { protectThreshold: validateProtectThreshold(update.protectThreshold) }),
      ...(update.metadata === undefined ? {} : { metadata: validateMetadata(update.metadata) }),
      ...(update.selector === undefined ? {} : { selector: validateSelector(update.selector) }),
    };
    await this.authorizeService(context, key, 'write');
    return this.onDeclaredService(context, key, () => this.cp.updateService({ key, ...changes }, this.writeOptions(context)));
  }

  /**
   * onDeclaredService runs a write that needs the service in the CP registry. A service known only through its
   * ephemeral instances (GetService and ListServices show it) is first declared there, of kind ephemeral with Nacos's
   * defaults, and the write is run again: Nacos 2 keeps every service's settings (protect threshold, metadata,
   * selector, clusters) in its CP store, ephemeral services included. The declaration carries no request id (the
   * write's own is the caller's), and one made meanwhile by another writer is as good as ours.
   */
  private async onDeclaredService<T>(context: RequestContext, key: ServiceKey, write: () => Promise<T>): Promise<T> {
    try {
      return await write();
    } catch (error) {
      if (!(error instanceof CairnError) || error.code !== 'CAIRN_SERVICE_NOT_FOUND' || this.ephemeral.instancesOf(key).length === 0) throw error;
    }
    const declaration = { key, protectThreshold: 0, metadata: {}, selector: { type: 'none' as const }, kind: 'ephemeral' as const };
    try {
      await this.cp.createService(declaration, context.timeoutMs === undefined ? {} : { timeoutMs: context.timeoutMs });
    } catch (error) {
      if (!(error instanceof CairnError) || error.code !== 'CAIRN_SERVICE_ALREADY_EXISTS') throw error;
    }
    return write();
  }

  /** deleteService deletes an empty service (CAIRN_SERVICE_HAS_INSTANCES otherwise, ephemeral instances included). */
  async deleteService(context: RequestContext, key: ServiceKey): Promise<DeleteServiceResult> {
    const valid = validateServiceKey(key);
    await this.authorizeService(context, valid, 'write');
    const ephemeralCount = this.ephemeral.instancesOf(valid).length;
    if (ephemeralCount > 0) {
      throw new CairnError('CAIRN_SERVICE_HAS_INSTANCES',
        `Service ${valid.namespace}/${groupedName(valid.group, valid.service)} is not empty, can't be delete. Please unregister instance first`,
        { details: { instances: ephemeralCount } });
    }
    return { revision: await this.cp.deleteService(valid, this.writeOptions(context)) };
  }

  /** getService returns a service with its clusters (secrets redacted); clusters of ephemeral instances are included. */
  async getService(context: RequestContext, key: ServiceKey, options: ReadOptions = {}): Promise<ServiceDetail> {
    const valid = validateServiceKey(key);
    await this.authorizeService(context, valid, 'read');
    const view = await this.view(context, options);
    const service = this.mergedDefinition(view, valid);
    if (service === null) {
      throw new CairnError('CAIRN_SERVICE_NOT_FOUND', `service ${valid.namespace}/${groupedName(valid.group, valid.service)} not found!`);
    }
    const clusters = [...(view.getServiceDetail(valid)?.clusters ?? [])];
    const known = new Set(clusters.map((cluster) => cluster.name));
    for (const instance of this.ephemeral.instancesOf(valid)) {
      if (!known.has(instance.cluster)) {
        known.add(instance.cluster);
        clusters.push(redactCluster(defaultClusterConfig(instance.cluster)));
      }
    }
    clusters.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return Object.freeze({ service, clusters: Object.freeze(clusters) });
  }

  /** allDefinitions merges a namespace's CP services (of `group`, or all with '*') with services known only through ephemeral instances. */
  private allDefinitions(view: RegistryView, namespace: string, group: string): ServiceDefinition[] {
    const definitions = view.services(namespace, group).map((definition) => this.mergedDefinition(view, {
      namespace, group: definition.group, service: definition.name,
    }) ?? definition);
    for (const key of this.ephemeral.serviceKeys(namespace)) {
      if ((group === ALL_GROUPS || key.group === group) && view.getService(key) === null) definitions.push(implicitDefinition(key));
    }
    return definitions.sort(compareDefinitions);
  }

  /** listServices pages the services of a namespace, of one group or of all ('*'). */
  async listServices(context: RequestContext, query: ListServicesQuery): Promise<ServicePage> {
    const namespace = validateNamespace(query.namespace);
    const group = query.group === ALL_GROUPS ? ALL_GROUPS : validateGroup(query.group);
    const page = validatePage(query.pageNo, query.pageSize);
    await this.authorize(context.identity, namespace, group === ALL_GROUPS ? '*' : groupedName(group, '*'), 'read');
    const view = await this.view(context, query);
    const definitions = this.allDefinitions(view, namespace, group);
    return Object.freeze({ count: definitions.length, services: pageItems(definitions, page.pageNo, page.pageSize) });
  }

  /** putCluster creates or replaces a cluster's configuration (health checker, check port, metadata). */
  async putCluster(context: RequestContext, spec: ClusterSpec): Promise<ClusterWriteResult> {
    const key = validateServiceKey(spec);
    const useInstancePort4Check = validateBoolean(spec.useInstancePort4Check ?? true, 'useInstancePort4Check');
    const config = {
      name: validateClusterName(spec.cluster),
      // A new checker must also be probeable; validateHealthChecker alone is what the log's decoder accepts.
      healthChecker: validateProbeHeaders(validateHealthChecker(spec.healthChecker ?? defaultHealthChecker)),
      checkPort: validateCheckPort(spec.checkPort ?? DEFAULT_CHECK_PORT, useInstancePort4Check),
      useInstancePort4Check,
      metadata: validateMetadata(spec.metadata ?? {}),
    };
    await this.authorizeService(context, key, 'write');
    return this.onDeclaredService(context, key, () => this.cp.putCluster(key, config, this.writeOptions(context)));
  }

  /** catalogEntry summarises one service over both registries. */
  private catalogEntry(view: RegistryView, definition: ServiceDefinition): CatalogEntry {
    const key = { namespace: definition.namespace, group: definition.group, service: definition.name };
    const instances = [...view.listInstances(key), ...this.ephemeral.instancesOf(key)];
    const clusters = new Set(view.getServiceDetail(key)?.clusters.map((cluster) => cluster.name) ?? []);
    for (const instance of instances) clusters.add(instance.cluster);
    return Object.freeze({
      namespace: definition.namespace,
      group: definition.group,
      name: definition.name,
      kind: definition.kind,
      clusterCount: clusters.size,
      instanceCount: instances.length,
      healthyInstanceCount: instances.filter((instance) => instance.healthy).length,
      revision: definition.revision,
    });
  }

  /** catalog pages service summaries with instance counts (Nacos's /catalog/services). */
  async catalog(context: RequestContext, query: CatalogQuery): Promise<CatalogPage> {
    const namespace = validateNamespace(query.namespace);
    const page = validatePage(query.pageNo, query.pageSize);
    const withInstancesOnly = validateBoolean(query.withInstancesOnly ?? false, 'withInstancesOnly');
    await this.authorize(context.identity, namespace, '*', 'read');
    const view = await this.view(context, query);
    const entries = this.allDefinitions(view, namespace, ALL_GROUPS)
      .filter((definition) =>
        (query.serviceNameContains === undefined || definition.name.includes(query.serviceNameContains)) &&
        (query.groupNameContains === undefined || definition.group.includes(query.groupNameContains)))
      .map((definition) => this.catalogEntry(view, definition))
      .filter((entry) => !withInstancesOnly || entry.instanceCount > 0);
    return Object.freeze({ count: entries.length, services: pageItems(entries, page.pageNo, page.pageSize) });
  }
}

// --- Input normalisation (pure) ---

function instanceKeyOf(address: InstanceAddress): InstanceKey {
  return validateInstanceKey({ ...address, cluster: address.cluster ?? DEFAULT_CLUSTER });
}

function serviceKeyOf(key: ServiceKey): ServiceKey {
  return { namespace: key.namespace, group: key.group, service: key.service };
}

function addressOf(key: InstanceKey): CpInstanceAddress {
  return { cluster: key.cluster, ip: key.ip, port: key.port };
}

function instanceValuesOf(spec: InstanceSpec, key: InstanceKey): InstanceValues {
  return {
    ...addressOf(key),
    weight: validateWeight(spec.weight ?? DEFAULT_WEIGHT),
    enabled: validateBoolean(spec.enabled ?? true, 'enabled'),
    healthy: validateBoolean(spec.healthy ?? true, 'healthy'),
    metadata: validateMetadata(spec.metadata ?? {}),
  };
}
