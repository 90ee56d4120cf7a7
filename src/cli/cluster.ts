// `cairn cluster --size N [--base-ip 127.0.0.11] [--port 8848] [--data-dir DIR]`: N local members for trying Cairn
// out, one process each on its own loopback address (127.0.0.11, .12, ...); Ctrl-C stops them all (DESIGN.md).
import { spawn, type ChildProcess } from 'node:child_process';
import { isIP } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import type { Output } from './main.ts';

/** clusterSizeMax bounds --size: Raft groups beyond seven members only slow commitment down. */
const clusterSizeMax = 7;

/** ClusterArgs is the validated configuration of `cairn cluster`. */
export interface ClusterArgs {
  readonly size: number;
  readonly baseIp: string;
  readonly port: number;
  readonly dataDir: string;
}

/** clusterUsage is the help text of `cairn cluster`. */
export const clusterUsage = `Usage: cairn cluster [options]

Runs N members of one cluster on consecutive loopback addresses, for trying Cairn out on one machine; Ctrl-C (or
SIGTERM) stops them all. Each member's data directory is DIR/<host>_<port>; each is a \`cairn server\` with the defaults.

Options:
  --size N          members to run, 1..${clusterSizeMax}                         (default 3)
  --base-ip IP      the first member's address (127.x.y.z); the next ones count up from it (default 127.0.0.11)
  --port PORT       every member's HTTP port; gRPC is PORT + 1000, peer PORT - 1000  (default 8848)
  --data-dir DIR    where the members' data directories go, relative to the current directory
                    (default ./data/cluster)
  -h, --help        show this help
`;

