// report: results.json and the human summary of one run. The summary's lines are what `npm run jepsen` prints
// before its final verdict line.

import { writeFileSync } from 'node:fs';
import type { Availability, LinearizabilityResult, Recovery, RetrySummary, SetResult } from './checkers.ts';
import type { EphemeralResult } from './checkers-ephemeral.ts';
import type { HealthResult } from './checkers-health.ts';
import type { ProtectResult } from './checkers-protect.ts';
import type { BeatsResult, LatencyStats } from './checkers-beats.ts';
import type { D3Result } from './checkers-d3.ts';
import type { SessionLatencyStats, SessionsResult } from './checkers-sessions.ts';
import type { OverridesResult } from './checkers-overrides.ts';
import type { WatchResult } from './checkers-watch.ts';
import type { CorruptionResult } from './corruption.ts';
import type { ClockReport } from './clock-faults.ts';
import type { LeaderChange } from './monitor.ts';

/** Verdict is a run's outcome: valid only when every checker passed and nothing was left undecided. */
export type Verdict = 'valid' | 'invalid';

/**
 * SnapshotTotals sums the members' cairn_raft_snapshots_total at the end of a run. Counts restart with a member, so a
 * killed member's are lost; `unread` members did not answer.
 */
export interface SnapshotTotals {
  readonly compacted: number;
  readonly imagesEncoded: number;
  readonly installed: number;
  readonly unread: number;
}

/** RunResults is everything results.json holds. */
export interface RunResults {
  readonly name: string;
  readonly dir: string;
  readonly seed: number;
  readonly options: Readonly<Record<string, unknown>>;
  readonly startedAt: string;
  readonly wallSeconds: number;
  readonly linearizability: LinearizabilityResult | null;
  readonly set: SetResult | null;
  readonly health: HealthResult | null;
  readonly ephemeral: EphemeralResult | null;
  readonly watch: WatchResult | null;
  /** beats: the beats workload's checker (PEERS.md D2, D4); absent without that workload. */
  readonly beats?: BeatsResult;
  /** d3: mass heartbeat loss (PEERS.md D3), with the beats workload's all-clients-cut fault; absent otherwise. */
  readonly d3?: D3Result;
  /** sessions: the sessions workload's checker (PEERS.md D5); absent without that workload. */
  readonly sessions?: SessionsResult;
  /** overrides: the overrides workload's checker (PEERS.md C3); absent without that workload. */
  readonly overrides?: OverridesResult;
  /** corruption: the corrupt nemesis's faults and the final state comparison (PEERS.md A7); absent without it. */
  readonly corruption?: CorruptionResult;
  /** protect: case C2's protectThreshold checker (checkers-protect.ts); absent unless the service had a threshold. */
  readonly protect?: ProtectResult;
  /** clock: the clock nemesis's offsets, per write and per member, and its probes (PEERS.md A12); absent without it. */
  readonly clock?: ClockReport;
  /** retries: the idempotent retries of outcome-unknown operations (A14; generator.ts). */
  readonly retries?: RetrySummary;
  /** notes: what a workload skipped and why, or a Cairn feature it found not served. */
  readonly notes: readonly string[];
  /** snapshots: the members' snapshot events summed at the end (absent when the run failed before it). */
  readonly snapshots?: SnapshotTotals;
  readonly availability: readonly Availability[];
  readonly recovery: Recovery;
  /** memberRecoveryMs: after the final heal, when each member first answered a linearizable read (ms). */
  readonly memberRecoveryMs: Readonly<Record<string, number | null>>;
  readonly leaders: { readonly leaderChanges: number; readonly firstTerm: number | null; readonly lastTerm: number; readonly leaders: readonly LeaderChange[] };
  readonly nemesisProblems: readonly string[];
  readonly unexpectedExits: readonly string[];
  readonly faults: Readonly<Record<string, number>>;
  readonly verdict: Verdict;
  readonly reasons: readonly string[];
}

