// http-prober: Nacos's HTTP checker (NACOS.md §4.1), with its bug fixed: `GET http://host:port<path>` with the
// configured headers (Nacos's `k:v|k2:v2`, parsed into a map by validation.ts), healthy when the status equals the
// cluster's `expectedResponseCode` (Nacos ignores it and only accepts 200; Cairn honours it, so a 204 health
// endpoint works). Connection refused fails at once; a timeout, another status or any other error is an ordinary
// failure. A path's `#fragment` is not sent (URLs never carry one on the wire).
//
// Connections. One undici Agent with keep-alive holds one connection per origin (ip:port), idle between probes for
// keepAliveMs so the next probe reuses it, for at most connectionsHeldMax origins (limits.probeConnectionsHeldMax;
// undici's maxOrigins). A probe goes on a connection of its own, closed after its answer (the `overflow` agent,
// Connection: close), when
//   - its origin's kept connection is in use by another probe: several targets often share one origin (Dubbo
//     registers one service per interface on one ip:port; a cluster's checkPort with useInstancePort4Check=false
//     sends every instance of a host to one address). Before session 32 such probes queued on the one connection
//     while their timeout ran, so healthy targets answering in 1.5 s of a 2 s timeout timed out and flapped, and the
//     queueing inflated the latency that drives the adaptive interval. Now no probe waits for another: its timeout
//     and its latency cover its own exchange only (connect, request, answer);
//   - or the kept agent already holds connectionsHeldMax origins (undici refuses the dispatch at once, before any
//     byte is sent).
// Sockets open at once are therefore at most connectionsHeldMax kept ones plus one per probe in flight, which the
// scheduler bounds (limits.probeConcurrencyMax). Nacos #9474 (a shared pool capped at 20 made probes time out into
// false "unhealthy") cannot happen either: nothing is pooled across origins.
//
// Headers. A checker stored before the API refused headers a probe cannot send (validation.ts refusedProbeHeaders:
// Transfer-Encoding, Expect, ...) made every probe fail. Such headers are dropped, the rest sent; each probe that
// dropped some reports them (onHeadersDropped: a metric), and says whether it is the first for that checker (a log
// line once per stored checker, never per probe). The checker's own User-Agent, in any case, replaces Cairn's.

import { Agent, request, type Dispatcher } from 'undici';
import { limits } from '../limits.ts';
import type { Metadata } from '../naming/model.ts';
import { refusedProbeHeaders, type ProbeHeaderRefusal } from '../naming/validation.ts';
import { bracketHost, describeProbeError, elapsedMs, errorCodeOf, type ActiveChecker, type Prober, type ProbeResult, type ProbeTarget } from './probe.ts';

/** HTTP_PROBE_USER_AGENT identifies Cairn's probes in the targets' access logs. */
export const HTTP_PROBE_USER_AGENT = 'Cairn-Health-Check';

/** HTTP_KEEP_ALIVE_MS keeps an idle probe connection this long: longer than the largest probe interval, so it is reused. */
export const HTTP_KEEP_ALIVE_MS = 15_000;

/** HTTP_BODY_BYTES_MAX bounds what a probe reads of a response body before closing: status codes decide, bodies do not. */
export const HTTP_BODY_BYTES_MAX = 64 * 1024;

/** HeadersDroppedHook is told of the headers a probe dropped; `first` is true for the first probe of that checker. */
export type HeadersDroppedHook = (target: ProbeTarget, dropped: readonly ProbeHeaderRefusal[], first: boolean) => void;

/** HttpProberOptions configure the agent; tests shorten keep-alive. */
export interface HttpProberOptions {
  readonly keepAliveMs?: number;
  /** connectionsHeldMax: origins whose connection is kept between probes (default limits.probeConnectionsHeldMax). */
  readonly connectionsHeldMax?: number;
  /** onHeadersDropped is called for every probe that dropped headers it cannot send. */
  readonly onHeadersDropped?: HeadersDroppedHook;
}

/** SendableHeaders are a checker's headers as probes send them, with those dropped. */
interface SendableHeaders {
  readonly headers: Readonly<Record<string, string>>;
  readonly dropped: readonly ProbeHeaderRefusal[];
  /** reported is set once the first probe of the checker reported what it dropped. */
  reported: boolean;
}

/** HttpProber sends GET requests through one keep-alive agent; see the file comment. */
export class HttpProber implements Prober {
  private readonly agent: Agent;
  /** overflow carries the probes that do not use their origin's kept connection, each on a connection closed after it. */
  private readonly overflow: Agent;
  /** busyOrigins holds the origins whose kept connection a probe is using; at most one entry per probe in flight. */
  private readonly busyOrigins = new Set<string>();
  /** sendable caches each checker's headers as sent; weak, so it holds nothing a stored checker no longer does. */
  private readonly sendable = new WeakMap<ActiveChecker, SendableHeaders>();
  private readonly onHeadersDropped: HeadersDroppedHook | undefined;
  /** overflowProbes counts the probes that went through `overflow` (tests). */
  overflowProbes = 0;

