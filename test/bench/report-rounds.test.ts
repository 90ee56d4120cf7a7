// Goal: the bench's report over several rounds (--rounds) folds each cell into the median of its rounds and judges
// each target by the median of its per-round ratios, so one slow phase of the machine (which moved the notification
// ratio from ~2x to 3x in one full run of session 18) no longer decides a figure.
// Method: rows built by hand, as the runner returns them, for three rounds in which one round is an outlier; the
// folded rows, the target checks and the rendered Markdown are compared with what the medians must be. Rendering is
// a pure function of the rows; the runner itself is exercised for real by bench-smoke.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkTargetsOverRounds, median, medianRows, renderReport, type Row } from '../../bench/lib/report.ts';
import type { TargetId } from '../../bench/lib/driver.ts';

function row(round: number, workload: string, clients: number, target: TargetId, opsPerSecond: number, p99Ms: number): Row {
  return {
    workload, clients, target, member: '127.0.2.41:18848', round, status: 'ok', ops: Math.round(opsPerSecond * 5), errors: round === 2 ? 1 : 0,
    errorSamples: {}, seconds: 5, opsPerSecond, p50Ms: p99Ms / 4, p99Ms, maxMs: p99Ms * 2,
    cpu: { clientUs: 100 * round, membersUs: [10 * round, 20 * round, 30 * round], membersTotalUs: 60 * round }, exhausted: round === 3,
    bystanderCores: 0.05,
    sched: {
      clientWaitUs: 10 * round, membersWaitUs: [1 * round, 2 * round, 3 * round], membersWaitTotalUs: 6 * round, clientSlices: round, membersSlices: [round, round, round],
      clientMainWaitUs: 5 * round, membersMainWaitUs: [round, round, round], clientMainSlices: round / 2, membersMainSlices: [round / 2, round / 2, round / 2],
    },
  };
}

/** threeRounds: Cairn and etcd register at 64 clients and notify at 1 client; round 2 is a slow phase for Cairn. */
function threeRounds(): Row[] {
  return [
    row(1, 'register', 64, 'cairn-grpc', 1500, 60), row(1, 'register', 64, 'etcd-grpc', 2800, 50),
    row(1, 'notify', 1, 'cairn-grpc', 200, 13), row(1, 'notify', 1, 'etcd-grpc', 450, 6.5),
    row(2, 'register', 64, 'cairn-grpc', 900, 120), row(2, 'register', 64, 'etcd-grpc', 2700, 55),
    row(2, 'notify', 1, 'cairn-grpc', 150, 26), row(2, 'notify', 1, 'etcd-grpc', 430, 8.5),
    row(3, 'register', 64, 'cairn-grpc', 1600, 58), row(3, 'register', 64, 'etcd-grpc', 2900, 48),
    row(3, 'notify', 1, 'cairn-grpc', 210, 12), row(3, 'notify', 1, 'etcd-grpc', 470, 6),
  ];
}

test('median of odd and even counts', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(median([7]), 7);
});

test('each cell is folded into the median of its rounds, in the order cells first appeared', () => {
  const folded = medianRows(threeRounds());
  assert.deepEqual(folded.map((r) => `${r.workload}/${r.clients}/${r.target}`),
    ['register/64/cairn-grpc', 'register/64/etcd-grpc', 'notify/1/cairn-grpc', 'notify/1/etcd-grpc']);
  const cairn = folded[0]!;
  assert.equal(cairn.opsPerSecond, 1500);
  assert.equal(cairn.p99Ms, 60);
  assert.equal(cairn.errors, 1, 'errors summed over the rounds');
  assert.equal(cairn.ops, 7500 + 4500 + 8000, 'operations summed');
  assert.equal(cairn.exhausted, true, 'exhausted when any round was');
  assert.deepEqual(cairn.cpu.membersUs, [20, 40, 60], 'CPU per op of each member: the median');
  assert.equal(cairn.cpu.clientUs, 200);
  assert.deepEqual(cairn.sched, {
    clientWaitUs: 20, membersWaitUs: [2, 4, 6], membersWaitTotalUs: 12, clientSlices: 2, membersSlices: [2, 2, 2],
    clientMainWaitUs: 10, membersMainWaitUs: [2, 2, 2], clientMainSlices: 1, membersMainSlices: [1, 1, 1],
  }, 'the run-queue figures: the median of each over the rounds');
  // One round: the rows as they are.
  const single = threeRounds().filter((r) => r.round === 1);
  assert.deepEqual(medianRows(single), single);
});

test('a target is judged by the median of its per-round ratios, each taken within one round', () => {
  const checks = checkTargetsOverRounds(threeRounds());
  const register = checks.find((c) => c.target.startsWith('register throughput at 64 clients >= 1.0x etcd'))!;
  // Per round: 1500/2800 = 0.536, 900/2700 = 0.333, 1600/2900 = 0.552: median 0.536.
  assert.deepEqual(register.ratios?.map((r) => r.toFixed(3)), ['0.536', '0.333', '0.552']);
  assert.equal(register.ratio, 0.536);
  assert.equal(register.met, false);
  assert.match(register.detail, /^median of 3 rounds \(0\.54x, 0\.33x, 0\.55x; range 0\.33-0\.55x\); round nearest the median: 64 clients: 1500 vs 2800 ops\/s$/);
  const notify = checks.find((c) => c.target.startsWith('change-to-notification'))!;
  // p99 ratios 2.0, 3.06, 2.0: the slow round does not decide it.
  assert.equal(notify.ratio, 2);
  assert.equal(notify.met, false);
  // Targets nothing measured stay "not measured".
  const zk = checks.find((c) => c.target.includes('ZooKeeper create'))!;
  assert.equal(zk.ratio, null);
  assert.equal(zk.met, null);
  // A met target: the bound and its direction travel with the check.
  const met = checkTargetsOverRounds([1, 2, 3].flatMap((round) => [row(round, 'list', 64, 'cairn-grpc', 1400 + round, 80), row(round, 'list', 64, 'etcd-grpc', 1200, 100)]));
  const list = met.find((c) => c.target.startsWith('linearizable list'))!;
  assert.equal(list.met, true);
  assert.equal(list.atLeast, true);
  assert.equal(list.bound, 1.0);
});

