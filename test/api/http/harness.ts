// The HTTP tests' harness: buildApp() over the real naming layer and registry state machine (no Raft: the direct
// proposer applies each command at once), a fake ClusterControl (the Raft seam is not what these tests test), a
// fresh Prometheus registry, and a recording authorizer. Plus small helpers to call routes and read answers.

import { connect } from 'node:net';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { Registry } from 'prom-client';
import { buildApp } from '../../../src/api/http/app.ts';
import type { AuthorizationRequest, Authorizer, ClusterControl, ClusterStatus, MemberCheckpoints, MemberStateDigest } from '../../../src/api/http/deps.ts';
import type { NamingService } from '../../../src/naming/naming-service.ts';
import { createDirectNaming } from '../../support/direct-proposer.ts';

/** javaClient are the headers the npm `nacos` client (and the Java client 1.x) send. */
export const javaClient = Object.freeze({ 'user-agent': 'Nacos-Java-Client:v1.0.0', 'client-version': 'Nacos-Java-Client:v1.0.0' });

/** form is the content type of a form body. */
export const form = Object.freeze({ 'content-type': 'application/x-www-form-urlencoded' });

/** fixedNow is the harness's wall clock, so lastRefTime is pinned. */
export const fixedNow = 1_700_000_000_000;

/** FakeCluster is a ClusterControl that records calls; `failWith` makes the next changes reject. */
export class FakeCluster implements ClusterControl {
  readyNow = true;
  failWith: Error | null = null;
  readonly calls: string[] = [];
  current: ClusterStatus = {
    leader: '127.0.1.1:8848',
    term: 7,
    members: [
      { addr: '127.0.1.1:8848', role: 'leader', term: 7, commitIndex: 42, appliedIndex: 42, matchIndex: 43, lastContactMs: 0 },
      { addr: '127.0.1.2:8848', role: 'follower', term: null, commitIndex: null, appliedIndex: null, matchIndex: 41, lastContactMs: 120 },
      { addr: '127.0.1.3:8848', role: 'follower', term: null, commitIndex: null, appliedIndex: null, matchIndex: null, lastContactMs: null },
    ],
  };

  status(): ClusterStatus {
    return this.current;
  }

  ready(): boolean {
    return this.readyNow;
  }

  async transferLeader(to: string): Promise<void> {
    this.record(`transferLeader ${to}`);
  }

  async addMember(addr: string): Promise<void> {
    this.record(`addMember ${addr}`);
  }

  async removeMember(addr: string): Promise<void> {
    this.record(`removeMember ${addr}`);
  }

  /** digest is what stateDigest answers (after recording the call, or throwing failWith). */
  digest: MemberStateDigest = { member: '127.0.1.1:8848', applied: 42, records: 3, bytes: 300, sha256: 'ab'.repeat(32) };

  async stateDigest(): Promise<MemberStateDigest> {
    this.record('stateDigest');
    return this.digest;
  }

  /** report is what checkpoints answers (after recording the call, or throwing failWith). */
  report: MemberCheckpoints = { member: '127.0.1.1:8848', every: 100, digests: [], comparisons: [] };

  checkpoints(): MemberCheckpoints {
    this.record('checkpoints');
    return this.report;
  }

  private record(call: string): void {
    if (this.failWith !== null) throw this.failWith;
    this.calls.push(call);
  }
}

/** Harness is one app under test with its collaborators. */
export interface Harness {
  readonly app: FastifyInstance;
  readonly naming: NamingService;
  readonly cluster: FakeCluster;
  readonly metrics: Registry;
  /** authorizations records every request the authorization hook saw. */
  readonly authorizations: AuthorizationRequest[];
  /** refuse makes the authorizer refuse every request with this error (null: allow). */
  refuse: Error | null;
}

/** buildHarness builds a fresh app over an empty registry; `timing` shortens the server's request receive bound. */
export async function buildHarness(timing: { readonly requestReceiveMs?: number; readonly connectionsCheckMs?: number; readonly connectionsMax?: number } = {}): Promise<Harness> {
  const { naming } = createDirectNaming();
  const cluster = new FakeCluster();
  const metrics = new Registry();
  const authorizations: AuthorizationRequest[] = [];
  const harness: { -readonly [K in keyof Harness]: Harness[K] } = { app: undefined as never, naming, cluster, metrics, authorizations, refuse: null };
  const authorize: Authorizer = (request) => {
    authorizations.push(request);
    if (harness.refuse !== null) throw harness.refuse;
  };
  harness.app = buildApp({ naming, cluster, metrics, authorize, logger: false, now: () => fixedNow, ...timing });
  await harness.app.ready();
  return harness;
}

/** Method is an HTTP method the tests send. */
export type Method = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** Answer is an inject() response reduced to what the tests look at. */
export interface Answer {
  readonly status: number;
  readonly text: string;
  readonly contentType: string;
  readonly headers: Readonly<Record<string, unknown>>;
  json(): unknown;
}

/** call injects one request; `body` is sent as a form unless headers say otherwise. */
export async function call(
  app: FastifyInstance,
  method: Method,
  url: string,
  options: { body?: string | Record<string, unknown>; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const injected: InjectOptions = { method, url, headers: { ...(typeof options.body === 'string' ? form : {}), ...options.headers } };
  if (options.body !== undefined) injected.payload = options.body;
  const response = await app.inject(injected);
  return {
    status: response.statusCode,
    text: response.body,
    contentType: String(response.headers['content-type'] ?? ''),
    headers: response.headers,
    json: () => JSON.parse(response.body) as unknown,
  };
}

/** query builds a query string from parameters, encoding each value. */
export function query(params: Record<string, string | number | boolean>): string {
  return new URLSearchParams(Object.entries(params).map(([k, v]): [string, string] => [k, String(v)])).toString();
}

/** listenHarness builds a harness (buildHarness) and listens on `host` at a free port, for tests that need a real socket. */
export async function listenHarness(host: string, timing: { readonly requestReceiveMs?: number; readonly connectionsCheckMs?: number; readonly connectionsMax?: number } = {}): Promise<{ readonly harness: Harness; readonly port: number }> {
  const harness = await buildHarness(timing);
  await harness.app.listen({ host, port: 0 });
  const address = harness.app.server.address();
  if (address === null || typeof address !== 'object') throw new Error(`the harness is not listening on ${host}`);
  return { harness, port: address.port };
}

/**
 * exchangeRaw writes `text` (latin1) on a fresh TCP connection and resolves with everything read until the server
 * closes it, or `boundMs` pass (then the connection is destroyed). For requests no HTTP client would send.
 */
export function exchangeRaw(target: { readonly host: string; readonly port: number; readonly localAddress?: string }, text: string, boundMs: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host: target.host, port: target.port, ...(target.localAddress === undefined ? {} : { localAddress: target.localAddress }) });
    let received = '';
    const timer = setTimeout(() => socket.destroy(), boundMs);
    socket.setEncoding('latin1');
    socket.on('connect', () => socket.end(Buffer.from(text, 'latin1')));
    socket.on('data', (chunk: string) => {
      received += chunk;
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(received);
    });
  });
}
