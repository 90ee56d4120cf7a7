// Goal: a writable MySQL primary at its connection limit is not marked down (session 32's audit: during a connection
// storm the prober's kept connection was lost, its reconnects got ER_CON_COUNT_ERROR, and the only primary flipped
// unhealthy after three of them). A probe refused for the server's connection limits (ER_CON_COUNT_ERROR 1040,
// ER_TOO_MANY_USER_CONNECTIONS 1203) is inconclusive: it counts neither toward a flip to unhealthy nor toward healthy,
// leaves the consecutive counts as they were, and is counted in cairn_health_probes_total{result="inconclusive"}.
// Method: the counting rules as a table; then a real MariaDB server this file starts on a free port of 127.0.1.241
// (this file's address; test/health/mariadb.ts) with max_connections at its minimum (10) filled by a `filler`
// account, the prober's kept connection killed as after a wait_timeout or a restart, and its slot taken at once;
// the MysqlProber driven directly, then an ActiveHealthChecker over a RegistryStateMachine behind a DirectProposer.
// ER_TOO_MANY_USER_CONNECTIONS comes from a listener on the same address that answers the handshake with that ERR
// packet (MariaDB cannot switch max_user_connections on at run time).
// Without mariadbd the MariaDB tests skip, or fail under CAIRN_REQUIRE_ALL=1 (CI).

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import net, { type AddressInfo } from 'node:net';
import mysql from 'mysql2/promise';
import { Registry } from 'prom-client';
import { MysqlProber } from '../../src/health/mysql-prober.ts';
import type { ActiveChecker, ProbeResult, ProbeTarget } from '../../src/health/probe.ts';
import { countResult, decideFlip, type Counts } from '../../src/health/verdicts.ts';
import { ActiveHealthChecker } from '../../src/health/health-checker.ts';
import { CpRegistry } from '../../src/cp/cp-registry.ts';
import { RegistryStateMachine } from '../../src/cp/registry-state-machine.ts';
import { MYSQL_READ_ONLY_SQL, type ServiceKey } from '../../src/naming/model.ts';
import { DirectProposer, soleLeader } from '../support/direct-proposer.ts';
import { sleep, waitFor } from '../support/cluster.ts';
import { MariaDb, MARIADB_PASSWORD, MARIADB_USER, requireMariadb } from './mariadb.ts';

const host = '127.0.1.241';
const probeUser = 'probe';
const probePassword = 'probe-pw-Lm4';
const fillerUser = 'filler';
const fillerPassword = 'filler-pw-Qe7';
// MariaDB's smallest max_connections.
const maxConnections = 10;

const ok: ProbeResult = { healthy: true, refused: false, latencyMs: 1, detail: 'ok' };
const failed: ProbeResult = { healthy: false, refused: false, latencyMs: 1, detail: 'failed' };
const inconclusive: ProbeResult = { healthy: false, refused: false, inconclusive: true, latencyMs: 1, detail: 'at its connection limit' };

test('counting: an inconclusive result neither counts, resets nor flips', () => {
  const cases: ReadonlyArray<{ name: string; committed: boolean; results: readonly ProbeResult[]; flips: ReadonlyArray<boolean | null> }> = [
    { name: 'healthy, only inconclusive', committed: true, results: [inconclusive, inconclusive, inconclusive, inconclusive], flips: [null, null, null, null] },
    { name: 'healthy, failures around inconclusive ones', committed: true, results: [failed, failed, inconclusive, inconclusive, failed], flips: [null, null, null, null, false] },
    { name: 'unhealthy, only inconclusive', committed: false, results: [inconclusive, inconclusive, inconclusive], flips: [null, null, null] },
    { name: 'unhealthy, OKs around an inconclusive one', committed: false, results: [ok, ok, inconclusive, ok], flips: [null, null, null, true] },
  ];
  for (const each of cases) {
    const counts: Counts = { ok: 0, failed: 0 };
    const flips = each.results.map((result) => {
      countResult(counts, result);
      return decideFlip(each.committed, counts, result, 3);
    });
    assert.deepEqual(flips, each.flips, each.name);
  }
});

/** LimitedServer is a MariaDB server with a probe account and a filler account that takes its connection slots. */
class LimitedServer {
  readonly db: MariaDb;
  private readonly fillers: mysql.Connection[] = [];

  constructor(db: MariaDb) {
    this.db = db;
  }

  static async start(t: TestContext): Promise<LimitedServer> {
    const db = await MariaDb.start(host);
    const server = new LimitedServer(db);
    t.after(async () => {
      await server.release();
      await db.stop();
    });
    for (const [user, password] of [[probeUser, probePassword], [fillerUser, fillerPassword]] as const) {
      await db.query(`CREATE USER '${user}'@'%' IDENTIFIED BY '${password}'`);
    }
    await db.query(`SET GLOBAL max_connections = ${maxConnections}`);
    return server;
  }

