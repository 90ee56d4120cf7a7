// lock: one jepsen-like run at a time on this machine. Runs share the reserved addresses and ports, the
// `cairn-jepsen` rule tag (each run deletes every tagged rule when it starts) and the member cgroups, so a second
// concurrent run (another checkout, CI, a second terminal) would break the first. The lock is a file in the system
// temporary directory holding the owner's pid; a lock whose owner is dead is taken over. A run waits for the lock
// for a bounded time, then gives up with the owner's pid.

import { openSync, readFileSync, unlinkSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { onExit } from './cleanup.ts';
import { sleep } from './random.ts';

/** lockPath is the machine-wide lock file of jepsen-like runs. */
export const lockPath = path.join(tmpdir(), 'cairn-jepsen.lock');

/** lockPollMs is how often a waiting run looks at the lock again. */
const lockPollMs = 1000;

function ownerOf(): number | null {
  try {
    const pid = Number(readFileSync(lockPath, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function tryTake(): boolean {
  // The second attempt follows the takeover of a stale lock.
  for (let attempt = 0; attempt < 2; attempt++) {
    if (tryTakeOnce()) return true;
    const owner = ownerOf();
    if (owner !== null && alive(owner)) return false;
  }
  return false;
}

function tryTakeOnce(): boolean {
  try {
    const fd = openSync(lockPath, 'wx');
    writeSync(fd, `${process.pid}\n`);
    closeSync(fd);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    const owner = ownerOf();
    if (owner === process.pid) throw new Error(`${lockPath} is already held by this process: runs must not overlap`);
    if (owner === null || !alive(owner)) {
      // The owner died without releasing it (kill -9): take it over.
      try {
        unlinkSync(lockPath);
      } catch {
        // Someone else took it over first.
      }
    }
    return false;
  }
}

/** acquireRunLock waits (at most waitMs) for the lock and returns its release; throws naming the owner on timeout. */
export async function acquireRunLock(waitMs: number, log: (line: string) => void, signal?: AbortSignal): Promise<() => void> {
  const deadline = Date.now() + waitMs;
  let announced = false;
  while (!tryTake()) {
    signal?.throwIfAborted();
    if (Date.now() >= deadline) throw new Error(`another jepsen-like run (pid ${String(ownerOf())}) holds ${lockPath}; waited ${waitMs} ms`);
    if (!announced) log(`waiting for another jepsen-like run (pid ${String(ownerOf())}, ${lockPath}) to finish`);
    announced = true;
    await sleep(lockPollMs);
  }
  let released = false;
  const release = (): void => {
    if (released) return;
    released = true;
    unregister();
    if (ownerOf() === process.pid) unlinkSync(lockPath);
  };
  const unregister = onExit(release);
  return release;
}
