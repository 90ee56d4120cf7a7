// Goal: the peer port's Backup method and its client (`cairn backup save --from`) take nothing on trust: the client
// accepts only a stream that is a whole backup (header first, then exactly the image its header describes, within a
// backup's bounds) and says CAIRN_STORAGE_CORRUPT otherwise; a member's refusal reaches the operator with its code;
// the member streams one backup at a time (a second request meanwhile is RESOURCE_EXHAUSTED), in chunks, and a
// backup larger than one gRPC message arrives whole.
// Method: a real GrpcPeerTransport on 127.0.1.38 whose onBackup handler the test controls (held open, failing, or
// answering a multi-chunk image), and a raw grpc-js server on the same address that streams hand-made chunks.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Server, ServerCredentials, type ServerWritableStream } from '@grpc/grpc-js';
import { pino } from 'pino';

import { CairnError, isCairnError } from '../../src/errors.ts';
import { limits } from '../../src/limits.ts';
import { liveBackup, type Backup } from '../../src/replica/backup.ts';
import { fetchLiveBackup } from '../../src/replica/backup-fetch.ts';
import { BACKUP_PATH, GrpcPeerTransport } from '../../src/replica/grpc-transport.ts';
import { encodeBackupChunk } from '../../src/replica/peer-codec.ts';
import { crc32c } from '../../src/replica/codec.ts';
import type { PeerBackup } from '../../src/replica/transport.ts';

const host = '127.0.1.38';

function sampleBackup(imageBytes: number): Backup {
  const image = new Uint8Array(imageBytes);
  for (let i = 0; i < image.length; i++) image[i] = (i * 31 + 7) & 0xff;
  const live = liveBackup({ index: 42, term: 3, voters: [`${host}:18848`], sourceMember: `${host}:18848`, parts: [image], imageBytes, imageCrc32c: crc32c(image) }, new Date('2026-11-22T00:00:00Z'));
  return { header: live.header, image };
}

/** partsOf cuts an image into parts of uneven sizes (1 byte to 3 MB), as a state machine's pieces come. */
function partsOf(image: Uint8Array): Uint8Array[] {
  const parts: Uint8Array[] = [];
  const sizes = [1, 7, 65_536, 3_000_000, 100, 1_048_576, 1_048_575];
  for (let offset = 0, i = 0; offset < image.length; i++) {
    const size = Math.min(sizes[i % sizes.length] ?? 1, image.length - offset);
    parts.push(image.subarray(offset, offset + size));
    offset += size;
  }
  return parts;
}

async function startTransport(onBackup: (requester: string) => Promise<PeerBackup>): Promise<GrpcPeerTransport> {
  const transport = new GrpcPeerTransport({
    self: `${host}:18848`,
    listenHost: host,
    listenPort: 0,
    peerAddressOf: () => `${host}:1`,
    limits,
    logger: pino({ enabled: false }),
  });
  await transport.start({
    onMessage: () => undefined,
    onForward: () => Promise.resolve({ ok: false, code: 'CAIRN_NOT_LEADER', message: 'no', leaderHint: null }),
    onUnreachable: () => undefined,
    onBackup,
  });
  return transport;
}

