// Goal: the clock nemesis (jepsen-like/clock-faults.ts and nemesis.ts, PEERS.md §2.3 A12) plays the faults its file
// comment describes, from the seed, within its bounds, and ends each one as it says. The plan: the same seed gives the
// same plan; a bump moves each target by a whole number of seconds within the drawn range, either way in wall mode
// and only forward in monotonic mode, at most bumpsPerFaultMax times, 1-3 s apart, and a member's accumulated wall
// offset never passes ±wallOffsetTotalMaxSeconds; a strobe flips one member between +X and -X every 1-2 s; no step is
// planned beyond the hold; monotonic strobes are refused. The heal: in wall mode every control file goes back to +0,
// in monotonic mode the offsets stay (a monotonic clock never goes back). The nemesis: a short run of the clock loop
// on member stand-ins records start-clock / stop-clock pairs and a clock-step line for every write, writes the
// planned offsets into the members' real control files, and leaves every file at +0 after each fault's end and after
// heal-all (wall), or at its last offset (monotonic).
// Method: pure plans over many seeds; the Nemesis driven on stand-in members (real ClockControlFile files in a
// temporary directory, a real HistoryRecorder); the stand-ins are not running, so the Date-header probes are skipped
// (the real-process behaviour of libfaketime is test/jepsen/faketime.test.ts's).

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import {
  accumulate,
  bumpSpacingMs,
  bumpsPerFaultMax,
  checkClockFaultOptions,
  clockReport,
  healedOffsets,
  monotonicOffsetTotalMaxSeconds,
  offsetSeen,
  planClockFault,
  StepPlayer,
  strobePeriodMs,
  wallOffsetTotalMaxSeconds,
  type ClockFaultOptions,
  type ClockPlan,
} from '../../jepsen-like/clock-faults.ts';
import type { Cluster, Member } from '../../jepsen-like/control.ts';
import { ClockControlFile } from '../../jepsen-like/faketime.ts';
import { HistoryRecorder, isNemesisEvent, isObserverEvent } from '../../jepsen-like/history.ts';
import type { ClusterMonitor } from '../../jepsen-like/monitor.ts';
import { Nemesis, type NemesisOptions } from '../../jepsen-like/nemesis.ts';
import { Random } from '../../jepsen-like/random.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'cairn-clock-faults-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const members = ['127.0.0.11:8100', '127.0.0.12:8100', '127.0.0.13:8100'];
const wall: ClockFaultOptions = { mode: 'wall', shapes: ['bump', 'strobe'], targets: ['one', 'leader', 'all'], offsetSeconds: [2, 90] };
const monotonic: ClockFaultOptions = { mode: 'monotonic', shapes: ['bump'], targets: ['one'], offsetSeconds: [20, 60] };
const zero = new Map(members.map((member) => [member, 0]));
const seeds = Array.from({ length: 300 }, (_, i) => 22_000 + i);

function totalMs(plan: ClockPlan): number {
  return plan.steps.reduce((sum, step) => sum + step.afterMs, 0);
}

