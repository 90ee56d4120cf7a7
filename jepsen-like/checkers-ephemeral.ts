// checkers-ephemeral: the ephemeral workload's checker (PEERS.md §2.3 D1; workloads/ephemeral.ts makes the history).
//
// Expectation per element (registered at most once, deregistered at most once, only after an acknowledged
// registration): present when its registration was acknowledged and no deregistration was attempted or the
// deregistration failed; absent when its registration failed or its deregistration was acknowledged (a
// resurrection otherwise); either way when an outcome is unknown (info).
//
// Convergence: the final reads come in rounds (every member's local list of every service, every 500 ms after the
// workers stopped). A round agrees when all members read the same set for every service and that set meets the
// expectation. Valid only when a round agrees within T = convergenceBoundMs of the later of the final heal and the
// last write's completion, every later round agrees too (nothing flaps or comes back), and nothing unknown appears.
//
// Availability during partitions (reported; "AP: both sides keep accepting writes"): every write invoked while a
// partition was in force counts for the side of the member it was sent to (majority: the member reaches more than
// half the members both ways). A side that was sent at least availabilityMinAttempts writes and acknowledged none
// makes the run invalid; the ok share per side is reported either way.

import type { HistoryEvent } from '../test/checker/history.ts';
import type { OperationRef } from './checkers.ts';
import { isClientEvent, isNemesisEvent, type RecordedEvent } from './history.ts';
import { convergenceBoundMs } from './workloads/ephemeral.ts';

/** availabilityMinAttempts: a side needs this many writes before "accepted none" is held against it. */
export const availabilityMinAttempts = 10;
const listLimit = 50;

/** Expectation is the required final presence of each element of each service. */
export interface Expectation {
  readonly mustPresent: ReadonlyMap<string, ReadonlySet<number>>;
  readonly mustAbsent: ReadonlyMap<string, ReadonlySet<number>>;
  readonly attempted: ReadonlySet<number>;
}

interface Write {
  readonly f: string;
  readonly service: string;
  readonly element: number;
  readonly node: string;
  readonly invoke: number;
  readonly complete: number;
  readonly type: 'ok' | 'fail' | 'info';
  readonly process: number;
}

function record(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
}

function writesOf(events: readonly RecordedEvent[]): Write[] {
  const open = new Map<number, HistoryEvent>();
  const writes: Write[] = [];
  for (const event of events) {
    if (!isClientEvent(event) || (event.f !== 'eph-add' && event.f !== 'eph-remove')) continue;
    if (event.type === 'invoke') {
      open.set(event.process, event);
      continue;
    }
    const invoke = open.get(event.process);
    open.delete(event.process);
    if (invoke === undefined) continue;
    const value = record(invoke.value);
    writes.push({ f: event.f, service: String(value['service']), element: Number(value['element']), node: String(value['node']), invoke: invoke.time, complete: event.time, type: event.type, process: event.process });
  }
  for (const invoke of open.values()) {
    const value = record(invoke.value);
    writes.push({ f: invoke.f, service: String(value['service']), element: Number(value['element']), node: String(value['node']), invoke: invoke.time, complete: Number.POSITIVE_INFINITY, type: 'info', process: invoke.process });
  }
  return writes;
}

/** ephemeralExpectation derives what every member's final set must (and must not) hold. */
export function ephemeralExpectation(events: readonly RecordedEvent[]): Expectation {
  const adds = new Map<number, Write>();
  const removes = new Map<number, Write>();
  for (const write of writesOf(events)) (write.f === 'eph-add' ? adds : removes).set(write.element, write);
  const mustPresent = new Map<string, Set<number>>();
  const mustAbsent = new Map<string, Set<number>>();
  const add = (map: Map<string, Set<number>>, service: string, element: number): void => {
    let set = map.get(service);
    if (set === undefined) map.set(service, (set = new Set()));
    set.add(element);
  };
  for (const [element, write] of adds) {
    const remove = removes.get(element);
    if (remove?.type === 'ok' || write.type === 'fail') add(mustAbsent, write.service, element);
    else if (write.type === 'ok' && (remove === undefined || remove.type === 'fail')) add(mustPresent, write.service, element);
  }
  return { mustPresent, mustAbsent, attempted: new Set(adds.keys()) };
}

