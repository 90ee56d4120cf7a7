// Goal: the health checker turns probe results into committed health as issue 4 says: on a single-voter leader it
// commits the probe assignment, probes the persistent instances of actively checked clusters, flips health AT ONCE
// on "connection refused", after exactly healthFlipProbes consecutive failures otherwise (an HTTP 503), back after
// healthFlipProbes consecutive successes, through the registry (revisions move), and not for NONE clusters; a member
// outside the assignment probes nothing; and its verdicts travel with the stamp they were reached under: a stale
// stamp is dropped before sending, and a batch refused by the log counts as fenced, not as committed.
// Method: an ActiveHealthChecker in this process over a RegistryStateMachine behind a DirectProposer (test/support),
// a scripted Raft status, short intervals, and real targets on 127.0.1.104 (this file's address): a TCP listener
// opened and closed, and an HTTP server whose status the test flips; metrics read from the prom-client registry.

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { CpRegistry } from '../../src/cp/cp-registry.ts';
import { RegistryStateMachine } from '../../src/cp/registry-state-machine.ts';
import { ActiveHealthChecker } from '../../src/health/health-checker.ts';
import { FlipSender, type BatchOutcome } from '../../src/health/verdicts.ts';
import type { HealthChecker, ServiceKey } from '../../src/naming/model.ts';
import { DirectProposer, soleLeader } from '../support/direct-proposer.ts';
import { sleep, waitFor } from '../support/cluster.ts';

const host = '127.0.1.104';
const self = '127.0.1.104:18848';
const svc: ServiceKey = { namespace: 'public', group: 'DEFAULT_GROUP', service: 'web' };
const quiet = { info: () => undefined, warn: () => undefined };

interface Harness {
  readonly machine: RegistryStateMachine;
  readonly cp: CpRegistry;
  readonly checker: ActiveHealthChecker;
  readonly metrics: Registry;
}

function harness(t: TestContext, options: { voters?: readonly string[]; beforeBatch?: (metrics: Registry) => Promise<void> } = {}): Harness {
  const machine = new RegistryStateMachine();
  const proposer = new DirectProposer(machine);
  const cp = new CpRegistry(proposer, machine);
  const metrics = new Registry();
  const beforeBatch = options.beforeBatch;
  const healthProposer = beforeBatch === undefined ? cp : {
    setHealthBatch: async (...args: Parameters<CpRegistry['setHealthBatch']>) => {
      await beforeBatch(metrics);
      return cp.setHealthBatch(...args);
    },
    assignProbers: (...args: Parameters<CpRegistry['assignProbers']>) => cp.assignProbers(...args),
  };
  const raft = soleLeader(self, proposer, options.voters ?? [self]);
  const bounds = { minMs: 60, maxMs: 80, factor: 0.5 };
  const checker = new ActiveHealthChecker({
    self, raft, proposer: healthProposer, view: machine, registry: metrics, logger: quiet,
    tuning: { reconcileMs: 20, settleMs: 0, timeoutMs: 50, bounds: { TCP: bounds, HTTP: bounds, MYSQL: bounds } },
  });
  checker.start();
  t.after(() => checker.close());
  return { machine, cp, checker, metrics };
}

async function register(cp: CpRegistry, port: number, checker: HealthChecker): Promise<void> {
  await cp.createService({ key: svc, protectThreshold: 0, metadata: {}, selector: { type: 'none' }, kind: null }).catch(() => undefined);
  await cp.putCluster(svc, { name: 'DEFAULT', healthChecker: checker, checkPort: 80, useInstancePort4Check: true, metadata: {} });
  await cp.registerInstance(svc, { cluster: 'DEFAULT', ip: host, port, weight: 1, enabled: true, healthy: true, metadata: {} });
}

function healthOf(machine: RegistryStateMachine, port: number): boolean | undefined {
  return machine.getInstance({ ...svc, cluster: 'DEFAULT', ip: host, port })?.healthy;
}

async function listenOn(server: net.Server, port = 0): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return (server.address() as AddressInfo).port;
}

