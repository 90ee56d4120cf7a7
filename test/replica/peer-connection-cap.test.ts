// Goal: the peer port takes at most peerConnectionsMax connections at once (src/limits.ts): it is not authenticated,
// so without a bound any caller could open connections until the member ran out of file descriptors or memory. A
// connection beyond the bound is closed at once, counted (the transport's connection_refused event, exported as
// cairn_peer_transport_events_total{event="connection_refused"}) and logged at warn at most once per
// connectionRefusalLogIntervalMs, while the members already connected go on delivering; when one of them goes away, a
// member refused meanwhile gets in on its own retry; and close() releases the port.
//
// Method: transports on this file's own loopback addresses 127.0.1.233 (A, with peerConnectionsMax lowered to 2),
// 127.0.1.234-236 (B, C, D), ports the kernel picks. B and C send A heartbeats, one link (one connection) each, which
// fills A's bound; a raw TCP socket that sends nothing is then closed by A at once, and D's link is refused until C
// closes. Nothing sleeps for a fixed time; every wait is bounded.
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';

import { limits } from '../../src/limits.ts';
import type { Message, NodeId } from '../../src/raft/types.ts';
import { GrpcPeerTransport, type GrpcTransportLimits } from '../../src/replica/grpc-transport.ts';
import { closedWithin } from '../support/sockets.ts';

const A = '127.0.1.233';
const B = '127.0.1.234';
const C = '127.0.1.235';
const D = '127.0.1.236';

/** waitFor polls `condition` every 5 ms and fails after `timeoutMs`. */
async function waitFor(what: string, condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

interface Started {
  readonly transport: GrpcPeerTransport;
  readonly received: Message[];
  readonly warnings: Array<{ fields: Record<string, unknown>; message: string }>;
}

async function start(self: NodeId, ports: Map<NodeId, number>, transportLimits: GrpcTransportLimits = limits): Promise<Started> {
  const received: Message[] = [];
  const warnings: Started['warnings'] = [];
  const quiet = (): void => undefined;
  const transport = new GrpcPeerTransport({
    self,
    listenHost: self,
    listenPort: 0,
    peerAddressOf: (peer) => `${peer}:${ports.get(peer) ?? 1}`,
    limits: transportLimits,
    logger: { info: quiet, warn: (fields, message) => warnings.push({ fields: fields as Record<string, unknown>, message }), error: quiet },
  });
  await transport.start({
    onMessage: (message) => received.push(message),
    onForward: () => Promise.resolve({ ok: false, code: 'CAIRN_NOT_LEADER', message: 'not the leader', leaderHint: null }),
    onUnreachable: () => undefined,
  });
  ports.set(self, transport.port);
  return { transport, received, warnings };
}

function fromCount(received: readonly Message[], from: NodeId): number {
  return received.filter((message) => message.from === from).length;
}

test('the peer port closes connections beyond peerConnectionsMax at once and counts them; connected members go on; a freed slot is taken again', async (t) => {
  const ports = new Map<NodeId, number>();
  const a = await start(A, ports, { ...limits, peerConnectionsMax: 2 });
  const b = await start(B, ports);
  const c = await start(C, ports);
  const d = await start(D, ports);
  const closed = new Set<Started>();
  const close = async (member: Started): Promise<void> => {
    if (closed.has(member)) return;
    closed.add(member);
    await member.transport.close();
  };
  t.after(() => Promise.all([a, b, c, d].map(close)));
  for (const member of [b, c, d]) member.transport.setPeers([A, B, C, D]);
  let sequence = 0;
  const heartbeat = (from: NodeId): void => {
    sequence += 1;
    const member = from === B ? b : from === C ? c : d;
    member.transport.send({ type: 'HeartbeatRequest', from, to: A, term: 1, commit: sequence, readRound: sequence });
  };

  // B and C reach A, one connection each: A's bound is full.
  heartbeat(B);
  heartbeat(C);
  await waitFor('B and C to reach A', () => fromCount(a.received, B) === 1 && fromCount(a.received, C) === 1);
  assert.equal(a.transport.counters().connection_refused, 0);

  // A third connection is closed at once, before it sends a byte, counted and logged.
  assert.equal(await closedWithin(A, a.transport.port, 2000), true, 'the connection beyond the bound was closed by A');
  assert.equal(a.transport.counters().connection_refused, 1);
  assert.equal(a.warnings.length, 1, JSON.stringify(a.warnings));
  assert.equal(a.warnings[0]?.fields['listener'], 'peer');
  assert.equal(a.warnings[0]?.fields['refused'], 1);
  assert.match(a.warnings[0]?.message ?? '', /peer port refused new connections: 2 are open/);

  // D's link is refused too (its stream fails and retries with backoff); A hears nothing from it.
  heartbeat(D);
  await waitFor('D\'s connection to be refused', () => a.transport.counters().connection_refused >= 2 && d.transport.counters().stream_failed >= 1);
  assert.equal(fromCount(a.received, D), 0);
  // Further refusals within the interval are not logged one by one.
  assert.equal(a.warnings.length, 1, JSON.stringify(a.warnings));

  // B and C, connected before, go on delivering.
  heartbeat(B);
  heartbeat(C);
  await waitFor('B and C to deliver again', () => fromCount(a.received, B) === 2 && fromCount(a.received, C) === 2);

  // C goes away: its slot is free, and D gets in on its own retry (its queued heartbeat arrives).
  await close(c);
  await waitFor('D to reach A once C is gone', () => fromCount(a.received, D) === 1);
  heartbeat(B);
  await waitFor('B to deliver beside D', () => fromCount(a.received, B) === 3);

  // close() releases the port: a new connection is refused by the kernel.
  const port = a.transport.port;
  await close(a);
  const refusedByKernel = await new Promise<boolean>((resolve) => {
    const socket = net.connect({ host: A, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED'));
  });
  assert.equal(refusedByKernel, true, 'the peer port was released');
});
