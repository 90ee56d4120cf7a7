// LevelStorage: a member's durable Raft state in one classic-level (LevelDB) database at <dataDir>/raft
// (DESIGN.md, "The CP path: Raft into LevelDB").
//
// Layout (every key utf8, every value bytes; sublevels are key prefixes of the one database, so one batch spans them):
//   log!<16 hex digits>   StoredEntry (encoded Entry + CRC-32C); key = indexKey(index), so key order = log order.
//                         Holds exactly the entries (snapshot index, last index], contiguous.
//   meta!format           "cairn-raft-v3"              meta!cluster-id / meta!member-id   the identity (utf8)
//   meta!hard-state       HardState                    meta!snapshot-meta                 SnapshotMeta
//   meta!snapshot-data    8-byte length + CRC-32C of the snapshot data + the generation of its chunks (utf8; absent
//                         in stores written before generations: their chunks are keyed by number alone), or the
//                         generation "keyspace" (length 0): the stored keyspace is the snapshot (compactLog), and
//                         meta!applied is at or past its index. Only a snapshot installed from the leader keeps
//                         chunks, until the member next compacts its own log.
//   meta!applied          8-byte big-endian applied index
//                         Every meta value is framed by encodeChecksummed (4-byte CRC-32C first).
//   snapshot!<generation>!<16 hex>
//                         the snapshot data, in chunks of at most snapshotChunkBytes (LevelDB handles values of
//                         hundreds of KiB well, but a multi-MiB value is copied whole through every memtable and
//                         compaction; chunks bound that at no cost). A generation (`<16 hex index>.<8 hex random>`)
//                         names one snapshot's chunks, so the next snapshot's data can be staged beside the current
//                         one (stageSnapshot) and made current by a small batch (saveSnapshot); chunks of any other
//                         generation are leftovers of a staging that never finished, deleted by the next save.
//   state!<key>           the state machine's keyspace, written by writeApplied and by writeReady's applied part,
//                         always together with meta!applied. Each value is framed by a 4-byte CRC-32C (big-endian)
//                         of the key's UTF-8 bytes followed by the value (frameState): LevelDB reads its tables
//                         without verifying block checksums (classic-level leaves verify_checksums off), so a bit
//                         flipped in a table reaches the reader as it is; the frame makes keyspace() refuse it.
//                         Format cairn-raft-v1 (before the frame) is still read: load() rewrites its keyspace once,
//                         framed, together with the new format name, in one fsynced batch (migrateKeyspace).
//                         Format cairn-raft-v2 (before "keyspace" snapshots) is read as it is and renamed v3 by
//                         load(), so a binary that would take an image-less snapshot for an empty one refuses it.
//
// Errors LevelDB itself reports while open(), load() or keyspace() read (a Corruption status, or an IO error such as a
// table shorter than the MANIFEST says) are reported as CAIRN_STORAGE_CORRUPT too (levelFailure), so a member stops
// with the documented code whichever layer noticed the damage. An IO error that is the filesystem refusing (permission
// denied, a read-only mount, a full disk, a path that is not a directory: filesystemRefusal) is no damage, and is
// reported as CAIRN_STORAGE_IO_ERROR instead, whose remedy is to fix the filesystem: CAIRN_STORAGE_CORRUPT's is to wipe
// the directory. Both carry LevelDB's (or the system's) own message.
//
// Creation: open() lets LevelDB create a database only where it has not begun one (mayCreateDatabase: no raft/ yet, or
// one holding nothing but LevelDB's lock and info log). Given create_if_missing, LevelDB takes a directory without a
// CURRENT file for a new database: it writes a fresh MANIFEST and CURRENT and deletes every table and log that MANIFEST
// does not name, so a store whose CURRENT alone was lost (which an operator can write back by hand) would be destroyed.
// Such a directory is refused before LevelDB opens it, and every other open is made with createIfMissing false.
//
// Atomicity: every method is one atomic LevelDB batch (a snapshot's chunks excepted: stageSnapshot and writeReady
// write them first, in several batches, none visible until the batch that names their generation), written through classic-level's private _batch with keys
// prefixed by their sublevel (batch()). Writes are serialised through a promise chain, so two callers cannot
// interleave the reads that plan a batch with another batch; the in-memory bounds change only after a batch
// succeeded, so a failed write leaves both the disk and the bounds as they were.
//
// Durability: writeReady fsyncs when asked (the driver asks whenever the Ready's mustSync is set; an applied part
// rides along, fsynced or not with the rest); initialise, compactLog and every chunk batch of an installed snapshot
// always fsync (a chunk must be durable before the synced switch that relies on it, whatever LevelDB's log rotation
// did), and so does writeApplied. The rule behind it: LevelDB does not fsync a write-ahead log it rotates away from,
// so an unsynced batch written just before a memtable switch can be lost in a power failure while a later synced
// batch, in the next log, survives; a keyspace batch lost that way under a later applied index would be a hole the
// restart never repairs. So the driver writes every batch that carries keyspace records with fsync (writeReady's
// applied part is synced by the driver), and where the log stops covering the keyspace (compactLog, the end of a
// restore) LevelDB first writes its memtable to a table (compactRange over an empty range: the table and the MANIFEST
// are fsynced, the older write-ahead logs dropped) before the fsynced batch that relies on it. A power failure can also keep a
// snapshot installed by writeReady without the restore that followed it; load() then returns applied < snapshot
// index with the image, and the driver must restore the snapshot before applying anything. That same rule
// lets the restore of a stored snapshot (writeApplied with clearKeyspace while the stored applied index is below the
// snapshot's) rewrite the keyspace in batches of at most 1 MiB with the applied index last: a crash or a failed batch
// in between leaves a keyspace that load()'s caller never reads, since it restores the snapshot again.
import { randomBytes } from 'node:crypto';
import { mkdir, readdir } from 'node:fs/promises';
import path from 'node:path';
import { ClassicLevel, type BatchOperation } from 'classic-level';
import type { Entry, HardState, Membership, Snapshot, SnapshotMeta } from '../raft/types.ts';
import { assert } from '../assert.ts';
import { CairnError } from '../errors.ts';
import { limits } from '../limits.ts';
import {
  CodecError, crc32c, crc32cOfText, decodeChecksummed, decodeHardState, decodeIndexValue, decodeSnapshotMeta, decodeStoredEntry,
  encodeChecksummed, encodeHardState, encodeIndexValue, encodeSnapshotMeta, encodeStoredEntry, indexKey,
  parseIndexKey, storageCorruption,
} from './codec.ts';
import {
  assertAppliedWrite, assertCompaction, assertIdentity, batchesOf, boundsAfterReadyWrite, type StoreBounds,
} from './memory-storage.ts';
import type { BatchWrite } from './state-machine.ts';
import { KEYSPACE_BATCH_RECORDS, type KeyspaceBatch, type KeyspaceView, type MemberIdentity, type PeerContactOutcome, type RaftStorage, type ReadyWrite, type StoredRaftState } from './storage.ts';

