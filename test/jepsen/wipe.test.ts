// Goal: the wipe nemesis (jepsen-like/nemesis.ts, PEERS.md A9) judges a start that Cairn must refuse the way
// Cairn documents the refusal: a wiped member started without --join exits non-zero with
// `cairn server: CAIRN_MEMBER_STATE_MISSING: ...` and the advice to restart it with --join (docs/operations.md, "A
// member that lost its data"); a data directory started under another address exits non-zero with
// `CAIRN_INVALID_ARGUMENT: the data directory ... belongs to member X` (src/member.ts, prepareStorage). Anything else
// is reported: a start that printed ready or answered HTTP (accepted: the amnesia A9 is about), one still running at
// the bound, one that exited 0, with another code, without the advice, or by a signal. Also: the address change is
// tried only from a free reserved address, and the faults alternate so a short run has both kinds. Method: crafted
// observations, using Cairn's own advice text (src/replica/bootstrap.ts) so a change of wording shows here.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ClusterView } from '../../jepsen-like/client-http.ts';
import { memberHosts } from '../../jepsen-like/control.ts';
import {
  freeHosts,
  judgeAttempt,
  movedRefusal,
  selfVoterWithLeader,
  startFailureOf,
  wipedRefusal,
  wipeModeOf,
  type AttemptObservation,
} from '../../jepsen-like/membership.ts';
import { rejoinAdvice } from '../../src/replica/bootstrap.ts';

const b = '127.0.0.12:8100';
const wipedLine = `cairn server: CAIRN_MEMBER_STATE_MISSING: ${rejoinAdvice(b)} (known to 127.0.0.11:8100, 127.0.0.13:8100)`;
const movedLine = `cairn server: CAIRN_INVALID_ARGUMENT: the data directory /run/data/127.0.0.12 belongs to member ${b}, not 127.0.0.14:8100`;
const pinoLine = '{"level":40,"member":"127.0.0.12:8100","msg":"empty data directory: waiting for every member to answer before starting as a voter"}';

/** exited builds the observation of a process that exited by itself with `code` after printing `output`. */
function exited(code: number, output: readonly string[]): AttemptObservation {
  return { exitCode: code, signal: null, killedByHarness: false, readyAfterMs: null, servedAfterMs: null, output };
}

describe('startFailureOf', () => {
  test('finds the code and message of the last `cairn server: CODE:` line', () => {
    assert.deepEqual(startFailureOf([pinoLine, movedLine]), { code: 'CAIRN_INVALID_ARGUMENT', message: `the data directory /run/data/127.0.0.12 belongs to member ${b}, not 127.0.0.14:8100` });
  });

  test('ignores log lines and usage errors without a code', () => {
    assert.equal(startFailureOf([pinoLine, "cairn server: --members: '127.0.0.14:8100' is listed twice", "Run 'cairn server --help' for usage."]), null);
  });
});

describe('judgeAttempt: the refusals Cairn documents', () => {
  test('a wiped member that exits 1 with CAIRN_MEMBER_STATE_MISSING and the --join advice was refused', () => {
    const judgement = judgeAttempt(exited(1, [pinoLine, wipedLine]), wipedRefusal);
    assert.equal(judgement.verdict, 'refused', judgement.detail);
    assert.equal(judgement.code, 'CAIRN_MEMBER_STATE_MISSING');
  });

  test('a moved data directory that exits 1 with CAIRN_INVALID_ARGUMENT "belongs to member" was refused', () => {
    const judgement = judgeAttempt(exited(1, [movedLine]), movedRefusal);
    assert.equal(judgement.verdict, 'refused', judgement.detail);
    assert.equal(judgement.code, 'CAIRN_INVALID_ARGUMENT');
  });

  test('each refusal is not mistaken for the other', () => {
    assert.equal(judgeAttempt(exited(1, [movedLine]), wipedRefusal).verdict, 'other');
    assert.equal(judgeAttempt(exited(1, [wipedLine]), movedRefusal).verdict, 'other');
  });

  test('the right code without the documented message is reported', () => {
    const judgement = judgeAttempt(exited(1, ['cairn server: CAIRN_INVALID_ARGUMENT: --addr: not a host:port']), movedRefusal);
    assert.equal(judgement.verdict, 'other');
    assert.match(judgement.detail, /without 'belongs to member'/);
  });
});

