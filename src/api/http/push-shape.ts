// push-shape: the `data` of a Nacos v1 UDP push (reference/NACOS.md §2): the GET /instance/list body of §1.3 for the
// push target's clusters, as the client would have got it by polling. Deviation from Nacos, on purpose: cacheMillis
// stays 3000 (Nacos forces 10000 in pushes), because the npm client polls at the cacheMillis it last received and a
// push target expires 10 s after its last list; at 10000 the poll and the expiry would race.

import type { UdpPushRenderer } from '../../naming/udp-push.ts';
import { v1InstanceListJson } from './shapes.ts';

/** udpPushRenderer renders a push's `data` for one target: the v1 list body of the target's clusters. */
export const udpPushRenderer: UdpPushRenderer = (list, target, nowMs) =>
  v1InstanceListJson(list, {
    group: target.key.group,
    service: target.key.service,
    clusters: target.clustersText,
    env: target.env,
    groupedForClient: target.groupedForClient,
    lastRefTime: nowMs,
  });
