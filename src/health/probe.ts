// probe: the seam between the scheduler and the probers (STYLE.md §2). A prober checks one target once and always
// resolves, never rejects: a failure to reach the target is a result (unhealthy, maybe refused), not an exception.
// Per-target resources (a MySQL connection) live in the prober and are released by forget() when the target goes.

import type { HealthChecker } from '../naming/model.ts';

/** ActiveChecker is a checker that probes: every HealthChecker but NONE. */
export type ActiveChecker = Exclude<HealthChecker, { readonly type: 'NONE' }>;

/** ActiveCheckerType names the probe kinds: TCP, HTTP, MYSQL. */
export type ActiveCheckerType = ActiveChecker['type'];

/** ProbeTarget is one instance to probe: its identity, the address to probe and the checker of its cluster. */
export interface ProbeTarget {
  /** id identifies the instance: namespace, group, service, cluster, ip and port joined by NUL. */
  readonly id: string;
  /** host and port are where the probe goes: the instance's ip, and its port or the cluster's checkPort. */
  readonly host: string;
  readonly port: number;
  /** checker holds secrets (the MySQL password): never log a target. */
  readonly checker: ActiveChecker;
}

/** ProbeResult is one probe's outcome. Invariants: refused implies !healthy; inconclusive implies !healthy && !refused. */
export interface ProbeResult {
  readonly healthy: boolean;
  /** refused is true when the target actively refused (ECONNREFUSED): Nacos's "fail now", a flip at once. */
  readonly refused: boolean;
  /**
   * inconclusive is true when the probe could not tell either way (a MySQL server refusing a new connection because it
   * is at its connection limit: busy, not down). Such a result counts neither toward a flip to unhealthy nor toward
   * healthy (verdicts.ts). Absent means false.
   */
  readonly inconclusive?: boolean;
  readonly latencyMs: number;
  /** detail says why, in one line; it never contains a secret. */
  readonly detail: string;
}

/** Prober probes targets of one checker type. */
export interface Prober {
  /** probe checks `target` once within `timeoutMs`; it always resolves. */
  probe(target: ProbeTarget, timeoutMs: number): Promise<ProbeResult>;
  /** forget releases what the prober keeps for a target that is no longer probed (or whose checker changed). */
  forget(targetId: string): void;
  /** close releases everything; probes in flight resolve as failures. */
  close(): Promise<void>;
}

/** errorCodeOf returns an error's system code (ECONNREFUSED, ...) from it or its causes, else its own code, else null. */
export function errorCodeOf(error: unknown): string | null {
  let current: unknown = error;
  let first: string | null = null;
  // Bounded: undici wraps a system error once or twice in causes; a cycle of causes stops here too.
  for (let depth = 0; depth < 4; depth++) {
    if (typeof current !== 'object' || current === null) break;
    const code: unknown = Reflect.get(current, 'code');
    if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return code;
    if (typeof code === 'string' && first === null) first = code;
    current = Reflect.get(current, 'cause');
  }
  return first;
}

/** describeProbeError renders an error for a ProbeResult detail: its code and first line, at most 200 characters. */
export function describeProbeError(error: unknown): string {
  const code = errorCodeOf(error);
  const message = error instanceof Error ? error.message : String(error);
  const line = (message.split('\n')[0] ?? '').slice(0, 200);
  return code === null || line.includes(code) ? line : `${code}: ${line}`;
}

/** elapsedMs returns the milliseconds since `startedNs` (a process.hrtime.bigint() reading). */
export function elapsedMs(startedNs: bigint): number {
  return Number(process.hrtime.bigint() - startedNs) / 1e6;
}

/** bracketHost writes an IPv6 address in brackets for a URL; other hosts are unchanged. */
export function bracketHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}
