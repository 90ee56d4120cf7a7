// proto: loads Cairn's .proto files once (protobufjs reflection), so every codec shares one root.
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import protobuf from 'protobufjs';

/** protoRoot is the directory holding Cairn's .proto files. */
export const protoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../proto');

let root: protobuf.Root | null = null;

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
