// client-grpc: a RegistryClient over Cairn's gRPC API (cairn.naming.v1.Naming) of one member, through the
// project's own ClientApiClient. Reads use the LINEARIZABLE consistency (the proto's default, sent explicitly). A
// failure without a Cairn code (deadline, broken or refused connection) is 'info': grpc-js does not tell whether
// the request left, so it might have taken effect.

import { ClientApiClient, GrpcCallError } from '../src/api/grpc/client.ts';
import { namingServiceName } from '../src/api/grpc/proto.ts';
import type { InstanceRef, Outcome, RegistryClient } from './client.ts';
import { absentCodes, outcomeOfCode } from './client.ts';
import { assertLoopback } from './client-http.ts';

function errorOutcome<T>(error: unknown): Outcome<T> {
  if (error instanceof GrpcCallError) {
    if (error.cairnCode !== undefined) return outcomeOfCode(error.cairnCode, error.message);
    return { type: 'info', error: `grpc ${error.statusName}: ${error.message.slice(0, 160)}` };
  }
  return { type: 'info', error: error instanceof Error ? error.message : String(error) };
}

interface WireInstance {
  readonly ip?: string;
  readonly port?: number;
  readonly metadata?: Record<string, string>;
}

/** GrpcRegistryClient is one member over gRPC (port + 1000). */
export class GrpcRegistryClient implements RegistryClient {
  private readonly client: ClientApiClient;

  /** constructor opens a channel to the member's gRPC address with a per-call deadline. */
  constructor(grpcAddr: string, timeoutMs: number) {
    assertLoopback(grpcAddr);
    this.client = new ClientApiClient(grpcAddr, timeoutMs);
  }

  /** register: RegisterInstance of a persistent instance with the metadata and request id. */
  async register(ref: InstanceRef, metadata: Readonly<Record<string, string>>, requestId: string): Promise<Outcome<null>> {
    try {
      await this.client.call(namingServiceName, 'RegisterInstance', {
        service: ref.service,
        instance: { ip: ref.ip, port: ref.port, ephemeral: false, metadata: { ...metadata } },
        requestId,
      });
      return { type: 'ok', value: null };
    } catch (error) {
      return errorOutcome(error);
    }
  }

  /** getMetadata: GetInstance with LINEARIZABLE; NOT_FOUND with a not-found code is absent. */
  async getMetadata(ref: InstanceRef): Promise<Outcome<Readonly<Record<string, string>> | null>> {
    try {
      const response = await this.client.call(namingServiceName, 'GetInstance', { service: ref.service, ip: ref.ip, port: ref.port, consistency: 'LINEARIZABLE' });
      const instance = response['instance'] as WireInstance | undefined;
      return { type: 'ok', value: instance?.metadata ?? {} };
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

  /** close closes the channel. */
  close(): void {
    this.client.close();
  }
}
