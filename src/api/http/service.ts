// service: Nacos's service endpoints under /nacos/v1/ns and /nacos/v2/ns (reference/NACOS.md §1.5, §1.9): create
// (POST), update (PUT), delete (DELETE), detail (GET) and list (GET /service/list).

import type { FastifyPluginCallback } from 'fastify';
import { CairnError } from '../../errors.ts';
import { DEFAULT_GROUP, DEFAULT_NAMESPACE } from '../../naming/model.ts';
import type { ServiceSpec, ServiceUpdate } from '../../naming/naming-service.ts';
import { paramsOf } from './authorization.ts';
import { compact, type NacosParams, pageOf, serviceKeyOf } from './params.ts';
import { nacosVersions, readOptionsOf, replyData, replyOk, requestContextOf, type RoutePluginOptions } from './request-context.ts';
import { v1ServiceDetail, v2ServiceDetail } from './shapes.ts';

const read = { access: { resource: 'naming', action: 'read' } } as const;
const write = { access: { resource: 'naming', action: 'write' } } as const;

/** serviceSpecOf reads a service creation: protectThreshold, metadata, selector and (Nacos 2.x) ephemeral, each optional. */
export function serviceSpecOf(params: NacosParams): ServiceSpec {
  return {
    ...serviceKeyOf(params),
    ...compact({
      protectThreshold: params.number('protectThreshold'),
      metadata: params.metadata('metadata'),
      selector: params.selector('selector'),
      ephemeral: params.boolean('ephemeral'),
    }),
  };
}

/**
 * serviceUpdateOf reads a service update with Nacos's replace semantics: metadata and selector absent mean empty and
 * none. v1 requires protectThreshold (Nacos 1.x); v2 defaults it to 0 (Nacos 2.x's ServiceForm).
 */
export function serviceUpdateOf(params: NacosParams, version: 'v1' | 'v2'): ServiceUpdate {
  const protectThreshold = version === 'v1' ? params.requiredNumber('protectThreshold') : params.number('protectThreshold') ?? 0;
  return {
    ...serviceKeyOf(params),
    protectThreshold,
    metadata: params.metadata('metadata') ?? {},
    selector: params.selector('selector') ?? { type: 'none' },
  };
}

/**
 * refuseListSelector refuses service/list's selector filter (`INSTANCE.metadata.k=v` label expressions), which
 * Cairn does not implement: answering the unfiltered list instead would be silently wrong.
 */
function refuseListSelector(params: NacosParams): void {
  const text = params.optional('selector');
  if (text === undefined) return;
  let type: unknown;
  try {
    type = (JSON.parse(text) as { type?: unknown } | null)?.type;
  } catch {
    type = undefined;
  }
  if (type !== 'none') throw new CairnError('CAIRN_NOT_IMPLEMENTED', "service/list does not filter by selector; omit 'selector'");
}

/** serviceRoutes is the plugin of the service endpoints, v1 and v2. */
export const serviceRoutes: FastifyPluginCallback<RoutePluginOptions> = (app, { deps }, done) => {
  const { naming } = deps;
  for (const { version, prefix } of nacosVersions) {
    app.post(`${prefix}/service`, { config: write }, async (request, reply) => {
      await naming.createService(requestContextOf(request), serviceSpecOf(paramsOf(request)));
      return replyOk(reply, version);
    });
    app.put(`${prefix}/service`, { config: write }, async (request, reply) => {
      await naming.updateService(requestContextOf(request), serviceUpdateOf(paramsOf(request), version));
      return replyOk(reply, version);
    });
    app.delete(`${prefix}/service`, { config: write }, async (request, reply) => {
      await naming.deleteService(requestContextOf(request), serviceKeyOf(paramsOf(request)));
      return replyOk(reply, version);
    });
    app.get(`${prefix}/service`, { config: read }, async (request, reply) => {
      const params = paramsOf(request);
      const detail = await naming.getService(requestContextOf(request), serviceKeyOf(params), readOptionsOf(params));
      return replyData(reply, version, version === 'v1' ? v1ServiceDetail(detail) : v2ServiceDetail(detail));
    });
    app.get(`${prefix}/service/list`, { config: read }, async (request, reply) => {
      const params = paramsOf(request);
      refuseListSelector(params);
      // v1 requires the page (Nacos 1.x); v2 defaults to the first 20 (Nacos 2.x).
      const page = pageOf(params, version === 'v1');
      const query = {
        namespace: params.optional('namespaceId') ?? DEFAULT_NAMESPACE,
        group: params.optional('groupName') ?? DEFAULT_GROUP,
        ...page,
        ...readOptionsOf(params),
      };
      const result = await naming.listServices(requestContextOf(request), query);
      const names = result.services.map((service) => service.name);
      return version === 'v1' ? reply.send({ count: result.count, doms: names }) : replyData(reply, version, { count: result.count, services: names });
    });
  }
  done();
};
