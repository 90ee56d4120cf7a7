// bench/snapshot-save: how long a log compaction and the install of a large snapshot hold the event loop, on
// LevelStorage (the member's real storage, on disk). After --entries log entries and a keyspace of --mb MiB (written
// as the state machine does, unsynced), compactLog makes the keyspace the snapshot (a memtable flush, then one
// fsynced batch of the meta and the log deletions); then a follower installs a leader's image of --mb MiB
// (writeReady with a snapshot: chunks first, then one batch). A 1 ms timer records the longest gap between its runs
// (what heartbeats and client requests wait for meanwhile).
//
//   node --import tsx bench/snapshot-save.ts [--mb 25] [--entries 2000] [--dir DIR]
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

import type { Entry, Membership } from '../src/raft/types.ts';
import { LevelStorage } from '../src/replica/level-storage.ts';
import { measureLoop } from './lib/event-loop.ts';

const { values } = parseArgs({ options: { mb: { type: 'string', default: '25' }, entries: { type: 'string', default: '2000' }, dir: { type: 'string' } } });
const bytes = Math.round(Number(values.mb) * 1024 * 1024);
const entryCount = Number(values.entries);
const dir = values.dir ?? await mkdtemp(path.join(os.tmpdir(), 'cairn-snapshot-save-'));
const membership: Membership = { voters: ['127.0.2.44:18848'], learners: [] };

const storage = await LevelStorage.open(dir);
try {
  await storage.initialise({ clusterId: 'bench', memberId: '127.0.2.44:18848' }, membership);
  const command = new Uint8Array(700).fill(1);
  for (let first = 1; first <= entryCount; first += 500) {
    const entries: Entry[] = [];
    for (let index = first; index < Math.min(first + 500, entryCount + 1); index++) entries.push({ kind: 'normal', index, term: 1, data: command });
    await storage.writeReady({ snapshot: null, entries, hardState: { term: 1, vote: null, commit: entries.at(-1)!.index }, applied: null }, true);
  }
  const data = new Uint8Array(bytes);
  for (let i = 0; i < data.length; i += 4096) data[i] = i & 0xff;
  // The keyspace: records of ~500 bytes, as a registry's instances.
  const recordBytes = 500;
  const writes = [];
  for (let offset = 0, k = 0; offset < bytes; offset += recordBytes, k++) writes.push({ type: 'put' as const, key: `instance/${k.toString().padStart(8, '0')}`, value: data.subarray(offset, offset + recordBytes) });
  await storage.writeApplied(writes, entryCount, false);
  const measure = async (run: () => Promise<unknown>): Promise<{ ms: number; worstGapMs: number }> => {
    const { ms, longestGapMs } = await measureLoop(run);
    return { ms: Math.round(ms), worstGapMs: Math.round(longestGapMs) };
  };
  const compaction = await measure(() => storage.compactLog({ index: entryCount, term: 1, membership }));
  // A follower installing the leader's snapshot (writeReady with a snapshot past its log).
  const installed = { meta: { index: entryCount + 10, term: 2, membership }, data };
  const install = await measure(() => storage.writeReady({ snapshot: installed, entries: [], hardState: { term: 2, vote: null, commit: entryCount + 10 } }, true));
  console.log(JSON.stringify({
    snapshotMiB: Number(values.mb),
    compactLog: { ms: compaction.ms, worstEventLoopGapMs: compaction.worstGapMs },
    installFromLeader: { ms: install.ms, worstEventLoopGapMs: install.worstGapMs },
  }));
} finally {
  await storage.close();
  if (values.dir === undefined) await rm(dir, { recursive: true, force: true });
}
