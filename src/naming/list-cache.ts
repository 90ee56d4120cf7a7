// list-cache: memoizes instance-list answers (the selection and its MD5 checksum) per (service, clusters filter,
// healthyOnly) while the inputs they were computed from are unchanged.
//
// "Unchanged" is object identity of immutable inputs: the read view, the CP service definition, the CP instance
// array and the AP instance array. Both registries hand out frozen arrays of frozen instances and replace the array
// (and the CP definition) on every change of the service, and return the same array while nothing changed
// (RegistryState.sortedInstances, the AP ServiceRecord.instances). So an entry whose inputs are the very same
// objects describes the same content, and an answer computed from them is the answer again; any register,
// deregister, health flip, metadata or settings change replaces one of them and misses. A non-frozen input is never
// cached (a view that hands out mutable arrays simply gets no memoization).
//
// Bounded (limits.ts): at most listCacheEntriesMax entries and listCacheInstancesMax instance references (inputs and
// answers counted), least recently used evicted first. An entry pins the arrays it was computed from, so the
// instance bound also bounds what stale entries can keep alive.

import type { Instance, ServiceDefinition } from './model.ts';

/** ListInputs are the immutable objects an answer is computed from. */
export interface ListInputs {
  readonly view: object;
  readonly definition: ServiceDefinition | null;
  readonly persistent: readonly Instance[];
  readonly ephemeral: readonly Instance[];
}

/** ListCacheBounds bound the cache; see limits.ts (listCacheEntriesMax, listCacheInstancesMax). */
export interface ListCacheBounds {
  readonly entriesMax: number;
  readonly instancesMax: number;
}

interface Entry<T> {
  readonly inputs: ListInputs;
  readonly answer: T;
  readonly weight: number;
}

/** EMPTY_INSTANCES is the one empty list, so that "no instances" from any source is the same input. */
export const EMPTY_INSTANCES: readonly Instance[] = Object.freeze([]);

/** cacheable tells whether inputs are immutable (frozen), the condition for identity to imply equal content. */
function cacheable(inputs: ListInputs): boolean {
  return Object.isFrozen(inputs.persistent) && Object.isFrozen(inputs.ephemeral) && (inputs.definition === null || Object.isFrozen(inputs.definition));
}

function sameInputs(a: ListInputs, b: ListInputs): boolean {
  return a.view === b.view && a.definition === b.definition && a.persistent === b.persistent && a.ephemeral === b.ephemeral;
}

/** ListCache is a bounded LRU of answers keyed by a string, valid while their inputs are the same objects. */
export class ListCache<T> {
  private readonly entries = new Map<string, Entry<T>>();
  private instances = 0;
  /** hits and misses count lookups (for tests and metrics). */
  hits = 0;
  misses = 0;

  constructor(private readonly bounds: ListCacheBounds) {}

  /** size is the number of entries held. */
  get size(): number {
    return this.entries.size;
  }

  /** get returns the answer stored under `key` if it was computed from exactly `inputs`, else undefined. */
  get(key: string, inputs: ListInputs): T | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined || !sameInputs(entry.inputs, inputs)) {
      this.misses += 1;
      return undefined;
    }
    // Move to the most recently used end.
    this.entries.delete(key);
    this.entries.set(key, entry);
    this.hits += 1;
    return entry.answer;
  }

  /** set stores `answer` for `key` and `inputs` (`answerInstances`: how many instances the answer references). */
  set(key: string, inputs: ListInputs, answer: T, answerInstances: number): void {
    this.delete(key);
    if (!cacheable(inputs)) return;
    const weight = inputs.persistent.length + inputs.ephemeral.length + answerInstances;
    if (weight > this.bounds.instancesMax || this.bounds.entriesMax < 1) return;
    this.entries.set(key, { inputs, answer, weight });
    this.instances += weight;
    while (this.entries.size > this.bounds.entriesMax || this.instances > this.bounds.instancesMax) {
      const oldest = this.entries.keys().next();
      if (oldest.done === true) break;
      this.delete(oldest.value);
    }
  }

  private delete(key: string): void {
    const entry = this.entries.get(key);
    if (entry === undefined) return;
    this.entries.delete(key);
    this.instances -= entry.weight;
  }
}
