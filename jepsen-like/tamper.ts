// tamper: a divergence no checksum can see, planted in a stopped member's data directory, for the replica check's
// positive controls (jepsen-like A7-silent-control, test/cluster/state-digest.test.ts). One instance record of the
// stored keyspace gets a later InstanceRecord.weight field (field 4, a little-endian double) appended: protobuf's
// last occurrence of a field wins, so the record stays valid, and LevelStorage frames it with a valid checksum at the
// same applied index. The member loads it and serves the new weight; only comparing replicas shows it.

import { parseStorageKey } from '../src/cp/keyspace.ts';
import { LevelStorage } from '../src/replica/level-storage.ts';

/** weightTag is InstanceRecord.weight's tag: field 4, wire type 1 (64-bit). */
const weightTag = 0x21;

/**
 * rewriteInstanceWeight rewrites the instance record at `key` (or, without one, the first instance record in key
 * order) in the stopped member's `dataDir` to carry `weight`; returns the key it rewrote. Throws when there is none.
 */
export async function rewriteInstanceWeight(dataDir: string, weight: number, key?: string): Promise<string> {
  const storage = await LevelStorage.open(dataDir);
  try {
    const stored = await storage.load();
    if (stored === null) throw new Error(`rewriteInstanceWeight: ${dataDir} holds no member state`);
    for await (const batch of storage.keyspace()) {
      for (const [stateKey, value] of batch) {
        if (key === undefined ? parseStorageKey(stateKey)?.prefix !== 'ins' : stateKey !== key) continue;
        const field = Buffer.alloc(9);
        field[0] = weightTag;
        field.writeDoubleLE(weight, 1);
        await storage.writeApplied([{ type: 'put', key: stateKey, value: Buffer.concat([value, field]) }], stored.applied, false);
        return stateKey;
      }
    }
    throw new Error(`rewriteInstanceWeight: no instance record ${key === undefined ? '' : `${JSON.stringify(key)} `}in ${dataDir}`);
  } finally {
    await storage.close();
  }
}
