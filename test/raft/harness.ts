// Harness: a deterministic network of RaftCores for the unit tests of the Raft core (STYLE.md §1, §6).
//
// Goal: let a test read like a protocol script ("a campaigns; the link a->c drops; a proposes x; c crashes")
// while every member is driven exactly as the Ready contract of src/raft/types.ts says a driver must drive it.
//
// Method: each member is a RaftCore with an in-memory durable store (snapshot, log after it, hard state) and an
// in-memory state machine (the list of entries it applied). handleReady() follows the contract step by step:
// 1. persist the snapshot (it replaces the stored log), then the entries (overwriting from entries[0].index),
//    then the hard state; 2. only then queue the messages on the network; 3. restore the snapshot and apply the
//    committed entries in order, collect readStates and droppedReads; 4. advance(). Messages wait in one queue
//    until a test delivers them, so a test can look at what was sent before anything is received. Every Ready
//    is also checked against the contract: mustSync whenever entries, snapshot, term or vote change, and no
//    message promises a term, a vote or an acknowledged entry not yet on the member's disk. Links can be
//    cut per direction and drop rules can discard chosen messages. Time is a tick counter; nothing sleeps, and
//    every loop is bounded. A crash throws the core away and keeps only the durable store and the state machine;
//    a restart builds a new core from them, as a real member would after a reboot.
import assert from 'node:assert/strict';

import { applyChange } from '../../src/raft/membership.ts';
import { RaftCore } from '../../src/raft/raft-core.ts';
import type {
  Entry,
  HardState,
  Membership,
  Message,
  MessageType,
  NodeId,
  PersistedState,
  ProposeResult,
  RaftConfig,
  ReadState,
  Ready,
  Snapshot,
} from '../../src/raft/types.ts';

/** ConfigOverrides are the RaftConfig fields a test may change; the id always comes from the member. */
export type ConfigOverrides = Partial<Omit<RaftConfig, 'id'>>;

/** baseConfig is the configuration every harness member starts from: generous limits, no PreVote, no CheckQuorum. */
export function baseConfig(id: NodeId, overrides: ConfigOverrides = {}): RaftConfig {
  return {
    id,
    electionTicks: 10,
    heartbeatTicks: 1,
    seed: 1,
    preVote: false,
    checkQuorum: false,
    inflightMessagesMax: 64,
    inflightBytesMax: 1 << 20,
    messageBytesMax: 1 << 16,
    uncommittedBytesMax: 1 << 20,
    committedBytesPerReadyMax: 1 << 20,
    snapshotChunkBytes: 1 << 16,
    pendingReadsMax: 64,
    ...overrides,
  };
}

/** AppliedEntry is what the harness state machine records for one applied log entry. */
export interface AppliedEntry {
  readonly index: number;
  readonly term: number;
  readonly kind: Entry['kind'];
  /** value is the UTF-8 payload of a normal entry, "type node" for a membership change, "" for a no-op. */
  readonly value: string;
}

/** DurableStore is a member's disk: what survives a crash. */
export interface DurableStore {
  hardState: HardState;
  snapshot: Snapshot;
  /** entries are the stored log entries after snapshot.meta.index, contiguous. */
  entries: Entry[];
}

/** bootstrapState is the durable state of a new member of a group whose initial voters are `voters`. */
export function bootstrapState(voters: readonly NodeId[]): PersistedState {
  return {
    hardState: { term: 0, vote: null, commit: 0 },
    snapshot: { index: 0, term: 0, membership: { voters: [...voters], learners: [] } },
    entries: [],
    applied: 0,
  };
}

/** entriesWithTerms builds a log starting at index `from` with one normal entry per term in `terms`. */
export function entriesWithTerms(terms: readonly number[], from = 1): Entry[] {
  return terms.map((term, i) => ({ kind: 'normal', index: from + i, term, data: encode(`${from + i}@${term}`) }));
}

/** stateWithLog is the durable state of a member of `voters` whose log holds one entry per term in `terms`. */
export function stateWithLog(
  voters: readonly NodeId[],
  terms: readonly number[],
  hardState: Partial<HardState> = {},
): PersistedState {
  const base = bootstrapState(voters);
  return {
    ...base,
    hardState: { term: Math.max(0, ...terms), vote: null, commit: 0, ...hardState },
    entries: entriesWithTerms(terms),
  };
}

