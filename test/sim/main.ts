// `npm run sim`: run the deterministic simulator over seeds and report.
//   npm run sim -- --seeds N [--first-seed S]     run seeds S .. S+N-1 (S defaults to 1)
//   npm run sim -- --seed S                        run one seed (also --seed=S)
//   --bug NAME                                     plant a positive-control bug (see scenario.ts BugName)
//   --bias-only                                    with --bug: the bug's fault mix without the bug (must be clean)
//   --end-to-end                                   skip the direct checks of protocol rules (see safety-monitor.ts)
//   --safety-ms MS                                 make every seed's safety phase MS simulated milliseconds long
//   -v                                             print the full trace of every seed
// Exit codes: 0 clean, 1 crash (an exception in the core or the driver), 2 safety (an invariant or
// linearizability), 3 liveness. Each failure prints `reproduce: npm run sim -- --seed S` and the trace tail; the
// last line is a one-line summary.
import { exitCodes, parseArguments, reproduceCommand, type CliOptions } from './cli-args.ts';
import { runSeed, type RunOptions, type SeedResult } from './simulator.ts';
import { SimStats } from './stats.ts';

/** runOptions turns the command line into runSeed options. */
function runOptions(options: CliOptions, trace: 'none' | 'tail' | 'full'): RunOptions {
  const base: RunOptions = { bug: options.bug, plantBug: !options.biasOnly, trace, traceSink: (line) => console.log(line), directChecks: !options.endToEnd };
  return options.safetyMs === null ? base : { ...base, safetyMs: options.safetyMs };
}

function reportFailure(result: SeedResult, options: CliOptions): void {
  // The run is deterministic, so replaying it with the trace on gives the events that led to the failure.
  const replay = options.verbose ? result : runSeed(result.seed, runOptions(options, 'tail'));
  console.log(`\nseed ${result.seed}: ${result.outcome.toUpperCase()} failure`);
  console.log(result.message);
  console.log(`scenario:\n${result.scenario}`);
  console.log('trace tail:');
  for (const line of replay.traceTail) console.log(`  ${line}`);
  console.log(`reproduce: ${reproduceCommand(result.seed, options)}`);
}

/** summaryLine is the last line of a run: seeds, steps, elections, commits, client outcomes and faults by kind. */
function summaryLine(options: CliOptions, total: SimStats, failures: readonly SeedResult[], seconds: number, simulatedMs: number): string {
  const first = failures[0];
  const verdict = first === undefined ? 'all clean' : `${failures.length} failed (first: seed ${first.seed} ${first.outcome})`;
  const bug = options.bug === null ? '' : ` bug ${options.bug}${options.biasOnly ? ' (bias only)' : ''}`;
  const perSeedMs = (seconds * 1000) / Math.max(1, options.seeds);
  return (
    `sim: ${options.seeds} seeds from ${options.firstSeed}${bug}, ${verdict}; ${total.events} steps, ` +
    `${(simulatedMs / 1000).toFixed(0)} simulated s, ${total.elections} elections, ${total.commits} commits, ` +
    `${total.okWrites} ok writes, ${total.okReads} ok reads, ${total.unknownOps} unknown (checker steps per key <= ${total.checkerStepsMax}), ` +
    `${total.compactions} compactions, ` +
    `${total.snapshotRestores} snapshot installs, ${total.membershipCommitted} membership changes; ` +
    `faults: ${total.faultSummary()}; ${seconds.toFixed(1)} s wall, ${perSeedMs.toFixed(0)} ms/seed`
  );
}

function main(argv: readonly string[]): number {
  const options = parseArguments(argv);
  const total = new SimStats();
  const failures: SeedResult[] = [];
  const started = performance.now();
  let simulatedMs = 0;
  for (let seed = options.firstSeed; seed < options.firstSeed + options.seeds; seed++) {
    const result = runSeed(seed, runOptions(options, options.verbose ? 'full' : 'none'));
    total.add(result.stats);
    simulatedMs += result.simulatedMs;
    if (result.outcome !== 'clean') {
      failures.push(result);
      reportFailure(result, options);
    }
  }
  console.log(summaryLine(options, total, failures, (performance.now() - started) / 1000, simulatedMs));
  const first = failures[0];
  return first === undefined ? 0 : exitCodes[first.outcome];
}

try {
  process.exitCode = main(process.argv.slice(2));
} catch (error) {
  console.error(error instanceof Error ? error.message : String(error));
  process.exitCode = 64;
}
