// corruption: the corrupt nemesis's decisions and file work (PEERS.md A7: "bit-flip or truncate the LevelDB or
// Raft-log files on a minority; corruption is detected, no silent divergence, the node is refused or rebuilt"),
// kept apart from the fault schedule so the decisions are pure and tested (test/jepsen/corruption.test.ts).
//
// A member's database is one LevelDB directory (<data-dir>/raft, src/replica/level-storage.ts): sorted tables
// (`NNNNNN.ldb`), the write-ahead log of the current memtable (`NNNNNN.log`), MANIFEST and CURRENT. LevelDB numbers
// its files from one counter, so the highest number is the newest file. One fault, on a dead member (killed with
// SIGKILL and reaped), damages one file in one of three ways, chosen from the run's seed:
// - flip-table: 1-3 bits flipped at offsets in the middle 80% of a random table (the data blocks; the index and
//   footer sit at the end). LevelDB does not verify block checksums on reads (classic-level opens it with
//   paranoid_checks and verify_checksums off), so what a flip does is up to the reader: Cairn's CRC-32C on log
//   entries and meta records, snappy's framing, or nothing.
// - flip-wal: the same in the write-ahead log. LevelDB's recovery checks each record's CRC, and without
//   paranoid_checks it drops a bad record (and the rest of its 32 KiB block) and carries on.
// - truncate: the newest table or log cut to a random length in the middle of it.
//
// Before and after the damage, a copy of the data directory is opened with Cairn's own LevelStorage (the copy, so
// LevelDB's recovery of the probe never touches the member's files): load() (hard state, snapshot, every log
// entry, each checksummed) and the whole keyspace. Comparing the two probes shows what the damage did to what a
// restarted member reads: log entries lost, hard state rolled back, keyspace records changed with the applied
// index unchanged. Those are facts about the files, whatever the member then does.
//
// The member is then started with its normal flags. Outcomes (judgeCorruption):
// - 'detected-refused': it exited before it was ready with CAIRN_STORAGE_CORRUPT (docs/errors.md). The nemesis
//   rebuilds it the documented way (docs/operations.md: remove, wipe, --join, add).
// - 'refused-uncoded': it exited before it was ready, but without CAIRN_STORAGE_CORRUPT (a LevelDB error passed
//   through, a crash): detected, but not as documented. A nemesis problem.
// - 'recovered': it started and the probes show nothing a restarted member reads was lost or changed (the damage
//   hit stale versions, or LevelDB's recovery repaired it without losing a record).
// - 'undetected-divergence': it started although the probes show keyspace records changed, missing or added without
//   the applied index moving back (the state it serves is not the state of its log), or although LevelStorage
//   refuses a copy of the same files. The run is invalid.
// - 'undetected-loss': it started although the probes show log entries it had fsynced (and acknowledged) lost, or
//   its durable term or vote rolled back. Raft sends the lost tail again from the leader, so by itself this is no
//   divergence, and a cut at a record boundary cannot be told from a crash before the write; but the member forgot
//   acknowledgements and possibly a vote. Counted and reported, not judged invalid (PEERS.md A7's bar is "no silent
//   divergence"); see jepsen-like/README.md, A7.
// - 'detected-later': it started, then stopped by itself with a corruption error while the fault held it.
// Besides, after the heal every register key is read on every member (finalReadOf in workloads/register.ts) and
// the answers compared (divergencesOf): a member that answers otherwise than the others diverged silently; a
// 'recovered' or 'undetected-loss' corruption of that member becomes 'undetected-divergence'. The same reads go
// through the linearizability check.

import { cpSync, closeSync, fstatSync, openSync, readdirSync, readSync, rmSync, statSync, truncateSync, writeSync, fsyncSync } from 'node:fs';
import path from 'node:path';
import { isCairnError } from '../src/errors.ts';
import { crc32c } from '../src/replica/codec.ts';
import { levelLayout, LevelStorage } from '../src/replica/level-storage.ts';
import { isClientEvent, isNemesisEvent, type RecordedEvent } from './history.ts';
import type { Generator } from './generator.ts';
import { sleep, type Random } from './random.ts';
import { finalReadOf, keyOf } from './workloads/register.ts';

