import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfig, UsageError } from '../../lib/cli/args.ts';
import { matchPolicy, policiesOf, type GuestPolicy } from '../../lib/cli/policy.ts';
import type { SectionLine } from '../../lib/cli/policy.ts';
import { ebtablesApply } from '../../lib/firewall/ebtables.ts';
import { nftApply } from '../../lib/firewall/nft.ts';
import { guardOf, type VifRequest } from '../../lib/plans/vif-bridge.ts';
import { checkVifBridgeRecord, guardPolicyFields } from '../../lib/records.ts';

const F = '/etc/xen/nethooks.conf';

function load(text: string): { top: ReturnType<typeof parseConfig>; policies: GuestPolicy[] } {
  const sections: SectionLine[] = [];
  const top = parseConfig(text, F, sections);
  return { top, policies: policiesOf(sections, F) };
}

const CONF = `firewall = nft
# the firewall domU: forwards for the LAN behind it
[guest fw1]
route = yes
[guest trunk1]
trunk = 10, 20
[mac 00:16:3E:00:00:30]
serve = dhcp, dhcpv6, ra
[vifname aoe0]
ethertypes = 0x88a2
[guest open1]
guard = no
`;

test('policy sections: top-level keys before them, each section its scope and keys', () => {
  const { top, policies } = load(CONF);
  assert.deepEqual(top.map((e) => e.key), ['firewall']);
  assert.deepEqual(policies.map((p) => `${p.scope.kind} ${p.scope.value}`), ['guest fw1', 'guest trunk1', 'mac 00:16:3e:00:00:30', 'vifname aoe0', 'guest open1']);
  assert.equal(policies[0]?.route, true);
  assert.deepEqual(policies[1]?.trunk, [10, 20]);
  assert.deepEqual(policies[2]?.serve, ['dhcp', 'dhcpv6', 'ra']);
  assert.deepEqual(policies[3]?.ethertypes, [0x88a2]);
  assert.equal(policies[4]?.guard, false);
  assert.equal(policies[0]?.where, `${F}:3`);
});

test('policy sections: a scope no guest could match, an unknown key or value, fail with file and line', () => {
  const bad: [string, RegExp][] = [
    ['[guest web 1]\nroute = yes\n', /nethooks\.conf:1: \[guest web 1\]: no guest can be named/],
    ['[guest 12]\n', /nethooks\.conf:1: .*not all digits/],
    ['[guest ]\n', /nethooks\.conf:1: /],
    ['x = 1\n[mac 00:16:3e:zz:00:01]\n', /nethooks\.conf:2: \[mac 00:16:3e:zz:00:01\]: not a MAC address/],
    ['[vifname this-name-is-too-long]\n', /nethooks\.conf:1: .*not an interface name/],
    ['[domain web1]\n', /nethooks\.conf:1: unknown section \[domain web1\]/],
    ['[guest web1]\nroutes = yes\n', /nethooks\.conf:2: unknown policy key 'routes' in \[guest web1\]/],
    ['[guest web1]\nroute = maybe\n', /nethooks\.conf:2: invalid route="maybe": yes or no/],
    ['[guest web1]\ntrunk = 10, 4095\n', /nethooks\.conf:2: .*"4095" is not a VLAN id/],
    ['[guest web1]\nserve = dhcp, bootp\n', /nethooks\.conf:2: .*"bootp" is not one of dhcp, dhcpv6, ra/],
    ['[guest web1]\nethertypes = 88a2\n', /nethooks\.conf:2: .*not an ethertype/],
    ['[guest web1]\nethertypes = 0x0800\n', /nethooks\.conf:2: .*IPv4, which the guard checks itself/],
    ['[guest web1]\n[guest web1]\n', /nethooks\.conf:2: \[guest web1\] again \(first at .*:1\)/],
    ['[guest web1]\nnot a key\n', /nethooks\.conf:2: expected key=value in \[guest web1\]/],
  ];
  for (const [text, re] of bad) assert.throws(() => load(text), (e: unknown) => e instanceof UsageError && re.test(e.message), text);
});

test('the most specific matching section wins whole: vifname, then MAC, then domain name', () => {
  const { policies } = load('[guest g1]\nroute = yes\n[mac 00:16:3e:00:00:01]\ntrunk = 10\n[vifname v1]\nguard = no\n');
  assert.equal(matchPolicy(policies, { name: 'g1' })?.scope.kind, 'guest');
  assert.equal(matchPolicy(policies, { name: 'g1', mac: '00:16:3E:00:00:01' })?.scope.kind, 'mac');
  assert.equal(matchPolicy(policies, { name: 'g1', mac: '00:16:3e:00:00:01', vifname: 'v1' })?.scope.kind, 'vifname');
  assert.equal(matchPolicy(policies, { name: 'g2', mac: '00:16:3e:00:00:02' }), undefined);
});

const req = (policy?: GuestPolicy): VifRequest => ({
  command: 'online', typeIf: 'vif', dev: 'vif1.0', ip: ['192.0.2.11', '2001:db8::11'], mac: '00:16:3e:00:01:00',
  firewall: 'nft', notrack: true, antispoof: true, nft: true, policy,
});
const pol = (text: string) => load(`[guest g]\n${text}\n`).policies[0];

test('route: any source, ARP of any sender address, MAC still enforced on both backends', () => {
  const g = guardOf(req(pol('route = yes')), 'vif1.0');
  assert.equal(g.antispoof, false);
  assert.equal(g.mac, '00:16:3e:00:01:00');
  const nft = nftApply(g).input ?? '';
  assert.match(nft, /ether saddr != 00:16:3e:00:01:00 drop/);
  assert.match(nft, /arp saddr ether != 00:16:3e:00:01:00 drop/);
  assert.doesNotMatch(nft, /ip saddr/);
  const eb = ebtablesApply(g).input ?? '';
  assert.match(eb, /-s ! 00:16:3e:00:01:00 -j DROP/);
  assert.match(eb, /--arp-mac-src 00:16:3e:00:01:00 --arp-ip-src 0.0.0.0\/0 -j RETURN/);
  assert.doesNotMatch(eb, /--ip-src 192/);
});

