// Goal: a request whose bytes are not a well-formed message of its method's type is refused with INVALID_ARGUMENT
// (docs/grpc.md "Errors") and changes nothing, instead of being read as some other request. Found by the seeded fuzz
// campaign (test/api/grpc/fuzz.test.ts): protobufjs, reading a Node Buffer, clamps a string whose declared length
// runs past the end of the message (so a DeregisterInstance followed by a broken field 1 was served as a
// deregistration in namespace ""), reads invalid UTF-8 as U+FFFD (a service name stored as another name), and reads a
// known field whatever its wire type.
// Method: wireProblem() (src/api/grpc/wire-check.ts) on hand-written encodings, table-driven; then a real gRPC server
// from buildGrpcServer() over the real state machine with a direct proposer, bound on 127.0.1.16 (the fuzz file's
// address, on a free port), called with raw bytes.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { CpRegistry } from '../../../src/cp/cp-registry.ts';
import { RegistryStateMachine } from '../../../src/cp/registry-state-machine.ts';
import { NamingService } from '../../../src/naming/naming-service.ts';
import { buildGrpcServer, listenGrpcServer, shutdownGrpcServer } from '../../../src/api/grpc/server.ts';
import { ClientApiClient } from '../../../src/api/grpc/client.ts';
import { requestTypeOf, wireProblem } from '../../../src/api/grpc/wire-check.ts';
import { DirectProposer } from '../../support/direct-proposer.ts';
import { bytesField, doubleField, utf8, varintField } from '../../support/fuzz.ts';

const Naming = 'cairn.naming.v1.Naming';
const host = '127.0.1.16';

function typeOf(method: string): NonNullable<ReturnType<typeof requestTypeOf>> {
  const type = requestTypeOf(Naming, method);
  assert.ok(type !== null, method);
  return type;
}

/** deregister encodes a DeregisterInstanceRequest for public/DEFAULT_GROUP@@wire, 127.0.5.1:80. */
const deregister = (): number[] => [...bytesField(3, utf8('wire')), ...bytesField(5, utf8('127.0.5.1')), ...varintField(6, 80)];

test('wireProblem accepts well-formed requests, unknown fields included', () => {
  assert.equal(wireProblem(typeOf('DeregisterInstance'), Uint8Array.from(deregister())), null);
  assert.equal(wireProblem(typeOf('DeregisterInstance'), new Uint8Array(0)), null);
  assert.equal(wireProblem(typeOf('DeregisterInstance'), Uint8Array.from([...deregister(), ...varintField(99, 7), ...bytesField(100, [1, 2, 3])])), null);
  const register = [...bytesField(3, utf8('wire')), ...bytesField(4, [...bytesField(1, utf8('127.0.5.1')), ...doubleField(4, 2), ...bytesField(8, [...bytesField(1, utf8('k')), ...bytesField(2, utf8('ü'))])])];
  assert.equal(wireProblem(typeOf('RegisterInstance'), Uint8Array.from(register)), null);
  assert.equal(wireProblem(typeOf('ListInstances'), Uint8Array.from([...bytesField(3, utf8('wire')), ...bytesField(4, utf8('a')), ...bytesField(4, utf8('b'))])), null);
});

