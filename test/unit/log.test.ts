import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { openLogFile, openOutput } from '../../lib/log.ts';

const dir = mkdtempSync(join(tmpdir(), 'xnh-log-'));

function lines(path: string): Record<string, unknown>[] {
  return readFileSync(path, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
}

test("a log line is pino's: level, epoch-ms time, pid, hostname, the hook's bindings, the fields, msg", async () => {
  const path = join(dir, 'a', 'xen-hotplug.log');
  const before = Date.now();
  const out = await openOutput('vif-bridge', { XEN_NETHOOKS_LOG: path }, { command: 'online', vif: 'vif1.0' });
  out.log.info({ step: 'port', cmd: 'ip link set vif1.0 up', exit: 0, ms: 1.5 }, 'run port');
  out.log.error({ step: 'guard', exit: 2, stderr: 'no' }, 'run guard failed');
  out.log.debug({ raw: 'x' }, 'detail');
  const [info, error, debug] = lines(path);
  assert.deepEqual(Object.keys(info!), ['level', 'time', 'pid', 'hostname', 'hook', 'command', 'vif', 'step', 'cmd', 'exit', 'ms', 'msg']);
  assert.equal(info!.level, 30);
  assert.equal(typeof info!.time, 'number');
  assert.ok((info!.time as number) >= before && (info!.time as number) <= Date.now());
  assert.equal(info!.pid, process.pid);
  assert.equal(info!.hostname, hostname());
  assert.equal(info!.hook, 'vif-bridge');
  assert.equal(info!.msg, 'run port');
  assert.equal(error!.level, 50);
  assert.equal(debug!.level, 20, 'debug lines are kept');
});

test('pino-pretty reads the log as it is', async () => {
  const path = join(dir, 'pretty.log');
  const out = await openOutput('network-bridge', { XEN_NETHOOKS_LOG: path }, { command: 'start' });
  out.log.info({ step: 'bridge', exit: 0 }, 'run bridge');
  const pretty = execFileSync(process.execPath, [require_resolve('pino-pretty/bin.js'), '--colorize=false'], { input: readFileSync(path) }).toString();
  assert.match(pretty, /INFO \(\d+\): run bridge/);
  assert.match(pretty, /hook: "network-bridge"/);
  assert.match(pretty, /step: "bridge"/);
});

function require_resolve(spec: string): string {
  return new URL(import.meta.resolve(spec)).pathname;
}

test('lines are appended to what the log holds (no truncation), and written before the call returns', async () => {
  const path = join(dir, 'append.log');
  writeFileSync(path, '{"level":30,"msg":"earlier"}\n');
  const out = await openOutput('vif-route', { XEN_NETHOOKS_LOG: path }, {});
  out.log.warn({}, 'now');
  assert.deepEqual(lines(path).map((l) => l.msg), ['earlier', 'now']);
});

test('a symlink planted at the log is not followed: no line reaches its target, the hook carries on and says so', async () => {
  const target = join(dir, 'target');
  writeFileSync(target, '');
  const path = join(dir, 'planted.log');
  symlinkSync(target, path);
  assert.throws(() => openLogFile(path), /ELOOP/);
  const said: string[] = [];
  const write = process.stderr.write;
  process.stderr.write = ((s: string) => said.push(s) > 0) as typeof process.stderr.write;
  try {
    const out = await openOutput('vif-bridge', { XEN_NETHOOKS_LOG: path }, {});
    out.log.info({}, 'must not land');
  } finally {
    process.stderr.write = write;
  }
  assert.equal(readFileSync(target, 'utf8'), '');
  assert.match(said.join(''), /vif-bridge: warning: cannot write log .*planted\.log: ELOOP/);
});

test('the log is created 0640 and its missing directories 0755, whatever the umask (000 here)', () => {
  const old = process.umask(0);
  try {
    const path = join(dir, 'u', 'v', 'xen-hotplug.log');
    closeSync(openLogFile(path));
    assert.equal(statSync(path).mode & 0o777, 0o640);
    assert.equal(statSync(join(dir, 'u')).mode & 0o777, 0o755);
    assert.equal(statSync(join(dir, 'u', 'v')).mode & 0o777, 0o755);
  } finally {
    process.umask(old);
  }
});

test('a log that cannot be opened costs the hook nothing but a warning', async () => {
  const path = join(dir, 'notadir');
  writeFileSync(path, '');
  const write = process.stderr.write;
  const said: string[] = [];
  process.stderr.write = ((s: string) => said.push(s) > 0) as typeof process.stderr.write;
  try {
    const out = await openOutput('vif-nat', { XEN_NETHOOKS_LOG: join(path, 'x.log') }, {});
    out.log.error({}, 'dropped');
  } finally {
    process.stderr.write = write;
  }
  assert.equal(existsSync(join(path, 'x.log')), false);
  assert.match(said.join(''), /vif-nat: warning: cannot write log .*x\.log: (ENOTDIR|EEXIST)/);
});
