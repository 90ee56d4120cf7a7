// requests: the request messages of proto/cairn/naming/v1/naming.proto read into the NamingService's typed inputs.
// Pure functions of a decoded message (see fields.ts). The wire's defaults are applied here (empty namespace,
// group and cluster mean Nacos's defaults; absent `optional` fields mean the NamingService's defaults), and the
// names are validated with the .proto's field names, so an error says `Param 'service' is required.` rather
// than the Nacos parameter name. The NamingService validates everything again; the two never disagree because
// both call naming/validation.ts.

import { CairnError } from '../../errors.ts';
import {
  DEFAULT_CLUSTER,
  DEFAULT_GROUP,
  DEFAULT_HTTP_EXPECTED_RESPONSE_CODE,
  DEFAULT_NAMESPACE,
  MYSQL_READ_ONLY_SQL,
  type HealthChecker,
  type Selector,
  type ServiceKey,
} from '../../naming/model.ts';
import type {
  ClusterSpec,
  Consistency,
  DeregisterInput,
  InstanceAddress,
  InstancePatch,
  InstanceSpec,
  ListInstancesQuery,
  ListServicesQuery,
  ServiceSpec,
  ServiceUpdate,
} from '../../naming/naming-service.ts';
import {
  validateClusterName,
  validateGroup,
  validateIp,
  validateNamespace,
  validatePort,
  validateRequestId,
  validateServiceName,
} from '../../naming/validation.ts';
import { Fields } from './fields.ts';
import { selectorTypeNames, serviceKindNames } from './messages.ts';

/** ALL_GROUPS_WIRE is the `group` of a ListServicesRequest that lists every group. */
export const ALL_GROUPS_WIRE = '*';
/** defaultPageSize is a ListServicesRequest's page size when it gives none. */
export const defaultPageSize = 100;

/** requestIdOf reads a write's `request_id`: undefined when empty, else validated (1..128 printable ASCII). */
export function requestIdOf(request: Fields): string | undefined {
  const requestId = request.string('requestId');
  return requestId === '' ? undefined : validateRequestId(requestId, request.name('requestId'));
}

/** consistencyOf reads a read's `consistency`: LINEARIZABLE (the enum's zero, hence the default) or LOCAL. */
export function consistencyOf(request: Fields): Consistency {
  return request.enumName('consistency', ['LINEARIZABLE', 'LOCAL']) === 'LOCAL' ? 'local' : 'linearizable';
}

/** serviceKeyOf reads `namespace`, `group` and `service` (required), applying Nacos's defaults to the first two. */
export function serviceKeyOf(request: Fields): ServiceKey {
  const namespace = request.string('namespace');
  const group = request.string('group');
  return {
    namespace: namespace === '' ? DEFAULT_NAMESPACE : validateNamespace(namespace, request.name('namespace')),
    group: group === '' ? DEFAULT_GROUP : validateGroup(group, request.name('group')),
    service: validateServiceName(request.string('service'), request.name('service')),
  };
}

function clusterOf(message: Fields): string {
  const cluster = message.string('cluster');
  return cluster === '' ? DEFAULT_CLUSTER : validateClusterName(cluster, message.name('cluster'));
}

/** addressOf reads an instance's `cluster`, `ip` (required) and `port` from `message`, with the service key `key`. */
function addressOf(key: ServiceKey, message: Fields): InstanceAddress {
  return {
    ...key,
    cluster: clusterOf(message),
    ip: validateIp(message.string('ip'), message.name('ip')),
    port: validatePort(message.number('port'), message.name('port')),
  };
}

/** optional returns `{ [key]: value }`, or {} when value is undefined (for exactOptionalPropertyTypes). */
function optional<Key extends string, Value>(key: Key, value: Value | undefined): { [K in Key]?: Value } {
  return (value === undefined ? {} : { [key]: value }) as { [K in Key]?: Value };
}

/** instanceSpecOf reads a RegisterInstanceRequest: the service key and the required `instance`. */
export function instanceSpecOf(request: Fields): InstanceSpec {
  const key = serviceKeyOf(request);
  const instance = request.requiredMessage('instance');
  return {
    ...addressOf(key, instance),
    ...optional('weight', instance.optionalNumber('weight')),
    ...optional('enabled', instance.optionalBoolean('enabled')),
    ...optional('healthy', instance.optionalBoolean('healthy')),
    ephemeral: instance.boolean('ephemeral'),
    metadata: instance.stringMap('metadata'),
    ...optional('expectedVersion', request.optionalNumber('expectedVersion')),
  };
}

/** instancePatchOf reads an UpdateInstanceRequest: only the fields present change. */
export function instancePatchOf(request: Fields): InstancePatch {
  return {
    ...addressOf(serviceKeyOf(request), request),
    ...optional('weight', request.optionalNumber('weight')),
    ...optional('enabled', request.optionalBoolean('enabled')),
    ...optional('healthy', request.optionalBoolean('healthy')),
    ...optional('metadata', request.message('metadata')?.stringMap('entries')),
    ...optional('ephemeral', request.optionalBoolean('ephemeral')),
    ...optional('expectedVersion', request.optionalNumber('expectedVersion')),
  };
}

