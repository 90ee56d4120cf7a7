// overrides workload (PEERS.md §2.3 C3: "Operator disables an instance, then the instance re-registers or flips
// health | Partitions | The operator override persists"): ephemeral instances kept by Nacos v1 beats, whose clients
// restart now and then, an operator who takes instances out of rotation and back (and sets weights), and readers of
// every member's list and instance detail. checkers-overrides.ts judges.
//
// The contract (docs/ap.md "Operator changes", Nacos 2.x's "instance metadata"): an update of an ephemeral instance
// (PATCH, or PUT from a Java client) is an operator's override laid over what the client registered. The client's
// registrations (a restart: POST with its own fields and enabled=true), a deregistration followed by a registration
// within the tombstone retention (60 s), and health flips (expiry flags it unhealthy or removes it, a beat revives it
// or registers it again from its body) all keep the override. A disabled instance is never listed.
//
// Instances. One service per member (`jepsen-override-<k>`, the names chosen so that Cairn's own rule,
// src/ap/responsibility.ts, gives each member one while all are live, so every partition shape cuts some service's
// responsible member off), `slotsPerService` instances per service, one client each, for the whole run: a client
// restarts its own instance (the same address), it never takes a fresh one, because what C3 asks is whether the
// override survives the client's next registration. Element n is 127.0.0.14:(56000 + n); the client's weight is
// 1 + n % 3 (never an operator's weight, so a served weight says whose it is).
//
// Clients. A client registers (POST, ephemeral=true, enabled=true, its weight, the preserved.* metadata: beat every
// 1 s, unhealthy after 3 s, removed after 6 s, D2's timings) and beats every second (PUT /instance/beat with the
// RsInfo body, so an instance a member lost is registered again from the beat) through random members, retrying a
// failed beat once at another member. Every `eventGapMs` it does one of: `restart` (POST again), `redeploy`
// (DELETE, then POST `redeployGapMs` later, no beats in between: a restart that deregistered on shutdown), or
// `beat-pause` (no beats for `beatPauseMs`, 3.5-8 s: the instance is flagged unhealthy, and past 6 s removed; the
// next beat revives it or registers it again). Events stop at the run's deadline (an event under way finishes, so
// every instance ends registered); beats go on until the final phase ends, which begins only once no event is under
// way and one beat interval has passed since (quiesce): a pause begun just before the deadline can outlast the
// recovery window, and an instance it let expire is rightly gone from every member for a moment before its next beat
// registers it again, which the final rounds would otherwise take for a flap (C3 seed 52025, 2026-11-23).
//
// Operator. One per service (one logical process each: an action at a time), working as a person does: idle for
// `operatorIdleMs`, then a burst of 1-3 actions `operatorGapMs` apart, each on a random instance of its service,
// through a random member: `PATCH /nacos/v1/ns/instance?...&ephemeral=true&enabled=X` [&weight=W]. An instance is
// acted on about every 18 s, so a change usually stands through several client events and, when made during a
// partition, past the heal: what the checker judges is the change that stands. X flips more often than not (disabled 0.7 of the time after an enabled intent, enabled 0.5 after a
// disabled one, so instances spend more than half the run out of rotation: the state C3 is about), and
// `weightShare` of the actions set a new weight from operatorWeights. Every action names the whole override the
// operator wants: `enabled`, and the weight it last set once it has set one. Why: when C3 was built the override
// merged as one part, last writer wins; a PATCH naming only `enabled`, made on one side of a partition, carried that
// side's weight, and being the later write it won on the heal with that side's older weight. That loss of a
// concurrent partial change was the AP path's documented behaviour then, not what C3 asks, and with a sequential
// operator that names the whole override "the last acknowledged action wins" is exact under either merge. (Since
// e22e7d4 each attribute merges by its own version; the two-operator mode below, C3b, tests that.) Actions stop at
// the run's deadline.
//
// Two operators per service (operators 'per-attribute', case C3b): operator E only toggles `enabled` (PATCH
// enabled=X, nothing else) and operator W only sets a weight (PATCH weight=W, a fresh value each time: a weight is
// never set twice in a run, so a served weight names the action that set it), each its own logical process working
// in bursts as above, each action through a member drawn at random for it, so a partition often puts E's change of an
// instance on one side and W's on the other. W acts on the instance E acted on last with probability
// `sameInstanceShare` (at most once per E action), so that both attributes of one instance change in the same
// partition often, and each pair of changes then stands until the instance's next turn (about 18 s). Since the
// override merges attribute by attribute, each by the version of the write that set it (docs/ap.md "Operator
// changes"), both changes must stand after the heal: `enabled` from E's last action, the weight from W's. Under the
// older whole-override merge the later of the two carried its side's other attribute over the earlier one (a weight
// set on one side re-enabled an instance disabled on the other), which the checker flags.
//
// Positive control (operatorWrites 'client-register', case C3-control): the operator's changes are sent as a client
// would send them, `POST` (a registration) with enabled=X, the weight and the instance's own metadata. A registration
// is the client's own field, and the client's next registration (enabled=true, its weight) replaces it, as it should:
// the checker, which still expects operator semantics, must find disabled instances listed again.
//
// Observation. One reader per member: every `pollMs`, each service's list (`GET /instance/list`, the AP read:
// elements listed with weight and health) and the detail of one random instance of it (`GET /instance`, with its
// weight, and `enabled` when the answer carries it). Final phase (after the heal and the recovery window): every
// member's lists and every instance's detail in rounds every 500 ms, until a round agrees with the checker's
// expectation, then one Distro verify interval more (as D1), or until the bound.
//
// Faults: the generic partition loop (the runner's nemesis); nothing is scripted here.

