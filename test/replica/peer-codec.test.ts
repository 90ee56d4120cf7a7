// Goal: show that the peer codec (src/replica/peer-codec.ts) carries every Raft message and every forwarded write
// between members without losing or bending a field, and that it refuses (with a PeerDecodeError, never a throw)
// everything a broken or hostile peer could send: wrong types, negative or unsafe numbers, unknown enum values,
// empty or overlong member ids, malformed or oversized entries, out-of-bounds snapshot chunks, damaged framing.
//
// Method: a table with one or more messages of every type of the Message union (the table's type makes the
// compiler insist on every type), every field set to a distinct value and the booleans both ways, including
// entries of all three kinds and a snapshot chunk, is round-tripped through bytes, alone and in one batch.
// Malformed inputs are crafted directly with protobufjs (the same .proto types, so only the values are wrong) and
// through raftMessageFromObject for wrong JavaScript types; each case names the field the error must point at.
// Finally a seeded fuzz loop flips bytes of valid encodings and checks that decoding returns instead of throwing.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { limits } from '../../src/limits.ts';
import type { Entry, Message, MessageType } from '../../src/raft/types.ts';
import {
  decodeForwardBatchRequest,
  decodeForwardBatchResponse,
  decodeForwardRequest,
  decodeForwardResponse,
  encodeForwardBatchRequest,
  encodeForwardBatchResponse,
  decodeRaftBatch,
  decodeRaftMessage,
  encodeForwardRequest,
  encodeForwardResponse,
  encodeRaftBatch,
  encodeRaftMessage,
  entryToObject,
  forwardMessageCharsMax,
  nodeIdCharsMax,
  raftBatchFramedBytes,
  termMax,
  raftMessageFromObject,
  raftMessageToObject,
  PeerDecodeError,
  type PeerCodecLimits,
} from '../../src/replica/peer-codec.ts';
import { lookupMessage } from '../../src/replica/proto.ts';

const RaftMessage = lookupMessage('cairn.peer.v1.RaftMessage');
const ForwardRequestType = lookupMessage('cairn.peer.v1.ForwardRequest');
const ForwardResponseType = lookupMessage('cairn.peer.v1.ForwardResponse');

/** small are limits tight enough that oversized inputs stay cheap to build. */
const small: PeerCodecLimits = { messageBytesMax: 1024, entryBytesMax: 256, snapshotChunkBytes: 128, peerMessageBytesMax: 4096 };

const MAX = Number.MAX_SAFE_INTEGER;
const bytes = (...values: number[]): Uint8Array => new Uint8Array(values);

const entries: readonly Entry[] = [
  { kind: 'normal', index: 11, term: 3, data: bytes(1, 2, 3, 250) },
  { kind: 'noop', index: 12, term: 4 },
  { kind: 'membership', index: 13, term: 4, change: { type: 'add-learner', node: 'd:8848' }, membership: { voters: ['a:8848'], learners: ['d:8848'] } },
  { kind: 'membership', index: 14, term: 4, change: { type: 'promote', node: 'd:8848' }, membership: { voters: ['a:8848', 'd:8848'], learners: [] } },
  { kind: 'membership', index: 15, term: 5, change: { type: 'remove', node: 'a:8848' }, membership: { voters: ['d:8848'], learners: [] } },
];

