// timeline: timeline.html, one SVG picture of a run. One lane per client process (top to bottom in process
// order), each operation a bar from its invoke to its completion, colored by outcome (ok green, fail red, info
// amber; an info bar runs to the end of the history, since its effect may come at any time); fault intervals from
// the nemesis lines shaded across every lane and labelled (each write of a clock fault a thin mark); operations the checkers flagged outlined in red. Hover a
// bar for its details. Bounded: at most lanesMax lanes and operationsDrawnMax bars, with a note when cut.

import { writeFileSync } from 'node:fs';
import type { HistoryEvent } from '../test/checker/history.ts';
import type { OperationRef } from './checkers.ts';
import { isClientEvent, isNemesisEvent, isObserverEvent, streamLaneBase, type NemesisEvent, type RecordedEvent } from './history.ts';

const lanesMax = 400;
const operationsDrawnMax = 40_000;
const laneHeight = 9;
const marginLeft = 70;
const marginTop = 40;
const widthMax = 16_000;

const colors = { ok: '#5fb35f', fail: '#e0605e', info: '#f0b23e', stream: '#8fb0e8' } as const;
const faultColors: Readonly<Record<string, string>> = { 'target-down': '#8a8a8a', partition: '#6f8fd8', kill: '#d86f6f', pause: '#b07fd8', transfer: '#444444', 'heal-all': '#2a9d8f', clock: '#c98a1b' };

interface Bar {
  readonly process: number;
  readonly start: number;
  readonly end: number;
  readonly type: 'ok' | 'fail' | 'info' | 'stream';
  readonly title: string;
  readonly flagged: boolean;
}

interface Interval {
  readonly kind: string;
  readonly start: number;
  readonly end: number;
  readonly label: string;
}

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function barsOf(events: readonly RecordedEvent[], flagged: ReadonlySet<string>, endTime: number): Bar[] {
  const open = new Map<number, HistoryEvent>();
  const bars: Bar[] = [];
  const push = (invoke: HistoryEvent, end: number, type: Bar['type'], completion: unknown): void => {
    if (bars.length >= operationsDrawnMax) return;
    const latency = type === 'info' ? 'unknown outcome' : `${((end - invoke.time) / 1e6).toFixed(1)} ms`;
    const title = `process ${invoke.process} ${invoke.f} ${type} (${latency})\ninvoke: ${JSON.stringify(invoke.value).slice(0, 300)}\nresult: ${JSON.stringify(completion).slice(0, 300)}`;
    bars.push({ process: invoke.process, start: invoke.time, end, type, title, flagged: flagged.has(`${invoke.process}@${invoke.time}`) });
  };
  for (const event of events) {
    if (!isClientEvent(event)) continue;
    if (event.type === 'invoke') {
      open.set(event.process, event);
      continue;
    }
    const invoke = open.get(event.process);
    open.delete(event.process);
    if (invoke !== undefined) push(invoke, event.type === 'info' ? endTime : event.time, event.type, event.value);
  }
  for (const invoke of open.values()) push(invoke, endTime, 'info', 'no completion');
  // Watch subscribers: one bar per Subscribe stream (open to end) in the subscriber's lane, with its snapshot count.
  const streams = new Map<string, { sub: number; start: number; snapshots: number; node: string; last: string }>();
  for (const event of events) {
    if (!isObserverEvent(event)) continue;
    const value = (event.value ?? {}) as Record<string, unknown>;
    const key = `${String(value['sub'])}/${String(value['stream'])}`;
    if (event.f === 'watch-open') streams.set(key, { sub: Number(value['sub']), start: event.time, snapshots: 0, node: String(value['node']), last: '' });
    const stream = streams.get(key);
    if (stream === undefined) continue;
    if (event.f === 'watch-snapshot') {
      stream.snapshots++;
      stream.last = `log index ${String(value['serviceRevision'])}, push revision ${String(value['revision'])}`;
    }
    if (event.f === 'watch-end') {
      streams.delete(key);
      if (bars.length < operationsDrawnMax) bars.push({ process: streamLaneBase + stream.sub, start: stream.start, end: event.time, type: 'stream', title: `subscriber ${stream.sub} stream on ${stream.node}: ${stream.snapshots} snapshots, last ${stream.last}; ended: ${String(value['reason'])}`, flagged: flagged.has(`${streamLaneBase + stream.sub}@${stream.start}`) });
    }
  }
  for (const stream of streams.values()) bars.push({ process: streamLaneBase + stream.sub, start: stream.start, end: endTime, type: 'stream', title: `subscriber ${stream.sub} stream on ${stream.node}: ${stream.snapshots} snapshots (no end recorded)`, flagged: flagged.has(`${streamLaneBase + stream.sub}@${stream.start}`) });
  return bars;
}

