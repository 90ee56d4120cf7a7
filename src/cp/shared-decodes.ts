// shared-decodes: on the member that proposes a write, its command and its result are each decoded twice although
// nothing changed in between: CpRegistry.write decodes the command it encoded (the check before the log), apply
// decodes the same bytes again once they commit, and CpRegistry.write decodes the result bytes apply just encoded.
// The log hands apply the very Uint8Array the proposer encoded, and the proposer gets the very result bytes apply
// returned, so the decoded form is kept beside the bytes and used again.
//
// Safety: a kept form is used only for the same Uint8Array object AND equal content: the bytes are compared byte
// for byte with a copy taken when the form was kept (a copy of its own: Buffer's slice() is a view of the same
// memory); any difference, or a miss (a follower's copy of the entry, a forwarded result, a restart), decodes as
// before. Each kept form is used once. Results are shared only for payloads whose decoding rebuilds exactly what
// apply produced: 'instance' and 'removed' (the hot register and deregister paths); anything else is decoded.
//
// Memory: WeakMaps keyed by the bytes, so a kept form lives no longer than its bytes do; those are the log's
// uncommitted entries and results in flight, which Raft's and the proposer's own bounds already limit.

import type { CommandResult, DecodedCommand } from './commands.ts';
import { decodeCommand, decodeResult } from './commands.ts';

const commands = new WeakMap<Uint8Array, { readonly copy: Uint8Array; readonly decoded: DecodedCommand }>();
const results = new WeakMap<Uint8Array, { readonly copy: Uint8Array; readonly result: CommandResult }>();

/** sharedDecodeStats counts uses and misses of kept forms (for tests). */
export const sharedDecodeStats = { commandHits: 0, commandMisses: 0, resultHits: 0, resultMisses: 0 };

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

/** copyOf copies bytes (Buffer's own slice() would give a view of the same memory, which no check could trust). */
function copyOf(bytes: Uint8Array): Uint8Array {
  return Uint8Array.prototype.slice.call(bytes);
}

/** decodeProposedCommand is decodeCommand for the proposer's check; a valid command's decoded form is kept for apply. */
export function decodeProposedCommand(bytes: Uint8Array): DecodedCommand {
  const decoded = decodeCommand(bytes);
  if (decoded.ok) commands.set(bytes, { copy: copyOf(bytes), decoded });
  return decoded;
}

/** proposedHere tells whether `bytes` are a command this member proposed and has not applied yet (its decoded form is kept). */
export function proposedHere(bytes: Uint8Array): boolean {
  return commands.has(bytes);
}

/** decodeAppliedCommand is decodeCommand for apply: the proposer's decoded form when these are its very bytes, unchanged. */
export function decodeAppliedCommand(bytes: Uint8Array): DecodedCommand {
  const kept = commands.get(bytes);
  if (kept !== undefined) {
    commands.delete(bytes);
    if (sameBytes(kept.copy, bytes)) {
      sharedDecodeStats.commandHits += 1;
      return kept.decoded;
    }
  }
  sharedDecodeStats.commandMisses += 1;
  return decodeCommand(bytes);
}

/** shareResult keeps `result` for `returned`, the bytes apply hands back, when its payload decodes to exactly the same values. */
export function shareResult(returned: Uint8Array, result: CommandResult): void {
  if (result.ok && (result.payload.type === 'instance' || result.payload.type === 'removed')) results.set(returned, { copy: copyOf(returned), result });
}

/** decodeProposedResult is decodeResult for the proposer: apply's own result when these are its very bytes, unchanged. */
export function decodeProposedResult(bytes: Uint8Array): CommandResult {
  const kept = results.get(bytes);
  if (kept !== undefined) {
    results.delete(bytes);
    if (sameBytes(kept.copy, bytes)) {
      sharedDecodeStats.resultHits += 1;
      return kept.result;
    }
  }
  sharedDecodeStats.resultMisses += 1;
  return decodeResult(bytes);
}
