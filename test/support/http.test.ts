// Goal: boundedRequest (test/support/http.ts), the HTTP client of the test harness, the jepsen-like harness and the
// bench's control calls, always settles within its deadline, whatever the peer does: accepts and closes at once (what
// could leave Node's fetch pending forever), refuses, never answers, stalls in the middle of a body, or sends more than
// the bound; and it passes any answer through whatever its status, with the method, headers and body it was given.
// Method: bare TCP listeners and one node:http server on this file's own loopback address 127.0.1.113 (ports the
// kernel picks), each scripted to misbehave in one way; every failure is checked for its reason and for how long it took.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpServer, type IncomingMessage } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import { boundedRequest, HttpFailure, type HttpFailureReason } from './http.ts';

const host = '127.0.1.113';
const servers: Server[] = [];
const sockets = new Set<Socket>();

/** listen starts `server` on this file's host and resolves with its host:port. */
function listen(server: Server): Promise<string> {
  servers.push(server);
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  return new Promise((resolve) => server.listen(0, host, () => {
    const address = server.address();
    assert.ok(address !== null && typeof address === 'object');
    resolve(`${host}:${address.port}`);
  }));
}

let closing = '';
let silent = '';
let stalling = '';
let refusing = '';
let echoing = '';

/** Echo is what the echoing server saw of a request. */
interface Echo {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
}

before(async () => {
  closing = await listen(createServer((socket) => socket.destroy()));
  silent = await listen(createServer(() => undefined));
  stalling = await listen(createServer((socket) => socket.once('data', () => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc'))));
  const gone = createServer();
  refusing = await listen(gone);
  await new Promise((resolve) => gone.close(resolve));
  echoing = await listen(createHttpServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const echo: Echo = { method: request.method ?? '', url: request.url ?? '', headers: request.headers, body: Buffer.concat(chunks).toString('utf8') };
      const text = request.url === '/big' ? 'x'.repeat(64 * 1024) : JSON.stringify(echo);
      response.writeHead(request.url === '/big' ? 200 : 418, { 'content-type': 'application/json', 'cairn-error-code': 'CAIRN_TEAPOT' });
      response.end(text);
    });
  }));
});

after(async () => {
  for (const socket of sockets) socket.destroy();
  await Promise.all(servers.filter((server) => server.listening).map((server) => new Promise((resolve) => server.close(resolve))));
});

/** failureOf awaits a request expected to fail and returns its HttpFailure with how long it took. */
async function failureOf(sent: Promise<unknown>): Promise<{ reason: HttpFailureReason; code: string; ms: number }> {
  const started = Date.now();
  try {
    await sent;
  } catch (error) {
    assert.ok(error instanceof HttpFailure, `not an HttpFailure: ${String(error)}`);
    return { reason: error.reason, code: error.code, ms: Date.now() - started };
  }
  assert.fail('the request succeeded');
}

test('a peer that accepts and closes at once: the request fails at once, long before its deadline', async () => {
  for (let attempt = 0; attempt < 3; attempt++) {
    const failure = await failureOf(boundedRequest(closing, 'GET', '/cairn/v1/cluster', { timeoutMs: 10_000 }));
    assert.equal(failure.reason, 'network', `attempt ${attempt}: ${failure.code}`);
    assert.ok(failure.ms < 5000, `attempt ${attempt} took ${failure.ms} ms`);
  }
});

test('a refused connection is "refused": nothing was sent', async () => {
  const failure = await failureOf(boundedRequest(refusing, 'POST', '/nacos/v1/ns/instance', { timeoutMs: 5000 }));
  assert.deepEqual([failure.reason, failure.code], ['refused', 'ECONNREFUSED']);
});

test('a peer that never answers, or stalls in the middle of the body: "timeout" at the deadline, not later', async () => {
  for (const addr of [silent, stalling]) {
    const failure = await failureOf(boundedRequest(addr, 'GET', '/metrics', { timeoutMs: 300 }));
    assert.equal(failure.reason, 'timeout', `${addr}: ${failure.code}`);
    assert.ok(failure.ms >= 290 && failure.ms < 1500, `${addr}: settled after ${failure.ms} ms for a 300 ms deadline`);
  }
});

test('a body over the bound is "too-large"; within it, it is read whole', async () => {
  const failure = await failureOf(boundedRequest(echoing, 'GET', '/big', { timeoutMs: 5000, bodyBytesMax: 16 * 1024 }));
  assert.equal(failure.reason, 'too-large');
  const answer = await boundedRequest(echoing, 'GET', '/big', { timeoutMs: 5000 });
  assert.equal(answer.text.length, 64 * 1024);
});

test('any status is an answer; method, headers and body go out as given, a bare string body as text/plain', async () => {
  const answer = await boundedRequest(echoing, 'PATCH', '/nacos/v1/ns/instance?ip=1', { timeoutMs: 5000, headers: { 'Cairn-Request-Id': 'r-1' }, body: 'a=1' });
  assert.equal(answer.status, 418);
  assert.equal(answer.headers['cairn-error-code'], 'CAIRN_TEAPOT');
  const echo = JSON.parse(answer.text) as Echo;
  assert.deepEqual([echo.method, echo.url, echo.body, echo.headers['cairn-request-id']], ['PATCH', '/nacos/v1/ns/instance?ip=1', 'a=1', 'r-1']);
  assert.equal(echo.headers['content-type'], 'text/plain;charset=UTF-8');
  const form = await boundedRequest(echoing, 'POST', '/x', { timeoutMs: 5000, headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'b=2' });
  assert.equal((JSON.parse(form.text) as Echo).headers['content-type'], 'application/x-www-form-urlencoded');
  const bare = JSON.parse((await boundedRequest(echoing, 'POST', '/x', { timeoutMs: 5000 })).text) as Echo;
  assert.deepEqual([bare.headers['content-type'], bare.headers['content-length']], [undefined, '0']);
});

test('an address outside 127.0.0.0/8 is refused before anything is sent', async () => {
  await assert.rejects(boundedRequest('10.0.0.1:8848', 'GET', '/', { timeoutMs: 1000 }), (error: unknown) => !(error instanceof HttpFailure) && /refusing to send traffic to 10\.0\.0\.1:8848/.test(String(error)));
});
