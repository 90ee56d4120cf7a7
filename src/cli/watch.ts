// watch: `cairn watch` follows one service through the member's Subscribe stream (docs/grpc.md "Subscribe") and
// prints every snapshot as it arrives: the `cairn list` table under a header line naming the snapshot's revision,
// its epoch and the time it arrived, or with --json one JSON object per line.
//
// It stops on Ctrl-C (SIGINT, or the caller's AbortSignal: the stream is cancelled, exit 0), when the member ends the
// stream (exit 0), or after --count snapshots (exit 0). A stream that breaks (the member is gone, UNAVAILABLE, cut
// off as too slow with CAIRN_SUBSCRIBER_TOO_SLOW, any failure the member marks retryable) is resumed from the last
// snapshot's (revision, epoch), so no change is missed, after a backoff doubling from 200 ms to 5 s; a line on
// stderr names each reconnect. After --retries consecutive failed reconnects it gives up (exit 1); a stream that
// delivered a snapshot, or stayed open for a while, resets the count. A refusal (INVALID_ARGUMENT, NOT_FOUND,
// PERMISSION_DENIED, UNIMPLEMENTED...) prints the Cairn code and message and exits 1 at once.

import { status as grpcStatus } from '@grpc/grpc-js';
import { ClientApiClient, GrpcCallError } from '../api/grpc/client.ts';
import { Fields } from '../api/grpc/fields.ts';
import { namingServiceName } from '../api/grpc/proto.ts';
import { limits } from '../limits.ts';
import { groupedName } from '../naming/model.ts';
import type { ServiceTarget } from './client.ts';
import { formatInstanceList, instanceRowOf, type InstanceRow } from './client-format.ts';
import { formatHostPort, type HostPort, type Output } from './main.ts';

/** WatchCommand is a validated `cairn watch` command line. */
export interface WatchCommand {
  readonly type: 'watch';
  readonly server: HostPort;
  readonly target: ServiceTarget;
  readonly clusters: readonly string[];
  readonly healthyOnly: boolean;
  readonly json: boolean;
  /** count stops the watch after this many snapshots; undefined watches until interrupted. */
  readonly count: number | undefined;
  /** retries bounds the consecutive reconnects of a broken stream; 0 never reconnects. */
  readonly retries: number;
}

/** watchDefaults are the reconnect policy's defaults and bounds. */
export const watchDefaults = Object.freeze({
  retries: 10,
  retriesMax: 1000,
  backoffInitialMs: 200,
  backoffMaxMs: 5000,
  /** healthyStreamMs: a stream open this long counts as a success even without a snapshot (a resume may send none). */
  healthyStreamMs: 10_000,
  /** keepaliveMs: an idle stream pings the member this often, so a vanished member is noticed. */
  keepaliveMs: 30_000,
  keepaliveTimeoutMs: 10_000,
});

/** SnapshotView is one ServiceSnapshot as `cairn watch --json` prints it (one line each). */
export interface SnapshotView {
  /** time is when the snapshot arrived (ISO 8601). */
  readonly time: string;
  /** revision is the member's push revision; it grows along the watch, across reconnects too. */
  readonly revision: number;
  /** epoch names the member process that numbered the revision. */
  readonly epoch: string;
  /** service is `namespace/group@@service`. */
  readonly service: string;
  /** exists is false while the service does not exist (and once it was deleted). */
  readonly exists: boolean;
  /** serviceRevision is the service's own revision (its last change's log index; 0 when absent), as `cairn list` shows. */
  readonly serviceRevision: number;
  readonly reachProtectionThreshold: boolean;
  readonly checksum: string;
  readonly instances: readonly InstanceRow[];
}

/** snapshotViewOf reads a ServiceSnapshot of the service named `service`, received at `time`. */
export function snapshotViewOf(service: string, message: unknown, time: Date): SnapshotView {
  const fields = Fields.of(message);
  const definition = fields.message('service');
  return {
    time: time.toISOString(),
    revision: fields.number('revision'),
    epoch: fields.string('epoch'),
    service,
    exists: definition !== undefined,
    serviceRevision: definition?.number('revision') ?? 0,
    reachProtectionThreshold: fields.boolean('reachProtectionThreshold'),
    checksum: fields.string('checksum'),
    instances: fields.messageList('instances').map(instanceRowOf),
  };
}

/** formatSnapshot renders a snapshot: a header line (time, revision, epoch), then the same table as `cairn list`. */
export function formatSnapshot(view: SnapshotView): string {
  const threshold = view.reachProtectionThreshold ? '  (protect threshold reached: unhealthy instances listed as healthy)' : '';
  const header = `--- ${view.time}  revision ${view.revision}  epoch ${view.epoch}${threshold}\n`;
  return header + formatInstanceList({ service: view.service, exists: view.exists, revision: view.serviceRevision, instances: view.instances });
}

/** backoffMs is the wait before the `attempt`-th consecutive reconnect (1-based): 200 ms doubling up to 5 s. */
export function backoffMs(attempt: number): number {
  return Math.min(watchDefaults.backoffInitialMs * 2 ** Math.max(0, attempt - 1), watchDefaults.backoffMaxMs);
}

/** transportCodes are the gRPC statuses of a broken connection or call when the member sent no Cairn code. */
const transportCodes: ReadonlySet<number> = new Set([
  grpcStatus.UNAVAILABLE, grpcStatus.INTERNAL, grpcStatus.UNKNOWN, grpcStatus.DEADLINE_EXCEEDED, grpcStatus.ABORTED, grpcStatus.CANCELLED,
]);

