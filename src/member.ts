// The composition root: one member of a Cairn cluster, wired together. Storage (LevelDB) -> Raft driver (peer
// gRPC) -> registry state machine -> naming façade -> HTTP (Nacos Open API) and gRPC (cairn.naming.v1) listeners.
import { format } from 'node:util';
import { setLogger as setGrpcLogger } from '@grpc/grpc-js';
import { createHash, randomUUID } from 'node:crypto';
import pino, { type Logger } from 'pino';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { processSteadyWall } from './clock.ts';
import type { FastifyInstance } from 'fastify';
import { CairnError } from './errors.ts';
import { assertLimitRelations, limits } from './limits.ts';
import { buildApp } from './api/http/app.ts';
import { CpRegistry } from './cp/cp-registry.ts';
import { RegistryStateMachine } from './cp/registry-state-machine.ts';
import { NamingService } from './naming/naming-service.ts';
import { checkBootstrap } from './replica/bootstrap.ts';
import { DeferredTransport } from './replica/deferred-transport.ts';
import { GrpcPeerTransport, peerTransportEvents, type PeerTransportEvent } from './replica/grpc-transport.ts';
import { distroProtocolVersion, peerProtocolVersion } from './replica/peer-protocol.ts';
import { LevelStorage } from './replica/level-storage.ts';
import { Replica } from './replica/replica.ts';
import type { RaftStorage, StoredRaftState } from './replica/storage.ts';
import type { Membership, NodeId } from './raft/types.ts';
import { clusterControl, registerRaftGauges, replicaMetrics } from './member-control.ts';
import { startGrpcApi, type GrpcApi } from './member-grpc.ts';
import { createPushes } from './member-push.ts';
import { ActiveHealthChecker } from './health/health-checker.ts';
import { memberAp, type MemberAp } from './member-ap.ts';
import { StallWatch } from './stall.ts';

/** MemberConfig is what one member needs to start (validated by the CLI, src/cli/main.ts). */
export interface MemberConfig {
  readonly addr: string;
  readonly host: string;
  readonly httpPort: number;
  readonly grpcPort: number;
  readonly peerPort: number;
  readonly members: readonly string[];
  readonly standalone: boolean;
  /** join starts an empty member that waits to be added by the leader (POST /cairn/v1/cluster/members). */
  readonly join: boolean;
  readonly snapshotEntries: number;
  /** snapshotCatchUpEntries: the log a compaction keeps before the applied index; null: the replica's default. */
  readonly snapshotCatchUpEntries: number | null;
  /** checkpointEntries: digest and compare the keyspace at every multiple of this applied index (0: never). */
  readonly checkpointEntries: number;
  readonly unsafeLocalReads: boolean;
  readonly unsafeNoFsync: boolean;
  /** unsafeNoRequestDedup: TESTING ONLY, the state machine ignores request ids (every retry applies again). */
  readonly unsafeNoRequestDedup: boolean;
  /** unsafePeerProtocolVersion: TESTING ONLY, the peer protocol version to speak instead of the build's (null: the build's). */
  readonly unsafePeerProtocolVersion: number | null;
  /** unsafeDistroProtocolVersion: TESTING ONLY, the same for the Distro protocol. */
  readonly unsafeDistroProtocolVersion: number | null;
  readonly dataDir: string;
  readonly logLevel: string;
}

/** Member is a running member; close() stops it gracefully. */
export interface Member {
  readonly replica: Replica;
  readonly http: FastifyInstance;
  readonly grpc: GrpcApi;
  close(): Promise<void>;
}

/** peerAddressOf derives a member's peer listener from its HTTP address (port - 1000, DESIGN.md). */
export function peerAddressOf(member: NodeId): string {
  const separator = member.lastIndexOf(':');
  const host = member.slice(0, separator);
  const port = Number(member.slice(separator + 1));
  return `${host}:${port - 1000}`;
}

