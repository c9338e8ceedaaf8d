import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { HostState } from '../../lib/net/host.ts';
import type { Link } from '../../lib/net/link.ts';
import { PlanError } from '../../lib/plan.ts';
import { planOffline, planOnline, resolveBridge, VIF_MAC, type VifRequest } from '../../lib/plans/vif-bridge.ts';
import { targetName } from '../../lib/plans/vif.ts';

const link = (ifname: string, kind: string, extra: Partial<Link> = {}): Link => ({
  ifname, ifindex: 1, flags: ['BROADCAST', 'MULTICAST'], mtu: 1500, linkinfo: { info_kind: kind }, ...extra,
});
const host = (...links: Link[]): HostState => ({ links, routes4: [], routes6: [] });
const req = (r: Partial<VifRequest> = {}): VifRequest => ({
  command: 'online', typeIf: 'vif', dev: 'vif1.0', bridge: 'xenbr0', ip: ['192.0.2.11', '2001:db8::11'], mac: '00:16:3e:00:01:00',
  firewall: 'iptables', notrack: true, antispoof: true, ...r,
});
const h = host(link('xenbr0', 'bridge', { mtu: 9000 }), link('eth1', 'bridge'), link('vif1.0', 'vif'), link('vif2.0', 'vif'));

test('bridge resolution (SPEC 2.1)', () => {
  assert.equal(resolveBridge(h, undefined), 'eth1', 'the first by name, as brctl show lists them');
  assert.equal(resolveBridge(h, 'eth1'), 'eth1');
  assert.equal(resolveBridge(h, 'xenbr1'), 'eth1', 'xenbrN falls back to an ethN bridge');
  assert.throws(() => resolveBridge(h, 'xenbr7'), (e: Error) => e instanceof PlanError && /Could not find bridge device xenbr7 \(bridges here: xenbr0, eth1\)/.test(e.message));
  assert.throws(() => resolveBridge(h, 'vif2.0'), /is a vif device, not a bridge/);
  assert.throws(() => resolveBridge(host(link('vif1.0', 'vif')), undefined), /Could not find bridge, and none was specified/);
});

test('a missing xenbrN is the bridge network-bridge started with vifnum=N (Xen 3.0/3.1 names), said as a warning', () => {
  const hh = host(link('dummy0', 'bridge'), link('eth1', 'bridge'), link('lan', 'bridge'), link('vif1.0', 'vif'));
  const started = [{ bridge: 'dummy0', vifnum: 1 }, { bridge: 'lan', vifnum: 0 }];
  assert.equal(resolveBridge(hh, 'xenbr1', started), 'dummy0', 'the record wins over an ethN bridge');
  assert.equal(resolveBridge(hh, 'xenbr0', started), 'lan');
  assert.equal(resolveBridge(hh, 'xenbr1', []), 'eth1', 'no record: the ethN bridge');
  assert.throws(() => resolveBridge(hh, 'xenbr2', started), /Could not find bridge device xenbr2/);
  // A record whose bridge is gone is no answer.
  assert.throws(() => resolveBridge(host(link('vif1.0', 'vif')), 'xenbr1', started), /Could not find bridge device xenbr1/);
  assert.throws(() => resolveBridge(hh, 'xenbr1', [...started, { bridge: 'lan', vifnum: 1 }]), /several bridges with vifnum=1 \(dummy0, lan\)/);
  const p = planOnline(req({ bridge: 'xenbr1' }), hh, undefined, started);
  assert.equal(p.bridge, 'dummy0');
  assert.ok(p.warnings.some((w) => /bridge xenbr1 does not exist: using dummy0, the bridge network-bridge started with vifnum=1/.test(w)), p.warnings.join('\n'));
});

test('online: guard before the port comes up (the shell adds the report last)', () => {
  const p = planOnline(req(), h);
  assert.deepEqual(p.plan.steps.map((s) => s.id), ['firewall', 'port']);
  assert.equal(p.mtu, 9000, "MTU defaults to the bridge's");
  const port = p.plan.steps[1]?.run[0];
  assert.deepEqual(port?.argv, ['ip', '-batch', '-']);
  assert.equal(port?.input, [
    'link set dev vif1.0 down', `link set dev vif1.0 address ${VIF_MAC}`, 'addr flush dev vif1.0',
    'link set dev vif1.0 mtu 9000', 'link set dev vif1.0 master xenbr0', 'link set dev vif1.0 up', ''].join('\n'));
  const fw = p.plan.steps[0];
  assert.deepEqual(fw?.run.map((c) => c.argv[0]), ['ebtables-restore', 'iptables-restore', 'ip6tables-restore']);
  assert.match(fw?.run[0]?.input ?? '', /-p IPv4 --ip-src 192\.0\.2\.11 -j RETURN/);
  assert.match(fw?.run[2]?.input ?? '', /-s 2001:db8::11 -j ACCEPT/);
  assert.doesNotMatch(fw?.run.map((c) => c.input ?? '').join('') ?? '', /NOTRACK/, 'NOTRACK is nft\'s (nft.ts); without nft there is none');
  assert.deepEqual(fw?.undo.map((c) => c.argv[0]), ['ebtables-restore', 'iptables-restore', 'ip6tables-restore'], 'removal of every piece is the undo; no nft installed: nothing needs it');
  const withNft = planOnline(req({ nft: true }), h).plan.steps[0];
  assert.deepEqual(withNft?.run.map((c) => c.argv[0]), ['ebtables-restore', 'nft', 'iptables-restore', 'ip6tables-restore'], 'nft installed: the companion goes in');
  assert.deepEqual(withNft?.undo.map((c) => c.argv[0]), ['ebtables-restore', 'iptables-restore', 'ip6tables-restore', 'nft'], 'and comes out with the rest');
  assert.equal(planOnline(req({ mtu: 9216 }), h).mtu, 9216, 'an mtu above the bridge\'s does not lower it');
  assert.deepEqual(p.plan.steps[1]?.undo.map((c) => c.argv.join(' ')), ['ip -force -batch -', 'ip link set dev vif1.0 mtu 1500'],
    "a rollback gives the vif its own MTU back");
});

