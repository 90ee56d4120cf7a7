// checkers-watch: the watch workload's checker (PEERS.md §2.3 B1, B2, B3, B4; workloads/watch.ts makes the history).
//
// Semantics assumed (Cairn's Subscribe, proto/cairn/naming/v1/naming.proto and src/naming/subscriptions.ts): a
// stream carries whole snapshots, not events; changes may be merged (a merge window, and a slow reader's waiting
// snapshot is replaced by a newer one), so intermediate states may be skipped and "no gap" means "no snapshot
// contradicts the log", not "every state was seen". `revision` is the member's push counter (a Lamport clock, raised
// by a resume above after_revision), so it must grow along a subscriber's whole life, across resumes and members;
// `service.revision` is the log index of the service's last change, which names the linearized state exactly.
//
// Each write's answer carries the service's revision after it (a log index), so the linearized state at log index
// r is known: an element is present at r when its registration was acknowledged at revision <= r and its
// deregistration not acknowledged at revision <= r. Elements whose registration or deregistration outcome is
// unknown (info) may be either, but only in the order "absent, present, absent".
//
// Checks:
// 1. revisions: along each subscriber (across its streams) every snapshot's revision is greater than the previous
//    one (equal: a duplicate; smaller: back in time);
// 2. state: every snapshot equals the linearized state at its service revision (no state that never existed:
//    phantom, failed or removed elements, missing acknowledged ones), and two snapshots at the same service revision
//    agree;
// 3. time travel: along each subscriber, the service revision never decreases (a resume on a member that is behind
//    must not show an older state than the subscriber already saw);
// 4. resurrection: per element, ordered by service revision, presence goes absent* present* absent* at most;
// 5. convergence: each subscriber's last snapshot is the final linearizable read's state (elements, and a service
//    revision at least the final one).
// Check 1 skips the step into a stream opened with after_revision 0 (a B4 `zero` start): a fresh stream by
// contract, whose member's counter may be below what the subscriber saw elsewhere. B4's own checks (S1-S4, start
// revisions against the Resume rule) are in the section "Start revisions" below.

import { limits } from '../src/limits.ts';
import type { HistoryEvent } from '../test/checker/history.ts';
import type { OperationRef } from './checkers.ts';
import { isClientEvent, isNemesisEvent, isObserverEvent, streamLaneBase, type RecordedEvent } from './history.ts';
import { type WatchEdgeStart, watchEdgeStarts } from './workloads/watch.ts';

const listLimit = 50;

/** WatchSnapshot is one observed snapshot. */
export interface WatchSnapshot {
  readonly sub: number;
  readonly service: string;
  readonly node: string;
  readonly stream: number;
  readonly revision: number;
  readonly epoch: string;
  /** appliedIndex is the member's applied log index when it sent the snapshot (null on lines of older runs). */
  readonly appliedIndex: number | null;
  readonly serviceRevision: number | null;
  readonly elements: readonly number[];
  readonly time: number;
}

interface ElementFacts {
  service: string;
  add: 'ok' | 'fail' | 'info' | null;
  addRevision: number | null;
  remove: 'ok' | 'fail' | 'info' | null;
  removeRevision: number | null;
}

/** WatchResult is the watch checker's verdict with its evidence. */
export interface WatchResult {
  readonly valid: boolean;
  readonly subscribers: number;
  readonly streams: number;
  readonly resumes: number;
  readonly snapshots: number;
  readonly writes: { readonly adds: number; readonly addsOk: number; readonly removes: number; readonly removesOk: number };
  readonly revisionViolations: readonly string[];
  readonly stateViolations: readonly string[];
  readonly timeTravel: readonly string[];
  readonly resurrections: readonly string[];
  readonly notConverged: readonly string[];
  /** streamRevisionViolations, lateFirstSnapshots, startOutcomes, counterLifted: B4's S1-S4 ("Start revisions"). */
  readonly streamRevisionViolations: readonly string[];
  readonly lateFirstSnapshots: readonly string[];
  readonly startOutcomes: readonly string[];
  readonly counterLifted: readonly string[];
  readonly counts: {
    readonly revisionViolations: number; readonly stateViolations: number; readonly timeTravel: number; readonly resurrections: number; readonly notConverged: number;
    readonly streamRevisionViolations: number; readonly lateFirstSnapshots: number; readonly startOutcomes: number; readonly counterLifted: number;
  };
  /** starts counts the opens per kind of start, B4 (empty for a history without edge starts). */
  readonly starts: Readonly<Partial<Record<WatchEdgeStart, WatchStartStats>>>;
  readonly streamEnds: Readonly<Record<string, number>>;
  /**
   * staleSnapshots (reported, not judged): snapshots whose state had already been superseded by an acknowledged
   * write when their stream opened (a member behind, e.g. cut off by a partition, serves its local state).
   */
  readonly staleSnapshots: number;
  readonly problems: readonly string[];
  /** anomalies: the streams (timeline lane of the subscriber, stream open time) that showed a violation. */
  readonly anomalies: readonly OperationRef[];
}

function record(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
}

function push(list: string[], text: string): void {
  if (list.length < listLimit) list.push(text);
}

