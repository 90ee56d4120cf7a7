// udp-push: Nacos v1's UDP push (reference/NACOS.md §2) as a subscriber transport of the subscription hub.
//
// A GET /nacos/v1/ns/instance/list with udpPort > 0 registers (or refreshes) a push target keyed by (service,
// clusters, the SOURCE address of the HTTP request, udpPort): never the `clientIP` parameter, which clients fill
// with an interface address that is often unreachable (DESIGN.md, docs/nacos-compatibility.md). A target expires
// udpPushTargetExpiryMs after its last list. On a change, the hub offers the target's snapshot (its clusters,
// healthyOnly false, as Nacos pushes); the packet is `{"type":"dom","data":"<list JSON as a string>","lastRefTime":N}`,
// gzipped when it is 1024 bytes or more, never sent when larger than udpPacketBytesMax (counted). The client acks
// `{"type":"push-ack","lastRefTime":N}` (N a number or a string) from the receiving socket; an unacknowledged push
// is sent again once after udpPushAckTimeoutMs, then given up (counted). A newer push to a target replaces an
// unacknowledged one. Clients also poll, so a lost push only delays.
//
// The socket binds the member's host (never 0.0.0.0) on a free port; acks arrive on it.

import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { isIP } from 'node:net';
import { gunzipSync, gzipSync } from 'node:zlib';
import type { CairnError } from '../errors.ts';
import { limits as defaultLimits, type Limits } from '../limits.ts';
import { groupedName, type ServiceKey } from './model.ts';
import type { InstanceList } from './naming-service.ts';
import { noPushMetrics, type PushMetrics } from './push-metrics.ts';
import type { Snapshot, Subscription, SubscriptionHub } from './subscriptions.ts';
import { monotonicMs } from '../clock.ts';

/** gzipThresholdBytes is the size from which Nacos gzips a push packet (PushService: >= 1024 bytes). */
export const gzipThresholdBytes = 1024;

const lastRefTimeModulus = 2n ** 52n;

/** encodePushPacket builds a push packet around `data` (the list JSON), gzipped from gzipThresholdBytes on. */
export function encodePushPacket(data: string, lastRefTime: number): Buffer {
  const bytes = Buffer.from(JSON.stringify({ type: 'dom', data, lastRefTime }), 'utf8');
  return bytes.length >= gzipThresholdBytes ? gzipSync(bytes) : bytes;
}

function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** PushPacket is a decoded push packet (tests and tools; clients decode it so). */
export interface PushPacket {
  readonly type: string;
  readonly data: string;
  readonly lastRefTime: number;
  readonly gzipped: boolean;
}

/** decodePushPacket reads a push packet as a client does: gunzip by magic, then JSON; throws when malformed. */
export function decodePushPacket(bytes: Uint8Array, bytesMax: number = defaultLimits.udpPacketBytesMax): PushPacket {
  const gzipped = isGzip(bytes);
  const text = (gzipped ? gunzipSync(bytes, { maxOutputLength: 16 * bytesMax }) : Buffer.from(bytes)).toString('utf8');
  const value = JSON.parse(text) as { type?: unknown; data?: unknown; lastRefTime?: unknown };
  if (typeof value.type !== 'string' || typeof value.data !== 'string' || typeof value.lastRefTime !== 'number') throw new Error('not a push packet');
  return { type: value.type, data: value.data, lastRefTime: value.lastRefTime, gzipped };
}

/**
 * decodeAck reads a client's acknowledgement: `{"type":"push-ack","lastRefTime":N}` with N a safe non-negative
 * integer or a string of digits (Java sends a string, Node a number), plain or gzipped. Anything else is null.
 */
