// client-http: a RegistryClient over the Nacos v1 HTTP API of one member (undici, one deadline per request), plus
// Cairn's own cluster routes the nemesis and the monitor use. A refused connection is a 'fail' (nothing was sent);
// any other failure after the request may have left is 'info'.

import http from 'node:http';
import type { CasAnswer, InstanceRead, InstanceRef, Outcome, RegistryClient, WriteAnswer } from './client.ts';
import { absentCodes, backupAddressesVia, outcomeOfCode } from './client.ts';
import { boundedRequest, HttpFailure } from '../test/support/http.ts';

/** assertLoopback refuses any address outside 127.0.0.0/8, and Nacos's default 127.0.0.1:8848. */
export function assertLoopback(addr: string): void {
  if (!/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}:\d{1,5}$/.test(addr) || addr === '127.0.0.1:8848') {
    throw new Error(`refusing to send traffic to ${addr}: the harness stays on its own loopback addresses`);
  }
}

/** HttpAnswer is a response: status, the Cairn-Error-Code header (or null), and the body. */
export interface HttpAnswer {
  readonly status: number;
  readonly code: string | null;
  readonly text: string;
}

/** HttpResult is an answer, or why none came and whether the request may have been sent. */
export type HttpResult = { readonly answer: HttpAnswer } | { readonly failure: string; readonly maybeSent: boolean };

/**
 * httpRequest sends one request to a member through boundedRequest (test/support/http.ts: connection, head and body
 * within `timeoutMs`, the body bounded) and never throws: it returns the answer or the failure.
 */
export async function httpRequest(addr: string, method: string, pathAndQuery: string, timeoutMs: number, headers: Readonly<Record<string, string>> = {}): Promise<HttpResult> {
  assertLoopback(addr);
  try {
    const answer = await boundedRequest(addr, method, pathAndQuery, { timeoutMs, headers });
    return { answer: { status: answer.status, code: answer.headers['cairn-error-code'] ?? null, text: answer.text } };
  } catch (error) {
    if (!(error instanceof HttpFailure)) throw error;
    if (error.reason === 'timeout') return { failure: 'timeout', maybeSent: true };
    return { failure: error.code === '' ? error.reason : error.code, maybeSent: error.reason !== 'refused' };
  }
}

/**
 * httpRequestFrom is httpRequest with the connection opened from the loopback address `source` (a fresh connection per
 * request, closed after it): jepsen-like D3 cuts the beating clients by their source address while the harness's other
 * traffic, which leaves from 127.0.0.1, goes on. Never throws; the outcomes are httpRequest's (a refused connection
 * is certainly not sent, a timeout or a broken connection may have been).
 */
export async function httpRequestFrom(source: string, addr: string, method: string, pathAndQuery: string, timeoutMs: number): Promise<HttpResult> {
  assertLoopback(addr);
  if (!/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(source)) throw new Error(`refusing to send traffic from ${source}: loopback only`);
  const colon = addr.lastIndexOf(':');
  return new Promise<HttpResult>((resolve) => {
    const request = http.request(
      { host: addr.slice(0, colon), port: Number(addr.slice(colon + 1)), method, path: pathAndQuery, localAddress: source, agent: false, signal: AbortSignal.timeout(timeoutMs), headers: { connection: 'close' } },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          const code = response.headers['cairn-error-code'];
          resolve({ answer: { status: response.statusCode ?? 0, code: typeof code === 'string' ? code : null, text: Buffer.concat(chunks).toString('utf8') } });
        });
        response.on('error', (error) => resolve(requestFailure(error)));
      },
    );
    request.on('error', (error) => resolve(requestFailure(error)));
    request.end();
  });
}

function requestFailure(error: Error): HttpResult {
  if (error.name === 'AbortError' || error.name === 'TimeoutError') return { failure: 'timeout', maybeSent: true };
  const code = (error as NodeJS.ErrnoException).code ?? '';
  return { failure: code === '' ? error.message : code, maybeSent: code !== 'ECONNREFUSED' };
}

function failureOutcome<T>(result: { readonly failure: string; readonly maybeSent: boolean }): Outcome<T> {
  return result.maybeSent ? { type: 'info', error: result.failure } : { type: 'fail', error: result.failure };
}

function instanceQuery(ref: InstanceRef): string {
  return `serviceName=${encodeURIComponent(ref.service)}&ip=${ref.ip}&port=${ref.port}`;
}

/** HttpRegistryClient is one member over HTTP. */
export class HttpRegistryClient implements RegistryClient {
  /** constructor targets the member at `addr` (host:port) with a per-request deadline. */
  constructor(
    private readonly addr: string,
    private readonly timeoutMs: number,
  ) {
    assertLoopback(addr);
  }