/** deregisterInputOf reads a DeregisterInstanceRequest. */
export function deregisterInputOf(request: Fields): DeregisterInput {
  return {
    ...addressOf(serviceKeyOf(request), request),
    ...optional('ephemeral', request.optionalBoolean('ephemeral')),
    ...optional('expectedVersion', request.optionalNumber('expectedVersion')),
  };
}

/** instanceAddressOf reads a GetInstanceRequest's instance address. */
export function instanceAddressOf(request: Fields): InstanceAddress {
  return addressOf(serviceKeyOf(request), request);
}

/** listInstancesQueryOf reads a ListInstancesRequest. */
export function listInstancesQueryOf(request: Fields): ListInstancesQuery {
  const clusters = request.stringList('clusters').map((cluster) => validateClusterName(cluster, request.name('clusters')));
  return { ...serviceKeyOf(request), clusters, healthyOnly: request.boolean('healthyOnly'), consistency: consistencyOf(request) };
}

/** selectorOf reads a Selector message. */
function selectorOf(message: Fields): Selector {
  const type = message.enumName('type', selectorTypeNames);
  const expression = message.string('expression');
  if (type === 'SELECTOR_TYPE_NONE') {
    if (expression !== '') invalid(message.name('expression'), `Param '${message.name('expression')}' is only allowed with SELECTOR_TYPE_LABEL`);
    return { type: 'none' };
  }
  return { type: 'label', expression };
}

/** serviceSpecOf reads a CreateServiceRequest. */
export function serviceSpecOf(request: Fields): ServiceSpec {
  const kind = request.enumName('kind', serviceKindNames);
  const selector = request.message('selector');
  return {
    ...serviceKeyOf(request),
    ...optional('protectThreshold', request.optionalNumber('protectThreshold')),
    metadata: request.stringMap('metadata'),
    ...optional('selector', selector === undefined ? undefined : selectorOf(selector)),
    ...optional('ephemeral', kind === 'SERVICE_KIND_UNSPECIFIED' ? undefined : kind === 'SERVICE_KIND_EPHEMERAL'),
  };
}

/** serviceUpdateOf reads an UpdateServiceRequest: only the fields present change. */
export function serviceUpdateOf(request: Fields): ServiceUpdate {
  const selector = request.message('selector');
  return {
    ...serviceKeyOf(request),
    ...optional('protectThreshold', request.optionalNumber('protectThreshold')),
    ...optional('metadata', request.message('metadata')?.stringMap('entries')),
    ...optional('selector', selector === undefined ? undefined : selectorOf(selector)),
  };
}

/** listServicesQueryOf reads a ListServicesRequest; `pageSizeMax` is the largest page one response may carry. */
export function listServicesQueryOf(request: Fields, pageSizeMax: number): ListServicesQuery {
  const namespace = request.string('namespace');
  const group = request.string('group');
  const pageNo = request.number('pageNo');
  const pageSize = request.number('pageSize');
  return {
    namespace: namespace === '' ? DEFAULT_NAMESPACE : validateNamespace(namespace, request.name('namespace')),
    group: group === '' ? DEFAULT_GROUP : group === ALL_GROUPS_WIRE ? ALL_GROUPS_WIRE : validateGroup(group, request.name('group')),
    pageNo: pageNo === 0 ? 1 : pageNo,
    pageSize: Math.min(pageSize === 0 ? defaultPageSize : pageSize, pageSizeMax),
    consistency: consistencyOf(request),
  };
}

/** healthCheckerOf reads a HealthChecker message: exactly one of none, tcp, http, mysql. */
export function healthCheckerOf(message: Fields): HealthChecker {
  const which = message.oneofCase('checker');
  const intervalMs = message.number('intervalMs');
  // 0 is "adaptive"; any other value is checked against the probe bounds by the naming layer's validation.
  const interval = intervalMs === 0 ? {} : { intervalMs };
  switch (which) {
    case 'none':
      return { type: 'NONE' };
    case 'tcp':
      return { type: 'TCP', ...interval };
    case 'http': {
      const http = message.requiredMessage('http');
      const expectedStatus = http.number('expectedStatus');
      return {
        type: 'HTTP',
        path: http.string('path'),
        headers: http.stringMap('headers'),
        expectedResponseCode: expectedStatus === 0 ? DEFAULT_HTTP_EXPECTED_RESPONSE_CODE : expectedStatus,
        ...interval,
      };
    }
    case 'mysql': {
      const mysql = message.requiredMessage('mysql');
      const sql = mysql.string('sql');
      return { type: 'MYSQL', user: mysql.string('user'), password: mysql.string('password'), sql: sql === '' ? MYSQL_READ_ONLY_SQL : sql, ...interval };
    }
    default:
      return invalid(message.name('checker'), `Param '${message.path}' must set one of none, tcp, http, mysql`);
  }
}

/** clusterSpecOf reads a SetClusterHealthCheckerRequest: the cluster's whole configuration. */
export function clusterSpecOf(request: Fields): ClusterSpec {
  return {
    ...serviceKeyOf(request),
    cluster: clusterOf(request),
    healthChecker: healthCheckerOf(request.requiredMessage('healthChecker')),
    ...optional('checkPort', request.optionalNumber('checkPort')),
    ...optional('useInstancePort4Check', request.optionalBoolean('useInstancePort')),
    metadata: request.stringMap('metadata'),
  };
}

function invalid(parameter: string, message: string): never {
  throw new CairnError('CAIRN_INVALID_ARGUMENT', message, { details: { parameter } });
}