/** rawServer serves Backup by writing `chunks` (already encoded) and ending, on a free port of `host`. */
async function rawServer(chunks: readonly Uint8Array[]): Promise<{ server: Server; peer: string }> {
  const server = new Server();
  server.addService({
    Backup: {
      path: BACKUP_PATH, requestStream: false, responseStream: true,
      requestSerialize: (value: Uint8Array) => Buffer.from(value), requestDeserialize: (bytes: Buffer) => bytes,
      responseSerialize: (value: Uint8Array) => Buffer.from(value), responseDeserialize: (bytes: Buffer) => bytes,
    },
  }, {
    Backup: (call: ServerWritableStream<Buffer, Uint8Array>) => {
      for (const chunk of chunks) call.write(chunk);
      call.end();
    },
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync(`${host}:0`, ServerCredentials.createInsecure(), (error, bound) => (error === null ? resolve(bound) : reject(error))));
  return { server, peer: `${host}:${port}` };
}

const headerChunk = (backup: Backup): Uint8Array => encodeBackupChunk({ header: new TextEncoder().encode(JSON.stringify(backup.header)), data: new Uint8Array(0) });
const dataChunk = (data: Uint8Array): Uint8Array => encodeBackupChunk({ header: new Uint8Array(0), data });

describe('Backup over the peer port', () => {
  test('a backup of several chunks arrives whole; one at a time; a refusal keeps its code', async (t) => {
    const large = sampleBackup(2 * 1024 * 1024 + 12_345);
    let release: () => void = () => undefined;
    let mode: 'serve' | 'hold' | 'fail' = 'serve';
    const transport = await startTransport(async () => {
      if (mode === 'fail') throw new CairnError('CAIRN_NO_QUORUM', 'no majority confirmed the leader in time');
      if (mode === 'hold') await new Promise<void>((resolve) => (release = resolve));
      return { header: large.header, parts: partsOf(large.image) };
    });
    t.after(() => transport.close());
    const peer = `${host}:${transport.port}`;

    const fetched = await fetchLiveBackup(peer, { requester: 'test' });
    assert.deepEqual(fetched.header, large.header);
    assert.deepEqual(Buffer.from(fetched.image), Buffer.from(large.image));

    mode = 'hold';
    const first = fetchLiveBackup(peer, { requester: 'first' });
    // The first request is being served (its handler holds); a second one meanwhile is refused at once.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const second = await fetchLiveBackup(peer, { requester: 'second' }).then(() => null, (error: unknown) => error);
    assert.ok(second instanceof Error, String(second));
    assert.match(second.message, /a backup is already being taken/);
    release();
    assert.equal((await first).header.index, 42);
    // Done: the next one is served again.
    mode = 'serve';
    assert.equal((await fetchLiveBackup(peer, { requester: 'third' })).header.imageBytes, large.image.length);

    mode = 'fail';
    const refused = await fetchLiveBackup(peer, { requester: 'fourth' }).then(() => null, (error: unknown) => error);
    assert.ok(isCairnError(refused), String(refused));
    assert.equal(refused.code, 'CAIRN_NO_QUORUM');
  });

  test('a stream that is not a whole backup is refused as CAIRN_STORAGE_CORRUPT', async (t) => {
    const backup = sampleBackup(5000);
    const image = backup.image;
    const flipped = Uint8Array.from(image);
    flipped[100] = (flipped[100] ?? 0) ^ 1;
    const badHeader = encodeBackupChunk({ header: new TextEncoder().encode(JSON.stringify({ ...backup.header, format: 99 })), data: new Uint8Array(0) });
    const cases: Array<[string, Uint8Array[], RegExp]> = [
      ['no header first', [dataChunk(image)], /does not start with its header/],
      ['nothing at all', [], /ended before its header/],
      ['a second header', [headerChunk(backup), headerChunk(backup)], /a second header/],
      ['bytes that are not a chunk', [headerChunk(backup), new Uint8Array([0xff, 0xff, 0xff])], /does not decode/],
      ['the image cut short', [headerChunk(backup), dataChunk(image.subarray(0, 4000))], /the image is 4000 bytes, the header says 5000/],
      ['a bit flipped in the image', [headerChunk(backup), dataChunk(flipped)], /the image fails its CRC-32C/],
      ['an unsupported header', [badHeader, dataChunk(image)], /format 99/],
    ];
    for (const [name, chunks, why] of cases) {
      const { server, peer } = await rawServer(chunks);
      t.after(() => server.forceShutdown());
      const error = await fetchLiveBackup(peer, { requester: 'test' }).then(() => null, (failure: unknown) => failure);
      assert.ok(isCairnError(error), `${name}: ${String(error)}`);
      assert.ok(error.code === 'CAIRN_STORAGE_CORRUPT' || error.code === 'CAIRN_INVALID_ARGUMENT', `${name}: ${error.code}`);
      assert.match(error.message, why, name);
    }
    // The same server with the right chunks: accepted (the cases above fail for their fault, not the harness).
    const { server, peer } = await rawServer([headerChunk(backup), dataChunk(image.subarray(0, 2000)), dataChunk(image.subarray(2000))]);
    t.after(() => server.forceShutdown());
    assert.deepEqual(Buffer.from((await fetchLiveBackup(peer, { requester: 'test' })).image), Buffer.from(image));
  });
});
