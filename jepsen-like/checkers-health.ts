// checkers-health: the health workload's checker (PEERS.md §2.3 C1; workloads/health.ts makes the history).
//
// Truth. Each target is down from the invoke of its `start-target-down` to the info of its `stop-target-down` at
// the latest, and certainly down between that info-of-start and invoke-of-stop; a `prober-targets` cut of the
// target's owner counts as down in the same way (Nacos's behaviour, which Cairn copies: a prober that cannot reach
// a target reports it unhealthy). "Down at some point in [a, b]" asks whether [a, b] meets a possibly-down interval;
// "up at some point in [a, b]" asks whether [a, b] is not inside one certainly-down interval.
//
// Checks (every one must hold for a valid run):
// (a) justified: a read completed at t answering healthy=false (true) needs the target down (up) at some point of
//     [invoke - boundMs, t], boundMs from healthBounds() (a few probe intervals, the flip rule, handover, commit).
// (a') justified flips: reads that do not overlap in time are ordered as the commits they saw (they are
//     linearizable), so along the longest chain of such reads, each change of a target's health between reads o1
//     and o2 needs the target down (for a flip to unhealthy) or up (to healthy) at some point of
//     [o1.invoke - commitMarginMs, o2.complete]: the probe that decided it ran at most commitMarginMs before the
//     commit, which came after o1 began. A stale verdict (one decided long ago by a prober that was cut off, then
//     committed) fails this check; when the target's owner was isolated around it, it is reported as a fencing
//     violation (d).
// (b) final: after the final heal and the settle time, every final read (every member, linearizable and local)
//     gives every target its truth.
// (c) flaps: changes along the chain, per target, at most the truth's changes plus flapSlack.
// (d) fencing: no unjustified flip around an isolation of the target's owner (see a'); the report counts the
//     isolations and the targets left with a stale verdict by the cut-off prober (those reopened 2 s after the cut).
// (e) cut reported: during a prober-targets cut long enough for 3 timed-out probes, every target of the cut prober
//     is read unhealthy at some point (the documented behaviour).
// C4 (kills and pauses of probers and leaders; workloads/health.ts crashes()):
// (f) resumption, no lost transitions: every truth change of a victim's target from its pre-fault flip until boundMs
//     after the victim is back must show in a linearizable read (invoked after the change is certain) completing
//     within boundMs of the change, unless the target changed again sooner (superseded, not judged). A change never
//     shown is lost, one shown later is late. (a) checks the same reads against the truth; (f) measures the latency.
// (g) no probe storm: the targets timestamp every probe connection they accept (health-probes lines). In any window
//     of stormWindowMs a target accepts at most stormSteadyMax probes, or stormHandoverMax while a share may move:
//     from the start of a fault (isolate-prober, kill, pause) until handoverTailMs after it ended, and from the
//     start until handoverTailMs after the setup (the first assignment). Refused probes of a closed target cannot
//     be counted. The bounds and their derivation: workloads/health.ts healthBounds().
// (d) also covers C4's pauses: an unjustified flip around a pause of the target's owner is a fencing violation (a
//     verdict the paused prober reached before it stopped was committed after the truth had moved on).
// C2 (a degraded prober NIC; workloads/health.ts degradations()): a `degraded-nic` fault cuts the prober from some
// of its targets only (the fault's `targets`); it counts as down for those targets, as a prober-targets cut does,
// is judged by (e) the same way, and moves no share (not a handover for (g)). C2's reads carry the stored health
// (per-instance reads), so every check above judges the verdicts, not the protected lists (checkers-protect.ts).

import type { HistoryEvent } from '../test/checker/history.ts';
import type { OperationRef } from './checkers.ts';
import { isClientEvent, isNemesisEvent, isObserverEvent, type RecordedEvent } from './history.ts';
import type { HealthSetup } from './workloads/health.ts';

/** flapSlack is how many more health changes than truth changes a target may show. */
export const flapSlack = 2;
const listLimit = 50;

/** Span is a closed time interval in nanoseconds. */
export interface Span {
  start: number;
  end: number;
}

/** TimedRead is what every ok read of the targets carries: who asked whom, when, how, and in which phase. */
export interface TimedRead {
  readonly process: number;
  readonly invoke: number;
  readonly complete: number;
  readonly node: string;
  readonly consistency: string;
  readonly final: boolean;
}