import type { Outcome } from '../client.ts';
import { outcomeOfCode } from '../client.ts';
import { httpRequest } from '../client-http.ts';
import type { Cluster } from '../control.ts';
import type { Generator, PlannedOperation } from '../generator.ts';
import type { HistoryRecorder } from '../history.ts';
import { type Random, sleep } from '../random.ts';
import { beatTimeouts, metadataOf, servicesOnePerMember, type BeatTimeouts } from './beats.ts';
import { elementAddresses } from './element-addresses.ts';
import { distroVerifyMs } from './ephemeral.ts';

/** OperatorWrites is how the operator's changes are sent: as operator updates (C3) or as client registrations (the control). */
export type OperatorWrites = 'patch' | 'client-register';

/**
 * OverrideOperators is who changes a service's instances: one operator naming the whole override (C3), or two, one per
 * attribute (E: enabled, W: weight; C3b).
 */
export type OverrideOperators = 'one' | 'per-attribute';

/** overrideOperatorKinds lists the OverrideOperators values (the command line's choices). */
export const overrideOperatorKinds: readonly OverrideOperators[] = ['one', 'per-attribute'];

/** OverrideScope is what one operator action writes: the whole override (C3), or only `enabled` or the weight (C3b). */
export type OverrideScope = 'whole' | 'enabled' | 'weight';

/** ClientEvent is what a client does now and then besides beating. */
export type ClientEvent = 'restart' | 'redeploy' | 'beat-pause';

/** OverridesOptions shape the workload. */
export interface OverridesOptions {
  readonly slotsPerService: number;
  readonly timeouts: BeatTimeouts;
  /** eventGapMs: the time between a client's events ([min, max]). */
  readonly eventGapMs: readonly [number, number];
  /** eventShares: the probability of each event (they sum to 1). */
  readonly eventShares: Readonly<Record<ClientEvent, number>>;
  /** redeployGapMs: from a redeploy's DELETE to its POST (within the tombstone retention, 60 s). */
  readonly redeployGapMs: readonly [number, number];
  /** beatPauseMs: a beat pause's length: above the unhealthy timeout, sometimes above the delete timeout. */
  readonly beatPauseMs: readonly [number, number];
  /** operatorIdleMs: an operator's pause between two bursts of actions. */
  readonly operatorIdleMs: readonly [number, number];
  /** burstActions: the actions of one burst ([min, max]). */
  readonly burstActions: readonly [number, number];
  /** operatorGapMs: the time between two actions of one burst. */
  readonly operatorGapMs: readonly [number, number];
  /** weightShare: the share of actions that set a new weight. */
  readonly weightShare: number;
  readonly pollMs: number;
  readonly operatorWrites: OperatorWrites;
  readonly operators: OverrideOperators;
  /** sameInstanceShare: with per-attribute operators, the probability that W acts on the instance E acted on last. */
  readonly sameInstanceShare: number;
}

/**
 * defaultOverridesOptions: 4 instances per service (8 with per-attribute operators), an event every 3-10 s per client,
 * bursts of 1-3 actions every 4-12 s per operator. Two operators change a service's instances twice as often as one,
 * so per-attribute runs double the instances: each instance is still changed about every 18 s, and a pair of changes
 * made on the two sides of a partition often stands past the heal's settling time (8 s), when quiet reads judge it.
 */
