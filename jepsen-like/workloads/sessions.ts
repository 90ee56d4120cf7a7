// sessions workload (PEERS.md §2.3 D5): ephemeral instances bound to gRPC `Session` streams (docs/grpc.md "Session",
// docs/ap.md "Beats, expiry and sessions"), their removal when a client dies, and the client's redo when its member
// dies.
//
// Session clients live in the harness process. Each opens one `Session` stream (grpc-js, bidirectional) to a member,
// waits for `started`, registers its `elementsPerClient` instances on it (`register` with ephemeral=true), and sends
// `keep_alive` every `keepAliveMs`. When its stream breaks (its member was killed), it redoes as the Nacos 2 clients
// do: a new session on another running member and every instance registered again, at once, retrying every
// `redoRetryMs` (bounded). A registration answered with an error is tried again on the same stream (bounded); if it
// never succeeds, the client closes that session itself (a `session-close` line, purpose `redo-failed`: what it
// registered there goes with it) and tries another member. A dead client never comes back; a fresh client with fresh
// instances takes its place.
//
// Faults, one at a time, scripted here (the generic kill loop does not run with this workload; partitions of the
// generic nemesis may overlap):
// - `kill-serving`: SIGKILL the member serving the most sessions, hold, restart; its clients redo on the others.
// - `client-cancel`: a client dies by cancelling its stream (a dead client whose connection closes).
// - `client-silent`: a client dies silently: no keep_alive, no cancel, the stream left open (a dead client whose
//   connection is not closed: the member must end the session after distroSessionTimeoutMs).
// - `abandon-redo`: a live client gives up a stream silently (as after a network blip it cannot tell from a dead
//   member) and redoes on another member at once; the old session times out on its member later, and its removal
//   must not take the instances the redo registered.
// - `dup-close`: the duplicate client holds two sessions on two members with the same instances registered on both;
//   it cancels the session that registered them first, then opens a new second session on another member and
//   registers them there too.
// A member holding a silent or abandoned session still open is not killed (its session would end without the
// timeout's removal, and its instances would wait for expiry: another case, D4's).
//
// History: client operations `sess-register` (one per registration, on the client's process), observer lines
// `sessions-setup`, `session-open`, `session-end`, `session-silent`, `client-dead`, and `sess-read` operations: every
// member's local list of every service every `pollMs` (HTTP, the AP read). checkers-sessions.ts judges.

import { Client, credentials, Metadata, type ClientDuplexStream, type ServiceError } from '@grpc/grpc-js';
import { clientFlowControlWindowBytes } from '../../src/api/grpc/client.ts';
import { methodDefinitionOf, namingServiceName } from '../../src/api/grpc/proto.ts';
import type { Outcome } from '../client.ts';
import { outcomeOfCode } from '../client.ts';
import { httpRequest } from '../client-http.ts';
import type { Cluster, Member } from '../control.ts';
import type { Generator, PlannedOperation } from '../generator.ts';
import type { HistoryRecorder } from '../history.ts';
import { type Random, sleep } from '../random.ts';
import { elementAddresses } from './element-addresses.ts';

/** SessionFaultKind is one scripted fault of the workload. */
export type SessionFaultKind = 'kill-serving' | 'client-cancel' | 'client-silent' | 'abandon-redo' | 'dup-close';

/** sessionFaultKinds lists every kind, in the order a run draws from. */
export const sessionFaultKinds: readonly SessionFaultKind[] = ['kill-serving', 'client-cancel', 'client-silent', 'abandon-redo', 'dup-close'];

/** SessionsOptions shape the workload. */
export interface SessionsOptions {
  /** clients: ordinary session clients alive at once (a dead one is replaced). */
  readonly clients: number;
  readonly elementsPerClient: number;
  readonly services: number;
  readonly keepAliveMs: number;
  readonly pollMs: number;
  readonly faults: readonly SessionFaultKind[];
  readonly quietMs: readonly [number, number];
  readonly killHoldMs: readonly [number, number];
}

