// iptables: the network faults. Members all talk from 127.0.0.1 (the kernel's source address for loopback
// destinations: their outgoing peer connections do not bind the member's own host), so a rule between member
// addresses would cut nothing. Instead each member runs in its own cgroup (cgroup.ts) and a fault "A cannot send to
// B" is `-A OUTPUT -d <B's host> -m cgroup --path <A's cgroup> -j DROP`: every packet A's sockets send to B's
// address disappears, whichever port. That cuts A's own connections to B both ways (its requests and ACKs are
// lost), while B's connections to A keep working unless B -> A is dropped too: one rule per direction, so one-way
// partitions are exact.
//
// Every rule carries the comment tag `cairn-jepsen`; removeTaggedRules deletes exactly the lines of `iptables -S`
// with that tag and no other, at the start and end of each run and at exit.

import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { onExit } from './cleanup.ts';

/** iptablesPath is where Debian's iptables package installs the command. */
export const iptablesPath = '/usr/sbin/iptables';

/** jepsenTag is the comment on every rule this harness adds. */
export const jepsenTag = 'cairn-jepsen';

/** iptablesAdvice is what to do when iptables is missing. */
export const iptablesAdvice = 'install the Debian package iptables (apt-get install iptables) and run as root';

/** iptablesProblem says why iptables cannot be used here, or returns null when it can. */
export function iptablesProblem(): string | null {
  if (!existsSync(iptablesPath)) return `${iptablesPath} is missing: ${iptablesAdvice}`;
  try {
    iptables(['-S', 'OUTPUT']);
    return null;
  } catch (error) {
    return `${iptablesPath} -S OUTPUT failed (${describe(error)}): ${iptablesAdvice}`;
  }
}

function iptables(args: readonly string[]): string {
  return execFileSync(iptablesPath, [...args], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 }).toString();
}

function describe(error: unknown): string {
  const stderr = (error as { stderr?: Buffer }).stderr?.toString().trim();
  if (stderr !== undefined && stderr !== '') return stderr;
  return error instanceof Error ? error.message : String(error);
}

function wordsOf(line: string): string[] {
  return line.trim().split(/\s+/).map((word) => word.replace(/^"|"$/g, ''));
}

/** taggedRules lists the `iptables -S` lines that carry our tag. */
export function taggedRules(): string[] {
  if (!existsSync(iptablesPath)) return [];
  return iptables(['-S']).split('\n').filter((line) => wordsOf(line).includes(jepsenTag));
}

/** removeTaggedRules deletes every rule carrying our tag (and only those); returns how many it deleted. */
export function removeTaggedRules(): number {
  let removed = 0;
  for (const line of taggedRules()) {
    const words = wordsOf(line);
    if (words[0] !== '-A') continue;
    iptables(['-D', ...words.slice(1)]);
    removed++;
  }
  return removed;
}

/**
 * Drop is one directed cut: packets from the member `fromHost` to `toHost` are dropped. With `fromCgroup` the rule
 * matches the member's cgroup (OUTPUT chain); without it, the member's address (INPUT chain, `-s fromHost`), which
 * works because members open their peer connections from their own address (src/replica/source-address.ts). D3 uses
 * the address form for the beaters' own address (workloads/beats.ts `beatClientSource`) and the members, both ways.
 */
export interface Drop {
  readonly fromHost: string;
  readonly fromCgroup: string | null;
  readonly toHost: string;
  /** toPort narrows the drop to TCP packets towards this port of toHost (case C2: one target of many on one host). */
  readonly toPort?: number;
}

/** Firewall applies and removes sets of drops; it removes every tagged rule at exit as well. */
export class Firewall {
  private readonly active: string[][] = [];
  private readonly unregister: () => void;
  private closed = false;

  /** constructor registers the exit cleanup of tagged rules. */
  constructor() {
    this.unregister = onExit(() => {
      removeTaggedRules();
    });
  }

  /** apply adds one rule per drop. */
  apply(drops: readonly Drop[]): void {
    // After close (an aborted run's teardown) a nemesis still running must not add rules nobody removes.
    if (this.closed) throw new Error('the firewall was closed: the run is over');
    for (const drop of drops) {
      if (!/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(drop.toHost)) throw new Error(`refusing a rule towards ${drop.toHost}: loopback only`);
      if (!/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(drop.fromHost)) throw new Error(`refusing a rule from ${drop.fromHost}: loopback only`);
      if (drop.toPort !== undefined && !(Number.isInteger(drop.toPort) && drop.toPort >= 1 && drop.toPort <= 65_535)) throw new Error(`refusing a rule towards port ${drop.toPort}`);
      const port = drop.toPort === undefined ? [] : ['-p', 'tcp', '--dport', String(drop.toPort)];
      const rule = drop.fromCgroup !== null
        ? ['OUTPUT', '-d', `${drop.toHost}/32`, ...port, '-m', 'cgroup', '--path', drop.fromCgroup, '-m', 'comment', '--comment', jepsenTag, '-j', 'DROP']
        : ['INPUT', '-s', `${drop.fromHost}/32`, '-d', `${drop.toHost}/32`, ...port, '-m', 'comment', '--comment', jepsenTag, '-j', 'DROP'];
      iptables(['-A', ...rule]);
      this.active.push(rule);
    }
  }

  /** heal deletes the rules this firewall added, newest first; returns how many. */
  heal(): number {
    let removed = 0;
    for (let rule = this.active.pop(); rule !== undefined; rule = this.active.pop()) {
      iptables(['-D', ...rule]);
      removed++;
    }
    return removed;
  }

  /** close heals, deletes any tagged rule left (from a crashed earlier run too) and drops the exit cleanup. */
  close(): void {
    this.closed = true;
    this.heal();
    removeTaggedRules();
    this.unregister();
  }
}
