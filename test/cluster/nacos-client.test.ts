// Goal: the real npm `nacos` client (NacosNamingClient, HTTP v1 + UDP push, NACOS.md §10) works against Cairn
// unchanged: it registers ephemeral instances (kept alive by its beats), lists them, subscribes and receives UDP
// pushes well under 2 s after a change made through ANOTHER member (Distro replication plus push), deregisters,
// pages the service list, and reports the server UP; in the namespace `public` and in a second namespace
// (`default`, which older clients used by default).
// Method: a 3-member Cairn cluster of real processes on this file's addresses 127.0.1.170-172 (test/support/
// cluster.ts). Two clients per namespace: a writer whose serverList is member 1 and a subscriber whose serverList is
// member 2, so every push crosses the AP replication. Registered instances use 127.0.1.17x addresses (ephemeral
// instances are never probed). Push latency is measured from just before the write is sent to the subscriber's
// listener call. Nothing is mocked: the client's own UDP receiver, beat loop and HTTP proxy talk to the members.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { httpRequest, jsonOf, sleep, startCluster, waitFor } from '../support/cluster.ts';

const require = createRequire(import.meta.url);

/** NacosHost is an instance as the nacos client hands it to listeners. */
interface NacosHost {
  readonly ip: string;
  readonly port: number;
  readonly healthy: boolean;
  readonly weight: number;
  readonly metadata?: Record<string, string>;
}

/** NacosNamingClient is the part of the client's API this test uses. */
interface NacosNamingClient {
  ready(): Promise<void>;
  registerInstance(serviceName: string, instance: Record<string, unknown>, groupName?: string): Promise<void>;
  deregisterInstance(serviceName: string, instance: Record<string, unknown>, groupName?: string): Promise<void>;
  getAllInstances(serviceName: string, groupName?: string, clusters?: string, subscribe?: boolean): Promise<NacosHost[]>;
  selectInstances(serviceName: string, groupName?: string, clusters?: string, healthy?: boolean, subscribe?: boolean): Promise<NacosHost[]>;
  getServerStatus(): Promise<string>;
  subscribe(info: string | { serviceName: string; groupName?: string }, listener: (hosts: NacosHost[]) => void): void;
  close(): Promise<void>;
  on(event: 'error', listener: (error: Error) => void): void;
  _serverProxy: { getServiceList(pageNo: number, pageSize: number, groupName: string): Promise<{ count: number; data: string[] }> };
}

const { NacosNamingClient: NacosClientClass } = require('nacos') as { NacosNamingClient: new (options: Record<string, unknown>) => NacosNamingClient };

const hosts = ['127.0.1.170', '127.0.1.171', '127.0.1.172'];
const silent = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined };

/** clientErrors collects what the clients report as errors (sdk-base 'error' events): none may happen while the cluster runs. */
const clientErrors: string[] = [];

async function client(serverAddr: string, namespace: string): Promise<NacosNamingClient> {
  const made = new NacosClientClass({ logger: silent, serverList: serverAddr, namespace });
  made.on('error', (error) => clientErrors.push(error.message));
  await made.ready();
  return made;
}

