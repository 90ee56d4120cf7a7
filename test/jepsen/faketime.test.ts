// Goal: the clock nemesis's machinery (jepsen-like/faketime.ts, PEERS.md §2.3 A12) does what the harness relies on.
// The control-file writer: a new file holds "+0"; each write replaces it whole with the offset as libfaketime reads
// it ("+30", "-30", "+0"), writes land in the order asked even when not awaited, nothing is left beside it, and an
// offset that is not whole seconds within the bound is refused without touching the file. The environment: libfaketime
// preloaded with the control file and a one-second reread; FAKETIME_DONT_FAKE_MONOTONIC only in wall mode; combined
// with the fsync journal's preload, both libraries load. Without the library, the prerequisite message names the
// Debian packages. And the real thing: a `node` process started with that environment, whose control file then says
// "+30", shows Date.now() 30 s ahead within a few seconds while performance.now() and process.hrtime do not move
// (wall mode), and all three move (monotonic mode).
// Method: files in a temporary directory; child `node` processes under libfaketime that print their clocks every
// 100 ms, compared with this process's clocks. The real-process tests are skipped without libfaketime (reason:
// apt-get install faketime libfaketime), and fail instead under CAIRN_REQUIRE_ALL=1.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, describe, test, type TestContext } from 'node:test';
import { ClockControlFile, faketimeAdvice, faketimeEnvironment, faketimeLibrary, faketimeProblem, formatOffset, mergeEnvironments, type ClockMode } from '../../jepsen-like/faketime.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'cairn-faketime-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('ClockControlFile', () => {
  test('starts at +0 and holds each offset as libfaketime reads it', async () => {
    const file = new ClockControlFile(path.join(dir, 'a'));
    assert.equal(readFileSync(file.path, 'utf8'), '+0\n');
    assert.equal(await file.set(30), '+30');
    assert.equal(readFileSync(file.path, 'utf8'), '+30\n');
    assert.equal(await file.set(-30), '-30');
    assert.equal(readFileSync(file.path, 'utf8'), '-30\n');
    assert.equal(file.offsetSeconds, -30);
    assert.equal(await file.set(0), '+0');
    assert.equal(readFileSync(file.path, 'utf8'), '+0\n');
  });

  test('writes not awaited land in the order asked; nothing is left beside the file', async () => {
    const file = new ClockControlFile(path.join(dir, 'b'));
    const writes = [5, -7, 12, -90, 44].map((seconds) => file.set(seconds));
    assert.equal(file.offsetSeconds, 44, 'the offset asked for last is the one reported at once');
    await Promise.all(writes);
    assert.equal(readFileSync(file.path, 'utf8'), '+44\n');
    assert.deepEqual(readdirSync(dir).filter((name) => name.startsWith('.b')), []);
  });

  test('an offset that is not whole seconds within a day is refused and the file left alone', async () => {
    const file = new ClockControlFile(path.join(dir, 'c'));
    await file.set(3);
    assert.throws(() => file.set(1.5), RangeError);
    assert.throws(() => file.set(86_401), RangeError);
    assert.equal(readFileSync(file.path, 'utf8'), '+3\n');
    assert.equal(file.offsetSeconds, 3);
    assert.equal(formatOffset(-2), '-2');
    assert.equal(formatOffset(0), '+0');
  });
});

describe('environment', () => {
  test('wall mode fakes only CLOCK_REALTIME; monotonic mode fakes both', () => {
    const wall = faketimeEnvironment({ library: faketimeLibrary, mode: 'wall' }, '/x/ctl');
    assert.deepEqual(wall, { LD_PRELOAD: faketimeLibrary, FAKETIME_TIMESTAMP_FILE: '/x/ctl', FAKETIME_CACHE_DURATION: '1', FAKETIME_DONT_FAKE_MONOTONIC: '1' });
    const monotonic = faketimeEnvironment({ library: faketimeLibrary, mode: 'monotonic' }, '/x/ctl');
    assert.equal(monotonic['FAKETIME_DONT_FAKE_MONOTONIC'], undefined);
    assert.equal(monotonic['FAKETIME_TIMESTAMP_FILE'], '/x/ctl');
  });

  test('with the fsync journal both libraries are preloaded', () => {
    const merged = mergeEnvironments({ LD_PRELOAD: '/run/journal.so', CAIRN_FSYNC_JOURNAL: '/j' }, faketimeEnvironment({ library: faketimeLibrary, mode: 'wall' }, '/c'));
    assert.equal(merged['LD_PRELOAD'], `/run/journal.so:${faketimeLibrary}`);
    assert.equal(merged['CAIRN_FSYNC_JOURNAL'], '/j');
    assert.equal(merged['FAKETIME_TIMESTAMP_FILE'], '/c');
    assert.deepEqual(mergeEnvironments({}, {}), {});
  });

  test('without the library the prerequisite names the Debian packages', () => {
    const problem = faketimeProblem(path.join(dir, 'no-such-library.so'));
    assert.match(problem ?? '', /apt-get install faketime libfaketime/);
    assert.equal(faketimeAdvice, 'apt-get install faketime libfaketime');
  });
});

