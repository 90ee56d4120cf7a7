// authorization: the one hook every HTTP route passes through (DESIGN.md, Security). Each route declares what it
// touches in its config (`access`); a route registered without one is a programmer error caught at start-up. The
// hook asks the member's Authorizer with (identity, namespace, resource, action); until authentication exists the
// identity is null and the authorizer allows everything. Nothing here ever trusts a client-controlled header
// (Nacos's `User-Agent: Nacos-Server` bypass, CVE-2021-29441, is the example of what not to do).

import type { FastifyInstance, FastifyRequest, RouteOptions } from 'fastify';
import { assert } from '../../assert.ts';
import { DEFAULT_GROUP, DEFAULT_NAMESPACE, groupedName, parseGroupedName } from '../../naming/model.ts';
import type { AuthorizationAction, AuthorizationRequest, Authorizer } from './deps.ts';
import { NacosParams } from './params.ts';

/** RouteResource is the kind of thing a route touches. */
export type RouteResource = 'naming' | 'cluster' | 'metrics' | 'health';

/** RouteAccess is what a route declares in its config: the resource kind and whether it reads or writes. */
export interface RouteAccess {
  readonly resource: RouteResource;
  readonly action: AuthorizationAction;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** access is what the route touches, for the authorization hook; every route must declare it. */
    access?: RouteAccess;
  }
}

const paramsCache = new WeakMap<FastifyRequest, NacosParams>();

/** paramsOf returns the request's Nacos parameters (query string, then body), parsed once per request. */
export function paramsOf(request: FastifyRequest): NacosParams {
  let params = paramsCache.get(request);
  if (params === undefined) {
    params = NacosParams.from(request.query, request.body);
    paramsCache.set(request, params);
  }
  return params;
}

/**
 * namingResource names the service a naming request touches as the naming layer's hook does, `<group>@@<service>`,
 * or `*` when the request names none (a listing of the namespace). A malformed name falls back to `*`: the route
 * refuses the same name, so nothing is done on the strength of this answer.
 */
function namingResource(params: NacosParams): string {
  const name = params.optional('serviceName', 'dom');
  if (name === undefined) return '*';
  try {
    const { group, service } = parseGroupedName(name, params.optional('groupName') ?? DEFAULT_GROUP);
    return groupedName(group, service);
  } catch {
    return '*';
  }
}

/** authorizationRequestOf describes a request for the Authorizer. */
export function authorizationRequestOf(request: FastifyRequest, access: RouteAccess): AuthorizationRequest {
  const params = paramsOf(request);
  const namespace = params.optional('namespaceId') ?? DEFAULT_NAMESPACE;
  const resource = access.resource === 'naming' ? namingResource(params) : access.resource;
  return { identity: null, namespace, resource, action: access.action };
}

/**
 * installAuthorization adds the authorization hook and the start-up check that every route declares its access.
 * It must run before any route is registered.
 */
export function installAuthorization(app: FastifyInstance, authorize: Authorizer): void {
  app.addHook('onRoute', (route: RouteOptions) => {
    assert(route.config?.access !== undefined, `route ${String(route.method)} ${route.url} declares no access for authorization`);
  });
  app.addHook('preHandler', async (request: FastifyRequest) => {
    const access = request.routeOptions.config.access;
    // Only the not-found handler has no access: it answers 501 and touches nothing.
    if (access === undefined) return;
    await authorize(authorizationRequestOf(request, access));
  });
}
