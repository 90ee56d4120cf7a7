// targets: the persistent instances this member probes, read from its applied registry state.
//
// A target is an instance whose cluster's checker is not NONE and which this member owns under the committed probe
// assignment (responsibility.ts). Its probe address is the instance's ip and, as Nacos: the instance's port when
// useInstancePort4Check, else the cluster's checkPort; MySQL probes always use the instance's port (NACOS.md §4.1).
//
// The walk is incremental: a service's targets are rebuilt only when its revision (which every change of its
// instances or clusters moves) or the assignment's epoch changed, so a reconcile over an unchanged registry is a
// pass over the service definitions, and unchanged targets keep their object identity.

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
    const configs = new Map<string, ClusterConfig | null>();
    const targets: InstanceTarget[] = [];
    // Unsorted: sorting a large service on every change was as costly as the walk itself.
    for (const instance of view.instancesOf(key)) {
      if (instance.ephemeral) continue;
      let config = configs.get(instance.cluster);
      if (config === undefined) {
        config = view.clusterConfig(key, instance.cluster);
        configs.set(instance.cluster, config);
      }
      // The checker first: a NONE cluster has no targets, and the owner's rendezvous hash (one per member) is the
      // costly part of the walk; for a large service of NONE instances it was ~3% of a member's CPU under writes.
      if (config === null || config.healthChecker.type === 'NONE' || !isOwner(assignment, this.self, instance.ip, instance.port)) continue;
      const target = targetOf(key, instance, config);
      if (target !== null) targets.push(target);
    }
    return targets;
  }
}
