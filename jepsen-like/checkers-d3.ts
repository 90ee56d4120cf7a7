// checkers-d3: mass heartbeat loss (PEERS.md §2.3 D3), judged on the beats workload's history when it holds cuts of
// every beating client from every member (`start-clients-cut` / `stop-clients-cut` nemesis lines; workloads/beats.ts
// `cutClients`). Cairn's documented behaviour is expiry, with no self-preservation (docs/ap.md "Beats, expiry and
// sessions"): silent instances are flagged unhealthy after their unhealthy timeout and removed after their delete
// timeout, however many go silent at once; a beat that finds its instance removed registers it again from its body.
//
// Times. A cut is in force from its start's info line (`cutFrom`: every rule applied; earlier packets may pass) to
// its stop's invoke (`cutTo`: the rules begin to go); it is healed at the stop's info line (`healedAt`). A beat or
// registration attempt (ok or unknown; a refused one was never sent) may have been applied at its latest:
// - at its completion, if it completed before the cut, or after the cut's end (its packets may pass after it);
// - at `cutFrom`, if it was sent before the cut and completed inside it;
// - never, if it was sent and completed inside the cut (every packet between the beaters' address and the members is
//   dropped both ways, so it did not reach a member).
// So within a cut, `lastPossible` (the latest application before the cut's end of any attempt: none sent inside it
// applies before its end) bounds the members' last beat from above, and `lastAck` (the invoke of the last
// acknowledged attempt, the earliest time it can have applied) from below.
//
// Per cut and per instance whose client was beating when the cut began (an acknowledged beat or registration before
// it; the client not stopped by `cutFrom`):
// (a) no early expiry: no member that listed the instance lists it unhealthy before lastAck + unhealthyMs, or
//     lacks it before lastAck + removeMs (less slackMs, D2's 250 ms), at any read from the cut's start until the
//     instance's next acknowledged beat.
// (b) expiry happens: every read invoked in the cut from lastPossible + unhealthyMs + expirySlackMs on shows it
//     unhealthy or absent, and from lastPossible + removeMs + expirySlackMs on absent, on every member; and it was
//     flagged unhealthy before it was removed: seen unhealthy by some read, unless no member's reads were close enough
//     around its disappearance to see the flag (then counted as `flagUnobserved`, not judged). Judged only when the
//     deadline falls inside the cut (`notDue` otherwise).
// (c) recovery: every instance whose client beats through the recovery bound after the heal (an instance of the cut,
//     or one its client started during the cut and could not register) is listed healthy by every member at its
//     first read invoked from healedAt + recoveryBoundMs on (before the client stops and before the next cut).
//
// d3Bounds derives expirySlackMs and recoveryBoundMs from the timings and Distro's periods. Reported: per-cut counts,
// latencies (last acknowledged beat -> flagged on every member, -> gone from every member; heal -> listed healthy on
// every member) with p50/max, and the instances brought back by a beat after their removal (`reRegistered`).

import type { OperationRef } from './checkers.ts';
import { callsOf, distroPeriods, setupOf, stats, type Call, type LatencyStats } from './checkers-beats.ts';
import { isNemesisEvent, isObserverEvent, type RecordedEvent } from './history.ts';
import { beatRequestTimeoutMs, beatTimeouts, type BeatTimeouts } from './workloads/beats.ts';

const ns = 1e6;
const listLimit = 40;

/** D3Bounds are the checker's bounds in milliseconds; d3Bounds documents how each is derived. */
export interface D3Bounds extends BeatTimeouts {
  /** slackMs: timer and clock-reading granularity allowed on an early expiry (D2's). */
  readonly slackMs: number;
  /** expirySlackMs: from a timeout's end until every member shows the flag or the removal. */
  readonly expirySlackMs: number;
  /** recoveryBoundMs: from the heal until every member lists a beating instance healthy again. */
  readonly recoveryBoundMs: number;
  /** flagGapMs: consecutive reads of one member closer than this around a removal must have seen the flag. */
  readonly flagGapMs: number;
}

