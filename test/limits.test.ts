// Goal: the limits Cairn runs with are consistent (STYLE.md §3: "the relations between limits are asserted at
// start-up"), and every relation is really checked, so a future edit that breaks one fails loudly and by name.
// Method: the real limits pass assertLimitRelations; then, for each relation, a copy of the limits is broken on
// purpose by a table of minimal edits and the error must name that relation. A coverage test makes the table list
// every relation, so a relation added without a breaking case fails here. The Raft limits are also checked against
// the RaftConfig fields they feed, and the AP timings against Nacos's defaults.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RaftConfig } from '../src/raft/types.ts';
import {
  LimitRelationError,
  assertLimitRelations,
  brokenLimitRelations,
  limitRelations,
  limits,
  type Limits,
} from '../src/limits.ts';

/** described is how brokenLimitRelations describes a broken relation. */
function described(name: string): string {
  const relation = limitRelations.find((candidate) => candidate.name === name);
  assert.ok(relation !== undefined, `no relation ${name}`);
  return `${relation.name} (${relation.reason})`;
}

// For each relation, the smallest edit of the real limits that breaks it.
const breakers: Record<string, (l: Limits) => Partial<Limits>> = {
  'heartbeatTicks < electionTicks': (l) => ({ heartbeatTicks: l.electionTicks }),
  'heartbeatTicks >= 1': () => ({ heartbeatTicks: 0 }),
  '2 * electionTicks * raftTickMs < requestTimeoutMs': (l) => ({ requestTimeoutMs: 2 * l.electionTicks * l.raftTickMs }),
  'memberCatchUpMs >= requestTimeoutMs': (l) => ({ memberCatchUpMs: l.requestTimeoutMs - 1 }),
  '1 <= forwardBatchRequestsMax <= proposalsPendingMax': (l) => ({ forwardBatchRequestsMax: l.proposalsPendingMax + 1 }),
  '1 <= peerContactSendersPendingMax <= peerContactsMax': (l) => ({ peerContactSendersPendingMax: l.peerContactsMax + 1 }),
  'peerConnectionsMax >= 4 * backupMembersMax': (l) => ({ peerConnectionsMax: 4 * l.backupMembersMax - 1 }),
  'probeConnectionsHeldMax >= probeConcurrencyMax': (l) => ({ probeConnectionsHeldMax: l.probeConcurrencyMax - 1 }),
  'messageBytesMax >= entryBytesMax': (l) => ({ entryBytesMax: l.messageBytesMax + 1 }),
  'inflightBytesMax >= messageBytesMax': (l) => ({ inflightBytesMax: l.messageBytesMax - 1 }),
  'uncommittedBytesMax >= entryBytesMax': (l) => ({ uncommittedBytesMax: l.entryBytesMax - 1 }),
  'uncommittedBytesMax >= messageBytesMax': (l) => ({ uncommittedBytesMax: l.messageBytesMax - 1 }),
  'committedBytesPerReadyMax >= messageBytesMax': (l) => ({ committedBytesPerReadyMax: l.messageBytesMax - 1 }),
  'snapshotChunkBytes <= messageBytesMax': (l) => ({ snapshotChunkBytes: l.messageBytesMax + 1 }),
  'httpConnectionsCheckMs < requestReceiveMsMax': (l) => ({ httpConnectionsCheckMs: l.requestReceiveMsMax }),
  'stallCheckMs * 4 <= stallThresholdMs': (l) => ({ stallCheckMs: l.stallThresholdMs / 4 + 1 }),
  'stallGraceMsMax >= stallGraceMs': (l) => ({ stallGraceMsMax: l.stallGraceMs - 1 }),
  'stallGraceMs > stallCheckMs': (l) => ({ stallGraceMs: l.stallCheckMs }),
  'internSlots is a power of two': () => ({ internSlots: 3000 }),
  'requestBodyBytesMax < entryBytesMax': (l) => ({ requestBodyBytesMax: l.entryBytesMax }),
  'peerMessageBytesMax >= 2 * messageBytesMax': (l) => ({ peerMessageBytesMax: 2 * l.messageBytesMax - 1 }),
  'peerMessageBytesMax >= 2 * snapshotChunkBytes': (l) => ({ peerMessageBytesMax: 2 * l.snapshotChunkBytes - 1 }),
  'peerSendQueueMessagesMax > inflightMessagesMax': (l) => ({ peerSendQueueMessagesMax: l.inflightMessagesMax }),
  'peerSendQueueBytesMax >= inflightBytesMax + snapshotChunkBytes': (l) => ({ peerSendQueueBytesMax: l.inflightBytesMax }),
  'metadataCharsMax * 3 + serviceNameCharsMax * 3 < entryBytesMax': (l) => ({ metadataCharsMax: l.entryBytesMax }),
  '3 * (healthCheckerCharsMax + metadataCharsMax + serviceNameCharsMax) < entryBytesMax': (l) => ({ healthCheckerCharsMax: l.entryBytesMax }),
  'requestResultsBytesMax >= 2 * entryBytesMax': (l) => ({ requestResultsBytesMax: 2 * l.entryBytesMax - 1 }),
  'probeIntervalMsMin <= probeIntervalMsMax': (l) => ({ probeIntervalMsMin: l.probeIntervalMsMax + 1 }),
  'probeTimeoutMs < probeIntervalMsMin': (l) => ({ probeTimeoutMs: l.probeIntervalMsMin }),
  'healthFlipProbes >= 1': () => ({ healthFlipProbes: 0 }),
  'healthFlipsPerEntryMax * 256 <= entryBytesMax': (l) => ({ healthFlipsPerEntryMax: l.entryBytesMax }),
  'beatIntervalMs < unhealthyAfterMs': (l) => ({ beatIntervalMs: l.unhealthyAfterMs }),
  'unhealthyAfterMs < removeAfterMs': (l) => ({ unhealthyAfterMs: l.removeAfterMs }),
  'distroSyncDelayMs < beatIntervalMs': (l) => ({ distroSyncDelayMs: l.beatIntervalMs }),
  'distroVerifyIntervalMs < removeAfterMs': (l) => ({ distroVerifyIntervalMs: l.removeAfterMs }),
  'distroTombstoneRetentionMs >= removeAfterMs + 2 * distroVerifyIntervalMs': (l) => ({ distroTombstoneRetentionMs: l.removeAfterMs }),
  'distroPeerTimeoutMs * 2 < requestTimeoutMs': (l) => ({ distroPeerTimeoutMs: l.requestTimeoutMs }),
  'distroForwardFenceMs + distroForwardSkewMs <= distroPeerTimeoutMs': (l) => ({ distroForwardFenceMs: l.distroPeerTimeoutMs }),
  '2 * (distroForwardBatchDelayMs + distroPeerTimeoutMs) < requestTimeoutMs': (l) => ({ distroForwardBatchDelayMs: l.requestTimeoutMs / 2 }),
  'distroForwardBatchEntriesMax <= distroForwardPendingMax': (l) => ({ distroForwardPendingMax: l.distroForwardBatchEntriesMax - 1 }),
  'distroForwardBatchEntriesMax <= distroMessageEntriesMax': (l) => ({ distroForwardBatchEntriesMax: l.distroMessageEntriesMax + 1, distroForwardPendingMax: l.distroMessageEntriesMax + 1 }),
  'distroMessageBytesMax * 2 <= peerMessageBytesMax': (l) => ({ distroMessageBytesMax: l.peerMessageBytesMax }),
  'distroMessageEntriesMax >= instancesPerServiceMax': (l) => ({ distroMessageEntriesMax: l.instancesPerServiceMax - 1 }),
  'distroHeartbeatIntervalMs * distroHeartbeatMissesMax < unhealthyAfterMs': (l) => ({ distroHeartbeatIntervalMs: l.unhealthyAfterMs }),
  'beatIntervalMs < distroSessionTimeoutMs': (l) => ({ distroSessionTimeoutMs: l.beatIntervalMs }),
  'removeAfterMs <= preservedTimeoutMsMax': (l) => ({ preservedTimeoutMsMax: l.removeAfterMs - 1 }),
  'pushMergeWindowMs < requestTimeoutMs': (l) => ({ pushMergeWindowMs: l.requestTimeoutMs }),
  'pushMergeWindowMs < pushStallMsMax': (l) => ({ pushStallMsMax: l.pushMergeWindowMs }),
  'pushMergeFullSubscribers >= 1': () => ({ pushMergeFullSubscribers: 0 }),
  'subscribersPerServiceMax <= grpcSubscribersMax': (l) => ({ grpcSubscribersMax: l.subscribersPerServiceMax - 1 }),
  'subscribersPerServiceMax <= udpPushTargetsMax': (l) => ({ udpPushTargetsMax: l.subscribersPerServiceMax - 1 }),
  'listCacheInstancesMax >= 2 * instancesPerServiceMax': (l) => ({ listCacheInstancesMax: 2 * l.instancesPerServiceMax - 1 }),
  'udpPushAckTimeoutMs * (udpPushRetriesMax + 1) <= removeAfterMs': (l) => ({ udpPushAckTimeoutMs: l.removeAfterMs }),
};

