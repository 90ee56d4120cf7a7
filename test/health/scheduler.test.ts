// Goal: the probe scheduler keeps its promises (src/health/scheduler.ts): Nacos's adaptive interval within bounds
// clamped into Cairn's limits; no probe storm (first probes spread over one interval); at most concurrencyMax probes
// in flight, the rest queued and reported as lag; one probe per target at a time; removal cancels and forgets; and
// the responsibility rules of src/health/responsibility.ts (the leader's live view, settled before it is proposed).
// Method: a scripted prober whose probes the test resolves by hand, short intervals (tens of ms), and recorded
// timestamps; scripted Raft statuses for the assigner. No network.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clampBounds, NACOS_INTERVAL_BOUNDS, nextInterval, ProbeScheduler, type IntervalBounds } from '../../src/health/scheduler.ts';
import type { ActiveCheckerType, Prober, ProbeResult, ProbeTarget } from '../../src/health/probe.ts';
import { liveVoters, ProbeAssigner } from '../../src/health/responsibility.ts';
import type { RaftStatus } from '../../src/raft/raft-core.ts';
import { limits } from '../../src/limits.ts';
import { sleep, waitFor } from '../support/cluster.ts';

const ok = (latencyMs: number): ProbeResult => ({ healthy: true, refused: false, latencyMs, detail: 'ok' });
const failed: ProbeResult = { healthy: false, refused: false, latencyMs: 5, detail: 'failed' };

/** ScriptedProber records probes and resolves them at once or when the test says. */
class ScriptedProber implements Prober {
  readonly started: Array<{ id: string; at: number }> = [];
  readonly forgotten: string[] = [];
  readonly held: Array<() => void> = [];
  hold = false;
  inFlight = 0;
  maxInFlight = 0;

  probe(target: ProbeTarget): Promise<ProbeResult> {
    this.started.push({ id: target.id, at: Date.now() });
    this.inFlight += 1;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    return new Promise((resolve) => {
      const finish = (): void => {
        this.inFlight -= 1;
        resolve(ok(1));
      };
      if (this.hold) this.held.push(finish);
      else setImmediate(finish);
    });
  }

  forget(targetId: string): void {
    this.forgotten.push(targetId);
  }

  async close(): Promise<void> {}
}

function scheduler(prober: Prober, bounds: IntervalBounds, concurrencyMax: number, events: { lags: number[]; queue: number[]; results: string[] }): ProbeScheduler {
  const probers: Record<ActiveCheckerType, Prober> = { TCP: prober, HTTP: prober, MYSQL: prober };
  return new ProbeScheduler({
    probers,
    bounds: { TCP: bounds, HTTP: bounds, MYSQL: bounds },
    timeoutMs: 1000,
    concurrencyMax,
    hooks: {
      onResult: (target) => events.results.push(target.id),
      onLag: (lagMs) => events.lags.push(lagMs),
      onQueue: (waiting) => events.queue.push(waiting),
    },
  });
}

const tcp = (id: string): ProbeTarget => ({ id, host: '127.0.1.105', port: 1, checker: { type: 'TCP' } });

test('bounds: Nacos\'s per-type bounds clamped into limits.probeIntervalMsMin/Max', () => {
  const clamp = (type: ActiveCheckerType): IntervalBounds => clampBounds(NACOS_INTERVAL_BOUNDS[type], limits.probeIntervalMsMin, limits.probeIntervalMsMax);
  assert.deepEqual([clamp('TCP').minMs, clamp('TCP').maxMs], [2500, 5000]);
  assert.deepEqual([clamp('HTTP').minMs, clamp('HTTP').maxMs], [2500, 5000]);
  assert.deepEqual([clamp('MYSQL').minMs, clamp('MYSQL').maxMs], [2500, 3000]);
  assert.ok(limits.probeTimeoutMs < clamp('MYSQL').minMs, 'probes of one target never overlap');
});