export function defaultOverridesOptions(operatorWrites: OperatorWrites, operators: OverrideOperators = 'one'): OverridesOptions {
  return {
    slotsPerService: operators === 'per-attribute' ? 8 : 4,
    timeouts: beatTimeouts,
    eventGapMs: [3000, 10_000],
    eventShares: { restart: 0.4, redeploy: 0.35, 'beat-pause': 0.25 },
    redeployGapMs: [500, 3000],
    beatPauseMs: [3500, 8000],
    operatorIdleMs: [4000, 12_000],
    burstActions: [1, 3],
    operatorGapMs: [300, 1000],
    weightShare: 0.3,
    pollMs: 1000,
    operatorWrites,
    operators,
    sameInstanceShare: 0.8,
  };
}

/** freshWeightMin: operator W's first weight (C3b); it counts up from here, never a client's (1..3), at most WEIGHT_MAX (10 000). */
const freshWeightMin = 100;
const freshWeightMax = 10_000;

/** operatorWeights are the weights the operator sets: none is a client's (1..3). */
export const operatorWeights: readonly number[] = [10, 20, 30, 40, 50, 60, 70, 80, 90];

/** overrideElementsMax bounds the instances of a run (ports 56000..56199 of overrideIp). */
export const overrideElementsMax = 200;
const overrideIp = '127.0.0.14';
const overridePortBase = 56_000;
const overrideAddresses = elementAddresses('override', overrideIp, overridePortBase, overrideElementsMax);

/** requestTimeoutMs: a write's or beat's deadline, above a failed forward (2 s) plus its retry at the next member. */
const requestTimeoutMs = 4500;
/** readTimeoutMs: a read's deadline, short so a slow member does not stall its reader's round. */
const readTimeoutMs = 2000;
/** registerAttemptsMax: a client's registration is tried at most this often (at different members), 300 ms apart. */
const registerAttemptsMax = 6;
const registerRetryMs = 300;
/** quiescePollMs: how often the final phase looks whether a client event is still under way. */
const quiescePollMs = 50;
/** loopRoundsMax bounds every loop of the workload (a day at one round a second). */
const loopRoundsMax = 100_000;
/** finalRoundMs: the final phase's round period (D1's). */
const finalRoundMs = 500;
/** Process ids: clients, operators and readers apart from every other workload's (sessions end below 50 000 000). */
const clientProcessBase = 60_000_000;
const operatorProcessBase = 63_000_000;
/** weightOperatorOffset: operator W's processes (C3b) are operatorProcessBase + this + service index (below processStride). */
const weightOperatorOffset = 500;
const readProcessBase = 66_000_000;
const finalProcessBase = 69_000_000;
/** processStride: a process whose call ended 'info' continues under process + stride (slots stay far below it). */
const processStride = 1000;

/** overrideAddress is element n's "ip:port". */
export function overrideAddress(n: number): string {
  return overrideAddresses.address(n);
}

/** overrideElementOf inverts overrideAddress (null for anything else). */
export function overrideElementOf(ip: string, port: number): number | null {
  return overrideAddresses.elementOf(ip, port);
}

/** clientWeightOf is the weight element n's client registers with (1..3). */
export function clientWeightOf(element: number): number {
  return 1 + (element % 3);
}

/** OverrideService is one service of the run, the member responsible for it (all live), and its elements. */
export interface OverrideService {
  readonly name: string;
  readonly responsible: string;
  readonly elements: readonly number[];
}

/** overrideServices names one service per member, each owned (Cairn's rule, all members live) by a different member. */
export function overrideServices(members: readonly string[], slotsPerService: number): OverrideService[] {
  if (members.length * slotsPerService > overrideElementsMax) throw new RangeError(`${members.length * slotsPerService} instances exceed overrideElementsMax ${overrideElementsMax}`);
  const services = servicesOnePerMember(members, 'jepsen-override-');
  return services.map((service, index) => ({ ...service, elements: Array.from({ length: slotsPerService }, (_, slot) => index * slotsPerService + slot) }));
}

function instanceQuery(service: string, element: number): string {
  const address = overrideAddress(element);
  const colon = address.lastIndexOf(':');
  return `serviceName=${encodeURIComponent(service)}&ip=${address.slice(0, colon)}&port=${address.slice(colon + 1)}`;
}

function failureOf<T>(result: { readonly failure: string; readonly maybeSent: boolean }): Outcome<T> {
  return result.maybeSent ? { type: 'info', error: result.failure } : { type: 'fail', error: result.failure };
}

/** writeOutcome: a Nacos write's answer ("ok") or its failure. */
async function writeOutcome(addr: string, method: string, pathAndQuery: string): Promise<Outcome<unknown>> {
  const result = await httpRequest(addr, method, pathAndQuery, requestTimeoutMs);
  if (!('answer' in result)) return failureOf(result);
  const { answer } = result;
  if (answer.status === 200 && answer.text === 'ok') return { type: 'ok', value: null };
  return outcomeOfCode(answer.code, `status ${answer.status}: ${answer.text.slice(0, 200)}`);
}

