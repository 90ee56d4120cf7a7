// Goal: the client's instance decoder (src/api/grpc/instance-decoding.ts) returns exactly what proto-loader's
// deserializer returns, keys in the same order, for every response that carries instances; and refuses bytes that
// are not a message instead of inventing one.
// Method: seeded random responses (each optional field present or not, unicode and '__proto__' metadata keys, empty
// maps and lists, 64-bit versions up to 2^53) encoded by proto-loader's serializer, and the same messages re-written
// field by field in shuffled order with unknown fields and repeated scalars mixed in; both decoders must agree
// deeply and in key order. Every strict prefix of a message must either throw or decode to what proto-loader says.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { responseDecoder, type Decoder } from '../../../src/api/grpc/instance-decoding.ts';
import { loaderNamingType } from '../../../src/api/grpc/list-encoding.ts';
import { methodDefinitionOf, namingServiceName } from '../../../src/api/grpc/proto.ts';
import { Prng } from '../../../src/raft/prng.ts';

const methods = ['ListInstances', 'RegisterInstance', 'UpdateInstance', 'GetInstance', 'Subscribe'] as const;

function decoders(method: string): { fast: Decoder; loader: Decoder } {
  const definition = methodDefinitionOf(namingServiceName, method);
  const loader: Decoder = (bytes) => ({ ...(definition.responseDeserialize(bytes) as Record<string, unknown>) });
  return { fast: responseDecoder(namingServiceName, method, loader), loader };
}

function randomString(prng: Prng, maxChars: number): string {
  const alphabet = ['a', 'b', 'Z', '0', '.', '-', 'é', '日', '😀', ' '];
  let text = '';
  const length = prng.nextInt(maxChars + 1);
  for (let i = 0; i < length; i++) text += alphabet[prng.nextInt(alphabet.length)];
  return text;
}

function randomInstance(prng: Prng): Record<string, unknown> {
  const instance: Record<string, unknown> = {};
  if (prng.chance(0.9)) instance['ip'] = `10.${prng.nextInt(256)}.0.${prng.nextInt(256)}`;
  if (prng.chance(0.8)) instance['port'] = prng.nextInt(65536);
  if (prng.chance(0.8)) instance['cluster'] = prng.chance(0.5) ? 'DEFAULT' : randomString(prng, 8);
  if (prng.chance(0.7)) instance['weight'] = prng.chance(0.2) ? 0 : prng.nextInt(10000) / 7;
  if (prng.chance(0.7)) instance['enabled'] = prng.chance(0.5);
  if (prng.chance(0.7)) instance['healthy'] = prng.chance(0.5);
  if (prng.chance(0.7)) instance['ephemeral'] = prng.chance(0.5);
  if (prng.chance(0.8)) {
    const metadata: Record<string, string> = {};
    const count = prng.nextInt(10);
    for (let i = 0; i < count; i++) metadata[prng.chance(0.05) ? '__proto__' : randomString(prng, 6)] = randomString(prng, 40);
    instance['metadata'] = metadata;
  }
  if (prng.chance(0.8)) instance['instanceId'] = randomString(prng, 30);
  if (prng.chance(0.7)) instance['version'] = prng.chance(0.1) ? 2 ** 53 - 1 : prng.nextInt(1000);
  return instance;
}

function randomResponse(prng: Prng, method: string): Record<string, unknown> {
  if (method === 'ListInstances' || method === 'Subscribe') {
    const response: Record<string, unknown> = {
      instances: Array.from({ length: prng.nextInt(12) }, () => randomInstance(prng)),
    };
    if (prng.chance(0.8)) response['service'] = { namespace: 'public', group: 'DEFAULT_GROUP', name: randomString(prng, 10), protectThreshold: 0.5, metadata: { a: 'b' } };
    if (prng.chance(0.5)) response['reachProtectionThreshold'] = prng.chance(0.5);
    if (prng.chance(0.8)) response['checksum'] = randomString(prng, 16);
    if (prng.chance(0.8)) response['revision'] = prng.nextInt(1 << 30);
    return response;
  }
  const response: Record<string, unknown> = {};
  if (prng.chance(0.9)) response['instance'] = randomInstance(prng);
  if (method !== 'GetInstance' && prng.chance(0.8)) response['revision'] = prng.nextInt(1 << 30);
  return response;
}

/** keyPaths lists every key of a value with its path, in order, so two objects can be compared in key order. */
function keyPaths(value: unknown, path = ''): string[] {
  if (typeof value !== 'object' || value === null) return [];
  const out: string[] = [];
  for (const key of Object.keys(value)) {
    out.push(`${path}/${key}`);
    out.push(...keyPaths((value as Record<string, unknown>)[key], `${path}/${key}`));
  }
  return out;
}

function assertSame(fast: Decoder, loader: Decoder, bytes: Buffer, what: string): void {
  const expected = loader(bytes);
  const actual = fast(bytes);
  assert.deepStrictEqual(actual, expected, what);
  assert.deepStrictEqual(keyPaths(actual), keyPaths(expected), `${what}: key order`);
}

/** fieldsOf splits a message into its top-level fields (each as its raw bytes, tag included). */
function fieldsOf(bytes: Buffer): Buffer[] {
  const fields: Buffer[] = [];
  let pos = 0;
  const varint = (): number => {
    let value = 0;
    for (let shift = 0; ; shift += 7) {
      const byte = bytes[pos++] as number;
      value += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) return value;
    }
  };
  while (pos < bytes.length) {
    const start = pos;
    const tag = varint();
    const wire = tag & 7;
    if (wire === 0) varint();
    else if (wire === 1) pos += 8;
    else if (wire === 5) pos += 4;
    else {
      const length = varint();
      pos += length;
    }
    fields.push(bytes.subarray(start, pos));
  }
  return fields;
}