/** checkWatch judges a watch history (see the file comment). */
export function checkWatch(events: readonly RecordedEvent[]): WatchResult {
  const facts = new Map<number, ElementFacts>();
  const snapshots: WatchSnapshot[] = [];
  const opened = new Map<string, number>();
  const opens: WatchOpen[] = [];
  const opensByStream = new Map<string, WatchOpen>();
  const ends = new Map<string, WatchEnd>();
  const acknowledged: { service: string; revision: number; complete: number }[] = [];
  const finals = new Map<string, { serviceRevision: number; elements: string }>();
  const streamEnds: Record<string, number> = {};
  let streams = 0;
  let resumes = 0;
  const open = new Map<number, HistoryEvent>();
  const writes = { adds: 0, addsOk: 0, removes: 0, removesOk: 0 };
  for (const event of events) {
    if (isObserverEvent(event)) {
      const value = record(event.value);
      if (event.f === 'watch-snapshot') {
        snapshots.push({ sub: Number(value['sub']), service: String(value['service']), node: String(value['node']), stream: Number(value['stream']), revision: Number(value['revision']), epoch: String(value['epoch']), appliedIndex: typeof value['appliedIndex'] === 'number' ? value['appliedIndex'] : null, serviceRevision: value['serviceRevision'] === null ? null : Number(value['serviceRevision']), elements: (value['elements'] as number[] | undefined) ?? [], time: event.time });
      } else if (event.f === 'watch-open') {
        const open = openOf(value, event.time);
        opens.push(open);
        opensByStream.set(`${open.sub}/${open.stream}`, open);
        opened.set(`${String(value['sub'])}/${String(value['stream'])}`, event.time);
        streams++;
        if (Number(value['afterRevision']) > 0) resumes++;
      } else if (event.f === 'watch-end') {
        const reason = String(value['reason']).split(' ')[0] ?? '?';
        streamEnds[reason] = (streamEnds[reason] ?? 0) + 1;
        ends.set(`${String(value['sub'])}/${String(value['stream'])}`, { time: event.time, reason: String(value['reason']), code: typeof value['code'] === 'number' ? value['code'] : null, cairnCode: typeof value['cairnCode'] === 'string' ? value['cairnCode'] : null });
      }
      continue;
    }
    if (!isClientEvent(event) || !event.f.startsWith('watch-')) continue;
    if (event.type === 'invoke') {
      open.set(event.process, event);
      continue;
    }
    const invoke = open.get(event.process);
    open.delete(event.process);
    if (invoke === undefined) continue;
    const asked = record(invoke.value);
    const done = record(event.value);
    if (event.f === 'watch-final') {
      if (event.type === 'ok') finals.set(String(done['service']), { serviceRevision: Number(done['serviceRevision']), elements: ((done['elements'] as number[] | undefined) ?? []).join(',') });
      continue;
    }
    const element = Number(asked['element']);
    let fact = facts.get(element);
    if (fact === undefined) facts.set(element, (fact = { service: String(asked['service']), add: null, addRevision: null, remove: null, removeRevision: null }));
    if (event.f === 'watch-add') {
      writes.adds++;
      fact.add = event.type;
      if (event.type === 'ok') {
        writes.addsOk++;
        fact.addRevision = Number(done['revision']);
        acknowledged.push({ service: fact.service, revision: fact.addRevision, complete: event.time });
      }
    } else if (event.f === 'watch-remove') {
      writes.removes++;
      fact.remove = event.type;
      if (event.type === 'ok') {
        writes.removesOk++;
        fact.removeRevision = Number(done['revision']);
        acknowledged.push({ service: fact.service, revision: fact.removeRevision, complete: event.time });
      }
    }
  }
  // Writes still open at the end are unknown.
  for (const invoke of open.values()) {
    const element = Number(record(invoke.value)['element']);
    const fact = facts.get(element) ?? { service: String(record(invoke.value)['service']), add: null, addRevision: null, remove: null, removeRevision: null };
    facts.set(element, fact);
    if (invoke.f === 'watch-add') fact.add = 'info';
    if (invoke.f === 'watch-remove') fact.remove = 'info';
  }

  const revisionViolations: string[] = [];
  const stateViolations: string[] = [];
  const timeTravel: string[] = [];
  const resurrections: string[] = [];
  const notConverged: string[] = [];
  const counts = { revisionViolations: 0, stateViolations: 0, timeTravel: 0, resurrections: 0, notConverged: 0 };
  const problems: string[] = [];
  const anomalies: OperationRef[] = [];
  const flag = (s: WatchSnapshot): void => {
    const time = opened.get(`${s.sub}/${s.stream}`);
    if (time !== undefined) anomalies.push({ process: streamLaneBase + s.sub, time });
  };

  // 1 and 3, per subscriber.
  const bySub = new Map<number, WatchSnapshot[]>();
  for (const s of snapshots) {
    let list = bySub.get(s.sub);
    if (list === undefined) bySub.set(s.sub, (list = []));
    list.push(s);
  }
  for (const [sub, list] of bySub) {
    for (let i = 1; i < list.length; i++) {
      const a = list[i - 1] as WatchSnapshot;
      const b = list[i] as WatchSnapshot;
      const where = `subscriber ${sub} (${b.service}): stream ${a.stream} on ${a.node} then stream ${b.stream} on ${b.node}`;
      const fresh = b.stream !== a.stream && opensByStream.get(`${sub}/${b.stream}`)?.afterRevision === 0;
      if (b.revision <= a.revision && !fresh) {
        flag(b);
        counts.revisionViolations++;
        push(revisionViolations, `${where}: revision ${b.revision} after ${a.revision} (${b.revision === a.revision ? 'duplicate' : 'back in time'}; epochs ${a.epoch.slice(0, 8)} -> ${b.epoch.slice(0, 8)})`);
      }
      if (a.serviceRevision !== null && b.serviceRevision !== null && b.serviceRevision < a.serviceRevision) {
        flag(b);
        counts.timeTravel++;
        push(timeTravel, `${where}: state at log index ${b.serviceRevision} after log index ${a.serviceRevision} (push revisions ${a.revision} -> ${b.revision})`);
      }
    }
  }

  // 2: every snapshot against the log; same service revision, same elements.
  const byState = new Map<string, string>();
  for (const s of snapshots) {
    if (s.serviceRevision === null) {
      if (s.elements.length > 0) {
        counts.stateViolations++;
        push(stateViolations, `subscriber ${s.sub} on ${s.node}: elements listed for a service that does not exist`);
      }
      continue;
    }
    const r = s.serviceRevision;
    const key = `${s.service}@${r}`;
    const text = s.elements.join(',');
    const seen = byState.get(key);
    if (seen === undefined) byState.set(key, text);
    else if (seen !== text) {
      counts.stateViolations++;
      push(stateViolations, `${s.service} at log index ${r}: two different states observed (${seen.slice(0, 80)} / ${text.slice(0, 80)})`);
    }
    const present = new Set(s.elements);
    const wrong: string[] = [];
    for (const element of present) {
      const fact = facts.get(element);
      if (fact === undefined || fact.service !== s.service) wrong.push(`${element} never registered in ${s.service}`);
      else if (fact.add === 'fail') wrong.push(`${element} whose registration failed`);
      else if (fact.addRevision !== null && fact.addRevision > r) wrong.push(`${element} registered only at ${fact.addRevision}`);
      else if (fact.removeRevision !== null && fact.removeRevision <= r) wrong.push(`${element} deregistered at ${fact.removeRevision}`);
    }
    for (const [element, fact] of facts) {
      if (fact.service !== s.service || present.has(element) || fact.addRevision === null || fact.addRevision > r) continue;
      if (fact.remove === 'info' || (fact.removeRevision !== null && fact.removeRevision <= r)) continue;
      wrong.push(`${element} missing (registered at ${fact.addRevision}${fact.removeRevision === null ? '' : `, deregistered at ${fact.removeRevision}`})`);
    }
    if (wrong.length > 0) {
      flag(s);
      counts.stateViolations++;
      push(stateViolations, `subscriber ${s.sub} stream ${s.stream} on ${s.node}, log index ${r}: a state that never existed: ${wrong.slice(0, 5).join('; ')}`);
    }
  }

  // 4: presence per element ordered by service revision.
  const states = [...byState.entries()].map(([key, text]) => ({ service: key.slice(0, key.lastIndexOf('@')), r: Number(key.slice(key.lastIndexOf('@') + 1)), elements: new Set(text === '' ? [] : text.split(',').map(Number)) })).sort((a, b) => a.r - b.r);
  for (const [element, fact] of facts) {
    let phase = 0; // 0 absent before, 1 present, 2 absent after
    for (const state of states) {
      if (state.service !== fact.service) continue;
      const here = state.elements.has(element);
      if (phase === 0 && here) phase = 1;
      else if (phase === 1 && !here) phase = 2;
      else if (phase === 2 && here) {
        counts.resurrections++;
        push(resurrections, `${element} (${fact.service}) present again at log index ${state.r} after it was gone`);
        break;
      }
    }
  }

  // 5: convergence.
  for (const [sub, list] of bySub) {
    const last = list[list.length - 1] as WatchSnapshot;
    const want = finals.get(last.service);
    if (want === undefined) {
      problems.push(`no final read of ${last.service}`);
      continue;
    }
    if (last.elements.join(',') !== want.elements || (last.serviceRevision ?? -1) < want.serviceRevision) {
      counts.notConverged++;
      push(notConverged, `subscriber ${sub} (${last.service}) ended at log index ${String(last.serviceRevision)} with ${last.elements.length} elements; the final read is at ${want.serviceRevision} with ${want.elements === '' ? 0 : want.elements.split(',').length}`);
    }
  }
  const subscribersOpened = new Set<number>();
  for (const event of events) if (isObserverEvent(event) && event.f === 'watch-open') subscribersOpened.add(Number(record(event.value)['sub']));
  for (const sub of subscribersOpened) if (!bySub.has(sub)) problems.push(`subscriber ${sub} never received a snapshot`);
  if (snapshots.length === 0) problems.push('no snapshot was received: nothing was tested');
  if (writes.addsOk === 0) problems.push('no write was acknowledged: nothing was tested');
  let staleSnapshots = 0;
  for (const s of snapshots) {
    const from = opened.get(`${s.sub}/${s.stream}`);
    if (from === undefined || s.serviceRevision === null) continue;
    const r = s.serviceRevision;
    if (acknowledged.some((w) => w.service === s.service && w.revision > r && w.complete < from)) staleSnapshots++;
  }
  const starts = checkStarts(events, opens, ends, snapshots);
  anomalies.push(...starts.anomalies);
  const allCounts = { ...counts, ...starts.counts };
  const valid = problems.length === 0 && Object.values(allCounts).every((n) => n === 0);
  return {
    valid, subscribers: bySub.size, streams, resumes, snapshots: snapshots.length, writes, revisionViolations, stateViolations, timeTravel, resurrections, notConverged,
    streamRevisionViolations: starts.streamRevisionViolations, lateFirstSnapshots: starts.lateFirstSnapshots, startOutcomes: starts.startOutcomes, counterLifted: starts.counterLifted,
    counts: allCounts, starts: starts.starts, streamEnds, staleSnapshots, problems, anomalies,
  };
}

