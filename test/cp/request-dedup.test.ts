// Goal: request ids make a retried write take effect once (docs/grpc.md, docs/errors.md: "retry with the same request
// id"), on a member started normally; and `cairn server --unsafe-no-request-dedup`, the TESTING ONLY planted bug of
// the jepsen-like A14 positive control, really turns that off: the same retries then apply again, a registration's
// version climbs and a deregistered instance comes back. So the control's bug is real, and the flag reaches the
// state machine through the member's options.
// Method: (1) the state machine alone: the same command bytes applied twice, with and without the option. (2) Two
// standalone members started in this process by startMember from configs parsed by parseServerArgs (so the flag is
// parsed and plumbed as `cairn server` does), each on its own LevelDB in a temporary directory, on 127.0.1.230
// (normal) and 127.0.1.231 (--unsafe-no-request-dedup); each gets the same script over gRPC and over the Nacos HTTP
// API (fastify inject): a registration, another write of the instance, the first registration's retry, a
// deregistration, the retry again; the instance versions answered and read back show whether a retry applied. (A
// retry right after its first application would prove nothing: re-registering an identical instance keeps its
// version, so another write comes between them, as under load.)

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { ClientApiClient, GrpcCallError } from '../../src/api/grpc/client.ts';
import { namingServiceName } from '../../src/api/grpc/proto.ts';
import { parseServerArgs } from '../../src/cli/main.ts';
import { decodeResult, encodeCommand } from '../../src/cp/commands.ts';
import { RegistryStateMachine } from '../../src/cp/registry-state-machine.ts';
import { startMember, type Member } from '../../src/member.ts';
import { MemoryKeyspace } from '../support/direct-proposer.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'cairn-request-dedup-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** leaderWaitMs bounds the wait for a standalone member to elect itself. */
const leaderWaitMs = 15_000;
/** callTimeoutMs bounds every gRPC call of this file. */
const callTimeoutMs = 5000;

const service = 'dedup';
const orders = { namespace: 'public', group: 'DEFAULT_GROUP', service };

test('the state machine answers a repeated request id with the first result; with unsafeNoRequestDedup it applies it again', () => {
  // A retry of an identical registration right after the first changes nothing even when applied again (an identical
  // re-registration keeps the version), so another write comes between the two, as in a real retry.
  const registration = (requestId: string, v: string): Uint8Array => encodeCommand({
    requestId,
    command: { type: 'registerInstance', key: orders, instance: { cluster: 'DEFAULT', ip: '10.0.0.1', port: 80, weight: 1, enabled: true, healthy: true, metadata: { v } } },
  });
  const first = registration('retry-1', 'a');
  const answers = (machine: RegistryStateMachine): Array<[number, string | undefined]> => [first, registration('other-1', 'b'), first].map((command, i) => {
    const result = decodeResult(machine.apply(command.slice(), i + 1, 1, new MemoryKeyspace().batch()));
    assert.ok(result.ok && result.payload.type === 'instance', 'a registration answers with its instance');
    return [result.payload.instance.version ?? 1, result.payload.instance.metadata['v']];
  });
  assert.deepEqual(answers(new RegistryStateMachine()), [[1, 'a'], [2, 'b'], [1, 'a']], 'the retry gets the first result, and changes nothing');
  assert.deepEqual(answers(new RegistryStateMachine({ unsafeNoRequestDedup: true })), [[1, 'a'], [2, 'b'], [3, 'a']], 'the retry applies again');
});

