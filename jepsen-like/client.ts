// client: what a workload asks of a member, whichever transport carries it, and how an answer becomes a history
// completion. 'ok' took effect with the answer given; 'fail' certainly did not take effect (a refusal before the
// log, or a connection that was never made); 'info' may or may not have (a timeout, a connection lost after the
// request left, CAIRN_OUTCOME_UNKNOWN, an internal error). Jepsen's rule: when unsure, info, never fail.

import { RegistryStateMachine } from '../src/cp/registry-state-machine.ts';
import { isCairnError } from '../src/errors.ts';
import { fetchLiveBackup } from '../src/replica/backup-fetch.ts';

/** Transport is how an operation reaches a member. */
export type Transport = 'http' | 'grpc';

/** InstanceRef names one persistent instance of a service. */
export interface InstanceRef {
  readonly service: string;
  readonly ip: string;
  readonly port: number;
}

/** Outcome is the end of one call: ok with a value, or fail/info with the reason. */
export type Outcome<T> =
  | { readonly type: 'ok'; readonly value: T }
  | { readonly type: 'fail'; readonly error: string }
  | { readonly type: 'info'; readonly error: string };

/** WriteAnswer is what a register answered: the instance's new version where the transport reports it (gRPC). */
export interface WriteAnswer {
  readonly version?: number;
}

/** CasAnswer is a compare-and-set's answer: applied at a new version, or refused (the version was another). */
export type CasAnswer = { readonly applied: true; readonly version: number } | { readonly applied: false; readonly actual: number | null };

/** InstanceRead is an instance read linearizably: its metadata and, where the transport reports it (gRPC), its version. */
export interface InstanceRead {
  readonly metadata: Readonly<Record<string, string>>;
  readonly version?: number;
}

/** RegistryClient is one member as seen through one transport. */
export interface RegistryClient {
  /** register upserts a persistent instance with `metadata`, sending `requestId` for at-most-once retries. */
  register(ref: InstanceRef, metadata: Readonly<Record<string, string>>, requestId: string): Promise<Outcome<WriteAnswer>>;
  /**
   * casMetadata registers the instance with `metadata` only if its version is `expectedVersion` (0: absent).
   * gRPC only: the Nacos HTTP API has no compare-and-set, so over HTTP it fails without sending anything.
   */
  casMetadata(ref: InstanceRef, metadata: Readonly<Record<string, string>>, expectedVersion: number, requestId: string): Promise<Outcome<CasAnswer>>;
  /** deregister removes a persistent instance (absent is ok). */
  deregister(ref: InstanceRef, requestId: string): Promise<Outcome<null>>;
  /** getInstance reads an instance linearizably, or null when it is absent. */
  getInstance(ref: InstanceRef): Promise<Outcome<InstanceRead | null>>;
  /** listAddresses lists a service's instances linearizably as "ip:port" strings. */
  listAddresses(service: string): Promise<Outcome<string[]>>;
  /**
   * backupAddresses takes a backup of the member as `cairn backup save --from` does (the peer port's Backup method,
   * checked whole) and lists the service's instances in it as "ip:port" strings: a read through a backup.
   */
  backupAddresses(service: string): Promise<Outcome<string[]>>;
  /** close releases the transport's connections. */
  close(): void;
}

/** certainlyNotCommitted are the Cairn codes of docs/errors.md whose write did not commit: the op failed. */
const certainlyNotCommitted: ReadonlySet<string> = new Set([
  'CAIRN_NOT_LEADER',
  'CAIRN_NO_LEADER',
  'CAIRN_NO_QUORUM',
  'CAIRN_PROPOSAL_DROPPED',
  'CAIRN_UNCOMMITTED_BYTES_EXCEEDED',
  'CAIRN_TOO_MANY_PENDING_READS',
  'CAIRN_TRANSFER_IN_PROGRESS',
  'CAIRN_SHUTTING_DOWN',
  'CAIRN_MEMBER_STALLED',
  'CAIRN_INVALID_ARGUMENT',
  'CAIRN_REQUEST_ID_REUSED',
  'CAIRN_INSTANCES_PER_SERVICE_EXCEEDED',
  'CAIRN_MEMBER_STATE_MISSING',
  'CAIRN_VERSION_MISMATCH',
]);

/** absentCodes are the Cairn codes meaning an instance read found nothing. */
export const absentCodes: ReadonlySet<string> = new Set(['CAIRN_INSTANCE_NOT_FOUND', 'CAIRN_SERVICE_NOT_FOUND']);

/** outcomeOfCode classifies an error answer carrying a Cairn code (or none). */
export function outcomeOfCode<T>(code: string | null | undefined, detail: string): Outcome<T> {
  if (code !== null && code !== undefined && certainlyNotCommitted.has(code)) return { type: 'fail', error: code };
  return { type: 'info', error: code ?? `no Cairn code: ${detail}` };
}

/**
 * backupAddressesVia is backupAddresses against the member whose peer port is `peer`: the backup is fetched and
 * checked by the tool's own code (src/replica/backup-fetch.ts), decoded into a scratch state machine, and the
 * service's persistent instances listed. A backup is a read: any failure is 'fail' (nothing was changed).
 */
export async function backupAddressesVia(peer: string, service: string, timeoutMs: number): Promise<Outcome<string[]>> {
  try {
    const backup = await fetchLiveBackup(peer, { requester: 'jepsen-like', timeoutMs });
    const machine = new RegistryStateMachine();
    machine.restore(backup.image, { put: () => undefined, del: () => undefined });
    const instances = machine.listInstances({ namespace: 'public', group: 'DEFAULT_GROUP', service });
    return { type: 'ok', value: instances.map((instance) => `${instance.ip}:${instance.port}`) };
  } catch (error) {
    return { type: 'fail', error: isCairnError(error) ? error.code : error instanceof Error ? error.message.slice(0, 200) : String(error) };
  }
}

/** clientTimeoutMsDefault is the client's deadline: above the members' 5 s request timeout, so they answer first. */
export const clientTimeoutMsDefault = 6500;
