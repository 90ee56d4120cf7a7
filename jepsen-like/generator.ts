// generator: the client side of a run. Each workload offers operations through an OperationSource; N logical
// workers run concurrently, each one call at a time: pick a member (at random, or only followers to exercise
// forwarding) and a transport (HTTP or gRPC), read the clock, record the invoke, call, read the clock, record the
// completion. A worker whose call ended 'info' may still have it in flight as far as the system is concerned, so it
// continues under a new process id (process + total workers, Jepsen's rule): no process ever has two calls open.
//
// Idempotent retries (PEERS.md §2.3 A14): an operation marked `idempotent` carries a request id, so when a call ends
// 'info' the worker sends the very same request again, to a member picked afresh, until one attempt answers ok (or
// the attempts or the retry window run out). The server applies a request id at most once and answers a repeat with
// the first result, so the whole exchange is one operation that took effect at most once, somewhere between the
// first invoke and the last answer: the history records it as such (one invoke, one completion, with `attempts`).
// A failure of a retry says nothing of the earlier attempts, so only ok ends the retries early. This resolves most
// outcome-unknown writes, which keeps the per-key searches of the linearizability checker small, and it checks
// the at-most-once promise itself: a write applied twice (with another write or a delete between the two) shows
// as a value or version the register model cannot place. The completion lists every attempt that did not end the
// operation (`tries`: member, outcome, error), so a reader of the history sees which members were tried and why.
// The bounds (attempts, window, pause) are a RetryPolicy.
//
// Impatient clients (A14): with `impatient`, a share of the idempotent operations send their first attempt through
// clients with a deadline far below a write's usual latency (ImpatientClients). The request has left when the
// deadline passes and the member goes on to commit it, so the first attempt ends 'info' although it applied: the
// retry must then be answered from the request id, not applied again. Client timeouts of this kind are what
// PEERS.md A14 names; they make outcome-unknown writes that did apply common instead of rare, which is what the
// case and its positive control (members with --unsafe-no-request-dedup) need.
// Workers pace themselves with a random stagger around a target rate, and stop invoking at the stop time.

import type { Outcome, RegistryClient, Transport } from './client.ts';
import { GrpcRegistryClient } from './client-grpc.ts';
import { HttpRegistryClient } from './client-http.ts';
import type { HistoryRecorder } from './history.ts';
import { Random, sleep } from './random.ts';

/** operationsPerWorkerMax bounds one worker's operations (a day at 10 operations a second). */
const operationsPerWorkerMax = 1_000_000;

/** PlannedOperation is one call a workload wants made: its history f and value, and how to make it. */
export interface PlannedOperation {
  readonly f: string;
  readonly value: Readonly<Record<string, unknown>>;
  /** run makes the call (`addr` is the member's HTTP address); the outcome's value becomes the completion's value via complete(). */
  run(client: RegistryClient, addr: string): Promise<Outcome<unknown>>;
  /** transport forces the transport recorded for this operation (workloads that make their own calls). */
  readonly transport?: Transport;
  /** complete gives the completion value of an ok outcome. */
  complete(result: unknown): Readonly<Record<string, unknown>>;
  /** idempotent: the call carries a request id, so an outcome-unknown call is sent again (see the file comment). */
  readonly idempotent?: boolean;
}

/** RetryPolicy bounds the retries of an idempotent operation whose outcome is unknown (see the file comment). */
export interface RetryPolicy {
  /** attemptsMax bounds the attempts of one operation, the first included (1: never resent); at most retryAttemptsLimit. */
  readonly attemptsMax: number;
  /** windowMs: no retry is sent later than this after the first attempt ended (a few partitions long). */
  readonly windowMs: number;
  /** pauseMs is the pause before each retry, so a retry does not land in the same election. */
  readonly pauseMs: number;
}

/** defaultRetryPolicy is every run's policy: 8 attempts within 20 s, 250 ms apart. */
export const defaultRetryPolicy: RetryPolicy = { attemptsMax: 8, windowMs: 20_000, pauseMs: 250 };

/** retryAttemptsLimit bounds a policy's attemptsMax: every attempt but the last is listed in the completion. */
export const retryAttemptsLimit = 32;
/** retryWindowMsMax bounds a policy's window: an operation stays open at most this long plus one deadline. */
export const retryWindowMsMax = 120_000;

/** ClientSource is what the generator calls members through: one client per member and transport (ClientPool). */
export interface ClientSource {
  readonly members: readonly MemberEndpoint[];
  /** client returns the client of `addr` over `transport`. */
  client(addr: string, transport: Transport): RegistryClient;
}

