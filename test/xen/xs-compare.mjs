#!/usr/bin/env node
/**
 * Tier 3, scenario 6: does the test xenstored (tier 1) see the same xenstore traffic from a hook
 * as the real oxenstored does under Xen? Run in dom0 by test/xen/dom0-tests.sh.
 *
 *   node xs-compare.mjs --real ACCESS_LOG --real-lines A:B --real-snapshot LS_FILE
 *                       --test TRAFFIC_JSONL --test-lines C:D
 *                       --be BACKEND --fe FRONTEND --test-be BACKEND --test-fe FRONTEND
 *                       --consumed bridge,ip,mac,mtu,vifname,frontend [--label TEXT]
 *
 * Real side: oxenstored's access log (access-log-read-ops/-transactions-ops/-special-ops on), lines
 * A..B (the window of one `xl create` or `xl destroy`). Every xenstore-utils process is one
 * anonymous connection "A<n>" with a newconn and an endconn; the hook's are those that open and
 * close inside the window and touch the vif's backend or frontend (xl's own connection lives
 * longer, netback's is D0). Values read are not logged, so they come from LS_FILE, an
 * `xenstore-ls -f BACKEND` taken right after the window.
 * Test side: test/xenstored/xenstored.mjs's --log (one JSON line per request and reply), lines
 * C..D, from the same hook call made as tier 1 makes it (test/xenstored/xenstored.bash seeds).
 *
 * Paths are compared relative to the vif (BE/…, FE/…), so the domid may differ. It fails when:
 *   - the keys written, or their values, differ (hotplug-status, the frontend's mtu, …);
 *   - the keys removed differ;
 *   - a key the hook consumes (--consumed) is read on one side and not on the other, or holds
 *     another value;
 *   - the client runs differ in kind (a directory walk, a write transaction) or number.
 * Other keys read on only one side (netback's feature-* keys, say) are listed, not failed: the
 * hook reads the whole directory in one xenstore-ls and uses only the consumed keys.
 * Prints a report; exit 0 when the two agree, 1 when not, 2 on bad input.
 */
import { readFileSync } from 'node:fs';

function args(argv) {
  const o = {};
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i];
    if (!k?.startsWith('--') || argv[i + 1] === undefined) usage(`bad argument ${k}`);
    o[k.slice(2)] = argv[i + 1];
  }
  for (const k of ['real', 'real-lines', 'real-snapshot', 'test', 'test-lines', 'be', 'fe', 'test-be', 'test-fe']) {
    if (!o[k]) usage(`--${k} is required`);
  }
  return o;
}

function usage(msg) {
  process.stderr.write(`xs-compare.mjs: ${msg}\n`);
  process.exit(2);
}

function lines(file, range) {
  const [a, b] = range.split(':').map(Number);
  return readFileSync(file, 'utf8').split('\n').slice(a, b);
}

/** An absolute path relative to the vif's two directories, or undefined when outside both. */
function relativize(path, be, fe) {
  for (const [dir, name] of [[be, 'BE'], [fe, 'FE']]) {
    if (path === dir) return name;
    if (path.startsWith(`${dir}/`)) return `${name}/${path.slice(dir.length + 1)}`;
  }
  return undefined;
}

/** Access-log operations that xenstore-ls/-read/-write never send: a connection with any is libxl's. */
const FOREIGN = new Set(['watch', 'unwatch', 'w event', 'w notfired', 'getdomain', 'introduce', 'release', 'is introduced', 'resume', 'reset watches', 'settarget', 'debug']);

/**
 * oxenstored access log → the client connections that opened and closed inside the window and
 * sent only what xenstore-utils send, each with its ops: {op, path, value}.
 */
