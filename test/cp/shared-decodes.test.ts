// Goal: sharing the proposer's decodings with apply (src/cp/shared-decodes.ts) changes nothing but the work done:
// the state reached, the keyspace written and every result are those of a member that decodes everything itself,
// and a kept form is never used for bytes that differ from the ones it was decoded from.
// Method: a NamingService over a direct proposer (which applies the very bytes it is given, as the Raft leader
// does) runs a mixed script and must hit the shared forms; its log is replayed into a fresh state machine with
// copies of the bytes (every decode a miss) and both snapshots, keyspaces and results must be equal. Then kept
// forms are offered bytes changed after the check, and results with payloads that are not shared.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RegistryStateMachine } from '../../src/cp/registry-state-machine.ts';
import { decodeCommand, decodeResult, encodeCommand, encodeResult, type CommandResult } from '../../src/cp/commands.ts';
import {
  decodeAppliedCommand,
  decodeProposedCommand,
  decodeProposedResult,
  shareResult,
  sharedDecodeStats,
} from '../../src/cp/shared-decodes.ts';
import { MemoryKeyspace } from '../support/direct-proposer.ts';
import { CpRegistry } from '../../src/cp/cp-registry.ts';
import { NamingService } from '../../src/naming/naming-service.ts';
import { DirectProposer } from '../support/direct-proposer.ts';

const context = { identity: null };
const orders = { namespace: 'public', group: 'DEFAULT_GROUP', service: 'orders' };

test('the proposer\'s decodings are used by apply, and the outcome is that of a member decoding everything', async () => {
  const machine = new RegistryStateMachine();
  const proposer = new DirectProposer(machine);
  const naming = new NamingService({ cp: new CpRegistry(proposer, machine) });
  const before = { ...sharedDecodeStats };
  const answers: unknown[] = [];
  answers.push(await naming.createService(context, { ...orders, protectThreshold: 0.5, metadata: { team: 'a' } }));
  for (let i = 0; i < 20; i++) {
    answers.push(await naming.registerInstance(context, { ...orders, ip: `10.0.0.${i}`, port: 80, ephemeral: false, metadata: { zone: `z${i % 3}`, app: 'x' } }));
  }
  answers.push(await naming.registerInstance(context, { ...orders, ip: '10.0.0.1', port: 80, ephemeral: false, metadata: { zone: 'z1', app: 'x' } }));
  answers.push(await naming.patchInstance(context, { ...orders, ip: '10.0.0.2', port: 80, weight: 3, ephemeral: false }));
  answers.push(await naming.deregisterInstance(context, { ...orders, ip: '10.0.0.3', port: 80, ephemeral: false }));
  answers.push(await naming.deregisterInstance(context, { ...orders, ip: '10.9.9.9', port: 80, ephemeral: false }));
  const retried = { ...context, requestId: 'same' };
  answers.push(await naming.registerInstance(retried, { ...orders, ip: '10.0.0.4', port: 80, ephemeral: false }));
  answers.push(await naming.registerInstance(retried, { ...orders, ip: '10.0.0.4', port: 80, ephemeral: false }));
  assert.deepEqual(answers.at(-1), answers.at(-2), 'a retried write answers its first result');
  await assert.rejects(naming.registerInstance(retried, { ...orders, ip: '10.0.0.5', port: 80, ephemeral: false }), /different write/);
  assert.ok(sharedDecodeStats.commandHits - before.commandHits >= 25, 'apply used the proposer\'s decoded commands');
  assert.ok(sharedDecodeStats.resultHits - before.resultHits >= 20, 'the proposer used apply\'s results');

  // A member that decodes everything: the same log, as copies of the bytes.
  const replica = new RegistryStateMachine();
  const keyspace = new MemoryKeyspace();
  const replayed: CommandResult[] = [];
  proposer.log.forEach((bytes, i) => {
    const batch = keyspace.batch();
    replayed.push(decodeResult(replica.apply(bytes.slice(), i + 1, 1, batch)));
    keyspace.commit(batch.writes);
  });
  assert.deepEqual(Buffer.from(replica.snapshot()), Buffer.from(machine.snapshot()));
  const all = async (space: MemoryKeyspace): Promise<Array<readonly [string, Uint8Array]>> => {
    const out: Array<readonly [string, Uint8Array]> = [];
    for await (const batch of space.entries()) out.push(...batch);
    return out;
  };
  assert.deepEqual(await all(keyspace), await all(proposer.keyspace));
  assert.equal(replayed.length, proposer.log.length);
  assert.deepEqual(await naming.listInstances(context, orders), await new NamingService({ cp: new CpRegistry(new DirectProposer(replica), replica) }).listInstances(context, orders));
  assert.equal(answers.length, 27);
});

test('a kept form is used only for the very same, unchanged bytes', () => {
  const envelope = (ip: string) => ({ requestId: 'r1', command: { type: 'registerInstance' as const, key: orders, instance: { cluster: 'DEFAULT', ip, port: 80, weight: 1, enabled: true, healthy: true, metadata: {} } } });
  const bytes = encodeCommand(envelope('10.0.0.1'));
  assert.ok(decodeProposedCommand(bytes).ok);
  // Changed after the check (same length: .1 -> .7): apply must see the new content.
  const at = Buffer.from(bytes).indexOf('10.0.0.1') + 7;
  bytes[at] = '7'.charCodeAt(0);
  assert.deepEqual(decodeAppliedCommand(bytes), decodeCommand(bytes));
  assert.deepEqual(decodeAppliedCommand(bytes), decodeCommand(encodeCommand(envelope('10.0.0.7'))));
  // A copy of checked bytes is another object: decoded afresh, to the same command.
  const other = encodeCommand(envelope('10.0.0.2'));
  decodeProposedCommand(other);
  const misses = sharedDecodeStats.commandMisses;
  assert.deepEqual(decodeAppliedCommand(other.slice()), decodeCommand(other));
  assert.equal(sharedDecodeStats.commandMisses, misses + 1);
  // Used once: a second apply of the same bytes decodes them.
  assert.deepEqual(decodeAppliedCommand(other), decodeCommand(other));
  assert.equal(sharedDecodeStats.commandMisses, misses + 1);
  assert.deepEqual(decodeAppliedCommand(other), decodeCommand(other));
  assert.equal(sharedDecodeStats.commandMisses, misses + 2);

  const removed: CommandResult = { ok: true, revision: 7, payload: { type: 'removed', removed: true } };
  const returned = encodeResult(removed);
  shareResult(returned, removed);
  returned[returned.length - 1] = 0; // removed: true -> false
  assert.deepEqual(decodeProposedResult(returned), decodeResult(returned));
  assert.notDeepEqual(decodeProposedResult(returned), removed);
  // Payloads that are not shared are always decoded.
  const service: CommandResult = { ok: true, revision: 3, payload: { type: 'service', service: { namespace: 'public', group: 'DEFAULT_GROUP', name: 'orders', protectThreshold: 0, metadata: {}, selector: { type: 'none' }, kind: null, revision: 3 } } };
  const serviceBytes = encodeResult(service);
  const serviceReturned = Uint8Array.prototype.slice.call(serviceBytes);
  shareResult(serviceReturned, service);
  const hits = sharedDecodeStats.resultHits;
  assert.deepEqual(decodeProposedResult(serviceReturned), decodeResult(serviceBytes));
  assert.equal(sharedDecodeStats.resultHits, hits);
});
