// Hashes for the simulator: FNV-1a over bytes and strings, entry digests, and the running digest of a run's trace
// that the determinism test compares.
import type { Entry } from '../../src/raft/types.ts';

const fnvOffset = 0x811c9dc5;
const fnvPrime = 0x01000193;
const twoTo32 = 4294967296;

/** hashBytes returns the 32-bit FNV-1a hash of `bytes`, continuing from `seed`. */
export function hashBytes(bytes: Uint8Array, seed: number = fnvOffset): number {
  let hash = seed >>> 0;
  for (const byte of bytes) hash = Math.imul(hash ^ byte, fnvPrime) >>> 0;
  return hash;
}

/** hashString returns the 32-bit FNV-1a hash of the UTF-16 code units of `text`, continuing from `seed`. */
export function hashString(text: string, seed: number = fnvOffset): number {
  let hash = seed >>> 0;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), fnvPrime) >>> 0;
  return hash;
}

/** entryDigest identifies an entry's content (kind and payload, not its position) for the log-matching checks. */
export function entryDigest(entry: Entry): number {
  switch (entry.kind) {
    case 'normal':
      return hashBytes(entry.data, hashString('normal'));
    case 'noop':
      return hashString('noop');
    case 'membership':
      return hashString(`membership:${entry.change.type}:${entry.change.node}`);
    default:
      return assertNever(entry);
  }
}

/** assertNever closes a switch over a union: reaching it means a case was forgotten. */
export function assertNever(value: never): never {
  throw new Error(`unexpected value: ${JSON.stringify(value)}`);
}

/** TraceDigest folds a run's events into a 64-bit digest (two 32-bit lanes); equal runs give equal digests. */
export class TraceDigest {
  private low = fnvOffset;
  private high = 0x9e3779b9;

  /** mix folds one non-negative safe integer (or any number, by its integer part) into the digest. */
  mix(value: number): void {
    const integer = Math.trunc(value);
    const lowBits = integer >>> 0;
    const highBits = Math.floor(integer / twoTo32) >>> 0;
    this.low = Math.imul(this.low ^ lowBits, fnvPrime) >>> 0;
    this.low = Math.imul(this.low ^ highBits, fnvPrime) >>> 0;
    this.high = Math.imul((this.high ^ this.low) + 0x7f4a7c15, 0x85ebca6b) >>> 0;
    this.high = (this.high ^ (this.high >>> 13)) >>> 0;
  }

  /** mixString folds a string into the digest. */
  mixString(text: string): void {
    this.mix(hashString(text));
  }

  /** hex returns the digest as 16 hexadecimal digits. */
  hex(): string {
    return this.high.toString(16).padStart(8, '0') + this.low.toString(16).padStart(8, '0');
  }
}
