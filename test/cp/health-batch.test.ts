// Goal: the two commands of the active health checks, AssignProbers and SetHealthBatch, apply as the header of
// src/cp/registry-state-machine.ts says: the assignment's epoch is its entry's index and changes only with its
// members; a health batch is FENCED (refused whole, nothing written) when its term is older than its entry's term
// (a deposed or partitioned prober), when its assignment epoch is not the one in force, or when its prober is not
// an assigned member; each flip applies only to an existing, actively checked instance owned by the prober, and an
// applied flip moves the service's revision like any write. The assignment survives snapshot, restore and a reload
// of the keyspace, and the commands round-trip through their protobuf encoding and refuse malformed bytes.
// Method: scripted applies on RegistryStateMachine with explicit (index, term) per entry and an in-memory keyspace,
// checking results, reads and the keyspace; ownership is computed with probeOwner, as the health checker does.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  decodeCommand,
  decodeResult,
  encodeCommand,
  encodeMessage,
  type CommandResult,
  type HealthFlip,
  type RegistryCommand,
} from '../../src/cp/commands.ts';
import { RegistryStateMachine } from '../../src/cp/registry-state-machine.ts';
import { probeOwner, PROBE_MEMBERS_MAX } from '../../src/cp/probe-assignment.ts';
import { PROBE_ASSIGNMENT_STORAGE_KEY } from '../../src/cp/keyspace.ts';
import type { ServiceKey } from '../../src/naming/model.ts';
import { limits } from '../../src/limits.ts';
import { MemoryKeyspace } from '../support/direct-proposer.ts';

const svc: ServiceKey = { namespace: 'public', group: 'DEFAULT_GROUP', service: 'db' };
const members = ['10.0.0.1:8848', '10.0.0.2:8848', '10.0.0.3:8848'];

/** Log applies commands at increasing indexes, each in the term given (the term of the entry carrying it). */
class Log {
  readonly machine = new RegistryStateMachine();
  readonly keyspace = new MemoryKeyspace();
  index = 0;
  lastWrites = 0;

  run(command: RegistryCommand, term = 1): CommandResult {
    this.index += 1;
    const batch = this.keyspace.batch();
    const bytes = encodeCommand({ requestId: `req-${this.index}`, command });
    const result = decodeResult(this.machine.apply(bytes, this.index, term, batch));
    this.keyspace.commit(batch.writes);
    this.lastWrites = batch.writes.length;
    return result;
  }
}

function ok(result: CommandResult): Extract<CommandResult, { ok: true }> {
  assert.ok(result.ok, result.ok ? '' : `${result.code}: ${result.detail}`);
  return result;
}

function outcome(result: CommandResult): { applied: number; skipped: number; fenced: string } {
  const payload = ok(result).payload;
  assert.equal(payload.type, 'healthBatch');
  return payload.type === 'healthBatch' ? { applied: payload.applied, skipped: payload.skipped, fenced: payload.fenced } : { applied: -1, skipped: -1, fenced: '?' };
}

const tcpCluster: RegistryCommand = { type: 'putCluster', key: svc, config: { name: 'DEFAULT', healthChecker: { type: 'TCP' }, checkPort: 80, useInstancePort4Check: true, metadata: {} } };

/** ownedPort finds a port on 10.1.0.1 that `member` owns among `members`. */
function ownedPort(member: string, among: readonly string[] = members, from = 3306): number {
  for (let port = from; port < from + 1000; port++) if (probeOwner(among, '10.1.0.1', port) === member) return port;
  throw new Error(`no port owned by ${member}`);
}

function setup(log: Log, ports: readonly number[]): void {
  ok(log.run({ type: 'createService', key: svc, protectThreshold: 0, metadata: {}, selector: { type: 'none' }, kind: null }));
  ok(log.run(tcpCluster));
  for (const port of ports) {
    ok(log.run({ type: 'registerInstance', key: svc, instance: { cluster: 'DEFAULT', ip: '10.1.0.1', port, weight: 1, enabled: true, healthy: true, metadata: {} } }));
  }
}

