// The member's gRPC client API listener (cairn.naming.v1, health, reflection) on port + 1000.
import { buildGrpcServer, listenGrpcServer, shutdownGrpcServer, type GrpcLogger } from './api/grpc/server.ts';
import type { Registry } from 'prom-client';
import type { NamingService } from './naming/naming-service.ts';
import type { SubscriptionHub } from './naming/subscriptions.ts';
import type { WriteFence } from './stall.ts';

/** GrpcApi is the running gRPC listener. */
export interface GrpcApi {
  readonly port: number;
  close(): Promise<void>;
}

/** grpcCloseGraceMs lets calls in flight finish on shutdown before they are cancelled. */
const grpcCloseGraceMs = 2000;

/** startGrpcApi builds the gRPC server and binds it to host:port. */
export async function startGrpcApi(options: { naming: NamingService; ready: () => boolean; host: string; port: number; logger: GrpcLogger; subscriptions?: SubscriptionHub; stall?: WriteFence; metrics?: Registry }): Promise<GrpcApi> {
  const server = buildGrpcServer({
    naming: options.naming, ready: options.ready, logger: options.logger,
    ...(options.metrics === undefined ? {} : { metrics: options.metrics }),
    ...(options.stall === undefined ? {} : { stall: options.stall }),
    ...(options.subscriptions === undefined ? {} : { subscriptions: options.subscriptions }),
  });
  const port = await listenGrpcServer(server, options.host, options.port);
  return { port, close: () => shutdownGrpcServer(server, grpcCloseGraceMs) };
}
