// Goal: pin the driver's group commit (src/replica/replica.ts proposeLocally, proposeQueued): the writes that arrive
// before a Ready join the log as one proposal, so each follower receives them in one AppendRequest and answers it
// once, and the commit that follows costs one notice per follower (proposed one by one, a burst of 64 writes sent 64
// appends to each follower, took 64 answers from each and sent 64 commit notices back). And the writes that wait in
// the queue keep the driver's promises: a leader that loses its leadership before their Ready sends them on to the new
// leader (never written twice, never lost), a write whose deadline passes in the queue is refused as not written and
// never applied, a closing member refuses what it queued, and one oversized write in a batch is refused alone.
// Method: three in-memory replicas (MemoryStorage, MemoryNetwork) with a state machine that records each command
// under its index; the followers' traffic is counted by wrapping each transport's send; a storage whose next
// writeReady can be held (HeldStorage) keeps a Ready in flight while writes queue behind it. Ids 127.0.1.92-94 name
// the members only: no socket is opened.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { CairnError } from '../../src/errors.ts';
import { limits } from '../../src/limits.ts';
import type { Message } from '../../src/raft/types.ts';
import { MemoryDisk, MemoryStorage } from '../../src/replica/memory-storage.ts';
import { MemoryNetwork } from '../../src/replica/memory-transport.ts';
import { Replica, type ReplicaOptions } from '../../src/replica/replica.ts';
import type { ApplyBatch, ReplicatedStateMachine } from '../../src/replica/state-machine.ts';
import type { KeyspaceBatch, ReadyWrite } from '../../src/replica/storage.ts';

const ids = ['127.0.1.92:8848', '127.0.1.93:8848', '127.0.1.94:8848'];
const quiet = { info: (): void => undefined, warn: (): void => undefined, error: (): void => undefined };
const text = (value: string): Uint8Array => new TextEncoder().encode(value);
const messageBytesMax = 64 * 1024;
const raft: ReplicaOptions['raft'] = {
  electionTicks: 10, heartbeatTicks: 1, preVote: true, checkQuorum: true,
  inflightMessagesMax: 64, inflightBytesMax: 1 << 24, messageBytesMax,
  uncommittedBytesMax: 1 << 24, committedBytesPerReadyMax: 1 << 24, snapshotChunkBytes: 32 * 1024, pendingReadsMax: 64,
};

/** CommandLog records every applied command by index; apply answers the command itself. */
class CommandLog implements ReplicatedStateMachine {
  readonly applied = new Map<number, string>();
  apply(command: Uint8Array, index: number, _term: number, batch: ApplyBatch): Uint8Array {
    this.applied.set(index, new TextDecoder().decode(command));
    batch.put(`k${String(index).padStart(8, '0')}`, command);
    return command;
  }
  async load(entries: AsyncIterable<KeyspaceBatch>): Promise<void> {
    for await (const batch of entries) for (const [key, value] of batch) this.applied.set(Number(key.slice(1)), new TextDecoder().decode(value));
  }
  snapshot(): Uint8Array {
    return text(JSON.stringify([...this.applied]));
  }
  *snapshotPieces(): Generator<Uint8Array, void, void> {
    yield this.snapshot();
  }
  restore(data: Uint8Array, batch: ApplyBatch): void {
    this.applied.clear();
    for (const [index, value] of JSON.parse(new TextDecoder().decode(data)) as Array<[number, string]>) {
      this.applied.set(index, value);
      batch.put(`k${String(index).padStart(8, '0')}`, text(value));
    }
  }
  /** count tells how often `value` was applied. */
  count(value: string): number {
    let n = 0;
    for (const applied of this.applied.values()) if (applied === value) n += 1;
    return n;
  }
}

/** HeldStorage is MemoryStorage whose writeReady calls wait while hold() is in force, until release(). */
class HeldStorage extends MemoryStorage {
  private gate: Promise<void> | null = null;
  private open: (() => void) | null = null;
  held = 0;
  hold(): void {
    this.gate = new Promise<void>((resolve) => {
      this.open = resolve;
    });
  }
  release(): void {
    this.open?.();
    this.gate = null;
    this.open = null;
  }
  override async writeReady(write: ReadyWrite, sync: boolean): Promise<void> {
    if (this.gate !== null) {
      this.held += 1;
      await this.gate;
    }
    return super.writeReady(write, sync);
  }
}

