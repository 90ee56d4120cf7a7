// Workload: a few clients issuing KV writes (unique values) and linearizable reads against members they pick, and
// recording the history the linearizability checker reads. A write is 'ok' once the member it was proposed on
// applies its (index, term), 'fail' when that member applies another term there or refuses the proposal (it then
// certainly did not commit), 'info' (unknown) on a crash, a snapshot jump or a timeout. A read goes through
// ReadIndex and is 'ok' with the value once the member has applied the read index; a refusal or a timeout is 'fail',
// which is honest for reads because they change nothing.
import type { Prng } from '../../src/raft/prng.ts';
import type { Entry, NodeId, ReadState } from '../../src/raft/types.ts';
import type { EventKind } from './event-queue.ts';
import { decodeCommand, encodeCommand } from './kv-state-machine.ts';
import type { NodeDriver } from './node-driver.ts';
import { pick, type WorkloadParams } from './scenario.ts';
import { historyOpsPerKeyMax, historyUnknownPerKeyMax } from './sim-limits.ts';

/** HistoryValue is the payload of a history event: the key, and the value written or read (null: absent or unknown). */
export interface HistoryValue {
  readonly key: string;
  readonly value: string | null;
}

/** SimHistoryEvent is one line of the client history, in the shape of test/checker's HistoryEvent. */
export interface SimHistoryEvent {
  readonly process: number;
  readonly type: 'invoke' | 'ok' | 'fail' | 'info';
  readonly f: 'read' | 'write';
  readonly value: HistoryValue;
  readonly time: number;
}

/** WorkloadWorld is what the workload needs from the simulation. */
export interface WorkloadWorld {
  readonly prng: Prng;
  readonly drivers: readonly NodeDriver[];
  /** readWithoutReadIndex plants the read-without-readindex bug: reads answer from local state at once. */
  readonly readWithoutReadIndex: boolean;
  now(): number;
  schedule(delayMs: number, kind: EventKind, node: number, action: () => void): void;
  indexOf(id: NodeId): number;
  /** traceEnabled tells whether note() lines are kept (so they are not built otherwise). */
  readonly traceEnabled: boolean;
  note(text: string): void;
  /** ackedWrite is told of every write acknowledged 'ok', with the entry applied for it. */
  ackedWrite(node: NodeDriver, entry: Entry): void;
}

interface ClientState {
  readonly id: number;
  process: number;
  writes: number;
  preferred: number;
}

interface ClientOp {
  readonly id: number;
  readonly client: ClientState;
  readonly process: number;
  readonly f: 'read' | 'write';
  readonly key: string;
  readonly value: string | null;
  done: boolean;
}

interface PendingWrite {
  readonly op: ClientOp;
  readonly term: number;
}

/** failBackoffMs is how long a client waits after a refused or failed operation before its next one. */
const failBackoffMs = 20;

/** Workload runs the clients and records their history. */
export class Workload {
  readonly history: SimHistoryEvent[] = [];
  private readonly world: WorkloadWorld;
  private readonly params: WorkloadParams;
  private readonly clients: ClientState[] = [];
  /** activeKeys are the keys clients use now; a key that reaches historyOpsPerKeyMax is replaced by a fresh one. */
  private readonly activeKeys: string[] = [];
  private readonly opsPerKey = new Map<string, number>();
  private readonly unknownPerKey = new Map<string, number>();
  private keyNext = 0;
  private readonly pendingWrites: Array<Map<number, PendingWrite>>;
  private readonly pendingReads: Array<Map<string, ClientOp>>;
  private opIdNext = 0;
  private processNext: number;
  private active = true;
  /** okWrites counts writes acknowledged 'ok'. */
  okWrites = 0;

  constructor(world: WorkloadWorld, params: WorkloadParams) {
    this.world = world;
    this.params = params;
    for (let i = 0; i < params.keyCount; i++) this.activeKeys.push(`k${this.keyNext++}`);
    this.pendingWrites = world.drivers.map(() => new Map<number, PendingWrite>());
    this.pendingReads = world.drivers.map(() => new Map<string, ClientOp>());
    for (let id = 0; id < params.clientCount; id++) this.clients.push({ id, process: id, writes: 0, preferred: -1 });
    this.processNext = params.clientCount;
  }