test("online: an mtu below the bridge's lowers it, with a warning; below 1280 it is refused by key and value (dom0's IPv6 would go)", () => {
  const lower = planOnline(req({ mtu: 1400 }), h);
  assert.equal(lower.mtu, 1400);
  assert.match(lower.warnings.join(), /mtu=1400 is below bridge xenbr0's MTU 9000: the kernel lowers xenbr0 to 1400/);
  assert.throws(() => planOnline(req({ mtu: 1200 }), h),
    (e: Error) => e instanceof PlanError && /mtu=1200 is below 1280: .*bridge xenbr0 \(MTU 9000\).*remove dom0's IPv6 addresses.*leave it unset to use 9000/.test(e.message));
  const same = planOnline(req({ mtu: 1500, bridge: 'eth1' }), h);
  assert.deepEqual(same.plan.steps[1]?.undo.map((c) => c.argv.join(' ')), ['ip -force -batch -'], 'no MTU to put back when it did not change');
});

test('no ip: only the MAC is enforced, with a warning', () => {
  const p = planOnline(req({ ip: [] }), h);
  assert.equal(p.guard?.antispoof, false);
  assert.match(p.warnings.join(), /no ip in xenstore/);
  assert.doesNotMatch(p.plan.steps[0]?.run[0]?.input ?? '', /--ip-src/);
  assert.match(p.plan.steps[0]?.run[0]?.input ?? '', /-s ! 00:16:3e:00:01:00 -j DROP/);
});

test('firewall=none and firewall=nft', () => {
  assert.deepEqual(planOnline(req({ firewall: 'none' }), h).plan.steps.map((s) => s.id), ['port']);
  const nft = planOnline(req({ firewall: 'nft' }), h).plan.steps[0];
  assert.deepEqual(nft?.run.map((c) => c.argv.join(' ')), ['nft -f -']);
  assert.match(nft?.run[0]?.input ?? '', /add element bridge xen-nethooks vifs \{ "vif1.0" : jump vif-vif1.0 \}/);
  assert.match(nft?.run[0]?.input ?? '', /ip6 saddr \{ 2001:db8::11, fe80::216:3eff:fe00:100 \} return/);
  assert.match(nft?.undo[0]?.input ?? '', /delete chain bridge xen-nethooks vif-vif1.0/);
});

test('vifname: rename first, collisions and long names refused', () => {
  const p = planOnline(req({ vifname: 'web0' }), h);
  assert.deepEqual(p.plan.steps.map((s) => s.id), ['rename', 'firewall', 'port']);
  assert.equal(p.dev, 'web0');
  assert.match(p.plan.steps[2]?.run[0]?.input ?? '', /link set dev web0 master xenbr0/);
  assert.throws(() => planOnline(req({ vifname: 'vif2.0' }), h), /Cannot rename interface vif1.0 to vif2.0/);
  assert.throws(() => planOnline(req({ vifname: 'abcdefghijklmnop' }), h), /not a valid interface name/);
  assert.equal(targetName({ dev: 'vif1.0-emu', vifname: 'web0', typeIf: 'tap' }), 'web0-emu');
  assert.throws(() => planOnline(req({ typeIf: 'tap', dev: 'vif1.0-emu', vifname: 'abcdefghijkl' }), host(link('xenbr0', 'bridge'), link('vif1.0-emu', 'tun'))), /-emu included/);
});

test('a missing device is an error that says what happened', () => {
  assert.throws(() => planOnline(req({ dev: 'vif9.0' }), h), /device vif9.0 does not exist/);
});

test('names the rule parsers would misread are refused unless firewall=none', () => {
  const odd = host(link('xenbr0', 'bridge'), link('vif#1', 'vif'));
  assert.throws(() => planOnline(req({ dev: 'vif#1' }), odd), /characters the firewall cannot take/);
  assert.equal(planOnline(req({ dev: 'vif#1', firewall: 'none' }), odd).dev, 'vif#1');
});

test('offline: rules out by name, port released, everything tolerant', () => {
  const p = planOffline('vif1.0', 'iptables', true, true);
  assert.deepEqual(p.steps.map((s) => s.id), ['firewall', 'port']);
  assert.ok(p.steps[1]?.run[0]?.tolerate?.includes(''));
  assert.deepEqual(planOffline('vif1.0', 'none', true, true).steps.map((s) => s.id), ['port']);
  for (const c of p.steps[0]?.run ?? []) assert.ok(c.fallback, `${c.argv[0]} falls back to piecewise removal`);
});
