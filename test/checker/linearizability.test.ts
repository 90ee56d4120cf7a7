// Goal: show that the linearizability checker accepts exactly the histories that have a linearization (Herlihy &
// Wing 1990) and rejects the rest, with Porcupine's conventions (PEERS.md §3.3): closed intervals, unknown
// outcomes returning at +Infinity, per-key partitions, and a step budget that yields 'unknown', never 'ok'.
//
// Method: small hand-written histories whose verdict is known by reasoning (each case says why), both models, the
// conversion of history events into operations with its malformed-history errors, agreement with a brute-force
// search over every order on thousands of tiny random histories, and a seeded randomized test.
// The randomized test runs a real sequential register, gives each operation a linearization point inside a random
// interval, so the history is linearizable by construction, then mutates one read to return a value overwritten
// before the read began, which no linearization can explain. A final test times a 2000-operation history.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { Prng } from '../../src/raft/prng.ts';
import { operationsFromHistory, parseHistoryJsonl } from './history.ts';
import type { HistoryEvent, Operation } from './history.ts';
import { checkHistory, checkOperations } from './linearizability.ts';
import type { CheckReport, Model } from './linearizability.ts';
import {
  createInstanceRegisterModel,
  instanceRegisterModel,
  kvInputFromEvent,
  kvModel,
  kvOutputFromEvent,
} from './models.ts';
import type { InstanceInput, InstanceOutput, KvInput, KvOutput } from './models.ts';

type KvOperation = Operation<KvInput, KvOutput>;

function done<I, O>(clientId: number, input: I, call: number, ret: number, output: O): Operation<I, O> {
  return { clientId, input, call, output, return: ret, unknown: false };
}

function pending<I, O>(clientId: number, input: I, call: number): Operation<I, O> {
  return { clientId, input, call, output: undefined as O, return: Number.POSITIVE_INFINITY, unknown: true };
}

function write(clientId: number, key: string, value: string, call: number, ret: number): KvOperation {
  return done(clientId, { f: 'write', key, value }, call, ret, {});
}

function read(clientId: number, key: string, value: string | null, call: number, ret: number): KvOperation {
  return done(clientId, { f: 'read', key }, call, ret, { value });
}

function cas(clientId: number, key: string, expected: string | null, value: string, call: number, ret: number, ok: boolean): KvOperation {
  return done(clientId, { f: 'cas', key, expected, value }, call, ret, { ok });
}

function unknownWrite(clientId: number, key: string, value: string, call: number): KvOperation {
  return pending(clientId, { f: 'write', key, value }, call);
}

/** assertValidLinearizations replays each 'ok' partition's linearization: a permutation, in real-time order, legal. */
function assertValidLinearizations<S, I, O>(model: Model<S, I, O>, report: CheckReport<I, O>): void {
  for (const partition of report.partitions) {
    if (partition.result !== 'ok') continue;
    const order = partition.linearization;
    assert.deepEqual([...order].sort((a, b) => a - b), partition.ops.map((_, index) => index));
    let state = model.init();
    for (const [position, index] of order.entries()) {
      const op = partition.ops[index];
      assert.ok(op !== undefined);
      for (const later of order.slice(position + 1)) {
        const laterOp = partition.ops[later];
        assert.ok(laterOp !== undefined && !(laterOp.return < op.call), 'linearization violates real-time order');
      }
      const next = model.step(state, op.input, op.unknown ? undefined : op.output, op.unknown);
      assert.ok(next.ok, `linearization step ${position} is illegal`);
      state = next.state;
    }
  }
}

function checkKv(ops: readonly KvOperation[]): CheckReport<KvInput, KvOutput> {
  const report = checkOperations(kvModel, ops);
  assertValidLinearizations(kvModel, report);
  return report;
}

