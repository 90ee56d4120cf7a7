// beats workload (PEERS.md §2.3 D2, D4): ephemeral instances kept alive by Nacos v1 client beats
// (`PUT /nacos/v1/ns/instance/beat`), their expiry, and faults aimed at the member responsible for their service.
//
// Instances. One service per member (`jepsen-beat-<k>`, the names chosen so that Cairn's own rule,
// src/ap/responsibility.ts over the sorted member addresses, gives each member exactly one while all are live), and
// `slotsPerService` beaters per service. A beater registers a fresh instance (POST, ephemeral=true) whose metadata
// sets short per-instance timings (`preserved.heart.beat.interval` 1 s, `preserved.heart.beat.timeout` 3 s,
// `preserved.ip.delete.timeout` 6 s: Nacos's 5/15/30 s divided by five), beats it every interval (the interval the
// answer names, as the Nacos clients do) to a random member, with the beat body (the npm `nacos` client's RsInfo, so
// an instance the member does not know is registered again from it), and on a failed or unknown beat tries once more
// at another member at once (the Java client's failover). After a random life it stops beating on purpose (an
// observer line `beat-stop`) and starts a fresh instance in its slot at once. The stopped instance must expire.
//
// Observation. One reader per member lists every service from that member's local state (the AP read) every
// `pollMs`, recording each instance's presence and `healthy` flag (`beat-read`). checkers-beats.ts judges.
//
// Faults (scripted here, one at a time; the generic partition and kill loops do not run with this workload):
// - with --nemesis partition (D2): `isolate-responsible` cuts the member responsible for a random service from every
//   other member (both ways; the harness's clients still reach it), `client-cut` makes the beaters avoid that member
//   (the client cannot reach it: its beats go to the others, which forward them to it), and
//   `isolate-responsible+client` does both (the isolated member hears no beat at all).
// - with --nemesis kill (D4): `kill` SIGKILLs the member responsible for a service and restarts it; the same
//   service's member is killed `killsPerFocus` times in a row before the focus moves to another service, so handovers
//   of one service follow each other closely (the TTL must not be reset for ever by them).
// - with the fault `all-clients-cut` (D3, mass heartbeat loss; massCutBeatsOptions): every beater's connections leave
//   from its own loopback address, `beatClientSource` (127.0.0.15, the last of the harness's range, so D3 runs 4
//   members on 127.0.0.11-14; never a member's and never listened on), and a
//   cut drops every packet between that address and every member, both ways (tagged iptables rules, iptables.ts), for
//   longer than the delete timeout. The readers and the harness's other traffic leave from 127.0.0.1 and go on, so the
//   members are observed throughout the cut. Each cut is checked from both sides when it starts (a request from the
//   beaters' address must time out, one from 127.0.0.1 must be answered): a cut that does not cut is a problem.
// Every fault is a nemesis line with the standard names (start-partition with its grudge, start-kill with its
// members, start-client-cut, and start-clients-cut for D3), so the timeline shades it and the checker knows who
// could hear whom.

import { responsibleMember, serviceIdOf } from '../../src/ap/responsibility.ts';
import type { MemberCgroups } from '../cgroup.ts';
import type { Outcome } from '../client.ts';
import { outcomeOfCode } from '../client.ts';
import { clusterView, httpRequest, httpRequestFrom, type HttpResult } from '../client-http.ts';
import type { Cluster, Member } from '../control.ts';
import type { Generator, PlannedOperation } from '../generator.ts';
import type { HistoryRecorder } from '../history.ts';
import type { Drop, Firewall } from '../iptables.ts';
import { type Random, sleep } from '../random.ts';
import { elementAddresses } from './element-addresses.ts';

/** BeatTimeouts are the per-instance timings the workload writes into `preserved.*` metadata (milliseconds). */
export interface BeatTimeouts {
  readonly intervalMs: number;
  readonly unhealthyMs: number;
  readonly removeMs: number;
}

