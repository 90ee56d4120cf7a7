// Goal: a Distro Verify is acted upon only when it comes from a member of the group. Verify makes the receiver pull
// the differing services from the caller; peer calls are not authenticated yet, so before the fix a Verify whose
// cairn-from named any host made the member connect to that host (and keep a gRPC client per name it was given).
// Found by the seeded peer-port fuzz campaign (test/replica/peer-fuzz.test.ts).
// Method: one real DistroNode of the group [m1, m2] over a recording fake transport; its Verify handler is called
// as the gRPC service would (handlers.onVerify) with a checksum that differs, once from a stranger and once from m2.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { limits } from '../../src/limits.ts';
import { DistroNode } from '../../src/ap/distro.ts';
import { DistroCallError, type DistroTransport } from '../../src/ap/transport.ts';
import { waitFor } from '../support/cluster.ts';

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

test('a Verify from a sender outside the group makes no call back; one from a member is repaired', async (t) => {
  const pulls: string[] = [];
  const refuse = (): never => {
    throw new DistroCallError('not reachable (test)', true);
  };
  const transport: DistroTransport = {
    heartbeat: async () => refuse(),
    sync: async () => undefined,
    verify: async () => undefined,
    pull: async (to) => {
      pulls.push(to);
      return [];
    },
    snapshot: async () => refuse(),
    forward: async () => refuse(),
    forwardBatch: async () => refuse(),
  };
  const node = new DistroNode({ self: 'm1', members: ['m1', 'm2'], limits, logger: quiet });
  node.start(transport);
  t.after(() => node.close());
  const checksums = [{ key: { namespace: 'public', group: 'DEFAULT_GROUP', service: 'orders' }, checksum: 'differs' }];

  node.handlers.onVerify('attacker.example:8848', checksums);
  node.handlers.onVerify('127.0.1.200:9', checksums);
  node.handlers.onVerify('m2', checksums);
  await waitFor(() => pulls.includes('m2'), { timeoutMs: 2000, what: 'the repair pull from m2' });
  assert.deepEqual(pulls, ['m2']);
});
