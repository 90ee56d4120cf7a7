// ZooKeeper's target, through node-zookeeper-client. Layout (Dubbo's registry layout): a service is the znode
// /cairn-bench/<service>, an instance is a child whose name is the URL-encoded ~400-byte JSON record (so one
// getChildren returns every record of the service, like a range or a list does); persistent instances are PERSISTENT
// znodes, ephemeral ones EPHEMERAL znodes of the client's session (kept alive by the client's own pings); a change
// notification is a getChildren watch, re-armed after every event. ZooKeeper serves every read from the member the
// session is connected to (local); it has no linearizable read short of sync(), which this client lacks.
import zookeeper, { type ZkClient, type ZkException } from 'node-zookeeper-client';
import { decodeRecord, ephemeralServices, listSlot, names, recordJson, type Driver, type EphemeralPool, type NotifyPairs, type ReadConsistency, type Slot, type TargetId } from './driver.ts';
import { NotMeasured } from './runner.ts';
import { sleep } from './processes.ts';

const root = '/cairn-bench';
const sessionTimeoutMs = 30_000;
/** ephemeralSessionsMax bounds the sessions the ephemeral workload opens (clients beyond share them). */
const ephemeralSessionsMax = 64;
/**
 * ephemeralTrackedMax bounds the ephemeral znodes the pool remembers for its orderly close (beyond it, ZooKeeper's
 * own session close removes the rest); ephemeralRemovalsInFlightMax bounds the removals in flight at that close.
 */
const ephemeralTrackedMax = 1_000_000;
const ephemeralRemovalsInFlightMax = 64;

function pathOf(service: string, slot: Slot): string {
  return `${root}/${service}/${encodeURIComponent(recordJson(slot))}`;
}

function failed(operation: string, error: ZkException): Error {
  return new Error(`${operation}: ${error.getName?.() ?? error.message}`);
}

/** connect opens a session to `connection` and resolves once it is connected. */
export async function connectZooKeeper(connection: string): Promise<ZkClient> {
  const client = zookeeper.createClient(connection, { sessionTimeout: sessionTimeoutMs, spinDelay: 200, retries: 0 });
  const connected = new Promise<void>((resolve) => client.once('connected', () => resolve()));
  client.connect();
  const ok = await Promise.race([connected.then(() => true), sleep(20_000).then(() => false)]);
  if (!ok) {
    client.close();
    throw new Error(`zookeeper: no session with ${connection} within 20 s`);
  }
  return client;
}

/** opTimeoutMs bounds every ZooKeeper call: the client queues requests while disconnected and never times out. */
const opTimeoutMs = 10_000;

