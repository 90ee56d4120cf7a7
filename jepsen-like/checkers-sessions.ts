// checkers-sessions: the sessions workload's checker (PEERS.md §2.3 D5; workloads/sessions.ts makes the history).
//
// The documented behaviour it holds Cairn to (docs/grpc.md "Session", docs/ap.md "Beats, expiry and sessions"):
// - An instance registered through a Session lives as long as the session does: the session's member renews it at
//   its responsible member every beatIntervalMs. It is listed by every member once the registration has replicated.
// - Closing the session (half-close, cancel, a stream error) deregisters its instances everywhere at once; a session
//   silent past distroSessionTimeoutMs is ended by its member, which then does the same. A closing or expired session
//   removes only the instances it still owns: one the client registered again through another session since (its
//   redo, or a second session) stays (docs/ap.md; the fix of 2026-11-22, src/ap/distro.ts closeSession). And a live
//   session keeps its instances whoever removed them: closing the owner of an instance another live session also
//   holds removes it, and that session's next renewal registers it again (src/ap/distro.ts repairSession, 2026-11-22).
// - When the session's member dies, nothing deregisters: the responsible members stop hearing renewals and would
//   expire the instances by the normal timeouts (unhealthy 15 s, removed 30 s). A client that redoes (opens a session
//   on another member and registers again) well within those keeps them listed throughout.
//
// Judged, per element (one instance of one client) and per member (its local lists, read every pollMs):
// 1. missing: while its client is alive, an element is listed by every member at every read that starts at least B2
//    after its first acknowledged registration (and after the member's last restart, and after any partition that
//    began before that moment ended), and a member that listed it (in this incarnation) never stops listing it, even
//    before that. A redo gap longer than gapMaxMs (unhealthyAfterMs) suspends both until B2 after the next
//    acknowledged registration. A read showing it absent is a violation ("never removed for good while the client
//    keeps redoing"). The client closing the stream that registered it last excuses its absence until its next
//    acknowledged registration, unless another of its streams still holds it: then it must be back everywhere
//    restoreMs + B2 after the close.
// 2. dead clients: from its client's death (a cancel: the cancel; a silent death: its last request) plus B1 (B1cancel
//    or B1silent), extended past any partition that began before the bound (closeSettleMs after its end), every
//    member's reads must not list it.
//    A read listing it then is a `ghost` when some member still lists it at its final read, else a `late-removal`.
//    A stream the client abandoned silently (its redo's `session-silent`) lives on at its member until that member
//    times it out, and a live session keeps its instances (it registers them again when their owner's close removed
//    them): for each such stream that registered the element, the bound is at least its last request + B1silent.
// 3. resurrection: after its client's death, a member that listed it, then read it absent, lists it again later in
//    the same incarnation (listed, gone, listed again; a member cut off from the registration that lists it late is
//    not one; nor is a relisting before the bound of a silently abandoned stream that holds it, which restores it).
//
// Bounds (ms), from src/limits.ts (the reasons are in sessionBounds).

import { limits } from '../src/limits.ts';
import type { HistoryEvent } from '../test/checker/history.ts';
import type { OperationRef } from './checkers.ts';
import { isClientEvent, isNemesisEvent, isObserverEvent, type RecordedEvent } from './history.ts';

const ms = 1e6;
const listLimit = 40;

/** SessionBounds are the checker's bounds in milliseconds; sessionBounds documents how each is derived. */
export interface SessionBounds {
  readonly propagationMs: number;
  readonly upDetectMs: number;
  readonly closeMs: number;
  readonly closeSettleMs: number;
  readonly b1CancelMs: number;
  readonly b1SilentMs: number;
  readonly b2Ms: number;
  readonly gapMaxMs: number;
  readonly restoreMs: number;
}

