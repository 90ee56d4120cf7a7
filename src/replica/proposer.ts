// The driver's client-facing surface, as the registries above it see it.

/** ProposeOptions bound how long a caller waits for its command to commit and apply. */
export interface ProposeOptions {
  /** timeoutMs: after it, a command that may have entered the log fails with CAIRN_OUTCOME_UNKNOWN. */
  readonly timeoutMs?: number;
}

/**
 * CommandProposer replicates commands and orders reads. The Raft driver (src/replica) implements it; registries
 * (src/cp) depend only on this. Failures reject with a CairnError from src/errors.ts (CAIRN_NO_QUORUM,
 * CAIRN_NO_LEADER, CAIRN_OUTCOME_UNKNOWN, CAIRN_UNCOMMITTED_BYTES_EXCEEDED, ...).
 */
export interface CommandProposer {
  /** propose commits `command` through the log (forwarded to the leader when needed) and resolves with the encoded result of applying it. */
  propose(command: Uint8Array, options?: ProposeOptions): Promise<Uint8Array>;
  /** linearizableBarrier resolves once this member's state reflects every write committed before the call (ReadIndex, thesis §6.4). */
  linearizableBarrier(options?: ProposeOptions): Promise<void>;
}
