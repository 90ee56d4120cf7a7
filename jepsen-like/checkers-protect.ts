// checkers-protect: case C2's checker (PEERS.md §2.3 C2: "most targets look unhealthy from one node (degraded NIC);
// pass: the served list is never empty while >= 1 target is truly healthy, or the protectThreshold semantics hold").
// workloads/health.ts makes the history: the service is created with a protectThreshold, one prober loses its reach
// to most of its targets (`degraded-nic` faults), and each poll is one `health-read` operation of several calls on one
// member, in this order:
//   1. gRPC ListInstances (healthy_only false): a served list and the service's revision r1;
//   2. gRPC GetInstance of every target, in parallel: the STORED health (a get is never protected);
//   3. HTTP GET /nacos/v1/ns/instance/list (healthyOnly true or false): the served list a Nacos v1 client sees;
//   4. gRPC ListInstances (healthy_only true or false): a served list and the revision r2.
// The calls are linearizable (local in the final phase's local rounds) and made one after the other, so their states
// follow the log. A service's revision is the log index of its last change, and every applied health flip changes it
// (src/cp/registry-state-machine.ts), so when r1 = r2 nothing changed the service between 1 and 4: every answer of
// the poll was served from one stored state, the one the gets show. Such a poll is **pinned**.
//
// Semantics (docs/nacos-compatibility.md, protectThreshold row; src/naming/query.ts): with threshold t > 0, over the
// n enabled instances (every target: all are enabled, none is ever removed), protection fires exactly when
// healthy / n < t (strictly; Nacos fires at <=). A protected answer lists every enabled instance, each marked healthy,
// and says so (`reachProtectionThreshold`); healthyOnly then filters nothing. An unprotected answer lists every
// instance with its stored health, or with healthyOnly exactly the stored-healthy ones.
//
// Checks, per served answer (all must hold):
// (a) protected: every target is listed, each marked healthy, nothing else listed (`incompleteProtected`); and, when
//     pinned, the stored share is below t (`wrongProtection`: protection fired at or above the threshold).
// (b) unprotected: the answer's own flags give the stored share (all of them, or the listed ones with healthyOnly),
//     which must be at least t (`missedProtection`: it should have fired); with healthyOnly false every target is
//     listed, with healthyOnly true every listed one is marked healthy; when pinned, the answer equals the stored
//     health exactly (`wrongList`), and a pinned stored share below t is a missed protection too.
// (c) PEERS.md's pass criterion: an answer is never empty while some target is truly healthy: its listener up
//     throughout [invoke - boundMs, complete], boundMs being C1's bound for verdicts to catch up
//     (workloads/health.ts healthBounds) (`emptyWhileHealthy`). A degraded NIC does not make a target unhealthy.
// C1's checks (checkers-health.ts) judge the stored health of the same polls against the truth timeline.

import type { OperationRef } from './checkers.ts';
import { listenerDowns, type Span, type TimedRead } from './checkers-health.ts';
import { isClientEvent, isObserverEvent, type RecordedEvent } from './history.ts';
import type { HealthSetup } from './workloads/health.ts';

const listLimit = 50;

/** ServedList is one served instance list of a poll, as the workload records it. */
export interface ServedList {
  readonly via: 'grpc' | 'http';
  readonly healthyOnly: boolean;
  /** protected is the answer's reachProtectionThreshold. */
  readonly protected: boolean;
  /** hosts maps each listed "ip:port" to its `healthy` as served. */
  readonly hosts: Readonly<Record<string, boolean>>;
  /** revision is the service's revision the answer reports (gRPC), or null (HTTP v1 reports none). */
  readonly revision: number | null;
}

/** Poll is one ok `health-read` of C2: the stored health and the served lists. */
interface Poll extends TimedRead {
  readonly stored: Readonly<Record<string, boolean | null>>;
  readonly lists: readonly ServedList[];
  readonly pinned: boolean;
}

/** ProtectCounts are the violations by kind. */
export interface ProtectCounts {
  readonly incompleteProtected: number;
  readonly wrongProtection: number;
  readonly missedProtection: number;
  readonly wrongList: number;
  readonly emptyWhileHealthy: number;
}

