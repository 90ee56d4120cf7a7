// checkers-overrides: the overrides workload's checker (PEERS.md §2.3 C3, "the operator override persists";
// workloads/overrides.ts makes the history).
//
// The expected state of an instance is the operator's, never the client's: `enabled` and the weight of the last
// operator action that took effect (docs/ap.md "Operator changes"); before any action, enabled with the client's
// weight. Client registrations, deregistrations followed by a registration, expiry and revival change nothing of it.
// With one operator (C3) each action names the whole override (workloads/overrides.ts), so an action's state is
// {enabled, its weight or, when it names none, the client's}. With two operators per service (C3b, operators
// 'per-attribute') operator E's actions write only `enabled` and operator W's only the weight, and each attribute
// must show the value of the last action that wrote it: `enabled` from E's, the weight from W's (before any, the
// client's), because the override merges attribute by attribute, each by the version of the write that set it.
//
// Which actions may have taken effect when a read is served (`allowedStates`) is decided per attribute, from the
// actions that write it: the **decided** action of the attribute is the last acknowledged one whose acknowledgement
// is at least `syncMs` older than the read's invoke (then every member must show it); every action writing it
// invoked after that and before the read completed may show too (acknowledged but not yet synced, or of unknown
// outcome); so may an action of unknown outcome invoked before it whose request may still have been applied after
// it (`unknownApplyMs`: a request that timed out can still be received and forwarded that long after it was sent,
// and then it is the later write). As the case asks, a `fail` counts as unknown too: a refusal such as
// CAIRN_INSTANCE_NOT_FOUND can follow a forward attempt that applied. An allowed state takes `enabled` from one of
// its attribute's candidates and the weight from one of its own, except pairs that no order of writes can produce:
// two different actions X (for enabled) and Y (for the weight) where X also writes the weight and Y also writes
// `enabled` (X last for enabled needs X after Y, Y last for the weight needs Y after X). The client's registration
// counts as a write of both, older than every action. So with one operator both attributes come from the same action
// (C3's states exactly), and with one operator per attribute every pair is allowed. An attribute is judged on a read
// only when every allowed state agrees on it.
//
// Checked:
// 1. Quiet reads. A read is quiet when no partition overlaps it and the last heal is at least `healSettleMs` before
//    it (the heal's push, else one verify round, has reached every member). On a quiet read, an instance whose
//    allowed states are all disabled must not be listed (`listedDisabled`: the core C3 property; a client's
//    re-registration must not re-enable it), a listed instance must carry the allowed weight, and the detail the
//    allowed weight and, when the answer carries the field, the allowed `enabled` (`weightReverted`,
//    `detailEnabled`). Absence is not judged here: an instance is legitimately missing in a redeploy's gap, after a
//    beat pause past the delete timeout, and after a heal until its next beat (docs/ap.md "In a partition").
// 2. Final state. After the final heal and the recovery window the workload reads every member's lists and every
//    instance's detail in rounds. A round agrees when, for every instance still registered at the end (its client's
//    last write is a registration: all of them, by construction), every member lists it exactly when its allowed
//    states are enabled, with the allowed weight, its detail is found with the allowed weight (and `enabled`), and
//    all members read the same. Valid only when a round agrees within `finalBoundMs` (D1's T) of the later of the
//    heal and the last operator or client write, and every later round agrees too (`finalNotConverged`,
//    `finalFlapped`).
// Reported: operator actions by kind and outcome, client registrations by event and outcome, deregistrations, beat
// pauses, beats, reads judged (and how many against a disabled state after a client re-registration), violations.

import { limits } from '../src/limits.ts';
import type { OperationRef } from './checkers.ts';
import { callsOf, distroPeriods, type Call } from './checkers-beats.ts';
import { isNemesisEvent, isObserverEvent, type RecordedEvent } from './history.ts';
import { convergenceBoundMs } from './workloads/ephemeral.ts';
import type { OverrideScope, OverridesSetup } from './workloads/overrides.ts';

const ns = 1e6;
/** listLimit bounds the violation texts kept; anomaliesMax the operations outlined in the timeline. */
const listLimit = 50;
const anomaliesMax = 200;
/** errorCodesMax bounds the distinct error texts counted for the operator's actions. */
const errorCodesMax = 20;

/** OverrideBounds are the checker's bounds in milliseconds; overrideBounds documents how each is derived. */
export interface OverrideBounds {
  /** syncMs: from an action's acknowledgement until every connected member shows it. */
  readonly syncMs: number;
  /** healSettleMs: from a heal until every member shows what the other side changed. */
  readonly healSettleMs: number;
  /** unknownApplyMs: how long after its invoke an action of unknown outcome may still be applied. */
  readonly unknownApplyMs: number;
  /** finalBoundMs: from the later of the heal and the last write until the final rounds must agree. */
  readonly finalBoundMs: number;
}

/**
 * overrideBounds:
 * - syncMs = 3 s: a change is queued and sent to every live peer within distroSyncDelayMs (20 ms); 3 s is the
 *   case's allowance for scheduling and one lost message's resend at the next change (a loss is repaired by verify,
 *   which only quiet windows longer than healSettleMs also cover).
 * - healSettleMs = up-detection 2.5 s (a heartbeat and a channel replacement, D2's) + one verify round (5 s, if the
 *   reconnection push missed something) + 0.5 s = 8 s.
 * - unknownApplyMs = the members' receive bound (requestReceiveMsMax 10 s, checked every httpConnectionsCheckMs, two
 *   checks allowed: 12 s) + a forward and its retry (2 x distroPeerTimeoutMs 2 s) + 1 s = 17 s.
 * - finalBoundMs = D1's T (two verify rounds + 5 s = 15 s).
 */
