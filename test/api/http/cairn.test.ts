// Goal: pin Cairn's own routes (DESIGN.md "Cairn's own": /cairn/v1/health, /cairn/v1/cluster, /cairn/v1/state/digest, transfer-leader,
// membership changes, /metrics) and the concerns every route shares: the one authorization hook (every route goes
// through it, a refusal writes nothing, no header grants anything), request ids echoed, request metrics by route
// pattern, request logs with secrets redacted, and 501 for routes that do not exist.
// Method: buildApp() with the real naming layer over a registry state machine (no Raft) and a fake ClusterControl,
// driven with inject(); the logging test hands buildApp a pino logger writing into memory.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import pino from 'pino';
import { Registry } from 'prom-client';
import { CairnError } from '../../../src/errors.ts';
import { AssertionError } from '../../../src/assert.ts';
import { buildApp, redactUrl } from '../../../src/api/http/app.ts';
import { buildHarness, call, FakeCluster, javaClient, query, type Method } from './harness.ts';
import { createDirectNaming } from '../../support/direct-proposer.ts';

const persistent = { serviceName: 'svc', ip: '10.0.0.1', port: 8080, ephemeral: false };

test('GET /cairn/v1/health: 200 UP while the member serves, 503 DOWN otherwise', async () => {
  const h = await buildHarness();
  const up = await call(h.app, 'GET', '/cairn/v1/health');
  assert.equal(up.status, 200);
  assert.deepEqual(up.json(), { status: 'UP', leader: '127.0.1.1:8848', term: 7 });
  h.cluster.readyNow = false;
  const down = await call(h.app, 'GET', '/cairn/v1/health');
  assert.equal(down.status, 503);
  assert.deepEqual(down.json(), { status: 'DOWN', leader: '127.0.1.1:8848', term: 7 });
  await h.app.close();
});

test('Nacos console probes: liveness always OK; readiness OK while the member serves, 500 otherwise (v1 text, v2 envelope)', async () => {
  const h = await buildHarness();
  const answers = async (): Promise<Array<[number, string]>> => {
    const paths = ['/nacos/v1/console/health/liveness', '/nacos/v1/console/health/readiness', '/nacos/v2/console/health/liveness', '/nacos/v2/console/health/readiness'];
    const out: Array<[number, string]> = [];
    for (const path of paths) {
      const answer = await call(h.app, 'GET', path);
      out.push([answer.status, answer.text]);
    }
    return out;
  };
  assert.deepEqual(await answers(), [
    [200, 'OK'], [200, 'OK'],
    [200, '{"code":0,"message":"success","data":"ok"}'], [200, '{"code":0,"message":"success","data":"ok"}'],
  ]);
  h.cluster.readyNow = false;
  assert.deepEqual(await answers(), [
    [200, 'OK'], [500, 'Naming is not in readiness'],
    [200, '{"code":0,"message":"success","data":"ok"}'], [500, '{"code":30000,"message":"server error","data":"Naming is not in readiness"}'],
  ]);
  await h.app.close();
});

test('GET /cairn/v1/cluster: {leader, term, members: [{addr, role, term, commitIndex, appliedIndex, matchIndex, lastContactMs}]}', async () => {
  const h = await buildHarness();
  const answer = await call(h.app, 'GET', '/cairn/v1/cluster');
  assert.equal(answer.status, 200);
  assert.deepEqual(answer.json(), {
    leader: '127.0.1.1:8848',
    term: 7,
    members: [
      { addr: '127.0.1.1:8848', role: 'leader', term: 7, commitIndex: 42, appliedIndex: 42, matchIndex: 43, lastContactMs: 0 },
      { addr: '127.0.1.2:8848', role: 'follower', term: null, commitIndex: null, appliedIndex: null, matchIndex: 41, lastContactMs: 120 },
      { addr: '127.0.1.3:8848', role: 'follower', term: null, commitIndex: null, appliedIndex: null, matchIndex: null, lastContactMs: null },
    ],
  });
  await h.app.close();
});

