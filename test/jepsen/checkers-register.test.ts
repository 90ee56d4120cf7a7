// Goal: the register checker (jepsen-like/checkers.ts checkRegister) reads the register workload's histories as
// Cairn's versioned instance register: writes bump the version, a cas applies only at the expected version (0 =
// absent) and a refused cas is a definite observation, a delete resets the version, HTTP reads carry no version,
// info operations may or may not have happened. A14: a write retried with its request id is one operation from its
// first attempt to its answer; answered from the request id it is linearizable, applied twice (the planted bug of
// --unsafe-no-request-dedup) it is not, in each of the three shapes the bug takes. Method: crafted histories (times
// in seconds) with valid and invalid variants, so every rule is shown to be able to fail.

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

describe('checkRegister: retried writes (A14)', () => {
  // The write of 'a' is one operation from its first attempt (1) to the retry's answer (3); its first attempt applied at
  // about 1.05 (a read saw it), then a delete was acknowledged and a read saw the key absent; the retry went out at 2.5.
  const retried = { attempts: 2, tries: [{ node: '127.0.0.12:8100', type: 'info', error: 'timeout' }] };
  function deleted(): HistoryBuilder {
    return new HistoryBuilder()
      .op('read', 1.2, 1.3, 'ok', { key: K }, { value: 'a', version: 1 })
      .op('delete', 1.5, 1.6, 'ok', { key: K })
      .op('read', 1.8, 1.9, 'ok', { key: K }, { value: null });
  }

  test('answered from its request id (the first result) the retried write is valid; applied again it resurrects the deleted value', () => {
    const deduplicated = deleted()
      .op('write', 1, 3, 'ok', { key: K, value: 'a' }, { version: 1, ...retried })
      .op('read', 3.5, 3.6, 'ok', { key: K }, { value: null });
    const result = checkRegister(deduplicated.sorted(), budget);
    assert.equal(result.result, 'ok', result.explanation);
    assert.equal(result.operations, 5, 'the retried write is one operation');
    // Applied again at 2.5 the registration starts over at version 1: the same answer, but the value is back.
    const twice = deleted()
      .op('write', 1, 3, 'ok', { key: K, value: 'a' }, { version: 1, ...retried })
      .op('read', 3.5, 3.6, 'ok', { key: K }, { value: 'a', version: 1 });
    assert.equal(checkRegister(twice.sorted(), budget).result, 'illegal');
  });

  test('a compare-and-set applied twice is refused the second time: a value no applied operation wrote is illegal', () => {
    const first = new HistoryBuilder().op('cas', 1, 3, 'ok', { key: K, expected: 0, value: 'a' }, { ok: true, version: 1, ...retried });
    assert.equal(checkRegister(first.op('read', 4, 4.1, 'ok', { key: K }, { value: 'a', version: 1 }).sorted(), budget).result, 'ok');
    const refusedRetry = new HistoryBuilder()
      .op('cas', 1, 3, 'ok', { key: K, expected: 0, value: 'a' }, { ok: false, actual: 1, ...retried })
      .op('read', 4, 4.1, 'ok', { key: K }, { value: 'a', version: 1 });
    assert.equal(checkRegister(refusedRetry.sorted(), budget).result, 'illegal');
  });

  test('a write applied again after another write takes the key back to its value, at a version no single application gives', () => {
    // Cairn keeps the version of an identical re-registration, so a retry applied right after its first application
    // changes nothing; it shows only when another write came between them (b below), as under load.
    const between = (answer: number, last: Record<string, unknown>): HistoryBuilder => new HistoryBuilder()
      .op('write', 1, 3, 'ok', { key: K, value: 'a' }, { version: answer, ...retried })
      .op('read', 1.2, 1.3, 'ok', { key: K }, { value: 'a', version: 1 })
      .op('write', 1.5, 1.6, 'ok', { key: K, value: 'b' }, { version: 2 })
      .op('read', 3.5, 3.6, 'ok', { key: K }, last);
    assert.equal(checkRegister(between(1, { value: 'b', version: 2 }).sorted(), budget).result, 'ok', 'answered from the request id');
    assert.equal(checkRegister(between(3, { value: 'a', version: 3 }).sorted(), budget).result, 'illegal', 'applied twice, over gRPC');
    // Over HTTP neither the write nor the read carries a version: the value alone gives it away.
    const unversioned = new HistoryBuilder()
      .op('write', 1, 3, 'ok', { key: K, value: 'a' }, { ...retried })
      .op('read', 1.2, 1.3, 'ok', { key: K }, { value: 'a' })
      .op('write', 1.5, 1.6, 'ok', { key: K, value: 'b' })
      .op('read', 1.8, 1.9, 'ok', { key: K }, { value: 'b' })
      .op('read', 3.5, 3.6, 'ok', { key: K }, { value: 'a' });
    assert.equal(checkRegister(unversioned.sorted(), budget).result, 'illegal');
  });

  test('a retried write left unknown may have applied once, or not at all, but not twice', () => {
    const unknown = { ...retried, attempts: 8, error: 'CAIRN_NO_LEADER (after 8 attempts, the first unknown)' };
    const once = deleted().op('write', 1, 3, 'info', { key: K, value: 'a' }, unknown);
    assert.equal(checkRegister(once.sorted(), budget).result, 'ok');
    const twice = deleted()
      .op('write', 1, 3, 'info', { key: K, value: 'a' }, unknown)
      .op('read', 3.5, 3.6, 'ok', { key: K }, { value: 'a', version: 1 });
    assert.equal(checkRegister(twice.sorted(), budget).result, 'illegal');
  });
});
