// backup: a point-in-time copy of a member's replicated state, read from its data directory while the member is
// stopped, and the restore that seeds every member of a new cluster from it (docs/operations.md "Backups and
// disaster recovery"). It is how a cluster that lost a majority of its disks is brought back: the survivor's state
// becomes the new cluster's snapshot.
//
// What a backup holds: the state machine's image as of the last entry the member knew committed (its stored
// applied index, then every committed entry after it in its log, applied in memory: no record of the member
// changes), or as of its last entry with withUncommitted (a recovery after the loss of a majority), and the Raft
// facts the restore needs (that entry's index and term, the source's voters). Ephemeral
// instances are not in it: they live on the AP path and their clients register them again.
//
// File layout (integers big-endian):
//   magic      8 bytes   "CAIRNBK1"
//   length     4 bytes   the header's length in bytes, at most backupHeaderBytesMax
//   header     JSON, UTF-8: BackupHeader
//   headerCrc  4 bytes   CRC-32C of the header's bytes
//   image      the state machine's image (its own format, versioned inside), header.imageBytes long, with
//              header.imageCrc32c; nothing follows it.
//
// A restore validates the whole file (magic, lengths, both checksums, every header field, and the image by decoding
// it into a scratch state machine) before it writes anything, and writes the new member's store in two fsynced
// batches: the bootstrap state, then the snapshot with its image. The member restores the image at its first start,
// as it does a snapshot installed from a leader.
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { CairnError, isCairnError } from '../errors.ts';
import { limits } from '../limits.ts';
import type { Entry, Membership } from '../raft/types.ts';
import { crc32c } from './codec.ts';
import { LevelStorage, levelLayout } from './level-storage.ts';
import type { ApplyBatch, ReplicatedStateMachine } from './state-machine.ts';

/** backupMagic opens every backup file. */
export const backupMagic = 'CAIRNBK1';
/** backupFormat is the layout version this code writes and reads. */
export const backupFormat = 1;
/** backupHeaderBytesMax bounds the header (limits.backupHeaderBytesMax). */
export const backupHeaderBytesMax = limits.backupHeaderBytesMax;
/** backupBytesMax bounds a backup file (limits.backupBytesMax). */
export const backupBytesMax = limits.backupBytesMax;
/** backupMembersMax bounds the member list of a header and of a restore (limits.backupMembersMax). */
export const backupMembersMax = limits.backupMembersMax;
/** memberCharsMax bounds a member address in a header: a member id is at most limits.nodeIdCharsMax. */
const memberCharsMax = limits.nodeIdCharsMax;

/** BackupHeader describes a backup's image. */
export interface BackupHeader {
  readonly format: number;
  /** index is the last log entry the image covers; term is that entry's term. */
  readonly index: number;
  readonly term: number;
  /**
   * beyondCommit counts the entries after the commit index the member knew that the image covers (0 unless taken
   * with withUncommitted: a recovery after the loss of a majority, when those entries may have been acknowledged).
   */
  readonly beyondCommit: number;
  /** members are the source cluster's voters as of `index`. */
  readonly members: readonly string[];
  /** sourceMember is the member whose data directory was read. */
  readonly sourceMember: string;
  /** createdAt is when the backup was taken (ISO 8601, UTC). */
  readonly createdAt: string;
  readonly imageBytes: number;
  readonly imageCrc32c: number;
}

/** Backup is a decoded backup file. */
export interface Backup {
  readonly header: BackupHeader;
  readonly image: Uint8Array;
}

/** discardBatch receives the keyspace writes of an in-memory apply or restore: no record of the member changes. */
const discardBatch: ApplyBatch = { put: () => undefined, del: () => undefined };

function invalid(message: string): CairnError {
  return new CairnError('CAIRN_INVALID_ARGUMENT', message);
}

function damaged(file: string, message: string): CairnError {
  return new CairnError('CAIRN_STORAGE_CORRUPT', `${file}: ${message}`);
}