export function overrideBounds(): OverrideBounds {
  const upDetectMs = distroPeriods.heartbeatMs + distroPeriods.channelReplaceMs;
  return {
    syncMs: 3000,
    healSettleMs: upDetectMs + distroPeriods.verifyMs + 500,
    unknownApplyMs: limits.requestReceiveMsMax + 2 * limits.httpConnectionsCheckMs + 2 * distroPeriods.peerTimeoutMs + 1000,
    finalBoundMs: convergenceBoundMs,
  };
}

/** OverrideState is what an instance must show: listed exactly when enabled, with this weight. */
export interface OverrideState {
  readonly enabled: boolean;
  readonly weight: number;
}

/** Action is one operator action, invoke and completion merged (never completed: info at infinity). */
export interface Action {
  readonly service: string;
  readonly element: number;
  /** enabled: the `enabled` it writes; null only for a weight-only action (scope 'weight'). */
  readonly enabled: boolean | null;
  /**
   * weight: the override weight it names. A whole-override action naming none writes the client's weight (the
   * operator had set none yet); an enabled-only action (scope 'enabled') writes no weight.
   */
  readonly weight: number | null;
  /** scope: what it writes: the whole override (C3; absent means this), or only `enabled` or the weight (C3b). */
  readonly scope?: OverrideScope;
  readonly changesWeight: boolean;
  readonly node: string;
  readonly process: number;
  readonly type: 'ok' | 'fail' | 'info';
  readonly invoke: number;
  readonly complete: number;
  readonly error: string | null;
}

/** OverrideAttribute is an attribute of the override the workload changes. */
export type OverrideAttribute = 'enabled' | 'weight';

/** writes: `action` writes `attribute` (null stands for the client's registration, older than every action: both). */
export function writes(action: Action | null, attribute: OverrideAttribute): boolean {
  const scope = action?.scope ?? 'whole';
  return scope === 'whole' || scope === attribute;
}

/** decidedFor is the last acknowledged action writing `attribute` whose acknowledgement is syncMs older than the read (null: none). */
export function decidedFor(actions: readonly Action[], attribute: OverrideAttribute, readInvoke: number, bounds: OverrideBounds): Action | null {
  let decided: Action | null = null;
  for (const action of actions) if (writes(action, attribute) && action.type === 'ok' && action.complete + bounds.syncMs * ns <= readInvoke) decided = action;
  return decided;
}

/**
 * candidatesFor lists the writes of `attribute` a read may show, the decided one first (null: the client's
 * registration), then every later one invoked before the read completed, and every earlier one of unknown outcome
 * that may still have been applied after the decided one.
 */
function candidatesFor(actions: readonly Action[], attribute: OverrideAttribute, readInvoke: number, readComplete: number, bounds: OverrideBounds): (Action | null)[] {
  const decided = decidedFor(actions, attribute, readInvoke, bounds);
  const candidates: (Action | null)[] = [decided];
  for (const action of actions) {
    if (!writes(action, attribute) || action === decided || action.invoke >= readComplete) continue;
    if (decided !== null && action.invoke < decided.invoke) {
      // Superseded by the decided action, unless its outcome is unknown and it may have been applied after it.
      if (action.type === 'ok' || action.invoke + bounds.unknownApplyMs * ns <= decided.invoke) continue;
    }
    candidates.push(action);
  }
  return candidates;
}

/**
 * allowedStates lists the states a read invoked at `readInvoke` and completed at `readComplete` (ns) may show, from
 * the instance's operator actions sorted by invoke: `enabled` from one candidate write of it, the weight from one of
 * its own, the two from one set of writes (see the file comment). Without duplicates, the decided pair first.
 */
export function allowedStates(actions: readonly Action[], clientWeight: number, readInvoke: number, readComplete: number, bounds: OverrideBounds): OverrideState[] {
  const enabledBy = candidatesFor(actions, 'enabled', readInvoke, readComplete, bounds);
  const weightBy = candidatesFor(actions, 'weight', readInvoke, readComplete, bounds);
  const states: OverrideState[] = [];
  for (const x of enabledBy) {
    for (const y of weightBy) {
      if (x !== y && writes(x, 'weight') && writes(y, 'enabled')) continue;
      const state = { enabled: x?.enabled ?? true, weight: y === null ? clientWeight : (y.weight ?? clientWeight) };
      if (!states.some((s) => s.enabled === state.enabled && s.weight === state.weight)) states.push(state);
    }
  }
  return states;
}

/** agreed is the one value every state gives, or undefined when they differ. */
function agreed<T>(states: readonly OverrideState[], pick: (state: OverrideState) => T): T | undefined {
  const first = states[0];
  if (first === undefined) return undefined;
  const value = pick(first);
  return states.every((state) => pick(state) === value) ? value : undefined;
}

/** ListRead is one successful list read. */
interface ListRead {
  readonly service: string;
  readonly node: string;
  readonly process: number;
  readonly invoke: number;
  readonly complete: number;
  readonly round: number | null;
  readonly hosts: ReadonlyMap<number, { readonly weight: number; readonly healthy: boolean }>;
  readonly foreign: number;
}