/** beatTimeouts: Nacos's defaults (5 s, 15 s, 30 s) divided by five, so a 60 s run sees many expiry cycles. */
export const beatTimeouts: BeatTimeouts = { intervalMs: 1000, unhealthyMs: 3000, removeMs: 6000 };

/** BeatFaultKind is one scripted fault of the workload. */
export type BeatFaultKind = 'isolate-responsible' | 'client-cut' | 'isolate-responsible+client' | 'kill' | 'all-clients-cut';

/** beatFaultKinds lists every scripted fault, for the command line. */
export const beatFaultKinds: readonly BeatFaultKind[] = ['isolate-responsible', 'client-cut', 'isolate-responsible+client', 'kill', 'all-clients-cut'];

/** BeatsOptions shape the workload. */
export interface BeatsOptions {
  readonly slotsPerService: number;
  readonly timeouts: BeatTimeouts;
  /** lifeMs: how long an instance is beaten before its beater stops on purpose ([min, max]). */
  readonly lifeMs: readonly [number, number];
  /** pollMs: how often each member's lists are read. */
  readonly pollMs: number;
  readonly faults: readonly BeatFaultKind[];
  readonly faultMs: readonly [number, number];
  readonly quietMs: readonly [number, number];
  /** killsPerFocus: consecutive kills aimed at the same service's responsible member. */
  readonly killsPerFocus: number;
  /**
   * clientSource: the loopback address the beaters' connections leave from (D3 cuts it), or null for the kernel's
   * choice (127.0.0.1, shared with the readers: D2, D4).
   */
  readonly clientSource: string | null;
  /** recoveryReserveMs: D3 starts a cut only when this much of the run is left after it (the recovery bound's time). */
  readonly recoveryReserveMs: number;
}

/** defaultBeatsOptions: 4 beaters per service, lives of 5-15 s, every member read each second. */
export function defaultBeatsOptions(faults: readonly BeatFaultKind[], faultMs: readonly [number, number], quietMs: readonly [number, number]): BeatsOptions {
  return { slotsPerService: 4, timeouts: beatTimeouts, lifeMs: [5000, 15_000], pollMs: 1000, faults, faultMs, quietMs, killsPerFocus: 3, clientSource: null, recoveryReserveMs: 0 };
}

/**
 * beatClientSource is the address D3's beaters send from: the last of the harness's reserved 127.0.0.11-15, so a run
 * that uses it has at most 4 members (127.0.0.11-14); the workload refuses a cluster that includes it.
 */
export const beatClientSource = '127.0.0.15';

/**
 * massCutBeatsOptions: D3 (mass heartbeat loss). The beaters send from beatClientSource and live 15-40 s, so most
 * instances span a cut (11-14 s in the suite, beyond the 6 s delete timeout) and come back after it;
 * `recoveryReserveMs` keeps each cut's recovery window inside the run.
 */
export function massCutBeatsOptions(faultMs: readonly [number, number], quietMs: readonly [number, number], recoveryReserveMs: number): BeatsOptions {
  return { ...defaultBeatsOptions(['all-clients-cut'], faultMs, quietMs), lifeMs: [15_000, 40_000], clientSource: beatClientSource, recoveryReserveMs };
}

/** Send is how a beater's request leaves (from the client address of the options, or the kernel's choice). */
type Send = (addr: string, method: string, pathAndQuery: string, timeoutMs: number) => Promise<HttpResult>;

function senderOf(source: string | null): Send {
  if (source === null) return (addr, method, pathAndQuery, timeoutMs) => httpRequest(addr, method, pathAndQuery, timeoutMs);
  return (addr, method, pathAndQuery, timeoutMs) => httpRequestFrom(source, addr, method, pathAndQuery, timeoutMs);
}

