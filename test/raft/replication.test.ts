// Goal: show that log replication (Raft §5.3) carries entries to every follower and commits them once a majority
// stores them; that the leader's flow control holds (pipelining bounded by inflightMessagesMax and
// inflightBytesMax per follower, a single append in flight while probing after a reject); that fast backtracking
// with conflictIndex/conflictTerm repairs a long divergent tail in a few round trips; and that commitment follows
// §5.4.2: a new leader appends a no-op and never commits an entry of an earlier term by counting replicas, the
// Figure 8 scenario, which is also run with the commitPriorTermByCounting bug planted to show the test can fail.
//
// Method: scripted groups on the harness network. Logs that would take many elections to grow are written
// directly into the members' starting disks (stateWithLog), as etcd's raft tests do. Messages a test wants to
// look at are held in the network queue (stabilize with a hold predicate) or delivered one by one (stepUntil).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import type { AppendResponse, Message, NodeId, PersistedState } from '../../src/raft/types.ts';
import { Network, soloCore, stateWithLog, takeReady } from './harness.ts';

const THREE: readonly NodeId[] = ['a', 'b', 'c'];
const FIVE: readonly NodeId[] = ['a', 'b', 'c', 'd', 'e'];

/** value10 is a 10-byte payload, so every normal entry counts 26 bytes (entryBytes = data + 16). */
function value10(i: number): string {
  return `value-${String(i).padStart(4, '0')}`;
}

describe('log replication (Raft §5.3)', () => {
  test('entries reach every follower and are applied in order', () => {
    // Reference: Raft §5.3 (the leader appends, replicates with AppendEntries, applies once committed).
    const net = new Network({ voters: THREE });
    net.elect('a');
    for (let i = 0; i < 5; i++) assert.equal(net.propose('a', `x${i}`).ok, true);
    net.stabilize();
    for (const id of THREE) {
      assert.deepEqual(net.appliedValues(id), ['x0', 'x1', 'x2', 'x3', 'x4'], id);
      assert.equal(net.core(id).commitIndex, 6, id);
    }
  });

  const majorityCases = [
    { voters: THREE, reachable: 1, commits: true },
    { voters: THREE, reachable: 0, commits: false },
    { voters: FIVE, reachable: 2, commits: true },
    { voters: FIVE, reachable: 1, commits: false },
  ];
  for (const { voters, reachable, commits } of majorityCases) {
    test(`a leader of ${voters.length} reaching ${reachable} followers ${commits ? 'commits' : 'does not commit'}`, () => {
      // Reference: Raft §5.3: an entry is committed once the leader has replicated it on a majority of servers.
      const net = new Network({ voters });
      net.elect('a');
      const unreachable = voters.slice(1 + reachable);
      net.partition(['a'], unreachable);
      const result = net.propose('a', 'x');
      assert.ok(result.ok);
      net.stabilize();
      assert.equal(net.core('a').commitIndex >= result.lastIndex, commits);
      assert.deepEqual(net.appliedValues('a'), commits ? ['x'] : []);
      for (const id of voters.slice(1, 1 + reachable)) assert.equal(net.core(id).lastIndex, result.lastIndex, `${id} stores x`);
      for (const id of unreachable) assert.equal(net.core(id).lastIndex, result.lastIndex - 1, `${id} never saw x`);
    });
  }
});