/** peerIdCharsMax bounds a recorded peer id (a member address). */
const peerIdCharsMax = 260;

/** levelLayout names the database's directory, sublevels, meta keys and format; tests use it to reach raw records. */
export const levelLayout = Object.freeze({
  directory: 'raft',
  format: 'cairn-raft-v3',
  /** formatV2 is the format before the keyspace could be the snapshot; load() renames it. */
  formatV2: 'cairn-raft-v2',
  /** formatV1 is the format before keyspace values were framed; load() migrates it. */
  formatV1: 'cairn-raft-v1',
  sublevels: Object.freeze({ log: 'log', meta: 'meta', snapshot: 'snapshot', state: 'state', contacts: 'contacts' }),
  metaKeys: Object.freeze({
    format: 'format',
    clusterId: 'cluster-id',
    memberId: 'member-id',
    hardState: 'hard-state',
    snapshotMeta: 'snapshot-meta',
    snapshotData: 'snapshot-data',
    applied: 'applied',
  }),
});

/** LevelStorageOptions tunes a LevelStorage; the defaults are production's. */
export interface LevelStorageOptions {
  /** snapshotChunkBytes bounds one stored value of snapshot data (default limits.snapshotChunkBytes). */
  readonly snapshotChunkBytes?: number;
}

type Database = ClassicLevel<string, Uint8Array>;
type Operation = BatchOperation<Database, string, Uint8Array>;

/**
 * RawOperation is an operation of classic-level's private batch method: the key carries its sublevel's prefix (the
 * exact bytes the public batch would write), the value is bytes.
 */
type RawOperation = { type: 'put'; key: string; value: Uint8Array } | { type: 'del'; key: string };
interface PrivateBatch {
  _batch(operations: RawOperation[], options: { sync: boolean }): Promise<void>;
}

function openSublevel(db: Database, name: string) {
  return db.sublevel<string, Uint8Array>(name, { valueEncoding: 'view' });
}
type Sublevel = ReturnType<typeof openSublevel>;

/** StateIterator is what readKeyspace needs of an iterator over the state sublevel. */
interface StateIterator {
  nextv(size: number): Promise<Array<[string, Uint8Array]>>;
  close(): Promise<void>;
}

// Reads of the log, the snapshot chunks and the keyspace go in batches of this many records: one native call per
// batch, bounded memory per step. The loops end when the (snapshotted) iterator is exhausted.
// (keyspace() hands a read batch over as one KeyspaceBatch, so this is also that batch's bound.)
const readBatchRecords = KEYSPACE_BATCH_RECORDS;
// ... and of at most about this many bytes (classic-level's highWaterMarkBytes: a batch stops once its records pass
// it). classic-level's default, 16 KiB, cut a read of ~450-byte instance records to ~35 records per call, so a
// keyspace of 100 000 took ~2 900 trips through libuv's pool instead of ~100 (session 28).
const readBatchBytes = 1 << 20;
// The sublevels pass iterator options through to classic-level, whose option abstract-level's types do not name.
const bulkRead: { readonly keys: true; readonly values: true; readonly highWaterMarkBytes: number } = { keys: true, values: true, highWaterMarkBytes: readBatchBytes };
const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder('utf-8', { fatal: true });

/**
 * LevelStorage implements RaftStorage on classic-level. Open it with LevelStorage.open(dataDir); call load() (or
 * initialise() on a store load() found empty) before any write: they establish the in-memory bounds (snapshot index,
 * last index, applied index, hard state) that every write is planned and checked against.
 */
export class LevelStorage implements RaftStorage {
  private readonly db: Database;
  private readonly log: Sublevel;
  private readonly meta: Sublevel;
  private readonly snapshot: Sublevel;
  private readonly state: Sublevel;
  /** contacts holds one empty record per peer this member has heard from (see RaftStorage.recordPeerContact). */
  private readonly contacts: Sublevel;
  /** contactsCount is the number of recorded contacts once recordPeerContact first counted them (null before). */
  private contactsCount: number | null = null;
  private readonly snapshotChunkBytes: number;
  /** bounds is null until load() or initialise() succeeds; it mirrors what is durable. */
  private bounds: StoreBounds | null = null;
  /** tail is the last queued operation; each operation starts when the previous one settled. */
  private tail: Promise<void> = Promise.resolve();
  /** closed is close()'s promise, once called. */
  private closed: Promise<void> | null = null;
  /** compaction settles when the latest compactLog has, its memtable flush and its batch (close waits for it). */
  private compaction: Promise<void> = Promise.resolve();
  private closing = false;

  private constructor(db: Database, options: LevelStorageOptions) {
    this.db = db;
    this.log = openSublevel(db, levelLayout.sublevels.log);
    this.meta = openSublevel(db, levelLayout.sublevels.meta);
    this.snapshot = openSublevel(db, levelLayout.sublevels.snapshot);
    this.state = openSublevel(db, levelLayout.sublevels.state);
    this.contacts = openSublevel(db, levelLayout.sublevels.contacts);
    assert(typeof (db as unknown as Partial<PrivateBatch>)._batch === 'function', 'classic-level no longer has the private _batch method LevelStorage writes through');
    this.snapshotChunkBytes = options.snapshotChunkBytes ?? limits.snapshotChunkBytes;
    assert(Number.isSafeInteger(this.snapshotChunkBytes) && this.snapshotChunkBytes > 0, 'snapshotChunkBytes must be a positive integer');
  }

  /**
   * open opens the database under `dataDir`, creating it only where LevelDB has not begun one (mayCreateDatabase):
   * a directory whose CURRENT file is missing is CAIRN_STORAGE_CORRUPT and left as it was, a filesystem that refuses
   * is CAIRN_STORAGE_IO_ERROR.
   */
  static async open(dataDir: string, options: LevelStorageOptions = {}): Promise<LevelStorage> {
    const location = path.join(dataDir, levelLayout.directory);
    const createIfMissing = await mayCreateDatabase(dataDir, location);
    const db: Database = new ClassicLevel<string, Uint8Array>(location, { valueEncoding: 'view' });
    try {
      await db.open({ createIfMissing });
    } catch (error) {
      // Another process (a member still running, a second one started by mistake) holds LevelDB's lock file.
      if (isLevelLocked(error)) {
        throw new CairnError('CAIRN_DATA_DIR_IN_USE', `${dataDir}: another process holds the LevelDB lock of ${db.location}; is a member still running on this data directory?`, { cause: error });
      }
      // CURRENT vanished between mayCreateDatabase's look and the open (LevelDB's InvalidArgument, which has no code):
      // LevelDB refused to create a database, so it changed nothing but its lock and info log.
      if (!createIfMissing && levelMessagesOf(error).some((message) => message.endsWith('(create_if_missing is false)'))) {
        throw currentMissing(location, [], error);
      }
      // A damaged MANIFEST or a table LevelDB must read to recover fails the open itself, as does a refusing filesystem.
      throw levelFailure(location, 'open its files', error);
    }
    return new LevelStorage(db, options);
  }

