// cp-registry: the persistent registry's façade. A write encodes a command, checks it exactly as every member will
// (so an invalid write fails here, before it takes a log entry), proposes it through the CommandProposer (the Raft
// driver, or a direct proposer in tests), decodes the result and throws its CairnError on failure. A read first
// passes a ReadIndex barrier when it must be linearizable, then reads this member's applied state.
//
// Every write carries a request id (the caller's, or a fresh UUID): the state machine remembers recent results by
// id, so resending a write after CAIRN_OUTCOME_UNKNOWN with the same id never applies it twice.

import { randomUUID } from 'node:crypto';
import type { CommandProposer } from '../replica/proposer.ts';
import { CairnError } from '../errors.ts';
import { limits } from '../limits.ts';
import type { ClusterConfig, ClusterView, Instance, ServiceDefinition, ServiceKey } from '../naming/model.ts';
import {
  encodeCommand,
  type CommandFailure,
  type HealthBatchFence,
  type HealthFlip,
  type InstanceAddress,
  type InstanceValues,
  type RegistryCommand,
  type ResultPayload,
  type VersionPrecondition,
} from './commands.ts';
import type { RegistryView } from './registry-state-machine.ts';
import { decodeProposedCommand, decodeProposedResult } from './shared-decodes.ts';

/** ReadConsistency chooses how a read is served: this member's state ('local') or linearizable (ReadIndex first). */
export type ReadConsistency = 'local' | 'linearizable';

/** WriteOptions carry a write's request id (generated when absent) and how long to wait for it. */
export interface WriteOptions {
  readonly requestId?: string;
  readonly timeoutMs?: number;
}

/** CpRegistryOptions configure the façade: the default timeout and the request-id generator (tests make it deterministic). */
export interface CpRegistryOptions {
  readonly timeoutMs?: number;
  readonly newRequestId?: () => string;
}

/** CreateServiceInput is a CreateService command's content. */
export type CreateServiceInput = Omit<Extract<RegistryCommand, { type: 'createService' }>, 'type'>;
/** UpdateServiceInput is an UpdateService command's content. */
export type UpdateServiceInput = Omit<Extract<RegistryCommand, { type: 'updateService' }>, 'type'>;
/** PatchInstanceInput is a PatchInstance command's content. */
export type PatchInstanceInput = Omit<Extract<RegistryCommand, { type: 'patchInstance' }>, 'type'>;

/** InstanceWrite is an instance after a write, and its service's revision. */
export interface InstanceWrite {
  readonly instance: Instance;
  readonly revision: number;
}

/** ClusterWrite is a cluster's configuration after a write (secrets redacted), and its service's revision. */
export interface ClusterWrite {
  readonly cluster: ClusterView;
  readonly revision: number;
}

/** RemovalWrite says whether a deregistration removed an instance, and its service's revision (0: no service). */
export interface RemovalWrite {
  readonly removed: boolean;
  readonly revision: number;
}

/** HealthBatchWrite is the outcome of a committed SetHealthBatch: flips applied and skipped, and the fence ('' if none). */
export interface HealthBatchWrite {
  readonly applied: number;
  readonly skipped: number;
  readonly fenced: HealthBatchFence;
}

/** HealthBatchInput is a SetHealthBatch's content: the prober's term and assignment epoch, its id and its verdicts. */
export interface HealthBatchInput {
  readonly term: number;
  readonly prober: string;
  readonly assignment: number;
  readonly flips: readonly HealthFlip[];
}

/** errorOfFailure rebuilds the CairnError a failed command stands for. */
export function errorOfFailure(failure: CommandFailure): CairnError {
  return new CairnError(failure.code, failure.detail, failure.details === undefined ? {} : { details: failure.details });
}

function unexpected(payload: ResultPayload, expected: string): never {
  throw new CairnError('CAIRN_INTERNAL', `command result carries a ${payload.type} payload, expected ${expected}`);
}

/** CpRegistry proposes registry commands and reads the persistent registry; see the file comment. */
export class CpRegistry {
  private readonly proposer: CommandProposer;
  private readonly view: RegistryView;
  private readonly timeoutMs: number;
  private readonly newRequestId: () => string;

  constructor(proposer: CommandProposer, view: RegistryView, options: CpRegistryOptions = {}) {
    this.proposer = proposer;
    this.view = view;
    this.timeoutMs = options.timeoutMs ?? limits.requestTimeoutMs;
    this.newRequestId = options.newRequestId ?? randomUUID;
  }

  /** write proposes one command and resolves with its successful result; failures reject with their CairnError. */
  async write(command: RegistryCommand, options: WriteOptions = {}): Promise<{ readonly revision: number; readonly payload: ResultPayload }> {
    const bytes = encodeCommand({ requestId: options.requestId ?? this.newRequestId(), command });
    // Both decodings are shared with apply when this member applies these very bytes (shared-decodes.ts).
    const check = decodeProposedCommand(bytes);
    if (!check.ok) throw errorOfFailure(check);
    const result = decodeProposedResult(await this.proposer.propose(bytes, { timeoutMs: options.timeoutMs ?? this.timeoutMs }));
    if (!result.ok) throw errorOfFailure(result);
    return result;
  }

