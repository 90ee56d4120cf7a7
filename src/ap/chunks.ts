// chunks: cutting Distro payloads into messages within the bounds of limits.ts. Merges are per entry, so a big
// service may be split over several messages; every message holds at least one entry (or one empty record).

import type { Limits } from '../limits.ts';
import type { EntryData, RecordData } from './ephemeral-store.ts';

/** ChunkLimits are the bounds of one Distro message. */
export type ChunkLimits = Pick<Limits, 'distroSyncBatchMax' | 'distroMessageBytesMax' | 'distroMessageEntriesMax'>;

/** entryBytesEstimate over-estimates an entry's encoded size (UTF-8 is at most 3 bytes per UTF-16 unit). */
export function entryBytesEstimate(entry: EntryData): number {
  let chars = entry.cluster.length + entry.ip.length + entry.owner.length + entry.version.member.length + entry.lineage.member.length;
  for (const key in entry.metadata) chars += key.length + (entry.metadata[key]?.length ?? 0) + 4;
  return 80 + 3 * chars;
}

/** recordBytesEstimate over-estimates the per-record overhead (its key). */
function recordBytesEstimate(record: RecordData): number {
  return 32 + 3 * (record.key.namespace.length + record.key.group.length + record.key.service.length);
}

/** chunkRecords splits records into messages of at most distroSyncBatchMax records, distroMessageEntriesMax entries and ~distroMessageBytesMax bytes. */
export function chunkRecords(records: readonly RecordData[], limits: ChunkLimits): Array<readonly RecordData[]> {
  const chunks: RecordData[][] = [];
  let current: RecordData[] = [];
  let entries = 0;
  let bytes = 0;
  const flush = (): void => {
    if (current.length > 0) chunks.push(current);
    current = [];
    entries = 0;
    bytes = 0;
  };
  for (const record of records) {
    const overhead = recordBytesEstimate(record);
    if (current.length >= limits.distroSyncBatchMax || (current.length > 0 && bytes + overhead > limits.distroMessageBytesMax)) flush();
    let part: EntryData[] = [];
    bytes += overhead;
    for (const entry of record.entries) {
      const size = entryBytesEstimate(entry);
      if ((entries > 0 || part.length > 0) && (entries + 1 > limits.distroMessageEntriesMax || bytes + size > limits.distroMessageBytesMax)) {
        if (part.length > 0) current.push({ key: record.key, entries: part });
        flush();
        part = [];
        bytes = overhead;
      }
      part.push(entry);
      entries++;
      bytes += size;
    }
    current.push({ key: record.key, entries: part });
  }
  flush();
  return chunks;
}
