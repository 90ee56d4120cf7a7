// transport: the Distro peer protocol as a small seam (STYLE.md §2). DistroTransport is what a member calls on its
// peers; DistroHandlers is what it serves to them. The real one is gRPC on the peer port (grpc-distro.ts, proto
// cairn/peer/v1/distro.proto); MemoryDistroNetwork is its in-memory twin for in-process tests, with partitions.
//
// Every call either answers or throws a DistroCallError: `notSent` true when the request certainly never reached
// the peer (connection refused, no connection within the deadline), false when it may have.

import type { Metadata, ServiceKey, InstanceKey } from '../naming/model.ts';
import type { EntryData, RecordData } from './ephemeral-store.ts';
import type { Version } from './version.ts';

/** ServiceChecksum is one service's checksum as the responsible member announces it in a verify round. */
export interface ServiceChecksum {
  readonly key: ServiceKey;
  readonly checksum: string;
}

/** ForwardedFields is a register/update body: the instance's attributes. */
export interface ForwardedFields {
  readonly weight: number;
  readonly enabled: boolean;
  readonly healthy: boolean;
  readonly metadata: Metadata;
}

/** ForwardRequest is a write or beat handed to the member responsible for its service. */
export type ForwardRequest =
  | { readonly type: 'register' | 'update'; readonly key: InstanceKey; readonly fields: ForwardedFields; readonly owner: string }
  | { readonly type: 'patch'; readonly key: InstanceKey; readonly weight?: number; readonly enabled?: boolean; readonly healthy?: boolean; readonly metadata?: Metadata }
  /**
   * A deregister with `owner` (a session's id; absent or '' for a client's own deregistration) removes the instance
   * only while that session still owns it: a closing or expired session must not remove what another session has
   * registered since (a client's redo on another member, or a duplicate session; jepsen-like D5).
   */
  | { readonly type: 'deregister'; readonly key: InstanceKey; readonly owner?: string }
  | { readonly type: 'beat'; readonly key: InstanceKey; readonly body?: { readonly weight: number; readonly metadata: Metadata } }
  | { readonly type: 'renew'; readonly keys: readonly InstanceKey[] };

/** ForwardResponse is the responsible member's answer. */
export type ForwardResponse =
  | { readonly ok: true; readonly type: 'instance'; readonly entry: EntryData; readonly revision: number }
  | {
    readonly ok: true; readonly type: 'removed'; readonly removed: boolean; readonly revision: number;
    /**
     * heldLineage: for a closing session's removal that removed nothing, the lineage of the copy the responsible
     * member holds (live or a tombstone); absent when it holds none, for a client's deregistration, and from members
     * older than the field. A lineage older than the session's own registration says the member is behind.
     */
    readonly heldLineage?: Version;
  }
  | { readonly ok: true; readonly type: 'beat'; readonly found: boolean; readonly clientBeatIntervalMs: number }
  /**
   * `missing` lists the positions (in the request's `keys`) of the instances the member does not hold live: removed
   * there (by a stale removal that won, say) or never seen. The session's member registers them again (distro.ts
   * repairSession). A member of an older version sends none.
   */
  | { readonly ok: true; readonly type: 'renewed'; readonly count: number; readonly missing: readonly number[] }
  | { readonly ok: false; readonly code: string; readonly message: string };

/** InstanceAddress is one instance of a service: cluster, ip and port. */
export interface InstanceAddress {
  readonly cluster: string;
  readonly ip: string;
  readonly port: number;
}

/**
 * LastBeatsQuery asks a peer when it last heard from the clients of some instances, grouped by service: the member
 * responsible for them asks before it flags or removes any (docs/ap.md "Beats, expiry and sessions").
 */
export interface LastBeatsQuery {
  readonly key: ServiceKey;
  readonly instances: readonly InstanceAddress[];
}

/**
 * DistroCallError is a failed peer call; notSent says the request certainly never reached the peer, unimplemented
 * that the peer does not know the call (an older version).
 */
export class DistroCallError extends Error {
  override readonly name = 'DistroCallError';
  /**
   * sentAtMs is when the failed call left, by the sender's steady clock, for a forwarded batch (null otherwise): a
   * batch that may have been delivered can still be applied until its fence has passed (DistroNode.route).
   */
  constructor(message: string, readonly notSent: boolean, readonly unimplemented = false, readonly sentAtMs: number | null = null) {
    super(message);
  }
}

/** DistroTransport is the client side: one method per peer call. */
export interface DistroTransport {
  /** heartbeat proves `to` alive (resolves) or not (throws DistroCallError). */
  heartbeat(to: string): Promise<void>;
  /** sync pushes (parts of) services to `to`, which merges them. */
  sync(to: string, records: readonly RecordData[]): Promise<void>;
  /** verify announces the checksums of services this member is responsible for. */
  verify(to: string, checksums: readonly ServiceChecksum[]): Promise<void>;
  /** pull fetches whole services (tombstones included) from `to`. */
  pull(to: string, keys: readonly ServiceKey[]): Promise<RecordData[]>;
  /** snapshot fetches every service `to` holds, chunk by chunk, handing each chunk to `onChunk`. */
  snapshot(to: string, onChunk: (records: readonly RecordData[]) => void): Promise<void>;
  /** forward hands a write or beat to `to`, the member responsible for it. */
  forward(to: string, request: ForwardRequest): Promise<ForwardResponse>;
  /**
   * forwardBatch hands many writes and beats (no renewal) to `to` in one call, stamped with `sentAtMs` (the sender's
   * steady clock when it left: the receiver refuses it once older than limits.distroForwardFenceMs); it answers
   * exactly one response per request, in order, or throws DistroCallError for the whole batch.
   */
  forwardBatch(to: string, requests: readonly ForwardRequest[], sentAtMs: number): Promise<readonly ForwardResponse[]>;
  /** forgetPeer releases what the transport holds for `member` (it left the group); a later call reconnects. */
  forgetPeer?(member: string): void;
  /**
   * lastBeats asks `to` how long ago it last heard from the client of each instance of `query`: one number of
   * milliseconds per instance, in order (services, then their instances), HEARD_NEVER when it never did. It fails at
   * once as notSent when there is no connection to `to` now (it is unreachable, so it has nothing to tell), rather
   * than waiting for one. A peer that does not know the call (an older member) fails with `unimplemented`: it holds
   * nothing back and covers nothing. Without it, expiry asks nobody.
   */
  lastBeats?(to: string, query: readonly LastBeatsQuery[]): Promise<readonly number[]>;
}

