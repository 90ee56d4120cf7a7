// Goal: keep bench/ from rotting. The harness runs for real against Cairn alone (a 3-member cluster on
// 127.0.1.181-183, the smoke test's addresses) for a few seconds: register and list through both Cairn targets, in
// two rounds (--rounds: every cell measured twice, the table showing each cell's median).
// Method: spawn `bench/main.ts --vs none ...` as `npm run bench` would, with a temporary results directory; then
// assert the exit code, that operations completed without errors, the shape of the JSON it wrote, the Markdown table
// it printed, that its check after every cell found the cluster serving, and that every member process it started
// is gone and its ports are closed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { processAlive } from '../support/cluster.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const hosts = ['127.0.1.181', '127.0.1.182', '127.0.1.183'];
const port = 18848;
/** smokeSnapshotEntries: the members (which inherit the bench's environment) compact every ~200 entries, so the register cells see compactions. */
const smokeSnapshotEntries = 200;

function refused(host: string, portNumber: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port: portNumber });
    socket.setTimeout(2000, () => socket.destroy());
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
    socket.once('close', () => resolve(true));
  });
}

test('the bench harness measures Cairn alone, writes its JSON and stops its members', { timeout: 180_000 }, async () => {
  const resultsDir = mkdtempSync(path.join(tmpdir(), 'cairn-bench-smoke-'));
  try {
    const run = spawnSync(process.execPath, [
      '--import', 'tsx', path.join(root, 'bench', 'main.ts'),
      '--quick', '--vs', 'none', '--workload', 'register,list', '--clients', '1,4', '--duration', '1.5', '--tail-duration', '2.5', '--rounds', '2',
      '--cairn-hosts', hosts.join(','), '--cairn-port', String(port), '--results-dir', resultsDir,
    ], { cwd: root, encoding: 'utf8', timeout: 170_000, env: { ...process.env, CAIRN_SNAPSHOT_ENTRIES: String(smokeSnapshotEntries) } });
    assert.equal(run.status, 0, `bench exited ${String(run.status)}\nstdout:\n${run.stdout}\nstderr:\n${run.stderr}`);

    const files = readdirSync(resultsDir).filter((name) => name.endsWith('.json'));
    assert.equal(files.length, 1, `one results file, got ${files.join(', ')}`);
    const report = JSON.parse(readFileSync(path.join(resultsDir, files[0] ?? ''), 'utf8')) as {
      schema: string; error: string | null; processesLeftRunning: number; machine: { cpus: number }; notes: string[];
      options: { workloads: string[]; clients: number[]; quick: boolean; tailDurationSeconds: number; rounds: number };
      results: Array<{ workload: string; clients: number; target: string; round: number; status: string; ops: number; seconds: number; errors: number; opsPerSecond: number; p50Ms: number; p99Ms: number; cpu: { clientUs: number; membersUs: number[] };
        sched: { clientWaitUs: number; membersWaitUs: number[]; membersWaitTotalUs: number; clientSlices: number; membersSlices: number[];
          clientMainSlices: number; membersMainSlices: number[]; membersMainWaitUs: number[] }; bystanderCores: number | null;
        settle: { waitedMs: number; quiet: boolean; cores: number }; snapshots: { compacted: number; imagesEncoded: number; installed: number } | null }>;
      targets: Array<{ target: string; met: boolean | null }>;
      pids: Array<{ system: string; pid: number }>;
    };
    assert.equal(report.schema, 'cairn-bench/1');
    assert.equal(report.error, null);
    assert.equal(report.processesLeftRunning, 0);
    assert.ok(report.machine.cpus >= 1);
    assert.equal(report.options.quick, true);
    assert.deepEqual(report.options.workloads, ['register', 'list']);
    assert.deepEqual(report.options.clients, [1, 4]);
    assert.equal(report.options.tailDurationSeconds, 2.5);
    assert.equal(report.options.rounds, 2);
    assert.ok(Array.isArray(report.targets) && report.targets.length > 0, 'target checks are reported');

    const cellNames = [
      'list/1/cairn-grpc', 'list/1/cairn-http', 'list/4/cairn-grpc', 'list/4/cairn-http',
      'register/1/cairn-grpc', 'register/1/cairn-http', 'register/4/cairn-grpc', 'register/4/cairn-http',
    ];
    for (const round of [1, 2]) {
      const cells = report.results.filter((row) => row.round === round).map((row) => `${row.workload}/${row.clients}/${row.target}`).sort();
      assert.deepEqual(cells, cellNames, `round ${round}: every cell once`);
    }
    assert.equal(report.results.length, 2 * cellNames.length, 'two rounds, nothing else');
    assert.match(run.stdout, /Rounds: 2\. Each row is the median of its cell's 2 rounds/);
    // The table has one row per cell (the median), not one per round.
    assert.equal(run.stdout.match(/^\| register \| 4 \| Cairn gRPC \|/gm)?.length, 1, 'one table row per cell');
    // Only the 1-client cells of the workloads whose 1-client p99 is a target measure --tail-duration.
    for (const row of report.results) {
      const tail = row.clients === 1 && row.workload === 'register';
      const expected = tail ? 2.5 : 1.5;
      assert.ok(Math.abs(row.seconds - expected) < 0.5, `${row.workload} at ${row.clients} ${row.target}: measured ${row.seconds} s, expected ~${expected} s`);
    }
    for (const row of report.results) {
      const name = `${row.workload} ${row.target}`;
      assert.equal(row.status, 'ok', `${name} measured`);
      assert.ok(row.ops > 0, `${name}: operations completed`);
      assert.equal(row.errors, 0, `${name}: no errors`);
      assert.ok(row.opsPerSecond > 0 && row.p50Ms > 0 && row.p99Ms >= row.p50Ms, `${name}: rate and percentiles`);
      assert.ok(row.cpu.clientUs > 0, `${name}: client CPU per op`);
      assert.equal(row.cpu.membersUs.length, 3, `${name}: CPU per op of each member`);
      // The scheduler's figures: every process ran during the window (slices > 0), and waits are counted, not made up.
      assert.ok(row.sched.clientSlices > 0, `${name}: the client was put on a CPU (${JSON.stringify(row.sched)})`);
      assert.equal(row.sched.membersSlices.length, 3, `${name}: slices of each member`);
      for (const [i, slices] of row.sched.membersSlices.entries()) {
        assert.ok(slices > 0, `${name}: each member ran (${JSON.stringify(row.sched)})`);
        // Every member's event loop woke in the window (requests, replication, heartbeats every tick).
        const main = row.sched.membersMainSlices[i]!;
        assert.ok(main > 0 && main <= slices && row.sched.membersMainWaitUs[i]! >= 0, `${name}: member ${i}'s main thread (${JSON.stringify(row.sched)})`);
      }
      assert.ok(row.sched.clientMainSlices > 0 && row.sched.clientMainSlices <= row.sched.clientSlices, `${name}: the client's main thread`);
      for (const wait of [row.sched.clientWaitUs, ...row.sched.membersWaitUs]) assert.ok(Number.isFinite(wait) && wait >= 0, `${name}: run-queue wait ${wait}`);
      assert.equal(row.bystanderCores, null, `${name}: no other system ran, so no bystander CPU (null, not 0)`);
      // Each cell waited for its members to be quiet (one 400 ms window at least) and found them so.
      assert.equal(row.settle.quiet, true, `${name}: started on a quiet machine (${JSON.stringify(row.settle)})`);
      assert.ok(row.settle.waitedMs >= 390 && row.settle.cores <= 0.25, `${name}: settle ${JSON.stringify(row.settle)}`);
    }
    // Every Cairn cell read the members' snapshot counters before and after it; the register cells, which write past
    // the members' interval, saw compactions (images only if a follower fell behind the trail: counted, not required).
    for (const row of report.results) {
      const name = `round ${row.round} ${row.workload} ${row.clients} ${row.target}`;
      assert.ok(row.snapshots !== null && row.snapshots !== undefined, `${name}: the snapshot counters were read`);
      for (const count of [row.snapshots.compacted, row.snapshots.imagesEncoded, row.snapshots.installed]) assert.ok(Number.isInteger(count) && count >= 0, `${name}: ${JSON.stringify(row.snapshots)}`);
    }
    const compactedWhileRegistering = report.results.filter((row) => row.workload === 'register').reduce((sum, row) => sum + (row.snapshots?.compacted ?? 0), 0);
    assert.ok(compactedWhileRegistering > 0, `the register cells saw compactions (CAIRN_SNAPSHOT_ENTRIES=${smokeSnapshotEntries}): ${compactedWhileRegistering}`);
    // After every cell the harness asked the cluster whether it serves (its unhealthy() check on the real members):
    // a healthy cluster was neither waited for nor stopped.
    assert.deepEqual(report.notes.filter((note) => /did not serve|stopped after/.test(note)), []);
    assert.doesNotMatch(run.stderr, /did not serve|stopped after/);
    assert.match(run.stdout, /\| register \| 4 \| Cairn gRPC \| \d+/);
    assert.match(run.stdout, /\| \d+, Σ \d+ \|/, 'the table has the run-queue wait column');
    assert.match(run.stdout, /\| list \| 4 \| Cairn HTTP \(Nacos v1\) \| \d+/);

    assert.equal(report.pids.length, 3);
    for (const { pid } of report.pids) assert.equal(processAlive(pid), false, `member pid ${pid} stopped`);
    for (const host of hosts) {
      for (const p of [port, port + 1000, port - 1000]) assert.ok(await refused(host, p), `${host}:${p} closed`);
    }
  } finally {
    rmSync(resultsDir, { recursive: true, force: true });
  }
});

test('the bench command line answers --help and refuses a bad option with its usage, starting nothing', { timeout: 60_000 }, () => {
  const bench = (...args: string[]): ReturnType<typeof spawnSync> =>
    spawnSync(process.execPath, ['--import', 'tsx', path.join(root, 'bench', 'main.ts'), ...args], { cwd: root, encoding: 'utf8', timeout: 50_000 });
  const help = bench('--help');
  assert.equal(help.status, 0, String(help.stderr));
  assert.match(String(help.stdout), /^usage: npm run bench -- \[options\]/);
  assert.match(String(help.stdout), /--workload W\[,W\.\.\.\] +register, deregister, list, list-local, get, beat, notify, memory/);
  for (const [args, message] of [
    [['--bogus'], /bench: Unknown option '--bogus'/],
    [['--clients', '0'], /bench: --clients: 0 is not an integer in 1\.\.1024/],
    [['--vs', 'consul'], /bench: --vs: unknown system 'consul'/],
    [['--workload', 'scan'], /bench: --workload: unknown 'scan'/],
    [['--rounds', '0'], /bench: --rounds: an integer in 1\.\.20/],
    [['--via', 'nowhere'], /bench: --via: unknown 'nowhere' \(leader, follower, spread\)/],
  ] as const) {
    const run = bench(...args);
    assert.equal(run.status, 2, `${args.join(' ')}: exit 2, got ${String(run.status)}: ${String(run.stderr)}`);
    assert.match(String(run.stderr), message);
    assert.match(String(run.stderr), /usage: npm run bench/);
    assert.doesNotMatch(String(run.stderr), /\n\s+at /, `${args.join(' ')}: no stack trace`);
    assert.equal(String(run.stdout), '', `${args.join(' ')}: nothing started, nothing printed`);
  }
});
