// NodeDriver: one simulated member around a real RaftCore. It implements the Ready contract of types.ts exactly:
// ready() -> write snapshot, entries and hard state to the disk as one unsynced batch -> (simulated fsync) -> the
// batch is durable -> send the messages (a leader's, when Ready.messagesBeforePersist, right after the unsynced
// write instead) -> restore the snapshot and apply the committed entries -> serve the read
// states whose index is applied, fail the dropped reads -> advance(). One Ready at a time. A crash drops the core, the unsynced batch and all
// volatile state; a restart builds a new core from the disk. A paused member holds its inputs until it resumes.
import { RaftCore } from '../../src/raft/raft-core.ts';
import type { Entry, HardState, Membership, Message, NodeId, RaftConfig, ReadState, Ready, Snapshot } from '../../src/raft/types.ts';
import { SimDisk } from './disk.ts';
import { pausedInboxLengthMax } from './sim-limits.ts';
import { SimBoundExceeded } from './sim-errors.ts';

/** DriverHooks is how a driver reaches the rest of the simulation (network, clock, checks, workload). */
export interface DriverHooks {
  /** scheduleSync arranges for completeSync(incarnation) to run after the simulated fsync latency. */
  scheduleSync(node: NodeDriver, incarnation: number): void;
  /** send hands one message to the network. */
  send(node: NodeDriver, message: Message): void;
  /** readyCreated sees every Ready as it is handed out (log-matching checks on its entries). */
  readyCreated(node: NodeDriver, ready: Ready): void;
  /** synced sees the hard state before and after a batch became durable. */
  synced(node: NodeDriver, before: HardState): void;
  /** beforeSend sees each message just before it leaves (durability checks). */
  beforeSend(node: NodeDriver, message: Message): void;
  /** beforeApply sees each committed entry before the state machine applies it. */
  beforeApply(node: NodeDriver, entry: Entry): void;
  /** applied sees each committed entry after the state machine applied it. */
  applied(node: NodeDriver, entry: Entry): void;
  /** beforeRestore sees a snapshot before the state machine restores it. */
  beforeRestore(node: NodeDriver, snapshot: Snapshot): void;
  /** restored sees a snapshot after the state machine restored it. */
  restored(node: NodeDriver, snapshot: Snapshot): void;
  /** readReady sees a read state once the state machine has applied its index. */
  readReady(node: NodeDriver, readState: ReadState): void;
  /** readDropped sees the context of a read the core will never answer. */
  readDropped(node: NodeDriver, context: string): void;
  /** shouldCompact decides whether to snapshot the state machine and compact the log now. */
  shouldCompact(node: NodeDriver): boolean;
  /** compacted sees a compaction: the durable snapshot just written. */
  compacted(node: NodeDriver, snapshot: Snapshot): void;
}

/** DriverOptions are the per-seed settings of every driver. */
export interface DriverOptions {
  /** ackBeforeSync plants the ack-before-sync bug: a Ready's messages leave before its writes are synced. */
  readonly ackBeforeSync: boolean;
}

/** NodeDriver drives one member: its core (null while down), its disk, its pause state and its Ready in flight. */
export class NodeDriver {
  readonly id: NodeId;
  readonly index: number;
  readonly disk: SimDisk;
  core: RaftCore | null = null;
  /** incarnation counts starts; events of an earlier incarnation are ignored. */
  incarnation = 0;
  started = false;
  /** retired is set once the member's removal is applied; it never runs again. */
  retired = false;
  paused = false;
  private inbox: Array<() => void> = [];
  private readyInFlight: Ready | null = null;
  private sentEarly = false;
  private waitingReads: ReadState[] = [];
  private readonly hooks: DriverHooks;
  private readonly options: DriverOptions;

  constructor(id: NodeId, index: number, disk: SimDisk, hooks: DriverHooks, options: DriverOptions) {
    this.id = id;
    this.index = index;
    this.disk = disk;
    this.hooks = hooks;
    this.options = options;
  }

  /** up tells whether the member is running (possibly paused). */
  get up(): boolean {
    return this.core !== null;
  }

  /** start builds a core from the disk (a fresh member's disk holds the bootstrap snapshot). */
  start(config: RaftConfig): void {
    if (this.core !== null || this.retired) throw new Error(`driver ${this.id}: start while running or retired`);
    const machine = this.disk.stateMachine;
    const snapshot = this.disk.snapshot;
    // The raft snapshot may be newer than the state machine if a crash came between its sync and its restore.
    if (snapshot.meta.index > machine.appliedIndex) machine.restore(snapshot);
    this.incarnation++;
    this.started = true;
    this.readyInFlight = null;
    this.sentEarly = false;
    this.core = new RaftCore(config, this.disk.load());
  }

  /** crash stops the member at once: the unsynced batch, the core and every volatile queue are lost. */
  crash(): void {
    this.core = null;
    this.disk.crash();
    this.readyInFlight = null;
    this.inbox = [];
    this.waitingReads = [];
    this.paused = false;
  }

  /** pause stops the member from processing anything until resume(). */
  pause(): void {
    this.paused = true;
  }

  /** resume runs the held inputs in arrival order. */
  resume(): void {
    this.paused = false;
    const held = this.inbox;
    this.inbox = [];
    for (const action of held) {
      if (this.core === null || this.paused) break;
      action();
    }
  }