  /** read resolves with the registry's read view once a read of `consistency` may be served. */
  async read(consistency: ReadConsistency, timeoutMs?: number): Promise<RegistryView> {
    if (consistency === 'linearizable') await this.proposer.linearizableBarrier({ timeoutMs: timeoutMs ?? this.timeoutMs });
    return this.view;
  }

  /** localView is the read view without any barrier (this member's applied state). */
  localView(): RegistryView {
    return this.view;
  }

  private async serviceWrite(command: RegistryCommand, options: WriteOptions): Promise<ServiceDefinition> {
    const { payload } = await this.write(command, options);
    return payload.type === 'service' ? payload.service : unexpected(payload, 'service');
  }

  private async instanceWrite(command: RegistryCommand, options: WriteOptions): Promise<InstanceWrite> {
    const { payload, revision } = await this.write(command, options);
    return payload.type === 'instance' ? { instance: payload.instance, revision } : unexpected(payload, 'instance');
  }

  /** createService creates a service (CAIRN_SERVICE_ALREADY_EXISTS if it exists). */
  createService(input: CreateServiceInput, options: WriteOptions = {}): Promise<ServiceDefinition> {
    return this.serviceWrite({ type: 'createService', ...input }, options);
  }

  /** updateService changes the fields the input carries. */
  updateService(input: UpdateServiceInput, options: WriteOptions = {}): Promise<ServiceDefinition> {
    return this.serviceWrite({ type: 'updateService', ...input }, options);
  }

  /** deleteService deletes an empty service and resolves with the log index of the deletion. */
  async deleteService(key: ServiceKey, options: WriteOptions = {}): Promise<number> {
    return (await this.write({ type: 'deleteService', key }, options)).revision;
  }

  /** putCluster creates or replaces a cluster's configuration. */
  async putCluster(key: ServiceKey, config: ClusterConfig, options: WriteOptions = {}): Promise<ClusterWrite> {
    const { payload, revision } = await this.write({ type: 'putCluster', key, config }, options);
    return payload.type === 'cluster' ? { cluster: payload.cluster, revision } : unexpected(payload, 'cluster');
  }

  /** registerInstance registers or replaces a persistent instance, creating its service if needed. */
  registerInstance(key: ServiceKey, instance: InstanceValues, options: WriteOptions = {}, precondition: VersionPrecondition = {}): Promise<InstanceWrite> {
    return this.instanceWrite({ type: 'registerInstance', key, instance, ...precondition }, options);
  }

  /** updateInstance replaces an existing persistent instance. */
  updateInstance(key: ServiceKey, instance: InstanceValues, options: WriteOptions = {}, precondition: VersionPrecondition = {}): Promise<InstanceWrite> {
    return this.instanceWrite({ type: 'updateInstance', key, instance, ...precondition }, options);
  }

  /** patchInstance changes the given attributes of an existing persistent instance. */
  patchInstance(input: PatchInstanceInput, options: WriteOptions = {}): Promise<InstanceWrite> {
    return this.instanceWrite({ type: 'patchInstance', ...input }, options);
  }

  /** deregisterInstance removes a persistent instance (removed=false when absent). */
  async deregisterInstance(key: ServiceKey, address: InstanceAddress, options: WriteOptions = {}, precondition: VersionPrecondition = {}): Promise<RemovalWrite> {
    const { payload, revision } = await this.write({ type: 'deregisterInstance', key, address, ...precondition }, options);
    return payload.type === 'removed' ? { removed: payload.removed, revision } : unexpected(payload, 'removed');
  }

  /** setHealthBatch commits a prober's health verdicts (fenced by term and assignment; see registry-state-machine.ts). */
  async setHealthBatch(input: HealthBatchInput, options: WriteOptions = {}): Promise<HealthBatchWrite> {
    const { payload } = await this.write({ type: 'setHealthBatch', ...input }, options);
    return payload.type === 'healthBatch' ? { applied: payload.applied, skipped: payload.skipped, fenced: payload.fenced } : unexpected(payload, 'healthBatch');
  }

  /** assignProbers commits the leader's view of the live voters as the probe assignment; resolves with its fence ('' or 'stale-term'). */
  async assignProbers(term: number, members: readonly string[], options: WriteOptions = {}): Promise<HealthBatchFence> {
    const { payload } = await this.write({ type: 'assignProbers', term, members }, options);
    return payload.type === 'healthBatch' ? payload.fenced : unexpected(payload, 'healthBatch');
  }

  /** setInstanceHealth sets a persistent instance's health (its cluster's checker must be NONE). */
  setInstanceHealth(key: ServiceKey, address: InstanceAddress, healthy: boolean, options: WriteOptions = {}): Promise<InstanceWrite> {
    return this.instanceWrite({ type: 'setInstanceHealth', key, address, healthy }, options);
  }
}
