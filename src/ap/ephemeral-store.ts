// ephemeral-store: one member's copy of every ephemeral instance (docs/ap.md). A pure core: no timers, no IO; the
// wall clock is a function passed in (tests pass a fake one), and changes are reported through callbacks.
//
// Per service (a ServiceRecord), each instance address has one Entry: the instance, or a tombstone when it was
// deregistered or expired, with the Version of the write that produced it and its lineage, the version of the
// registration (or client deregistration) it descends from. Copies merge entry by entry, the greatest by
// compareEntries winning (lineage, then a tombstone over the live copies of its lineage, then version), so members
// converge whatever order writes and merges arrive in; a client's deregistration beats every older registration (a
// deregistered instance never comes back from a stale copy), and a removal the store derives itself (a closing
// session's, an expiry's) ends only the registration it was made for, never a later one. Tombstones are kept
// limits.distroTombstoneRetentionMs (relation in limits.ts) and at most limits.distroTombstonesMax in count.
//
// Each record keeps a checksum of its live entries (addresses and versions) up to date on every change: two 32-bit
// FNV-1a sums (add on insert, subtract on removal), so verify never rescans a record. Equal live contents give
// equal checksums; different contents collide with probability ~2^-64.
//
// Liveness (the last beat or session renewal) is local soft state, not versioned and not replicated: a beat is one
// Map lookup and one number write. Only the responsible member expires instances (scanExpiry), and it counts a
// record's silence from no earlier than when it became responsible for it (ownedSinceMs): the takeover grace. A
// member with peers first finds the due entries (findExpiring), asks the peers when they last heard from those
// clients (each answers from heardMs, which only its own clients' beats and registrations set), moves the last beats
// to the latest answers (heardElsewhere), and then acts on what is still due (expireConfirmed); distro.ts. When every
// member live in its view answered, the answers cover every beat except those heard only by a member that died (or
// is down in its view, counted as dead since it was seen going down), so the grace is replaced by a coverage floor
// (coveredSinceMs: the latest death the member knows of) and no longer restarts at a handover that nobody's death
// caused (silenceSinceMs).

import { assert } from '../assert.ts';
import { CairnError } from '../errors.ts';
import type { Limits } from '../limits.ts';
import { instanceId, type Instance, type InstanceKey, type Metadata, type ServiceKey } from '../naming/model.ts';
import { serviceIdOf } from './responsibility.ts';
import { compareVersions, fnv1a32, HybridClock, type Version } from './version.ts';

/** StoreLimits is the subset of src/limits.ts the store enforces. */
export type StoreLimits = Pick<Limits,
  'beatIntervalMs' | 'unhealthyAfterMs' | 'removeAfterMs' | 'instancesPerServiceMax' | 'namespacesMax' | 'servicesPerNamespaceMax' | 'distroTombstoneRetentionMs' |
  'distroTombstonesMax' | 'preservedTimeoutMsMax'>;

/** PRESERVED_BEAT_INTERVAL is the metadata key overriding an instance's beat interval (ms), as in Nacos. */
export const PRESERVED_BEAT_INTERVAL = 'preserved.heart.beat.interval';
/** PRESERVED_BEAT_TIMEOUT is the metadata key overriding how long without a beat makes an instance unhealthy (ms). */
export const PRESERVED_BEAT_TIMEOUT = 'preserved.heart.beat.timeout';
/** PRESERVED_DELETE_TIMEOUT is the metadata key overriding how long without a beat removes an instance (ms). */
export const PRESERVED_DELETE_TIMEOUT = 'preserved.ip.delete.timeout';

/** Timeouts are one instance's beat timings. Invariant: intervalMs <= unhealthyMs and intervalMs <= removeMs. */
export interface Timeouts {
  readonly intervalMs: number;
  readonly unhealthyMs: number;
  readonly removeMs: number;
}

/** EntryData is one entry as it travels between members: an instance or a tombstone (removed), with its version. */
export interface EntryData {
  readonly cluster: string;
  readonly ip: string;
  readonly port: number;
  readonly version: Version;
  /**
   * lineage is the version of the write this entry descends from: a client's registration or deregistration starts a
   * lineage (lineage = version); what the store derives from an entry (a health flip, an operator's update, a closing
   * session's or an expiry's removal) keeps it. Invariant: lineage <= version.
   */
  readonly lineage: Version;
  readonly removed: boolean;
  readonly weight: number;
  readonly enabled: boolean;
  readonly healthy: boolean;
  readonly metadata: Metadata;
  /** owner is the id of the session keeping the instance, '' for beat-kept instances. */
  readonly owner: string;
  /**
   * override is what an operator set (an update or patch, Nacos 2.x's instance metadata), laid over the client's
   * fields when the instance is served; kept by the client's re-registrations and by the tombstone. Absent: none.
   */
  readonly override?: InstanceOverride;
}

/**
 * InstanceOverride is an operator's change of an ephemeral instance (docs/ap.md "Operator changes"): `enabled` and
 * `weight` replace the client's, `metadata` keys are laid over the client's metadata. Health is not overridable:
 * it is the client's beats' (an operator's healthy=... changes the instance itself). Copies merge the override and
 * the client's part of an entry each by its own versions, so a client's re-registration on the far side of a
 * partition does not undo an operator's later change; within the override each attribute merges by the version of
 * the write that set it, so two operators' changes of different attributes on either side of a partition both stay.
 *
 * `version` is the newest attribute's (what a member older than the attribute versions merges the whole override
 * by); `enabledVersion`, `weightVersion` and `metadataVersion` are present only for an attribute set by an older
 * write than `version` (absent: the attribute's version is `version`), so every override has one form (canonical()).
 */
export interface InstanceOverride {
  readonly enabled?: boolean;
  readonly weight?: number;
  readonly metadata?: Metadata;
  readonly version: Version;
  readonly enabledVersion?: Version;
  readonly weightVersion?: Version;
  readonly metadataVersion?: Version;
}

/** OverrideAttribute names the overridable attributes. */
export type OverrideAttribute = 'enabled' | 'weight' | 'metadata';
const overrideAttributes: readonly OverrideAttribute[] = ['enabled', 'weight', 'metadata'];

/** attributeVersion is the version of the write that set `attribute` in `override`; undefined when it is not set. */
export function attributeVersion(override: InstanceOverride | undefined, attribute: OverrideAttribute): Version | undefined {
  if (override === undefined || override[attribute] === undefined) return undefined;
  return override[`${attribute}Version`] ?? override.version;
}

interface OverrideParts {
  enabled?: { readonly value: boolean; readonly version: Version };
  weight?: { readonly value: number; readonly version: Version };
  metadata?: { readonly value: Metadata; readonly version: Version };
}

function partsOf(override: InstanceOverride | undefined): OverrideParts {
  const parts: OverrideParts = {};
  if (override === undefined) return parts;
  if (override.enabled !== undefined) parts.enabled = { value: override.enabled, version: attributeVersion(override, 'enabled')! };
  if (override.weight !== undefined) parts.weight = { value: override.weight, version: attributeVersion(override, 'weight')! };
  if (override.metadata !== undefined) parts.metadata = { value: override.metadata, version: attributeVersion(override, 'metadata')! };
  return parts;
}

