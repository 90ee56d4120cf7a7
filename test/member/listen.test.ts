// Goal: a member whose listener cannot bind its address stops with a coded, one-line report that names the listener,
// the address and the flag that sets it, with the system's reason, and nothing else on stderr: grpc-js's own line
// ("E No address added out of total 1 resolved") named neither, and went to stderr beside the member's report.
//
// Method: a plain TCP server holds one of the member's ports on 127.0.1.210 (this file's address); `cairn server`
// is started on that address with a fresh data directory, once with the peer port held and once with the gRPC port
// held. It must exit 1 within the bound with the report. Last, a running member's access log line must name its
// component once (a child logger over buildApp's own wrote "component":"http" twice on every line).

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { boundedRequest } from '../support/http.ts';

const host = '127.0.1.210';
const bin = fileURLToPath(new URL('../../bin/cairn', import.meta.url));

async function hold(port: number): Promise<net.Server> {
  const server = net.createServer((socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, host, resolve));
  return server;
}

for (const [listener, port, flag] of [['peer', 7848, "--peer-port, else --addr's port - 1000"], ['gRPC', 9848, "--grpc-port, else --addr's port + 1000"]] as const) {
  test(`a held ${listener} port stops the member with a report naming the listener, ${flag} and EADDRINUSE`, async (t) => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'cairn-listen-'));
    t.after(() => rmSync(dataDir, { recursive: true, force: true }));
    const holder = await hold(port);
    t.after(() => new Promise<void>((resolve) => holder.close(() => resolve())));
    const run = spawnSync(bin, ['server', '--addr', `${host}:8848`, '--data-dir', dataDir, '--log-level', 'error'], { encoding: 'utf8', timeout: 30_000, killSignal: 'SIGKILL' });
    assert.equal(run.status, 1, `exit ${String(run.status)} ${String(run.signal)}; stderr: ${run.stderr}`);
    const lines = run.stderr.trim().split('\n');
    assert.equal(lines.length, 1, `one line on stderr: ${run.stderr}`);
    assert.match(lines[0] ?? '', new RegExp(`^cairn server: CAIRN_INVALID_ARGUMENT: .*the ${listener} listener cannot bind ${host}:${port} \\(another process holds that port; set by ${flag.replace(/[+]/g, '\\+')}\\).*EADDRINUSE`));
  });
}

test('an HTTP log line of a running member names its component once (strict JSON parsers refuse a repeated key)', async (t) => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'cairn-listen-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  const child = spawn(bin, ['server', '--addr', `${host}:18848`, '--data-dir', dataDir, '--log-level', 'info'], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString('utf8'); });
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString('utf8'); });
  const readyBy = Date.now() + 30_000;
  while (!output.includes('cairn ready') && Date.now() < readyBy && child.exitCode === null) await new Promise((resolve) => setTimeout(resolve, 50));
  assert.ok(output.includes('cairn ready'), `the member did not start: ${output.slice(-2000)}`);
  // A refused request is logged at info.
  const answer = await boundedRequest(`${host}:18848`, 'GET', '/nacos/v1/ns/instance/list', { timeoutMs: 5000 });
  assert.equal(answer.status, 400);
  const loggedBy = Date.now() + 5000;
  while (!output.includes('request answered') && Date.now() < loggedBy) await new Promise((resolve) => setTimeout(resolve, 50));
  const line = output.split('\n').find((text) => text.includes('request answered'));
  assert.ok(line !== undefined, `no access log line: ${output.slice(-2000)}`);
  assert.equal(line.match(/"component":/g)?.length, 1, line);
  child.kill('SIGTERM');
  await new Promise<void>((resolve) => (child.exitCode !== null ? resolve() : child.once('exit', () => resolve())));
});