  /** location is the database directory. */
  get location(): string {
    return this.db.location;
  }

  /** load reads and verifies everything (checksums, contiguity); null for a store that was never initialised. */
  load(): Promise<StoredRaftState | null> {
    return this.serialise('load', async () => {
      let stored: StoredRaftState | null;
      try {
        stored = await this.readAll();
      } catch (error) {
        throw levelFailure(this.location, 'read its files', error);
      }
      if (stored !== null) {
        const snapshotIndex = stored.snapshot.index;
        const lastIndex = snapshotIndex + stored.entries.length;
        this.bounds = { snapshotIndex, lastIndex, applied: stored.applied, hardState: stored.hardState };
      }
      return stored;
    });
  }

  /** initialise writes the identity and the bootstrap state (snapshot 0 with `membership`) into an empty store, fsynced. */
  initialise(identity: MemberIdentity, membership: Membership): Promise<void> {
    return this.serialise('initialise', async () => {
      assertIdentity(identity);
      assert(await this.isEmpty(), `initialise: the store at ${this.location} is already initialised (or not empty)`);
      const hardState: HardState = { term: 0, vote: null, commit: 0 };
      const ops: Operation[] = [
        this.putMeta(levelLayout.metaKeys.format, textEncoder.encode(levelLayout.format)),
        this.putMeta(levelLayout.metaKeys.clusterId, textEncoder.encode(identity.clusterId)),
        this.putMeta(levelLayout.metaKeys.memberId, textEncoder.encode(identity.memberId)),
        this.putMeta(levelLayout.metaKeys.hardState, encodeHardState(hardState)),
        ...this.keyspaceSnapshotOps({ index: 0, term: 0, membership }),
        this.putMeta(levelLayout.metaKeys.applied, encodeIndexValue(0)),
      ];
      await this.batch(ops, true);
      this.bounds = { snapshotIndex: 0, lastIndex: 0, applied: 0, hardState };
    });
  }

  /**
   * writeReady persists snapshot (replacing the log), entries (replacing the log from the first) and hard state in one
   * batch; a snapshot's chunks are written just before it, under a generation nothing reads until that batch.
   */
  writeReady(write: ReadyWrite, sync: boolean): Promise<void> {
    return this.serialise('writeReady', async () => {
      const bounds = this.requireBounds('writeReady');
      const next = boundsAfterReadyWrite(bounds, write);
      const ops: Operation[] = [];
      let lastIndex = bounds.lastIndex;
      if (write.snapshot !== null) {
        // A snapshot installed from the leader can be large: its chunks go first, in batches of at most
        // stageBatchBytes, so the event loop is never held for the whole copy (this operation holds the queue
        // meanwhile, as the one big batch did); the batch below makes them current together with the rest.
        const staged = await this.writeChunks(write.snapshot);
        ops.push(...this.logDeletes(bounds.snapshotIndex + 1, bounds.lastIndex));
        ops.push(...(await this.chunkDeletesBut(staged.generation)));
        ops.push(this.putMeta(levelLayout.metaKeys.snapshotMeta, encodeSnapshotMeta(write.snapshot.meta)));
        ops.push(this.putMeta(levelLayout.metaKeys.snapshotData, encodeDataSummary(staged)));
        lastIndex = write.snapshot.meta.index;
      }
      // Entries from the first one on replace what is stored: puts overwrite the same keys, and the stored suffix
      // beyond the new last index is deleted exactly (the bounds say which keys exist; no range scan needed).
      ops.push(...this.logDeletes(next.lastIndex + 1, lastIndex));
      for (const entry of write.entries) ops.push(this.putLog(entry));
      if (write.hardState !== null) ops.push(this.putMeta(levelLayout.metaKeys.hardState, encodeHardState(write.hardState)));
      const applied = write.applied ?? null;
      if (applied !== null) {
        assertAppliedWrite(next, applied.writes, applied.index);
        this.pushStateOps(ops, applied.writes);
        ops.push(this.putMeta(levelLayout.metaKeys.applied, encodeIndexValue(applied.index)));
      }
      if (ops.length > 0) await this.batch(ops, sync);
      this.bounds = applied === null ? next : { ...next, applied: applied.index };
    });
  }

  /**
   * writeApplied writes a state-machine batch and the applied index in one fsynced batch (see the file comment).
   * clearKeyspace deletes every stored state key first: it is the restore of a snapshot, whose batch puts the whole
   * new keyspace. The restore of a snapshot stored ahead of the applied index (installed from the leader) is written
   * in many batches with the applied index last (below); any other in the same single batch.
   */
  writeApplied(writes: readonly BatchWrite[], applied: number, clearKeyspace: boolean): Promise<void> {
    return this.serialise('writeApplied', async () => {
      const bounds = this.requireBounds('writeApplied');
      assertAppliedWrite(bounds, writes, applied);
      if (clearKeyspace && bounds.applied < bounds.snapshotIndex) {
        // A restore of the stored snapshot (installed from the leader, or found unrestored at start-up): while the
        // stored applied index is below the snapshot's, the keyspace is never read (load() has the snapshot restored
        // again), so the keyspace may be rewritten in batches of at most stageBatchBytes, the event loop free between
        // them, and the applied index last. The batches are built as they go, not listed first: framing 1M records
        // (a checksum and a copy each) in one go held a follower's event loop for seconds. They are not synced one
        // by one: before the applied index that makes them trusted, LevelDB writes them all to fsynced tables
        // (flushMemtable), whatever write-ahead logs they went through.
        await this.deleteStateInBatches();
        await this.putStateInBatches(writes);
        await this.flushMemtable();
        await this.batch([this.putMeta(levelLayout.metaKeys.applied, encodeIndexValue(applied))], true);
      } else {
        // One fsynced batch: the deletes of a restore at most double a batch that is O(keyspace) anyway (the
        // keyspace is bounded by the registry's limits: namespacesMax, servicesPerNamespaceMax,
        // instancesPerServiceMax).
        const ops: Operation[] = clearKeyspace ? await this.stateDeletes() : [];
        this.pushStateOps(ops, writes);
        ops.push(this.putMeta(levelLayout.metaKeys.applied, encodeIndexValue(applied)));
        await this.batch(ops, true);
      }
      this.bounds = { ...bounds, applied };
    });
  }

