// Goal: the generator's idempotent retries (jepsen-like/generator.ts, PEERS.md §2.3 A14): an operation marked
// idempotent whose outcome is unknown is sent again with the very same request until one attempt answers ok, and the
// history holds one operation (one invoke, one completion with `attempts` and the `tries` that did not end it), which
// the linearizability checker reads as one operation; a retry that fails leaves it unknown (info, never fail); an
// operation not marked idempotent is never resent; the retries are bounded by the policy's attempts and window, and
// a policy outside its bounds is refused; impatient clients carry only the first attempt of an idempotent operation.
// Method: Generator.invokeOn against scripted clients (the ClientSource seam: the transports are not what is
// tested), recording into a real HistoryRecorder file in a temporary directory; retries 1 ms apart unless the
// default policy is the subject.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { checkRegister } from '../../jepsen-like/checkers.ts';
import type { Outcome, RegistryClient } from '../../jepsen-like/client.ts';
import { checkRetryPolicy, defaultRetryPolicy, Generator, retryAttemptsLimit, type ClientSource, type GeneratorOptions, type PlannedOperation, type RetryPolicy } from '../../jepsen-like/generator.ts';
import { HistoryRecorder } from '../../jepsen-like/history.ts';
import { Random } from '../../jepsen-like/random.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'cairn-generator-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const members = [{ addr: '127.0.0.11:8100', grpcAddr: '127.0.0.11:9100' }, { addr: '127.0.0.12:8100', grpcAddr: '127.0.0.12:9100' }];

/** Call is one call a scripted client received: its request id, the member, and which clients carried it. */
interface Call {
  readonly requestId: string;
  readonly addr: string;
  readonly clients: 'patient' | 'impatient';
}

/** SetupOptions: the retry policy and the share of impatient first attempts (none when absent). */
interface SetupOptions {
  readonly retry?: RetryPolicy;
  readonly impatientShare?: number;
}

/** fastRetries: the default attempts and window, 1 ms between attempts. */
const fastRetries: RetryPolicy = { ...defaultRetryPolicy, pauseMs: 1 };

/** scriptedSource is a ClientSource whose every client answers register with the next scripted outcome. */
function scriptedSource(clients: Call['clients'], script: Array<Outcome<unknown>>, record: (call: Call) => void): ClientSource {
  return {
    members,
    client: (addr) => ({
      register: (_ref: unknown, _metadata: unknown, requestId: string) => {
        record({ requestId, addr, clients });
        return Promise.resolve(script.shift() ?? { type: 'ok', value: null });
      },
    }) as unknown as RegistryClient,
  };
}

/** setup returns a generator whose every member answers with the next scripted outcome, and the calls made. */
function setup(name: string, script: Array<Outcome<unknown>>, options: SetupOptions = { retry: fastRetries }): { generator: Generator; recorder: HistoryRecorder; calls: string[]; received: Call[] } {
  const received: Call[] = [];
  const calls: string[] = [];
  const record = (call: Call): void => {
    received.push(call);
    calls.push(call.requestId);
  };
  const recorder = new HistoryRecorder(path.join(dir, `${name}.jsonl`));
  const generatorOptions: GeneratorOptions = {
    recorder, pool: scriptedSource('patient', script, record), random: new Random(1), targets: 'random', transports: 'grpc', leader: () => null,
    ...(options.retry === undefined ? {} : { retry: options.retry }),
    ...(options.impatientShare === undefined ? {} : { impatient: { share: options.impatientShare, pool: scriptedSource('impatient', script, record) } }),
  };
  return { generator: new Generator(generatorOptions), recorder, calls, received };
}

function writeOp(idempotent: boolean): PlannedOperation {
  const requestId = 'req-1';
  return {
    f: 'write',
    value: { key: 'k', value: 'v' },
    ...(idempotent ? { idempotent: true } : {}),
    run: (client) => client.register({ service: 's', ip: '127.0.0.11', port: 20000 }, { v: 'v' }, requestId),
    complete: () => ({ key: 'k', value: 'v' }),
  };
}

const info: Outcome<unknown> = { type: 'info', error: 'timeout' };
const fail: Outcome<unknown> = { type: 'fail', error: 'CAIRN_NO_LEADER' };