test('GET /cairn/v1/state/digest: {member, appliedIndex, records, bytes, sha256}; a member behind answers 503', async () => {
  const h = await buildHarness();
  const answer = await call(h.app, 'GET', '/cairn/v1/state/digest');
  assert.equal(answer.status, 200);
  assert.deepEqual(answer.json(), { member: '127.0.1.1:8848', appliedIndex: 42, records: 3, bytes: 300, sha256: 'ab'.repeat(32) });
  h.cluster.failWith = new CairnError('CAIRN_MEMBER_BEHIND', 'installing a snapshot');
  const behind = await call(h.app, 'GET', '/cairn/v1/state/digest');
  assert.equal(behind.status, 503);
  assert.equal((behind.json() as { code: string }).code, 'CAIRN_MEMBER_BEHIND');
  assert.deepEqual(h.cluster.calls, ['stateDigest']);
  await h.app.close();
});

test('GET /cairn/v1/state/checkpoints: the interval, the digests newest first and the last comparison with each peer', async () => {
  const h = await buildHarness();
  const empty = await call(h.app, 'GET', '/cairn/v1/state/checkpoints');
  assert.equal(empty.status, 200);
  assert.deepEqual(empty.json(), { member: '127.0.1.1:8848', every: 100, checkpoints: [], comparisons: [] });
  const ours = { applied: 200, records: 5, bytes: 500, sha256: 'cd'.repeat(32) };
  h.cluster.report = {
    member: '127.0.1.1:8848', every: 100,
    digests: [ours, { applied: 100, records: 3, bytes: 300, sha256: 'ab'.repeat(32) }],
    comparisons: [{ peer: '127.0.1.2:8848', applied: 200, agree: false, ours, theirs: { ...ours, sha256: 'ef'.repeat(32) }, comparedAtMs: Date.UTC(2026, 10, 24, 2, 0, 0) }],
  };
  const answer = await call(h.app, 'GET', '/cairn/v1/state/checkpoints');
  assert.deepEqual(answer.json(), {
    member: '127.0.1.1:8848', every: 100,
    checkpoints: [{ appliedIndex: 200, records: 5, bytes: 500, sha256: 'cd'.repeat(32) }, { appliedIndex: 100, records: 3, bytes: 300, sha256: 'ab'.repeat(32) }],
    comparisons: [{ peer: '127.0.1.2:8848', appliedIndex: 200, agree: false, sha256: 'cd'.repeat(32), peerSha256: 'ef'.repeat(32), comparedAt: '2026-11-24T02:00:00.000Z' }],
  });
  assert.deepEqual(h.cluster.calls, ['checkpoints', 'checkpoints']);
  await h.app.close();
});

test('transfer-leader and membership changes call the cluster and answer its status', async () => {
  const h = await buildHarness();
  const transfer = await call(h.app, 'POST', '/cairn/v1/cluster/transfer-leader?to=127.0.1.2:8848');
  assert.equal(transfer.status, 200);
  assert.equal((transfer.json() as { leader: string }).leader, '127.0.1.1:8848');
  assert.equal((await call(h.app, 'POST', '/cairn/v1/cluster/members?addr=127.0.1.4:8848')).status, 200);
  assert.equal((await call(h.app, 'DELETE', '/cairn/v1/cluster/members', { body: 'addr=127.0.1.3:8848' })).status, 200);
  assert.deepEqual(h.cluster.calls, ['transferLeader 127.0.1.2:8848', 'addMember 127.0.1.4:8848', 'removeMember 127.0.1.3:8848']);
  await h.app.close();
});