/**
 * sessionBounds derives the bounds from Cairn's limits:
 * - propagationMs: a change at the responsible member reaches every member: sync every distroSyncDelayMs (20 ms),
 *   a lost sync is repaired by a verify round (distroVerifyIntervalMs, 5 s); two rounds + 1 s = 11.02 s.
 * - upDetectMs: after a restart or a heal, peers see the member up at their next heartbeat (distroHeartbeatIntervalMs,
 *   1 s) and push it everything they hold; a peer channel not re-established is replaced after ~1.5 s: 2.5 s.
 * - closeMs: the close's deregistration is forwarded to the responsible member, and retried once at the recomputed
 *   member if that fails: 2 x distroPeerTimeoutMs = 4 s.
 * - closeSettleMs: after a partition that cut the close's route off, the route is tried again every
 *   distroHeartbeatIntervalMs (src/ap/distro.ts deregisterClosed): the next attempt (1 s) + closeMs + upDetectMs +
 *   propagationMs = 18.52 s from the partition's end.
 * - b1CancelMs = closeMs + propagationMs = 15.02 s: a cancelled session's instances are gone everywhere.
 * - b1SilentMs = distroSessionTimeoutMs (20 s) + beatIntervalMs (5 s: the session round that finds the silence) +
 *   b1CancelMs = 40.02 s.
 * - b2Ms = upDetectMs + propagationMs = 13.52 s: an acknowledged registration is listed everywhere (also by a member
 *   restarted since, counted from its restart).
 * - gapMaxMs = unhealthyAfterMs (15 s): a redo that took longer is not expected to have kept the instance listed
 *   throughout (the documented expiry starts at 15 s without renewal).
 * - restoreMs = beatIntervalMs (5 s): after its owner's close removed it, another session holding the instance
 *   registers it again at its next renewal round; it is then listed everywhere B2 later.
 * A partition that begins before a deadline moves it to the partition's end + upDetectMs + propagationMs (B2), or
 * + closeSettleMs (B1).
 */
export function sessionBounds(): SessionBounds {
  const propagationMs = limits.distroSyncDelayMs + 2 * limits.distroVerifyIntervalMs + 1000;
  const upDetectMs = limits.distroHeartbeatIntervalMs + 1500;
  const closeMs = 2 * limits.distroPeerTimeoutMs;
  const b1CancelMs = closeMs + propagationMs;
  return {
    propagationMs, upDetectMs, closeMs, closeSettleMs: limits.distroHeartbeatIntervalMs + closeMs + upDetectMs + propagationMs, b1CancelMs,
    b1SilentMs: limits.distroSessionTimeoutMs + limits.beatIntervalMs + b1CancelMs,
    b2Ms: upDetectMs + propagationMs,
    gapMaxMs: limits.unhealthyAfterMs,
    restoreMs: limits.beatIntervalMs,
  };
}

/** LatencyStats summarise latencies (ms). */
export interface SessionLatencyStats {
  readonly count: number;
  readonly p50: number;
  readonly max: number;
}

/** SessionsResult is the checker's verdict and what it counted. */
export interface SessionsResult {
  readonly valid: boolean;
  readonly bounds: SessionBounds;
  readonly counts: Record<string, number>;
  readonly violationCounts: { readonly missing: number; readonly ghost: number; readonly lateRemoval: number; readonly resurrection: number };
  readonly violations: readonly string[];
  /** removalMs: from a dead client's death to the first read after which no member lists its element, per death kind. */
  readonly removalMs: { readonly cancel: SessionLatencyStats | null; readonly silent: SessionLatencyStats | null };
  /** redoMs: from a stream's break to the redo's last acknowledged registration. */
  readonly redoMs: SessionLatencyStats | null;
  /**
   * excused: dead clients' elements still listed after their B1 (or an abandoned stream's B1 silent) had passed with
   * no fault counted, and not judged late only because partitions extend the bound (`extend`): not a violation, but
   * under faults that follow each other closely the extension can reach the final heal, so it is reported (with up
   * to 10 elements and the longest time listed past the plain bound).
   */
  readonly excused: { readonly count: number; readonly longestMs: number; readonly elements: readonly number[] };
  readonly problems: readonly string[];
  readonly anomalies: readonly OperationRef[];
}

