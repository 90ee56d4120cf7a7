// Processes the bench starts (Cairn members, etcd members, ZooKeeper JVMs): each runs in its own process group, is
// tracked here, and is stopped by its pid (the group's id) on every way out: the normal end, a failure, Ctrl-C or
// SIGTERM. Nothing is ever killed by name. Also: CPU and RSS of a pid from /proc, and the bounded polls the
// launchers use to wait for readiness.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { readdir, readFile, rm } from 'node:fs/promises';

/** clockTicksPerSecond is Linux's USER_HZ (utime and stime in /proc/<pid>/stat count these). */
const clockTicksPerSecond = 100;
/** pageBytes is the page size RSS in /proc/<pid>/stat is counted in (4 KiB on the machines the bench runs on). */
const pageBytes = 4096;

/** Managed is one process the bench started. */
export interface Managed {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  /** exited resolves with the exit code (or the signal's name) once the process is gone. */
  readonly exited: Promise<string>;
  /** logFile receives the process's stdout and stderr. */
  readonly logFile: string;
}

const running = new Set<Managed>();
const directories = new Set<string>();
let handlersInstalled = false;

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // Already gone.
    }
  }
}

function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  // Synchronous last resort: whatever is still running when the bench exits is killed by its process group id.
  process.on('exit', () => {
    for (const managed of running) killGroup(managed.pid, 'SIGKILL');
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      process.stderr.write(`bench: ${signal}: stopping ${running.size} process(es)\n`);
      for (const managed of running) killGroup(managed.pid, 'SIGKILL');
      void Promise.all([...directories].map((dir) => rm(dir, { recursive: true, force: true }))).finally(() => process.exit(130));
    });
  }
}

/** trackDirectory removes `dir` when the bench is interrupted (the normal path removes it itself). */
export function trackDirectory(dir: string): void {
  installHandlers();
  directories.add(dir);
}

/** forgetDirectory stops tracking a directory the caller removed. */
export function forgetDirectory(dir: string): void {
  directories.delete(dir);
}

/** startProcess spawns `command` in a new process group, its output appended to `logFile`. */
export function startProcess(name: string, command: string, args: readonly string[], logFile: string, env?: NodeJS.ProcessEnv): Managed {
  installHandlers();
  const log: WriteStream = createWriteStream(logFile, { flags: 'a' });
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: env ?? process.env });
  child.stdout?.pipe(log, { end: false });
  child.stderr?.pipe(log, { end: false });
  if (child.pid === undefined) throw new Error(`${name}: spawn of ${command} failed`);
  const pid = child.pid;
  const exited = new Promise<string>((resolve) => {
    child.once('exit', (code, signal) => {
      resolve(signal ?? String(code));
    });
    child.once('error', (error) => resolve(`spawn error: ${error.message}`));
  });
  const managed: Managed = { name, child, pid, exited, logFile };
  running.add(managed);
  void exited.then(() => {
    running.delete(managed);
    log.end();
  });
  return managed;
}

/** isRunning tells whether a started process has not exited yet. */
export function isRunning(managed: Managed): boolean {
  return running.has(managed);
}

/** stopProcess sends SIGTERM to the process group, then SIGKILL after `graceMs`, and waits for the exit. */
export async function stopProcess(managed: Managed, graceMs = 5000): Promise<void> {
  if (!running.has(managed)) return;
  killGroup(managed.pid, 'SIGTERM');
  const timer = setTimeout(() => killGroup(managed.pid, 'SIGKILL'), graceMs);
  await managed.exited;
  clearTimeout(timer);
  // The leader of the group is gone; anything it left in its group goes too.
  killGroup(managed.pid, 'SIGKILL');
}

/** killProcess kills the process group at once (SIGKILL) and waits for the exit. */
export async function killProcess(managed: Managed): Promise<void> {
  if (!running.has(managed)) return;
  killGroup(managed.pid, 'SIGKILL');
  await managed.exited;
}

