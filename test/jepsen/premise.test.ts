// Goal: a suite case that stops exercising what its title promises is reported, not passed over in silence. B3 is
// meant to have followers catch up through a leader's image; after the catch-up trail (session 29) its runs sent
// none until its snapshot interval was cut to 20 entries, and nothing said so. Method: B3's premise and premiseLines
// judged against crafted run results (only the fields they read), and B3's configuration read from the suite.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RunResults, SnapshotTotals } from '../../jepsen-like/report.ts';
import { defaultRunOptions } from '../../jepsen-like/runner.ts';
import { fullCases, premiseLines, type SuiteRow } from '../../jepsen-like/suite.ts';

const b3 = fullCases.find((c) => c.id === 'B3');

/** withSnapshots is a run's results with only `snapshots` set (the premise reads nothing else). */
function withSnapshots(snapshots: SnapshotTotals | undefined): RunResults {
  return (snapshots === undefined ? {} : { snapshots }) as unknown as RunResults;
}

test('B3 compacts every 20 entries and declares a premise: a follower installed an image', () => {
  assert.ok(b3 !== undefined && b3.premise !== undefined);
  assert.equal(b3.configure(defaultRunOptions()).snapshotEntries, 20);
  assert.equal(b3.premise(withSnapshots({ compacted: 21, imagesEncoded: 1, installed: 1, unread: 0 })), null);
  assert.match(b3.premise(withSnapshots({ compacted: 4, imagesEncoded: 0, installed: 0, unread: 0 })) ?? '', /^no follower installed an image \(4 compactions, 0 images encoded/);
  assert.match(b3.premise(withSnapshots(undefined)) ?? '', /snapshot counters were not read/);
});

test('premiseLines lists only the cases whose premise did not hold; the other cases declare none', () => {
  const row = (id: string, premiseUnmet: string | null): SuiteRow => ({ id, title: id, expect: 'valid', verdict: 'valid', passed: true, seconds: 1, dir: `/x/${id}`, reasons: [], premiseUnmet });
  assert.deepEqual(premiseLines([row('A1', null), row('B3', 'no follower installed an image (4 compactions)')]), ['premise not met (reported, not judged): B3: no follower installed an image (4 compactions)']);
  assert.deepEqual(premiseLines([row('A1', null)]), []);
  assert.deepEqual(fullCases.filter((c) => c.premise !== undefined).map((c) => c.id), ['B3']);
});
