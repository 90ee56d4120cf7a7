// Goal: the watch checker's start-revision checks (jepsen-like/checkers-watch.ts, "Start revisions", case B4)
// accept streams that follow the Resume rule of docs/grpc.md "Subscribe" (src/naming/subscriptions.ts subscribe()
// and mayResume()) and flag each violation they promise to catch, and nothing the rule allows:
// S1 a snapshot not above its stream's after_revision, or not above the previous one of its stream;
// S2 a first snapshot due at once that came late, where the history can decide it was due (after_revision 0, an
//    unknown epoch, another member's epoch, a restarted member, an after_revision above any bound of the counter)
//    and the member could not have been catching up; not judged when the member may skip (mayResume) or was down or
//    possibly behind min_applied_index;
// S3 a `future-far` / `over-max` open that was not refused with INVALID_ARGUMENT / CAIRN_INVALID_ARGUMENT, or another
//    open that was refused, UNAVAILABLE without a fault, or ended by another error while its member was up;
// S4 a snapshot of the refusing member's same process above the refused after_revision minus a day.
// Method: crafted histories (times in seconds): one subscriber's plain stream, the stream under test, a plain
// stream that converges on the final state; each violation is checked both ways.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { checkWatch, counterIncrementsMax, epochClockSkewUs, watchStartsLines } from '../../jepsen-like/checkers-watch.ts';
import type { WatchEdgeStart } from '../../jepsen-like/workloads/watch.ts';
import { HistoryBuilder } from './build.ts';

const S = 'jepsen-watch-0';
const N1 = '127.0.0.11:8100';
const N2 = '127.0.0.12:8100';
const startMs = 1_800_000_000_000;
const E1 = `${N1}/${startMs}/101`;
const E1b = `${N1}/${startMs + 3000}/151`;
const E2 = `${N2}/${startMs}/102`;
/** R0 is a counter's first value: the epoch's start in microseconds. */
const R0 = startMs * 1000;
const dayUs = 86_400_000_000;
/** last is the revision of the first stream's last snapshot, which the stream under test starts from. */
const last = R0 + 101;

/** elementsAt is the linearized state of the crafted writes at a log index: {1} at 3, {1,2} at 5, {2} at 7. */
function elementsAt(serviceRevision: number): number[] {
  return serviceRevision >= 7 ? [2] : serviceRevision >= 5 ? [1, 2] : [1];
}

/** Scenario builds a watch history: writes, subscriber 0's first stream, then what a test adds. */
class Scenario {
  readonly h = new HistoryBuilder();
  /** revisions holds each subscriber's last revision, so the converging stream stays above it. */
  private readonly revisions = new Map<number, number>();

  constructor() {
    this.h
      .op('watch-add', 1, 1.1, 'ok', { service: S, element: 1 }, { revision: 3 })
      .op('watch-add', 2, 2.1, 'ok', { service: S, element: 2 }, { revision: 5 })
      .op('watch-remove', 3, 3.1, 'ok', { service: S, element: 1 }, { revision: 7, removed: true })
      .op('watch-final', 20, 20.1, 'ok', { service: S }, { serviceRevision: 7, elements: [2] });
    this.open(0, 0, N1, 0.5, 'plain', 0, '', 0);
    this.snap(0, 0, N1, 1.2, R0 + 100, E1, 3, 3);
    this.snap(0, 0, N1, 2.2, last, E1, 5, 5);
    this.end(0, 0, N1, 2.4, 'moved on (client cancel)');
  }

  open(sub: number, stream: number, node: string, at: number, edge: WatchEdgeStart, afterRevision: number, afterEpoch: string, minAppliedIndex = 5): this {
    this.h.observe('watch-open', { sub, service: S, node, stream, afterRevision, afterEpoch, minAppliedIndex, edge, lastRevision: this.revisions.get(sub) ?? 0, lastEpoch: '' }, at);
    return this;
  }

  snap(sub: number, stream: number, node: string, at: number, revision: number, epoch: string, serviceRevision: number, appliedIndex: number): this {
    this.revisions.set(sub, Math.max(this.revisions.get(sub) ?? 0, revision));
    this.h.observe('watch-snapshot', { sub, service: S, node, stream, revision, epoch, appliedIndex, serviceRevision, exists: true, elements: elementsAt(serviceRevision) }, at);
    return this;
  }