/** Observation is one ok read of the target list. */
interface Observation extends TimedRead {
  readonly health: Readonly<Record<string, boolean | null>>;
}

/** Fault is one scripted partition of the workload. */
interface Fault {
  readonly id: number;
  readonly mode: string;
  readonly member: string;
  readonly targets: readonly string[];
  readonly reopenAfterMs: number | null;
  startInvoke: number;
  startInfo: number;
  stopInvoke: number;
  stopInfo: number;
}

/** Transition is one change of a target's truth: invoke before the listener changed, info once it had. */
interface Transition {
  readonly target: string;
  readonly up: boolean;
  readonly invoke: number;
  readonly info: number;
}

/** TargetProbes are the probe connections one target accepted (recorder times, ns) and how many it did not keep. */
interface TargetProbes {
  readonly accepts: readonly number[];
  readonly dropped: number;
}

/** crashModes are C4's fault modes (workloads/health.ts crashes()). */
function isCrash(fault: Fault): boolean {
  return fault.mode.startsWith('kill-') || fault.mode.startsWith('pause-');
}

/** ResumptionResult is (f): the victims' transitions and how long each took to show. */
export interface ResumptionResult {
  readonly judged: number;
  readonly superseded: number;
  /** maxLatencyMs: the longest change-to-read latency among the judged transitions (null: none judged). */
  readonly maxLatencyMs: number | null;
  readonly late: readonly string[];
  readonly lost: readonly string[];
}

/** StormResult is (g): the most probes any target accepted in one window, and the windows over the bound. */
export interface StormResult {
  readonly checked: boolean;
  readonly windowMs: number;
  readonly steadyMax: number;
  readonly handoverMax: number;
  readonly accepts: number;
  /** busiestSteady / busiestHandover: the most probes seen in one window outside / inside handover windows. */
  readonly busiestSteady: number;
  readonly busiestHandover: number;
  /** stormCount: windows over the bound (storms lists the first of them). */
  readonly stormCount: number;
  readonly storms: readonly string[];
}

/** HealthTargetResult is the verdict on one target. */
export interface HealthTargetResult {
  readonly target: string;
  readonly owner: string;
  readonly observations: number;
  readonly truthChanges: number;
  readonly observedChanges: number;
  readonly flapsOk: boolean;
}

/** HealthResult is the health checker's verdict with its evidence. */
export interface HealthResult {
  readonly valid: boolean;
  readonly boundMs: number;
  readonly commitMarginMs: number;
  readonly observations: number;
  readonly targets: readonly HealthTargetResult[];
  readonly unjustified: readonly string[];
  readonly unjustifiedFlips: readonly string[];
  readonly fencingViolations: readonly string[];
  readonly finalMismatches: readonly string[];
  readonly finalReads: number;
  readonly cutsReported: readonly string[];
  readonly cutsUnreported: readonly string[];
  readonly isolations: number;
  readonly staleVerdictsLeft: number;
  /** memberFlips: per member, what became of its verdicts (cairn_health_flips_total by outcome), scraped at the end. */
  readonly memberFlips: Readonly<Record<string, Readonly<Record<string, number>>>>;
  readonly crashes: number;
  readonly resumption: ResumptionResult;
  readonly storm: StormResult;
  readonly counts: { readonly unjustified: number; readonly unjustifiedFlips: number; readonly fencingViolations: number; readonly finalMismatches: number; readonly cutsUnreported: number; readonly flaps: number; readonly lostTransitions: number; readonly lateTransitions: number; readonly storms: number };
  readonly problems: readonly string[];
  readonly anomalies: readonly OperationRef[];
}

function record(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
}

function merge(spans: Span[]): Span[] {
  const sorted = [...spans].sort((a, b) => a.start - b.start);
  const merged: Span[] = [];
  for (const span of sorted) {
    const last = merged[merged.length - 1];
    if (last !== undefined && span.start <= last.end) last.end = Math.max(last.end, span.end);
    else merged.push({ ...span });
  }
  return merged;
}

/** Truth answers "down / up at some point in [a, b]" for one target. */
class Truth {
  constructor(
    private readonly possiblyDown: readonly Span[],
    private readonly certainlyDown: readonly Span[],
  ) {}

