import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Command } from '../../lib/exec.ts';
import { guardRules } from '../../lib/firewall/source-guard.ts';
import type { HostState } from '../../lib/net/host.ts';
import type { Link } from '../../lib/net/link.ts';
import { PlanError, type Step } from '../../lib/plan.ts';
import { planNetworkRouteStart, type RouteRecord } from '../../lib/plans/network-route.ts';
import { resolveUplink } from '../../lib/plans/routing.ts';
import { planRoutedOffline, planVifRouteOnline, type VifRouteObserved, type VifRouteRequest } from '../../lib/plans/vif-route.ts';
import { planRelease } from '../../lib/plans/shared-settings.ts';

const FOREVER = 4294967295;

function host(opts: { ipv6?: boolean; more?: Link[] } = {}): HostState {
  const eth0: Link = {
    ifname: 'eth0', ifindex: 2, flags: ['UP'], mtu: 1500,
    addr_info: [
      { family: 'inet', local: '192.0.2.6', prefixlen: 24, scope: 'global', secondary: true, valid_life_time: FOREVER },
      { family: 'inet', local: '192.0.2.5', prefixlen: 24, scope: 'global', valid_life_time: FOREVER },
      ...(opts.ipv6 === false ? [] : [{ family: 'inet6' as const, local: '2001:db8::5', prefixlen: 64, scope: 'global' }]),
      { family: 'inet6', local: 'fe80::5', prefixlen: 64, scope: 'link' },
    ],
  };
  const vif: Link = { ifname: 'vif1.0', ifindex: 3, flags: [], mtu: 1500, address: 'fe:ff:ff:ff:ff:ff' };
  return {
    links: [{ ifname: 'lo', ifindex: 1, flags: ['UP'], mtu: 65536 }, eth0, vif, ...(opts.more ?? [])],
    routes4: [{ dst: 'default', gateway: '192.0.2.1', dev: 'eth0' }],
    routes6: [],
  };
}

const ids = (steps: readonly Step[]) => steps.map((s) => s.id);
const argvs = (cmds: readonly Command[]) => cmds.map((c) => c.argv.join(' '));

const sysctls = {
  'net.ipv4.ip_forward': '0',
  'net.ipv6.conf.all.forwarding': '0',
  'net/ipv4/conf/eth0/proxy_arp': '0',
  'net/ipv6/conf/eth0/proxy_ndp': '0',
  'net/ipv6/conf/eth0/accept_ra': '1',
};

test('network-route start: forwarding and proxy ARP; IPv6 forwarding, proxy NDP and accept_ra=2 with global IPv6', () => {
  const { netdev, ipv6, plan } = planNetworkRouteStart({}, { host: host(), sysctls });
  assert.equal(netdev, 'eth0');
  assert.ok(ipv6);
  assert.deepEqual(ids(plan.steps), [
    'sysctl:net.ipv4.ip_forward',
    'sysctl:net/ipv4/conf/eth0/proxy_arp',
    'sysctl:net/ipv6/conf/eth0/accept_ra',
    'sysctl:net.ipv6.conf.all.forwarding',
    'sysctl:net/ipv6/conf/eth0/proxy_ndp',
  ]);
  const fwd = plan.steps[0] as Step;
  assert.equal(fwd.shared, 'sysctl:net.ipv4.ip_forward');
  assert.deepEqual(argvs(fwd.run), ['sysctl -q -w net.ipv4.ip_forward=1']);
  assert.deepEqual(argvs(fwd.undo), ['sysctl -q -w net.ipv4.ip_forward=0']);
  assert.deepEqual(argvs((plan.steps[2] as Step).undo), ['sysctl -q -w net/ipv6/conf/eth0/accept_ra=1']);
});

test('network-route start: no IPv6 steps without a global IPv6 address; accept_ra 0 or 2 is left alone', () => {
  assert.deepEqual(ids(planNetworkRouteStart({}, { host: host({ ipv6: false }), sysctls }).plan.steps),
    ['sysctl:net.ipv4.ip_forward', 'sysctl:net/ipv4/conf/eth0/proxy_arp']);
  const plan = planNetworkRouteStart({}, { host: host(), sysctls: { ...sysctls, 'net/ipv6/conf/eth0/accept_ra': '0' } }).plan;
  assert.ok(!ids(plan.steps).includes('sysctl:net/ipv6/conf/eth0/accept_ra'));
});

test('network-route: netdev defaults to the default route device, else eth<vifnum>; a missing one is refused', () => {
  assert.equal(resolveUplink({}, host()), 'eth0');
  assert.equal(resolveUplink({ vifnum: 2 }, { ...host(), routes4: [] }), 'eth2');
  assert.equal(resolveUplink({ netdev: 'eth9' }, host()), 'eth9');
  assert.throws(() => planNetworkRouteStart({ netdev: 'eth9' }, { host: host(), sysctls }), (e: unknown) =>
    e instanceof PlanError && /netdev=eth9: no such device \(devices here: eth0, vif1.0\)/.test(e.message));
});