/** CorruptionMode is what one fault does to a file (see the file comment). */
export type CorruptionMode = 'flip-table' | 'flip-wal' | 'truncate';
/** corruptionModes lists every mode, in the order the planner draws from. */
export const corruptionModes: readonly CorruptionMode[] = ['flip-table', 'flip-wal', 'truncate'];

/** LevelFileKind: a sorted table (.ldb, or .sst from older LevelDBs) or a write-ahead log (.log). */
export type LevelFileKind = 'table' | 'wal';

/** LevelFile is one LevelDB data file: its name, kind, LevelDB file number and size in bytes. */
export interface LevelFile {
  readonly name: string;
  readonly kind: LevelFileKind;
  readonly number: number;
  readonly size: number;
}

/** levelFilePattern matches LevelDB's numbered table and log files (MANIFEST, CURRENT, LOG, LOCK are not data). */
const levelFilePattern = /^(\d{1,20})\.(ldb|sst|log)$/;
/** levelFilesMax bounds the files listed: a member's database has tens of files in these runs. */
const levelFilesMax = 10_000;
/** corruptibleBytesMin: a smaller file has no middle worth damaging (an empty log after a clean open, for one). */
export const corruptibleBytesMin = 64;
/** flipsMax bounds the bits flipped by one fault. */
export const flipsMax = 3;
/** middleShare: flips and truncation points fall in [10%, 90%) of the file. */
const middleStartShare = 0.1;
const middleEndShare = 0.9;

/** levelFilesOf keeps the LevelDB data files of a directory listing, sorted by file number (oldest first). */
export function levelFilesOf(entries: readonly { readonly name: string; readonly size: number }[]): LevelFile[] {
  const files: LevelFile[] = [];
  for (const entry of entries.slice(0, levelFilesMax)) {
    const match = levelFilePattern.exec(entry.name);
    if (match === null || !Number.isSafeInteger(entry.size) || entry.size < 0) continue;
    files.push({ name: entry.name, kind: match[2] === 'log' ? 'wal' : 'table', number: Number(match[1]), size: entry.size });
  }
  return files.sort((a, b) => a.number - b.number);
}

/** listLevelFiles lists the LevelDB data files of `databaseDir` with their sizes. */
export function listLevelFiles(databaseDir: string): LevelFile[] {
  const names = readdirSync(databaseDir).slice(0, levelFilesMax);
  return levelFilesOf(names.map((name) => ({ name, size: statSync(path.join(databaseDir, name)).size })));
}

/** BitFlip is one flipped bit: the byte's offset in the file and the bit (0 = least significant). */
export interface BitFlip {
  readonly offset: number;
  readonly bit: number;
}

/** CorruptionPlan is what one fault will do: the mode, the file (its size when planned), the flips or the new length. */
export interface CorruptionPlan {
  readonly mode: CorruptionMode;
  readonly file: string;
  readonly kind: LevelFileKind;
  readonly sizeBefore: number;
  readonly flips: readonly BitFlip[];
  /** truncateTo: the file's new length (truncate only), else null. */
  readonly truncateTo: number | null;
}

/** middleOf is the range [start, end) of offsets the plan may touch in a file of `size` bytes (never empty). */
export function middleOf(size: number): { readonly start: number; readonly end: number } {
  const start = Math.floor(size * middleStartShare);
  return { start, end: Math.max(start + 1, Math.floor(size * middleEndShare)) };
}

/**
 * planCorruption chooses a mode, a file and the offsets from `random`, among the files big enough to damage (null
 * when there is none). The mode is drawn first, whatever is available, and falls back to the first available one,
 * so one seed's later draws do not depend on which files existed.
 */
