// Goal: the register checker (jepsen-like/checkers.ts checkRegister) reads the register workload's histories as
// Cairn's versioned instance register: writes bump the version, a cas applies only at the expected version (0 =
// absent) and a refused cas is a definite observation, a delete resets the version, HTTP reads carry no version,
// info operations may or may not have happened. Method: crafted histories (times in seconds) with valid and invalid
// variants, so every rule is shown to be able to fail.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { checkRegister } from '../../jepsen-like/checkers.ts';
import { HistoryBuilder } from './build.ts';

const K = '127.0.0.11:20000';
const budget = { maxSteps: 100_000, timeoutMs: 5000 };

/** base: write a (v1), cas 1 -> b (v2), a refused cas at 1 (actual 2). */
function base(): HistoryBuilder {
  return new HistoryBuilder()
    .op('write', 1, 1.1, 'ok', { key: K, value: 'a' }, { version: 1 })
    .op('cas', 2, 2.1, 'ok', { key: K, expected: 1, value: 'b' }, { ok: true, version: 2 })
    .op('cas', 3, 3.1, 'ok', { key: K, expected: 1, value: 'c' }, { ok: false, actual: 2 });
}

describe('checkRegister', () => {
  test('writes, an applied and a refused cas, versioned and unversioned reads, delete and re-create: valid', () => {
    const h = base()
      .op('read', 4, 4.1, 'ok', { key: K }, { value: 'b', version: 2 })
      .op('read', 4.2, 4.3, 'ok', { key: K }, { value: 'b' })
      .op('delete', 5, 5.1, 'ok', { key: K })
      .op('read', 6, 6.1, 'ok', { key: K }, { value: null })
      .op('cas', 7, 7.1, 'ok', { key: K, expected: 0, value: 'd' }, { ok: true, version: 1 })
      .op('read', 8, 8.1, 'ok', { key: K }, { value: 'd', version: 1 });
    const result = checkRegister(h.sorted(), budget);
    assert.equal(result.result, 'ok', result.explanation);
    assert.equal(result.operations, 9);
  });

  test('a stale read after the cas is illegal', () => {
    const h = base().op('read', 4, 4.1, 'ok', { key: K }, { value: 'a' });
    const result = checkRegister(h.sorted(), budget);
    assert.equal(result.result, 'illegal');
    assert.ok(result.anomalies.length > 0, 'the stuck operation is pointed at');
  });

  test('a cas applied at a version the key was not at is illegal, and so is a refusal at the version it was at', () => {
    const applied = new HistoryBuilder()
      .op('write', 1, 1.1, 'ok', { key: K, value: 'a' }, { version: 1 })
      .op('cas', 2, 2.1, 'ok', { key: K, expected: 5, value: 'b' }, { ok: true, version: 6 });
    assert.equal(checkRegister(applied.sorted(), budget).result, 'illegal');
    const refused = new HistoryBuilder()
      .op('write', 1, 1.1, 'ok', { key: K, value: 'a' }, { version: 1 })
      .op('cas', 2, 2.1, 'ok', { key: K, expected: 1, value: 'b' }, { ok: false, actual: 1 });
    assert.equal(checkRegister(refused.sorted(), budget).result, 'illegal');
  });

  test('a version that does not follow the writes is illegal: a lost write shows as a version gap', () => {
    const h = new HistoryBuilder()
      .op('write', 1, 1.1, 'ok', { key: K, value: 'a' }, { version: 1 })
      .op('write', 2, 2.1, 'ok', { key: K, value: 'b' }, { version: 3 });
    assert.equal(checkRegister(h.sorted(), budget).result, 'illegal');
  });

  test('a delete that is forgotten (the value comes back) is illegal; an info delete may have happened or not', () => {
    const resurrected = base().op('delete', 4, 4.1, 'ok', { key: K }).op('read', 5, 5.1, 'ok', { key: K }, { value: 'b', version: 2 });
    assert.equal(checkRegister(resurrected.sorted(), budget).result, 'illegal');
    const unknown = base().op('delete', 4, 4.1, 'info', { key: K }, { error: 'timeout' });
    const either = [
      unknown.op('read', 5, 5.1, 'ok', { key: K }, { value: 'b', version: 2 }),
      base().op('delete', 4, 4.1, 'info', { key: K }, { error: 'timeout' }).op('read', 5, 5.1, 'ok', { key: K }, { value: null }),
    ];
    for (const h of either) assert.equal(checkRegister(h.sorted(), budget).result, 'ok');
  });

  test('failed operations are left out; malformed events are refused with the event named', () => {
    const h = base().op('write', 4, 4.1, 'fail', { key: K, value: 'z' }, { error: 'CAIRN_NO_LEADER' }).op('read', 5, 5.1, 'ok', { key: K }, { value: 'b', version: 2 });
    assert.equal(checkRegister(h.sorted(), budget).result, 'ok');
    const bad = new HistoryBuilder().op('cas', 1, 1.1, 'ok', { key: K, expected: 'one', value: 'b' }, { ok: true });
    assert.throws(() => checkRegister(bad.sorted(), budget), /expected is not a version/);
  });
});
