// The safety invariants, one small function each. The simulator calls them after every event (and on every Ready,
// apply, snapshot and send); each throws a SafetyViolation whose message names the member, the index and the term.
// References: Raft paper (Ongaro & Ousterhout 2014) §5.2 Election Safety, §5.3 Log Matching and Leader Append-Only,
// §5.4 Leader Completeness and State Machine Safety, Figure 2 (persist before responding); thesis §3.
import type { Entry, HardState, Membership, Message, NodeId, Ready, Role, Snapshot } from '../../src/raft/types.ts';
import { entryDigest, hashBytes } from './hash.ts';
import { entryKey, type NodeObservation, type SafetyLedger } from './ledger.ts';
import { SafetyViolation } from './sim-errors.ts';

/** CoreView is the read-only part of RaftCore the invariants look at. */
export interface CoreView {
  readonly id: NodeId;
  readonly role: Role;
  readonly term: number;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly lastIndex: number;
  readonly snapshotIndex: number;
  readonly membership: Membership;
  entryAt(index: number): Entry | undefined;
  termAt(index: number): number | undefined;
}

/** DurableView is the part of a member's disk the durability checks look at. */
export interface DurableView {
  readonly hardState: HardState;
  readonly lastIndex: number;
}

/** checkCoreBounds: snapshotIndex <= commitIndex <= lastIndex and appliedIndex <= commitIndex (thesis §3, Figure 3.1). */
export function checkCoreBounds(core: CoreView): void {
  const { id, commitIndex, lastIndex, appliedIndex, snapshotIndex } = core;
  if (commitIndex > lastIndex) fail('core-bounds', `${id} commitIndex ${commitIndex} > lastIndex ${lastIndex} (term ${core.term})`);
  if (appliedIndex > commitIndex) fail('core-bounds', `${id} appliedIndex ${appliedIndex} > commitIndex ${commitIndex} (term ${core.term})`);
  if (snapshotIndex > commitIndex) fail('core-bounds', `${id} snapshotIndex ${snapshotIndex} > commitIndex ${commitIndex} (term ${core.term})`);
}

/** checkTermMonotonic: a member's current term never decreases while it runs (Raft §5.1). */
export function checkTermMonotonic(observation: NodeObservation, core: CoreView): void {
  if (core.term < observation.term) {
    fail('term-monotonic', `${core.id} term went from ${observation.term} back to ${core.term}`);
  }
  observation.term = core.term;
}

/** checkElectionSafety: at most one leader per term, ever (Raft §5.2); returns true the first time `core` leads its term. */
export function checkElectionSafety(ledger: SafetyLedger, core: CoreView): boolean {
  if (core.role !== 'leader') return false;
  const previous = ledger.leaderByTerm.get(core.term);
  if (previous === undefined) {
    ledger.leaderByTerm.set(core.term, core.id);
    return true;
  }
  if (previous !== core.id) fail('election-safety', `two leaders in term ${core.term}: ${previous} and ${core.id}`);
  return false;
}

/**
 * checkLeaderCompleteness: a new leader of term T holds every entry committed in an earlier term (Raft §5.4.1).
 * `observedTerm` bounds the committing term from above, so only entries surely committed before T are required.
 */
export function checkLeaderCompleteness(ledger: SafetyLedger, core: CoreView): void {
  for (const [index, record] of ledger.committed) {
    if (record.observedTerm >= core.term || index <= core.snapshotIndex) continue;
    const term = core.termAt(index);
    if (term !== record.term) {
      fail(
        'leader-completeness',
        `${core.id} leads term ${core.term} but has ${term === undefined ? 'no entry' : `term ${term}`} at index ${index}, ` +
          `committed with term ${record.term} (first seen by ${record.firstSeenBy} in term ${record.observedTerm})`,
      );
    }
  }
}

