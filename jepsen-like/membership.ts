// membership: the member nemesis's dealings with Cairn's Raft group (PEERS.md A4), kept apart from the fault
// schedule so the decisions are pure and tested (test/jepsen/membership.test.ts).
//
// Cairn's contract (docs/operations.md, "Changing membership", "A member that lost its data"): changes go to the
// leader, one at a time; DELETE /cairn/v1/cluster/members?addr=X removes a member (the leader too: it steps down
// once the removal commits); POST adds an empty member started with --join, as a learner first, and answers once
// its promotion to voter has committed (the leader waits up to memberCatchUpMs, 60 s, for it to catch up). A
// removed member must not come back with its old data dir wiped and without --join: it forgot its votes. So the
// nemesis wipes a member only after its removal is known to have committed, and re-adds it empty with --join.
//
// Knowing that a change committed: a 200 answer says so. CAIRN_MEMBERSHIP_CHANGE_INVALID says that the change does
// not apply to the leader's latest configuration, and since Cairn refuses a change while the previous one is
// uncommitted (CAIRN_MEMBERSHIP_CHANGE_PENDING) that configuration is committed: for a removal, the member is out;
// for an addition, the member is already in, as a voter or as a learner (the leader's view tells which). Every
// other answer (not the leader, no leader, dropped, outcome unknown, a timeout) is retried against whichever member
// leads then: at most changeAttemptsMax requests that a member claiming to lead answered, and any number of
// leaderless polls (no leader found, or CAIRN_NO_LEADER) within changeWindowMs, since other faults of a combined
// nemesis may keep the cluster leaderless for a while.
//
// The wipe nemesis (PEERS.md A9) adds starts that Cairn must refuse (a wiped member started as a voter, a data
// directory started under another address); judgeAttempt classifies what such a start did, from its exit and its
// output, against the refusal Cairn documents (src/cli/server.ts prints `cairn server: CODE: message`, exit 1).

import type { ClusterView, HttpResult } from './client-http.ts';
import { clusterView, httpRequest } from './client-http.ts';
import type { Random } from './random.ts';
import { sleep } from './random.ts';

/** votersMin: the member nemesis never leaves fewer voters (with 3, one more failure is already a lost quorum). */
export const votersMin = 3;
/** victimLeaderShare is how often the victim is the leader (removing the leader is the harder path: it steps down). */
export const victimLeaderShare = 0.5;
/** removeTimeoutMs bounds one DELETE: the member answers within its 5 s request timeout. */
const removeTimeoutMs = 8000;
/** addTimeoutMs bounds one POST: the leader waits up to memberCatchUpMs (60 s) for the learner, then promotes it. */
const addTimeoutMs = 75_000;
/** viewTimeoutMs bounds one GET /cairn/v1/cluster. */
const viewTimeoutMs = 2000;
/**
 * changeAttemptsMax bounds the requests of one change that reached a member claiming to lead (retries after leader
 * changes and pending changes). Polls that found no leader, or a member answering CAIRN_NO_LEADER, are not counted
 * here: under combined faults (a majority killed while a member is out) the cluster may be leaderless for longer
 * than a dozen retries, and only changeWindowMs bounds that wait.
 */
const changeAttemptsMax = 12;
/** changeWindowMs bounds the time one change may take, retries included (a POST alone may take addTimeoutMs). */
const changeWindowMs = 180_000;
/** retryDelayMs spaces retries: about an election timeout (1-2 s), so a new leader has usually emerged. */
const retryDelayMs = 1000;

/** MemberRoleSeen is what a member is in a leader's latest configuration. */
export type MemberRoleSeen = 'voter' | 'learner' | 'absent';

