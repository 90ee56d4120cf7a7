// Goal: each safety invariant of invariants.ts fires on the violation it names and stays silent on the legal case
// next to it, so a clean simulation run is evidence and not the silence of a broken check. References: Raft paper
// (Ongaro & Ousterhout 2014) §5.2 Election Safety, §5.3 Log Matching and Leader Append-Only, §5.4.1 Leader
// Completeness, §5.4.2 committing entries from previous terms, §5.4.3 State Machine Safety, Figure 2 (persistent
// state updated before responding to RPCs).
//
// Method: table-like scripted cases over a fake core (plain data behind the CoreView interface) and a fresh ledger;
// each violation must throw a SafetyViolation naming its invariant, the member, the index and the term.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Entry, Role } from '../../src/raft/types.ts';
import {
  checkAppliedEntry,
  checkCommitProgress,
  checkCoreBounds,
  checkDurableBeforeSend,
  checkDurableCommit,
  checkDurableHardState,
  checkElectionSafety,
  checkInMemoryLog,
  checkLeaderAppendOnly,
  checkLeaderCommitsCurrentTerm,
  checkLeaderCompleteness,
  checkLogMatching,
  checkMustSync,
  checkSnapshotRestore,
  recordCommitted,
  recordStateDigest,
  type CoreView,
} from './invariants.ts';
import { SafetyLedger } from './ledger.ts';
import { SafetyViolation } from './sim-errors.ts';

function entry(index: number, term: number, value = `v${index}.${term}`): Entry {
  return { kind: 'normal', index, term, data: new TextEncoder().encode(value) };
}

/** fakeCore is a CoreView over a plain log: entries follow a snapshot at snapshotIndex/snapshotTerm. */
function fakeCore(options: { id?: string; role?: Role; term?: number; commit?: number; applied?: number; snapshotIndex?: number; snapshotTerm?: number; entries?: Entry[] }): CoreView {
  const entries = options.entries ?? [];
  const snapshotIndex = options.snapshotIndex ?? 0;
  const snapshotTerm = options.snapshotTerm ?? 0;
  return {
    id: options.id ?? 'n1',
    role: options.role ?? 'follower',
    term: options.term ?? 1,
    commitIndex: options.commit ?? 0,
    appliedIndex: options.applied ?? 0,
    lastIndex: snapshotIndex + entries.length,
    snapshotIndex,
    membership: { voters: ['n1', 'n2', 'n3'], learners: [] },
    entryAt: (index) => entries[index - snapshotIndex - 1],
    termAt: (index) => (index === snapshotIndex ? snapshotTerm : entries[index - snapshotIndex - 1]?.term),
  };
}

function throwsInvariant(action: () => void, invariant: string, pattern: RegExp): void {
  assert.throws(action, (error: unknown) => error instanceof SafetyViolation && error.invariant === invariant && pattern.test(error.message));
}

const observation = () => ({ incarnation: 1, term: 0, commit: 0, leaderTerm: 0, leaderLastIndex: 0, leaderLastTerm: 0, leaderCommitStart: 0 });

describe('Election Safety (Raft §5.2): at most one leader per term', () => {
  test('a second leader in a term is a violation; the same leader seen again is not', () => {
    const ledger = new SafetyLedger(3);
    assert.equal(checkElectionSafety(ledger, fakeCore({ id: 'n1', role: 'leader', term: 4 })), true);
    assert.equal(checkElectionSafety(ledger, fakeCore({ id: 'n1', role: 'leader', term: 4 })), false);
    throwsInvariant(() => checkElectionSafety(ledger, fakeCore({ id: 'n2', role: 'leader', term: 4 })), 'election-safety', /term 4: n1 and n2/);
    assert.equal(checkElectionSafety(ledger, fakeCore({ id: 'n2', role: 'leader', term: 5 })), true);
  });
});

describe('Log Matching (Raft §5.3)', () => {
  test('the same (index, term) with different content is a violation', () => {
    const ledger = new SafetyLedger(3);
    checkLogMatching(ledger, 'n1', [entry(1, 1, 'a')], 0);
    throwsInvariant(() => checkLogMatching(ledger, 'n2', [entry(1, 1, 'b')], 0), 'log-matching', /index 1 term 1: n2/);
  });
  test('the same (index, term) after different terms is a violation (the prefixes differ)', () => {
    const ledger = new SafetyLedger(3);
    checkLogMatching(ledger, 'n1', [entry(2, 3, 'x'), entry(3, 3, 'y')], 1);
    checkLogMatching(ledger, 'n2', [entry(3, 3, 'y')], 3);
    throwsInvariant(() => checkLogMatching(ledger, 'n3', [entry(3, 3, 'y')], 2), 'log-matching', /follows term 2 at index 2 on n3/);
  });
  test('terms never decrease along a log', () => {
    throwsInvariant(() => checkLogMatching(new SafetyLedger(3), 'n1', [entry(1, 2), entry(2, 1)], 0), 'log-terms-ordered', /term 1 at index 2/);
  });
  test('a full scan finds a hole in an in-memory log', () => {
    const core: CoreView = { ...fakeCore({ entries: [entry(1, 1), entry(2, 1)] }), entryAt: (index) => (index === 1 ? entry(1, 1) : undefined) };
    throwsInvariant(() => checkInMemoryLog(new SafetyLedger(3), core, Infinity), 'log-contiguous', /no entry at index 2/);
  });
});

