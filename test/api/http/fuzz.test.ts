// Goal: hold one real member to the project's rule for outside input (DESIGN.md, STYLE.md §4): "Every input from
// outside is validated: a clear error with a code, never a crash, never a half-applied write". A seeded campaign of a
// few thousand requests, mutated from valid Nacos and Cairn requests, must get from every route: no 500 (and no other
// 5xx than the 501 CAIRN_NOT_IMPLEMENTED docs/errors.md and docs/nacos-compatibility.md document; a standalone member
// has quorum, so no 503 or 504), every refusal in its API's documented error shape with its Cairn code
// (src/api/http/errors.ts), every answer within 5 s, and the member alive throughout. A refused write changes nothing;
// afterwards the member still registers, lists and deregisters correctly, and after a restart on the same data
// directory it lists the same persistent state.
// Method: one standalone `bin/cairn server` (test/support/cluster.ts) on this file's own address 127.0.1.15 (HTTP 8848,
// gRPC 9848, peer 7848), requests from the same source address (so UDP pushes of lists with udpPort come back to it,
// never elsewhere). Instance IPs are only 127.0.1.15 or values the member must refuse, so health probes never leave
// it; member addresses given to membership routes are only malformed ones or the member's own. The seed (printed as a
// diagnostic; CAIRN_FUZZ_SEED=N replays it) decides every request; phase A sends writes one at a time and compares the
// registry before and after each refused one, phase B sends the open campaign with a few requests in flight (the
// requests are the seed's, their interleaving is not), phase C sends malformed HTTP on raw sockets. Failures are
// collected and reported together, one line per request, so one run shows every defect.

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request as httpRequest } from 'node:http';
import type { RouteOptions } from 'fastify';
import { Registry } from 'prom-client';
import { buildApp } from '../../../src/api/http/app.ts';
import { flavourOf, nacosStatusOf } from '../../../src/api/http/errors.ts';
import { CairnError, errorCatalog, isCairnErrorCode } from '../../../src/errors.ts';
import { limits } from '../../../src/limits.ts';
import { createDirectNaming } from '../../support/direct-proposer.ts';
import { startCluster, type Member } from '../../support/cluster.ts';
import { exchangeRaw, FakeCluster } from './harness.ts';

const host = '127.0.1.15';
const httpPort = 8848;
const self = `${host}:${httpPort}`;
const answerBoundMs = 5000;
const defaultSeed = 20_251_115;
const seed = process.env['CAIRN_FUZZ_SEED'] === undefined ? defaultSeed : Number(process.env['CAIRN_FUZZ_SEED']);
const phaseAWrites = 300;
const phaseBRequests = 2600;
const phaseBInFlight = 4;

// ---------------------------------------------------------------------------------------------------------------
// The seeded PRNG (mulberry32): one seed decides every request.

