// checkClientHistory: the end-of-seed linearizability check of the clients' history with test/checker (PEERS.md §3):
// per key, Porcupine-style search with a deterministic step budget. 'unknown' (budget exhausted) fails the seed just
// as 'illegal' does: an undecided history is never a pass.
import { checkOperations } from '../checker/linearizability.ts';
import { operationsFromHistory } from '../checker/history.ts';
import { kvInputFromEvent, kvModel, kvOutputFromEvent } from '../checker/models.ts';
import { checkerStepsMax } from './sim-limits.ts';
import { SafetyViolation } from './sim-errors.ts';
import type { SimHistoryEvent } from './workload.ts';

/** HistoryVerdict summarises the check: operations checked, search steps taken, and the most steps one key took. */
export interface HistoryVerdict {
  readonly operations: number;
  readonly steps: number;
  readonly partitionStepsMax: number;
}

/** checkClientHistory throws a SafetyViolation unless the history is linearizable within the budget. */
export function checkClientHistory(history: readonly SimHistoryEvent[]): HistoryVerdict {
  const operations = operationsFromHistory(history, kvInputFromEvent, kvOutputFromEvent);
  const report = checkOperations(kvModel, operations, { maxSteps: checkerStepsMax });
  const steps = report.partitions.reduce((sum, partition) => sum + partition.steps, 0);
  const partitionStepsMax = report.partitions.reduce((max, partition) => Math.max(max, partition.steps), 0);
  if (report.result === 'illegal') {
    throw new SafetyViolation('linearizability', `client history is not linearizable:\n${report.explanation}`);
  }
  if (report.result === 'unknown') {
    const sizes = report.partitions.map((partition) => `${partition.name}: ${partition.operations} ops`).join(', ');
    throw new SafetyViolation('linearizability', `checker budget exhausted (${checkerStepsMax} steps), history undecided (${sizes})`);
  }
  return { operations: operations.length, steps, partitionStepsMax };
}
