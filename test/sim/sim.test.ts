// Goal: the real RaftCore, driven through the Ready contract, keeps every safety invariant and converges after the
// faults stop, for seeds 1-100 of the deterministic simulator (STYLE.md §5). The invariants checked after every
// event are the Raft paper's five (Ongaro & Ousterhout 2014): Election Safety (§5.2), Leader Append-Only (§5.3),
// Log Matching (§5.3), Leader Completeness (§5.4.1), State Machine Safety (§5.4.3); plus Figure 2's "persist before
// responding", §5.4.2's current-term commit rule, byte-identical replicas, and linearizability of the clients'
// history (PEERS.md §3).
//
// Method: runSeed(seed) draws the scenario (cluster size 1-5, fault rates, workload) from the seed, runs a safety
// phase with faults and a liveness phase without, and reports clean, crash, safety or liveness. Seeds 101-300 run in
// sim-101-200.test.ts and sim-201-300.test.ts so that node --test runs the three files in parallel.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeFailures, runSeedRange } from './seed-range.ts';

test('seeds 1-100 run clean (Raft §5.2, §5.3, §5.4; thesis §4.2.2, §6.4)', () => {
  const report = runSeedRange(1, 100);
  assert.equal(report.failures.length, 0, `unclean seeds:\n${describeFailures(report.failures)}`);
});
