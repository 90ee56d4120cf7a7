// Network partitions for the integration tests: iptables DROP rules in the INPUT chain between member addresses,
// `-s A -d B -j DROP -m comment --comment <tag>`. Every rule carries its owner's tag (`cairn-test-<file>-<pid>`);
// a Partitioner deletes exactly the rules it added (heal), and on the test process's exit it deletes every rule
// carrying its tag and only those, so a failing test leaves no rule behind and never touches another test's rules.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { TestContext } from 'node:test';
import { assertLoopback, onProcessExit } from './cluster.ts';

/** iptablesPath is where Debian's `iptables` package installs the command. */
export const iptablesPath = '/usr/sbin/iptables';

/** missingIptablesAdvice is the reason given when partitions cannot be made. */
export const missingIptablesAdvice = 'iptables is not usable here: install the Debian package iptables (apt-get install iptables) and run as root';

/** iptablesProblem returns why iptables cannot be used (missing, not root, no netfilter), or null when it can. */
export function iptablesProblem(): string | null {
  if (!existsSync(iptablesPath)) return `${iptablesPath} is missing`;
  try {
    execFileSync(iptablesPath, ['-S', 'INPUT'], { stdio: ['ignore', 'pipe', 'pipe'] });
    return null;
  } catch (error) {
    const stderr = (error as { stderr?: Buffer }).stderr?.toString().trim() ?? '';
    return `${iptablesPath} -S INPUT failed: ${stderr === '' ? String(error) : stderr}`;
  }
}

/**
 * requireIptables returns true when partitions can be made. Otherwise it fails the test when CAIRN_REQUIRE_ALL=1
 * and skips it (with the reason) when not; the caller returns on false.
 */
export function requireIptables(t: TestContext): boolean {
  const problem = iptablesProblem();
  if (problem === null) return true;
  const reason = `${missingIptablesAdvice} (${problem})`;
  if (process.env['CAIRN_REQUIRE_ALL'] === '1') throw new Error(`CAIRN_REQUIRE_ALL=1: ${reason}`);
  t.skip(reason);
  return false;
}

function iptables(args: readonly string[]): string {
  return execFileSync(iptablesPath, [...args], { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
}

/** Partitioner adds and removes the DROP rules of one test file; its tag marks every rule it adds. */
export class Partitioner {
  readonly tag: string;
  private readonly added: string[][] = [];
  private readonly removeExitCleanup: () => void;

  constructor(file: string) {
    this.tag = `cairn-test-${file}-${process.pid}`;
    this.removeExitCleanup = onProcessExit(() => this.removeAllTagged());
  }

  private ruleOf(from: string, to: string): string[] {
    assertLoopback(from);
    assertLoopback(to);
    return ['INPUT', '-s', from, '-d', to, '-j', 'DROP', '-m', 'comment', '--comment', this.tag];
  }

  /** drop makes packets from `from` to `to` disappear (one direction). */
  drop(from: string, to: string): void {
    const rule = this.ruleOf(from, to);
    iptables(['-A', ...rule]);
    this.added.push(rule);
  }

  /** isolate drops traffic in both directions between `host` and each of `others`. */
  isolate(host: string, others: readonly string[]): void {
    for (const other of others) {
      this.drop(host, other);
      this.drop(other, host);
    }
  }

  /** heal deletes exactly the rules this partitioner added, newest first. */
  heal(): void {
    while (this.added.length > 0) {
      const rule = this.added.pop();
      if (rule !== undefined) iptables(['-D', ...rule]);
    }
  }

  /** ownRules lists the `iptables -S` lines carrying this partitioner's tag. */
  ownRules(): string[] {
    return iptables(['-S']).split('\n').filter((line) => line.split(/\s+/).map((word) => word.replace(/^"|"$/g, '')).includes(this.tag));
  }

  /** removeAllTagged deletes every rule carrying this tag (whoever added it in this process), and no other. */
  removeAllTagged(): void {
    for (const line of this.ownRules()) {
      const words = line.trim().split(/\s+/).map((word) => word.replace(/^"|"$/g, ''));
      if (words[0] !== '-A') continue;
      iptables(['-D', ...words.slice(1)]);
    }
    this.added.length = 0;
  }

  /** close removes every tagged rule now and forgets the exit cleanup. */
  close(): void {
    this.removeAllTagged();
    this.removeExitCleanup();
  }
}

/** Connection is one established TCP connection as `ss` shows it. */
export interface Connection {
  readonly local: string;
  readonly peer: string;
}

/** establishedConnections lists established TCP connections (null when `ss` is not available). */
export function establishedConnections(): Connection[] | null {
  let output: string;
  try {
    output = execFileSync('ss', ['-tnH', 'state', 'established'], { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
  } catch {
    return null;
  }
  const connections: Connection[] = [];
  for (const line of output.split('\n')) {
    const words = line.trim().split(/\s+/);
    // Recv-Q Send-Q Local:Port Peer:Port [Process]
    const local = words[2];
    const peer = words[3];
    if (local !== undefined && peer !== undefined) connections.push({ local, peer });
  }
  return connections;
}

/** hostOf strips the port from "host:port". */
export function hostOf(address: string): string {
  return address.slice(0, address.lastIndexOf(':'));
}

/** connectionsTo lists the established connections whose far end is one of `addrs` (null when `ss` is unavailable). */
export function connectionsTo(addrs: readonly string[]): Connection[] | null {
  const connections = establishedConnections();
  return connections === null ? null : connections.filter((connection) => addrs.includes(connection.peer));
}
