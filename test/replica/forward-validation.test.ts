// Goal: a forwarded write whose command is not a valid registry command is refused by the leader before it is
// proposed (CAIRN_INVALID_ARGUMENT in the ForwardResponse), so it never takes a log entry that every member would
// store and apply; a valid forwarded command is still proposed and applied. Found by the seeded peer-port fuzz
// campaign (test/replica/peer-fuzz.test.ts): random bytes sent as a ForwardRequest's command were appended,
// fsynced and applied (as a failure) by the leader. Peer calls are not authenticated yet, so the leader cannot trust
// that a forward comes from a member running its own checks.
// Method: a one-voter Replica over MemoryStorage with the real RegistryStateMachine, and a second transport on the
// same MemoryNetwork playing a peer that forwards writes (through the peer codec, as over gRPC).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { limits } from '../../src/limits.ts';
import { encodeCommand, decodeResult } from '../../src/cp/commands.ts';
import { RegistryStateMachine } from '../../src/cp/registry-state-machine.ts';
import { Replica, type ReplicaOptions } from '../../src/replica/replica.ts';
import { MemoryDisk, MemoryStorage } from '../../src/replica/memory-storage.ts';
import { MemoryNetwork } from '../../src/replica/memory-transport.ts';

const id = '127.0.1.252:8848';
const peer = '127.0.1.253:8848';
const quiet = { info: (): void => undefined, warn: (): void => undefined, error: (): void => undefined };
const raft: ReplicaOptions['raft'] = {
  electionTicks: 10, heartbeatTicks: 1, preVote: true, checkQuorum: true,
  inflightMessagesMax: 64, inflightBytesMax: 1 << 24, messageBytesMax: limits.messageBytesMax,
  uncommittedBytesMax: 1 << 24, committedBytesPerReadyMax: 1 << 24, snapshotChunkBytes: 1 << 20, pendingReadsMax: 64,
};

async function until(what: string, check: () => boolean, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`not within ${ms} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

test('the leader refuses a forwarded command that is no valid command before it enters the log', async () => {
  const network = new MemoryNetwork(limits);
  const storage = new MemoryStorage(new MemoryDisk());
  await storage.initialise({ clusterId: 'c1', memberId: id }, { voters: [id], learners: [] });
  const fatal: Error[] = [];
  const replica = await Replica.open({
    id, seed: 1, tickMs: 10, requestTimeoutMs: 2000, proposalsPendingMax: 1000, snapshotEntries: 1000, raft,
    storage, transport: network.transport(id), stateMachine: new RegistryStateMachine(), logger: quiet,
    onFatal: (error) => fatal.push(error),
  });
  const forwarder = network.transport(peer);
  await forwarder.start({ onMessage: () => undefined, onUnreachable: () => undefined, onForward: async () => ({ ok: false, code: 'CAIRN_NOT_LEADER', message: '', leaderHint: null }) });
  forwarder.setPeers([id]);
  try {
    await until('the replica to lead', () => replica.status().role === 'leader');
    await until('the no-op of its term to apply', () => replica.status().appliedIndex === replica.status().lastIndex);
    const before = replica.status().lastIndex;
    for (const command of [Uint8Array.from([0xfb, 0xba, 0xa0, 0xcd, 0x8d, 0x3e]), new Uint8Array(0), Uint8Array.from([0x0a, 0x02, 0x69, 0x64])]) {
      const response = await forwarder.forward(id, { command, deadlineMs: 1000 });
      assert.equal(response.ok, false, `forwarded ${Buffer.from(command).toString('hex')} was accepted`);
      assert.equal(response.ok ? '' : response.code, 'CAIRN_INVALID_ARGUMENT');
    }
    assert.equal(replica.status().lastIndex, before, 'a refused forward took a log entry');
    const valid = encodeCommand({ requestId: 'fwd-1', command: { type: 'deleteService', key: { namespace: 'public', group: 'DEFAULT_GROUP', service: 'none' } } });
    const response = await forwarder.forward(id, { command: valid, deadlineMs: 1000 });
    assert.ok(response.ok, 'a valid forwarded command is proposed');
    const result = decodeResult(response.result);
    assert.equal(result.ok ? '' : result.code, 'CAIRN_SERVICE_NOT_FOUND');
    assert.equal(replica.status().lastIndex, before + 1);
    assert.deepEqual(fatal, []);
  } finally {
    await forwarder.close();
    await replica.close();
  }
});
