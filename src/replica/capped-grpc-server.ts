// capped-grpc-server: a grpc-js Server whose port takes a bounded number of open connections. grpc-js bounds the
// calls of one connection (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS) but not the connections: without a bound anyone
// who reaches a port could open connections until the member ran out of file descriptors or memory. Both gRPC ports
// use it, the client port (src/api/grpc/server.ts) and the peer port (grpc-transport.ts); it lives here because
// replica/ may not import api/ (DESIGN.md, the lint's layering rule), while api/ may import replica/.
//
// listenCapped() listens with net.Servers of our own where bindAsync would have: every address the host resolves to
// (an IP literal is itself), port 0 picking one free port for all of them, success when at least one is bound, and a
// failure to bind any reported with grpc-js's own text ("No address added out of total 1 resolved errors: [listen
// EADDRINUSE: ...]"), so the member's report of a bind failure (src/member.ts `listening`) is unchanged. Each accepted
// socket is handed to grpc-js through its connection injector (Server.createConnectionInjector): the HTTP/2 session
// is the server's own, with its keepalive, stream bound, message sizes and shutdown. A connection accepted while
// `connectionsMax` are open is closed at once, before a byte of it is read, counted (`onRefused`, a metric) and
// logged: at most one line per `refusalLogIntervalMs`, saying how many were refused since the last line.
//
// tryShutdown() and forceShutdown() close the listeners first (the port is released and no connection arrives after
// the shutdown began), then do what grpc-js does: the injected sessions are the server's, so tryShutdown lets their
// calls finish; forceShutdown also destroys the connections itself, since grpc-js's does not when channelz is off.
import { promises as dns } from 'node:dns';
import net from 'node:net';
import { Server, ServerCredentials, type ConnectionInjector, type ServerOptions } from '@grpc/grpc-js';
import { assert } from '../assert.ts';
import { monotonicMs } from '../clock.ts';

/** ConnectionCapLogger is the logging the cap needs; a pino logger fits it. */
export interface ConnectionCapLogger {
  warn(object: object, message: string): void;
}

/** ConnectionCap says how many connections a port takes at once and what happens to one more. */
export interface ConnectionCap {
  /** listener names the port in log lines: 'gRPC', 'peer'. */
  readonly listener: string;
  /** connectionsMax is the most connections open at once; one accepted beyond it is closed at once. */
  readonly connectionsMax: number;
  /** refusalLogIntervalMs is the shortest time between two log lines about refused connections. */
  readonly refusalLogIntervalMs: number;
  /** onRefused is called once per refused connection (a metric). */
  readonly onRefused?: () => void;
  /** logger receives the rate-limited warning; default: none. */
  readonly logger?: ConnectionCapLogger;
}

/** ListenAddress is one address the listeners bind: a resolved host and its port (0: any free one). */
interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

