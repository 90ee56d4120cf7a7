// Goal: `cairn cluster --size 3` does not keep running when one member fails to start: the other members, which
// would wait for it in their bootstrap check for up to 10 minutes, are stopped, and the command exits 1 naming the
// member and its error (src/cli/cluster.ts runCluster).
// Method: a real `bin/cairn cluster --size 3 --base-ip 127.0.1.109 --port 28848` (members on this file's loopback
// addresses 127.0.1.109-111) with a temporary data directory, after this test took the peer port (27848) of the
// second member, 127.0.1.110, with a bare TCP listener: that member exits at once (EADDRINUSE). Afterwards every
// port of the other two members is free again: their processes are gone.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stopTimeoutMs } from '../../src/cli/stop.ts';
import { exitWithin, spawnCairn } from './spawned.ts';

const port = 28848;
const hosts = ['127.0.1.109', '127.0.1.110', '127.0.1.111'];
const failing = '127.0.1.110';

function listenOn(host: string, listenPort: number): Promise<Server> {
  const server = createServer((socket) => socket.destroy());
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(listenPort, host, () => resolve(server));
  });
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

test('a member that fails to start stops the whole cluster: exit 1 naming it and its error, the others stopped', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'cairn-cli-cluster-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const taken = await listenOn(failing, port - 1000);
  try {
    const cluster = spawnCairn(['cluster', '--size', '3', '--base-ip', hosts[0] ?? '', '--port', String(port), '--data-dir', dir]);
    // The others wait in their bootstrap check until stopped; a start cut short takes at most the stop's bound.
    const exit = await exitWithin(cluster, stopTimeoutMs + 30_000);
    assert.deepEqual(exit, { code: 1, signal: null }, cluster.stderr());
    const last = cluster.stderr().trimEnd().split('\n').at(-1) ?? '';
    assert.match(last, new RegExp(`^cairn cluster: member ${failing.replaceAll('.', '\\.')}:${port} exited with code 1 before the cluster was ready: .*EADDRINUSE`), cluster.stderr());
    assert.match(cluster.stderr(), /stopping the other members/);
    for (const host of hosts.filter((h) => h !== failing)) {
      assert.match(cluster.stderr(), new RegExp(`\\[${host.replaceAll('.', '\\.')}:${port}\\] cairn server: SIGTERM before the member was ready`), cluster.stderr());
    }
  } finally {
    await close(taken);
  }
  // Every port of every member is free: no member process outlived the command.
  for (const host of hosts) {
    for (const listenPort of [port - 1000, port, port + 1000]) await close(await listenOn(host, listenPort));
  }
});