/** writeResults writes results.json into the run directory. */
export function writeResults(path: string, results: RunResults): void {
  writeFileSync(path, `${JSON.stringify(results, null, 2)}\n`);
}

function linearizabilityLine(result: LinearizabilityResult | null): string[] {
  if (result === null) return [];
  const head = `linearizability (register): ${result.result} over ${result.keys} keys, ${result.operations} operations, checked in ${result.checkMs} ms`;
  if (result.result === 'ok') return [head];
  const lines = [head];
  if (result.illegalKeys.length > 0) lines.push(`  not linearizable: ${result.illegalKeys.slice(0, 10).join(', ')}`);
  if (result.unknownKeys.length > 0) lines.push(`  undecided: ${result.unknownKeys.slice(0, 10).join(', ')}`);
  lines.push(...result.explanation.split('\n').slice(0, 40).map((line) => `  ${line}`));
  return lines;
}

function setLines(result: SetResult | null): string[] {
  if (result === null) return [];
  const sum = (pick: (s: SetResult['services'][number]) => number): number => result.services.reduce((total, s) => total + pick(s), 0);
  const lines = [
    `set: ${result.valid ? 'ok' : 'INVALID'}; ${sum((s) => s.attempted)} attempted, ${sum((s) => s.acknowledged)} acknowledged, ` +
      `lost ${result.lostCount}, unexpected ${sum((s) => s.counts.unexpected)}, failed-but-visible ${sum((s) => s.counts.failedButVisible)}, ` +
      `stale reads ${result.staleCount}, disappeared ${sum((s) => s.counts.disappeared)}, recovered ${sum((s) => s.recovered)} (info adds found present), ` +
      `${sum((s) => s.reads)} reads (${sum((s) => s.finalReads)} final) over ${result.services.length} service(s)`,
  ];
  for (const service of result.services) {
    for (const item of [...service.lost.slice(0, 5), ...service.stale.slice(0, 3), ...service.disappeared.slice(0, 3)]) lines.push(`  ${service.service}: ${item}`);
    if (service.unexpected.length > 0) lines.push(`  ${service.service}: unexpected ${service.unexpected.slice(0, 10).join(', ')}`);
    if (service.failedButVisible.length > 0) lines.push(`  ${service.service}: failed but visible ${service.failedButVisible.slice(0, 10).join(', ')}`);
  }
  for (const problem of result.problems) lines.push(`  ${problem}`);
  return lines;
}

function healthLines(result: HealthResult | null): string[] {
  if (result === null) return [];
  const lines = [
    `health: ${result.valid ? 'ok' : 'INVALID'}; ${result.observations} reads of ${result.targets.length} targets (bound ${result.boundMs} ms, commit margin ${result.commitMarginMs} ms); ` +
      `unjustified ${result.counts.unjustified}, unjustified flips ${result.counts.unjustifiedFlips}, fencing violations ${result.counts.fencingViolations}, ` +
      `flap excess on ${result.counts.flaps} target(s), final mismatches ${result.counts.finalMismatches} over ${result.finalReads} final reads; ` +
      `prober isolations ${result.isolations} (${result.staleVerdictsLeft} stale verdicts left to fence); cut targets reported unhealthy ${result.cutsReported.length}, not reported ${result.cutsUnreported.length}`,
    `  verdicts per member (cairn_health_flips_total): ${Object.entries(result.memberFlips).map(([m, c]) => `${m} ${Object.entries(c).map(([k, n]) => `${k} ${n}`).join('/')}`).join('; ') || 'not scraped'}`,
    `  flips per target (observed/truth): ${result.targets.map((t) => `${t.target.split(':')[1] ?? t.target} ${t.observedChanges}/${t.truthChanges}`).join(', ')}`,
    `  probe storm: ${result.storm.checked ? `${result.storm.accepts} probes accepted; busiest ${result.storm.windowMs} ms window ${result.storm.busiestSteady} (at most ${result.storm.steadyMax}) with one prober, ${result.storm.busiestHandover} (at most ${result.storm.handoverMax}) in handovers; over the bound ${result.storm.stormCount}` : 'not checked (no accepted-probe record)'}`,
  ];
  if (result.crashes > 0) {
    lines.push(`  kills/pauses ${result.crashes}: victims' transitions judged ${result.resumption.judged} (slowest shown after ${result.resumption.maxLatencyMs ?? '-'} ms, bound ${result.boundMs} ms), superseded ${result.resumption.superseded}, late ${result.resumption.late.length}, lost ${result.resumption.lost.length}`);
  }
  for (const item of [...result.fencingViolations.slice(0, 5), ...result.unjustifiedFlips.slice(0, 5), ...result.unjustified.slice(0, 5), ...result.finalMismatches.slice(0, 5), ...result.cutsUnreported.slice(0, 5).map((c) => `cut not reported: ${c}`), ...result.resumption.lost.slice(0, 5).map((c) => `lost transition: ${c}`), ...result.resumption.late.slice(0, 5).map((c) => `late transition: ${c}`), ...result.storm.storms.slice(0, 5).map((c) => `probe storm: ${c}`)]) lines.push(`  ${item}`);
  for (const problem of result.problems) lines.push(`  ${problem}`);
  return lines;
}