function bounded<T>(operation: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${operation}: no answer within ${opTimeoutMs} ms`)), opTimeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function create(client: ZkClient, path: string, mode: number, tolerateExisting: boolean): Promise<void> {
  return bounded('create', new Promise((resolve, reject) => {
    client.create(path, null, mode, (error) => {
      if (error === null || (tolerateExisting && error.getCode() === zookeeper.Exception.NODE_EXISTS)) resolve();
      else reject(failed('create', error));
    });
  }));
}

function remove(client: ZkClient, path: string, tolerateMissing = false): Promise<void> {
  return bounded('remove', new Promise((resolve, reject) => client.remove(path, -1, (error) => {
    if (error === null || (tolerateMissing && error.getCode() === zookeeper.Exception.NO_NODE)) resolve();
    else reject(failed('remove', error));
  })));
}

function exists(client: ZkClient, path: string): Promise<boolean> {
  return bounded('exists', new Promise((resolve, reject) => client.exists(path, (error, stat) => (error === null ? resolve(stat !== null && stat !== undefined) : reject(failed('exists', error))))));
}

function children(client: ZkClient, path: string): Promise<string[]> {
  return bounded('getChildren', new Promise((resolve, reject) => client.getChildren(path, (error, list) => (error === null ? resolve(list) : reject(failed('getChildren', error))))));
}

/** ZooKeeperTarget is ZooKeeper through one session to one server. */
export class ZooKeeperTarget implements Driver {
  readonly id: TargetId = 'zookeeper';

  /** decodeRecords: list decodes every child name into its record (URL-decoding, then JSON), as a consumer must. */
  private constructor(private readonly connection: string, private readonly client: ZkClient, private readonly decodeRecords: boolean) {}

  static async open(connection: string, decodeRecords = false): Promise<ZooKeeperTarget> {
    return new ZooKeeperTarget(connection, await connectZooKeeper(connection), decodeRecords);
  }

  async prepare(registerServices: number, listSize: number): Promise<void> {
    await create(this.client, root, zookeeper.CreateMode.PERSISTENT, true);
    const services = [...Array.from({ length: registerServices }, (_, i) => names.register(i)), names.list, ...Array.from({ length: ephemeralServices }, (_, i) => names.ephemeral(i))];
    for (let i = 0; i < services.length; i += 50) {
      await Promise.all(services.slice(i, i + 50).map((service) => create(this.client, `${root}/${service}`, zookeeper.CreateMode.PERSISTENT, true)));
    }
    for (let i = 0; i < listSize; i += 50) {
      await Promise.all(Array.from({ length: Math.min(50, listSize - i) }, (_, j) => create(this.client, pathOf(names.list, listSlot(i + j)), zookeeper.CreateMode.PERSISTENT, true)));
    }
  }

  async register(slot: Slot): Promise<void> {
    await create(this.client, pathOf(names.register(slot.service), slot), zookeeper.CreateMode.PERSISTENT, false);
  }

  async deregister(slot: Slot): Promise<void> {
    await remove(this.client, pathOf(names.register(slot.service), slot));
  }

  async list(consistency: ReadConsistency): Promise<number> {
    if (consistency === 'linearizable') throw new NotMeasured('ZooKeeper reads are local to the server; a linearizable read needs sync(), which node-zookeeper-client lacks');
    const listed = await children(this.client, `${root}/${names.list}`);
    if (!this.decodeRecords) return listed.length;
    return listed.map((name) => decodeRecord(decodeURIComponent(name))).length;
  }

  async get(slot: Slot, consistency: ReadConsistency): Promise<void> {
    if (consistency === 'linearizable') throw new NotMeasured('ZooKeeper reads are local to the server; a linearizable read needs sync(), which node-zookeeper-client lacks');
    await bounded('exists', new Promise<void>((resolve, reject) => this.client.exists(pathOf(names.list, slot), (error, stat) => {
      if (error !== null) reject(failed('exists', error));
      else if (stat === null) reject(new Error('get: no such znode'));
      else resolve();
    })));
  }

  /** openEphemeral opens up to 64 sessions (clients beyond share them) and creates EPHEMERAL znodes in them. */
  async openEphemeral(clients: number): Promise<EphemeralPool> {
    const sessions: ZkClient[] = [];
    try {
      for (let i = 0; i < Math.min(clients, ephemeralSessionsMax); i++) sessions.push(await connectZooKeeper(this.connection));
    } catch (error) {
      for (const session of sessions) session.close();
      throw error;
    }
    // What each session created, so that close() can remove it first (see close).
    const created: { session: ZkClient; path: string }[] = [];
    return {
      register: async (client: number, slot: Slot): Promise<void> => {
        const session = sessions[client % sessions.length];
        if (session === undefined) throw new Error('no session');
        const path = pathOf(names.ephemeral(slot.service % ephemeralServices), slot);
        await create(session, path, zookeeper.CreateMode.EPHEMERAL, false);
        if (created.length < ephemeralTrackedMax) created.push({ session, path });
      },
      // The client library pings each session on its own (every third of the negotiated timeout); not counted.
      keepAlives: () => ({ sent: 0, failed: 0 }),
      // The znodes are removed one by one before the sessions close, outside the measured window. Closing a session
      // that holds thousands of them at once broke the ensemble for good (2026-11-24: ~5 300 paths of ~600 bytes, every
      // server out of its quorum after the 1-client cell): ZooKeeper 3.6+ writes a session's close as one transaction
      // naming every ephemeral path it removes, and a server reads back at most jute.maxbuffer (1 MiB by default)
      // plus as much again of slack (ZOOKEEPER-3496), so a ~3 MiB close can be read neither by the followers nor by
      // a server that restarts (ZOOKEEPER-4306, open). Session 18's 1-client cell (~2 600 paths, ~1.5 MiB) passed.
      // A registry client holds a few per session, not thousands.
      close: async (): Promise<void> => {
        let next = 0;
        const worker = async (): Promise<void> => {
          // Bounded by created.length: each pass takes the next entry.
          while (next < created.length) {
            const entry = created[next++];
            if (entry !== undefined) await remove(entry.session, entry.path, true).catch(() => undefined);
          }
        };
        await Promise.all(Array.from({ length: ephemeralRemovalsInFlightMax }, worker));
        created.length = 0;
        for (const session of sessions) session.close();
      },
    };
  }

  /** openNotify watches the children of one znode per pair; a change creates or removes a child. */
  async openNotify(pairs: number): Promise<NotifyPairs> {
    const waiters: Array<((at: number) => void) | null> = Array.from({ length: pairs }, () => null);
    const parents = Array.from({ length: pairs }, (_, i) => `${root}/${names.notify(i)}`);
    for (const parent of parents) await create(this.client, parent, zookeeper.CreateMode.PERSISTENT, true);
    // Every pair starts without its child: an earlier run (another client count) may have left one, and creating it
    // again would fail on every change of that pair.
    for (const parent of parents) await remove(this.client, `${parent}/instance`, true);
    let closed = false;
    const arm = (pair: number): Promise<void> =>
      bounded('getChildren (watch)', new Promise((resolve, reject) => {
        this.client.getChildren(parents[pair] ?? '', () => {
          const at = performance.now();
          const waiter = waiters[pair];
          waiters[pair] = null;
          if (!closed) void arm(pair).catch(() => undefined);
          waiter?.(at);
        }, (error) => (error === null ? resolve() : reject(failed('getChildren', error))));
      }));
    for (let pair = 0; pair < pairs; pair++) await arm(pair);
    const present = Array.from({ length: pairs }, () => false);
    return {
      change: async (pair: number): Promise<number> => {
        const child = `${parents[pair] ?? ''}/instance`;
        const notified = new Promise<number>((resolve) => (waiters[pair] = resolve));
        const started = performance.now();
        try {
          if (present[pair]) await remove(this.client, child);
          else await create(this.client, child, zookeeper.CreateMode.PERSISTENT, false);
        } catch (error) {
          // The outcome is unknown (no answer in time) or the pair's idea of its child was wrong: read the child's
          // state, so one lost answer costs one error, not a NO_NODE / NODE_EXISTS on every later change.
          present[pair] = await exists(this.client, child).catch(() => present[pair] ?? false);
          throw error;
        }
        present[pair] = !present[pair];
        const at = await Promise.race([notified, sleep(10_000).then(() => Number.NaN)]);
        if (Number.isNaN(at)) throw new Error('no watch event within 10 s');
        return at - started;
      },
      close: async (): Promise<void> => {
        closed = true;
      },
    };
  }

  close(): Promise<void> {
    this.client.close();
    return Promise.resolve();
  }
}