/** registerOp is the client's registration: enabled=true, its own weight and metadata. */
function registerOp(service: string, element: number, event: string, timeouts: BeatTimeouts): PlannedOperation {
  const metadata = encodeURIComponent(JSON.stringify(metadataOf(timeouts)));
  const weight = clientWeightOf(element);
  const value = { service, element, weight, event };
  return {
    f: 'ovr-register',
    transport: 'http',
    value,
    run: (_client, addr) => writeOutcome(addr, 'POST', `/nacos/v1/ns/instance?${instanceQuery(service, element)}&ephemeral=true&enabled=true&weight=${weight}&metadata=${metadata}`),
    complete: () => value,
  };
}

/** deregisterOp is the client's deregistration on shutdown (a redeploy). */
function deregisterOp(service: string, element: number): PlannedOperation {
  return {
    f: 'ovr-deregister',
    transport: 'http',
    value: { service, element },
    run: (_client, addr) => writeOutcome(addr, 'DELETE', `/nacos/v1/ns/instance?${instanceQuery(service, element)}&ephemeral=true`),
    complete: () => ({ service, element }),
  };
}

/** beatOp sends one beat with its body (an unknown instance is registered again from it, with the client's weight). */
function beatOp(service: string, element: number, timeouts: BeatTimeouts): PlannedOperation {
  const address = overrideAddress(element);
  const colon = address.lastIndexOf(':');
  const body = encodeURIComponent(JSON.stringify({
    ip: address.slice(0, colon), port: Number(address.slice(colon + 1)), serviceName: service, cluster: 'DEFAULT',
    weight: clientWeightOf(element), metadata: metadataOf(timeouts), scheduled: true,
  }));
  return {
    f: 'ovr-beat',
    transport: 'http',
    value: { service, element },
    run: async (_client, addr): Promise<Outcome<unknown>> => {
      const result = await httpRequest(addr, 'PUT', `/nacos/v1/ns/instance/beat?${instanceQuery(service, element)}&beat=${body}`, requestTimeoutMs);
      if (!('answer' in result)) return failureOf(result);
      const { answer } = result;
      if (answer.status !== 200) return outcomeOfCode(answer.code, `status ${answer.status}: ${answer.text.slice(0, 200)}`);
      const parsed = JSON.parse(answer.text) as { code?: unknown };
      return { type: 'ok', value: typeof parsed.code === 'number' ? parsed.code : null };
    },
    complete: (code) => ({ service, element, code }),
  };
}

/** OperatorIntent is the override the operator wants for one instance: enabled, and the weight it set (null: none yet). */
export interface OperatorIntent {
  readonly enabled: boolean;
  readonly weight: number | null;
}

/**
 * operatorOp sends one operator action. As an update (C3): PATCH with enabled and, once the operator set one, the
 * weight. As a client registration (the control): POST with enabled, the weight (the client's when the operator set
 * none) and the instance's own metadata, as a client would.
 */
function operatorOp(service: string, element: number, intent: OperatorIntent, changesWeight: boolean, writes: OperatorWrites, timeouts: BeatTimeouts): PlannedOperation {
  const value = { service, element, enabled: intent.enabled, weight: intent.weight, changesWeight, writes, scope: 'whole' as OverrideScope };
  const query = `${instanceQuery(service, element)}&ephemeral=true&enabled=${intent.enabled}`;
  const request = writes === 'patch'
    ? { method: 'PATCH', path: `/nacos/v1/ns/instance?${query}${intent.weight === null ? '' : `&weight=${intent.weight}`}` }
    : { method: 'POST', path: `/nacos/v1/ns/instance?${query}&weight=${intent.weight ?? clientWeightOf(element)}&metadata=${encodeURIComponent(JSON.stringify(metadataOf(timeouts)))}` };
  return {
    f: 'ovr-operator',
    transport: 'http',
    value,
    run: (_client, addr) => writeOutcome(addr, request.method, request.path),
    complete: () => value,
  };
}

/**
 * attributeOp sends one action of a per-attribute operator (C3b): PATCH naming only `enabled` (operator E) or only
 * the weight (operator W). The history value says which (`scope`) and leaves the other attribute null.
 */
