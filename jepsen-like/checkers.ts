// checkers: what a run's history is judged by.
// - linearizability: the register workload's reads, writes, compare-and-sets and deletes, per key, with the shared
//   Porcupine-style checker (test/checker/linearizability.ts) and the versioned instance register model (versions
//   reset on delete, 0 = absent, as Cairn's). Its budget (steps per key, a wall-clock bound) can run out: that is
//   'unknown', which is never a pass.
// - set: the set workload's adds and reads, per service (lost, unexpected, stale, disappeared, failed-but-visible,
//   recovered; see workloads/set.ts).
// - availability: the share of operations that were ok, and the latency of ok operations (p50, p99), per f.
// - recovery: after the final heal, how long until each kind of operation succeeded again.
// Nemesis events (process "nemesis") are filtered out before anything else.

import type { HistoryEvent, Operation } from '../test/checker/history.ts';
import { operationsFromHistory } from '../test/checker/history.ts';
import { checkOperations } from '../test/checker/linearizability.ts';
import { createInstanceRegisterModel } from '../test/checker/models.ts';
import type { InstanceInput, InstanceOutput } from '../test/checker/models.ts';
import { isClientEvent, type RecordedEvent } from './history.ts';

/** OperationRef names one operation by its process and invoke time, to highlight it in the timeline. */
export interface OperationRef {
  readonly process: number;
  readonly time: number;
}

/** clientEvents drops nemesis events and keeps the events whose f is in `fs`. */
export function clientEvents(events: readonly RecordedEvent[], fs: ReadonlySet<string>): HistoryEvent[] {
  return events.filter((event): event is HistoryEvent => isClientEvent(event) && fs.has(event.f));
}

/** LinearizabilityResult is the register checker's verdict with its evidence. */
export interface LinearizabilityResult {
  readonly result: 'ok' | 'illegal' | 'unknown';
  readonly keys: number;
  readonly operations: number;
  readonly illegalKeys: readonly string[];
  readonly unknownKeys: readonly string[];
  readonly explanation: string;
  readonly checkMs: number;
  readonly anomalies: readonly OperationRef[];
}

/** LinearizabilityBudget bounds the search: steps per key and a wall-clock bound for the whole history. */
export interface LinearizabilityBudget {
  readonly maxSteps: number;
  readonly timeoutMs: number;
}

/** registerModel is the register workload's model: Cairn's instance versions (1 at registration, reset by a delete). */
const registerModel = createInstanceRegisterModel({ versionAfterDeregister: 'reset' });

/** registerFs are the register workload's operations. */
const registerFs: ReadonlySet<string> = new Set(['read', 'write', 'cas', 'delete']);

function fieldsOf(event: HistoryEvent): Readonly<Record<string, unknown>> {
  if (typeof event.value !== 'object' || event.value === null) throw new Error(`register history: ${event.type} ${event.f} at ${event.time} has no value object`);
  return event.value as Readonly<Record<string, unknown>>;
}

function stringOf(event: HistoryEvent, field: string): string {
  const value = fieldsOf(event)[field];
  if (typeof value !== 'string') throw new Error(`register history: ${event.type} ${event.f} at ${event.time}: ${field} is not a string`);
  return value;
}

