import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { HostState } from '../../lib/net/host.ts';
import type { Link } from '../../lib/net/link.ts';
import { PlanError, type Step } from '../../lib/plan.ts';
import {
  planRebuild,
  planStart,
  planStop,
  resolveNames,
  type BridgeObserved,
  type BridgeRecord,
  type BridgeRequest,
  type StartDecision,
} from '../../lib/plans/network-bridge.ts';

const eth = (name: string, extra: Partial<Link> = {}): Link => ({
  ifname: name,
  ifindex: 2,
  flags: ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'],
  mtu: 1500,
  address: '52:54:00:12:34:56',
  linkinfo: { info_kind: 'veth' },
  addr_info: [
    { family: 'inet', local: '192.0.2.5', prefixlen: 24, scope: 'global', label: name, valid_life_time: 4294967295, preferred_life_time: 4294967295 },
    { family: 'inet', local: '192.0.2.6', prefixlen: 24, scope: 'global', label: `${name}:1`, secondary: true, dynamic: true, valid_life_time: 600, preferred_life_time: 300 },
    { family: 'inet6', local: '2001:db8::5', prefixlen: 64, scope: 'global', valid_life_time: 4294967295, preferred_life_time: 4294967295 },
    { family: 'inet6', local: 'fe80::1', prefixlen: 64, scope: 'link', valid_life_time: 4294967295, preferred_life_time: 4294967295 },
  ],
  ...extra,
});

function host(dev = 'eth0', more: Link[] = []): HostState {
  return {
    links: [{ ifname: 'lo', ifindex: 1, flags: ['LOOPBACK', 'UP'], mtu: 65536 }, eth(dev), ...more],
    routes4: [
      { dst: 'default', gateway: '192.0.2.1', dev, flags: [] },
      { dst: '192.0.2.0/24', dev, protocol: 'kernel', scope: 'link', prefsrc: '192.0.2.5', flags: [] },
      { dst: '198.51.100.0/24', gateway: '192.0.2.2', dev, prefsrc: '192.0.2.6', metric: 50, flags: [], metrics: [{ mtu: 1400 }] },
      { dst: '203.0.113.0/24', gateway: '192.0.2.9', dev, table: '100', flags: ['onlink'] },
      { type: 'local', dst: '192.0.2.5', dev, table: 'local', protocol: 'kernel', scope: 'host', flags: [] },
    ],
    routes6: [
      { dst: '2001:db8::/64', dev, protocol: 'kernel', metric: 256, flags: [], pref: 'medium' },
      { dst: '2001:db8:1::/64', gateway: '2001:db8::1', dev, metric: 1024, flags: [], pref: 'medium' },
      { dst: 'fe80::/64', dev, protocol: 'kernel', metric: 256, flags: [], pref: 'medium' },
    ],
  };
}

const observed = (h: HostState, extra: Partial<BridgeObserved> = {}): BridgeObserved => ({
  host: h,
  brNetfilter: true,
  sysctls: { 'net.bridge.bridge-nf-call-iptables': '0', 'net.bridge.bridge-nf-call-ip6tables': '0' },
  ...extra,
});
const req = (r: Partial<BridgeRequest> = {}): BridgeRequest => ({ antispoof: false, vlans: [], ...r });

function plan(d: StartDecision): Step[] {
  assert.equal(d.kind, 'plan', d.kind === 'noop' ? d.message : '');
  return d.kind === 'plan' ? d.plan.steps : [];
}
const argvs = (steps: Step[]) => steps.flatMap((s) => s.run.map((c) => c.argv.join(' ')));

