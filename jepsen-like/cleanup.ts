// cleanup: what must be undone however a run ends (normally, by an exception, by Ctrl-C or SIGTERM): member
// processes killed by pid, iptables rules with our tag deleted, cgroups removed. Each owner registers a synchronous
// cleanup; the process 'exit' handler and the signal handlers run them all, newest first. Nothing here ever kills
// by name.

/** Cleanup is one synchronous undo action; it must not throw past its own error handling. */
export type Cleanup = () => void;

const cleanups = new Set<Cleanup>();
let installed = false;

/** onExit registers `cleanup` to run at process exit or on SIGINT/SIGTERM/SIGHUP; returns its unregistration. */
export function onExit(cleanup: Cleanup): () => void {
  install();
  cleanups.add(cleanup);
  return () => {
    cleanups.delete(cleanup);
  };
}

/** runExitCleanups runs every registered cleanup now (newest first) and forgets them. */
export function runExitCleanups(): void {
  const pending = [...cleanups].reverse();
  cleanups.clear();
  for (const cleanup of pending) {
    try {
      cleanup();
    } catch (error) {
      process.stderr.write(`jepsen-like: cleanup failed: ${error instanceof Error ? error.message : String(error)}\n`);
    }
  }
}

function install(): void {
  if (installed) return;
  installed = true;
  process.on('exit', runExitCleanups);
  const signals = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 } as const;
  for (const [signal, code] of Object.entries(signals)) {
    process.once(signal, () => {
      process.stderr.write(`jepsen-like: ${signal}: tearing down the cluster\n`);
      runExitCleanups();
      process.exit(code);
    });
  }
}
