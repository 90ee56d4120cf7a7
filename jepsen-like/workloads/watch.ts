// watch workload (PEERS.md §2.3 B1, B2, B3, B4): gRPC Subscribe streams judged against the linearized write history.
//
// Writes: persistent registrations of fresh elements and deregistrations of acknowledged ones (each element added
// once, removed at most once), over gRPC RegisterInstance / DeregisterInstance, whose answers carry the service's
// revision after the write (a log index). Services `jepsen-watch-<k>`; their DEFAULT cluster's checker is set to
// NONE at the start, so nothing but these writes changes them (no probe of the made-up addresses).
//
// Subscribers: `subscribersPerService` logical subscribers per service, each one stream at a time on a random
// member. Every message is an observation line `watch-snapshot` {sub, node, stream, revision, epoch, appliedIndex,
// serviceRevision, exists, elements}; a stream's start is `watch-open` (with the after_revision / after_epoch it
// resumes from and its min_applied_index) and its end `watch-end` (with the error, its gRPC `code` and `cairnCode`). A stream ends when the nemesis kills its member, when
// the member cuts it off, or when the subscriber moves on by itself after 3-9 s (a resume on another member, B2);
// the next stream resumes from the last snapshot's (revision, epoch).
//
// After the final heal and the recovery window, the writers stop, every service is read linearizably (gRPC
// ListInstances, recorded as `watch-final`), and the subscribers get until convergenceBoundMs to show that state;
// then they stop. checkers-watch.ts judges.
//
// Edge starts (PEERS.md §2.3 B4; only when edgeStartShare > 0, which only the suite's case B4 sets): once a
// subscriber has received a snapshot, each open uses, with probability edgeStartShare, one of watchEdgeStarts
// instead of the plain resume (docs/grpc.md "Subscribe", the Resume rule): `zero` (a fresh stream), `unknown-epoch`
// (the last revision under an epoch no member has), `future-near` (the last revision plus 1 to 10^9 microseconds,
// under the last epoch or another member's), `future-far` (the last revision plus 2 days of microseconds, beyond
// subscribeRevisionAheadMsMax: refused) and `over-max` (2^52 + 2, above afterRevisionMax: refused). The open line
// then carries `edge`, the subscriber's last (revision, epoch) besides what was sent, and min_applied_index, which
// every open keeps (it is independent of after_revision, so the never-back-in-time check holds for every stream).
// A refused open (INVALID_ARGUMENT) is followed by a plain resume; its end line carries the gRPC and Cairn codes.

import { Client, Metadata, credentials, type ClientReadableStream, type ServiceError } from '@grpc/grpc-js';
import { GrpcCallError, ClientApiClient } from '../../src/api/grpc/client.ts';
import { methodDefinitionOf, namingServiceName } from '../../src/api/grpc/proto.ts';
import type { Outcome } from '../client.ts';
import { outcomeOfCode } from '../client.ts';
import { assertLoopback, httpRequest } from '../client-http.ts';
import type { MemberEndpoint, OperationSource, PlannedOperation, Generator } from '../generator.ts';
import type { HistoryRecorder } from '../history.ts';
import { type Random, sleep } from '../random.ts';

/** watchConvergenceBoundMs bounds how long after the final read every subscriber must show the final state. */
export const watchConvergenceBoundMs = 10_000;

/** watchAddress is element n's "ip:port" (never contacted: the checker is NONE). */
export function watchAddress(n: number): string {
  return `127.0.0.${11 + Math.floor(n / 20_000)}:${3000 + (n % 20_000)}`;
}

/** watchElementOf inverts watchAddress. */
export function watchElementOf(address: string): number | null {
  const match = /^127\.0\.0\.(1[1-5]):(\d+)$/.exec(address);
  if (match === null) return null;
  const port = Number(match[2]);
  if (port < 3000 || port >= 23_000) return null;
  return (Number(match[1]) - 11) * 20_000 + (port - 3000);
}