  /**
   * deleteStateInBatches deletes every stored state key, a read batch of keys (readBatchRecords) per unsynced write
   * batch. The iterator reads a snapshot of the store taken when it opened, so the deletes do not disturb it.
   */
  private async deleteStateInBatches(): Promise<void> {
    const iterator = this.state.keys();
    try {
      // Bounded: each pass deletes at least one of the finitely many keys the iterator's snapshot holds.
      for (let keys = await iterator.nextv(readBatchRecords); keys.length > 0; keys = await iterator.nextv(readBatchRecords)) {
        await this.batch(keys.map((key): Operation => ({ type: 'del', sublevel: this.state, key })), false);
      }
    } finally {
      await iterator.close();
    }
  }

  /** putStateInBatches writes `writes` in order, framed a batch at a time, in unsynced batches of at most stageBatchBytes. */
  private async putStateInBatches(writes: readonly BatchWrite[]): Promise<void> {
    // Bounded: each pass writes at least one of the finite writes.
    for (let start = 0; start < writes.length;) {
      const ops: Operation[] = [];
      let bytes = 0;
      let end = start;
      while (end < writes.length && (end === start || bytes < stageBatchBytes)) {
        const write = writes[end] as BatchWrite;
        bytes += write.key.length + (write.type === 'put' ? write.value.length : 0);
        end++;
      }
      this.pushStateOps(ops, writes.slice(start, end));
      await this.batch(ops, false);
      start = end;
    }
  }

  /**
   * compactLog makes the stored keyspace the snapshot at `meta.index` and deletes the log up to it, with any stored
   * image: once every operation queued before it is done, it has LevelDB write all of it to fsynced tables (see the
   * durability note above; outside the queue, so Ready writes go on meanwhile), then writes the meta and the
   * deletions in one fsynced batch. A compaction at or below the stored snapshot (one installed from the leader
   * meanwhile) changes nothing.
   */
  compactLog(meta: SnapshotMeta): Promise<void> {
    if (this.closing) return Promise.reject(new CairnError('CAIRN_SHUTTING_DOWN', 'compactLog after close()'));
    // A compaction called before close() completes: its batch is queued after the flush even once closing.
    const flushed = this.tail.then(() => this.flushMemtable());
    const compacted = flushed.then(() => this.enqueue(async () => {
      const bounds = this.requireBounds('compactLog');
      if (meta.index <= bounds.snapshotIndex) return;
      assertCompaction(bounds, meta);
      const ops = this.logDeletes(bounds.snapshotIndex + 1, meta.index);
      ops.push(...(await this.chunkDeletesBut(keyspaceGeneration)));
      ops.push(...this.keyspaceSnapshotOps(meta));
      await this.batch(ops, true);
      this.bounds = { ...bounds, snapshotIndex: meta.index };
    }));
    this.compaction = compacted.then(() => undefined, () => undefined);
    return compacted;
  }

  /**
   * flushMemtable has LevelDB write its memtable to a level-0 table, fsynced with the MANIFEST, and drop the older
   * write-ahead logs: compactRange begins with that flush whatever the range (LevelDB's DBImpl::CompactRange), and
   * over a range no key can fall in it compacts nothing else.
   */
  private async flushMemtable(): Promise<void> {
    await this.db.compactRange(flushRangeKey, flushRangeKey);
  }

  /** keyspaceSnapshotOps records `meta` as the stored snapshot, its image being the stored keyspace. */
  private keyspaceSnapshotOps(meta: SnapshotMeta): Operation[] {
    return [
      this.putMeta(levelLayout.metaKeys.snapshotMeta, encodeSnapshotMeta(meta)),
      this.putMeta(levelLayout.metaKeys.snapshotData, encodeDataSummary({ length: 0, crc32c: 0, generation: keyspaceGeneration })),
    ];
  }

  /**
   * writeChunks writes an installed snapshot's chunks under a new generation, at most stageBatchBytes per fsynced
   * batch (the event loop is free between them), computing the CRC-32C as it goes; the caller is a queued operation
   * (writeReady), whose batch then names the generation.
   */
  private async writeChunks(snapshot: Snapshot): Promise<DataSummary> {
    const generation = newGeneration(snapshot.meta.index);
    const data = snapshot.data;
    let crc = 0;
    let chunk = 0;
    // Bounded: each pass writes at least one chunk of the finite data.
    for (let offset = 0; offset < data.length;) {
      const ops: Operation[] = [];
      const batchStart = offset;
      while (offset < data.length && (ops.length === 0 || offset - batchStart + this.snapshotChunkBytes <= stageBatchBytes)) {
        const value = data.subarray(offset, offset + this.snapshotChunkBytes);
        crc = crc32c(value, crc);
        ops.push({ type: 'put', sublevel: this.snapshot, key: chunkKey(generation, chunk), value });
        offset += value.length;
        chunk++;
      }
      await this.batch(ops, true);
    }
    return { generation, length: data.length, crc32c: crc };
  }

  /** recordPeerContact durably records that `peer` was heard from (one fsynced put; idempotent), at most contactsMax peers. */
  recordPeerContact(peer: string, contactsMax: number): Promise<PeerContactOutcome> {
    return this.serialise('recordPeerContact', async () => {
      assert(peer.length > 0 && peer.length <= peerIdCharsMax, 'recordPeerContact: invalid peer id');
      assert(Number.isSafeInteger(contactsMax) && contactsMax >= 1, 'recordPeerContact: invalid contactsMax');
      if (await this.contacts.has(peer)) return 'known';
      // Counted once (a store written before the bound may hold more: it reads as full), then kept up to date.
      this.contactsCount ??= (await this.contacts.keys({ limit: contactsMax }).all()).length;
      if (this.contactsCount >= contactsMax) return 'full';
      // A batch, because classic-level's batch takes the sync option (its put options are not typed with it).
      await this.batch([{ type: 'put', sublevel: this.contacts, key: peer, value: new Uint8Array(0) }], true);
      this.contactsCount++;
      return 'recorded';
    });
  }

  /** hasPeerContact tells whether `peer` is recorded (a point lookup). */
  hasPeerContact(peer: string): Promise<boolean> {
    return this.serialise('hasPeerContact', async () => peer.length > 0 && peer.length <= peerIdCharsMax && this.contacts.has(peer));
  }

  /** peerContacts lists the peers recorded by recordPeerContact, in key order, at most listedMax. */
  peerContacts(listedMax: number): Promise<string[]> {
    assert(Number.isSafeInteger(listedMax) && listedMax >= 0, 'peerContacts: invalid listedMax');
    return this.serialise('peerContacts', async () => this.contacts.keys({ limit: listedMax }).all());
  }

  /** keyspace iterates the stored state keys and values in key (UTF-8 byte) order, as of the call, a read batch at a time. */
  async *keyspace(): AsyncIterable<KeyspaceBatch> {
    if (this.closing) throw new CairnError('CAIRN_SHUTTING_DOWN', 'keyspace after close()');
    yield* this.readKeyspace(this.state.iterator(bulkRead));
  }

