// backup-fetch: the client side of the peer port's Backup method (peer.proto), for `cairn backup save --from`.
// It asks a running member for a backup of its persistent registry as of its applied index and checks what arrives
// as a backup file is checked (backupOfStream): the header chunk first, then the image, within the bounds of a
// backup file, before the caller writes anything.
import { Client, credentials, status as grpcStatus, type ServiceError } from '@grpc/grpc-js';

import { CairnError, isCairnErrorCode } from '../errors.ts';
import { backupBytesMax, backupHeaderBytesMax, backupOfStream, type Backup } from './backup.ts';
import { BACKUP_PATH } from './grpc-transport.ts';
import { decodeBackupChunk, encodeBackupRequest } from './peer-codec.ts';
import { peerCallMetadata } from './peer-protocol.ts';

/** backupFetchTimeoutMsDefault bounds a whole backup download (a 1M-instance registry is ~330 MB). */
export const backupFetchTimeoutMsDefault = 10 * 60 * 1000;

/** FetchOptions: who asks (the member logs it) and how long the whole download may take. */
export interface FetchOptions {
  readonly requester: string;
  readonly timeoutMs?: number;
}

function corrupt(message: string): CairnError {
  return new CairnError('CAIRN_STORAGE_CORRUPT', message);
}

/**
 * callFailure says what a failed Backup call means: the member's own refusal keeps its catalog code; a call that
 * found nobody, or timed out, is a plain error that says so (no catalog code fits "nothing answered").
 */
function callFailure(peer: string, error: ServiceError): Error {
  const details = error.details ?? '';
  const code = /^(CAIRN_[A-Z_]+): /.exec(details)?.[1];
  if (code !== undefined && isCairnErrorCode(code)) return new CairnError(code, `${peer}: ${details.slice(code.length + 2)}`);
  if (error.code === grpcStatus.UNAVAILABLE && details.startsWith('No connection established')) {
    return new Error(`${peer}: nothing answers on the peer port (is the member running, and is this its peer port?)`);
  }
  if (error.code === grpcStatus.UNIMPLEMENTED) return new Error(`${peer}: the member does not serve backups (an earlier version?)`);
  if (error.code === grpcStatus.DEADLINE_EXCEEDED) return new Error(`${peer}: the backup did not arrive within the time allowed`);
  return new Error(`${peer}: ${grpcStatus[error.code] ?? error.code}: ${details}`);
}

/**
 * fetchLiveBackup downloads a backup from the member whose peer port is `peer` ("host:port") and returns it checked.
 * Failures: the member's own refusal as a CairnError with its code, CAIRN_STORAGE_CORRUPT for a stream that is not
 * a whole backup, a plain Error when nothing answers or the time runs out.
 */
export function fetchLiveBackup(peer: string, options: FetchOptions): Promise<Backup> {
  const client = new Client(peer, credentials.createInsecure(), {
    'grpc.max_receive_message_length': 8 * 1024 * 1024,
    'grpc.enable_channelz': 0,
    'grpc.enable_retries': 0,
  });
  const deadline = Date.now() + (options.timeoutMs ?? backupFetchTimeoutMsDefault);
  return new Promise<Backup>((resolve, reject) => {
    let header: Uint8Array | null = null;
    const parts: Uint8Array[] = [];
    let received = 0;
    let settled = false;
    const finish = (error: Error | null, backup?: Backup): void => {
      if (settled) return;
      settled = true;
      client.close();
      if (error !== null) reject(error);
      else if (backup !== undefined) resolve(backup);
    };
    const call = client.makeServerStreamRequest<Uint8Array, Buffer>(
      BACKUP_PATH,
      (bytes) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength),
      (bytes) => bytes,
      encodeBackupRequest(options.requester.slice(0, 200)),
      peerCallMetadata('cairn-from', options.requester.slice(0, 200)),
      { deadline },
    );
    call.on('data', (bytes: Buffer) => {
      if (settled) return;
      const chunk = decodeBackupChunk(bytes);
      const broken = (what: string): void => {
        call.cancel();
        finish(corrupt(`${peer}: the backup stream is not a backup: ${what}`));
      };
      if (chunk === null) return broken('a chunk does not decode');
      if (header === null) {
        if (chunk.header.length === 0 || chunk.data.length > 0) return broken('it does not start with its header');
        if (chunk.header.length > backupHeaderBytesMax) return broken(`a header of ${chunk.header.length} bytes`);
        header = chunk.header;
        return;
      }
      if (chunk.header.length > 0) return broken('a second header');
      received += chunk.data.length;
      if (received > backupBytesMax) return broken(`more than ${backupBytesMax} bytes`);
      parts.push(chunk.data);
    });
    call.on('error', (error: ServiceError) => finish(callFailure(peer, error)));
    call.on('end', () => {
      if (settled) return;
      if (header === null) return finish(corrupt(`${peer}: the backup stream ended before its header`));
      try {
        finish(null, backupOfStream(header, Buffer.concat(parts, received), peer));
      } catch (error) {
        finish(error instanceof Error ? error : new Error(String(error)));
      }
    });
  });
}
