// Goal: the corrupt nemesis (jepsen-like/corruption.ts, PEERS.md A7) damages what it says it damages and judges
// what it sees the way its file comment says. The planner picks, from a seed, one of LevelDB's data files (a table,
// the write-ahead log, or the newest of them to truncate) and offsets in its middle, the same for the same seed and
// files, never a file too small or not a data file; applyCorruption flips exactly the planned bits (or cuts the
// file to the planned length) of a real file and refuses a file that changed since it was planned. The judgement:
// a start refused with CAIRN_STORAGE_CORRUPT is 'detected-refused', one refused otherwise 'refused-uncoded'; a start
// despite keyspace records changed under the same applied index is 'undetected-divergence', despite a lost log tail
// or rolled-back vote 'undetected-loss', else 'recovered'. The checker: members' final reads that disagree are
// divergences (a tie names both sides), a 'recovered' fault of a diverging member becomes 'undetected-divergence',
// and the run is valid only without divergence, 'undetected-divergence', 'refused-uncoded' or a member never read.
// Method: real files in a temporary directory; crafted probes, start observations and history events.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import {
  applyCorruption,
  checkCorruption,
  codeOfLines,
  corruptibleBytesMin,
  diffProbes,
  divergencesOf,
  flipsMax,
  judgeCorruption,
  levelFilesOf,
  listLevelFiles,
  middleOf,
  planCorruption,
  type CorruptionPlan,
  type FinalRead,
  type LevelFile,
  type StartObservation,
  type StorageProbe,
} from '../../jepsen-like/corruption.ts';
import type { RecordedEvent } from '../../jepsen-like/history.ts';
import { Random } from '../../jepsen-like/random.ts';

let dir = '';
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'cairn-jepsen-corrupt-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** writeFiles makes a LevelDB-like directory: two tables, a log, and files that are not data. */
function writeFiles(): void {
  const bytes = (n: number, seed: number): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff));
  writeFileSync(path.join(dir, '000005.ldb'), bytes(4000, 1));
  writeFileSync(path.join(dir, '000009.ldb'), bytes(2000, 2));
  writeFileSync(path.join(dir, '000011.log'), bytes(3000, 3));
  writeFileSync(path.join(dir, 'MANIFEST-000010'), bytes(500, 4));
  writeFileSync(path.join(dir, 'CURRENT'), 'MANIFEST-000010\n');
  writeFileSync(path.join(dir, 'LOG'), 'recovering log #8\n');
  writeFileSync(path.join(dir, '000012.log'), '');
}

describe('levelFilesOf / listLevelFiles', () => {
  test('keeps numbered tables and logs, sorted by file number, with their sizes', () => {
    writeFiles();
    assert.deepEqual(listLevelFiles(dir), [
      { name: '000005.ldb', kind: 'table', number: 5, size: 4000 },
      { name: '000009.ldb', kind: 'table', number: 9, size: 2000 },
      { name: '000011.log', kind: 'wal', number: 11, size: 3000 },
      { name: '000012.log', kind: 'wal', number: 12, size: 0 },
    ]);
  });

  test('older LevelDBs name tables .sst; anything else is not data', () => {
    assert.deepEqual(levelFilesOf([{ name: '000003.sst', size: 100 }, { name: 'x.ldb', size: 100 }, { name: '000004.ldb.tmp', size: 100 }]).map((f) => f.name), ['000003.sst']);
  });
});