/** defaultSessionsOptions: 4 clients + 1 duplicate client, 3 instances each over 3 services, keep-alive every 2 s. */
export const defaultSessionsOptions: SessionsOptions = {
  clients: 4, elementsPerClient: 3, services: 3, keepAliveMs: 2000, pollMs: 1000, faults: sessionFaultKinds,
  quietMs: [2000, 4000], killHoldMs: [3000, 6000],
};

/** sessionElementsMax bounds the instances of a run (ports 50000..52999 of sessionIp). */
export const sessionElementsMax = 3000;
const sessionIp = '127.0.0.12';
const sessionPortBase = 50_000;
/** requestTimeoutMs: a Session request's answer deadline (a register waits for Distro: a failed forward and its retry). */
const requestTimeoutMs = 6000;
/** openTimeoutMs: the `started` message's deadline. */
const openTimeoutMs = 3000;
/** redoRetryMs, redoAttemptsMax: a redo tries another member every 250 ms, at most 120 times (30 s). */
const redoRetryMs = 250;
/** registerAttemptsMax: a registration answered with an error is tried again on the same stream, at most 20 times. */
const registerAttemptsMax = 20;
const redoAttemptsMax = 120;
const readTimeoutMs = 2000;
const faultIdBase = 3_000_000;
/** clientProcessBase: client k records its registrations as process base + k * clientProcessStride (+1 per unknown outcome). */
const clientProcessBase = 40_000_000;
const clientProcessStride = 10_000;
const readProcessBase = 48_000_000;
const readProcessStride = 100_000;
/** clientsMax bounds the clients of a run (each death makes one). */
const clientsMax = 400;

const sessionAddresses = elementAddresses('session', sessionIp, sessionPortBase, sessionElementsMax);

/** sessionAddress is element n's "ip:port". */
export function sessionAddress(n: number): string {
  return sessionAddresses.address(n);
}

/** sessionElementOf inverts sessionAddress (null for anything else). */
export function sessionElementOf(ip: string, port: number): number | null {
  return sessionAddresses.elementOf(ip, port);
}

/** sessionServiceOf names element n's service. */
export function sessionServiceOf(n: number, services: number): string {
  return `jepsen-session-${n % services}`;
}

interface Waiter {
  readonly resolve: (answer: Record<string, unknown>) => void;
  readonly reject: (error: Error) => void;
}

/** shuffled returns the kinds in a random order (Fisher-Yates). */
function shuffled(kinds: readonly SessionFaultKind[], random: Random): SessionFaultKind[] {
  const out = [...kinds];
  for (let i = out.length - 1; i > 0; i--) {
    const j = random.between(0, i);
    const a = out[i];
    const b = out[j];
    if (a === undefined || b === undefined) continue;
    out[i] = b;
    out[j] = a;
  }
  return out;
}

/** SessionStream is one Session stream: `started`, then answers in request order. */
class SessionStream {
  sessionId = '';
  /** lastSentAt: recorder time of the last request sent (a keep-alive or a register). */
  lastSentAt = 0;
  broken: string | null = null;
  silent = false;
  /** cancelled: the client ended the stream itself (a death, a duplicate close, the teardown), not a break. */
  cancelled = false;
  private readonly waiters: Waiter[] = [];
  private timer: NodeJS.Timeout | null = null;
  private readonly ended: Promise<string>;

  constructor(
    readonly member: string,
    readonly number: number,
    private readonly stream: ClientDuplexStream<object, object>,
    private readonly now: () => number,
  ) {
    let endWith: (reason: string) => void = () => undefined;
    this.ended = new Promise((resolve) => {
      endWith = resolve;
    });
    const fail = (reason: string): void => {
      if (this.broken !== null) return;
      this.broken = reason;
      if (this.timer !== null) clearInterval(this.timer);
      for (const waiter of this.waiters.splice(0)) waiter.reject(new Error(reason));
      endWith(reason);
    };
    stream.on('data', (message: Record<string, unknown>) => this.waiters.shift()?.resolve(message));
    stream.on('error', (error: ServiceError) => fail(`${error.code}: ${error.details || error.message}`.slice(0, 200)));
    stream.on('end', () => fail('ended by the member'));
    stream.on('close', () => fail('closed'));
  }

