// Goal: ListInstances responses encoded by src/api/grpc/list-encoding.ts are byte for byte what proto-loader's own
// serializer produces (so clients cannot tell), whether the parts come from its caches or not, and a cached part is
// never served for a different list.
// Method: responses built as the handler builds them (memoized frozen hosts and service messages, and plain
// unfrozen objects), encoded both ways and compared; then decoded with the loader's deserializer.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeListInstancesResponse, type ListInstancesResponseMessage } from '../../../src/api/grpc/list-encoding.ts';
import { serviceMessage, type InstanceMessage } from '../../../src/api/grpc/messages.ts';
import { methodDefinitionOf } from '../../../src/api/grpc/proto.ts';
import { namingServiceDefinition } from '../../../src/api/grpc/server.ts';
import { Prng } from '../../../src/raft/prng.ts';
import { instanceId, type ServiceDefinition } from '../../../src/naming/model.ts';

const method = methodDefinitionOf('cairn.naming.v1.Naming', 'ListInstances');

function instance(i: number, extra: Partial<InstanceMessage> = {}): InstanceMessage {
  const ip = `10.0.${i >> 8}.${i & 255}`;
  return Object.freeze({
    ip, port: 8080 + i, cluster: i % 3 === 0 ? 'DEFAULT' : 'edge', weight: i % 2 === 0 ? 1 : 2.5, enabled: true, healthy: i % 5 !== 0,
    ephemeral: false, metadata: Object.freeze(i % 4 === 0 ? {} : { zone: `z${i % 3}`, version: '1.2.3', 'ünïcode': 'värde' }),
    instanceId: instanceId(ip, 8080 + i, 'DEFAULT', 'DEFAULT_GROUP', 'orders'), ...extra,
  });
}

const definition: ServiceDefinition = Object.freeze({
  namespace: 'public', group: 'DEFAULT_GROUP', name: 'orders', protectThreshold: 0.5,
  metadata: Object.freeze({ owner: 'team' }), selector: Object.freeze({ type: 'none' }), kind: 'persistent', revision: 2 ** 40 + 7,
});

function same(response: ListInstancesResponseMessage, what: string): void {
  const expected = Buffer.from(method.responseSerialize(response));
  assert.deepEqual(encodeListInstancesResponse(response), expected, `${what}: first encoding`);
  assert.deepEqual(encodeListInstancesResponse(response), expected, `${what}: again (cached parts)`);
}

test('encodeListInstancesResponse gives proto-loader\'s bytes, cached or not', () => {
  const hosts = Object.freeze(Array.from({ length: 100 }, (_, i) => instance(i)));
  same({ service: serviceMessage(definition), instances: hosts, reachProtectionThreshold: false, checksum: 'c'.repeat(32), revision: 2 ** 40 + 7 }, 'service of 100');
  same({ instances: Object.freeze([]), reachProtectionThreshold: false, checksum: 'd41d8cd98f00b204e9800998ecf8427e', revision: 0 }, 'absent service');
  same({ service: serviceMessage(definition), instances: hosts.slice(0, 3), reachProtectionThreshold: true, checksum: '', revision: 1 }, 'unfrozen array');
  const plain = { namespace: 'n', group: 'g', service: 's', protectThreshold: 0, metadata: {}, selector: { type: 'SELECTOR_TYPE_LABEL' as const, expression: 'x' }, kind: 'SERVICE_KIND_EPHEMERAL' as const, revision: 3 };
  same({ service: plain, instances: [{ ...instance(1), metadata: { a: 'b' } }], reachProtectionThreshold: false, checksum: 'x', revision: 3 }, 'plain objects');
});

test('a cached part belongs to its own array or message only', () => {
  const first = Object.freeze([instance(1)]);
  const second = Object.freeze([instance(2)]);
  const response = (instances: readonly InstanceMessage[], service: ServiceDefinition): ListInstancesResponseMessage =>
    ({ service: serviceMessage(service), instances, reachProtectionThreshold: false, checksum: 'k', revision: service.revision });
  same(response(first, definition), 'first');
  same(response(second, definition), 'second');
  const changed: ServiceDefinition = Object.freeze({ ...definition, metadata: Object.freeze({ owner: 'other' }), revision: 9 });
  same(response(first, changed), 'changed service');
  same({ ...response(first, changed), checksum: 'other', revision: 10, reachProtectionThreshold: true }, 'same hosts, other scalars');
  same(response(first, changed), 'back to the first scalars');
  const decoded = method.responseDeserialize(encodeListInstancesResponse(response(second, changed))) as { service: { metadata: Record<string, string> }; instances: Array<{ ip: string }>; revision: number };
  assert.deepEqual([decoded.service.metadata, decoded.instances.map((i) => i.ip), decoded.revision], [{ owner: 'other' }, ['10.0.0.2'], 9]);
});

/** randomInstance draws an InstanceMessage with awkward values: empty and non-ASCII strings, integer-like metadata keys, large versions. */
function randomInstance(random: () => number): InstanceMessage {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const text = (): string => pick(['', 'a', 'DEFAULT', 'ünï', '日本', '😀x', 'k'.repeat(130), '10.0.0.1', '::1']);
  const metadata: Record<string, string> = {};
  for (let i = Math.floor(random() * 6); i > 0; i--) metadata[pick(['zone', '1', '42', 'ä', '', 'version', text()])] = text();
  const instance: Record<string, unknown> = {
    ip: text(), port: pick([0, 1, 80, 65535]), cluster: text(), weight: pick([0, 1, 2.5, 10000, 0.1]),
    enabled: random() < 0.5, healthy: random() < 0.5, ephemeral: random() < 0.5, metadata, instanceId: text(),
    version: pick([0, 1, 127, 128, 2 ** 31, 2 ** 32 + 5, 2 ** 53 - 1]),
  };
  // Fields the handler always sets, dropped now and then to check absent fields stay absent.
  if (random() < 0.1) delete instance[pick(['weight', 'enabled', 'healthy', 'version', 'metadata'])];
  return (random() < 0.5 ? Object.freeze(instance) : instance) as unknown as InstanceMessage;
}

test('responses carrying one instance (RegisterInstance, UpdateInstance, GetInstance) are proto-loader\'s bytes, for 3 000 random instances', () => {
  const seeded = new Prng(20261122);
  const random = (): number => seeded.nextFloat();
  const definition = namingServiceDefinition();
  for (const method of ['RegisterInstance', 'UpdateInstance', 'GetInstance'] as const) {
    const loader = methodDefinitionOf('cairn.naming.v1.Naming', method);
    const ours = definition[method];
    assert.ok(ours !== undefined && ours.responseSerialize !== loader.responseSerialize, `${method} has its own serializer`);
    for (let i = 0; i < 1000; i++) {
      const instance = randomInstance(random);
      const response: Record<string, unknown> = method === 'GetInstance' ? { instance } : { instance, revision: Math.floor(random() * 2 ** 40) };
      if (i % 97 === 0) delete response['instance'];
      const expected = Buffer.from(loader.responseSerialize(response));
      assert.deepEqual(ours.responseSerialize(response), expected, `${method} #${i}: ${JSON.stringify(response)}`);
    }
  }
});