describe('planCorruption', () => {
  const files: readonly LevelFile[] = [
    { name: '000005.ldb', kind: 'table', number: 5, size: 4000 },
    { name: '000009.ldb', kind: 'table', number: 9, size: 2000 },
    { name: '000011.log', kind: 'wal', number: 11, size: 3000 },
    { name: '000012.log', kind: 'wal', number: 12, size: 10 },
  ];

  test('the same seed and files give the same plan', () => {
    for (let seed = 0; seed < 20; seed++) assert.deepEqual(planCorruption(files, new Random(seed)), planCorruption(files, new Random(seed)));
  });

  test('every mode is drawn; flips and cuts fall in the middle of a big enough file of the right kind', () => {
    const modes = new Set<string>();
    for (let seed = 0; seed < 200; seed++) {
      const plan = planCorruption(files, new Random(seed)) as CorruptionPlan;
      modes.add(plan.mode);
      const file = files.find((f) => f.name === plan.file) as LevelFile;
      assert.ok(file.size >= corruptibleBytesMin, `${plan.file} is big enough`);
      assert.equal(plan.sizeBefore, file.size);
      const { start, end } = middleOf(file.size);
      if (plan.mode === 'truncate') {
        assert.equal(plan.file, '000011.log', 'the newest file big enough');
        assert.ok(plan.truncateTo !== null && plan.truncateTo >= start && plan.truncateTo < end);
        assert.equal(plan.flips.length, 0);
        continue;
      }
      assert.equal(file.kind, plan.mode === 'flip-table' ? 'table' : 'wal');
      assert.equal(plan.truncateTo, null);
      assert.ok(plan.flips.length >= 1 && plan.flips.length <= flipsMax);
      const offsets = plan.flips.map((flip) => flip.offset);
      assert.deepEqual(offsets, [...new Set(offsets)].sort((a, b) => a - b), 'distinct, in order');
      for (const flip of plan.flips) assert.ok(flip.offset >= start && flip.offset < end && flip.bit >= 0 && flip.bit < 8);
    }
    assert.deepEqual([...modes].sort(), ['flip-table', 'flip-wal', 'truncate']);
  });

  test('a mode whose files are missing falls back to one that is available; nothing big enough is no plan', () => {
    const tablesOnly = files.filter((f) => f.kind === 'table');
    for (let seed = 0; seed < 50; seed++) assert.notEqual(planCorruption(tablesOnly, new Random(seed))?.mode, 'flip-wal');
    assert.equal(planCorruption([{ name: '000012.log', kind: 'wal', number: 12, size: corruptibleBytesMin - 1 }], new Random(1)), null);
    assert.equal(planCorruption([], new Random(1)), null);
  });
});

describe('applyCorruption on real files', () => {
  test('flips exactly the planned bits and records each byte before and after', () => {
    writeFiles();
    const original = readFileSync(path.join(dir, '000005.ldb'));
    const plan: CorruptionPlan = { mode: 'flip-table', file: '000005.ldb', kind: 'table', sizeBefore: 4000, flips: [{ offset: 1000, bit: 0 }, { offset: 2500, bit: 7 }], truncateTo: null };
    const applied = applyCorruption(dir, plan);
    const damaged = readFileSync(path.join(dir, '000005.ldb'));
    assert.equal(damaged.length, 4000);
    const differing = [...damaged.keys()].filter((i) => damaged[i] !== original[i]);
    assert.deepEqual(differing, [1000, 2500]);
    assert.deepEqual(applied.changes, [
      { offset: 1000, before: original[1000], after: (original[1000] ?? 0) ^ 1 },
      { offset: 2500, before: original[2500], after: (original[2500] ?? 0) ^ 0x80 },
    ]);
    assert.equal(applied.sizeAfter, 4000);
  });

  test('truncates to the planned length and keeps the bytes before it', () => {
    writeFiles();
    const original = readFileSync(path.join(dir, '000011.log'));
    const applied = applyCorruption(dir, { mode: 'truncate', file: '000011.log', kind: 'wal', sizeBefore: 3000, flips: [], truncateTo: 1234 });
    assert.equal(statSync(path.join(dir, '000011.log')).size, 1234);
    assert.deepEqual(readFileSync(path.join(dir, '000011.log')), original.subarray(0, 1234));
    assert.equal(applied.sizeAfter, 1234);
  });

  test('the planned plan, applied: a seed names the damage end to end', () => {
    writeFiles();
    const plan = planCorruption(listLevelFiles(dir), new Random(42)) as CorruptionPlan;
    const before = readFileSync(path.join(dir, plan.file));
    applyCorruption(dir, plan);
    const after = readFileSync(path.join(dir, plan.file));
    if (plan.truncateTo !== null) assert.equal(after.length, plan.truncateTo);
    else assert.equal([...after.keys()].filter((i) => after[i] !== before[i]).length, plan.flips.length);
  });

  test('refuses a file whose size changed since the plan, and names that are not data files; changes nothing', () => {
    writeFiles();
    const original = readFileSync(path.join(dir, '000009.ldb'));
    assert.throws(() => applyCorruption(dir, { mode: 'flip-table', file: '000009.ldb', kind: 'table', sizeBefore: 2001, flips: [{ offset: 5, bit: 1 }], truncateTo: null }), /planned with 2001/);
    assert.throws(() => applyCorruption(dir, { mode: 'flip-table', file: '../000009.ldb', kind: 'table', sizeBefore: 2000, flips: [{ offset: 5, bit: 1 }], truncateTo: null }), /not a LevelDB data file/);
    assert.throws(() => applyCorruption(dir, { mode: 'flip-table', file: '000009.ldb', kind: 'table', sizeBefore: 2000, flips: [{ offset: 2000, bit: 1 }], truncateTo: null }), /outside/);
    assert.deepEqual(readFileSync(path.join(dir, '000009.ldb')), original);
  });
});

