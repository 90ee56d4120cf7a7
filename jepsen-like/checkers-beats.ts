// checkers-beats: the beats workload's checker (PEERS.md §2.3 D2, D4; workloads/beats.ts makes the history).
//
// What it judges, per instance (one beater each) and per member (its local lists, read every pollMs):
//
// 1. Evictions. An eviction is a member's list getting worse for an instance between two of its reads: healthy ->
//    unhealthy, or present -> absent. (Reads of a member are followed per incarnation: after a restart, tracking
//    starts again at its first read that lists the instance, so a member still loading its snapshot is not taken for
//    one that evicted; such reads are counted as `restartCatchUpReads`.) An eviction needs silence: the member that
//    decided it heard no beat for the instance's timeout (unhealthyMs for unhealthy, removeMs for absent). The checker
//    computes the longest silence the member's side can have had when the decision can have been taken (from
//    syncLagMs before the member's previous read to this read: a beat arriving after the decision does not undo it
//    unless it reaches the deciding member): a successful beat (or registration)
//    at member N counts as heard by member X only when N and X were connected both ways from the beat's invoke to its
//    completion (a cut's start is taken at its invoke, its end at the heal's info line plus upDetectMs, because
//    members route to each other again only once their heartbeats answer); its application time
//    is taken as early as possible (its invoke), and beats still in flight at the read count as unheard. Kills are not
//    cuts: a restart only delays expiry (the takeover grace), so it never excuses an eviction.
//    An eviction is explained when
//    (sided)      the observed member's own side can have been silent for the timeout then (E1), or
//    (after heal) another member X was cut from it until at most healSettleMs before the read, and X's side can
//                 have been silent for the timeout at some time from the cut's start to the read (E2): X's tombstone or unhealthy version, newer
//                 than the registration, wins everywhere after the heal until the next beat rewrites the instance
//                 (docs/ap.md "In a partition": Cairn's documented behaviour, Nacos's too).
//    An eviction of an instance whose client was still beating is a **false eviction** (reported by class: sided,
//    after heal, unexplained). An eviction of a stopped instance is an expiry. Every unexplained one (a false
//    eviction, or an expiry before its timeout: "expired early because a server was unavailable") is a violation.
// 2. Late expiry. A stopped instance must be gone from every member within lateBoundMs of its last beat (the latest
//    completion of any beat or registration of it, ok or unknown). It is gone at the first read, on the slowest
//    member, after which that member never lists it again; it is judged late only when even the earliest possible
//    disappearance (the last read still listing it) is beyond the bound. Its latency, as reported, runs from its
//    last successful beat's completion to that read. An instance some member still lists at its last read is
//    `neverGone` (the TTL reset for ever). Both are violations.
//
// The bounds (derived in beatBounds below, from the instance's timings, Distro's periods in src/limits.ts and the
// harness's poll period) are written into the result. Valid only when no bound is violated.

import type { HistoryEvent } from '../test/checker/history.ts';
import type { OperationRef } from './checkers.ts';
import { isClientEvent, isNemesisEvent, isObserverEvent, type RecordedEvent } from './history.ts';
import { limits } from '../src/limits.ts';
import { beatTimeouts, type BeatTimeouts } from './workloads/beats.ts';

const listLimit = 30;
/** lateArrivalMs: how long after it was sent a request may still be served (the member's receive bound, checked late). */
const lateArrivalMs = limits.requestReceiveMsMax + 2 * limits.httpConnectionsCheckMs;
const ns = 1e6;

/** BeatBounds are the checker's bounds in milliseconds; beatBounds documents how each is derived. */
export interface BeatBounds extends BeatTimeouts {
  /** slackMs: timer and clock-reading granularity allowed on the silence an eviction needs. */
  readonly slackMs: number;
  /** upDetectMs: after a cut heals, until members route beats to each other again. */
  readonly upDetectMs: number;
  /** detectMs: until a cut-off or killed responsible member is declared down and a successor takes over. */
  readonly detectMs: number;
  /** healSettleMs: how long after a heal a silent side's tombstone or unhealthy flag may show everywhere. */
  readonly healSettleMs: number;
  /** lateBoundMs: from an instance's last beat until it must be gone from every member. */
  readonly lateBoundMs: number;
  /** syncLagMs: how long before a member shows it an eviction may have been decided (sync delay 20 ms, 1 s allowed). */
  readonly syncLagMs: number;
}

