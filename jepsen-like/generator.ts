// generator: the client side of a run. Each workload offers operations through an OperationSource; N logical
// workers run concurrently, each one call at a time: pick a member (at random, or only followers to exercise
// forwarding) and a transport (HTTP or gRPC), read the clock, record the invoke, call, read the clock, record the
// completion. A worker whose call ended 'info' may still have it in flight as far as the system is concerned, so it
// continues under a new process id (process + total workers, Jepsen's rule): no process ever has two calls open.
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
    let outcome: Outcome<unknown>;
    try {
      outcome = await op.run(pool.client(addr, transport), addr);
    } catch (error) {
      outcome = { type: 'info', error: `client error: ${error instanceof Error ? error.message : String(error)}` };
    }
    const time = recorder.now();
    if (outcome.type === 'ok') recorder.client(process, 'ok', op.f, { ...value, ...op.complete(outcome.value) }, time);
    else recorder.client(process, outcome.type, op.f, { ...value, error: outcome.error }, time);
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