/** WatchOptions shape the workload. */
export interface WatchOptions {
  readonly services: number;
  readonly subscribersPerService: number;
  /** removeShare is the probability that a write deregisters an acknowledged element (when there is one). */
  readonly removeShare: number;
  /** edgeStartShare is the probability that an open uses an edge start (B4); absent: 0 (plain resumes, as in B1-B3). */
  readonly edgeStartShare?: number;
}

/** WatchEdgeStart names an edge start of B4 (see the file comment); `plain` is the ordinary resume. */
export type WatchEdgeStart = 'plain' | 'zero' | 'unknown-epoch' | 'future-near' | 'future-far' | 'over-max';

/** watchEdgeStarts lists the edge starts a subscriber draws from (uniformly). */
export const watchEdgeStarts: readonly Exclude<WatchEdgeStart, 'plain'>[] = ['zero', 'unknown-epoch', 'future-near', 'future-far', 'over-max'];

/** watchUnknownEpoch is the epoch of `unknown-epoch` starts: no member has it (members' are `<addr>/<start ms>/<pid>`). */
export const watchUnknownEpoch = 'b4-nobody/0/0';

/** watchFutureNearUsMax bounds the step of a `future-near` start: 10^9 microseconds (~17 minutes), well within a day. */
export const watchFutureNearUsMax = 1_000_000_000;

/** watchFutureFarUs is the step of a `future-far` start: 2 days of microseconds, beyond subscribeRevisionAheadMsMax (a day). */
export const watchFutureFarUs = 172_800_000_000;

/** watchOverMaxRevision is the `over-max` start: above afterRevisionMax (2^52), still an exactly representable integer. */
export const watchOverMaxRevision = 2 ** 52 + 2;

/** grpcInvalidArgument is gRPC's INVALID_ARGUMENT status code: a refused open. */
const grpcInvalidArgument = 3;

/** StreamEnd is why a stream ended: the reason line, and for an error its gRPC status code and Cairn code. */
interface StreamEnd {
  readonly reason: string;
  readonly code: number | null;
  readonly cairnCode: string | null;
}

/** cairnCodeOf reads a status's Cairn code: the `cairn-error-code` trailer, else the message's prefix (docs/grpc.md "Errors"). */
function cairnCodeOf(error: ServiceError): string | null {
  const trailer = error.metadata?.get('cairn-error-code')[0];
  if (trailer !== undefined) return String(trailer);
  return /^(CAIRN_[A-Z_]+):/.exec(error.details ?? '')?.[1] ?? null;
}

interface WireInstance {
  readonly ip?: string;
  readonly port?: number;
}

function elementsOf(instances: unknown): number[] {
  const list = Array.isArray(instances) ? (instances as WireInstance[]) : [];
  return list.map((i) => watchElementOf(`${i.ip ?? ''}:${i.port ?? 0}`) ?? -1).sort((a, b) => a - b);
}

function errorOutcome<T>(error: unknown): Outcome<T> {
  if (error instanceof GrpcCallError) {
    if (error.cairnCode !== undefined) return outcomeOfCode(error.cairnCode, error.message);
    return { type: 'info', error: `grpc ${error.statusName}: ${error.message.slice(0, 160)}` };
  }
  return { type: 'info', error: error instanceof Error ? error.message : String(error) };
}

/** WatchWorkload: the writers' operations, the subscribers and the final phase. */
export class WatchWorkload implements OperationSource {
  readonly name = 'watch';
  readonly services: readonly string[];
  private readonly clients = new Map<string, ClientApiClient>();
  private readonly streamClients = new Map<string, Client>();
  private nextElement = 1;
  private readonly removable = new Map<number, string>();
  private stopped = false;
  private readonly running: Promise<void>[] = [];
  private readonly live = new Set<ClientReadableStream<unknown>>();
  /** latest holds each subscriber's last snapshot: service revision and elements. */
  private readonly latest = new Map<number, { serviceRevision: number; elements: string }>();
  /** epochs holds the last epoch any subscriber received from each member (the `future-near` starts' other epochs). */
  private readonly epochs = new Map<string, string>();
  /** edgeStartShare is the probability of an edge start (B4; 0: every open is a plain resume, as in B1-B3). */
  readonly edgeStartShare: number;
  /** notImplemented is set when a member answered Subscribe with UNIMPLEMENTED. */
  notImplemented = false;