/** checkLeaderAppendOnly: a leader never overwrites or deletes entries of its log during its term (Raft §5.3). */
export function checkLeaderAppendOnly(observation: NodeObservation, core: CoreView): void {
  if (core.role !== 'leader') {
    observation.leaderTerm = 0;
    return;
  }
  if (observation.leaderTerm === core.term) {
    const previousIndex = observation.leaderLastIndex;
    const term = core.termAt(previousIndex);
    const compacted = previousIndex < core.snapshotIndex;
    if (core.lastIndex < previousIndex || (!compacted && term !== observation.leaderLastTerm)) {
      fail(
        'leader-append-only',
        `${core.id}, leader of term ${core.term}, had index ${previousIndex} with term ${observation.leaderLastTerm}; ` +
          `now lastIndex ${core.lastIndex}, term there ${String(term)}`,
      );
    }
  }
  if (observation.leaderTerm !== core.term) observation.leaderCommitStart = core.commitIndex;
  observation.leaderTerm = core.term;
  observation.leaderLastIndex = core.lastIndex;
  observation.leaderLastTerm = core.termAt(core.lastIndex) ?? 0;
}

/**
 * checkLeaderCommitsCurrentTerm: a leader advances its commit index only to an entry of its own term; older entries
 * commit only indirectly, under one of its own (Raft §5.4.2, Figure 8). Call after checkLeaderAppendOnly.
 */
export function checkLeaderCommitsCurrentTerm(observation: NodeObservation, core: CoreView): void {
  if (core.role !== 'leader' || core.commitIndex <= observation.leaderCommitStart) return;
  const term = core.termAt(core.commitIndex);
  if (term !== core.term) {
    fail(
      'commit-current-term',
      `${core.id}, leader of term ${core.term}, advanced its commit index from ${observation.leaderCommitStart} to ${core.commitIndex}, ` +
        `an entry of term ${String(term)}`,
    );
  }
}

/** checkCommitProgress: a member's commit index never decreases while it runs; each newly committed entry is recorded. */
export function checkCommitProgress(ledger: SafetyLedger, observation: NodeObservation, core: CoreView): void {
  const commit = core.commitIndex;
  if (commit < observation.commit) {
    fail('commit-monotonic', `${core.id} commitIndex went from ${observation.commit} back to ${commit} (term ${core.term})`);
  }
  for (let index = observation.commit + 1; index <= commit; index++) {
    if (index < core.snapshotIndex) continue;
    const entry = core.entryAt(index);
    const term = entry?.term ?? core.termAt(index);
    if (term === undefined) fail('commit-progress', `${core.id} commitIndex ${commit} but no term at index ${index}`);
    recordCommitted(ledger, core.id, index, term, entry === undefined ? null : entryDigest(entry), core.term);
  }
  observation.commit = commit;
}

/** recordCommitted: committed entries never change (State Machine Safety, Raft §5.4.3). */
export function recordCommitted(
  ledger: SafetyLedger,
  id: NodeId,
  index: number,
  term: number,
  digest: number | null,
  observerTerm: number,
): void {
  const record = ledger.committed.get(index);
  if (record === undefined) {
    ledger.committed.set(index, { term, digest, observedTerm: observerTerm, firstSeenBy: id });
    if (index > ledger.committedMax) ledger.committedMax = index;
    return;
  }
  if (record.term !== term) {
    fail('committed-changed', `index ${index} committed with term ${record.term} (first seen by ${record.firstSeenBy}) but ${id} has it committed with term ${term}`);
  }
  if (digest === null) return;
  if (record.digest === null) record.digest = digest;
  else if (record.digest !== digest) {
    fail('committed-changed', `index ${index} term ${term}: ${id}'s committed entry differs from the one first seen by ${record.firstSeenBy}`);
  }
}

/**
 * checkLogMatching: if two logs hold an entry with the same index and term, the entries are the same and so are the
 * logs up to it (Log Matching, Raft §5.3). Checked by induction: each (index, term) names one entry and one term
 * at index - 1, on every member, ever. Terms never decrease along a log.
 */
