// set workload (PEERS.md §2.3 A2, A5): unique persistent instances added to a service, and linearizable reads of
// the service's instance list while the faults run. Element n is the instance 127.0.0.(11 + n/20000):(40000 +
// n%20000). A service holds at most limits.instancesPerServiceMax (2000) instances, so the set moves to a fresh
// service every elementsPerService elements; each service is an independent set. After the final heal the runner
// reads every service from every member (finalReads), and checkers.ts compares: acknowledged adds must all be
// there (lost), nothing never attempted may appear (unexpected), a read must contain every add acknowledged
// before it began (stale), an element once read must stay (disappeared), and an info add that is present
// "recovered".

import type { InstanceRef } from '../client.ts';
import type { Generator, OperationSource, PlannedOperation } from '../generator.ts';
import type { Random } from '../random.ts';

/** setElementsMax bounds a run's elements (ports 40000..59999 on five addresses). */
const setElementsMax = 100_000;

/** elementAddress is the instance address of element n. */
export function elementAddress(n: number): string {
  if (!(n >= 0 && n < setElementsMax)) throw new RangeError(`set element ${n} out of range`);
  return `127.0.0.${11 + Math.floor(n / 20_000)}:${40_000 + (n % 20_000)}`;
}

/** elementOfAddress inverts elementAddress; null for an address that is not an element. */
export function elementOfAddress(address: string): number | null {
  const match = /^127\.0\.0\.(1[1-5]):(\d+)$/.exec(address);
  if (match === null) return null;
  const port = Number(match[2]);
  if (port < 40_000 || port >= 60_000) return null;
  return (Number(match[1]) - 11) * 20_000 + (port - 40_000);
}

function refOf(service: string, n: number): InstanceRef {
  const [ip, port] = elementAddress(n).split(':');
  return { service, ip: ip ?? '', port: Number(port) };
}

/** SetOptions shape the set workload. */
export interface SetOptions {
  readonly elementsPerService: number;
  /** readShare is the probability that an operation is a read of the current service. */
  readonly readShare: number;
  /**
   * backupShare is the probability that a (non-final) read is taken through a backup of the member (`cairn backup
   * save --from`'s code) instead of a linearizable list: the checker holds it to the same rules (A15).
   */
  readonly backupShare?: number;
}

/** SetWorkload hands out adds of fresh elements and reads of the current service. */
export class SetWorkload implements OperationSource {
  readonly name = 'set';
  private nextElement = 0;
  private readonly serviceNames: string[] = [];

  constructor(private readonly options: SetOptions) {}

  /** services lists every service the run used. */
  get services(): readonly string[] {
    return this.serviceNames;
  }

  /** next returns an add of the next element or a read of the current service. */
  next(_worker: number, random: Random): PlannedOperation {
    const service = this.currentService();
    if (random.chance(this.options.readShare)) return readOf(service, false, random.chance(this.options.backupShare ?? 0));
    const element = this.nextElement++;
    // One request id per add, kept across its retries (generator.ts): a retried add is applied at most once.
    const requestId = `jepsen-add-${element}-${random.int(1e9)}`;
    return {
      f: 'add',
      value: { service, element },
      idempotent: true,
      run: (client) => client.register(refOf(service, element), { set: 'jepsen' }, requestId),
      complete: () => ({ service, element }),
    };
  }

  private currentService(): string {
    const index = Math.floor(this.nextElement / this.options.elementsPerService);
    while (this.serviceNames.length <= index) this.serviceNames.push(`jepsen-set-${this.serviceNames.length}`);
    return this.serviceNames[index] as string;
  }

  /**
   * finalReads reads every service from every member (each read recorded as an operation with final: true),
   * retrying each until it succeeds or the deadline (ms since epoch) passes; returns the reads that never succeeded.
   */
  async finalReads(generator: Generator, members: readonly string[], deadline: number, firstProcess: number, random: Random): Promise<string[]> {
    const missing: string[] = [];
    let process = firstProcess;
    for (const service of this.serviceNames) {
      for (const member of members) {
        let done = false;
        while (!done && Date.now() < deadline) {
          const op = readOf(service, true);
          const type = await generator.invokeOn(op, process++, member, random);
          done = type === 'ok';
          if (!done) await new Promise((resolve) => setTimeout(resolve, 200));
        }
        if (!done) missing.push(`${service} on ${member}`);
      }
    }
    return missing;
  }
}

function readOf(service: string, final: boolean, viaBackup = false): PlannedOperation {
  return {
    f: 'read-set',
    value: final ? { service, final } : viaBackup ? { service, via: 'backup' } : { service },
    run: (client) => (viaBackup ? client.backupAddresses(service) : client.listAddresses(service)),
    complete: (addresses) => {
      const list = Array.isArray(addresses) ? (addresses as string[]) : [];
      const elements: number[] = [];
      const foreign: string[] = [];
      for (const address of list) {
        const element = elementOfAddress(address);
        if (element === null) foreign.push(address);
        else elements.push(element);
      }
      elements.sort((a, b) => a - b);
      return foreign.length === 0 ? { service, elements } : { service, elements, foreign };
    },
  };
}