interface Read {
  readonly process: number;
  readonly member: string;
  readonly service: string;
  readonly invoke: number;
  readonly complete: number;
  readonly present: ReadonlySet<number>;
  readonly final: boolean;
  readonly incarnation: number;
}

interface Registration {
  readonly element: number;
  readonly client: number;
  readonly stream: number;
  readonly invoke: number;
  readonly complete: number;
  readonly type: string;
}

interface Death {
  readonly client: number;
  readonly how: 'cancel' | 'silent';
  readonly elements: readonly number[];
  readonly diedAt: number;
}

interface Parsed {
  readonly reads: Read[];
  readonly registrations: Registration[];
  readonly deaths: Map<number, Death>;
  readonly clientOf: Map<number, number>;
  readonly serviceOf: Map<number, string>;
  /** holds: per element, [from, to, stream] intervals (ns) a stream held an acknowledged registration of it. */
  readonly holds: Map<number, Array<[number, number, number]>>;
  /**
   * resets: per element, the client's own closes of the stream that registered it last ([close, the next acknowledged
   * registration after it or null, the closed stream]): closing its owner removes it (documented) until the client
   * registers it again, or until another stream of the client that still holds it restores it (requiredFrom).
   */
  readonly resets: Map<number, Array<[number, number | null, number]>>;
  /** restarts: per member, [the restart's invoke, its info] (ns): a new incarnation answers from the invoke on. */
  readonly restarts: Map<string, Array<[number, number]>>;
  readonly partitions: Array<[number, number]>;
  /** abandoned: per client, its streams abandoned silently (still open at their members) and their last request (ns). */
  readonly abandoned: Map<number, Array<{ readonly stream: number; readonly lastSentAt: number }>>;
  readonly finalAt: number | null;
  readonly counts: Record<string, number>;
  readonly redoMs: number[];
}

function pairs(events: readonly RecordedEvent[], fs: ReadonlySet<string>): Array<{ invoke: HistoryEvent; done: HistoryEvent }> {
  const open = new Map<number, HistoryEvent>();
  const out: Array<{ invoke: HistoryEvent; done: HistoryEvent }> = [];
  for (const event of events) {
    if (!isClientEvent(event) || !fs.has(event.f)) continue;
    if (event.type === 'invoke') open.set(event.process, event);
    else {
      const invoke = open.get(event.process);
      open.delete(event.process);
      if (invoke !== undefined) out.push({ invoke, done: event });
    }
  }
  return out;
}

function nemesisWindows(events: readonly RecordedEvent[]): { restarts: Map<string, Array<[number, number]>>; partitions: Array<[number, number]>; kills: Map<string, Array<[number, number]>> } {
  const killMembers = new Map<unknown, { members: string[]; at: number; restartAt: number | null }>();
  const partitionStarts = new Map<unknown, number>();
  const restarts = new Map<string, Array<[number, number]>>();
  const kills = new Map<string, Array<[number, number]>>();
  const partitions: Array<[number, number]> = [];
  let end = 0;
  for (const event of events) {
    end = Math.max(end, event.time);
    if (!isNemesisEvent(event)) continue;
    const value = (event.value ?? {}) as Record<string, unknown>;
    if (event.f === 'start-kill' && event.type === 'invoke') killMembers.set(value['id'], { members: (value['members'] as string[] | undefined) ?? [], at: event.time, restartAt: null });
    if (event.f === 'stop-kill' && event.type === 'invoke') {
      const kill = killMembers.get(value['id']);
      if (kill !== undefined) kill.restartAt = event.time;
    }
    if (event.f === 'stop-kill' && event.type === 'info') {
      const kill = killMembers.get(value['id']);
      for (const member of kill?.members ?? []) {
        // A restarted member may answer a read before this line is written: its incarnation starts at the invoke.
        restarts.set(member, [...(restarts.get(member) ?? []), [kill?.restartAt ?? event.time, event.time]]);
        kills.set(member, [...(kills.get(member) ?? []), [kill?.at ?? event.time, event.time]]);
      }
      killMembers.delete(value['id']);
    }
    if (event.f === 'start-partition' && event.type === 'invoke') partitionStarts.set(value['id'], event.time);
    if ((event.f === 'stop-partition' || event.f === 'heal-all') && event.type === 'info') {
      const ids = event.f === 'heal-all' ? [...partitionStarts.keys()] : [value['id']];
      for (const id of ids) {
        const start = partitionStarts.get(id);
        if (start !== undefined) partitions.push([start, event.time]);
        partitionStarts.delete(id);
      }
    }
  }
  for (const start of partitionStarts.values()) partitions.push([start, end]);
  partitions.sort((a, b) => a[0] - b[0]);
  return { restarts, partitions, kills };
}

