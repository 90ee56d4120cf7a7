// http-prober: Nacos's HTTP checker (NACOS.md §4.1), with its bug fixed: `GET http://host:port<path>` with the
// configured headers (Nacos's `k:v|k2:v2`, parsed into a map by validation.ts), healthy when the status equals the
// cluster's `expectedResponseCode` (Nacos ignores it and only accepts 200; Cairn honours it, so a 204 health
// endpoint works). Connection refused fails at once; a timeout, another status or any other error is an ordinary
// failure.
//
// One undici Agent with keep-alive serves the probes: one connection per origin (a target is probed by one probe
// at a time), idle connections kept for keepAliveMs so the next probe reuses them, for at most connectionsHeldMax
// origins (limits.probeConnectionsHeldMax; undici's maxOrigins). A probe to an origin beyond them goes through a
// second agent on a connection closed after its answer, so what stays open is bounded whatever the targets. Nacos #9474 (a shared pool capped at 20 made probes time out
// into false "unhealthy") cannot happen: pools are per origin and the scheduler bounds probes in flight.

import { Agent, request, type Dispatcher } from 'undici';
import { limits } from '../limits.ts';
import { bracketHost, describeProbeError, elapsedMs, errorCodeOf, type Prober, type ProbeResult, type ProbeTarget } from './probe.ts';

/** HTTP_PROBE_USER_AGENT identifies Cairn's probes in the targets' access logs. */
export const HTTP_PROBE_USER_AGENT = 'Cairn-Health-Check';

/** HTTP_KEEP_ALIVE_MS keeps an idle probe connection this long: longer than the largest probe interval, so it is reused. */
export const HTTP_KEEP_ALIVE_MS = 15_000;

/** HTTP_BODY_BYTES_MAX bounds what a probe reads of a response body before closing: status codes decide, bodies do not. */
export const HTTP_BODY_BYTES_MAX = 64 * 1024;

/** HttpProberOptions configure the agent; tests shorten keep-alive. */
export interface HttpProberOptions {
  readonly keepAliveMs?: number;
  /** connectionsHeldMax: origins whose connection is kept between probes (default limits.probeConnectionsHeldMax). */
  readonly connectionsHeldMax?: number;
}

/** HttpProber sends GET requests through one keep-alive agent. */
export class HttpProber implements Prober {
  private readonly agent: Agent;
  /** overflow carries the probes to origins beyond the held ones, one connection per probe. */
  private readonly overflow: Agent;
  /** overflowProbes counts the probes that went through `overflow` (tests). */
  overflowProbes = 0;

  constructor(options: HttpProberOptions = {}) {
    const keepAliveMs = options.keepAliveMs ?? HTTP_KEEP_ALIVE_MS;
    const maxOrigins = options.connectionsHeldMax ?? limits.probeConnectionsHeldMax;
    this.agent = new Agent({ connections: 1, pipelining: 1, keepAliveTimeout: keepAliveMs, keepAliveMaxTimeout: keepAliveMs, maxOrigins });
    this.overflow = new Agent({ connections: 1, pipelining: 1 });
  }

  /** probe requests the target's path and compares the status with the expected one. */
  async probe(target: ProbeTarget, timeoutMs: number): Promise<ProbeResult> {
    const started = process.hrtime.bigint();
    const checker = target.checker;
    if (checker.type !== 'HTTP') return { healthy: false, refused: false, latencyMs: 0, detail: `not an HTTP checker: ${checker.type}` };
    const url = `http://${bracketHost(target.host)}:${target.port}${checker.path === '' ? '/' : checker.path}`;
    try {
      const response = await this.send(url, checker.headers, timeoutMs);
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
    }
  }

  /**
   * send GETs `url` on the origin's kept connection; when the kept agent already holds connectionsHeldMax origins
   * (undici refuses the dispatch at once, before any byte is sent), on a connection of its own closed after the
   * answer (Connection: close).
   */
  private async send(url: string, headers: Readonly<Record<string, string>>, timeoutMs: number): Promise<Dispatcher.ResponseData> {
    const options = {
      method: 'GET' as const,
      headers: { 'user-agent': HTTP_PROBE_USER_AGENT, ...headers },
      signal: AbortSignal.timeout(timeoutMs),
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    };
    try {
      return await request(url, { ...options, dispatcher: this.agent });
    } catch (error) {
      if (errorCodeOf(error) !== 'UND_ERR_MAX_ORIGINS_REACHED') throw error;
      this.overflowProbes++;
      return await request(url, { ...options, dispatcher: this.overflow, reset: true });
    }
  }

  /** forget does nothing: an idle connection to a target that is no longer probed closes after keep-alive. */
  forget(_targetId: string): void {}

  /** close destroys the agent and its connections. */
  async close(): Promise<void> {
    await Promise.all([this.agent.destroy(), this.overflow.destroy()]);
  }
}
