// Cairn's two targets: its typed gRPC API (cairn.naming.v1.Naming, through grpc-js, the same client family as
// etcd's gRPC row) and its Nacos v1 HTTP API (through undici, like etcd's JSON gateway row). Unary calls use the
// project's ClientApiClient; Subscribe and Session (being implemented in parallel) are driven from the proto
// directly, and a server that answers UNIMPLEMENTED / CAIRN_NOT_IMPLEMENTED makes the workload "not measured".
import { Client, Metadata, credentials, status as grpcStatus, type ClientDuplexStream, type ClientReadableStream, type ServiceError } from '@grpc/grpc-js';
import { ClientApiClient, GrpcCallError, clientFlowControlWindowBytes } from '../../src/api/grpc/client.ts';
import { methodDefinitionOf, namingServiceName } from '../../src/api/grpc/proto.ts';
import { metadataOf, names, ephemeralServices, listSlot, type Driver, type EphemeralPool, type NotifyPairs, type ReadConsistency, type Slot, type TargetId } from './driver.ts';
import { HttpTarget } from './http.ts';
import { NotMeasured } from './runner.ts';
import { describe, sleep } from './processes.ts';

const callDeadlineMs = 10_000;
/** keepAliveMs is how often a session / an instance is kept alive (Nacos's 5 s beat). */
const keepAliveMs = 5000;
/** beatingInstancesMax bounds the HTTP instances the bench keeps beating (each needs a beat every 5 s). */
const beatingInstancesMax = 5000;
/** sessionInstancesPerStream: instances one Session stream holds before its client opens another (half the member's 10 000). */
const sessionInstancesPerStream = 5000;
/** sessionStreamsMax bounds the Session streams one ephemeral pool opens. */
const sessionStreamsMax = 10_000;
const notYet = 'CAIRN_NOT_IMPLEMENTED';

/** prepareCairnServices creates services (persistent ones with the health checker NONE) through the HTTP API. */
export async function prepareCairnServices(http: HttpTarget, services: readonly string[], persistent: boolean): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < services.length) {
      const service = services[next++] ?? '';
      const created = await http.send('POST', `/nacos/v1/ns/service?serviceName=${service}`);
      if (created.status !== 200 && !created.text.includes('already exists')) throw new Error(`create ${service}: ${created.status} ${created.text}`);
      if (!persistent) continue;
      // The instances are not real: the members must not probe them (the bench measures the registry, not probes).
      const checker = encodeURIComponent('{"type":"NONE"}');
      const answer = await http.send('PUT', `/nacos/v1/ns/cluster?serviceName=${service}&clusterName=DEFAULT&checkPort=0&useInstancePort4Check=true&healthChecker=${checker}`);
      if (answer.status !== 200) throw new Error(`health checker NONE for ${service}: ${answer.status} ${answer.text}`);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
}

async function prepareCommon(http: HttpTarget, registerServices: number, listSize: number): Promise<void> {
  await prepareCairnServices(http, [...Array.from({ length: registerServices }, (_, i) => names.register(i)), names.list], true);
  for (let i = 0; i < listSize; i += 50) {
    await Promise.all(Array.from({ length: Math.min(50, listSize - i) }, async (_, j) => {
      const slot = listSlot(i + j);
      const answer = await http.send('POST', `/nacos/v1/ns/instance?serviceName=${names.list}&ip=${slot.ip}&port=${slot.port}&ephemeral=false&metadata=${encodeURIComponent(JSON.stringify(metadataOf(slot)))}`);
      if (answer.status !== 200) throw new Error(`list instance: ${answer.status} ${answer.text}`);
    }));
  }
}

function unimplemented(error: unknown): string | null {
  if (error instanceof GrpcCallError && (error.code === grpcStatus.UNIMPLEMENTED || error.cairnCode === notYet)) return `${error.statusName}: ${error.message}`;
  const service = error as Partial<ServiceError>;
  if (service.code === grpcStatus.UNIMPLEMENTED) return `UNIMPLEMENTED: ${service.details ?? ''}`;
  if (describe(error).includes(notYet)) return describe(error);
  return null;
}

