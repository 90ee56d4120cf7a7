// `cairn backup save` and `cairn backup restore` (docs/operations.md "Backups and disaster recovery"):
//
//   cairn backup save --data-dir DIR --out FILE [--with-uncommitted]
//       reads a stopped member's data directory and writes a backup of its persistent registry to FILE (never over
//       an existing file: written aside, fsynced, then linked into place).
//   cairn backup save --from HOST:PORT --out FILE [--peer-port PORT]
//       asks a running member (its --addr; the peer port is derived from it) for a backup as of its applied index,
//       over the peer port's Backup method, checks it whole and writes it the same way.
//   cairn backup inspect --in FILE
//       checks a backup whole (checksums, header, image) and says what it holds, without writing anything.
//   cairn backup restore --in FILE --data-dir DIR --addr HOST:PORT [--members A,B,C]
//       writes a new member's data directory holding the backup; run it once per member of the new cluster, with
//       the same --members, then start each with `cairn server` and the same --addr, --members and --data-dir.
//
// Exit codes as every command: 0 done (or help), 1 failed at run time (the code and message on stderr), 2 bad usage.
import { createHash } from 'node:crypto';
import { link, open, readFile, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { RegistryStateMachine } from '../cp/registry-state-machine.ts';
import { isCairnError } from '../errors.ts';
import { backupBytesMax, checkImage, decodeBackup, encodeBackup, restoreBackup, takeBackup, type Backup, type BackupHeader } from '../replica/backup.ts';
import { fetchLiveBackup } from '../replica/backup-fetch.ts';
import { flags, formatHostPort, parseHostPort, parseMembers, parsePort, peerPortOffset, required, text, UsageError, type Output } from './main.ts';

export const backupUsage = `Usage:
  cairn backup save --from HOST:PORT --out FILE [--peer-port PORT]
  cairn backup save --data-dir DIR --out FILE [--with-uncommitted]
  cairn backup inspect --in FILE
  cairn backup restore --in FILE --data-dir DIR --addr HOST:PORT [--members A,B,C]

save     Write a backup of a member's persistent instances, services and cluster settings (not ephemeral
         instances) to FILE, which must not exist.
         --from: ask a running member (its --addr) over its peer port (the HTTP port - 1000 unless --peer-port),
         as of the entries it has applied; the member goes on serving meanwhile. Checked whole before it is written.
         --data-dir: read a stopped member's data directory, as of the last entry it knew committed.
         --with-uncommitted (with --data-dir) also covers the entries after it in the member's log: only to recover
         after losing a majority, when the lost leader may have acknowledged them.
inspect  Check a backup whole (checksums, header, image) and say what it holds; exit 1 if it is damaged.
restore  Write a new member's data directory (absent or empty) from a backup. Restore every member of the new
         cluster from the same backup with the same --members, then start each: cairn server --addr HOST:PORT
         --members A,B,C --data-dir DIR. Without --members the member is standalone.
`;

/** describeCounts renders the sizes of the registry a backup holds. */
function describeCounts(machine: RegistryStateMachine): string {
  const counts = machine.counts();
  return `${counts.instances} persistent instances in ${counts.services} services of ${counts.namespaces} namespaces`;
}

/** describeHeader renders what a backup holds, for the commands' reports. */
function describeHeader(header: BackupHeader): string {
  const beyond = header.beyondCommit > 0 ? `, ${header.beyondCommit} of them after the commit index it knew` : '';
  return `index ${header.index} (term ${header.term}${beyond}) of member ${header.sourceMember} (voters ${header.members.join(',') || '-'}), taken ${header.createdAt}, image ${header.imageBytes} bytes`;
}

/** writeNewFile writes `bytes` to `file` durably, refusing to replace an existing file. */
async function writeNewFile(file: string, bytes: Uint8Array): Promise<void> {
  const partial = `${file}.partial-${process.pid}`;
  const handle = await open(partial, 'wx');
  try {
    await handle.writeFile(bytes);
    await handle.sync();
  } catch (error) {
    // A full disk or an I/O error: leave no partial file behind.
    await handle.close().catch(() => undefined);
    await unlink(partial).catch(() => undefined);
    throw error;
  }
  await handle.close();
  try {
    await link(partial, file);
  } catch (error) {
    await unlink(partial).catch(() => undefined);
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw new UsageError(`--out: ${file} already exists; a backup never replaces a file`);
    throw error;
  }
  await unlink(partial);
  const directory = await open(path.dirname(file), 'r');
  try {
    await directory.sync();
  } finally {
    await directory.close();
  }
}

async function save(args: readonly string[], out: Output): Promise<number> {
  const values = flags(args, {
    'data-dir': { type: 'string' }, from: { type: 'string' }, 'peer-port': { type: 'string' }, out: { type: 'string' },
    'with-uncommitted': { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
  });
  if (values['help'] === true) {
    out.stdout(backupUsage);
    return 0;
  }
  const fromText = text(values, 'from');
  const dataDirText = text(values, 'data-dir');
  if ((fromText === undefined) === (dataDirText === undefined)) throw new UsageError('say where the backup comes from: --from HOST:PORT (a running member) or --data-dir DIR (a stopped one)');
  if (fromText !== undefined && values['with-uncommitted'] === true) throw new UsageError('--with-uncommitted reads a stopped member\'s log: use it with --data-dir');
  if (fromText === undefined && text(values, 'peer-port') !== undefined) throw new UsageError('--peer-port goes with --from');
  const file = path.resolve(required(values, 'out'));
  // Refuse an existing --out, or one whose directory is missing, before asking a member for hundreds of megabytes
  // (writeNewFile refuses the first again).
  if (await exists(file)) throw new UsageError(`--out: ${file} already exists; a backup never replaces a file`);
  if (!(await isDirectory(path.dirname(file)))) throw new UsageError(`--out: the directory ${path.dirname(file)} does not exist (or is not a directory); create it first`);
  const machine = new RegistryStateMachine();
  let backup: Backup;
  if (fromText !== undefined) {
    const member = parseHostPort(fromText, '--from');
    const peerPortText = text(values, 'peer-port');
    const peerPort = peerPortText === undefined ? member.port + peerPortOffset : parsePort(peerPortText, '--peer-port');
    if (peerPort < 1) throw new UsageError(`--from: the derived peer port ${peerPort} is not a port; give --peer-port`);
    const peer = formatHostPort({ host: member.host, port: peerPort });
    backup = await fetchLiveBackup(peer, { requester: `cairn backup (pid ${process.pid})` });
    checkImage(backup, machine, peer);
  } else {
    backup = await takeBackup(path.resolve(dataDirText ?? ''), machine, { withUncommitted: values['with-uncommitted'] === true });
  }
  await writeNewFile(file, encodeBackup(backup));
  out.stdout(`cairn backup: wrote ${file}: ${describeHeader(backup.header)}; ${describeCounts(machine)}\n`);
  return 0;
}

/** exists tells whether `file` exists (as anything). */
async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

/** isDirectory tells whether `directory` exists and is a directory. */
async function isDirectory(directory: string): Promise<boolean> {
  try {
    return (await stat(directory)).isDirectory();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' || (error as NodeJS.ErrnoException).code === 'ENOTDIR') return false;
    throw error;
  }
}

/** readChecked reads and validates a backup file whole: the decoded backup and the registry it holds. */
async function readChecked(file: string): Promise<{ backup: Backup; machine: RegistryStateMachine }> {
  let size: number;
  try {
    const found = await stat(file);
    if (!found.isFile()) throw new UsageError(`--in: ${file} is not a file (a backup is one file, written by cairn backup save)`);
    size = found.size;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new UsageError(`--in: ${file} does not exist`);
    throw error;
  }
  if (size > backupBytesMax) throw new UsageError(`--in: ${file} is ${size} bytes, above the ${backupBytesMax} a backup may have`);
  const backup = decodeBackup(await readFile(file), file);
  const machine = new RegistryStateMachine();
  checkImage(backup, machine, file);
  return { backup, machine };
}

async function inspect(args: readonly string[], out: Output): Promise<number> {
  const values = flags(args, { in: { type: 'string' }, help: { type: 'boolean', short: 'h' } });
  if (values['help'] === true) {
    out.stdout(backupUsage);
    return 0;
  }
  const file = path.resolve(required(values, 'in'));
  const { backup, machine } = await readChecked(file);
  out.stdout(`cairn backup: ${file} is whole: ${describeHeader(backup.header)}; ${describeCounts(machine)}\n`);
  return 0;
}

async function restore(args: readonly string[], out: Output): Promise<number> {
  const values = flags(args, { in: { type: 'string' }, 'data-dir': { type: 'string' }, addr: { type: 'string' }, members: { type: 'string' }, help: { type: 'boolean', short: 'h' } });
  if (values['help'] === true) {
    out.stdout(backupUsage);
    return 0;
  }
  const file = path.resolve(required(values, 'in'));
  const dataDir = path.resolve(required(values, 'data-dir'));
  const addr = formatHostPort(parseHostPort(required(values, 'addr'), '--addr'));
  const membersText = text(values, 'members');
  const members = typeof membersText === 'string' ? parseMembers(membersText, addr) : [addr];
  const { backup } = await readChecked(file);
  const clusterId = createHash('sha256')
    .update(`restore:${backup.header.index}:${backup.header.imageCrc32c}:${[...members].sort().join(',')}`)
    .digest('hex')
    .slice(0, 32);
  await restoreBackup(backup, { dataDir, addr, members, clusterId });
  const membersFlag = typeof membersText === 'string' ? ` --members ${members.join(',')}` : '';
  out.stdout(
    `cairn backup: restored ${describeHeader(backup.header)} into ${dataDir} for ${addr}\n` +
      `start it with: cairn server --addr ${addr}${membersFlag} --data-dir ${dataDir}\n`,
  );
  return 0;
}

/** runBackup runs `cairn backup <save|inspect|restore> ...` and resolves with the exit code. */
export async function runBackup(args: readonly string[], out: Output): Promise<number> {
  const [action, ...rest] = args;
  try {
    switch (action) {
      case 'save':
        return await save(rest, out);
      case 'inspect':
        return await inspect(rest, out);
      case 'restore':
        return await restore(rest, out);
      case '-h':
      case '--help':
      case 'help':
        out.stdout(backupUsage);
        return 0;
      default:
        throw new UsageError(action === undefined ? 'say save, inspect or restore' : `unknown action '${action}' (save, inspect or restore)`);
    }
  } catch (error) {
    if (error instanceof UsageError) {
      out.stderr(`cairn backup: ${error.message}\nRun 'cairn backup --help' for usage.\n`);
      return 2;
    }
    const message = error instanceof Error ? error.message : String(error);
    out.stderr(`cairn backup: ${isCairnError(error) ? `${error.code}: ` : ''}${message}\n`);
    return 1;
  }
}
