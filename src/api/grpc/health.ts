// health: the standard gRPC health service (proto/grpc/health/v1/health.proto, grpc/doc/health-checking.md) for
// grpc_health_probe, Kubernetes gRPC probes and load balancers. The server as a whole ("") and the Naming service
// are SERVING exactly when the member's `ready()` says so (the same answer as GET /cairn/v1/health), NOT_SERVING
// otherwise; any other service name is unknown (Check: status NOT_FOUND; Watch: SERVICE_UNKNOWN, as specified).
//
// Watch has no event to wait on (`ready()` is a plain function), so one shared timer polls it every
// healthWatchIntervalMs while any stream is open and writes to the streams whose status changed. Streams are
// bounded by limits.healthWatchersMax (RESOURCE_EXHAUSTED beyond it); the timer is unref'd and stops with the last stream.

import {
  status as grpcStatus,
  type ServerUnaryCall,
  type ServerWritableStream,
  type UntypedServiceImplementation,
  type sendUnaryData,
} from '@grpc/grpc-js';
import { limits } from '../../limits.ts';
import { namingServiceName } from './proto.ts';

/** ServingStatus is the health of one service (HealthCheckResponse.ServingStatus). */
export type ServingStatus = 'UNKNOWN' | 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';

/** HealthCheckResponse is the health service's answer. */
export interface HealthCheckResponse {
  readonly status: ServingStatus;
}

/** healthWatchIntervalMs is how often open Watch streams re-check readiness: a probe's own period is seconds. */
export const healthWatchIntervalMs = 1000;


/** healthCheckedServices are the names Check and Watch answer for: the server as a whole and the Naming service. */
export const healthCheckedServices: readonly string[] = Object.freeze(['', namingServiceName]);

interface Watcher {
  readonly call: ServerWritableStream<unknown, HealthCheckResponse>;
  last: ServingStatus;
}

function serviceOf(request: unknown): string {
  const service: unknown = typeof request === 'object' && request !== null ? Reflect.get(request, 'service') : undefined;
  return typeof service === 'string' ? service : '';
}

/** HealthService answers grpc.health.v1.Health from a readiness function. */
export class HealthService {
  private readonly watchers = new Set<Watcher>();
  private timer: ReturnType<typeof setInterval> | null = null;

  constructor(private readonly ready: () => boolean) {}

  /** statusOf is the current status of `service`. */
  statusOf(service: string): ServingStatus {
    if (!healthCheckedServices.includes(service)) return 'SERVICE_UNKNOWN';
    return this.ready() ? 'SERVING' : 'NOT_SERVING';
  }

  /** implementation is the handler object for server.addService. */
  implementation(): UntypedServiceImplementation {
    return {
      Check: (call: ServerUnaryCall<unknown, HealthCheckResponse>, callback: sendUnaryData<HealthCheckResponse>) => {
        const status = this.statusOf(serviceOf(call.request));
        if (status === 'SERVICE_UNKNOWN') callback({ code: grpcStatus.NOT_FOUND, details: `unknown service '${serviceOf(call.request)}'` });
        else callback(null, { status });
      },
      Watch: (call: ServerWritableStream<unknown, HealthCheckResponse>) => this.watch(call),
    };
  }

  private watch(call: ServerWritableStream<unknown, HealthCheckResponse>): void {
    if (this.watchers.size >= limits.healthWatchersMax) {
      call.emit('error', { code: grpcStatus.RESOURCE_EXHAUSTED, details: `more than ${limits.healthWatchersMax} health Watch streams are open` });
      return;
    }
    const watcher: Watcher = { call, last: this.statusOf(serviceOf(call.request)) };
    this.watchers.add(watcher);
    const stop = (): void => this.unwatch(watcher);
    call.on('cancelled', stop);
    call.on('error', stop);
    call.on('close', stop);
    call.write({ status: watcher.last });
    this.timer ??= setInterval(() => this.poll(), healthWatchIntervalMs);
    this.timer.unref();
  }

  private unwatch(watcher: Watcher): void {
    this.watchers.delete(watcher);
    if (this.watchers.size === 0 && this.timer !== null) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  /** poll writes the new status to every stream whose status changed since its last write. */
  poll(): void {
    for (const watcher of this.watchers) {
      const status = this.statusOf(serviceOf(watcher.call.request));
      if (status !== watcher.last) {
        watcher.last = status;
        watcher.call.write({ status });
      }
    }
  }

  /** close ends every open Watch stream (at shutdown, so a graceful shutdown does not wait on them). */
  close(): void {
    for (const watcher of [...this.watchers]) {
      this.unwatch(watcher);
      watcher.call.end();
    }
  }
}