class Prng {
  #state: number;
  constructor(seedValue: number) {
    this.#state = seedValue >>> 0;
  }
  /** next is uniform in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  }
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    const item = items[Math.floor(this.next() * items.length)];
    assert.ok(item !== undefined, 'pick from an empty list');
    return item;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The routes the member serves, each with a maker of valid parameters. A test below fails when src/api/http
// registers a route missing here.

type Params = Record<string, string>;
type Universe = 'phase-a' | 'open';

interface Route {
  readonly method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  readonly path: string;
  readonly write: boolean;
  readonly valid: (rng: Prng) => Params;
}

const namespaces = ['public', 'fz-ns'];
const groups = ['DEFAULT_GROUP', 'fz-g'];
const services = ['fz-a', 'fz-b'];
const clusters = ['DEFAULT', 'c1'];

function serviceParams(rng: Prng): Params {
  const params: Params = { serviceName: rng.pick(services) };
  if (rng.chance(0.5)) params['groupName'] = rng.pick(groups);
  if (rng.chance(0.5)) params['namespaceId'] = rng.pick(namespaces);
  if (rng.chance(0.1)) params['serviceName'] = `${rng.pick(groups)}@@${rng.pick(services)}`;
  return params;
}

function addressParams(rng: Prng): Params {
  return { ...serviceParams(rng), ip: host, port: String(rng.int(20_000, 20_009)), clusterName: rng.pick(clusters) };
}

function metadataText(rng: Prng): string {
  return rng.chance(0.5) ? JSON.stringify({ app: 'fz', n: String(rng.int(0, 9)) }) : `app=fz,n=${rng.int(0, 9)}`;
}

function instanceParams(rng: Prng): Params {
  const params = addressParams(rng);
  params['weight'] = rng.pick(['1', '0.5', '3', '100']);
  params['enabled'] = rng.pick(['true', 'false']);
  params['healthy'] = 'true';
  params['ephemeral'] = rng.pick(['true', 'false']);
  params['metadata'] = metadataText(rng);
  return params;
}

function beatParams(rng: Prng): Params {
  const params = serviceParams(rng);
  const address = addressParams(rng);
  params['beat'] = JSON.stringify({
    ip: host, port: Number(address['port']), serviceName: `DEFAULT_GROUP@@${params['serviceName'] ?? ''}`, cluster: address['clusterName'],
    weight: 1, metadata: { app: 'fz' }, scheduled: true, period: 5000, stopped: false,
  });
  if (rng.chance(0.5)) Object.assign(params, { ip: host, port: address['port'] ?? '20000' });
  return params;
}

function healthCheckerText(rng: Prng): string {
  const checkers = [
    { type: 'NONE' },
    { type: 'TCP' },
    { type: 'TCP', intervalMs: 5000 },
    { type: 'HTTP', path: '/health', headers: 'Host:fz', expectedResponseCode: 200 },
    { type: 'MYSQL', user: 'fz', pwd: 'secret', cmd: 'select 1' },
  ];
  return JSON.stringify(rng.pick(checkers));
}

const nacosRoutes = (prefix: string): Route[] => [
  { method: 'POST', path: `${prefix}/instance`, write: true, valid: instanceParams },
  { method: 'PUT', path: `${prefix}/instance`, write: true, valid: instanceParams },
  { method: 'PATCH', path: `${prefix}/instance`, write: true, valid: (rng) => ({ ...addressParams(rng), weight: '2', metadata: metadataText(rng) }) },
  { method: 'DELETE', path: `${prefix}/instance`, write: true, valid: (rng) => ({ ...addressParams(rng), ephemeral: rng.pick(['true', 'false']) }) },
  { method: 'GET', path: `${prefix}/instance`, write: false, valid: (rng) => ({ ...addressParams(rng), consistency: rng.pick(['local', 'linearizable']) }) },
  {
    method: 'GET', path: `${prefix}/instance/list`, write: false,
    valid: (rng) => ({ ...serviceParams(rng), clusters: 'DEFAULT,c1', healthyOnly: 'false', udpPort: String(rng.int(40_000, 40_009)), clientIP: '10.9.9.9', env: 'fz' }),
  },
  { method: 'PUT', path: `${prefix}/instance/beat`, write: true, valid: beatParams },
  {
    method: 'POST', path: `${prefix}/service`, write: true,
    valid: (rng) => ({ ...serviceParams(rng), protectThreshold: '0.5', metadata: metadataText(rng), selector: '{"type":"none"}', ephemeral: 'false' }),
  },
  { method: 'PUT', path: `${prefix}/service`, write: true, valid: (rng) => ({ ...serviceParams(rng), protectThreshold: '0.2', metadata: metadataText(rng), selector: '{"type":"none"}' }) },
  { method: 'DELETE', path: `${prefix}/service`, write: true, valid: serviceParams },
  { method: 'GET', path: `${prefix}/service`, write: false, valid: serviceParams },
  {
    method: 'GET', path: `${prefix}/service/list`, write: false,
    valid: (rng) => ({ pageNo: '1', pageSize: '20', groupName: rng.pick(groups), namespaceId: rng.pick(namespaces), selector: '{"type":"none"}' }),
  },
  { method: 'GET', path: `${prefix}/operator/metrics`, write: false, valid: (rng) => ({ onlyStatus: rng.pick(['true', 'false']), namespaceId: rng.pick(namespaces) }) },
];

/** routes is every route src/api/http registers (HEAD of each GET is fastify's own). */
const routes: readonly Route[] = [
  ...nacosRoutes('/nacos/v1/ns'),
  ...nacosRoutes('/nacos/v2/ns'),
  {
    method: 'PUT', path: '/nacos/v1/ns/cluster', write: true,
    valid: (rng) => ({ ...serviceParams(rng), clusterName: rng.pick(clusters), checkPort: '80', useInstancePort4Check: 'true', healthChecker: healthCheckerText(rng), metadata: metadataText(rng) }),
  },
  { method: 'PUT', path: '/nacos/v1/ns/health/instance', write: true, valid: (rng) => ({ ...addressParams(rng), healthy: rng.pick(['true', 'false']) }) },
  { method: 'PUT', path: '/nacos/v1/ns/health', write: true, valid: (rng) => ({ ...addressParams(rng), valid: rng.pick(['true', 'false']) }) },
  { method: 'PUT', path: '/nacos/v2/ns/health/instance', write: true, valid: (rng) => ({ ...addressParams(rng), healthy: rng.pick(['true', 'false']) }) },
  {
    method: 'GET', path: '/nacos/v1/ns/catalog/services', write: false,
    valid: (rng) => ({ pageNo: '1', pageSize: '10', serviceNameParam: 'fz', groupNameParam: '', hasIpCount: rng.pick(['true', 'false']), namespaceId: rng.pick(namespaces) }),
  },
  { method: 'GET', path: '/nacos/v1/ns/catalog/service', write: false, valid: serviceParams },
  { method: 'GET', path: '/nacos/v1/ns/operator/servers', write: false, valid: (rng) => ({ healthy: rng.pick(['true', 'false']) }) },
  { method: 'GET', path: '/cairn/v1/health', write: false, valid: () => ({}) },
  { method: 'GET', path: '/nacos/v1/console/health/liveness', write: false, valid: () => ({}) },
  { method: 'GET', path: '/nacos/v1/console/health/readiness', write: false, valid: () => ({}) },
  { method: 'GET', path: '/nacos/v2/console/health/liveness', write: false, valid: () => ({}) },
  { method: 'GET', path: '/nacos/v2/console/health/readiness', write: false, valid: () => ({}) },
  { method: 'GET', path: '/cairn/v1/cluster', write: false, valid: () => ({}) },
  { method: 'GET', path: '/cairn/v1/state/digest', write: false, valid: () => ({}) },
  { method: 'GET', path: '/cairn/v1/state/checkpoints', write: false, valid: () => ({}) },
  { method: 'POST', path: '/cairn/v1/cluster/transfer-leader', write: true, valid: () => ({ to: self }) },
  { method: 'POST', path: '/cairn/v1/cluster/members', write: true, valid: () => ({ addr: self }) },
  { method: 'DELETE', path: '/cairn/v1/cluster/members', write: true, valid: () => ({ addr: self }) },
  { method: 'GET', path: '/metrics', write: false, valid: () => ({}) },
];

// ---------------------------------------------------------------------------------------------------------------
// Hostile values.

const deepArray = (depth: number): string => `${'['.repeat(depth)}${']'.repeat(depth)}`;
const deepObject = (depth: number): string => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;

/** hostileTexts are values no parameter should crash on; none is a valid IP or host name other than the member's. */
const hostileTexts: readonly string[] = [
  '', ' ', '\t', '\u00a0', 'é', '服务', '😀', '\u0000', 'a\u0000b', '\u0001', '\u001f', '\u007f', '\r\n', '\u202e', '\ufeff',
  'NaN', 'Infinity', '-Infinity', '-1', '-0', '0', '1e308', '-1e308', '1e-400', '99999999999999999999999', '2147483648', '-2147483649',
  '9007199254740993', '0x10', '0b1', '0o7', '1.5', '08', '+1', '1_000', ' 7 ', '1,5', '1.2.3',
  'true', 'TRUE', 'yes', 'on', 'null', 'undefined', '[]', '{}', '[1]', '{"a":null}', '{"a":{"b":1}}', '{"a":', '"x"',
  '{"__proto__":{"polluted":"yes"}}', '{"constructor":{"prototype":{"polluted":"yes"}}}', '__proto__', 'constructor', 'toString',
  '{"__proto__":"x","constructor":"y","toString":"z"}', '__proto__=x,constructor=y', 'hasOwnProperty=1',
  '{"type":"none"}', '{"type":"label","expression":"CONSUMER.label.a = PROVIDER.label.a"}', '{"type":"HTTP"}', '{"type":"MYSQL"}',
  '{"type":"TCP","intervalMs":-1}', '{"type":"HTTP","path":"x","expectedResponseCode":99}', '{"type":"nope"}',
  "'", '"', '<script>', '../..', '@@', 'a@@b@@c', 'g@@', '@@s', ',', '=', 'k=v,=x', 'a=1=2', '%', '%%', '\\', '/', '?', '#', '&', '+',
  'x'.repeat(65), 'x'.repeat(129), 'x'.repeat(513), 'x'.repeat(1025), 'x'.repeat(5000), '9'.repeat(400),
  deepArray(20), deepObject(20),
];

/** rawQueryValues are inserted into a query string or form body without encoding: broken percent-encoding. */
const rawQueryValues: readonly string[] = ['%', '%zz', '%E0%A4%A', '%FF', '%ED%A0%80', '%C0%AF', '%00', 'a%2', '%%41', '%u0041'];

/** hostileIps are values of `ip` the member must refuse (or the member's own address): probes never leave 127.0.1.15. */
const hostileIps: readonly string[] = ['', ' ', '999.0.0.1', '1.2.3', '256.256.256.256', '1.2.3.4.5', '服务', 'a b', '\u0000', '\u0001', 'x'.repeat(129), host, `${host}`];

/** hostileMemberAddrs are member addresses the membership routes must refuse (or the member's own). */
const hostileMemberAddrs: readonly string[] = ['', ' ', self, `${host}:0`, `${host}:70000`, `${host}`, ':1', 'a b:1', '[zz]:1', `${host}:-1`, '服务:1', 'x'.repeat(300), '\u0000:1'];

const extraKeys: readonly string[] = ['__proto__', 'constructor', 'hasOwnProperty', 'toString', 'prototype', 'x', '', ' ', '服务', 'serviceName', 'dom', 'cluster', 'enable', 'valid', 'udpPort', 'consistency', 'clientIP', 'beat', 'selector', 'metadata', 'healthChecker', 'expected_version'];

// ---------------------------------------------------------------------------------------------------------------
// One request.

interface FuzzRequest {
  readonly method: string;
  readonly path: string;
  /** query is the raw query string (without '?'), sent as is. */
  readonly query: string;
  readonly body?: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly write: boolean;
}

interface Answer {
  readonly status: number;
  readonly code: string | null;
  readonly text: string;
  readonly ms: number;
}

function encode(text: string): string {
  try {
    return encodeURIComponent(text);
  } catch {
    return '%ED%A0%80';
  }
}

type Pair = readonly [key: string, value: string, raw: boolean];

function pairsText(pairs: readonly Pair[]): string {
  return pairs.map(([key, value, raw]) => (raw ? `${encode(key)}=${value}` : `${encode(key)}=${encode(value)}`)).join('&');
}

function hostileFor(rng: Prng, key: string, universe: Universe): { value: string; raw: boolean } {
  if (key === 'ip') return { value: rng.pick(hostileIps), raw: false };
  if (key === 'addr' || key === 'to') return { value: rng.pick(hostileMemberAddrs), raw: false };
  if (rng.chance(0.08)) return { value: rng.pick(rawQueryValues), raw: true };
  const value = rng.pick(hostileTexts);
  // In phase A the registry must stay observable: a namespace is either one of the watched ones or refused.
  if (key === 'namespaceId' && universe === 'phase-a' && /^[\w-]{1,64}$/.test(value.trim())) return { value: rng.pick(namespaces), raw: false };
  return { value, raw: false };
}

/** mutate turns valid parameters into pairs: some removed, some hostile, some repeated, some extra keys. */
function mutate(rng: Prng, valid: Params, universe: Universe): Pair[] {
  let pairs: Pair[] = Object.entries(valid).map(([key, value]): Pair => [key, value, false]);
  const mutations = rng.int(0, 3);
  for (let i = 0; i < mutations; i++) {
    const choice = rng.int(0, 9);
    const at = pairs.length === 0 ? -1 : rng.int(0, pairs.length - 1);
    const target = at < 0 ? undefined : pairs[at];
    if (choice <= 4 && target !== undefined) {
      const hostile = hostileFor(rng, target[0], universe);
      pairs[at] = [target[0], hostile.value, hostile.raw];
    } else if (choice <= 5 && target !== undefined) {
      pairs = pairs.filter((_, index) => index !== at);
    } else if (choice <= 7 && target !== undefined) {
      const hostile = hostileFor(rng, target[0], universe);
      pairs.splice(rng.chance(0.5) ? at : at + 1, 0, [target[0], hostile.value, hostile.raw]);
    } else {
      const key = rng.pick(extraKeys);
      const hostile = key === 'ip' ? hostileFor(rng, 'ip', universe) : rng.chance(0.5) ? { value: Object.hasOwn(valid, key) ? valid[key] ?? 'x' : 'x', raw: false } : hostileFor(rng, key, universe);
      pairs.push([key, hostile.value, hostile.raw]);
    }
  }
  return pairs;
}

/** jsonValueOf renders one parameter as JSON text: typed, null, an array, an object, or nested thousands deep. */
function jsonValueOf(rng: Prng, key: string, value: string): string {
  if (key === 'ip' || key === 'addr' || key === 'to') return JSON.stringify(value);
  const roll = rng.int(0, 19);
  if (roll === 0) return 'null';
  if (roll === 1) return JSON.stringify([value, 'second']);
  if (roll === 2) return JSON.stringify({ nested: value });
  if (roll === 3) return '[]';
  if (roll === 4) return rng.pick([deepArray(rng.int(2000, 20_000)), deepObject(rng.int(2000, 20_000))]);
  if (/^-?\d+(\.\d+)?$/.test(value) && rng.chance(0.7)) return value;
  if ((value === 'true' || value === 'false') && rng.chance(0.7)) return value;
  if (value.startsWith('{') && rng.chance(0.5) && parsed(value) !== null) return value;
  return JSON.stringify(value);
}

/** jsonBodyOf renders pairs as a JSON object body (typed values, nested and deep ones), or a hostile JSON text. */
function jsonBodyOf(rng: Prng, pairs: readonly Pair[]): string {
  if (rng.chance(0.12)) {
    return rng.pick(['{', '{"a":}', '[]', '1', '"x"', 'null', 'true', '\ufeff{}', '{"a":1}x', '\u0000', ' ', deepArray(50_000), deepObject(20_000),
      '{"__proto__":{"serviceName":"fz-a","ip":"127.0.1.15","port":1}}', '{"constructor":{"prototype":{"serviceName":"fz-a"}}}', '{"a":1,"a":2}', '1e400']);
  }
  const parts = pairs.map(([key, value, raw]) => `${JSON.stringify(key)}:${raw ? JSON.stringify(value) : jsonValueOf(rng, key, value)}`);
  return `{${parts.join(',')}}`;
}

const contentTypes: readonly string[] = [
  'text/plain', 'multipart/form-data; boundary=x', 'application/xml', 'application/x-www-form-urlencoded; charset=ISO-8859-1', 'application/JSON',
  'application/vnd.api+json', 'application/json;;', 'Application/X-WWW-Form-Urlencoded', 'application/json; charset=utf-16', '*/*', 'application/octet-stream', ';',
];

function headersOf(rng: Prng, write: boolean): Record<string, string> {
  const headers: Record<string, string> = {};
  if (rng.chance(0.3)) Object.assign(headers, { 'user-agent': 'Nacos-Java-Client:v1.0.0', 'client-version': 'Nacos-Java-Client:v1.0.0' });
  if (rng.chance(0.05)) headers['user-agent'] = rng.pick(['Nacos-Server', 'Nacos-Java-Client:v0.1.0', 'Nacos-Java-Client:vx', 'x'.repeat(3000)]);
  if (write && rng.chance(0.3)) headers[rng.pick(['cairn-request-id', 'requestid'])] = rng.pick([`fz-${rng.int(0, 20)}`, `fz-${rng.int(0, 20)}`, 'x'.repeat(129), 'has space', '', ' ', 'é']);
  if (rng.chance(0.05)) headers[rng.pick(['accept', 'accept-encoding', 'x-forwarded-for', 'content-encoding', 'expect', 'connection'])] = rng.pick(['gzip', 'application/xml', '10.0.0.1', 'close', 'identity', '*/*']);
  return headers;
}

function nearMissPath(rng: Prng, path: string): string {
  return rng.pick([
    `${path}/`, `${path}//`, `/${path}`, path.toUpperCase(), `${path}/x`, `${path}s`, path.replace('/v1/', '/v3/').replace('/v2/', '/v3/'), `${path}%zz`,
    `${path};x`, `${path}/..`, path.replace(/\/([a-z])/, '/%$1'), path.replace('nacos', 'Nacos'), `${path}%00`, `${path}%2F`, `${path}?`, `${path}#x`,
  ]);
}

const methods = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD'] as const;

/** generate makes one request of the campaign from a valid request of `route`. */
function generate(rng: Prng, route: Route, universe: Universe): FuzzRequest {
  const pairs = mutate(rng, route.valid(rng), universe);
  let method: string = route.method;
  let path = route.path;
  if (universe === 'open' && rng.chance(0.06)) method = rng.pick(methods.filter((m) => m !== route.method));
  if (universe === 'open' && rng.chance(0.06)) path = nearMissPath(rng, path);
  const headers = headersOf(rng, route.write);
  const form = rng.int(0, 19);
  let query = pairsText(pairs);
  let body: string | undefined;
  if (form <= 2) {
    headers['content-type'] = 'application/x-www-form-urlencoded';
    body = query;
    query = rng.chance(0.2) ? pairsText(mutate(rng, route.valid(rng), universe)) : '';
  } else if (form <= 5) {
    headers['content-type'] = rng.chance(0.8) ? 'application/json' : 'application/json; charset=utf-8';
    body = jsonBodyOf(rng, pairs);
    query = rng.chance(0.2) ? pairsText(mutate(rng, route.valid(rng), universe)) : '';
  } else if (form === 6) {
    headers['content-type'] = rng.pick(contentTypes);
    body = rng.chance(0.5) ? query : jsonBodyOf(rng, pairs);
  }
  if (rng.chance(0.01)) {
    headers['content-type'] = rng.pick(['application/json', 'application/x-www-form-urlencoded', 'text/plain']);
    body = `{"serviceName":"${'x'.repeat(limits.requestBodyBytesMax + rng.int(1, 4096))}"}`;
  }
  return { method, path, query, headers, write: route.write, ...(body === undefined ? {} : { body }) };
}

// ---------------------------------------------------------------------------------------------------------------
// Sending and judging.

const agent = new Agent({ keepAlive: true, maxSockets: phaseBInFlight + 2 });

/** requestsSent counts every request of the file, campaign and checking reads alike. */
let requestsSent = 0;

function send(request: FuzzRequest, timeoutMs = answerBoundMs * 2): Promise<Answer> {
  requestsSent++;
  const started = Date.now();
  const path = request.query === '' ? request.path : `${request.path}?${request.query}`;
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...request.headers };
    if (request.body !== undefined) headers['content-length'] = String(Buffer.byteLength(request.body));
    const outgoing = httpRequest({ host, port: httpPort, localAddress: host, method: request.method, path, headers, agent }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => {
        clearTimeout(timer);
        const code = response.headers['cairn-error-code'];
        resolve({ status: response.statusCode ?? 0, code: typeof code === 'string' ? code : null, text: Buffer.concat(chunks).toString('utf8'), ms: Date.now() - started });
      });
      response.on('error', reject);
    });
    const timer = setTimeout(() => outgoing.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    outgoing.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    outgoing.end(request.body);
  });
}

