// Goal: a live member survives a large seeded campaign of hostile input on its client gRPC port and keeps the
// project's rule for it ("every input from outside is validated: a clear error with a code, never a crash, never a
// half-applied write"). For every call the answer is OK or a documented status (docs/grpc.md "Errors"): the status
// code is the catalog's for the Cairn code carried in `cairn-error-code` and at the start of the status message;
// only a request over requestBodyBytesMax may be refused by gRPC itself (RESOURCE_EXHAUSTED, no Cairn code); never
// INTERNAL or UNKNOWN; every answer arrives within answerBoundMs; the member process stays alive.
//
// Method: one standalone member process (test/support/cluster.ts) on this file's 127.0.1.16 (HTTP 8848, gRPC 9848),
// its own temporary data directory. A grpc-js generic client with identity serializers sends bytes the server parses
// itself, to every method of cairn.naming.v1.Naming:
// (a) raw random bytes, and truncated, bit-flipped, spliced or doubled encodings of valid requests;
// (b) structurally valid messages with hostile values, written by a raw protobuf writer (test/support/fuzz.ts):
//     empty and over-limit strings, unicode, control characters, NUL, invalid UTF-8, huge and negative numbers, NaN
//     and infinities, unknown enum values, unknown fields, wrong wire types, repeated singular fields, maps with
//     empty, hostile or many keys;
// (c) Subscribe and Session streams: hostile requests, garbage frames in the middle of a session, half-closes,
//     cancels, and many streams open at once.
// Persistent instances get probed, so an accepted registration must name a loopback IPv4 address: every generated
// RegisterInstance or Session request is decoded here first and skipped when its ip would pass validation but is not
// on 127.0.0.0/8 (the campaign never makes the member send traffic elsewhere).
// Afterwards: a normal register, list and deregister work; a batch of refused writes on a sentinel service changed
// nothing (its state before and after is equal); a restart on the same data directory serves the same persistent
// state. One seed decides every input: it is printed, and CAIRN_FUZZ_SEED replays it.

import assert from 'node:assert/strict';
import { isIP } from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { errorCatalog, isCairnErrorCode } from '../../../src/errors.ts';
import { limits } from '../../../src/limits.ts';
import { validateIp } from '../../../src/naming/validation.ts';
import { grpcProtoRoot } from '../../../src/api/grpc/proto.ts';
import { startCluster, waitFor } from '../../support/cluster.ts';
import {
  Failures,
  memberAlive,
  Prng,
  bytesField,
  doubleField,
  fuzzSeed,
  hex,
  hostileMessage,
  invalidUtf8,
  mutate,
  oneHostileField,
  randomBytes,
  runPool,
  utf8,
  varintField,
} from '../../support/fuzz.ts';

const host = '127.0.1.16';
const httpPort = 8848;
const grpcAddr = `${host}:${httpPort + 1000}`;
const seed = fuzzSeed(0x5eed_0016);
/** answerBoundMs: every call is answered within this (the member's own bound is requestTimeoutMs, 5 s). */
const answerBoundMs = 5500;
const callDeadlineMs = 8000;
const unaryCasesPerMethod = 240;
const concurrency = 24;

const root = protobuf.loadSync(path.join(grpcProtoRoot, 'cairn/naming/v1/naming.proto'));
const typeOf = (name: string): protobuf.Type => root.lookupType(`cairn.naming.v1.${name}`);

const unaryMethods = [
  'RegisterInstance', 'DeregisterInstance', 'UpdateInstance', 'GetInstance', 'ListInstances', 'CreateService',
  'UpdateService', 'DeleteService', 'GetService', 'ListServices', 'SetClusterHealthChecker',
] as const;
type UnaryMethod = (typeof unaryMethods)[number];

const identity = (bytes: Buffer): Buffer => bytes;
const fromBytes = (bytes: Uint8Array): Buffer => Buffer.from(bytes);

