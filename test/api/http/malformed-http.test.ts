// Goal: requests Node's HTTP parser refuses before fastify sees them, and an `Expect` Node would refuse, are answered
// like every other refusal: a catalog code in the Cairn-Error-Code header and Cairn's JSON error body, with the
// catalog's status (docs/errors.md), never Node's or fastify's bare text without a code. Found by
// test/api/http/fuzz.test.ts, which sends these over raw sockets to a real member.
// Method: buildApp() (test harness) listening on 127.0.1.15 on a free port (this address belongs to the HTTP fuzz
// tests; port 8848 is the fuzz member's), raw TCP connections that send the bytes as given and read the answer.

import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { maxHeaderSize } from 'node:http';
import { listenHarness, exchangeRaw, type Harness } from './harness.ts';

const host = '127.0.1.15';
let h: Harness;
let port = 0;

before(async () => {
  ({ harness: h, port } = await listenHarness(host));
});

after(async () => {
  await h.app.close();
});

interface RawAnswer {
  readonly status: number;
  readonly headers: string;
  readonly body: string;
}

/** sendRaw sends `text` on a fresh connection (harness.ts exchangeRaw, 5 s) and splits the answer. */
async function sendRaw(text: string): Promise<RawAnswer> {
  const received = await exchangeRaw({ host, port }, text, 5000);
  const [head = '', ...rest] = received.split('\r\n\r\n');
  return { status: Number(/^HTTP\/1\.1 (\d{3}) /.exec(head)?.[1] ?? 0), headers: head, body: rest.join('\r\n\r\n') };
}

test('malformed HTTP is refused with 400 CAIRN_INVALID_ARGUMENT in Cairn\'s JSON shape', async () => {
  const malformed = [
    'GET /nacos/v1/ns/instance/list?serviceName=a\u0000b HTTP/1.1\r\nHost: x\r\n\r\n',
    'GET /nacos/v1/ns/instance/list?serviceName=a b HTTP/1.1\r\nHost: x\r\n\r\n',
    'GET /nacos/v1/ns/instance/list HTTP/9.9\r\nHost: x\r\n\r\n',
    'BREW /nacos/v1/ns/instance HTTP/1.1\r\nHost: x\r\n\r\n',
    'GET /nacos/v1/ns/instance/list HTTP/1.1\r\nHost: x\r\nbroken header\r\n\r\n',
    'POST /nacos/v1/ns/instance HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n',
    'POST /nacos/v1/ns/instance HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nabcdef',
    'POST /nacos/v1/ns/instance HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n',
    'GET /cairn/v1/health HTTP/1.1\r\nHost: x\r\nCairn-Request-Id: a\u0001b\r\n\r\n',
  ];
  for (const text of malformed) {
    const answer = await sendRaw(text);
    const what = JSON.stringify(text.slice(0, 80));
    assert.equal(answer.status, 400, `${what}: ${answer.headers}`);
    assert.match(answer.headers, /\r\ncairn-error-code: CAIRN_INVALID_ARGUMENT\r\n/i, what);
    assert.deepEqual(JSON.parse(answer.body), { code: 'CAIRN_INVALID_ARGUMENT', message: 'invalid argument: the request is not well-formed HTTP/1.1.', retryable: false }, what);
  }
});

test('a header section over Node\'s maximum is refused with 413 CAIRN_REQUEST_TOO_LARGE', async () => {
  const answer = await sendRaw(`GET /nacos/v1/ns/instance/list HTTP/1.1\r\nHost: x\r\nX-Big: ${'x'.repeat(maxHeaderSize + 1)}\r\n\r\n`);
  assert.equal(answer.status, 413, answer.headers);
  assert.match(answer.headers, /\r\ncairn-error-code: CAIRN_REQUEST_TOO_LARGE\r\n/i);
  assert.equal((JSON.parse(answer.body) as { code: string }).code, 'CAIRN_REQUEST_TOO_LARGE');
});

test('an Expect other than 100-continue is ignored (RFC 9110 §10.1.1), not answered with a bare 417', async () => {
  const health = await sendRaw('GET /cairn/v1/health HTTP/1.1\r\nHost: x\r\nExpect: gzip\r\nConnection: close\r\n\r\n');
  assert.equal(health.status, 200, health.headers);
  assert.equal((JSON.parse(health.body) as { status: string }).status, 'UP');
  const register = await sendRaw('POST /nacos/v1/ns/instance?serviceName=expect.svc&ip=127.0.1.15&port=80&ephemeral=false HTTP/1.1\r\nHost: x\r\nExpect: 10.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
  assert.deepEqual([register.status, register.body], [200, 'ok'], register.headers);
  const refused = await sendRaw('POST /nacos/v1/ns/instance?serviceName=expect.svc&port=80 HTTP/1.1\r\nHost: x\r\nExpect: nothing\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
  assert.equal(refused.status, 400, refused.headers);
  assert.match(refused.headers, /\r\ncairn-error-code: CAIRN_INVALID_ARGUMENT\r\n/i);
});
