// RaftCore: the pure Raft state machine (STYLE.md §1). Time is a tick counter, messages in are step() calls,
// everything out (messages, entries to persist, entries to apply, read states) leaves through ready(), and the
// driver acknowledges each Ready with advance(). No IO, no clock, no randomness but the seeded PRNG.
//
// References: Raft paper (Ongaro & Ousterhout 2014) §5 and §7; Raft thesis (Ongaro 2014) §3.10 (leadership
// transfer), §4.1 (single-server membership changes), §6.4 (ReadIndex), §9.6 (PreVote, CheckQuorum).
import { invariant, unreachable } from './invariant.ts';
import { applyChange, membersOf, quorumSize, quorumValue, validateChange } from './membership.ts';
import { Prng } from './prng.ts';
import { Progress } from './progress.ts';
import { entryBytes, RaftLog } from './raft-log.ts';
import { ReadIndexQueue } from './read-index.ts';
import type {
  AppendRequest,
  AppendResponse,
  Entry,
  HardState,
  HeartbeatRequest,
  HeartbeatResponse,
  Membership,
  MembershipChange,
  Message,
  NodeId,
  PersistedState,
  ProposeResult,
  RaftConfig,
  ReadIndexResult,
  ReadState,
  Ready,
  Role,
  Snapshot,
  SnapshotRequest,
  SnapshotResponse,
  SoftState,
  TransferResult,
  VoteRequest,
  PreVoteRequest,
} from './types.ts';

/**
 * SENDABLE_BEFORE_PERSIST are the messages a leader may send before its Ready is persisted (Ready.messagesBeforePersist):
 * they replicate or confirm, and promise nothing about this member's own disk.
 */
const SENDABLE_BEFORE_PERSIST: ReadonlySet<Message['type']> = new Set(['AppendRequest', 'HeartbeatRequest', 'SnapshotRequest', 'TimeoutNow', 'ReadIndexResponse']);

/** IncomingSnapshot is a snapshot being received in chunks from the leader. */
interface IncomingSnapshot {
  readonly request: SnapshotRequest;
  readonly chunks: Uint8Array[];
  received: number;
}

/** ProgressStatus is the leader's view of one follower, for status pages and tests. */
export interface ProgressStatus {
  readonly match: number;
  readonly next: number;
  readonly state: Progress['state'];
  readonly recentActive: boolean;
  /** ticksSinceHeard counts the leader's ticks since this follower last answered. */
  readonly ticksSinceHeard: number;
}

/** RaftStatus is a snapshot of a core's volatile and durable state, for status pages and tests. */
export interface RaftStatus {
  readonly id: NodeId;
  readonly role: Role;
  readonly term: number;
  readonly vote: NodeId | null;
  readonly leader: NodeId | null;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly lastIndex: number;
  readonly snapshotIndex: number;
  readonly membership: Membership;
  readonly ticksSinceLeaderContact: number;
  readonly progress: Readonly<Record<NodeId, ProgressStatus>>;
}

/** RaftCore is one member's Raft state machine: deterministic, synchronous, no IO. */
export class RaftCore {
  private readonly config: RaftConfig;
  private readonly prng: Prng;
  private readonly log: RaftLog;
  private currentTerm: number;
  private votedFor: NodeId | null;
  private currentRole: Role = 'follower';
  private currentLeader: NodeId | null = null;
  /** electionElapsed counts ticks since a follower last heard from its leader (or since a campaign started). */
  private electionElapsed = 0;
  /** leaderTicks counts a leader's ticks since it took office; followers' lastHeardTick are read against it. */
  private leaderTicks = 0;
  private transferElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;
  /**
   * firstPreVoteRound is true while a pre-candidate is in the pre-vote round it started as the follower of a known
   * leader (once per leader lost); it then breaks ties between equally up-to-date pre-candidates (winsPreVoteTie).
   * Later rounds, and rounds started without a leader, grant as plain PreVote does.
   */
  private firstPreVoteRound = false;
  private votes = new Map<NodeId, boolean>();
  private progress = new Map<NodeId, Progress>();
  private leadTransferee: NodeId | null = null;
  private uncommittedBytes = 0;
  private readonly reads: ReadIndexQueue;
  /** readsBeforeTermCommit wait for the leader's first commit in its term (thesis §6.4 step 1). */
  private readsBeforeTermCommit: { context: string; requester: NodeId }[] = [];
  private incomingSnapshot: IncomingSnapshot | null = null;
  /**
   * offeredSnapshot is the image the driver offered for followers that need one (offerSnapshot); the core keeps no
   * image of its own, so it holds this one only while a follower streams it (released in tickLeader).
   */
  private offeredSnapshot: Snapshot | null = null;
  private messages: Message[] = [];
  private readStates: ReadState[] = [];
  private droppedReads: string[] = [];
  private persistedHardState: HardState;
  private reportedSoftState: SoftState;
  private readyOutstanding = false;

  constructor(config: RaftConfig, state: PersistedState) {
    validateConfig(config);
    this.config = config;
    this.prng = new Prng(config.seed);
    this.log = new RaftLog(state.snapshot, state.entries, state.hardState.commit, state.applied);
    this.currentTerm = state.hardState.term;
    this.votedFor = state.hardState.vote;
    this.persistedHardState = { term: this.currentTerm, vote: this.votedFor, commit: this.log.committed };
    this.reportedSoftState = { leader: null, role: 'follower', term: this.currentTerm };
    this.reads = new ReadIndexQueue(config.pendingReadsMax);
    this.resetRandomizedElectionTimeout();
  }

  // ---------------------------------------------------------------------------------------------------------
  // Inputs: time, messages, proposals, reads, transfers.

  /** tick advances logical time by one tick: elections on followers, heartbeats and CheckQuorum on the leader. */
  tick(): void {
    if (this.currentRole === 'leader') this.tickLeader();
    else this.tickFollower();
  }

