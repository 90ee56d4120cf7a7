// peer-codec: Raft messages and forwarded writes <-> protobuf (proto/cairn/peer/v1/peer.proto), with full validation
// of everything received.
//
// Encoding trusts its input: it comes from this member's own core and driver. Decoding trusts nothing: a peer may
// run another version, have a bug, or not be a peer at all. Every decoded value is checked (types, non-negative
// safe integers, known enum values, bounded strings and byte arrays, well-formed entries, snapshot chunks within
// their bounds) before it becomes a Message; anything else is a PeerDecodeError, returned, never thrown out of the
// public functions, so one bad message costs only itself.
//
// A RaftBatch is framed by hand (field 1, length-delimited, per message) rather than through RaftBatch.decode, so
// that each message is decoded on its own and one malformed message does not discard the rest of its batch.
import protobuf from 'protobufjs';

import { assert, assertNever } from '../assert.ts';
import { isCairnErrorCode } from '../errors.ts';
import { limits, type Limits } from '../limits.ts';
import { entryBytes } from '../raft/raft-log.ts';
import type { Entry, Membership, MembershipChange, Message, MessageType, NodeId, SnapshotMeta } from '../raft/types.ts';
import { encodeWithWriter, lookupMessage } from './proto.ts';
import type { ForwardRequest, ForwardResponse, PeerHello } from './transport.ts';
import { peerCheckpointDigestsMax, type CheckpointDigest, type PeerCheckpoints } from './checkpoints.ts';

/** PeerCodecLimits is the subset of src/limits.ts the codec enforces on what it decodes. */
export type PeerCodecLimits = Pick<Limits, 'messageBytesMax' | 'snapshotChunkBytes' | 'entryBytesMax' | 'peerMessageBytesMax'>;

/** nodeIdCharsMax bounds a NodeId on the wire (limits.nodeIdCharsMax). */
export const nodeIdCharsMax = limits.nodeIdCharsMax;

/** readContextCharsMax bounds a ReadIndex context; the driver's contexts are "<member>/<sequence>". */
export const readContextCharsMax = nodeIdCharsMax + 32;

/** membershipMembersMax bounds the voters plus learners of a membership carried in a snapshot chunk. */
export const membershipMembersMax = 1024;

/** forwardMessageCharsMax bounds the human-readable message of a forwarded error; longer ones are cut when encoded. */
export const forwardMessageCharsMax = 4096;

/**
 * termMax bounds a message's term: 2^52, half the safe integers. A member adopts the term of any well-formed message
 * above its own and then counts on from it (a campaign is term + 1, a leader's no-op carries its term), so a term
 * near 2^53 would leave the safe integers at the next election, where storage asserts and the member crashes at
 * every start (found by test/replica/peer-fuzz.test.ts). 2^52 leaves 2^52 elections: one a millisecond for 140 000 years.
 */
export const termMax = 2 ** 52;

/** forwardDeadlineMsMax is a sanity bound on a forwarded deadline (an hour); the driver bounds its real waits. */
export const forwardDeadlineMsMax = 3_600_000;

/** PeerDecodeError says why received bytes are not a valid peer message: which field, and what is wrong with it. */
export class PeerDecodeError extends Error {
  override readonly name = 'PeerDecodeError';
  /** field is the path of the offending field, e.g. "appendRequest.entries[3].term", or "bytes" for the framing. */
  readonly field: string;
  /** reason says what is wrong, e.g. "not a safe integer". */
  readonly reason: string;

  constructor(field: string, reason: string) {
    super(`invalid peer message: ${field}: ${reason}`);
    this.field = field;
    this.reason = reason;
  }
}

/** Decoded is the outcome of decoding: a valid value or the error that refused it. */
export type Decoded<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: PeerDecodeError };

/** DecodedBatch is a RaftBatch's valid messages in arrival order and an error for each message refused. */
export interface DecodedBatch {
  readonly messages: Message[];
  readonly errors: PeerDecodeError[];
}

const raftMessageType = lookupMessage('cairn.peer.v1.RaftMessage');
const forwardRequestType = lookupMessage('cairn.peer.v1.ForwardRequest');
const forwardResponseType = lookupMessage('cairn.peer.v1.ForwardResponse');

/** wireTypeOf maps each message type to its RaftMessage.Type value. */
const wireTypeOf: Readonly<Record<MessageType, number>> = Object.freeze({
  PreVoteRequest: 1,
  PreVoteResponse: 2,
  VoteRequest: 3,
  VoteResponse: 4,
  AppendRequest: 5,
  AppendResponse: 6,
  HeartbeatRequest: 7,
  HeartbeatResponse: 8,
  SnapshotRequest: 9,
  SnapshotResponse: 10,
  TimeoutNow: 11,
  ReadIndexRequest: 12,
  ReadIndexResponse: 13,
});

/** bodyFieldOf maps each message type to its field of the RaftMessage.body oneof. */
const bodyFieldOf: Readonly<Record<MessageType, string>> = Object.freeze({
  PreVoteRequest: 'preVoteRequest',
  PreVoteResponse: 'preVoteResponse',
  VoteRequest: 'voteRequest',
  VoteResponse: 'voteResponse',
  AppendRequest: 'appendRequest',
  AppendResponse: 'appendResponse',
  HeartbeatRequest: 'heartbeatRequest',
  HeartbeatResponse: 'heartbeatResponse',
  SnapshotRequest: 'snapshotRequest',
  SnapshotResponse: 'snapshotResponse',
  TimeoutNow: 'timeoutNow',
  ReadIndexRequest: 'readIndexRequest',
  ReadIndexResponse: 'readIndexResponse',
});