test('Cairn routes answer CairnError JSON with the catalog status; bad addresses change nothing', async () => {
  const h = await buildHarness();
  const cases: Array<[string, string, string]> = [
    ['POST', '/cairn/v1/cluster/transfer-leader', "Param 'to' is required."],
    ['POST', '/cairn/v1/cluster/transfer-leader?to=nohost', "Param 'to' must be a member address HOST:PORT (got 'nohost')."],
    ['POST', '/cairn/v1/cluster/members?addr=a:99999', "Param 'addr' must be a member address HOST:PORT (got 'a:99999')."],
    ['DELETE', '/cairn/v1/cluster/members?addr=', "Param 'addr' is required."],
  ];
  for (const [method, url, detail] of cases) {
    const answer = await call(h.app, method as Method, url);
    assert.equal(answer.status, 400, url);
    const body = answer.json() as { code: string; message: string; retryable: boolean };
    assert.equal(body.code, 'CAIRN_INVALID_ARGUMENT');
    assert.equal(body.message, `invalid argument: ${detail}`);
    assert.equal(body.retryable, false);
    assert.equal(answer.headers['cairn-error-code'], 'CAIRN_INVALID_ARGUMENT');
  }
  h.cluster.failWith = new CairnError('CAIRN_MEMBERSHIP_CHANGE_PENDING');
  const pending = await call(h.app, 'POST', '/cairn/v1/cluster/members?addr=127.0.1.4:8848');
  assert.equal(pending.status, 409);
  assert.deepEqual(pending.json(), { code: 'CAIRN_MEMBERSHIP_CHANGE_PENDING', message: 'another membership change is pending', retryable: true });
  h.cluster.failWith = new CairnError('CAIRN_NOT_LEADER', undefined, { details: { leader: '127.0.1.2:8848' } });
  const notLeader = await call(h.app, 'POST', '/cairn/v1/cluster/transfer-leader?to=127.0.1.2:8848');
  assert.equal(notLeader.status, 503);
  assert.deepEqual((notLeader.json() as { details: unknown }).details, { leader: '127.0.1.2:8848' });
  assert.deepEqual(h.cluster.calls, []);
  await h.app.close();
});

test('unknown routes and wrong methods: Nacos\'s 501 text under /nacos, CairnError JSON elsewhere', async () => {
  const h = await buildHarness();
  const nacos: Array<[string, string, string]> = [
    ['GET', '/nacos/v1/ns/nothing?x=1', 'no such api:GET:/nacos/v1/ns/nothing'],
    ['DELETE', '/nacos/v1/ns/instance/list', 'no such api:DELETE:/nacos/v1/ns/instance/list'],
    ['POST', '/nacos/v2/ns/operator/metrics', 'no such api:POST:/nacos/v2/ns/operator/metrics'],
    ['GET', '/nacos/v1/ns/catalog/instances', 'no such api:GET:/nacos/v1/ns/catalog/instances'],
  ];
  for (const [method, url, text] of nacos) {
    const answer = await call(h.app, method as Method, url);
    assert.equal(answer.status, 501, url);
    assert.equal(answer.text, text);
    assert.match(answer.contentType, /^text\/plain/);
  }
  const own = await call(h.app, 'PUT', '/cairn/v1/cluster');
  assert.equal(own.status, 501);
  assert.equal((own.json() as { code: string }).code, 'CAIRN_NOT_IMPLEMENTED');
  await h.app.close();
});

test('a malformed URL is refused before routing in the shape of its API', async () => {
  const h = await buildHarness();
  const v1 = await call(h.app, 'GET', '/nacos/v1/ns/instance%zz');
  assert.deepEqual([v1.status, v1.text], [400, "'/nacos/v1/ns/instance%zz' is not a valid url component (CAIRN_INVALID_ARGUMENT)"]);
  const v2 = await call(h.app, 'GET', '/nacos/v2/ns/instance%zz');
  assert.deepEqual([v2.status, (v2.json() as { code: number }).code], [400, 20002]);
  const own = await call(h.app, 'GET', '/cairn/v1/%zz');
  assert.deepEqual([own.status, (own.json() as { code: string }).code], [400, 'CAIRN_INVALID_ARGUMENT']);
  await h.app.close();
});

test('every route passes the one authorization hook with (identity, namespace, resource, action)', async () => {
  const h = await buildHarness();
  await call(h.app, 'POST', `/nacos/v1/ns/instance?${query({ ...persistent, namespaceId: 'ns1', groupName: 'g' })}`);
  await call(h.app, 'GET', '/nacos/v2/ns/instance/list?serviceName=g2@@svc2');
  await call(h.app, 'GET', '/nacos/v1/ns/service/list?pageNo=1&pageSize=10');
  await call(h.app, 'GET', '/nacos/v1/ns/operator/metrics');
  await call(h.app, 'GET', '/cairn/v1/health');
  await call(h.app, 'GET', '/cairn/v1/cluster');
  await call(h.app, 'POST', '/cairn/v1/cluster/transfer-leader?to=127.0.1.2:8848');
  await call(h.app, 'GET', '/metrics');
  assert.deepEqual(h.authorizations, [
    { identity: null, namespace: 'ns1', resource: 'g@@svc', action: 'write' },
    { identity: null, namespace: 'public', resource: 'g2@@svc2', action: 'read' },
    { identity: null, namespace: 'public', resource: '*', action: 'read' },
    { identity: null, namespace: 'public', resource: 'metrics', action: 'read' },
    { identity: null, namespace: 'public', resource: 'health', action: 'read' },
    { identity: null, namespace: 'public', resource: 'cluster', action: 'read' },
    { identity: null, namespace: 'public', resource: 'cluster', action: 'write' },
    { identity: null, namespace: 'public', resource: 'metrics', action: 'read' },
  ]);
  await h.app.close();
});

