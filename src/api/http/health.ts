// health: Nacos's manual health endpoint (reference/NACOS.md §1.2): PUT /nacos/v1/ns/health/instance (and its older
// alias PUT /nacos/v1/ns/health) and PUT /nacos/v2/ns/health/instance set a persistent instance's health by hand;
// the naming layer refuses it while the instance's cluster has an active checker (Nacos: "health check is still
// working").

import type { FastifyPluginCallback } from 'fastify';
import type { InstanceHealthInput } from '../../naming/naming-service.ts';
import { paramsOf } from './authorization.ts';
import { instanceAddressOf } from './instance.ts';
import { type NacosParams, paramMissing } from './params.ts';
import { replyOk, requestContextOf, type RoutePluginOptions } from './request-context.ts';

const write = { access: { resource: 'naming', action: 'write' } } as const;

/** instanceHealthOf reads the instance's address and the required `healthy` (legacy `valid`). */
export function instanceHealthOf(params: NacosParams): InstanceHealthInput {
  const address = instanceAddressOf(params);
  const healthy = params.boolean('healthy', 'valid');
  if (healthy === undefined) throw paramMissing('healthy');
  return { ...address, healthy };
}

/** healthRoutes is the plugin of the manual health endpoints, v1 (with its alias) and v2. */
export const healthRoutes: FastifyPluginCallback<RoutePluginOptions> = (app, { deps }, done) => {
  const routes = [
    { path: '/nacos/v1/ns/health/instance', version: 'v1' },
    { path: '/nacos/v1/ns/health', version: 'v1' },
    { path: '/nacos/v2/ns/health/instance', version: 'v2' },
  ] as const;
  for (const { path, version } of routes) {
    app.put(path, { config: write }, async (request, reply) => {
      await deps.naming.setInstanceHealth(requestContextOf(request), instanceHealthOf(paramsOf(request)));
      return replyOk(reply, version);
    });
  }
  done();
};