/** startMember opens storage, joins or bootstraps the Raft group, and starts the HTTP and gRPC listeners. */
export async function startMember(config: MemberConfig, onFatal: (error: Error) => void, signal?: AbortSignal): Promise<Member> {
  assertLimitRelations();
  const logger = pino({ level: config.logLevel, base: { member: config.addr } });
  routeGrpcLog(logger.child({ component: 'grpc-js' }));
  // LevelStorage.open makes the data directory, and reports a filesystem that refuses with a code.
  const storage = await LevelStorage.open(config.dataDir);
  let initialised = false;
  const protocolVersion = config.unsafePeerProtocolVersion ?? peerProtocolVersion;
  if (config.unsafePeerProtocolVersion !== null) {
    logger.warn({ peerProtocolVersion: protocolVersion, build: peerProtocolVersion }, 'TESTING ONLY: this member speaks another peer protocol version than its build');
  }
  const distroVersion = config.unsafeDistroProtocolVersion ?? distroProtocolVersion;
  if (config.unsafeDistroProtocolVersion !== null) {
    logger.warn({ distroProtocolVersion: distroVersion, build: distroProtocolVersion }, 'TESTING ONLY: this member speaks another Distro protocol version than its build');
  }
  const ap = memberAp(config.addr, config.members, config.host, peerAddressOf, logger, distroVersion);
  const peer = new GrpcPeerTransport({
    self: config.addr,
    listenHost: config.host,
    listenPort: config.peerPort,
    peerAddressOf,
    limits,
    logger: logger.child({ component: 'peer' }),
    services: [ap.service],
    protocolVersion,
  });
  const transport = new DeferredTransport(
    peer,
    async (from) => ({ memberId: config.addr, initialised, heardFromYou: await storage.hasPeerContact(from), clusterId: '' }),
  );
  try {
    initialised = (await storage.load()) !== null;
    transport.setPeers(config.members.filter((member) => member !== config.addr));
    await listening('peer', `${config.host}:${config.peerPort}`, "--peer-port, else --addr's port - 1000", () => transport.listen());
    await prepareStorage(config, storage, transport, logger, signal);
    initialised = true;
    return await assemble(config, storage, transport, logger, onFatal, ap, () => peer.counters(), signal);
  } catch (error) {
    ap.close();
    await transport.close().catch(() => undefined);
    await storage.close().catch(() => undefined);
    throw error;
  }
}

/**
 * routeGrpcLog sends grpc-js's own log lines (its errors go to stderr as bare text otherwise, e.g. "E No address
 * added out of total 1 resolved" beside the member's own report of the same failure) into the member's log.
 */
function routeGrpcLog(logger: Logger): void {
  const line = (level: 'warn' | 'info' | 'debug') => (...args: unknown[]): void => logger[level]({ grpc: format(...args) }, 'grpc-js');
  setGrpcLogger({ error: line('warn'), info: line('info'), debug: line('debug') });
}

/**
 * listening runs a listener's start and reports a failure to bind as CAIRN_INVALID_ARGUMENT naming the listener, its
 * address and the flag that sets it, with the system's reason (EADDRINUSE, EADDRNOTAVAIL...): grpc-js's own text
 * ("No address added out of total 1 resolved") names neither.
 */
async function listening<T>(listener: string, address: string, flag: string, start: () => Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (error) {
    if (error instanceof CairnError) throw error;
    const reason = error instanceof Error ? error.message : String(error);
    const system = /\b(E[A-Z]+)\b/.exec(reason)?.[1];
    const hint = system === 'EADDRINUSE' ? 'another process holds that port' : system === 'EADDRNOTAVAIL' ? 'the host is not an address of this machine' : 'see the reason';
    throw new CairnError('CAIRN_INVALID_ARGUMENT', `the ${listener} listener cannot bind ${address} (${hint}; set by ${flag}): ${reason}`, { cause: error });
  }
}

/** storedMembership is the configuration a member's stored state holds: its log's last membership entry, else its snapshot's. */
function storedMembership(stored: StoredRaftState): Membership {
  for (let i = stored.entries.length - 1; i >= 0; i--) {
    const entry = stored.entries[i];
    if (entry?.kind === 'membership') return entry.membership;
  }
  return stored.snapshot.membership;
}

