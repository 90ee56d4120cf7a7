// Goal: the instance-list bodies Cairn sends as JSON text (v1InstanceListJson, v2ServiceInfoJson, v2SuccessJson in
// src/api/http/shapes.ts, which reuse a list's rendered hosts while the list object is the same) are byte for byte
// what JSON.stringify makes of the object shapes, for every context a request can give (grouped or plain names,
// clusters and env echoed, lastRefTime), on the first render and on every reuse, and through the real routes with
// the same content type as every other JSON answer.
// Method: seeded random lists (awkward metadata: quotes, backslashes, U+2028, astral characters, `preserved.*`
// overrides) rendered under shuffled contexts, each compared with JSON.stringify of v1InstanceList / v2ServiceInfo;
// then registrations through buildApp() over the real naming layer, whose list answers are compared with the shapes
// of the naming service's own list, before and after a change (which must not be answered from the old text).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { v2Success } from '../../../src/api/http/errors.ts';
import {
  v1InstanceList,
  v1InstanceListJson,
  v2ServiceInfo,
  v2ServiceInfoJson,
  v2SuccessJson,
  type ListContext,
} from '../../../src/api/http/shapes.ts';
import type { Instance, ServiceDefinition } from '../../../src/naming/model.ts';
import type { InstanceList } from '../../../src/naming/naming-service.ts';
import { Prng } from '../../../src/raft/prng.ts';
import { buildHarness, call, fixedNow, javaClient, query } from './harness.ts';

const awkward = ['a', 'Z', '0', '"', '\\', '\u2028', '\n', 'é', '日', '😀', ' ', '/', '<'];

function text(prng: Prng, maxChars: number): string {
  let out = '';
  const length = prng.nextInt(maxChars + 1);
  for (let i = 0; i < length; i++) out += awkward[prng.nextInt(awkward.length)];
  return out;
}

function randomInstance(prng: Prng, i: number): Instance {
  const metadata: Record<string, string> = {};
  const labels = prng.nextInt(5);
  for (let k = 0; k < labels; k++) metadata[`k${k}${text(prng, 3)}`] = text(prng, 12);
  if (prng.chance(0.3)) metadata['preserved.heart.beat.interval'] = String(1000 + prng.nextInt(9000));
  if (prng.chance(0.2)) metadata['preserved.heart.beat.timeout'] = prng.chance(0.5) ? 'not a number' : '30000';
  if (prng.chance(0.2)) metadata['preserved.instance.id.generator'] = 'snowflake';
  const ip = `10.0.${i >> 8}.${i & 255}`;
  const port = 1 + prng.nextInt(65535);
  const cluster = prng.chance(0.7) ? 'DEFAULT' : `c${text(prng, 4)}`;
  return {
    ip,
    port,
    cluster,
    weight: prng.chance(0.5) ? 1 : prng.nextInt(100_000) / 100,
    enabled: true,
    healthy: prng.chance(0.8),
    ephemeral: prng.chance(0.5),
    metadata,
    instanceId: `${ip}#${port}#${cluster}#DEFAULT_GROUP@@svc`,
    ...(prng.chance(0.5) ? { version: 1 + prng.nextInt(9) } : {}),
  };
}

function randomList(prng: Prng, service: ServiceDefinition | null): InstanceList {
  const hosts = Array.from({ length: service === null ? 0 : prng.nextInt(30) }, (_, i) => randomInstance(prng, i));
  return Object.freeze({
    service,
    hosts,
    reachProtectionThreshold: prng.chance(0.2),
    clusters: [],
    checksum: text(prng, 8),
    revision: prng.nextInt(1000),
  });
}

function randomContext(prng: Prng): ListContext {
  return {
    group: prng.chance(0.7) ? 'DEFAULT_GROUP' : `g${text(prng, 4)}`,
    service: prng.chance(0.5) ? 'svc' : `s${text(prng, 6)}`,
    clusters: prng.chance(0.5) ? '' : `DEFAULT,${text(prng, 4)}`,
    env: prng.chance(0.7) ? '' : text(prng, 5),
    groupedForClient: prng.chance(0.5),
    lastRefTime: fixedNow + prng.nextInt(1_000_000),
  };
}

