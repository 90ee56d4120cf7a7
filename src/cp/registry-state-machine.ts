// registry-state-machine: the persistent registry as a replicated state machine (Raft §5.3: every member applies
// the same commands in the same order and reaches the same state). Service definitions, cluster configurations and
// persistent instances live here; ephemeral instances live on the AP path and never reach this file.
//
// apply() is deterministic: no clock, no randomness, no iteration over unordered input (every sorted view uses plain
// string order); the only "time" is the log index, which becomes the revision of what a command changed. Each
// handler checks everything before it changes anything, so a refused command leaves no trace but its remembered
// result. Every change is mirrored into the driver's batch under the layout of keyspace.ts.
//
// Semantics (NACOS.md §1.2, §1.5, §1.6, §5; decisions marked Cairn):
// - CreateService: refused if it exists (CAIRN_SERVICE_ALREADY_EXISTS); quotas: namespacesMax, servicesPerNamespaceMax.
// - UpdateService: changes the fields it carries; CAIRN_SERVICE_NOT_FOUND if absent.
// - DeleteService: CAIRN_SERVICE_NOT_FOUND if absent; CAIRN_SERVICE_HAS_INSTANCES while instances remain (Nacos 2.x).
// - PutCluster: the service must exist (Nacos 1.4's ClusterController); creates or replaces the cluster's config.
// - RegisterInstance: upsert; auto-creates the service with defaults; CAIRN_EPHEMERAL_MISMATCH if the service was
//   declared ephemeral; quotas instancesPerServiceMax and clustersPerServiceMax.
// - UpdateInstance / PatchInstance: the instance must exist. PatchInstance changes only what it carries; metadata,
//   when carried, replaces the whole map (Nacos's PATCH).
// - Health on register/update/patch: the client's `healthy` applies to a new instance, or when the cluster's checker
//   is NONE; otherwise the checker's verdict is kept ("the checker has the most precise result": Nacos 1.4's
//   Cluster.updateIps keeps the old health of re-registered instances).
// - DeregisterInstance: succeeds when the instance or the service is absent (removed=false), as Nacos.
// - Versions (Cairn; docs/grpc.md): an instance is at version 1 when registered and one more per client write that
//   changes it (register, update, patch, health set); a probe's verdict keeps it; a deregistration ends it. A
//   register, update, patch or deregister carrying expectedVersion applies only when the instance's version (0:
//   absent) equals it, else CAIRN_VERSION_MISMATCH, checked before anything changes.
// - SetInstanceHealth: only when the cluster's checker is NONE (CAIRN_HEALTH_CHECK_ACTIVE, Nacos's "health check is
//   still working"); Cairn: an absent service or instance is an error (Nacos silently answers ok).
// - AssignProbers (Cairn, DESIGN.md "Active health checks"): the leader's view of the live voters becomes the probe
//   assignment, with the entry's index as its epoch; refused (no change) when its term is older than the entry's;
//   the same members keep the current epoch.
// - SetHealthBatch (Cairn): a prober's verdicts, FENCED: the whole batch is refused (fenced, nothing changes) when
//   its term is older than the term of the entry carrying it (a deposed leader's or a partitioned prober's
//   verdicts), when its assignment epoch is not the one in force (the shares moved since the verdicts were reached),
//   or when its prober is not a member of the assignment. Each flip then applies only when the instance exists, its
//   cluster's checker is not NONE, the prober owns it (probeOwner over the assignment) and its health differs; an
//   applied flip touches its service's revision like any write, so subscribers see health changes.
// - A write that changes nothing (re-registering an identical instance) keeps the revision, so subscribers are not
//   woken for nothing.
// - Request ids: the results of the most recent requestIdsRememberedMax writes (at most requestResultsBytesMax) are
//   remembered; a command whose id is remembered is not applied again: the same bytes get the first result, other
//   bytes get CAIRN_REQUEST_ID_REUSED. The oldest (lowest index) is forgotten first. A result showing an instance
//   that is stored as it was returned (the common case: the instance just written) is remembered as a reference to
//   that instance and rebuilt from it on a retry (the same bytes); before such an instance changes or goes, apply
//   writes the full result of every request referring to it (materializeReferences), in the same batch. Every write
//   of a registration so stores ~100 bytes in the table instead of a second copy of the instance (~580 instead of
//   ~870 bytes per write, bench/apply.ts), and snapshots shrink by as much (format 2: RememberedRequest.instance_ref).
//   TESTING ONLY: with `unsafeNoRequestDedup` (`cairn server --unsafe-no-request-dedup`) request ids are ignored:
//   nothing is looked up or remembered, so every retry is applied again. It is the planted bug of the jepsen-like
//   suite's A14 positive control (jepsen-like/README.md) and must never be set in production.