interface Member {
  readonly id: string;
  readonly replica: Replica;
  readonly machine: CommandLog;
  readonly storage: HeldStorage;
  /** sent lists every message this member's transport was handed. */
  readonly sent: Message[];
}

async function openGroup(network: MemoryNetwork): Promise<Member[]> {
  return Promise.all(ids.map(async (id, i) => {
    const storage = new HeldStorage(new MemoryDisk());
    await storage.initialise({ clusterId: 'c1', memberId: id }, { voters: [...ids], learners: [] });
    const machine = new CommandLog();
    const transport = network.transport(id);
    const sent: Message[] = [];
    // The seam: count what the driver hands the transport, then send it as before.
    const send = transport.send.bind(transport);
    transport.send = (message: Message): void => {
      sent.push(message);
      send(message);
    };
    const replica = await Replica.open({
      id, seed: i + 1, tickMs: 10, requestTimeoutMs: 5000, proposalsPendingMax: 4096, snapshotEntries: 1_000_000, raft,
      storage, transport, stateMachine: machine, logger: quiet, onFatal: (error) => assert.fail(error),
    });
    return { id, replica, machine, storage, sent };
  }));
}

async function until(what: string, check: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`not within ${ms} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function leaderOf(group: readonly Member[]): Promise<Member> {
  await until('one leader', () => group.filter((member) => member.replica.status().role === 'leader').length === 1);
  return group.find((member) => member.replica.status().role === 'leader') as Member;
}

async function closeAll(group: readonly Member[]): Promise<void> {
  for (const member of group) member.storage.release();
  await Promise.all(group.map((member) => member.replica.close()));
}

/**
 * withGroup runs `body` on three fresh members once one leads and has committed a first write ('warm', which also
 * settles its no-op), and closes them all afterwards, also on failure.
 */
async function withGroup(body: (group: Member[], leader: Member, network: MemoryNetwork) => Promise<void>): Promise<void> {
  const network = new MemoryNetwork(limits);
  const group = await openGroup(network);
  try {
    const leader = await leaderOf(group);
    await leader.replica.propose(text('warm'));
    await body(group, leader, network);
  } finally {
    await closeAll(group);
  }
}

const appendsWithEntries = (messages: readonly Message[], to: string): Array<Extract<Message, { type: 'AppendRequest' }>> =>
  messages.filter((message): message is Extract<Message, { type: 'AppendRequest' }> => message.type === 'AppendRequest' && message.to === to && message.entries.length > 0);

test('a burst of 64 writes reaches each follower in one AppendRequest and commits with a notice or two, not 64 of each', () => withGroup(async (group, leader) => {
  const followers = group.filter((member) => member !== leader);
  // The first write settled the new leader's no-op and every follower's progress into pipelined replication.
  await until('every member applied the first write', () => group.every((member) => member.machine.count('warm') === 1));
  for (const member of group) member.sent.length = 0;

  const answers = await Promise.all(Array.from({ length: 64 }, (_, i) => leader.replica.propose(text(`w${i}`))));
  assert.deepEqual(answers.map((answer) => new TextDecoder().decode(answer)), Array.from({ length: 64 }, (_, i) => `w${i}`));
  await until('every member applied the burst', () => group.every((member) => member.machine.applied.size === 65));

  for (const follower of followers) {
    const appends = appendsWithEntries(leader.sent, follower.id);
    assert.equal(appends.length, 1, `${follower.id} got ${appends.length} appends carrying entries (${appends.map((append) => append.entries.length).join()})`);
    assert.equal(appends[0]?.entries.length, 64);
    // One answer to the append; a commit notice sent before this follower's answer arrived asks for one more, and on a
    // loaded machine (a tick passing mid-burst) so may a second one: at most one answer per append, never one per write.
    const toFollower = leader.sent.filter((message) => message.to === follower.id && message.type === 'AppendRequest');
    const answersSent = follower.sent.filter((message) => message.type === 'AppendResponse' && message.to === leader.id);
    assert.ok(toFollower.length <= 3, `${follower.id} got ${toFollower.length} appends`);
    assert.ok(answersSent.length >= 1 && answersSent.length <= toFollower.length, `${follower.id} answered ${answersSent.length} times to ${toFollower.length} appends`);
  }
  // Every member applied the burst in order, once each.
  for (const member of group) {
    const burst = [...member.machine.applied.entries()].filter(([, value]) => /^w\d+$/.test(value)).sort((a, b) => a[0] - b[0]).map(([, value]) => value);
    assert.deepEqual(burst, Array.from({ length: 64 }, (_, i) => `w${i}`), member.id);
  }
}));

test('writes queued behind a Ready when the leader is deposed go to the new leader: each applied exactly once on every member', () => withGroup(async (group, old, network) => {
  // Hold the old leader's next write: the Ready that carries `first` stays in flight, and what follows queues.
  old.storage.hold();
  const first = old.replica.propose(text('first')).then(() => 'ok', (error: unknown) => (error instanceof CairnError ? error.code : String(error)));
  await until('the Ready with the first write is held', () => old.storage.held > 0);
  const queued = Array.from({ length: 8 }, (_, i) => old.replica.propose(text(`q${i}`)));
  // The followers elect a leader of their own, then the old one hears of it and steps down with its Ready held.
  network.isolate(old.id);
  const others = group.filter((member) => member !== old);
  await until('a new leader among the others', () => others.some((member) => member.replica.status().role === 'leader'));
  network.healAll();
  await until('the old leader stepped down', () => old.replica.status().role !== 'leader');
  old.storage.release();
  const results = await Promise.all(queued.map((write) => write.then((answer) => new TextDecoder().decode(answer))));
  assert.deepEqual(results, Array.from({ length: 8 }, (_, i) => `q${i}`));
  // The first write was in the old leader's log only: it was dropped or its outcome is unknown, never both ways.
  const firstOutcome = await first;
  await until('every member applied every queued write', () => group.every((member) => Array.from({ length: 8 }, (_, i) => member.machine.count(`q${i}`)).every((n) => n === 1)));
  for (const member of group) {
    assert.ok(member.machine.count('first') <= 1, `${member.id} applied the first write ${member.machine.count('first')} times (${firstOutcome})`);
    for (let i = 0; i < 8; i++) assert.equal(member.machine.count(`q${i}`), 1, `${member.id}: q${i}`);
  }
}));

test('a write whose deadline passes in the queue is refused as not written and never applied; a closing member refuses what it queued', () => withGroup(async (group, leader) => {
  leader.storage.hold();
  const inFlight = leader.replica.propose(text('in-flight')).catch((error: unknown) => error);
  await until('a Ready is held', () => leader.storage.held > 0);
  const late = await leader.replica.propose(text('late'), { timeoutMs: 50 }).then(() => null, (error: unknown) => error);
  assert.ok(late instanceof CairnError && late.code === 'CAIRN_PROPOSAL_DROPPED', `late: ${String(late)}`);
  const atClose = leader.replica.propose(text('at-close')).then(() => null, (error: unknown) => error);
  const closing = leader.replica.close();
  leader.storage.release();
  await closing;
  const refused = await atClose;
  assert.ok(refused instanceof CairnError && refused.code === 'CAIRN_SHUTTING_DOWN', `at close: ${String(refused)}`);
  await inFlight;
  // The in-flight write may still commit through the others (a new leader), the refused ones never do.
  const others = group.filter((member) => member !== leader);
  await until('the others elect a leader', () => others.some((member) => member.replica.status().role === 'leader'));
  const next = others.find((member) => member.replica.status().role === 'leader') as Member;
  await next.replica.propose(text('after'));
  await until('the others applied a write after the close', () => others.every((member) => member.machine.count('after') === 1));
  for (const member of group) {
    assert.equal(member.machine.count('late'), 0, `${member.id} applied a write refused as not written`);
    assert.equal(member.machine.count('at-close'), 0, `${member.id} applied a write refused at close`);
  }
}));

test('one oversized write in a batch is refused alone; the others of its Ready commit', () => withGroup(async (group, leader) => {
  const writes = [text('a'), text('b'), new Uint8Array(messageBytesMax), text('c')];
  const outcomes = await Promise.all(writes.map((write) => leader.replica.propose(write).then(
    (answer) => new TextDecoder().decode(answer).slice(0, 8),
    (error: unknown) => (error instanceof CairnError ? error.code : String(error)),
  )));
  assert.deepEqual(outcomes, ['a', 'b', 'CAIRN_ENTRY_TOO_LARGE', 'c']);
  await until('every member applied a, b and c', () => group.every((member) => ['a', 'b', 'c'].every((value) => member.machine.count(value) === 1)));
}));
