// `cairn server`: run one member until SIGTERM/SIGINT, then stop gracefully (stop accepting, finish in-flight
// work, close LevelDB). Prints `cairn ready <addr>` once the member serves (DESIGN.md, Command line).
import { isCairnError } from '../errors.ts';
import { startMember, type Member } from '../member.ts';
import type { Output, ServerConfig } from './main.ts';

/** shutdownTimeoutMs bounds a graceful stop; past it the process exits anyway. */
const shutdownTimeoutMs = 10_000;

/** serve starts a member with `config` and resolves with the process's exit code once it has stopped. */
export async function serve(config: ServerConfig, out: Output): Promise<number> {
  let member: Member;
  let fatal: Error | null = null;
  let stop: (code: number) => void = () => undefined;
  const stopped = new Promise<number>((resolve) => (stop = resolve));
  try {
    member = await startMember(config, (error) => {
      fatal = error;
      out.stderr(`cairn server: fatal: ${error.message}\n`);
      stop(1);
    });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    out.stderr(`cairn server: ${isCairnError(error) ? `${error.code}: ` : ''}${message}\n`);
    return 1;
  }
  out.stdout(`cairn ready ${config.addr}\n`);
  const onSignal = (signal: NodeJS.Signals): void => {
    out.stderr(`cairn server: ${signal}: stopping\n`);
    stop(0);
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  const code = await stopped;
  const timer = setTimeout(() => {
    out.stderr('cairn server: graceful stop timed out; exiting\n');
    process.exit(code === 0 ? 1 : code);
  }, shutdownTimeoutMs);
  timer.unref();
  await member.close().catch((error: unknown) => out.stderr(`cairn server: close failed: ${String(error)}\n`));
  clearTimeout(timer);
  process.removeListener('SIGTERM', onSignal);
  process.removeListener('SIGINT', onSignal);
  return fatal === null ? code : 1;
}