export function planCorruption(files: readonly LevelFile[], random: Random): CorruptionPlan | null {
  const big = files.filter((file) => file.size >= corruptibleBytesMin);
  const tables = big.filter((file) => file.kind === 'table');
  const wals = big.filter((file) => file.kind === 'wal');
  const newest = big.reduce<LevelFile | null>((best, file) => (best === null || file.number > best.number ? file : best), null);
  const available = corruptionModes.filter((mode) => (mode === 'flip-table' ? tables.length > 0 : mode === 'flip-wal' ? wals.length > 0 : newest !== null));
  const wanted = random.pick(corruptionModes);
  const mode = available.includes(wanted) ? wanted : available[0];
  if (mode === undefined || newest === null) return null;
  const file = mode === 'flip-table' ? random.pick(tables) : mode === 'flip-wal' ? random.pick(wals) : newest;
  const { start, end } = middleOf(file.size);
  if (mode === 'truncate') {
    return { mode, file: file.name, kind: file.kind, sizeBefore: file.size, flips: [], truncateTo: random.between(start, end - 1) };
  }
  const count = Math.min(random.between(1, flipsMax), end - start);
  const offsets = new Set<number>();
  // Bounded: each draw is in the range, which holds at least `count` offsets; the attempt bound guards the rest.
  for (let attempt = 0; offsets.size < count && attempt < count * 100; attempt++) offsets.add(random.between(start, end - 1));
  const flips = [...offsets].sort((a, b) => a - b).map((offset) => ({ offset, bit: random.int(8) }));
  return { mode, file: file.name, kind: file.kind, sizeBefore: file.size, flips, truncateTo: null };
}

/** ByteChange is one byte a flip changed: its offset and its value before and after (0-255). */
export interface ByteChange {
  readonly offset: number;
  readonly before: number;
  readonly after: number;
}

/** AppliedCorruption is a plan as carried out: the bytes changed (flips) and the file's size afterwards. */
export interface AppliedCorruption extends CorruptionPlan {
  readonly changes: readonly ByteChange[];
  readonly sizeAfter: number;
}

/**
 * applyCorruption carries out `plan` on the file in `databaseDir` and fsyncs it. The file must still have the size it
 * was planned with (the member is dead: nothing else writes it); anything else is an error and nothing is changed.
 */
export function applyCorruption(databaseDir: string, plan: CorruptionPlan): AppliedCorruption {
  if (!levelFilePattern.test(plan.file)) throw new Error(`applyCorruption: ${JSON.stringify(plan.file)} is not a LevelDB data file`);
  const file = path.join(databaseDir, plan.file);
  const fd = openSync(file, 'r+');
  try {
    const size = fstatSync(fd).size;
    if (size !== plan.sizeBefore) throw new Error(`applyCorruption: ${plan.file} has ${size} bytes, planned with ${plan.sizeBefore}`);
    if (plan.truncateTo !== null) {
      if (!(plan.truncateTo >= 0 && plan.truncateTo < size)) throw new Error(`applyCorruption: cannot truncate ${plan.file} (${size} bytes) to ${plan.truncateTo}`);
      truncateSync(file, plan.truncateTo);
      fsyncSync(fd);
      return { ...plan, changes: [], sizeAfter: plan.truncateTo };
    }
    if (plan.flips.length === 0 || plan.flips.length > flipsMax) throw new Error(`applyCorruption: ${plan.flips.length} flips, expected 1..${flipsMax}`);
    const changes: ByteChange[] = [];
    const byte = Buffer.alloc(1);
    for (const flip of plan.flips) {
      if (!(flip.offset >= 0 && flip.offset < size && flip.bit >= 0 && flip.bit < 8)) throw new Error(`applyCorruption: flip ${JSON.stringify(flip)} outside ${plan.file} (${size} bytes)`);
      readSync(fd, byte, 0, 1, flip.offset);
      const before = byte[0] ?? 0;
      byte[0] = before ^ (1 << flip.bit);
      writeSync(fd, byte, 0, 1, flip.offset);
      changes.push({ offset: flip.offset, before, after: byte[0] });
    }
    fsyncSync(fd);
    return { ...plan, changes, sizeAfter: size };
  } finally {
    closeSync(fd);
  }
}

/** StorageProbe is what Cairn's LevelStorage reads from a copy of a member's data directory (see the file comment). */
export interface StorageProbe {
  /** error: the load or keyspace read failed with this message (code: its Cairn code, or null); the rest is then zero. */
  readonly error: string | null;
  readonly code: string | null;
  readonly snapshotIndex: number;
  readonly lastIndex: number;
  readonly applied: number;
  readonly term: number;
  readonly vote: string | null;
  readonly commit: number;
  /** keyspace: every stored state key and the CRC-32C of its value (a checksum is enough to compare two probes). */
  readonly keyspace: ReadonlyMap<string, number>;
}

/** probeKeysMax bounds the keyspace records a probe keeps: far more than a run of a few minutes writes. */
const probeKeysMax = 2_000_000;