/** ProtectResult is C2's verdict with its evidence. */
export interface ProtectResult {
  readonly valid: boolean;
  readonly threshold: number;
  readonly targets: number;
  readonly boundMs: number;
  readonly polls: number;
  readonly pinnedPolls: number;
  readonly answers: number;
  readonly protectedAnswers: number;
  /** pinnedProtected: protected answers whose stored share was known exactly (pinned polls). */
  readonly pinnedProtected: number;
  readonly healthyOnlyAnswers: number;
  /** storedShares: pinned polls per stored healthy count (e.g. {"2": 10, "3": 40}): which side of t was exercised. */
  readonly storedShares: Readonly<Record<string, number>>;
  /** emptyAnswers: answers with no host at all (each a violation unless every target may have been down). */
  readonly emptyAnswers: number;
  readonly counts: ProtectCounts;
  readonly violations: readonly string[];
  readonly problems: readonly string[];
  readonly anomalies: readonly OperationRef[];
}

function record(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
}

function listOf(value: unknown): ServedList | null {
  const v = record(value);
  if (v['via'] !== 'grpc' && v['via'] !== 'http') return null;
  const hosts: Record<string, boolean> = {};
  for (const [address, healthy] of Object.entries(record(v['hosts']))) hosts[address] = healthy === true;
  return { via: v['via'], healthyOnly: v['healthyOnly'] === true, protected: v['protected'] === true, hosts, revision: typeof v['revision'] === 'number' ? v['revision'] : null };
}

function collect(events: readonly RecordedEvent[]): { setup: HealthSetup | null; polls: Poll[] } {
  let setup: HealthSetup | null = null;
  const polls: Poll[] = [];
  const open = new Map<number, number>();
  for (const event of events) {
    if (isObserverEvent(event)) {
      if (event.f === 'health-setup') setup = event.value as HealthSetup;
      continue;
    }
    if (!isClientEvent(event) || event.f !== 'health-read') continue;
    if (event.type === 'invoke') {
      open.set(event.process, event.time);
      continue;
    }
    const invoke = open.get(event.process);
    open.delete(event.process);
    const value = record(event.value);
    if (invoke === undefined || event.type !== 'ok' || !Array.isArray(value['lists'])) continue;
    const lists = (value['lists'] as unknown[]).map(listOf).filter((list): list is ServedList => list !== null);
    polls.push({
      process: event.process, invoke, complete: event.time, node: String(value['node']), consistency: String(value['consistency'] ?? 'linearizable'),
      final: value['final'] === true, stored: record(value['health']) as Record<string, boolean | null>, lists, pinned: value['pinned'] === true,
    });
  }
  return { setup, polls };
}

function seconds(ns: number): string {
  return `${(ns / 1e9).toFixed(1)} s`;
}

/** Judgement is what one answer broke: a count key and its description. */
type Judgement = readonly [keyof ProtectCounts, string];

/** judgeProtected is (a) for one protected answer. */
function judgeProtected(list: ServedList, targets: readonly string[], storedHealthy: number | null, threshold: number): Judgement[] {
  const found: Judgement[] = [];
  const missing = targets.filter((target) => !(target in list.hosts));
  const unmarked = targets.filter((target) => list.hosts[target] === false);
  const extra = Object.keys(list.hosts).filter((address) => !targets.includes(address));
  if (missing.length + unmarked.length + extra.length > 0) {
    found.push(['incompleteProtected', `protected answer ${[missing.length > 0 ? `misses ${missing.join(', ')}` : '', unmarked.length > 0 ? `marks ${unmarked.join(', ')} unhealthy` : '', extra.length > 0 ? `lists unknown ${extra.join(', ')}` : ''].filter((s) => s !== '').join('; ')}`]);
  }
  if (storedHealthy !== null && storedHealthy / targets.length >= threshold) {
    found.push(['wrongProtection', `protection fired with ${storedHealthy}/${targets.length} stored healthy (share ${(storedHealthy / targets.length).toFixed(3)} >= threshold ${threshold})`]);
  }
  return found;
}

/** judgeUnprotected is (b) for one unprotected answer; `stored` is the pinned stored health, or null. */
function judgeUnprotected(list: ServedList, targets: readonly string[], stored: Readonly<Record<string, boolean | null>> | null, threshold: number): Judgement[] {
  const found: Judgement[] = [];
  const extra = Object.keys(list.hosts).filter((address) => !targets.includes(address));
  if (extra.length > 0) found.push(['wrongList', `lists unknown ${extra.join(', ')}`]);
  const listed = targets.filter((target) => target in list.hosts);
  const ownHealthy = listed.filter((target) => list.hosts[target] === true).length;
  if (list.healthyOnly) {
    const unmarked = listed.filter((target) => list.hosts[target] === false);
    if (unmarked.length > 0) found.push(['wrongList', `healthyOnly answer lists ${unmarked.join(', ')} marked unhealthy`]);
  } else {
    const missing = targets.filter((target) => !(target in list.hosts));
    if (missing.length > 0) found.push(['wrongList', `answer misses ${missing.join(', ')}`]);
  }
  const storedHealthy = stored === null ? null : targets.filter((target) => stored[target] === true).length;
  const healthy = storedHealthy ?? ownHealthy;
  if (healthy / targets.length < threshold) {
    found.push(['missedProtection', `protection did not fire with ${healthy}/${targets.length} ${storedHealthy === null ? 'healthy by the answer\'s own flags' : 'stored healthy'} (share ${(healthy / targets.length).toFixed(3)} < threshold ${threshold})`]);
  }
  if (stored !== null) {
    const differs = targets.filter((target) => (list.healthyOnly ? (stored[target] === true) !== (target in list.hosts) : list.hosts[target] !== stored[target]));
    if (differs.length > 0) found.push(['wrongList', `answer differs from the stored health (same revision) on ${differs.map((target) => `${target} stored ${String(stored[target])}, served ${target in list.hosts ? String(list.hosts[target]) : 'absent'}`).join('; ')}`]);
  }
  return found;
}

