// Goal: prove the simulator catches known bugs (positive controls), so that a clean run means something. Each control
// plants one bug and must be caught as a safety failure within a bounded number of seeds:
// - vote-without-persist (core): a vote granted but not written to the hard state; after a crash the voter votes
//   again in the same term, so two leaders can win it (Election Safety, Raft §5.2; Figure 2 "persist before
//   responding").
// - commit-prior-term (core): a leader commits an older term's entry by counting replicas (Raft §5.4.2, Figure 8), so
//   a later leader can overwrite a committed entry (Leader Completeness §5.4.1, State Machine Safety §5.4.3).
// - read-without-readindex (simulator): reads served from the picked member's state at once, without ReadIndex
//   (thesis §6.4), so stale reads break linearizability.
// - ack-before-sync (simulator driver): a Ready's messages leave before its writes are durable, so a crash loses
//   acknowledged entries (Figure 2; Leader Completeness §5.4.1).
//
// Method: for each control, scan seeds from 1 until the first safety failure and assert it comes within the bound.
// Bounds were measured (see FINDINGS.md, "Positive controls") and then set with a wide margin. Two modes are
// checked: with the direct checks of protocol rules (durable-before-send, commit-current-term), and end to end, where
// only their consequences (two leaders in a term, a committed entry lost, a non-linearizable history) can catch the
// bug. Each control's fault mix is also run without its bug, which must not fail safety: the mix alone is not what
// gets caught.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { BugName } from './scenario.ts';
import { describeFailures, firstSeedCaught, runSeedRange } from './seed-range.ts';

interface ControlBounds {
  readonly bug: BugName;
  /** directSeedsMax bounds the seeds needed with the direct checks on. */
  readonly directSeedsMax: number;
  /** endToEndSeedsMax bounds the seeds needed by the consequence checks alone, or null when they are too rare to assert. */
  readonly endToEndSeedsMax: number | null;
}

const controls: readonly ControlBounds[] = [
  { bug: 'vote-without-persist', directSeedsMax: 20, endToEndSeedsMax: 40 },
  { bug: 'commit-prior-term', directSeedsMax: 20, endToEndSeedsMax: null },
  { bug: 'read-without-readindex', directSeedsMax: 20, endToEndSeedsMax: 20 },
  { bug: 'ack-before-sync', directSeedsMax: 20, endToEndSeedsMax: 150 },
];

/** biasOnlySeeds is how many seeds of each control's fault mix run without the bug. */
const biasOnlySeeds = 10;

for (const control of controls) {
  describe(`positive control ${control.bug}`, () => {
    test(`caught as a safety failure within ${control.directSeedsMax} seeds`, () => {
      const caught = firstSeedCaught(1, control.directSeedsMax, 'safety', { bug: control.bug });
      assert.notEqual(caught, null, `${control.bug} was not caught in seeds 1-${control.directSeedsMax}`);
    });
    const endToEndSeedsMax = control.endToEndSeedsMax;
    if (endToEndSeedsMax !== null) {
      test(`caught end to end (consequence checks only) within ${endToEndSeedsMax} seeds`, () => {
        const caught = firstSeedCaught(1, endToEndSeedsMax, 'safety', { bug: control.bug, directChecks: false });
        assert.notEqual(caught, null, `${control.bug} was not caught end to end in seeds 1-${endToEndSeedsMax}`);
      });
    }
    test(`its fault mix without the bug fails no safety check (${biasOnlySeeds} seeds)`, () => {
      const report = runSeedRange(1, biasOnlySeeds, { bug: control.bug, plantBug: false });
      const unsafe = report.failures.filter((result) => result.outcome === 'safety' || result.outcome === 'crash');
      assert.equal(unsafe.length, 0, describeFailures(unsafe));
    });
  });
}