/**
 * d3Bounds:
 * - expirySlackMs = the expiry scan tick (0.5 s) + replication (sync 20 ms, 1 s allowed) + one poll period + a 0.5 s
 *   read = 3 s with 1 s polls: the part of D2/D4's late bound that is not handovers. No member is cut from another
 *   in D3 and none is killed, so no takeover grace and no detection window applies; the question to the peers
 *   (docs/ap.md "Asking the peers") is one round trip between connected members.
 * - recoveryBoundMs = the beat timeout (4.5 s: the attempt a beater sent into the cut just before the heal ends by
 *   then, and its next attempt follows at once, a retry or the next beat) + the beat's forward to the responsible
 *   member (distroPeerTimeoutMs 2 s at worst) + replication (1 s) + one poll period + a 0.5 s read = 9 s with 1 s
 *   polls. The beat applies at once: it revives a flagged instance, or registers a removed one again from its body
 *   (src/ap/distro.ts `beatLocal`), healthy in both cases.
 * - flagGapMs = removeMs - unhealthyMs - 1 s: a member shows the flag from the flip's arrival to the removal's, about
 *   removeMs - unhealthyMs, less a sync allowance when the flip arrives late.
 */
export function d3Bounds(timeouts: BeatTimeouts = beatTimeouts, pollMs = 1000): D3Bounds {
  const readMs = 500;
  const syncAllowanceMs = 1000;
  const expirySlackMs = distroPeriods.expiryTickMs + syncAllowanceMs + pollMs + readMs;
  const recoveryBoundMs = beatRequestTimeoutMs + distroPeriods.peerTimeoutMs + syncAllowanceMs + pollMs + readMs;
  return { ...timeouts, slackMs: 250, expirySlackMs, recoveryBoundMs, flagGapMs: timeouts.removeMs - timeouts.unhealthyMs - syncAllowanceMs };
}

/** ClientsCut is one cut of every beater from every member (ns since the run started). */
export interface ClientsCut {
  readonly id: number;
  readonly cutFrom: number;
  readonly cutTo: number;
  readonly healedAt: number;
  /** nextFrom: the next cut's start (Infinity for the last): recovery is judged before it. */
  readonly nextFrom: number;
}

/** CutSummary is what one cut did (results.json `d3.cuts`). */
export interface CutSummary {
  readonly id: number;
  readonly fromMs: number;
  readonly toMs: number;
  /** subjects: instances whose clients were beating when it began. */
  readonly subjects: number;
  /** removedEverywhere: subjects gone from every member within the cut. */
  readonly removedEverywhere: number;
  /** notDue: subjects whose removal deadline fell after the cut's end (a short cut). */
  readonly notDue: number;
  /** recoverySubjects: instances whose clients beat through the recovery bound after the heal. */
  readonly recoverySubjects: number;
  readonly recovered: number;
  /** reRegistered: recovered instances that every member had removed during the cut (a beat registered them again). */
  readonly reRegistered: number;
}

/** D3Result is the checker's verdict and numbers (results.json `d3`). */
export interface D3Result {
  readonly valid: boolean;
  readonly bounds: D3Bounds;
  readonly cuts: readonly CutSummary[];
  readonly counts: {
    readonly earlyFlags: number;
    readonly earlyRemovals: number;
    readonly stillHealthy: number;
    readonly notRemoved: number;
    readonly notFlagged: number;
    readonly flagUnobserved: number;
    readonly notRecovered: number;
    /** unobserved: judgements skipped because a member had no read in the window. */
    readonly unobserved: number;
  };
  /** flagLatencyMs: last acknowledged beat's completion -> the first read on the slowest member not showing it healthy. */
  readonly flagLatencyMs: LatencyStats | null;
  /** removalLatencyMs: last acknowledged beat's completion -> the first read on the slowest member lacking it. */
  readonly removalLatencyMs: LatencyStats | null;
  /** recoveryLatencyMs: the heal -> the first read on the slowest member listing it healthy. */
  readonly recoveryLatencyMs: LatencyStats | null;
  readonly violations: readonly string[];
  readonly anomalies: readonly OperationRef[];
  readonly problems: readonly string[];
}

