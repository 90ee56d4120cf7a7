// Programmer-error helpers (STYLE.md §4): a broken invariant is a bug, so it throws and the member crashes.
// Asserts stay on in production. Operating errors (expected failures) use the catalog in errors.ts instead.
//
// src/raft/ does not import this file (the core imports nothing from the rest of src/); it is for everything else.

/** AssertionError is what a broken invariant throws; nothing should catch it except a top-level crash handler. */
export class AssertionError extends Error {
  override readonly name = 'AssertionError';
}

/** assert throws an AssertionError carrying `message` when `condition` is falsy. */
export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new AssertionError(message);
}

/** assertNever closes a switch over a union: the compiler proves it unreachable, and at run time it throws. */
export function assertNever(value: never, message = 'unexpected value'): never {
  throw new AssertionError(`${message}: ${describe(value)}`);
}

function describe(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