function describe(request: FuzzRequest, what: string): string {
  const query = request.query.length > 160 ? `${request.query.slice(0, 160)}...(${request.query.length} chars)` : request.query;
  const body = request.body === undefined ? '' : ` body(${request.headers['content-type'] ?? '-'})=${JSON.stringify(request.body.slice(0, 120))}${request.body.length > 120 ? `...(${request.body.length} chars)` : ''}`;
  const headers = Object.keys(request.headers).filter((name) => name !== 'content-type').map((name) => `${name}:${JSON.stringify((request.headers[name] ?? '').slice(0, 40))}`).join(' ');
  return `${request.method} ${JSON.stringify(request.path)} ?${JSON.stringify(query)}${body}${headers === '' ? '' : ` [${headers}]`} -> ${what}`;
}

function parsed(text: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(text);
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? value as Record<string, unknown> : null;
  } catch {
    return null;
  }
}

/** shapeProblem says what is wrong with an error answer's status, code or body, or null when it is as documented. */
function shapeProblem(request: FuzzRequest, answer: Answer): string | null {
  const code = answer.code;
  if (code === null || !isCairnErrorCode(code)) return `no Cairn-Error-Code header (got ${String(code)})`;
  const flavour = flavourOf(request.path);
  const expected = flavour === 'cairn' ? errorCatalog[code].httpStatus : nacosStatusOf(new CairnError(code), request.method, flavour, request.path);
  if (answer.status !== expected) return `status ${answer.status} for ${code}, documented ${expected}`;
  if (request.method === 'HEAD') return null;
  // docs/nacos-compatibility.md: an unknown route under /nacos answers Nacos's plain 501 `no such api:<METHOD>:<path>`.
  if (flavour !== 'cairn' && code === 'CAIRN_NOT_IMPLEMENTED' && answer.text.startsWith('no such api:')) return null;
  if (flavour === 'nacos-v1') return answer.text.endsWith(`(${code})`) ? null : 'v1 error text does not end with its code';
  const body = parsed(answer.text);
  if (body === null) return 'error body is not a JSON object';
  if (flavour === 'nacos-v2') {
    const ok = typeof body['code'] === 'number' && body['code'] !== 0 && typeof body['message'] === 'string' && typeof body['data'] === 'string' && body['data'].endsWith(`(${code})`);
    return ok ? null : 'not the v2 envelope {code, message, data: "... (CODE)"}';
  }
  const ok = body['code'] === code && typeof body['message'] === 'string' && typeof body['retryable'] === 'boolean';
  return ok ? null : 'not the CairnError JSON {code, message, retryable}';
}

