// control: the members of one run as real processes (`bin/cairn server`) on 127.0.0.11..15, each with a fresh
// data directory under the run directory and its log (stdout and stderr, across restarts) beside it. A member is
// started, killed (SIGKILL), paused (SIGSTOP), resumed (SIGCONT) and restarted by its pid, never by name. A dead
// member's data directory can be wiped (the member nemesis, after the member's removal committed); its next start
// then passes --join, so it waits empty to be added by the leader (docs/operations.md). The wipe nemesis (PEERS.md
// A9) also makes start attempts that Cairn must refuse: a dead member started with its normal flags on a wiped data
// directory (no --join), or its data directory started under a free address; such a process is a StartAttempt,
// never the member, and its exit is expected. Every process is registered for the exit cleanup, so an interrupted
// or crashed run leaves none behind. A member process that exits without the harness having killed it is recorded
// as an unexpected exit: the run is then invalid. With the clock nemesis (faketime.ts) every member process runs
// under libfaketime with its own control file in the run directory, kept across restarts.

import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MemberCgroups } from './cgroup.ts';
import { onExit } from './cleanup.ts';
import { ClockControlFile, faketimeEnvironment, mergeEnvironments, type ClockSetup } from './faketime.ts';
import { DurabilityJournal, type LossReport } from './lazyfs.ts';

/** cairnBin is the repository's `bin/cairn`. */
export const cairnBin = fileURLToPath(new URL('../bin/cairn', import.meta.url));

/** memberHosts are this harness's reserved addresses; a run uses the first 3 or 5. */
export const memberHosts: readonly string[] = ['127.0.0.11', '127.0.0.12', '127.0.0.13', '127.0.0.14', '127.0.0.15'];

/** readyTimeoutMs bounds a member's start: longer than the wait for every peer of an empty member. */
const readyTimeoutMs = 60_000;
/** exitWaitMs bounds the wait for a killed process to be reaped. */
const exitWaitMs = 10_000;
/** stderrLinesKept bounds the stderr kept in memory for reports (the full text is in the member's log). */
const stderrLinesKept = 40;
/** attemptLinesKept bounds the output lines a start attempt keeps in memory (the full text is in its log). */
const attemptLinesKept = 40;
/** attemptLineCharsMax bounds one kept line: Cairn's refusal with its advice is about 600 characters. */
const attemptLineCharsMax = 2000;

/** checkpointEveryJepsen is the members' --checkpoint-every in a run (a 40-60 s run commits 500 to a few thousand entries). */
export const checkpointEveryJepsen = 200;

/** ClusterOptions describe how the members run. */
export interface ClusterOptions {
  readonly runDir: string;
  readonly nodes: number;
  readonly port: number;
  readonly logLevel: string;
  readonly snapshotEntries: number | null;
  readonly unsafeLocalReads: boolean;
  readonly unsafeNoFsync: boolean;
  /** unsafeNoRequestDedup starts every member with --unsafe-no-request-dedup (the A14 positive control). */
  readonly unsafeNoRequestDedup: boolean;
  readonly cgroups: MemberCgroups | null;
  /** lazyfsLibrary is the fsync journal library (lazyfs.ts), or null to run members without it. */
  readonly lazyfsLibrary: string | null;
  /** clock runs every member under libfaketime (the clock nemesis, faketime.ts), or null to run them without it. */
  readonly clock: ClockSetup | null;
}

/** MemberState is what the harness did to a member last. */
export type MemberState = 'stopped' | 'running' | 'paused' | 'killed';

const liveChildren = new Set<ChildProcess>();
let cleanupRegistered = false;

/**
 * pidFile lists the pids of the members this machine's current run started, so that the next run can kill (by
 * pid) members orphaned by a harness that was itself killed with SIGKILL, when no exit handler could run.
 */
export const pidFile = path.join(tmpdir(), 'cairn-jepsen.pids');

function recordPid(pid: number | undefined): void {
  if (pid !== undefined) appendFileSync(pidFile, `${pid}\n`);
}

