// The test xenstored at the wire level: what the real clients never send on their own
// (concurrent transactions, DIRECTORY_PART, INTRODUCE, bad framing) and the exact reply bytes.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect, type Client } from '../xenstored/client.mjs';

const DAEMON = new URL('../xenstored/xenstored.mjs', import.meta.url).pathname;

let dir: string;
let daemon: ChildProcess;
let socket: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'xenstored-unit.'));
  socket = join(dir, 'socket');
  daemon = spawn(process.execPath, [DAEMON, '--socket', socket, '--pidfile', join(dir, 'pid'), '--log', join(dir, 'log.jsonl')], {
    stdio: 'ignore',
  });
  for (let i = 0; i < 100 && !existsSync(join(dir, 'pid')); i++) await sleep(50);
  assert.ok(existsSync(join(dir, 'pid')), 'daemon did not start');
});

after(async () => {
  if (daemon.exitCode === null) {
    const gone = new Promise((r) => daemon.once('exit', r));
    daemon.kill('SIGTERM');
    await gone;
  }
  rmSync(dir, { recursive: true, force: true });
});

async function withClient<T>(fn: (c: Client) => Promise<T>): Promise<T> {
  const c = await connect(socket);
  try {
    return await fn(c);
  } finally {
    await c.close();
  }
}

const text = (b: Buffer) => b.toString('latin1');