/** canonical builds the one form of an override from its attributes (undefined when none is set). */
function canonical(parts: OverrideParts): InstanceOverride | undefined {
  let newest: Version | undefined;
  for (const attribute of overrideAttributes) {
    const part = parts[attribute];
    if (part !== undefined && (newest === undefined || compareVersions(part.version, newest) > 0)) newest = part.version;
  }
  if (newest === undefined) return undefined;
  const version = newest;
  const older = (part: { readonly version: Version } | undefined): boolean => part !== undefined && compareVersions(part.version, version) !== 0;
  return {
    ...(parts.enabled === undefined ? {} : { enabled: parts.enabled.value }),
    ...(parts.weight === undefined ? {} : { weight: parts.weight.value }),
    ...(parts.metadata === undefined ? {} : { metadata: parts.metadata.value }),
    version,
    ...(older(parts.enabled) ? { enabledVersion: parts.enabled!.version } : {}),
    ...(older(parts.weight) ? { weightVersion: parts.weight!.version } : {}),
    ...(older(parts.metadata) ? { metadataVersion: parts.metadata!.version } : {}),
  };
}

/**
 * mergeOverrides merges two copies of an entry's override attribute by attribute, each by its own version (equal
 * versions are the same write). Commutative, associative and idempotent, so copies merged in any order agree.
 */
export function mergeOverrides(a: InstanceOverride | undefined, b: InstanceOverride | undefined): InstanceOverride | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  const pa = partsOf(a);
  const pb = partsOf(b);
  const newer = <T extends { readonly version: Version }>(x: T | undefined, y: T | undefined): T | undefined =>
    x === undefined ? y : y === undefined ? x : compareVersions(y.version, x.version) > 0 ? y : x;
  const parts: OverrideParts = {};
  const enabled = newer(pa.enabled, pb.enabled);
  const weight = newer(pa.weight, pb.weight);
  const metadata = newer(pa.metadata, pb.metadata);
  if (enabled !== undefined) parts.enabled = enabled;
  if (weight !== undefined) parts.weight = weight;
  if (metadata !== undefined) parts.metadata = metadata;
  return canonical(parts);
}

/** sameOverrideVersions tells whether two overrides carry the same writes (every attribute's version equal). */
function sameOverrideVersions(a: InstanceOverride | undefined, b: InstanceOverride | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return overrideAttributes.every((attribute) => {
    const va = attributeVersion(a, attribute);
    const vb = attributeVersion(b, attribute);
    return va === undefined || vb === undefined ? va === vb : compareVersions(va, vb) === 0;
  });
}

/** overrideToken is the override's part of an entry's checksum token: every attribute's version. */
function overrideToken(override: InstanceOverride | undefined): string {
  if (override === undefined) return '';
  let token = '';
  for (const attribute of overrideAttributes) {
    const version = attributeVersion(override, attribute);
    token += version === undefined ? '\u0000-' : `\u0000${version.wallMs}\u0000${version.counter}\u0000${version.member}`;
  }
  return token;
}

/** servedFields lays `override` over the client's fields (the instance as it is listed and pushed). */
export function servedFields(client: InstanceFields, override: InstanceOverride | undefined): InstanceFields {
  if (override === undefined) return client;
  const metadata = override.metadata === undefined || Object.keys(override.metadata).length === 0
    ? client.metadata
    : Object.freeze({ ...client.metadata, ...override.metadata });
  return { weight: override.weight ?? client.weight, enabled: override.enabled ?? client.enabled, healthy: client.healthy, metadata };
}

/** RecordData is a service's entries (all of them, or some: merges are per entry) as they travel between members. */
export interface RecordData {
  readonly key: ServiceKey;
  readonly entries: readonly EntryData[];
}

/** InstanceFields are the attributes of a registration or update. */
export interface InstanceFields {
  readonly weight: number;
  readonly enabled: boolean;
  readonly healthy: boolean;
  readonly metadata: Metadata;
}

/** InstanceChanges are the attributes a patch changes. */
export interface InstanceChanges {
  readonly weight?: number;
  readonly enabled?: boolean;
  readonly healthy?: boolean;
  readonly metadata?: Metadata;
}

/** Entry is the store's mutable state of one address. Invariant: instance === null iff the entry is a tombstone. */
export interface Entry {
  readonly id: string;
  readonly cluster: string;
  readonly ip: string;
  readonly port: number;
  version: Version;
  /** lineage: see EntryData.lineage. */
  lineage: Version;
  instance: Instance | null;
  /** client is what the client registered (instance is it with override laid over); null for a tombstone. */
  client: InstanceFields | null;
  /** override is the operator's change (kept by tombstones for their retention), undefined for none. */
  override: InstanceOverride | undefined;
  owner: string;
  /** lastBeatMs is when this member last heard the instance is alive (beat, renewal, write or arrival). */
  lastBeatMs: number;
  /**
   * heardMs is when this member last heard from the instance's client itself (a beat or renewal it applied or
   * forwarded, a registration it applied), 0 if never. Unlike lastBeatMs, replication (sync, snapshot) never sets it:
   * it is what this member answers when the responsible member asks before it flags or removes the instance.
   */
  heardMs: number;
  /** reportedMs is the latest time (this member's clock) a peer said it heard from the client, 0 if none. */
  reportedMs: number;
  timeouts: Timeouts;
  /** hashA and hashB are the entry's share of its record's checksum (0 for a tombstone). */
  hashA: number;
  hashB: number;
  /** removedAtMs is when this member made or learned the tombstone (its retention counts from there). */
  removedAtMs: number;
}

/** ServiceRecord is one service's entries with its running checksum and counts. */
export class ServiceRecord {
  readonly entries = new Map<string, Entry>();
  /** live counts the entries that are not tombstones. */
  live = 0;
  sumA = 0;
  sumB = 0;
  /** revision counts this member's changes to the record; it only grows. */
  revision = 0;
  /** ownedSinceMs is when this member last became responsible for the service (expiry counts from no earlier). */
  ownedSinceMs = 0;
  /** responsibleEpoch and responsible cache the responsible member for one membership epoch (-1: not computed). */
  responsibleEpoch = -1;
  responsible = '';
  private sorted: readonly Instance[] | null = null;

  constructor(readonly id: string, readonly key: ServiceKey) {}

  /** instances lists the live instances sorted by cluster, ip, port (cached until the next change). */
  instances(): readonly Instance[] {
    if (this.sorted === null) {
      const list: Instance[] = [];
      for (const entry of this.entries.values()) if (entry.instance !== null) list.push(entry.instance);
      list.sort(compareInstances);
      this.sorted = Object.freeze(list);
    }
    return this.sorted;
  }

  /** checksum is the record's live-content checksum: count and the two sums, in hex. */
  checksum(): string {
    return checksumOf(this.live, this.sumA, this.sumB);
  }

  /** touched invalidates the cached list and counts a change. */
  touched(): void {
    this.sorted = null;
    this.revision++;
  }
}

