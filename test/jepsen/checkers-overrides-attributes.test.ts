// Goal: the overrides checker (jepsen-like/checkers-overrides.ts) with two operators per service, case C3b: operator
// E writes only `enabled`, operator W only the weight, and each attribute must show the last action that wrote it
// (docs/ap.md "Operator changes": the override merges attribute by attribute, each by the version of the write that
// set it). Both ways: a history in which E's disable and W's weight, made on the two sides of a partition, both
// stand after the heal is valid, and counted as such a race; a history in which the instance comes back enabled
// with W's later weight (what a whole-override merge serves: the weight's side carried its older `enabled` over the
// disable, a LOST change) is flagged, as is the converse (E's later write carried its side's older weight over W's);
// an unknown outcome of one attribute's action leaves that attribute open and the other judged; unknownApplyMs and
// the decided action are per attribute. C3's whole-override rule is test/jepsen/checkers-overrides.test.ts.
// Method: crafted histories (3 members, one service of two instances, client weights 1 and 2), times in seconds;
// 127.0.0.13 cut from the others from 6 s to 12 s (reads are quiet from 20 s), the final heal at 20 s, final rounds
// from 25 s.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { allowedStates, checkOverrides, overrideBounds, type Action } from '../../jepsen-like/checkers-overrides.ts';
import type { OverridesSetup } from '../../jepsen-like/workloads/overrides.ts';
import { HistoryBuilder } from './build.ts';

const S = 'jepsen-override-0';
const members = ['127.0.0.11:8100', '127.0.0.12:8100', '127.0.0.13:8100'] as const;
const [m1, m2, m3] = members;
const setup: OverridesSetup = {
  members,
  services: [{ name: S, responsible: m1, elements: [0, 1] }],
  clientWeights: { '0': 1, '1': 2 },
  timeouts: { intervalMs: 1000, unhealthyMs: 3000, removeMs: 6000 },
  pollMs: 1000,
  operatorWrites: 'patch',
  operators: 'per-attribute',
};

type Host = [number, number, boolean];

/** enabledAction records operator E's PATCH enabled=X of `element` through `node`. */
function enabledAction(h: HistoryBuilder, from: number, to: number, type: Action['type'], element: number, enabled: boolean, node: string): HistoryBuilder {
  const completion = type === 'ok' ? {} : { error: 'timeout' };
  return h.op('ovr-operator', from, to, type, { service: S, element, enabled, weight: null, changesWeight: false, writes: 'patch', scope: 'enabled', node }, completion);
}

/** weightAction records operator W's PATCH weight=W of `element` through `node`. */
function weightAction(h: HistoryBuilder, from: number, to: number, type: Action['type'], element: number, weight: number, node: string): HistoryBuilder {
  const completion = type === 'ok' ? {} : { error: 'timeout' };
  return h.op('ovr-operator', from, to, type, { service: S, element, enabled: null, weight, changesWeight: true, writes: 'patch', scope: 'weight', node }, completion);
}

/** base: both instances registered; 127.0.0.13 alone from 6 s to 12 s; the final heal at 20 s. */
function base(): HistoryBuilder {
  const h = new HistoryBuilder();
  h.observe('overrides-setup', setup, 0);
  h.op('ovr-register', 0.1, 0.2, 'ok', { service: S, element: 0, weight: 1, event: 'start', node: m1 });
  h.op('ovr-register', 0.1, 0.2, 'ok', { service: S, element: 1, weight: 2, event: 'start', node: m2 });
  h.partitionOne(0, '127.0.0.13', ['127.0.0.11', '127.0.0.12'], 6, 12);
  h.nemesis('invoke', 'heal-all', {}, 20).nemesis('info', 'heal-all', {}, 20.01);
  return h;
}

/** split: in the partition, E disables 0 through the lone 127.0.0.13 (7 s) and W sets its weight 100 through 127.0.0.11 (8 s, later). */
function split(): HistoryBuilder {
  const h = base();
  enabledAction(h, 7.0, 7.1, 'ok', 0, false, m3);
  weightAction(h, 8.0, 8.1, 'ok', 0, 100, m1);
  h.op('ovr-register', 9.0, 9.1, 'ok', { service: S, element: 0, weight: 1, event: 'restart', node: m2 });
  return h;
}

function list(h: HistoryBuilder, at: number, member: string, hosts: readonly Host[], round: number | null = null): HistoryBuilder {
  const final = round === null ? {} : { final: true, round };
  return h.op('ovr-read', at, at + 0.01, 'ok', { service: S, node: member, ...final }, { hosts });
}

function detail(h: HistoryBuilder, at: number, member: string, element: number, weight: number, round: number | null = null): HistoryBuilder {
  const final = round === null ? {} : { final: true, round };
  return h.op('ovr-detail', at, at + 0.01, 'ok', { service: S, element, node: member, ...final }, { found: true, weight, enabled: null });
}

