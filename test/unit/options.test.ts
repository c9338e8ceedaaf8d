import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseInvocation } from '../../lib/cli/args.ts';
import { InvalidXenstore, optionsOf, overXenstore } from '../../lib/cli/precedence.ts';
import type { HookSpec } from '../../lib/cli/spec.ts';

const spec: HookSpec = {
  name: 'vif-test', summary: '', epilog: '',
  commands: [{ name: 'online', description: '' }],
  options: [
    { key: 'bridge', type: { kind: 'ifname' }, description: '' },
    { key: 'mtu', type: { kind: 'int', min: 68, max: 65535 }, description: '' },
    { key: 'ip', type: { kind: 'guest-ips' }, description: '' },
    { key: 'firewall', type: { kind: 'enum', values: ['iptables', 'nft', 'none'] }, default: 'iptables', description: '' },
  ],
};
const env = { XEN_NETHOOKS_CONF: '/dev/null' };

test('xenstore is the last layer of the chain: it wins over argv, by the same spec', () => {
  const inv = parseInvocation(spec, ['online', 'bridge=xenbr1', 'mtu=1500'], env);
  const o = overXenstore(spec, inv, new Map([['bridge', 'xenbr2'], ['ip', '192.0.2.1, 2001:db8::1'], ['mtu', ' ']]), ['bridge', 'ip', 'mtu']);
  assert.equal(o.text('bridge'), 'xenbr2');
  assert.equal(o.int('mtu'), 1500, 'an empty xenstore value leaves argv\'s');
  assert.deepEqual(o.list('ip'), ['192.0.2.1', '2001:db8::1']);
  assert.equal(o.choice('firewall', ['iptables', 'nft', 'none'] as const), 'iptables');
  assert.equal(optionsOf(inv).text('bridge'), 'xenbr1');
});

test('a malformed xenstore value fails the request, or is reported and left out (offline)', () => {
  const inv = parseInvocation(spec, ['online', 'mtu=1500'], env);
  assert.throws(() => overXenstore(spec, inv, new Map([['mtu', '9']]), ['mtu']), (e: unknown) => e instanceof InvalidXenstore && /invalid xenstore mtu="9"/.test(e.message));
  const said: string[] = [];
  assert.equal(overXenstore(spec, inv, new Map([['mtu', '9']]), ['mtu'], (m) => said.push(m)).int('mtu'), 1500);
  assert.match(said.join(), /\(ignored\)/);
});

test('a key read as another type than its spec gives is an internal error naming it', () => {
  const o = optionsOf(parseInvocation(spec, ['online', 'mtu=1500'], env));
  assert.throws(() => o.text('mtu'), /internal error: option mtu holds 1500, read as text/);
  assert.equal(o.text('bridge'), undefined);
});
