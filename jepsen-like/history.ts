// history: the recorder of a run. Every client operation is an 'invoke' followed by exactly one 'ok', 'fail' or
// 'info' for the same process; every nemesis action is an 'invoke'/'info' pair on process "nemesis". Times are
// nanoseconds since the run started, from process.hrtime.bigint() (monotonic), read by the caller before the call
// is sent and after its answer arrived, never inside it. Events go to history.jsonl as they happen (so a crashed
// run still leaves its history) and stay in memory, bounded, for the checkers.

import { closeSync, openSync, writeSync } from 'node:fs';
import type { EventType, HistoryEvent } from '../test/checker/history.ts';

/** nemesisProcess is the `process` of every nemesis event; the checkers filter these lines out. */
export const nemesisProcess = 'nemesis';

/** NemesisEvent is one nemesis line of history.jsonl: an invoke when a fault starts or stops, an info when done. */
export interface NemesisEvent {
  readonly process: typeof nemesisProcess;
  readonly type: 'invoke' | 'info';
  readonly f: string;
  readonly value: unknown;
  readonly time: number;
}

/** streamLaneBase numbers the timeline lanes of watch subscribers (below every client process): base + subscriber. */
export const streamLaneBase = 2_000_000_000;

/** observerProcess is the `process` of observations that are not operations (watch snapshots, stream ends). */
export const observerProcess = 'observer';

/** ObserverEvent is one observation line: something a client saw, not an invoke/complete pair (a pushed snapshot). */
export interface ObserverEvent {
  readonly process: typeof observerProcess;
  readonly type: 'info';
  readonly f: string;
  readonly value: unknown;
  readonly time: number;
}

/** RecordedEvent is any line of history.jsonl. */
export type RecordedEvent = HistoryEvent | NemesisEvent | ObserverEvent;

/** historyEventsMax bounds a run's history: far above what a 5-minute run produces (about 100 events a second). */
export const historyEventsMax = 2_000_000;

/** isNemesisEvent is true for the nemesis's lines (faults, and the health workload's scripted target events). */
export function isNemesisEvent(event: RecordedEvent): event is NemesisEvent {
  return event.process === nemesisProcess;
}

/** isObserverEvent is true for observation lines. */
export function isObserverEvent(event: RecordedEvent): event is ObserverEvent {
  return event.process === observerProcess;
}

/** isClientEvent is true for the events of client processes (numeric process ids). */
export function isClientEvent(event: RecordedEvent): event is HistoryEvent {
  return typeof event.process === 'number';
}

/** HistoryRecorder appends events to history.jsonl and keeps them for the checkers. */
export class HistoryRecorder {
  private readonly fd: number;
  private readonly started: bigint;
  private readonly recorded: RecordedEvent[] = [];
  private closed = false;

  /** constructor opens (truncates) `path`; time 0 is now. */
  constructor(path: string) {
    this.fd = openSync(path, 'w');
    this.started = process.hrtime.bigint();
  }

  /** now is the monotonic time in nanoseconds since the run started. */
  now(): number {
    return Number(process.hrtime.bigint() - this.started);
  }

  /** client records one client event at `time` (taken by the caller outside the call). */
  client(process: number, type: EventType, f: string, value: unknown, time: number): void {
    this.append({ process, type, f, value, time });
  }

  /** nemesis records one nemesis event now and returns its time. */
  nemesis(type: 'invoke' | 'info', f: string, value: unknown): number {
    const time = this.now();
    this.append({ process: nemesisProcess, type, f, value, time });
    return time;
  }

  /** observe records one observation at `time` (taken by the caller when it arrived). */
  observe(f: string, value: unknown, time: number): void {
    this.append({ process: observerProcess, type: 'info', f, value, time });
  }

  /** nemesisAt records a nemesis-process event at `time` (the health workload's scripted target events). */
  nemesisAt(type: 'invoke' | 'info', f: string, value: unknown, time: number): void {
    this.append({ process: nemesisProcess, type, f, value, time });
  }

  /** events returns everything recorded so far, in order. */
  events(): readonly RecordedEvent[] {
    return this.recorded;
  }

  /** close closes history.jsonl; later events are kept in memory only. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeSync(this.fd);
  }

  private append(event: RecordedEvent): void {
    if (this.recorded.length >= historyEventsMax) {
      throw new Error(`history: more than ${historyEventsMax} events; shorten the run`);
    }
    this.recorded.push(event);
    if (!this.closed) writeSync(this.fd, `${JSON.stringify(event)}\n`);
  }
}
