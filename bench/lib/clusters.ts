// Launchers of the three 3-member clusters the bench compares, each on its own loopback addresses, each member a
// real process in its own process group with its own data directory, stopped by pid afterwards:
//
// - Cairn: `bin/cairn server --addr HOST:PORT --members A,B,C --data-dir DIR` (HTTP on PORT, client gRPC on
//   PORT+1000, peer on PORT-1000); ready when GET /cairn/v1/health answers 200; fsync on (the default).
// - etcd (Debian's etcd-server, 3.4): client URL HOST:2379 (gRPC and the JSON gateway), peer URL HOST:2380;
//   default fsync behaviour (etcd fsyncs its WAL on every commit); ready when GET /health says true.
// - ZooKeeper (Debian's zookeeper, 3.8): the packaged jars run with `java ... QuorumPeerMain zoo.cfg`, client port
//   HOST:2181, quorum HOST:2888, election HOST:3888; forceSync left at its default (yes); ready when the `srvr`
//   four-letter command reports a Mode.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { HttpTarget, assertLoopback } from './http.ts';
import { describe, startProcess, stopProcess, waitUntil, type Managed } from './processes.ts';
import { boundedRequest } from '../../test/support/http.ts';

/** MemberProcess is one running member: its client address and its process. */
export interface MemberProcess {
  readonly name: string;
  /** client is the address clients use: Cairn's HTTP port, etcd's client port, ZooKeeper's client port. */
  readonly client: string;
  readonly process: Managed;
}

/**
 * RunningCluster is a started cluster; leaderIndex() names the current leader among `members`; unhealthy() says
 * why the cluster cannot serve right now (a member not answering, no leader), or null when every member serves.
 */
export interface RunningCluster {
  readonly system: 'cairn' | 'etcd' | 'zookeeper';
  readonly members: readonly MemberProcess[];
  leaderIndex(): Promise<number>;
  unhealthy(): Promise<string | null>;
  stop(): Promise<void>;
}

/** healthTimeoutMs bounds each request of an unhealthy() check. */
const healthTimeoutMs = 2000;

/** firstProblem runs one check per member and returns the first member's problem (its error counts as one). */
async function firstProblem(members: readonly MemberProcess[], check: (member: MemberProcess) => Promise<string | null>): Promise<string | null> {
  const problems = await Promise.all(members.map((member) => check(member).catch((error: unknown) => `${member.name}: ${describe(error)}`)));
  return problems.find((problem) => problem !== null) ?? null;
}

const readyTimeoutMs = 90_000;

async function stopAll(members: readonly MemberProcess[]): Promise<void> {
  await Promise.all(members.map((member) => stopProcess(member.process)));
}

// ---------------------------------------------------------------------------------------------------------------
// Cairn

/** cairnGrpcAddress is a member's client gRPC address (HTTP port + 1000). */
export function cairnGrpcAddress(httpAddr: string): string {
  const separator = httpAddr.lastIndexOf(':');
  return `${httpAddr.slice(0, separator)}:${Number(httpAddr.slice(separator + 1)) + 1000}`;
}

let profileDir: string | null = null;

/** profileCairnMembers makes every Cairn member started from now on write a CPU profile into `dir` when it stops. */
export function profileCairnMembers(dir: string): void {
  profileDir = dir;
}