function record(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
}

/** clientsCutsOf reads the D3 cuts from the nemesis lines; a cut whose rules were not applied is left out. */
export function clientsCutsOf(events: readonly RecordedEvent[]): ClientsCut[] {
  const open = new Map<number, number>();
  const stopping = new Map<number, number>();
  const cuts: { id: number; cutFrom: number; cutTo: number; healedAt: number }[] = [];
  for (const event of events) {
    if (!isNemesisEvent(event)) continue;
    const value = record(event.value);
    const id = Number(value['id']);
    if (event.f === 'start-clients-cut' && event.type === 'info' && Number(value['rules']) > 0) open.set(id, event.time);
    else if (event.f === 'stop-clients-cut' && event.type === 'invoke') stopping.set(id, event.time);
    else if (event.f === 'stop-clients-cut' && event.type === 'info') {
      const cutFrom = open.get(id);
      open.delete(id);
      if (cutFrom !== undefined) cuts.push({ id, cutFrom, cutTo: stopping.get(id) ?? event.time, healedAt: event.time });
    }
  }
  for (const [id, cutFrom] of open) cuts.push({ id, cutFrom, cutTo: Number.POSITIVE_INFINITY, healedAt: Number.POSITIVE_INFINITY });
  cuts.sort((a, b) => a.cutFrom - b.cutFrom);
  return cuts.map((cut, index) => ({ ...cut, nextFrom: cuts[index + 1]?.cutFrom ?? Number.POSITIVE_INFINITY }));
}

/** latestApplication: when an attempt may have been applied at the latest, given the cuts (null: never). */
export function latestApplication(attempt: { readonly invoke: number; readonly complete: number }, cuts: readonly ClientsCut[]): number | null {
  for (const cut of cuts) {
    if (attempt.complete <= cut.cutFrom || attempt.invoke >= cut.cutTo) continue;
    if (attempt.complete > cut.cutTo) continue;
    // It completed inside this cut: sent before it, it may have arrived up to the cut's start; sent inside, never.
    return attempt.invoke < cut.cutFrom ? cut.cutFrom : null;
  }
  return attempt.complete;
}

/** Instance is what the history says about one element. */
interface Instance {
  readonly element: number;
  readonly service: string;
  readonly attempts: Call[];
  stoppedAt: number;
}

/** Read is one member's successful list read of a service. */
interface Read {
  readonly member: string;
  readonly process: number;
  readonly invoke: number;
  readonly complete: number;
  readonly present: ReadonlySet<number>;
  readonly unhealthy: ReadonlySet<number>;
}

type State = 'healthy' | 'unhealthy' | 'absent';

function stateOf(read: Read, element: number): State {
  if (!read.present.has(element)) return 'absent';
  return read.unhealthy.has(element) ? 'unhealthy' : 'healthy';
}

function numbers(value: unknown): number[] {
  return Array.isArray(value) ? value.filter((x): x is number => typeof x === 'number') : [];
}

function instancesOf(calls: readonly Call[], events: readonly RecordedEvent[]): Map<number, Instance> {
  const instances = new Map<number, Instance>();
  for (const call of calls) {
    if (call.f !== 'beat' && call.f !== 'beat-register') continue;
    const element = Number(call.value['element']);
    let instance = instances.get(element);
    if (instance === undefined) instances.set(element, (instance = { element, service: String(call.value['service']), attempts: [], stoppedAt: Number.POSITIVE_INFINITY }));
    instance.attempts.push(call);
  }
  for (const event of events) {
    if (!isObserverEvent(event) || event.f !== 'beat-stop') continue;
    const instance = instances.get(Number(record(event.value)['element']));
    if (instance !== undefined) instance.stoppedAt = Math.min(instance.stoppedAt, event.time);
  }
  return instances;
}