/** distroPeriods are Cairn's Distro timings the bounds rest on (src/limits.ts; docs/ap.md). */
export const distroPeriods = {
  heartbeatMs: 1000,
  heartbeatMisses: 3,
  peerTimeoutMs: 2000,
  verifyMs: 5000,
  syncDelayMs: 20,
  expiryTickMs: 500,
  /** channelReplaceMs: a peer channel whose stream is not established after a heal is replaced (finding 1: 1.0-1.4 s). */
  channelReplaceMs: 1500,
} as const;

/**
 * beatBounds derives the bounds from the instance timings and the poll period:
 * - upDetectMs = heartbeat (1 s) + channel replacement (1.5 s) = 2.5 s.
 * - detectMs = 3 missed heartbeats 1 s apart + a 2 s call deadline = 5 s (a killed member is refused at once, at
 *   the next heartbeat; a restarted one needs its start and one heartbeat, within the same 5 s).
 * - healSettleMs = upDetectMs + one verify round (5 s, if the heal's push missed it) + two beat intervals (a beat may
 *   land just before the tombstone) + 0.5 s = 10 s with a 1 s interval.
 * - lateBoundMs = one fault's worth of handovers: the owner would expire the instance at removeMs after its last
 *   beat; a fault starting just before that hands the service to a successor, which notices within detectMs and
 *   counts a full removeMs from its takeover (the takeover grace, docs/ap.md); the fault's end may hand it back
 *   before the successor expires it, and the returning owner counts another removeMs. So 3 x removeMs + detectMs,
 *   plus the expiry scan tick (0.5 s), replication (sync 20 ms, 1 s allowed) and observation (one poll period and a
 *   0.5 s read). With 6 s / 1 s polls: 18 + 5 + 0.5 + 1 + 1 + 0.5 = 26 s. A second handover chain inside one
 *   instance's window (faults of the same service closer than a delete timeout) may exceed it: that is the
 *   "TTL reset for ever" the bound exists to catch.
 */
export function beatBounds(timeouts: BeatTimeouts = beatTimeouts, pollMs = 1000): BeatBounds {
  const upDetectMs = distroPeriods.heartbeatMs + distroPeriods.channelReplaceMs;
  const detectMs = distroPeriods.heartbeatMisses * distroPeriods.heartbeatMs + distroPeriods.peerTimeoutMs;
  const healSettleMs = upDetectMs + distroPeriods.verifyMs + 2 * timeouts.intervalMs + 500;
  const lateBoundMs = 3 * timeouts.removeMs + detectMs + distroPeriods.expiryTickMs + 1000 + pollMs + 500;
  return { ...timeouts, slackMs: 250, upDetectMs, detectMs, healSettleMs, lateBoundMs, syncLagMs: 1000 };
}

/** EvictionClass is why an eviction was allowed, or that it was not. */
export type EvictionClass = 'sided' | 'after-heal' | 'unexplained';

/** Eviction is one observed eviction. */
export interface Eviction {
  readonly element: number;
  readonly service: string;
  readonly member: string;
  readonly to: 'unhealthy' | 'absent';
  /** atMs: the read's invoke, ms since the run started. */
  readonly atMs: number;
  /** silenceMs: the longest silence the member's side can have had at the read. */
  readonly silenceMs: number;
  readonly beating: boolean;
  readonly class: EvictionClass;
}

/** LatencyStats summarises the stopped instances' eviction latencies (ms). */
export interface LatencyStats {
  readonly count: number;
  readonly min: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
  readonly mean: number;
}