  /**
   * keyspaceView takes the view between two writes (in the write queue): classic-level's iterator reads from a
   * snapshot of the database taken synchronously when it is created, so the records are those of the applied index
   * the bounds hold at that moment, whatever is written while they are read.
   */
  keyspaceView(): Promise<KeyspaceView> {
    return this.serialise('keyspaceView', async () => {
      const bounds = this.requireBounds('keyspaceView');
      // An untrusted keyspace (a snapshot not restored yet) is not read: its view is empty.
      if (bounds.applied < bounds.snapshotIndex) return { applied: bounds.applied, trusted: false, batches: batchesOf([]) };
      return { applied: bounds.applied, trusted: true, batches: this.readKeyspace(this.state.iterator(bulkRead)) };
    });
  }

  /** readKeyspace reads an iterator of the state sublevel to its end, a read batch at a time, and closes it. */
  private async *readKeyspace(iterator: StateIterator): AsyncIterable<KeyspaceBatch> {
    // One read ahead: LevelDB reads (and decompresses) the next batch on libuv's pool while the caller decodes this
    // one; a member's start-up otherwise left the main thread idle ~20% of the time waiting for reads.
    let pending = this.readNext(iterator);
    // Marked handled: a failure is thrown where the read is awaited (or dropped with the generator, below).
    pending.catch(() => undefined);
    try {
      for (;;) {
        const batch = await pending;
        if (batch.length === 0) break;
        pending = this.readNext(iterator);
        pending.catch(() => undefined);
        // classic-level returns Buffers; hand out plain Uint8Array views, as the twin does and as the type says. Its
        // [key, value] pairs are this call's own, so each takes its checked view in place (a start-up reads a million).
        for (const entry of batch) entry[1] = this.unframeState(entry[0], entry[1]);
        yield batch;
      }
    } finally {
      // A caller that stops early leaves a read in flight: let it finish before the iterator closes.
      await pending.catch(() => undefined);
      await iterator.close();
    }
  }

  /** readNext reads the next batch of an iterator, reporting LevelDB's read failures as CAIRN_STORAGE_CORRUPT. */
  private async readNext(iterator: { nextv(size: number): Promise<Array<[string, Uint8Array]>> }): Promise<Array<[string, Uint8Array]>> {
    try {
      return await iterator.nextv(readBatchRecords);
    } catch (error) {
      // close() closes open iterators (a state digest may be reading): that is the member stopping, not corruption.
      if (this.closing) throw new CairnError('CAIRN_SHUTTING_DOWN', `${this.location}: the store closed while the keyspace was read`);
      throw levelFailure(this.location, 'read its files', error);
    }
  }

  /**
   * unframeState verifies a stored keyspace value's frame against its key and returns the value: a plain Uint8Array
   * view of the same memory (one object per record; no DataView).
   */
  private unframeState(key: string, framed: Uint8Array): Uint8Array {
    if (framed.length < stateFrameBytes) {
      throw new CairnError('CAIRN_STORAGE_CORRUPT', `${this.location}: state!${key}: a framed value of ${framed.length} bytes is truncated`);
    }
    const stored = (((framed[0] as number) << 24) | ((framed[1] as number) << 16) | ((framed[2] as number) << 8) | (framed[3] as number)) >>> 0;
    const value = new Uint8Array(framed.buffer, framed.byteOffset + stateFrameBytes, framed.length - stateFrameBytes);
    const computed = stateChecksum(key, value);
    if (stored !== computed) {
      throw new CairnError('CAIRN_STORAGE_CORRUPT', `${this.location}: state!${key}: crc32c mismatch (stored 0x${stored.toString(16).padStart(8, '0')}, computed 0x${computed.toString(16).padStart(8, '0')})`);
    }
    return value;
  }

  /** close waits for every queued operation, then closes the database; later calls are refused. */
  async close(): Promise<void> {
    if (this.closed !== null) return this.closed;
    this.closing = true;
    // Everything queued now, and a compaction called before: its batch joins the queue only after its memtable flush
    // (so the queue is read again once the compaction settled; nothing else can join it once closing).
    const queued = this.tail;
    this.closed = Promise.all([queued, this.compaction]).then(() => this.tail).then(() => this.db.close());
    return this.closed;
  }

  // --- Serialisation and bounds -------------------------------------------------------------------------------------

  private serialise<T>(operation: string, run: () => Promise<T>): Promise<T> {
    if (this.closing) return Promise.reject(new CairnError('CAIRN_SHUTTING_DOWN', `${operation} after close()`));
    return this.enqueue(run);
  }

  /** enqueue queues `run` after every operation queued so far (serialise without the closing check). */
  private enqueue<T>(run: () => Promise<T>): Promise<T> {
    const result = this.tail.then(run);
    this.tail = result.then(() => undefined, () => undefined);
    return result;
  }

  private requireBounds(operation: string): StoreBounds {
    assert(this.bounds !== null, `${operation} before load() or initialise()`);
    return this.bounds;
  }

  // --- Batch operations -----------------------------------------------------------------------------------------