const messageTypeOfWire: ReadonlyMap<number, MessageType> = new Map(
  (Object.entries(wireTypeOf) as [MessageType, number][]).map(([type, wire]) => [wire, type]),
);
const bodyFields: readonly string[] = Object.values(bodyFieldOf);

const entryKindWire = { normal: 1, noop: 2, membership: 3 } as const;
const changeTypeWire = { 'add-learner': 1, promote: 2, remove: 3 } as const;
const changeTypeOfWire: ReadonlyMap<number, MembershipChange['type']> = new Map([
  [1, 'add-learner'],
  [2, 'promote'],
  [3, 'remove'],
]);

// ---------------------------------------------------------------------------------------------------------------
// Encoding (trusted input).

/** raftMessageToObject turns a Message into the plain object protobufjs encodes as a RaftMessage. */
export function raftMessageToObject(message: Message): Record<string, unknown> {
  return {
    from: message.from,
    to: message.to,
    term: message.term,
    type: wireTypeOf[message.type],
    [bodyFieldOf[message.type]]: bodyToObject(message),
  };
}

function bodyToObject(message: Message): Record<string, unknown> {
  switch (message.type) {
    case 'PreVoteRequest':
      return { lastLogIndex: message.lastLogIndex, lastLogTerm: message.lastLogTerm };
    case 'PreVoteResponse':
    case 'VoteResponse':
      return { granted: message.granted };
    case 'VoteRequest':
      return { lastLogIndex: message.lastLogIndex, lastLogTerm: message.lastLogTerm, transfer: message.transfer };
    case 'AppendRequest':
      return {
        prevLogIndex: message.prevLogIndex,
        prevLogTerm: message.prevLogTerm,
        entries: message.entries.map(entryToObject),
        commit: message.commit,
        ...(message.noReply === true ? { noReply: true } : {}),
      };
    case 'AppendResponse':
      return {
        success: message.success,
        matchIndex: message.matchIndex,
        conflictIndex: message.conflictIndex,
        conflictTerm: message.conflictTerm,
        rejectedIndex: message.rejectedIndex,
      };
    case 'HeartbeatRequest':
      return { commit: message.commit, readRound: message.readRound };
    case 'HeartbeatResponse':
      return message.missingFrom === undefined ? { readRound: message.readRound } : { readRound: message.readRound, missingFrom: message.missingFrom };
    case 'SnapshotRequest':
      return {
        meta: snapshotMetaToObject(message.meta),
        offset: message.offset,
        totalBytes: message.totalBytes,
        data: message.data,
        done: message.done,
      };
    case 'SnapshotResponse':
      return { index: message.index, nextOffset: message.nextOffset, installed: message.installed };
    case 'TimeoutNow':
      return {};
    case 'ReadIndexRequest':
      return { context: message.context };
    case 'ReadIndexResponse':
      return { context: message.context, index: message.index, rejected: message.rejected };
    default:
      return assertNever(message, 'unknown message type');
  }
}

/** entryToObject turns an Entry into the plain object protobufjs encodes as a cairn.peer.v1.Entry. */
export function entryToObject(entry: Entry): Record<string, unknown> {
  // Object literals rather than spreads: protobufjs's generated encoder stays fast on objects of stable shapes.
  switch (entry.kind) {
    case 'normal':
      return { index: entry.index, term: entry.term, kind: entryKindWire.normal, data: entry.data };
    case 'noop':
      return { index: entry.index, term: entry.term, kind: entryKindWire.noop };
    case 'membership': {
      const change = { type: changeTypeWire[entry.change.type], node: entry.change.node };
      const membership = { voters: [...entry.membership.voters], learners: [...entry.membership.learners] };
      return { index: entry.index, term: entry.term, kind: entryKindWire.membership, change, membership };
    }
    default:
      return assertNever(entry, 'unknown entry kind');
  }
}

function snapshotMetaToObject(meta: SnapshotMeta): Record<string, unknown> {
  return {
    index: meta.index,
    term: meta.term,
    membership: { voters: [...meta.membership.voters], learners: [...meta.membership.learners] },
  };
}

/** bodyTypeOf maps each message type to the protobuf type of its body (peer.proto names them alike). */
const bodyTypeOf: Readonly<Record<MessageType, protobuf.Type>> = Object.freeze(
  Object.fromEntries(Object.keys(wireTypeOf).map((type) => [type, lookupMessage(`cairn.peer.v1.${type}`)])) as Record<MessageType, protobuf.Type>,
);

/** bodyTagOf maps each message type to the tag (field number, length-delimited) of its body in RaftMessage. */
const bodyTagOf: Readonly<Record<MessageType, number>> = Object.freeze(
  Object.fromEntries(
    Object.entries(bodyFieldOf).map(([type, field]) => {
      const id = raftMessageType.fields[field]?.id;
      assert(id !== undefined, `peer.proto: RaftMessage has no field ${field}`);
      return [type, (id << 3) | 2];
    }),
  ) as Record<MessageType, number>,
);

/**
 * encodeRaftMessage encodes one Message as a RaftMessage. The envelope is written field by field and the body by
 * its own type, which is the same bytes RaftMessage.encode(raftMessageToObject(message)) gives (the tests check
 * it), about three times faster, since the envelope object's shape then does not depend on the message type.
 */
export function encodeRaftMessage(message: Message): Uint8Array {
  return encodeWithWriter((writer) => {
    writer.uint32(0x0a).string(message.from).uint32(0x12).string(message.to);
    // proto3 leaves a zero scalar out, as protobufjs does.
    if (message.term !== 0) writer.uint32(0x18).uint64(message.term);
    writer.uint32(0x20).int32(wireTypeOf[message.type]);
    bodyTypeOf[message.type].encode(bodyToObject(message), writer.uint32(bodyTagOf[message.type]).fork()).ldelim();
  });
}

