// mysql-prober: Nacos's MYSQL checker (NACOS.md §4.1): run the cluster's SQL on the instance's own port (MySQL probes
// ignore checkPort: the target already carries the instance port). With Nacos's default SQL
// `show global variables where variable_name='read_only'`, the instance is healthy only when the query succeeds and
// read_only is OFF: the writable primary is the healthy one, so `healthyOnly=true` names the primary. With another
// SQL, healthy means the query succeeded; if its rows still report a read_only variable, that variable decides too.
//
// One connection is kept per target (Nacos caches one per service:cluster:ip:port) and reused by every probe; it is
// destroyed on any error or timeout (the next probe reconnects), when the target's checker or address changes, when
// the target goes (forget), and when more than connectionsHeldMax are held: then the least recently used ones not
// probing are closed (limits.probeConnectionsHeldMax). Connection refused fails at once. The password is in the connection options only:
// it is never put in a detail, a log line or an error.
//
// A server at its connection limit (ER_CON_COUNT_ERROR 1040: max_connections; ER_TOO_MANY_USER_CONNECTIONS 1203:
// max_user_connections) refuses the probe's new connection; the probe needs one whenever its kept connection was lost
// (wait_timeout, a restart, a KILL). That server is busy, not down: counting it as a failure flipped the only writable
// primary unhealthy in a connection storm, when clients need it most (session 32's audit). Such a result is
// inconclusive: it counts neither way (verdicts.ts) and the next probe tries again.

import mysql, { type Connection } from 'mysql2';
import { limits } from '../limits.ts';
import { MYSQL_READ_ONLY_SQL } from '../naming/model.ts';
import { describeProbeError, elapsedMs, errorCodeOf, type Prober, type ProbeResult, type ProbeTarget } from './probe.ts';

/** HeldConnection is the connection kept for one target, with what it was opened for. */
interface HeldConnection {
  readonly connection: Connection;
  /** opener identifies address and credentials: a change opens a new connection. */
  readonly opener: string;
  broken: boolean;
  /** probing counts the probes running on it (never closed to make room while one runs). */
  probing: number;
}

/** MysqlProberOptions bound what the prober keeps. */
export interface MysqlProberOptions {
  /** connectionsHeldMax: at most this many connections are kept between probes (default limits.probeConnectionsHeldMax). */
  readonly connectionsHeldMax?: number;
}

/** MYSQL_CONNECTION_LIMIT_ERRNOS are the server errors that refuse a connection for the server's connection limits. */
export const MYSQL_CONNECTION_LIMIT_ERRNOS: ReadonlySet<number> = new Set([
  1040, // ER_CON_COUNT_ERROR: max_connections reached
  1203, // ER_TOO_MANY_USER_CONNECTIONS: max_user_connections reached
]);

/** isConnectionLimitError tells whether a probe's error is the server refusing a connection for its connection limits. */
export function isConnectionLimitError(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const errno: unknown = Reflect.get(error, 'errno');
  return typeof errno === 'number' && MYSQL_CONNECTION_LIMIT_ERRNOS.has(errno);
}

/** QueryRows is what a query answered: rows as objects for SHOW and SELECT, else an empty list. */
type QueryRows = readonly Readonly<Record<string, unknown>>[];

function normaliseSql(sql: string): string {
  return sql.trim().replace(/\s+/g, ' ').replace(/;$/, '').toLowerCase();
}

const readOnlySql = normaliseSql(MYSQL_READ_ONLY_SQL);

/** readOnlyValue finds the read_only variable in SHOW VARIABLES-shaped rows ({Variable_name, Value}), or null. */
export function readOnlyValue(rows: QueryRows): string | null {
  for (const row of rows) {
    const name = row['Variable_name'] ?? row['VARIABLE_NAME'];
    if (typeof name === 'string' && name.toLowerCase() === 'read_only') {
      const value = row['Value'] ?? row['VARIABLE_VALUE'];
      return value === undefined || value === null ? null : String(value as string | number).toUpperCase();
    }
  }
  return null;
}

/** judgeRows decides a successful query's health: read_only must be OFF when reported, and must be reported by the default SQL. */
export function judgeRows(sql: string, rows: QueryRows): { healthy: boolean; detail: string } {
  const value = readOnlyValue(rows);
  if (value !== null) {
    const writable = value === 'OFF' || value === '0';
    return { healthy: writable, detail: writable ? 'read_only is OFF (writable primary)' : `read_only is ${value} (a read-only replica)` };
  }
  if (normaliseSql(sql) === readOnlySql) return { healthy: false, detail: 'the server reported no read_only variable' };
  return { healthy: true, detail: 'query succeeded' };
}