/** protectLines summarises case C2's checker. */
export function protectLines(result: ProtectResult | undefined): string[] {
  if (result === undefined) return [];
  const c = result.counts;
  const lines = [
    `protectThreshold ${result.threshold}: ${result.valid ? 'ok' : 'INVALID'}; ${result.polls} polls (${result.pinnedPolls} pinned to one revision), ${result.answers} served answers (${result.healthyOnlyAnswers} healthyOnly), ` +
      `${result.protectedAnswers} protected (${result.pinnedProtected} with the stored share known), ${result.emptyAnswers} empty; ` +
      `incomplete protected ${c.incompleteProtected}, fired at or above the threshold ${c.wrongProtection}, missed below it ${c.missedProtection}, list not the stored health ${c.wrongList}, empty while a target was healthy ${c.emptyWhileHealthy}`,
    `  pinned polls by stored healthy count (of ${result.targets}): ${Object.entries(result.storedShares).sort((a, b) => Number(a[0]) - Number(b[0])).map(([k, n]) => `${k}: ${n}`).join(', ') || 'none'}`,
  ];
  for (const item of result.violations.slice(0, 10)) lines.push(`  ${item}`);
  for (const problem of result.problems) lines.push(`  ${problem}`);
  return lines;
}

function ephemeralLines(result: EphemeralResult | null): string[] {
  if (result === null) return [];
  const lines = [
    `ephemeral: ${result.valid ? 'ok' : 'INVALID'}; ${result.attempted} registrations (${result.acknowledged} acknowledged), ${result.removesAcknowledged} deregistrations acknowledged; ` +
      `expected ${result.mustPresent} present, ${result.mustAbsent} absent; converged after ${result.convergedAfterMs ?? 'never'} ms (T ${result.boundMs} ms; members agreed with each other after ${result.membersAgreedAfterMs ?? 'never'} ms) over ${result.rounds} rounds`,
    `  writes by side: ${result.availability.map((a) => `${a.side} ${(a.okShare * 100).toFixed(0)}% ok (${a.ok}/${a.attempts})`).join(', ')}`,
  ];
  for (const item of [...result.firstRoundProblems.slice(0, 3).map((p) => `first round: ${p}`), ...result.lastRoundProblems.slice(0, 5).map((p) => `last round: ${p}`), ...result.flappedAfterConvergence.slice(0, 5)]) lines.push(`  ${item}`);
  for (const problem of result.problems) lines.push(`  ${problem}`);
  return lines;
}

