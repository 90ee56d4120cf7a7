// The seam between the driver and the disk: Raft's log, its hard state, snapshots and the state machine's keyspace.
import type { Entry, HardState, Membership, Snapshot, SnapshotMeta } from '../raft/types.ts';
import type { BatchWrite } from './state-machine.ts';

/** KeyspaceBatch is a run of stored keyspace records, in key order. */
export type KeyspaceBatch = ReadonlyArray<readonly [string, Uint8Array]>;

/** KEYSPACE_BATCH_RECORDS bounds the records of one KeyspaceBatch. */
export const KEYSPACE_BATCH_RECORDS = 1024;

/**
 * KeyspaceView is the stored keyspace as of one applied index, read from a consistent view of the store taken
 * between two writes: writes made after keyspaceView() resolved are not seen. `trusted` is false while a snapshot
 * installed from the leader has not been restored into the keyspace yet (the stored applied index is below the
 * snapshot's): the records are then not the state at any index, and the view holds none. Iterate `batches` to the
 * end (or break out of the loop): that releases the view.
 */
export interface KeyspaceView {
  readonly applied: number;
  readonly trusted: boolean;
  readonly batches: AsyncIterable<KeyspaceBatch>;
}

/** MemberIdentity is written once when a member joins a cluster; a member refuses to start without it as a voter. */
export interface MemberIdentity {
  /** clusterId is chosen by the member that bootstraps the cluster and copied by every member that joins it. */
  readonly clusterId: string;
  /** memberId is the member's address (its --addr). */
  readonly memberId: string;
}

/** StoredRaftState is what a restarting member loads; see PersistedState in src/raft/types.ts. */
export interface StoredRaftState {
  readonly identity: MemberIdentity;
  readonly hardState: HardState;
  /** snapshot identifies the stored snapshot: the log holds the entries after its index. */
  readonly snapshot: SnapshotMeta;
  /**
   * snapshotData is the image of a snapshot installed from the leader and kept until the member compacts its own
   * log (load() may return applied below its index: then it must be restored first); null when the stored keyspace
   * is the snapshot (compactLog), and then applied >= snapshot.index always.
   */
  readonly snapshotData: Uint8Array | null;
  readonly entries: readonly Entry[];
  readonly applied: number;
}

/** AppliedWrite is a state-machine batch and the applied index it brings the stored keyspace to. */
export interface AppliedWrite {
  readonly writes: readonly BatchWrite[];
  readonly index: number;
}

/**
 * ReadyWrite is the durable part of one Ready: snapshot (replaces the whole log), entries (overwrite from the first),
 * hard state, and optionally the state-machine batch of the Ready's committed entries with their applied index
 * (after the entries in the same atomic batch, so a committed entry and its effect on the keyspace are written by one
 * storage write, not two: the driver's hot path).
 */
export interface ReadyWrite {
  readonly snapshot: Snapshot | null;
  readonly entries: readonly Entry[];
  readonly hardState: HardState | null;
  readonly applied?: AppliedWrite | null;
}

/**
 * RaftStorage is the durable store of one member. Every method either completes durably (when asked to sync) or
 * rejects; a rejected write leaves the store as it was (one atomic batch) and the member must crash and recover.
 * Corruption (a checksum mismatch, an undecodable record, a hole in the log) is reported as CAIRN_STORAGE_CORRUPT
 * and never served.
 */
/** PeerContactOutcome is what recordPeerContact did: recorded it now, found it recorded, or refused it (bound reached). */
export type PeerContactOutcome = 'recorded' | 'known' | 'full';

export interface RaftStorage {
  /** load returns the member's state, or null when the store has never been initialised. */
  load(): Promise<StoredRaftState | null>;
  /** initialise writes the identity and the bootstrap state (snapshot at index 0 with `membership`) of a new member. */
  initialise(identity: MemberIdentity, membership: Membership): Promise<void>;
  /**
   * writeReady persists a Ready's snapshot, entries, hard state and (when given) applied batch in one atomic batch,
   * fsynced when `sync`; the applied index may not pass the last index after the entries.
   */
  writeReady(write: ReadyWrite, sync: boolean): Promise<void>;
  /**
   * writeApplied commits a state-machine batch together with the applied index in one atomic, durable batch. Exception: the
   * restore of the stored snapshot (clearKeyspace while the stored applied index is below the snapshot's) may write
   * the keyspace in several batches and the applied index last; if it fails half way the applied index is unchanged,
   * so the keyspace is not trusted and the snapshot is restored again (the contract of load()'s applied index).
   */
  writeApplied(writes: readonly BatchWrite[], applied: number, clearKeyspace: boolean): Promise<void>;
  /**
   * compactLog makes the stored keyspace the snapshot at `meta.index` and drops the log up to it: everything written
   * before the call is made durable first (the keyspace's applied index must have reached `meta.index`), then the
   * snapshot meta and the log deletions go in one fsynced batch; a stored snapshot image is dropped. The snapshot
   * costs a small write whatever the registry's size: its image is encoded only when a follower needs it.
   */
  compactLog(meta: SnapshotMeta): Promise<void>;
  /**
   * recordPeerContact durably records (fsynced) that this member has heard from `peer`, before it acts on anything
   * the peer said. A member that starts with an empty data directory asks every peer whether it has heard from it:
   * if one has, its data was wiped and it must not rejoin as a voter that forgot its votes and acknowledgements.
   * Works before load()/initialise() too (the record outlives the Raft state it protects). At most `contactsMax`
   * peers are recorded: a peer already recorded is 'known', a new one beyond the bound is 'full' and not recorded
   * (limits.peerContactsMax: the peer port is not authenticated, so made-up sender ids must not grow the disk).
   */
  recordPeerContact(peer: string, contactsMax: number): Promise<PeerContactOutcome>;
  /** hasPeerContact tells whether contact with `peer` is recorded (a point lookup, whatever else is recorded). */
  hasPeerContact(peer: string): Promise<boolean>;
  /** peerContacts lists the peers this member has heard from, in key order, at most `listedMax` of them. */
  peerContacts(listedMax: number): Promise<string[]>;
  /**
   * keyspace iterates the state machine's stored keys and values, in key order, in batches of at most
   * KEYSPACE_BATCH_RECORDS (a start-up reads a million records: one await per batch, not per record).
   */
  keyspace(): AsyncIterable<KeyspaceBatch>;
  /**
   * keyspaceView is the stored keyspace with the applied index it is at, from one consistent view (KeyspaceView):
   * what the replica-consistency check digests (src/replica/state-digest.ts) while the member keeps writing.
   * Optional, as a capability added after the seam was set: a store without it cannot be digested
   * (CAIRN_NOT_IMPLEMENTED). LevelStorage, the in-memory twin and the simulator's store have it.
   */
  keyspaceView?(): Promise<KeyspaceView>;
  /** close releases the store; pending writes complete first. */
  close(): Promise<void>;
}
