// Goal: the client commands of `cairn` (register, deregister, list, status, watch) do what DESIGN.md "Command line"
// and `cairn <command> --help` say, with the documented exit codes: 0 ok, 1 the member refused or could not be
// reached (the Cairn code and message printed), 2 bad usage (refused before any network call), 3 not implemented.
// Method: servers run in this test process on its own loopback address 127.0.1.41: the real gRPC server
// (buildGrpcServer over createDirectNaming: the real registry state machine, no Raft), a plain HTTP server answering
// GET /cairn/v1/cluster, and a bare TCP listener that counts connections, which proves bad usage never touches the
// network. bin/cairn is spawned as a real process for each command's main paths (exit codes are the process's);
// the many variations of input go through runClient in-process with captured output (same code, no process start).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createTcpServer, type Server as TcpServer } from 'node:net';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { Server as GrpcServer } from '@grpc/grpc-js';
import { buildGrpcServer, listenGrpcServer, shutdownGrpcServer } from '../src/api/grpc/server.ts';
import { parseClientArgs, runClient } from '../src/cli/client.ts';
import { createDirectNaming } from './support/direct-proposer.ts';

const host = '127.0.1.41';
const bin = fileURLToPath(new URL('../bin/cairn', import.meta.url));

let grpcServer: GrpcServer;
let grpcAddress = '';
let httpServer: HttpServer;
let httpPort = 0;
let clusterAnswer: { status: number; body: unknown } = { status: 200, body: {} };
let tcpListener: TcpServer;
let tcpAddress = '';
let tcpConnections = 0;
let closedAddress = '';

function listen(server: HttpServer | TcpServer): Promise<number> {
  return new Promise((resolve) => {
    server.listen(0, host, () => {
      const address = server.address();
      assert.ok(address !== null && typeof address === 'object');
      resolve(address.port);
    });
  });
}

function close(server: HttpServer | TcpServer): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

before(async () => {
  const { naming } = createDirectNaming();
  grpcServer = buildGrpcServer({ naming, ready: () => true });
  grpcAddress = `${host}:${await listenGrpcServer(grpcServer, host, 0)}`;
  httpServer = createHttpServer((request, response) => {
    const answer = request.url === '/cairn/v1/cluster' ? clusterAnswer : { status: 404, body: { code: 'CAIRN_NOT_IMPLEMENTED', message: 'no route' } };
    response.writeHead(answer.status, { 'content-type': 'application/json' }).end(JSON.stringify(answer.body));
  });
  httpPort = await listen(httpServer);
  tcpListener = createTcpServer((socket) => {
    tcpConnections += 1;
    socket.destroy();
  });
  tcpAddress = `${host}:${await listen(tcpListener)}`;
  const probe = createTcpServer();
  closedAddress = `${host}:${await listen(probe)}`;
  await close(probe);
});

