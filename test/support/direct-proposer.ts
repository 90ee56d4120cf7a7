// direct-proposer: a CommandProposer for tests that applies each command straight to a RegistryStateMachine, as a
// one-member Raft group whose log commits at once: indexes 1, 2, 3, ... in term 1, every apply's batch committed to
// an in-memory keyspace. This is a legitimate seam (STYLE.md §2): tests of the registry and of the HTTP and gRPC
// routes are not tests of Raft, which has its own (test/raft, test/sim).
//
// API: createDirectNaming() for route tests; DirectProposer and MemoryKeyspace for the registry's own tests;
// soleLeader() for the Raft status a health checker reads from such a group.

import type { RaftStatus } from '../../src/raft/raft-core.ts';
import type { CommandProposer, ProposeOptions } from '../../src/replica/proposer.ts';
import type { ApplyBatch, BatchWrite } from '../../src/replica/state-machine.ts';
import { CpRegistry } from '../../src/cp/cp-registry.ts';
import { RegistryStateMachine, type RegistryStateMachineOptions } from '../../src/cp/registry-state-machine.ts';
import { NamingService } from '../../src/naming/naming-service.ts';
import type { KeyspaceBatch } from '../../src/replica/storage.ts';

/** MemoryKeyspace is the state machine's keyspace in memory: each batch is committed whole, like the driver's LevelDB batch. */
export class MemoryKeyspace {
  readonly values = new Map<string, Uint8Array>();

  /** batch returns a fresh batch; commit(batch.writes) applies it. */
  batch(): ApplyBatch & { readonly writes: BatchWrite[] } {
    const writes: BatchWrite[] = [];
    return {
      writes,
      put: (key, value) => writes.push({ type: 'put', key, value }),
      del: (key) => writes.push({ type: 'del', key }),
    };
  }

  /** commit applies a batch's writes in order. */
  commit(writes: readonly BatchWrite[]): void {
    for (const write of writes) {
      if (write.type === 'put') this.values.set(write.key, write.value);
      else this.values.delete(write.key);
    }
  }

  /** clear removes every key (what the driver does before a restore). */
  clear(): void {
    this.values.clear();
  }

  /** entries iterates the keyspace in key order, as LevelDB would. */
  async *entries(): AsyncIterable<KeyspaceBatch> {
    const keys = [...this.values.keys()].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    const records: Array<readonly [string, Uint8Array]> = [];
    for (const key of keys) {
      const value = this.values.get(key);
      if (value !== undefined) records.push([key, value]);
    }
    // Small batches, so that loading crosses batch boundaries as a real keyspace does.
    for (let i = 0; i < records.length; i += 7) yield records.slice(i, i + 7);
  }
}

/** DirectProposer applies every proposal at the next index in term 1; linearizableBarrier resolves at once. */
export class DirectProposer implements CommandProposer {
  readonly keyspace = new MemoryKeyspace();
  /** log holds every proposed command, so a test can replay it into another state machine. */
  readonly log: Uint8Array[] = [];
  barriers = 0;
  private index = 0;

  constructor(readonly stateMachine: RegistryStateMachine) {}

  /** propose applies the command at once and resolves with its encoded result. */
  async propose(command: Uint8Array, _options?: ProposeOptions): Promise<Uint8Array> {
    this.index += 1;
    this.log.push(command);
    const batch = this.keyspace.batch();
    const result = this.stateMachine.apply(command, this.index, 1, batch);
    this.keyspace.commit(batch.writes);
    return result;
  }

  /** linearizableBarrier counts the barrier; every applied write is already visible. */
  async linearizableBarrier(_options?: ProposeOptions): Promise<void> {
    this.barriers += 1;
  }
}

/** DirectNaming is what createDirectNaming returns. */
export interface DirectNaming {
  readonly naming: NamingService;
  readonly stateMachine: RegistryStateMachine;
}

/** createDirectNaming builds a NamingService over a fresh RegistryStateMachine and a DirectProposer. */
export function createDirectNaming(options: RegistryStateMachineOptions = {}): DirectNaming {
  const stateMachine = new RegistryStateMachine(options);
  const cp = new CpRegistry(new DirectProposer(stateMachine), stateMachine);
  return { naming: new NamingService({ cp }), stateMachine };
}

/**
 * soleLeader is the Raft status source of a group that `proposer` commits for: `self` leads term 1 and has applied
 * everything proposed so far (`voters`: the configuration, `self` alone by default).
 */
export function soleLeader(self: string, proposer: DirectProposer, voters: readonly string[] = [self]): { status(): RaftStatus } {
  return {
    status: (): RaftStatus => ({
      id: self, role: 'leader', term: 1, vote: self, leader: self, commitIndex: proposer.log.length, appliedIndex: proposer.log.length,
      lastIndex: proposer.log.length, snapshotIndex: 0, membership: { voters: [...voters], learners: [] }, ticksSinceLeaderContact: 0, progress: {},
    }),
  };
}
