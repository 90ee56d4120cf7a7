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
import type { NamingService } from '../../naming/naming-service.ts';
import { normaliseClusters } from '../../naming/query.ts';
import type { Snapshot, SubscribeOptions, SubscriptionHub } from '../../naming/subscriptions.ts';
import { validateClusterName } from '../../naming/validation.ts';
import { statusOfError, toCairnError } from './errors.ts';
import { Fields } from './fields.ts';
import { instanceMessage, serviceMessage } from './messages.ts';
import { serviceKeyOf } from './requests.ts';

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

/** snapshotMessage renders a snapshot as a ServiceSnapshot message (service absent when the service does not exist). */
export function snapshotMessage(snapshot: Snapshot): object {
  const { list } = snapshot;
  return {
    ...(list.service === null ? {} : { service: serviceMessage(list.service) }),
    instances: list.hosts.map(instanceMessage),
    reachProtectionThreshold: list.reachProtectionThreshold,
    checksum: list.checksum,
    revision: snapshot.revision,
    epoch: snapshot.epoch,
  };
}

/** SubscribeLogger receives unexpected failures. */
export interface SubscribeLogger {
  error(fields: Record<string, unknown>, message: string): void;
}

/** serveSubscribe returns the grpc-js handler of Subscribe; `decoded` turns the raw request into Fields or throws. */
export function serveSubscribe(naming: NamingService, hub: SubscriptionHub, decoded: (request: unknown) => Fields, logger?: SubscribeLogger): (call: ServerWritableStream<unknown, object>) => void {
  return (call) => {
    const fail = (error: unknown): void => {
      const cairnError = toCairnError(error);
      if (cairnError.code === 'CAIRN_INTERNAL') logger?.error({ err: error, method: 'Subscribe' }, 'grpc call failed');
      call.emit('error', statusOfError(cairnError));
    };
    let options: SubscribeOptions;
    try {
      options = subscribeOptionsOf(decoded(call.request));
    } catch (error) {
      fail(error);
      return;
    }
    naming.authorizeRead({ identity: null }, options.key).then(() => {
      if (call.cancelled) return;
      const subscription = hub.subscribe(options, {
        kind: 'grpc',
        write: (snapshot, taken) => {
          call.write(snapshotMessage(snapshot), () => taken());
        },
        cutOff: (error: CairnError) => call.emit('error', statusOfError(error)),
      });
      call.on('cancelled', () => subscription.close());
      call.on('close', () => subscription.close());
    }).catch(fail);
  };
}
