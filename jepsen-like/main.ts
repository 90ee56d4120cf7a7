// main: `npm run jepsen -- --workload W[,W] --nemesis N[,N] --time SECONDS [--nodes 3|5] [--unsafe-local-reads]
// [--unsafe-no-fsync] [--unsafe-no-request-dedup] [--lazyfs] [--suite ci|full] [--seed S] ...` (DESIGN.md, Command line). Prints progress and
// a summary; the last line is `verdict: valid` or `verdict: invalid`; exits 0 only when valid. For a suite,
// valid means every case got the verdict it expects.

import { parseArgs } from 'node:util';
import { corruptNemesisNodesMin, killTargets, memberNemesisNodesMin, nemesisKinds, wipeNemesisNodesMin, partitionModes, pauseTargets, type KillTarget, type NemesisKind, type PartitionMode, type PauseTarget } from './nemesis.ts';
import { recheck } from './recheck.ts';
import { defaultRunOptions, PrerequisiteError, runTest, workloadNames, type RunOptions, type WorkloadName } from './runner.ts';
import { ciCases, fullCases, notRun, premiseLines, runSuite, suiteTable } from './suite.ts';
import { beatClientSource, beatFaultKinds, type BeatFaultKind } from './workloads/beats.ts';
import { overrideOperatorKinds, type OverrideOperators } from './workloads/overrides.ts';
import { checkClockFaultOptions, clockShapes, clockTargets, defaultClockFaultOptions, offsetSecondsLimit, type ClockFaultOptions, type ClockShape, type ClockTarget } from './clock-faults.ts';
import { clockModes, type ClockMode } from './faketime.ts';

const usage = `usage: npm run jepsen -- --workload register|set|health|ephemeral|watch|beats|sessions|overrides[,..] --nemesis partition|kill|pause|transfer|member|wipe|corrupt|clock|none[,..] --time SECONDS
  [--nodes 3|5 (4: D3)] [--seed S] [--unsafe-local-reads] [--unsafe-no-fsync] [--unsafe-no-request-dedup] [--lazyfs] [--no-lazyfs]
  [--suite ci|full [--cases ID,..]] [--impatient-share S (0..1: share of retried writes whose first attempt has a short deadline)]
  [--protect-threshold T (0..1, with --workload health --nemesis partition: case C2, the service created with threshold T, degraded-NIC faults)]
  [--beat-faults isolate-responsible,client-cut,isolate-responsible+client,kill,all-clients-cut (with --workload beats, instead of what --nemesis implies;
   all-clients-cut, case D3, runs alone and needs --nemesis partition for iptables)]
  [--override-control (with --workload overrides: the operator's changes are sent as client registrations, POST, which
   the client's next registration replaces: case C3's positive control, which the checker must find invalid)]
  [--override-operators one|per-attribute (with --workload overrides: one operator per service naming the whole
   override, the default, or two, E toggling enabled and W setting weights, each through its own random member: case C3b)]
  [--partition halves,leader,follower,one,ring,bridge,one-way-leader] [--kill one,leader,minority,majority,all]
  [--pause leader,one] [--clock-mode wall|monotonic] [--clock-shape bump,strobe] [--clock-target one,leader,all]
  [--clock-offset-seconds MIN,MAX (one bump's size; wall: either way, monotonic: forward; default 2,90)] [--fault-seconds MIN,MAX] [--quiet-seconds MIN,MAX] [--snapshot-entries N]
  [--targets random|followers] [--transport http|grpc|mixed] [--concurrency N] [--rate OPS] [--log-level L]
  [--check-timeout SECONDS] [--name NAME] [--port HTTP_PORT (gRPC +1000, peer -1000)]
  [--repeat N (the same run N times with seeds S..S+N-1; prints how many were invalid: a control's catch rate)]
  [--recheck STORE_DIR (check a stored run's history.jsonl again)]`;

const flags = {
  workload: { type: 'string' },
  nemesis: { type: 'string' },
  time: { type: 'string' },
  nodes: { type: 'string' },
  seed: { type: 'string' },
  suite: { type: 'string' },
  'unsafe-local-reads': { type: 'boolean' },
  'unsafe-no-fsync': { type: 'boolean' },
  'unsafe-no-request-dedup': { type: 'boolean' },
  'impatient-share': { type: 'string' },
  'protect-threshold': { type: 'string' },
  lazyfs: { type: 'boolean' },
  'no-lazyfs': { type: 'boolean' },
  partition: { type: 'string' },
  kill: { type: 'string' },
  pause: { type: 'string' },
  'clock-mode': { type: 'string' },
  'clock-shape': { type: 'string' },
  'clock-target': { type: 'string' },
  'clock-offset-seconds': { type: 'string' },
  'fault-seconds': { type: 'string' },
  'quiet-seconds': { type: 'string' },
  'snapshot-entries': { type: 'string' },
  targets: { type: 'string' },
  transport: { type: 'string' },
  concurrency: { type: 'string' },
  rate: { type: 'string' },
  'log-level': { type: 'string' },
  'check-timeout': { type: 'string' },
  name: { type: 'string' },
  port: { type: 'string' },
  repeat: { type: 'string' },
  recheck: { type: 'string' },
  cases: { type: 'string' },
  'beat-faults': { type: 'string' },
  'override-control': { type: 'boolean' },
  'override-operators': { type: 'string' },
  help: { type: 'boolean' },
} as const;

