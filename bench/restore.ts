// bench/restore.ts: how long a follower's state machine holds the event loop while it restores a snapshot from its
// leader, for a registry of N persistent instances (2 000 per service, the remembered-request table as the writes
// leave it): restore() in one call, and restoreInSlices() run as the driver runs it (4 ms slices, a turn of the event
// loop between them), each with the longest event-loop gap a 1 ms probe timer sees.
//
//   node --import tsx bench/restore.ts [--instances 100000]
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { encodeCommand, type RegistryCommand } from '../src/cp/commands.ts';
import { RegistryStateMachine } from '../src/cp/registry-state-machine.ts';
import { LevelStorage } from '../src/replica/level-storage.ts';
import type { ApplyBatch, BatchWrite } from '../src/replica/state-machine.ts';
import { metadataOf } from './lib/driver.ts';
import { measureLoop } from './lib/event-loop.ts';

const { values } = parseArgs({ options: { instances: { type: 'string', default: '100000' } } });
const instances = Number(values.instances);
const perService = 2000;

function* commands(): Generator<RegistryCommand> {
  for (let n = 0; n < instances; n++) {
    const s = Math.floor(n / perService);
    const key = { namespace: 'public', group: 'DEFAULT_GROUP', service: `restored-${s}` };
    const slot = { service: s, ip: `127.${20 + ((n >> 16) & 0x7f)}.${(n >> 8) & 255}.${n & 255}`, port: 8080 };
    yield { type: 'registerInstance', key, instance: { cluster: 'DEFAULT', ip: slot.ip, port: slot.port, weight: 1, enabled: true, healthy: true, metadata: metadataOf(slot) } };
  }
}

const discard: ApplyBatch = { put: () => undefined, del: () => undefined };
const leader = new RegistryStateMachine();
let index = 0;
for (const command of commands()) leader.apply(encodeCommand({ requestId: randomUUID(), command }), ++index, 1, discard);
const data = leader.snapshot();
console.log(`${instances} instances, snapshot ${(data.length / 2 ** 20).toFixed(1)} MiB, ${leader.counts().rememberedRequests} remembered requests`);

/** measure prints a work's time and the longest event-loop gap while it ran. */
async function measure(name: string, work: () => Promise<unknown> | unknown): Promise<void> {
  const { ms, longestGapMs } = await measureLoop(work);
  console.log(`${name}: ${ms.toFixed(0)} ms, longest event-loop gap ${longestGapMs.toFixed(0)} ms`);
}

let longestStep = 0;
/** sliceMs is the driver's slice (src/replica/replica.ts snapshotSliceMs). */
const sliceMs = 4;
let written = 0;
const counting: ApplyBatch = { put: () => { written++; }, del: () => { written++; } };
const collected: BatchWrite[] = [];
const collecting: ApplyBatch = { put: (key, value) => { collected.push({ type: 'put', key, value }); }, del: (key) => { collected.push({ type: 'del', key }); } };
await measure('restore, one call', () => new RegistryStateMachine().restore(data, counting));
console.log(`keyspace writes: ${written}`);
await measure('restoreInSlices, 4 ms slices', async () => {
  const steps = new RegistryStateMachine().restoreInSlices(data, counting);
  let sliceStarted = performance.now();
  for (;;) {
    const before = performance.now();
    const done = steps.next().done === true;
    longestStep = Math.max(longestStep, performance.now() - before);
    if (done) break;
    if (performance.now() - sliceStarted < sliceMs) continue;
    await new Promise<void>((resolve) => setImmediate(resolve));
    sliceStarted = performance.now();
  }
});
console.log(`longest single step: ${longestStep.toFixed(1)} ms`);

// The driver then writes the restored keyspace with its applied index (writeApplied, clearing the keyspace first):
// in batches of at most 1 MiB once the snapshot is stored (the follower's case: its stored applied index is below the
// stored snapshot's), as one batch otherwise (shown for comparison).
new RegistryStateMachine().restore(data, collecting);
const membership = { voters: ['127.0.2.40:8848'], learners: [] };
for (const installed of [false, true]) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cairn-restore-'));
  const storage = await LevelStorage.open(dir);
  try {
    await storage.initialise({ clusterId: 'bench', memberId: '127.0.2.40:8848' }, membership);
    if (installed) await storage.writeReady({ snapshot: { meta: { index, term: 1, membership }, data }, entries: [], hardState: null }, true);
    const how = installed ? 'in batches (snapshot stored)' : 'one batch';
    await measure(`writeApplied of ${collected.length} records, ${how}`, () => storage.writeApplied(collected, installed ? index : 0, true));
    // A newer snapshot arrives: the keyspace just written is replaced.
    if (installed) await storage.writeReady({ snapshot: { meta: { index: index + 1, term: 1, membership }, data }, entries: [], hardState: null }, true);
    await measure(`writeApplied of ${collected.length} records over them, ${how}`, () => storage.writeApplied(collected, installed ? index + 1 : 0, true));
  } finally {
    await storage.close();
    await rm(dir, { recursive: true, force: true });
  }
}
