// SimStats: the counters behind the one-line summary of `npm run sim`.

/** SimStats counts a run's (or many runs') events, elections, commits and injected faults by kind. */
export class SimStats {
  events = 0;
  elections = 0;
  commits = 0;
  compactions = 0;
  /** snapshotRestores counts snapshots received from a leader and restored (InstallSnapshot, Raft §7). */
  snapshotRestores = 0;
  /** membershipCommitted counts committed membership changes (first sighting of each). */
  membershipCommitted = 0;
  okWrites = 0;
  okReads = 0;
  unknownOps = 0;
  /** checkerStepsMax is the most linearizability-checker steps any one key needed (its budget is checkerStepsMax). */
  checkerStepsMax = 0;
  readonly faults = new Map<string, number>();

  /** countFault adds one injected fault of `kind`. */
  countFault(kind: string, count = 1): void {
    this.faults.set(kind, (this.faults.get(kind) ?? 0) + count);
  }

  /** add folds another run's counters into these. */
  add(other: SimStats): void {
    this.events += other.events;
    this.elections += other.elections;
    this.commits += other.commits;
    this.compactions += other.compactions;
    this.snapshotRestores += other.snapshotRestores;
    this.membershipCommitted += other.membershipCommitted;
    this.okWrites += other.okWrites;
    this.okReads += other.okReads;
    this.unknownOps += other.unknownOps;
    this.checkerStepsMax = Math.max(this.checkerStepsMax, other.checkerStepsMax);
    for (const [kind, count] of other.faults) this.countFault(kind, count);
  }

  /** faultSummary lists the fault counts sorted by kind, e.g. "crash=3 message-loss=120". */
  faultSummary(): string {
    const kinds = [...this.faults.keys()].sort();
    return kinds.map((kind) => `${kind}=${this.faults.get(kind) ?? 0}`).join(' ');
  }
}