/** openOf reads a `watch-open` line (older runs' lines lack min_applied_index and edge). */
function openOf(value: Record<string, unknown>, time: number): WatchOpen {
  const edge = typeof value['edge'] === 'string' ? (value['edge'] as WatchEdgeStart) : null;
  return { sub: Number(value['sub']), stream: Number(value['stream']), node: String(value['node']), time, afterRevision: Number(value['afterRevision'] ?? 0), afterEpoch: String(value['afterEpoch'] ?? ''), minAppliedIndex: Number(value['minAppliedIndex'] ?? 0), edge };
}

// ---------------------------------------------------------------------------------------------------------------
// Start revisions (B4). Opens whose line carries `edge` (workloads/watch.ts, "Edge starts") are judged against the
// Resume rule of docs/grpc.md "Subscribe" as src/naming/subscriptions.ts implements it (subscribe(), mayResume()):
//
// S1. Every snapshot of a stream has a revision above the open's after_revision, and they strictly grow (the
//     counter jumps above after_revision before the first snapshot; every later push takes the next number). Judged
//     for every stream with an open line, edge or not.
// S2. The first snapshot is sent at once unless mayResume(): after_revision > 0, after_epoch is the accepting
//     process's epoch, after_revision <= that process's counter, and the service's last change <= after_revision.
//     `zero` (after_revision 0) and `unknown-epoch` never satisfy it. For `future-near` the history decides only
//     what it can prove: an epoch of another address, of an earlier process of this address (a restart since), or
//     an after_revision above an upper bound of the counter (counterBoundOf); otherwise the member may have
//     skipped (counted as `maySkip`, not judged). "At once" means within firstSnapshotBoundMs, judged only when the
//     stream stayed open that long, its member was not killed, paused or replaced in that window, and its member
//     had applied min_applied_index before the open: the stream waits for that first (up to
//     subscribeCatchUpMsMax), which is the one legitimate wait. That is known when the member showed an applied
//     index that high before the open (a snapshot's appliedIndex, same process), or assumed when no fault of any
//     kind was under way within faultCatchUpGraceMs of the window (only faults stall a member's applying for
//     seconds). Partitions cut members from each other, never the client from a member (iptables rules match the
//     members' cgroups and addresses, not the harness's), so they matter only through that catch-up.
// S3. `future-far` and `over-max` are refused with INVALID_ARGUMENT / CAIRN_INVALID_ARGUMENT and get no snapshot;
//     every other edge-marked open (plain resumes included) is not refused. UNAVAILABLE is excused when a fault was
//     under way (a member behind: CAIRN_MEMBER_BEHIND after its catch-up wait; a member unreachable: down within
//     reconnectGraceMs); the client cancelling or the member cutting off a slow stream (RESOURCE_EXHAUSTED) is not a
//     refusal; any other error is excused only while the stream's member was down (a killed member may reset it).
// S4. A refusal disturbs nothing: after a refused `future-far` or `over-max` open with after_revision X, no snapshot
//     of that member's same process carries a revision above X - subscribeRevisionAheadMsMax (in microseconds), i.e.
//     the counter was not lifted toward X. Legitimate lifts come from `future-near` starts (at most 10^9 us each),
//     so it would take more than 86 of them at the largest step, each stacked on the last, to get there.
// (Plain resumes keep the checks above: revisions grow along a subscriber, except across a `zero` start, which is
// a fresh stream by contract.)

