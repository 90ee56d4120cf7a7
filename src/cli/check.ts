// `cairn check --members A,B,C`: the replica-consistency check (docs/operations.md "Checking that the replicas
// agree"). It asks every member for the digest of its stored keyspace (GET /cairn/v1/state/digest) and compares
// digests taken at the same applied index, the only ones that must be equal (src/replica/state-digest.ts). While
// writes flow the members stand at different indexes; the command asks again until they meet or --wait runs out.
//
// When the members still stand at different indexes after checkpointAfterMs (steady writes), the command compares
// their checkpoint digests instead (GET /cairn/v1/state/checkpoints, src/replica/checkpoints.ts): the digests every
// member took at the newest checkpoint index they all hold, which are just as comparable.
//
// Exit codes: 0 every member holds the same state at one index; 1 they differ (a replica diverged: each member's
// digest is printed); 2 bad usage; 3 no comparison within --wait (a member unreachable or behind, or the indexes
// never met while writes went on and no checkpoint is shared): what was last heard is printed.

import { getJson, type JsonAnswer } from './http-get.ts';
import { flags, parseMemberList, required, text, UsageError, type Output } from './main.ts';

/** checkMembersMax bounds the members one check asks (a Raft group is 3 to 7 in practice). */
export const checkMembersMax = 16;

export const checkUsage = `Usage: cairn check --members A,B,C [--wait SECONDS] [--json]

Compare the members' persistent state: each member's digest of its stored keyspace, taken at the same applied
index. Equal digests at one index mean the replicas agree; different ones mean a replica diverged. While writes
keep the members at different indexes, the digests they took at their newest shared checkpoint are compared
instead (members take one every --checkpoint-every entries).

Options:
  --members A,B,C   the members' HTTP addresses (their --addr), 2 to ${checkMembersMax}
  --wait SECONDS    ask again until the members answer at one applied index or share a checkpoint, for at most
                    this long (default 30)
  --json            print the members' answers as JSON

Exit codes: 0 the replicas agree; 1 they differ; 2 bad usage; 3 no comparison was possible within --wait;
70 the command ended without an answer (a bug: neither a verdict nor success).
`;

/** retryPauseMs is the pause between two rounds of questions while the members stand at different indexes. */
const retryPauseMs = 200;

/** checkpointAfterMs: how long `cairn check` waits for the members to meet at one index before it compares checkpoints. */
export const checkpointAfterMs = 3000;

/** checkpointsListedMax bounds the checkpoint digests read from one member's answer (a member keeps 8). */
const checkpointsListedMax = 16;

/** CheckCommand is a validated `cairn check` command line. */
export interface CheckCommand {
  readonly members: readonly string[];
  readonly waitMs: number;
  readonly json: boolean;
}

/** MemberDigest is one member's answer to GET /cairn/v1/state/digest. */
export interface MemberDigest {
  readonly member: string;
  readonly appliedIndex: number;
  readonly records: number;
  readonly bytes: number;
  readonly sha256: string;
}

/** Answer is what one member said, or why it said nothing usable. */
export type Answer = { readonly ok: true; readonly digest: MemberDigest } | { readonly ok: false; readonly member: string; readonly error: string };

/**
 * CheckOutcome is the verdict of one round of answers. `checkpoint` is true when the digests compared are the
 * members' checkpoint digests (at their newest shared checkpoint), false when they are the live ones; `digests` are
 * the compared digests, one per member.
 */
export type CheckOutcome =
  | { readonly verdict: 'agree'; readonly appliedIndex: number; readonly digest: MemberDigest; readonly checkpoint: boolean }
  | { readonly verdict: 'differ'; readonly appliedIndex: number; readonly digests: readonly MemberDigest[]; readonly checkpoint: boolean }
  | { readonly verdict: 'retry'; readonly reason: string };

/** PeerComparison is one of a member's periodic comparisons with a peer, as its checkpoint report lists it. */
export interface PeerComparison {
  readonly peer: string;
  readonly appliedIndex: number;
  readonly agree: boolean;
}