describe('kv register: hand-written histories', () => {
  test('a read after a completed write sees it', () => {
    assert.equal(checkKv([write(1, 'x', 'a', 0, 10), read(2, 'x', 'a', 20, 30)]).result, 'ok');
  });

  test('stale read: a read that begins after a write completed returns the initial value', () => {
    const report = checkKv([write(1, 'x', 'a', 0, 10), read(2, 'x', null, 20, 30)]);
    assert.equal(report.result, 'illegal');
    assert.match(report.explanation, /read\(x\) -> null/);
  });

  test('a read of a value never written is illegal', () => {
    assert.equal(checkKv([write(1, 'x', 'a', 0, 10), read(2, 'x', 'zzz', 5, 30)]).result, 'illegal');
  });

  test('two sequential writes then a read of the first is illegal', () => {
    const ops = [write(1, 'x', 'a', 0, 10), write(1, 'x', 'b', 20, 30), read(2, 'x', 'a', 40, 50)];
    const report = checkKv(ops);
    assert.equal(report.result, 'illegal');
    // The search gets as far as both writes, then finds that the read cannot follow them.
    assert.deepEqual(report.partitions[0]?.linearization, [0, 1]);
    assert.match(report.explanation, /longest linearizable prefix found: 2 of 3/);
    assert.match(report.explanation, /none of these operations[^\n]*\n {2}process 2: read\(x\) -> "a"/);
  });

  test('concurrent writes: either order is fine, but later reads must agree on the one that won', () => {
    const writes = [write(1, 'x', 'a', 0, 10), write(2, 'x', 'b', 5, 15)];
    assert.equal(checkKv([...writes, read(3, 'x', 'a', 20, 25)]).result, 'ok');
    assert.equal(checkKv([...writes, read(3, 'x', 'b', 20, 25)]).result, 'ok');
    assert.equal(checkKv([...writes, read(3, 'x', 'b', 20, 25), read(3, 'x', 'a', 30, 35)]).result, 'illegal');
    // A read concurrent with both writes may see the value before either, and a later read the winner.
    assert.equal(checkKv([...writes, read(3, 'x', null, 1, 2), read(3, 'x', 'a', 30, 35)]).result, 'ok');
  });

  test('intervals are closed: a call at the same time as a return is concurrent with it', () => {
    assert.equal(checkKv([write(1, 'x', 'a', 0, 10), read(2, 'x', null, 10, 20)]).result, 'ok');
    assert.equal(checkKv([write(1, 'x', 'a', 0, 10), read(2, 'x', null, 11, 20)]).result, 'illegal');
    // The same holds for a read that returns exactly when the write is called: it may follow the write.
    assert.equal(checkKv([read(2, 'x', 'a', 0, 10), write(1, 'x', 'a', 10, 20)]).result, 'ok');
    assert.equal(checkKv([read(2, 'x', 'a', 0, 9), write(1, 'x', 'a', 10, 20)]).result, 'illegal');
  });

  test('cas succeeds only when the current value is the expected one, and fails only when it is not', () => {
    assert.equal(checkKv([cas(1, 'x', null, 'a', 0, 10, true), read(2, 'x', 'a', 20, 30)]).result, 'ok');
    assert.equal(checkKv([write(1, 'x', 'a', 0, 10), cas(2, 'x', 'b', 'c', 20, 30, false), read(1, 'x', 'a', 40, 50)]).result, 'ok');
    assert.equal(checkKv([write(1, 'x', 'a', 0, 10), cas(2, 'x', 'b', 'c', 20, 30, true)]).result, 'illegal');
    assert.equal(checkKv([write(1, 'x', 'a', 0, 10), cas(2, 'x', 'a', 'c', 20, 30, false)]).result, 'illegal');
    // Two concurrent cas from the same expected value: at most one can succeed.
    const racers = [cas(1, 'x', null, 'a', 0, 10, true), cas(2, 'x', null, 'b', 0, 10, true)];
    assert.equal(checkKv(racers).result, 'illegal');
    assert.equal(checkKv([racers[0]!, cas(2, 'x', null, 'b', 0, 10, false), read(3, 'x', 'a', 20, 30)]).result, 'ok');
  });

  test('an unknown write must have taken effect when a later read saw its value', () => {
    const ops = [write(1, 'x', 'a', 0, 10), unknownWrite(2, 'x', 'b', 20), read(3, 'x', 'b', 30, 40)];
    const report = checkKv(ops);
    assert.equal(report.result, 'ok');
    assert.deepEqual(report.partitions[0]?.linearization, [0, 1, 2]);
    // It cannot take effect before it was called.
    assert.equal(checkKv([read(3, 'x', 'b', 0, 10), unknownWrite(2, 'x', 'b', 20)]).result, 'illegal');
  });

  test('an unknown write that did not take effect is linearized last, where nothing observes it', () => {
    const ops = [write(1, 'x', 'a', 0, 10), unknownWrite(2, 'x', 'b', 20), read(3, 'x', 'a', 30, 40), read(3, 'x', 'a', 50, 60)];
    const report = checkKv(ops);
    assert.equal(report.result, 'ok');
    // No read returned 'b', so the unknown write is dropped before the search (it could only go last anyway).
    assert.equal(report.partitions[0]?.operations, 3);
    // With the model's own partitioning bypassed, the search itself places it last.
    const unpartitioned = checkOperations({ ...kvModel, partition: (all) => [[...all]] }, ops);
    assert.deepEqual(unpartitioned.partitions[0]?.linearization, [0, 2, 3, 1]);
    // Once observed, its effect cannot be undone by a later read of the old value.
    const flipFlop = [write(1, 'x', 'a', 0, 10), unknownWrite(2, 'x', 'b', 20), read(3, 'x', 'b', 30, 40), read(3, 'x', 'a', 50, 60)];
    assert.equal(checkKv(flipFlop).result, 'illegal');
  });

  test('an unknown read is dropped and an unknown cas takes effect only if it could have', () => {
    const unknownRead = pending<KvInput, KvOutput>(4, { f: 'read', key: 'x' }, 0);
    const report = checkKv([unknownRead, write(1, 'x', 'a', 0, 10)]);
    assert.equal(report.result, 'ok');
    assert.equal(report.partitions[0]?.operations, 1);
    const unknownCas = pending<KvInput, KvOutput>(2, { f: 'cas', key: 'x', expected: 'a', value: 'b' }, 20);
    assert.equal(checkKv([write(1, 'x', 'a', 0, 10), unknownCas, read(3, 'x', 'b', 30, 40)]).result, 'ok');
    const hopelessCas = pending<KvInput, KvOutput>(2, { f: 'cas', key: 'x', expected: 'q', value: 'b' }, 20);
    assert.equal(checkKv([write(1, 'x', 'a', 0, 10), hopelessCas, read(3, 'x', 'b', 30, 40)]).result, 'illegal');
  });

  test('per-key partitions: one bad key among many good ones is reported by name', () => {
    const ops: KvOperation[] = [];
    for (let k = 0; k < 20; k++) {
      const key = `k${k}`;
      ops.push(write(k, key, `v${k}`, 0, 10), read(100 + k, key, k === 13 ? null : `v${k}`, 20, 30));
    }
    const report = checkKv(ops);
    assert.equal(report.result, 'illegal');
    assert.equal(report.partitions.length, 20);
    assert.deepEqual(
      report.partitions.filter((p) => p.result === 'illegal').map((p) => p.name),
      ['key "k13"'],
    );
    assert.match(report.explanation, /^partition 14\/20 \(key "k13"\) is not linearizable/);
    assert.match(report.explanation, /read\(k13\) -> null/);
    assert.doesNotMatch(report.explanation, /k12/);
  });

  test('an empty history is linearizable, and operations come back in each partition', () => {
    const report = checkKv([]);
    assert.equal(report.result, 'ok');
    assert.equal(report.explanation, '');
  });

  test('malformed operations are rejected', () => {
    assert.throws(() => checkKv([read(1, 'x', null, 10, 5)]), /return time 5, before its call 10/);
    assert.throws(() => checkKv([read(1, 'x', null, Number.NaN, 5)]), /call time NaN/);
    assert.throws(() => checkOperations(kvModel, [], { maxSteps: -1 }), RangeError);
  });
});