/** DetailRead is one successful detail read. */
interface DetailRead {
  readonly service: string;
  readonly element: number;
  readonly node: string;
  readonly process: number;
  readonly invoke: number;
  readonly complete: number;
  readonly round: number | null;
  readonly found: boolean;
  readonly weight: number | null;
  readonly enabled: boolean | null;
}

/** ClientWrite is one client registration or deregistration. */
interface ClientWrite {
  readonly f: 'ovr-register' | 'ovr-deregister';
  readonly element: number;
  readonly node: string;
  readonly event: string;
  readonly type: 'ok' | 'fail' | 'info';
  readonly invoke: number;
  readonly complete: number;
}

/** Partition is one partition's interval (ns), from its start's invoke to its heal's info line, and who could not reach whom. */
interface Partition {
  readonly start: number;
  end: number;
  grudge: ReadonlyMap<string, ReadonlySet<string>>;
}

function hostOf(addr: string): string {
  const colon = addr.lastIndexOf(':');
  return colon < 0 ? addr : addr.slice(0, colon);
}

/** apart: members a and b (addresses) were cut from each other, in either direction, in `partition`. */
function apart(partition: Partition, a: string, b: string): boolean {
  const x = hostOf(a);
  const y = hostOf(b);
  return partition.grudge.get(x)?.has(y) === true || partition.grudge.get(y)?.has(x) === true;
}

/** BeatPause is one pause of a client's beats (ns). */
interface BeatPause {
  readonly from: number;
  readonly to: number;
}

/** Model is everything the history says, parsed once. */
interface Model {
  readonly setup: OverridesSetup | null;
  readonly members: readonly string[];
  readonly actions: ReadonlyMap<number, Action[]>;
  readonly writes: ReadonlyMap<number, ClientWrite[]>;
  /** pauses: per element, its client's beat pauses (ns). */
  readonly pauses: ReadonlyMap<number, readonly BeatPause[]>;
  readonly lists: readonly ListRead[];
  readonly details: readonly DetailRead[];
  readonly partitions: readonly Partition[];
  readonly healTime: number | null;
  readonly beats: Record<string, number>;
}

function record(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [value]);
  else list.push(value);
}

/** Call is an invoke merged with its completion. */
const overrideFs: ReadonlySet<string> = new Set(['ovr-register', 'ovr-deregister', 'ovr-beat', 'ovr-operator', 'ovr-read', 'ovr-detail']);

function roundOf(value: Record<string, unknown>): number | null {
  return value['final'] === true && typeof value['round'] === 'number' ? value['round'] : null;
}

/** scopeOf reads an operator action's scope (histories from before C3b carry none: the whole override). */
function scopeOf(value: Record<string, unknown>): OverrideScope {
  return value['scope'] === 'enabled' || value['scope'] === 'weight' ? value['scope'] : 'whole';
}

function addCall(call: Call, model: { actions: Map<number, Action[]>; writes: Map<number, ClientWrite[]>; lists: ListRead[]; details: DetailRead[]; beats: Record<string, number> }): void {
  const v = call.value;
  const element = Number(v['element']);
  const base = { node: String(v['node']), process: call.process, invoke: call.invoke, complete: call.complete };
  switch (call.f) {
    case 'ovr-operator':
      push(model.actions, element, {
        ...base, service: String(v['service']), element, enabled: scopeOf(v) === 'weight' ? null : v['enabled'] === true, weight: typeof v['weight'] === 'number' ? v['weight'] : null,
        changesWeight: v['changesWeight'] === true, type: call.type, error: typeof v['error'] === 'string' ? v['error'] : null, scope: scopeOf(v),
      });
      return;
    case 'ovr-register':
    case 'ovr-deregister':
      push(model.writes, element, { f: call.f, element, node: base.node, event: String(v['event'] ?? 'deregister'), type: call.type, invoke: call.invoke, complete: call.complete });
      return;
    case 'ovr-beat': {
      const key = call.type === 'ok' ? `ok ${String(v['code'])}` : call.type;
      model.beats[key] = (model.beats[key] ?? 0) + 1;
      return;
    }
    case 'ovr-read': {
      if (call.type !== 'ok') return;
      const hosts = new Map<number, { weight: number; healthy: boolean }>();
      for (const host of Array.isArray(v['hosts']) ? (v['hosts'] as unknown[]) : []) {
        if (Array.isArray(host)) hosts.set(Number(host[0]), { weight: Number(host[1]), healthy: host[2] !== false });
      }
      model.lists.push({ ...base, service: String(v['service']), round: roundOf(v), hosts, foreign: Number(v['foreign'] ?? 0) });
      return;
    }
    case 'ovr-detail':
      if (call.type !== 'ok') return;
      model.details.push({
        ...base, service: String(v['service']), element, round: roundOf(v), found: v['found'] === true,
        weight: typeof v['weight'] === 'number' ? v['weight'] : null, enabled: typeof v['enabled'] === 'boolean' ? v['enabled'] : null,
      });
      return;
  }
}

