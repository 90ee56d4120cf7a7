// Bootstrap: may a member with an empty data directory start as a voter of its cluster?
//
// Raft's safety rests on members remembering their votes and the entries they acknowledged (Raft §5.1, §5.4). A
// member whose data directory was wiped has forgotten both; if it came back as a fresh voter it could vote twice in
// a term or help elect a leader missing a committed entry (Nacos's and JRaft's users lose data exactly here). So a
// member with no Raft state asks every other listed member, over the peer port, whether it has ever heard from it:
//
//   - someone has: this member's data was wiped. It refuses to start and says how to re-add it.
//   - nobody has, and every member answered: it never took part, so starting as a fresh voter promises nothing it
//     could break. Members started together all pass this check: none has heard from the others yet, because a
//     member records a contact (durably) only once its own Raft group runs and a message arrives.
//   - some member did not answer: it waits, because the one that did not answer may be the one that heard from it.
import { CairnError } from '../errors.ts';
import type { NodeId } from '../raft/types.ts';
import type { PeerHello } from './transport.ts';
import { monotonicMs } from '../clock.ts';

/** HelloAsker is the part of the transport the check needs. */
export interface HelloAsker {
  hello(to: NodeId, timeoutMs: number): Promise<PeerHello | null>;
}

/** BootstrapLogger is the subset of pino the check uses. */
export interface BootstrapLogger {
  info(object: object, message: string): void;
  warn(object: object, message: string): void;
}

/** helloTimeoutMs bounds one Hello; helloRoundPauseMs spaces the rounds while members are missing. */
const helloTimeoutMs = 1000;
const helloRoundPauseMs = 500;

/** rejoinAdvice tells the operator how to bring back a member whose data was wiped. */
export function rejoinAdvice(self: NodeId): string {
  return (
    `member ${self} has an empty data directory, but the cluster has heard from it before: its data was wiped or lost, ` +
    `and it must not rejoin as a voter that forgot its votes. To re-add it: on the leader, ` +
    `DELETE /cairn/v1/cluster/members?addr=${self}; then start this member with --join (empty data directory); ` +
    `then POST /cairn/v1/cluster/members?addr=${self} on the leader (it joins as a learner and is promoted once caught up)`
  );
}

/**
 * checkBootstrap resolves once every other member has answered that it never heard from `self`, rejects with
 * CAIRN_MEMBER_STATE_MISSING when one has, and with CAIRN_NO_QUORUM when members stay silent beyond `waitMs`.
 */
export async function checkBootstrap(
  self: NodeId,
  members: readonly NodeId[],
  asker: HelloAsker,
  logger: BootstrapLogger,
  waitMs: number,
  signal?: AbortSignal,
): Promise<void> {
  const others = members.filter((member) => member !== self);
  const deadline = monotonicMs() + waitMs;
  let lastReport = -Infinity;
  for (let round = 0; ; round++) {
    throwIfStopped(signal);
    const answers = await Promise.all(others.map(async (member) => [member, await asker.hello(member, helloTimeoutMs)] as const));
    const knownBy = answers.filter(([, hello]) => hello?.heardFromYou === true).map(([member]) => member);
    if (knownBy.length > 0) throw new CairnError('CAIRN_MEMBER_STATE_MISSING', `${rejoinAdvice(self)} (known to ${knownBy.join(', ')})`);
    const silent = answers.filter(([, hello]) => hello === null).map(([member]) => member);
    if (silent.length === 0) {
      logger.info({ members }, 'every member answered and none has heard from this one: starting as a new voter');
      return;
    }
    if (monotonicMs() >= deadline) {
      throw new CairnError('CAIRN_NO_QUORUM', `members ${silent.join(', ')} did not answer within ${waitMs} ms; a member with an empty data directory starts only once every member has answered`);
    }
    if (monotonicMs() - lastReport >= 5000) {
      lastReport = monotonicMs();
      logger.warn({ waitingFor: silent, round }, 'empty data directory: waiting for every member to answer before starting as a voter');
    }
    await pause(helloRoundPauseMs, signal);
  }
}

/** throwIfStopped ends the check of a start that was stopped (a signal to `cairn server` before it was ready). */
function throwIfStopped(signal: AbortSignal | undefined): void {
  if (signal?.aborted === true) throw new CairnError('CAIRN_SHUTTING_DOWN', 'the start was stopped before the member was ready');
}

/** pause waits `ms`, or less when `signal` aborts meanwhile. */
function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
