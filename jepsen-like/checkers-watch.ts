// checkers-watch: the watch workload's checker (PEERS.md §2.3 B1, B2; workloads/watch.ts makes the history).
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

import type { HistoryEvent } from '../test/checker/history.ts';
import type { OperationRef } from './checkers.ts';
import { isClientEvent, isObserverEvent, streamLaneBase, type RecordedEvent } from './history.ts';

const listLimit = 50;

/** WatchSnapshot is one observed snapshot. */
export interface WatchSnapshot {
  readonly sub: number;
  readonly service: string;
  readonly node: string;
  readonly stream: number;
  readonly revision: number;
  readonly epoch: string;
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
  readonly counts: { readonly revisionViolations: number; readonly stateViolations: number; readonly timeTravel: number; readonly resurrections: number; readonly notConverged: number };
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
        snapshots.push({ sub: Number(value['sub']), service: String(value['service']), node: String(value['node']), stream: Number(value['stream']), revision: Number(value['revision']), epoch: String(value['epoch']), serviceRevision: value['serviceRevision'] === null ? null : Number(value['serviceRevision']), elements: (value['elements'] as number[] | undefined) ?? [], time: event.time });
      } else if (event.f === 'watch-open') {
        opened.set(`${String(value['sub'])}/${String(value['stream'])}`, event.time);
        streams++;
        if (Number(value['afterRevision']) > 0) resumes++;
      } else if (event.f === 'watch-end') {
        const reason = String(value['reason']).split(' ')[0] ?? '?';
        streamEnds[reason] = (streamEnds[reason] ?? 0) + 1;
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
      if (b.revision <= a.revision) {
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
  const valid = problems.length === 0 && Object.values(counts).every((n) => n === 0);
  return { valid, subscribers: bySub.size, streams, resumes, snapshots: snapshots.length, writes, revisionViolations, stateViolations, timeTravel, resurrections, notConverged, counts, streamEnds, staleSnapshots, problems, anomalies };
}
