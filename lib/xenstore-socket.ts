/**
 * xenstored's Unix socket, spoken to in-process: what lib/xenstore.ts uses before it falls back
 * to the xenstore-utils clients. A client run is a fork+exec, ~44 ms in a dom0 under Xen; a
 * request here is a round trip on a local socket, tens of microseconds.
 *
 * The wire protocol is xen/include/public/io/xs_wire.h: a header of four little-endian u32
 * (type, req_id, tx_id, len), then `len` bytes of payload, at most XENSTORE_PAYLOAD_MAX. Every
 * argument is NUL-terminated except WRITE's value, which is raw bytes; READ replies with the
 * value as is, DIRECTORY with NUL-terminated names, a failure with XS_ERROR and the errno's
 * name ("ENOENT\0"). Requests are pipelined: several in flight on one connection, each reply
 * matched to its request by req_id.
 *
 * Only the socket is spoken to. When xenstored is not reachable that way (it runs in a stub
 * domain and dom0 has only /dev/xen/xenbus, or nothing listens), every function here answers
 * undefined and the caller runs the clients, which know the other transports.
 */
import type { Socket } from 'node:net';

/** xs_wire.h's enum xsd_sockmsg_type, the members used here. */
export const XS = {
  DIRECTORY: 1,
  READ: 2,
  TRANSACTION_START: 6,
  TRANSACTION_END: 7,
  WRITE: 11,
  RM: 13,
  WATCH_EVENT: 15,
  ERROR: 16,
} as const;

const HEADER = 16;
/** XENSTORE_PAYLOAD_MAX: xenstored drops a connection that sends more, so never send it. */
export const PAYLOAD_MAX = 4096;
/**
 * Requests in flight per connection at most. Both daemons throttle a connection with many
 * outstanding replies (C xenstored's quota-outstanding, oxenstored's output queue limit) by
 * reading no more of its input until it catches up, so more would only wait in their buffers;
 * a whole backend directory (two requests per key) still goes out in one burst.
 */
const MAX_IN_FLIGHT = 64;
/**
 * How often a transaction that xenstored refused with EAGAIN (a node it touched changed
 * meanwhile) is tried again. xenstore-write retries without end; a bound keeps a hook inside
 * libxl's timeout if something keeps changing the same nodes.
 */
const MAX_TRANSACTION_TRIES = 50;

/** xenstored refused a request: `errno` is the name it replied with (ENOENT, EAGAIN, EACCES…). */
export class XsReplyError extends Error {
  /** The request's type, as xs_wire.h names it without XS_ (WRITE, TRANSACTION_END…). */
  readonly op: string;
  readonly errno: string;
  readonly path: string;
  constructor(op: string, path: string, errno: string) {
    super(`${op} ${path}: ${errno}`);
    this.name = 'XsReplyError';
    this.op = op;
    this.errno = errno;
    this.path = path;
  }
}

/** The socket cannot serve this (no daemon there, connection lost, reply too big): use the clients. */
class Unserved extends Error {}

/**
 * The sockets libxenstore would try, in order (xs_daemon_socket): XENSTORED_PATH as given, else
 * XENSTORED_RUNDIR/socket, else the default run directory. /var/run is /run on current systems,
 * but not necessarily inside a chroot or an old dom0, so both are tried.
 */
export function socketPaths(env: NodeJS.ProcessEnv): string[] {
  if (env.XENSTORED_PATH) return [env.XENSTORED_PATH];
  if (env.XENSTORED_RUNDIR) return [`${env.XENSTORED_RUNDIR}/socket`];
  return ['/var/run/xenstored/socket', '/run/xenstored/socket'];
}

interface Reply {
  type: number;
  payload: Buffer;
}

class Connection {
  private readonly sock: Socket;
  private buf: Buffer = Buffer.alloc(0);
  private nextReq = 1;
  private readonly pending = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();
  private readonly queue: Array<() => void> = [];
  private inFlight = 0;
  closed = false;