/** firstSnapshotBoundMs bounds the wait for a first snapshot due at once: a push takes ~50 ms; 3 s is generous on a loaded 2-vCPU machine. */
export const firstSnapshotBoundMs = 3000;
/** faultCatchUpGraceMs is how long after a fault stops a member may still lag: an election (1-2 s), a restart's replay, a minority's backlog. */
export const faultCatchUpGraceMs = 5000;
/**
 * reconnectGraceMs is how long after a member was down the client may still fail to reach it: grpc-js backs off its
 * reconnects (1 s, then x1.6 up to 120 s), so after a 10 s outage the channel may wait several seconds more.
 */
export const reconnectGraceMs = 30_000;
/** counterIncrementsMax bounds how far a member's own numbering (one per change) moves its counter in a run: far more changes than a run applies. */
export const counterIncrementsMax = 10_000_000;
/** epochClockSkewUs bounds how far the counter's first value (the clock read by the hub) is above the epoch's start ms (read a moment before). */
export const epochClockSkewUs = 1_000_000;
/** dayUs is subscribeRevisionAheadMsMax in microseconds: how far ahead of a member's clock an after_revision may be. */
const dayUs = limits.subscribeRevisionAheadMsMax * 1000;
const grpcCancelled = 1;
const grpcInvalidArgument = 3;
const grpcResourceExhausted = 8;
const grpcUnavailable = 14;
/** refusedStarts must be refused. */
const refusedStarts: ReadonlySet<WatchEdgeStart> = new Set(['future-far', 'over-max']);
/** restartKinds are the faults that replace a member's process (a new epoch). */
const restartKinds: ReadonlySet<string> = new Set(['kill', 'member', 'wipe', 'corrupt']);
/** downKinds are the faults during which a member's process serves nothing (replaced or frozen). */
const downKinds: ReadonlySet<string> = new Set([...restartKinds, 'pause']);

