// lib/xenstore.ts over xenstored's socket (lib/xenstore-socket.ts), against the test xenstored:
// the same results as through the xenstore-utils clients, byte for byte, in few round trips and
// no process; and the clients still serve whenever the socket cannot.
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { run } from '../../lib/exec.ts';
import { closeAll, readTree, socketPaths, writePairs } from '../../lib/xenstore-socket.ts';
import * as xs from '../../lib/xenstore.ts';
import { connect } from '../xenstored/client.mjs';

const DAEMON = new URL('../xenstored/xenstored.mjs', import.meta.url).pathname;
const ROOT = new URL('../..', import.meta.url).pathname;
const haveClients = spawnSync('sh', ['-c', 'command -v xenstore-ls && command -v xenstore-write'], { stdio: 'ignore' }).status === 0;

let dir: string;
let socket: string;
let daemon: ChildProcess;
let logFile: string;
/** Wrappers of the xenstore-* clients that record each run and talk to the real daemon. */
let wrapDir: string;
let spawnLog: string;
const saved = { PATH: process.env.PATH, XENSTORED_PATH: process.env.XENSTORED_PATH, XEN_NETHOOKS_XENSTORE: process.env.XEN_NETHOOKS_XENSTORE };

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'xenstore-socket-unit.'));
  socket = join(dir, 'socket');
  logFile = join(dir, 'traffic.jsonl');
  daemon = spawn(process.execPath, [DAEMON, '--socket', socket, '--pidfile', join(dir, 'pid'), '--log', logFile], { stdio: 'ignore' });
  for (let i = 0; i < 100 && !existsSync(join(dir, 'pid')); i++) await sleep(50);
  assert.ok(existsSync(join(dir, 'pid')), 'daemon did not start');
  wrapDir = join(dir, 'bin');
  spawnLog = join(dir, 'spawned');
  mkdirSync(wrapDir);
  for (const tool of ['xenstore-ls', 'xenstore-read', 'xenstore-write', 'xenstore-rm', 'xenstore-exists']) {
    const real = execFileSync('sh', ['-c', `command -v ${tool} || echo /usr/bin/${tool}`], { encoding: 'utf8' }).trim();
    // The socket the hook is given may be unusable while the clients reach xenstored another
    // way (/dev/xen/xenbus): here, the real socket, whatever XENSTORED_PATH the caller has.
    writeFileSync(join(wrapDir, tool), `#!/bin/sh\necho ${tool} >>'${spawnLog}'\nXENSTORED_PATH='${socket}' exec '${real}' "$@"\n`);
    chmodSync(join(wrapDir, tool), 0o755);
  }
  process.env.XENSTORED_PATH = socket;
  process.env.PATH = `${wrapDir}:${saved.PATH}`;
});

beforeEach(() => {
  delete process.env.XEN_NETHOOKS_XENSTORE;
  process.env.XENSTORED_PATH = socket;
  writeFileSync(spawnLog, '');
});

afterEach(() => closeAll());

after(async () => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  closeAll();
  if (daemon.exitCode === null) {
    const gone = new Promise((r) => daemon.once('exit', r));
    daemon.kill('SIGTERM');
    await gone;
  }
  rmSync(dir, { recursive: true, force: true });
});

const spawned = () => readFileSync(spawnLog, 'utf8').split('\n').filter((l) => l !== '');
const traffic = () =>
  readFileSync(logFile, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as { conn?: number; dir: string; type?: string; tx_id?: number; payload?: string });

/** Runs fn with the clients forced (XEN_NETHOOKS_XENSTORE=cli). */
async function viaCli<T>(fn: () => Promise<T>): Promise<T> {
  process.env.XEN_NETHOOKS_XENSTORE = 'cli';
  try {
    return await fn();
  } finally {
    delete process.env.XEN_NETHOOKS_XENSTORE;
  }
}

/** Raw bytes of a node as the daemon holds them. */
async function rawRead(path: string): Promise<Buffer | undefined> {
  const c = await connect(socket);
  try {
    const r = await c.request('READ', [path]);
    return r.type === 'ERROR' ? undefined : r.payload;
  } finally {
    await c.close();
  }
}

async function rawWrite(path: string, value: Buffer | string): Promise<void> {
  const c = await connect(socket);
  try {
    await c.request('WRITE', Buffer.concat([Buffer.from(`${path}\0`), Buffer.from(value)]));
  } finally {
    await c.close();
  }
}

