// recheck: run the checkers again on a stored run (`npm run jepsen -- --recheck jepsen-like/store/<run>`), e.g.
// with a larger budget after an 'unknown', or after a checker fix. Reads history.jsonl (nemesis lines included;
// they are filtered out as in a live run) and prints the same checker lines as a run.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { checkRegister, checkSet } from './checkers.ts';
import { checkBeats } from './checkers-beats.ts';
import { checkD3 } from './checkers-d3.ts';
import { checkEphemeral } from './checkers-ephemeral.ts';
import { checkHealth } from './checkers-health.ts';
import { checkProtect } from './checkers-protect.ts';
import { checkOverrides } from './checkers-overrides.ts';
import { checkSessions } from './checkers-sessions.ts';
import { checkWatch } from './checkers-watch.ts';
import { isClientEvent, type RecordedEvent } from './history.ts';
import { d3Lines, overridesLines, protectLines, type Verdict } from './report.ts';

/** historyLinesMax bounds the lines read from a stored history. */
const historyLinesMax = 2_000_000;

/** readRecordedHistory parses a run's history.jsonl, client and nemesis lines alike. */
export function readRecordedHistory(file: string): RecordedEvent[] {
  const lines = readFileSync(file, 'utf8').split('\n').filter((line) => line.trim() !== '');
  if (lines.length > historyLinesMax) throw new Error(`${file}: more than ${historyLinesMax} lines`);
  return lines.map((line, index) => {
    const event = JSON.parse(line) as RecordedEvent;
    if (typeof event.time !== 'number' || typeof event.f !== 'string') throw new Error(`${file}:${index + 1}: not a history event`);
    return event;
  });
}

/** recheck checks the history in `dir` again; returns the verdict and the lines to print. */
export function recheck(dir: string, budget: { readonly maxSteps: number; readonly timeoutMs: number }): { verdict: Verdict; lines: string[] } {
  const events = readRecordedHistory(path.join(dir, 'history.jsonl'));
  const fs = new Set(events.filter(isClientEvent).map((event) => event.f));
  const lines: string[] = [];
  let valid = true;
  if (fs.has('read') || fs.has('write')) {
    const result = checkRegister(events, budget);
    valid &&= result.result === 'ok';
    lines.push(`linearizability (register): ${result.result} over ${result.keys} keys, ${result.operations} operations, checked in ${result.checkMs} ms`);
    if (result.result !== 'ok') lines.push(...result.explanation.split('\n').slice(0, 40).map((line) => `  ${line}`));
  }
  if (fs.has('add')) {
    const result = checkSet(events);
    valid &&= result.valid;
    for (const service of result.services) {
      lines.push(`set ${service.service}: ${service.attempted} attempted, ${service.acknowledged} acknowledged, counts ${JSON.stringify(service.counts)}, recovered ${service.recovered}, ${service.reads} reads (${service.finalReads} final)`);
    }
    lines.push(...result.problems);
  }
  if (fs.has('health-read')) {
    const result = checkHealth(events);
    valid &&= result.valid;
    lines.push(`health: ${result.valid ? 'ok' : 'INVALID'}; ${result.observations} reads; counts ${JSON.stringify(result.counts)}`, ...result.problems);
    const protect = checkProtect(events);
    if (protect !== null) {
      valid &&= protect.valid;
      lines.push(...protectLines(protect));
    }
  }
  if (fs.has('eph-add')) {
    const members = [...new Set(events.filter(isClientEvent).filter((e) => e.f === 'eph-read').map((e) => String((e.value as Record<string, unknown>)['node'])))].sort();
    const result = checkEphemeral(events, members);
    valid &&= result.valid;
    lines.push(`ephemeral: ${result.valid ? 'ok' : 'INVALID'}; converged after ${result.convergedAfterMs ?? 'never'} ms`, ...result.problems);
  }
  if (fs.has('watch-add')) {
    const result = checkWatch(events);
    valid &&= result.valid;
    lines.push(`watch: ${result.valid ? 'ok' : 'INVALID'}; ${result.snapshots} snapshots; counts ${JSON.stringify(result.counts)}`, ...result.problems);
  }
  if (fs.has('beat')) {
    const result = checkBeats(events);
    valid &&= result.valid;
    const f = result.falseEvictions;
    lines.push(`beats: ${result.valid ? 'ok' : 'INVALID'}; false evictions ${f.total} (sided ${f.sided}, after a heal ${f.afterHeal}, unexplained ${f.unexplained}); early expiries ${result.expiries.early}; late ${result.late}, never gone ${result.neverGone}; latency p50 ${result.latencyMs?.p50 ?? '-'} ms, max ${result.latencyMs?.max ?? '-'} ms`, ...result.violations, ...result.problems);
  }
  if (events.some((event) => event.f === 'start-clients-cut')) {
    const result = checkD3(events);
    valid &&= result.valid;
    lines.push(...d3Lines(result));
  }
  if (fs.has('sess-register')) {
    const result = checkSessions(events);
    valid &&= result.valid;
    const v = result.violationCounts;
    lines.push(`sessions: ${result.valid ? 'ok' : 'INVALID'}; missing ${v.missing}, ghost ${v.ghost}, late removal ${v.lateRemoval}, resurrection ${v.resurrection}; counts ${JSON.stringify(result.counts)}`,
      ...(result.excused.count === 0 ? [] : [`sessions: excused by partitions: ${result.excused.count} dead clients' element(s) listed past their plain B1, up to ${result.excused.longestMs} ms (elements ${result.excused.elements.join(', ')})`]),
      ...result.violations.slice(0, 20), ...result.problems);
  }
  if (fs.has('ovr-operator')) {
    const result = checkOverrides(events);
    valid &&= result.valid;
    lines.push(...overridesLines(result));
  }
  return { verdict: valid ? 'valid' : 'invalid', lines };
}