  constructor(
    readonly options: WatchOptions,
    private readonly members: readonly MemberEndpoint[],
    private readonly recorder: HistoryRecorder,
  ) {
    this.services = Array.from({ length: options.services }, (_, k) => `jepsen-watch-${k}`);
    this.edgeStartShare = options.edgeStartShare ?? 0;
    if (!(this.edgeStartShare >= 0 && this.edgeStartShare <= 1)) throw new RangeError(`watch: edgeStartShare must be within 0..1, got ${this.edgeStartShare}`);
    for (const member of members) {
      assertLoopback(member.grpcAddr);
      this.clients.set(member.addr, new ClientApiClient(member.grpcAddr, 6500));
      this.streamClients.set(member.addr, new Client(member.grpcAddr, credentials.createInsecure()));
    }
  }

  private client(addr: string): ClientApiClient {
    const client = this.clients.get(addr);
    if (client === undefined) throw new Error(`no client for ${addr}`);
    return client;
  }

  /** setup registers element 0 of every service (recorded), then sets the DEFAULT cluster's checker to NONE. */
  async setup(generator: Generator, firstProcess: number, random: Random): Promise<void> {
    let process = firstProcess;
    const deadline = Date.now() + 30_000;
    for (const service of this.services) {
      const element = this.nextElement++;
      for (;;) {
        if ((await generator.invokeOn(this.addOf(service, element), process++, random.pick(this.members).addr, random)) === 'ok') break;
        if (Date.now() > deadline) throw new Error(`watch setup: could not register ${service}'s first element`);
        await sleep(300);
      }
      const checker = encodeURIComponent(JSON.stringify({ type: 'NONE' }));
      for (;;) {
        const result = await httpRequest(random.pick(this.members).addr, 'PUT', `/nacos/v1/ns/cluster?serviceName=${service}&clusterName=DEFAULT&checkPort=0&useInstancePort4Check=true&healthChecker=${checker}`, 6500);
        if ('answer' in result && result.answer.status === 200) break;
        if (Date.now() > deadline) throw new Error(`watch setup: could not set ${service}'s checker to NONE`);
        await sleep(300);
      }
    }
  }

  /** next is a writer's next write: a deregistration (removeShare) or a registration of a fresh element. */
  next(_worker: number, random: Random): PlannedOperation {
    if (this.removable.size > 0 && random.chance(this.options.removeShare)) {
      const keys = [...this.removable.keys()];
      const element = keys[random.int(Math.min(keys.length, 100))] as number;
      const service = this.removable.get(element) as string;
      this.removable.delete(element);
      return this.removeOf(service, element);
    }
    return this.addOf(random.pick(this.services), this.nextElement++);
  }

  private addOf(service: string, element: number): PlannedOperation {
    const [ip, port] = watchAddress(element).split(':');
    const requestId = `jepsen-watch-add-${element}`;
    return {
      f: 'watch-add',
      transport: 'grpc',
      value: { service, element },
      run: async (_client, addr) => {
        try {
          const response = await this.client(addr).call(namingServiceName, 'RegisterInstance', { service, instance: { ip, port: Number(port), ephemeral: false }, requestId });
          this.removable.set(element, service);
          return { type: 'ok', value: Number(response['revision'] ?? 0) };
        } catch (error) {
          return errorOutcome(error);
        }
      },
      complete: (revision) => ({ service, element, revision }),
    };
  }

  private removeOf(service: string, element: number): PlannedOperation {
    const [ip, port] = watchAddress(element).split(':');
    const requestId = `jepsen-watch-remove-${element}`;
    return {
      f: 'watch-remove',
      transport: 'grpc',
      value: { service, element },
      run: async (_client, addr) => {
        try {
          const response = await this.client(addr).call(namingServiceName, 'DeregisterInstance', { service, ip, port: Number(port), ephemeral: false, requestId });
          return { type: 'ok', value: { revision: Number(response['revision'] ?? 0), removed: response['removed'] === true } };
        } catch (error) {
          return errorOutcome(error);
        }
      },
      complete: (result) => ({ service, element, ...(result as Record<string, unknown>) }),
    };
  }

