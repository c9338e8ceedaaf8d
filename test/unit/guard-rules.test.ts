import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ebtablesApply } from '../../lib/firewall/ebtables.ts';
import type { VifGuard } from '../../lib/firewall/guard.ts';
import { eui64LinkLocal, nftNumber } from '../../lib/firewall/nd-addresses.ts';
import { nftApply, nftCompanionApply } from '../../lib/firewall/nft.ts';
import { guardListing, parseGuardListing, removeInOneCommit } from '../../lib/firewall/xtables-nft.ts';

const guard = (g: Partial<VifGuard> = {}): VifGuard => ({
  dev: 'vif1.0', mac: '00:16:3e:00:01:00', ipv4: ['192.0.2.11'], ipv6: ['2001:db8::11'], antispoof: true, notrack: true, ...g,
});
const lines = (s: string | undefined) => (s ?? '').split('\n');

test('the EUI-64 link-local address of a MAC, as the kernel forms it', () => {
  assert.equal(eui64LinkLocal('00:16:3e:00:01:00'), 'fe80::216:3eff:fe00:100');
  assert.equal(eui64LinkLocal('02:00:00:00:0a:01'), 'fe80::ff:fe00:a01', 'universal/local bit flipped, zero groups folded');
  assert.equal(eui64LinkLocal('AA:BB:CC:DD:EE:FF'), 'fe80::a8bb:ccff:fedd:eeff');
});

test('IPv6 addresses and prefixes as nft numbers', () => {
  assert.equal(nftNumber('fe80::1'), '0xfe800000000000000000000000000001');
  assert.equal(nftNumber('2001:db8:64::/64'), '0x20010db8006400000000000000000000-0x20010db800640000ffffffffffffffff');
  assert.equal(nftNumber('::ffff:192.0.2.1'), '0x00000000000000000000ffffc0000201');
  assert.equal(nftNumber('2001:db8::5/128'), '0x20010db8000000000000000000000005');
});

test('ebtables: server replies by destination port, tagged frames, malformed ARP, :: only for DAD, its own link-local only', () => {
  const s = lines(ebtablesApply(guard()).input);
  for (const l of [
    '-A XNH-vif1.0 -p IPv4 --ip-proto udp --ip-dport 68 -j DROP',
    '-A XNH-vif1.0 -p IPv6 --ip6-proto udp --ip6-dport 546 -j DROP',
    '-A XNH-vif1.0 -p 802_1Q -j DROP',
    '-A XNH-vif1.0 -p 0x88a8 -j DROP',
    '-A XNH-vif1.0 -p ARP --arp-htype ! 1 -j DROP',
    '-A XNH-vif1.0 -p ARP --arp-ptype ! 0x0800 -j DROP',
    '-A XNH-vif1.0 -p ARP --arp-mac-src 00:16:3e:00:01:00 --arp-ip-src 192.0.2.11 -j RETURN',
    '-A XNH-vif1.0 -p IPv6 --ip6-src fe80::216:3eff:fe00:100 -j RETURN',
    '-A XNH-vif1.0 -p IPv6 --ip6-src ::/128 --ip6-proto ipv6-icmp --ip6-icmp-type neighbour-solicitation -j RETURN',
  ]) assert.ok(s.includes(l), l);
  assert.ok(!s.some((l) => l.includes('fe80::/10')), 'no neighbour\'s link-local');
  assert.ok(!s.some((l) => /--ip6-src ::\/128 -j RETURN/.test(l)), ':: only with an ICMPv6 type');
  // Tags are dropped before anything can RETURN a frame.
  assert.ok(s.findIndex((l) => l.includes('802_1Q')) < s.findIndex((l) => l.includes('RETURN')));
});

test('ebtables without ip: ARP still only well-formed from its MAC; without a MAC any link-local', () => {
  const s = lines(ebtablesApply(guard({ ipv4: [], ipv6: [], antispoof: false })).input);
  assert.ok(s.includes('-A XNH-vif1.0 -p ARP --arp-mac-src 00:16:3e:00:01:00 --arp-ip-src 0.0.0.0/0 -j RETURN'));
  assert.ok(s.indexOf('-A XNH-vif1.0 -p ARP -j DROP') < s.indexOf('-A XNH-vif1.0 -j RETURN'));
  assert.ok(s.includes('-A XNH-vif1.0 -p 802_1Q -j DROP'));
  const nomac = lines(ebtablesApply(guard({ mac: undefined })).input);
  assert.ok(nomac.includes('-A XNH-vif1.0 -p IPv6 --ip6-src fe80::/10 -j RETURN'));
  assert.ok(nomac.includes('-A XNH-vif1.0 -p ARP --arp-mac-src ! 00:00:00:00:00:00 --arp-ip-src 192.0.2.11 -j RETURN'));
});