/** reapOrphans kills the members a previous, killed harness left running; call only while holding the run lock. */
export function reapOrphans(): string[] {
  const reaped: string[] = [];
  const text = existsSync(pidFile) ? readFileSync(pidFile, 'utf8') : '';
  for (const pid of text.split('\n').map(Number).filter((n) => Number.isInteger(n) && n > 0).slice(0, 1000)) {
    let commandLine = '';
    try {
      commandLine = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
    } catch {
      continue;
    }
    // Only a member of ours: a recycled pid belongs to someone else.
    if (!/ server --addr 127\.0\.0\.1[1-5]:/.test(commandLine)) continue;
    process.kill(pid, 'SIGKILL');
    reaped.push(`${pid}: ${commandLine.slice(0, 160)}`);
  }
  writeFileSync(pidFile, '');
  return reaped;
}

/**
 * spawnServer starts `bin/cairn` with `args`, in the cgroup whose cgroup.procs is `procsFile` (or none), and
 * registers the process for the exit cleanup and in the pid file, so no run leaves it behind.
 */
function spawnServer(args: readonly string[], extraEnv: Readonly<Record<string, string>>, procsFile: string | null): ChildProcess {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) if (value !== undefined && !key.startsWith('CAIRN_')) env[key] = value;
  Object.assign(env, extraEnv);
  // The shell joins the member's cgroup, then execs bin/cairn (which execs node): one pid throughout.
  const child = procsFile === null
    ? spawn(cairnBin, args, { stdio: ['ignore', 'pipe', 'pipe'], env })
    : spawn('/bin/sh', ['-c', 'echo $$ > "$1" || exit 97; shift; exec "$@"', 'sh', procsFile, cairnBin, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
  if (!cleanupRegistered) {
    cleanupRegistered = true;
    onExit(killAllChildren);
  }
  liveChildren.add(child);
  recordPid(child.pid);
  return child;
}

function killAllChildren(): void {
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
}

/** Member is one member: its addresses, data directory and log, and its current process. */
export class Member {
  readonly host: string;
  readonly addr: string;
  readonly grpcAddr: string;
  readonly dataDir: string;
  readonly logPath: string;
  /** unexpectedExits lists exits the harness did not cause, each with its code and last stderr lines. */
  readonly unexpectedExits: string[] = [];
  private child: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();
  private current: MemberState = 'stopped';
  /** transitions counts the harness's changes of state (starts, kills, stops, pauses, resumes). */
  private transitionCount = 0;
  /** joinOnStart: the data directory was wiped since the last start, so the next start passes --join. */
  private joinOnStart = false;
  /** attempt is the last start attempt on this member's data directory (wipe nemesis), or null. */
  private attempt: StartAttempt | null = null;
  private readonly journal: DurabilityJournal | null;
  /** clockFile is the member's libfaketime control file (`faketime-<host>` in the run directory), or null without the clock nemesis. */
  readonly clockFile: ClockControlFile | null;
  /** stderrTail is the last stderr lines of the current process (at most stderrLinesKept). */
  private stderrTail: readonly string[] = [];
  /** closed is set by Cluster.teardown: a nemesis or workload still running after an aborted run cannot start it again. */
  private closed = false;
  /**
   * toleratesExits: while set (the corrupt nemesis started this member on data it damaged), an exit by itself is
   * recorded in toleratedExits for the nemesis to judge, not as an unexpected exit.
   */
  toleratesExits = false;
  /** toleratedExits lists the exits recorded while toleratesExits was set, each with its last stderr lines. */
  readonly toleratedExits: { readonly detail: string; readonly lastLines: readonly string[] }[] = [];

  /** constructor lays out the member's files; nothing runs yet. */
  constructor(
    private readonly options: ClusterOptions,
    host: string,
    private readonly memberList: readonly string[],
  ) {
    this.host = host;
    this.addr = `${host}:${options.port}`;
    this.grpcAddr = `${host}:${options.port + 1000}`;
    this.dataDir = path.join(options.runDir, 'data', host);
    this.logPath = path.join(options.runDir, `member-${host}.log`);
    mkdirSync(this.dataDir, { recursive: true });
    const library = options.lazyfsLibrary;
    this.journal = library === null ? null : new DurabilityJournal(library, path.join(options.runDir, `fsync-journal-${host}.tsv`), this.dataDir);
    this.clockFile = options.clock === null ? null : new ClockControlFile(path.join(options.runDir, `faketime-${host}`));
  }

  /** environment is what the member's processes need beyond the harness's: the fsync journal's and libfaketime's. */
  private environment(journal: boolean): Record<string, string> {
    const clock = this.options.clock === null || this.clockFile === null ? {} : faketimeEnvironment(this.options.clock, this.clockFile.path);
    return mergeEnvironments(journal ? (this.journal?.environment() ?? {}) : {}, clock);
  }

  /** state is what the harness did to the member last. */
  get state(): MemberState {
    return this.current;
  }

  /**
   * transitions counts what the harness has done to the member so far (each start, kill, stop, pause and resume): a
   * check that spans a while compares it before and after to know whether another fault touched the member.
   */
  get transitions(): number {
    return this.transitionCount;
  }

  private setState(state: MemberState): void {
    this.current = state;
    this.transitionCount++;
  }

  /** pid is the running process's id, or null. */
  get pid(): number | null {
    return this.child?.pid ?? null;
  }

  /** wiped tells whether the data directory was wiped and the member has not started on it since. */
  get wiped(): boolean {
    return this.joinOnStart;
  }

  /**
   * start spawns the member and resolves once it printed `cairn ready <addr>`; rejects if it exits first. After a
   * wipe it passes --join: the member initialises its empty storage as a joiner before it prints ready, so later
   * starts need no flag (a member with storage ignores --join).
   */
  async start(): Promise<void> {
    this.assertOpen();
    if (this.current === 'running' || this.current === 'paused') throw new Error(`${this.addr} is already running`);
    // Two processes on one LevelDB directory: the member would fail to open it, or worse, share it.
    if (this.attempt?.running === true) throw new Error(`a start attempt on ${this.addr}'s data directory (pid ${String(this.attempt.pid)}) still runs`);
    this.journal?.beforeStart();
    const child = this.spawnProcess();
    this.setState('running');
    await this.awaitReady(child);
    this.joinOnStart = false;
  }

  /**
   * startOrRefusal starts the member as start() does, except that a start Cairn refuses (the process exits before it
   * is ready, as on corrupt storage) is an answer rather than an unexpected exit: null when the member is ready,
   * else how the process ended and its last stderr lines (the refusal). A start still not ready at the bound is
   * killed by pid and reported the same way.
   */
  async startOrRefusal(): Promise<StartRefusal | null> {
    this.assertOpen();
    if (this.current === 'running' || this.current === 'paused') throw new Error(`${this.addr} is already running`);
    if (this.attempt?.running === true) throw new Error(`a start attempt on ${this.addr}'s data directory (pid ${String(this.attempt.pid)}) still runs`);
    this.journal?.beforeStart();
    this.toleratesExits = true;
    try {
      const child = this.spawnProcess();
      // 'close' comes after the last output: the refusal line is read before the exit is reported.
      const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
      this.setState('running');
      try {
        await this.awaitReady(child);
        this.joinOnStart = false;
        return null;
      } catch (error) {
        if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([closed, new Promise((resolve) => (timer = setTimeout(resolve, exitWaitMs)))]);
        clearTimeout(timer);
        this.setState('killed');
        this.toleratedExits.length = 0;
        return { exitCode: child.exitCode, signal: child.signalCode, lastLines: this.stderrTail.slice(-5), reason: error instanceof Error ? error.message : String(error) };
      }
    } finally {
      if (this.state !== 'running') this.toleratesExits = false;
    }
  }

  /** wipe deletes the data directory of a dead member (killed and reaped) and makes the next start a --join. */
  wipe(): void {
    const child = this.child;
    if (this.current === 'running' || this.current === 'paused') throw new Error(`${this.addr} is still running: wipe only a dead member`);
    // kill() gives up waiting after exitWaitMs; deleting files under a process that still runs would be no wipe.
    if (child !== null && child.exitCode === null && child.signalCode === null) throw new Error(`${this.addr} (pid ${String(child.pid)}) has not exited yet`);
    if (this.attempt?.running === true) throw new Error(`a start attempt on ${this.addr}'s data directory (pid ${String(this.attempt.pid)}) still runs`);
    rmSync(this.dataDir, { recursive: true, force: true });
    mkdirSync(this.dataDir, { recursive: true });
    this.joinOnStart = true;
  }

  private spawnProcess(): ChildProcess {
    const args = this.serverArgs(this.addr, this.memberList, this.joinOnStart);
    const cgroups = this.options.cgroups;
    const child = spawnServer(args, this.environment(true), cgroups === null ? null : cgroups.procsFile(this.host));
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    this.attachLog(child, args);
    return child;
  }

  private serverArgs(addr: string, members: readonly string[], join: boolean): string[] {
    const args = ['server', '--addr', addr, '--members', members.join(','), '--data-dir', this.dataDir, '--log-level', this.options.logLevel];
    if (this.options.snapshotEntries !== null) args.push('--snapshot-entries', String(this.options.snapshotEntries));
    // Checkpoints every checkpointEveryJepsen entries, so that the members compare their states during the run, not
    // only at its end (runner.ts reads their comparisons); the default interval would rarely be reached in a run.
    args.push('--checkpoint-every', String(checkpointEveryJepsen));
    if (this.options.unsafeLocalReads) args.push('--unsafe-local-reads');
    if (this.options.unsafeNoFsync) args.push('--unsafe-no-fsync');
    if (this.options.unsafeNoRequestDedup) args.push('--unsafe-no-request-dedup');
    if (join) args.push('--join');
    return args;
  }

  /**
   * attemptStart starts the dead member with exactly its normal flags and never --join, even after a wipe: on a
   * wiped data directory Cairn must refuse (CAIRN_MEMBER_STATE_MISSING). The process runs in the member's cgroup
   * (so partitions apply to it) and under its clock, but without the fsync journal (its writes are no member's history), logs to the
   * member's log, and is not the member: its exit is expected, and start and wipe refuse to run until it is gone.
   */
  attemptStart(): StartAttempt {
    this.assertNoProcess();
    const args = this.serverArgs(this.addr, this.memberList, false);
    const cgroups = this.options.cgroups;
    const child = spawnServer(args, this.environment(false), cgroups === null ? null : cgroups.procsFile(this.host));
    this.attempt = new StartAttempt(this.addr, child, this.logPath, args);
    return this.attempt;
  }

  /**
   * attemptStartAt starts a process on `host` (a reserved address no member of the run uses) with this dead
   * member's data directory and --members naming the cluster plus that address: Cairn must refuse a data directory
   * that belongs to another member (CAIRN_INVALID_ARGUMENT). It runs in no cgroup (no partition names it) and logs
   * to `member-<host>.log`.
   */
  attemptStartAt(host: string): StartAttempt {
    this.assertNoProcess();
    const addr = `${host}:${this.options.port}`;
    if (!memberHosts.includes(host) || this.memberList.includes(addr)) throw new Error(`${host} is not a free reserved address (127.0.0.11-15 minus the members)`);
    const args = this.serverArgs(addr, [...this.memberList, addr], false);
    const child = spawnServer(args, {}, null);
    this.attempt = new StartAttempt(addr, child, path.join(this.options.runDir, `member-${host}.log`), args);
    return this.attempt;
  }

  private assertOpen(): void {
    if (this.closed) throw new Error(`${this.addr}: the run was torn down; no member starts again`);
  }

  /** close kills the member and any start attempt on its data directory, and refuses every later start. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([this.kill(), this.attempt?.running === true ? this.attempt.kill() : Promise.resolve()]);
  }

  private assertNoProcess(): void {
    this.assertOpen();
    if (this.current === 'running' || this.current === 'paused') throw new Error(`${this.addr} is running: a start attempt needs it dead`);
    const child = this.child;
    if (child !== null && child.exitCode === null && child.signalCode === null) throw new Error(`${this.addr} (pid ${String(child.pid)}) has not exited yet`);
    if (this.attempt?.running === true) throw new Error(`a start attempt on ${this.addr}'s data directory (pid ${String(this.attempt.pid)}) still runs`);
  }

  private attachLog(child: ChildProcess, args: readonly string[]): void {
    const fd = openSync(this.logPath, 'a');
    writeSync(fd, `--- ${new Date().toISOString()} started pid ${String(child.pid)}: cairn ${args.join(' ')}\n`);
    const stderr: string[] = [];
    this.stderrTail = stderr;
    child.stdout?.on('data', (chunk: Buffer) => writeSync(fd, chunk));
    child.stderr?.on('data', (chunk: Buffer) => {
      writeSync(fd, chunk);
      stderr.push(...chunk.toString().split('\n').filter((line) => line !== ''));
      if (stderr.length > stderrLinesKept) stderr.splice(0, stderr.length - stderrLinesKept);
    });
    child.once('exit', (code, signal) => {
      liveChildren.delete(child);
      writeSync(fd, `--- ${new Date().toISOString()} pid ${String(child.pid)} exited: code ${String(code)} signal ${String(signal)}\n`);
      closeSync(fd);
      if (this.child === child && (this.current === 'running' || this.current === 'paused')) {
        this.setState('stopped');
        const detail = `${this.addr} (pid ${String(child.pid)}) exited by itself: code ${String(code)}, signal ${String(signal)}; stderr: ${stderr.slice(-5).join(' | ')}`;
        if (this.toleratesExits) this.toleratedExits.push({ detail, lastLines: stderr.slice(-5) });
        else this.unexpectedExits.push(detail);
      }
    });
  }

  private awaitReady(child: ChildProcess): Promise<void> {
    return new Promise((resolve, reject) => {
      let buffered = '';
      const timer = setTimeout(() => done(new Error(`${this.addr} printed no 'cairn ready' within ${readyTimeoutMs} ms`)), readyTimeoutMs);
      const onData = (chunk: Buffer): void => {
        buffered = (buffered + chunk.toString()).slice(-4096);
        if (buffered.includes(`cairn ready ${this.addr}\n`)) done(null);
      };
      const onExitEarly = (code: number | null, signal: NodeJS.Signals | null): void => done(new Error(`${this.addr} exited before it was ready: code ${String(code)}, signal ${String(signal)} (see ${this.logPath})`));
      const done = (error: Error | null): void => {
        clearTimeout(timer);
        child.stdout?.off('data', onData);
        child.off('exit', onExitEarly);
        if (error === null) resolve();
        else reject(error);
      };
      child.stdout?.on('data', onData);
      child.once('exit', onExitEarly);
    });
  }

  /** kill sends SIGKILL and waits until the process is reaped. */
  async kill(): Promise<void> {
    const child = this.child;
    if (child === null || this.current === 'killed' || this.current === 'stopped') return;
    this.setState('killed');
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.exited, new Promise((resolve) => (timer = setTimeout(resolve, exitWaitMs)))]);
    clearTimeout(timer);
  }

  /** loseUnsyncedWrites emulates a power failure on the dead member's disk (lazyfs.ts); null without the journal. */
  loseUnsyncedWrites(): LossReport | null {
    if (this.current === 'running' || this.current === 'paused') throw new Error(`${this.addr} is still running`);
    return this.journal?.loseUnsyncedWrites() ?? null;
  }

  /** pause sends SIGSTOP. */
  pause(): void {
    const pid = this.child?.pid;
    if (pid === undefined || this.current !== 'running') return;
    process.kill(pid, 'SIGSTOP');
    this.setState('paused');
  }

  /** resume sends SIGCONT. */
  resume(): void {
    const pid = this.child?.pid;
    if (pid === undefined || this.current !== 'paused') return;
    process.kill(pid, 'SIGCONT');
    this.setState('running');
  }
}