/** quiet: quiet reads at `at` s, every member listing `hosts` and showing 0's detail with `weight0`. */
function quiet(h: HistoryBuilder, at: number, hosts: readonly Host[], weight0: number): HistoryBuilder {
  for (const member of members) {
    list(h, at, member, hosts);
    detail(h, at + 0.1, member, 0, weight0);
  }
  return h;
}

/** reads: quiet reads at 21 s and two final rounds (25 s, 25.5 s) showing the same. */
function reads(h: HistoryBuilder, hosts: readonly Host[], weight0: number): HistoryBuilder {
  return finals(quiet(h, 21, hosts, weight0), hosts, weight0);
}

/** finals: two final rounds (25 s, 25.5 s), every member listing `hosts`, 0's detail with `weight0`, 1's with its client's weight. */
function finals(h: HistoryBuilder, hosts: readonly Host[], weight0: number): HistoryBuilder {
  for (const [round, at] of [[0, 25], [1, 25.5]] as const) {
    for (const member of members) {
      list(h, at, member, hosts, round);
      detail(h, at + 0.02, member, 0, weight0, round);
      detail(h, at + 0.04, member, 1, 2, round);
    }
  }
  return h;
}

function describeResult(result: ReturnType<typeof checkOverrides>): string {
  return [...result.violations, ...result.problems, ...result.final.lastRoundProblems].join('; ');
}

describe('checkOverrides, one operator per attribute (C3b)', () => {
  test('E\'s disable and W\'s weight, made on the two sides of a partition, both stand: valid, counted as a split race', () => {
    const result = checkOverrides(reads(split(), [[1, 2, true]], 100).sorted());
    assert.equal(result.valid, true, describeResult(result));
    assert.equal(result.operators, 'per-attribute');
    assert.deepEqual(result.operator.disable, { ok: 1, fail: 0, info: 0 });
    assert.deepEqual(result.operator.enable, { ok: 0, fail: 0, info: 0 });
    assert.deepEqual(result.operator.weight, { ok: 1, fail: 0, info: 0 });
    assert.equal(result.reads.disabledJudged, 9);
    assert.equal(result.reads.disabledJudgedAfterRegistration, 9);
    assert.equal(result.reads.splitJudged, 18);
    assert.equal(result.reads.splitActions, 1);
    assert.equal(result.reads.splitRaces, 1);
  });

  test('lost change of enabled: listed again with W\'s later weight (a whole-override merge) is flagged, quiet and final', () => {
    const result = checkOverrides(reads(split(), [[0, 100, true], [1, 2, true]], 100).sorted());
    assert.equal(result.valid, false);
    assert.equal(result.violationCounts.listedDisabled, 9);
    assert.equal(result.violationCounts.listedDisabledAfterWeight, 9);
    assert.equal(result.violationCounts.weightReverted, 0);
    assert.equal(result.violationCounts.finalNotConverged, 1);
    assert.match(result.violations[0] ?? '', /listed-disabled: .* element 0 .*weight 100 set by a later action via 127\.0\.0\.11:8100/);
    assert.match(result.final.lastRoundProblems.join('; '), /element 0 on .*listed, but the operator disabled it/);
  });

  test('lost change of the weight: E\'s later write carries the client\'s weight over W\'s (the converse) is flagged', () => {
    const h = base();
    weightAction(h, 7.0, 7.1, 'ok', 0, 100, m1);
    enabledAction(h, 8.0, 8.1, 'ok', 0, false, m3);
    const result = checkOverrides(reads(h, [[1, 2, true]], 1).sorted());
    assert.equal(result.valid, false);
    assert.equal(result.violationCounts.listedDisabled, 0);
    assert.equal(result.violationCounts.weightReverted, 9);
    assert.equal(result.violationCounts.finalNotConverged, 1);
    assert.match(result.violations[0] ?? '', /weight-reverted: .* element 0 detail on .* shows weight 1, not 100/);
  });

  test('an unknown outcome of E\'s last action leaves enabled open, and W\'s weight is still judged', () => {
    // The disable judged at 21 s; E's enable at 22 s never answers; the final rounds may show either.
    const scenario = (hosts: readonly Host[], weight0: number): ReturnType<typeof checkOverrides> => {
      const h = quiet(split(), 21, [[1, 2, true]], 100);
      enabledAction(h, 22.0, 26.5, 'info', 0, true, m2);
      return checkOverrides(finals(h, hosts, weight0).sorted());
    };
    for (const hosts of [[[1, 2, true]], [[0, 100, true], [1, 2, true]]] as Host[][]) {
      const result = scenario(hosts, 100);
      assert.equal(result.valid, true, describeResult(result));
      assert.deepEqual(result.operator.enable, { ok: 0, fail: 0, info: 1 });
    }
    const reverted = scenario([[0, 1, true], [1, 2, true]], 1);
    assert.equal(reverted.valid, false);
    assert.equal(reverted.violationCounts.listedDisabled, 0);
    assert.equal(reverted.violationCounts.weightReverted > 0, true);
  });

  test('an unknown outcome of W\'s last action leaves the weight open, and E\'s disable is still judged', () => {
    const scenario = (hosts: readonly Host[], weight0: number): ReturnType<typeof checkOverrides> => {
      const h = split();
      weightAction(h, 14.0, 18.5, 'info', 0, 101, m2);
      return checkOverrides(reads(h, hosts, weight0).sorted());
    };
    for (const weight0 of [100, 101]) {
      const result = scenario([[1, 2, true]], weight0);
      assert.equal(result.valid, true, describeResult(result));
    }
    assert.equal(scenario([[1, 2, true]], 1).violationCounts.finalNotConverged, 1);
    const listed = scenario([[0, 101, true], [1, 2, true]], 101);
    assert.equal(listed.violationCounts.listedDisabled, 9);
  });
});