export function decodeAck(bytes: Uint8Array, bytesMax: number = defaultLimits.udpPacketBytesMax): { readonly lastRefTime: number } | null {
  let value: unknown;
  try {
    const text = (isGzip(bytes) ? gunzipSync(bytes, { maxOutputLength: bytesMax }) : Buffer.from(bytes)).toString('utf8');
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
  const { type, lastRefTime } = value as { type?: unknown; lastRefTime?: unknown };
  if (type !== 'push-ack') return null;
  const number = typeof lastRefTime === 'number' ? lastRefTime : typeof lastRefTime === 'string' && /^\d{1,16}$/.test(lastRefTime) ? Number(lastRefTime) : NaN;
  return Number.isSafeInteger(number) && number >= 0 ? { lastRefTime: number } : null;
}

/** UdpTargetSpec is one list request with udpPort > 0: what it follows and where pushes go. */
export interface UdpTargetSpec {
  readonly key: ServiceKey;
  /** clusters is the `clusters` parameter as sent (echoed in the push body). */
  readonly clustersText: string;
  /** clusters is the clusters filter, normalised. */
  readonly clusters: readonly string[];
  /** address is the source address of the HTTP request (never the clientIP parameter). */
  readonly address: string;
  readonly port: number;
  /** groupedForClient: the client is a Java >= 1.0 client (the npm `nacos` client says it is), so `dom` is grouped. */
  readonly groupedForClient: boolean;
  readonly env: string;
}

/** UdpPushRenderer renders the `data` of a push (the §1.3 list JSON) for one target. */
export type UdpPushRenderer = (list: InstanceList, target: UdpTargetSpec, lastRefTimeMs: number) => string;

/** UdpPushLimits are the limits the pusher runs with; tests shrink them. */
export type UdpPushLimits = Pick<Limits, 'udpPushAckTimeoutMs' | 'udpPushRetriesMax' | 'udpPacketBytesMax' | 'udpPushTargetsMax' | 'udpPushTargetExpiryMs'>;

/** UdpPusherOptions wire a pusher. */
export interface UdpPusherOptions {
  readonly hub: SubscriptionHub;
  /** host is the member's host: the socket binds it, never 0.0.0.0. */
  readonly host: string;
  readonly render: UdpPushRenderer;
  readonly limits?: Partial<UdpPushLimits>;
  readonly metrics?: PushMetrics;
  readonly logger?: { warn(fields: Record<string, unknown>, message: string): void };
  /** now is the clock of target expiry in ms; default monotonicMs (a step of the system clock expires nothing: src/clock.ts). */
  readonly now?: () => number;
}

/** UdpPusherStats are the pusher's sizes and counters (tests, diagnostics). */
export interface UdpPusherStats {
  readonly targets: number;
  readonly pendingAcks: number;
  readonly sent: number;
  readonly retried: number;
  readonly acked: number;
  readonly failed: number;
  readonly tooLarge: number;
  readonly ignoredPackets: number;
}

/** PendingAck is a push waiting for its acknowledgement. */
interface PendingAck {
  readonly id: string;
  readonly packet: Buffer;
  attempts: number;
  timer: NodeJS.Timeout;
}

/** Target is one registered push target. */
interface Target {
  readonly id: string;
  readonly spec: UdpTargetSpec;
  lastListAt: number;
  subscription: Subscription | null;
  pending: PendingAck | null;
}

function targetId(spec: UdpTargetSpec): string {
  return `${spec.key.namespace}\n${groupedName(spec.key.group, spec.key.service)}\n${spec.clusters.join(',')}\n${spec.address}\n${spec.port}`;
}

/** normaliseSourceAddress turns an IPv4-mapped IPv6 address ("::ffff:127.0.0.5") into its IPv4 form. */
export function normaliseSourceAddress(address: string): string {
  return address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}

/** UdpPusher sends Nacos v1 UDP pushes to registered targets; see the file comment. */
export class UdpPusher {
  private readonly hub: SubscriptionHub;
  private readonly host: string;
  private readonly render: UdpPushRenderer;
  private readonly limits: UdpPushLimits;
  private readonly metrics: PushMetrics;
  private readonly logger: UdpPusherOptions['logger'];
  private readonly now: () => number;
  private readonly socket: Socket;
  private readonly targets = new Map<string, Target>();
  /** acks maps `address:port#lastRefTime` to the target waiting for that ack. */
  private readonly acks = new Map<string, Target>();
  private sweeper: NodeJS.Timeout | null = null;
  private lastRefTime = 0;
  private boundPort = 0;
  private closed = false;
  private counters = { sent: 0, retried: 0, acked: 0, failed: 0, tooLarge: 0, ignoredPackets: 0 };

  constructor(options: UdpPusherOptions) {
    this.hub = options.hub;
    this.host = options.host;
    this.render = options.render;
    this.limits = { ...defaultLimits, ...options.limits };
    this.metrics = options.metrics ?? noPushMetrics;
    this.logger = options.logger;
    this.now = options.now ?? monotonicMs;
    this.socket = createSocket(isIP(options.host) === 6 ? 'udp6' : 'udp4');
    this.socket.on('message', (message, remote) => this.handleMessage(message, remote));
    this.socket.on('error', (error) => this.logger?.warn({ err: error }, 'udp push socket error'));
  }

  /** start binds the socket to the member's host on a free port. */
  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.socket.once('error', reject);
      this.socket.bind({ address: this.host, port: 0, exclusive: true }, () => {
        this.socket.off('error', reject);
        this.boundPort = this.socket.address().port;
        this.sweeper = setInterval(() => this.sweep(), Math.max(100, Math.floor(this.limits.udpPushTargetExpiryMs / 10)));
        this.sweeper.unref();
        resolve();
      });
    });
  }

  /** port is the socket's port (pushes leave from it; acks arrive on it). */
  get port(): number {
    return this.boundPort;
  }

  /** refresh registers or refreshes a target; false when a bound refused it (the client then relies on polling). */
  refresh(spec: UdpTargetSpec): boolean {
    if (this.closed || spec.port <= 0) return false;
    const address = normaliseSourceAddress(spec.address);
    if (isIP(address) !== (isIP(this.host) === 6 ? 6 : 4)) return false;
    const normalised = { ...spec, address };
    const id = targetId(normalised);
    const existing = this.targets.get(id);
    if (existing !== undefined) {
      existing.lastListAt = this.now();
      return true;
    }
    if (this.targets.size >= this.limits.udpPushTargetsMax) {
      this.metrics.udpTargetsRefused();
      return false;
    }
    const target: Target = { id, spec: normalised, lastListAt: this.now(), subscription: null, pending: null };
    try {
      target.subscription = this.hub.subscribe({ key: spec.key, clusters: spec.clusters, healthyOnly: false, initial: false }, {
        kind: 'udp',
        write: (snapshot, taken) => {
          taken();
          this.push(target, snapshot);
        },
        cutOff: (_error: CairnError) => this.forget(target),
      });
    } catch {
      this.metrics.udpTargetsRefused();
      return false;
    }
    this.targets.set(id, target);
    return true;
  }

  private nextLastRefTime(): number {
    const nanoseconds = Number(process.hrtime.bigint() % lastRefTimeModulus);
    this.lastRefTime = Math.max(this.lastRefTime + 1, nanoseconds);
    return this.lastRefTime;
  }

  private push(target: Target, snapshot: Snapshot): void {
    if (this.closed || !this.targets.has(target.id)) return;
    if (this.now() - target.lastListAt > this.limits.udpPushTargetExpiryMs) {
      this.forget(target);
      return;
    }
    this.clearPending(target);
    const lastRefTime = this.nextLastRefTime();
    const packet = encodePushPacket(this.render(snapshot.list, target.spec, Date.now()), lastRefTime);
    if (packet.length > this.limits.udpPacketBytesMax) {
      this.counters.tooLarge += 1;
      this.metrics.pushFailed('udp', 'too_large');
      return;
    }
    const id = `${target.spec.address}:${target.spec.port}#${lastRefTime}`;
    target.pending = { id, packet, attempts: 1, timer: setTimeout(() => this.ackTimedOut(target), this.limits.udpPushAckTimeoutMs) };
    this.acks.set(id, target);
    this.send(target, packet);
    this.counters.sent += 1;
  }

  private send(target: Target, packet: Buffer): void {
    this.socket.send(packet, target.spec.port, target.spec.address, (error) => {
      if (error === null || error === undefined) return;
      this.counters.failed += 1;
      this.metrics.pushFailed('udp', 'send_error');
      this.clearPending(target);
    });
  }

  private ackTimedOut(target: Target): void {
    const pending = target.pending;
    if (pending === null || this.closed) return;
    if (pending.attempts <= this.limits.udpPushRetriesMax) {
      pending.attempts += 1;
      pending.timer = setTimeout(() => this.ackTimedOut(target), this.limits.udpPushAckTimeoutMs);
      this.counters.retried += 1;
      this.metrics.pushRetried();
      this.send(target, pending.packet);
      return;
    }
    this.counters.failed += 1;
    this.metrics.pushFailed('udp', 'no_ack');
    this.clearPending(target);
  }

  private clearPending(target: Target): void {
    const pending = target.pending;
    if (pending === null) return;
    clearTimeout(pending.timer);
    this.acks.delete(pending.id);
    target.pending = null;
  }

  private handleMessage(message: Buffer, remote: RemoteInfo): void {
    const ack = decodeAck(message, this.limits.udpPacketBytesMax);
    const target = ack === null ? undefined : this.acks.get(`${normaliseSourceAddress(remote.address)}:${remote.port}#${ack.lastRefTime}`);
    if (target === undefined) {
      this.counters.ignoredPackets += 1;
      return;
    }
    this.clearPending(target);
    this.counters.acked += 1;
    this.metrics.pushAcked();
  }

  private forget(target: Target): void {
    this.clearPending(target);
    this.targets.delete(target.id);
    const subscription = target.subscription;
    target.subscription = null;
    subscription?.close();
  }

  private sweep(): void {
    const now = this.now();
    for (const target of [...this.targets.values()]) {
      if (now - target.lastListAt > this.limits.udpPushTargetExpiryMs) this.forget(target);
    }
  }

  /** stats reports the pusher's sizes and counters. */
  stats(): UdpPusherStats {
    return { targets: this.targets.size, pendingAcks: this.acks.size, ...this.counters };
  }

  /** close forgets every target and closes the socket (idempotent). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.sweeper !== null) clearInterval(this.sweeper);
    for (const target of [...this.targets.values()]) this.forget(target);
    await new Promise<void>((resolve) => {
      try {
        this.socket.close(() => resolve());
      } catch {
        resolve();
      }
    });
  }
}
