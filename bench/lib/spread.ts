// spread: `--via spread`, every system reached through all of its members, as its clients do by default (Nacos clients
// pick a member per request, etcd's clientv3 balances over its endpoints, ZooKeeper sessions land on any server). A
// SpreadDriver holds one driver per member and sends each request to the next member in turn, so each member takes a
// third of the requests and about two writes in three are forwarded to the leader. Only the request workloads are
// spread (register, deregister, list, get); beat and notify hold sessions and watches on one member, so they are not
// measured this way (the row says so).

import type { Driver, EphemeralPool, NotifyPairs, ReadConsistency, Slot, TargetId } from './driver.ts';
import { NotMeasured } from './runner.ts';

/** SpreadDriver sends each request to the next of its members' drivers in turn. */
export class SpreadDriver implements Driver {
  readonly id: TargetId;
  private next = 0;

  constructor(private readonly drivers: readonly Driver[]) {
    const [first] = drivers;
    if (first === undefined || drivers.some((driver) => driver.id !== first.id)) throw new Error('SpreadDriver: one or more drivers of one target');
    this.id = first.id;
  }

  private pick(): Driver {
    const driver = this.drivers[this.next] as Driver;
    this.next = (this.next + 1) % this.drivers.length;
    return driver;
  }

  /** prepare runs once, through the first member: what it creates is the cluster's. */
  prepare(registerServices: number, listSize: number): Promise<void> {
    return (this.drivers[0] as Driver).prepare(registerServices, listSize);
  }

  register(slot: Slot): Promise<void> {
    return this.pick().register(slot);
  }

  deregister(slot: Slot): Promise<void> {
    return this.pick().deregister(slot);
  }

  list(consistency: ReadConsistency): Promise<number> {
    return this.pick().list(consistency);
  }

  get(slot: Slot, consistency: ReadConsistency): Promise<void> {
    return this.pick().get(slot, consistency);
  }

  openEphemeral(): Promise<EphemeralPool> {
    return Promise.reject(new NotMeasured('--via spread runs the request workloads only; beats hold a session on one member (run them --via leader or follower)'));
  }

  openNotify(): Promise<NotifyPairs> {
    return Promise.reject(new NotMeasured('--via spread runs the request workloads only; a watch holds a stream on one member (run it --via leader or follower)'));
  }

  async close(): Promise<void> {
    await Promise.all(this.drivers.map((driver) => driver.close()));
  }
}