function intervalsOf(events: readonly RecordedEvent[], endTime: number): Interval[] {
  const starts = new Map<number, NemesisEvent>();
  const intervals: Interval[] = [];
  for (const event of events) {
    // Each write of a clock fault (clock-faults.ts) is a mark: which members' clocks moved to which offsets.
    if (isObserverEvent(event) && event.f === 'clock-step') {
      const value = (event.value ?? {}) as Record<string, unknown>;
      intervals.push({ kind: 'clock', start: event.time, end: event.time, label: `clock ${String(value['reason'])} ${JSON.stringify(value['offsets'] ?? {}).slice(0, 160)}` });
      continue;
    }
    if (!isNemesisEvent(event)) continue;
    const value = (event.value ?? {}) as Record<string, unknown>;
    const id = typeof value['id'] === 'number' ? value['id'] : -1;
    if (event.f.startsWith('start-') && event.type === 'invoke') starts.set(id, event);
    if (event.f.startsWith('stop-') && event.type === 'info') {
      const start = starts.get(id);
      starts.delete(id);
      if (start !== undefined) intervals.push({ kind: event.f.slice(5), start: start.time, end: event.time, label: labelOf(start) });
    }
    if ((event.f === 'transfer' || event.f === 'heal-all') && event.type === 'info') {
      intervals.push({ kind: event.f, start: event.time, end: event.time, label: `${event.f} ${JSON.stringify(event.value).slice(0, 120)}` });
    }
  }
  for (const start of starts.values()) intervals.push({ kind: start.f.slice(6), start: start.time, end: endTime, label: labelOf(start) });
  return intervals;
}

function labelOf(event: NemesisEvent): string {
  const value = (event.value ?? {}) as Record<string, unknown>;
  const detail = value['mode'] ?? value['target'] ?? '';
  return `${event.f.slice(6)} ${String(detail)} ${JSON.stringify(value['members'] ?? value['member'] ?? value['leader'] ?? '')}`;
}

/** writeTimeline renders the history as timeline.html at `path`; `flagged` are the operations to outline. */
export function writeTimeline(path: string, title: string, events: readonly RecordedEvent[], flagged: readonly OperationRef[]): void {
  const endTime = events.reduce((max, event) => Math.max(max, event.time), 1);
  // The picture starts at the first event (the members' start-up before it is empty).
  const startTime = Math.min(endTime - 1, events[0]?.time ?? 0);
  const flaggedKeys = new Set(flagged.map((ref) => `${ref.process}@${ref.time}`));
  const bars = barsOf(events, flaggedKeys, endTime);
  const processes = [...new Set(bars.map((bar) => bar.process))].sort((a, b) => a - b).slice(0, lanesMax);
  const lane = new Map(processes.map((process, index) => [process, index]));
  const width = Math.min(widthMax, Math.max(1200, Math.round((endTime / 1e9) * 40)));
  const x = (time: number): number => marginLeft + ((time - startTime) / (endTime - startTime)) * (width - marginLeft - 10);
  const height = marginTop + processes.length * laneHeight + 20;
  const parts: string[] = [];
  for (const interval of intervalsOf(events, endTime)) {
    const color = faultColors[interval.kind] ?? '#999999';
    const w = Math.max(2, x(interval.end) - x(interval.start));
    parts.push(`<rect x="${x(interval.start).toFixed(1)}" y="${marginTop - 25}" width="${w.toFixed(1)}" height="${height - marginTop + 25}" fill="${color}" fill-opacity="0.15" stroke="${color}" stroke-opacity="0.5"><title>${escapeXml(interval.label)}</title></rect>`);
    // A strobe writes every second or two: its marks keep their tooltips, but labels would cover each other.
    if (interval.kind === 'clock' && interval.start === interval.end) continue;
    parts.push(`<text x="${(x(interval.start) + 2).toFixed(1)}" y="${marginTop - 15}" font-size="9" fill="${color}">${escapeXml(interval.label.slice(0, 40))}</text>`);
  }
  for (const [process, index] of lane) parts.push(`<text x="4" y="${marginTop + index * laneHeight + 7}" font-size="7" fill="#555">${process >= streamLaneBase ? `sub${process - streamLaneBase}` : `p${process}`}</text>`);
  for (const bar of bars) {
    const index = lane.get(bar.process);
    if (index === undefined) continue;
    const y = marginTop + index * laneHeight + 1;
    const w = Math.max(1.5, x(bar.end) - x(bar.start));
    const stroke = bar.flagged ? ' stroke="#c00000" stroke-width="2"' : '';
    // An info bar runs to the end: drawn thin and pale so that it does not hide the rest.
    const shape = bar.type === 'info' ? ` height="${laneHeight - 6}" fill-opacity="0.35"` : ` height="${laneHeight - 2}"`;
    parts.push(`<rect x="${x(bar.start).toFixed(1)}" y="${bar.type === 'info' ? y + 2 : y}" width="${w.toFixed(1)}"${shape} fill="${colors[bar.type]}"${stroke}><title>${escapeXml(bar.title)}</title></rect>`);
  }
  const notes = [
    `${bars.length} operations, ${processes.length} processes, ${((endTime - startTime) / 1e9).toFixed(1)} s from the first event`,
    bars.length >= operationsDrawnMax ? `only the first ${operationsDrawnMax} operations are drawn` : '',
    lane.size >= lanesMax ? `only the first ${lanesMax} processes are drawn` : '',
    `${flagged.length} operation(s) flagged by the checkers (red outline)`,
  ].filter((note) => note !== '');
  const legend = Object.entries(colors).map(([type, color]) => `<span style="background:${color};padding:0 6px;margin-right:6px">${type}</span>`).join('')
    + Object.entries(faultColors).map(([kind, color]) => `<span style="border:1px solid ${color};color:${color};padding:0 6px;margin-right:6px">${kind}</span>`).join('');
  const html = `<!doctype html><html><head><meta charset="utf-8"><title>${escapeXml(title)}</title></head><body style="font-family:sans-serif">
<h3>${escapeXml(title)}</h3><p>${legend}</p><p>${escapeXml(notes.join('; '))}</p>
<div style="overflow-x:auto"><svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" style="background:#fff">${parts.join('\n')}</svg></div></body></html>\n`;
  writeFileSync(path, html);
}
