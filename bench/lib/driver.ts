// What every system under test offers the workloads, and the one record they all store: a ~400-byte instance record
// (address, weight, health and a metadata map), kept natively by Cairn, as a JSON value by etcd, and as the name of
// a znode by ZooKeeper (Dubbo's layout: a provider's record is its znode's name, so one getChildren lists the
// records).

/** TargetId names one system reached through one client family. */
export type TargetId = 'cairn-grpc' | 'etcd-grpc' | 'zookeeper' | 'cairn-http' | 'etcd-http';

/** Slot is one instance: which service (by index) and its address. */
export interface Slot {
  readonly service: number;
  readonly ip: string;
  readonly port: number;
}

/** Consistency of a read: linearizable (through the leader/quorum) or local (the member's state). */
export type ReadConsistency = 'linearizable' | 'local';

/** EphemeralPool registers ephemeral instances for N clients, each client keeping its own session/lease alive. */
export interface EphemeralPool {
  register(client: number, slot: Slot): Promise<void>;
  /** keepAlives is how many keep-alives/beats were sent so far, and how many failed. */
  keepAlives(): { readonly sent: number; readonly failed: number };
  close(): Promise<void>;
}

/** NotifyPairs: one watched service/key per pair; change(pair) makes one change and resolves with its latency (ms). */
export interface NotifyPairs {
  change(pair: number): Promise<number>;
  close(): Promise<void>;
}

/** Driver is one target: a system through one client family, connected to one member. */
export interface Driver {
  readonly id: TargetId;
  /** prepare creates what the workloads need: services (Cairn: health checker NONE), parents, the list of 100. */
  prepare(registerServices: number, listSize: number): Promise<void>;
  register(slot: Slot): Promise<void>;
  deregister(slot: Slot): Promise<void>;
  /** list lists the service of `listSize` instances and resolves with how many it got. */
  list(consistency: ReadConsistency): Promise<number>;
  get(slot: Slot, consistency: ReadConsistency): Promise<void>;
  openEphemeral(clients: number): Promise<EphemeralPool>;
  openNotify(pairs: number): Promise<NotifyPairs>;
  close(): Promise<void>;
}

/**
 * decodeRecord turns one stored record (the JSON of recordJson) back into the instance a user works with: what a
 * registry client does with every record a list returns. Cairn's clients always hand out decoded instances (gRPC:
 * protobuf messages; HTTP: the JSON body); etcd's values and ZooKeeper's child names are only decoded under
 * `--decode-records` (main.ts), so that the default cells stay comparable with earlier runs.
 */
export function decodeRecord(text: string): Record<string, unknown> {
  const value: unknown = JSON.parse(text);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`a listed record is not a JSON object: ${text.slice(0, 80)}`);
  return value as Record<string, unknown>;
}

/** recordBytesTarget is the size of the record the workloads store (the "~400-byte instance record"). */
export const recordBytesTarget = 400;

/** metadataOf is the instance's metadata: fixed labels plus padding that brings the JSON record to ~400 bytes. */
export function metadataOf(slot: Slot): Record<string, string> {
  const base: Record<string, string> = {
    app: 'checkout-api', version: '2.14.3', zone: 'zone-b', protocol: 'grpc', owner: 'payments-team',
    'build.sha': 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4', region: 'eu-west', canary: 'false',
  };
  const unpadded = JSON.stringify(recordOf(slot, base)).length;
  base['annotations'] = 'x'.repeat(Math.max(0, recordBytesTarget - unpadded - '"annotations":"",'.length));
  return base;
}

/** recordOf is the instance record as JSON-able data: what etcd stores as the value and ZooKeeper as the name. */
export function recordOf(slot: Slot, metadata: Record<string, string>): object {
  return { ip: slot.ip, port: slot.port, cluster: 'DEFAULT', weight: 1, healthy: true, enabled: true, ephemeral: false, metadata };
}

/** recordJson is the ~400-byte JSON record of a slot. */
export function recordJson(slot: Slot): string {
  return JSON.stringify(recordOf(slot, metadataOf(slot)));
}

/** registerServiceName, listServiceName, ...: the service names every system uses (etcd and ZK as key prefixes). */
export const names = {
  register: (i: number): string => `reg-${i}`,
  list: 'list-0',
  ephemeral: (i: number): string => `eph-${i}`,
  notify: (i: number): string => `notify-${i}`,
};

/** ephemeralServices is how many services the ephemeral workload spreads its instances over. */
export const ephemeralServices = 64;

/** registerSlot is the n-th slot of the register workload (unique loopback address per n). */
export function registerSlot(n: number, services: number): Slot {
  return { service: n % services, ip: `127.${10 + ((n >> 16) & 0x7f)}.${(n >> 8) & 255}.${n & 255}`, port: 8080 };
}

/** listSlot is the i-th instance of the list service. */
export function listSlot(i: number): Slot {
  return { service: 0, ip: `127.9.0.${1 + (i % 250)}`, port: 9000 + Math.floor(i / 250) };
}
