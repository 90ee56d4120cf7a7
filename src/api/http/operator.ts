// operator: Nacos's operator endpoints (reference/NACOS.md §1.7): GET /nacos/{v1,v2}/ns/operator/metrics (the
// liveness probe Nacos clients use: `status === "UP"`) and GET /nacos/v1/ns/operator/servers (the members).

import os from 'node:os';
import type { FastifyPluginCallback } from 'fastify';
import { limits } from '../../limits.ts';
import { DEFAULT_NAMESPACE } from '../../naming/model.ts';
import type { NamingService, RequestContext } from '../../naming/naming-service.ts';
import { paramsOf } from './authorization.ts';
import type { ClusterStatus, MemberStatus } from './deps.ts';
import { nacosVersions, readOptionsOf, replyData, requestContextOf, type RoutePluginOptions } from './request-context.ts';
import type { NacosParams } from './params.ts';

const read = { access: { resource: 'metrics', action: 'read' } } as const;

/** RegistryCounts are the registry totals operator/metrics reports. */
export interface RegistryCounts {
  readonly serviceCount: number;
  readonly instanceCount: number;
}

/**
 * registryCounts totals the services and instances of one namespace (the `namespaceId` parameter, default public)
 * from one catalog page that holds the whole namespace. The naming layer has no cluster-wide totals yet.
 */
async function registryCounts(naming: NamingService, context: RequestContext, params: NacosParams): Promise<RegistryCounts> {
  const page = await naming.catalog(context, {
    namespace: params.optional('namespaceId') ?? DEFAULT_NAMESPACE,
    pageNo: 1,
    pageSize: limits.servicesPerNamespaceMax,
    ...readOptionsOf(params),
  });
  const instanceCount = page.services.reduce((sum, entry) => sum + entry.instanceCount, 0);
  return { serviceCount: page.count, instanceCount };
}

/** hostLoad is the machine's load as Nacos reports it: cpu (load per core, at most 1), load (1-minute average), mem (used share). */
function hostLoad(): { cpu: number; load: number; mem: number } {
  const load = os.loadavg()[0] ?? 0;
  const cores = Math.max(1, os.cpus().length);
  return { cpu: Math.min(1, load / cores), load, mem: 1 - os.freemem() / os.totalmem() };
}

/** v1Metrics is Nacos 1.4's full operator/metrics body. */
function v1Metrics(status: string, counts: RegistryCounts): Record<string, unknown> {
  return {
    status,
    serviceCount: counts.serviceCount,
    instanceCount: counts.instanceCount,
    raftNotifyTaskCount: 0,
    // Every member serves every persistent service (Raft), so each is "responsible" for all of them.
    responsibleServiceCount: counts.serviceCount,
    responsibleInstanceCount: counts.instanceCount,
    ...hostLoad(),
  };
}

/** v2Metrics is Nacos 2.x's full operator/metrics body; there are no subscribers or connection-bound clients yet. */
function v2Metrics(status: string, counts: RegistryCounts): Record<string, unknown> {
  return {
    status,
    serviceCount: counts.serviceCount,
    instanceCount: counts.instanceCount,
    subscribeCount: 0,
    clientCount: 0,
    connectionBasedClientCount: 0,
    ephemeralIpPortClientCount: 0,
    persistentIpPortClientCount: 0,
    responsibleClientCount: 0,
    ...hostLoad(),
  };
}

/** NacosMember is one member in operator/servers (Nacos 1.4's Member), with Cairn's Raft view in extendInfo. */
export interface NacosMember {
  readonly ip: string;
  readonly port: number;
  readonly state: 'UP' | 'DOWN';
  readonly address: string;
  readonly extendInfo: Readonly<Record<string, unknown>>;
  readonly failAccessCnt: number;
}

/** memberIsUp tells whether a member was heard from recently: within one request timeout (DESIGN.md: 5 s). */
export function memberIsUp(member: MemberStatus): boolean {
  return member.lastContactMs !== null && member.lastContactMs <= limits.requestTimeoutMs;
}

/** nacosMember renders one member; an address that does not split into host and port keeps port 0. */
export function nacosMember(member: MemberStatus, status: ClusterStatus): NacosMember {
  const colon = member.addr.lastIndexOf(':');
  const host = colon < 0 ? member.addr : member.addr.slice(0, colon);
  const port = colon < 0 ? 0 : Number(member.addr.slice(colon + 1));
  return {
    ip: host.replace(/^\[(.*)\]$/, '$1'),
    port: Number.isInteger(port) ? port : 0,
    state: memberIsUp(member) ? 'UP' : 'DOWN',
    address: member.addr,
    extendInfo: {
      raftMetaData: { leader: status.leader, term: status.term },
      role: member.role,
      term: member.term,
      commitIndex: member.commitIndex,
      appliedIndex: member.appliedIndex,
      matchIndex: member.matchIndex,
      lastContactMs: member.lastContactMs,
    },
    failAccessCnt: 0,
  };
}

/** operatorRoutes is the plugin of the operator endpoints. */
export const operatorRoutes: FastifyPluginCallback<RoutePluginOptions> = (app, { deps }, done) => {
  for (const { version, prefix } of nacosVersions) {
    app.get(`${prefix}/operator/metrics`, { config: read }, async (request, reply) => {
      const params = paramsOf(request);
      const status = deps.cluster.ready() ? 'UP' : 'DOWN';
      // Nacos 2.x: onlyStatus defaults to true, and then only the status is computed and sent.
      if (params.boolean('onlyStatus') ?? true) return replyData(reply, version, { status });
      const counts = await registryCounts(deps.naming, requestContextOf(request), params);
      return replyData(reply, version, version === 'v1' ? v1Metrics(status, counts) : v2Metrics(status, counts));
    });
  }
  app.get('/nacos/v1/ns/operator/servers', { config: read }, async (request, reply) => {
    const healthyOnly = paramsOf(request).boolean('healthy') ?? false;
    const status = deps.cluster.status();
    const members = status.members.filter((member) => !healthyOnly || memberIsUp(member));
    return reply.send({ servers: members.map((member) => nacosMember(member, status)) });
  });
  done();
};
