// etcd's two targets: its v3 gRPC API (through grpc-js, over the subset of etcd's proto in bench/proto/etcd/) and
// its JSON gateway (POST /v3/kv/put etc. with base64 keys, through undici). An instance is the key
// /cairn-bench/<service>/<ip>:<port> holding the ~400-byte JSON record; a service is a key prefix; listing it is a
// range over the prefix (linearizable by default, serializable = local); an ephemeral instance is a key attached to
// its client's lease, kept alive over a LeaseKeepAlive stream (gRPC) or keepalive POSTs (gateway).
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, Metadata, credentials, status as grpcStatus, type ClientDuplexStream, type ServiceError } from '@grpc/grpc-js';
import { loadSync, type MethodDefinition, type PackageDefinition, type ServiceDefinition } from '@grpc/proto-loader';
import { decodeRecord, ephemeralServices, listSlot, names, recordJson, type Driver, type EphemeralPool, type NotifyPairs, type ReadConsistency, type Slot, type TargetId } from './driver.ts';
import { HttpTarget } from './http.ts';
import { NotMeasured } from './runner.ts';
import { describe, sleep } from './processes.ts';
import { clientFlowControlWindowBytes } from '../../src/api/grpc/client.ts';

const protoDir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'proto', 'etcd');
const callDeadlineMs = 10_000;
/** leaseTtlSeconds is each client's lease TTL; keepalives go every third of it (as etcd's clientv3 does). */
const leaseTtlSeconds = 15;
const keyPrefix = '/cairn-bench/';

let definition: PackageDefinition | null = null;