/** roundProblems lists why one round of reads (service -> member -> elements) does not agree; empty when it does. */
export function roundProblems(expectation: Expectation, reads: ReadonlyMap<string, ReadonlyMap<string, readonly number[]>>, members: readonly string[]): string[] {
  const problems: string[] = [];
  for (const [service, byMember] of reads) {
    let reference: string | null = null;
    for (const member of members) {
      const elements = byMember.get(member);
      if (elements === undefined) {
        problems.push(`${service}: no read from ${member}`);
        continue;
      }
      const text = elements.join(',');
      if (reference === null) reference = text;
      else if (text !== reference) problems.push(`${service}: ${member} differs from the other members`);
      const present = new Set(elements);
      const missing = [...(expectation.mustPresent.get(service) ?? [])].filter((e) => !present.has(e));
      const resurrected = [...(expectation.mustAbsent.get(service) ?? [])].filter((e) => present.has(e));
      const unknown = elements.filter((e) => !expectation.attempted.has(e));
      if (missing.length > 0) problems.push(`${service} on ${member}: ${missing.length} acknowledged registration(s) missing: ${missing.slice(0, 10).join(', ')}`);
      if (resurrected.length > 0) problems.push(`${service} on ${member}: ${resurrected.length} deregistered or failed element(s) present: ${resurrected.slice(0, 10).join(', ')}`);
      if (unknown.length > 0) problems.push(`${service} on ${member}: ${unknown.length} element(s) never registered: ${unknown.slice(0, 10).join(', ')}`);
    }
  }
  return problems;
}

/** SideAvailability is the writes sent to one side of the partitions and how many were acknowledged. */
export interface SideAvailability {
  readonly side: 'majority' | 'minority' | 'no partition';
  readonly attempts: number;
  readonly ok: number;
  readonly okShare: number;
}

/** EphemeralResult is the ephemeral checker's verdict with its evidence. */
export interface EphemeralResult {
  readonly valid: boolean;
  readonly attempted: number;
  readonly acknowledged: number;
  readonly removesAcknowledged: number;
  readonly mustPresent: number;
  readonly mustAbsent: number;
  readonly rounds: number;
  readonly convergedAfterMs: number | null;
  /** membersAgreedAfterMs: when every member first read the same sets (right or wrong), from the same origin. */
  readonly membersAgreedAfterMs: number | null;
  readonly boundMs: number;
  readonly flappedAfterConvergence: readonly string[];
  readonly lastRoundProblems: readonly string[];
  readonly firstRoundProblems: readonly string[];
  readonly availability: readonly SideAvailability[];
  readonly problems: readonly string[];
  readonly anomalies: readonly OperationRef[];
}

/** Partition is one partition's interval and each host's side. */
interface Partition {
  readonly start: number;
  end: number;
  readonly sides: ReadonlyMap<string, 'majority' | 'minority'>;
}

function partitionsOf(events: readonly RecordedEvent[], hosts: readonly string[]): Partition[] {
  const byId = new Map<number, Partition>();
  const all: Partition[] = [];
  for (const event of events) {
    if (!isNemesisEvent(event)) continue;
    const value = record(event.value);
    const id = Number(value['id']);
    if (event.f === 'start-partition' && event.type === 'info') {
      const grudge = record(value['grudge']);
      const sides = new Map<string, 'majority' | 'minority'>();
      for (const host of hosts) {
        const cannot = (h: string): Set<string> => new Set(((grudge[h] as string[] | undefined) ?? []));
        const reach = hosts.filter((other) => other === host || (!cannot(host).has(other) && !cannot(other).has(host)));
        sides.set(host, reach.length * 2 > hosts.length ? 'majority' : 'minority');
      }
      const partition = { start: event.time, end: Number.POSITIVE_INFINITY, sides };
      byId.set(id, partition);
      all.push(partition);
    } else if (event.f === 'stop-partition' && event.type === 'invoke') {
      const partition = byId.get(id);
      if (partition !== undefined) partition.end = event.time;
    } else if (event.f === 'heal-all' && event.type === 'invoke') {
      for (const partition of all) partition.end = Math.min(partition.end, event.time);
    }
  }
  return all;
}