  /** register: POST /nacos/v1/ns/instance with ephemeral=false and the metadata as JSON. */
  async register(ref: InstanceRef, metadata: Readonly<Record<string, string>>, requestId: string): Promise<Outcome<WriteAnswer>> {
    const query = `${instanceQuery(ref)}&ephemeral=false&metadata=${encodeURIComponent(JSON.stringify(metadata))}`;
    const result = await httpRequest(this.addr, 'POST', `/nacos/v1/ns/instance?${query}`, this.timeoutMs, { 'Cairn-Request-Id': requestId });
    if (!('answer' in result)) return failureOutcome(result);
    const { answer } = result;
    if (answer.status === 200 && answer.text === 'ok') return { type: 'ok', value: {} };
    return outcomeOfCode(answer.code, `status ${answer.status}: ${answer.text.slice(0, 200)}`);
  }

  /** casMetadata: the Nacos HTTP API has no compare-and-set; nothing is sent, so the operation certainly failed. */
  casMetadata(): Promise<Outcome<CasAnswer>> {
    return Promise.resolve({ type: 'fail', error: 'no compare-and-set over the Nacos HTTP API (use gRPC)' });
  }

  /** deregister: DELETE /nacos/v1/ns/instance with ephemeral=false. */
  async deregister(ref: InstanceRef, requestId: string): Promise<Outcome<null>> {
    const result = await httpRequest(this.addr, 'DELETE', `/nacos/v1/ns/instance?${instanceQuery(ref)}&ephemeral=false`, this.timeoutMs, { 'Cairn-Request-Id': requestId });
    if (!('answer' in result)) return failureOutcome(result);
    const { answer } = result;
    if (answer.status === 200 && answer.text === 'ok') return { type: 'ok', value: null };
    return outcomeOfCode(answer.code, `status ${answer.status}: ${answer.text.slice(0, 200)}`);
  }

  /** getInstance: GET /nacos/v1/ns/instance with consistency=linearizable (no version in Nacos's shape); 404 with a not-found code is absent. */
  async getInstance(ref: InstanceRef): Promise<Outcome<InstanceRead | null>> {
    const result = await httpRequest(this.addr, 'GET', `/nacos/v1/ns/instance?${instanceQuery(ref)}&consistency=linearizable`, this.timeoutMs);
    if (!('answer' in result)) return failureOutcome(result);
    const { answer } = result;
    if (answer.status === 404 && answer.code !== null && absentCodes.has(answer.code)) return { type: 'ok', value: null };
    if (answer.status !== 200) return outcomeOfCode(answer.code, `status ${answer.status}: ${answer.text.slice(0, 200)}`);
    const body = JSON.parse(answer.text) as { metadata?: Record<string, string> };
    return { type: 'ok', value: { metadata: body.metadata ?? {} } };
  }

  /** listAddresses: GET /nacos/v1/ns/instance/list with consistency=linearizable. */
  async listAddresses(service: string): Promise<Outcome<string[]>> {
    const result = await httpRequest(this.addr, 'GET', `/nacos/v1/ns/instance/list?serviceName=${encodeURIComponent(service)}&consistency=linearizable`, this.timeoutMs);
    if (!('answer' in result)) return failureOutcome(result);
    const { answer } = result;
    if (answer.status !== 200) return outcomeOfCode(answer.code, `status ${answer.status}: ${answer.text.slice(0, 200)}`);
    const body = JSON.parse(answer.text) as { hosts?: { ip: string; port: number }[] };
    return { type: 'ok', value: (body.hosts ?? []).map((host) => `${host.ip}:${host.port}`) };
  }

  /** backupAddresses: a backup from the member's peer port (its HTTP port - 1000), read for the service. */
  backupAddresses(service: string): Promise<Outcome<string[]>> {
    const separator = this.addr.lastIndexOf(':');
    return backupAddressesVia(`${this.addr.slice(0, separator)}:${Number(this.addr.slice(separator + 1)) - 1000}`, service, this.timeoutMs);
  }

  /** close: boundedRequest pools its connections in one agent for the process; nothing to release per member. */
  close(): void {}
}

/** ClusterView is the body of GET /cairn/v1/cluster. */
export interface ClusterView {
  readonly leader: string | null;
  readonly term: number;
  readonly members: readonly { readonly addr: string; readonly role: string; readonly term: number | null; readonly commitIndex: number | null }[];
}

/** clusterView asks one member for its view of the cluster; null when it does not answer in time. */
export async function clusterView(addr: string, timeoutMs: number): Promise<ClusterView | null> {
  const result = await httpRequest(addr, 'GET', '/cairn/v1/cluster', timeoutMs);
  if (!('answer' in result) || result.answer.status !== 200) return null;
  try {
    return JSON.parse(result.answer.text) as ClusterView;
  } catch {
    return null;
  }
}

/** transferLeader asks `leaderAddr` to hand leadership to `to`; returns "ok" or the error. */
export async function transferLeader(leaderAddr: string, to: string, timeoutMs: number): Promise<string> {
  const result = await httpRequest(leaderAddr, 'POST', `/cairn/v1/cluster/transfer-leader?to=${encodeURIComponent(to)}`, timeoutMs);
  if (!('answer' in result)) return `no answer: ${result.failure}`;
  return result.answer.status === 200 ? 'ok' : `${result.answer.status} ${result.answer.code ?? ''} ${result.answer.text.slice(0, 200)}`;
}