const flip = (port: number, healthy: boolean): HealthFlip => ({ key: svc, address: { cluster: 'DEFAULT', ip: '10.1.0.1', port }, healthy });

test('AssignProbers sets the assignment with its entry index as epoch; the same members keep the epoch', () => {
  const log = new Log();
  assert.equal(log.machine.probeAssignment(), null);
  ok(log.run({ type: 'assignProbers', term: 1, members }));
  assert.deepEqual(log.machine.probeAssignment(), { epoch: 1, members, term: 1 });
  ok(log.run({ type: 'assignProbers', term: 2, members }, 2));
  assert.equal(log.machine.probeAssignment()?.epoch, 1, 'same members: the epoch stays');
  assert.equal(log.lastWrites, 1, 'only the request id is written');
  ok(log.run({ type: 'assignProbers', term: 2, members: members.slice(0, 2) }, 2));
  assert.deepEqual(log.machine.probeAssignment(), { epoch: 3, members: members.slice(0, 2), term: 2 });
});

test('AssignProbers from an older term than its entry is fenced and changes nothing', () => {
  const log = new Log();
  ok(log.run({ type: 'assignProbers', term: 3, members }, 3));
  const result = outcome(log.run({ type: 'assignProbers', term: 2, members: members.slice(1) }, 4));
  assert.equal(result.fenced, 'stale-term');
  assert.deepEqual(log.machine.probeAssignment()?.members, members);
});

test('SetHealthBatch applies the owner\'s flips, bumps the revision, and skips unchanged flips', () => {
  const log = new Log();
  const owner = members[0] ?? '';
  const port = ownedPort(owner);
  setup(log, [port]);
  ok(log.run({ type: 'assignProbers', term: 1, members }));
  const epoch = log.machine.probeAssignment()?.epoch ?? 0;
  const before = log.machine.getService(svc)?.revision ?? 0;
  // A probe-driven flip is a change like any write: subscribers hear it through the same hook (issue 4).
  const heard: number[] = [];
  log.machine.onServiceChanged((change) => {
    if (change.type === 'service') heard.push(change.index);
  });
  const result = outcome(log.run({ type: 'setHealthBatch', term: 1, prober: owner, assignment: epoch, flips: [flip(port, false)] }));
  assert.deepEqual(result, { applied: 1, skipped: 0, fenced: '' });
  assert.deepEqual(heard, [log.index], 'the applied flip was heard once, at its index');
  const instance = log.machine.getInstance({ ...svc, cluster: 'DEFAULT', ip: '10.1.0.1', port });
  assert.equal(instance?.healthy, false);
  assert.equal(instance?.version, 1, "a probe's verdict is not a client write: the instance's version stays");
  assert.equal(log.machine.getService(svc)?.revision, log.index, 'the flip moved the revision to its index');
  assert.ok(log.index > before);
  const again = outcome(log.run({ type: 'setHealthBatch', term: 1, prober: owner, assignment: epoch, flips: [flip(port, false)] }));
  assert.deepEqual(again, { applied: 0, skipped: 1, fenced: '' });
  assert.equal(heard.length, 1, 'an unchanged flip is not a change');
  assert.equal(log.lastWrites, 1, 'an unchanged flip writes only the request id');
});

test('SetHealthBatch is fenced by term: a batch stamped with an older term than its entry changes nothing', () => {
  const log = new Log();
  const owner = members[1] ?? '';
  const port = ownedPort(owner);
  setup(log, [port]);
  ok(log.run({ type: 'assignProbers', term: 1, members }));
  const epoch = log.machine.probeAssignment()?.epoch ?? 0;
  // The prober reached its verdict in term 1; the entry carrying it was appended by the leader of term 2.
  const result = outcome(log.run({ type: 'setHealthBatch', term: 1, prober: owner, assignment: epoch, flips: [flip(port, false)] }, 2));
  assert.deepEqual(result, { applied: 0, skipped: 1, fenced: 'stale-term' });
  assert.equal(log.machine.getInstance({ ...svc, cluster: 'DEFAULT', ip: '10.1.0.1', port })?.healthy, true);
  // A newer stamp than the entry's term is not stale (the prober heard of the new term first).
  assert.equal(outcome(log.run({ type: 'setHealthBatch', term: 3, prober: owner, assignment: epoch, flips: [flip(port, false)] }, 2)).fenced, '');
});