describe('judgeAttempt: what A9 must catch', () => {
  test('a start that printed ready is accepted (a voter that forgot its votes), even if it exited later', () => {
    const judgement = judgeAttempt({ ...exited(1, [`cairn ready ${b}`, wipedLine]), readyAfterMs: 2400 }, wipedRefusal);
    assert.equal(judgement.verdict, 'started');
    assert.match(judgement.detail, /printed 'cairn ready' after 2400 ms/);
  });

  test('a start that answered HTTP is accepted, killed by the harness or not', () => {
    const observed: AttemptObservation = { exitCode: null, signal: 'SIGKILL', killedByHarness: true, readyAfterMs: null, servedAfterMs: 3100, output: [] };
    const judgement = judgeAttempt(observed, wipedRefusal);
    assert.equal(judgement.verdict, 'started');
    assert.match(judgement.detail, /answered HTTP after 3100 ms/);
  });

  test('a start still running at the bound (the harness killed it) hung', () => {
    const observed: AttemptObservation = { exitCode: null, signal: 'SIGKILL', killedByHarness: true, readyAfterMs: null, servedAfterMs: null, output: [pinoLine] };
    assert.equal(judgeAttempt(observed, wipedRefusal).verdict, 'hung');
  });

  test('exit 0, another code, no code, or a signal nobody sent are reported', () => {
    assert.equal(judgeAttempt(exited(0, []), wipedRefusal).verdict, 'other');
    const noQuorum = judgeAttempt(exited(1, ['cairn server: CAIRN_NO_QUORUM: members 127.0.0.11:8100 did not answer within 600000 ms']), wipedRefusal);
    assert.equal(noQuorum.verdict, 'other');
    assert.equal(noQuorum.code, 'CAIRN_NO_QUORUM');
    assert.equal(judgeAttempt(exited(1, ['Error: listen EADDRINUSE: address already in use 127.0.0.12:7100']), wipedRefusal).verdict, 'other');
    const crashed: AttemptObservation = { exitCode: null, signal: 'SIGSEGV', killedByHarness: false, readyAfterMs: null, servedAfterMs: null, output: [] };
    assert.match(judgeAttempt(crashed, wipedRefusal).detail, /signal SIGSEGV/);
  });
});

describe('free addresses and the alternation of modes', () => {
  test('with 3 members 127.0.0.14 and .15 are free; with 5 none is', () => {
    assert.deepEqual(freeHosts(memberHosts, memberHosts.slice(0, 3)), ['127.0.0.14', '127.0.0.15']);
    assert.deepEqual(freeHosts(memberHosts, memberHosts), []);
  });

  test('faults alternate wiped, moved, wiped, ...; always wiped without a free address', () => {
    assert.deepEqual([0, 1, 2, 3].map((index) => wipeModeOf(index, 2)), ['wiped', 'moved', 'wiped', 'moved']);
    assert.deepEqual([0, 1, 2, 3].map((index) => wipeModeOf(index, 0)), ['wiped', 'wiped', 'wiped', 'wiped']);
  });
});

describe('selfVoterWithLeader: a restarted member is back as before', () => {
  const members = (selfRole: string): ClusterView['members'] => [
    { addr: '127.0.0.11:8100', role: 'leader', term: 4, commitIndex: 9 },
    { addr: b, role: selfRole, term: 4, commitIndex: 9 },
    { addr: '127.0.0.13:8100', role: 'unknown', term: 0, commitIndex: 0 },
  ];

  test('a follower that knows the leader is back', () => {
    assert.equal(selfVoterWithLeader({ leader: '127.0.0.11:8100', term: 4, members: members('follower') }, b), true);
  });

  test('no leader known yet, a learner, or not in its own configuration is not', () => {
    assert.equal(selfVoterWithLeader({ leader: null, term: 4, members: members('follower') }, b), false);
    assert.equal(selfVoterWithLeader({ leader: '127.0.0.11:8100', term: 4, members: members('learner') }, b), false);
    assert.equal(selfVoterWithLeader({ leader: '127.0.0.11:8100', term: 4, members: members('unknown') }, b), false);
  });
});
