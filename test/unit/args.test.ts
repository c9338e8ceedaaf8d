import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseConfig, parseInvocation, UsageError } from '../../lib/cli/args.ts';
import type { HookSpec } from '../../lib/cli/spec.ts';

const spec: HookSpec = {
  name: 'demo-hook',
  summary: 'test',
  commands: [{ name: 'start', description: '' }, { name: 'stop', description: '' }],
  options: [
    { key: 'bridge', type: { kind: 'ifname' }, description: '' },
    { key: 'antispoof', type: { kind: 'bool' }, default: 'no', description: '' },
    { key: 'vifnum', type: { kind: 'int', min: 0, max: 9 }, description: '' },
  ],
  epilog: '',
};

function conf(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'xnh-args-'));
  const p = join(dir, 'nethooks.conf');
  writeFileSync(p, text);
  return p;
}

test('first word without = is the command, key=value words are options', () => {
  const inv = parseInvocation(spec, ['start', 'bridge=xenbr1', 'antispoof=yes'], { XEN_NETHOOKS_CONF: '/dev/null' });
  assert.equal(inv.command, 'start');
  assert.equal(inv.options.get('bridge'), 'xenbr1');
  assert.equal(inv.options.get('antispoof'), true);
  assert.equal(inv.sources.get('bridge'), 'argv');
});

test('options may come before the command, as wrappers pass "$@" first or last', () => {
  const inv = parseInvocation(spec, ['vifnum=1', 'stop'], { XEN_NETHOOKS_CONF: '/dev/null' });
  assert.equal(inv.command, 'stop');
  assert.equal(inv.options.get('vifnum'), 1);
});

test('precedence: default < config file < environment < argv', () => {
  const p = conf('# comment\nbridge = fromconf\nantispoof=yes\nvifnum=3\n');
  let inv = parseInvocation(spec, ['start'], { XEN_NETHOOKS_CONF: p });
  assert.equal(inv.options.get('bridge'), 'fromconf');
  assert.equal(inv.options.get('antispoof'), true);
  assert.equal(inv.sources.get('antispoof'), 'config');
  inv = parseInvocation(spec, ['start'], { XEN_NETHOOKS_CONF: p, bridge: 'fromenv' });
  assert.equal(inv.options.get('bridge'), 'fromenv');
  inv = parseInvocation(spec, ['start', 'bridge=fromargv'], { XEN_NETHOOKS_CONF: p, bridge: 'fromenv' });
  assert.equal(inv.options.get('bridge'), 'fromargv');
  assert.equal(inv.options.get('vifnum'), 3);
});

test('empty environment variables count as unset (libxl exports netdev= empty)', () => {
  const inv = parseInvocation(spec, ['start'], { XEN_NETHOOKS_CONF: '/dev/null', bridge: '' });
  assert.equal(inv.options.has('bridge'), false);
});

test('config keys scoped to another hook are ignored; to this hook, applied', () => {
  const p = conf('other-hook.bridge=nope\ndemo-hook.bridge=mine\nunknownkey=1\n');
  const inv = parseInvocation(spec, ['start'], { XEN_NETHOOKS_CONF: p });
  assert.equal(inv.options.get('bridge'), 'mine');
});

test('a scoped unknown key in the config file is an error naming file and line', () => {
  const p = conf('\ndemo-hook.bogus=1\n');
  assert.throws(() => parseInvocation(spec, ['start'], { XEN_NETHOOKS_CONF: p }), (e: Error) =>
    e instanceof UsageError && e.message.includes('bogus') && e.message.includes(`${p}:2`));
});

test('a malformed config value names key, value, file and what is accepted', () => {
  const p = conf('vifnum=12\n');
  assert.throws(() => parseInvocation(spec, ['start'], { XEN_NETHOOKS_CONF: p }), /invalid vifnum="12" in .*:1: expected an integer from 0 to 9/);
});

test('an explicitly named config file must exist', () => {
  assert.throws(() => parseInvocation(spec, ['start'], { XEN_NETHOOKS_CONF: '/nonexistent/nethooks.conf' }), /cannot read config file/);
});

test('unknown keys, flags and commands are usage errors that list what is accepted', () => {
  const env = { XEN_NETHOOKS_CONF: '/dev/null' };
  assert.throws(() => parseInvocation(spec, ['start', 'brige=x'], env), /unknown key 'brige'.*accepted keys: bridge, antispoof, vifnum/);
  assert.throws(() => parseInvocation(spec, ['start', '--force'], env), /unknown option --force/);
  assert.throws(() => parseInvocation(spec, ['restart'], env), /Invalid command 'restart'; expected one of start, stop/);
  assert.throws(() => parseInvocation(spec, ['start', 'stop'], env), /unexpected word 'stop'/);
  assert.throws(() => parseInvocation(spec, ['start', 'bridge=a:b'], env), /invalid bridge="a:b": expected an interface name/);
});

test("empty words (xend splits its network-script line on single spaces) are ignored, as the originals' loops do", () => {
  // (network-script 'network-bridge  netdev=eth0 bridge=xenbr0 ') with start put first.
  const inv = parseInvocation(spec, ['start', '', 'bridge=xenbr0', ''], { XEN_NETHOOKS_CONF: '/dev/null' });
  assert.equal(inv.command, 'start');
  assert.equal(inv.options.get('bridge'), 'xenbr0');
  assert.equal(parseInvocation(spec, ['', 'stop'], { XEN_NETHOOKS_CONF: '/dev/null' }).command, 'stop');
});

test('flags', () => {
  const inv = parseInvocation(spec, ['start', '--dry-run', '--json'], { XEN_NETHOOKS_CONF: '/dev/null' });
  assert.deepEqual(inv.flags, { help: false, dryRun: true, json: true });
  assert.equal(parseInvocation(spec, ['--help'], { XEN_NETHOOKS_CONF: '/dev/null' }).flags.help, true);
});

test('parseConfig rejects lines that are not key=value', () => {
  assert.throws(() => parseConfig('just words\n', 'f'), /f:1: expected key=value/);
  assert.deepEqual(parseConfig('a="quoted value"\n', 'f'), [{ key: 'a', value: 'quoted value', line: 1 }]);
});
