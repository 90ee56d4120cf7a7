// bench/apply: CPU per applied write in the registry state machine alone (no Raft, no LevelDB, no gRPC), the part
// of a follower's work that src/cp owns. It encodes N register commands of the bench's ~400-byte record (as the
// leader's proposer does), then applies them as a follower does (bytes that were not decoded on this member) into a
// RegistryStateMachine with a collecting batch, and prints µs per apply (median of rounds) and bytes written per apply.
//
//   node --import tsx bench/apply.ts [--writes 20000] [--services 64] [--rounds 5] [--wanted]

import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';

import { encodeCommand } from '../src/cp/commands.ts';
import { RegistryStateMachine } from '../src/cp/registry-state-machine.ts';
import type { ApplyBatch } from '../src/replica/state-machine.ts';
import { metadataOf, names, registerSlot } from './lib/driver.ts';

const { values } = parseArgs({ options: {
  writes: { type: 'string', default: '20000' }, services: { type: 'string', default: '64' }, rounds: { type: 'string', default: '5' },
  wanted: { type: 'boolean', default: false },
} });
const writes = Number(values.writes);
const services = Number(values.services);
const rounds = Number(values.rounds);
// --wanted: encode every result, as for an entry whose proposal waits on this member (a follower's waits nowhere).
const wanted = values.wanted;

class CountingBatch implements ApplyBatch {
  puts = 0;
  bytes = 0;
  put(key: string, value: Uint8Array): void {
    this.puts += 1;
    this.bytes += key.length + value.length;
  }
  del(): void {
    this.puts += 1;
  }
}

function commands(round: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < services; i++) {
    out.push(encodeCommand({ requestId: `r${round}-svc-${i}`, command: {
      type: 'createService', key: { namespace: 'public', group: 'DEFAULT_GROUP', service: names.register(i) },
      protectThreshold: 0, metadata: {}, selector: { type: 'none' }, kind: null,
    } }));
  }
  for (let n = 0; n < writes; n++) {
    const slot = registerSlot(n, services);
    out.push(encodeCommand({ requestId: `r${round}-${n}`, command: {
      type: 'registerInstance', key: { namespace: 'public', group: 'DEFAULT_GROUP', service: names.register(slot.service) },
      instance: { cluster: 'DEFAULT', ip: slot.ip, port: slot.port, weight: 1, enabled: true, healthy: true, metadata: metadataOf(slot) },
    } }));
  }
  // Copies: a follower's entries are its own bytes, never the proposer's decoded ones (src/cp/shared-decodes.ts).
  return out.map((bytes) => Uint8Array.prototype.slice.call(bytes));
}

const perApply: number[] = [];
let batch = new CountingBatch();
for (let round = 0; round < rounds; round++) {
  const input = commands(round);
  const machine = new RegistryStateMachine();
  batch = new CountingBatch();
  const started = performance.now();
  for (let i = 0; i < input.length; i++) machine.apply(input[i] as Uint8Array, i + 1, 1, batch, wanted);
  perApply.push((performance.now() - started) * 1000 / input.length);
}
perApply.sort((a, b) => a - b);
const median = perApply[Math.floor(perApply.length / 2)] ?? 0;
console.log(JSON.stringify({ writes, services, rounds, usPerApplyMedian: Number(median.toFixed(2)),
  usPerApplyAll: perApply.map((v) => Number(v.toFixed(2))), writesPerApply: Number((batch.puts / (writes + services)).toFixed(2)),
  bytesPerApply: Math.round(batch.bytes / (writes + services)) }));