/**
 * probeStorage copies `dataDir` to `scratchDir` (removed first and afterwards) and reads the copy with LevelStorage:
 * load() and the whole keyspace. A failure is reported in the probe, never thrown.
 */
export async function probeStorage(dataDir: string, scratchDir: string): Promise<StorageProbe> {
  rmSync(scratchDir, { recursive: true, force: true });
  cpSync(dataDir, scratchDir, { recursive: true });
  const empty = { snapshotIndex: 0, lastIndex: 0, applied: 0, term: 0, vote: null, commit: 0, keyspace: new Map<string, number>() };
  let storage: LevelStorage | null = null;
  try {
    storage = await LevelStorage.open(scratchDir);
    const stored = await storage.load();
    if (stored === null) return { ...empty, error: 'the store is empty', code: null };
    const keyspace = new Map<string, number>();
    for await (const batch of storage.keyspace()) {
      for (const [key, value] of batch) {
        if (keyspace.size >= probeKeysMax) throw new Error(`more than ${probeKeysMax} keyspace records`);
        keyspace.set(key, crc32c(value));
      }
    }
    const snapshotIndex = stored.snapshot.index;
    const { term, vote, commit } = stored.hardState;
    return { error: null, code: null, snapshotIndex, lastIndex: snapshotIndex + stored.entries.length, applied: stored.applied, term, vote, commit, keyspace };
  } catch (error) {
    return { ...empty, error: error instanceof Error ? error.message.slice(0, 600) : String(error), code: isCairnError(error) ? error.code : null };
  } finally {
    await storage?.close().catch(() => undefined);
    rmSync(scratchDir, { recursive: true, force: true });
  }
}

/** databaseDirOf is the LevelDB directory inside a member's data directory. */
export function databaseDirOf(dataDir: string): string {
  return path.join(dataDir, levelLayout.directory);
}

/** ProbeDiff is what the damage changed in what a restarting member reads (diffProbes). */
export interface ProbeDiff {
  /** lostEntries: log entries present before and absent after (the log's tail), 0 when none. */
  readonly lostEntries: number;
  readonly lastIndexBefore: number;
  readonly lastIndexAfter: number;
  /** hardState: how the durable term and vote moved back, or null when they did not. */
  readonly hardState: string | null;
  readonly appliedBefore: number;
  readonly appliedAfter: number;
  /** changedKeys / missingKeys / extraKeys: keyspace records that differ (first few of each, with counts). */
  readonly changedKeys: readonly string[];
  readonly missingKeys: readonly string[];
  readonly extraKeys: readonly string[];
  readonly changedCount: number;
  readonly missingCount: number;
  readonly extraCount: number;
}

/** diffKeysShown bounds the keys a diff names of each kind. */
const diffKeysShown = 5;

/** diffProbes compares two successful probes of one member (before and after the damage). */
export function diffProbes(before: StorageProbe, after: StorageProbe): ProbeDiff {
  const changed: string[] = [];
  const missing: string[] = [];
  const extra: string[] = [];
  for (const [key, crc] of before.keyspace) {
    const now = after.keyspace.get(key);
    if (now === undefined) missing.push(key);
    else if (now !== crc) changed.push(key);
  }
  for (const key of after.keyspace.keys()) if (!before.keyspace.has(key)) extra.push(key);
  const rolledBack = after.term < before.term || (after.term === before.term && after.vote !== before.vote);
  return {
    lostEntries: Math.max(0, before.lastIndex - after.lastIndex),
    lastIndexBefore: before.lastIndex,
    lastIndexAfter: after.lastIndex,
    hardState: rolledBack ? `term ${before.term} vote ${before.vote ?? 'none'} -> term ${after.term} vote ${after.vote ?? 'none'}` : null,
    appliedBefore: before.applied,
    appliedAfter: after.applied,
    changedKeys: changed.slice(0, diffKeysShown),
    missingKeys: missing.slice(0, diffKeysShown),
    extraKeys: extra.slice(0, diffKeysShown),
    changedCount: changed.length,
    missingCount: missing.length,
    extraCount: extra.length,
  };
}

/** SilentChange is what a diff shows changed that a restarted member would not notice: divergence and loss, or null. */
export interface SilentChange {
  /** divergence: keyspace records changed under an applied index that did not move back, or null. */
  readonly divergence: string | null;
  /** loss: log entries lost or the durable term and vote rolled back, or null. */
  readonly loss: string | null;
}