/** WatchOpen is one `watch-open` line. */
export interface WatchOpen {
  readonly sub: number;
  readonly stream: number;
  readonly node: string;
  readonly time: number;
  readonly afterRevision: number;
  readonly afterEpoch: string;
  readonly minAppliedIndex: number;
  /** edge is the start's kind (B4), null on lines of runs without edge starts. */
  readonly edge: WatchEdgeStart | null;
}

/** WatchEnd is one `watch-end` line. */
export interface WatchEnd {
  readonly time: number;
  readonly reason: string;
  /** code is the gRPC status code when the stream ended with an error. */
  readonly code: number | null;
  readonly cairnCode: string | null;
}

/** WatchStartStats count one kind of start and what became of it. */
export interface WatchStartStats {
  opens: number;
  /** accepted: streams that received at least one snapshot. */
  accepted: number;
  /** refused: streams that ended with INVALID_ARGUMENT. */
  refused: number;
  unavailable: number;
  /** firstOnTime / firstLate: first snapshots due at once and judged (S2). */
  firstOnTime: number;
  firstLate: number;
  /** firstNotJudged: due at once, but the stream ended early or its member was down or possibly catching up. */
  firstNotJudged: number;
  /** maySkip: `future-near` opens where the rule may have let the member skip the first snapshot (not judged). */
  maySkip: number;
}

/** WatchStartsResult is the verdict of S1-S4. */
export interface WatchStartsResult {
  readonly streamRevisionViolations: readonly string[];
  readonly lateFirstSnapshots: readonly string[];
  readonly startOutcomes: readonly string[];
  readonly counterLifted: readonly string[];
  readonly counts: { readonly streamRevisionViolations: number; readonly lateFirstSnapshots: number; readonly startOutcomes: number; readonly counterLifted: number };
  /** starts counts the opens per kind (empty for a history without edge starts). */
  readonly starts: Readonly<Partial<Record<WatchEdgeStart, WatchStartStats>>>;
  readonly anomalies: readonly OperationRef[];
}

/** FaultWindow is one nemesis fault from its start to its stop (Infinity if never stopped). */
interface FaultWindow {
  readonly kind: string;
  /** members are the members it acts on; null: the whole cluster (partitions, transfers, the final heal). */
  readonly members: readonly string[] | null;
  readonly start: number;
  readonly stop: number;
}

/** faultWindowsOf pairs the nemesis lines into fault windows (start invoke to stop info, by id). */
export function faultWindowsOf(events: readonly RecordedEvent[]): FaultWindow[] {
  const windows: FaultWindow[] = [];
  const started = new Map<number, { kind: string; members: readonly string[] | null; start: number }>();
  let healStart: number | null = null;
  for (const event of events) {
    if (!isNemesisEvent(event)) continue;
    const value = record(event.value);
    const id = typeof value['id'] === 'number' ? value['id'] : -1;
    if (event.f === 'heal-all') {
      if (event.type === 'invoke') healStart = event.time;
      else windows.push({ kind: 'heal-all', members: null, start: healStart ?? event.time, stop: event.time });
    } else if (event.f === 'transfer' && event.type === 'invoke') {
      started.set(id, { kind: 'transfer', members: null, start: event.time });
    } else if (event.f === 'transfer') {
      const start = started.get(id);
      started.delete(id);
      windows.push({ kind: 'transfer', members: null, start: start?.start ?? event.time, stop: event.time });
    } else if (event.f.startsWith('start-') && event.type === 'invoke') {
      const kind = event.f.slice('start-'.length);
      const members = Array.isArray(value['members']) ? (value['members'] as unknown[]).map(String) : typeof value['member'] === 'string' ? [value['member']] : null;
      started.set(id, { kind, members: kind === 'partition' ? null : members, start: event.time });
    } else if (event.f.startsWith('stop-') && event.type === 'info') {
      const start = started.get(id);
      started.delete(id);
      if (start !== undefined) windows.push({ ...start, stop: event.time });
    }
  }
  for (const start of started.values()) windows.push({ ...start, stop: Infinity });
  return windows;
}

/** StartsContext is what S1-S4 read besides one open. */
interface StartsContext {
  readonly opens: readonly WatchOpen[];
  readonly ends: ReadonlyMap<string, WatchEnd>;
  readonly streamSnapshots: ReadonlyMap<string, readonly WatchSnapshot[]>;
  /** byNode: each member's snapshots in arrival order. */
  readonly byNode: ReadonlyMap<string, readonly WatchSnapshot[]>;
  readonly faults: readonly FaultWindow[];
  /** clockFaults: members' clocks were moved, so an epoch's start says nothing about its counter. */
  readonly clockFaults: boolean;
  readonly endTime: number;
}

