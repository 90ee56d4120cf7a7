// messages: the naming model rendered as the response messages of proto/cairn/naming/v1/naming.proto (in the
// loader's camelCase form). Pure functions of frozen model values. Secrets never leave: a cluster's checker is
// rendered from its redacted view, so a MySQL password appears only as `passwordSet`.

import { assertNever } from '../../assert.ts';
import type {
  ClusterView,
  Instance,
  Metadata,
  RedactedHealthChecker,
  Selector,
  ServiceDefinition,
  ServiceKind,
} from '../../naming/model.ts';

/** ServiceKindName is the wire name of a ServiceKind (or of an undeclared kind). */
export type ServiceKindName = 'SERVICE_KIND_UNSPECIFIED' | 'SERVICE_KIND_PERSISTENT' | 'SERVICE_KIND_EPHEMERAL';

/** serviceKindNames lists the ServiceKind enum's names, the default (0) first. */
export const serviceKindNames: readonly [ServiceKindName, ...ServiceKindName[]] = ['SERVICE_KIND_UNSPECIFIED', 'SERVICE_KIND_PERSISTENT', 'SERVICE_KIND_EPHEMERAL'];

/** SelectorTypeName is the wire name of a selector type. */
export type SelectorTypeName = 'SELECTOR_TYPE_NONE' | 'SELECTOR_TYPE_LABEL';

/** selectorTypeNames lists the SelectorType enum's names, the default (0) first. */
export const selectorTypeNames: readonly [SelectorTypeName, ...SelectorTypeName[]] = ['SELECTOR_TYPE_NONE', 'SELECTOR_TYPE_LABEL'];

/** InstanceMessage is the wire form of an Instance, every field set. */
export interface InstanceMessage {
  readonly ip: string;
  readonly port: number;
  readonly cluster: string;
  readonly weight: number;
  readonly enabled: boolean;
  readonly healthy: boolean;
  readonly ephemeral: boolean;
  readonly metadata: Metadata;
  readonly instanceId: string;
  /** version is a persistent instance's version; absent (0 on the wire) for an ephemeral one. */
  readonly version?: number;
}

/** SelectorMessage is the wire form of a Selector. */
export interface SelectorMessage {
  readonly type: SelectorTypeName;
  readonly expression: string;
}

/** ServiceMessage is the wire form of a ServiceDefinition. */
export interface ServiceMessage {
  readonly namespace: string;
  readonly group: string;
  readonly service: string;
  readonly protectThreshold: number;
  readonly metadata: Metadata;
  readonly selector: SelectorMessage;
  readonly kind: ServiceKindName;
  readonly revision: number;
}

/** HealthCheckerMessage is the wire form of a redacted HealthChecker: exactly one member of the `checker` oneof. */
export type HealthCheckerMessage = { readonly intervalMs: number } & (
  | { readonly none: Record<string, never> }
  | { readonly tcp: Record<string, never> }
  | { readonly http: { readonly path: string; readonly headers: Metadata; readonly expectedStatus: number } }
  | { readonly mysql: { readonly user: string; readonly sql: string; readonly passwordSet: boolean } });

/** ClusterMessage is the wire form of a ClusterView. */
export interface ClusterMessage {
  readonly name: string;
  readonly healthChecker: HealthCheckerMessage;
  readonly checkPort: number;
  readonly useInstancePort: boolean;
  readonly metadata: Metadata;
}

/** instanceMessage renders an instance. */
export function instanceMessage(instance: Instance): InstanceMessage {
  return {
    ip: instance.ip,
    port: instance.port,
    cluster: instance.cluster,
    weight: instance.weight,
    enabled: instance.enabled,
    healthy: instance.healthy,
    ephemeral: instance.ephemeral,
    metadata: instance.metadata,
    instanceId: instance.instanceId,
    version: instance.version ?? 0,
  };
}

/** selectorMessage renders a selector. */
export function selectorMessage(selector: Selector): SelectorMessage {
  return selector.type === 'label'
    ? { type: 'SELECTOR_TYPE_LABEL', expression: selector.expression }
    : { type: 'SELECTOR_TYPE_NONE', expression: '' };
}

/** serviceKindName renders a service's kind. */
export function serviceKindName(kind: ServiceKind | null): ServiceKindName {
  if (kind === null) return 'SERVICE_KIND_UNSPECIFIED';
  return kind === 'persistent' ? 'SERVICE_KIND_PERSISTENT' : 'SERVICE_KIND_EPHEMERAL';
}

// Rendered messages of frozen definitions, so a service listed again is the same frozen message (and its encoded
// bytes can be kept, list-encoding.ts). Weak: an entry lives as long as its definition.
const serviceMessages = new WeakMap<ServiceDefinition, ServiceMessage>();

/** serviceMessage renders a service definition (frozen, and the same message again for the same frozen definition). */
export function serviceMessage(definition: ServiceDefinition): ServiceMessage {
  const known = serviceMessages.get(definition);
  if (known !== undefined) return known;
  const message = renderServiceMessage(definition);
  if (Object.isFrozen(definition)) serviceMessages.set(definition, message);
  return message;
}

function renderServiceMessage(definition: ServiceDefinition): ServiceMessage {
  return Object.freeze({
    namespace: definition.namespace,
    group: definition.group,
    service: definition.name,
    protectThreshold: definition.protectThreshold,
    metadata: definition.metadata,
    selector: Object.freeze(selectorMessage(definition.selector)),
    kind: serviceKindName(definition.kind),
    revision: definition.revision,
  });
}

/** healthCheckerMessage renders a redacted checker; the password field is never set. */
export function healthCheckerMessage(checker: RedactedHealthChecker): HealthCheckerMessage {
  switch (checker.type) {
    case 'NONE':
      return { none: {}, intervalMs: 0 };
    case 'TCP':
      return { tcp: {}, intervalMs: checker.intervalMs ?? 0 };
    case 'HTTP':
      return { http: { path: checker.path, headers: checker.headers, expectedStatus: checker.expectedResponseCode }, intervalMs: checker.intervalMs ?? 0 };
    case 'MYSQL':
      return { mysql: { user: checker.user, sql: checker.sql, passwordSet: checker.passwordSet }, intervalMs: checker.intervalMs ?? 0 };
    default:
      return assertNever(checker, 'unknown health checker type');
  }
}

/** clusterMessage renders a cluster's redacted configuration. */
export function clusterMessage(cluster: ClusterView): ClusterMessage {
  return {
    name: cluster.name,
    healthChecker: healthCheckerMessage(cluster.healthChecker),
    checkPort: cluster.checkPort,
    useInstancePort: cluster.useInstancePort4Check,
    metadata: cluster.metadata,
  };
}