  /** whenEnded resolves with the reason when the stream ends, for whatever cause. */
  whenEnded(): Promise<string> {
    return this.ended;
  }

  /** next waits for the next message (the first is `started`). */
  next(timeoutMs: number): Promise<Record<string, unknown>> {
    if (this.broken !== null) return Promise.reject(new Error(this.broken));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({
        resolve: (answer) => {
          clearTimeout(timer);
          resolve(answer);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
    });
  }

  /** request sends one request and waits for its answer. */
  request(request: object, timeoutMs: number): Promise<Record<string, unknown>> {
    if (this.broken !== null) return Promise.reject(new Error(this.broken));
    const answer = this.next(timeoutMs);
    this.lastSentAt = this.now();
    this.stream.write(request);
    return answer;
  }

  /** keepAlive sends keep_alive every `intervalMs` until the stream ends or falls silent. */
  keepAlive(intervalMs: number): void {
    this.timer = setInterval(() => {
      if (this.silent || this.broken !== null) return;
      this.request({ keepAlive: {} }, requestTimeoutMs).catch(() => undefined);
    }, intervalMs);
  }

  /** silence stops every request; the stream stays open until the member ends it. */
  silence(): void {
    this.silent = true;
    if (this.timer !== null) clearInterval(this.timer);
  }

  /** cancel ends the stream from the client side. */
  cancel(): void {
    this.cancelled = true;
    if (this.timer !== null) clearInterval(this.timer);
    this.stream.cancel();
  }
}

/** SessionClient is what the workload knows of one client. */
interface SessionClient {
  readonly id: number;
  readonly duplicate: boolean;
  readonly elements: readonly number[];
  process: number;
  /** streams: the live streams (the duplicate client holds two; the others one). */
  streams: SessionStream[];
  dead: boolean;
  /** redoing: a redo is under way (a fault waits for it rather than acting on a half-open client). */
  redoing: boolean;
}

/** SessionsDeps are what the workload acts on. */
export interface SessionsDeps {
  readonly cluster: Cluster;
  readonly recorder: HistoryRecorder;
  readonly generator: Generator;
}

/** readOp lists a service from the member's local state (the AP read): the elements present. */
function readOp(service: string): PlannedOperation {
  return {
    f: 'sess-read',
    transport: 'http',
    value: { service },
    run: async (_client, addr): Promise<Outcome<unknown>> => {
      const result = await httpRequest(addr, 'GET', `/nacos/v1/ns/instance/list?serviceName=${encodeURIComponent(service)}`, readTimeoutMs);
      if (!('answer' in result)) return result.maybeSent ? { type: 'info', error: result.failure } : { type: 'fail', error: result.failure };
      const { answer } = result;
      if (answer.status !== 200) return outcomeOfCode(answer.code, `status ${answer.status}: ${answer.text.slice(0, 200)}`);
      return { type: 'ok', value: (JSON.parse(answer.text) as { hosts?: { ip: string; port: number }[] }).hosts ?? [] };
    },
    complete: (value) => {
      const present: number[] = [];
      for (const host of Array.isArray(value) ? (value as { ip: string; port: number }[]) : []) {
        const element = sessionElementOf(host.ip, host.port);
        if (element !== null) present.push(element);
      }
      return { service, present: present.sort((a, b) => a - b) };
    },
  };
}

/** SessionsWorkload runs the session clients, the readers and the scripted faults. */
export class SessionsWorkload {
  readonly problems: string[] = [];
  readonly notes: string[] = [];
  private readonly grpc = new Map<string, Client>();
  private readonly clients: SessionClient[] = [];
  private nextElement = 0;
  private nextStream = 0;
  private nextFaultId = faultIdBase;
  private reading = true;
  private stopping = false;
  private readonly readers: Promise<void>[] = [];
  private readonly redos = new Set<Promise<void>>();
  /** latest: per member and service ("member|service"), the last answered read: when (Date.now()) and what it listed. */
  private readonly latest = new Map<string, { readonly at: number; readonly present: ReadonlySet<number> }>();
  /** silentOn: members holding a silent or abandoned session still open (not killed meanwhile). */
  private readonly silentOn = new Map<SessionStream, string>();