describe('flow control: pipelining and probing (Raft §5.3; etcd progress states)', () => {
  /** heldAppendsTo counts the AppendRequests carrying entries that wait in the queue for `to`. */
  function heldAppendsTo(net: Network, to: NodeId): number {
    return net.queuedOf('AppendRequest', (message) => message.to === to && message.entries.length > 0).length;
  }

  for (const inflightMessagesMax of [1, 2, 4]) {
    test(`with inflightMessagesMax ${inflightMessagesMax}, at most ${inflightMessagesMax} un-acked appends go to a replicating follower`, () => {
      // Reference: Raft §5.3 (AppendEntries may be pipelined); docs/raft.md (replicate state, bounded by
      // inflightMessagesMax). One entry per message (messageBytesMax = 26), ten proposals, b's appends held.
      const net = new Network({ voters: THREE, config: { inflightMessagesMax, messageBytesMax: 26, snapshotChunkBytes: 16 } });
      net.elect('a');
      assert.equal(net.core('a').status().progress['b']?.state, 'replicate');
      const holdB = (message: { to: NodeId; from: NodeId }): boolean => message.to === 'b' || message.from === 'b';
      for (let i = 0; i < 10; i++) {
        assert.equal(net.propose('a', value10(i)).ok, true);
        net.stabilize(holdB);
      }
      assert.equal(heldAppendsTo(net, 'b'), inflightMessagesMax);
      assert.equal(net.core('a').commitIndex, 11, 'c keeps the majority going meanwhile');
      // One acknowledgement frees one slot: exactly one more append leaves.
      const first = net.queuedOf('AppendRequest', (message) => message.to === 'b')[0];
      assert.ok(first !== undefined);
      net.deliver((message) => message === first);
      net.flush();
      net.deliver((message) => message.type === 'AppendResponse' && message.from === 'b');
      net.flush();
      assert.equal(heldAppendsTo(net, 'b'), inflightMessagesMax);
      assert.ok(net.queuedOf('AppendRequest', (message) => message.to === 'b').some((message) => message !== first));
      // Released, the pipeline drains and b catches up.
      net.stabilize();
      assert.deepEqual(net.appliedValues('b'), net.appliedValues('a'));
    });
  }

  const byteCases = [
    { inflightBytesMax: 26, appends: 1 },
    { inflightBytesMax: 52, appends: 2 },
    { inflightBytesMax: 78, appends: 3 },
  ];
  for (const { inflightBytesMax, appends } of byteCases) {
    test(`with inflightBytesMax ${inflightBytesMax}, un-acked entry bytes to a follower stay within the bound`, () => {
      // Reference: docs/raft.md (flow control by inflightBytesMax). Entries count 26 bytes each.
      const net = new Network({
        voters: THREE,
        config: { inflightMessagesMax: 100, inflightBytesMax, messageBytesMax: 26, snapshotChunkBytes: 16 },
      });
      net.elect('a');
      for (let i = 0; i < 10; i++) {
        assert.equal(net.propose('a', value10(i)).ok, true);
        net.stabilize((message) => message.to === 'b' || message.from === 'b');
      }
      const held = net.queuedOf('AppendRequest', (message) => message.to === 'b' && message.entries.length > 0);
      assert.equal(held.length, appends);
      const bytes = held.reduce((sum, message) => sum + message.entries.length * 26, 0);
      assert.ok(bytes <= inflightBytesMax, `${bytes} un-acked bytes`);
    });
  }

  test('after a reject the leader probes: one append in flight until the follower answers', () => {
    // Reference: Raft §5.3 (on a reject the leader decrements nextIndex and retries); docs/raft.md (probe
    // state: one append at a time). c misses entries while isolated, then rejects the leader's next append.
    const net = new Network({ voters: THREE });
    net.elect('a');
    net.isolate('c');
    for (let i = 0; i < 5; i++) assert.equal(net.propose('a', `x${i}`).ok, true);
    net.stabilize();
    net.heal();
    net.clearSent();
    net.tick('a');
    net.stepUntil(() => net.core('a').status().progress['c']?.state === 'probe');
    const rejects = net.sentOf('AppendResponse', (message) => message.from === 'c' && !message.success);
    assert.equal(rejects.length, 1, 'c rejected an append beyond its log');
    assert.equal(heldAppendsTo(net, 'c') + net.queuedOf('AppendRequest', (m) => m.to === 'c' && m.entries.length === 0).length, 1);
    // More proposals while the probe is out add appends for b, none for c.
    const before = net.sentOf('AppendRequest', (message) => message.to === 'c').length;
    for (let i = 5; i < 8; i++) {
      assert.equal(net.propose('a', `x${i}`).ok, true);
      net.stabilize((message) => message.to === 'c');
    }
    assert.equal(net.sentOf('AppendRequest', (message) => message.to === 'c').length, before);
    assert.equal(net.queuedOf('AppendRequest', (message) => message.to === 'c').length, 1);
    // The answer to the probe ends probing; c catches up.
    net.stabilize();
    assert.equal(net.core('a').status().progress['c']?.state, 'replicate');
    assert.deepEqual(net.appliedValues('c'), net.appliedValues('a'));
  });
});

