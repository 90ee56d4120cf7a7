// Goal: the member nemesis's decisions (jepsen-like/membership.ts) follow Cairn's membership contract
// (docs/operations.md): a member's view is read as Cairn reports it (its own 'unknown' role means "not a voter",
// another member's 'unknown' does not), the final check accepts only every member reporting every member as a
// voter, the victim is sometimes the leader and never one that would leave fewer than 3 voters, and an answer to
// POST/DELETE /cairn/v1/cluster/members is settled only when it proves the change committed (200, or
// CAIRN_MEMBERSHIP_CHANGE_INVALID, which Cairn answers only against a committed configuration). Method: crafted
// views and answers; seeded draws over many seeds.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ClusterView, HttpResult } from '../../jepsen-like/client-http.ts';
import { answerOf, chooseVictim, membershipProblems, roleSeenBy, votersSeenBy } from '../../jepsen-like/membership.ts';
import { Random } from '../../jepsen-like/random.ts';

const all = ['127.0.0.11:8100', '127.0.0.12:8100', '127.0.0.13:8100', '127.0.0.14:8100', '127.0.0.15:8100'];
const [a, b, c, d, e] = all as [string, string, string, string, string];

/** view builds GET /cairn/v1/cluster as `self` reports it: voters, learners, and itself even when in neither. */
function view(self: string, leader: string | null, voters: readonly string[], learners: readonly string[] = []): ClusterView {
  const members = [...voters, ...learners];
  if (!members.includes(self)) members.push(self);
  return {
    leader,
    term: 3,
    members: members.sort().map((addr) => ({
      addr,
      role: learners.includes(addr) ? 'learner' : addr === leader ? 'leader' : addr === self ? (voters.includes(self) ? 'follower' : 'unknown') : self === leader ? 'follower' : 'unknown',
      term: 3,
      commitIndex: 10,
    })),
  };
}

function answer(status: number, code: string | null, text = ''): HttpResult {
  return { answer: { status, code, text } };
}

describe('votersSeenBy and roleSeenBy', () => {
  test("a follower's view: peers it does not know are 'unknown' but are voters", () => {
    assert.deepEqual(votersSeenBy(view(b, a, all), b), all);
  });

  test("a removed member lists itself as 'unknown': not a voter", () => {
    const four = all.filter((addr) => addr !== e);
    assert.deepEqual(votersSeenBy(view(e, null, four), e), four);
    assert.equal(roleSeenBy(view(a, a, four), a, e), 'absent');
  });

  test('a learner is neither a voter nor absent', () => {
    const v = view(a, a, [a, b, c, d], [e]);
    assert.deepEqual(votersSeenBy(v, a), [a, b, c, d]);
    assert.equal(roleSeenBy(v, a, e), 'learner');
    assert.equal(roleSeenBy(v, a, b), 'voter');
  });
});

describe('membershipProblems', () => {
  test('every member reporting every member as a voter converged', () => {
    const views = new Map(all.map((addr) => [addr, view(addr, a, all)]));
    assert.deepEqual(membershipProblems(views, all), []);
  });

  test('a member still out, a learner, a silent member and a stale view are each reported', () => {
    const four = all.filter((addr) => addr !== e);
    const views = new Map<string, ClusterView | null>([
      [a, view(a, a, four, [e])],
      [b, view(b, a, four)],
      [c, null],
      [d, view(d, a, all)],
      [e, view(e, null, [])],
    ]);
    const problems = membershipProblems(views, all);
    assert.ok(problems.some((p) => p.startsWith(`${a} reports learners ${e}`)), problems.join('; '));
    assert.ok(problems.some((p) => p.startsWith(`${b} reports voters ${four.join(',')}`)), problems.join('; '));
    assert.ok(problems.some((p) => p === `${c} did not answer GET /cairn/v1/cluster`), problems.join('; '));
    assert.ok(problems.some((p) => p === `${e} reports voters none`), problems.join('; '));
    assert.ok(!problems.some((p) => p.startsWith(d)), problems.join('; '));
  });

  test('a member absent from the expected list but listed as a voter is a mismatch', () => {
    const views = new Map(all.slice(0, 4).map((addr) => [addr, view(addr, a, all)]));
    assert.equal(membershipProblems(views, all.slice(0, 4)).length, 4);
  });
});

describe('chooseVictim', () => {
  test('over many seeds the victim is sometimes the leader and sometimes a follower, always an eligible voter', () => {
    const roles = new Map<string, number>();
    for (let seed = 1; seed <= 200; seed++) {
      const victim = chooseVictim(a, all, [a, b, c, e], new Random(seed));
      assert.ok(victim !== null);
      assert.notEqual(victim.addr, d, 'an ineligible member (not running, or in another fault) is never chosen');
      assert.equal(victim.role === 'leader', victim.addr === a);
      roles.set(victim.role, (roles.get(victim.role) ?? 0) + 1);
    }
    assert.ok((roles.get('leader') ?? 0) >= 50, `leader chosen ${roles.get('leader') ?? 0} times of 200`);
    assert.ok((roles.get('follower') ?? 0) >= 50, `follower chosen ${roles.get('follower') ?? 0} times of 200`);
  });

  test('never below 3 voters: with 3 voters nobody is removed; with 4 one may be', () => {
    assert.equal(chooseVictim(a, [a, b, c], [a, b, c], new Random(1)), null);
    assert.notEqual(chooseVictim(a, [a, b, c, d], [a, b, c, d], new Random(1)), null);
  });

  test('an ineligible leader leaves a follower; nobody eligible leaves nobody', () => {
    for (let seed = 1; seed <= 20; seed++) assert.equal(chooseVictim(a, all, [b], new Random(seed))?.addr, b);
    assert.equal(chooseVictim(a, all, [], new Random(1)), null);
  });
});

describe('answerOf', () => {
  test('200 committed; CAIRN_MEMBERSHIP_CHANGE_INVALID not applicable (the configuration is committed)', () => {
    assert.equal(answerOf(answer(200, null, '{}')).answer, 'committed');
    assert.equal(answerOf(answer(400, 'CAIRN_MEMBERSHIP_CHANGE_INVALID', 'x is not a member')).answer, 'not-applicable');
  });

  test('leader changes, pending changes, unknown outcomes and silence are retried', () => {
    for (const code of ['CAIRN_NOT_LEADER', 'CAIRN_NO_LEADER', 'CAIRN_MEMBERSHIP_CHANGE_PENDING', 'CAIRN_OUTCOME_UNKNOWN', 'CAIRN_PROPOSAL_DROPPED', 'CAIRN_TRANSFER_IN_PROGRESS']) {
      assert.equal(answerOf(answer(503, code)).answer, 'retry', code);
    }
    assert.equal(answerOf({ failure: 'timeout', maybeSent: true }).answer, 'retry');
    assert.equal(answerOf({ failure: 'ECONNREFUSED', maybeSent: false }).answer, 'retry');
  });

  test('a request Cairn will refuse again is refused', () => {
    assert.equal(answerOf(answer(400, 'CAIRN_INVALID_ARGUMENT', 'bad address')).answer, 'refused');
    assert.equal(answerOf(answer(404, null, 'no route')).answer, 'refused');
  });
});