export function checkLogMatching(ledger: SafetyLedger, id: NodeId, entries: readonly Entry[], prevTerm: number | undefined): void {
  let previous = prevTerm;
  for (const entry of entries) {
    if (previous !== undefined && entry.term < previous) {
      fail('log-terms-ordered', `${id} has term ${entry.term} at index ${entry.index} after term ${previous}`);
    }
    const key = entryKey(entry.index, entry.term);
    const digest = entryDigest(entry);
    const record = ledger.entries.get(key);
    if (record === undefined) {
      ledger.entries.set(key, { digest, prevTerm: previous, firstSeenBy: id });
    } else {
      if (record.digest !== digest) {
        fail('log-matching', `index ${entry.index} term ${entry.term}: ${id}'s entry differs from ${record.firstSeenBy}'s`);
      }
      if (previous !== undefined && record.prevTerm !== undefined && record.prevTerm !== previous) {
        fail(
          'log-matching',
          `index ${entry.index} term ${entry.term} follows term ${previous} at index ${entry.index - 1} on ${id} ` +
            `but term ${record.prevTerm} on ${record.firstSeenBy}`,
        );
      }
      if (record.prevTerm === undefined) record.prevTerm = previous;
    }
    previous = entry.term;
  }
}

/**
 * checkInMemoryLog scans a member's whole in-memory log: contiguous, positions right, and Log Matching on every
 * entry of a term at most `durableTerm`. Entries of a later term belong to a term the member has not durably
 * entered: nothing of that term has left the member (its messages wait for the write), and a crash erases them
 * with the term, after which the member may enter that term again and write other entries there. They exist in
 * no log anyone can see, so Log Matching does not speak of them (seed 14963: a single voter).
 */
export function checkInMemoryLog(ledger: SafetyLedger, core: CoreView, durableTerm: number): void {
  const entries: Entry[] = [];
  for (let index = core.snapshotIndex + 1; index <= core.lastIndex; index++) {
    const entry = core.entryAt(index);
    if (entry === undefined || entry.index !== index) {
      fail('log-contiguous', `${core.id} has ${entry === undefined ? 'no entry' : `entry ${entry.index}`} at index ${index} (log ${core.snapshotIndex + 1}..${core.lastIndex})`);
    }
    if (entry.term <= durableTerm) entries.push(entry);
  }
  checkLogMatching(ledger, core.id, entries, core.termAt(core.snapshotIndex));
}

/** checkAppliedEntry: each member applies index applied + 1 next, and what it applies is the committed entry (Raft §5.4.3). */
export function checkAppliedEntry(ledger: SafetyLedger, id: NodeId, applied: number, entry: Entry, observerTerm: number): void {
  if (entry.index !== applied + 1) {
    fail('apply-order', `${id} applies index ${entry.index} (term ${entry.term}) after index ${applied}`);
  }
  recordCommitted(ledger, id, entry.index, entry.term, entryDigest(entry), observerTerm);
}

/** checkSnapshotRestore: a restored snapshot moves the state machine forward, to a committed index, with the same state every replica had there. */
export function checkSnapshotRestore(ledger: SafetyLedger, id: NodeId, applied: number, snapshot: Snapshot, observerTerm: number): void {
  const { index, term } = snapshot.meta;
  if (index <= applied) fail('snapshot-rollback', `${id} restores a snapshot at index ${index} (term ${term}) over applied index ${applied}`);
  recordCommitted(ledger, id, index, term, null, observerTerm);
  recordStateDigest(ledger, id, index, hashBytes(snapshot.data));
}

/** recordStateDigest: every replica's state machine at applied index i is the same, byte for byte (TigerBeetle VOPR's check). */
export function recordStateDigest(ledger: SafetyLedger, id: NodeId, index: number, digest: number): void {
  const record = ledger.states.get(index);
  if (record === undefined) ledger.states.set(index, { digest, firstSeenBy: id });
  else if (record.digest !== digest) {
    fail('state-divergence', `${id}'s state machine at applied index ${index} differs from ${record.firstSeenBy}'s`);
  }
}

