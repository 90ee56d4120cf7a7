// The client commands of `cairn` (DESIGN.md "Command line"): register, deregister and list talk to a member's
// client gRPC port (cairn.naming.v1.Naming); status reads the member's GET /cairn/v1/cluster on its HTTP port
// (the gRPC port - 1000, as the ports derive from each other, or --http); watch follows a service through the
// Subscribe stream (watch.ts).
//
// Every argument is validated before any network call, with the same rules the member applies (naming/
// validation.ts), so bad input is a usage error and never a round trip. Exit codes: 0 ok; 1 the member refused
// or could not be reached (the Cairn code and message are printed); 2 bad usage.
//
// Writes carry a request id (--request-id, else a fresh UUID) so that after an unknown outcome the very same
// command can be resent safely; the id is printed when the outcome is unknown.

import { randomUUID } from 'node:crypto';
import { ClientApiClient, GrpcCallError } from '../api/grpc/client.ts';
import { namingServiceName } from '../api/grpc/proto.ts';
import { assertNever } from '../assert.ts';
import { isCairnError } from '../errors.ts';
import { limits } from '../limits.ts';
import { DEFAULT_CLUSTER, DEFAULT_GROUP, DEFAULT_NAMESPACE, groupedName, type Metadata } from '../naming/model.ts';
import {
  parseMetadata,
  validateClusterName,
  validateGroup,
  validateIp,
  validateNamespace,
  validateRequestId,
  validateServiceName,
  validateWeight,
} from '../naming/validation.ts';
import { clusterViewOf, formatClusterView, formatInstanceList, instanceListViewOf } from './client-format.ts';
import { getJson, type JsonAnswer } from './http-get.ts';
import {
  flags, formatHostPort, fromVariable, grpcPortOffset, parseHostPort, required, text, usageMessage, UsageError,
  type Environment, type FlagValues as Values, type HostPort, type Output,
} from './main.ts';
import { executeWatch, watchDefaults, type WatchCommand } from './watch.ts';

/** defaultServer is the member's gRPC address when neither --server nor CAIRN_SERVER is given. */
export const defaultServer = '127.0.0.1:9848';

/** serverEnvironment is the environment variable --server falls back to. */
export const serverEnvironment = 'CAIRN_SERVER';

/** clientDeadlineMs bounds every call: past the member's own bound, so its answer (even "no quorum") arrives first. */
export const clientDeadlineMs = limits.requestTimeoutMs + 1000;

/** ServiceTarget is a validated service name with its namespace and group. */
export interface ServiceTarget {
  readonly namespace: string;
  readonly group: string;
  readonly service: string;
}

/** InstanceTarget is a validated instance address. */
export interface InstanceTarget extends ServiceTarget {
  readonly cluster: string;
  readonly ip: string;
  readonly port: number;
}

/** ClientCommand is a validated client command line. */
export type ClientCommand =
  | { readonly type: 'help'; readonly text: string }
  | { readonly type: 'register'; readonly server: HostPort; readonly target: InstanceTarget; readonly weight: number | undefined;
      readonly ephemeral: boolean; readonly metadata: Metadata; readonly requestId: string }
  | { readonly type: 'deregister'; readonly server: HostPort; readonly target: InstanceTarget; readonly ephemeral: boolean | undefined;
      readonly requestId: string }
  | { readonly type: 'list'; readonly server: HostPort; readonly target: ServiceTarget; readonly clusters: readonly string[];
      readonly healthyOnly: boolean; readonly consistency: 'LINEARIZABLE' | 'LOCAL'; readonly json: boolean }
  | { readonly type: 'status'; readonly http: HostPort; readonly json: boolean }
  | WatchCommand;

/** ClientCommandName names a client command. */
export type ClientCommandName = 'register' | 'deregister' | 'list' | 'watch' | 'status';

/** clientCommandNames lists the client commands. */
export const clientCommandNames: readonly ClientCommandName[] = Object.freeze(['register', 'deregister', 'list', 'watch', 'status']);

function isClientCommandName(name: string): name is ClientCommandName {
  return clientCommandNames.some((candidate) => candidate === name);
}

/** ExecuteOptions: how a long-running command (watch) is stopped. */
export interface ExecuteOptions {
  /** signal stops a watch (exit 0) when it aborts. */
  readonly signal?: AbortSignal;
  /** handleSigint: Ctrl-C stops a watch (exit 0) instead of killing the process; the CLI sets it. */
  readonly handleSigint?: boolean;
}