/**
 * silentChangesOf says what a diff shows lost or changed. Keyspace differences count only when the applied index did
 * not move back: a batch lost with its applied index is applied again from the log (the keyspace is a cache of the
 * log), which is no divergence while the log kept those entries.
 */
export function silentChangesOf(diff: ProbeDiff): SilentChange {
  const lost: string[] = [];
  if (diff.lostEntries > 0) lost.push(`${diff.lostEntries} log entries lost (last index ${diff.lastIndexBefore} -> ${diff.lastIndexAfter})`);
  if (diff.hardState !== null) lost.push(`hard state rolled back (${diff.hardState})`);
  const keyspaceChanged = diff.changedCount + diff.missingCount + diff.extraCount > 0;
  let divergence: string | null = null;
  if (keyspaceChanged && diff.appliedAfter >= diff.appliedBefore) {
    const keys = [...diff.changedKeys, ...diff.missingKeys, ...diff.extraKeys].slice(0, diffKeysShown).join(', ');
    divergence = `keyspace records changed at applied index ${diff.appliedAfter}: ${diff.changedCount} changed, ${diff.missingCount} missing, ${diff.extraCount} extra (${keys})`;
  }
  return { divergence, loss: lost.length === 0 ? null : lost.join('; ') };
}

/** StartObservation is how the member's start on damaged data ended: ready, or exited first with its last lines. */
export interface StartObservation {
  readonly ready: boolean;
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly lastLines: readonly string[];
}

/** CorruptionOutcome classifies one fault (see the file comment). */
export type CorruptionOutcome = 'detected-refused' | 'refused-uncoded' | 'recovered' | 'undetected-divergence' | 'undetected-loss' | 'detected-later';
/** corruptionOutcomes lists every outcome, for the counts. */
export const corruptionOutcomes: readonly CorruptionOutcome[] = ['detected-refused', 'detected-later', 'recovered', 'undetected-loss', 'undetected-divergence', 'refused-uncoded'];

/** corruptCode is the code Cairn documents for corrupt storage (docs/errors.md). */
export const corruptCode = 'CAIRN_STORAGE_CORRUPT';
/** refusalLine matches the line `cairn server` prints when a start fails (src/cli/server.ts). */
const refusalLine = /^cairn server: (?:fatal: )?(CAIRN_[A-Z_]+)?:? ?(.*)$/;

/** codeOfLines finds the Cairn error code of the last `cairn server:` line, or null. */
export function codeOfLines(lines: readonly string[]): string | null {
  for (let i = lines.length - 1; i >= 0; i--) {
    const match = refusalLine.exec(lines[i] ?? '');
    if (match !== null) return match[1] ?? null;
  }
  return null;
}

/** CorruptionJudgement is one fault's outcome and why. */
export interface CorruptionJudgement {
  readonly outcome: CorruptionOutcome;
  readonly detail: string;
}

/**
 * judgeCorruption classifies a fault from the start's end, the probes' difference (null when a probe failed) and the
 * error of the probe after the damage (null when it loaded).
 */
export function judgeCorruption(start: StartObservation, diff: ProbeDiff | null, probeAfterError: string | null): CorruptionJudgement {
  if (!start.ready) {
    const code = codeOfLines(start.lastLines);
    const last = start.lastLines.at(-1) ?? 'no output';
    if (code === corruptCode) return { outcome: 'detected-refused', detail: `exited ${String(start.exitCode)} with ${corruptCode}` };
    return { outcome: 'refused-uncoded', detail: `exited ${String(start.exitCode ?? start.signal)} before it was ready, without ${corruptCode}: ${last.slice(0, 300)}` };
  }
  if (probeAfterError !== null) return { outcome: 'undetected-divergence', detail: `started although LevelStorage refuses a copy of the same files: ${probeAfterError.slice(0, 300)}` };
  const change = diff === null ? { divergence: null, loss: null } : silentChangesOf(diff);
  if (change.divergence !== null) return { outcome: 'undetected-divergence', detail: `started although ${[change.divergence, change.loss].filter((part) => part !== null).join('; ')}` };
  if (change.loss !== null) return { outcome: 'undetected-loss', detail: `started although ${change.loss}` };
  return { outcome: 'recovered', detail: diff === null ? 'started (no probe before the damage to compare)' : 'started; nothing it reads was lost or changed' };
}