function attributeOp(service: string, element: number, change: { readonly enabled: boolean } | { readonly weight: number }): PlannedOperation {
  const scope: OverrideScope = 'enabled' in change ? 'enabled' : 'weight';
  const enabled = 'enabled' in change ? change.enabled : null;
  const weight = 'weight' in change ? change.weight : null;
  const value = { service, element, enabled, weight, changesWeight: weight !== null, writes: 'patch' as OperatorWrites, scope };
  const named = enabled !== null ? `enabled=${enabled}` : `weight=${String(weight)}`;
  return {
    f: 'ovr-operator',
    transport: 'http',
    value,
    run: (_client, addr) => writeOutcome(addr, 'PATCH', `/nacos/v1/ns/instance?${instanceQuery(service, element)}&ephemeral=true&${named}`),
    complete: () => value,
  };
}

/** ListedHost is one listed instance of the workload: element, weight, healthy. */
export type ListedHost = readonly [element: number, weight: number, healthy: boolean];

/** listOp lists a service from the member's local state (the AP read). */
function listOp(service: string, final: { readonly round: number } | null): PlannedOperation {
  return {
    f: 'ovr-read',
    transport: 'http',
    value: { service, ...(final === null ? {} : { final: true, round: final.round }) },
    run: async (_client, addr): Promise<Outcome<unknown>> => {
      const result = await httpRequest(addr, 'GET', `/nacos/v1/ns/instance/list?serviceName=${encodeURIComponent(service)}`, readTimeoutMs);
      if (!('answer' in result)) return failureOf(result);
      const { answer } = result;
      if (answer.status !== 200) return outcomeOfCode(answer.code, `status ${answer.status}: ${answer.text.slice(0, 200)}`);
      return { type: 'ok', value: (JSON.parse(answer.text) as { hosts?: unknown[] }).hosts ?? [] };
    },
    complete: (hosts) => {
      const listed: ListedHost[] = [];
      let foreign = 0;
      for (const host of Array.isArray(hosts) ? (hosts as { ip: string; port: number; weight?: number; healthy?: boolean }[]) : []) {
        const element = overrideElementOf(host.ip, host.port);
        if (element === null) foreign++;
        else listed.push([element, Number(host.weight), host.healthy !== false]);
      }
      listed.sort((a, b) => a[0] - b[0]);
      return { service, hosts: listed, ...(foreign > 0 ? { foreign } : {}) };
    },
  };
}

/** detailOp reads one instance's detail (`GET /instance`, local): found, weight, healthy, and enabled when given. */
function detailOp(service: string, element: number, final: { readonly round: number } | null): PlannedOperation {
  return {
    f: 'ovr-detail',
    transport: 'http',
    value: { service, element, ...(final === null ? {} : { final: true, round: final.round }) },
    run: async (_client, addr): Promise<Outcome<unknown>> => {
      const result = await httpRequest(addr, 'GET', `/nacos/v1/ns/instance?${instanceQuery(service, element)}`, readTimeoutMs);
      if (!('answer' in result)) return failureOf(result);
      const { answer } = result;
      if (answer.status === 404 && (answer.code === 'CAIRN_INSTANCE_NOT_FOUND' || answer.code === 'CAIRN_SERVICE_NOT_FOUND')) return { type: 'ok', value: null };
      if (answer.status !== 200) return outcomeOfCode(answer.code, `status ${answer.status}: ${answer.text.slice(0, 200)}`);
      return { type: 'ok', value: JSON.parse(answer.text) as unknown };
    },
    complete: (detail) => {
      if (detail === null || typeof detail !== 'object') return { service, element, found: false };
      const body = detail as { weight?: unknown; healthy?: unknown; enabled?: unknown };
      return {
        service, element, found: true, weight: Number(body.weight), healthy: body.healthy !== false,
        enabled: typeof body.enabled === 'boolean' ? body.enabled : null,
      };
    },
  };
}

/** OverridesDeps are what the workload acts on. */
export interface OverridesDeps {
  readonly cluster: Cluster;
  readonly recorder: HistoryRecorder;
  readonly generator: Generator;
}

/** OverridesSetup is the history's `overrides-setup` observation. */
export interface OverridesSetup {
  readonly members: readonly string[];
  readonly services: readonly OverrideService[];
  readonly clientWeights: Readonly<Record<string, number>>;
  readonly timeouts: BeatTimeouts;
  readonly pollMs: number;
  readonly operatorWrites: OperatorWrites;
  /** operators: one per service, or one per attribute (absent in histories from before C3b: 'one'). */
  readonly operators?: OverrideOperators;
}

