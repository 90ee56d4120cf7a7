// Goal: HTTP probes of several targets that share one origin (ip:port) do not queue behind each other (session 32's
// audit: four services on one ip:port whose health paths answer in 1.5 s of a 2 s timeout; three of four went
// unhealthy and kept flipping, because the prober had one connection per origin and each probe's timeout ran while
// it waited for the others). Each probe's timeout and measured latency cover its own exchange only; the origin's
// kept connection is still reused, the extra probes go on connections closed after their answer (so what stays open
// is bounded), and connectionsHeldMax still sends probes to origins beyond it on such connections. End to end, an
// ActiveHealthChecker probing four such targets keeps all four healthy.
// Method: one real HTTP server on 127.0.1.240 (this file's address; its block is 127.0.1.240-247) whose paths answer
// after a set delay, recording connections and each request's Connection header; the HttpProber driven directly,
// then an ActiveHealthChecker over a RegistryStateMachine behind a DirectProposer (test/support) with short intervals.

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { HttpProber } from '../../src/health/http-prober.ts';
import type { ActiveChecker, ProbeTarget } from '../../src/health/probe.ts';
import { CpRegistry } from '../../src/cp/cp-registry.ts';
import { RegistryStateMachine } from '../../src/cp/registry-state-machine.ts';
import { ActiveHealthChecker } from '../../src/health/health-checker.ts';
import type { ServiceKey } from '../../src/naming/model.ts';
import { DirectProposer, soleLeader } from '../support/direct-proposer.ts';
import { sleep } from '../support/cluster.ts';

const host = '127.0.1.240';

/** SlowOrigin answers every path after `delayMs`, recording connections and the Connection header of each request. */
class SlowOrigin {
  delayMs: number;
  connections = 0;
  open = 0;
  readonly connectionHeaders: string[] = [];
  readonly server = http.createServer((request, response) => {
    this.connectionHeaders.push(request.headers['connection'] ?? '');
    setTimeout(() => response.end('ok'), this.delayMs);
  });

  constructor(delayMs: number) {
    this.delayMs = delayMs;
    this.server.on('connection', (socket) => {
      this.connections += 1;
      this.open += 1;
      socket.on('close', () => {
        this.open -= 1;
      });
    });
  }

  async start(t: TestContext): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, host, () => resolve());
    });
    t.after(async () => {
      this.server.closeAllConnections();
      await new Promise<void>((resolve) => this.server.close(() => resolve()));
    });
    return (this.server.address() as AddressInfo).port;
  }
}

function httpTarget(id: string, port: number, path: string): ProbeTarget {
  const checker: ActiveChecker = { type: 'HTTP', path, headers: {}, expectedResponseCode: 200 };
  return { id, host, port, checker };
}

test('four targets on one origin answering in 60% of the timeout: all healthy, each latency its own exchange', async (t) => {
  const origin = new SlowOrigin(600);
  const port = await origin.start(t);
  const prober = new HttpProber();
  t.after(() => prober.close());
  const targets = [1, 2, 3, 4].map((n) => httpTarget(`svc-${n}`, port, `/slow${n}`));
  for (let round = 0; round < 2; round++) {
    const results = await Promise.all(targets.map((each) => prober.probe(each, 1000)));
    for (const [index, result] of results.entries()) {
      assert.equal(result.healthy, true, `round ${round}, target ${index + 1}: ${result.detail}`);
      assert.ok(result.latencyMs < 900, `round ${round}, target ${index + 1}: latency ${result.latencyMs.toFixed(0)} ms is not its own 600 ms exchange`);
    }
  }
  // One kept connection reused by a probe per round; the three others each had a connection closed after the answer.
  assert.equal(origin.connections, 1 + 2 * 3, 'one kept connection plus one per extra probe');
  assert.deepEqual(origin.connectionHeaders.filter((value) => value === 'close').length, 2 * 3, 'the extra probes asked to close');
  assert.equal(prober.overflowProbes, 2 * 3);
  await sleep(100);
  assert.equal(origin.open, 1, 'only the kept connection stays open');
});

test('a probe to a busy origin beyond connectionsHeldMax still goes on a connection of its own, closed after it', async (t) => {
  const first = new SlowOrigin(200);
  const second = new SlowOrigin(200);
  const [firstPort, secondPort] = [await first.start(t), await second.start(t)];
  const prober = new HttpProber({ connectionsHeldMax: 1 });
  t.after(() => prober.close());
  const results = await Promise.all([
    prober.probe(httpTarget('a', firstPort, '/a'), 1000),
    prober.probe(httpTarget('b', firstPort, '/b'), 1000),
    prober.probe(httpTarget('c', secondPort, '/c'), 1000),
    prober.probe(httpTarget('d', secondPort, '/d'), 1000),
  ]);
  for (const result of results) assert.equal(result.healthy, true, result.detail);
  assert.equal(prober.overflowProbes, 3, 'the held origin\'s second probe and both probes of the origin beyond the bound');
  await sleep(100);
  assert.equal(first.open + second.open, 1, 'one connection kept in all');
});

test('end to end: an ActiveHealthChecker keeps four services on one slow origin healthy', async (t) => {
  const origin = new SlowOrigin(600);
  const port = await origin.start(t);
  const machine = new RegistryStateMachine();
  const proposer = new DirectProposer(machine);
  const cp = new CpRegistry(proposer, machine);
  const self = `${host}:18848`;
  const raft = soleLeader(self, proposer);
  const keys: ServiceKey[] = [1, 2, 3, 4].map((n) => ({ namespace: 'public', group: 'DEFAULT_GROUP', service: `og-slow${n}` }));
  for (const [index, key] of keys.entries()) {
    await cp.createService({ key, protectThreshold: 0, metadata: {}, selector: { type: 'none' }, kind: null });
    await cp.putCluster(key, { name: 'DEFAULT', healthChecker: { type: 'HTTP', path: `/slow${index + 1}`, headers: {}, expectedResponseCode: 200 }, checkPort: 80, useInstancePort4Check: true, metadata: {} });
    await cp.registerInstance(key, { cluster: 'DEFAULT', ip: host, port, weight: 1, enabled: true, healthy: true, metadata: {} });
  }
  // Intervals of 700-900 ms keep the four probes overlapping most of the time; the timeout is 1000 ms.
  const bounds = { minMs: 700, maxMs: 900, factor: 0.5 };
  const verdicts: Array<Record<string, unknown>> = [];
  const checker = new ActiveHealthChecker({
    self, raft, proposer: cp, view: machine, registry: new Registry(),
    logger: { info: (fields) => verdicts.push(fields as Record<string, unknown>), warn: () => undefined },
    tuning: { reconcileMs: 20, settleMs: 0, timeoutMs: 1000, bounds: { TCP: bounds, HTTP: bounds, MYSQL: bounds } },
  });
  checker.start();
  t.after(() => checker.close());
  await sleep(6000);
  const health = keys.map((key) => machine.getInstance({ ...key, cluster: 'DEFAULT', ip: host, port })?.healthy);
  assert.deepEqual(health, [true, true, true, true], `verdicts: ${JSON.stringify(verdicts.filter((fields) => 'healthy' in fields))}`);
  assert.ok(origin.connectionHeaders.length >= 4 * 3, `every service was probed several times (${origin.connectionHeaders.length} probes)`);
});