/** requireFaketime: true when libfaketime is installed; otherwise fails under CAIRN_REQUIRE_ALL=1, else skips. */
function requireFaketime(t: TestContext): boolean {
  const problem = faketimeProblem();
  if (problem === null) return true;
  if (process.env['CAIRN_REQUIRE_ALL'] === '1') throw new Error(`CAIRN_REQUIRE_ALL=1: ${problem}`);
  t.skip(problem);
  return false;
}

/** Sample is one line of the child: its three clocks, and this process's clocks when the line arrived. */
interface Sample {
  readonly wall: number;
  readonly mono: number;
  readonly hrtime: number;
  readonly ourWall: number;
  readonly ourMono: number;
}

const childScript = "setInterval(() => { process.stdout.write(JSON.stringify({ wall: Date.now(), mono: performance.now(), hrtime: Number(process.hrtime.bigint()) / 1e6 }) + '\\n'); }, 100);";
/** moveBoundMs: libfaketime rereads the file within a second; a loaded machine gets four more. */
const moveBoundMs = 5000;

/**
 * clockShift starts `node` under libfaketime in `mode`, writes +30 into its control file, and returns how far each of
 * the child's clocks moved against ours (seconds): the wall clock's lead, and the monotonic clocks' gain.
 */
async function clockShift(mode: ClockMode): Promise<{ wall: number; mono: number; hrtime: number }> {
  const file = new ClockControlFile(path.join(dir, `child-${mode}`));
  const child = spawn(process.execPath, ['-e', childScript], { env: { ...process.env, ...faketimeEnvironment({ library: faketimeLibrary, mode }, file.path) }, stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const samples = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const next = async (): Promise<Sample> => {
      const line = await samples.next();
      if (line.done === true) throw new Error(`the child under libfaketime (${mode}) ended`);
      const value = JSON.parse(String(line.value)) as { wall: number; mono: number; hrtime: number };
      return { ...value, ourWall: Date.now(), ourMono: performance.now() };
    };
    const before = await next();
    assert.ok(Math.abs(before.wall - before.ourWall) < 2000, `the child's wall clock starts right (${before.wall - before.ourWall} ms off)`);
    await file.set(30);
    const written = performance.now();
    let sample = before;
    for (let round = 0; round < 200 && sample.wall - sample.ourWall < 25_000; round++) {
      if (performance.now() - written > moveBoundMs) throw new Error(`the child's wall clock did not move within ${moveBoundMs} ms of writing +30 (${mode})`);
      sample = await next();
    }
    // One more sample: the jump shows in every clock at the same libfaketime reread.
    sample = await next();
    const ourElapsed = sample.ourMono - before.ourMono;
    return {
      wall: (sample.wall - sample.ourWall) / 1000,
      mono: (sample.mono - before.mono - ourElapsed) / 1000,
      hrtime: (sample.hrtime - before.hrtime - ourElapsed) / 1000,
    };
  } finally {
    // By pid, the child only; its monotonic clock is never set back (that would freeze its timers).
    if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGKILL');
  }
}

test('wall mode: +30 in the control file moves Date.now() 30 s ahead, performance.now() and hrtime not at all', { timeout: 30_000 }, async (t) => {
  if (!requireFaketime(t)) return;
  assert.ok(existsSync(faketimeLibrary));
  const shift = await clockShift('wall');
  t.diagnostic(`wall lead ${shift.wall} s, monotonic gain ${shift.mono} s, hrtime gain ${shift.hrtime} s`);
  assert.ok(Math.abs(shift.wall - 30) < 1.5, `Date.now() leads by ${shift.wall} s`);
  assert.ok(Math.abs(shift.mono) < 1.5, `performance.now() gained ${shift.mono} s`);
  assert.ok(Math.abs(shift.hrtime) < 1.5, `process.hrtime gained ${shift.hrtime} s`);
});

test('monotonic mode: +30 in the control file moves Date.now(), performance.now() and hrtime 30 s ahead', { timeout: 30_000 }, async (t) => {
  if (!requireFaketime(t)) return;
  const shift = await clockShift('monotonic');
  t.diagnostic(`wall lead ${shift.wall} s, monotonic gain ${shift.mono} s, hrtime gain ${shift.hrtime} s`);
  assert.ok(Math.abs(shift.wall - 30) < 1.5, `Date.now() leads by ${shift.wall} s`);
  assert.ok(Math.abs(shift.mono - 30) < 1.5, `performance.now() gained ${shift.mono} s`);
  assert.ok(Math.abs(shift.hrtime - 30) < 1.5, `process.hrtime gained ${shift.hrtime} s`);
});
