// Goal: a jepsen-like run can be aborted (a test runner's timeout, Ctrl-C) and then leaves nothing behind. Before,
// node:test's timeout failed test/jepsen-ci.test.ts but the run went on, members and iptables rules included,
// until its own end; a run that hung would have held CI and the run lock for ever.
// Method: a real run (3 members on 127.0.0.11-13, this harness's reserved range; partitions every ~1 s for 6-8 s)
// is aborted 4 s after its workload started, while a partition is in force (asserted: tagged rules exist). runTest
// must reject with RunAbortedError within a bound, every member process it started must be dead, no rule carrying
// the harness's tag may remain, and the run lock must be free. A signal aborted before the call starts nothing.
// Partitions need iptables: without it the test is skipped with the reason, or fails when CAIRN_REQUIRE_ALL=1.

import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { pidFile } from '../../jepsen-like/control.ts';
import { taggedRules } from '../../jepsen-like/iptables.ts';
import { acquireRunLock } from '../../jepsen-like/lock.ts';
import { defaultRunOptions, RunAbortedError, runTest, type RunOptions } from '../../jepsen-like/runner.ts';
import { processAlive } from '../support/cluster.ts';
import { requireIptables } from '../support/iptables.ts';

function options(): RunOptions {
  const base = defaultRunOptions();
  return {
    ...base,
    name: 'abort',
    nodes: 3,
    timeSeconds: 60,
    seed: 303,
    nemesis: { ...base.nemesis, kinds: ['partition'], partitionModes: ['halves', 'leader'], faultMs: [6000, 8000], quietMs: [500, 1000] },
  };
}

test('an aborted run kills its members, removes its rules and frees the lock, without checking the history', { timeout: 120_000 }, async (t) => {
  if (!requireIptables(t)) return;
  const controller = new AbortController();
  let rulesAtAbort = -1;
  let abortedAt = 0;
  let workloadStarted = false;
  const lines: string[] = [];
  const run = runTest(options(), (line) => {
    lines.push(line);
    t.diagnostic(line);
    if (workloadStarted || !line.startsWith('running ')) return;
    workloadStarted = true;
    setTimeout(() => {
      rulesAtAbort = taggedRules().length;
      abortedAt = Date.now();
      controller.abort(new Error('test abort'));
    }, 4000);
  }, controller.signal);
  await assert.rejects(run, (error: unknown) => {
    assert.ok(error instanceof RunAbortedError, `RunAbortedError, got ${String(error)}`);
    assert.match(error.message, /aborted \(test abort\); its members were killed and its rules removed; the history was not checked/);
    return true;
  });
  const tookMs = Date.now() - abortedAt;
  assert.ok(workloadStarted, 'the workload started before the abort');
  assert.ok(rulesAtAbort > 0, `a partition was in force when the run was aborted (${rulesAtAbort} tagged rules)`);
  assert.ok(tookMs < 15_000, `runTest ended ${tookMs} ms after the abort`);
  // The run's own tasks (workers, nemesis, main phases) ended too, before the lock was released.
  assert.ok(lines.some((line) => line.startsWith('aborted: members killed, rules removed (')), `the run's tasks ended: ${lines.filter((line) => line.startsWith('aborted')).join('; ')}`);
  assert.equal(lines.includes('checking the history'), false, 'the history of an aborted run is not checked');
  assert.deepEqual(taggedRules(), [], 'no rule with the harness tag is left');
  const pids = existsSync(pidFile) ? readFileSync(pidFile, 'utf8').split('\n').map(Number).filter((n) => n > 0) : [];
  assert.ok(pids.length >= 3, `the pid file names the run's members (${pids.length})`);
  for (const pid of pids) assert.equal(processAlive(pid), false, `member pid ${pid} is dead`);
  const release = await acquireRunLock(0, () => undefined);
  release();
});

test('a signal aborted before the run starts nothing', { timeout: 30_000 }, async (t) => {
  if (!requireIptables(t)) return;
  const controller = new AbortController();
  controller.abort(new Error('early'));
  const lines: string[] = [];
  await assert.rejects(runTest(options(), (line) => lines.push(line), controller.signal), /early/);
  assert.deepEqual(lines.filter((line) => line.startsWith('starting ')), [], 'no member was started');
});