/** raftBatchFramedBytes is how many bytes an encoded message of `messageBytes` takes inside a RaftBatch. */
export function raftBatchFramedBytes(messageBytes: number): number {
  return 1 + varintBytes(messageBytes) + messageBytes;
}

function varintBytes(value: number): number {
  let bytes = 1;
  for (let rest = value; rest >= 0x80; rest = Math.floor(rest / 0x80)) bytes++;
  return bytes;
}

/** RAFT_BATCH_MESSAGES_TAG is the tag of RaftBatch.messages: field 1, wire type 2 (length-delimited). */
const RAFT_BATCH_MESSAGES_TAG = (1 << 3) | 2;

/** encodeRaftBatch frames already encoded RaftMessages as one RaftBatch, in order. */
export function encodeRaftBatch(encodedMessages: readonly Uint8Array[]): Uint8Array {
  const writer = protobuf.Writer.create();
  for (const encoded of encodedMessages) writer.uint32(RAFT_BATCH_MESSAGES_TAG).bytes(encoded);
  return writer.finish();
}

/** encodeForwardRequest encodes a ForwardRequest. */
export function encodeForwardRequest(request: ForwardRequest): Uint8Array {
  return forwardRequestType.encode({ command: request.command, deadlineMs: request.deadlineMs }).finish();
}

/** encodeForwardResponse encodes a ForwardResponse; an error message longer than forwardMessageCharsMax is cut. */
export function encodeForwardResponse(response: ForwardResponse): Uint8Array {
  const object = response.ok
    ? { result: { result: response.result, index: response.index } }
    : {
        error: {
          code: response.code,
          message: response.message.slice(0, forwardMessageCharsMax),
          leaderHint: response.leaderHint ?? '',
        },
      };
  return forwardResponseType.encode(object).finish();
}

// ---------------------------------------------------------------------------------------------------------------
// Decoding (untrusted input). Internally a broken rule throws a PeerDecodeError; the exported functions catch it
// (and protobufjs's own errors) and return it.

function invalid(field: string, reason: string): never {
  throw new PeerDecodeError(field, reason);
}

function asDecodeError(error: unknown): PeerDecodeError {
  if (error instanceof PeerDecodeError) return error;
  return new PeerDecodeError('bytes', error instanceof Error ? `malformed protobuf (${error.message})` : 'malformed protobuf');
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);
}

function record(value: unknown, field: string): Record<string, unknown> {
  if (!isRecord(value)) invalid(field, 'missing or not a message');
  return value;
}

/** isLongLike narrows protobufjs's representation of a 64-bit integer when long.js is installed. */
function isLongLike(value: unknown): value is { low: number; high: number; unsigned: boolean } {
  return isRecord(value) && typeof value['low'] === 'number' && typeof value['high'] === 'number' && typeof value['unsigned'] === 'boolean';
}

/** safeUint reads a uint64 field as a non-negative safe integer (a number or a Long), or refuses it. */
function safeUint(object: Record<string, unknown>, key: string, field: string): number {
  const value = object[key];
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) invalid(field, `not a non-negative safe integer (${value})`);
    return value;
  }
  if (isLongLike(value)) {
    const high = value.high >>> 0;
    if ((!value.unsigned && value.high < 0) || high > 0x1f_ffff) invalid(field, 'not a non-negative safe integer');
    return high * 0x1_0000_0000 + (value.low >>> 0);
  }
  return invalid(field, 'not an integer');
}

function bool(object: Record<string, unknown>, key: string, field: string): boolean {
  const value = object[key];
  if (typeof value !== 'boolean') invalid(field, 'not a boolean');
  return value;
}

function boundedString(object: Record<string, unknown>, key: string, field: string, charsMax: number): string {
  const value = object[key];
  if (typeof value !== 'string') invalid(field, 'not a string');
  if (value.length > charsMax) invalid(field, `longer than ${charsMax} chars (${value.length})`);
  return value;
}

function nodeIdAt(object: Record<string, unknown>, key: string, field: string): NodeId {
  const value = boundedString(object, key, field, nodeIdCharsMax);
  if (value.length === 0) invalid(field, 'empty member id');
  return value;
}

/** boundedBytes reads a bytes field of at most `bytesMax` bytes as a fresh Uint8Array (no view into the batch). */
function boundedBytes(object: Record<string, unknown>, key: string, field: string, bytesMax: number): Uint8Array {
  const value = object[key];
  // protobufjs leaves an absent bytes field at its prototype default, an empty array.
  if (Array.isArray(value) && value.length === 0) return new Uint8Array(0);
  if (!(value instanceof Uint8Array)) invalid(field, 'not bytes');
  if (value.length > bytesMax) invalid(field, `longer than ${bytesMax} bytes (${value.length})`);
  return new Uint8Array(value);
}

function enumValue(object: Record<string, unknown>, key: string, field: string): number {
  const value = object[key];
  if (typeof value !== 'number' || !Number.isInteger(value)) invalid(field, 'not an enum value');
  return value;
}

function isSet(object: Record<string, unknown>, key: string): boolean {
  return object[key] !== null && object[key] !== undefined;
}

/** raftMessageFromObject validates a decoded RaftMessage (a protobufjs message or a plain object) into a Message. */
export function raftMessageFromObject(object: unknown, limits: PeerCodecLimits): Decoded<Message> {
  try {
    return { ok: true, value: messageFromRecord(record(object, 'message'), limits) };
  } catch (error) {
    return { ok: false, error: asDecodeError(error) };
  }
}

