// Goal: one seed decides everything (STYLE.md §5; TigerBeetle's VOPR, FoundationDB's simulation): running a seed twice
// gives the same run, event for event, so any failure replays exactly from `npm run sim -- --seed S`.
//
// Method: run seeds twice in one process (a clean one, the first one a planted bug makes fail, one with the full
// trace on) and compare the trace digest (every event's time, kind and node, folded into 64 bits), the outcome, the message
// and the counters; also check that different seeds give different runs, so the digest is not trivially constant.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { firstSeedCaught } from './seed-range.ts';
import { runSeed, type RunOptions, type SeedResult } from './simulator.ts';

function fingerprint(result: SeedResult): string {
  const { stats } = result;
  const counters = [stats.events, stats.elections, stats.commits, stats.okWrites, stats.okReads, stats.compactions].join(',');
  return `${result.digest} ${result.outcome} ${counters} ${stats.faultSummary()} ${result.message.split('\n')[0] ?? ''}`;
}

function assertReplays(seed: number, options: RunOptions): SeedResult {
  const first = runSeed(seed, options);
  const second = runSeed(seed, options);
  assert.equal(fingerprint(second), fingerprint(first), `seed ${seed} did not replay identically`);
  return first;
}

test('a clean seed replays identically', () => {
  const result = assertReplays(7, {});
  assert.equal(result.outcome, 'clean', result.message);
  assert.ok(result.stats.events > 1000, 'the run did something');
});

test('a failing seed replays identically, failure included', () => {
  const failing = firstSeedCaught(1, 20, 'safety', { bug: 'commit-prior-term' });
  assert.ok(failing !== null, 'a planted bug fails some seed');
  const result = assertReplays(failing.seed, { bug: 'commit-prior-term' });
  assert.equal(result.outcome, 'safety');
});

test('the trace does not change the run', () => {
  const lines: string[] = [];
  const traced = runSeed(11, { trace: 'full', traceSink: (line) => lines.push(line) });
  const untraced = runSeed(11, {});
  assert.equal(fingerprint(traced), fingerprint(untraced));
  assert.ok(lines.length > 100, 'the full trace has lines');
});

test('different seeds give different runs', () => {
  const digests = new Set([1, 2, 3, 4, 5].map((seed) => runSeed(seed, {}).digest));
  assert.equal(digests.size, 5);
});
