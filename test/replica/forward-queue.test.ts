// Goal: pin the ForwardQueue's rules with the calls replaced by recorders (the seam under it is the network, tested
// over real gRPC in forward-batch.test.ts): the writes of one turn leave together, in order, and each gets the answer
// at its index; a batch is cut at forwardBatchRequestsMax writes and at messageBytesMax of commands; the writes queued
// or in flight to one peer are bounded and the one beyond is refused at once, never sent; a sender that leaves a
// write unanswered or fails gives CAIRN_OUTCOME_UNKNOWN; close() answers what is queued; the time a write waited in
// the queue is taken off its deadline.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { ForwardQueue, type ForwardQueueLimits } from '../../src/replica/forward-queue.ts';
import type { ForwardRequest, ForwardResponse } from '../../src/replica/transport.ts';

const PEER = 'leader:1';

interface Recorder {
  readonly queue: ForwardQueue;
  readonly ones: ForwardRequest[];
  readonly batches: ForwardRequest[][];
}

function recorder(limits: ForwardQueueLimits, batch?: (requests: readonly ForwardRequest[], answer: (index: number, response: ForwardResponse) => void) => Promise<void>): Recorder {
  const ones: ForwardRequest[] = [];
  const batches: ForwardRequest[][] = [];
  const echo = (request: ForwardRequest): ForwardResponse => ({ ok: true, result: request.command, index: request.command[0] ?? 0 });
  const queue = new ForwardQueue({
    limits,
    sendOne: (_to, request) => {
      ones.push(request);
      return Promise.resolve(echo(request));
    },
    sendBatch: (_to, requests, answer) => {
      batches.push([...requests]);
      if (batch !== undefined) return batch(requests, answer);
      requests.forEach((request, i) => answer(i, echo(request)));
      return Promise.resolve();
    },
  });
  return { queue, ones, batches };
}

const roomy: ForwardQueueLimits = { forwardBatchRequestsMax: 256, messageBytesMax: 1 << 20, proposalsPendingMax: 1000 };

function write(i: number, bytes = 1, deadlineMs = 1000): ForwardRequest {
  const command = new Uint8Array(bytes);
  command[0] = i;
  return { command, deadlineMs };
}

describe('ForwardQueue', () => {
  test('the writes of one turn leave in one batch, in order, each answered at its index; a lone write goes alone', async () => {
    const r = recorder(roomy);
    const answers = await Promise.all([0, 1, 2, 3, 4].map((i) => r.queue.enqueue(PEER, write(i))));
    assert.deepStrictEqual(answers.map((answer) => (answer.ok ? answer.index : -1)), [0, 1, 2, 3, 4]);
    assert.equal(r.batches.length, 1);
    assert.deepStrictEqual(r.batches[0]?.map((request) => request.command[0]), [0, 1, 2, 3, 4]);
    const alone = await r.queue.enqueue(PEER, write(9));
    assert.ok(alone.ok && alone.index === 9);
    assert.equal(r.ones.length, 1);
    assert.equal(r.batches.length, 1);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(r.queue.pendingTo(PEER), 0, 'nothing pending once the calls are over');
  });

  test('a batch is cut at forwardBatchRequestsMax writes and at messageBytesMax of commands', async () => {
    const byCount = recorder({ ...roomy, forwardBatchRequestsMax: 4 });
    await Promise.all(Array.from({ length: 10 }, (_, i) => byCount.queue.enqueue(PEER, write(i))));
    assert.deepStrictEqual(byCount.batches.map((batch) => batch.length), [4, 4, 2]);

    const byBytes = recorder({ ...roomy, messageBytesMax: 100 });
    await Promise.all(Array.from({ length: 5 }, (_, i) => byBytes.queue.enqueue(PEER, write(i, 40))));
    assert.deepStrictEqual(byBytes.batches.map((batch) => batch.length), [2, 2], 'two of 40 bytes fit 100, a third does not');
    assert.equal(byBytes.ones.length, 1, 'the fifth is alone in its batch and goes in a Forward call');
  });

  test('the writes pending to one peer are bounded: the one beyond is refused at once and never sent', async () => {
    let finish: () => void = () => undefined;
    const held = new Promise<void>((resolve) => {
      finish = resolve;
    });
    const r = recorder({ ...roomy, proposalsPendingMax: 3 }, async (requests, answer) => {
      await held;
      requests.forEach((request, i) => answer(i, { ok: true, result: request.command, index: i }));
    });
    const accepted = [0, 1, 2].map((i) => r.queue.enqueue(PEER, write(i)));
    const refused = await r.queue.enqueue(PEER, write(3));
    assert.equal(refused.ok ? 'ok' : refused.code, 'CAIRN_UNCOMMITTED_BYTES_EXCEEDED');
    assert.equal(r.queue.enqueue('other:1', write(4)) instanceof Promise, true, 'the bound is per peer');
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(r.queue.pendingTo(PEER), 3, 'held in flight');
    finish();
    for (const answer of await Promise.all(accepted)) assert.ok(answer.ok);
    assert.deepStrictEqual(r.batches.flat().map((request) => request.command[0]), [0, 1, 2]);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(r.queue.pendingTo(PEER), 0);
  });

  test('a sender that leaves a write unanswered, or fails, gives CAIRN_OUTCOME_UNKNOWN; the answered keep their answers', async () => {
    const partial = recorder(roomy, (requests, answer) => {
      answer(0, { ok: true, result: requests[0]?.command ?? new Uint8Array(0), index: 7 });
      return Promise.resolve();
    });
    const [first, second] = await Promise.all([partial.queue.enqueue(PEER, write(0)), partial.queue.enqueue(PEER, write(1))]);
    assert.ok(first?.ok && first.index === 7);
    assert.equal(second?.ok ? 'ok' : second?.code, 'CAIRN_OUTCOME_UNKNOWN');

    const failing = recorder(roomy, () => Promise.reject(new Error('sender bug')));
    for (const answer of await Promise.all([failing.queue.enqueue(PEER, write(0)), failing.queue.enqueue(PEER, write(1))])) {
      assert.equal(answer.ok ? 'ok' : answer.code, 'CAIRN_OUTCOME_UNKNOWN');
      assert.match(answer.ok ? '' : answer.message, /sender bug/);
    }
  });

  test('close() answers the queued writes CAIRN_SHUTTING_DOWN and refuses new ones; nothing is sent', async () => {
    const r = recorder(roomy);
    const queued = [0, 1].map((i) => r.queue.enqueue(PEER, write(i)));
    r.queue.close();
    for (const answer of await Promise.all(queued)) assert.equal(answer.ok ? 'ok' : answer.code, 'CAIRN_SHUTTING_DOWN');
    const after = await r.queue.enqueue(PEER, write(2));
    assert.equal(after.ok ? 'ok' : after.code, 'CAIRN_SHUTTING_DOWN');
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(r.ones.length + r.batches.length, 0);
    assert.equal(r.queue.pendingTo(PEER), 0);
  });

  test('the time a write waited in the queue is taken off the deadline it is sent with', async () => {
    const r = recorder(roomy);
    const answers = [0, 1].map((i) => r.queue.enqueue(PEER, write(i, 1, 1000)));
    const until = performance.now() + 30;
    while (performance.now() < until) {
      // Hold the event loop, as a long turn would.
    }
    await Promise.all(answers);
    for (const request of r.batches[0] ?? []) assert.ok(request.deadlineMs <= 971 && request.deadlineMs >= 900, `sent with ${request.deadlineMs} ms left`);
  });
});
