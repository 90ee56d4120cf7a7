// peer-protocol: the versions of everything members exchange, checked on every call to the peer port.
//
// Two versions, one per service on the peer port:
// - peerProtocolVersion covers the Peer service: the Raft messages and their batching (proto/cairn/peer/v1), the
//   commands inside log entries (proto/cairn/cp/v1) and how they apply, the snapshot image, forwarded writes, Hello
//   and Backup;
// - distroProtocolVersion covers the Distro service of the ephemeral path (proto/cairn/peer/v1/distro.proto): its
//   messages and how a member merges what they carry.
// A change that a member of the previous version would decode differently, or apply differently, raises the version
// of the service it touches. An older member must never see it: it would apply a new command as an undecodable one
// (a failure that changes nothing) while the others apply it, or keep another winner of a merge, and the registries
// would diverge without a word. Versions are per service so that a release changing one service leaves the other
// whole during an upgrade: a Distro change does not cut Raft in two.
//
// The rule: every peer call carries its service's version in the `cairn-peer-protocol` metadata; a member serves
// only callers of its own version of that service and refuses the others with FAILED_PRECONDITION, before reading
// anything they sent. A call without the metadata comes from a member built before this check, which spoke version 1
// of both. So members of two versions of a service never exchange a message of it: during an upgrade the upgraded
// members and the others are two groups that cannot reach each other through it. For Raft, whichever group holds a
// majority of the voters keeps the cluster going; for Distro, the two groups behave as the two sides of a partition.
// Upgraded one member at a time, a cluster stays available throughout (docs/operations.md, "Upgrades"); the
// refusals are logged on both sides and counted (`peer_protocol_refused`).

import { Metadata, status as grpcStatus, type ServiceError, type UntypedServiceImplementation } from '@grpc/grpc-js';

/** peerProtocolVersion is this build's version of the Peer service (Raft; see the header for when it changes). */
export const peerProtocolVersion = 1;

/**
 * distroProtocolVersion is this build's version of the Distro service. History: 1, the first; 2 (2026-11-23), entries
 * carry a lineage and merge by it (docs/ap.md "Data, versions and tombstones"), which a member of version 1 would
 * merge by version alone, keeping another winner.
 */
export const distroProtocolVersion = 2;

/** PEER_PROTOCOL_METADATA_KEY carries the caller's version on every peer call. */
export const PEER_PROTOCOL_METADATA_KEY = 'cairn-peer-protocol';

/** versionBeforeTheCheck is the version of a caller that sends no version (members built before this check). */
const versionBeforeTheCheck = 1;

/** peerProtocolRefusalPrefix starts the details of every refusal, so a caller can tell it from other failures. */
export const peerProtocolRefusalPrefix = 'peer protocol mismatch';

/** peerCallMetadata is the metadata of an outbound peer call: the sender's id under `fromKey` and the version. */
export function peerCallMetadata(fromKey: string, self: string, version = peerProtocolVersion): Metadata {
  const metadata = new Metadata();
  metadata.set(fromKey, self);
  metadata.set(PEER_PROTOCOL_METADATA_KEY, String(version));
  return metadata;
}

/** callerVersionOf reads a call's version: a number, null when the value is not one, 1 when absent. */
export function callerVersionOf(metadata: Metadata): number | null {
  const values = metadata.get(PEER_PROTOCOL_METADATA_KEY);
  if (values.length === 0) return versionBeforeTheCheck;
  const text = values[0];
  if (values.length !== 1 || typeof text !== 'string' || !/^[1-9][0-9]{0,5}$/.test(text)) return null;
  return Number(text);
}

/** isPeerProtocolRefusal tells a refusal by a member of another version from any other failed call. */
export function isPeerProtocolRefusal(error: { readonly code?: number; readonly details?: string } | null | undefined): boolean {
  return error?.code === grpcStatus.FAILED_PRECONDITION && error.details?.startsWith(peerProtocolRefusalPrefix) === true;
}

/** ProtocolGuard is what the check needs from the member: its version, and where to report a refusal. */
export interface ProtocolGuard {
  /** service names the protocol in refusals: 'peer' (Raft) or 'distro'. */
  readonly service: string;
  readonly version: number;
  readonly self: string;
  /** onRefused is called for every refused call: the caller's claimed id (if any), its version, the method. */
  onRefused(from: string | null, callerVersion: number | null, method: string, version: number): void;
}

/** GuardedCall is what the guard reads of any server call; a server stream also ends with an 'error' event. */
interface GuardedCall {
  readonly metadata: Metadata;
  emit?(event: 'error', error: Partial<ServiceError>): boolean;
}

type Handler = (call: GuardedCall, callback?: (error: Partial<ServiceError> | null, value: null) => void) => void;

/** MethodShapes tells, per method name, whether the server answers with a stream (from the service definition). */
export type MethodShapes = Readonly<Record<string, { readonly responseStream: boolean }>>;

/**
 * guardService wraps every method of a peer service implementation: a call of another version is refused with
 * FAILED_PRECONDITION before the method runs (for a client stream, before its first message is read). Unary and
 * client-streaming methods answer through their callback; a server-streaming method (per `shapes`) ends its call
 * with an 'error' event.
 */
export function guardService(implementation: UntypedServiceImplementation, guard: ProtocolGuard, fromKey: string, shapes: MethodShapes): UntypedServiceImplementation {
  const guarded: UntypedServiceImplementation = {};
  for (const [method, handler] of Object.entries(implementation)) {
    const inner = handler as unknown as Handler;
    const streamsBack = shapes[method]?.responseStream === true;
    const wrapped: Handler = (call, callback) => {
      const callerVersion = callerVersionOf(call.metadata);
      if (callerVersion === guard.version) {
        inner(call, callback);
        return;
      }
      const claimed = call.metadata.get(fromKey)[0];
      const from = typeof claimed === 'string' ? claimed.slice(0, 256) : null;
      guard.onRefused(from, callerVersion, method, guard.version);
      const refusal = {
        code: grpcStatus.FAILED_PRECONDITION,
        details: `${peerProtocolRefusalPrefix}: ${guard.self} speaks ${guard.service} protocol ${guard.version}, the caller ${callerVersion === null ? 'an invalid one' : callerVersion}; members of different versions do not exchange messages (docs/operations.md, "Upgrades")`,
      };
      if (streamsBack || callback === undefined) call.emit?.('error', refusal);
      else callback(refusal, null);
    };
    guarded[method] = wrapped as unknown as UntypedServiceImplementation[string];
  }
  return guarded;
}
