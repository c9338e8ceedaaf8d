#!/usr/bin/env node
/**
 * A test xenstored: there is no real one without a hypervisor (C xenstored -D segfaults without a
 * dom0 database, oxenstored needs the Xen control interface), so tier 1 runs the real
 * xenstore-utils clients against this, through XENSTORED_PATH=<socket>.
 *
 * It speaks the wire protocol of xen/include/public/io/xs_wire.h on a Unix socket: a 16-byte
 * little-endian header (type, req_id, tx_id, len) and a payload of NUL-separated strings. Every
 * connection is dom0 (a socket connection is privileged), so relative paths resolve under
 * /local/domain/0 and permissions are stored and returned but never enforced. With --domid N
 * every connection is domain N instead (a network driver domain's view: relative paths, and the
 * relative key `domid`, under /local/domain/N), permissions still not enforced.
 *
 * Semantics follow C xenstored (xenstored_core.c) where the clients can tell: replies without a
 * trailing NUL for READ, NUL-terminated names for DIRECTORY, "OK\0" acks, errors as XS_ERROR
 * "ENOENT\0", a watch fires once when set, transactions fail with EAGAIN only when a node they
 * touched changed meanwhile. Every request, reply and event goes to --log as one JSON line, so a
 * later tier can compare a hook's traffic with the real oxenstored's.
 *
 * Plain Node with no dependencies: it must also run inside a VM where only node exists.
 *
 *   node test/xenstored/xenstored.mjs --socket PATH [--pidfile FILE] [--log FILE] [--domid N]
 */