/** mentionsCorruption: a member's last lines name corruption (Cairn's code, or a LevelDB "Corruption:" status). */
export function mentionsCorruption(lines: readonly string[]): boolean {
  return lines.some((line) => line.includes(corruptCode) || line.includes('Corruption:'));
}

/** FinalRead is one member's answer for one register key after the heal (value and version; absent: null). */
export interface FinalRead {
  readonly key: string;
  readonly member: string;
  readonly value: string | null;
  readonly version: number | null;
}

/** finalReadsOf collects the ok final reads (value.final === true) of the register workload from a history. */
export function finalReadsOf(events: readonly RecordedEvent[]): FinalRead[] {
  const reads: FinalRead[] = [];
  for (const event of events) {
    if (!isClientEvent(event) || event.type !== 'ok' || event.f !== 'read') continue;
    const value = event.value as Readonly<Record<string, unknown>> | null;
    if (value === null || typeof value !== 'object' || value['final'] !== true) continue;
    const key = value['key'];
    const member = value['node'];
    const read = value['value'];
    const version = value['version'];
    if (typeof key !== 'string' || typeof member !== 'string' || (read !== null && typeof read !== 'string')) continue;
    reads.push({ key, member, value: read, version: typeof version === 'number' ? version : null });
  }
  return reads;
}

/** Divergence is a member whose final answer for a key differs from the answer most members gave. */
export interface Divergence {
  readonly key: string;
  readonly member: string;
  readonly got: string;
  readonly majority: string;
}

function answerOf(read: FinalRead): string {
  return read.value === null ? 'absent' : `${read.value}@${read.version ?? '?'}`;
}

/**
 * divergencesOf compares, per key, the members' final answers (the last ok final read of each member): every member
 * whose answer differs from the most common one diverged; with no strict majority, every member that differs from
 * the most common answer is listed (a tie names both sides).
 */
export function divergencesOf(reads: readonly FinalRead[]): Divergence[] {
  const byKey = new Map<string, Map<string, string>>();
  for (const read of reads) {
    const members = byKey.get(read.key) ?? new Map<string, string>();
    members.set(read.member, answerOf(read));
    byKey.set(read.key, members);
  }
  const divergences: Divergence[] = [];
  for (const [key, members] of [...byKey].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const counts = new Map<string, number>();
    for (const answer of members.values()) counts.set(answer, (counts.get(answer) ?? 0) + 1);
    const ranked = [...counts].sort((a, b) => b[1] - a[1]);
    const [top, second] = ranked;
    if (top === undefined || ranked.length === 1) continue;
    const tie = second !== undefined && second[1] === top[1];
    for (const [member, answer] of members) {
      if (answer !== top[0] || tie) divergences.push({ key, member, got: answer, majority: tie ? `no majority (${ranked.map(([a, n]) => `${a} x${n}`).join(', ')})` : top[0] });
    }
  }
  return divergences;
}

/** CorruptionRecord is one fault as the history records it (the nemesis's start-corrupt and stop-corrupt lines). */
export interface CorruptionRecord {
  readonly id: number;
  readonly member: string;
  readonly mode: string;
  readonly file: string;
  readonly outcome: CorruptionOutcome;
  readonly detail: string;
}

/** CorruptionResult is the A7 checker's verdict: outcomes per fault, their counts, the final divergences. */
export interface CorruptionResult {
  readonly valid: boolean;
  readonly faults: readonly CorruptionRecord[];
  readonly counts: Readonly<Record<CorruptionOutcome, number>>;
  readonly finalReads: number;
  readonly finalKeys: number;
  readonly divergences: readonly Divergence[];
  readonly problems: readonly string[];
}

function recordOf(value: Readonly<Record<string, unknown>>): CorruptionRecord | null {
  const { id, member, outcome, detail } = value;
  const plan = (value['plan'] ?? {}) as Readonly<Record<string, unknown>>;
  if (typeof id !== 'number' || typeof member !== 'string' || typeof outcome !== 'string' || !(corruptionOutcomes as readonly string[]).includes(outcome)) return null;
  return { id, member, mode: String(plan['mode'] ?? '?'), file: String(plan['file'] ?? '?'), outcome: outcome as CorruptionOutcome, detail: typeof detail === 'string' ? detail : '' };
}