/** Answer is what one call came back with. */
interface Answer {
  readonly code: number;
  readonly details: string;
  readonly cairnCode: string | undefined;
  readonly ms: number;
  readonly response: Buffer | undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// Valid requests, the seeds of the mutations.

const namespaces = ['', 'public', 'fuzz-ns'];
const groups = ['', 'DEFAULT_GROUP', 'fuzz-group'];
const services = Array.from({ length: 12 }, (_, i) => `fz-${i}`);
const loopbackIp = (prng: Prng): string => `127.0.3.${1 + prng.int(200)}`;

function serviceName(prng: Prng): object {
  return { namespace: prng.pick(namespaces), group: prng.pick(groups), service: prng.pick(services) };
}

function validObject(prng: Prng, method: UnaryMethod | 'Subscribe'): object {
  const key = serviceName(prng);
  const address = { cluster: prng.pick(['', 'DEFAULT', 'c1']), ip: loopbackIp(prng), port: 1000 + prng.int(50) };
  const requestId = prng.chance(0.3) ? { requestId: `fz-${prng.int(1_000_000)}` } : {};
  const consistency = { consistency: prng.pick([0, 1]) };
  switch (method) {
    case 'RegisterInstance':
      return { ...key, ...requestId, instance: { ...address, weight: prng.pick([0, 1, 5]), enabled: prng.chance(0.8), healthy: true, metadata: { zone: 'a' } } };
    case 'DeregisterInstance':
      return { ...key, ...address, ...requestId };
    case 'UpdateInstance':
      return { ...key, ...address, ...requestId, weight: 2, metadata: { entries: { k: 'v' } } };
    case 'GetInstance':
      return { ...key, ...address, ...consistency };
    case 'ListInstances':
      return { ...key, ...consistency, clusters: ['DEFAULT'], healthyOnly: prng.chance(0.5) };
    case 'CreateService':
      return { ...key, ...requestId, protectThreshold: 0.5, metadata: { a: 'b' }, selector: { type: 1, expression: 'CONSUMER.label.a = PROVIDER.label.a' }, kind: prng.pick([0, 1]) };
    case 'UpdateService':
      return { ...key, ...requestId, protectThreshold: 0.2, metadata: { entries: { x: 'y' } } };
    case 'DeleteService':
      return { ...key, ...requestId };
    case 'GetService':
      return { ...key, ...consistency };
    case 'ListServices':
      return { namespace: prng.pick(namespaces), group: prng.pick(['*', '']), pageNo: 1 + prng.int(3), pageSize: prng.pick([0, 10, 100]), ...consistency };
    case 'SetClusterHealthChecker':
      return { ...key, ...requestId, cluster: prng.pick(['', 'c1']), healthChecker: prng.pick([{ none: {} }, { tcp: {} }, { http: { path: '/h', expectedStatus: 204 } }]), checkPort: 8080, useInstancePort: prng.chance(0.5) };
    case 'Subscribe':
      return { ...key, clusters: prng.chance(0.5) ? ['DEFAULT'] : [], healthyOnly: prng.chance(0.3) };
  }
}

function encodeValid(prng: Prng, method: UnaryMethod | 'Subscribe'): Uint8Array {
  const type = typeOf(`${method}Request`);
  return type.encode(type.fromObject(validObject(prng, method))).finish();
}

// ---------------------------------------------------------------------------------------------------------------
// The loopback guard: an accepted persistent registration is probed, so its ip must be on 127.0.0.0/8.

/** hostileIp keeps `ip` fields to loopback addresses or values validation refuses. */
function hostileIp(prng: Prng): readonly number[] {
  return prng.pick<() => readonly number[]>([
    () => utf8(loopbackIp(prng)),
    () => [],
    () => utf8('127.0.3.300'),
    () => utf8('1.2.3'),
    () => utf8('x'.repeat(limits.ipCharsMax + 1)),
    () => utf8('a b'),
    () => utf8('\u0000'),
    () => utf8('服务'),
    () => [...prng.pick(invalidUtf8)],
  ])();
}

function ipIsSafe(ip: unknown): boolean {
  if (typeof ip !== 'string') return true;
  try {
    validateIp(ip);
  } catch {
    return true; // refused by validation: never stored, never probed
  }
  return isIP(ip) === 4 && ip.startsWith('127.');
}

/** probesStayLocal decodes a request as the server will and tells whether every ip it could store is loopback. */
function probesStayLocal(typeName: string, bytes: Uint8Array): boolean {
  let decoded: Record<string, unknown>;
  try {
    decoded = typeOf(typeName).toObject(typeOf(typeName).decode(bytes)) as Record<string, unknown>;
  } catch {
    return true;
  }
  const ips: unknown[] = [decoded['ip']];
  const instance = decoded['instance'] as { ip?: unknown } | undefined;
  ips.push(instance?.ip);
  const register = decoded['register'] as { instance?: { ip?: unknown } } | undefined;
  ips.push(register?.instance?.ip);
  return ips.every(ipIsSafe);
}

// ---------------------------------------------------------------------------------------------------------------
// Inputs.

type InputKind = 'random' | 'mutated' | 'hostile' | 'one-hostile';

/** drawRequest draws one request for `typeName` that keeps probes on loopback. */
function drawRequest(prng: Prng, method: UnaryMethod | 'Subscribe'): { bytes: Uint8Array; kind: InputKind } {
  const typeName = `${method}Request`;
  for (;;) {
    const roll = prng.next();
    const kind: InputKind = roll < 0.15 ? 'random' : roll < 0.45 ? 'mutated' : roll < 0.7 ? 'hostile' : 'one-hostile';
    const bytes = kind === 'random'
      ? randomBytes(prng)
      : kind === 'mutated'
        ? mutate(prng, encodeValid(prng, method))
        : kind === 'hostile'
          ? Uint8Array.from(hostileMessage(prng, typeOf(typeName), { strings: { ip: hostileIp } }))
          : Uint8Array.from([...encodeValid(prng, method), ...oneHostileField(prng, typeOf(typeName), { strings: { ip: hostileIp } })]);
    if (probesStayLocal(typeName, bytes)) return { bytes, kind };
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Judging answers.

const allowedStatuses = new Set([
  grpc.status.OK, grpc.status.INVALID_ARGUMENT, grpc.status.NOT_FOUND, grpc.status.ALREADY_EXISTS, grpc.status.FAILED_PRECONDITION,
  grpc.status.RESOURCE_EXHAUSTED, grpc.status.ABORTED, grpc.status.UNAVAILABLE, grpc.status.UNIMPLEMENTED, grpc.status.DEADLINE_EXCEEDED,
]);

/** judge returns what is wrong with an answer (null: nothing) per docs/grpc.md "Errors". */
function judge(answer: Answer, sentBytes: number): string | null {
  if (answer.ms > answerBoundMs) return `answered after ${answer.ms} ms (bound ${answerBoundMs} ms): ${answer.code} ${answer.details}`;
  if (answer.code === grpc.status.OK) return null;
  if (!allowedStatuses.has(answer.code)) return `status ${grpc.status[answer.code]} (${answer.code}): ${answer.details}`;
  if (answer.cairnCode === undefined) {
    // docs/grpc.md: gRPC itself refuses a request over requestBodyBytesMax with RESOURCE_EXHAUSTED, no Cairn code.
    if (answer.code === grpc.status.RESOURCE_EXHAUSTED && sentBytes > limits.requestBodyBytesMax) return null;
    return `status ${grpc.status[answer.code]} without a Cairn code: ${answer.details}`;
  }
  if (!isCairnErrorCode(answer.cairnCode)) return `unknown Cairn code ${answer.cairnCode}`;
  if (answer.cairnCode === 'CAIRN_INTERNAL') return `CAIRN_INTERNAL: ${answer.details}`;
  if (errorCatalog[answer.cairnCode].grpcStatus !== answer.code) return `${answer.cairnCode} carried with status ${answer.code}, catalog says ${errorCatalog[answer.cairnCode].grpcStatus}`;
  if (!answer.details.startsWith(`${answer.cairnCode}:`)) return `status message does not start with ${answer.cairnCode}: ${answer.details}`;
  return null;
}

function cairnCodeOf(metadata: grpc.Metadata | undefined): string | undefined {
  const value = metadata?.get('cairn-error-code')[0];
  return typeof value === 'string' ? value : undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// Calls.

function deadline(): Date {
  return new Date(Date.now() + callDeadlineMs);
}

function unaryCall(client: grpc.Client, method: string, bytes: Uint8Array): Promise<Answer> {
  const started = Date.now();
  return new Promise((resolve) => {
    let trailers: grpc.Metadata | undefined;
    const call = client.makeUnaryRequest<Uint8Array, Buffer>(`/cairn.naming.v1.Naming/${method}`, fromBytes, identity, bytes, new grpc.Metadata(), { deadline: deadline() }, (error, value) => {
      const ms = Date.now() - started;
      if (error === null) resolve({ code: grpc.status.OK, details: '', cairnCode: undefined, ms, response: value });
      else resolve({ code: error.code, details: error.details, cairnCode: cairnCodeOf(error.metadata ?? trailers), ms, response: undefined });
    });
    call.on('status', (status: grpc.StatusObject) => (trailers = status.metadata));
  });
}

/** subscribeCall opens a Subscribe stream and waits for its first event: a snapshot (then cancels) or a status. */
function subscribeCall(client: grpc.Client, bytes: Uint8Array, waitMs: number): Promise<Answer & { snapshot: boolean; silent: boolean }> {
  const started = Date.now();
  return new Promise((resolve) => {
    const call = client.makeServerStreamRequest<Uint8Array, Buffer>('/cairn.naming.v1.Naming/Subscribe', fromBytes, identity, bytes, new grpc.Metadata(), {});
    let done = false;
    const finish = (answer: Answer & { snapshot: boolean; silent: boolean }): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      call.cancel();
      resolve(answer);
    };
    const timer = setTimeout(() => finish({ code: -1, details: 'no first event', cairnCode: undefined, ms: Date.now() - started, response: undefined, snapshot: false, silent: true }), waitMs);
    call.on('data', (data: Buffer) => finish({ code: grpc.status.OK, details: '', cairnCode: undefined, ms: Date.now() - started, response: data, snapshot: true, silent: false }));
    call.on('error', () => undefined);
    call.on('status', (status: grpc.StatusObject) => finish({ code: status.code, details: status.details, cairnCode: cairnCodeOf(status.metadata), ms: Date.now() - started, response: undefined, snapshot: false, silent: false }));
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Sessions.

const sessionRequestType = typeOf('SessionRequest');
const sessionResponseType = typeOf('SessionResponse');

/** SessionPlan is one scripted session: frames to write, then how the client leaves. */
interface SessionPlan {
  readonly frames: readonly Uint8Array[];
  readonly ending: 'half-close' | 'cancel' | 'abandon-after-garbage';
}

function validSessionFrame(prng: Prng): Uint8Array {
  const which = prng.int(3);
  const key = serviceName(prng);
  const object = which === 0
    ? { register: { ...key, service: `fz-eph-${prng.int(4)}`, instance: { ip: loopbackIp(prng), port: 2000 + prng.int(20), ephemeral: prng.chance(0.8) } } }
    : which === 1
      ? { deregister: { ...key, service: `fz-eph-${prng.int(4)}`, ip: loopbackIp(prng), port: 2000 + prng.int(20) } }
      : { keepAlive: {} };
  return sessionRequestType.encode(sessionRequestType.fromObject(object)).finish();
}

function drawSessionFrame(prng: Prng): Uint8Array {
  for (;;) {
    const roll = prng.next();
    const bytes = roll < 0.5
      ? validSessionFrame(prng)
      : roll < 0.65
        ? randomBytes(prng)
        : roll < 0.8
          ? mutate(prng, validSessionFrame(prng))
          : Uint8Array.from(hostileMessage(prng, sessionRequestType, { strings: { ip: hostileIp }, bigStrings: false }));
    if (probesStayLocal('SessionRequest', bytes)) return bytes;
  }
}

function drawSessionPlan(prng: Prng): SessionPlan {
  const frames = Array.from({ length: prng.int(8) }, () => drawSessionFrame(prng));
  return { frames, ending: prng.pick(['half-close', 'half-close', 'cancel', 'abandon-after-garbage'] as const) };
}

/** runSession plays a plan and returns what is wrong (empty: nothing). */
function runSession(client: grpc.Client, plan: SessionPlan): Promise<string[]> {
  const problems: string[] = [];
  return new Promise((resolve) => {
    const call = client.makeBidiStreamRequest<Uint8Array, Buffer>('/cairn.naming.v1.Naming/Session', fromBytes, identity, new grpc.Metadata(), {});
    let first = true;
    let lastActionAt = Date.now();
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      clearInterval(watchdog);
      resolve(problems);
    };
    const watchdog = setInterval(() => {
      if (Date.now() - lastActionAt > answerBoundMs) {
        problems.push(`session silent for ${answerBoundMs} ms after its last frame (${plan.ending}, ${plan.frames.length} frames)`);
        call.cancel();
        finish();
      }
    }, 250);
    call.on('data', (bytes: Buffer) => {
      lastActionAt = Date.now();
      let response: Record<string, unknown>;
      try {
        response = sessionResponseType.toObject(sessionResponseType.decode(bytes), { oneofs: true }) as Record<string, unknown>;
      } catch (error) {
        problems.push(`undecodable SessionResponse ${hex(bytes)}: ${String(error)}`);
        return;
      }
      if (first && response['response'] !== 'started') problems.push(`first SessionResponse is ${String(response['response'])}, not started`);
      first = false;
      const error = response['error'] as { code?: number; cairnCode?: string; message?: string } | undefined;
      if (error !== undefined) {
        const why = judge({ code: error.code ?? 0, details: error.message ?? '', cairnCode: error.cairnCode, ms: 0, response: undefined }, 0);
        if (why !== null || error.code === undefined || error.code === 0) problems.push(`session request error answer: ${why ?? 'code 0'} ${JSON.stringify(error)}`);
      }
    });
    call.on('error', () => undefined);
    call.on('status', (status: grpc.StatusObject) => {
      const answer: Answer = { code: status.code, details: status.details, cairnCode: cairnCodeOf(status.metadata), ms: 0, response: undefined };
      const expectedCancel = plan.ending === 'cancel' && status.code === grpc.status.CANCELLED;
      if (!expectedCancel) {
        const why = judge(answer, 0);
        if (why !== null) problems.push(`session ended: ${why}`);
      }
      finish();
    });
    void (async () => {
      for (const frame of plan.frames) {
        if (done) return;
        call.write(frame);
        lastActionAt = Date.now();
        await new Promise((r) => setTimeout(r, 2));
      }
      if (plan.ending === 'half-close') call.end();
      else if (plan.ending === 'cancel') call.cancel();
      else {
        // Garbage, then leave the stream open: the member must end it (INVALID_ARGUMENT) on its own.
        call.write(Uint8Array.from([0xff, 0xff, 0xff]));
        lastActionAt = Date.now();
      }
    })();
  });
}

// ---------------------------------------------------------------------------------------------------------------
// State snapshots.

const sentinel = { namespace: 'public', group: 'DEFAULT_GROUP', service: 'fuzz-sentinel' };

class Api {
  constructor(readonly client: grpc.Client) {}

  /** call makes one well-formed call and decodes its answer; throws with the status on failure. */
  async call(method: string, request: object): Promise<Record<string, unknown>> {
    const type = typeOf(`${method}Request`);
    const answer = await unaryCall(this.client, method, type.encode(type.fromObject(request)).finish());
    if (answer.code !== grpc.status.OK || answer.response === undefined) throw new Error(`${method} ${JSON.stringify(request)}: ${answer.code} ${answer.details}`);
    const responseType = typeOf(`${method}Response`);
    return responseType.toObject(responseType.decode(answer.response), { longs: Number, enums: String, defaults: true }) as Record<string, unknown>;
  }
}

/** sentinelState renders the sentinel service, its clusters and instances as one comparable string. */
async function sentinelState(api: Api): Promise<string> {
  const service = await api.call('GetService', { ...sentinel, consistency: 1 });
  const list = await api.call('ListInstances', { ...sentinel, consistency: 1 });
  return JSON.stringify({ service, list });
}

/** persistentState lists the persistent services of the campaign's namespaces with their instances' addresses. */
async function persistentState(api: Api): Promise<string> {
  const state: Record<string, string[]> = {};
  for (const namespace of ['public', 'fuzz-ns']) {
    const page = await api.call('ListServices', { namespace, group: '*', pageSize: 1000, consistency: 1 });
    const listed = page['services'] as Array<{ group: string; service: string; kind: string }>;
    for (const service of listed.filter((s) => s.kind === 'SERVICE_KIND_PERSISTENT')) {
      const list = await api.call('ListInstances', { namespace, group: service.group, service: service.service, consistency: 1 });
      const instances = list['instances'] as Array<{ cluster: string; ip: string; port: number; weight: number; enabled: boolean; metadata: object }>;
      state[`${namespace}/${service.group}/${service.service}`] = instances.map((i) => `${i.cluster}/${i.ip}:${i.port} w=${i.weight} ${JSON.stringify(i.metadata)}`).sort();
    }
  }
  return JSON.stringify(state, Object.keys(state).sort());
}

/** refusedWrites are writes on the sentinel that validation or the state must refuse; none may change anything. */
function refusedWrites(prng: Prng): Array<{ method: string; bytes: Uint8Array; what: string }> {
  const writes: Array<{ method: string; bytes: Uint8Array; what: string }> = [];
  const encode = (method: string, object: object): Uint8Array => typeOf(`${method}Request`).encode(typeOf(`${method}Request`).fromObject(object)).finish();
  const address = { cluster: 'DEFAULT', ip: '127.0.4.1', port: 4001 };
  const key = [...bytesField(1, utf8(sentinel.namespace)), ...bytesField(2, utf8(sentinel.group))];
  const rawService = (bytes: readonly number[]): number[] => [...key, ...bytesField(3, bytes)];
  for (let i = 0; i < 12; i++) {
    const badInstance = prng.pick<[string, number[]]>([
      ['weight NaN', [...bytesField(1, utf8(address.ip)), ...varintField(2, address.port), ...doubleField(4, NaN)]],
      ['weight -1', [...bytesField(1, utf8(address.ip)), ...varintField(2, address.port), ...doubleField(4, -1)]],
      ['weight 10001', [...bytesField(1, utf8(address.ip)), ...varintField(2, address.port), ...doubleField(4, 10_001)]],
      ['weight Infinity', [...bytesField(1, utf8(address.ip)), ...varintField(2, address.port), ...doubleField(4, Infinity)]],
      ['port 70000', [...bytesField(1, utf8(address.ip)), ...varintField(2, 70_000)]],
      ['ip empty', [...varintField(2, address.port)]],
      ['ip 1.2.3.999', [...bytesField(1, utf8('1.2.3.999')), ...varintField(2, address.port)]],
      ['cluster NUL', [...bytesField(1, utf8(address.ip)), ...varintField(2, address.port), ...bytesField(3, utf8('a\u0000'))]],
      ['cluster invalid UTF-8', [...bytesField(1, utf8(address.ip)), ...varintField(2, address.port), ...bytesField(3, [0xff])]],
      ['metadata too large', [...bytesField(1, utf8(address.ip)), ...varintField(2, address.port), ...bytesField(8, [...bytesField(1, utf8('k')), ...bytesField(2, utf8('v'.repeat(limits.metadataCharsMax + 1)))])]],
    ]);
    writes.push({ method: 'RegisterInstance', what: `register ${badInstance[0]}`, bytes: Uint8Array.from([...rawService(utf8(sentinel.service)), ...bytesField(4, badInstance[1])]) });
  }
  writes.push({ method: 'RegisterInstance', what: 'register service name too long', bytes: Uint8Array.from([...rawService(utf8('s'.repeat(limits.serviceNameCharsMax + 1))), ...bytesField(4, [...bytesField(1, utf8(address.ip)), ...varintField(2, 1)])]) });
  writes.push({ method: 'RegisterInstance', what: 'register service invalid UTF-8', bytes: Uint8Array.from([...rawService([0x66, 0xff]), ...bytesField(4, [...bytesField(1, utf8(address.ip)), ...varintField(2, 1)])]) });
  writes.push({ method: 'RegisterInstance', what: 'register version mismatch', bytes: encode('RegisterInstance', { ...sentinel, instance: { ...address, weight: 3 }, expectedVersion: 999 }) });
  writes.push({ method: 'RegisterInstance', what: 'register ephemeral into a persistent service', bytes: encode('RegisterInstance', { ...sentinel, instance: { ...address, port: 4999, ephemeral: true } }) });
  writes.push({ method: 'RegisterInstance', what: 'register request id with control characters', bytes: encode('RegisterInstance', { ...sentinel, instance: { ...address, weight: 4 }, requestId: 'id\u0001' }) });
  writes.push({ method: 'RegisterInstance', what: 'register request id too long', bytes: encode('RegisterInstance', { ...sentinel, instance: { ...address, weight: 4 }, requestId: 'r'.repeat(limits.requestIdCharsMax + 1) }) });
  writes.push({ method: 'UpdateInstance', what: 'update weight NaN', bytes: Uint8Array.from([...rawService(utf8(sentinel.service)), ...bytesField(5, utf8(address.ip)), ...varintField(6, address.port), ...doubleField(7, NaN)]) });
  writes.push({ method: 'UpdateInstance', what: 'update absent instance', bytes: encode('UpdateInstance', { ...sentinel, ip: '127.0.4.99', port: 1, weight: 2 }) });
  writes.push({ method: 'UpdateInstance', what: 'update version mismatch', bytes: encode('UpdateInstance', { ...sentinel, ...address, weight: 2, expectedVersion: 77 }) });
  writes.push({ method: 'UpdateInstance', what: 'update metadata too large', bytes: encode('UpdateInstance', { ...sentinel, ...address, metadata: { entries: { k: 'x'.repeat(limits.metadataCharsMax + 1) } } }) });
  writes.push({ method: 'DeregisterInstance', what: 'deregister version mismatch', bytes: encode('DeregisterInstance', { ...sentinel, ...address, expectedVersion: 55 }) });
  writes.push({ method: 'DeregisterInstance', what: 'deregister ip invalid UTF-8', bytes: Uint8Array.from([...rawService(utf8(sentinel.service)), ...bytesField(5, [0xff]), ...varintField(6, address.port)]) });
  writes.push({ method: 'CreateService', what: 'create existing service', bytes: encode('CreateService', { ...sentinel }) });
  writes.push({ method: 'UpdateService', what: 'update service threshold 1.5', bytes: Uint8Array.from([...rawService(utf8(sentinel.service)), ...doubleField(4, 1.5)]) });
  writes.push({ method: 'UpdateService', what: 'update service threshold NaN', bytes: Uint8Array.from([...rawService(utf8(sentinel.service)), ...doubleField(4, NaN)]) });
  writes.push({ method: 'UpdateService', what: 'update service selector type 99', bytes: Uint8Array.from([...rawService(utf8(sentinel.service)), ...bytesField(6, varintField(1, 99))]) });
  writes.push({ method: 'DeleteService', what: 'delete service with instances', bytes: encode('DeleteService', { ...sentinel }) });
  writes.push({ method: 'SetClusterHealthChecker', what: 'checker missing', bytes: encode('SetClusterHealthChecker', { ...sentinel, cluster: 'DEFAULT' }) });
  writes.push({ method: 'SetClusterHealthChecker', what: 'http expected status 700', bytes: encode('SetClusterHealthChecker', { ...sentinel, cluster: 'DEFAULT', healthChecker: { http: { path: '/', expectedStatus: 700 } } }) });
  writes.push({ method: 'SetClusterHealthChecker', what: 'http path without slash', bytes: encode('SetClusterHealthChecker', { ...sentinel, cluster: 'DEFAULT', healthChecker: { http: { path: 'nope' } } }) });
  writes.push({ method: 'SetClusterHealthChecker', what: 'check port 0 without instance port', bytes: encode('SetClusterHealthChecker', { ...sentinel, cluster: 'DEFAULT', healthChecker: { none: {} }, checkPort: 0, useInstancePort: false }) });
  for (let i = 0; i < 10; i++) {
    const method = prng.pick(['RegisterInstance', 'UpdateInstance', 'DeregisterInstance', 'UpdateService', 'SetClusterHealthChecker']);
    // A valid prefix followed by bytes that cannot be a field: the whole request is undecodable.
    const valid = encode(method, method === 'RegisterInstance' ? { ...sentinel, instance: { ...address, weight: 9 } } : method === 'SetClusterHealthChecker' ? { ...sentinel, healthChecker: { tcp: {} } } : { ...sentinel, ...address, weight: 9, protectThreshold: 0.9 });
    writes.push({ method, what: `${method} with an undecodable tail`, bytes: Uint8Array.from([...valid, 0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]) });
  }
  return writes;
}

// ---------------------------------------------------------------------------------------------------------------
// The test.

test('the client gRPC API of a live member survives a seeded fuzz campaign', { timeout: 180_000 }, async (t) => {
  t.diagnostic(`seed ${seed} (replay with CAIRN_FUZZ_SEED=${seed})`);
  const cluster = await startCluster(t, { file: 'grpc-fuzz', hosts: [host], size: 1, httpPort, logLevel: 'warn' });
  const member = cluster.members[0];
  assert.ok(member !== undefined);
  const client = new grpc.Client(grpcAddr, grpc.credentials.createInsecure(), {
    'grpc.max_receive_message_length': 64 * 1024 * 1024,
    'grpc.max_send_message_length': 64 * 1024 * 1024,
    'grpc-node.flow_control_window': 4 * 1024 * 1024,
  });
  t.after(() => client.close());
  const api = new Api(client);
  const prng = new Prng(seed);
  const failures = new Failures();
  const counts = { unary: 0, subscribe: 0, session: 0 };
  const outcomes = new Map<string, number>();
  const started = Date.now();

  // The sentinel: a persistent service with three instances, probed by nobody (checker NONE), so its state only
  // changes through writes.
  await waitFor(() => api.call('CreateService', { ...sentinel, kind: 1 }).then(() => true), { timeoutMs: 10_000, what: 'the sentinel service to be created' });
  await api.call('SetClusterHealthChecker', { ...sentinel, cluster: 'DEFAULT', healthChecker: { none: {} } });
  for (const port of [4001, 4002, 4003]) await api.call('RegisterInstance', { ...sentinel, instance: { ip: '127.0.4.1', port, metadata: { n: String(port) } } });

  await cluster.step(t, '(a, b) every unary method: random, mutated and hostile requests', async () => {
    const jobs: Array<() => Promise<void>> = [];
    for (const method of unaryMethods) {
      for (let i = 0; i < unaryCasesPerMethod; i++) {
        const { bytes, kind } = drawRequest(prng, method);
        jobs.push(async () => {
          const answer = await unaryCall(client, method, bytes);
          counts.unary++;
          const label = answer.cairnCode ?? grpc.status[answer.code] ?? String(answer.code);
          outcomes.set(label, (outcomes.get(label) ?? 0) + 1);
          const why = judge(answer, bytes.length);
          if (why !== null) failures.add(`${method} ${kind} ${hex(bytes)}: ${why}`);
        });
      }
    }
    await runPool(jobs, concurrency);
    await memberAlive(member, failures, 'after the unary campaign');
  });

  await cluster.step(t, '(c) Subscribe: hostile requests, and many streams open at once', async () => {
    const jobs: Array<() => Promise<void>> = [];
    for (let i = 0; i < 200; i++) {
      const { bytes, kind } = drawRequest(prng, 'Subscribe');
      jobs.push(async () => {
        const answer = await subscribeCall(client, bytes, answerBoundMs);
        counts.subscribe++;
        if (answer.silent) {
          // A resume with min_applied_index ahead of this member waits up to subscribeCatchUpMsMax (documented).
          const decoded = (() => {
            try {
              return typeOf('SubscribeRequest').toObject(typeOf('SubscribeRequest').decode(bytes), { longs: Number }) as { minAppliedIndex?: number };
            } catch {
              return {};
            }
          })();
          if ((decoded.minAppliedIndex ?? 0) > 0) return;
          failures.add(`Subscribe ${kind} ${hex(bytes)}: no snapshot and no status within ${answerBoundMs} ms`);
          return;
        }
        const why = judge(answer, bytes.length);
        if (why !== null) failures.add(`Subscribe ${kind} ${hex(bytes)}: ${why}`);
      });
    }
    const valid = encodeValid(new Prng(seed + 1), 'Subscribe');
    for (let i = 0; i < 100; i++) {
      jobs.push(async () => {
        const answer = await subscribeCall(client, valid, answerBoundMs);
        counts.subscribe++;
        if (!answer.snapshot) failures.add(`Subscribe (one of 100 at once) got no snapshot: ${answer.code} ${answer.details}`);
      });
    }
    await runPool(jobs, 100);
    await memberAlive(member, failures, 'after the Subscribe campaign');
  });

  await cluster.step(t, '(c) Session: garbage mid-stream, half-closes, cancels, many opens', async () => {
    const plans = Array.from({ length: 220 }, () => drawSessionPlan(prng));
    await runPool(plans.map((plan) => async () => {
      const problems = await runSession(client, plan);
      counts.session++;
      for (const problem of problems) failures.add(`Session (${plan.ending}; frames ${plan.frames.map((f) => hex(f, 16)).join(' | ')}): ${problem}`);
    }), 110);
    await memberAlive(member, failures, 'after the Session campaign');
  });

  t.diagnostic(`unary outcomes: ${[...outcomes].sort((a, b) => b[1] - a[1]).map(([label, n]) => `${label}=${n}`).join(' ')}`);
  t.diagnostic(`calls: ${counts.unary} unary, ${counts.subscribe} Subscribe, ${counts.session} Session in ${Date.now() - started} ms`);

  await cluster.step(t, 'afterwards a normal register, list and deregister work', async () => {
    const key = { namespace: 'public', group: 'DEFAULT_GROUP', service: 'fuzz-after' };
    await api.call('RegisterInstance', { ...key, instance: { ip: '127.0.4.2', port: 5000 } });
    const list = await api.call('ListInstances', { ...key });
    assert.deepEqual((list['instances'] as Array<{ ip: string; port: number }>).map((i) => `${i.ip}:${i.port}`), ['127.0.4.2:5000']);
    const removed = await api.call('DeregisterInstance', { ...key, ip: '127.0.4.2', port: 5000 });
    assert.equal(removed['removed'], true);
  });

  await cluster.step(t, 'refused writes change nothing', async () => {
    const before = await sentinelState(api);
    for (const write of refusedWrites(prng)) {
      const answer = await unaryCall(client, write.method, write.bytes);
      if (answer.code === grpc.status.OK) failures.add(`refused-write batch: ${write.what} was accepted`);
      const why = judge(answer, write.bytes.length);
      if (why !== null) failures.add(`refused-write batch: ${write.what}: ${why}`);
    }
    const after = await sentinelState(api);
    if (before !== after) failures.add(`refused writes changed the sentinel:\nbefore ${before}\nafter  ${after}`);
  });

  await cluster.step(t, 'a restart on the same data directory serves the same state', async () => {
    const sentinelBefore = await sentinelState(api);
    const persistentBefore = await persistentState(api);
    await member.terminate();
    await member.restart();
    const restarted = new grpc.Client(grpcAddr, grpc.credentials.createInsecure(), { 'grpc.max_receive_message_length': 64 * 1024 * 1024 });
    t.after(() => restarted.close());
    const after = new Api(restarted);
    const sentinelAfter = await waitFor(() => sentinelState(after), { timeoutMs: 15_000, what: 'the restarted member to serve the sentinel' });
    if (sentinelAfter !== sentinelBefore) failures.add(`the sentinel differs after the restart:\nbefore ${sentinelBefore}\nafter  ${sentinelAfter}`);
    const persistentAfter = await persistentState(after);
    if (persistentAfter !== persistentBefore) failures.add(`persistent state differs after the restart:\nbefore ${persistentBefore.slice(0, 2000)}\nafter  ${persistentAfter.slice(0, 2000)}`);
    await memberAlive(member, failures, 'after the restart');
  });

  // A bug the member caught (CAIRN_INTERNAL, a failed handler) is logged at level error (50) or above.
  for (const event of member.events.filter((e) => e.level >= 50)) failures.add(`the member logged an error: ${JSON.stringify(event.fields).slice(0, 600)}`);
  t.diagnostic(`total ${Date.now() - started} ms`);
  assert.equal(failures.report(seed), '');
});