/** runningCount is how many started processes are still running (the smoke test asserts 0 at the end). */
export function runningCount(): number {
  return running.size;
}

/** cpuSecondsOf reads utime + stime of a pid (all its threads), or NaN when it cannot be read. */
export async function cpuSecondsOf(pid: number): Promise<number> {
  try {
    const text = await readFile(`/proc/${pid}/stat`, 'utf8');
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / clockTicksPerSecond;
  } catch {
    return Number.NaN;
  }
}

/**
 * ThreadSched is what the scheduler counted for one thread (/proc/<pid>/task/<tid>/schedstat): nanoseconds on a CPU,
 * nanoseconds runnable but waiting for a CPU (the run queue), and how many times it was put on a CPU.
 */
export interface ThreadSched {
  readonly runNs: number;
  readonly waitNs: number;
  readonly slices: number;
}

/** threadsMax bounds the threads read per process (a JVM has ~50, node ~12, etcd ~15). */
const threadsMax = 1024;

/**
 * schedOf reads the scheduler's counters of every thread of `pid` (`'self'` for the bench process), by thread id; an
 * empty map when the process cannot be read. A thread that ends between two samples takes its counts with it.
 */
export async function schedOf(pid: number | 'self'): Promise<Map<number, ThreadSched>> {
  const threads = new Map<number, ThreadSched>();
  let tids: string[];
  try {
    tids = (await readdir(`/proc/${pid}/task`)).slice(0, threadsMax);
  } catch {
    return threads;
  }
  await Promise.all(tids.map(async (tid) => {
    try {
      const fields = (await readFile(`/proc/${pid}/task/${tid}/schedstat`, 'utf8')).trim().split(' ');
      const sched = { runNs: Number(fields[0]), waitNs: Number(fields[1]), slices: Number(fields[2]) };
      if (Number.isFinite(sched.runNs) && Number.isFinite(sched.waitNs) && Number.isFinite(sched.slices)) threads.set(Number(tid), sched);
    } catch {
      // The thread ended while the directory was read.
    }
  }));
  return threads;
}

/**
 * schedDelta is what the threads of one process did between two samples: a thread in both counts its difference, a
 * thread started in between counts all it has, a thread that ended in between is lost (undercounted).
 */
export function schedDelta(before: ReadonlyMap<number, ThreadSched>, after: ReadonlyMap<number, ThreadSched>): ThreadSched {
  let runNs = 0;
  let waitNs = 0;
  let slices = 0;
  for (const [tid, now] of after) {
    const then = before.get(tid);
    runNs += now.runNs - (then?.runNs ?? 0);
    waitNs += now.waitNs - (then?.waitNs ?? 0);
    slices += now.slices - (then?.slices ?? 0);
  }
  return { runNs, waitNs, slices };
}

/** rssBytesOf reads the resident set size of a pid from /proc/<pid>/stat, or NaN. */
export async function rssBytesOf(pid: number): Promise<number> {
  try {
    const text = await readFile(`/proc/${pid}/stat`, 'utf8');
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return Number(fields[21]) * pageBytes;
  } catch {
    return Number.NaN;
  }
}

/** sleep resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** describe renders anything thrown as one line. */
export function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * waitUntil polls `probe` every `intervalMs` until it returns true, and rejects after `timeoutMs` (or at once when
 * one of `processes` exits), naming `what` and the probe's last error.
 */
export async function waitUntil(what: string, probe: () => Promise<boolean>, timeoutMs: number, processes: readonly Managed[] = [], intervalMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'not yet';
  while (Date.now() < deadline) {
    const dead = processes.find((managed) => !running.has(managed));
    if (dead !== undefined) throw new Error(`${what}: ${dead.name} exited (${await dead.exited}); see ${dead.logFile}`);
    try {
      if (await probe()) return;
    } catch (error) {
      last = describe(error);
    }
    await sleep(intervalMs);
  }
  throw new Error(`${what}: not within ${timeoutMs} ms (last: ${last})`);
}
