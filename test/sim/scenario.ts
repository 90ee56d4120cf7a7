// Scenario: everything a seed decides before the run starts — cluster size, the cores' settings, the network's and
// the disk's behaviour, which faults happen how often, the workload and the phase lengths. Each field is drawn from a
// small menu, so across seeds every combination occurs, including extreme ones (one entry per message, no loss at
// all, a crash every 100 ms).
//
// Positive controls (a planted bug, see BugName) use the same menus: biasForBug only re-draws some fields from the
// same choices with different odds, so the clean runs explore every fault mix that the buggy runs do; the bias only
// makes the few mixes that expose a given bug more frequent, so it is caught within fewer seeds.
import type { Prng } from '../../src/raft/prng.ts';

/** BugName names a positive control: one known bug, planted in the core (testOnlyBugs) or in the simulator's driver. */
export type BugName = 'vote-without-persist' | 'commit-prior-term' | 'read-without-readindex' | 'ack-before-sync';

/** bugNames lists every positive control. */
export const bugNames: readonly BugName[] = ['vote-without-persist', 'commit-prior-term', 'read-without-readindex', 'ack-before-sync'];

/** FaultKind is one kind of fault the nemesis injects. */
export type FaultKind =
  | 'partition-isolate-leader'
  | 'partition-halves'
  | 'partition-bridge'
  | 'partition-one-way'
  | 'heal'
  | 'crash'
  | 'crash-leader'
  | 'crash-after-vote'
  | 'crash-after-ack'
  | 'isolate-new-leader'
  | 'pause'
  | 'membership'
  | 'transfer-leader';

/** faultKinds lists every FaultKind. */
export const faultKinds: readonly FaultKind[] = [
  'partition-isolate-leader',
  'partition-halves',
  'partition-bridge',
  'partition-one-way',
  'heal',
  'crash',
  'crash-leader',
  'crash-after-vote',
  'crash-after-ack',
  'isolate-new-leader',
  'pause',
  'membership',
  'transfer-leader',
];

/** CoreParams are the RaftConfig settings shared by every core of a seed. */
export interface CoreParams {
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  readonly inflightMessagesMax: number;
  readonly messageBytesMax: number;
  readonly uncommittedBytesMax: number;
  readonly committedBytesPerReadyMax: number;
  readonly snapshotChunkBytes: number;
  readonly pendingReadsMax: number;
}

/** NetworkParams shape message delivery while faults are on. */
export interface NetworkParams {
  readonly lossRate: number;
  readonly duplicateRate: number;
  readonly delayMinMs: number;
  readonly delayMaxMs: number;
  /** longDelayRate is the share of messages held much longer (up to longDelayMaxMs): reordering across heartbeats. */
  readonly longDelayRate: number;
  readonly longDelayMaxMs: number;
}

/** DiskParams shape the simulated fsync. */
export interface DiskParams {
  readonly syncLatencyMinMs: number;
  readonly syncLatencyMaxMs: number;
}

/** FaultParams say how often the nemesis acts and what it picks. */
export interface FaultParams {
  readonly intervalMinMs: number;
  readonly intervalMaxMs: number;
  /** weights is the relative frequency of each kind; 0 switches a kind off for this seed. */
  readonly weights: Readonly<Record<FaultKind, number>>;
  readonly downtimeMaxMs: number;
  readonly pauseMaxMs: number;
  readonly partitionMaxMs: number;
}

/** WorkloadParams shape the clients. */
export interface WorkloadParams {
  readonly clientCount: number;
  readonly keyCount: number;
  readonly thinkMaxMs: number;
  readonly readRate: number;
  readonly writeTimeoutMs: number;
  readonly readTimeoutMs: number;
}

/** CompactionParams say when a member snapshots its state machine and compacts its log. */
export interface CompactionParams {
  /** entriesMin is how many applied entries past the last snapshot make a compaction possible. */
  readonly entriesMin: number;
  /** rate is the chance to compact after a Ready once entriesMin is reached. */
  readonly rate: number;
}

/** Scenario is everything a seed decides up front. */
export interface Scenario {
  readonly clusterSize: number;
  readonly tickMs: number;
  readonly core: CoreParams;
  readonly network: NetworkParams;
  readonly disk: DiskParams;
  readonly faults: FaultParams;
  readonly workload: WorkloadParams;
  readonly compaction: CompactionParams;
  readonly safetyMs: number;
}

/** pick returns one element of a non-empty menu. */
export function pick<T>(prng: Prng, menu: readonly T[]): T {
  const value = menu[prng.nextInt(menu.length)];
  if (value === undefined) throw new Error('pick: empty menu');
  return value;
}

/** drawScenario draws a seed's scenario, biased toward the fault mixes that expose `bug` when one is planted. */
export function drawScenario(prng: Prng, bug: BugName | null): Scenario {
  const base: Scenario = {
    clusterSize: pick(prng, [1, 2, 3, 3, 3, 4, 5, 5]),
    tickMs: 10,
    core: drawCore(prng),
    network: drawNetwork(prng),
    disk: { syncLatencyMinMs: pick(prng, [0, 1]), syncLatencyMaxMs: pick(prng, [1, 3, 10, 25]) },
    faults: drawFaults(prng),
    workload: drawWorkload(prng),
    compaction: { entriesMin: pick(prng, [4, 16, 64]), rate: pick(prng, [0.05, 0.3, 1]) },
    safetyMs: pick(prng, [3000, 5000, 8000]),
  };
  return bug === null ? base : biasForBug(prng, base, bug);
}