function versionField(event: HistoryEvent, field: string): number | undefined {
  const value = fieldsOf(event)[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw new Error(`register history: ${event.type} ${event.f} at ${event.time}: ${field} is not a version`);
  return value;
}

/** registerInput reads an invoke of the register workload as a call on the instance register model. */
export function registerInput(invoke: HistoryEvent): InstanceInput {
  const key = stringOf(invoke, 'key');
  switch (invoke.f) {
    case 'read':
      return { f: 'get', key };
    case 'write':
      return { f: 'register', key, meta: { v: stringOf(invoke, 'value') } };
    case 'cas':
      return { f: 'cas-meta', key, expectedVersion: versionField(invoke, 'expected') ?? 0, meta: { v: stringOf(invoke, 'value') } };
    case 'delete':
      return { f: 'deregister', key };
    default:
      throw new Error(`register history: unknown f ${invoke.f}`);
  }
}

/** registerOutput reads an ok completion of the register workload as the model's output. */
export function registerOutput(completion: HistoryEvent, invoke: HistoryEvent): InstanceOutput {
  const fields = fieldsOf(completion);
  const version = versionField(completion, 'version');
  switch (invoke.f) {
    case 'read': {
      const value = fields['value'];
      if (value !== null && typeof value !== 'string') throw new Error(`register history: read at ${completion.time}: value is not a string or null`);
      return value === null ? { exists: false, meta: null } : { exists: true, meta: { v: value }, ...(version === undefined ? {} : { version }) };
    }
    case 'write':
      return version === undefined ? {} : { version };
    case 'cas': {
      const applied = fields['ok'];
      if (typeof applied !== 'boolean') throw new Error(`register history: cas at ${completion.time}: ok is not a boolean`);
      return applied && version !== undefined ? { ok: true, version } : { ok: applied };
    }
    default:
      return {};
  }
}

/** checkRegister checks the register workload's history per key against the versioned instance register model. */
export function checkRegister(events: readonly RecordedEvent[], budget: LinearizabilityBudget): LinearizabilityResult {
  const started = performance.now();
  const ops = operationsFromHistory(clientEvents(events, registerFs), registerInput, registerOutput);
  const report = checkOperations(registerModel, ops, { maxSteps: budget.maxSteps, timeoutMs: budget.timeoutMs });
  const anomalies: OperationRef[] = [];
  for (const partition of report.partitions) {
    if (partition.result !== 'illegal') continue;
    for (const op of stuckOperations(partition.ops, partition.linearization)) anomalies.push({ process: op.clientId, time: op.call });
  }
  return {
    result: report.result,
    keys: report.partitions.length,
    operations: ops.length,
    illegalKeys: report.partitions.filter((p) => p.result === 'illegal').map((p) => p.name),
    unknownKeys: report.partitions.filter((p) => p.result === 'unknown').map((p) => `${p.name} (${p.unknownReason ?? '?'} after ${p.steps} steps, ${p.operations} ops)`),
    explanation: report.explanation,
    checkMs: Math.round(performance.now() - started),
    anomalies,
  };
}

/** stuckOperations are the operations no linearization could place next after the longest prefix found. */
function stuckOperations(ops: readonly Operation<InstanceInput, InstanceOutput>[], prefix: readonly number[]): Operation<InstanceInput, InstanceOutput>[] {
  const done = new Set(prefix);
  let earliestReturn = Number.POSITIVE_INFINITY;
  for (const [index, op] of ops.entries()) if (!done.has(index) && op.return < earliestReturn) earliestReturn = op.return;
  return ops.filter((op, index) => !done.has(index) && op.call <= earliestReturn);
}

// ---------------------------------------------------------------------------------------------------------------
// Set.

interface AddRecord {
  readonly element: number;
  readonly invoke: number;
  complete: number;
  outcome: 'ok' | 'fail' | 'info';
  readonly process: number;
}

interface ReadRecord {
  readonly process: number;
  readonly invoke: number;
  readonly complete: number;
  readonly elements: ReadonlySet<number>;
  readonly foreign: readonly string[];
  readonly final: boolean;
  readonly node: string;
}

/** SetServiceResult is the set checker's verdict on one service. */
export interface SetServiceResult {
  readonly service: string;
  readonly attempted: number;
  readonly acknowledged: number;
  readonly lost: readonly string[];
  readonly unexpected: readonly string[];
  readonly failedButVisible: readonly number[];
  readonly stale: readonly string[];
  readonly disappeared: readonly string[];
  readonly recovered: number;
  readonly infoAbsent: number;
  readonly reads: number;
  readonly finalReads: number;
  /** counts are exact; the lists above keep at most listLimit entries each. */
  readonly counts: { readonly lost: number; readonly unexpected: number; readonly failedButVisible: number; readonly stale: number; readonly disappeared: number };
}

/** SetResult is the set checker's verdict on every service. */
export interface SetResult {
  readonly valid: boolean;
  readonly services: readonly SetServiceResult[];
  readonly lostCount: number;
  readonly staleCount: number;
  readonly anomalies: readonly OperationRef[];
  readonly problems: readonly string[];
}

/** listLimit bounds each list kept in the result (counts stay exact). */
const listLimit = 50;

function valueOf(event: HistoryEvent): Record<string, unknown> {
  return typeof event.value === 'object' && event.value !== null ? (event.value as Record<string, unknown>) : {};
}

/** collectSet pairs the set events of each process into adds and reads, grouped by service. */
function collectSet(events: readonly HistoryEvent[]): Map<string, { adds: Map<number, AddRecord>; reads: ReadRecord[] }> {
  const byService = new Map<string, { adds: Map<number, AddRecord>; reads: ReadRecord[] }>();
  const open = new Map<number, HistoryEvent>();
  for (const event of events) {
    if (event.type === 'invoke') {
      open.set(event.process, event);
      continue;
    }
    const invoke = open.get(event.process);
    open.delete(event.process);
    if (invoke === undefined) continue;
    const value = valueOf(invoke);
    const service = String(value['service']);
    let group = byService.get(service);
    if (group === undefined) byService.set(service, (group = { adds: new Map(), reads: [] }));
    if (event.f === 'add') {
      const element = Number(value['element']);
      group.adds.set(element, { element, invoke: invoke.time, complete: event.time, outcome: event.type, process: event.process });
    } else if (event.type === 'ok') {
      const done = valueOf(event);
      const elements = new Set((done['elements'] as number[] | undefined) ?? []);
      const foreign = (done['foreign'] as string[] | undefined) ?? [];
      group.reads.push({ process: event.process, invoke: invoke.time, complete: event.time, elements, foreign, final: value['final'] === true, node: String(value['node']) });
    }
  }
  // Adds still open at the end of the history are unknown.
  for (const invoke of open.values()) {
    if (invoke.f !== 'add') continue;
    const value = valueOf(invoke);
    const group = byService.get(String(value['service']));
    const element = Number(value['element']);
    group?.adds.set(element, { element, invoke: invoke.time, complete: Number.POSITIVE_INFINITY, outcome: 'info', process: invoke.process });
  }
  return byService;
}

/** checkSet checks the set workload's history. */
export function checkSet(events: readonly RecordedEvent[]): SetResult {
  const setEvents = clientEvents(events, new Set(['add', 'read-set']));
  const services: SetServiceResult[] = [];
  const anomalies: OperationRef[] = [];
  const problems: string[] = [];
  for (const [service, group] of collectSet(setEvents)) {
    const result = checkService(service, group.adds, group.reads, anomalies);
    services.push(result);
    if (result.finalReads === 0) problems.push(`${service}: no final read succeeded, so lost writes cannot be ruled out`);
  }
  const lostCount = services.reduce((sum, s) => sum + s.counts.lost, 0);
  const staleCount = services.reduce((sum, s) => sum + s.counts.stale, 0);
  const bad = services.some((s) => Object.values(s.counts).some((count) => count > 0));
  return { valid: !bad && problems.length === 0, services, lostCount, staleCount, anomalies, problems };
}

function checkService(service: string, adds: ReadonlyMap<number, AddRecord>, reads: readonly ReadRecord[], anomalies: OperationRef[]): SetServiceResult {
  const finals = reads.filter((read) => read.final);
  const lost: string[] = [];
  let recovered = 0;
  let infoAbsent = 0;
  for (const add of adds.values()) {
    const missingOn = finals.filter((read) => !read.elements.has(add.element)).map((read) => read.node);
    if (add.outcome === 'ok' && missingOn.length > 0) {
      lost.push(`${add.element} (acknowledged, absent from the final read of ${missingOn.join(', ')})`);
      anomalies.push({ process: add.process, time: add.invoke });
    }
    if (add.outcome === 'info') {
      if (finals.length > 0 && missingOn.length === 0) recovered++;
      else infoAbsent++;
    }
  }
  const unexpected = new Set<string>();
  const failedButVisible = new Set<number>();
  for (const read of reads) {
    for (const element of read.elements) {
      const add = adds.get(element);
      if (add === undefined) unexpected.add(`${element}`);
      else if (add.outcome === 'fail') failedButVisible.add(element);
    }
    for (const address of read.foreign) unexpected.add(address);
  }
  const stale = staleReads(adds, reads, anomalies);
  const disappeared = disappearances(reads, anomalies);
  return {
    service,
    attempted: adds.size,
    acknowledged: [...adds.values()].filter((add) => add.outcome === 'ok').length,
    lost: lost.slice(0, listLimit),
    unexpected: [...unexpected].slice(0, listLimit),
    failedButVisible: [...failedButVisible].slice(0, listLimit),
    stale: stale.slice(0, listLimit),
    disappeared: disappeared.slice(0, listLimit),
    recovered,
    infoAbsent,
    reads: reads.length,
    finalReads: finals.length,
    counts: { lost: lost.length, unexpected: unexpected.size, failedButVisible: failedButVisible.size, stale: stale.length, disappeared: disappeared.length },
  };
}

/** staleReads: a read that lacks an element whose add was acknowledged before the read was invoked. */
function staleReads(adds: ReadonlyMap<number, AddRecord>, reads: readonly ReadRecord[], anomalies: OperationRef[]): string[] {
  const acknowledged = [...adds.values()].filter((add) => add.outcome === 'ok').sort((a, b) => a.complete - b.complete);
  const stale: string[] = [];
  for (const read of reads) {
    const missing: number[] = [];
    for (const add of acknowledged) {
      if (add.complete >= read.invoke) break;
      if (!read.elements.has(add.element)) missing.push(add.element);
    }
    if (missing.length === 0) continue;
    anomalies.push({ process: read.process, time: read.invoke });
    stale.push(`read on ${read.node} (process ${read.process}${read.final ? ', final' : ''}) lacks ${missing.length} acknowledged element(s): ${missing.slice(0, 10).join(', ')}`);
  }
  return stale;
}

/** disappearances: an element present in one read and absent from a read invoked after that one completed. */
function disappearances(reads: readonly ReadRecord[], anomalies: OperationRef[]): string[] {
  const ordered = [...reads].sort((a, b) => a.invoke - b.invoke);
  const found: string[] = [];
  const seen = new Map<number, number>(); // element -> earliest completion of a read that contained it
  const byCompletion = [...reads].sort((a, b) => a.complete - b.complete);
  let next = 0;
  for (const read of ordered) {
    for (; next < byCompletion.length && (byCompletion[next] as ReadRecord).complete < read.invoke; next++) {
      const earlier = byCompletion[next] as ReadRecord;
      for (const element of earlier.elements) if (!seen.has(element)) seen.set(element, earlier.complete);
    }
    const gone = [...seen.keys()].filter((element) => !read.elements.has(element));
    if (gone.length === 0) continue;
    anomalies.push({ process: read.process, time: read.invoke });
    found.push(`read on ${read.node} (process ${read.process}) lacks ${gone.length} element(s) an earlier read returned: ${gone.slice(0, 10).join(', ')}`);
  }
  return found;
}

// ---------------------------------------------------------------------------------------------------------------
// Availability and recovery.

/** Availability is one f's outcome counts and ok latencies (ms). */
export interface Availability {
  readonly f: string;
  readonly ok: number;
  readonly fail: number;
  readonly info: number;
  readonly okShare: number;
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
}

function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? null;
}