describe('planClockFault', () => {
  test('the same seed gives the same plan; another seed another', () => {
    const a = planClockFault('bump', members, zero, 10_000, wall, new Random(7));
    const b = planClockFault('bump', members, zero, 10_000, wall, new Random(7));
    assert.deepEqual(a, b);
    const plans = new Set(seeds.slice(0, 20).map((seed) => JSON.stringify(planClockFault('strobe', members, zero, 10_000, wall, new Random(seed)))));
    assert.ok(plans.size > 10, `20 seeds gave only ${plans.size} different strobes`);
  });

  test('wall bumps: whole seconds of 2-90 either way per step, at most 3 steps 1-3 s apart within the hold, accumulated within ±180 s', () => {
    let several = 0;
    let negative = 0;
    for (const seed of seeds) {
      const plan = planClockFault('bump', members, zero, 10_000, wall, new Random(seed));
      assert.equal(plan.shape, 'bump');
      assert.deepEqual(plan.members, members);
      assert.ok(plan.steps.length >= 1 && plan.steps.length <= bumpsPerFaultMax, `seed ${seed}: ${plan.steps.length} steps`);
      assert.equal(plan.steps[0]?.afterMs, 0, 'the first step is written when the fault starts');
      assert.ok(totalMs(plan) <= 10_000);
      if (plan.steps.length > 1) several++;
      let previous = zero;
      for (const [index, step] of plan.steps.entries()) {
        if (index > 0) assert.ok(step.afterMs >= bumpSpacingMs[0] && step.afterMs <= bumpSpacingMs[1], `seed ${seed}: spacing ${step.afterMs} ms`);
        for (const member of members) {
          const offset = step.offsets[member];
          assert.ok(offset !== undefined && Number.isInteger(offset), `seed ${seed}: ${member} has a whole offset`);
          const moved = Math.abs(offset - (previous.get(member) ?? 0));
          assert.ok(moved >= 2 && moved <= 90, `seed ${seed}: a step of ${moved} s`);
          assert.ok(Math.abs(offset) <= wallOffsetTotalMaxSeconds, `seed ${seed}: offset ${offset} s`);
          if (offset < 0) negative++;
        }
        previous = new Map(Object.entries(step.offsets));
      }
    }
    assert.ok(several > 30 && several < 150, `${several} of ${seeds.length} bump faults bumped more than once (about 30% expected)`);
    assert.ok(negative > 100, 'wall bumps go back as well as forward');
  });

  test('no step is planned beyond the hold', () => {
    for (const seed of seeds.slice(0, 50)) {
      for (const shape of ['bump', 'strobe'] as const) {
        const plan = planClockFault(shape, members, zero, 1500, wall, new Random(seed));
        assert.ok(totalMs(plan) <= 1500 && plan.steps.length >= 1, `seed ${seed} ${shape}: ${totalMs(plan)} ms`);
      }
    }
  });

  test('strobe: one member flipped between +X and -X every 1-2 s for the hold', () => {
    for (const seed of seeds.slice(0, 100)) {
      const plan = planClockFault('strobe', members, zero, 12_000, wall, new Random(seed));
      assert.deepEqual(plan.members, [members[0]]);
      const values = plan.steps.map((step) => step.offsets[members[0] ?? '']);
      const swing = values[0] ?? 0;
      assert.ok(swing >= 2 && swing <= 90, `seed ${seed}: swing ${swing}`);
      assert.deepEqual(values, values.map((_, i) => (i % 2 === 0 ? swing : -swing)));
      assert.ok(plan.steps.length >= 6, `seed ${seed}: ${plan.steps.length} flips in 12 s`);
      for (const step of plan.steps.slice(1)) assert.ok(step.afterMs >= strobePeriodMs[0] && step.afterMs <= strobePeriodMs[1]);
      assert.ok(totalMs(plan) <= 12_000);
    }
  });

  test('monotonic bumps only go forward, by 20-60 s from where the member stands, and never pass the bound', () => {
    const current = new Map(members.map((member, i) => [member, i * 100]));
    for (const seed of seeds) {
      const plan = planClockFault('bump', members, current, 10_000, monotonic, new Random(seed));
      let previous: ReadonlyMap<string, number> = current;
      for (const step of plan.steps) {
        for (const member of members) {
          const moved = (step.offsets[member] ?? 0) - (previous.get(member) ?? 0);
          assert.ok(moved >= 20 && moved <= 60, `seed ${seed}: moved ${moved} s`);
        }
        previous = new Map(Object.entries(step.offsets));
      }
    }
    assert.equal(accumulate(monotonicOffsetTotalMaxSeconds - 10, 60, 'monotonic'), monotonicOffsetTotalMaxSeconds);
  });

  test('a wall bump that would pass the bound is taken the other way', () => {
    assert.equal(accumulate(150, 60, 'wall'), 90);
    assert.equal(accumulate(-150, -60, 'wall'), -90);
    assert.equal(accumulate(100, 60, 'wall'), 160);
  });

  test('options the nemesis cannot play are refused', () => {
    assert.equal(checkClockFaultOptions(wall), null);
    assert.equal(checkClockFaultOptions(monotonic), null);
    assert.match(checkClockFaultOptions({ ...monotonic, shapes: ['bump', 'strobe'] }) ?? '', /monotonic clock never goes back/);
    assert.match(checkClockFaultOptions({ ...wall, offsetSeconds: [0, 10] }) ?? '', /whole seconds/);
    assert.match(checkClockFaultOptions({ ...wall, offsetSeconds: [2, 500] }) ?? '', /whole seconds/);
    assert.match(checkClockFaultOptions({ ...wall, shapes: [] }) ?? '', /no clock fault shape/);
    assert.throws(() => planClockFault('strobe', members, zero, 5000, { ...monotonic, shapes: ['strobe'] }, new Random(1)), /monotonic clock never goes back/);
  });
});

