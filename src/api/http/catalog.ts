// catalog: Nacos's console catalog (reference/NACOS.md §1.6): GET /nacos/v1/ns/catalog/services (service summaries
// with instance counts) and GET /nacos/v1/ns/catalog/service (one service with its clusters).

import type { FastifyPluginCallback } from 'fastify';
import { CairnError } from '../../errors.ts';
import { DEFAULT_NAMESPACE, groupedName, type ServiceDetail } from '../../naming/model.ts';
import type { CatalogEntry, CatalogQuery } from '../../naming/naming-service.ts';
import { paramsOf } from './authorization.ts';
import { compact, type NacosParams, pageOf, serviceKeyOf } from './params.ts';
import { readOptionsOf, requestContextOf, type RoutePluginOptions } from './request-context.ts';
import { nacosHealthChecker, nacosSelector } from './shapes.ts';

const read = { access: { resource: 'naming', action: 'read' } } as const;

/** catalogQueryOf reads a catalog page: pageNo/pageSize (default 1/20), name filters, `hasIpCount` (non-empty only). */
export function catalogQueryOf(params: NacosParams): CatalogQuery {
  // withInstances=true and `instance` change Nacos's answer into another shape; refused rather than ignored.
  if (params.boolean('withInstances') === true) {
    throw new CairnError('CAIRN_NOT_IMPLEMENTED', 'catalog/services with withInstances=true; use instance/list per service');
  }
  if (params.optional('instance') !== undefined) {
    throw new CairnError('CAIRN_NOT_IMPLEMENTED', "catalog/services does not filter by 'instance'");
  }
  return {
    namespace: params.optional('namespaceId') ?? DEFAULT_NAMESPACE,
    ...pageOf(params, false),
    ...readOptionsOf(params),
    ...compact({
      serviceNameContains: params.optional('serviceNameParam'),
      groupNameContains: params.optional('groupNameParam'),
      withInstancesOnly: params.boolean('hasIpCount'),
    }),
  };
}

/** NacosServiceView is one entry of catalog/services (Nacos's ServiceView). */
export interface NacosServiceView {
  readonly name: string;
  readonly groupName: string;
  readonly clusterCount: number;
  readonly ipCount: number;
  readonly healthyInstanceCount: number;
  readonly triggerFlag: 'true' | 'false';
}

/**
 * serviceView renders a catalog entry. `triggerFlag` says whether the protect threshold fires; the catalog entry
 * does not carry the threshold yet, so it is 'false' (see docs/nacos-compatibility.md).
 */
export function serviceView(entry: CatalogEntry): NacosServiceView {
  return {
    name: entry.name,
    groupName: entry.group,
    clusterCount: entry.clusterCount,
    ipCount: entry.instanceCount,
    healthyInstanceCount: entry.healthyInstanceCount,
    triggerFlag: 'false',
  };
}

/** catalogServiceDetail renders catalog/service: the service's settings and its clusters in Nacos 1.x's Cluster form. */
export function catalogServiceDetail(detail: ServiceDetail): unknown {
  const { service } = detail;
  return {
    service: {
      name: service.name,
      protectThreshold: service.protectThreshold,
      groupName: service.group,
      selector: nacosSelector(service.selector),
      metadata: service.metadata,
    },
    clusters: detail.clusters.map((cluster) => ({
      serviceName: groupedName(service.group, service.name),
      name: cluster.name,
      healthChecker: nacosHealthChecker(cluster.healthChecker),
      defaultPort: 80,
      defaultCheckPort: cluster.checkPort,
      useIPPort4Check: cluster.useInstancePort4Check,
      metadata: cluster.metadata,
    })),
  };
}

/** catalogRoutes is the plugin of the catalog endpoints (v1; Nacos 2.x has no v2 form of these two). */
export const catalogRoutes: FastifyPluginCallback<RoutePluginOptions> = (app, { deps }, done) => {
  app.get('/nacos/v1/ns/catalog/services', { config: read }, async (request, reply) => {
    const page = await deps.naming.catalog(requestContextOf(request), catalogQueryOf(paramsOf(request)));
    return reply.send({ serviceList: page.services.map(serviceView), count: page.count });
  });
  app.get('/nacos/v1/ns/catalog/service', { config: read }, async (request, reply) => {
    const params = paramsOf(request);
    const detail = await deps.naming.getService(requestContextOf(request), serviceKeyOf(params), readOptionsOf(params));
    return reply.send(catalogServiceDetail(detail));
  });
  done();
};