test('wireProblem refuses truncations, invalid UTF-8 and wrong wire types, at any depth', () => {
  const cases: Array<[string, string, number[], RegExp]> = [
    ['a string past the end', 'DeregisterInstance', [...deregister(), 0x0a, 0x7f], /namespace declares 127 bytes/],
    ['a length of 2^32 - 1', 'DeregisterInstance', [...deregister(), 0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f], /namespace declares/],
    ['a truncated varint', 'DeregisterInstance', [...deregister(), 0x30, 0xff], /./],
    ['invalid UTF-8', 'DeregisterInstance', [...bytesField(3, [0x77, 0xff]), ...bytesField(5, utf8('127.0.5.1'))], /service is not valid UTF-8/],
    ['a surrogate in UTF-8', 'DeregisterInstance', [...bytesField(3, [0xed, 0xa0, 0x80])], /service is not valid UTF-8/],
    ['a string sent as a varint', 'DeregisterInstance', [...varintField(3, 5)], /service has wire type 0/],
    ['a number sent as bytes', 'DeregisterInstance', [...bytesField(6, [1])], /port has wire type 2/],
    ['field number 0', 'DeregisterInstance', [0x02, 0x00], /numbered 0/],
    ['a nested string past its message', 'RegisterInstance', [...bytesField(3, utf8('wire')), ...bytesField(4, [0x0a, 0x09, ...utf8('127.0.5.1')].slice(0, 6))], /instance/],
    ['invalid UTF-8 in a map value', 'RegisterInstance', [...bytesField(4, bytesField(8, [...bytesField(1, utf8('k')), ...bytesField(2, [0xc3, 0x28])]))], /metadata value is not valid UTF-8/],
    ['a map entry past the end', 'RegisterInstance', [...bytesField(4, [0x42, 0x10, ...bytesField(1, utf8('k'))])], /metadata declares 16 bytes/],
  ];
  for (const [what, method, bytes, expected] of cases) {
    const problem = wireProblem(typeOf(method), Uint8Array.from(bytes));
    assert.ok(problem !== null, `${what}: accepted`);
    assert.match(problem, expected, what);
  }
});

let server: grpc.Server;
let address = '';
let client: ClientApiClient;
let raw: grpc.Client;

before(async () => {
  const stateMachine = new RegistryStateMachine();
  const naming = new NamingService({ cp: new CpRegistry(new DirectProposer(stateMachine), stateMachine) });
  server = buildGrpcServer({ naming, ready: () => true });
  address = `${host}:${await listenGrpcServer(server, host, 0)}`;
  client = new ClientApiClient(address, 5000);
  raw = new grpc.Client(address, grpc.credentials.createInsecure());
});

after(async () => {
  raw.close();
  client.close();
  await shutdownGrpcServer(server, 1000);
});

function rawCall(method: string, bytes: number[]): Promise<{ code: number; cairnCode: unknown; response: Buffer | undefined }> {
  return new Promise((resolve) => {
    raw.makeUnaryRequest(`/${Naming}/${method}`, (b: Buffer) => b, (b: Buffer) => b, Buffer.from(bytes), (error, value) => {
      resolve(error === null ? { code: 0, cairnCode: undefined, response: value } : { code: error.code, cairnCode: error.metadata.get('cairn-error-code')[0], response: undefined });
    });
  });
}

test('a malformed write is INVALID_ARGUMENT and changes nothing', async () => {
  await client.call(Naming, 'RegisterInstance', { service: 'wire', instance: { ip: '127.0.5.1', port: 80 } });
  // Before the check this deregistered 127.0.5.1:80: the broken tail was read as namespace "" (public).
  const truncated = await rawCall('DeregisterInstance', [...bytesField(1, utf8('public')), ...deregister(), 0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]);
  assert.deepEqual([truncated.code, truncated.cairnCode], [grpc.status.INVALID_ARGUMENT, 'CAIRN_INVALID_ARGUMENT']);
  // Before the check this registered an instance in a service named "wire\ufffd".
  const register = [...bytesField(3, [...utf8('wire'), 0xff]), ...bytesField(4, [...bytesField(1, utf8('127.0.5.2')), ...varintField(2, 81)])];
  const invalidUtf8 = await rawCall('RegisterInstance', register);
  assert.deepEqual([invalidUtf8.code, invalidUtf8.cairnCode], [grpc.status.INVALID_ARGUMENT, 'CAIRN_INVALID_ARGUMENT']);
  const list = await client.call(Naming, 'ListInstances', { service: 'wire' });
  assert.deepEqual((list['instances'] as Array<{ ip: string; port: number }>).map((i) => `${i.ip}:${i.port}`), ['127.0.5.1:80']);
  const services = await client.call(Naming, 'ListServices', { group: '*' });
  assert.deepEqual((services['services'] as Array<{ service: string }>).map((s) => s.service), ['wire']);
  // The same request, well formed, still works.
  const removed = await rawCall('DeregisterInstance', deregister());
  assert.equal(removed.code, grpc.status.OK);
});
