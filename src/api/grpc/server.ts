// server: Cairn's client gRPC port (DESIGN.md "gRPC on port + 1000"): the cairn.naming.v1.Naming service, the
// standard grpc.health.v1.Health service and server reflection (v1 and v1alpha, so grpcurl works without .proto
// files). buildGrpcServer() builds the server and listenGrpcServer() binds it, apart, so tests bind their own
// loopback address and the composition root (src/member.ts) binds the member's.
//
// Every call is bounded: request and response sizes (bounds.ts), concurrent calls per connection, and time. A
// client's deadline becomes the NamingService's RequestContext.timeoutMs, capped by limits.requestTimeoutMs, so a
// member that cannot reach a majority answers UNAVAILABLE (CAIRN_NO_QUORUM) inside the client's deadline when it
// can, and never waits longer than the member's own bound; grpc-js itself ends a call whose deadline passes.
// Errors leave as described in errors.ts; the method handlers are in naming-handlers.ts.
//
// Open connections are bounded too (limits.grpcConnectionsMax): the server listens through a net.Server of its own
// (src/replica/capped-grpc-server.ts) that closes a connection beyond the bound at once, counts it in
// cairn_grpc_connections_refused_total and logs it at warn, at most once per limits.connectionRefusalLogIntervalMs.

import {
  Server,
  status as grpcStatus,
  type Deadline,
  type ServerUnaryCall,
  type UntypedServiceImplementation,
  type sendUnaryData,
} from '@grpc/grpc-js';
import type { ServiceDefinition } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { Counter, type Registry } from 'prom-client';
import { assert } from '../../assert.ts';
import { CairnError } from '../../errors.ts';
import { limits } from '../../limits.ts';
import type { NamingService } from '../../naming/naming-service.ts';
import { CappedGrpcServer } from '../../replica/capped-grpc-server.ts';
import { grpcResponseBytesMax, servicesPageSizeMax } from './bounds.ts';
import { statusOfError, toCairnError } from './errors.ts';
import { Fields } from './fields.ts';
import { HealthService } from './health.ts';
import { encodeListInstancesResponse, instanceResponseSerializer, type ListInstancesResponseMessage } from './list-encoding.ts';
import { namingHandlers, type CallBudget, type NamingMethod, type UnaryHandler } from './naming-handlers.ts';
import { serveSession } from './session.ts';
import { serveSubscribe } from './subscribe.ts';
import type { SubscriptionHub } from '../../naming/subscriptions.ts';
import { healthServiceName, loadClientApiDefinition, namingServiceName, serviceDefinitionOf } from './proto.ts';
import { requestTypeOf, wireProblem } from './wire-check.ts';
import type { WriteFence } from '../../stall.ts';

/**
 * GrpcLogger is the part of the member's pino logger the server uses: unexpected failures are logged as errors,
 * connections refused beyond grpcConnectionsMax as warnings (when it has `warn`).
 */
export interface GrpcLogger {
  error(fields: Record<string, unknown>, message: string): void;
  warn?(fields: Record<string, unknown>, message: string): void;
}

/** GrpcDeps is everything buildGrpcServer() needs from the member. */
export interface GrpcDeps {
  /** naming is the registry façade every Naming method calls. */
  readonly naming: NamingService;
  /** ready tells whether the member serves clients: the health service answers SERVING only then. */
  readonly ready: () => boolean;
  /** logger receives unexpected failures (CAIRN_INTERNAL, CAIRN_STORAGE_CORRUPT); default: none. */
  readonly logger?: GrpcLogger;
  /** now is the wall clock in ms, against which client deadlines are measured; default Date.now. */
  readonly now?: () => number;
  /** stall is the member's stall fence (src/stall.ts): writes read as the member resumes from a stall are refused. */
  readonly stall?: WriteFence;
  /** subscriptions is the member's subscription hub; without it Subscribe answers UNIMPLEMENTED. */
  readonly subscriptions?: SubscriptionHub;
  /** subscribeCatchUpMs bounds a resumed Subscribe's wait for min_applied_index (default limits.subscribeCatchUpMsMax; tests shorten it). */
  readonly subscribeCatchUpMs?: number;
  /** subscribeCatchUpWaitersMax bounds the resumed Subscribes waiting at once (default limits.subscribeCatchUpWaitersMax; tests lower it). */
  readonly subscribeCatchUpWaitersMax?: number;
  /** connectionsMax bounds the open connections to the port (default limits.grpcConnectionsMax; tests lower it). */
  readonly connectionsMax?: number;
  /** metrics is the member's Prometheus registry; cairn_grpc_connections_refused_total is added to it. */
  readonly metrics?: Registry;
}