/** decodeRaftMessage decodes and validates one encoded RaftMessage. */
export function decodeRaftMessage(bytes: Uint8Array, limits: PeerCodecLimits): Decoded<Message> {
  try {
    if (bytes.length > limits.peerMessageBytesMax) invalid('bytes', `longer than ${limits.peerMessageBytesMax} bytes`);
    return { ok: true, value: messageFromRecord(record(raftMessageType.decode(bytes), 'message'), limits) };
  } catch (error) {
    return { ok: false, error: asDecodeError(error) };
  }
}

/** decodeRaftBatch decodes a RaftBatch message by message; framing damage ends the batch with one more error. */
export function decodeRaftBatch(bytes: Uint8Array, limits: PeerCodecLimits): DecodedBatch {
  const messages: Message[] = [];
  const errors: PeerDecodeError[] = [];
  const reader = protobuf.Reader.create(bytes);
  try {
    while (reader.pos < reader.len) {
      const tag = reader.uint32();
      if (tag !== RAFT_BATCH_MESSAGES_TAG) {
        reader.skipType(tag & 7);
        continue;
      }
      const decoded = decodeRaftMessage(reader.bytes(), limits);
      if (decoded.ok) messages.push(decoded.value);
      else errors.push(decoded.error);
    }
  } catch (error) {
    errors.push(asDecodeError(error));
  }
  return { messages, errors };
}

function messageFromRecord(object: Record<string, unknown>, limits: PeerCodecLimits): Message {
  const wire = enumValue(object, 'type', 'type');
  const type = messageTypeOfWire.get(wire);
  if (type === undefined) return invalid('type', `unknown message type ${wire}`);
  const bodyField = bodyFieldOf[type];
  for (const field of bodyFields) {
    if (field !== bodyField && isSet(object, field)) invalid(field, `set on a ${type}`);
  }
  const base: Base = {
    from: nodeIdAt(object, 'from', 'from'),
    to: nodeIdAt(object, 'to', 'to'),
    term: safeUint(object, 'term', 'term'),
  };
  if (base.term > termMax) invalid('term', `beyond termMax ${termMax} (${base.term})`);
  return bodyDecoders[type](record(object[bodyField], bodyField), base, limits, bodyField);
}

interface Base {
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: number;
}

type BodyDecoder = (body: Record<string, unknown>, base: Base, limits: PeerCodecLimits, field: string) => Message;

/** bodyDecoders validates the body of each message type; `field` prefixes the paths in errors. */
const bodyDecoders: Readonly<Record<MessageType, BodyDecoder>> = Object.freeze({
  PreVoteRequest: (b, base, _l, f) => ({
    type: 'PreVoteRequest',
    ...base,
    lastLogIndex: safeUint(b, 'lastLogIndex', `${f}.lastLogIndex`),
    lastLogTerm: safeUint(b, 'lastLogTerm', `${f}.lastLogTerm`),
  }),
  PreVoteResponse: (b, base, _l, f) => ({ type: 'PreVoteResponse', ...base, granted: bool(b, 'granted', `${f}.granted`) }),
  VoteRequest: (b, base, _l, f) => ({
    type: 'VoteRequest',
    ...base,
    lastLogIndex: safeUint(b, 'lastLogIndex', `${f}.lastLogIndex`),
    lastLogTerm: safeUint(b, 'lastLogTerm', `${f}.lastLogTerm`),
    transfer: bool(b, 'transfer', `${f}.transfer`),
  }),
  VoteResponse: (b, base, _l, f) => ({ type: 'VoteResponse', ...base, granted: bool(b, 'granted', `${f}.granted`) }),
  AppendRequest: (b, base, l, f) => appendRequestFromRecord(b, base, l, f),
  AppendResponse: (b, base, _l, f) => ({
    type: 'AppendResponse',
    ...base,
    success: bool(b, 'success', `${f}.success`),
    matchIndex: safeUint(b, 'matchIndex', `${f}.matchIndex`),
    conflictIndex: safeUint(b, 'conflictIndex', `${f}.conflictIndex`),
    conflictTerm: safeUint(b, 'conflictTerm', `${f}.conflictTerm`),
    rejectedIndex: safeUint(b, 'rejectedIndex', `${f}.rejectedIndex`),
  }),
  HeartbeatRequest: (b, base, _l, f) => ({
    type: 'HeartbeatRequest',
    ...base,
    commit: safeUint(b, 'commit', `${f}.commit`),
    readRound: safeUint(b, 'readRound', `${f}.readRound`),
  }),
  HeartbeatResponse: (b, base, _l, f) => {
    const readRound = safeUint(b, 'readRound', `${f}.readRound`);
    const missingFrom = safeUint(b, 'missingFrom', `${f}.missingFrom`);
    // 0 is proto3's "not set"; an index is at least 1.
    return missingFrom === 0 ? { type: 'HeartbeatResponse', ...base, readRound } : { type: 'HeartbeatResponse', ...base, readRound, missingFrom };
  },
  SnapshotRequest: (b, base, l, f) => snapshotRequestFromRecord(b, base, l, f),
  SnapshotResponse: (b, base, _l, f) => ({
    type: 'SnapshotResponse',
    ...base,
    index: safeUint(b, 'index', `${f}.index`),
    nextOffset: safeUint(b, 'nextOffset', `${f}.nextOffset`),
    installed: bool(b, 'installed', `${f}.installed`),
  }),
  TimeoutNow: (_b, base) => ({ type: 'TimeoutNow', ...base }),
  ReadIndexRequest: (b, base, _l, f) => ({
    type: 'ReadIndexRequest',
    ...base,
    context: boundedString(b, 'context', `${f}.context`, readContextCharsMax),
  }),
  ReadIndexResponse: (b, base, _l, f) => ({
    type: 'ReadIndexResponse',
    ...base,
    context: boundedString(b, 'context', `${f}.context`, readContextCharsMax),
    index: safeUint(b, 'index', `${f}.index`),
    rejected: bool(b, 'rejected', `${f}.rejected`),
  }),
});