  /** fill opens filler connections until the server refuses one for its limit; returns how many it opened. */
  async fill(): Promise<number> {
    let opened = 0;
    for (let attempt = 0; attempt < 2 * maxConnections; attempt++) {
      try {
        this.fillers.push(await mysql.createConnection({ host, port: this.db.port, user: fillerUser, password: fillerPassword, connectTimeout: 2000 }));
        opened += 1;
      } catch (error) {
        assert.equal((error as { code?: string }).code, 'ER_CON_COUNT_ERROR', String(error));
        return opened;
      }
    }
    throw new Error('the server never refused a connection');
  }

  /**
   * takeFreedSlot opens one filler connection as soon as the server has a free slot (a killed connection's slot frees
   * when its thread ends, a moment after KILL answers); false if none freed within 3 s.
   */
  async takeFreedSlot(): Promise<boolean> {
    const deadline = Date.now() + 3000;
    while (Date.now() < deadline) {
      if ((await this.fill()) > 0) return true;
      await sleep(10);
    }
    return false;
  }

  /**
   * killProbeConnections kills the probe account's connections (as wait_timeout, a restart or an operator would), on
   * one admin connection: MariaDB keeps one connection beyond max_connections for privileged accounts, and a second
   * one opened while the first is still closing would be refused.
   */
  async killProbeConnections(): Promise<number> {
    const admin = await waitFor(() => mysql.createConnection({ host, port: this.db.port, user: MARIADB_USER, password: MARIADB_PASSWORD, connectTimeout: 2000 }),
      { timeoutMs: 5000, intervalMs: 20, what: 'an admin connection' });
    try {
      const [rows] = await admin.query(`select id from information_schema.processlist where user = '${probeUser}'`);
      const ids = (rows as Array<{ id: number }>).map((row) => row.id);
      for (const id of ids) await admin.query(`KILL CONNECTION ${id}`);
      return ids.length;
    } finally {
      admin.destroy();
    }
  }

  async release(): Promise<void> {
    for (const connection of this.fillers.splice(0)) connection.destroy();
  }
}

function mysqlTarget(server: LimitedServer, id = 'primary'): ProbeTarget {
  const checker: ActiveChecker = { type: 'MYSQL', user: probeUser, password: probePassword, sql: MYSQL_READ_ONLY_SQL };
  return { id, host, port: server.db.port, checker };
}

test('MYSQL prober: a primary at max_connections is inconclusive, not a failure; other errors still fail', async (t) => {
  if (!requireMariadb(t)) return;
  const server = await LimitedServer.start(t);
  const prober = new MysqlProber();
  t.after(() => prober.close());
  const target = mysqlTarget(server);
  const first = await prober.probe(target, 2000);
  assert.equal(first.healthy, true, first.detail);
  assert.equal(await server.fill(), maxConnections - 1, 'the prober holds one slot, fillers the rest');
  assert.equal(await server.killProbeConnections(), 1);
  assert.equal(await server.takeFreedSlot(), true, 'the killed connection\'s slot is taken at once');
  assert.equal(await server.fill(), 0, 'and the server is full again');
  for (let round = 0; round < 3; round++) {
    const busy = await prober.probe(target, 2000);
    assert.deepEqual([busy.healthy, busy.refused, busy.inconclusive], [false, false, true], busy.detail);
    assert.match(busy.detail, /ER_CON_COUNT_ERROR/);
  }
  await server.release();
  await waitFor(async () => (await prober.probe(target, 2000)).healthy, { timeoutMs: 5000, what: 'the primary to answer once connections are free' });
  const denied = await prober.probe({ ...target, id: 'denied', checker: { ...target.checker, password: 'wrong' } as ActiveChecker }, 2000);
  assert.deepEqual([denied.healthy, denied.inconclusive ?? false], [false, false], `other errors stay failures: ${denied.detail}`);
});

/** limitServer answers every connection with one ERR packet as a server does when it refuses a connection. */
async function limitServer(t: TestContext, errno: number, sqlState: string, message: string): Promise<number> {
  const payload = Buffer.concat([Buffer.from([0xff, errno & 0xff, errno >> 8]), Buffer.from(`#${sqlState}${message}`)]);
  const packet = Buffer.concat([Buffer.from([payload.length & 0xff, (payload.length >> 8) & 0xff, payload.length >> 16, 0]), payload]);
  const server = net.createServer((socket) => {
    socket.on('error', () => undefined);
    socket.end(packet);
  });
  await new Promise<void>((resolve) => server.listen(0, host, () => resolve()));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return (server.address() as AddressInfo).port;
}

