// sockets: raw TCP probes for tests of what a listener does with a connection before any protocol is spoken.

import net from 'node:net';

/**
 * closedWithin opens a raw TCP connection to host:port and resolves with whether the server closed it within `ms`
 * (false: still open then, and closed by us); it rejects when the connection was not even accepted.
 */
export function closedWithin(host: string, port: number, ms: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    let connected = false;
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(false);
    }, ms);
    socket.once('connect', () => (connected = true));
    socket.on('error', () => undefined);
    socket.once('close', () => {
      clearTimeout(timer);
      if (connected) resolve(true);
      else reject(new Error('the connection was not even accepted'));
    });
  });
}
