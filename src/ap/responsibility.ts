// responsibility: which member is responsible for a service's ephemeral instances (DESIGN.md "The AP path",
// NACOS.md §6). The key is the namespace and the grouped service name; the member is a stable hash of the key over
// the sorted live members, so every member that sees the same live set picks the same one, and a partition's
// sides each pick among their own members (both keep serving). Pure.

import { fnv1a32 } from './version.ts';

/** serviceIdOf is the store's key of a service: namespace, group and name joined by NUL (never inside a valid name). */
export function serviceIdOf(namespace: string, group: string, service: string): string {
  return `${namespace}\u0000${group}@@${service}`;
}

/**
 * responsibleMember picks the member responsible for `serviceId` among `sortedLive` (sorted, non-empty): the key's
 * hash modulo the member count, Nacos's DistroMapper rule. A rendezvous hash would move fewer keys when the set
 * changes, but every member holds every key anyway (Nacos's reasoning), so a move costs only the takeover grace.
 */
export function responsibleMember(serviceId: string, sortedLive: readonly string[]): string {
  const count = sortedLive.length;
  if (count === 0) throw new Error('responsibleMember: no live member');
  const chosen = sortedLive[fnv1a32(serviceId) % count];
  if (chosen === undefined) throw new Error('responsibleMember: index out of range');
  return chosen;
}