/**
 * appendRequestFromRecord validates an AppendRequest: entries contiguous from prevLogIndex + 1, terms never going
 * back (from prevLogTerm on) nor beyond the message's term, and their counted bytes within messageBytesMax unless
 * there is a single entry (the core always sends at least one, Raft §5.3).
 */
function appendRequestFromRecord(body: Record<string, unknown>, base: Base, limits: PeerCodecLimits, field: string): Message {
  const prevLogIndex = safeUint(body, 'prevLogIndex', `${field}.prevLogIndex`);
  const prevLogTerm = safeUint(body, 'prevLogTerm', `${field}.prevLogTerm`);
  const commit = safeUint(body, 'commit', `${field}.commit`);
  if (prevLogTerm > base.term) invalid(`${field}.prevLogTerm`, `beyond the message term ${base.term}`);
  const list = body['entries'];
  if (!Array.isArray(list)) return invalid(`${field}.entries`, 'not a list');
  const entries: Entry[] = [];
  let bytes = 0;
  let lastTerm = prevLogTerm;
  for (const [i, item] of list.entries()) {
    const path = `${field}.entries[${i}]`;
    const entry = entryFromObject(item, limits, path);
    if (entry.index !== prevLogIndex + 1 + i) invalid(`${path}.index`, `not contiguous (expected ${prevLogIndex + 1 + i})`);
    if (entry.term < lastTerm || entry.term > base.term) invalid(`${path}.term`, `outside [${lastTerm}, ${base.term}]`);
    lastTerm = entry.term;
    bytes += entryBytes(entry);
    if (i > 0 && bytes > limits.messageBytesMax) invalid(`${field}.entries`, `more than ${limits.messageBytesMax} entry bytes`);
    entries.push(entry);
  }
  const noReply = body['noReply'];
  if (noReply !== undefined && typeof noReply !== 'boolean') invalid(`${field}.noReply`, 'not a boolean');
  if (noReply === true && entries.length > 0) invalid(`${field}.noReply`, 'set on an append that carries entries');
  return noReply === true
    ? { type: 'AppendRequest', ...base, prevLogIndex, prevLogTerm, entries, commit, noReply: true }
    : { type: 'AppendRequest', ...base, prevLogIndex, prevLogTerm, entries, commit };
}

/** entryFromObject validates one decoded cairn.peer.v1.Entry (index and term >= 1, a known kind with its payload). */
export function entryFromObject(value: unknown, limits: Pick<PeerCodecLimits, 'entryBytesMax'>, field: string): Entry {
  const object = record(value, field);
  const index = safeUint(object, 'index', `${field}.index`);
  const term = safeUint(object, 'term', `${field}.term`);
  if (index < 1) invalid(`${field}.index`, 'must be >= 1');
  if (term < 1) invalid(`${field}.term`, 'must be >= 1');
  const kind = enumValue(object, 'kind', `${field}.kind`);
  const hasChange = isSet(object, 'change');
  const data = boundedBytes(object, 'data', `${field}.data`, limits.entryBytesMax);
  switch (kind) {
    case entryKindWire.normal:
      if (data.length === 0) invalid(`${field}.data`, 'empty command');
      if (hasChange) invalid(`${field}.change`, 'set on a normal entry');
      return { kind: 'normal', index, term, data };
    case entryKindWire.noop:
      if (data.length > 0 || hasChange) invalid(field, 'a noop entry carries nothing');
      return { kind: 'noop', index, term };
    case entryKindWire.membership: {
      if (data.length > 0) invalid(`${field}.data`, 'set on a membership entry');
      const change = record(object['change'], `${field}.change`);
      const type = changeTypeOfWire.get(enumValue(change, 'type', `${field}.change.type`));
      if (type === undefined) return invalid(`${field}.change.type`, 'unknown membership change');
      const node = nodeIdAt(change, 'node', `${field}.change.node`);
      const membership = membershipFromObject(object['membership'], `${field}.membership`);
      return { kind: 'membership', index, term, change: { type, node }, membership };
    }
    default:
      return invalid(`${field}.kind`, `unknown entry kind ${kind}`);
  }
}

/**
 * snapshotRequestFromRecord validates one InstallSnapshot chunk: at most snapshotChunkBytes of data, inside
 * [0, totalBytes), and `done` exactly when it ends the snapshot.
 */
function snapshotRequestFromRecord(body: Record<string, unknown>, base: Base, limits: PeerCodecLimits, field: string): Message {
  const meta = snapshotMetaFromObject(body['meta'], `${field}.meta`);
  const offset = safeUint(body, 'offset', `${field}.offset`);
  const totalBytes = safeUint(body, 'totalBytes', `${field}.totalBytes`);
  const data = boundedBytes(body, 'data', `${field}.data`, limits.snapshotChunkBytes);
  const done = bool(body, 'done', `${field}.done`);
  const end = offset + data.length;
  if (end > totalBytes) invalid(`${field}.data`, `chunk ends at ${end}, beyond totalBytes ${totalBytes}`);
  if (done !== (end === totalBytes)) invalid(`${field}.done`, done ? 'set before the last chunk' : 'unset on the last chunk');
  if (meta.term > base.term) invalid(`${field}.meta.term`, `beyond the message term ${base.term}`);
  return { type: 'SnapshotRequest', ...base, meta, offset, totalBytes, data, done };
}

