// Goal: seeds 201-300 of the deterministic simulator run clean: no exception, every safety invariant holds after every
// event (Raft §5.2 Election Safety, §5.3 Log Matching and Leader Append-Only, §5.4 Leader Completeness and State
// Machine Safety, Figure 2 persistence before responding), the clients' history is linearizable, and the cluster
// converges once the faults stop.
//
// Method: the same as sim.test.ts (seeds 1-100), for another range of seeds; the ranges live in separate files so
// that node --test runs them in parallel.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeFailures, runSeedRange } from './seed-range.ts';

test('seeds 201-300 run clean (Raft §5.2, §5.3, §5.4; thesis §4.2.2, §6.4)', () => {
  const report = runSeedRange(201, 100);
  assert.equal(report.failures.length, 0, `unclean seeds:\n${describeFailures(report.failures)}`);
});
