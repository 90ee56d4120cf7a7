// The member's subscriptions and pushes (DESIGN.md "Subscriptions and pushes"), wired in one place: the subscription
// hub hearing both registries, the Nacos v1 UDP pusher on the member's host, and their Prometheus metrics.
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { udpPushRenderer } from './api/http/push-shape.ts';
import type { RegistryStateMachine } from './cp/registry-state-machine.ts';
import type { NamingService } from './naming/naming-service.ts';
import { promPushMetrics } from './naming/push-metrics.ts';
import { SubscriptionHub } from './naming/subscriptions.ts';
import { UdpPusher } from './naming/udp-push.ts';

/** Pushes is the running hub and UDP pusher; close() ends every subscriber and closes the socket. */
export interface Pushes {
  readonly hub: SubscriptionHub;
  readonly udp: UdpPusher;
  start(): Promise<void>;
  close(): Promise<void>;
}

/** createPushes builds the hub and the UDP pusher (start() binds the UDP socket on `host`, never 0.0.0.0). */
export function createPushes(options: { naming: NamingService; stateMachine: RegistryStateMachine; host: string; addr: string; registry: Registry; logger: Logger }): Pushes {
  const metrics = promPushMetrics(options.registry);
  const hub = new SubscriptionHub({
    source: options.naming,
    cp: options.stateMachine,
    metrics,
    logger: options.logger,
    epoch: `${options.addr}/${Date.now()}/${process.pid}`,
  });
  const udp = new UdpPusher({ hub, host: options.host, render: udpPushRenderer, metrics, logger: options.logger });
  let closing: Promise<void> | null = null;
  return {
    hub,
    udp,
    start: () => udp.start(),
    close: () => (closing ??= (async () => {
      hub.close();
      await udp.close();
    })()),
  };
}
