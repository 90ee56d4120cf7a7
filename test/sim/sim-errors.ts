// The simulator's failure classes. Each maps to a distinct exit code of `npm run sim` (see main.ts): an exception
// from the core or the driver is a crash (1), a broken invariant or a non-linearizable history is a safety failure
// (2), a cluster that does not converge after the faults stop is a liveness failure (3).

/** SafetyViolation is a broken safety invariant or a failed history check (exit code 2). */
export class SafetyViolation extends Error {
  /** invariant names the property that broke, for example "election-safety". */
  readonly invariant: string;

  constructor(invariant: string, message: string) {
    super(`${invariant}: ${message}`);
    this.name = 'SafetyViolation';
    this.invariant = invariant;
  }
}

/** LivenessFailure is a cluster that did not elect a leader and commit a write within the liveness bound (exit code 3). */
export class LivenessFailure extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LivenessFailure';
  }
}

/** SimBoundExceeded is a simulator limit that was hit (events, queue, inbox): a runaway run, reported as a crash. */
export class SimBoundExceeded extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SimBoundExceeded';
  }
}
