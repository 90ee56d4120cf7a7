// subscribe: the server-streaming `Subscribe` method over the member's subscription hub (naming/subscriptions.ts).
// The request is validated like ListInstances, authorized through the same hook as every read, then the stream
// gets the current snapshot (unless a resume allows skipping it; docs/grpc.md) and one snapshot per change.
//
// Back-pressure: the hub hands the stream one snapshot at a time and waits for grpc-js's write callback (the
// HTTP/2 stream took it) before the next; meanwhile newer snapshots replace a waiting one, and a stream that takes
// nothing for too long is ended with RESOURCE_EXHAUSTED (CAIRN_SUBSCRIBER_TOO_SLOW) naming the last revision handed
// over. A client cancel, or the stream's end, forgets the subscriber.

import type { ServerWritableStream } from '@grpc/grpc-js';
import { CairnError } from '../../errors.ts';
import { limits } from '../../limits.ts';
import type { NamingService } from '../../naming/naming-service.ts';
import { normaliseClusters } from '../../naming/query.ts';
import type { Snapshot, SubscribeOptions, SubscriptionHub } from '../../naming/subscriptions.ts';
import { validateClusterName } from '../../naming/validation.ts';
import { statusOfError, toCairnError } from './errors.ts';
import { Fields } from './fields.ts';
import { instanceMessage, serviceMessage } from './messages.ts';
import { serviceKeyOf } from './requests.ts';
import { monotonicMs } from '../../clock.ts';

/** subscribeOptionsOf reads a SubscribeRequest into the hub's options. */
export function subscribeOptionsOf(request: Fields): SubscribeOptions {
  const clusters = normaliseClusters(request.stringList('clusters').map((cluster) => validateClusterName(cluster, request.name('clusters'))));
  return {
    key: serviceKeyOf(request),
    clusters,
    healthyOnly: request.boolean('healthyOnly'),
    initial: true,
    afterRevision: request.number('afterRevision'),
    afterEpoch: request.string('afterEpoch'),
  };
}

/**
 * waitForApplied resolves true once this member's persistent registry reflects `minIndex` (a resumed stream's
 * floor: the client already saw state that new), false after `timeoutMs` or when the call ends. Polled: the wait is
 * rare (a resume at a lagging member) and bounded, and one timer per waiting call is cheap.
 */
async function waitForApplied(naming: NamingService, minIndex: number, timeoutMs: number, ended: () => boolean): Promise<boolean> {
  const deadline = monotonicMs() + timeoutMs;
  while (naming.localAppliedIndex() < minIndex) {
    if (ended() || monotonicMs() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, catchUpPollMs));
  }
  return true;
}

/** catchUpPollMs is how often a resumed stream checks whether this member has caught up. */
const catchUpPollMs = 20;

/**
 * snapshotMessage renders a snapshot as a ServiceSnapshot message (service absent when the service does not exist).
 * `appliedIndex` is read when the snapshot is written, so it is at least the index the snapshot's state reflects:
 * a resume that waits for it gets state at least as new as the one shown (and may wait a little longer than needed).
 */
export function snapshotMessage(snapshot: Snapshot, appliedIndex = 0): object {
  const { list } = snapshot;
  return {
    ...(list.service === null ? {} : { service: serviceMessage(list.service) }),
    instances: list.hosts.map(instanceMessage),
    reachProtectionThreshold: list.reachProtectionThreshold,
    checksum: list.checksum,
    revision: snapshot.revision,
    epoch: snapshot.epoch,
    appliedIndex,
  };
}

/** SubscribeLogger receives unexpected failures. */
export interface SubscribeLogger {
  error(fields: Record<string, unknown>, message: string): void;
}

/** serveSubscribe returns the grpc-js handler of Subscribe; `decoded` turns the raw request into Fields or throws. */
export function serveSubscribe(naming: NamingService, hub: SubscriptionHub, decoded: (request: unknown) => Fields, logger?: SubscribeLogger,
  catchUpMs = limits.subscribeCatchUpMsMax, waitersMax = limits.subscribeCatchUpWaitersMax): (call: ServerWritableStream<unknown, object>) => void {
  /** waiters counts the calls polling for this member to catch up (waitForApplied), at most waitersMax. */
  let waiters = 0;
  return (call) => {
    const fail = (error: unknown): void => {
      const cairnError = toCairnError(error);
      if (cairnError.code === 'CAIRN_INTERNAL') logger?.error({ err: error, method: 'Subscribe' }, 'grpc call failed');
      call.emit('error', statusOfError(cairnError));
    };
    let options: SubscribeOptions;
    let minAppliedIndex: number;
    try {
      const request = decoded(call.request);
      options = subscribeOptionsOf(request);
      minAppliedIndex = request.number('minAppliedIndex');
      if (!Number.isSafeInteger(minAppliedIndex) || minAppliedIndex < 0) {
        throw new CairnError('CAIRN_INVALID_ARGUMENT', "Param 'min_applied_index' must be a non-negative integer", { details: { parameter: 'min_applied_index' } });
      }
    } catch (error) {
      fail(error);
      return;
    }
    let ended = false;
    call.on('cancelled', () => (ended = true));
    call.on('close', () => (ended = true));
    naming.authorizeRead({ identity: null }, options.key).then(async () => {
      // A resume at a member that has not applied what the client already saw would take it back in time.
      const behind = naming.localAppliedIndex() < minAppliedIndex;
      if (behind && waiters >= waitersMax) {
        throw new CairnError('CAIRN_MEMBER_BEHIND',
          `this member has applied the log to ${naming.localAppliedIndex()}, below min_applied_index ${minAppliedIndex}, and already ${waiters} streams wait for it to catch up; resume at another member`,
          { details: { appliedIndex: naming.localAppliedIndex(), minAppliedIndex } });
      }
      if (behind) waiters++;
      let caughtUp: boolean;
      try {
        caughtUp = await waitForApplied(naming, minAppliedIndex, catchUpMs, () => ended || call.cancelled);
      } finally {
        if (behind) waiters--;
      }
      if (!caughtUp) {
        if (ended || call.cancelled) return;
        throw new CairnError('CAIRN_MEMBER_BEHIND',
          `this member has applied the log to ${naming.localAppliedIndex()}, below min_applied_index ${minAppliedIndex}, after ${catchUpMs} ms; resume at another member`,
          { details: { appliedIndex: naming.localAppliedIndex(), minAppliedIndex } });
      }
      if (call.cancelled) return;
      const subscription = hub.subscribe(options, {
        kind: 'grpc',
        write: (snapshot, taken) => {
          call.write(snapshotMessage(snapshot, naming.localAppliedIndex()), () => taken());
        },
        cutOff: (error: CairnError) => call.emit('error', statusOfError(error)),
      });
      call.on('cancelled', () => subscription.close());
      call.on('close', () => subscription.close());
    }).catch(fail);
  };
}