/** MysqlProber keeps one connection per target and runs the cluster's SQL on it. */
export class MysqlProber implements Prober {
  /** held maps a target to its connection, least recently used first (a use moves it to the end). */
  private readonly held = new Map<string, HeldConnection>();
  private readonly connectionsHeldMax: number;

  constructor(options: MysqlProberOptions = {}) {
    this.connectionsHeldMax = options.connectionsHeldMax ?? limits.probeConnectionsHeldMax;
  }

  /** probe runs the checker's SQL on the target's connection within timeoutMs. */
  async probe(target: ProbeTarget, timeoutMs: number): Promise<ProbeResult> {
    const started = process.hrtime.bigint();
    const checker = target.checker;
    if (checker.type !== 'MYSQL') return { healthy: false, refused: false, latencyMs: 0, detail: `not a MYSQL checker: ${checker.type}` };
    const held = this.connectionFor(target, timeoutMs);
    held.probing++;
    try {
      const rows = await this.query(held, checker.sql, timeoutMs);
      return { ...judgeRows(checker.sql, rows), refused: false, latencyMs: elapsedMs(started) };
    } catch (error) {
      this.drop(target.id, held);
      if (isConnectionLimitError(error)) {
        return { healthy: false, refused: false, inconclusive: true, latencyMs: elapsedMs(started), detail: `inconclusive: the server is at its connection limit (${describeProbeError(error)})` };
      }
      const refused = errorCodeOf(error) === 'ECONNREFUSED';
      return { healthy: false, refused, latencyMs: elapsedMs(started), detail: `query failed: ${describeProbeError(error)}` };
    } finally {
      held.probing--;
    }
  }

  private connectionFor(target: ProbeTarget, timeoutMs: number): HeldConnection {
    const checker = target.checker;
    if (checker.type !== 'MYSQL') throw new Error('connectionFor: not a MYSQL target');
    const opener = JSON.stringify([target.host, target.port, checker.user, checker.password]);
    const existing = this.held.get(target.id);
    if (existing !== undefined && !existing.broken && existing.opener === opener) {
      // Most recently used last.
      this.held.delete(target.id);
      this.held.set(target.id, existing);
      return existing;
    }
    if (existing !== undefined) this.drop(target.id, existing);
    this.makeRoom();
    const connection = mysql.createConnection({
      host: target.host,
      port: target.port,
      user: checker.user,
      password: checker.password,
      connectTimeout: timeoutMs,
      // Probes read no user data: no multiple statements, no local files.
      multipleStatements: false,
    });
    const held: HeldConnection = { connection, opener, broken: false, probing: 0 };
    // A server closing an idle connection emits 'error' with no query waiting: without a listener it would crash the
    // member. The next probe sees `broken` and reconnects.
    connection.on('error', () => {
      held.broken = true;
    });
    this.held.set(target.id, held);
    return held;
  }

  private query(held: HeldConnection, sql: string, timeoutMs: number): Promise<QueryRows> {
    return new Promise<QueryRows>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      held.connection.query({ sql, rowsAsArray: false }, (error, rows) => {
        clearTimeout(timer);
        if (error !== null) reject(error);
        else resolve(Array.isArray(rows) ? (rows as QueryRows) : []);
      });
    });
  }

  /** makeRoom closes least recently used connections not probing until one more fits within connectionsHeldMax. */
  private makeRoom(): void {
    for (const [targetId, held] of this.held) {
      if (this.held.size < this.connectionsHeldMax) return;
      if (held.probing === 0) this.drop(targetId, held);
    }
  }

  private drop(targetId: string, held: HeldConnection): void {
    held.broken = true;
    held.connection.destroy();
    if (this.held.get(targetId) === held) this.held.delete(targetId);
  }

  /** forget closes the target's connection. */
  forget(targetId: string): void {
    const held = this.held.get(targetId);
    if (held !== undefined) this.drop(targetId, held);
  }

  /** connections counts the connections held (tests check that one is kept per target). */
  get connections(): number {
    return this.held.size;
  }

  /** close destroys every connection. */
  async close(): Promise<void> {
    for (const [targetId, held] of [...this.held]) this.drop(targetId, held);
  }
}