/** EMPTY_CHECKSUM is the checksum of a service without live instances (or unknown to a member). */
export const EMPTY_CHECKSUM = checksumOf(0, 0, 0);

function checksumOf(live: number, sumA: number, sumB: number): string {
  return `${live.toString(16)}-${(sumA >>> 0).toString(16)}-${(sumB >>> 0).toString(16)}`;
}

function compareInstances(a: Instance, b: Instance): number {
  if (a.cluster !== b.cluster) return a.cluster < b.cluster ? -1 : 1;
  if (a.ip !== b.ip) return a.ip < b.ip ? -1 : 1;
  return a.port - b.port;
}

/** entryIdOf is a record's key of an address: cluster, ip and port joined by NUL. */
export function entryIdOf(cluster: string, ip: string, port: number): string {
  return `${cluster}\u0000${ip}\u0000${port}`;
}

/** serviceIdOfKey is serviceIdOf for a ServiceKey. */
export function serviceIdOfKey(key: ServiceKey): string {
  return serviceIdOf(key.namespace, key.group, key.service);
}

function parseTimeout(metadata: Metadata, key: string, fallback: number, max: number, strict: boolean): number {
  const text = metadata[key];
  if (text === undefined) return fallback;
  const value = /^\d{1,12}$/.test(text.trim()) ? Number(text.trim()) : Number.NaN;
  if (Number.isSafeInteger(value) && value >= 1 && value <= max) return value;
  if (!strict) return fallback;
  throw new CairnError('CAIRN_INVALID_ARGUMENT', `metadata '${key}' must be a number of milliseconds between 1 and ${max} (got '${text.slice(0, 32)}')`,
    { details: { parameter: 'metadata' } });
}

/**
 * timeoutsOf reads an instance's beat timings from its `preserved.*` metadata, else the defaults of `limits`. With
 * `strict` (a registration), a malformed value or a timeout shorter than the interval is refused with
 * CAIRN_INVALID_ARGUMENT (Nacos 2.x's checkInstanceIsLegal); otherwise (a copy from a peer) defaults replace it.
 */
export function timeoutsOf(metadata: Metadata, limits: StoreLimits, strict: boolean): Timeouts {
  if (metadata[PRESERVED_BEAT_INTERVAL] === undefined && metadata[PRESERVED_BEAT_TIMEOUT] === undefined && metadata[PRESERVED_DELETE_TIMEOUT] === undefined) {
    return defaultTimeouts(limits);
  }
  const max = limits.preservedTimeoutMsMax;
  const intervalMs = parseTimeout(metadata, PRESERVED_BEAT_INTERVAL, limits.beatIntervalMs, max, strict);
  const unhealthyMs = parseTimeout(metadata, PRESERVED_BEAT_TIMEOUT, limits.unhealthyAfterMs, max, strict);
  const removeMs = parseTimeout(metadata, PRESERVED_DELETE_TIMEOUT, limits.removeAfterMs, max, strict);
  if (unhealthyMs < intervalMs || removeMs < intervalMs) {
    if (!strict) return defaultTimeouts(limits);
    throw new CairnError('CAIRN_INVALID_ARGUMENT',
      `Instance 'heart beat interval' must less than 'heart beat timeout' and 'ip delete timeout' (interval ${intervalMs} ms, timeout ${unhealthyMs} ms, delete timeout ${removeMs} ms)`,
      { details: { parameter: 'metadata' } });
  }
  return Object.freeze({ intervalMs, unhealthyMs, removeMs });
}

const defaultTimeoutsCache = new WeakMap<StoreLimits, Timeouts>();

function defaultTimeouts(limits: StoreLimits): Timeouts {
  let cached = defaultTimeoutsCache.get(limits);
  if (cached === undefined) {
    cached = Object.freeze({ intervalMs: limits.beatIntervalMs, unhealthyMs: limits.unhealthyAfterMs, removeMs: limits.removeAfterMs });
    defaultTimeoutsCache.set(limits, cached);
  }
  return cached;
}

/** StoreEvents are the store's callbacks; both run synchronously after the change is visible. */
export interface StoreEvents {
  /** onEntryChanged reports one entry's new version (local write, merge, expiry): the node queues it for sync. */
  onEntryChanged(record: ServiceRecord, entry: Entry): void;
  /** onServiceChanged reports that a service's instances changed (once per operation, after all its entries). */
  onServiceChanged(record: ServiceRecord): void;
}

/** StoreOptions configure an EphemeralStore. */
export interface StoreOptions {
  readonly self: string;
  readonly now: () => number;
  readonly limits: StoreLimits;
  readonly events: StoreEvents;
}

/** ExpiryOutcome counts what one expiry slice did. */
export interface ExpiryOutcome {
  scanned: number;
  unhealthy: number;
  removed: number;
}

/** ExpiryCandidate is an entry findExpiring found due, to be judged again by expireConfirmed. */
export interface ExpiryCandidate {
  readonly record: ServiceRecord;
  readonly entry: Entry;
}

/** HEARD_NEVER is silenceHeardMs's answer for "never heard from here" (also the cap: about 49.7 days). */
export const HEARD_NEVER = 0xffff_ffff;

/**
 * NOT_COVERED is the coveredSinceMs of an expiry that has no complete set of answers (a member live in this member's
 * view did not answer or could not be reached, or nobody was asked): silence counts by the takeover grace alone.
 */
export const NOT_COVERED = Number.POSITIVE_INFINITY;

/** TombstoneRef is a queued tombstone: the entry and the version it had when it became one. */
interface TombstoneRef {
  readonly record: ServiceRecord;
  readonly entry: Entry;
  readonly version: Version;
}

/** isCurrentTombstone: the reference's entry is still removed, at the version queued, and still in its record. */
function isCurrentTombstone(ref: TombstoneRef): boolean {
  return ref.entry.instance === null && ref.entry.version === ref.version && ref.record.entries.get(ref.entry.id) === ref.entry;
}

/** tombstoneQueueCompactFloor is the fewest queued references that trigger a compaction of the queue. */
function tombstoneQueueCompactFloor(limits: Pick<Limits, 'distroTombstonesMax'>): number {
  return 2 * limits.distroTombstonesMax + 1024;
}

/** EphemeralStore holds every ephemeral instance of this member; see the file comment. */
export class EphemeralStore {
  readonly clock: HybridClock;
  private readonly records = new Map<string, ServiceRecord>();
  private readonly byNamespace = new Map<string, Set<ServiceRecord>>();
  private readonly tombstoneQueue: TombstoneRef[] = [];
  private tombstoneHead = 0;
  /**
   * tombstoneQueueCompactAt: at this many queued references the stale ones are dropped (compactTombstoneQueue). Each
   * removal queues one, so an instance registered and removed again and again would otherwise queue a reference per
   * removal for the whole retention, however few tombstones are current. Doubles with what a compaction keeps.
   */
  private tombstoneQueueCompactAt: number;
  private tombstoneCount = 0;
  private liveCount = 0;
  private droppedTombstones = 0;
  /** The expiry scan's position: a live iterator over the records, and one over the current record's entries. */
  private recordCursor: Iterator<ServiceRecord> | null = null;
  private entryCursor: Iterator<Entry> | null = null;
  private cursorRecord: ServiceRecord | null = null;