/** table holds messages of every type; its mapped type fails to compile if a type of the union is missing. */
const table: { readonly [T in MessageType]: readonly Extract<Message, { type: T }>[] } = {
  PreVoteRequest: [{ type: 'PreVoteRequest', from: 'a:8848', to: 'b:8848', term: 7, lastLogIndex: 42, lastLogTerm: 6 }],
  PreVoteResponse: [
    { type: 'PreVoteResponse', from: 'b:8848', to: 'a:8848', term: 7, granted: true },
    { type: 'PreVoteResponse', from: 'b:8848', to: 'a:8848', term: 0, granted: false },
  ],
  VoteRequest: [
    { type: 'VoteRequest', from: 'a:8848', to: 'c:8848', term: termMax, lastLogIndex: MAX - 1, lastLogTerm: MAX - 2, transfer: true },
    { type: 'VoteRequest', from: 'a:8848', to: 'c:8848', term: 1, lastLogIndex: 0, lastLogTerm: 0, transfer: false },
  ],
  VoteResponse: [
    { type: 'VoteResponse', from: 'c:8848', to: 'a:8848', term: 8, granted: true },
    { type: 'VoteResponse', from: 'c:8848', to: 'a:8848', term: 8, granted: false },
  ],
  AppendRequest: [
    { type: 'AppendRequest', from: 'a:8848', to: 'b:8848', term: 5, prevLogIndex: 10, prevLogTerm: 3, entries, commit: 9 },
    { type: 'AppendRequest', from: 'a:8848', to: 'b:8848', term: 5, prevLogIndex: 0, prevLogTerm: 0, entries: [], commit: 0 },
    { type: 'AppendRequest', from: 'a:8848', to: 'b:8848', term: 5, prevLogIndex: 12, prevLogTerm: 5, entries: [], commit: 12, noReply: true },
  ],
  AppendResponse: [
    { type: 'AppendResponse', from: 'b:8848', to: 'a:8848', term: 5, success: true, matchIndex: 15, conflictIndex: 0, conflictTerm: 0, rejectedIndex: 0 },
    { type: 'AppendResponse', from: 'b:8848', to: 'a:8848', term: 5, success: false, matchIndex: 3, conflictIndex: 4, conflictTerm: 2, rejectedIndex: 10 },
  ],
  HeartbeatRequest: [{ type: 'HeartbeatRequest', from: 'a:8848', to: 'b:8848', term: 5, commit: 15, readRound: 99 }],
  HeartbeatResponse: [
    { type: 'HeartbeatResponse', from: 'b:8848', to: 'a:8848', term: 5, readRound: 99 },
    { type: 'HeartbeatResponse', from: 'b:8848', to: 'a:8848', term: 5, readRound: 99, missingFrom: 4 },
  ],
  SnapshotRequest: [
    {
      type: 'SnapshotRequest', from: 'a:8848', to: 'b:8848', term: 6,
      meta: { index: 100, term: 5, membership: { voters: ['a:8848', 'b:8848', 'c:8848'], learners: ['d:8848'] } },
      offset: 128, totalBytes: 300, data: new Uint8Array(128).fill(7), done: false,
    },
    {
      type: 'SnapshotRequest', from: 'a:8848', to: 'b:8848', term: 6,
      meta: { index: 100, term: 5, membership: { voters: ['a:8848'], learners: [] } },
      offset: 256, totalBytes: 300, data: new Uint8Array(44).fill(9), done: true,
    },
    {
      type: 'SnapshotRequest', from: 'a:8848', to: 'b:8848', term: 6,
      meta: { index: 1, term: 1, membership: { voters: ['a:8848'], learners: [] } },
      offset: 0, totalBytes: 0, data: new Uint8Array(0), done: true,
    },
  ],
  SnapshotResponse: [
    { type: 'SnapshotResponse', from: 'b:8848', to: 'a:8848', term: 6, index: 100, nextOffset: 256, installed: false },
    { type: 'SnapshotResponse', from: 'b:8848', to: 'a:8848', term: 6, index: 100, nextOffset: 300, installed: true },
  ],
  TimeoutNow: [{ type: 'TimeoutNow', from: 'a:8848', to: 'c:8848', term: 9 }],
  ReadIndexRequest: [
    { type: 'ReadIndexRequest', from: 'b:8848', to: 'a:8848', term: 9, context: 'b:8848/17' },
    { type: 'ReadIndexRequest', from: 'b:8848', to: 'a:8848', term: 9, context: '' },
  ],
  ReadIndexResponse: [
    { type: 'ReadIndexResponse', from: 'a:8848', to: 'b:8848', term: 9, context: 'b:8848/17', index: 120, rejected: false },
    { type: 'ReadIndexResponse', from: 'a:8848', to: 'b:8848', term: 9, context: 'b:8848/18', index: 0, rejected: true },
  ],
};

const allMessages: readonly Message[] = Object.values(table).flat();

function decodeOk(encoded: Uint8Array, codecLimits: PeerCodecLimits = small): Message {
  const decoded = decodeRaftMessage(encoded, codecLimits);
  if (!decoded.ok) assert.fail(`expected a valid message, got ${decoded.error.message}`);
  return decoded.value;
}

