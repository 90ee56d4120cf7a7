// Goal: the D3 checker (jepsen-like/checkers-d3.ts, PEERS.md §2.3 D3, mass heartbeat loss) accepts Cairn's documented
// behaviour when every client is cut from every member (instances flagged unhealthy after their unhealthy timeout,
// removed after their delete timeout, registered again by the first beat after the heal), and rejects each way of
// departing from it: an early removal or flag, no expiry at all (self-preservation), a flag never followed by the
// removal, a removal without a flag, no recovery after the heal, a cut that did not cut. Method: crafted histories,
// times in seconds; timings 1 s beats, 3 s unhealthy, 6 s delete; element 1 beaten once a second through
// 127.0.0.11, acknowledged up to 9 s; every client cut from 9.5 s (rules in at 9.51 s) to 24 s (rules gone at
// 24.01 s); beats inside the cut time out after 4.5 s; three members read once a second at each whole second + 0.5.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { checkD3, clientsCutsOf, d3Bounds, latestApplication } from '../../jepsen-like/checkers-d3.ts';
import { Cluster } from '../../jepsen-like/control.ts';
import { beatClientSource, BeatsWorkload, massCutBeatsOptions, type BeatsDeps } from '../../jepsen-like/workloads/beats.ts';
import { ciCases, fullCases } from '../../jepsen-like/suite.ts';
import { defaultRunOptions } from '../../jepsen-like/runner.ts';
import { HistoryBuilder } from './build.ts';

const S = 'jepsen-beat-0';
const m11 = '127.0.0.11:8100';
const m12 = '127.0.0.12:8100';
const m13 = '127.0.0.13:8100';
const members = [m11, m12, m13];

type State = 'healthy' | 'unhealthy' | 'absent';

function base(): HistoryBuilder {
  const h = new HistoryBuilder();
  h.observe('beats-setup', { members, services: [{ name: S, responsible: m11 }], timeouts: { intervalMs: 1000, unhealthyMs: 3000, removeMs: 6000 }, pollMs: 1000, faults: ['all-clients-cut'], faultMs: [11_000, 14_000], quietMs: [9500, 12_000], clientSource: '127.0.0.15' }, 0);
  h.op('beat-register', 0, 0.01, 'ok', { service: S, element: 1, slot: 0, node: m11 });
  return h;
}

function beat(h: HistoryBuilder, element: number, t: number, type: 'ok' | 'info' = 'ok', duration = 0.01): void {
  h.op('beat', t, t + duration, type, { service: S, element, slot: element - 1, node: m11 }, type === 'ok' ? { code: 10200, clientBeatInterval: 1000 } : { error: 'timeout' });
}

/** cut: every client cut from `from` (rules in 10 ms later) to `to` (rules gone 10 ms later). */
function cut(h: HistoryBuilder, from: number, to: number, id = 2_000_000): HistoryBuilder {
  const value = { id, mode: 'all-clients', source: '127.0.0.15', members: ['127.0.0.11', '127.0.0.12', '127.0.0.13'] };
  h.nemesis('invoke', 'start-clients-cut', value, from);
  h.nemesis('info', 'start-clients-cut', { ...value, rules: 6 }, from + 0.01);
  h.nemesis('invoke', 'stop-clients-cut', { id }, to);
  h.nemesis('info', 'stop-clients-cut', { id, result: 'healed 6 rules' }, to + 0.01);
  return h;
}

/**
 * scenario: element 1 beaten ok at 1..9 s, attempts inside the cut [9.5, 24] timing out (10, 14.5, 19, and 21, which
 * ends after the cut: it may apply then, but not inside the cut), ok again from 25.6 s to `stopAt`, then stopped;
 * reads of every member from 0.5 s to 60.5 s showing `state(member, t)`.
 */
function scenario(state: StateOf, stopAt = 40, more: ReadonlyMap<number, StateOf> = new Map()): HistoryBuilder {
  const h = cut(base(), 9.5, 24);
  for (let t = 1; t <= 9; t++) beat(h, 1, t);
  for (const t of [10, 14.5, 19, 21]) beat(h, 1, t, 'info', 4.5);
  for (let t = 25.6; t <= stopAt; t++) beat(h, 1, t);
  h.observe('beat-stop', { service: S, element: 1, slot: 0 }, stopAt + 0.5);
  reads(h, 0.5, 60.5, state, more);
  return h;
}