  constructor(
    readonly options: SessionsOptions,
    private readonly deps: SessionsDeps,
  ) {}

  private get members(): readonly Member[] {
    return this.deps.cluster.members;
  }

  private get now(): () => number {
    return () => this.deps.recorder.now();
  }

  private channel(member: Member): Client {
    let client = this.grpc.get(member.addr);
    if (client === undefined) {
      client = new Client(member.grpcAddr, credentials.createInsecure(), { 'grpc.enable_channelz': 0, 'grpc-node.flow_control_window': clientFlowControlWindowBytes });
      this.grpc.set(member.addr, client);
    }
    return client;
  }

  /** start records `sessions-setup`, starts the readers and opens every client's first session. */
  async start(random: Random, setup: Record<string, unknown>): Promise<void> {
    this.deps.recorder.observe('sessions-setup', { members: this.members.map((m) => m.addr), options: this.options, ...setup }, this.now());
    for (const [index, member] of this.members.entries()) this.readers.push(this.readLoop(member.addr, readProcessBase + index * readProcessStride, random.fork()));
    const first = [this.newClient(true, random.fork())];
    for (let k = 0; k < this.options.clients; k++) first.push(this.newClient(false, random.fork()));
    await Promise.all(first);
  }

  private async newClient(duplicate: boolean, random: Random): Promise<void> {
    if (this.clients.length >= clientsMax || this.nextElement + this.options.elementsPerClient > sessionElementsMax) return;
    const id = this.clients.length;
    const elements = Array.from({ length: this.options.elementsPerClient }, () => this.nextElement++);
    const client: SessionClient = { id, duplicate, elements, process: clientProcessBase + id * clientProcessStride, streams: [], dead: false, redoing: false };
    this.clients.push(client);
    await this.redo(client, null, duplicate ? 'dup' : 'first', random);
    if (duplicate) await this.redo(client, client.streams[0]?.member ?? null, 'dup', random);
  }

  private runningMembers(avoid: readonly string[]): Member[] {
    const running = this.members.filter((m) => m.state === 'running');
    const preferred = running.filter((m) => !avoid.includes(m.addr));
    return preferred.length > 0 ? preferred : running;
  }

  /**
   * redo opens a session on a running member (not `avoid`, nor one the client already holds a stream on) and
   * registers every instance of the client on it; retried every redoRetryMs, at most redoAttemptsMax times.
   */
  private async redo(client: SessionClient, avoid: string | null, purpose: string, random: Random): Promise<void> {
    client.redoing = true;
    try {
      for (let attempt = 0; attempt < redoAttemptsMax && !client.dead && !this.stopping; attempt++) {
        const held = client.streams.map((s) => s.member);
        const candidates = this.runningMembers([...(avoid === null ? [] : [avoid]), ...held]);
        if (candidates.length === 0) {
          await sleep(redoRetryMs);
          continue;
        }
        const member = random.pick(candidates);
        const stream = await this.open(client, member, purpose);
        if (stream !== null && await this.registerAll(client, stream)) {
          client.streams.push(stream);
          stream.keepAlive(this.options.keepAliveMs);
          void stream.whenEnded().then((reason) => this.onEnded(client, stream, reason, random.fork()));
          return;
        }
        if (stream !== null) {
          // A client closing its own session: whatever it registered on it goes (the checker knows, by this line).
          this.deps.recorder.observe('session-close', { client: client.id, stream: stream.number, member: stream.member, sessionId: stream.sessionId, purpose: 'redo-failed' }, this.now());
          stream.cancel();
        }
        await sleep(redoRetryMs);
      }
      if (!client.dead && !this.stopping) this.problems.push(`client ${client.id}: no redo (${purpose}) within ${redoAttemptsMax} attempts`);
    } finally {
      client.redoing = false;
    }
  }