/** connectionsRefusedMetric counts the connections to the client gRPC port closed at once beyond grpcConnectionsMax. */
export const connectionsRefusedMetric = 'cairn_grpc_connections_refused_total';

/** connectionsRefusedCounter returns the registry's refused-connections counter, creating it once (servers may share a registry). */
function connectionsRefusedCounter(registry: Registry): Counter {
  const existing = registry.getSingleMetric(connectionsRefusedMetric);
  if (existing instanceof Counter) return existing;
  return new Counter({
    name: connectionsRefusedMetric,
    help: 'Connections to the client gRPC port closed at once because grpcConnectionsMax connections were open.',
    registers: [registry],
  });
}

/** UndecodableRequest stands for a request that is not a valid protobuf message of its method's type. */
class UndecodableRequest {
  constructor(readonly reason: string) {}
}

/**
 * decodingTolerant returns a copy of a service definition whose request decoders never throw: grpc-js would answer
 * an undecodable request with INTERNAL, although the fault is the client's; the handler answers INVALID_ARGUMENT.
 * The bytes are checked first (wire-check.ts): the loader's decoder would read a truncated string, a string in
 * invalid UTF-8 or a field of the wrong wire type as some other request instead of failing.
 */
function decodingTolerant(definition: ServiceDefinition, serviceName: string): ServiceDefinition {
  const tolerant: ServiceDefinition = {};
  for (const [method, methodDefinition] of Object.entries(definition)) {
    const requestType = requestTypeOf(serviceName, method);
    assert(requestType !== null, `${serviceName}/${method} has no request type in the client API's .proto files`);
    tolerant[method] = {
      ...methodDefinition,
      requestDeserialize: (bytes: Buffer): object => {
        const problem = wireProblem(requestType, bytes);
        if (problem !== null) return new UndecodableRequest(problem);
        try {
          return methodDefinition.requestDeserialize(bytes);
        } catch (error) {
          return new UndecodableRequest(error instanceof Error ? error.message : String(error));
        }
      },
    };
  }
  return tolerant;
}

/**
 * withListEncoding returns a copy of the Naming definition whose ListInstances responses, and the responses carrying
 * one instance, are encoded by list-encoding.ts (same bytes as proto-loader's serializer, without converting every
 * instance into a message object on every call).
 */
function withListEncoding(definition: ServiceDefinition): ServiceDefinition {
  const encoded: ServiceDefinition = { ...definition };
  const list = definition['ListInstances'];
  if (list !== undefined) {
    encoded['ListInstances'] = { ...list, responseSerialize: (response: object) => encodeListInstancesResponse(response as ListInstancesResponseMessage) };
  }
  // The responses that carry one Instance write it without proto-loader's per-call message object (the same bytes).
  for (const [method, type] of [['RegisterInstance', 'RegisterInstanceResponse'], ['UpdateInstance', 'UpdateInstanceResponse'], ['GetInstance', 'GetInstanceResponse']] as const) {
    const original = definition[method];
    if (original === undefined) continue;
    const serialize = instanceResponseSerializer(`cairn.naming.v1.${type}`, (value) => original.responseSerialize(value));
    if (serialize !== null) encoded[method] = { ...original, responseSerialize: serialize };
  }
  return encoded;
}

