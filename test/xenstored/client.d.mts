// Types for client.mjs, so TypeScript tests can drive the test xenstored directly.
export declare const TYPES: readonly string[];

export interface Reply {
  type: string;
  reqId: number;
  txId: number;
  payload: Buffer;
  /** The payload split at NULs, without the empty string after a final NUL. */
  args: string[];
}

export interface WatchEvent {
  path: string;
  token: string;
}

export interface Client {
  readonly events: WatchEvent[];
  request(type: string, args?: ReadonlyArray<string | Buffer> | Buffer, opts?: { tx?: number; rawType?: number }): Promise<Reply>;
  waitEvents(n: number, ms?: number): Promise<WatchEvent[]>;
  close(): Promise<void>;
}

export declare function encodePayload(type: string, args: ReadonlyArray<string | Buffer>): Buffer;
export declare function decodeArgs(payload: Buffer): string[];
export declare function connect(socketPath: string): Promise<Client>;