/** beatElementsMax bounds the instances of a run (ports 62000..64999). */
export const beatElementsMax = 3000;
const beatIp = '127.0.0.13';
const beatPortBase = 62_000;
/** beatRequestTimeoutMs: a beat's deadline, above a failed forward (2 s) plus its retry at the next member. */
export const beatRequestTimeoutMs = 4500;
/** readTimeoutMs: a list read's deadline, short so a paused or cut reader does not stall its round. */
const readTimeoutMs = 2000;
/** cutProbeTimeoutMs: the probes that check a D3 cut, above an answer's usual milliseconds, below a beat interval. */
const cutProbeTimeoutMs = 1500;
/** serviceNameTriesMax bounds the search for service names that give every member one service. */
const serviceNameTriesMax = 10_000;
/** faultIdBase numbers this workload's faults apart from the generic nemesis's. */
const faultIdBase = 2_000_000;
/** beatProcessBase, readProcessBase: process ids of the beaters and readers (above the runner's final reads; a beater
 * moves up by processStride per unknown outcome, so 10 000 of them stay below the readers). */
export const beatProcessBase = 20_000_000;
const readProcessBase = 30_000_000;
/** processStride: a beater or reader whose call ended 'info' continues under process + stride. */
const processStride = 1000;

const beatAddresses = elementAddresses('beat', beatIp, beatPortBase, beatElementsMax);

/** beatAddress is element n's "ip:port". */
export function beatAddress(n: number): string {
  return beatAddresses.address(n);
}

/** beatElementOf inverts beatAddress (null for anything else). */
export function beatElementOf(ip: string, port: number): number | null {
  return beatAddresses.elementOf(ip, port);
}

/** beatServices names one service per member, each owned (Cairn's rule, all members live) by a different member. */
export function beatServices(members: readonly string[]): { readonly name: string; readonly responsible: string }[] {
  return servicesOnePerMember(members, 'jepsen-beat-');
}

/**
 * servicesOnePerMember names one service per member (`prefix` and a number), each owned by a different member under
 * Cairn's responsibility rule with every member live; sorted by name.
 */
export function servicesOnePerMember(members: readonly string[], prefix: string): { readonly name: string; readonly responsible: string }[] {
  const sorted = [...members].sort();
  const chosen = new Map<string, string>();
  for (let k = 0; k < serviceNameTriesMax && chosen.size < sorted.length; k++) {
    const name = `${prefix}${k}`;
    const owner = responsibleMember(serviceIdOf('public', 'DEFAULT_GROUP', name), sorted);
    if (!chosen.has(owner)) chosen.set(owner, name);
  }
  if (chosen.size < sorted.length) throw new Error(`no service names found that give each of ${sorted.length} members one service`);
  return [...chosen].map(([responsible, name]) => ({ name, responsible })).sort((a, b) => a.name.localeCompare(b.name));
}

/** metadataOf is the preserved.* metadata that gives an instance `timeouts`. */
export function metadataOf(timeouts: BeatTimeouts): Record<string, string> {
  return {
    'preserved.heart.beat.interval': String(timeouts.intervalMs),
    'preserved.heart.beat.timeout': String(timeouts.unhealthyMs),
    'preserved.ip.delete.timeout': String(timeouts.removeMs),
  };
}

function instanceQuery(service: string, element: number): string {
  const [ip, port] = beatAddress(element).split(':');
  return `serviceName=${encodeURIComponent(service)}&ip=${ip ?? ''}&port=${port ?? ''}`;
}

function failureOf<T>(result: { readonly failure: string; readonly maybeSent: boolean }): Outcome<T> {
  return result.maybeSent ? { type: 'info', error: result.failure } : { type: 'fail', error: result.failure };
}

/** registerOp registers element `element` of `service` as an ephemeral instance with the short timings. */
function registerOp(service: string, element: number, slot: number, timeouts: BeatTimeouts, send: Send): PlannedOperation {
  const metadata = encodeURIComponent(JSON.stringify(metadataOf(timeouts)));
  return {
    f: 'beat-register',
    transport: 'http',
    value: { service, element, slot },
    run: async (_client, addr): Promise<Outcome<unknown>> => {
      const result = await send(addr, 'POST', `/nacos/v1/ns/instance?${instanceQuery(service, element)}&ephemeral=true&metadata=${metadata}`, beatRequestTimeoutMs);
      if (!('answer' in result)) return failureOf(result);
      const { answer } = result;
      if (answer.status === 200 && answer.text === 'ok') return { type: 'ok', value: null };
      return outcomeOfCode(answer.code, `status ${answer.status}: ${answer.text.slice(0, 200)}`);
    },
    complete: () => ({ service, element, slot }),
  };
}