import { createHash } from 'node:crypto';
import type { ApplyBatch, ReplicatedStateMachine } from '../replica/state-machine.ts';
import { assert, assertNever } from '../assert.ts';
import { CairnError } from '../errors.ts';
import { limits as defaultLimits, type Limits } from '../limits.ts';
import {
  groupedName,
  redactCluster,
  type ClusterConfig,
  type Instance,
  type InstanceKey,
  type Metadata,
  type Selector,
  type ServiceDefinition,
  type ServiceDetail,
  type ServiceKey,
} from '../naming/model.ts';
import {
  encodeClusterConfig,
  encodeInstanceRecord,
  encodeMessage,
  encodeResult,
  encodeServiceDefinition,
  failureOf,
  toInstance,
  type CommandResult,
  type HealthBatchFence,
  type HealthFlip,
  type InstanceAddress,
  type InstanceValues,
  type RegistryCommand,
  type ResultPayload,
  type VersionPrecondition,
} from './commands.ts';
import { clusterStorageKey, instanceStorageKey, PROBE_ASSIGNMENT_STORAGE_KEY, requestStorageKey, serviceStorageKey } from './keyspace.ts';
import { probeOwner, sameMembers, type ProbeAssignment } from './probe-assignment.ts';
import { addressKey, EMPTY_RESULT, RegistryState, type InstanceRef, type RememberedRequest, type ServiceSettings, type ServiceState } from './registry-state.ts';
import { buildFromKeyspace, decodeImageInSlices, encodeProbeAssignment, encodeRemembered, encodeSnapshot, snapshotPieces, writeImageInSlices } from './registry-storage.ts';
import { decodeAppliedCommand, decodeProposedCommand, proposedHere, shareResult } from './shared-decodes.ts';
import type { KeyspaceBatch } from '../replica/storage.ts';

/** ALL_GROUPS is Nacos's group wildcard for service listings. */
export const ALL_GROUPS = '*';

/** RegistryLimits are the limits the state machine enforces; every member must run with the same values. */
export type RegistryLimits = Pick<Limits,
  'namespacesMax' | 'servicesPerNamespaceMax' | 'instancesPerServiceMax' | 'clustersPerServiceMax' | 'requestIdsRememberedMax' | 'requestResultsBytesMax'>;

/** RegistryStateMachineOptions configure a state machine; tests shrink the limits. */
export interface RegistryStateMachineOptions {
  readonly limits?: Partial<RegistryLimits>;
  /**
   * unsafeNoRequestDedup: TESTING ONLY, a planted bug for the jepsen-like A14 positive control. Request ids are
   * ignored (neither looked up nor remembered), so a retried write is applied again. Default false.
   */
  readonly unsafeNoRequestDedup?: boolean;
}

/** ServiceSummary is a service with its counts (the catalog's row). */
export interface ServiceSummary {
  readonly service: ServiceDefinition;
  readonly clusterCount: number;
  readonly instanceCount: number;
  readonly healthyInstanceCount: number;
}

/** PageSelection is a 1-based page. */
export interface PageSelection {
  readonly pageNo: number;
  readonly pageSize: number;
}

/** Page is one page of a sorted listing and the total count. */
export interface Page<T> {
  readonly count: number;
  readonly items: readonly T[];
}

/** CatalogFilter narrows the catalog: substrings of names, and services holding instances only. */
export interface CatalogFilter {
  readonly serviceNameContains?: string;
  readonly groupNameContains?: string;
  readonly withInstancesOnly?: boolean;
}

/** RegistryView is the read side of the persistent registry: synchronous reads of this member's applied state. */
export interface RegistryView {
  /** appliedThrough is the highest log index whose command this view reflects (0 before any). */
  appliedThrough(): number;
  /** getService returns a service's definition, or null. */
  getService(key: ServiceKey): ServiceDefinition | null;
  /** getServiceDetail returns a service with its clusters, secrets redacted, or null. */
  getServiceDetail(key: ServiceKey): ServiceDetail | null;
  /** clusterConfig returns a cluster's effective configuration WITH secrets (for the health checker, never for users), or null without the service. */
  clusterConfig(key: ServiceKey, cluster: string): ClusterConfig | null;
  /** getInstance returns one instance, or null. */
  getInstance(key: InstanceKey): Instance | null;
  /** listInstances returns a service's instances sorted by cluster, ip, port (empty when absent). */
  listInstances(key: ServiceKey): readonly Instance[];
  /** instancesOf iterates a service's instances in no particular order, without sorting or copying them (empty when absent). */
  instancesOf(key: ServiceKey): Iterable<Instance>;
  /** instanceClusters iterates the clusters that hold a service's instances, unsorted, without copying (empty when absent). */
  instanceClusters(key: ServiceKey): Iterable<string>;
  /** services returns a namespace's services of one group, or of all with ALL_GROUPS, sorted by group then name. */
  services(namespace: string, group: string): readonly ServiceDefinition[];
  /** listServices pages services(namespace, group). */
  listServices(namespace: string, group: string, page: PageSelection): Page<ServiceDefinition>;
  /** summaries returns every service of a namespace with its counts, sorted by group then name. */
  summaries(namespace: string): readonly ServiceSummary[];
  /** catalog pages the filtered summaries of a namespace. */
  catalog(namespace: string, filter: CatalogFilter, page: PageSelection): Page<ServiceSummary>;
  /** counts returns how many namespaces, services, instances and remembered requests the registry holds. */
  counts(): RegistryCounts;
  /** namespaces returns the ids of the namespaces holding services, sorted. */
  namespaces(): readonly string[];
  /** probeAssignment returns the probe assignment in force (who probes which persistent instance), or null. */
  probeAssignment(): ProbeAssignment | null;
}

/** RegistryCounts are the registry's sizes. */
export interface RegistryCounts {
  readonly namespaces: number;
  readonly services: number;
  readonly instances: number;
  readonly rememberedRequests: number;
}

