// LivenessProbe: the liveness phase's check. Once faults stop, a leader of the current membership must appear and a
// new write (the probe, on a key no client uses) must commit and be applied on every member of that membership, all
// within livenessBoundMs of simulated time. The probe is re-proposed whenever the leader it went to loses its term
// before the probe committed.
import type { NodeId } from '../../src/raft/types.ts';
import { encodeCommand } from './kv-state-machine.ts';
import type { SafetyLedger } from './ledger.ts';
import { describeMembership, type NodeDriver } from './node-driver.ts';
import { LivenessFailure } from './sim-errors.ts';
import { livenessBoundMs, livenessProbeIntervalMs } from './sim-limits.ts';

/** ProbeWorld is what the probe needs from the simulation. */
export interface ProbeWorld {
  readonly drivers: readonly NodeDriver[];
  readonly ledger: SafetyLedger;
  leader(): NodeDriver | undefined;
  note(text: string): void;
}

interface ProbeWrite {
  readonly node: NodeDriver;
  readonly incarnation: number;
  readonly index: number;
  readonly term: number;
}

/** probeKey is the key of the probe writes; the clients never touch it. */
export const probeKey = '__probe';

/** LivenessProbe proposes probe writes and decides when the cluster has converged. */
export class LivenessProbe {
  /** intervalMs is how often check() should run. */
  readonly intervalMs = livenessProbeIntervalMs;
  private readonly world: ProbeWorld;
  private deadlineMs = Number.POSITIVE_INFINITY;
  private write: ProbeWrite | null = null;
  private attempts = 0;

  constructor(world: ProbeWorld) {
    this.world = world;
  }

  /** start begins the liveness bound at `nowMs`. */
  start(nowMs: number): void {
    this.deadlineMs = nowMs + livenessBoundMs;
  }

  /** check returns true once the probe is applied on every member; throws LivenessFailure past the deadline. */
  check(nowMs: number): boolean {
    const write = this.write;
    if (write !== null && this.appliedEverywhere(write)) {
      this.world.note(`liveness: probe ${write.index}/${write.term} applied on every member of ${write.node.id}'s membership`);
      return true;
    }
    if (nowMs > this.deadlineMs) throw new LivenessFailure(this.describeFailure());
    if (write === null || this.abandoned(write)) this.propose();
    return false;
  }

  private abandoned(write: ProbeWrite): boolean {
    const committed = this.world.ledger.committed.get(write.index);
    if (committed !== undefined) return committed.term !== write.term;
    const core = write.node.core;
    return core === null || write.node.incarnation !== write.incarnation || core.role !== 'leader' || core.term !== write.term;
  }

  private propose(): void {
    this.write = null;
    const leader = this.world.leader();
    const core = leader?.core;
    if (leader === undefined || core === undefined || core === null || !core.membership.voters.includes(leader.id)) return;
    const result = core.propose([encodeCommand({ key: probeKey, value: `probe-${this.attempts++}` })]);
    if (!result.ok) {
      this.world.note(`liveness: ${leader.id} refuses the probe: ${result.code}`);
      return;
    }
    this.write = { node: leader, incarnation: leader.incarnation, index: result.firstIndex, term: result.term };
    this.world.note(`liveness: probe proposed on ${leader.id} at ${result.firstIndex}/${result.term}`);
    leader.pump();
  }

  private appliedEverywhere(write: ProbeWrite): boolean {
    const committed = this.world.ledger.committed.get(write.index);
    if (committed === undefined || committed.term !== write.term) return false;
    // The current leader's membership counts; the probe's own leader may have been removed since.
    const core = this.world.leader()?.core ?? write.node.core;
    if (core === null || core === undefined) return false;
    const members: NodeId[] = [...core.membership.voters, ...core.membership.learners];
    return members.every((id) => {
      const driver = this.world.drivers.find((candidate) => candidate.id === id);
      return driver !== undefined && driver.up && driver.disk.stateMachine.appliedIndex >= write.index;
    });
  }

  private describeFailure(): string {
    const lines = [`no convergence within ${livenessBoundMs} ms of healing (probe attempts: ${this.attempts})`];
    const write = this.write;
    if (write !== null) lines.push(`probe at ${write.index}/${write.term} on ${write.node.id}`);
    for (const driver of this.world.drivers) {
      if (!driver.started) continue;
      const core = driver.core;
      const state =
        core === null
          ? `down${driver.retired ? ' (retired)' : ''}`
          : `${core.role} term ${core.term} leader ${String(core.leader)} commit ${core.commitIndex} applied ${core.appliedIndex} ` +
            `last ${core.lastIndex} snapshot ${core.snapshotIndex}; ${describeMembership(core.membership)}`;
      lines.push(`  ${driver.id}: ${state}`);
    }
    return lines.join('\n');
  }
}