function watchLines(result: WatchResult | null): string[] {
  if (result === null) return [];
  const lines = [
    `watch: ${result.valid ? 'ok' : 'INVALID'}; ${result.subscribers} subscribers, ${result.streams} streams (${result.resumes} resumed), ${result.snapshots} snapshots; ` +
      `writes ${result.writes.addsOk}/${result.writes.adds} adds and ${result.writes.removesOk}/${result.writes.removes} removes ok; ` +
      `revision violations ${result.counts.revisionViolations}, states that never existed ${result.counts.stateViolations}, time travel ${result.counts.timeTravel}, resurrections ${result.counts.resurrections}, not converged ${result.counts.notConverged}`,
    `  snapshots already superseded when their stream opened (served by a member behind; reported, not judged): ${result.staleSnapshots}`,
    `  stream ends: ${Object.entries(result.streamEnds).map(([reason, n]) => `${reason} x${n}`).join(', ') || 'none'}`,
  ];
  for (const item of [...result.revisionViolations.slice(0, 5), ...result.timeTravel.slice(0, 5), ...result.stateViolations.slice(0, 5), ...result.resurrections.slice(0, 5), ...result.notConverged.slice(0, 5)]) lines.push(`  ${item}`);
  for (const problem of result.problems) lines.push(`  ${problem}`);
  return lines;
}

/** summaryLines renders the summary printed after a run (without the final verdict line). */
export function summaryLines(results: RunResults): string[] {
  const lines = [`run ${results.name}: ${results.dir} (seed ${results.seed}, ${results.wallSeconds.toFixed(0)} s)`];
  lines.push(`faults: ${Object.entries(results.faults).map(([f, n]) => `${f} x${n}`).join(', ') || 'none'}`);
  lines.push(...linearizabilityLine(results.linearizability), ...setLines(results.set));
  lines.push(...healthLines(results.health), ...protectLines(results.protect), ...ephemeralLines(results.ephemeral), ...watchLines(results.watch));
  lines.push(...beatsLines(results.beats));
  lines.push(...d3Lines(results.d3));
  lines.push(...sessionsLines(results.sessions));
  lines.push(...overridesLines(results.overrides));
  lines.push(...corruptionLines(results.corruption));
  lines.push(...clockLines(results.clock));
  lines.push(...retryLines(results.retries));
  for (const note of results.notes) lines.push(`note: ${note}`);
  for (const a of results.availability) {
    lines.push(`availability ${a.f}: ${(a.okShare * 100).toFixed(1)}% ok (${a.ok} ok, ${a.fail} fail, ${a.info} info), latency p50 ${a.p50Ms ?? '-'} ms, p99 ${a.p99Ms ?? '-'} ms`);
  }
  const byF = Object.entries(results.recovery.byF).map(([f, ms]) => `${f} ${ms ?? 'never'} ms`).join(', ');
  lines.push(`recovery after the final heal: ${results.recovery.recoveryMs ?? 'never'} ms (${byF}); members answered linearizable reads after ${Object.entries(results.memberRecoveryMs).map(([m, ms]) => `${m} ${ms ?? 'never'} ms`).join(', ')}`);
  lines.push(`leaders: ${results.leaders.leaderChanges} change(s) seen, terms ${results.leaders.firstTerm ?? '?'} -> ${results.leaders.lastTerm}`);
  for (const problem of [...results.nemesisProblems, ...results.unexpectedExits]) lines.push(`problem: ${problem}`);
  for (const reason of results.reasons) lines.push(`reason: ${reason}`);
  return lines;
}

function retryLines(result: RetrySummary | undefined): string[] {
  if (result === undefined || (result.retried === 0 && result.impatient === 0 && result.reusedRefusals === 0)) return [];
  const byF = Object.entries(result.byF).map(([f, n]) => `${f} ${n}`).join(', ');
  return [
    `retries (same request id): ${result.retried} operation(s) resent (${byF || 'none'}): ${result.resolvedOk} answered ok, ${result.leftUnknown} left unknown; ` +
      `at most ${result.attemptsMax} attempts; impatient first attempts ${result.impatient} (${result.impatientUnknown} ended unknown); ` +
      `refused as a reused id ${result.reusedRefusals}`,
  ];
}

