// instance: Nacos's instance endpoints under /nacos/v1/ns and /nacos/v2/ns (reference/NACOS.md §1.2-§1.4, §1.9):
// register (POST), update (PUT), patch (PATCH), deregister (DELETE), detail (GET), list (GET /instance/list) and
// beat (PUT /instance/beat). Parameters follow params.ts; validation and semantics are the naming layer's.

import type { FastifyPluginCallback, FastifyRequest } from 'fastify';
import { DEFAULT_CLUSTER, groupedName } from '../../naming/model.ts';
import type { InstanceAddress, InstanceList, InstancePatch, InstanceSpec, ListInstancesQuery } from '../../naming/naming-service.ts';
import { paramsOf } from './authorization.ts';
import { beatAnswerOf, beatRequestOf } from './beat.ts';
import { clientKindOf, compact, type NacosParams, serviceKeyOf } from './params.ts';
import { nacosVersions, readOptionsOf, replyData, replyOk, requestContextOf, type RoutePluginOptions } from './request-context.ts';
import { instanceDetail, jsonContentType, v1InstanceListJson, v2ServiceInfoJson, v2SuccessJson, type ListContext } from './shapes.ts';

const read = { access: { resource: 'naming', action: 'read' } } as const;
const write = { access: { resource: 'naming', action: 'write' } } as const;

/** portRange bounds the `port` parameter's type check; the naming layer decides which ports are valid. */
const portRange = { min: 0, max: 65_535 };

/** instanceAddressOf reads an instance's address: service, `ip`, `port`, `clusterName` (legacy `cluster`, default DEFAULT). */
export function instanceAddressOf(params: NacosParams): InstanceAddress {
  return {
    ...serviceKeyOf(params),
    ip: params.required('ip'),
    port: params.requiredInteger('port', portRange),
    cluster: params.optional('clusterName', 'cluster') ?? DEFAULT_CLUSTER,
  };
}

/** instanceFieldsOf reads the optional instance fields: weight, enabled (legacy `enable`), healthy, ephemeral, metadata. */
function instanceFieldsOf(params: NacosParams): Omit<InstancePatch, keyof InstanceAddress> {
  return compact({
    weight: params.number('weight'),
    enabled: params.boolean('enabled', 'enable'),
    healthy: params.boolean('healthy'),
    ephemeral: params.boolean('ephemeral'),
    metadata: params.metadata('metadata'),
  });
}

/** instanceSpecOf reads a registration or full update: the address and the fields present (the naming layer applies Nacos's defaults). */
export function instanceSpecOf(params: NacosParams): InstanceSpec {
  return { ...instanceAddressOf(params), ...instanceFieldsOf(params) };
}

/** instancePatchOf reads a patch: the address and only the fields present. */
export function instancePatchOf(params: NacosParams): InstancePatch {
  return { ...instanceAddressOf(params), ...instanceFieldsOf(params) };
}

/** clusterListOf splits a comma-separated cluster list, dropping blanks; empty means every cluster. */
export function clusterListOf(text: string | undefined): string[] {
  return text === undefined ? [] : text.split(',').map((name) => name.trim()).filter((name) => name !== '');
}

function listQueryOf(params: NacosParams, clusters: string | undefined): ListInstancesQuery {
  return {
    ...serviceKeyOf(params),
    ...readOptionsOf(params),
    clusters: clusterListOf(clusters),
    ...compact({ healthyOnly: params.boolean('healthyOnly') }),
  };
}

function listContextOf(request: FastifyRequest, query: ListInstancesQuery, clusters: string | undefined, now: number): ListContext {
  const params = paramsOf(request);
  // Checked on every version; only v1 lists register UDP push targets (registerPushTarget).
  params.integer('udpPort', portRange);
  return {
    group: query.group,
    service: query.service,
    clusters: clusters ?? '',
    env: params.optional('env') ?? '',
    groupedForClient: clientKindOf(request.headers).javaV1,
    lastRefTime: now,
  };
}

/**
 * registerPushTarget registers (or refreshes) the UDP push target of a v1 list with udpPort > 0: pushes go to the
 * SOURCE address of this request, never to its clientIP parameter (DESIGN.md; docs/nacos-compatibility.md). Any
 * User-Agent may subscribe. A refused target (a bound) changes nothing in the answer: the client keeps polling.
 */