test('default netdev is the default-route device, whole (no enp3s0 -> enp3 bug)', () => {
  for (const dev of ['eth0', 'enp3s0', 'eth0.10', 'bond0']) {
    assert.deepEqual(resolveNames(req(), host(dev)), { bridge: dev, netdev: dev, pdev: `p${dev}` });
  }
  const h = host('eth0');
  h.routes4 = h.routes4.filter((r) => r.dst !== 'default');
  assert.equal(resolveNames(req({ vifnum: 2 }), h).netdev, 'eth2');
  assert.deepEqual(resolveNames(req({ netdev: 'none' }), h), { bridge: 'xenbr0', netdev: null, pdev: null });
  assert.deepEqual(resolveNames(req({ netdev: 'eth1', bridge: 'xenbr1' }), h), { bridge: 'xenbr1', netdev: 'eth1', pdev: 'eth1' });
});

test('3.2+ layout: takes config off, renames netdev to p<netdev>, bridge takes its name, config back on', () => {
  const steps = plan(planStart(req(), observed(host())));
  const ids = steps.map((s) => s.id);
  assert.deepEqual(ids, [
    'route-off:eth0:6:2001:db8:1::/64,via=2001:db8::1,metric=1024',
    'route-off:eth0:4:203.0.113.0/24,via=192.0.2.9,table=100',
    'route-off:eth0:4:198.51.100.0/24,via=192.0.2.2,metric=50',
    'route-off:eth0:4:default,via=192.0.2.1',
    'addr-off:eth0:2001:db8::5/64',
    'addr-off:eth0:192.0.2.6/24',
    'addr-off:eth0:192.0.2.5/24',
    'netdev-rename',
    'bridge-add',
    'port-add',
    'bridge-up',
    'addr-on:eth0:192.0.2.5/24',
    'addr-on:eth0:192.0.2.6/24',
    'addr-on:eth0:2001:db8::5/64',
    'route-on:eth0:4:default,via=192.0.2.1',
    'route-on:eth0:4:198.51.100.0/24,via=192.0.2.2,metric=50',
    'route-on:eth0:4:203.0.113.0/24,via=192.0.2.9,table=100',
    'route-on:eth0:6:2001:db8:1::/64,via=2001:db8::1,metric=1024',
  ]);
  const all = argvs(steps).join('\n');
  assert.doesNotMatch(all, /ifdown|ifup|brctl/);
  assert.match(all, /ip link set dev eth0 name peth0/);
  assert.match(all, /ip link add name eth0 address 52:54:00:12:34:56 mtu 1500 type bridge stp_state 0 forward_delay 0/);
  assert.match(all, /ip -4 addr add 192.0.2.6\/24 label eth0:1 valid_lft 600 preferred_lft 300 dev eth0/);
  assert.match(all, /ip -4 route add 198.51.100.0\/24 via 192.0.2.2 dev eth0 metric 50 src 192.0.2.6 mtu 1400/);
  assert.match(all, /ip -4 route add 203.0.113.0\/24 via 192.0.2.9 dev eth0 table 100 onlink/);
  // kernel-made routes and link-local addresses are left to the kernel
  assert.doesNotMatch(all, /fe80|proto kernel|table local/);
  const rename = steps.find((s) => s.id === 'netdev-rename');
  assert.ok(rename?.run[0]?.fallback, 'rename of an up device falls back to down/rename/up');
});

test('every step has an undo (but loading a module)', () => {
  const steps = plan(planStart(req({ antispoof: true, vlans: [{ id: 30, addresses: [] }] }), observed(host(), { forwardPolicy: 'ACCEPT', brNetfilter: false })));
  for (const s of steps) if (s.id !== 'br-netfilter') assert.ok(s.undo.length > 0, s.id);
});

test('bridge=xenbr1: no rename, labels follow the bridge', () => {
  const steps = plan(planStart(req({ netdev: 'eth0', bridge: 'xenbr1' }), observed(host())));
  const all = argvs(steps).join('\n');
  assert.doesNotMatch(all, / name peth0/);
  assert.match(all, /ip link add name xenbr1 address 52:54:00:12:34:56/);
  assert.match(all, /ip link set dev eth0 master xenbr1/);
  assert.match(all, /ip -4 addr add 192.0.2.6\/24 label xenbr1:1 valid_lft 600 preferred_lft 300 dev xenbr1/);
  // the undo puts the original label back on eth0
  const off = steps.find((s) => s.id === 'addr-off:eth0:192.0.2.6/24');
  assert.match(off?.undo[0]?.argv.join(' ') ?? '', /label eth0:1 .* dev eth0$/);
});

