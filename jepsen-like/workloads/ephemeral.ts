// ephemeral workload (PEERS.md §2.3 D1): Cairn's AP path (Distro) under partitions. Workers register unique
// ephemeral instances (Nacos v1 HTTP, ephemeral=true) on random members and deregister some of those whose
// registration was acknowledged; each element is registered at most once and deregistered at most once, so the
// expected final state of every element follows from the outcomes alone. Instances must not expire during the run:
// their metadata sets preserved.heart.beat.timeout and preserved.ip.delete.timeout to an hour (Nacos's per-instance
// overrides), so no beats are sent and expiry is not what is tested here (that is D2/D4).
//
// After the final heal, the runner stops the workers and convergence() reads every member's LOCAL list (the AP
// read, no consistency parameter) of every service, in rounds every 500 ms, until every member agrees with the
// expectation, then for one Distro verify interval more (to catch a resurrection by anti-entropy), or until the
// bound passes. checkers-ephemeral.ts judges.
//
// Element n is the instance 127.0.0.(11 + n/18000):(2000 + n%18000) of service jepsen-eph-<n/elementsPerService>.

import type { Outcome } from '../client.ts';
import { outcomeOfCode } from '../client.ts';
import { httpRequest } from '../client-http.ts';
import type { Generator, OperationSource, PlannedOperation } from '../generator.ts';
import { type Random, sleep } from '../random.ts';

const elementsMax = 90_000;
/** ephemeralMetadata keeps an instance alive for an hour without beats. */
const ephemeralMetadata = encodeURIComponent(JSON.stringify({ 'preserved.heart.beat.timeout': '3600000', 'preserved.ip.delete.timeout': '3600000', 'preserved.heart.beat.interval': '600000' }));

/** distroVerifyMs is Distro's checksum interval (Nacos's default, DESIGN.md "The AP path"). */
export const distroVerifyMs = 5000;
/** convergenceBoundMs is T: two verify rounds plus a 5 s margin. */
export const convergenceBoundMs = 2 * distroVerifyMs + 5000;

/** ephemeralAddress is element n's "ip:port". */
export function ephemeralAddress(n: number): string {
  if (!(n >= 0 && n < elementsMax)) throw new RangeError(`ephemeral element ${n} out of range`);
  return `127.0.0.${11 + Math.floor(n / 18_000)}:${2000 + (n % 18_000)}`;
}

/** ephemeralElementOf inverts ephemeralAddress (null for anything else). */
export function ephemeralElementOf(address: string): number | null {
  const match = /^127\.0\.0\.(1[1-5]):(\d+)$/.exec(address);
  if (match === null) return null;
  const port = Number(match[2]);
  if (port < 2000 || port >= 20_000) return null;
  return (Number(match[1]) - 11) * 18_000 + (port - 2000);
}

/** EphemeralOptions shape the workload. */
export interface EphemeralOptions {
  readonly elementsPerService: number;
  /** removeShare is the probability that an operation deregisters an acknowledged element (when there is one). */
  readonly removeShare: number;
}

function instanceQuery(service: string, n: number): string {
  const [ip, port] = ephemeralAddress(n).split(':');
  return `serviceName=${encodeURIComponent(service)}&ip=${ip ?? ''}&port=${port ?? ''}&ephemeral=true`;
}

async function write(addr: string, method: 'POST' | 'DELETE', query: string): Promise<Outcome<null>> {
  const result = await httpRequest(addr, method, `/nacos/v1/ns/instance?${query}`, 6500);
  if (!('answer' in result)) return result.maybeSent ? { type: 'info', error: result.failure } : { type: 'fail', error: result.failure };
  const { answer } = result;
  if (answer.status === 200 && answer.text === 'ok') return { type: 'ok', value: null };
  return outcomeOfCode(answer.code, `status ${answer.status}: ${answer.text.slice(0, 200)}`);
}

/** EphemeralWorkload hands out registrations of fresh elements and deregistrations of acknowledged ones. */
export class EphemeralWorkload implements OperationSource {
  readonly name = 'ephemeral';
  private nextElement = 0;
  private readonly serviceNames: string[] = [];
  /** removable: acknowledged, not yet chosen for deregistration (element -> service). */
  private readonly removable = new Map<number, string>();
  /** notImplemented is set when a member answered CAIRN_NOT_IMPLEMENTED (the AP path has not landed). */
  notImplemented = false;

  constructor(private readonly options: EphemeralOptions) {}