import { appendFileSync, unlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';

// ---------------------------------------------------------------------------------------------
// Protocol constants (xs_wire.h)

const TYPES = [
  'CONTROL', 'DIRECTORY', 'READ', 'GET_PERMS', 'WATCH', 'UNWATCH', 'TRANSACTION_START',
  'TRANSACTION_END', 'INTRODUCE', 'RELEASE', 'GET_DOMAIN_PATH', 'WRITE', 'MKDIR', 'RM',
  'SET_PERMS', 'WATCH_EVENT', 'ERROR', 'IS_DOMAIN_INTRODUCED', 'RESUME', 'SET_TARGET',
  'RESTRICT', 'RESET_WATCHES', 'DIRECTORY_PART',
];
const T = Object.fromEntries(TYPES.map((n, i) => [n, i]));
const HEADER = 16;
/** XENSTORE_PAYLOAD_MAX: the clients refuse longer messages, so neither side may send one. */
const PAYLOAD_MAX = 4096;
const ABS_PATH_MAX = 3072;
const REL_PATH_MAX = 2048;
const DOM0_HOME = '/local/domain/0';
/** The connections' home: dom0's, or with --domid N domain N's (set once the options are read). */
let HOME = DOM0_HOME;

/** A failed request: replied as XS_ERROR with the errno's name, as xsd_errors[] spells it. */
class XsError extends Error {
  constructor(code) {
    super(code);
    this.code = code;
  }
}

// ---------------------------------------------------------------------------------------------
// Command line

function parseArgs(argv) {
  const opts = { socket: undefined, pidfile: undefined, log: undefined, domid: undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const m = /^--(socket|pidfile|log|domid)(?:=(.*))?$/.exec(a);
    if (m) {
      const v = m[2] ?? argv[++i];
      if (v === undefined) usage(`${a} needs a value`);
      opts[m[1]] = v;
    } else if (a === '-h' || a === '--help') {
      usage();
    } else {
      usage(`unknown argument ${a}`);
    }
  }
  if (!opts.socket) usage('--socket is required');
  if (opts.domid !== undefined && !/^[0-9]+$/.test(opts.domid)) usage('--domid needs a number');
  return opts;
}

function usage(problem) {
  const text = 'usage: xenstored.mjs --socket PATH [--pidfile FILE] [--log FILE] [--domid N]\n';
  if (problem) {
    process.stderr.write(`xenstored.mjs: ${problem}\n${text}`);
    process.exit(2);
  }
  process.stdout.write(text);
  process.exit(0);
}

// ---------------------------------------------------------------------------------------------
// The store: a flat map from absolute path to node. A node's generation changes whenever its
// value, permissions or list of children does; transactions compare generations to find
// conflicts. Generations come from one counter, so a node removed and re-created never looks
// unchanged.

let generationCounter = 0;
const nextGeneration = () => ++generationCounter;

function newNode(value, perms) {
  return { value, perms: [...perms], children: [], gen: nextGeneration() };
}

function cloneStore(store) {
  const copy = new Map();
  for (const [path, n] of store) copy.set(path, { value: n.value, perms: [...n.perms], children: [...n.children], gen: n.gen });
  return copy;
}

function initialStore() {
  const store = new Map();
  store.set('/', newNode(Buffer.alloc(0), ['n0']));
  for (const p of ['/local', '/local/domain', DOM0_HOME, '/tool']) createNode(store, p, Buffer.alloc(0));
  // What xen-init-dom0 writes at boot, before any guest exists.
  createNode(store, `${DOM0_HOME}/domid`, Buffer.from('0'));
  createNode(store, `${DOM0_HOME}/name`, Buffer.from('Domain-0'));
  // A driver domain's own directory, as libxl writes it when it creates the domain.
  if (HOME !== DOM0_HOME) createNode(store, `${HOME}/domid`, Buffer.from(HOME.slice('/local/domain/'.length)));
  return store;
}

const parentOf = (path) => (path.lastIndexOf('/') === 0 ? '/' : path.slice(0, path.lastIndexOf('/')));
const baseName = (path) => path.slice(path.lastIndexOf('/') + 1);
const isUnder = (path, top) => path === top || top === '/' || path.startsWith(top + '/');

/** Creates the node and any missing ancestors; a new node inherits its parent's permissions. */
function createNode(store, path, value) {
  const parentPath = parentOf(path);
  let parent = store.get(parentPath);
  if (!parent) parent = createNode(store, parentPath, Buffer.alloc(0));
  const node = newNode(value, parent.perms);
  store.set(path, node);
  parent.children.push(baseName(path));
  parent.gen = nextGeneration();
  return node;
}

/** Every node at or below path, parents before children. */
function subtree(store, path) {
  const out = [];
  const walk = (p) => {
    const n = store.get(p);
    if (!n) return;
    out.push(p);
    for (const c of n.children) walk(p === '/' ? `/${c}` : `${p}/${c}`);
  };
  walk(path);
  return out;
}

/**
 * Path rules of C xenstored (is_valid_nodename): relative paths live under the caller's home;
 * only [A-Za-z0-9_@/-] characters, no empty component, no trailing slash; "@" names are special
 * watch paths, valid only where the request allows them.
 */
function canonical(path, { allowSpecial = false } = {}) {
  if (typeof path !== 'string' || path === '') throw new XsError('EINVAL');
  if (path.startsWith('@')) {
    if (!allowSpecial || !/^@[A-Za-z0-9_@/-]*$/.test(path)) throw new XsError('EINVAL');
    return path;
  }
  if (!path.startsWith('/') && path.length > REL_PATH_MAX) throw new XsError('EINVAL');
  const abs = path.startsWith('/') ? path : `${HOME}/${path}`;
  if (abs.length > ABS_PATH_MAX) throw new XsError('EINVAL');
  if (abs !== '/' && (abs.endsWith('/') || abs.includes('//'))) throw new XsError('EINVAL');
  if (!/^[A-Za-z0-9_@/-]+$/.test(abs)) throw new XsError('EINVAL');
  return abs;
}

// ---------------------------------------------------------------------------------------------
// Operations on a store. Each mutation returns the watch triggers it caused: {path, exact}.
// `touch` records what a transaction depended on (path → generation, or 0 for "absent").

function opRead(store, path, touch) {
  const n = store.get(path);
  touch(path, n);
  if (!n) throw new XsError('ENOENT');
  return n;
}

function opWrite(store, path, value, touch) {
  const n = store.get(path);
  touch(path, n);
  if (n) {
    n.value = value;
    n.gen = nextGeneration();
  } else {
    for (let p = parentOf(path); ; p = parentOf(p)) {
      touch(p, store.get(p));
      if (store.has(p) || p === '/') break;
    }
    createNode(store, path, value);
  }
  return [{ path, exact: false }];
}

function opMkdir(store, path, touch) {
  const n = store.get(path);
  touch(path, n);
  if (n) return [];
  return opWrite(store, path, Buffer.alloc(0), touch);
}

function opRm(store, path, touch) {
  if (path === '/') throw new XsError('EINVAL');
  const n = store.get(path);
  touch(path, n);
  if (!n) {
    // C xenstored: removing what is not there is fine as long as the parent exists.
    const parent = store.get(parentOf(path));
    touch(parentOf(path), parent);
    if (parent) return [];
    throw new XsError('ENOENT');
  }
  const gone = subtree(store, path);
  for (const p of gone) {
    touch(p, store.get(p));
    store.delete(p);
  }
  const parent = store.get(parentOf(path));
  touch(parentOf(path), parent);
  parent.children = parent.children.filter((c) => c !== baseName(path));
  parent.gen = nextGeneration();
  // Watches on removed descendants fire with their own path; the rest match the removed node.
  return [...gone.slice(1).reverse().map((p) => ({ path: p, exact: true })), { path, exact: false }];
}

function opSetPerms(store, path, perms, touch) {
  if (perms.length === 0 || !perms.every((p) => /^[nrwb][0-9]+$/.test(p))) throw new XsError('EINVAL');
  const n = opRead(store, path, touch);
  n.perms = perms;
  n.gen = nextGeneration();
  return [{ path, exact: false }];
}

// ---------------------------------------------------------------------------------------------
// Daemon state

const opts = parseArgs(process.argv.slice(2));
if (opts.domid !== undefined) HOME = `/local/domain/${Number(opts.domid)}`;
let store = initialStore();
const connections = new Set();
const introduced = new Set(['0']);
let nextConnId = 1;
let nextTxId = 1;
/** Commits still to refuse with EAGAIN, set by CONTROL "test-eagain N": exercises client retries. */
let eagainCommits = 0;

function log(entry) {
  if (!opts.log) return;
  appendFileSync(opts.log, JSON.stringify({ ts: new Date().toISOString(), ...entry }) + '\n');
}

/**
 * Payloads are logged as text when they are valid UTF-8 (NULs show as \u0000, so the exact
 * bytes can be compared), else as base64.
 */
function payloadField(buf) {
  const text = buf.toString('utf8');
  return Buffer.from(text, 'utf8').equals(buf) ? { payload: text } : { payload_b64: buf.toString('base64') };
}

/** Splits a request payload into its NUL-terminated arguments (the last may lack the NUL). */
function splitArgs(buf) {
  const parts = buf.toString('latin1').split('\0');
  if (parts.length > 1 && parts[parts.length - 1] === '') parts.pop();
  return parts.map((p) => Buffer.from(p, 'latin1'));
}
const str = (b) => b.toString('latin1');
const z = (s) => Buffer.from(`${s}\0`, 'latin1');
const OK = z('OK');

function send(conn, type, reqId, txId, payload, kind = 'reply') {
  const hdr = Buffer.alloc(HEADER);
  hdr.writeUInt32LE(type, 0);
  hdr.writeUInt32LE(reqId, 4);
  hdr.writeUInt32LE(txId, 8);
  hdr.writeUInt32LE(payload.length, 12);
  log({ conn: conn.id, dir: kind, type: TYPES[type] ?? type, req_id: reqId, tx_id: txId, ...payloadField(payload) });
  if (!conn.socket.destroyed) conn.socket.write(Buffer.concat([hdr, payload]));
}

// ---------------------------------------------------------------------------------------------
// Watches

/** The event path a watcher sees: relative if it set the watch with a relative path. */
function eventPath(watch, path) {
  if (watch.relative && path.startsWith(`${HOME}/`)) return path.slice(HOME.length + 1);
  return path;
}

function fireEvent(conn, watch, path) {
  send(conn, T.WATCH_EVENT, 0, 0, Buffer.concat([z(eventPath(watch, path)), z(watch.token)]), 'event');
}

/** Special paths (@introduceDomain) match only themselves; `exact` is for removed descendants. */
function matches(watch, { path, exact }) {
  if (exact || watch.path.startsWith('@') || path.startsWith('@')) return watch.path === path;
  return isUnder(path, watch.path);
}

function fireTriggers(triggers) {
  for (const t of triggers) {
    for (const conn of connections) {
      for (const w of conn.watches) if (matches(w, t)) fireEvent(conn, w, t.path);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Requests

/**
 * Runs fn on the store the request addresses: the live one, or the transaction's own copy, whose
 * reads see its writes. Mutations in a transaction are kept and replayed on the live store at
 * commit, which fires the watches then.
 */
function inContext(conn, txId, fn) {
  if (txId === 0) return fn(store, () => {});
  const tx = conn.transactions.get(txId);
  if (!tx) throw new XsError('ENOENT');
  // Every op touches a node before changing it, so the generation seen at the first touch is
  // the live store's at transaction start (0: the node did not exist).
  const touch = (path, node) => {
    if (!tx.depends.has(path)) tx.depends.set(path, node ? node.gen : 0);
  };
  return fn(tx.store, touch, tx);
}

function handle(conn, type, reqId, txId, payload) {
  const args = splitArgs(payload);
  const arg = (i) => {
    if (args[i] === undefined) throw new XsError('EINVAL');
    return str(args[i]);
  };
  switch (type) {
    case T.READ: {
      const path = canonical(arg(0));
      let value;
      inContext(conn, txId, (s, touch) => {
        value = opRead(s, path, touch).value;
      });
      return value;
    }
    case T.DIRECTORY: {
      const path = canonical(arg(0));
      let names;
      inContext(conn, txId, (s, touch) => {
        names = opRead(s, path, touch).children;
      });
      const reply = Buffer.from(names.map((c) => `${c}\0`).join(''), 'latin1');
      if (reply.length > PAYLOAD_MAX) throw new XsError('E2BIG');
      return reply;
    }
    case T.DIRECTORY_PART: {
      // Reply: generation NUL, then whole names from the byte offset on, then one more NUL once
      // the list is complete; the client repeats with the next offset until it sees that.
      const path = canonical(arg(0));
      const offset = Number(arg(1));
      if (!Number.isInteger(offset) || offset < 0) throw new XsError('EINVAL');
      let node;
      inContext(conn, txId, (s, touch) => {
        node = opRead(s, path, touch);
      });
      const all = Buffer.from(node.children.map((c) => `${c}\0`).join(''), 'latin1');
      const gen = z(String(node.gen));
      let end = offset;
      while (end < all.length) {
        const next = all.indexOf(0, end) + 1;
        if (gen.length + (next - offset) + 1 > PAYLOAD_MAX) break;
        end = next;
      }
      const chunk = offset >= all.length ? Buffer.alloc(0) : all.subarray(offset, end);
      const last = offset >= all.length || end >= all.length;
      return Buffer.concat([gen, chunk, last ? Buffer.from([0]) : Buffer.alloc(0)]);
    }
    case T.GET_PERMS: {
      const path = canonical(arg(0));
      let perms;
      inContext(conn, txId, (s, touch) => {
        perms = opRead(s, path, touch).perms;
      });
      return Buffer.from(perms.map((p) => `${p}\0`).join(''), 'latin1');
    }
    case T.WRITE: {
      // path NUL value: the value is everything after the first NUL, with no terminator, and may
      // itself contain NULs.
      const nul = payload.indexOf(0);
      if (nul < 0) throw new XsError('EINVAL');
      const path = canonical(payload.subarray(0, nul).toString('latin1'));
      const value = Buffer.from(payload.subarray(nul + 1));
      mutate(conn, txId, { op: 'write', path, value });
      return OK;
    }
    case T.MKDIR:
      mutate(conn, txId, { op: 'mkdir', path: canonical(arg(0)) });
      return OK;
    case T.RM:
      mutate(conn, txId, { op: 'rm', path: canonical(arg(0)) });
      return OK;
    case T.SET_PERMS: {
      const path = canonical(arg(0));
      mutate(conn, txId, { op: 'setperms', path, perms: args.slice(1).map(str) });
      return OK;
    }
    case T.WATCH: {
      const raw = arg(0);
      const token = arg(1);
      const path = canonical(raw, { allowSpecial: true });
      if (conn.watches.some((w) => w.path === path && w.token === token)) throw new XsError('EEXIST');
      const watch = { path, token, relative: !raw.startsWith('/') && !raw.startsWith('@') };
      conn.watches.push(watch);
      send(conn, T.WATCH, reqId, txId, OK);
      // A watch fires once when set, with the path as the client gave it: simplifies clients.
      fireEvent(conn, watch, path);
      return undefined;
    }
    case T.UNWATCH: {
      const path = canonical(arg(0), { allowSpecial: true });
      const token = arg(1);
      const i = conn.watches.findIndex((w) => w.path === path && w.token === token);
      if (i < 0) throw new XsError('ENOENT');
      conn.watches.splice(i, 1);
      return OK;
    }
    case T.RESET_WATCHES:
      conn.watches = [];
      return OK;
    case T.TRANSACTION_START: {
      if (txId !== 0) throw new XsError('EBUSY');
      const id = nextTxId++;
      // The copy keeps the live store's generations; depends records those of what it touches.
      conn.transactions.set(id, { store: cloneStore(store), ops: [], depends: new Map() });
      return z(String(id));
    }
    case T.TRANSACTION_END: {
      const tx = conn.transactions.get(txId);
      if (!tx) throw new XsError('ENOENT');
      const commit = arg(0);
      if (commit !== 'T' && commit !== 'F') throw new XsError('EINVAL');
      conn.transactions.delete(txId);
      if (commit === 'F') return OK;
      if (eagainCommits > 0) {
        eagainCommits--;
        throw new XsError('EAGAIN');
      }
      for (const [path, gen] of tx.depends) {
        const now = store.get(path);
        if ((now ? now.gen : 0) !== gen) throw new XsError('EAGAIN');
      }
      const triggers = [];
      for (const op of tx.ops) triggers.push(...applyOp(store, op, () => {}));
      fireTriggers(triggers);
      return OK;
    }
    case T.GET_DOMAIN_PATH: {
      const domid = arg(0);
      if (!/^[0-9]+$/.test(domid)) throw new XsError('EINVAL');
      return z(`/local/domain/${Number(domid)}`);
    }
    case T.IS_DOMAIN_INTRODUCED: {
      const domid = arg(0);
      if (!/^[0-9]+$/.test(domid)) throw new XsError('EINVAL');
      return z(introduced.has(String(Number(domid))) ? 'T' : 'F');
    }
    case T.INTRODUCE: {
      // domid, mfn, event channel port: the test has no ring to map, so it only remembers the
      // domain and tells @introduceDomain watchers, as xenstored does.
      const domid = arg(0);
      if (!/^[0-9]+$/.test(domid)) throw new XsError('EINVAL');
      introduced.add(String(Number(domid)));
      fireTriggers([{ path: '@introduceDomain', exact: true }]);
      return OK;
    }
    case T.RELEASE: {
      const domid = arg(0);
      if (!/^[0-9]+$/.test(domid)) throw new XsError('EINVAL');
      if (!introduced.delete(String(Number(domid)))) throw new XsError('ENOENT');
      fireTriggers([{ path: '@releaseDomain', exact: true }]);
      return OK;
    }
    case T.RESUME:
    case T.SET_TARGET:
      arg(0);
      return OK;
    case T.CONTROL: {
      // xenstore-control: "print <text>" is what test harnesses send; the rest needs a real daemon.
      // "test-eagain N" is this daemon's own: refuse the next N commits as if they conflicted,
      // which a test cannot otherwise time between a client's pipelined requests.
      const cmd = arg(0);
      if (cmd === 'print') return OK;
      if (cmd === 'test-eagain') {
        const n = Number(args[1] === undefined ? NaN : str(args[1]));
        if (!Number.isInteger(n) || n < 0) throw new XsError('EINVAL');
        eagainCommits = n;
        return OK;
      }
      if (cmd === 'help') return Buffer.from('Supported commands:\nhelp\nprint\ntest-eagain\n\0', 'latin1');
      throw new XsError('EINVAL');
    }
    default:
      throw new XsError('ENOSYS');
  }
}

function applyOp(s, op, touch) {
  switch (op.op) {
    case 'write':
      return opWrite(s, op.path, op.value, touch);
    case 'mkdir':
      return opMkdir(s, op.path, touch);
    case 'rm':
      return opRm(s, op.path, touch);
    case 'setperms':
      return opSetPerms(s, op.path, op.perms, touch);
    default:
      throw new Error(`unknown op ${op.op}`);
  }
}

function mutate(conn, txId, op) {
  if (txId === 0) {
    fireTriggers(applyOp(store, op, () => {}));
    return;
  }
  inContext(conn, txId, (s, touch, tx) => {
    applyOp(s, op, touch);
    tx.ops.push(op);
  });
}

// ---------------------------------------------------------------------------------------------
// Connections

function onData(conn, chunk) {
  // The replies to a pipelined burst leave in one write, not one per reply.
  conn.socket.cork();
  try {
    drain(conn, chunk);
  } finally {
    conn.socket.uncork();
  }
}

function drain(conn, chunk) {
  conn.buf = conn.buf.length ? Buffer.concat([conn.buf, chunk]) : chunk;
  while (conn.buf.length >= HEADER) {
    const type = conn.buf.readUInt32LE(0);
    const reqId = conn.buf.readUInt32LE(4);
    const txId = conn.buf.readUInt32LE(8);
    const len = conn.buf.readUInt32LE(12);
    if (len > PAYLOAD_MAX) {
      // xenstored drops a connection that breaks the framing; there is no way to resynchronise.
      log({ conn: conn.id, dir: 'drop', reason: `payload length ${len} > ${PAYLOAD_MAX}` });
      conn.socket.destroy();
      return;
    }
    if (conn.buf.length < HEADER + len) return;
    const payload = conn.buf.subarray(HEADER, HEADER + len);
    conn.buf = conn.buf.subarray(HEADER + len);
    log({ conn: conn.id, dir: 'request', type: TYPES[type] ?? type, req_id: reqId, tx_id: txId, ...payloadField(payload) });
    let reply;
    try {
      reply = handle(conn, type, reqId, txId, Buffer.from(payload));
    } catch (e) {
      if (!(e instanceof XsError)) {
        log({ conn: conn.id, dir: 'internal-error', message: String(e?.stack ?? e) });
        e = new XsError('EIO');
      }
      send(conn, T.ERROR, reqId, txId, z(e.code));
      continue;
    }
    if (reply !== undefined) send(conn, type, reqId, txId, reply);
  }
}

const server = net.createServer((socket) => {
  const conn = { id: nextConnId++, socket, buf: Buffer.alloc(0), watches: [], transactions: new Map() };
  connections.add(conn);
  log({ conn: conn.id, dir: 'connect' });
  socket.on('data', (chunk) => onData(conn, chunk));
  socket.on('error', () => {});
  socket.on('close', () => {
    // A client that goes away loses its watches and its open transactions, as with xenstored.
    connections.delete(conn);
    log({ conn: conn.id, dir: 'disconnect' });
  });
});

function shutdown(signal) {
  log({ dir: 'stop', signal });
  server.close();
  for (const c of connections) c.socket.destroy();
  try {
    unlinkSync(opts.socket);
  } catch {
    /* already gone */
  }
  if (opts.pidfile) {
    try {
      unlinkSync(opts.pidfile);
    } catch {
      /* already gone */
    }
  }
  process.exit(0);
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));

try {
  unlinkSync(opts.socket); // a socket left by a killed daemon would make listen fail
} catch {
  /* none */
}
server.on('error', (e) => {
  process.stderr.write(`xenstored.mjs: ${e.message}\n`);
  process.exit(1);
});
server.listen(opts.socket, () => {
  log({ dir: 'start', socket: opts.socket, pid: process.pid });
  // The pidfile appears only once the socket accepts connections: waiting for it is enough.
  if (opts.pidfile) writeFileSync(opts.pidfile, `${process.pid}\n`);
});