describe('replies, byte for byte', () => {
  it('WRITE acks "OK\\0"; READ returns the value with no NUL; values may hold NULs', () =>
    withClient(async (c) => {
      const w = await c.request('WRITE', ['/u/a', 'x y\nz']);
      assert.equal(w.type, 'WRITE');
      assert.equal(text(w.payload), 'OK\0');
      assert.equal(text((await c.request('READ', ['/u/a'])).payload), 'x y\nz');
      await c.request('WRITE', Buffer.from('/u/nul\0a\0b'));
      assert.equal(text((await c.request('READ', ['/u/nul'])).payload), 'a\0b');
    }));

  it('DIRECTORY lists names each NUL-terminated, in creation order; empty is empty', () =>
    withClient(async (c) => {
      await c.request('WRITE', ['/u/d/b', '1']);
      await c.request('WRITE', ['/u/d/a', '2']);
      assert.equal(text((await c.request('DIRECTORY', ['/u/d'])).payload), 'b\0a\0');
      assert.equal((await c.request('DIRECTORY', ['/u/d/a'])).payload.length, 0);
    }));

  it('writes create parents with empty values; MKDIR of an existing node keeps its value', () =>
    withClient(async (c) => {
      await c.request('WRITE', ['/u/p/q/r', 'v']);
      assert.equal((await c.request('READ', ['/u/p/q'])).payload.length, 0);
      await c.request('MKDIR', ['/u/p/q/r']);
      assert.equal(text((await c.request('READ', ['/u/p/q/r'])).payload), 'v');
      await c.request('MKDIR', ['/u/m']);
      assert.equal((await c.request('READ', ['/u/m'])).type, 'READ');
    }));

  it('errors are XS_ERROR with the errno name', () =>
    withClient(async (c) => {
      const r = await c.request('READ', ['/u/missing']);
      assert.equal(r.type, 'ERROR');
      assert.equal(text(r.payload), 'ENOENT\0');
      assert.equal(text((await c.request('READ', ['/u/bad path'])).payload), 'EINVAL\0');
      assert.equal(text((await c.request('WRITE', ['/u/trailing/', 'x'])).payload), 'EINVAL\0');
      assert.equal(text((await c.request('WRITE', Buffer.from('/u/no-nul'))).payload), 'EINVAL\0');
      assert.equal(text((await c.request('RM', ['/'])).payload), 'EINVAL\0');
      assert.equal(text((await c.request('X', [], { rawType: 99 })).payload), 'ENOSYS\0');
      assert.equal(text((await c.request('READ', ['/u/a'], { tx: 12345 })).payload), 'ENOENT\0');
    }));

  it('relative paths are under /local/domain/0', () =>
    withClient(async (c) => {
      await c.request('WRITE', ['backend/vif/1/0/mac', '00:16:3e:00:00:01']);
      assert.equal(text((await c.request('READ', ['/local/domain/0/backend/vif/1/0/mac'])).payload), '00:16:3e:00:00:01');
    }));

  it('RM is recursive; a missing node is fine if its parent exists (C xenstored)', () =>
    withClient(async (c) => {
      await c.request('WRITE', ['/u/r/a/b', '1']);
      assert.equal(text((await c.request('RM', ['/u/r/a'])).payload), 'OK\0');
      assert.equal(text((await c.request('READ', ['/u/r/a/b'])).payload), 'ENOENT\0');
      assert.equal(text((await c.request('DIRECTORY', ['/u/r'])).payload), '');
      assert.equal(text((await c.request('RM', ['/u/r/gone'])).payload), 'OK\0');
      assert.equal(text((await c.request('RM', ['/u/r/gone/deeper'])).payload), 'ENOENT\0');
    }));

  it('permissions: stored and returned, "n0" by default, inherited by new children', () =>
    withClient(async (c) => {
      await c.request('WRITE', ['/u/perm', '']);
      assert.equal(text((await c.request('GET_PERMS', ['/u/perm'])).payload), 'n0\0');
      assert.equal(text((await c.request('SET_PERMS', ['/u/perm', 'n0', 'r5'])).payload), 'OK\0');
      assert.equal(text((await c.request('GET_PERMS', ['/u/perm'])).payload), 'n0\0r5\0');
      await c.request('WRITE', ['/u/perm/child', 'x']);
      assert.equal(text((await c.request('GET_PERMS', ['/u/perm/child'])).payload), 'n0\0r5\0');
      assert.equal(text((await c.request('SET_PERMS', ['/u/perm', 'z1'])).payload), 'EINVAL\0');
      assert.equal(text((await c.request('SET_PERMS', ['/u/nowhere', 'n0'])).payload), 'ENOENT\0');
    }));

  it('domain requests', () =>
    withClient(async (c) => {
      assert.equal(text((await c.request('GET_DOMAIN_PATH', ['7'])).payload), '/local/domain/7\0');
      assert.equal(text((await c.request('IS_DOMAIN_INTRODUCED', ['0'])).payload), 'T\0');
      assert.equal(text((await c.request('IS_DOMAIN_INTRODUCED', ['3'])).payload), 'F\0');
      assert.equal(text((await c.request('WATCH', ['@introduceDomain', 'i'])).payload), 'OK\0');
      assert.equal(text((await c.request('WATCH', ['@releaseDomain', 'r'])).payload), 'OK\0');
      await c.request('INTRODUCE', ['3', '1234', '5']);
      assert.equal(text((await c.request('IS_DOMAIN_INTRODUCED', ['3'])).payload), 'T\0');
      await c.request('RELEASE', ['3']);
      assert.equal(text((await c.request('IS_DOMAIN_INTRODUCED', ['3'])).payload), 'F\0');
      const ev = await c.waitEvents(4);
      assert.deepEqual(ev, [
        { path: '@introduceDomain', token: 'i' },
        { path: '@releaseDomain', token: 'r' },
        { path: '@introduceDomain', token: 'i' },
        { path: '@releaseDomain', token: 'r' },
      ]);
      assert.equal(text((await c.request('CONTROL', ['print', 'hello\0'])).payload), 'OK\0');
      assert.equal(text((await c.request('RESUME', ['3'])).payload), 'OK\0');
    }));

  it('DIRECTORY too big for one message is E2BIG; DIRECTORY_PART pages through it', () =>
    withClient(async (c) => {
      const names = Array.from({ length: 300 }, (_, i) => `key-number-${String(i).padStart(4, '0')}`);
      const tx = Number((await c.request('TRANSACTION_START', [''])).args[0]);
      for (const n of names) await c.request('WRITE', [`/u/big/${n}`, ''], { tx });
      await c.request('TRANSACTION_END', ['T'], { tx });
      assert.equal(text((await c.request('DIRECTORY', ['/u/big'])).payload), 'E2BIG\0');
      // The client's loop (xs_directory_part): offset in bytes, stop at a chunk ending "\0\0".
      let got = '';
      let gen: string | undefined;
      for (let guard = 0; guard < 20; guard++) {
        const r = await c.request('DIRECTORY_PART', ['/u/big', String(Buffer.byteLength(got))]);
        assert.equal(r.type, 'DIRECTORY_PART');
        assert.ok(r.payload.length <= 4096);
        const s = text(r.payload);
        const g = s.slice(0, s.indexOf('\0'));
        if (gen !== undefined) assert.equal(g, gen);
        gen = g;
        got += s.slice(s.indexOf('\0') + 1);
        if (got.endsWith('\0\0')) break;
      }
      assert.deepEqual(got.slice(0, -1).split('\0').slice(0, -1), names);
      assert.equal(text((await c.request('DIRECTORY_PART', ['/u/d/a', '0'])).payload).split('\0').length, 3); // "gen\0\0"
    }));
});

