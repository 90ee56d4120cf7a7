// Goal: a `cairn` command never exits 0 without an answer. `cairn check` and `cairn status` against a member that
// accepts the TCP connection and closes it at once report it as unreachable (check: exit 3, status: exit 1) instead of
// exiting 0 with nothing printed (Node's bundled fetch never settled on such a connection, src/cli/http-get.ts); and
// a command whose promise never settles, or that throws, exits 70 with a line saying so (src/cli/main.ts
// runEntryPoint) instead of Node's default 0.
// Method: real `bin/cairn` processes against bare TCP listeners on this file's loopback address 127.0.1.109 (ports
// the kernel picks) that destroy every connection; runEntryPoint in a child node process with a command that never
// answers, and one that throws. Whether Node's fetch hung depended on a race (the close arriving while undici 6
// compiled its parser: every time on an idle machine, rarely on a loaded one); the expected message is undici 7's
// ("other side closed", or a reset when the close beats the read), so these tests also fail whenever the command goes
// back to Node's fetch ("fetch failed").

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { fileURLToPath } from 'node:url';
import { exitWithin, spawnCairn } from './spawned.ts';

/** escaped makes `text` match itself literally in a RegExp. */
function escaped(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

const host = '127.0.1.109';
const closers: Server[] = [];
const addresses: string[] = [];

function listen(server: Server): Promise<string> {
  return new Promise((resolve) => server.listen(0, host, () => {
    const address = server.address();
    assert.ok(address !== null && typeof address === 'object');
    resolve(`${host}:${address.port}`);
  }));
}

before(async () => {
  for (let i = 0; i < 2; i++) {
    const server = createServer((socket) => socket.destroy());
    closers.push(server);
    addresses.push(await listen(server));
  }
});

after(async () => {
  await Promise.all(closers.map((server) => new Promise((resolve) => server.close(resolve))));
});

test('cairn check: members that close every connection at once are unreachable (exit 3), never a silent 0', async () => {
  const check = spawnCairn(['check', '--members', addresses.join(','), '--wait', '0']);
  const exit = await exitWithin(check, 30_000);
  assert.deepEqual(exit, { code: 3, signal: null }, check.stderr());
  assert.match(check.stderr(), /^cairn check: no comparison within 0 s: /);
  for (const addr of addresses) {
    // undici 7 reports the close as "other side closed", or as a reset when the close beat its read (a loaded CI);
    // Node's fetch said "fetch failed".
    assert.match(check.stderr(), new RegExp(`${escaped(addr)}  cannot reach http://${escaped(addr)}/cairn/v1/state/digest: (other side closed|read ECONNRESET)`), check.stderr());
  }
  assert.equal(check.stdout(), '');
});

test('cairn status: a member that closes the connection at once is unreachable (exit 1), by --server and by --http', async () => {
  const [addr = ''] = addresses;
  const port = Number(addr.split(':')[1]);
  for (const args of [['--server', `${host}:${port + 1000}`], ['--http', addr]]) {
    const status = spawnCairn(['status', ...args]);
    const exit = await exitWithin(status, 30_000);
    assert.deepEqual(exit, { code: 1, signal: null }, `${args.join(' ')}: ${status.stderr()}`);
    assert.match(status.stderr(), new RegExp(`^cairn status: cannot reach http://${escaped(addr)}/cairn/v1/cluster: (other side closed|read ECONNRESET)\n$`), status.stderr());
  }
});

/** entryPoint runs runEntryPoint in a child node process with a command whose body is `command` (JavaScript). */
function entryPoint(command: string): { status: number | null; stderr: string } {
  const main = new URL('../../src/cli/main.ts', import.meta.url).href;
  const script = `import { runEntryPoint } from ${JSON.stringify(main)}; runEntryPoint(['check'], ${command});`;
  const root = fileURLToPath(new URL('../..', import.meta.url));
  const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '--eval', script], { cwd: root, encoding: 'utf8', timeout: 30_000 });
  return { status: child.status, stderr: child.stderr };
}

test('runEntryPoint: a command that never answers exits 70 with a line saying so; one that throws exits 70 with its error', () => {
  const never = entryPoint('() => new Promise(() => {})');
  assert.equal(never.status, 70, never.stderr);
  assert.equal(never.stderr, 'cairn check: the command ended without an answer (it was waiting for nothing): exit 70; this is a bug\n');

  const thrown = entryPoint("() => { throw new Error('boom'); }");
  assert.equal(thrown.status, 70, thrown.stderr);
  assert.match(thrown.stderr, /^cairn check: internal error: Error: boom\n/);

  const rejected = entryPoint("() => Promise.reject(new Error('late boom'))");
  assert.equal(rejected.status, 70, rejected.stderr);
  assert.match(rejected.stderr, /^cairn check: internal error: Error: late boom\n/);

  const answered = entryPoint('() => new Promise((resolve) => setTimeout(() => resolve(3), 50))');
  assert.deepEqual(answered, { status: 3, stderr: '' });
});