/** unbracketed strips the brackets of an IPv6 literal written as in a URL ("[::1]" -> "::1"). */
function unbracketed(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

/** resolveListenHosts lists the addresses to bind for `host`, as grpc-js's DNS resolver does (dns.lookup, every family). */
async function resolveListenHosts(host: string): Promise<string[]> {
  if (net.isIP(host) !== 0) return [host];
  let resolved: Array<{ address: string }>;
  try {
    resolved = await dns.lookup(host, { all: true });
  } catch (error) {
    throw new Error(`Name resolution failed for ${host}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  if (resolved.length === 0) throw new Error(`No addresses resolved for ${host}`);
  return resolved.map((entry) => entry.address);
}

/**
 * CappedGrpcServer is a grpc-js Server that listens through listenCapped() (never bindAsync) with a bound on its open
 * connections. Invariants: 0 <= openConnections <= cap.connectionsMax; once closing, no listener is open. Its own
 * state is in #private fields, which cannot collide with the fields grpc-js's compiled Server keeps on `this`.
 */
export class CappedGrpcServer extends Server {
  readonly #cap: ConnectionCap;
  readonly #listeners: net.Server[] = [];
  #injector: ConnectionInjector | null = null;
  /** sockets are the connections handed to grpc-js and still open (at most connectionsMax), for forceShutdown. */
  readonly #sockets = new Set<net.Socket>();
  #open = 0;
  #refusedTotal = 0;
  /** refusedUnlogged counts the refusals since the last log line; logTimer reports them when the interval ends. */
  #refusedUnlogged = 0;
  #lastLogMs = Number.NEGATIVE_INFINITY;
  #logTimer: NodeJS.Timeout | null = null;
  #closing = false;

  constructor(options: ServerOptions, cap: ConnectionCap) {
    super(options);
    assert(Number.isSafeInteger(cap.connectionsMax) && cap.connectionsMax >= 1, `${cap.listener}: connectionsMax must be a positive integer`);
    assert(cap.refusalLogIntervalMs > 0, `${cap.listener}: refusalLogIntervalMs must be positive`);
    this.#cap = cap;
  }

  /** openConnections is the number of accepted connections not yet closed. */
  get openConnections(): number {
    return this.#open;
  }

  /** refusedConnections is the number of connections closed at once because connectionsMax were open. */
  get refusedConnections(): number {
    return this.#refusedTotal;
  }

  /**
   * listenCapped listens on host:port (port 0: a free port) and resolves with the bound port; it rejects, with
   * grpc-js's text and every system error (EADDRINUSE...), when no address of the host could be bound.
   */
  async listenCapped(host: string, port: number): Promise<number> {
    assert(this.#injector === null, `${this.#cap.listener}: listenCapped() called twice`);
    if (this.#closing) throw new Error('listen called after shutdown');
    this.#injector = this.createConnectionInjector(ServerCredentials.createInsecure());
    const hosts = await resolveListenHosts(unbracketed(host));
    const { bound, errors } = await this.#listenAll(hosts.map((resolved) => ({ host: resolved, port })));
    if (this.#closing) {
      for (const listener of bound) listener.close();
      throw new Error('listen cancelled by shutdown');
    }
    if (bound.length === 0) throw new Error(`No address added out of total ${hosts.length} resolved errors: [${errors.join(',')}]`);
    if (bound.length < hosts.length) {
      this.#cap.logger?.warn({ listener: this.#cap.listener, bound: bound.length, resolved: hosts.length, errors }, `the ${this.#cap.listener} listener bound only some addresses of its host`);
    }
    const address = bound[0]?.address();
    assert(address !== null && address !== undefined && typeof address === 'object', 'a bound listener has an address');
    return address.port;
  }

  /**
   * listenAll binds every address, as grpc-js's bindManyPorts does: on port 0 the first address that binds picks the
   * port and the others take the same one; otherwise all at once.
   */
  async #listenAll(addresses: readonly ListenAddress[]): Promise<{ bound: net.Server[]; errors: string[] }> {
    const [first, ...rest] = addresses;
    if (first === undefined) return { bound: [], errors: [] };
    if (first.port !== 0) {
      const results = await Promise.all(addresses.map((address) => this.#listenOne(address)));
      return { bound: results.filter((result): result is net.Server => typeof result !== 'string'), errors: results.filter((result): result is string => typeof result === 'string') };
    }
    const firstResult = await this.#listenOne(first);
    if (typeof firstResult === 'string') {
      const others = await this.#listenAll(rest);
      return { bound: others.bound, errors: [firstResult, ...others.errors] };
    }
    const address = firstResult.address();
    assert(address !== null && typeof address === 'object', 'a bound listener has an address');
    const others = await Promise.all(rest.map((other) => this.#listenOne({ host: other.host, port: address.port })));
    return {
      bound: [firstResult, ...others.filter((result): result is net.Server => typeof result !== 'string')],
      errors: others.filter((result): result is string => typeof result === 'string'),
    };
  }

  /** listenOne binds one address: its listener, or the system's reason it could not be bound. */
  #listenOne(address: ListenAddress): Promise<net.Server | string> {
    const listener = net.createServer((socket) => this.#accept(socket));
    return new Promise((resolve) => {
      const failed = (error: Error): void => resolve(error.message);
      listener.once('error', failed);
      listener.listen({ host: address.host, port: address.port }, () => {
        listener.off('error', failed);
        // A listener's later errors (none are expected once it listens) must not crash the member.
        listener.on('error', (error) => this.#cap.logger?.warn({ listener: this.#cap.listener, err: error }, `the ${this.#cap.listener} listener failed`));
        this.#listeners.push(listener);
        resolve(listener);
      });
    });
  }

  /** accept hands a new connection to grpc-js, or closes it at once when connectionsMax are open. */
  #accept(socket: net.Socket): void {
    const injector = this.#injector;
    if (injector === null || this.#closing || this.#open >= this.#cap.connectionsMax) {
      socket.on('error', () => undefined);
      socket.destroy();
      if (!this.#closing) this.#refuse();
      return;
    }
    this.#open++;
    this.#sockets.add(socket);
    socket.once('close', () => {
      this.#open--;
      this.#sockets.delete(socket);
      assert(this.#open >= 0, `${this.#cap.listener}: more connections closed than accepted`);
    });
    injector.injectConnection(socket);
  }

  /** refuse counts a refused connection and logs it, at most once per refusalLogIntervalMs (the rest at its end). */
  #refuse(): void {
    this.#refusedTotal++;
    this.#refusedUnlogged++;
    this.#cap.onRefused?.();
    const sinceLogMs = monotonicMs() - this.#lastLogMs;
    if (sinceLogMs >= this.#cap.refusalLogIntervalMs) {
      this.#logRefusals();
    } else if (this.#logTimer === null) {
      this.#logTimer = setTimeout(() => this.#logRefusals(), this.#cap.refusalLogIntervalMs - sinceLogMs);
      this.#logTimer.unref();
    }
  }

  #logRefusals(): void {
    if (this.#logTimer !== null) clearTimeout(this.#logTimer);
    this.#logTimer = null;
    if (this.#refusedUnlogged === 0) return;
    const { listener, connectionsMax, refusalLogIntervalMs } = this.#cap;
    this.#cap.logger?.warn(
      { listener, refused: this.#refusedUnlogged, refusedTotal: this.#refusedTotal, open: this.#open, connectionsMax, logIntervalMs: refusalLogIntervalMs },
      `the ${listener} port refused new connections: ${connectionsMax} are open, its bound`,
    );
    this.#refusedUnlogged = 0;
    this.#lastLogMs = monotonicMs();
  }

  /** closeListeners stops accepting (releasing the port) and reports refusals not logged yet. */
  #closeListeners(): void {
    if (this.#closing) return;
    this.#closing = true;
    for (const listener of this.#listeners) listener.close();
    this.#listeners.length = 0;
    this.#logRefusals();
  }

  /** tryShutdown closes the listeners, then shuts down as grpc-js does: calls in flight may finish. */
  override tryShutdown(callback: (error?: Error) => void): void {
    this.#closeListeners();
    super.tryShutdown(callback);
  }

  /**
   * forceShutdown closes the listeners, shuts down as grpc-js does, then destroys every connection it was handed, so
   * calls in flight are cancelled: with channelz off, grpc-js 1.14's forceShutdown does not destroy the sessions (it
   * keeps them in its map only when channelz is on), and a call held past the grace went on to its client's deadline.
   */
  override forceShutdown(): void {
    this.#closeListeners();
    super.forceShutdown();
    for (const socket of this.#sockets) socket.destroy();
    this.#sockets.clear();
  }
}