/** ImpatientClients send the first attempt of a share of the idempotent operations with a short deadline (A14). */
export interface ImpatientClients {
  /** share is the probability, in [0, 1], that an idempotent operation's first attempt goes through `pool`. */
  readonly share: number;
  /** pool holds the members' clients with the short deadline. */
  readonly pool: ClientSource;
}

/** Attempt is one attempt of an operation that did not end it: where it went and how it ended. */
export interface Attempt {
  readonly node: string;
  readonly type: 'fail' | 'info';
  readonly error: string;
}

/** OperationSource hands out the next operation for a worker (its index within the workload). */
export interface OperationSource {
  readonly name: string;
  next(worker: number, random: Random): PlannedOperation;
}

/** TargetPolicy picks which members receive operations. */
export type TargetPolicy = 'random' | 'followers';

/** TransportPolicy picks the transport of each operation. */
export type TransportPolicy = Transport | 'mixed';

/** MemberEndpoint is one member's addresses. */
export interface MemberEndpoint {
  readonly addr: string;
  readonly grpcAddr: string;
}

/** ClientPool holds one HTTP and one gRPC client per member. */
export class ClientPool implements ClientSource {
  private readonly http = new Map<string, RegistryClient>();
  private readonly grpc = new Map<string, RegistryClient>();

  /** constructor opens clients to every member with the given per-call deadline. */
  constructor(readonly members: readonly MemberEndpoint[], timeoutMs: number) {
    for (const member of members) {
      this.http.set(member.addr, new HttpRegistryClient(member.addr, timeoutMs));
      this.grpc.set(member.addr, new GrpcRegistryClient(member.grpcAddr, timeoutMs));
    }
  }

  /** client returns the client of `addr` over `transport`. */
  client(addr: string, transport: Transport): RegistryClient {
    const client = (transport === 'http' ? this.http : this.grpc).get(addr);
    if (client === undefined) throw new Error(`no client for ${addr}`);
    return client;
  }

  /** close closes every client. */
  close(): void {
    for (const client of [...this.http.values(), ...this.grpc.values()]) client.close();
  }
}

/** WorkerPlan is how one workload's workers run. */
export interface WorkerPlan {
  readonly source: OperationSource;
  readonly workers: number;
  /** ratePerSecond is the workload's target rate over all its workers. */
  readonly ratePerSecond: number;
}

/** GeneratorOptions are shared by every workload of a run. */
export interface GeneratorOptions {
  readonly recorder: HistoryRecorder;
  readonly pool: ClientSource;
  readonly random: Random;
  readonly targets: TargetPolicy;
  readonly transports: TransportPolicy;
  /** leader returns the last known leader's address, for the 'followers' policy. */
  readonly leader: () => string | null;
  /** retry bounds the retries of idempotent operations (defaultRetryPolicy when absent). */
  readonly retry?: RetryPolicy;
  /** impatient: a share of idempotent operations send their first attempt with a short deadline (none when absent). */
  readonly impatient?: ImpatientClients;
}

/** checkRetryPolicy refuses a policy outside its bounds (every loop of the generator is bounded by it). */
export function checkRetryPolicy(policy: RetryPolicy): void {
  const { attemptsMax, windowMs, pauseMs } = policy;
  if (!(Number.isSafeInteger(attemptsMax) && attemptsMax >= 1 && attemptsMax <= retryAttemptsLimit)) throw new RangeError(`retry: attemptsMax ${attemptsMax} not in 1..${retryAttemptsLimit}`);
  if (!(Number.isFinite(windowMs) && windowMs >= 0 && windowMs <= retryWindowMsMax)) throw new RangeError(`retry: windowMs ${windowMs} not in 0..${retryWindowMsMax}`);
  if (!(Number.isFinite(pauseMs) && pauseMs >= 0 && pauseMs <= windowMs)) throw new RangeError(`retry: pauseMs ${pauseMs} not in 0..windowMs`);
}

/** Generator runs the workers of every workload of a run. */
export class Generator {
  private stopped = false;
  private readonly running: Promise<void>[] = [];

  private readonly retry: RetryPolicy;

  constructor(private readonly options: GeneratorOptions) {
    this.retry = options.retry ?? defaultRetryPolicy;
    checkRetryPolicy(this.retry);
    const share = options.impatient?.share;
    if (share !== undefined && !(share >= 0 && share <= 1)) throw new RangeError(`impatient: share ${share} not in [0, 1]`);
  }

  /** start launches every worker; process ids are global worker indexes, strided by the total on 'info'. */
  start(plans: readonly WorkerPlan[]): void {
    const total = plans.reduce((sum, plan) => sum + plan.workers, 0);
    let global = 0;
    for (const plan of plans) {
      const meanDelayMs = (plan.workers * 1000) / Math.max(1, plan.ratePerSecond);
      for (let worker = 0; worker < plan.workers; worker++) {
        this.running.push(this.runWorker(plan.source, worker, global, total, meanDelayMs, this.options.random.fork()));
        global++;
      }
    }
  }

