// app: buildApp() assembles the member's HTTP API on fastify, kept apart from listen() so tests drive it with
// inject() (fastify's testing guide) and the composition root decides where it listens.
//
// Layers, in request order: body parsing (form, JSON, anything else ignored; bodies over limits.requestBodyBytesMax
// refused before parsing) -> routing (a miss is Nacos's 501 `no such api`) -> the one authorization hook -> the
// route plugin -> the error shapes of errors.ts. Every answered request is logged in one line (pino, with secrets
// redacted from the URL and the URL cut at limits.logUrlCharsMax): at debug when it succeeded, info when refused
// (4xx), warn when it failed (5xx) but at debug for a 503 with a retryable code (the member's own state: no leader,
// stalled, starting; it logs that once itself), so a member at its default level (info) writes no line per beat or
// list while every refusal stays visible; and every one is observed in the latency histogram. While the server closes, a
// request on a kept-alive connection is answered CAIRN_SHUTTING_DOWN (fastify's own 503 carried no code).

import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import { CairnError, errorCatalog, isCairnErrorCode } from '../../errors.ts';
import { limits } from '../../limits.ts';
import { installAuthorization } from './authorization.ts';
import { cairnRoutes } from './cairn.ts';
import { catalogRoutes } from './catalog.ts';
import { clusterRoutes } from './cluster.ts';
import { consoleRoutes } from './console.ts';
import { allowAll, type HttpDeps } from './deps.ts';
import { clientErrorAnswer, errorCodeHeader, sendError, sendNoSuchApi } from './errors.ts';
import { healthRoutes } from './health.ts';
import { instanceRoutes } from './instance.ts';
import { metricsRoutes, observeRequests } from './metrics.ts';
import { operatorRoutes } from './operator.ts';
import { requestIdHeaders } from './params.ts';
import { serviceRoutes } from './service.ts';

/** requestIdResponseHeader echoes the request's id (the client's own when it sent one) on every answer. */
export const requestIdResponseHeader = 'cairn-request-id';

/** secretParams are the query parameters whose values never reach a log line (passwords, tokens, MySQL checker JSON). */
export const secretParams: ReadonlySet<string> = new Set(['password', 'accesstoken', 'healthchecker', 'signature', 'sk', 'token']);

/** redactUrl replaces the values of secret query parameters with `[redacted]`, so URLs can be logged. */
export function redactUrl(url: string): string {
  const at = url.indexOf('?');
  if (at < 0) return url;
  const query = url.slice(at + 1).split('&').map((pair) => {
    const eq = pair.indexOf('=');
    const name = eq < 0 ? pair : pair.slice(0, eq);
    let decoded = name;
    try {
      decoded = decodeURIComponent(name.replace(/\+/g, ' '));
    } catch {
      // An undecodable name is logged as sent; it cannot match a secret's name anyway.
    }
    return secretParams.has(decoded.toLowerCase()) ? `${name}=[redacted]` : pair;
  });
  return `${url.slice(0, at)}?${query.join('&')}`;
}

/** logUrl is a URL as logged: secrets redacted, cut at limits.logUrlCharsMax with the count of what was cut. */
export function logUrl(url: string): string {
  const redacted = redactUrl(url);
  const max = limits.logUrlCharsMax;
  return redacted.length <= max ? redacted : `${redacted.slice(0, max)}...[${redacted.length - max} more chars]`;
}

/** requestLogFields is what a request log line says about the request: never its body, never a secret. */
function requestLogFields(request: FastifyRequest): Record<string, unknown> {
  return { method: request.method, url: logUrl(request.url), remoteAddress: request.ip };
}

/**
 * retryableRefusal tells a 503 whose code is retryable (no leader or quorum, a member stalled, starting or behind,
 * shutting down): the member's state, which it logs itself once as it changes. At warn, one line per request flooded
 * the log while it lasted (an audit: every refused read of a starting member).
 */
function retryableRefusal(code: unknown): boolean {
  return typeof code === 'string' && isCairnErrorCode(code) && errorCatalog[code].retryable;
}