test('no-ops and refusals', () => {
  assert.equal(planStart(req({ bridge: 'null' }), observed(host())).kind, 'noop');
  const bridged = host('eth0');
  bridged.links[1] = { ...eth('eth0'), linkinfo: { info_kind: 'bridge' } };
  assert.equal(planStart(req(), observed(bridged)).kind, 'noop');
  assert.throws(() => planStart(req({ netdev: 'eth9' }), observed(host())), (e: Error) =>
    e instanceof PlanError && /netdev=eth9: no such device \(devices here: eth0\)/.test(e.message) && /netdev=none/.test(e.message));
  assert.throws(() => planStart(req(), observed(host('abcdefghijklmno'))), /not a valid interface name.*bridge=xenbr0/);
  const clash = host('eth0', [eth('peth0')]);
  assert.throws(() => planStart(req(), observed(clash)), /a device peth0 already exists/);
  const taken = host('eth0', [{ ...eth('xenbr1'), linkinfo: { info_kind: 'bridge' } }]);
  assert.throws(() => planStart(req({ bridge: 'xenbr1' }), observed(taken)), /bridge=xenbr1: a device of that name already exists/);
  const enslaved = host('eth0');
  enslaved.links[1] = { ...eth('eth0'), master: 'br9' };
  assert.throws(() => planStart(req(), observed(enslaved)), /already enslaved to br9/);
  assert.throws(() => planStart(req({ antispoof: true }), observed(host())), /antispoof=yes needs a working iptables/);
});