type StateOf = (member: string, t: number) => State;

/** reads: every member reads the service at each whole second + 0.5 in [from, to]; `states` says what it lists per element. */
function reads(h: HistoryBuilder, from: number, to: number, state: StateOf, more: ReadonlyMap<number, StateOf> = new Map()): void {
  const states = new Map<number, StateOf>([[1, state], ...more]);
  for (let t = from; t <= to + 1e-9; t += 1) {
    for (const member of members) {
      const present: number[] = [];
      const unhealthy: number[] = [];
      for (const [element, stateOf] of states) {
        const s = stateOf(member, t);
        if (s !== 'absent') present.push(element);
        if (s === 'unhealthy') unhealthy.push(element);
      }
      h.op('beat-read', t, t + 0.02, 'ok', { service: S, node: member }, { present, unhealthy });
    }
  }
}

/** documented: healthy, unhealthy 3.3 s after the last beat (9 s), gone 6.3 s after it, back at the first beat after the heal, expired after the stop at 40.5 s. */
function documented(_member: string, t: number): State {
  if (t < 12.3) return 'healthy';
  if (t < 15.3) return 'unhealthy';
  if (t < 25.8) return 'absent';
  if (t < 43.6) return 'healthy';
  if (t < 46.6) return 'unhealthy';
  return 'absent';
}

