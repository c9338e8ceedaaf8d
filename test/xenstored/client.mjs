#!/usr/bin/env node
/**
 * A raw xenstore wire-protocol client, for testing what xenstore-utils cannot send: concurrent
 * transactions, DIRECTORY_PART, INTRODUCE, unknown message types. Plain Node, no dependencies.
 *
 * As a module:  const c = await connect(socket); const r = await c.request('READ', ['/a']);
 *               r = { type: 'READ' | 'ERROR' | ..., payload: Buffer, args: string[] }
 *               c.events: watch events received so far ({ path, token }); c.close()
 * As a command: node client.mjs SOCKET TYPE [--tx N] [ARG...]  → one JSON line with the reply
 */
import net from 'node:net';
import { fileURLToPath } from 'node:url';

export const TYPES = [
  'CONTROL', 'DIRECTORY', 'READ', 'GET_PERMS', 'WATCH', 'UNWATCH', 'TRANSACTION_START',
  'TRANSACTION_END', 'INTRODUCE', 'RELEASE', 'GET_DOMAIN_PATH', 'WRITE', 'MKDIR', 'RM',
  'SET_PERMS', 'WATCH_EVENT', 'ERROR', 'IS_DOMAIN_INTRODUCED', 'RESUME', 'SET_TARGET',
  'RESTRICT', 'RESET_WATCHES', 'DIRECTORY_PART',
];

/**
 * Builds a payload the way libxenstore does: every argument NUL-terminated, except WRITE's value
 * (and CONTROL's data), which go as they are.
 */
export function encodePayload(type, args) {
  const parts = args.map((a, i) => {
    const raw = Buffer.isBuffer(a) ? a : Buffer.from(String(a), 'utf8');
    const unterminated = (type === 'WRITE' || type === 'CONTROL') && i === args.length - 1 && args.length > 1;
    return unterminated ? raw : Buffer.concat([raw, Buffer.from([0])]);
  });
  return Buffer.concat(parts);
}

export function decodeArgs(payload) {
  const parts = payload.toString('utf8').split('\0');
  if (parts.length > 1 && parts[parts.length - 1] === '') parts.pop();
  return parts;
}

export function connect(socketPath) {
  return new Promise((resolve, reject) => {
    const sock = net.createConnection(socketPath);
    let buf = Buffer.alloc(0);
    let nextReq = 1;
    const pending = new Map();
    const events = [];
    const eventWaiters = [];
    sock.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 16) {
        const type = buf.readUInt32LE(0);
        const reqId = buf.readUInt32LE(4);
        const txId = buf.readUInt32LE(8);
        const len = buf.readUInt32LE(12);
        if (buf.length < 16 + len) break;
        const payload = Buffer.from(buf.subarray(16, 16 + len));
        buf = buf.subarray(16 + len);
        const msg = { type: TYPES[type] ?? String(type), reqId, txId, payload, args: decodeArgs(payload) };
        if (msg.type === 'WATCH_EVENT') {
          events.push({ path: msg.args[0], token: msg.args[1] });
          eventWaiters.splice(0).forEach((w) => w());
          continue;
        }
        const p = pending.get(reqId);
        if (p) {
          pending.delete(reqId);
          p(msg);
        }
      }
    });
    sock.on('error', (e) => {
      reject(e);
      for (const p of pending.values()) p({ type: 'ERROR', payload: Buffer.from('EIO\0'), args: ['EIO'] });
    });
    sock.on('connect', () =>
      resolve({
        events,
        /** Sends one request; args are strings/Buffers, or a Buffer for an exact raw payload. */
        request(type, args = [], { tx = 0, rawType } = {}) {
          const num = rawType ?? TYPES.indexOf(type);
          if (num < 0) throw new Error(`unknown type ${type}`);
          const payload = Buffer.isBuffer(args) ? args : encodePayload(type, args);
          const hdr = Buffer.alloc(16);
          const reqId = nextReq++;
          hdr.writeUInt32LE(num, 0);
          hdr.writeUInt32LE(reqId, 4);
          hdr.writeUInt32LE(tx, 8);
          hdr.writeUInt32LE(payload.length, 12);
          return new Promise((res) => {
            pending.set(reqId, res);
            sock.write(Buffer.concat([hdr, payload]));
          });
        },
        /** Resolves once at least n watch events have arrived (or rejects after ms). */
        waitEvents(n, ms = 2000) {
          return new Promise((res, rej) => {
            const timer = setTimeout(() => rej(new Error(`only ${events.length} of ${n} watch events`)), ms);
            const check = () => {
              if (events.length >= n) {
                clearTimeout(timer);
                res(events);
              } else eventWaiters.push(check);
            };
            check();
          });
        },
        close() {
          return new Promise((res) => {
            sock.once('close', () => res());
            sock.end();
          });
        },
      }),
    );
  });
}

async function main(argv) {
  const [socketPath, type, ...rest] = argv;
  if (!socketPath || !type) {
    process.stderr.write('usage: client.mjs SOCKET TYPE [--tx N] [ARG...]\n');
    process.exit(2);
  }
  let tx = 0;
  if (rest[0] === '--tx') {
    tx = Number(rest[1]);
    rest.splice(0, 2);
  }
  const c = await connect(socketPath);
  const r = await c.request(type, rest, { tx });
  process.stdout.write(JSON.stringify({ type: r.type, payload: r.payload.toString('utf8'), args: r.args }) + '\n');
  await c.close();
  process.exit(r.type === 'ERROR' ? 1 : 0);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).catch((e) => {
    process.stderr.write(`client.mjs: ${e.message}\n`);
    process.exit(1);
  });
}
