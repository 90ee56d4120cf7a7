// bench/profile-summary.ts: summarises a V8 .cpuprofile (from `npm run bench -- --profile DIR`): self time by
// bucket (idle, GC, grpc-js, protobufjs, LevelDB, fastify, pino, Cairn's own folders, ...) and the top functions.
//
//   node --import tsx bench/profile-summary.ts FILE.cpuprofile [--top 25] [--last SECONDS]
//
// --last keeps only the samples of the profile's last SECONDS (a bench member stops right after its last measured
// window, so `--last <duration>` drops start-up, preparation and warm-up from the shares).
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
}

interface Profile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
  readonly endTime?: number;
  readonly startTime?: number;
}

/** bucketOf names what a frame belongs to, from its function name and script URL. */
export function bucketOf(functionName: string, url: string): string {
  if (functionName === '(idle)') return 'idle';
  if (functionName === '(garbage collector)') return 'GC';
  if (functionName === '(program)') return 'program (native, not attributed)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1];
  if (pkg !== undefined) return pkg;
  const own = /\/(src\/[^/]+)\//.exec(url)?.[1];
  if (own !== undefined) return own;
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0] ?? ''}`;
  if (url === '') return `native: ${functionName || '(anonymous)'}`;
  return url;
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '25' }, last: { type: 'string' } } });
  const file = positionals[0];
  if (file === undefined) throw new Error('usage: profile-summary FILE.cpuprofile [--top N]');
  const profile = JSON.parse(await readFile(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const buckets = new Map<string, number>();
  const functions = new Map<string, number>();
  let total = 0;
  // Sample i is taken at startTime + the sum of timeDeltas[0..i]; --last keeps those within the final window.
  const lastUs = values.last === undefined ? Infinity : Number(values.last) * 1e6;
  const span = profile.timeDeltas.reduce((sum, delta) => sum + delta, 0);
  let at = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i] ?? -1);
    const delta = profile.timeDeltas[i] ?? 0;
    at += delta;
    if (node === undefined || span - at > lastUs) continue;
    total += delta;
    const { functionName, url, lineNumber } = node.callFrame;
    const bucket = bucketOf(functionName, url);
    buckets.set(bucket, (buckets.get(bucket) ?? 0) + delta);
    const name = `${functionName || '(anonymous)'} ${url.replace(/^.*\/(node_modules|src)\//, '$1/')}:${lineNumber + 1}`;
    functions.set(name, (functions.get(name) ?? 0) + delta);
  }
  const busy = total - (buckets.get('idle') ?? 0);
  const pct = (us: number, of: number): string => `${((100 * us) / Math.max(1, of)).toFixed(1)}%`;
  process.stdout.write(`${file}: ${(total / 1e6).toFixed(1)} s sampled, ${(busy / 1e6).toFixed(1)} s busy (${pct(busy, total)})\n\n| bucket | share of busy time |\n|---|---|\n`);
  for (const [bucket, us] of [...buckets].filter(([b]) => b !== 'idle').sort((a, b) => b[1] - a[1]).slice(0, 20)) {
    process.stdout.write(`| ${bucket} | ${pct(us, busy)} |\n`);
  }
  process.stdout.write(`\n| function (self time) | share of busy time |\n|---|---|\n`);
  for (const [name, us] of [...functions].filter(([n]) => !n.startsWith('(idle)')).sort((a, b) => b[1] - a[1]).slice(0, Number(values.top))) {
    process.stdout.write(`| ${name} | ${pct(us, busy)} |\n`);
  }
}

await main();