/** memberDataExists tells whether `dataDir` holds a member's LevelDB (without creating anything). */
async function memberDataExists(dataDir: string): Promise<boolean> {
  try {
    return (await stat(path.join(dataDir, levelLayout.directory))).isDirectory();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

/** TakeBackupOptions: the time to record, and whether to cover the entries after the known commit index. */
export interface TakeBackupOptions {
  readonly now?: Date;
  /**
   * withUncommitted applies every entry of the member's log, also those after the commit index it knew. After the
   * loss of a majority some of them may have been acknowledged by the lost leader; otherwise leave it off: such an
   * entry may never commit in the live cluster, so the image would be no state the cluster ever had.
   */
  readonly withUncommitted?: boolean;
}

/**
 * takeBackup reads the member stored in `dataDir` (which must be stopped: a running member holds the directory,
 * CAIRN_DATA_DIR_IN_USE) into `machine`, a fresh state machine, and returns its backup. No record of the member is
 * changed: opening the store does only what every start of the member does (LevelDB replays its own write-ahead log
 * into new files; a cairn-raft-v2 store is renamed v3).
 */
export async function takeBackup(dataDir: string, machine: ReplicatedStateMachine, options: TakeBackupOptions = {}): Promise<Backup> {
  if (!(await memberDataExists(dataDir))) throw invalid(`${dataDir} holds no member data (no ${levelLayout.directory}/ directory)`);
  const storage = await LevelStorage.open(dataDir);
  try {
    const stored = await storage.load();
    if (stored === null) throw invalid(`${dataDir}: the member's store was never initialised`);
    let applied = stored.applied;
    if (applied < stored.snapshot.index) {
      // A snapshot from its leader was stored but not yet restored (the member stopped in between): start from it.
      if (stored.snapshotData === null) throw damaged(dataDir, `the stored keyspace (applied ${applied}) is behind the snapshot at ${stored.snapshot.index}`);
      machine.restore(stored.snapshotData, discardBatch);
      applied = stored.snapshot.index;
    } else {
      await machine.load(storage.keyspace());
    }
    const lastIndex = stored.snapshot.index + stored.entries.length;
    const commit = Math.min(Math.max(stored.hardState.commit, applied), lastIndex);
    const upTo = options.withUncommitted === true ? lastIndex : commit;
    let membership: Membership = stored.snapshot.membership;
    let term = stored.snapshot.term;
    const entryAt = (index: number): Entry | undefined => stored.entries[index - stored.snapshot.index - 1];
    // Membership entries take effect when appended (Raft thesis §4.1): the voters at `upTo` are the latest among the
    // entries up to it, which is the configuration a member whose log ended there would use.
    for (let index = stored.snapshot.index + 1; index <= upTo; index++) {
      const entry = entryAt(index);
      if (entry === undefined) throw damaged(dataDir, `log entry ${index} missing below ${upTo}`);
      term = entry.term;
      if (entry.kind === 'membership') membership = entry.membership;
      if (index > applied && entry.kind === 'normal') machine.apply(entry.data, entry.index, entry.term, discardBatch, false);
    }
    const image = machine.snapshot();
    const header: BackupHeader = {
      format: backupFormat,
      index: upTo,
      term,
      beyondCommit: upTo - commit,
      members: [...membership.voters],
      sourceMember: stored.identity.memberId,
      createdAt: (options.now ?? new Date()).toISOString(),
      imageBytes: image.length,
      imageCrc32c: crc32c(image),
    };
    return { header, image };
  } finally {
    await storage.close();
  }
}

/** LiveImage is a running member's state machine image at its applied index, with what the header needs. */
export interface LiveImage {
  readonly index: number;
  readonly term: number;
  /** voters are the voters in force at `index`. */
  readonly voters: readonly string[];
  readonly sourceMember: string;
  /**
   * parts are the image's bytes in order, as the state machine encoded them: never joined into one buffer on the
   * member (joining 335 MB at 1M instances stalled its event loop for up to a second).
   */
  readonly parts: readonly Uint8Array[];
  readonly imageBytes: number;
  /** imageCrc32c is the CRC-32C of the parts in order (computed in slices, between other work). */
  readonly imageCrc32c: number;
}

/** LiveBackup is a running member's backup as it is streamed: the file's header and the image in parts. */
export interface LiveBackup {
  readonly header: BackupHeader;
  readonly parts: readonly Uint8Array[];
}

/**
 * liveBackup is the backup of a running member's image (`cairn backup save --from`): every entry it covers was
 * applied, so committed (beyondCommit 0).
 */
export function liveBackup(live: LiveImage, now: Date = new Date()): LiveBackup {
  const header: BackupHeader = {
    format: backupFormat,
    index: live.index,
    term: live.term,
    beyondCommit: 0,
    members: [...live.voters],
    sourceMember: live.sourceMember,
    createdAt: now.toISOString(),
    imageBytes: live.imageBytes,
    imageCrc32c: live.imageCrc32c,
  };
  return { header, parts: live.parts };
}

/** encodeBackup renders a backup as the bytes of its file. */
export function encodeBackup(backup: Backup): Uint8Array {
  const header = new TextEncoder().encode(JSON.stringify(backup.header));
  if (header.length > backupHeaderBytesMax) throw invalid(`the backup header is ${header.length} bytes, above ${backupHeaderBytesMax}`);
  const bytes = framed(header, backup.image);
  if (bytes === null) throw invalid(`the backup would be ${backupMagic.length + 8 + header.length + backup.image.length} bytes, above ${backupBytesMax}`);
  return bytes;
}

/** framed lays a header's bytes and an image out as a backup file (magic, lengths, CRC); null above backupBytesMax. */
function framed(header: Uint8Array, image: Uint8Array): Uint8Array | null {
  const total = backupMagic.length + 4 + header.length + 4 + image.length;
  if (total > backupBytesMax) return null;
  const bytes = new Uint8Array(total);
  const view = new DataView(bytes.buffer);
  let at = 0;
  bytes.set(new TextEncoder().encode(backupMagic), at);
  at += backupMagic.length;
  view.setUint32(at, header.length);
  at += 4;
  bytes.set(header, at);
  at += header.length;
  view.setUint32(at, crc32c(header));
  at += 4;
  bytes.set(image, at);
  return bytes;
}

const headerKeys: readonly string[] = ['format', 'index', 'term', 'beyondCommit', 'members', 'sourceMember', 'createdAt', 'imageBytes', 'imageCrc32c'];

function isSafeCount(value: unknown, min: number): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= min;
}

function isMember(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= memberCharsMax && !/[\s,]/.test(value);
}

/** validHeader checks every field of a decoded header; the first problem found, or null. */
function headerProblem(value: unknown): string | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'the header is not a JSON object';
  const fields = value as Record<string, unknown>;
  const unknownKey = Object.keys(fields).find((key) => !headerKeys.includes(key));
  if (unknownKey !== undefined) return `the header has an unknown field ${JSON.stringify(unknownKey.slice(0, 40))}`;
  if (fields['format'] !== backupFormat) return `backup format ${JSON.stringify(fields['format'])} is not supported (this version reads format ${backupFormat})`;
  if (!isSafeCount(fields['index'], 0)) return 'the header\'s index is not a non-negative safe integer';
  if (!isSafeCount(fields['term'], 0)) return 'the header\'s term is not a non-negative safe integer';
  if ((fields['index'] === 0) !== (fields['term'] === 0)) return 'the header\'s index and term are not both zero or both positive';
  if (!isSafeCount(fields['beyondCommit'], 0) || (fields['beyondCommit'] as number) > (fields['index'] as number)) return 'the header\'s beyondCommit is not a count within its index';
  const members = fields['members'];
  if (!Array.isArray(members) || members.length > backupMembersMax || !members.every(isMember) || new Set(members).size !== members.length) {
    return `the header's members are not a list of at most ${backupMembersMax} distinct member addresses`;
  }
  if (!isMember(fields['sourceMember'])) return 'the header\'s sourceMember is not a member address';
  const createdAt = fields['createdAt'];
  if (typeof createdAt !== 'string' || createdAt.length > 40 || Number.isNaN(Date.parse(createdAt))) return 'the header\'s createdAt is not a date';
  if (!isSafeCount(fields['imageBytes'], 0)) return 'the header\'s imageBytes is not a non-negative safe integer';
  if (!isSafeCount(fields['imageCrc32c'], 0) || (fields['imageCrc32c'] as number) > 0xffff_ffff) return 'the header\'s imageCrc32c is not a 32-bit checksum';
  return null;
}