async function metric(registry: Registry, name: string, labels: Record<string, string>): Promise<number> {
  const found = (await registry.getMetricsAsJSON()).find((entry) => entry.name === name);
  const value = found?.values.find((entry) => Object.entries(labels).every(([key, wanted]) => entry.labels[key] === wanted));
  return value?.value ?? 0;
}

test('TCP: refusal flips at once; a reopened listener flips back after three successes', async (t) => {
  // The refused-probe count is read when the checker hands a batch to the log, not when the test next polls: probes
  // keep running every 60-80 ms, so a poll could count refusals that came after the flip.
  const refusedAtBatch: number[] = [];
  const { machine, cp, metrics } = harness(t, {
    beforeBatch: async (registry) => { refusedAtBatch.push(await metric(registry, 'cairn_health_probes_total', { type: 'TCP', result: 'refused' })); },
  });
  const server = net.createServer((socket) => socket.on('error', () => undefined));
  const port = await listenOn(server);
  t.after(() => server.close());
  await register(cp, port, { type: 'TCP' });
  await waitFor(() => machine.probeAssignment()?.members.join() === self, { timeoutMs: 2000, what: 'the assignment of this member' });
  await waitFor(async () => (await metric(metrics, 'cairn_health_probes_total', { type: 'TCP', result: 'healthy' })) >= 2, { timeoutMs: 3000, what: 'healthy probes' });
  assert.equal(healthOf(machine, port), true);
  const revision = machine.getService(svc)?.revision ?? 0;
  const refusedBefore = await metric(metrics, 'cairn_health_probes_total', { type: 'TCP', result: 'refused' });
  const batchesBefore = refusedAtBatch.length;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await waitFor(() => healthOf(machine, port) === false, { timeoutMs: 3000, what: 'the refused instance to flip' });
  assert.equal(refusedAtBatch[batchesBefore], refusedBefore + 1, 'one refusal was enough: the first batch after the close was sent after one');
  assert.ok((machine.getService(svc)?.revision ?? 0) > revision, 'the flip moved the service revision');
  await listenOn(server, port);
  const healthyBefore = await metric(metrics, 'cairn_health_probes_total', { type: 'TCP', result: 'healthy' });
  await waitFor(() => healthOf(machine, port) === true, { timeoutMs: 3000, what: 'the instance to flip back' });
  assert.ok((await metric(metrics, 'cairn_health_probes_total', { type: 'TCP', result: 'healthy' })) - healthyBefore >= 3, 'three successes before it flipped back');
  assert.equal(await metric(metrics, 'cairn_health_flips_total', { outcome: 'applied' }), 2);
});

test('HTTP 503: exactly three consecutive failures flip; a 204 expected is healthy; NONE clusters are not probed', async (t) => {
  const { machine, cp, checker } = harness(t);
  let status = 204;
  let requests = 0;
  let failuresWhileHealthy = 0;
  const server = http.createServer((_request, response) => {
    requests += 1;
    // The flip commits in this process (DirectProposer), so a failure served while the instance is still healthy
    // is one the verdict had to wait for.
    if (status === 503 && healthOf(machine, port) === true) failuresWhileHealthy += 1;
    response.writeHead(status).end();
  });
  const port = await listenOn(server);
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  await register(cp, port, { type: 'HTTP', path: '/ready', headers: {}, expectedResponseCode: 204 });
  await waitFor(() => requests >= 3, { timeoutMs: 3000, what: 'three probes' });
  assert.equal(healthOf(machine, port), true, 'a 204 is healthy when 204 is expected');
  status = 503;
  await waitFor(() => healthOf(machine, port) === false, { timeoutMs: 3000, what: 'the 503 instance to flip' });
  assert.equal(failuresWhileHealthy, 3, 'exactly three consecutive failures before the flip');
  await cp.putCluster(svc, { name: 'DEFAULT', healthChecker: { type: 'NONE' }, checkPort: 80, useInstancePort4Check: true, metadata: {} });
  await waitFor(() => checker.targetCount === 0, { timeoutMs: 2000, what: 'the NONE cluster to leave the targets' });
  const after = requests;
  await sleep(300);
  assert.equal(requests, after, 'a NONE cluster is not probed');
});

