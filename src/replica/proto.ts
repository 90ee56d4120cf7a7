// proto: loads Cairn's .proto files once (protobufjs reflection), so every codec shares one root.
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import protobuf from 'protobufjs';

/** protoRoot is the directory holding Cairn's .proto files. */
export const protoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../proto');

let root: protobuf.Root | null = null;

// Flat strings. protobufjs 8 reads every proto3 string field through Reader#stringVerify (strict UTF-8), which
// builds a string shorter than 64 bytes eight characters at a time. V8 keeps such a string as a rope: a 40-character
// metadata value becomes five 8-character strings under four cons cells, ~250 bytes instead of ~56, for as long as
// the decoded value lives, and the registry keeps what it decodes (instances restored from the keyspace or a snapshot,
// instances applied from the log: ~600 bytes per instance of the bench's record, bench/README.md "Memory"). The
// replacement below reads the same bytes into one flat string: ASCII through node's latin1 slice, anything else
// through a fatal TextDecoder, which protobufjs itself uses for the rest of a string from its first non-ASCII byte
// and for every string of 64 bytes or more. So it accepts and rejects exactly what protobufjs does, with the same
// errors (test/replica/proto.test.ts compares both on random bytes). It is installed once, when this module loads,
// before any Cairn message is decoded; gRPC's own decoding (proto-loader) uses protobufjs 7, which is not touched.

/** ReaderInternals is the part of protobufjs 8's Reader that stringVerify uses (pinned by test/replica/proto.test.ts). */
interface ReaderInternals {
  buf: Uint8Array;
  pos: number;
  len: number;
  size(): number;
  stringVerify?: () => string;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
/** Latin1Slicing is node's Buffer#latin1Slice (untyped in @types/node); it reads any Uint8Array, one byte per character. */
interface Latin1Slicing {
  latin1Slice(this: Uint8Array, start: number, end: number): string;
}
const latin1Slice = (Buffer.prototype as unknown as Latin1Slicing).latin1Slice;
/**
 * protobufjs's own strict reader, for short strings: V8 concatenates strings shorter than 13 characters into flat
 * strings, and protobufjs's 8-character steps make at most one such concatenation below that length.
 */
const readStrictShort = (protobuf.util as unknown as { utf8: { readStrict(buf: Uint8Array, start: number, end: number): string } }).utf8.readStrict;
const flatConcatCharsMax = 12;

/** readFlatStrictUtf8 decodes bytes [start, end) as strict UTF-8 into one flat string (throws a TypeError on bad UTF-8). */
export function readFlatStrictUtf8(buf: Uint8Array, start: number, end: number): string {
  if (end - start <= flatConcatCharsMax) return readStrictShort(buf, start, end);
  for (let i = start; i < end; i++) {
    if ((buf[i] as number) >= 0x80) return strictUtf8.decode(buf.subarray(start, end));
  }
  // ASCII: one byte per character, so latin1 gives the same text, in one native copy.
  return latin1Slice.call(buf, start, end);
}

function installFlatStrings(): void {
  const prototype = protobuf.Reader.prototype as unknown as ReaderInternals;
  if (typeof prototype.stringVerify !== 'function') throw new Error('protobufjs no longer has Reader#stringVerify, which proto.ts replaces');
  prototype.stringVerify = function stringVerifyFlat(this: ReaderInternals): string {
    const length = this.size();
    const start = this.pos;
    const end = start + length;
    if (end > this.len) throw new RangeError(`index out of range: ${this.pos} + ${length || 1} > ${this.len}`);
    this.pos = end;
    return readFlatStrictUtf8(this.buf, start, end);
  };
}
installFlatStrings();

/** loadProtoRoot returns the shared protobufjs Root with every Cairn .proto file loaded. */
export function loadProtoRoot(): protobuf.Root {
  if (root === null) {
    const loaded = new protobuf.Root();
    loaded.resolvePath = (_origin, target) => (path.isAbsolute(target) ? target : path.join(protoRoot, target));
    loaded.loadSync(['cairn/peer/v1/log.proto', 'cairn/peer/v1/peer.proto', 'cairn/cp/v1/commands.proto'], { keepCase: false });
    loaded.resolveAll();
    root = loaded;
  }
  return root;
}

/** lookupMessage returns a message type by its full name, e.g. "cairn.peer.v1.Entry". */
export function lookupMessage(name: string): protobuf.Type {
  return loadProtoRoot().lookupType(name);
}

// One writer reused by every encodeReusing call. protobufjs 8's Writer starts each message in a 128-byte buffer
// that it doubles as the message grows (a ~900-byte record allocated 128 + 256 + 512 + 1024 bytes before the final
// copy), and those allocations refilled node's 8 KiB Buffer pool so often that creating pools was ~10% of a
// register's CPU (bench/request-path.ts profile). The shared writer keeps its grown buffer; each call rewinds it,
// writes, and copies out exactly the message's bytes. Encoding is synchronous, so calls cannot interleave; a call made
// while the writer is in use (a nested encode) gets a fresh writer, and a call that throws leaves a writer that the
// next call rewinds. Bounded: the writer is dropped after a message above reusedWriterBytesMax, so one large message
// does not pin its size for the life of the process.
const reusedWriterBytesMax = 64 * 1024;
let reusedWriter: protobuf.Writer | null = null;

/** WriterState is the part of protobufjs 8's Writer that rewinding touches (test/replica/proto.test.ts pins it). */
interface WriterState {
  pos: number;
  states?: number[] | null;
}

function rewoundWriter(): protobuf.Writer {
  let writer = reusedWriter;
  if (writer === null) {
    writer = protobuf.Writer.create();
    reusedWriter = writer;
  }
  const state = writer as unknown as WriterState;
  state.pos = 0;
  if (state.states !== undefined && state.states !== null) state.states.length = 0;
  return writer;
}

function finishReused(writer: protobuf.Writer): Uint8Array {
  const bytes = writer.finish();
  if (bytes.length > reusedWriterBytesMax) reusedWriter = null;
  return bytes;
}

// reusedWriterBusy is set while the shared writer is being written: a nested call (an encoder that itself encodes
// a message through this file, today none does) gets a fresh writer instead of rewinding the one in use.
let reusedWriterBusy = false;

/** encodeReusing encodes `message` as `type`: exactly type.encode(message).finish()'s bytes, through the shared writer. */
export function encodeReusing(type: protobuf.Type, message: object): Uint8Array {
  return encodeWithWriter((writer) => {
    type.encode(message, writer);
  });
}

/** encodeWithWriter runs `write` on the shared writer, rewound, and returns a copy of what it wrote. */
export function encodeWithWriter(write: (writer: protobuf.Writer) => void): Uint8Array {
  if (reusedWriterBusy) {
    const fresh = protobuf.Writer.create();
    write(fresh);
    return fresh.finish();
  }
  reusedWriterBusy = true;
  try {
    const writer = rewoundWriter();
    write(writer);
    return finishReused(writer);
  } finally {
    reusedWriterBusy = false;
  }
}