/** CheckpointsAnswer is one member's checkpoint digests (newest first) and comparisons, or why it gave none usable. */
export type CheckpointsAnswer =
  | { readonly ok: true; readonly member: string; readonly every: number; readonly digests: readonly MemberDigest[]; readonly comparisons: readonly PeerComparison[] }
  | { readonly ok: false; readonly member: string; readonly error: string };

/** parseCheck validates the command line; throws UsageError. */
export function parseCheck(args: readonly string[]): CheckCommand | 'help' {
  const values = flags(args, { members: { type: 'string' }, wait: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } });
  if (values['help'] === true) return 'help';
  const members = parseMemberList(required(values, 'members'));
  if (members.length < 2 || members.length > checkMembersMax) throw new UsageError(`--members: give 2 to ${checkMembersMax} members; got ${members.length}`);
  const waitText = text(values, 'wait') ?? '30';
  const seconds = Number(waitText);
  if (!/^\d+(\.\d+)?$/.test(waitText) || !(seconds >= 0 && seconds <= 3600)) throw new UsageError(`--wait: '${waitText}' is not a number of seconds from 0 to 3600`);
  return { members, waitMs: Math.round(seconds * 1000), json: values['json'] === true };
}

/** judge compares one round of answers: the digests count only when every member answered at one applied index. */
export function judge(answers: readonly Answer[]): CheckOutcome {
  const failed = answers.filter((answer) => !answer.ok);
  if (failed.length > 0) return { verdict: 'retry', reason: failed.map((answer) => (answer.ok ? '' : `${answer.member}: ${answer.error}`)).join('; ') };
  const digests = answers.map((answer) => (answer.ok ? answer.digest : null)).filter((digest) => digest !== null);
  const first = digests[0];
  if (first === undefined) return { verdict: 'retry', reason: 'no member answered' };
  if (digests.some((digest) => digest.appliedIndex !== first.appliedIndex)) {
    return { verdict: 'retry', reason: `the members stand at different applied indexes (${digests.map((digest) => `${digest.member} ${digest.appliedIndex}`).join(', ')})` };
  }
  return verdictOf(digests, false);
}

/** verdictOf compares digests taken at one applied index. */
function verdictOf(digests: readonly MemberDigest[], checkpoint: boolean): CheckOutcome {
  const first = digests[0];
  if (first === undefined) return { verdict: 'retry', reason: 'no member answered' };
  const agree = digests.every((digest) => digest.sha256 === first.sha256 && digest.records === first.records && digest.bytes === first.bytes);
  return agree ? { verdict: 'agree', appliedIndex: first.appliedIndex, digest: first, checkpoint } : { verdict: 'differ', appliedIndex: first.appliedIndex, digests, checkpoint };
}

/**
 * judgeCheckpoints compares the members' digests at the newest checkpoint index every one of them holds; null when
 * a member gave no usable answer or they share no checkpoint.
 */
export function judgeCheckpoints(answers: readonly CheckpointsAnswer[]): CheckOutcome | null {
  const lists: Array<readonly MemberDigest[]> = [];
  for (const answer of answers) {
    if (!answer.ok) return null;
    lists.push(answer.digests);
  }
  const [firstList, ...others] = lists;
  if (firstList === undefined) return null;
  const shared = firstList.map((digest) => digest.appliedIndex).filter((index) => others.every((list) => list.some((digest) => digest.appliedIndex === index)));
  if (shared.length === 0) return null;
  const index = Math.max(...shared);
  return verdictOf(lists.map((list) => list.find((digest) => digest.appliedIndex === index) as MemberDigest), true);
}

/**
 * parseCheckpoints validates a member's GET /cairn/v1/state/checkpoints body: its interval, checkpoint digests and
 * periodic comparisons (a member lists one per peer).
 */
