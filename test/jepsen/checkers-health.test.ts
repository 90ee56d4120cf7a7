// Goal: the health checker (jepsen-like/checkers-health.ts) accepts a history whose reads follow the scripted truth
// and rejects each kind of violation it promises to catch: an unjustified flip, a flip committed around an
// isolation of the target's prober (fencing), a final read that disagrees with the truth, a prober-targets cut
// never reported, and an observation far from the truth. C4 (kills and pauses of the prober): a history where the
// new owner shows the victim's transitions within the bound and the handover probes stay within the storm bound is
// valid; a late resumption, a lost transition, a probe storm (steady state and handover) and a stale verdict of a
// paused prober committed after it woke are each invalid. Method: crafted histories, one target, times in seconds.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { checkHealth } from '../../jepsen-like/checkers-health.ts';
import { healthBounds } from '../../jepsen-like/workloads/health.ts';
import { HistoryBuilder } from './build.ts';

const T = '127.0.0.15:61000';
const members = ['A', 'B', 'C'];

/** base: the target is down 10-20 s; reads every second follow the truth with a 2 s lag; final reads at 70 s. */
function base(readAt: (t: number) => boolean | null = (t) => !(t >= 12 && t < 27)): HistoryBuilder {
  const h = new HistoryBuilder();
  h.observe('health-setup', { targets: [T], owners: { [T]: 'A' }, members, intervalMs: 2500, boundMs: 20_000, commitMarginMs: 8000 }, 0);
  h.nemesis('invoke', 'start-target-down', { id: 1, target: T }, 10).nemesis('info', 'start-target-down', { id: 1, target: T }, 10.01);
  h.nemesis('invoke', 'stop-target-down', { id: 1, target: T }, 20).nemesis('info', 'stop-target-down', { id: 1, target: T }, 20.01);
  for (let t = 1; t < 60; t++) {
    const seen = readAt(t);
    if (seen === null) continue;
    h.op('health-read', t, t + 0.05, 'ok', { consistency: 'linearizable', node: 'B' }, { health: { [T]: seen } });
  }
  for (const node of members) {
    for (const consistency of ['linearizable', 'local']) h.op('health-read', 70, 70.05, 'ok', { consistency, node, final: true }, { health: { [T]: true } });
  }
  return h;
}

describe('checkHealth', () => {
  test('a history that follows the truth is valid', () => {
    const result = checkHealth(base().sorted());
    assert.equal(result.valid, true, JSON.stringify(result.counts) + result.problems.join(';'));
    assert.equal(result.targets[0]?.observedChanges, 2);
  });

  test('an unhealthy read with the target up for long is an unjustified flip (and an unjustified read)', () => {
    const result = checkHealth(base((t) => (t === 50 ? false : !(t >= 12 && t < 27))).sorted());
    assert.equal(result.valid, false);
    assert.equal(result.counts.unjustifiedFlips, 1);
    assert.equal(result.counts.unjustified, 1);
  });

  test('a stale verdict committed at the heal of its prober\'s isolation is a fencing violation', () => {
    const h = base((t) => (t === 44 ? false : !(t >= 12 && t < 27)));
    h.nemesis('invoke', 'start-partition', { id: 7, mode: 'isolate-prober', member: 'A', targets: [T], reopenAfterMs: 2000 }, 30);
    h.nemesis('info', 'start-partition', { id: 7, mode: 'isolate-prober', member: 'A', targets: [T], reopenAfterMs: 2000 }, 30.1);
    h.nemesis('invoke', 'stop-partition', { id: 7 }, 43).nemesis('info', 'stop-partition', { id: 7 }, 43.1);
    const result = checkHealth(h.sorted());
    assert.equal(result.valid, false);
    assert.equal(result.counts.fencingViolations, 1);
    assert.equal(result.isolations, 1);
    assert.equal(result.staleVerdictsLeft, 1);
  });

  test('a flip shortly after a real down interval is justified', () => {
    // Truth goes down at 10; a read at 11 still healthy, unhealthy from 12: fine. Healthy back at 27 (7 s after 20).
    assert.equal(checkHealth(base((t) => !(t >= 11 && t < 28)).sorted()).valid, true);
  });

  test('a final read that disagrees with the truth is invalid', () => {
    const h = base();
    h.op('health-read', 71, 71.05, 'ok', { consistency: 'local', node: 'C', final: true }, { health: { [T]: false } });
    const result = checkHealth(h.sorted());
    assert.equal(result.valid, false);
    assert.equal(result.counts.finalMismatches, 1);
  });

  test('a prober-targets cut that never shows as unhealthy is reported missing; once it shows, it is valid', () => {
    const cut = (h: HistoryBuilder): HistoryBuilder => h
      .nemesis('invoke', 'start-partition', { id: 8, mode: 'prober-targets', member: 'A', targets: [T] }, 30)
      .nemesis('info', 'start-partition', { id: 8, mode: 'prober-targets', member: 'A', targets: [T] }, 30.1)
      .nemesis('invoke', 'stop-partition', { id: 8 }, 45)
      .nemesis('info', 'stop-partition', { id: 8 }, 45.1);
    const missing = checkHealth(cut(base()).sorted());
    assert.equal(missing.valid, false);
    assert.equal(missing.counts.cutsUnreported, 1);
    const reported = checkHealth(cut(base((t) => !(t >= 12 && t < 27) && !(t >= 39 && t < 52))).sorted());
    assert.equal(reported.valid, true, JSON.stringify(reported.counts));
    assert.equal(reported.cutsReported.length, 1);
  });

  test('a healthy read long after the target went down for good is unjustified', () => {
    const h = new HistoryBuilder();
    h.observe('health-setup', { targets: [T], owners: { [T]: 'A' }, members, intervalMs: 2500, boundMs: 20_000, commitMarginMs: 8000 }, 0);
    h.nemesis('invoke', 'start-target-down', { id: 1, target: T }, 5).nemesis('info', 'start-target-down', { id: 1, target: T }, 5.01);
    h.op('health-read', 40, 40.1, 'ok', { consistency: 'linearizable', node: 'B' }, { health: { [T]: true } });
    const result = checkHealth(h.sorted());
    assert.equal(result.valid, false);
    assert.equal(result.counts.unjustified, 1);
  });
});