/** snapshotMetaFromObject validates a decoded cairn.peer.v1.SnapshotMeta and its membership. */
export function snapshotMetaFromObject(value: unknown, field: string): SnapshotMeta {
  const object = record(value, field);
  return {
    index: safeUint(object, 'index', `${field}.index`),
    term: safeUint(object, 'term', `${field}.term`),
    membership: membershipFromObject(object['membership'], `${field}.membership`),
  };
}

/** membershipFromObject validates a membership: at least one voter, bounded, valid member ids, nobody listed twice. */
export function membershipFromObject(value: unknown, field: string): Membership {
  const object = record(value, field);
  const seen = new Set<NodeId>();
  const list = (key: 'voters' | 'learners'): NodeId[] => {
    const items = object[key];
    if (!Array.isArray(items)) return invalid(`${field}.${key}`, 'not a list');
    if (seen.size + items.length > membershipMembersMax) invalid(field, `more than ${membershipMembersMax} members`);
    const ids: NodeId[] = [];
    for (const [i, item] of items.entries()) {
      const id = nodeIdAt({ id: item }, 'id', `${field}.${key}[${i}]`);
      if (seen.has(id)) invalid(`${field}.${key}[${i}]`, `member ${id} listed twice`);
      seen.add(id);
      ids.push(id);
    }
    return ids;
  };
  const voters = list('voters');
  if (voters.length === 0) invalid(`${field}.voters`, 'no voters');
  return { voters, learners: list('learners') };
}

/** decodeForwardRequest decodes and validates a ForwardRequest: 1..entryBytesMax command bytes, a positive deadline. */
export function decodeForwardRequest(bytes: Uint8Array, limits: PeerCodecLimits): Decoded<ForwardRequest> {
  try {
    const object = record(forwardRequestType.decode(bytes), 'request');
    const command = boundedBytes(object, 'command', 'command', limits.entryBytesMax);
    if (command.length === 0) invalid('command', 'empty command');
    const deadlineMs = safeUint(object, 'deadlineMs', 'deadlineMs');
    if (deadlineMs < 1 || deadlineMs > forwardDeadlineMsMax) invalid('deadlineMs', `outside [1, ${forwardDeadlineMsMax}]`);
    return { ok: true, value: { command, deadlineMs } };
  } catch (error) {
    return { ok: false, error: asDecodeError(error) };
  }
}

/** decodeForwardResponse decodes and validates a ForwardResponse: a result, or an error with a catalog code. */
export function decodeForwardResponse(bytes: Uint8Array, limits: PeerCodecLimits): Decoded<ForwardResponse> {
  try {
    const object = record(forwardResponseType.decode(bytes), 'response');
    const hasResult = isSet(object, 'result');
    if (hasResult === isSet(object, 'error')) invalid('outcome', 'exactly one of result and error must be set');
    if (hasResult) {
      const result = record(object['result'], 'result');
      const value = boundedBytes(result, 'result', 'result.result', limits.peerMessageBytesMax);
      return { ok: true, value: { ok: true, result: value, index: safeUint(result, 'index', 'result.index') } };
    }
    const error = record(object['error'], 'error');
    const code = boundedString(error, 'code', 'error.code', 64);
    if (!isCairnErrorCode(code)) invalid('error.code', `not a catalog code (${code})`);
    const message = boundedString(error, 'message', 'error.message', forwardMessageCharsMax);
    const hint = boundedString(error, 'leaderHint', 'error.leaderHint', nodeIdCharsMax);
    return { ok: true, value: { ok: false, code, message, leaderHint: hint === '' ? null : hint } };
  } catch (error) {
    return { ok: false, error: asDecodeError(error) };
  }
}

// --- ForwardBatch ---------------------------------------------------------------------------------------------------
// Both messages are one repeated field (1) of ForwardRequest / ForwardResponse, framed by hand like a RaftBatch so
// that each item is encoded once and decoded on its own: an invalid request is refused in its place, not with its
// batch.

/** FORWARD_BATCH_ITEMS_TAG is the tag of ForwardBatchRequest.requests and ForwardBatchResponse.responses. */
const FORWARD_BATCH_ITEMS_TAG = (1 << 3) | 2;

/** frameItems frames encoded items as the repeated field 1 of a message. */
function frameItems(items: readonly Uint8Array[]): Uint8Array {
  const writer = protobuf.Writer.create();
  for (const item of items) writer.uint32(FORWARD_BATCH_ITEMS_TAG).bytes(item);
  return writer.finish();
}

/**
 * readItems splits a message into the items of its field 1 (other fields are skipped, as protobuf does); at most
 * `itemsMax` of them. Throws a PeerDecodeError on framing damage or too many items.
 */
function readItems(bytes: Uint8Array, itemsMax: number, field: string): Uint8Array[] {
  const items: Uint8Array[] = [];
  const reader = protobuf.Reader.create(bytes);
  while (reader.pos < reader.len) {
    const tag = reader.uint32();
    if (tag !== FORWARD_BATCH_ITEMS_TAG) {
      reader.skipType(tag & 7);
      continue;
    }
    if (items.length === itemsMax) invalid(field, `more than ${itemsMax} items`);
    items.push(reader.bytes());
  }
  return items;
}

/** ForwardBatchLimits are the limits a ForwardBatch is decoded with. */
export type ForwardBatchLimits = PeerCodecLimits & Pick<Limits, 'forwardBatchRequestsMax'>;