/** judge returns what is wrong with an answer, or null. */
function judge(request: FuzzRequest, answer: Answer): string | null {
  if (answer.ms > answerBoundMs) return `answered after ${answer.ms} ms (bound ${answerBoundMs})`;
  if (answer.status >= 200 && answer.status < 300) return null;
  if (answer.status < 400) return `unexpected status ${answer.status}`;
  // docs/errors.md: 501 CAIRN_NOT_IMPLEMENTED is the only 5xx a standalone member with quorum may answer here.
  if (answer.status >= 500 && !(answer.status === 501 && answer.code === 'CAIRN_NOT_IMPLEMENTED')) return `server error ${answer.status}`;
  return shapeProblem(request, answer);
}

class Failures {
  readonly lines: string[] = [];
  add(request: FuzzRequest, what: string, answer?: Answer): void {
    const shown = answer === undefined ? '' : ` [${answer.status} ${String(answer.code)} ${JSON.stringify(answer.text.slice(0, 200))}]`;
    this.lines.push(describe(request, `${what}${shown}`));
  }
  assertNone(t: TestContext, what: string): void {
    t.diagnostic(`seed ${seed}: ${this.lines.length} failures in ${what}`);
    assert.equal(this.lines.length, 0, `${what}: ${this.lines.length} defects (seed ${seed}; replay with CAIRN_FUZZ_SEED=${seed}):\n${this.lines.slice(0, 80).join('\n')}`);
  }
}