/** assertRefused decodes protobufjs-encoded `object` and expects an error pointing at `field`. */
function assertRefused(object: Record<string, unknown>, field: string, codecLimits: PeerCodecLimits = small): void {
  const decoded = decodeRaftMessage(RaftMessage.encode(object).finish(), codecLimits);
  assert.equal(decoded.ok, false, `expected a refusal at ${field}`);
  if (decoded.ok) return;
  assert.ok(decoded.error instanceof PeerDecodeError);
  assert.equal(decoded.error.field, field, decoded.error.message);
}

describe('peer codec: round trips', () => {
  for (const [i, message] of allMessages.entries()) {
    test(`${message.type} (row ${i}) survives encode and decode`, () => {
      assert.deepStrictEqual(decodeOk(encodeRaftMessage(message), limits), message);
    });
  }

  test('every message of the table survives one batch, in order', () => {
    const batch = encodeRaftBatch(allMessages.map(encodeRaftMessage));
    const decoded = decodeRaftBatch(batch, limits);
    assert.deepEqual(decoded.errors, []);
    assert.deepStrictEqual(decoded.messages, allMessages);
  });

  test('raftBatchFramedBytes is the exact size of a message inside a batch', () => {
    for (const size of [0, 1, 127, 128, 16_383, 16_384, 70_000]) {
      const framed = encodeRaftBatch([new Uint8Array(size)]);
      assert.equal(raftBatchFramedBytes(size), framed.length, `size ${size}`);
    }
  });

  test('decoded bytes are fresh copies, not views into the received buffer', () => {
    const message = table.AppendRequest[0];
    assert.ok(message !== undefined);
    const encoded = encodeRaftMessage(message);
    const decoded = decodeOk(encoded, limits);
    assert.equal(decoded.type, 'AppendRequest');
    if (decoded.type !== 'AppendRequest') return;
    const entry = decoded.entries[0];
    assert.ok(entry !== undefined && entry.kind === 'normal');
    assert.equal(Object.getPrototypeOf(entry.data), Uint8Array.prototype);
    assert.notEqual(entry.data.buffer, encoded.buffer);
  });

  test('raftMessageToObject and raftMessageFromObject are inverses, and encodeRaftMessage writes the same bytes', () => {
    for (const message of allMessages) {
      const generic = RaftMessage.encode(raftMessageToObject(message)).finish();
      assert.deepStrictEqual(new Uint8Array(encodeRaftMessage(message)), new Uint8Array(generic), message.type);
      const decoded = raftMessageFromObject(RaftMessage.decode(generic), limits);
      assert.ok(decoded.ok);
      assert.deepStrictEqual(decoded.value, message);
    }
  });

  test('a full AppendRequest of limits.messageBytesMax entry bytes is accepted, and so is one large entry', () => {
    const dataBytes = 1024 - 16;
    const count = limits.messageBytesMax / 1024;
    const full: Message = {
      type: 'AppendRequest', from: 'a', to: 'b', term: 2, prevLogIndex: 0, prevLogTerm: 0, commit: 0,
      entries: Array.from({ length: count }, (_, i) => ({ kind: 'normal', index: i + 1, term: 2, data: new Uint8Array(dataBytes) }) as const),
    };
    assert.equal(decodeOk(encodeRaftMessage(full), limits).type, 'AppendRequest');
    const single: Message = {
      type: 'AppendRequest', from: 'a', to: 'b', term: 2, prevLogIndex: 0, prevLogTerm: 0, commit: 0,
      entries: [{ kind: 'normal', index: 1, term: 2, data: new Uint8Array(limits.entryBytesMax) }],
    };
    assert.equal(decodeOk(encodeRaftMessage(single), limits).type, 'AppendRequest');
  });

  test('forward requests and responses survive encode and decode', () => {
    const request = { command: bytes(5, 6, 7), deadlineMs: 4500 };
    assert.deepStrictEqual(decodeForwardRequest(encodeForwardRequest(request), limits), { ok: true, value: request });
    const responses = [
      { ok: true, result: bytes(1, 2), index: 77 },
      { ok: true, result: new Uint8Array(0), index: 0 },
      { ok: false, code: 'CAIRN_NOT_LEADER', message: 'b is not the leader', leaderHint: 'c:8848' },
      { ok: false, code: 'CAIRN_OUTCOME_UNKNOWN', message: '', leaderHint: null },
    ] as const;
    for (const response of responses) {
      assert.deepStrictEqual(decodeForwardResponse(encodeForwardResponse(response), limits), { ok: true, value: response });
    }
  });

  test('forward batches survive encode and decode; a bad request is refused in its place, bad framing as a whole', () => {
    const requests = [{ command: bytes(1), deadlineMs: 100 }, { command: bytes(2, 3), deadlineMs: 5000 }];
    assert.deepStrictEqual(decodeForwardBatchRequest(encodeForwardBatchRequest(requests), limits), { ok: true, value: requests.map((value) => ({ ok: true, value })) });
    const mixed = decodeForwardBatchRequest(encodeForwardBatchRequest([requests[0]!, { command: new Uint8Array(0), deadlineMs: 100 }, { command: bytes(4), deadlineMs: 0 }]), limits);
    assert.ok(mixed.ok);
    assert.deepStrictEqual(mixed.value.map((item) => (item.ok ? 'ok' : item.error.field)), ['ok', 'command', 'deadlineMs']);
    const refusedAs = (encoded: Uint8Array): string => {
      const decoded = decodeForwardBatchRequest(encoded, { ...limits, forwardBatchRequestsMax: 3 });
      return decoded.ok ? 'ok' : decoded.error.field;
    };
    assert.equal(refusedAs(new Uint8Array(0)), 'requests', 'empty');
    assert.equal(refusedAs(encodeForwardBatchRequest(Array.from({ length: 4 }, () => requests[0]!))), 'requests', 'more than forwardBatchRequestsMax');
    assert.equal(refusedAs(encodeForwardBatchRequest(Array.from({ length: 3 }, () => requests[0]!))), 'ok', 'exactly forwardBatchRequestsMax');
    assert.equal(refusedAs(Uint8Array.from([0x0a, 0x05, 0x01])), 'bytes', 'a length past the end');
    // An unknown field beside the requests is skipped, as protobuf does.
    assert.equal(refusedAs(Uint8Array.from([0x10, 0x01, ...encodeForwardBatchRequest([requests[0]!])])), 'ok');

    const responses = [
      { ok: true, result: bytes(9), index: 3 },
      { ok: false, code: 'CAIRN_NOT_LEADER', message: 'no', leaderHint: null },
    ] as const;
    const encoded = encodeForwardBatchResponse(responses, limits.peerMessageBytesMax);
    assert.equal(encoded.replaced, 0);
    assert.deepStrictEqual(decodeForwardBatchResponse(encoded.bytes, limits, 2), { ok: true, value: responses.map((value) => ({ ok: true, value })) });
    const counted = (expected: number): string => {
      const decoded = decodeForwardBatchResponse(encoded.bytes, limits, expected);
      return decoded.ok ? 'ok' : decoded.error.field;
    };
    assert.equal(counted(3), 'responses', 'fewer responses than requests');
    assert.equal(counted(1), 'responses', 'more responses than requests');
    const badItem = decodeForwardBatchResponse(Uint8Array.from([...encoded.bytes, 0x0a, 0x00]), limits, 3);
    assert.ok(badItem.ok && badItem.value[2]?.ok === false, 'a response with no outcome is refused in its place');
  });

  test('a batch answer that would pass its bound answers its last results CAIRN_OUTCOME_UNKNOWN until the rest fit', () => {
    const big = (i: number) => ({ ok: true, result: new Uint8Array(1000).fill(i), index: i }) as const;
    const responses = [big(1), big(2), big(3), { ok: false, code: 'CAIRN_NOT_LEADER', message: 'short', leaderHint: null } as const];
    const { bytes: encoded, replaced } = encodeForwardBatchResponse(responses, 1500);
    assert.equal(replaced, 2, 'two of the three results of 1000 bytes go; the short refusal at the end stays');
    assert.ok(encoded.length <= 1500, `${encoded.length} bytes`);
    const decoded = decodeForwardBatchResponse(encoded, limits, 4);
    assert.ok(decoded.ok);
    const codes = decoded.value.map((item) => (item.ok ? (item.value.ok ? 'ok' : item.value.code) : 'invalid'));
    assert.deepStrictEqual(codes, ['ok', 'CAIRN_OUTCOME_UNKNOWN', 'CAIRN_OUTCOME_UNKNOWN', 'CAIRN_NOT_LEADER']);
  });

  test('a forwarded error message longer than forwardMessageCharsMax is cut, not refused', () => {
    const long = { ok: false, code: 'CAIRN_INTERNAL', message: 'x'.repeat(forwardMessageCharsMax + 10), leaderHint: null } as const;
    const decoded = decodeForwardResponse(encodeForwardResponse(long), limits);
    assert.ok(decoded.ok && !decoded.value.ok);
    if (decoded.ok && !decoded.value.ok) assert.equal(decoded.value.message.length, forwardMessageCharsMax);
  });
});

