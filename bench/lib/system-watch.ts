// SystemWatch keeps the systems of one bench run from spoiling each other's cells. All three clusters run during the
// whole bench, so a system that stops serving and spins instead (seen on 2026-11-24: a ZooKeeper ensemble that lost
// its quorum in the `beat` cells, two of its servers reloading their database in a loop at ~90% of a core each) took
// the CPU of every later cell of the other systems, and those cells measured the machine, not the system.
//
// After every cell the bench asks each running system whether it serves (RunningCluster.unhealthy). One that does not
// gets recoveryMs to come back (nothing is measured meanwhile); one that does not come back is stopped, and its
// remaining cells say why they were not measured. The cells' own record of what the others used is the runner's
// bystanderCores.

/** WatchedSystem is the part of a RunningCluster the watch uses. */
export interface WatchedSystem {
  readonly system: string;
  unhealthy(): Promise<string | null>;
  stop(): Promise<void>;
}

/** WatchEvent is what a check found about one system: it came back within the wait, or it was stopped. */
export interface WatchEvent {
  readonly system: string;
  readonly outcome: 'recovered' | 'stopped';
  readonly detail: string;
}

/** WatchOptions: how long an unhealthy system may take to serve again, and how often it is asked meanwhile. */
export interface WatchOptions {
  readonly recoveryMs: number;
  readonly pollMs: number;
}

/** recoveryMsDefault: a ZooKeeper or etcd election takes seconds; an ensemble reloading its data for longer is stopped. */
export const recoveryMsDefault = 30_000;

/** SystemWatch tracks which systems still run, and stops one that no longer serves (see the file comment). */
export class SystemWatch<System extends WatchedSystem> {
  private readonly stoppedReasons = new Map<string, string>();

  constructor(private readonly systems: readonly System[], private readonly options: WatchOptions = { recoveryMs: recoveryMsDefault, pollMs: 1000 }) {}

  /** stoppedReason says why `system` was stopped, or null while it runs. */
  stoppedReason(system: string): string | null {
    return this.stoppedReasons.get(system) ?? null;
  }

  /** running lists the systems not stopped, in their order. */
  running(): System[] {
    return this.systems.filter((system) => !this.stoppedReasons.has(system.system));
  }

  /** check asks every running system whether it serves, after the cell `after`; returns what it found (usually nothing). */
  async check(after: string): Promise<WatchEvent[]> {
    const events: WatchEvent[] = [];
    for (const system of this.running()) {
      const problem = await this.askSafely(system);
      if (problem === null) continue;
      const started = performance.now();
      let last: string | null = problem;
      let lastProblem = problem;
      // Bounded by recoveryMs: one question per pollMs.
      while (last !== null && performance.now() - started < this.options.recoveryMs) {
        await new Promise((resolve) => setTimeout(resolve, this.options.pollMs));
        last = await this.askSafely(system);
        if (last !== null) lastProblem = last;
      }
      const waitedSeconds = ((performance.now() - started) / 1000).toFixed(1);
      if (last === null) {
        events.push({ system: system.system, outcome: 'recovered', detail: `did not serve after ${after} (${problem}); served again after ${waitedSeconds} s` });
        continue;
      }
      const reason = `stopped after ${after}: it did not serve for ${waitedSeconds} s (${lastProblem}), and a system that does not serve may spin and take the CPU of the other systems' cells`;
      this.stoppedReasons.set(system.system, reason);
      await system.stop();
      events.push({ system: system.system, outcome: 'stopped', detail: reason });
    }
    return events;
  }

  private async askSafely(system: System): Promise<string | null> {
    try {
      return await system.unhealthy();
    } catch (error) {
      return error instanceof Error ? error.message : String(error);
    }
  }
}