/**
 * A proxy in front of the daemon that counts round trips: a client send after a reply starts a
 * new one (the client waited for an answer before it could go on).
 */
async function withProxy<T>(fn: (path: string, turns: () => number) => Promise<T>): Promise<T> {
  const path = join(dir, `proxy-${process.hrtime.bigint()}`);
  let turns = 0;
  const server = net.createServer((down) => {
    const up = net.createConnection(socket);
    let answered = true;
    down.on('data', (b) => {
      if (answered) turns++;
      answered = false;
      up.write(b);
    });
    up.on('data', (b) => {
      answered = true;
      down.write(b);
    });
    down.on('close', () => up.destroy());
    up.on('close', () => down.destroy());
    down.on('error', () => {});
    up.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(path, r));
  try {
    return await fn(path, () => turns);
  } finally {
    closeAll();
    await new Promise((r) => server.close(r));
  }
}

const TRICKY = [
  'two  spaces ',
  'line1\nline2\r\n',
  'back\\slash \\n not a newline \\x41 \\101',
  'tab\there',
  'UTF-8: é ✓ 🐧',
  'quote " = "inner" "',
  '',
  '-1',
  '\u0001\u0007\u001b\u007f',
  'trailing backslash \\',
];

describe('readDir over the socket', { skip: !haveClients && 'xenstore-utils not installed' }, () => {
  it('equals what xenstore-ls -f gives: nested dirs, every kind of value, same order', async () => {
    const top = '/t/tree';
    await xs.write(TRICKY.map((v, i) => [`${top}/v${i}`, v] as const));
    await xs.write([[`${top}/sub/a`, '1'], [`${top}/sub/deeper/b`, 'x y'], [`${top}/sub/deeper/c/d`, 'deep'], [`${top}/z`, 'last']]);
    await rawWrite(`${top}/nul`, Buffer.from('a\0b'));
    await rawWrite(`${top}/latin1`, Buffer.from([0x63, 0x61, 0x66, 0xe9])); // not UTF-8
    const socketSide = await xs.readDir(top);
    assert.deepEqual(spawned(), [], 'no client ran');
    const cliSide = await viaCli(() => xs.readDir(top));
    assert.deepEqual(spawned(), ['xenstore-ls']);
    assert.deepEqual([...socketSide], [...cliSide]);
    for (const [i, v] of TRICKY.entries()) assert.equal(socketSide.get(`v${i}`), v);
    assert.equal(socketSide.get('sub/deeper/c/d'), 'deep');
    assert.equal(socketSide.get('sub/deeper'), '');
    assert.equal(socketSide.get('nul'), 'a\0b');
  });

  it('a flat directory the size of a vif backend (and twice that) costs two round trips', () =>
    withProxy(async (path, turns) => {
      const top = '/t/flat';
      await xs.write(Array.from({ length: 30 }, (_, i) => [`${top}/k${i}`, String(i)] as const));
      closeAll();
      process.env.XENSTORED_PATH = path;
      const before = turns();
      const got = await xs.readDir(top);
      assert.equal(got.size, 30);
      assert.equal(turns() - before, 2);
    }));

  it('relative paths are under /local/domain/0; a missing dir is not-found', async () => {
    await xs.write([['backend/vif/7/0/mac', '00:16:3e:00:07:00']]);
    assert.equal((await xs.readDir('backend/vif/7/0')).get('mac'), '00:16:3e:00:07:00');
    for (const mode of ['socket', 'cli']) {
      const attempt = () => xs.readDir('/t/no/such/dir');
      await assert.rejects(mode === 'cli' ? viaCli(attempt) : attempt(), (e: unknown) => {
        assert.ok(e instanceof xs.XenstoreError, mode);
        assert.equal(e.reason, 'not-found', mode);
        assert.equal(e.message, 'cannot list /t/no/such/dir: no such xenstore node', mode);
        return true;
      });
    }
    assert.deepEqual(spawned(), ['xenstore-ls'], 'only the forced run spawned a client');
  });

  it('a directory too big for one reply goes to the clients (they page with DIRECTORY_PART)', async () => {
    await xs.write(Array.from({ length: 300 }, (_, i) => [`/t/big/key-number-${String(i).padStart(4, '0')}`, String(i)] as const));
    writeFileSync(spawnLog, '');
    const got = await xs.readDir('/t/big');
    assert.equal(got.get('key-number-0299'), '299');
    assert.deepEqual(spawned(), ['xenstore-ls']);
  });
});

describe('read, exists, rm over the socket', { skip: !haveClients && 'xenstore-utils not installed' }, () => {
  it('read and readOptional: the value exactly, not-found for a missing node', async () => {
    await xs.write([['/t/r/v', 'a "b"\n\\c é']]);
    assert.equal(await xs.read('/t/r/v'), 'a "b"\n\\c é');
    assert.equal(await xs.readOptional('/t/r/missing'), undefined);
    await assert.rejects(xs.read('/t/r/missing'), (e: unknown) => e instanceof xs.XenstoreError && e.reason === 'not-found' && e.path === '/t/r/missing');
    assert.equal(await viaCli(() => xs.read('/t/r/v')), 'a "b"\n\\c é');
    assert.deepEqual(spawned(), ['xenstore-read']);
  });

  it('exists and rm, paths whose parent is gone included', async () => {
    await xs.write([['/t/x/a/b', '1'], ['/t/x/keep', '1']]);
    assert.equal(await xs.exists('/t/x/a'), true);
    assert.equal(await xs.exists('/t/x/nope'), false);
    await xs.rm(['/t/x/a', '/t/gone/and/parent']);
    assert.equal(await xs.exists('/t/x/a'), false);
    assert.equal(await xs.exists('/t/x/keep'), true);
    assert.deepEqual(spawned(), []);
  });
});

describe('writes over the socket', { skip: !haveClients && 'xenstore-utils not installed' }, () => {
  it('store exactly the bytes xenstore-write stores, through write() and the plan builtin', async () => {
    const pairs = (root: string) => TRICKY.map((v, i) => [`${root}/v${i}`, v] as const);
    await xs.write(pairs('/t/w/lib'));
    const r = await run(xs.writeCommand(pairs('/t/w/builtin')));
    assert.equal(r.exitCode, 0, r.stderr);
    assert.deepEqual(spawned(), [], 'no client ran');
    await viaCli(() => xs.write(pairs('/t/w/cli')));
    assert.deepEqual(spawned(), ['xenstore-write']);
    for (const [i, v] of TRICKY.entries()) {
      const cli = await rawRead(`/t/w/cli/v${i}`);
      assert.deepEqual(cli, Buffer.from(v, 'utf8'), `cli v${i}`);
      assert.deepEqual(await rawRead(`/t/w/lib/v${i}`), cli, `lib v${i}`);
      assert.deepEqual(await rawRead(`/t/w/builtin/v${i}`), cli, `builtin v${i}`);
    }
  });

  it('several pairs are one transaction: three round trips, every WRITE in it', () =>
    withProxy(async (path, turns) => {
      process.env.XENSTORED_PATH = path;
      const before = turns();
      const mark = traffic().length;
      await xs.write([['/t/tx/a', '1'], ['/t/tx/b', '2'], ['/t/tx/c', '3']]);
      assert.equal(turns() - before, 3);
      const mine = traffic().slice(mark).filter((l) => l.dir === 'request');
      assert.deepEqual(mine.map((l) => l.type), ['TRANSACTION_START', 'WRITE', 'WRITE', 'WRITE', 'TRANSACTION_END']);
      assert.equal(new Set(mine.slice(1).map((l) => l.tx_id)).size, 1);
      assert.notEqual(mine[1]!.tx_id, 0);
      assert.equal(mine[4]!.payload, 'T\u0000');
    }));

  it('a write xenstored refuses writes nothing, and fails as the client fails', async () => {
    // Not through writeCommand (it refuses the bad path itself): argv as a caller could give it.
    const argv = (root: string) => ['xenstore-write', '--', `${root}/ok`, '1', `${root}/bad path`, 'x'];
    const viaSocket = await run({ argv: argv('/t/atomic/s') });
    assert.deepEqual(spawned(), []);
    const viaClient = await viaCli(() => run({ argv: argv('/t/atomic/c') }));
    assert.deepEqual(spawned(), ['xenstore-write']);
    assert.equal(viaClient.exitCode, 1);
    assert.equal(viaSocket.exitCode, viaClient.exitCode);
    assert.match(viaClient.stderr, /^xenstore-write: could not write path \/t\/atomic\/c\/bad path\n$/);
    assert.match(viaSocket.stderr, /^xenstore-write: could not write path \/t\/atomic\/s\/bad path \(EINVAL\)\n$/);
    assert.equal(await rawRead('/t/atomic/s/ok'), undefined, 'socket: transaction abandoned');
    assert.equal(await rawRead('/t/atomic/c/ok'), undefined, 'client: transaction abandoned');
  });

  it('a value too big for one message is refused before sending, as libxenstore does', async () => {
    await assert.rejects(xs.write([['/t/huge', 'x'.repeat(5000)]]), (e: unknown) => {
      assert.ok(e instanceof xs.XenstoreError);
      assert.equal(e.reason, 'failed');
      assert.equal(e.path, '/t/huge');
      return true;
    });
    assert.deepEqual(spawned(), []);
    assert.equal(await rawRead('/t/huge'), undefined);
  });

  it('a commit refused with EAGAIN is retried from the start; endless conflicts give up', async () => {
    const control = async (n: number) => {
      const c = await connect(socket);
      await c.request('CONTROL', ['test-eagain', String(n)]);
      await c.close();
    };
    await control(2);
    const mark = traffic().length;
    await xs.write([['/t/again/a', '1'], ['/t/again/b', '2']]);
    const mine = traffic().slice(mark);
    assert.equal(mine.filter((l) => l.dir === 'request' && l.type === 'TRANSACTION_START').length, 3);
    assert.equal(mine.filter((l) => l.dir === 'reply' && l.type === 'ERROR' && l.payload === 'EAGAIN\u0000').length, 2);
    assert.deepEqual(await rawRead('/t/again/b'), Buffer.from('2'));

    await control(1000);
    try {
      await assert.rejects(xs.write([['/t/never/a', '1'], ['/t/never/b', '2']]), (e: unknown) => {
        assert.ok(e instanceof xs.XenstoreError);
        assert.equal(e.reason, 'failed');
        assert.match(e.message, /couldn't end transaction \(EAGAIN\)/);
        return true;
      });
    } finally {
      await control(0);
    }
    assert.equal(await rawRead('/t/never/a'), undefined);
  });

  it('argv the builtin does not imitate (an option-like word without "--") goes to the client', async () => {
    const plain = await run({ argv: ['xenstore-write', '/t/opt/a', 'v'] });
    assert.equal(plain.exitCode, 0, plain.stderr);
    assert.deepEqual(spawned(), [], 'no option-like word: served');
    const neg = await run({ argv: ['xenstore-write', '/t/opt/b', '-1'] });
    assert.deepEqual(spawned(), ['xenstore-write']);
    assert.notEqual(neg.exitCode, 0, 'the client reads -1 as an option, and so must this');
    assert.equal(await rawRead('/t/opt/b'), undefined);
  });
});

describe('when the socket cannot serve, the clients do', { skip: !haveClients && 'xenstore-utils not installed' }, () => {
  it('socket paths as libxenstore chooses them', () => {
    assert.deepEqual(socketPaths({ XENSTORED_PATH: '/x/s', XENSTORED_RUNDIR: '/r' }), ['/x/s']);
    assert.deepEqual(socketPaths({ XENSTORED_RUNDIR: '/r' }), ['/r/socket']);
    assert.deepEqual(socketPaths({}), ['/var/run/xenstored/socket', '/run/xenstored/socket']);
  });

  it('no socket, a stale one, a file that is no socket: undefined, never an error', async () => {
    // A daemon killed without cleaning up leaves its socket: connecting is refused.
    const stale = join(dir, 'stale');
    const killed = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(stale)}, () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'ignore'] });
    await new Promise((r) => killed.stdout!.once('data', r));
    const gone = new Promise((r) => killed.once('exit', r));
    killed.kill('SIGKILL');
    await gone;
    assert.ok(existsSync(stale));
    const plain = join(dir, 'plain-file');
    writeFileSync(plain, '');
    for (const path of [join(dir, 'nothing-here'), stale, plain, '/dev/null']) {
      assert.equal(await readTree('/local', { XENSTORED_PATH: path }), undefined, path);
      assert.equal(await writePairs([['/t/never', Buffer.from('1')]], { XENSTORED_PATH: path }), undefined, path);
    }
    assert.equal(await rawRead('/t/never'), undefined);
  });

  it('hook socket unusable, clients working: every operation still succeeds, through them', async () => {
    process.env.XENSTORED_PATH = join(dir, 'nothing-here');
    await xs.write([['/t/fb/a', 'x y'], ['/t/fb/b/c', 'z']]);
    const r = await run(xs.writeCommand([['/t/fb/plan', 'p']]));
    assert.equal(r.exitCode, 0, r.stderr);
    assert.deepEqual(Object.fromEntries(await xs.readDir('/t/fb')), { a: 'x y', b: '', 'b/c': 'z', plan: 'p' });
    assert.equal(await xs.read('/t/fb/a'), 'x y');
    assert.equal(await xs.exists('/t/fb/b'), true);
    await xs.rm(['/t/fb/b']);
    assert.equal(await xs.exists('/t/fb/b'), false);
    assert.deepEqual(spawned(), ['xenstore-write', 'xenstore-write', 'xenstore-ls', 'xenstore-read', 'xenstore-exists', 'xenstore-rm', 'xenstore-exists']);
  });

  it('a connection xenstored drops mid-request: the clients serve it', async () => {
    const path = join(dir, 'dropper');
    const server = net.createServer((c) => c.once('data', () => c.destroy()));
    await new Promise<void>((r) => server.listen(path, r));
    try {
      process.env.XENSTORED_PATH = path;
      await xs.write([['/t/drop/a', '1']]);
      assert.equal((await xs.readDir('/t/drop')).get('a'), '1');
      assert.deepEqual(spawned(), ['xenstore-write', 'xenstore-ls']);
    } finally {
      closeAll();
      await new Promise((r) => server.close(r));
    }
  });

  it('neither socket nor clients: unavailable', async () => {
    process.env.XENSTORED_PATH = join(dir, 'nothing-here');
    process.env.PATH = saved.PATH; // the real clients, which use XENSTORED_PATH as given
    try {
      await assert.rejects(xs.readDir('/t'), (e: unknown) => e instanceof xs.XenstoreError && e.reason === 'unavailable');
      await assert.rejects(xs.write([['/t/u', '1']]), (e: unknown) => e instanceof xs.XenstoreError && e.reason === 'unavailable');
    } finally {
      process.env.PATH = `${wrapDir}:${saved.PATH}`;
    }
  });

  it("an env given per call wins over process.env's XENSTORED_PATH, for the socket too", async () => {
    await xs.write([['/t/env/k', 'v']]);
    process.env.XENSTORED_PATH = join(dir, 'nothing-here');
    process.env.PATH = saved.PATH; // so only the socket (or a client told of it) can succeed
    try {
      assert.equal(await xs.read('/t/env/k', { env: { XENSTORED_PATH: socket } }), 'v');
      assert.equal((await xs.readDir('/t/env', { env: { XENSTORED_PATH: socket } })).get('k'), 'v');
      await xs.write([['/t/env/w', '1']], { env: { XENSTORED_PATH: socket } });
    } finally {
      process.env.PATH = `${wrapDir}:${saved.PATH}`;
    }
    assert.deepEqual(await rawRead('/t/env/w'), Buffer.from('1'));
    assert.deepEqual(spawned(), []);
  });
});

describe('the connection and the process', { skip: !haveClients && 'xenstore-utils not installed' }, () => {
  it('one connection for a whole run of calls', async () => {
    const mark = traffic().length;
    await xs.readDir('/local/domain/0');
    await xs.write([['/t/one/a', '1'], ['/t/one/b', '2']]);
    await run(xs.writeCommand([['/t/one/c', '3']]));
    await xs.read('/t/one/a');
    assert.equal(traffic().slice(mark).filter((l) => l.dir === 'connect').length, 1);
  });

  it('keeps no process alive, and lets none exit before its reply', () => {
    const script = `import('${ROOT}lib/xenstore.ts').then(async (xs) => { await xs.write([['/t/exit/a', 'done']]); console.log(JSON.stringify(Object.fromEntries(await xs.readDir('/t/exit')))); })`;
    const started = Date.now();
    const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], { cwd: ROOT, encoding: 'utf8', env: { ...process.env }, timeout: 20_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), '{"a":"done"}');
    assert.ok(Date.now() - started < 15_000, 'exited on its own');
    assert.deepEqual(spawned(), []);
  });
});