/** StartRefusal is how a start that never got ready ended (Member.startOrRefusal): exit code or signal, last stderr lines. */
export interface StartRefusal {
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly lastLines: readonly string[];
  readonly reason: string;
}

/** AttemptExit is how a start attempt's process ended: its exit code, or the signal that ended it. */
export interface AttemptExit {
  readonly code: number | null;
  readonly signal: string | null;
  /** killedByHarness: the harness sent the SIGKILL (it ran past its bound, or it started and was stopped). */
  readonly killedByHarness: boolean;
}

/**
 * StartAttempt is a server process the harness expects Cairn to refuse (Member.attemptStart, attemptStartAt): its
 * output is kept (bounded) for the refusal's code, `cairn ready` is noticed (Cairn accepted the start), and it is
 * killed by pid when the harness is done with it.
 */
export class StartAttempt {
  /** startedAt is Date.now() at the spawn. */
  readonly startedAt = Date.now();
  private readonly lines: string[] = [];
  private readyAt: number | null = null;
  private exitStatus: AttemptExit | null = null;
  private killing = false;
  /** reaped: the process has exited and been reaped, so its pid may already name another process. */
  private reaped = false;
  private readonly exited: Promise<void>;

  /** constructor takes over a spawned process: logs its output to `logPath` and watches for ready and exit. */
  constructor(
    readonly addr: string,
    private readonly child: ChildProcess,
    logPath: string,
    args: readonly string[],
  ) {
    // 'close' comes after 'exit' and after the last output: the refusal line is read before the exit is taken.
    this.exited = new Promise((resolve) => child.once('close', () => resolve()));
    const fd = openSync(logPath, 'a');
    writeSync(fd, `--- ${new Date().toISOString()} started pid ${String(child.pid)} (a start Cairn should refuse): cairn ${args.join(' ')}\n`);
    let partial = '';
    const onChunk = (chunk: Buffer): void => {
      writeSync(fd, chunk);
      // Lines may arrive split across chunks; keep the unfinished tail (bounded) until its newline comes.
      const parts = (partial + chunk.toString()).split('\n');
      partial = (parts.pop() ?? '').slice(-attemptLineCharsMax);
      for (const line of parts) this.keep(line);
    };
    child.stdout?.on('data', onChunk);
    child.stderr?.on('data', onChunk);
    child.once('exit', () => {
      this.reaped = true;
      liveChildren.delete(child);
    });
    child.once('close', (code: number | null, signal: NodeJS.Signals | null) => {
      if (partial !== '') this.keep(partial);
      this.exitStatus = { code, signal, killedByHarness: this.killing };
      writeSync(fd, `--- ${new Date().toISOString()} pid ${String(child.pid)} exited: code ${String(code)} signal ${String(signal)}\n`);
      closeSync(fd);
    });
  }

