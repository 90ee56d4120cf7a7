// Goal: the ephemeral checker (jepsen-like/checkers-ephemeral.ts) accepts final read rounds that converge within T
// and stay converged, and rejects a lost acknowledged registration, a resurrected deregistration, members that
// never agree, a resurrection after convergence, and a side of a partition that accepted no write. Method: crafted
// histories, times in seconds; the final heal at 20 s.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { checkEphemeral } from '../../jepsen-like/checkers-ephemeral.ts';
import { HistoryBuilder } from './build.ts';

const S = 'jepsen-eph-0';
const members = ['127.0.0.11:8100', '127.0.0.12:8100', '127.0.0.13:8100'];

/** base: 1 and 2 acknowledged, 3 failed, 4 unknown, 2 deregistered; a partition isolates .13 from 5 to 15 s. */
function base(): HistoryBuilder {
  const h = new HistoryBuilder();
  h.nemesis('info', 'start-partition', { id: 0, mode: 'one', grudge: { '127.0.0.11': ['127.0.0.13'], '127.0.0.12': ['127.0.0.13'], '127.0.0.13': ['127.0.0.11', '127.0.0.12'] } }, 5);
  h.op('eph-add', 6, 6.1, 'ok', { service: S, element: 1, node: members[2] });
  h.op('eph-add', 7, 7.1, 'ok', { service: S, element: 2, node: members[0] });
  h.op('eph-add', 8, 8.1, 'fail', { service: S, element: 3, node: members[1] });
  h.op('eph-add', 9, 9.1, 'info', { service: S, element: 4, node: members[1] });
  h.op('eph-remove', 10, 10.1, 'ok', { service: S, element: 2, node: members[2] });
  h.nemesis('invoke', 'stop-partition', { id: 0 }, 15);
  h.nemesis('invoke', 'heal-all', {}, 20).nemesis('info', 'heal-all', {}, 20.1);
  return h;
}

function round(h: HistoryBuilder, index: number, at: number, sets: readonly (readonly number[])[]): HistoryBuilder {
  for (const [i, member] of members.entries()) h.op('eph-read', at, at + 0.05, 'ok', { service: S, final: true, round: index, node: member }, { elements: sets[i] ?? [] });
  return h;
}

describe('checkEphemeral', () => {
  test('rounds that converge within T and stay converged are valid; availability is reported per side', () => {
    const h = base();
    round(h, 0, 25, [[1], [1, 4], [1]]);
    round(h, 1, 26, [[1, 4], [1, 4], [1, 4]]);
    round(h, 2, 32, [[1, 4], [1, 4], [1, 4]]);
    const result = checkEphemeral(h.sorted(), members);
    assert.equal(result.valid, true, result.problems.join('; '));
    assert.equal(result.convergedAfterMs !== null && result.convergedAfterMs < 7000, true);
    const minority = result.availability.find((a) => a.side === 'minority');
    assert.deepEqual([minority?.attempts, minority?.ok], [2, 2]);
  });

  test('a lost acknowledged registration or a resurrected deregistration never converges', () => {
    for (const set of [[4], [1, 2]]) {
      const h = base();
      round(h, 0, 25, [set, set, set]);
      const result = checkEphemeral(h.sorted(), members);
      assert.equal(result.valid, false, `set ${set.join(',')}`);
      assert.equal(result.convergedAfterMs, null);
    }
  });

  test('a failed registration that shows up is invalid', () => {
    const h = base();
    round(h, 0, 25, [[1, 3], [1, 3], [1, 3]]);
    assert.equal(checkEphemeral(h.sorted(), members).valid, false);
  });

  test('members that disagree do not converge; convergence after T is invalid', () => {
    const h = base();
    round(h, 0, 25, [[1], [1, 4], [1]]);
    assert.equal(checkEphemeral(h.sorted(), members).valid, false);
    const late = base();
    round(late, 0, 40, [[1], [1], [1]]);
    const result = checkEphemeral(late.sorted(), members);
    assert.equal(result.valid, false);
    assert.match(result.problems.join(';'), /converged only/);
  });

  test('a resurrection after convergence is invalid', () => {
    const h = base();
    round(h, 0, 25, [[1], [1], [1]]);
    round(h, 1, 26, [[1, 2], [1, 2], [1, 2]]);
    const result = checkEphemeral(h.sorted(), members);
    assert.equal(result.valid, false);
    assert.equal(result.flappedAfterConvergence.length > 0, true);
  });

  test('a side that accepted none of its writes during a partition is invalid', () => {
    const h = new HistoryBuilder();
    h.nemesis('info', 'start-partition', { id: 0, mode: 'one', grudge: { '127.0.0.11': ['127.0.0.13'], '127.0.0.12': ['127.0.0.13'], '127.0.0.13': ['127.0.0.11', '127.0.0.12'] } }, 5);
    h.op('eph-add', 6, 6.1, 'ok', { service: S, element: 1, node: members[0] });
    for (let i = 0; i < 10; i++) h.op('eph-add', 11 + i * 0.2, 11.1 + i * 0.2, 'fail', { service: S, element: 100 + i, node: members[2] });
    h.nemesis('invoke', 'stop-partition', { id: 0 }, 15);
    h.nemesis('invoke', 'heal-all', {}, 20).nemesis('info', 'heal-all', {}, 20.1);
    const result = checkEphemeral(round(h, 0, 25, [[1], [1], [1]]).sorted(), members);
    assert.equal(result.valid, false);
    assert.match(result.problems.join(';'), /minority side acknowledged none/);
  });
});