/** started starts a standalone member from `cairn server` arguments and waits until it leads. */
async function started(host: string, extra: readonly string[]): Promise<{ member: Member; grpc: ClientApiClient; fatal: Error[] }> {
  const parsed = parseServerArgs(['--addr', `${host}:18848`, '--data-dir', path.join(dir, host), '--log-level', 'error', ...extra], {});
  if (parsed.help) throw new Error('unreachable: --help was not given');
  const fatal: Error[] = [];
  const member = await startMember(parsed.config, (error) => fatal.push(error));
  const deadline = Date.now() + leaderWaitMs;
  while (member.replica.status().role !== 'leader') {
    assert.ok(Date.now() < deadline, `${host} did not elect itself within ${leaderWaitMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return { member, grpc: new ClientApiClient(`${host}:19848`, callTimeoutMs), fatal };
}

/** register sends RegisterInstance of 10.0.0.<n>:80 with {v} and `requestId`; returns the version answered. */
async function register(grpc: ClientApiClient, n: number, v: string, requestId: string): Promise<number> {
  const response = await grpc.call(namingServiceName, 'RegisterInstance', { service, instance: { ip: `10.0.0.${n}`, port: 80, ephemeral: false, metadata: { v } }, requestId });
  return (response['instance'] as { version?: number } | undefined)?.version ?? 0;
}

/** versionOf reads 10.0.0.<n>:80 linearizably: its version, 0 when absent. */
async function versionOf(grpc: ClientApiClient, n: number): Promise<number> {
  try {
    const response = await grpc.call(namingServiceName, 'GetInstance', { service, ip: `10.0.0.${n}`, port: 80, consistency: 'LINEARIZABLE' });
    return (response['instance'] as { version?: number } | undefined)?.version ?? 0;
  } catch (error) {
    if (error instanceof GrpcCallError && error.cairnCode === 'CAIRN_INSTANCE_NOT_FOUND') return 0;
    throw error;
  }
}

/** httpRegister registers 10.0.0.<n>:80 over the Nacos HTTP API with Cairn-Request-Id. */
async function httpRegister(member: Member, n: number, v: string, requestId: string): Promise<void> {
  const metadata = encodeURIComponent(JSON.stringify({ v }));
  const answer = await member.http.inject({ method: 'POST', url: `/nacos/v1/ns/instance?serviceName=${service}&ip=10.0.0.${n}&port=80&ephemeral=false&metadata=${metadata}`, headers: { 'Cairn-Request-Id': requestId } });
  assert.equal(answer.statusCode, 200, answer.body);
}

/** Observed is what the script saw on one member: versions answered and read back (0: absent). */
interface Observed {
  /** retryAnswer: the version answered to the retry of the first registration, after another write of the instance. */
  readonly retryAnswer: number;
  readonly afterRetry: number;
  readonly afterDeregister: number;
  /** afterLateRetry: the instance after the same registration is retried once more, after its deregistration. */
  readonly afterLateRetry: number;
  /** httpAfterRetry: the same over the Nacos HTTP API (Cairn-Request-Id): a registration, another, the first again. */
  readonly httpAfterRetry: number;
}

/** script registers, writes again, retries the first, deregisters and retries again over gRPC; then the same over HTTP. */
async function script(member: Member, grpc: ClientApiClient): Promise<Observed> {
  assert.equal(await register(grpc, 1, 'a', 'w-1'), 1);
  assert.equal(await register(grpc, 1, 'b', 'w-2'), 2);
  const retryAnswer = await register(grpc, 1, 'a', 'w-1');
  const afterRetry = await versionOf(grpc, 1);
  await grpc.call(namingServiceName, 'DeregisterInstance', { service, ip: '10.0.0.1', port: 80, ephemeral: false, requestId: 'd-1' });
  const afterDeregister = await versionOf(grpc, 1);
  await register(grpc, 1, 'a', 'w-1');
  const afterLateRetry = await versionOf(grpc, 1);
  await httpRegister(member, 2, 'c', 'h-1');
  await httpRegister(member, 2, 'd', 'h-2');
  await httpRegister(member, 2, 'c', 'h-1');
  return { retryAnswer, afterRetry, afterDeregister, afterLateRetry, httpAfterRetry: await versionOf(grpc, 2) };
}

test('a member started normally applies a retried write once; with --unsafe-no-request-dedup it applies every retry again', { timeout: 60_000 }, async () => {
  const normal = await started('127.0.1.230', []);
  const unsafe = await started('127.0.1.231', ['--unsafe-no-request-dedup']);
  try {
    assert.deepEqual(await script(normal.member, normal.grpc), {
      retryAnswer: 1, afterRetry: 2, afterDeregister: 0, afterLateRetry: 0, httpAfterRetry: 2,
    }, 'normal: the retries are answered from the request id (the first result) and change nothing; nothing comes back after the deregistration');
    assert.deepEqual(await script(unsafe.member, unsafe.grpc), {
      retryAnswer: 3, afterRetry: 3, afterDeregister: 0, afterLateRetry: 1, httpAfterRetry: 3,
    }, 'unsafe: every retry applies again, and the late retry brings the deregistered instance back');
    assert.deepEqual([...normal.fatal, ...unsafe.fatal], []);
  } finally {
    for (const { member, grpc } of [normal, unsafe]) {
      grpc.close();
      await member.close();
    }
  }
});
