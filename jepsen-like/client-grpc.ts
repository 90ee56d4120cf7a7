// client-grpc: a RegistryClient over Cairn's gRPC API (cairn.naming.v1.Naming) of one member, through the
// project's own ClientApiClient. Reads use the LINEARIZABLE consistency (the proto's default, sent explicitly). A
// failure without a Cairn code (deadline, broken connection) is 'info': grpc-js does not tell whether the request
// left, so it might have taken effect. One is certain: UNAVAILABLE "No connection established" is grpc-js's load
// balancer refusing the pick while the channel has no connected subchannel (its picker for TRANSIENT_FAILURE), before
// any stream exists, so nothing was sent: 'fail', as a refused HTTP connection is (client-http.ts).

import { ClientApiClient, GrpcCallError } from '../src/api/grpc/client.ts';
import { decodeErrorInfo, statusDetailsMetadataKey } from '../src/api/grpc/errors.ts';
import { namingServiceName } from '../src/api/grpc/proto.ts';
import type { CasAnswer, InstanceRead, InstanceRef, Outcome, RegistryClient, WriteAnswer } from './client.ts';
import { absentCodes, backupAddressesVia, outcomeOfCode } from './client.ts';
import { assertLoopback } from './client-http.ts';

function errorOutcome<T>(error: unknown): Outcome<T> {
  if (error instanceof GrpcCallError) {
    if (error.cairnCode !== undefined) return outcomeOfCode(error.cairnCode, error.message);
    const text = `grpc ${error.statusName}: ${error.message.slice(0, 160)}`;
    if (neverSent(error)) return { type: 'fail', error: text };
    return { type: 'info', error: text };
  }
  return { type: 'info', error: error instanceof Error ? error.message : String(error) };
}

/** neverSent tells a call that failed at grpc-js's pick (no connected subchannel): no stream was ever opened. */
export function neverSent(error: GrpcCallError): boolean {
  return error.statusName === 'UNAVAILABLE' && /(^|: )No connection established/.test(error.message);
}

interface WireInstance {
  readonly ip?: string;
  readonly port?: number;
  readonly metadata?: Record<string, string>;
  readonly version?: number;
}

/** versionOf reads a response's instance version (0 is left out on the wire: a persistent instance is never at 0). */
function versionOf(response: Record<string, unknown>): number {
  return (response['instance'] as WireInstance | undefined)?.version ?? 0;
}

/** actualVersionOf reads the `actual` detail of a CAIRN_VERSION_MISMATCH, or null when it is missing. */
function actualVersionOf(error: GrpcCallError): number | null {
  const details = error.metadata.get(statusDetailsMetadataKey)[0];
  const actual = Buffer.isBuffer(details) ? decodeErrorInfo(details)?.metadata['actual'] : undefined;
  return actual === undefined || !/^\d+$/.test(actual) ? null : Number(actual);
}

/** GrpcRegistryClient is one member over gRPC (port + 1000). */
export class GrpcRegistryClient implements RegistryClient {
  private readonly client: ClientApiClient;

  /** constructor opens a channel to the member's gRPC address with a per-call deadline. */
  constructor(private readonly grpcAddr: string, private readonly timeoutMs: number) {
    assertLoopback(grpcAddr);
    this.client = new ClientApiClient(grpcAddr, timeoutMs);
  }

  /** register: RegisterInstance of a persistent instance with the metadata and request id. */
  async register(ref: InstanceRef, metadata: Readonly<Record<string, string>>, requestId: string): Promise<Outcome<WriteAnswer>> {
    try {
      const response = await this.client.call(namingServiceName, 'RegisterInstance', {
        service: ref.service,
        instance: { ip: ref.ip, port: ref.port, ephemeral: false, metadata: { ...metadata } },
        requestId,
      });
      return { type: 'ok', value: { version: versionOf(response) } };
    } catch (error) {
      return errorOutcome(error);
    }
  }

  /** casMetadata: RegisterInstance with expected_version; CAIRN_VERSION_MISMATCH is a definite "not applied". */
  async casMetadata(ref: InstanceRef, metadata: Readonly<Record<string, string>>, expectedVersion: number, requestId: string): Promise<Outcome<CasAnswer>> {
    try {
      const response = await this.client.call(namingServiceName, 'RegisterInstance', {
        service: ref.service,
        instance: { ip: ref.ip, port: ref.port, ephemeral: false, metadata: { ...metadata } },
        requestId,
        expectedVersion,
      });
      return { type: 'ok', value: { applied: true, version: versionOf(response) } };
    } catch (error) {
      if (error instanceof GrpcCallError && error.cairnCode === 'CAIRN_VERSION_MISMATCH') return { type: 'ok', value: { applied: false, actual: actualVersionOf(error) } };
      return errorOutcome(error);
    }
  }

  /** deregister: DeregisterInstance of a persistent instance. */
  async deregister(ref: InstanceRef, requestId: string): Promise<Outcome<null>> {
    try {
      await this.client.call(namingServiceName, 'DeregisterInstance', { service: ref.service, ip: ref.ip, port: ref.port, ephemeral: false, requestId });
      return { type: 'ok', value: null };
    } catch (error) {
      return errorOutcome(error);
    }
  }

  /** getInstance: GetInstance with LINEARIZABLE; NOT_FOUND with a not-found code is absent. */
  async getInstance(ref: InstanceRef): Promise<Outcome<InstanceRead | null>> {
    try {
      const response = await this.client.call(namingServiceName, 'GetInstance', { service: ref.service, ip: ref.ip, port: ref.port, consistency: 'LINEARIZABLE' });
      const instance = response['instance'] as WireInstance | undefined;
      return { type: 'ok', value: { metadata: instance?.metadata ?? {}, version: versionOf(response) } };
    } catch (error) {
      if (error instanceof GrpcCallError && error.cairnCode !== undefined && absentCodes.has(error.cairnCode)) return { type: 'ok', value: null };
      return errorOutcome(error);
    }
  }

  /** listAddresses: ListInstances with LINEARIZABLE. */
  async listAddresses(service: string): Promise<Outcome<string[]>> {
    try {
      const response = await this.client.call(namingServiceName, 'ListInstances', { service, consistency: 'LINEARIZABLE' });
      const instances = (response['instances'] as WireInstance[] | undefined) ?? [];
      return { type: 'ok', value: instances.map((instance) => `${instance.ip ?? ''}:${instance.port ?? 0}`) };
    } catch (error) {
      if (error instanceof GrpcCallError && error.cairnCode === 'CAIRN_SERVICE_NOT_FOUND') return { type: 'ok', value: [] };
      return errorOutcome(error);
    }
  }

  /** backupAddresses: a backup from the member's peer port (its gRPC port - 2000: HTTP + 1000 and HTTP - 1000). */
  backupAddresses(service: string): Promise<Outcome<string[]>> {
    const separator = this.grpcAddr.lastIndexOf(':');
    return backupAddressesVia(`${this.grpcAddr.slice(0, separator)}:${Number(this.grpcAddr.slice(separator + 1)) - 2000}`, service, this.timeoutMs);
  }

  /** close closes the channel. */
  close(): void {
    this.client.close();
  }
}
