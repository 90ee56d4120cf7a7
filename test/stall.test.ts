// Goal: the stall fence (src/stall.ts) refuses a write read while the member resumes from a stall, and only then:
// while its timer is overdue by more than the threshold, and for the grace after the timer saw the stall (at least
// graceMs, longer while the timer still fires late, at most graceMaxMs); never in normal running, never once stopped.
// Method: a StallWatch on a clock the test moves, its tick() called as its timer would; then one on the real clock
// whose event loop the test blocks for 1.3 s with a busy wait, as a long GC or a SIGSTOP would.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CairnError } from '../src/errors.ts';
import { StallWatch, type StallApi } from '../src/stall.ts';
import { sleep } from './support/cluster.ts';

function refusal(watch: StallWatch, api: StallApi = 'http', kind: 'write' | 'read' = 'write'): CairnError | null {
  try {
    if (kind === 'write') watch.fenceWrite(api);
    else watch.fenceRead(api);
    return null;
  } catch (error) {
    assert.ok(error instanceof CairnError, `a CairnError, got ${String(error)}`);
    return error;
  }
}

test('the fence refuses writes while the timer is overdue and during the grace after a stall, and serves them otherwise', (t) => {
  let now = 10_000;
  const stalls: number[] = [];
  const refusedApis: StallApi[] = [];
  const watch = new StallWatch({
    checkMs: 100, thresholdMs: 1000, graceMs: 500, now: () => now,
    onStall: (ms) => stalls.push(ms), onRefused: (api) => refusedApis.push(api),
  });
  assert.equal(refusal(watch), null, 'not started: nothing is refused');
  watch.start();
  t.after(() => watch.stop());

  // Normal running: the timer ticks every 100 ms (late by up to the threshold is no stall).
  for (let i = 0; i < 20; i++) {
    now += 100;
    watch.tick();
    assert.equal(refusal(watch), null);
  }
  now += 1000;
  assert.equal(refusal(watch), null, 'overdue by exactly the threshold is no stall');
  watch.tick();
  assert.deepEqual(stalls, []);

  // The loop stood still 1.5 s; a write read before the timer runs again is refused.
  now += 1500;
  const first = refusal(watch, 'grpc');
  assert.equal(first?.code, 'CAIRN_MEMBER_STALLED');
  assert.equal(first?.retryable, true);
  assert.equal(first?.details?.['stalledMs'], 1500);
  // The timer runs: the stall is seen and counted; the grace begins.
  watch.tick();
  assert.deepEqual(stalls, [1500]);
  assert.equal(watch.stalls(), 1);
  now += 499;
  assert.equal(refusal(watch, 'session')?.code, 'CAIRN_MEMBER_STALLED', 'within the grace');
  assert.equal(refusal(watch, 'session')?.details?.['stalledMs'], 1500, 'the refusal names the stall');
  now += 1;
  watch.tick();
  assert.equal(refusal(watch), null, 'the grace is over');
  assert.equal(watch.refused(), 3);
  assert.deepEqual(refusedApis, ['grpc', 'session', 'session']);

  // Stopped: nothing is refused, however long the silence.
  watch.stop();
  now += 60_000;
  assert.equal(refusal(watch), null);
});

test('reads are refused in the same window as writes, counted apart, and served otherwise', (t) => {
  let now = 70_000;
  const reads: StallApi[] = [];
  const writes: StallApi[] = [];
  const watch = new StallWatch({ checkMs: 100, thresholdMs: 1000, graceMs: 150, now: () => now, onRefused: (api) => writes.push(api), onReadRefused: (api) => reads.push(api) });
  watch.start();
  t.after(() => watch.stop());
  const readRefusal = (api: StallApi): CairnError | null => refusal(watch, api, 'read');
  now += 100;
  watch.tick();
  assert.equal(readRefusal('http'), null, 'a running member serves reads');
  now += 5000;
  const refused = readRefusal('grpc');
  assert.deepEqual([refused?.code, refused?.retryable, refused?.details?.['stalledMs']], ['CAIRN_MEMBER_STALLED', true, 5000]);
  assert.match(refused?.message ?? '', /out of date/);
  watch.tick();
  assert.equal(readRefusal('http')?.code, 'CAIRN_MEMBER_STALLED', 'within the grace');
  now += 100;
  watch.tick();
  now += 100;
  watch.tick();
  assert.equal(readRefusal('http'), null, 'after the grace');
  assert.deepEqual([reads, writes, watch.refused()], [['grpc', 'http'], [], 0], 'reads are counted apart from writes');
});