/** installAccessLog logs one line per answered request, at a level by its status (see the file comment). */
function installAccessLog(app: FastifyInstance): void {
  app.addHook('onResponse', async (request, reply) => {
    const status = reply.statusCode;
    const level = status === 503 && retryableRefusal(reply.getHeader(errorCodeHeader)) ? 'debug' : status >= 500 ? 'warn' : status >= 400 ? 'info' : 'debug';
    // pino's check; a logger without one (tests' silent logger) takes every call and drops it itself.
    const isLevelEnabled = (request.log as { isLevelEnabled?: (name: string) => boolean }).isLevelEnabled;
    if (isLevelEnabled !== undefined && !isLevelEnabled.call(request.log, level)) return;
    request.log[level]({ req: request, status, ms: Math.round(reply.elapsedTime * 10) / 10 }, 'request answered');
  });
}

function loggerOptions(logger: FastifyBaseLogger | boolean | undefined): Pick<FastifyServerOptions, 'logger' | 'loggerInstance'> {
  const serializers = { req: requestLogFields };
  if (logger === undefined || logger === false) return { logger: false };
  if (logger === true) return { logger: { level: 'info', serializers } };
  return { loggerInstance: logger.child({ component: 'http' }, { serializers }) };
}

/**
 * requestIdOfRaw picks the client's request id for logs and the echoed header when it is well-formed (the route
 * refuses a malformed one), else a fresh one; it never throws.
 */
function requestIdOfRaw(request: IncomingMessage): string {
  for (const name of requestIdHeaders) {
    const value = request.headers[name];
    if (typeof value === 'string' && value.length <= limits.requestIdCharsMax && /^[\x21-\x7e]+$/.test(value)) return value;
  }
  return randomUUID();
}

/** formFields reads an application/x-www-form-urlencoded body into an object of first values per name. */
function formFields(body: string): Record<string, string> {
  const fields = new Map<string, string>();
  for (const [name, value] of new URLSearchParams(body)) if (!fields.has(name)) fields.set(name, value);
  return Object.fromEntries(fields);
}

/** jsonDepthOf is the deepest nesting of objects and arrays in valid JSON text, found without recursion. */
export function jsonDepthOf(text: string): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let at = 0; at < text.length; at++) {
    const char = text[at];
    if (inString) {
      if (char === '\\') at++;
      else if (char === '"') inString = false;
    } else if (char === '"') {
      inString = true;
    } else if (char === '{' || char === '[') {
      depth++;
      deepest = Math.max(deepest, depth);
    } else if (char === '}' || char === ']') {
      depth--;
    }
  }
  return deepest;
}

/**
 * jsonFields reads a JSON body, which must be an object nested at most limits.requestJsonDepthMax deep (a deeper one
 * would overflow the stack of every recursive walk over it); an empty body is no parameters.
 */
function jsonFields(body: string): Record<string, unknown> {
  if (body.trim() === '') return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    throw new CairnError('CAIRN_INVALID_ARGUMENT', 'the request body is not valid JSON.');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new CairnError('CAIRN_INVALID_ARGUMENT', 'a JSON request body must be an object of parameters.');
  }
  if (jsonDepthOf(body) > limits.requestJsonDepthMax) {
    throw new CairnError('CAIRN_INVALID_ARGUMENT', `the JSON request body nests deeper than ${limits.requestJsonDepthMax} levels.`);
  }
  return parsed as Record<string, unknown>;
}

/**
 * installBodyParsers accepts parameters in form bodies (what curl -d and Nacos's Java client send) and JSON bodies.
 * Any other body is read (within the limit) and ignored, as a servlet ignores a body it cannot read parameters from.
 */
function installBodyParsers(app: FastifyInstance): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, async (_request: FastifyRequest, body: string) => formFields(body));
  app.addContentTypeParser('application/json', { parseAs: 'string' }, async (_request: FastifyRequest, body: string) => jsonFields(body));
  app.addContentTypeParser('*', { parseAs: 'string' }, async () => undefined);
}

