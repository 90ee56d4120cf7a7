// register workload (PEERS.md §2.3 A1, §3.4 model 1): a versioned register per key, where a key is one persistent
// instance (ip:port) of one service, its value the instance's metadata "v" and its version the instance's version
// (docs/grpc.md "Versions and compare-and-set"). Operations:
// - read: the instance with consistency=linearizable: its value and, over gRPC, its version (absent: null);
// - write: register the instance with {"v": <unique value>} (an upsert; over gRPC the answer has the new version);
// - cas: register with expected_version (gRPC only; HTTP has no compare-and-set): applied at a new version, or
//   refused with CAIRN_VERSION_MISMATCH, which is a definite observation that the version was another (ok with
//   ok=false in the history, not a 'fail': the refusal was decided in the log, in order);
// - delete: deregister the instance (HTTP or gRPC).
// Checked per key against the instance register model with etcd-style versions (reset to 0 = absent on delete).
// The expected version of a cas is the last version any operation on the key reported, sometimes off by one so
// that refusals are exercised too. Writes, cas and deletes carry request ids and are retried with them when their
// outcome is unknown (generator.ts, A14): a write applied twice would take the key back to its value.
//
// Keys rotate as in Jepsen's independent/concurrent-generator: the workers are split into groups of
// processesPerKey; a group works on one key until opsPerKey operations were invoked on it, then moves to a fresh
// key, so each key's sub-history stays small enough for the linearizability search (PEERS.md §3.5) and a run
// covers many keys.

import type { CasAnswer, InstanceRead, InstanceRef, Outcome, WriteAnswer } from '../client.ts';
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

/** RegisterMix is the mix of operations. */
export interface RegisterMix {
  /** readShare is the probability that an operation is a read. */
  readonly readShare: number;
  /** casShare and deleteShare are the probabilities of a cas and a delete among the other operations (the rest are writes). */
  readonly casShare?: number;
  readonly deleteShare?: number;
}

/** defaultRegisterMix: half reads; of the rest 40% cas, 10% deletes, 50% writes (A1). */
export const defaultRegisterMix: RegisterMix = { readShare: 0.5, casShare: 0.4, deleteShare: 0.1 };

/** RegisterOptions shape the key rotation and the mix. */
export interface RegisterOptions extends RegisterMix {
  readonly processesPerKey: number;
  readonly opsPerKey: number;
}

/** checkRegisterOptions refuses a mix whose shares are not probabilities, and an empty key rotation. */
export function checkRegisterOptions(options: RegisterOptions): void {
  const share = (value: number | undefined): boolean => value === undefined || (value >= 0 && value <= 1);
  if (!share(options.readShare) || !share(options.casShare) || !share(options.deleteShare)) throw new RangeError('register: every share must be in [0, 1]');
  if ((options.casShare ?? 0) + (options.deleteShare ?? 0) > 1) throw new RangeError('register: casShare + deleteShare must be at most 1');
  if (!(Number.isSafeInteger(options.processesPerKey) && options.processesPerKey >= 1 && Number.isSafeInteger(options.opsPerKey) && options.opsPerKey >= 1)) {
    throw new RangeError('register: processesPerKey and opsPerKey must be positive integers');
  }
}

interface KeyGroup {
  key: string;
  invoked: number;
  /** lastVersion is the last version an operation on the key reported (0: absent or unknown). */
  lastVersion: number;
}

/** RegisterWorkload hands out reads, writes, compare-and-sets and deletes on rotating keys. */
export class RegisterWorkload implements OperationSource {
  readonly name = 'register';
  private readonly groups: KeyGroup[] = [];
  private nextKey = 0;
  private nextValue = 0;

  constructor(private readonly options: RegisterOptions) {
    checkRegisterOptions(options);
  }

  /** keysUsed is how many keys the run touched. */
  get keysUsed(): number {
    return this.nextKey;
  }

