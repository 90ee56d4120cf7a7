// probe-assignment: who probes which persistent instance (DESIGN.md "Active health checks"). The leader commits its
// view of the live voters as a ProbeAssignment (AssignProbers); every member reads the same committed assignment and
// computes the same owner for every instance with probeOwner(). The state machine uses the same function to refuse
// a verdict from a prober that does not own the instance, so ownership is decided once, in the log.
//
// Owner = rendezvous (highest-random-weight) hashing of `ip:port` over the assignment's members: each member scores
// hash(member, ip:port) and the highest score wins. Like Nacos's `hash % servers.size()` it spreads instances evenly
// over the sorted live members; unlike it, when a member leaves only that member's instances move (1/n of them),
// and when one joins it takes about 1/(n+1) from each, so a membership change is not a probe storm. The hash is
// FNV-1a over UTF-16 code units with murmur3's 32-bit finaliser: pure, fast and identical on every member.

import { assert } from '../assert.ts';

/** ProbeAssignment is the committed assignment: its epoch (the log index that set it), members and proposer's term. */
export interface ProbeAssignment {
  /** epoch is the log index of the AssignProbers entry that set this assignment; it only grows. */
  readonly epoch: number;
  /** members are sorted, distinct and non-empty. */
  readonly members: readonly string[];
  readonly term: number;
}

/** PROBE_MEMBERS_MAX bounds an assignment's members: probers are the live voters (the CLI allows at most 7). */
export const PROBE_MEMBERS_MAX = 64;

/** probeTargetKey is the string an instance is hashed by: `ip:port` (Nacos 2.x's persistent-client tag). */
export function probeTargetKey(ip: string, port: number): string {
  return `${ip}:${port}`;
}

function mix(text: string, seed: number): number {
  let hash = seed >>> 0;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  // murmur3 fmix32: FNV alone barely separates strings that differ in their last characters.
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b) >>> 0;
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35) >>> 0;
  hash ^= hash >>> 16;
  return hash >>> 0;
}

/** rendezvousScore is a member's score for a target key; the highest score owns the target. */
export function rendezvousScore(member: string, targetKey: string): number {
  return mix(targetKey, mix(member, 0x811c9dc5));
}

/** probeOwner returns the member responsible for probing `ip:port` among `members` (sorted, distinct), or null when empty. */
export function probeOwner(members: readonly string[], ip: string, port: number): string | null {
  const key = probeTargetKey(ip, port);
  let owner: string | null = null;
  let best = -1;
  // Members are sorted, so a tie (equal scores) is broken the same way everywhere: the first in order wins.
  for (const member of members) {
    const score = rendezvousScore(member, key);
    if (score > best) {
      best = score;
      owner = member;
    }
  }
  return owner;
}

/** sameMembers tells whether two sorted member lists are equal. */
export function sameMembers(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((member, i) => member === b[i]);
}

/** assertSortedMembers asserts that a member list is sorted, distinct and within PROBE_MEMBERS_MAX. */
export function assertSortedMembers(members: readonly string[]): void {
  assert(members.length <= PROBE_MEMBERS_MAX, `probe members: ${members.length} > ${PROBE_MEMBERS_MAX}`);
  for (let i = 1; i < members.length; i++) {
    const previous = members[i - 1] ?? '';
    const current = members[i] ?? '';
    assert(previous < current, 'probe members must be sorted and distinct');
  }
}
