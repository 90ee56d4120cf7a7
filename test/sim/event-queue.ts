// EventQueue: the simulator's agenda, a binary min-heap of events ordered by (virtual time, sequence number). The
// sequence number makes the order total, so two events at the same millisecond always run in the order they were
// scheduled, and a seed replays exactly.
import { SimBoundExceeded } from './sim-errors.ts';

/** EventKind names what a queued event does; the trace and the statistics use it. */
export type EventKind =
  | 'tick'
  | 'deliver'
  | 'sync'
  | 'client'
  | 'timeout'
  | 'fault'
  | 'restart'
  | 'unpause'
  | 'heal'
  | 'retire'
  | 'phase'
  | 'probe';

/** eventKindCodes numbers the event kinds for the trace digest. */
export const eventKindCodes: Readonly<Record<EventKind, number>> = {
  tick: 1,
  deliver: 2,
  sync: 3,
  client: 4,
  timeout: 5,
  fault: 6,
  restart: 7,
  unpause: 8,
  heal: 9,
  retire: 10,
  phase: 11,
  probe: 12,
};

/** SimEvent is one scheduled action; `node` is the node index it concerns, or -1. */
export interface SimEvent {
  readonly time: number;
  readonly seq: number;
  readonly kind: EventKind;
  readonly node: number;
  readonly action: () => void;
}

/** EventQueue is a bounded priority queue of SimEvents ordered by (time, seq). */
export class EventQueue {
  private readonly heap: SimEvent[] = [];
  private seqNext = 0;
  private readonly lengthMax: number;

  constructor(lengthMax: number) {
    this.lengthMax = lengthMax;
  }

  /** length is the number of pending events. */
  get length(): number {
    return this.heap.length;
  }

  /** push schedules `action` at virtual time `time`; throws SimBoundExceeded when the queue is full. */
  push(time: number, kind: EventKind, node: number, action: () => void): void {
    if (this.heap.length >= this.lengthMax) {
      throw new SimBoundExceeded(`event queue full: ${this.heap.length} events pending (simQueueLengthMax)`);
    }
    if (!Number.isInteger(time) || time < 0) throw new RangeError(`event time must be a non-negative integer, got ${time}`);
    const event: SimEvent = { time, seq: this.seqNext++, kind, node, action };
    this.heap.push(event);
    this.siftUp(this.heap.length - 1);
  }

  /** pop removes and returns the earliest event, or undefined when none is left. */
  pop(): SimEvent | undefined {
    const top = this.heap[0];
    const last = this.heap.pop();
    if (top === undefined || last === undefined) return undefined;
    if (this.heap.length > 0) {
      this.heap[0] = last;
      this.siftDown(0);
    }
    return top;
  }

  private siftUp(start: number): void {
    let child = start;
    const event = this.at(child);
    while (child > 0) {
      const parent = (child - 1) >> 1;
      const parentEvent = this.at(parent);
      if (!earlier(event, parentEvent)) break;
      this.heap[child] = parentEvent;
      child = parent;
    }
    this.heap[child] = event;
  }

  private siftDown(start: number): void {
    let parent = start;
    const event = this.at(parent);
    const length = this.heap.length;
    for (;;) {
      let child = 2 * parent + 1;
      if (child >= length) break;
      const right = child + 1;
      if (right < length && earlier(this.at(right), this.at(child))) child = right;
      const childEvent = this.at(child);
      if (!earlier(childEvent, event)) break;
      this.heap[parent] = childEvent;
      parent = child;
    }
    this.heap[parent] = event;
  }

  private at(position: number): SimEvent {
    const event = this.heap[position];
    if (event === undefined) throw new Error(`event queue: no event at heap position ${position}`);
    return event;
  }
}

function earlier(a: SimEvent, b: SimEvent): boolean {
  return a.time < b.time || (a.time === b.time && a.seq < b.seq);
}
