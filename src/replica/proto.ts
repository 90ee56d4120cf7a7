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