/** probe builds a successful probe with the given keyspace (key -> checksum). */
function probe(fields: Partial<StorageProbe>, keyspace: Record<string, number> = { 'ins!a': 1, 'svc!s': 2 }): StorageProbe {
  return { error: null, code: null, snapshotIndex: 0, lastIndex: 100, applied: 99, term: 3, vote: 'm1', commit: 99, keyspace: new Map(Object.entries(keyspace)), ...fields };
}

const ready: StartObservation = { ready: true, exitCode: null, signal: null, lastLines: [] };
const corruptLine = 'cairn server: CAIRN_STORAGE_CORRUPT: storage corruption detected: /d/raft: log entry 16: missing (hole in the log: the next stored entry is 46)';

describe('judgeCorruption', () => {
  test('a start refused with CAIRN_STORAGE_CORRUPT is detected-refused', () => {
    assert.equal(codeOfLines(['{"level":40}', corruptLine]), 'CAIRN_STORAGE_CORRUPT');
    assert.equal(judgeCorruption({ ready: false, exitCode: 1, signal: null, lastLines: [corruptLine] }, null, 'corrupt').outcome, 'detected-refused');
  });

  test('a start refused without the code (LevelDB\'s own error, a crash) is refused-uncoded', () => {
    const judgement = judgeCorruption({ ready: false, exitCode: 1, signal: null, lastLines: ['cairn server: IO error: /d/raft/000005.ldb: Invalid argument'] }, null, null);
    assert.equal(judgement.outcome, 'refused-uncoded');
    assert.match(judgement.detail, /Invalid argument/);
    assert.equal(judgeCorruption({ ready: false, exitCode: null, signal: 'SIGSEGV', lastLines: [] }, null, null).outcome, 'refused-uncoded');
  });

  test('a start with nothing lost or changed is recovered', () => {
    assert.equal(judgeCorruption(ready, diffProbes(probe({}), probe({})), null).outcome, 'recovered');
  });

  test('a changed keyspace record under the same applied index is undetected-divergence', () => {
    const diff = diffProbes(probe({}), probe({}, { 'ins!a': 7, 'svc!s': 2 }));
    assert.deepEqual(diff.changedKeys, ['ins!a']);
    const judgement = judgeCorruption(ready, diff, null);
    assert.equal(judgement.outcome, 'undetected-divergence');
    assert.match(judgement.detail, /1 changed, 0 missing, 0 extra \(ins!a\)/);
  });

  test('keyspace differences with the applied index moved back are replayed from the log: only the lost tail counts', () => {
    const diff = diffProbes(probe({}), probe({ lastIndex: 80, applied: 79, commit: 79 }, { 'ins!a': 7 }));
    const judgement = judgeCorruption(ready, diff, null);
    assert.equal(judgement.outcome, 'undetected-loss');
    assert.match(judgement.detail, /20 log entries lost \(last index 100 -> 80\)/);
  });

  test('a rolled-back vote is undetected-loss', () => {
    const judgement = judgeCorruption(ready, diffProbes(probe({}), probe({ vote: null })), null);
    assert.equal(judgement.outcome, 'undetected-loss');
    assert.match(judgement.detail, /term 3 vote m1 -> term 3 vote none/);
  });

  test('a member that starts on files LevelStorage refuses is undetected-divergence', () => {
    assert.equal(judgeCorruption(ready, null, 'log entry 5: crc32c mismatch').outcome, 'undetected-divergence');
  });
});

describe('divergencesOf', () => {
  const read = (key: string, member: string, value: string | null, version: number | null): FinalRead => ({ key, member, value, version });

  test('members that agree do not diverge; the one that differs does', () => {
    const reads = [read('k', 'm1', 'a', 3), read('k', 'm2', 'a', 3), read('k', 'm3', 'b', 3), read('j', 'm1', null, null), read('j', 'm2', null, null)];
    assert.deepEqual(divergencesOf(reads), [{ key: 'k', member: 'm3', got: 'b@3', majority: 'a@3' }]);
  });

  test('the version counts: same value at another version diverges', () => {
    assert.equal(divergencesOf([read('k', 'm1', 'a', 3), read('k', 'm2', 'a', 3), read('k', 'm3', 'a', 4)]).length, 1);
  });

  test('a tie names every member', () => {
    assert.equal(divergencesOf([read('k', 'm1', 'a', 1), read('k', 'm2', 'b', 1)]).length, 2);
  });
});

