// Helpers of the AP path's integration tests (test/cluster/ephemeral-*.test.ts): ephemeral registrations, beats
// and reads over the Nacos v1 HTTP API of real members, and reading one metric from GET /metrics.
import assert from 'node:assert/strict';
import type { Member } from './cluster.ts';

/** longLived is metadata that keeps an instance for 10 minutes without beats (tests that are not about expiry). */
export const longLived: Readonly<Record<string, string>> = Object.freeze({
  'preserved.heart.beat.interval': '5000',
  'preserved.heart.beat.timeout': '600000',
  'preserved.ip.delete.timeout': '600000',
});

function form(params: Record<string, string | number>): string {
  return new URLSearchParams(Object.entries(params).map(([k, v]): [string, string] => [k, String(v)])).toString();
}

/** registerEphemeral registers an ephemeral instance through `member` and asserts the answer is ok. */
export async function registerEphemeral(member: Member, service: string, ip: string, port: number, metadata: Readonly<Record<string, string>> = longLived): Promise<void> {
  const answer = await member.request('POST', `/nacos/v1/ns/instance?${form({ serviceName: service, ip, port, ephemeral: 'true', metadata: JSON.stringify(metadata) })}`);
  assert.equal(answer.status, 200, `register ${service} ${ip}:${port} through ${member.addr}: ${answer.text}`);
}

/** deregisterEphemeral deregisters an instance through `member` and asserts the answer is ok. */
export async function deregisterEphemeral(member: Member, service: string, ip: string, port: number): Promise<void> {
  const answer = await member.request('DELETE', `/nacos/v1/ns/instance?${form({ serviceName: service, ip, port, ephemeral: 'true' })}`);
  assert.equal(answer.status, 200, `deregister ${service} ${ip}:${port} through ${member.addr}: ${answer.text}`);
}

/** beatOnce sends one v1 beat (with the npm client's beat body when `body` is given) and returns the parsed answer. */
export async function beatOnce(member: Member, service: string, ip: string, port: number, body?: Readonly<Record<string, unknown>>): Promise<{ code: number; clientBeatInterval: number }> {
  const params = body === undefined ? { serviceName: service, ip, port } : { serviceName: service, beat: JSON.stringify({ serviceName: service, ip, port, cluster: 'DEFAULT', ...body }) };
  const answer = await member.request('PUT', `/nacos/v1/ns/instance/beat?${form(params)}`);
  assert.equal(answer.status, 200, `beat ${service} ${ip}:${port} through ${member.addr}: ${answer.text}`);
  return JSON.parse(answer.text) as { code: number; clientBeatInterval: number };
}

/** listEphemeral returns "ip:port" -> healthy for a service as `member` serves it locally. */
export async function listEphemeral(member: Member, service: string): Promise<Map<string, boolean>> {
  const answer = await member.request('GET', `/nacos/v1/ns/instance/list?${form({ serviceName: service })}`, { timeoutMs: 5000 });
  assert.equal(answer.status, 200, `list ${service} at ${member.addr}: ${answer.text}`);
  const hosts = (JSON.parse(answer.text) as { hosts: Array<{ ip: string; port: number; healthy: boolean }> }).hosts;
  return new Map(hosts.map((host) => [`${host.ip}:${host.port}`, host.healthy]));
}

/** describeList renders a listing as sorted "ip:port" (with "!" for unhealthy). */
export function describeList(list: ReadonlyMap<string, boolean>): string {
  return [...list].map(([address, healthy]) => (healthy ? address : `${address}!`)).sort().join(',');
}

/** metricValue reads one sample of GET /metrics: `name` with exactly `labels` (e.g. '{result="loaded"}'), or null. */
export async function metricValue(member: Member, name: string, labels = ''): Promise<number | null> {
  const answer = await member.request('GET', '/metrics', { timeoutMs: 5000 });
  for (const line of answer.text.split('\n')) {
    if (line.startsWith(`${name}${labels} `)) return Number(line.slice(name.length + labels.length + 1));
  }
  return null;
}
