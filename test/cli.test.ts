// Goal: `cairn server` accepts exactly the flags DESIGN.md specifies, derives the ports as Nacos does, reads the
// environment fallbacks, and refuses bad input with exit 2 and a message naming the flag (or the environment
// variable, with CAIRN_INVALID_ARGUMENT, when the value came from one; a boolean variable takes only
// 1/true/yes/on and 0/false/no/off); other commands answer with usage (2) for unknown commands.
// Method: parseServerArgs is called with explicit argument lists, environments and working directories (no
// process state), checking the config or the UsageError text; `run` is called with captured output for exit codes;
// and bin/cairn is run once as a real process from another working directory to check the wrapper resolves tsx.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  UsageError,
  parseHostPort,
  parseServerArgs,
  run,
  type Environment,
  type ServerConfig,
} from '../src/cli/main.ts';

const cwd = '/srv/cairn';

function config(args: readonly string[], env: Environment = {}): ServerConfig {
  const parsed = parseServerArgs(args, env, cwd);
  assert.equal(parsed.help, false);
  if (parsed.help) throw new Error('unreachable');
  return parsed.config;
}

function usageError(args: readonly string[], env: Environment = {}): string {
  try {
    parseServerArgs(args, env, cwd);
  } catch (error) {
    assert.ok(error instanceof UsageError, String(error));
    return error.message;
  }
  assert.fail(`expected a UsageError for ${args.join(' ')}`);
}

/** capture runs a command that answers synchronously (everything but a valid `server`, which runs a member). */
function capture(argv: readonly string[], env: Environment = {}): { code: number; stdout: string; stderr: string } {
  let stdout = '';
  let stderr = '';
  const code = run(argv, env, { stdout: (text) => (stdout += text), stderr: (text) => (stderr += text) });
  assert.equal(typeof code, 'number', `${argv.join(' ')} answered asynchronously`);
  return { code: code as number, stdout, stderr };
}

test('defaults: a standalone member on 127.0.0.1:8848 with ./data and derived ports', () => {
  assert.deepEqual(config([]), {
    addr: '127.0.0.1:8848',
    host: '127.0.0.1',
    httpPort: 8848,
    grpcPort: 9848,
    peerPort: 7848,
    members: ['127.0.0.1:8848'],
    standalone: true,
    join: false,
    snapshotEntries: 10_000,
    snapshotCatchUpEntries: null,
    checkpointEntries: 100_000,
    unsafeLocalReads: false,
    unsafeNoFsync: false,
    unsafeNoRequestDedup: false,
    unsafePeerProtocolVersion: null,
    unsafeDistroProtocolVersion: null,
    dataDir: '/srv/cairn/data',
    logLevel: 'info',
  });
});

test('the TESTING ONLY flags are off by default, each sets only its own switch, and none reads the environment', () => {
  const unsafe = (c: ServerConfig): boolean[] => [c.unsafeLocalReads, c.unsafeNoFsync, c.unsafeNoRequestDedup];
  assert.deepEqual(unsafe(config(['--unsafe-local-reads'])), [true, false, false]);
  assert.deepEqual(unsafe(config(['--unsafe-no-fsync'])), [false, true, false]);
  assert.deepEqual(unsafe(config(['--unsafe-no-request-dedup'])), [false, false, true]);
  assert.deepEqual(unsafe(config([], { CAIRN_UNSAFE_NO_REQUEST_DEDUP: '1' })), [false, false, false]);
  assert.match(usageError(['--unsafe-no-request-dedup=yes']), /unsafe-no-request-dedup/);
  // The peer protocol version of an upgrade rehearsal: a positive integer, flag only.
  assert.equal(config(['--unsafe-peer-protocol-version', '2']).unsafePeerProtocolVersion, 2);
  assert.equal(config([], { CAIRN_UNSAFE_PEER_PROTOCOL_VERSION: '2' }).unsafePeerProtocolVersion, null);
  assert.deepEqual(unsafe(config(['--unsafe-peer-protocol-version', '2'])), [false, false, false]);
  for (const bad of ['0', '-1', '1.5', 'two', '01', '1000000', '']) {
    assert.match(usageError([`--unsafe-peer-protocol-version=${bad}`]), /--unsafe-peer-protocol-version: '.*' is not an integer in 1\.\.999999/, bad);
    assert.match(usageError([`--unsafe-distro-protocol-version=${bad}`]), /--unsafe-distro-protocol-version: '.*' is not an integer in 1\.\.999999/, bad);
  }
  // The Distro protocol's version is apart from the Raft one: each flag sets its own.
  const distro = config(['--unsafe-distro-protocol-version', '1']);
  assert.deepEqual([distro.unsafeDistroProtocolVersion, distro.unsafePeerProtocolVersion], [1, null]);
  assert.deepEqual([config([]).unsafeDistroProtocolVersion, config(['--unsafe-peer-protocol-version', '2']).unsafeDistroProtocolVersion], [null, null]);
});