/**
 * callBudget turns a call's deadline into how long it may wait: 'expired', or a timeout capped by `capMs` (undefined:
 * none set). The timeout ends limits.grpcAnswerMarginMs before the deadline (half the time left when less remains),
 * so that the member's coded answer (CAIRN_NO_QUORUM: certainly not written; CAIRN_OUTCOME_UNKNOWN) reaches the
 * client before the client's own deadline fires with a bare DEADLINE_EXCEEDED, which says neither.
 */
export function callBudget(deadline: Deadline, nowMs: number, capMs: number, marginMs = limits.grpcAnswerMarginMs): CallBudget | 'expired' {
  const at = deadline instanceof Date ? deadline.getTime() : deadline;
  if (!Number.isFinite(at)) return { timeoutMs: undefined };
  const remainingMs = Math.floor(at - nowMs);
  if (remainingMs <= 0) return 'expired';
  const answerBy = remainingMs > 2 * marginMs ? remainingMs - marginMs : Math.max(1, Math.floor(remainingMs / 2));
  return { timeoutMs: Math.min(answerBy, capMs) };
}

/** decodedFields wraps a decoded request in Fields, or throws CAIRN_INVALID_ARGUMENT for an undecodable one. */
function decodedFields(request: unknown): Fields {
  if (request instanceof UndecodableRequest) throw new CairnError('CAIRN_INVALID_ARGUMENT', `the request is not a valid message: ${request.reason}`);
  return Fields.of(request);
}

function serveUnary(handler: UnaryHandler, request: unknown, budget: CallBudget): Promise<object> {
  if (request instanceof UndecodableRequest) {
    return Promise.reject(new CairnError('CAIRN_INVALID_ARGUMENT', `the request is not a valid message: ${request.reason}`));
  }
  try {
    return handler(Fields.of(request), budget);
  } catch (error) {
    return Promise.reject(error);
  }
}

function answerError(error: unknown, method: string, logger: GrpcLogger | undefined): ReturnType<typeof statusOfError> {
  const cairnError = toCairnError(error);
  if (cairnError.code === 'CAIRN_INTERNAL' || cairnError.code === 'CAIRN_STORAGE_CORRUPT') {
    logger?.error({ err: error, method: `${namingServiceName}/${method}` }, 'grpc call failed');
  }
  return statusOfError(cairnError);
}

/** writeMethods are the unary Naming methods that write: the stall fence looks at them (src/stall.ts). */
const writeMethods: ReadonlySet<string> = new Set<NamingMethod>([
  'RegisterInstance', 'DeregisterInstance', 'UpdateInstance', 'CreateService', 'UpdateService', 'DeleteService', 'SetClusterHealthChecker',
]);

/** unary adapts one UnaryHandler to grpc-js: deadline to budget, stall fence (writes and reads), handler, response or error status. */
function unary(method: string, handler: UnaryHandler, deps: GrpcDeps): (call: ServerUnaryCall<unknown, object>, callback: sendUnaryData<object>) => void {
  const now = deps.now ?? Date.now;
  const fenced = writeMethods.has(method);
  return (call, callback) => {
    const budget = callBudget(call.getDeadline(), now(), limits.requestTimeoutMs);
    if (budget === 'expired') {
      callback({ code: grpcStatus.DEADLINE_EXCEEDED, details: 'the deadline passed before the call was served; nothing was done' });
      return;
    }
    if (deps.stall !== undefined) {
      try {
        // Writes, and reads too: a read's answer would come from the state the member stood still with.
        if (fenced) deps.stall.fenceWrite('grpc');
        else deps.stall.fenceRead?.('grpc');
      } catch (error) {
        callback(answerError(error, method, deps.logger));
        return;
      }
    }
    serveUnary(handler, call.request, budget).then(
      (response) => callback(null, response),
      (error: unknown) => callback(answerError(error, method, deps.logger)),
    );
  };
}