/**
 * c4: the target (owned by A) is up; it goes down at 29 (just before the fault: "in the middle of probing"), A is
 * paused 30-45 and the target comes back up at 32 (2 s into the pause). Reads every second show `readAt`; by
 * default the new owner shows the down at 30 and the up at 40 (8 s: handover and 3 probes). The target accepts a
 * probe every 2.5 s while up, plus `extraProbes`; by default the woken prober's overdue probe and one more at 45.2
 * and 45.5, so 3 land within 1.75 s during the handover (the most the bound allows).
 */
function c4(readAt: (t: number) => boolean = (t) => !(t >= 30 && t < 40), extraProbes: readonly number[] = [45.2, 45.5]): HistoryBuilder {
  const h = new HistoryBuilder();
  h.observe('health-setup', { targets: [T], owners: { [T]: 'A' }, members, intervalMs: 2500, boundMs: 20_000, commitMarginMs: 8000, stormWindowMs: 1750, stormSteadyMax: 1, stormHandoverMax: 3, handoverTailMs: 11_500 }, 0);
  h.nemesis('invoke', 'start-target-down', { id: 1, target: T }, 29).nemesis('info', 'start-target-down', { id: 1, target: T }, 29.01);
  h.nemesis('invoke', 'start-pause', { id: 9, mode: 'pause-prober', member: 'A', targets: [T] }, 30);
  h.nemesis('info', 'start-pause', { id: 9, mode: 'pause-prober', member: 'A', targets: [T] }, 30.1);
  h.nemesis('invoke', 'stop-target-down', { id: 1, target: T }, 32).nemesis('info', 'stop-target-down', { id: 1, target: T }, 32.01);
  h.nemesis('invoke', 'stop-pause', { id: 9 }, 45).nemesis('info', 'stop-pause', { id: 9 }, 45.1);
  for (let t = 1; t < 80; t++) h.op('health-read', t, t + 0.05, 'ok', { consistency: 'linearizable', node: 'B' }, { health: { [T]: readAt(t) } });
  for (const node of members) {
    for (const consistency of ['linearizable', 'local']) h.op('health-read', 80, 80.05, 'ok', { consistency, node, final: true }, { health: { [T]: true } });
  }
  const accepts = [];
  for (let t = 1; t < 80; t += 2.5) if (!(t >= 29 && t < 32)) accepts.push(t * 1e9);
  accepts.push(...extraProbes.map((t) => t * 1e9));
  h.observe('health-probes', { target: T, accepts, dropped: 0 }, 81);
  return h;
}

describe('checkHealth, C4 (kills and pauses of the prober)', () => {
  test('the bounds follow from the 2.5 s interval: C1 one handover, C4 two; storm window and handover tail', () => {
    assert.equal(healthBounds(2500).boundMs, 23_500);
    assert.deepEqual(healthBounds(2500, 2), { boundMs: 27_750, commitMarginMs: 8000, stormWindowMs: 1750, stormSteadyMax: 1, stormHandoverMax: 3, handoverTailMs: 11_500 });
  });

  test('transitions shown within the bound and at most 3 probes per window in the handover are valid', () => {
    const result = checkHealth(c4().sorted());
    assert.equal(result.valid, true, JSON.stringify(result.counts) + result.problems.join(';') + result.storm.storms.join(';'));
    assert.equal(result.crashes, 1);
    assert.equal(result.resumption.judged, 2);
    assert.equal(result.resumption.maxLatencyMs, 8050);
    assert.equal(result.storm.checked, true);
    assert.equal(result.storm.busiestHandover, 3);
    assert.equal(result.storm.busiestSteady, 1);
  });

  test('a transition first shown after the bound is a late resumption', () => {
    const result = checkHealth(c4((t) => !(t >= 30 && t < 55)).sorted());
    assert.equal(result.valid, false);
    assert.equal(result.counts.lateTransitions, 1);
    assert.match(result.resumption.late[0] ?? '', /up at 32\.0 s.*23\.1 s later/);
  });

  test('a transition never shown while the state held is lost', () => {
    const result = checkHealth(c4((t) => !(t >= 30)).sorted());
    assert.equal(result.valid, false);
    assert.equal(result.counts.lostTransitions, 1);
  });

  test('a second prober in steady state, or 4 probes in one window during a handover, is a probe storm', () => {
    const steady = checkHealth(c4(undefined, [45.2, 45.5, 70]).sorted());
    assert.equal(steady.valid, false);
    assert.equal(steady.counts.storms, 1);
    assert.equal(steady.storm.busiestSteady, 2);
    const handover = checkHealth(c4(undefined, [45.2, 45.4, 45.5]).sorted());
    assert.equal(handover.valid, false);
    assert.equal(handover.counts.storms, 1);
    assert.equal(handover.storm.busiestHandover, 4);
  });

  test('a stale verdict of the paused prober committed when it wakes is a fencing violation', () => {
    // A saw the target refuse at 29 and was paused before its verdict committed; the target has been up since 32.
    const result = checkHealth(c4((t) => !(t >= 30 && t < 40) && t !== 46).sorted());
    assert.equal(result.valid, false);
    assert.equal(result.counts.fencingViolations, 1);
    assert.match(result.fencingViolations[0] ?? '', /paused/);
  });
});