  /** start schedules every client's first operation. */
  start(): void {
    for (const client of this.clients) this.scheduleNext(client);
  }

  /** stop issues no new operations (the liveness phase); the ones in flight still complete or time out. */
  stop(): void {
    this.active = false;
  }

  /** finish ends the run: writes still in flight become 'info', reads 'fail'. */
  finish(): void {
    for (const pending of this.pendingWrites) {
      for (const write of pending.values()) this.complete(write.op, 'info', write.op.value);
      pending.clear();
    }
    for (const pending of this.pendingReads) {
      for (const op of pending.values()) this.complete(op, 'fail', null);
      pending.clear();
    }
  }

  /** entryApplied resolves the write proposed on `node` at entry.index: 'ok' with the same term, 'fail' otherwise. */
  entryApplied(node: NodeDriver, entry: Entry): void {
    const pending = this.pendingWrites[node.index];
    const write = pending?.get(entry.index);
    if (pending === undefined || write === undefined) return;
    pending.delete(entry.index);
    if (write.term !== entry.term) {
      this.complete(write.op, 'fail', write.op.value);
      return;
    }
    if (entry.kind !== 'normal' || decodeCommand(entry.data).value !== write.op.value) {
      throw new Error(`${node.id}: entry ${entry.index} of term ${entry.term} is not the write proposed there`);
    }
    this.world.ackedWrite(node, entry);
    this.okWrites++;
    this.complete(write.op, 'ok', write.op.value);
  }

  /** snapshotRestored makes the writes pending at or below the snapshot index unknown: the member cannot tell. */
  snapshotRestored(node: NodeDriver, index: number): void {
    const pending = this.pendingWrites[node.index];
    if (pending === undefined) return;
    for (const [writeIndex, write] of pending) {
      if (writeIndex > index) continue;
      pending.delete(writeIndex);
      this.complete(write.op, 'info', write.op.value);
    }
  }

  /** readReady answers the read registered as `readState.context` from the member's applied state. */
  readReady(node: NodeDriver, readState: ReadState): void {
    const pending = this.pendingReads[node.index];
    const op = pending?.get(readState.context);
    if (pending === undefined || op === undefined) return;
    pending.delete(readState.context);
    this.complete(op, 'ok', node.disk.stateMachine.read(op.key));
  }

  /** readDropped fails a read the core will never answer (types.ts Ready.droppedReads). */
  readDropped(node: NodeDriver, context: string): void {
    const pending = this.pendingReads[node.index];
    const op = pending?.get(context);
    if (pending === undefined || op === undefined) return;
    pending.delete(context);
    this.complete(op, 'fail', null);
  }

  /** nodeCrashed resolves everything pending on a member that crashed: writes 'info', reads 'fail'. */
  nodeCrashed(node: NodeDriver): void {
    const writes = this.pendingWrites[node.index];
    const reads = this.pendingReads[node.index];
    for (const write of writes?.values() ?? []) this.complete(write.op, 'info', write.op.value);
    for (const op of reads?.values() ?? []) this.complete(op, 'fail', null);
    writes?.clear();
    reads?.clear();
  }

  private scheduleNext(client: ClientState, backoffMs = 0): void {
    if (!this.active) return;
    const delay = backoffMs + this.world.prng.nextInt(this.params.thinkMaxMs + 1);
    this.world.schedule(delay, 'client', -1, () => this.issue(client));
  }

  private issue(client: ClientState): void {
    if (!this.active) return;
    const key = this.pickKey();
    const isRead = this.world.prng.chance(this.params.readRate);
    const value = isRead ? null : `c${client.id}w${client.writes++}`;
    const op: ClientOp = { id: this.opIdNext++, client, process: client.process, f: isRead ? 'read' : 'write', key, value, done: false };
    this.record(op, 'invoke', value);
    const node = this.pickNode(client);
    if (node === undefined) {
      this.complete(op, 'fail', null);
      return;
    }
    const submitted = node.run(() => (isRead ? this.read(node, op) : this.write(node, op)));
    if (!submitted) {
      this.complete(op, 'fail', isRead ? null : value);
      return;
    }
    const timeoutMs = isRead ? this.params.readTimeoutMs : this.params.writeTimeoutMs;
    this.world.schedule(timeoutMs, 'timeout', node.index, () => this.timeOut(node, op));
  }

