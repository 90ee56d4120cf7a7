// The `cairn` command (DESIGN.md, "Command line"): `server` runs a member, `cluster` a local cluster to try out,
// and the client commands talk to a member over gRPC.
//
// Exit codes: 0 success, help or version; 1 failure at run time; 2 bad usage (unknown command or flag, invalid
// value).

import { parseArgs, type ParseArgsConfig } from 'node:util';
import { isIP } from 'node:net';
import { readFileSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { limits } from '../limits.ts';

/** LogLevel is a pino log level accepted by --log-level. */
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';

/** logLevels lists every accepted --log-level value. */
export const logLevels: readonly LogLevel[] = Object.freeze(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']);

/** defaultAddr is the member's HTTP address when neither --addr nor CAIRN_ADDR is given (Nacos's port). */
export const defaultAddr = '127.0.0.1:8848';
/** defaultDataDir is the data directory when neither --data-dir nor CAIRN_DATA_DIR is given. */
export const defaultDataDir = './data';
/** grpcPortOffset derives the client gRPC port from the HTTP port, as Nacos does (8848 -> 9848). */
export const grpcPortOffset = 1000;
/** peerPortOffset derives the peer port from the HTTP port (8848 -> 7848), as Nacos's Raft port. */
export const peerPortOffset = -1000;

/** ServerConfig is the validated configuration of one member. */
export interface ServerConfig {
  /** addr is the member's identity and HTTP address, "host:port" ("[v6]:port" for IPv6); it is one of members. */
  readonly addr: string;
  /** host is the address every listener binds, without IPv6 brackets. */
  readonly host: string;
  readonly httpPort: number;
  /** grpcPort defaults to httpPort + 1000; httpPort, grpcPort and peerPort are distinct. */
  readonly grpcPort: number;
  /** peerPort defaults to httpPort - 1000. */
  readonly peerPort: number;
  /** members is every member's addr, this one included, without duplicates; [addr] when standalone. */
  readonly members: readonly string[];
  /** standalone is true when no --members was given: a Raft group of one. */
  readonly standalone: boolean;
  /** join starts an empty member that waits for the leader to add it (POST /cairn/v1/cluster/members). */
  readonly join: boolean;
  /** snapshotEntries: the member snapshots its state machine and compacts its log every this many entries. */
  readonly snapshotEntries: number;
  /** snapshotCatchUpEntries: the log a compaction keeps before the applied index; null: half of snapshotEntries, at most 10 000. */
  readonly snapshotCatchUpEntries: number | null;
  /** checkpointEntries: the members digest and compare their keyspaces at every multiple of this applied index; 0: never. */
  readonly checkpointEntries: number;
  /** unsafeLocalReads, unsafeNoFsync and unsafeNoRequestDedup plant known bugs for the jepsen-like suite's positive controls. */
  readonly unsafeLocalReads: boolean;
  readonly unsafeNoFsync: boolean;
  readonly unsafeNoRequestDedup: boolean;
  /** unsafePeerProtocolVersion: TESTING ONLY, speak this peer protocol version instead of the build's (rehearses an upgrade). */
  readonly unsafePeerProtocolVersion: number | null;
  /** unsafeDistroProtocolVersion: TESTING ONLY, the same for the Distro protocol. */
  readonly unsafeDistroProtocolVersion: number | null;
  /** dataDir is an absolute path. */
  readonly dataDir: string;
  readonly logLevel: LogLevel;
}

/** UsageError is bad command-line input: the command prints it with a hint and exits 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Environment is the process environment the parser reads its fallbacks from. */
export type Environment = Readonly<Record<string, string | undefined>>;

/** HostPort is an address split into its host (without IPv6 brackets) and port. */
export interface HostPort {
  readonly host: string;
  readonly port: number;
}

const hostnamePattern = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

/** parsePort parses a TCP port 1..65535 given as decimal digits; `what` names it in the error. */
export function parsePort(text: string, what: string): number {
  const port = /^\d{1,5}$/.test(text) ? Number(text) : Number.NaN;
  if (!(port >= 1 && port <= 65535)) throw new UsageError(`${what}: '${text}' is not a port (1-65535)`);
  return port;
}

/** parseHostPort parses "host:port" (or "[ipv6]:port"); `what` names the value in the error. */
export function parseHostPort(text: string, what: string): HostPort {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):([^:]*)$/.exec(text.trim());
  if (match === null) throw new UsageError(`${what}: '${text}' is not HOST:PORT (IPv6 as [ADDR]:PORT)`);
  const [, v6, name, portText = ''] = match;
  const host = (v6 ?? name ?? '').toLowerCase();
  const validHost = v6 !== undefined ? isIP(host) === 6 : isIP(host) === 4 || (hostnamePattern.test(host) && !/^[\d.]+$/.test(host));
  if (!validHost) throw new UsageError(`${what}: '${text}' has an invalid host '${v6 ?? name ?? ''}'`);
  return { host, port: parsePort(portText, what) };
}

/** FlagValues are parsed flags (the client and backup commands). */
export type FlagValues = Readonly<Record<string, unknown>>;

/** flags parses a command's flags strictly (no positionals); a bad flag is a UsageError. */
export function flags(args: readonly string[], options: NonNullable<ParseArgsConfig['options']>): FlagValues {
  try {
    return parseArgs({ args: [...args], options, strict: true, allowPositionals: false }).values;
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
}

/** text reads a string flag, trimmed; undefined when absent, a UsageError when empty. */
export function text(values: FlagValues, flag: string): string | undefined {
  const value = values[flag];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.trim() === '') throw new UsageError(`--${flag}: empty value`);
  return value.trim();
}

/** required reads a string flag that must be given. */
export function required(values: FlagValues, flag: string): string {
  const value = text(values, flag);
  if (value === undefined) throw new UsageError(`--${flag} is required`);
  return value;
}

/** formatHostPort renders an address the way member identities are compared: lower-case, IPv6 in brackets. */
export function formatHostPort({ host, port }: HostPort): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

/** parseMemberList reads a comma-separated list of member addresses (--members): each HOST:PORT, none twice. */
export function parseMemberList(text: string): string[] {
  const members: string[] = [];
  for (const item of text.split(',')) {
    if (item.trim() === '') throw new UsageError(`--members: empty entry in '${text}'`);
    const member = formatHostPort(parseHostPort(item, '--members'));
    if (members.includes(member)) throw new UsageError(`--members: '${member}' is listed twice`);
    members.push(member);
  }
  return members;
}

/** parseMembers parses a comma-separated member list that must include `addr` (`--members` of `cairn server` and `cairn backup restore`). */
export function parseMembers(text: string, addr: string): string[] {
  const members = parseMemberList(text);
  if (!members.includes(addr)) {
    throw new UsageError(`--members must include this member's own --addr ${addr} (a member's identity is its --addr); got ${members.join(',')}`);
  }
  return members;
}

function derivedPort(base: number, offset: number, flag: string): number {
  const port = base + offset;
  if (port < 1 || port > 65535) {
    throw new UsageError(`${flag}: the derived port ${base} ${offset < 0 ? '-' : '+'} ${Math.abs(offset)} = ${port} is not a port; give ${flag}`);
  }
  return port;
}

/** snapshotEntriesMax bounds --snapshot-entries: beyond it the in-memory log would grow past what the core should hold. */
const snapshotEntriesMax = 1_000_000;

function parseSnapshotEntries(text: string | undefined): number {
  if (text === undefined) return limits.snapshotEntries;
  const entries = /^\d{1,7}$/.test(text) ? Number(text) : Number.NaN;
  if (!(entries >= 1 && entries <= snapshotEntriesMax)) throw new UsageError(`--snapshot-entries: '${text}' is not an integer in 1..${snapshotEntriesMax}`);
  return entries;
}

function parseSnapshotCatchUpEntries(text: string | undefined): number | null {
  if (text === undefined) return null;
  const entries = /^\d{1,7}$/.test(text) ? Number(text) : Number.NaN;
  if (!(entries >= 0 && entries <= limits.snapshotCatchUpEntriesMax)) throw new UsageError(`--snapshot-catchup-entries: '${text}' is not an integer in 0..${limits.snapshotCatchUpEntriesMax}`);
  return entries;
}

/** checkpointEntriesMax bounds --checkpoint-every (a digest every 10M entries is already rare). */
const checkpointEntriesMax = 10_000_000;

function parseCheckpointEntries(text: string | undefined): number {
  if (text === undefined) return limits.checkpointEntries;
  const entries = /^\d{1,8}$/.test(text) ? Number(text) : Number.NaN;
  if (!(entries >= 0 && entries <= checkpointEntriesMax)) throw new UsageError(`--checkpoint-every: '${text}' is not an integer in 0..${checkpointEntriesMax} (0: no checkpoints)`);
  return entries;
}

function parseLogLevel(text: string): LogLevel {
  const level = logLevels.find((candidate) => candidate === text);
  if (level === undefined) throw new UsageError(`--log-level: '${text}' is not one of ${logLevels.join(', ')}`);
  return level;
}

const serverOptions = {
  addr: { type: 'string' },
  members: { type: 'string' },
  'data-dir': { type: 'string' },
  'log-level': { type: 'string' },
  'grpc-port': { type: 'string' },
  'peer-port': { type: 'string' },
  'snapshot-entries': { type: 'string' },
  'snapshot-catchup-entries': { type: 'string' },
  'checkpoint-every': { type: 'string' },
  join: { type: 'boolean' },
  'unsafe-local-reads': { type: 'boolean' },
  'unsafe-no-fsync': { type: 'boolean' },
  'unsafe-no-request-dedup': { type: 'boolean' },
  'unsafe-peer-protocol-version': { type: 'string' },
  'unsafe-distro-protocol-version': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** serverFlagEnvironment maps each `cairn server` flag to the environment variable it falls back to. */
export const serverFlagEnvironment: Readonly<Record<Exclude<keyof typeof serverOptions, 'help' | 'join' | 'unsafe-local-reads' | 'unsafe-no-fsync' | 'unsafe-no-request-dedup' | 'unsafe-peer-protocol-version' | 'unsafe-distro-protocol-version'>, string>> = Object.freeze({
  addr: 'CAIRN_ADDR',
  members: 'CAIRN_MEMBERS',
  'data-dir': 'CAIRN_DATA_DIR',
  'log-level': 'CAIRN_LOG_LEVEL',
  'grpc-port': 'CAIRN_GRPC_PORT',
  'peer-port': 'CAIRN_PEER_PORT',
  'snapshot-entries': 'CAIRN_SNAPSHOT_ENTRIES',
  'snapshot-catchup-entries': 'CAIRN_SNAPSHOT_CATCHUP_ENTRIES',
  'checkpoint-every': 'CAIRN_CHECKPOINT_EVERY',
});

type ServerFlag = keyof typeof serverFlagEnvironment;

/** ParsedServerArgs is the outcome of parsing `cairn server`'s arguments: a request for help, or a config. */
export type ParsedServerArgs = { readonly help: true } | { readonly help: false; readonly config: ServerConfig };

/** UnsafeFlags are the TESTING ONLY switches of `cairn server` (planted bugs for the jepsen-like positive controls). */
interface UnsafeFlags {
  readonly unsafeLocalReads: boolean;
  readonly unsafeNoFsync: boolean;
  readonly unsafeNoRequestDedup: boolean;
  readonly unsafePeerProtocolVersion: number | null;
  readonly unsafeDistroProtocolVersion: number | null;
}

/** peerProtocolVersionMax bounds the --unsafe-*-protocol-version flags (what a peer call's version may be, peer-protocol.ts). */
const peerProtocolVersionMax = 999_999;

function parsePeerProtocolVersion(text: string | undefined, flag = '--unsafe-peer-protocol-version'): number | null {
  if (text === undefined) return null;
  const version = /^[1-9]\d{0,5}$/.test(text) ? Number(text) : Number.NaN;
  if (!(version >= 1 && version <= peerProtocolVersionMax)) throw new UsageError(`${flag}: '${text}' is not an integer in 1..${peerProtocolVersionMax}`);
  return version;
}

function flagValues(args: readonly string[]): { values: Partial<Record<ServerFlag, string>>; help: boolean; join: boolean; unsafe: UnsafeFlags } {
  try {
    const { values } = parseArgs({ args: [...args], options: serverOptions, strict: true, allowPositionals: false });
    const { help, join, 'unsafe-local-reads': localReads, 'unsafe-no-fsync': noFsync, 'unsafe-no-request-dedup': noRequestDedup, 'unsafe-peer-protocol-version': peerProtocol, 'unsafe-distro-protocol-version': distroProtocol, ...flags } = values;
    const unsafe = {
      unsafeLocalReads: localReads === true,
      unsafeNoFsync: noFsync === true,
      unsafeNoRequestDedup: noRequestDedup === true,
      unsafePeerProtocolVersion: parsePeerProtocolVersion(peerProtocol),
      unsafeDistroProtocolVersion: parsePeerProtocolVersion(distroProtocol, '--unsafe-distro-protocol-version'),
    };
    return { values: flags, help: help === true, join: join === true, unsafe };
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
}

/**
 * parseServerArgs validates `cairn server`'s arguments (after the word "server"); each flag falls back to its
 * environment variable (an empty variable counts as unset), then to its default. Throws UsageError on bad input.
 */
export function parseServerArgs(args: readonly string[], env: Environment = process.env, cwd: string = process.cwd()): ParsedServerArgs {
  const { values, help, join, unsafe } = flagValues(args);
  if (help) return { help: true };
  const value = (flag: ServerFlag): string | undefined => {
    const given = values[flag] ?? env[serverFlagEnvironment[flag]];
    if (given !== undefined && given.trim() === '' && values[flag] !== undefined) throw new UsageError(`--${flag}: empty value`);
    return given === undefined || given.trim() === '' ? undefined : given.trim();
  };
  const self = parseHostPort(value('addr') ?? defaultAddr, '--addr');
  const addr = formatHostPort(self);
  const grpcText = value('grpc-port');
  const peerText = value('peer-port');
  const grpcPort = grpcText === undefined ? derivedPort(self.port, grpcPortOffset, '--grpc-port') : parsePort(grpcText, '--grpc-port');
  const peerPort = peerText === undefined ? derivedPort(self.port, peerPortOffset, '--peer-port') : parsePort(peerText, '--peer-port');
  if (new Set([self.port, grpcPort, peerPort]).size !== 3) {
    throw new UsageError(`the HTTP (${self.port}), gRPC (${grpcPort}) and peer (${peerPort}) ports must differ`);
  }
  const membersText = value('members');
  const members = membersText === undefined ? [addr] : parseMembers(membersText, addr);
  const config: ServerConfig = {
    addr,
    host: self.host,
    httpPort: self.port,
    grpcPort,
    peerPort,
    members,
    standalone: membersText === undefined,
    join: join || env['CAIRN_JOIN'] === 'true' || env['CAIRN_JOIN'] === '1',
    snapshotEntries: parseSnapshotEntries(value('snapshot-entries')),
    snapshotCatchUpEntries: parseSnapshotCatchUpEntries(value('snapshot-catchup-entries')),
    checkpointEntries: parseCheckpointEntries(value('checkpoint-every')),
    ...unsafe,
    dataDir: path.resolve(cwd, value('data-dir') ?? defaultDataDir),
    logLevel: parseLogLevel(value('log-level') ?? 'info'),
  };
  return { help: false, config };
}

/** usage is the top-level help text. */
export const usage = `Usage: cairn <command> [options]

Commands:
  server      run one member (see: cairn server --help)
  register    register an instance            (see: cairn register --help)
  deregister  deregister an instance          (see: cairn deregister --help)
  list        list a service's instances      (see: cairn list --help)
  watch       follow a service's instances as they change (see: cairn watch --help)
  status      show the cluster: leader, term, members
  cluster     run N local members for trying Cairn out (cairn cluster --size 3 [--base-ip 127.0.0.11])
  backup      save a stopped member's registry to a file, check one, or restore one into a new member (see: cairn backup --help)
  check       check that the members' persistent state agrees (see: cairn check --help)

Options:
  -h, --help     show this help
  -v, --version  show the version
`;

/** serverUsage is the help text of `cairn server`. */
export const serverUsage = `Usage: cairn server [options]

Options (each also read from the environment variable shown):
  --addr HOST:PORT      this member's HTTP address and identity     CAIRN_ADDR       (default ${defaultAddr})
  --members A,B,C       every member's --addr, this one included    CAIRN_MEMBERS    (default: standalone)
  --data-dir DIR        where the member keeps its LevelDB          CAIRN_DATA_DIR   (default ${defaultDataDir})
  --log-level LEVEL     one of ${logLevels.join(",")}
                        (CAIRN_LOG_LEVEL, default info)
  --grpc-port PORT      client gRPC port                            CAIRN_GRPC_PORT  (default HTTP port + 1000)
  --peer-port PORT      peer port (Raft, Distro, forwarding)        CAIRN_PEER_PORT  (default HTTP port - 1000)
  --snapshot-entries N  compact the log (the stored keyspace becomes the snapshot) every N to 1.5 N applied entries
                       (see docs/operations.md) CAIRN_SNAPSHOT_ENTRIES (default ${limits.snapshotEntries})
  --snapshot-catchup-entries N
                        entries a compaction keeps before the applied index, so a follower up to N behind goes on
                        from the log instead of the whole registry (0..${limits.snapshotCatchUpEntriesMax}; each kept entry stays in memory)
                        CAIRN_SNAPSHOT_CATCHUP_ENTRIES (default: half of --snapshot-entries, at most 10 000)
  --checkpoint-every N  digest the stored keyspace at every applied index that is a multiple of N and compare the
                        digests with the other members' (0: never; docs/operations.md "Checking that the replicas
                        agree")             CAIRN_CHECKPOINT_EVERY (default ${limits.checkpointEntries})
  --unsafe-local-reads  TESTING ONLY: linearizable reads skip ReadIndex (a planted bug for jepsen-like/)
  --unsafe-no-fsync     TESTING ONLY: never fsync the Raft log (a planted bug for jepsen-like/)
  --unsafe-no-request-dedup
                        TESTING ONLY: ignore request ids, so a retried write applies again
                        (a planted bug for jepsen-like/ case A14-control)
  --unsafe-peer-protocol-version N
                        TESTING ONLY: speak peer protocol version N instead of this build's, to rehearse an
                        upgrade across versions (docs/operations.md "Upgrades"; test/cluster/upgrade.test.ts)
  --unsafe-distro-protocol-version N
                        TESTING ONLY: the same for the Distro protocol of the ephemeral path
  --join                start with an empty data directory and wait  CAIRN_JOIN=1
                        to be added by the leader (POST /cairn/v1/cluster/members?addr=...)
  -h, --help            show this help
`;

/** Output is where the command writes; tests capture it. */
export interface Output {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
}

/** version reads the version from the repository's package.json. */
export function version(): string {
  const packageJson: unknown = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
  if (typeof packageJson === 'object' && packageJson !== null && 'version' in packageJson && typeof packageJson.version === 'string') {
    return packageJson.version;
  }
  throw new Error('package.json has no version');
}

function runServer(args: readonly string[], env: Environment, out: Output): number | Promise<number> {
  let parsed: ParsedServerArgs;
  try {
    parsed = parseServerArgs(args, env);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    out.stderr(`cairn server: ${error.message}\nRun 'cairn server --help' for usage.\n`);
    return 2;
  }
  if (parsed.help) {
    out.stdout(serverUsage);
    return 0;
  }
  const config = parsed.config;
  // Loaded on demand: the member pulls in LevelDB, fastify and gRPC, which `cairn --help` should not wait for.
  return import('./server.ts').then(({ serve }) => serve(config, out));
}

/** run executes the command line `argv` (without node and the script) and returns (or resolves with) the exit code. */
export function run(argv: readonly string[], env: Environment, out: Output): number | Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case '-h':
    case '--help':
    case 'help':
      out.stdout(usage);
      return 0;
    case '-v':
    case '--version':
      out.stdout(`cairn ${version()}\n`);
      return 0;
    case 'server':
      return runServer(rest, env, out);
    case 'cluster':
      return import('./cluster.ts').then(({ runCluster }) => runCluster(rest, out));
    case 'backup':
      return import('./backup.ts').then(({ runBackup }) => runBackup(rest, out));
    case 'check':
      return import('./check.ts').then(({ runCheck }) => runCheck(rest, out));
    case 'register':
    case 'deregister':
    case 'list':
    case 'status':
    case 'watch':
      // Loaded on demand: the client commands need gRPC, `--help` and `server` do not need the client.
      return import('./client.ts').then((client) => client.runClient(command, rest, env, out, { handleSigint: true }));
    case undefined:
      out.stderr(usage);
      return 2;
    default:
      out.stderr(`cairn: unknown command '${command}'\n\n${usage}`);
      return 2;
  }
}

function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  // A reader that goes away (`cairn watch | head`) closes the pipe: that ends the command quietly, as in other CLIs.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(0);
    throw error;
  });
  void Promise.resolve(
    run(process.argv.slice(2), process.env, {
      stdout: (text) => process.stdout.write(text),
      stderr: (text) => process.stderr.write(text),
    }),
  ).then((code) => {
    process.exitCode = code;
  });
}