/** encode turns a string payload into entry data. */
export function encode(value: string): Uint8Array {
  return new TextEncoder().encode(value);
}

/** decode turns entry data back into its string payload. */
export function decode(data: Uint8Array): string {
  return new TextDecoder().decode(data);
}

/** appliedEntryOf is the state machine's record of one committed entry. */
function appliedEntryOf(entry: Entry): AppliedEntry {
  switch (entry.kind) {
    case 'normal':
      return { index: entry.index, term: entry.term, kind: entry.kind, value: decode(entry.data) };
    case 'noop':
      return { index: entry.index, term: entry.term, kind: entry.kind, value: '' };
    case 'membership':
      return { index: entry.index, term: entry.term, kind: entry.kind, value: `${entry.change.type} ${entry.change.node}` };
  }
}

/** encodeApplied is the snapshot image of a state machine: its applied list as JSON. */
export function encodeApplied(applied: readonly AppliedEntry[]): Uint8Array {
  return encode(JSON.stringify(applied));
}

/** decodeApplied restores an applied list from a snapshot image (an empty image is the empty list). */
export function decodeApplied(data: Uint8Array): AppliedEntry[] {
  if (data.length === 0) return [];
  const parsed: unknown = JSON.parse(decode(data));
  assert.ok(Array.isArray(parsed), 'snapshot image is not a list');
  return parsed as AppliedEntry[];
}

/** HarnessNode is one member: its core (null while crashed), its disk and its state machine. */
export class HarnessNode {
  core: RaftCore | null;
  readonly config: RaftConfig;
  readonly store: DurableStore;
  /** applied is the state machine: every entry applied, in index order, without gaps. */
  applied: AppliedEntry[];
  /** appliedIndex is the last index reflected in the state machine (a restored snapshot included). */
  appliedIndex: number;
  /** appliedMembership is the membership as of appliedIndex, kept to label snapshots taken by compact(). */
  appliedMembership: Membership;
  readonly readStates: ReadState[] = [];
  readonly droppedReads: string[] = [];
  /** readies is every Ready this member handed out, oldest first (tests may clear it). */
  readonly readies: Ready[] = [];

  constructor(config: RaftConfig, state: PersistedState) {
    this.config = config;
    // A harness member starts from an empty state machine at its snapshot's index (the bootstrap, or a scripted log).
    this.store = { hardState: state.hardState, snapshot: { meta: state.snapshot, data: new Uint8Array(0) }, entries: [...state.entries] };
    this.applied = [];
    this.appliedIndex = state.snapshot.index;
    this.appliedMembership = state.snapshot.membership;
    assert.ok(state.applied === state.snapshot.index, 'harness members start with applied = snapshot index');
    this.core = new RaftCore(config, state);
  }

  /** live tells whether the member runs (is not crashed). */
  get live(): boolean {
    return this.core !== null;
  }

  /** persistedState is what this member would load from its disk after a crash. */
  persistedState(): PersistedState {
    return {
      hardState: this.store.hardState,
      snapshot: this.store.snapshot.meta,
      entries: [...this.store.entries],
      applied: this.appliedIndex,
    };
  }

  /** persist writes the durable part of a Ready: snapshot, then entries, then hard state (contract step 1). */
  persist(ready: Ready): void {
    if (ready.snapshot !== null) {
      this.store.snapshot = ready.snapshot;
      this.store.entries = [];
    }
    const first = ready.entries[0];
    if (first !== undefined) {
      const keep = first.index - this.store.snapshot.meta.index - 1;
      assert.ok(keep >= 0 && keep <= this.store.entries.length, `${this.config.id}: Ready entries start at ${first.index}, a hole or below the snapshot`);
      this.store.entries = [...this.store.entries.slice(0, keep), ...ready.entries];
    }
    const previous = this.store.hardState;
    if (ready.hardState !== null) {
      assert.ok(ready.hardState.term >= previous.term, `${this.config.id}: stored term would go back`);
      this.store.hardState = ready.hardState;
    }
    const termOrVoteChanged = ready.hardState !== null && (ready.hardState.term !== previous.term || ready.hardState.vote !== previous.vote);
    if (ready.entries.length > 0 || ready.snapshot !== null || termOrVoteChanged) {
      assert.ok(ready.mustSync, `${this.config.id}: a Ready changing entries, snapshot, term or vote must ask for a sync`);
    }
  }