function serviceOf(prng: Prng): ServiceDefinition {
  const metadata: Record<string, string> = {};
  for (let k = prng.nextInt(3); k > 0; k--) metadata[`m${k}`] = text(prng, 6);
  return { namespace: 'public', group: 'DEFAULT_GROUP', name: 'svc', protectThreshold: 0, metadata, selector: { type: 'none' }, kind: null, revision: prng.nextInt(100) };
}

test('list bodies rendered as text equal JSON.stringify of their shapes, on first render and on reuse', () => {
  const prng = new Prng(20261122);
  let compared = 0;
  for (let round = 0; round < 200; round++) {
    const list = randomList(prng, prng.chance(0.1) ? null : serviceOf(prng));
    // The same list object under several contexts, each rendered twice: the reuse must follow the context's name.
    for (let c = 0; c < 4; c++) {
      const context = randomContext(prng);
      for (let again = 0; again < 2; again++) {
        assert.equal(v1InstanceListJson(list, context), JSON.stringify(v1InstanceList(list, context)), `v1, round ${round}`);
        assert.equal(v2ServiceInfoJson(list, context), JSON.stringify(v2ServiceInfo(list, context)), `v2, round ${round}`);
        compared += 2;
      }
    }
  }
  assert.equal(compared, 3200);
  const data = JSON.stringify({ a: '"\u2028', b: [1, 2] });
  assert.equal(v2SuccessJson(data), JSON.stringify(v2Success(JSON.parse(data) as unknown)));
});

test('the list routes answer the naming service list as JSON text, and a change is never answered from the old text', async () => {
  const h = await buildHarness();
  try {
    const register = async (ip: string, metadata: Record<string, string>): Promise<void> => {
      const answer = await call(h.app, 'POST', `/nacos/v1/ns/instance?${query({ serviceName: 'svc', ip, port: 8080, ephemeral: false, metadata: JSON.stringify(metadata) })}`);
      assert.equal(answer.status, 200, answer.text);
    };
    await register('10.0.0.1', { zone: 'a"b\\c', note: '\u2028😀' });
    await register('10.0.0.2', { zone: 'b' });
    const context: ListContext = { group: 'DEFAULT_GROUP', service: 'svc', clusters: '', env: '', groupedForClient: true, lastRefTime: fixedNow };
    const expected = async (): Promise<{ v1: string; v2: string }> => {
      const list = await h.naming.listInstances({ identity: null }, { namespace: 'public', group: 'DEFAULT_GROUP', service: 'svc' });
      return { v1: JSON.stringify(v1InstanceList(list, context)), v2: JSON.stringify(v2Success(v2ServiceInfo(list, context))) };
    };
    for (let pass = 0; pass < 2; pass++) {
      const want = await expected();
      const v1 = await call(h.app, 'GET', '/nacos/v1/ns/instance/list?serviceName=svc', { headers: javaClient });
      assert.equal(v1.status, 200, v1.text);
      assert.equal(v1.contentType, 'application/json; charset=utf-8');
      assert.equal(v1.text, want.v1);
      const v2 = await call(h.app, 'GET', '/nacos/v2/ns/instance/list?serviceName=svc');
      assert.equal(v2.status, 200, v2.text);
      assert.equal(v2.contentType, 'application/json; charset=utf-8');
      assert.equal(v2.text, want.v2);
      const hosts = (v1.json() as { hosts: Array<{ ip: string; metadata: Record<string, string> }> }).hosts;
      assert.equal(hosts.length, pass === 0 ? 2 : 3);
      assert.equal(hosts.find((host) => host.ip === '10.0.0.1')?.metadata['zone'], 'a"b\\c');
      if (pass === 0) await register('10.0.0.3', { zone: 'c' });
    }
  } finally {
    await h.app.close();
  }
});