describe('fast backtracking with conflictIndex / conflictTerm (Raft §5.3)', () => {
  // The follower's log (terms by index) and the leader's log; the expected rejects (conflictIndex,
  // conflictTerm) in order; all logs share [1, 1] at indexes 1-2, which is committed.
  const repeat = (term: number, count: number): number[] => Array.from({ length: count }, () => term);
  const cases = [
    {
      name: 'a 50-entry tail of one old term, longer than the leader\'s log',
      follower: [1, 1, ...repeat(2, 50)],
      leader: [1, 1, ...repeat(3, 10)],
      rejects: [{ conflictIndex: 3, conflictTerm: 2 }],
    },
    {
      name: 'a 50-entry tail of one old term, shorter than the leader\'s log',
      follower: [1, 1, ...repeat(2, 50)],
      leader: [1, 1, ...repeat(3, 60)],
      rejects: [{ conflictIndex: 53, conflictTerm: 0 }, { conflictIndex: 3, conflictTerm: 2 }],
    },
    {
      name: 'a 50-entry tail of two old terms',
      follower: [1, 1, ...repeat(2, 25), ...repeat(3, 25)],
      leader: [1, 1, ...repeat(4, 60)],
      rejects: [{ conflictIndex: 53, conflictTerm: 0 }, { conflictIndex: 28, conflictTerm: 3 }, { conflictIndex: 3, conflictTerm: 2 }],
    },
    {
      name: 'the leader holds a prefix of the follower\'s conflicting term',
      follower: [1, 1, ...repeat(2, 50)],
      leader: [1, 1, ...repeat(2, 10), ...repeat(3, 40)],
      rejects: [{ conflictIndex: 3, conflictTerm: 2 }],
    },
  ];
  for (const { name, follower, leader, rejects } of cases) {
    test(`repairs ${name} in ${rejects.length} reject(s)`, () => {
      // Reference: Raft §5.3, the optimisation at the end of the section (the follower returns the term of the
      // conflicting entry and the first index it stores for that term; one round trip per conflicting term
      // instead of one per entry). b leads a fresh term; a holds the divergent tail; c agrees with b.
      const leaderTerm = Math.max(...leader);
      const initial: Record<NodeId, PersistedState> = {
        a: stateWithLog(THREE, follower, { term: Math.max(...follower), commit: 2 }),
        b: stateWithLog(THREE, leader, { term: leaderTerm, commit: 2 }),
        c: stateWithLog(THREE, leader, { term: leaderTerm, commit: 2 }),
      };
      const net = new Network({ voters: THREE, initial });
      net.partition(['a'], ['b', 'c']);
      net.elect('b');
      net.heal();
      net.clearSent();
      net.tick('b');
      net.stabilize();
      const seen = net.sentOf('AppendResponse', (message) => message.from === 'a' && !message.success);
      assert.deepEqual(seen.map(({ conflictIndex, conflictTerm }) => ({ conflictIndex, conflictTerm })), rejects);
      assert.ok(seen.length <= 3, 'far fewer round trips than the 50 divergent entries');
      const logOf = (id: NodeId): (number | undefined)[] =>
        Array.from({ length: net.core(id).lastIndex }, (_, i) => net.core(id).termAt(i + 1));
      assert.deepEqual(logOf('a'), logOf('b'), 'the follower\'s log now matches the leader\'s');
      assert.equal(net.core('a').commitIndex, net.core('b').commitIndex);
    });
  }

  // A follower with log terms [1, 1, 2, 2, 2] answers an AppendRequest at (prevLogIndex, prevLogTerm).
  const hintCases = [
    { commit: 0, prevLogIndex: 7, prevLogTerm: 3, success: false, conflictIndex: 6, conflictTerm: 0, why: 'log too short: its last index + 1' },
    { commit: 0, prevLogIndex: 5, prevLogTerm: 3, success: false, conflictIndex: 3, conflictTerm: 2, why: 'first index of the conflicting term 2' },
    { commit: 0, prevLogIndex: 2, prevLogTerm: 2, success: false, conflictIndex: 1, conflictTerm: 1, why: 'first index of term 1' },
    { commit: 1, prevLogIndex: 2, prevLogTerm: 2, success: false, conflictIndex: 2, conflictTerm: 1, why: 'never below commit + 1' },
    { commit: 0, prevLogIndex: 4, prevLogTerm: 2, success: true, conflictIndex: 0, conflictTerm: 0, why: 'match' },
    { commit: 0, prevLogIndex: 0, prevLogTerm: 0, success: true, conflictIndex: 0, conflictTerm: 0, why: 'match at the start of the log' },
  ];
  for (const { commit, prevLogIndex, prevLogTerm, success, conflictIndex, conflictTerm, why } of hintCases) {
    test(`AppendResponse hint for prev (${prevLogIndex}, term ${prevLogTerm}), commit ${commit}: ${why}`, () => {
      // Reference: Raft §5.3 (consistency check and its fast-backtracking hint).
      const follower = soloCore('b', THREE, {}, stateWithLog(THREE, [1, 1, 2, 2, 2], { commit }));
      follower.step({ type: 'AppendRequest', from: 'a', to: 'b', term: 3, prevLogIndex, prevLogTerm, entries: [], commit: 0 });
      const responses = takeReady(follower).messages.filter((message): message is AppendResponse => message.type === 'AppendResponse');
      assert.equal(responses.length, 1);
      const response = responses[0];
      assert.ok(response !== undefined);
      assert.equal(response.success, success);
      assert.equal(response.conflictIndex, conflictIndex);
      assert.equal(response.conflictTerm, conflictTerm);
      assert.equal(response.rejectedIndex, success ? 0 : prevLogIndex);
      if (success) assert.equal(response.matchIndex, prevLogIndex);
    });
  }
});

