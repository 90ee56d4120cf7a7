// state-digest: the digest of a member's stored keyspace at its applied index, for the replica-consistency check
// (`cairn check`, GET /cairn/v1/state/digest; docs/operations.md "Checking that the replicas agree").
//
// Why it can be compared: every member applies the same committed commands in the same order, and a member that
// installs a snapshot writes the image's records as they are, so at the same applied index every member's keyspace
// holds the same keys with the same bytes. Two digests that differ at one index mean a replica diverged: a bug in a
// deterministic apply, or a record changed whole under a valid checksum, which no frame check can see. A member
// restored from an image written by another release may hold that release's encoding of the same records; compare
// members of one release.
//
// The digest is SHA-256 over every record in key order, each as: key length (4 bytes, big-endian), value length
// (4 bytes), the key's UTF-8 bytes, the value's bytes (the stored value without its storage frame). Reading is one
// consistent view of the store (RaftStorage.keyspaceView), a read batch at a time, so the member goes on writing
// meanwhile; the work is bounded by the keyspace, which the registry's limits bound.

import { createHash } from 'node:crypto';
import { CairnError } from '../errors.ts';
import type { KeyspaceView, RaftStorage } from './storage.ts';

/** StateDigest is a member's stored keyspace summarised at one applied index. */
export interface StateDigest {
  /** applied is the index of the last command the digested keyspace holds the effect of. */
  readonly applied: number;
  readonly records: number;
  /** bytes counts the keys' UTF-8 bytes and the values' bytes. */
  readonly bytes: number;
  /** sha256 is the digest, in lower-case hex. */
  readonly sha256: string;
}

/**
 * digestKeyspace digests `storage`'s keyspace as of now. Refused with CAIRN_MEMBER_BEHIND (retryable) while a
 * snapshot received from the leader is not restored into the keyspace yet: the records are then the state at no index.
 */
export async function digestKeyspace(storage: RaftStorage): Promise<StateDigest> {
  if (storage.keyspaceView === undefined) {
    throw new CairnError('CAIRN_NOT_IMPLEMENTED', "this member's storage cannot take a consistent view of its keyspace: no state digest");
  }
  return digestView(await storage.keyspaceView());
}

/**
 * DigestPace is awaited after each read batch with the milliseconds the digest worked since it last resumed (the
 * batch's unframing and hashing; the read of the next batch runs meanwhile on libuv's pool): a background digest
 * waits here so that it takes a bounded share of the event loop.
 */
export type DigestPace = (workedMs: number) => Promise<void>;

/**
 * digestView digests a view of the keyspace (digestKeyspace), awaiting `pace` between read batches when given;
 * CAIRN_MEMBER_BEHIND when the view is not trusted.
 */
export async function digestView(view: KeyspaceView, pace?: DigestPace): Promise<StateDigest> {
  if (!view.trusted) {
    throw new CairnError('CAIRN_MEMBER_BEHIND', 'this member is installing a snapshot from the leader; its keyspace is the state at no index yet: ask again shortly');
  }
  const hash = createHash('sha256');
  const lengths = Buffer.alloc(8);
  let records = 0;
  let bytes = 0;
  let resumed = performance.now();
  for await (const batch of view.batches) {
    for (const [key, value] of batch) {
      const keyBytes = Buffer.from(key, 'utf8');
      lengths.writeUInt32BE(keyBytes.length, 0);
      lengths.writeUInt32BE(value.length, 4);
      hash.update(lengths);
      hash.update(keyBytes);
      hash.update(value);
      records++;
      bytes += keyBytes.length + value.length;
    }
    if (pace !== undefined) {
      await pace(performance.now() - resumed);
      resumed = performance.now();
    }
  }
  return { applied: view.applied, records, bytes, sha256: hash.digest('hex') };
}
