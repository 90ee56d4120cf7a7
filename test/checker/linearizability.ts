// Linearizability checker in the manner of Porcupine (PEERS.md §3): the Wing & Gong backtracking search over a
// history, Lowe's memoization of (linearized set, model state) configurations, and P-compositionality, which
// checks each independent partition (for example each key) on its own (Horn & Kroening; Herlihy-Wing locality).
//
// The search keeps the history as a doubly linked list of call and return entries sorted by time, calls before
// returns on ties because intervals are closed. Walking the list from the head, a call entry is an operation that
// may be linearized now: every operation still in the list returns after it is called. Linearizing one steps the
// model and lifts both of its entries out of the list in O(1); reaching a return entry means the operation it
// belongs to was not linearized before it returned, so the search backtracks by popping the last choice and
// splicing its entries back in. A configuration already seen is never explored twice, which is what makes the
// search practical. The search is bounded by a step budget, so every run ends; an exhausted budget gives
// 'unknown', never 'ok'.

import { operationsFromHistory } from './history.ts';
import type { HistoryEvent, Operation } from './history.ts';

/** Model is a sequential specification: a pure step function over states, with optional partitioning and hashing. */
export interface Model<S, I, O> {
  init(): S;
  /** step must be pure; for unknown operations it is called with output === undefined as O and must accept any output. */
  step(state: S, input: I, output: O | undefined, unknown: boolean): { ok: boolean; state: S };
  /** partition splits operations into independent sub-histories (e.g. per key); default: one partition. */
  partition?(ops: readonly Operation<I, O>[]): Operation<I, O>[][];
  /**
   * hash and equal identify states for the memo cache; default: JSON.stringify. Without equal, two states with
   * the same hash are treated as equal, so a custom hash must then be a canonical encoding (note that
   * JSON.stringify encodes every Map and Set as "{}": models with such states must supply hash).
   */
  hash?(state: S): string;
  equal?(a: S, b: S): boolean;
  describeOperation?(input: I, output: O | undefined): string;
  /** describeState renders a state for explanations; default: JSON.stringify. */
  describeState?(state: S): string;
  /** describePartition names a partition for explanations (e.g. "key k7"); default: its position. */
  describePartition?(ops: readonly Operation<I, O>[]): string;
}

/** CheckResult is the verdict: linearizable, not linearizable, or undecided within the budget. */
export type CheckResult = 'ok' | 'illegal' | 'unknown';

/** UnknownReason says which bound stopped an undecided search. */
export type UnknownReason = 'steps' | 'timeout';

/** PartitionResult is the verdict on one partition and the evidence for it. */
export interface PartitionResult<I, O> {
  readonly result: CheckResult;
  readonly operations: number;
  readonly steps: number;
  /** on 'ok': one linearization (indexes into the partition's ops); on 'illegal': the longest prefix found */
  readonly linearization: readonly number[];
  readonly ops: readonly Operation<I, O>[];
  /** name is the partition's description (Model.describePartition) or "#index". */
  readonly name: string;
  /** unknownReason is set when result is 'unknown', null otherwise. */
  readonly unknownReason: UnknownReason | null;
}

/** CheckReport is the verdict on a whole history: 'illegal' if any partition is, else 'unknown' if any is, else 'ok'. */
export interface CheckReport<I, O> {
  readonly result: CheckResult;
  readonly partitions: readonly PartitionResult<I, O>[];
  /** human-readable lines explaining the first illegal partition: the ops it could not linearize */
  readonly explanation: string;
}

/** CheckOptions bounds the search. */
export interface CheckOptions {
  /** maxSteps bounds the search per partition (deterministic budget); exhausted -> 'unknown', never 'ok'. Default 2_000_000. */
  readonly maxSteps?: number;
  /** timeoutMs: optional wall-clock bound across all partitions -> 'unknown'. */
  readonly timeoutMs?: number;
}

/**
 * checkStepsMaxDefault is the default search budget per partition. A step is one visit of a list entry; the memo
 * cache grows by at most one configuration per step, so this also bounds memory (a few hundred MB at worst).
 */
export const checkStepsMaxDefault = 2_000_000;

