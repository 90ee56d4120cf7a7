// SafetyMonitor: runs the invariants of invariants.ts at the right moments — after every event for every running
// member (cheap O(1) checks plus the entries newly committed), on every Ready (log matching of the new entries), on
// every sync, send, apply and snapshot restore, a full scan of every in-memory log every few hundred events, and the
// end-of-run comparison of the replicas' state machines.
//
// Three of the checks are direct checks of a protocol rule rather than of its consequences: durable-before-send and
// must-sync (Raft Figure 2; the Ready contract) and commit-current-term (Raft §5.4.2). They can be switched off (end-to-end mode) to show that the
// consequence checks (election safety, committed entries never change, linearizability...) catch the same bugs.
import type { Entry, HardState, Message, Ready, Snapshot } from '../../src/raft/types.ts';
import { hashBytes } from './hash.ts';
import {
  checkAckedWrite,
  checkAppliedEntry,
  checkCommitProgress,
  checkCoreBounds,
  checkDurableBeforeSend,
  checkDurableCommit,
  checkDurableHardState,
  checkElectionSafety,
  checkInMemoryLog,
  checkLeaderAppendOnly,
  checkLeaderCommitsCurrentTerm,
  checkLeaderCompleteness,
  checkLogMatching,
  checkMustSync,
  checkSnapshotRestore,
  checkTermMonotonic,
  recordStateDigest,
} from './invariants.ts';
import { SafetyLedger } from './ledger.ts';
import type { NodeDriver } from './node-driver.ts';
import { fullLogScanEventsInterval } from './sim-limits.ts';
import type { SimStats } from './stats.ts';

/** SafetyMonitor holds the ledger and calls the invariants. */
export class SafetyMonitor {
  readonly ledger: SafetyLedger;
  private readonly stats: SimStats;
  private readonly directChecks: boolean;
  private readonly onNewLeader: (node: NodeDriver) => void;
  private eventsSinceScan = 0;

  constructor(nodeCount: number, stats: SimStats, directChecks: boolean, onNewLeader: (node: NodeDriver) => void) {
    this.ledger = new SafetyLedger(nodeCount);
    this.stats = stats;
    this.directChecks = directChecks;
    this.onNewLeader = onNewLeader;
  }

  /** afterEvent checks every running member after one simulator event. */
  afterEvent(drivers: readonly NodeDriver[]): void {
    for (const driver of drivers) this.checkNode(driver);
    if (++this.eventsSinceScan >= fullLogScanEventsInterval) this.fullScan(drivers);
  }

  private checkNode(driver: NodeDriver): void {
    const core = driver.core;
    if (core === null) return;
    const observation = this.ledger.observation(driver.index);
    if (observation.incarnation !== driver.incarnation) {
      // A restarted member starts over from its disk: its volatile term and commit index may legitimately be lower.
      observation.incarnation = driver.incarnation;
      observation.term = core.term;
      observation.commit = 0;
      observation.leaderTerm = 0;
    }
    checkCoreBounds(core);
    checkTermMonotonic(observation, core);
    // A leader counts once its own term and self-vote are durable. Until then it is a leader only in memory: the
    // Ready that made it one must sync before any of its messages leave (its term and vote changed), so a crash
    // before that sync leaves no trace of it. With a single voter this window is real: the voter wins at once, and
    // after such a crash it may vote for another candidate of the same term (seed 5101 under early leader sends).
    const durable = driver.disk.hardState;
    if (durable.term === core.term && durable.vote === core.id && checkElectionSafety(this.ledger, core)) {
      this.stats.elections++;
      checkLeaderCompleteness(this.ledger, core);
      this.onNewLeader(driver);
    }
    checkLeaderAppendOnly(observation, core);
    if (this.directChecks) checkLeaderCommitsCurrentTerm(observation, core);
    if (core.commitIndex !== observation.commit) checkCommitProgress(this.ledger, observation, core);
  }

  /** fullScan checks every running member's whole in-memory log and samples its state machine digest. */
  fullScan(drivers: readonly NodeDriver[]): void {
    this.eventsSinceScan = 0;
    for (const driver of drivers) {
      const core = driver.core;
      if (core === null) continue;
      checkInMemoryLog(this.ledger, core, driver.disk.hardState.term);
      const machine = driver.disk.stateMachine;
      recordStateDigest(this.ledger, driver.id, machine.appliedIndex, machine.digest());
    }
  }

  /** readyCreated checks a Ready as it is handed out: mustSync, and its entries against every log ever seen (Log Matching). */
  readyCreated(driver: NodeDriver, ready: Ready): void {
    if (this.directChecks) checkMustSync(driver.id, ready, driver.disk.hardState);
    const first = ready.entries[0];
    const core = driver.core;
    if (first === undefined || core === null) return;
    // Entries of a term this Ready makes durable are checked once it is (see checkInMemoryLog); terms only grow
    // along a log, so they are a suffix.
    const durableTerm = driver.disk.hardState.term;
    const visible = ready.entries.filter((entry) => entry.term <= durableTerm);
    if (visible.length > 0) checkLogMatching(this.ledger, driver.id, visible, core.termAt(first.index - 1));
  }

  /** synced checks the durable hard state after a batch became durable. */
  synced(driver: NodeDriver, before: HardState): void {
    checkDurableHardState(driver.id, before, driver.disk.hardState);
    checkDurableCommit(driver.id, driver.disk);
  }

  /** beforeSend checks that what a message promises is durable (a direct check: skipped in end-to-end mode). */
  beforeSend(driver: NodeDriver, message: Message): void {
    if (this.directChecks) checkDurableBeforeSend(driver.id, message, driver.disk);
  }

  /** beforeApply checks the entry about to be applied: the next index, and the committed entry there. */
  beforeApply(driver: NodeDriver, entry: Entry): void {
    checkAppliedEntry(this.ledger, driver.id, driver.disk.stateMachine.appliedIndex, entry, driver.core?.term ?? 0);
  }

  /** beforeRestore checks a snapshot about to replace the state machine. */
  beforeRestore(driver: NodeDriver, snapshot: Snapshot): void {
    checkSnapshotRestore(this.ledger, driver.id, driver.disk.stateMachine.appliedIndex, snapshot, driver.core?.term ?? 0);
  }

  /** compacted records the state digest at the compaction index (replicas must agree byte for byte). */
  compacted(driver: NodeDriver, snapshot: Snapshot): void {
    this.stats.compactions++;
    recordStateDigest(this.ledger, driver.id, snapshot.meta.index, hashBytes(snapshot.data));
  }

  /** ackedWrite checks that a write acknowledged to a client is the committed entry. */
  ackedWrite(driver: NodeDriver, entry: Entry): void {
    checkAckedWrite(this.ledger, driver.id, entry);
  }
}