/** buildApp builds the member's HTTP API; the caller listens (or injects) and closes it. */
export function buildApp(deps: HttpDeps): FastifyInstance {
  const app = Fastify({
    ...loggerOptions(deps.logger),
    bodyLimit: limits.requestBodyBytesMax,
    routerOptions: { ignoreTrailingSlash: true },
    requestIdHeader: false,
    genReqId: requestIdOfRaw,
    // One line per request, by installAccessLog, instead of fastify's two at info ("incoming request", "request
    // completed"): at a few thousand beats a second those were most of a member's log and its URLs were unbounded.
    logController: new LogController({ disableRequestLogging: true }),
    // Requests while closing get CAIRN_SHUTTING_DOWN from the hook below, not fastify's uncoded 503.
    return503OnClosing: false,
    // A request must arrive whole within requestReceiveMsMax of its start (limits.ts): one delayed in the network is
    // refused with 408 and its connection closed, not applied long after its client gave up. Node checks every
    // httpConnectionsCheckMs; its own defaults (60 s for the headers, checked every 30 s) let a beat land a minute late.
    serverFactory: (handler) => {
      const receiveMs = deps.requestReceiveMs ?? limits.requestReceiveMsMax;
      const server = createServer({ headersTimeout: receiveMs, requestTimeout: receiveMs, connectionsCheckingInterval: deps.connectionsCheckMs ?? limits.httpConnectionsCheckMs }, handler);
      // An `Expect` other than 100-continue is served as if absent (RFC 9110 §10.1.1 lets a server ignore it), not
      // answered with Node's bare 417, which carries no error code.
      server.on('checkExpectation', handler);
      server.maxConnections = deps.connectionsMax ?? limits.httpConnectionsMax;
      return server;
    },
    // Requests Node's parser refuses (malformed HTTP) get a catalog code too, in Cairn's shape (errors.ts).
    clientErrorHandler: (error, socket) => {
      if (socket.destroyed) return;
      if (error.code === 'ECONNRESET' || !socket.writable) socket.destroy();
      else socket.end(clientErrorAnswer(error));
    },
    // Refusals before routing (a malformed URL) take the same shapes as every other error.
    frameworkErrors: (error, request, reply) => {
      sendError(error, request, reply);
    },
  });
  installBodyParsers(app);
  installAccessLog(app);
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onRequest', async () => {
    if (closing) throw new CairnError('CAIRN_SHUTTING_DOWN', 'the member is shutting down; send the request to another member');
  });
  app.setErrorHandler((error, request, reply) => sendError(error, request, reply));
  app.setNotFoundHandler((request, reply) => sendNoSuchApi(request, reply));
  const stall = deps.stall;
  if (stall !== undefined) {
    // The stall fence (src/stall.ts) looks at a write when its headers are read, before its body is parsed: what
    // queued in the socket while the member stood still is read in the first loop turns after it resumes.
    app.addHook('onRequest', async (request) => {
      if (request.method !== 'GET' && request.method !== 'HEAD') stall.fenceWrite('http');
      // Reads of the registry too (a stale list is what a stall would hand out); not the probes, metrics or status.
      else if (request.url.startsWith('/nacos/') && !request.url.startsWith('/nacos/v1/console/') && !request.url.startsWith('/nacos/v2/console/')) stall.fenceRead?.('http');
    });
  }
  installAuthorization(app, deps.authorize ?? allowAll);
  observeRequests(app, deps.metrics);
  app.addHook('onSend', async (request, reply) => {
    reply.header(requestIdResponseHeader, request.id);
  });
  const options = { deps };
  app.register(instanceRoutes, options);
  app.register(serviceRoutes, options);
  app.register(clusterRoutes, options);
  app.register(healthRoutes, options);
  app.register(catalogRoutes, options);
  app.register(operatorRoutes, options);
  app.register(cairnRoutes, options);
  app.register(consoleRoutes, options);
  app.register(metricsRoutes, { registry: deps.metrics });
  return app;
}
