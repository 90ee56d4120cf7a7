// Goal: `npm run sim` reads its command line as documented in DESIGN.md (`--seeds N [--first-seed S]`, `--seed S`,
// also `--seed=S`, `--bug NAME`, `-v`), maps outcomes to distinct exit codes, and prints a reproduce command that
// replays the same run.
//
// Method: parse argument lists and compare with the expected options; render reproduce commands.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { exitCodes, parseArguments, reproduceCommand } from './cli-args.ts';

test('seed ranges, single seeds in both forms, bugs and verbosity', () => {
  assert.deepEqual(parseArguments(['--seeds', '300']), { firstSeed: 1, seeds: 300, bug: null, verbose: false, endToEnd: false, biasOnly: false, safetyMs: null });
  assert.equal(parseArguments(['--seeds', '10', '--first-seed', '500']).firstSeed, 500);
  assert.equal(parseArguments(['--seeds=10', '--first-seed=500']).seeds, 10);
  assert.deepEqual(parseArguments(['--seed', '7']), parseArguments(['--seed=7']));
  assert.equal(parseArguments(['--seed=7']).seeds, 1);
  const buggy = parseArguments(['--seed', '3', '--bug', 'commit-prior-term', '-v']);
  assert.equal(buggy.bug, 'commit-prior-term');
  assert.equal(buggy.verbose, true);
  assert.equal(parseArguments(['--seed', '3', '--safety-ms=20000']).safetyMs, 20000);
});

test('unknown arguments, unknown bugs and bad numbers are refused', () => {
  assert.throws(() => parseArguments(['--sed', '1']), /unknown argument/);
  assert.throws(() => parseArguments(['--bug', 'nope']), /unknown bug/);
  assert.throws(() => parseArguments(['--seed', '-1']), /non-negative integer/);
  assert.throws(() => parseArguments(['--seed']), /needs a value/);
});

test('distinct exit codes and a reproduce command', () => {
  assert.deepEqual(exitCodes, { clean: 0, crash: 1, safety: 2, liveness: 3 });
  assert.equal(reproduceCommand(42, { bug: null, endToEnd: false, biasOnly: false }), 'npm run sim -- --seed 42');
  assert.equal(reproduceCommand(42, { bug: 'ack-before-sync', endToEnd: true, biasOnly: false }), 'npm run sim -- --seed 42 --bug ack-before-sync --end-to-end');
});
