// `cairn cluster --size N [--base-ip 127.0.0.11] [--port 8848] [--data-dir DIR]`: N local members for trying Cairn
// out, one process each on its own loopback address (127.0.0.11, .12, ...); Ctrl-C stops them all (DESIGN.md).
import { spawn, type ChildProcess } from 'node:child_process';
import { isIP } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
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

/** parseClusterArgs validates `cairn cluster`'s flags; returns an error message instead of throwing. */
export function parseClusterArgs(args: readonly string[], cwd: string): ClusterArgs | string {
  let values;
  try {
    values = parseArgs({
      args: [...args],
      options: { size: { type: 'string' }, 'base-ip': { type: 'string' }, port: { type: 'string' }, 'data-dir': { type: 'string' } },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
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

/** runCluster starts the members and resolves with the exit code once they have all stopped. */
export async function runCluster(args: readonly string[], out: Output): Promise<number> {
  const parsed = parseClusterArgs(args, process.cwd());
  if (typeof parsed === 'string') {
    out.stderr(`cairn cluster: ${parsed}\nUsage: cairn cluster --size N [--base-ip 127.0.0.11] [--port 8848] [--data-dir ./data/cluster]\n`);
    return 2;
  }
  const bin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/cairn');
  const addresses = memberAddresses(parsed);
  const children: ChildProcess[] = addresses.map((addr) => {
    const child = spawn(bin, ['server', '--addr', addr, '--members', addresses.join(','), '--data-dir', path.join(parsed.dataDir, addr.replace(':', '_'))], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const prefix = `[${addr}] `;
    child.stdout?.on('data', (chunk: Buffer) => out.stdout(prefixLines(prefix, chunk.toString())));
    child.stderr?.on('data', (chunk: Buffer) => out.stderr(prefixLines(prefix, chunk.toString())));
    return child;
  });
  out.stderr(`cairn cluster: ${parsed.size} members on ${addresses.join(', ')}; Ctrl-C stops them all\n`);
  const stopAll = (): void => {
    for (const child of children) if (child.exitCode === null && child.pid !== undefined) child.kill('SIGTERM');
  };
  process.once('SIGINT', stopAll);
  process.once('SIGTERM', stopAll);
  const codes = await Promise.all(children.map((child) => new Promise<number>((resolve) => child.once('exit', (code) => resolve(code ?? 1)))));
  return codes.every((code) => code === 0) ? 0 : 1;
}

function prefixLines(prefix: string, text: string): string {
  return text.split('\n').map((line, i, lines) => (line === '' && i === lines.length - 1 ? '' : prefix + line)).join('\n');
}