  /**
   * checkDurable asserts that what `message` promises is already on this member's disk (contract step 2): its
   * term (a PreVote exchange speaks of a future term, by design), the vote it grants (unless a later term is
   * already durable: the member can never vote in that term again), the entries it acknowledges.
   */
  checkDurable(message: Message): void {
    const id = this.config.id;
    const stored = this.store.hardState;
    if (message.type !== 'PreVoteRequest' && message.type !== 'PreVoteResponse') {
      assert.ok(message.term <= stored.term, `${id}: ${message.type} at term ${message.term} leaves before term ${message.term} is durable`);
    }
    if (message.type === 'VoteResponse' && message.granted && message.term === stored.term) {
      assert.equal(stored.vote, message.to, `${id}: a vote for ${message.to} leaves before it is durable`);
    }
    if (message.type === 'AppendResponse' && message.success) {
      const lastStored = this.store.snapshot.meta.index + this.store.entries.length;
      assert.ok(message.matchIndex <= lastStored, `${id}: acknowledges ${message.matchIndex} with only ${lastStored} on disk`);
    }
  }

  /** apply restores the snapshot, then applies the committed entries in order (contract step 3). */
  apply(ready: Ready): void {
    if (ready.snapshot !== null) {
      this.applied = decodeApplied(ready.snapshot.data);
      this.appliedIndex = ready.snapshot.meta.index;
      this.appliedMembership = ready.snapshot.meta.membership;
    }
    for (const entry of ready.committedEntries) {
      assert.equal(entry.index, this.appliedIndex + 1, `${this.config.id}: applied ${entry.index} after ${this.appliedIndex} (a gap or a re-application)`);
      this.applied.push(appliedEntryOf(entry));
      this.appliedIndex = entry.index;
      if (entry.kind === 'membership') this.appliedMembership = applyChange(this.appliedMembership, entry.change);
    }
    this.readStates.push(...ready.readStates);
    this.droppedReads.push(...ready.droppedReads);
  }
}

/** NetworkOptions describe a group: its initial voters and each member's configuration and starting disk. */
export interface NetworkOptions {
  readonly voters: readonly NodeId[];
  /** config applies to every member; perNode adds to it per member. Seeds default to 1 + the member's position. */
  readonly config?: ConfigOverrides;
  readonly perNode?: (id: NodeId) => ConfigOverrides;
  /** initial replaces the bootstrap state of chosen members (scripted logs). */
  readonly initial?: Readonly<Record<NodeId, PersistedState>>;
}

/** DropRule discards the messages it matches at delivery; `remaining` counts how many more it may drop. */
interface DropRule {
  readonly matches: (message: Message) => boolean;
  remaining: number;
}

/** Network is a group of HarnessNodes and the queue of messages between them. */
export class Network {
  readonly nodes = new Map<NodeId, HarnessNode>();
  /** queue holds messages that left a Ready and were not yet delivered or dropped, oldest first. */
  queue: Message[] = [];
  /** sent records every message that left a Ready, oldest first (tests may reset it). */
  sent: Message[] = [];
  private readonly cutLinks = new Set<string>();
  private dropRules: DropRule[] = [];
  private duplicateRules: DropRule[] = [];
  private readonly options: NetworkOptions;

  constructor(options: NetworkOptions) {
    this.options = options;
    options.voters.forEach((id, position) => {
      this.addNode(id, { seed: 1 + position }, options.initial?.[id] ?? bootstrapState(options.voters));
    });
  }

