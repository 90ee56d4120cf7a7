// naming-handlers: the unary methods of cairn.naming.v1.Naming as thin adapters: read the request (requests.ts),
// call the NamingService, render the answer (messages.ts). Everything else (deadlines, errors, the streams that
// are not served yet) is the server's (server.ts), so each handler here is one line of intent.

import type { NamingService, RequestContext } from '../../naming/naming-service.ts';
import type { Fields } from './fields.ts';
import type { ListInstancesResponseMessage } from './list-encoding.ts';
import { clusterMessage, instanceMessage, serviceMessage } from './messages.ts';
import {
  clusterSpecOf,
  consistencyOf,
  deregisterInputOf,
  instanceAddressOf,
  instancePatchOf,
  instanceSpecOf,
  listInstancesQueryOf,
  listServicesQueryOf,
  requestIdOf,
  serviceKeyOf,
  serviceSpecOf,
  serviceUpdateOf,
} from './requests.ts';

/** CallBudget is how long a call may wait for Raft: the client's remaining deadline, capped by the member's bound. */
export interface CallBudget {
  /** timeoutMs is undefined when the client set no deadline (the NamingService's default bound applies). */
  readonly timeoutMs: number | undefined;
}

/** UnaryHandler serves one unary method: a decoded request in, a response message out (or a thrown error). */
export type UnaryHandler = (request: Fields, budget: CallBudget) => Promise<object>;

/** NamingMethod names every unary method of the Naming service. */
export type NamingMethod =
  | 'RegisterInstance'
  | 'DeregisterInstance'
  | 'UpdateInstance'
  | 'GetInstance'
  | 'ListInstances'
  | 'CreateService'
  | 'UpdateService'
  | 'DeleteService'
  | 'GetService'
  | 'ListServices'
  | 'SetClusterHealthChecker';

/** readContext is the context of a read: no identity while authentication is off, and the call's budget. */
function readContext(budget: CallBudget): RequestContext {
  return budget.timeoutMs === undefined ? { identity: null } : { identity: null, timeoutMs: budget.timeoutMs };
}

/** writeContext adds the write's request id, so a resent write is recognised and applied once. */
function writeContext(request: Fields, budget: CallBudget): RequestContext {
  const requestId = requestIdOf(request);
  return requestId === undefined ? readContext(budget) : { ...readContext(budget), requestId };
}

/** namingHandlers returns the handler of every unary Naming method; `servicesPageSizeMax` bounds a ListServices page. */
export function namingHandlers(naming: NamingService, servicesPageSizeMax: number): Readonly<Record<NamingMethod, UnaryHandler>> {
  return {
    RegisterInstance: async (request, budget) => {
      const result = await naming.registerInstance(writeContext(request, budget), instanceSpecOf(request));
      return { instance: instanceMessage(result.instance), revision: result.revision };
    },
    DeregisterInstance: async (request, budget) => naming.deregisterInstance(writeContext(request, budget), deregisterInputOf(request)),
    UpdateInstance: async (request, budget) => {
      const result = await naming.patchInstance(writeContext(request, budget), instancePatchOf(request));
      return { instance: instanceMessage(result.instance), revision: result.revision };
    },
    GetInstance: async (request, budget) => {
      const instance = await naming.getInstance(readContext(budget), instanceAddressOf(request), { consistency: consistencyOf(request) });
      return { instance: instanceMessage(instance) };
    },
    ListInstances: async (request, budget) => {
      const list = await naming.listInstances(readContext(budget), listInstancesQueryOf(request));
      // The hosts go out as they are (an Instance has exactly InstanceMessage's fields): the memoized list's frozen
      // array is what list-encoding.ts keeps the encoded instances for.
      const response: ListInstancesResponseMessage = {
        ...(list.service === null ? {} : { service: serviceMessage(list.service) }),
        instances: list.hosts,
        reachProtectionThreshold: list.reachProtectionThreshold,
        checksum: list.checksum,
        revision: list.revision,
      };
      return response;
    },
    CreateService: async (request, budget) => ({ service: serviceMessage(await naming.createService(writeContext(request, budget), serviceSpecOf(request))) }),
    UpdateService: async (request, budget) => ({ service: serviceMessage(await naming.updateService(writeContext(request, budget), serviceUpdateOf(request))) }),
    DeleteService: async (request, budget) => naming.deleteService(writeContext(request, budget), serviceKeyOf(request)),
    GetService: async (request, budget) => {
      const detail = await naming.getService(readContext(budget), serviceKeyOf(request), { consistency: consistencyOf(request) });
      return { service: serviceMessage(detail.service), clusters: detail.clusters.map(clusterMessage) };
    },
    ListServices: async (request, budget) => {
      const page = await naming.listServices(readContext(budget), listServicesQueryOf(request, servicesPageSizeMax));
      return { count: page.count, services: page.services.map(serviceMessage) };
    },
    SetClusterHealthChecker: async (request, budget) => {
      const result = await naming.putCluster(writeContext(request, budget), clusterSpecOf(request));
      return { cluster: clusterMessage(result.cluster), revision: result.revision };
    },
  };
}
