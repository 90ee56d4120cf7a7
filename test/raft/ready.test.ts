// Goal: show that the core keeps its side of the Ready/advance contract (src/raft/types.ts, docs/raft.md): the
// entries and hard state a message depends on are in the same Ready as the message, so a driver that persists
// first never sends a promise it could forget; committed entries come in bounded batches; there is never a second
// Ready before advance(); and that proposals are refused with the typed codes of the catalog (not-leader with a
// hint, uncommitted-bytes-exceeded, entry-too-large) instead of being appended.
//
// Method: cores driven by hand (ready(), look, advance()) inside harness groups or alone, with tables where the
// rule has several inputs. The harness itself persists every Ready before queueing its messages, so the other
// test files run on a driver that honours the contract; here the Readys themselves are inspected.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { RaftInvariantError } from '../../src/raft/invariant.ts';
import type { AppendRequest, AppendResponse, NodeId } from '../../src/raft/types.ts';
import { encode, Network, soloCore, stateWithLog, takeReady } from './harness.ts';

const THREE: readonly NodeId[] = ['a', 'b', 'c'];

describe('the Ready contract', () => {
  test('a leader\'s proposal: the Ready that sends the AppendRequests also carries the entries to persist', () => {
    // Reference: Raft §5.3 and docs/raft.md (durability before messages; mustSync when entries change).
    const net = new Network({ voters: THREE });
    net.elect('a');
    const a = net.core('a');
    const result = net.propose('a', 'x');
    assert.ok(result.ok);
    const ready = a.ready();
    assert.deepEqual(ready.entries.map((entry) => entry.index), [result.firstIndex]);
    const appends = ready.messages.filter((message): message is AppendRequest => message.type === 'AppendRequest');
    assert.deepEqual(appends.map((message) => message.to), ['b', 'c']);
    for (const append of appends) assert.deepEqual(append.entries.map((entry) => entry.index), [result.firstIndex]);
    assert.equal(ready.mustSync, true);
    a.advance(ready);
  });

  test('a follower\'s AppendResponse leaves in the Ready that persists the entries it acknowledges', () => {
    // Reference: Raft §5.3 and docs/raft.md (a follower acknowledges entries only once they are durable).
    const net = new Network({ voters: THREE });
    net.elect('a');
    assert.ok(net.propose('a', 'x').ok);
    net.flush();
    net.deliver((message) => message.to === 'b');
    const ready = net.core('b').ready();
    assert.deepEqual(ready.entries.map((entry) => entry.index), [2]);
    const responses = ready.messages.filter((message): message is AppendResponse => message.type === 'AppendResponse');
    assert.equal(responses.length, 1);
    assert.equal(responses[0]?.matchIndex, 2);
    assert.equal(ready.mustSync, true);
    assert.equal(ready.messagesBeforePersist, false, 'a follower acknowledges only after its write (thesis §10.2.1 is for leaders)');
    net.core('b').advance(ready);
  });

  test('the leader counts itself towards a majority only for entries it has persisted', () => {
    // Reference: docs/raft.md (the leader's own match index rises in advance()); Raft §5.3.
    const net = new Network({ voters: ['a'] });
    net.elect('a');
    const a = net.core('a');
    const result = net.propose('a', 'x');
    assert.ok(result.ok);
    const ready = a.ready();
    assert.equal(a.commitIndex, result.firstIndex - 1, 'not committed while the write is outstanding');
    a.advance(ready);
    assert.equal(a.commitIndex, result.lastIndex, 'committed once persisted');
    assert.deepEqual(takeReady(a).committedEntries.map((entry) => entry.index), [result.lastIndex]);
  });

  test('messagesBeforePersist: only a leader\'s replication whose term and vote are durable may leave before the write', () => {
    // Reference: Raft thesis §10.2.1 (the leader writes its log in parallel with replicating it), Raft Figure 2
    // (followers and voters respond after updating stable storage).
    // A (pre-)candidate's requests wait for the write (a candidate's Ready changes its term and vote).
    const election = new Network({ voters: THREE });
    election.core('a').campaign();
    const campaign = election.core('a').ready();
    assert.ok(campaign.messages.some((message) => message.type === 'VoteRequest' || message.type === 'PreVoteRequest'));
    assert.equal(campaign.messagesBeforePersist, false, 'a candidate persists before asking for votes');
    const net = new Network({ voters: THREE });
    net.elect('a');
    const a = net.core('a');
    assert.ok(net.propose('a', 'x').ok);
    const leader = a.ready();
    assert.ok(leader.entries.length > 0 && leader.messages.every((message) => message.type === 'AppendRequest' || message.type === 'HeartbeatRequest'));
    assert.equal(leader.messagesBeforePersist, true, 'the leader\'s AppendRequests may leave before its own fsync');
    a.advance(leader);
    // A follower's acknowledgement: asserted in the AppendResponse test above (messagesBeforePersist false).
  });

  test('a commit-only change is handed out without mustSync', () => {
    // Reference: src/raft/types.ts HardState (persisting commit is an optimisation, not a safety requirement).
    const net = new Network({ voters: THREE });
    net.elect('a');
    assert.ok(net.propose('a', 'x').ok);
    net.stabilize((message) => message.type === 'HeartbeatRequest' || (message.type === 'AppendRequest' && message.entries.length === 0));
    const b = net.core('b');
    assert.equal(b.commitIndex, 1);
    net.tick('a');
    net.flush();
    net.deliver((message) => message.type === 'HeartbeatRequest' && message.to === 'b');
    const ready = b.ready();
    assert.equal(ready.hardState?.commit, 2);
    assert.deepEqual(ready.entries, []);
    assert.equal(ready.mustSync, false);
    assert.deepEqual(ready.committedEntries.map((entry) => entry.index), [2]);
    b.advance(ready);
  });

  // A member restarts with six committed entries of 19 bytes each ("i@1" + 16) not yet applied.
  const batchCases = [
    { committedBytesPerReadyMax: 1, batches: [1, 1, 1, 1, 1, 1] },
    { committedBytesPerReadyMax: 19, batches: [1, 1, 1, 1, 1, 1] },
    { committedBytesPerReadyMax: 38, batches: [2, 2, 2] },
    { committedBytesPerReadyMax: 56, batches: [2, 2, 2] },
    { committedBytesPerReadyMax: 57, batches: [3, 3] },
    { committedBytesPerReadyMax: 1 << 20, batches: [6] },
  ];
  for (const { committedBytesPerReadyMax, batches } of batchCases) {
    test(`committedEntries per Ready stay within committedBytesPerReadyMax ${committedBytesPerReadyMax} (at least one entry)`, () => {
      // Reference: docs/raft.md (bounded work per Ready); STYLE.md §3.
      const core = soloCore('b', THREE, { committedBytesPerReadyMax }, stateWithLog(THREE, [1, 1, 1, 1, 1, 1], { commit: 6 }));
      const sizes: number[] = [];
      const applied: number[] = [];
      for (let i = 0; i < 20 && core.hasReady(); i++) {
        const ready = takeReady(core);
        if (ready.committedEntries.length > 0) sizes.push(ready.committedEntries.length);
        applied.push(...ready.committedEntries.map((entry) => entry.index));
      }
      assert.deepEqual(sizes, batches);
      assert.deepEqual(applied, [1, 2, 3, 4, 5, 6]);
      assert.equal(core.appliedIndex, 6);
    });
  }

  test('no second Ready before advance(): ready() throws, hasReady() is false, new work waits for the next Ready', () => {
    // Reference: src/raft/types.ts Ready ("No other Ready is handed out between ready() and advance()").
    const net = new Network({ voters: THREE });
    net.elect('a');
    const a = net.core('a');
    assert.ok(net.propose('a', 'x').ok);
    const first = a.ready();
    assert.equal(a.hasReady(), false);
    assert.throws(() => a.ready(), RaftInvariantError);
    // Work that arrives while the Ready is outstanding goes into the next one.
    const y = net.propose('a', 'y');
    assert.ok(y.ok);
    assert.equal(a.hasReady(), false);
    a.advance(first);
    assert.throws(() => a.advance(first), RaftInvariantError, 'advance() without an outstanding Ready');
    assert.equal(a.hasReady(), true);
    const second = a.ready();
    assert.deepEqual(second.entries.map((entry) => entry.index), [y.firstIndex]);
    assert.ok(!first.entries.some((entry) => entry.index === y.firstIndex));
    a.advance(second);
  });
});

