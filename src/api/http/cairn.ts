// cairn: Cairn's own routes (DESIGN.md, "Cairn's own"): GET /cairn/v1/health (readiness), GET /cairn/v1/cluster (the
// Raft group as this member sees it), GET /cairn/v1/state/digest (its stored keyspace's digest, for `cairn check`),
// GET /cairn/v1/state/checkpoints (its checkpoint digests and how they compared with its peers'),
// POST /cairn/v1/cluster/transfer-leader?to=ADDR, and membership changes POST|DELETE /cairn/v1/cluster/members?addr=ADDR.
// Errors are CairnError JSON with the catalog's status.

import type { FastifyPluginCallback } from 'fastify';
import { paramsOf } from './authorization.ts';
import type { ClusterStatus, MemberCheckpoints, MemberStateDigest } from './deps.ts';
import { memberAddress } from './params.ts';
import type { RoutePluginOptions } from './request-context.ts';

const healthRead = { access: { resource: 'health', action: 'read' } } as const;
const clusterRead = { access: { resource: 'cluster', action: 'read' } } as const;
const clusterWrite = { access: { resource: 'cluster', action: 'write' } } as const;

/** HealthBody is the body of GET /cairn/v1/health. */
export interface HealthBody {
  readonly status: 'UP' | 'DOWN';
  readonly leader: string | null;
  readonly term: number;
}

/** healthBody reports whether the member serves, with the leader it knows and the term. */
export function healthBody(ready: boolean, status: ClusterStatus): HealthBody {
  return { status: ready ? 'UP' : 'DOWN', leader: status.leader, term: status.term };
}

/** StateDigestBody is the body of GET /cairn/v1/state/digest. */
export interface StateDigestBody {
  readonly member: string;
  readonly appliedIndex: number;
  readonly records: number;
  readonly bytes: number;
  readonly sha256: string;
}

/** stateDigestBody shapes a member's state digest for GET /cairn/v1/state/digest. */
export function stateDigestBody(digest: MemberStateDigest): StateDigestBody {
  return { member: digest.member, appliedIndex: digest.applied, records: digest.records, bytes: digest.bytes, sha256: digest.sha256 };
}

/** CheckpointsBody is the body of GET /cairn/v1/state/checkpoints. */
export interface CheckpointsBody {
  readonly member: string;
  /** every: the checkpoint interval in applied entries (0: this member takes no checkpoints). */
  readonly every: number;
  /** checkpoints: the member's newest checkpoint digests, newest first. */
  readonly checkpoints: readonly Omit<StateDigestBody, 'member'>[];
  /** comparisons: the last comparison with each peer, at the newest checkpoint both had digested. */
  readonly comparisons: readonly {
    readonly peer: string;
    readonly appliedIndex: number;
    readonly agree: boolean;
    readonly sha256: string;
    readonly peerSha256: string;
    readonly comparedAt: string;
  }[];
}

/** checkpointsBody shapes a member's checkpoint report for GET /cairn/v1/state/checkpoints. */
export function checkpointsBody(report: MemberCheckpoints): CheckpointsBody {
  return {
    member: report.member,
    every: report.every,
    checkpoints: report.digests.map((digest) => ({ appliedIndex: digest.applied, records: digest.records, bytes: digest.bytes, sha256: digest.sha256 })),
    comparisons: report.comparisons.map((comparison) => ({
      peer: comparison.peer,
      appliedIndex: comparison.applied,
      agree: comparison.agree,
      sha256: comparison.ours.sha256,
      peerSha256: comparison.theirs.sha256,
      comparedAt: new Date(comparison.comparedAtMs).toISOString(),
    })),
  };
}

/** cairnRoutes is the plugin of Cairn's own routes. */
export const cairnRoutes: FastifyPluginCallback<RoutePluginOptions> = (app, { deps }, done) => {
  const { cluster } = deps;
  app.get('/cairn/v1/health', { config: healthRead }, async (_request, reply) => {
    const ready = cluster.ready();
    return reply.code(ready ? 200 : 503).send(healthBody(ready, cluster.status()));
  });
  app.get('/cairn/v1/cluster', { config: clusterRead }, async (_request, reply) => reply.send(cluster.status()));
  app.get('/cairn/v1/state/digest', { config: clusterRead }, async (_request, reply) => {
    return reply.send(stateDigestBody(await cluster.stateDigest()));
  });
  app.get('/cairn/v1/state/checkpoints', { config: clusterRead }, async (_request, reply) => reply.send(checkpointsBody(cluster.checkpoints())));
  app.post('/cairn/v1/cluster/transfer-leader', { config: clusterWrite }, async (request, reply) => {
    await cluster.transferLeader(memberAddress(paramsOf(request), 'to'));
    return reply.send(cluster.status());
  });
  app.post('/cairn/v1/cluster/members', { config: clusterWrite }, async (request, reply) => {
    await cluster.addMember(memberAddress(paramsOf(request), 'addr'));
    return reply.send(cluster.status());
  });
  app.delete('/cairn/v1/cluster/members', { config: clusterWrite }, async (request, reply) => {
    await cluster.removeMember(memberAddress(paramsOf(request), 'addr'));
    return reply.send(cluster.status());
  });
  done();
};