test('derived ports follow --addr (gRPC = port + 1000, peer = port - 1000) unless overridden', () => {
  const derived = config(['--addr', '127.0.0.11:18848']);
  assert.deepEqual([derived.httpPort, derived.grpcPort, derived.peerPort], [18848, 19848, 17848]);
  const overridden = config(['--addr', '127.0.0.11:8848', '--grpc-port', '50051', '--peer-port=50052']);
  assert.deepEqual([overridden.grpcPort, overridden.peerPort], [50051, 50052]);
});

test('flags: members, data dir and log level', () => {
  const c = config([
    '--addr', '127.0.0.12:8848',
    '--members', '127.0.0.11:8848, 127.0.0.12:8848,127.0.0.13:8848',
    '--data-dir', '/var/lib/cairn',
    '--log-level', 'debug',
  ]);
  assert.deepEqual(c.members, ['127.0.0.11:8848', '127.0.0.12:8848', '127.0.0.13:8848']);
  assert.equal(c.standalone, false);
  assert.equal(c.dataDir, '/var/lib/cairn');
  assert.equal(c.logLevel, 'debug');
  assert.equal(config(['--data-dir', 'rel/dir']).dataDir, '/srv/cairn/rel/dir');
});

test('environment fallbacks apply when a flag is absent, and flags win over them', () => {
  const env: Environment = {
    CAIRN_ADDR: '10.0.0.2:8848',
    CAIRN_MEMBERS: '10.0.0.1:8848,10.0.0.2:8848,10.0.0.3:8848',
    CAIRN_DATA_DIR: '/data/cairn',
    CAIRN_LOG_LEVEL: 'warn',
    CAIRN_GRPC_PORT: '9000',
    CAIRN_PEER_PORT: '9001',
  };
  const fromEnv = config([], env);
  assert.equal(fromEnv.addr, '10.0.0.2:8848');
  assert.deepEqual(fromEnv.members, ['10.0.0.1:8848', '10.0.0.2:8848', '10.0.0.3:8848']);
  assert.equal(fromEnv.dataDir, '/data/cairn');
  assert.equal(fromEnv.logLevel, 'warn');
  assert.deepEqual([fromEnv.grpcPort, fromEnv.peerPort], [9000, 9001]);
  const flagsWin = config(['--addr', '10.0.0.3:8848', '--log-level', 'error'], env);
  assert.equal(flagsWin.addr, '10.0.0.3:8848');
  assert.equal(flagsWin.logLevel, 'error');
  // An empty variable counts as unset.
  assert.equal(config([], { CAIRN_ADDR: '', CAIRN_MEMBERS: ' ' }).addr, '127.0.0.1:8848');
});

/** usageRefusal is the UsageError of parseServerArgs for these arguments and environment: its code and message. */
function usageRefusal(args: readonly string[], env: Environment): { code: string | undefined; message: string } {
  try {
    parseServerArgs(args, env, cwd);
  } catch (error) {
    assert.ok(error instanceof UsageError, String(error));
    return { code: error.code, message: error.message };
  }
  assert.fail(`expected a UsageError for ${JSON.stringify(env)}`);
}

test('CAIRN_JOIN takes 1/true/yes/on and 0/false/no/off in any case; anything else is refused, naming the variable', () => {
  for (const yes of ['1', 'true', 'TRUE', 'True', 'yes', 'YES', 'on', 'On', ' true ']) assert.equal(config([], { CAIRN_JOIN: yes }).join, true, yes);
  for (const no of ['0', 'false', 'FALSE', 'no', 'No', 'off', 'OFF', '', ' ']) assert.equal(config([], { CAIRN_JOIN: no }).join, false, no);
  assert.equal(config([]).join, false);
  for (const bad of ['maybe', 'ture', 'y', 'n', '2', '-1', 'yes please', 'enabled']) {
    assert.deepEqual(usageRefusal([], { CAIRN_JOIN: bad }), {
      code: 'CAIRN_INVALID_ARGUMENT',
      message: `CAIRN_JOIN: '${bad}' is not a boolean: give 1, true, yes or on; 0, false, no or off`,
    }, bad);
  }
  // The flag wins over the variable, as for every flag: the variable is not read when --join is given.
  assert.equal(config(['--join'], { CAIRN_JOIN: 'no' }).join, true);
  assert.equal(config(['--join'], { CAIRN_JOIN: 'maybe' }).join, true);
});

