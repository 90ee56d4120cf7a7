// Goal: pin the driver's write path (src/replica/replica.ts processReady): committed entries are applied and answered
// before their Ready's one storage write (entries, hard state, applied batch and index together). What must hold:
// the stored applied index never passes the stored log, it reaches the in-memory one without further traffic,
// snapshots (which need the stored applied index) still happen, and a restart from the disk rebuilds exactly what
// was answered.
// Method: a one-voter Replica over MemoryStorage (its MemoryDisk is inspectable and outlives the store, so a new
// store over it is a restart) and the in-memory transport, with a state machine that stores each command under its
// index; no timing assertion beyond "within a bounded wait".
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { limits } from '../../src/limits.ts';
import { catchUpTrail, Replica, type ReplicaMetrics, type ReplicaOptions, type SnapshotEvent } from '../../src/replica/replica.ts';
import { MemoryDisk, MemoryStorage } from '../../src/replica/memory-storage.ts';
import { MemoryNetwork } from '../../src/replica/memory-transport.ts';
import type { ApplyBatch, ReplicatedStateMachine } from '../../src/replica/state-machine.ts';
import type { KeyspaceBatch } from '../../src/replica/storage.ts';

const id = '127.0.1.250:8848';
const tickMs = 10;

/** LogMachine stores every command under its zero-padded index; its state is the map of those. */
class LogMachine implements ReplicatedStateMachine {
  readonly values = new Map<string, string>();
  apply(command: Uint8Array, index: number, _term: number, batch: ApplyBatch): Uint8Array {
    const key = `k${String(index).padStart(8, '0')}`;
    this.values.set(key, new TextDecoder().decode(command));
    batch.put(key, command);
    return command;
  }
  async load(entries: AsyncIterable<KeyspaceBatch>): Promise<void> {
    this.values.clear();
    for await (const batch of entries) for (const [key, value] of batch) this.values.set(key, new TextDecoder().decode(value));
  }
  snapshot(): Uint8Array {
    return new TextEncoder().encode(JSON.stringify([...this.values]));
  }
  /** snapshotPieces captures now and yields the snapshot one byte at a time (the driver pauses between pieces). */
  *snapshotPieces(): Generator<Uint8Array, void, void> {
    const bytes = this.snapshot();
    for (let i = 0; i < bytes.length; i++) yield bytes.subarray(i, i + 1);
  }
  restore(data: Uint8Array, batch: ApplyBatch): void {
    this.values.clear();
    for (const [key, value] of JSON.parse(new TextDecoder().decode(data)) as Array<[string, string]>) {
      this.values.set(key, value);
      batch.put(key, new TextEncoder().encode(value));
    }
  }
}

const quiet = { info: (): void => undefined, warn: (): void => undefined, error: (): void => undefined };

/** raft is the core configuration of every replica these tests open. */
const raft: ReplicaOptions['raft'] = {
  electionTicks: 10, heartbeatTicks: 1, preVote: true, checkQuorum: true,
  inflightMessagesMax: 64, inflightBytesMax: 1 << 24, messageBytesMax: limits.messageBytesMax,
  uncommittedBytesMax: 1 << 24, committedBytesPerReadyMax: 1 << 24, snapshotChunkBytes: 1 << 20, pendingReadsMax: 64,
};

async function open(disk: MemoryDisk, machine: LogMachine, fatal: Error[], snapshotEntries = 1000, storage = new MemoryStorage(disk), tick = tickMs, seed = 1): Promise<Replica> {
  if ((await storage.load()) === null) await storage.initialise({ clusterId: 'c1', memberId: id }, { voters: [id], learners: [] });
  const network = new MemoryNetwork(limits);
  const options: ReplicaOptions = {
    id, seed, tickMs: tick, requestTimeoutMs: 2000, proposalsPendingMax: 1000, snapshotEntries,
    raft,
    storage, transport: network.transport(id), stateMachine: machine, logger: quiet,
    onFatal: (error) => fatal.push(error),
  };
  return Replica.open(options);
}

