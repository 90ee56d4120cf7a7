// The seam between the driver and the network: Raft messages and forwarded client writes between members.
import type { Message, NodeId } from '../raft/types.ts';
import type { BackupHeader } from './backup.ts';
import type { PeerCheckpoints } from './checkpoints.ts';

/** ForwardRequest is a client write a follower hands to the leader: the encoded command, proposed there as is. */
export interface ForwardRequest {
  readonly command: Uint8Array;
  /** deadlineMs is the time the client is still waiting, so the leader can give up in time. */
  readonly deadlineMs: number;
}

/** ForwardResponse is the leader's answer: the encoded result of applying the command, or a Cairn error code. */
export type ForwardResponse =
  | { readonly ok: true; readonly result: Uint8Array; readonly index: number }
  | { readonly ok: false; readonly code: string; readonly message: string; readonly leaderHint: NodeId | null };

/** PeerHello is a member's answer to Hello: what it knows of the asking member (see peer.proto). */
export interface PeerHello {
  readonly memberId: NodeId;
  readonly initialised: boolean;
  readonly heardFromYou: boolean;
  readonly clusterId: string;
}

/** PeerBackup is a backup as the Backup method streams it: the backup file's header and the image in parts. */
export interface PeerBackup {
  readonly header: BackupHeader;
  readonly parts: readonly Uint8Array[];
}

/** PeerHandlers are the driver's entry points for what arrives from peers. */
export interface PeerHandlers {
  /** onHello answers a peer asking what this member knows of it (optional: without it Hello is refused). */
  onHello?(from: NodeId): Promise<PeerHello>;
  /** onBackup takes a backup of the state machine for `cairn backup save --from` (optional: without it Backup is refused). */
  onBackup?(requester: string): Promise<PeerBackup>;
  /**
   * onCheckpoints answers a peer asking for this member's checkpoint digests; null while it cannot answer yet (a
   * starting member). Optional: without it Checkpoints is refused.
   */
  onCheckpoints?(from: NodeId): PeerCheckpoints | null;
  /** onMessage receives one validated Raft message addressed to this member. */
  onMessage(message: Message): void;
  /** onForward handles a write forwarded by a follower. */
  onForward(from: NodeId, request: ForwardRequest): Promise<ForwardResponse>;
  /** onUnreachable reports that messages to `peer` could not be delivered (the core probes it again). */
  onUnreachable(peer: NodeId): void;
}

/**
 * PeerTransport carries Raft messages over one ordered stream per peer. send() never blocks: each peer has a
 * bounded queue (limits.peerSendQueueMessagesMax / peerSendQueueBytesMax); overflow drops the message and counts it
 * (Raft tolerates loss). Streams reconnect with backoff. Every message received is validated before it reaches
 * the handlers; an invalid one is dropped, logged and counted, never a crash.
 */
export interface PeerTransport {
  /** start listens on the peer address and begins delivering to `handlers`. */
  start(handlers: PeerHandlers): Promise<void>;
  /** send queues a message for its `to` member. */
  send(message: Message): void;
  /**
   * flush (optional) writes what send() queued now. Without it, a transport writes its queues on its own (the gRPC
   * one a turn of the event loop later, so that one Ready's messages share a write); the driver calls it after
   * sending a Ready's messages, which saves that turn on the commit path.
   */
  flush?(): void;
  /** forward sends a client write to `to` (the leader) and waits for its answer. */
  forward(to: NodeId, request: ForwardRequest): Promise<ForwardResponse>;
  /** hello asks `to` what it knows of this member; null when it cannot be reached within `timeoutMs`. */
  hello(to: NodeId, timeoutMs: number): Promise<PeerHello | null>;
  /**
   * checkpoints (optional) asks `to` for its checkpoint digests (checkpoints.ts); null when it cannot be reached,
   * does not serve them (an older release) or answers something invalid within `timeoutMs`.
   */
  checkpoints?(to: NodeId, timeoutMs: number): Promise<PeerCheckpoints | null>;
  /** setPeers tells the transport the members' addresses (after a membership change). */
  setPeers(peers: readonly NodeId[]): void;
  /** close stops listening and drops the streams. */
  close(): Promise<void>;
}