function partitionsOf(events: readonly RecordedEvent[]): { partitions: Partition[]; healTime: number | null } {
  const byId = new Map<number, Partition>();
  const partitions: Partition[] = [];
  let healTime: number | null = null;
  for (const event of events) {
    if (!isNemesisEvent(event)) continue;
    const id = Number(record(event.value)['id']);
    if (event.f === 'start-partition' && event.type === 'invoke') {
      const partition: Partition = { start: event.time, end: Number.POSITIVE_INFINITY, grudge: new Map() };
      byId.set(id, partition);
      partitions.push(partition);
    } else if (event.f === 'start-partition' && event.type === 'info') {
      const partition = byId.get(id);
      const grudge = record(record(event.value)['grudge']);
      if (partition !== undefined) partition.grudge = new Map(Object.entries(grudge).map(([from, tos]) => [from, new Set(Array.isArray(tos) ? tos.map(String) : [])]));
    } else if (event.f === 'stop-partition' && event.type === 'info') {
      const partition = byId.get(id);
      if (partition !== undefined) partition.end = Math.min(partition.end, event.time);
    } else if (event.f === 'heal-all' && event.type === 'info') {
      healTime = event.time;
      for (const partition of partitions) partition.end = Math.min(partition.end, event.time);
    }
  }
  return { partitions, healTime };
}

function modelOf(events: readonly RecordedEvent[]): Model {
  let setup: OverridesSetup | null = null;
  const pauses = new Map<number, BeatPause[]>();
  for (const event of events) {
    if (!isObserverEvent(event)) continue;
    const value = record(event.value);
    if (event.f === 'overrides-setup') setup = event.value as OverridesSetup;
    else if (event.f === 'ovr-beat-pause') push(pauses, Number(value['element']), { from: event.time, to: event.time + Number(value['ms']) * ns });
  }
  const model = { actions: new Map<number, Action[]>(), writes: new Map<number, ClientWrite[]>(), lists: [] as ListRead[], details: [] as DetailRead[], beats: {} as Record<string, number> };
  for (const call of callsOf(events, overrideFs)) addCall(call, model);
  const { partitions, healTime } = partitionsOf(events);
  return { setup, members: setup?.members ?? [], ...model, pauses, partitions, healTime };
}

/** isQuiet: no partition overlaps [from, to], and the last heal before it is at least healSettleMs older. */
function isQuiet(model: Model, from: number, to: number, bounds: OverrideBounds): boolean {
  return model.partitions.every((partition) => partition.start > to || partition.end + bounds.healSettleMs * ns <= from);
}

function clientWeightIn(model: Model, element: number): number {
  return model.setup?.clientWeights[String(element)] ?? 1 + (element % 3);
}

function seconds(time: number): string {
  return `${(time / 1e9).toFixed(2)} s`;
}

/** ViolationCounts counts the violations by kind. */
export interface OverrideViolationCounts {
  /** listedDisabled: quiet list reads showing an instance every allowed state disables (the core C3 property). */
  readonly listedDisabled: number;
  /** listedDisabledAfterRegistration: those with a client registration acknowledged after the decided action. */
  readonly listedDisabledAfterRegistration: number;
  /** listedDisabledAfterBeatPause: the others whose client paused its beats after the decided action (expiry, revival by a beat). */
  readonly listedDisabledAfterBeatPause: number;
  /**
   * listedDisabledAfterWeight: listedDisabled reads whose decided weight comes from another action (C3b's operator
   * W) acknowledged after the decided disable: the shape of a whole-override merge, where the weight's write carried
   * its side's older `enabled` over the disable.
   */
  readonly listedDisabledAfterWeight: number;
  /** weightReverted: quiet list or detail reads showing a weight other than the allowed one. */
  readonly weightReverted: number;
  /** detailEnabled: quiet detail reads whose `enabled` is not the allowed one. */
  readonly detailEnabled: number;
  /** finalNotConverged: 1 when no final round agreed within finalBoundMs. */
  readonly finalNotConverged: number;
  /** finalFlapped: final rounds after the first agreeing one that did not agree. */
  readonly finalFlapped: number;
}

/** OverridesResult is the checker's verdict and numbers (results.json `overrides`). */
export interface OverridesResult {
  readonly valid: boolean;
  readonly bounds: OverrideBounds;
  readonly operatorWrites: string;
  /** operators: 'one' (C3: each action names the whole override) or 'per-attribute' (C3b: E writes enabled, W the weight). */
  readonly operators: string;
  readonly instances: number;
  /** operator: actions by kind (disable, enable, weight: those that set a new weight) and outcome, and the errors seen. */
  readonly operator: Readonly<Record<'disable' | 'enable' | 'weight', { readonly ok: number; readonly fail: number; readonly info: number }>>;
  readonly operatorErrors: Readonly<Record<string, number>>;
  /** clients: registrations by event (start, restart, redeploy) and outcome; deregistrations; beat pauses; beats by outcome and code. */
  readonly clients: {
    readonly registrations: Readonly<Record<string, { readonly ok: number; readonly fail: number; readonly info: number }>>;
    readonly deregistrations: { readonly ok: number; readonly fail: number; readonly info: number };
    readonly beatPauses: number;
    readonly beats: Readonly<Record<string, number>>;
  };
  readonly reads: {
    readonly lists: number;
    readonly details: number;
    /** detailsWithEnabled: detail answers that carried an `enabled` field. */
    readonly detailsWithEnabled: number;
    /** quietInstanceReads: (read, instance) pairs judged on quiet reads, lists and details. */
    readonly quietInstanceReads: number;
    /** disabledJudged: quiet (list read, instance) pairs whose allowed states all disable it. */
    readonly disabledJudged: number;
    /** disabledJudgedAfterRegistration: those with a client registration acknowledged after the decided action. */
    readonly disabledJudgedAfterRegistration: number;
    /** disabledJudgedAcrossPartition: those whose decided action was acknowledged during a partition (judged after its heal). */
    readonly disabledJudgedAcrossPartition: number;
    /** disabledJudgedRegisteredOtherSide: of those, the element's client registered it again on the other side of that partition. */
    readonly disabledJudgedRegisteredOtherSide: number;
    /**
     * perAttributeJudged: quiet (read, instance) pairs that judged an attribute while the decided `enabled` and the
     * decided weight came from two different actions (C3b: E's and W's).
     */
    readonly perAttributeJudged: number;
    /**
     * splitJudged: of those, the pairs whose two decided actions were acknowledged during one partition through
     * members cut from each other (the race the per-attribute merge is for); splitActions: the distinct such pairs of actions.
     */
    readonly splitJudged: number;
    readonly splitActions: number;
    /**
     * splitRaces: (instance, partition) pairs whose last acknowledged writes of `enabled` and of the weight in that
     * partition were two actions through members cut from each other (made, whether or not they stood to be judged).
     */
    readonly splitRaces: number;
  };
  readonly final: {
    readonly rounds: number;
    readonly convergedAfterMs: number | null;
    readonly firstRoundProblems: readonly string[];
    readonly lastRoundProblems: readonly string[];
  };
  readonly violationCounts: OverrideViolationCounts;
  readonly violations: readonly string[];
  readonly problems: readonly string[];
  readonly anomalies: readonly OperationRef[];
}

