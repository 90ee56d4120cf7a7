// Goal: the bench's run-queue figures (bench/lib/processes.ts schedOf/schedDelta, the runner's `sched`) tell time
// spent working from time spent waiting for a CPU, so that a latency can be said to be contention, with evidence.
// Method: real processes read from /proc. Two children that spin, both pinned to one CPU with taskset, must each
// wait for it about as long as they run; a child that sleeps waits for nothing. schedDelta's bookkeeping of threads
// that start or end between two samples is checked on hand-made samples (the seam: what /proc returned).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { schedDelta, schedOf, type ThreadSched } from '../../bench/lib/processes.ts';
import { runClosedLoop } from '../../bench/lib/runner.ts';

const sleepMs = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function child(args: readonly string[]): Promise<ChildProcess> {
  const started = spawn(args[0]!, args.slice(1), { stdio: 'ignore' });
  await once(started, 'spawn');
  return started;
}

async function stop(started: ChildProcess): Promise<void> {
  if (started.exitCode !== null || started.signalCode !== null) return;
  const exited = once(started, 'exit');
  started.kill('SIGKILL');
  await exited;
}

const tasksetMissing = spawnSync('taskset', ['--version'], { stdio: 'ignore' }).error !== undefined;

test('two spinners pinned to one CPU each wait for it about as long as they run; a sleeper waits for nothing', { skip: tasksetMissing && process.env['CAIRN_REQUIRE_ALL'] !== '1' ? 'taskset missing: apt-get install util-linux' : false }, async () => {
  const spin = ['taskset', '-c', '0', process.execPath, '-e', 'for (;;) {}'];
  const spinners = [await child(spin), await child(spin)];
  const sleeper = await child([process.execPath, '-e', 'setTimeout(() => {}, 60000)']);
  try {
    await sleepMs(300); // past node's start-up
    const pids = [...spinners.map((c) => c.pid!), sleeper.pid!];
    const before = await Promise.all(pids.map((pid) => schedOf(pid)));
    const startedMs = performance.now();
    await sleepMs(1000);
    const after = await Promise.all(pids.map((pid) => schedOf(pid)));
    const elapsedNs = (performance.now() - startedMs) * 1e6;
    for (const sample of [...before, ...after]) assert.ok(sample.size >= 1, 'every child has threads to read');
    const [a, b, idle] = pids.map((_pid, i) => schedDelta(before[i]!, after[i]!));
    for (const [name, spinner] of [['first', a!], ['second', b!]] as const) {
      // Sharing one CPU, each gets at most about half of it and waits the rest (more if other work shares CPU 0).
      assert.ok(spinner.runNs > 0.15 * elapsedNs && spinner.runNs < 0.75 * elapsedNs, `${name} spinner ran ${spinner.runNs / 1e6} ms of ${elapsedNs / 1e6}`);
      assert.ok(spinner.waitNs > 0.2 * elapsedNs, `${name} spinner waited ${spinner.waitNs / 1e6} ms of ${elapsedNs / 1e6}`);
      assert.ok(spinner.slices >= 2, `${name} spinner was put on the CPU more than once (${spinner.slices})`);
    }
    assert.ok(idle!.runNs < 0.05 * elapsedNs && idle!.waitNs < 0.05 * elapsedNs, `the sleeper: ${JSON.stringify(idle)}`);
  } finally {
    for (const started of [...spinners, sleeper]) await stop(started);
  }
});

test('schedDelta counts a thread in both samples by its difference, a new thread whole, and an ended one not at all', () => {
  const at = (runNs: number, waitNs: number, slices: number): ThreadSched => ({ runNs, waitNs, slices });
  const before = new Map([[1, at(100, 10, 5)], [2, at(50, 5, 2)]]);
  const after = new Map([[1, at(160, 30, 9)], [3, at(7, 1, 1)]]);
  assert.deepEqual(schedDelta(before, after), { runNs: 60 + 7, waitNs: 20 + 1, slices: 4 + 1 });
  assert.deepEqual(schedDelta(new Map(), new Map()), { runNs: 0, waitNs: 0, slices: 0 });
});

test('schedOf of a process that is gone reads nothing, and the runner reports NaN for it rather than zero', async () => {
  const gone = await child([process.execPath, '-e', '']);
  await once(gone, 'exit');
  assert.equal((await schedOf(gone.pid!)).size, 0);
  const result = await runClosedLoop(async () => sleepMs(2), { clients: 1, durationMs: 200, warmupMs: 20, memberPids: [gone.pid!, process.pid] });
  assert.ok(result.sched !== undefined);
  assert.ok(Number.isNaN(result.sched.membersWaitUs[0]!), `the gone member: ${JSON.stringify(result.sched)}`);
  assert.ok(Number.isFinite(result.sched.membersWaitUs[1]!) && result.sched.membersSlices[1]! > 0, `the live member: ${JSON.stringify(result.sched)}`);
  assert.ok(result.sched.clientSlices > 0);
  // The main thread (thread id = pid) is one of the process's threads: counted in, and never above, the whole.
  assert.ok(Number.isNaN(result.sched.membersMainWaitUs[0]!), 'the gone member has no main thread to read');
  assert.ok(result.sched.membersMainSlices[1]! > 0 && result.sched.membersMainSlices[1]! <= result.sched.membersSlices[1]!, JSON.stringify(result.sched));
  assert.ok(result.sched.clientMainSlices > 0 && result.sched.clientMainSlices <= result.sched.clientSlices, JSON.stringify(result.sched));
  assert.ok(result.sched.clientMainWaitUs >= 0 && result.sched.clientMainWaitUs <= result.sched.clientWaitUs, JSON.stringify(result.sched));
});
