// cluster: Nacos's cluster endpoint, PUT /nacos/v1/ns/cluster (reference/NACOS.md §1.6, §4.2): a cluster's active
// health checker, check port and metadata. Nacos 2.x has no v2 form of it, so neither has Cairn.

import type { FastifyPluginCallback } from 'fastify';
import type { ClusterSpec } from '../../naming/naming-service.ts';
import { parseHealthChecker } from '../../naming/validation.ts';
import { paramsOf } from './authorization.ts';
import { compact, type NacosParams, serviceKeyOf } from './params.ts';
import { replyOk, requestContextOf, type RoutePluginOptions } from './request-context.ts';

const write = { access: { resource: 'naming', action: 'write' } } as const;

/**
 * clusterSpecOf reads a cluster configuration. As in Nacos 1.x, `clusterName`, `checkPort`, `useInstancePort4Check`
 * and `healthChecker` (JSON, polymorphic on "type") are all required; `metadata` is optional.
 */
export function clusterSpecOf(params: NacosParams): ClusterSpec {
  const key = serviceKeyOf(params);
  const cluster = params.required('clusterName');
  const checkPort = params.requiredInteger('checkPort', { min: 0, max: 65_535 });
  const useInstancePort4Check = params.boolean('useInstancePort4Check');
  if (useInstancePort4Check === undefined) params.required('useInstancePort4Check');
  const healthChecker = parseHealthChecker(params.required('healthChecker'), 'healthChecker');
  return {
    ...key,
    cluster,
    healthChecker,
    checkPort,
    useInstancePort4Check: useInstancePort4Check ?? true,
    ...compact({ metadata: params.metadata('metadata') }),
  };
}

/** clusterRoutes is the plugin of PUT /nacos/v1/ns/cluster. */
export const clusterRoutes: FastifyPluginCallback<RoutePluginOptions> = (app, { deps }, done) => {
  app.put('/nacos/v1/ns/cluster', { config: write }, async (request, reply) => {
    await deps.naming.putCluster(requestContextOf(request), clusterSpecOf(paramsOf(request)));
    return replyOk(reply, 'v1');
  });
  done();
};
