// request-context: what every call into the naming layer carries from the HTTP request, and the small reply helpers
// the Nacos route plugins share.

import type { FastifyReply, FastifyRequest } from 'fastify';
import type { HttpDeps } from './deps.ts';
import type { ReadOptions, RequestContext } from '../../naming/naming-service.ts';
import { v2Success } from './errors.ts';
import { consistencyOf, requestIdOf, type NacosParams } from './params.ts';

/** RoutePluginOptions is what every route plugin is registered with. */
export interface RoutePluginOptions {
  readonly deps: HttpDeps;
}

/**
 * requestContextOf is the naming layer's context of a request: no identity while authentication is off (never one
 * taken from a client header), and the client's request id (Cairn-Request-Id or Nacos's RequestId), so a resent
 * write is recognised and applied once.
 */
export function requestContextOf(request: FastifyRequest): RequestContext {
  const requestId = requestIdOf(request.headers);
  return requestId === undefined ? { identity: null } : { identity: null, requestId };
}

/** readOptionsOf is a read's consistency: `consistency=linearizable` goes through ReadIndex; default local, as Nacos. */
export function readOptionsOf(params: NacosParams): ReadOptions {
  return { consistency: consistencyOf(params) };
}

/** replyOk answers a successful Nacos write: the plain-text `ok` of v1, the `{code:0, data:"ok"}` envelope of v2. */
export function replyOk(reply: FastifyReply, version: 'v1' | 'v2'): FastifyReply {
  if (version === 'v2') return reply.send(v2Success('ok'));
  return reply.type('text/plain; charset=utf-8').send('ok');
}

/** replyData answers a Nacos read: the body itself in v1, wrapped in the envelope in v2. */
export function replyData(reply: FastifyReply, version: 'v1' | 'v2', data: unknown): FastifyReply {
  return reply.send(version === 'v2' ? v2Success(data) : data);
}

/** nacosVersions are the two Nacos API versions every naming route is served under, with their path prefixes. */
export const nacosVersions = [
  { version: 'v1', prefix: '/nacos/v1/ns' },
  { version: 'v2', prefix: '/nacos/v2/ns' },
] as const;