  private async open(client: SessionClient, member: Member, purpose: string): Promise<SessionStream | null> {
    const definition = methodDefinitionOf(namingServiceName, 'Session');
    const raw: ClientDuplexStream<object, object> = this.channel(member).makeBidiStreamRequest(
      definition.path, definition.requestSerialize, definition.responseDeserialize, new Metadata(), {},
    );
    const stream = new SessionStream(member.addr, this.nextStream++, raw, this.now);
    try {
      const started = await stream.next(openTimeoutMs);
      const sessionId = (started['started'] as { sessionId?: string } | undefined)?.sessionId;
      if (started['response'] !== 'started' || typeof sessionId !== 'string') throw new Error(`first message is not started: ${JSON.stringify(started).slice(0, 200)}`);
      stream.sessionId = sessionId;
      stream.lastSentAt = this.now();
      this.deps.recorder.observe('session-open', { client: client.id, stream: stream.number, member: member.addr, sessionId, purpose, elements: client.elements }, this.now());
      return stream;
    } catch (error) {
      this.deps.recorder.observe('session-open-failed', { client: client.id, stream: stream.number, member: member.addr, purpose, error: String(error).slice(0, 200) }, this.now());
      stream.cancel();
      return null;
    }
  }

  /**
   * registerAll registers the client's instances on `stream`, one `sess-register` operation each, retrying a failed
   * one on the same stream (registerAttemptsMax, redoRetryMs apart) while it lives; true if all ended ok.
   */
  private async registerAll(client: SessionClient, stream: SessionStream): Promise<boolean> {
    for (const element of client.elements) {
      let done = false;
      for (let attempt = 0; attempt < registerAttemptsMax && !done && stream.broken === null && !client.dead; attempt++) {
        if (attempt > 0) await sleep(redoRetryMs);
        done = await this.registerOne(client, stream, element);
      }
      if (!done) return false;
    }
    return true;
  }

  private async registerOne(client: SessionClient, stream: SessionStream, element: number): Promise<boolean> {
    const { recorder } = this.deps;
    const [ip, port] = sessionAddress(element).split(':');
    const service = sessionServiceOf(element, this.options.services);
    const value = { client: client.id, stream: stream.number, sessionId: stream.sessionId, element, service, node: stream.member, via: 'grpc' };
    recorder.client(client.process, 'invoke', 'sess-register', value, recorder.now());
    let outcome: { type: 'ok' | 'fail' | 'info'; error?: string };
    try {
      const answer = await stream.request({ register: { service, instance: { ip, port: Number(port), ephemeral: true } } }, requestTimeoutMs);
      if (answer['response'] === 'registered') outcome = { type: 'ok' };
      else {
        // A Session `error` answer carries the code the unary method would have: fail when certainly not applied.
        const error = answer['error'] as { cairnCode?: string; message?: string } | undefined;
        const classified = outcomeOfCode<null>(error?.cairnCode, `unexpected answer ${JSON.stringify(answer).slice(0, 200)}`);
        outcome = classified.type === 'ok' ? { type: 'info', error: 'unexpected ok' } : { type: classified.type, error: `${classified.error}: ${error?.message ?? ''}`.slice(0, 300) };
      }
    } catch (error) {
      outcome = { type: 'info', error: String(error).slice(0, 200) };
    }
    recorder.client(client.process, outcome.type, 'sess-register', outcome.type === 'ok' ? value : { ...value, error: outcome.error }, recorder.now());
    if (outcome.type === 'info') client.process += 1;
    return outcome.type === 'ok';
  }