/** encodeForwardBatchRequest encodes a ForwardBatchRequest (the caller keeps to the count and bytes bounds). */
export function encodeForwardBatchRequest(requests: readonly ForwardRequest[]): Uint8Array {
  return frameItems(requests.map(encodeForwardRequest));
}

/**
 * decodeForwardBatchRequest decodes a ForwardBatchRequest: 1..forwardBatchRequestsMax requests, each decoded and
 * validated on its own (decodeForwardRequest). The batch itself is refused only when its framing is damaged, it is
 * empty or it holds too many requests.
 */
export function decodeForwardBatchRequest(bytes: Uint8Array, limits: ForwardBatchLimits): Decoded<Array<Decoded<ForwardRequest>>> {
  try {
    const items = readItems(bytes, limits.forwardBatchRequestsMax, 'requests');
    if (items.length === 0) invalid('requests', 'empty batch');
    return { ok: true, value: items.map((item) => decodeForwardRequest(item, limits)) };
  } catch (error) {
    return { ok: false, error: asDecodeError(error) };
  }
}

/** tooLargeAnswer is the encoded answer that replaces a result too large for its batch (encoded once, when first needed). */
let tooLargeAnswer: Uint8Array | undefined;

/**
 * encodeForwardBatchResponse encodes one response per request, in order. When the encoded responses would pass
 * `bytesMax`, the last ones are replaced by CAIRN_OUTCOME_UNKNOWN until the rest fit (their writes did apply; a retry
 * with the same request id reads the remembered result); `replaced` says how many.
 */
export function encodeForwardBatchResponse(responses: readonly ForwardResponse[], bytesMax: number): { readonly bytes: Uint8Array; readonly replaced: number } {
  const items = responses.map(encodeForwardResponse);
  const tooLarge = (tooLargeAnswer ??= encodeForwardResponse({
    ok: false,
    code: 'CAIRN_OUTCOME_UNKNOWN',
    message: 'the leader applied this write, but its result did not fit in the answer to the forwarded batch; retry with the same request id to read it',
    leaderHint: null,
  }));
  let total = 0;
  for (const item of items) total += raftBatchFramedBytes(item.length);
  let replaced = 0;
  for (let i = items.length - 1; i >= 0 && total > bytesMax; i--) {
    const item = items[i] as Uint8Array;
    if (item.length <= tooLarge.length) continue;
    total += raftBatchFramedBytes(tooLarge.length) - raftBatchFramedBytes(item.length);
    items[i] = tooLarge;
    replaced++;
  }
  return { bytes: frameItems(items), replaced };
}

/**
 * decodeForwardBatchResponse decodes a ForwardBatchResponse to `expected` requests: each response decoded on its own
 * (decodeForwardResponse). Refused as a whole when its framing is damaged or it does not hold exactly `expected`.
 */
export function decodeForwardBatchResponse(bytes: Uint8Array, limits: PeerCodecLimits, expected: number): Decoded<Array<Decoded<ForwardResponse>>> {
  try {
    const items = readItems(bytes, expected, 'responses');
    if (items.length !== expected) invalid('responses', `${items.length} responses to ${expected} requests`);
    return { ok: true, value: items.map((item) => decodeForwardResponse(item, limits)) };
  } catch (error) {
    return { ok: false, error: asDecodeError(error) };
  }
}

// --- Hello --------------------------------------------------------------------------------------------------------

/** helloIdCharsMax bounds member and cluster ids in Hello messages. */
const helloIdCharsMax = 260;

/** encodeMemberRequest encodes a request that only names the asking member (HelloRequest, CheckpointsRequest). */
function encodeMemberRequest(typeName: string, memberId: string): Uint8Array {
  const type = lookupMessage(typeName);
  return type.encode(type.create({ memberId })).finish();
}

/** decodeMemberRequest decodes such a request: the asking member's id (1 to helloIdCharsMax chars), null when malformed. */
function decodeMemberRequest(typeName: string, bytes: Uint8Array): string | null {
  try {
    const type = lookupMessage(typeName);
    const decoded: unknown = type.toObject(type.decode(bytes));
    const memberId = isRecord(decoded) ? decoded['memberId'] : undefined;
    return typeof memberId === 'string' && memberId.length > 0 && memberId.length <= helloIdCharsMax ? memberId : null;
  } catch {
    return null;
  }
}

/** encodeHelloRequest encodes the asking member's id. */
export function encodeHelloRequest(memberId: string): Uint8Array {
  return encodeMemberRequest('cairn.peer.v1.HelloRequest', memberId);
}

/** decodeHelloRequest decodes and validates a HelloRequest; null when malformed. */
export function decodeHelloRequest(bytes: Uint8Array): string | null {
  return decodeMemberRequest('cairn.peer.v1.HelloRequest', bytes);
}

/** encodeHelloResponse encodes a member's answer to Hello. */
export function encodeHelloResponse(hello: PeerHello): Uint8Array {
  const type = lookupMessage('cairn.peer.v1.HelloResponse');
  return type.encode(type.create({ ...hello })).finish();
}

/** decodeHelloResponse decodes and validates a HelloResponse; null when malformed. */
export function decodeHelloResponse(bytes: Uint8Array): PeerHello | null {
  try {
    const type = lookupMessage('cairn.peer.v1.HelloResponse');
    const decoded: unknown = type.toObject(type.decode(bytes), { defaults: true });
    if (!isRecord(decoded)) return null;
    const { memberId, initialised, heardFromYou, clusterId } = decoded;
    if (typeof memberId !== 'string' || memberId.length === 0 || memberId.length > helloIdCharsMax) return null;
    if (typeof initialised !== 'boolean' || typeof heardFromYou !== 'boolean') return null;
    if (typeof clusterId !== 'string' || clusterId.length > helloIdCharsMax) return null;
    return { memberId, initialised, heardFromYou, clusterId };
  } catch {
    return null;
  }
}