after(async () => {
  await shutdownGrpcServer(grpcServer, 1000);
  await close(httpServer);
  await close(tcpListener);
});

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** cairn runs bin/cairn with `args` from a foreign working directory; CAIRN_SERVER is unset unless `env` sets it. */
function cairn(args: readonly string[], env: Record<string, string> = {}): Promise<Run> {
  const { CAIRN_SERVER: _unset, ...inherited } = process.env;
  return new Promise((resolve, reject) => {
    const child = spawn(bin, [...args], { cwd: tmpdir(), env: { ...inherited, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** capture runs a client command in-process and captures its output; CAIRN_SERVER is set only by `env`. */
async function capture(argv: readonly string[], env: Record<string, string> = {}): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const [command = '', ...args] = argv;
  const code = await runClient(command, args, env, { stdout: (text) => (stdout += text), stderr: (text) => (stderr += text) });
  return { code, stdout, stderr };
}

test('defaults: public namespace, DEFAULT_GROUP, DEFAULT cluster, server 127.0.0.1:9848, CAIRN_SERVER fallback', () => {
  const parsed = parseClientArgs('register', ['--service', 's', '--ip', '10.0.0.1', '--port', '0', '--request-id', 'r1'], {});
  assert.deepEqual(parsed, {
    type: 'register', server: { host: '127.0.0.1', port: 9848 },
    target: { namespace: 'public', group: 'DEFAULT_GROUP', service: 's', cluster: 'DEFAULT', ip: '10.0.0.1', port: 0 },
    weight: undefined, ephemeral: false, metadata: {}, requestId: 'r1',
  });
  const list = parseClientArgs('list', ['--service', 's'], { CAIRN_SERVER: '10.1.1.1:19848' });
  assert.ok(list.type === 'list');
  assert.deepEqual([list.server, list.consistency, list.clusters], [{ host: '10.1.1.1', port: 19848 }, 'LINEARIZABLE', []]);
  const status = parseClientArgs('status', ['--server', '127.0.1.41:9848'], {});
  assert.deepEqual(status, { type: 'status', http: { host: '127.0.1.41', port: 8848 }, json: false });
});

test('bad usage exits 2 with a message naming the flag, and never opens a connection', async () => {
  const server = ['--server', tcpAddress];
  const cases: Array<[readonly string[], RegExp]> = [
    [['register', '--ip', '10.0.0.1', '--port', '80', ...server], /--service is required/],
    [['register', '--service', 's', '--ip', '300.1.1.1', '--port', '80', ...server], /--ip: .*not a valid IPv4/],
    [['register', '--service', 's', '--ip', '10.0.0.1', '--port', '70000', ...server], /--port: '70000' is not a port/],
    [['register', '--service', 's', '--ip', '10.0.0.1', '--port', '80', '--weight', 'heavy', ...server], /--weight: /],
    [['register', '--service', 's', '--ip', '10.0.0.1', '--port', '80', '--metadata', 'novalue', ...server], /--metadata: metadata format incorrect/],
    [['register', '--service', 'bad name', '--ip', '10.0.0.1', '--port', '80', ...server], /--service: /],
    [['register', '--service', 's', '--ip', '10.0.0.1', '--port', '80', '--request-id', 'has space', ...server], /--request-id: /],
    [['deregister', '--service', 's', '--ip', '10.0.0.1', '--bogus', ...server], /Unknown option '--bogus'/],
    [['list', '--service', 's', '--consistency', 'eventual', ...server], /--consistency: 'eventual' is not one of linearizable, local/],
    [['list', '--service', 's', 'extra', ...server], /positional/i],
    [['list', '--service', 's', '--server', 'nope'], /--server: 'nope' is not HOST:PORT/],
    [['status', '--server', tcpAddress, '--http', tcpAddress], /give --server or --http, not both/],
  ];
  for (const [args, message] of cases) {
    const run = await capture(args);
    assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
    assert.match(run.stderr, message, args.join(' '));
    assert.match(run.stderr, /Run 'cairn \w+ --help' for usage\./);
  }
  // A bad CAIRN_SERVER is named as the variable, with CAIRN_INVALID_ARGUMENT, not as --server.
  const fromEnvironment = await capture(['list', '--service', 's'], { CAIRN_SERVER: 'bad' });
  assert.equal(fromEnvironment.code, 2);
  assert.match(fromEnvironment.stderr, /^cairn list: CAIRN_INVALID_ARGUMENT: CAIRN_SERVER: 'bad' is not HOST:PORT/);
  assert.match((await capture(['status'], { CAIRN_SERVER: '127.0.1.41:900' })).stderr, /^cairn status: CAIRN_INVALID_ARGUMENT: CAIRN_SERVER: the HTTP port 900 - 1000/);
  // The same through a real process: the exit status is 2.
  const spawned = await Promise.all([cases[0], cases[8]].map((item) => cairn(item?.[0] ?? [])));
  assert.deepEqual(spawned.map((run) => run.code), [2, 2], spawned.map((run) => run.stderr).join(''));
  assert.equal(tcpConnections, 0, 'no bad command line reached the network');
});

test('register, list, deregister against a real gRPC server', async () => {
  const register = await cairn(['register', '--service', 'orders', '--ip', '10.0.0.1', '--port', '8080', '--weight', '2.5',
    '--metadata', 'zone=a,tier=web', '--cluster', 'east', '--server', grpcAddress]);
  assert.equal(register.code, 0, register.stderr);
  assert.match(register.stdout, /^registered 10\.0\.0\.1:8080 in public\/DEFAULT_GROUP@@orders \(cluster east, persistent\), revision \d+\n$/);
  const second = await capture(['register', '--service', 'orders', '--ip', '10.0.0.2', '--port', '8080', '--server', grpcAddress]);
  assert.equal(second.code, 0, second.stderr);

  const list = await cairn(['list', '--service', 'orders', '--server', grpcAddress]);
  assert.equal(list.code, 0, list.stderr);
  const lines = list.stdout.trimEnd().split('\n');
  assert.match(lines[0] ?? '', /^public\/DEFAULT_GROUP@@orders {2}revision \d+$/);
  assert.match(lines[1] ?? '', /^CLUSTER +IP +PORT +WEIGHT +HEALTHY +ENABLED +EPHEMERAL +METADATA$/);
  assert.match(lines[2] ?? '', /^DEFAULT +10\.0\.0\.2 +8080 +1 +true +true +false$/);
  assert.match(lines[3] ?? '', /^east +10\.0\.0\.1 +8080 +2\.5 +true +true +false +tier=web,zone=a$/);
  assert.equal(lines[4], '2 instances');

  const json = await capture(['list', '--service', 'orders', '--cluster', 'east', '--consistency', 'local', '--json'], { CAIRN_SERVER: grpcAddress });
  assert.equal(json.code, 0, json.stderr);
  const parsed = JSON.parse(json.stdout) as { service: string; exists: boolean; instances: Array<{ ip: string; weight: number; metadata: object }> };
  assert.equal(parsed.service, 'public/DEFAULT_GROUP@@orders');
  assert.deepEqual(parsed.instances.map((instance) => [instance.ip, instance.weight, instance.metadata]), [['10.0.0.1', 2.5, { tier: 'web', zone: 'a' }]]);

  const deregister = await cairn(['deregister', '--service', 'orders', '--ip', '10.0.0.1', '--port', '8080', '--cluster', 'east', '--server', grpcAddress]);
  assert.equal(deregister.code, 0, deregister.stderr);
  assert.equal(deregister.stdout, 'deregistered 10.0.0.1:8080 (cluster east) from public/DEFAULT_GROUP@@orders\n');
  const again = await capture(['deregister', '--service', 'orders', '--ip', '10.0.0.1', '--port', '8080', '--cluster', 'east', '--server', grpcAddress]);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /^nothing to do: 10\.0\.0\.1:8080 \(cluster east\) was not in public\/DEFAULT_GROUP@@orders/);

  const unknown = await capture(['list', '--service', 'nobody', '--server', grpcAddress]);
  assert.deepEqual([unknown.code, unknown.stdout], [0, 'no service public/DEFAULT_GROUP@@nobody\n']);
});

test('a refusal by the member exits 1 and prints the Cairn code and message', async () => {
  const ephemeral = await cairn(['register', '--service', 'eph', '--ip', '10.0.0.3', '--port', '80', '--ephemeral', '--server', grpcAddress]);
  assert.equal(ephemeral.code, 1);
  assert.match(ephemeral.stderr, /^cairn register: CAIRN_NOT_IMPLEMENTED: not implemented: ephemeral instances arrive with the AP issue/);
  const first = await capture(['register', '--service', 'ids', '--ip', '10.0.0.4', '--port', '80', '--request-id', 'cli-req-1', '--server', grpcAddress]);
  assert.equal(first.code, 0, first.stderr);
  const reused = await capture(['register', '--service', 'ids', '--ip', '10.0.0.5', '--port', '80', '--request-id', 'cli-req-1', '--server', grpcAddress]);
  assert.equal(reused.code, 1);
  assert.match(reused.stderr, /^cairn register: CAIRN_REQUEST_ID_REUSED: /);
});

test('a member that cannot be reached exits 1 and says so', async () => {
  const run = await cairn(['list', '--service', 's', '--server', closedAddress]);
  assert.equal(run.code, 1);
  assert.match(run.stderr, new RegExp(`^cairn list: cannot reach ${closedAddress.replaceAll('.', '\\.')}: UNAVAILABLE`));
});

test('status prints the leader, term and members from GET /cairn/v1/cluster on the gRPC port - 1000', async () => {
  clusterAnswer = {
    status: 200,
    body: {
      leader: '127.0.1.41:8848', term: 4,
      members: [
        { addr: '127.0.1.41:8848', role: 'leader', term: 4, commitIndex: 17, appliedIndex: 17, matchIndex: 18, lastContactMs: 0 },
        { addr: '127.0.1.42:8848', role: 'follower', term: null, commitIndex: null, appliedIndex: null, matchIndex: 16, lastContactMs: 90 },
        { addr: '127.0.1.43:8848', role: 'follower', term: null, commitIndex: null, appliedIndex: null, matchIndex: null, lastContactMs: null },
      ],
    },
  };
  const run = await cairn(['status', '--server', `${host}:${httpPort + 1000}`]);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stdout, [
    'leader 127.0.1.41:8848  term 4',
    'MEMBER           ROLE      TERM  COMMIT  APPLIED  STORED  LAST CONTACT',
    '127.0.1.41:8848  leader    4     17      17       18      0 ms',
    '127.0.1.42:8848  follower  -     -       -        16      90 ms',
    '127.0.1.43:8848  follower  -     -       -        -       never',
    '',
  ].join('\n'));
  const json = await capture(['status', '--http', `${host}:${httpPort}`, '--json']);
  assert.equal(json.code, 0, json.stderr);
  assert.deepEqual(JSON.parse(json.stdout), clusterAnswer.body);

  clusterAnswer = { status: 503, body: { code: 'CAIRN_SHUTTING_DOWN', message: 'member is shutting down', retryable: true } };
  const refused = await cairn(['status', '--http', `${host}:${httpPort}`]);
  assert.deepEqual([refused.code, refused.stderr], [1, 'cairn status: CAIRN_SHUTTING_DOWN: member is shutting down\n']);
  const unreachable = await capture(['status', '--http', closedAddress]);
  assert.equal(unreachable.code, 1);
  assert.match(unreachable.stderr, /^cairn status: cannot reach http:\/\//);
});

test('watch against a server without subscriptions: the refusal (UNIMPLEMENTED) exits 1 at once, no reconnect', async () => {
  // The streaming cases (snapshots, reconnects, Ctrl-C) run against a real member in test/cli/watch.test.ts.
  const run = await cairn(['watch', '--service', 's', '--server', grpcAddress]);
  assert.equal(run.code, 1, run.stderr);
  assert.match(run.stderr, /^cairn watch: CAIRN_NOT_IMPLEMENTED: .*subscription hub/);
  assert.doesNotMatch(run.stderr, /reconnect/);
});

test('help: each client command prints its usage and exits 0', async () => {
  for (const command of ['register', 'deregister', 'list', 'watch', 'status']) {
    const run = await capture([command, '--help']);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^Usage: cairn \w+/);
  }
});