  private tickFollower(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.campaign();
    }
  }

  private tickLeader(): void {
    this.heartbeatElapsed++;
    this.leaderTicks++;
    // A transfer that has not finished within an election timeout is abandoned (thesis §3.10).
    if (this.leadTransferee !== null && ++this.transferElapsed >= this.config.electionTicks) this.leadTransferee = null;
    // CheckQuorum (thesis §6.2): a leader that has not heard from a majority within an election timeout steps
    // down, checked at every tick so it never lasts longer than electionTicks + 1 after losing its majority.
    if (this.config.checkQuorum && !this.quorumHeardRecently()) {
      this.becomeFollower(this.currentTerm, null);
      return;
    }
    this.tickSnapshotRetransmits();
    this.releaseOfferedSnapshot();
    if (this.heartbeatElapsed >= this.config.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      this.broadcastHeartbeat();
    }
  }

  /** step handles one message from a peer. Messages not addressed to this member are ignored. */
  step(message: Message): void {
    if (message.to !== this.config.id || message.from === this.config.id) return;
    if (message.term > this.currentTerm) {
      if (!this.stepHigherTerm(message)) return;
    } else if (message.term < this.currentTerm) {
      this.stepLowerTerm(message);
      return;
    }
    switch (message.type) {
      case 'PreVoteRequest':
      case 'VoteRequest':
        this.handleVoteRequest(message);
        return;
      case 'TimeoutNow':
        this.handleTimeoutNow(message.from);
        return;
      case 'ReadIndexResponse':
        // The answer to a read this member forwarded, whatever its role now: the confirmation it carries happened
        // after the request reached that leader, so the index is valid (thesis §6.4).
        if (message.rejected) this.droppedReads.push(message.context);
        else this.readStates.push({ context: message.context, index: message.index });
        return;
      default:
        break;
    }
    switch (this.currentRole) {
      case 'leader':
        this.stepLeader(message);
        return;
      case 'pre-candidate':
      case 'candidate':
        this.stepCandidate(message);
        return;
      case 'follower':
        this.stepFollower(message);
        return;
      default:
        unreachable(this.currentRole);
    }
  }

  /** stepHigherTerm adopts a higher term when the message warrants it; false means drop the message. */
  private stepHigherTerm(message: Message): boolean {
    const isVoteRequest = message.type === 'PreVoteRequest' || message.type === 'VoteRequest';
    if (isVoteRequest && this.inLease() && !(message.type === 'VoteRequest' && message.transfer)) {
      // A member that heard from its leader within the election timeout ignores elections (thesis §4.2.3, §9.6).
      return false;
    }
    if (message.type === 'PreVoteRequest') return true;
    if (message.type === 'PreVoteResponse' && message.granted) return true;
    const fromLeader =
      message.type === 'AppendRequest' || message.type === 'HeartbeatRequest' || message.type === 'SnapshotRequest';
    this.becomeFollower(message.term, fromLeader ? message.from : null);
    return true;
  }

  /** stepLowerTerm answers stale messages that would otherwise keep their sender stuck. */
  private stepLowerTerm(message: Message): void {
    if (message.type === 'AppendRequest' || message.type === 'HeartbeatRequest') {
      // A deposed leader learns the new term from this answer and steps down (needed with CheckQuorum/PreVote,
      // under which this member would not otherwise disturb it).
      this.send({ type: 'AppendResponse', to: message.from, success: false, matchIndex: 0, conflictIndex: 0, conflictTerm: 0, rejectedIndex: 0 });
    } else if (message.type === 'PreVoteRequest') {
      this.send({ type: 'PreVoteResponse', to: message.from, granted: false });
    } else if (message.type === 'VoteRequest') {
      // Raft Figure 2: a stale candidate learns the current term from the refusal. Without it a candidate whose
      // log is the most up to date but whose term lags could never catch up with a member that keeps campaigning in
      // a configuration it cannot win (its own is stale, its peers gone): both raise their terms at the same pace,
      // and the lagging one's requests went unanswered for ever (simulator seed 23978, PreVote off).
      this.send({ type: 'VoteResponse', to: message.from, granted: false });
    }
  }

  /** propose appends normal entries when leader; each datum becomes one entry. */
  propose(data: readonly Uint8Array[]): ProposeResult {
    invariant(data.length > 0, 'propose: no data');
    const refusal = this.refuseProposal();
    if (refusal !== null) return refusal;
    let bytes = 0;
    for (const datum of data) {
      if (datum.length + 16 > this.config.messageBytesMax) return this.refused('entry-too-large');
      bytes += datum.length + 16;
    }
    if (this.uncommittedBytes > 0 && this.uncommittedBytes + bytes > this.config.uncommittedBytesMax) {
      return this.refused('uncommitted-bytes-exceeded');
    }
    const firstIndex = this.log.lastIndex + 1;
    const entries: Entry[] = data.map((datum, i) => ({ kind: 'normal', index: firstIndex + i, term: this.currentTerm, data: datum }));
    this.appendAsLeader(entries);
    return { ok: true, term: this.currentTerm, firstIndex, lastIndex: this.log.lastIndex };
  }

  /** proposeMembership appends one membership change; a change waits until the previous one committed (§4.1). */
  proposeMembership(change: MembershipChange): ProposeResult {
    const refusal = this.refuseProposal();
    if (refusal !== null) return refusal;
    if (this.log.lastConfigIndex > this.log.committed) return this.refused('membership-change-pending');
    if (validateChange(this.log.membership, change) !== null) return this.refused('membership-change-invalid');
    const index = this.log.lastIndex + 1;
    this.appendAsLeader([{ kind: 'membership', index, term: this.currentTerm, change, membership: applyChange(this.log.membership, change) }]);
    return { ok: true, term: this.currentTerm, firstIndex: index, lastIndex: index };
  }

  private refuseProposal(): ProposeResult | null {
    if (this.currentRole !== 'leader') return this.refused('not-leader');
    if (this.leadTransferee !== null) return this.refused('transfer-in-progress');
    return null;
  }

  private refused(code: Exclude<ProposeResult, { ok: true }>['code']): ProposeResult {
    return { ok: false, code, leaderHint: this.currentLeader === this.config.id ? null : this.currentLeader };
  }

  /** readIndex registers a linearizable read; its ReadState (or a dropped read) arrives in a later Ready. */
  readIndex(context: string): ReadIndexResult {
    if (this.currentRole === 'leader') {
      if (this.pendingReadCount() >= this.config.pendingReadsMax) {
        return { ok: false, code: 'too-many-pending-reads', leaderHint: null };
      }
      this.leaderReadIndex(context, this.config.id);
      return { ok: true };
    }
    if (this.currentLeader === null) return { ok: false, code: 'no-leader', leaderHint: null };
    this.send({ type: 'ReadIndexRequest', to: this.currentLeader, context });
    return { ok: true };
  }

  /** transferLeadership hands leadership to `to` (thesis §3.10): catch it up, then send TimeoutNow. */
  transferLeadership(to: NodeId): TransferResult {
    if (this.currentRole !== 'leader') return { ok: false, code: 'not-leader', leaderHint: this.currentLeader };
    if (to === this.config.id) return { ok: true };
    if (!this.log.membership.voters.includes(to)) return { ok: false, code: 'unknown-member', leaderHint: null };
    if (this.leadTransferee !== null) {
      return this.leadTransferee === to ? { ok: true } : { ok: false, code: 'transfer-in-progress', leaderHint: null };
    }
    this.leadTransferee = to;
    this.transferElapsed = 0;
    const progress = this.progress.get(to);
    invariant(progress !== undefined, `no progress for voter ${to}`);
    if (progress.match === this.log.lastIndex) this.send({ type: 'TimeoutNow', to });
    else this.sendAppend(to);
    return { ok: true };
  }

  /** campaign starts an election now: PreVote first when configured (thesis §9.6). */
  campaign(): void {
    if (this.currentRole === 'leader' || !this.promotable()) return;
    if (this.config.preVote) this.becomePreCandidate();
    else this.becomeCandidate(false);
  }

  /** reportUnreachable tells the leader that messages to `peer` failed: probe it again from scratch. */
  reportUnreachable(peer: NodeId): void {
    const progress = this.progress.get(peer);
    if (this.currentRole !== 'leader' || progress === undefined) return;
    if (progress.state === 'replicate') progress.becomeProbe(progress.match + 1);
    else if (progress.state === 'snapshot') progress.snapshotChunkInFlight = false;
  }

  /**
   * compact records that the driver's durable state machine reflects the log up to `index` (<= applied and
   * persisted) and drops the log up to it. The core keeps only the meta of that snapshot: when a follower needs the
   * image, wantsSnapshot turns true and the driver offers one (offerSnapshot).
   */
  compact(index: number): void {
    if (index <= this.log.snapshotIndex) return;
    const term = this.log.termAt(index);
    invariant(term !== undefined, () => `compact: no entry at ${index}`);
    this.log.compact({ index, term, membership: this.log.membershipAt(index) });
  }

  /**
   * wantsSnapshot is true when this leader has a follower whose next entries were compacted away and no usable
   * offered image to stream to it: the driver should capture its state machine and call offerSnapshot.
   */
  get wantsSnapshot(): boolean {
    if (this.currentRole !== 'leader' || this.usableOfferedSnapshot() !== null) return false;
    for (const progress of this.progress.values()) if (progress.state === 'snapshot' && progress.snapshot === null) return true;
    return false;
  }

  /**
   * offerSnapshot hands the core the state machine's image at `index` (applied, at or after the snapshot index, so
   * its term is known) for the followers waiting for one; false when it cannot be used (not the leader, or the
   * index is outside the log the core holds, or was compacted past meanwhile). The followers waiting start
   * streaming it at once; the image is released once no follower streams it.
   */
  offerSnapshot(index: number, data: Uint8Array): boolean {
    if (this.currentRole !== 'leader' || index < this.log.snapshotIndex || index > this.log.applied) return false;
    const term = this.log.termAt(index);
    if (term === undefined) return false;
    const snapshot: Snapshot = { meta: { index, term, membership: this.log.membershipAt(index) }, data };
    this.offeredSnapshot = snapshot;
    for (const [peer, progress] of this.progress) {
      if (progress.state !== 'snapshot' || progress.snapshot !== null) continue;
      progress.becomeSnapshot(snapshot);
      this.sendSnapshotChunk(peer, progress);
    }
    return true;
  }

  /**
   * offeredSnapshotIndex is the index of the image this leader holds for followers (null when none): the driver keeps
   * the log after it, within bounds, so that a follower installing it can go on from the log.
   */
  get offeredSnapshotIndex(): number | null {
    return this.offeredSnapshot?.meta.index ?? null;
  }

  /** usableOfferedSnapshot is the offered image if a follower installing it can go on from the log (else null). */
  private usableOfferedSnapshot(): Snapshot | null {
    const offered = this.offeredSnapshot;
    if (offered === null || offered.meta.index < this.log.snapshotIndex) return null;
    return offered;
  }

  /** releaseOfferedSnapshot drops the offered image once no follower streams it (it can be large). */
  private releaseOfferedSnapshot(): void {
    const offered = this.offeredSnapshot;
    if (offered === null) return;
    for (const progress of this.progress.values()) if (progress.snapshot === offered) return;
    this.offeredSnapshot = null;
  }

  // ---------------------------------------------------------------------------------------------------------
  // Roles.

  private becomeFollower(term: number, leader: NodeId | null): void {
    invariant(term >= this.currentTerm, () => `term would go back from ${this.currentTerm} to ${term}`);
    if (term > this.currentTerm) this.adoptTerm(term);
    if (this.currentRole === 'leader') this.dropPendingReads();
    this.currentRole = 'follower';
    this.currentLeader = leader;
    this.leadTransferee = null;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.progress.clear();
    this.offeredSnapshot = null;
    this.resetRandomizedElectionTimeout();
  }

  /**
   * adoptTerm moves to a higher term, forgetting the vote, and drops the queued messages of older terms. Dropping is
   * always safe (Raft tolerates loss), and keeping them is not; found by the simulator (F2, seed 3170):
   *   1. follower F appends entry 14 from leader A (term 11) in memory and queues "success, match 14";
   *   2. before F's next Ready, leader B (term 13) makes F truncate its log at 12;
   *   3. the next Ready persists only entry 12 but would still send the term-11 acknowledgement of 14, which A may
   *      count towards committing an entry F never stored.
   */
  private adoptTerm(term: number): void {
    invariant(term > this.currentTerm, () => `adoptTerm: ${term} is not above ${this.currentTerm}`);
    this.currentTerm = term;
    this.votedFor = null;
    this.messages = this.messages.filter((message) => message.term >= term);
  }

  private becomePreCandidate(): void {
    // PreVote changes neither term nor vote: a partitioned member cannot inflate the term (thesis §9.6).
    this.firstPreVoteRound = this.currentRole === 'follower' && this.currentLeader !== null;
    this.currentRole = 'pre-candidate';
    this.currentLeader = null;
    this.votes = new Map([[this.config.id, true]]);
    this.electionElapsed = 0;
    this.resetRandomizedElectionTimeout();
    if (this.electionWon()) {
      this.becomeCandidate(false);
      return;
    }
    for (const voter of this.log.membership.voters) {
      if (voter === this.config.id) continue;
      this.send({ type: 'PreVoteRequest', to: voter, term: this.currentTerm + 1, lastLogIndex: this.log.lastIndex, lastLogTerm: this.log.lastTerm });
    }
  }

  private becomeCandidate(transfer: boolean): void {
    this.adoptTerm(this.currentTerm + 1);
    this.votedFor = this.config.id;
    this.currentRole = 'candidate';
    this.currentLeader = null;
    this.votes = new Map([[this.config.id, true]]);
    this.electionElapsed = 0;
    this.resetRandomizedElectionTimeout();
    if (this.electionWon()) {
      this.becomeLeader();
      return;
    }
    for (const voter of this.log.membership.voters) {
      if (voter === this.config.id) continue;
      this.send({ type: 'VoteRequest', to: voter, lastLogIndex: this.log.lastIndex, lastLogTerm: this.log.lastTerm, transfer });
    }
  }

  private becomeLeader(): void {
    this.currentRole = 'leader';
    this.currentLeader = this.config.id;
    this.leadTransferee = null;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.leaderTicks = 0;
    this.uncommittedBytes = 0;
    this.progress.clear();
    this.offeredSnapshot = null;
    for (const member of membersOf(this.log.membership)) {
      if (member !== this.config.id) this.progress.set(member, new Progress(this.log.lastIndex + 1, this.leaderTicks));
    }
    // A no-op of the new term lets the leader commit, and so learn the commit index (Raft §5.4.2, §8).
    this.appendAsLeader([{ kind: 'noop', index: this.log.lastIndex + 1, term: this.currentTerm }]);
  }

  /**
   * promotable tells whether this member may campaign. A voter of its latest configuration may. So may a member that
   * its latest, still uncommitted configuration removes but the committed one still names a voter: it may be needed
   * to commit that very removal (thesis §4.2.2, Figure 4.6); it then asks only the latest configuration's voters and
   * does not count its own vote (electionWon counts the latest voters only).
   */
  private promotable(): boolean {
    if (this.log.membership.voters.includes(this.config.id)) return true;
    return this.log.lastConfigIndex > this.log.committed && this.log.membershipAt(this.log.committed).voters.includes(this.config.id);
  }

  private resetRandomizedElectionTimeout(): void {
    this.randomizedElectionTimeout = this.config.electionTicks + this.prng.nextInt(this.config.electionTicks);
  }

  /** inLease tells whether this member heard from a live leader within the election timeout (CheckQuorum on). */
  private inLease(): boolean {
    if (!this.config.checkQuorum) return false;
    if (this.currentRole === 'leader') return true;
    return this.currentLeader !== null && this.electionElapsed < this.config.electionTicks;
  }

  /** heardRecently tells whether the leader heard from `progress`'s member within the last election timeout. */
  private heardRecently(progress: Progress): boolean {
    return this.leaderTicks - progress.lastHeardTick < this.config.electionTicks;
  }

  private quorumHeardRecently(): boolean {
    const voters = this.log.membership.voters;
    let active = 0;
    for (const voter of voters) {
      const progress = this.progress.get(voter);
      if (voter === this.config.id || (progress !== undefined && this.heardRecently(progress))) active++;
    }
    return active >= quorumSize(voters);
  }

  // ---------------------------------------------------------------------------------------------------------
  // Elections.

  private handleVoteRequest(message: PreVoteRequest | VoteRequest): void {
    const upToDate = this.log.isUpToDate(message.lastLogTerm, message.lastLogIndex);
    if (message.type === 'PreVoteRequest') {
      // message.term is the term the sender would campaign in; ours is unchanged either way.
      const granted = message.term > this.currentTerm && upToDate && !this.winsPreVoteTie(message);
      this.send({ type: 'PreVoteResponse', to: message.from, term: granted ? message.term : this.currentTerm, granted });
      return;
    }
    const canVote = this.votedFor === message.from || (this.votedFor === null && this.currentLeader === null);
    const granted = canVote && upToDate;
    if (granted) {
      this.electionElapsed = 0;
      // The vote is part of the hard state of the next Ready, durable before this response leaves (§5.1).
      if (this.config.testOnlyBugs?.voteWithoutPersist !== true) this.votedFor = message.from;
    }
    this.send({ type: 'VoteResponse', to: message.from, granted });
  }

  /**
   * winsPreVoteTie tells whether this member, a pre-candidate in its first round, refuses `message` because the
   * two logs are equally up to date and its own id sorts first. Without it, two followers that time out within a
   * message delay of each other (both survivors of a crashed leader, say) grant each other's pre-votes, both
   * become candidates in the same term, each votes for itself, and the election is split: nobody leads until
   * another randomized timeout, which doubles the failover. With it exactly one of them wins the pre-vote, and the
   * other votes for it. Liveness (never safety: pre-votes change no state) is what is at stake, so the tie-break
   * holds only for the first round after losing a leader, only within a tick of that round's start, and only
   * against a sender that has not answered this round yet: a pre-candidate whose first round failed (its winner
   * crashed, or cannot reach a majority) grants as plain PreVote does, which costs at most the one timeout that a
   * split vote would have cost.
   * Raft §5.2 notes that ranking candidates outright hurts availability; this is the bounded form of it.
   */
  private winsPreVoteTie(message: PreVoteRequest): boolean {
    if (this.currentRole !== 'pre-candidate' || !this.firstPreVoteRound) return false;
    // Only a race is a tie: the sender's request came within a tick of this round's start (two pre-votes cross in a
    // message delay, far below a tick), and the sender has not answered ours (a refusal, or a grant that made us a
    // candidate). A later request comes from a peer that was still in its lease when ours arrived (it ignored ours),
    // and refusing it would make both wait out our next timeout: 1.3-1.9 s more in loaded test runs.
    if (this.electionElapsed > 1 || this.votes.has(message.from)) return false;
    if (message.lastLogTerm !== this.log.lastTerm || message.lastLogIndex !== this.log.lastIndex) return false;
    return this.config.id < message.from;
  }

  private stepCandidate(message: Message): void {
    switch (message.type) {
      case 'AppendRequest':
      case 'HeartbeatRequest':
      case 'SnapshotRequest':
        // A leader of our term exists (a pre-candidate's term is the leader's own).
        this.becomeFollower(message.term, message.from);
        this.stepFollower(message);
        return;
      case 'PreVoteResponse':
        if (this.currentRole === 'pre-candidate') this.recordVote(message.from, message.granted);
        return;
      case 'VoteResponse':
        if (this.currentRole === 'candidate') this.recordVote(message.from, message.granted);
        return;
      case 'ReadIndexRequest':
        this.send({ type: 'ReadIndexResponse', to: message.from, context: message.context, index: 0, rejected: true });
        return;
      default:
        return;
    }
  }

  private recordVote(from: NodeId, granted: boolean): void {
    if (!this.log.membership.voters.includes(from)) return;
    this.votes.set(from, granted);
    if (this.electionWon()) {
      if (this.currentRole === 'pre-candidate') this.becomeCandidate(false);
      else this.becomeLeader();
    } else if (this.electionLost()) {
      this.becomeFollower(this.currentTerm, null);
    }
  }

  private electionWon(): boolean {
    const voters = this.log.membership.voters;
    let granted = 0;
    for (const voter of voters) if (this.votes.get(voter) === true) granted++;
    return granted >= quorumSize(voters);
  }

  private electionLost(): boolean {
    const voters = this.log.membership.voters;
    let rejected = 0;
    for (const voter of voters) if (this.votes.get(voter) === false) rejected++;
    return rejected > voters.length - quorumSize(voters);
  }

  private handleTimeoutNow(from: NodeId): void {
    // Only the current leader may hand over leadership, and only to a voter.
    if (this.currentRole !== 'follower' || this.currentLeader !== from || !this.promotable()) return;
    this.becomeCandidate(true);
  }

  // ---------------------------------------------------------------------------------------------------------
  // Follower.

  private stepFollower(message: Message): void {
    switch (message.type) {
      case 'AppendRequest':
        this.followLeader(message.from);
        this.handleAppendRequest(message);
        return;
      case 'HeartbeatRequest':
        this.followLeader(message.from);
        this.handleHeartbeat(message);
        return;
      case 'SnapshotRequest':
        this.followLeader(message.from);
        this.handleSnapshotRequest(message);
        return;
      case 'ReadIndexRequest':
        // Not the leader: the requester retries elsewhere.
        this.send({ type: 'ReadIndexResponse', to: message.from, context: message.context, index: 0, rejected: true });
        return;
      default:
        return;
    }
  }

  private followLeader(leader: NodeId): void {
    this.electionElapsed = 0;
    this.currentLeader = leader;
  }

  private handleAppendRequest(message: AppendRequest): void {
    const base = { type: 'AppendResponse', to: message.from, conflictIndex: 0, conflictTerm: 0 } as const;
    if (message.prevLogIndex < this.log.committed) {
      // Everything up to our commit index matches the leader's log already; tell it where to continue.
      this.send({ ...base, success: true, matchIndex: this.log.committed, rejectedIndex: 0 });
      return;
    }
    if (this.log.termAt(message.prevLogIndex) !== message.prevLogTerm) {
      this.send({ ...base, ...this.conflictHint(message.prevLogIndex), success: false, matchIndex: 0, rejectedIndex: message.prevLogIndex });
      return;
    }
    const lastNew = message.prevLogIndex + message.entries.length;
    for (const entry of message.entries) {
      const existing = this.log.termAt(entry.index);
      if (existing === entry.term) continue;
      // The first conflicting entry and all that follow it go (Raft §5.3); committed entries never conflict.
      if (existing !== undefined) this.log.truncateFrom(entry.index);
      this.log.append(message.entries.slice(entry.index - message.prevLogIndex - 1));
      break;
    }
    this.log.commitTo(Math.min(message.commit, lastNew));
    if (message.noReply === true && message.entries.length === 0) return;
    this.send({ ...base, success: true, matchIndex: lastNew, rejectedIndex: 0 });
  }

  /** conflictHint tells the leader where to back up to in one step instead of one entry per round trip. */
  private conflictHint(prevLogIndex: number): { conflictIndex: number; conflictTerm: number } {
    if (prevLogIndex > this.log.lastIndex) return { conflictIndex: this.log.lastIndex + 1, conflictTerm: 0 };
    const term = this.log.termAt(prevLogIndex);
    invariant(term !== undefined, `conflict hint: no term at ${prevLogIndex}`);
    return { conflictIndex: Math.max(this.log.firstIndexOfTerm(prevLogIndex, term), this.log.committed + 1), conflictTerm: term };
  }

  private handleHeartbeat(message: HeartbeatRequest): void {
    // The leader sends min(match, commit), so our log matches its log up to there. A commit beyond our log means
    // the leader counts entries we acknowledged and no longer have (our disk lost them): say from where.
    const lastIndex = this.log.lastIndex;
    this.log.commitTo(Math.min(message.commit, lastIndex));
    if (message.commit > lastIndex) this.send({ type: 'HeartbeatResponse', to: message.from, readRound: message.readRound, missingFrom: lastIndex + 1 });
    else this.send({ type: 'HeartbeatResponse', to: message.from, readRound: message.readRound });
  }

  private handleSnapshotRequest(message: SnapshotRequest): void {
    const index = message.meta.index;
    const reply = (nextOffset: number, installed: boolean): void =>
      this.send({ type: 'SnapshotResponse', to: message.from, index, nextOffset, installed });
    if (index <= this.log.committed) {
      this.incomingSnapshot = null;
      reply(message.totalBytes, true);
      return;
    }
    const current = this.incomingSnapshot;
    const sameStream = current !== null && sameSnapshotStream(current.request, message);
    // A duplicated first chunk must not throw away what was received of the same stream.
    if (message.offset === 0 && !(sameStream && current.received > 0)) {
      this.incomingSnapshot = { request: message, chunks: [], received: 0 };
    }
    const incoming = this.incomingSnapshot;
    if (incoming === null || !sameSnapshotStream(incoming.request, message) || incoming.received !== message.offset) {
      reply(incoming !== null && sameSnapshotStream(incoming.request, message) ? incoming.received : 0, false);
      return;
    }
    if (incoming.received + message.data.length > message.totalBytes || (message.done && incoming.received + message.data.length !== message.totalBytes)) {
      this.incomingSnapshot = null;
      reply(0, false);
      return;
    }
    incoming.chunks.push(message.data);
    incoming.received += message.data.length;
    if (!message.done) {
      reply(incoming.received, false);
      return;
    }
    this.incomingSnapshot = null;
    this.installSnapshot(message, concatChunks(incoming.chunks, incoming.received));
    reply(incoming.received, true);
  }

  private installSnapshot(message: SnapshotRequest, data: Uint8Array): void {
    const meta = message.meta;
    if (this.log.termAt(meta.index) === meta.term) {
      // Our log already holds the snapshot's last entry: keep the log, just commit up to it (Raft §7).
      this.log.commitTo(meta.index);
      return;
    }
    this.log.restore({ meta, data });
  }

  // ---------------------------------------------------------------------------------------------------------
  // Leader.

  private stepLeader(message: Message): void {
    const progress = this.progress.get(message.from);
    if (progress !== undefined) progress.lastHeardTick = this.leaderTicks;
    switch (message.type) {
      case 'AppendResponse':
        if (progress !== undefined) this.handleAppendResponse(message, progress);
        return;
      case 'HeartbeatResponse':
        if (progress !== undefined) this.handleHeartbeatResponse(message, progress);
        return;
      case 'SnapshotResponse':
        if (progress !== undefined) this.handleSnapshotResponse(message, progress);
        return;
      case 'ReadIndexRequest':
        if (this.pendingReadCount() >= this.config.pendingReadsMax) {
          this.send({ type: 'ReadIndexResponse', to: message.from, context: message.context, index: 0, rejected: true });
        } else {
          this.leaderReadIndex(message.context, message.from);
        }
        return;
      default:
        return;
    }
  }

  private handleAppendResponse(message: AppendResponse, progress: Progress): void {
    if (!message.success) {
      this.handleAppendReject(message, progress);
      return;
    }
    if (message.matchIndex > this.log.lastIndex) return; // A confused peer; never trust an index we do not have.
    const advanced = progress.acknowledge(message.matchIndex);
    // Any success tells where the logs match: stop probing and pipeline from there.
    if (progress.state === 'probe') progress.becomeReplicate();
    else if (progress.state === 'snapshot' && progress.match >= (progress.snapshot?.meta.index ?? 0)) progress.becomeProbe(progress.match + 1);
    if (advanced) {
      if (this.maybeCommit()) this.broadcastAppend();
      if (message.from === this.leadTransferee && progress.match === this.log.lastIndex) {
        this.send({ type: 'TimeoutNow', to: message.from });
      }
    }
    // Keep the pipeline going, but answer an answer with an empty append only to bring the follower's commit index
    // up to date (once): an unconditional empty append would ping-pong forever.
    this.sendAppend(message.from, progress.commitSent < this.log.committed);
  }

  private handleAppendReject(message: AppendResponse, progress: Progress): void {
    if (message.rejectedIndex === 0) return; // A stale-term answer carries no hint.
    // Ignore stale rejects: for a request already superseded by a match, or not the probe we wait for.
    if (message.rejectedIndex <= progress.match) return;
    if (progress.state === 'probe' && message.rejectedIndex !== progress.next - 1) return;
    let next = message.conflictIndex;
    if (message.conflictTerm > 0) {
      const ours = this.log.lastIndexOfTerm(message.rejectedIndex, message.conflictTerm);
      if (ours > 0) next = ours + 1;
    }
    next = Math.min(Math.max(next, progress.match + 1), message.rejectedIndex);
    progress.becomeProbe(next);
    this.sendAppend(message.from);
  }

  private handleHeartbeatResponse(message: HeartbeatResponse, progress: Progress): void {
    progress.probeSent = false;
    // The follower lacks entries it had acknowledged (a disk that lost acknowledged writes): its refusals of our
    // appends fall at or below its match and read as stale, so without this it would stay behind for this whole
    // term. Replicate to it again from the first index it lacks. A late or duplicated answer of this kind costs at
    // most entries sent twice; the commit index never goes down (maybeCommit only raises it).
    if (message.missingFrom !== undefined && message.missingFrom >= 1 && message.missingFrom <= progress.match) {
      progress.forgetFrom(message.missingFrom);
      this.sendAppend(message.from);
    }
    // An answer came but the pipeline is still full: some append was probably lost. Free one slot so the next
    // append goes out; if the follower misses entries it rejects it and probing starts (etcd does the same).
    if (progress.state === 'replicate' && progress.inflightFull(this.config.inflightMessagesMax, this.config.inflightBytesMax)) {
      progress.freeFirstInflight();
    }
    // A round never sent (a confused or stale peer) confirms nothing.
    if (message.readRound > progress.readRoundAcked && message.readRound <= this.reads.roundSent) {
      progress.readRoundAcked = message.readRound;
      this.confirmReads();
    }
    if (progress.state === 'snapshot') {
      if (progress.snapshot === null) this.sendAppend(message.from);
      else if (!progress.snapshotChunkInFlight) this.sendSnapshotChunk(message.from, progress);
    } else if (progress.match < this.log.lastIndex) {
      this.sendAppend(message.from);
    }
  }

  private handleSnapshotResponse(message: SnapshotResponse, progress: Progress): void {
    if (progress.state !== 'snapshot' || progress.snapshot === null || message.index !== progress.snapshot.meta.index) return;
    if (message.installed) {
      progress.acknowledge(message.index);
      progress.becomeProbe(message.index + 1);
      this.sendAppend(message.from);
      return;
    }
    // One chunk in flight per follower. An answer naming the offset of the chunk already in flight is a copy of the
    // answer that sent it (the network may deliver a message twice; a chunk sent again meets an unchanged
    // follower): sending that chunk again would answer each copy with a chunk and each chunk with an answer, an
    // exchange that never shrinks and grows with every further copy. A chunk lost on the way is sent again by
    // tickSnapshotRetransmits.
    const nextOffset = Math.min(message.nextOffset, progress.snapshot.data.length);
    if (progress.snapshotChunkInFlight && nextOffset === progress.snapshotOffset) return;
    progress.snapshotOffset = nextOffset;
    progress.snapshotChunkInFlight = false;
    this.sendSnapshotChunk(message.from, progress);
  }

  private appendAsLeader(entries: readonly Entry[]): void {
    for (const entry of entries) this.uncommittedBytes += entryBytes(entry);
    this.log.append(entries);
    // A membership change takes effect as soon as it is in the log (thesis §4.1).
    this.syncProgressWithMembership();
    this.broadcastAppend();
    // A single-voter group commits as soon as the entries are durable (see advance()).
  }

  private syncProgressWithMembership(): void {
    const members = new Set(membersOf(this.log.membership));
    for (const member of members) {
      if (member !== this.config.id && !this.progress.has(member)) {
        this.progress.set(member, new Progress(this.log.lastIndex, this.leaderTicks));
      }
    }
    for (const member of [...this.progress.keys()]) if (!members.has(member)) this.progress.delete(member);
  }

  /** maybeCommit commits the highest index stored on a majority, if it is of the current term (Raft §5.4.2). */
  private maybeCommit(): boolean {
    const voters = this.log.membership.voters;
    const index = quorumValue(voters, (voter) =>
      voter === this.config.id ? this.log.persisted : (this.progress.get(voter)?.match ?? 0),
    );
    if (index <= this.log.committed) return false;
    const countPriorTerms = this.config.testOnlyBugs?.commitPriorTermByCounting === true;
    if (this.log.termAt(index) !== this.currentTerm && !countPriorTerms) return false;
    const previous = this.log.committed;
    this.log.commitTo(index);
    this.onCommitted(previous);
    return true;
  }

  private onCommitted(previous: number): void {
    for (let index = previous + 1; index <= this.log.committed; index++) {
      const entry = this.log.entryAt(index);
      if (entry !== undefined && entry.term === this.currentTerm) this.uncommittedBytes -= entryBytes(entry);
    }
    this.uncommittedBytes = Math.max(0, this.uncommittedBytes);
    if (this.log.termAt(this.log.committed) === this.currentTerm) this.releaseReadsBeforeTermCommit();
    if (!this.log.membership.voters.includes(this.config.id) && this.log.lastConfigIndex <= this.log.committed) {
      // A leader removed from the configuration steps down once the removal is committed (thesis §4.2.2).
      this.becomeFollower(this.currentTerm, null);
    }
  }

  private broadcastAppend(): void {
    for (const peer of this.progress.keys()) this.sendAppend(peer);
  }

  private broadcastHeartbeat(): void {
    for (const [peer, progress] of this.progress) {
      const commit = Math.min(progress.match, this.log.committed);
      progress.commitSent = Math.max(progress.commitSent, commit);
      this.send({ type: 'HeartbeatRequest', to: peer, commit, readRound: this.reads.roundSent });
    }
  }

  /**
   * sendAppend sends the next AppendRequest to `peer` if flow control allows (Raft §5.3, pipelined). An empty
   * append (which carries the commit index, or probes) goes only when `sendIfEmpty`; a probe always goes.
   */
  private sendAppend(peer: NodeId, sendIfEmpty = true): void {
    const progress = this.progress.get(peer);
    if (progress === undefined) return;
    if (progress.state === 'snapshot' && progress.snapshot !== null) return;
    if (progress.state === 'probe' && progress.probeSent) return;
    if (progress.state === 'replicate' && progress.inflightFull(this.config.inflightMessagesMax, this.config.inflightBytesMax)) return;
    const prevLogIndex = progress.next - 1;
    const prevLogTerm = this.log.termAt(prevLogIndex);
    if (prevLogTerm === undefined) {
      // The entries this follower needs were compacted away: send a snapshot instead (Raft §7), the one offered if it
      // is recent enough, else wait for the driver to offer one (wantsSnapshot).
      const offered = this.usableOfferedSnapshot();
      progress.becomeSnapshot(offered);
      if (offered !== null) this.sendSnapshotChunk(peer, progress);
      return;
    }
    const budget = progress.state === 'replicate'
      ? Math.min(this.config.messageBytesMax, progress.inflightBytesFree(this.config.inflightBytesMax))
      : this.config.messageBytesMax;
    const entries = progress.next <= this.log.lastIndex ? this.log.slice(progress.next, this.log.lastIndex, budget) : [];
    if (entries.length === 0 && progress.state === 'replicate' && !sendIfEmpty) return;
    let bytes = 0;
    for (const entry of entries) bytes += entryBytes(entry);
    // Only the commit index for a follower that acknowledged all it was sent: its answer would say nothing new.
    if (entries.length === 0 && progress.state === 'replicate' && progress.match === prevLogIndex) {
      this.send({ type: 'AppendRequest', to: peer, prevLogIndex, prevLogTerm, entries, commit: this.log.committed, noReply: true });
    } else {
      this.send({ type: 'AppendRequest', to: peer, prevLogIndex, prevLogTerm, entries, commit: this.log.committed });
    }
    progress.commitSent = this.log.committed;
    progress.sentAppend(prevLogIndex + entries.length, bytes, entries.length);
  }

  private sendSnapshotChunk(peer: NodeId, progress: Progress): void {
    const snapshot = progress.snapshot;
    invariant(snapshot !== null, 'snapshot state without a snapshot');
    const total = snapshot.data.length;
    const end = Math.min(total, progress.snapshotOffset + this.config.snapshotChunkBytes);
    this.send({
      type: 'SnapshotRequest',
      to: peer,
      meta: snapshot.meta,
      offset: progress.snapshotOffset,
      totalBytes: total,
      data: snapshot.data.subarray(progress.snapshotOffset, end),
      done: end === total,
    });
    progress.snapshotChunkInFlight = true;
    progress.snapshotTicksSinceSend = 0;
  }

  /** tickSnapshotRetransmits resends a snapshot chunk whose answer has not come within an election timeout. */
  private tickSnapshotRetransmits(): void {
    for (const [peer, progress] of this.progress) {
      if (progress.state !== 'snapshot' || !progress.snapshotChunkInFlight) continue;
      progress.snapshotTicksSinceSend++;
      if (progress.snapshotTicksSinceSend >= this.config.electionTicks) this.sendSnapshotChunk(peer, progress);
    }
  }

  // ---------------------------------------------------------------------------------------------------------
  // ReadIndex (thesis §6.4).

  private pendingReadCount(): number {
    return this.reads.size + this.readsBeforeTermCommit.length;
  }

  private leaderReadIndex(context: string, requester: NodeId): void {
    if (this.log.termAt(this.log.committed) !== this.currentTerm) {
      // Until an entry of its own term commits, the leader does not know the commit index (§6.4 step 1).
      this.readsBeforeTermCommit.push({ context, requester });
      return;
    }
    this.reads.add(context, requester, this.log.committed);
    this.startReadRoundIfIdle();
  }

  private releaseReadsBeforeTermCommit(): void {
    const waiting = this.readsBeforeTermCommit;
    if (waiting.length === 0) return;
    this.readsBeforeTermCommit = [];
    for (const read of waiting) this.reads.add(read.context, read.requester, this.log.committed);
    this.startReadRoundIfIdle();
  }

  private startReadRoundIfIdle(): void {
    if (this.reads.roundInFlight || !this.reads.hasUnassigned) return;
    if (this.log.membership.voters.length === 1) {
      this.answerReads(this.reads.releaseAll());
      return;
    }
    this.reads.startRound();
    this.broadcastHeartbeat();
  }

  private confirmReads(): void {
    const confirmed = quorumValue(this.log.membership.voters, (voter) =>
      voter === this.config.id ? this.reads.roundSent : (this.progress.get(voter)?.readRoundAcked ?? 0),
    );
    const released = this.reads.confirm(confirmed);
    if (released.length === 0) return;
    this.answerReads(released);
    this.startReadRoundIfIdle();
  }

  private answerReads(released: readonly { context: string; requester: NodeId; index: number }[]): void {
    for (const read of released) {
      if (read.requester === this.config.id) this.readStates.push({ context: read.context, index: read.index });
      else this.send({ type: 'ReadIndexResponse', to: read.requester, context: read.context, index: read.index, rejected: false });
    }
  }

  private dropPendingReads(): void {
    const dropped = [...this.reads.dropAll(), ...this.readsBeforeTermCommit];
    this.readsBeforeTermCommit = [];
    for (const read of dropped) {
      if (read.requester === this.config.id) this.droppedReads.push(read.context);
      else this.send({ type: 'ReadIndexResponse', to: read.requester, context: read.context, index: 0, rejected: true });
    }
  }

  // ---------------------------------------------------------------------------------------------------------
  // Ready / advance.

  /** send queues a message of the current term; it leaves with the next Ready. */
  private send(message: DistributiveOmit<Message, 'from' | 'term'> & { term?: number }): void {
    this.messages.push({ ...message, from: this.config.id, term: message.term ?? this.currentTerm } as Message);
  }

  private hardState(): HardState {
    return { term: this.currentTerm, vote: this.votedFor, commit: this.log.committed };
  }

  private softState(): SoftState {
    return { leader: this.currentLeader, role: this.currentRole, term: this.currentTerm };
  }

  /** hasReady tells whether ready() has work; always false while a Ready awaits advance(). */
  hasReady(): boolean {
    if (this.readyOutstanding) return false;
    const hard = this.hardState();
    const soft = this.softState();
    return (
      this.messages.length > 0 ||
      this.readStates.length > 0 ||
      this.droppedReads.length > 0 ||
      this.log.pendingSnapshot !== null ||
      this.log.persisted < this.log.lastIndex ||
      this.log.applied < this.log.committed ||
      !sameHardState(hard, this.persistedHardState) ||
      soft.leader !== this.reportedSoftState.leader ||
      soft.role !== this.reportedSoftState.role ||
      soft.term !== this.reportedSoftState.term
    );
  }

  /** ready hands out the next batch of work (see Ready in types.ts for the contract). */
  ready(): Ready {
    invariant(!this.readyOutstanding, 'ready() called again before advance()');
    const hard = this.hardState();
    const soft = this.softState();
    const softChanged = soft.leader !== this.reportedSoftState.leader || soft.role !== this.reportedSoftState.role || soft.term !== this.reportedSoftState.term;
    const hardChanged = !sameHardState(hard, this.persistedHardState);
    const entries = this.log.persisted < this.log.lastIndex ? this.log.slice(this.log.persisted + 1, this.log.lastIndex, Infinity) : [];
    const snapshot = this.log.pendingSnapshot;
    const applyFrom = Math.max(this.log.applied, snapshot?.meta.index ?? 0) + 1;
    const committedEntries = applyFrom <= this.log.committed ? this.log.slice(applyFrom, this.log.committed, this.config.committedBytesPerReadyMax) : [];
    const termOrVoteChanged = hard.term !== this.persistedHardState.term || hard.vote !== this.persistedHardState.vote;
    const ready: Ready = {
      softState: softChanged ? soft : null,
      hardState: hardChanged ? hard : null,
      snapshot,
      entries,
      committedEntries,
      messages: this.messages,
      readStates: this.readStates,
      droppedReads: this.droppedReads,
      mustSync: termOrVoteChanged || entries.length > 0 || snapshot !== null,
      messagesBeforePersist: this.currentRole === 'leader' && !termOrVoteChanged && snapshot === null && this.messages.every((message) => SENDABLE_BEFORE_PERSIST.has(message.type)),
    };
    this.messages = [];
    this.readStates = [];
    this.droppedReads = [];
    // The heartbeats of every round started so far leave with this Ready: later reads need a later round.
    this.reads.markDispatched();
    this.log.pendingSnapshot = null;
    this.reportedSoftState = soft;
    this.readyOutstanding = true;
    return ready;
  }

  /** advance acknowledges that the Ready was persisted, its messages sent and its committed entries applied. */
  advance(ready: Ready): void {
    invariant(this.readyOutstanding, 'advance() without an outstanding ready()');
    this.readyOutstanding = false;
    if (ready.hardState !== null) this.persistedHardState = ready.hardState;
    if (ready.snapshot !== null) this.log.applied = Math.max(this.log.applied, ready.snapshot.meta.index);
    this.markPersisted(ready);
    const lastApplied = ready.committedEntries[ready.committedEntries.length - 1];
    if (lastApplied !== undefined) {
      invariant(lastApplied.index <= this.log.committed, 'applied beyond commit');
      this.log.applied = Math.max(this.log.applied, lastApplied.index);
    }
    if (this.currentRole === 'leader' && this.maybeCommit()) this.broadcastAppend();
  }

  /** markPersisted raises the persisted mark to the last entry of the Ready still in the log with its term. */
  private markPersisted(ready: Ready): void {
    for (let i = ready.entries.length - 1; i >= 0; i--) {
      const entry = ready.entries[i];
      if (entry !== undefined && this.log.termAt(entry.index) === entry.term) {
        // Entries before this one in the Ready are durable too, and precede it in our log.
        this.log.persisted = Math.max(this.log.persisted, entry.index);
        return;
      }
    }
  }

  // ---------------------------------------------------------------------------------------------------------
  // Observers.

  get id(): NodeId {
    return this.config.id;
  }
  get role(): Role {
    return this.currentRole;
  }
  get term(): number {
    return this.currentTerm;
  }
  get vote(): NodeId | null {
    return this.votedFor;
  }
  get leader(): NodeId | null {
    return this.currentLeader;
  }
  get commitIndex(): number {
    return this.log.committed;
  }
  get appliedIndex(): number {
    return this.log.applied;
  }
  get firstIndex(): number {
    return this.log.firstIndex;
  }
  get lastIndex(): number {
    return this.log.lastIndex;
  }
  get snapshotIndex(): number {
    return this.log.snapshotIndex;
  }
  get membership(): Membership {
    return this.log.membership;
  }
  /** membershipAt returns the configuration in force at `index` (at or after the snapshot index). */
  membershipAt(index: number): Membership {
    return this.log.membershipAt(index);
  }
  /** entryAt returns the in-memory entry at `index`, or undefined when compacted or beyond the log. */
  entryAt(index: number): Entry | undefined {
    return this.log.entryAt(index);
  }
  /** termAt returns the term at `index` (snapshot index included), or undefined. */
  termAt(index: number): number | undefined {
    return this.log.termAt(index);
  }

  /** status reports the core's state, including the leader's view of every follower. */
  status(): RaftStatus {
    const progress: Record<NodeId, ProgressStatus> = {};
    for (const [peer, p] of this.progress) progress[peer] = { match: p.match, next: p.next, state: p.state, recentActive: this.heardRecently(p), ticksSinceHeard: this.leaderTicks - p.lastHeardTick };
    return {
      id: this.config.id,
      role: this.currentRole,
      term: this.currentTerm,
      vote: this.votedFor,
      leader: this.currentLeader,
      commitIndex: this.log.committed,
      appliedIndex: this.log.applied,
      lastIndex: this.log.lastIndex,
      snapshotIndex: this.log.snapshotIndex,
      membership: this.log.membership,
      ticksSinceLeaderContact: this.currentRole === 'leader' ? 0 : this.electionElapsed,
      progress,
    };
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

/** sameSnapshotStream tells whether two chunks belong to one stream: same leader term, snapshot and size. */
function sameSnapshotStream(a: SnapshotRequest, b: SnapshotRequest): boolean {
  return a.term === b.term && a.meta.index === b.meta.index && a.meta.term === b.meta.term && a.totalBytes === b.totalBytes;
}

function concatChunks(chunks: readonly Uint8Array[], total: number): Uint8Array {
  const data = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    data.set(chunk, offset);
    offset += chunk.length;
  }
  return data;
}

/** validateConfig asserts the configuration's own relations (the driver derives it from src/limits.ts). */
function validateConfig(config: RaftConfig): void {
  invariant(config.id.length > 0, 'config: empty id');
  invariant(config.heartbeatTicks >= 1 && config.heartbeatTicks < config.electionTicks, 'config: heartbeatTicks must be in [1, electionTicks)');
  invariant(config.inflightMessagesMax >= 1, 'config: inflightMessagesMax must be >= 1');
  invariant(config.inflightBytesMax >= config.messageBytesMax, 'config: inflightBytesMax must be >= messageBytesMax');
  invariant(config.uncommittedBytesMax >= config.messageBytesMax, 'config: uncommittedBytesMax must be >= messageBytesMax');
  invariant(config.committedBytesPerReadyMax >= 1, 'config: committedBytesPerReadyMax must be >= 1');
  invariant(config.snapshotChunkBytes >= 1 && config.snapshotChunkBytes <= config.messageBytesMax, 'config: snapshotChunkBytes must be in [1, messageBytesMax]');
  invariant(config.pendingReadsMax >= 1, 'config: pendingReadsMax must be >= 1');
}