/** BeatsResult is the checker's verdict and numbers (results.json `beats`). */
export interface BeatsResult {
  readonly valid: boolean;
  readonly bounds: BeatBounds;
  readonly instances: number;
  readonly beats: { readonly ok: number; readonly fail: number; readonly info: number; readonly notFound: number };
  readonly reads: number;
  /** beatingInstances: instances with at least one acknowledged beat or registration. */
  readonly beatingInstances: number;
  readonly falseEvictions: { readonly total: number; readonly sided: number; readonly afterHeal: number; readonly unexplained: number; readonly toUnhealthy: number; readonly toAbsent: number };
  /** falseEvictedInstances: beating instances that some member evicted (any class) while their client beat. */
  readonly falseEvictedInstances: number;
  /** falseEvictionRate: falseEvictedInstances / beatingInstances. */
  readonly falseEvictionRate: number;
  /** unexplainedInstanceRate: beating instances with an unexplained false eviction / beatingInstances. */
  readonly unexplainedInstanceRate: number;
  readonly expiries: { readonly total: number; readonly inTime: number; readonly afterHeal: number; readonly early: number };
  readonly stopped: number;
  readonly gone: number;
  readonly late: number;
  readonly neverGone: number;
  readonly latencyMs: LatencyStats | null;
  /** latencyOverRemove: the latency statistics divided by removeMs (to compare with Nacos's 30 s). */
  readonly latencyOverRemove: LatencyStats | null;
  readonly restartCatchUpReads: number;
  readonly violations: readonly string[];
  readonly anomalies: readonly OperationRef[];
  readonly problems: readonly string[];
}

/** Call is one completed (or never completed) client call of the beats workload, invoke and completion merged. */
export interface Call {
  readonly f: string;
  readonly process: number;
  readonly type: 'ok' | 'fail' | 'info';
  readonly invoke: number;
  readonly complete: number;
  readonly value: Record<string, unknown>;
}

function record(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
}

const beatFs: ReadonlySet<string> = new Set(['beat', 'beat-register', 'beat-read']);

/**
 * callsOf pairs a workload's invokes with their completions (an invoke never completed ends 'info' at infinity);
 * `fs` names the workload's operations (default the beats workload's).
 */
export function callsOf(events: readonly RecordedEvent[], fs: ReadonlySet<string> = beatFs): Call[] {
  const open = new Map<number, HistoryEvent>();
  const calls: Call[] = [];
  for (const event of events) {
    if (!isClientEvent(event) || !fs.has(event.f)) continue;
    if (event.type === 'invoke') {
      open.set(event.process, event);
      continue;
    }
    const invoke = open.get(event.process);
    open.delete(event.process);
    if (invoke !== undefined) calls.push({ f: event.f, process: event.process, type: event.type, invoke: invoke.time, complete: event.time, value: { ...record(invoke.value), ...record(event.value) } });
  }
  for (const invoke of open.values()) calls.push({ f: invoke.f, process: invoke.process, type: 'info', invoke: invoke.time, complete: Number.POSITIVE_INFINITY, value: record(invoke.value) });
  return calls.sort((a, b) => a.invoke - b.invoke);
}

function hostOf(addr: string): string {
  const colon = addr.lastIndexOf(':');
  return colon < 0 ? addr : addr.slice(0, colon);
}

/** Cut: hosts a and b could not talk (either direction) from `from` to `to` (ns). */
interface Cut {
  readonly a: string;
  readonly b: string;
  readonly from: number;
  readonly to: number;
}

/** Faults are the cuts and the members' restart times, from the nemesis lines. */
interface Faults {
  readonly cuts: readonly Cut[];
  /** restarts: member host -> the times its restarts began (ns). */
  readonly restarts: ReadonlyMap<string, readonly number[]>;
}