/** Reading the clock on every step would dominate the search; every 1024 steps keeps the overshoot small. */
const deadlineCheckIntervalSteps = 1024;
/** explanationOperationsMax bounds each list in an explanation so a huge partition still gives a readable report. */
const explanationOperationsMax = 20;

/** checkOperations checks that ops are linearizable with respect to model, one partition at a time. */
export function checkOperations<S, I, O>(
  model: Model<S, I, O>,
  ops: readonly Operation<I, O>[],
  options: CheckOptions = {},
): CheckReport<I, O> {
  const stepsMax = options.maxSteps ?? checkStepsMaxDefault;
  if (!Number.isInteger(stepsMax) || stepsMax < 0) {
    throw new RangeError(`checkOperations: maxSteps must be a non-negative integer, got ${stepsMax}`);
  }
  if (options.timeoutMs !== undefined && !(options.timeoutMs >= 0)) {
    throw new RangeError(`checkOperations: timeoutMs must be a non-negative number, got ${options.timeoutMs}`);
  }
  for (const [index, op] of ops.entries()) validateOperation(op, index);
  const deadline = options.timeoutMs === undefined ? Number.POSITIVE_INFINITY : performance.now() + options.timeoutMs;
  const partitions = model.partition === undefined ? [ops.slice()] : model.partition(ops);
  const results = partitions.map((partition, index) => {
    const name = model.describePartition === undefined ? `#${index}` : model.describePartition(partition);
    return new PartitionSearch(model, partition, name, stepsMax, deadline).run();
  });
  const result = results.some((r) => r.result === 'illegal')
    ? 'illegal'
    : results.some((r) => r.result === 'unknown')
      ? 'unknown'
      : 'ok';
  return { result, partitions: results, explanation: explainReport(model, results, stepsMax) };
}

/** checkHistory converts events into operations (see operationsFromHistory) and checks them. */
export function checkHistory<S, I, O>(
  model: Model<S, I, O>,
  events: readonly HistoryEvent[],
  toInput: (invoke: HistoryEvent) => I,
  toOutput: (completion: HistoryEvent, invoke: HistoryEvent) => O,
  options: CheckOptions = {},
): CheckReport<I, O> {
  return checkOperations(model, operationsFromHistory(events, toInput, toOutput), options);
}

