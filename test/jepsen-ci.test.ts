// Goal: keep the jepsen-like harness honest in CI, in both directions. A short run of the safe configuration under
// real faults must be judged valid (the harness does not cry wolf on a correct Cairn), and a run of the planted
// stale-read bug (--unsafe-local-reads) must be judged invalid by the linearizability checker (the harness can see
// the bug it exists to find: Jepsen's positive control, PEERS.md §2.3 A3).
//
// Method: the runner is imported and driven programmatically (no shell), with the CI suite's two cases
// (jepsen-like/suite.ts), each on 3 real member processes on 127.0.0.11-13 (this harness's reserved range) for a
// short time, about 100 s together. (1) set + register under partitions and kill -9 with restarts: the verdict
// must be valid, with no member dying by itself. (2) register with --unsafe-local-reads while the leader is
// isolated for 7-9 s at a time (reads keep reaching the old leader, which answers from its frozen state, while the
// majority elects a new leader and acknowledges writes): the verdict must be invalid, because the register history
// is not linearizable, not because of anything else. Partitions need iptables: without it the test is skipped with
// the reason, or fails when CAIRN_REQUIRE_ALL=1 (rules match member cgroups when cgroup v2 is there, member
// addresses otherwise). Each run gets the test's signal: when the test times out, the run is aborted (members killed,
// rules removed, its tasks ended) instead of going on after the failure.

import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { iptablesProblem } from '../jepsen-like/iptables.ts';
import { defaultRunOptions, runTest, type RunOptions } from '../jepsen-like/runner.ts';
import { ciCases } from '../jepsen-like/suite.ts';

/** prerequisites returns true when partitions can be made; otherwise skips, or fails under CAIRN_REQUIRE_ALL=1. */
function prerequisites(t: TestContext): boolean {
  const problem = iptablesProblem();
  if (problem === null) return true;
  const reason = `the jepsen-like partitions need iptables (install the Debian package iptables): ${problem}`;
  if (process.env['CAIRN_REQUIRE_ALL'] === '1') throw new Error(`CAIRN_REQUIRE_ALL=1: ${reason}`);
  t.skip(reason);
  return false;
}

function caseOptions(id: string, timeSeconds: number, seed: number): RunOptions {
  const suiteCase = ciCases.find((candidate) => candidate.id === id);
  if (suiteCase === undefined) throw new Error(`no CI case ${id}`);
  return suiteCase.configure({ ...defaultRunOptions(), timeSeconds, seed, checkTimeoutSeconds: 60 });
}

test('a safe cluster under partitions and kills is judged valid', { timeout: 150_000 }, async (t) => {
  if (!prerequisites(t)) return;
  const result = await runTest(caseOptions('ci-safe', 40, 101), (line) => t.diagnostic(line), t.signal);
  for (const line of result.summary) t.diagnostic(line);
  assert.equal(result.results.unexpectedExits.length, 0, `members died: ${result.results.unexpectedExits.join('; ')}`);
  assert.equal(result.verdict, 'valid', `the safe run was judged invalid (${result.dir}): ${result.reasons.join('; ')}`);
  assert.ok(Object.keys(result.results.faults).length > 0, 'no fault was injected');
});

test('positive control: --unsafe-local-reads with an isolated leader is judged invalid (stale reads)', { timeout: 120_000 }, async (t) => {
  if (!prerequisites(t)) return;
  const result = await runTest(caseOptions('ci-stale-control', 20, 202), (line) => t.diagnostic(line), t.signal);
  for (const line of result.summary) t.diagnostic(line);
  assert.equal(result.verdict, 'invalid', `the planted stale-read bug went unnoticed (${result.dir})`);
  assert.equal(result.results.linearizability?.result, 'illegal', `invalid for another reason than a non-linearizable history: ${result.reasons.join('; ')}`);
});