describe('model defaults', () => {
  /** A counter without partition, hash or equal: exercises the defaults (one partition, JSON.stringify). */
  const counter: Model<{ n: number }, 'inc' | 'get', number> = {
    init: () => ({ n: 0 }),
    step: (state, input, output) =>
      input === 'inc' ? { ok: true, state: { n: state.n + 1 } } : { ok: output === undefined || output === state.n, state },
  };

  test('a counter history with overlapping increments', () => {
    const ops = [done(1, 'inc', 0, 10, 0), done(2, 'inc', 0, 10, 0), done(3, 'get', 5, 6, 1), done(3, 'get', 20, 30, 2)];
    const report = checkOperations(counter, ops as Operation<'inc' | 'get', number>[]);
    assert.equal(report.result, 'ok');
    assertValidLinearizations(counter, report);
    assert.equal(report.partitions[0]?.name, '#0');
    const bad = [done(1, 'inc', 0, 10, 0), done(3, 'get', 20, 30, 2)];
    const illegal = checkOperations(counter, bad as Operation<'inc' | 'get', number>[]);
    assert.equal(illegal.result, 'illegal');
    assert.match(illegal.explanation, /model state after that prefix: \{"n":1\}/);
    assert.match(illegal.explanation, /"get" -> 2/);
  });
});

