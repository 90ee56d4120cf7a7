// `cairn server`: run one member until SIGTERM/SIGINT, then stop gracefully (stop accepting, finish in-flight
// work, close LevelDB). Prints `cairn ready <addr>` once the member serves (DESIGN.md, Command line). How signals
// are handled before, while and after the member is ready: stop.ts.
import { isCairnError } from '../errors.ts';
import { startMember, type Member } from '../member.ts';
import type { Output, ServerConfig } from './main.ts';
import type { Stop } from './stop.ts';

/**
 * serve starts a member with `config` and resolves with the process's exit code once it has stopped; `stop` listens
 * for the signals already (main.ts installs it before loading this module).
 */
export async function serve(config: ServerConfig, out: Output, stop: Stop): Promise<number> {
  if (stop.signalled) {
    out.stderr('cairn server: stopped before it was ready\n');
    return 0;
  }
  let fatal: Error | null = null;
  let resolveFailed: () => void = () => undefined;
  const failed = new Promise<void>((resolve) => (resolveFailed = resolve));
  const starting = startMember(config, (error) => {
    fatal = error;
    out.stderr(`cairn server: fatal: ${describeStartError(error)}\n`);
    resolveFailed();
  }, stop.abortSignal);
  const started = await Promise.race([
    starting.then((member) => ({ member }), (error: unknown) => ({ error })),
    stop.requested.then(() => null),
  ]);
  // A signal that arrived as the start ended still finds the member not ready: it is closed before serving.
  if (started === null || stop.signalled) return abandonStart(starting, out);
  if ('error' in started) {
    out.stderr(`cairn server: ${describeStartError(started.error)}\n`);
    return 1;
  }
  stop.ready = true;
  out.stdout(`cairn ready ${config.addr}\n`);
  await Promise.race([stop.requested, failed]);
  stop.bound();
  await closeMember(started.member, out);
  return fatal === null ? 0 : 1;
}

/** abandonStart waits for a start that a signal abandoned, closes what it opened, and answers 0. */
async function abandonStart(starting: Promise<Member>, out: Output): Promise<number> {
  const member = await starting.catch((error: unknown) => {
    out.stderr(`cairn server: the abandoned start ended with: ${describeStartError(error)}\n`);
    return null;
  });
  if (member !== null) await closeMember(member, out);
  out.stderr('cairn server: stopped before it was ready\n');
  return 0;
}

async function closeMember(member: Member, out: Output): Promise<void> {
  await member.close().catch((error: unknown) => out.stderr(`cairn server: close failed: ${String(error)}\n`));
}

/** describeStartError renders why a start failed: `CODE: message` for an operating error (jepsen-like/ parses it). */
function describeStartError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return `${isCairnError(error) ? `${error.code}: ` : ''}${message}`;
}