function faultsOf(events: readonly RecordedEvent[]): Faults {
  const invokes = new Map<number, number>();
  const openCuts = new Map<number, { pairs: [string, string][]; from: number }>();
  const killed = new Map<number, string[]>();
  const cuts: Cut[] = [];
  const restarts = new Map<string, number[]>();
  const restartsBegun = new Map<number, number>();
  const restart = (host: string, at: number): void => {
    let list = restarts.get(host);
    if (list === undefined) restarts.set(host, (list = []));
    list.push(at);
  };
  const close = (id: number, at: number): void => {
    const open = openCuts.get(id);
    if (open === undefined) return;
    openCuts.delete(id);
    for (const [a, b] of open.pairs) cuts.push({ a, b, from: open.from, to: at });
  };
  for (const event of events) {
    if (!isNemesisEvent(event)) continue;
    const value = record(event.value);
    const id = Number(value['id']);
    if (event.type === 'invoke') {
      if (event.f.startsWith('start-')) invokes.set(id, event.time);
      // A restarted member may answer before the harness records the restart as done: its new incarnation starts
      // when the restart begins (reads in between failed: the process was dead).
      if (event.f === 'stop-kill' || event.f === 'heal-all') restartsBegun.set(event.f === 'heal-all' ? -1 : id, event.time);
      continue;
    }
    if (event.f === 'start-partition') {
      const pairs: [string, string][] = [];
      for (const [from, tos] of Object.entries(record(value['grudge']))) for (const to of Array.isArray(tos) ? (tos as string[]) : []) pairs.push([from, String(to)]);
      openCuts.set(id, { pairs, from: invokes.get(id) ?? event.time });
    } else if (event.f === 'stop-partition') close(id, event.time);
    else if (event.f === 'start-kill') killed.set(id, (Array.isArray(value['members']) ? (value['members'] as string[]) : []).map(hostOf));
    else if (event.f === 'stop-kill') {
      for (const host of killed.get(id) ?? []) restart(host, restartsBegun.get(id) ?? event.time);
      killed.delete(id);
    } else if (event.f === 'heal-all') {
      for (const cutId of [...openCuts.keys()]) close(cutId, event.time);
      for (const hosts of killed.values()) for (const host of hosts) restart(host, restartsBegun.get(-1) ?? event.time);
      killed.clear();
    }
  }
  for (const cutId of [...openCuts.keys()]) close(cutId, Number.POSITIVE_INFINITY);
  return { cuts, restarts };
}

/** Delivery is an acknowledged beat or registration of one instance at one member. */
interface Delivery {
  readonly host: string;
  readonly invoke: number;
  readonly complete: number;
}

/** Instance is everything the history says about one element. */
interface Instance {
  readonly element: number;
  readonly service: string;
  readonly deliveries: Delivery[];
  /**
   * lastAttemptEnd: the latest time any beat or registration of it may have applied: an ok one's completion; an
   * unknown one's completion, or later: its data may still be in the network when the client gives up (its kernel
   * retransmits it after a partition heals), and the member serves it unless it arrives past its receive bound
   * (requestReceiveMsMax, checked every httpConnectionsCheckMs) from the request's start.
   */
  lastAttemptEnd: number;
  stoppedAt: number | null;
}

function instancesOf(calls: readonly Call[], events: readonly RecordedEvent[]): Map<number, Instance> {
  const instances = new Map<number, Instance>();
  const obtain = (element: number, service: string): Instance => {
    let instance = instances.get(element);
    if (instance === undefined) instances.set(element, (instance = { element, service, deliveries: [], lastAttemptEnd: Number.NEGATIVE_INFINITY, stoppedAt: null }));
    return instance;
  };
  for (const call of calls) {
    if (call.f === 'beat-read') continue;
    const instance = obtain(Number(call.value['element']), String(call.value['service']));
    if (call.type === 'ok') instance.deliveries.push({ host: hostOf(String(call.value['node'])), invoke: call.invoke, complete: call.complete });
    if (call.type === 'ok') instance.lastAttemptEnd = Math.max(instance.lastAttemptEnd, call.complete);
    if (call.type === 'info') instance.lastAttemptEnd = Math.max(instance.lastAttemptEnd, call.complete, call.invoke + lateArrivalMs * ns);
  }
  for (const event of events) {
    if (!isObserverEvent(event) || event.f !== 'beat-stop') continue;
    const value = record(event.value);
    obtain(Number(value['element']), String(value['service'])).stoppedAt = event.time;
  }
  return instances;
}

/** Model answers the connectivity and silence questions. */
class Model {
  constructor(
    private readonly faults: Faults,
    private readonly bounds: BeatBounds,
  ) {}

