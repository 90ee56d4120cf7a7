// Goal: `cairn watch` does what `cairn watch --help`, DESIGN.md "Command line" and docs/grpc.md "Subscribe" say:
// bad input is a usage error (exit 2) before any network call; against a real member it prints the current snapshot,
// then one per change with growing revisions, stops after --count snapshots (exit 0) or on Ctrl-C (SIGINT: exit 0);
// a broken stream (the member killed and restarted) is resumed from the last (revision, epoch) with a line on stderr
// per reconnect; an unreachable member exits 1 after the bounded retries (200 ms doubling); a refusal exits 1 at once.
// Method: one real member (`bin/cairn server`, test/support/cluster.ts) on this file's own loopback address
// 127.0.1.190 (HTTP 18848, gRPC 19848), persistent instances at 127.0.1.191-193 registered through the HTTP API in a
// cluster whose health checker is NONE (so no probe changes them); `bin/cairn watch` spawned as a real process for
// the exit codes and SIGINT, runClient in-process (captured output, an AbortSignal as Ctrl-C) for the rest; a bare
// TCP listener on 127.0.1.190 counting connections proves usage errors never touch the network.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer as createTcpServer, type Server as TcpServer } from 'node:net';
import { tmpdir } from 'node:os';
import { Metadata, status as grpcStatus, type ServiceError } from '@grpc/grpc-js';
import { GrpcCallError } from '../../src/api/grpc/client.ts';
import { parseClientArgs, runClient } from '../../src/cli/client.ts';
import { backoffMs, reconnectable } from '../../src/cli/watch.ts';
import { cairnBin, httpRequest, startCluster, waitFor, type Member } from '../support/cluster.ts';

const host = '127.0.1.190';
const httpPort = 18848;
const grpcAddr = `${host}:${httpPort + 1000}`;

let tcpListener: TcpServer;
let tcpAddress = '';
let tcpConnections = 0;
let closedAddress = '';
const children = new Set<ChildProcess>();

function listen(server: TcpServer): Promise<number> {
  return new Promise((resolve) => {
    server.listen(0, host, () => {
      const address = server.address();
      assert.ok(address !== null && typeof address === 'object');
      resolve(address.port);
    });
  });
}

before(async () => {
  tcpListener = createTcpServer((socket) => {
    tcpConnections += 1;
    socket.destroy();
  });
  tcpAddress = `${host}:${await listen(tcpListener)}`;
  const probe = createTcpServer();
  closedAddress = `${host}:${await listen(probe)}`;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
});

after(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
  await new Promise<void>((resolve) => tcpListener.close(() => resolve()));
});

/** Watcher is a spawned `cairn watch` process: its output so far and its exit. */
interface Watcher {
  readonly child: ChildProcess;
  readonly stdout: () => string;
  readonly stderr: () => string;
  readonly exit: Promise<number | null>;
}

/** spawnCairn runs bin/cairn with `args` from a foreign working directory, without any CAIRN_ variable. */
function spawnCairn(args: readonly string[]): Watcher {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) if (value !== undefined && !key.startsWith('CAIRN_')) env[key] = value;
  const child = spawn(cairnBin, [...args], { cwd: tmpdir(), env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const exit = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return { child, stdout: () => stdout, stderr: () => stderr, exit };
}

/** InProcess is a watch run through runClient with captured output, stopped by aborting `controller`. */
interface InProcess {
  readonly out: { stdout: string; stderr: string };
  readonly controller: AbortController;
  readonly code: Promise<number>;
}

function watchInProcess(args: readonly string[], env: Record<string, string> = {}): InProcess {
  const out = { stdout: '', stderr: '' };
  const controller = new AbortController();
  const code = runClient('watch', args, env, { stdout: (text) => (out.stdout += text), stderr: (text) => (out.stderr += text) }, { signal: controller.signal });
  return { out, controller, code };
}

interface JsonSnapshot {
  readonly time: string;
  readonly revision: number;
  readonly epoch: string;
  readonly service: string;
  readonly exists: boolean;
  readonly serviceRevision: number;
  readonly instances: ReadonlyArray<{ readonly ip: string; readonly port: number; readonly cluster: string; readonly healthy: boolean }>;
}

function snapshotsOf(stdout: string): JsonSnapshot[] {
  return stdout.split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as JsonSnapshot);
}

function ipsOf(snapshot: JsonSnapshot | undefined): string[] {
  return (snapshot?.instances ?? []).map((instance) => `${instance.ip}:${instance.port}`);
}

async function ok(member: Member, method: string, path: string): Promise<void> {
  const answer = await httpRequest(member.addr, method, path);
  assert.equal(answer.status, 200, `${method} ${path}: ${answer.status} ${answer.text}`);
}

