// The `cairn` command (DESIGN.md, "Command line"): `server` runs a member, `cluster` a local cluster to try out,
// and the client commands talk to a member over gRPC.
//
// Exit codes: 0 success, help or version; 1 failure at run time; 2 bad usage (unknown command or flag, invalid
// value); 70 the command ended without an answer (a bug: see runEntryPoint). Commands may define more (`cairn check`:
// 3, no comparison was possible).
//
// Environment variables: every `cairn server` flag falls back to one (CAIRN_ADDR, ...). An error in a value read from
// a variable names the variable, not the flag, and carries the code CAIRN_INVALID_ARGUMENT, so the line a supervisor
// logs (`cairn server: CAIRN_INVALID_ARGUMENT: CAIRN_JOIN: ...`) points at the unit file rather than the command line.
// Boolean variables (CAIRN_JOIN) take 1/true/yes/on or 0/false/no/off in any case, as systemd reads booleans;
// anything else is refused rather than read as false.

import { parseArgs, type ParseArgsConfig } from 'node:util';
import { isIP } from 'node:net';
import { readFileSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CairnErrorCode } from '../errors.ts';
import { limits } from '../limits.ts';
import { Stop } from './stop.ts';

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

/**
 * UsageError is bad command-line input: the command prints it with a hint and exits 2. `code` is set for a value read
 * from an environment variable (CAIRN_INVALID_ARGUMENT) and printed before the message (usageMessage).
 */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  readonly code: CairnErrorCode | undefined;

  constructor(message: string, code?: CairnErrorCode) {
    super(message);
    this.code = code;
  }
}

/** usageMessage renders a UsageError for its command's error line: its code, if any, then its message. */
export function usageMessage(error: UsageError): string {
  return error.code === undefined ? error.message : `${error.code}: ${error.message}`;
}

/**
 * fromVariable runs `parse` on a value that came from the environment variable `variable`: a UsageError it throws
 * (whose message names `variable`, as `parse` was given it) gets the code CAIRN_INVALID_ARGUMENT.
 */
export function fromVariable<T>(variable: string, text: string, parse: (text: string, name: string) => T): T {
  try {
    return parse(text, variable);
  } catch (error) {
    if (error instanceof UsageError && error.code === undefined) throw new UsageError(error.message, 'CAIRN_INVALID_ARGUMENT');
    throw error;
  }
}

/** booleanWords maps what a boolean environment variable may hold (lower-cased) to its value: systemd's words. */
const booleanWords: ReadonlyMap<string, boolean> = new Map([
  ['1', true], ['true', true], ['yes', true], ['on', true],
  ['0', false], ['false', false], ['no', false], ['off', false],
]);

/**
 * parseBooleanVariable reads the boolean environment variable `name`: 1/true/yes/on or 0/false/no/off, in any case;
 * undefined when it is unset or empty (as every variable: an empty one counts as unset). Anything else is refused with
 * a UsageError coded CAIRN_INVALID_ARGUMENT naming the variable, never read as false: `CAIRN_JOIN=ture` would
 * otherwise start an empty member as a voter of a new cluster instead of waiting to be added.
 */