test('an idempotent operation with an unknown outcome is resent with the same request until ok: one operation, with attempts', async () => {
  const { generator, recorder, calls } = setup('retried', [info, fail, info, { type: 'ok', value: null }]);
  const type = await generator.invokeOn(writeOp(true), 7, members[0]?.addr ?? '', new Random(2));
  assert.equal(type, 'ok');
  assert.deepEqual(calls, ['req-1', 'req-1', 'req-1', 'req-1'], 'every attempt carries the first request id');
  const events = recorder.events();
  assert.deepEqual(events.map((event) => `${String(event.process)}:${event.type}`), ['7:invoke', '7:ok']);
  assert.equal((events[1]?.value as Record<string, unknown>)['attempts'], 4);
  recorder.close();
});

test('a retry that fails leaves the operation unknown (info, never fail); the retries are bounded', async () => {
  const { generator, recorder, calls } = setup('bounded', [info, ...Array.from({ length: 20 }, () => fail)], {});
  const type = await generator.invokeOn(writeOp(true), 3, members[1]?.addr ?? '', new Random(3));
  assert.equal(type, 'info', 'the first attempt may have applied: a later failure cannot say it did not');
  assert.ok(calls.length > 1 && calls.length <= 8, `bounded attempts (${calls.length})`);
  const completion = recorder.events()[1];
  assert.equal(completion?.type, 'info');
  assert.match(String((completion?.value as Record<string, unknown>)['error']), /after \d+ attempts, the first unknown/);
  recorder.close();
});

test('an operation not marked idempotent is never resent; a definite failure of an idempotent one is not retried', async () => {
  const plain = setup('plain', [info]);
  assert.equal(await plain.generator.invokeOn(writeOp(false), 1, members[0]?.addr ?? '', new Random(4)), 'info');
  assert.equal(plain.calls.length, 1);
  plain.recorder.close();
  const failed = setup('failed', [fail]);
  assert.equal(await failed.generator.invokeOn(writeOp(true), 1, members[0]?.addr ?? '', new Random(5)), 'fail');
  assert.equal(failed.calls.length, 1, 'a certain failure needs no retry: nothing applied');
  failed.recorder.close();
});

/** versionedWrite is a register write of `value` on key K whose ok completion carries the version answered. */
const K = '127.0.0.11:20000';
function versionedWrite(requestId: string, value: string): PlannedOperation {
  return {
    f: 'write',
    value: { key: K, value },
    idempotent: true,
    run: (client) => client.register({ service: 's', ip: '127.0.0.11', port: 20000 }, { v: value }, requestId),
    complete: (result) => ({ key: K, value, version: (result as { version: number }).version }),
  };
}

function completionOf(recorder: HistoryRecorder, index: number): Record<string, unknown> {
  return recorder.events()[index]?.value as Record<string, unknown>;
}

test('the completion lists every attempt that did not end the operation; the register checker reads the exchange as one operation', async () => {
  const { generator, recorder, received } = setup('one-op', [info, fail, { type: 'ok', value: { version: 1 } }]);
  assert.equal(await generator.invokeOn(versionedWrite('req-a', 'a'), 0, members[0]?.addr ?? '', new Random(6)), 'ok');
  assert.deepEqual(received.map((call) => call.requestId), ['req-a', 'req-a', 'req-a']);
  const completion = completionOf(recorder, 1);
  assert.equal(completion['attempts'], 3);
  assert.deepEqual(completion['tries'], [
    { node: members[0]?.addr, type: 'info', error: 'timeout' },
    { node: received[1]?.addr, type: 'fail', error: 'CAIRN_NO_LEADER' },
  ]);
  assert.equal(completion['node'], members[0]?.addr, 'the operation is recorded under the member of its first attempt');
  // A read after the answer sees the value once, at version 1: one operation, linearizable.
  const after = recorder.now();
  recorder.client(1, 'invoke', 'read', { key: K }, after);
  recorder.client(1, 'ok', 'read', { key: K, value: 'a', version: 1 }, after + 1000);
  const result = checkRegister(recorder.events(), { maxSteps: 10_000, timeoutMs: 5000 });
  assert.equal(result.operations, 2, 'three attempts are one operation for the checker');
  assert.equal(result.result, 'ok', result.explanation);
  recorder.close();
});