  constructor(private readonly options: StoreOptions) {
    this.clock = new HybridClock(options.self);
    this.tombstoneQueueCompactAt = tombstoneQueueCompactFloor(options.limits);
  }

  /** now is the store's wall clock. */
  now(): number {
    return this.options.now();
  }

  /** tombstoneReferencesQueued is how many references the tombstone queue holds, stale ones included (tests). */
  tombstoneReferencesQueued(): number {
    return this.tombstoneQueue.length - this.tombstoneHead;
  }

  /** sizes reports the counts the metrics export. */
  sizes(): { services: number; instances: number; tombstones: number; tombstonesDropped: number } {
    return { services: this.records.size, instances: this.liveCount, tombstones: this.tombstoneCount, tombstonesDropped: this.droppedTombstones };
  }

  /** record returns a service's record, or undefined. */
  record(serviceId: string): ServiceRecord | undefined {
    return this.records.get(serviceId);
  }

  /** allRecords iterates every record (for snapshots, verify and responsibility changes). */
  allRecords(): IterableIterator<ServiceRecord> {
    return this.records.values();
  }

  /** instancesOf lists a service's live instances (sorted by cluster, ip, port). */
  instancesOf(key: ServiceKey): readonly Instance[] {
    return this.records.get(serviceIdOfKey(key))?.instances() ?? [];
  }

  /** serviceKeys lists the services of a namespace that have live instances. */
  serviceKeys(namespace: string): ServiceKey[] {
    const keys: ServiceKey[] = [];
    for (const record of this.byNamespace.get(namespace) ?? []) if (record.live > 0) keys.push(record.key);
    return keys;
  }

  /** checksum returns a service's checksum (EMPTY_CHECKSUM when unknown). */
  checksum(serviceId: string): string {
    return this.records.get(serviceId)?.checksum() ?? EMPTY_CHECKSUM;
  }

  private obtain(key: ServiceKey): ServiceRecord {
    const id = serviceIdOfKey(key);
    let record = this.records.get(id);
    if (record === undefined) {
      record = new ServiceRecord(id, Object.freeze({ namespace: key.namespace, group: key.group, service: key.service }));
      record.ownedSinceMs = this.now();
      this.records.set(id, record);
      let set = this.byNamespace.get(key.namespace);
      if (set === undefined) this.byNamespace.set(key.namespace, (set = new Set()));
      set.add(record);
    }
    return record;
  }

  /**
   * admitService refuses a client's registration that would add a service beyond servicesPerNamespaceMax in its
   * namespace, or a namespace beyond namespacesMax, the quotas the persistent registry keeps (a record holding only
   * tombstones counts until it is collected). Only local writes are admitted here: a peer's copy was admitted by the
   * member responsible for it, and refusing it would leave the members apart for good; the members' views converge
   * within a sync round, so together they overshoot a quota by at most what was admitted during one (or on each side
   * of a partition).
   */
  private admitService(key: ServiceKey): void {
    if (this.records.has(serviceIdOfKey(key))) return;
    const { namespacesMax, servicesPerNamespaceMax } = this.options.limits;
    const services = this.byNamespace.get(key.namespace);
    if (services === undefined && this.byNamespace.size >= namespacesMax) {
      throw new CairnError('CAIRN_NAMESPACES_EXCEEDED', `namespace ${key.namespace} would exceed ${namespacesMax} namespaces of ephemeral instances`,
        { details: { limit: namespacesMax } });
    }
    if (services !== undefined && services.size >= servicesPerNamespaceMax) {
      throw new CairnError('CAIRN_SERVICES_PER_NAMESPACE_EXCEEDED',
        `namespace ${key.namespace} already holds ${servicesPerNamespaceMax} services with ephemeral instances`, { details: { limit: servicesPerNamespaceMax } });
    }
  }

  private dropRecord(record: ServiceRecord): void {
    this.records.delete(record.id);
    const set = this.byNamespace.get(record.key.namespace);
    set?.delete(record);
    if (set !== undefined && set.size === 0) this.byNamespace.delete(record.key.namespace);
  }

  // --- Local writes (at the responsible member) ---

  /**
   * put registers (mode 'register': upsert) or updates (mode 'update': must exist) an instance with a new version.
   * Throws CAIRN_INSTANCE_NOT_FOUND, CAIRN_INSTANCES_PER_SERVICE_EXCEEDED, CAIRN_SERVICES_PER_NAMESPACE_EXCEEDED,
   * CAIRN_NAMESPACES_EXCEEDED or CAIRN_INVALID_ARGUMENT (timeouts).
   */
  put(key: InstanceKey, fields: InstanceFields, owner: string, mode: 'register' | 'update'): { instance: Instance; revision: number; lineage: Version } {
    const timeouts = timeoutsOf(fields.metadata, this.options.limits, true);
    const id = entryIdOf(key.cluster, key.ip, key.port);
    const existing = this.records.get(serviceIdOfKey(key))?.entries.get(id);
    const exists = existing !== undefined && existing.instance !== null;
    if (mode === 'update' && !exists) throw notFound(key);
    this.admitService(key);
    const record = this.obtain(key);
    if (!exists && record.live >= this.options.limits.instancesPerServiceMax) {
      throw new CairnError('CAIRN_INSTANCES_PER_SERVICE_EXCEEDED',
        `service ${key.namespace}/${key.group}@@${key.service} already holds ${record.live} instances (limit ${this.options.limits.instancesPerServiceMax})`,
        { details: { limit: this.options.limits.instancesPerServiceMax } });
    }
    // A registration is the client's: it replaces the client's fields and keeps what an operator set (also from a
    // tombstone: re-registered within its retention). An update is the operator's: enabled, weight and metadata go
    // into the override, health into the instance (docs/ap.md "Operator changes").
    // The operator's update also keeps the instance's owner: a session's instance stays the session's.
    // The client's part keeps its version when an update leaves it as it was (only health can change it): a newer
    // version would let the client's old fields beat a re-registration made meanwhile on another member.
    const version = this.clock.tick(this.now());
    let clientVersion = version;
    let client: InstanceFields = fields;
    let override = existing?.override;
    let entryTimeouts = timeouts;
    let entryOwner = owner;
    if (mode === 'update' && existing !== undefined && existing.client !== null) {
      client = { ...existing.client, healthy: fields.healthy };
      if (fields.healthy === existing.client.healthy) clientVersion = existing.version;
      override = { enabled: fields.enabled, weight: fields.weight, metadata: fields.metadata, version };
      entryTimeouts = existing.timeouts;
      entryOwner = existing.owner;
    }
    // A registration starts a lineage (a closing session's or an expiry's removal made from an older copy cannot end
    // it); an update descends from the registration it changes.
    const lineage = mode === 'update' && existing !== undefined ? existing.lineage : version;
    const data: EntryData = {
      cluster: key.cluster, ip: key.ip, port: key.port, version: clientVersion, lineage, removed: false,
      weight: client.weight, enabled: client.enabled, healthy: client.healthy, metadata: client.metadata, owner: entryOwner,
      ...(override === undefined ? {} : { override }),
    };
    const entry = this.install(record, data, entryTimeouts);
    entry.heardMs = this.now();
    this.options.events.onServiceChanged(record);
    assert(entry.instance !== null, 'put installed a tombstone');
    return { instance: entry.instance, revision: record.revision, lineage };
  }

