// Goal: the simulator's agenda orders events by (virtual time, sequence number), so equal-time events run in the order
// they were scheduled and a seed replays exactly (STYLE.md §5), and it enforces its bound (STYLE.md §3).
//
// Method: push events in a seeded random order and check they pop sorted by time and, within a time, by insertion;
// then fill a small queue past its bound.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Prng } from '../../src/raft/prng.ts';
import { EventQueue } from './event-queue.ts';
import { SimBoundExceeded } from './sim-errors.ts';

test('events pop in (time, insertion) order', () => {
  const prng = new Prng(42);
  const queue = new EventQueue(10_000);
  const pushed: Array<{ time: number; order: number }> = [];
  for (let order = 0; order < 2000; order++) {
    const time = prng.nextInt(50);
    pushed.push({ time, order });
    queue.push(time, 'tick', -1, () => undefined);
  }
  const expected = [...pushed].sort((a, b) => a.time - b.time || a.order - b.order);
  const popped: Array<{ time: number; seq: number }> = [];
  for (let event = queue.pop(); event !== undefined; event = queue.pop()) popped.push({ time: event.time, seq: event.seq });
  assert.deepEqual(popped.map((event) => [event.time, event.seq]), expected.map((event) => [event.time, event.order]));
});

test('a full queue refuses another event', () => {
  const queue = new EventQueue(3);
  for (let i = 0; i < 3; i++) queue.push(i, 'tick', -1, () => undefined);
  assert.throws(() => queue.push(5, 'tick', -1, () => undefined), SimBoundExceeded);
  assert.throws(() => queue.push(-1, 'tick', -1, () => undefined));
});