/** Tally counts outcomes. */
interface Tally {
  ok: number;
  fail: number;
  info: number;
}

function tally(): Tally {
  return { ok: 0, fail: 0, info: 0 };
}

/** Judgement accumulates the quiet-read checks. */
interface Judgement {
  counts: { listedDisabled: number; listedDisabledAfterRegistration: number; listedDisabledAfterBeatPause: number; listedDisabledAfterWeight: number; weightReverted: number; detailEnabled: number };
  quietInstanceReads: number;
  disabledJudged: number;
  disabledJudgedAfterRegistration: number;
  disabledJudgedAcrossPartition: number;
  disabledJudgedRegisteredOtherSide: number;
  perAttributeJudged: number;
  splitJudged: number;
  /** splitPairs: the distinct (enabled action, weight action) pairs counted in splitJudged, by enabled action. */
  splitPairs: Map<Action, Set<Action>>;
  violations: string[];
  anomalies: OperationRef[];
}

/**
 * acrossPartition: when `decided` was acknowledged during a partition, that partition and the first acknowledged
 * client registration of the element, later in the same partition, through a member cut from the one the action
 * went through (the case the override's own version exists for: the registration is the later write of the entry).
 */
function acrossPartition(model: Model, element: number, decided: Action): { readonly partition: Partition; readonly otherSide: ClientWrite | undefined } | undefined {
  const partition = model.partitions.find((p) => p.start <= decided.complete && decided.complete <= p.end);
  if (partition === undefined) return undefined;
  const otherSide = (model.writes.get(element) ?? []).find((write) => write.f === 'ovr-register' && write.type === 'ok' && write.complete > decided.complete && write.invoke < partition.end && apart(partition, write.node, decided.node));
  return { partition, otherSide };
}

/**
 * countPerAttribute counts a quiet (read, instance) pair that judged an attribute while the decided `enabled` and
 * the decided weight come from two different actions (C3b), and whether those two were acknowledged during one
 * partition through members cut from each other (the race the per-attribute merge is for).
 */
function countPerAttribute(model: Model, actions: readonly Action[], readInvoke: number, bounds: OverrideBounds, judgement: Judgement): void {
  const enabledBy = decidedFor(actions, 'enabled', readInvoke, bounds);
  const weightBy = decidedFor(actions, 'weight', readInvoke, bounds);
  if (enabledBy === null || weightBy === null || enabledBy === weightBy) return;
  judgement.perAttributeJudged++;
  const split = model.partitions.some((p) => p.start <= Math.min(enabledBy.complete, weightBy.complete) && Math.max(enabledBy.complete, weightBy.complete) <= p.end && apart(p, enabledBy.node, weightBy.node));
  if (!split) return;
  judgement.splitJudged++;
  let pairs = judgement.splitPairs.get(enabledBy);
  if (pairs === undefined) judgement.splitPairs.set(enabledBy, (pairs = new Set()));
  pairs.add(weightBy);
}

function flag(judgement: Judgement, text: string, read: { readonly process: number; readonly invoke: number }): void {
  if (judgement.violations.length < listLimit) judgement.violations.push(text);
  if (judgement.anomalies.length < anomaliesMax) judgement.anomalies.push({ process: read.process, time: read.invoke });
}

/** splitRacesOf counts the races of two actions on the two sides of a partition (OverridesResult reads.splitRaces). */
function splitRacesOf(model: Model): number {
  let races = 0;
  for (const actions of model.actions.values()) {
    for (const partition of model.partitions) {
      const within = actions.filter((a) => a.type === 'ok' && partition.start <= a.complete && a.complete <= partition.end);
      const enabledBy = within.filter((a) => writes(a, 'enabled')).at(-1);
      const weightBy = within.filter((a) => writes(a, 'weight')).at(-1);
      if (enabledBy !== undefined && weightBy !== undefined && enabledBy !== weightBy && apart(partition, enabledBy.node, weightBy.node)) races++;
    }
  }
  return races;
}