  /**
   * batch writes `ops` as one atomic LevelDB batch through classic-level's private `_batch`, with each key prefixed
   * by its sublevel as the public `db.batch` would do. The public path clones every operation, resolves encodings
   * and prefixes per operation (abstract-level's #arrayBatch was 11% of a follower's busy time under load); the
   * bytes on disk are the same, which the storage tests check by reading every record back through the sublevels.
   */
  private batch(ops: readonly Operation[], sync: boolean): Promise<void> {
    assert(this.db.status === 'open', `LevelStorage: the database is ${this.db.status}`);
    const raw: RawOperation[] = new Array<RawOperation>(ops.length);
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i] as Operation;
      const sublevel = op.sublevel as Sublevel | undefined;
      assert(sublevel !== undefined, 'LevelStorage: every operation names its sublevel');
      raw[i] = op.type === 'put' ? { type: 'put', key: sublevel.prefix + op.key, value: op.value } : { type: 'del', key: sublevel.prefix + op.key };
    }
    // A write the filesystem refuses (a full disk, a volume remounted read-only) stops the member (a failed persist
    // crashes it, STYLE.md §1) with CAIRN_STORAGE_IO_ERROR and the system's reason, not LevelDB's bare text.
    return (this.db as unknown as PrivateBatch)._batch(raw, { sync }).catch((error: unknown) => {
      throw isFilesystemRefusal(error) ? filesystemRefusal(this.location, 'LevelDB could not write its files', error) : error;
    });
  }

  private pushStateOps(ops: Operation[], writes: readonly BatchWrite[]): void {
    for (const write of writes) {
      ops.push(write.type === 'put'
        ? { type: 'put', sublevel: this.state, key: write.key, value: frameState(write.key, write.value) }
        : { type: 'del', sublevel: this.state, key: write.key });
    }
  }

  private putMeta(key: string, payload: Uint8Array): Operation {
    return { type: 'put', sublevel: this.meta, key, value: encodeChecksummed(payload) };
  }

  private putLog(entry: Entry): Operation {
    return { type: 'put', sublevel: this.log, key: indexKey(entry.index), value: encodeStoredEntry(entry) };
  }

  /** logDeletes deletes the log keys [from, to]; the bounds guarantee these are exactly the stored ones in range. */
  private logDeletes(from: number, to: number): Operation[] {
    const ops: Operation[] = [];
    for (let index = from; index <= to; index++) ops.push({ type: 'del', sublevel: this.log, key: indexKey(index) });
    return ops;
  }

  /** chunkDeletesBut deletes every stored snapshot chunk except those of `generation` (the current or staged ones, leftovers). */
  private async chunkDeletesBut(generation: string): Promise<Operation[]> {
    const keep = `${generation}!`;
    return (await this.keysOf(this.snapshot)).filter((key) => !key.startsWith(keep)).map((key): Operation => ({ type: 'del', sublevel: this.snapshot, key }));
  }

  private async stateDeletes(): Promise<Operation[]> {
    return (await this.keysOf(this.state)).map((key): Operation => ({ type: 'del', sublevel: this.state, key }));
  }

  /** keysOf lists every key of a sublevel (used for the snapshot chunks and the state keyspace, both bounded). */
  private async keysOf(sublevel: Sublevel): Promise<string[]> {
    const keys: string[] = [];
    const iterator = sublevel.keys();
    try {
      for (let batch = await iterator.nextv(readBatchRecords); batch.length > 0; batch = await iterator.nextv(readBatchRecords)) {
        keys.push(...batch);
      }
    } finally {
      await iterator.close();
    }
    return keys;
  }

  private async isEmpty(): Promise<boolean> {
    for (const sublevel of [this.meta, this.log, this.snapshot, this.state]) {
      const first = await sublevel.keys({ limit: 1 }).all();
      if (first.length > 0) return false;
    }
    return true;
  }

  // --- Loading ----------------------------------------------------------------------------------------------------

  private async readAll(): Promise<StoredRaftState | null> {
    const keys = levelLayout.metaKeys;
    const format = await this.meta.get(keys.format);
    if (format === undefined) {
      if (await this.isEmpty()) return null;
      throw new CairnError('CAIRN_STORAGE_CORRUPT', `${this.location}: records present but meta!format missing`);
    }
    const formatText = this.readMetaText(keys.format, format);
    if (formatText !== levelLayout.format && formatText !== levelLayout.formatV2 && formatText !== levelLayout.formatV1) {
      throw new CairnError('CAIRN_STORAGE_CORRUPT', `${this.location}: unknown storage format ${JSON.stringify(formatText)}`);
    }
    const identity = { clusterId: await this.readMeta(keys.clusterId, textOf), memberId: await this.readMeta(keys.memberId, textOf) };
    const hardState = await this.readMeta(keys.hardState, decodeHardState);
    const meta = await this.readMeta(keys.snapshotMeta, decodeSnapshotMeta);
    const summary = await this.readMeta(keys.snapshotData, decodeDataSummary);
    const applied = await this.readMeta(keys.applied, decodeIndexValue);
    const data = summary.generation === keyspaceGeneration ? null : await this.readSnapshotData(summary);
    const entries = await this.readLog(meta);
    const lastIndex = meta.index + entries.length;
    if (applied > lastIndex) {
      throw new CairnError('CAIRN_STORAGE_CORRUPT', `${this.location}: applied index ${applied} beyond the last log index ${lastIndex}`,
        { details: { index: applied } });
    }
    if (data === null && applied < meta.index) {
      // compactLog wrote the keyspace durably before the snapshot that relies on it: a keyspace behind it is damage.
      throw new CairnError('CAIRN_STORAGE_CORRUPT', `${this.location}: the keyspace is the snapshot at ${meta.index} but its applied index is ${applied}`,
        { details: { index: applied } });
    }
    if (formatText === levelLayout.formatV1) await this.migrateKeyspace();
    else if (formatText === levelLayout.formatV2) await this.batch([this.putMeta(levelLayout.metaKeys.format, textEncoder.encode(levelLayout.format))], true);
    return { identity, hardState, snapshot: meta, snapshotData: data, entries, applied };
  }

  /**
   * migrateKeyspace rewrites a cairn-raft-v1 store's keyspace framed (frameState) and names the current format, in
   * one fsynced batch, so a store is never half migrated. The v1 values carry no checksum to verify: they are
   * framed as they are. One batch of O(keyspace), as a restore's: bounded by the registry's limits, and made once.
   */
  private async migrateKeyspace(): Promise<void> {
    const ops: Operation[] = [];
    const iterator = this.state.iterator(bulkRead);
    try {
      for (let batch = await this.readNext(iterator); batch.length > 0; batch = await this.readNext(iterator)) {
        for (const [key, value] of batch) ops.push({ type: 'put', sublevel: this.state, key, value: frameState(key, new Uint8Array(value.buffer, value.byteOffset, value.byteLength)) });
      }
    } finally {
      await iterator.close();
    }
    ops.push(this.putMeta(levelLayout.metaKeys.format, textEncoder.encode(levelLayout.format)));
    await this.batch(ops, true);
  }

  private async readMeta<T>(key: string, decode: (payload: Uint8Array) => T): Promise<T> {
    const value = await this.meta.get(key);
    if (value === undefined) throw new CairnError('CAIRN_STORAGE_CORRUPT', `${this.location}: meta!${key} missing`);
    try {
      return decode(decodeChecksummed(value, `meta!${key}`));
    } catch (error) {
      throw storageCorruption(`${this.location}: meta!${key}`, error);
    }
  }

  private readMetaText(key: string, value: Uint8Array): string {
    try {
      return textOf(decodeChecksummed(value, `meta!${key}`));
    } catch (error) {
      throw storageCorruption(`${this.location}: meta!${key}`, error);
    }
  }

  /** readLog reads the entries after the snapshot, verifying each checksum, its key, contiguity and term order. */
  private async readLog(meta: SnapshotMeta): Promise<Entry[]> {
    const entries: Entry[] = [];
    let expected = meta.index + 1;
    let previousTerm = meta.term;
    const iterator = this.log.iterator({ ...bulkRead, gt: indexKey(meta.index) });
    try {
      for (let batch = await iterator.nextv(readBatchRecords); batch.length > 0; batch = await iterator.nextv(readBatchRecords)) {
        for (const [key, value] of batch) {
          const entry = this.verifyLogRecord(key, value, expected, previousTerm);
          entries.push(entry);
          previousTerm = entry.term;
          expected++;
        }
      }
    } finally {
      await iterator.close();
    }
    return entries;
  }

  private verifyLogRecord(key: string, value: Uint8Array, expected: number, previousTerm: number): Entry {
    const corrupt = (index: number, reason: string): CairnError =>
      new CairnError('CAIRN_STORAGE_CORRUPT', `${this.location}: log entry ${index}: ${reason}`, { details: { index } });
    let index: number;
    try {
      index = parseIndexKey(key);
    } catch (error) {
      throw storageCorruption(`${this.location}: log after entry ${expected - 1}`, error, { index: expected });
    }
    if (index !== expected) throw corrupt(expected, `missing (hole in the log: the next stored entry is ${index})`);
    let entry: Entry;
    try {
      entry = decodeStoredEntry(value);
    } catch (error) {
      throw storageCorruption(`${this.location}: log entry ${index}`, error, { index });
    }
    if (entry.index !== index) throw corrupt(index, `record holds entry ${entry.index}`);
    if (entry.term < previousTerm) throw corrupt(index, `term ${entry.term} after term ${previousTerm}`);
    return entry;
  }

  /**
   * readSnapshotData reassembles the chunks 0, 1, ... of the summary's generation (or, in a store written before
   * generations, the chunks keyed by number alone) and checks them against the stored length and CRC-32C. Chunks of
   * other generations (a staging that never finished) are skipped.
   */
  private async readSnapshotData(summary: DataSummary): Promise<Uint8Array> {
    const data = new Uint8Array(summary.length);
    let offset = 0;
    let chunk = 0;
    const fail = (reason: string): CairnError => new CairnError('CAIRN_STORAGE_CORRUPT', `${this.location}: snapshot data: ${reason}`);
    const prefix = summary.generation === '' ? '' : `${summary.generation}!`;
    const iterator = prefix === '' ? this.snapshot.iterator(bulkRead) : this.snapshot.iterator({ ...bulkRead, gte: prefix, lt: `${prefix}\uffff` });
    try {
      for (let batch = await iterator.nextv(readBatchRecords); batch.length > 0; batch = await iterator.nextv(readBatchRecords)) {
        for (const [key, value] of batch) {
          if (prefix === '' && key.includes('!')) continue;
          if (key !== `${prefix}${indexKey(chunk)}`) throw fail(`chunk ${chunk} missing (found key ${JSON.stringify(key)})`);
          if (offset + value.length > summary.length) throw fail(`chunks exceed the stored length ${summary.length}`);
          data.set(value, offset);
          offset += value.length;
          chunk++;
        }
      }
    } finally {
      await iterator.close();
    }
    if (offset !== summary.length) throw fail(`${offset} bytes stored of ${summary.length}`);
    if (crc32c(data) !== summary.crc32c) throw fail('crc32c mismatch');
    return data;
  }
}

