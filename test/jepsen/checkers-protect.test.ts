// Goal: case C2's checker (jepsen-like/checkers-protect.ts) accepts served lists that follow Cairn's protectThreshold
// semantics (docs/nacos-compatibility.md: with threshold t > 0, protection fires exactly when the stored healthy
// share is below t; a protected answer lists every enabled instance marked healthy; an unprotected one is the stored
// health, or only the healthy instances with healthyOnly) and rejects each way of breaking them: protection not
// firing below the threshold (judged on the stored health of a pinned poll, and on an answer's own flags), firing at
// or above it (the boundary share = t included), an instance missing from or marked unhealthy in a protected answer,
// an unprotected answer that is not the stored health, and an empty answer while a target's listener was up for the
// whole bound (PEERS.md C2's pass criterion). C1's checker (checkers-health.ts) counts a degraded-nic cut as down for
// the cut targets only, and requires them to be reported. Method: crafted histories, 4 targets, times in seconds.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { checkHealth } from '../../jepsen-like/checkers-health.ts';
import { checkProtect, type ServedList } from '../../jepsen-like/checkers-protect.ts';
import { HistoryBuilder } from './build.ts';

const targets = ['127.0.0.15:61000', '127.0.0.15:61001', '127.0.0.15:61002', '127.0.0.15:61003'];
const [T0, T1, T2, T3] = targets as [string, string, string, string];
const members = ['A', 'B', 'C'];

/** stored health with the given targets unhealthy. */
function storedWith(unhealthy: readonly string[]): Record<string, boolean> {
  return Object.fromEntries(targets.map((t) => [t, !unhealthy.includes(t)]));
}

/** served is the correct answer for `stored` under threshold 0.5 (Cairn's rule: share strictly below fires). */
function served(stored: Record<string, boolean>, via: 'grpc' | 'http', healthyOnly: boolean, revision: number | null): ServedList {
  const healthy = targets.filter((t) => stored[t]).length;
  const isProtected = healthy / targets.length < 0.5;
  const hosts: Record<string, boolean> = {};
  for (const t of targets) {
    const shown = isProtected ? true : stored[t] === true;
    if (!healthyOnly || shown) hosts[t] = shown;
  }
  return { via, healthyOnly, protected: isProtected, hosts, revision };
}

/** base: threshold 0.5, bound 20 s; the listeners of T0 and T1 are down from 10 s to 30 s; no cut. */
function base(): HistoryBuilder {
  const h = new HistoryBuilder();
  h.observe('health-setup', { targets, owners: { [T0]: 'A', [T1]: 'A', [T2]: 'A', [T3]: 'B' }, members, intervalMs: 2500, boundMs: 20_000, commitMarginMs: 8000, service: 'jepsen-protect', protectThreshold: 0.5, degraded: 'A' }, 0);
  for (const [id, t] of [[1, T0], [2, T1]] as const) {
    h.nemesis('invoke', 'start-target-down', { id, target: t }, 10).nemesis('info', 'start-target-down', { id, target: t }, 10.01);
    h.nemesis('invoke', 'stop-target-down', { id, target: t }, 30).nemesis('info', 'stop-target-down', { id, target: t }, 30.01);
  }
  return h;
}

/** poll records one C2 poll at `at` seconds: lists as given, stored health, pinned or not. */
function poll(h: HistoryBuilder, at: number, stored: Record<string, boolean>, lists: readonly ServedList[], pinned = true, final = false): HistoryBuilder {
  return h.op('health-read', at, at + 0.05, 'ok', { consistency: 'linearizable', node: 'B', protect: true, ...(final ? { final } : {}) }, { health: stored, lists, revisions: pinned ? [7, 7] : [7, 8], pinned });
}

/** correct: the three lists of a poll as Cairn should serve them. */
function correct(stored: Record<string, boolean>): ServedList[] {
  return [served(stored, 'grpc', false, 7), served(stored, 'http', true, null), served(stored, 'grpc', true, 7)];
}

