// Goal: the client gRPC port takes at most grpcConnectionsMax connections at once (src/limits.ts): a connection beyond
// the bound is closed at once, counted in cairn_grpc_connections_refused_total and logged at warn at most once per
// connectionRefusalLogIntervalMs (with how many were refused meanwhile), while calls on the connections already open
// go on; when one of them closes, a new connection is accepted again; and the shutdown releases the port. And the
// shutdown through the server's own listener is what it was with grpc-js's bindAsync: the port is released as soon as
// it begins, a call in flight finishes within the grace, and the shutdown ends at the grace if a call is still running.
//
// Method: buildGrpcServer() over the real NamingService and state machine with a direct proposer (no Raft), with
// connectionsMax lowered to 2 and a registry of its own, bound to this file's own loopback address 127.0.1.232 on a
// free port. Each gRPC client is a grpc-js Client with a subchannel pool of its own, so each holds one connection of
// its own; calls are the standard health service's Check. A connection beyond the bound is a raw TCP socket, which
// sends nothing: the server closes it without reading. A call is held in flight by a proposer whose linearizable
// barriers wait for the test (ListInstances reads LINEARIZABLE by default). Nothing sleeps for a fixed time; every
// wait is bounded.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import { buildGrpcServer, connectionsRefusedMetric, listenGrpcServer, shutdownGrpcServer } from '../../../src/api/grpc/server.ts';
import { ClientApiClient, GrpcCallError } from '../../../src/api/grpc/client.ts';
import { CpRegistry } from '../../../src/cp/cp-registry.ts';
import { RegistryStateMachine } from '../../../src/cp/registry-state-machine.ts';
import { NamingService } from '../../../src/naming/naming-service.ts';
import { CappedGrpcServer } from '../../../src/replica/capped-grpc-server.ts';
import { limits } from '../../../src/limits.ts';
import { DirectProposer, createDirectNaming } from '../../support/direct-proposer.ts';
import { closedWithin } from '../../support/sockets.ts';

const host = '127.0.1.232';
const healthCheck = '/grpc.health.v1.Health/Check';
const bytes = (value: Buffer): Buffer => value;

/**
 * healthClient is a gRPC client on a connection of its own (never shared with another client of this file). Its
 * channel reconnects after `reconnectMs` (a client meant to be refused connects once, so the refusals are counted
 * exactly).
 */
function healthClient(address: string, reconnectMs = 50): grpc.Client {
  return new grpc.Client(address, grpc.credentials.createInsecure(), {
    'grpc.use_local_subchannel_pool': 1,
    'grpc.initial_reconnect_backoff_ms': reconnectMs,
    'grpc.max_reconnect_backoff_ms': reconnectMs,
  });
}

/** check calls Health/Check (an empty request: the server as a whole) and resolves with the answer's bytes. */
function check(client: grpc.Client, timeoutMs = 5000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest<Buffer, Buffer>(healthCheck, bytes, bytes, Buffer.alloc(0), { deadline: Date.now() + timeoutMs }, (error, value) => {
      if (error !== null || value === undefined) reject(error ?? new Error('no answer'));
      else resolve(value);
    });
  });
}

/** serving is HealthCheckResponse{status: SERVING} on the wire: field 1, varint 1. */
const serving = Buffer.from([0x08, 0x01]);