function realConnections(text) {
  // [20261201T09:33:04.060Z]  A7           directory /local/domain/0/backend/vif/1/0
  // [20261201T09:33:16.000Z]  A9.1         write     /local/domain/1/device/vif/1/mtu 1400
  const ops = ['is introduced', 'reset watches', 'w notfired', 'w event', 't start', 't end', 'directory', 'read', 'write', 'rm', 'commit',
    'newconn', 'endconn', 'getperms', 'setperms', 'mkdir', 'error', 'coalesce', 'conflict', ...FOREIGN];
  const re = new RegExp(`^\\[[^\\]]*\\]\\s+(A\\d+)(?:\\.\\d+)?\\s+(${ops.map((x) => x.replace(' ', '\\s')).join('|')})(?:\\s+(.*))?$`);
  const conns = new Map();
  for (const line of text) {
    const m = re.exec(line);
    if (!m) continue;
    const [, id, op0, rest0] = m;
    const op = op0.replace(/\s+/, ' ');
    const rest = (rest0 ?? '').replace(/ $/, '');
    if (!conns.has(id)) conns.set(id, { id, open: false, closed: false, foreign: false, ops: [] });
    const c = conns.get(id);
    if (op === 'newconn') c.open = true;
    else if (op === 'endconn') c.closed = true;
    else if (FOREIGN.has(op)) c.foreign = true;
    else if (op === 'write') {
      const sp = rest.indexOf(' ');
      c.ops.push({ op, path: sp < 0 ? rest : rest.slice(0, sp), value: sp < 0 ? '' : rest.slice(sp + 1) });
    } else if (op === 't start') c.ops.push({ op: 'tstart' });
    else if (op === 't end') c.ops.push({ op: 'tend' });
    else if (['directory', 'read', 'rm', 'getperms', 'setperms', 'mkdir'].includes(op)) c.ops.push({ op, path: rest.split(' ')[0] });
  }
  return [...conns.values()].filter((c) => c.open && c.closed && !c.foreign);
}

/** test xenstored's JSON log → per connection, the ops (requests), with the values read. */
function testConnections(text) {
  const conns = new Map();
  const pending = new Map();
  for (const line of text) {
    if (!line.trim()) continue;
    let e;
    try {
      e = JSON.parse(line);
    } catch {
      continue;
    }
    if (e.conn === undefined) continue;
    if (!conns.has(e.conn)) conns.set(e.conn, { id: `C${e.conn}`, ops: [] });
    const c = conns.get(e.conn);
    const parts = (e.payload ?? '').split('\u0000');
    if (e.dir === 'request') {
      const op = { READ: 'read', DIRECTORY: 'directory', WRITE: 'write', RM: 'rm', TRANSACTION_START: 'tstart', TRANSACTION_END: 'tend', GET_PERMS: 'getperms', MKDIR: 'mkdir', SET_PERMS: 'setperms' }[e.type];
      if (!op) continue;
      const o = { op };
      if (op !== 'tstart' && op !== 'tend') o.path = parts[0];
      if (op === 'write') o.value = parts.slice(1).join('\u0000');
      c.ops.push(o);
      pending.set(`${e.conn}/${e.req_id}`, o);
    } else if (e.dir === 'reply') {
      const o = pending.get(`${e.conn}/${e.req_id}`);
      if (o && o.op === 'read' && e.type === 'READ') o.result = e.payload ?? '';
      if (o && e.type === 'ERROR') o.error = parts[0];
    }
  }
  return [...conns.values()];
}

function unquoteLs(v) {
  // xenstore-ls prints values sanitised: \\ \t \n \r \xhh \ooo; enough to undo for comparison.
  return v.replace(/\\(x[0-9a-fA-F]{2}|[0-7]{1,3}|.)/g, (_, e) =>
    e === 't' ? '\t' : e === 'n' ? '\n' : e === 'r' ? '\r' : e[0] === 'x' ? String.fromCharCode(parseInt(e.slice(1), 16)) : /^[0-7]+$/.test(e) ? String.fromCharCode(parseInt(e, 8)) : e);
}

function snapshot(file, be) {
  const m = new Map();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const x = /^(\S+) = "(.*)"$/.exec(line);
    if (x && x[1].startsWith(`${be}/`)) m.set(x[1].slice(be.length + 1), unquoteLs(x[2]));
  }
  return m;
}