/** votersSeenBy lists the voters of `view`, the configuration member `self` holds (sorted). */
export function votersSeenBy(view: ClusterView, self: string): string[] {
  // GET /cairn/v1/cluster lists the voters and learners of the member's latest configuration, and the member itself
  // even when it is in neither, with role 'unknown' (src/member-control.ts); another member's role is 'unknown' when
  // a follower does not know it, so only the member's own 'unknown' means "not a voter".
  return view.members
    .filter((member) => member.role !== 'learner' && !(member.addr === self && member.role === 'unknown'))
    .map((member) => member.addr)
    .sort();
}

/** learnersSeenBy lists the learners of `view` (sorted). */
export function learnersSeenBy(view: ClusterView): string[] {
  return view.members.filter((member) => member.role === 'learner').map((member) => member.addr).sort();
}

/** roleSeenBy tells what `addr` is in the configuration of `view`, as seen by member `self`. */
export function roleSeenBy(view: ClusterView, self: string, addr: string): MemberRoleSeen {
  if (learnersSeenBy(view).includes(addr)) return 'learner';
  return votersSeenBy(view, self).includes(addr) ? 'voter' : 'absent';
}

/**
 * membershipProblems says how the members' views differ from the intended membership: every member answers, and
 * each reports exactly `expected` as voters and no learner. Empty when the cluster converged.
 */
export function membershipProblems(views: ReadonlyMap<string, ClusterView | null>, expected: readonly string[]): string[] {
  const wanted = [...expected].sort().join(',');
  const problems: string[] = [];
  for (const addr of expected) {
    const view = views.get(addr) ?? null;
    if (view === null) {
      problems.push(`${addr} did not answer GET /cairn/v1/cluster`);
      continue;
    }
    const voters = votersSeenBy(view, addr).join(',');
    const learners = learnersSeenBy(view);
    if (voters !== wanted) problems.push(`${addr} reports voters ${voters || 'none'}`);
    if (learners.length > 0) problems.push(`${addr} reports learners ${learners.join(',')}`);
  }
  return problems;
}

/** Victim is the member a membership fault removes, and whether it led when chosen. */
export interface Victim {
  readonly addr: string;
  readonly role: 'leader' | 'follower';
}

/**
 * chooseVictim picks the member to remove: the leader with probability victimLeaderShare, otherwise a follower,
 * among the voters that may be touched (`eligible`: running, not already in another fault). Null when removing one
 * would leave fewer than votersMin voters, or nobody is eligible.
 */
export function chooseVictim(leader: string, voters: readonly string[], eligible: readonly string[], random: Random): Victim | null {
  if (voters.length - 1 < votersMin) return null;
  const followers = voters.filter((addr) => addr !== leader && eligible.includes(addr));
  const leaderEligible = voters.includes(leader) && eligible.includes(leader);
  // The draw is made whatever is eligible, so one seed's later choices do not depend on who was running.
  const wantsLeader = random.chance(victimLeaderShare);
  if (leaderEligible && (wantsLeader || followers.length === 0)) return { addr: leader, role: 'leader' };
  if (followers.length === 0) return null;
  return { addr: random.pick(followers), role: 'follower' };
}

/** ChangeAnswer is how one membership request ended: committed, not applicable (see the file comment), retry, refused. */
export type ChangeAnswer = 'committed' | 'not-applicable' | 'retry' | 'refused';

/** retryableCodes are the answers after which the same change may be sent again (docs/errors.md). */
const retryableCodes: ReadonlySet<string> = new Set([
  'CAIRN_NOT_LEADER',
  'CAIRN_NO_LEADER',
  'CAIRN_NO_QUORUM',
  'CAIRN_MEMBERSHIP_CHANGE_PENDING',
  'CAIRN_TRANSFER_IN_PROGRESS',
  'CAIRN_PROPOSAL_DROPPED',
  'CAIRN_OUTCOME_UNKNOWN',
  'CAIRN_SHUTTING_DOWN',
  'CAIRN_MEMBER_STALLED',
]);