describe('transactions', () => {
  it('see their own writes; others do not until commit', async () => {
    const a = await connect(socket);
    const b = await connect(socket);
    try {
      const tx = Number((await a.request('TRANSACTION_START', [''])).args[0]);
      assert.ok(tx > 0);
      await a.request('WRITE', ['/t1/k', 'inside'], { tx });
      assert.equal(text((await a.request('READ', ['/t1/k'], { tx })).payload), 'inside');
      assert.equal(text((await a.request('DIRECTORY', ['/t1'], { tx })).payload), 'k\0');
      assert.equal(text((await b.request('READ', ['/t1/k'])).payload), 'ENOENT\0');
      assert.equal(text((await a.request('TRANSACTION_END', ['T'], { tx })).payload), 'OK\0');
      assert.equal(text((await b.request('READ', ['/t1/k'])).payload), 'inside');
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('abort discards; an ended transaction is gone', () =>
    withClient(async (c) => {
      const tx = Number((await c.request('TRANSACTION_START', [''])).args[0]);
      await c.request('WRITE', ['/t2/k', 'x'], { tx });
      await c.request('RM', ['/u'], { tx });
      assert.equal(text((await c.request('TRANSACTION_END', ['F'], { tx })).payload), 'OK\0');
      assert.equal(text((await c.request('READ', ['/t2/k'])).payload), 'ENOENT\0');
      assert.equal((await c.request('READ', ['/u/a'])).type, 'READ');
      assert.equal(text((await c.request('TRANSACTION_END', ['T'], { tx })).payload), 'ENOENT\0');
    }));

  it('conflict on a node the transaction touched is EAGAIN; unrelated changes are not', async () => {
    const a = await connect(socket);
    const b = await connect(socket);
    try {
      await b.request('WRITE', ['/t3/x', '1']);
      const t1 = Number((await a.request('TRANSACTION_START', [''])).args[0]);
      await a.request('READ', ['/t3/x'], { tx: t1 });
      await a.request('WRITE', ['/t3/y', 'a'], { tx: t1 });
      await b.request('WRITE', ['/t3/x', '2']);
      assert.equal(text((await a.request('TRANSACTION_END', ['T'], { tx: t1 })).payload), 'EAGAIN\0');
      assert.equal(text((await b.request('READ', ['/t3/y'])).payload), 'ENOENT\0');

      const t2 = Number((await a.request('TRANSACTION_START', [''])).args[0]);
      await a.request('WRITE', ['/t3/x/z', 'a'], { tx: t2 });
      await b.request('WRITE', ['/elsewhere/q', '1']);
      assert.equal(text((await a.request('TRANSACTION_END', ['T'], { tx: t2 })).payload), 'OK\0');

      // A node created meanwhile where the transaction saw none.
      const t3 = Number((await a.request('TRANSACTION_START', [''])).args[0]);
      assert.equal(text((await a.request('READ', ['/t3/new'], { tx: t3 })).payload), 'ENOENT\0');
      await a.request('WRITE', ['/t3/other', '1'], { tx: t3 });
      await b.request('WRITE', ['/t3/new', '1']);
      assert.equal(text((await a.request('TRANSACTION_END', ['T'], { tx: t3 })).payload), 'EAGAIN\0');
      assert.equal(text((await a.request('TRANSACTION_START', [''], { tx: 5 })).payload), 'EBUSY\0');
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe('watches', () => {
  it('fire once when set, then for the node and anything below, with the changed path', () =>
    withClient(async (c) => {
      await c.request('WATCH', ['/w1', 'tok']);
      await c.waitEvents(1);
      await c.request('WRITE', ['/w1/a/b', '1']);
      await c.request('WRITE', ['/w1x', 'not below']);
      await c.request('RM', ['/w1/a']);
      const ev = await c.waitEvents(3);
      await sleep(50);
      assert.deepEqual(c.events, [
        { path: '/w1', token: 'tok' },
        { path: '/w1/a/b', token: 'tok' },
        { path: '/w1/a', token: 'tok' },
      ]);
      assert.equal(ev.length, 3);
      assert.equal(text((await c.request('WATCH', ['/w1', 'tok'])).payload), 'EEXIST\0');
      assert.equal(text((await c.request('UNWATCH', ['/w1', 'tok'])).payload), 'OK\0');
      assert.equal(text((await c.request('UNWATCH', ['/w1', 'tok'])).payload), 'ENOENT\0');
      await c.request('WRITE', ['/w1/after', '1']);
      await sleep(50);
      assert.equal(c.events.length, 3);
    }));

  it('relative watches get relative paths; removing a parent fires watches on its children', async () => {
    const watcher = await connect(socket);
    const writer = await connect(socket);
    try {
      await writer.request('WRITE', ['backend/vif/9/0/state', '1']);
      await watcher.request('WATCH', ['backend/vif/9/0/state', 'st']);
      await watcher.request('WATCH', ['/local/domain/0/backend/vif/9', 'abs']);
      await watcher.waitEvents(2);
      await writer.request('RM', ['/local/domain/0/backend/vif/9']);
      const ev = await watcher.waitEvents(4);
      assert.deepEqual(ev.slice(2).sort((x, y) => x.token.localeCompare(y.token)), [
        { path: '/local/domain/0/backend/vif/9', token: 'abs' },
        { path: 'backend/vif/9/0/state', token: 'st' },
      ]);
    } finally {
      await watcher.close();
      await writer.close();
    }
  });

  it('transactions fire at commit, not before, and never when aborted', async () => {
    const watcher = await connect(socket);
    const writer = await connect(socket);
    try {
      await watcher.request('WATCH', ['/w3', 't']);
      await watcher.waitEvents(1);
      const tx = Number((await writer.request('TRANSACTION_START', [''])).args[0]);
      await writer.request('WRITE', ['/w3/a', '1'], { tx });
      await sleep(50);
      assert.equal(watcher.events.length, 1);
      await writer.request('TRANSACTION_END', ['T'], { tx });
      await watcher.waitEvents(2);
      const tx2 = Number((await writer.request('TRANSACTION_START', [''])).args[0]);
      await writer.request('WRITE', ['/w3/b', '1'], { tx: tx2 });
      await writer.request('TRANSACTION_END', ['F'], { tx: tx2 });
      await sleep(50);
      assert.deepEqual(watcher.events.map((e) => e.path), ['/w3', '/w3/a']);
    } finally {
      await watcher.close();
      await writer.close();
    }
  });

  it('a closed connection loses its watches', async () => {
    const c = await connect(socket);
    await c.request('WATCH', ['/w4', 'gone']);
    await c.close();
    await withClient(async (w) => {
      assert.equal(text((await w.request('WRITE', ['/w4/x', '1'])).payload), 'OK\0');
    });
  });
});

describe('robustness and the traffic log', () => {
  it('drops a connection that announces an oversized payload, and keeps serving others', async () => {
    const net = await import('node:net');
    await new Promise<void>((resolve, reject) => {
      const s = net.createConnection(socket, () => {
        const hdr = Buffer.alloc(16);
        hdr.writeUInt32LE(2, 0);
        hdr.writeUInt32LE(100000, 12);
        s.write(hdr);
      });
      s.on('close', () => resolve());
      s.on('error', reject);
    });
    await withClient(async (c) => assert.equal((await c.request('READ', ['/u/a'])).type, 'READ'));
  });

  it('logs every request, reply and event as one JSON line', async () => {
    await withClient(async (c) => {
      await c.request('WRITE', ['/log/k', 'v a l']);
    });
    const lines = readFileSync(join(dir, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const req = lines.find((l) => l.dir === 'request' && l.type === 'WRITE' && l.payload === '/log/k\0v a l');
    assert.ok(req, 'request logged');
    const rep = lines.find((l) => l.dir === 'reply' && l.conn === req.conn && l.type === 'WRITE');
    assert.equal(rep.payload, 'OK\0');
    assert.ok(lines.some((l) => l.dir === 'connect' && l.conn === req.conn));
    assert.ok(lines.some((l) => l.dir === 'event' && l.type === 'WATCH_EVENT'));
    for (const l of lines) assert.ok(typeof l.ts === 'string');
  });
});
