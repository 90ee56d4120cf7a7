// Goal: a request that reaches the HTTP API while the member closes is answered with the catalog's
// CAIRN_SHUTTING_DOWN (503, its code in the body and the cairn-error-code header), on Nacos routes too, not with
// fastify's bare 503 {"error":"Service Unavailable"}, which no client can tell apart from any other 503. And open
// connections are bounded (limits.httpConnectionsMax): one beyond the bound is closed at once.
//
// Method: the app listens on 127.0.1.211 (this file's address). A raw TCP client sends the first half of a request's
// headers, so its connection is busy and survives the close; the app's close starts; the rest of the headers follow.

import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { test } from 'node:test';
import { listenHarness } from './harness.ts';

const host = '127.0.1.211';

/** refusesConnections resolves once a connection to `port` is refused (the listener closed), at most after 5 s. */
async function refusesConnections(port: number): Promise<void> {
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    const refused = await new Promise<boolean>((resolve) => {
      const probe = connect({ host, port });
      probe.once('connect', () => {
        probe.destroy();
        resolve(false);
      });
      probe.once('error', () => resolve(true));
    });
    if (refused) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`the listener on ${host}:${port} still accepted connections 5 s after the close began`);
}

test('a request completed while the member closes is answered CAIRN_SHUTTING_DOWN', async () => {
  const { harness, port } = await listenHarness(host);
  const socket = connect({ host, port });
  let received = '';
  socket.setEncoding('latin1');
  socket.on('data', (chunk: string) => {
    received += chunk;
  });
  const ended = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  socket.write(`GET /nacos/v1/ns/instance/list?serviceName=svc HTTP/1.1\r\nHost: ${host}\r\n`);
  // Time for the member to read the first half (its connection is then busy, not idle, and survives the close).
  await new Promise((resolve) => setTimeout(resolve, 300));
  const closed = harness.app.close();
  // The close has begun once the listener refuses new connections (fastify runs its preClose hooks before that).
  await refusesConnections(port);
  socket.write('Connection: close\r\n\r\n');
  await Promise.race([ended, new Promise((resolve) => setTimeout(resolve, 5000))]);
  socket.destroy();
  await closed;
  assert.match(received, /^HTTP\/1\.1 503 /, received);
  assert.match(received, /cairn-error-code: CAIRN_SHUTTING_DOWN/i, received);
  assert.match(received, /shutting down/, received);
});

test('connections beyond httpConnectionsMax are closed at once; the held ones are served', async () => {
  const { harness, port } = await listenHarness(host, { connectionsMax: 2 });
  const sockets = [0, 1, 2].map(() => connect({ host, port }));
  try {
    const closedEarly = [false, false, false];
    sockets.forEach((socket, i) => {
      socket.on('close', () => (closedEarly[i] = true));
      socket.on('error', () => undefined);
    });
    await Promise.all(sockets.slice(0, 2).map((socket) => new Promise<void>((resolve) => socket.once('connect', () => resolve()))));
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.deepEqual(closedEarly, [false, false, true], 'the third connection was closed by the server');
    const answer = await new Promise<string>((resolve) => {
      let received = '';
      sockets[0]!.setEncoding('latin1');
      sockets[0]!.on('data', (chunk: string) => {
        received += chunk;
        if (received.includes('\r\n\r\n')) resolve(received);
      });
      sockets[0]!.write(`GET /cairn/v1/health HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
    });
    assert.match(answer, /^HTTP\/1\.1 200 /);
  } finally {
    for (const socket of sockets) socket.destroy();
    await harness.app.close();
  }
});