/** clockLines renders the clock nemesis: per member how far its clock was moved, and whether the moves showed. */
function clockLines(report: ClockReport | undefined): string[] {
  if (report === undefined) return [];
  const members = Object.entries(report.perMember).sort(([a], [b]) => a.localeCompare(b));
  const lines = [
    `clock (${report.mode}): ${report.faults} fault(s), ${report.moves.length} offset write(s); ` +
      (members.map(([member, m]) => `${member} ${m.writes} write(s), up to +${m.aheadMax} s / -${m.behindMax} s`).join('; ') || 'no member moved'),
    `  probes (HTTP Date header): ${report.probes.seen} member clock(s) seen moved, ${report.probes.notSeen.length} not`,
  ];
  for (const item of report.probes.notSeen.slice(0, 5)) lines.push(`  ${item}`);
  return lines;
}

function corruptionLines(result: CorruptionResult | undefined): string[] {
  if (result === undefined) return [];
  const counts = Object.entries(result.counts).map(([outcome, n]) => `${outcome} ${n}`).join(', ');
  const lines = [`corruption: ${result.faults.length} fault(s): ${counts}; final reads ${result.finalReads} over ${result.finalKeys} keys, ${result.divergences.length} divergence(s)`];
  for (const fault of result.faults) lines.push(`  #${fault.id} ${fault.member} ${fault.mode} ${fault.file}: ${fault.outcome}: ${fault.detail.slice(0, 300)}`);
  return lines;
}

function latencyText(stats: LatencyStats | null, unit: string): string {
  if (stats === null) return 'none';
  return `min ${stats.min}${unit}, p50 ${stats.p50}${unit}, p90 ${stats.p90}${unit}, p99 ${stats.p99}${unit}, max ${stats.max}${unit} (n ${stats.count})`;
}

/** beatsLines renders the beats checker: false evictions, expiries, latencies and the bounds they were held to. */
function beatsLines(result: BeatsResult | undefined): string[] {
  if (result === undefined) return [];
  const b = result.bounds;
  const f = result.falseEvictions;
  const lines = [
    `beats: ${result.valid ? 'ok' : 'INVALID'}; ${result.instances} instances (${result.beatingInstances} acknowledged), beats ${result.beats.ok} ok / ${result.beats.fail} fail / ${result.beats.info} unknown, ${result.reads} list reads; ` +
      `timings interval ${b.intervalMs} ms, unhealthy ${b.unhealthyMs} ms, delete ${b.removeMs} ms`,
    `  false evictions of beating instances: ${f.total} (${f.toUnhealthy} to unhealthy, ${f.toAbsent} to absent): sided ${f.sided}, after a heal ${f.afterHeal}, unexplained ${f.unexplained}; ` +
      `instances affected ${result.falseEvictedInstances}/${result.beatingInstances} (rate ${(result.falseEvictionRate * 100).toFixed(1)}%, unexplained ${(result.unexplainedInstanceRate * 100).toFixed(1)}%)`,
    `  expiries of stopped instances: ${result.expiries.total} (in time ${result.expiries.inTime}, after a heal ${result.expiries.afterHeal}, early ${result.expiries.early}); ` +
      `stopped ${result.stopped}, gone everywhere ${result.gone}, late ${result.late} (bound ${b.lateBoundMs} ms), never gone ${result.neverGone}`,
    `  latency last beat -> gone from every member: ${latencyText(result.latencyMs, ' ms')}; in delete timeouts: ${latencyText(result.latencyOverRemove, 'x')}`,
    `  bounds: slack ${b.slackMs} ms, up-detection ${b.upDetectMs} ms, down-detection ${b.detectMs} ms, heal settle ${b.healSettleMs} ms, late bound ${b.lateBoundMs} ms; reads of restarted members before they listed again ${result.restartCatchUpReads}`,
  ];
  for (const violation of result.violations.slice(0, 10)) lines.push(`  ${violation}`);
  for (const problem of result.problems) lines.push(`  ${problem}`);
  return lines;
}

