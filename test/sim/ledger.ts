// SafetyLedger: what the invariant checks remember across a run. It is the simulator's view of the one true history:
// who led each term, which entry is committed at each index, which content each (index, term) pair names, and the
// state machine's digest at each snapshot index. Every sighting on any member is compared with it.
import type { NodeId } from '../../src/raft/types.ts';

/** CommittedRecord is the entry committed at one index, as first seen on any member. */
export interface CommittedRecord {
  readonly term: number;
  /** digest is the entry's content digest, or null while only its term is known (seen through a snapshot). */
  digest: number | null;
  /** observedTerm bounds from above the term of the leader that committed it (the observer's term when first seen). */
  readonly observedTerm: number;
  readonly firstSeenBy: NodeId;
}

/** EntryRecord is what one (index, term) pair names, as first seen in any member's log. */
export interface EntryRecord {
  readonly digest: number;
  /** prevTerm is the term at index - 1 in the log that held it, or undefined while unknown. */
  prevTerm: number | undefined;
  readonly firstSeenBy: NodeId;
}

/** StateRecord is the state machine's digest at one applied index, as first seen. */
export interface StateRecord {
  readonly digest: number;
  readonly firstSeenBy: NodeId;
}

/** NodeObservation is what the checks last saw of one member in its current incarnation. */
export interface NodeObservation {
  incarnation: number;
  term: number;
  commit: number;
  /** leaderTerm is the term in which the member was last seen leading, or 0 when it was not leading. */
  leaderTerm: number;
  leaderLastIndex: number;
  leaderLastTerm: number;
  /** leaderCommitStart is the member's commit index when it started leading leaderTerm. */
  leaderCommitStart: number;
}

/** SafetyLedger is the shared memory of the safety invariants. */
export class SafetyLedger {
  /** leaderByTerm maps each term to the only member ever seen leading it (Election Safety, Raft §5.2). */
  readonly leaderByTerm = new Map<number, NodeId>();
  /** committed maps each committed index to its entry (State Machine Safety, Raft §5.4.3). */
  readonly committed = new Map<number, CommittedRecord>();
  committedMax = 0;
  /** entries maps (index, term) to the entry it names (Log Matching, Raft §5.3). */
  readonly entries = new Map<number, EntryRecord>();
  /** states maps an applied index to the state machine's digest there (replicas agree byte for byte). */
  readonly states = new Map<number, StateRecord>();
  readonly nodes: NodeObservation[];

  constructor(nodeCount: number) {
    this.nodes = [];
    for (let i = 0; i < nodeCount; i++) {
      this.nodes.push({ incarnation: -1, term: 0, commit: 0, leaderTerm: 0, leaderLastIndex: 0, leaderLastTerm: 0, leaderCommitStart: 0 });
    }
  }

  /** observation returns the observation slot of node `index`. */
  observation(index: number): NodeObservation {
    const observation = this.nodes[index];
    if (observation === undefined) throw new Error(`ledger: no node ${index}`);
    return observation;
  }
}

/** entryKey packs (index, term) into one number; terms stay far below 2^20 in a simulated run. */
export function entryKey(index: number, term: number): number {
  return index * 1048576 + term;
}