describe('checkD3', () => {
  test('the bounds: expiry slack 3 s (tick, sync, poll, read), recovery 9 s (beat timeout, forward, sync, poll, read)', () => {
    const bounds = d3Bounds({ intervalMs: 1000, unhealthyMs: 3000, removeMs: 6000 }, 1000);
    assert.deepEqual([bounds.slackMs, bounds.expirySlackMs, bounds.recoveryBoundMs, bounds.flagGapMs], [250, 3000, 9000, 2000]);
  });

  test('an attempt sent into the cut never applied; one sent before it may have applied up to its start; one ending after it, up to its end', () => {
    const h = cut(new HistoryBuilder(), 10, 20);
    const cuts = clientsCutsOf(h.sorted());
    assert.equal(cuts.length, 1);
    assert.equal(latestApplication({ invoke: 11e9, complete: 15.5e9 }, cuts), null);
    assert.equal(latestApplication({ invoke: 9e9, complete: 13.5e9 }, cuts), 10.01e9);
    assert.equal(latestApplication({ invoke: 18e9, complete: 22.5e9 }, cuts), 22.5e9);
    assert.equal(latestApplication({ invoke: 5e9, complete: 5.01e9 }, cuts), 5.01e9);
  });

  test('the documented behaviour: flagged, removed, registered again by a beat after the heal: valid, with latencies', () => {
    const result = checkD3(scenario(documented).sorted());
    assert.equal(result.valid, true, [...result.violations, ...result.problems].join('; '));
    assert.deepEqual(Object.values(result.counts).reduce((a, b) => a + b, 0), 0, JSON.stringify(result.counts));
    assert.deepEqual(result.cuts.map((c) => [c.subjects, c.removedEverywhere, c.notDue, c.recoverySubjects, c.recovered, c.reRegistered]), [[1, 1, 0, 1, 1, 1]]);
    assert.ok(result.removalLatencyMs !== null && result.removalLatencyMs.max > 6000 && result.removalLatencyMs.max < 7000, JSON.stringify(result.removalLatencyMs));
    assert.ok(result.flagLatencyMs !== null && result.flagLatencyMs.max > 3000 && result.flagLatencyMs.max < 4000, JSON.stringify(result.flagLatencyMs));
    assert.ok(result.recoveryLatencyMs !== null && result.recoveryLatencyMs.max > 2000 && result.recoveryLatencyMs.max < 3000, JSON.stringify(result.recoveryLatencyMs));
  });

  test('a short cut: flagged but not yet due for removal, healthy again after the heal: valid, not due', () => {
    const h = cut(base(), 9.5, 14);
    for (let t = 1; t <= 9; t++) beat(h, 1, t);
    beat(h, 1, 10, 'info', 4.5);
    for (let t = 14.6; t <= 40; t++) beat(h, 1, t);
    h.observe('beat-stop', { service: S, element: 1, slot: 0 }, 40.5);
    reads(h, 0.5, 60.5, (_m, t) => (t >= 12.3 && t < 14.6 ? 'unhealthy' : t >= 46.6 ? 'absent' : t >= 43.6 ? 'unhealthy' : 'healthy'));
    const result = checkD3(h.sorted());
    assert.equal(result.valid, true, [...result.violations, ...result.problems].join('; '));
    assert.deepEqual(result.cuts.map((c) => [c.subjects, c.removedEverywhere, c.notDue, c.recovered, c.reRegistered]), [[1, 0, 1, 1, 0]]);
  });

  test('an instance whose client started it during the cut (its registration timed out) is registered by its first beat after the heal: valid', () => {
    const h = scenario(documented, 40, new Map([[2, (_m: string, t: number): State => (t >= 26 && t < 43 ? 'healthy' : 'absent')]]));
    h.op('beat-register', 12, 16.5, 'info', { service: S, element: 2, slot: 1, node: m12 }, { error: 'timeout' });
    h.op('beat-register', 16.5, 21, 'info', { service: S, element: 2, slot: 1, node: m13 }, { error: 'timeout' });
    beat(h, 2, 21, 'info', 4.5);
    for (let t = 25.6; t <= 40; t++) beat(h, 2, t);
    const result = checkD3(h.sorted());
    assert.equal(result.valid, true, [...result.violations, ...result.problems].join('; '));
    assert.deepEqual(result.cuts.map((c) => [c.subjects, c.recoverySubjects, c.recovered]), [[1, 2, 2]]);
  });

  test('positive control: removed 3 s after the last acknowledged beat is an early removal', () => {
    const result = checkD3(scenario((m, t) => (t >= 12.3 && t < 25.8 ? 'absent' : documented(m, t))).sorted());
    assert.equal(result.valid, false);
    assert.equal(result.counts.earlyRemovals, 3);
    assert.match(result.violations.join('\n'), /early removal: element 1 \(jepsen-beat-0\) gone from 127\.0\.0\.11:8100 at 12\.50 s, 3520 ms after its last acknowledged beat \(needs 6000 ms\)/);
    assert.ok(result.anomalies.length >= 3);
  });

  test('positive control: flagged 1 s after the last acknowledged beat is an early flag', () => {
    const result = checkD3(scenario((m, t) => (t >= 10 && t < 15.3 ? 'unhealthy' : documented(m, t))).sorted());
    assert.equal(result.valid, false);
    assert.equal(result.counts.earlyFlags, 3);
  });

  test('positive control: self-preservation (nothing expires while every client is silent) is neither flagged nor removed', () => {
    const result = checkD3(scenario((m, t) => (t < 40 ? 'healthy' : documented(m, t))).sorted());
    assert.equal(result.valid, false);
    assert.deepEqual([result.counts.stillHealthy, result.counts.notRemoved], [3, 3]);
    assert.match(result.violations.join('\n'), /not flagged: element 1 .* still healthy on 127\.0\.0\.11:8100 at 15\.50 s, 6490 ms after its last possible beat \(bound 6000 ms\)/);
    assert.match(result.violations.join('\n'), /not removed: element 1 .* still listed \(healthy\) on 127\.0\.0\.11:8100 at 18\.50 s, 9490 ms after its last possible beat \(bound 9000 ms\)/);
  });

  test('positive control: flagged but never removed during the cut is not removed', () => {
    const result = checkD3(scenario((m, t) => (t >= 12.3 && t < 25.8 ? 'unhealthy' : documented(m, t))).sorted());
    assert.equal(result.valid, false);
    assert.deepEqual([result.counts.stillHealthy, result.counts.notRemoved], [0, 3]);
  });

  test('positive control: one member keeps the instance after the others removed it', () => {
    const result = checkD3(scenario((m, t) => (m === m13 && t >= 15.3 && t < 25.8 ? 'unhealthy' : documented(m, t))).sorted());
    assert.equal(result.valid, false);
    assert.equal(result.counts.notRemoved, 1);
    assert.match(result.violations[0] ?? '', /on 127\.0\.0\.13/);
  });

  test('positive control: removed straight from healthy, with reads 1 s apart and no member ever showing the flag', () => {
    const result = checkD3(scenario((m, t) => (t >= 15.3 && t < 25.8 ? 'absent' : t < 25.8 ? 'healthy' : documented(m, t))).sorted());
    assert.equal(result.valid, false);
    assert.equal(result.counts.notFlagged, 1);
    assert.match(result.violations.join('\n'), /removed without a flag: element 1/);
  });

  test('positive control: no recovery: the client beats again after the heal but no member lists it', () => {
    const result = checkD3(scenario((m, t) => (t >= 15.3 ? 'absent' : documented(m, t))).sorted());
    assert.equal(result.valid, false);
    assert.equal(result.counts.notRecovered, 3);
    assert.match(result.violations.join('\n'), /not recovered: element 1 \(jepsen-beat-0\) absent on 127\.0\.0\.11:8100 at 33\.50 s, 9490 ms after the heal at 24\.01 s \(bound 9000 ms\), its client beating/);
  });

  test('positive control: listed again after the heal but unhealthy on one member is not recovered', () => {
    const result = checkD3(scenario((m, t) => (m === m12 && t >= 25.8 && t < 40 ? 'unhealthy' : documented(m, t))).sorted());
    assert.equal(result.valid, false);
    assert.equal(result.counts.notRecovered, 1);
  });

  test('a client that stops right after the heal is not held to recovery', () => {
    const result = checkD3(scenario((m, t) => (t >= 15.3 ? 'absent' : documented(m, t)), 28).sorted());
    assert.equal(result.valid, true, [...result.violations, ...result.problems].join('; '));
    assert.deepEqual(result.cuts.map((c) => [c.subjects, c.recoverySubjects]), [[1, 0]]);
  });

  test('positive control: a beat acknowledged although sent inside the cut means the cut did not cut', () => {
    const h = scenario(documented);
    beat(h, 1, 17);
    const result = checkD3(h.sorted());
    assert.equal(result.valid, false);
    assert.match(result.problems.join('\n'), /sent at 17\.00 s inside a clients cut was acknowledged by 127\.0\.0\.11:8100: the cut did not cut/);
  });

  test('a history without a clients cut tested nothing: invalid', () => {
    const h = base();
    for (let t = 1; t <= 9; t++) beat(h, 1, t);
    reads(h, 0.5, 10.5, () => 'healthy');
    const result = checkD3(h.sorted());
    assert.equal(result.valid, false);
    assert.match(result.problems.join('\n'), /no cut of the clients was made/);
  });
});