  constructor(sock: Socket, onClose: () => unknown) {
    this.sock = sock;
    // Idle, the connection must not keep the hook alive: it is ref'd only while a reply is due.
    sock.unref();
    sock.on('data', (chunk: Buffer) => this.onData(chunk));
    sock.on('error', () => {}); // 'close' follows and fails what is pending
    sock.on('close', () => {
      this.closed = true;
      onClose();
      const lost = new Unserved('connection to xenstored lost');
      for (const p of this.pending.values()) p.reject(lost);
      this.pending.clear();
      for (const start of this.queue.splice(0)) start();
    });
  }

  private onData(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    while (this.buf.length >= HEADER) {
      const len = this.buf.readUInt32LE(12);
      if (this.buf.length < HEADER + len) return;
      const type = this.buf.readUInt32LE(0);
      const reqId = this.buf.readUInt32LE(4);
      const payload = Buffer.from(this.buf.subarray(HEADER, HEADER + len));
      this.buf = this.buf.subarray(HEADER + len);
      if (type === XS.WATCH_EVENT) continue; // no watches are set; nothing to deliver
      const p = this.pending.get(reqId);
      if (!p) continue;
      this.pending.delete(reqId);
      p.resolve({ type, payload });
    }
  }

  /** One request; resolves with the reply (XS_ERROR included), rejects Unserved if the socket went. */
  async request(type: number, payload: Buffer, txId = 0): Promise<Reply> {
    if (payload.length > PAYLOAD_MAX) throw new Unserved('request too big for one message');
    // A slot is handed from a finished request straight to a waiting one, so a request that
    // arrives meanwhile cannot overtake the queue and push the count past the limit.
    if (this.inFlight < MAX_IN_FLIGHT) this.inFlight++;
    else await new Promise<void>((go) => this.queue.push(go));
    try {
      if (this.closed) throw new Unserved('connection to xenstored lost');
      return await new Promise<Reply>((resolve, reject) => {
        const reqId = this.nextReq;
        this.nextReq = (this.nextReq % 0xffffffff) + 1; // a u32 on the wire
        this.pending.set(reqId, { resolve, reject });
        if (this.pending.size === 1) this.sock.ref();
        const hdr = Buffer.alloc(HEADER);
        hdr.writeUInt32LE(type, 0);
        hdr.writeUInt32LE(reqId, 4);
        hdr.writeUInt32LE(txId, 8);
        hdr.writeUInt32LE(payload.length, 12);
        this.send(Buffer.concat([hdr, payload]));
      });
    } finally {
      if (this.pending.size === 0 && !this.closed) this.sock.unref();
      const next = this.queue.shift();
      if (next) next();
      else this.inFlight--;
    }
  }

  private corked = false;

  /**
   * Requests issued in the same tick (a directory's READs and DIRECTORYs) leave in one write:
   * one wakeup of xenstored for the lot instead of one per request.
   */
  private send(frame: Buffer): void {
    if (!this.corked) {
      this.corked = true;
      this.sock.cork();
      process.nextTick(() => {
        this.corked = false;
        this.sock.uncork();
      });
    }
    this.sock.write(frame);
  }

  close(): void {
    this.sock.destroy();
  }
}

/** One connection per socket path for the life of the process (normally there is one path). */
const connections = new Map<string, Promise<Connection | undefined>>();

function open(path: string): Promise<Connection | undefined> {
  // node:net (and node:stream under it) loaded by the first connection, not at start-up: a call
  // that speaks to no xenstored (--help, say) does not pay ~2 ms of CPU for it.
  const opened: Promise<Connection | undefined> = import('node:net').then(({ createConnection }) => new Promise((resolve) => {
    const sock = createConnection(path);
    // Connecting is ref'd (a reply is due); ENOENT, ECONNREFUSED, ENOTSOCK (XENSTORED_PATH naming
    // the xenbus device), EACCES: not a socket this process can use.
    sock.once('error', () => resolve(undefined));
    sock.once('connect', () => {
      sock.removeAllListeners('error');
      // Forgotten once closed, unless a newer connection has taken its place meanwhile.
      resolve(new Connection(sock, () => connections.get(path) === opened && connections.delete(path)));
    });
  }));
  return opened;
}