  /** run performs `action` on the running core now, or holds it while paused; returns false when the member is down. */
  run(action: (core: RaftCore) => void): boolean {
    const core = this.core;
    if (core === null) return false;
    if (!this.paused) {
      action(core);
      this.pump();
      return true;
    }
    if (this.inbox.length >= pausedInboxLengthMax) throw new SimBoundExceeded(`${this.id}: paused inbox full (pausedInboxLengthMax)`);
    const incarnation = this.incarnation;
    this.inbox.push(() => {
      const current = this.core;
      if (current === null || this.incarnation !== incarnation) return;
      action(current);
      this.pump();
    });
    return true;
  }

  /** tick advances the core's clock by one tick; a paused member misses its ticks, as a stopped process does. */
  tick(): void {
    if (this.core === null || this.paused) return;
    this.core.tick();
    this.pump();
  }

  /** receive steps one message from the network into the core. */
  receive(message: Message): void {
    this.run((core) => core.step(message));
  }

  /** syncCompleted is the simulated fsync finishing for the Ready of `incarnation`. */
  syncCompleted(incarnation: number): void {
    if (this.incarnation !== incarnation || this.core === null) return;
    if (this.paused) {
      this.run(() => this.completeReady());
      return;
    }
    this.completeReady();
    this.pump();
  }

  /** pump takes the next Ready when none is in flight and writes it to the disk. */
  pump(): void {
    const core = this.core;
    if (core === null || this.readyInFlight !== null) return;
    // Lazy snapshots: the core keeps only the meta of its snapshot and asks for the image when a follower needs it;
    // the driver offers its state machine as applied now (at or after the snapshot index, as the real driver does).
    if (core.wantsSnapshot) {
      const machine = this.disk.stateMachine;
      core.offerSnapshot(machine.appliedIndex, machine.serialise());
    }
    if (!core.hasReady()) return;
    const ready = core.ready();
    this.readyInFlight = ready;
    this.hooks.readyCreated(this, ready);
    this.disk.write({ snapshot: ready.snapshot, entries: ready.entries, hardState: ready.hardState });
    // A leader's replication leaves before its own write is synced when the core allows it (thesis §10.2.1); a
    // crash before the sync then loses entries that followers may already hold, which is what the checks explore.
    this.sentEarly = this.options.ackBeforeSync || ready.messagesBeforePersist;
    if (this.sentEarly) this.sendAll(ready.messages);
    this.hooks.scheduleSync(this, this.incarnation);
  }

  private completeReady(): void {
    const core = this.core;
    const ready = this.readyInFlight;
    if (core === null || ready === null) return;
    const before = this.disk.hardState;
    this.disk.sync();
    this.hooks.synced(this, before);
    if (!this.sentEarly) this.sendAll(ready.messages);
    if (ready.snapshot !== null) this.restore(ready.snapshot);
    for (const entry of ready.committedEntries) this.apply(entry);
    this.waitingReads.push(...ready.readStates);
    this.serveReads();
    for (const context of ready.droppedReads) this.hooks.readDropped(this, context);
    core.advance(ready);
    this.readyInFlight = null;
    if (this.hooks.shouldCompact(this)) this.compact(core);
  }

  private sendAll(messages: readonly Message[]): void {
    for (const message of messages) {
      this.hooks.beforeSend(this, message);
      this.hooks.send(this, message);
    }
  }

  private restore(snapshot: Snapshot): void {
    this.hooks.beforeRestore(this, snapshot);
    this.disk.stateMachine.restore(snapshot);
    this.hooks.restored(this, snapshot);
  }

  private apply(entry: Entry): void {
    this.hooks.beforeApply(this, entry);
    this.disk.stateMachine.apply(entry);
    this.hooks.applied(this, entry);
  }

  private serveReads(): void {
    const applied = this.disk.stateMachine.appliedIndex;
    const waiting: ReadState[] = [];
    for (const readState of this.waitingReads) {
      if (readState.index <= applied) this.hooks.readReady(this, readState);
      else waiting.push(readState);
    }
    this.waitingReads = waiting;
  }

  /** compact snapshots the state machine at its applied index, makes it durable, then tells the core (types.ts compact). */
  private compact(core: RaftCore): void {
    const machine = this.disk.stateMachine;
    const index = machine.appliedIndex;
    const term = core.termAt(index);
    if (index <= core.snapshotIndex || term === undefined) return;
    assertMembershipAgrees(core, index, machine.membership);
    const snapshot: Snapshot = { meta: { index, term, membership: machine.membership }, data: machine.serialise() };
    this.disk.compact(snapshot);
    this.hooks.compacted(this, snapshot);
    core.compact(index);
  }
}

/**
 * assertMembershipAgrees cross-checks the driver's membership at `index` (the snapshot meta it is about to write)
 * with the core's current membership when no membership entry follows `index` in the core's log.
 */
function assertMembershipAgrees(core: RaftCore, index: number, membership: Membership): void {
  for (let i = index + 1; i <= core.lastIndex; i++) {
    if (core.entryAt(i)?.kind === 'membership') return;
  }
  const ours = describeMembership(membership);
  const theirs = describeMembership(core.membership);
  if (ours !== theirs) {
    throw new Error(`${core.id}: membership at applied index ${index} is ${ours} by the applied entries but ${theirs} in the core`);
  }
}

/** describeMembership renders a membership with sorted ids, e.g. "voters n1,n2 learners n4". */
export function describeMembership(membership: Membership): string {
  return `voters ${[...membership.voters].sort().join(',')} learners ${[...membership.learners].sort().join(',')}`;
}
