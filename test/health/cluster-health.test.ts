// Goal: in a three-member cluster the active health checks are shared and survive failures (issue 4): every member
// probes a share of the persistent instances and together they probe each exactly once; when the member probing an
// instance is killed, another takes it over (the gap between two probes of it is printed and bounded by detection
// plus one interval); and a prober partitioned from the cluster (but not from its targets) cannot commit what it saw:
// the others take its share and decide the instance's health, and after the partition heals its stale verdict is
// dropped or fenced by the log, never committed.
// Method: three member processes on 127.0.1.120-122 (this file's block is 127.0.1.120-129), 30 persistent instances
// with the default TCP checker pointing at listeners this test runs on 127.0.1.125, which record when each port is
// probed. Shares are read from each member's GET /metrics (cairn_health_targets) and owners computed with the same
// probeOwner the members use. Members are killed and restarted by PID; the partition uses iptables DROP rules between
// member addresses tagged with this file's tag and removed (only ours) even on failure.

import assert from 'node:assert/strict';
import net, { type AddressInfo } from 'node:net';
import { test } from 'node:test';
import { probeOwner } from '../../src/cp/probe-assignment.ts';
import { holdsFor, jsonOf, startCluster, waitFor, type Member } from '../support/cluster.ts';
import { connectionsTo, hostOf, Partitioner, requireIptables } from '../support/iptables.ts';

const hosts = ['127.0.1.120', '127.0.1.121', '127.0.1.122', '127.0.1.123'];
const targetHost = '127.0.1.125';
const instanceCount = 30;

/** Targets are TCP listeners recording the times each port was probed. */
class Targets {
  readonly servers = new Map<number, net.Server>();
  readonly probes = new Map<number, number[]>();

  async open(count: number): Promise<void> {
    for (let i = 0; i < count; i++) await this.listen(0);
  }

  async listen(port: number): Promise<number> {
    const server = net.createServer((socket) => {
      socket.on('error', () => undefined);
      const times = this.probes.get(actual) ?? [];
      if (times.length < 1000) times.push(Date.now());
      this.probes.set(actual, times);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, targetHost, () => resolve());
    });
    const actual = (server.address() as AddressInfo).port;
    this.servers.set(actual, server);
    return actual;
  }

  async close(port: number): Promise<void> {
    const server = this.servers.get(port);
    this.servers.delete(port);
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  closeAll(): void {
    for (const server of this.servers.values()) server.close();
  }
}