/** base is a valid RaftMessage object (protobufjs shape) that each refusal case spoils in one place. */
const base = { from: 'a', to: 'b', term: 5, type: 7, heartbeatRequest: { commit: 1, readRound: 2 } };
const append = (list: unknown[], extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  from: 'a', to: 'b', term: 5, type: 5, appendRequest: { prevLogIndex: 10, prevLogTerm: 3, commit: 0, entries: list, ...extra },
});
const normal = (index: number, term: number, data: Uint8Array = bytes(1)): Record<string, unknown> => ({ index, term, kind: 1, data });
const snapshot = (body: Record<string, unknown>, membership: Record<string, unknown> = { voters: ['a'], learners: [] }): Record<string, unknown> => ({
  from: 'a', to: 'b', term: 5, type: 9,
  snapshotRequest: { meta: { index: 9, term: 4, membership }, offset: 0, totalBytes: 10, data: new Uint8Array(10), done: true, ...body },
});
// protobufjs writes a uint64 from any { low, high } pair (its Long shape): 2^53, and 2^64 - 1, which is what -1
// becomes on the wire.
const unsafe = { low: 0, high: 0x20_0000, unsigned: true };
const allOnes = { low: -1, high: -1, unsigned: true };

describe('peer codec: refusals', () => {
  const cases: readonly (readonly [string, Record<string, unknown>, string])[] = [
    ['unknown message type', { ...base, type: 99 }, 'type'],
    ['unspecified message type', { ...base, type: 0 }, 'type'],
    ['type and body disagree', { ...base, type: 8 }, 'heartbeatRequest'],
    ['missing body', { from: 'a', to: 'b', term: 5, type: 7 }, 'heartbeatRequest'],
    ['two bodies', { ...base, timeoutNow: {} }, 'timeoutNow'],
    ['empty from', { ...base, from: '' }, 'from'],
    ['missing to', { ...base, to: undefined }, 'to'],
    ['overlong to', { ...base, to: 'x'.repeat(nodeIdCharsMax + 1) }, 'to'],
    ['term of 2^53', { ...base, term: unsafe }, 'term'],
    // A safe term so large that adopting it leaves no room to campaign: the member would crash at every start.
    ['term beyond termMax', { ...base, term: termMax + 1 }, 'term'],
    ['term of 2^53 - 1', { ...base, term: MAX }, 'term'],
    ['negative term (as uint64)', { ...base, term: allOnes }, 'term'],
    ['negative readRound (as uint64)', { ...base, heartbeatRequest: { commit: 1, readRound: -1 } }, 'heartbeatRequest.readRound'],
    ['unsafe commit', { ...base, heartbeatRequest: { commit: unsafe, readRound: 1 } }, 'heartbeatRequest.commit'],
    ['overlong read context', { from: 'a', to: 'b', term: 1, type: 12, readIndexRequest: { context: 'c'.repeat(1000) } }, 'readIndexRequest.context'],
    ['entries not contiguous', append([normal(11, 3), normal(13, 3)]), 'appendRequest.entries[1].index'],
    ['entries not starting after prevLogIndex', append([normal(12, 3)]), 'appendRequest.entries[0].index'],
    ['entry term going back', append([normal(11, 4), normal(12, 3)]), 'appendRequest.entries[1].term'],
    ['entry term before prevLogTerm', append([normal(11, 2)]), 'appendRequest.entries[0].term'],
    ['entry term beyond the message term', append([normal(11, 6)]), 'appendRequest.entries[0].term'],
    ['prevLogTerm beyond the message term', append([], { prevLogTerm: 6 }), 'appendRequest.prevLogTerm'],
    ['noReply on an append carrying entries', append([normal(11, 3)], { noReply: true }), 'appendRequest.noReply'],
    ['entry term 0', append([normal(1, 0)], { prevLogIndex: 0, prevLogTerm: 0 }), 'appendRequest.entries[0].term'],
    ['entry index 0', append([normal(0, 1)], { prevLogIndex: 0, prevLogTerm: 0 }), 'appendRequest.entries[0].index'],
    ['unknown entry kind', append([{ index: 11, term: 3, kind: 7 }]), 'appendRequest.entries[0].kind'],
    ['unspecified entry kind', append([{ index: 11, term: 3, kind: 0 }]), 'appendRequest.entries[0].kind'],
    ['normal entry without data', append([{ index: 11, term: 3, kind: 1 }]), 'appendRequest.entries[0].data'],
    ['normal entry with a change', append([{ ...normal(11, 3), change: { type: 1, node: 'd' } }]), 'appendRequest.entries[0].change'],
    ['noop entry with data', append([{ index: 11, term: 3, kind: 2, data: bytes(1) }]), 'appendRequest.entries[0]'],
    ['membership entry without change', append([{ index: 11, term: 3, kind: 3 }]), 'appendRequest.entries[0].change'],
    ['unknown membership change', append([{ index: 11, term: 3, kind: 3, change: { type: 9, node: 'd' } }]), 'appendRequest.entries[0].change.type'],
    ['membership change of nobody', append([{ index: 11, term: 3, kind: 3, change: { type: 1, node: '' } }]), 'appendRequest.entries[0].change.node'],
    ['membership entry without its configuration', append([{ index: 11, term: 3, kind: 3, change: { type: 1, node: 'd' } }]), 'appendRequest.entries[0].membership'],
    ['entry larger than entryBytesMax', append([normal(11, 3, new Uint8Array(small.entryBytesMax + 1))]), 'appendRequest.entries[0].data'],
    [
      'entries beyond messageBytesMax',
      append(Array.from({ length: 5 }, (_, i) => normal(11 + i, 3, new Uint8Array(small.entryBytesMax)))),
      'appendRequest.entries',
    ],
    ['snapshot chunk larger than snapshotChunkBytes', snapshot({ data: new Uint8Array(small.snapshotChunkBytes + 1), totalBytes: 200 }), 'snapshotRequest.data'],
    ['snapshot chunk beyond totalBytes', snapshot({ offset: 5 }), 'snapshotRequest.data'],
    ['snapshot done before the end', snapshot({ totalBytes: 20 }), 'snapshotRequest.done'],
    ['snapshot not done at the end', snapshot({ done: false }), 'snapshotRequest.done'],
    ['snapshot without meta', { ...snapshot({}), snapshotRequest: { offset: 0, totalBytes: 0, done: true } }, 'snapshotRequest.meta'],
    ['snapshot meta beyond the message term', snapshot({ meta: { index: 9, term: 6, membership: { voters: ['a'] } } }), 'snapshotRequest.meta.term'],
    ['snapshot membership without voters', snapshot({}, { learners: ['b'] }), 'snapshotRequest.meta.membership.voters'],
    ['snapshot member listed twice', snapshot({}, { voters: ['a', 'b'], learners: ['b'] }), 'snapshotRequest.meta.membership.learners[0]'],
    ['snapshot member with an empty id', snapshot({}, { voters: ['a', ''] }), 'snapshotRequest.meta.membership.voters[1]'],
  ];
  for (const [name, object, field] of cases) {
    test(`refuses ${name}`, () => assertRefused(object, field));
  }

  test('refuses wrong JavaScript types given as objects', () => {
    const wrong: readonly (readonly [Record<string, unknown>, string])[] = [
      [{ ...base, from: 5 }, 'from'],
      [{ ...base, term: '5' }, 'term'],
      [{ ...base, term: 1.5 }, 'term'],
      [{ ...base, term: -1 }, 'term'],
      [{ ...base, type: 'HEARTBEAT_REQUEST' }, 'type'],
      [{ ...base, heartbeatRequest: 'x' }, 'heartbeatRequest'],
      [{ from: 'a', to: 'b', term: 1, type: 2, preVoteResponse: { granted: 'yes' } }, 'preVoteResponse.granted'],
      [append('not a list' as unknown as unknown[]), 'appendRequest.entries'],
      [append([{ index: 11, term: 3, kind: 1, data: 'text' }]), 'appendRequest.entries[0].data'],
    ];
    for (const [object, field] of wrong) {
      const decoded = raftMessageFromObject(object, small);
      assert.ok(!decoded.ok, field);
      if (!decoded.ok) assert.equal(decoded.error.field, field);
    }
    assert.ok(!raftMessageFromObject(null, small).ok);
    assert.ok(!raftMessageFromObject([base], small).ok);
  });

  test('refuses bytes that are not protobuf, and messages larger than peerMessageBytesMax', () => {
    for (const garbage of [bytes(0xff, 0xff, 0xff), bytes(0x0a, 0x05, 0x61), bytes(0x07)]) {
      const decoded = decodeRaftMessage(garbage, small);
      assert.ok(!decoded.ok);
      if (!decoded.ok) assert.equal(decoded.error.field, 'bytes');
    }
    const decoded = decodeRaftMessage(new Uint8Array(small.peerMessageBytesMax + 1), small);
    assert.ok(!decoded.ok);
  });

  test('a bad message in a batch costs only itself; damaged framing ends the batch', () => {
    const good = table.HeartbeatRequest[0];
    assert.ok(good !== undefined);
    const bad = RaftMessage.encode({ ...base, type: 99 }).finish();
    const decoded = decodeRaftBatch(encodeRaftBatch([encodeRaftMessage(good), bad, bytes(1, 2, 3), encodeRaftMessage(good)]), small);
    assert.deepStrictEqual(decoded.messages, [good, good]);
    assert.equal(decoded.errors.length, 2);
    const framed = encodeRaftBatch([encodeRaftMessage(good), encodeRaftMessage(good)]);
    const truncated = decodeRaftBatch(framed.subarray(0, framed.length - 3), small);
    assert.deepStrictEqual(truncated.messages, [good]);
    assert.equal(truncated.errors.length, 1);
    assert.equal(truncated.errors[0]?.field, 'bytes');
  });

  test('refuses malformed forward requests and responses', () => {
    const requests: readonly (readonly [Record<string, unknown>, string])[] = [
      [{ command: new Uint8Array(0), deadlineMs: 10 }, 'command'],
      [{ command: new Uint8Array(small.entryBytesMax + 1), deadlineMs: 10 }, 'command'],
      [{ command: bytes(1), deadlineMs: 0 }, 'deadlineMs'],
      [{ command: bytes(1), deadlineMs: unsafe }, 'deadlineMs'],
    ];
    for (const [object, field] of requests) {
      const decoded = decodeForwardRequest(ForwardRequestType.encode(object).finish(), small);
      assert.ok(!decoded.ok, field);
      if (!decoded.ok) assert.equal(decoded.error.field, field);
    }
    const responses: readonly (readonly [Record<string, unknown>, string])[] = [
      [{}, 'outcome'],
      [{ error: { code: 'NOT_A_CODE', message: 'x' } }, 'error.code'],
      [{ error: { code: 'CAIRN_INTERNAL', leaderHint: 'x'.repeat(nodeIdCharsMax + 1) } }, 'error.leaderHint'],
      [{ result: { result: bytes(1), index: allOnes } }, 'result.index'],
    ];
    for (const [object, field] of responses) {
      const decoded = decodeForwardResponse(ForwardResponseType.encode(object).finish(), small);
      assert.ok(!decoded.ok, field);
      if (!decoded.ok) assert.equal(decoded.error.field, field);
    }
    assert.ok(!decodeForwardRequest(bytes(0xff, 0xff), small).ok);
    assert.ok(!decodeForwardResponse(bytes(0x0a, 0x09), small).ok);
  });

  test('entryToObject covers every entry kind the table uses', () => {
    const kinds = new Set(entries.map((entry) => entryToObject(entry)['kind']));
    assert.deepEqual([...kinds].sort(), [1, 2, 3]);
  });

  test('fuzz: flipped bytes of valid encodings never make decoding throw', () => {
    // A seeded generator (xorshift32) keeps the run reproducible.
    let state = 0x9e3779b9;
    const next = (): number => {
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      return state >>> 0;
    };
    const encodings = allMessages.map(encodeRaftMessage);
    for (let round = 0; round < 3000; round++) {
      const source = encodings[next() % encodings.length];
      assert.ok(source !== undefined);
      const mutated = new Uint8Array(source);
      const flips = 1 + (next() % 4);
      for (let i = 0; i < flips; i++) mutated[next() % mutated.length] = next() & 0xff;
      const decoded = decodeRaftMessage(mutated, small);
      if (decoded.ok) assert.equal(typeof decoded.value.type, 'string');
      else assert.ok(decoded.error instanceof PeerDecodeError);
      decodeRaftBatch(mutated, small);
    }
  });
});