  end(sub: number, stream: number, node: string, at: number, reason: string, code?: number, cairnCode?: string): this {
    this.h.observe('watch-end', { sub, service: S, node, stream, reason, ...(code === undefined ? {} : { code, cairnCode: cairnCode ?? null }) }, at);
    return this;
  }

  /** converge: a plain stream of `sub` on N2 that shows the final state, above every revision the subscriber saw. */
  converge(sub: number, stream: number, at = 12, revision?: number, node = N2, epoch = E2): this {
    const after = this.revisions.get(sub) ?? 0;
    this.open(sub, stream, node, at, 'plain', after, '');
    this.snap(sub, stream, node, at + 0.1, revision ?? after + 1, epoch, 7, 7);
    return this.end(sub, stream, node, at + 3, 'moved on (client cancel)');
  }

  nemesis(f: string, value: Record<string, unknown>, from: number, to: number): this {
    this.h.nemesis('invoke', `start-${f}`, value, from).nemesis('info', `start-${f}`, value, from + 0.01);
    this.h.nemesis('invoke', `stop-${f}`, { id: value['id'] }, to - 0.01).nemesis('info', `stop-${f}`, { id: value['id'], result: 'ok' }, to);
    return this;
  }

  check(): ReturnType<typeof checkWatch> {
    return checkWatch(this.h.sorted());
  }
}

/** opened: subscriber 0's stream 1 of kind `edge` on `node` at 2.5 s, sent (after, epoch); the test adds its snapshots and end. */
function opened(edge: WatchEdgeStart, node: string, after: number, epoch: string): Scenario {
  return new Scenario().open(0, 1, node, 2.5, edge, after, epoch);
}