function validateOperation<I, O>(op: Operation<I, O>, index: number): void {
  if (typeof op.call !== 'number' || !Number.isFinite(op.call)) {
    throw new Error(`checkOperations: operation ${index} has call time ${String(op.call)}, not a finite number`);
  }
  if (typeof op.return !== 'number' || Number.isNaN(op.return) || op.return < op.call) {
    throw new Error(`checkOperations: operation ${index} has return time ${String(op.return)}, before its call ${op.call}`);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The search over one partition.

/** Frame is one choice on the search stack: the operation linearized and the model state before it. */
interface Frame<S> {
  readonly op: number;
  readonly stateBefore: S;
}

/** CachedConfiguration is one explored configuration; the bits are a private copy. */
interface CachedConfiguration<S> {
  readonly bits: Uint32Array;
  readonly state: S;
}

class PartitionSearch<S, I, O> {
  private readonly list: EntryList;
  private readonly linearized: Bitset;
  private readonly cache = new Map<string, CachedConfiguration<S>[]>();
  private readonly stack: Frame<S>[] = [];
  private readonly hashState: (state: S) => string;
  private readonly equalState: (a: S, b: S) => boolean;
  private longestPrefix: readonly number[] = [];
  private state: S;
  private steps = 0;

  constructor(
    private readonly model: Model<S, I, O>,
    private readonly ops: readonly Operation<I, O>[],
    private readonly name: string,
    private readonly stepsMax: number,
    private readonly deadline: number,
  ) {
    this.list = EntryList.build(ops);
    this.linearized = new Bitset(ops.length);
    this.state = model.init();
    this.hashState = model.hash?.bind(model) ?? ((state) => String(JSON.stringify(state)));
    // The cache key already contains the state's hash, so without an equal the hash is the identity.
    this.equalState = model.equal?.bind(model) ?? (() => true);
  }

  /** run searches until the list is empty (ok), the first return cannot be preceded by any choice (illegal), or a bound. */
  run(): PartitionResult<I, O> {
    let entry = this.list.first();
    while (entry !== listEnd) {
      if (this.steps % deadlineCheckIntervalSteps === 0 && performance.now() > this.deadline) {
        return this.finish('unknown', 'timeout');
      }
      if (this.steps >= this.stepsMax) return this.finish('unknown', 'steps');
      this.steps += 1;
      if (this.list.isCall(entry)) {
        const op = this.list.operationOf(entry);
        entry = this.tryLinearize(op) ? this.list.first() : this.list.nextOf(entry);
      } else {
        const undone = this.backtrack();
        if (undone === null) return this.finish('illegal', null);
        entry = this.list.nextOf(this.list.callEntryOf(undone));
      }
      // A call's return entry always follows it in the list, so a walk from a call never runs off the end.
      if (entry === listEnd && this.list.first() !== listEnd) throw new Error('PartitionSearch: walked off the list');
    }
    return this.finish('ok', null);
  }

  /** tryLinearize applies op to the model; on success in an unseen configuration it commits the choice. */
  private tryLinearize(op: number): boolean {
    const operation = this.operation(op);
    const output = operation.unknown ? undefined : operation.output;
    const next = this.model.step(this.state, operation.input, output, operation.unknown);
    if (!next.ok) return false;
    this.linearized.set(op);
    if (!this.remember(next.state)) {
      this.linearized.clear(op);
      return false;
    }
    this.stack.push({ op, stateBefore: this.state });
    this.state = next.state;
    this.list.lift(op);
    return true;
  }

  /** remember records (linearized, state) in the memo cache; false if it was already there. */
  private remember(state: S): boolean {
    const key = `${this.linearized.hash}:${this.hashState(state)}`;
    const bucket = this.cache.get(key);
    if (bucket === undefined) {
      this.cache.set(key, [{ bits: this.linearized.copyWords(), state }]);
      return true;
    }
    for (const seen of bucket) {
      if (this.linearized.equalsWords(seen.bits) && this.equalState(seen.state, state)) return false;
    }
    bucket.push({ bits: this.linearized.copyWords(), state });
    return true;
  }

  /** backtrack undoes the last choice and returns its operation, or null when there is no choice left. */
  private backtrack(): number | null {
    if (this.stack.length > this.longestPrefix.length) this.longestPrefix = this.stack.map((frame) => frame.op);
    const frame = this.stack.pop();
    if (frame === undefined) return null;
    this.state = frame.stateBefore;
    this.linearized.clear(frame.op);
    this.list.unlift(frame.op);
    return frame.op;
  }

  private finish(result: CheckResult, unknownReason: UnknownReason | null): PartitionResult<I, O> {
    const linearization =
      result === 'ok' || this.stack.length > this.longestPrefix.length
        ? this.stack.map((frame) => frame.op)
        : this.longestPrefix;
    return {
      result,
      operations: this.ops.length,
      steps: this.steps,
      linearization,
      ops: this.ops,
      name: this.name,
      unknownReason,
    };
  }

  private operation(op: number): Operation<I, O> {
    const operation = this.ops[op];
    if (operation === undefined) throw new Error(`PartitionSearch: no operation ${op}`);
    return operation;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The entry list: entry 0 is the head sentinel, entries 1..2n are the calls and returns sorted by time.

const listHead = 0;
const listEnd = -1;

class EntryList {
  private constructor(
    /** next and prev link the entries still in the list; a lifted entry keeps its old links for unlift. */
    private readonly next: Int32Array,
    private readonly prev: Int32Array,
    /** operation maps an entry to its operation; returnFlag is 1 for return entries. */
    private readonly operation: Int32Array,
    private readonly returnFlag: Uint8Array,
    /** callEntry and returnEntry map an operation to its two entries. */
    private readonly callEntry: Int32Array,
    private readonly returnEntry: Int32Array,
  ) {}

  /** build sorts the 2n entries by time with calls before returns on ties (closed intervals), then by operation. */
  static build<I, O>(ops: readonly Operation<I, O>[]): EntryList {
    const n = ops.length;
    const order: { time: number; isReturn: boolean; op: number }[] = [];
    for (const [op, operation] of ops.entries()) {
      order.push({ time: operation.call, isReturn: false, op }, { time: operation.return, isReturn: true, op });
    }
    // Explicit comparisons rather than subtraction: Infinity - Infinity is NaN.
    order.sort((a, b) =>
      a.time !== b.time ? (a.time < b.time ? -1 : 1) : a.isReturn !== b.isReturn ? (a.isReturn ? 1 : -1) : a.op - b.op,
    );
    const size = 2 * n + 1;
    const list = new EntryList(
      new Int32Array(size),
      new Int32Array(size),
      new Int32Array(size),
      new Uint8Array(size),
      new Int32Array(n),
      new Int32Array(n),
    );
    for (let entry = 0; entry < size; entry++) {
      list.next[entry] = entry + 1 < size ? entry + 1 : listEnd;
      list.prev[entry] = entry - 1;
    }
    for (const [position, item] of order.entries()) {
      const entry = position + 1;
      list.operation[entry] = item.op;
      list.returnFlag[entry] = item.isReturn ? 1 : 0;
      (item.isReturn ? list.returnEntry : list.callEntry)[item.op] = entry;
    }
    return list;
  }

  first(): number {
    return read(this.next, listHead);
  }

  nextOf(entry: number): number {
    return read(this.next, entry);
  }

  isCall(entry: number): boolean {
    return read(this.returnFlag, entry) === 0;
  }

  operationOf(entry: number): number {
    return read(this.operation, entry);
  }

  callEntryOf(op: number): number {
    return read(this.callEntry, op);
  }

  /** lift removes an operation's call and return entries; unlift must undo lifts in reverse order. */
  lift(op: number): void {
    this.unlink(read(this.callEntry, op));
    this.unlink(read(this.returnEntry, op));
  }

  /** unlift splices back the entries of the most recently lifted operation, return first (dancing links). */
  unlift(op: number): void {
    this.relink(read(this.returnEntry, op));
    this.relink(read(this.callEntry, op));
  }

  private unlink(entry: number): void {
    const before = read(this.prev, entry);
    const after = read(this.next, entry);
    this.next[before] = after;
    if (after !== listEnd) this.prev[after] = before;
  }

  private relink(entry: number): void {
    const before = read(this.prev, entry);
    const after = read(this.next, entry);
    this.next[before] = entry;
    if (after !== listEnd) this.prev[after] = entry;
  }
}

function read(array: Int32Array | Uint8Array, index: number): number {
  const value = array[index];
  if (value === undefined) throw new Error(`index ${index} out of range ${array.length}`);
  return value;
}

// ---------------------------------------------------------------------------------------------------------------
// The set of linearized operations.

/**
 * Bitset is a fixed-size set of operation indexes with an incrementally maintained hash: the XOR of a mixed value
 * per member (Zobrist hashing), so set and clear are O(1) and the hash is independent of the order of insertion.
 */
class Bitset {
  private readonly words: Uint32Array;
  /** hash is the XOR of memberHash(i) over the members; equal sets have equal hashes. */
  hash = 0;

  constructor(size: number) {
    this.words = new Uint32Array((size + 31) >>> 5);
  }

  set(index: number): void {
    const word = index >>> 5;
    this.words[word] = (this.words[word] ?? 0) | (1 << (index & 31));
    this.hash = (this.hash ^ memberHash(index)) >>> 0;
  }

  clear(index: number): void {
    const word = index >>> 5;
    this.words[word] = (this.words[word] ?? 0) & ~(1 << (index & 31));
    this.hash = (this.hash ^ memberHash(index)) >>> 0;
  }

  copyWords(): Uint32Array {
    return this.words.slice();
  }

  equalsWords(other: Uint32Array): boolean {
    for (let word = 0; word < this.words.length; word++) if (this.words[word] !== other[word]) return false;
    return true;
  }
}

/** memberHash is the murmur3 finalizer of index + 1: well spread, and never 0. */
function memberHash(index: number): number {
  let h = (index + 1) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

// ---------------------------------------------------------------------------------------------------------------
// Explanations.

function explainReport<S, I, O>(model: Model<S, I, O>, results: readonly PartitionResult<I, O>[], stepsMax: number): string {
  const illegal = results.findIndex((r) => r.result === 'illegal');
  if (illegal !== -1) return explainIllegal(model, results, illegal).join('\n');
  const lines: string[] = [];
  for (const [index, r] of results.entries()) {
    if (r.result !== 'unknown') continue;
    const bound = r.unknownReason === 'timeout' ? 'the timeout expired' : `the step budget of ${stepsMax} ran out`;
    lines.push(
      `partition ${index + 1}/${results.length} (${r.name}): undecided, ${bound} after ${r.steps} steps ` +
        `over ${r.operations} operations; rerun with a smaller history, never count this as a pass`,
    );
  }
  return lines.join('\n');
}

function explainIllegal<S, I, O>(model: Model<S, I, O>, results: readonly PartitionResult<I, O>[], index: number): string[] {
  const r = results[index];
  if (r === undefined) throw new Error(`explainIllegal: no partition ${index}`);
  const prefix = r.linearization;
  const lines = [
    `partition ${index + 1}/${results.length} (${r.name}) is not linearizable ` +
      `(${r.operations} operations, ${r.steps} steps)`,
    `longest linearizable prefix found: ${prefix.length} of ${r.operations} operations`,
  ];
  const shownFrom = Math.max(0, prefix.length - explanationOperationsMax);
  if (shownFrom > 0) lines.push(`  ... ${shownFrom} earlier operations`);
  for (let position = shownFrom; position < prefix.length; position++) {
    lines.push(`  ${position + 1}. ${describe(model, r.ops, prefix[position])}`);
  }
  lines.push(`model state after that prefix: ${describeState(model, replay(model, r.ops, prefix))}`);
  const candidates = nextCandidates(r.ops, prefix);
  lines.push('none of these operations leads to a linearization when placed next:');
  for (const op of candidates.slice(0, explanationOperationsMax)) lines.push(`  ${describe(model, r.ops, op)}`);
  if (candidates.length > explanationOperationsMax) {
    lines.push(`  ... ${candidates.length - explanationOperationsMax} more`);
  }
  const rest = r.operations - prefix.length - candidates.length;
  if (rest > 0) lines.push(`${rest} later operations were not reached`);
  return lines;
}

/** nextCandidates lists the operations outside prefix that real time allows next: called by the earliest return. */
function nextCandidates<I, O>(ops: readonly Operation<I, O>[], prefix: readonly number[]): number[] {
  const done = new Set(prefix);
  let earliestReturn = Number.POSITIVE_INFINITY;
  for (const [op, operation] of ops.entries()) {
    if (!done.has(op) && operation.return < earliestReturn) earliestReturn = operation.return;
  }
  const candidates: number[] = [];
  for (const [op, operation] of ops.entries()) {
    if (!done.has(op) && operation.call <= earliestReturn) candidates.push(op);
  }
  return candidates;
}

function replay<S, I, O>(model: Model<S, I, O>, ops: readonly Operation<I, O>[], prefix: readonly number[]): S {
  let state = model.init();
  for (const op of prefix) {
    const operation = ops[op];
    if (operation === undefined) throw new Error(`replay: no operation ${op}`);
    const output = operation.unknown ? undefined : operation.output;
    state = model.step(state, operation.input, output, operation.unknown).state;
  }
  return state;
}

function describe<S, I, O>(model: Model<S, I, O>, ops: readonly Operation<I, O>[], op: number | undefined): string {
  const operation = op === undefined ? undefined : ops[op];
  if (operation === undefined) throw new Error(`describe: no operation ${String(op)}`);
  const output = operation.unknown ? undefined : operation.output;
  const text =
    model.describeOperation === undefined
      ? `${JSON.stringify(operation.input)} -> ${operation.unknown ? '?' : JSON.stringify(output)}`
      : model.describeOperation(operation.input, output);
  const returned = operation.return === Number.POSITIVE_INFINITY ? 'never (outcome unknown)' : String(operation.return);
  return `process ${operation.clientId}: ${text} [call ${operation.call}, return ${returned}]`;
}

function describeState<S, I, O>(model: Model<S, I, O>, state: S): string {
  return model.describeState === undefined ? String(JSON.stringify(state)) : model.describeState(state);
}
