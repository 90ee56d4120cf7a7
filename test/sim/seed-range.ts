// runSeedRange: the helper of the seed tests: run a range of seeds and describe the unclean ones with the command
// that reproduces each.
import { reproduceCommand } from './cli-args.ts';
import type { BugName } from './scenario.ts';
import { runSeed, type RunOptions, type SeedResult } from './simulator.ts';

/** SeedRangeReport is the outcome of a range of seeds. */
export interface SeedRangeReport {
  readonly results: readonly SeedResult[];
  readonly failures: readonly SeedResult[];
  readonly wallMs: number;
}

/** runSeedRange runs seeds first .. first + count - 1 with `options`. */
export function runSeedRange(first: number, count: number, options: RunOptions = {}): SeedRangeReport {
  const started = performance.now();
  const results: SeedResult[] = [];
  for (let seed = first; seed < first + count; seed++) results.push(runSeed(seed, options));
  return { results, failures: results.filter((result) => result.outcome !== 'clean'), wallMs: performance.now() - started };
}

/** describeFailures renders each failure's outcome, its first message line and its reproduce command. */
export function describeFailures(failures: readonly SeedResult[], bug: BugName | null = null): string {
  return failures
    .map((result) => {
      const firstLine = result.message.split('\n')[0] ?? '';
      return `seed ${result.seed} ${result.outcome}: ${firstLine}\n  reproduce: ${reproduceCommand(result.seed, { bug, endToEnd: false, biasOnly: false })}`;
    })
    .join('\n');
}

/** firstSeedCaught returns the first seed in first .. first + count - 1 whose outcome is `outcome`, or null. */
export function firstSeedCaught(first: number, count: number, outcome: SeedResult['outcome'], options: RunOptions): SeedResult | null {
  for (let seed = first; seed < first + count; seed++) {
    const result = runSeed(seed, options);
    if (result.outcome === outcome) return result;
  }
  return null;
}