test('the rendered report shows one row per cell and the rounds it folds', () => {
  const { markdown, targets } = renderReport(threeRounds(), [], { date: '2026-11-23T10:00:00Z', machine: { hostname: 'vm', cpus: 2 }, versions: {}, options: {} });
  assert.match(markdown, /^Rounds: 3\. Each row is the median of its cell's 3 rounds/m);
  assert.equal(markdown.match(/^\| register \| 64 \| Cairn gRPC \|/gm)?.length, 1);
  assert.match(markdown, /^\| register \| 64 \| etcd gRPC \| 2800 \(pool exhausted\) \| 12\.50 \| 50\.00 \| 1 \| 200 \| 20 \/ 40 \/ 60 \(Σ 120\) \| 20, Σ 12 \| 0\.54x \| 1\.20x \|$/m);
  assert.match(markdown, /^Run-queue wait per op: /m);
  // Rows of results written before the run-queue figures existed render a dash there, not a made-up number.
  const older = renderReport(threeRounds().map(({ sched: _sched, ...rest }) => rest), [], { date: '2026-11-23T10:00:00Z', machine: {}, versions: {}, options: {} });
  assert.match(older.markdown, /^\| register \| 64 \| etcd gRPC \| 2800 \(pool exhausted\) \| .* \(Σ 120\) \| - \| 0\.54x \| 1\.20x \|$/m);
  assert.match(markdown, /^\| change-to-notification p99 <= etcd watch p99 \(1 client\) \| 2\.00x \| NO \| median of 3 rounds/m);
  assert.equal(targets.length, 6);
});

test('a cell measured while the other systems were busy is marked disturbed, in the rows and in its target', () => {
  const rows = threeRounds().map((r) => (r.round === 2 && r.workload === 'notify' && r.target === 'cairn-grpc' ? { ...r, bystanderCores: 1.71 } : r));
  const { markdown, targets } = renderReport(rows.filter((r) => r.round === 2), [], { date: '2026-11-24T09:25:00Z', machine: { hostname: 'vm', cpus: 2 }, versions: {}, options: {} });
  assert.match(markdown, /^Disturbed cells \(the systems not under test used more than 0\.3 of a core .*\): Cairn gRPC notify at 1: the other systems used 1\.71 cores\.$/m);
  const notify = targets.find((c) => c.target.startsWith('change-to-notification'))!;
  assert.equal(notify.disturbed, true);
  assert.match(notify.detail, /; DISTURBED \(Cairn gRPC notify at 1: the other systems used 1\.71 cores\)$/);
  // The register target's cells were quiet (0.05 cores): nothing said.
  const register = targets.find((c) => c.target.startsWith('register throughput at 64 clients >= 1.0x etcd'))!;
  assert.equal(register.disturbed, undefined);
  assert.doesNotMatch(register.detail, /DISTURBED/);
  // Over rounds, the round that was disturbed is named even when the median's round was quiet.
  const over = checkTargetsOverRounds(rows).find((c) => c.target.startsWith('change-to-notification'))!;
  assert.equal(over.disturbed, true);
  assert.match(over.detail, /; DISTURBED in round 2 \(the other systems were busy\)$/);
  // Quiet runs print no such line; rows of older runs (no bystanderCores) count as quiet.
  assert.doesNotMatch(renderReport(threeRounds(), [], { date: 'd', machine: {}, versions: {}, options: {} }).markdown, /Disturbed cells/);
  const older = threeRounds().map((r) => ({ ...r, bystanderCores: undefined as unknown as number }));
  assert.ok(Number.isNaN(medianRows(older)[0]!.bystanderCores));
  assert.doesNotMatch(renderReport(older, [], { date: 'd', machine: {}, versions: {}, options: {} }).markdown, /Disturbed cells/);
});

test('a cell that started before the machine was quiet is marked disturbed too', () => {
  const rows = threeRounds().filter((r) => r.round === 1).map((r) => (r.workload === 'register' && r.target === 'etcd-grpc' ? { ...r, settle: { waitedMs: 10_012, quiet: false, cores: 0.61 } } : { ...r, settle: { waitedMs: 401, quiet: true, cores: 0.04 } }));
  const { markdown, targets } = renderReport(rows, [], { date: 'd', machine: {}, versions: {}, options: {} });
  assert.match(markdown, /^Disturbed cells .*: etcd gRPC register at 64: it started after 10\.0 s without a quiet machine \(0\.61 cores\)\.$/m);
  const register = targets.find((c) => c.target.startsWith('register throughput at 64 clients >= 1.0x etcd'))!;
  assert.equal(register.disturbed, true);
  // Folded over rounds: the longest wait, quiet only when every round was.
  const folded = medianRows([...rows, ...rows.map((r) => ({ ...r, round: 2, settle: { waitedMs: 800, quiet: true, cores: 0.1 } }))]);
  assert.deepEqual(folded.find((r) => r.workload === 'register' && r.target === 'etcd-grpc')!.settle, { waitedMs: 10_012, quiet: false, cores: 0.61 });
  assert.deepEqual(folded.find((r) => r.workload === 'notify' && r.target === 'cairn-grpc')!.settle, { waitedMs: 800, quiet: true, cores: 0.1 });
});