/** answerOf classifies the result of one POST or DELETE /cairn/v1/cluster/members, with a one-line detail. */
export function answerOf(result: HttpResult): { readonly answer: ChangeAnswer; readonly detail: string } {
  if (!('answer' in result)) return { answer: 'retry', detail: `no answer: ${result.failure}` };
  const { status, code, text } = result.answer;
  const detail = `${status} ${code ?? ''} ${text.slice(0, 160)}`.replace(/\s+/g, ' ').trim();
  if (status === 200) return { answer: 'committed', detail: '200' };
  if (code === 'CAIRN_MEMBERSHIP_CHANGE_INVALID') return { answer: 'not-applicable', detail };
  if (code !== null && retryableCodes.has(code)) return { answer: 'retry', detail };
  // A 5xx without a Cairn code (a proxy, a crash mid-answer) may be retried; a 4xx is a request Cairn will refuse again.
  if (code === null && status >= 500) return { answer: 'retry', detail };
  return { answer: 'refused', detail };
}

/** ChangeReport is what one change (with its retries) did: whether it settled, the member's role, every attempt. */
export interface ChangeReport {
  /** settled: the change is known to have committed (or to hold already). */
  readonly settled: boolean;
  /** role: what the member is in the last leader's configuration that answered, or 'unknown'. */
  readonly role: MemberRoleSeen | 'unknown';
  readonly attempts: readonly string[];
  readonly ms: number;
  /** problem: a refusal the harness cannot retry past (a Cairn bug or a harness bug), or null. */
  readonly problem: string | null;
}

/** LeaderFinder returns the current leader's HTTP address, or null when there is none (monitor.ts). */
export type LeaderFinder = () => Promise<string | null>;

/** roleAtLeader asks `leader` what `addr` is in its latest configuration; null when it does not answer as leader. */
export async function roleAtLeader(leader: string, addr: string): Promise<MemberRoleSeen | null> {
  const view = await clusterView(leader, viewTimeoutMs);
  if (view === null || view.leader !== leader) return null;
  return roleSeenBy(view, leader, addr);
}

/**
 * roleAttemptsMax bounds the leader look-ups of roleInGroup (about a second apart): a minute, since under combined
 * faults a majority may be killed or cut off for a fault's whole length (the chaos run at seed 40000: 19 s).
 */
const roleAttemptsMax = 60;

/** roleInGroup asks whoever leads what `addr` is, retrying while nobody leads; null when no leader answered. */
export async function roleInGroup(addr: string, findLeader: LeaderFinder): Promise<MemberRoleSeen | null> {
  for (let attempt = 0; attempt < roleAttemptsMax; attempt++) {
    if (attempt > 0) await sleep(retryDelayMs);
    const leader = await findLeader();
    const role = leader === null ? null : await roleAtLeader(leader, addr);
    if (role !== null) return role;
  }
  return null;
}

/**
 * removeMember asks the leader to remove `addr` until the removal is known to have committed (settled), or the
 * attempts or the window run out (not settled: the removal may still commit later, so the member must be left as
 * it is, not wiped).
 */
export async function removeMember(addr: string, findLeader: LeaderFinder, delayMs: number = retryDelayMs): Promise<ChangeReport> {
  return changeMember('DELETE', addr, findLeader, removeTimeoutMs, delayMs);
}

/**
 * addMember asks the leader to add `addr` (started empty with --join) until it is known to be a voter (settled).
 * When the leader's committed configuration holds it as a learner and the POST is refused, it is reported with the
 * problem: Cairn has no route that promotes a learner, so only a removal and a new addition would make it a voter.
 */
export async function addMember(addr: string, findLeader: LeaderFinder, delayMs: number = retryDelayMs): Promise<ChangeReport> {
  return changeMember('POST', addr, findLeader, addTimeoutMs, delayMs);
}

