// Sequential models for the linearizability checker: a key-value register with compare-and-set, and the versioned
// instance register of PEERS.md §3.4 (model 1). Both are partitioned by key, since operations on different keys
// never constrain each other (Herlihy-Wing locality), and each model's state is the state of one key.
//
// For an operation whose outcome is unknown, step accepts any output and applies the operation's effect. The case
// where it never took effect needs no separate branch: its return time is +Infinity, so the search may linearize
// it after every known operation, where its effect cannot be observed.

import type { HistoryEvent, Operation } from './history.ts';
import type { Model } from './linearizability.ts';

/** partitionByKey groups operations by input key, in order of first appearance, dropping those `skip` accepts. */
export function partitionByKey<I extends { readonly key: string }, O>(
  ops: readonly Operation<I, O>[],
  skip: (op: Operation<I, O>) => boolean = () => false,
): Operation<I, O>[][] {
  const byKey = new Map<string, Operation<I, O>[]>();
  for (const op of ops) {
    if (skip(op)) continue;
    const group = byKey.get(op.input.key);
    if (group === undefined) byKey.set(op.input.key, [op]);
    else group.push(op);
  }
  return [...byKey.values()];
}

function describeKeyPartition<I extends { readonly key: string }, O>(ops: readonly Operation<I, O>[]): string {
  const first = ops[0];
  return first === undefined ? 'empty' : `key ${JSON.stringify(first.input.key)}`;
}

// ---------------------------------------------------------------------------------------------------------------
// Key-value register with compare-and-set.

/** KvInput is a call on the key-value register: read, write, or compare-and-set. */
export type KvInput =
  | { readonly f: 'read'; readonly key: string }
  | { readonly f: 'write'; readonly key: string; readonly value: string }
  | { readonly f: 'cas'; readonly key: string; readonly expected: string | null; readonly value: string };

/** KvOutput is a completion: {value} for read, {ok} for cas, {} for write. */
export type KvOutput = { readonly value: string | null } | { readonly ok: boolean } | Record<string, never>;

/** KvState is the value of one key; null means never written. */
export type KvState = string | null;

/** dropUnobservedUnknownWrites removes unknown writes whose value no completed read returned (keys without cas only). */
function dropUnobservedUnknownWrites(ops: Operation<KvInput, KvOutput>[]): Operation<KvInput, KvOutput>[] {
  if (ops.some((op) => op.input.f === 'cas')) return ops;
  const observed = new Set<string | null>();
  for (const op of ops) if (!op.unknown && op.input.f === 'read' && 'value' in op.output) observed.add(op.output.value);
  return ops.filter((op) => !(op.unknown && op.input.f === 'write' && !observed.has(op.input.value)));
}

/** kvModel is a register per key (initial value null) with read, write and cas; partitioned by key. */
export const kvModel: Model<KvState, KvInput, KvOutput> = {
  init: () => null,
  step: stepKv,
  // A read whose outcome is unknown constrains nothing and only widens the search, so it is dropped. So is an
  // unknown write whose value no read returned, in a key without cas: it can always be linearized after every other
  // operation, where nothing observes it, so dropping it changes no verdict and keeps the search small.
  partition: (ops) => partitionByKey(ops, (op) => op.unknown && op.input.f === 'read').map(dropUnobservedUnknownWrites),
  hash: (state) => JSON.stringify(state),
  equal: (a, b) => a === b,
  describeOperation: describeKvOperation,
  describeState: (state) => JSON.stringify(state),
  describePartition: describeKeyPartition,
};

function stepKv(state: KvState, input: KvInput, output: KvOutput | undefined, unknown: boolean): { ok: boolean; state: KvState } {
  switch (input.f) {
    case 'read': {
      if (unknown) return { ok: true, state };
      if (output === undefined || !('value' in output)) throw new Error(`kvModel: read output must be {value}, got ${JSON.stringify(output)}`);
      return { ok: output.value === state, state };
    }
    case 'write':
      return { ok: true, state: input.value };
    case 'cas': {
      const matches = state === input.expected;
      if (unknown) return { ok: true, state: matches ? input.value : state };
      if (output === undefined || !('ok' in output)) throw new Error(`kvModel: cas output must be {ok}, got ${JSON.stringify(output)}`);
      return output.ok ? { ok: matches, state: input.value } : { ok: !matches, state };
    }
    default:
      return assertNever(input);
  }
}

