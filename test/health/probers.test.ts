// Goal: the TCP and HTTP probers judge real targets as NACOS.md §4.1 says, with Cairn's fixes: TCP is healthy when a
// connection completes and REFUSED (a flip at once) when nothing listens; HTTP sends GET path with the configured
// headers, honours expectedResponseCode (a 204 endpoint is healthy when 204 is expected, a 200 is then not),
// refuses on a closed port, times out on a server that never answers, and reuses one keep-alive connection.
// Method: real listeners on 127.0.1.100 (this file's address) on ports picked by the kernel: a TCP listener opened
// and closed, and an HTTP server whose status the test flips and whose connections and requests it records.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { TcpProber } from '../../src/health/tcp-prober.ts';
import { HttpProber } from '../../src/health/http-prober.ts';
import type { ActiveChecker, ProbeTarget } from '../../src/health/probe.ts';

const host = '127.0.1.100';

function target(port: number, checker: ActiveChecker): ProbeTarget {
  return { id: `t-${port}`, host, port, checker };
}

async function listen(server: net.Server): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  return (server.address() as AddressInfo).port;
}

async function close(server: net.Server): Promise<void> {
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** freePort returns a port that nothing listens on (it was just released). */
async function freePort(): Promise<number> {
  const server = net.createServer();
  const port = await listen(server);
  await close(server);
  return port;
}

test('TCP: healthy while a listener is open, refused once it is closed', async () => {
  const prober = new TcpProber();
  const server = net.createServer((socket) => socket.on('error', () => undefined));
  const port = await listen(server);
  try {
    const up = await prober.probe(target(port, { type: 'TCP' }), 1000);
    assert.deepEqual([up.healthy, up.refused], [true, false], up.detail);
    assert.ok(up.latencyMs >= 0 && up.latencyMs < 1000);
    await close(server);
    const down = await prober.probe(target(port, { type: 'TCP' }), 1000);
    assert.deepEqual([down.healthy, down.refused], [false, true], down.detail);
    assert.match(down.detail, /ECONNREFUSED/);
    server.listen(port, host);
    await new Promise((resolve) => server.once('listening', resolve));
    assert.equal((await prober.probe(target(port, { type: 'TCP' }), 1000)).healthy, true, 'healthy again once reopened');
  } finally {
    server.close();
    await prober.close();
  }
});

/** FlipServer is an HTTP server whose answer the test sets, recording requests and connections. */
class FlipServer {
  status = 200;
  silent = false;
  connections = 0;
  readonly requests: Array<{ url: string; headers: http.IncomingHttpHeaders }> = [];
  readonly server = http.createServer((request, response) => {
    this.requests.push({ url: request.url ?? '', headers: request.headers });
    if (this.silent) return;
    response.writeHead(this.status, { 'content-type': 'text/plain' });
    response.end(this.status === 204 ? undefined : 'body');
  });

  constructor() {
    this.server.on('connection', () => {
      this.connections += 1;
    });
  }

  async start(): Promise<number> {
    return listen(this.server);
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await close(this.server);
  }
}

test('HTTP: path, headers and expectedResponseCode are honoured; one keep-alive connection is reused', async () => {
  const prober = new HttpProber();
  const server = new FlipServer();
  const port = await server.start();
  const checker = (expectedResponseCode: number): ActiveChecker =>
    ({ type: 'HTTP', path: '/health/ready', headers: { 'x-probe': 'cairn', host: 'svc.local' }, expectedResponseCode });
  try {
    const ok = await prober.probe(target(port, checker(200)), 1000);
    assert.equal(ok.healthy, true, ok.detail);
    assert.equal(server.requests[0]?.url, '/health/ready');
    assert.equal(server.requests[0]?.headers['x-probe'], 'cairn');
    assert.equal(server.requests[0]?.headers['host'], 'svc.local');
    server.status = 503;
    const failing = await prober.probe(target(port, checker(200)), 1000);
    assert.deepEqual([failing.healthy, failing.refused], [false, false]);
    assert.match(failing.detail, /503, expected 200/);
    server.status = 204;
    assert.equal((await prober.probe(target(port, checker(204)), 1000)).healthy, true, 'a 204 endpoint is healthy when 204 is expected (Nacos ignores the setting)');
    assert.equal((await prober.probe(target(port, checker(200)), 1000)).healthy, false, 'and a 204 is not a 200');
    server.status = 200;
    assert.equal((await prober.probe(target(port, checker(204)), 1000)).healthy, false, 'nor a 200 a 204');
    assert.equal(server.connections, 1, 'every probe reused one keep-alive connection');
  } finally {
    await server.stop();
    await prober.close();
  }
});

test('HTTP: connections are kept for at most connectionsHeldMax origins; a probe beyond them closes its connection', async () => {
  const prober = new HttpProber({ connectionsHeldMax: 2 });
  const servers = [new FlipServer(), new FlipServer(), new FlipServer()];
  const ports = await Promise.all(servers.map((server) => server.start()));
  const checker: ActiveChecker = { type: 'HTTP', path: '', headers: {}, expectedResponseCode: 200 };
  try {
    for (let round = 0; round < 3; round++) {
      for (const port of ports) {
        const result = await prober.probe(target(port, checker), 1000);
        assert.equal(result.healthy, true, result.detail);
      }
    }
    assert.deepEqual(servers.map((server) => server.connections), [1, 1, 3], 'two origins keep their connection; the third opens one per probe');
    assert.deepEqual(servers[2]?.requests.map((request) => request.headers['connection']), ['close', 'close', 'close']);
    assert.equal(prober.overflowProbes, 3);
  } finally {
    await Promise.all(servers.map((server) => server.stop()));
    await prober.close();
  }
});

test('HTTP: a closed port is refused; a server that never answers times out as an ordinary failure', async () => {
  const prober = new HttpProber();
  const checker: ActiveChecker = { type: 'HTTP', path: '', headers: {}, expectedResponseCode: 200 };
  const refused = await prober.probe(target(await freePort(), checker), 1000);
  assert.deepEqual([refused.healthy, refused.refused], [false, true], refused.detail);
  const server = new FlipServer();
  server.silent = true;
  const port = await server.start();
  try {
    const silent = await prober.probe(target(port, checker), 300);
    assert.deepEqual([silent.healthy, silent.refused], [false, false], silent.detail);
    assert.ok(silent.latencyMs >= 250 && silent.latencyMs < 2000, `timed out after ${silent.latencyMs} ms`);
    assert.equal(server.requests[0]?.url, '/', "an empty path requests '/'");
  } finally {
    await server.stop();
    await prober.close();
  }
});