/** BeatAnswer is what a beat's answer said: Nacos's code (10200 found, 20404 unknown) and the interval to keep. */
interface BeatAnswer {
  readonly code: number;
  readonly clientBeatInterval: number;
}

/** beatOp sends one beat with its body (so an unknown instance is registered again from it). */
function beatOp(service: string, element: number, slot: number, timeouts: BeatTimeouts, send: Send, onAnswer: (answer: BeatAnswer) => void): PlannedOperation {
  const [ip, port] = beatAddress(element).split(':');
  const body = encodeURIComponent(JSON.stringify({ ip, port: Number(port), serviceName: service, cluster: 'DEFAULT', weight: 1, metadata: metadataOf(timeouts), scheduled: true }));
  return {
    f: 'beat',
    transport: 'http',
    value: { service, element, slot },
    run: async (_client, addr): Promise<Outcome<unknown>> => {
      const result = await send(addr, 'PUT', `/nacos/v1/ns/instance/beat?${instanceQuery(service, element)}&beat=${body}`, beatRequestTimeoutMs);
      if (!('answer' in result)) return failureOf(result);
      const { answer } = result;
      if (answer.status !== 200) return outcomeOfCode(answer.code, `status ${answer.status}: ${answer.text.slice(0, 200)}`);
      const parsed = JSON.parse(answer.text) as Partial<BeatAnswer>;
      if (typeof parsed.code !== 'number' || typeof parsed.clientBeatInterval !== 'number') return { type: 'info', error: `unexpected beat answer: ${answer.text.slice(0, 200)}` };
      return { type: 'ok', value: { code: parsed.code, clientBeatInterval: parsed.clientBeatInterval } };
    },
    complete: (answer) => {
      onAnswer(answer as BeatAnswer);
      return { service, element, slot, ...(answer as BeatAnswer) };
    },
  };
}

/** readOp lists a service from the member's local state: elements present, and those reported unhealthy. */
function readOp(service: string): PlannedOperation {
  return {
    f: 'beat-read',
    transport: 'http',
    value: { service },
    run: async (_client, addr): Promise<Outcome<unknown>> => {
      const result = await httpRequest(addr, 'GET', `/nacos/v1/ns/instance/list?serviceName=${encodeURIComponent(service)}`, readTimeoutMs);
      if (!('answer' in result)) return failureOf(result);
      const { answer } = result;
      if (answer.status !== 200) return outcomeOfCode(answer.code, `status ${answer.status}: ${answer.text.slice(0, 200)}`);
      const hosts = (JSON.parse(answer.text) as { hosts?: { ip: string; port: number; healthy?: boolean }[] }).hosts ?? [];
      return { type: 'ok', value: hosts };
    },
    complete: (value) => {
      const present: number[] = [];
      const unhealthy: number[] = [];
      let foreign = 0;
      for (const host of Array.isArray(value) ? (value as { ip: string; port: number; healthy?: boolean }[]) : []) {
        const element = beatElementOf(host.ip, host.port);
        if (element === null) {
          foreign++;
          continue;
        }
        present.push(element);
        if (host.healthy === false) unhealthy.push(element);
      }
      present.sort((a, b) => a - b);
      unhealthy.sort((a, b) => a - b);
      return { service, present, unhealthy, ...(foreign > 0 ? { foreign } : {}) };
    },
  };
}

/** BeatsDeps are what the workload acts on. */
export interface BeatsDeps {
  readonly cluster: Cluster;
  readonly recorder: HistoryRecorder;
  readonly firewall: Firewall | null;
  readonly cgroups: MemberCgroups | null;
  readonly generator: Generator;
}

