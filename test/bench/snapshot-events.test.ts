// Goal: the bench reads a Cairn member's snapshot counters (cairn_raft_snapshots_total, GET /metrics) exactly, and
// refuses a text without all three rather than reading a missing counter as zero. The real members' /metrics is read
// by test/bench/bench-smoke.test.ts; this pins the parser on the exposition format prom-client writes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseSnapshotEvents } from '../../bench/lib/clusters.ts';

const exposition = [
  '# HELP cairn_raft_snapshots_total Log compactions (compacted), images encoded for a follower behind the compacted log (image_encoded), snapshots installed from a leader (installed).',
  '# TYPE cairn_raft_snapshots_total counter',
  'cairn_raft_snapshots_total{event="compacted"} 7',
  'cairn_raft_snapshots_total{event="image_encoded"} 2',
  'cairn_raft_snapshots_total{event="installed"} 0',
  'cairn_raft_snapshot_index 73214',
  'cairn_raft_proposals_total{outcome="ok"} 90',
].join('\n');

test('the three snapshot counters are read from a member\'s /metrics text', () => {
  assert.deepEqual(parseSnapshotEvents(exposition), { compacted: 7, imagesEncoded: 2, installed: 0 });
});

test('a text without all three counters (a member of an older release) reads as null, not as zeros', () => {
  assert.equal(parseSnapshotEvents(''), null);
  assert.equal(parseSnapshotEvents(exposition.replace(/^cairn_raft_snapshots_total\{event="installed"\} 0$/m, '')), null);
  // A lookalike name is not the counter.
  assert.equal(parseSnapshotEvents(exposition.replaceAll('cairn_raft_snapshots_total{', 'cairn_raft_snapshots_totals{')), null);
});
