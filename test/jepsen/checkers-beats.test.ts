// Goal: the beats checker (jepsen-like/checkers-beats.ts, PEERS.md §2.3 D2/D4) accepts expiries that follow the
// instance's timeouts, evictions explained by a partition (the silent side, its tombstone right after the heal, a
// removal decided after the heal by the side that heard less) and a restarted member catching up; and rejects a beating instance evicted without silence, an expiry before the
// delete timeout, an instance that never expires, and one that expires after the late bound. Method: crafted
// histories, times in seconds; timings 1 s beats, 3 s unhealthy, 6 s delete; one instance (element 1) beaten once a
// second through 127.0.0.11 unless a test says otherwise; three members read once a second.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { beatBounds, checkBeats } from '../../jepsen-like/checkers-beats.ts';
import { HistoryBuilder } from './build.ts';

const S = 'jepsen-beat-0';
const m11 = '127.0.0.11:8100';
const m12 = '127.0.0.12:8100';
const m13 = '127.0.0.13:8100';
const members = [m11, m12, m13];

function base(): HistoryBuilder {
  const h = new HistoryBuilder();
  h.observe('beats-setup', { members, services: [{ name: S, responsible: m11 }], timeouts: { intervalMs: 1000, unhealthyMs: 3000, removeMs: 6000 }, pollMs: 1000, faults: [], faultMs: [0, 0], quietMs: [0, 0] }, 0);
  h.op('beat-register', 0, 0.01, 'ok', { service: S, element: 1, slot: 0, node: m11 });
  return h;
}

/** beats: element 1 beaten every second from `from` to `to` (inclusive) through `node`. */
function beats(h: HistoryBuilder, from: number, to: number, node = m11): HistoryBuilder {
  for (let t = from; t <= to + 1e-9; t += 1) h.op('beat', t, t + 0.01, 'ok', { service: S, element: 1, slot: 0, node }, { code: 10200, clientBeatInterval: 1000 });
  return h;
}

type State = 'healthy' | 'unhealthy' | 'absent';

/** reads: every member in `who` reads at each whole second + 0.5 in [from, to]; `state(member, t)` says what it lists. */
function reads(h: HistoryBuilder, from: number, to: number, state: (member: string, t: number) => State, who: readonly string[] = members): HistoryBuilder {
  for (let t = from; t <= to + 1e-9; t += 1) {
    for (const member of who) {
      const s = state(member, t);
      h.op('beat-read', t, t + 0.02, 'ok', { service: S, node: member }, { present: s === 'absent' ? [] : [1], unhealthy: s === 'unhealthy' ? [1] : [] });
    }
  }
  return h;
}

/** expiring: the state of an instance whose last beat was at `last` (unhealthy after 3 s, absent after 6 s, plus `lag`). */
function expiring(last: number, lag = 0.3): (member: string, t: number) => State {
  return (_member, t) => (t >= last + 6 + lag ? 'absent' : t >= last + 3 + lag ? 'unhealthy' : 'healthy');
}

/** isolate: a partition cutting `host` from the others, both ways, from `from` to `to`. */
function isolate(h: HistoryBuilder, host: string, from: number, to: number): HistoryBuilder {
  const others = members.map((m) => m.split(':')[0] ?? '').filter((other) => other !== host);
  h.nemesis('invoke', 'start-partition', { id: 7, mode: 'isolate-responsible' }, from);
  h.nemesis('info', 'start-partition', { id: 7, mode: 'isolate-responsible', grudge: { [host]: others, ...Object.fromEntries(others.map((o) => [o, [host]])) } }, from + 0.01);
  h.nemesis('invoke', 'stop-partition', { id: 7 }, to);
  h.nemesis('info', 'stop-partition', { id: 7 }, to + 0.01);
  return h;
}