describe('proposal refusals', () => {
  const notLeaderCases = [
    { name: 'a follower that knows the leader', setup: 'follower', hint: 'a' },
    { name: 'a member that knows no leader', setup: 'fresh', hint: null },
    { name: 'a candidate', setup: 'candidate', hint: null },
  ] as const;
  for (const { name, setup, hint } of notLeaderCases) {
    test(`a proposal to ${name} is refused with not-leader (hint ${hint ?? 'none'})`, () => {
      // Reference: Raft §5.1 and §8 (a follower redirects clients to the leader it knows).
      const net = new Network({ voters: THREE });
      if (setup === 'follower') net.elect('a');
      if (setup === 'candidate') {
        net.isolate('b');
        net.campaign('b');
      }
      const lastIndex = net.core('b').lastIndex;
      assert.deepEqual(net.propose('b', 'x'), { ok: false, code: 'not-leader', leaderHint: hint });
      assert.equal(net.core('b').lastIndex, lastIndex);
    });
  }

  test('beyond uncommittedBytesMax a leader refuses proposals with uncommitted-bytes-exceeded until entries commit', () => {
    // Reference: STYLE.md §3 (back-pressure with a typed error); etcd's MaxUncommittedEntriesSize.
    const net = new Network({ voters: THREE, config: { uncommittedBytesMax: 100, messageBytesMax: 50, snapshotChunkBytes: 16 } });
    net.elect('a');
    net.partition(['a'], ['b', 'c']);
    const results = [0, 1, 2, 3].map((i) => net.propose('a', `value-000${i}`));
    assert.deepEqual(results.map((result) => result.ok), [true, true, true, false], '26 + 26 + 26 <= 100 < 26 * 4');
    assert.deepEqual(results[3], { ok: false, code: 'uncommitted-bytes-exceeded', leaderHint: null });
    net.stabilize();
    net.heal();
    net.tick('a');
    net.stabilize();
    assert.equal(net.appliedValues('a').length, 3);
    assert.ok(net.propose('a', 'value-0004').ok, 'accepted again once the backlog committed');
  });

  const sizeCases = [
    { sizes: [48], ok: true, why: '48 + 16 = messageBytesMax' },
    { sizes: [49], ok: false, why: 'one byte over' },
    { sizes: [10, 49, 10], ok: false, why: 'one entry of a batch is too large: nothing is appended' },
  ];
  for (const { sizes, ok, why } of sizeCases) {
    test(`entries of ${sizes.join(', ')} bytes with messageBytesMax 64 are ${ok ? 'accepted' : 'refused with entry-too-large'} (${why})`, () => {
      // Reference: STYLE.md §3; src/raft/types.ts (messageBytesMax bounds one AppendRequest; an entry must fit).
      const net = new Network({ voters: THREE, config: { messageBytesMax: 64, snapshotChunkBytes: 16 } });
      net.elect('a');
      const lastIndex = net.core('a').lastIndex;
      const result = net.core('a').propose(sizes.map((size) => encode('x'.repeat(size))));
      if (ok) {
        assert.ok(result.ok);
      } else {
        assert.deepEqual(result, { ok: false, code: 'entry-too-large', leaderHint: null });
        assert.equal(net.core('a').lastIndex, lastIndex);
      }
    });
  }
});