describe('allowedStates, per attribute', () => {
  const bounds = overrideBounds();
  const at = (s: number): number => s * 1e9;
  const e = (invoke: number, complete: number, type: Action['type'], enabled: boolean): Action => ({
    service: S, element: 0, enabled, weight: null, changesWeight: false, scope: 'enabled', node: m1, process: 1, type, invoke: at(invoke), complete: at(complete), error: null,
  });
  const w = (invoke: number, complete: number, type: Action['type'], weight: number): Action => ({
    service: S, element: 0, enabled: null, weight, changesWeight: true, scope: 'weight', node: m2, process: 2, type, invoke: at(invoke), complete: at(complete), error: null,
  });

  test('each attribute from its own decided action; the other operator\'s actions never decide it', () => {
    assert.deepEqual(allowedStates([e(1, 1.1, 'ok', false), w(2, 2.1, 'ok', 100)], 1, at(10), at(10.1), bounds), [{ enabled: false, weight: 100 }]);
    // W's later action does not supersede E's disable (a whole-override rule would take {enabled: true, weight: 100} from it).
    assert.deepEqual(allowedStates([e(1, 1.1, 'ok', true), e(3, 3.1, 'ok', false), w(5, 5.1, 'ok', 100)], 1, at(10), at(10.1), bounds), [{ enabled: false, weight: 100 }]);
    // Before any write of an attribute, the client's.
    assert.deepEqual(allowedStates([w(2, 2.1, 'ok', 100)], 1, at(10), at(10.1), bounds), [{ enabled: true, weight: 100 }]);
    assert.deepEqual(allowedStates([e(2, 2.1, 'ok', false)], 1, at(10), at(10.1), bounds), [{ enabled: false, weight: 1 }]);
  });

  test('writes not yet synced or of unknown outcome open their own attribute only; the pairs are a product', () => {
    const actions = [e(1, 1.1, 'ok', false), w(2, 2.1, 'ok', 100), e(9, 9.1, 'ok', true), w(9.5, 14, 'info', 101)];
    assert.deepEqual(allowedStates(actions, 1, at(10), at(10.1), bounds), [
      { enabled: false, weight: 100 }, { enabled: false, weight: 101 }, { enabled: true, weight: 100 }, { enabled: true, weight: 101 },
    ]);
    assert.deepEqual(allowedStates(actions, 1, at(20), at(20.1), bounds), [{ enabled: true, weight: 100 }, { enabled: true, weight: 101 }]);
  });

  test('unknownApplyMs per attribute: an earlier unknown write of enabled may apply after its decided successor, W\'s writes notwithstanding', () => {
    const recent = [e(1, 5, 'info', true), w(3, 3.1, 'ok', 100), e(6, 6.1, 'ok', false)];
    assert.deepEqual(allowedStates(recent, 1, at(10), at(10.1), bounds), [{ enabled: false, weight: 100 }, { enabled: true, weight: 100 }]);
    const old = [e(1, 5, 'info', true), w(3, 3.1, 'ok', 100), e(1 + bounds.unknownApplyMs / 1000 + 1, 30, 'ok', false)];
    assert.deepEqual(allowedStates(old, 1, at(40), at(40.1), bounds), [{ enabled: false, weight: 100 }]);
  });

  test('one operator naming both attributes is the special case: both from the same action (C3\'s states)', () => {
    const whole = (invoke: number, complete: number, type: Action['type'], enabled: boolean, weight: number | null): Action => ({
      service: S, element: 0, enabled, weight, changesWeight: weight !== null, node: m1, process: 1, type, invoke: at(invoke), complete: at(complete), error: null,
    });
    const actions = [whole(1, 1.1, 'ok', false, 40), whole(2, 2.1, 'ok', true, 50), whole(3, 20, 'info', false, 60)];
    assert.deepEqual(allowedStates(actions, 1, at(5.2), at(5.3), bounds), [{ enabled: true, weight: 50 }, { enabled: false, weight: 60 }]);
  });
});
