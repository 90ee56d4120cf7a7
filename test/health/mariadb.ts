// MariaDB servers for the health-check tests: each a real `mariadbd` that the test starts itself, on a free port of
// the test file's own loopback address, with its own data directory (mariadb-install-db) and a user `cairn` that
// has every privilege (it switches read_only for switchovers). Servers are stopped by PID: stop() sends SIGTERM and
// waits, SIGKILL after a bound; a process 'exit' handler kills any still running and removes the directories, so a
// failing test leaves nothing behind.
//
// requireMariadb(t) decides what happens without mariadbd: with CAIRN_REQUIRE_ALL=1 (CI) the test fails saying to
// install Debian's mariadb-server; otherwise it is skipped with that reason.

import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import mysql from 'mysql2/promise';
import { assertLoopback, onProcessExit, sleep } from '../support/cluster.ts';

/** MARIADB_USER and MARIADB_PASSWORD are the probe's credentials on every test server. */
export const MARIADB_USER = 'cairn';
export const MARIADB_PASSWORD = 'probe-s3cret-Zq9';

/** missingMariadbAdvice is the reason given when mariadbd is absent. */
export const missingMariadbAdvice = 'mariadbd is not installed: install the Debian package mariadb-server (apt-get install mariadb-server)';

function findExecutable(name: string): string | null {
  const directories = [...(process.env['PATH'] ?? '').split(':'), '/usr/sbin', '/usr/bin', '/sbin'];
  for (const directory of directories) {
    if (directory === '') continue;
    const candidate = path.join(directory, name);
    if (existsSync(candidate)) return candidate;
  }
  return null;
}

/**
 * requireMariadb returns true when MariaDB servers can be started. Otherwise it fails the test when
 * CAIRN_REQUIRE_ALL=1 and skips it (with the reason) when not; the caller returns on false.
 */
export function requireMariadb(t: TestContext): boolean {
  if (findExecutable('mariadbd') !== null && findExecutable('mariadb-install-db') !== null) return true;
  if (process.env['CAIRN_REQUIRE_ALL'] === '1') throw new Error(`CAIRN_REQUIRE_ALL=1: ${missingMariadbAdvice}`);
  t.skip(missingMariadbAdvice);
  return false;
}

/** freePortOn returns a port of `host` that nothing listens on (the kernel picked it; it was just released). */
export async function freePortOn(host: string): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const running = new Set<ChildProcess>();
const directories = new Set<string>();
let cleanupInstalled = false;

function installCleanup(): void {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  onProcessExit(() => {
    for (const child of running) if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGKILL');
    for (const directory of directories) rmSync(directory, { recursive: true, force: true });
  });
}

/** MariaDb is one running test server. */
export class MariaDb {
  readonly host: string;
  readonly port: number;
  private readonly directory: string;
  private readonly child: ChildProcess;
  private readonly exited: Promise<void>;

  private constructor(host: string, port: number, directory: string, child: ChildProcess) {
    this.host = host;
    this.port = port;
    this.directory = directory;
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
  }

  /** start installs a fresh data directory and starts mariadbd on `host`, waiting until `cairn` can query it. */
  static async start(host: string, options: { readOnly?: boolean } = {}): Promise<MariaDb> {
    assertLoopback(host);
    installCleanup();
    const directory = mkdtempSync(path.join(tmpdir(), 'cairn-mariadb-'));
    directories.add(directory);
    const data = path.join(directory, 'data');
    execFileSync(findExecutable('mariadb-install-db') ?? 'mariadb-install-db',
      ['--no-defaults', `--datadir=${data}`, '--user=root', '--auth-root-authentication-method=normal', '--skip-test-db'], { stdio: 'pipe' });
    const init = path.join(directory, 'init.sql');
    writeFileSync(init, `CREATE USER IF NOT EXISTS '${MARIADB_USER}'@'%' IDENTIFIED BY '${MARIADB_PASSWORD}';\nGRANT ALL PRIVILEGES ON *.* TO '${MARIADB_USER}'@'%' WITH GRANT OPTION;\n`);
    const port = await freePortOn(host);
    const args = [
      '--no-defaults', `--datadir=${data}`, '--user=root', `--bind-address=${host}`, `--port=${port}`,
      `--socket=${path.join(directory, 'mysqld.sock')}`, `--pid-file=${path.join(directory, 'mysqld.pid')}`,
      `--log-error=${path.join(directory, 'error.log')}`, `--init-file=${init}`, '--skip-log-bin', '--skip-name-resolve',
      '--innodb-buffer-pool-size=16M', '--max-connections=64', ...(options.readOnly === true ? ['--read-only=ON'] : []),
    ];
    const child = spawn(findExecutable('mariadbd') ?? 'mariadbd', args, { stdio: 'ignore' });
    running.add(child);
    child.once('exit', () => running.delete(child));
    const server = new MariaDb(host, port, directory, child);
    await server.waitUntilReady(30_000);
    return server;
  }

  private async waitUntilReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let lastError = '';
    while (Date.now() < deadline) {
      if (this.child.exitCode !== null) throw new Error(`mariadbd exited with ${this.child.exitCode} (see ${this.directory}/error.log)`);
      try {
        await this.query('select 1');
        return;
      } catch (error) {
        lastError = error instanceof Error ? error.message : String(error);
        await sleep(100);
      }
    }
    throw new Error(`mariadbd on ${this.host}:${this.port} not ready within ${timeoutMs} ms: ${lastError}`);
  }

  /** query runs one statement as `cairn` on a fresh connection. */
  async query(sql: string): Promise<unknown> {
    const connection = await mysql.createConnection({ host: this.host, port: this.port, user: MARIADB_USER, password: MARIADB_PASSWORD, connectTimeout: 2000 });
    try {
      const [rows] = await connection.query(sql);
      return rows;
    } finally {
      await connection.end();
    }
  }

  /** setReadOnly switches the server's global read_only (a switchover's two halves). */
  async setReadOnly(on: boolean): Promise<void> {
    await this.query(`SET GLOBAL read_only = ${on ? 'ON' : 'OFF'}`);
  }

  /** connectionsOf counts the server's client connections of `user`. */
  async connectionsOf(user: string): Promise<number> {
    const rows = await this.query(`select count(*) as n from information_schema.processlist where user = '${user}'`);
    const first = Array.isArray(rows) ? (rows[0] as { n?: number | string } | undefined) : undefined;
    return Number(first?.n ?? 0);
  }

  /** stop ends the server by PID (SIGTERM, then SIGKILL after 10 s) and removes its directory. */
  async stop(): Promise<void> {
    const pid = this.child.pid;
    if (pid !== undefined && this.child.exitCode === null && this.child.signalCode === null) {
      process.kill(pid, 'SIGTERM');
      const killed = await Promise.race([this.exited.then(() => true), sleep(10_000).then(() => false)]);
      if (!killed) {
        process.kill(pid, 'SIGKILL');
        await this.exited;
      }
    }
    rmSync(this.directory, { recursive: true, force: true });
    directories.delete(this.directory);
  }
}