test('MYSQL prober: ER_TOO_MANY_USER_CONNECTIONS (max_user_connections) is inconclusive too; an access denial is not', async (t) => {
  // MariaDB refuses to change max_user_connections at run time when started without it, so a server that answers
  // the handshake with the ERR packet stands in for one (the same bytes mysql2 reads from MariaDB).
  const prober = new MysqlProber();
  t.after(() => prober.close());
  const checker: ActiveChecker = { type: 'MYSQL', user: probeUser, password: probePassword, sql: MYSQL_READ_ONLY_SQL };
  const perUser = await limitServer(t, 1203, '42000', "User probe already has more than 'max_user_connections' active connections");
  const limited = await prober.probe({ id: 'per-user', host, port: perUser, checker }, 2000);
  assert.deepEqual([limited.healthy, limited.refused, limited.inconclusive], [false, false, true], limited.detail);
  assert.match(limited.detail, /ER_TOO_MANY_USER_CONNECTIONS/);
  const denied = await limitServer(t, 1045, '28000', "Access denied for user 'probe'@'127.0.1.241' (using password: YES)");
  const failure = await prober.probe({ id: 'denied', host, port: denied, checker }, 2000);
  assert.deepEqual([failure.healthy, failure.refused, failure.inconclusive ?? false], [false, false, false], failure.detail);
});

test('health checker: the only primary stays healthy through a connection storm, its probes counted inconclusive', async (t) => {
  if (!requireMariadb(t)) return;
  const server = await LimitedServer.start(t);
  const machine = new RegistryStateMachine();
  const proposer = new DirectProposer(machine);
  const cp = new CpRegistry(proposer, machine);
  const self = `${host}:18848`;
  const raft = soleLeader(self, proposer);
  const key: ServiceKey = { namespace: 'public', group: 'DEFAULT_GROUP', service: 'mysql-primary' };
  await cp.createService({ key, protectThreshold: 0, metadata: {}, selector: { type: 'none' }, kind: null });
  await cp.putCluster(key, { name: 'DEFAULT', healthChecker: mysqlTarget(server).checker, checkPort: 80, useInstancePort4Check: true, metadata: {} });
  await cp.registerInstance(key, { cluster: 'DEFAULT', ip: host, port: server.db.port, weight: 1, enabled: true, healthy: true, metadata: {} });
  const metrics = new Registry();
  const verdicts: unknown[] = [];
  const bounds = { minMs: 300, maxMs: 400, factor: 0.5 };
  const checker = new ActiveHealthChecker({
    self, raft, proposer: cp, view: machine, registry: metrics,
    logger: { info: (fields, message) => { if (message === 'health verdict') verdicts.push(fields); }, warn: () => undefined },
    tuning: { reconcileMs: 20, settleMs: 0, timeoutMs: 1000, bounds: { TCP: bounds, HTTP: bounds, MYSQL: bounds } },
  });
  checker.start();
  t.after(() => checker.close());
  const probes = async (result: string): Promise<number> => {
    const found = (await metrics.getMetricsAsJSON()).find((entry) => entry.name === 'cairn_health_probes_total');
    return found?.values.find((entry) => entry.labels['type'] === 'MYSQL' && entry.labels['result'] === result)?.value ?? 0;
  };
  await waitFor(async () => (await probes('healthy')) >= 2, { timeoutMs: 10_000, what: 'two healthy probes' });
  await server.fill();
  // The prober may win the race for the killed connection's slot (it probes every 300-400 ms): then kill again.
  const notHealthy = async (): Promise<number> => (await probes('inconclusive')) + (await probes('unhealthy'));
  for (let attempt = 0; attempt < 5 && (await notHealthy()) === 0; attempt++) {
    await server.killProbeConnections();
    await server.takeFreedSlot();
    await sleep(1000);
  }
  // Six probes refused for the limit: twice what a flip to unhealthy takes.
  await waitFor(async () => (await notHealthy()) >= 6, { timeoutMs: 10_000, what: 'six probes during the storm' });
  await sleep(200);
  assert.equal(machine.getInstance({ ...key, cluster: 'DEFAULT', ip: host, port: server.db.port })?.healthy, true, `verdicts: ${JSON.stringify(verdicts)}`);
  assert.deepEqual(verdicts, [], 'no verdict was reached');
  assert.ok((await probes('inconclusive')) >= 6, 'the storm\'s probes are counted inconclusive');
  assert.equal(await probes('unhealthy'), 0, 'and none unhealthy');
  await server.release();
  const healthyBefore = await probes('healthy');
  await waitFor(async () => (await probes('healthy')) > healthyBefore, { timeoutMs: 10_000, what: 'healthy probes once connections are free' });
  assert.equal(machine.getInstance({ ...key, cluster: 'DEFAULT', ip: host, port: server.db.port })?.healthy, true);
});
