// Types of the pure Raft core: entries, messages, the Ready batch and the results of proposals.
//
// Everything here is plain data. The driver (src/replica, or the simulator in test/sim) turns
// messages into bytes and entries into disk writes; the core never sees either.

/** NodeId is a member's identity: its HTTP address "host:port" in production, any string in tests. */
export type NodeId = string;

/** Role is what a member currently does in its group. */
export type Role = 'follower' | 'pre-candidate' | 'candidate' | 'leader';

/** MembershipChange is one single-member change (Raft thesis §4.1): add a learner, promote it, or remove a member. */
export interface MembershipChange {
  readonly type: 'add-learner' | 'promote' | 'remove';
  readonly node: NodeId;
}

/** Membership is a configuration: voters decide elections and commitment; learners only receive the log. */
export interface Membership {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
}

/** Entry is one log entry. Invariant: index >= 1, term >= 1. */
export type Entry =
  | { readonly kind: 'normal'; readonly index: number; readonly term: number; readonly data: Uint8Array }
  | { readonly kind: 'noop'; readonly index: number; readonly term: number }
  | {
      readonly kind: 'membership';
      readonly index: number;
      readonly term: number;
      readonly change: MembershipChange;
      /**
       * membership is the whole configuration after the change. Entries carry it, not just the change, so a member
       * that joined with no configuration of its own learns the right one from the entry itself.
       */
      readonly membership: Membership;
    };

/** HardState is what must be durable before any message that depends on it leaves the member (Raft §5.1, Figure 2). */
export interface HardState {
  readonly term: number;
  /** vote is the member voted for in `term`, or null. */
  readonly vote: NodeId | null;
  /** commit is the highest index known committed; persisting it is an optimisation, not a safety requirement. */
  readonly commit: number;
}

/** SnapshotMeta identifies a snapshot: the last index and term it covers and the membership as of that index. */
export interface SnapshotMeta {
  readonly index: number;
  readonly term: number;
  readonly membership: Membership;
}

/** Snapshot is a state-machine image at `meta.index`; `data` is opaque to the core. */
export interface Snapshot {
  readonly meta: SnapshotMeta;
  readonly data: Uint8Array;
}

/** ReadState says: a read registered with `context` is linearizable once the state machine has applied `index`. */
export interface ReadState {
  readonly context: string;
  readonly index: number;
}

/** SoftState is volatile: who leads and what this member does; reported in Ready when it changes. */
export interface SoftState {
  readonly leader: NodeId | null;
  readonly role: Role;
  readonly term: number;
}

interface MessageBase {
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: number;
}

/** PreVoteRequest asks whether the sender could win an election at `term` (the sender's term + 1) without changing anyone's term (thesis §9.6). */
export interface PreVoteRequest extends MessageBase {
  readonly type: 'PreVoteRequest';
  readonly lastLogIndex: number;
  readonly lastLogTerm: number;
}
/** PreVoteResponse answers a PreVoteRequest; `term` echoes the requested term when granted. */
export interface PreVoteResponse extends MessageBase {
  readonly type: 'PreVoteResponse';
  readonly granted: boolean;
}
/** VoteRequest is RequestVote (Raft §5.2); `transfer` marks a leadership transfer, which may bypass the leader lease (thesis §3.10). */
export interface VoteRequest extends MessageBase {
  readonly type: 'VoteRequest';
  readonly lastLogIndex: number;
  readonly lastLogTerm: number;
  readonly transfer: boolean;
}
/** VoteResponse answers a VoteRequest. */
export interface VoteResponse extends MessageBase {
  readonly type: 'VoteResponse';
  readonly granted: boolean;
}
/** AppendRequest is AppendEntries (Raft §5.3). */
export interface AppendRequest extends MessageBase {
  readonly type: 'AppendRequest';
  readonly prevLogIndex: number;
  readonly prevLogTerm: number;
  readonly entries: readonly Entry[];
  readonly commit: number;
  /**
   * noReply (only with no entries) marks an append that carries just the commit index to a follower whose match is
   * prevLogIndex already: its answer would tell the leader nothing, so an accepting follower sends none (a reject is
   * answered; heartbeats keep the leader hearing from it).
   */
  readonly noReply?: true;
}
/**
 * AppendResponse answers an AppendRequest. On success `matchIndex` is the last index known to match the leader.
 * On a reject, `conflictIndex`/`conflictTerm` are the fast-backtracking hints: the follower's first index of the
 * conflicting term (or its last index + 1 when its log is too short, with conflictTerm 0).
 */
