// Goal: the overrides checker (jepsen-like/checkers-overrides.ts, case C3 "the operator override persists") accepts
// a history in which every member shows the operator's state, whatever the client did since, and flags each kind of
// violation: a quiet read listing an instance the last acknowledged action disabled (after a client re-registration
// too: the core C3 property), a weight other than the operator's in a list or a detail, a detail's `enabled` other
// than the operator's, final rounds that never agree, and final rounds that stop agreeing; reads it must not judge
// (during a partition, before the heal settled, before the action synced, an unknown outcome either way) are not
// flagged. Method: crafted histories (3 members, one service of two instances), times in seconds; a partition from
// 6 s to 12 s, the final heal at 20 s, final rounds from 25 s.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { allowedStates, checkOverrides, overrideBounds, overrideRoundProblems, type Action } from '../../jepsen-like/checkers-overrides.ts';
import type { OverridesSetup } from '../../jepsen-like/workloads/overrides.ts';
import { HistoryBuilder } from './build.ts';

const S = 'jepsen-override-0';
const members = ['127.0.0.11:8100', '127.0.0.12:8100', '127.0.0.13:8100'];
const setup: OverridesSetup = {
  members,
  services: [{ name: S, responsible: members[0] ?? '', elements: [0, 1] }],
  clientWeights: { '0': 1, '1': 2 },
  timeouts: { intervalMs: 1000, unhealthyMs: 3000, removeMs: 6000 },
  pollMs: 1000,
  operatorWrites: 'patch',
};

type Host = [number, number, boolean];

/**
 * base: both instances registered; the operator disables 0 (ack 1.1 s) and enables 1 with weight 50 (ack 2.1 s);
 * 0's client restarts at 3 s (a registration with enabled=true: it must stay disabled); a partition 6-12 s.
 */
function base(): HistoryBuilder {
  const h = new HistoryBuilder();
  h.observe('overrides-setup', setup, 0);
  h.op('ovr-register', 0.1, 0.2, 'ok', { service: S, element: 0, weight: 1, event: 'start', node: members[0] });
  h.op('ovr-register', 0.1, 0.2, 'ok', { service: S, element: 1, weight: 2, event: 'start', node: members[1] });
  h.op('ovr-operator', 1.0, 1.1, 'ok', { service: S, element: 0, enabled: false, weight: null, changesWeight: false, writes: 'patch', node: members[2] });
  h.op('ovr-operator', 2.0, 2.1, 'ok', { service: S, element: 1, enabled: true, weight: 50, changesWeight: true, writes: 'patch', node: members[0] });
  h.op('ovr-register', 3.0, 3.1, 'ok', { service: S, element: 0, weight: 1, event: 'restart', node: members[1] });
  h.partitionOne(0, '127.0.0.13', ['127.0.0.11', '127.0.0.12'], 6, 12);
  h.nemesis('invoke', 'heal-all', {}, 20).nemesis('info', 'heal-all', {}, 20.01);
  return h;
}

function list(h: HistoryBuilder, at: number, member: string, hosts: readonly Host[], round: number | null = null): HistoryBuilder {
  const final = round === null ? {} : { final: true, round };
  return h.op('ovr-read', at, at + 0.01, 'ok', { service: S, node: member, ...final }, { hosts });
}

function detail(h: HistoryBuilder, at: number, member: string, element: number, shown: { found: boolean; weight?: number; enabled?: boolean | null }, round: number | null = null): HistoryBuilder {
  const final = round === null ? {} : { final: true, round };
  return h.op('ovr-detail', at, at + 0.01, 'ok', { service: S, element, node: member, ...final }, { found: shown.found, weight: shown.weight, enabled: shown.enabled ?? null });
}

/** finalRound: every member lists `hosts` and shows the details of 0 (disabled, weight 1) and 1 (weight 50). */
function finalRound(h: HistoryBuilder, round: number, at: number, hostsOf: (member: string) => readonly Host[] = () => [[1, 50, true]]): HistoryBuilder {
  for (const member of members) {
    list(h, at, member, hostsOf(member), round);
    detail(h, at + 0.02, member, 0, { found: true, weight: 1 }, round);
    detail(h, at + 0.04, member, 1, { found: true, weight: 50 }, round);
  }
  return h;
}

/** clean: quiet reads at 5 s that show the operator's state, and two agreeing final rounds. */
function clean(): HistoryBuilder {
  const h = base();
  for (const member of members) {
    list(h, 5, member, [[1, 50, true]]);
    detail(h, 5.1, member, 0, { found: true, weight: 1, enabled: false });
  }
  finalRound(h, 0, 25);
  finalRound(h, 1, 25.5);
  return h;
}

function action(invoke: number, complete: number, type: Action['type'], enabled: boolean, weight: number | null): Action {
  return { service: S, element: 0, enabled, weight, changesWeight: weight !== null, node: members[0] ?? '', process: 1, type, invoke: invoke * 1e9, complete: complete * 1e9, error: null };
}