/** checkDurableHardState: the durable term never decreases and a durable vote never changes within a term (Raft §5.2, Figure 2). */
export function checkDurableHardState(id: NodeId, before: HardState, after: HardState): void {
  if (after.term < before.term) fail('durable-term', `${id}'s durable term went from ${before.term} back to ${after.term}`);
  if (after.term === before.term && before.vote !== null && after.vote !== before.vote) {
    fail('durable-vote', `${id}'s durable vote in term ${after.term} changed from ${before.vote} to ${String(after.vote)}`);
  }
}

/** checkDurableCommit: the durable commit index never points past the durable log (etcd raft TLA+ CommittedIsDurableInv). */
export function checkDurableCommit(id: NodeId, disk: DurableView): void {
  if (disk.hardState.commit > disk.lastIndex) {
    fail('durable-commit', `${id}'s durable commit index ${disk.hardState.commit} is past its durable log, which ends at ${disk.lastIndex}`);
  }
}

/** checkMustSync: a Ready that changes the term, the vote or the log must ask for an fsync (types.ts Ready.mustSync). */
export function checkMustSync(id: NodeId, ready: Ready, durable: HardState): void {
  if (ready.mustSync) return;
  const hardState = ready.hardState;
  const termOrVote = hardState !== null && (hardState.term !== durable.term || hardState.vote !== durable.vote);
  if (ready.entries.length > 0 || termOrVote) {
    fail('must-sync', `${id} hands out a Ready with ${ready.entries.length} entries and hard state ${JSON.stringify(hardState)} but mustSync false`);
  }
}

/**
 * checkDurableBeforeSend: what a message promises is on disk before it leaves (Raft Figure 2: "respond after
 * updating stable storage"): its term (PreVote messages excepted: they speak of a future term), a granted vote,
 * and the entries a successful AppendResponse acknowledges.
 */
export function checkDurableBeforeSend(id: NodeId, message: Message, disk: DurableView): void {
  const durable = disk.hardState;
  if (message.type !== 'PreVoteRequest' && message.type !== 'PreVoteResponse' && durable.term < message.term) {
    fail('durable-before-send', `${id} sends ${message.type} of term ${message.term} to ${message.to} while its durable term is ${durable.term}`);
  }
  if (message.type === 'VoteResponse' && message.granted && durable.term === message.term && durable.vote !== message.to) {
    fail('durable-before-send', `${id} grants its vote in term ${message.term} to ${message.to} while its durable vote is ${String(durable.vote)}`);
  }
  if (message.type === 'AppendResponse' && message.success && disk.lastIndex < message.matchIndex) {
    fail('durable-before-send', `${id} acknowledges index ${message.matchIndex} (term ${message.term}) to ${message.to} while its durable log ends at ${disk.lastIndex}`);
  }
  // The simulated disk loses only writes never synced, so no member ever lacks what it acknowledged: a heartbeat
  // answer saying so (missingFrom) would be a false alarm of the follower's check, and the leader would resend.
  if (message.type === 'HeartbeatResponse' && message.missingFrom !== undefined) {
    fail('durable-before-send', `${id} reports to ${message.to} (term ${message.term}) that its log lacks index ${message.missingFrom} it had acknowledged`);
  }
}

/** checkAckedWrite: a write acknowledged to a client is the committed entry at its index (Raft §8: clients see only committed writes). */
export function checkAckedWrite(ledger: SafetyLedger, id: NodeId, entry: Entry): void {
  const record = ledger.committed.get(entry.index);
  if (record === undefined || record.term !== entry.term || record.digest !== entryDigest(entry)) {
    fail('acked-write', `${id} acknowledged the write at index ${entry.index} term ${entry.term}, which is not the committed entry there`);
  }
}

function fail(invariant: string, message: string): never {
  throw new SafetyViolation(invariant, message);
}
