// A `cairn` command run as a real process for the CLI's process tests (test/cli/*.test.ts): its output as it comes,
// its exit, and signals sent to it by pid. Whatever is still running when the test process exits is killed by pid
// (test/support/cluster.ts's onProcessExit), so a failing test leaves nothing behind.

import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cairnBin, onProcessExit, waitFor } from '../support/cluster.ts';

/** Exit is how a process ended: its code, or the signal that killed it. */
export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** Spawned is a running `cairn` process. */
export interface Spawned {
  readonly pid: number;
  readonly child: ChildProcess;
  /** stdout and stderr are everything the process wrote so far. */
  stdout(): string;
  stderr(): string;
  /** exited resolves when the process has ended and its output is read to the end. */
  readonly exited: Promise<Exit>;
  /** signal sends `signal` to the process by its pid. */
  signal(signal: NodeJS.Signals): void;
  /** waitForOutput waits until stdout or stderr (`stream`) matches `pattern`. */
  waitForOutput(stream: 'stdout' | 'stderr', pattern: RegExp, timeoutMs: number): Promise<void>;
}

/** spawnCairn starts `bin/cairn ARGS` with `env` added to this process's environment. */
export function spawnCairn(args: readonly string[], env: Readonly<Record<string, string>> = {}): Spawned {
  const child = spawn(cairnBin, [...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`cairn ${args.join(' ')} did not start`);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const forget = onProcessExit(() => {
    if (child.exitCode === null && child.signalCode === null) process.kill(pid, 'SIGKILL');
  });
  const exited = new Promise<Exit>((resolve) => child.on('close', (code, signal) => {
    forget();
    resolve({ code, signal });
  }));
  return {
    pid,
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    exited,
    signal: (signal) => process.kill(pid, signal),
    waitForOutput: async (stream, pattern, timeoutMs) => {
      await waitFor(() => {
        if (pattern.test(stream === 'stdout' ? stdout : stderr)) return true;
        if (child.exitCode !== null || child.signalCode !== null) throw new Error(`the process ended (${child.exitCode ?? child.signalCode}); stderr: ${stderr}`);
        return false;
      }, { timeoutMs, intervalMs: 50, what: `${pattern} on the ${stream} of cairn ${args.join(' ')}` });
    },
  };
}

/** childPids lists the pids of a process's children (Linux /proc); empty when it has none or is gone. */
function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter((item) => item !== '').map(Number);
  } catch {
    return [];
  }
}

/**
 * exitWithin resolves with the process's exit, or rejects if it is still running after `timeoutMs`, after killing
 * it and its children by pid (a `cairn cluster` that did not stop must not leave its members behind).
 */
export async function exitWithin(spawned: Spawned, timeoutMs: number): Promise<Exit> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      for (const pid of [...childPids(spawned.pid), spawned.pid]) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // Already gone.
        }
      }
      reject(new Error(`still running after ${timeoutMs} ms; stderr: ${spawned.stderr()}`));
    }, timeoutMs);
  });
  try {
    return await Promise.race([spawned.exited, late]);
  } finally {
    clearTimeout(timer);
  }
}