export function parseCheckpoints(member: string, body: unknown): { every: number; digests: MemberDigest[]; comparisons: PeerComparison[] } {
  const value = body as { every?: unknown; checkpoints?: unknown; comparisons?: unknown } | null;
  if (value === null || typeof value !== 'object' || typeof value.every !== 'number' || !Number.isSafeInteger(value.every) || value.every < 0 ||
    !Array.isArray(value.checkpoints) || value.checkpoints.length > checkpointsListedMax ||
    !Array.isArray(value.comparisons) || value.comparisons.length > checkMembersMax) {
    throw new Error('answered something that is not a checkpoint report');
  }
  const digests = value.checkpoints.map((item: unknown) => parseDigest(member, item));
  if (new Set(digests.map((digest) => digest.appliedIndex)).size !== digests.length) throw new Error('answered a checkpoint report with an index twice');
  const comparisons = value.comparisons.map((item: unknown): PeerComparison => {
    const entry = item as { peer?: unknown; appliedIndex?: unknown; agree?: unknown } | null;
    if (entry === null || typeof entry !== 'object' || typeof entry.peer !== 'string' || entry.peer.length === 0 || entry.peer.length > 260 ||
      typeof entry.appliedIndex !== 'number' || !Number.isSafeInteger(entry.appliedIndex) || entry.appliedIndex < 0 || typeof entry.agree !== 'boolean') {
      throw new Error('answered a checkpoint report with a comparison that is not one');
    }
    return { peer: entry.peer, appliedIndex: entry.appliedIndex, agree: entry.agree };
  });
  return { every: value.every, digests, comparisons };
}

/** parseDigest validates a member's answer body. */
export function parseDigest(member: string, body: unknown): MemberDigest {
  const value = body as Partial<Record<keyof MemberDigest, unknown>> | null;
  const count = (field: unknown): field is number => typeof field === 'number' && Number.isSafeInteger(field) && field >= 0;
  if (value === null || typeof value !== 'object' || !count(value.appliedIndex) || !count(value.records) || !count(value.bytes) ||
    typeof value.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(value.sha256)) {
    throw new Error('answered something that is not a state digest');
  }
  return { member, appliedIndex: value.appliedIndex, records: value.records, bytes: value.bytes, sha256: value.sha256 };
}

/** askMember GETs `path` of one member and parses the body with `parse`; never throws. */
async function askMember<T>(member: string, path: string, timeoutMs: number, parse: (body: unknown) => T): Promise<{ ok: true; value: T } | { ok: false; error: string }> {
  const url = `http://${member}${path}`;
  let answer: JsonAnswer;
  try {
    answer = await getJson(url, timeoutMs);
  } catch (error) {
    return { ok: false, error: `cannot reach ${url}: ${error instanceof Error ? error.message : String(error)}` };
  }
  if (answer.status < 200 || answer.status > 299) {
    const { code, message } = (answer.body ?? {}) as { code?: unknown; message?: unknown };
    return { ok: false, error: `${typeof code === 'string' ? `${code}: ` : ''}${typeof message === 'string' ? message : `HTTP ${answer.status}`}` };
  }
  try {
    return { ok: true, value: parse(answer.body) };
  } catch (error) {
    return { ok: false, error: `${url} ${error instanceof Error ? error.message : String(error)}` };
  }
}

/** askDigest asks one member for its digest; never throws. */
export async function askDigest(member: string, timeoutMs: number): Promise<Answer> {
  const answer = await askMember(member, '/cairn/v1/state/digest', timeoutMs, (body) => parseDigest(member, body));
  return answer.ok ? { ok: true, digest: answer.value } : { ok: false, member, error: answer.error };
}

/** askCheckpoints asks one member for its checkpoint digests; never throws. */
export async function askCheckpoints(member: string, timeoutMs: number): Promise<CheckpointsAnswer> {
  const answer = await askMember(member, '/cairn/v1/state/checkpoints', timeoutMs, (body) => parseCheckpoints(member, body));
  return answer.ok ? { ok: true, member, ...answer.value } : { ok: false, member, error: answer.error };
}

function describe(answers: readonly Answer[]): string {
  return answers.map((answer) => (answer.ok
    ? `  ${answer.digest.member}  applied ${answer.digest.appliedIndex}  ${answer.digest.records} records  ${answer.digest.bytes} bytes  sha256 ${answer.digest.sha256}`
    : `  ${answer.member}  ${answer.error}`)).join('\n');
}