const text = (value: string): Uint8Array => new TextEncoder().encode(value);

/** SnapshotCounts counts a member's snapshot events as its metrics would (cairn_raft_snapshots_total). */
class SnapshotCounts implements ReplicaMetrics {
  readonly counts: Record<SnapshotEvent, number> = { compacted: 0, image_encoded: 0, installed: 0 };
  fsyncSeconds(): void { /* not counted here */ }
  readyBatch(): void { /* not counted here */ }
  proposal(): void { /* not counted here */ }
  snapshot(event: SnapshotEvent): void {
    this.counts[event] += 1;
  }
}

/** TurnCounter counts event-loop turns (a setImmediate that schedules itself again) from start() to stop(). */
class TurnCounter {
  turns = 0;
  private running = false;
  start(): void {
    this.running = true;
    const turn = (): void => {
      this.turns += 1;
      if (this.running) setImmediate(turn);
    };
    setImmediate(turn);
  }
  stop(): void {
    this.running = false;
  }
}

async function until(what: string, check: () => boolean, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`not within ${ms} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, tickMs));
  }
}

test('answered writes reach the stored keyspace and applied index without further traffic; a restart rebuilds them', async () => {
  const disk = new MemoryDisk();
  const machine = new LogMachine();
  const fatal: Error[] = [];
  const replica = await open(disk, machine, fatal);
  try {
    await until('the lone voter leads', () => replica.status().role === 'leader');
    const answers: string[] = [];
    for (let i = 0; i < 20; i++) answers.push(new TextDecoder().decode(await replica.propose(text(`w${i}`))));
    assert.deepEqual(answers, Array.from({ length: 20 }, (_, i) => `w${i}`));
    const image = (): NonNullable<MemoryDisk['image']> => {
      assert.ok(disk.image !== null);
      return disk.image;
    };
    const lastIndex = (): number => image().snapshot.index + image().entries.length;
    // Never an applied index beyond the stored log.
    assert.ok(image().applied <= lastIndex(), `applied ${image().applied} <= last ${lastIndex()}`);
    // 21 entries: the leader's no-op and the 20 writes. The answers came before their Ready's write finished and
    // before advance(), so the in-memory and the stored applied index are compared once both settled.
    await until('the stored applied index reaches the in-memory one', () => replica.status().appliedIndex === 21 && image().applied === 21);
    assert.equal(image().state.size, 20, 'every write reached the stored keyspace');
  } finally {
    await replica.close();
  }
  assert.deepEqual(fatal, []);
  const reloaded = new LogMachine();
  const restarted = await open(disk, reloaded, fatal);
  try {
    await until('the restarted voter leads', () => restarted.status().role === 'leader');
    assert.deepEqual([...reloaded.values.values()].sort(), Array.from({ length: 20 }, (_, i) => `w${i}`).sort());
  } finally {
    await restarted.close();
  }
});

test('the log is compacted every snapshotEntries applied entries: the stored keyspace becomes the snapshot, no image is encoded or stored, and a restart rebuilds the state from the keyspace', async () => {
  const disk = new MemoryDisk();
  let imagesEncoded = 0;
  class CountingPieces extends LogMachine {
    override *snapshotPieces(): Generator<Uint8Array, void, void> {
      imagesEncoded++;
      yield* super.snapshotPieces();
    }
  }
  const machine = new CountingPieces();
  const fatal: Error[] = [];
  const replica = await open(disk, machine, fatal, 5);
  const compactions: number[] = [];
  try {
    await until('the lone voter leads', () => replica.status().role === 'leader');
    for (let i = 0; i < 40; i++) {
      await replica.propose(text(`s${i}`));
      const index = disk.image?.snapshot.index ?? 0;
      if (index > (compactions[compactions.length - 1] ?? 0)) compactions.push(index);
    }
    await until('the log was compacted near the end', () => (disk.image?.snapshot.index ?? 0) >= 30, 5000);
    const image = disk.image;
    assert.ok(image !== null);
    assert.equal(image.snapshotData, null, 'no image is stored: the keyspace is the snapshot');
    assert.ok(image.applied >= image.snapshot.index, `the stored keyspace (applied ${image.applied}) covers the snapshot at ${image.snapshot.index}`);
    assert.equal(image.entries[0]?.index ?? image.snapshot.index + 1, image.snapshot.index + 1, 'the log holds only the entries after the snapshot');
    assert.equal(replica.status().snapshotIndex, image.snapshot.index, 'the core dropped the same prefix');
  } finally {
    await replica.close();
  }
  assert.deepEqual(fatal, [], 'no storage contract was broken (compactLog refuses an index past the stored applied)');
  // 5 x [1, 1.5) entries apart: 41 entries give several compactions, not one per entry.
  assert.ok(compactions.length >= 3 && compactions.length <= 9, `compacted at ${compactions.join(', ')}`);
  assert.equal(imagesEncoded, 0, 'a lone voter never encodes an image: no follower needed one');
  const reloaded = new LogMachine();
  const restarted = await open(disk, reloaded, fatal, 5);
  try {
    await until('the restarted voter leads', () => restarted.status().role === 'leader');
    assert.equal(reloaded.values.size, 40);
  } finally {
    await restarted.close();
  }
});

test('a Ready that only moves the commit index writes nothing alone: its hard state and applied batch join the next write, or are written a tick later; a crash before that loses nothing answered', async () => {
  /** CountingStorage counts the writes of Readys (writeReady) that reach the store. */
  class CountingStorage extends MemoryStorage {
    writes = 0;
    override writeReady(...args: Parameters<MemoryStorage['writeReady']>): Promise<void> {
      this.writes += 1;
      return super.writeReady(...args);
    }
  }
  const disk = new MemoryDisk();
  const machine = new LogMachine();
  const fatal: Error[] = [];
  const storage = new CountingStorage(disk);
  // A long tick, so the one-tick bound on a deferred write does not pass between two of these writes.
  const replica = await open(disk, machine, fatal, 1000, storage, 200);
  let crashImage: MemoryDisk['image'] = null;
  try {
    await until('the lone voter leads', () => replica.status().role === 'leader', 5000);
    await until('the no-op is stored', () => (disk.image?.applied ?? 0) >= 1, 5000);
    const before = storage.writes;
    const writes = 20;
    for (let i = 0; i < writes; i++) await replica.propose(text(`d${i}`));
    // Each write is one Ready that appends (fsynced) and one that commits and applies; the second rides along with
    // the next write, so 20 writes cost about 20 storage writes, not 40.
    const used = storage.writes - before;
    assert.ok(used <= writes + 3, `${used} storage writes for ${writes} writes`);
    // The last write's commit and apply are still held: the stored applied index lags the answered one.
    assert.equal(replica.status().appliedIndex, writes + 1);
    assert.ok((disk.image?.applied ?? 0) < writes + 1, `the stored applied index (${disk.image?.applied}) waits for a later write`);
    // A crash now: the disk as it is, without what the driver still holds.
    crashImage = structuredClone(disk.image);
    await until('a tick later the held write reached the store', () => disk.image?.applied === writes + 1 && disk.image.state.size === writes, 2000);
  } finally {
    await replica.close();
  }
  assert.deepEqual(fatal, []);
  const crashed = new MemoryDisk();
  crashed.image = crashImage;
  const reloaded = new LogMachine();
  const restarted = await open(crashed, reloaded, fatal);
  try {
    await until('the restarted voter leads', () => restarted.status().role === 'leader');
    await until('the restarted voter applied the log', () => reloaded.values.size === 20);
    assert.deepEqual([...reloaded.values.values()].sort(), Array.from({ length: 20 }, (_, i) => `d${i}`).sort());
  } finally {
    await restarted.close();
  }
  assert.deepEqual(fatal, []);
});

test('every storage write that carries keyspace records is fsynced, the deferred ones (written a tick later) too', async () => {
  /** SyncRecordingStorage records, for each writeReady that carries an applied batch, whether it asked for fsync. */
  class SyncRecordingStorage extends MemoryStorage {
    readonly appliedWrites: boolean[] = [];
    override writeReady(...args: Parameters<MemoryStorage['writeReady']>): Promise<void> {
      const [write, sync] = args;
      if ((write.applied ?? null) !== null) this.appliedWrites.push(sync);
      return super.writeReady(...args);
    }
  }
  const disk = new MemoryDisk();
  const fatal: Error[] = [];
  const storage = new SyncRecordingStorage(disk);
  const replica = await open(disk, new LogMachine(), fatal, 1000, storage, 50);
  try {
    await until('the lone voter leads', () => replica.status().role === 'leader', 5000);
    for (let i = 0; i < 10; i++) await replica.propose(text(`f${i}`));
    // The last write's apply is deferred: with no write after it, the tick writes it alone.
    await until('the deferred apply reached the store', () => disk.image?.applied === 11, 2000);
  } finally {
    await replica.close();
  }
  assert.deepEqual(fatal, []);
  assert.ok(storage.appliedWrites.length >= 2, `keyspace records were written (${storage.appliedWrites.length} writes)`);
  assert.deepEqual(storage.appliedWrites.filter((sync) => !sync), [], 'none of them without fsync');
});

test('members applying the same entries compact their logs at different indexes: each threshold is scaled by a factor in [1, 1.5) drawn from the member\'s seed', async () => {
  const firstSnapshots: number[] = [];
  for (const seed of [11, 12, 13, 14]) {
    const disk = new MemoryDisk();
    const fatal: Error[] = [];
    const replica = await open(disk, new LogMachine(), fatal, 20, new MemoryStorage(disk), tickMs, seed);
    try {
      await until('the lone voter leads', () => replica.status().role === 'leader');
      for (let i = 0; i < 40; i++) await replica.propose(text(`x${i}`));
      await until('the log was compacted', () => (disk.image?.snapshot.index ?? 0) > 0, 5000);
      firstSnapshots.push(disk.image?.snapshot.index ?? 0);
    } finally {
      await replica.close();
    }
    assert.deepEqual(fatal, []);
  }
  // 20 entries x [1, 1.5): from the 20th entry after the bootstrap to the 30th, never later; the snapshot is taken 10
  // entries (the catch-up trail, half the interval) before the applied index then.
  for (const index of firstSnapshots) assert.ok(index >= 10 && index <= 21, `snapshot at ${index}`);
  assert.ok(new Set(firstSnapshots).size >= 3, `four members, snapshots at ${firstSnapshots.join(', ')}`);
});

test('the catch-up trail is half the snapshot interval, at most 10 000 entries', () => {
  assert.deepEqual([1, 5, 20, 40, 10_000, 20_000, 1_000_000].map(catchUpTrail), [0, 2, 10, 20, 5_000, 10_000, 10_000]);
});

/** CutOffOutcome is what cutOffAcrossCompaction saw: where c stood when the leader compacted, and the images. */
interface CutOffOutcome {
  readonly behind: { readonly cLast: number; readonly leaderApplied: number; readonly snapshot: number };
  readonly imagesEncoded: number;
  /** counts are each member's snapshot events (its metrics). */
  readonly counts: ReadonlyMap<string, Record<SnapshotEvent, number>>;
  readonly leaderId: string;
  readonly cInstalledImage: boolean;
}

/**
 * cutOffAcrossCompaction runs three replicas compacting every 20 entries (and `catchUpEntries` as
 * snapshotCatchUpEntries when given), cuts the third off for at most 6 writes at a time, heals and lets it catch up,
 * until the leader compacts while it is cut off; then it waits until the third holds every write.
 */
async function cutOffAcrossCompaction(catchUpEntries: number | undefined): Promise<CutOffOutcome> {
  const members = ['127.0.1.247:8848', '127.0.1.248:8848', '127.0.1.249:8848'];
  const c = members[2] as string;
  let imagesEncoded = 0;
  class CountingPieces extends LogMachine {
    override *snapshotPieces(): Generator<Uint8Array, void, void> {
      imagesEncoded++;
      yield* super.snapshotPieces();
    }
  }
  const snapshotEntries = 20;
  const network = new MemoryNetwork(limits);
  const fatal: Error[] = [];
  const machines = new Map<string, LogMachine>();
  const disks = new Map<string, MemoryDisk>();
  const replicas = new Map<string, Replica>();
  const metrics = new Map<string, SnapshotCounts>();
  let outcome: CutOffOutcome;
  try {
    for (const [i, member] of members.entries()) {
      const disk = new MemoryDisk();
      const storage = new MemoryStorage(disk);
      await storage.initialise({ clusterId: 'c4', memberId: member }, { voters: members, learners: [] });
      const machine = new CountingPieces();
      machines.set(member, machine);
      disks.set(member, disk);
      const counts = new SnapshotCounts();
      metrics.set(member, counts);
      replicas.set(member, await Replica.open({
        id: member, seed: 200 + i, tickMs, requestTimeoutMs: 5000, proposalsPendingMax: 1000, snapshotEntries,
        ...(catchUpEntries === undefined ? {} : { snapshotCatchUpEntries: catchUpEntries }),
        raft, storage, transport: network.transport(member), stateMachine: machine, logger: quiet, metrics: counts,
        onFatal: (error) => fatal.push(error),
      }));
    }
    const leaderOf = (): Replica | undefined => [...replicas.values()].find((replica) => replica.status().role === 'leader' && replica.status().id !== c);
    await until('a or b leads', () => leaderOf() !== undefined, 10_000);
    const leader = leaderOf();
    assert.ok(leader !== undefined);
    const follower = replicas.get(c);
    assert.ok(follower !== undefined);
    const leaderSnapshot = (): number => disks.get(leader.status().id)?.image?.snapshot.index ?? 0;
    // Cut c off for at most 6 writes at a time, caught up in between, until the leader compacts while c is behind.
    let behind: CutOffOutcome['behind'] | null = null;
    for (let round = 0; round < 20 && behind === null; round++) {
      const before = leaderSnapshot();
      network.isolate(c);
      const cLast = follower.status().lastIndex;
      for (let i = 0; i < 6 && behind === null; i++) {
        await leader.propose(text(`t${round}.${i}`));
        await new Promise((resolve) => setTimeout(resolve, 3 * tickMs));
        if (leaderSnapshot() > before) behind = { cLast, leaderApplied: leader.status().appliedIndex, snapshot: leaderSnapshot() };
      }
      network.healAll();
      const target = leader.status().appliedIndex;
      await until('c caught up', () => follower.status().appliedIndex >= target, 5000);
    }
    assert.ok(behind !== null, 'the leader compacted while c was cut off');
    // Compacted at its applied index, the leader would have dropped entries c lacks, and c would need an image.
    assert.ok(behind.cLast < behind.leaderApplied, `c (last ${behind.cLast}) was behind the leader (applied ${behind.leaderApplied})`);
    await until('c holds every write', () => machines.get(c)?.values.size === machines.get(leader.status().id)?.values.size, 5000);
    outcome = {
      behind, imagesEncoded, leaderId: leader.status().id,
      counts: new Map([...metrics].map(([member, counted]) => [member, { ...counted.counts }])),
      cInstalledImage: (disks.get(c)?.image?.snapshotData ?? null) !== null || (metrics.get(c)?.counts.installed ?? 0) > 0,
    };
  } finally {
    for (const replica of replicas.values()) await replica.close();
  }
  // After the members closed, as the other tests of this file check it (a failure above keeps its own message).
  assert.deepEqual(fatal, []);
  return outcome;
}

test('a follower a few entries behind when the leader compacts goes on from the log: a compaction keeps a catch-up trail of half the interval, and no image is encoded', async () => {
  const { behind, imagesEncoded, counts, leaderId, cInstalledImage } = await cutOffAcrossCompaction(undefined);
  assert.ok(behind.snapshot <= behind.leaderApplied - 20 / 2, `the snapshot at ${behind.snapshot} trails the applied index ${behind.leaderApplied} by half the interval`);
  assert.ok(behind.snapshot <= behind.cLast, `the leader kept the entries after ${behind.cLast}: its snapshot is at ${behind.snapshot}`);
  assert.equal(imagesEncoded, 0, 'no image was encoded: c went on from the log');
  assert.equal(cInstalledImage, false, 'c installed no snapshot');
  assert.ok((counts.get(leaderId)?.compacted ?? 0) >= 1, 'the leader counted its compaction');
  for (const [member, counted] of counts) assert.deepEqual([counted.image_encoded, counted.installed], [0, 0], `${member} encoded or installed no image`);
});

test('with snapshotCatchUpEntries 0 (--snapshot-catchup-entries 0) the same follower needs the whole state as an image: the trail is what spares it', async () => {
  const { behind, imagesEncoded, counts, leaderId, cInstalledImage } = await cutOffAcrossCompaction(0);
  assert.ok(behind.snapshot > behind.cLast, `the leader compacted past c's last entry ${behind.cLast}: its snapshot is at ${behind.snapshot}`);
  assert.ok(imagesEncoded >= 1, 'the leader encoded an image for c');
  assert.equal(cInstalledImage, true, 'c installed the image');
  assert.ok((counts.get(leaderId)?.image_encoded ?? 0) >= 1, `the leader counted its image: ${JSON.stringify(counts.get(leaderId))}`);
});