test('SetHealthBatch is fenced by assignment: verdicts reached before the shares moved are refused', () => {
  const log = new Log();
  const owner = members[2] ?? '';
  const port = ownedPort(owner);
  setup(log, [port]);
  ok(log.run({ type: 'assignProbers', term: 1, members }));
  const oldEpoch = log.machine.probeAssignment()?.epoch ?? 0;
  // The leader presumed `owner` dead and moved its share; later `owner` is back and owns the port again.
  ok(log.run({ type: 'assignProbers', term: 1, members: members.slice(0, 2) }));
  ok(log.run({ type: 'assignProbers', term: 1, members }));
  const result = outcome(log.run({ type: 'setHealthBatch', term: 1, prober: owner, assignment: oldEpoch, flips: [flip(port, false)] }));
  assert.equal(result.fenced, 'stale-assignment');
  assert.equal(log.machine.getInstance({ ...svc, cluster: 'DEFAULT', ip: '10.1.0.1', port })?.healthy, true);
});

test('SetHealthBatch from a member outside the assignment is fenced; flips of instances it does not own are skipped', () => {
  const log = new Log();
  const owner = members[0] ?? '';
  const other = members[1] ?? '';
  const port = ownedPort(owner);
  setup(log, [port]);
  ok(log.run({ type: 'assignProbers', term: 1, members }));
  const epoch = log.machine.probeAssignment()?.epoch ?? 0;
  assert.equal(outcome(log.run({ type: 'setHealthBatch', term: 1, prober: '10.9.9.9:8848', assignment: epoch, flips: [flip(port, false)] })).fenced, 'not-a-prober');
  assert.deepEqual(outcome(log.run({ type: 'setHealthBatch', term: 1, prober: other, assignment: epoch, flips: [flip(port, false)] })), { applied: 0, skipped: 1, fenced: '' });
  assert.equal(log.machine.getInstance({ ...svc, cluster: 'DEFAULT', ip: '10.1.0.1', port })?.healthy, true);
});

test('SetHealthBatch skips missing instances and clusters under the NONE checker, and applies the rest of the batch', () => {
  const log = new Log();
  const owner = members[0] ?? '';
  const first = ownedPort(owner);
  const second = ownedPort(owner, members, first + 1);
  setup(log, [first, second]);
  ok(log.run({ type: 'assignProbers', term: 1, members }));
  const epoch = log.machine.probeAssignment()?.epoch ?? 0;
  const missing = ownedPort(owner, members, second + 1);
  const result = outcome(log.run({ type: 'setHealthBatch', term: 1, prober: owner, assignment: epoch, flips: [flip(first, false), flip(missing, false), flip(second, false)] }));
  assert.deepEqual(result, { applied: 2, skipped: 1, fenced: '' });
  ok(log.run({ type: 'putCluster', key: svc, config: { name: 'DEFAULT', healthChecker: { type: 'NONE' }, checkPort: 80, useInstancePort4Check: true, metadata: {} } }));
  assert.deepEqual(outcome(log.run({ type: 'setHealthBatch', term: 1, prober: owner, assignment: epoch, flips: [flip(first, true)] })), { applied: 0, skipped: 1, fenced: '' });
});