  /** next returns the worker's next operation on its group's key. */
  next(worker: number, random: Random): PlannedOperation {
    const group = this.groupOf(worker);
    group.invoked++;
    if (random.chance(this.options.readShare)) return readOf(group);
    const requestId = (kind: string): string => `jepsen-${kind}-${worker}-${this.nextValue}-${random.int(1e9)}`;
    const roll = random.float();
    const casShare = this.options.casShare ?? 0.4;
    const deleteShare = this.options.deleteShare ?? 0.1;
    if (roll < deleteShare) return deleteOf(group, requestId('d'));
    const value = `${worker}-${this.nextValue++}`;
    if (roll < deleteShare + casShare) {
      const expected = random.chance(0.8) ? group.lastVersion : Math.max(0, group.lastVersion + (random.chance(0.5) ? 1 : -1));
      return casOf(group, expected, value, requestId('c'));
    }
    return writeOf(group, value, requestId('w'));
  }

  private groupOf(worker: number): KeyGroup {
    const index = Math.floor(worker / this.options.processesPerKey);
    while (this.groups.length <= index) this.groups.push({ key: keyOf(this.nextKey++), invoked: 0, lastVersion: 0 });
    const group = this.groups[index] as KeyGroup;
    if (group.invoked >= this.options.opsPerKey) {
      group.key = keyOf(this.nextKey++);
      group.invoked = 0;
      group.lastVersion = 0;
    }
    return group;
  }
}

/** observe runs a call and, when it answered on the group's current key, remembers the version it reported. */
async function observe<T>(group: KeyGroup, key: string, call: Promise<Outcome<T>>, versionOf: (value: T) => number | undefined): Promise<Outcome<T>> {
  const outcome = await call;
  if (outcome.type === 'ok' && group.key === key) {
    const version = versionOf(outcome.value);
    if (version !== undefined) group.lastVersion = version;
  }
  return outcome;
}

function readOf(group: KeyGroup): PlannedOperation {
  const key = group.key;
  return {
    f: 'read',
    value: { key },
    run: (client) => observe(group, key, client.getInstance(refOf(key)), (read) => (read === null ? 0 : read.version)),
    complete: (result) => {
      const read = result as InstanceRead | null;
      const version = read?.version;
      return { key, value: read === null ? null : metadataValue(read.metadata), ...(version === undefined ? {} : { version }) };
    },
  };
}

function metadataValue(metadata: unknown): string | null {
  if (metadata === null || typeof metadata !== 'object') return null;
  const v = (metadata as Record<string, unknown>)['v'];
  return typeof v === 'string' ? v : null;
}

function writeOf(group: KeyGroup, value: string, requestId: string): PlannedOperation {
  const key = group.key;
  return {
    f: 'write',
    value: { key, value },
    idempotent: true,
    run: (client) => observe(group, key, client.register(refOf(key), { v: value }, requestId), (answer) => answer.version),
    complete: (result) => {
      const version = (result as WriteAnswer).version;
      return { key, value, ...(version === undefined ? {} : { version }) };
    },
  };
}

function casOf(group: KeyGroup, expected: number, value: string, requestId: string): PlannedOperation {
  const key = group.key;
  return {
    f: 'cas',
    value: { key, expected, value },
    transport: 'grpc',
    idempotent: true,
    run: (client) => observe(group, key, client.casMetadata(refOf(key), { v: value }, expected, requestId),
      (answer) => (answer.applied ? answer.version : (answer.actual ?? undefined))),
    complete: (result) => {
      const answer = result as CasAnswer;
      return answer.applied ? { key, expected, value, ok: true, version: answer.version } : { key, expected, value, ok: false, actual: answer.actual };
    },
  };
}

function deleteOf(group: KeyGroup, requestId: string): PlannedOperation {
  const key = group.key;
  return {
    f: 'delete',
    value: { key },
    idempotent: true,
    run: (client) => observe(group, key, client.deregister(refOf(key), requestId), () => 0),
    complete: () => ({ key }),
  };
}

/**
 * finalReadOf is the read of register key `key` made on every member after the heal (PEERS.md A7's state
 * comparison, corruption.ts): over gRPC, so it carries the version; marked `final: true`. It goes through the
 * linearizability check with the rest of the history.
 */
export function finalReadOf(key: string): PlannedOperation {
  return {
    f: 'read',
    value: { key, final: true },
    transport: 'grpc',
    run: (client) => client.getInstance(refOf(key)),
    complete: (result) => {
      const read = result as InstanceRead | null;
      const version = read?.version;
      return { key, final: true, value: read === null ? null : metadataValue(read.metadata), ...(version === undefined ? {} : { version }) };
    },
  };
}