/** checkEphemeral judges an ephemeral history; `members` are the members' HTTP addresses. */
export function checkEphemeral(events: readonly RecordedEvent[], members: readonly string[]): EphemeralResult {
  const expectation = ephemeralExpectation(events);
  const writes = writesOf(events);
  const problems: string[] = [];
  const anomalies: OperationRef[] = [];
  // Rounds of final reads.
  const rounds = new Map<number, { time: number; reads: Map<string, Map<string, number[]>>; firstProcess: number; firstInvoke: number }>();
  const open = new Map<number, HistoryEvent>();
  for (const event of events) {
    if (!isClientEvent(event) || event.f !== 'eph-read') continue;
    if (event.type === 'invoke') {
      open.set(event.process, event);
      continue;
    }
    const invoke = open.get(event.process);
    open.delete(event.process);
    if (invoke === undefined || event.type !== 'ok') continue;
    const value = record(event.value);
    const round = Number(record(invoke.value)['round']);
    let entry = rounds.get(round);
    if (entry === undefined) rounds.set(round, (entry = { time: event.time, reads: new Map(), firstProcess: invoke.process, firstInvoke: invoke.time }));
    entry.time = Math.max(entry.time, event.time);
    const service = String(value['service']);
    let byMember = entry.reads.get(service);
    if (byMember === undefined) entry.reads.set(service, (byMember = new Map()));
    const elements = (value['elements'] as number[] | undefined) ?? [];
    const foreign = (value['foreign'] as string[] | undefined) ?? [];
    if (foreign.length > 0) problems.push(`${service} on ${String(value['node'])}: foreign instances ${foreign.slice(0, 5).join(', ')}`);
    byMember.set(String(value['node']), elements);
  }
  const services = new Set(writes.map((w) => w.service));
  const ordered = [...rounds.entries()].sort((a, b) => a[0] - b[0]).map(([, entry]) => entry);
  // A round missing a service's read of some member does not agree (roundProblems says so).
  for (const entry of ordered) for (const service of services) if (!entry.reads.has(service)) entry.reads.set(service, new Map());
  let healTime: number | null = null;
  for (const event of events) if (isNemesisEvent(event) && event.f === 'heal-all' && event.type === 'info') healTime = event.time;
  const lastWrite = writes.reduce((max, w) => (w.complete === Number.POSITIVE_INFINITY ? max : Math.max(max, w.complete)), 0);
  const from = Math.max(healTime ?? 0, lastWrite);
  let convergedAt: number | null = null;
  let agreedAt: number | null = null;
  const flapped: string[] = [];
  for (const entry of ordered) {
    const same = [...entry.reads.values()].every((byMember) => members.every((m) => byMember.has(m)) && new Set(members.map((m) => (byMember.get(m) ?? []).join(','))).size === 1);
    if (same && agreedAt === null) agreedAt = entry.time;
    const issues = roundProblems(expectation, entry.reads, members);
    if (issues.length === 0 && convergedAt === null) convergedAt = entry.time;
    else if (issues.length > 0 && convergedAt !== null) {
      flapped.push(...issues.slice(0, 5));
      anomalies.push({ process: entry.firstProcess, time: entry.firstInvoke });
    }
  }
  const convergedAfterMs = convergedAt === null ? null : Math.round((convergedAt - from) / 1e6);
  if (ordered.length === 0) problems.push('no final read round succeeded');
  else if (convergedAfterMs === null) problems.push(`never converged within the final reads (${ordered.length} rounds)`);
  else if (convergedAfterMs > convergenceBoundMs) problems.push(`converged only ${convergedAfterMs} ms after the heal / last write (T = ${convergenceBoundMs} ms)`);
  if (flapped.length > 0) problems.push(`${flapped.length} problem(s) in rounds after convergence (flapping or resurrection)`);
  // Availability per side.
  const hosts = members.map((m) => m.slice(0, m.lastIndexOf(':')));
  const partitions = partitionsOf(events, hosts);
  const tally = new Map<SideAvailability['side'], { attempts: number; ok: number }>();
  for (const write of writes) {
    const partition = partitions.find((p) => write.invoke >= p.start && write.invoke < p.end);
    const side: SideAvailability['side'] = partition === undefined ? 'no partition' : (partition.sides.get(write.node.slice(0, write.node.lastIndexOf(':'))) ?? 'minority');
    let entry = tally.get(side);
    if (entry === undefined) tally.set(side, (entry = { attempts: 0, ok: 0 }));
    entry.attempts++;
    if (write.type === 'ok') entry.ok++;
  }
  const availability = [...tally].map(([side, t]) => ({ side, attempts: t.attempts, ok: t.ok, okShare: t.attempts === 0 ? 0 : t.ok / t.attempts }));
  for (const side of availability) {
    if (side.side !== 'no partition' && side.attempts >= availabilityMinAttempts && side.ok === 0) problems.push(`the ${side.side} side acknowledged none of ${side.attempts} writes during partitions (AP: both sides must accept writes)`);
  }
  const adds = writes.filter((w) => w.f === 'eph-add');
  if (!adds.some((w) => w.type === 'ok')) problems.push('no ephemeral registration was acknowledged: nothing was tested');
  const first = ordered[0];
  const last = ordered[ordered.length - 1];
  return {
    valid: problems.length === 0,
    attempted: adds.length,
    acknowledged: adds.filter((w) => w.type === 'ok').length,
    removesAcknowledged: writes.filter((w) => w.f === 'eph-remove' && w.type === 'ok').length,
    mustPresent: [...expectation.mustPresent.values()].reduce((sum, set) => sum + set.size, 0),
    mustAbsent: [...expectation.mustAbsent.values()].reduce((sum, set) => sum + set.size, 0),
    rounds: ordered.length,
    convergedAfterMs,
    membersAgreedAfterMs: agreedAt === null ? null : Math.round((agreedAt - from) / 1e6),
    boundMs: convergenceBoundMs,
    flappedAfterConvergence: flapped.slice(0, listLimit),
    firstRoundProblems: first === undefined ? [] : roundProblems(expectation, first.reads, members).slice(0, 10),
    lastRoundProblems: last === undefined ? [] : roundProblems(expectation, last.reads, members).slice(0, listLimit),
    availability,
    problems,
    anomalies,
  };
}