describe('checkOverrides', () => {
  test('a history that shows the operator\'s state after a client restart is valid; counts are reported', () => {
    const result = checkOverrides(clean().sorted());
    assert.equal(result.valid, true, [...result.violations, ...result.problems].join('; '));
    assert.deepEqual(result.operator.disable, { ok: 1, fail: 0, info: 0 });
    assert.deepEqual(result.operator.weight, { ok: 1, fail: 0, info: 0 });
    assert.deepEqual(result.clients.registrations['restart'], { ok: 1, fail: 0, info: 0 });
    assert.equal(result.reads.disabledJudgedAfterRegistration > 0, true);
    assert.equal(result.final.convergedAfterMs !== null && result.final.convergedAfterMs < 6000, true);
  });

  test('listed-disabled: a quiet read lists an instance the operator disabled, after its client registered it again', () => {
    const h = clean();
    list(h, 5.5, members[1] ?? '', [[0, 1, true], [1, 50, true]]);
    const result = checkOverrides(h.sorted());
    assert.equal(result.valid, false);
    assert.equal(result.violationCounts.listedDisabled, 1);
    assert.equal(result.violationCounts.listedDisabledAfterRegistration, 1);
    assert.match(result.violations[0] ?? '', /listed-disabled: .* element 0 .*registered it again \(restart\)/);
  });

  test('listed-disabled after a beat pause: expiry and the beat that registers it again must not re-enable it', () => {
    const h = base();
    h.observe('ovr-beat-pause', { service: S, element: 1, ms: 7000 }, 14);
    h.op('ovr-operator', 14.5, 14.6, 'ok', { service: S, element: 1, enabled: false, weight: 50, changesWeight: false, writes: 'patch', node: members[0] });
    list(h, 21.6, members[1] ?? '', [[1, 50, true]]);
    const result = checkOverrides(h.sorted());
    assert.equal(result.violationCounts.listedDisabled, 1);
    assert.equal(result.violationCounts.listedDisabledAfterBeatPause, 1);
    assert.match(result.violations.join('; '), /element 1 .*paused beats 14\.00 s-21\.00 s/);
  });

  test('weight-reverted: a quiet list or detail shows the client\'s weight instead of the operator\'s', () => {
    for (const add of [
      (h: HistoryBuilder) => list(h, 5.5, members[2] ?? '', [[1, 2, true]]),
      (h: HistoryBuilder) => detail(h, 5.5, members[2] ?? '', 1, { found: true, weight: 2 }),
    ]) {
      const h = clean();
      add(h);
      const result = checkOverrides(h.sorted());
      assert.equal(result.valid, false);
      assert.equal(result.violationCounts.weightReverted, 1);
    }
  });

  test('detail-enabled: a quiet detail shows enabled=true for a disabled instance (judged only when the answer has the field)', () => {
    const h = clean();
    detail(h, 5.5, members[0] ?? '', 0, { found: true, weight: 1, enabled: true });
    const result = checkOverrides(h.sorted());
    assert.equal(result.valid, false);
    assert.equal(result.violationCounts.detailEnabled, 1);
  });

  test('final-not-converged: the final rounds keep listing the disabled instance', () => {
    const h = base();
    finalRound(h, 0, 25, () => [[0, 1, true], [1, 50, true]]);
    finalRound(h, 1, 25.5, () => [[0, 1, true], [1, 50, true]]);
    const result = checkOverrides(h.sorted());
    assert.equal(result.valid, false);
    assert.equal(result.violationCounts.finalNotConverged, 1);
    assert.match(result.final.lastRoundProblems.join('; '), /element 0 on .*listed, but the operator disabled it/);
  });

  test('final-not-converged: members that disagree, or agree only after the bound', () => {
    const disagree = base();
    finalRound(disagree, 0, 25, (member) => (member === members[0] ? [[1, 50, true]] : [[1, 50, true], [0, 1, true]]));
    assert.equal(checkOverrides(disagree.sorted()).violationCounts.finalNotConverged, 1);
    const late = base();
    finalRound(late, 0, 25, () => [[1, 2, true]]);
    finalRound(late, 1, 36.5);
    const result = checkOverrides(late.sorted());
    assert.equal(result.violationCounts.finalNotConverged, 1);
    assert.match(result.problems.join('; '), /agreed only \d+ ms after/);
  });

  test('final-flapped: a round after the first agreeing one lists the disabled instance again', () => {
    const h = base();
    finalRound(h, 0, 25);
    finalRound(h, 1, 25.5, (member) => (member === members[2] ? [[0, 1, true], [1, 50, true]] : [[1, 50, true]]));
    const result = checkOverrides(h.sorted());
    assert.equal(result.valid, false);
    assert.equal(result.violationCounts.finalFlapped, 1);
  });

  test('disabled on one side of a partition, registered again on the other: after the heal it must stay disabled', () => {
    const scenario = (hosts: readonly Host[]): ReturnType<typeof checkOverrides> => {
      const h = base();
      h.op('ovr-operator', 6.5, 6.6, 'ok', { service: S, element: 1, enabled: false, weight: 50, changesWeight: false, writes: 'patch', node: members[2] });
      h.op('ovr-register', 8.0, 8.1, 'ok', { service: S, element: 1, weight: 2, event: 'redeploy', node: members[0] });
      list(h, 21, members[0] ?? '', hosts);
      return checkOverrides(h.sorted());
    };
    const good = scenario([]);
    assert.equal(good.reads.disabledJudgedRegisteredOtherSide, 1);
    assert.equal(good.violationCounts.listedDisabled, 0);
    const bad = scenario([[1, 50, true]]);
    assert.equal(bad.violationCounts.listedDisabled, 1);
    assert.match(bad.violations[0] ?? '', /registered again on the other side \(via 127\.0\.0\.11:8100\)/);
  });

  test('reads it must not judge: in a partition, before the heal settled, before the action synced', () => {
    const h = clean();
    list(h, 8, members[2] ?? '', [[0, 1, true], [1, 2, true]]);
    list(h, 13, members[2] ?? '', [[0, 1, true], [1, 2, true]]);
    list(h, 1.5, members[1] ?? '', [[0, 1, true]]);
    const result = checkOverrides(h.sorted());
    assert.equal(result.valid, true, [...result.violations, ...result.problems].join('; '));
  });

  test('an action of unknown outcome last: either state is accepted, listed or not', () => {
    for (const hosts of [[[1, 50, true]], [[0, 1, true], [1, 50, true]]] as Host[][]) {
      const h = base();
      list(h, 4.2, members[0] ?? '', [[1, 50, true]]);
      h.op('ovr-operator', 4.5, 8.5, 'info', { service: S, element: 0, enabled: true, weight: null, changesWeight: false, writes: 'patch', node: members[2] }, { error: 'timeout' });
      list(h, 15, members[0] ?? '', hosts);
      finalRound(h, 0, 25, () => hosts);
      finalRound(h, 1, 25.5, () => hosts);
      const result = checkOverrides(h.sorted());
      assert.equal(result.valid, true, [...result.violations, ...result.problems].join('; '));
    }
  });

  test('nothing tested: no acknowledged disable is a problem', () => {
    const h = new HistoryBuilder();
    h.observe('overrides-setup', setup, 0);
    h.op('ovr-register', 0.1, 0.2, 'ok', { service: S, element: 0, weight: 1, event: 'start', node: members[0] });
    h.op('ovr-operator', 1.0, 1.1, 'fail', { service: S, element: 0, enabled: false, weight: null, changesWeight: false, writes: 'patch', node: members[2] }, { error: 'ECONNREFUSED' });
    const result = checkOverrides(h.sorted());
    assert.equal(result.valid, false);
    assert.match(result.problems.join('; '), /nothing was tested/);
  });

  test('overrideRoundProblems names what keeps a round from agreeing (the runner\'s stop condition)', () => {
    const h = base();
    finalRound(h, 0, 25, () => [[0, 1, true], [1, 50, true]]);
    finalRound(h, 1, 25.5);
    const events = h.sorted();
    assert.equal(overrideRoundProblems(events, 0).length > 0, true);
    assert.deepEqual(overrideRoundProblems(events, 1), []);
    assert.deepEqual(overrideRoundProblems(events, 2), ['no reads of final round 2']);
  });
});