/** BeatsSetup is the history's `beats-setup` observation. */
export interface BeatsSetup {
  readonly members: readonly string[];
  readonly services: readonly { readonly name: string; readonly responsible: string }[];
  readonly timeouts: BeatTimeouts;
  readonly pollMs: number;
  readonly faults: readonly BeatFaultKind[];
  readonly faultMs: readonly [number, number];
  readonly quietMs: readonly [number, number];
  /** clientSource: the beaters' source address (D3), or null. */
  readonly clientSource: string | null;
}

/** BeatsWorkload runs the beaters, the readers and the scripted faults. */
export class BeatsWorkload {
  readonly services: readonly { readonly name: string; readonly responsible: string }[];
  /** problems lists what went wrong while scripting (a rule that could not be applied, a restart that failed). */
  readonly problems: string[] = [];
  /** notes lists observations about Cairn's answers (an unexpected beat interval, for instance). */
  readonly notes: string[] = [];
  private nextElement = 0;
  private nextFaultId = faultIdBase;
  private beating = true;
  private reading = true;
  /** clientCut holds the members the beaters must not call (the client cannot reach them). */
  private readonly clientCut = new Set<string>();
  private readonly beaters: Promise<void>[] = [];
  private readonly readers: Promise<void>[] = [];
  /** lastRounds: per member, when its last round ended and how many instances it listed (null: a read failed). */
  private readonly lastRounds = new Map<string, { readonly at: number; readonly listed: number | null }>();
  /** intervalsSeen: beat intervals answered that differ from the metadata's (at most 20 kept). */
  private readonly intervalsSeen = new Set<number>();
  private readonly send: Send;

  constructor(
    readonly options: BeatsOptions,
    private readonly deps: BeatsDeps,
  ) {
    const source = options.clientSource;
    if (source !== null && deps.cluster.members.some((member) => member.host === source)) {
      throw new Error(`the beaters' source address ${source} is a member's: a run whose beaters send from it has at most ${deps.cluster.members.findIndex((member) => member.host === source)} members`);
    }
    this.services = beatServices(deps.cluster.members.map((member) => member.addr));
    this.send = senderOf(source);
  }

  private get members(): string[] {
    return this.deps.cluster.members.map((member) => member.addr);
  }

  /** start records `beats-setup` and launches the readers and the beaters. */
  start(random: Random): void {
    const setup: BeatsSetup = {
      members: [...this.members].sort(), services: this.services, timeouts: this.options.timeouts, pollMs: this.options.pollMs,
      faults: this.options.faults, faultMs: this.options.faultMs, quietMs: this.options.quietMs, clientSource: this.options.clientSource,
    };
    this.deps.recorder.observe('beats-setup', setup, this.deps.recorder.now());
    for (const [index, member] of this.members.entries()) this.readers.push(this.readLoop(member, readProcessBase + index, random.fork()));
    const slots = this.services.length * this.options.slotsPerService;
    for (let slot = 0; slot < slots; slot++) this.beaters.push(this.beatLoop(slot, random.fork()));
  }

  /** stopBeating makes every beater stop its instance (a `beat-stop` line each) and resolves when all have. */
  async stopBeating(): Promise<void> {
    this.beating = false;
    await Promise.all(this.beaters);
    if (this.intervalsSeen.size > 0) this.notes.push(`beats: answers named clientBeatInterval ${[...this.intervalsSeen].sort((a, b) => a - b).join(', ')} ms (metadata asks ${this.options.timeouts.intervalMs} ms)`);
  }

  /** stopAll ends the beaters and the readers (after an error; normally stopBeating then finalPhase). */
  async stopAll(): Promise<void> {
    this.beating = false;
    this.reading = false;
    await Promise.all([...this.beaters, ...this.readers]);
  }

  /** stopReading ends the readers and resolves when all have. */
  async stopReading(): Promise<void> {
    this.reading = false;
    await Promise.all(this.readers);
  }