function describeKvOperation(input: KvInput, output: KvOutput | undefined): string {
  switch (input.f) {
    case 'read':
      return `read(${input.key}) -> ${output !== undefined && 'value' in output ? JSON.stringify(output.value) : '?'}`;
    case 'write':
      return `write(${input.key}, ${JSON.stringify(input.value)})${output === undefined ? ' -> ?' : ''}`;
    case 'cas': {
      const outcome = output !== undefined && 'ok' in output ? (output.ok ? 'ok' : 'failed') : '?';
      return `cas(${input.key}, ${JSON.stringify(input.expected)} -> ${JSON.stringify(input.value)}) -> ${outcome}`;
    }
    default:
      return assertNever(input);
  }
}

/**
 * kvInputFromEvent reads a KvInput from an invoke event: f is 'read' | 'write' | 'cas' and value is {key},
 * {key, value} or {key, expected, value}. Throws an Error naming the event when it does not fit.
 */
export function kvInputFromEvent(invoke: HistoryEvent): KvInput {
  const value = recordOf(invoke);
  const key = stringField(invoke, value, 'key');
  switch (invoke.f) {
    case 'read':
      return { f: 'read', key };
    case 'write':
      return { f: 'write', key, value: stringField(invoke, value, 'value') };
    case 'cas': {
      const expected = value['expected'];
      if (expected !== null && typeof expected !== 'string') throw eventError(invoke, 'expected must be a string or null');
      return { f: 'cas', key, expected, value: stringField(invoke, value, 'value') };
    }
    default:
      throw eventError(invoke, `f must be read, write or cas`);
  }
}

/** kvOutputFromEvent reads a KvOutput from an 'ok' completion: read needs {value}; cas takes {ok} (default true). */
export function kvOutputFromEvent(completion: HistoryEvent, invoke: HistoryEvent): KvOutput {
  switch (invoke.f) {
    case 'read': {
      const read = recordOf(completion)['value'];
      if (read !== null && typeof read !== 'string') throw eventError(completion, 'a read completion needs value {value: string | null}');
      return { value: read };
    }
    case 'cas': {
      const ok = completion.value === undefined || completion.value === null ? true : recordOf(completion)['ok'];
      return { ok: typeof ok === 'boolean' ? ok : true };
    }
    default:
      return {};
  }
}

function recordOf(event: HistoryEvent): Readonly<Record<string, unknown>> {
  if (typeof event.value !== 'object' || event.value === null || Array.isArray(event.value)) {
    throw eventError(event, 'value must be an object');
  }
  return event.value as Readonly<Record<string, unknown>>;
}

function stringField(event: HistoryEvent, value: Readonly<Record<string, unknown>>, field: string): string {
  const found = value[field];
  if (typeof found !== 'string') throw eventError(event, `${field} must be a string`);
  return found;
}

function eventError(event: HistoryEvent, problem: string): Error {
  return new Error(`history event (process ${event.process}, ${event.type} ${event.f}, time ${event.time}): ${problem}`);
}

// ---------------------------------------------------------------------------------------------------------------
// Versioned instance register (PEERS.md §3.4, model 1): one partition per (namespace, group, service, instanceId).

/** InstanceMeta is an instance's metadata, compared by content regardless of key order. */
export type InstanceMeta = Readonly<Record<string, string>>;

/** InstanceInput is a call on one instance key; the caller joins (namespace, group, service, instanceId) into key. */
export type InstanceInput =
  | { readonly f: 'register'; readonly key: string; readonly meta: InstanceMeta }
  | { readonly f: 'deregister'; readonly key: string }
  | { readonly f: 'cas-meta'; readonly key: string; readonly expectedVersion: number; readonly meta: InstanceMeta }
  | { readonly f: 'get'; readonly key: string };

/**
 * InstanceOutput is a completion: get gives {exists, version, meta} (version and meta are ignored when exists is
 * false; a get whose transport does not report versions leaves version out, and only exists and meta are compared);
 * cas-meta gives {ok} and optionally the new version; register may report the new version; deregister {}.
 */
export type InstanceOutput =
  | { readonly exists: boolean; readonly version?: number; readonly meta: InstanceMeta | null }
  | { readonly ok: boolean; readonly version?: number }
  | { readonly version: number }
  | Record<string, never>;

/** InstanceState is one instance key: whether it is registered, its version (0 before the first register) and meta. */
export interface InstanceState {
  readonly exists: boolean;
  readonly version: number;
  readonly meta: InstanceMeta | null;
}

/** InstanceRegisterOptions picks the version rule the server implements. */
export interface InstanceRegisterOptions {
  /**
   * versionAfterDeregister: 'keep' means versions keep counting across a deregister (a re-register gets the old
   * version + 1, so versions are never reused); 'reset' means a re-register starts again at version 1, and version 0
   * means "absent" (etcd's key version, Cairn's): a cas-meta expecting 0 creates an absent instance.
   */
  readonly versionAfterDeregister: 'keep' | 'reset';
}