  /** patch changes some attributes of an existing instance (CAIRN_INSTANCE_NOT_FOUND when absent). */
  patch(key: InstanceKey, changes: InstanceChanges): { instance: Instance; revision: number } {
    const record = this.records.get(serviceIdOfKey(key));
    const entry = record?.entries.get(entryIdOf(key.cluster, key.ip, key.port));
    if (record === undefined || entry === undefined || entry.instance === null || entry.client === null) throw notFound(key);
    // The operator's change: merged into the override (each given attribute replaces the override's); health, the
    // one attribute that is not overridable, changes the instance.
    // Each given attribute is set by this write (its version); the others keep the writes that set them.
    const version = this.clock.tick(this.now());
    const parts = partsOf(entry.override);
    if (changes.enabled !== undefined) parts.enabled = { value: changes.enabled, version };
    if (changes.weight !== undefined) parts.weight = { value: changes.weight, version };
    if (changes.metadata !== undefined) parts.metadata = { value: changes.metadata, version };
    const override = canonical(parts);
    const client = { ...entry.client, healthy: changes.healthy ?? entry.client.healthy };
    // As in put's update: the client's part keeps its version unless its health changed.
    const clientVersion = client.healthy === entry.client.healthy ? entry.version : version;
    this.install(record, {
      cluster: entry.cluster, ip: entry.ip, port: entry.port, version: clientVersion, lineage: entry.lineage, removed: false,
      weight: client.weight, enabled: client.enabled, healthy: client.healthy, metadata: client.metadata, owner: entry.owner,
      ...(override === undefined ? {} : { override }),
    }, entry.timeouts);
    entry.heardMs = this.now();
    this.options.events.onServiceChanged(record);
    assert(entry.instance !== null, 'patch installed a tombstone');
    return { instance: entry.instance, revision: record.revision };
  }

  /**
   * remove tombstones an instance with a new version (the client's deregistration: a lineage of its own, so it beats
   * every registration older than it); removed=false when there was nothing live to remove.
   */
  remove(key: InstanceKey): { removed: boolean; revision: number } {
    const existing = this.records.get(serviceIdOfKey(key))?.entries.get(entryIdOf(key.cluster, key.ip, key.port));
    if (existing !== undefined && existing.instance !== null) {
      const record = this.obtain(key);
      this.tombstone(record, existing, 'own');
      this.options.events.onServiceChanged(record);
      return { removed: true, revision: record.revision };
    }
    // Unknown here (or already removed): the deregistration is still acknowledged (Nacos answers ok), so it leaves
    // a tombstone newer than any registration this member has not seen yet, e.g. one made on the other side of a
    // partition; without it that registration would arrive later and resurrect the instance (jepsen-like D1).
    // An existing tombstone's override stays with the new one, as every deregistration keeps it (docs/ap.md
    // "Operator changes"): dropped here, an operator's change held by this member alone was lost (jepsen-like C3b,
    // seed 27001: a redeploy's DELETE reached a member that had expired the instance).
    const record = this.obtain(key);
    const version = this.clock.tick(this.now());
    this.install(record, {
      cluster: key.cluster, ip: key.ip, port: key.port, version, lineage: version, removed: true,
      weight: 0, enabled: false, healthy: false, metadata: emptyMetadata, owner: existing?.owner ?? '',
      ...(existing?.override === undefined ? {} : { override: existing.override }),
    }, existing?.timeouts ?? defaultTimeouts(this.options.limits));
    return { removed: false, revision: record.revision };
  }

  /**
   * removeOwned tombstones an instance only while session `owner` owns it (a closing session's deregistration):
   * removed=false, and nothing written, when it is absent, removed, or owned by another session or by beats. Unlike
   * remove, an unknown instance gets no tombstone: one registered elsewhere since is another session's. The tombstone
   * keeps the registration's lineage: it ends that registration and no later one, so a close applied late, from a copy
   * older than a registration made meanwhile through another session, loses to that registration everywhere
   * (jepsen-like D6, seed 44001).
   */
  /**
   * copyOf describes this member's copy of an address: live or a tombstone, its owner ('' when no session holds it)
   * and its lineage; null when this member holds nothing for it.
   */
  copyOf(key: InstanceKey): { readonly live: boolean; readonly owner: string; readonly lineage: Version } | null {
    const entry = this.records.get(serviceIdOfKey(key))?.entries.get(entryIdOf(key.cluster, key.ip, key.port));
    if (entry === undefined) return null;
    return { live: entry.instance !== null, owner: entry.owner, lineage: entry.lineage };
  }

  removeOwned(key: InstanceKey, owner: string): { removed: boolean; revision: number } {
    assert(owner !== '', 'removeOwned needs a session id');
    const record = this.records.get(serviceIdOfKey(key));
    const existing = record?.entries.get(entryIdOf(key.cluster, key.ip, key.port));
    if (record === undefined || existing === undefined || existing.instance === null || existing.owner !== owner) {
      return { removed: false, revision: record?.revision ?? 0 };
    }
    this.tombstone(record, existing, 'kept');
    this.options.events.onServiceChanged(record);
    return { removed: true, revision: record.revision };
  }

  /**
   * tombstone removes a live entry with a new version: in a lineage of its own (`own`: the client's deregistration)
   * or in the entry's (`kept`: a removal derived from this registration, which must not end a later one).
   */
  private tombstone(record: ServiceRecord, entry: Entry, lineage: 'own' | 'kept'): void {
    const version = this.clock.tick(this.now());
    this.install(record, {
      cluster: entry.cluster, ip: entry.ip, port: entry.port, version, lineage: lineage === 'own' ? version : entry.lineage, removed: true,
      weight: 0, enabled: false, healthy: false, metadata: emptyMetadata, owner: entry.owner,
      ...(entry.override === undefined ? {} : { override: entry.override }),
    }, entry.timeouts);
  }

  /** setHealthy writes an instance's health with a new version (expiry, or a beat reviving it). */
  private setHealthy(record: ServiceRecord, entry: Entry, healthy: boolean): void {
    const client = entry.client;
    assert(entry.instance !== null && client !== null, 'setHealthy on a tombstone');
    this.install(record, {
      cluster: entry.cluster, ip: entry.ip, port: entry.port, version: this.clock.tick(this.now()), lineage: entry.lineage, removed: false,
      weight: client.weight, enabled: client.enabled, healthy, metadata: client.metadata, owner: entry.owner,
      ...(entry.override === undefined ? {} : { override: entry.override }),
    }, entry.timeouts);
  }

