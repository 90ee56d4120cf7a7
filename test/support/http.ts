// boundedRequest: the one HTTP client of the test harness, the jepsen-like harness and the bench's control calls; it
// always settles, within its deadline.
//
// Not Node's global fetch (undici 6 in Node 20): its first HTTP/1 connection in a process waits for the lazily
// compiled parser before it listens to the socket, so a peer that accepts and closes at once can leave the request
// pending forever; its default headers and body timeouts are five minutes; and its AbortSignal.timeout timer is
// unref'd, so a process with nothing else to do exits instead of failing (src/cli/http-get.ts tells the CLI's side).
// Here, through the undici 7 package:
// - the connection is bounded by the agent's connect timeout, the answer's head by headersTimeout and each gap in
//   its body by bodyTimeout;
// - the whole exchange by a deadline of our own (a referenced timer): when it passes, the request is aborted and the
//   promise rejects at once, whatever undici does;
// - the body by answerBytesMax (or the caller's bound), read and counted chunk by chunk.
// Every address must be loopback: nothing here ever sends traffic outside 127.0.0.0/8.

import assert from 'node:assert/strict';
import { Agent, request, type Dispatcher } from 'undici';

/**
 * answerBytesMax bounds the body read of one answer by default: the largest the harnesses read is an instance list
 * of instancesPerServiceMax (2000) instances or a member's /metrics, each well under 1 MiB; 16 MiB leaves room and
 * still keeps a runaway answer from filling the harness's memory.
 */
export const answerBytesMax = 16 * 1024 * 1024;

/** connectTimeoutMs bounds opening a connection: undici's default, the one Node's fetch applied before. */
export const connectTimeoutMs = 10_000;

/** assertLoopback refuses any address outside 127.0.0.0/8: the tests never send traffic elsewhere. */
export function assertLoopback(addr: string): void {
  if (!/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}(:\d{1,5})?$/.test(addr)) throw new Error(`refusing to send traffic to ${addr}: tests stay on 127.0.0.0/8`);
}

/** BoundedRequestOptions: the deadline of the whole exchange, the headers and body sent, the bound on the answer. */
export interface BoundedRequestOptions {
  readonly timeoutMs: number;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
  /** bodyBytesMax bounds the answer's body (default answerBytesMax); a longer one fails with reason 'too-large'. */
  readonly bodyBytesMax?: number;
}

/** BoundedAnswer is a response: its status, its headers (lower-case names, repeated ones joined by ", "), body, duration. */
export interface BoundedAnswer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly text: string;
  readonly ms: number;
}

/**
 * HttpFailureReason says why no whole answer came: the deadline (or a headers or body timeout) passed, the
 * connection was refused (nothing was sent), it broke, or the body was longer than allowed.
 */
export type HttpFailureReason = 'timeout' | 'refused' | 'network' | 'too-large';

/** HttpFailure is a request that got no whole answer; `code` is the socket's or undici's error code ('' if none). */
export class HttpFailure extends Error {
  override readonly name = 'HttpFailure';
  readonly reason: HttpFailureReason;
  readonly code: string;
  readonly ms: number;
  constructor(reason: HttpFailureReason, message: string, ms: number, code = '') {
    super(message);
    this.reason = reason;
    this.code = code;
    this.ms = ms;
  }
}

/** agent is the harnesses' own dispatcher (keep-alive pools per origin), so the global one is never used. */
let agent: Agent | null = null;

/** timeoutCodes are undici's own timeouts of the answer, which are the deadline's backstops. */
const timeoutCodes = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

function errorCode(error: unknown): string {
  for (const candidate of [error, error instanceof Error ? (error as Error & { cause?: unknown }).cause : undefined]) {
    if (candidate !== null && typeof candidate === 'object' && 'code' in candidate && typeof candidate.code === 'string') return candidate.code;
  }
  return '';
}