/** prepareService creates `service` with its DEFAULT cluster's health checker set to NONE (no probe changes it). */
async function prepareService(member: Member, service: string): Promise<void> {
  await ok(member, 'POST', `/nacos/v1/ns/service?serviceName=${service}`);
  await ok(member, 'PUT', `/nacos/v1/ns/cluster?serviceName=${service}&clusterName=DEFAULT&checkPort=80&useInstancePort4Check=true&healthChecker=${encodeURIComponent('{"type":"NONE"}')}`);
}

function registerPersistent(member: Member, service: string, ip: string): Promise<void> {
  return ok(member, 'POST', `/nacos/v1/ns/instance?serviceName=${service}&ip=${ip}&port=80&ephemeral=false`);
}

test('parsing: defaults, CAIRN_SERVER, --cluster/--clusters, --count and --retries', () => {
  assert.deepEqual(parseClientArgs('watch', ['--service', 's'], {}), {
    type: 'watch', server: { host: '127.0.0.1', port: 9848 }, target: { namespace: 'public', group: 'DEFAULT_GROUP', service: 's' },
    clusters: [], healthyOnly: false, json: false, count: undefined, retries: 10,
  });
  const parsed = parseClientArgs('watch', ['--service', 's', '--namespace', 'dev', '--group', 'g', '--clusters', 'a, b', '--healthy-only', '--json',
    '--count', '3', '--retries', '0'], { CAIRN_SERVER: `${host}:19848` });
  assert.deepEqual(parsed, {
    type: 'watch', server: { host, port: 19848 }, target: { namespace: 'dev', group: 'g', service: 's' },
    clusters: ['a', 'b'], healthyOnly: true, json: true, count: 3, retries: 0,
  });
  const list = parseClientArgs('watch', ['--service', 's', '--cluster', 'east'], {});
  assert.ok(list.type === 'watch');
  assert.deepEqual(list.clusters, ['east']);
});

test('bad usage exits 2 with a message naming the flag, and never opens a connection', async () => {
  const server = ['--server', tcpAddress];
  const cases: Array<[readonly string[], RegExp]> = [
    [[...server], /--service is required/],
    [['--service', 'bad name', ...server], /--service: /],
    [['--service', 's', '--namespace', 'no/slash', ...server], /--namespace: /],
    [['--service', 's', '--cluster', 'bad cluster', ...server], /--cluster: /],
    [['--service', 's', '--cluster', 'a', '--clusters', 'b', ...server], /give --cluster or --clusters, not both/],
    [['--service', 's', '--count', '0', ...server], /--count: '0' is not an integer in 1\.\./],
    [['--service', 's', '--count', 'many', ...server], /--count: 'many' is not an integer/],
    [['--service', 's', '--retries', '-1', ...server], /--retries/],
    [['--service', 's', '--retries', '1001', ...server], /--retries: '1001' is not an integer in 0\.\.1000/],
    [['--service', 's', '--consistency', 'local', ...server], /Unknown option '--consistency'/],
    [['--service', 's', 'extra', ...server], /positional/i],
    [['--service', 's', '--server', 'nope'], /--server: 'nope' is not HOST:PORT/],
  ];
  for (const [args, message] of cases) {
    const run = watchInProcess(args);
    assert.equal(await run.code, 2, `${args.join(' ')}: ${run.out.stderr}`);
    assert.match(run.out.stderr, message, args.join(' '));
    assert.match(run.out.stderr, /Run 'cairn watch --help' for usage\./);
  }
  const fromEnv = watchInProcess(['--service', 's'], { CAIRN_SERVER: 'bad' });
  assert.equal(await fromEnv.code, 2);
  const spawned = spawnCairn(['watch', '--count', '1', ...server]);
  assert.equal(await spawned.exit, 2, spawned.stderr());
  assert.equal(tcpConnections, 0, 'no bad command line reached the network');
});

test('help: cairn watch --help and the top-level usage list watch', async () => {
  const help = spawnCairn(['watch', '--help']);
  assert.equal(await help.exit, 0, help.stderr());
  assert.match(help.stdout(), /^Usage: cairn watch --service NAME/);
  assert.match(help.stdout(), /--count N/);
  assert.match(help.stdout(), /--retries N/);
  const top = spawnCairn(['--help']);
  assert.equal(await top.exit, 0);
  assert.match(top.stdout(), /^ {2}watch {7}follow a service/m);
  assert.doesNotMatch(top.stdout(), /Coming later/);
});

