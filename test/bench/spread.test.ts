// Goal: pin `--via spread` (bench/lib/spread.ts): requests go to the members' drivers in turn, the preparation runs
// once, the session workloads are refused as not measured (not run against one member behind the flag's back), and
// close() closes every member's driver. The drivers under it are recorders: the seam is the systems' clients, which
// the bench smoke test runs for real.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import type { Driver, Slot, TargetId } from '../../bench/lib/driver.ts';
import { NotMeasured } from '../../bench/lib/runner.ts';
import { SpreadDriver } from '../../bench/lib/spread.ts';

function recorder(id: TargetId, name: string, calls: string[]): Driver {
  return {
    id,
    prepare: () => {
      calls.push(`${name} prepare`);
      return Promise.resolve();
    },
    register: (slot) => {
      calls.push(`${name} register ${slot.port}`);
      return Promise.resolve();
    },
    deregister: (slot) => {
      calls.push(`${name} deregister ${slot.port}`);
      return Promise.resolve();
    },
    list: (consistency) => {
      calls.push(`${name} list ${consistency}`);
      return Promise.resolve(100);
    },
    get: (slot, consistency) => {
      calls.push(`${name} get ${slot.port} ${consistency}`);
      return Promise.resolve();
    },
    openEphemeral: () => Promise.reject(new Error('a member driver must not be asked')),
    openNotify: () => Promise.reject(new Error('a member driver must not be asked')),
    close: () => {
      calls.push(`${name} close`);
      return Promise.resolve();
    },
  };
}

const slot = (port: number): Slot => ({ service: 0, ip: '10.0.0.1', port });

describe('SpreadDriver (--via spread)', () => {
  test('each request goes to the next member in turn; the preparation once; close closes all', async () => {
    const calls: string[] = [];
    const spread = new SpreadDriver(['a', 'b', 'c'].map((name) => recorder('cairn-grpc', name, calls)));
    assert.equal(spread.id, 'cairn-grpc');
    await spread.prepare(4, 100);
    await spread.register(slot(1));
    await spread.register(slot(2));
    assert.equal(await spread.list('linearizable'), 100);
    await spread.get(slot(3), 'local');
    await spread.deregister(slot(1));
    await spread.close();
    assert.deepStrictEqual(calls, [
      'a prepare', 'a register 1', 'b register 2', 'c list linearizable', 'a get 3 local', 'b deregister 1', 'a close', 'b close', 'c close',
    ]);
  });

  test('beats and notifications are not measured spread; drivers of different targets are refused', async () => {
    const spread = new SpreadDriver([recorder('etcd-grpc', 'a', []), recorder('etcd-grpc', 'b', [])]);
    await assert.rejects(spread.openEphemeral(), NotMeasured);
    await assert.rejects(spread.openNotify(), NotMeasured);
    assert.throws(() => new SpreadDriver([]), /one or more drivers of one target/);
    assert.throws(() => new SpreadDriver([recorder('etcd-grpc', 'a', []), recorder('zookeeper', 'b', [])]), /one or more drivers of one target/);
  });
});