/** incarnationOf: how many restarts of `member` began by `at`, and when the latest was done (its info line). */
function incarnationOf(restarts: ReadonlyMap<string, ReadonlyArray<readonly [number, number]>>, member: string, at: number): { number: number; since: number } {
  let number = 0;
  let since = 0;
  for (const [began, done] of restarts.get(member) ?? []) {
    if (began <= at) {
      number++;
      since = done;
    }
  }
  return { number, since };
}

function parse(events: readonly RecordedEvent[]): Parsed {
  const { restarts, partitions } = nemesisWindows(events);
  const finalEvent = events.find((event) => isObserverEvent(event) && event.f === 'sessions-final');
  const finalAt = finalEvent?.time ?? null;
  const counts: Record<string, number> = { registrationsOk: 0, registrationsFail: 0, registrationsUnknown: 0, reads: 0, sessionsOpened: 0, redos: 0, abandons: 0, dupCloses: 0, cancels: 0, silentDeaths: 0, serverEnded: 0 };
  const reads: Read[] = [];
  for (const { invoke, done } of pairs(events, new Set(['sess-read']))) {
    if (done.type !== 'ok') continue;
    const value = done.value as { node: string; service: string; present: number[] };
    counts['reads'] = (counts['reads'] ?? 0) + 1;
    reads.push({
      process: invoke.process as number, member: value.node, service: value.service, invoke: invoke.time, complete: done.time,
      present: new Set(value.present), final: finalAt !== null && invoke.time >= finalAt, incarnation: incarnationOf(restarts, value.node, invoke.time).number,
    });
  }
  const registrations: Registration[] = [];
  const clientOf = new Map<number, number>();
  const serviceOf = new Map<number, string>();
  for (const { invoke, done } of pairs(events, new Set(['sess-register']))) {
    const value = invoke.value as { element: number; client: number; stream: number; service: string };
    clientOf.set(value.element, value.client);
    serviceOf.set(value.element, value.service);
    registrations.push({ element: value.element, client: value.client, stream: value.stream, invoke: invoke.time, complete: done.time, type: done.type });
    const key = done.type === 'ok' ? 'registrationsOk' : done.type === 'fail' ? 'registrationsFail' : 'registrationsUnknown';
    counts[key] = (counts[key] ?? 0) + 1;
  }
  const { deaths, holds, redoMs } = streams(events, registrations, counts);
  const resets = ownerCloses(events, registrations);
  const abandoned = new Map<number, Array<{ stream: number; lastSentAt: number }>>();
  for (const event of events) {
    if (!isObserverEvent(event) || event.f !== 'session-silent') continue;
    const value = (event.value ?? {}) as Record<string, unknown>;
    const client = value['client'] as number;
    const lastSentAt = typeof value['lastSentAt'] === 'number' ? value['lastSentAt'] : event.time;
    abandoned.set(client, [...(abandoned.get(client) ?? []), { stream: value['stream'] as number, lastSentAt }]);
  }
  return { reads, registrations, deaths, clientOf, serviceOf, holds, resets, restarts, partitions, abandoned, finalAt, counts, redoMs };
}