describe('commitment (Raft §5.4.2, §8)', () => {
  test('a new leader appends a no-op of its term and commits it', () => {
    // Reference: Raft §8 (a leader commits a blank no-op entry at the start of its term), §5.4.2.
    const net = new Network({ voters: THREE });
    net.elect('a');
    assert.ok(net.propose('a', 'x').ok);
    net.stabilize();
    net.elect('b');
    const b = net.core('b');
    const noop = b.entryAt(b.lastIndex);
    assert.equal(noop?.kind, 'noop');
    assert.equal(noop?.term, b.term);
    assert.equal(b.commitIndex, b.lastIndex, 'the no-op commits on a majority');
    // Followers learn the commit index with the next append or heartbeat.
    net.tick('b');
    net.stabilize();
    for (const id of THREE) assert.equal(net.core(id).commitIndex, b.lastIndex, id);
    assert.deepEqual(net.applied('c').map((entry) => entry.kind), ['noop', 'normal', 'noop']);
  });

  /**
   * figure8 replays Raft Figure 8 with five members s1..s5 (our no-ops shift terms by one from the paper):
   * (a) s1 leads term 1; its entry A at index 2 reaches only s2.
   * (b) s1 crashes; s5 leads term 2 with votes from s3, s4; its no-op at index 2 stays on s5 alone; s5 crashes.
   * (c) s1 restarts and leads term 3; A (term 1, index 2) reaches s3 and s4, so it is on a majority, but the
   *     term-3 no-op at index 3 reaches no follower. Only a core that counts replicas of earlier terms commits A.
   * (d) s1 crashes; s5 restarts and wins term 4 (its last term 2 beats the others' 1) and overwrites index 2.
   * Returns s1's commit index after (c) and what each member applied at index 2 at the end.
   */
  function figure8(commitPriorTermByCounting: boolean): { commitAfterC: number; appliedAt2: Map<NodeId, string> } {
    const ids = ['s1', 's2', 's3', 's4', 's5'];
    const net = new Network({ voters: ids, config: { messageBytesMax: 17, snapshotChunkBytes: 16, testOnlyBugs: { commitPriorTermByCounting } } });
    // (a)
    net.elect('s1');
    net.partition(['s1'], ['s3', 's4', 's5']);
    assert.ok(net.propose('s1', 'A').ok);
    net.stabilize();
    assert.equal(net.core('s2').lastIndex, 2);
    // (b)
    net.crash('s1');
    net.heal();
    net.partition(['s5'], ['s2']);
    net.dropWhere((message) => message.from === 's5' && message.type === 'AppendRequest');
    net.elect('s5');
    assert.equal(net.core('s5').term, 2);
    net.crash('s5');
    net.heal();
    net.clearDrops();
    // (c) The leader's no-op of term 3 never lands in a follower's log; everything else flows.
    net.restart('s1');
    net.dropWhere((message) => message.type === 'AppendRequest' && message.entries.some((entry) => entry.term === 3) && net.core(message.to).lastIndex >= 2);
    for (let attempt = 0; attempt < 3 && net.core('s1').role !== 'leader'; attempt++) net.campaign('s1');
    assert.equal(net.core('s1').role, 'leader');
    assert.equal(net.core('s1').term, 3);
    assert.equal(net.core('s3').termAt(2), 1, 'A reached s3');
    assert.equal(net.core('s4').termAt(2), 1, 'A reached s4');
    const commitAfterC = net.core('s1').commitIndex;
    // (d)
    net.crash('s1');
    net.clearDrops();
    net.restart('s5');
    for (let attempt = 0; attempt < 3 && net.core('s5').role !== 'leader'; attempt++) net.campaign('s5');
    assert.equal(net.core('s5').role, 'leader', 's5 can win: no entry of term 3 is on a majority');
    net.stabilize();
    const appliedAt2 = new Map<NodeId, string>();
    for (const id of ids) {
      const entry = net.applied(id).find((applied) => applied.index === 2);
      if (entry !== undefined) appliedAt2.set(id, `${entry.kind}@${entry.term}`);
    }
    return { commitAfterC, appliedAt2 };
  }

  const figure8Cases = [
    { bug: false, commitAfterC: 1 },
    { bug: true, commitAfterC: 2 },
  ];
  for (const { bug, commitAfterC } of figure8Cases) {
    test(`Figure 8: ${bug ? 'with commitPriorTermByCounting planted, A is committed and then lost' : 'an earlier-term entry on a majority is not committed'}`, () => {
      // Reference: Raft §5.4.2 and Figure 8 (a leader cannot conclude that an entry from a previous term is
      // committed once it is stored on a majority). The planted-bug row shows this test can fail.
      const result = figure8(bug);
      assert.equal(result.commitAfterC, commitAfterC);
      const values = new Set(result.appliedAt2.values());
      if (bug) {
        // State Machine Safety is broken: s1 applied A at index 2, the others applied s5's no-op there.
        assert.equal(result.appliedAt2.get('s1'), 'normal@1');
        assert.equal(result.appliedAt2.get('s2'), 'noop@2');
        assert.equal(values.size, 2);
      } else {
        assert.deepEqual([...values], ['noop@2'], 'every member that applied index 2 applied the same entry');
        assert.equal(result.appliedAt2.has('s1'), false, 's1 never applied A');
      }
    });
  }

  test('Figure 8 (e): once an entry of the leader\'s term is on a majority, the earlier entries commit with it', () => {
    // Reference: Raft §5.4.2, Figure 8 (e): committing the current-term entry commits A indirectly (Log
    // Matching), and no member without A can then win an election.
    const net = new Network({ voters: ['s1', 's2', 's3', 's4', 's5'] });
    net.elect('s1');
    net.partition(['s1'], ['s3', 's4', 's5']);
    assert.ok(net.propose('s1', 'A').ok);
    net.stabilize();
    net.crash('s1');
    net.heal();
    net.partition(['s5'], ['s2']);
    net.dropWhere((message) => message.from === 's5' && message.type === 'AppendRequest');
    net.elect('s5');
    net.crash('s5');
    net.heal();
    net.clearDrops();
    net.restart('s1');
    for (let attempt = 0; attempt < 3 && net.core('s1').role !== 'leader'; attempt++) net.campaign('s1');
    assert.equal(net.core('s1').role, 'leader');
    assert.equal(net.core('s1').commitIndex, 3, 'A (index 2) commits with the term-3 no-op (index 3)');
    assert.deepEqual(net.appliedValues('s3'), ['A']);
    net.crash('s1');
    net.restart('s5');
    net.campaign('s5');
    net.campaign('s5');
    assert.notEqual(net.core('s5').role, 'leader', 's5 lacks the committed entries and cannot win');
  });
});