/** notYetServed answers a streaming method that arrives with a later issue: UNIMPLEMENTED with CAIRN_NOT_IMPLEMENTED. */
function notYetServed(detail: string): (call: { emit(event: 'error', error: unknown): boolean }) => void {
  return (call) => {
    call.emit('error', statusOfError(new CairnError('CAIRN_NOT_IMPLEMENTED', detail)));
  };
}

function namingImplementation(deps: GrpcDeps): UntypedServiceImplementation {
  const implementation: UntypedServiceImplementation = {
    Subscribe: deps.subscriptions === undefined
      ? notYetServed('this server was built without a subscription hub; poll ListInstances (revision, checksum) instead')
      : serveSubscribe(deps.naming, deps.subscriptions, decodedFields, deps.logger, deps.subscribeCatchUpMs, deps.subscribeCatchUpWaitersMax),
    Session: serveSession(deps.naming, decodedFields, deps.logger, deps.stall),
  };
  for (const [method, handler] of Object.entries(namingHandlers(deps.naming, servicesPageSizeMax(limits)))) {
    implementation[method] = unary(method, handler, deps);
  }
  return implementation;
}

// The health service of each server, so shutdownGrpcServer can end its Watch streams.
const healthServices = new WeakMap<Server, HealthService>();

/** namingServiceDefinition is the Naming service as the server registers it: its own serializers, tolerant decoders. */
export function namingServiceDefinition(): ServiceDefinition {
  return decodingTolerant(withListEncoding(serviceDefinitionOf(namingServiceName)), namingServiceName);
}

/** buildGrpcServer builds the client gRPC server (Naming, Health, reflection), not yet bound: see listenGrpcServer. */
export function buildGrpcServer(deps: GrpcDeps): Server {
  const refused = deps.metrics === undefined ? undefined : connectionsRefusedCounter(deps.metrics);
  const logger = deps.logger;
  const server = new CappedGrpcServer({
    'grpc.max_receive_message_length': limits.requestBodyBytesMax,
    'grpc.max_send_message_length': grpcResponseBytesMax(limits),
    'grpc.max_concurrent_streams': limits.grpcStreamsPerConnectionMax,
    // channelz (grpc-js's introspection, which Cairn does not serve) would time-stamp and count every call.
    'grpc.enable_channelz': 0,
  }, {
    listener: 'gRPC',
    connectionsMax: deps.connectionsMax ?? limits.grpcConnectionsMax,
    refusalLogIntervalMs: limits.connectionRefusalLogIntervalMs,
    ...(refused === undefined ? {} : { onRefused: () => refused.inc() }),
    ...(logger?.warn === undefined ? {} : { logger: { warn: (fields: object, message: string) => logger.warn?.({ ...fields }, message) } }),
  });
  server.addService(namingServiceDefinition(), namingImplementation(deps));
  const health = new HealthService(deps.ready);
  server.addService(decodingTolerant(serviceDefinitionOf(healthServiceName), healthServiceName), health.implementation());
  healthServices.set(server, health);
  new ReflectionService(loadClientApiDefinition()).addToServer(server);
  return server;
}

/**
 * listenGrpcServer binds a server of buildGrpcServer() to host:port (port 0: any free port) and resolves with the
 * bound port; at most `connectionsMax` connections are open at once (see the file comment). A failure to bind rejects
 * with grpc-js's text and the system's reason, as bindAsync did.
 */
export function listenGrpcServer(server: Server, host: string, port: number): Promise<number> {
  assert(server instanceof CappedGrpcServer, 'listenGrpcServer: the server was not built by buildGrpcServer');
  return server.listenCapped(host, port);
}

/**
 * shutdownGrpcServer stops accepting connections and calls (the port is released at once), ends the health Watch
 * streams, lets calls in flight finish for up to `graceMs`, then cancels whatever is left.
 */
export function shutdownGrpcServer(server: Server, graceMs: number): Promise<void> {
  healthServices.get(server)?.close();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, graceMs);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