describe('the heal', () => {
  test('wall: every offset back to 0; monotonic: every offset kept', () => {
    const current = new Map([['a', 30], ['b', -12], ['c', 0]]);
    assert.deepEqual([...healedOffsets('wall', current)], [['a', 0], ['b', 0], ['c', 0]]);
    assert.deepEqual([...healedOffsets('monotonic', current)], [...current]);
  });

  test('a Date-header reading (whole seconds, up to a second behind) agrees with the offset it shows, not with its neighbours', () => {
    assert.ok(offsetSeen(29.3, 30));
    assert.ok(offsetSeen(30.2, 30));
    assert.ok(!offsetSeen(0.1, 30));
    assert.ok(!offsetSeen(27, 30));
    assert.ok(offsetSeen(-30.8, -30));
  });
});

test('StepPlayer plays the steps after the first, in order, and writes none after stop()', async () => {
  const plan: ClockPlan = { shape: 'strobe', members: ['m'], steps: [0, 1, 2, 3, 4].map((i) => ({ afterMs: i === 0 ? 0 : 20, offsets: { m: i % 2 === 0 ? 5 : -5 } })) };
  const played: number[] = [];
  const whole = new StepPlayer(plan, (_step, index) => {
    played.push(index);
    return Promise.resolve();
  });
  await new Promise((resolve) => setTimeout(resolve, 200));
  await whole.stop();
  assert.deepEqual(played, [1, 2, 3, 4]);
  const cut: number[] = [];
  const stopped = new StepPlayer({ ...plan, steps: plan.steps.map((step, i) => ({ ...step, afterMs: i === 0 ? 0 : 10_000 })) }, (_step, index) => {
    cut.push(index);
    return Promise.resolve();
  });
  const started = Date.now();
  await stopped.stop();
  assert.ok(Date.now() - started < 1000, 'stop() wakes the wait at once');
  assert.deepEqual(cut, []);
});

/** StandIn is the part of a Member the clock nemesis touches: its address, state and control file. */
function standIns(mode: 'wall' | 'monotonic', name: string): { cluster: Cluster; files: ClockControlFile[] } {
  const files = members.map((addr) => new ClockControlFile(path.join(dir, `${name}-${addr.split(':')[0] ?? ''}`)));
  const list = members.map((addr, i) => ({
    addr, host: addr.split(':')[0], state: 'stopped', clockFile: files[i], resume: () => undefined, start: () => Promise.resolve(),
  })) as unknown as Member[];
  const cluster = { members: list, options: { clock: { library: 'unused', mode } }, byAddr: (addr: string) => list.find((m) => m.addr === addr) } as unknown as Cluster;
  return { cluster, files };
}