/** OverridesWorkload runs the clients, the operators and the readers. */
export class OverridesWorkload {
  readonly services: readonly OverrideService[];
  private beating = true;
  /** eventsUntil: clients start no event (restart, redeploy, beat pause) after this time (Date.now() ms). */
  private eventsUntil = Number.POSITIVE_INFINITY;
  /** eventsUnderWay: client events begun and not finished (at most one per client). */
  private eventsUnderWay = 0;
  private reading = true;
  private readonly clients: Promise<void>[] = [];
  private readonly readers: Promise<void>[] = [];
  /** intents: per element, the override the operator wants (its last action's, whatever its outcome). */
  private readonly intents = new Map<number, OperatorIntent>();
  /** lastEnabledElement: per service, the instance operator E acted on last, until W followed it (C3b; W follows it sometimes). */
  private readonly lastEnabledElement = new Map<string, number>();
  /** nextFreshWeight: operator W's next weight (C3b), counting up, so no weight is set twice in a run. */
  private nextFreshWeight = freshWeightMin;

  constructor(
    readonly options: OverridesOptions,
    private readonly deps: OverridesDeps,
  ) {
    const shares = Object.values(options.eventShares).reduce((sum, share) => sum + share, 0);
    if (Math.abs(shares - 1) > 1e-9) throw new RangeError(`overrides: event shares sum to ${shares}, not 1`);
    if (options.operators === 'per-attribute' && options.operatorWrites !== 'patch') throw new RangeError('overrides: per-attribute operators send PATCH only (no client-register control)');
    this.services = overrideServices(this.members, options.slotsPerService);
  }

  private get members(): string[] {
    return this.deps.cluster.members.map((member) => member.addr);
  }

  /** start records `overrides-setup` and launches the clients and the readers (the operators run in run()). */
  start(random: Random): void {
    const clientWeights: Record<string, number> = {};
    for (const service of this.services) for (const element of service.elements) clientWeights[String(element)] = clientWeightOf(element);
    const setup: OverridesSetup = {
      members: [...this.members].sort(), services: this.services, clientWeights, timeouts: this.options.timeouts, pollMs: this.options.pollMs,
      operatorWrites: this.options.operatorWrites, operators: this.options.operators,
    };
    this.deps.recorder.observe('overrides-setup', setup, this.deps.recorder.now());
    for (const [index, member] of this.members.entries()) this.readers.push(this.readLoop(member, readProcessBase + index, random.fork()));
    let slot = 0;
    for (const service of this.services) for (const element of service.elements) this.clients.push(this.clientLoop(service.name, element, clientProcessBase + slot++, random.fork()));
  }

  /**
   * run lets the operators act until `deadline` (Date.now() ms) and stops the clients' events there; resolves when
   * every operator has stopped (the clients' events under way finish on their own; finalPhase waits for them).
   */
  async run(deadline: number, random: Random): Promise<void> {
    this.eventsUntil = deadline;
    if (this.options.operators === 'per-attribute') {
      await Promise.all(this.services.flatMap((service, index) => [
        this.operatorLoop(service, operatorProcessBase + index, deadline, random.fork(), (element, r) => this.enabledAction(service, element, r)),
        this.operatorLoop(service, operatorProcessBase + weightOperatorOffset + index, deadline, random.fork(), (element) => this.weightAction(service, element), service),
      ]));
      return;
    }
    await Promise.all(this.services.map((service, index) => this.operatorLoop(service, operatorProcessBase + index, deadline, random.fork(), (element, r) => this.wholeAction(service, element, r))));
  }

  /**
   * quiesce waits until no client event is under way (the longest: a beat pause, or a redeploy's gap and its
   * registration retries), then one beat interval more, so each client's beat after it has landed; recorded as an
   * `ovr-quiet` observation. Bounded: past the longest event it gives up waiting and says so in the observation.
   */
  private async quiesce(): Promise<void> {
    const { recorder } = this.deps;
    const boundMs = Math.max(this.options.beatPauseMs[1], this.options.redeployGapMs[1] + registerAttemptsMax * registerRetryMs) + 5000;
    const started = Date.now();
    while (this.eventsUnderWay > 0 && Date.now() - started < boundMs) await sleep(quiescePollMs);
    const waitedMs = Date.now() - started;
    await sleep(this.options.timeouts.intervalMs);
    recorder.observe('ovr-quiet', { waitedMs, eventsUnderWay: this.eventsUnderWay }, recorder.now());
  }

  /** stopAll ends the clients and the readers (after an error; normally finalPhase). */
  async stopAll(): Promise<void> {
    this.eventsUntil = 0;
    this.beating = false;
    this.reading = false;
    await Promise.all([...this.clients, ...this.readers]);
  }