function record(key: string, startedAt: string, was: string): RouteRecord {
  const { plan } = planNetworkRouteStart({ netdev: 'eth0' }, { host: host({ ipv6: false }), sysctls: { ...sysctls, 'net.ipv4.ip_forward': was } });
  return { version: 1, hook: 'network-route', key, netdev: key, ipv6: false, startedAt, steps: plan.steps };
}

test('stop: ip_forward goes back only with the last holder; an older one hands its original value over', () => {
  const a = record('eth0', '2026-01-01T00:00:00Z', '0');
  const b = record('eth1', '2026-01-02T00:00:00Z', '1');
  const alone = planRelease(a, []);
  assert.ok(ids(alone.plan.steps).includes('undo-sysctl:net.ipv4.ip_forward'));
  assert.equal(alone.handOver.length, 0);

  const first = planRelease(a, [a, b]);
  assert.ok(!ids(first.plan.steps).includes('undo-sysctl:net.ipv4.ip_forward'));
  assert.equal(first.handOver.length, 1);
  const heir = first.handOver[0] as RouteRecord;
  assert.equal(heir.key, 'eth1');
  const inherited = heir.steps.find((s) => s.shared === 'sysctl:net.ipv4.ip_forward') as Step;
  assert.deepEqual(argvs(inherited.undo), ['sysctl -q -w net.ipv4.ip_forward=0']);
  assert.deepEqual(argvs(b.steps[0]?.undo ?? []), ['sysctl -q -w net.ipv4.ip_forward=1'], 'the original record is not changed');

  const younger = planRelease(b, [a, b]);
  assert.ok(!ids(younger.plan.steps).includes('undo-sysctl:net.ipv4.ip_forward'));
  assert.equal(younger.handOver.length, 0);
});

const vreq = (r: Partial<VifRouteRequest> = {}): VifRouteRequest => ({
  command: 'online', typeIf: 'vif', dev: 'vif1.0', ip: ['192.0.2.10', '2001:db8::10', '2001:db8:5::/64'], netdev: 'eth0', antispoof: true, ...r,
});
const vobs = (o: Partial<VifRouteObserved> = {}): VifRouteObserved => ({ host: host(), proxyArpWas: '0', ipForward: '1', ipv6Forwarding: '1', ...o });

test("vif-route online: guard first, dom0's primary address /32, up, proxy ARP, routes, proxy NDP for host addresses (the shell adds the report)", () => {
  const on = planVifRouteOnline(vreq(), vobs());
  assert.deepEqual(ids(on.plan.steps), [
    'guard', 'address', 'up', 'proxy-arp', 'route:4:192.0.2.10', 'route:6:2001:db8::10', 'route:6:2001:db8:5::/64', 'ndp-proxy:2001:db8::10',
  ]);
  const step = (id: string) => on.plan.steps.find((s) => s.id === id) as Step;
  assert.deepEqual(argvs(step('address').run), ['ip -4 addr add 192.0.2.5/32 dev vif1.0']);
  assert.deepEqual(argvs(step('route:4:192.0.2.10').run), ['ip -4 route add 192.0.2.10 dev vif1.0 metric 2 src 192.0.2.5']);
  assert.deepEqual(argvs(step('route:6:2001:db8::10').run), ['ip -6 route add 2001:db8::10 dev vif1.0 metric 2']);
  assert.deepEqual(argvs(step('ndp-proxy:2001:db8::10').run), ['ip -6 neigh add proxy 2001:db8::10 dev eth0']);
  assert.deepEqual(argvs(step('proxy-arp').undo), ['sysctl -q -w net/ipv4/conf/vif1.0/proxy_arp=0']);
  assert.deepEqual(on.warnings, []);
  assert.equal(on.mtu, 1500);
});

test('vif-route: an emulated NIC gets metric 1; antispoof=no has no guard; a lacking ip_forward is warned about', () => {
  const tap = planVifRouteOnline(vreq({ typeIf: 'tap', ip: ['192.0.2.10'], antispoof: false }), vobs({ ipForward: '0' }));
  assert.deepEqual(ids(tap.plan.steps), ['address', 'up', 'proxy-arp', 'route:4:192.0.2.10']);
  assert.match(argvs(tap.plan.steps[3]?.run ?? []).join(), /metric 1 src/);
  assert.match(tap.warnings.join('\n'), /net.ipv4.ip_forward is 0/);
});

test('vif-route refuses a guest without ip, a netdev without IPv4, a vifname in use', () => {
  assert.throws(() => planVifRouteOnline(vreq({ ip: [] }), vobs()), (e: unknown) => e instanceof PlanError && /xenstore `ip`/.test(e.message));
  const bare: Link = { ifname: 'eth1', ifindex: 9, flags: ['UP'], mtu: 1500, addr_info: [] };
  assert.throws(() => planVifRouteOnline(vreq({ netdev: 'eth1' }), vobs({ host: host({ more: [bare] }) })), /eth1 has no IPv4 address/);
  assert.throws(() => planVifRouteOnline(vreq({ vifname: 'eth0' }), vobs()), /Cannot rename interface vif1.0 to eth0/);
});