function drawCore(prng: Prng): CoreParams {
  // An entry of this workload counts about 40 bytes (data + 16 in the core's accounting): 64 sends one entry per message.
  const messageBytesMax = pick(prng, [64, 256, 4096]);
  return {
    electionTicks: 10,
    heartbeatTicks: pick(prng, [1, 2]),
    preVote: prng.chance(0.75),
    checkQuorum: prng.chance(0.75),
    inflightMessagesMax: pick(prng, [1, 2, 8, 64]),
    messageBytesMax,
    // The core requires messageBytesMax <= uncommittedBytesMax and snapshotChunkBytes <= messageBytesMax.
    uncommittedBytesMax: Math.max(messageBytesMax, pick(prng, [256, 4096, 1 << 20])),
    committedBytesPerReadyMax: pick(prng, [32, 512, 1 << 20]),
    snapshotChunkBytes: Math.min(messageBytesMax, pick(prng, [16, 64, 4096])),
    pendingReadsMax: pick(prng, [4, 64]),
  };
}

function drawNetwork(prng: Prng): NetworkParams {
  return {
    lossRate: pick(prng, [0, 0.01, 0.05, 0.15]),
    duplicateRate: pick(prng, [0, 0.02, 0.1]),
    delayMinMs: pick(prng, [0, 1]),
    delayMaxMs: pick(prng, [2, 8, 30]),
    longDelayRate: pick(prng, [0, 0.01, 0.05]),
    longDelayMaxMs: pick(prng, [100, 400]),
  };
}

function drawFaults(prng: Prng): FaultParams {
  const weights = {} as Record<FaultKind, number>;
  for (const kind of faultKinds) weights[kind] = pick(prng, [0, 1, 1, 3]);
  const intervalMeanMs = pick(prng, [80, 250, 800]);
  return {
    intervalMinMs: Math.floor(intervalMeanMs / 2),
    intervalMaxMs: Math.floor((intervalMeanMs * 3) / 2),
    weights,
    downtimeMaxMs: pick(prng, [20, 300, 1500]),
    pauseMaxMs: pick(prng, [100, 800]),
    partitionMaxMs: pick(prng, [150, 600, 2000]),
  };
}

function drawWorkload(prng: Prng): WorkloadParams {
  return {
    clientCount: pick(prng, [2, 3, 4, 5]),
    keyCount: pick(prng, [1, 2, 3, 4]),
    thinkMaxMs: pick(prng, [5, 30, 100]),
    readRate: pick(prng, [0.2, 0.5]),
    writeTimeoutMs: pick(prng, [500, 1500]),
    readTimeoutMs: pick(prng, [300, 1000]),
  };
}

/**
 * biasForBug re-draws a few fields of `base` from the same menus with odds that expose `bug` sooner:
 * - vote-without-persist: a voter must forget its vote, so crash right after voting, come back fast, and see a
 *   second candidate of the same term (split votes: 3 or 5 voters, PreVote off more often).
 * - commit-prior-term: Figure 8 of the Raft paper needs leaders cut off with unreplicated entries and an older-term
 *   entry replicated without the new term's no-op, so one entry per message, leader isolation and loss.
 * - read-without-readindex: stale reads need reads on members that lag or were cut off from the leader.
 * - ack-before-sync: an acknowledged entry must be lost, so crash right after acknowledging, with slow fsyncs.
 */
export function biasForBug(prng: Prng, base: Scenario, bug: BugName): Scenario {
  const weights: Record<FaultKind, number> = { ...base.faults.weights };
  switch (bug) {
    case 'vote-without-persist':
      weights['crash-after-vote'] = 3;
      return {
        ...base,
        clusterSize: pick(prng, [3, 5]),
        core: { ...base.core, preVote: prng.chance(0.3) },
        faults: { ...base.faults, weights, downtimeMaxMs: 20 },
      };
    case 'commit-prior-term':
      weights['isolate-new-leader'] = 3;
      weights['partition-isolate-leader'] = 3;
      weights['crash-leader'] = 3;
      return {
        ...base,
        clusterSize: pick(prng, [3, 5]),
        core: {
          ...base.core,
          checkQuorum: false,
          inflightMessagesMax: 1,
          messageBytesMax: 64,
          snapshotChunkBytes: Math.min(64, base.core.snapshotChunkBytes),
          uncommittedBytesMax: 1 << 20,
        },
        workload: { ...base.workload, readRate: 0.2, thinkMaxMs: 5 },
        faults: { ...base.faults, weights, intervalMinMs: 40, intervalMaxMs: 120 },
      };
    case 'read-without-readindex':
      weights['partition-isolate-leader'] = 3;
      return {
        ...base,
        clusterSize: pick(prng, [3, 5]),
        workload: { ...base.workload, readRate: 0.5 },
        faults: { ...base.faults, weights },
      };
    case 'ack-before-sync':
      weights['crash-after-ack'] = 3;
      weights['crash-leader'] = 3;
      return {
        ...base,
        clusterSize: pick(prng, [3, 5]),
        disk: { syncLatencyMinMs: 1, syncLatencyMaxMs: 25 },
        faults: { ...base.faults, weights, downtimeMaxMs: 20 },
      };
    default: {
      const unknown: never = bug;
      throw new Error(`unknown bug ${String(unknown)}`);
    }
  }
}
