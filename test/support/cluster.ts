// The integration tests' harness: real member processes (`bin/cairn server`) on distinct loopback addresses.
//
// - Cluster starts N members with the same --members list and waits for every `cairn ready <addr>` line; each
//   member's stdout and stderr go to a ring buffer (printed when a step fails) and its interesting log events (role
//   changes, snapshots, warnings) to a bounded list that tests can inspect.
// - Member stops (kill -9, SIGTERM), pauses (SIGSTOP), resumes (SIGCONT) and restarts its process by pid, with the
//   same data directory, and can wipe that directory.
// - Every process and data directory is also tracked at module level: a process 'exit' handler kills by pid what
//   is still running and removes the directories, so a failing or interrupted test leaves nothing behind.
// - httpRequest is one request with a per-request deadline, through ./http.ts (never Node's fetch), that refuses any
//   address outside 127.0.0.0/8.
// - Ledger records every registration of a unique persistent instance with its outcome (acknowledged, failed,
//   unknown); Writer drives concurrent registrations through it; checkConvergence asserts that every acknowledged
//   instance is on every member and that nothing never attempted (or certainly failed) is anywhere.
// - waitFor is the bounded poll every test uses instead of sleeping.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, mkdirSync } from 'node:fs';
import { RegistryStateMachine } from '../../src/cp/registry-state-machine.ts';
import { decodeBackup, type BackupHeader } from '../../src/replica/backup.ts';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import { assertLoopback, boundedRequest, HttpFailure, type HttpFailureReason } from './http.ts';

export { assertLoopback, HttpFailure, type HttpFailureReason };

/** cairnBin is the repository's `bin/cairn`. */
export const cairnBin = fileURLToPath(new URL('../../bin/cairn', import.meta.url));

/** backupContents decodes a backup file in-process: its header and the instances ("service/ip:port") of `services`. */
export function backupContents(file: string, services: readonly string[]): { header: BackupHeader; keys: Set<string> } {
  const backup = decodeBackup(readFileSync(file), file);
  const machine = new RegistryStateMachine();
  machine.restore(backup.image, { put: () => undefined, del: () => undefined });
  const keys = new Set<string>();
  for (const service of services) {
    for (const instance of machine.listInstances({ namespace: 'public', group: 'DEFAULT_GROUP', service })) keys.add(`${service}/${instance.ip}:${instance.port}`);
  }
  return { header: backup.header, keys };
}

