// Goal: the contacts a member records for its wiped-member check (src/replica/bootstrap.ts) stay bounded and keep
// answering right when made-up senders flood its peer port. The peer port is not authenticated (DESIGN.md), and
// every new sender id used to cost an fsynced record that was never removed; the check then listed only the first
// 10 000 contacts in key order, so ids sorting before a real member's could make the member answer Hello "never
// heard from you" about a member it had heard from, and let that member back in as a fresh voter after its data was
// wiped. Now at most limits.peerContactsMax senders are recorded, the rest of their messages are dropped and counted
// (cairn_raft_peer_contacts_refused_total), and Hello looks the asker up directly.
//
// Method: one standalone member process (test/support/cluster.ts) on 127.0.1.107; the test connects to its peer port
// from 127.0.1.108 with a grpc-js client that sends encoded frames as they are. First a well-formed message from a
// "real" sender whose id sorts after every made-up one, then messages from peerContactsMax + 150 made-up senders
// (ids that sort first) in waves no larger than the senders the member records at once; Hello is asked about every
// id afterwards, and again after a restart of the member on its data directory.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { limits } from '../../src/limits.ts';
import { decodeHelloResponse, encodeHelloRequest, encodeRaftBatch, encodeRaftMessage } from '../../src/replica/peer-codec.ts';
import { bindPeerSource } from '../../src/replica/source-address.ts';
import type { Message } from '../../src/raft/types.ts';
import { startCluster, waitFor } from '../support/cluster.ts';
import { metricValue } from '../support/ephemeral.ts';

const host = '127.0.1.107';
const sourceHost = '127.0.1.108';
const self = `${host}:8848`;
const peerAddr = `${host}:7848`;
const realSender = `${sourceHost}:8848`;
const identity = (bytes: Buffer): Buffer => bytes;
const fromBytes = (bytes: Uint8Array): Buffer => Buffer.from(bytes);

/** junkId is the n-th made-up sender: '0-…' sorts before every address, as the flood that hid real contacts did. */
const junkId = (n: number): string => `0-junk-${String(n).padStart(5, '0')}`;

/** heartbeatAnswer is a well-formed message the member's core ignores (a response at term 0). */
function heartbeatAnswer(from: string): Message {
  return { type: 'HeartbeatResponse', from, to: self, term: 0, readRound: 0 };
}

/** send writes one frame per sender on one Stream call, claiming no sender (as an old or forged caller may). */
function send(client: grpc.Client, senders: readonly string[]): Promise<grpc.status> {
  return new Promise((resolve) => {
    const metadata = new grpc.Metadata();
    const call = client.makeClientStreamRequest<Uint8Array, Buffer>('/cairn.peer.v1.Peer/Stream', fromBytes, identity, metadata, { deadline: new Date(Date.now() + 8000) }, (error) => resolve(error === null ? grpc.status.OK : error.code));
    call.on('error', () => undefined);
    for (const from of senders) call.write(encodeRaftBatch([encodeRaftMessage(heartbeatAnswer(from))]));
    call.end();
  });
}

function heardFrom(client: grpc.Client, asker: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest<Uint8Array, Buffer>('/cairn.peer.v1.Peer/Hello', fromBytes, identity, encodeHelloRequest(asker), new grpc.Metadata(), { deadline: new Date(Date.now() + 8000) }, (error, value) => {
      if (error !== null || value === undefined) return reject(error ?? new Error('Hello: no answer'));
      const hello = decodeHelloResponse(value);
      if (hello === null) return reject(new Error('Hello: invalid answer'));
      resolve(hello.heardFromYou);
    });
  });
}

test('a flood of made-up peer senders is bounded and cannot hide a real contact from the wiped-member check', { timeout: 180_000 }, async (t) => {
  const cluster = await startCluster(t, { file: 'peer-contacts', hosts: [host], size: 1, httpPort: 8848, logLevel: 'warn' });
  const member = cluster.members[0];
  assert.ok(member !== undefined);
  bindPeerSource(peerAddr, sourceHost);
  const client = new grpc.Client(peerAddr, grpc.credentials.createInsecure());
  t.after(() => client.close());
  const contactsMax = limits.peerContactsMax;
  const flood = contactsMax + 150;

  await cluster.step(t, 'a real sender is recorded first', async () => {
    assert.equal(await heardFrom(client, realSender), false, 'nobody has written yet');
    assert.equal(await send(client, [realSender]), grpc.status.OK);
    await waitFor(() => heardFrom(client, realSender), { timeoutMs: 10_000, what: 'the real sender to be recorded' });
  });

  await cluster.step(t, `${flood} made-up senders: at most peerContactsMax recorded, the rest dropped and counted`, async () => {
    const wave = limits.peerContactSendersPendingMax;
    const refusedFull = async (): Promise<number> => (await metricValue(member, 'cairn_raft_peer_contacts_refused_total', '{reason="full"}')) ?? 0;
    for (let start = 0; start < flood; start += wave) {
      const senders = Array.from({ length: Math.min(wave, flood - start) }, (_, i) => junkId(start + i));
      const fullBefore = await refusedFull();
      assert.equal(await send(client, senders), grpc.status.OK);
      // The next wave goes once each of these was recorded or refused (one message each), so that the senders being
      // recorded at once stay within peerContactSendersPendingMax and no 'busy' refusal decides the count.
      await waitFor(async () => {
        const known = (await Promise.all(senders.map((sender) => heardFrom(client, sender)))).filter(Boolean).length;
        return known + (await refusedFull()) - fullBefore >= senders.length;
      }, { timeoutMs: 20_000, intervalMs: 20, what: `the wave at ${start} to be recorded or refused` });
    }
    assert.equal((await metricValue(member, 'cairn_raft_peer_contacts_refused_total', '{reason="busy"}')) ?? 0, 0, 'no wave exceeded the pending bound');
    const known = (await Promise.all(Array.from({ length: flood }, (_, n) => heardFrom(client, junkId(n))))).filter(Boolean).length;
    assert.equal(known, contactsMax - 1, 'the real sender and peerContactsMax - 1 made-up ones are recorded, no more');
    const full = (await metricValue(member, 'cairn_raft_peer_contacts_refused_total', '{reason="full"}')) ?? 0;
    assert.ok(full >= flood - (contactsMax - 1), `refused (full) ${full}, expected at least ${flood - (contactsMax - 1)}`);
    assert.equal(await heardFrom(client, realSender), true, 'the real sender is still known, whatever sorts before it');
    assert.equal(await heardFrom(client, junkId(flood - 1)), false, 'a sender beyond the bound is not recorded');
  });

  await cluster.step(t, 'after a restart the bound and the real contact hold', async () => {
    await member.terminate();
    await member.restart();
    await waitFor(() => heardFrom(client, realSender), { timeoutMs: 20_000, what: 'the restarted member to answer Hello' });
    assert.equal(await send(client, [junkId(flood)]), grpc.status.OK);
    await waitFor(async () => ((await metricValue(member, 'cairn_raft_peer_contacts_refused_total', '{reason="full"}')) ?? 0) >= 1, { timeoutMs: 10_000, what: 'the new sender to be refused after the restart' });
    assert.equal(await heardFrom(client, junkId(flood)), false);
    const status = await member.status();
    assert.equal(status.members.find((m) => m.addr === self)?.role, 'leader', 'the member still leads its group of one');
  });
});
