// distro-nodes: in-process Distro members on a MemoryDistroNetwork for the AP tests, with a count of one member's
// session repairs (`session_reregistered`: a live session registering again an instance it found removed).

import { DistroNode, type DistroLimits } from '../../src/ap/distro.ts';
import type { MemoryDistroNetwork } from '../../src/ap/transport.ts';

/** RepairCount is how many instances the counted member's sessions registered again so far. */
export interface RepairCount {
  repairs: number;
}

/**
 * startNodesCountingRepairs starts one DistroNode per member on `network` and counts the session repairs of
 * `counted` (the first member by default) in the returned count.
 */
export function startNodesCountingRepairs(
  network: MemoryDistroNetwork, members: readonly string[], limits: DistroLimits,
  logger: { info(...args: unknown[]): void; warn(...args: unknown[]): void; error(...args: unknown[]): void },
  counted = members[0],
): { nodes: DistroNode[]; count: RepairCount } {
  const count: RepairCount = { repairs: 0 };
  const nodes = members.map((id) => {
    const onEvent = (event: string, added: number): void => {
      if (id === counted && event === 'session_reregistered') count.repairs += added;
    };
    const node = new DistroNode({ self: id, members, limits, logger, onEvent });
    node.start(network.attach(id, node.handlers));
    return node;
  });
  return { nodes, count };
}