  /** connected: hosts a and b could talk both ways throughout [from, to] (a cut's end stretched by upDetectMs). */
  connected(a: string, b: string, from: number, to: number): boolean {
    if (a === b) return true;
    const up = this.bounds.upDetectMs * ns;
    return !this.faults.cuts.some((cut) => ((cut.a === a && cut.b === b) || (cut.a === b && cut.b === a)) && cut.from <= to && cut.to + up >= from);
  }

  /** cutsWith lists the cuts between `host` and any other host. */
  cutsWith(host: string): { other: string; cut: Cut }[] {
    const found: { other: string; cut: Cut }[] = [];
    for (const cut of this.faults.cuts) {
      if (cut.a === host) found.push({ other: cut.b, cut });
      else if (cut.b === host) found.push({ other: cut.a, cut });
    }
    return found;
  }

  /** heard: the deliveries host `x`'s side heard (connected from the invoke to the completion). */
  heard(instance: Instance, x: string): Delivery[] {
    return instance.deliveries.filter((d) => this.connected(d.host, x, d.invoke, d.complete));
  }

  /** silenceAt: the longest silence `heard` allows at a read [readInvoke, readComplete] (ns). */
  static silenceAt(heard: readonly Delivery[], floor: number, readInvoke: number, readComplete: number): number {
    let last = floor;
    for (const d of heard) if (d.complete <= readInvoke && d.invoke > last) last = d.invoke;
    return readComplete - last;
  }

  /** maxSilence: the longest silence `heard` allows at any time within [from, to] (ns). */
  static maxSilence(heard: readonly Delivery[], floor: number, from: number, to: number): number {
    let longest = 0;
    const sample = (t: number): void => {
      let last = floor;
      for (const d of heard) if (d.complete < t && d.invoke > last) last = d.invoke;
      longest = Math.max(longest, t - last);
    };
    for (const d of heard) if (d.complete >= from && d.complete <= to) sample(d.complete);
    if (Number.isFinite(to)) sample(to);
    return longest;
  }
}

/** stats summarises latencies (ms); null when there are none. */
export function stats(values: readonly number[]): LatencyStats | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
  const round = (x: number): number => Math.round(x * 1000) / 1000;
  return { count: sorted.length, min: round(sorted[0] ?? 0), p50: round(at(0.5)), p90: round(at(0.9)), p99: round(at(0.99)), max: round(sorted[sorted.length - 1] ?? 0), mean: round(sorted.reduce((s, x) => s + x, 0) / sorted.length) };
}

function scaled(value: LatencyStats | null, divisor: number): LatencyStats | null {
  if (value === null) return null;
  const f = (x: number): number => Math.round((x / divisor) * 100) / 100;
  return { count: value.count, min: f(value.min), p50: f(value.p50), p90: f(value.p90), p99: f(value.p99), max: f(value.max), mean: f(value.mean) };
}

/** MemberTrack follows one element on one member: its state and what the late check needs. */
interface MemberTrack {
  state: 'healthy' | 'unhealthy' | 'absent' | null;
  /** lastRead: this member's previous read of the element's service (the one that showed `state`). */
  lastRead: Call | null;
  incarnation: number;
  lastPresent: Call | null;
  absentAfterPresent: Call | null;
}

function incarnationAt(restarts: readonly number[] | undefined, t: number): number {
  let count = 0;
  for (const at of restarts ?? []) if (at <= t) count++;
  return count;
}

function worse(before: MemberTrack['state'], now: 'healthy' | 'unhealthy' | 'absent'): 'unhealthy' | 'absent' | null {
  if (before === 'healthy' && now !== 'healthy') return now;
  if (before === 'unhealthy' && now === 'absent') return 'absent';
  return null;
}

/** Judge classifies evictions and collects what the result reports. */
class Judge {
  readonly evictions: Eviction[] = [];
  readonly anomalies: OperationRef[] = [];
  private readonly heardCache = new Map<string, Delivery[]>();

  constructor(
    private readonly model: Model,
    private readonly bounds: BeatBounds,
  ) {}

  private heard(instance: Instance, host: string): Delivery[] {
    const key = `${instance.element}|${host}`;
    let heard = this.heardCache.get(key);
    if (heard === undefined) this.heardCache.set(key, (heard = this.model.heard(instance, host)));
    return heard;
  }

