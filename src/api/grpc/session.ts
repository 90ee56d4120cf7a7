// session: the bidirectional `Session` method over NamingService.openSession (docs/grpc.md "Session").
//
// The stream opens one session and answers `started` (session id, keep-alive interval) at once. Each request is then
// answered in order, one at a time: `register` (ephemeral instances only, bound to the session), `deregister`,
// `keep_alive`. A request that fails is answered with `error` (the status a unary call would get) and the stream goes
// on; a message that is not a SessionRequest, or sets none of its requests, ends the stream with INVALID_ARGUMENT.
// The session is closed (its instances removed) when the stream ends, fails or is cancelled; when the registry ends
// a silent session first, the stream ends with ABORTED (CAIRN_SESSION_EXPIRED); when the member is shutting down
// (the registry rejects `closed` with CAIRN_SHUTTING_DOWN, and removes nothing), with UNAVAILABLE, as Subscribe does.
//
// Bounds: at most sessionRequestsPendingMax requests read and not yet answered; beyond it the stream is paused (HTTP/2
// flow control pushes back on the client), and an answer counts as done only once grpc-js took it, so a client that
// stops reading answers stops being read too.

import type { ServerDuplexStream } from '@grpc/grpc-js';
import { CairnError, isCairnError } from '../../errors.ts';
import { limits } from '../../limits.ts';
import type { NamingService, NamingSession, RequestContext } from '../../naming/naming-service.ts';
import { statusMessageOf, statusOfError, toCairnError } from './errors.ts';
import type { Fields } from './fields.ts';
import { instanceMessage } from './messages.ts';
import { deregisterInputOf, instanceSpecOf } from './requests.ts';
import type { WriteFence } from '../../stall.ts';

/** sessionKeepAliveIntervalMs is how often an idle client should send keep_alive: Nacos's beat interval (5 s). */
export const sessionKeepAliveIntervalMs = limits.beatIntervalMs;

/** SessionLogger receives unexpected failures. */
export interface SessionLogger {
  error(fields: Record<string, unknown>, message: string): void;
}

/** errorAnswer renders a failed request's answer. */
function errorAnswer(error: unknown): object {
  const cairnError = toCairnError(error);
  return { error: { code: cairnError.grpcStatus, cairnCode: cairnError.code, message: statusMessageOf(cairnError), retryable: cairnError.retryable } };
}

/** answerOf serves one request of a session and renders its answer (errors included). */
async function answerOf(session: NamingSession, request: Fields, which: string, logger: SessionLogger | undefined): Promise<object> {
  const context: RequestContext = { identity: null, timeoutMs: limits.requestTimeoutMs };
  try {
    switch (which) {
      case 'register': {
        const result = await session.register(context, instanceSpecOf(request.requiredMessage('register')));
        return { registered: { instance: instanceMessage(result.instance), revision: result.revision } };
      }
      case 'deregister':
        return { deregistered: await session.deregister(context, deregisterInputOf(request.requiredMessage('deregister'))) };
      default:
        session.keepAlive();
        return { keepAlive: {} };
    }
  } catch (error) {
    if (toCairnError(error).code === 'CAIRN_INTERNAL') logger?.error({ err: error, method: 'Session' }, 'session request failed');
    return errorAnswer(error);
  }
}

/**
 * endOfSession is the status of a stream whose session the registry ended otherwise than by closing it: the reason it
 * gives (CAIRN_SHUTTING_DOWN, UNAVAILABLE: redo at another member), else CAIRN_SESSION_EXPIRED.
 */
function endOfSession(id: string, reason: unknown): CairnError {
  return isCairnError(reason) ? reason : new CairnError('CAIRN_SESSION_EXPIRED', `session ${id} ended`);
}

/** serveSession returns the grpc-js handler of Session; `decoded` turns a raw message into Fields or throws. */
export function serveSession(naming: NamingService, decoded: (request: unknown) => Fields, logger?: SessionLogger, stall?: WriteFence): (call: ServerDuplexStream<unknown, object>) => void {
  return (call) => {
    let session: NamingSession;
    try {
      session = naming.openSession();
    } catch (error) {
      call.emit('error', statusOfError(toCairnError(error)));
      return;
    }
    let ended = false;
    let pending = 0;
    let queue: Promise<void> = Promise.resolve();
    const finish = (error: CairnError | null): void => {
      if (ended) return;
      ended = true;
      void session.close().catch((closeError: unknown) => logger?.error({ err: closeError, method: 'Session' }, 'session close failed'));
      if (call.cancelled) return;
      if (error === null) call.end();
      else call.emit('error', statusOfError(error));
    };
    const write = (message: object): Promise<void> => new Promise((resolve) => {
      if (ended || call.cancelled) resolve();
      else call.write(message, () => resolve());
    });
    void write({ started: { sessionId: session.id, keepAliveIntervalMs: sessionKeepAliveIntervalMs } });
    session.closed.then(() => finish(new CairnError('CAIRN_SESSION_EXPIRED', `session ${session.id} ended by the registry (silent past its timeout, or closed); open a new session and register again`)),
      (reason: unknown) => finish(endOfSession(session.id, reason)));
    call.on('data', (raw: unknown) => {
      if (ended) return;
      let request: Fields;
      let which: string | undefined;
      try {
        request = decoded(raw);
        which = request.oneofCase('request');
      } catch (error) {
        finish(toCairnError(error));
        return;
      }
      if (which === undefined) {
        finish(new CairnError('CAIRN_INVALID_ARGUMENT', 'a SessionRequest must set one of register, deregister, keep_alive', { details: { parameter: 'request' } }));
        return;
      }
      // The stall fence looks at a write as it is read (src/stall.ts); its answer waits its turn in the queue.
      let refused: unknown = null;
      if (which === 'register' || which === 'deregister') {
        try {
          stall?.fenceWrite('session');
        } catch (error) {
          refused = error;
        }
      }
      pending += 1;
      if (pending >= limits.sessionRequestsPendingMax) call.pause();
      const served = which;
      queue = queue.then(async () => {
        if (!ended) await write(refused === null ? await answerOf(session, request, served, logger) : errorAnswer(refused));
        pending -= 1;
        if (pending < limits.sessionRequestsPendingMax && call.isPaused()) call.resume();
      });
    });
    call.on('end', () => {
      void queue.then(() => finish(null));
    });
    call.on('cancelled', () => finish(null));
    call.on('error', () => finish(null));
  };
}