  /**
   * beat records that an instance is alive: one lookup and one number write. Returns the entry (undefined when the
   * instance is unknown or removed). When `revive` and the instance is unhealthy, it is made healthy (a write).
   */
  beat(serviceId: string, entryId: string, revive: boolean): Entry | undefined {
    const record = this.records.get(serviceId);
    const entry = record?.entries.get(entryId);
    if (record === undefined || entry === undefined || entry.instance === null) return undefined;
    const now = this.now();
    entry.lastBeatMs = now;
    entry.heardMs = now;
    if (revive && !entry.instance.healthy) {
      this.setHealthy(record, entry, true);
      this.options.events.onServiceChanged(record);
    }
    return entry;
  }

  // --- Installing entries (the one place entries change) ---

  /** install replaces (or creates) an entry with `data`, keeping counts, checksum and the tombstone queue right. */
  private install(record: ServiceRecord, data: EntryData, timeouts: Timeouts): Entry {
    assert(compareVersions(data.lineage, data.version) <= 0, 'an entry\'s lineage is newer than its version');
    const id = entryIdOf(data.cluster, data.ip, data.port);
    const now = this.now();
    let entry = record.entries.get(id);
    if (entry === undefined) {
      entry = {
        id, cluster: data.cluster, ip: data.ip, port: data.port, version: data.version, lineage: data.lineage, instance: null, client: null, override: undefined, owner: data.owner,
        lastBeatMs: now, heardMs: 0, reportedMs: 0, timeouts, hashA: 0, hashB: 0, removedAtMs: now,
      };
      record.entries.set(id, entry);
    } else if (entry.instance !== null) {
      record.live--;
      this.liveCount--;
      record.sumA = (record.sumA - entry.hashA) >>> 0;
      record.sumB = (record.sumB - entry.hashB) >>> 0;
    } else {
      this.tombstoneCount--;
    }
    entry.version = data.version;
    entry.lineage = data.lineage;
    entry.owner = data.owner;
    entry.timeouts = timeouts;
    entry.override = data.override;
    if (data.removed) {
      entry.instance = null;
      entry.client = null;
      entry.hashA = 0;
      entry.hashB = 0;
      entry.removedAtMs = now;
      this.tombstoneCount++;
      this.tombstoneQueue.push({ record, entry, version: data.version });
      if (this.tombstoneQueue.length - this.tombstoneHead >= this.tombstoneQueueCompactAt) this.compactTombstoneQueue();
    } else {
      const wasLive = entry.instance !== null;
      const client: InstanceFields = { weight: data.weight, enabled: data.enabled, healthy: data.healthy, metadata: data.metadata };
      const served = servedFields(client, data.override);
      entry.client = client;
      entry.instance = Object.freeze({
        ip: data.ip, port: data.port, cluster: data.cluster, weight: served.weight, enabled: served.enabled, healthy: served.healthy,
        ephemeral: true, metadata: served.metadata, instanceId: instanceId(data.ip, data.port, data.cluster, record.key.group, record.key.service),
      });
      if (!wasLive) entry.lastBeatMs = now;
      // The override's versions too: two copies that differ only in them must not look equal to verify.
      const token = `${id}\u0000${data.version.wallMs}\u0000${data.version.counter}\u0000${data.version.member}${overrideToken(data.override)}`;
      entry.hashA = fnv1a32(token);
      entry.hashB = fnv1a32(token, 0x9747b28c);
      record.live++;
      this.liveCount++;
      record.sumA = (record.sumA + entry.hashA) >>> 0;
      record.sumB = (record.sumB + entry.hashB) >>> 0;
    }
    record.touched();
    this.options.events.onEntryChanged(record, entry);
    return entry;
  }

  // --- Replication ---

  /**
   * merge applies a copy of (part of) a service from a peer: each entry newer than ours replaces ours (last writer
   * wins); older or equal ones are ignored. Returns how many entries changed; listeners hear once if any did.
   */
  merge(data: RecordData): number {
    let record = this.records.get(serviceIdOfKey(data.key));
    let changed = 0;
    for (const arriving of data.entries) {
      const id = entryIdOf(arriving.cluster, arriving.ip, arriving.port);
      const current = record?.entries.get(id);
      // Two parts: the client's (instance or tombstone), the greater by compareEntries, and the operator's override,
      // last-writer-wins by version (docs/ap.md "Operator changes").
      // The override merges attribute by attribute (mergeOverrides): it changed when the arriving copy carries a
      // write of some attribute that this copy lacks or holds older.
      const clientNewer = current === undefined || compareEntries(arriving, { lineage: current.lineage, version: current.version, removed: current.instance === null }) > 0;
      const mergedOverride = mergeOverrides(current?.override, arriving.override);
      const overrideNewer = !sameOverrideVersions(mergedOverride, current?.override);
      if (!clientNewer && !overrideNewer) continue;
      this.clock.observe(arriving.version);
      if (arriving.override !== undefined) this.clock.observe(arriving.override.version);
      const newerOverride = mergedOverride;
      const incoming: EntryData = clientNewer
        ? { ...withoutOverride(arriving), ...(newerOverride === undefined ? {} : { override: newerOverride }) }
        : { ...withoutOverride(this.exportEntry(current!)), ...(newerOverride === undefined ? {} : { override: newerOverride }) };
      // A tombstone for an address we never held still matters: it beats a stale registration arriving later.
      record ??= this.obtain(data.key);
      const wasLive = current !== undefined && current.instance !== null;
      if (clientNewer && !incoming.removed && !wasLive && record.live >= this.options.limits.instancesPerServiceMax) continue;
      const timeouts = !clientNewer ? current!.timeouts
        : incoming.removed ? (current?.timeouts ?? defaultTimeouts(this.options.limits)) : timeoutsOf(incoming.metadata, this.options.limits, false);
      const entry = this.install(record, incoming, timeouts);
      // An instance that arrives unhealthy was last heard of before its flip, not now (see silenceSinceMs).
      if (clientNewer && !incoming.removed && !incoming.healthy && !wasLive) entry.lastBeatMs = Math.min(entry.lastBeatMs, unhealthySinceMs(entry));
      changed++;
    }
    if (changed > 0 && record !== undefined) this.options.events.onServiceChanged(record);
    return changed;
  }

  /** exportEntry is an entry as it travels. */
  exportEntry(entry: Entry): EntryData {
    const client = entry.client;
    return {
      cluster: entry.cluster, ip: entry.ip, port: entry.port, version: entry.version, lineage: entry.lineage, removed: client === null,
      weight: client?.weight ?? 0, enabled: client?.enabled ?? false, healthy: client?.healthy ?? false,
      metadata: client?.metadata ?? emptyMetadata, owner: entry.owner,
      ...(entry.override === undefined ? {} : { override: entry.override }),
    };
  }

  /** exportRecord is a whole service (live entries and tombstones) as it travels. */
  exportRecord(record: ServiceRecord): RecordData {
    const entries: EntryData[] = [];
    for (const entry of record.entries.values()) entries.push(this.exportEntry(entry));
    return { key: record.key, entries };
  }

  // --- Expiry and garbage collection ---

