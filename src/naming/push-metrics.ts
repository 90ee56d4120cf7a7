// push-metrics: the Prometheus metrics of subscriptions and pushes (gRPC Subscribe streams and Nacos v1 UDP pushes),
// behind a small interface so the hub and the UDP pusher run without prom-client in unit tests.

import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** PushTransport names how a subscriber is reached. */
export type PushTransport = 'grpc' | 'udp';

/** PushFailureReason says why a push was given up. */
export type PushFailureReason = 'no_ack' | 'too_large' | 'send_error' | 'cut_off';

/** PushMetrics is what subscriptions.ts and udp-push.ts report. */
export interface PushMetrics {
  /** pushSent counts one snapshot handed to a transport (a UDP retry counts as retried, not sent). */
  pushSent(transport: PushTransport): void;
  /** pushAcked counts one acknowledged UDP push. */
  pushAcked(): void;
  /** pushRetried counts one UDP push sent again after its acknowledgement timed out. */
  pushRetried(): void;
  /** pushFailed counts one push given up, by reason. */
  pushFailed(transport: PushTransport, reason: PushFailureReason): void;
  /** pushSuperseded counts one snapshot replaced by a newer one before its subscriber took it. */
  pushSuperseded(): void;
  /** subscribers sets the number of subscribers of a transport. */
  subscribers(transport: PushTransport, count: number): void;
  /** pendingSnapshots sets the number of snapshots held for subscribers whose transport is full. */
  pendingSnapshots(count: number): void;
  /** changeToPush observes the time from a change becoming visible to its snapshot reaching a transport. */
  changeToPush(seconds: number): void;
  /** udpTargetsRefused counts lists with udpPort that registered no target (a bound was reached). */
  udpTargetsRefused(): void;
}

/** noPushMetrics discards everything (unit tests, tools). */
export const noPushMetrics: PushMetrics = Object.freeze({
  pushSent: () => undefined,
  pushAcked: () => undefined,
  pushRetried: () => undefined,
  pushFailed: () => undefined,
  pushSuperseded: () => undefined,
  subscribers: () => undefined,
  pendingSnapshots: () => undefined,
  changeToPush: () => undefined,
  udpTargetsRefused: () => undefined,
});

/** promPushMetrics registers the push metrics in `registry` and returns their PushMetrics. */
export function promPushMetrics(registry: Registry): PushMetrics {
  const registers = [registry];
  const sent = new Counter({ name: 'cairn_push_sent_total', help: 'Snapshots handed to a subscriber transport', labelNames: ['transport'], registers });
  const acked = new Counter({ name: 'cairn_push_acked_total', help: 'UDP pushes acknowledged by their client', registers });
  const retried = new Counter({ name: 'cairn_push_retried_total', help: 'UDP pushes sent again after the ack timeout', registers });
  const failed = new Counter({ name: 'cairn_push_failed_total', help: 'Pushes given up', labelNames: ['transport', 'reason'], registers });
  const superseded = new Counter({ name: 'cairn_push_superseded_total', help: 'Snapshots replaced by a newer one before the subscriber took them', registers });
  const subscribers = new Gauge({ name: 'cairn_subscribers', help: 'Subscribers (gRPC Subscribe streams, UDP push targets)', labelNames: ['transport'], registers });
  const pending = new Gauge({ name: 'cairn_push_pending_snapshots', help: 'Snapshots held for subscribers whose transport is full (at most one per subscriber)', registers });
  const latency = new Histogram({
    name: 'cairn_push_change_to_push_seconds',
    help: 'Time from a change becoming visible on this member to its snapshot reaching a subscriber transport',
    buckets: [0.001, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers,
  });
  const refused = new Counter({ name: 'cairn_push_udp_targets_refused_total', help: 'Lists with udpPort that registered no push target (bound reached)', registers });
  return {
    pushSent: (transport) => sent.inc({ transport }),
    pushAcked: () => acked.inc(),
    pushRetried: () => retried.inc(),
    pushFailed: (transport, reason) => failed.inc({ transport, reason }),
    pushSuperseded: () => superseded.inc(),
    subscribers: (transport, count) => subscribers.set({ transport }, count),
    pendingSnapshots: (count) => pending.set(count),
    changeToPush: (seconds) => latency.observe(seconds),
    udpTargetsRefused: () => refused.inc(),
  };
}