test('after a long stall the grace lasts while the timer still fires late (the loop draining its backlog), at most graceMaxMs', (t) => {
  let now = 50_000;
  const watch = new StallWatch({ checkMs: 100, thresholdMs: 1000, graceMs: 150, graceMaxMs: 3000, now: () => now });
  watch.start();
  t.after(() => watch.stop());
  now += 100;
  watch.tick();
  // A 38 s pause, then the loop drains what queued: its timer fires 300 ms apart for a while.
  now += 38_000;
  watch.tick();
  for (let i = 0; i < 4; i++) {
    now += 300;
    watch.tick();
    assert.equal(refusal(watch)?.code, 'CAIRN_MEMBER_STALLED', `${(i + 1) * 300} ms after the stall was seen, the loop still late`);
  }
  // The loop keeps time again: one tick on time is not enough, two in a row end the grace.
  now += 100;
  watch.tick();
  assert.equal(refusal(watch)?.code, 'CAIRN_MEMBER_STALLED', 'one tick on time');
  now += 100;
  watch.tick();
  assert.equal(refusal(watch), null, 'two ticks on time in a row: the backlog is drained, writes are served');

  // A short stall on a loop that keeps time at once: the least grace (150 ms) still holds, then it ends.
  now += 2000;
  watch.tick();
  now += 100;
  watch.tick();
  now += 40;
  assert.equal(refusal(watch)?.code, 'CAIRN_MEMBER_STALLED', 'within the least grace');
  now += 60;
  watch.tick();
  assert.equal(refusal(watch), null, 'on time twice and past the least grace');

  // A loop that never keeps time again (starved of CPU): the grace ends at graceMaxMs anyway.
  now += 2000;
  watch.tick();
  for (let elapsed = 0; elapsed < 2900; elapsed += 290) {
    now += 290;
    watch.tick();
    assert.equal(refusal(watch)?.code, 'CAIRN_MEMBER_STALLED');
  }
  now += 110;
  watch.tick();
  assert.equal(refusal(watch), null, 'served after graceMaxMs however late the timer');
});

test('a real event loop blocked for 1.3 s: a write read right after is refused, one read after the grace is served', async (t) => {
  const stalls: number[] = [];
  const watch = new StallWatch({ checkMs: 50, thresholdMs: 1000, graceMs: 300, onStall: (ms) => stalls.push(ms) });
  watch.start();
  t.after(() => watch.stop());
  await sleep(200);
  assert.equal(refusal(watch), null, 'a running loop serves writes');

  const blockedUntil = performance.now() + 1300;
  while (performance.now() < blockedUntil) {
    // Busy: the loop stands still, as under SIGSTOP or a long GC.
  }
  assert.equal(refusal(watch)?.code, 'CAIRN_MEMBER_STALLED', 'read in the same turn as the stall ends');
  // The next turns: the timer sees the stall and the grace holds.
  await new Promise<void>((resolve) => setImmediate(resolve));
  assert.equal(refusal(watch)?.code, 'CAIRN_MEMBER_STALLED', 'read in the next turn');
  await sleep(100);
  assert.equal(stalls.length, 1, `one stall seen, got ${stalls.join(', ')}`);
  assert.ok((stalls[0] ?? 0) >= 1300, `the stall lasted ${stalls[0]} ms`);
  await sleep(400);
  assert.equal(refusal(watch), null, 'after the grace, writes are served again');
});