/** streams follows each stream's life: when it ended (for the holds), deaths, and redo latencies. */
function streams(events: readonly RecordedEvent[], registrations: readonly Registration[], counts: Record<string, number>): { deaths: Map<number, Death>; holds: Map<number, Array<[number, number, number]>>; redoMs: number[] } {
  const endOf = new Map<number, number>();
  const deaths = new Map<number, Death>();
  const breaks = new Map<number, number>();
  const redoStreams = new Map<number, number>();
  const bump = (key: string): void => {
    counts[key] = (counts[key] ?? 0) + 1;
  };
  for (const event of events) {
    if (!isObserverEvent(event)) continue;
    const value = (event.value ?? {}) as Record<string, unknown>;
    const stream = value['stream'] as number;
    const client = value['client'] as number;
    if (event.f === 'session-open') {
      bump('sessionsOpened');
      if (value['purpose'] === 'redo') {
        bump('redos');
        const broke = breaks.get(client);
        if (broke !== undefined) redoStreams.set(stream, broke);
      }
    }
    if (event.f === 'session-end' || event.f === 'session-silent' || event.f === 'session-close') {
      if (!endOf.has(stream)) endOf.set(stream, event.time);
      if (event.f === 'session-end' && value['silent'] !== true && value['cancelled'] !== true) {
        bump('serverEnded');
        breaks.set(client, event.time);
      }
      if (event.f === 'session-silent') bump('abandons');
      if (event.f === 'session-close' && value['purpose'] === 'dup-close') bump('dupCloses');
    }
    if (event.f === 'client-dead') {
      const how = value['how'] === 'silent' ? 'silent' : 'cancel';
      bump(how === 'silent' ? 'silentDeaths' : 'cancels');
      deaths.set(client, { client, how, elements: (value['elements'] as number[] | undefined) ?? [], diedAt: (value['diedAt'] as number | undefined) ?? event.time });
      if (!endOf.has(stream)) endOf.set(stream, event.time);
    }
  }
  const holds = new Map<number, Array<[number, number, number]>>();
  const redoDone = new Map<number, number>();
  for (const registration of registrations) {
    if (registration.type !== 'ok') continue;
    const list = holds.get(registration.element) ?? [];
    list.push([registration.complete, endOf.get(registration.stream) ?? Number.MAX_SAFE_INTEGER, registration.stream]);
    holds.set(registration.element, list);
    if (redoStreams.has(registration.stream)) redoDone.set(registration.stream, Math.max(redoDone.get(registration.stream) ?? 0, registration.complete));
  }
  const redoMs = [...redoDone].map(([stream, done]) => (done - (redoStreams.get(stream) ?? done)) / ms);
  return { deaths, holds, redoMs };
}

/** ownerCloses finds, per element, the client's closes of the stream that registered it last (see Parsed.resets). */
function ownerCloses(events: readonly RecordedEvent[], registrations: readonly Registration[]): Map<number, Array<[number, number | null, number]>> {
  const closes: Array<{ stream: number; at: number }> = [];
  for (const event of events) {
    if (!isObserverEvent(event) || event.f !== 'session-close') continue;
    const value = (event.value ?? {}) as Record<string, unknown>;
    if (value['purpose'] !== 'teardown') closes.push({ stream: value['stream'] as number, at: event.time });
  }
  const byElement = new Map<number, Registration[]>();
  for (const registration of registrations) byElement.set(registration.element, [...(byElement.get(registration.element) ?? []), registration]);
  const resets = new Map<number, Array<[number, number | null, number]>>();
  for (const [element, list] of byElement) {
    const sorted = [...list].sort((a, b) => a.invoke - b.invoke);
    for (const close of closes) {
      const owner = sorted.filter((r) => r.invoke < close.at).pop();
      if (owner === undefined || owner.stream !== close.stream) continue;
      const next = sorted.find((r) => r.type === 'ok' && r.invoke > close.at);
      resets.set(element, [...(resets.get(element) ?? []), [close.at, next?.complete ?? null, close.stream]]);
    }
  }
  return resets;
}