describe('checkWatch: start revisions (B4)', () => {
  test('a fresh stream (zero) below what the subscriber saw elsewhere, then a resume, is valid; counts per kind', () => {
    const result = opened('zero', N2, 0, '').snap(0, 1, N2, 2.6, R0 + 5, E2, 5, 5).end(0, 1, N2, 6, 'moved on (client cancel)').converge(0, 2).check();
    assert.equal(result.valid, true, JSON.stringify(result));
    assert.deepEqual(result.starts.zero, { opens: 1, accepted: 1, refused: 0, unavailable: 0, firstOnTime: 1, firstLate: 0, firstNotJudged: 0, maySkip: 0 });
    assert.equal(result.starts.plain?.opens, 2);
    assert.ok(watchStartsLines(result).some((line) => line.startsWith('  zero: 1 opens')));
  });

  test('S1: a snapshot not above after_revision, or not above the previous one of its stream, is flagged', () => {
    const after = last + 5000;
    const equal = opened('future-near', N2, after, E1).snap(0, 1, N2, 2.6, after, E2, 5, 5).end(0, 1, N2, 6, 'moved on (client cancel)').converge(0, 2).check();
    assert.equal(equal.counts.streamRevisionViolations, 1);
    const above = opened('future-near', N2, after, E1).snap(0, 1, N2, 2.6, after + 1, E2, 5, 5).end(0, 1, N2, 6, 'moved on (client cancel)').converge(0, 2).check();
    assert.equal(above.valid, true, JSON.stringify(above));
    const h = new Scenario().open(1, 0, N2, 1, 'plain', 0, '').snap(1, 0, N2, 1.2, R0 + 50, E2, 3, 3).snap(1, 0, N2, 2.2, R0 + 50, E2, 5, 5).end(1, 0, N2, 2.5, 'moved on (client cancel)');
    const repeated = h.converge(0, 1).converge(1, 1).check();
    assert.equal(repeated.counts.streamRevisionViolations, 1);
  });

  test('S2: a first snapshot due at once that never came is flagged when no fault could have delayed it', () => {
    for (const [edge, after, epoch] of [['zero', 0, ''], ['unknown-epoch', last, 'b4-nobody/0/0'], ['future-near', last + 500_000_000, E1]] as const) {
      const late = opened(edge, N2, after, epoch).end(0, 1, N2, 6.5, 'moved on (client cancel)').converge(0, 2).check();
      assert.equal(late.counts.lateFirstSnapshots, 1, edge);
      assert.equal(late.starts[edge]?.firstLate, 1, edge);
      const onTime = opened(edge, N2, after, epoch).snap(0, 1, N2, 5.4, Math.max(after, last) + 1, E2, 7, 7).end(0, 1, N2, 6.5, 'moved on (client cancel)').converge(0, 2).check();
      assert.equal(onTime.counts.lateFirstSnapshots, 0, edge);
      assert.equal(onTime.valid, true, `${edge}: ${JSON.stringify(onTime)}`);
    }
  });

  test('S2: not judged when the stream ended before the bound or its member was paused in the window', () => {
    const early = opened('zero', N2, 0, '').end(0, 1, N2, 4, 'moved on (client cancel)').converge(0, 2).check();
    assert.equal(early.valid, true, JSON.stringify(early));
    assert.equal(early.starts.zero?.firstNotJudged, 1);
    const paused = opened('zero', N2, 0, '').end(0, 1, N2, 6.5, 'moved on (client cancel)').nemesis('pause', { id: 0, target: 'one', member: N2 }, 4, 6).converge(0, 2).check();
    assert.equal(paused.counts.lateFirstSnapshots, 0);
  });

  test('S2: during a partition only a member shown caught up (applied min_applied_index before the open) is judged', () => {
    const partition = (s: Scenario): Scenario => s.nemesis('partition', { id: 0, mode: 'halves', leader: null }, 1, 4);
    const maybeBehind = partition(opened('zero', N2, 0, '').end(0, 1, N2, 6.5, 'moved on (client cancel)')).converge(0, 2).check();
    assert.equal(maybeBehind.counts.lateFirstSnapshots, 0, JSON.stringify(maybeBehind));
    assert.equal(maybeBehind.starts.zero?.firstNotJudged, 1);
    // Subscriber 1 got a snapshot from N2 at applied index 5 (>= the open's min_applied_index 5) before the open.
    const shown = partition(opened('zero', N2, 0, '').end(0, 1, N2, 6.5, 'moved on (client cancel)'))
      .open(1, 0, N2, 2, 'plain', 0, '').snap(1, 0, N2, 2.3, R0 + 60, E2, 5, 5).end(1, 0, N2, 2.4, 'moved on (client cancel)');
    const result = shown.converge(0, 2).converge(1, 1).check();
    assert.equal(result.counts.lateFirstSnapshots, 1, JSON.stringify(result));
    // A restart of N2 since that snapshot (another process, maybe behind) leaves it not judged.
    const restarted = partition(opened('zero', N2, 0, '').end(0, 1, N2, 6.5, 'moved on (client cancel)'))
      .open(1, 0, N2, 2, 'plain', 0, '').snap(1, 0, N2, 2.3, R0 + 60, E2, 5, 5).end(1, 0, N2, 2.4, 'moved on (client cancel)')
      .nemesis('kill', { id: 1, target: 'leader', members: [N2] }, 2.41, 2.45);
    assert.equal(restarted.converge(0, 2).converge(1, 1).check().counts.lateFirstSnapshots, 0);
  });

  test('S2 future-near under this member\'s own epoch: judged only where mayResume is provably false', () => {
    // 5e8 us ahead of the last revision: above the bound of the counter (its start, a second of skew, 10^7 numbers).
    const far = opened('future-near', N1, last + 500_000_000, E1).end(0, 1, N1, 6.5, 'moved on (client cancel)').converge(0, 2).check();
    assert.equal(far.counts.lateFirstSnapshots, 1, JSON.stringify(far));
    // 5 us ahead: within the counter's possible reach, so the member may skip if the service did not change since.
    const near = opened('future-near', N1, last + 5, E1).end(0, 1, N1, 6.5, 'moved on (client cancel)').converge(0, 2).check();
    assert.equal(near.valid, true, JSON.stringify(near));
    assert.equal(near.starts['future-near']?.maySkip, 1);
    // Just above and just within the bound.
    const bound = R0 + epochClockSkewUs + counterIncrementsMax;
    assert.equal(opened('future-near', N1, bound + 1, E1).end(0, 1, N1, 6.5, 'moved on (client cancel)').converge(0, 2).check().counts.lateFirstSnapshots, 1);
    assert.equal(opened('future-near', N1, bound, E1).end(0, 1, N1, 6.5, 'moved on (client cancel)').converge(0, 2).check().counts.lateFirstSnapshots, 0);
    // Another open at N1 before (subscriber 1's, served) may have raised the counter above: the member may skip.
    const raised = opened('future-near', N1, last + 500_000_000, E1).end(0, 1, N1, 6.5, 'moved on (client cancel)')
      .open(1, 0, N1, 2, 'future-near', last + 900_000_000, E1).snap(1, 0, N1, 2.1, last + 900_000_001, E1, 5, 5).end(1, 0, N1, 2.4, 'moved on (client cancel)');
    const result = raised.converge(0, 2).converge(1, 1).check();
    assert.equal(result.valid, true, JSON.stringify(result));
    // Subscriber 1's own open (9e8 ahead, above any raise before it) was due, and came on time.
    assert.deepEqual([result.starts['future-near']?.maySkip, result.starts['future-near']?.firstOnTime], [1, 1]);
  });

  test('S2 future-near: another member\'s epoch, or this member\'s before a restart, makes the first snapshot due', () => {
    const other = opened('future-near', N2, last + 5, E1).end(0, 1, N2, 6.5, 'moved on (client cancel)').converge(0, 2).check();
    assert.equal(other.counts.lateFirstSnapshots, 1, JSON.stringify(other));
    // N1 restarted at 2.3 (epoch E1b); its first snapshot at 6 s shows the new epoch: due at once, and N1 had shown
    // applied index 5 in its new process (subscriber 1, 2.45 s) before the open.
    const restarted = opened('future-near', N1, last + 5, E1).snap(0, 1, N1, 6, last + 6, E1b, 7, 7).end(0, 1, N1, 6.5, 'moved on (client cancel)')
      .nemesis('kill', { id: 0, target: 'leader', members: [N1] }, 2.3, 2.4)
      .open(1, 0, N1, 2.42, 'plain', 0, '').snap(1, 0, N1, 2.45, R0 + 3_000_001, E1b, 5, 5).end(1, 0, N1, 2.47, 'moved on (client cancel)');
    const result = restarted.converge(0, 2).converge(1, 1).check();
    assert.equal(result.counts.lateFirstSnapshots, 1, JSON.stringify(result));
    assert.match(result.lateFirstSnapshots[0] ?? '', /restarted/);
  });

  test('S3: future-far and over-max refused with INVALID_ARGUMENT / CAIRN_INVALID_ARGUMENT are valid; anything else is flagged', () => {
    for (const [edge, after] of [['future-far', last + 2 * dayUs], ['over-max', 2 ** 52 + 2]] as const) {
      const refused = opened(edge, N1, after, E1).end(0, 1, N1, 2.55, '3 CAIRN_INVALID_ARGUMENT: ...', 3, 'CAIRN_INVALID_ARGUMENT').converge(0, 2).check();
      assert.equal(refused.valid, true, `${edge}: ${JSON.stringify(refused)}`);
      assert.equal(refused.starts[edge]?.refused, 1);
      const accepted = opened(edge, N1, after, E1).snap(0, 1, N1, 2.6, after + 1, E1, 5, 5).end(0, 1, N1, 6, 'moved on (client cancel)').converge(0, 2, 12, after + 2).check();
      assert.equal(accepted.counts.startOutcomes, 1, edge);
      const wrongCode = opened(edge, N1, after, E1).end(0, 1, N1, 2.55, '3 bad', 3, 'CAIRN_SOMETHING_ELSE').converge(0, 2).check();
      assert.equal(wrongCode.counts.startOutcomes, 1, edge);
      const silent = opened(edge, N1, after, E1).end(0, 1, N1, 8, 'moved on (client cancel)').converge(0, 2).check();
      assert.equal(silent.counts.startOutcomes, 1, edge);
    }
  });

  test('S3: UNAVAILABLE is excused during a fault, not without one; a refused ordinary open is flagged', () => {
    const behind = (s: Scenario): Scenario => s.end(0, 1, N1, 12.5, '14 CAIRN_MEMBER_BEHIND: ...', 14, 'CAIRN_MEMBER_BEHIND');
    const during = behind(opened('future-far', N1, last + 2 * dayUs, E1)).nemesis('partition', { id: 0, mode: 'leader', leader: '127.0.0.11' }, 2, 8).converge(0, 2, 13).check();
    assert.equal(during.valid, true, JSON.stringify(during));
    assert.equal(during.starts['future-far']?.unavailable, 1);
    const without = behind(opened('future-far', N1, last + 2 * dayUs, E1)).converge(0, 2, 13).check();
    assert.equal(without.counts.startOutcomes, 1);
    // A plain resume at the member refused (as when a refusal had lifted its counter to 2^52) is flagged.
    const plainRefused = opened('plain', N1, last, E1).end(0, 1, N1, 2.55, '3 CAIRN_INVALID_ARGUMENT: ...', 3, 'CAIRN_INVALID_ARGUMENT').converge(0, 2).check();
    assert.equal(plainRefused.counts.startOutcomes, 1);
    assert.match(plainRefused.startOutcomes[0] ?? '', /refused/);
    // Another error (a reset stream) is excused only while the stream's member was down.
    const reset = (s: Scenario): Scenario => s.snap(0, 1, N1, 2.6, last + 1, E1, 5, 5).end(0, 1, N1, 4, '13 Received RST_STREAM with code 2', 13);
    assert.equal(reset(opened('plain', N1, last, E1)).converge(0, 2).check().counts.startOutcomes, 1);
    const killed = reset(opened('plain', N1, last, E1)).nemesis('kill', { id: 0, target: 'leader', members: [N1] }, 3.9, 6).converge(0, 2).check();
    assert.equal(killed.valid, true, JSON.stringify(killed));
  });

  test('S4: after a refused far-future open, a revision of that member\'s process above the refused value minus a day is flagged', () => {
    const refuse = (after: number): Scenario => opened('future-far', N1, after, E1).end(0, 1, N1, 2.55, '3 CAIRN_INVALID_ARGUMENT: ...', 3, 'CAIRN_INVALID_ARGUMENT');
    const after = last + 2 * dayUs;
    const lifted = refuse(after).converge(0, 2, 12, after - dayUs + 1, N1, E1).check();
    assert.equal(lifted.counts.counterLifted, 1, JSON.stringify(lifted));
    const clean = refuse(after).converge(0, 2, 12, after - dayUs, N1, E1).check();
    assert.equal(clean.valid, true, JSON.stringify(clean));
    // Another process of N1 (killed and restarted in between) is not the one that refused.
    const otherProcess = refuse(after).nemesis('kill', { id: 0, target: 'leader', members: [N1] }, 5, 6).converge(0, 2, 12, after - dayUs + 1, N1, E1b).check();
    assert.equal(otherProcess.counts.counterLifted, 0, JSON.stringify(otherProcess));
    // Over-max too: 2^52 + 2 minus a day.
    const overMax = opened('over-max', N1, 2 ** 52 + 2, E1).end(0, 1, N1, 2.55, '3 CAIRN_INVALID_ARGUMENT: ...', 3, 'CAIRN_INVALID_ARGUMENT').converge(0, 2, 12, 2 ** 52, N1, E1).check();
    assert.equal(overMax.counts.counterLifted, 1);
  });

  test('a history without edge starts (B1-B3) gets none of the B4 judgements but S1', () => {
    const h = new HistoryBuilder()
      .op('watch-add', 1, 1.1, 'ok', { service: S, element: 1 }, { revision: 3 })
      .op('watch-final', 10, 10.1, 'ok', { service: S }, { serviceRevision: 3, elements: [1] })
      .observe('watch-open', { sub: 0, service: S, node: N1, stream: 0, afterRevision: 0, afterEpoch: '' }, 0.5)
      .observe('watch-end', { sub: 0, service: S, node: N1, stream: 0, reason: '14 No connection established' }, 0.6)
      .observe('watch-open', { sub: 0, service: S, node: N1, stream: 1, afterRevision: 0, afterEpoch: '' }, 0.7)
      .observe('watch-snapshot', { sub: 0, service: S, node: N1, stream: 1, revision: R0, epoch: E1, serviceRevision: 3, exists: true, elements: [1] }, 1.2);
    const result = checkWatch(h.sorted());
    assert.equal(result.valid, true, JSON.stringify(result));
    assert.deepEqual(result.starts, {});
    assert.deepEqual(watchStartsLines(result), []);
  });
});
