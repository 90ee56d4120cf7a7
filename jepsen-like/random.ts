// random: the harness's seeded choices (which member, which op, which nemesis, how long), drawn from the same
// PRNG the Raft core uses, so a seed names a schedule. The members' own timing is not under our control, so a seed
// reproduces the schedule, not the interleaving.

import { Prng } from '../src/raft/prng.ts';

/** Random wraps a seeded Prng with the choices the harness makes. */
export class Random {
  private readonly prng: Prng;

  /** constructor seeds the generator; the same seed gives the same sequence of choices. */
  constructor(seed: number) {
    this.prng = new Prng(seed);
  }

  /** float returns a number in [0, 1). */
  float(): number {
    return this.prng.nextFloat();
  }

  /** int returns an integer in [0, maxExclusive). */
  int(maxExclusive: number): number {
    return this.prng.nextInt(maxExclusive);
  }

  /** between returns an integer in [min, max] (inclusive). */
  between(min: number, max: number): number {
    return min + this.prng.nextInt(Math.max(1, max - min + 1));
  }

  /** chance returns true with probability p. */
  chance(p: number): boolean {
    return this.prng.chance(p);
  }

  /** pick returns one element of a non-empty array. */
  pick<T>(items: readonly T[]): T {
    const item = items[this.prng.nextInt(items.length)];
    if (item === undefined) throw new RangeError('Random.pick: empty array');
    return item;
  }

  /** shuffle returns a shuffled copy (Fisher-Yates). */
  shuffle<T>(items: readonly T[]): T[] {
    const copy = items.slice();
    for (let i = copy.length - 1; i > 0; i--) {
      const j = this.prng.nextInt(i + 1);
      const a = copy[i] as T;
      copy[i] = copy[j] as T;
      copy[j] = a;
    }
    return copy;
  }

  /** fork derives an independent generator, so one component's draws do not shift another's. */
  fork(): Random {
    return new Random(this.prng.nextUint32());
  }
}

/** sleep resolves after `ms` milliseconds; the harness uses it only to pace load and schedule faults. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal === undefined) return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
  // With a signal, an abort ends the sleep early (resolves: the caller checks signal.aborted).
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, Math.max(0, ms));
    signal.addEventListener('abort', done, { once: true });
  });
}