for (const namespace of ['public', 'default']) {
  test(`the npm nacos client works unchanged (namespace ${namespace}): register, list, push, beats, deregister, service list`, async (t) => {
    const cluster = await startCluster(t, { file: `nacos-client-${namespace}`, hosts, size: 3, logLevel: 'warn' });
    await cluster.waitForLeader({ timeoutMs: 20_000 });
    const [first, second] = cluster.members;
    assert.ok(first !== undefined && second !== undefined);
    const writer = await client(first.addr, namespace);
    const reader = await client(second.addr, namespace);
    // Fallback for a failing test; close() is idempotent.
    t.after(async () => {
      await writer.close();
      await reader.close();
    });
    assert.equal(await writer.getServerStatus(), 'UP');

    const service = `orders-${namespace}`;
    const updates: Array<{ at: number; hosts: NacosHost[] }> = [];
    reader.subscribe(service, (list) => updates.push({ at: Date.now(), hosts: list }));
    // The subscription's first list registers the client's UDP port with member 2.
    await waitFor(async () => (await reader.getAllInstances(service)).length === 0 || undefined, { timeoutMs: 5000, what: 'the first (empty) list' });

    const one = { ip: '127.0.1.173', port: 8080, weight: 2, metadata: { zone: 'a' } };
    const sentAt = Date.now();
    await writer.registerInstance(service, one);
    const pushed = await waitFor(() => updates.find((update) => update.hosts.some((host) => host.ip === one.ip)), { timeoutMs: 5000, intervalMs: 5, what: 'a push naming the new instance' });
    const pushMs = pushed.at - sentAt;
    t.diagnostic(`register on member 1 -> push through member 2 -> listener: ${pushMs} ms`);
    assert.ok(pushMs < 2000, `the push arrived ${pushMs} ms after the write (bound 2000 ms)`);
    const host = pushed.hosts.find((entry) => entry.ip === one.ip);
    assert.equal(host?.port, 8080);
    assert.equal(host?.weight, 2);
    assert.equal(host?.healthy, true);
    assert.deepEqual(host?.metadata, { zone: 'a' });

    // A direct list from each member names it (it reached every member), and healthyOnly selection agrees.
    for (const member of cluster.members) {
      const direct = await client(member.addr, namespace);
      try {
        await waitFor(async () => (await direct.getAllInstances(service, undefined, '', false)).some((entry) => entry.ip === one.ip) || undefined,
          { timeoutMs: 5000, what: `the instance listed by ${member.addr}` });
      } finally {
        await direct.close();
      }
    }
    assert.deepEqual((await writer.selectInstances(service, undefined, '', true, false)).map((entry) => entry.ip), [one.ip]);

    // The client's beats keep the instance: its first beat goes out about 10 s after the client started, and the
    // member answers with the interval to use; the instance is still healthy after the unhealthy timeout (15 s).
    const beats = await waitFor(async () => {
      const metrics = await httpRequest(first.addr, 'GET', '/metrics');
      const match = /cairn_ap_beats_total(?:\{[^}]*\})? (\d+)/.exec(metrics.text);
      return match !== null && Number(match[1]) > 0 ? Number(match[1]) : undefined;
    }, { timeoutMs: 20_000, intervalMs: 250, what: 'a beat from the nacos client counted by member 1' });
    t.diagnostic(`beats counted by member 1: ${beats}`);
    await sleep(Math.max(0, 16_000 - (Date.now() - sentAt)));
    const afterTimeout = await writer.getAllInstances(service, undefined, '', false);
    assert.equal(afterTimeout.find((entry) => entry.ip === one.ip)?.healthy, true, 'beats kept the instance healthy past 15 s');

    // The service list pages grouped names as Nacos does.
    const page = await writer._serverProxy.getServiceList(1, 10, 'DEFAULT_GROUP');
    assert.ok(page.count >= 1 && page.data.includes(service), `service list: ${JSON.stringify(page)}`);

    // A second instance then a deregistration reach the subscriber as pushes too.
    const two = { ip: '127.0.1.174', port: 8081 };
    await writer.registerInstance(service, two);
    await waitFor(() => updates.some((update) => update.hosts.length === 2), { timeoutMs: 5000, intervalMs: 5, what: 'a push with both instances' });
    const removedAt = Date.now();
    await writer.deregisterInstance(service, one);
    const afterRemoval = await waitFor(() => updates.find((update) => update.at >= removedAt && update.hosts.length === 1), { timeoutMs: 5000, intervalMs: 5, what: 'a push without the deregistered instance' });
    assert.deepEqual(afterRemoval.hosts.map((entry) => entry.ip), [two.ip]);
    t.diagnostic(`deregister -> push: ${afterRemoval.at - removedAt} ms`);

    // The members agree through the HTTP API as well (no resurrection on any member).
    for (const member of cluster.members) {
      const answer = await httpRequest(member.addr, 'GET', `/nacos/v1/ns/instance/list?serviceName=${service}&namespaceId=${namespace}`);
      const list = jsonOf(answer, 'instance list') as { hosts: NacosHost[] };
      assert.deepEqual(list.hosts.map((entry) => entry.ip), [two.ip], `${member.addr} lists only the remaining instance`);
    }
    // Clients stop before the cluster does, so their polling never meets a stopped member.
    await writer.close();
    await reader.close();
    assert.deepEqual(clientErrors, [], 'the clients reported no error while the cluster ran');
  });
}