// --- Backup -------------------------------------------------------------------------------------------------------

/** backupRequesterCharsMax bounds the requester named in a BackupRequest (it only goes to the member's log). */
const backupRequesterCharsMax = 260;

/** encodeBackupRequest encodes a request for a backup stream. */
export function encodeBackupRequest(requester: string): Uint8Array {
  const type = lookupMessage('cairn.peer.v1.BackupRequest');
  return type.encode(type.create({ requester })).finish();
}

/** decodeBackupRequest decodes a BackupRequest: the requester's name (at most backupRequesterCharsMax), null when malformed. */
export function decodeBackupRequest(bytes: Uint8Array): string | null {
  try {
    const type = lookupMessage('cairn.peer.v1.BackupRequest');
    const decoded: unknown = type.toObject(type.decode(bytes), { defaults: true });
    const requester = isRecord(decoded) ? decoded['requester'] : undefined;
    return typeof requester === 'string' && requester.length <= backupRequesterCharsMax ? requester : null;
  } catch {
    return null;
  }
}

/** BackupChunkBytes is one decoded chunk of a backup stream: the header's bytes (first chunk) or image bytes. */
export interface BackupChunkBytes {
  readonly header: Uint8Array;
  readonly data: Uint8Array;
}

/** encodeBackupChunk encodes one chunk of a backup stream. */
export function encodeBackupChunk(chunk: BackupChunkBytes): Uint8Array {
  const type = lookupMessage('cairn.peer.v1.BackupChunk');
  return type.encode(type.create({ header: chunk.header, data: chunk.data })).finish();
}

/** decodeBackupChunk decodes one chunk of a backup stream; null when the bytes are not a BackupChunk. */
export function decodeBackupChunk(bytes: Uint8Array): BackupChunkBytes | null {
  try {
    const type = lookupMessage('cairn.peer.v1.BackupChunk');
    const decoded: unknown = type.toObject(type.decode(bytes), { defaults: true });
    if (!isRecord(decoded)) return null;
    const { header, data } = decoded;
    if (!(header instanceof Uint8Array) || !(data instanceof Uint8Array)) return null;
    return { header, data };
  } catch {
    return null;
  }
}

// --- Checkpoints --------------------------------------------------------------------------------------------------

/** encodeCheckpointsRequest encodes the asking member's id. */
export function encodeCheckpointsRequest(memberId: string): Uint8Array {
  return encodeMemberRequest('cairn.peer.v1.CheckpointsRequest', memberId);
}

/** decodeCheckpointsRequest decodes and validates a CheckpointsRequest: the asking member; null when malformed. */
export function decodeCheckpointsRequest(bytes: Uint8Array): string | null {
  return decodeMemberRequest('cairn.peer.v1.CheckpointsRequest', bytes);
}

/** encodeCheckpointsResponse encodes a member's checkpoint digests. */
export function encodeCheckpointsResponse(answer: PeerCheckpoints): Uint8Array {
  const type = lookupMessage('cairn.peer.v1.CheckpointsResponse');
  const digests = answer.digests.map((digest) => ({ appliedIndex: digest.applied, records: digest.records, bytes: digest.bytes, sha256: Buffer.from(digest.sha256, 'hex') }));
  return type.encode(type.create({ memberId: answer.memberId, interval: answer.interval, digests })).finish();
}

/**
 * decodeCheckpointsResponse decodes and validates a member's checkpoint digests: a member id, safe integers, at most
 * peerCheckpointDigestsMax digests at distinct positive indexes, each sha256 exactly 32 bytes. Refused whole
 * (PeerDecodeError) otherwise: a half-read answer is never compared.
 */
export function decodeCheckpointsResponse(bytes: Uint8Array): Decoded<PeerCheckpoints> {
  try {
    const type = lookupMessage('cairn.peer.v1.CheckpointsResponse');
    const decoded = record(type.toObject(type.decode(bytes), { defaults: true, arrays: true }), 'CheckpointsResponse');
    const memberId = nodeIdAt(decoded, 'memberId', 'member_id');
    const interval = safeUint(decoded, 'interval', 'interval');
    const list = decoded['digests'];
    if (!Array.isArray(list)) invalid('digests', 'not a list');
    if (list.length > peerCheckpointDigestsMax) invalid('digests', `more than ${peerCheckpointDigestsMax} (${list.length})`);
    const digests: CheckpointDigest[] = [];
    const seen = new Set<number>();
    for (const [i, item] of list.entries()) {
      const field = `digests[${i}]`;
      const digest = record(item, field);
      const applied = safeUint(digest, 'appliedIndex', `${field}.applied_index`);
      if (applied === 0) invalid(`${field}.applied_index`, 'zero');
      if (seen.has(applied)) invalid(`${field}.applied_index`, `${applied} listed twice`);
      seen.add(applied);
      const sha = digest['sha256'];
      if (!(sha instanceof Uint8Array) || sha.length !== 32) invalid(`${field}.sha256`, 'not 32 bytes');
      digests.push({ applied, records: safeUint(digest, 'records', `${field}.records`), bytes: safeUint(digest, 'bytes', `${field}.bytes`), sha256: Buffer.from(sha).toString('hex') });
    }
    digests.sort((a, b) => b.applied - a.applied);
    return { ok: true, value: { memberId, interval, digests } };
  } catch (error) {
    return { ok: false, error: asDecodeError(error) };
  }
}
