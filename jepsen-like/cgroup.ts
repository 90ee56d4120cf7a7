// cgroup: one cgroup (v2) per member, `cairn-jepsen/<host>`, so iptables can tell the members' packets apart
// (iptables.ts explains why addresses cannot). A member's process joins its cgroup before it execs the server, so
// every socket it ever opens belongs to it. The cgroups are removed when the run ends.

import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync } from 'node:fs';
import path from 'node:path';
import { onExit } from './cleanup.ts';

/** cgroupParent is the cgroup (relative to the cgroup2 root) that holds the members' cgroups. */
export const cgroupParent = 'cairn-jepsen';

/** cgroup2Root finds the cgroup2 mount point in /proc/mounts, or null. */
export function cgroup2Root(): string | null {
  let mounts: string;
  try {
    mounts = readFileSync('/proc/mounts', 'utf8');
  } catch {
    return null;
  }
  for (const line of mounts.split('\n')) {
    const [, mountPoint, type] = line.split(' ');
    if (type === 'cgroup2' && mountPoint !== undefined) return mountPoint;
  }
  return null;
}

/** cgroupProblem says why member cgroups cannot be made, or returns null when they can. */
export function cgroupProblem(): string | null {
  const root = cgroup2Root();
  if (root === null) return 'no cgroup2 file system is mounted (needed to tell the members\' packets apart for partitions)';
  try {
    mkdirSync(path.join(root, cgroupParent), { recursive: true });
    return null;
  } catch (error) {
    return `cannot create ${path.join(root, cgroupParent)}: ${error instanceof Error ? error.message : String(error)}`;
  }
}

/** MemberCgroups creates and removes the per-member cgroups of one run. */
export class MemberCgroups {
  private readonly root: string;
  private readonly unregister: () => void;

  /** constructor checks for cgroup2; throws with the reason when it is unusable. */
  constructor() {
    const problem = cgroupProblem();
    const root = cgroup2Root();
    if (problem !== null || root === null) throw new Error(problem ?? 'no cgroup2');
    this.root = root;
    this.unregister = onExit(() => this.remove());
  }

  /** relativePath is the cgroup of `host` as iptables' `--path` names it. */
  relativePath(host: string): string {
    return `${cgroupParent}/${host}`;
  }

  /** procsFile creates the cgroup of `host` and returns its cgroup.procs path (write a pid there to move it in). */
  procsFile(host: string): string {
    const dir = path.join(this.root, this.relativePath(host));
    mkdirSync(dir, { recursive: true });
    return path.join(dir, 'cgroup.procs');
  }

  /**
   * remove deletes the member cgroups (those this run created and any an earlier run left), then their parent. Call
   * after the members exited; the kernel releases a dead process's cgroup shortly after it is reaped, so a busy
   * cgroup is retried a few times.
   */
  remove(): void {
    const parent = path.join(this.root, cgroupParent);
    const members = existsSync(parent) ? readdirSync(parent).filter((name) => /^127\.0\.0\.1[1-5]$/.test(name)) : [];
    for (const name of members) removeDirectory(path.join(parent, name));
    removeDirectory(parent);
  }

  /** close removes the cgroups and drops the exit cleanup. */
  close(): void {
    this.remove();
    this.unregister();
  }
}

/** removeAttempts and removeRetryMs bound the retries of a busy cgroup (about half a second in all). */
const removeAttempts = 20;
const removeRetryMs = 25;

function removeDirectory(dir: string): void {
  for (let attempt = 0; attempt < removeAttempts && existsSync(dir); attempt++) {
    try {
      rmdirSync(dir);
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EBUSY') return;
      // Synchronous on purpose: this also runs in the process 'exit' handler, where nothing asynchronous runs.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, removeRetryMs);
    }
  }
}