  /**
   * scanExpiry looks at up to `budget` entries from where the last scan stopped, skipping services `owns` rejects,
   * and expires the silent ones: unhealthy past their timeout, removed (tombstoned) past their delete timeout,
   * counting silence from max(lastBeatMs, ownedSinceMs). It stops early at the end of a full pass. This acts on this
   * member's knowledge alone; a member with peers first asks them (findExpiring, then expireConfirmed).
   */
  scanExpiry(budget: number, owns: (record: ServiceRecord) => boolean): ExpiryOutcome {
    const now = this.now();
    const outcome: ExpiryOutcome = { scanned: 0, unhealthy: 0, removed: 0 };
    outcome.scanned = this.walkExpiry(budget, owns, (record, entry) => {
      if (this.expireEntry(record, entry, now, outcome)) this.options.events.onServiceChanged(record);
      return true;
    });
    return outcome;
  }

  /**
   * findExpiring is scanExpiry without acting: it walks the same bounded slice and hands each entry that is due (to
   * be flagged or removed) to `accept`, which returns false once it holds all it can; the walk stops there, and a due
   * entry it could not take is found again in the next pass. Returns how many entries and records were examined.
   * `coveredSinceMs` is the coverage floor the answers would give if every peer answers (silenceSinceMs): the
   * candidates are what may be due once they have; expireConfirmed judges them with the answers.
   */
  findExpiring(budget: number, owns: (record: ServiceRecord) => boolean, accept: (candidate: ExpiryCandidate) => boolean, coveredSinceMs = NOT_COVERED): number {
    const now = this.now();
    const self = this.options.self;
    return this.walkExpiry(budget, owns, (record, entry) => (expiryActionOf(record, entry, now, self, coveredSinceMs) === null ? true : accept({ record, entry })));
  }

  /**
   * expireConfirmed acts on candidates found earlier (findExpiring), judging each again now: a candidate removed,
   * heard from since (a beat here or one a peer reported, heardElsewhere), or no longer owned (`owns`) is left alone.
   * `coveredSinceMs` is the coverage floor of the round's answers, NOT_COVERED when they are incomplete.
   */
  expireConfirmed(candidates: readonly ExpiryCandidate[], owns: (record: ServiceRecord) => boolean, coveredSinceMs = NOT_COVERED): ExpiryOutcome {
    const now = this.now();
    const outcome: ExpiryOutcome = { scanned: 0, unhealthy: 0, removed: 0 };
    const changed = new Set<ServiceRecord>();
    for (const { record, entry } of candidates) {
      outcome.scanned++;
      if (record.entries.get(entry.id) !== entry || this.records.get(record.id) !== record || !owns(record)) continue;
      if (this.expireEntry(record, entry, now, outcome, coveredSinceMs)) changed.add(record);
    }
    for (const record of changed) this.options.events.onServiceChanged(record);
    return outcome;
  }

  /**
   * heardElsewhere records that a peer heard from an entry's client at `atMs` (this member's clock): silence counts
   * from no earlier than that (reportedMs keeps it apart from arrivals, for the coverage rule of silenceSinceMs).
   * Returns true when it moved the entry's last beat later.
   */
  heardElsewhere(entry: Entry, atMs: number): boolean {
    if (entry.instance === null) return false;
    const heardAtMs = Math.min(atMs, this.now());
    if (heardAtMs > entry.reportedMs) entry.reportedMs = heardAtMs;
    if (atMs <= entry.lastBeatMs) return false;
    entry.lastBeatMs = heardAtMs;
    return true;
  }

  /**
   * noteHeard records that this member heard from an instance's client without applying anything (a beat it
   * forwards): heardMs only, one lookup and one number write.
   */
  noteHeard(serviceId: string, entryId: string): void {
    const entry = this.records.get(serviceId)?.entries.get(entryId);
    if (entry !== undefined && entry.instance !== null) entry.heardMs = this.now();
  }

  /**
   * silenceHeardMs is how long ago this member last heard from an instance's client (heardMs), capped at
   * HEARD_NEVER, which also answers for an instance never heard from here, removed or unknown.
   */
  silenceHeardMs(serviceId: string, entryId: string): number {
    const entry = this.records.get(serviceId)?.entries.get(entryId);
    if (entry === undefined || entry.instance === null || entry.heardMs === 0) return HEARD_NEVER;
    return Math.min(HEARD_NEVER, Math.max(0, this.now() - entry.heardMs));
  }

  /** walkExpiry visits up to `budget` records and entries from the scan's cursor; `visit` returning false stops it. */
  private walkExpiry(budget: number, owns: (record: ServiceRecord) => boolean, visit: (record: ServiceRecord, entry: Entry) => boolean): number {
    let scanned = 0;
    this.recordCursor ??= this.records.values();
    while (scanned < budget) {
      if (this.entryCursor === null) {
        const next = this.recordCursor.next();
        if (next.done === true) {
          this.recordCursor = null;
          break;
        }
        scanned++;
        if (!owns(next.value) || next.value.live === 0) continue;
        this.cursorRecord = next.value;
        this.entryCursor = next.value.entries.values();
      }
      const record = this.cursorRecord;
      assert(record !== null, 'expiry cursor without a record');
      const step = this.entryCursor.next();
      if (step.done === true) {
        this.entryCursor = null;
        this.cursorRecord = null;
        continue;
      }
      scanned++;
      if (!visit(record, step.value)) break;
    }
    return scanned;
  }

  private expireEntry(record: ServiceRecord, entry: Entry, now: number, outcome: ExpiryOutcome, coveredSinceMs = NOT_COVERED): boolean {
    switch (expiryActionOf(record, entry, now, this.options.self, coveredSinceMs)) {
      case null:
        return false;
      case 'remove':
        this.tombstone(record, entry, 'kept');
        outcome.removed++;
        return true;
      case 'unhealthy':
        this.setHealthy(record, entry, false);
        outcome.unhealthy++;
        return true;
    }
  }

  /**
   * collectTombstones forgets tombstones older than distroTombstoneRetentionMs, and the oldest beyond
   * distroTombstonesMax (counted as dropped); records left empty are dropped. Returns how many were forgotten.
   */
  collectTombstones(): number {
    const { distroTombstoneRetentionMs, distroTombstonesMax } = this.options.limits;
    const horizon = this.now() - distroTombstoneRetentionMs;
    let forgotten = 0;
    while (this.tombstoneHead < this.tombstoneQueue.length) {
      const ref = this.tombstoneQueue[this.tombstoneHead];
      assert(ref !== undefined, 'tombstone queue hole');
      const current = isCurrentTombstone(ref);
      if (current && ref.entry.removedAtMs > horizon && this.tombstoneCount <= distroTombstonesMax) break;
      this.tombstoneHead++;
      if (!current) continue;
      if (ref.entry.removedAtMs > horizon) this.droppedTombstones++;
      ref.record.entries.delete(ref.entry.id);
      this.tombstoneCount--;
      forgotten++;
      if (ref.record.entries.size === 0 && this.records.get(ref.record.id) === ref.record) this.dropRecord(ref.record);
    }
    if (this.tombstoneHead > 1024 && this.tombstoneHead * 2 > this.tombstoneQueue.length) {
      this.tombstoneQueue.splice(0, this.tombstoneHead);
      this.tombstoneHead = 0;
    }
    return forgotten;
  }

