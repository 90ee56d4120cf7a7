// The command line of `npm run sim`: parsing (both `--seed S` and `--seed=S` forms), exit codes and the reproduce
// command printed for a failing seed.
import { bugNames, type BugName } from './scenario.ts';
import type { Outcome } from './simulator.ts';

/** exitCodes maps a run's outcome to the process exit code: 0 clean, 1 crash, 2 safety, 3 liveness. */
export const exitCodes: Readonly<Record<Outcome, number>> = { clean: 0, crash: 1, safety: 2, liveness: 3 };

/** CliOptions are the parsed command-line options. */
export interface CliOptions {
  readonly firstSeed: number;
  readonly seeds: number;
  readonly bug: BugName | null;
  readonly verbose: boolean;
  readonly endToEnd: boolean;
  readonly biasOnly: boolean;
  /** safetyMs overrides every seed's safety-phase length, or null. */
  readonly safetyMs: number | null;
}

/** parseArguments reads the command line; throws an Error with a usage hint on anything it does not know. */
export function parseArguments(argv: readonly string[]): CliOptions {
  const options = { firstSeed: 1, seeds: 1, bug: null as BugName | null, verbose: false, endToEnd: false, biasOnly: false, safetyMs: null as number | null };
  // `--seed=7` is read as `--seed 7`.
  const args = argv.flatMap((arg) => {
    const equals = arg.indexOf('=');
    return arg.startsWith('--') && equals > 0 ? [arg.slice(0, equals), arg.slice(equals + 1)] : [arg];
  });
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const next = (): string => {
      const value = args[++i];
      if (value === undefined) throw new Error(`${String(arg)} needs a value`);
      return value;
    };
    if (arg === '--seeds') options.seeds = integer(next(), '--seeds');
    else if (arg === '--first-seed') options.firstSeed = integer(next(), '--first-seed');
    else if (arg === '--seed') {
      options.firstSeed = integer(next(), '--seed');
      options.seeds = 1;
    } else if (arg === '--bug') options.bug = bugName(next());
    else if (arg === '-v' || arg === '--verbose') options.verbose = true;
    else if (arg === '--end-to-end') options.endToEnd = true;
    else if (arg === '--bias-only') options.biasOnly = true;
    else if (arg === '--safety-ms') options.safetyMs = integer(next(), '--safety-ms');
    else throw new Error(`unknown argument ${String(arg)}; usage: npm run sim -- --seeds N [--first-seed S] | --seed S [--bug NAME [--bias-only]] [--end-to-end] [--safety-ms MS] [-v]`);
  }
  return options;
}

function integer(text: string, flag: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 0) throw new Error(`${flag} needs a non-negative integer, got ${text}`);
  return value;
}

function bugName(text: string): BugName {
  const found = bugNames.find((name) => name === text);
  if (found === undefined) throw new Error(`unknown bug ${text}; one of: ${bugNames.join(', ')}`);
  return found;
}

/** reproduceCommand is the command line that replays one seed. */
export function reproduceCommand(seed: number, options: Pick<CliOptions, 'bug' | 'endToEnd' | 'biasOnly'> & { readonly safetyMs?: number | null }): string {
  const flags = [
    options.bug === null ? '' : ` --bug ${options.bug}`,
    options.biasOnly ? ' --bias-only' : '',
    options.endToEnd ? ' --end-to-end' : '',
    options.safetyMs === null || options.safetyMs === undefined ? '' : ` --safety-ms ${options.safetyMs}`,
  ];
  return `npm run sim -- --seed ${seed}${flags.join('')}`;
}

