// SimNetwork: the simulated links between members. A message may be lost, delayed (so reordered), duplicated (the
// same immutable object delivered twice), or blocked by a partition; partitions are sets of directed links, so
// one-way drops are as easy as symmetric splits. A partition also drops messages already in flight on a link it cuts.
import type { Message } from '../../src/raft/types.ts';
import type { Prng } from '../../src/raft/prng.ts';
import type { NetworkParams } from './scenario.ts';
import type { SimStats } from './stats.ts';

/** reliableNetwork is the network of the liveness phase: no loss, no duplication, short delays. */
export const reliableNetwork: NetworkParams = {
  lossRate: 0,
  duplicateRate: 0,
  delayMinMs: 1,
  delayMaxMs: 5,
  longDelayRate: 0,
  longDelayMaxMs: 0,
};

/** DeliverySchedule hands a message to the event queue for delivery after `delayMs`. */
export type DeliverySchedule = (delayMs: number, message: Message, to: number) => void;

/** SendFate is what became of a sent message: delivered (once or twice, later), lost silently, or refused by a cut link. */
export type SendFate = 'scheduled' | 'lost' | 'refused';

/** SimNetwork decides the fate of every message between node indices 0..n-1. */
export class SimNetwork {
  private readonly prng: Prng;
  private params: NetworkParams;
  private readonly indexOf: (id: string) => number;
  private readonly schedule: DeliverySchedule;
  private readonly stats: SimStats;
  /** blocked holds the cut directed links, each as from * linkKeyBase + to. */
  private readonly blocked = new Set<number>();

  constructor(prng: Prng, params: NetworkParams, indexOf: (id: string) => number, schedule: DeliverySchedule, stats: SimStats) {
    this.prng = prng;
    this.params = params;
    this.indexOf = indexOf;
    this.schedule = schedule;
    this.stats = stats;
  }

  /**
   * send decides a message's fate: refused (a cut link, like a refused connection, which the sender notices), lost
   * silently, or scheduled for delivery once or (duplicated) twice.
   */
  send(message: Message): SendFate {
    const from = this.indexOf(message.from);
    const to = this.indexOf(message.to);
    if (to < 0) {
      this.stats.countFault('message-to-unknown');
      return 'refused';
    }
    if (this.isBlocked(from, to)) {
      this.stats.countFault('message-partitioned');
      return 'refused';
    }
    if (this.params.lossRate > 0 && this.prng.chance(this.params.lossRate)) {
      this.stats.countFault('message-loss');
      return 'lost';
    }
    Object.freeze(message);
    if (message.type === 'AppendRequest') Object.freeze(message.entries);
    this.schedule(this.drawDelay(), message, to);
    if (this.params.duplicateRate > 0 && this.prng.chance(this.params.duplicateRate)) {
      this.stats.countFault('message-duplicate');
      this.schedule(this.drawDelay(), message, to);
    }
    return 'scheduled';
  }

  /** isBlocked tells whether a partition cuts the link from -> to. */
  isBlocked(from: number, to: number): boolean {
    return this.blocked.size > 0 && this.blocked.has(from * linkKeyBase + to);
  }

  /** partition replaces the current partition with the given cut directed links. */
  partition(links: Iterable<readonly [number, number]>): void {
    this.blocked.clear();
    for (const [from, to] of links) this.blocked.add(from * linkKeyBase + to);
  }

  /** heal removes every partition. */
  heal(): void {
    this.blocked.clear();
  }

  /** setParams changes loss, duplication and delays (the liveness phase makes the network reliable). */
  setParams(params: NetworkParams): void {
    this.params = params;
  }

  private drawDelay(): number {
    const { delayMinMs, delayMaxMs, longDelayRate, longDelayMaxMs } = this.params;
    let delay = delayMinMs + this.prng.nextInt(delayMaxMs - delayMinMs + 1);
    if (longDelayRate > 0 && this.prng.chance(longDelayRate)) {
      this.stats.countFault('message-long-delay');
      delay += this.prng.nextInt(longDelayMaxMs + 1);
    }
    return delay;
  }
}

const linkKeyBase = 64;

/** symmetricCut returns the directed links that separate group `a` from group `b` in both directions. */
export function symmetricCut(a: readonly number[], b: readonly number[]): Array<readonly [number, number]> {
  const links: Array<readonly [number, number]> = [];
  for (const x of a) {
    for (const y of b) {
      links.push([x, y]);
      links.push([y, x]);
    }
  }
  return links;
}