  /** eviction judges `instance` getting worse (`to`) on `member` at `read`. */
  eviction(instance: Instance, member: string, previous: Call, read: Call, to: 'unhealthy' | 'absent'): void {
    const host = hostOf(member);
    const requiredNs = (to === 'absent' ? this.bounds.removeMs : this.bounds.unhealthyMs) * ns - this.bounds.slackMs * ns;
    const floor = instance.deliveries[0]?.invoke ?? Number.NEGATIVE_INFINITY;
    // The deciding member acted at some time between just before the previous read (less the sync delay) and this
    // read; a beat that arrived after its decision does not undo it unless it reaches that member.
    const decidedFrom = previous.invoke - this.bounds.syncLagMs * ns;
    const heard = this.heard(instance, host);
    const silence = Math.max(Model.maxSilence(heard, floor, decidedFrom, read.complete), Model.silenceAt(heard, floor, read.invoke, read.complete));
    let cls: EvictionClass = 'unexplained';
    if (silence >= requiredNs) cls = 'sided';
    else if (this.afterHeal(instance, host, read, requiredNs, floor)) cls = 'after-heal';
    const beating = instance.stoppedAt === null || instance.stoppedAt > read.complete;
    this.evictions.push({ element: instance.element, service: instance.service, member, to, atMs: Math.round(read.invoke / ns), silenceMs: Math.round(silence / ns), beating, class: cls });
    if (cls === 'unexplained') this.anomalies.push({ process: read.process, time: read.invoke });
  }

  /** afterHeal: E2, a member cut from `host` until shortly before the read was silent for the timeout meanwhile. */
  private afterHeal(instance: Instance, host: string, read: Call, requiredNs: number, floor: number): boolean {
    const settle = this.bounds.healSettleMs * ns;
    for (const { other, cut } of this.model.cutsWith(host)) {
      // Its tombstone or flag reaches this member only once the cut has ended, and rules it until the next beat.
      if (!(cut.to <= read.complete && cut.to + settle >= read.invoke)) continue;
      // Its silence may go on after the heal (a stopped instance): what it heard afterwards counts as usual.
      if (Model.maxSilence(this.heard(instance, other), floor, cut.from, read.complete) >= requiredNs) return true;
    }
    return false;
  }
}

/** Setup is what a beats history's `beats-setup` line says the checkers need. */
export interface Setup {
  readonly timeouts: BeatTimeouts;
  readonly pollMs: number;
}

/** setupOf reads the `beats-setup` line (D2, D3, D4), or null when there is none or it is malformed. */
export function setupOf(events: readonly RecordedEvent[]): Setup | null {
  for (const event of events) {
    if (!isObserverEvent(event) || event.f !== 'beats-setup') continue;
    const value = record(event.value);
    const t = record(value['timeouts']);
    const timeouts = { intervalMs: Number(t['intervalMs']), unhealthyMs: Number(t['unhealthyMs']), removeMs: Number(t['removeMs']) };
    if (![timeouts.intervalMs, timeouts.unhealthyMs, timeouts.removeMs, Number(value['pollMs'])].every((x) => Number.isFinite(x) && x > 0)) return null;
    return { timeouts, pollMs: Number(value['pollMs']) };
  }
  return null;
}