  /** addNode starts a member (a joining learner, say) with `state`, by default the group's bootstrap state. */
  addNode(id: NodeId, overrides: ConfigOverrides = {}, state: PersistedState = bootstrapState(this.options.voters)): HarnessNode {
    assert.ok(!this.nodes.has(id), `${id} already exists`);
    const config = baseConfig(id, { ...this.options.config, ...overrides, ...this.options.perNode?.(id) });
    const node = new HarnessNode(config, state);
    this.nodes.set(id, node);
    return node;
  }

  /** node returns the harness member `id`. */
  node(id: NodeId): HarnessNode {
    const node = this.nodes.get(id);
    assert.ok(node !== undefined, `no member ${id}`);
    return node;
  }

  /** core returns the running core of `id`; the member must be live. */
  core(id: NodeId): RaftCore {
    const core = this.node(id).core;
    assert.ok(core !== null, `${id} is crashed`);
    return core;
  }

  /** ids lists every member, live or crashed. */
  get ids(): NodeId[] {
    return [...this.nodes.keys()];
  }

  // ---------------------------------------------------------------------------------------------------------
  // Time and the Ready loop.

  /** tick advances the logical clock of member `id` by `times` ticks, handling no Ready. */
  tick(id: NodeId, times = 1): void {
    for (let i = 0; i < times; i++) this.core(id).tick();
  }

  /** tickAll ticks every live member once. */
  tickAll(): void {
    for (const node of this.nodes.values()) node.core?.tick();
  }

  /** autoOfferSnapshots: handleReady offers the state machine's image whenever a leader wants one (as the driver does). */
  autoOfferSnapshots = true;

  /** handleReady runs one Ready of `id` through the contract; false when it had none. */
  handleReady(id: NodeId): boolean {
    const node = this.node(id);
    const core = node.core;
    if (core === null) return false;
    // The driver's side of lazy snapshots: a leader with a follower behind its log asks for the state machine's image.
    if (this.autoOfferSnapshots && core.wantsSnapshot) core.offerSnapshot(node.appliedIndex, encodeApplied(node.applied));
    if (!core.hasReady()) return false;
    const ready = core.ready();
    node.readies.push(ready);
    node.persist(ready);
    for (const message of ready.messages) {
      assert.equal(message.from, id, 'a core sent a message in another member\'s name');
      node.checkDurable(message);
      this.queue.push(message);
      this.sent.push(message);
    }
    node.apply(ready);
    core.advance(ready);
    return true;
  }

  /** flush handles the Readys of every live member until none has work; messages only queue. */
  flush(): void {
    for (let round = 0; round < 10_000; round++) {
      let any = false;
      for (const id of this.nodes.keys()) if (this.handleReady(id)) any = true;
      if (!any) return;
    }
    assert.fail('flush: Readys did not run out within 10000 rounds');
  }

  /** deliver steps the queued messages matching `filter` into their recipients, in order; returns how many arrived. */
  deliver(filter: (message: Message) => boolean = () => true): number {
    const chosen = this.queue.filter(filter);
    this.queue = this.queue.filter((message) => !filter(message));
    let delivered = 0;
    for (const message of chosen) if (this.deliverMessage(message)) delivered++;
    return delivered;
  }

  /** deliverMessage steps one message into its recipient unless a cut link, a drop rule or a crash stops it. */
  private deliverMessage(message: Message): boolean {
    if (!this.deliverable(message)) return false;
    this.core(message.to).step(message);
    const copy = this.duplicateRules.find((rule) => rule.remaining > 0 && rule.matches(message));
    if (copy !== undefined) {
      copy.remaining--;
      this.core(message.to).step(message);
    }
    return true;
  }

  /**
   * stabilize alternates flush() and deliver() until no member has work and no message is queued, except the
   * messages matching `hold`, which stay queued (a test looks at them, or releases them later).
   */
  stabilize(hold: (message: Message) => boolean = () => false, maxRounds = 10_000): void {
    for (let round = 0; round < maxRounds; round++) {
      this.flush();
      if (this.deliver((message) => !hold(message)) === 0 && !this.queue.some((message) => !hold(message))) return;
    }
    assert.fail(`stabilize: still busy after ${maxRounds} rounds`);
  }