class UsageError extends Error {}

function listOf<T extends string>(text: string | undefined, allowed: readonly T[], what: string): T[] | undefined {
  if (text === undefined) return undefined;
  const items = text.split(',').map((item) => item.trim()).filter((item) => item !== '' && item !== 'none');
  for (const item of items) if (!(allowed as readonly string[]).includes(item)) throw new UsageError(`--${what}: unknown '${item}' (one of ${allowed.join(', ')})`);
  return items as T[];
}

function numberOf(text: string | undefined, what: string, min: number, max: number): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!Number.isFinite(value) || value < min || value > max) throw new UsageError(`--${what}: '${text}' is not a number in ${min}..${max}`);
  return value;
}

function rangeOf(text: string | undefined, what: string): [number, number] | undefined {
  if (text === undefined) return undefined;
  const [min, max] = text.split(',').map((part) => numberOf(part, what, 0, 3600));
  if (min === undefined || max === undefined || max < min) throw new UsageError(`--${what}: expected MIN,MAX seconds`);
  return [min * 1000, max * 1000];
}

/** protectThresholdOf reads --protect-threshold (case C2): 0..1, and only for the health workload without kills or pauses. */
function protectThresholdOf(text: string | undefined, workloads: readonly WorkloadName[], kinds: readonly NemesisKind[]): number | undefined {
  const threshold = numberOf(text, 'protect-threshold', 0, 1);
  if (threshold === undefined || threshold === 0) return threshold;
  if (!workloads.includes('health')) throw new UsageError('--protect-threshold: with --workload health only (case C2)');
  if (kinds.includes('kill') || kinds.includes('pause')) throw new UsageError('--protect-threshold: C2 runs degraded-NIC faults (--nemesis partition), not kills or pauses');
  return threshold;
}

/**
 * clockOptionsOf reads the clock nemesis's flags (PEERS.md A12). They need --nemesis clock. Monotonic mode plays
 * bumps only (a strobe takes the clock back, which a monotonic clock never does).
 */
function clockOptionsOf(str: (key: string) => string | undefined, kinds: readonly NemesisKind[]): ClockFaultOptions {
  const given = ['clock-mode', 'clock-shape', 'clock-target', 'clock-offset-seconds'].filter((key) => str(key) !== undefined);
  if (given.length > 0 && !kinds.includes('clock')) throw new UsageError(`--${given[0] ?? ''}: needs --nemesis clock`);
  const mode = listOf<ClockMode>(str('clock-mode'), clockModes, 'clock-mode')?.[0] ?? defaultClockFaultOptions.mode;
  const offsetText = str('clock-offset-seconds');
  const offsets = offsetText?.split(',').map((part) => numberOf(part, 'clock-offset-seconds', 1, offsetSecondsLimit));
  if (offsets !== undefined && (offsets.length !== 2 || offsets.some((x) => x === undefined || !Number.isInteger(x)))) throw new UsageError('--clock-offset-seconds: expected MIN,MAX whole seconds');
  const options: ClockFaultOptions = {
    mode,
    shapes: listOf<ClockShape>(str('clock-shape'), clockShapes, 'clock-shape') ?? (mode === 'monotonic' ? ['bump'] : defaultClockFaultOptions.shapes),
    targets: listOf<ClockTarget>(str('clock-target'), clockTargets, 'clock-target') ?? defaultClockFaultOptions.targets,
    offsetSeconds: offsets === undefined ? defaultClockFaultOptions.offsetSeconds : [offsets[0] ?? 0, offsets[1] ?? 0],
  };
  const problem = checkClockFaultOptions(options);
  if (problem !== null) throw new UsageError(`--nemesis clock: ${problem}`);
  return options;
}