describe('allowedStates', () => {
  const bounds = overrideBounds();
  const at = (s: number): number => s * 1e9;

  test('the decided action is the last acknowledged one at least syncMs old; later ones may show too', () => {
    const actions = [action(1, 1.1, 'ok', false, null), action(2, 2.1, 'ok', true, 40)];
    assert.deepEqual(allowedStates(actions, 1, at(0.5), at(0.6), bounds), [{ enabled: true, weight: 1 }]);
    assert.deepEqual(allowedStates(actions, 1, at(4.2), at(4.3), bounds), [{ enabled: false, weight: 1 }, { enabled: true, weight: 40 }]);
    assert.deepEqual(allowedStates(actions, 1, at(5.2), at(5.3), bounds), [{ enabled: true, weight: 40 }]);
  });

  test('an unknown outcome before the decided action may still apply after it, within unknownApplyMs', () => {
    const actions = [action(1, 5, 'info', true, null), action(6, 6.1, 'ok', false, null)];
    assert.deepEqual(allowedStates(actions, 1, at(10), at(10.1), bounds), [{ enabled: false, weight: 1 }, { enabled: true, weight: 1 }]);
    const old = [action(1, 5, 'info', true, null), action(1 + bounds.unknownApplyMs / 1000 + 1, 30, 'ok', false, null)];
    assert.deepEqual(allowedStates(old, 1, at(40), at(40.1), bounds), [{ enabled: false, weight: 1 }]);
  });

  test('the bounds are derived as documented', () => {
    assert.deepEqual(bounds, { syncMs: 3000, healSettleMs: 8000, unknownApplyMs: 17_000, finalBoundMs: 15_000 });
  });
});