const commonUsage = `  --server HOST:PORT    the member's gRPC address       CAIRN_SERVER (default ${defaultServer})
  -h, --help            show this help
`;
const serviceUsage = `  --service NAME        the service (required)
  --group NAME          its group (default ${DEFAULT_GROUP})
  --namespace ID        its namespace (default ${DEFAULT_NAMESPACE})
`;

/** clientUsages is the help text of each client command. */
export const clientUsages: Readonly<Record<ClientCommandName, string>> = Object.freeze({
  register: `Usage: cairn register --service NAME --ip IP --port PORT [options]

Registers (or replaces) an instance. Persistent unless --ephemeral.

${serviceUsage}  --ip IP               the instance's address (required)
  --port PORT           the instance's port, 0-65535 (required)
  --cluster NAME        its cluster (default ${DEFAULT_CLUSTER})
  --weight W            its weight, 0-10000 (default 1)
  --ephemeral           register an ephemeral instance (kept alive by its client)
  --metadata K=V,K=V    its metadata (or a JSON object)
  --request-id ID       resend a write whose outcome was unknown with the id it printed
${commonUsage}`,
  deregister: `Usage: cairn deregister --service NAME --ip IP --port PORT [options]

Removes an instance; removing an absent one succeeds.

${serviceUsage}  --ip IP               the instance's address (required)
  --port PORT           the instance's port (required)
  --cluster NAME        its cluster (default ${DEFAULT_CLUSTER})
  --ephemeral           the instance is ephemeral (default: wherever it is found)
  --request-id ID       resend a write whose outcome was unknown with the id it printed
${commonUsage}`,
  list: `Usage: cairn list --service NAME [options]

Lists a service's enabled instances as a table (or JSON with --json).

${serviceUsage}  --cluster A,B         only these clusters
  --healthy-only        only healthy instances
  --consistency C       linearizable (default: through the leader) or local (this member's state)
  --json                print JSON
${commonUsage}`,
  watch: `Usage: cairn watch --service NAME [options]

Follows a service: prints its instances at once, then again at every change, each under a line naming the
snapshot's revision, epoch and arrival time (or one JSON object per line with --json), until Ctrl-C, the member
ends the stream, or --count snapshots were printed (exit 0). A broken stream (member gone, cut off as too slow)
is resumed from the last revision received, after 200 ms doubling up to 5 s, with a line on stderr each time;
after --retries failed reconnects in a row, or when the member refuses the request, it exits 1.

${serviceUsage}  --cluster A,B         only these clusters (also --clusters)
  --healthy-only        only healthy instances
  --json                print one JSON object per snapshot, one per line
  --count N             stop after N snapshots (N >= 1)
  --retries N           reconnects in a row before giving up, 0-${watchDefaults.retriesMax} (default ${watchDefaults.retries})
${commonUsage}`,
  status: `Usage: cairn status [options]

Prints the cluster as the member sees it: leader, term and every member.

  --server HOST:PORT    the member's gRPC address; its HTTP port is this port - ${grpcPortOffset}
                        CAIRN_SERVER (default ${defaultServer})
  --http HOST:PORT      the member's HTTP address instead (when the ports do not derive)
  --json                print the JSON answer
  -h, --help            show this help
`,
});

