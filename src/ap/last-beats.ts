// last-beats: the question the responsible member asks its peers before it flags or removes instances (docs/ap.md
// "Beats, expiry and sessions"). Members may disagree for seconds on who is responsible for a service (each has its
// own view of the live members), and meanwhile a client's beats land at whichever member is responsible in the view
// of the member that forwards them; so before it acts on silence, the member that believes itself responsible asks
// every peer how long ago it last heard from each candidate's client. LastBeatsQueryBuilder gathers the candidates of
// one expiry round into one message, within the message bounds of src/limits.ts; what does not fit waits for the
// next pass of the scan. Pure.

import type { Limits } from '../limits.ts';
import type { ExpiryCandidate, ServiceRecord } from './ephemeral-store.ts';
import type { InstanceAddress, LastBeatsQuery } from './transport.ts';

/** LastBeatsLimits are the bounds of one query message. */
export type LastBeatsLimits = Pick<Limits, 'distroSyncBatchMax' | 'distroMessageEntriesMax' | 'distroMessageBytesMax'>;

/** LastBeatsRound is one round's question and its candidates, in the same order as the answer's values. */
export interface LastBeatsRound {
  readonly query: readonly LastBeatsQuery[];
  readonly candidates: readonly ExpiryCandidate[];
}

interface Group {
  readonly record: ServiceRecord;
  readonly instances: InstanceAddress[];
  readonly candidates: ExpiryCandidate[];
}

/**
 * LastBeatsQueryBuilder gathers expiry candidates grouped by service: at most distroSyncBatchMax services,
 * distroMessageEntriesMax instances and about distroMessageBytesMax bytes (over-estimated as chunks.ts does).
 */
export class LastBeatsQueryBuilder {
  private readonly groups = new Map<ServiceRecord, Group>();
  private instances = 0;
  private bytes = 0;

  constructor(private readonly limits: LastBeatsLimits) {}

  /** size is the number of candidates gathered. */
  get size(): number {
    return this.instances;
  }

  /** add takes a candidate if it fits in the message; false when it does not (the caller stops scanning). */
  add(candidate: ExpiryCandidate): boolean {
    const { record, entry } = candidate;
    let group = this.groups.get(record);
    const groupBytes = group === undefined ? 32 + 3 * (record.key.namespace.length + record.key.group.length + record.key.service.length) : 0;
    const entryBytes = 16 + 3 * (entry.cluster.length + entry.ip.length);
    if (group === undefined && this.groups.size >= this.limits.distroSyncBatchMax) return false;
    if (this.instances >= this.limits.distroMessageEntriesMax) return false;
    if (this.instances > 0 && this.bytes + groupBytes + entryBytes > this.limits.distroMessageBytesMax) return false;
    if (group === undefined) {
      group = { record, instances: [], candidates: [] };
      this.groups.set(record, group);
    }
    group.instances.push({ cluster: entry.cluster, ip: entry.ip, port: entry.port });
    group.candidates.push(candidate);
    this.instances++;
    this.bytes += groupBytes + entryBytes;
    return true;
  }

  /** build returns the query and the candidates in answer order (services, then their instances). */
  build(): LastBeatsRound {
    const query: LastBeatsQuery[] = [];
    const candidates: ExpiryCandidate[] = [];
    for (const group of this.groups.values()) {
      query.push({ key: group.record.key, instances: group.instances });
      for (const candidate of group.candidates) candidates.push(candidate);
    }
    return { query, candidates };
  }
}