test('nft: tags, ARP shape, DHCP by port, fragments, NA target', () => {
  const s = nftApply(guard({ ipv6: ['2001:db8::11', 'fe80::1234'] })).input ?? '';
  for (const e of [
    'ether type { 8021q, 8021ad } drop', 'arp htype != 1 drop', 'arp hlen != 6 drop', 'arp plen != 4 drop', 'arp ptype != ip drop',
    'udp dport { 68, 546 } drop', 'frag nexthdr { 0, 43, 44, 51, 58, 60, 135, 139, 140, 253, 254 } drop',
    'icmpv6 type nd-neighbor-advert @th,64,128 != { 0x20010db8000000000000000000000011, 0xfe800000000000000000000000001234, 0xfe8000000000000002163efffe000100 } drop',
    'ip6 saddr { 2001:db8::11, fe80::1234, fe80::216:3eff:fe00:100 } return',
    'ip6 saddr :: icmpv6 type { nd-neighbor-solicit, mld-listener-report, mld2-listener-report } return',
  ]) assert.ok(s.includes(e), e);
});

test('the nft companion of firewall=iptables: fragments and NA target, and NOTRACK; antispoof=no: NOTRACK only; neither: none', () => {
  const s = nftCompanionApply(guard())?.input ?? '';
  const rules = lines(s).filter((l) => l.startsWith('add rule bridge xen-nethooks vif-vif1.0'));
  assert.equal(rules.length, 2);
  assert.match(s, /add element bridge xen-nethooks vifs \{ "vif1.0" : jump vif-vif1.0 \}/);
  assert.match(s, /^add element bridge xen-nethooks untracked \{ "vif1.0" \}$/m);
  assert.doesNotMatch(nftCompanionApply(guard({ notrack: false }))?.input ?? '', /untracked \{ "vif1.0"/);
  assert.equal(lines(nftCompanionApply(guard({ antispoof: false }))?.input).filter((l) => l.startsWith('add rule bridge xen-nethooks vif-')).length, 1);
  const open = nftCompanionApply(guard({ l2: false }))?.input ?? '';
  assert.equal(lines(open).filter((l) => l.startsWith('add rule bridge xen-nethooks vif-')).length, 0, 'antispoof=no: no checks');
  assert.match(open, /^add element bridge xen-nethooks untracked \{ "vif1.0" \}$/m, 'antispoof=no: NOTRACK stays');
  assert.equal(nftCompanionApply(guard({ l2: false, notrack: false })), undefined);
});

test('xtables-nft: the companion is listed, and removed in the same transaction (map entry before chain)', () => {
  assert.match(guardListing('XNH-vif1.0', 'vif1.0').input ?? '', /^list chain bridge xen-nethooks vif-vif1\.0\nlist map bridge xen-nethooks vifs$/m);
  const meta = { metainfo: { version: '1.0.6' } };
  const out = [
    JSON.stringify({ nftables: [meta, { chain: { family: 'bridge', table: 'filter', name: 'XNH-vif1.0', handle: 6 } }] }),
    JSON.stringify({ nftables: [meta, { chain: { family: 'bridge', table: 'xen-nethooks', name: 'vif-vif1.0', handle: 9 } }] }),
    JSON.stringify({ nftables: [meta, { map: { family: 'bridge', table: 'xen-nethooks', name: 'vifs', elem: [['vif1.00', { jump: { target: 'vif-vif1.00' } }], ['vif1.0', { jump: { target: 'vif-vif1.0' } }]] } }] }),
  ].join('\n');
  const seen = parseGuardListing(out, 'XNH-vif1.0', 'vif1.0');
  assert.deepEqual(seen.companion, { element: true, chain: true, untracked: false });
  assert.equal(removeInOneCommit('XNH-vif1.0', seen, [], 'vif1.0').input, [
    'flush chain bridge filter XNH-vif1.0', 'delete chain bridge filter XNH-vif1.0',
    'delete element bridge xen-nethooks vifs { "vif1.0" }', 'flush chain bridge xen-nethooks vif-vif1.0', 'delete chain bridge xen-nethooks vif-vif1.0', ''].join('\n'));
  assert.deepEqual(parseGuardListing(out.split('\n')[0] ?? '', 'XNH-vif1.0', 'vif1.0').companion, { element: false, chain: false, untracked: false });
});