/** DistroHandlers is the server side, called with the sender's member id. */
export interface DistroHandlers {
  onHeartbeat(from: string): void;
  onSync(from: string, records: readonly RecordData[]): void;
  onVerify(from: string, checksums: readonly ServiceChecksum[]): void;
  onPull(from: string, keys: readonly ServiceKey[]): RecordData[];
  /** onSnapshot returns the chunks of a full snapshot (each within the message bounds). */
  onSnapshot(from: string): Iterable<readonly RecordData[]>;
  onForward(from: string, request: ForwardRequest): Promise<ForwardResponse>;
  /**
   * onForwardBatch applies each request on its own and answers one response per request, in order; `sentAtMs` is
   * when the sender sent the batch by its clock (0: not said).
   */
  onForwardBatch(from: string, requests: readonly ForwardRequest[], sentAtMs: number): readonly ForwardResponse[];
  /** onLastBeats answers how long ago this member last heard from each instance's client (DistroTransport.lastBeats). */
  onLastBeats(from: string, query: readonly LastBeatsQuery[]): number[];
}

/**
 * MemoryDistroNetwork connects in-process members directly (their handlers are called on a later turn, like a
 * network would), with partitions: a call across a cut link fails as notSent, as a refused connection does.
 */
export class MemoryDistroNetwork {
  private readonly members = new Map<string, DistroHandlers>();
  private readonly cutLinks = new Set<string>();

  /** attach registers a member's handlers and returns its transport. */
  attach(member: string, handlers: DistroHandlers): DistroTransport {
    this.members.set(member, handlers);
    return new MemoryDistroTransport(member, this);
  }

  /** detach removes a member (as if its process died). */
  detach(member: string): void {
    this.members.delete(member);
  }

  /** isolate cuts every link between `member` and the others (both directions). */
  isolate(member: string): void {
    for (const other of this.members.keys()) {
      if (other === member) continue;
      this.cutLinks.add(`${member}>${other}`);
      this.cutLinks.add(`${other}>${member}`);
    }
  }

  /** cut cuts the link between `a` and `b` only (both directions): members that disagree on who is live. */
  cut(a: string, b: string): void {
    this.cutLinks.add(`${a}>${b}`);
    this.cutLinks.add(`${b}>${a}`);
  }

  /** heal restores every link. */
  heal(): void {
    this.cutLinks.clear();
  }

  /** reach returns `to`'s handlers as seen from `from`, or throws as an unreachable peer does. */
  async reach(from: string, to: string): Promise<DistroHandlers> {
    await new Promise<void>((resolve) => setImmediate(resolve));
    const handlers = this.members.get(to);
    if (handlers === undefined || this.cutLinks.has(`${from}>${to}`)) throw new DistroCallError(`${to} is unreachable from ${from}`, true);
    return handlers;
  }
}

class MemoryDistroTransport implements DistroTransport {
  constructor(private readonly self: string, private readonly network: MemoryDistroNetwork) {}

  async heartbeat(to: string): Promise<void> {
    (await this.network.reach(this.self, to)).onHeartbeat(this.self);
  }

  async sync(to: string, records: readonly RecordData[]): Promise<void> {
    (await this.network.reach(this.self, to)).onSync(this.self, records);
  }

  async verify(to: string, checksums: readonly ServiceChecksum[]): Promise<void> {
    (await this.network.reach(this.self, to)).onVerify(this.self, checksums);
  }

  async pull(to: string, keys: readonly ServiceKey[]): Promise<RecordData[]> {
    return (await this.network.reach(this.self, to)).onPull(this.self, keys);
  }

  async snapshot(to: string, onChunk: (records: readonly RecordData[]) => void): Promise<void> {
    for (const chunk of (await this.network.reach(this.self, to)).onSnapshot(this.self)) onChunk(chunk);
  }

  async forward(to: string, request: ForwardRequest): Promise<ForwardResponse> {
    return (await this.network.reach(this.self, to)).onForward(this.self, request);
  }

  async forwardBatch(to: string, requests: readonly ForwardRequest[], sentAtMs: number): Promise<readonly ForwardResponse[]> {
    return (await this.network.reach(this.self, to)).onForwardBatch(this.self, requests, sentAtMs);
  }

  async lastBeats(to: string, query: readonly LastBeatsQuery[]): Promise<readonly number[]> {
    return (await this.network.reach(this.self, to)).onLastBeats(this.self, query);
  }
}