describe('messages of an older term never outlive a term change', () => {
  test('an acknowledgement queued before a higher-term leader truncates the log is dropped (simulator F2, seed 3170)', async () => {
    // Reference: Raft Figure 2 (a follower acknowledges only entries it stored) and §5.3 (truncation on conflict).
    const { RaftCore } = await import('../../src/raft/raft-core.ts');
    const data = new Uint8Array([1]);
    const entries = Array.from({ length: 13 }, (_, i) => ({ kind: 'normal' as const, index: i + 1, term: i + 1 <= 10 ? 1 : 10, data }));
    const voters = ['n1', 'n2', 'n3', 'n4', 'n5'];
    const core = new RaftCore(
      { id: 'n4', electionTicks: 10, heartbeatTicks: 2, seed: 1, preVote: true, checkQuorum: true, inflightMessagesMax: 64, inflightBytesMax: 1 << 20,
        messageBytesMax: 4096, uncommittedBytesMax: 1 << 20, committedBytesPerReadyMax: 1 << 20, snapshotChunkBytes: 1024, pendingReadsMax: 64 },
      { hardState: { term: 10, vote: null, commit: 11 }, snapshot: { index: 0, term: 0, membership: { voters, learners: [] } }, entries, applied: 11 },
    );
    while (core.hasReady()) core.advance(core.ready());
    core.step({ type: 'AppendRequest', from: 'n2', to: 'n4', term: 11, prevLogIndex: 13, prevLogTerm: 10, entries: [{ kind: 'normal', index: 14, term: 11, data }], commit: 11 });
    core.step({ type: 'AppendRequest', from: 'n1', to: 'n4', term: 13, prevLogIndex: 11, prevLogTerm: 10, entries: [{ kind: 'noop', index: 12, term: 13 }], commit: 11 });
    const ready = core.ready();
    assert.deepEqual(ready.entries.map((entry) => `${entry.index}/${entry.term}`), ['12/13']);
    const acks = ready.messages.filter((message): message is AppendResponse => message.type === 'AppendResponse' && message.success);
    assert.deepEqual(acks.map((ack) => `${ack.to}:${ack.term}:${ack.matchIndex}`), ['n1:13:12'], 'only the durable, current-term acknowledgement leaves');
  });
});