/** parseClusterArgs validates `cairn cluster`'s flags; returns an error message instead of throwing, or 'help'. */
export function parseClusterArgs(args: readonly string[], cwd: string): ClusterArgs | string | { readonly help: true } {
  let values;
  try {
    values = parseArgs({
      args: [...args],
      options: { size: { type: 'string' }, 'base-ip': { type: 'string' }, port: { type: 'string' }, 'data-dir': { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
  if (values.help === true) return { help: true };
  const size = Number(values.size ?? '3');
  if (!Number.isInteger(size) || size < 1 || size > clusterSizeMax) return `--size: '${values.size}' is not an integer in 1..${clusterSizeMax}`;
  const baseIp = values['base-ip'] ?? '127.0.0.11';
  const octets = baseIp.split('.').map(Number);
  if (isIP(baseIp) !== 4 || octets[0] !== 127 || (octets[3] ?? 255) + size - 1 > 254) {
    return `--base-ip: '${baseIp}' must be a 127.x.y.z address with room for ${size} members`;
  }
  const port = Number(values.port ?? '8848');
  if (!Number.isInteger(port) || port < 1001 || port > 64535) return `--port: '${values.port}' must leave room for port - 1000 and port + 1000`;
  return { size, baseIp, port, dataDir: path.resolve(cwd, values['data-dir'] ?? './data/cluster') };
}

/** memberAddresses lists the members' addresses: base-ip, base-ip + 1, ... on `port`. */
export function memberAddresses(args: ClusterArgs): string[] {
  const octets = args.baseIp.split('.').map(Number);
  return Array.from({ length: args.size }, (_, i) => `${octets[0]}.${octets[1]}.${octets[2]}.${(octets[3] ?? 0) + i}:${args.port}`);
}

/** clusterStopSignals are the signals that stop every member; each is forwarded to the members by pid. */
const clusterStopSignals: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/** stderrLineBytesMax bounds the last stderr line kept per member, to say why it exited. */
const stderrLineBytesMax = 2000;

/** ClusterMember is one member's process: when it is ready, when it exits, and the last line it wrote on stderr. */
interface ClusterMember {
  readonly addr: string;
  readonly child: ChildProcess;
  readonly ready: Promise<void>;
  /** exited resolves with the exit code, or the name of the signal that killed the process. */
  readonly exited: Promise<number | NodeJS.Signals>;
  lastError(): string;
}

/** startClusterMember spawns one member and prefixes its output lines with its address. */
function startClusterMember(bin: string, addr: string, addresses: readonly string[], dataDir: string, out: Output): ClusterMember {
  // A process group of its own: a Ctrl-C in the terminal reaches `cairn cluster` alone, which stops each member once.
  const child = spawn(bin, ['server', '--addr', addr, '--members', addresses.join(','), '--data-dir', path.join(dataDir, addr.replace(':', '_'))], {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const prefix = `[${addr}] `;
  let lastError = '';
  let resolveReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (resolveReady = resolve));
  const stdout = child.stdout === null ? null : createInterface({ input: child.stdout, crlfDelay: Infinity });
  const stderr = child.stderr === null ? null : createInterface({ input: child.stderr, crlfDelay: Infinity });
  stdout?.on('line', (line) => {
    out.stdout(`${prefix}${line}\n`);
    if (line === `cairn ready ${addr}`) resolveReady();
  });
  stderr?.on('line', (line) => {
    out.stderr(`${prefix}${line}\n`);
    if (line.trim() !== '') lastError = line.replace(/^cairn server: /, '').slice(0, stderrLineBytesMax);
  });
  // 'close' comes after the output is read to its end, so lastError holds the member's last word.
  const exited = new Promise<number | NodeJS.Signals>((resolve) => child.once('close', (code, signal) => resolve(code ?? signal ?? 1)));
  return { addr, child, ready, exited, lastError: () => lastError };
}

/** describeExit renders how a member's process ended. */
function describeExit(how: number | NodeJS.Signals): string {
  return typeof how === 'number' ? `exited with code ${how}` : `was killed by ${how}`;
}

/**
 * runCluster starts the members and resolves with the exit code once they have all stopped: 0 when each stopped
 * cleanly. If a member's process ends before every member is ready (its port taken, a bad data directory), the
 * others would wait for it in their bootstrap check for up to 10 min: they are stopped at once (SIGTERM, by pid)
 * and the command exits 1 naming the member and its last error line.
 */
export async function runCluster(args: readonly string[], out: Output): Promise<number> {
  const parsed = parseClusterArgs(args, process.cwd());
  if (typeof parsed === 'string') {
    out.stderr(`cairn cluster: ${parsed}\n${clusterUsage}`);
    return 2;
  }
  if ('help' in parsed) {
    out.stdout(clusterUsage);
    return 0;
  }
  const bin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/cairn');
  const addresses = memberAddresses(parsed);
  const members = addresses.map((addr) => startClusterMember(bin, addr, addresses, parsed.dataDir, out));
  out.stderr(`cairn cluster: ${parsed.size} members on ${addresses.join(', ')}; Ctrl-C stops them all\n`);
  let stopping = false;
  const stopAll = (): void => {
    stopping = true;
    for (const member of members) {
      if (member.child.exitCode === null && member.child.signalCode === null && member.child.pid !== undefined) process.kill(member.child.pid, 'SIGTERM');
    }
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      out.stderr(`cairn cluster: ${signal}: already stopping the members\n`);
      return;
    }
    out.stderr(`cairn cluster: ${signal}: stopping the members\n`);
    stopAll();
  };
  for (const signal of clusterStopSignals) process.on(signal, onSignal);
  const firstExit = Promise.race(members.map((member) => member.exited.then((how) => ({ member, how }))));
  const started = await Promise.race([Promise.all(members.map((member) => member.ready)).then(() => null), firstExit]);
  let failure: string | null = null;
  if (started === null) {
    out.stderr(`cairn cluster: all ${parsed.size} members ready\n`);
  } else if (!stopping) {
    failure = `member ${started.member.addr} ${describeExit(started.how)} before the cluster was ready: ${started.member.lastError() || 'it said nothing on stderr'}`;
    out.stderr(`cairn cluster: ${failure}; stopping the other members\n`);
    stopAll();
  }
  const exits = await Promise.all(members.map((member) => member.exited));
  for (const signal of clusterStopSignals) process.removeListener(signal, onSignal);
  if (failure !== null) {
    out.stderr(`cairn cluster: ${failure}\n`);
    return 1;
  }
  return exits.every((how) => how === 0) ? 0 : 1;
}