/** Observations walks every member's reads in order and feeds evictions to the judge. */
function observe(reads: readonly Call[], instances: ReadonlyMap<number, Instance>, faults: Faults, judge: Judge): { tracks: Map<string, Map<number, MemberTrack>>; catchUp: number } {
  const byService = new Map<string, Instance[]>();
  for (const instance of instances.values()) {
    let list = byService.get(instance.service);
    if (list === undefined) byService.set(instance.service, (list = []));
    list.push(instance);
  }
  const tracks = new Map<string, Map<number, MemberTrack>>();
  let catchUp = 0;
  for (const read of reads) {
    const member = String(read.value['node']);
    const present = new Set(Array.isArray(read.value['present']) ? (read.value['present'] as number[]) : []);
    const unhealthy = new Set(Array.isArray(read.value['unhealthy']) ? (read.value['unhealthy'] as number[]) : []);
    const incarnation = incarnationAt(faults.restarts.get(hostOf(member)), read.invoke);
    let memberTracks = tracks.get(member);
    if (memberTracks === undefined) tracks.set(member, (memberTracks = new Map()));
    for (const instance of byService.get(String(read.value['service'])) ?? []) {
      let track = memberTracks.get(instance.element);
      if (track === undefined) {
        if (!present.has(instance.element)) continue;
        memberTracks.set(instance.element, (track = { state: null, lastRead: null, incarnation, lastPresent: null, absentAfterPresent: null }));
      }
      if (track.incarnation !== incarnation) {
        track.incarnation = incarnation;
        track.state = null;
      }
      const now = !present.has(instance.element) ? 'absent' : unhealthy.has(instance.element) ? 'unhealthy' : 'healthy';
      if (now !== 'absent') {
        track.lastPresent = read;
        track.absentAfterPresent = null;
      } else if (track.absentAfterPresent === null) track.absentAfterPresent = read;
      if (track.state === null && now === 'absent' && incarnation > 0) catchUp++;
      const to = worse(track.state, now);
      if (to !== null) judge.eviction(instance, member, track.lastRead ?? read, read, to);
      if (track.state !== null || now !== 'absent') track.state = now;
      track.lastRead = read;
    }
  }
  return { tracks, catchUp };
}

interface LateOutcome {
  readonly latencies: number[];
  stopped: number;
  gone: number;
  readonly late: string[];
  neverGone: number;
  readonly problems: string[];
  readonly anomalies: OperationRef[];
}

/** lateness measures each stopped instance's latency to gone-from-every-member and judges it against the bound. */
function lateness(instances: ReadonlyMap<number, Instance>, tracks: ReadonlyMap<string, ReadonlyMap<number, MemberTrack>>, bounds: BeatBounds): LateOutcome {
  const out: LateOutcome = { latencies: [], stopped: 0, gone: 0, late: [], neverGone: 0, problems: [], anomalies: [] };
  for (const instance of instances.values()) {
    if (instance.stoppedAt === null || instance.deliveries.length === 0) continue;
    out.stopped++;
    const lastBeat = instance.lastAttemptEnd;
    let goneUpper = Number.NEGATIVE_INFINITY;
    let goneLower = Number.NEGATIVE_INFINITY;
    let stillListedOn: string | null = null;
    let latest: Call | null = null;
    for (const [member, memberTracks] of tracks) {
      const track = memberTracks.get(instance.element);
      if (track === undefined || track.lastPresent === null) continue;
      if (track.lastPresent.invoke > goneLower) {
        goneLower = track.lastPresent.invoke;
        latest = track.lastPresent;
      }
      if (track.absentAfterPresent === null) stillListedOn = member;
      else goneUpper = Math.max(goneUpper, track.absentAfterPresent.complete);
    }
    if (!Number.isFinite(lastBeat)) {
      out.problems.push(`element ${instance.element}: a beat never completed; its latency is not judged`);
      continue;
    }
    const lateMs = (goneLower - lastBeat) / ns;
    if (stillListedOn !== null) out.neverGone++;
    if (lateMs > bounds.lateBoundMs) {
      out.late.push(`late: element ${instance.element} (${instance.service}) still listed ${Math.round(lateMs)} ms after its last beat (bound ${bounds.lateBoundMs} ms)${stillListedOn === null ? '' : `, and by ${stillListedOn} at its last read`}`);
      if (latest !== null) out.anomalies.push({ process: latest.process, time: latest.invoke });
    } else if (stillListedOn !== null) {
      out.problems.push(`element ${instance.element}: still listed by ${stillListedOn} at its last read, ${Math.round(lateMs)} ms after its last beat: observed too briefly to judge`);
    }
    if (stillListedOn === null && Number.isFinite(goneUpper)) {
      out.gone++;
      // The distribution is measured from the last successful beat (an unknown one only makes the judgement lenient).
      const lastOk = Math.max(...instance.deliveries.map((d) => d.complete));
      out.latencies.push(Math.max(0, (goneUpper - lastOk) / ns));
    }
  }
  return out;
}