/** judgeList checks one quiet list read against every instance of its service. */
function judgeList(model: Model, read: ListRead, elements: readonly number[], bounds: OverrideBounds, judgement: Judgement): void {
  for (const element of elements) {
    const actions = model.actions.get(element) ?? [];
    const states = allowedStates(actions, clientWeightIn(model, element), read.invoke, read.complete, bounds);
    judgement.quietInstanceReads++;
    const enabled = agreed(states, (state) => state.enabled);
    const listed = read.hosts.get(element);
    const weight = agreed(states, (state) => state.weight);
    if (enabled === false || (listed !== undefined && weight !== undefined)) countPerAttribute(model, actions, read.invoke, bounds, judgement);
    if (enabled === false) {
      const decided = decidedFor(actions, 'enabled', read.invoke, bounds);
      const weightBy = decidedFor(actions, 'weight', read.invoke, bounds);
      // The lost-change shape (C3b): the weight's last write, another action invoked after the disable, is served
      // with an `enabled` the disable superseded, as a whole-override merge of the weight's side would serve it.
      const laterWeight = weightBy !== null && decided !== null && weightBy !== decided && weightBy.invoke > decided.invoke ? weightBy : null;
      const registration = (model.writes.get(element) ?? []).find((write) => write.f === 'ovr-register' && write.type === 'ok' && decided !== null && write.complete > decided.complete && write.complete < read.invoke);
      const across = decided === null ? undefined : acrossPartition(model, element, decided);
      judgement.disabledJudged++;
      if (registration !== undefined) judgement.disabledJudgedAfterRegistration++;
      if (across !== undefined) judgement.disabledJudgedAcrossPartition++;
      if (across?.otherSide !== undefined) judgement.disabledJudgedRegisteredOtherSide++;
      if (listed !== undefined) {
        judgement.counts.listedDisabled++;
        const pause = registration === undefined ? (model.pauses.get(element) ?? []).find((p) => decided !== null && p.to > decided.complete && p.from < read.invoke) : undefined;
        if (registration !== undefined) judgement.counts.listedDisabledAfterRegistration++;
        if (pause !== undefined) judgement.counts.listedDisabledAfterBeatPause++;
        if (laterWeight !== null) judgement.counts.listedDisabledAfterWeight++;
        const otherSide = across?.otherSide === undefined ? '' : `; disabled during a partition, and registered again on the other side (via ${across.otherSide.node}) at ${seconds(across.otherSide.complete)}`;
        const paused = pause === undefined ? '' : `; its client paused beats ${seconds(pause.from)}-${seconds(pause.to)}`;
        const weighted = laterWeight === null ? '' : `; its weight ${String(laterWeight.weight)} set by a later action via ${laterWeight.node}, acknowledged at ${seconds(laterWeight.complete)} (a lost change of enabled: the whole override merged as one part?)`;
        const cause = (registration === undefined ? '' : `; the client registered it again (${registration.event}) at ${seconds(registration.complete)}`) + paused + otherSide + weighted;
        flag(judgement, `listed-disabled: ${read.service} element ${element} listed by ${read.node} at ${seconds(read.invoke)} (weight ${listed.weight}, ${listed.healthy ? 'healthy' : 'unhealthy'}); disabled by the operator, acknowledged at ${decided === null ? '?' : seconds(decided.complete)}${cause}`, read);
      }
    }
    if (listed !== undefined && weight !== undefined && listed.weight !== weight) {
      judgement.counts.weightReverted++;
      flag(judgement, `weight-reverted: ${read.service} element ${element} listed by ${read.node} at ${seconds(read.invoke)} with weight ${listed.weight}, not ${weight}`, read);
    }
  }
}

/** judgeDetail checks one quiet detail read. */
function judgeDetail(model: Model, read: DetailRead, bounds: OverrideBounds, judgement: Judgement): void {
  if (!read.found) return;
  const actions = model.actions.get(read.element) ?? [];
  const states = allowedStates(actions, clientWeightIn(model, read.element), read.invoke, read.complete, bounds);
  judgement.quietInstanceReads++;
  const enabled = agreed(states, (state) => state.enabled);
  const weight = agreed(states, (state) => state.weight);
  if ((read.enabled !== null && enabled !== undefined) || (read.weight !== null && weight !== undefined)) countPerAttribute(model, actions, read.invoke, bounds, judgement);
  if (read.enabled !== null && enabled !== undefined && read.enabled !== enabled) {
    judgement.counts.detailEnabled++;
    flag(judgement, `detail-enabled: ${read.service} element ${read.element} on ${read.node} at ${seconds(read.invoke)} shows enabled=${read.enabled}, not ${enabled}`, read);
  }
  if (read.weight !== null && weight !== undefined && read.weight !== weight) {
    judgement.counts.weightReverted++;
    flag(judgement, `weight-reverted: ${read.service} element ${read.element} detail on ${read.node} at ${seconds(read.invoke)} shows weight ${read.weight}, not ${weight}`, read);
  }
}

/** registeredAtEnd: the element's client's last write is a registration (attempted), so it must be there at the end. */
function registeredAtEnd(model: Model, element: number): boolean {
  const writes = model.writes.get(element) ?? [];
  const last = writes[writes.length - 1];
  return last !== undefined && last.f === 'ovr-register';
}

/** roundReads groups the final reads by round. */
function roundReads(model: Model): Map<number, { lists: ListRead[]; details: DetailRead[] }> {
  const rounds = new Map<number, { lists: ListRead[]; details: DetailRead[] }>();
  const obtain = (round: number): { lists: ListRead[]; details: DetailRead[] } => {
    let entry = rounds.get(round);
    if (entry === undefined) rounds.set(round, (entry = { lists: [], details: [] }));
    return entry;
  };
  for (const read of model.lists) if (read.round !== null) obtain(read.round).lists.push(read);
  for (const read of model.details) if (read.round !== null) obtain(read.round).details.push(read);
  return rounds;
}