  /**
   * compactTombstoneQueue keeps only the references to current tombstones (at most one per entry, so at most
   * tombstoneCount), in their order, and sets the next compaction at twice that or the floor, whichever is larger:
   * amortised, each queued reference is copied a bounded number of times.
   */
  private compactTombstoneQueue(): void {
    const kept: TombstoneRef[] = [];
    for (let i = this.tombstoneHead; i < this.tombstoneQueue.length; i++) {
      const ref = this.tombstoneQueue[i];
      assert(ref !== undefined, 'tombstone queue hole');
      if (isCurrentTombstone(ref)) kept.push(ref);
    }
    assert(kept.length <= this.tombstoneCount, 'more current tombstone references than tombstones');
    this.tombstoneQueue.length = 0;
    this.tombstoneQueue.push(...kept);
    this.tombstoneHead = 0;
    this.tombstoneQueueCompactAt = Math.max(tombstoneQueueCompactFloor(this.options.limits), 2 * kept.length);
  }
}

const emptyMetadata: Metadata = Object.freeze({});

/** EntryOrder is what orders two copies of one address. */
type EntryOrder = Pick<EntryData, 'lineage' | 'version' | 'removed'>;

/**
 * compareEntries orders two copies of one address (the client's part; the override merges apart): by lineage first, so
 * a registration, or a client's deregistration, beats everything descended from an older one; within a lineage a
 * tombstone beats every live copy (the registration has ended: a health flip or an operator's change made from a copy
 * that had not heard of its end does not bring it back); then by version. A total order (each part is), so merging
 * copies in any order converges. 0 only for the same write.
 */
export function compareEntries(a: EntryOrder, b: EntryOrder): number {
  const lineage = compareVersions(a.lineage, b.lineage);
  if (lineage !== 0) return lineage;
  if (a.removed !== b.removed) return a.removed ? 1 : -1;
  return compareVersions(a.version, b.version);
}

/** withoutOverride is an entry's data without its override (the merge picks the override apart). */
function withoutOverride(data: EntryData): EntryData {
  if (data.override === undefined) return data;
  const { override: _override, ...rest } = data;
  return rest;
}

/** unhealthySinceMs: when the silence that made an unhealthy entry unhealthy began, by its flip's version. */
function unhealthySinceMs(entry: Entry): number {
  return entry.version.wallMs - entry.timeouts.unhealthyMs;
}

/**
 * takeoverBeatsUnhealthy: beat intervals (at most one delete timeout) a member that took over an instance already
 * unhealthy waits for a beat before it removes it: long enough for a live client's next beats to reach it once the
 * members route to it (the flip may come from the far side of a healed partition, which heard none of them), short
 * enough that handovers a few seconds apart no longer postpone the removal for ever.
 */
const takeoverBeatsUnhealthy = 3;

/**
 * graceSinceMs is the takeover rule: when an instance's silence began as far as member `self` knows from its own
 * record and the takeover. A healthy one: its last beat here, or the takeover if later (the grace: its beats went to
 * the old owner). So does an unhealthy one that this member flipped itself while responsible (it knows the silence
 * exactly). Any other unhealthy one carries its silence with it: the flip is a replicated write made by the owner of
 * the time once it had heard nothing for unhealthyMs, so its silence began no later than unhealthyMs before that
 * version, whoever owns it now; a new owner only waits takeoverBeatsUnhealthy beat intervals from its takeover for a
 * beat that revives it. Without this, every change of the live set (which moves most services: the hash is taken
 * modulo the live count) restarted a full delete timeout, and a member killed and restarted every few seconds kept
 * dead instances listed for as long as the kills went on (jepsen-like D4, 2026-11-22).
 */
function graceSinceMs(record: ServiceRecord, entry: Entry, instance: Instance, self: string): number {
  const heardHere = Math.max(entry.lastBeatMs, record.ownedSinceMs);
  if (instance.healthy || (entry.version.member === self && record.ownedSinceMs <= entry.version.wallMs)) return heardHere;
  const { intervalMs, removeMs } = entry.timeouts;
  const waitAfterTakeoverMs = Math.min(removeMs, takeoverBeatsUnhealthy * intervalMs);
  return Math.max(entry.lastBeatMs, unhealthySinceMs(entry), record.ownedSinceMs + waitAfterTakeoverMs - removeMs);
}

/**
 * silenceSinceMs says when an instance's silence began: the takeover rule (graceSinceMs), or, when the round's answers
 * are complete, the coverage rule if it says earlier. Coverage: every member live in this member's view answered
 * when it last heard the client, so a beat since `coveredSinceMs` was heard by a member that answered (or by this
 * one) and is in heardMs or reportedMs. coveredSinceMs (DistroNode.coverageFloorMs) is the latest time a member may
 * have died with beats nobody else heard: when this member saw a peer go down (one down now counts as dead since then)
 * or leave, and this member's own start (what it heard before a restart is gone). Before that floor only the takeover grace protects
 * (the old owner died, or is cut off, and clients were beating it directly). A healthy entry's version is a write
 * made when a client was heard (a registration, an update, a revival), an unhealthy one's says when its silence began
 * (unhealthySinceMs); arrivals by sync or snapshot (lastBeatMs) do not count. So a handover that no death caused (a
 * member coming back: the hash moves most services between the survivors too) no longer restarts the grace, and a
 * restarted member's snapshot is not a beat (jepsen-like D4 11901, 2026-11-22). A new owner still waits one beat
 * interval after the takeover before it acts by this rule: by then the clients that beat it directly have, and the
 * question after a takeover holds only the instances it did not hear, not every instance of the services it took.
 */
function silenceSinceMs(record: ServiceRecord, entry: Entry, instance: Instance, self: string, coveredSinceMs: number): number {
  const grace = graceSinceMs(record, entry, instance, self);
  if (coveredSinceMs >= grace) return grace;
  const { intervalMs, unhealthyMs, removeMs } = entry.timeouts;
  const written = instance.healthy ? entry.version.wallMs : unhealthySinceMs(entry);
  // One beat interval after a takeover first: the clients beating this member need no question.
  const settled = record.ownedSinceMs + intervalMs - (instance.healthy ? unhealthyMs : removeMs);
  return Math.min(grace, Math.max(entry.heardMs, entry.reportedMs, coveredSinceMs, written, settled));
}

/** expiryActionOf says what expiry does to an entry now: remove it, flag it unhealthy, or nothing (null). */
function expiryActionOf(record: ServiceRecord, entry: Entry, now: number, self: string, coveredSinceMs: number): 'remove' | 'unhealthy' | null {
  const instance = entry.instance;
  if (instance === null) return null;
  const silentMs = now - silenceSinceMs(record, entry, instance, self, coveredSinceMs);
  if (silentMs >= entry.timeouts.removeMs) return 'remove';
  if (silentMs >= entry.timeouts.unhealthyMs && instance.healthy) return 'unhealthy';
  return null;
}

function notFound(key: InstanceKey): CairnError {
  return new CairnError('CAIRN_INSTANCE_NOT_FOUND',
    `instance not found: ${key.ip}:${key.port} in cluster ${key.cluster} of ${key.namespace}/${key.group}@@${key.service}`);
}