  downWithin(a: number, b: number): boolean {
    return this.possiblyDown.some((span) => span.start <= b && span.end >= a);
  }

  upWithin(a: number, b: number): boolean {
    return !this.certainlyDown.some((span) => span.start <= a && span.end >= b);
  }

  /** changes counts the truth's changes: two per possibly-down interval (one if it never ended). */
  changes(): number {
    return this.possiblyDown.reduce((sum, span) => sum + (span.end === Number.POSITIVE_INFINITY ? 1 : 2), 0);
  }

  /** upAtEnd is the truth after the last event. */
  upAtEnd(): boolean {
    const last = this.certainlyDown[this.certainlyDown.length - 1];
    return last === undefined || last.end !== Number.POSITIVE_INFINITY;
  }
}

/** Collected is what a health history holds for the checker. */
interface Collected {
  setup: HealthSetup | null;
  setupTime: number;
  observations: Observation[];
  downs: Map<string, { possibly: Span[]; certainly: Span[] }>;
  transitions: Transition[];
  faults: Fault[];
  probes: Map<string, TargetProbes>;
  memberFlips: Record<string, Record<string, number>>;
}

function collect(events: readonly RecordedEvent[]): Collected {
  let setup: HealthSetup | null = null;
  let memberFlips: Record<string, Record<string, number>> = {};
  let setupTime = 0;
  const probes = new Map<string, TargetProbes>();
  const transitions: Transition[] = [];
  const observations: Observation[] = [];
  const downs = new Map<string, { possibly: Span[]; certainly: Span[] }>();
  const openDowns = new Map<number, { target: string; invoke: number; info: number; stopInvoke: number }>();
  const faults = new Map<number, Fault>();
  const open = new Map<number, HistoryEvent>();
  const spansOf = (target: string): { possibly: Span[]; certainly: Span[] } => {
    let entry = downs.get(target);
    if (entry === undefined) downs.set(target, (entry = { possibly: [], certainly: [] }));
    return entry;
  };
  for (const event of events) {
    if (isObserverEvent(event)) {
      if (event.f === 'health-setup') setup = event.value as HealthSetup;
      if (event.f === 'health-metrics') memberFlips = record(record(event.value)['flips']) as Record<string, Record<string, number>>;
      if (event.f === 'health-setup') setupTime = event.time;
      if (event.f === 'health-probes') {
        const value = record(event.value);
        probes.set(String(value['target']), { accepts: Array.isArray(value['accepts']) ? (value['accepts'] as number[]) : [], dropped: Number(value['dropped'] ?? 0) });
      }
      continue;
    }
    if (isNemesisEvent(event)) {
      const value = record(event.value);
      const id = Number(value['id']);
      if (event.f === 'start-target-down') {
        if (event.type === 'invoke') openDowns.set(id, { target: String(value['target']), invoke: event.time, info: Number.POSITIVE_INFINITY, stopInvoke: Number.POSITIVE_INFINITY });
        else {
          const d = openDowns.get(id);
          if (d !== undefined) {
            d.info = event.time;
            transitions.push({ target: d.target, up: false, invoke: d.invoke, info: event.time });
          }
        }
      } else if (event.f === 'stop-target-down') {
        const d = openDowns.get(id);
        if (d === undefined) continue;
        if (event.type === 'invoke') d.stopInvoke = event.time;
        else {
          transitions.push({ target: d.target, up: true, invoke: d.stopInvoke, info: event.time });
          openDowns.delete(id);
          const spans = spansOf(d.target);
          spans.possibly.push({ start: d.invoke, end: event.time });
          spans.certainly.push({ start: d.info, end: d.stopInvoke });
        }
      } else if ((event.f === 'start-partition' && (value['mode'] === 'prober-targets' || value['mode'] === 'isolate-prober' || value['mode'] === 'degraded-nic')) || ((event.f === 'start-kill' || event.f === 'start-pause') && typeof value['mode'] === 'string')) {
        if (event.type === 'invoke') {
          faults.set(id, { id, mode: String(value['mode']), member: String(value['member']), targets: (value['targets'] as string[] | undefined) ?? [], reopenAfterMs: typeof value['reopenAfterMs'] === 'number' ? value['reopenAfterMs'] : null, startInvoke: event.time, startInfo: Number.POSITIVE_INFINITY, stopInvoke: Number.POSITIVE_INFINITY, stopInfo: Number.POSITIVE_INFINITY });
        } else { const f = faults.get(id); if (f !== undefined) f.startInfo = event.time; }
      } else if (event.f === 'stop-partition' || event.f === 'stop-kill' || event.f === 'stop-pause') {
        const f = faults.get(id);
        if (f === undefined) continue;
        if (event.type === 'invoke') f.stopInvoke = event.time;
        else f.stopInfo = event.time;
      }
      continue;
    }
    if (!isClientEvent(event) || event.f !== 'health-read') continue;
    if (event.type === 'invoke') {
      open.set(event.process, event);
      continue;
    }
    const invoke = open.get(event.process);
    open.delete(event.process);
    if (invoke === undefined || event.type !== 'ok') continue;
    const value = record(event.value);
    const health = record(value['health']) as Record<string, boolean | null>;
    observations.push({ process: event.process, invoke: invoke.time, complete: event.time, node: String(value['node']), consistency: String(value['consistency'] ?? 'linearizable'), final: value['final'] === true, health });
  }
  // Downs never reopened stay down to the end.
  for (const d of openDowns.values()) {
    const spans = spansOf(d.target);
    spans.possibly.push({ start: d.invoke, end: Number.POSITIVE_INFINITY });
    spans.certainly.push({ start: d.info, end: d.stopInvoke });
  }
  return { setup, setupTime, observations, downs, transitions, faults: [...faults.values()], probes, memberFlips };
}