test('a follower behind a compacted log gets an image the leader encodes on demand in slices, and restores it in slices: other work runs between the steps of both, and it ends with the leader\'s state', async () => {
  const members = ['127.0.1.251:8848', '127.0.1.252:8848', '127.0.1.253:8848'];
  const [a, b, c] = members as [string, string, string];
  const loop = new TurnCounter();
  const seenByRestore: number[] = [];
  const seenByEncoding: number[] = [];
  /**
   * SlicedMachine encodes its image in 60 pieces and restores it in 60 steps of ~1 ms of work each, as a large
   * registry's encoding and restore do.
   */
  class SlicedMachine extends LogMachine {
    override *snapshotPieces(): Generator<Uint8Array, void, void> {
      const captured = this.snapshot();
      for (let piece = 0; piece < 60; piece++) {
        const until = performance.now() + 1;
        while (performance.now() < until) { /* busy: one piece of encoding */ }
        seenByEncoding.push(loop.turns);
        yield new Uint8Array(0);
      }
      yield captured;
    }

    *restoreInSlices(data: Uint8Array, batch: ApplyBatch): Generator<void, void, void> {
      for (let step = 0; step < 60; step++) {
        const until = performance.now() + 1;
        while (performance.now() < until) { /* busy: one step of decoding */ }
        seenByRestore.push(loop.turns);
        yield;
      }
      this.restore(data, batch);
    }
  }
  const network = new MemoryNetwork(limits);
  const fatal: Error[] = [];
  const machines = new Map<string, SlicedMachine>();
  const disks = new Map<string, MemoryDisk>();
  const replicas: Replica[] = [];
  const metrics = new Map<string, SnapshotCounts>();
  try {
    for (const [i, member] of members.entries()) {
      const disk = new MemoryDisk();
      const storage = new MemoryStorage(disk);
      await storage.initialise({ clusterId: 'c3', memberId: member }, { voters: members, learners: [] });
      const machine = new SlicedMachine();
      machines.set(member, machine);
      disks.set(member, disk);
      const counts = new SnapshotCounts();
      metrics.set(member, counts);
      replicas.push(await Replica.open({
        id: member, seed: 100 + i, tickMs, requestTimeoutMs: 5000, proposalsPendingMax: 1000, snapshotEntries: 5,
        raft,
        storage, transport: network.transport(member), stateMachine: machine, logger: quiet, metrics: counts,
        onFatal: (error) => fatal.push(error),
      }));
    }
    // c is cut off while a and b write and compact their logs past anything c holds.
    network.isolate(c);
    const leaderOf = (): Replica | undefined => replicas.find((replica) => replica.status().role === 'leader' && replica.status().id !== c);
    await until('a or b leads', () => leaderOf() !== undefined, 10_000);
    const leader = leaderOf();
    assert.ok(leader !== undefined);
    for (let i = 0; i < 30; i++) await leader.propose(text(`r${i}`));
    await until('the leader compacted its log', () => (disks.get(leader.status().id)?.image?.snapshot.index ?? 0) >= 5, 10_000);
    assert.equal(seenByEncoding.length, 0, 'no image is encoded before a follower needs one');
    assert.equal(disks.get(leader.status().id)?.image?.snapshotData, null, 'the leader stores no image: its keyspace is the snapshot');
    loop.start();
    network.healAll();
    // Writes go on while c catches up: the leader compacts every 5-7 entries, faster than it encodes an image (60 ms
    // here), so it must keep the log after the image c installs (imageHoldEntriesFactor), or c would never catch up.
    let writing = true;
    let extra = 0;
    const writer = Promise.all(Array.from({ length: 8 }, async () => {
      while (writing) await leader.propose(text(`w${extra++}`));
    }));
    try {
      await until('c holds the first 30 writes while writes go on', () => [...(machines.get(c)?.values.values() ?? [])].filter((v) => v.startsWith('r')).length === 30, 15_000);
    } finally {
      writing = false;
      await writer;
    }
    assert.ok(extra > 20, `the leader kept writing meanwhile (${extra} writes)`);
    await until('c holds every write', () => machines.get(c)?.values.size === 30 + extra, 15_000);
    // c stores the image it installed (its keyspace is rewritten from it in batches; a crash in between restores it
    // again) until it compacts its own log.
    const cImage = disks.get(c)?.image;
    assert.ok(cImage !== null && cImage !== undefined);
    assert.ok(cImage.snapshotData !== null || cImage.applied >= cImage.snapshot.index, 'c\'s stored snapshot has its image, or its keyspace covers it');
  } finally {
    loop.stop();
    for (const replica of replicas) await replica.close();
  }
  assert.deepEqual(fatal, []);
  assert.ok(seenByRestore.length >= 60, `c restored a snapshot in steps (${seenByRestore.length} seen)`);
  const distinct = new Set(seenByRestore).size;
  assert.ok(distinct >= 10, `the event loop turned between the steps: ${distinct} distinct turn counts over ${seenByRestore.length} steps`);
  assert.ok(seenByEncoding.length >= 60, `the leader encoded an image for c, in pieces (${seenByEncoding.length} seen)`);
  const distinctEncoding = new Set(seenByEncoding).size;
  assert.ok(distinctEncoding >= 10, `the event loop turned between the pieces: ${distinctEncoding} distinct turn counts over ${seenByEncoding.length}`);
  assert.deepEqual([...(machines.get(c)?.values.values() ?? [])].sort(), [...(machines.get(a)?.values.values() ?? [])].sort());
  assert.equal(machines.get(b)?.values.size, machines.get(a)?.values.size);
  assert.ok((metrics.get(c)?.counts.installed ?? 0) >= 1, `c counted the snapshot it installed: ${JSON.stringify(metrics.get(c)?.counts)}`);
  const encodedByOthers = (metrics.get(a)?.counts.image_encoded ?? 0) + (metrics.get(b)?.counts.image_encoded ?? 0);
  assert.ok(encodedByOthers >= 1, `the leader counted the image it encoded (a: ${JSON.stringify(metrics.get(a)?.counts)}, b: ${JSON.stringify(metrics.get(b)?.counts)})`);
});