  /** stepUntil delivers queued messages one at a time, flushing after each, until `done` holds. */
  stepUntil(done: () => boolean, maxMessages = 10_000): void {
    for (let count = 0; count < maxMessages; count++) {
      this.flush();
      if (done()) return;
      const next = this.queue.shift();
      if (next === undefined) assert.fail('stepUntil: the network went quiet first');
      this.deliverMessage(next);
    }
    assert.fail(`stepUntil: condition not reached within ${maxMessages} messages`);
  }

  /** run ticks every live member and stabilizes, `ticks` times. */
  run(ticks: number): void {
    for (let i = 0; i < ticks; i++) {
      this.tickAll();
      this.stabilize();
    }
  }

  /** runUntil runs ticks until `done` holds; returns the ticks it took, fails after `maxTicks`. */
  runUntil(done: () => boolean, maxTicks: number): number {
    for (let ticks = 0; ticks <= maxTicks; ticks++) {
      if (done()) return ticks;
      this.tickAll();
      this.stabilize();
    }
    return assert.fail(`runUntil: condition not reached within ${maxTicks} ticks`);
  }

  /** campaign makes `id` start an election now and stabilizes the network. */
  campaign(id: NodeId): void {
    this.core(id).campaign();
    this.stabilize();
  }

  /** elect makes `id` campaign and asserts that it won. */
  elect(id: NodeId): void {
    this.campaign(id);
    assert.equal(this.core(id).role, 'leader', `${id} did not win its election`);
  }

  /** leader returns the live leader of the highest term, or null. */
  leader(): NodeId | null {
    let best: RaftCore | null = null;
    for (const node of this.nodes.values()) {
      const core = node.core;
      if (core !== null && core.role === 'leader' && (best === null || core.term > best.term)) best = core;
    }
    return best?.id ?? null;
  }

  // ---------------------------------------------------------------------------------------------------------
  // Faults.

  private deliverable(message: Message): boolean {
    const target = this.nodes.get(message.to);
    if (target === undefined || target.core === null) return false;
    if (this.cutLinks.has(`${message.from}->${message.to}`)) return false;
    for (const rule of this.dropRules) {
      if (rule.remaining > 0 && rule.matches(message)) {
        rule.remaining--;
        return false;
      }
    }
    return true;
  }

  /** cut drops every message from `from` to `to` (one direction) until healed. */
  cut(from: NodeId, to: NodeId): void {
    this.cutLinks.add(`${from}->${to}`);
  }

  /** isolate cuts every link into and out of `id`. */
  isolate(id: NodeId): void {
    for (const other of this.nodes.keys()) {
      if (other === id) continue;
      this.cut(id, other);
      this.cut(other, id);
    }
  }

  /** partition cuts every link between the two sides, both directions. */
  partition(side: readonly NodeId[], otherSide: readonly NodeId[]): void {
    for (const a of side) {
      for (const b of otherSide) {
        this.cut(a, b);
        this.cut(b, a);
      }
    }
  }

  /** heal restores every link (drop rules stay; see clearDrops). */
  heal(): void {
    this.cutLinks.clear();
  }

  /** clearDrops removes every drop rule. */
  clearDrops(): void {
    this.dropRules = [];
  }

  /** dropWhere discards, at delivery, the next `count` messages matching `matches` (all of them by default). */
  dropWhere(matches: (message: Message) => boolean, count = Number.POSITIVE_INFINITY): void {
    this.dropRules.push({ matches, remaining: count });
  }

  /** duplicateWhere delivers the next `count` messages matching `matches` twice, the copy right after the original. */
  duplicateWhere(matches: (message: Message) => boolean, count = Number.POSITIVE_INFINITY): void {
    this.duplicateRules.push({ matches, remaining: count });
  }

  /** crash stops `id`: its core and queued incoming messages are lost, its disk and state machine survive. */
  crash(id: NodeId): void {
    this.node(id).core = null;
    this.queue = this.queue.filter((message) => message.to !== id);
  }