/** extend moves a deadline past every partition that began before it (and its settling). */
function extend(deadline: number, partitions: readonly (readonly [number, number])[], settleMs: number): number {
  let out = deadline;
  for (const [start, end] of partitions) if (start < out) out = Math.max(out, end + settleMs * ms);
  return out;
}

/** requiredFrom: when (ns) element must be listed by `member`, for a read at `at`; null when not required then. */
function requiredFrom(p: Parsed, bounds: SessionBounds, element: number, member: string, at: number): number | null {
  const holds = [...(p.holds.get(element) ?? [])].sort((a, b) => a[0] - b[0]);
  let chainStart: number | null = null;
  let coveredUntil = -Infinity;
  for (const [from, to] of holds) {
    if (from > at) break;
    if (chainStart === null || from - coveredUntil > bounds.gapMaxMs * ms) chainStart = from;
    coveredUntil = Math.max(coveredUntil, to);
  }
  if (chainStart === null || at - coveredUntil > bounds.gapMaxMs * ms) return null;
  for (const [closeAt, next, closed] of p.resets.get(element) ?? []) {
    if (closeAt > at) continue;
    // Another stream that held it before the close and still holds it now restores it at its next renewal round.
    const restorer = holds.some(([from, to, stream]) => stream !== closed && from <= closeAt && to >= at);
    if (restorer) {
      chainStart = Math.max(chainStart, closeAt + bounds.restoreMs * ms);
      continue;
    }
    if (next === null || next > at) return null;
    chainStart = Math.max(chainStart, next);
  }
  const since = incarnationOf(p.restarts, member, at).since;
  const base = Math.max(chainStart, since) + bounds.b2Ms * ms;
  return extend(base, p.partitions, bounds.upDetectMs + bounds.propagationMs);
}

/** checkSessions judges a sessions history; see the top of this file. */
export function checkSessions(events: readonly RecordedEvent[]): SessionsResult {
  const bounds = sessionBounds();
  const p = parse(events);
  const violations: string[] = [];
  const anomalies: OperationRef[] = [];
  const violationCounts = { missing: 0, ghost: 0, lateRemoval: 0, resurrection: 0 };
  const problems: string[] = [];
  const note = (kind: keyof typeof violationCounts, read: Read, text: string): void => {
    violationCounts[kind]++;
    if (violations.length < listLimit) violations.push(text);
    if (anomalies.length < 500) anomalies.push({ process: read.process, time: read.invoke });
  };
  const deathOf = (element: number): Death | undefined => {
    const client = p.clientOf.get(element);
    return client === undefined ? undefined : p.deaths.get(client);
  };
  const lastRead = finalListing(p.reads);
  const elements = [...p.clientOf.keys()].sort((a, b) => a - b);
  const removal: { cancel: number[]; silent: number[] } = { cancel: [], silent: [] };
  const excused = { count: 0, longestMs: 0, elements: [] as number[] };
  for (const element of elements) {
    const death = deathOf(element);
    const service = p.serviceOf.get(element);
    const reads = p.reads.filter((read) => read.service === service);
    // Alive, or before its death: listed everywhere once B2 has passed.
    judgeAlive(p, bounds, element, death === undefined ? reads : reads.filter((read) => read.complete <= death.diedAt), note);
    if (death === undefined) continue;
    judgeDead(p, bounds, element, death, reads, lastRead, note);
    const gone = goneAt(reads, element, death.diedAt);
    if (gone !== null) removal[death.how].push((gone - death.diedAt) / ms);
    const lastListed = Math.max(-Infinity, ...reads.filter((read) => read.invoke >= death.diedAt && read.present.has(element)).map((read) => read.invoke));
    const pastMs = (lastListed - plainDeadline(p, bounds, element, death)) / ms;
    if (pastMs > 0) {
      excused.count++;
      excused.longestMs = Math.max(excused.longestMs, Math.round(pastMs));
      if (excused.elements.length < 10) excused.elements.push(element);
    }
  }
  if (p.finalAt === null) problems.push('no sessions-final line: the final phase did not run');
  if ((p.counts['registrationsOk'] ?? 0) === 0) problems.push('no registration was acknowledged: nothing was tested');
  const finalMembers = new Set(p.reads.filter((read) => read.final).map((read) => read.member));
  const members = new Set(p.reads.map((read) => read.member));
  for (const member of members) if (!finalMembers.has(member)) problems.push(`no final read of ${member} answered`);
  const valid = violations.length === 0 && Object.values(violationCounts).every((n) => n === 0) && problems.length === 0;
  return {
    valid, bounds, counts: { ...p.counts, elements: elements.length, deadClients: p.deaths.size }, violationCounts, violations,
    removalMs: { cancel: stats(removal.cancel), silent: stats(removal.silent) }, redoMs: stats(p.redoMs), excused, problems, anomalies,
  };
}