const msNs = 1e6;

function streamKey(sub: number, stream: number): string {
  return `${sub}/${stream}`;
}

/** faultedDuring: a fault of any kind (or of `member`'s own, with `ownOnly`) overlapped [from, to] once stretched by `graceMs` after its stop. */
function faultedDuring(context: StartsContext, from: number, to: number, graceMs: number, member: string | null = null): boolean {
  return context.faults.some((fault) => fault.start <= to && fault.stop + graceMs * msNs >= from && (member === null || (fault.members !== null && fault.members.includes(member))));
}

/** memberDown: `member` was killed, paused or replaced at some point of [from, to]. */
function memberDown(context: StartsContext, member: string, from: number, to: number): boolean {
  return context.faults.some((fault) => downKinds.has(fault.kind) && fault.members?.includes(member) === true && fault.start <= to && fault.stop >= from);
}

/** restartedBetween: `member`'s process was replaced after `from` and before `to` (a fault that restarts it started). */
function restartedBetween(context: StartsContext, member: string, from: number, to: number): boolean {
  return context.faults.some((fault) => restartKinds.has(fault.kind) && fault.members?.includes(member) === true && fault.start > from && fault.start <= to);
}

/** incarnationAt numbers `member`'s process at `time`: the restarting faults that started before. */
function incarnationAt(context: StartsContext, member: string, time: number): number {
  return context.faults.filter((fault) => restartKinds.has(fault.kind) && fault.members?.includes(member) === true && fault.start <= time).length;
}

/**
 * counterBoundOf bounds from above the counter of the process whose epoch is `epoch` when `open` was served (at the
 * latest firstSnapshotBoundMs after it was sent): the counter starts at the epoch's start in microseconds, moves
 * by one per change (counterIncrementsMax in all), and a served open raises it to its after_revision + 1. Every
 * open of this run is in the history, so the highest after_revision sent to the member before then (refused ones
 * excepted: S4 judges those) bounds the raises. Null when the epoch does not name its start.
 */
function counterBoundOf(context: StartsContext, open: WatchOpen, epoch: string): number | null {
  const startMs = Number(epoch.split('/')[1]);
  if (!Number.isSafeInteger(startMs) || startMs <= 0) return null;
  let raised = startMs * 1000 + epochClockSkewUs;
  const until = open.time + firstSnapshotBoundMs * msNs;
  for (const other of context.opens) {
    if (other === open || other.node !== open.node || other.time > until) continue;
    if (context.ends.get(streamKey(other.sub, other.stream))?.code === grpcInvalidArgument) continue;
    raised = Math.max(raised, other.afterRevision + 1);
  }
  return raised + counterIncrementsMax;
}

/** Due is whether the first snapshot was due at once: `due` with why, or not decidable from the history. */
type Due = { readonly due: true; readonly why: string } | { readonly due: false; readonly why: string };

/** firstSnapshotDue applies mayResume's negation as far as the history can decide it (S2). */
function firstSnapshotDue(context: StartsContext, open: WatchOpen): Due {
  if (open.edge === 'zero') return { due: true, why: 'after_revision 0' };
  if (open.edge === 'unknown-epoch') return { due: true, why: 'an epoch no member has' };
  if (open.edge !== 'future-near') return { due: false, why: 'not an edge start that is judged' };
  const slash = open.afterEpoch.indexOf('/');
  const epochMember = slash < 0 ? '' : open.afterEpoch.slice(0, slash);
  if (epochMember !== open.node) return { due: true, why: `after_epoch names ${epochMember === '' ? 'no member' : epochMember}, not ${open.node}` };
  const first = context.streamSnapshots.get(streamKey(open.sub, open.stream))?.[0];
  if (first !== undefined && first.epoch !== open.afterEpoch) return { due: true, why: 'the member restarted since that epoch' };
  // The epoch was received before the open; a restart of the member since means another process answers.
  const seen = (context.byNode.get(open.node) ?? []).filter((s) => s.epoch === open.afterEpoch && s.time < open.time).at(-1);
  if (seen === undefined) return { due: false, why: 'the epoch was never seen before the open' };
  if (restartedBetween(context, open.node, seen.time, open.time)) return { due: true, why: 'the member restarted since that epoch' };
  if (context.clockFaults) return { due: false, why: 'clock faults: no bound on the counter' };
  const bound = counterBoundOf(context, open, open.afterEpoch);
  if (bound !== null && open.afterRevision > bound) return { due: true, why: `after_revision ${open.afterRevision} is above ${bound}, a bound on the member's counter` };
  return { due: false, why: 'after_revision may be within the member\'s counter' };
}

/** caughtUp: before the open, `open.node`'s current process showed an applied index of at least min_applied_index. */
function caughtUp(context: StartsContext, open: WatchOpen): boolean {
  const until = open.time + firstSnapshotBoundMs * msNs;
  const list = context.byNode.get(open.node) ?? [];
  for (let i = list.length - 1; i >= 0; i--) {
    const s = list[i] as WatchSnapshot;
    if (s.time >= open.time) continue;
    if (restartedBetween(context, open.node, s.time, until)) return false;
    if (s.appliedIndex !== null && s.appliedIndex >= open.minAppliedIndex) return true;
  }
  return false;
}

