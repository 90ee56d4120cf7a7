// What the HTTP API needs from the rest of the member. The composition root (src/cli/member.ts) builds these; tests
// pass the real naming layer over a state machine and small fakes for the rest.

import type { FastifyBaseLogger } from 'fastify';
import type { Registry } from 'prom-client';
import type { Identity, NamingService } from '../../naming/naming-service.ts';
import type { UdpTargetSpec } from '../../naming/udp-push.ts';
import type { CheckpointReport } from '../../replica/checkpoints.ts';
import type { StateDigest } from '../../replica/state-digest.ts';
import type { WriteFence } from '../../stall.ts';

/** MemberRole is what one member does in the Raft group, as GET /cairn/v1/cluster reports it. */
export type MemberRole = 'leader' | 'follower' | 'candidate' | 'pre-candidate' | 'learner' | 'unknown';

/** MemberStatus is one member's line in the cluster status (DESIGN.md, Cairn's own routes). */
export interface MemberStatus {
  /** addr is the member's identity, its HTTP address "host:port". */
  readonly addr: string;
  readonly role: MemberRole;
  /** term, commitIndex and appliedIndex are the member's own; this member knows them only for itself (else null). */
  readonly term: number | null;
  readonly commitIndex: number | null;
  readonly appliedIndex: number | null;
  /**
   * matchIndex is the highest log index known stored (fsynced) on that member: its own last index for this member,
   * the leader's replication progress for a follower when this member leads, else null. Stored is not applied.
   */
  readonly matchIndex: number | null;
  /** lastContactMs is how long ago this member last heard from it (0 for itself), or null when never. */
  readonly lastContactMs: number | null;
}

/** ClusterStatus is the body of GET /cairn/v1/cluster: the leader as this member knows it, its term, every member. */
export interface ClusterStatus {
  readonly leader: string | null;
  readonly term: number;
  readonly members: readonly MemberStatus[];
}

/** MemberStateDigest is a member's state digest with the member's address. */
export interface MemberStateDigest extends StateDigest {
  readonly member: string;
}

/** MemberCheckpoints is a member's checkpoint report (src/replica/checkpoints.ts) with the member's address. */
export interface MemberCheckpoints extends CheckpointReport {
  readonly member: string;
}

/**
 * ClusterControl is the HTTP API's seam to the Raft driver: status, leadership transfer and membership changes.
 * Failures reject with a CairnError (CAIRN_NOT_LEADER, CAIRN_MEMBERSHIP_CHANGE_PENDING, CAIRN_MEMBER_NOT_FOUND, ...).
 */
export interface ClusterControl {
  /** status reports the group as this member sees it. */
  status(): ClusterStatus;
  /** transferLeader hands leadership to `to` and resolves once `to` leads (or rejects). */
  transferLeader(to: string): Promise<void>;
  /** addMember adds `addr` as a learner and promotes it to voter once it has caught up. */
  addMember(addr: string): Promise<void>;
  /** removeMember removes `addr` from the group. */
  removeMember(addr: string): Promise<void>;
  /** stateDigest digests this member's stored keyspace at its applied index (the replica-consistency check). */
  stateDigest(): Promise<MemberStateDigest>;
  /** checkpoints is this member's checkpoint digests and its last comparison with each peer (periodic replica check). */
  checkpoints(): MemberCheckpoints;
  /** ready tells whether this member serves clients (GET /cairn/v1/health answers 200 only then). */
  ready(): boolean;
}

/** AuthorizationAction is what a request does to its resource. */
export type AuthorizationAction = 'read' | 'write';

/** AuthorizationRequest is what the authorization hook decides on (DESIGN.md, Security). */
export interface AuthorizationRequest {
  /** identity is the authenticated caller, or null while authentication is off; never read from a client header. */
  readonly identity: Identity | null;
  readonly namespace: string;
  /**
   * resource is the service `<group>@@<service>` (as the naming layer's hook names it), `*` for namespace-wide
   * naming calls, or `cluster`, `metrics`, `health` for Cairn's own routes (never containing `@@`).
   */
  readonly resource: string;
  readonly action: AuthorizationAction;
}

/** Authorizer allows a request by returning, or refuses it by throwing a CairnError (CAIRN_UNAUTHORIZED, CAIRN_FORBIDDEN). */
export type Authorizer = (request: AuthorizationRequest) => void | Promise<void>;

/** allowAll is the authorizer while authentication is switched off: every request passes. */
export const allowAll: Authorizer = () => undefined;

/** HttpDeps is everything buildApp() needs. */
export interface HttpDeps {
  readonly naming: NamingService;
  readonly cluster: ClusterControl;
  /** metrics is the member's Prometheus registry, served at GET /metrics; the request histogram is added to it. */
  readonly metrics: Registry;
  /** authorize is the one authorization hook every route passes through; default allowAll. */
  readonly authorize?: Authorizer;
  /** logger is the member's pino logger, `true` for fastify's own, or `false` (tests) for none. */
  readonly logger?: FastifyBaseLogger | boolean;
  /** now is the wall clock in ms (lastRefTime of instance lists); default Date.now. */
  readonly now?: () => number;
  /** pushTargets registers Nacos v1 UDP push targets from lists with udpPort > 0 (src/naming/udp-push.ts); default none. */
  readonly pushTargets?: PushTargetRegistry;
  /** stall is the member's stall fence (src/stall.ts): writes read as the member resumes from a stall are refused. */
  readonly stall?: WriteFence;
  /** requestReceiveMs bounds a request's arrival (limits.requestReceiveMsMax unless a test shortens it). */
  readonly requestReceiveMs?: number;
  /** connectionsCheckMs is how often the server looks for late requests (limits.httpConnectionsCheckMs by default). */
  readonly connectionsCheckMs?: number;
  /** connectionsMax bounds open connections (limits.httpConnectionsMax unless a test lowers it). */
  readonly connectionsMax?: number;
}

/** PushTargetRegistry is the UDP pusher as the list route sees it: refresh returns false when a bound refused the target. */
export interface PushTargetRegistry {
  refresh(spec: UdpTargetSpec): boolean;
}