export interface AppendResponse extends MessageBase {
  readonly type: 'AppendResponse';
  readonly success: boolean;
  readonly matchIndex: number;
  readonly conflictIndex: number;
  readonly conflictTerm: number;
  /** rejectedIndex is the prevLogIndex of the request being rejected (0 on success), so stale rejects are ignored. */
  readonly rejectedIndex: number;
}
/** HeartbeatRequest asserts leadership and carries the commit index and the latest ReadIndex round. */
export interface HeartbeatRequest extends MessageBase {
  readonly type: 'HeartbeatRequest';
  readonly commit: number;
  readonly readRound: number;
}
/**
 * HeartbeatResponse acknowledges leadership for `readRound`. `missingFrom` is set when the heartbeat's commit index
 * lies beyond the member's log: the leader sends min(match, commit), so it believes the member holds entries the
 * member no longer has (its disk lost writes it had acknowledged); missingFrom is the first index it lacks.
 */
export interface HeartbeatResponse extends MessageBase {
  readonly type: 'HeartbeatResponse';
  readonly readRound: number;
  readonly missingFrom?: number;
}
/** SnapshotRequest is one chunk of InstallSnapshot (Raft §7): bytes [offset, offset + data.length) of `totalBytes`. */
export interface SnapshotRequest extends MessageBase {
  readonly type: 'SnapshotRequest';
  readonly meta: SnapshotMeta;
  readonly offset: number;
  readonly totalBytes: number;
  readonly data: Uint8Array;
  readonly done: boolean;
}
/** SnapshotResponse acknowledges the chunks up to `nextOffset` of the snapshot at `index`; `installed` when whole. */
export interface SnapshotResponse extends MessageBase {
  readonly type: 'SnapshotResponse';
  readonly index: number;
  readonly nextOffset: number;
  readonly installed: boolean;
}
/** TimeoutNow tells a caught-up follower to start an election at once (leadership transfer, thesis §3.10). */
export interface TimeoutNow extends MessageBase {
  readonly type: 'TimeoutNow';
}
/** ReadIndexRequest is a follower asking the leader for a read index on behalf of `context`. */
export interface ReadIndexRequest extends MessageBase {
  readonly type: 'ReadIndexRequest';
  readonly context: string;
}
/** ReadIndexResponse returns the confirmed read index for `context` (index 0 with `rejected` when the leader cannot serve it). */
export interface ReadIndexResponse extends MessageBase {
  readonly type: 'ReadIndexResponse';
  readonly context: string;
  readonly index: number;
  readonly rejected: boolean;
}

/** Message is every message a core sends or receives. */
export type Message =
  | PreVoteRequest
  | PreVoteResponse
  | VoteRequest
  | VoteResponse
  | AppendRequest
  | AppendResponse
  | HeartbeatRequest
  | HeartbeatResponse
  | SnapshotRequest
  | SnapshotResponse
  | TimeoutNow
  | ReadIndexRequest
  | ReadIndexResponse;

/** MessageType is the discriminant of Message. */
export type MessageType = Message['type'];

/**
 * Ready is one batch of work for the driver. Contract (DESIGN.md, docs/raft.md):
 * 1. Persist `snapshot` (if any; it replaces the whole stored log), then `entries` (deleting any stored entries
 *    with index >= entries[0].index first), then `hardState` (if any), as one durable write when `mustSync`.
 * 2. Only then send `messages`, unless `messagesBeforePersist`: then they may leave before or while step 1 runs.
 * 3. Apply `snapshot` (restore) and then `committedEntries` in order; serve `readStates` once applied >= index.
 * 4. Call `advance(ready)`.
 * No other Ready is handed out between ready() and advance().
 */
export interface Ready {
  readonly softState: SoftState | null;
  readonly hardState: HardState | null;
  readonly snapshot: Snapshot | null;
  readonly entries: readonly Entry[];
  readonly committedEntries: readonly Entry[];
  readonly messages: readonly Message[];
  readonly readStates: readonly ReadState[];
  /** droppedReads are contexts of reads that will never get a ReadState (leadership lost, refused): fail them now. */
  readonly droppedReads: readonly string[];
  /** mustSync is true when term, vote or entries changed: the write must be fsynced before messages leave. */
  readonly mustSync: boolean;
  /**
   * messagesBeforePersist is true when every message may leave before this Ready is persisted (Raft thesis
   * §10.2.1): the member is the leader, this Ready changes neither term nor vote (both are durable already), and
   * the messages only replicate (AppendRequest, HeartbeatRequest, SnapshotRequest, TimeoutNow, ReadIndexResponse).
   * Safe because the leader counts itself towards commitment only with entries it has persisted (advance()), so
   * an entry the leader loses in a crash is committed only if a majority of followers hold it. Followers' and
   * candidates' messages (acknowledgements, votes) always wait for the write.
   */
  readonly messagesBeforePersist: boolean;
}