/**
 * checkStoredMembership compares an initialised member's stored configuration with its --members. Once a data
 * directory is initialised the stored configuration decides (membership changes at run time move it away from the
 * flags), so a difference is only logged, except one that can only be a data directory of another cluster: flags
 * naming other members, none of whom the stored configuration holds. Started that way, a standalone member's
 * directory (or another cluster's) led a group of its own and took writes while the members named beside it formed
 * another group with it as a voter, and its reads, linearizable ones included, went apart from theirs (the
 * operational audit of session 31). etcd refuses such a start by its cluster id; here the configuration says it.
 */
function checkStoredMembership(config: MemberConfig, membership: Membership, logger: Logger): void {
  const stored = [...membership.voters, ...membership.learners];
  if (stored.length === 0) return; // a --join member not added yet: it has no configuration of its own
  const flagged = config.members;
  const same = stored.length === flagged.length && flagged.every((member) => stored.includes(member));
  if (same) return;
  const othersFlagged = flagged.filter((member) => member !== config.addr);
  if (othersFlagged.length > 0 && !othersFlagged.some((member) => stored.includes(member))) {
    throw new CairnError('CAIRN_INVALID_ARGUMENT',
      `the data directory ${config.dataDir} holds a cluster of ${stored.join(',')}, which names none of the other members in --members ` +
      `(${othersFlagged.join(',')}): it is another cluster's (or a standalone member's). Start it with --members ${stored.join(',')}, ` +
      'or give this member an empty data directory and add it with --join (docs/operations.md, "Changing membership")');
  }
  logger.warn({ stored, flagged }, 'the stored configuration differs from --members; the stored one is used (membership changed at run time?)');
}

/** prepareStorage initialises a new member's storage, or refuses to start a wiped member as a voter. */
async function prepareStorage(config: MemberConfig, storage: RaftStorage, transport: DeferredTransport, logger: Logger, signal?: AbortSignal): Promise<void> {
  const stored = await storage.load();
  if (stored !== null) {
    if (stored.identity.memberId !== config.addr) {
      throw new CairnError('CAIRN_INVALID_ARGUMENT', `the data directory ${config.dataDir} belongs to member ${stored.identity.memberId}, not ${config.addr}`);
    }
    checkStoredMembership(config, storedMembership(stored), logger);
    if (config.join) logger.warn({}, '--join is ignored: the data directory is initialised, and the member goes on with its stored state');
    return;
  }
  if (config.join) {
    await storage.initialise({ clusterId: 'joined', memberId: config.addr }, { voters: [], learners: [] });
    logger.info({}, 'empty member started with --join: it waits for the leader to add it');
    return;
  }
  if (config.standalone) {
    await storage.initialise({ clusterId: randomUUID(), memberId: config.addr }, { voters: [config.addr], learners: [] });
    return;
  }
  await checkBootstrap(config.addr, config.members, transport, logger, limits.bootstrapWaitMs, signal);
  const clusterId = createHash('sha256').update([...config.members].sort().join(',')).digest('hex').slice(0, 32);
  await storage.initialise({ clusterId, memberId: config.addr }, { voters: [...config.members], learners: [] });
}