/** describeService renders a service key for messages: `namespace/group@@service`. */
export function describeService(key: ServiceKey): string {
  return `${key.namespace}/${groupedName(key.group, key.service)}`;
}

function describeInstance(key: ServiceKey, address: InstanceAddress): string {
  return `${address.ip}:${address.port} in cluster ${address.cluster} of ${describeService(key)}`;
}

function sameMetadata(a: Metadata, b: Metadata): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((key) => Object.hasOwn(b, key) && a[key] === b[key]);
}

function sameSelector(a: Selector, b: Selector): boolean {
  return a.type === b.type && (a.type !== 'label' || (b.type === 'label' && a.expression === b.expression));
}

function sameInstance(a: InstanceValues, b: InstanceValues): boolean {
  return a.weight === b.weight && a.enabled === b.enabled && a.healthy === b.healthy && sameMetadata(a.metadata, b.metadata);
}

/** versionOf is an instance's version, 0 when it is absent (a stored instance without one counts as version 1). */
function versionOf(existing: Instance | undefined): number {
  return existing === undefined ? 0 : (existing.version ?? 1);
}

/** checkVersion enforces a compare-and-set write's precondition against the instance found (version 0: absent). */
function checkVersion(precondition: VersionPrecondition, existing: Instance | undefined, key: ServiceKey, address: InstanceAddress): void {
  if (precondition.expectedVersion === undefined) return;
  const actual = versionOf(existing);
  if (actual !== precondition.expectedVersion) {
    throw new CairnError('CAIRN_VERSION_MISMATCH',
      `instance ${address.ip}:${address.port} (cluster ${address.cluster}) of ${describeService(key)} is at version ${actual}, not ${precondition.expectedVersion}`,
      { details: { expected: precondition.expectedVersion, actual } });
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

function clusterBytes(config: ClusterConfig): Uint8Array {
  return encodeMessage('ClusterRecord', encodeClusterConfig(config));
}

function pageOf<T>(items: readonly T[], page: PageSelection): Page<T> {
  assert(page.pageNo >= 1 && page.pageSize >= 1, 'pageOf: pages start at 1 and hold at least one item');
  const start = (page.pageNo - 1) * page.pageSize;
  return { count: items.length, items: items.slice(start, start + page.pageSize) };
}

/**
 * RegistryChange is what a change listener hears: one service changed (instances, health, definition, clusters,
 * deletion) at log index `index`, or the whole state was replaced (`restored`: a snapshot was installed or the state
 * loaded at start-up), after which any service may differ.
 */
export type RegistryChange =
  | { readonly type: 'service'; readonly key: ServiceKey; readonly index: number }
  | { readonly type: 'restored'; readonly index: number };

/** RegistryChangeListener hears every applied change; it runs synchronously after the change is visible and must be cheap. */
export type RegistryChangeListener = (change: RegistryChange) => void;

/** RegistryStateMachine is the persistent registry's ReplicatedStateMachine and its RegistryView; see the file comment. */
export class RegistryStateMachine implements ReplicatedStateMachine, RegistryView {
  private state = new RegistryState();
  /** appliedIndex is the highest index applied, or recorded in restored or loaded state; apply only moves it up. */
  private appliedIndex = 0;
  private readonly limits: RegistryLimits;
  /** requestDedup is false only under the TESTING ONLY unsafeNoRequestDedup option: every retry is applied again. */
  private readonly requestDedup: boolean;
  /** listeners hear changes (subscriptions, src/naming/subscriptions.ts); they never influence what is applied. */
  private readonly listeners = new Set<RegistryChangeListener>();
  /** changed collects the services touched by the command being applied; emptied after each command. */
  private readonly changed = new Map<string, ServiceKey>();
  /** listenerFailures counts listeners that threw (they are isolated from apply; the count is for tests and metrics). */
  listenerFailures = 0;

  constructor(options: RegistryStateMachineOptions = {}) {
    this.limits = { ...defaultLimits, ...options.limits };
    this.requestDedup = options.unsafeNoRequestDedup !== true;
  }

  /**
   * onServiceChanged registers a listener for every applied change of a service, fired once per changed service
   * after the command's whole change is in memory (so a read from the listener, or later, sees it); returns its
   * removal. A listener that throws is counted and ignored: listeners cannot break apply.
   */
  onServiceChanged(listener: RegistryChangeListener): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  private emit(change: RegistryChange): void {
    for (const listener of this.listeners) {
      try {
        listener(change);
      } catch {
        this.listenerFailures += 1;
      }
    }
  }

  private emitChanged(index: number): void {
    if (this.changed.size === 0) return;
    const keys = [...this.changed.values()];
    this.changed.clear();
    for (const key of keys) this.emit({ type: 'service', key, index });
  }

  /** apply decodes one command, applies it unless its request id is remembered, and returns the encoded result. */
  apply(command: Uint8Array, index: number, term: number, batch: ApplyBatch, wanted = true): Uint8Array {
    assert(Number.isSafeInteger(index) && index > this.appliedIndex, `apply: index ${index} after ${this.appliedIndex}`);
    assert(Number.isSafeInteger(term) && term >= 1, `apply: bad term ${term}`);
    this.appliedIndex = index;
    // Only the proposer decodes the result it is handed; elsewhere keeping a decoded form would be a wasted copy.
    const local = proposedHere(command);
    const decoded = decodeAppliedCommand(command);
    if (!decoded.ok) return encodeResult(decoded);
    if (!this.requestDedup) return this.applyWithoutDedup(decoded.envelope.command, index, term, batch, local);
    const { requestId } = decoded.envelope;
    const digest = createHash('sha256').update(command).digest('binary');
    const remembered = this.state.requests.get(requestId);
    if (remembered !== undefined) {
      if (remembered.digest === digest) return this.rememberedResult(remembered);
      return encodeResult({
        ok: false, code: 'CAIRN_REQUEST_ID_REUSED',
        detail: `request id '${requestId}' was used by a different write (log index ${remembered.index})`,
        details: { requestId },
      });
    }
    const outcome = this.execute(decoded.envelope.command, index, term, batch);
    const instanceRef = this.referenceFor(outcome);
    // A result remembered by reference is rebuilt from its instance when asked for; encoded only for whoever waits.
    const result = instanceRef === null || wanted ? encodeResult(outcome) : EMPTY_RESULT;
    this.remember({ requestId, index, digest, result: instanceRef === null ? result : EMPTY_RESULT, instanceRef }, batch);
    this.emitChanged(index);
    if (!wanted) return EMPTY_RESULT;
    const returned = result.slice();
    if (local) shareResult(returned, outcome);
    return returned;
  }

  /**
   * applyWithoutDedup is apply under the TESTING ONLY unsafeNoRequestDedup option: the command is executed whatever
   * its request id, and nothing is remembered, so a retry of a write that already applied applies again.
   */
  private applyWithoutDedup(command: RegistryCommand, index: number, term: number, batch: ApplyBatch, local: boolean): Uint8Array {
    const outcome = this.execute(command, index, term, batch);
    this.emitChanged(index);
    const returned = encodeResult(outcome);
    if (local) shareResult(returned, outcome);
    return returned;
  }

  private execute(command: RegistryCommand, index: number, term: number, batch: ApplyBatch): CommandResult {
    this.changed.clear();
    try {
      switch (command.type) {
        case 'createService': return this.createService(command, index, batch);
        case 'updateService': return this.updateService(command, index, batch);
        case 'deleteService': return this.deleteService(command, index, batch);
        case 'putCluster': return this.putCluster(command, index, batch);
        case 'registerInstance': return this.registerInstance(command, index, batch);
        case 'updateInstance': return this.updateInstance(command, index, batch);
        case 'patchInstance': return this.patchInstance(command, index, batch);
        case 'deregisterInstance': return this.deregisterInstance(command, index, batch);
        case 'setInstanceHealth': return this.setInstanceHealth(command, index, batch);
        case 'setHealthBatch': return this.setHealthBatch(command, index, term, batch);
        case 'assignProbers': return this.assignProbers(command, index, term, batch);
        default: return assertNever(command);
      }
    } catch (error) {
      // Only operating errors become results; a broken invariant (AssertionError) must crash the member.
      if (!(error instanceof CairnError)) throw error;
      return failureOf(error, 'CAIRN_INTERNAL', 'apply');
    }
  }

  /**
   * referenceFor returns how a result may be remembered by reference: an instance payload whose instance is the one
   * stored now (the very object), so that it can be rebuilt from it; null when the result must be kept in full.
   */
  private referenceFor(outcome: CommandResult): InstanceRef | null {
    if (!outcome.ok || outcome.payload.type !== 'instance') return null;
    const { key, instance } = outcome.payload;
    const service = this.state.findService(key);
    if (service?.instances.get(addressKey(instance)) !== instance) return null;
    // The service's own key and the stored instance (an InstanceAddress too): the reference holds no copies.
    return { instance: instanceStorageKey(key, instance), key: service.settings.key, address: instance, revision: outcome.revision };
  }

  /** rememberedResult returns a remembered request's first result: kept in full, or rebuilt from the instance it names. */
  private rememberedResult(remembered: RememberedRequest): Uint8Array {
    const ref = remembered.instanceRef;
    if (ref === null) return remembered.result.slice();
    const instance = this.state.findService(ref.key)?.instances.get(addressKey(ref.address));
    assert(instance !== undefined, `remembered request ${remembered.requestId} refers to a missing instance`);
    return encodeResult({ ok: true, revision: ref.revision, payload: { type: 'instance', key: ref.key, instance } });
  }

  /**
   * materializeReferences is called before the stored instance `current` changes or goes: the remembered results
   * rebuilt from it are written in full first, so a retry still gets exactly its first result.
   */
  private materializeReferences(key: ServiceKey, current: Instance, batch: ApplyBatch): void {
    const referencing = this.state.referencing(key, current);
    if (referencing.length === 0) return;
    // Bounded by the request table; the list is copied since materialize empties it.
    for (const requestId of [...referencing]) {
      const ref = this.state.requests.get(requestId)?.instanceRef;
      assert(ref !== null && ref !== undefined, 'materializeReferences: not a reference');
      const result = encodeResult({ ok: true, revision: ref.revision, payload: { type: 'instance', key: ref.key, instance: current } });
      const full = this.state.materialize(requestId, result);
      batch.put(requestStorageKey(requestId), encodeMessage('RememberedRequest', encodeRemembered(full)));
    }
  }

  private remember(request: RememberedRequest, batch: ApplyBatch): void {
    this.state.remember(request);
    batch.put(requestStorageKey(request.requestId), encodeMessage('RememberedRequest', encodeRemembered(request)));
    // Bounded: each pass removes one entry, and the table held at most requestIdsRememberedMax before this insert.
    while (this.state.requests.size > this.limits.requestIdsRememberedMax || (this.state.requestBytes > this.limits.requestResultsBytesMax && this.state.requests.size > 1)) {
      batch.del(requestStorageKey(this.state.forgetOldest().requestId));
    }
  }

  // --- Helpers shared by the handlers ---

  private requireService(key: ServiceKey): ServiceState {
    const service = this.state.findService(key);
    if (service === undefined) throw new CairnError('CAIRN_SERVICE_NOT_FOUND', `service not found: ${describeService(key)}`, { details: { service: describeService(key) } });
    return service;
  }

  private requireInstance(service: ServiceState, address: InstanceAddress): Instance {
    const instance = service.instances.get(addressKey(address));
    if (instance === undefined) {
      throw new CairnError('CAIRN_INSTANCE_NOT_FOUND', `instance not found: ${describeInstance(service.settings.key, address)}`);
    }
    return instance;
  }

  private admitService(key: ServiceKey): void {
    const namespace = this.state.namespaces.get(key.namespace);
    if (namespace === undefined && this.state.namespaces.size >= this.limits.namespacesMax) {
      throw new CairnError('CAIRN_NAMESPACES_EXCEEDED', `namespace ${key.namespace} would exceed ${this.limits.namespacesMax} namespaces`,
        { details: { limit: this.limits.namespacesMax } });
    }
    if (namespace !== undefined && namespace.services.size >= this.limits.servicesPerNamespaceMax) {
      throw new CairnError('CAIRN_SERVICES_PER_NAMESPACE_EXCEEDED',
        `namespace ${key.namespace} already holds ${this.limits.servicesPerNamespaceMax} services`, { details: { limit: this.limits.servicesPerNamespaceMax } });
    }
  }

  private admitCluster(service: ServiceState, cluster: string): void {
    if (this.state.hasCluster(service, cluster) || this.state.clusterCount(service) < this.limits.clustersPerServiceMax) return;
    throw new CairnError('CAIRN_CLUSTERS_PER_SERVICE_EXCEEDED',
      `${describeService(service.settings.key)} already has ${this.limits.clustersPerServiceMax} clusters`, { details: { limit: this.limits.clustersPerServiceMax } });
  }

  private admitInstance(service: ServiceState, cluster: string): void {
    if (service.instances.size >= this.limits.instancesPerServiceMax) {
      throw new CairnError('CAIRN_INSTANCES_PER_SERVICE_EXCEEDED',
        `${describeService(service.settings.key)} already holds ${this.limits.instancesPerServiceMax} instances`, { details: { limit: this.limits.instancesPerServiceMax } });
    }
    this.admitCluster(service, cluster);
  }

  /** touch gives a changed service the revision `index`, rewrites its record and marks it for the change listeners. */
  private touch(service: ServiceState, index: number, batch: ApplyBatch): void {
    this.changed.set(describeService(service.settings.key), service.settings.key);
    this.state.setSettings(service, { ...service.settings, revision: index });
    batch.put(serviceStorageKey(service.settings.key), encodeMessage('ServiceRecord',
      encodeServiceDefinition(this.state.definition(service), service.settings.declaredKind)));
  }

  private ok(service: ServiceState | undefined, payload: ResultPayload): CommandResult {
    return { ok: true, revision: service === undefined ? 0 : service.settings.revision, payload };
  }

  private serviceResult(service: ServiceState): CommandResult {
    return this.ok(service, { type: 'service', service: this.state.definition(service) });
  }

  private instanceResult(service: ServiceState, instance: Instance): CommandResult {
    return this.ok(service, { type: 'instance', key: service.settings.key, instance });
  }

  /** decideHealth applies the client's health to a new instance or under a NONE checker; else the checker's verdict stays. */
  private decideHealth(service: ServiceState, existing: Instance | undefined, requested: boolean, cluster: string): boolean {
    if (existing === undefined) return requested;
    return this.state.effectiveCluster(service, cluster).healthChecker.type === 'NONE' ? requested : existing.healthy;
  }

  /**
   * storeInstance writes an instance unless it is unchanged, and touches its service when it changed. A new
   * instance gets version 1; a change by a client write (`clientWrite`) adds one; a probe's verdict keeps it.
   */
  private storeInstance(service: ServiceState, existing: Instance | undefined, values: InstanceValues, index: number, batch: ApplyBatch, clientWrite = true): CommandResult {
    if (existing !== undefined && sameInstance(existing, values)) return this.instanceResult(service, existing);
    const version = existing === undefined || clientWrite ? versionOf(existing) + 1 : versionOf(existing);
    const instance = toInstance(service.settings.key, { ...values, version });
    if (existing !== undefined) this.materializeReferences(service.settings.key, existing, batch);
    this.state.setInstance(service, instance);
    batch.put(instanceStorageKey(service.settings.key, instance), encodeInstanceRecord(instance));
    this.touch(service, index, batch);
    return this.instanceResult(service, instance);
  }

  // --- Handlers: check everything, then change ---

  private createService(command: Extract<RegistryCommand, { type: 'createService' }>, index: number, batch: ApplyBatch): CommandResult {
    if (this.state.findService(command.key) !== undefined) {
      throw new CairnError('CAIRN_SERVICE_ALREADY_EXISTS', `specified service already exists: ${describeService(command.key)}`);
    }
    this.admitService(command.key);
    const { key, protectThreshold, metadata, selector, kind } = command;
    const service = this.state.addService({ key, protectThreshold, metadata, selector, declaredKind: kind, revision: index });
    this.touch(service, index, batch);
    return this.serviceResult(service);
  }

  private updateService(command: Extract<RegistryCommand, { type: 'updateService' }>, index: number, batch: ApplyBatch): CommandResult {
    const service = this.requireService(command.key);
    const before = service.settings;
    const after: ServiceSettings = {
      ...before,
      protectThreshold: command.protectThreshold ?? before.protectThreshold,
      metadata: command.metadata ?? before.metadata,
      selector: command.selector ?? before.selector,
    };
    const unchanged = after.protectThreshold === before.protectThreshold && sameMetadata(after.metadata, before.metadata) && sameSelector(after.selector, before.selector);
    if (!unchanged) {
      this.state.setSettings(service, after);
      this.touch(service, index, batch);
    }
    return this.serviceResult(service);
  }

  private deleteService(command: Extract<RegistryCommand, { type: 'deleteService' }>, index: number, batch: ApplyBatch): CommandResult {
    const service = this.requireService(command.key);
    if (service.instances.size > 0) {
      throw new CairnError('CAIRN_SERVICE_HAS_INSTANCES',
        `Service ${describeService(command.key)} is not empty, can't be delete. Please unregister instance first`, { details: { instances: service.instances.size } });
    }
    for (const name of service.clusters.keys()) batch.del(clusterStorageKey(command.key, name));
    batch.del(serviceStorageKey(command.key));
    this.state.removeService(service);
    this.changed.set(describeService(command.key), command.key);
    return { ok: true, revision: index, payload: { type: 'none' } };
  }

  private putCluster(command: Extract<RegistryCommand, { type: 'putCluster' }>, index: number, batch: ApplyBatch): CommandResult {
    const service = this.requireService(command.key);
    this.admitCluster(service, command.config.name);
    const existing = service.clusters.get(command.config.name);
    if (existing === undefined || !sameBytes(clusterBytes(existing), clusterBytes(command.config))) {
      this.state.setCluster(service, command.config);
      batch.put(clusterStorageKey(command.key, command.config.name), clusterBytes(command.config));
      this.touch(service, index, batch);
    }
    return this.ok(service, { type: 'cluster', cluster: redactCluster(command.config) });
  }

  private registerInstance(command: Extract<RegistryCommand, { type: 'registerInstance' }>, index: number, batch: ApplyBatch): CommandResult {
    const { key, instance: values } = command;
    let service = this.state.findService(key);
    if (service?.settings.declaredKind === 'ephemeral') {
      throw new CairnError('CAIRN_EPHEMERAL_MISMATCH',
        `Current service ${describeService(key)} is ephemeral service, can't register persistent instance.`);
    }
    const existing = service?.instances.get(addressKey(values));
    checkVersion(command, existing, key, values);
    if (service === undefined) this.admitService(key);
    else if (existing === undefined) this.admitInstance(service, values.cluster);
    if (service === undefined) {
      service = this.state.addService({ key, protectThreshold: 0, metadata: Object.freeze({}), selector: Object.freeze({ type: 'none' }), declaredKind: null, revision: index });
    }
    const healthy = this.decideHealth(service, existing, values.healthy, values.cluster);
    return this.storeInstance(service, existing, { ...values, healthy }, index, batch);
  }

  private updateInstance(command: Extract<RegistryCommand, { type: 'updateInstance' }>, index: number, batch: ApplyBatch): CommandResult {
    const service = this.requireService(command.key);
    const existing = this.requireInstance(service, command.instance);
    checkVersion(command, existing, command.key, command.instance);
    const healthy = this.decideHealth(service, existing, command.instance.healthy, command.instance.cluster);
    return this.storeInstance(service, existing, { ...command.instance, healthy }, index, batch);
  }

  private patchInstance(command: Extract<RegistryCommand, { type: 'patchInstance' }>, index: number, batch: ApplyBatch): CommandResult {
    const service = this.requireService(command.key);
    const existing = this.requireInstance(service, command.address);
    checkVersion(command, existing, command.key, command.address);
    const values: InstanceValues = {
      ...command.address,
      weight: command.weight ?? existing.weight,
      enabled: command.enabled ?? existing.enabled,
      healthy: this.decideHealth(service, existing, command.healthy ?? existing.healthy, command.address.cluster),
      metadata: command.metadata ?? existing.metadata,
    };
    return this.storeInstance(service, existing, values, index, batch);
  }

  private deregisterInstance(command: Extract<RegistryCommand, { type: 'deregisterInstance' }>, index: number, batch: ApplyBatch): CommandResult {
    const service = this.state.findService(command.key);
    checkVersion(command, service?.instances.get(addressKey(command.address)), command.key, command.address);
    if (service === undefined || !service.instances.has(addressKey(command.address))) {
      return this.ok(service, { type: 'removed', removed: false });
    }
    const existing = service.instances.get(addressKey(command.address));
    assert(existing !== undefined, 'deregisterInstance: the instance vanished');
    this.materializeReferences(service.settings.key, existing, batch);
    this.state.deleteInstance(service, command.address);
    batch.del(instanceStorageKey(command.key, command.address));
    this.touch(service, index, batch);
    return this.ok(service, { type: 'removed', removed: true });
  }

  private setInstanceHealth(command: Extract<RegistryCommand, { type: 'setInstanceHealth' }>, index: number, batch: ApplyBatch): CommandResult {
    const service = this.requireService(command.key);
    const existing = this.requireInstance(service, command.address);
    const checker = this.state.effectiveCluster(service, command.address.cluster).healthChecker;
    if (checker.type !== 'NONE') {
      throw new CairnError('CAIRN_HEALTH_CHECK_ACTIVE',
        `health check is still working, service: ${groupedName(command.key.group, command.key.service)} (cluster ${command.address.cluster} uses ${checker.type})`);
    }
    return this.storeInstance(service, existing, { ...existing, healthy: command.healthy }, index, batch);
  }

  private assignProbers(command: Extract<RegistryCommand, { type: 'assignProbers' }>, index: number, term: number, batch: ApplyBatch): CommandResult {
    const current = this.state.probeAssignment;
    const stale = command.term < term;
    if (!stale && (current === null || !sameMembers(current.members, command.members))) {
      const assignment: ProbeAssignment = Object.freeze({ epoch: index, members: command.members, term: command.term });
      this.state.probeAssignment = assignment;
      batch.put(PROBE_ASSIGNMENT_STORAGE_KEY, encodeMessage('ProbeAssignment', encodeProbeAssignment(assignment)));
    }
    return { ok: true, revision: 0, payload: { type: 'healthBatch', applied: 0, skipped: 0, fenced: stale ? 'stale-term' : '' } };
  }

  /** healthBatchFence says why a SetHealthBatch in an entry of `term` must be refused as a whole ('' when it may apply). */
  private healthBatchFence(command: Extract<RegistryCommand, { type: 'setHealthBatch' }>, term: number): HealthBatchFence {
    if (command.term < term) return 'stale-term';
    const assignment = this.state.probeAssignment;
    if (assignment === null || assignment.epoch !== command.assignment) return 'stale-assignment';
    if (!assignment.members.includes(command.prober)) return 'not-a-prober';
    return '';
  }

  private setHealthBatch(command: Extract<RegistryCommand, { type: 'setHealthBatch' }>, index: number, term: number, batch: ApplyBatch): CommandResult {
    const fenced = this.healthBatchFence(command, term);
    const members = this.state.probeAssignment?.members ?? [];
    let applied = 0;
    if (fenced === '') {
      for (const flip of command.flips) if (this.applyFlip(flip, command.prober, members, index, batch)) applied += 1;
    }
    return { ok: true, revision: 0, payload: { type: 'healthBatch', applied, skipped: command.flips.length - applied, fenced } };
  }

  /** applyFlip applies one verdict when the instance exists, is actively checked, is the prober's and changes; tells whether it did. */
  private applyFlip(flip: HealthFlip, prober: string, members: readonly string[], index: number, batch: ApplyBatch): boolean {
    const service = this.state.findService(flip.key);
    const existing = service?.instances.get(addressKey(flip.address));
    if (service === undefined || existing === undefined || existing.healthy === flip.healthy) return false;
    if (this.state.effectiveCluster(service, flip.address.cluster).healthChecker.type === 'NONE') return false;
    if (probeOwner(members, flip.address.ip, flip.address.port) !== prober) return false;
    this.storeInstance(service, existing, { ...existing, healthy: flip.healthy }, index, batch, false);
    return true;
  }

  /**
   * validateCommand refuses bytes that are no valid command before a forwarded write proposes them (the driver's
   * ReplicatedStateMachine.validateCommand): apply would only answer them with a failure, after they took a log entry.
   * The leader proposes these very bytes, so the decoded form is kept for apply (shared-decodes.ts), as for a write
   * proposed here: a forwarded write is decoded once on the leader, not twice (apply then also keeps its result
   * form, which the forwarding reply does not use: a copy of a few hundred bytes against a second decode).
   */
  validateCommand(command: Uint8Array): { readonly code: string; readonly message: string } | null {
    const decoded = decodeProposedCommand(command);
    return decoded.ok ? null : { code: decoded.code, message: decoded.detail };
  }

  // --- Snapshot, restore, load ---

  /** snapshot encodes the whole state deterministically: equal states give equal bytes on every member. */
  snapshot(): Uint8Array {
    return encodeSnapshot(this.state);
  }

  /** snapshotPieces captures the state now and yields its snapshot in pieces (registry-storage.ts snapshotPieces). */
  snapshotPieces(): Iterator<Uint8Array, void, void> {
    return snapshotPieces(this.state);
  }

  /** restore replaces the state by a snapshot and writes its keyspace to `batch` (the driver cleared it first). */
  restore(data: Uint8Array, batch: ApplyBatch): void {
    const steps = this.restoreInSlices(data, batch);
    while (steps.next().done !== true) { /* every step at once */ }
  }

  /**
   * restoreInSlices is restore in steps of a few hundred records (registry-storage.ts RESTORE_PIECE_ITEMS): the new
   * state is decoded and its keyspace written aside, and replaces the current one in the last step.
   */
  *restoreInSlices(data: Uint8Array, batch: ApplyBatch): Generator<void, void, void> {
    const image = yield* decodeImageInSlices(data);
    const next = image.state;
    yield* writeImageInSlices(image, batch);
    this.state = next;
    this.appliedIndex = next.maxIndex();
    this.emit({ type: 'restored', index: this.appliedIndex });
  }

  /** load rebuilds the state from the stored keyspace at start-up; a record that does not fit is CAIRN_STORAGE_CORRUPT. */
  async load(entries: AsyncIterable<KeyspaceBatch>): Promise<void> {
    const next = await buildFromKeyspace(entries);
    this.state = next;
    this.appliedIndex = next.maxIndex();
    this.emit({ type: 'restored', index: this.appliedIndex });
  }

  // --- Reads (RegistryView) ---

  /** getService returns a service's definition, or null. */
  appliedThrough(): number {
    return this.appliedIndex;
  }

  getService(key: ServiceKey): ServiceDefinition | null {
    const service = this.state.findService(key);
    return service === undefined ? null : this.state.definition(service);
  }

  /** getServiceDetail returns a service with every cluster (configured, or holding instances with defaults), secrets redacted. */
  getServiceDetail(key: ServiceKey): ServiceDetail | null {
    const service = this.state.findService(key);
    if (service === undefined) return null;
    const clusters = this.state.clusterNames(service).map((name) => redactCluster(this.state.effectiveCluster(service, name)));
    return Object.freeze({ service: this.state.definition(service), clusters: Object.freeze(clusters) });
  }

  /** clusterConfig returns a cluster's effective configuration with its secrets (for the health checker only), or null. */
  clusterConfig(key: ServiceKey, cluster: string): ClusterConfig | null {
    const service = this.state.findService(key);
    return service === undefined ? null : this.state.effectiveCluster(service, cluster);
  }

  /** getInstance returns one instance, or null. */
  getInstance(key: InstanceKey): Instance | null {
    return this.state.findService(key)?.instances.get(addressKey(key)) ?? null;
  }

  /** listInstances returns a service's instances sorted by cluster, ip, port. */
  listInstances(key: ServiceKey): readonly Instance[] {
    const service = this.state.findService(key);
    return service === undefined ? [] : this.state.sortedInstances(service);
  }

  /** instancesOf iterates a service's instances unsorted: for walks that do not need listInstances' order. */
  instancesOf(key: ServiceKey): Iterable<Instance> {
    const service = this.state.findService(key);
    return service === undefined ? [] : service.instances.values();
  }

  /** instanceClusters iterates the clusters holding a service's instances (the state's per-cluster counts). */
  instanceClusters(key: ServiceKey): Iterable<string> {
    const service = this.state.findService(key);
    return service === undefined ? [] : service.instancesPerCluster.keys();
  }

  /** services returns a namespace's services of `group` (or ALL_GROUPS), sorted by group then name. */
  services(namespace: string, group: string): readonly ServiceDefinition[] {
    return this.state.sortedServices(namespace)
      .filter((service) => group === ALL_GROUPS || service.settings.key.group === group)
      .map((service) => this.state.definition(service));
  }

  /** listServices pages services(namespace, group). */
  listServices(namespace: string, group: string, page: PageSelection): Page<ServiceDefinition> {
    return pageOf(this.services(namespace, group), page);
  }

  /** summaries returns every service of a namespace with its cluster, instance and healthy-instance counts. */
  summaries(namespace: string): readonly ServiceSummary[] {
    return this.state.sortedServices(namespace).map((service) => {
      let healthyInstanceCount = 0;
      for (const instance of service.instances.values()) if (instance.healthy) healthyInstanceCount += 1;
      return {
        service: this.state.definition(service),
        clusterCount: this.state.clusterCount(service),
        instanceCount: service.instances.size,
        healthyInstanceCount,
      };
    });
  }

  /** catalog pages the summaries of a namespace that match `filter`. */
  catalog(namespace: string, filter: CatalogFilter, page: PageSelection): Page<ServiceSummary> {
    const matching = this.summaries(namespace).filter((summary) =>
      (filter.serviceNameContains === undefined || summary.service.name.includes(filter.serviceNameContains)) &&
      (filter.groupNameContains === undefined || summary.service.group.includes(filter.groupNameContains)) &&
      (filter.withInstancesOnly !== true || summary.instanceCount > 0));
    return pageOf(matching, page);
  }

  /** namespaces returns the ids of the namespaces holding services, sorted. */
  namespaces(): readonly string[] {
    return this.state.sortedNamespaces();
  }

  /** probeAssignment returns the probe assignment in force, or null until a leader committed one. */
  probeAssignment(): ProbeAssignment | null {
    return this.state.probeAssignment;
  }

  /** counts returns the registry's sizes. */
  counts(): RegistryCounts {
    return {
      namespaces: this.state.namespaces.size,
      services: this.state.serviceCount,
      instances: this.state.instanceCount,
      rememberedRequests: this.state.requests.size,
    };
  }
}