  /** services lists every service the run used. */
  get services(): readonly string[] {
    return this.serviceNames;
  }

  /** next returns a deregistration (removeShare of the time, when possible) or a registration. */
  next(_worker: number, random: Random): PlannedOperation {
    if (this.removable.size > 0 && random.chance(this.options.removeShare)) {
      const keys = [...this.removable.keys()];
      const element = keys[random.int(Math.min(keys.length, 200))] as number;
      const service = this.removable.get(element) as string;
      this.removable.delete(element);
      return {
        f: 'eph-remove',
        transport: 'http',
        value: { service, element },
        run: (_client, addr) => write(addr, 'DELETE', instanceQuery(service, element)),
        complete: () => ({ service, element }),
      };
    }
    const service = this.currentService();
    const element = this.nextElement++;
    return {
      f: 'eph-add',
      transport: 'http',
      value: { service, element },
      run: async (_client, addr) => {
        const outcome = await write(addr, 'POST', `${instanceQuery(service, element)}&metadata=${ephemeralMetadata}`);
        if (outcome.type === 'ok') this.removable.set(element, service);
        if (outcome.type !== 'ok' && outcome.error === 'CAIRN_NOT_IMPLEMENTED') this.notImplemented = true;
        return outcome;
      },
      complete: () => ({ service, element }),
    };
  }

  private currentService(): string {
    const index = Math.floor(this.nextElement / this.options.elementsPerService);
    while (this.serviceNames.length <= index) this.serviceNames.push(`jepsen-eph-${this.serviceNames.length}`);
    return this.serviceNames[index] as string;
  }

  /**
   * convergence reads every service on every member (local reads, recorded as `eph-read` with final: true and the
   * round number) every 500 ms until `expected` says a round agrees, then for distroVerifyMs + 1 s more, or until
   * `deadline` (ms since epoch).
   */
  async convergence(generator: Generator, members: readonly string[], deadline: number, firstProcess: number, random: Random, agrees: (reads: ReadonlyMap<string, ReadonlyMap<string, readonly number[]>>) => boolean): Promise<void> {
    let process = firstProcess;
    let stableUntil = Number.POSITIVE_INFINITY;
    for (let round = 0; Date.now() < Math.min(deadline, stableUntil); round++) {
      const reads = new Map<string, Map<string, number[]>>();
      for (const service of this.serviceNames) {
        const byMember = new Map<string, number[]>();
        reads.set(service, byMember);
        for (const member of members) {
          let elements: number[] | null = null;
          const op = readOf(service, round);
          const wrapped: PlannedOperation = { ...op, complete: (result) => {
            const value = op.complete(result);
            elements = value['elements'] as number[];
            return value;
          } };
          await generator.invokeOn(wrapped, process++, member, random);
          if (elements !== null) byMember.set(member, elements);
        }
      }
      if (stableUntil === Number.POSITIVE_INFINITY && agrees(reads)) stableUntil = Date.now() + distroVerifyMs + 1000;
      await sleep(500);
    }
  }
}

/** readOf reads a service's instance list from the member's local state (the AP read). */
function readOf(service: string, round: number): PlannedOperation {
  return {
    f: 'eph-read',
    transport: 'http',
    value: { service, final: true, round },
    run: async (_client, addr): Promise<Outcome<unknown>> => {
      const result = await httpRequest(addr, 'GET', `/nacos/v1/ns/instance/list?serviceName=${encodeURIComponent(service)}`, 6500);
      if (!('answer' in result)) return result.maybeSent ? { type: 'info', error: result.failure } : { type: 'fail', error: result.failure };
      const { answer } = result;
      if (answer.status !== 200) return outcomeOfCode(answer.code, `status ${answer.status}: ${answer.text.slice(0, 200)}`);
      const body = JSON.parse(answer.text) as { hosts?: { ip: string; port: number }[] };
      return { type: 'ok', value: (body.hosts ?? []).map((host) => `${host.ip}:${host.port}`) };
    },
    complete: (addresses) => {
      const elements: number[] = [];
      const foreign: string[] = [];
      for (const address of Array.isArray(addresses) ? (addresses as string[]) : []) {
        const element = ephemeralElementOf(address);
        if (element === null) foreign.push(address);
        else elements.push(element);
      }
      elements.sort((a, b) => a - b);
      return foreign.length === 0 ? { service, elements } : { service, elements, foreign };
    },
  };
}
