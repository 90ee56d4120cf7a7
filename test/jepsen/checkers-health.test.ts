// Goal: the health checker (jepsen-like/checkers-health.ts) accepts a history whose reads follow the scripted truth
// and rejects each kind of violation it promises to catch: an unjustified flip, a flip committed around an
// isolation of the target's prober (fencing), a final read that disagrees with the truth, a prober-targets cut
// never reported, and an observation far from the truth. Method: crafted histories, one target, times in seconds.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { checkHealth } from '../../jepsen-like/checkers-health.ts';
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