  /** startSubscribers launches every subscriber. */
  startSubscribers(random: Random): void {
    let sub = 0;
    for (const service of this.services) {
      for (let i = 0; i < this.options.subscribersPerService; i++) this.running.push(this.subscriber(sub++, service, random.fork()));
    }
  }

  private async subscriber(sub: number, service: string, random: Random): Promise<void> {
    // The last snapshot received: what a plain resume sends (docs/grpc.md "Resume").
    const last = { revision: 0, epoch: '' };
    // The resume floor (docs/grpc.md): a member behind what this subscriber saw must not answer with older state.
    let minAppliedIndex = 0;
    // A refused open is followed by a plain resume, so that the refusal is seen not to disturb the member.
    let plainNext = false;
    for (let stream = 0; !this.stopped && stream < 100_000; stream++) {
      const member = random.pick(this.members).addr;
      const client = this.streamClients.get(member) as Client;
      const definition = methodDefinitionOf(namingServiceName, 'Subscribe');
      const edge: WatchEdgeStart = plainNext ? 'plain' : this.edgeStartOf(last.revision, random);
      plainNext = false;
      const { afterRevision, afterEpoch } = this.startOf(edge, last, random);
      const edgeFields = this.edgeStartShare > 0 ? { edge, lastRevision: last.revision, lastEpoch: last.epoch } : {};
      this.recorder.observe('watch-open', { sub, service, node: member, stream, afterRevision, afterEpoch, minAppliedIndex, ...edgeFields }, this.recorder.now());
      const call = client.makeServerStreamRequest(definition.path, definition.requestSerialize, (bytes: Buffer) => ({ ...definition.responseDeserialize(bytes) }) as unknown, { service, afterRevision, afterEpoch, minAppliedIndex }, new Metadata());
      this.live.add(call);
      const hopMs = random.between(3000, 9000);
      const ended = new Promise<StreamEnd>((resolve) => {
        const timer = setTimeout(() => {
          call.cancel();
          resolve({ reason: 'moved on (client cancel)', code: null, cairnCode: null });
        }, hopMs);
        call.on('data', (message: Record<string, unknown>) => {
          const time = this.recorder.now();
          const revision = Number(message['revision'] ?? 0);
          const epoch = String(message['epoch'] ?? '');
          const appliedIndex = Number(message['appliedIndex'] ?? 0);
          const serviceMessage = message['service'] as Record<string, unknown> | undefined;
          const serviceRevision = serviceMessage === undefined ? null : Number(serviceMessage['revision'] ?? 0);
          const elements = elementsOf(message['instances']);
          this.recorder.observe('watch-snapshot', { sub, service, node: member, stream, revision, epoch, appliedIndex, serviceRevision, exists: serviceMessage !== undefined, elements }, time);
          last.revision = revision;
          last.epoch = epoch;
          this.epochs.set(member, epoch);
          minAppliedIndex = Math.max(minAppliedIndex, appliedIndex);
          if (serviceRevision !== null) this.latest.set(sub, { serviceRevision, elements: elements.join(',') });
        });
        call.on('error', (error: ServiceError) => {
          clearTimeout(timer);
          if (error.code === 12) this.notImplemented = true;
          resolve({ reason: `${error.code} ${error.details ?? error.message}`.slice(0, 200), code: error.code, cairnCode: cairnCodeOf(error) });
        });
        call.on('end', () => {
          clearTimeout(timer);
          resolve({ reason: 'end', code: null, cairnCode: null });
        });
      });
      const end = await ended;
      this.live.delete(call);
      const codes = end.code === null ? {} : { code: end.code, cairnCode: end.cairnCode };
      this.recorder.observe('watch-end', { sub, service, node: member, stream, reason: end.reason, ...codes }, this.recorder.now());
      if (this.notImplemented) return;
      if (edge !== 'plain' && end.code === grpcInvalidArgument) plainNext = true;
      await sleep(random.between(100, 500));
    }
  }