test('a refused request writes nothing, whatever headers it carries (no Nacos-Server bypass)', async () => {
  const h = await buildHarness();
  h.refuse = new CairnError('CAIRN_FORBIDDEN', 'not allowed');
  const headers = { 'user-agent': 'Nacos-Server', 'client-version': 'Nacos-Server' };
  const v1 = await call(h.app, 'POST', `/nacos/v1/ns/instance?${query(persistent)}`, { headers });
  assert.equal(v1.status, 403);
  assert.equal(v1.text, 'not allowed (CAIRN_FORBIDDEN)');
  const v2 = await call(h.app, 'POST', `/nacos/v2/ns/instance?${query(persistent)}`, { headers });
  assert.equal(v2.status, 403);
  assert.deepEqual(v2.json(), { code: 10001, message: 'access denied', data: 'not allowed (CAIRN_FORBIDDEN)' });
  const own = await call(h.app, 'POST', '/cairn/v1/cluster/transfer-leader?to=127.0.1.2:8848', { headers });
  assert.equal(own.status, 403);
  assert.deepEqual(h.cluster.calls, []);
  h.refuse = null;
  const list = await call(h.app, 'GET', '/nacos/v1/ns/instance/list?serviceName=svc', { headers: javaClient });
  assert.deepEqual((list.json() as { hosts: unknown[] }).hosts, []);
  await h.app.close();
});

test('a route registered without declaring its access is a start-up failure', async () => {
  const { naming } = createDirectNaming();
  const app = buildApp({ naming, cluster: new FakeCluster(), metrics: new Registry(), logger: false });
  app.register(async (child) => {
    child.get('/undeclared', async () => 'x');
  });
  await assert.rejects(async () => {
    await app.ready();
  }, AssertionError);
});

test('request ids: the client\'s Cairn-Request-Id or RequestId is echoed; otherwise one is made', async () => {
  const h = await buildHarness();
  const own = await call(h.app, 'GET', '/cairn/v1/health', { headers: { 'cairn-request-id': 'req-1' } });
  assert.equal(own.headers['cairn-request-id'], 'req-1');
  const nacos = await call(h.app, 'GET', '/nacos/v1/ns/operator/metrics', { headers: { requestid: 'nacos-2' } });
  assert.equal(nacos.headers['cairn-request-id'], 'nacos-2');
  const made = await call(h.app, 'GET', '/cairn/v1/health');
  assert.match(String(made.headers['cairn-request-id']), /^[0-9a-f-]{36}$/);
  const bad = await call(h.app, 'POST', `/nacos/v1/ns/instance?${query(persistent)}`, { headers: { 'cairn-request-id': 'x'.repeat(200) } });
  assert.equal(bad.status, 400);
  assert.match(bad.text, /cairn-request-id/);
  const list = await call(h.app, 'GET', '/nacos/v1/ns/instance/list?serviceName=svc');
  assert.deepEqual((list.json() as { hosts: unknown[] }).hosts, []);
  await h.app.close();
});

test('GET /metrics exposes request latency by method, route pattern and status', async () => {
  const h = await buildHarness();
  await call(h.app, 'GET', '/nacos/v1/ns/instance/list?serviceName=svc');
  await call(h.app, 'GET', '/nacos/v1/ns/instance/list');
  await call(h.app, 'GET', '/nacos/v1/ns/missing');
  const answer = await call(h.app, 'GET', '/metrics');
  assert.equal(answer.status, 200);
  assert.match(answer.contentType, /^text\/plain; version=0\.0\.4/);
  assert.match(answer.text, /cairn_http_request_duration_seconds_count\{method="GET",route="\/nacos\/v1\/ns\/instance\/list",status="200"\} 1/);
  assert.match(answer.text, /cairn_http_request_duration_seconds_count\{method="GET",route="\/nacos\/v1\/ns\/instance\/list",status="400"\} 1/);
  assert.match(answer.text, /cairn_http_request_duration_seconds_count\{method="GET",route="unmatched",status="501"\} 1/);
  await h.app.close();
});

