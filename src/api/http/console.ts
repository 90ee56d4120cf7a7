// console: Nacos's console health probes, which Nacos's Kubernetes manifests, load balancers and monitoring point at:
// GET /nacos/v1/console/health/liveness and /readiness answer 200 with the text `OK`; readiness answers 500 with
// `Naming is not in readiness` while the member does not serve (the same test as GET /cairn/v1/health). Nacos 2.3's
// v2 twins (/nacos/v2/console/health/...) answer the v2 envelope: `{"code":0,"message":"success","data":"ok"}`, or
// 500 with code 30000 (server error) and the same text. Liveness is the process answering at all: a member that
// answers is not broken beyond what a restart would fix, and a probe that restarted members without a leader would
// make an election harder, not easier.

import type { FastifyPluginCallback } from 'fastify';
import type { RoutePluginOptions } from './request-context.ts';

const healthRead = { access: { resource: 'health', action: 'read' } } as const;
const notReady = 'Naming is not in readiness';

/** consoleRoutes is the plugin of Nacos's console health probes, v1 and v2. */
export const consoleRoutes: FastifyPluginCallback<RoutePluginOptions> = (app, { deps }, done) => {
  const { cluster } = deps;
  app.get('/nacos/v1/console/health/liveness', { config: healthRead }, async (_request, reply) => reply.type('text/plain; charset=utf-8').send('OK'));
  app.get('/nacos/v1/console/health/readiness', { config: healthRead }, async (_request, reply) => {
    const ready = cluster.ready();
    return reply.code(ready ? 200 : 500).type('text/plain; charset=utf-8').send(ready ? 'OK' : notReady);
  });
  app.get('/nacos/v2/console/health/liveness', { config: healthRead }, async (_request, reply) => reply.send({ code: 0, message: 'success', data: 'ok' }));
  app.get('/nacos/v2/console/health/readiness', { config: healthRead }, async (_request, reply) => {
    const ready = cluster.ready();
    return ready
      ? reply.send({ code: 0, message: 'success', data: 'ok' })
      : reply.code(500).send({ code: 30000, message: 'server error', data: notReady });
  });
  done();
};