test('the real limits satisfy every relation', () => {
  assert.deepEqual(brokenLimitRelations(), []);
  assert.doesNotThrow(() => assertLimitRelations());
  assert.doesNotThrow(() => assertLimitRelations(limits));
});

test('the limits object is frozen', () => {
  assert.ok(Object.isFrozen(limits));
  assert.ok(Object.isFrozen(limitRelations));
});

test('relation names are unique and each is broken by exactly one case below', () => {
  const keys = limitRelations.map((relation) => relation.name);
  assert.equal(new Set(keys).size, keys.length);
  assert.deepEqual([...keys].sort(), Object.keys(breakers).sort());
});

for (const relation of limitRelations) {
  test(`a copy breaking "${relation.name}" is reported by name`, () => {
    const breaker = breakers[relation.name];
    assert.ok(breaker !== undefined, `no breaking case for ${relation.name}`);
    // The edits that set a limit to 0 also break "is a positive integer"; both must be reported.
    const broken: Limits = { ...limits, ...breaker(limits) };
    assert.ok(brokenLimitRelations(broken).includes(described(relation.name)));
    assert.throws(
      () => assertLimitRelations(broken),
      (error: unknown) => {
        assert.ok(error instanceof LimitRelationError);
        assert.ok(error.broken.includes(described(relation.name)));
        assert.ok(error.message.includes(described(relation.name)), error.message);
        return true;
      },
    );
  });
}