describe('instance register model (PEERS.md §3.4, model 1)', () => {
  type InstanceOperation = Operation<InstanceInput, InstanceOutput>;
  const register = (c: number, key: string, meta: Record<string, string>, call: number, ret: number, version?: number): InstanceOperation =>
    done(c, { f: 'register', key, meta }, call, ret, version === undefined ? {} : { version });
  const deregister = (c: number, key: string, call: number, ret: number): InstanceOperation =>
    done(c, { f: 'deregister', key }, call, ret, {});
  const get = (c: number, key: string, call: number, ret: number, exists: boolean, version: number, meta: Record<string, string> | null): InstanceOperation =>
    done(c, { f: 'get', key }, call, ret, { exists, version, meta });
  const casMeta = (c: number, key: string, expectedVersion: number, meta: Record<string, string>, call: number, ret: number, ok: boolean): InstanceOperation =>
    done(c, { f: 'cas-meta', key, expectedVersion, meta }, call, ret, { ok });
  const check = (ops: InstanceOperation[], model = instanceRegisterModel): CheckReport<InstanceInput, InstanceOutput> => {
    const report = checkOperations(model, ops);
    assertValidLinearizations(model, report);
    return report;
  };

  test('register is an upsert that bumps the version; get reports version and meta', () => {
    const a = { zone: 'a', weight: '1' };
    assert.equal(check([register(1, 'i1', a, 0, 10, 1), get(2, 'i1', 20, 30, true, 1, { weight: '1', zone: 'a' })]).result, 'ok');
    assert.equal(check([register(1, 'i1', a, 0, 10), register(1, 'i1', a, 20, 30), get(2, 'i1', 40, 50, true, 2, a)]).result, 'ok');
    assert.equal(check([register(1, 'i1', a, 0, 10), get(2, 'i1', 20, 30, true, 2, a)]).result, 'illegal');
    assert.equal(check([register(1, 'i1', a, 0, 10), get(2, 'i1', 20, 30, true, 1, { zone: 'b' })]).result, 'illegal');
    assert.equal(check([register(1, 'i1', a, 0, 10, 2)]).result, 'illegal');
    assert.equal(check([get(2, 'i1', 0, 5, false, 0, null), register(1, 'i1', a, 10, 20)]).result, 'ok');
  });

  test('deregister removes; a re-register keeps counting versions by default, or restarts with reset', () => {
    const a = { zone: 'a' };
    const history = [register(1, 'i1', a, 0, 10), deregister(1, 'i1', 20, 30), get(2, 'i1', 40, 50, false, 0, null), register(1, 'i1', a, 60, 70)];
    assert.equal(check([...history, get(2, 'i1', 80, 90, true, 2, a)]).result, 'ok');
    assert.equal(check([...history, get(2, 'i1', 80, 90, true, 1, a)]).result, 'illegal');
    const reset = createInstanceRegisterModel({ versionAfterDeregister: 'reset' });
    assert.equal(check([...history, get(2, 'i1', 80, 90, true, 1, a)], reset).result, 'ok');
    assert.equal(check([register(1, 'i1', a, 0, 10), deregister(1, 'i1', 20, 30), get(2, 'i1', 40, 50, true, 1, a)]).result, 'illegal');
  });

  test('cas-meta applies only at the expected version', () => {
    const a = { zone: 'a' };
    const b = { zone: 'b' };
    const base = register(1, 'i1', a, 0, 10);
    assert.equal(check([base, casMeta(2, 'i1', 1, b, 20, 30, true), get(3, 'i1', 40, 50, true, 2, b)]).result, 'ok');
    assert.equal(check([base, casMeta(2, 'i1', 7, b, 20, 30, false), get(3, 'i1', 40, 50, true, 1, a)]).result, 'ok');
    assert.equal(check([base, casMeta(2, 'i1', 7, b, 20, 30, true)]).result, 'illegal');
    assert.equal(check([base, casMeta(2, 'i1', 1, b, 20, 30, false)]).result, 'illegal');
    assert.equal(check([casMeta(2, 'i1', 0, b, 0, 10, true)]).result, 'illegal');
    // Two concurrent cas-meta at version 1: only one can win.
    assert.equal(check([base, casMeta(2, 'i1', 1, b, 20, 30, true), casMeta(3, 'i1', 1, a, 20, 30, true)]).result, 'illegal');
  });

  test('with reset versions, version 0 means absent: cas-meta at 0 creates; a get without a version compares exists and meta', () => {
    const reset = createInstanceRegisterModel({ versionAfterDeregister: 'reset' });
    const a = { v: 'a' };
    const b = { v: 'b' };
    assert.equal(check([casMeta(2, 'i1', 0, a, 0, 10, true), get(3, 'i1', 20, 30, true, 1, a)], reset).result, 'ok');
    assert.equal(check([register(1, 'i1', a, 0, 10), casMeta(2, 'i1', 0, b, 20, 30, true)], reset).result, 'illegal');
    assert.equal(check([register(1, 'i1', a, 0, 10), deregister(1, 'i1', 20, 30), casMeta(2, 'i1', 0, b, 40, 50, true), get(3, 'i1', 60, 70, true, 1, b)], reset).result, 'ok');
    const unversioned = (c: number, call: number, ret: number, meta: Record<string, string>): InstanceOperation => done(c, { f: 'get', key: 'i1' }, call, ret, { exists: true, meta });
    assert.equal(check([register(1, 'i1', a, 0, 10), register(1, 'i1', b, 20, 30), unversioned(2, 40, 50, b)], reset).result, 'ok');
    assert.equal(check([register(1, 'i1', a, 0, 10), register(1, 'i1', b, 20, 30), unversioned(2, 40, 50, a)], reset).result, 'illegal');
  });

  test('a valid history with 30 unknown writes, cas and deletes (some never applied) is decided within the budget', () => {
    // A history valid by construction: known operations run one after another, each at its own instant; 30 unknown
    // writes, cas and deletes are invoked among them and take effect at a random later instant, or never.
    const reset = createInstanceRegisterModel({ versionAfterDeregister: 'reset' });
    const prng = new Prng(42);
    const ops: InstanceOperation[] = [];
    let state = { exists: false, version: 0, meta: null as Record<string, string> | null };
    const effects: Array<{ at: number; apply: () => void }> = [];
    let time = 0;
    let value = 0;
    const writeEffect = (meta: Record<string, string>) => () => { state = { exists: true, version: state.version + 1, meta }; };
    for (let step = 0; step < 150; step++) {
      time += 10;
      for (const effect of effects.filter((e) => e.at === step)) effect.apply();
      const roll = prng.nextInt(10);
      if (step % 5 === 0 && ops.filter((op) => op.unknown).length < 30) {
        const meta = { v: `u${value++}` };
        const kind = prng.nextInt(3);
        const input: InstanceInput = kind === 0 ? { f: 'register', key: 'i1', meta } : kind === 1 ? { f: 'cas-meta', key: 'i1', expectedVersion: state.version, meta } : { f: 'deregister', key: 'i1' };
        ops.push(pending(9, input, time - 5));
        if (prng.nextInt(2) === 0) {
          const expected = input.f === 'cas-meta' ? input.expectedVersion : -1;
          effects.push({ at: step + 1 + prng.nextInt(20), apply: () => {
            if (input.f === 'register') writeEffect(meta)();
            else if (input.f === 'cas-meta' && state.version === expected) writeEffect(meta)();
            else if (input.f === 'deregister') state = { exists: false, version: 0, meta: null };
          } });
        }
      } else if (roll < 5) {
        ops.push(get(1, 'i1', time, time + 5, state.exists, state.version, state.meta));
      } else {
        const meta = { v: `k${value++}` };
        writeEffect(meta)();
        ops.push(register(2, 'i1', meta, time, time + 5, state.version));
      }
    }
    const report = checkOperations(reset, ops, { maxSteps: 200_000 });
    assertValidLinearizations(reset, report);
    assert.equal(report.result, 'ok', `${ops.filter((op) => op.unknown).length} unknown operations; ${report.partitions[0]?.steps ?? 0} steps`);
  });

  test('an unknown register that a later get saw, and per-instance partitions', () => {
    const a = { zone: 'a' };
    const unknownRegister = pending<InstanceInput, InstanceOutput>(1, { f: 'register', key: 'i1', meta: a }, 0);
    const ops = [unknownRegister, get(2, 'i1', 10, 20, true, 1, a), register(3, 'i2', a, 0, 10), get(4, 'i2', 20, 30, false, 0, null)];
    const report = check(ops);
    assert.equal(report.result, 'illegal');
    assert.deepEqual(report.partitions.map((p) => `${p.name}=${p.result}`), ['key "i1"=ok', 'key "i2"=illegal']);
    assert.match(report.explanation, /get\(i2\)/);
  });
});