/**
 * listenerDowns is, per target, when its listener was possibly down (the invoke of a start-target-down to the info
 * of its stop-target-down; to the end when never reopened), merged: the truth of the targets themselves, without the
 * prober cuts (a target behind a degraded NIC is still truly healthy). Case C2's checker uses it.
 */
export function listenerDowns(events: readonly RecordedEvent[]): ReadonlyMap<string, readonly Span[]> {
  const { downs } = collect(events);
  return new Map([...downs].map(([target, spans]) => [target, merge(spans.possibly)]));
}

/** chainOf is the longest chain of reads that do not overlap (earliest completion first). */
function chainOf(observations: readonly Observation[]): Observation[] {
  const sorted = [...observations].sort((a, b) => a.complete - b.complete);
  const chain: Observation[] = [];
  for (const o of sorted) {
    const last = chain[chain.length - 1];
    if (last === undefined || o.invoke > last.complete) chain.push(o);
  }
  return chain;
}

function seconds(ns: number): string {
  return `${(ns / 1e9).toFixed(1)} s`;
}

/** checkHealth judges a health history (see the file comment). */
export function checkHealth(events: readonly RecordedEvent[]): HealthResult {
  const { setup, setupTime, observations, downs, transitions, faults, probes, memberFlips } = collect(events);
  const problems: string[] = [];
  const anomalies: OperationRef[] = [];
  const empty = { unjustified: 0, unjustifiedFlips: 0, fencingViolations: 0, finalMismatches: 0, cutsUnreported: 0, flaps: 0, lostTransitions: 0, lateTransitions: 0, storms: 0 };
  if (setup === null) {
    const resumption: ResumptionResult = { judged: 0, superseded: 0, maxLatencyMs: null, late: [], lost: [] };
    const storm: StormResult = { checked: false, windowMs: 0, steadyMax: 0, handoverMax: 0, accepts: 0, busiestSteady: 0, busiestHandover: 0, stormCount: 0, storms: [] };
    return { valid: false, boundMs: 0, commitMarginMs: 0, observations: observations.length, targets: [], unjustified: [], unjustifiedFlips: [], fencingViolations: [], finalMismatches: [], finalReads: 0, cutsReported: [], cutsUnreported: [], isolations: 0, staleVerdictsLeft: 0, memberFlips, crashes: 0, resumption, storm, counts: empty, problems: ['no health-setup line: the workload never started'], anomalies };
  }
  const bound = setup.boundMs * 1e6;
  const margin = setup.commitMarginMs * 1e6;
  const truths = new Map<string, Truth>();
  for (const target of setup.targets) {
    const spans = downs.get(target) ?? { possibly: [], certainly: [] };
    const owner = setup.owners[target];
    const cuts = faults.filter((f) => (f.mode === 'prober-targets' && f.member === owner) || (f.mode === 'degraded-nic' && f.targets.includes(target)));
    truths.set(target, new Truth(
      merge([...spans.possibly, ...cuts.map((c) => ({ start: c.startInvoke, end: c.stopInfo }))]),
      merge([...spans.certainly, ...cuts.filter((c) => c.startInfo < c.stopInvoke).map((c) => ({ start: c.startInfo, end: c.stopInvoke }))]),
    ));
  }
  // (a) every observation justified.
  const unjustified: string[] = [];
  let unjustifiedCount = 0;
  for (const o of observations) {
    for (const target of setup.targets) {
      const truth = truths.get(target) as Truth;
      const seen = o.health[target];
      let bad: string | null = null;
      if (seen === undefined || seen === null) bad = 'not listed';
      else if (seen === false && !truth.downWithin(o.invoke - bound, o.complete)) bad = `unhealthy, but up throughout the ${setup.boundMs} ms before`;
      else if (seen === true && !truth.upWithin(o.invoke - bound, o.complete)) bad = `healthy, but down throughout the ${setup.boundMs} ms before`;
      if (bad === null) continue;
      unjustifiedCount++;
      anomalies.push({ process: o.process, time: o.invoke });
      if (unjustified.length < listLimit) unjustified.push(`${target} read ${bad} (${o.consistency} read on ${o.node}, process ${o.process}, at ${seconds(o.invoke)}-${seconds(o.complete)})`);
    }
  }
  // (a'), (c), (d) along the chain of linearizable reads.
  const chain = chainOf(observations.filter((o) => o.consistency === 'linearizable'));
  const unjustifiedFlips: string[] = [];
  const fencingViolations: string[] = [];
  let flipCount = 0;
  let fencingCount = 0;
  const results: HealthTargetResult[] = [];
  for (const target of setup.targets) {
    const truth = truths.get(target) as Truth;
    const owner = setup.owners[target] ?? '';
    let changes = 0;
    for (let i = 1; i < chain.length; i++) {
      const o1 = chain[i - 1] as Observation;
      const o2 = chain[i] as Observation;
      const before = o1.health[target];
      const after = o2.health[target];
      if (typeof before !== 'boolean' || typeof after !== 'boolean' || before === after) continue;
      changes++;
      const justified = after ? truth.upWithin(o1.invoke - margin, o2.complete) : truth.downWithin(o1.invoke - margin, o2.complete);
      if (justified) continue;
      anomalies.push({ process: o2.process, time: o2.invoke });
      const text = `${target} flipped to ${after ? 'healthy' : 'unhealthy'} between reads at ${seconds(o1.invoke)} and ${seconds(o2.complete)} with the target ${after ? 'down' : 'up'} throughout (from ${commitWindow(o1.invoke - margin)})`;
      const isolation = faults.find((f) => (f.mode === 'isolate-prober' || f.mode.startsWith('pause-')) && f.member === owner && f.startInvoke <= o2.complete && f.stopInfo + bound >= o1.complete);
      if (isolation !== undefined) {
        fencingCount++;
        const how = isolation.mode === 'isolate-prober' ? 'isolated' : 'paused';
        if (fencingViolations.length < listLimit) fencingViolations.push(`${text}; its prober ${owner} was ${how} (fault ${isolation.id}, ${seconds(isolation.startInvoke)}-${seconds(isolation.stopInfo)}): a verdict of the ${how === 'isolated' ? 'cut-off' : 'paused'} prober was committed`);
      } else {
        flipCount++;
        if (unjustifiedFlips.length < listLimit) unjustifiedFlips.push(text);
      }
    }
    const truthChanges = truth.changes();
    const seen = observations.filter((o) => typeof o.health[target] === 'boolean').length;
    results.push({ target, owner, observations: seen, truthChanges, observedChanges: changes, flapsOk: changes <= truthChanges + flapSlack });
  }
  // (b) final reads.
  const finals = observations.filter((o) => o.final);
  const finalMismatches: string[] = [];
  for (const o of finals) {
    for (const target of setup.targets) {
      const want = (truths.get(target) as Truth).upAtEnd();
      if (o.health[target] !== want) {
        finalMismatches.push(`${target}: final ${o.consistency} read on ${o.node} says ${String(o.health[target])}, truth ${want ? 'up' : 'down'}`);
        anomalies.push({ process: o.process, time: o.invoke });
      }
    }
  }
  const members = new Set(setup.members);
  const finalMembers = new Set(finals.map((o) => `${o.node}/${o.consistency}`));
  for (const member of members) {
    for (const consistency of ['linearizable', 'local']) if (!finalMembers.has(`${member}/${consistency}`)) problems.push(`no final ${consistency} read succeeded on ${member}`);
  }
  // (e) cuts reported.
  const cutsReported: string[] = [];
  const cutsUnreported: string[] = [];
  const needMs = 3 * 1.1 * setup.intervalMs + 2000 + 1000;
  for (const cut of faults.filter((f) => f.mode === 'prober-targets' || f.mode === 'degraded-nic')) {
    if ((cut.stopInvoke - cut.startInfo) / 1e6 < needMs) continue;
    for (const target of cut.targets) {
      const seenDown = observations.some((o) => o.health[target] === false && o.complete >= cut.startInfo && o.invoke <= cut.stopInvoke + margin);
      (seenDown ? cutsReported : cutsUnreported).push(`${target} (prober ${cut.member} cut ${seconds(cut.startInfo)}-${seconds(cut.stopInvoke)})`);
    }
  }
  const isolations = faults.filter((f) => f.mode === 'isolate-prober');
  const staleVerdictsLeft = isolations.filter((f) => f.reopenAfterMs !== null && f.reopenAfterMs < 3000).reduce((sum, f) => sum + f.targets.length, 0);
  const flaps = results.filter((r) => !r.flapsOk).length;
  if (observations.length === 0) problems.push('no health read succeeded');
  const crashes = faults.filter(isCrash);
  const resumption = checkResumption(setup, crashes, transitions, observations, anomalies);
  const storm = checkStorm(setup, setupTime, faults, probes);
  const counts = {
    unjustified: unjustifiedCount, unjustifiedFlips: flipCount, fencingViolations: fencingCount, finalMismatches: finalMismatches.length, cutsUnreported: cutsUnreported.length, flaps,
    lostTransitions: resumption.lost.length, lateTransitions: resumption.late.length, storms: storm.stormCount,
  };
  const valid = problems.length === 0 && Object.values(counts).every((n) => n === 0);
  return { valid, boundMs: setup.boundMs, commitMarginMs: setup.commitMarginMs, observations: observations.length, targets: results, unjustified, unjustifiedFlips, fencingViolations, finalMismatches: finalMismatches.slice(0, listLimit), finalReads: finals.length, cutsReported, cutsUnreported, isolations: isolations.length, staleVerdictsLeft, memberFlips, crashes: crashes.length, resumption, storm, counts, problems, anomalies };
}