/** startCairnMember starts one member (`members` empty: standalone); it does not wait: callers poll cairnHealthy. */
export async function startCairnMember(root: string, addr: string, members: readonly string[], dataDir: string, logDir: string, extraArgs: readonly string[] = []): Promise<MemberProcess> {
  assertLoopback(addr);
  const args = ['server', '--addr', addr, '--data-dir', dataDir, '--log-level', 'warn', ...extraArgs];
  if (members.length > 0) args.push('--members', members.join(','));
  const log = path.join(logDir, `cairn-${addr.replace(':', '_')}.log`);
  // profileDir set: run the member as bin/cairn does, under `node --cpu-prof` (not allowed in NODE_OPTIONS).
  const process = profileDir === null
    ? startProcess(`cairn ${addr}`, path.join(root, 'bin', 'cairn'), args, log)
    : startProcess(`cairn ${addr}`, globalThis.process.execPath, [
      '--cpu-prof', `--cpu-prof-dir=${profileDir}`, '--import', pathToFileURL(path.join(root, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href,
      path.join(root, 'src', 'cli', 'main.ts'), ...args,
    ], log);
  return { name: `cairn ${addr}`, client: addr, process };
}

/**
 * SnapshotEvents are a Cairn cluster's cairn_raft_snapshots_total counters summed over its members: compactions, and
 * the whole-registry images a leader encoded and a follower installed because it was behind the compacted log.
 */
export interface SnapshotEvents {
  readonly compacted: number;
  readonly imagesEncoded: number;
  readonly installed: number;
}

/** parseSnapshotEvents reads the cairn_raft_snapshots_total counters of one member's /metrics text (null: none there). */
export function parseSnapshotEvents(text: string): SnapshotEvents | null {
  const counts = new Map<string, number>();
  for (const line of text.split('\n')) {
    const match = /^cairn_raft_snapshots_total\{event="(compacted|image_encoded|installed)"\} (\d+(?:\.\d+)?)$/.exec(line);
    if (match !== null) counts.set(match[1] ?? '', Number(match[2]));
  }
  if (counts.size !== 3) return null;
  return { compacted: counts.get('compacted') ?? 0, imagesEncoded: counts.get('image_encoded') ?? 0, installed: counts.get('installed') ?? 0 };
}

/** cairnSnapshotEvents sums the members' snapshot counters (null when a member did not answer or lacks them). */
export async function cairnSnapshotEvents(addrs: readonly string[]): Promise<SnapshotEvents | null> {
  try {
    const each = await Promise.all(addrs.map(async (addr) => {
      const { text } = await boundedRequest(addr, 'GET', '/metrics', { timeoutMs: healthTimeoutMs });
      return parseSnapshotEvents(text);
    }));
    if (each.some((events) => events === null)) return null;
    return each.reduce<SnapshotEvents>((sum, events) => ({
      compacted: sum.compacted + (events?.compacted ?? 0), imagesEncoded: sum.imagesEncoded + (events?.imagesEncoded ?? 0), installed: sum.installed + (events?.installed ?? 0),
    }), { compacted: 0, imagesEncoded: 0, installed: 0 });
  } catch {
    return null;
  }
}

/** cairnHealthy tells whether GET /cairn/v1/health answers 200. */
export async function cairnHealthy(addr: string): Promise<boolean> {
  const { status } = await boundedRequest(addr, 'GET', '/cairn/v1/health', { timeoutMs: 2000 });
  return status === 200;
}

/** startCairn starts a 3-member Cairn cluster at `addrs` and waits until every member is healthy. */
export async function startCairn(root: string, addrs: readonly string[], dataRoot: string, logDir: string): Promise<RunningCluster> {
  const members: MemberProcess[] = [];
  try {
    for (let i = 0; i < addrs.length; i++) {
      const dataDir = path.join(dataRoot, `cairn-${i + 1}`);
      await mkdir(dataDir, { recursive: true });
      members.push(await startCairnMember(root, addrs[i] ?? '', addrs, dataDir, logDir));
    }
    const processes = members.map((member) => member.process);
    for (const member of members) await waitUntil(`${member.name} healthy`, () => cairnHealthy(member.client), readyTimeoutMs, processes);
  } catch (error) {
    await stopAll(members);
    throw error;
  }
  return {
    system: 'cairn',
    members,
    async leaderIndex(): Promise<number> {
      let leader = -1;
      await waitUntil('a Cairn leader', async () => {
        const { text } = await boundedRequest(members[0]?.client ?? '', 'GET', '/cairn/v1/cluster', { timeoutMs: 2000 });
        const body = JSON.parse(text) as { leader?: string | null };
        leader = members.findIndex((member) => member.client === body.leader);
        return leader >= 0;
      }, 30_000);
      return leader;
    },
    async unhealthy(): Promise<string | null> {
      const problem = await firstProblem(members, async (member) => ((await cairnHealthy(member.client)) ? null : `${member.name}: health is not 200`));
      if (problem !== null) return problem;
      const { text } = await boundedRequest(members[0]?.client ?? '', 'GET', '/cairn/v1/cluster', { timeoutMs: healthTimeoutMs });
      const body = JSON.parse(text) as { leader?: string | null };
      return typeof body.leader === 'string' && body.leader !== '' ? null : 'cairn: no leader';
    },
    stop: () => stopAll(members),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// etcd

/** findEtcd returns the etcd binary, or null when it is not installed. */
export function findEtcd(): string | null {
  for (const candidate of ['/usr/bin/etcd', '/usr/local/bin/etcd']) if (existsSync(candidate)) return candidate;
  return null;
}

/** startEtcd starts a 3-member etcd cluster (client port 2379, peer port 2380 on each host). */
export async function startEtcd(binary: string, hosts: readonly string[], dataRoot: string, logDir: string): Promise<RunningCluster> {
  const names = hosts.map((_, i) => `etcd-${i + 1}`);
  const initialCluster = hosts.map((host, i) => `${names[i] ?? ''}=http://${host}:2380`).join(',');
  const members: MemberProcess[] = [];
  try {
    for (let i = 0; i < hosts.length; i++) {
      const host = hosts[i] ?? '';
      const name = names[i] ?? '';
      assertLoopback(`${host}:2379`);
      const args = [
        '--name', name, '--data-dir', path.join(dataRoot, name),
        '--listen-client-urls', `http://${host}:2379`, '--advertise-client-urls', `http://${host}:2379`,
        '--listen-peer-urls', `http://${host}:2380`, '--initial-advertise-peer-urls', `http://${host}:2380`,
        '--initial-cluster', initialCluster, '--initial-cluster-token', 'cairn-bench', '--initial-cluster-state', 'new',
        '--logger', 'zap', '--log-level', 'warn',
      ];
      const process = startProcess(name, binary, args, path.join(logDir, `${name}.log`));
      members.push({ name, client: `${host}:2379`, process });
    }
    const processes = members.map((member) => member.process);
    for (const member of members) {
      await waitUntil(`${member.name} healthy`, async () => {
        const { text } = await boundedRequest(member.client, 'GET', '/health', { timeoutMs: 2000 });
        return (JSON.parse(text) as { health?: string }).health === 'true';
      }, readyTimeoutMs, processes);
    }
  } catch (error) {
    await stopAll(members);
    throw error;
  }
  return {
    system: 'etcd',
    members,
    async leaderIndex(): Promise<number> {
      const ids: string[] = [];
      let leader = '';
      for (const member of members) {
        const gateway = new HttpTarget(member.client, 1);
        try {
          const status = await gateway.json('/v3/maintenance/status', {});
          const header = status['header'] as { member_id?: string } | undefined;
          ids.push(header?.member_id ?? '');
          leader = typeof status['leader'] === 'string' ? status['leader'] : leader;
        } finally {
          await gateway.close();
        }
      }
      const index = ids.indexOf(leader);
      if (index < 0) throw new Error(`etcd: no leader among ${ids.join(', ')} (leader ${leader})`);
      return index;
    },
    unhealthy: () => firstProblem(members, async (member) => {
      // etcd's /health is true only while the member has a leader and its store answers.
      const { text } = await boundedRequest(member.client, 'GET', '/health', { timeoutMs: healthTimeoutMs });
      const health = (JSON.parse(text) as { health?: string }).health;
      return health === 'true' ? null : `${member.name}: health ${String(health)}`;
    }),
    stop: () => stopAll(members),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// ZooKeeper

/** findZooKeeperClasspath returns the classpath of Debian's packaged ZooKeeper, or null when it is not installed. */
export function findZooKeeperClasspath(): string | null {
  const jar = '/usr/share/java/zookeeper.jar';
  if (!existsSync(jar) || !existsSync('/usr/bin/java')) return null;
  // The jar's manifest names its dependencies (netty, jute, slf4j, ...), all under /usr/share/java.
  return jar;
}

/** fourLetter sends a ZooKeeper four-letter command and resolves with the answer. */
export function fourLetter(hostPort: string, command: string, timeoutMs = 2000): Promise<string> {
  const separator = hostPort.lastIndexOf(':');
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: hostPort.slice(0, separator), port: Number(hostPort.slice(separator + 1)) });
    const chunks: Buffer[] = [];
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`${command}: timeout`)));
    socket.on('connect', () => socket.end(command));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

/** zooKeeperMode reads a server's Mode (leader, follower, standalone) from `srvr`, or '' when it has none yet. */
export async function zooKeeperMode(hostPort: string): Promise<string> {
  const answer = await fourLetter(hostPort, 'srvr');
  return /^Mode: (\w+)/m.exec(answer)?.[1] ?? '';
}

/** startZooKeeper starts a 3-server ensemble (client 2181, quorum 2888, election 3888 on each host). */
export async function startZooKeeper(classpath: string, hosts: readonly string[], dataRoot: string, logDir: string): Promise<RunningCluster> {
  const servers = hosts.map((host, i) => `server.${i + 1}=${host}:2888:3888`);
  const members: MemberProcess[] = [];
  try {
    for (let i = 0; i < hosts.length; i++) {
      const host = hosts[i] ?? '';
      assertLoopback(`${host}:2181`);
      const dir = path.join(dataRoot, `zk-${i + 1}`);
      await mkdir(dir, { recursive: true });
      await writeFile(path.join(dir, 'myid'), `${i + 1}\n`);
      const config = [
        'tickTime=2000', 'initLimit=10', 'syncLimit=5', `dataDir=${dir}`,
        `clientPort=2181`, `clientPortAddress=${host}`, ...servers,
        // Unlimited connections per client address: every bench client connects from the same loopback address.
        'maxClientCnxns=0', '4lw.commands.whitelist=srvr,ruok,mntr', 'admin.enableServer=false',
        // forceSync is not set: ZooKeeper's default (yes) fsyncs its transaction log before acknowledging.
      ].join('\n');
      const configFile = path.join(dir, 'zoo.cfg');
      await writeFile(configFile, `${config}\n`);
      const args = ['-Xms256m', '-Xmx1g', `-Dzookeeper.log.dir=${dir}`, '-cp', classpath, 'org.apache.zookeeper.server.quorum.QuorumPeerMain', configFile];
      const process = startProcess(`zookeeper-${i + 1}`, '/usr/bin/java', args, path.join(logDir, `zookeeper-${i + 1}.log`));
      members.push({ name: `zookeeper-${i + 1}`, client: `${host}:2181`, process });
    }
    const processes = members.map((member) => member.process);
    for (const member of members) {
      await waitUntil(`${member.name} serving`, async () => ['leader', 'follower'].includes(await zooKeeperMode(member.client)), readyTimeoutMs, processes, 250);
    }
  } catch (error) {
    await stopAll(members);
    throw error;
  }
  return {
    system: 'zookeeper',
    members,
    async leaderIndex(): Promise<number> {
      const modes = await Promise.all(members.map((member) => zooKeeperMode(member.client).catch((error: unknown) => describe(error))));
      const index = modes.indexOf('leader');
      if (index < 0) throw new Error(`zookeeper: no leader (${modes.join(', ')})`);
      return index;
    },
    async unhealthy(): Promise<string | null> {
      const modes = await Promise.all(members.map((member) => zooKeeperMode(member.client).catch((error: unknown) => describe(error))));
      const serving = modes.every((mode) => mode === 'leader' || mode === 'follower') && modes.filter((mode) => mode === 'leader').length === 1;
      return serving ? null : `zookeeper: modes ${modes.map((mode) => mode === '' ? 'none' : mode).join(', ')}`;
    },
    stop: () => stopAll(members),
  };
}

/** installHint is what to run when a peer system is missing. */
export function installPeers(): string {
  try {
    execFileSync('apt-get', ['install', '-y', 'etcd-server', 'zookeeper'], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, timeout: 600_000 });
    return 'installed';
  } catch (error) {
    return `apt-get install failed: ${describe(error)}`;
  }
}