function method(service: string, name: string): MethodDefinition<object, Record<string, unknown>> {
  definition ??= loadSync(['rpc.proto'], { includeDirs: [protoDir], keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
  const found = definition[`etcdserverpb.${service}`];
  if (found === undefined || 'format' in found) throw new Error(`etcdserverpb.${service} is not a service`);
  const methodDefinition = (found as ServiceDefinition)[name];
  if (methodDefinition === undefined) throw new Error(`etcdserverpb.${service} has no ${name}`);
  return methodDefinition as MethodDefinition<object, Record<string, unknown>>;
}

/** keyOf is an instance's key. */
export function keyOf(service: string, slot: Slot): string {
  return `${keyPrefix}${service}/${slot.ip}:${slot.port}`;
}

/** prefixEnd is the range_end that selects every key starting with `prefix` (its last byte plus one). */
export function prefixEnd(prefix: string): Buffer {
  const end = Buffer.from(prefix);
  end[end.length - 1] = (end[end.length - 1] ?? 0) + 1;
  return end;
}

/** decodedCount decodes every listed value into its record (decodeRecord) and counts them; `base64`: the JSON gateway's values. */
function decodedCount(kvs: readonly unknown[], base64: boolean): number {
  let count = 0;
  for (const kv of kvs) {
    const value = (kv as { value?: unknown }).value;
    let bytes: Buffer;
    if (base64 && typeof value === 'string') bytes = Buffer.from(value, 'base64');
    else if (!base64 && value instanceof Uint8Array) bytes = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    else throw new Error('etcd listed a key without a value');
    decodeRecord(bytes.toString('utf8'));
    count += 1;
  }
  return count;
}

function b64(value: string | Buffer): string {
  return Buffer.from(value).toString('base64');
}

/** EtcdGrpc is etcd through grpc-js on the client port. */
export class EtcdGrpc implements Driver {
  readonly id: TargetId = 'etcd-grpc';
  private readonly client: Client;

  /** decodeRecords: list decodes every value into its record (decodeRecord), as a consumer must. */
  constructor(clientAddr: string, private readonly decodeRecords = false) {
    // The channel options of Cairn's own client (src/api/grpc/client.ts): channelz off and the same HTTP/2 window,
    // so both systems' clients do the same grpc-js work per call.
    this.client = new Client(clientAddr, credentials.createInsecure(), { 'grpc.enable_channelz': 0, 'grpc-node.flow_control_window': clientFlowControlWindowBytes });
  }

  private unary(service: string, name: string, request: object): Promise<Record<string, unknown>> {
    const m = method(service, name);
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest(m.path, m.requestSerialize, m.responseDeserialize, request, new Metadata(), { deadline: Date.now() + callDeadlineMs }, (error, response) => {
        if (error !== null) reject(new Error(`${name}: ${error.details === '' ? error.message : error.details}`));
        else if (response === undefined) reject(new Error(`${name}: empty response`));
        else resolve(response);
      });
    });
  }

  private put(key: string, value: string, lease = '0'): Promise<Record<string, unknown>> {
    return this.unary('KV', 'Put', { key: Buffer.from(key), value: Buffer.from(value), lease });
  }

  async prepare(_registerServices: number, listSize: number): Promise<void> {
    for (let i = 0; i < listSize; i += 50) {
      await Promise.all(Array.from({ length: Math.min(50, listSize - i) }, (_, j) => this.put(keyOf(names.list, listSlot(i + j)), recordJson(listSlot(i + j)))));
    }
  }

  async register(slot: Slot): Promise<void> {
    await this.put(keyOf(names.register(slot.service), slot), recordJson(slot));
  }

  async deregister(slot: Slot): Promise<void> {
    await this.unary('KV', 'DeleteRange', { key: Buffer.from(keyOf(names.register(slot.service), slot)) });
  }

  async list(consistency: ReadConsistency): Promise<number> {
    const prefix = `${keyPrefix}${names.list}/`;
    const response = await this.unary('KV', 'Range', { key: Buffer.from(prefix), range_end: prefixEnd(prefix), serializable: consistency === 'local' });
    const kvs = response['kvs'];
    if (!Array.isArray(kvs)) return 0;
    return this.decodeRecords ? decodedCount(kvs, false) : kvs.length;
  }

  async get(slot: Slot, consistency: ReadConsistency): Promise<void> {
    const response = await this.unary('KV', 'Range', { key: Buffer.from(keyOf(names.list, slot)), serializable: consistency === 'local' });
    const kvs = response['kvs'];
    if (!Array.isArray(kvs) || kvs.length !== 1) throw new Error('get: key not found');
  }

  /** openEphemeral grants one lease per client and keeps them all alive over one LeaseKeepAlive stream. */
  async openEphemeral(clients: number): Promise<EphemeralPool> {
    const leases: string[] = [];
    for (let i = 0; i < clients; i += 32) {
      const granted = await Promise.all(Array.from({ length: Math.min(32, clients - i) }, () => this.unary('Lease', 'LeaseGrant', { TTL: String(leaseTtlSeconds), ID: '0' })));
      for (const response of granted) leases.push(String(response['ID']));
    }
    const keepAlive = method('Lease', 'LeaseKeepAlive');
    const stream: ClientDuplexStream<object, object> = this.client.makeBidiStreamRequest(keepAlive.path, keepAlive.requestSerialize, keepAlive.responseDeserialize, new Metadata(), {});
    let sent = 0;
    let answered = 0;
    let failed = 0;
    stream.on('data', () => answered++);
    stream.on('error', (error: ServiceError) => {
      if (error.code !== grpcStatus.CANCELLED) failed++;
    });
    const timer = setInterval(() => {
      for (const lease of leases) {
        sent++;
        stream.write({ ID: lease });
      }
    }, (leaseTtlSeconds * 1000) / 3);
    return {
      register: async (client: number, slot: Slot): Promise<void> => {
        await this.put(keyOf(names.ephemeral(slot.service % ephemeralServices), slot), recordJson(slot), leases[client % leases.length] ?? '0');
      },
      keepAlives: () => ({ sent, failed: failed + Math.max(0, sent - answered - leases.length) }),
      close: async (): Promise<void> => {
        clearInterval(timer);
        stream.cancel();
        // Revoking deletes the workload's keys now rather than when the leases expire during a later workload.
        await Promise.all(leases.map((lease) => this.unary('Lease', 'LeaseRevoke', { ID: lease }).catch(() => undefined)));
      },
    };
  }

  /** openNotify watches the prefix of every pair on one Watch stream; a change puts or deletes the pair's key. */
  async openNotify(pairs: number): Promise<NotifyPairs> {
    const prefix = `${keyPrefix}notify/`;
    // Every pair starts without its key (an earlier run may have left some), before the watch exists.
    await this.unary('KV', 'DeleteRange', { key: Buffer.from(prefix), range_end: prefixEnd(prefix) });
    const watch = method('Watch', 'Watch');
    const stream: ClientDuplexStream<object, Record<string, unknown>> = this.client.makeBidiStreamRequest(watch.path, watch.requestSerialize, watch.responseDeserialize, new Metadata(), {});
    const waiters: Array<((at: number) => void) | null> = Array.from({ length: pairs }, () => null);
    let created: () => void = () => undefined;
    const ready = new Promise<void>((resolve) => (created = resolve));
    let broken: string | null = null;
    stream.on('data', (response: Record<string, unknown>) => {
      const at = performance.now();
      if (response['created'] === true) created();
      const events = response['events'];
      if (!Array.isArray(events)) return;
      for (const event of events as Array<{ kv?: { key?: Buffer } }>) {
        const key = event.kv?.key?.toString() ?? '';
        const pair = Number(key.slice(prefix.length).split('/')[0]);
        const waiter = waiters[pair];
        if (waiter !== undefined && waiter !== null) {
          waiters[pair] = null;
          waiter(at);
        }
      }
    });
    stream.on('error', (error: ServiceError) => {
      if (error.code !== grpcStatus.CANCELLED) broken = describe(error);
      created();
    });
    stream.write({ create_request: { key: Buffer.from(prefix), range_end: prefixEnd(prefix) } });
    await Promise.race([ready, sleep(10_000)]);
    const present = Array.from({ length: pairs }, () => false);
    return {
      change: async (pair: number): Promise<number> => {
        if (broken !== null) throw new NotMeasured(`Watch: ${broken}`);
        const key = `${prefix}${pair}/instance`;
        const notified = new Promise<number>((resolve) => (waiters[pair] = resolve));
        const started = performance.now();
        if (present[pair]) await this.unary('KV', 'DeleteRange', { key: Buffer.from(key) });
        else await this.put(key, recordJson({ service: pair, ip: `127.8.${pair >> 8}.${pair & 255}`, port: 7000 }));
        present[pair] = !present[pair];
        const at = await Promise.race([notified, sleep(callDeadlineMs).then(() => Number.NaN)]);
        if (Number.isNaN(at)) throw new Error('no watch event within 10 s');
        return at - started;
      },
      close: async (): Promise<void> => stream.cancel(),
    };
  }

  close(): Promise<void> {
    this.client.close();
    return Promise.resolve();
  }
}