/** readsOf groups the successful list reads by service, then member, in invoke order. */
function readsOf(calls: readonly Call[]): Map<string, Map<string, Read[]>> {
  const byService = new Map<string, Map<string, Read[]>>();
  for (const call of calls) {
    if (call.f !== 'beat-read' || call.type !== 'ok') continue;
    const service = String(call.value['service']);
    const member = String(call.value['node']);
    let byMember = byService.get(service);
    if (byMember === undefined) byService.set(service, (byMember = new Map()));
    let list = byMember.get(member);
    if (list === undefined) byMember.set(member, (list = []));
    list.push({ member, process: call.process, invoke: call.invoke, complete: call.complete, present: new Set(numbers(call.value['present'])), unhealthy: new Set(numbers(call.value['unhealthy'])) });
  }
  for (const byMember of byService.values()) for (const list of byMember.values()) list.sort((a, b) => a.invoke - b.invoke);
  return byService;
}

/** Tally collects violations, anomalies and counts across cuts. */
class Tally {
  readonly violations: string[] = [];
  readonly anomalies: OperationRef[] = [];
  readonly counts = { earlyFlags: 0, earlyRemovals: 0, stillHealthy: 0, notRemoved: 0, notFlagged: 0, flagUnobserved: 0, notRecovered: 0, unobserved: 0 };
  readonly flagLatencies: number[] = [];
  readonly removalLatencies: number[] = [];
  readonly recoveryLatencies: number[] = [];

  violation(kind: keyof Tally['counts'], text: string, read: Read | null): void {
    this.counts[kind]++;
    this.violations.push(text);
    if (read !== null) this.anomalies.push({ process: read.process, time: read.invoke });
  }
}

const seconds = (t: number): string => (t / 1e9).toFixed(2);

/** Subject is an instance beating when a cut began, with the times its judgement rests on (ns). */
interface Subject {
  readonly instance: Instance;
  readonly lastAck: number;
  readonly lastAckComplete: number;
  readonly lastPossible: number;
  /** nextAck: the invoke of its first acknowledged attempt sent after the cut began (Infinity: none). */
  readonly nextAck: number;
}

function subjectOf(instance: Instance, cut: ClientsCut, cuts: readonly ClientsCut[]): Subject | null {
  if (instance.stoppedAt <= cut.cutFrom) return null;
  const before = instance.attempts.filter((a) => a.type === 'ok' && a.invoke < cut.cutFrom);
  if (before.length === 0) return null;
  const lastAckCall = before.reduce((a, b) => (b.invoke > a.invoke ? b : a));
  // Only what may have applied before the cut ends matters to the reads inside it: an attempt sent inside the cut
  // applies after its end if ever, and one sent before it, if not by the cut's start, only after its end.
  let lastPossible = Number.NEGATIVE_INFINITY;
  for (const attempt of instance.attempts) {
    if (attempt.type === 'fail' || attempt.invoke >= cut.cutFrom) continue;
    const at = latestApplication(attempt, cuts);
    if (at !== null) lastPossible = Math.max(lastPossible, Math.min(at, cut.cutFrom));
  }
  const after = instance.attempts.filter((a) => a.type === 'ok' && a.invoke >= cut.cutFrom).map((a) => a.invoke);
  return { instance, lastAck: lastAckCall.invoke, lastAckComplete: lastAckCall.complete, lastPossible, nextAck: after.length === 0 ? Number.POSITIVE_INFINITY : Math.min(...after) };
}

