// lazyfs: an emulation of losing the page cache when a member is killed, for the fsync positive control (A3) and
// the durability case (A6), in the manner of jepsen's --lazyfs. On this machine kill -9 loses nothing a process
// wrote: the kernel keeps its dirty pages and writes them out later, so a member that never fsyncs
// (--unsafe-no-fsync) looks durable. Jepsen mounts the data directory on lazyfs (a FUSE file system whose cache
// can be dropped); device-mapper (dm-flakey) would do the same at the block level. Neither is usable here (no
// device-mapper in this kernel; lazyfs is not packaged by Debian), so the member runs with an LD_PRELOAD library
// (lazyfs/fsync-journal.c) that journals, after each fsync/fdatasync of a file under the data directory, the size
// the file had when the sync began, and each rename. After the member is killed, loseUnsyncedWrites truncates each
// file to its last durable size: exactly the bytes that were never covered by an fsync disappear.
//
// Faithful for LevelDB, which only appends to files and publishes them by rename (write-ahead log, MANIFEST,
// tables, CURRENT). Not emulated: in-place overwrites of synced bytes, torn writes within a page, and the loss of
// directory entries (creations, renames, unlinks are taken as durable at once, as lazyfs does); the kernel's own
// periodic write-back is not emulated either, so this loses the most a power failure could lose.

import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** journalSource is the C source of the LD_PRELOAD library. */
export const journalSource = fileURLToPath(new URL('./lazyfs/fsync-journal.c', import.meta.url));

/** filesPerDirectoryMax bounds the walk of a data directory (LevelDB keeps a few dozen files). */
const filesPerDirectoryMax = 10_000;

/** LossReport says what an emulated power failure took from one member. */
export interface LossReport {
  readonly filesTruncated: number;
  readonly bytesLost: number;
  readonly details: readonly string[];
}

/** compileJournalLibrary builds the library into `outputDir` with the C compiler; throws with the reason. */
export function compileJournalLibrary(outputDir: string): string {
  const output = path.join(outputDir, 'libfsync-journal.so');
  try {
    execFileSync('cc', ['-shared', '-fPIC', '-O2', '-o', output, journalSource, '-ldl', '-lpthread'], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
  } catch (error) {
    const stderr = (error as { stderr?: Buffer }).stderr?.toString() ?? String(error);
    throw new Error(`cannot build the lazyfs emulation (install the Debian package gcc): ${stderr.trim()}`);
  }
  return output;
}

function filesUnder(dir: string): string[] {
  const found: string[] = [];
  const pending = [dir];
  while (pending.length > 0 && found.length < filesPerDirectoryMax) {
    const current = pending.pop() as string;
    if (!existsSync(current)) continue;
    for (const entry of readdirSync(current, { withFileTypes: true })) {
      const full = path.join(current, entry.name);
      if (entry.isDirectory()) pending.push(full);
      else if (entry.isFile()) found.push(full);
    }
  }
  return found;
}

/** DurabilityJournal tracks what is durable in one member's data directory across its incarnations. */
export class DurabilityJournal {
  private baseline = new Map<string, number>();

  /** constructor: `library` is the compiled .so, `journalPath` where the member journals, `dataDir` its data. */
  constructor(
    private readonly library: string,
    private readonly journalPath: string,
    private readonly dataDir: string,
  ) {}

  /** environment is what the member's process needs to journal its syncs. */
  environment(): Record<string, string> {
    return { LD_PRELOAD: this.library, CAIRN_FSYNC_JOURNAL: this.journalPath, CAIRN_FSYNC_PREFIX: this.dataDir };
  }

  /** beforeStart takes everything on disk as durable (it survived the last emulated failure) and empties the journal. */
  beforeStart(): void {
    this.baseline = new Map(filesUnder(this.dataDir).map((file) => [file, statSync(file).size]));
    writeFileSync(this.journalPath, '');
  }

  /** loseUnsyncedWrites truncates every file to its durable size; call only once the member's process is dead. */
  loseUnsyncedWrites(): LossReport {
    const durable = this.durableSizes();
    const details: string[] = [];
    let bytesLost = 0;
    for (const file of filesUnder(this.dataDir)) {
      const size = statSync(file).size;
      const keep = durable.get(file) ?? 0;
      if (size <= keep) continue;
      truncateSync(file, keep);
      bytesLost += size - keep;
      details.push(`${path.relative(this.dataDir, file)}: ${size} -> ${keep}`);
    }
    return { filesTruncated: details.length, bytesLost, details };
  }

  private durableSizes(): Map<string, number> {
    const durable = new Map(this.baseline);
    const text = existsSync(this.journalPath) ? readFileSync(this.journalPath, 'utf8') : '';
    for (const line of text.split('\n')) {
      const [kind, first, second] = line.split('\t');
      if (kind === 'S' && first !== undefined && second !== undefined) {
        durable.set(second, Math.max(durable.get(second) ?? 0, Number(first)));
      } else if (kind === 'R' && first !== undefined && second !== undefined) {
        durable.set(second, durable.get(first) ?? 0);
        durable.delete(first);
      }
    }
    return durable;
  }
}