/** ProposeErrorCode is why a proposal was refused before it entered the log; it certainly did not commit. */
export type ProposeErrorCode =
  | 'not-leader'
  | 'transfer-in-progress'
  | 'uncommitted-bytes-exceeded'
  | 'entry-too-large'
  | 'membership-change-pending'
  | 'membership-change-invalid';

/** ProposeResult is the outcome of propose(): the log positions taken, or a typed refusal with a leader hint. */
export type ProposeResult =
  | { readonly ok: true; readonly term: number; readonly firstIndex: number; readonly lastIndex: number }
  | { readonly ok: false; readonly code: ProposeErrorCode; readonly leaderHint: NodeId | null };

/** ReadIndexErrorCode is why readIndex() could not register a read. */
export type ReadIndexErrorCode = 'no-leader' | 'too-many-pending-reads';

/** ReadIndexResult says whether a read was registered; its ReadState arrives in a later Ready. */
export type ReadIndexResult = { readonly ok: true } | { readonly ok: false; readonly code: ReadIndexErrorCode; readonly leaderHint: NodeId | null };

/** TransferResult is the outcome of transferLeadership(). */
export type TransferResult = { readonly ok: true } | { readonly ok: false; readonly code: 'not-leader' | 'unknown-member' | 'transfer-in-progress'; readonly leaderHint: NodeId | null };

/**
 * TestOnlyBugs plants known bugs, one switch each, so that the simulator can prove it catches them (positive
 * controls). Never set outside tests.
 */
export interface TestOnlyBugs {
  /** commitPriorTermByCounting commits entries of earlier terms once replicated on a majority (Raft §5.4.2, Figure 8). */
  readonly commitPriorTermByCounting?: boolean;
  /** voteWithoutPersist grants votes without recording them in the hard state. */
  readonly voteWithoutPersist?: boolean;
}

/** RaftConfig configures one core. Tick counts are in driver ticks (production: 1 tick = limits.raftTickMs). */
export interface RaftConfig {
  readonly id: NodeId;
  /** electionTicks is the base election timeout; each timeout is drawn from [electionTicks, 2 * electionTicks). */
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  /** seed feeds the core's PRNG (election jitter); the core has no other source of randomness. */
  readonly seed: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  /** inflightMessagesMax bounds un-acknowledged AppendRequests per follower. */
  readonly inflightMessagesMax: number;
  /** inflightBytesMax bounds un-acknowledged entry bytes per follower. */
  readonly inflightBytesMax: number;
  /** messageBytesMax bounds the entry bytes of one AppendRequest (at least one entry is always sent). */
  readonly messageBytesMax: number;
  /** uncommittedBytesMax bounds the leader's appended but uncommitted entry bytes; beyond it proposals are refused. */
  readonly uncommittedBytesMax: number;
  /** committedBytesPerReadyMax bounds the committed entry bytes handed out in one Ready (at least one entry). */
  readonly committedBytesPerReadyMax: number;
  /** snapshotChunkBytes is the size of one InstallSnapshot chunk. */
  readonly snapshotChunkBytes: number;
  /** pendingReadsMax bounds reads waiting for a ReadIndex confirmation. */
  readonly pendingReadsMax: number;
  readonly testOnlyBugs?: TestOnlyBugs;
}

/** PersistedState is what a restarting member loaded from its storage. */
export interface PersistedState {
  readonly hardState: HardState;
  /**
   * snapshot identifies the latest durable snapshot (for a new member, index 0 with the bootstrap membership); its
   * image is the driver's state machine, which the core asks for only when a follower needs it (offerSnapshot).
   */
  readonly snapshot: SnapshotMeta;
  /** entries are the durable log entries after snapshot.meta.index, contiguous. */
  readonly entries: readonly Entry[];
  /** applied is the last index the state machine has durably applied (>= snapshot.meta.index). */
  readonly applied: number;
}