  private pickMember(random: Random, avoid: string | null): string {
    const allowed = this.members.filter((member) => member !== avoid);
    return random.pick(allowed.length > 0 ? allowed : this.members);
  }

  private async clientLoop(service: string, element: number, firstProcess: number, random: Random): Promise<void> {
    const { generator } = this.deps;
    const timeouts = this.options.timeouts;
    let process = firstProcess;
    const call = async (op: PlannedOperation, avoid: string | null): Promise<{ type: 'ok' | 'fail' | 'info'; node: string }> => {
      const node = this.pickMember(random, avoid);
      const type = await generator.invokeOn(op, process, node, random);
      if (type === 'info') process += processStride;
      return { type, node };
    };
    const register = async (event: string): Promise<void> => {
      let avoid: string | null = null;
      for (let attempt = 0; attempt < registerAttemptsMax; attempt++) {
        const outcome = await call(registerOp(service, element, event, timeouts), avoid);
        if (outcome.type === 'ok') return;
        avoid = outcome.node;
        await sleep(registerRetryMs);
      }
    };
    await sleep(random.float() * timeouts.intervalMs);
    await register('start');
    let nextEventAt = Date.now() + random.between(...this.options.eventGapMs);
    for (let round = 0; this.beating && round < loopRoundsMax; round++) {
      const started = Date.now();
      if (started >= nextEventAt && started < this.eventsUntil) {
        this.eventsUnderWay++;
        try {
          await this.clientEvent(service, element, random, register, call);
        } finally {
          this.eventsUnderWay--;
        }
        nextEventAt = Date.now() + random.between(...this.options.eventGapMs);
      }
      const outcome = await call(beatOp(service, element, timeouts), null);
      if (outcome.type !== 'ok') await call(beatOp(service, element, timeouts), outcome.node);
      await sleep(Math.max(0, timeouts.intervalMs - (Date.now() - started)));
    }
  }

  /** clientEvent plays one client event: a restart, a redeploy (deregistration, gap, registration) or a beat pause. */
  private async clientEvent(
    service: string, element: number, random: Random,
    register: (event: string) => Promise<void>,
    call: (op: PlannedOperation, avoid: string | null) => Promise<{ type: 'ok' | 'fail' | 'info'; node: string }>,
  ): Promise<void> {
    const { recorder } = this.deps;
    const draw = random.float();
    const shares = this.options.eventShares;
    const event: ClientEvent = draw < shares.restart ? 'restart' : draw < shares.restart + shares.redeploy ? 'redeploy' : 'beat-pause';
    switch (event) {
      case 'restart':
        await register('restart');
        return;
      case 'redeploy': {
        const outcome = await call(deregisterOp(service, element), null);
        if (outcome.type !== 'ok') await call(deregisterOp(service, element), outcome.node);
        await sleep(random.between(...this.options.redeployGapMs));
        await register('redeploy');
        return;
      }
      case 'beat-pause': {
        const ms = random.between(...this.options.beatPauseMs);
        recorder.observe('ovr-beat-pause', { service, element, ms }, recorder.now());
        await sleep(ms);
        recorder.observe('ovr-beat-resume', { service, element }, recorder.now());
        return;
      }
    }
  }

  /** nextIntent draws an operator action on an instance whose intent is `current` (see the file comment). */
  private nextIntent(current: OperatorIntent, random: Random): { intent: OperatorIntent; changesWeight: boolean } {
    const enabled = current.enabled ? !random.chance(0.7) : random.chance(0.5);
    const changesWeight = random.chance(this.options.weightShare);
    if (!changesWeight) return { intent: { enabled, weight: current.weight }, changesWeight };
    const choices = operatorWeights.filter((weight) => weight !== current.weight);
    return { intent: { enabled, weight: random.pick(choices) }, changesWeight };
  }

  /** wholeAction is the one operator's next action on `element` (C3): the whole override it wants. */
  private wholeAction(service: OverrideService, element: number, random: Random): PlannedOperation {
    const { intent, changesWeight } = this.nextIntent(this.intents.get(element) ?? { enabled: true, weight: null }, random);
    // The intent follows every action, whatever its outcome: the next action names it again (see the file comment).
    this.intents.set(element, intent);
    return operatorOp(service.name, element, intent, changesWeight, this.options.operatorWrites, this.options.timeouts);
  }

  /** enabledAction is operator E's next action on `element` (C3b): `enabled` only, flipped as nextIntent does. */
  private enabledAction(service: OverrideService, element: number, random: Random): PlannedOperation {
    const current = this.intents.get(element) ?? { enabled: true, weight: null };
    const enabled = current.enabled ? !random.chance(0.7) : random.chance(0.5);
    this.intents.set(element, { enabled, weight: null });
    this.lastEnabledElement.set(service.name, element);
    return attributeOp(service.name, element, { enabled });
  }

