// Goal: the jepsen-like gRPC client (jepsen-like/client-grpc.ts) classifies transport failures the way the checkers
// rely on: a call refused at grpc-js's pick because the channel never connected ("No connection established") was
// never sent, so it is a definite 'fail'; a call whose connection was accepted but that got no answer before its
// deadline may have been applied, so it is 'info'.
//
// Method: real grpc-js channels on this file's own 127.0.1.6: first to a port where nothing listens (the kernel
// refuses the connection), then to a TCP listener that accepts and never speaks HTTP/2 (the call's deadline passes).
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { test } from 'node:test';
import { GrpcRegistryClient } from '../../jepsen-like/client-grpc.ts';

const host = '127.0.1.6';
const ref = { service: 'jepsen-client-test', ip: '127.0.1.6', port: 1 };

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      if (address === null || typeof address === 'string') reject(new Error('no port'));
      else resolve(address.port);
    });
  });
}

test('a call refused before any stream is a fail; one unanswered by an accepting peer is info', async (t) => {
  // A port that was just free: bind, note, close (nothing listens there afterwards).
  const probe = createServer();
  const freePort = await listen(probe);
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  const refused = new GrpcRegistryClient(`${host}:${freePort}`, 2000);
  t.after(() => refused.close());
  const outcome = await refused.register(ref, {}, 'req-refused');
  assert.equal(outcome.type, 'fail', `refused connection: ${JSON.stringify(outcome)}`);
  assert.match(outcome.type === 'fail' ? outcome.error : '', /UNAVAILABLE: No connection established/);

  // A listener that accepts the connection and stays silent: the call may have left, so its outcome is unknown.
  const sockets = new Set<Socket>();
  const silent = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
  });
  const silentPort = await listen(silent);
  t.after(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => silent.close(() => resolve()));
  });
  const unanswered = new GrpcRegistryClient(`${host}:${silentPort}`, 500);
  t.after(() => unanswered.close());
  const unknown = await unanswered.register(ref, {}, 'req-silent');
  assert.equal(unknown.type, 'info', `silent peer: ${JSON.stringify(unknown)}`);
});