test('a limit that is not a positive integer is reported by name', () => {
  for (const bad of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
    const broken: Limits = { ...limits, inflightMessagesMax: bad };
    assert.throws(() => assertLimitRelations(broken), new RegExp(`inflightMessagesMax is a positive integer \\(got ${String(bad)}\\)`));
  }
});

test('several broken relations are all reported', () => {
  const broken: Limits = { ...limits, beatIntervalMs: limits.removeAfterMs, inflightBytesMax: 1 };
  assert.deepEqual(brokenLimitRelations(broken), [
    described('inflightBytesMax >= messageBytesMax'),
    described('beatIntervalMs < unhealthyAfterMs'),
    described('beatIntervalMs < distroSessionTimeoutMs'),
  ]);
});

test('the Raft limits fill every numeric RaftConfig field', () => {
  // Compile-time: this object must satisfy the numeric part of RaftConfig, so a renamed field fails typecheck.
  const fromLimits: Omit<RaftConfig, 'id' | 'seed' | 'preVote' | 'checkQuorum' | 'testOnlyBugs'> = {
    electionTicks: limits.electionTicks,
    heartbeatTicks: limits.heartbeatTicks,
    inflightMessagesMax: limits.inflightMessagesMax,
    inflightBytesMax: limits.inflightBytesMax,
    messageBytesMax: limits.messageBytesMax,
    uncommittedBytesMax: limits.uncommittedBytesMax,
    committedBytesPerReadyMax: limits.committedBytesPerReadyMax,
    snapshotChunkBytes: limits.snapshotChunkBytes,
    pendingReadsMax: limits.pendingReadsMax,
  };
  assert.equal(limits.raftTickMs, 100);
  assert.equal(fromLimits.electionTicks, 10);
  assert.equal(fromLimits.heartbeatTicks, 1);
});

test('AP timings are Nacos defaults (NACOS.md §5.3) and the name maxima those of Nacos 2.x (§5.6)', () => {
  assert.deepEqual(
    [limits.beatIntervalMs, limits.unhealthyAfterMs, limits.removeAfterMs],
    [5000, 15_000, 30_000],
  );
  assert.deepEqual(
    [limits.namespaceIdCharsMax, limits.groupNameCharsMax, limits.serviceNameCharsMax, limits.clusterNameCharsMax, limits.ipCharsMax, limits.metadataCharsMax],
    [64, 128, 512, 64, 128, 1024],
  );
  assert.equal(limits.requestTimeoutMs, 5000);
});