describe('history events', () => {
  const event = (process: number, type: HistoryEvent['type'], f: string, value: unknown, time: number): HistoryEvent => ({
    process,
    type,
    f,
    value,
    time,
  });
  const identity = (e: HistoryEvent): unknown => e.value;

  test('ok pairs, fail drops, info and missing completions become unknown at +Infinity', () => {
    const ops = operationsFromHistory(
      [
        event(1, 'invoke', 'write', 'a', 1),
        event(2, 'invoke', 'write', 'b', 2),
        event(3, 'invoke', 'write', 'c', 3),
        event(4, 'invoke', 'read', null, 4),
        event(2, 'fail', 'write', null, 5),
        event(1, 'ok', 'write', 'a', 6),
        event(3, 'info', 'write', null, 7),
        event(3, 'invoke', 'read', null, 8),
        event(3, 'ok', 'read', 'a', 9),
      ],
      identity,
      (completion, invoke) => `${String(invoke.value)}->${String(completion.value)}`,
    );
    assert.deepEqual(ops, [
      { clientId: 1, input: 'a', call: 1, output: 'a->a', return: 6, unknown: false },
      { clientId: 3, input: 'c', call: 3, output: undefined, return: Number.POSITIVE_INFINITY, unknown: true },
      { clientId: 4, input: null, call: 4, output: undefined, return: Number.POSITIVE_INFINITY, unknown: true },
      { clientId: 3, input: null, call: 8, output: 'null->a', return: 9, unknown: false },
    ]);
  });

  test('malformed histories throw errors that name the event', () => {
    const convert = (events: HistoryEvent[]): unknown => operationsFromHistory(events, identity, identity);
    assert.throws(() => convert([event(1, 'ok', 'read', null, 1)]), /event 0 \(ok read\) on process 1 has no invoke/);
    assert.throws(
      () => convert([event(1, 'invoke', 'read', null, 1), event(1, 'invoke', 'write', 'a', 2)]),
      /event 1 invokes write on process 1, which is still running read/,
    );
    const strange = { process: 1, type: 'done', f: 'read', value: null, time: 1 } as unknown as HistoryEvent;
    assert.throws(() => convert([strange]), /event 0 has unknown type "done"/);
    assert.throws(() => convert([event(1, 'invoke', 'read', null, 1), event(1, 'ok', 'write', null, 2)]), /but the pending invoke is read/);
    assert.throws(() => convert([event(1, 'invoke', 'read', null, 5), event(1, 'ok', 'read', null, 2)]), /before its invoke/);
    const nemesis = { process: 'nemesis', type: 'info', f: 'partition', value: null, time: 1 } as unknown as HistoryEvent;
    assert.throws(() => convert([nemesis]), /not an integer/);
    assert.throws(() => convert([event(1, 'invoke', 'read', null, Number.NaN)]), /not a finite number/);
  });

  test('history.jsonl through kvInputFromEvent and kvOutputFromEvent into the checker', () => {
    const lines = [
      { process: 0, type: 'invoke', f: 'write', value: { key: 'x', value: 'a' }, time: 0 },
      { process: 1, type: 'invoke', f: 'cas', value: { key: 'x', expected: 'a', value: 'b' }, time: 1 },
      { process: 0, type: 'ok', f: 'write', value: { key: 'x', value: 'a' }, time: 2 },
      { process: 1, type: 'info', f: 'cas', value: null, time: 3 },
      { process: 2, type: 'invoke', f: 'read', value: { key: 'x' }, time: 4 },
      { process: 2, type: 'ok', f: 'read', value: { key: 'x', value: 'b' }, time: 5 },
      { process: 3, type: 'invoke', f: 'read', value: { key: 'x' }, time: 6 },
      { process: 3, type: 'ok', f: 'read', value: { key: 'x', value: 'a' }, time: 7 },
    ];
    const events = parseHistoryJsonl(`${lines.map((line) => JSON.stringify(line)).join('\n')}\n`);
    const report = checkHistory(kvModel, events, kvInputFromEvent, kvOutputFromEvent);
    assert.equal(report.result, 'illegal');
    assert.match(report.explanation, /cas\(x, "a" -> "b"\) -> \?/);
    const legal = checkHistory(kvModel, events.slice(0, 6), kvInputFromEvent, kvOutputFromEvent);
    assert.equal(legal.result, 'ok');
    assert.throws(() => parseHistoryJsonl('{"process":1}\nnot json'), /line 1 has unknown type|line 2 is not JSON/);
    assert.throws(() => parseHistoryJsonl('{"process":1,"type":"invoke","f":"read","value":{},"time":1}\n[1]'), /line 2 is not a JSON object/);
    assert.throws(() => kvInputFromEvent({ process: 1, type: 'invoke', f: 'read', value: {}, time: 1 }), /key must be a string/);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Randomized histories from a real sequential execution.

interface GeneratedOperation {
  clientId: number;
  input: KvInput;
  call: number;
  /** point is when the operation takes effect in the sequential execution: call <= point <= return. */
  point: number;
  return: number;
  unknown: boolean;
  /** tookEffect is false for an unknown operation that the execution skips (it never happened). */
  tookEffect: boolean;
  output: KvOutput;
}

interface GenerateOptions {
  readonly clients: number;
  readonly keys: number;
  readonly operations: number;
  readonly unknownRate: number;
}

/** generateLinearizable builds a history that is linearizable by construction (see the file comment). */
function generateLinearizable(prng: Prng, options: GenerateOptions): KvOperation[] {
  const clientTime = new Array<number>(options.clients).fill(0);
  const written = new Map<string, string[]>();
  const generated: GeneratedOperation[] = [];
  for (let i = 0; i < options.operations; i++) {
    // Always advance the client that is furthest behind, so the clients stay concurrent with each other.
    const clientId = clientTime.indexOf(Math.min(...clientTime));
    const call = (clientTime[clientId] ?? 0) + prng.nextInt(3);
    const point = call + prng.nextFloat() * 10;
    const ret = Math.ceil(point) + prng.nextInt(5);
    clientTime[clientId] = ret + 1;
    const input = randomInput(prng, options.keys, i, written);
    const unknown = prng.chance(options.unknownRate);
    const tookEffect = !unknown || prng.chance(0.5);
    generated.push({ clientId, input, call, point, return: ret, unknown, tookEffect, output: {} });
  }
  executeSequentially(generated);
  return generated.map((g) =>
    g.unknown ? pending<KvInput, KvOutput>(g.clientId, g.input, g.call) : done(g.clientId, g.input, g.call, g.return, g.output),
  );
}

function randomInput(prng: Prng, keys: number, i: number, written: Map<string, string[]>): KvInput {
  const key = `k${prng.nextInt(keys)}`;
  const values = written.get(key) ?? [];
  const dice = prng.nextInt(100);
  if (dice < 50) return { f: 'read', key };
  // Every written value is unique, which is what makes the mutation below certainly illegal.
  const value = `v${i}`;
  written.set(key, [...values.slice(-3), value]);
  if (dice < 85) return { f: 'write', key, value };
  const expected = values.length === 0 || prng.chance(0.2) ? null : (values[prng.nextInt(values.length)] ?? null);
  return { f: 'cas', key, expected, value };
}

/** executeSequentially runs the operations on a real map in order of their points and records the outputs. */
function executeSequentially(generated: GeneratedOperation[]): void {
  const store = new Map<string, string>();
  const byPoint = [...generated].sort((a, b) => a.point - b.point);
  for (const g of byPoint) {
    if (!g.tookEffect) continue;
    const current = store.get(g.input.key) ?? null;
    switch (g.input.f) {
      case 'read':
        g.output = { value: current };
        break;
      case 'write':
        store.set(g.input.key, g.input.value);
        break;
      case 'cas':
        g.output = { ok: current === g.input.expected };
        if (current === g.input.expected) store.set(g.input.key, g.input.value);
        break;
    }
  }
}

/**
 * mutateStaleRead finds a completed read R and two completed writes W1, W2 of its key with W1 returning before W2
 * is called and W2 returning before R is called, and makes R return W1's value: any linearization has W1 < W2 < R,
 * W2 overwrote the value, and no one else writes W1's unique value, so the result cannot be linearized.
 */
function mutateStaleRead(ops: KvOperation[]): KvOperation[] | null {
  for (const [index, r] of ops.entries()) {
    if (r.unknown || r.input.f !== 'read') continue;
    const key = r.input.key;
    const writes = ops.filter((w) => !w.unknown && w.input.f === 'write' && w.input.key === key && w.return < r.call);
    for (const w2 of writes) {
      const w1 = writes.find((w) => w.return < w2.call);
      if (w1 === undefined || w1.input.f !== 'write') continue;
      const copy = ops.slice();
      copy[index] = { ...r, output: { value: w1.input.value } };
      return copy;
    }
  }
  return null;
}

describe('randomized histories', () => {
  test('histories from a sequential execution are linearizable; stale-read mutations are not', () => {
    let mutated = 0;
    for (let seed = 1; seed <= 60; seed++) {
      const prng = new Prng(seed);
      const ops = generateLinearizable(prng, { clients: 5, keys: 3, operations: 60, unknownRate: 0.03 });
      const report = checkKv(ops);
      assert.equal(report.result, 'ok', `seed ${seed}: ${report.explanation}`);
      const bad = mutateStaleRead(ops);
      if (bad === null) continue;
      mutated += 1;
      const badReport = checkKv(bad);
      assert.equal(badReport.result, 'illegal', `seed ${seed}: the mutated history passed`);
      assert.match(badReport.explanation, /is not linearizable/);
    }
    assert.ok(mutated >= 50, `only ${mutated} of 60 seeds produced a mutation`);
  });

  test('a read of a value never written is caught in a large random history', () => {
    const ops = generateLinearizable(new Prng(7), { clients: 8, keys: 4, operations: 300, unknownRate: 0.02 });
    const index = ops.findIndex((op) => !op.unknown && op.input.f === 'read');
    ops[index] = { ...ops[index]!, output: { value: 'never-written' } };
    const report = checkKv(ops);
    assert.equal(report.result, 'illegal');
    assert.match(report.explanation, /-> "never-written"/);
  });
});

/** bruteForceLinearizable tries every order of ops: the definition of linearizability, for tiny histories. */
function bruteForceLinearizable(ops: readonly KvOperation[]): boolean {
  const used = new Array<boolean>(ops.length).fill(false);
  const extend = (state: string | null, placed: readonly KvOperation[]): boolean => {
    if (placed.length === ops.length) return true;
    for (const [index, op] of ops.entries()) {
      if (used[index] === true) continue;
      // op may come next only if no operation still unplaced returned before op was called.
      if (ops.some((other, j) => used[j] !== true && j !== index && other.return < op.call)) continue;
      const next = kvModel.step(state, op.input, op.unknown ? undefined : op.output, op.unknown);
      if (!next.ok) continue;
      used[index] = true;
      const found = extend(next.state, [...placed, op]);
      used[index] = false;
      if (found) return true;
    }
    return false;
  };
  return extend(null, []);
}

function randomTinyHistory(prng: Prng): KvOperation[] {
  const values = ['a', 'b', 'c'];
  const pick = (): string => values[prng.nextInt(values.length)] ?? 'a';
  const ops: KvOperation[] = [];
  const count = 1 + prng.nextInt(6);
  for (let i = 0; i < count; i++) {
    const call = prng.nextInt(10);
    const ret = call + prng.nextInt(6);
    const dice = prng.nextInt(3);
    const input: KvInput =
      dice === 0 ? { f: 'read', key: 'x' } : dice === 1 ? { f: 'write', key: 'x', value: pick() } : { f: 'cas', key: 'x', expected: prng.chance(0.3) ? null : pick(), value: pick() };
    if (prng.chance(0.15)) {
      ops.push(pending(i, input, call));
      continue;
    }
    const output: KvOutput = input.f === 'read' ? { value: prng.chance(0.2) ? null : pick() } : input.f === 'cas' ? { ok: prng.chance(0.5) } : {};
    ops.push(done(i, input, call, ret, output));
  }
  return ops;
}

describe('agreement with brute force', () => {
  test('on 2000 random tiny histories the checker agrees with trying every order', () => {
    const prng = new Prng(99);
    const verdicts = { ok: 0, illegal: 0 };
    for (let round = 0; round < 2000; round++) {
      const ops = randomTinyHistory(prng);
      const expected = bruteForceLinearizable(ops) ? 'ok' : 'illegal';
      const report = checkKv(ops);
      assert.equal(report.result, expected, `round ${round}: ${JSON.stringify(ops)}`);
      verdicts[expected] += 1;
    }
    // Both verdicts must be common, or the comparison proves little.
    assert.ok(verdicts.ok > 300 && verdicts.illegal > 300, JSON.stringify(verdicts));
  });
});

describe('bounds', () => {
  // 24 writes and one impossible read, all concurrent: every subset of the writes is a distinct configuration, so
  // the search cannot finish before visiting about 2^24 of them.
  const huge: KvOperation[] = [read(99, 'x', 'never-written', 0, 100)];
  for (let i = 0; i < 24; i++) huge.push(write(i, 'x', `v${i}`, 0, 100));

  test('the step budget turns a hopeless search into unknown', () => {
    const report = checkOperations(kvModel, huge, { maxSteps: 50_000 });
    assert.equal(report.result, 'unknown');
    assert.equal(report.partitions[0]?.steps, 50_000);
    assert.equal(report.partitions[0]?.unknownReason, 'steps');
    assert.match(report.explanation, /step budget of 50000 ran out/);
  });

  test('an exhausted budget is unknown even for a linearizable history, never ok', () => {
    const ops = generateLinearizable(new Prng(3), { clients: 4, keys: 1, operations: 40, unknownRate: 0 });
    assert.equal(checkOperations(kvModel, ops).result, 'ok');
    assert.equal(checkOperations(kvModel, ops, { maxSteps: 10 }).result, 'unknown');
  });

  test('the wall-clock timeout also gives unknown', () => {
    const report = checkOperations(kvModel, huge, { timeoutMs: 0 });
    assert.equal(report.result, 'unknown');
    assert.equal(report.partitions[0]?.unknownReason, 'timeout');
  });

  test('performance: 2000 operations over 20 keys from 10 concurrent clients', (t) => {
    const ops = generateLinearizable(new Prng(2024), { clients: 10, keys: 20, operations: 2000, unknownRate: 0.01 });
    const started = performance.now();
    const report = checkOperations(kvModel, ops);
    const elapsedMs = performance.now() - started;
    assert.equal(report.result, 'ok', report.explanation);
    const steps = report.partitions.reduce((sum, p) => sum + p.steps, 0);
    t.diagnostic(`checked ${ops.length} operations in ${report.partitions.length} partitions: ${steps} steps, ${elapsedMs.toFixed(1)} ms`);
  });
});