  private keep(line: string): void {
    if (line === '') return;
    if (this.readyAt === null && line === `cairn ready ${this.addr}`) this.readyAt = Date.now();
    this.lines.push(line.slice(0, attemptLineCharsMax));
    if (this.lines.length > attemptLinesKept) this.lines.splice(0, this.lines.length - attemptLinesKept);
  }

  /** pid is the process's id, or null. */
  get pid(): number | null {
    return this.child.pid ?? null;
  }

  /** running tells whether the process has not exited yet. */
  get running(): boolean {
    return this.exitStatus === null;
  }

  /** readyAfterMs is when it printed `cairn ready` (Cairn accepted the start), in ms after the spawn, or null. */
  get readyAfterMs(): number | null {
    return this.readyAt === null ? null : this.readyAt - this.startedAt;
  }

  /** exit is how the process ended, or null while it runs. */
  get exit(): AttemptExit | null {
    return this.exitStatus;
  }

  /** output is the last lines of its stdout and stderr (at most attemptLinesKept). */
  output(): readonly string[] {
    return this.lines;
  }

  /** waitExit resolves true once the process has exited, or false after `ms`. */
  async waitExit(ms: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.exited, new Promise((resolve) => (timer = setTimeout(resolve, Math.max(0, ms))))]);
    clearTimeout(timer);
    return !this.running;
  }

  /** kill sends SIGKILL (by pid) if the process still runs and waits until it is reaped (at most exitWaitMs). */
  async kill(): Promise<void> {
    const pid = this.child.pid;
    if (!this.running || pid === undefined) return;
    if (!this.reaped) {
      this.killing = true;
      process.kill(pid, 'SIGKILL');
    }
    await this.waitExit(exitWaitMs);
  }
}