/** notifySlot is the instance a notify pair registers and removes. */
function notifySlot(pair: number): Slot {
  return { service: pair, ip: `127.8.${pair >> 8}.${pair & 255}`, port: 7000 };
}

function grpcInstance(slot: Slot, ephemeral: boolean): object {
  return { ip: slot.ip, port: slot.port, weight: 1, ephemeral, metadata: metadataOf(slot) };
}

/** CairnGrpc is Cairn through grpc-js on the client gRPC port. */
export class CairnGrpc implements Driver {
  readonly id: TargetId = 'cairn-grpc';
  private readonly client: ClientApiClient;
  private readonly http: HttpTarget;
  private readonly streams: Client;

  constructor(grpcAddr: string, httpAddr: string) {
    this.client = new ClientApiClient(grpcAddr, callDeadlineMs);
    this.streams = new Client(grpcAddr, credentials.createInsecure(), { 'grpc.enable_channelz': 0, 'grpc-node.flow_control_window': clientFlowControlWindowBytes });
    this.http = new HttpTarget(httpAddr, 8);
  }

  async prepare(registerServices: number, listSize: number): Promise<void> {
    await prepareCommon(this.http, registerServices, listSize);
  }

  private async call(method: string, request: object): Promise<Record<string, unknown>> {
    try {
      return await this.client.call(namingServiceName, method, request);
    } catch (error) {
      const reason = unimplemented(error);
      if (reason !== null) throw new NotMeasured(reason);
      throw error;
    }
  }

  async register(slot: Slot): Promise<void> {
    await this.call('RegisterInstance', { service: names.register(slot.service), instance: grpcInstance(slot, false) });
  }

  async deregister(slot: Slot): Promise<void> {
    await this.call('DeregisterInstance', { service: names.register(slot.service), ip: slot.ip, port: slot.port, ephemeral: false });
  }

  async list(consistency: ReadConsistency): Promise<number> {
    const response = await this.call('ListInstances', { service: names.list, consistency: consistency === 'linearizable' ? 'LINEARIZABLE' : 'LOCAL' });
    const instances = response['instances'];
    return Array.isArray(instances) ? instances.length : 0;
  }

  async get(slot: Slot, consistency: ReadConsistency): Promise<void> {
    await this.call('GetInstance', { service: names.list, ip: slot.ip, port: slot.port, consistency: consistency === 'linearizable' ? 'LINEARIZABLE' : 'LOCAL' });
  }

  /**
   * openEphemeral opens one Session stream per client; each registers its instances on it and keeps it alive. A
   * client whose session holds `perStream` instances (sessionInstancesPerStream) goes on in a new one (the old one stays open and
   * alive): a member keeps at most distroSessionInstancesMax (10 000) instances per session and refuses more, which a
   * 1-client cell of 10 s or more would reach.
   */
  async openEphemeral(clients: number, perStream = sessionInstancesPerStream): Promise<EphemeralPool> {
    const definition = methodDefinitionOf(namingServiceName, 'Session');
    let sent = 0;
    let failed = 0;
    let broken: string | null = null;
    const open = (): { stream: ClientDuplexStream<object, object>; send: (request: object) => Promise<void>; registered: number } => {
      const stream: ClientDuplexStream<object, object> = this.streams.makeBidiStreamRequest(
        definition.path, definition.requestSerialize, definition.responseDeserialize, new Metadata(), {},
      );
      // Answers come in request order: one resolver per request sent.
      const pending: Array<{ resolve: () => void; reject: (error: Error) => void }> = [];
      stream.on('data', () => pending.shift()?.resolve());
      stream.on('error', (error: ServiceError) => {
        const reason = unimplemented(error);
        broken = reason ?? describe(error);
        for (const waiter of pending.splice(0)) waiter.reject(reason === null ? error : new NotMeasured(reason));
      });
      stream.on('end', () => undefined);
      const send = (request: object): Promise<void> =>
        new Promise((resolve, reject) => {
          if (broken !== null) {
            reject(new NotMeasured(broken));
            return;
          }
          pending.push({ resolve, reject });
          stream.write(request);
        });
      const session = { stream, send, registered: 0 };
      if (opened.length >= sessionStreamsMax) throw new Error(`more than ${sessionStreamsMax} Session streams`);
      opened.push(session);
      return session;
    };
    // Every stream opened (kept alive and cancelled at close), and each client's current one.
    const opened: Array<ReturnType<typeof open>> = [];
    const current = Array.from({ length: clients }, open);
    const timer = setInterval(() => {
      for (const session of opened) {
        sent++;
        session.send({ keepAlive: {} }).catch(() => failed++);
      }
    }, keepAliveMs);
    return {
      register: (client: number, slot: Slot): Promise<void> => {
        const index = client % current.length;
        let session = current[index];
        if (session === undefined) return Promise.reject(new Error('no session'));
        if (session.registered >= perStream) {
          session = open();
          current[index] = session;
        }
        session.registered++;
        return session.send({ register: { service: names.ephemeral(slot.service % ephemeralServices), instance: grpcInstance(slot, true) } });
      },
      keepAlives: () => ({ sent, failed }),
      close: async (): Promise<void> => {
        clearInterval(timer);
        for (const session of opened) session.stream.cancel();
      },
    };
  }