describe('Leader Append-Only (Raft §5.3) and the commit rule of §5.4.2', () => {
  test('a leader whose log shrinks within its term is a violation', () => {
    const seen = observation();
    checkLeaderAppendOnly(seen, fakeCore({ role: 'leader', term: 2, entries: [entry(1, 1), entry(2, 2)] }));
    throwsInvariant(() => checkLeaderAppendOnly(seen, fakeCore({ role: 'leader', term: 2, entries: [entry(1, 1)] })), 'leader-append-only', /index 2 with term 2/);
  });
  test('a leader advancing its commit index to an older term is a violation (Figure 8)', () => {
    const seen = observation();
    const log = [entry(1, 1), entry(2, 1), entry(3, 3)];
    checkLeaderAppendOnly(seen, fakeCore({ role: 'leader', term: 3, commit: 1, entries: log }));
    checkLeaderCommitsCurrentTerm(seen, fakeCore({ role: 'leader', term: 3, commit: 1, entries: log }));
    checkLeaderCommitsCurrentTerm(seen, fakeCore({ role: 'leader', term: 3, commit: 3, entries: log }));
    throwsInvariant(() => checkLeaderCommitsCurrentTerm(seen, fakeCore({ role: 'leader', term: 3, commit: 2, entries: log })), 'commit-current-term', /to 2, an entry of term 1/);
  });
});

describe('Leader Completeness (Raft §5.4.1)', () => {
  test('a leader of a later term missing a committed entry is a violation; the committing term itself is exempt', () => {
    const ledger = new SafetyLedger(3);
    recordCommitted(ledger, 'n1', 1, 2, null, 2);
    checkLeaderCompleteness(ledger, fakeCore({ id: 'n2', role: 'leader', term: 2, entries: [entry(1, 1)] }));
    checkLeaderCompleteness(ledger, fakeCore({ id: 'n3', role: 'leader', term: 3, entries: [entry(1, 2)] }));
    throwsInvariant(
      () => checkLeaderCompleteness(ledger, fakeCore({ id: 'n2', role: 'leader', term: 3, entries: [entry(1, 1)] })),
      'leader-completeness',
      /n2 leads term 3 but has term 1 at index 1, committed with term 2/,
    );
  });
});

