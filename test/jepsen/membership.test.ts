// Goal: the member nemesis's decisions (jepsen-like/membership.ts) follow Cairn's membership contract
// (docs/operations.md): a member's view is read as Cairn reports it (its own 'unknown' role means "not a voter",
// another member's 'unknown' does not), the final check accepts only every member reporting every member as a
// voter, the victim is sometimes the leader and never one that would leave fewer than 3 voters, and an answer to
// POST/DELETE /cairn/v1/cluster/members is settled only when it proves the change committed (200, or
// CAIRN_MEMBERSHIP_CHANGE_INVALID, which Cairn answers only against a committed configuration). Method: crafted
// views and answers; seeded draws over many seeds.

import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import type { ClusterView, HttpResult } from '../../jepsen-like/client-http.ts';
import { addMember, answerOf, chooseVictim, membershipProblems, noteLeaderless, roleSeenBy, votersSeenBy } from '../../jepsen-like/membership.ts';
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

describe('a change waits out a leaderless cluster', () => {
  test('noteLeaderless folds a run of the same note into one line with a count', () => {
    const attempts: string[] = ['127.0.0.12:8100: 409 CAIRN_MEMBERSHIP_CHANGE_PENDING'];
    for (let i = 0; i < 3; i++) noteLeaderless(attempts, 'no leader');
    noteLeaderless(attempts, '127.0.0.14:8100: 503 CAIRN_NO_LEADER');
    noteLeaderless(attempts, 'no leader');
    assert.deepEqual(attempts, ['127.0.0.12:8100: 409 CAIRN_MEMBERSHIP_CHANGE_PENDING', 'no leader x3', '127.0.0.14:8100: 503 CAIRN_NO_LEADER', 'no leader']);
  });

  // A chaos run (jepsen-like, seed 40000: member + kill majority + partitions) had the re-addition of a member give up
  // after 12 polls that found no leader while a majority was down; the leaderless polls no longer use up the request
  // budget. A real HTTP listener on this file's 127.0.1.39 plays the cluster: no leader for 20 polls, then a member
  // that claims to lead but answers CAIRN_NO_LEADER 15 times, then the leader, which commits the addition.
  test('20 polls without a leader and 15 CAIRN_NO_LEADER answers do not end an addition', async () => {
    let posts = 0;
    const server = http.createServer((request, response) => {
      posts++;
      if (request.method !== 'POST' || posts <= 15) {
        response.writeHead(503, { 'cairn-error-code': 'CAIRN_NO_LEADER', 'content-type': 'application/json' });
        response.end(JSON.stringify({ code: 'CAIRN_NO_LEADER', message: 'the cluster has no leader', retryable: true }));
        return;
      }
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end('{}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.1.39', resolve));
    try {
      const leader = `127.0.1.39:${(server.address() as AddressInfo).port}`;
      let polls = 0;
      const report = await addMember('127.0.0.15:8100', () => Promise.resolve(++polls <= 20 ? null : leader), 1);
      assert.equal(report.settled, true, report.attempts.join('; '));
      assert.equal(report.role, 'voter');
      assert.equal(posts, 16);
      assert.deepEqual(report.attempts, ['no leader x20', `${leader}: 503 CAIRN_NO_LEADER x15`, `${leader}: 200`]);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  test('answered requests still stop at the budget: a change always told to retry gives up unsettled', async () => {
    let posts = 0;
    const server = http.createServer((_request, response) => {
      posts++;
      response.writeHead(409, { 'cairn-error-code': 'CAIRN_MEMBERSHIP_CHANGE_PENDING', 'content-type': 'application/json' });
      response.end(JSON.stringify({ code: 'CAIRN_MEMBERSHIP_CHANGE_PENDING', message: 'a change is pending', retryable: true }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.1.39', resolve));
    try {
      const leader = `127.0.1.39:${(server.address() as AddressInfo).port}`;
      const report = await addMember('127.0.0.15:8100', () => Promise.resolve(leader), 1);
      assert.equal(report.settled, false);
      assert.equal(report.role, 'unknown');
      assert.equal(posts, 12);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
