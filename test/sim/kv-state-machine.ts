// KvStateMachine: the simulated members' replicated state machine, a string-to-string map. Its values, its applied
// index and the membership as of that index change together in one synchronous call, which is how the production
// driver writes them (one atomic LevelDB batch), so a crash never separates them.
import type { Entry, Membership, Snapshot } from '../../src/raft/types.ts';
import { assertNever, hashBytes } from './hash.ts';

/** KvCommand is the payload of a normal entry: put `value` at `key`. */
export interface KvCommand {
  readonly key: string;
  readonly value: string;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** encodeCommand turns a command into entry data. */
export function encodeCommand(command: KvCommand): Uint8Array {
  return encoder.encode(JSON.stringify({ k: command.key, v: command.value }));
}

/** decodeCommand parses entry data written by encodeCommand; throws on anything else. */
export function decodeCommand(data: Uint8Array): KvCommand {
  const parsed: unknown = JSON.parse(decoder.decode(data));
  if (typeof parsed !== 'object' || parsed === null) throw new Error('kv command: not an object');
  const key: unknown = Reflect.get(parsed, 'k');
  const value: unknown = Reflect.get(parsed, 'v');
  if (typeof key !== 'string' || typeof value !== 'string') throw new Error('kv command: missing k or v');
  return { key, value };
}

/** applyMembershipChange returns the membership after one single-member change (Raft thesis §4.1). */
export function applyMembershipChange(membership: Membership, entry: Entry & { kind: 'membership' }): Membership {
  const node = entry.change.node;
  const voters = membership.voters.filter((id) => id !== node);
  const learners = membership.learners.filter((id) => id !== node);
  switch (entry.change.type) {
    case 'add-learner':
      return { voters: membership.voters, learners: membership.voters.includes(node) ? learners : [...learners, node] };
    case 'promote':
      return { voters: [...voters, node], learners };
    case 'remove':
      return { voters, learners };
    default:
      return assertNever(entry.change.type);
  }
}

/** KvStateMachine is one member's durable key-value state: values, applied index and membership, updated atomically. */
export class KvStateMachine {
  private values = new Map<string, string>();
  private appliedIndexValue = 0;
  private membershipValue: Membership;

  constructor(membership: Membership) {
    this.membershipValue = membership;
  }

  /** appliedIndex is the index of the last entry applied (or of the restored snapshot). */
  get appliedIndex(): number {
    return this.appliedIndexValue;
  }

  /** membership is the configuration as of appliedIndex. */
  get membership(): Membership {
    return this.membershipValue;
  }

  /** apply applies the entry at appliedIndex + 1 and returns its command (null for no-op and membership entries). */
  apply(entry: Entry): KvCommand | null {
    if (entry.index !== this.appliedIndexValue + 1) {
      throw new Error(`kv state machine: entry ${entry.index} applied after ${this.appliedIndexValue}`);
    }
    this.appliedIndexValue = entry.index;
    switch (entry.kind) {
      case 'normal': {
        const command = decodeCommand(entry.data);
        this.values.set(command.key, command.value);
        return command;
      }
      case 'noop':
        return null;
      case 'membership':
        this.membershipValue = applyMembershipChange(this.membershipValue, entry);
        return null;
      default:
        return assertNever(entry);
    }
  }

  /** read returns the value at `key`, or null when absent. */
  read(key: string): string | null {
    return this.values.get(key) ?? null;
  }

  /** restore replaces the whole state with a snapshot's image. */
  restore(snapshot: Snapshot): void {
    this.values = deserialiseValues(snapshot.data);
    this.appliedIndexValue = snapshot.meta.index;
    this.membershipValue = snapshot.meta.membership;
  }

  /** serialise returns the values as snapshot data (sorted by key, so equal states give equal bytes). */
  serialise(): Uint8Array {
    return serialiseValues(this.values);
  }

  /** digest returns a hash of the serialised values, for comparing replicas. */
  digest(): number {
    return hashBytes(this.serialise());
  }
}

/** serialiseValues encodes a map as sorted JSON pairs. */
export function serialiseValues(values: ReadonlyMap<string, string>): Uint8Array {
  const pairs = [...values.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return encoder.encode(JSON.stringify(pairs));
}

/** deserialiseValues decodes snapshot data written by serialiseValues; throws on anything else. */
export function deserialiseValues(data: Uint8Array): Map<string, string> {
  const parsed: unknown = JSON.parse(decoder.decode(data));
  if (!Array.isArray(parsed)) throw new Error('kv snapshot: not an array');
  const values = new Map<string, string>();
  for (const pair of parsed as unknown[]) {
    if (!Array.isArray(pair) || typeof pair[0] !== 'string' || typeof pair[1] !== 'string') {
      throw new Error('kv snapshot: malformed pair');
    }
    values.set(pair[0], pair[1]);
  }
  return values;
}