/** EtcdHttp is etcd through its JSON gateway (grpc-gateway) on the client port. */
export class EtcdHttp implements Driver {
  readonly id: TargetId = 'etcd-http';
  private readonly http: HttpTarget;

  /** decodeRecords: as EtcdGrpc's. */
  constructor(clientAddr: string, connections: number, private readonly decodeRecords = false) {
    this.http = new HttpTarget(clientAddr, connections);
  }

  async prepare(): Promise<void> {
    // EtcdGrpc.prepare wrote the list keys; both targets read the same cluster.
  }

  async register(slot: Slot): Promise<void> {
    await this.http.json('/v3/kv/put', { key: b64(keyOf(names.register(slot.service), slot)), value: b64(recordJson(slot)) });
  }

  async deregister(slot: Slot): Promise<void> {
    await this.http.json('/v3/kv/deleterange', { key: b64(keyOf(names.register(slot.service), slot)) });
  }

  async list(consistency: ReadConsistency): Promise<number> {
    const prefix = `${keyPrefix}${names.list}/`;
    const body = await this.http.json('/v3/kv/range', { key: b64(prefix), range_end: b64(prefixEnd(prefix)), serializable: consistency === 'local' });
    const kvs = body['kvs'];
    if (!Array.isArray(kvs)) return 0;
    return this.decodeRecords ? decodedCount(kvs, true) : kvs.length;
  }

  async get(slot: Slot, consistency: ReadConsistency): Promise<void> {
    const body = await this.http.json('/v3/kv/range', { key: b64(keyOf(names.list, slot)), serializable: consistency === 'local' });
    if (!Array.isArray(body['kvs'])) throw new Error('get: key not found');
  }

  /** openEphemeral grants one lease per client through the gateway and keeps each alive with keepalive POSTs. */
  async openEphemeral(clients: number): Promise<EphemeralPool> {
    const leases: string[] = [];
    for (let i = 0; i < clients; i++) {
      const body = await this.http.json('/v3/lease/grant', { TTL: String(leaseTtlSeconds) });
      leases.push(String(body['ID']));
    }
    let sent = 0;
    let failed = 0;
    const timer = setInterval(() => {
      for (const lease of leases) {
        sent++;
        this.http.json('/v3/lease/keepalive', { ID: lease }).catch(() => failed++);
      }
    }, (leaseTtlSeconds * 1000) / 3);
    return {
      register: async (client: number, slot: Slot): Promise<void> => {
        await this.http.json('/v3/kv/put', { key: b64(keyOf(names.ephemeral(slot.service % ephemeralServices), slot)), value: b64(recordJson(slot)), lease: leases[client % leases.length] ?? '0' });
      },
      keepAlives: () => ({ sent, failed }),
      close: async (): Promise<void> => {
        clearInterval(timer);
        await Promise.all(leases.map((lease) => this.http.json('/v3/lease/revoke', { ID: lease }).catch(() => undefined)));
      },
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