test('adaptive interval: fast answers pull it to the minimum, failures push it to the maximum (Nacos reEvaluateCheckRT)', () => {
  const bounds: IntervalBounds = { minMs: 2500, maxMs: 5000, factor: 0.75 };
  let interval = 5000;
  for (let i = 0; i < 20; i++) interval = nextInterval(interval, ok(2), bounds);
  assert.equal(interval, 2500);
  interval = nextInterval(interval, failed, bounds);
  assert.equal(interval, 0.75 * 2500 + 0.25 * 5000);
  for (let i = 0; i < 30; i++) interval = nextInterval(interval, failed, bounds);
  assert.ok(interval > 4990 && interval <= 5000);
  assert.equal(nextInterval(3000, ok(4000), bounds), 0.75 * 3000 + 0.25 * 4000, 'a slow answer raises the interval');
});

test('a fixed interval (the checker\'s intervalMs) overrides the type\'s adaptive bounds, whatever the response time', async () => {
  const prober = new ScriptedProber();
  const events = { lags: [] as number[], queue: [] as number[], results: [] as string[] };
  // The type's bounds would probe every 20 ms; the cluster fixes 120 ms.
  const probes = scheduler(prober, { minMs: 20, maxMs: 20, factor: 0.5 }, 10, events);
  probes.upsert({ id: 'fixed', host: '127.0.1.105', port: 1, checker: { type: 'TCP', intervalMs: 120 } });
  probes.upsert(tcp('adaptive'));
  await waitFor(() => prober.started.filter((probe) => probe.id === 'fixed').length >= 5, { timeoutMs: 5000, what: 'five probes of the fixed target' });
  probes.close();
  const fixed = prober.started.filter((probe) => probe.id === 'fixed').map((probe) => probe.at);
  const gaps = fixed.slice(1).map((at, i) => at - fixed[i]!);
  // +-10% jitter around 120 ms, plus timer slack on a loaded machine.
  for (const gap of gaps) assert.ok(gap >= 105 && gap < 250, `gap ${gap} ms between probes of the fixed target: ${gaps.join(', ')}`);
  const adaptive = prober.started.filter((probe) => probe.id === 'adaptive').length;
  assert.ok(adaptive > fixed.length * 2, `the adaptive target kept its 20 ms bounds (${adaptive} probes against ${fixed.length})`);
});

test('no probe storm: 300 new targets\' first probes are spread over one interval', async () => {
  const prober = new ScriptedProber();
  const events = { lags: [] as number[], queue: [] as number[], results: [] as string[] };
  // Long enough that timer slack on a loaded machine (tens of ms) stays small against a fifth of it.
  const intervalMs = 1000;
  const probes = scheduler(prober, { minMs: intervalMs, maxMs: intervalMs, factor: 0.5 }, 1000, events);
  const start = Date.now();
  for (let i = 0; i < 300; i++) probes.upsert(tcp(`t${i}`));
  await waitFor(() => new Set(prober.started.map((probe) => probe.id)).size === 300, { timeoutMs: 5000, what: 'every target probed once' });
  probes.close();
  const firsts = new Map<string, number>();
  for (const probe of prober.started) if (!firsts.has(probe.id)) firsts.set(probe.id, probe.at - start);
  const buckets = [0, 0, 0, 0, 0];
  for (const at of firsts.values()) {
    assert.ok(at <= intervalMs + 400, `first probe at ${at} ms, beyond one interval (plus timer slack)`);
    buckets[Math.min(4, Math.floor((at / intervalMs) * 5))]! += 1;
  }
  for (const count of buckets) assert.ok(count > 20 && count < 110, `first probes per fifth of the interval: ${buckets.join(', ')}`);
});

test('bounded concurrency: at most concurrencyMax in flight, the rest wait and count as lag; all are probed', async () => {
  const prober = new ScriptedProber();
  prober.hold = true;
  const events = { lags: [] as number[], queue: [] as number[], results: [] as string[] };
  const probes = scheduler(prober, { minMs: 20, maxMs: 20, factor: 0.5 }, 3, events);
  for (let i = 0; i < 10; i++) probes.upsert(tcp(`t${i}`));
  await waitFor(() => events.queue.at(-1) === 7, { timeoutMs: 2000, what: 'seven due probes waiting' });
  assert.equal(prober.maxInFlight, 3);
  await sleep(50);
  // Release every held probe until all ten targets have a result.
  await waitFor(() => {
    for (const finish of prober.held.splice(0)) finish();
    return new Set(events.results).size === 10;
  }, { timeoutMs: 3000, intervalMs: 5, what: 'all ten targets probed' });
  probes.close();
  for (const finish of prober.held.splice(0)) finish();
  assert.equal(prober.maxInFlight, 3, 'never more than concurrencyMax');
  assert.ok(Math.max(...events.lags) >= 40, `queued probes report their lag (max ${Math.max(...events.lags)} ms)`);
});