async function connection(env: NodeJS.ProcessEnv): Promise<Connection | undefined> {
  for (const path of socketPaths(env)) {
    let c = connections.get(path);
    if (!c) {
      c = open(path);
      connections.set(path, c);
    }
    const conn = await c;
    if (conn && !conn.closed) return conn;
    // A failed attempt is not remembered: the daemon may come (back) later in a long process.
    if (connections.get(path) === c) connections.delete(path);
  }
  return undefined;
}

/** Closes every connection (tests; a hook just exits, the connections being unref'd). */
export function closeAll(): void {
  for (const c of connections.values()) void c.then((conn) => conn?.close());
  connections.clear();
}

// ---------------------------------------------------------------------------------------------
// Requests

const z = (s: string) => Buffer.from(`${s}\0`, 'utf8');

function errnoOf(r: Reply): string | undefined {
  if (r.type !== XS.ERROR) return undefined;
  return r.payload.toString('latin1').replace(/\0.*$/s, '') || 'EIO';
}

async function call(conn: Connection, op: string, type: number, path: string, payload: Buffer, txId = 0): Promise<Buffer> {
  const r = await conn.request(type, payload, txId);
  const errno = errnoOf(r);
  if (errno !== undefined) throw new XsReplyError(op, path, errno);
  return r.payload;
}

const readValue = (conn: Connection, path: string, txId = 0) => call(conn, 'READ', XS.READ, path, z(path), txId);

async function directory(conn: Connection, path: string): Promise<string[]> {
  try {
    const names = (await call(conn, 'DIRECTORY', XS.DIRECTORY, path, z(path))).toString('utf8').split('\0');
    names.pop(); // every name is NUL-terminated: the last split part is empty
    return names;
  } catch (e) {
    // Too many names for one reply: libxenstore then pages with DIRECTORY_PART; the clients do.
    if (e instanceof XsReplyError && e.errno === 'E2BIG') throw new Unserved('directory too big for one reply');
    throw e;
  }
}

/** Runs fn on a connection; undefined when there is none or it cannot serve the request. */
async function served<T>(env: NodeJS.ProcessEnv, fn: (c: Connection) => Promise<T>): Promise<T | undefined> {
  const conn = await connection(env);
  if (!conn) return undefined;
  try {
    return await fn(conn);
  } catch (e) {
    if (e instanceof Unserved) return undefined;
    throw e;
  }
}

/**
 * Every node below dir, depth first as `xenstore-ls -f` lists them, key relative to dir ("a/b")
 * → value bytes; a node whose value cannot be read is left out (xenstore-ls prints "path:").
 * Each node's READ and DIRECTORY go out together as soon as its parent's names are known, so a
 * flat backend directory costs two round trips. A missing dir throws XsReplyError ENOENT.
 */
export function readTree(dir: string, env: NodeJS.ProcessEnv): Promise<Map<string, Buffer> | undefined> {
  return served(env, async (conn) => {
    const join = (p: string, n: string) => (p === '/' ? `/${n}` : `${p}/${n}`);
    const walk = async (path: string, rel: string): Promise<Array<[string, Buffer | undefined]>> => {
      const [value, names] = await Promise.all([
        readValue(conn, path).catch((e: unknown) => {
          if (e instanceof XsReplyError) return undefined;
          throw e;
        }),
        directory(conn, path).catch((e: unknown) => {
          // A node removed while listing, or one dom0 may not list: skipped, as xenstore-ls does.
          if (e instanceof XsReplyError && (e.errno === 'ENOENT' || e.errno === 'EACCES')) return [];
          throw e;
        }),
      ]);
      const below = await Promise.all(names.map((n) => walk(join(path, n), `${rel}/${n}`)));
      return [[rel, value], ...below.flat()];
    };
    const top = await directory(conn, dir);
    const all = await Promise.all(top.map((n) => walk(join(dir, n), n)));
    const out = new Map<string, Buffer>();
    for (const [k, v] of all.flat()) if (v !== undefined) out.set(k, v);
    return out;
  });
}

