// Goal: intern() (src/naming/intern.ts) never changes a string's text, whatever collides in its table, and keeps no
// string longer than its bound. Method: seeded random strings of 0-40 characters, many repeated and many colliding in
// the 4096 slots, each interned and compared with the original text; and the registry's decoders (commands.ts) give
// the same values with interning as the text they decoded.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { intern } from '../../src/naming/intern.ts';
import { Prng } from '../../src/raft/prng.ts';
import { decodeCommand, encodeCommand } from '../../src/cp/commands.ts';

test('intern returns a string with the same text, for repeated, colliding, empty, long and non-ASCII strings', () => {
  const prng = new Prng(21);
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789-._é😀';
  const pool: string[] = [];
  for (let i = 0; i < 50_000; i++) {
    const reuse = pool.length > 0 && prng.nextInt(3) === 0;
    // A fresh copy of an earlier text (not the same string object), or a new text.
    const text = reuse
      ? [...(pool[prng.nextInt(pool.length)] as string)].join('')
      : Array.from({ length: prng.nextInt(41) }, () => alphabet[prng.nextInt(alphabet.length)]).join('');
    if (!reuse && pool.length < 20_000) pool.push(text);
    assert.equal(intern(text), text);
  }
});

test('commands decode to the same values with interned names and metadata', () => {
  const key = { namespace: 'public', group: 'DEFAULT_GROUP', service: 'orders' };
  for (let i = 0; i < 300; i++) {
    const metadata = Object.freeze({ zone: `z${i % 3}`, owner: 'payments-team', sha: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4', [`k${i}`]: `v${i}` });
    const instance = { cluster: i % 2 === 0 ? 'DEFAULT' : 'edge', ip: `10.0.${i >> 8}.${i & 255}`, port: 8080, weight: 1, enabled: true, healthy: true, metadata };
    const decoded = decodeCommand(encodeCommand({ requestId: `r${i}`, command: { type: 'registerInstance', key, instance } }));
    assert.ok(decoded.ok);
    const command = decoded.envelope.command;
    assert.equal(command.type, 'registerInstance');
    if (command.type !== 'registerInstance') continue;
    assert.deepEqual(command.key, key);
    assert.deepEqual({ ...command.instance, metadata: { ...command.instance.metadata } }, { ...instance, metadata: { ...metadata } });
  }
});