test('a bad value from an environment variable is refused naming the variable, with CAIRN_INVALID_ARGUMENT; from a flag, naming the flag', () => {
  const cases: ReadonlyArray<readonly [string, string, RegExp]> = [
    ['CAIRN_ADDR', 'foo', /^CAIRN_ADDR: 'foo' is not HOST:PORT/],
    ['CAIRN_GRPC_PORT', '70000', /^CAIRN_GRPC_PORT: '70000' is not a port/],
    ['CAIRN_PEER_PORT', 'x', /^CAIRN_PEER_PORT: 'x' is not a port/],
    ['CAIRN_MEMBERS', '127.0.0.1:8848,,127.0.0.2:8848', /^CAIRN_MEMBERS: empty entry/],
    ['CAIRN_MEMBERS', '127.0.0.2:8848', /^CAIRN_MEMBERS must include this member's own --addr 127\.0\.0\.1:8848/],
    ['CAIRN_LOG_LEVEL', 'loud', /^CAIRN_LOG_LEVEL: 'loud' is not one of trace/],
    ['CAIRN_SNAPSHOT_ENTRIES', '0', /^CAIRN_SNAPSHOT_ENTRIES: '0' is not an integer in 1\.\.1000000/],
    ['CAIRN_SNAPSHOT_CATCHUP_ENTRIES', '-1', /^CAIRN_SNAPSHOT_CATCHUP_ENTRIES: '-1' is not an integer/],
    ['CAIRN_CHECKPOINT_EVERY', 'ten', /^CAIRN_CHECKPOINT_EVERY: 'ten' is not an integer/],
  ];
  for (const [variable, value, message] of cases) {
    const refusal = usageRefusal([], { [variable]: value });
    assert.equal(refusal.code, 'CAIRN_INVALID_ARGUMENT', variable);
    assert.match(refusal.message, message, variable);
  }
  // --addr from the variable, --members from the flag: each error names where its value came from.
  assert.match(usageRefusal(['--members', '127.0.0.2:8848'], { CAIRN_ADDR: '127.0.0.1:8848' }).message, /^--members must include this member's own CAIRN_ADDR 127\.0\.0\.1:8848/);
  assert.deepEqual(usageRefusal(['--addr', 'foo'], { CAIRN_ADDR: '127.0.0.1:8848' }), { code: undefined, message: "--addr: 'foo' is not HOST:PORT (IPv6 as [ADDR]:PORT)" });
  // An unspecified address listens everywhere but names no member: refused as an identity.
  for (const unspecified of ['0.0.0.0:8848', '[::]:8848', '[0:0::0]:8848']) {
    assert.match(usageRefusal(['--addr', unspecified], {}).message, /is not an address others can reach/, unspecified);
  }
  // The printed line carries the code: what a supervisor's log shows.
  const printed = capture(['server'], { CAIRN_ADDR: 'foo' });
  assert.equal(printed.code, 2);
  assert.match(printed.stderr, /^cairn server: CAIRN_INVALID_ARGUMENT: CAIRN_ADDR: 'foo' is not HOST:PORT/);
});

test('bin/cairn server refuses CAIRN_JOIN=maybe with exit 2 and the variable named, before starting anything', () => {
  // --addr and --data-dir keep this file's member off 127.0.0.1:8848 and ./data should the refusal ever be missing.
  const dir = mkdtempSync(path.join(tmpdir(), 'cairn-cli-env-'));
  try {
    const bin = fileURLToPath(new URL('../bin/cairn', import.meta.url));
    const args = ['server', '--addr', '127.0.1.112:18948', '--data-dir', path.join(dir, 'member')];
    const refused = spawnSync(bin, args, { env: { ...process.env, CAIRN_JOIN: 'maybe' }, encoding: 'utf8', timeout: 20_000, killSignal: 'SIGKILL' });
    assert.equal(refused.status, 2, refused.stderr);
    assert.equal(refused.stderr, "cairn server: CAIRN_INVALID_ARGUMENT: CAIRN_JOIN: 'maybe' is not a boolean: give 1, true, yes or on; 0, false, no or off\nRun 'cairn server --help' for usage.\n");
    assert.equal(refused.stdout, '');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--checkpoint-every: 0 turns checkpoints off, CAIRN_CHECKPOINT_EVERY is its fallback, anything but an integer in 0..10M is refused', () => {
  assert.equal(config(['--checkpoint-every', '0']).checkpointEntries, 0);
  assert.equal(config(['--checkpoint-every', '2500']).checkpointEntries, 2500);
  assert.equal(config([], { CAIRN_CHECKPOINT_EVERY: '7' }).checkpointEntries, 7);
  assert.equal(config(['--checkpoint-every', '9'], { CAIRN_CHECKPOINT_EVERY: '7' }).checkpointEntries, 9);
  for (const bad of ['-1', '1.5', 'ten', '10000001', '1e5']) {
    assert.match(usageError([`--checkpoint-every=${bad}`]), /--checkpoint-every: '.*' is not an integer in 0\.\.10000000/);
  }
});

test('--snapshot-catchup-entries: absent leaves the replica its default, CAIRN_SNAPSHOT_CATCHUP_ENTRIES is its fallback, anything but an integer in 0..1M is refused', () => {
  assert.equal(config([]).snapshotCatchUpEntries, null);
  assert.equal(config(['--snapshot-catchup-entries', '0']).snapshotCatchUpEntries, 0);
  assert.equal(config(['--snapshot-catchup-entries', '25000']).snapshotCatchUpEntries, 25_000);
  assert.equal(config([], { CAIRN_SNAPSHOT_CATCHUP_ENTRIES: '120' }).snapshotCatchUpEntries, 120);
  assert.equal(config(['--snapshot-catchup-entries', '9'], { CAIRN_SNAPSHOT_CATCHUP_ENTRIES: '120' }).snapshotCatchUpEntries, 9);
  for (const bad of ['-1', '1.5', 'ten', '1000001', '1e5']) {
    assert.match(usageError([`--snapshot-catchup-entries=${bad}`]), /--snapshot-catchup-entries: '.*' is not an integer in 0\.\.1000000/);
  }
  assert.match(usageError(['--snapshot-catchup-entries=']), /--snapshot-catchup-entries: empty value/);
  assert.match(capture(['server', '--help']).stdout, /--snapshot-catchup-entries N[\s\S]*CAIRN_SNAPSHOT_CATCHUP_ENTRIES/);
});

test('hostnames and bracketed IPv6 addresses are accepted and normalised', () => {
  assert.equal(config(['--addr', 'Cairn-1.example.com:8848']).addr, 'cairn-1.example.com:8848');
  const v6 = config(['--addr', '[::1]:8848', '--members', '[::1]:8848,[::2]:8848']);
  assert.equal(v6.addr, '[::1]:8848');
  assert.equal(v6.host, '::1');
  assert.deepEqual(parseHostPort('localhost:1', 'x'), { host: 'localhost', port: 1 });
});

test('a bad --addr is refused with a message naming it', () => {
  for (const addr of ['127.0.0.1', 'host:', ':8848', '::1:8848', '[::1]', '999.1.1.1:8848', 'bad_host:8848', 'a b:1', '[nope]:1']) {
    assert.match(usageError(['--addr', addr]), /^--addr: /, addr);
  }
  assert.match(usageError([], { CAIRN_ADDR: 'nope' }), /^CAIRN_ADDR: 'nope' is not HOST:PORT/);
  assert.match(usageError(['--addr', '']), /^--addr: empty value/);
});

test('a bad port is refused: out of range, not a number, or derived out of range', () => {
  for (const addr of ['127.0.0.1:0', '127.0.0.1:65536', '127.0.0.1:-1', '127.0.0.1:80a', '127.0.0.1:1e3']) {
    assert.match(usageError(['--addr', addr]), /is not a port \(1-65535\)/, addr);
  }
  assert.match(usageError(['--grpc-port', '70000']), /^--grpc-port: '70000' is not a port/);
  assert.match(usageError(['--peer-port', 'x']), /^--peer-port: 'x' is not a port/);
  assert.match(usageError(['--addr', '127.0.0.1:800']), /^--peer-port: the derived port 800 - 1000 = -200 is not a port; give --peer-port/);
  assert.match(usageError(['--addr', '127.0.0.1:65000']), /^--grpc-port: the derived port 65000 \+ 1000 = 66000/);
  assert.equal(config(['--addr', '127.0.0.1:800', '--peer-port', '7000']).peerPort, 7000);
  assert.match(usageError(['--grpc-port', '8848']), /ports must differ/);
});

test('--members must include --addr, hold valid addresses and no duplicates', () => {
  assert.match(
    usageError(['--addr', '127.0.0.1:8848', '--members', '127.0.0.2:8848,127.0.0.3:8848']),
    /^--members must include this member's own --addr 127\.0\.0\.1:8848/,
  );
  assert.match(usageError(['--members', '127.0.0.1:8848,,127.0.0.2:8848']), /^--members: empty entry/);
  assert.match(usageError(['--members', '127.0.0.1:8848,127.0.0.1:8848']), /listed twice/);
  assert.match(usageError(['--members', '127.0.0.1:8848,nope']), /^--members: 'nope' is not HOST:PORT/);
});

test('unknown flags, positionals and bad log levels are refused', () => {
  assert.match(usageError(['--port', '1']), /Unknown option '--port'/);
  assert.match(usageError(['extra']), /positional/i);
  assert.match(usageError(['--addr']), /argument missing/);
  assert.match(usageError(['--log-level', 'loud']), /^--log-level: 'loud' is not one of trace, debug, info/);
  assert.deepEqual(parseServerArgs(['--help'], {}, cwd), { help: true });
});

test('run: exit codes and messages for help, version, server and unknown commands', () => {
  const packageVersion = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  assert.deepEqual(capture(['--version']), { code: 0, stdout: `cairn ${packageVersion}\n`, stderr: '' });
  const help = capture(['--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^Usage: cairn <command>/);
  assert.equal(capture(['server', '--help']).code, 0);

  const bad = capture(['server', '--addr', 'nope']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^cairn server: --addr: 'nope' is not HOST:PORT/);

  // Every command's --help exits 0 with its usage on stdout (cairn cluster refused --help as an unknown option).
  const bin = fileURLToPath(new URL('../bin/cairn', import.meta.url));
  const clusterHelp = spawnSync(bin, ['cluster', '--help'], { cwd: tmpdir(), encoding: 'utf8', timeout: 20_000, killSignal: 'SIGKILL' });
  assert.deepEqual([clusterHelp.status, clusterHelp.stderr], [0, '']);
  assert.match(clusterHelp.stdout, /^Usage: cairn cluster \[options\][\s\S]*--data-dir DIR[\s\S]*default \.\/data\/cluster/);
  const clusterBad = spawnSync(bin, ['cluster', '--bogus'], { cwd: tmpdir(), encoding: 'utf8', timeout: 20_000, killSignal: 'SIGKILL' });
  assert.equal(clusterBad.status, 2);
  assert.match(clusterBad.stderr, /^cairn cluster: Unknown option '--bogus'\nUsage: cairn cluster/);

  const unknown = capture(['frobnicate']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown command 'frobnicate'[\s\S]*Usage: cairn/);
  assert.equal(capture([]).code, 2);
});

test('bin/cairn runs the CLI from another working directory', () => {
  const bin = fileURLToPath(new URL('../bin/cairn', import.meta.url));
  const version = spawnSync(bin, ['--version'], { cwd: tmpdir(), encoding: 'utf8' });
  assert.equal(version.status, 0, version.stderr);
  assert.match(version.stdout, /^cairn \d+\.\d+\.\d+/);
  const bad = spawnSync(bin, ['server', '--members', '127.0.0.2:8848'], { cwd: tmpdir(), encoding: 'utf8' });
  assert.equal(bad.status, 2, bad.stderr);
});

test('cairn cluster validates its flags before starting anything', async () => {
  let stderr = '';
  const out = { stdout: () => undefined, stderr: (text: string) => (stderr += text) };
  assert.equal(await run(['cluster', '--size', '9'], {}, out), 2);
  assert.match(stderr, /--size: '9' is not an integer in 1\.\.7/);
  assert.equal(await run(['cluster', '--base-ip', '10.0.0.1'], {}, out), 2);
  assert.match(stderr, /must be a 127\.x\.y\.z address/);
});
