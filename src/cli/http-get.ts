// getJson: the CLI's HTTP GET of a member's JSON route (`cairn check`, `cairn status`).
//
// Not Node's global fetch: Node 20 bundles undici 6, whose first HTTP/1 connection in a process waits for the HTTP
// parser (WebAssembly, compiled lazily) before it listens to the socket. A member (or anything at that address) that
// accepts the connection and closes it at once closes it during that wait: the socket's 'close' is emitted before
// undici listens for it, and the request never settles. Only its AbortSignal timer was left, which is unref'd, so
// the process ran out of work and exited 0 with nothing printed (`cairn check` reported success that way). The undici
// package (7.x, also used by the HTTP prober) compiles its parser synchronously and listens to the socket in the
// callback of its 'connect' event, so the closed connection rejects the request ("other side closed").

import { Agent, request } from 'undici';

/** answerBytesMax bounds what the CLI reads of one answer: a digest, a checkpoint report or a cluster status is a few KiB. */
export const answerBytesMax = 1024 * 1024;

/** JsonAnswer is a member's answer: its HTTP status and its body parsed as JSON (null when the body is not JSON). */
export interface JsonAnswer {
  readonly status: number;
  readonly body: unknown;
}

/** agent is the CLI's own dispatcher, so the global one (which Node's fetch may have created, undici 6) is never used. */
let agent: Agent | null = null;

/**
 * getJson GETs `url` within `timeoutMs` (connection, headers and body) and resolves with its status and JSON body;
 * rejects when the member cannot be reached, closes the connection, answers too slowly or more than answerBytesMax.
 */
export async function getJson(url: string, timeoutMs: number): Promise<JsonAnswer> {
  agent ??= new Agent();
  const response = await request(url, {
    dispatcher: agent,
    method: 'GET',
    headers: { accept: 'application/json' },
    signal: AbortSignal.timeout(timeoutMs),
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
  });
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of response.body as AsyncIterable<Buffer>) {
    bytes += chunk.length;
    if (bytes > answerBytesMax) {
      response.body.destroy();
      throw new Error(`answered more than ${answerBytesMax} bytes`);
    }
    chunks.push(chunk);
  }
  let body: unknown = null;
  try {
    body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    body = null;
  }
  return { status: response.statusCode, body };
}
