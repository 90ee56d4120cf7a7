// faketime: a member's clock under the harness's control (PEERS.md §2.3 A12), through libfaketime (Debian packages
// `faketime` and `libfaketime`). Each member process runs with libfaketime preloaded and its own control file
// (FAKETIME_TIMESTAMP_FILE) in the run directory; writing "+30" into the file moves the member's clocks 30 s ahead
// within FAKETIME_CACHE_DURATION (1 s: libfaketime reads the file again at most once a second), "-30" moves them
// back, "+0" resets them. The file outlives the process, so a member restarted by another nemesis starts with the
// offset its file holds.
//
// Two modes:
// - wall: FAKETIME_DONT_FAKE_MONOTONIC=1, so only CLOCK_REALTIME (Date.now) moves; CLOCK_MONOTONIC (setTimeout,
//   performance.now, process.hrtime) is untouched. This is an NTP or operator step of the system clock.
// - monotonic: both clocks move. This is what a process sees when its VM was frozen and thawed: every duration
//   measured across the freeze is long by the offset, every pending timer is due at once. Used as a positive
//   control: a member that measures silence on either clock must believe its clients were silent.
//
// A monotonic clock never goes back, and libuv schedules timers on it: setting a monotonic offset back (to "+0"
// after "+30") freezes every timer of the process for 30 s, a fault no machine produces (verified with Node 20 and
// libfaketime 0.9.10: an interval timer stops for the whole offset). So in monotonic mode offsets only grow, and
// neither a fault's end nor the heal takes them back (clock-faults.ts).

import { existsSync, renameSync, writeFileSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** faketimeLibrary is Debian's multi-threaded libfaketime (package libfaketime); Node runs threads, so MT it is. */
export const faketimeLibrary = '/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1';

/** faketimeAdvice is how to get libfaketime on Debian. */
export const faketimeAdvice = 'apt-get install faketime libfaketime';

/** faketimeCacheSeconds: how often libfaketime rereads the control file; a change shows within this. */
export const faketimeCacheSeconds = 1;

/** ClockMode says which clocks a clock fault moves. */
export type ClockMode = 'wall' | 'monotonic';

/** clockModes lists every mode, for the command line. */
export const clockModes: readonly ClockMode[] = ['wall', 'monotonic'];

/** offsetSecondsMax bounds any offset written to a control file (a day: far beyond any fault the harness plans). */
export const offsetSecondsMax = 86_400;

/** faketimeProblem says why clock faults cannot be made here (the library is missing), or returns null when they can. */
export function faketimeProblem(library: string = faketimeLibrary): string | null {
  if (existsSync(library)) return null;
  return `the clock nemesis needs libfaketime, and ${library} is missing: ${faketimeAdvice}`;
}

/** formatOffset renders whole seconds the way libfaketime reads a relative offset: "+30", "-30", "+0". */
export function formatOffset(seconds: number): string {
  if (!Number.isInteger(seconds) || Math.abs(seconds) > offsetSecondsMax) throw new RangeError(`clock offset ${seconds} s: whole seconds within ±${offsetSecondsMax} only`);
  return seconds < 0 ? `${seconds}` : `+${seconds}`;
}

/** ClockSetup is what a run's members need to run under libfaketime. */
export interface ClockSetup {
  readonly library: string;
  readonly mode: ClockMode;
}

/**
 * faketimeEnvironment is the environment of a process whose clocks follow `controlFile`. The offset is read from
 * the file (FAKETIME_TIMESTAMP_FILE) rather than from FAKETIME, so that it can change while the process runs.
 */
export function faketimeEnvironment(setup: ClockSetup, controlFile: string): Record<string, string> {
  return {
    LD_PRELOAD: setup.library,
    FAKETIME_TIMESTAMP_FILE: controlFile,
    FAKETIME_CACHE_DURATION: String(faketimeCacheSeconds),
    ...(setup.mode === 'wall' ? { FAKETIME_DONT_FAKE_MONOTONIC: '1' } : {}),
  };
}

/**
 * mergeEnvironments combines the environments of two preloaded libraries (the fsync journal of lazyfs.ts and
 * libfaketime): every variable of both, and LD_PRELOAD naming both libraries (the loader takes a colon-separated
 * list), so neither hides the other.
 */
export function mergeEnvironments(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): Record<string, string> {
  const merged: Record<string, string> = { ...a, ...b };
  const preload = [a['LD_PRELOAD'], b['LD_PRELOAD']].filter((library): library is string => library !== undefined && library !== '');
  if (preload.length > 0) merged['LD_PRELOAD'] = preload.join(':');
  return merged;
}

/**
 * ClockControlFile is one member's control file. Its offset starts at +0 (written at construction, before the
 * member's first start, so libfaketime never reads a missing file), and every write replaces the file whole
 * (written beside it, then renamed): libfaketime must never read a half-written offset. Writes during a run are
 * asynchronous (ext4 can hold a rename over an existing file for hundreds of milliseconds while the members fsync,
 * which would stall every client of the harness) and queued, so they land in the order they were asked for.
 */
export class ClockControlFile {
  private current = 0;
  private queue: Promise<void> = Promise.resolve();

  /** constructor creates the file with offset +0. */
  constructor(readonly path: string) {
    const text = formatOffset(0);
    writeFileSync(this.scratch, `${text}\n`);
    renameSync(this.scratch, this.path);
  }

  private get scratch(): string {
    return path.join(path.dirname(this.path), `.${path.basename(this.path)}.next`);
  }

  /** offsetSeconds is the offset the file holds, or will once the writes asked for have landed. */
  get offsetSeconds(): number {
    return this.current;
  }

  /**
   * set writes `seconds` (whole seconds, relative to the real clock) and resolves with the text written once the
   * file holds it; an invalid offset throws at once and writes nothing.
   */
  set(seconds: number): Promise<string> {
    const text = formatOffset(seconds);
    this.current = seconds;
    const written = this.queue.then(async () => {
      await writeFile(this.scratch, `${text}\n`);
      await rename(this.scratch, this.path);
    });
    // A failed write must not stop the later ones; the caller hears of it through `written`.
    this.queue = written.catch(() => undefined);
    return written.then(() => text);
  }
}