/** d3Lines renders the D3 checker: per cut what was expired and recovered, the violations by kind, latencies, bounds. */
export function d3Lines(result: D3Result | undefined): string[] {
  if (result === undefined) return [];
  const b = result.bounds;
  const c = result.counts;
  const lines = [
    `d3 (every client cut from every member): ${result.valid ? 'ok' : 'INVALID'}; ${result.cuts.length} cut(s): ` +
      result.cuts.map((cut) => `#${cut.id} ${(cut.fromMs / 1000).toFixed(1)}-${(cut.toMs / 1000).toFixed(1)} s: ${cut.subjects} beating, ${cut.removedEverywhere} removed everywhere (${cut.notDue} not due), ${cut.recovered}/${cut.recoverySubjects} recovered (${cut.reRegistered} registered again by a beat)`).join('; '),
    `  violations: early flags ${c.earlyFlags}, early removals ${c.earlyRemovals}, still healthy ${c.stillHealthy}, not removed ${c.notRemoved}, removed without a flag ${c.notFlagged}, not recovered ${c.notRecovered}; flag not observable ${c.flagUnobserved}, windows without a read ${c.unobserved}`,
    `  latency last acknowledged beat -> flagged on every member: ${latencyText(result.flagLatencyMs, ' ms')}`,
    `  latency last acknowledged beat -> gone from every member: ${latencyText(result.removalLatencyMs, ' ms')}`,
    `  latency heal -> listed healthy by every member: ${latencyText(result.recoveryLatencyMs, ' ms')}`,
    `  bounds: unhealthy ${b.unhealthyMs} ms and delete ${b.removeMs} ms + expiry slack ${b.expirySlackMs} ms after the last possible beat; early slack ${b.slackMs} ms; recovery ${b.recoveryBoundMs} ms after the heal`,
  ];
  for (const item of [...result.violations.slice(0, 10), ...result.problems]) lines.push(`  ${item}`);
  return lines;
}

function sessionLatencyText(stats: SessionLatencyStats | null): string {
  return stats === null ? 'none' : `p50 ${stats.p50} ms, max ${stats.max} ms (n ${stats.count})`;
}

/** sessionsLines renders the sessions checker (D5): what ran, the violations by kind, latencies and the bounds. */
function sessionsLines(result: SessionsResult | undefined): string[] {
  if (result === undefined) return [];
  const c = result.counts;
  const v = result.violationCounts;
  const b = result.bounds;
  const lines = [
    `sessions: ${result.valid ? 'ok' : 'INVALID'}; ${c['elements'] ?? 0} instances, ${c['sessionsOpened'] ?? 0} sessions opened (${c['redos'] ?? 0} redos after a break, ${c['abandons'] ?? 0} abandoned and redone, ${c['dupCloses'] ?? 0} duplicate closes), ` +
      `${c['deadClients'] ?? 0} dead clients (${c['cancels'] ?? 0} cancelled, ${c['silentDeaths'] ?? 0} silent); registrations ${c['registrationsOk'] ?? 0} ok / ${c['registrationsFail'] ?? 0} fail / ${c['registrationsUnknown'] ?? 0} unknown; ${c['reads'] ?? 0} list reads`,
    `  violations: missing ${v.missing}, ghost ${v.ghost}, late removal ${v.lateRemoval}, resurrection ${v.resurrection}`,
    `  removal after death: cancel ${sessionLatencyText(result.removalMs.cancel)}, silent ${sessionLatencyText(result.removalMs.silent)}; redo (break -> registered again): ${sessionLatencyText(result.redoMs)}`,
    ...(result.excused.count === 0 ? [] : [`  excused by partitions: ${result.excused.count} dead clients' element(s) listed past their plain B1, up to ${result.excused.longestMs} ms (elements ${result.excused.elements.join(', ')})`]),
    `  bounds: B1 cancel ${b.b1CancelMs} ms, B1 silent ${b.b1SilentMs} ms, B2 ${b.b2Ms} ms, redo gap ${b.gapMaxMs} ms`,
  ];
  for (const item of [...result.violations.slice(0, 8), ...result.problems]) lines.push(`  ${item}`);
  return lines;
}