async function playClockLoop(mode: 'wall' | 'monotonic', clock: ClockFaultOptions, seed: number): Promise<{ recorder: HistoryRecorder; files: ClockControlFile[] }> {
  const { cluster, files } = standIns(mode, `${mode}-${seed}`);
  const recorder = new HistoryRecorder(path.join(dir, `history-${mode}-${seed}.jsonl`));
  const monitor = { findLeader: () => Promise.resolve(members[1] ?? null) } as unknown as ClusterMonitor;
  const options: NemesisOptions = { kinds: ['clock'], partitionModes: [], killTargets: [], pauseTargets: [], faultMs: [1200, 2500], quietMs: [100, 300], clock };
  const nemesis = new Nemesis(options, { cluster, recorder, monitor, firewall: null, cgroups: null, random: new Random(seed) });
  await nemesis.run(Date.now() + 5000);
  await nemesis.healAll();
  recorder.close();
  assert.deepEqual(nemesis.problems, []);
  return { recorder, files };
}

test('the clock loop (wall): every fault recorded and its writes in the control files; every file +0 after each fault and after heal-all', { timeout: 30_000 }, async () => {
  const { recorder, files } = await playClockLoop('wall', { ...wall, targets: ['all'], shapes: ['bump'] }, 22_001);
  const events = recorder.events();
  const starts = events.filter((e) => isNemesisEvent(e) && e.f === 'start-clock' && e.type === 'info');
  const stops = events.filter((e) => isNemesisEvent(e) && e.f === 'stop-clock' && e.type === 'info');
  assert.ok(starts.length >= 1 && starts.length === stops.length, `${starts.length} starts, ${stops.length} stops`);
  const steps = events.filter((e) => isObserverEvent(e) && e.f === 'clock-step').map((e) => e.value as { reason: string; offsets: Record<string, string> });
  assert.ok(steps.some((step) => step.reason === 'bump' && Object.keys(step.offsets).length === members.length));
  // Each fault's writes end with a reset of every file; heal-all resets them once more.
  for (const [index, step] of steps.entries()) {
    const next = steps[index + 1];
    if (step.reason === 'bump' && next !== undefined && next.reason !== 'bump') assert.equal(next.reason, 'reset');
  }
  const last = steps.at(-1);
  assert.equal(last?.reason, 'heal');
  assert.deepEqual(last?.offsets, Object.fromEntries(members.map((m) => [m, '+0'])));
  for (const file of files) assert.equal(readFileSync(file.path, 'utf8'), '+0\n');
  const report = clockReport(events, 'wall');
  assert.equal(report.faults, starts.length);
  assert.ok(report.moves.length >= steps.length);
  for (const member of members) assert.ok((report.perMember[member]?.aheadMax ?? 0) + (report.perMember[member]?.behindMax ?? 0) >= 2);
});

test('the clock loop (monotonic): offsets only grow and stay after each fault and after heal-all', { timeout: 30_000 }, async () => {
  const { recorder, files } = await playClockLoop('monotonic', { ...monotonic, targets: ['all'] }, 22_002);
  const steps = recorder.events().filter((e) => isObserverEvent(e) && e.f === 'clock-step').map((e) => e.value as { reason: string; offsets: Record<string, string> });
  assert.ok(steps.length >= 1 && steps.every((step) => step.reason === 'bump'), 'no reset is written in monotonic mode');
  const seen = new Map<string, number>();
  for (const step of steps) {
    for (const [member, text] of Object.entries(step.offsets)) {
      assert.ok(Number(text) > (seen.get(member) ?? 0), `${member} went from ${seen.get(member) ?? 0} to ${text}`);
      seen.set(member, Number(text));
    }
  }
  for (const [i, file] of files.entries()) assert.equal(readFileSync(file.path, 'utf8'), `+${seen.get(members[i] ?? '') ?? 0}\n`);
  const heal = recorder.events().find((e) => isNemesisEvent(e) && e.f === 'heal-all' && e.type === 'info');
  assert.match(JSON.stringify(heal?.value), /never goes back/);
});
