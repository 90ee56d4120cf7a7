// http-prober: Nacos's HTTP checker (NACOS.md §4.1), with its bug fixed: `GET http://host:port<path>` with the
// configured headers (Nacos's `k:v|k2:v2`, parsed into a map by validation.ts), healthy when the status equals the
// cluster's `expectedResponseCode` (Nacos ignores it and only accepts 200; Cairn honours it, so a 204 health
// endpoint works). Connection refused fails at once; a timeout, another status or any other error is an ordinary
// failure.
//
// One undici Agent with keep-alive serves every probe: one connection per origin (a target is probed by one probe
// at a time), idle connections kept for keepAliveMs so the next probe reuses them, and the number of origins it
// holds bounded by the targets this member probes. Nacos #9474 (a shared pool capped at 20 made probes time out
// into false "unhealthy") cannot happen: pools are per origin and the scheduler bounds probes in flight.

import { Agent, request } from 'undici';
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
}

/** HttpProber sends GET requests through one keep-alive agent. */
export class HttpProber implements Prober {
  private readonly agent: Agent;

  constructor(options: HttpProberOptions = {}) {
    const keepAliveMs = options.keepAliveMs ?? HTTP_KEEP_ALIVE_MS;
    this.agent = new Agent({ connections: 1, pipelining: 1, keepAliveTimeout: keepAliveMs, keepAliveMaxTimeout: keepAliveMs });
  }

  /** probe requests the target's path and compares the status with the expected one. */
  async probe(target: ProbeTarget, timeoutMs: number): Promise<ProbeResult> {
    const started = process.hrtime.bigint();
    const checker = target.checker;
    if (checker.type !== 'HTTP') return { healthy: false, refused: false, latencyMs: 0, detail: `not an HTTP checker: ${checker.type}` };
    const url = `http://${bracketHost(target.host)}:${target.port}${checker.path === '' ? '/' : checker.path}`;
    try {
      const response = await request(url, {
        dispatcher: this.agent,
        method: 'GET',
        headers: { 'user-agent': HTTP_PROBE_USER_AGENT, ...checker.headers },
        signal: AbortSignal.timeout(timeoutMs),
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
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

  /** forget does nothing: an idle connection to a target that is no longer probed closes after keep-alive. */
  forget(_targetId: string): void {}

  /** close destroys the agent and its connections. */
  async close(): Promise<void> {
    await this.agent.destroy();
  }
}