/** loggingApp builds an app logging at `level` into a list of parsed lines. */
function loggingApp(level: string, cluster = new FakeCluster()): { app: ReturnType<typeof buildApp>; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString('utf8').split('\n')) if (line !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
      callback();
    },
  });
  const { naming } = createDirectNaming();
  return { app: buildApp({ naming, cluster, metrics: new Registry(), logger: pino({ level }, sink) }), lines };
}

test('request logs are one pino line per request with the URL\'s secrets redacted', async () => {
  const { app, lines } = loggingApp('debug');
  await app.inject({ method: 'GET', url: '/nacos/v1/ns/operator/metrics?username=nacos&password=s3cret' });
  await app.close();
  const logged = JSON.stringify(lines);
  assert.doesNotMatch(logged, /s3cret/);
  assert.match(logged, /password=\[redacted\]/);
  const answered = lines.filter((line) => line['msg'] === 'request answered');
  assert.equal(answered.length, 1, logged);
  assert.equal(answered[0]?.['status'], 200);
  assert.equal(lines.filter((line) => line['msg'] === 'incoming request' || line['msg'] === 'request completed').length, 0, 'fastify\'s own two lines are off');
});

test('at the default level (info) a successful request writes no line, a refused one writes one; a long URL is cut', async () => {
  const { app, lines } = loggingApp('info');
  await app.inject({ method: 'GET', url: '/nacos/v1/ns/instance/list?serviceName=svc' });
  assert.equal(lines.length, 0, JSON.stringify(lines));
  await app.inject({ method: 'GET', url: `/nacos/v1/ns/instance/list?serviceName=${'x'.repeat(10_000)}` });
  await app.close();
  const answered = lines.filter((line) => line['msg'] === 'request answered');
  assert.equal(answered.length, 1, JSON.stringify(lines).slice(0, 500));
  assert.equal(answered[0]?.['level'], 30);
  assert.equal(answered[0]?.['status'], 400);
  const url = String((answered[0]?.['req'] as Record<string, unknown> | undefined)?.['url']);
  assert.ok(url.length < 600, `logged url of ${url.length} chars`);
  assert.match(url, /\.\.\.\[\d+ more chars\]$/);
});

test('redactUrl hides secret parameters and keeps the rest', () => {
  assert.equal(redactUrl('/x'), '/x');
  assert.equal(redactUrl('/x?a=1&password=p&accessToken=t&healthChecker=%7B%7D&b=2'),
    '/x?a=1&password=[redacted]&accessToken=[redacted]&healthChecker=[redacted]&b=2');
  assert.equal(redactUrl('/x?pass%77ord=p'), '/x?pass%77ord=[redacted]');
  assert.equal(redactUrl('/x?%E0%A4%A=1'), '/x?%E0%A4%A=1');
});

test('at info, a 503 with a retryable code (the member\'s own state) writes no line; a 500 writes a warning', async () => {
  const cluster = new FakeCluster();
  const { app, lines } = loggingApp('info', cluster);
  cluster.failWith = new CairnError('CAIRN_MEMBER_BEHIND', 'installing a snapshot');
  for (let i = 0; i < 5; i++) assert.equal((await app.inject({ method: 'GET', url: '/cairn/v1/state/digest' })).statusCode, 503);
  assert.deepEqual(lines.filter((line) => line['msg'] === 'request answered'), [], 'no line per refused request');
  cluster.failWith = new CairnError('CAIRN_INTERNAL', 'broken');
  assert.equal((await app.inject({ method: 'GET', url: '/cairn/v1/state/digest' })).statusCode, 500);
  await app.close();
  const answered = lines.filter((line) => line['msg'] === 'request answered');
  assert.deepEqual(answered.map((line) => [line['level'], line['status']]), [[40, 500]]);
});
