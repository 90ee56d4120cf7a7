// metrics: request latency by route and status (a prom-client histogram in the member's registry) and GET /metrics,
// the Prometheus exposition of that registry.

import type { FastifyInstance, FastifyPluginCallback, FastifyReply, FastifyRequest } from 'fastify';
import { Histogram, type Registry } from 'prom-client';

/** requestDurationMetric is the name of the request latency histogram. */
export const requestDurationMetric = 'cairn_http_request_duration_seconds';

/** requestDurationBucketsSeconds spans a local read (sub-millisecond) to a write that waits out requestTimeoutMs (5 s). */
export const requestDurationBucketsSeconds: readonly number[] = Object.freeze([
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
]);

type RequestLabels = 'method' | 'route' | 'status';

/** requestHistogram returns the registry's request histogram, creating it once (several apps may share a registry). */
export function requestHistogram(registry: Registry): Histogram<RequestLabels> {
  const existing = registry.getSingleMetric(requestDurationMetric);
  if (existing instanceof Histogram) return existing as Histogram<RequestLabels>;
  return new Histogram<RequestLabels>({
    name: requestDurationMetric,
    help: 'HTTP request latency in seconds, by method, route pattern and response status.',
    labelNames: ['method', 'route', 'status'],
    buckets: [...requestDurationBucketsSeconds],
    registers: [registry],
  });
}

/**
 * observeRequests adds the hook that records every answered request. The route label is the route's pattern (never
 * the raw URL, so label cardinality stays bounded); requests no route matched count as `unmatched`.
 */
export function observeRequests(app: FastifyInstance, registry: Registry): void {
  const histogram = requestHistogram(registry);
  app.addHook('onResponse', (request: FastifyRequest, reply: FastifyReply, done: () => void) => {
    const route = request.routeOptions.url ?? 'unmatched';
    histogram.observe({ method: request.method, route, status: String(reply.statusCode) }, reply.elapsedTime / 1000);
    done();
  });
}

/** MetricsRoutesOptions carries the registry GET /metrics exposes. */
export interface MetricsRoutesOptions {
  readonly registry: Registry;
}

/** metricsRoutes is the plugin serving GET /metrics in Prometheus's text format. */
export const metricsRoutes: FastifyPluginCallback<MetricsRoutesOptions> = (app, options, done) => {
  app.get('/metrics', { config: { access: { resource: 'metrics', action: 'read' } } }, async (_request, reply) => {
    const text = await options.registry.metrics();
    return reply.type(options.registry.contentType).send(text);
  });
  done();
};
