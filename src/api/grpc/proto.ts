// proto: loads the client API's .proto files (proto/cairn/naming/v1/naming.proto and the standard
// proto/grpc/health/v1/health.proto) once with @grpc/proto-loader, for the server, server reflection and the CLI's
// client, so all three see exactly the same definitions.
//
// Loader options, and why: field names become camelCase (`request_id` -> `requestId`, the TypeScript convention);
// enums are their names ('LOCAL'); 64-bit integers are JavaScript numbers (revisions are log indexes, below 2^53);
// absent fields stay absent (`defaults: false`), so a handler can tell an unset `optional` field from a zero one;
// `oneofs: true` names the set member of a oneof (`healthChecker.checker === 'http'`).

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadSync, type MethodDefinition, type PackageDefinition, type ServiceDefinition } from '@grpc/proto-loader';

/** grpcProtoRoot is the repository's proto/ directory (this file lives in src/api/grpc/). */
export const grpcProtoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../proto');

/** namingProtoFiles are the files the client port serves, relative to grpcProtoRoot. */
export const namingProtoFiles: readonly string[] = Object.freeze(['cairn/naming/v1/naming.proto', 'grpc/health/v1/health.proto']);

/** namingServiceName is the fully qualified name of the Naming service. */
export const namingServiceName = 'cairn.naming.v1.Naming';

/** healthServiceName is the fully qualified name of the standard health service. */
export const healthServiceName = 'grpc.health.v1.Health';

let packageDefinition: PackageDefinition | null = null;

/** loadClientApiDefinition returns the package definition of every service on the client port (loaded once). */
export function loadClientApiDefinition(): PackageDefinition {
  packageDefinition ??= loadSync([...namingProtoFiles], {
    includeDirs: [grpcProtoRoot],
    keepCase: false,
    longs: Number,
    enums: String,
    defaults: false,
    oneofs: true,
  });
  return packageDefinition;
}

/** serviceDefinitionOf returns one service of the client API by its fully qualified name; throws if it is not a service. */
export function serviceDefinitionOf(name: string): ServiceDefinition {
  const definition = loadClientApiDefinition()[name];
  if (definition === undefined || 'format' in definition) throw new Error(`${name} is not a service of ${namingProtoFiles.join(', ')}`);
  return definition as ServiceDefinition;
}

/** methodDefinitionOf returns one method of a service, e.g. ('cairn.naming.v1.Naming', 'ListInstances'). */
export function methodDefinitionOf(service: string, method: string): MethodDefinition<object, object> {
  const definition = serviceDefinitionOf(service)[method];
  if (definition === undefined) throw new Error(`${service} has no method ${method}`);
  return definition;
}