function optionsOf(values: Record<string, string | boolean | undefined>): RunOptions {
  const base = defaultRunOptions();
  const str = (key: string): string | undefined => (typeof values[key] === 'string' ? values[key] : undefined);
  const nodes = numberOf(str('nodes'), 'nodes', 1, 5);
  const workloads = listOf<WorkloadName>(str('workload'), workloadNames, 'workload') ?? base.workloads;
  // D3's beaters send from 127.0.0.15 (beatClientSource), so its members are 127.0.0.11-14.
  const clientsCut = listOf<BeatFaultKind>(str('beat-faults'), beatFaultKinds, 'beat-faults')?.includes('all-clients-cut') === true;
  if (clientsCut && nodes !== undefined && nodes !== 4) throw new UsageError(`--beat-faults all-clients-cut (D3): 4 members only (its beaters send from ${beatClientSource})`);
  if (!clientsCut && nodes !== undefined && nodes !== 3 && nodes !== 5) throw new UsageError('--nodes: 3 or 5');
  const nodesChosen = nodes ?? (workloads.includes('health') ? 3 : clientsCut ? 4 : base.nodes);
  if (workloads.includes('health') && nodesChosen !== 3) throw new UsageError('--workload health: 3 members only (its targets listen on 127.0.0.15)');
  if (workloads.includes('health') && workloads.length > 1) throw new UsageError('--workload health runs alone (its faults are scripted)');
  const kinds = listOf<NemesisKind>(str('nemesis'), nemesisKinds, 'nemesis') ?? [];
  if (workloads.includes('health') && kinds.some((kind) => kind !== 'partition' && kind !== 'kill' && kind !== 'pause')) throw new UsageError('--workload health: --nemesis partition (C1), kill and/or pause (C4), or none (its faults are scripted)');
  if (workloads.includes('health') && kinds.includes('partition') && (kinds.includes('kill') || kinds.includes('pause'))) throw new UsageError('--workload health: partition (C1) or kill/pause (C4), not both');
  if (kinds.includes('member') && nodesChosen < memberNemesisNodesMin) throw new UsageError(`--nemesis member: needs --nodes 5 (removing one of ${nodesChosen} members would leave fewer than 3 voters)`);
  if (kinds.includes('wipe') && nodesChosen < wipeNemesisNodesMin) throw new UsageError(`--nemesis wipe: needs at least ${wipeNemesisNodesMin} members (with one of ${nodesChosen} dead the others cannot remove it)`);
  if (kinds.includes('corrupt') && (nodesChosen < corruptNemesisNodesMin || !workloads.includes('register'))) throw new UsageError(`--nemesis corrupt: needs --workload register (its final reads compare the members) and at least ${corruptNemesisNodesMin} members`);
  const beatFaults = listOf<BeatFaultKind>(str('beat-faults'), beatFaultKinds, 'beat-faults');
  if (beatFaults !== undefined && !workloads.includes('beats')) throw new UsageError('--beat-faults: needs --workload beats');
  if (beatFaults?.includes('all-clients-cut') === true && (beatFaults.length > 1 || !kinds.includes('partition'))) throw new UsageError('--beat-faults all-clients-cut (D3): runs alone, with --nemesis partition (its cuts are iptables rules)');
  const overrideControl = values['override-control'] === true;
  if (overrideControl && !workloads.includes('overrides')) throw new UsageError('--override-control: needs --workload overrides');
  const overrideOperators = listOf<OverrideOperators>(str('override-operators'), overrideOperatorKinds, 'override-operators')?.[0];
  if (overrideOperators !== undefined && !workloads.includes('overrides')) throw new UsageError('--override-operators: needs --workload overrides');
  if (overrideOperators === 'per-attribute' && overrideControl) throw new UsageError('--override-operators per-attribute: the operators send PATCH only, not with --override-control');
  const unsafeNoFsync = values['unsafe-no-fsync'] === true;
  return {
    ...(beatFaults === undefined ? {} : { beatFaults }),
    ...(overrideControl ? { overrideControl } : {}),
    ...(overrideOperators === undefined ? {} : { overrideOperators }),
    ...base,
    name: str('name') ?? `${workloads.join('+')}-${str('nemesis') ?? 'none'}`.replace(/,/g, '+'),
    workloads,
    nodes: nodesChosen,
    timeSeconds: numberOf(str('time'), 'time', 1, 86_400) ?? base.timeSeconds,
    seed: numberOf(str('seed'), 'seed', 0, 2 ** 31) ?? base.seed,
    unsafeLocalReads: values['unsafe-local-reads'] === true,
    unsafeNoFsync,
    unsafeNoRequestDedup: values['unsafe-no-request-dedup'] === true,
    impatientShare: numberOf(str('impatient-share'), 'impatient-share', 0, 1) ?? base.impatientShare,
    protectThreshold: protectThresholdOf(str('protect-threshold'), workloads, kinds) ?? base.protectThreshold,
    // Without the lazyfs emulation a kill loses nothing here, so the fsync control would be blind (lazyfs.ts).
    // --no-lazyfs keeps it off anyway, to show that the control is blind without it.
    lazyfs: values['no-lazyfs'] !== true && (values['lazyfs'] === true || unsafeNoFsync),
    snapshotEntries: numberOf(str('snapshot-entries'), 'snapshot-entries', 1, 1_000_000) ?? null,
    targets: listOf(str('targets'), ['random', 'followers'] as const, 'targets')?.[0] ?? base.targets,
    transports: listOf(str('transport'), ['http', 'grpc', 'mixed'] as const, 'transport')?.[0] ?? base.transports,
    registerWorkers: numberOf(str('concurrency'), 'concurrency', 1, 200) ?? base.registerWorkers,
    registerRate: numberOf(str('rate'), 'rate', 1, 10_000) ?? base.registerRate,
    logLevel: str('log-level') ?? base.logLevel,
    port: numberOf(str('port'), 'port', 1100, 64_000) ?? base.port,
    checkTimeoutSeconds: numberOf(str('check-timeout'), 'check-timeout', 1, 86_400) ?? base.checkTimeoutSeconds,
    nemesis: {
      kinds: listOf<NemesisKind>(str('nemesis'), nemesisKinds, 'nemesis') ?? [],
      partitionModes: listOf<PartitionMode>(str('partition'), partitionModes, 'partition') ?? base.nemesis.partitionModes,
      killTargets: listOf<KillTarget>(str('kill'), killTargets, 'kill') ?? base.nemesis.killTargets,
      pauseTargets: listOf<PauseTarget>(str('pause'), pauseTargets, 'pause') ?? base.nemesis.pauseTargets,
      faultMs: rangeOf(str('fault-seconds'), 'fault-seconds') ?? base.nemesis.faultMs,
      quietMs: rangeOf(str('quiet-seconds'), 'quiet-seconds') ?? base.nemesis.quietMs,
      clock: clockOptionsOf(str, kinds),
    },
  };
}