/** A side's view: what its client runs did to the vif's directories. */
function summarize(conns, be, fe) {
  const runs = [];
  const read = new Set();
  const listed = new Set();
  const written = new Map();
  const removed = new Set();
  const values = new Map();
  for (const c of conns) {
    const rel = c.ops.map((o) => ({ ...o, rel: o.path !== undefined ? relativize(o.path, be, fe) : undefined }));
    if (!rel.some((o) => o.rel !== undefined)) continue;
    const kinds = new Set(rel.map((o) => o.op));
    const kind = kinds.has('write') || kinds.has('rm') ? (kinds.has('tstart') ? 'write-transaction' : 'write') : kinds.has('directory') ? 'directory-walk' : 'read';
    runs.push(kind);
    for (const o of rel) {
      if (o.rel === undefined) continue;
      if (o.op === 'read') {
        read.add(o.rel);
        if (o.result !== undefined && o.rel.startsWith('BE/')) values.set(o.rel.slice(3), o.result);
      } else if (o.op === 'directory') listed.add(o.rel);
      else if (o.op === 'write') written.set(o.rel, o.value);
      else if (o.op === 'rm') removed.add(o.rel);
    }
  }
  return { runs, read, listed, written, removed, values };
}

const o = args(process.argv.slice(2));
const consumed = (o.consumed ?? 'bridge,ip,mac,mtu,vifname,frontend').split(',');
const real = summarize(realConnections(lines(o.real, o['real-lines'])), o.be, o.fe);
real.values = snapshot(o['real-snapshot'], o.be);
const test = summarize(testConnections(lines(o.test, o['test-lines'])), o['test-be'], o['test-fe']);

const problems = [];
const notes = [];
const fmt = (m) => [...m].map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(' ') || '(none)';
const sorted = (s) => [...s].sort();

if (real.runs.length === 0) problems.push('no hook traffic found in the oxenstored access log window');
if (test.runs.length === 0) problems.push('no hook traffic found in the test xenstored log window');
if (real.runs.join(',') !== test.runs.join(',')) problems.push(`client runs differ: oxenstored [${real.runs}] vs test [${test.runs}]`);
const bySortedKey = (m) => fmt(new Map(sorted(m.keys()).map((k) => [k, m.get(k)])));
if (bySortedKey(real.written) !== bySortedKey(test.written)) {
  problems.push(`written differ: oxenstored ${bySortedKey(real.written)} vs test ${bySortedKey(test.written)}`);
}
if (sorted(real.removed).join(',') !== sorted(test.removed).join(',')) {
  problems.push(`removed differ: oxenstored [${sorted(real.removed)}] vs test [${sorted(test.removed)}]`);
}
for (const k of consumed) {
  const p = `BE/${k}`;
  const r = real.read.has(p);
  const t = test.read.has(p);
  if (r !== t) problems.push(`${p}: read ${r ? 'only from oxenstored' : 'only from the test xenstored'}`);
  else if (r && real.values.get(k) !== test.values.get(k)) {
    problems.push(`${p}: ${JSON.stringify(real.values.get(k))} under Xen vs ${JSON.stringify(test.values.get(k))} in the test xenstored`);
  }
}
const onlyReal = sorted(real.read).filter((p) => !test.read.has(p));
const onlyTest = sorted(test.read).filter((p) => !real.read.has(p));
if (onlyReal.length) notes.push(`read only under Xen (not consumed by the hook): ${onlyReal.join(' ')}`);
if (onlyTest.length) notes.push(`read only from the test xenstored (not consumed by the hook): ${onlyTest.join(' ')}`);

const label = o.label ?? 'hook';
console.log(`${label}: client runs [${real.runs}]; written ${bySortedKey(real.written)}; removed [${sorted(real.removed)}]`);
console.log(`${label}: consumed keys read: ${consumed.filter((k) => real.read.has(`BE/${k}`)).map((k) => `${k}=${JSON.stringify(real.values.get(k))}`).join(' ') || '(none)'}`);
for (const n of notes) console.log(`${label}: note: ${n}`);
for (const p of problems) console.log(`${label}: MISMATCH: ${p}`);
process.exit(problems.length ? 1 : 0);
