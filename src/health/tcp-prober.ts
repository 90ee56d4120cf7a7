// tcp-prober: Nacos's TCP checker (NACOS.md §4.1): healthy when a TCP connection to the target completes within the
// timeout. "Connection refused" (ECONNREFUSED: nothing listens) is a refusal, which flips health at once; a timeout
// or any other error is an ordinary failure.
//
// The connection is closed with a reset (resetAndDestroy), not a FIN: a probe sends no data, and a reset leaves no
// TIME_WAIT socket behind on either side. With thousands of targets probed every few seconds, FIN-closed probes
// pile up tens of thousands of TIME_WAIT sockets (Nacos #11230). Nothing is kept per target.

import net from 'node:net';
import { describeProbeError, elapsedMs, errorCodeOf, type Prober, type ProbeResult, type ProbeTarget } from './probe.ts';

/** TcpProber connects to the target and closes at once. */
export class TcpProber implements Prober {
  private readonly inFlight = new Set<net.Socket>();

  /** probe connects to target.host:target.port within timeoutMs. */
  probe(target: ProbeTarget, timeoutMs: number): Promise<ProbeResult> {
    const started = process.hrtime.bigint();
    return new Promise<ProbeResult>((resolve) => {
      const socket = net.connect({ host: target.host, port: target.port });
      this.inFlight.add(socket);
      let settled = false;
      const finish = (healthy: boolean, refused: boolean, detail: string): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.inFlight.delete(socket);
        socket.removeAllListeners('connect');
        // Errors after the verdict (a reset racing the close) must not become unhandled 'error' events.
        socket.on('error', () => undefined);
        if (socket.readyState === 'open') socket.resetAndDestroy();
        else socket.destroy();
        resolve({ healthy, refused, latencyMs: elapsedMs(started), detail });
      };
      const timer = setTimeout(() => finish(false, false, `connect timed out after ${timeoutMs} ms`), timeoutMs);
      socket.once('connect', () => finish(true, false, 'connected'));
      socket.once('error', (error) => {
        const refused = errorCodeOf(error) === 'ECONNREFUSED';
        finish(false, refused, `connect failed: ${describeProbeError(error)}`);
      });
      socket.once('close', () => finish(false, false, 'closed before connecting'));
    });
  }

  /** forget does nothing: TCP probes keep nothing per target. */
  forget(_targetId: string): void {}

  /** close destroys the connections of probes in flight (they resolve as failures). */
  async close(): Promise<void> {
    for (const socket of [...this.inFlight]) socket.destroy(new Error('the prober is closing'));
  }
}
