// cgroup: one cgroup (v2) per member, `cairn-jepsen/<host>`, so iptables can tell the members' packets apart
// (iptables.ts explains why addresses cannot). A member's process joins its cgroup before it execs the server, so
// every socket it ever opens belongs to it. The cgroups are removed when the run ends.

import { existsSync, mkdirSync, readFileSync, rmdirSync } from 'node:fs';
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
  private readonly created: string[] = [];
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
    if (!existsSync(dir)) {
      mkdirSync(dir, { recursive: true });
      this.created.push(dir);
    }
    return path.join(dir, 'cgroup.procs');
  }

  /** remove deletes the cgroups this run created (they must be empty: call after the members exited). */
  remove(): void {
    for (let dir = this.created.pop(); dir !== undefined; dir = this.created.pop()) {
      try {
        rmdirSync(dir);
      } catch {
        // Still busy (a process not yet reaped) or gone: an empty cgroup left behind is harmless.
      }
    }
  }

  /** close removes the cgroups and drops the exit cleanup. */
  close(): void {
    this.remove();
    this.unregister();
  }
}