  /** weightAction is operator W's next action on `element` (C3b): a weight never set before in this run. */
  private weightAction(service: OverrideService, element: number): PlannedOperation {
    const weight = this.nextFreshWeight;
    this.nextFreshWeight = weight >= freshWeightMax ? freshWeightMin : weight + 1;
    return attributeOp(service.name, element, { weight });
  }

  /**
   * operatorLoop is one operator of `service` (one logical process): bursts of actions, each `next(element)` on a
   * random instance (or, with `follows`, operator W of C3b, E's last instance with probability sameInstanceShare),
   * through a member drawn for it.
   */
  private async operatorLoop(
    service: OverrideService, firstProcess: number, deadline: number, random: Random,
    next: (element: number, random: Random) => PlannedOperation, follows: OverrideService | null = null,
  ): Promise<void> {
    let process = firstProcess;
    let burstLeft = 0;
    for (let round = 0; round < loopRoundsMax; round++) {
      const idle = burstLeft === 0;
      if (idle) burstLeft = random.between(...this.options.burstActions);
      await sleep(Math.min(random.between(...(idle ? this.options.operatorIdleMs : this.options.operatorGapMs)), Math.max(0, deadline - Date.now())));
      if (Date.now() >= deadline) return;
      burstLeft--;
      const followed = follows === null ? undefined : this.lastEnabledElement.get(follows.name);
      const follow = followed !== undefined && random.chance(this.options.sameInstanceShare);
      // W follows each of E's actions at most once: more would overwrite its own change of that instance at once.
      if (follow && follows !== null) this.lastEnabledElement.delete(follows.name);
      const element = follow ? followed : random.pick(service.elements);
      const op = next(element, random);
      if (await this.deps.generator.invokeOn(op, process, this.pickMember(random, null), random) === 'info') process += processStride;
    }
  }

  private async readLoop(member: string, firstProcess: number, random: Random): Promise<void> {
    let process = firstProcess;
    for (let round = 0; this.reading && round < loopRoundsMax; round++) {
      const started = Date.now();
      for (const service of this.services) {
        if (await this.deps.generator.invokeOn(listOp(service.name, null), process, member, random) === 'info') process += processStride;
        const element = random.pick(service.elements);
        if (await this.deps.generator.invokeOn(detailOp(service.name, element, null), process, member, random) === 'info') process += processStride;
      }
      await sleep(Math.max(0, this.options.pollMs - (Date.now() - started)));
    }
  }

  /**
   * finalPhase (after the heal and the recovery window): stops the periodic readers, waits for the clients to be
   * steady (quiesce, which spends part of the time to `deadline`), then reads every member's lists and every
   * instance's detail (members in parallel) in rounds every finalRoundMs, until `agrees(round)` says a round meets the
   * expectation, then for distroVerifyMs + 1 s more, or until `deadline` (Date.now() ms); then stops the clients. Returns the ms from the start of the phase to the first agreeing round (null: none).
   */
  async finalPhase(deadline: number, random: Random, agrees: (round: number) => boolean): Promise<number | null> {
    this.eventsUntil = 0;
    this.reading = false;
    await Promise.all(this.readers);
    await this.quiesce();
    const phaseStart = Date.now();
    let agreedAfterMs: number | null = null;
    let stableUntil = Number.POSITIVE_INFINITY;
    // One process per member, moved up by processStride after an unknown outcome (members read in parallel).
    const processes = this.members.map((_, index) => finalProcessBase + index);
    for (let round = 0; round < loopRoundsMax && Date.now() < Math.min(deadline, stableUntil); round++) {
      const started = Date.now();
      await Promise.all(this.members.map(async (member, index) => {
        const invoke = async (op: PlannedOperation): Promise<void> => {
          if (await this.deps.generator.invokeOn(op, processes[index] ?? finalProcessBase, member, random) === 'info') processes[index] = (processes[index] ?? finalProcessBase) + processStride;
        };
        for (const service of this.services) {
          await invoke(listOp(service.name, { round }));
          for (const element of service.elements) await invoke(detailOp(service.name, element, { round }));
        }
      }));
      if (agreedAfterMs === null && agrees(round)) {
        agreedAfterMs = Date.now() - phaseStart;
        stableUntil = Date.now() + distroVerifyMs + 1000;
      }
      await sleep(Math.max(0, finalRoundMs - (Date.now() - started)));
    }
    this.beating = false;
    await Promise.all(this.clients);
    return agreedAfterMs;
  }
}