describe('checkProtect', () => {
  test('answers that follow the semantics are valid: unprotected at 3/4 and 2/4, protected at 1/4 and 0/4, pinned or not', () => {
    const h = base();
    poll(h, 5, storedWith([]), correct(storedWith([])));
    poll(h, 6, storedWith([T3]), correct(storedWith([T3])));
    poll(h, 12, storedWith([T0, T1]), correct(storedWith([T0, T1])));
    poll(h, 14, storedWith([T0, T1, T2]), correct(storedWith([T0, T1, T2])));
    poll(h, 15, storedWith(targets), correct(storedWith(targets)));
    poll(h, 16, storedWith([T0, T1, T2]), correct(storedWith([T0, T1, T2])), false);
    const result = checkProtect(h.sorted());
    assert.ok(result !== null);
    assert.equal(result.valid, true, result.violations.join('\n'));
    assert.equal(result.polls, 6);
    assert.equal(result.pinnedPolls, 5);
    assert.equal(result.protectedAnswers, 9);
    assert.equal(result.pinnedProtected, 6);
    assert.deepEqual(result.storedShares, { 0: 1, 1: 1, 2: 1, 3: 1, 4: 1 });
  });

  test('protection not firing below the threshold is invalid (pinned: the stored share; not pinned: the answer\'s own flags)', () => {
    const stored = storedWith([T0, T1, T2]);
    const unprotected: ServedList = { via: 'grpc', healthyOnly: false, protected: false, hosts: stored, revision: 7 };
    const pinned = checkProtect(poll(base(), 14, stored, [unprotected]).sorted());
    assert.equal(pinned?.valid, false);
    assert.equal(pinned?.counts.missedProtection, 1);
    const unpinned = checkProtect(poll(base(), 14, storedWith([]), [unprotected], false).sorted());
    assert.equal(unpinned?.valid, false);
    assert.equal(unpinned?.counts.missedProtection, 1, 'own flags 1/4 without protection');
    // healthyOnly: one host listed of four, not protected.
    const healthyOnly = checkProtect(poll(base(), 14, storedWith([]), [{ via: 'http', healthyOnly: true, protected: false, hosts: { [T3]: true }, revision: null }], false).sorted());
    assert.equal(healthyOnly?.counts.missedProtection, 1);
  });

  test('protection firing above the threshold, or at it exactly (Cairn fires only strictly below), is invalid', () => {
    const all = Object.fromEntries(targets.map((t) => [t, true]));
    const above = checkProtect(poll(base(), 6, storedWith([T3]), [{ via: 'http', healthyOnly: false, protected: true, hosts: all, revision: null }]).sorted());
    assert.equal(above?.valid, false);
    assert.equal(above?.counts.wrongProtection, 1);
    const at = checkProtect(poll(base(), 12, storedWith([T0, T1]), [{ via: 'grpc', healthyOnly: true, protected: true, hosts: all, revision: 7 }]).sorted());
    assert.equal(at?.valid, false);
    assert.equal(at?.counts.wrongProtection, 1);
    // Not pinned: the stored share of the answer's moment is unknown, so the firing itself is not judged.
    const unpinned = checkProtect(poll(base(), 6, storedWith([T3]), [{ via: 'http', healthyOnly: false, protected: true, hosts: all, revision: null }], false).sorted());
    assert.equal(unpinned?.valid, true);
  });

  test('a protected answer missing an instance, or marking one unhealthy, is invalid', () => {
    const stored = storedWith([T0, T1, T2]);
    const missing = checkProtect(poll(base(), 14, stored, [{ via: 'grpc', healthyOnly: false, protected: true, hosts: { [T0]: true, [T1]: true, [T3]: true }, revision: 7 }]).sorted());
    assert.equal(missing?.valid, false);
    assert.equal(missing?.counts.incompleteProtected, 1);
    assert.match(missing?.violations[0] ?? '', /misses 127\.0\.0\.15:61002/);
    const unmarked = checkProtect(poll(base(), 14, stored, [{ via: 'http', healthyOnly: false, protected: true, hosts: { [T0]: false, [T1]: true, [T2]: true, [T3]: true }, revision: null }]).sorted());
    assert.equal(unmarked?.counts.incompleteProtected, 1);
  });

  test('an unprotected answer that is not the stored health of its revision is invalid', () => {
    const stored = storedWith([T3]);
    const wrongFlag = checkProtect(poll(base(), 6, stored, [{ via: 'grpc', healthyOnly: false, protected: false, hosts: { ...stored, [T3]: true, [T2]: false }, revision: 7 }]).sorted());
    assert.equal(wrongFlag?.valid, false);
    assert.equal(wrongFlag?.counts.wrongList, 1);
    const missingHealthy = checkProtect(poll(base(), 6, stored, [{ via: 'http', healthyOnly: true, protected: false, hosts: { [T0]: true, [T1]: true, [T3]: true }, revision: null }]).sorted());
    assert.equal(missingHealthy?.counts.wrongList, 1);
    const dropped = checkProtect(poll(base(), 6, stored, [{ via: 'grpc', healthyOnly: false, protected: false, hosts: { [T0]: true, [T1]: true, [T2]: true }, revision: 7 }], false).sorted());
    assert.equal(dropped?.counts.wrongList, 1, 'a healthyOnly=false answer must list every instance, pinned or not');
  });

  test('an empty answer while a target was truly healthy for the whole bound is invalid; with every listener down within the bound it is excused', () => {
    const empty: ServedList = { via: 'http', healthyOnly: true, protected: false, hosts: {}, revision: null };
    const healthy = checkProtect(poll(base(), 14, storedWith(targets), [empty]).sorted());
    assert.equal(healthy?.valid, false);
    assert.equal(healthy?.counts.emptyWhileHealthy, 1);
    assert.equal(healthy?.counts.missedProtection, 1, 'empty and unprotected with 0/4 stored healthy: protection missed as well');
    assert.match(healthy?.violations.find((v) => v.includes('empty answer')) ?? '', /127\.0\.0\.15:61002/);
    // Every listener down at some point of the bound: the emptiness itself is excused (protection is still missed).
    const h = base();
    for (const [id, t] of [[3, T2], [4, T3]] as const) {
      h.nemesis('invoke', 'start-target-down', { id, target: t }, 11).nemesis('info', 'start-target-down', { id, target: t }, 11.01);
    }
    const excused = checkProtect(poll(h, 14, storedWith(targets), [empty]).sorted());
    assert.equal(excused?.counts.emptyWhileHealthy, 0);
    assert.equal(excused?.counts.missedProtection, 1);
  });

  test('a history without a protectThreshold is not C2\'s: no verdict', () => {
    const h = new HistoryBuilder();
    h.observe('health-setup', { targets, owners: {}, members, intervalMs: 2500, boundMs: 20_000, commitMarginMs: 8000 }, 0);
    assert.equal(checkProtect(h.sorted()), null);
  });
});