async function assemble(
  config: MemberConfig, storage: RaftStorage, transport: DeferredTransport, logger: Logger, onFatal: (error: Error) => void, ap: MemberAp,
  peerCounters: () => Readonly<Record<PeerTransportEvent, number>>, signal?: AbortSignal,
): Promise<Member> {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  registerClockGauge(registry);
  registerPeerTransportCounter(registry, peerCounters);
  const stateMachine = new RegistryStateMachine({ unsafeNoRequestDedup: config.unsafeNoRequestDedup });
  const replica = await Replica.open({
    id: config.addr,
    raft: raftConfig(),
    seed: createHash('sha256').update(`${config.addr}/${process.pid}/${Date.now()}`).digest().readUInt32BE(0),
    tickMs: limits.raftTickMs,
    requestTimeoutMs: limits.requestTimeoutMs,
    proposalsPendingMax: limits.proposalsPendingMax,
    snapshotEntries: config.snapshotEntries,
    ...(config.snapshotCatchUpEntries === null ? {} : { snapshotCatchUpEntries: config.snapshotCatchUpEntries }),
    checkpointEvery: config.checkpointEntries,
    storage,
    transport,
    stateMachine,
    logger: logger.child({ component: 'raft' }),
    metrics: replicaMetrics(registry),
    onFatal,
    unsafe: { localReads: config.unsafeLocalReads, noFsync: config.unsafeNoFsync },
  });
  if (config.unsafeLocalReads || config.unsafeNoFsync || config.unsafeNoRequestDedup) {
    const unsafe = { unsafeLocalReads: config.unsafeLocalReads, unsafeNoFsync: config.unsafeNoFsync, unsafeNoRequestDedup: config.unsafeNoRequestDedup };
    logger.warn(unsafe, 'UNSAFE TESTING MODE: this member breaks its guarantees on purpose');
  }
  registerRaftGauges(registry, () => replica.status());
  let serving = true;
  const cp = new CpRegistry(replica, stateMachine);
  const ephemeral = ap.start(registry);
  // The AP path follows the group's membership (members added or removed at run time); a --join member not added
  // yet has no configuration and keeps its --members list.
  replica.onMembershipChanged((members) => ephemeral.setMembers(members.length > 0 ? members : config.members));
  const naming = new NamingService({ cp, ephemeral });
  // Ready (GET /cairn/v1/health 200, gRPC health SERVING, the Nacos readiness probe UP) once the AP path serves
  // reads too: a member that has just started refuses ephemeral reads until its start-up Distro snapshot is loaded
  // or the load gave up (docs/ap.md "Start-up: reads wait for the snapshot"), so a load balancer or Kubernetes keeps
  // clients off it meanwhile, as Nacos 1.4 reports DOWN until its Distro load is done.
  const ready = (): boolean => serving && ephemeral.servesReads();
  const health = new ActiveHealthChecker({ self: config.addr, raft: replica, proposer: cp, view: stateMachine, registry, logger: logger.child({ component: 'health' }) });
  const cluster = clusterControl(replica, config.addr, ready);
  const pushes = createPushes({ naming, stateMachine, host: config.host, addr: config.addr, registry, logger: logger.child({ component: 'push' }) });
  const stall = stallWatch(registry, logger.child({ component: 'stall' }));
  // buildApp names its own component ('http'): a child here wrote the key twice on every line.
  const http = buildApp({ naming, cluster, metrics: registry, logger, pushTargets: pushes.udp, stall });
  try {
    await listening('HTTP', config.addr, '--addr', () => http.listen({ host: config.host, port: config.httpPort }));
    await pushes.start();
    const grpc = await listening('gRPC', `${config.host}:${config.grpcPort}`, "--grpc-port, else --addr's port + 1000",
      () => startGrpcApi({ naming, ready, host: config.host, port: config.grpcPort, logger: logger.child({ component: 'grpc' }), subscriptions: pushes.hub, stall, metrics: registry }));
    health.start();
    stall.start();
    // `cairn ready` is printed when the health answers 200 (DESIGN.md, Command line): after the AP path serves reads.
    // The wait is bounded by the load's rounds (docs/ap.md); a stop requested meanwhile ends it.
    await Promise.race([ephemeral.readsServed, aborted(signal)]);
    let closing: Promise<void> | null = null;
    const close = (): Promise<void> =>
      (closing ??= (async () => {
        serving = false;
        stall.stop();
        await health.close();
        await http.close().catch((error: unknown) => logger.warn({ err: error }, 'http close failed'));
        await pushes.close();
        // Sessions end first, at once and with their own status (CAIRN_SHUTTING_DOWN), not cancelled by the gRPC
        // server's close after its grace, racing the AP node's close.
        ap.endSessions();
        await grpc.close();
        ap.close();
        await replica.close();
      })());
    return { replica, http, grpc, close };
  } catch (error) {
    await health.close();
    await http.close().catch(() => undefined);
    await pushes.close();
    ap.close();
    await replica.close();
    throw error;
  }
}

/** aborted resolves when `signal` aborts (never without one). */
function aborted(signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal === undefined) return;
    if (signal.aborted) return resolve();
    signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