/** waitFor polls `condition` every 5 ms and fails after `timeoutMs`. */
async function waitFor(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** refusedCount reads cairn_grpc_connections_refused_total from the registry's exposition. */
async function refusedCount(registry: Registry): Promise<number> {
  const match = new RegExp(`^${connectionsRefusedMetric} (\\d+)$`, 'm').exec(await registry.metrics());
  assert.ok(match !== null, `no ${connectionsRefusedMetric} in the registry`);
  return Number(match[1]);
}

test('connections beyond connectionsMax are closed at once and counted; open ones keep working; a freed slot is taken again; shutdown releases the port', async (t) => {
  const registry = new Registry();
  const warnings: Array<{ fields: Record<string, unknown>; message: string }> = [];
  const errors: Array<Record<string, unknown>> = [];
  const server = buildGrpcServer({
    naming: createDirectNaming().naming,
    ready: () => true,
    connectionsMax: 2,
    metrics: registry,
    logger: { error: (fields) => errors.push(fields), warn: (fields, message) => warnings.push({ fields, message }) },
  });
  assert.ok(server instanceof CappedGrpcServer);
  const port = await listenGrpcServer(server, host, 0);
  const address = `${host}:${port}`;
  const clients: grpc.Client[] = [];
  let shutDown = false;
  t.after(async () => {
    for (const client of clients) client.close();
    if (!shutDown) await shutdownGrpcServer(server, 1000);
  });
  assert.equal(await refusedCount(registry), 0);

  // Two clients fill the bound; each one's call is served on its own connection.
  const first = healthClient(address);
  const second = healthClient(address);
  clients.push(first, second);
  assert.deepEqual(await check(first), serving);
  assert.deepEqual(await check(second), serving);
  assert.equal(server.openConnections, 2);

  // A third connection is closed at once, before it sends a byte, and counted; so is a fourth.
  assert.equal(await closedWithin(host, port, 2000), true, 'the connection beyond the bound was closed by the server');
  assert.equal(await closedWithin(host, port, 2000), true, 'and the next one too');
  assert.equal(await refusedCount(registry), 2);
  // A gRPC client beyond the bound gets no connection, hence no answer (UNAVAILABLE: its one connection failed).
  const third = healthClient(address, 60_000);
  clients.push(third);
  await assert.rejects(check(third, 2000), (error: grpc.ServiceError) => error.code === grpc.status.UNAVAILABLE);
  third.close();
  assert.equal(await refusedCount(registry), 3);
  // The refusals are logged once, at the first; the others wait for the end of the interval (or the shutdown).
  assert.equal(warnings.length, 1, JSON.stringify(warnings));
  assert.equal(warnings[0]?.fields['refused'], 1);
  assert.equal(warnings[0]?.fields['connectionsMax'], 2);
  assert.equal(warnings[0]?.fields['logIntervalMs'], limits.connectionRefusalLogIntervalMs);
  assert.match(warnings[0]?.message ?? '', /gRPC port refused new connections: 2 are open/);

  // The connections already open go on serving calls.
  assert.deepEqual(await check(first), serving);
  assert.deepEqual(await check(second), serving);
  assert.equal(server.openConnections, 2);

  // One closes: its slot is free again, and a new client's connection is accepted and served.
  first.close();
  await waitFor('the closed connection to leave the count', () => server.openConnections === 1);
  const refusedBefore = await refusedCount(registry);
  const fourth = healthClient(address);
  clients.push(fourth);
  assert.deepEqual(await check(fourth), serving);
  assert.equal(server.openConnections, 2);
  assert.equal(await refusedCount(registry), refusedBefore, 'nothing refused while a slot was free');
  assert.deepEqual(await check(second), serving);

  // The shutdown releases the port (a new connection is refused by the kernel) and reports the refusals not yet logged.
  await shutdownGrpcServer(server, 1000);
  shutDown = true;
  const refusedByKernel = await new Promise<boolean>((resolve) => {
    const socket = net.connect({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED'));
  });
  assert.equal(refusedByKernel, true, 'the port was released');
  assert.equal(warnings.length, 2, JSON.stringify(warnings));
  assert.equal(warnings[1]?.fields['refused'], refusedBefore - 1);
  assert.deepEqual(errors, []);
});

/** HeldProposer is a DirectProposer whose linearizable barriers wait until release(). */
class HeldProposer extends DirectProposer {
  private readonly waiting: Array<() => void> = [];
  private released = false;

  /** begun is the number of barriers that have begun (the base class counts those that passed). */
  begun = 0;

  override async linearizableBarrier(...args: Parameters<DirectProposer['linearizableBarrier']>): Promise<void> {
    this.begun++;
    if (!this.released) await new Promise<void>((resolve) => this.waiting.push(resolve));
    return super.linearizableBarrier(...args);
  }

  release(): void {
    this.released = true;
    for (const resolve of this.waiting.splice(0)) resolve();
  }
}

/** heldServer starts a capped server whose reads wait for proposer.release(). */
async function heldServer(): Promise<{ server: grpc.Server; proposer: HeldProposer; port: number }> {
  const stateMachine = new RegistryStateMachine();
  const proposer = new HeldProposer(stateMachine);
  const server = buildGrpcServer({ naming: new NamingService({ cp: new CpRegistry(proposer, stateMachine) }), ready: () => true, connectionsMax: 2 });
  return { server, proposer, port: await listenGrpcServer(server, host, 0) };
}

/** refusedByKernelNow tells whether a new connection to `port` is refused (nothing listens there). */
function refusedByKernelNow(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED'));
  });
}

test('shutdown: the port is released at once, a call in flight finishes within the grace, and the shutdown ends at the grace', async (t) => {
  // Within the grace: the held call is answered after the shutdown began, and the shutdown ends without waiting it out.
  {
    const { server, proposer, port } = await heldServer();
    const client = new ClientApiClient(`${host}:${port}`, 10_000);
    t.after(() => client.close());
    const answer = client.call('cairn.naming.v1.Naming', 'ListInstances', { service: 'held' });
    await waitFor('the call to reach the registry', () => proposer.begun === 1);
    const startedAt = Date.now();
    let shutDown = false;
    const shutdown = shutdownGrpcServer(server, 10_000).then(() => (shutDown = true));
    assert.equal(await refusedByKernelNow(port), true, 'the port is released as soon as the shutdown begins');
    assert.equal(shutDown, false, 'the shutdown waits for the call in flight');
    proposer.release();
    const response = await answer;
    assert.ok(Array.isArray(response['instances']) || response['instances'] === undefined, JSON.stringify(response));
    await shutdown;
    assert.ok(Date.now() - startedAt < 5000, 'the shutdown ended with the call, not at the end of the grace');
  }
  // Past the grace: the shutdown ends at the grace although a call is still held, and that call is cancelled then,
  // not left to its own deadline (10 s here): grpc-js 1.14's forceShutdown does not destroy the sessions when
  // channelz is off, so the capped server destroys the connections itself.
  {
    const { server, proposer, port } = await heldServer();
    const client = new ClientApiClient(`${host}:${port}`, 10_000);
    t.after(() => client.close());
    const answer = client.call('cairn.naming.v1.Naming', 'ListInstances', { service: 'held' }).then(() => null, (error: unknown) => error);
    await waitFor('the call to reach the registry', () => proposer.begun === 1);
    const startedAt = Date.now();
    await shutdownGrpcServer(server, 300);
    const elapsedMs = Date.now() - startedAt;
    assert.ok(elapsedMs >= 250 && elapsedMs < 1400, `the shutdown ended at the grace (${elapsedMs} ms), before the call's deadline`);
    assert.equal(await refusedByKernelNow(port), true);
    const ended = await answer;
    assert.ok(ended instanceof GrpcCallError, 'the held call did not succeed');
    assert.ok(Date.now() - startedAt < 3000, `the held call ended ${Date.now() - startedAt} ms after the shutdown began, not at the grace`);
    proposer.release();
  }
});
