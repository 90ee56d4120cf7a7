// Goal: after a partition heals, a member's Distro transport reaches its peer again within a few seconds, not after
// the kernel's SYN retransmissions. During a partition that drops packets (iptables DROP, no "connection refused"),
// the channel's TCP connect hangs in SYN-SENT and its retransmissions come at growing intervals (1, 3, 7, 15, 31 s),
// and grpc-js has no connect timeout; a channel kept after the heal waits for its next SYN. GrpcDistroTransport
// replaces a channel that has not been ready for distroPeerTimeoutMs (2 s), as the Raft transport does
// (test/replica/grpc-transport-partition.test.ts). jepsen-like D6 (seed 49200) saw a Distro channel stay unconnected
// for over four minutes after the last partition between two members, whose Raft streams were back.
//
// Method: a real peer server (GrpcPeerTransport with the Distro service) on 127.0.1.82 and a GrpcDistroTransport
// on 127.0.1.81 (this file's own addresses); A sends B a Distro heartbeat whenever the previous one has settled, as a
// member does. The partition is two tagged iptables DROP rules (test/support/iptables.ts) held 16 s, so that a
// hanging connect's next SYN would come ~15 s after the heal; then removed. The test asserts the first heartbeat
// answered after the heal comes within 4 s (one replacement period, a backoff, slack) and that channels were
// replaced, each replacement reported to the member's counter (cairn_ap_channels_replaced_total). The rules are
// removed even when the test fails.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { GrpcDistroTransport, distroService, distroServiceDefinition } from '../../src/ap/grpc-distro.ts';
import { distroMetrics } from '../../src/ap/metrics.ts';
import type { DistroHandlers } from '../../src/ap/transport.ts';
import { limits } from '../../src/limits.ts';
import { GrpcPeerTransport, type PeerServiceRegistration } from '../../src/replica/grpc-transport.ts';
import { distroProtocolVersion } from '../../src/replica/peer-protocol.ts';
import { Partitioner, requireIptables } from '../support/iptables.ts';
import { sleep, waitFor } from '../support/cluster.ts';

const A = '127.0.1.81';
const B = '127.0.1.82';

test('a Distro channel stuck connecting through a partition is replaced: the peer is reached again within seconds of the heal', async (t) => {
  if (!requireIptables(t)) return;
  const partitioner = new Partitioner('grpc-distro-partition');
  t.after(() => partitioner.close());
  const quiet = (): void => undefined;
  let heartbeats = 0;
  // The seam: B's Distro handlers answer heartbeats; nothing else is called in this test.
  const handlers = { onHeartbeat: () => { heartbeats++; } } as unknown as DistroHandlers;
  const server = new GrpcPeerTransport({
    self: B, listenHost: B, listenPort: 0, peerAddressOf: (peer) => `${peer}:1`, limits,
    logger: { info: quiet, warn: quiet, error: quiet },
    services: [{
      definition: distroServiceDefinition as unknown as PeerServiceRegistration['definition'],
      implementation: distroService(() => handlers, limits, { warn: quiet }),
      protocol: { service: 'distro', version: distroProtocolVersion },
    }],
  });
  await server.start({
    onMessage: quiet,
    onForward: () => Promise.resolve({ ok: false, code: 'CAIRN_NOT_LEADER', message: 'not the leader', leaderHint: null }),
    onUnreachable: quiet,
  });
  t.after(() => server.close());
  // Each replacement is reported through onChannelReplaced, which the member turns into a counter (member-ap.ts).
  const registry = new Registry();
  const onEvent = distroMetrics(registry, () => null);
  const replacedFor: string[] = [];
  const client = new GrpcDistroTransport({
    self: A, listenHost: A, peerAddressOf: () => `${B}:${server.port}`, limits,
    onChannelReplaced: (member) => {
      replacedFor.push(member);
      onEvent('channel_replaced', 1);
    },
  });
  t.after(() => client.close());

  let answered = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      try {
        await client.heartbeat(B);
        answered++;
      } catch {
        await sleep(100);
      }
      await sleep(100);
    }
  })();
  t.after(async () => {
    running = false;
    await loop;
  });
  await waitFor(() => answered > 0 && heartbeats > 0, { timeoutMs: 5000, what: 'a heartbeat answered before the partition' });

  partitioner.isolate(A, [B]);
  await sleep(16_000);
  const answeredBeforeHeal = answered;
  partitioner.heal();
  const healedAt = Date.now();
  await waitFor(() => answered > answeredBeforeHeal, { timeoutMs: 30_000, intervalMs: 10, what: 'a heartbeat answered after the heal' });
  const reconnectMs = Date.now() - healedAt;
  t.diagnostic(`reached again ${reconnectMs} ms after the heal; ${client.replacedChannels()} channel(s) replaced`);
  assert.ok(client.replacedChannels() > 0, 'the stuck channel was replaced during the partition');
  assert.ok(reconnectMs < 4000, `reached again ${reconnectMs} ms after the heal (bound: 4000 ms)`);
  assert.equal(replacedFor.length, client.replacedChannels(), 'every replacement was reported');
  assert.ok(replacedFor.every((member) => member === B), `replacements reported for ${replacedFor.join(', ')}`);
  const scraped = await registry.getSingleMetricAsString('cairn_ap_channels_replaced_total');
  assert.match(scraped, new RegExp(`^cairn_ap_channels_replaced_total ${client.replacedChannels()}$`, 'm'));
});
