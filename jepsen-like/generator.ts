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
// the at-most-once promise itself: a write applied twice shows as a version gap in the register model.
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

/** retryAttemptsMax bounds the attempts of one idempotent operation (the first included). */
const retryAttemptsMax = 8;
/** retryWindowMs bounds how long after its invoke an idempotent operation is retried (a few partitions long). */
const retryWindowMs = 20_000;
/** retryPauseMs is the pause before each retry, so a retry does not land in the same election. */
const retryPauseMs = 250;

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
export class ClientPool {
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
  readonly pool: ClientPool;
  readonly random: Random;
  readonly targets: TargetPolicy;
  readonly transports: TransportPolicy;
  /** leader returns the last known leader's address, for the 'followers' policy. */
  readonly leader: () => string | null;
}

/** Generator runs the workers of every workload of a run. */
export class Generator {
  private stopped = false;
  private readonly running: Promise<void>[] = [];

  constructor(private readonly options: GeneratorOptions) {}

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
    const { recorder, pool } = this.options;
    const transport: Transport = op.transport ?? (this.options.transports === 'mixed' ? (random.chance(0.5) ? 'http' : 'grpc') : this.options.transports);
    const value = { ...op.value, node: addr, via: transport };
    recorder.client(process, 'invoke', op.f, value, recorder.now());
    const attempt = async (target: string): Promise<Outcome<unknown>> => {
      try {
        return await op.run(pool.client(target, transport), target);
      } catch (error) {
        return { type: 'info', error: `client error: ${error instanceof Error ? error.message : String(error)}` };
      }
    };
    let outcome = await attempt(addr);
    let attempts = 1;
    if (outcome.type === 'info' && op.idempotent === true) {
      const retryUntil = Date.now() + retryWindowMs;
      while (outcome.type !== 'ok' && attempts < retryAttemptsMax && Date.now() < retryUntil) {
        await sleep(retryPauseMs);
        outcome = await attempt(this.pickMember(random));
        attempts++;
      }
      // A retry that failed cannot undo an earlier attempt that may have applied: the operation stays unknown.
      if (outcome.type === 'fail') outcome = { type: 'info', error: `${outcome.error} (after ${attempts} attempts, the first unknown)` };
    }
    const time = recorder.now();
    const retried = attempts > 1 ? { attempts } : {};
    if (outcome.type === 'ok') recorder.client(process, 'ok', op.f, { ...value, ...retried, ...op.complete(outcome.value) }, time);
    else recorder.client(process, outcome.type, op.f, { ...value, ...retried, error: outcome.error }, time);
    return outcome.type;
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
