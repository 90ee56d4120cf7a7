// build: a small builder of crafted jepsen-like histories for the checker tests (times in seconds, stored as ns).

import type { RecordedEvent } from '../../jepsen-like/history.ts';

/** HistoryBuilder appends client operations, nemesis lines and observations in time order. */
export class HistoryBuilder {
  readonly events: RecordedEvent[] = [];
  private nextProcess = 0;

  /** op records an invoke at `from` and its completion at `to` (seconds) on a fresh process. */
  op(f: string, from: number, to: number, type: 'ok' | 'fail' | 'info', value: Record<string, unknown>, completion: Record<string, unknown> = {}): this {
    const process = this.nextProcess++;
    this.events.push({ process, type: 'invoke', f, value, time: from * 1e9 });
    this.events.push({ process, type, f, value: { ...value, ...completion }, time: to * 1e9 });
    return this;
  }

  /** nemesis records one nemesis line at `at` seconds. */
  nemesis(type: 'invoke' | 'info', f: string, value: unknown, at: number): this {
    this.events.push({ process: 'nemesis', type, f, value, time: at * 1e9 });
    return this;
  }

  /**
   * partitionOne records a 'one' partition `id` that isolates `lone` from `others`: its rules in from `from` (+10 ms)
   * to `to` (+10 ms) seconds.
   */
  partitionOne(id: number, lone: string, others: readonly string[], from: number, to: number): this {
    this.nemesis('invoke', 'start-partition', { id, mode: 'one' }, from);
    this.nemesis('info', 'start-partition', { id, mode: 'one', grudge: { [lone]: [...others] } }, from + 0.01);
    this.nemesis('invoke', 'stop-partition', { id }, to);
    return this.nemesis('info', 'stop-partition', { id }, to + 0.01);
  }

  /** observe records one observation at `at` seconds. */
  observe(f: string, value: unknown, at: number): this {
    this.events.push({ process: 'observer', type: 'info', f, value, time: at * 1e9 });
    return this;
  }

  /** sorted returns the events ordered by time (stable). */
  sorted(): RecordedEvent[] {
    return [...this.events].sort((a, b) => a.time - b.time);
  }
}
