// Goal: `cairn server` handles SIGTERM and SIGINT at every moment of its life, as docs/operations.md "Stopping" says:
// a signal while the member is still starting (here: an empty member waiting for a peer in the bootstrap check)
// abandons the start and exits 0 with a line saying it stopped before it was ready, never killed by the signal
// (exit 143, nothing said); a second signal while a ready member stops is logged and ignored, and the stop ends
// cleanly (exit 0), never cut short by the signal.
// Method: real `bin/cairn server` processes on this file's loopback address 127.0.1.112 (HTTP 18848), with temporary
// data directories; the absent peer is 127.0.1.111:18848, where nothing listens on this file's ports. To hold a stop
// open long enough for the second signal, a raw TCP client keeps an HTTP request half sent: the member's HTTP server
// waits for it before it closes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stopTimeoutMs } from '../../src/cli/stop.ts';
import { exitWithin, spawnCairn } from './spawned.ts';

const host = '127.0.1.112';
const port = 18848;
const addr = `${host}:${port}`;
const absentPeer = `127.0.1.111:${port}`;

function dataDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'cairn-cli-signals-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return path.join(dir, 'member');
}

test('a SIGTERM while the member waits for its peers abandons the start: exit 0, "stopped before it was ready", a second one ignored', async (t) => {
  const member = spawnCairn(['server', '--addr', addr, '--members', `${addr},${absentPeer}`, '--data-dir', dataDir(t), '--log-level', 'info']);
  await member.waitForOutput('stdout', /waiting for every member to answer before starting as a voter/, 30_000);
  const signalled = Date.now();
  member.signal('SIGTERM');
  await member.waitForOutput('stderr', /SIGTERM before the member was ready: abandoning the start/, 5_000);
  try {
    member.signal('SIGINT');
  } catch (error) {
    // The abandoned start may already have ended and the process exited.
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
  const exit = await exitWithin(member, stopTimeoutMs + 10_000);
  const stoppedMs = Date.now() - signalled;
  assert.deepEqual(exit, { code: 0, signal: null }, member.stderr());
  const lines = member.stderr().trimEnd().split('\n');
  assert.equal(lines[0], 'cairn server: SIGTERM before the member was ready: abandoning the start');
  // The second signal is ignored, if it arrived before the exit (the abandoned start ends within a Hello round).
  const ignored = `cairn server: SIGINT while stopping: ignored (the stop ends within ${stopTimeoutMs / 1000} s of the SIGTERM)`;
  assert.ok(lines.slice(1, -1).every((line) => line === ignored || /^cairn server: the abandoned start ended with: CAIRN_SHUTTING_DOWN/.test(line)), member.stderr());
  assert.match(lines.at(-1) ?? '', /^cairn server: stopped before it was ready$/);
  assert.ok(stoppedMs < stopTimeoutMs / 2, `the bootstrap check ended at the signal, not at the stop's bound: ${stoppedMs} ms`);
  assert.doesNotMatch(member.stdout(), /cairn ready/);
});

/**
 * halfSentRequest opens a connection to the member's HTTP port and sends a request whose body never completes. It
 * asks for `100 Continue` and waits for it, which proves the member has read the request (Node answers it when it
 * emits the request): sent without that wait, a stop could begin before the member had read the headers, find the
 * connection idle and close it at once (CI saw the stop end within 5 s that way).
 */
async function halfSentRequest(): Promise<Socket> {
  const socket = connect({ host, port });
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  socket.on('error', () => undefined);
  const continued = new Promise<void>((resolve) => {
    let received = '';
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
      if (received.includes('100 Continue')) resolve();
    });
  });
  socket.write(`POST /nacos/v1/ns/instance HTTP/1.1\r\nHost: ${addr}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n`);
  await Promise.race([continued, new Promise((_, reject) => setTimeout(() => reject(new Error('no 100 Continue within 5 s')), 5000))]);
  socket.write('serviceName=');
  return socket;
}

test('a second SIGTERM while a ready member stops is logged and ignored; the stop completes with exit 0', async (t) => {
  const member = spawnCairn(['server', '--addr', addr, '--data-dir', dataDir(t)]);
  await member.waitForOutput('stdout', new RegExp(`cairn ready ${addr.replaceAll('.', '\\.')}`), 60_000);
  const socket = await halfSentRequest();
  try {
    member.signal('SIGTERM');
    await member.waitForOutput('stderr', /cairn server: SIGTERM: stopping\n/, 5_000);
    member.signal('SIGTERM');
    await member.waitForOutput('stderr', /SIGTERM while stopping: ignored/, 5_000);
    assert.equal(member.child.exitCode, null, 'the member still stops, held open by the half-sent request');
  } finally {
    socket.destroy();
  }
  const exit = await exitWithin(member, stopTimeoutMs + 10_000);
  assert.deepEqual(exit, { code: 0, signal: null }, member.stderr());
  assert.equal(member.stderr(), `cairn server: SIGTERM: stopping\ncairn server: SIGTERM while stopping: ignored (the stop ends within ${stopTimeoutMs / 1000} s of the SIGTERM)\n`);
});
