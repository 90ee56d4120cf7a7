// client-format: how the client commands print what a member answered: readable tables by default, JSON with
// --json. Pure functions from decoded answers (checked with the gRPC port's field reader) to text.

import { Fields } from '../api/grpc/fields.ts';

/** InstanceRow is one instance as the list command prints it. */
export interface InstanceRow {
  readonly cluster: string;
  readonly ip: string;
  readonly port: number;
  readonly weight: number;
  readonly healthy: boolean;
  readonly enabled: boolean;
  readonly ephemeral: boolean;
  readonly metadata: Readonly<Record<string, string>>;
}

/** InstanceListView is a ListInstances answer as the list command prints it. */
export interface InstanceListView {
  /** service is `namespace/group@@service`. */
  readonly service: string;
  /** exists is false when the member knows no such service (its list is then empty). */
  readonly exists: boolean;
  readonly revision: number;
  readonly instances: readonly InstanceRow[];
}

/** instanceRowOf reads one Instance message. */
export function instanceRowOf(fields: Fields): InstanceRow {
  return {
    cluster: fields.string('cluster'),
    ip: fields.string('ip'),
    port: fields.number('port'),
    weight: fields.number('weight'),
    healthy: fields.boolean('healthy'),
    enabled: fields.boolean('enabled'),
    ephemeral: fields.boolean('ephemeral'),
    metadata: fields.stringMap('metadata'),
  };
}

/** instanceListViewOf reads a ListInstancesResponse for the service named `service`. */
export function instanceListViewOf(service: string, response: unknown): InstanceListView {
  const fields = Fields.of(response);
  return {
    service,
    exists: fields.message('service') !== undefined,
    revision: fields.number('revision'),
    instances: fields.messageList('instances').map(instanceRowOf),
  };
}

/** table renders rows under a header, each column as wide as its widest cell, separated by two spaces. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells.map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column] ?? 0))).join('  ').trimEnd();
  return [header, ...rows].map(line).join('\n') + '\n';
}

function metadataText(metadata: Readonly<Record<string, string>>): string {
  return Object.entries(metadata).map(([key, value]) => `${key}=${value}`).join(',');
}

/** formatInstanceList renders an instance list as a table with a heading and a count. */
export function formatInstanceList(view: InstanceListView): string {
  if (!view.exists) return `no service ${view.service}\n`;
  const heading = `${view.service}  revision ${view.revision}\n`;
  const count = `${view.instances.length} instance${view.instances.length === 1 ? '' : 's'}\n`;
  if (view.instances.length === 0) return heading + count;
  const rows = view.instances.map((row) => [
    row.cluster, row.ip, String(row.port), String(row.weight), String(row.healthy), String(row.enabled), String(row.ephemeral), metadataText(row.metadata),
  ]);
  return heading + table(['CLUSTER', 'IP', 'PORT', 'WEIGHT', 'HEALTHY', 'ENABLED', 'EPHEMERAL', 'METADATA'], rows) + count;
}

/** MemberRow is one member of GET /cairn/v1/cluster. */
export interface MemberRow {
  readonly addr: string;
  readonly role: string;
  readonly term: number | null;
  readonly commitIndex: number | null;
  readonly appliedIndex: number | null;
  readonly matchIndex: number | null;
  readonly lastContactMs: number | null;
}

/** ClusterView is the answer of GET /cairn/v1/cluster, checked. */
export interface ClusterView {
  readonly leader: string | null;
  readonly term: number;
  readonly members: readonly MemberRow[];
}

function property(value: unknown, key: string): unknown {
  return typeof value === 'object' && value !== null ? Reflect.get(value, key) : undefined;
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function isCountOrNull(value: unknown): value is number | null {
  return value === null || isCount(value);
}

function memberRowOf(value: unknown): MemberRow | null {
  const [addr, role, term, commitIndex, appliedIndex, matchIndex, lastContactMs] =
    ['addr', 'role', 'term', 'commitIndex', 'appliedIndex', 'matchIndex', 'lastContactMs'].map((key) => property(value, key));
  if (typeof addr !== 'string' || typeof role !== 'string') return null;
  if (!isCountOrNull(term) || !isCountOrNull(commitIndex) || !isCountOrNull(appliedIndex) || !isCountOrNull(lastContactMs)) return null;
  // A member older than matchIndex leaves it out.
  if (matchIndex !== undefined && !isCountOrNull(matchIndex)) return null;
  return { addr, role, term, commitIndex, appliedIndex, matchIndex: matchIndex ?? null, lastContactMs };
}

/** clusterViewOf checks the JSON of GET /cairn/v1/cluster; null when it does not have the documented shape. */
export function clusterViewOf(body: unknown): ClusterView | null {
  const leader = property(body, 'leader');
  const term = property(body, 'term');
  const members = property(body, 'members');
  if ((leader !== null && typeof leader !== 'string') || !isCount(term) || !Array.isArray(members)) return null;
  const rows = members.map(memberRowOf);
  if (rows.some((row) => row === null)) return null;
  return { leader, term, members: rows.filter((row): row is MemberRow => row !== null) };
}

/** formatClusterView renders the cluster status: the leader and term, then one line per member. */
export function formatClusterView(view: ClusterView): string {
  const heading = `leader ${view.leader ?? '(none)'}  term ${view.term}\n`;
  const known = (value: number | null): string => (value === null ? '-' : String(value));
  const rows = view.members.map((member) => [
    member.addr, member.role, known(member.term), known(member.commitIndex), known(member.appliedIndex), known(member.matchIndex),
    member.lastContactMs === null ? 'never' : `${member.lastContactMs} ms`,
  ]);
  return heading + table(['MEMBER', 'ROLE', 'TERM', 'COMMIT', 'APPLIED', 'STORED', 'LAST CONTACT'], rows);
}
