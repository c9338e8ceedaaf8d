import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dom0Clash } from '../../lib/net/guest-address.ts';
import type { HostState } from '../../lib/net/host.ts';
import { hostBitsSet, overlaps, parseAddress, parsePrefix } from '../../lib/net/ip.ts';

test('IPv6 is handed on in RFC 5952 form', () => {
  const cases: [string, string][] = [
    ['2001:DB8::1', '2001:db8::1'],
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // the first of two equal runs
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // one zero group is not shortened
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'], // the longest run
    ['0:0:0:0:0:0:0:0', '::'],
    ['0::1', '::1'],
    ['fe80::', 'fe80::'],
    ['1:0:0:0:0:0:0:0', '1::'],
    ['64:ff9b::192.0.2.1', '64:ff9b::c000:201'],
    ['::192.0.2.1', '::c000:201'],
    ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
    ['1:2:3:4:5:6::8', '1:2:3:4:5:6:0:8'],
  ];
  for (const [input, want] of cases) assert.equal(parseAddress(input).text, want, input);
});

test('IPv4 text is already canonical when it parses', () => {
  for (const ok of ['0.0.0.0', '192.0.2.1', '255.255.255.255', '10.0.0.10', '100.64.0.0']) assert.equal(parseAddress(ok).text, ok);
});

test('prefixes: host bits, overlap', () => {
  assert.ok(hostBitsSet(parsePrefix('192.0.2.1/24')));
  assert.ok(!hostBitsSet(parsePrefix('192.0.2.0/24')));
  assert.ok(!hostBitsSet(parsePrefix('192.0.2.1')));
  assert.ok(hostBitsSet(parsePrefix('192.0.2.128/25'.replace('128', '129'))));
  assert.ok(!hostBitsSet(parsePrefix('2001:db8::/32')));
  assert.ok(hostBitsSet(parsePrefix('2001:db8::1/127')));
  assert.ok(overlaps(parsePrefix('192.0.2.0/24'), parsePrefix('192.0.2.77')));
  assert.ok(!overlaps(parsePrefix('192.0.2.0/25'), parsePrefix('192.0.2.200')));
  assert.ok(!overlaps(parsePrefix('::/0'), parsePrefix('0.0.0.0/0')));
});

const host = (addrs: [string, 'inet' | 'inet6', string][], gateways: [string, string][] = []): HostState => ({
  links: [...new Set(addrs.map(([d]) => d))].map((d) => ({
    ifname: d, mtu: 1500, flags: [], addr_info: addrs.filter(([x]) => x === d).map(([, family, local]) => ({ family, local, prefixlen: 24 })),
  })) as unknown as HostState['links'],
  routes4: gateways.filter(([gw]) => !gw.includes(':')).map(([gateway, dev]) => ({ dst: 'default', gateway, dev })),
  routes6: gateways.filter(([gw]) => gw.includes(':')).map(([gateway, dev]) => ({ dst: 'default', gateway, dev })),
});

test("dom0's own addresses and gateways are no guest's", () => {
  const h = host([['eth0', 'inet', '192.0.2.2'], ['eth0', 'inet6', '2001:db8::2'], ['vif1.0', 'inet', '192.0.2.2']], [['192.0.2.1', 'eth0'], ['fe80::1', 'eth0']]);
  assert.match(dom0Clash(h, parsePrefix('192.0.2.2'), []) ?? '', /is dom0's own address 192\.0\.2\.2 \(on eth0\)/);
  assert.match(dom0Clash(h, parsePrefix('192.0.2.0/24'), []) ?? '', /includes dom0's own address/);
  assert.match(dom0Clash(h, parsePrefix('2001:db8::2'), []) ?? '', /own address 2001:db8::2/);
  assert.match(dom0Clash(h, parsePrefix('192.0.2.1'), []) ?? '', /is dom0's gateway 192\.0\.2\.1 \(route default dev eth0\)/);
  assert.match(dom0Clash(h, parsePrefix('fe80::1'), []) ?? '', /gateway fe80::1/);
  assert.equal(dom0Clash(h, parsePrefix('192.0.2.10'), []), undefined);
  // The vif's own address (online run again) is not a clash.
  assert.equal(dom0Clash(host([['vif1.0', 'inet', '10.0.1.128']]), parsePrefix('10.0.1.128'), ['vif1.0']), undefined);
});

test('whitespace inside an address is refused by the parser itself', () => {
  assert.throws(() => parseAddress('192.0.2.1 '), /contains whitespace/);
  assert.throws(() => parseAddress(' ::1'), /contains whitespace/);
  assert.throws(() => parseAddress(''), /empty address/);
});