/** Comparison is the last round of answers of compareMembers, its verdict, and how many rounds were asked. */
export interface Comparison {
  readonly outcome: CheckOutcome;
  readonly answers: readonly Answer[];
  readonly rounds: number;
}

/**
 * compareMembers asks every member for its digest, every retryPauseMs, until the answers give a verdict (agree or
 * differ) or `waitMs` has passed (then the last round's 'retry' with its reason). From `checkpointAfterMs` on, a
 * round in which every member answered, at different indexes, also compares the members' checkpoint digests, and
 * takes their verdict when they share a checkpoint. Used by `cairn check` and by the jepsen-like runner's final
 * replica check (which compares checkpoints only at its deadline: the live state is the stronger check).
 */
export async function compareMembers(members: readonly string[], waitMs: number, checkpointsAfterMs = checkpointAfterMs): Promise<Comparison> {
  const started = Date.now();
  const deadline = started + waitMs;
  for (let rounds = 1; ; rounds++) {
    const answers = await Promise.all(members.map((member) => askDigest(member, Math.max(5_000, deadline - Date.now()))));
    let outcome = judge(answers);
    const lastRound = Date.now() >= deadline;
    if (outcome.verdict === 'retry' && answers.every((answer) => answer.ok) && (lastRound || Date.now() - started >= checkpointsAfterMs)) {
      const checkpoints = await Promise.all(members.map((member) => askCheckpoints(member, 5_000)));
      outcome = judgeCheckpoints(checkpoints) ?? { verdict: 'retry', reason: `${outcome.reason}, and they share no checkpoint` };
    }
    if (outcome.verdict !== 'retry' || lastRound) return { outcome, answers, rounds };
    await new Promise((resolve) => setTimeout(resolve, retryPauseMs));
  }
}

/** executeCheck runs the check; resolves with the exit code. */
export async function executeCheck(command: CheckCommand, out: Output): Promise<number> {
  const { outcome, answers } = await compareMembers(command.members, command.waitMs);
  const checkpoint = outcome.verdict !== 'retry' && outcome.checkpoint;
  if (command.json) {
    const compared = outcome.verdict === 'agree' ? answers.map(() => outcome.digest) : outcome.verdict === 'differ' ? outcome.digests : [];
    const report = { verdict: outcome.verdict, answers: answers.map((answer) => (answer.ok ? answer.digest : { member: answer.member, error: answer.error })) };
    out.stdout(`${JSON.stringify(checkpoint ? { ...report, checkpoint: { appliedIndex: compared[0]?.appliedIndex, digests: compared } } : report)}\n`);
  }
  const index = outcome.verdict === 'retry' ? 0 : outcome.appliedIndex;
  const where = checkpoint ? `checkpoint ${index} (the members stand at different applied indexes: their digests at the newest checkpoint they share)` : `applied index ${index}`;
  if (outcome.verdict === 'agree') {
    if (!command.json) out.stdout(`the ${answers.length} replicas agree at ${where}: ${outcome.digest.records} records, sha256 ${outcome.digest.sha256}\n`);
    return 0;
  }
  if (outcome.verdict === 'differ') {
    const digests = outcome.digests.map((digest): Answer => ({ ok: true, digest }));
    out.stderr(`cairn check: the replicas DIFFER at ${where}: a replica diverged (docs/operations.md "Checking that the replicas agree")\n${describe(digests)}\n`);
    return 1;
  }
  out.stderr(`cairn check: no comparison within ${command.waitMs / 1000} s: ${outcome.reason}\n${describe(answers)}\n`);
  return 3;
}

/** runCheck is `cairn check ARGS`. */
export async function runCheck(args: readonly string[], out: Output): Promise<number> {
  let command: CheckCommand | 'help';
  try {
    command = parseCheck(args);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    out.stderr(`cairn check: ${error.message}\nRun 'cairn check --help' for usage.\n`);
    return 2;
  }
  if (command === 'help') {
    out.stdout(checkUsage);
    return 0;
  }
  return executeCheck(command, out);
}