/** raftConfig maps src/limits.ts onto the core's configuration. */
function raftConfig(): Parameters<typeof Replica.open>[0]['raft'] {
  return {
    electionTicks: limits.electionTicks,
    heartbeatTicks: limits.heartbeatTicks,
    preVote: true,
    checkQuorum: true,
    inflightMessagesMax: limits.inflightMessagesMax,
    inflightBytesMax: limits.inflightBytesMax,
    messageBytesMax: limits.messageBytesMax,
    uncommittedBytesMax: limits.uncommittedBytesMax,
    committedBytesPerReadyMax: limits.committedBytesPerReadyMax,
    snapshotChunkBytes: limits.snapshotChunkBytes,
    pendingReadsMax: limits.pendingReadsMax,
  };
}

/**
 * registerClockGauge exposes how far the system clock stands from the steady clock the AP layer reads (src/clock.ts):
 * near 0 normally; after a step of the system clock, the step, shrinking as the steady clock slews toward it.
 */
function registerClockGauge(registry: Registry): void {
  registry.registerMetric(new Gauge({
    name: 'cairn_clock_wall_offset_seconds',
    help: 'System wall clock minus the steady clock of versions and expiry (a step of the system clock shows here until slewed away)',
    registers: [],
    collect() {
      this.set(processSteadyWall.offsetMs() / 1000);
    },
  }));
}

/**
 * stallWatch builds the member's stall fence (src/stall.ts) with its metrics: cairn_member_stalls_total (stalls
 * seen), cairn_member_stall_seconds_max (the longest) and cairn_stall_refused_writes_total{api}; each stall is logged.
 */
function stallWatch(registry: Registry, log: Logger): StallWatch {
  const stalls = new Counter({ name: 'cairn_member_stalls_total', help: 'Times the event loop stood still for over stallThresholdMs (paused, a VM stall, a long GC, starved of CPU).', registers: [registry] });
  const longest = new Gauge({ name: 'cairn_member_stall_seconds_max', help: 'The longest stall seen since the member started.', registers: [registry] });
  const refusedReads = new Counter({ name: 'cairn_stall_refused_reads_total', help: 'Client reads of the registry refused with CAIRN_MEMBER_STALLED: read as the member resumed from a stall, before it caught up.', labelNames: ['api'], registers: [registry] });
  const refused = new Counter({ name: 'cairn_stall_refused_writes_total', help: 'Client writes refused with CAIRN_MEMBER_STALLED: read as the member resumed from a stall.', labelNames: ['api'], registers: [registry] });
  let longestMs = 0;
  return new StallWatch({
    checkMs: limits.stallCheckMs,
    thresholdMs: limits.stallThresholdMs,
    graceMs: limits.stallGraceMs,
    graceMaxMs: limits.stallGraceMsMax,
    onStall: (stalledMs) => {
      stalls.inc();
      if (stalledMs > longestMs) {
        longestMs = stalledMs;
        longest.set(stalledMs / 1000);
      }
      log.warn({ stalledMs: Math.round(stalledMs) }, 'the event loop stood still; client writes read as it resumes are refused (CAIRN_MEMBER_STALLED)');
    },
    onRefused: (api) => refused.inc({ api }),
    onReadRefused: (api) => refusedReads.inc({ api }),
  });
}

/**
 * registerPeerTransportCounter exports the peer transport's own counts (messages queued, sent, dropped, refused for
 * their peer protocol version, ...) as cairn_peer_transport_events_total{event}, read when scraped: the transport
 * counts in plain numbers on its hot path, so the export costs nothing per message.
 */
function registerPeerTransportCounter(registry: Registry, counters: () => Readonly<Record<PeerTransportEvent, number>>): void {
  new Counter({
    name: 'cairn_peer_transport_events_total',
    help: 'Peer transport events by kind (Raft messages queued, sent, received, dropped; forwards; peers refused for their peer protocol version)',
    labelNames: ['event'],
    registers: [registry],
    collect(): void {
      const now = counters();
      this.reset();
      for (const event of peerTransportEvents) this.inc({ event }, now[event]);
    },
  });
}