test('reconnect policy: backoff doubles from 200 ms to 5 s; transport failures and retryable Cairn codes reconnect, refusals do not', () => {
  assert.deepEqual([1, 2, 3, 4, 5, 6, 7, 10].map(backoffMs), [200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
  const failure = (code: number, cairn?: { code: string; retryable?: boolean }): GrpcCallError => {
    const metadata = new Metadata();
    if (cairn !== undefined) {
      metadata.set('cairn-error-code', cairn.code);
      if (cairn.retryable !== undefined) metadata.set('cairn-retryable', String(cairn.retryable));
    }
    const error: ServiceError = Object.assign(new Error('x'), { code, details: 'x', metadata });
    return new GrpcCallError(error);
  };
  assert.equal(reconnectable(failure(grpcStatus.UNAVAILABLE)), true, 'connection refused / dropped');
  assert.equal(reconnectable(failure(grpcStatus.INTERNAL)), true, 'RST_STREAM of a killed member');
  assert.equal(reconnectable(failure(grpcStatus.RESOURCE_EXHAUSTED, { code: 'CAIRN_SUBSCRIBER_TOO_SLOW', retryable: true })), true, 'cut off as too slow');
  assert.equal(reconnectable(failure(grpcStatus.UNAVAILABLE, { code: 'CAIRN_SHUTTING_DOWN', retryable: true })), true, 'member shutting down');
  assert.equal(reconnectable(failure(grpcStatus.RESOURCE_EXHAUSTED)), false, 'a message over the size limit would only fail again');
  assert.equal(reconnectable(failure(grpcStatus.INVALID_ARGUMENT, { code: 'CAIRN_INVALID_ARGUMENT', retryable: false })), false);
  assert.equal(reconnectable(failure(grpcStatus.PERMISSION_DENIED, { code: 'CAIRN_FORBIDDEN' })), false);
  assert.equal(reconnectable(failure(grpcStatus.UNIMPLEMENTED, { code: 'CAIRN_NOT_IMPLEMENTED', retryable: false })), false);
  assert.equal(reconnectable(new Error('not a call')), false);
});

test('an unreachable member: one stderr line per reconnect (200, 400 ms), then exit 1 after --retries', async () => {
  const started = Date.now();
  const run = spawnCairn(['watch', '--service', 's', '--retries', '2', '--server', closedAddress]);
  assert.equal(await run.exit, 1, run.stderr());
  const lines = run.stderr().trimEnd().split('\n');
  assert.equal(lines.length, 3, run.stderr());
  assert.match(lines[0] ?? '', /^cairn watch: stream broke \(UNAVAILABLE: .*\); reconnect 1\/2 to 127\.0\.1\.190:\d+ in 200 ms, resuming from the start$/);
  assert.match(lines[1] ?? '', /reconnect 2\/2 .* in 400 ms/);
  assert.match(lines[2] ?? '', /^cairn watch: giving up after 2 reconnects: 127\.0\.1\.190:\d+: UNAVAILABLE: /);
  assert.equal(run.stdout(), '');
  assert.ok(Date.now() - started >= 600, 'the backoff was waited');
  // Ctrl-C during the backoff ends the wait at once, with exit 0.
  const interrupted = spawnCairn(['watch', '--service', 's', '--server', closedAddress]);
  await waitFor(() => interrupted.stderr().includes('reconnect 3/10'), { timeoutMs: 10_000, intervalMs: 20, what: 'the third reconnect line' });
  assert.ok(interrupted.child.pid !== undefined);
  process.kill(interrupted.child.pid, 'SIGINT');
  assert.equal(await interrupted.exit, 0, interrupted.stderr());
  assert.doesNotMatch(interrupted.stderr(), /reconnect 4\/10|giving up/, 'the 800 ms backoff was cut short: no further attempt');
  const none = watchInProcess(['--service', 's', '--retries', '0', '--server', closedAddress]);
  assert.equal(await none.code, 1);
  assert.match(none.out.stderr, /^cairn watch: giving up after no reconnect allowed \(--retries 0\)/);
});

test('a real member: snapshots as they change, --count, Ctrl-C, and a resume across a member restart', { timeout: 180_000 }, async (t) => {
  const cluster = await startCluster(t, { file: 'cli-watch', hosts: [host], size: 1, httpPort });
  const { leader: member } = await cluster.waitForLeader();

  await cluster.step(t, '--count 3 --json: the current snapshot, then one per registration, revisions growing; exit 0', async () => {
    await prepareService(member, 'web');
    const run = spawnCairn(['watch', '--service', 'web', '--count', '3', '--json', '--server', grpcAddr]);
    await waitFor(() => snapshotsOf(run.stdout()).length >= 1, { timeoutMs: 15_000, intervalMs: 20, what: `the first snapshot; stderr: ${run.stderr()}` });
    await registerPersistent(member, 'web', '127.0.1.191');
    await waitFor(() => snapshotsOf(run.stdout()).length >= 2, { timeoutMs: 5000, intervalMs: 20, what: 'the snapshot of the first registration' });
    await registerPersistent(member, 'web', '127.0.1.192');
    assert.equal(await run.exit, 0, run.stderr());
    assert.equal(run.stderr(), '');
    const snapshots = snapshotsOf(run.stdout());
    assert.equal(snapshots.length, 3, run.stdout());
    assert.deepEqual(snapshots.map(ipsOf), [[], ['127.0.1.191:80'], ['127.0.1.191:80', '127.0.1.192:80']]);
    assert.ok(snapshots.every((snapshot) => snapshot.exists && snapshot.service === 'public/DEFAULT_GROUP@@web'));
    const revisions = snapshots.map((snapshot) => snapshot.revision);
    assert.ok(revisions[0]! < revisions[1]! && revisions[1]! < revisions[2]!, `revisions grow: ${revisions.join(', ')}`);
    assert.ok(snapshots[1]!.serviceRevision < snapshots[2]!.serviceRevision, 'the service revision (log index) grows too');
    assert.equal(new Set(snapshots.map((snapshot) => snapshot.epoch)).size, 1);
    assert.ok(snapshots.every((snapshot) => !Number.isNaN(Date.parse(snapshot.time))));
  });

  await cluster.step(t, 'the text rendering is `cairn list`\'s table under a header line; SIGINT cancels and exits 0', async () => {
    const run = spawnCairn(['watch', '--service', 'web', '--server', grpcAddr]);
    await waitFor(() => run.stdout().includes(' instances\n'), { timeoutMs: 15_000, intervalMs: 20, what: `the first snapshot; stderr: ${run.stderr()}` });
    const lines = run.stdout().trimEnd().split('\n');
    assert.match(lines[0] ?? '', /^--- \d{4}-\d\d-\d\dT[\d:.]+Z {2}revision \d+ {2}epoch 127\.0\.1\.190:18848\/\S+$/);
    assert.match(lines[1] ?? '', /^public\/DEFAULT_GROUP@@web {2}revision \d+$/);
    assert.match(lines[2] ?? '', /^CLUSTER +IP +PORT +WEIGHT +HEALTHY +ENABLED +EPHEMERAL +METADATA$/);
    assert.match(lines[3] ?? '', /^DEFAULT +127\.0\.1\.191 +80 +1 +true +true +false$/);
    assert.match(lines[4] ?? '', /^DEFAULT +127\.0\.1\.192 +80 +1 +true +true +false$/);
    assert.equal(lines[5], '2 instances');
    assert.ok(run.child.pid !== undefined);
    process.kill(run.child.pid, 'SIGINT');
    assert.equal(await run.exit, 0, run.stderr());
    assert.equal(run.stderr(), '');
  });

  await cluster.step(t, 'a broken stream (member killed, then restarted) is resumed with a greater revision; an abort exits 0', async () => {
    const run = watchInProcess(['--service', 'web', '--json', '--server', grpcAddr]);
    await waitFor(() => snapshotsOf(run.out.stdout).length >= 1, { timeoutMs: 15_000, intervalMs: 20, what: `the first snapshot; stderr: ${run.out.stderr}` });
    await member.kill9();
    await waitFor(() => run.out.stderr.includes('reconnect 1/10'), { timeoutMs: 10_000, intervalMs: 20, what: 'a reconnect line' });
    await member.restart();
    await registerPersistent(member, 'web', '127.0.1.193');
    await waitFor(() => ipsOf(snapshotsOf(run.out.stdout).at(-1)).includes('127.0.1.193:80'), { timeoutMs: 30_000, intervalMs: 50, what: `the snapshot after the restart; stderr: ${run.out.stderr}` });
    run.controller.abort();
    assert.equal(await run.code, 0, run.out.stderr);
    const snapshots = snapshotsOf(run.out.stdout);
    const [first] = snapshots;
    assert.ok(first !== undefined);
    assert.deepEqual(ipsOf(first), ['127.0.1.191:80', '127.0.1.192:80']);
    for (let index = 1; index < snapshots.length; index++) {
      assert.ok(snapshots[index]!.revision > snapshots[index - 1]!.revision, `revisions grow across the resume: ${snapshots.map((s) => s.revision).join(', ')}`);
    }
    assert.notEqual(snapshots.at(-1)!.epoch, first.epoch, 'the restarted member is another epoch');
    const reconnects = run.out.stderr.trimEnd().split('\n');
    assert.ok(reconnects.length >= 1 && reconnects.every((line) => /^cairn watch: stream broke \(.*\); reconnect \d+\/10 to 127\.0\.1\.190:19848 in \d+ ms, resuming after revision \d+ \(epoch \S+\)$/.test(line)), run.out.stderr);
    assert.match(reconnects[0] ?? '', new RegExp(`resuming after revision ${first.revision} `));
  });
});
