// Goal: `cairn check` (src/cli/check.ts) refuses bad command lines with exit 2 before any call, compares digests only
// at one applied index, asks again while the members' indexes differ and then agrees (exit 0), reports differing
// digests with exit 1 and every member's answer, treats an answer that is not a digest or an error answer as "no
// comparison" (exit 3 once --wait runs out), compares the members' newest shared checkpoint digests when their live
// indexes never meet, and never throws on what a member sends.
// Method: the parser and judge directly; executeCheck against two small node:http servers on 127.0.1.87-88 (this
// file's addresses) that answer scripted digests in turn. (test/cluster/state-digest.test.ts runs it against real
// members.)

import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { test } from 'node:test';
import { executeCheck, judge, judgeCheckpoints, parseCheck, parseCheckpoints, parseDigest, runCheck, type Answer, type CheckpointsAnswer, type MemberDigest } from '../src/cli/check.ts';

const sha = (c: string): string => c.repeat(64);
const digest = (member: string, appliedIndex: number, sha256: string, records = 3): MemberDigest => ({ member, appliedIndex, records, bytes: 90, sha256 });
const ok = (d: MemberDigest): Answer => ({ ok: true, digest: d });

function capture(): { out: { stdout: (text: string) => void; stderr: (text: string) => void }; stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { out: { stdout: (text) => stdout.push(text), stderr: (text) => stderr.push(text) }, stdout, stderr };
}

test('bad command lines exit 2 before any call', async () => {
  const cases: ReadonlyArray<readonly [readonly string[], RegExp]> = [
    [[], /--members is required/],
    [['--members', '127.0.1.87:8848'], /give 2 to 16 members; got 1/],
    [['--members', '127.0.1.87:8848,127.0.1.87:8848'], /listed twice/],
    [['--members', '127.0.1.87:8848,,127.0.1.88:8848'], /empty entry/],
    [['--members', '127.0.1.87,127.0.1.88:8848'], /not HOST:PORT/],
    [['--members', Array.from({ length: 17 }, (_, i) => `127.0.1.87:${8000 + i}`).join(',')], /got 17/],
    [['--members', '127.0.1.87:8848,127.0.1.88:8848', '--wait', '-1'], /--wait/],
    [['--members', '127.0.1.87:8848,127.0.1.88:8848', '--wait', 'soon'], /--wait/],
    [['--members', '127.0.1.87:8848,127.0.1.88:8848', '--wait', '3601'], /--wait/],
    [['--members', '127.0.1.87:8848,127.0.1.88:8848', '--bogus'], /bogus/],
  ];
  for (const [args, message] of cases) {
    const { out, stdout, stderr } = capture();
    assert.equal(await runCheck(args, out), 2, args.join(' '));
    assert.match(stderr.join(''), message, args.join(' '));
    assert.deepEqual(stdout, []);
  }
  assert.deepEqual(parseCheck(['--members', '127.0.1.87:8848,[::1]:8848', '--wait', '2.5', '--json']), { members: ['127.0.1.87:8848', '[::1]:8848'], waitMs: 2500, json: true });
  assert.equal(parseCheck(['--help']), 'help');
});

test('judge: digests count only at one applied index; any failed answer means ask again', () => {
  const a = '127.0.1.87:8848';
  const b = '127.0.1.88:8848';
  assert.deepEqual(judge([ok(digest(a, 7, sha('a'))), ok(digest(b, 7, sha('a')))]), { verdict: 'agree', appliedIndex: 7, digest: digest(a, 7, sha('a')), checkpoint: false });
  assert.deepEqual(judge([ok(digest(a, 7, sha('a'))), ok(digest(b, 7, sha('b')))]), { verdict: 'differ', appliedIndex: 7, digests: [digest(a, 7, sha('a')), digest(b, 7, sha('b'))], checkpoint: false });
  // Same digest, other counts: not the same state.
  assert.equal(judge([ok(digest(a, 7, sha('a'), 3)), ok(digest(b, 7, sha('a'), 4))]).verdict, 'differ');
  const apart = judge([ok(digest(a, 7, sha('a'))), ok(digest(b, 8, sha('b')))]);
  assert.equal(apart.verdict, 'retry');
  assert.match(apart.verdict === 'retry' ? apart.reason : '', /different applied indexes \(127\.0\.1\.87:8848 7, 127\.0\.1\.88:8848 8\)/);
  const failed = judge([ok(digest(a, 7, sha('a'))), { ok: false, member: b, error: 'CAIRN_MEMBER_BEHIND: installing' }]);
  assert.deepEqual(failed, { verdict: 'retry', reason: '127.0.1.88:8848: CAIRN_MEMBER_BEHIND: installing' });
  assert.equal(judge([]).verdict, 'retry');
});