  private pickMember(random: Random, avoid: string | null): string {
    const allowed = this.members.filter((member) => !this.clientCut.has(member) && member !== avoid);
    return random.pick(allowed.length > 0 ? allowed : this.members);
  }

  private async beatLoop(slot: number, random: Random): Promise<void> {
    const service = this.services[slot % this.services.length]?.name ?? '';
    let process = beatProcessBase + slot;
    const call = async (op: PlannedOperation, avoid: string | null): Promise<{ type: 'ok' | 'fail' | 'info'; node: string }> => {
      const node = this.pickMember(random, avoid);
      const type = await this.deps.generator.invokeOn(op, process, node, random);
      if (type === 'info') process += processStride;
      return { type, node };
    };
    await sleep(random.float() * this.options.timeouts.intervalMs);
    for (let life = 0; this.beating && life < beatElementsMax && this.nextElement < beatElementsMax; life++) {
      const element = this.nextElement++;
      const first = await call(registerOp(service, element, slot, this.options.timeouts, this.send), null);
      if (first.type !== 'ok') await call(registerOp(service, element, slot, this.options.timeouts, this.send), first.node);
      const lifeEnd = Date.now() + random.between(...this.options.lifeMs);
      let intervalMs = this.options.timeouts.intervalMs;
      for (let beat = 0; this.beating && Date.now() < lifeEnd && beat < 100_000; beat++) {
        const started = Date.now();
        const op = beatOp(service, element, slot, this.options.timeouts, this.send, (answer) => {
          intervalMs = this.followInterval(answer.clientBeatInterval);
        });
        const outcome = await call(op, null);
        if (outcome.type !== 'ok') await call(op, outcome.node);
        await sleep(Math.max(0, intervalMs - (Date.now() - started)));
      }
      this.deps.recorder.observe('beat-stop', { service, element, slot }, this.deps.recorder.now());
    }
  }

  /** followInterval is the interval a beat's answer names, as the Nacos clients follow it, within sane bounds. */
  private followInterval(interval: number): number {
    if (interval !== this.options.timeouts.intervalMs && this.intervalsSeen.size < 20) this.intervalsSeen.add(interval);
    // Bounded so that a wrong answer can neither flood the members nor stall the beater.
    return Math.min(Math.max(interval, 200), 10_000);
  }

  private async readLoop(member: string, firstProcess: number, random: Random): Promise<void> {
    let process = firstProcess;
    for (let round = 0; this.reading && round < 1_000_000; round++) {
      const started = Date.now();
      let listed = 0;
      let answered = 0;
      for (const service of this.services) {
        const op = readOp(service.name);
        const counted: PlannedOperation = { ...op, complete: (value) => {
          const result = op.complete(value);
          listed += (result['present'] as readonly number[]).length;
          answered++;
          return result;
        } };
        if (await this.deps.generator.invokeOn(counted, process, member, random) === 'info') process += processStride;
      }
      this.lastRounds.set(member, { at: Date.now(), listed: answered === this.services.length ? listed : null });
      await sleep(Math.max(0, this.options.pollMs - (Date.now() - started)));
    }
  }

  /**
   * finalPhase: after stopBeating, keeps reading until every member's latest complete round, begun after the last
   * stop, lists no instance at all (every stopped instance has expired everywhere), or until `boundMs` passes; then
   * ends the readers. Returns the ms waited, or null when the bound passed first.
   */
  async finalPhase(boundMs: number): Promise<number | null> {
    const stoppedAt = Date.now();
    let doneAfterMs: number | null = null;
    for (let poll = 0; Date.now() - stoppedAt < boundMs && poll < 100_000; poll++) {
      const rounds = this.members.map((member) => this.lastRounds.get(member));
      if (rounds.every((round) => round !== undefined && round.at > stoppedAt && round.listed === 0)) {
        doneAfterMs = Date.now() - stoppedAt;
        break;
      }
      await sleep(250);
    }
    // One more round everywhere, so the last reads are recorded after the disappearance.
    await sleep(this.options.pollMs + 500);
    await this.stopReading();
    return doneAfterMs;
  }