  /** onEnded records a stream's end; a live client whose stream broke redoes at once. */
  private async onEnded(client: SessionClient, stream: SessionStream, reason: string, random: Random): Promise<void> {
    const wasSilent = stream.silent;
    this.silentOn.delete(stream);
    this.deps.recorder.observe('session-end', { client: client.id, stream: stream.number, member: stream.member, sessionId: stream.sessionId, reason, silent: wasSilent, cancelled: stream.cancelled }, this.now());
    const index = client.streams.indexOf(stream);
    if (index < 0) return;
    client.streams.splice(index, 1);
    if (client.dead || this.stopping || wasSilent) return;
    const redo = this.redo(client, stream.member, 'redo', random);
    this.redos.add(redo);
    await redo;
    this.redos.delete(redo);
  }

  private async readLoop(member: string, firstProcess: number, random: Random): Promise<void> {
    let process = firstProcess;
    for (let round = 0; this.reading && round < 1_000_000; round++) {
      const started = Date.now();
      for (let service = 0; service < this.options.services; service++) {
        const op = readOp(`jepsen-session-${service}`);
        const noted: PlannedOperation = { ...op, complete: (value) => {
          const result = op.complete(value);
          this.latest.set(`${member}|${String(result['service'])}`, { at: Date.now(), present: new Set(result['present'] as number[]) });
          return result;
        } };
        if (await this.deps.generator.invokeOn(noted, process, member, random) === 'info') process += 1;
      }
      await sleep(Math.max(0, this.options.pollMs - (Date.now() - started)));
    }
  }

  /**
   * runFaults scripts the faults, one at a time, until `deadline` (Date.now() ms): every kind once in a shuffled
   * order, then again, so that even a short run has each.
   */
  async runFaults(deadline: number, random: Random): Promise<void> {
    let order: SessionFaultKind[] = [];
    for (let round = 0; round < 10_000; round++) {
      await sleep(Math.min(random.between(...this.options.quietMs), Math.max(0, deadline - Date.now())));
      if (deadline - Date.now() < 2000) return;
      await Promise.all([...this.redos]);
      if (order.length === 0) order = shuffled(this.options.faults, random);
      const kind = order.shift();
      if (kind === undefined) return;
      switch (kind) {
        case 'kill-serving':
          await this.killServing(Math.min(random.between(...this.options.killHoldMs), Math.max(1000, deadline - Date.now())));
          break;
        case 'client-cancel':
        case 'client-silent':
          await this.killClient(kind, random);
          break;
        case 'abandon-redo':
          await this.abandon(random);
          break;
        case 'dup-close':
          await this.dupClose(random);
          break;
      }
    }
  }

  private liveClients(duplicate: boolean): SessionClient[] {
    return this.clients.filter((c) => !c.dead && !c.redoing && c.duplicate === duplicate && c.streams.length > 0);
  }

  private async killServing(holdMs: number): Promise<void> {
    const serving = new Map<string, number>();
    for (const client of this.clients) for (const stream of client.dead ? [] : client.streams) serving.set(stream.member, (serving.get(stream.member) ?? 0) + 1);
    const silent = new Set(this.silentOn.values());
    const victims = [...serving].filter(([addr]) => !silent.has(addr)).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
    const member = this.members.find((m) => m.addr === victims[0]?.[0]);
    if (member === undefined || member.state !== 'running') return;
    const { recorder } = this.deps;
    const id = this.nextFaultId++;
    const value = { id, target: 'serving', members: [member.addr], sessions: victims[0]?.[1] ?? 0 };
    recorder.nemesis('invoke', 'start-kill', value);
    await member.kill();
    recorder.nemesis('info', 'start-kill', value);
    await sleep(holdMs);
    recorder.nemesis('invoke', 'stop-kill', { id });
    let result: string;
    try {
      await member.start();
      result = `${member.addr}: restarted`;
    } catch (error) {
      result = `${member.addr}: restart failed: ${error instanceof Error ? error.message : String(error)}`;
      this.problems.push(`stop-kill #${id}: ${result}`);
    }
    recorder.nemesis('info', 'stop-kill', { id, members: [member.addr], result: [result] });
  }

