// Goal: a Distro call whose handler throws is answered with the status its error means, not INTERNAL for all:
// a malformed request is INVALID_ARGUMENT, a CairnError leaves with the catalog's gRPC status (docs/errors.md) and
// its code first in the message, and anything else is INTERNAL without its message (a bug's text stays in the
// member's log, with its stack).
// Method: the real Distro service (distroService over raw-bytes definitions) on a grpc-js server on 127.0.1.19, a
// raw grpc-js client sending real encoded requests with the sender metadata; the handlers are stand-ins that throw.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Client, Metadata, Server, ServerCredentials, credentials, status as grpcStatus, type ServiceError, type ServiceDefinition } from '@grpc/grpc-js';
import { distroService, distroServiceDefinition } from '../../src/ap/grpc-distro.ts';
import { encodeChecksums, encodeHeartbeat } from '../../src/ap/distro-codec.ts';
import type { DistroHandlers } from '../../src/ap/transport.ts';
import { CairnError } from '../../src/errors.ts';
import { limits } from '../../src/limits.ts';

const host = '127.0.1.19';

const unused = (): never => {
  throw new Error('not called by this test');
};

test('a Distro handler that throws: INVALID_ARGUMENT for bad bytes, the catalog status for a CairnError, a bare INTERNAL for a bug', async (t) => {
  const warnings: Array<Record<string, unknown>> = [];
  const handlers: DistroHandlers = {
    onHeartbeat: () => {
      throw new CairnError('CAIRN_SHUTTING_DOWN', 'the distro node is closing');
    },
    onSync: unused,
    onVerify: () => {
      throw new TypeError('secret internals: cannot read properties of undefined');
    },
    onPull: unused,
    onSnapshot: unused,
    onForward: unused,
    onForwardBatch: unused,
    onLastBeats: unused,
  };
  const server = new Server();
  server.addService(distroServiceDefinition as unknown as ServiceDefinition, distroService(() => handlers, limits, { warn: (object) => warnings.push(object as Record<string, unknown>) }));
  const port = await new Promise<number>((resolve, reject) => server.bindAsync(`${host}:0`, ServerCredentials.createInsecure(), (error, bound) => (error === null ? resolve(bound) : reject(error))));
  t.after(() => server.forceShutdown());
  const client = new Client(`${host}:${port}`, credentials.createInsecure());
  t.after(() => client.close());

  const call = (method: string, request: Uint8Array): Promise<ServiceError> =>
    new Promise((resolve, reject) => {
      const metadata = new Metadata();
      metadata.set('cairn-from', `${host}:7000`);
      client.makeUnaryRequest<Uint8Array, Buffer>(`/cairn.peer.v1.Distro/${method}`, (value) => Buffer.from(value), (value) => value, request, metadata, { deadline: Date.now() + 5000 }, (error) => {
        if (error === null) reject(new Error(`${method} answered OK`));
        else resolve(error);
      });
    });

  const malformed = await call('Heartbeat', Uint8Array.of(0x0a, 0x7f, 0x41));
  assert.equal(malformed.code, grpcStatus.INVALID_ARGUMENT, malformed.details);
  assert.match(malformed.details, /^CAIRN_INVALID_ARGUMENT: /);

  const closing = await call('Heartbeat', encodeHeartbeat(''));
  assert.equal(closing.code, grpcStatus.UNAVAILABLE, `CAIRN_SHUTTING_DOWN is UNAVAILABLE (retryable), got ${closing.code} ${closing.details}`);
  assert.match(closing.details, /^CAIRN_SHUTTING_DOWN: .*the distro node is closing/);

  const bug = await call('Verify', encodeChecksums([{ key: { namespace: 'public', group: 'DEFAULT_GROUP', service: 'orders' }, checksum: 'c' }]));
  assert.equal(bug.code, grpcStatus.INTERNAL, bug.details);
  assert.match(bug.details, /^CAIRN_INTERNAL: /);
  assert.doesNotMatch(bug.details, /secret internals/, 'a bug\'s message does not leave the member');

  assert.deepEqual(warnings.map((warning) => [warning['method'], warning['code']]), [
    ['Heartbeat', 'CAIRN_INVALID_ARGUMENT'],
    ['Heartbeat', 'CAIRN_SHUTTING_DOWN'],
    ['Verify', 'CAIRN_INTERNAL'],
  ]);
  const logged = String(warnings[2]?.['err']);
  assert.match(logged, /secret internals/, 'the bug is logged');
  assert.match(logged, /grpc-distro-errors\.test\.ts/, 'with its stack');
});