/** CliRun is a finished `cairn` command: its exit code and output. */
export interface CliRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** runCairn runs `cairn <args>` as its own process and resolves with its exit code and output (`timeoutMs` at most). */
export function runCairn(args: readonly string[], timeoutMs: number): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(cairnBin, [...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`cairn ${args.join(' ')} ran past ${timeoutMs} ms`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Bounded polling.

/** WaitForOptions bound a poll: how long in total, how often, and what is awaited (for the failure message). */
export interface WaitForOptions {
  readonly timeoutMs: number;
  readonly intervalMs?: number;
  readonly what: string;
}

/** sleep resolves after `ms`; used only between polls and to pace load, never to wait for an outcome. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** processAlive tells whether a process with this pid exists (signal 0 probes without signalling). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** describeError renders anything thrown as one line. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

/** withTimeout resolves or rejects as `promise` does, or rejects once `timeoutMs` passed, naming `what`. */
export async function withTimeout<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * waitFor polls `condition` until it returns a value other than undefined, null or false, and resolves with it.
 * A condition that throws counts as "not yet", and its message is the reason reported if time runs out: conditions
 * throw to say what they are still missing. Rejects after `timeoutMs` with `what` and the last reason.
 */
export async function waitFor<T>(condition: () => T | undefined | null | false | Promise<T | undefined | null | false>, options: WaitForOptions): Promise<T> {
  const started = Date.now();
  const intervalMs = options.intervalMs ?? 100;
  let last = 'the condition was never met';
  for (let attempt = 1; ; attempt++) {
    try {
      const value = await condition();
      if (value !== undefined && value !== null && value !== false) return value;
      last = 'the condition was not met';
    } catch (error) {
      last = describeError(error);
    }
    const remaining = options.timeoutMs - (Date.now() - started);
    if (remaining <= 0) {
      throw new Error(`timed out after ${Date.now() - started} ms (limit ${options.timeoutMs} ms, ${attempt} polls) waiting for ${options.what}; last: ${last}`);
    }
    await sleep(Math.min(intervalMs, remaining));
  }
}

/**
 * holdsFor polls `invariant` for `durationMs` and rejects at its first failure (a throw or false), naming `what`:
 * the way to observe that something does not happen within a window, e.g. a minority member never leading.
 */
export async function holdsFor(invariant: () => boolean | Promise<boolean>, options: { readonly durationMs: number; readonly intervalMs?: number; readonly what: string }): Promise<void> {
  const started = Date.now();
  for (;;) {
    let held: boolean;
    let why = 'it was false';
    try {
      held = await invariant();
    } catch (error) {
      held = false;
      why = describeError(error);
    }
    if (!held) throw new Error(`${options.what} stopped holding ${Date.now() - started} ms into its ${options.durationMs} ms window: ${why}`);
    const remaining = options.durationMs - (Date.now() - started);
    if (remaining <= 0) return;
    await sleep(Math.min(options.intervalMs ?? 100, remaining));
  }
}

// ---------------------------------------------------------------------------------------------------------------
// HTTP.

/** HttpAnswer is an HTTP response: status, the Cairn-Error-Code header (null when absent), body text, duration. */
export interface HttpAnswer {
  readonly status: number;
  readonly code: string | null;
  readonly text: string;
  readonly ms: number;
}

/** HttpOptions: the per-request timeout (default 10 s, above the members' 5 s request timeout), body and headers. */
export interface HttpOptions {
  readonly timeoutMs?: number;
  readonly body?: string;
  readonly headers?: Readonly<Record<string, string>>;
}

/**
 * httpRequest sends one request to `addr` (host:port) through boundedRequest (./http.ts): it resolves with any
 * response and throws HttpFailure without a whole one within the timeout.
 */
export async function httpRequest(addr: string, method: string, pathAndQuery: string, options: HttpOptions = {}): Promise<HttpAnswer> {
  const answer = await boundedRequest(addr, method, pathAndQuery, {
    timeoutMs: options.timeoutMs ?? 10_000,
    ...(options.headers === undefined ? {} : { headers: options.headers }),
    ...(options.body === undefined ? {} : { body: options.body }),
  });
  return { status: answer.status, code: answer.headers['cairn-error-code'] ?? null, text: answer.text, ms: answer.ms };
}

/** jsonOf parses a response body, saying which request it came from when it is not JSON. */
export function jsonOf(answer: HttpAnswer, what: string): unknown {
  try {
    return JSON.parse(answer.text);
  } catch {
    throw new Error(`${what}: status ${answer.status}, body is not JSON: ${answer.text.slice(0, 300)}`);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Cluster status (GET /cairn/v1/cluster).

/** MemberView is one member as GET /cairn/v1/cluster reports it. */
export interface MemberView {
  readonly addr: string;
  readonly role: string;
  readonly term: number | null;
  readonly commitIndex: number | null;
  readonly appliedIndex: number | null;
  readonly matchIndex: number | null;
  readonly lastContactMs: number | null;
}

/** SelfView is a member's own entry, whose term and indexes it always knows. */
export interface SelfView extends MemberView {
  readonly term: number;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly matchIndex: number;
}

/** ClusterView is the body of GET /cairn/v1/cluster. */
export interface ClusterView {
  readonly leader: string | null;
  readonly term: number;
  readonly members: readonly MemberView[];
}

function isClusterView(value: unknown): value is ClusterView {
  if (value === null || typeof value !== 'object') return false;
  const view = value as Record<string, unknown>;
  return (view['leader'] === null || typeof view['leader'] === 'string') && typeof view['term'] === 'number' && Array.isArray(view['members']);
}

// ---------------------------------------------------------------------------------------------------------------
// Process bookkeeping: whatever is still running when the test process exits is killed by pid.

const liveChildren = new Set<ChildProcess>();
const liveDataDirs = new Set<string>();
const exitCleanups = new Set<() => void>();
let exitHandlerInstalled = false;

/** onProcessExit registers a synchronous cleanup for the test process's exit (iptables rules, for instance). */
export function onProcessExit(cleanup: () => void): () => void {
  installExitHandler();
  exitCleanups.add(cleanup);
  return () => exitCleanups.delete(cleanup);
}

function installExitHandler(): void {
  if (exitHandlerInstalled) return;
  exitHandlerInstalled = true;
  process.on('exit', cleanUpEverything);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      cleanUpEverything();
      process.exit(128 + (signal === 'SIGINT' ? 2 : signal === 'SIGTERM' ? 15 : 1));
    });
  }
}

function cleanUpEverything(): void {
  for (const child of liveChildren) {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  }
  liveChildren.clear();
  for (const cleanup of exitCleanups) {
    try {
      cleanup();
    } catch {
      // Best effort at exit; each cleanup reports its own failures when called normally.
    }
  }
  for (const dir of liveDataDirs) rmSync(dir, { recursive: true, force: true });
  liveDataDirs.clear();
}

// ---------------------------------------------------------------------------------------------------------------
// Logs.

/** RingBuffer keeps the last `capacity` lines. */
export class RingBuffer {
  private readonly lines: string[] = [];
  private readonly capacity: number;
  dropped = 0;
  constructor(capacity: number) {
    this.capacity = capacity;
  }
  push(line: string): void {
    this.lines.push(line);
    if (this.lines.length > this.capacity) {
      this.lines.shift();
      this.dropped++;
    }
  }
  tail(count: number): string[] {
    return this.lines.slice(-count);
  }
}

/** LogEvent is one parsed pino line worth keeping: a role change, a snapshot, a warning or an error. */
export interface LogEvent {
  readonly time: number;
  readonly level: number;
  readonly msg: string;
  readonly fields: Readonly<Record<string, unknown>>;
}

/** requestLogMessages are the member's per-request lines (src/api/http/app.ts): counted, not kept (they would flush everything else out). */
const requestLogMessages = new Set(['request answered']);
const keptEventMessages = new Set(['raft role changed', 'log compacted', 'snapshot image encoded for a follower', 'snapshot from the leader installed']);
const eventsMax = 2000;

// ---------------------------------------------------------------------------------------------------------------
// Members.

/** listenersOn lists the `ss` lines of TCP listeners on `host` at `ports` (empty when none, or when `ss` is missing). */
export function listenersOn(host: string, ports: readonly number[]): string[] {
  let output: string;
  try {
    output = execFileSync('ss', ['-tlnpH'], { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
  } catch {
    return [];
  }
  const wanted = new Set(ports.map((port) => `${host}:${port}`));
  return output.split('\n').filter((line) => line.trim().split(/\s+/).some((word) => wanted.has(word))).map((line) => line.trim().replace(/\s+/g, ' '));
}

/** ExitInfo is how a member process ended. */
export interface ExitInfo {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** StartOptions: --join, a different --members list, extra flags and extra environment for this start only. */
export interface StartOptions {
  readonly join?: boolean;
  /** args are further `cairn server` flags (e.g. --unsafe-peer-protocol-version 2). */
  readonly args?: readonly string[];
  readonly members?: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  readonly readyTimeoutMs?: number;
}

/** Run is one process of a member: its child, the promise of its exit, and its stderr (for refusals). */
interface Run {
  readonly child: ChildProcess;
  readonly exit: Promise<ExitInfo>;
  readonly stderr: string[];
  readonly ready: Promise<void>;
}

/** Member is one member's address and data directory, and its current process (one at a time). */
export class Member {
  readonly addr: string;
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  readonly log = new RingBuffer(400);
  readonly events: LogEvent[] = [];
  requestLines = 0;
  private readonly cluster: Cluster;
  private run: Run | null = null;
  private paused = false;

  constructor(cluster: Cluster, host: string, port: number, dataDir: string) {
    assertLoopback(host);
    this.cluster = cluster;
    this.host = host;
    this.port = port;
    this.addr = `${host}:${port}`;
    this.dataDir = dataDir;
    mkdirSync(dataDir, { recursive: true });
  }

  /** pid is the running process's id, or null. */
  get pid(): number | null {
    return this.running ? (this.run?.child.pid ?? null) : null;
  }

  /** running is true while the current process has not exited (paused counts as running). */
  get running(): boolean {
    const child = this.run?.child;
    return child !== undefined && child.exitCode === null && child.signalCode === null;
  }

  /** isPaused is true between pause() and resume(). */
  get isPaused(): boolean {
    return this.paused;
  }

  /** start spawns the member and waits for `cairn ready <addr>`; it rejects if the process exits first. */
  async start(options: StartOptions = {}): Promise<void> {
    const run = this.spawnProcess(options);
    await withTimeout(run.ready, options.readyTimeoutMs ?? 30_000, `'cairn ready ${this.addr}' on ${this.addr}'s stdout`);
  }

  /**
   * startExpectingExit spawns the member and waits for its process to exit (a refused start); it resolves with
   * the exit and the stderr text, and rejects if the member becomes ready instead or runs past `timeoutMs`.
   */
  async startExpectingExit(options: StartOptions & { readonly timeoutMs: number }): Promise<ExitInfo & { readonly stderr: string }> {
    const run = this.spawnProcess(options);
    const becameReady = run.ready.then(
      () => {
        throw new Error(`${this.addr} became ready although it was expected to refuse to start`);
      },
      () => new Promise<never>(() => undefined),
    );
    const exit = await withTimeout(Promise.race([run.exit, becameReady]), options.timeoutMs, `${this.addr} to exit after a refused start`);
    return { ...exit, stderr: run.stderr.join('') };
  }

  private spawnProcess(options: StartOptions): Run {
    if (this.running) throw new Error(`${this.addr} is already running (pid ${String(this.run?.child.pid)})`);
    const taken = listenersOn(this.host, [this.port, this.port + 1000, this.port - 1000]);
    if (taken.length > 0) {
      throw new Error(`cannot start ${this.addr}: its ports are already taken by another process (another run of this test file?): ${taken.join('; ')}`);
    }
    const members = options.members ?? this.cluster.memberAddrs;
    const args = ['server', '--addr', this.addr, '--members', members.join(','), '--data-dir', this.dataDir, '--log-level', this.cluster.logLevel];
    if (options.join === true) args.push('--join');
    args.push(...(options.args ?? []));
    const env: Record<string, string> = {};
    for (const [key, value] of Object.entries(process.env)) if (value !== undefined && !key.startsWith('CAIRN_')) env[key] = value;
    Object.assign(env, this.cluster.env, this.cluster.memberEnv?.(this.host) ?? {}, options.env ?? {});
    installExitHandler();
    const child = spawn(cairnBin, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    liveChildren.add(child);
    this.paused = false;
    this.log.push(`--- started pid ${String(child.pid)}: cairn ${args.join(' ')}`);
    const stderr: string[] = [];
    let signalReady: () => void = () => undefined;
    let signalNotReady: (error: Error) => void = () => undefined;
    const ready = new Promise<void>((resolve, reject) => {
      signalReady = resolve;
      signalNotReady = reject;
    });
    ready.catch(() => undefined);
    this.readLines(child.stdout, (line) => {
      if (line === `cairn ready ${this.addr}`) signalReady();
      this.record(line);
    });
    this.readLines(child.stderr, (line) => {
      stderr.push(`${line}\n`);
      this.log.push(`[stderr] ${line}`);
    });
    const exit = new Promise<ExitInfo>((resolve) => {
      child.once('exit', (code, signal) => {
        liveChildren.delete(child);
        this.log.push(`--- pid ${String(child.pid)} exited: code ${String(code)} signal ${String(signal)}`);
        signalNotReady(new Error(`${this.addr} exited (code ${String(code)}, signal ${String(signal)}) before it was ready; stderr: ${stderr.join('').slice(-2000)}`));
        resolve({ code, signal });
      });
    });
    child.once('error', (error) => {
      this.log.push(`--- spawn error: ${error.message}`);
      signalNotReady(error);
    });
    this.run = { child, exit, stderr, ready };
    return this.run;
  }

  private readLines(stream: NodeJS.ReadableStream | null, onLine: (line: string) => void): void {
    if (stream === null) return;
    let buffered = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      buffered += chunk;
      let newline = buffered.indexOf('\n');
      while (newline >= 0) {
        onLine(buffered.slice(0, newline));
        buffered = buffered.slice(newline + 1);
        newline = buffered.indexOf('\n');
      }
    });
    stream.on('end', () => {
      if (buffered !== '') onLine(buffered);
    });
  }

  private record(line: string): void {
    if (!line.startsWith('{')) {
      this.log.push(line);
      return;
    }
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(line) as Record<string, unknown>;
    } catch {
      this.log.push(line);
      return;
    }
    const msg = typeof parsed['msg'] === 'string' ? parsed['msg'] : '';
    if (requestLogMessages.has(msg)) {
      this.requestLines++;
      return;
    }
    this.log.push(line);
    const level = typeof parsed['level'] === 'number' ? parsed['level'] : 0;
    if ((keptEventMessages.has(msg) || level >= 40) && this.events.length < eventsMax) {
      this.events.push({ time: typeof parsed['time'] === 'number' ? parsed['time'] : Date.now(), level, msg, fields: parsed });
    }
  }

  /** waitForExit resolves once the current process has exited (at once if there is none). */
  async waitForExit(timeoutMs: number): Promise<ExitInfo> {
    const run = this.run;
    if (run === null) return { code: null, signal: null };
    return withTimeout(run.exit, timeoutMs, `${this.addr} (pid ${String(run.child.pid)}) to exit`);
  }

  private signal(signal: NodeJS.Signals): number {
    const pid = this.pid;
    if (pid === null) throw new Error(`${this.addr} is not running; cannot send ${signal}`);
    process.kill(pid, signal);
    return pid;
  }

  /** kill9 sends SIGKILL to the member's pid and waits for the process to end. */
  async kill9(): Promise<ExitInfo> {
    this.signal('SIGKILL');
    this.paused = false;
    return this.waitForExit(10_000);
  }

  /** terminate sends SIGTERM (graceful stop) and waits; after `timeoutMs` it kills -9 and fails. */
  async terminate(timeoutMs = 15_000): Promise<ExitInfo> {
    if (this.paused) this.resume();
    this.signal('SIGTERM');
    try {
      return await this.waitForExit(timeoutMs);
    } catch (error) {
      if (this.running) await this.kill9();
      throw error;
    }
  }

  /** pause stops the process with SIGSTOP (it keeps its sockets, answers nothing). */
  pause(): void {
    this.signal('SIGSTOP');
    this.paused = true;
  }

  /** resume continues a paused process with SIGCONT. */
  resume(): void {
    this.signal('SIGCONT');
    this.paused = false;
  }

  /** restart starts the member again with the same data directory (it must have stopped). */
  async restart(options: StartOptions = {}): Promise<void> {
    if (this.running) throw new Error(`${this.addr} is still running; stop it before restarting`);
    await this.start(options);
  }

  /** wipe deletes the member's data directory (the member must be stopped). */
  wipe(): void {
    if (this.running) throw new Error(`${this.addr} is running; stop it before wiping its data`);
    rmSync(this.dataDir, { recursive: true, force: true });
    mkdirSync(this.dataDir, { recursive: true });
  }

  /** request sends an HTTP request to this member. */
  request(method: string, pathAndQuery: string, options: HttpOptions = {}): Promise<HttpAnswer> {
    return httpRequest(this.addr, method, pathAndQuery, options);
  }

  /** status reads GET /cairn/v1/cluster from this member. */
  async status(timeoutMs = 2000): Promise<ClusterView> {
    const answer = await this.request('GET', '/cairn/v1/cluster', { timeoutMs });
    if (answer.status !== 200) throw new Error(`${this.addr} GET /cairn/v1/cluster: ${answer.status} ${answer.code ?? ''} ${answer.text.slice(0, 200)}`);
    const view = jsonOf(answer, `${this.addr} GET /cairn/v1/cluster`);
    if (!isClusterView(view)) throw new Error(`${this.addr} GET /cairn/v1/cluster: unexpected shape ${answer.text.slice(0, 200)}`);
    return view;
  }

  /** selfView is this member's own entry in its cluster view. */
  async selfView(): Promise<SelfView> {
    const view = await this.status();
    const self = view.members.find((member) => member.addr === this.addr);
    if (self === undefined) throw new Error(`${this.addr} does not list itself in GET /cairn/v1/cluster`);
    const { term, commitIndex, appliedIndex, matchIndex } = self;
    if (term === null || commitIndex === null || appliedIndex === null || matchIndex === null) {
      throw new Error(`${this.addr} does not know its own term and indexes: ${JSON.stringify(self)}`);
    }
    return { ...self, term, commitIndex, appliedIndex, matchIndex };
  }

  /** logTail renders the last `count` lines of the member's output. */
  logTail(count: number): string {
    const dropped = this.log.dropped > 0 ? ` (${this.log.dropped} older lines dropped)` : '';
    return [`===== ${this.addr} (pid ${String(this.run?.child.pid ?? '-')}, ${this.requestLines} request lines not kept)${dropped}`, ...this.log.tail(count)].join('\n');
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Clusters.

/** ClusterOptions: the test file's name (for temp dirs), its addresses, how many start as voters, and how they run. */
export interface ClusterOptions {
  readonly file: string;
  /** hosts are the file's own loopback addresses; the first `size` are the initial members, the rest spares. */
  readonly hosts: readonly string[];
  readonly size: number;
  readonly httpPort?: number;
  readonly logLevel?: string;
  readonly env?: Readonly<Record<string, string>>;
  /** memberEnv adds environment for one member (by host) to every start of it, after `env`. */
  readonly memberEnv?: (host: string) => Readonly<Record<string, string>>;
  /** args are further `cairn server` flags of the initial members' first start (later starts name their own). */
  readonly args?: readonly string[];
}

/** LeaderAgreement is a leader every asked member agrees on, and how long the poll took. */
export interface LeaderAgreement {
  readonly leader: Member;
  readonly term: number;
  readonly ms: number;
}

/** Cluster is a set of members of one test file; stop() kills every process and removes the data directories. */
export class Cluster {
  readonly members: Member[];
  /** spares are further addresses of the file, not in --members (joiners). */
  readonly spares: Member[];
  readonly logLevel: string;
  readonly env: Readonly<Record<string, string>>;
  readonly memberEnv: ((host: string) => Readonly<Record<string, string>>) | undefined;
  readonly root: string;

  private constructor(options: ClusterOptions) {
    if (options.size > options.hosts.length) throw new Error(`a cluster of ${options.size} needs ${options.size} hosts`);
    this.logLevel = options.logLevel ?? 'info';
    this.env = options.env ?? {};
    this.memberEnv = options.memberEnv;
    this.root = mkdtempSync(path.join(tmpdir(), `cairn-${options.file}-`));
    liveDataDirs.add(this.root);
    const port = options.httpPort ?? 18848;
    const all = options.hosts.map((host, index) => new Member(this, host, port, path.join(this.root, `member-${index}`)));
    this.members = all.slice(0, options.size);
    this.spares = all.slice(options.size);
  }

  /** start launches the initial members together and waits until each is ready; on failure it stops them all. */
  static async start(options: ClusterOptions): Promise<Cluster> {
    const cluster = new Cluster(options);
    try {
      await Promise.all(cluster.members.map((member) => member.start(options.args === undefined ? {} : { args: options.args })));
    } catch (error) {
      const tails = cluster.logTails(40);
      await cluster.stop();
      throw new Error(`the cluster did not start: ${describeError(error)}\n${tails}`);
    }
    return cluster;
  }

  /** memberAddrs is the --members list: the initial members' addresses. */
  get memberAddrs(): string[] {
    return this.members.map((member) => member.addr);
  }

  /** running are the members whose process runs and is not paused. */
  get running(): Member[] {
    return this.members.filter((member) => member.running && !member.isPaused);
  }

  /** member finds a member (or spare) by address. */
  member(addr: string): Member {
    const found = [...this.members, ...this.spares].find((member) => member.addr === addr);
    if (found === undefined) throw new Error(`no member ${addr} in this cluster`);
    return found;
  }

  /**
   * agreedLeader asks each of `among` for its view and returns the leader they all name, in the same term; the
   * leader (which may be outside `among`, e.g. a spare that joined) must report itself leader of that term. Throws
   * (a "not yet" for waitFor) when they disagree.
   */
  async agreedLeader(among: readonly Member[]): Promise<{ leader: Member; term: number }> {
    const views = await Promise.all(among.map(async (member) => [member, await member.status()] as const));
    const leaders = new Set(views.map(([, view]) => `${String(view.leader)}@${view.term}`));
    if (leaders.size !== 1) throw new Error(`members disagree: ${views.map(([member, view]) => `${member.addr} says ${String(view.leader)} (term ${view.term})`).join('; ')}`);
    const [first] = views;
    if (first === undefined) throw new Error('agreedLeader: no member to ask');
    const { leader: leaderAddr, term } = first[1];
    if (leaderAddr === null) throw new Error(`no leader in term ${term}`);
    const leader = this.member(leaderAddr);
    if (!among.includes(leader)) {
      const own = await leader.status();
      if (own.leader !== leader.addr || own.term !== term) throw new Error(`${leader.addr} is named leader of term ${term} but says ${String(own.leader)} (term ${own.term})`);
    }
    return { leader, term };
  }

  /** waitForLeader polls until the running members (or `among`) agree on a leader, optionally not `exclude`. */
  async waitForLeader(options: { among?: readonly Member[]; exclude?: Member; timeoutMs?: number; intervalMs?: number } = {}): Promise<LeaderAgreement> {
    const started = Date.now();
    const among = options.among ?? this.running;
    const found = await waitFor(async () => {
      const agreement = await this.agreedLeader(among);
      if (agreement.leader === options.exclude) throw new Error(`members still follow ${agreement.leader.addr}`);
      return agreement;
    }, { timeoutMs: options.timeoutMs ?? 15_000, intervalMs: options.intervalMs ?? 50, what: `a leader agreed on by ${among.map((m) => m.addr).join(', ')}${options.exclude === undefined ? '' : ` other than ${options.exclude.addr}`}` });
    return { ...found, ms: Date.now() - started };
  }

  /** logTails renders the last `count` lines of every member's output. */
  logTails(count: number): string {
    return [...this.members, ...this.spares].filter((member) => member.log.tail(1).length > 0).map((member) => member.logTail(count)).join('\n');
  }

  /**
   * step runs `body` as a subtest; when it fails, the members' log tails are printed as diagnostics, then the
   * failure propagates.
   */
  step(t: TestContext, name: string, body: (t: TestContext) => Promise<void>): Promise<void> {
    return t.test(name, async (subtest) => {
      try {
        await body(subtest);
      } catch (error) {
        for (const line of this.logTails(60).split('\n')) subtest.diagnostic(line);
        throw error;
      }
    });
  }

  /** stop kills every member process by pid (SIGKILL also ends paused ones) and removes the data directories. */
  async stop(): Promise<void> {
    for (const member of [...this.members, ...this.spares]) {
      if (member.running) await member.kill9().catch(() => undefined);
    }
    rmSync(this.root, { recursive: true, force: true });
    liveDataDirs.delete(this.root);
  }
}

/** startCluster starts a cluster whose stop() runs after the test `t`, whatever its outcome. */
/** protocolRefusals reads a member's count of peer calls refused for their protocol version (every protocol). */
export async function protocolRefusals(member: Member): Promise<number> {
  const answer = await member.request('GET', '/metrics', { timeoutMs: 3000 });
  const match = /cairn_peer_transport_events_total\{event="peer_protocol_refused"\} (\d+)/.exec(answer.text);
  if (match === null) throw new Error(`${member.addr}: no peer_protocol_refused counter in /metrics`);
  return Number(match[1]);
}

export async function startCluster(t: TestContext, options: ClusterOptions): Promise<Cluster> {
  const cluster = await Cluster.start(options);
  t.after(() => cluster.stop());
  return cluster;
}

// ---------------------------------------------------------------------------------------------------------------
// Writes and their outcomes.

/** OutcomeKind: acknowledged ("ok"), certainly not written (failed), or unknown (it may or may not have committed). */
export type OutcomeKind = 'ok' | 'failed' | 'unknown';

/** WriteOutcome is what one registration's answer said. */
export interface WriteOutcome {
  readonly key: string;
  readonly service: string;
  readonly kind: OutcomeKind;
  readonly target: string;
  /** detail is the error code, failure reason or odd status behind a failed or unknown outcome. */
  readonly detail: string;
  readonly sentAt: number;
  readonly ms: number;
}

/**
 * certainFailureCodes are refusals that happen before the write could reach any log (Raft: never appended, or
 * replaced by another leader's entry), so the instance must not appear. CAIRN_OUTCOME_UNKNOWN, CAIRN_INTERNAL
 * and answers without a code are unknown.
 */
const certainFailureCodes = new Set([
  'CAIRN_NO_LEADER',
  'CAIRN_NOT_LEADER',
  'CAIRN_NO_QUORUM',
  'CAIRN_PROPOSAL_DROPPED',
  'CAIRN_UNCOMMITTED_BYTES_EXCEEDED',
  'CAIRN_TRANSFER_IN_PROGRESS',
  'CAIRN_SHUTTING_DOWN',
  'CAIRN_MEMBER_STALLED',
]);

/** classify maps an answer (or its absence) to an outcome kind and a detail. */
export function classify(result: HttpAnswer | HttpFailure): { kind: OutcomeKind; detail: string } {
  if (result instanceof HttpFailure) {
    // A refused connection sent nothing; a timeout or a broken connection may have delivered the request.
    return { kind: result.reason === 'refused' ? 'failed' : 'unknown', detail: result.reason };
  }
  if (result.status === 200) return result.text === 'ok' ? { kind: 'ok', detail: '' } : { kind: 'unknown', detail: `200 ${result.text.slice(0, 80)}` };
  const code = result.code ?? `HTTP ${result.status}`;
  if (result.code !== null && certainFailureCodes.has(result.code)) return { kind: 'failed', detail: code };
  if (result.status >= 400 && result.status < 500) return { kind: 'failed', detail: code };
  return { kind: 'unknown', detail: code };
}

/** instanceQuery renders the query of a persistent registration. */
function instanceQuery(service: string, ip: string, port: number): string {
  return `serviceName=${encodeURIComponent(service)}&ip=${ip}&port=${port}&ephemeral=false`;
}

/**
 * Ledger hands out unique persistent instances (ip in 127.0.2.0/24 upwards, so even a future health prober stays on
 * loopback) and records every registration: attempted before it is sent, then its outcome.
 */
export class Ledger {
  readonly services = new Set<string>();
  readonly attempted = new Set<string>();
  readonly outcomes = new Map<string, WriteOutcome>();
  private sequence = 0;

  /** register sends one new instance of `service` to `member` and records the outcome. */
  async register(member: Member, service: string, timeoutMs = 10_000): Promise<WriteOutcome> {
    const n = ++this.sequence;
    const ip = `127.0.${2 + Math.floor(n / 250) % 250}.${1 + (n % 250)}`;
    const port = 10_000 + (n % 50_000);
    const key = `${ip}:${port}`;
    this.services.add(service);
    this.attempted.add(`${service}/${key}`);
    const sentAt = Date.now();
    let result: HttpAnswer | HttpFailure;
    try {
      result = await member.request('POST', `/nacos/v1/ns/instance?${instanceQuery(service, ip, port)}`, { timeoutMs });
    } catch (error) {
      if (!(error instanceof HttpFailure)) throw error;
      result = error;
    }
    const { kind, detail } = classify(result);
    const outcome: WriteOutcome = { key, service, kind, target: member.addr, detail, sentAt, ms: Date.now() - sentAt };
    this.outcomes.set(`${service}/${key}`, outcome);
    return outcome;
  }

  /** byKind lists the recorded outcomes of one kind. */
  byKind(kind: OutcomeKind): WriteOutcome[] {
    return [...this.outcomes.values()].filter((outcome) => outcome.kind === kind);
  }

  /** summary counts outcomes by kind, with the details of the failed and unknown ones. */
  summary(): string {
    const details = new Map<string, number>();
    for (const outcome of this.outcomes.values()) {
      if (outcome.kind === 'ok') continue;
      const label = `${outcome.kind}:${outcome.detail}`;
      details.set(label, (details.get(label) ?? 0) + 1);
    }
    const detailText = [...details].map(([label, count]) => `${label}=${count}`).join(' ');
    return `${this.attempted.size} attempted, ${this.byKind('ok').length} ok, ${this.byKind('failed').length} failed, ${this.byKind('unknown').length} unknown${detailText === '' ? '' : ` (${detailText})`}`;
  }
}

/** WriterOptions: which services, how many writers at once, where to send (re-read per write), the timeout. */
export interface WriterOptions {
  readonly services: readonly string[];
  readonly concurrency: number;
  readonly targets: () => readonly Member[];
  readonly timeoutMs?: number;
  /** writesMax bounds the writes of this writer (instancesPerServiceMax is 2000 per service). */
  readonly writesMax?: number;
}

/** WriterReport is a finished writer's numbers: writes, acknowledgements and the longest gap between two of them. */
export interface WriterReport {
  readonly writes: number;
  readonly acked: number;
  readonly longestAckGapMs: number;
}

/** Writer registers unique persistent instances concurrently through a Ledger until stopped. */
export class Writer {
  private readonly ledger: Ledger;
  private readonly options: WriterOptions;
  private stopping = false;
  private loops: Promise<void>[] = [];
  private writes = 0;
  private acks: number[] = [];
  private startedAt = 0;

  constructor(ledger: Ledger, options: WriterOptions) {
    this.ledger = ledger;
    this.options = options;
  }

  /** start launches `concurrency` loops. */
  start(): this {
    this.startedAt = Date.now();
    for (let worker = 0; worker < this.options.concurrency; worker++) this.loops.push(this.loop(worker));
    return this;
  }

  /** ackCount is how many writes were acknowledged so far. */
  get ackCount(): number {
    return this.acks.length;
  }

  private async loop(worker: number): Promise<void> {
    const writesMax = this.options.writesMax ?? 4000;
    for (let round = worker; !this.stopping && this.writes < writesMax; round += this.options.concurrency) {
      const targets = this.options.targets();
      const target = targets[round % Math.max(1, targets.length)];
      const service = this.options.services[round % this.options.services.length];
      if (target === undefined || service === undefined) {
        await sleep(50);
        continue;
      }
      this.writes++;
      const outcome = await this.ledger.register(target, service, this.options.timeoutMs ?? 10_000);
      if (outcome.kind === 'ok') this.acks.push(Date.now());
      // Pace retries after a refusal, so a dead target does not turn into a hot loop.
      else await sleep(50);
    }
  }

  /** stop lets every in-flight write finish and reports. */
  async stop(): Promise<WriterReport> {
    this.stopping = true;
    await Promise.all(this.loops);
    const stamps = [this.startedAt, ...this.acks.sort((a, b) => a - b)];
    let longest = 0;
    for (let i = 1; i < stamps.length; i++) longest = Math.max(longest, (stamps[i] ?? 0) - (stamps[i - 1] ?? 0));
    return { writes: this.writes, acked: this.acks.length, longestAckGapMs: longest };
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Reads and the convergence checker.

/** readInstances lists a persistent service's instances (ip:port) on one member; linearizable if asked. */
export async function readInstances(member: Member, service: string, consistency: 'local' | 'linearizable' = 'local', timeoutMs = 10_000): Promise<Set<string>> {
  const query = `serviceName=${encodeURIComponent(service)}${consistency === 'linearizable' ? '&consistency=linearizable' : ''}`;
  const answer = await member.request('GET', `/nacos/v1/ns/instance/list?${query}`, { timeoutMs });
  if (answer.status !== 200) throw new Error(`${member.addr} list ${service} (${consistency}): ${answer.status} ${answer.code ?? ''} ${answer.text.slice(0, 200)}`);
  const body = jsonOf(answer, `${member.addr} list ${service}`) as { hosts?: { ip?: unknown; port?: unknown }[] };
  if (!Array.isArray(body.hosts)) throw new Error(`${member.addr} list ${service}: no hosts array in ${answer.text.slice(0, 200)}`);
  return new Set(body.hosts.map((host) => `${String(host.ip)}:${String(host.port)}`));
}

/** RegistrySnapshot is every member's instances per service: member addr -> service -> keys. */
export type RegistrySnapshot = Map<string, Map<string, Set<string>>>;

/** readAll reads every service of the ledger on every member. */
export async function readAll(ledger: Ledger, members: readonly Member[], consistency: 'local' | 'linearizable' = 'local'): Promise<RegistrySnapshot> {
  const snapshot: RegistrySnapshot = new Map();
  await Promise.all(members.map(async (member) => {
    const services = new Map<string, Set<string>>();
    for (const service of ledger.services) services.set(service, await readInstances(member, service, consistency));
    snapshot.set(member.addr, services);
  }));
  return snapshot;
}

function sameSet(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  if (a.size !== b.size) return false;
  for (const item of a) if (!b.has(item)) return false;
  return true;
}

function sample(items: readonly string[], count = 5): string {
  return `${items.slice(0, count).join(', ')}${items.length > count ? `, ... (${items.length} in all)` : ''}`;
}

/** missingAcknowledged lists, per member, the acknowledged instances it lacks ("" when none). */
function missingAcknowledged(ledger: Ledger, snapshot: RegistrySnapshot): string {
  const problems: string[] = [];
  const acked = ledger.byKind('ok');
  for (const [addr, services] of snapshot) {
    const missing = acked.filter((outcome) => services.get(outcome.service)?.has(outcome.key) !== true).map((o) => `${o.service}/${o.key} (acked by ${o.target})`);
    if (missing.length > 0) problems.push(`${addr} lacks ${missing.length} acknowledged: ${sample(missing)}`);
  }
  return problems.join('; ');
}

/** differences describes how the members' lists differ ("" when equal). */
function differences(ledger: Ledger, snapshot: RegistrySnapshot): string {
  const problems: string[] = [];
  const [first, ...rest] = [...snapshot];
  if (first === undefined) return '';
  for (const service of ledger.services) {
    const reference = first[1].get(service) ?? new Set<string>();
    for (const [addr, services] of rest) {
      const other = services.get(service) ?? new Set<string>();
      if (!sameSet(reference, other)) problems.push(`${service}: ${first[0]} has ${reference.size}, ${addr} has ${other.size}`);
    }
  }
  return problems.join('; ');
}

/** ConvergenceReport says how long convergence took and what the unknown writes turned out to be. */
export interface ConvergenceReport {
  readonly ms: number;
  readonly acked: number;
  readonly unknownPresent: number;
  readonly unknownAbsent: number;
}

/**
 * checkConvergence waits until every member lists every acknowledged instance and all members list the same
 * instances, then asserts that nothing listed was never attempted and nothing listed was certainly refused.
 */
export async function checkConvergence(ledger: Ledger, members: readonly Member[], options: { timeoutMs?: number; what?: string } = {}): Promise<ConvergenceReport> {
  const started = Date.now();
  const snapshot = await waitFor(async () => {
    const current = await readAll(ledger, members);
    const missing = missingAcknowledged(ledger, current);
    if (missing !== '') throw new Error(missing);
    const differ = differences(ledger, current);
    if (differ !== '') throw new Error(`lists differ: ${differ}`);
    return current;
  }, { timeoutMs: options.timeoutMs ?? 20_000, intervalMs: 200, what: options.what ?? `${members.map((m) => m.addr).join(', ')} to converge with every acknowledged write` });
  const ms = Date.now() - started;
  const [first] = snapshot.values();
  const listed = new Set<string>();
  for (const [service, keys] of first ?? new Map<string, Set<string>>()) for (const key of keys) listed.add(`${service}/${key}`);
  const neverAttempted = [...listed].filter((key) => !ledger.attempted.has(key));
  if (neverAttempted.length > 0) throw new Error(`instances never attempted are listed: ${sample(neverAttempted)}`);
  const refusedButPresent = [...listed].filter((key) => ledger.outcomes.get(key)?.kind === 'failed').map((key) => `${key} (${ledger.outcomes.get(key)?.detail ?? ''} from ${ledger.outcomes.get(key)?.target ?? ''})`);
  if (refusedButPresent.length > 0) throw new Error(`writes answered with a certain failure are listed: ${sample(refusedButPresent)}`);
  const unknown = ledger.byKind('unknown');
  const unknownPresent = unknown.filter((outcome) => listed.has(`${outcome.service}/${outcome.key}`)).length;
  return { ms, acked: ledger.byKind('ok').length, unknownPresent, unknownAbsent: unknown.length - unknownPresent };
}

/**
 * assertLinearizableReads reads every service with consistency=linearizable on each member (retrying only while a
 * member answers an error, e.g. before a leader exists) and asserts each read holds every acknowledged instance.
 */
export async function assertLinearizableReads(ledger: Ledger, members: readonly Member[], timeoutMs = 15_000): Promise<void> {
  for (const member of members) {
    const services = await waitFor(async () => {
      const read = new Map<string, Set<string>>();
      for (const service of ledger.services) read.set(service, await readInstances(member, service, 'linearizable'));
      return read;
    }, { timeoutMs, intervalMs: 200, what: `a linearizable read on ${member.addr} to answer` });
    const missing = missingAcknowledged(ledger, new Map([[member.addr, services]]));
    if (missing !== '') throw new Error(`a linearizable read misses acknowledged writes: ${missing}`);
  }
}