/** judgeEarly: (a) on one member's reads of a subject from the cut's start until its next acknowledged beat. */
function judgeEarly(subject: Subject, reads: readonly Read[], cut: ClientsCut, bounds: D3Bounds, tally: Tally): void {
  const { element, service } = subject.instance;
  const flagAt = subject.lastAck + (bounds.unhealthyMs - bounds.slackMs) * ns;
  const removeAt = subject.lastAck + (bounds.removeMs - bounds.slackMs) * ns;
  const listedBefore = reads.some((r) => r.invoke < cut.cutFrom && r.present.has(element));
  let listed = listedBefore;
  let flaggedEarly = false;
  for (const read of reads) {
    if (read.invoke < cut.cutFrom || read.invoke >= subject.nextAck) continue;
    const state = stateOf(read, element);
    if (state !== 'absent') listed = true;
    if (state === 'unhealthy' && read.complete < flagAt && !flaggedEarly) {
      flaggedEarly = true;
      tally.violation('earlyFlags', `early flag: element ${element} (${service}) unhealthy on ${read.member} at ${seconds(read.invoke)} s, ${Math.round((read.complete - subject.lastAck) / ns)} ms after its last acknowledged beat (needs ${bounds.unhealthyMs} ms)`, read);
    }
    if (state === 'absent' && listed && read.complete < removeAt) {
      tally.violation('earlyRemovals', `early removal: element ${element} (${service}) gone from ${read.member} at ${seconds(read.invoke)} s, ${Math.round((read.complete - subject.lastAck) / ns)} ms after its last acknowledged beat (needs ${bounds.removeMs} ms)`, read);
      return;
    }
  }
}

/** ExpiryOutcome is what (b) found for one subject on every member. */
interface ExpiryOutcome {
  readonly due: boolean;
  readonly removedEverywhere: boolean;
}

/** judgeExpiry: (b) on every member's reads of a subject inside the cut. */
function judgeExpiry(subject: Subject, byMember: ReadonlyMap<string, readonly Read[]>, members: readonly string[], cut: ClientsCut, bounds: D3Bounds, tally: Tally): ExpiryOutcome {
  const { element, service } = subject.instance;
  const flagDeadline = subject.lastPossible + (bounds.unhealthyMs + bounds.expirySlackMs) * ns;
  const removeDeadline = subject.lastPossible + (bounds.removeMs + bounds.expirySlackMs) * ns;
  const due = removeDeadline <= cut.cutTo;
  let seenUnhealthy = false;
  let tightGap: Read | null = null;
  let removedEverywhere = members.length > 0;
  let slowestFlag = Number.NEGATIVE_INFINITY;
  let slowestRemoval = Number.NEGATIVE_INFINITY;
  for (const member of members) {
    const inCut = (byMember.get(member) ?? []).filter((r) => r.invoke >= cut.cutFrom && r.invoke < cut.cutTo);
    let previous: Read | null = null;
    let firstNotHealthy: Read | null = null;
    let firstAbsent: Read | null = null;
    let judgedFlag = false;
    let judgedRemoval = false;
    for (const read of inCut) {
      const state = stateOf(read, element);
      if (state === 'unhealthy') seenUnhealthy = true;
      if (state !== 'healthy' && firstNotHealthy === null) firstNotHealthy = read;
      if (state === 'absent' && firstAbsent === null) {
        firstAbsent = read;
        if (previous !== null && stateOf(previous, element) === 'healthy' && (read.invoke - previous.complete) / ns < bounds.flagGapMs) tightGap = read;
      }
      if (state !== 'absent') firstAbsent = null;
      if (read.invoke >= flagDeadline && !judgedFlag) {
        judgedFlag = true;
        if (state === 'healthy') tally.violation('stillHealthy', `not flagged: element ${element} (${service}) still healthy on ${member} at ${seconds(read.invoke)} s, ${Math.round((read.invoke - subject.lastPossible) / ns)} ms after its last possible beat (bound ${bounds.unhealthyMs + bounds.expirySlackMs} ms)`, read);
      }
      if (read.invoke >= removeDeadline && !judgedRemoval) {
        judgedRemoval = true;
        if (state !== 'absent') tally.violation('notRemoved', `not removed: element ${element} (${service}) still listed (${state}) on ${member} at ${seconds(read.invoke)} s, ${Math.round((read.invoke - subject.lastPossible) / ns)} ms after its last possible beat (bound ${bounds.removeMs + bounds.expirySlackMs} ms)`, read);
      }
      previous = read;
    }
    if (due && !judgedRemoval) tally.counts.unobserved++;
    if (firstAbsent === null) removedEverywhere = false;
    slowestFlag = Math.max(slowestFlag, firstNotHealthy?.complete ?? Number.POSITIVE_INFINITY);
    slowestRemoval = Math.max(slowestRemoval, firstAbsent?.complete ?? Number.POSITIVE_INFINITY);
  }
  if (Number.isFinite(slowestFlag)) tally.flagLatencies.push((slowestFlag - subject.lastAckComplete) / ns);
  if (removedEverywhere && Number.isFinite(slowestRemoval)) tally.removalLatencies.push((slowestRemoval - subject.lastAckComplete) / ns);
  if (removedEverywhere && !seenUnhealthy) {
    if (tightGap !== null) tally.violation('notFlagged', `removed without a flag: element ${element} (${service}) went from healthy to absent on ${tightGap.member} at ${seconds(tightGap.invoke)} s between reads less than ${bounds.flagGapMs} ms apart, and no member ever listed it unhealthy`, tightGap);
    else tally.counts.flagUnobserved++;
  }
  return { due, removedEverywhere };
}