/** changeMember sends one change until it settles; delayMs spaces the polls (retryDelayMs but in tests). */
async function changeMember(method: 'POST' | 'DELETE', addr: string, findLeader: LeaderFinder, timeoutMs: number, delayMs: number): Promise<ChangeReport> {
  const started = Date.now();
  const attempts: string[] = [];
  const report = (settled: boolean, role: MemberRoleSeen | 'unknown', problem: string | null = null): ChangeReport => ({ settled, role, attempts, ms: Date.now() - started, problem });
  const done: MemberRoleSeen = method === 'POST' ? 'voter' : 'absent';
  let requests = 0;
  for (let poll = 0; requests < changeAttemptsMax && Date.now() - started < changeWindowMs; poll++) {
    if (poll > 0) await sleep(delayMs);
    const leader = await findLeader();
    if (leader === null) {
      noteLeaderless(attempts, 'no leader');
      continue;
    }
    const result = await httpRequest(leader, method, `/cairn/v1/cluster/members?addr=${encodeURIComponent(addr)}`, timeoutMs);
    const { answer, detail } = answerOf(result);
    if ('answer' in result && result.answer.code === 'CAIRN_NO_LEADER') {
      noteLeaderless(attempts, `${leader}: 503 CAIRN_NO_LEADER`);
      continue;
    }
    requests++;
    attempts.push(`${leader}: ${detail}`);
    if (answer === 'committed') return report(true, done);
    if (answer === 'retry') continue;
    if (answer === 'refused') return report(false, 'unknown', `${method} ${addr} refused by ${leader}: ${detail}`);
    // Not applicable: the leader's configuration, committed (see the file comment), says where the member stands.
    const role = await roleAtLeader(leader, addr);
    attempts.push(`${leader} reports ${addr} ${role ?? 'unknown (no view from the leader)'}`);
    if (role === done) return report(true, role);
    if (role === null) continue;
    if (method === 'POST' && role === 'learner') {
      return report(false, role, `${addr} is left a learner: a POST that finds it a learner is refused (${detail}), and no route promotes a learner`);
    }
  }
  return report(false, 'unknown');
}

/**
 * noteLeaderless records a poll that found no leader, folding a run of the same note into one line with a count
 * ("no leader x7"), so a long leaderless wait keeps the attempts list short.
 */
export function noteLeaderless(attempts: string[], note: string): void {
  const last = attempts.length === 0 ? undefined : attempts[attempts.length - 1];
  const folded = last === undefined ? null : /^(.*) x(\d+)$/.exec(last);
  if (last === note) attempts[attempts.length - 1] = `${note} x2`;
  else if (folded !== null && folded[1] === note) attempts[attempts.length - 1] = `${note} x${Number(folded[2]) + 1}`;
  else attempts.push(note);
}

/** membershipBoundMs bounds the final wait for every member to report the intended membership (after recovery). */
export const membershipBoundMs = 30_000;
/** membershipPollMs spaces the final membership polls. */
const membershipPollMs = 500;

/** MembershipConvergence is the final membership check: when it held, or what was still wrong at the bound. */
export interface MembershipConvergence {
  /** convergedAfterMs: from the check's start until every member reported the intended membership, or null. */
  readonly convergedAfterMs: number | null;
  readonly polls: number;
  /** problems: what the last poll found wrong (empty when converged). */
  readonly problems: readonly string[];
  /** voters: each member's voter list at the last poll ("-" when it did not answer). */
  readonly voters: Readonly<Record<string, string>>;
}

/** awaitMembership polls every member's view until all report `addrs` as the voters and no learner, within the bound. */
export async function awaitMembership(addrs: readonly string[], boundMs: number = membershipBoundMs): Promise<MembershipConvergence> {
  const started = Date.now();
  let problems: string[] = [];
  let voters: Record<string, string> = {};
  // The time bound ends the loop; the count bound only guards against a clock that does not move.
  const pollsMax = Math.ceil(boundMs / membershipPollMs) + 1;
  for (let poll = 1; poll <= pollsMax; poll++) {
    const views = new Map(await Promise.all(addrs.map(async (addr) => [addr, await clusterView(addr, viewTimeoutMs)] as const)));
    problems = membershipProblems(views, addrs);
    voters = Object.fromEntries([...views].map(([addr, view]) => [addr, view === null ? '-' : votersSeenBy(view, addr).join(',')]));
    if (problems.length === 0) return { convergedAfterMs: Date.now() - started, polls: poll, problems, voters };
    if (Date.now() - started >= boundMs || poll === pollsMax) return { convergedAfterMs: null, polls: poll, problems, voters };
    await sleep(membershipPollMs);
  }
  return { convergedAfterMs: null, polls: pollsMax, problems, voters };
}