/** availability counts outcomes and ok latencies per f over the client events. */
export function availability(events: readonly RecordedEvent[]): Availability[] {
  const open = new Map<number, HistoryEvent>();
  const byF = new Map<string, { ok: number; fail: number; info: number; latencies: number[] }>();
  for (const event of events) {
    if (!isClientEvent(event)) continue;
    if (event.type === 'invoke') {
      open.set(event.process, event);
      continue;
    }
    const invoke = open.get(event.process);
    open.delete(event.process);
    let entry = byF.get(event.f);
    if (entry === undefined) byF.set(event.f, (entry = { ok: 0, fail: 0, info: 0, latencies: [] }));
    entry[event.type]++;
    if (event.type === 'ok' && invoke !== undefined) entry.latencies.push((event.time - invoke.time) / 1e6);
  }
  return [...byF].map(([f, entry]) => {
    const sorted = entry.latencies.sort((a, b) => a - b);
    const total = entry.ok + entry.fail + entry.info;
    return { f, ok: entry.ok, fail: entry.fail, info: entry.info, okShare: total === 0 ? 0 : entry.ok / total, p50Ms: round(percentile(sorted, 0.5)), p99Ms: round(percentile(sorted, 0.99)) };
  });
}

function round(value: number | null): number | null {
  return value === null ? null : Math.round(value * 10) / 10;
}