/**
 * backupOfStream checks a backup received from a running member (`cairn backup save --from`) as a file would be:
 * the header's bytes as sent and the image are framed like a file and read by decodeBackup, so every field and the
 * image's checksum are checked the same way. `source` names the member in errors.
 */
export function backupOfStream(headerBytes: Uint8Array, image: Uint8Array, source: string): Backup {
  if (headerBytes.length > backupHeaderBytesMax) throw damaged(source, `a header of ${headerBytes.length} bytes, above ${backupHeaderBytesMax}`);
  const bytes = framed(headerBytes, image);
  if (bytes === null) throw damaged(source, `a backup of ${backupMagic.length + 8 + headerBytes.length + image.length} bytes, above ${backupBytesMax}`);
  return decodeBackup(bytes, source);
}

/**
 * decodeBackup reads a backup file's bytes: CAIRN_INVALID_ARGUMENT when they are not a backup this version reads,
 * CAIRN_STORAGE_CORRUPT when a length or checksum shows damage. `file` names it in errors.
 */
export function decodeBackup(bytes: Uint8Array, file: string): Backup {
  if (bytes.length < backupMagic.length || new TextDecoder().decode(bytes.subarray(0, backupMagic.length)) !== backupMagic) {
    throw invalid(`${file} is not a Cairn backup (it does not start with ${backupMagic})`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = backupMagic.length;
  if (bytes.length < at + 4) throw damaged(file, 'cut short before the header length');
  const headerLength = view.getUint32(at);
  at += 4;
  if (headerLength > backupHeaderBytesMax) throw damaged(file, `a header length of ${headerLength} bytes, above ${backupHeaderBytesMax}`);
  if (bytes.length < at + headerLength + 4) throw damaged(file, 'cut short inside the header');
  const headerBytes = bytes.subarray(at, at + headerLength);
  at += headerLength;
  const headerCrc = view.getUint32(at);
  at += 4;
  if (crc32c(headerBytes) !== headerCrc) throw damaged(file, 'the header fails its CRC-32C');
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerBytes));
  } catch (error) {
    throw damaged(file, `the header is not JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
  const problem = headerProblem(parsed);
  if (problem !== null) throw invalid(`${file}: ${problem}`);
  const header = parsed as BackupHeader;
  const image = bytes.subarray(at);
  if (image.length !== header.imageBytes) throw damaged(file, `the image is ${image.length} bytes, the header says ${header.imageBytes}`);
  if (crc32c(image) !== header.imageCrc32c) throw damaged(file, 'the image fails its CRC-32C');
  return { header: Object.freeze({ ...header, members: Object.freeze([...header.members]) }), image };
}

/** checkImage decodes a backup's image into `scratch`, a fresh state machine: CAIRN_STORAGE_CORRUPT if it does not decode. */
export function checkImage(backup: Backup, scratch: ReplicatedStateMachine, file: string): void {
  try {
    scratch.restore(backup.image, discardBatch);
  } catch (error) {
    throw damaged(file, `the image does not decode: ${isCairnError(error) || error instanceof Error ? error.message : String(error)}`);
  }
}

/** RestoreTarget is the new member a restore writes: its identity and the voters of the new cluster. */
export interface RestoreTarget {
  readonly dataDir: string;
  readonly addr: string;
  /** members are the new cluster's voters, `addr` among them; every member is restored with the same list. */
  readonly members: readonly string[];
  /** clusterId is the new cluster's id (the same for every member restored from one backup into one cluster). */
  readonly clusterId: string;
}

/**
 * restoreBackup writes a new member's store holding the backup as its snapshot, at the backup's index and term, with
 * `members` as voters. The data directory must be absent or empty. The backup must have been decoded and its image
 * checked (decodeBackup, checkImage) first.
 */
export async function restoreBackup(backup: Backup, target: RestoreTarget): Promise<void> {
  if (!target.members.includes(target.addr)) throw invalid(`the members ${target.members.join(',')} do not include this member's address ${target.addr}`);
  if (target.members.length > backupMembersMax) throw invalid(`at most ${backupMembersMax} members`);
  let present: string[] = [];
  try {
    present = await readdir(target.dataDir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  if (present.length > 0) throw invalid(`${target.dataDir} is not empty: a restore writes a new member's data directory, never over an existing one`);
  // Written beside the target and renamed into place (one rename(2), which replaces an empty directory): a restore
  // that fails (a full disk) or is killed half way never leaves the target initialised with part of the registry,
  // which a member would then serve as if it were whole. A killed one leaves only its staging directory behind.
  const staging = `${path.resolve(target.dataDir)}.restoring-${process.pid}-${Date.now().toString(36)}`;
  try {
    await writeRestoredMember(backup, target, staging);
    await rename(staging, target.dataDir);
  } catch (error) {
    await rm(staging, { recursive: true, force: true }).catch(() => undefined);
    // A refusal of the arguments stands as it is; a failure to write (the filesystem's, coded or not) says the
    // target was left untouched.
    if (isCairnError(error) && error.code !== 'CAIRN_STORAGE_IO_ERROR') throw error;
    throw new CairnError('CAIRN_STORAGE_IO_ERROR', `the restore into ${target.dataDir} failed and wrote nothing there: ${(error as Error).message}`, { cause: error });
  }
}

/** writeRestoredMember writes the restored member's storage into `dataDir` (a fresh staging directory). */
async function writeRestoredMember(backup: Backup, target: RestoreTarget, dataDir: string): Promise<void> {
  await mkdir(dataDir, { recursive: true });
  // The restored log starts after the backup's entry; a backup of an empty member (index 0) starts at entry 1 of term 1.
  const index = backup.header.index;
  const term = Math.max(backup.header.term, 1);
  const membership: Membership = { voters: [...target.members], learners: [] };
  const storage = await LevelStorage.open(dataDir);
  try {
    await storage.initialise({ clusterId: target.clusterId, memberId: target.addr }, membership);
    if (index > 0) {
      await storage.writeReady({ snapshot: { meta: { index, term, membership }, data: backup.image }, entries: [], hardState: { term, vote: null, commit: index }, applied: null }, true);
    } else {
      await storage.writeReady({ snapshot: null, entries: [], hardState: { term, vote: null, commit: 0 }, applied: null }, true);
    }
  } finally {
    await storage.close();
  }
}