test('host-only bridge (netdev=none) has no port and no address moves', () => {
  const steps = plan(planStart(req({ netdev: 'none', bridge: 'dmz' }), observed(host())));
  assert.deepEqual(steps.map((s) => s.id), ['bridge-add', 'bridge-up']);
  assert.deepEqual(steps[0]?.run[0]?.argv, ['ip', 'link', 'add', 'name', 'dmz', 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0']);
  assert.throws(() => planStart(req({ netdev: 'none', bridge: 'eth0' }), observed(host())), /bridge=eth0: a veth device of that name exists/);
});

test("dom0's VLAN devices move from the physical device to the bridge, with their config", () => {
  const vlan: Link = {
    ...eth('eth0.10'),
    link: 'eth0',
    address: '52:54:00:12:34:56',
    linkinfo: { info_kind: 'vlan', info_data: { protocol: '802.1Q', id: 10, flags: ['REORDER_HDR'] } },
    addr_info: [{ family: 'inet', local: '198.18.10.5', prefixlen: 24, scope: 'global', label: 'eth0.10' }],
  };
  const h = host('eth0', [vlan]);
  h.routes4.push({ dst: '198.18.0.0/16', gateway: '198.18.10.1', dev: 'eth0.10', flags: [] });
  const steps = plan(planStart(req(), observed(h)));
  const ids = steps.map((s) => s.id);
  const at = (id: string) => ids.indexOf(id);
  assert.ok(at('route-off:eth0.10:4:198.18.0.0/16,via=198.18.10.1') < at('addr-off:eth0.10:198.18.10.5/24'));
  assert.ok(at('addr-off:eth0.10:198.18.10.5/24') < at('vlan-off:eth0.10'));
  assert.ok(at('vlan-off:eth0.10') < at('netdev-rename'));
  assert.ok(at('bridge-up') < at('vlan-on:eth0.10'));
  assert.ok(at('vlan-on:eth0.10') < at('addr-on:eth0.10:198.18.10.5/24'));
  const on = steps[at('vlan-on:eth0.10')] as Step;
  assert.equal(on.run[0]?.argv.join(' '),
    'ip link add link eth0 name eth0.10 address 52:54:00:12:34:56 mtu 1500 type vlan protocol 802.1Q id 10 reorder_hdr on gvrp off mvrp off loose_binding off');
  // the undo of taking it off the physical device recreates it there (on eth0, before the rename is undone)
  const off = steps[at('vlan-off:eth0.10')] as Step;
  assert.match(off.undo[0]?.argv.join(' ') ?? '', /^ip link add link eth0 name eth0\.10 /);
  assert.deepEqual(off.run[0]?.argv, ['ip', 'link', 'del', 'dev', 'eth0.10']);
});

test('vlans= creates VLAN devices on the bridge with their addresses', () => {
  const steps = plan(planStart(req({ vlans: [{ id: 30, addresses: ['198.18.30.1/24'] }] }), observed(host())));
  const all = argvs(steps).join('\n');
  assert.match(all, /ip link add link eth0 name eth0\.30 mtu|ip link add link eth0 name eth0\.30 type vlan/);
  assert.match(all, /ip addr add 198.18.30.1\/24 dev eth0\.30/);
  assert.throws(() => planStart(req({ bridge: 'abcdefghijkl', netdev: 'eth0', vlans: [{ id: 4000, addresses: [] }] }), observed(host())), /VLAN device 'abcdefghijkl.4000'/);
});

test('antispoof: sysctls and FORWARD policy with their previous values, our rule tagged', () => {
  const steps = plan(planStart(req({ antispoof: true }), observed(host(), { forwardPolicy: 'ACCEPT' })));
  const tail = steps.slice(-4);
  assert.deepEqual(tail.map((s) => s.id), ['sysctl:net.bridge.bridge-nf-call-iptables', 'sysctl:net.bridge.bridge-nf-call-ip6tables', 'antispoof-accept', 'forward-policy']);
  assert.deepEqual(tail[0]?.undo[0]?.argv, ['sysctl', '-q', '-w', 'net.bridge.bridge-nf-call-iptables=0']);
  assert.deepEqual(tail[2]?.run[0]?.argv, ['iptables', '-w', '-t', 'filter', '-I', 'FORWARD', '1', '-m', 'physdev', '--physdev-in', 'peth0', '-m', 'comment', '--comment', 'xen-nethooks:network-bridge:eth0', '-j', 'ACCEPT']);
  assert.deepEqual(tail[3]?.undo[0]?.argv, ['iptables', '-w', '-P', 'FORWARD', 'ACCEPT']);
  assert.ok(!argvs(steps).some((a) => a.includes(' -F')), 'never flushes FORWARD');
});

function record(bridge: string, startedAt: string, policyBefore: string): BridgeRecord {
  return {
    version: 1, bridge, netdev: bridge, pdev: `p${bridge}`, startedAt,
    steps: [
      { id: 'bridge-add', description: 'add', run: [{ argv: ['add', bridge] }], undo: [{ argv: ['del', bridge] }] },
      { id: 'forward-policy', description: 'policy', run: [{ argv: ['DROP'] }], undo: [{ argv: [policyBefore] }], shared: 'iptables:FORWARD-policy' },
    ],
  };
}

test('stop is start reversed', () => {
  const { plan: p, handOver } = planStop(record('a', '1', 'ACCEPT'), []);
  assert.deepEqual(p.steps.map((s) => s.run[0]?.argv[0]), ['ACCEPT', 'del']);
  assert.deepEqual(p.steps.map((s) => s.undo[0]?.argv[0]), ['DROP', 'add']);
  assert.deepEqual(handOver, []);
});

test('a shared setting is restored by the last bridge out, with the value from before the first', () => {
  const a = record('a', '2026-01-01T00:00:01Z', 'ACCEPT');
  const b = record('b', '2026-01-01T00:00:02Z', 'DROP');
  // a (oldest) stops first: it leaves the policy alone and hands ACCEPT to b
  let d = planStop(a, [b]);
  assert.deepEqual(d.plan.steps.map((s) => s.run[0]?.argv[0]), ['del']);
  assert.equal(d.handOver.length, 1);
  assert.deepEqual(d.handOver[0]?.steps[1]?.undo[0]?.argv, ['ACCEPT']);
  assert.deepEqual(b.steps[1]?.undo[0]?.argv, ['DROP'], 'the input record is not mutated');
  // b stops first instead: it leaves the policy alone, a keeps ACCEPT
  d = planStop(b, [a]);
  assert.deepEqual(d.plan.steps.map((s) => s.run[0]?.argv[0]), ['del']);
  assert.deepEqual(d.handOver, []);
  // then a is last: restores ACCEPT
  assert.deepEqual(planStop(a, []).plan.steps.map((s) => s.run[0]?.argv[0]), ['ACCEPT', 'del']);
});

test('multipath routes: the hops through netdev move to the bridge, the others stay', () => {
  const h = host('eth0');
  h.routes4.push({ dst: '10.30.0.0/16', metric: 10, flags: [], nexthops: [
    { gateway: '192.0.2.1', dev: 'eth0', weight: 3, flags: [] }, { gateway: '198.18.1.1', dev: 'eth1', weight: 1, flags: [] }] });
  const steps = plan(planStart(req({ bridge: 'xenbr0' }), observed(h)));
  const off = steps.find((s) => s.id === 'route-off:eth0:4:10.30.0.0/16,metric=10');
  const on = steps.find((s) => s.id === 'route-on:xenbr0:4:10.30.0.0/16,metric=10');
  assert.deepEqual(off?.run[0]?.argv, ['ip', '-4', 'route', 'del', '10.30.0.0/16', 'metric', '10']);
  assert.deepEqual(off?.undo[0]?.argv, ['ip', '-4', 'route', 'add', '10.30.0.0/16', 'metric', '10',
    'nexthop', 'via', '192.0.2.1', 'dev', 'eth0', 'weight', '3', 'nexthop', 'via', '198.18.1.1', 'dev', 'eth1']);
  assert.deepEqual(on?.run[0]?.argv, ['ip', '-4', 'route', 'add', '10.30.0.0/16', 'metric', '10',
    'nexthop', 'via', '192.0.2.1', 'dev', 'xenbr0', 'weight', '3', 'nexthop', 'via', '198.18.1.1', 'dev', 'eth1']);
});

test('stacked VLANs (QinQ): children come off first, parents go back on first; missing flags mean none', () => {
  const vlan = (name: string, parent: string, id: number, protocol: string, flags?: string[]): Link => ({
    ...eth(name), link: parent, addr_info: [],
    linkinfo: { info_kind: 'vlan', info_data: { protocol, id, ...(flags ? { flags } : {}) } },
  });
  const h = host('eth0', [vlan('eth0.100', 'eth0', 100, '802.1ad', ['REORDER_HDR']), vlan('eth0.100.7', 'eth0.100', 7, '802.1Q')]);
  const ids = plan(planStart(req(), observed(h))).map((s) => s.id);
  assert.ok(ids.indexOf('vlan-off:eth0.100.7') < ids.indexOf('vlan-off:eth0.100'), 'the inner VLAN is removed before its parent');
  assert.ok(ids.indexOf('vlan-on:eth0.100') < ids.indexOf('vlan-on:eth0.100.7'), 'the parent is remade before the inner VLAN');
  const steps = plan(planStart(req(), observed(h)));
  const inner = steps.find((s) => s.id === 'vlan-on:eth0.100.7');
  assert.match(inner?.run[0]?.argv.join(' ') ?? '', /link eth0\.100 name eth0\.100\.7 .* id 7 reorder_hdr off/);
  const outer = steps.find((s) => s.id === 'vlan-on:eth0.100');
  assert.match(outer?.run[0]?.argv.join(' ') ?? '', /link eth0 name eth0\.100 .*protocol 802\.1ad id 100 reorder_hdr on/);
});

test('planRebuild: a bridge that is gone comes back with what went with it; a present one needs none', () => {
  const vlan: Link = {
    ...eth('eth0.10'),
    link: 'eth0',
    linkinfo: { info_kind: 'vlan', info_data: { protocol: '802.1Q', id: 10, flags: ['REORDER_HDR'] } },
    addr_info: [{ family: 'inet', local: '198.18.10.5', prefixlen: 24, scope: 'global', label: 'eth0.10' }],
  };
  const steps = plan(planStart(req({ antispoof: true }), observed(host('eth0', [vlan]), { forwardPolicy: 'ACCEPT' })));
  const record: BridgeRecord = { version: 1, bridge: 'eth0', netdev: 'eth0', pdev: 'peth0', vifnum: 0, startedAt: 'then', steps };
  const lo: Link = { ifname: 'lo', ifindex: 1, flags: ['LOOPBACK', 'UP'], mtu: 65536 };

  // Present: nothing to rebuild.
  assert.equal(planRebuild(record, { links: [lo, { ...eth('eth0'), linkinfo: { info_kind: 'bridge' } }], routes4: [], routes6: [] }), undefined);

  // `ip link del eth0` (the bridge): peth0 left without addresses, eth0.10 gone with the bridge.
  const gone: HostState = { links: [lo, { ...eth('peth0'), addr_info: [] }], routes4: [], routes6: [] };
  const r = planRebuild(record, gone);
  assert.ok(r);
  assert.match(r.found, /bridge eth0 \(started then\) is gone; eth0 is still named peth0; dom0's addresses and routes went with it.*; so are dom0's VLAN devices eth0.10/);
  const ids = r.reset.steps.map((s) => s.id);
  // The name back first, then netdev's addresses and routes, then the VLAN device and its own.
  assert.equal(ids[0], 'undo-netdev-rename');
  const firstRoute = ids.findIndex((i) => i.startsWith('undo-route-off:eth0:'));
  assert.ok(firstRoute > 0 && ids.indexOf('undo-addr-off:eth0:192.0.2.5/24') < firstRoute, ids.join(' '));
  assert.ok(ids.indexOf('undo-vlan-off:eth0.10') > ids.indexOf('undo-netdev-rename'));
  assert.ok(ids.indexOf('undo-addr-off:eth0.10:198.18.10.5/24') > ids.indexOf('undo-vlan-off:eth0.10'));
  // antispoof's changes outlived the bridge: kept, not redone.
  assert.deepEqual(r.keep.map((s) => s.id), steps.filter((s) => /^(sysctl:|antispoof-accept|forward-policy|br-netfilter)/.test(s.id)).map((s) => s.id));
  assert.ok(r.keep.length >= 3);

  // A distro restart put eth0's address back on it (bridge=xenbr1 layout): nothing from the record.
  const rec2: BridgeRecord = { ...record, bridge: 'xenbr1', pdev: 'eth0', steps: plan(planStart(req({ bridge: 'xenbr1' }), observed(host()))) };
  const r2 = planRebuild(rec2, { links: [lo, eth('eth0')], routes4: [], routes6: [] });
  assert.ok(r2);
  assert.match(r2.found, /eth0 has addresses of its own again \(192.0.2.5\/24 192.0.2.6\/24 2001:db8::5\/64\)/);
  assert.deepEqual(r2.reset.steps, []);

  // Something else took the name: refused, naming it.
  assert.throws(() => planRebuild(record, { links: [lo, eth('eth0')], routes4: [], routes6: [] }), /is a veth device now; network-bridge will not touch it/);
});
