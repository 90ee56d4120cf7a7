// Source addresses of peer connections.
//
// A member talks to its peers from its own address (its --addr host), not from whatever address the kernel picks:
// on a multi-homed host a peer sees connections come from the member's identity, and network partitions expressed
// as rules between member addresses (firewalls, the tests' iptables rules) cut exactly the links they name. On the
// loopback network the kernel would otherwise pick 127.0.0.1 for every member.
//
// @grpc/grpc-js opens its TCP connections with `net.connect({host, port})` and has no option for a local address,
// so this module wraps `net.connect` once per process: a connection to a registered peer endpoint gets the
// registered local address; every other connection is left exactly as it was.
import net from 'node:net';
import { limits } from '../limits.ts';


const sourceAddressByEndpoint = new Map<string, string>();
let installed = false;

/** bindPeerSource makes connections to `endpoint` ("host:port") leave from `localAddress` (a specific IP). */
export function bindPeerSource(endpoint: string, localAddress: string): void {
  if (net.isIP(localAddress) === 0 || localAddress === '0.0.0.0' || localAddress === '::') return;
  if (!sourceAddressByEndpoint.has(endpoint) && sourceAddressByEndpoint.size >= limits.peerSourceEndpointsMax) return;
  sourceAddressByEndpoint.set(endpoint, localAddress);
  install();
}

/** unbindPeerSource forgets `endpoint`. */
export function unbindPeerSource(endpoint: string): void {
  sourceAddressByEndpoint.delete(endpoint);
}

function install(): void {
  if (installed) return;
  installed = true;
  const original = net.connect;
  const patched = function connectFromSource(this: unknown, ...args: unknown[]): net.Socket {
    const [first] = args;
    if (typeof first === 'object' && first !== null && !('localAddress' in first) && 'host' in first && 'port' in first) {
      const { host, port } = first as { host: unknown; port: unknown };
      const local = typeof host === 'string' ? sourceAddressByEndpoint.get(`${host}:${String(port)}`) : undefined;
      if (local !== undefined && net.isIP(host as string) === net.isIP(local)) args[0] = { ...first, localAddress: local };
    }
    return Reflect.apply(original, this, args) as net.Socket;
  };
  Reflect.set(net, 'connect', patched);
  Reflect.set(net, 'createConnection', patched);
}