describe('checkBeats', () => {
  test('the bounds follow from the timings: 26 s late bound for 6 s deletes and 1 s polls', () => {
    const bounds = beatBounds({ intervalMs: 1000, unhealthyMs: 3000, removeMs: 6000 }, 1000);
    assert.deepEqual([bounds.upDetectMs, bounds.detectMs, bounds.healSettleMs, bounds.lateBoundMs], [2500, 5000, 10_000, 26_000]);
  });

  test('beats, then a stop, then unhealthy and absent after the timeouts: valid, latency about the delete timeout', () => {
    const h = beats(base(), 1, 10);
    h.observe('beat-stop', { service: S, element: 1, slot: 0 }, 10.5);
    reads(h, 0.5, 30.5, expiring(10));
    const result = checkBeats(h.sorted());
    assert.equal(result.valid, true, [...result.violations, ...result.problems].join('; '));
    assert.deepEqual([result.falseEvictions.total, result.expiries.early, result.late, result.neverGone, result.gone], [0, 0, 0, 0, 1]);
    assert.equal(result.expiries.inTime, 6);
    assert.ok(result.latencyMs !== null && result.latencyMs.max > 6000 && result.latencyMs.max < 8000, JSON.stringify(result.latencyMs));
  });

  test('positive control: a beating instance dropped by a member with no silence is an unexplained false eviction', () => {
    const h = beats(base(), 1, 20);
    h.observe('beat-stop', { service: S, element: 1, slot: 0 }, 20.5);
    reads(h, 0.5, 40.5, (member, t) => (member === m12 && t > 8 && t < 10 ? 'absent' : expiring(20)(member, t)));
    const result = checkBeats(h.sorted());
    assert.equal(result.valid, false);
    assert.equal(result.falseEvictions.unexplained, 1);
    assert.equal(result.unexplainedInstanceRate, 1);
    assert.match(result.violations[0] ?? '', /false eviction of a beating instance: element 1 .* absent on 127\.0\.0\.12/);
    assert.equal(result.anomalies.length, 1);
  });

  test('positive control: an unhealthy flag with 1 s of silence is a false eviction too', () => {
    const h = beats(base(), 1, 20);
    h.observe('beat-stop', { service: S, element: 1, slot: 0 }, 20.5);
    reads(h, 0.5, 40.5, (member, t) => (t > 5 && t < 7 ? 'unhealthy' : expiring(20)(member, t)));
    const result = checkBeats(h.sorted());
    assert.equal(result.valid, false);
    assert.deepEqual([result.falseEvictions.unexplained, result.falseEvictions.toUnhealthy], [3, 3]);
  });

  test('positive control: a stopped instance gone 2 s after its last beat expired early', () => {
    const h = beats(base(), 1, 10);
    h.observe('beat-stop', { service: S, element: 1, slot: 0 }, 10.5);
    reads(h, 0.5, 30.5, (_member, t) => (t >= 12 ? 'absent' : 'healthy'));
    const result = checkBeats(h.sorted());
    assert.equal(result.valid, false);
    assert.equal(result.expiries.early, 3);
    assert.match(result.violations[0] ?? '', /early expiry/);
  });

  test('positive control: a stopped instance that never expires (the TTL reset for ever) is late and never gone', () => {
    const h = beats(base(), 1, 10);
    h.observe('beat-stop', { service: S, element: 1, slot: 0 }, 10.5);
    reads(h, 0.5, 45.5, () => 'healthy');
    const result = checkBeats(h.sorted());
    assert.equal(result.valid, false);
    assert.deepEqual([result.late, result.neverGone, result.gone], [1, 1, 0]);
    assert.match(result.violations[0] ?? '', /late: element 1 .* still listed \d+ ms after its last beat \(bound 26000 ms\), and by/);
  });

  test('positive control: gone from every member, but only 30 s after the last beat, is late', () => {
    const h = beats(base(), 1, 10);
    h.observe('beat-stop', { service: S, element: 1, slot: 0 }, 10.5);
    reads(h, 0.5, 50.5, (member, t) => (member === m13 ? (t >= 40 ? 'absent' : 'unhealthy') : expiring(10)(member, t)));
    const result = checkBeats(h.sorted());
    assert.equal(result.valid, false);
    assert.deepEqual([result.late, result.neverGone], [1, 0]);
  });

  test('a member cut off with no beats reaching it evicts (sided), then its tombstone shows everywhere right after the heal: valid', () => {
    // .13 is isolated 5-15 s and the client beats only through .11; .13 marks the instance unhealthy at 8.3 and
    // removes it at 11.3 (its side silent since 5); after the heal its tombstone wins on .11 and .12 until the
    // next beats write the instance again (absent 15.5-17.5).
    const h = isolate(beats(base(), 1, 30), '127.0.0.13', 5, 15);
    h.observe('beat-stop', { service: S, element: 1, slot: 0 }, 30.5);
    reads(h, 0.5, 45.5, (member, t) => {
      if (member === m13 && t > 8.3 && t < 11.3) return 'unhealthy';
      if (member === m13 && t > 11.3 && t < 18) return 'absent';
      if (member !== m13 && t > 15 && t < 18) return 'absent';
      return expiring(30)(member, t);
    });
    const result = checkBeats(h.sorted());
    assert.equal(result.valid, true, [...result.violations, ...result.problems].join('; '));
    assert.deepEqual([result.falseEvictions.sided, result.falseEvictions.afterHeal, result.falseEvictions.unexplained], [2, 2, 0]);
    assert.equal(result.falseEvictionRate, 1);
  });

  test('the same eviction on the majority side, which kept hearing beats, long after the heal is unexplained', () => {
    const h = isolate(beats(base(), 1, 40), '127.0.0.13', 5, 15);
    h.observe('beat-stop', { service: S, element: 1, slot: 0 }, 40.5);
    reads(h, 0.5, 55.5, (member, t) => (member === m12 && t > 27 && t < 29 ? 'absent' : expiring(40)(member, t)));
    const result = checkBeats(h.sorted());
    assert.equal(result.valid, false);
    assert.equal(result.falseEvictions.unexplained, 1);
  });

  test('during the cut, the majority side dropping the instance is unexplained (the silent member cannot reach it yet)', () => {
    const h = isolate(beats(base(), 1, 30), '127.0.0.13', 5, 15);
    h.observe('beat-stop', { service: S, element: 1, slot: 0 }, 30.5);
    reads(h, 0.5, 45.5, (member, t) => (member === m11 && t > 12 && t < 14 ? 'absent' : member === m13 && t > 11.3 && t < 16 ? 'absent' : expiring(30)(member, t)));
    const result = checkBeats(h.sorted());
    assert.equal(result.valid, false);
    assert.equal(result.falseEvictions.unexplained, 1);
  });

  test('a flip decided in a 3 s gap before the latest beat is sided, though the read comes after that beat', () => {
    // Beats at 1..8, then one that took 2 s (through a member cut off) so the side heard nothing from 8 to 11.1, then
    // 11.1 again: the owner flipped at 11.05; a beat arriving after the decision at another member does not undo it.
    const h = beats(base(), 1, 8);
    h.op('beat', 9, 11, 'info', { service: S, element: 1, slot: 0, node: m13 }, { error: 'timeout' });
    beats(h, 11.1, 20);
    h.observe('beat-stop', { service: S, element: 1, slot: 0 }, 20.5);
    reads(h, 0.5, 40.5, (member, t) => (t > 11 && t < 12 ? 'unhealthy' : expiring(20)(member, t)));
    const result = checkBeats(h.sorted());
    assert.equal(result.valid, true, [...result.violations, ...result.problems].join('; '));
    assert.equal(result.falseEvictions.sided, 3);
  });

  test('a removal decided by the majority after the heal shows on the member cut off, which heard a later beat: after heal', () => {
    // .13 is isolated 5-11 s; the last beats go to .11 (10 s) then .13 (11 s, still cut), then the client stops. The
    // majority heard nothing after 10 s and removes the instance at 16.3; .13 heard 11 s, only 5.5 s before.
    const h = isolate(beats(base(), 1, 10), '127.0.0.13', 5, 11.2);
    h.op('beat', 11, 11.01, 'ok', { service: S, element: 1, slot: 0, node: m13 }, { code: 10200, clientBeatInterval: 1000 });
    h.observe('beat-stop', { service: S, element: 1, slot: 0 }, 11.5);
    reads(h, 0.5, 30.5, (member, t) => (member === m13 ? (t > 16.3 ? 'absent' : t > 14.3 ? 'unhealthy' : 'healthy') : expiring(10)(member, t)));
    const result = checkBeats(h.sorted());
    assert.equal(result.valid, true, [...result.violations, ...result.problems].join('; '));
    assert.equal(result.expiries.afterHeal, 1);
  });

  test('a restarted member that lists nothing until its snapshot loads is catching up, not evicting', () => {
    const h = beats(base(), 1, 20);
    h.nemesis('invoke', 'start-kill', { id: 3, target: 'responsible', members: [m12] }, 8);
    h.nemesis('info', 'start-kill', { id: 3, target: 'responsible', members: [m12] }, 8.1);
    h.nemesis('invoke', 'stop-kill', { id: 3 }, 11);
    h.nemesis('info', 'stop-kill', { id: 3, result: ['restarted'] }, 12);
    h.observe('beat-stop', { service: S, element: 1, slot: 0 }, 20.5);
    reads(h, 0.5, 40.5, (member, t) => (member === m12 && t > 12 && t < 14 ? 'absent' : expiring(20)(member, t)), members.filter((m) => m !== m12));
    reads(h, 0.5, 7.5, () => 'healthy', [m12]);
    reads(h, 12.5, 40.5, (member, t) => (t < 14 ? 'absent' : expiring(20)(member, t)), [m12]);
    const result = checkBeats(h.sorted());
    assert.equal(result.valid, true, [...result.violations, ...result.problems].join('; '));
    assert.equal(result.restartCatchUpReads, 2);
    assert.equal(result.falseEvictions.total, 0);
  });

  test('a kill does not excuse an eviction: the member alive throughout dropping a beating instance is unexplained', () => {
    const h = beats(base(), 1, 20);
    h.nemesis('invoke', 'start-kill', { id: 3, target: 'responsible', members: [m12] }, 8);
    h.nemesis('info', 'start-kill', { id: 3, target: 'responsible', members: [m12] }, 8.1);
    h.nemesis('info', 'stop-kill', { id: 3, result: ['restarted'] }, 12);
    h.observe('beat-stop', { service: S, element: 1, slot: 0 }, 20.5);
    reads(h, 0.5, 40.5, (member, t) => (member === m11 && t > 9 && t < 11 ? 'absent' : expiring(20)(member, t)));
    const result = checkBeats(h.sorted());
    assert.equal(result.valid, false);
    assert.equal(result.falseEvictions.unexplained, 1);
  });
});
