// keyspace: where the persistent registry lives in LevelDB. The driver stores these keys in the state machine's
// sublevel and writes each apply's batch atomically with the applied index (DESIGN.md "Storage").
//
// Layout (NUL, "\0", separates the parts; validation forbids control characters in every name and request id, so a
// key always splits back into exactly its parts):
//
//   svc\0<namespace>\0<group>\0<service>                       -> ServiceRecord   (definition, declared kind, revision)
//   cls\0<namespace>\0<group>\0<service>\0<cluster>            -> ClusterRecord   (configured clusters only; others use defaults)
//   ins\0<namespace>\0<group>\0<service>\0<cluster>\0<ip>\0<port> -> InstanceRecord (port in decimal)
//   req\0<requestId>                                           -> RememberedRequest (the request-id table)
//   prb                                                        -> ProbeAssignment (the probe assignment in force)
//
// Values are the protobuf messages of proto/cairn/cp/v1/commands.proto. Every change of a service's clusters or
// instances also rewrites its `svc` record (its revision changes), so a loaded keyspace and the live state agree.

import type { ServiceKey } from '../naming/model.ts';
import type { InstanceAddress } from './commands.ts';

/** KEY_SEPARATOR separates the parts of a storage key. */
export const KEY_SEPARATOR = '\u0000';

/** KeyPrefix names the five kinds of stored record. */
export type KeyPrefix = 'svc' | 'cls' | 'ins' | 'req' | 'prb';

/** PROBE_ASSIGNMENT_STORAGE_KEY is the key of the probe assignment in force (one record). */
export const PROBE_ASSIGNMENT_STORAGE_KEY = 'prb';

function join(parts: readonly string[]): string {
  return parts.join(KEY_SEPARATOR);
}

/** serviceStorageKey is the key of a service's record. */
export function serviceStorageKey(key: ServiceKey): string {
  return join(['svc', key.namespace, key.group, key.service]);
}

/** clusterStorageKey is the key of a configured cluster's record. */
export function clusterStorageKey(key: ServiceKey, cluster: string): string {
  return join(['cls', key.namespace, key.group, key.service, cluster]);
}

/** instanceStorageKey is the key of an instance's record. */
export function instanceStorageKey(key: ServiceKey, address: InstanceAddress): string {
  return join(['ins', key.namespace, key.group, key.service, address.cluster, address.ip, String(address.port)]);
}

/** requestStorageKey is the key of a remembered request's result. */
export function requestStorageKey(requestId: string): string {
  return join(['req', requestId]);
}

/** ParsedStorageKey is a storage key split back into its parts. */
export type ParsedStorageKey =
  | { readonly prefix: 'svc'; readonly key: ServiceKey }
  | { readonly prefix: 'cls'; readonly key: ServiceKey; readonly cluster: string }
  | { readonly prefix: 'ins'; readonly key: ServiceKey; readonly address: InstanceAddress }
  | { readonly prefix: 'req'; readonly requestId: string }
  | { readonly prefix: 'prb' };

/** parseStorageKey splits a storage key; null when it is not one of the layout's keys. */
export function parseStorageKey(text: string): ParsedStorageKey | null {
  const parts = text.split(KEY_SEPARATOR);
  const [prefix, namespace = '', group = '', service = ''] = parts;
  const key = { namespace, group, service };
  if (prefix === 'svc' && parts.length === 4) return { prefix, key };
  if (prefix === 'cls' && parts.length === 5) return { prefix, key, cluster: parts[4] ?? '' };
  if (prefix === 'ins' && parts.length === 7) {
    const address = addressOfParts(parts[4] ?? '', parts[5] ?? '', parts[6] ?? '');
    return address === null ? null : { prefix, key, address };
  }
  if (prefix === 'req' && parts.length === 2) return { prefix, requestId: parts[1] ?? '' };
  if (prefix === 'prb' && parts.length === 1) return { prefix };
  return null;
}

/** instanceKeyPrefix is what every instance key of a service starts with: `ins`, namespace, group and service, each followed by NUL. */
export function instanceKeyPrefix(key: ServiceKey): string {
  return join(['ins', key.namespace, key.group, key.service, '']);
}

/**
 * parseInstanceKeyRest reads the cluster, ip and port of an instance key from `start`, the end of its service's
 * instanceKeyPrefix: what parseStorageKey reads for them, without splitting the prefix again. Null when they do not fit.
 */
export function parseInstanceKeyRest(text: string, start: number): InstanceAddress | null {
  const rest = text.slice(start).split(KEY_SEPARATOR);
  return rest.length === 3 ? addressOfParts(rest[0] ?? '', rest[1] ?? '', rest[2] ?? '') : null;
}

/** addressOfParts is the address an instance key's last three parts name; null when the port is not 1-5 digits. */
function addressOfParts(cluster: string, ip: string, port: string): InstanceAddress | null {
  return /^\d{1,5}$/.test(port) ? { cluster, ip, port: Number(port) } : null;
}