  constructor(options: HttpProberOptions = {}) {
    const keepAliveMs = options.keepAliveMs ?? HTTP_KEEP_ALIVE_MS;
    const maxOrigins = options.connectionsHeldMax ?? limits.probeConnectionsHeldMax;
    this.agent = new Agent({ connections: 1, pipelining: 1, keepAliveTimeout: keepAliveMs, keepAliveMaxTimeout: keepAliveMs, maxOrigins });
    // No per-origin bound: each overflow probe opens a connection of its own (reset: true closes it after the answer),
    // so what is open here is bounded by the probes in flight, never queued behind another probe.
    this.overflow = new Agent({ pipelining: 1 });
    this.onHeadersDropped = options.onHeadersDropped;
  }

  /** probe requests the target's path and compares the status with the expected one. */
  async probe(target: ProbeTarget, timeoutMs: number): Promise<ProbeResult> {
    const started = process.hrtime.bigint();
    const checker = target.checker;
    if (checker.type !== 'HTTP') return { healthy: false, refused: false, latencyMs: 0, detail: `not an HTTP checker: ${checker.type}` };
    const origin = `http://${bracketHost(target.host)}:${target.port}`;
    const url = `${origin}${checker.path === '' ? '/' : checker.path}`;
    const headers = this.headersFor(target, checker.headers);
    // The kept connection serves one probe at a time; a probe that finds it busy takes a connection of its own.
    const kept = !this.busyOrigins.has(origin);
    if (kept) this.busyOrigins.add(origin);
    try {
      const response = await this.send(url, headers, timeoutMs, kept);
      // Draining lets the connection be reused; a body larger than the bound closes it instead.
      await response.body.dump({ limit: HTTP_BODY_BYTES_MAX });
      const healthy = response.statusCode === checker.expectedResponseCode;
      const detail = healthy ? `status ${response.statusCode}` : `status ${response.statusCode}, expected ${checker.expectedResponseCode}`;
      return { healthy, refused: false, latencyMs: elapsedMs(started), detail };
    } catch (error) {
      const refused = errorCodeOf(error) === 'ECONNREFUSED';
      const timedOut = error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError');
      const detail = timedOut ? `no answer within ${timeoutMs} ms` : `request failed: ${describeProbeError(error)}`;
      return { healthy: false, refused, latencyMs: elapsedMs(started), detail };
    } finally {
      if (kept) this.busyOrigins.delete(origin);
    }
  }

  /**
   * headersFor returns the headers a probe of `target` sends: Cairn's User-Agent unless the checker sets one, then the
   * checker's headers but those a probe cannot send, which it reports (see the file comment).
   */
  private headersFor(target: ProbeTarget, configured: Metadata): Readonly<Record<string, string>> {
    const checker = target.checker;
    let cached = this.sendable.get(checker);
    if (cached === undefined) {
      const dropped = refusedProbeHeaders(configured);
      const droppedNames = new Set(dropped.map((refusal) => refusal.name));
      const ownAgent = Object.keys(configured).some((name) => name.toLowerCase() === 'user-agent');
      const headers: Record<string, string> = ownAgent ? {} : { 'user-agent': HTTP_PROBE_USER_AGENT };
      for (const [name, value] of Object.entries(configured)) if (!droppedNames.has(name)) headers[name] = value;
      cached = { headers: Object.freeze(headers), dropped: Object.freeze(dropped), reported: false };
      this.sendable.set(checker, cached);
    }
    if (cached.dropped.length > 0 && this.onHeadersDropped !== undefined) {
      const first = !cached.reported;
      cached.reported = true;
      this.onHeadersDropped(target, cached.dropped, first);
    }
    return cached.headers;
  }

  /**
   * send GETs `url`: on the origin's kept connection when `kept`, else (or when the kept agent already holds
   * connectionsHeldMax origins) on a connection of its own closed after the answer. The timeout starts here: no probe
   * waits for another before it.
   */
  private async send(url: string, headers: Readonly<Record<string, string>>, timeoutMs: number, kept: boolean): Promise<Dispatcher.ResponseData> {
    const options = {
      method: 'GET' as const,
      headers,
      signal: AbortSignal.timeout(timeoutMs),
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    };
    if (kept) {
      try {
        return await request(url, { ...options, dispatcher: this.agent });
      } catch (error) {
        if (errorCodeOf(error) !== 'UND_ERR_MAX_ORIGINS_REACHED') throw error;
      }
    }
    this.overflowProbes++;
    return await request(url, { ...options, dispatcher: this.overflow, reset: true });
  }

  /** forget does nothing: an idle connection to a target that is no longer probed closes after keep-alive. */
  forget(_targetId: string): void {}

  /** close destroys the agent and its connections. */
  async close(): Promise<void> {
    await Promise.all([this.agent.destroy(), this.overflow.destroy()]);
  }
}