/**
 * checkResumption is (f): each truth change of a crash victim's target, from one probe interval (+1 s) before the
 * fault (the workload flips them just before it) until boundMs after the victim was back, must show within boundMs.
 */
function checkResumption(setup: HealthSetup, crashes: readonly Fault[], transitions: readonly Transition[], observations: readonly Observation[], anomalies: OperationRef[]): ResumptionResult {
  const bound = setup.boundMs * 1e6;
  const lead = (1.1 * setup.intervalMs + 1000) * 1e6;
  const reads = observations.filter((o) => o.consistency === 'linearizable' && !o.final).sort((a, b) => a.invoke - b.invoke);
  const judgedKeys = new Set<string>();
  const late: string[] = [];
  const lost: string[] = [];
  let superseded = 0;
  let maxLatency: number | null = null;
  for (const fault of crashes) {
    for (const change of transitions) {
      if (!fault.targets.includes(change.target) || change.invoke < fault.startInvoke - lead || change.invoke > fault.stopInfo + bound) continue;
      const key = `${change.target}@${change.invoke}`;
      if (judgedKeys.has(key)) continue;
      judgedKeys.add(key);
      const next = transitions.find((t) => t.target === change.target && t.invoke > change.invoke)?.invoke ?? Number.POSITIVE_INFINITY;
      const shown = reads.find((o) => o.invoke >= change.info && o.health[change.target] === change.up);
      const shownAt = shown !== undefined && shown.complete <= next ? shown.complete : null;
      const latency = shownAt === null ? null : shownAt - change.invoke;
      const what = `${change.target} ${change.up ? 'up' : 'down'} at ${seconds(change.invoke)} (fault ${fault.id} ${fault.mode} of ${fault.member}, ${seconds(fault.startInvoke)}-${seconds(fault.stopInfo)})`;
      if (latency !== null && latency <= bound) {
        maxLatency = Math.max(maxLatency ?? 0, latency);
        continue;
      }
      if (next - change.info < bound) {
        superseded++;
        continue;
      }
      if (shown !== undefined) anomalies.push({ process: shown.process, time: shown.invoke });
      if (latency === null) lost.push(`${what}: never read ${change.up ? 'healthy' : 'unhealthy'} before ${Number.isFinite(next) ? `it changed again at ${seconds(next)}` : 'the end'}`);
      else late.push(`${what}: first read ${change.up ? 'healthy' : 'unhealthy'} ${(latency / 1e9).toFixed(1)} s later (bound ${setup.boundMs} ms)`);
    }
  }
  const judged = judgedKeys.size - superseded;
  return { judged, superseded, maxLatencyMs: maxLatency === null ? null : Math.round(maxLatency / 1e6), late: late.slice(0, listLimit), lost: lost.slice(0, listLimit) };
}