describe('State Machine Safety (Raft §5.4.3)', () => {
  test('a committed index seen with another term or content is a violation', () => {
    const ledger = new SafetyLedger(3);
    recordCommitted(ledger, 'n1', 5, 2, 77, 2);
    recordCommitted(ledger, 'n2', 5, 2, 77, 3);
    throwsInvariant(() => recordCommitted(ledger, 'n3', 5, 3, 77, 3), 'committed-changed', /index 5 committed with term 2 .* n3 .* term 3/);
    throwsInvariant(() => recordCommitted(ledger, 'n3', 5, 2, 78, 3), 'committed-changed', /index 5 term 2/);
  });
  test('a commit index advancing is recorded entry by entry', () => {
    const ledger = new SafetyLedger(3);
    const seen = observation();
    checkCommitProgress(ledger, seen, fakeCore({ commit: 2, entries: [entry(1, 1), entry(2, 1)] }));
    assert.equal(ledger.committedMax, 2);
    throwsInvariant(() => checkCommitProgress(ledger, seen, fakeCore({ commit: 1, entries: [entry(1, 1)] })), 'commit-monotonic', /from 2 back to 1/);
  });
  test('applying out of order is a violation', () => {
    throwsInvariant(() => checkAppliedEntry(new SafetyLedger(3), 'n1', 3, entry(5, 1), 1), 'apply-order', /applies index 5 .* after index 3/);
  });
  test('restoring a snapshot at or below the applied index is a rollback', () => {
    const snapshot = { meta: { index: 4, term: 1, membership: { voters: ['n1'], learners: [] } }, data: new Uint8Array() };
    throwsInvariant(() => checkSnapshotRestore(new SafetyLedger(3), 'n1', 4, snapshot, 1), 'snapshot-rollback', /index 4/);
  });
  test('two replicas with different states at one applied index diverge', () => {
    const ledger = new SafetyLedger(3);
    recordStateDigest(ledger, 'n1', 9, 1);
    recordStateDigest(ledger, 'n2', 9, 1);
    throwsInvariant(() => recordStateDigest(ledger, 'n3', 9, 2), 'state-divergence', /n3's state machine at applied index 9/);
  });
});

describe('persistence before responding (Raft Figure 2)', () => {
  test('the durable term never decreases and a durable vote never changes within its term', () => {
    checkDurableHardState('n1', { term: 2, vote: null, commit: 0 }, { term: 2, vote: 'n2', commit: 0 });
    throwsInvariant(() => checkDurableHardState('n1', { term: 3, vote: null, commit: 0 }, { term: 2, vote: null, commit: 0 }), 'durable-term', /from 3 back to 2/);
    throwsInvariant(() => checkDurableHardState('n1', { term: 2, vote: 'n2', commit: 0 }, { term: 2, vote: 'n3', commit: 0 }), 'durable-vote', /from n2 to n3/);
  });
  test('a granted vote, a term and an acknowledged entry must be durable when their message leaves', () => {
    const disk = { hardState: { term: 3, vote: null, commit: 0 }, lastIndex: 4 };
    const base = { from: 'n1', to: 'n2', term: 3 } as const;
    throwsInvariant(() => checkDurableBeforeSend('n1', { ...base, type: 'VoteResponse', granted: true }, disk), 'durable-before-send', /grants its vote in term 3 to n2/);
    const ack = { ...base, type: 'AppendResponse', success: true, matchIndex: 5, conflictIndex: 0, conflictTerm: 0, rejectedIndex: 0 } as const;
    throwsInvariant(() => checkDurableBeforeSend('n1', ack, disk), 'durable-before-send', /acknowledges index 5/);
    throwsInvariant(() => checkDurableBeforeSend('n1', { ...base, term: 4, type: 'HeartbeatResponse', readRound: 0 }, disk), 'durable-before-send', /term 4/);
    checkDurableBeforeSend('n1', { ...base, term: 4, type: 'PreVoteRequest', lastLogIndex: 4, lastLogTerm: 3 }, disk);
    checkDurableBeforeSend('n1', { ...ack, matchIndex: 4 }, disk);
  });
});

describe('the Ready contract (types.ts) and durable commit (etcd raft TLA+ CommittedIsDurableInv)', () => {
  test('a Ready that changes the log, the term or the vote must ask for an fsync', () => {
    const durable = { term: 2, vote: 'n1', commit: 0 };
    const ready = { softState: null, hardState: null, snapshot: null, entries: [], committedEntries: [], messages: [], readStates: [], droppedReads: [], mustSync: false, messagesBeforePersist: false };
    checkMustSync('n1', { ...ready, hardState: { term: 2, vote: 'n1', commit: 3 } }, durable);
    throwsInvariant(() => checkMustSync('n1', { ...ready, entries: [entry(1, 2)] }, durable), 'must-sync', /1 entries/);
    throwsInvariant(() => checkMustSync('n1', { ...ready, hardState: { term: 3, vote: null, commit: 0 } }, durable), 'must-sync', /mustSync false/);
  });
  test('the durable commit index never points past the durable log', () => {
    checkDurableCommit('n1', { hardState: { term: 1, vote: null, commit: 4 }, lastIndex: 4 });
    throwsInvariant(() => checkDurableCommit('n1', { hardState: { term: 1, vote: null, commit: 5 }, lastIndex: 4 }), 'durable-commit', /5 is past .* ends at 4/);
  });
});

describe('core bounds (thesis §3)', () => {
  test('commitIndex beyond lastIndex is a violation', () => {
    throwsInvariant(() => checkCoreBounds(fakeCore({ commit: 3, entries: [entry(1, 1)] })), 'core-bounds', /commitIndex 3 > lastIndex 1/);
  });
});

test('durable-before-send: a heartbeat answer reporting acknowledged entries as missing is a violation in the simulator', () => {
  const disk = { hardState: { term: 4, vote: null, commit: 3 }, lastIndex: 3 };
  throwsInvariant(() => checkDurableBeforeSend('n2', { type: 'HeartbeatResponse', from: 'n2', to: 'n1', term: 4, readRound: 0, missingFrom: 4 }, disk), 'durable-before-send', /lacks index 4/);
  checkDurableBeforeSend('n2', { type: 'HeartbeatResponse', from: 'n2', to: 'n1', term: 4, readRound: 0 }, disk);
});