/** Cluster is the members of one run. */
export class Cluster {
  readonly members: readonly Member[];

  /** constructor lays out options.nodes members on the reserved addresses. */
  constructor(readonly options: ClusterOptions) {
    if (options.nodes < 1 || options.nodes > memberHosts.length) throw new RangeError(`nodes must be 1..${memberHosts.length}`);
    const hosts = memberHosts.slice(0, options.nodes);
    const list = hosts.map((host) => `${host}:${options.port}`);
    this.members = hosts.map((host) => new Member(options, host, list));
  }

  /** start starts every member at once (an empty member waits for all its peers) and waits until all are ready. */
  async start(): Promise<void> {
    await Promise.all(this.members.map((member) => member.start()));
  }

  /** byAddr finds a member by its HTTP address. */
  byAddr(addr: string): Member | undefined {
    return this.members.find((member) => member.addr === addr);
  }

  /** unexpectedExits gathers every member's unexpected exits. */
  unexpectedExits(): string[] {
    return this.members.flatMap((member) => member.unexpectedExits);
  }

  /**
   * teardown kills every member (paused ones too) and any start attempt, waits for them to be reaped, and closes the
   * members: after an aborted run the nemesis may still be running, and must not bring a member back.
   */
  async teardown(): Promise<void> {
    await Promise.all(this.members.map((member) => member.close()));
  }
}
