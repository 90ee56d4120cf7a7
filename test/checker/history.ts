// History: the events a client-side recorder writes (one JSON object per line of history.jsonl, in the shape
// Jepsen uses: {process, type, f, value, time}) and their conversion into operations for the linearizability
// checker.
//
// Each process runs one call at a time: an 'invoke' followed by exactly one completion. An 'ok' completion is a
// call that took effect with the recorded output; a 'fail' completion is a call that certainly did not take
// effect, so it is dropped; an 'info' completion (a timeout, a crash) or a missing completion leaves the outcome
// unknown, so the operation may have taken effect at any point after its call, including never. Such an
// operation gets a return time of +Infinity, after everything else in the history (PEERS.md §3.3).

/** EventType is the kind of a history event: a call starting, or one of the three ways it can end. */
export type EventType = 'invoke' | 'ok' | 'fail' | 'info';

/** HistoryEvent is one line of history.jsonl: {process, type, f, value, time}; only the order of `time` matters. */
export interface HistoryEvent {
  readonly process: number;
  readonly type: EventType;
  readonly f: string;
  readonly value: unknown;
  readonly time: number;
}

/** Operation is one completed (or unknown) call: input from the invoke, output from the completion. */
export interface Operation<I, O> {
  readonly clientId: number;
  readonly input: I;
  /** call is the invoke time; invariant: finite and <= return. */
  readonly call: number;
  /** output is the completion's output; undefined (cast to O) when unknown is true. */
  readonly output: O;
  /** return is the completion time; +Infinity when the outcome is unknown. */
  readonly return: number;
  readonly unknown: boolean;
}

/** unknownReturnTime is the return time of an operation whose outcome is unknown: after every other event. */
export const unknownReturnTime = Number.POSITIVE_INFINITY;

const eventTypes: ReadonlySet<string> = new Set<EventType>(['invoke', 'ok', 'fail', 'info']);

interface PendingCall {
  readonly invoke: HistoryEvent;
  /** slot is the index in the output array reserved for this call, so operations come out in invoke order. */
  readonly slot: number;
}

/**
 * operationsFromHistory pairs each process's invoke with its next completion. 'ok' gives a completed operation,
 * 'fail' drops the call (it did not happen), 'info' or a missing completion gives an unknown operation with
 * output undefined and return +Infinity. Operations come out in the order of their invokes. Throws an Error
 * naming the event on a malformed history: a completion without an invoke, two invokes in a row for one process,
 * a completion whose f differs from its invoke's, a completion earlier than its invoke, or an unknown type.
 */
export function operationsFromHistory<I, O>(
  events: readonly HistoryEvent[],
  toInput: (invoke: HistoryEvent) => I,
  toOutput: (completion: HistoryEvent, invoke: HistoryEvent) => O,
): Operation<I, O>[] {
  const pending = new Map<number, PendingCall>();
  const slots: (Operation<I, O> | null)[] = [];
  for (const [index, event] of events.entries()) {
    validateEvent(event, `event ${index}`);
    if (event.type === 'invoke') {
      const previous = pending.get(event.process);
      if (previous !== undefined) {
        throw new Error(
          `malformed history: event ${index} invokes ${event.f} on process ${event.process}, ` +
            `which is still running ${previous.invoke.f} invoked at time ${previous.invoke.time}`,
        );
      }
      pending.set(event.process, { invoke: event, slot: slots.length });
      slots.push(null);
      continue;
    }
    const call = pending.get(event.process);
    if (call === undefined) {
      throw new Error(`malformed history: event ${index} (${event.type} ${event.f}) on process ${event.process} has no invoke`);
    }
    checkCompletionMatches(call.invoke, event, index);
    pending.delete(event.process);
    slots[call.slot] = completeOperation(call.invoke, event, toInput, toOutput);
  }
  // Calls that never completed are as unknown as an 'info': the process may have crashed after sending.
  for (const call of pending.values()) slots[call.slot] = unknownOperation(call.invoke, toInput);
  return slots.filter((operation): operation is Operation<I, O> => operation !== null);
}

function completeOperation<I, O>(
  invoke: HistoryEvent,
  completion: HistoryEvent,
  toInput: (invoke: HistoryEvent) => I,
  toOutput: (completion: HistoryEvent, invoke: HistoryEvent) => O,
): Operation<I, O> | null {
  switch (completion.type) {
    case 'ok':
      return {
        clientId: invoke.process,
        input: toInput(invoke),
        call: invoke.time,
        output: toOutput(completion, invoke),
        return: completion.time,
        unknown: false,
      };
    case 'fail':
      return null;
    case 'info':
      return unknownOperation(invoke, toInput);
    case 'invoke':
      throw new Error('completeOperation: an invoke is not a completion');
    default:
      return assertNever(completion.type);
  }
}

function unknownOperation<I, O>(invoke: HistoryEvent, toInput: (invoke: HistoryEvent) => I): Operation<I, O> {
  return {
    clientId: invoke.process,
    input: toInput(invoke),
    call: invoke.time,
    output: undefined as O,
    return: unknownReturnTime,
    unknown: true,
  };
}

function checkCompletionMatches(invoke: HistoryEvent, completion: HistoryEvent, index: number): void {
  if (completion.f !== invoke.f) {
    throw new Error(
      `malformed history: event ${index} completes ${completion.f} on process ${completion.process}, ` +
        `but the pending invoke is ${invoke.f}`,
    );
  }
  if (completion.time < invoke.time) {
    throw new Error(
      `malformed history: event ${index} (${completion.type} ${completion.f}) on process ${completion.process} ` +
        `completes at time ${completion.time}, before its invoke at time ${invoke.time}`,
    );
  }
}

function validateEvent(event: HistoryEvent, where: string): void {
  if (typeof event !== 'object' || event === null) {
    throw new Error(`malformed history: ${where} is not an object`);
  }
  if (!eventTypes.has(event.type)) {
    throw new Error(`malformed history: ${where} has unknown type ${JSON.stringify(event.type)}`);
  }
  if (typeof event.process !== 'number' || !Number.isInteger(event.process)) {
    throw new Error(
      `malformed history: ${where} has process ${JSON.stringify(event.process)}, not an integer ` +
        '(filter out nemesis events before checking)',
    );
  }
  if (typeof event.f !== 'string') {
    throw new Error(`malformed history: ${where} has f ${JSON.stringify(event.f)}, not a string`);
  }
  if (typeof event.time !== 'number' || !Number.isFinite(event.time)) {
    throw new Error(`malformed history: ${where} has time ${String(event.time)}, not a finite number`);
  }
}

/** parseHistoryJsonl parses history.jsonl text (one event per non-blank line), throwing an Error naming the bad line. */
export function parseHistoryJsonl(text: string): HistoryEvent[] {
  const events: HistoryEvent[] = [];
  for (const [lineIndex, line] of text.split('\n').entries()) {
    if (line.trim() === '') continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch (error) {
      throw new Error(`malformed history: line ${lineIndex + 1} is not JSON: ${(error as Error).message}`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new Error(`malformed history: line ${lineIndex + 1} is not a JSON object`);
    }
    const event = parsed as HistoryEvent;
    validateEvent(event, `line ${lineIndex + 1}`);
    events.push(event);
  }
  return events;
}

function assertNever(value: never): never {
  throw new Error(`unexpected value ${JSON.stringify(value)}`);
}