describe('checkHealth with degraded-nic faults (C2)', () => {
  /** cut: A loses T0, T1, T2 from 40 s to 55 s and keeps T3; stored reads every second, final reads at 80 s. */
  function cut(read: (t: number, target: string) => boolean): HistoryBuilder {
    const h = base();
    const value = { id: 9, mode: 'degraded-nic', member: 'A', targets: [T0, T1, T2], kept: T3 };
    h.nemesis('invoke', 'start-partition', value, 40).nemesis('info', 'start-partition', value, 40.1);
    h.nemesis('invoke', 'stop-partition', { id: 9 }, 55).nemesis('info', 'stop-partition', { id: 9 }, 55.1);
    for (let t = 1; t < 75; t++) h.op('health-read', t, t + 0.05, 'ok', { consistency: 'linearizable', node: 'B', protect: true }, { health: Object.fromEntries(targets.map((target) => [target, read(t, target)])) });
    for (const node of members) {
      for (const consistency of ['linearizable', 'local']) h.op('health-read', 80, 80.05, 'ok', { consistency, node, final: true }, { health: Object.fromEntries(targets.map((target) => [target, true])) });
    }
    return h;
  }
  const downs = (t: number, target: string): boolean => !((target === T0 || target === T1) && t >= 12 && t < 33);
  const lost = (t: number, target: string): boolean => downs(t, target) && !(target !== T3 && t >= 48 && t < 62);

  test('the cut targets read unhealthy during the cut is justified and reported', () => {
    const result = checkHealth(cut(lost).sorted());
    assert.equal(result.valid, true, JSON.stringify(result.counts) + result.problems.join(';') + result.unjustified.join(';'));
    assert.equal(result.cutsReported.length, 3);
  });

  test('the kept target read unhealthy during the cut is unjustified; cut targets never read unhealthy are not reported', () => {
    const kept = checkHealth(cut((t, target) => lost(t, target) && !(target === T3 && t >= 48 && t < 62)).sorted());
    assert.equal(kept.valid, false);
    assert.ok(kept.counts.unjustified > 0);
    const unreported = checkHealth(cut(downs).sorted());
    assert.equal(unreported.valid, false);
    assert.equal(unreported.counts.cutsUnreported, 3);
  });
});