/** nemesisInfo builds a nemesis info line. */
function nemesisInfo(f: string, value: Record<string, unknown>): RecordedEvent {
  return { process: 'nemesis', type: 'info', f, value, time: 0 };
}

/** finalRead builds the ok completion of a final read. */
function finalRead(key: string, node: string, value: string | null, version: number): RecordedEvent {
  return { process: 7, type: 'ok', f: 'read', value: { key, node, via: 'grpc', final: true, value, version }, time: 1 };
}

const members = ['m1', 'm2', 'm3'];
const agreeing: readonly RecordedEvent[] = members.map((m) => finalRead('k', m, 'v', 2));

describe('checkCorruption', () => {
  test('refusals and recoveries with agreeing final reads are valid; counts per outcome', () => {
    const events = [
      nemesisInfo('start-corrupt', { id: 0, member: 'm1', plan: { mode: 'flip-wal', file: '000003.log' }, outcome: 'detected-refused', detail: 'exited 1' }),
      nemesisInfo('start-corrupt', { id: 1, member: 'm2', plan: { mode: 'truncate', file: '000003.log' }, outcome: 'undetected-loss', detail: '84 log entries lost' }),
      nemesisInfo('start-corrupt', { id: 2, member: 'm3', plan: { mode: 'flip-table', file: '000005.ldb' }, outcome: 'recovered', detail: 'started' }),
      ...agreeing,
    ];
    const result = checkCorruption(events, members);
    assert.ok(result.valid, result.problems.join('; '));
    assert.equal(result.counts['detected-refused'], 1);
    assert.equal(result.counts['undetected-loss'], 1);
    assert.equal(result.counts.recovered, 1);
    assert.equal(result.finalKeys, 1);
  });

  test('an undetected-divergence fault makes the run invalid', () => {
    const events = [nemesisInfo('start-corrupt', { id: 0, member: 'm1', plan: { mode: 'flip-table', file: '000005.ldb' }, outcome: 'undetected-divergence', detail: 'keyspace records changed' }), ...agreeing];
    const result = checkCorruption(events, members);
    assert.equal(result.valid, false);
    assert.match(result.problems.join('; '), /corruption #0 of m1 \(flip-table 000005\.ldb\): undetected-divergence/);
  });

  test('a recovered fault of a member whose final reads diverge becomes undetected-divergence', () => {
    const events = [
      nemesisInfo('start-corrupt', { id: 0, member: 'm3', plan: { mode: 'flip-table', file: '000005.ldb' }, outcome: 'recovered', detail: 'started' }),
      finalRead('k', 'm1', 'v', 2), finalRead('k', 'm2', 'v', 2), finalRead('k', 'm3', 'w', 2),
    ];
    const result = checkCorruption(events, members);
    assert.equal(result.valid, false);
    assert.equal(result.faults[0]?.outcome, 'undetected-divergence');
    assert.equal(result.divergences.length, 1);
  });

  test('a divergence without any fault on that member is still invalid', () => {
    const result = checkCorruption([finalRead('k', 'm1', 'v', 2), finalRead('k', 'm2', 'v', 2), finalRead('k', 'm3', 'v', 3)], members);
    assert.equal(result.valid, false);
    assert.match(result.problems.join('; '), /divergence: m3 reads k as v@3, the others v@2/);
  });

  test('a later stop with a corruption error replaces the start\'s outcome (detected-later)', () => {
    const events = [
      nemesisInfo('start-corrupt', { id: 4, member: 'm2', plan: { mode: 'flip-table', file: '000007.ldb' }, outcome: 'recovered', detail: 'started' }),
      nemesisInfo('stop-corrupt', { id: 4, result: { member: 'm2', outcome: 'detected-later', detail: 'stopped by itself' } }),
      ...agreeing,
    ];
    const result = checkCorruption(events, members);
    assert.ok(result.valid);
    assert.deepEqual(result.faults.map((f) => [f.id, f.outcome, f.file]), [[4, 'detected-later', '000007.ldb']]);
  });

  test('refused-uncoded is invalid; a member never read, or no final read at all, is invalid', () => {
    const uncoded = [nemesisInfo('start-corrupt', { id: 0, member: 'm1', plan: {}, outcome: 'refused-uncoded', detail: 'IO error' }), ...agreeing];
    assert.equal(checkCorruption(uncoded, members).valid, false);
    assert.match(checkCorruption(agreeing.slice(0, 2), members).problems.join('; '), /no final read succeeded on m3/);
    assert.match(checkCorruption([], members).problems.join('; '), /no final read/);
  });
});
