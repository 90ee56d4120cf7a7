// The part of node-zookeeper-client (which ships no types) the bench uses, typed from its README.
declare module 'node-zookeeper-client' {
  import type { EventEmitter } from 'node:events';

  export interface ZkException extends Error {
    getCode(): number;
    getName(): string;
  }

  export interface ZkEvent {
    getType(): number;
    getName(): string;
    getPath(): string;
  }

  export interface ZkClientOptions {
    readonly sessionTimeout?: number;
    readonly spinDelay?: number;
    readonly retries?: number;
  }

  export interface ZkClient extends EventEmitter {
    connect(): void;
    close(): void;
    getSessionId(): Buffer;
    create(path: string, data: Buffer | null, mode: number, callback: (error: ZkException | null, path: string) => void): void;
    remove(path: string, version: number, callback: (error: ZkException | null) => void): void;
    exists(path: string, callback: (error: ZkException | null, stat: object | null) => void): void;
    getData(path: string, callback: (error: ZkException | null, data: Buffer | null, stat: object) => void): void;
    getChildren(path: string, callback: (error: ZkException | null, children: string[], stat: object) => void): void;
    getChildren(path: string, watcher: (event: ZkEvent) => void, callback: (error: ZkException | null, children: string[], stat: object) => void): void;
    mkdirp(path: string, callback: (error: ZkException | null, path: string) => void): void;
  }

  export function createClient(connectionString: string, options?: ZkClientOptions): ZkClient;

  export const CreateMode: { readonly PERSISTENT: number; readonly EPHEMERAL: number };
  export const Exception: { readonly NODE_EXISTS: number; readonly NO_NODE: number };

  const zookeeper: {
    createClient: typeof createClient;
    CreateMode: typeof CreateMode;
    Exception: typeof Exception;
  };
  export default zookeeper;
}