/**
 * checkStorm is (g): per target, every window [t, t + stormWindowMs) starting at an accepted probe holds at most
 * stormSteadyMax accepts, or stormHandoverMax when it meets a handover window (a fault, up to handoverTailMs after
 * its end; the start, up to handoverTailMs after the setup).
 */
function checkStorm(setup: HealthSetup, setupTime: number, faults: readonly Fault[], probes: ReadonlyMap<string, TargetProbes>): StormResult {
  const windowMs = setup.stormWindowMs ?? 0;
  const steadyMax = setup.stormSteadyMax ?? 0;
  const handoverMax = setup.stormHandoverMax ?? 0;
  const checked = windowMs > 0 && probes.size > 0;
  const storms: string[] = [];
  let stormCount = 0;
  let accepts = 0;
  let busiestSteady = 0;
  let busiestHandover = 0;
  if (!checked) return { checked, windowMs, steadyMax, handoverMax, accepts, busiestSteady, busiestHandover, stormCount, storms };
  const tail = (setup.handoverTailMs ?? setup.boundMs) * 1e6;
  const window = windowMs * 1e6;
  const handovers: Span[] = merge([
    { start: 0, end: setupTime + tail },
    ...faults.filter((f) => f.mode !== 'prober-targets' && f.mode !== 'degraded-nic').map((f) => ({ start: f.startInvoke, end: f.stopInfo + tail })),
  ]);
  for (const [target, { accepts: times, dropped }] of probes) {
    accepts += times.length + dropped;
    if (dropped > 0) stormCount++;
    if (dropped > 0) storms.push(`${target}: ${dropped} accepts beyond what a target records (${times.length})`);
    const sorted = [...times].sort((a, b) => a - b);
    let reported = -1;
    for (let i = 0, j = 0; i < sorted.length; i++) {
      const start = sorted[i] as number;
      if (j < i) j = i;
      while (j + 1 < sorted.length && (sorted[j + 1] as number) < start + window) j++;
      const count = j - i + 1;
      const inHandover = handovers.some((span) => span.start < start + window && span.end >= start);
      if (inHandover) busiestHandover = Math.max(busiestHandover, count);
      else busiestSteady = Math.max(busiestSteady, count);
      const allowed = inHandover ? handoverMax : steadyMax;
      if (count <= allowed || i <= reported) continue;
      reported = j;
      stormCount++;
      if (storms.length < listLimit) storms.push(`${target}: ${count} probes within ${windowMs} ms from ${seconds(start)} (at most ${allowed} ${inHandover ? 'during a handover' : 'with one prober'})`);
    }
  }
  return { checked, windowMs, steadyMax, handoverMax, accepts, busiestSteady, busiestHandover, stormCount, storms };
}

function commitWindow(ns: number): string {
  return seconds(Math.max(0, ns));
}
