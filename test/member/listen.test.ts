// Goal: a member whose listener cannot bind its address stops with a coded, one-line report that names the listener,
// the address and the flag that sets it, with the system's reason, and nothing else on stderr: grpc-js's own line
// ("E No address added out of total 1 resolved") named neither, and went to stderr beside the member's report.
//
// Method: a plain TCP server holds one of the member's ports on 127.0.1.210 (this file's address); `cairn server`
// is started on that address with a fresh data directory, once with the peer port held and once with the gRPC port
// held. It must exit 1 within the bound with the report.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const host = '127.0.1.210';
const bin = fileURLToPath(new URL('../../bin/cairn', import.meta.url));

async function hold(port: number): Promise<net.Server> {
  const server = net.createServer((socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, host, resolve));
  return server;
}

for (const [listener, port, flag] of [['peer', 7848, '--peer-port'], ['gRPC', 9848, '--grpc-port']] as const) {
  test(`a held ${listener} port stops the member with a report naming the listener, ${flag} and EADDRINUSE`, async (t) => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'cairn-listen-'));
    t.after(() => rmSync(dataDir, { recursive: true, force: true }));
    const holder = await hold(port);
    t.after(() => new Promise<void>((resolve) => holder.close(() => resolve())));
    const run = spawnSync(bin, ['server', '--addr', `${host}:8848`, '--data-dir', dataDir, '--log-level', 'error'], { encoding: 'utf8', timeout: 30_000, killSignal: 'SIGKILL' });
    assert.equal(run.status, 1, `exit ${String(run.status)} ${String(run.signal)}; stderr: ${run.stderr}`);
    const lines = run.stderr.trim().split('\n');
    assert.equal(lines.length, 1, `one line on stderr: ${run.stderr}`);
    assert.match(lines[0] ?? '', new RegExp(`^cairn server: CAIRN_INVALID_ARGUMENT: .*the ${listener} listener cannot bind ${host}:${port} \\(another process holds that port; set by ${flag}\\).*EADDRINUSE`));
  });
}