/** One value's bytes; XsReplyError ENOENT when the node does not exist. */
export function readBytes(path: string, env: NodeJS.ProcessEnv): Promise<Buffer | undefined> {
  return served(env, (conn) => readValue(conn, path));
}

/**
 * Runs body in a transaction and commits it; on EAGAIN (a node it touched changed meanwhile)
 * runs it again from the start, as xenstore-write does. body's requests all go out at once;
 * only if all of them succeed is the transaction committed, else it is abandoned, so that a
 * refused write never commits the others.
 */
async function transaction(conn: Connection, what: string, body: (txId: number) => Array<Promise<unknown>>): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const txId = Number((await call(conn, 'TRANSACTION_START', XS.TRANSACTION_START, what, z(''))).toString('latin1').replace(/\0.*$/s, ''));
    const results = await Promise.allSettled(body(txId));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      await conn.request(XS.TRANSACTION_END, z('F'), txId).catch(() => {});
      throw failed.reason;
    }
    try {
      await call(conn, 'TRANSACTION_END', XS.TRANSACTION_END, what, z('T'), txId);
      return;
    } catch (e) {
      if (!(e instanceof XsReplyError && e.errno === 'EAGAIN') || attempt >= MAX_TRANSACTION_TRIES) throw e;
    }
  }
}

function writePayload(path: string, value: Uint8Array): Buffer {
  return Buffer.concat([z(path), value]);
}

/**
 * Writes every pair, parents created as needed: one WRITE alone, several in one transaction
 * (all or none). A pair that cannot fit one message throws XsReplyError E2BIG, as libxenstore
 * refuses it before sending. Paths go as given: xenstored resolves relative ones under the
 * caller's home, as for the clients.
 */
export function writePairs(pairs: ReadonlyArray<readonly [string, Uint8Array]>, env: NodeJS.ProcessEnv): Promise<true | undefined> {
  for (const [path, value] of pairs) {
    if (z(path).length + value.length > PAYLOAD_MAX) return Promise.reject(new XsReplyError('WRITE', path, 'E2BIG'));
  }
  return served(env, async (conn) => {
    const write = (path: string, value: Uint8Array, txId: number) => call(conn, 'WRITE', XS.WRITE, path, writePayload(path, value), txId);
    if (pairs.length === 1) await write(pairs[0]![0], pairs[0]![1], 0);
    else await transaction(conn, pairs[0]![0], (tx) => pairs.map(([p, v]) => write(p, v, tx)));
    return true as const;
  });
}

/**
 * Removes each path and everything below it, in one transaction. A path already gone is fine
 * when its parent exists (xenstored answers OK); when the parent is gone too xenstored answers
 * ENOENT and the whole transaction is abandoned, so then each path is removed on its own and an
 * ENOENT there means it is gone.
 */
export function removePaths(paths: readonly string[], env: NodeJS.ProcessEnv): Promise<true | undefined> {
  return served(env, async (conn) => {
    const rm = (path: string, txId: number) => call(conn, 'RM', XS.RM, path, z(path), txId);
    try {
      if (paths.length === 1) await rm(paths[0]!, 0);
      else await transaction(conn, paths[0]!, (tx) => paths.map((p) => rm(p, tx)));
      return true as const;
    } catch (e) {
      if (!(e instanceof XsReplyError && e.errno === 'ENOENT')) throw e;
    }
    for (const p of paths) {
      await rm(p, 0).catch((e: unknown) => {
        if (!(e instanceof XsReplyError && e.errno === 'ENOENT')) throw e;
      });
    }
    return true as const;
  });
}