describe('commit-only appends to caught-up followers need no answer', () => {
  test('the leader marks noReply only an empty append to a follower that acknowledged all it was sent; that follower commits and sends nothing back', () => {
    const net = new Network({ voters: THREE });
    net.elect('a');
    net.stabilize();
    net.sent = [];
    const result = net.propose('a', 'x');
    assert.ok(result.ok);
    net.stabilize();
    // Every follower applied x, and the commit-only appends that reached caught-up followers went unanswered.
    for (const id of THREE) assert.deepEqual(net.appliedValues(id), ['x'], id);
    const appends = net.sent.filter((m) => m.type === 'AppendRequest');
    const noReply = appends.filter((m) => m.type === 'AppendRequest' && m.noReply === true);
    assert.ok(noReply.length >= 1, 'at least the follower whose ack committed x got an unanswerable commit notice');
    for (const m of noReply) assert.ok(m.type === 'AppendRequest' && m.entries.length === 0 && m.commit >= result.lastIndex);
    const answers = net.sent.filter((m) => m.type === 'AppendResponse');
    // One answer per append, except the noReply ones.
    assert.equal(answers.length, appends.length - noReply.length);
  });

  test('a follower\'s lost acknowledgement of an entry is repaired: the leader learns its match within a few ticks', () => {
    const net = new Network({ voters: THREE });
    net.elect('a');
    net.stabilize();
    const result = net.propose('a', 'x');
    assert.ok(result.ok);
    const fromC = (m: Message): boolean => m.type === 'AppendResponse' && m.from === 'c';
    net.stabilize(fromC);
    net.deliver((m) => !fromC(m));
    net.queue = net.queue.filter((m) => !fromC(m)); // every answer c sent since x is lost
    net.stabilize();
    assert.equal(net.core('a').status().commitIndex, result.lastIndex);
    assert.ok((net.core('a').status().progress['c']?.match ?? 0) < result.lastIndex, 'the leader does not know c holds x yet');
    net.runUntil(() => net.core('a').status().progress['c']?.match === result.lastIndex, 5);
    assert.equal(net.core('a').status().progress['c']?.match, result.lastIndex, 'a heartbeat round repaired c\'s match');
  });

  test('a follower still answers a noReply append it must reject, and the leader repairs it', () => {
    const net = new Network({ voters: THREE });
    net.elect('a');
    net.stabilize();
    // c misses x (its appends are dropped), then gets a forged commit notice claiming it holds x: it rejects it.
    net.dropWhere((m) => m.to === 'c' && m.type === 'AppendRequest');
    const result = net.propose('a', 'x');
    assert.ok(result.ok);
    net.stabilize();
    net.clearDrops();
    net.sent = [];
    net.core('c').step({ type: 'AppendRequest', from: 'a', to: 'c', term: net.core('a').term, prevLogIndex: result.lastIndex, prevLogTerm: net.core('a').term, entries: [], commit: result.lastIndex, noReply: true });
    net.flush();
    const rejects = net.sent.filter((m) => m.type === 'AppendResponse' && m.from === 'c' && !m.success);
    assert.equal(rejects.length, 1, 'the reject is answered');
    net.stabilize();
    net.run(20);
    assert.deepEqual(net.appliedValues('c'), ['x'], 'c caught up');
  });
});

