// Goal: a bench cell records how much CPU the systems not under test used while it ran (a ZooKeeper ensemble that
// lost its quorum spun at ~1.8 cores through the notify cells of the 2026-11-24 run, and nothing said so), and a
// system that stops serving is given a bounded time to come back and is stopped otherwise, so that it cannot spoil
// the other systems' later cells.
// Method: the runner samples real processes from /proc: a child that spins and a child that sleeps stand in for a
// busy and an idle bystander. The watch is driven with scripted systems (its seam: unhealthy() and stop()), since
// what it decides from their answers is the thing under test; the real clusters' unhealthy() checks run in
// bench-smoke.test.ts against real members.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { runClosedLoop, settle } from '../../bench/lib/runner.ts';
import { SystemWatch, type WatchedSystem } from '../../bench/lib/system-watch.ts';

async function child(code: string): Promise<ChildProcess> {
  const started = spawn(process.execPath, ['-e', code], { stdio: 'ignore' });
  await once(started, 'spawn');
  return started;
}

async function stop(started: ChildProcess): Promise<void> {
  if (started.exitCode !== null || started.signalCode !== null) return;
  const exited = once(started, 'exit');
  started.kill('SIGKILL');
  await exited;
}

const sleepMs = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

test('the runner measures the CPU of the bystanders over the window: a spinning one near a core, an idle one near none', async (t) => {
  const spinner = await child('for (;;) {}');
  const idler = await child('setInterval(() => {}, 1000)');
  t.after(async () => {
    await stop(spinner);
    await stop(idler);
  });
  const options = { clients: 1, durationMs: 1500, warmupMs: 200, memberPids: [] };
  const busy = await runClosedLoop(() => sleepMs(5), { ...options, bystanderPids: [spinner.pid!, idler.pid!] });
  // A spinning process gets at most one core; on two vCPUs shared with the other test files' clusters (npm test runs
  // two files at once) it still gets a fifth of one, while a process that wakes once a second uses next to nothing.
  assert.ok(busy.bystanderCores > 0.1 && busy.bystanderCores < 1.2, `busy bystanders: ${busy.bystanderCores} cores`);
  const quiet = await runClosedLoop(() => sleepMs(5), { ...options, bystanderPids: [idler.pid!] });
  assert.ok(quiet.bystanderCores >= 0 && quiet.bystanderCores < 0.05, `idle bystander: ${quiet.bystanderCores} cores`);
  const none = await runClosedLoop(() => sleepMs(5), options);
  assert.ok(Number.isNaN(none.bystanderCores), 'no bystanders: NaN, not 0');
  // A bystander gone before the window's end counts nothing rather than spoiling the sum.
  const gone = await child('setInterval(() => {}, 1000)');
  const vanishing = runClosedLoop(() => sleepMs(5), { ...options, bystanderPids: [gone.pid!, idler.pid!] });
  await sleepMs(600);
  await stop(gone);
  const result = await vanishing;
  assert.ok(Number.isFinite(result.bystanderCores) && result.bystanderCores < 0.05, `vanished bystander: ${result.bystanderCores}`);
});

test('a cell waits for a quiet machine: at once when it is, until the work ends when it ends, and not for ever', async (t) => {
  const idler = await child('setInterval(() => {}, 1000)');
  const spinner = await child('for (;;) {}');
  // Spins for about 700 ms of its own CPU time, then idles (CPU time, not wall time: on a loaded machine it gets less
  // than a core, and the quiet must come only once its work is done).
  const finisher = await child('const end = process.cpuUsage().user + 700_000; while (process.cpuUsage().user < end) {} setInterval(() => {}, 1000)');
  t.after(async () => {
    for (const started of [idler, spinner, finisher]) await stop(started);
  });
  const options = { coresMax: 0.05, windowMs: 200, waitMsMax: 1500 };
  const quiet = await settle([idler.pid!], options);
  assert.equal(quiet.quiet, true);
  assert.ok(quiet.waitedMs < 600, `an idle machine is quiet after one window: waited ${quiet.waitedMs} ms`);
  const busy = await settle([idler.pid!, spinner.pid!], options);
  assert.equal(busy.quiet, false, 'a spinning process never lets the machine go quiet');
  assert.ok(busy.waitedMs >= 1500 && busy.waitedMs < 3000, `gave up after waitMsMax: ${busy.waitedMs} ms`);
  assert.ok(busy.cores > 0.1, `the last window's CPU is reported: ${busy.cores}`);
  const later = await settle([finisher.pid!], { ...options, waitMsMax: 20_000 });
  assert.equal(later.quiet, true);
  assert.ok(later.waitedMs >= 400, `waited for the work to end: ${later.waitedMs} ms`);
});

/** Scripted is a system whose health answers come from a script, one per question (the last one repeats). */
class Scripted implements WatchedSystem {
  stops = 0;
  questions = 0;
  constructor(readonly system: string, private readonly answers: readonly (string | null | Error)[]) {}
  async unhealthy(): Promise<string | null> {
    const answer = this.answers[Math.min(this.questions, this.answers.length - 1)] ?? null;
    this.questions++;
    if (answer instanceof Error) throw answer;
    return answer;
  }
  async stop(): Promise<void> {
    this.stops++;
  }
}

test('the watch leaves serving systems alone, waits for one that comes back, and stops one that does not', async () => {
  const cairn = new Scripted('cairn', [null]);
  const etcd = new Scripted('etcd', ['etcd-2: health false', 'etcd-2: health false', null]);
  const zookeeper = new Scripted('zookeeper', ['zookeeper: modes leader, none, none', new Error('srvr: timeout')]);
  const watch = new SystemWatch([cairn, etcd, zookeeper], { recoveryMs: 400, pollMs: 50 });
  const events = await watch.check('beat c=16 zookeeper');
  assert.deepEqual(events.map((e) => [e.system, e.outcome]), [['etcd', 'recovered'], ['zookeeper', 'stopped']]);
  assert.match(events[0]!.detail, /^did not serve after beat c=16 zookeeper \(etcd-2: health false\); served again after \d+\.\d s$/);
  assert.match(events[1]!.detail, /^stopped after beat c=16 zookeeper: it did not serve for 0\.\d s \(srvr: timeout\)/);
  assert.equal(zookeeper.stops, 1);
  assert.equal(etcd.stops, 0);
  assert.equal(cairn.stops, 0);
  assert.equal(cairn.questions, 1, 'a serving system is asked once per check');
  assert.equal(watch.stoppedReason('zookeeper'), events[1]!.detail);
  assert.equal(watch.stoppedReason('etcd'), null);
  assert.deepEqual(watch.running().map((s) => s.system), ['cairn', 'etcd']);
  // A stopped system is not asked again, nor stopped twice.
  const asked = zookeeper.questions;
  assert.deepEqual(await watch.check('beat c=64 cairn-grpc'), []);
  assert.equal(zookeeper.questions, asked);
  assert.equal(zookeeper.stops, 1);
});