/** stateFrameBytes is the size of a keyspace value's frame: its CRC-32C. */
const stateFrameBytes = 4;

/** stateChecksum is the CRC-32C of a keyspace record: the key's UTF-8 bytes, then the value. */
function stateChecksum(key: string, value: Uint8Array): number {
  return crc32c(value, crc32cOfText(key));
}

/** frameState frames a keyspace value with stateChecksum (big-endian), as stored under state!<key>. */
function frameState(key: string, value: Uint8Array): Uint8Array {
  const framed = new Uint8Array(stateFrameBytes + value.length);
  new DataView(framed.buffer).setUint32(0, stateChecksum(key, value), false);
  framed.set(value, stateFrameBytes);
  return framed;
}

/** codeOf is the `code` of an error (classic-level's LEVEL_*, or Node's errno name such as EACCES), if any. */
function codeOf(value: unknown): unknown {
  return typeof value === 'object' && value !== null ? (value as { code?: unknown }).code : undefined;
}

/** levelLayersOf is an error and its cause (a failed open is LEVEL_DATABASE_NOT_OPEN wrapping the real error). */
function levelLayersOf(error: unknown): unknown[] {
  return error instanceof Error && error.cause !== undefined ? [error, error.cause] : [error];
}

/** levelCodesOf lists classic-level's codes on an error and on its cause. */
function levelCodesOf(error: unknown): unknown[] {
  return levelLayersOf(error).map(codeOf);
}

/** levelMessagesOf lists the messages of an error and of its cause, outermost first. */
function levelMessagesOf(error: unknown): string[] {
  return levelLayersOf(error).map((layer) => (layer instanceof Error ? layer.message : String(layer)));
}

/** isLevelLocked tells whether a failed open was classic-level's LEVEL_LOCKED (its cause, under LEVEL_DATABASE_NOT_OPEN). */
function isLevelLocked(error: unknown): boolean {
  return levelCodesOf(error).includes('LEVEL_LOCKED');
}

/** levelErrorCodes are classic-level's codes for a read LevelDB could not make from its files. */
const levelErrorCodes: ReadonlySet<string> = new Set(['LEVEL_CORRUPTION', 'LEVEL_IO_ERROR']);

/**
 * refusalErrnoCodes are the errno names of a filesystem refusing an operation, not of a damaged file: ENOENT (a table
 * or MANIFEST gone), EINVAL (LevelDB's read of a table cut short) and LevelDB's Corruption status are not among them.
 */
const refusalErrnoCodes: ReadonlySet<string> = new Set(['EACCES', 'EPERM', 'EROFS', 'ENOSPC', 'EDQUOT', 'ENOTDIR', 'EISDIR', 'EMFILE', 'ENFILE', 'EIO']);

/**
 * refusalTexts are the strerror texts (glibc's) of refusalErrnoCodes: LevelDB reports an errno as an IO error
 * "IO error: <file>: <strerror>", which classic-level passes on as LEVEL_IO_ERROR without the errno.
 */
const refusalTexts: readonly string[] = [
  'Permission denied', 'Operation not permitted', 'Read-only file system', 'No space left on device', 'Disk quota exceeded',
  'Not a directory', 'Is a directory', 'Too many open files', 'Too many open files in system', 'Input/output error',
];

/** isFilesystemRefusal tells whether an error (or its cause) is the filesystem refusing, by errno name or LevelDB's text. */
function isFilesystemRefusal(error: unknown): boolean {
  return levelLayersOf(error).some((layer) => {
    const code = codeOf(layer);
    if (typeof code === 'string' && refusalErrnoCodes.has(code)) return true;
    return code === 'LEVEL_IO_ERROR' && layer instanceof Error && refusalTexts.some((text) => layer.message.endsWith(`: ${text}`));
  });
}

/** ioFixHint is what CAIRN_STORAGE_IO_ERROR tells the operator (docs/errors.md). */
const ioFixHint = 'the filesystem refused and no file was found damaged: fix the filesystem (ownership and modes, a read-only '
  + 'mount, free space, the kernel log on an input/output error) and start again; do not wipe the data directory';

