// The stop of a `cairn server` process (docs/operations.md "Stopping"): its signal handlers, installed before the
// member's modules are even loaded (main.ts), so a SIGTERM or SIGINT at any moment of the process's life is handled,
// and the bound on how long a stop may take.
//
// - While the member starts (opening LevelDB, an empty member waiting for its peers in the bootstrap check, ...), the
//   first signal abandons the start: the start is told (abortSignal; the bootstrap check ends at once), what it
//   opened is closed, and the process exits 0 with `cairn server: stopped before it was ready`. A start still under
//   way at the stop's bound is cut short by the exit, as a crash would cut it; a member recovers from that at its
//   next start.
// - Once ready, the first signal stops the member; it exits 0 once LevelDB is closed.
// - Every later signal is logged and ignored: a stop is never cut short by an impatient second Ctrl-C. The stop is
//   bounded instead: stopTimeoutMs after the first signal the process exits anyway (1 for a member that was ready).
import type { Output } from './main.ts';

/** stopTimeoutMs bounds a stop, from the first signal (or fatal error) to the exit; past it the process exits anyway. */
export const stopTimeoutMs = 10_000;

/** stopSignals are the signals that stop a member. */
const stopSignals: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT'];

/** Stop tracks the stop of one `cairn server` process: whether it was asked for, by what, and in which phase. */
export class Stop {
  /** ready is true once the member printed `cairn ready`; a stop before that abandons the start. */
  ready = false;
  /** signal is the first stop signal received; null until then. Later signals are ignored. */
  private signal: NodeJS.Signals | null = null;
  private bounded = false;
  private resolveRequested: () => void = () => undefined;
  /** requested resolves at the first stop signal. */
  readonly requested = new Promise<void>((resolve) => (this.resolveRequested = resolve));
  private readonly aborter = new AbortController();
  /** abortSignal aborts at the first stop signal: a start that can stop early (the bootstrap check) does. */
  readonly abortSignal = this.aborter.signal;

  constructor(private readonly out: Output) {}

  /** signalled tells whether a stop signal has arrived. */
  get signalled(): boolean {
    return this.signal !== null;
  }

  /** listen installs the signal handlers; they stay for the process's life, so no signal ever kills it mid-stop. */
  listen(): void {
    for (const signal of stopSignals) process.on(signal, this.onSignal);
  }

  private readonly onSignal = (signal: NodeJS.Signals): void => {
    if (this.signal !== null) {
      this.out.stderr(`cairn server: ${signal} while stopping: ignored (the stop ends within ${stopTimeoutMs / 1000} s of the ${this.signal})\n`);
      return;
    }
    this.signal = signal;
    this.out.stderr(this.ready ? `cairn server: ${signal}: stopping\n` : `cairn server: ${signal} before the member was ready: abandoning the start\n`);
    this.bound();
    this.resolveRequested();
    this.aborter.abort();
  };

  /** bound arms the stop's time bound (once): past it the process exits, whatever the stop is still waiting for. */
  bound(): void {
    if (this.bounded) return;
    this.bounded = true;
    const timer = setTimeout(() => {
      if (this.ready) {
        this.out.stderr(`cairn server: the stop took more than ${stopTimeoutMs / 1000} s; exiting\n`);
        process.exit(1);
      }
      this.out.stderr(`cairn server: stopped before it was ready (the start did not end within ${stopTimeoutMs / 1000} s of the ${this.signal ?? 'signal'} and was cut short)\n`);
      process.exit(0);
    }, stopTimeoutMs);
    timer.unref();
  }
}