  private async killClient(kind: 'client-cancel' | 'client-silent', random: Random): Promise<void> {
    const live = this.liveClients(false);
    if (live.length === 0) return;
    const client = random.pick(live);
    const stream = client.streams[0];
    if (stream === undefined) return;
    client.dead = true;
    const how = kind === 'client-cancel' ? 'cancel' : 'silent';
    // The client's last sign of life: now for a cancel, its last request for a silent death.
    const diedAt = how === 'cancel' ? this.now() : stream.lastSentAt;
    if (how === 'cancel') stream.cancel();
    else {
      stream.silence();
      this.silentOn.set(stream, stream.member);
    }
    this.deps.recorder.observe('client-dead', { client: client.id, how, stream: stream.number, member: stream.member, sessionId: stream.sessionId, elements: client.elements, diedAt }, this.now());
    await this.newClient(false, random.fork());
  }

  private async abandon(random: Random): Promise<void> {
    const live = this.liveClients(false);
    if (live.length === 0) return;
    const client = random.pick(live);
    const stream = client.streams[0];
    if (stream === undefined) return;
    stream.silence();
    this.silentOn.set(stream, stream.member);
    client.streams.splice(0, 1);
    this.deps.recorder.observe('session-silent', { client: client.id, stream: stream.number, member: stream.member, sessionId: stream.sessionId, lastSentAt: stream.lastSentAt, purpose: 'abandon-redo' }, this.now());
    await this.redo(client, stream.member, 'abandon-redo', random);
  }

  private async dupClose(random: Random): Promise<void> {
    const client = this.liveClients(true)[0];
    if (client === undefined || client.streams.length < 2) return;
    // The older stream registered the instances first; the newer one registered them since and owns them.
    const [older] = client.streams.splice(0, 1);
    if (older === undefined) return;
    this.deps.recorder.observe('session-close', { client: client.id, stream: older.number, member: older.member, sessionId: older.sessionId, purpose: 'dup-close' }, this.now());
    older.cancel();
    await this.redo(client, older.member, 'dup', random);
  }

  /** agrees: every member's last read of every service, begun after `since`, lists the live clients' instances and no dead one's. */
  private agrees(since: number): boolean {
    for (const member of this.members) {
      for (let service = 0; service < this.options.services; service++) {
        const read = this.latest.get(`${member.addr}|jepsen-session-${service}`);
        if (read === undefined || read.at < since) return false;
        for (const client of this.clients) {
          for (const element of client.elements) {
            if (sessionServiceOf(element, this.options.services) !== `jepsen-session-${service}`) continue;
            if (read.present.has(element) === client.dead) return false;
          }
        }
      }
    }
    return true;
  }

  /**
   * finalPhase keeps reading until every member agrees with the clients (live ones listed, dead ones gone) or
   * `boundMs` passes, then one more round (the final reads), and stops the readers. Returns the ms waited, or null.
   */
  async finalPhase(boundMs: number): Promise<number | null> {
    const started = Date.now();
    let after: number | null = null;
    for (let poll = 0; Date.now() - started < boundMs && poll < 100_000; poll++) {
      if (this.agrees(started)) {
        after = Date.now() - started;
        break;
      }
      await sleep(500);
    }
    this.deps.recorder.observe('sessions-final', { waitedMs: Date.now() - started, agreed: after !== null }, this.now());
    await sleep(this.options.pollMs + 1500);
    await this.stopReading();
    return after;
  }

  /** stopReading ends the readers. */
  async stopReading(): Promise<void> {
    this.reading = false;
    await Promise.all(this.readers);
  }

  /** stopAll ends every stream (recorded as `teardown`) and the readers, and closes the channels. */
  async stopAll(): Promise<void> {
    this.stopping = true;
    this.reading = false;
    await Promise.all(this.readers);
    for (const client of this.clients) {
      for (const stream of client.streams) {
        this.deps.recorder.observe('session-close', { client: client.id, stream: stream.number, member: stream.member, sessionId: stream.sessionId, purpose: 'teardown' }, this.now());
        stream.cancel();
      }
    }
    for (const stream of this.silentOn.keys()) stream.cancel();
    await sleep(100);
    for (const client of this.grpc.values()) client.close();
  }
}