  /** edgeStartOf draws how the next stream starts: an edge start with edgeStartShare once a snapshot was received, else plain. */
  private edgeStartOf(lastRevision: number, random: Random): WatchEdgeStart {
    // Before the first snapshot a plain start is already a fresh one, and the future starts need a revision to add to.
    if (this.edgeStartShare <= 0 || lastRevision === 0 || !random.chance(this.edgeStartShare)) return 'plain';
    return random.pick(watchEdgeStarts);
  }

  /** startOf is the (after_revision, after_epoch) an open of kind `edge` sends, from the subscriber's last snapshot. */
  private startOf(edge: WatchEdgeStart, last: { readonly revision: number; readonly epoch: string }, random: Random): { afterRevision: number; afterEpoch: string } {
    switch (edge) {
      case 'plain':
        return { afterRevision: last.revision, afterEpoch: last.epoch };
      case 'zero':
        return { afterRevision: 0, afterEpoch: '' };
      case 'unknown-epoch':
        return { afterRevision: last.revision, afterEpoch: watchUnknownEpoch };
      case 'future-near': {
        // The last epoch, or (half the time) the latest one another member issued (possibly this open's target, whose
        // counter may then be above after_revision: the one case where the rule lets the member skip the first snapshot).
        const lastMember = last.epoch.slice(0, last.epoch.indexOf('/'));
        const others = [...this.epochs].filter(([addr]) => addr !== lastMember).map(([, epoch]) => epoch);
        const afterEpoch = others.length > 0 && random.chance(0.5) ? random.pick(others) : last.epoch;
        return { afterRevision: last.revision + random.between(1, watchFutureNearUsMax), afterEpoch };
      }
      case 'future-far':
        return { afterRevision: last.revision + watchFutureFarUs, afterEpoch: last.epoch };
      case 'over-max':
        return { afterRevision: watchOverMaxRevision, afterEpoch: last.epoch };
    }
  }

  /**
   * finalPhase reads every service linearizably (retrying), then waits until every subscriber's last snapshot shows
   * that state or watchConvergenceBoundMs passes, then stops the subscribers.
   */
  async finalPhase(generator: Generator, firstProcess: number, random: Random): Promise<void> {
    let process = firstProcess;
    const finals = new Map<string, { serviceRevision: number; elements: string }>();
    const deadline = Date.now() + 30_000;
    for (const service of this.services) {
      while (Date.now() < deadline) {
        let got: { serviceRevision: number; elements: string } | null = null;
        const op: PlannedOperation = {
          f: 'watch-final',
          transport: 'grpc',
          value: { service },
          run: async (_client, addr) => {
            try {
              const response = await this.client(addr).call(namingServiceName, 'ListInstances', { service, consistency: 'LINEARIZABLE' });
              return { type: 'ok', value: { serviceRevision: Number(response['revision'] ?? 0), elements: elementsOf(response['instances']) } };
            } catch (error) {
              return errorOutcome(error);
            }
          },
          complete: (result) => {
            const value = result as { serviceRevision: number; elements: number[] };
            got = { serviceRevision: value.serviceRevision, elements: value.elements.join(',') };
            return { service, ...value };
          },
        };
        await generator.invokeOn(op, process++, random.pick(this.members).addr, random);
        if (got !== null) {
          finals.set(service, got);
          break;
        }
        await sleep(300);
      }
    }
    const converged = (): boolean => {
      let sub = 0;
      for (const service of this.services) {
        const want = finals.get(service);
        for (let i = 0; i < this.options.subscribersPerService; i++, sub++) {
          const seen = this.latest.get(sub);
          if (want === undefined || seen === undefined || seen.elements !== want.elements || seen.serviceRevision < want.serviceRevision) return false;
        }
      }
      return true;
    };
    const until = Date.now() + watchConvergenceBoundMs;
    while (!converged() && Date.now() < until) await sleep(200);
    await this.stop();
  }

  /** stop ends every stream and waits for the subscribers. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const call of this.live) call.cancel();
    await Promise.all(this.running);
  }

  /** close closes every channel. */
  close(): void {
    for (const client of this.clients.values()) client.close();
    for (const client of this.streamClients.values()) client.close();
  }
}
