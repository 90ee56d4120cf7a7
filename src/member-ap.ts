// member-ap: the AP path's part of the composition root (src/member.ts): the Distro gRPC service added to the peer
// server before it listens, and the Distro node started once the member's metrics registry exists.
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { limits } from './limits.ts';
import { DistroNode } from './ap/distro.ts';
import { distroMetrics } from './ap/metrics.ts';
import { distroService, distroServiceDefinition, GrpcDistroTransport } from './ap/grpc-distro.ts';
import type { PeerServiceRegistration } from './replica/grpc-transport.ts';

/** MemberAp is the AP path of one member: its peer service, then its node. */
export interface MemberAp {
  /** service is the Distro service to add to the peer server (it answers UNAVAILABLE until start). */
  readonly service: PeerServiceRegistration;
  /** start creates and starts the Distro node (the member's EphemeralRegistry). */
  start(registry: Registry): DistroNode;
  /**
   * endSessions ends every gRPC Session of this member with CAIRN_SHUTTING_DOWN, removing nothing (their clients
   * redo them elsewhere), and refuses new ones; the first step of a shutdown, before the gRPC server closes.
   */
  endSessions(): void;
  /** close stops the node and its peer connections. */
  close(): void;
}

/** memberAp prepares the AP path of the member `self` among `members`, listening host `host`. */
export function memberAp(self: string, members: readonly string[], host: string, peerAddressOf: (member: string) => string, logger: Logger, protocolVersion: number): MemberAp {
  let node: DistroNode | null = null;
  let transport: GrpcDistroTransport | null = null;
  const log = logger.child({ component: 'distro' });
  return {
    service: {
      definition: distroServiceDefinition as unknown as PeerServiceRegistration['definition'],
      implementation: distroService(() => node?.handlers ?? null, limits, log),
      protocol: { service: 'distro', version: protocolVersion },
    },
    start(registry) {
      const onEvent = distroMetrics(registry, () => node);
      node = new DistroNode({ self, members: members.length === 0 ? [self] : members, limits, logger: log, onEvent });
      transport = new GrpcDistroTransport({
        self, listenHost: host, peerAddressOf, limits, protocolVersion,
        onChannelReplaced: (member) => {
          onEvent('channel_replaced', 1);
          log.info({ peer: member }, 'distro channel replaced: it stayed unconnected for distroPeerTimeoutMs');
        },
      });
      node.start(transport);
      log.info({ members: node.liveMembers() }, 'distro started');
      return node;
    },
    endSessions() {
      node?.endSessions();
    },
    close() {
      node?.close();
      transport?.close();
    },
  };
}
