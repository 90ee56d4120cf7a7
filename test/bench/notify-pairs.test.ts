// Goal: pin the bench's notify workload against Cairn (bench/lib/cairn.ts openNotify): every pair starts from
// "absent", so its first change (a registration) is a real change and is notified. Earlier full runs counted "no
// notification within 10 s" errors for pairs that a previous client count had left registered: registering the same
// instance again changes nothing, so nothing was pushed.
// Method: one real standalone member (127.0.1.184, this file's address); a first run of the workload makes one change
// (pair 0 registered, as an earlier client count would leave it); a second run's two changes (register, deregister)
// must each be notified, and a plain list afterwards shows the pair absent again.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { CairnGrpc } from '../../bench/lib/cairn.ts';
import { names } from '../../bench/lib/driver.ts';
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