type Note = (kind: 'missing' | 'ghost' | 'lateRemoval' | 'resurrection', read: Read, text: string) => void;

function judgeAlive(p: Parsed, bounds: SessionBounds, element: number, reads: readonly Read[], note: Note): void {
  // listedAt: per member incarnation, the last read listing it. Once listed, nothing may take it away while its
  // client lives (no partition excuses that: nothing expires before unhealthyAfterMs without renewals).
  const listedAt = new Map<string, number>();
  for (const read of reads) {
    const key = `${read.member}#${read.incarnation}`;
    if (read.present.has(element)) {
      listedAt.set(key, read.invoke);
      continue;
    }
    const from = requiredFrom(p, bounds, element, read.member, read.invoke);
    if (from === null) continue;
    const lastReset = Math.max(0, ...(p.resets.get(element) ?? []).map(([closeAt]) => closeAt).filter((closeAt) => closeAt <= read.invoke));
    const listed = (listedAt.get(key) ?? -1) > lastReset ? listedAt.get(key) : undefined;
    if (read.invoke >= from) {
      note('missing', read, `element ${element} (client ${p.clientOf.get(element)}, alive) absent at ${read.member} in a read at ${(read.invoke / 1e9).toFixed(3)} s${read.final ? ' (final read)' : ''}; required from ${(from / 1e9).toFixed(3)} s (B2 ${bounds.b2Ms} ms after its first acknowledged registration, the member's restart or a partition's end)`);
    } else if (listed !== undefined) {
      note('missing', read, `element ${element} (client ${p.clientOf.get(element)}, alive) listed by ${read.member} at ${(listed / 1e9).toFixed(3)} s, absent at ${(read.invoke / 1e9).toFixed(3)} s: removed while its client keeps it`);
    }
  }
}

/** plainDeadline: judgeDead's deadline without the partitions' extension (B1, or B1 silent after a zombie's last request). */
function plainDeadline(p: Parsed, bounds: SessionBounds, element: number, death: Death): number {
  let deadline = death.diedAt + (death.how === 'cancel' ? bounds.b1CancelMs : bounds.b1SilentMs) * ms;
  for (const zombie of p.abandoned.get(death.client) ?? []) {
    const held = p.registrations.some((r) => r.element === element && r.stream === zombie.stream && r.type !== 'fail');
    if (held) deadline = Math.max(deadline, zombie.lastSentAt + bounds.b1SilentMs * ms);
  }
  return deadline;
}