/** FirstVerdict is S2's verdict on one stream whose first snapshot was due at once. */
type FirstVerdict = 'on-time' | 'late' | 'not-judged';

/** judgeFirstSnapshot: on time, late, or not judged (ended early, member down, member possibly catching up). */
function judgeFirstSnapshot(context: StartsContext, open: WatchOpen): FirstVerdict {
  const boundNs = firstSnapshotBoundMs * msNs;
  const first = context.streamSnapshots.get(streamKey(open.sub, open.stream))?.[0];
  if (first !== undefined && first.time - open.time <= boundNs) return 'on-time';
  const endTime = context.ends.get(streamKey(open.sub, open.stream))?.time ?? context.endTime;
  if (endTime - open.time < boundNs) return 'not-judged';
  if (memberDown(context, open.node, open.time, open.time + boundNs)) return 'not-judged';
  if (caughtUp(context, open) || !faultedDuring(context, open.time - faultCatchUpGraceMs * msNs, open.time + boundNs, faultCatchUpGraceMs)) return 'late';
  return 'not-judged';
}

/** excusedUnavailable: an UNAVAILABLE end during a fault (S3): a Cairn-coded one (member behind) any fault, an unreachable member its own. */
function excusedUnavailable(context: StartsContext, open: WatchOpen, end: WatchEnd): boolean {
  if (end.cairnCode !== null) return faultedDuring(context, open.time - faultCatchUpGraceMs * msNs, end.time, faultCatchUpGraceMs);
  return faultedDuring(context, open.time - reconnectGraceMs * msNs, end.time, reconnectGraceMs, open.node) || faultedDuring(context, open.time, end.time, faultCatchUpGraceMs);
}

/** judgeOutcome applies S3 to one edge-marked open; returns the violation, or null. */
function judgeOutcome(context: StartsContext, open: WatchOpen, stats: WatchStartStats): string | null {
  const snaps = context.streamSnapshots.get(streamKey(open.sub, open.stream)) ?? [];
  const end = context.ends.get(streamKey(open.sub, open.stream));
  const code = end?.code ?? null;
  if (snaps.length > 0) stats.accepted++;
  if (code === grpcInvalidArgument) stats.refused++;
  if (code === grpcUnavailable) stats.unavailable++;
  const edge = open.edge as WatchEdgeStart;
  const answered = end === undefined ? 'no end' : code === null ? end.reason : `code ${code} ${end.cairnCode ?? '(no Cairn code)'}`;
  if (refusedStarts.has(edge)) {
    if (snaps.length > 0) return `accepted: ${snaps.length} snapshot(s), the first at revision ${(snaps[0] as WatchSnapshot).revision}`;
    if (code === grpcInvalidArgument) return end?.cairnCode === 'CAIRN_INVALID_ARGUMENT' ? null : `refused with INVALID_ARGUMENT but Cairn code ${end?.cairnCode ?? 'none'}`;
    if (code === grpcUnavailable && end !== undefined) return excusedUnavailable(context, open, end) ? null : `UNAVAILABLE (${end.cairnCode ?? 'unreachable'}) without a fault`;
    if (code === null || code === grpcCancelled) {
      // No answer before the client moved on: a member waiting to catch up answers only then.
      const endTime = end?.time ?? context.endTime;
      if (endTime - open.time < firstSnapshotBoundMs * msNs || faultedDuring(context, open.time - faultCatchUpGraceMs * msNs, endTime, faultCatchUpGraceMs)) return null;
      return `not refused within ${((endTime - open.time) / 1e9).toFixed(1)} s (${answered})`;
    }
    return memberDownUntilEnd(context, open, end) ? null : `ended with ${answered}, not INVALID_ARGUMENT`;
  }
  if (code === grpcInvalidArgument) return `refused (${answered})`;
  if (code === grpcUnavailable && end !== undefined) return excusedUnavailable(context, open, end) ? null : `UNAVAILABLE (${end.cairnCode ?? 'unreachable'}) without a fault`;
  if (code === null || code === grpcCancelled || code === grpcResourceExhausted) return null;
  return memberDownUntilEnd(context, open, end) ? null : `ended with ${answered}`;
}

/** memberDownUntilEnd: the stream's member was killed, paused or replaced while it was open (any error may follow, e.g. a reset stream). */
function memberDownUntilEnd(context: StartsContext, open: WatchOpen, end: WatchEnd | undefined): boolean {
  return memberDown(context, open.node, open.time, end?.time ?? context.endTime);
}

/** liftedAfterRefusal applies S4 to one refused open: the first snapshot of the same process above X - a day, or null. */
function liftedAfterRefusal(context: StartsContext, open: WatchOpen): WatchSnapshot | null {
  const threshold = open.afterRevision - dayUs;
  const incarnation = incarnationAt(context, open.node, open.time);
  for (const s of context.byNode.get(open.node) ?? []) {
    if (s.time > open.time && s.revision > threshold && incarnationAt(context, open.node, s.time) === incarnation) return s;
  }
  return null;
}

function newStats(): WatchStartStats {
  return { opens: 0, accepted: 0, refused: 0, unavailable: 0, firstOnTime: 0, firstLate: 0, firstNotJudged: 0, maySkip: 0 };
}