async function sendAndJudge(request: FuzzRequest, failures: Failures): Promise<Answer | null> {
  try {
    const answer = await send(request);
    const problem = judge(request, answer);
    if (problem !== null) failures.add(request, problem, answer);
    return answer;
  } catch (error) {
    failures.add(request, `no answer: ${error instanceof Error ? error.message : String(error)}`);
    return null;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The registry as the member lists it, for the "refused writes change nothing" and restart checks. Health is left
// out: probes and beats change it on their own.

async function getJson(path: string): Promise<Record<string, unknown>> {
  const answer = await send({ method: 'GET', path: path.split('?')[0] ?? path, query: path.split('?')[1] ?? '', headers: {}, write: false });
  assert.equal(answer.status, 200, `GET ${path}: ${answer.status} ${answer.text.slice(0, 200)}`);
  const body = parsed(answer.text);
  assert.ok(body !== null, `GET ${path}: not a JSON object`);
  return body;
}

/** Snapshot maps each service (`namespace/group@@name`) to its definition and instance lines, sorted. */
type Snapshot = Map<string, string[]>;

/**
 * snapshotOf reads every service of the namespaces. `persistentOnly` keeps what a restart must keep: services that
 * are not ephemeral (a service known only through ephemeral instances lives in memory, as its instances do:
 * docs/ap.md) and their persistent instances.
 */
async function snapshotOf(namespaceIds: Iterable<string>, persistentOnly: boolean): Promise<Snapshot> {
  const snapshot: Snapshot = new Map();
  for (const namespaceId of [...namespaceIds].sort()) {
    const ns = encodeURIComponent(namespaceId);
    const catalog = await getJson(`/nacos/v1/ns/catalog/services?namespaceId=${ns}&pageNo=1&pageSize=10000`);
    const entries = (catalog['serviceList'] as Array<{ name: string; groupName: string }>).map((e) => [e.groupName, e.name] as const).sort();
    for (const [group, name] of entries) {
      const key = `namespaceId=${ns}&groupName=${encodeURIComponent(group)}&serviceName=${encodeURIComponent(name)}`;
      if (persistentOnly) {
        const data = (await getJson(`/nacos/v2/ns/service?${key}`))['data'] as Record<string, unknown> | undefined;
        if (data?.['ephemeral'] !== false) continue;
      }
      const detail = await getJson(`/nacos/v1/ns/service?${key}`);
      const list = await getJson(`/nacos/v1/ns/instance/list?${key}`);
      const hosts = (list['hosts'] as Array<Record<string, unknown>>).filter((h) => !persistentOnly || h['ephemeral'] === false);
      const hostLines = hosts.map((h) => JSON.stringify([h['clusterName'], h['ip'], h['port'], h['weight'], h['enabled'], h['ephemeral'], h['metadata']])).sort();
      snapshot.set(`${namespaceId}/${group}@@${name}`, [JSON.stringify(detail), ...hostLines]);
    }
  }
  return snapshot;
}

function sameSnapshot(a: Snapshot, b: Snapshot): boolean {
  return a.size === b.size && [...a].every(([key, lines]) => JSON.stringify(b.get(key)) === JSON.stringify(lines));
}

function difference(before: Snapshot, after: Snapshot): string {
  const keys = [...new Set([...before.keys(), ...after.keys()])].sort();
  const changed = keys.filter((key) => JSON.stringify(before.get(key)) !== JSON.stringify(after.get(key)));
  return changed.map((key) => `${key}: ${JSON.stringify(before.get(key) ?? null)} => ${JSON.stringify(after.get(key) ?? null)}`).join('; ').slice(0, 800);
}

// ---------------------------------------------------------------------------------------------------------------
// Malformed HTTP on raw sockets (phase C).

const rawRequests: readonly string[] = [
  'GET /nacos/v1/ns/instance/list?serviceName=a\u0000b HTTP/1.1\r\nHost: x\r\n\r\n',
  'GET /nacos/v1/ns/instance/list?serviceName=a b HTTP/1.1\r\nHost: x\r\n\r\n',
  'GET /nacos/v1/ns/\u0001 HTTP/1.1\r\nHost: x\r\n\r\n',
  'GET /nacos/v1/ns/instance/list HTTP/9.9\r\nHost: x\r\n\r\n',
  'GET /nacos/v1/ns/instance/list\r\nHost: x\r\n\r\n',
  'GET http://x/nacos/v1/ns/instance/list?serviceName=fz-a HTTP/1.1\r\nHost: x\r\n\r\n',
  'OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n',
  'BREW /nacos/v1/ns/instance HTTP/1.1\r\nHost: x\r\n\r\n',
  'GET /nacos/v1/ns/instance/list HTTP/1.1\r\nHost: x\r\nbroken header\r\n\r\n',
  `GET /nacos/v1/ns/instance/list HTTP/1.1\r\nHost: x\r\nX-Big: ${'x'.repeat(20_000)}\r\n\r\n`,
  'POST /nacos/v1/ns/instance HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n',
  'POST /nacos/v1/ns/instance HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nabcdef',
  'POST /nacos/v1/ns/instance HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\nzz\r\n{}\r\n0\r\n\r\n',
  'POST /nacos/v1/ns/instance HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n',
  'POST /nacos/v1/ns/instance HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}',
  'PUT /nacos/v1/ns/instance?serviceName=fz-a&ip=127.0.1.15&port=1 HTTP/1.0\r\n\r\n',
  'GET /cairn/v1/health HTTP/1.1\r\nHost: x\r\nCairn-Request-Id: a\u0001b\r\n\r\n',
  'GET /cairn/v1/health HTTP/1.1\r\nHost: x\r\nCairn-Request-Id: \u00e9\u00e9\r\n\r\n',
  'DELETE /nacos/v2/ns/instance?serviceName=%ZZ HTTP/1.1\r\nHost: x\r\n\r\n',
  'GET /%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n',
];

function sendRaw(text: string): Promise<string> {
  return exchangeRaw({ host, port: httpPort, localAddress: host }, text, answerBoundMs);
}

// ---------------------------------------------------------------------------------------------------------------
// Tests.

test('the route list covers every route src/api/http registers', async () => {
  const registered: string[] = [];
  const app = buildApp({ naming: createDirectNaming().naming, cluster: new FakeCluster(), metrics: new Registry(), logger: false });
  app.addHook('onRoute', (route: RouteOptions) => {
    for (const method of [route.method].flat()) if (method !== 'HEAD') registered.push(`${method} ${route.url}`);
  });
  await app.ready();
  await app.close();
  const listed = routes.map((route) => `${route.method} ${route.path}`);
  assert.ok(registered.length > 0, 'the onRoute hook saw the routes');
  assert.deepEqual(registered.filter((route) => !listed.includes(route)), [], 'routes registered in src/api/http but missing from the fuzz list');
  assert.deepEqual(listed.filter((route) => !registered.includes(route)), [], 'routes in the fuzz list the app does not register');
});

async function assertAlive(member: Member, what: string): Promise<void> {
  assert.ok(member.running, `the member exited during ${what}:\n${member.logTail(40)}`);
}

async function seedRegistry(): Promise<void> {
  const writes: Array<[string, string]> = [
    ['POST', '/nacos/v1/ns/service?serviceName=fz-a&protectThreshold=0.3&metadata=k%3Dv'],
    ['PUT', '/nacos/v1/ns/cluster?serviceName=fz-a&clusterName=c1&checkPort=80&useInstancePort4Check=true&healthChecker=%7B%22type%22%3A%22NONE%22%7D'],
    ['POST', `/nacos/v1/ns/instance?serviceName=fz-a&ip=${host}&port=20000&ephemeral=false&clusterName=c1&metadata=a%3D1`],
    ['POST', `/nacos/v1/ns/instance?serviceName=fz-a&ip=${host}&port=20001&ephemeral=false&weight=2`],
    ['POST', `/nacos/v1/ns/instance?serviceName=fz-b&groupName=fz-g&namespaceId=fz-ns&ip=${host}&port=20002&ephemeral=false`],
    ['POST', `/nacos/v1/ns/instance?serviceName=fz-b&ip=${host}&port=20003`],
  ];
  for (const [method, url] of writes) {
    const [path = '', query = ''] = url.split('?');
    const answer = await send({ method, path, query, headers: {}, write: true });
    assert.equal(answer.status, 200, `${method} ${url}: ${answer.text}`);
  }
}

async function settledSnapshot(watched: readonly string[]): Promise<Snapshot> {
  let previous = await snapshotOf(watched, false);
  for (let i = 0; i < 5; i++) {
    const next = await snapshotOf(watched, false);
    if (sameSnapshot(next, previous)) return next;
    previous = next;
  }
  return previous;
}

/** phaseA sends mutated writes one at a time; after each refused one the registry must read as before it. */
async function phaseA(rng: Prng, failures: Failures): Promise<{ refused: number; accepted: number }> {
  const writeRoutes = routes.filter((route) => route.write);
  let baseline = await settledSnapshot(namespaces);
  let refused = 0;
  let accepted = 0;
  for (let i = 0; i < phaseAWrites; i++) {
    const request = generate(rng, rng.pick(writeRoutes), 'phase-a');
    const answer = await sendAndJudge(request, failures);
    if (answer === null) continue;
    if (answer.status >= 400) {
      refused++;
      const after = await snapshotOf(namespaces, false);
      if (!sameSnapshot(after, baseline)) {
        failures.add(request, `refused write changed the registry: ${difference(baseline, after)}`, answer);
        baseline = await settledSnapshot(namespaces);
      }
    } else {
      accepted++;
      baseline = await settledSnapshot(namespaces);
    }
  }
  return { refused, accepted };
}

/** phaseB sends the open campaign, a few requests in flight; it returns the namespaces accepted writes named. */
async function phaseB(rng: Prng, failures: Failures, member: Member): Promise<Set<string>> {
  const requests = Array.from({ length: phaseBRequests }, () => generate(rng, rng.pick(routes), 'open'));
  const written = new Set<string>(namespaces);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < requests.length) {
      const request = requests[next++];
      if (request === undefined) return;
      const answer = await sendAndJudge(request, failures);
      if (answer !== null && request.write && answer.status < 300) {
        const ns = /(?:^|&)namespaceId=([^&]*)/.exec(request.query)?.[1];
        if (ns !== undefined) written.add(decodeURIComponent(ns).trim());
      }
      if (!member.running) return;
    }
  };
  await Promise.all(Array.from({ length: phaseBInFlight }, worker));
  return new Set([...written].filter((ns) => /^[\w-]{1,64}$/.test(ns)));
}

