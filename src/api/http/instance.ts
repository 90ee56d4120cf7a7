// instance: Nacos's instance endpoints under /nacos/v1/ns and /nacos/v2/ns (reference/NACOS.md §1.2-§1.4, §1.9):
// register (POST), update (PUT), patch (PATCH), deregister (DELETE), detail (GET), list (GET /instance/list) and
// beat (PUT /instance/beat). Parameters follow params.ts; validation and semantics are the naming layer's.

import type { FastifyPluginCallback, FastifyRequest } from 'fastify';
import { CairnError } from '../../errors.ts';
import { DEFAULT_CLUSTER, groupedName } from '../../naming/model.ts';
import type { InstanceAddress, InstancePatch, InstanceSpec, ListInstancesQuery } from '../../naming/naming-service.ts';
import { paramsOf } from './authorization.ts';
import { clientKindOf, compact, type NacosParams, serviceKeyOf } from './params.ts';
import { nacosVersions, readOptionsOf, replyData, replyOk, requestContextOf, type RoutePluginOptions } from './request-context.ts';
import { instanceDetail, v1InstanceList, v2ServiceInfo, type ListContext } from './shapes.ts';

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
  // Checked but unused until UDP pushes arrive: a subscription's port must still be a port.
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

/** beatNotImplemented is the answer to a beat until the AP path (ephemeral instances) lands. */
function beatNotImplemented(params: NacosParams): CairnError {
  serviceKeyOf(params);
  const beat = params.jsonObject('beat');
  if (beat === undefined) {
    params.required('ip');
    params.requiredInteger('port', portRange);
  }
  return new CairnError('CAIRN_NOT_IMPLEMENTED', 'instance beats keep ephemeral instances alive, which arrive with the AP issue; register with ephemeral=false');
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
      return replyOk(reply, version);
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
      return version === 'v1' ? reply.send(v1InstanceList(list, context)) : replyData(reply, version, v2ServiceInfo(list, context));
    });
    app.put(`${prefix}/instance/beat`, { config: write }, async (request) => {
      throw beatNotImplemented(paramsOf(request));
    });
  }
  done();
};