/** filesystemRefusal reports that the filesystem refused `doing` at `location` as CAIRN_STORAGE_IO_ERROR, with the system's message. */
function filesystemRefusal(location: string, doing: string, error: unknown): CairnError {
  return new CairnError('CAIRN_STORAGE_IO_ERROR', `${location}: ${doing}: ${levelMessagesOf(error).join(': ')}; ${ioFixHint}`, { cause: error });
}

/**
 * levelFailure reports a failure of LevelDB to open or read its own files (`doing` says which): the filesystem
 * refusing (isFilesystemRefusal) as CAIRN_STORAGE_IO_ERROR, any other of classic-level's LEVEL_CORRUPTION or
 * LEVEL_IO_ERROR (on the error or its cause) as CAIRN_STORAGE_CORRUPT, both with LevelDB's message; any other error
 * is returned as it is.
 */
function levelFailure(location: string, doing: string, error: unknown): unknown {
  if (error instanceof CairnError) return error;
  if (isFilesystemRefusal(error)) return filesystemRefusal(location, `LevelDB could not ${doing}`, error);
  const fromLevel = levelCodesOf(error).some((code) => typeof code === 'string' && levelErrorCodes.has(code));
  if (!fromLevel) return error;
  return new CairnError('CAIRN_STORAGE_CORRUPT', `${location}: LevelDB could not read its files: ${levelMessagesOf(error).join(': ')}`, { cause: error });
}

/** levelPreludeFiles are what LevelDB writes before it creates a database (its lock, its info log): alone, they hold nothing. */
const levelPreludeFiles: ReadonlySet<string> = new Set(['LOCK', 'LOG', 'LOG.old']);

/**
 * mayCreateDatabase makes `dataDir` if missing and tells whether LevelDB may create a database at `location`: only
 * where it does not exist or holds nothing but levelPreludeFiles. A directory with other files but no CURRENT is
 * refused as CAIRN_STORAGE_CORRUPT before LevelDB opens it (see the file comment, "Creation"); a filesystem refusing
 * to make or list the directories (raft/ a regular file, no permission) is CAIRN_STORAGE_IO_ERROR.
 */
async function mayCreateDatabase(dataDir: string, location: string): Promise<boolean> {
  try {
    await mkdir(dataDir, { recursive: true });
  } catch (error) {
    throw filesystemRefusal(dataDir, 'cannot make the data directory', error);
  }
  let names: string[];
  try {
    names = await readdir(location);
  } catch (error) {
    if (codeOf(error) === 'ENOENT') return true;
    throw filesystemRefusal(location, 'cannot list the LevelDB directory', error);
  }
  const files = names.filter((name) => !levelPreludeFiles.has(name)).sort();
  if (files.length === 0) return true;
  if (!names.includes('CURRENT')) throw currentMissing(location, files);
  return false;
}

/** listedFilesMax bounds the file names currentMissing lists. */
const listedFilesMax = 8;

/**
 * currentMissing reports a LevelDB directory without its CURRENT file (whose one line names the MANIFEST in use) as
 * CAIRN_STORAGE_CORRUPT, saying that nothing was changed and which MANIFEST the operator may name in a restored CURRENT.
 */
function currentMissing(location: string, files: readonly string[], cause?: unknown): CairnError {
  const manifests = files.filter((name) => /^MANIFEST-\d+$/.test(name)).sort((a, b) => Number(a.slice(9)) - Number(b.slice(9)));
  const newest = manifests.at(-1);
  const listed = files.length === 0 ? '' : ` (${files.slice(0, listedFilesMax).join(', ')}${files.length > listedFilesMax ? ', ...' : ''})`;
  const manifest = newest === undefined ? 'the newest MANIFEST-NNNNNN file there' : `"${newest}" (the newest MANIFEST)`;
  const hint = newest === undefined && files.length > 0
    ? 'no MANIFEST file is left to name in it: rebuild the member'
    : `if the store is otherwise whole, write it back holding ${manifest} and a newline, and start again, or rebuild the member`;
  const detail = `${location}: LevelDB's CURRENT file is missing, yet the directory holds its other files${listed}; it was not `
    + `opened, so nothing was changed (LevelDB would have created an empty database over it, deleting its tables); ${hint}`;
  return new CairnError('CAIRN_STORAGE_CORRUPT', cause === undefined ? detail : `${detail}: ${levelMessagesOf(cause).join(': ')}`, cause === undefined ? {} : { cause });
}

/** DataSummary is the stored length and CRC-32C of the snapshot data, and the generation of its chunks ('' before generations). */
interface DataSummary {
  readonly length: number;
  readonly crc32c: number;
  readonly generation: string;
}

/** stageBatchBytes bounds one staging batch: LevelDB's batch copies its bytes on the event loop (~4 ms per MiB here). */
const stageBatchBytes = 1024 * 1024;

/** keyspaceGeneration in the data summary says that the stored keyspace is the snapshot (compactLog). */
const keyspaceGeneration = 'keyspace';

/** flushRangeKey is a key no record has (every key starts with a sublevel's '!' prefix): flushMemtable's range. */
const flushRangeKey = '~flush';

/** generationPattern is the shape of a generation: the snapshot's index (16 hex) and 8 random hex digits. */
const generationPattern = /^[0-9a-f]{16}\.[0-9a-f]{8}$/;

/** newGeneration names a new set of snapshot chunks: unique even for two snapshots at one index. */
function newGeneration(index: number): string {
  return `${indexKey(index)}.${randomBytes(4).toString('hex')}`;
}

/** chunkKey is the key (within the snapshot sublevel) of chunk `chunk` of `generation`. */
function chunkKey(generation: string, chunk: number): string {
  return `${generation}!${indexKey(chunk)}`;
}

function encodeDataSummary(summary: DataSummary): Uint8Array {
  const generation = textEncoder.encode(summary.generation);
  const bytes = new Uint8Array(12 + generation.length);
  bytes.set(encodeIndexValue(summary.length), 0);
  new DataView(bytes.buffer).setUint32(8, summary.crc32c, false);
  bytes.set(generation, 12);
  return bytes;
}

function decodeDataSummary(bytes: Uint8Array): DataSummary {
  if (bytes.length < 12) throw new CodecError('snapshot data summary', `expected at least 12 bytes, got ${bytes.length}`);
  const length = decodeIndexValue(bytes.subarray(0, 8));
  const checksum = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(8, false);
  const generation = bytes.length === 12 ? '' : textOf(bytes.subarray(12));
  if (generation !== '' && generation !== keyspaceGeneration && !generationPattern.test(generation)) throw new CodecError('snapshot data summary', `malformed generation ${JSON.stringify(generation)}`);
  return { length, crc32c: checksum, generation };
}

function textOf(bytes: Uint8Array): string {
  let text: string;
  try {
    text = textDecoder.decode(bytes);
  } catch (error) {
    throw new CodecError('text', 'not valid UTF-8', { cause: error });
  }
  if (text === '') throw new CodecError('text', 'empty');
  return text;
}
