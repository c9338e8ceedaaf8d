import assert from 'node:assert/strict';
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { lockProtocol } from '../../lib/lock.ts';
import { checkBridgeRecord, checkVifBridgeRecord, checkVifNatRecord } from '../../lib/records.ts';
import { ShapeError } from '../../lib/record-shape.ts';
import { ensureDir, openAppend, UnsafePath, writeAtomic } from '../../lib/safe-file.ts';
import { BadRecord, StateStore } from '../../lib/state.ts';

const tmp = () => mkdtempSync(join(tmpdir(), 'xnh-state-'));

function withUmask<T>(mask: number, fn: () => T): T {
  const old = process.umask(mask);
  try {
    return fn();
  } finally {
    process.umask(old);
  }
}

test('record checks: the type on success, what is wrong (with the field path) on failure', () => {
  const ok = { version: 1, dev: 'vif1.0', bridge: 'xenbr0', firewall: 'nft', notrack: true, onlineAt: 't' };
  assert.deepEqual(checkVifBridgeRecord(ok), ok);
  assert.throws(() => checkVifBridgeRecord(null), (e: Error) => e instanceof ShapeError && e.message === 'the record is null, not an object');
  assert.throws(() => checkVifBridgeRecord({ ...ok, firewall: 'pf' }), /firewall is "pf", not one of iptables, nft, none/);
  assert.throws(() => checkVifBridgeRecord({ ...ok, dev: undefined }), /dev is missing, not a string/);
  const br = { version: 1, bridge: 'b', netdev: null, pdev: null, startedAt: 't', steps: [{ id: 'a', description: 'd', run: [{ argv: ['ip'] }], undo: [] }] };
  assert.deepEqual(checkBridgeRecord(br), br);
  assert.throws(() => checkBridgeRecord({ ...br, steps: 'x' }), /^Error: steps is a string, not a list$|steps is a string, not a list/);
  assert.throws(() => checkBridgeRecord({ ...br, steps: [{ id: 'a', description: 'd', run: [{ argv: [] }], undo: [] }] }), /steps\[0\]\.run\[0\]\.argv is empty/);
  assert.throws(() => checkVifNatRecord({ version: 1, onlineAt: 't' }), /layout is missing, not an object/);
});

test('StateStore: a missing record is undefined; empty, truncated, null, wrong-shaped and symlinked ones are BadRecords naming the file', () => {
  const env = { XEN_NETHOOKS_STATE_DIR: tmp() };
  const store = new StateStore(env, 'vif-bridge', checkVifBridgeRecord);
  assert.equal(store.read('1.0.vif'), undefined);
  const rec = { version: 1 as const, dev: 'vif1.0', bridge: 'xenbr0', firewall: 'iptables' as const, notrack: true, onlineAt: 't' };
  store.write('1.0.vif', rec);
  assert.deepEqual(store.read('1.0.vif'), rec);
  const path = store.path('1.0.vif');
  const cases: Array<[string, RegExp]> = [['', /is empty/], ['{"vers', /not JSON/], ['null', /the record is null/], ['[]', /is an array/]];
  for (const [text, why] of cases) {
    writeFileSync(path, text);
    assert.throws(() => store.read('1.0.vif'), (e: Error) => e instanceof BadRecord && e.message.includes(path) && why.test(e.message));
  }
  const target = join(env.XEN_NETHOOKS_STATE_DIR, 'target');
  writeFileSync(target, 'precious');
  store.remove('1.0.vif');
  symlinkSync(target, path);
  assert.throws(() => store.read('1.0.vif'), /symbolic link/);
  // all(): the bad one is reported, the good ones stay usable.
  store.write('2.0.vif', rec);
  const bad: BadRecord[] = [];
  const all = store.all((b) => bad.push(b));
  assert.deepEqual([...all.keys()], ['2.0.vif']);
  assert.equal(bad[0]?.key, '1.0.vif');
  assert.throws(() => store.all(), BadRecord);
  // Writing replaces the link itself, never what it points at.
  store.write('1.0.vif', rec);
  assert.equal(readFileSync(target, 'utf8'), 'precious');
  assert.ok(lstatSync(path).isFile());
});

test('modes are fixed whatever the umask; no temporary file is left', () => {
  const base = tmp();
  withUmask(0o000, () => {
    ensureDir(join(base, 'a', 'b'), 0o755);
    writeAtomic(join(base, 'a', 'b', 'f'), 'x', 0o644);
    openAppend(join(base, 'a', 'lock'), 0o644);
  });
  assert.equal(statSync(join(base, 'a')).mode & 0o7777, 0o755);
  assert.equal(statSync(join(base, 'a', 'b')).mode & 0o7777, 0o755);
  assert.equal(statSync(join(base, 'a', 'b', 'f')).mode & 0o7777, 0o644);
  assert.equal(statSync(join(base, 'a', 'lock')).mode & 0o7777, 0o644);
  assert.deepEqual(readdirSync(join(base, 'a', 'b')), ['f']);
  withUmask(0o077, () => writeAtomic(join(base, 'a', 'b', 'g'), 'x', 0o644));
  assert.equal(statSync(join(base, 'a', 'b', 'g')).mode & 0o7777, 0o644);
});

test('symbolic links are refused: a directory that is one, a file (lock, log) that is one, dangling or not', () => {
  const base = tmp();
  mkdirSync(join(base, 'real'));
  symlinkSync(join(base, 'real'), join(base, 'dir'));
  assert.throws(() => ensureDir(join(base, 'dir'), 0o755), (e: Error) => e instanceof UnsafePath && /symbolic link/.test(e.message));
  writeFileSync(join(base, 'target'), 'precious');
  symlinkSync(join(base, 'target'), join(base, 'lock'));
  symlinkSync(join(base, 'nowhere'), join(base, 'dangling'));
  assert.throws(() => openAppend(join(base, 'lock'), 0o644), UnsafePath);
  assert.throws(() => openAppend(join(base, 'dangling'), 0o644), UnsafePath);
  assert.equal(readFileSync(join(base, 'target'), 'utf8'), 'precious');
  assert.throws(() => lstatSync(join(base, 'nowhere')));
  mkdirSync(join(base, 'open'));
  chmodSync(join(base, 'open'), 0o777);
  assert.throws(() => ensureDir(join(base, 'open'), 0o755), /others may write to it/);
});

test("lock protocol: Xen 3.x's locking.sh (mkdir, no flock) vs Xen 4's (flock) vs none", () => {
  const base = tmp();
  const sh = join(base, 'locking.sh');
  const env = { XEN_NETHOOKS_LOCKING_SH: sh };
  assert.equal(lockProtocol(env).protocol, 'flock');
  writeFileSync(sh, '# flock was not used yet\n_claim_lock() {\n  mkdir "$lockdir" 2>/dev/null && return\n}\n');
  assert.equal(lockProtocol(env).protocol, 'mkdir');
  writeFileSync(sh, 'claim_lock() {\n  mkdir -p "$LOCK_BASEDIR"\n  flock -x $_lockfd\n}\n');
  assert.equal(lockProtocol(env).protocol, 'flock');
});
