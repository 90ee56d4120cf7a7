// register workload (PEERS.md §2.3 A1): a register per key, where a key is one persistent instance (ip:port) of
// one service and its value is the instance's metadata "v". A write registers the instance with {"v": <unique
// value>} (registration is an upsert: it replaces the metadata); a read is the instance's detail with
// consistency=linearizable (absent: null). Checked per key against kvModel (test/checker/models.ts).
//
// Keys rotate as in Jepsen's independent/concurrent-generator: the workers are split into groups of
// processesPerKey; a group works on one key until opsPerKey operations were invoked on it, then moves to a fresh
// key, so each key's sub-history stays small enough for the linearizability search (PEERS.md §3.5) and a run
// covers many keys. Compare-and-set on the instance's version needs a server API that does not exist yet.

import type { InstanceRef } from '../client.ts';
import type { OperationSource, PlannedOperation } from '../generator.ts';
import type { Random } from '../random.ts';

/** registerService is the service whose instances are the registers. */
export const registerService = 'jepsen-register';

/** registerKeysMax bounds the keys of a run (ports 20000..39999 on five addresses). */
const registerKeysMax = 100_000;

/** keyOf names register key number k: an instance address in the harness's reserved range. */
export function keyOf(k: number): string {
  if (!(k >= 0 && k < registerKeysMax)) throw new RangeError(`register key ${k} out of range`);
  return `127.0.0.${11 + Math.floor(k / 20_000)}:${20_000 + (k % 20_000)}`;
}

function refOf(key: string): InstanceRef {
  const [ip, port] = key.split(':');
  return { service: registerService, ip: ip ?? '', port: Number(port) };
}

/** RegisterOptions shape the key rotation. */
export interface RegisterOptions {
  readonly processesPerKey: number;
  readonly opsPerKey: number;
  /** readShare is the probability that an operation is a read. */
  readonly readShare: number;
}

interface KeyGroup {
  key: string;
  invoked: number;
}

/** RegisterWorkload hands out reads and writes on rotating keys. */
export class RegisterWorkload implements OperationSource {
  readonly name = 'register';
  private readonly groups: KeyGroup[] = [];
  private nextKey = 0;
  private nextValue = 0;

  constructor(private readonly options: RegisterOptions) {}

  /** keysUsed is how many keys the run touched. */
  get keysUsed(): number {
    return this.nextKey;
  }

  /** next returns the worker's next operation on its group's key. */
  next(worker: number, random: Random): PlannedOperation {
    const group = this.groupOf(worker);
    group.invoked++;
    const key = group.key;
    if (random.chance(this.options.readShare)) return readOf(key);
    const value = `${worker}-${this.nextValue++}`;
    return writeOf(key, value, `jepsen-w-${value}-${random.int(1e9)}`);
  }

  private groupOf(worker: number): KeyGroup {
    const index = Math.floor(worker / this.options.processesPerKey);
    while (this.groups.length <= index) this.groups.push({ key: keyOf(this.nextKey++), invoked: 0 });
    const group = this.groups[index] as KeyGroup;
    if (group.invoked >= this.options.opsPerKey) {
      group.key = keyOf(this.nextKey++);
      group.invoked = 0;
    }
    return group;
  }
}

function readOf(key: string): PlannedOperation {
  return {
    f: 'read',
    value: { key },
    run: (client) => client.getMetadata(refOf(key)),
    complete: (metadata) => ({ key, value: metadataValue(metadata) }),
  };
}

function metadataValue(metadata: unknown): string | null {
  if (metadata === null || typeof metadata !== 'object') return null;
  const v = (metadata as Record<string, unknown>)['v'];
  return typeof v === 'string' ? v : null;
}

function writeOf(key: string, value: string, requestId: string): PlannedOperation {
  return {
    f: 'write',
    value: { key, value },
    run: (client) => client.register(refOf(key), { v: value }, requestId),
    complete: () => ({ key, value }),
  };
}