  /** stop makes every worker finish its current call and invoke nothing more; resolves when all have. */
  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.running);
  }

  private async runWorker(source: OperationSource, worker: number, first: number, stride: number, meanDelayMs: number, random: Random): Promise<void> {
    let process = first;
    await sleep(random.float() * meanDelayMs);
    for (let count = 0; !this.stopped && count < operationsPerWorkerMax; count++) {
      const type = await this.invoke(source.next(worker, random), process, random);
      if (type === 'info') process += stride;
      await sleep(random.float() * 2 * meanDelayMs);
    }
  }

  /** invoke makes one call to a member the target policy picks and records it; returns how it ended. */
  invoke(op: PlannedOperation, process: number, random: Random): Promise<'ok' | 'fail' | 'info'> {
    return this.invokeOn(op, process, this.pickMember(random), random);
  }

  /** invokeOn makes one call to the member at `addr` and records it; returns how it ended. */
  async invokeOn(op: PlannedOperation, process: number, addr: string, random: Random): Promise<'ok' | 'fail' | 'info'> {
    const { recorder } = this.options;
    const transport: Transport = op.transport ?? (this.options.transports === 'mixed' ? (random.chance(0.5) ? 'http' : 'grpc') : this.options.transports);
    const value = { ...op.value, node: addr, via: transport };
    // Drawn only when impatience is on, so the runs without it keep their seeds' sequences.
    const impatient = op.idempotent === true && this.options.impatient !== undefined && this.options.impatient.share > 0 && random.chance(this.options.impatient.share);
    recorder.client(process, 'invoke', op.f, value, recorder.now());
    const first = await this.attempt(op, addr, transport, impatient ? (this.options.impatient?.pool ?? this.options.pool) : this.options.pool);
    const { outcome, tries } = op.idempotent === true && first.type === 'info'
      ? await this.retryUnknown(op, transport, { node: addr, type: 'info', error: first.error }, random)
      : { outcome: first, tries: [] };
    const time = recorder.now();
    const attempts = tries.length + (outcome.type === 'ok' ? 1 : 0);
    const retried = { ...(attempts > 1 ? { attempts, tries } : {}), ...(impatient ? { impatient: true } : {}) };
    if (outcome.type === 'ok') recorder.client(process, 'ok', op.f, { ...value, ...retried, ...op.complete(outcome.value) }, time);
    else recorder.client(process, outcome.type, op.f, { ...value, ...retried, error: outcome.error }, time);
    return outcome.type;
  }

  /** attempt makes one call through `clients`; a thrown error is an unknown outcome. */
  private async attempt(op: PlannedOperation, target: string, transport: Transport, clients: ClientSource): Promise<Outcome<unknown>> {
    try {
      return await op.run(clients.client(target, transport), target);
    } catch (error) {
      return { type: 'info', error: `client error: ${error instanceof Error ? error.message : String(error)}` };
    }
  }

  /**
   * retryUnknown resends an idempotent operation whose first attempt (`first`) ended 'info', the very same request
   * to a member picked afresh each time, until one answers ok or the policy's attempts or window run out. A failed
   * retry cannot undo an earlier attempt that may have applied, so anything but ok leaves the operation unknown.
   * Returns the outcome and every attempt that did not end the operation (the first included).
   */
  private async retryUnknown(op: PlannedOperation, transport: Transport, first: Attempt, random: Random): Promise<{ outcome: Outcome<unknown>; tries: Attempt[] }> {
    const tries: Attempt[] = [first];
    const retryUntil = Date.now() + this.retry.windowMs;
    while (tries.length < this.retry.attemptsMax && Date.now() < retryUntil) {
      await sleep(this.retry.pauseMs);
      const node = this.pickMember(random);
      const outcome = await this.attempt(op, node, transport, this.options.pool);
      if (outcome.type === 'ok') return { outcome, tries };
      tries.push({ node, type: outcome.type, error: outcome.error });
    }
    const last = tries[tries.length - 1] ?? first;
    const error = tries.length === 1 ? last.error : `${last.error} (after ${tries.length} attempts, the first unknown)`;
    return { outcome: { type: 'info', error }, tries };
  }

  private pickMember(random: Random): string {
    const addrs = this.options.pool.members.map((member) => member.addr);
    if (this.options.targets === 'followers') {
      const leader = this.options.leader();
      const followers = addrs.filter((addr) => addr !== leader);
      if (followers.length > 0) return random.pick(followers);
    }
    return random.pick(addrs);
  }
}
