// bench/push.ts: change-to-subscriber latency (issue 5), p50 and p99, for gRPC Subscribe streams and Nacos v1 UDP
// pushes, on a 3-member cluster (127.0.2.34-36). Subscribers sit on every member; a writer on member 1 alternately
// registers and deregisters an instance of the watched services (ephemeral by default: the AP path, the common
// case; --kind persistent for the Raft path). Latency is from just before the write is sent to the moment a
// subscriber holds a snapshot that reflects it (the instance present after a register, absent after a
// deregister), so it includes the write itself, replication to the subscriber's member, the merge window
// (limits.pushMergeWindowMs) and delivery.
//
//   node --import tsx bench/push.ts [--changes 200] [--services 4] [--subscribers 8] [--kind ephemeral|persistent]
//
// UDP subscribers are dgram sockets on 127.0.2.37 that list with udpPort (refreshing every 3 s, as the npm client
// polls) and acknowledge every push as a Nacos client does.
import dgram from 'node:dgram';
import http from 'node:http';
import { gunzipSync } from 'node:zlib';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir, totalmem } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ClientApiClient } from '../src/api/grpc/client.ts';
import { namingServiceName } from '../src/api/grpc/proto.ts';
import { startCairn, cairnGrpcAddress, type RunningCluster } from './lib/clusters.ts';
import { sleep, trackDirectory } from './lib/processes.ts';
import { boundedRequest } from '../test/support/http.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const addrs = ['127.0.2.34:18848', '127.0.2.35:18848', '127.0.2.36:18848'];
const udpHost = '127.0.2.37';
const instanceIp = '127.0.2.38';

/** Change is one write: which service, whether the instance is there afterwards, and when it was sent. */
interface Change {
  readonly service: string;
  readonly present: boolean;
  readonly sentAt: number;
}

/** Latencies collects, per transport, one sample per (change, subscriber): the first snapshot reflecting it. */
class Latencies {
  readonly samples = new Map<string, number[]>();
  add(transport: string, ms: number): void {
    const list = this.samples.get(transport) ?? [];
    // Bounded by changes x subscribers, both bounded by the command line.
    list.push(ms);
    this.samples.set(transport, list);
  }
  quantile(transport: string, q: number): number {
    const list = [...(this.samples.get(transport) ?? [])].sort((a, b) => a - b);
    return list.length === 0 ? Number.NaN : list[Math.min(list.length - 1, Math.floor(q * list.length))]!;
  }
}

/** Subscriber sees snapshots of one service and resolves the pending change when a snapshot reflects it. */
class Subscriber {
  private pending: Change | null = null;
  constructor(readonly transport: string, readonly service: string, private readonly latencies: Latencies) {}
  expect(change: Change): void {
    this.pending = change;
  }
  get waiting(): boolean {
    return this.pending !== null;
  }
  see(ips: readonly string[], receivedAt: number): void {
    const change = this.pending;
    if (change === null || ips.includes(instanceIp) !== change.present) return;
    this.latencies.add(this.transport, receivedAt - change.sentAt);
    this.pending = null;
  }
}

function grpcSubscriber(client: ClientApiClient, service: string, latencies: Latencies): Subscriber {
  const subscriber = new Subscriber('grpc', service, latencies);
  const stream = client.stream(namingServiceName, 'Subscribe', { service });
  void (async () => {
    try {
      for await (const snapshot of stream.messages) {
        const instances = (snapshot['instances'] ?? []) as Array<{ ip: string }>;
        subscriber.see(instances.map((instance) => instance.ip), performance.now());
      }
    } catch {
      // Cancelled at the end of the run.
    }
  })();
  return subscriber;
}

async function udpSubscriber(addr: string, service: string, latencies: Latencies, sockets: dgram.Socket[], refreshers: NodeJS.Timeout[]): Promise<Subscriber> {
  const subscriber = new Subscriber('udp', service, latencies);
  const socket = dgram.createSocket('udp4');
  sockets.push(socket);
  socket.on('message', (packet, remote) => {
    const receivedAt = performance.now();
    const text = (packet[0] === 0x1f && packet[1] === 0x8b ? gunzipSync(packet) : packet).toString('utf8');
    const push = JSON.parse(text) as { type: string; data: string; lastRefTime: number };
    socket.send(JSON.stringify({ type: 'push-ack', lastRefTime: push.lastRefTime, data: '' }), remote.port, remote.address);
    if (push.type !== 'dom') return;
    const data = JSON.parse(push.data) as { hosts?: Array<{ ip: string }> };
    subscriber.see((data.hosts ?? []).map((host) => host.ip), receivedAt);
  });
  await new Promise<void>((resolve) => socket.bind(0, udpHost, resolve));
  const port = socket.address().port;
  // The list request must leave from the UDP host: the member pushes to the request's source address.
  const list = async (): Promise<void> => {
    await new Promise<void>((resolve) => {
      const [host, httpPort] = addr.split(':');
      const req = http.request({ host, port: Number(httpPort), path: `/nacos/v1/ns/instance/list?serviceName=${service}&udpPort=${port}&clientIP=${udpHost}`, localAddress: udpHost }, (response) => {
        response.resume();
        response.on('end', () => resolve());
      });
      req.on('error', () => resolve());
      req.end();
    });
  };
  await list();
  refreshers.push(setInterval(() => void list(), 3000));
  return subscriber;
}

/** requestTimeoutMs bounds each write and each cluster setting: a loopback member answers within its own 5 s. */
const requestTimeoutMs = 10_000;