test('judgeCheckpoints: the digests at the newest checkpoint every member holds; nothing when one gave none or none is shared', () => {
  const a = '127.0.1.87:8848';
  const b = '127.0.1.88:8848';
  const listed = (member: string, digests: MemberDigest[]): CheckpointsAnswer => ({ ok: true, member, every: 100, digests, comparisons: [] });
  const agree = judgeCheckpoints([listed(a, [digest(a, 300, sha('c')), digest(a, 200, sha('b'))]), listed(b, [digest(b, 200, sha('b')), digest(b, 100, sha('a'))])]);
  assert.deepEqual(agree, { verdict: 'agree', appliedIndex: 200, digest: digest(a, 200, sha('b')), checkpoint: true });
  const differ = judgeCheckpoints([listed(a, [digest(a, 200, sha('b'))]), listed(b, [digest(b, 200, sha('e'))])]);
  assert.deepEqual(differ, { verdict: 'differ', appliedIndex: 200, digests: [digest(a, 200, sha('b')), digest(b, 200, sha('e'))], checkpoint: true });
  assert.equal(judgeCheckpoints([listed(a, [digest(a, 300, sha('c'))]), listed(b, [digest(b, 200, sha('b'))])]), null);
  assert.equal(judgeCheckpoints([listed(a, [digest(a, 200, sha('b'))]), { ok: false, member: b, error: 'HTTP 404' }]), null);
  assert.equal(judgeCheckpoints([]), null);
});

test('parseCheckpoints refuses anything that is not a checkpoint report', () => {
  const entry = { appliedIndex: 100, records: 1, bytes: 2, sha256: sha('0') };
  const comparison = { peer: 'p:1', appliedIndex: 100, agree: false, sha256: sha('0'), peerSha256: sha('1'), comparedAt: '2026-11-24T02:00:00.000Z' };
  assert.deepEqual(parseCheckpoints('m:1', { member: 'm:1', every: 100, checkpoints: [entry], comparisons: [comparison] }),
    { every: 100, digests: [{ member: 'm:1', ...entry }], comparisons: [{ peer: 'p:1', appliedIndex: 100, agree: false }] });
  const report = { every: 100, checkpoints: [], comparisons: [] };
  const hostile: unknown[] = [null, 'x', {}, { ...report, every: -1 }, { ...report, every: 1.5 }, { every: 100, comparisons: [] }, { ...report, checkpoints: {} },
    { ...report, checkpoints: [entry, entry] }, { ...report, checkpoints: [{ ...entry, sha256: 'zz' }] }, { ...report, checkpoints: Array.from({ length: 17 }, (_, i) => ({ ...entry, appliedIndex: i + 1 })) },
    { every: 100, checkpoints: [] }, { ...report, comparisons: [{ ...comparison, agree: 'no' }] }, { ...report, comparisons: [{ ...comparison, peer: '' }] },
    { ...report, comparisons: [{ ...comparison, appliedIndex: -1 }] }, { ...report, comparisons: [null] }, { ...report, comparisons: Array.from({ length: 17 }, () => comparison) }];
  for (const body of hostile) assert.throws(() => parseCheckpoints('m:1', body), /not a (checkpoint report|state digest)|index twice|not one/, JSON.stringify(body));
});