  private write(node: NodeDriver, op: ClientOp): void {
    const core = node.core;
    if (core === null || op.done || op.value === null) return;
    const result = core.propose([encodeCommand({ key: op.key, value: op.value })]);
    if (!result.ok) {
      this.rememberLeader(op.client, result.leaderHint);
      this.complete(op, 'fail', op.value);
      return;
    }
    this.pendingWrites[node.index]?.set(result.firstIndex, { op, term: result.term });
  }

  private read(node: NodeDriver, op: ClientOp): void {
    const core = node.core;
    if (core === null || op.done) return;
    if (this.world.readWithoutReadIndex) {
      this.complete(op, 'ok', node.disk.stateMachine.read(op.key));
      return;
    }
    const context = `read-${op.id}`;
    const result = core.readIndex(context);
    if (!result.ok) {
      this.rememberLeader(op.client, result.leaderHint);
      this.complete(op, 'fail', null);
      return;
    }
    this.pendingReads[node.index]?.set(context, op);
  }

  private timeOut(node: NodeDriver, op: ClientOp): void {
    if (op.done) return;
    if (op.f === 'write') {
      for (const [index, write] of this.pendingWrites[node.index] ?? []) {
        if (write.op === op) this.pendingWrites[node.index]?.delete(index);
      }
      this.complete(op, 'info', op.value);
    } else {
      this.pendingReads[node.index]?.delete(`read-${op.id}`);
      this.complete(op, 'fail', null);
    }
  }

  private complete(op: ClientOp, type: 'ok' | 'fail' | 'info', value: string | null): void {
    if (op.done) return;
    op.done = true;
    this.record(op, type, value);
    // An 'info' operation may still take effect at any later time, so the client continues as a new process.
    if (type === 'info') op.client.process = this.processNext++;
    // A failed operation certainly had no effect and the checker drops it, so it does not use up the key's budget;
    // the client backs off before trying again, as a real client would.
    if (type === 'fail') this.opsPerKey.set(op.key, (this.opsPerKey.get(op.key) ?? 1) - 1);
    if (type === 'info') this.countUnknown(op.key);
    this.scheduleNext(op.client, type === 'fail' ? failBackoffMs : 0);
  }

  private record(op: ClientOp, type: SimHistoryEvent['type'], value: string | null): void {
    if (this.world.traceEnabled) this.world.note(`client ${op.process}: ${type} ${op.f} ${op.key} ${String(value)}`);
    this.history.push({ process: op.process, type, f: op.f, value: { key: op.key, value }, time: this.world.now() });
  }

  /** pickKey picks an active key and counts the operation; keys are retired at historyOpsPerKeyMax (PEERS.md §3). */
  private pickKey(): string {
    const slot = this.world.prng.nextInt(this.activeKeys.length);
    const key = this.activeKeys[slot] ?? 'k0';
    const count = (this.opsPerKey.get(key) ?? 0) + 1;
    this.opsPerKey.set(key, count);
    if (count >= historyOpsPerKeyMax) this.activeKeys[slot] = `k${this.keyNext++}`;
    return key;
  }

  /** countUnknown retires a key that reached historyUnknownPerKeyMax unknown outcomes. */
  private countUnknown(key: string): void {
    const unknown = (this.unknownPerKey.get(key) ?? 0) + 1;
    this.unknownPerKey.set(key, unknown);
    const slot = this.activeKeys.indexOf(key);
    if (unknown >= historyUnknownPerKeyMax && slot >= 0) this.activeKeys[slot] = `k${this.keyNext++}`;
  }

  private pickNode(client: ClientState): NodeDriver | undefined {
    const preferred = this.world.drivers[client.preferred];
    if (preferred !== undefined && preferred.started && !preferred.retired && this.world.prng.chance(0.7)) return preferred;
    const candidates = this.world.drivers.filter((driver) => driver.started && !driver.retired);
    return candidates.length === 0 ? undefined : pick(this.world.prng, candidates);
  }

  private rememberLeader(client: ClientState, leaderHint: NodeId | null): void {
    client.preferred = leaderHint === null ? -1 : this.world.indexOf(leaderHint);
  }
}