export function parseBooleanVariable(env: Environment, name: string): boolean | undefined {
  const given = env[name]?.trim();
  if (given === undefined || given === '') return undefined;
  const value = booleanWords.get(given.toLowerCase());
  if (value === undefined) {
    throw new UsageError(`${name}: '${given}' is not a boolean: give 1, true, yes or on; 0, false, no or off`, 'CAIRN_INVALID_ARGUMENT');
  }
  return value;
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

/**
 * parseMemberAddress parses a member's own address (--addr): HOST:PORT that the other members and clients can reach,
 * so never an unspecified address (0.0.0.0, ::), which names no host: listening on every interface is not an
 * identity, and the others would call themselves back.
 */
export function parseMemberAddress(text: string, what: string): HostPort {
  const address = parseHostPort(text, what);
  if (address.host === '0.0.0.0' || address.host === '::' || /^0+(\.0+){3}$/.test(address.host) || /^(0*:)+0*$/.test(address.host)) {
    throw new UsageError(`${what}: '${text}' is not an address others can reach (0.0.0.0 and :: listen on every interface but name no host); give this machine's address`);
  }
  return address;
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

/** parseMemberList reads a comma-separated list of member addresses (--members, or `what`): each HOST:PORT, none twice. */
export function parseMemberList(text: string, what = '--members'): string[] {
  const members: string[] = [];
  for (const item of text.split(',')) {
    if (item.trim() === '') throw new UsageError(`${what}: empty entry in '${text}'`);
    const member = formatHostPort(parseHostPort(item, what));
    if (members.includes(member)) throw new UsageError(`${what}: '${member}' is listed twice`);
    members.push(member);
  }
  return members;
}

/**
 * parseMembers parses a comma-separated member list that must include `addr` (`--members` of `cairn server` and
 * `cairn backup restore`); `what` and `addrName` name the list and the address in errors (flags, or variables).
 */
export function parseMembers(text: string, addr: string, what = '--members', addrName = '--addr'): string[] {
  const members = parseMemberList(text, what);
  if (!members.includes(addr)) {
    throw new UsageError(`${what} must include this member's own ${addrName} ${addr} (a member's identity is its --addr); got ${members.join(',')}`);
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

function parseSnapshotEntries(text: string, what: string): number {
  const entries = /^\d{1,7}$/.test(text) ? Number(text) : Number.NaN;
  if (!(entries >= 1 && entries <= snapshotEntriesMax)) throw new UsageError(`${what}: '${text}' is not an integer in 1..${snapshotEntriesMax}`);
  return entries;
}

function parseSnapshotCatchUpEntries(text: string, what: string): number {
  const entries = /^\d{1,7}$/.test(text) ? Number(text) : Number.NaN;
  if (!(entries >= 0 && entries <= limits.snapshotCatchUpEntriesMax)) throw new UsageError(`${what}: '${text}' is not an integer in 0..${limits.snapshotCatchUpEntriesMax}`);
  return entries;
}

/** checkpointEntriesMax bounds --checkpoint-every (a digest every 10M entries is already rare). */
const checkpointEntriesMax = 10_000_000;

function parseCheckpointEntries(text: string, what: string): number {
  const entries = /^\d{1,8}$/.test(text) ? Number(text) : Number.NaN;
  if (!(entries >= 0 && entries <= checkpointEntriesMax)) throw new UsageError(`${what}: '${text}' is not an integer in 0..${checkpointEntriesMax} (0: no checkpoints)`);
  return entries;
}

function parseLogLevel(text: string, what: string): LogLevel {
  const level = logLevels.find((candidate) => candidate === text);
  if (level === undefined) throw new UsageError(`${what}: '${text}' is not one of ${logLevels.join(', ')}`);
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

/** serverBooleanEnvironment maps each boolean `cairn server` flag that reads the environment to its variable (parseBooleanVariable). */
export const serverBooleanEnvironment = Object.freeze({ join: 'CAIRN_JOIN' });

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

/** ServerValue reads one `cairn server` flag: parsed from the flag, else from its environment variable, else undefined. */
type ServerValue = <T>(flag: ServerFlag, parse: (text: string, name: string) => T) => T | undefined;

/**
 * serverValue reads flags from `values`, falling back to their environment variables (an empty variable counts as
 * unset; an empty flag is refused); a value is parsed with the name it came from, so an error names the variable
 * when the variable gave it (with CAIRN_INVALID_ARGUMENT, fromVariable).
 */
function serverValue(values: Partial<Record<ServerFlag, string>>, env: Environment): ServerValue {
  return (flag, parse) => {
    const given = values[flag];
    if (given !== undefined) {
      if (given.trim() === '') throw new UsageError(`--${flag}: empty value`);
      return parse(given.trim(), `--${flag}`);
    }
    const variable = serverFlagEnvironment[flag];
    const fromEnvironment = env[variable]?.trim();
    return fromEnvironment === undefined || fromEnvironment === '' ? undefined : fromVariable(variable, fromEnvironment, parse);
  };
}

/** sourceName is the name to blame for `flag`'s value: the flag when given, else its variable when set, else the flag. */
function sourceName(values: Partial<Record<ServerFlag, string>>, env: Environment, flag: ServerFlag): string {
  const variable = serverFlagEnvironment[flag];
  return values[flag] === undefined && (env[variable]?.trim() ?? '') !== '' ? variable : `--${flag}`;
}

/**
 * parseServerArgs validates `cairn server`'s arguments (after the word "server"); each flag falls back to its
 * environment variable (an empty variable counts as unset), then to its default. Throws UsageError on bad input,
 * naming the flag, or the variable when the value came from one.
 */
export function parseServerArgs(args: readonly string[], env: Environment = process.env, cwd: string = process.cwd()): ParsedServerArgs {
  const { values, help, join, unsafe } = flagValues(args);
  if (help) return { help: true };
  const read = serverValue(values, env);
  const self = read('addr', parseMemberAddress) ?? parseHostPort(defaultAddr, '--addr');
  const addr = formatHostPort(self);
  const grpcPort = read('grpc-port', parsePort) ?? derivedPort(self.port, grpcPortOffset, '--grpc-port');
  const peerPort = read('peer-port', parsePort) ?? derivedPort(self.port, peerPortOffset, '--peer-port');
  if (new Set([self.port, grpcPort, peerPort]).size !== 3) {
    throw new UsageError(`the HTTP (${self.port}), gRPC (${grpcPort}) and peer (${peerPort}) ports must differ`);
  }
  const addrName = sourceName(values, env, 'addr');
  const members = read('members', (text, name) => parseMembers(text, addr, name, addrName));
  const config: ServerConfig = {
    addr,
    host: self.host,
    httpPort: self.port,
    grpcPort,
    peerPort,
    members: members ?? [addr],
    standalone: members === undefined,
    // The flag wins over the variable, as for every flag; the variable is read (and a bad one refused) only without it.
    join: join || (parseBooleanVariable(env, serverBooleanEnvironment.join) ?? false),
    snapshotEntries: read('snapshot-entries', parseSnapshotEntries) ?? limits.snapshotEntries,
    snapshotCatchUpEntries: read('snapshot-catchup-entries', parseSnapshotCatchUpEntries) ?? null,
    checkpointEntries: read('checkpoint-every', parseCheckpointEntries) ?? limits.checkpointEntries,
    ...unsafe,
    dataDir: path.resolve(cwd, read('data-dir', (text) => text) ?? defaultDataDir),
    logLevel: read('log-level', parseLogLevel) ?? 'info',
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
  backup      save a member's registry to a file (from a running member or a stopped one's data directory), check
              one, or restore one into a new member (see: cairn backup --help)
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
  --join                start with an empty data directory and wait  CAIRN_JOIN=1 (or true, yes, on;
                        to be added by the leader                   0, false, no, off: not; anything else is refused)
                        (POST /cairn/v1/cluster/members?addr=...)
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
    out.stderr(`cairn server: ${usageMessage(error)}\nRun 'cairn server --help' for usage.\n`);
    return 2;
  }
  if (parsed.help) {
    out.stdout(serverUsage);
    return 0;
  }
  const config = parsed.config;
  // The signal handlers come first, so a signal while the member's modules load is handled too (stop.ts).
  const stop = new Stop(out);
  stop.listen();
  // Loaded on demand: the member pulls in LevelDB, fastify and gRPC, which `cairn --help` should not wait for.
  return import('./server.ts').then(({ serve }) => serve(config, out, stop));
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

/**
 * unansweredExitCode is the exit code of a command that ended without an answer: its promise never settled and
 * nothing was left for Node to wait on (no socket, no timer), or it threw. Either is a bug; without this, Node exits
 * with its default 0, and `cairn check` once reported success that way for a member that closed its connections
 * (Node's own fetch never settled, http-get.ts). 70 is EX_SOFTWARE of sysexits.h: no command uses it for an answer.
 */
export const unansweredExitCode = 70;

/** processOutput writes to the process's stdout and stderr. */
const processOutput: Output = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
};

/**
 * runEntryPoint runs the command line `argv` as the process's command (`execute` is `run`; tests pass one that never
 * answers). The exit code is unansweredExitCode until the command answers with its own: a 'beforeExit' guard reports
 * a command that ended without an answer, and a command that throws is reported with its stack.
 */
export function runEntryPoint(argv: readonly string[], execute: typeof run = run): void {
  const name = argv[0] === undefined ? 'cairn' : `cairn ${argv[0]}`;
  let answered = false;
  process.exitCode = unansweredExitCode;
  const onBeforeExit = (): void => {
    process.removeListener('beforeExit', onBeforeExit);
    if (answered) return;
    processOutput.stderr(`${name}: the command ended without an answer (it was waiting for nothing): exit ${unansweredExitCode}; this is a bug\n`);
    process.exitCode = unansweredExitCode;
  };
  process.on('beforeExit', onBeforeExit);
  void Promise.resolve()
    .then(() => execute(argv, process.env, processOutput))
    .then(
      (code) => {
        answered = true;
        process.exitCode = code;
      },
      (error: unknown) => {
        answered = true;
        processOutput.stderr(`${name}: internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
        process.exitCode = unansweredExitCode;
      },
    );
}

if (isEntryPoint()) {
  // A reader that goes away (`cairn watch | head`) closes the pipe: that ends the command quietly, as in other CLIs.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(0);
    throw error;
  });
  runEntryPoint(process.argv.slice(2));
}
