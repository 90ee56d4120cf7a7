// metrics: the health checker's Prometheus metrics, on the member's registry (GET /metrics).
//
//   cairn_health_probes_total{type,result}       probes by checker type and result (healthy, unhealthy, refused,
//                                                inconclusive: a MySQL server at its connection limit); probes per
//                                                second is rate() of it
//   cairn_health_probe_headers_dropped_total{rule}
//                                                HTTP checker headers a probe could not send and dropped, by rule
//                                                (framing, connection, host, value: validation.ts refusedProbeHeaders),
//                                                once per probe; only checkers stored before the API refused them
//   cairn_health_probe_seconds{type}             probe latency
//   cairn_health_probe_lag_seconds               how late probes start behind their schedule (queueing, event-loop lag)
//   cairn_health_probes_waiting                  due probes waiting for a free slot (probeConcurrencyMax)
//   cairn_health_targets                         targets this member probes
//   cairn_health_verdicts_total{to}              flips this member decided (to healthy / unhealthy)
//   cairn_health_flips_total{outcome}            verdicts by what became of them: applied (changed an instance),
//                                                skipped (committed, nothing to change), fenced (refused by the log),
//                                                failed (send failed; retried), dropped (stale before sending, or
//                                                its target left this member's share)
//   cairn_health_assignments_total{outcome}      probe assignments this member proposed as leader (ok, failed)

import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { ProbeHeaderRule } from '../naming/validation.ts';
import type { ActiveCheckerType, ProbeResult } from './probe.ts';
import type { BatchOutcome } from './verdicts.ts';

/** resultLabel is a probe result's `result` label: refused, inconclusive, healthy or unhealthy. */
export function resultLabel(result: ProbeResult): 'refused' | 'inconclusive' | 'healthy' | 'unhealthy' {
  if (result.refused) return 'refused';
  if (result.inconclusive === true) return 'inconclusive';
  return result.healthy ? 'healthy' : 'unhealthy';
}

/** HealthMetrics records what the health checker does. */
export interface HealthMetrics {
  probe(type: ActiveCheckerType, result: ProbeResult): void;
  headersDropped(rules: readonly ProbeHeaderRule[]): void;
  lag(lagMs: number): void;
  waiting(count: number): void;
  targets(count: number): void;
  verdict(healthy: boolean): void;
  batch(outcome: BatchOutcome, flips: number, applied: number): void;
  assignment(ok: boolean): void;
}

/** healthMetrics registers the health checker's metrics on `registry`. */
export function healthMetrics(registry: Registry): HealthMetrics {
  const registers = [registry];
  const probes = new Counter({ name: 'cairn_health_probes_total', help: 'Health-check probes by checker type and result.', labelNames: ['type', 'result'] as const, registers });
  const latency = new Histogram({
    name: 'cairn_health_probe_seconds',
    help: 'Latency of one health-check probe.',
    labelNames: ['type'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2],
    registers,
  });
  const lag = new Histogram({
    name: 'cairn_health_probe_lag_seconds',
    help: 'How late probes start behind their schedule.',
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers,
  });
  const waiting = new Gauge({ name: 'cairn_health_probes_waiting', help: 'Due probes waiting for a free probe slot.', registers });
  const targets = new Gauge({ name: 'cairn_health_targets', help: 'Persistent instances this member probes.', registers });
  const verdicts = new Counter({ name: 'cairn_health_verdicts_total', help: 'Health flips this member decided, by new health.', labelNames: ['to'] as const, registers });
  const flips = new Counter({ name: 'cairn_health_flips_total', help: 'Health verdicts by what became of them.', labelNames: ['outcome'] as const, registers });
  const headersDropped = new Counter({
    name: 'cairn_health_probe_headers_dropped_total',
    help: 'HTTP checker headers a probe could not send and dropped, by rule.',
    labelNames: ['rule'] as const,
    registers,
  });
  const assignments = new Counter({ name: 'cairn_health_assignments_total', help: 'Probe assignments proposed by this member as leader.', labelNames: ['outcome'] as const, registers });
  return {
    probe: (type, result) => {
      probes.inc({ type, result: resultLabel(result) });
      latency.observe({ type }, result.latencyMs / 1000);
    },
    headersDropped: (rules) => {
      for (const rule of rules) headersDropped.inc({ rule });
    },
    lag: (lagMs) => lag.observe(lagMs / 1000),
    waiting: (count) => waiting.set(count),
    targets: (count) => targets.set(count),
    verdict: (healthy) => verdicts.inc({ to: healthy ? 'healthy' : 'unhealthy' }),
    batch: (outcome, count, applied) => {
      if (outcome === 'committed') {
        if (applied > 0) flips.inc({ outcome: 'applied' }, applied);
        if (count > applied) flips.inc({ outcome: 'skipped' }, count - applied);
      } else {
        flips.inc({ outcome }, count);
      }
    },
    assignment: (ok) => assignments.inc({ outcome: ok ? 'ok' : 'failed' }),
  };
}