test("vif-route refuses dom0's own addresses and gateway as a guest's, and an IPv6 guest below MTU 1280", () => {
  const refused = (ip: string[], why: RegExp, more: Partial<VifRouteRequest> = {}) =>
    assert.throws(() => planVifRouteOnline(vreq({ ip, ...more }), vobs()), (e: unknown) => e instanceof PlanError && why.test(e.message), ip.join(' '));
  refused(['192.0.2.5'], /^ip=192\.0\.2\.5: 192\.0\.2\.5 is dom0's own address 192\.0\.2\.5 \(on eth0\)/);
  refused(['192.0.2.6'], /own address 192\.0\.2\.6/);
  refused(['192.0.2.0/24'], /192\.0\.2\.0\/24 includes dom0's own address/);
  refused(['192.0.2.10', '192.0.2.1'], /^ip=192\.0\.2\.1: 192\.0\.2\.1 is dom0's gateway 192\.0\.2\.1 \(route default dev eth0\)/);
  refused(['2001:db8::5'], /own address 2001:db8::5/);
  refused(['192.0.2.10', '2001:db8::10'], /mtu=1200: below 1280/, { mtu: 1200 });
  assert.equal(planVifRouteOnline(vreq({ ip: ['192.0.2.10'], mtu: 1200 }), vobs()).mtu, 1200, 'an IPv4-only guest may have it');
});

test('vif-route vifname and mtu: rename first, the guard and everything else on the new name', () => {
  const on = planVifRouteOnline(vreq({ vifname: 'web0', mtu: 1400, ip: ['192.0.2.10'] }), vobs());
  assert.deepEqual(ids(on.plan.steps), ['rename', 'guard', 'mtu', 'address', 'up', 'proxy-arp', 'route:4:192.0.2.10']);
  assert.equal(on.layout.dev, 'web0');
  assert.deepEqual(argvs(on.plan.steps[2]?.run ?? []), ['ip link set dev web0 mtu 1400']);
  assert.equal(on.mtu, 1400, 'the MTU the shell reports to the frontend');
});

test('vif-route offline: online reversed; proxy entries still needed elsewhere stay', () => {
  const { layout } = planVifRouteOnline(vreq(), vobs());
  const off = planRoutedOffline(layout);
  assert.deepEqual(ids(off.steps), [
    'undo-ndp-proxy:2001:db8::10', 'undo-route:6:2001:db8:5::/64', 'undo-route:6:2001:db8::10', 'undo-route:4:192.0.2.10', 'undo-proxy-arp', 'undo-up', 'undo-address', 'undo-guard',
  ]);
  // Everything taken back tolerates a device netback removed already.
  for (const s of off.steps.slice(0, -1)) for (const c of s.run) assert.ok(c.tolerate?.includes('Cannot find device'), c.argv.join(' '));
  assert.ok(!ids(planRoutedOffline(layout, ['2001:db8::10']).steps).includes('undo-ndp-proxy:2001:db8::10'));
});

test('source guard: own sources RETURN, the rest DROP; IPv6 adds link-local and DAD, drops RAs; no addresses, no family', () => {
  const g = { dev: 'vif1.0', ipv4: ['192.0.2.10', '192.0.2.64/28'], ipv6: ['2001:db8::10'], dhcp: false };
  assert.deepEqual(guardRules(4, g), [
    '-A XNH-vif1.0 -s 192.0.2.10 -j RETURN',
    '-A XNH-vif1.0 -s 192.0.2.64/28 -j RETURN',
    '-A XNH-vif1.0 -j DROP',
  ]);
  assert.deepEqual(guardRules(6, g), [
    '-A XNH-vif1.0 -p ipv6-icmp --icmpv6-type router-advertisement -j DROP',
    '-A XNH-vif1.0 -p ipv6-icmp --icmpv6-type redirect -j DROP',
    '-A XNH-vif1.0 -s 2001:db8::10 -j RETURN',
    '-A XNH-vif1.0 -s fe80::/10 -j RETURN',
    '-A XNH-vif1.0 -s ::/128 -p ipv6-icmp -j RETURN',
    '-A XNH-vif1.0 -j DROP',
  ]);
  assert.deepEqual(guardRules(6, { ...g, ipv6: [] }), ['-A XNH-vif1.0 -j DROP']);
  assert.deepEqual(guardRules(4, { ...g, ipv4: [], dhcp: true }), [
    '-A XNH-vif1.0 -s 0.0.0.0/32 -p udp --sport 68 --dport 67 -j RETURN',
    '-A XNH-vif1.0 -j DROP',
  ]);
});