  /** openNotify subscribes to one service per pair; a change registers or removes an instance of it. */
  async openNotify(pairs: number): Promise<NotifyPairs> {
    const services = Array.from({ length: pairs }, (_, i) => names.notify(i));
    await prepareCairnServices(this.http, services, true);
    // Every pair starts without its instance: an earlier run (another client count) may have left it registered, and
    // registering it again changes nothing, so no notification would come (the cause of the "no notification within
    // 10 s" errors of earlier full runs, one per pair left registered).
    await Promise.all(services.map((service, pair) => this.call('DeregisterInstance', { service, ip: notifySlot(pair).ip, port: notifySlot(pair).port, ephemeral: false })));
    const definition = methodDefinitionOf(namingServiceName, 'Subscribe');
    let broken: string | null = null;
    const waiters: Array<((at: number) => void) | null> = services.map(() => null);
    const first: Array<Promise<void>> = [];
    const streams = services.map((service, i) => {
      const stream: ClientReadableStream<object> = this.streams.makeServerStreamRequest(
        definition.path, definition.requestSerialize, definition.responseDeserialize, { service }, new Metadata(), {},
      );
      let gotFirst: () => void = () => undefined;
      first.push(new Promise<void>((resolve) => (gotFirst = resolve)));
      let initial = true;
      stream.on('data', () => {
        const at = performance.now();
        if (initial) {
          initial = false;
          gotFirst();
          return;
        }
        const waiter = waiters[i];
        waiters[i] = null;
        waiter?.(at);
      });
      stream.on('error', (error: ServiceError) => {
        if (error.code === grpcStatus.CANCELLED) return;
        broken = unimplemented(error) ?? describe(error);
        gotFirst();
      });
      return stream;
    });
    await Promise.race([Promise.all(first), sleep(10_000)]);
    const present = services.map(() => false);
    return {
      change: async (pair: number): Promise<number> => {
        if (broken !== null) throw new NotMeasured(`Subscribe: ${broken}`);
        const service = services[pair] ?? '';
        const slot = notifySlot(pair);
        const notified = new Promise<number>((resolve) => (waiters[pair] = resolve));
        const started = performance.now();
        const write = present[pair]
          ? this.call('DeregisterInstance', { service, ip: slot.ip, port: slot.port, ephemeral: false })
          : this.call('RegisterInstance', { service, instance: grpcInstance(slot, false) });
        await write;
        present[pair] = !present[pair];
        const at = await Promise.race([notified, sleep(callDeadlineMs).then(() => Number.NaN)]);
        if (Number.isNaN(at)) throw new Error(broken === null ? 'no notification within 10 s' : `Subscribe: ${broken}`);
        return at - started;
      },
      close: async (): Promise<void> => {
        for (const stream of streams) stream.cancel();
      },
    };
  }

  async close(): Promise<void> {
    this.client.close();
    this.streams.close();
    await this.http.close();
  }
}