/** finalInstanceProblems lists why one element's final reads on one member do not meet its allowed states. */
function finalInstanceProblems(model: Model, element: number, list: ListRead, detail: DetailRead | undefined, bounds: OverrideBounds): string[] {
  const problems: string[] = [];
  const where = `${list.service} element ${element} on ${list.node}`;
  const states = allowedStates(model.actions.get(element) ?? [], clientWeightIn(model, element), list.invoke, list.complete, bounds);
  const enabled = new Set(states.map((state) => state.enabled));
  const listed = list.hosts.get(element);
  if (listed !== undefined && !enabled.has(true)) problems.push(`${where}: listed, but the operator disabled it`);
  if (listed === undefined && !enabled.has(false)) problems.push(`${where}: enabled, not listed`);
  const enabledWeights = states.filter((state) => state.enabled).map((state) => state.weight);
  if (listed !== undefined && enabledWeights.length > 0 && !enabledWeights.includes(listed.weight)) problems.push(`${where}: listed with weight ${listed.weight}, not ${enabledWeights.join(' or ')}`);
  if (detail === undefined) problems.push(`${where}: no detail read`);
  else if (!detail.found) problems.push(`${where}: detail not found`);
  else {
    if (detail.weight !== null && !states.some((state) => state.weight === detail.weight)) problems.push(`${where}: detail weight ${detail.weight}, not ${[...new Set(states.map((s) => s.weight))].join(' or ')}`);
    if (detail.enabled !== null && !enabled.has(detail.enabled)) problems.push(`${where}: detail enabled=${detail.enabled}`);
  }
  return problems;
}

/** roundProblemsOf lists why one final round does not agree (empty when it does). */
function roundProblemsOf(model: Model, reads: { lists: readonly ListRead[]; details: readonly DetailRead[] }, bounds: OverrideBounds): string[] {
  const problems: string[] = [];
  for (const service of model.setup?.services ?? []) {
    const seen = new Map<string, string>();
    for (const member of model.members) {
      const list = reads.lists.find((read) => read.service === service.name && read.node === member);
      if (list === undefined) {
        problems.push(`${service.name}: no final list read from ${member}`);
        continue;
      }
      if (list.foreign > 0) problems.push(`${service.name} on ${member}: ${list.foreign} foreign instance(s) listed`);
      const summary: string[] = [];
      for (const element of service.elements) {
        if (!registeredAtEnd(model, element)) continue;
        const detail = reads.details.find((read) => read.element === element && read.node === member);
        problems.push(...finalInstanceProblems(model, element, list, detail, bounds));
        const listed = list.hosts.get(element);
        summary.push(`${element}:${listed === undefined ? '-' : listed.weight}/${detail === undefined ? '?' : `${String(detail.found)},${String(detail.weight)},${String(detail.enabled)}`}`);
      }
      seen.set(member, summary.join(' '));
    }
    if (new Set(seen.values()).size > 1) problems.push(`${service.name}: members read different states (${[...seen].map(([m, s]) => `${m} ${s}`).join('; ')})`);
  }
  return problems;
}

/** overrideRoundProblems: why final round `round` of the history does not agree (the runner's stop condition). */
export function overrideRoundProblems(events: readonly RecordedEvent[], round: number): string[] {
  const model = modelOf(events);
  const reads = roundReads(model).get(round);
  return reads === undefined ? [`no reads of final round ${round}`] : roundProblemsOf(model, reads, overrideBounds());
}

function counted(model: Model): Pick<OverridesResult, 'operator' | 'operatorErrors' | 'clients'> {
  const operator = { disable: tally(), enable: tally(), weight: tally() };
  const operatorErrors: Record<string, number> = {};
  for (const actions of model.actions.values()) {
    for (const action of actions) {
      if (action.enabled !== null) operator[action.enabled ? 'enable' : 'disable'][action.type]++;
      if (action.changesWeight) operator.weight[action.type]++;
      if (action.error !== null) {
        const code = action.error.slice(0, 80);
        if (code in operatorErrors || Object.keys(operatorErrors).length < errorCodesMax) operatorErrors[code] = (operatorErrors[code] ?? 0) + 1;
      }
    }
  }
  const registrations: Record<string, Tally> = {};
  const deregistrations = tally();
  for (const writes of model.writes.values()) {
    for (const write of writes) {
      if (write.f === 'ovr-deregister') deregistrations[write.type]++;
      else (registrations[write.event] ??= tally())[write.type]++;
    }
  }
  const beatPauses = [...model.pauses.values()].reduce((sum, list) => sum + list.length, 0);
  return { operator, operatorErrors, clients: { registrations, deregistrations, beatPauses, beats: model.beats } };
}