/** checkStarts judges S1-S4 (see the section comment). */
export function checkStarts(events: readonly RecordedEvent[], opens: readonly WatchOpen[], ends: ReadonlyMap<string, WatchEnd>, snapshots: readonly WatchSnapshot[]): WatchStartsResult {
  const streamSnapshots = new Map<string, WatchSnapshot[]>();
  const byNode = new Map<string, WatchSnapshot[]>();
  for (const s of snapshots) {
    const key = streamKey(s.sub, s.stream);
    let ofStream = streamSnapshots.get(key);
    if (ofStream === undefined) streamSnapshots.set(key, (ofStream = []));
    ofStream.push(s);
    let list = byNode.get(s.node);
    if (list === undefined) byNode.set(s.node, (list = []));
    list.push(s);
  }
  const faults = faultWindowsOf(events);
  const context: StartsContext = { opens, ends, streamSnapshots, byNode, faults, clockFaults: faults.some((f) => f.kind === 'clock'), endTime: events.at(-1)?.time ?? 0 };
  const lists = { streamRevisionViolations: [] as string[], lateFirstSnapshots: [] as string[], startOutcomes: [] as string[], counterLifted: [] as string[] };
  const counts = { streamRevisionViolations: 0, lateFirstSnapshots: 0, startOutcomes: 0, counterLifted: 0 };
  const starts: Partial<Record<WatchEdgeStart, WatchStartStats>> = {};
  const anomalies: OperationRef[] = [];
  const violation = (kind: keyof typeof counts, open: WatchOpen, text: string): void => {
    counts[kind]++;
    push(lists[kind], `subscriber ${open.sub} stream ${open.stream} on ${open.node} (${open.edge ?? 'resume'}, after_revision ${open.afterRevision}, after_epoch '${open.afterEpoch}'): ${text}`);
    anomalies.push({ process: streamLaneBase + open.sub, time: open.time });
  };
  for (const open of opens) {
    const snaps = streamSnapshots.get(streamKey(open.sub, open.stream)) ?? [];
    // S1.
    for (const [i, s] of snaps.entries()) {
      const before = i === 0 ? open.afterRevision : (snaps[i - 1] as WatchSnapshot).revision;
      if (s.revision > before) continue;
      violation('streamRevisionViolations', open, `revision ${s.revision} ${i === 0 ? 'not above after_revision' : `after ${before} on the same stream`}`);
      break;
    }
    if (open.edge === null) continue;
    const stats = (starts[open.edge] ??= newStats());
    stats.opens++;
    // S3.
    const outcome = judgeOutcome(context, open, stats);
    if (outcome !== null) violation('startOutcomes', open, outcome);
    // S2.
    const due = firstSnapshotDue(context, open);
    if (open.edge === 'future-near' && !due.due) stats.maySkip++;
    if (due.due) {
      const verdict = judgeFirstSnapshot(context, open);
      if (verdict === 'on-time') stats.firstOnTime++;
      else if (verdict === 'not-judged') stats.firstNotJudged++;
      else {
        stats.firstLate++;
        const first = snaps[0];
        violation('lateFirstSnapshots', open, `first snapshot due at once (${due.why}) ${first === undefined ? 'never came' : `came after ${((first.time - open.time) / 1e9).toFixed(2)} s`}; the member was up and had applied min_applied_index ${open.minAppliedIndex}`);
      }
    }
    // S4.
    const end = ends.get(streamKey(open.sub, open.stream));
    if (refusedStarts.has(open.edge) && end?.code === grpcInvalidArgument && snaps.length === 0) {
      const lifted = liftedAfterRefusal(context, open);
      if (lifted !== null) violation('counterLifted', open, `after the refusal, subscriber ${lifted.sub} got revision ${lifted.revision} from the same process (epoch ${lifted.epoch}), above ${open.afterRevision - dayUs} (after_revision - a day): the counter was lifted toward the refused value`);
    }
  }
  return { ...lists, counts, starts, anomalies };
}

/** watchStartsLines renders S1-S4 and the counts per kind of start for a run's summary (empty without edge starts). */
export function watchStartsLines(result: WatchResult | null): string[] {
  if (result === null || Object.keys(result.starts).length === 0) return [];
  const lines = [`watch starts: revisions not above after_revision ${result.counts.streamRevisionViolations}, late first snapshots ${result.counts.lateFirstSnapshots}, wrong outcomes ${result.counts.startOutcomes}, counters lifted by a refusal ${result.counts.counterLifted}`];
  for (const kind of ['plain', ...watchEdgeStarts] as const) {
    const s = result.starts[kind];
    if (s === undefined) continue;
    lines.push(`  ${kind}: ${s.opens} opens, ${s.accepted} with snapshots, ${s.refused} refused, ${s.unavailable} unavailable; first snapshot due at once: ${s.firstOnTime} on time, ${s.firstLate} late, ${s.firstNotJudged} not judged${kind === 'future-near' ? `; may skip (not judged) ${s.maySkip}` : ''}`);
  }
  for (const item of [...result.streamRevisionViolations.slice(0, 5), ...result.lateFirstSnapshots.slice(0, 5), ...result.startOutcomes.slice(0, 5), ...result.counterLifted.slice(0, 5)]) lines.push(`  ${item}`);
  return lines;
}