const targetOptions = {
  server: { type: 'string' },
  service: { type: 'string' },
  group: { type: 'string' },
  namespace: { type: 'string' },
  cluster: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

const instanceOptions = { ...targetOptions, ip: { type: 'string' }, port: { type: 'string' }, ephemeral: { type: 'boolean' }, 'request-id': { type: 'string' } } as const;
const registerOptions = { ...instanceOptions, weight: { type: 'string' }, metadata: { type: 'string' } } as const;
const listOptions = { ...targetOptions, 'healthy-only': { type: 'boolean' }, consistency: { type: 'string' }, json: { type: 'boolean' } } as const;
const watchOptions = {
  ...targetOptions, clusters: { type: 'string' }, 'healthy-only': { type: 'boolean' }, json: { type: 'boolean' }, count: { type: 'string' },
  retries: { type: 'string' },
} as const;
const statusOptions = { server: { type: 'string' }, http: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } as const;

/** checked runs a validation of naming/validation.ts and turns its refusal into a usage error naming the flag. */
function checked<T>(flag: string, validate: () => T): T {
  try {
    return validate();
  } catch (error) {
    if (!isCairnError(error)) throw error;
    throw new UsageError(`--${flag}: ${error.detail ?? error.message}`);
  }
}

/** parseServer reads --server (else CAIRN_SERVER, else the default) as HOST:PORT; an error names where the value came from. */
export function parseServer(values: Values, env: Environment): HostPort {
  return serverOf(values, env).server;
}

/** serverOf is parseServer with the name of the value's source (the flag, or the variable), for later errors about it. */
function serverOf(values: Values, env: Environment): { server: HostPort; name: string } {
  const given = text(values, 'server');
  if (given !== undefined) return { server: parseHostPort(given, '--server'), name: '--server' };
  const fromEnvironment = env[serverEnvironment]?.trim();
  if (fromEnvironment === undefined || fromEnvironment === '') return { server: parseHostPort(defaultServer, '--server'), name: '--server' };
  return { server: fromVariable(serverEnvironment, fromEnvironment, parseHostPort), name: serverEnvironment };
}

function serviceTargetOf(values: Values): ServiceTarget {
  const namespace = text(values, 'namespace');
  const group = text(values, 'group');
  const service = required(values, 'service');
  return {
    namespace: namespace === undefined ? DEFAULT_NAMESPACE : checked('namespace', () => validateNamespace(namespace)),
    group: group === undefined ? DEFAULT_GROUP : checked('group', () => validateGroup(group)),
    service: checked('service', () => validateServiceName(service)),
  };
}

function instancePortOf(textValue: string): number {
  const port = /^\d{1,5}$/.test(textValue) ? Number(textValue) : Number.NaN;
  if (!(port >= 0 && port <= 65535)) throw new UsageError(`--port: '${textValue}' is not a port (0-65535)`);
  return port;
}

function instanceTargetOf(values: Values): InstanceTarget {
  const service = serviceTargetOf(values);
  const ip = required(values, 'ip');
  const port = required(values, 'port');
  const cluster = text(values, 'cluster');
  return {
    ...service,
    cluster: cluster === undefined ? DEFAULT_CLUSTER : checked('cluster', () => validateClusterName(cluster)),
    ip: checked('ip', () => validateIp(ip)),
    port: instancePortOf(port),
  };
}

function requestIdOf(values: Values): string {
  const given = text(values, 'request-id');
  return given === undefined ? randomUUID() : checked('request-id', () => validateRequestId(given));
}

function weightOf(values: Values): number | undefined {
  const given = text(values, 'weight');
  if (given === undefined) return undefined;
  const weight = /^\d+(\.\d+)?$/.test(given) ? Number(given) : Number.NaN;
  return checked('weight', () => validateWeight(weight));
}

/** parseClientArgs validates a client command's arguments (after its name); throws UsageError on bad input. */
export function parseClientArgs(command: ClientCommandName, args: readonly string[], env: Environment): ClientCommand {
  switch (command) {
    case 'register': {
      const values = flags(args, registerOptions);
      if (values['help'] === true) return { type: 'help', text: clientUsages.register };
      const target = instanceTargetOf(values);
      const metadataText = text(values, 'metadata');
      const metadata = metadataText === undefined ? {} : checked('metadata', () => parseMetadata(metadataText));
      return { type: 'register', server: parseServer(values, env), target, weight: weightOf(values), ephemeral: values['ephemeral'] === true,
        metadata, requestId: requestIdOf(values) };
    }
    case 'deregister': {
      const values = flags(args, instanceOptions);
      if (values['help'] === true) return { type: 'help', text: clientUsages.deregister };
      return { type: 'deregister', server: parseServer(values, env), target: instanceTargetOf(values),
        ephemeral: values['ephemeral'] === true ? true : undefined, requestId: requestIdOf(values) };
    }
    case 'list':
      return parseListArgs(args, env);
    case 'watch':
      return parseWatchArgs(args, env);
    case 'status':
      return parseStatusArgs(args, env);
    default:
      return assertNever(command, 'unknown client command');
  }
}

/** clustersOf reads a comma-separated cluster list from `flag`; empty means every cluster. */
function clustersOf(values: Values, flag: string): string[] {
  return (text(values, flag) ?? '').split(',').filter((name) => name.trim() !== '')
    .map((name) => checked(flag, () => validateClusterName(name.trim())));
}

/** countOf reads a non-negative integer flag within [min, max]. */
function countOf(values: Values, flag: string, min: number, max: number): number | undefined {
  const given = text(values, flag);
  if (given === undefined) return undefined;
  const value = /^\d{1,9}$/.test(given) ? Number(given) : Number.NaN;
  if (!(value >= min && value <= max)) throw new UsageError(`--${flag}: '${given}' is not an integer in ${min}..${max}`);
  return value;
}

function parseListArgs(args: readonly string[], env: Environment): ClientCommand {
  const values = flags(args, listOptions);
  if (values['help'] === true) return { type: 'help', text: clientUsages.list };
  const target = serviceTargetOf(values);
  const clusters = clustersOf(values, 'cluster');
  const consistency = (text(values, 'consistency') ?? 'linearizable').toLowerCase();
  if (consistency !== 'linearizable' && consistency !== 'local') {
    throw new UsageError(`--consistency: '${consistency}' is not one of linearizable, local`);
  }
  return { type: 'list', server: parseServer(values, env), target, clusters, healthyOnly: values['healthy-only'] === true,
    consistency: consistency === 'local' ? 'LOCAL' : 'LINEARIZABLE', json: values['json'] === true };
}

function parseWatchArgs(args: readonly string[], env: Environment): ClientCommand {
  const values = flags(args, watchOptions);
  if (values['help'] === true) return { type: 'help', text: clientUsages.watch };
  const target = serviceTargetOf(values);
  if (values['cluster'] !== undefined && values['clusters'] !== undefined) throw new UsageError('give --cluster or --clusters, not both');
  const clusters = clustersOf(values, values['clusters'] === undefined ? 'cluster' : 'clusters');
  return {
    type: 'watch', server: parseServer(values, env), target, clusters, healthyOnly: values['healthy-only'] === true, json: values['json'] === true,
    count: countOf(values, 'count', 1, 999_999_999), retries: countOf(values, 'retries', 0, watchDefaults.retriesMax) ?? watchDefaults.retries,
  };
}

function parseStatusArgs(args: readonly string[], env: Environment): ClientCommand {
  const values = flags(args, statusOptions);
  if (values['help'] === true) return { type: 'help', text: clientUsages.status };
  const httpText = text(values, 'http');
  if (httpText !== undefined) {
    if (values['server'] !== undefined) throw new UsageError('give --server or --http, not both');
    return { type: 'status', http: parseHostPort(httpText, '--http'), json: values['json'] === true };
  }
  const { server, name } = serverOf(values, env);
  const httpPort = server.port - grpcPortOffset;
  if (httpPort < 1) {
    const code = name === serverEnvironment ? 'CAIRN_INVALID_ARGUMENT' : undefined;
    throw new UsageError(`${name}: the HTTP port ${server.port} - ${grpcPortOffset} = ${httpPort} is not a port; give --http`, code);
  }
  return { type: 'status', http: { host: server.host, port: httpPort }, json: values['json'] === true };
}

function serviceLabel(target: ServiceTarget): string {
  return `${target.namespace}/${groupedName(target.group, target.service)}`;
}

/** failed prints why a call failed and returns exit code 1. */
function failed(command: string, server: string, error: unknown, requestId: string | undefined, out: Output): number {
  if (error instanceof GrpcCallError && error.cairnCode !== undefined) {
    const retry = error.cairnCode === 'CAIRN_OUTCOME_UNKNOWN' && requestId !== undefined
      ? `\nThe write may or may not have happened: resend the same command with --request-id ${requestId} to retry it safely.` : '';
    const leader = error.leader === undefined ? '' : ` (leader: ${error.leader})`;
    out.stderr(`cairn ${command}: ${error.message}${leader}${retry}\n`);
  } else if (error instanceof GrpcCallError) {
    out.stderr(`cairn ${command}: cannot reach ${server}: ${error.statusName}: ${error.message}\n`);
  } else {
    out.stderr(`cairn ${command}: ${error instanceof Error ? error.message : String(error)}\n`);
  }
  return 1;
}

async function withClient(server: HostPort, use: (client: ClientApiClient) => Promise<number>): Promise<number> {
  const client = new ClientApiClient(formatHostPort(server), clientDeadlineMs);
  try {
    return await use(client);
  } finally {
    client.close();
  }
}

async function executeRegister(command: Extract<ClientCommand, { type: 'register' }>, out: Output): Promise<number> {
  const { target, server } = command;
  const request = {
    namespace: target.namespace, group: target.group, service: target.service, requestId: command.requestId,
    instance: { ip: target.ip, port: target.port, cluster: target.cluster, ephemeral: command.ephemeral, metadata: command.metadata,
      ...(command.weight === undefined ? {} : { weight: command.weight }) },
  };
  return withClient(server, async (client) => {
    try {
      const answer = await client.call(namingServiceName, 'RegisterInstance', request);
      const kind = command.ephemeral ? 'ephemeral' : 'persistent';
      out.stdout(`registered ${target.ip}:${target.port} in ${serviceLabel(target)} (cluster ${target.cluster}, ${kind}), revision ${String(answer['revision'] ?? 0)}\n`);
      return 0;
    } catch (error) {
      return failed('register', formatHostPort(server), error, command.requestId, out);
    }
  });
}

async function executeDeregister(command: Extract<ClientCommand, { type: 'deregister' }>, out: Output): Promise<number> {
  const { target, server } = command;
  const request = { namespace: target.namespace, group: target.group, service: target.service, cluster: target.cluster,
    ip: target.ip, port: target.port, requestId: command.requestId, ...(command.ephemeral === undefined ? {} : { ephemeral: true }) };
  return withClient(server, async (client) => {
    try {
      const answer = await client.call(namingServiceName, 'DeregisterInstance', request);
      const where = `${target.ip}:${target.port} (cluster ${target.cluster}) ${answer['removed'] === true ? 'from' : 'was not in'} ${serviceLabel(target)}`;
      out.stdout(answer['removed'] === true ? `deregistered ${where}\n` : `nothing to do: ${where}\n`);
      return 0;
    } catch (error) {
      return failed('deregister', formatHostPort(server), error, command.requestId, out);
    }
  });
}

async function executeList(command: Extract<ClientCommand, { type: 'list' }>, out: Output): Promise<number> {
  const { target, server } = command;
  const request = { namespace: target.namespace, group: target.group, service: target.service, clusters: command.clusters,
    healthyOnly: command.healthyOnly, consistency: command.consistency };
  return withClient(server, async (client) => {
    try {
      const view = instanceListViewOf(serviceLabel(target), await client.call(namingServiceName, 'ListInstances', request));
      out.stdout(command.json ? `${JSON.stringify(view, null, 2)}\n` : formatInstanceList(view));
      return 0;
    } catch (error) {
      return failed('list', formatHostPort(server), error, undefined, out);
    }
  });
}

async function executeStatus(command: Extract<ClientCommand, { type: 'status' }>, out: Output): Promise<number> {
  const url = `http://${formatHostPort(command.http)}/cairn/v1/cluster`;
  let answer: JsonAnswer;
  try {
    answer = await getJson(url, clientDeadlineMs);
  } catch (error) {
    out.stderr(`cairn status: cannot reach ${url}: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
  const body = answer.body;
  if (answer.status < 200 || answer.status > 299) {
    const code: unknown = typeof body === 'object' && body !== null ? Reflect.get(body, 'code') : undefined;
    const message: unknown = typeof body === 'object' && body !== null ? Reflect.get(body, 'message') : undefined;
    out.stderr(`cairn status: ${typeof code === 'string' ? `${code}: ` : ''}${typeof message === 'string' ? message : `HTTP ${answer.status}`}\n`);
    return 1;
  }
  const view = clusterViewOf(body);
  if (view === null) {
    out.stderr(`cairn status: ${url} answered something that is not a cluster status\n`);
    return 1;
  }
  out.stdout(command.json ? `${JSON.stringify(view, null, 2)}\n` : formatClusterView(view));
  return 0;
}

/** executeClientCommand performs a validated command and resolves with the exit code. */
export function executeClientCommand(command: ClientCommand, out: Output, options: ExecuteOptions = {}): Promise<number> {
  switch (command.type) {
    case 'help':
      out.stdout(command.text);
      return Promise.resolve(0);
    case 'register':
      return executeRegister(command, out);
    case 'deregister':
      return executeDeregister(command, out);
    case 'list':
      return executeList(command, out);
    case 'status':
      return executeStatus(command, out);
    case 'watch':
      return executeWatch(command, out, options);
    default:
      return assertNever(command, 'unknown client command');
  }
}

/** runClient runs one client command line (`command` and its arguments) and resolves with the exit code. */
export async function runClient(command: string, args: readonly string[], env: Environment, out: Output, options: ExecuteOptions = {}): Promise<number> {
  if (!isClientCommandName(command)) {
    out.stderr(`cairn: '${command}' is not a client command\n`);
    return 2;
  }
  let parsed: ClientCommand;
  try {
    parsed = parseClientArgs(command, args, env);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    out.stderr(`cairn ${command}: ${usageMessage(error)}\nRun 'cairn ${command} --help' for usage.\n`);
    return 2;
  }
  return executeClientCommand(parsed, out, options);
}
