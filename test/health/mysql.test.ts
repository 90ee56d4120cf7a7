// Goal: MySQL health checks find the writable primary (issue 4). The MYSQL prober, on real MariaDB servers, judges
// the primary (read_only OFF) healthy and a replica (read_only ON) unhealthy with Nacos's default SQL, keeps one
// connection per instance and closes it when the instance goes, refuses at once on a closed port, and never shows
// the password; end to end, a Cairn member probing a primary and a replica through the cluster's MYSQL checker
// (PUT /nacos/v1/ns/cluster) flips both within 20 s of a switchover (primary made read-only, replica made writable),
// after which `healthyOnly=true` names the new primary, and the password appears in no answer and no log line.
// Method: two mariadbd servers this file starts on free ports of 127.0.1.102 (its own address) with their own data
// directories (test/health/mariadb.ts), the prober driven directly, then a real member process (bin/cairn) on
// 127.0.1.103 driven over HTTP. Without mariadbd the tests skip, or fail under CAIRN_REQUIRE_ALL=1 (CI).

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { MysqlProber, judgeRows } from '../../src/health/mysql-prober.ts';
import type { ActiveChecker, ProbeTarget } from '../../src/health/probe.ts';
import { MYSQL_READ_ONLY_SQL } from '../../src/naming/model.ts';
import { startCluster, waitFor, jsonOf, type Member } from '../support/cluster.ts';
import { freePortOn, MariaDb, MARIADB_PASSWORD, MARIADB_USER, requireMariadb } from './mariadb.ts';

const dbHost = '127.0.1.102';
const memberHost = '127.0.1.103';

const readOnlyChecker: ActiveChecker = { type: 'MYSQL', user: MARIADB_USER, password: MARIADB_PASSWORD, sql: MYSQL_READ_ONLY_SQL };

function target(server: { host: string; port: number }, checker: ActiveChecker = readOnlyChecker): ProbeTarget {
  return { id: `db-${server.port}`, host: server.host, port: server.port, checker };
}

async function startPair(t: TestContext): Promise<{ primary: MariaDb; replica: MariaDb }> {
  const [primary, replica] = await Promise.all([MariaDb.start(dbHost), MariaDb.start(dbHost, { readOnly: true })]);
  t.after(() => Promise.all([primary.stop(), replica.stop()]));
  return { primary, replica };
}

test('judgeRows: read_only decides when reported; the default SQL must report it; other SQL succeeds', () => {
  assert.equal(judgeRows(MYSQL_READ_ONLY_SQL, [{ Variable_name: 'read_only', Value: 'OFF' }]).healthy, true);
  assert.equal(judgeRows(MYSQL_READ_ONLY_SQL, [{ Variable_name: 'read_only', Value: 'ON' }]).healthy, false);
  assert.equal(judgeRows(MYSQL_READ_ONLY_SQL, []).healthy, false);
  assert.equal(judgeRows('select 1', [{ 1: 1 }]).healthy, true);
});

test('MYSQL prober on real MariaDB: primary healthy, replica not, one kept connection each, closed on forget', async (t) => {
  if (!requireMariadb(t)) return;
  const { primary, replica } = await startPair(t);
  const prober = new MysqlProber();
  t.after(() => prober.close());
  for (let round = 0; round < 3; round++) {
    const up = await prober.probe(target(primary), 2000);
    assert.deepEqual([up.healthy, up.refused], [true, false], up.detail);
    const ro = await prober.probe(target(replica), 2000);
    assert.deepEqual([ro.healthy, ro.refused], [false, false], ro.detail);
    assert.match(ro.detail, /read_only is ON/);
  }
  assert.equal(prober.connections, 2, 'one connection per instance');
  // The asking connection is one of the user's: the prober's is the other.
  assert.equal(await primary.connectionsOf(MARIADB_USER), 2, 'the primary sees one probe connection after three probes');
  prober.forget(target(primary).id);
  assert.equal(prober.connections, 1);
  await waitFor(async () => (await primary.connectionsOf(MARIADB_USER)) === 1, { timeoutMs: 5000, what: 'the forgotten connection to close' });
  const custom = await prober.probe(target(replica, { ...readOnlyChecker, sql: 'select 1' }), 2000);
  assert.equal(custom.healthy, true, `another SQL only has to succeed: ${custom.detail}`);
});