test('a member outside the assignment probes nothing', async (t) => {
  const { machine, cp, checker } = harness(t, { voters: ['127.0.1.104:1', '127.0.1.104:2'] });
  const server = net.createServer((socket) => socket.on('error', () => undefined));
  const port = await listenOn(server);
  t.after(() => server.close());
  await register(cp, port, { type: 'TCP' });
  await sleep(300);
  assert.equal(machine.probeAssignment()?.members.includes(self) ?? false, false);
  assert.equal(checker.targetCount, 0);
});

test('FlipSender: a stale stamp, a forgotten target or a contradicted verdict is dropped before sending; a fenced batch is fenced, a failed one retried', async () => {
  const outcomes: BatchOutcome[] = [];
  const sent: number[] = [];
  let answer: 'ok' | 'fenced' | 'fail' = 'fail';
  const sender = new FlipSender({
    self, flipsPerBatchMax: 2, mergeMs: 1, retryMs: 20, timeoutMs: 100, onError: () => undefined,
    onBatch: (outcome) => outcomes.push(outcome),
    sink: {
      setHealthBatch: async (input) => {
        sent.push(input.flips.length);
        if (answer === 'fail') throw new Error('no leader');
        return { applied: answer === 'ok' ? input.flips.length : 0, skipped: 0, fenced: answer === 'ok' ? '' : 'stale-term' };
      },
    },
  });
  const flip = (port: number): Parameters<FlipSender['enqueue']>[1] => ({ key: svc, address: { cluster: 'DEFAULT', ip: host, port }, healthy: false });
  sender.setStamp({ term: 1, epoch: 1 });
  for (let port = 1; port <= 3; port++) sender.enqueue(`t${port}`, flip(port));
  await waitFor(() => outcomes.filter((outcome) => outcome === 'failed').length >= 2, { timeoutMs: 1000, what: 'failed sends retried' });
  assert.equal(sender.waiting, 3, 'failed verdicts wait');
  answer = 'ok';
  await waitFor(() => sender.waiting === 0, { timeoutMs: 1000, what: 'the verdicts to commit' });
  assert.ok(sent.every((count) => count <= 2), 'batches hold at most flipsPerBatchMax');
  sender.enqueue('t4', flip(4));
  sender.setStamp({ term: 2, epoch: 1 });
  await waitFor(() => outcomes.includes('dropped'), { timeoutMs: 1000, what: 'the stale verdict dropped' });
  const droppedBefore = outcomes.filter((outcome) => outcome === 'dropped').length;
  answer = 'fail';
  sender.enqueue('t6', flip(6));
  sender.forget('t6');
  sender.forget('t6');
  assert.equal(outcomes.filter((outcome) => outcome === 'dropped').length, droppedBefore + 1, 'a forgotten verdict counts as dropped, once');
  assert.equal(sender.waiting, 0);
  // A waiting verdict (its batches failing) that a newer result contradicts is withdrawn, not committed later.
  sender.enqueue('t7', flip(7));
  await waitFor(() => outcomes.filter((outcome) => outcome === 'failed').length >= 4, { timeoutMs: 1000, what: 't7 failing' });
  sender.withdrawContradicted('t7', false);
  assert.equal(sender.waiting, 1, 'a result that agrees with the verdict leaves it waiting');
  sender.withdrawContradicted('t7', true);
  assert.equal(sender.waiting, 0, 'the target answers again: the unhealthy verdict is withdrawn');
  const sentBefore = sent.length;
  answer = 'ok';
  await new Promise((resolve) => setTimeout(resolve, 60));
  assert.equal(sent.length, sentBefore, 'nothing left to send');
  answer = 'fenced';
  sender.enqueue('t5', flip(5));
  await waitFor(() => outcomes.includes('fenced'), { timeoutMs: 1000, what: 'a fenced batch' });
  assert.equal(sender.waiting, 0, 'a fenced verdict is not retried');
  sender.close();
});
