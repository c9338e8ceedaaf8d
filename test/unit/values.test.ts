import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvalidValue, isValidCidr, isValidIfname, parseValue } from '../../lib/cli/values.ts';

test('interface names: 1-15 bytes, no slash, colon or whitespace', () => {
  for (const ok of ['eth0', 'eth0.10', 'enp3s0', 'xenbr0', 'a', 'abcdefghijklmno']) assert.ok(isValidIfname(ok), ok);
  for (const bad of ['', 'abcdefghijklmnop', 'eth0/1', 'eth0:1', 'eth 0', 'eth0\t', '.', '..', 'éééééééé']) {
    assert.ok(!isValidIfname(bad), bad);
  }
});

test('ifname special words are accepted only where declared', () => {
  assert.equal(parseValue({ kind: 'ifname', special: ['none'] }, 'none'), 'none');
  assert.equal(parseValue({ kind: 'ifname' }, 'none'), 'none'); // an ordinary name there
  assert.throws(() => parseValue({ kind: 'ifname', special: ['null'] }, 'bad/name'), InvalidValue);
});

test('CIDR: IPv4 and IPv6 with optional prefix', () => {
  for (const ok of ['192.0.2.1', '192.0.2.0/24', '0.0.0.0/0', '2001:db8::1', '2001:db8::/32', '::', '::1/128', 'fe80::1:2:3:4', '::ffff:192.0.2.1', '1:2:3:4:5:6:7:8']) {
    assert.ok(isValidCidr(ok), ok);
  }
  for (const bad of ['192.0.2', '192.0.2.256', '192.0.2.1/33', '2001:db8::1/129', '1:2:3:4:5:6:7:8:9', '2001:::1', 'x', '192.0.2.1/24/1', '192.0.2.1/', '1::2::3']) {
    assert.ok(!isValidCidr(bad), bad);
  }
});

test('booleans, integers, enums, MACs', () => {
  assert.equal(parseValue({ kind: 'bool' }, 'yes'), true);
  assert.equal(parseValue({ kind: 'bool' }, 'No'), false);
  assert.throws(() => parseValue({ kind: 'bool' }, 'maybe'), /yes or no/);
  assert.equal(parseValue({ kind: 'int', min: 0, max: 9 }, '7'), 7);
  assert.throws(() => parseValue({ kind: 'int', min: 0, max: 9 }, '10'), /0 to 9/);
  assert.throws(() => parseValue({ kind: 'int', min: 0, max: 9 }, '-1'), InvalidValue);
  assert.equal(parseValue({ kind: 'mac' }, '00:16:3E:AA:bb:cc'), '00:16:3e:aa:bb:cc');
  assert.throws(() => parseValue({ kind: 'mac' }, '00:16:3e:aa:bb'), /MAC/);
  assert.throws(() => parseValue({ kind: 'enum', values: ['vif', 'tap'] }, 'x'), /vif, tap/);
});

test('vlans: ids with optional addresses', () => {
  assert.deepEqual(parseValue({ kind: 'vlans' }, '30,40@192.0.2.1/24@2001:db8::1/64'), [
    { id: 30, addresses: [] },
    { id: 40, addresses: ['192.0.2.1/24', '2001:db8::1/64'] },
  ]);
  assert.deepEqual(parseValue({ kind: 'vlans' }, ''), []);
  for (const bad of ['0', '4095', '10,10', 'x', '10@192.0.2.1', '10@nonsense/24', '10,,20']) {
    assert.throws(() => parseValue({ kind: 'vlans' }, bad), InvalidValue, bad);
  }
});