test('one probe per target at a time; removal cancels the timer, forgets the target and drops a result in flight', async () => {
  const prober = new ScriptedProber();
  prober.hold = true;
  const events = { lags: [] as number[], queue: [] as number[], results: [] as string[] };
  const probes = scheduler(prober, { minMs: 10, maxMs: 10, factor: 0.5 }, 10, events);
  probes.upsert(tcp('a'));
  await waitFor(() => prober.started.length === 1, { timeoutMs: 1000, what: 'the first probe' });
  await sleep(60);
  assert.equal(prober.started.length, 1, 'no second probe while the first runs');
  probes.remove('a');
  assert.deepEqual(prober.forgotten, ['a']);
  for (const finish of prober.held.splice(0)) finish();
  await sleep(60);
  assert.deepEqual(events.results, [], 'the result of a removed target is dropped');
  assert.equal(prober.started.length, 1, 'no probe after removal');
  probes.upsert(tcp('b'));
  probes.upsert({ ...tcp('b'), port: 2 });
  assert.deepEqual(prober.forgotten, ['a', 'b'], 'a changed target releases the old one\'s resources');
  probes.close();
  for (const finish of prober.held.splice(0)) finish();
});

function status(role: RaftStatus['role'], active: Record<string, boolean>): RaftStatus {
  const progress: Record<string, { match: number; next: number; state: 'replicate'; recentActive: boolean; ticksSinceHeard: number }> = {};
  for (const [peer, recentActive] of Object.entries(active)) progress[peer] = { match: 1, next: 2, state: 'replicate', recentActive, ticksSinceHeard: recentActive ? 0 : 50 };
  return {
    id: 'a:1', role, term: 3, vote: null, leader: role === 'leader' ? 'a:1' : 'b:1', commitIndex: 1, appliedIndex: 1, lastIndex: 1, snapshotIndex: 0,
    membership: { voters: ['a:1', 'b:1', 'c:1'], learners: ['d:1'] }, ticksSinceLeaderContact: 0, progress,
  } as RaftStatus;
}

test('responsibility: the leader\'s live view (itself and recently active voters, never learners), proposed once settled', () => {
  assert.deepEqual(liveVoters(status('leader', { 'b:1': true, 'c:1': false, 'd:1': true })), ['a:1', 'b:1']);
  const assigner = new ProbeAssigner({ settleMs: 1000, retryMs: 500 });
  assert.equal(assigner.decide(status('follower', {}), null, 0), null, 'followers never propose');
  const all = status('leader', { 'b:1': true, 'c:1': true });
  assert.equal(assigner.decide(all, null, 0), null, 'a new view waits to settle');
  assert.equal(assigner.decide(status('leader', { 'b:1': true, 'c:1': false }), null, 500), null, 'a view that changes restarts the wait');
  assert.equal(assigner.decide(all, null, 1400), null);
  assert.deepEqual(assigner.decide(all, null, 2400), ['a:1', 'b:1', 'c:1']);
  assert.equal(assigner.decide(all, null, 2500), null, 'one proposal in flight');
  assigner.settled(false, 2600);
  assert.equal(assigner.decide(all, null, 2700), null, 'a failed proposal waits retryMs');
  assert.deepEqual(assigner.decide(all, null, 3200), ['a:1', 'b:1', 'c:1']);
  assigner.settled(true, 3300);
  assert.equal(assigner.decide(all, { epoch: 9, members: ['a:1', 'b:1', 'c:1'], term: 3 }, 5000), null, 'nothing to change');
});
