// clock: the clocks a member reads, and why it does not read Date.now() for durations (docs/operations.md
// "Clocks").
//
// The wall clock (Date.now, CLOCK_REALTIME) is stepped: by NTP when it finds the clock off by more than its slew
// threshold, by an operator, by a VM restored from a snapshot. A timeout measured on it stretches or shrinks by the
// step: a +60 s step made every pending request time out at once and made the AP layer believe every client had been
// silent for a minute (each instance it owned removed), a -1 h step made a request deadline an hour away. So:
// - durations and deadlines read monotonicMs() (CLOCK_MONOTONIC through performance.now(): never stepped, only its
//   rate is disciplined by NTP);
// - the AP layer reads steadyWallMs(): epoch milliseconds (its versions are compared across members, so it must be
//   wall time) that advance at the monotonic rate and follow a step of the wall clock only by slewing, at most
//   slewRate of the elapsed time, as ntpd does within its 500 ppm. A member started with a wrong clock converges to
//   the corrected one; a step of 60 s is absorbed over 60 / slewRate seconds, and no duration measured on the clock
//   is off by more than slewRate of itself.
// - gRPC deadlines are wall-clock instants (grpc-js takes a Date or epoch milliseconds): grpcDeadline converts a
//   monotonic deadline at the moment of the call, so a step between taking the deadline and making the call moves
//   nothing.

/** monotonicMs is milliseconds on the monotonic clock; only differences between two readings mean anything. */
export function monotonicMs(): number {
  return performance.now();
}

/** grpcDeadline converts a deadline on the monotonic clock into the wall-clock instant grpc-js expects, now. */
export function grpcDeadline(monotonicDeadlineMs: number): number {
  return Date.now() + Math.max(0, monotonicDeadlineMs - monotonicMs());
}

/** slewRate is the largest share of elapsed time by which SteadyWallClock moves toward a stepped wall clock. */
export const slewRate = 0.005;

/**
 * SteadyWallClock reads epoch milliseconds that never step: between two readings it advances by the monotonic time
 * elapsed, corrected toward the wall clock by at most slewRate of that time. Readings never decrease (the correction
 * is smaller than the elapsed time) and are whole milliseconds. The clocks are parameters so tests can step them.
 */
export class SteadyWallClock {
  private lastMonotonicMs: number;
  private valueMs: number;

  constructor(
    private readonly wallMs: () => number = Date.now,
    private readonly monotonic: () => number = monotonicMs,
    private readonly rate: number = slewRate,
  ) {
    this.lastMonotonicMs = monotonic();
    this.valueMs = wallMs();
  }

  /** now reads the clock. */
  now(): number {
    const monotonic = this.monotonic();
    // A monotonic clock does not go back; a reading that did (a stubbed clock in a test) counts as no time passed.
    const elapsedMs = Math.max(0, monotonic - this.lastMonotonicMs);
    this.lastMonotonicMs = monotonic;
    const errorMs = this.wallMs() - (this.valueMs + elapsedMs);
    const boundMs = elapsedMs * this.rate;
    this.valueMs += elapsedMs + Math.max(-boundMs, Math.min(boundMs, errorMs));
    return Math.floor(this.valueMs);
  }

  /** offsetMs is how far the wall clock stands from this clock now (positive: the wall clock is ahead). */
  offsetMs(): number {
    return this.wallMs() - this.now();
  }
}

/** processSteadyWall is the member's one steady wall clock (every AP component reads the same one). */
export const processSteadyWall = new SteadyWallClock();

/** steadyWallMs reads processSteadyWall. */
export function steadyWallMs(): number {
  return processSteadyWall.now();
}