test('trunk, serve, ethertypes: what each backend lets through', () => {
  const g = guardOf(req(pol('trunk = 10, 20\nserve = dhcp, ra\nethertypes = 0x88a2')), 'vif1.0');
  const nft = nftApply(g).input ?? '';
  assert.match(nft, /ether type 8021q vlan id != \{ 10, 20 \} drop\n.*ether type 8021q vlan type \{ 8021q, 8021ad \} drop\n.*ether type 8021ad drop/);
  assert.match(nft, /ether type \{ 0x88a2 \} return/);
  assert.match(nft, /vlan type \{ 0x88a2 \} return/);
  assert.match(nft, /vif1.0 udp dport 546 drop/);
  assert.match(nft, /vif1.0 udp sport 547 drop/);
  assert.match(nft, /vif1.0 vlan type ip6 udp dport 546 drop/);
  assert.match(nft, /vif1.0 icmpv6 type nd-redirect drop/);
  assert.match(nft, /vif1.0 vlan type ip6 icmpv6 type nd-redirect drop/);
  // Inside the tag, the same source checks as outside.
  assert.match(nft, /vlan type ip ip saddr \{ 192.0.2.11 \} return/);
  assert.match(nft, /vlan type arp arp saddr ether != 00:16:3e:00:01:00 drop/);
  assert.match(nft, /vlan type ip6 ip6 saddr \{ 2001:db8::11, fe80::216:3eff:fe00:100 \} return\n.*vlan type ip6 ip6 saddr :: .*\n.*vif1.0 drop\n/);
  assert.doesNotMatch(nft, /dport \{ 68|dport 68|nd-router-advert/);
  const eb = ebtablesApply(g).input ?? '';
  assert.match(eb, /-p 802_1Q --vlan-id 10 -j RETURN\n.*--vlan-id 20 -j RETURN\n.*-p 802_1Q -j DROP/);
  assert.match(eb, /-p 0x88a2 -j RETURN/);
  assert.doesNotMatch(eb, /--ip-dport 68|--ip-sport 67|router-advertisement/);
  assert.match(eb, /--ip6-dport 546 -j DROP/);
  // The strict guard is unchanged without a policy.
  const strict = nftApply(guardOf(req(), 'vif1.0')).input ?? '';
  assert.match(strict, /udp dport \{ 68, 546 \} drop/);
  assert.doesNotMatch(strict, /vlan id|0x88a2/);
});

test('guard = no: no layer-2 guard, as antispoof=no', () => {
  const g = guardOf(req(pol('guard = no\ntrunk = 10')), 'vif1.0');
  assert.equal(g.l2, false);
  assert.equal(g.vlans, undefined);
  assert.doesNotMatch(nftApply(g).input ?? '', /add rule bridge xen-nethooks vif-vif1.0/);
});

test('the vif record keeps the policy; one without it still validates', () => {
  const base = { version: 1, dev: 'vif1.0', bridge: 'xenbr0', firewall: 'nft', notrack: true, onlineAt: 'x' };
  assert.equal(checkVifBridgeRecord(base).policy, undefined);
  const p = pol('trunk = 10');
  assert.deepEqual(checkVifBridgeRecord(JSON.parse(JSON.stringify({ ...base, policy: p }))).policy, p);
  assert.throws(() => checkVifBridgeRecord({ ...base, policy: { ...p, serve: ['bootp'] } }), /policy\.serve\[0\]/);
});

test('a stored guard keeps its policy fields (for repair), and one without them reads back strict', () => {
  const g = guardOf(req(pol('trunk = 10\nserve = ra\nethertypes = 0x88a2')), 'vif1.0');
  const stored = JSON.parse(JSON.stringify(g)) as Record<string, unknown>;
  assert.deepEqual(guardPolicyFields(stored, 'guard'), { vlans: [10], ethertypes: [0x88a2], serve: ['ra'] });
  assert.deepEqual(guardPolicyFields({}, 'guard'), {});
  assert.throws(() => guardPolicyFields({ vlans: ['10'] }, 'guard'), /guard\.vlans\[0\]/);
});

test('other hooks: their own key below a section header is an error naming file and line; sections are skipped', async () => {
  const { mkdtempSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { parseInvocation } = await import('../../lib/cli/args.ts');
  const spec = {
    name: 'network-bridge', summary: '', epilog: '', commands: [{ name: 'start', description: '' }],
    options: [{ key: 'antispoof', type: { kind: 'bool' as const }, description: '' }],
  };
  const p = join(mkdtempSync(join(tmpdir(), 'xnh-policy-')), 'nethooks.conf');
  writeFileSync(p, 'antispoof = yes\n[guest fw1]\nroute = yes\n');
  const inv = parseInvocation(spec, ['start'], { XEN_NETHOOKS_CONF: p });
  assert.equal(inv.options.get('antispoof'), true);
  assert.equal(inv.config?.sections.length, 2);
  writeFileSync(p, '[guest fw1]\nroute = yes\nnetwork-bridge.antispoof = yes\n');
  assert.throws(() => parseInvocation(spec, ['start'], { XEN_NETHOOKS_CONF: p }), (e: unknown) => e instanceof UsageError && /nethooks\.conf:3: network-bridge\.antispoof is below the section \[guest fw1\]/.test(e.message));
});
