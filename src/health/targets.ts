// targets: the persistent instances this member probes, read from its applied registry state.
//
// A target is an instance whose cluster's checker is not NONE and which this member owns under the committed probe
// assignment (responsibility.ts). Its probe address is the instance's ip and, as Nacos: the instance's port when
// useInstancePort4Check, else the cluster's checkPort; MySQL probes always use the instance's port (NACOS.md §4.1).
//
// The walk is incremental: a service's targets are rebuilt only when its revision (which every change of its
// instances or clusters moves) or the assignment's epoch changed, so a reconcile over an unchanged registry is a
// pass over the service definitions, and unchanged targets keep their object identity. A rebuild looks at the
// service's clusters first and walks its instances only when one of them is actively checked: a service whose
// instances all sit in NONE clusters costs a look at its clusters, however large it is. (Before 2026-11-24 every write
// to such a service made the next reconcile walk all of its instances: at 125 000 persistent instances under 2 500
// writes/s that was 6% of the leader's CPU, growing with the registry; bench/README.md, session 23.)

import { ALL_GROUPS, type RegistryView } from '../cp/registry-state-machine.ts';
import type { ProbeAssignment } from '../cp/probe-assignment.ts';
import type { InstanceAddress } from '../cp/commands.ts';
import type { ClusterConfig, Instance, ServiceKey } from '../naming/model.ts';
import { isOwner } from './responsibility.ts';
import type { ProbeTarget } from './probe.ts';

/** InstanceTarget is a ProbeTarget with the instance it stands for (for the verdict and the committed health). */
export interface InstanceTarget extends ProbeTarget {
  readonly key: ServiceKey;
  readonly address: InstanceAddress;
}

/** targetId is an instance's target id: namespace, group, service, cluster, ip and port joined by NUL. */
export function targetId(key: ServiceKey, address: InstanceAddress): string {
  return [key.namespace, key.group, key.service, address.cluster, address.ip, String(address.port)].join('\u0000');
}

/** probePort is the port a cluster's checker probes for an instance. */
export function probePort(config: ClusterConfig, instancePort: number): number {
  if (config.healthChecker.type === 'MYSQL' || config.useInstancePort4Check) return instancePort;
  return config.checkPort;
}

/** targetOf builds an instance's target, or null when its cluster is not actively checked. */
export function targetOf(key: ServiceKey, instance: Instance, config: ClusterConfig): InstanceTarget | null {
  const checker = config.healthChecker;
  if (checker.type === 'NONE') return null;
  const address: InstanceAddress = { cluster: instance.cluster, ip: instance.ip, port: instance.port };
  return Object.freeze({ id: targetId(key, address), host: instance.ip, port: probePort(config, instance.port), checker, key, address });
}

interface ServiceTargets {
  readonly revision: number;
  readonly epoch: number;
  readonly targets: readonly InstanceTarget[];
}

/** TargetCatalog computes this member's targets from the registry, incrementally per service. */
export class TargetCatalog {
  private readonly self: string;
  private readonly byService = new Map<string, ServiceTargets>();

  constructor(self: string) {
    this.self = self;
  }

  /** collect returns every target this member owns under `assignment`, by id. */
  collect(view: RegistryView, assignment: ProbeAssignment | null): Map<string, InstanceTarget> {
    const targets = new Map<string, InstanceTarget>();
    const seen = new Set<string>();
    const epoch = assignment?.epoch ?? 0;
    for (const namespace of view.namespaces()) {
      for (const definition of view.services(namespace, ALL_GROUPS)) {
        const key: ServiceKey = { namespace, group: definition.group, service: definition.name };
        const cacheKey = `${namespace}\u0000${definition.group}\u0000${definition.name}`;
        seen.add(cacheKey);
        let cached = this.byService.get(cacheKey);
        if (cached === undefined || cached.revision !== definition.revision || cached.epoch !== epoch) {
          cached = { revision: definition.revision, epoch, targets: this.serviceTargets(view, key, assignment) };
          this.byService.set(cacheKey, cached);
        }
        for (const target of cached.targets) targets.set(target.id, target);
      }
    }
    for (const cacheKey of [...this.byService.keys()]) if (!seen.has(cacheKey)) this.byService.delete(cacheKey);
    return targets;
  }

  private serviceTargets(view: RegistryView, key: ServiceKey, assignment: ProbeAssignment | null): InstanceTarget[] {
    // The checked clusters first: a cluster with the checker NONE has no targets.
    const checked = new Map<string, ClusterConfig>();
    for (const cluster of view.instanceClusters(key)) {
      const config = view.clusterConfig(key, cluster);
      if (config !== null && config.healthChecker.type !== 'NONE') checked.set(cluster, config);
    }
    const targets: InstanceTarget[] = [];
    if (checked.size === 0) return targets;
    // Unsorted: sorting a large service on every change was as costly as the walk itself.
    for (const instance of view.instancesOf(key)) {
      if (instance.ephemeral) continue;
      const config = checked.get(instance.cluster);
      // The owner's rendezvous hash (one per member) is the costly part of the walk: only for checked instances.
      if (config === undefined || !isOwner(assignment, this.self, instance.ip, instance.port)) continue;
      const target = targetOf(key, instance, config);
      if (target !== null) targets.push(target);
    }
    return targets;
  }
}