async function phaseC(failures: Failures): Promise<void> {
  for (const text of rawRequests) {
    const started = Date.now();
    const received = await sendRaw(text);
    const request: FuzzRequest = { method: 'RAW', path: text.slice(0, 100), query: '', headers: {}, write: false };
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(received)?.[1] ?? 0);
    const code = /\r\ncairn-error-code: ([A-Z_]+)\r\n/i.exec(received)?.[1] ?? null;
    const answer: Answer = { status, code, text: received.split('\r\n\r\n').slice(1).join('\r\n\r\n'), ms: Date.now() - started };
    if (received === '') continue; // The server may close a connection it cannot parse; that is no crash.
    if (status === 0) failures.add(request, 'not an HTTP answer', answer);
    else if (status >= 500 && !(status === 501 && code === 'CAIRN_NOT_IMPLEMENTED')) failures.add(request, `server error ${status}`, answer);
    else if (status >= 400 && (code === null || !isCairnErrorCode(code))) failures.add(request, 'refusal without a Cairn code', answer);
    else if (status >= 400 && isCairnErrorCode(code) && status !== errorCatalog[code].httpStatus) failures.add(request, `status ${status} for ${code}`, answer);
  }
}

async function registerListDeregister(): Promise<void> {
  const key = `serviceName=fz-final&ip=${host}&port=20100&ephemeral=false`;
  const register = await send({ method: 'POST', path: '/nacos/v1/ns/instance', query: `${key}&weight=3&metadata=k%3Dv`, headers: {}, write: true });
  assert.deepEqual([register.status, register.text], [200, 'ok']);
  const listed = await getJson('/nacos/v1/ns/instance/list?serviceName=fz-final');
  const hosts = listed['hosts'] as Array<Record<string, unknown>>;
  assert.deepEqual(hosts.map((h) => [h['ip'], h['port'], h['weight'], h['metadata'], h['ephemeral']]), [[host, 20100, 3, { k: 'v' }, false]]);
  const deregister = await send({ method: 'DELETE', path: '/nacos/v1/ns/instance', query: key, headers: {}, write: true });
  assert.deepEqual([deregister.status, deregister.text], [200, 'ok']);
  assert.deepEqual((await getJson('/nacos/v1/ns/instance/list?serviceName=fz-final'))['hosts'], []);
}