test('the assignment survives snapshot/restore and a keyspace reload', async () => {
  const log = new Log();
  ok(log.run({ type: 'assignProbers', term: 4, members }, 4));
  assert.ok(log.keyspace.values.has(PROBE_ASSIGNMENT_STORAGE_KEY));
  const restored = new RegistryStateMachine();
  const batch = new MemoryKeyspace().batch();
  restored.restore(log.machine.snapshot(), batch);
  assert.deepEqual(restored.probeAssignment(), log.machine.probeAssignment());
  assert.ok(batch.writes.some((write) => write.key === PROBE_ASSIGNMENT_STORAGE_KEY));
  const loaded = new RegistryStateMachine();
  await loaded.load(log.keyspace.entries());
  assert.deepEqual(loaded.probeAssignment(), { epoch: 1, members, term: 4 });
  assert.deepEqual(loaded.snapshot(), log.machine.snapshot(), 'equal states give equal snapshot bytes');
  // A state without an assignment keeps the snapshot bytes it had before the field existed.
  assert.equal(new RegistryStateMachine().snapshot().length, encodeMessage('RegistrySnapshot', { formatVersion: 1 }).length);
});

test('the commands round-trip and malformed ones are refused', () => {
  const batchCommand: RegistryCommand = { type: 'setHealthBatch', term: 7, prober: members[0] ?? '', assignment: 5, flips: [flip(3306, false), flip(3307, true)] };
  const decoded = decodeCommand(encodeCommand({ requestId: 'r1', command: batchCommand }));
  assert.ok(decoded.ok);
  if (decoded.ok) assert.deepEqual(decoded.envelope.command, batchCommand);
  const assign: RegistryCommand = { type: 'assignProbers', term: 2, members };
  const decodedAssign = decodeCommand(encodeCommand({ requestId: 'r2', command: assign }));
  assert.ok(decodedAssign.ok);
  if (decodedAssign.ok) assert.deepEqual(decodedAssign.envelope.command, assign);
  const refused = (command: RegistryCommand): void => {
    const result = decodeCommand(encodeCommand({ requestId: 'r3', command }));
    assert.equal(result.ok, false, JSON.stringify(command).slice(0, 80));
  };
  refused({ type: 'assignProbers', term: 1, members: [] });
  refused({ type: 'assignProbers', term: 1, members: ['b:1', 'a:1'] });
  refused({ type: 'assignProbers', term: 1, members: ['a:1', 'a:1'] });
  refused({ type: 'assignProbers', term: 1, members: Array.from({ length: PROBE_MEMBERS_MAX + 1 }, (_, i) => `m${String(i).padStart(3, '0')}:1`) });
  refused({ type: 'setHealthBatch', term: 1, prober: '', assignment: 1, flips: [] });
  refused({ type: 'setHealthBatch', term: 1, prober: 'a b', assignment: 1, flips: [] });
  refused({ type: 'setHealthBatch', term: 1, prober: 'a:1', assignment: 1, flips: Array.from({ length: limits.healthFlipsPerEntryMax + 1 }, (_, i) => flip(i + 1, false)) });
  refused({ type: 'setHealthBatch', term: 1, prober: 'a:1', assignment: 1, flips: [{ key: svc, address: { cluster: 'DEFAULT', ip: 'not an ip!', port: 1 }, healthy: true }] });
});

test('probeOwner spreads instances evenly and moves only the leaving member\'s share', () => {
  const counts = new Map<string, number>();
  let moved = 0;
  let movedFromOthers = 0;
  const survivors = members.slice(0, 2);
  for (let port = 1; port <= 3000; port++) {
    const owner = probeOwner(members, '10.2.0.1', port) ?? '';
    counts.set(owner, (counts.get(owner) ?? 0) + 1);
    const after = probeOwner(survivors, '10.2.0.1', port);
    if (after !== owner) {
      moved += 1;
      if (owner !== members[2]) movedFromOthers += 1;
    }
  }
  for (const member of members) assert.ok(Math.abs((counts.get(member) ?? 0) - 1000) < 120, `${member}: ${counts.get(member)} of 3000`);
  assert.equal(movedFromOthers, 0, 'survivors keep their instances');
  assert.equal(moved, counts.get(members[2] ?? ''), 'exactly the leaver\'s share moves');
  assert.equal(probeOwner([], '10.2.0.1', 1), null);
});