test('MYSQL prober: at most connectionsHeldMax connections are kept; the least recently used goes first', async (t) => {
  if (!requireMariadb(t)) return;
  const server = await MariaDb.start(dbHost);
  t.after(() => server.stop());
  const prober = new MysqlProber({ connectionsHeldMax: 2 });
  t.after(() => prober.close());
  // Three targets on one server (as three instances of one host would be): one connection each while there is room.
  const targets = ['a', 'b', 'c'].map((name) => ({ ...target(server), id: `db-${name}` }));
  for (const each of targets.slice(0, 2)) assert.equal((await prober.probe(each, 2000)).healthy, true);
  assert.equal((await prober.probe(targets[0]!, 2000)).healthy, true, 'a is now the most recently used');
  assert.equal((await prober.probe(targets[2]!, 2000)).healthy, true);
  assert.equal(prober.connections, 2);
  await waitFor(async () => (await server.connectionsOf(MARIADB_USER)) === 3, { timeoutMs: 5000, what: 'b\'s connection to close (two kept, plus the asking one)' });
  for (const each of targets) assert.equal((await prober.probe(each, 2000)).healthy, true, 'every target is still probed');
  assert.equal(prober.connections, 2);
});

test('MYSQL prober: a wrong password fails without showing it; a closed port is refused; a stopped server fails', async (t) => {
  if (!requireMariadb(t)) return;
  const server = await MariaDb.start(dbHost);
  t.after(() => server.stop());
  const prober = new MysqlProber();
  t.after(() => prober.close());
  const wrong = 'wrong-Pa55word-xyz';
  const denied = await prober.probe(target(server, { ...readOnlyChecker, password: wrong }), 2000);
  assert.deepEqual([denied.healthy, denied.refused], [false, false], denied.detail);
  assert.match(denied.detail, /Access denied/);
  assert.ok(!denied.detail.includes(wrong), 'the password is never in a detail');
  const refused = await prober.probe(target({ host: dbHost, port: await freePortOn(dbHost) }), 2000);
  assert.deepEqual([refused.healthy, refused.refused], [false, true], refused.detail);
  assert.equal((await prober.probe(target(server), 2000)).healthy, true);
  await server.stop();
  const gone = await prober.probe(target(server), 2000);
  assert.equal(gone.healthy, false, gone.detail);
  const after = await prober.probe(target(server), 2000);
  assert.deepEqual([after.healthy, after.refused], [false, true], `reconnecting to a stopped server is refused: ${after.detail}`);
});

interface ListedHost {
  readonly ip: string;
  readonly port: number;
  readonly healthy: boolean;
}

async function healthyPorts(member: Member): Promise<number[]> {
  const answer = await member.request('GET', '/nacos/v1/ns/instance/list?serviceName=mysql&healthyOnly=true');
  assert.equal(answer.status, 200, answer.text);
  const body = jsonOf(answer, 'instance list') as { hosts: ListedHost[] };
  return body.hosts.filter((host) => host.healthy).map((host) => host.port).sort();
}

test('switchover: both flip within 20 s and healthyOnly=true names the new primary', async (t) => {
  if (!requireMariadb(t)) return;
  const { primary, replica } = await startPair(t);
  const cluster = await startCluster(t, { file: 'health-mysql', hosts: [memberHost], size: 1, httpPort: 18848 });
  const member = cluster.members[0];
  assert.ok(member !== undefined);
  for (const server of [primary, replica]) {
    const answer = await member.request('POST', `/nacos/v1/ns/instance?serviceName=mysql&ip=${server.host}&port=${server.port}&ephemeral=false`);
    assert.equal(answer.status, 200, answer.text);
  }
  const checker = JSON.stringify({ type: 'MYSQL', user: MARIADB_USER, pwd: MARIADB_PASSWORD, cmd: MYSQL_READ_ONLY_SQL });
  const put = await member.request('PUT', `/nacos/v1/ns/cluster?serviceName=mysql&clusterName=DEFAULT&checkPort=0&useInstancePort4Check=true&healthChecker=${encodeURIComponent(checker)}`);
  assert.equal(put.status, 200, put.text);
  await waitFor(async () => String(await healthyPorts(member)) === String([primary.port]), { timeoutMs: 20_000, intervalMs: 200, what: 'only the primary to be healthy' });

  const started = Date.now();
  await primary.setReadOnly(true);
  await replica.setReadOnly(false);
  await waitFor(async () => String(await healthyPorts(member)) === String([replica.port]), { timeoutMs: 20_000, intervalMs: 100, what: 'the new primary to be the only healthy instance' });
  const flippedMs = Date.now() - started;
  t.diagnostic(`switchover flipped both instances in ${flippedMs} ms`);
  assert.ok(flippedMs < 20_000);

  const service = await member.request('GET', '/nacos/v1/ns/service?serviceName=mysql');
  assert.equal(service.status, 200, service.text);
  assert.ok(service.text.includes('MYSQL'), service.text);
  assert.ok(!service.text.includes(MARIADB_PASSWORD), 'GET /service never returns the password');
  assert.ok(!member.logTail(400).includes(MARIADB_PASSWORD), 'no log line carries the password');
});