describe('a follower whose disk lost entries it had acknowledged', () => {
  test('says so in its heartbeat answer and is replicated to again, in a quiet group and under writes', () => {
    // Not in the Raft paper, which assumes stable storage: a member whose write-ahead log lost its tail (a disk that
    // dropped fsynced writes; jepsen-like A7 truncates LevelDB's log) restarts with a shorter log. The leader's
    // match for it is higher than its log; its refusals of appends fall at or below that match and read as stale.
    const net = new Network({ voters: THREE });
    net.elect('a');
    for (let i = 0; i < 10; i++) assert.equal(net.propose('a', `x${i}`).ok, true);
    net.stabilize();
    const lastIndex = net.core('a').lastIndex;
    assert.equal(net.core('c').lastIndex, lastIndex);
    // c loses everything after index 3 (its hard state keeps the commit it had, as a batch written earlier would).
    net.crash('c');
    const store = net.node('c').store;
    store.entries = store.entries.filter((entry) => entry.index <= 3);
    store.hardState = { ...store.hardState, commit: Math.min(store.hardState.commit, 3) };
    net.restart('c', 'from-snapshot');
    assert.equal(net.core('c').lastIndex, 3);
    // Quiet group: only heartbeats flow. c's answer says what it lacks; the leader sends it again.
    net.runUntil(() => net.core('c').lastIndex === lastIndex, 50);
    assert.equal(net.core('c').lastIndex, lastIndex, 'c has the whole log again');
    net.stabilize();
    assert.deepEqual(net.appliedValues('c'), net.appliedValues('a'));
    // Under writes, once more: c loses its tail again and new entries keep coming.
    net.crash('c');
    store.entries = store.entries.filter((entry) => entry.index <= 5);
    store.hardState = { ...store.hardState, commit: Math.min(store.hardState.commit, 5) };
    net.restart('c', 'from-snapshot');
    for (let i = 0; i < 5; i++) {
      assert.equal(net.propose('a', `y${i}`).ok, true);
      net.run(1);
    }
    net.runUntil(() => net.core('c').lastIndex === net.core('a').lastIndex, 50);
    net.stabilize();
    assert.equal(net.core('c').lastIndex, net.core('a').lastIndex);
    assert.deepEqual(net.appliedValues('c'), net.appliedValues('a'));
    assert.equal(net.leader(), 'a', 'no election was needed');
  });

  test('a healthy follower never reports missing entries (heartbeats carry at most what it acknowledged)', () => {
    const net = new Network({ voters: THREE });
    net.elect('a');
    for (let i = 0; i < 20; i++) {
      net.propose('a', `x${i}`);
      net.run(1);
    }
    net.stabilize();
    const reports = net.sent.filter((message) => message.type === 'HeartbeatResponse' && message.missingFrom !== undefined);
    assert.equal(reports.length, 0);
  });
});