test('the policy bounds the attempts and the window; the retries go to members picked afresh', async () => {
  const three = setup('three', Array.from({ length: 10 }, () => info), { retry: { attemptsMax: 3, windowMs: 10_000, pauseMs: 1 } });
  assert.equal(await three.generator.invokeOn(versionedWrite('req-3', 'b'), 0, members[0]?.addr ?? '', new Random(7)), 'info');
  assert.equal(three.calls.length, 3, 'attemptsMax counts the first attempt');
  assert.equal(completionOf(three.recorder, 1)['attempts'], 3);
  assert.equal((completionOf(three.recorder, 1)['tries'] as unknown[]).length, 3);
  three.recorder.close();
  const closed = setup('window', Array.from({ length: 10 }, () => info), { retry: { attemptsMax: 8, windowMs: 0, pauseMs: 0 } });
  assert.equal(await closed.generator.invokeOn(versionedWrite('req-w', 'c'), 0, members[0]?.addr ?? '', new Random(8)), 'info');
  assert.equal(closed.calls.length, 1, 'no retry once the window is over');
  assert.equal(completionOf(closed.recorder, 1)['error'], 'timeout', 'a single attempt keeps its own error');
  assert.equal(completionOf(closed.recorder, 1)['attempts'], undefined);
  closed.recorder.close();
  const spread = setup('spread', Array.from({ length: 8 }, () => info));
  await spread.generator.invokeOn(versionedWrite('req-s', 'd'), 0, members[0]?.addr ?? '', new Random(9));
  assert.equal(spread.calls.length, defaultRetryPolicy.attemptsMax);
  assert.ok(new Set(spread.received.map((call) => call.addr)).size === members.length, 'retries reach more than the first member');
  spread.recorder.close();
});

test('a retry policy or an impatient share outside its bounds is refused', () => {
  for (const policy of [
    { attemptsMax: 0, windowMs: 1000, pauseMs: 10 },
    { attemptsMax: retryAttemptsLimit + 1, windowMs: 1000, pauseMs: 10 },
    { attemptsMax: 2.5, windowMs: 1000, pauseMs: 10 },
    { attemptsMax: 3, windowMs: -1, pauseMs: 0 },
    { attemptsMax: 3, windowMs: Number.POSITIVE_INFINITY, pauseMs: 10 },
    { attemptsMax: 3, windowMs: 1000, pauseMs: 2000 },
  ]) {
    assert.throws(() => checkRetryPolicy(policy), RangeError, JSON.stringify(policy));
  }
  assert.doesNotThrow(() => checkRetryPolicy(defaultRetryPolicy));
  assert.throws(() => setup('share', [], { impatientShare: 1.5 }), RangeError);
  assert.throws(() => setup('share-nan', [], { impatientShare: Number.NaN }), RangeError);
});

test('impatient clients carry the first attempt of idempotent operations only; the retries are patient', async () => {
  const { generator, recorder, received } = setup('impatient', [info, { type: 'ok', value: { version: 1 } }, info], { retry: fastRetries, impatientShare: 1 });
  assert.equal(await generator.invokeOn(versionedWrite('req-i', 'e'), 0, members[0]?.addr ?? '', new Random(10)), 'ok');
  assert.deepEqual(received.map((call) => call.clients), ['impatient', 'patient']);
  assert.equal(completionOf(recorder, 1)['impatient'], true);
  assert.equal(await generator.invokeOn(writeOp(false), 1, members[0]?.addr ?? '', new Random(11)), 'info');
  assert.equal(received[2]?.clients, 'patient', 'an operation without a request id is never sent impatiently');
  assert.equal(completionOf(recorder, 3)['impatient'], undefined);
  recorder.close();
  const never = setup('patient', [{ type: 'ok', value: { version: 1 } }], { retry: fastRetries, impatientShare: 0 });
  await never.generator.invokeOn(versionedWrite('req-p', 'f'), 0, members[0]?.addr ?? '', new Random(12));
  assert.deepEqual(never.received.map((call) => call.clients), ['patient']);
  never.recorder.close();
});
