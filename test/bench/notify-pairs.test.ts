// Goal: pin two of the bench's workloads against Cairn (bench/lib/cairn.ts). Notify: every pair starts from
// "absent", so its first change (a registration) is a real change and is notified. Earlier full runs counted "no
// notification within 10 s" errors for pairs that a previous client count had left registered: registering the same
// instance again changes nothing, so nothing was pushed.
// Method: one real standalone member (127.0.1.184, this file's address); a first run of the workload makes one change
// (pair 0 registered, as an earlier client count would leave it); a second run's two changes (register, deregister)
// must each be notified, and a plain list afterwards shows the pair absent again.
// Beat: a client's Session stream holds at most a given number of instances, then the client goes on in a new one
// (a member keeps at most 10 000 per session, which a 1-client cell of 10 s would pass); with 3 per stream, 7
// registrations of one client make 3 live sessions on the member, all 7 instances listed, and none after the close.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { CairnGrpc } from '../../bench/lib/cairn.ts';
import { names, type Slot } from '../../bench/lib/driver.ts';
import { httpRequest, jsonOf, startCluster } from '../support/cluster.ts';

const host = '127.0.1.184';
const httpPort = 18848;

test('notify pairs start absent: a pair left registered by an earlier run is still notified on its first change', { timeout: 90_000 }, async (t) => {
  const cluster = await startCluster(t, { file: 'bench-notify-pairs', hosts: [host], size: 1, httpPort });
  const member = cluster.members[0];
  assert.ok(member !== undefined);
  const service = names.notify(0);
  const driver = new CairnGrpc(`${host}:${httpPort + 1000}`, member.addr);
  try {
    // A first run (one client count) ends after an odd number of changes: the pair's instance stays registered.
    const first = await driver.openNotify(1);
    try {
      assert.ok((await first.change(0)) > 0, 'the first run registered and was notified');
    } finally {
      await first.close();
    }
    // The next run (the next client count) must start from absent, or its first change would register the same
    // instance again: no change, no notification, and the change would time out.
    const second = await driver.openNotify(1);
    try {
      const registered = await second.change(0);
      const removed = await second.change(0);
      assert.ok(registered > 0 && removed > 0, `both changes notified (${registered.toFixed(1)} ms, ${removed.toFixed(1)} ms)`);
    } finally {
      await second.close();
    }
  } finally {
    await driver.close();
  }
  const list = jsonOf(await httpRequest(member.addr, 'GET', `/nacos/v1/ns/instance/list?serviceName=${service}`), 'list') as { hosts: unknown[] };
  assert.deepEqual(list.hosts, [], 'after register + deregister the pair is absent again');
});

/** apGauge reads one unlabelled cairn_ap_* gauge from the member's /metrics. */
async function apGauge(addr: string, name: string): Promise<number> {
  const text = (await httpRequest(addr, 'GET', '/metrics')).text;
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  assert.ok(line !== undefined, `${name} on /metrics`);
  return Number(line.slice(name.length + 1));
}

test('the beat workload opens a new Session stream when one holds its share of instances, and keeps the old ones alive', { timeout: 90_000 }, async (t) => {
  const cluster = await startCluster(t, { file: 'bench-session-rollover', hosts: [host], size: 1, httpPort });
  const member = cluster.members[0];
  assert.ok(member !== undefined);
  const driver = new CairnGrpc(`${host}:${httpPort + 1000}`, member.addr);
  try {
    const pool = await driver.openEphemeral(1, 3);
    const slots: Slot[] = Array.from({ length: 7 }, (_, i) => ({ service: 0, ip: `127.200.0.${i + 1}`, port: 8081 }));
    try {
      for (const slot of slots) await pool.register(0, slot);
      assert.equal(await apGauge(member.addr, 'cairn_ap_sessions'), 3, '7 instances at 3 per stream: 3 sessions');
      const list = jsonOf(await httpRequest(member.addr, 'GET', `/nacos/v1/ns/instance/list?serviceName=${names.ephemeral(0)}`), 'list') as { hosts: Array<{ ip: string }> };
      assert.deepEqual(list.hosts.map((h) => h.ip).sort(), slots.map((s) => s.ip).sort(), 'every instance of every stream is registered');
    } finally {
      await pool.close();
    }
    // The close cancels every stream, the full ones too: their instances go with them.
    const deadline = Date.now() + 10_000;
    let hosts: unknown[] = [{}];
    while (hosts.length > 0 && Date.now() < deadline) {
      hosts = (jsonOf(await httpRequest(member.addr, 'GET', `/nacos/v1/ns/instance/list?serviceName=${names.ephemeral(0)}`), 'list') as { hosts: unknown[] }).hosts;
      if (hosts.length > 0) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.deepEqual(hosts, [], 'no instance left after the pool closed');
    assert.equal(await apGauge(member.addr, 'cairn_ap_sessions'), 0);
  } finally {
    await driver.close();
  }
});