/** unknownField is a field number no naming message uses, with a random wire type. */
function unknownField(prng: Prng): Buffer {
  const number = 900 + prng.nextInt(50);
  switch (prng.nextInt(4)) {
    case 0: return Buffer.from([...varintBytes(number << 3), 0x96, 0x01]);
    case 1: return Buffer.from([...varintBytes((number << 3) | 1), 1, 2, 3, 4, 5, 6, 7, 8]);
    case 2: return Buffer.from([...varintBytes((number << 3) | 2), 3, 0x61, 0x62, 0x63]);
    default: return Buffer.from([...varintBytes((number << 3) | 5), 9, 9, 9, 9]);
  }
}

function varintBytes(value: number): number[] {
  const out: number[] = [];
  let rest = value;
  while (rest >= 0x80) {
    out.push((rest & 0x7f) | 0x80);
    rest = Math.floor(rest / 0x80);
  }
  out.push(rest);
  return out;
}

/**
 * rewritten re-writes a message with its top-level fields shuffled and unknown fields added, and each Instance in
 * `instanceField` (half of them) the same way; a singular field stays single.
 */
function rewritten(prng: Prng, bytes: Buffer, instanceField: number, depth = 0): Buffer {
  const fields = fieldsOf(bytes).map((field) => {
    // Instances are the length-delimited fields holding them: re-write those too, one level down.
    const tag = field[0] as number;
    const number = tag >>> 3;
    const isInstance = depth === 0 && (tag & 7) === 2 && number === instanceField;
    if (!isInstance || prng.chance(0.5)) return field;
    let pos = 1;
    let length = 0;
    for (let shift = 0; ; shift += 7) {
      const byte = field[pos++] as number;
      length += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) break;
    }
    const body = field.subarray(pos, pos + length);
    // Only Instance bodies (field 2 of lists, field 1 of instance responses) are reshuffled; a Service is kept.
    const inner = rewritten(prng, body, instanceField, depth + 1);
    return Buffer.concat([Buffer.from([tag, ...varintBytes(inner.length)]), inner]);
  });
  const shuffled: Buffer[] = [];
  for (const field of fields) {
    shuffled.splice(prng.nextInt(shuffled.length + 1), 0, field);
    if (prng.chance(0.2)) shuffled.splice(prng.nextInt(shuffled.length + 1), 0, unknownField(prng));
  }
  return Buffer.concat(shuffled);
}

test('the fast decoder agrees with proto-loader on random responses of every method that carries instances', () => {
  const prng = new Prng(2024);
  for (const method of methods) {
    const { fast, loader } = decoders(method);
    const serialize = methodDefinitionOf(namingServiceName, method).responseSerialize;
    for (let i = 0; i < 300; i++) {
      const bytes = serialize(randomResponse(prng, method));
      assertSame(fast, loader, bytes, `${method} #${i}`);
    }
  }
});

test('fields in any order, unknown fields and scalars written twice decode as proto-loader decodes them', () => {
  const prng = new Prng(77);
  for (const method of ['ListInstances', 'RegisterInstance', 'GetInstance'] as const) {
    const { fast, loader } = decoders(method);
    const serialize = methodDefinitionOf(namingServiceName, method).responseSerialize;
    for (let i = 0; i < 300; i++) {
      const original = serialize(randomResponse(prng, method));
      const instanceField = method === 'ListInstances' ? 2 : 1;
      const bytes = rewritten(prng, original, instanceField);
      assertSame(fast, loader, bytes, `${method} rewritten #${i}`);
    }
  }
});

test('a scalar of an instance written twice: the last value wins, as in protobufjs', () => {
  const { fast, loader } = decoders('GetInstance');
  const instance = Buffer.from([0x10, 0x50, 0x10, 0x51, 0x0a, 1, 0x61, 0x0a, 1, 0x62]); // port 80, port 81, ip 'a', ip 'b'
  const bytes = Buffer.from([0x0a, instance.length, ...instance]);
  assertSame(fast, loader, bytes, 'repeated scalars');
  assert.deepEqual(fast(bytes)['instance'], { ip: 'b', port: 81 });
});

test('truncated or malformed bytes throw, or decode to exactly what proto-loader decodes', () => {
  const prng = new Prng(5);
  const lookedUp = loaderNamingType('cairn.naming.v1.ListInstancesResponse');
  assert.ok(lookedUp.fieldsById[2] !== undefined);
  for (const method of ['ListInstances', 'RegisterInstance'] as const) {
    const { fast, loader } = decoders(method);
    const serialize = methodDefinitionOf(namingServiceName, method).responseSerialize;
    let threw = 0;
    for (let i = 0; i < 20; i++) {
      const bytes = serialize(randomResponse(prng, method));
      for (let cut = 0; cut < bytes.length; cut += 1 + prng.nextInt(7)) {
        const prefix = bytes.subarray(0, cut);
        let actual: Record<string, unknown>;
        try {
          actual = fast(prefix);
        } catch {
          threw += 1;
          continue;
        }
        assert.deepStrictEqual(actual, loader(prefix), `${method} #${i} cut at ${cut}`);
      }
    }
    assert.ok(threw > 0, `${method}: some prefix must be refused`);
  }
  const { fast } = decoders('GetInstance');
  // A group (wire type 3) and a wire type the field cannot have are refused.
  assert.throws(() => fast(Buffer.from([0x0a, 2, 0x0b, 0x0c])), /wire type/);
  assert.throws(() => fast(Buffer.from([0x0a, 2, 0x12, 0x00])), /wire type/);
  // A length past the end of the message.
  assert.throws(() => fast(Buffer.from([0x0a, 5, 0x0a])), /length beyond/);
});