/** failureOf maps whatever the exchange threw to an HttpFailure naming the request. */
function failureOf(error: unknown, what: string, started: number): HttpFailure {
  if (error instanceof HttpFailure) return error;
  const ms = Date.now() - started;
  const code = errorCode(error);
  const message = error instanceof Error ? error.message : String(error);
  if (timeoutCodes.has(code)) return new HttpFailure('timeout', `${what}: ${message}`, ms, code);
  const reason: HttpFailureReason = code === 'ECONNREFUSED' ? 'refused' : 'network';
  return new HttpFailure(reason, `${what}: ${message}${code === '' || message.includes(code) ? '' : ` (${code})`}`, ms, code);
}

/** requestHeaders adds what Node's fetch added to a string body: a text/plain content type when none is given. */
function requestHeaders(options: BoundedRequestOptions): Record<string, string> {
  const headers: Record<string, string> = { ...options.headers };
  const typed = Object.keys(headers).some((name) => name.toLowerCase() === 'content-type');
  if (options.body !== undefined && !typed) headers['content-type'] = 'text/plain;charset=UTF-8';
  return headers;
}

function flatHeaders(raw: Readonly<Record<string, string | string[] | undefined>>): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(raw)) {
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return headers;
}

/** exchange sends the request and reads the whole answer, bounded in size; the caller bounds it in time. */
async function exchange(url: string, method: string, options: BoundedRequestOptions, signal: AbortSignal, what: string, started: number): Promise<BoundedAnswer> {
  agent ??= new Agent({ connect: { timeout: connectTimeoutMs } });
  const response = await request(url, {
    dispatcher: agent,
    method,
    headers: requestHeaders(options),
    signal,
    headersTimeout: options.timeoutMs,
    bodyTimeout: options.timeoutMs,
    ...(options.body === undefined ? {} : { body: options.body }),
  });
  const bytesMax = options.bodyBytesMax ?? answerBytesMax;
  const text = await readBody(response.body, bytesMax, () => new HttpFailure('too-large', `${what}: answered more than ${bytesMax} bytes`, Date.now() - started));
  return { status: response.statusCode, headers: flatHeaders(response.headers), text, ms: Date.now() - started };
}

/** readBody reads a whole body as UTF-8, or destroys it and throws `tooLarge()` once it passes `bytesMax`. */
async function readBody(body: Dispatcher.ResponseData['body'], bytesMax: number, tooLarge: () => HttpFailure): Promise<string> {
  const parts: Buffer[] = [];
  let length = 0;
  for await (const part of body as AsyncIterable<Buffer>) {
    length += part.length;
    if (length > bytesMax) {
      body.destroy();
      throw tooLarge();
    }
    parts.push(part);
  }
  return Buffer.concat(parts).toString('utf8');
}

/**
 * boundedRequest sends one request to `addr` (loopback host:port) and resolves with any answer, whatever its status,
 * once its body is read; it rejects with an HttpFailure when no whole answer came within `timeoutMs` (connection,
 * head and body together) or the body passed its bound, and with an Error for an address outside 127.0.0.0/8.
 */
export async function boundedRequest(addr: string, method: string, pathAndQuery: string, options: BoundedRequestOptions): Promise<BoundedAnswer> {
  assertLoopback(addr);
  assert.ok(Number.isFinite(options.timeoutMs) && options.timeoutMs > 0, `timeoutMs must be a positive number of milliseconds, got ${options.timeoutMs}`);
  const started = Date.now();
  const what = `${method} ${addr}${pathAndQuery}`;
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      const failure = new HttpFailure('timeout', `${what}: no answer within ${options.timeoutMs} ms`, Date.now() - started);
      reject(failure);
      controller.abort(failure);
    }, options.timeoutMs);
  });
  try {
    return await Promise.race([exchange(`http://${addr}${pathAndQuery}`, method, options, controller.signal, what, started), deadline]);
  } catch (error) {
    throw failureOf(error, what, started);
  } finally {
    clearTimeout(timer);
  }
}