/** judgeFinal checks the final rounds: agreement within the bound, and no disagreement after it. */
function judgeFinal(model: Model, bounds: OverrideBounds, anomalies: OperationRef[]): { final: OverridesResult['final']; notConverged: number; flappedRounds: number; flapped: string[]; problems: string[] } {
  const rounds = [...roundReads(model)].sort((a, b) => a[0] - b[0]).map(([, reads]) => reads);
  const lastWrite = Math.max(
    0,
    ...[...model.actions.values()].flat().map((a) => a.complete).filter(Number.isFinite),
    ...[...model.writes.values()].flat().map((w) => w.complete).filter(Number.isFinite),
  );
  const from = Math.max(model.healTime ?? 0, lastWrite);
  let convergedAt: number | null = null;
  let flappedRounds = 0;
  const flapped: string[] = [];
  for (const reads of rounds) {
    const problems = roundProblemsOf(model, reads, bounds);
    const time = Math.max(...reads.lists.map((r) => r.complete), ...reads.details.map((r) => r.complete));
    if (problems.length === 0 && convergedAt === null) convergedAt = time;
    else if (problems.length > 0 && convergedAt !== null) {
      flappedRounds++;
      if (flapped.length < listLimit) flapped.push(...problems.slice(0, 3).map((p) => `final-flapped: after agreeing, at ${seconds(time)}: ${p}`));
      const first = reads.lists[0];
      if (first !== undefined && anomalies.length < anomaliesMax) anomalies.push({ process: first.process, time: first.invoke });
    }
  }
  const convergedAfterMs = convergedAt === null ? null : Math.round((convergedAt - from) / ns);
  const problems: string[] = [];
  let notConverged = 0;
  if (rounds.length === 0) problems.push('no final read round succeeded');
  else if (convergedAfterMs === null || convergedAfterMs > bounds.finalBoundMs) {
    notConverged = 1;
    problems.push(convergedAfterMs === null ? `the final rounds never agreed with the operator's state (${rounds.length} rounds)` : `the final rounds agreed only ${convergedAfterMs} ms after the heal / last write (bound ${bounds.finalBoundMs} ms)`);
  }
  const first = rounds[0];
  const last = rounds[rounds.length - 1];
  return {
    flappedRounds,
    final: {
      rounds: rounds.length,
      convergedAfterMs,
      firstRoundProblems: first === undefined ? [] : roundProblemsOf(model, first, bounds).slice(0, 10),
      lastRoundProblems: last === undefined ? [] : roundProblemsOf(model, last, bounds).slice(0, listLimit),
    },
    notConverged,
    flapped,
    problems,
  };
}

/** checkOverrides judges an overrides history (see the file comment). */
export function checkOverrides(events: readonly RecordedEvent[]): OverridesResult {
  const bounds = overrideBounds();
  const model = modelOf(events);
  const problems: string[] = [];
  if (model.setup === null) problems.push('no overrides-setup line: the workload did not start');
  const elementsOf = new Map((model.setup?.services ?? []).map((service) => [service.name, service.elements]));
  const judgement: Judgement = {
    counts: { listedDisabled: 0, listedDisabledAfterRegistration: 0, listedDisabledAfterBeatPause: 0, listedDisabledAfterWeight: 0, weightReverted: 0, detailEnabled: 0 },
    quietInstanceReads: 0, disabledJudged: 0, disabledJudgedAfterRegistration: 0, disabledJudgedAcrossPartition: 0, disabledJudgedRegisteredOtherSide: 0,
    perAttributeJudged: 0, splitJudged: 0, splitPairs: new Map(), violations: [], anomalies: [],
  };
  for (const read of model.lists) {
    if (read.foreign > 0 && read.round === null) problems.push(`${read.service} on ${read.node} at ${seconds(read.invoke)}: ${read.foreign} foreign instance(s) listed`);
    if (isQuiet(model, read.invoke, read.complete, bounds)) judgeList(model, read, elementsOf.get(read.service) ?? [], bounds, judgement);
  }
  for (const read of model.details) if (isQuiet(model, read.invoke, read.complete, bounds)) judgeDetail(model, read, bounds, judgement);
  const final = judgeFinal(model, bounds, judgement.anomalies);
  const counts = counted(model);
  if (counts.operator.disable.ok === 0) problems.push('no operator disable was acknowledged: nothing was tested');
  else if (judgement.disabledJudged === 0) problems.push('no quiet read was judged against an acknowledged disable: nothing was tested');
  const violationCounts: OverrideViolationCounts = { ...judgement.counts, finalNotConverged: final.notConverged, finalFlapped: final.flappedRounds };
  const violations = [...judgement.violations, ...final.flapped.slice(0, 10)];
  const valid = problems.length === 0 && final.problems.length === 0 && Object.values(violationCounts).every((n) => n === 0);
  return {
    valid,
    bounds,
    operatorWrites: model.setup?.operatorWrites ?? 'unknown',
    operators: model.setup?.operators ?? 'one',
    instances: (model.setup?.services ?? []).reduce((sum, service) => sum + service.elements.length, 0),
    ...counts,
    reads: {
      lists: model.lists.length,
      details: model.details.length,
      detailsWithEnabled: model.details.filter((read) => read.enabled !== null).length,
      quietInstanceReads: judgement.quietInstanceReads,
      disabledJudged: judgement.disabledJudged,
      disabledJudgedAfterRegistration: judgement.disabledJudgedAfterRegistration,
      disabledJudgedAcrossPartition: judgement.disabledJudgedAcrossPartition,
      disabledJudgedRegisteredOtherSide: judgement.disabledJudgedRegisteredOtherSide,
      perAttributeJudged: judgement.perAttributeJudged,
      splitJudged: judgement.splitJudged,
      splitActions: [...judgement.splitPairs.values()].reduce((sum, set) => sum + set.size, 0),
      splitRaces: splitRacesOf(model),
    },
    final: final.final,
    violationCounts,
    violations,
    problems: [...problems.slice(0, 10), ...final.problems],
    anomalies: judgement.anomalies,
  };
}