/** checkBeats judges a beats history (see the file comment). */
export function checkBeats(events: readonly RecordedEvent[]): BeatsResult {
  const setup = setupOf(events);
  const bounds = beatBounds(setup?.timeouts ?? beatTimeouts, setup?.pollMs ?? 1000);
  const calls = callsOf(events);
  const faults = faultsOf(events);
  const instances = instancesOf(calls, events);
  const judge = new Judge(new Model(faults, bounds), bounds);
  const reads = calls.filter((call) => call.f === 'beat-read' && call.type === 'ok');
  const { tracks, catchUp } = observe(reads, instances, faults, judge);
  const late = lateness(instances, tracks, bounds);
  const beatCalls = calls.filter((call) => call.f === 'beat');
  const beating = [...instances.values()].filter((instance) => instance.deliveries.length > 0).length;
  const falseEv = judge.evictions.filter((e) => e.beating);
  const expiries = judge.evictions.filter((e) => !e.beating);
  const count = (list: readonly Eviction[], cls: EvictionClass): number => list.filter((e) => e.class === cls).length;
  const instancesWith = (list: readonly Eviction[]): number => new Set(list.map((e) => e.element)).size;
  const unexplained = falseEv.filter((e) => e.class === 'unexplained');
  const early = expiries.filter((e) => e.class === 'unexplained');
  const describe = (e: Eviction, what: string): string => `${what}: element ${e.element} (${e.service}) ${e.to} on ${e.member} at ${(e.atMs / 1000).toFixed(2)} s, its side silent at most ${e.silenceMs} ms (needs ${e.to === 'absent' ? bounds.removeMs : bounds.unhealthyMs} ms)`;
  const violations = [
    ...unexplained.map((e) => describe(e, 'false eviction of a beating instance')),
    ...early.map((e) => describe(e, 'early expiry')),
    ...late.late,
  ];
  const problems = [...late.problems];
  if (setup === null) problems.push('no beats-setup line: default timings assumed');
  if (reads.length === 0) problems.push('no list read succeeded: nothing was observed');
  if (beating === 0) problems.push('no beat or registration succeeded: nothing was tested');
  const latencyMs = stats(late.latencies);
  return {
    valid: violations.length === 0 && problems.filter((p) => !p.startsWith('no beats-setup')).length === 0,
    bounds,
    instances: instances.size,
    beats: {
      ok: beatCalls.filter((c) => c.type === 'ok').length, fail: beatCalls.filter((c) => c.type === 'fail').length, info: beatCalls.filter((c) => c.type === 'info').length,
      notFound: beatCalls.filter((c) => c.type === 'ok' && c.value['code'] !== 10200).length,
    },
    reads: reads.length,
    beatingInstances: beating,
    falseEvictions: {
      total: falseEv.length, sided: count(falseEv, 'sided'), afterHeal: count(falseEv, 'after-heal'), unexplained: unexplained.length,
      toUnhealthy: falseEv.filter((e) => e.to === 'unhealthy').length, toAbsent: falseEv.filter((e) => e.to === 'absent').length,
    },
    falseEvictedInstances: instancesWith(falseEv),
    falseEvictionRate: beating === 0 ? 0 : Math.round((instancesWith(falseEv) / beating) * 10_000) / 10_000,
    unexplainedInstanceRate: beating === 0 ? 0 : Math.round((instancesWith(unexplained) / beating) * 10_000) / 10_000,
    expiries: { total: expiries.length, inTime: count(expiries, 'sided'), afterHeal: count(expiries, 'after-heal'), early: early.length },
    stopped: late.stopped,
    gone: late.gone,
    late: late.late.length,
    neverGone: late.neverGone,
    latencyMs,
    latencyOverRemove: scaled(latencyMs, bounds.removeMs),
    restartCatchUpReads: catchUp,
    violations: violations.slice(0, listLimit),
    anomalies: [...judge.anomalies, ...late.anomalies].slice(0, 500),
    problems,
  };
}
