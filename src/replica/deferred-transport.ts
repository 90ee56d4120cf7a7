// DeferredTransport lets a member listen on its peer port before its Raft group exists: it answers Hello (the
// bootstrap check of bootstrap.ts) at once, and hands Raft traffic to the driver once the driver starts it.
import { CairnError } from '../errors.ts';
import type { Message, NodeId } from '../raft/types.ts';
import type { PeerCheckpoints } from './checkpoints.ts';
import type { ForwardRequest, ForwardResponse, PeerHandlers, PeerHello, PeerTransport } from './transport.ts';

/** DeferredTransport wraps a PeerTransport whose listener starts early; start() only attaches the driver. */
export class DeferredTransport implements PeerTransport {
  private target: PeerHandlers | null = null;

  constructor(
    private readonly inner: PeerTransport,
    private readonly answerHello: (from: NodeId) => Promise<PeerHello>,
  ) {}

  /** listen starts the inner transport; until start() attaches the driver, Raft messages are dropped (Raft tolerates loss). */
  async listen(): Promise<void> {
    await this.inner.start({
      onMessage: (message) => this.target?.onMessage(message),
      onForward: (from, request) =>
        this.target !== null
          ? this.target.onForward(from, request)
          : Promise.resolve({ ok: false, code: 'CAIRN_NO_LEADER', message: 'the member is still starting', leaderHint: null }),
      onUnreachable: (peer) => this.target?.onUnreachable(peer),
      onHello: (from) => this.answerHello(from),
      onCheckpoints: (from) => this.target?.onCheckpoints?.(from) ?? null,
      onBackup: (requester) => {
        const onBackup = this.target?.onBackup;
        if (onBackup === undefined) return Promise.reject(new CairnError('CAIRN_NO_LEADER', 'the member is still starting; try again'));
        return onBackup(requester);
      },
    });
  }

  /** start attaches the driver's handlers (the listener already runs). */
  async start(handlers: PeerHandlers): Promise<void> {
    this.target = handlers;
  }

  /** send delegates to the inner transport. */
  send(message: Message): void {
    this.inner.send(message);
  }

  /** flush delegates to the inner transport. */
  flush(): void {
    this.inner.flush?.();
  }

  /** forward delegates to the inner transport. */
  forward(to: NodeId, request: ForwardRequest): Promise<ForwardResponse> {
    return this.inner.forward(to, request);
  }

  /** hello delegates to the inner transport. */
  hello(to: NodeId, timeoutMs: number): Promise<PeerHello | null> {
    return this.inner.hello(to, timeoutMs);
  }

  /** checkpoints delegates to the inner transport (null when it cannot ask). */
  checkpoints(to: NodeId, timeoutMs: number): Promise<PeerCheckpoints | null> {
    return this.inner.checkpoints?.(to, timeoutMs) ?? Promise.resolve(null);
  }

  /** setPeers delegates to the inner transport. */
  setPeers(peers: readonly NodeId[]): void {
    this.inner.setPeers(peers);
  }

  /** close detaches the driver and closes the inner transport. */
  async close(): Promise<void> {
    this.target = null;
    await this.inner.close();
  }
}
