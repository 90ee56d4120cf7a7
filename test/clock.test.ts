// Goal: the steady wall clock (src/clock.ts) that AP versions and expiry read does not step when the system clock
// steps, follows it by slewing at most slewRate of elapsed time, never goes back, and reads whole milliseconds;
// grpcDeadline turns a monotonic deadline into a wall-clock instant that keeps the remaining time.
// Method: a SteadyWallClock over stubbed wall and monotonic clocks (the seam: the real ones cannot be stepped in
// process; test/cluster/clock-step.test.ts steps a real member's clock with libfaketime).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SteadyWallClock, grpcDeadline, monotonicMs, slewRate, steadyWallMs } from '../src/clock.ts';

/** stubs returns settable wall and monotonic clocks. */
function stubs(wallStart: number): { wall: { ms: number }; mono: { ms: number }; clock: SteadyWallClock } {
  const wall = { ms: wallStart };
  const mono = { ms: 1000 };
  return { wall, mono, clock: new SteadyWallClock(() => wall.ms, () => mono.ms) };
}

/** advance moves both clocks by `ms`, as time passing does. */
function advance(state: { wall: { ms: number }; mono: { ms: number } }, ms: number): void {
  state.wall.ms += ms;
  state.mono.ms += ms;
}

test('without a step the steady clock reads the wall clock', () => {
  const state = stubs(1_700_000_000_000);
  assert.equal(state.clock.now(), 1_700_000_000_000);
  for (let i = 0; i < 100; i++) {
    advance(state, 37);
    assert.equal(state.clock.now(), state.wall.ms);
  }
  assert.equal(state.clock.offsetMs(), 0);
});

test('a forward step of the wall clock is followed only by slewing', () => {
  const state = stubs(1_700_000_000_000);
  state.clock.now();
  state.wall.ms += 60_000;
  // At the moment of the step nothing moved.
  assert.equal(state.clock.now(), 1_700_000_000_000);
  assert.equal(state.clock.offsetMs(), 60_000);
  // 10 s later: 10 s plus at most slewRate of them.
  advance(state, 10_000);
  const after = state.clock.now();
  assert.equal(after, 1_700_000_000_000 + 10_000 + 10_000 * slewRate);
  // The offset shrinks by slewRate of the elapsed time until it is gone: 60 s / slewRate of elapsed time.
  let steps = 0;
  while (state.clock.offsetMs() > 0 && steps++ < 100_000) advance(state, 1000);
  const elapsed = state.mono.ms - 1000;
  assert.ok(Math.abs(elapsed - 60_000 / slewRate) <= 1000, `absorbed after ${elapsed} ms`);
  assert.equal(state.clock.now(), state.wall.ms);
});

test('a backward step never makes the clock go back, and durations stay within slewRate of the truth', () => {
  const state = stubs(1_700_000_000_000);
  let last = state.clock.now();
  state.wall.ms -= 3_600_000;
  for (let i = 0; i < 1000; i++) {
    advance(state, 250);
    const now = state.clock.now();
    assert.ok(now >= last, `went back: ${now} < ${last}`);
    assert.ok(now - last >= 250 * (1 - slewRate) - 1 && now - last <= 250 + 1, `a 250 ms interval read as ${now - last} ms`);
    last = now;
  }
  assert.ok(state.clock.offsetMs() < 0, 'still slewing back an hour');
});

test('readings are whole milliseconds and a monotonic clock that went back counts as no time', () => {
  const state = stubs(1_700_000_000_000);
  state.clock.now();
  state.mono.ms += 0.4;
  state.wall.ms += 0.4;
  assert.ok(Number.isInteger(state.clock.now()));
  state.mono.ms -= 5;
  const before = state.clock.now();
  assert.equal(state.clock.now(), before);
});

test('a strobing wall clock moves the steady clock by at most slewRate of elapsed time', () => {
  const state = stubs(1_700_000_000_000);
  const start = state.clock.now();
  for (let i = 0; i < 200; i++) {
    advance(state, 500);
    state.wall.ms += i % 2 === 0 ? 30_000 : -30_000;
    state.clock.now();
  }
  const elapsed = 200 * 500;
  const read = state.clock.now() - start;
  assert.ok(Math.abs(read - elapsed) <= elapsed * slewRate + 1, `read ${read} ms for ${elapsed} ms`);
});

test('grpcDeadline keeps the remaining time of a monotonic deadline; the process clock reads epoch time', () => {
  const deadline = monotonicMs() + 5000;
  const wall = grpcDeadline(deadline);
  assert.ok(Math.abs(wall - Date.now() - 5000) <= 50, `${wall - Date.now()} ms left`);
  assert.ok(grpcDeadline(monotonicMs() - 1000) <= Date.now() + 1, 'a passed deadline is now');
  assert.ok(Math.abs(steadyWallMs() - Date.now()) <= 50);
});
