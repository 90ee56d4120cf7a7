// One-line renderings of messages, Ready batches and scenarios for the trace (`-v`) and for failure reports.
import type { Message, Ready } from '../../src/raft/types.ts';
import { assertNever } from './hash.ts';
import type { Scenario } from './scenario.ts';

/** describeMessage renders a message as "AppendRequest n1->n2 t3 prev 4/2 entries 5..7 commit 4". */
export function describeMessage(message: Message): string {
  const head = `${message.type} ${message.from}->${message.to} t${message.term}`;
  switch (message.type) {
    case 'PreVoteRequest':
    case 'VoteRequest':
      return `${head} last ${message.lastLogIndex}/${message.lastLogTerm}`;
    case 'PreVoteResponse':
    case 'VoteResponse':
      return `${head} ${message.granted ? 'granted' : 'rejected'}`;
    case 'AppendRequest': {
      const first = message.entries[0]?.index;
      const range = first === undefined ? 'none' : `${first}..${first + message.entries.length - 1}`;
      return `${head} prev ${message.prevLogIndex}/${message.prevLogTerm} entries ${range} commit ${message.commit}`;
    }
    case 'AppendResponse':
      return message.success
        ? `${head} ok match ${message.matchIndex}`
        : `${head} reject ${message.rejectedIndex} hint ${message.conflictIndex}/${message.conflictTerm}`;
    case 'HeartbeatRequest':
      return `${head} commit ${message.commit} round ${message.readRound}`;
    case 'HeartbeatResponse':
      return `${head} round ${message.readRound}${message.missingFrom === undefined ? '' : ` missing from ${message.missingFrom}`}`;
    case 'SnapshotRequest':
      return `${head} snapshot ${message.meta.index}/${message.meta.term} bytes ${message.offset}+${message.data.length}/${message.totalBytes}${message.done ? ' done' : ''}`;
    case 'SnapshotResponse':
      return `${head} snapshot ${message.index} next ${message.nextOffset}${message.installed ? ' installed' : ''}`;
    case 'TimeoutNow':
      return head;
    case 'ReadIndexRequest':
      return `${head} ctx ${message.context}`;
    case 'ReadIndexResponse':
      return `${head} ctx ${message.context} index ${message.index}${message.rejected ? ' rejected' : ''}`;
    default:
      return assertNever(message);
  }
}

/** describeReady renders a Ready's contents in one line. */
export function describeReady(ready: Ready): string {
  const parts: string[] = [];
  if (ready.softState !== null) parts.push(`soft ${ready.softState.role} t${ready.softState.term} leader ${String(ready.softState.leader)}`);
  if (ready.hardState !== null) parts.push(`hard t${ready.hardState.term} vote ${String(ready.hardState.vote)} commit ${ready.hardState.commit}`);
  if (ready.snapshot !== null) parts.push(`snapshot ${ready.snapshot.meta.index}/${ready.snapshot.meta.term}`);
  const first = ready.entries[0];
  if (first !== undefined) parts.push(`entries ${first.index}..${first.index + ready.entries.length - 1} (t${first.term}..)`);
  const committed = ready.committedEntries[0];
  if (committed !== undefined) parts.push(`apply ${committed.index}..${committed.index + ready.committedEntries.length - 1}`);
  if (ready.messages.length > 0) parts.push(`${ready.messages.length} msgs`);
  if (ready.readStates.length > 0) parts.push(`reads ${ready.readStates.map((r) => `${r.context}@${r.index}`).join(',')}`);
  if (ready.droppedReads.length > 0) parts.push(`dropped reads ${ready.droppedReads.join(',')}`);
  parts.push(ready.mustSync ? 'sync' : 'nosync');
  return parts.join(', ');
}

/** describeScenario renders a seed's scenario in a few readable lines. */
export function describeScenario(scenario: Scenario): string {
  const { core, network, disk, faults, workload, compaction } = scenario;
  const weights = Object.entries(faults.weights)
    .filter(([, weight]) => weight > 0)
    .map(([kind, weight]) => `${kind}:${weight}`)
    .join(' ');
  return [
    `cluster ${scenario.clusterSize}, tick ${scenario.tickMs} ms, safety phase ${scenario.safetyMs} ms`,
    `core: election ${core.electionTicks} heartbeat ${core.heartbeatTicks} preVote ${core.preVote} checkQuorum ${core.checkQuorum} ` +
      `inflight ${core.inflightMessagesMax} msgBytes ${core.messageBytesMax} uncommitted ${core.uncommittedBytesMax} ` +
      `readyBytes ${core.committedBytesPerReadyMax} chunk ${core.snapshotChunkBytes} reads ${core.pendingReadsMax}`,
    `network: loss ${network.lossRate} dup ${network.duplicateRate} delay ${network.delayMinMs}..${network.delayMaxMs} ms ` +
      `long ${network.longDelayRate} up to ${network.longDelayMaxMs} ms; disk sync ${disk.syncLatencyMinMs}..${disk.syncLatencyMaxMs} ms`,
    `faults every ${faults.intervalMinMs}..${faults.intervalMaxMs} ms: ${weights || 'none'}; downtime <= ${faults.downtimeMaxMs} ms, ` +
      `pause <= ${faults.pauseMaxMs} ms, partition <= ${faults.partitionMaxMs} ms`,
    `workload: ${workload.clientCount} clients, ${workload.keyCount} keys, think <= ${workload.thinkMaxMs} ms, reads ${workload.readRate}; ` +
      `compaction after ${compaction.entriesMin} entries at rate ${compaction.rate}`,
  ].join('\n');
}