test('parseDigest refuses anything that is not a digest', () => {
  const valid = { member: 'x', appliedIndex: 3, records: 1, bytes: 2, sha256: sha('0') };
  assert.deepEqual(parseDigest('m:1', valid), { member: 'm:1', appliedIndex: 3, records: 1, bytes: 2, sha256: sha('0') });
  const hostile: unknown[] = [null, 'x', 7, [], {}, { ...valid, appliedIndex: -1 }, { ...valid, appliedIndex: 1.5 }, { ...valid, appliedIndex: '3' },
    { ...valid, records: 2 ** 60 }, { ...valid, sha256: sha('A') }, { ...valid, sha256: sha('0').slice(1) }, { ...valid, sha256: null }, { ...valid, bytes: undefined }];
  for (const body of hostile) assert.throws(() => parseDigest('m:1', body), /not a state digest/, JSON.stringify(body));
});

/**
 * scripted starts a server answering GET /cairn/v1/state/digest with its script's bodies in turn (the last repeats),
 * and GET /cairn/v1/state/checkpoints with `checkpoints` (404 when absent).
 */
async function scripted(host: string, script: ReadonlyArray<{ status: number; body: string }>, checkpoints?: string): Promise<{ server: Server; addr: string; calls: () => number }> {
  let calls = 0;
  const server = createServer((request, response) => {
    if (request.url === '/cairn/v1/state/checkpoints') {
      response.writeHead(checkpoints === undefined ? 404 : 200, { 'content-type': 'application/json' }).end(checkpoints ?? '{}');
      return;
    }
    const step = script[Math.min(calls, script.length - 1)] ?? { status: 500, body: '' };
    calls++;
    response.writeHead(request.url === '/cairn/v1/state/digest' ? step.status : 404, { 'content-type': 'application/json' }).end(step.body);
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const address = server.address();
  assert.ok(address !== null && typeof address === 'object');
  return { server, addr: `${host}:${address.port}`, calls: () => calls };
}

const body = (appliedIndex: number, sha256: string): { status: number; body: string } => ({ status: 200, body: JSON.stringify({ member: 'm', appliedIndex, records: 5, bytes: 50, sha256 }) });

async function closeAll(servers: readonly Server[]): Promise<void> {
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
}

test('executeCheck asks again while the indexes differ, then agrees (0) or reports the digests (1)', async () => {
  const lagging = await scripted('127.0.1.87', [body(5, sha('a')), body(9, sha('c'))]);
  const ahead = await scripted('127.0.1.88', [body(9, sha('c'))]);
  try {
    const { out, stdout } = capture();
    assert.equal(await executeCheck({ members: [lagging.addr, ahead.addr], waitMs: 10_000, json: false }, out), 0);
    assert.equal(lagging.calls(), 2);
    assert.equal(stdout.join(''), `the 2 replicas agree at applied index 9: 5 records, sha256 ${sha('c')}\n`);
  } finally {
    await closeAll([lagging.server, ahead.server]);
  }
  const left = await scripted('127.0.1.87', [body(9, sha('c'))]);
  const right = await scripted('127.0.1.88', [body(9, sha('d'))]);
  try {
    const { out, stderr } = capture();
    assert.equal(await executeCheck({ members: [left.addr, right.addr], waitMs: 10_000, json: false }, out), 1);
    const text = stderr.join('');
    assert.match(text, /the replicas DIFFER at applied index 9/);
    assert.ok(text.includes(`${left.addr}  applied 9  5 records  50 bytes  sha256 ${sha('c')}`), text);
    assert.ok(text.includes(`${right.addr}  applied 9  5 records  50 bytes  sha256 ${sha('d')}`), text);
    const json = capture();
    assert.equal(await executeCheck({ members: [left.addr, right.addr], waitMs: 0, json: true }, json.out), 1);
    assert.equal((JSON.parse(json.stdout.join('')) as { verdict: string }).verdict, 'differ');
  } finally {
    await closeAll([left.server, right.server]);
  }
});

test('executeCheck: error answers, bodies that are not digests and dead members give exit 3 once --wait runs out', async () => {
  const behind = await scripted('127.0.1.87', [{ status: 503, body: JSON.stringify({ code: 'CAIRN_MEMBER_BEHIND', message: 'installing a snapshot' }) }]);
  const garbage = await scripted('127.0.1.88', [{ status: 200, body: '{"appliedIndex":"lots"' }]);
  try {
    const { out, stderr } = capture();
    assert.equal(await executeCheck({ members: [behind.addr, garbage.addr], waitMs: 600, json: false }, out), 3);
    const text = stderr.join('');
    assert.match(text, /no comparison within 0\.6 s/);
    assert.match(text, /CAIRN_MEMBER_BEHIND: installing a snapshot/);
    assert.match(text, /not a state digest/);
    assert.ok(behind.calls() >= 2, 'asked again before giving up');
  } finally {
    await closeAll([behind.server, garbage.server]);
  }
  // Nothing listens on these ports (servers closed above): the connection is refused.
  const { out, stderr } = capture();
  assert.equal(await executeCheck({ members: [behind.addr, garbage.addr], waitMs: 0, json: false }, out), 3);
  assert.match(stderr.join(''), /cannot reach http:\/\/127\.0\.1\.87:\d+\/cairn\/v1\/state\/digest/);
});

test('executeCheck: members that never meet at one index are compared at their newest shared checkpoint (0 or 1); without one, exit 3', async () => {
  const report = (...entries: Array<[number, string]>): string => JSON.stringify({ member: 'm', every: 100, checkpoints: entries.map(([appliedIndex, sha256]) => ({ appliedIndex, records: 5, bytes: 50, sha256 })), comparisons: [] });
  const left = await scripted('127.0.1.87', [body(310, sha('1'))], report([300, sha('c')], [200, sha('b')]));
  const right = await scripted('127.0.1.88', [body(290, sha('2'))], report([200, sha('b')], [100, sha('a')]));
  try {
    const { out, stdout } = capture();
    assert.equal(await executeCheck({ members: [left.addr, right.addr], waitMs: 10_000, json: false }, out), 0);
    assert.match(stdout.join(''), new RegExp(`^the 2 replicas agree at checkpoint 200 \\(the members stand at different applied indexes: .*\\): 5 records, sha256 ${sha('b')}\n$`));
    assert.ok(left.calls() >= 2, 'the live digests were asked again before the checkpoints were compared');
  } finally {
    await closeAll([left.server, right.server]);
  }
  const ours = await scripted('127.0.1.87', [body(310, sha('1'))], report([200, sha('b')]));
  const theirs = await scripted('127.0.1.88', [body(290, sha('2'))], report([200, sha('e')]));
  try {
    const { out, stderr } = capture();
    assert.equal(await executeCheck({ members: [ours.addr, theirs.addr], waitMs: 10_000, json: false }, out), 1);
    const text = stderr.join('');
    assert.match(text, /the replicas DIFFER at checkpoint 200/);
    assert.ok(text.includes(`${theirs.addr}  applied 200  5 records  50 bytes  sha256 ${sha('e')}`), text);
    const json = capture();
    assert.equal(await executeCheck({ members: [ours.addr, theirs.addr], waitMs: 0, json: true }, json.out), 1);
    const parsed = JSON.parse(json.stdout.join('')) as { verdict: string; checkpoint: { appliedIndex: number; digests: Array<{ sha256: string }> } };
    assert.equal(parsed.verdict, 'differ');
    assert.deepEqual([parsed.checkpoint.appliedIndex, ...parsed.checkpoint.digests.map((d) => d.sha256)], [200, sha('b'), sha('e')]);
  } finally {
    await closeAll([ours.server, theirs.server]);
  }
  const old = await scripted('127.0.1.87', [body(310, sha('1'))]);
  const other = await scripted('127.0.1.88', [body(290, sha('2'))], report([200, sha('b')]));
  try {
    const { out, stderr } = capture();
    assert.equal(await executeCheck({ members: [old.addr, other.addr], waitMs: 3_500, json: false }, out), 3);
    assert.match(stderr.join(''), /different applied indexes .*, and they share no checkpoint/);
  } finally {
    await closeAll([old.server, other.server]);
  }
});
