// invariant: the core's own assertion helpers. src/raft imports nothing from the rest of src, so it keeps its own.

/** RaftInvariantError is thrown when the core finds one of its invariants broken: a programmer error, never input. */
export class RaftInvariantError extends Error {
  override readonly name = 'RaftInvariantError';
}

/** invariant throws a RaftInvariantError with `message` unless `condition` holds. */
export function invariant(condition: boolean, message: string | (() => string)): asserts condition {
  if (!condition) throw new RaftInvariantError(typeof message === 'string' ? message : message());
}

/** unreachable closes a switch over a union: the compiler proves it is never called. */
export function unreachable(value: never): never {
  throw new RaftInvariantError(`unreachable: ${JSON.stringify(value)}`);
}