/**
 * refusalBoundMs bounds a start Cairn must refuse: the bootstrap check asks every peer (1 s timeouts, 0.5 s apart
 * while some are silent, src/replica/bootstrap.ts) and refuses on the first that knows the member; a partition that
 * hides every peer lasts at most 10 s in the suites, and tsx takes a few seconds to load the server.
 */
export const refusalBoundMs = 30_000;
/** servedObserveMs: a start Cairn should have refused that serves HTTP is watched this long before it is killed. */
export const servedObserveMs = 10_000;

/** RefusalExpected is the refusal Cairn documents for a start: its error code and a phrase of its message. */
export interface RefusalExpected {
  readonly code: string;
  readonly phrase: string;
}

/** wipedRefusal: a wiped member started without --join (docs/operations.md, "A member that lost its data"). */
export const wipedRefusal: RefusalExpected = { code: 'CAIRN_MEMBER_STATE_MISSING', phrase: 'with --join' };
/** movedRefusal: a data directory started under another --addr (src/member.ts, prepareStorage). */
export const movedRefusal: RefusalExpected = { code: 'CAIRN_INVALID_ARGUMENT', phrase: 'belongs to member' };

/** AttemptObservation is what the harness saw of a start Cairn should refuse (control.ts StartAttempt). */
export interface AttemptObservation {
  /** exitCode: the process's exit code, or null when a signal ended it. */
  readonly exitCode: number | null;
  readonly signal: string | null;
  /** killedByHarness: the harness killed it (it ran past refusalBoundMs, or it started and was watched). */
  readonly killedByHarness: boolean;
  /** readyAfterMs: when it printed `cairn ready`, ms after the spawn, or null. */
  readonly readyAfterMs: number | null;
  /** servedAfterMs: its first HTTP answer, ms after the spawn, or null. */
  readonly servedAfterMs: number | null;
  /** output: the last lines of its stdout and stderr. */
  readonly output: readonly string[];
}

/**
 * AttemptVerdict: 'refused' as documented; 'started' (Cairn accepted it: a safety problem, a member that forgot its
 * votes serves as a voter, or one member's data serves under another's address); 'hung' (still running at the bound,
 * neither refused nor serving); 'other' (ended some other way: exit 0, another code, a crash).
 */
export type AttemptVerdict = 'refused' | 'started' | 'hung' | 'other';

/** AttemptJudgement is the verdict on a start attempt, the error code Cairn printed (or null), and why. */
export interface AttemptJudgement {
  readonly verdict: AttemptVerdict;
  readonly code: string | null;
  readonly detail: string;
}

/** startFailureLine matches the line `cairn server` prints when the member cannot start (src/cli/server.ts). */
const startFailureLine = /^cairn server: (CAIRN_[A-Z_]+): (.*)$/;

/** startFailureOf finds the last start failure Cairn printed in `output`: its code and message, or null. */
export function startFailureOf(output: readonly string[]): { readonly code: string; readonly message: string } | null {
  for (let i = output.length - 1; i >= 0; i--) {
    const match = startFailureLine.exec(output[i] ?? '');
    if (match !== null) return { code: match[1] ?? '', message: match[2] ?? '' };
  }
  return null;
}

