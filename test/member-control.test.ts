// Goal: GET /cairn/v1/cluster reports what this member knows and nothing it does not: its own term and indexes, the
// leader's replication progress (matchIndex) for each follower, and null for another member's term, commit and
// applied index (an audit found the viewer's term reported for every member and a follower's match index passed off
// as its commit and applied index, which operations.md told operators to wait on).
// Method: clusterStatus over RaftStatus values as a leader, a follower and a learner-aware leader would report them.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clusterStatus } from '../src/member-control.ts';
import { limits } from '../src/limits.ts';
import type { RaftStatus } from '../src/raft/raft-core.ts';

const [a, b, c, d] = ['127.0.1.1:8848', '127.0.1.2:8848', '127.0.1.3:8848', '127.0.1.4:8848'];

function progress(match: number, ticksSinceHeard: number): RaftStatus['progress'][string] {
  return { match, next: match + 1, state: 'replicate', recentActive: true, ticksSinceHeard };
}

const base: RaftStatus = {
  id: a, role: 'leader', term: 9, vote: a, leader: a, commitIndex: 40, appliedIndex: 39, lastIndex: 42, snapshotIndex: 0,
  membership: { voters: [a, b, c], learners: [] }, ticksSinceLeaderContact: 0, progress: {},
};

test('on the leader: its own indexes, each follower\'s match index and contact, nothing made up', () => {
  const status = clusterStatus({ ...base, progress: { [b]: progress(42, 1), [c]: progress(17, 30) } }, a);
  assert.deepEqual(status, {
    leader: a, term: 9,
    members: [
      { addr: a, role: 'leader', term: 9, commitIndex: 40, appliedIndex: 39, matchIndex: 42, lastContactMs: 0 },
      { addr: b, role: 'follower', term: null, commitIndex: null, appliedIndex: null, matchIndex: 42, lastContactMs: limits.raftTickMs },
      { addr: c, role: 'follower', term: null, commitIndex: null, appliedIndex: null, matchIndex: 17, lastContactMs: 30 * limits.raftTickMs },
    ],
  });
});

test('on a follower: its own indexes, the leader\'s contact time, no indexes for anyone else; a learner is named', () => {
  const follower: RaftStatus = {
    ...base, id: b, role: 'follower', vote: a, commitIndex: 38, appliedIndex: 38, lastIndex: 40, ticksSinceLeaderContact: 2,
    membership: { voters: [a, b, c], learners: [d] },
  };
  const status = clusterStatus(follower, b);
  assert.deepEqual(status.members, [
    { addr: a, role: 'leader', term: null, commitIndex: null, appliedIndex: null, matchIndex: null, lastContactMs: 2 * limits.raftTickMs },
    { addr: b, role: 'follower', term: 9, commitIndex: 38, appliedIndex: 38, matchIndex: 40, lastContactMs: 0 },
    { addr: c, role: 'unknown', term: null, commitIndex: null, appliedIndex: null, matchIndex: null, lastContactMs: null },
    { addr: d, role: 'learner', term: null, commitIndex: null, appliedIndex: null, matchIndex: null, lastContactMs: null },
  ]);
});
