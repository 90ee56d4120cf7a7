// responsibility: which member probes which persistent instance (DESIGN.md "Active health checks", NACOS.md §4.4).
//
// Decision: "live" is the LEADER's view, committed through Raft. Only the leader knows who is up (it hears from every
// voter on every heartbeat round; a follower hears only from the leader), so each member's own view would disagree
// and either leave instances unprobed or probe them twice. The leader proposes its view as AssignProbers: itself and
// every voter it heard from within an election timeout (Progress.recentActive), sorted. The committed assignment is
// the same on every member, and so is the owner of each instance: probeOwner (rendezvous hashing of ip:port over
// the assignment's members, src/cp/probe-assignment.ts). The state machine applies a verdict only from the owner
// under the assignment in force, so a prober whose share moved away (it was partitioned, or presumed dead) cannot
// commit what it saw before the move.
//
// Shares move when the view changes: a member that stops answering loses its share after electionTicks plus
// settleMs (the candidate view must hold that long, so a slow heartbeat or a fresh leader's first round does not
// move shares back and forth); a member that comes back regains its share the same way. Learners never probe.

import type { RaftStatus } from '../raft/raft-core.ts';
import { probeOwner, sameMembers, type ProbeAssignment } from '../cp/probe-assignment.ts';

/** liveVoters is the leader's view of who is up: itself and the voters it heard from recently, sorted. */
export function liveVoters(status: RaftStatus): string[] {
  const live = new Set<string>();
  for (const voter of status.membership.voters) {
    if (voter === status.id || status.progress[voter]?.recentActive === true) live.add(voter);
  }
  if (status.membership.voters.includes(status.id)) live.add(status.id);
  return [...live].sort();
}

/** isOwner tells whether `self` probes ip:port under `assignment` (never without one). */
export function isOwner(assignment: ProbeAssignment | null, self: string, ip: string, port: number): boolean {
  return assignment !== null && assignment.members.includes(self) && probeOwner(assignment.members, ip, port) === self;
}

/** ProbeAssignerOptions: how long a changed view must hold before it is proposed, and the retry delay after a failed proposal. */
export interface ProbeAssignerOptions {
  readonly settleMs: number;
  readonly retryMs: number;
}

/**
 * ProbeAssigner decides, on the leader, when to propose a new assignment: when the live view differs from the
 * committed one and has held for settleMs, with at most one proposal in flight.
 */
export class ProbeAssigner {
  private readonly options: ProbeAssignerOptions;
  private candidate: readonly string[] | null = null;
  private candidateSince = 0;
  private inFlight = false;
  private notBefore = 0;

  constructor(options: ProbeAssignerOptions) {
    this.options = options;
  }

  /** decide returns the members to propose now, or null (not the leader, nothing changed, still settling, busy). */
  decide(status: RaftStatus, committed: ProbeAssignment | null, nowMs: number): readonly string[] | null {
    if (status.role !== 'leader' || this.inFlight || nowMs < this.notBefore) return null;
    const live = liveVoters(status);
    if (live.length === 0 || (committed !== null && sameMembers(committed.members, live))) {
      this.candidate = null;
      return null;
    }
    if (this.candidate === null || !sameMembers(this.candidate, live)) {
      this.candidate = live;
      this.candidateSince = nowMs;
    }
    if (nowMs - this.candidateSince < this.options.settleMs) return null;
    this.inFlight = true;
    return live;
  }

  /** settled records the end of a proposal; after a failure the next one waits retryMs. */
  settled(ok: boolean, nowMs: number): void {
    this.inFlight = false;
    if (!ok) this.notBefore = nowMs + this.options.retryMs;
  }
}