/** judgeAttempt says whether a start was refused as `expected` documents, and if not, what happened instead. */
export function judgeAttempt(observed: AttemptObservation, expected: RefusalExpected): AttemptJudgement {
  const failure = startFailureOf(observed.output);
  const code = failure?.code ?? null;
  // Accepted first: a process that served and then died was still a member that should never have run.
  if (observed.readyAfterMs !== null || observed.servedAfterMs !== null) {
    const how = [observed.readyAfterMs === null ? null : `printed 'cairn ready' after ${observed.readyAfterMs} ms`, observed.servedAfterMs === null ? null : `answered HTTP after ${observed.servedAfterMs} ms`].filter((part) => part !== null);
    return { verdict: 'started', code, detail: `Cairn accepted the start instead of refusing it with ${expected.code}: it ${how.join(' and ')}` };
  }
  if (observed.exitCode === null) {
    if (observed.killedByHarness) return { verdict: 'hung', code, detail: `neither refused nor serving within ${refusalBoundMs} ms; killed` };
    return { verdict: 'other', code, detail: `ended by signal ${observed.signal ?? 'unknown'} before refusing` };
  }
  if (observed.exitCode === 0) return { verdict: 'other', code, detail: 'exited 0 without serving: no refusal' };
  if (failure === null) return { verdict: 'other', code, detail: `exited ${observed.exitCode} without a 'cairn server: CODE:' line (last: ${observed.output.at(-1) ?? 'no output'})` };
  if (failure.code !== expected.code) return { verdict: 'other', code, detail: `exited ${observed.exitCode} with ${failure.code}, not ${expected.code}: ${failure.message.slice(0, 200)}` };
  if (!failure.message.includes(expected.phrase)) return { verdict: 'other', code, detail: `exited ${observed.exitCode} with ${failure.code} but without '${expected.phrase}': ${failure.message.slice(0, 200)}` };
  return { verdict: 'refused', code, detail: `exited ${observed.exitCode} with ${failure.code}` };
}

/** WipeMode is what one wipe fault does: wipe a member's data ('wiped') or start its data under another address ('moved'). */
export type WipeMode = 'wiped' | 'moved';

/** freeHosts lists the reserved hosts that no member uses, in order (the moved data directory's addresses). */
export function freeHosts(reserved: readonly string[], used: readonly string[]): string[] {
  return reserved.filter((host) => !used.includes(host));
}

/** wipeModeOf: the wipe loop's faults alternate, 'wiped' first, so a short run has both; 'moved' needs a free host. */
export function wipeModeOf(faultIndex: number, freeHostCount: number): WipeMode {
  return freeHostCount > 0 && faultIndex % 2 === 1 ? 'moved' : 'wiped';
}

/** selfVoterWithLeader: a member's own view names a leader and lists the member itself as a voter. */
export function selfVoterWithLeader(view: ClusterView, self: string): boolean {
  return view.leader !== null && votersSeenBy(view, self).includes(self);
}

/** SelfVoterWait is the wait for a restarted member: when it reported itself a voter under a leader, and its last view. */
export interface SelfVoterWait {
  /** afterMs: from the wait's start until the member's own view named a leader and listed it as a voter, or null. */
  readonly afterMs: number | null;
  /** last: the member's last view in short ("leader L, voters V") or "no answer". */
  readonly last: string;
}

/** awaitSelfVoter polls the member at `addr` until its own view names a leader and lists itself a voter, within the bound. */
export async function awaitSelfVoter(addr: string, boundMs: number): Promise<SelfVoterWait> {
  const started = Date.now();
  let last = 'no answer';
  // The time bound ends the loop; the count bound only guards against a clock that does not move.
  const pollsMax = Math.ceil(boundMs / membershipPollMs) + 1;
  for (let poll = 1; poll <= pollsMax; poll++) {
    const view = await clusterView(addr, viewTimeoutMs);
    if (view !== null) {
      last = `leader ${view.leader ?? 'none'}, voters ${votersSeenBy(view, addr).join(',') || 'none'}`;
      if (selfVoterWithLeader(view, addr)) return { afterMs: Date.now() - started, last };
    }
    if (Date.now() - started >= boundMs) break;
    await sleep(membershipPollMs);
  }
  return { afterMs: null, last };
}