  /** runFaults scripts the faults, one at a time, until `deadline` (Date.now() ms). */
  async runFaults(deadline: number, random: Random): Promise<void> {
    if (this.options.faults.length === 0) return;
    if (this.options.faults.includes('all-clients-cut')) return this.runClientCuts(deadline, random);
    for (let round = 0; round < 10_000; round++) {
      await sleep(Math.min(random.between(...this.options.quietMs), Math.max(0, deadline - Date.now())));
      if (deadline - Date.now() < 2000) return;
      const kind = random.pick(this.options.faults);
      if (kind === 'all-clients-cut') return;
      const focus = kind === 'kill' ? this.services[Math.floor(round / this.options.killsPerFocus) % this.services.length] : random.pick(this.services);
      if (focus === undefined) return;
      const holdMs = Math.min(random.between(...this.options.faultMs), Math.max(1000, deadline - Date.now()));
      if (kind === 'kill') await this.kill(focus.responsible, focus.name, holdMs);
      else await this.cut(kind, focus.responsible, focus.name, holdMs);
    }
  }

  private drop(from: string, to: string): Drop {
    return { fromHost: from, fromCgroup: this.deps.cgroups === null ? null : this.deps.cgroups.relativePath(from), toHost: to };
  }

  /**
   * runClientCuts scripts D3: quiet, then every beater cut from every member, again and again until `deadline`. A
   * cut starts only when at least the shortest cut and the recovery reserve fit before the deadline, and is shortened
   * to leave the reserve, so every heal is followed by the recovery window the checker judges.
   */
  private async runClientCuts(deadline: number, random: Random): Promise<void> {
    for (let round = 0; round < 10_000; round++) {
      await sleep(Math.min(random.between(...this.options.quietMs), Math.max(0, deadline - Date.now())));
      const left = deadline - Date.now() - this.options.recoveryReserveMs;
      if (left < this.options.faultMs[0]) return;
      await this.cutClients(Math.min(random.between(...this.options.faultMs), left));
    }
  }

  /** clientDrops: every packet between the beaters' address and every member is dropped, both ways. */
  private clientDrops(source: string): Drop[] {
    return this.deps.cluster.members.flatMap((member) => [
      { fromHost: source, fromCgroup: null, toHost: member.host },
      { fromHost: member.host, fromCgroup: null, toHost: source },
    ]);
  }

  /**
   * cutClients cuts every beater from every member for `holdMs` (D3). The rules are applied between the
   * `start-clients-cut` invoke and info lines and removed between the `stop-clients-cut` ones; the info line says
   * whether the cut was seen to cut (a request from the beaters' address timed out) while the control traffic
   * flowed (a request from 127.0.0.1 was answered).
   */
  private async cutClients(holdMs: number): Promise<void> {
    const { recorder, firewall } = this.deps;
    const source = this.options.clientSource;
    const id = this.nextFaultId++;
    const members = this.deps.cluster.members.map((member) => member.host);
    const value = { id, mode: 'all-clients', source, members };
    recorder.nemesis('invoke', 'start-clients-cut', value);
    let applied = 0;
    if (source === null || firewall === null) this.problems.push(`all-clients-cut #${id}: ${source === null ? 'the beaters have no address of their own' : 'no firewall (iptables)'}: nothing was cut`);
    else {
      try {
        const drops = this.clientDrops(source);
        firewall.apply(drops);
        applied = drops.length;
      } catch (error) {
        this.problems.push(`all-clients-cut #${id}: ${String(error)}`);
      }
    }
    recorder.nemesis('info', 'start-clients-cut', { ...value, rules: applied });
    const startedAt = Date.now();
    const probe = source === null || applied === 0 ? null : await this.probeCut(source);
    if (probe !== null) {
      recorder.observe('clients-cut-probe', { id, ...probe }, recorder.now());
      if (probe.fromClients !== 'timeout') this.problems.push(`all-clients-cut #${id}: a request from ${source} got through the cut (${probe.fromClients})`);
      if (probe.fromHarness !== 'answered') this.problems.push(`all-clients-cut #${id}: the control request from 127.0.0.1 was not answered during the cut (${probe.fromHarness})`);
    }
    await sleep(Math.max(0, holdMs - (Date.now() - startedAt)));
    recorder.nemesis('invoke', 'stop-clients-cut', { id });
    const healed = firewall === null ? 0 : firewall.heal();
    recorder.nemesis('info', 'stop-clients-cut', { id, result: `healed ${healed} rules` });
  }

