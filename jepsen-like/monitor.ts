// monitor: who leads. The nemesis asks it for the current leader before targeting "the leader", the 'followers'
// target policy avoids the leader it last saw, and the report counts leader changes and terms (leader churn, A10).
// It polls GET /cairn/v1/cluster on every member every pollIntervalMs; a paused or killed member just does not
// answer.

import { clusterView, type ClusterView } from './client-http.ts';

/** pollIntervalMs is how often every member is asked for its view. */
const pollIntervalMs = 1000;
/** viewTimeoutMs bounds one view request. */
const viewTimeoutMs = 1000;
/** leaderChangesKept bounds the recorded leader changes. */
const leaderChangesKept = 10_000;

/** LeaderChange is a (term, leader) pair seen for the first time, with when it was seen (ns since run start). */
export interface LeaderChange {
  readonly time: number;
  readonly term: number;
  readonly leader: string;
}

/** ClusterMonitor tracks the leader and the terms of a run. */
export class ClusterMonitor {
  private current: string | null = null;
  private firstTerm: number | null = null;
  private lastTerm = 0;
  private readonly changes: LeaderChange[] = [];
  private timer: NodeJS.Timeout | null = null;

  /** constructor: `addrs` are the members' HTTP addresses, `now` the run's clock (ns). */
  constructor(
    private readonly addrs: readonly string[],
    private readonly now: () => number,
  ) {}

  /** start begins polling. */
  start(): void {
    const poll = async (): Promise<void> => {
      await this.findLeader();
      if (this.timer !== null) this.timer = setTimeout(() => void poll(), pollIntervalMs);
    };
    this.timer = setTimeout(() => void poll(), 0);
  }

  /** stop ends polling. */
  stop(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  /** leader is the leader last seen (null when none was). */
  leader(): string | null {
    return this.current;
  }

  /** findLeader asks every member now and returns the leader of the highest term any of them reports. */
  async findLeader(): Promise<string | null> {
    const views = (await Promise.all(this.addrs.map((addr) => clusterView(addr, viewTimeoutMs)))).filter((view): view is ClusterView => view !== null);
    let best: ClusterView | null = null;
    for (const view of views) {
      if (view.leader !== null && (best === null || view.term > best.term)) best = view;
    }
    for (const view of views) this.lastTerm = Math.max(this.lastTerm, view.term);
    if (best === null || best.leader === null) return null;
    this.firstTerm ??= best.term;
    const last = this.changes[this.changes.length - 1];
    if ((last === undefined || last.term !== best.term || last.leader !== best.leader) && this.changes.length < leaderChangesKept) {
      this.changes.push({ time: this.now(), term: best.term, leader: best.leader });
    }
    this.current = best.leader;
    return best.leader;
  }

  /** summary reports the leaders seen and the terms elapsed. */
  summary(): { readonly leaderChanges: number; readonly firstTerm: number | null; readonly lastTerm: number; readonly leaders: readonly LeaderChange[] } {
    return { leaderChanges: Math.max(0, this.changes.length - 1), firstTerm: this.firstTerm, lastTerm: this.lastTerm, leaders: this.changes };
  }
}