describe('D3 stays inside the harness\'s loopback range (127.0.0.11-15)', () => {
  const clusterOf = (nodes: number): Cluster => new Cluster({
    runDir: '/nonexistent', nodes, port: 8100, logLevel: 'warn', snapshotEntries: null, unsafeLocalReads: false, unsafeNoFsync: false,
    unsafeNoRequestDedup: false, cgroups: null, lazyfsLibrary: null, clock: null,
  });
  // Only the constructor runs: it reads the cluster's addresses, nothing is started or sent.
  const deps = (cluster: Cluster): BeatsDeps => ({ cluster, recorder: null as never, firewall: null, cgroups: null, generator: null as never });

  test('the beaters send from 127.0.0.15, and the suite\'s D3 runs 4 members, none on it', () => {
    assert.equal(beatClientSource, '127.0.0.15');
    const d3 = [...ciCases, ...fullCases].find((c) => c.id === 'D3');
    assert.ok(d3 !== undefined);
    const options = d3.configure(defaultRunOptions());
    assert.equal(options.nodes, 4);
    const cluster = clusterOf(options.nodes);
    assert.deepEqual(cluster.members.map((m) => m.host), ['127.0.0.11', '127.0.0.12', '127.0.0.13', '127.0.0.14']);
    assert.doesNotThrow(() => new BeatsWorkload(massCutBeatsOptions([11_000, 14_000], [9500, 12_000], 9000), deps(cluster)));
  });

  test('a cluster that includes the beaters\' address is refused', () => {
    assert.throws(() => new BeatsWorkload(massCutBeatsOptions([11_000, 14_000], [9500, 12_000], 9000), deps(clusterOf(5))), /the beaters' source address 127\.0\.0\.15 is a member's: a run whose beaters send from it has at most 4 members/);
  });
});