  /** probeCut asks a random member for its cluster view from the beaters' address (must time out) and from 127.0.0.1. */
  private async probeCut(source: string): Promise<{ readonly member: string; readonly fromClients: string; readonly fromHarness: string }> {
    const member = this.members[0] ?? '';
    const [fromClients, fromHarness] = await Promise.all([
      httpRequestFrom(source, member, 'GET', '/cairn/v1/cluster', cutProbeTimeoutMs),
      clusterView(member, cutProbeTimeoutMs),
    ]);
    return {
      member,
      fromClients: 'answer' in fromClients ? `answered ${fromClients.answer.status}` : fromClients.failure,
      fromHarness: fromHarness === null ? 'no answer' : 'answered',
    };
  }

  private async cut(kind: Exclude<BeatFaultKind, 'kill' | 'all-clients-cut'>, member: string, service: string, holdMs: number): Promise<void> {
    const { recorder, firewall } = this.deps;
    const id = this.nextFaultId++;
    const isolate = kind !== 'client-cut';
    const host = member.slice(0, member.lastIndexOf(':'));
    const others = this.deps.cluster.members.map((m) => m.host).filter((other) => other !== host);
    const value = { id, mode: kind, member, service };
    if (kind !== 'isolate-responsible') {
      recorder.nemesis('invoke', 'start-client-cut', value);
      this.clientCut.add(member);
      recorder.nemesis('info', 'start-client-cut', value);
    }
    if (isolate && firewall !== null) {
      recorder.nemesis('invoke', 'start-partition', value);
      try {
        firewall.apply(others.flatMap((other) => [this.drop(host, other), this.drop(other, host)]));
      } catch (error) {
        this.problems.push(`${kind} ${member}: ${String(error)}`);
      }
      recorder.nemesis('info', 'start-partition', { ...value, grudge: { [host]: others, ...Object.fromEntries(others.map((other) => [other, [host]])) } });
    }
    await sleep(holdMs);
    if (isolate && firewall !== null) {
      recorder.nemesis('invoke', 'stop-partition', { id });
      const healed = firewall.heal();
      recorder.nemesis('info', 'stop-partition', { id, result: `healed ${healed} rules` });
    }
    if (kind !== 'isolate-responsible') {
      recorder.nemesis('invoke', 'stop-client-cut', { id });
      this.clientCut.delete(member);
      recorder.nemesis('info', 'stop-client-cut', { id });
    }
  }

  private async kill(addr: string, service: string, holdMs: number): Promise<void> {
    const { recorder, cluster } = this.deps;
    const member: Member | undefined = cluster.members.find((m) => m.addr === addr);
    if (member === undefined || member.state !== 'running') return;
    const id = this.nextFaultId++;
    recorder.nemesis('invoke', 'start-kill', { id, target: 'responsible', members: [addr], service });
    await member.kill();
    recorder.nemesis('info', 'start-kill', { id, target: 'responsible', members: [addr], service });
    await sleep(holdMs);
    recorder.nemesis('invoke', 'stop-kill', { id });
    let result: string;
    try {
      await member.start();
      result = `${addr}: restarted`;
    } catch (error) {
      result = `${addr}: restart failed: ${error instanceof Error ? error.message : String(error)}`;
      this.problems.push(`stop-kill #${id}: ${result}`);
    }
    recorder.nemesis('info', 'stop-kill', { id, result: [result] });
  }
}