/** createInstanceRegisterModel builds the versioned instance register model with the given version rule. */
export function createInstanceRegisterModel(
  options: InstanceRegisterOptions,
): Model<InstanceState, InstanceInput, InstanceOutput> {
  return {
    init: () => ({ exists: false, version: 0, meta: null }),
    step: (state, input, output, unknown) => stepInstance(options, state, input, output, unknown),
    partition: (ops) => partitionByKey(ops, (op) => op.unknown && op.input.f === 'get'),
    hash: (state) => `${state.exists ? 1 : 0}:${state.version}:${canonicalMeta(state.meta)}`,
    describeOperation: describeInstanceOperation,
    describeState: (state) =>
      state.exists ? `registered v${state.version} ${canonicalMeta(state.meta)}` : `absent (last version ${state.version})`,
    describePartition: describeKeyPartition,
  };
}

/** instanceRegisterModel is the versioned instance register with versions that keep counting across deregisters. */
export const instanceRegisterModel: Model<InstanceState, InstanceInput, InstanceOutput> = createInstanceRegisterModel({
  versionAfterDeregister: 'keep',
});

function stepInstance(
  options: InstanceRegisterOptions,
  state: InstanceState,
  input: InstanceInput,
  output: InstanceOutput | undefined,
  unknown: boolean,
): { ok: boolean; state: InstanceState } {
  switch (input.f) {
    case 'register': {
      const next = { exists: true, version: state.version + 1, meta: input.meta };
      return { ok: unknown || reportedVersionFits(output, next.version), state: next };
    }
    case 'deregister': {
      if (!state.exists) return { ok: true, state };
      const version = options.versionAfterDeregister === 'keep' ? state.version : 0;
      return { ok: true, state: { exists: false, version, meta: null } };
    }
    case 'cas-meta':
      return stepCasMeta(options, state, input, output, unknown);
    case 'get':
      return { ok: unknown || getFits(state, output), state };
    default:
      return assertNever(input);
  }
}

function stepCasMeta(
  options: InstanceRegisterOptions,
  state: InstanceState,
  input: Extract<InstanceInput, { f: 'cas-meta' }>,
  output: InstanceOutput | undefined,
  unknown: boolean,
): { ok: boolean; state: InstanceState } {
  // With 'reset', an absent instance is at version 0 (deregister and init both leave 0), so 0 matches it.
  const matches = (state.exists || options.versionAfterDeregister === 'reset') && state.version === input.expectedVersion;
  const next = matches ? { exists: true, version: state.version + 1, meta: input.meta } : state;
  if (unknown) return { ok: true, state: next };
  if (output === undefined || !('ok' in output)) {
    throw new Error(`instanceRegisterModel: cas-meta output must be {ok}, got ${JSON.stringify(output)}`);
  }
  if (!output.ok) return { ok: !matches, state };
  return { ok: matches && reportedVersionFits(output, next.version), state: next };
}

function getFits(state: InstanceState, output: InstanceOutput | undefined): boolean {
  if (output === undefined || !('exists' in output)) {
    throw new Error(`instanceRegisterModel: get output must be {exists, version, meta}, got ${JSON.stringify(output)}`);
  }
  if (output.exists !== state.exists) return false;
  if (!state.exists) return true;
  return (output.version === undefined || output.version === state.version) && canonicalMeta(output.meta) === canonicalMeta(state.meta);
}

/** reportedVersionFits is true when the output reports no version or the expected one. */
function reportedVersionFits(output: InstanceOutput | undefined, version: number): boolean {
  if (output === undefined || !('version' in output)) return true;
  return output.version === undefined || output.version === version;
}

function canonicalMeta(meta: InstanceMeta | null): string {
  if (meta === null) return 'null';
  return JSON.stringify(Object.keys(meta).sort().map((key) => [key, meta[key]]));
}

function describeInstanceOperation(input: InstanceInput, output: InstanceOutput | undefined): string {
  const shown = output === undefined ? '?' : JSON.stringify(output);
  switch (input.f) {
    case 'register':
      return `register(${input.key}, ${canonicalMeta(input.meta)}) -> ${shown}`;
    case 'deregister':
      return `deregister(${input.key}) -> ${shown}`;
    case 'cas-meta':
      return `cas-meta(${input.key}, v${input.expectedVersion}, ${canonicalMeta(input.meta)}) -> ${shown}`;
    case 'get':
      return `get(${input.key}) -> ${shown}`;
    default:
      return assertNever(input);
  }
}

function assertNever(value: never): never {
  throw new Error(`unexpected value ${JSON.stringify(value)}`);
}