/**
 * checkCorruption judges a run of the corrupt nemesis: each fault's outcome as recorded (a stop-corrupt line with an
 * outcome, 'detected-later', replaces its start's), a 'recovered' or 'undetected-loss' fault of a member that
 * diverged at the end becomes 'undetected-divergence', and the run is valid only when no fault is
 * 'undetected-divergence' or 'refused-uncoded', no member diverged, and the final reads covered every member.
 */
export function checkCorruption(events: readonly RecordedEvent[], members: readonly string[]): CorruptionResult {
  const faults = new Map<number, CorruptionRecord>();
  for (const event of events) {
    if (!isNemesisEvent(event) || event.type !== 'info' || (event.f !== 'start-corrupt' && event.f !== 'stop-corrupt')) continue;
    const value = (event.value ?? {}) as Readonly<Record<string, unknown>>;
    const result = (event.f === 'stop-corrupt' ? value['result'] : value) as Readonly<Record<string, unknown>> | null;
    const record = result === null || typeof result !== 'object' ? null : recordOf({ ...result, id: value['id'] });
    if (record === null) continue;
    const earlier = faults.get(record.id);
    faults.set(record.id, earlier === undefined ? record : { ...earlier, outcome: record.outcome, detail: record.detail });
  }
  const reads = finalReadsOf(events);
  const divergences = divergencesOf(reads);
  const diverged = new Set(divergences.map((d) => d.member));
  const started = (outcome: CorruptionOutcome): boolean => outcome === 'recovered' || outcome === 'undetected-loss';
  const judged = [...faults.values()].sort((a, b) => a.id - b.id).map((fault) => (started(fault.outcome) && diverged.has(fault.member)
    ? { ...fault, outcome: 'undetected-divergence' as const, detail: `${fault.detail}; and its final reads diverge from the other members'` }
    : fault));
  const counts = Object.fromEntries(corruptionOutcomes.map((outcome) => [outcome, judged.filter((fault) => fault.outcome === outcome).length])) as Record<CorruptionOutcome, number>;
  const problems: string[] = [];
  for (const fault of judged) if (fault.outcome === 'undetected-divergence' || fault.outcome === 'refused-uncoded') problems.push(`corruption #${fault.id} of ${fault.member} (${fault.mode} ${fault.file}): ${fault.outcome}: ${fault.detail}`);
  for (const d of divergences.slice(0, 10)) problems.push(`divergence: ${d.member} reads ${d.key} as ${d.got}, the others ${d.majority}`);
  const keys = new Set(reads.map((read) => read.key));
  const readers = new Set(reads.map((read) => read.member));
  for (const member of members) if (keys.size > 0 && !readers.has(member)) problems.push(`no final read succeeded on ${member}: its state was not compared`);
  if (keys.size === 0) problems.push('no final read: the members\' states were not compared');
  return { valid: problems.length === 0, faults: judged, counts, finalReads: reads.length, finalKeys: keys.size, divergences, problems };
}

/** finalReadRetryMs spaces the retries of a final read that did not succeed. */
const finalReadRetryMs = 200;

/**
 * registerFinalReads reads register keys 0..keys-1 on every member (finalReadOf), the members in parallel, each read
 * retried until it succeeds or `deadline` (Date.now() ms) passes; returns the reads that never succeeded.
 */
export async function registerFinalReads(generator: Generator, keys: number, members: readonly string[], deadline: number, firstProcess: number, random: Random): Promise<string[]> {
  const missing: string[] = [];
  await Promise.all(members.map(async (member, index) => {
    const memberRandom = random.fork();
    // Process numbers: one block of keys x retries per member, so no two members share one.
    let process = firstProcess + index * 1_000_000;
    for (let k = 0; k < keys; k++) {
      let done = false;
      while (!done && Date.now() < deadline) {
        done = (await generator.invokeOn(finalReadOf(keyOf(k)), process++, member, memberRandom)) === 'ok';
        if (!done) await sleep(finalReadRetryMs);
      }
      if (!done) missing.push(`register key ${keyOf(k)} on ${member}`);
    }
  }));
  return missing;
}