function tallyText(t: { readonly ok: number; readonly fail: number; readonly info: number }): string {
  return `${t.ok} ok / ${t.fail} fail / ${t.info} unknown`;
}

/** overridesLines renders the overrides checker (C3): operator actions, client events, reads judged, violations, final rounds. */
export function overridesLines(result: OverridesResult | undefined): string[] {
  if (result === undefined) return [];
  const o = result.operator;
  const c = result.clients;
  const r = result.reads;
  const v = result.violationCounts;
  const b = result.bounds;
  const registrations = Object.entries(c.registrations).map(([event, t]) => `${event} ${tallyText(t)}`).join(', ') || 'none';
  const lines = [
    `overrides (operator writes: ${result.operatorWrites}, operators: ${result.operators}): ${result.valid ? 'ok' : 'INVALID'}; ${result.instances} instances; operator disable ${tallyText(o.disable)}, enable ${tallyText(o.enable)}, ${result.operators === 'per-attribute' ? 'weights' : 'of which new weights'} ${tallyText(o.weight)}`,
    `  operator errors: ${Object.entries(result.operatorErrors).map(([e, n]) => `${e} x${n}`).join(', ') || 'none'}`,
    `  clients: registrations ${registrations}; deregistrations ${tallyText(c.deregistrations)}; beat pauses ${c.beatPauses}; beats ${Object.entries(c.beats).map(([k, n]) => `${k} ${n}`).join(', ') || 'none'}`,
    `  reads: ${r.lists} lists, ${r.details} details (${r.detailsWithEnabled} carrying enabled); quiet (read, instance) pairs judged ${r.quietInstanceReads}, against a disable ${r.disabledJudged} (${r.disabledJudgedAfterRegistration} after a client registration; ${r.disabledJudgedAcrossPartition} disabled during a partition, ${r.disabledJudgedRegisteredOtherSide} of them registered again on the other side); enabled and weight from two actions ${r.perAttributeJudged} (${r.splitJudged} whose two were acknowledged on the two sides of a partition: ${r.splitActions} such pairs of actions, of ${r.splitRaces} made)`,
    `  violations: listed while disabled ${v.listedDisabled} (${v.listedDisabledAfterRegistration} after a client registration, ${v.listedDisabledAfterBeatPause} after a beat pause, ${v.listedDisabledAfterWeight} under a later action's weight), weight reverted ${v.weightReverted}, detail enabled ${v.detailEnabled}, final not converged ${v.finalNotConverged}, final flapped ${v.finalFlapped}`,
    `  final: ${result.final.rounds} rounds, agreed after ${result.final.convergedAfterMs ?? 'never'} ms (bound ${b.finalBoundMs} ms); bounds: sync ${b.syncMs} ms, heal settle ${b.healSettleMs} ms, unknown outcome applies within ${b.unknownApplyMs} ms`,
  ];
  for (const item of [...result.violations.slice(0, 8), ...result.final.firstRoundProblems.slice(0, 3).map((p) => `first final round: ${p}`), ...result.final.lastRoundProblems.slice(0, 5).map((p) => `last final round: ${p}`), ...result.problems]) lines.push(`  ${item}`);
  return lines;
}