/** judgeRecovery: (c) for one instance after one cut; returns whether every member listed it healthy in time. */
function judgeRecovery(instance: Instance, byMember: ReadonlyMap<string, readonly Read[]>, members: readonly string[], cut: ClientsCut, bounds: D3Bounds, tally: Tally): boolean {
  const judgeFrom = cut.healedAt + bounds.recoveryBoundMs * ns;
  const until = Math.min(instance.stoppedAt, cut.nextFrom);
  let slowest = Number.NEGATIVE_INFINITY;
  let recovered = true;
  for (const member of members) {
    const after = (byMember.get(member) ?? []).filter((r) => r.invoke >= cut.healedAt && r.invoke < until);
    const firstHealthy = after.find((r) => stateOf(r, instance.element) === 'healthy');
    slowest = Math.max(slowest, firstHealthy?.complete ?? Number.POSITIVE_INFINITY);
    const judged = after.find((r) => r.invoke >= judgeFrom);
    if (judged === undefined) {
      tally.counts.unobserved++;
      continue;
    }
    const state = stateOf(judged, instance.element);
    if (state !== 'healthy') {
      recovered = false;
      tally.violation('notRecovered', `not recovered: element ${instance.element} (${instance.service}) ${state} on ${member} at ${seconds(judged.invoke)} s, ${Math.round((judged.invoke - cut.healedAt) / ns)} ms after the heal at ${seconds(cut.healedAt)} s (bound ${bounds.recoveryBoundMs} ms), its client beating`, judged);
    }
  }
  if (Number.isFinite(slowest)) tally.recoveryLatencies.push((slowest - cut.healedAt) / ns);
  return recovered;
}

/** membersOf lists the members read (every member has a reader). */
function membersOf(reads: ReadonlyMap<string, ReadonlyMap<string, readonly Read[]>>): string[] {
  const members = new Set<string>();
  for (const byMember of reads.values()) for (const member of byMember.keys()) members.add(member);
  return [...members].sort();
}