function registerPushTarget(request: FastifyRequest, deps: RoutePluginOptions['deps'], query: ListInstancesQuery, list: InstanceList, context: ListContext): void {
  const udpPort = paramsOf(request).integer('udpPort', portRange) ?? 0;
  const address = request.socket.remoteAddress;
  if (deps.pushTargets === undefined || udpPort <= 0 || address === undefined) return;
  deps.pushTargets.refresh({
    key: { namespace: query.namespace, group: query.group, service: query.service },
    clustersText: context.clusters,
    clusters: list.clusters,
    address,
    port: udpPort,
    groupedForClient: context.groupedForClient,
    env: context.env,
  });
}

/** instanceRoutes is the plugin of the instance endpoints, v1 and v2. */
export const instanceRoutes: FastifyPluginCallback<RoutePluginOptions> = (app, { deps }, done) => {
  const { naming } = deps;
  const now = deps.now ?? Date.now;
  for (const { version, prefix } of nacosVersions) {
    app.post(`${prefix}/instance`, { config: write }, async (request, reply) => {
      await naming.registerInstance(requestContextOf(request), instanceSpecOf(paramsOf(request)));
      return replyOk(reply, version);
    });
    app.put(`${prefix}/instance`, { config: write }, async (request, reply) => {
      const spec = instanceSpecOf(paramsOf(request));
      // Nacos 1.x: a Java client (>= 1.0) updates an existing instance; any other client (curl) upserts.
      const upsert = version === 'v1' && !clientKindOf(request.headers).javaV1;
      if (upsert) await naming.registerInstance(requestContextOf(request), spec);
      else await naming.updateInstance(requestContextOf(request), spec);
      return replyOk(reply, version);
    });
    app.patch(`${prefix}/instance`, { config: write }, async (request, reply) => {
      await naming.patchInstance(requestContextOf(request), instancePatchOf(paramsOf(request)));
      // Plain `ok` on v2 too: Nacos 2.x's InstanceControllerV2.patch returns the String "ok", not a Result envelope
      // (its errors are enveloped, as every v2 error).
      return replyOk(reply, 'v1');
    });
    app.delete(`${prefix}/instance`, { config: write }, async (request, reply) => {
      const params = paramsOf(request);
      const input = { ...instanceAddressOf(params), ...compact({ ephemeral: params.boolean('ephemeral') }) };
      await naming.deregisterInstance(requestContextOf(request), input);
      return replyOk(reply, version);
    });
    app.get(`${prefix}/instance`, { config: read }, async (request, reply) => {
      const params = paramsOf(request);
      const address = instanceAddressOf(params);
      const instance = await naming.getInstance(requestContextOf(request), address, readOptionsOf(params));
      return replyData(reply, version, instanceDetail(instance, groupedName(address.group, address.service), version));
    });
    app.get(`${prefix}/instance/list`, { config: read }, async (request, reply) => {
      const params = paramsOf(request);
      // v1 filters on `clusters`; v2 names the same comma-separated filter `clusterName`.
      const clusters = version === 'v1' ? params.optional('clusters') : params.optional('clusterName', 'clusters');
      const query = listQueryOf(params, clusters);
      const context = listContextOf(request, query, clusters, now());
      const list = await naming.listInstances(requestContextOf(request), query);
      if (version === 'v1') registerPushTarget(request, deps, query, list, context);
      // The body is JSON text built around the list's remembered hosts (shapes.ts, "The bodies of instance lists").
      reply.type(jsonContentType);
      return reply.send(version === 'v1' ? v1InstanceListJson(list, context) : v2SuccessJson(v2ServiceInfoJson(list, context)));
    });
    app.put(`${prefix}/instance/beat`, { config: write }, async (request, reply) => {
      // The beat answer is Nacos's own object on v1 and v2 alike (never the v2 envelope).
      const result = await naming.beat(requestContextOf(request), beatRequestOf(paramsOf(request)));
      return reply.send(beatAnswerOf(result));
    });
  }
  done();
};