/** trulyHealthy lists the targets whose listener was up throughout [from, to]. */
function trulyHealthy(targets: readonly string[], downs: ReadonlyMap<string, readonly Span[]>, from: number, to: number): string[] {
  return targets.filter((target) => !(downs.get(target) ?? []).some((span) => span.start <= to && span.end >= from));
}

/** checkProtect judges C2's polls (see the file comment); null when the history is not C2's (no protectThreshold). */
export function checkProtect(events: readonly RecordedEvent[]): ProtectResult | null {
  const { setup, polls } = collect(events);
  const threshold = setup?.protectThreshold ?? 0;
  if (setup === null || threshold <= 0) return null;
  const targets = setup.targets;
  const bound = setup.boundMs * 1e6;
  const downs = listenerDowns(events);
  const counts = { incompleteProtected: 0, wrongProtection: 0, missedProtection: 0, wrongList: 0, emptyWhileHealthy: 0 };
  const violations: string[] = [];
  const anomalies: OperationRef[] = [];
  const storedShares: Record<string, number> = {};
  let answers = 0;
  let protectedAnswers = 0;
  let pinnedProtected = 0;
  let healthyOnlyAnswers = 0;
  let emptyAnswers = 0;
  for (const poll of polls) {
    const storedKnown = targets.every((target) => typeof poll.stored[target] === 'boolean');
    const pinned = poll.pinned && storedKnown;
    const storedHealthy = pinned ? targets.filter((target) => poll.stored[target] === true).length : null;
    if (storedHealthy !== null) storedShares[String(storedHealthy)] = (storedShares[String(storedHealthy)] ?? 0) + 1;
    const found: Judgement[] = [];
    for (const list of poll.lists) {
      answers++;
      if (list.healthyOnly) healthyOnlyAnswers++;
      if (list.protected) {
        protectedAnswers++;
        if (pinned) pinnedProtected++;
      }
      const where = `${list.via} list${list.healthyOnly ? ' healthyOnly' : ''}`;
      const judged = list.protected ? judgeProtected(list, targets, storedHealthy, threshold) : judgeUnprotected(list, targets, pinned ? poll.stored : null, threshold);
      found.push(...judged.map(([kind, text]): Judgement => [kind, `${where}: ${text}`]));
      if (Object.keys(list.hosts).length > 0) continue;
      emptyAnswers++;
      const healthy = trulyHealthy(targets, downs, poll.invoke - bound, poll.complete);
      if (healthy.length > 0) found.push(['emptyWhileHealthy', `${where}: empty answer while ${healthy.join(', ')} had been up for the whole ${setup.boundMs} ms before`]);
    }
    if (found.length === 0) continue;
    anomalies.push({ process: poll.process, time: poll.invoke });
    for (const [kind, text] of found) {
      counts[kind]++;
      if (violations.length < listLimit) violations.push(`${text} (${poll.final ? 'final ' : ''}${poll.consistency} poll on ${poll.node}, process ${poll.process}, ${seconds(poll.invoke)}-${seconds(poll.complete)}, ${poll.pinned ? 'pinned' : 'not pinned'})`);
    }
  }
  const problems = polls.length === 0 ? ['no protect poll succeeded'] : [];
  const valid = problems.length === 0 && Object.values(counts).every((n) => n === 0);
  return {
    valid, threshold, targets: targets.length, boundMs: setup.boundMs, polls: polls.length, pinnedPolls: polls.filter((poll) => poll.pinned).length, answers, protectedAnswers, pinnedProtected,
    healthyOnlyAnswers, storedShares, emptyAnswers, counts, violations, problems, anomalies,
  };
}
