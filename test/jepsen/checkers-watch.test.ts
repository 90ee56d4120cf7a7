// Goal: the watch checker (jepsen-like/checkers-watch.ts) accepts a subscriber history consistent with the log and
// rejects each violation it promises to catch: a duplicate or decreasing push revision, a snapshot whose state
// never existed at its log index (phantom, missing or removed element), a resume that goes back in time (an older
// log index after a newer one), a resurrection, and a subscriber that never converges (the positive control of a
// gap: a stream that silently stopped before the last write). Method: crafted histories, times in seconds.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { checkWatch } from '../../jepsen-like/checkers-watch.ts';
import { HistoryBuilder } from './build.ts';

const S = 'jepsen-watch-0';

interface Snap {
  readonly sub?: number;
  readonly stream?: number;
  readonly node?: string;
  readonly revision: number;
  readonly serviceRevision: number;
  readonly elements: number[];
  readonly at: number;
}

/** writes: element 1 at log index 3, element 2 at 5, element 1 removed at 7; final state {2} at 7. */
function writes(h: HistoryBuilder): HistoryBuilder {
  return h
    .op('watch-add', 1, 1.1, 'ok', { service: S, element: 1 }, { revision: 3 })
    .op('watch-add', 2, 2.1, 'ok', { service: S, element: 2 }, { revision: 5 })
    .op('watch-add', 2.5, 2.6, 'fail', { service: S, element: 9 })
    .op('watch-remove', 3, 3.1, 'ok', { service: S, element: 1 }, { revision: 7, removed: true })
    .op('watch-final', 10, 10.1, 'ok', { service: S }, { serviceRevision: 7, elements: [2] });
}

function history(snaps: readonly Snap[]): HistoryBuilder {
  const h = writes(new HistoryBuilder());
  h.observe('watch-open', { sub: 0, service: S, node: 'A', stream: 0, afterRevision: 0, afterEpoch: '' }, 0.5);
  for (const s of snaps) {
    h.observe('watch-snapshot', { sub: s.sub ?? 0, service: S, node: s.node ?? 'A', stream: s.stream ?? 0, revision: s.revision, epoch: 'e1', serviceRevision: s.serviceRevision, exists: true, elements: s.elements }, s.at);
  }
  return h;
}

const good: Snap[] = [
  { revision: 100, serviceRevision: 3, elements: [1], at: 1.2 },
  { revision: 101, serviceRevision: 5, elements: [1, 2], at: 2.2 },
  { revision: 205, stream: 1, node: 'B', serviceRevision: 5, elements: [1, 2], at: 2.8 },
  { revision: 206, stream: 1, node: 'B', serviceRevision: 7, elements: [2], at: 3.2 },
];

describe('checkWatch', () => {
  test('snapshots that follow the log, across a resume on another member, are valid', () => {
    const result = checkWatch(history(good).sorted());
    assert.equal(result.valid, true, JSON.stringify(result));
  });

  test('a duplicate push revision is invalid; so is a smaller one', () => {
    const dup = good.map((s, i) => (i === 2 ? { ...s, revision: 101 } : s));
    assert.equal(checkWatch(history(dup).sorted()).counts.revisionViolations, 1);
    const back = good.map((s, i) => (i === 2 ? { ...s, revision: 50 } : s));
    assert.equal(checkWatch(history(back).sorted()).valid, false);
  });

  test('a resume that shows an older log index (time travel) is invalid even with a greater push revision', () => {
    const snaps = [...good.slice(0, 2), { revision: 300, stream: 1, node: 'C', serviceRevision: 3, elements: [1], at: 2.9 }, { revision: 301, stream: 1, node: 'C', serviceRevision: 7, elements: [2], at: 3.3 }];
    const result = checkWatch(history(snaps).sorted());
    assert.equal(result.valid, false);
    assert.equal(result.counts.timeTravel, 1);
  });

  test('a state that never existed is invalid: phantom, failed, missing or removed elements', () => {
    for (const elements of [[1, 2, 77], [1, 2, 9], [2], [1]]) {
      const snaps = good.map((s, i) => (i === 1 ? { ...s, elements } : s));
      const result = checkWatch(history(snaps).sorted());
      assert.equal(result.valid, false, `elements ${elements.join(',')}`);
      assert.ok(result.counts.stateViolations >= 1);
    }
    const removed = good.map((s, i) => (i === 3 ? { ...s, elements: [1, 2] } : s));
    assert.equal(checkWatch(history(removed).sorted()).valid, false);
  });

  test('a resurrection (present, gone, present again for an element with an unknown outcome) is invalid', () => {
    const h = history(good);
    h.op('watch-add', 4, 4.1, 'info', { service: S, element: 5 });
    h.observe('watch-snapshot', { sub: 1, service: S, node: 'A', stream: 0, revision: 400, epoch: 'e1', serviceRevision: 8, exists: true, elements: [2, 5] }, 4.2);
    h.observe('watch-snapshot', { sub: 1, service: S, node: 'A', stream: 0, revision: 401, epoch: 'e1', serviceRevision: 9, exists: true, elements: [2] }, 4.3);
    h.observe('watch-snapshot', { sub: 1, service: S, node: 'A', stream: 0, revision: 402, epoch: 'e1', serviceRevision: 10, exists: true, elements: [2, 5] }, 4.4);
    h.op('watch-final', 11, 11.1, 'ok', { service: S }, { serviceRevision: 10, elements: [2, 5] });
    const result = checkWatch(h.sorted());
    assert.equal(result.counts.resurrections, 1);
  });

  test('positive control: a subscriber whose stream stopped before the last write (a gap) never converges', () => {
    const result = checkWatch(history(good.slice(0, 3)).sorted());
    assert.equal(result.valid, false);
    assert.equal(result.counts.notConverged, 1);
  });
});