  /**
   * restart builds a new core for `id` from its durable store (new RaftCore(config, persisted)). A 'durable'
   * state machine kept everything it applied (applied = its last index); a 'from-snapshot' one lost what it
   * applied after the stored snapshot and is rebuilt from it (applied = the snapshot index).
   */
  restart(id: NodeId, stateMachine: 'durable' | 'from-snapshot' = 'durable'): void {
    const node = this.node(id);
    assert.ok(node.core === null, `${id} is running`);
    if (stateMachine === 'from-snapshot') {
      const snapshot = node.store.snapshot;
      node.applied = decodeApplied(snapshot.data);
      node.appliedIndex = snapshot.meta.index;
      node.appliedMembership = snapshot.meta.membership;
    }
    node.core = new RaftCore(node.config, node.persistedState());
  }

  /** compact snapshots the state machine of `id` at its applied index, drops the log prefix (core and disk), returns the stored snapshot. */
  compact(id: NodeId): Snapshot {
    const node = this.node(id);
    const core = this.core(id);
    const index = node.appliedIndex;
    // Nothing to drop: the log already starts after `index` (a snapshot received from the leader may still be
    // waiting in the next Ready).
    if (index <= core.snapshotIndex) return node.store.snapshot;
    const term = core.termAt(index);
    assert.ok(term !== undefined, `${id}: no term at applied index ${index}`);
    // The harness tracks the applied membership itself; the core's own view of it must agree.
    assert.deepEqual(core.membershipAt(index), node.appliedMembership, `${id}: membership at ${index}`);
    const snapshot: Snapshot = { meta: { index, term, membership: node.appliedMembership }, data: encodeApplied(node.applied) };
    core.compact(index);
    if (index > node.store.snapshot.meta.index) {
      node.store.entries = node.store.entries.filter((entry) => entry.index > index);
      node.store.snapshot = snapshot;
    }
    return snapshot;
  }

  // ---------------------------------------------------------------------------------------------------------
  // Workload and observations.

  /** propose proposes one normal entry per value on `id`. */
  propose(id: NodeId, ...values: string[]): ProposeResult {
    return this.core(id).propose(values.map(encode));
  }

  /** applied returns the state machine of `id`: every entry it applied. */
  applied(id: NodeId): readonly AppliedEntry[] {
    return this.node(id).applied;
  }

  /** appliedValues returns the payloads of the normal entries `id` applied, in order. */
  appliedValues(id: NodeId): string[] {
    return this.node(id).applied.filter((entry) => entry.kind === 'normal').map((entry) => entry.value);
  }

  /** sentOf returns the recorded sent messages of one type, optionally filtered further. */
  sentOf<T extends MessageType>(type: T, filter: (message: Extract<Message, { type: T }>) => boolean = () => true): Extract<Message, { type: T }>[] {
    return this.sent.filter((message): message is Extract<Message, { type: T }> => message.type === type).filter(filter);
  }

  /** queuedOf returns the queued (undelivered) messages of one type, optionally filtered further. */
  queuedOf<T extends MessageType>(type: T, filter: (message: Extract<Message, { type: T }>) => boolean = () => true): Extract<Message, { type: T }>[] {
    return this.queue.filter((message): message is Extract<Message, { type: T }> => message.type === type).filter(filter);
  }

  /** clearSent forgets the record of sent messages (the queue is untouched). */
  clearSent(): void {
    this.sent = [];
  }
}

/** soloCore builds one core of a group of `voters`, driven by hand with step() and takeReady(). */
export function soloCore(id: NodeId, voters: readonly NodeId[], overrides: ConfigOverrides = {}, state: PersistedState = bootstrapState(voters)): RaftCore {
  return new RaftCore(baseConfig(id, overrides), state);
}

/** takeReady takes the core's next Ready and advances it at once, as a driver whose disk is instantaneous. */
export function takeReady(core: RaftCore): Ready {
  assert.ok(core.hasReady(), `${core.id} has no Ready`);
  const ready = core.ready();
  core.advance(ready);
  return ready;
}

/** drainReadies takes every Ready the core has; returns them in order. */
export function drainReadies(core: RaftCore): Ready[] {
  const readies: Ready[] = [];
  for (let i = 0; i < 1_000 && core.hasReady(); i++) readies.push(takeReady(core));
  assert.ok(!core.hasReady(), `${core.id} kept producing Readys`);
  return readies;
}