function judgeDead(p: Parsed, bounds: SessionBounds, element: number, death: Death, reads: readonly Read[], lastRead: ReadonlyMap<string, ReadonlySet<string>>, note: Note): void {
  const bound = death.how === 'cancel' ? bounds.b1CancelMs : bounds.b1SilentMs;
  // An abandoned stream that registered the element keeps it (restoring it if its owner's close removed it) until
  // its member times it out: B1silent after its last request.
  let zombieUntil = -Infinity;
  for (const zombie of p.abandoned.get(death.client) ?? []) {
    const held = p.registrations.some((r) => r.element === element && r.stream === zombie.stream && r.type !== 'fail');
    if (held) zombieUntil = Math.max(zombieUntil, extend(zombie.lastSentAt + bounds.b1SilentMs * ms, p.partitions, bounds.closeSettleMs));
  }
  const deadline = Math.max(extend(death.diedAt + bound * ms, p.partitions, bounds.closeSettleMs), zombieUntil);
  const ghost = [...lastRead].some(([, elements]) => elements.has(`${element}`));
  const absentSeen = new Map<string, number>();
  // listedBy: member incarnations that have listed it: only those can lose it and list it again. One cut off from the
  // registration lists it late, and that is not a resurrection (until B1 it may still be listed).
  const listedBy = new Set<string>();
  for (const read of reads) {
    const key = `${read.member}#${read.incarnation}`;
    const present = read.present.has(element);
    if (read.invoke < death.diedAt) {
      if (present) listedBy.add(key);
      continue;
    }
    if (present && read.invoke >= deadline) {
      note(ghost ? 'ghost' : 'lateRemoval', read, `element ${element} of dead client ${death.client} (${death.how}, died at ${(death.diedAt / 1e9).toFixed(3)} s) still listed by ${read.member} at ${(read.invoke / 1e9).toFixed(3)} s, after B1 (${bound} ms${zombieUntil === deadline ? ', or B1 silent after an abandoned stream\'s last request' : ''}) ended at ${(deadline / 1e9).toFixed(3)} s${ghost ? '; still listed at the final reads: a ghost' : ''}`);
      continue;
    }
    if (present && !absentSeen.has(key)) listedBy.add(key);
    if (!present && listedBy.has(key) && !absentSeen.has(key)) absentSeen.set(key, read.complete);
    const absentAt = absentSeen.get(key);
    if (present && absentAt !== undefined && read.invoke > absentAt && read.invoke >= zombieUntil) {
      note('resurrection', read, `element ${element} of dead client ${death.client} listed again by ${read.member} at ${(read.invoke / 1e9).toFixed(3)} s after that member read it absent at ${(absentAt / 1e9).toFixed(3)} s`);
    }
  }
}

/** finalListing: per member and service, the elements its last read listed ("element" strings, for lookups). */
function finalListing(reads: readonly Read[]): Map<string, Set<string>> {
  const last = new Map<string, Read>();
  for (const read of reads) {
    const key = `${read.member}|${read.service}`;
    const seen = last.get(key);
    if (seen === undefined || read.invoke > seen.invoke) last.set(key, read);
  }
  const out = new Map<string, Set<string>>();
  for (const [key, read] of last) out.set(key, new Set([...read.present].map(String)));
  return out;
}

/** goneAt: the first read (ns, its invoke) after the last read of any member listing the element since `after`; null if a last read lists it. */
function goneAt(reads: readonly Read[], element: number, after: number): number | null {
  const since = reads.filter((read) => read.invoke >= after);
  const lastPresent = Math.max(after, ...since.filter((read) => read.present.has(element)).map((read) => read.complete));
  const absent = since.filter((read) => read.invoke > lastPresent && !read.present.has(element)).map((read) => read.invoke);
  return absent.length === 0 ? null : Math.min(...absent);
}

function stats(values: readonly number[]): SessionLatencyStats | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
  return { count: sorted.length, p50: Math.round(at(0.5)), max: Math.round(sorted[sorted.length - 1] ?? 0) };
}