/**
 * reconnectable tells a broken stream (resume it) from a refusal (give up): a failure of the transport itself, or a
 * Cairn error the member marks retryable (CAIRN_SUBSCRIBER_TOO_SLOW, CAIRN_SHUTTING_DOWN, ...; UNAVAILABLE when it
 * did not say).
 */
export function reconnectable(error: unknown): boolean {
  if (!(error instanceof GrpcCallError)) return false;
  if (error.cairnCode === undefined) return transportCodes.has(error.code);
  return error.retryable ?? error.code === grpcStatus.UNAVAILABLE;
}

function describe(error: unknown): string {
  if (error instanceof GrpcCallError) return error.cairnCode === undefined ? `${error.statusName}: ${error.message}` : error.message;
  return error instanceof Error ? error.message : String(error);
}

/** sleep waits `ms`, or less when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

type StreamOutcome = { readonly type: 'done' } | { readonly type: 'ended' } | { readonly type: 'broken'; readonly error: unknown; readonly openMs: number };

/**
 * executeWatch runs a validated watch and resolves with the exit code. It stops when `signal` aborts; when
 * `handleSigint` is true (the CLI), Ctrl-C aborts it as well while it runs.
 */
export async function executeWatch(command: WatchCommand, out: Output, options: { readonly signal?: AbortSignal; readonly handleSigint?: boolean } = {}): Promise<number> {
  const stop = new AbortController();
  const abort = (): void => stop.abort();
  options.signal?.addEventListener('abort', abort, { once: true });
  if (options.signal?.aborted === true) stop.abort();
  // process.once: a second Ctrl-C, should cancelling hang, finds no listener and ends the process the default way.
  if (options.handleSigint === true) process.once('SIGINT', abort);
  const server = formatHostPort(command.server);
  // stream() has no deadline (the unary one is unused); keepalive pings notice a member that vanished silently.
  const client = new ClientApiClient(server, limits.requestTimeoutMs + 1000, {
    keepaliveMs: watchDefaults.keepaliveMs, keepaliveTimeoutMs: watchDefaults.keepaliveTimeoutMs,
  });
  try {
    return await watchLoop(command, client, server, out, stop.signal);
  } finally {
    process.removeListener('SIGINT', abort);
    options.signal?.removeEventListener('abort', abort);
    client.close();
  }
}

async function watchLoop(command: WatchCommand, client: ClientApiClient, server: string, out: Output, stop: AbortSignal): Promise<number> {
  const { target } = command;
  const label = `${target.namespace}/${groupedName(target.group, target.service)}`;
  const position = { afterRevision: 0, afterEpoch: '', minAppliedIndex: 0, printed: 0 };
  let failures = 0;
  for (;;) {
    if (stop.aborted) return 0;
    const outcome = await followStream(command, client, label, position, out, stop, () => (failures = 0));
    if (stop.aborted || outcome.type === 'done') return 0;
    if (outcome.type === 'ended') {
      out.stderr(`cairn watch: ${server} ended the stream\n`);
      return 0;
    }
    const { error } = outcome;
    if (!reconnectable(error)) {
      const detail = error instanceof GrpcCallError && error.cairnCode === undefined ? `${server} failed the stream: ${describe(error)}` : describe(error);
      out.stderr(`cairn watch: ${detail}\n`);
      return 1;
    }
    if (outcome.openMs >= watchDefaults.healthyStreamMs) failures = 0;
    failures += 1;
    if (failures > command.retries) {
      const tries = command.retries === 0 ? 'no reconnect allowed (--retries 0)' : `${command.retries} reconnect${command.retries === 1 ? '' : 's'}`;
      out.stderr(`cairn watch: giving up after ${tries}: ${server}: ${describe(error)}\n`);
      return 1;
    }
    const delay = backoffMs(failures);
    const resume = position.afterRevision === 0 ? 'from the start' : `after revision ${position.afterRevision} (epoch ${position.afterEpoch})`;
    out.stderr(`cairn watch: stream broke (${describe(error)}); reconnect ${failures}/${command.retries} to ${server} in ${delay} ms, resuming ${resume}\n`);
    await sleep(delay, stop);
  }
}

/** followStream opens one Subscribe stream from `position` and prints its snapshots until it stops or breaks. */
async function followStream(command: WatchCommand, client: ClientApiClient, label: string, position: { afterRevision: number; afterEpoch: string; minAppliedIndex: number; printed: number },
  out: Output, stop: AbortSignal, received: () => void): Promise<StreamOutcome> {
  const { target } = command;
  const opened = Date.now();
  const stream = client.stream(namingServiceName, 'Subscribe', {
    namespace: target.namespace, group: target.group, service: target.service, clusters: command.clusters, healthyOnly: command.healthyOnly,
    afterRevision: position.afterRevision, afterEpoch: position.afterEpoch, minAppliedIndex: position.minAppliedIndex,
  });
  const cancel = (): void => stream.cancel();
  stop.addEventListener('abort', cancel, { once: true });
  try {
    for await (const message of stream.messages) {
      const view = snapshotViewOf(label, message, new Date());
      out.stdout(command.json ? `${JSON.stringify(view)}\n` : formatSnapshot(view));
      position.afterRevision = view.revision;
      position.afterEpoch = view.epoch;
      // A resume never accepts state older than what was printed (docs/grpc.md, min_applied_index).
      position.minAppliedIndex = Math.max(position.minAppliedIndex, Number(message['appliedIndex'] ?? 0));
      position.printed += 1;
      received();
      if (command.count !== undefined && position.printed >= command.count) return { type: 'done' };
    }
    return { type: 'ended' };
  } catch (error) {
    return { type: 'broken', error, openMs: Date.now() - opened };
  } finally {
    stop.removeEventListener('abort', cancel);
    stream.cancel();
  }
}