async function write(addr: string, service: string, present: boolean, kind: string): Promise<void> {
  const query = `serviceName=${service}&ip=${instanceIp}&port=9000&ephemeral=${kind === 'ephemeral'}`;
  const { status, text } = await boundedRequest(addr, present ? 'POST' : 'DELETE', `/nacos/v1/ns/instance?${query}`, { timeoutMs: requestTimeoutMs });
  if (status !== 200) throw new Error(`${present ? 'register' : 'deregister'} ${service}: ${status} ${text}`);
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: {
    changes: { type: 'string', default: '200' }, services: { type: 'string', default: '4' },
    subscribers: { type: 'string', default: '8' }, kind: { type: 'string', default: 'ephemeral' },
  } });
  const changes = Number(values.changes);
  const services = Array.from({ length: Number(values.services) }, (_, i) => `push-${i}`);
  const perService = Number(values.subscribers);
  const kind = values.kind ?? 'ephemeral';
  if (kind !== 'ephemeral' && kind !== 'persistent') throw new Error('--kind is ephemeral or persistent');
  const dataRoot = await mkdtemp(path.join(tmpdir(), 'cairn-bench-push-'));
  trackDirectory(dataRoot);
  const logDir = path.join(dataRoot, 'logs');
  await mkdir(logDir, { recursive: true });
  let cluster: RunningCluster | null = null;
  const clients = addrs.map((addr) => new ClientApiClient(cairnGrpcAddress(addr), 10_000));
  const sockets: dgram.Socket[] = [];
  const refreshers: NodeJS.Timeout[] = [];
  const latencies = new Latencies();
  try {
    cluster = await startCairn(root, addrs, dataRoot, logDir);
    await cluster.leaderIndex();
    const writer = addrs[0]!;
    for (const service of services) {
      // The service exists before anyone subscribes; persistent instances must not be probed (NONE checker).
      await write(writer, service, true, kind);
      if (kind === 'persistent') {
        const checker = encodeURIComponent('{"type":"NONE"}');
        await boundedRequest(writer, 'PUT', `/nacos/v1/ns/cluster?serviceName=${service}&clusterName=DEFAULT&checkPort=80&useInstancePort4Check=true&healthChecker=${checker}`, { timeoutMs: requestTimeoutMs });
      }
    }
    const subscribers: Subscriber[] = [];
    for (const service of services) {
      for (let k = 0; k < perService; k++) {
        const member = k % addrs.length;
        subscribers.push(grpcSubscriber(clients[member]!, service, latencies));
        subscribers.push(await udpSubscriber(addrs[member]!, service, latencies, sockets, refreshers));
      }
    }
    await sleep(2000);
    let present = true;
    for (let n = 0; n < changes; n++) {
      const service = services[n % services.length]!;
      if (n % services.length === 0) present = !present;
      const change: Change = { service, present, sentAt: performance.now() };
      const watching = subscribers.filter((subscriber) => subscriber.service === service);
      for (const subscriber of watching) subscriber.expect(change);
      await write(writer, service, present, kind);
      // The next change waits until every subscriber saw this one (or 2 s passed: then it counts as lost).
      const deadline = performance.now() + 2000;
      while (watching.some((subscriber) => subscriber.waiting) && performance.now() < deadline) await sleep(2);
      for (const subscriber of watching) if (subscriber.waiting) latencies.add(`${subscriber.transport}-lost`, 2000);
      await sleep(20);
    }
    const row = (transport: string): string => {
      const count = latencies.samples.get(transport)?.length ?? 0;
      const lost = latencies.samples.get(`${transport}-lost`)?.length ?? 0;
      return `| ${transport} | ${count} | ${lost} | ${latencies.quantile(transport, 0.5).toFixed(1)} | ${latencies.quantile(transport, 0.99).toFixed(1)} |`;
    };
    const lines = [`${kind} writes on ${addrs[0]}, ${changes} changes, ${services.length} services, ${perService} gRPC + ${perService} UDP subscribers each over 3 members:`, '',
      '| transport | samples | not seen within 2 s | p50 ms | p99 ms |', '|---|---|---|---|---|', row('grpc'), row('udp')];
    process.stdout.write(`${lines.join('\n')}\n`);
    const result = {
      date: new Date().toISOString(), machine: { cpus: cpus().length, memoryBytes: totalmem() }, kind, changes, services: services.length, subscribersPerService: perService,
      grpc: { samples: latencies.samples.get('grpc')?.length ?? 0, lost: latencies.samples.get('grpc-lost')?.length ?? 0, p50: latencies.quantile('grpc', 0.5), p99: latencies.quantile('grpc', 0.99) },
      udp: { samples: latencies.samples.get('udp')?.length ?? 0, lost: latencies.samples.get('udp-lost')?.length ?? 0, p50: latencies.quantile('udp', 0.5), p99: latencies.quantile('udp', 0.99) },
    };
    const file = path.join(root, 'bench', 'results', `push-${result.date.replace(/[:.]/g, '-')}.json`);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, JSON.stringify(result, null, 2));
    process.stdout.write(`results: ${path.relative(root, file)}\n`);
  } finally {
    for (const timer of refreshers) clearInterval(timer);
    for (const socket of sockets) socket.close();
    for (const client of clients) client.close();
    if (cluster !== null) await cluster.stop();
    await rm(dataRoot, { recursive: true, force: true });
  }
}

await main();