/** judgeCut applies (a), (b) and (c) to one cut. */
function judgeCut(cut: ClientsCut, cuts: readonly ClientsCut[], instances: ReadonlyMap<number, Instance>, reads: ReadonlyMap<string, ReadonlyMap<string, readonly Read[]>>, members: readonly string[], bounds: D3Bounds, tally: Tally): CutSummary {
  let subjects = 0;
  let removedEverywhere = 0;
  let notDue = 0;
  let recoverySubjects = 0;
  let recovered = 0;
  let reRegistered = 0;
  const removedInCut = new Set<number>();
  for (const instance of instances.values()) {
    const byMember = reads.get(instance.service) ?? new Map<string, Read[]>();
    const subject = subjectOf(instance, cut, cuts);
    if (subject !== null) {
      subjects++;
      for (const member of members) judgeEarly(subject, byMember.get(member) ?? [], cut, bounds, tally);
      const outcome = judgeExpiry(subject, byMember, members, cut, bounds, tally);
      if (!outcome.due) notDue++;
      if (outcome.removedEverywhere) {
        removedEverywhere++;
        removedInCut.add(instance.element);
      }
    }
    // (c): the client was beating at the heal and goes on through the bound; the instance existed before the heal.
    const firstInvoke = Math.min(...instance.attempts.map((a) => a.invoke));
    if (!Number.isFinite(cut.healedAt) || firstInvoke >= cut.cutTo) continue;
    if (instance.stoppedAt <= cut.healedAt + bounds.recoveryBoundMs * ns || cut.nextFrom <= cut.healedAt + bounds.recoveryBoundMs * ns) continue;
    recoverySubjects++;
    if (judgeRecovery(instance, byMember, members, cut, bounds, tally)) {
      recovered++;
      if (removedInCut.has(instance.element)) reRegistered++;
    }
  }
  return { id: cut.id, fromMs: Math.round(cut.cutFrom / ns), toMs: Math.round(cut.cutTo / ns), subjects, removedEverywhere, notDue, recoverySubjects, recovered, reRegistered };
}

/** checkD3 judges a beats history with clients cuts (see the file comment). */
export function checkD3(events: readonly RecordedEvent[]): D3Result {
  const setup = setupOf(events);
  const bounds = d3Bounds(setup?.timeouts ?? beatTimeouts, setup?.pollMs ?? 1000);
  const calls = callsOf(events);
  const cuts = clientsCutsOf(events);
  const instances = instancesOf(calls, events);
  const reads = readsOf(calls);
  const members = membersOf(reads);
  const tally = new Tally();
  const problems: string[] = [];
  if (setup === null) problems.push('no beats-setup line: default timings assumed');
  if (cuts.length === 0) problems.push('no cut of the clients was made: nothing was tested');
  for (const cut of cuts) {
    if (!Number.isFinite(cut.cutTo)) problems.push(`clients cut #${cut.id} never healed`);
  }
  // A cut that cuts: nothing sent inside it is acknowledged.
  for (const call of calls) {
    if ((call.f !== 'beat' && call.f !== 'beat-register') || call.type !== 'ok') continue;
    if (latestApplication(call, cuts) === null) problems.push(`a ${call.f} of element ${String(call.value['element'])} sent at ${seconds(call.invoke)} s inside a clients cut was acknowledged by ${String(call.value['node'])}: the cut did not cut`);
  }
  const summaries = cuts.map((cut) => judgeCut(cut, cuts, instances, reads, members, bounds, tally));
  if (cuts.length > 0 && summaries.every((s) => s.subjects === 0)) problems.push('no instance was beating when a cut began: nothing was tested');
  return {
    valid: tally.violations.length === 0 && problems.filter((p) => !p.startsWith('no beats-setup')).length === 0,
    bounds,
    cuts: summaries,
    counts: tally.counts,
    flagLatencyMs: stats(tally.flagLatencies),
    removalLatencyMs: stats(tally.removalLatencies),
    recoveryLatencyMs: stats(tally.recoveryLatencies),
    violations: tally.violations.slice(0, listLimit),
    anomalies: tally.anomalies.slice(0, 500),
    problems: problems.slice(0, listLimit),
  };
}