/** Recovery is, per f, how long after the final heal the first operation invoked after it succeeded (ms). */
export interface Recovery {
  readonly healTime: number | null;
  readonly byF: Readonly<Record<string, number | null>>;
  /** recoveryMs is the largest of byF (every kind of operation works again), null if one never recovered. */
  readonly recoveryMs: number | null;
}

/** recovery measures the time to the first ok of each f invoked after `healTime` (ns), final reads included. */
export function recovery(events: readonly RecordedEvent[], healTime: number | null, fs: readonly string[]): Recovery {
  if (healTime === null) return { healTime, byF: {}, recoveryMs: null };
  const open = new Map<number, HistoryEvent>();
  const firstOk = new Map<string, number>();
  for (const event of events) {
    if (!isClientEvent(event)) continue;
    if (event.type === 'invoke') {
      open.set(event.process, event);
      continue;
    }
    const invoke = open.get(event.process);
    open.delete(event.process);
    if (invoke === undefined || invoke.time < healTime || event.type !== 'ok') continue;
    if (!firstOk.has(event.f)) firstOk.set(event.f, (event.time - healTime) / 1e6);
  }
  const byF = Object.fromEntries(fs.map((f) => [f, round(firstOk.get(f) ?? null)]));
  const values = Object.values(byF);
  const recoveryMs = values.some((v) => v === null) || values.length === 0 ? null : Math.max(...(values as number[]));
  return { healTime, byF, recoveryMs };
}