test('a seeded fuzz campaign against a real member: no 5xx, documented error shapes, no refused write applied, state survives a restart', { timeout: 150_000 }, async (t) => {
  t.diagnostic(`seed ${seed} (replay: CAIRN_FUZZ_SEED=${seed} node --import tsx --test test/api/http/fuzz.test.ts)`);
  t.after(() => agent.destroy());
  const cluster = await startCluster(t, { file: 'http-fuzz', hosts: [host], size: 1, httpPort, logLevel: 'warn' });
  const [member] = cluster.members;
  assert.ok(member !== undefined);
  await cluster.waitForLeader();
  const rng = new Prng(seed);
  let accepted = new Set<string>(namespaces);

  await cluster.step(t, 'phase A: mutated writes one at a time; a refused write changes nothing', async (st) => {
    await seedRegistry();
    const failures = new Failures();
    const { refused, accepted: ok } = await phaseA(rng, failures);
    st.diagnostic(`${phaseAWrites} writes: ${refused} refused, ${ok} accepted`);
    assert.ok(refused > phaseAWrites / 3, `most mutated writes are refused (${refused})`);
    await assertAlive(member, 'phase A');
    failures.assertNone(st, 'phase A');
  });

  await cluster.step(t, 'phase B: the open campaign over every route, wrong methods and near-miss paths', async (st) => {
    const failures = new Failures();
    const started = Date.now();
    accepted = await phaseB(rng, failures, member);
    st.diagnostic(`${phaseBRequests} requests in ${Date.now() - started} ms`);
    await assertAlive(member, 'phase B');
    failures.assertNone(st, 'phase B');
  });

  await cluster.step(t, 'phase C: malformed HTTP on raw sockets', async (st) => {
    const failures = new Failures();
    await phaseC(failures);
    await assertAlive(member, 'phase C');
    failures.assertNone(st, 'phase C');
  });

  await cluster.step(t, 'afterwards: a normal register, list and deregister still work', async () => {
    await registerListDeregister();
  });

  await cluster.step(t, 'a restart on the same data directory lists the same persistent state', async (st) => {
    const before = await snapshotOf(accepted, true);
    st.diagnostic(`${before.size} persistent services over ${accepted.size} namespaces`);
    await member.terminate();
    await member.restart();
    await cluster.waitForLeader();
    // A service that held only ephemeral instances before may be a plain persistent definition now: compare the
    // services the member had to keep.
    const after = new Map([...await snapshotOf(accepted, false)].filter(([key]) => before.has(key)));
    assert.ok(sameSnapshot(before, after), `the persistent state changed across a restart: ${difference(before, after)}`);
    await registerListDeregister();
    st.diagnostic(`${requestsSent} HTTP requests and ${rawRequests.length} raw ones in all`);
  });
});