/** CairnHttp is Cairn through its Nacos v1 Open API over HTTP/1.1 keep-alive connections. */
export class CairnHttp implements Driver {
  readonly id: TargetId = 'cairn-http';
  private readonly http: HttpTarget;

  constructor(httpAddr: string, connections: number) {
    this.http = new HttpTarget(httpAddr, connections);
  }

  async prepare(registerServices: number, listSize: number): Promise<void> {
    await prepareCommon(this.http, registerServices, listSize);
  }

  private async send(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string): Promise<string> {
    const answer = await this.http.send(method, path);
    if (answer.status === 200) return answer.text;
    if (answer.status === 501 || answer.text.includes(notYet)) throw new NotMeasured(`HTTP ${answer.status}: ${answer.text.slice(0, 200)}`);
    throw new Error(`HTTP ${answer.status}: ${answer.text.slice(0, 200)}`);
  }

  private static query(service: string, slot: Slot): string {
    return `serviceName=${service}&ip=${slot.ip}&port=${slot.port}`;
  }

  async register(slot: Slot): Promise<void> {
    await this.send('POST', `/nacos/v1/ns/instance?${CairnHttp.query(names.register(slot.service), slot)}&ephemeral=false&weight=1&metadata=${encodeURIComponent(JSON.stringify(metadataOf(slot)))}`);
  }

  async deregister(slot: Slot): Promise<void> {
    await this.send('DELETE', `/nacos/v1/ns/instance?${CairnHttp.query(names.register(slot.service), slot)}&ephemeral=false`);
  }

  async list(consistency: ReadConsistency): Promise<number> {
    const text = await this.send('GET', `/nacos/v1/ns/instance/list?serviceName=${names.list}&consistency=${consistency}`);
    const body = JSON.parse(text) as { hosts?: unknown[] };
    return body.hosts?.length ?? 0;
  }

  async get(slot: Slot, consistency: ReadConsistency): Promise<void> {
    await this.send('GET', `/nacos/v1/ns/instance?${CairnHttp.query(names.list, slot)}&consistency=${consistency}`);
  }

  /** openEphemeral registers with ephemeral=true and beats every registered instance every 5 s (Nacos v1). */
  async openEphemeral(): Promise<EphemeralPool> {
    const beating: Slot[] = [];
    let sent = 0;
    let failed = 0;
    let cursor = 0;
    // Each second, beat the fifth of the instances that is due: every instance every 5 s, spread evenly.
    const timer = setInterval(() => {
      const count = Math.ceil(beating.length / (keepAliveMs / 1000));
      for (let k = 0; k < count && beating.length > 0; k++) {
        const slot = beating[cursor++ % beating.length];
        if (slot === undefined) continue;
        const service = names.ephemeral(slot.service % ephemeralServices);
        const beat = encodeURIComponent(JSON.stringify({ ip: slot.ip, port: slot.port, serviceName: service, cluster: 'DEFAULT' }));
        sent++;
        this.send('PUT', `/nacos/v1/ns/instance/beat?${CairnHttp.query(service, slot)}&beat=${beat}`).catch(() => failed++);
      }
    }, 1000);
    return {
      register: async (_client: number, slot: Slot): Promise<void> => {
        await this.send('POST', `/nacos/v1/ns/instance?${CairnHttp.query(names.ephemeral(slot.service % ephemeralServices), slot)}&ephemeral=true&weight=1&metadata=${encodeURIComponent(JSON.stringify(metadataOf(slot)))}`);
        if (beating.length < beatingInstancesMax) beating.push(slot);
      },
      keepAlives: () => ({ sent, failed }),
      close: async (): Promise<void> => clearInterval(timer),
    };
  }

  openNotify(): Promise<NotifyPairs> {
    return Promise.resolve({
      change: () => Promise.reject(new NotMeasured('the notification workload compares gRPC streams (Cairn Subscribe, etcd Watch, ZooKeeper watches)')),
      close: () => Promise.resolve(),
    });
  }

  async close(): Promise<void> {
    await this.http.close();
  }
}