// ---------------------------------------------------------------------------------------------------------------
// Retries (A14).

/** RetrySummary counts the idempotent retries of a run (generator.ts): what they resolved, and refused repeats. */
export interface RetrySummary {
  /** retried: operations resent after an outcome-unknown attempt (their completion lists `tries`). */
  readonly retried: number;
  /** resolvedOk: retried operations a retry answered ok (its first result when the first attempt had applied). */
  readonly resolvedOk: number;
  /** leftUnknown: retried operations that ended info (attempts or window ran out). */
  readonly leftUnknown: number;
  /** impatient: operations whose first attempt had the short deadline; impatientUnknown: of those, the ones it left unknown. */
  readonly impatient: number;
  readonly impatientUnknown: number;
  /** attemptsMax is the most attempts one operation took. */
  readonly attemptsMax: number;
  /** reusedRefusals: attempts refused with CAIRN_REQUEST_ID_REUSED: a repeat of the very same request must never be. */
  readonly reusedRefusals: number;
  /** byF counts the retried operations per f. */
  readonly byF: Readonly<Record<string, number>>;
}

/** reusedCode is the refusal of a request id already used by a different write (docs/errors.md). */
const reusedCode = 'CAIRN_REQUEST_ID_REUSED';

/** summarizeRetries reads the completions' `attempts`, `tries` and `impatient` fields. */
export function summarizeRetries(events: readonly RecordedEvent[]): RetrySummary {
  let retried = 0;
  let resolvedOk = 0;
  let leftUnknown = 0;
  let impatient = 0;
  let impatientUnknown = 0;
  let attemptsMax = 1;
  let reusedRefusals = 0;
  const byF: Record<string, number> = {};
  for (const event of events) {
    if (!isClientEvent(event) || event.type === 'invoke' || typeof event.value !== 'object' || event.value === null) continue;
    const value = event.value as Readonly<Record<string, unknown>>;
    const tries = Array.isArray(value['tries']) ? (value['tries'] as unknown[]) : [];
    if (value['impatient'] === true) {
      impatient++;
      if (tries.length > 0) impatientUnknown++;
    }
    if (typeof value['error'] === 'string' && value['error'].startsWith(reusedCode) && tries.length === 0) reusedRefusals++;
    if (tries.length === 0) continue;
    retried++;
    byF[event.f] = (byF[event.f] ?? 0) + 1;
    if (event.type === 'ok') resolvedOk++;
    else leftUnknown++;
    if (typeof value['attempts'] === 'number') attemptsMax = Math.max(attemptsMax, value['attempts']);
    for (const attempt of tries) {
      const error = typeof attempt === 'object' && attempt !== null ? (attempt as Record<string, unknown>)['error'] : undefined;
      if (typeof error === 'string' && error.startsWith(reusedCode)) reusedRefusals++;
    }
  }
  return { retried, resolvedOk, leftUnknown, impatient, impatientUnknown, attemptsMax, reusedRefusals, byF };
}
