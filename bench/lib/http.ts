// HTTP for the bench: one undici Agent per target (keep-alive connections, one per concurrent client), used alike
// for Cairn's Nacos API and etcd's JSON gateway, so both HTTP rows pay the same client costs. Every address must be
// loopback: the bench never sends traffic outside 127.0.0.0/8.
import { Agent, request } from 'undici';

/** HttpAnswer is a response: status and body text. */
export interface HttpAnswer {
  readonly status: number;
  readonly text: string;
}

/** assertLoopback refuses any host outside 127.0.0.0/8. */
export function assertLoopback(hostPort: string): void {
  if (!/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}:\d+$/.test(hostPort)) throw new Error(`bench: refusing non-loopback address ${hostPort}`);
}

/** HttpTarget sends requests to one host:port over its own connection pool. */
export class HttpTarget {
  private readonly agent: Agent;
  private readonly origin: string;

  constructor(readonly hostPort: string, connections: number, private readonly timeoutMs = 10_000) {
    assertLoopback(hostPort);
    this.origin = `http://${hostPort}`;
    this.agent = new Agent({ connections: Math.max(1, connections), pipelining: 1, keepAliveTimeout: 30_000 });
  }

  /** send makes one request and resolves with the status and body (it never rejects on a status). */
  async send(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: string): Promise<HttpAnswer> {
    const response = await request(`${this.origin}${path}`, {
      method,
      dispatcher: this.agent,
      headersTimeout: this.timeoutMs,
      bodyTimeout: this.timeoutMs,
      ...(body === undefined ? {} : { body, headers: { 'content-type': 'application/json' } }),
    });
    const text = await response.body.text();
    return { status: response.statusCode, text };
  }

  /** json sends a JSON body (etcd's gateway) and parses the JSON answer; a non-200 status rejects. */
  async json(path: string, body: object): Promise<Record<string, unknown>> {
    const answer = await this.send('POST', path, JSON.stringify(body));
    if (answer.status !== 200) throw new Error(`HTTP ${answer.status} ${path}: ${answer.text.slice(0, 200)}`);
    const parsed: unknown = JSON.parse(answer.text);
    if (typeof parsed !== 'object' || parsed === null) throw new Error(`${path}: not a JSON object`);
    return parsed as Record<string, unknown>;
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}
