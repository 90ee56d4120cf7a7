// RaftCore: the pure Raft state machine. SKELETON: signatures only, being implemented.
import type {
  Entry,
  Membership,
  MembershipChange,
  Message,
  NodeId,
  PersistedState,
  ProposeResult,
  RaftConfig,
  ReadIndexResult,
  Ready,
  Role,
  TransferResult,
} from './types.ts';

/** RaftCore is one member's Raft state machine: deterministic, synchronous, no IO. */
export class RaftCore {
  constructor(config: RaftConfig, state: PersistedState) {
    void config;
    void state;
    throw new Error('not implemented yet');
  }
  /** tick advances logical time by one tick. */
  tick(): void {}
  /** step handles one message from a peer. */
  step(message: Message): void {
    void message;
  }
  /** propose appends normal entries when leader. */
  propose(data: readonly Uint8Array[]): ProposeResult {
    void data;
    throw new Error('x');
  }
  /** proposeMembership appends one membership change when leader and no change is pending. */
  proposeMembership(change: MembershipChange): ProposeResult {
    void change;
    throw new Error('x');
  }
  /** readIndex registers a linearizable read; its ReadState arrives in a later Ready. */
  readIndex(context: string): ReadIndexResult {
    void context;
    throw new Error('x');
  }
  /** transferLeadership hands leadership to `to`. */
  transferLeadership(to: NodeId): TransferResult {
    void to;
    throw new Error('x');
  }
  /** campaign starts an election now (tests and bootstrap). */
  campaign(): void {}
  /** reportUnreachable tells the leader that messages to `peer` failed. */
  reportUnreachable(peer: NodeId): void {
    void peer;
  }
  /** compact records a durable snapshot of the state machine at `index` (<= applied) and drops the log up to it. */
  compact(index: number, data: Uint8Array): void {
    void index;
    void data;
  }
  /** hasReady tells whether ready() has work. */
  hasReady(): boolean {
    return false;
  }
  /** ready hands out the next batch of work. */
  ready(): Ready {
    throw new Error('x');
  }
  /** advance acknowledges that the Ready was persisted, sent and applied. */
  advance(ready: Ready): void {
    void ready;
  }
  get id(): NodeId {
    return '';
  }
  get role(): Role {
    return 'follower';
  }
  get term(): number {
    return 0;
  }
  get vote(): NodeId | null {
    return null;
  }
  get leader(): NodeId | null {
    return null;
  }
  get commitIndex(): number {
    return 0;
  }
  get appliedIndex(): number {
    return 0;
  }
  get firstIndex(): number {
    return 0;
  }
  get lastIndex(): number {
    return 0;
  }
  get snapshotIndex(): number {
    return 0;
  }
  get membership(): Membership {
    return { voters: [], learners: [] };
  }
  /** entryAt returns the in-memory entry at `index`, or undefined when compacted or beyond the log. */
  entryAt(index: number): Entry | undefined {
    void index;
    return undefined;
  }
  /** termAt returns the term at `index` (snapshot index included), or undefined. */
  termAt(index: number): number | undefined {
    void index;
    return undefined;
  }
}
