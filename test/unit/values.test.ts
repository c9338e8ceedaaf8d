import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvalidValue, parseValue } from '../../lib/cli/values.ts';
import { isValidIfname } from '../../lib/net/ifname.ts';

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

const guest = { kind: 'guest-ips' } as const;
const natIp = { kind: 'guest-ips', netmask: true } as const;

test('guest ips: canonical, IPv4 and IPv6, alone or as networks', () => {
  assert.deepEqual(parseValue(guest, '192.0.2.10 2001:DB8:0:0::0010'), ['192.0.2.10', '2001:db8::10']);
  assert.deepEqual(parseValue(guest, '192.0.2.0/24,2001:db8::/48'), ['192.0.2.0/24', '2001:db8::/48']);
  assert.deepEqual(parseValue(guest, '10.0.0.0/8 2001::/16'), ['10.0.0.0/8', '2001::/16']);
  assert.deepEqual(parseValue(guest, '192.0.2.10 192.0.2.10'), ['192.0.2.10']);
  assert.deepEqual(parseValue(guest, '0.1.2.3'.replace('0.', '100.')), ['100.1.2.3']);
  assert.deepEqual(parseValue(guest, ''), []);
});

test('guest ips: every malformed spelling is refused, with the value and the reason', () => {
  const cases: [string, RegExp][] = [
    ['192.0.2.011', /"011" has a leading zero/],
    ['192.0.2.08', /"08" has a leading zero/],
    ['010.0.2.1', /leading zero/],
    ['0x7f.0.0.1', /hexadecimal/],
    ['192.0.2.0x1', /hexadecimal/],
    ['1.2.3.4.5', /5 dot-separated parts, not 4/],
    ['1.2.3', /3 dot-separated parts/],
    ['3232235521', /1 dot-separated part/],
    ['192.0.2.1.', /empty octet/],
    ['.192.0.2.1', /empty octet/],
    ['192.0.2.256', /above 255/],
    ['192.0.2.-1', /not a decimal number/],
    ['192.0.2.1a', /not a decimal number/],
    ['192.0.2.+1', /not a decimal number/],
    ['192.0.2.1/33', /prefix length "33"/],
    ['192.0.2.1/024', /prefix length "024"/],
    ['192.0.2.1/', /prefix length ""/],
    ['192.0.2.1/24/1', /prefix length "24\/1"/],
    ['192.0.2.1/ 24', /whitespace|prefix length/],
    ['fe80::1%eth0', /zone index/],
    ['fe80::1%25eth0', /zone index/],
    ['::ffff:1.2.3.4', /IPv4-mapped/],
    ['::FFFF:c000:0201', /IPv4-mapped/],
    ['1:2:3:4:5:6:7:8:9', /9 groups, not 8/],
    ['1:2:3:4:5:6:7', /7 groups/],
    ['1::2::3', /only once/],
    ['2001:::1', /empty group/],
    [':1:2:3:4:5:6:7', /empty group/],
    ['1:2:3:4:5:6:7:', /empty group/],
    ['2001:db8::12345', /more than 4 hex digits/],
    ['2001:db8::g', /only hex digits/],
    ['1:2:3:4:5:6:7::8', /too many groups/],
    ['2001:db8::1.2.3.04', /leading zero/],
    ['2001:db8::1.2.3', /3 dot-separated/],
    ['1.2.3.4::1', /may only end/],
    ['2001:db8::1/129', /0-128/],
    [`2001:db8:${'0'.repeat(60)}::1`, /too long/],
    ['x', /1 dot-separated part/],
    ['192.0.2.1\u200b', /not a decimal number/],
  ];
  for (const [bad, why] of cases) {
    assert.throws(() => parseValue(guest, bad), (e: unknown) => {
      assert.ok(e instanceof InvalidValue, bad);
      assert.match(e.message, why, bad);
      assert.match(e.message, /; expected addresses separated by/, bad);
      return true;
    }, bad);
  }
});

test('guest ips: what parses but cannot be a guest\'s is refused (issue 12 item 7)', () => {
  const cases: [string, RegExp][] = [
    ['0.0.0.0/0', /a \/0 is shorter than \/8.*any address/],
    ['192.0.2.11/0', /a \/0 is shorter than \/8/],
    ['::/0', /a \/0 is shorter than \/16/],
    ['10.0.0.0/7', /a \/7 is shorter than \/8/],
    ['2000::/3', /a \/3 is shorter than \/16/],
    ['192.0.2.11/24', /host bits set: write the address alone \(192\.0\.2\.11\) or the network \(192\.0\.2\.0\/24\)/],
    ['2001:db8::1/64', /host bits set.*2001:db8::\/64/],
    ['0.0.0.0', /unspecified/],
    ['0.1.2.3', /unspecified/],
    ['::', /unspecified address/],
    ['127.0.0.1', /loopback/],
    ['::1', /loopback/],
    ['224.0.0.1', /multicast/],
    ['239.255.255.250', /multicast/],
    ['ff02::1', /multicast/],
    ['255.255.255.255', /broadcast/],
    ['192.0.2.10 127.0.0.0/8', /loopback/],
  ];
  for (const [bad, why] of cases) assert.throws(() => parseValue(guest, bad), why, bad);
});

test('vif-nat ip: one IPv4 address, the prefix is its netmask (host bits expected)', () => {
  assert.deepEqual(parseValue(natIp, '10.0.5.1/16'), ['10.0.5.1/16']);
  assert.deepEqual(parseValue(natIp, '10.0.5.1'), ['10.0.5.1']);
  assert.throws(() => parseValue(natIp, '10.0.5.1/0'), /shorter than \/8/);
  assert.throws(() => parseValue(natIp, '10.0.5.01'), /leading zero/);
  assert.throws(() => parseValue(natIp, '2001:db8::7'), /IPv4 only/);
  assert.throws(() => parseValue(natIp, '10.0.0.1 10.0.0.2'), /IPv4 only, one address/);
});

test('ipv4net (network-nat subnet): canonical network, prefix /8-/32, no host bits', () => {
  assert.equal(parseValue({ kind: 'ipv4net' }, '10.0.0.0/16'), '10.0.0.0/16');
  for (const [bad, why] of [['10.0.0.1/16', /host bits/], ['010.0.0.0/16', /leading zero/], ['10.0.0.0', /no \/prefix/], ['0.0.0.0/0', /shorter than \/8/], ['2001:db8::/32', /not IPv4/]] as const) {
    assert.throws(() => parseValue({ kind: 'ipv4net' }, bad), why, bad);
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
  assert.deepEqual(parseValue({ kind: 'vlans' }, '40@192.0.2.1/24@2001:DB8:0::1/64'), [{ id: 40, addresses: ['192.0.2.1/24', '2001:db8::1/64'] }]);
  for (const bad of ['0', '4095', '10,10', 'x', '10@192.0.2.1', '10@nonsense/24', '10,,20', '10@192.0.2.011/24', '10@fe80::1%eth0/64']) {
    assert.throws(() => parseValue({ kind: 'vlans' }, bad), InvalidValue, bad);
  }
});