async function gauge(member: Member, name: string, labels = ''): Promise<number> {
  const answer = await member.request('GET', '/metrics');
  const line = answer.text.split('\n').find((text) => text.startsWith(`${name}${labels} `));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

async function shares(members: readonly Member[]): Promise<number[]> {
  return Promise.all(members.map((member) => gauge(member, 'cairn_health_targets')));
}

/** foreignPeerSources lists peer connections not sourced from a member address (a partition between member addresses cannot cut them). */
function foreignPeerSources(members: readonly Member[]): string[] | null {
  const connections = connectionsTo(members.map((member) => `${member.host}:${member.port - 1000}`));
  if (connections === null) return null;
  return connections.filter((connection) => !members.some((member) => member.host === hostOf(connection.local))).map((c) => `${c.local} -> ${c.peer}`);
}

async function healthOf(member: Member, port: number): Promise<boolean | undefined> {
  const answer = await member.request('GET', '/nacos/v1/ns/instance/list?serviceName=shared');
  const body = jsonOf(answer, 'instance list') as { hosts: Array<{ port: number; healthy: boolean }> };
  return body.hosts.find((host) => host.port === port)?.healthy;
}

test('three members share the probing, take over a killed prober\'s share, and fence a partitioned prober', async (t) => {
  const cluster = await startCluster(t, { file: 'health-cluster', hosts, size: 3, httpPort: 18848, logLevel: 'info' });
  const targets = new Targets();
  t.after(() => targets.closeAll());
  await targets.open(instanceCount);
  const ports = [...targets.servers.keys()];
  const { leader } = await cluster.waitForLeader();
  for (const port of ports) {
    const answer = await leader.request('POST', `/nacos/v1/ns/instance?serviceName=shared&ip=${targetHost}&port=${port}&ephemeral=false`);
    assert.equal(answer.status, 200, answer.text);
  }
  const addrs = cluster.members.map((member) => member.addr).sort();

  await cluster.step(t, 'probing is shared: every member probes a share, together every instance once', async () => {
    const found = await waitFor(async () => {
      const counts = await shares(cluster.members);
      return counts.every((count) => count > 0) && counts.reduce((a, b) => a + b, 0) === instanceCount ? counts : null;
    }, { timeoutMs: 15_000, intervalMs: 250, what: 'the shares to cover the 30 instances' });
    t.diagnostic(`shares: ${found.join(', ')}`);
    await waitFor(() => ports.every((port) => (targets.probes.get(port)?.length ?? 0) > 0), { timeoutMs: 12_000, what: 'every instance probed' });
  });

  await cluster.step(t, 'kill the prober of an instance: another takes it over', async () => {
    const port = ports[0] ?? 0;
    const owner = cluster.member(probeOwner(addrs, targetHost, port) ?? '');
    const killedAt = Date.now();
    await owner.kill9();
    const next = await waitFor(() => targets.probes.get(port)?.find((at) => at > killedAt + 100), { timeoutMs: 15_000, intervalMs: 50, what: `a probe of port ${port} after its prober died` });
    t.diagnostic(`takeover: the next probe came ${next - killedAt} ms after the prober was killed`);
    assert.ok(next - killedAt < 12_000, 'detection (an election timeout plus settling) and one interval');
    const survivors = cluster.members.filter((member) => member !== owner);
    await waitFor(async () => (await shares(survivors)).reduce((a, b) => a + b, 0) === instanceCount, { timeoutMs: 10_000, what: 'the survivors to cover every instance' });
    await owner.restart();
    await waitFor(async () => {
      const counts = await shares(cluster.members);
      return counts.every((count) => count > 0) && counts.reduce((a, b) => a + b, 0) === instanceCount;
    }, { timeoutMs: 15_000, intervalMs: 250, what: 'the restarted member to take its share back' });
  });

  await cluster.step(t, 'a partitioned prober\'s verdict is not committed', async (step) => {
    if (!requireIptables(step)) return;
    const foreign = foreignPeerSources(cluster.members);
    if (foreign === null || foreign.length > 0) {
      // The same precondition as test/cluster/partition.test.ts: rules between member addresses cut nothing otherwise.
      step.skip(`peer connections do not all come from member addresses (${foreign === null ? 'ss unavailable' : foreign.join(', ')}): a partition cannot be made`);
      return;
    }
    const { leader: current } = await cluster.waitForLeader();
    const follower = cluster.members.find((member) => member !== current);
    assert.ok(follower !== undefined);
    const port = ports.find((candidate) => probeOwner(addrs, targetHost, candidate) === follower.addr);
    assert.ok(port !== undefined, `${follower.addr} owns one of the instances`);
    const appliedBefore = await gauge(follower, 'cairn_health_flips_total', '{outcome="applied"}');
    const partitioner = new Partitioner('health-cluster');
    try {
      partitioner.isolate(follower.host, cluster.members.filter((member) => member !== follower).map((member) => member.host));
      await targets.close(port);
      await waitFor(async () => (await gauge(follower, 'cairn_health_verdicts_total', '{to="unhealthy"}')) >= 1, { timeoutMs: 10_000, what: 'the partitioned prober to decide "unhealthy"' });
      await waitFor(async () => (await healthOf(current, port)) === false, { timeoutMs: 20_000, intervalMs: 200, what: 'the majority to take the share and commit "unhealthy"' });
      await targets.listen(port);
      await waitFor(async () => (await healthOf(current, port)) === true, { timeoutMs: 20_000, intervalMs: 200, what: 'the majority to commit "healthy" again' });
      assert.equal(await gauge(follower, 'cairn_health_flips_total', '{outcome="applied"}'), appliedBefore, 'nothing the partitioned prober sent was applied');
    } finally {
      partitioner.close();
    }
    await holdsFor(async () => (await healthOf(current, port)) === true, { durationMs: 8000, intervalMs: 250, what: 'the instance to stay healthy after the heal' });
    const fenced = await gauge(follower, 'cairn_health_flips_total', '{outcome="fenced"}');
    const dropped = await gauge(follower, 'cairn_health_flips_total', '{outcome="dropped"}');
    step.diagnostic(`the partitioned prober's stale verdicts: ${fenced} fenced by the log, ${dropped} dropped before sending`);
    const stale = fenced + dropped;
    assert.ok(stale >= 1, 'the stale verdict was fenced by the log or dropped as stale');
    assert.equal(await gauge(follower, 'cairn_health_flips_total', '{outcome="applied"}'), appliedBefore);
  });
});