const log = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

async function suiteMain(name: string, values: Record<string, string | boolean | undefined>): Promise<boolean> {
  if (name !== 'ci' && name !== 'full') throw new UsageError(`--suite: ci or full, not '${name}'`);
  const base = optionsOf(values);
  const explicitTime = typeof values['time'] === 'string';
  const all = name === 'ci' ? ciCases : fullCases;
  const wanted = typeof values['cases'] === 'string' ? values['cases'].split(',').map((id) => id.trim()).filter((id) => id !== '') : null;
  for (const id of wanted ?? []) if (!all.some((c) => c.id === id)) throw new UsageError(`--cases: no case '${id}' in the ${name} suite (${all.map((c) => c.id).join(', ')})`);
  const cases = wanted === null ? all : all.filter((c) => wanted.includes(c.id));
  const timed = { ...base, timeSeconds: explicitTime ? base.timeSeconds : name === 'ci' ? 30 : 300 };
  const rows = await runSuite(cases, timed, log);
  log('');
  for (const line of suiteTable(rows)) log(line);
  for (const line of premiseLines(rows)) log(line);
  if (name === 'full') for (const line of notRun) log(`not run: ${line}`);
  return rows.every((row) => row.passed);
}

async function repeatMain(options: RunOptions, times: number): Promise<boolean> {
  const verdicts: string[] = [];
  for (let run = 0; run < times; run++) {
    const result = await runTest({ ...options, seed: options.seed + run }, log);
    for (const line of result.summary) log(line);
    log(`timeline: ${result.dir}/timeline.html`);
    verdicts.push(result.verdict);
  }
  if (times > 1) {
    const invalid = verdicts.filter((verdict) => verdict === 'invalid').length;
    log(`repeat: ${invalid}/${times} runs invalid (seeds ${options.seed}..${options.seed + times - 1}): ${verdicts.join(', ')}`);
  }
  return verdicts.every((verdict) => verdict === 'valid');
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: flags, allowPositionals: false });
  if (values.help === true) {
    log(usage);
    return 0;
  }
  let valid: boolean;
  if (values.recheck !== undefined) {
    const checkTimeout = numberOf(values['check-timeout'], 'check-timeout', 1, 86_400) ?? 600;
    const { verdict, lines } = recheck(values.recheck, { maxSteps: 20_000_000, timeoutMs: checkTimeout * 1000 });
    for (const line of lines) log(line);
    valid = verdict === 'valid';
  } else if (values.suite !== undefined) {
    valid = await suiteMain(values.suite, values);
  } else {
    valid = await repeatMain(optionsOf(values), numberOf(values.repeat, 'repeat', 1, 1000) ?? 1);
  }
  log(`verdict: ${valid ? 'valid' : 'invalid'}`);
  return valid ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof UsageError) log(`${error.message}\n${usage}`);
    else if (error instanceof PrerequisiteError) log(`cannot run here: ${error.message}`);
    else log(`jepsen-like: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    log('verdict: invalid');
    process.exit(2);
  },
);
