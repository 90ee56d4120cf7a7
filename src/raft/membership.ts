// Membership: single-member configuration changes (Raft thesis §4.1) and quorum arithmetic.
import type { Membership, MembershipChange, NodeId } from './types.ts';

/** validateChange returns why `change` cannot apply to `membership`, or null when it can. */
export function validateChange(membership: Membership, change: MembershipChange): string | null {
  const isVoter = membership.voters.includes(change.node);
  const isLearner = membership.learners.includes(change.node);
  switch (change.type) {
    case 'add-learner':
      return isVoter || isLearner ? `${change.node} is already a member` : null;
    case 'promote':
      return isLearner ? null : `${change.node} is not a learner`;
    case 'remove':
      if (!isVoter && !isLearner) return `${change.node} is not a member`;
      if (isVoter && membership.voters.length === 1) return `${change.node} is the last voter`;
      return null;
  }
}

/** applyChange returns the membership after `change`; the change must be valid (see validateChange). */
export function applyChange(membership: Membership, change: MembershipChange): Membership {
  switch (change.type) {
    case 'add-learner':
      return { voters: membership.voters, learners: [...membership.learners, change.node] };
    case 'promote':
      return {
        voters: [...membership.voters, change.node],
        learners: membership.learners.filter((n) => n !== change.node),
      };
    case 'remove':
      return {
        voters: membership.voters.filter((n) => n !== change.node),
        learners: membership.learners.filter((n) => n !== change.node),
      };
  }
}

/** quorumSize is the number of voters that form a majority. */
export function quorumSize(voters: readonly NodeId[]): number {
  return Math.floor(voters.length / 2) + 1;
}

/**
 * quorumValue returns the largest value v such that a majority of voters report a value >= v: the commit index
 * of a list of match indexes, or the confirmed round of a list of acknowledged read rounds.
 */
export function quorumValue(voters: readonly NodeId[], valueOf: (voter: NodeId) => number): number {
  if (voters.length === 0) return 0;
  const values = voters.map(valueOf).sort((a, b) => b - a);
  return values[quorumSize(voters) - 1] ?? 0;
}

/** membersOf lists every member, voters first. */
export function membersOf(membership: Membership): NodeId[] {
  return [...membership.voters, ...membership.learners];
}
