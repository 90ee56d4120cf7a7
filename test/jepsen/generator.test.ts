// Goal: the generator's idempotent retries (jepsen-like/generator.ts, PEERS.md §2.3 A14): an operation marked
// idempotent whose outcome is unknown is sent again with the very same request until one attempt answers ok, and the
// history holds one operation (one invoke, one completion with `attempts`); a retry that fails leaves it unknown
// (info, never fail); an operation not marked idempotent is never resent; the retries are bounded.
// Method: Generator.invokeOn against scripted clients (the ClientPool seam: the transports are not what is tested),
// recording into a real HistoryRecorder file in a temporary directory.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import type { Outcome, RegistryClient } from '../../jepsen-like/client.ts';
import { Generator, type ClientPool, type PlannedOperation } from '../../jepsen-like/generator.ts';
import { HistoryRecorder } from '../../jepsen-like/history.ts';
import { Random } from '../../jepsen-like/random.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'cairn-generator-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const members = [{ addr: '127.0.0.11:8100', grpcAddr: '127.0.0.11:9100' }, { addr: '127.0.0.12:8100', grpcAddr: '127.0.0.12:9100' }];

/** setup returns a generator whose every member answers with the next scripted outcome, and the calls made. */
function setup(name: string, script: Array<Outcome<unknown>>): { generator: Generator; recorder: HistoryRecorder; calls: string[] } {
  const calls: string[] = [];
  const client = { close: () => undefined } as unknown as RegistryClient;
  const pool = { members, client: () => client, close: () => undefined } as unknown as ClientPool;
  const recorder = new HistoryRecorder(path.join(dir, `${name}.jsonl`));
  const generator = new Generator({ recorder, pool, random: new Random(1), targets: 'random', transports: 'grpc', leader: () => null });
  const next = (requestId: string): Promise<Outcome<unknown>> => {
    calls.push(requestId);
    return Promise.resolve(script.shift() ?? { type: 'ok', value: null });
  };
  Object.assign(client, { register: (_ref: unknown, _metadata: unknown, requestId: string) => next(requestId) });
  return { generator, recorder, calls };
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
  const { generator, recorder, calls } = setup('bounded', [info, ...Array.from({ length: 20 }, () => fail)]);
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
