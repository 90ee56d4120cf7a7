// SimTrace: what a run leaves behind. Every event is folded into a digest (the determinism test compares digests);
// the text lines are built only when asked for: all of them for `-v`, the last few for a failure report.
import { TraceDigest } from './hash.ts';
import { traceTailLinesMax } from './sim-limits.ts';

/** TraceMode says which trace lines a run keeps: none (fast), the tail (failure reports) or all (`-v`). */
export type TraceMode = 'none' | 'tail' | 'full';

/** SimTrace is a run's trace digest plus, depending on the mode, its text lines. */
export class SimTrace {
  readonly digest = new TraceDigest();
  private readonly mode: TraceMode;
  private readonly lines: string[] = [];
  private readonly sink: ((line: string) => void) | null;

  constructor(mode: TraceMode, sink: ((line: string) => void) | null) {
    this.mode = mode;
    this.sink = sink;
  }

  /** enabled tells whether text lines are kept; callers skip building them otherwise. */
  get enabled(): boolean {
    return this.mode !== 'none';
  }

  /** line records one trace line (call only when enabled). */
  line(time: number, text: string): void {
    const formatted = `${String(time).padStart(6, ' ')}ms ${text}`;
    if (this.mode === 'full' && this.sink !== null) this.sink(formatted);
    this.lines.push(formatted);
    if (this.lines.length > traceTailLinesMax) this.lines.shift();
  }

  /** tail returns the last kept lines. */
  tail(): readonly string[] {
    return this.lines;
  }
}
