import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseValue } from '../../lib/cli/values.ts';
import { dnsmasqArgv, dnsmasqFiles, hostEntry, parseLeases } from '../../lib/dhcp/dnsmasq.ts';
import type { Command } from '../../lib/exec.ts';
import type { HostState } from '../../lib/net/host.ts';
import { parseIpv4Net } from '../../lib/net/ipv4.ts';
import { PlanError, type Step } from '../../lib/plan.ts';
import { masqueradeRule, planNetworkNatStart, planNetworkNatStop, type NatRecord, type NetworkNatObserved } from '../../lib/plans/network-nat.ts';
import { natAddressing, natHostname, planVifNatOffline, planVifNatOnline, type VifNatObserved, type VifNatRequest } from '../../lib/plans/vif-nat.ts';

const files = dnsmasqFiles('/run/xen-nethooks/netns-1');

const host: HostState = {
  links: [
    { ifname: 'lo', ifindex: 1, flags: ['UP'], mtu: 65536 },
    { ifname: 'eth0', ifindex: 2, flags: ['UP'], mtu: 1500, addr_info: [{ family: 'inet', local: '192.0.2.5', prefixlen: 24, scope: 'global' }] },
    { ifname: 'vif1.0', ifindex: 3, flags: [], mtu: 1500 },
  ],
  routes4: [{ dst: 'default', gateway: '192.0.2.1', dev: 'eth0' }],
  routes6: [],
};

const ids = (steps: readonly Step[]) => steps.map((s) => s.id);
const argvs = (cmds: readonly Command[]) => cmds.map((c) => c.argv.join(' '));

test("default addressing is the original's: 10.<domid/256>.<domid%256>.<handle+1>/16, router +127", () => {
  assert.deepEqual(natAddressing([], 1, 0), { guest: '10.0.1.1', prefix: 16, router: '10.0.1.128' });
  assert.deepEqual(natAddressing([], 300, 2), { guest: '10.1.44.3', prefix: 16, router: '10.1.44.130' });
  assert.deepEqual(natAddressing(['10.0.3.7/24'], 3, 1), { guest: '10.0.3.7', prefix: 24, router: '10.0.3.134' });
  assert.deepEqual(natAddressing(['10.0.3.7'], 3, 1), { guest: '10.0.3.7', prefix: 16, router: '10.0.3.134' });
  assert.throws(() => natAddressing(['10.0.0.200'], 1, 0), (e: unknown) => e instanceof PlanError && /10\.0\.0\.327, past \.254/.test(e.message));
  assert.throws(() => natAddressing(['2001:db8::7'], 1, 0), /one IPv4 address/);
  assert.throws(() => natAddressing(['10.0.0.1', '10.0.0.2'], 1, 0), /one IPv4 address/);
  // Values that cannot form the default address are refused by name, not handed to iptables.
  assert.throws(() => natAddressing([], 65536, 0), (e: unknown) => e instanceof PlanError && /domid 65536: expected a domain id 0-32751/.test(e.message));
  assert.throws(() => natAddressing([], 1, 127), /handle 127: .* 0-126/);
  assert.deepEqual(natAddressing([], 32751, 126), { guest: '10.127.239.127', prefix: 16, router: '10.127.239.254' });
  assert.deepEqual(natAddressing(['10.0.3.7'], 3, 5000), { guest: '10.0.3.7', prefix: 16, router: '10.0.3.134' }, 'with ip, the handle only names the host');
});

test('host names: dom<domid>, and dom<domid>-<handle+1> for a second vif', () => {
  assert.equal(natHostname(5, 0), 'dom5');
  assert.equal(natHostname(5, 1), 'dom5-2');
});

const nobs = (d: Partial<NetworkNatObserved['dnsmasq']> = {}): NetworkNatObserved => ({
  host, ipForward: '0', dnsmasq: { files, installed: true, ...d },
});

test('network-nat start: ip_forward (shared), the tagged MASQUERADE, and with dhcp=yes dnsmasq with its files', () => {
  const plain = planNetworkNatStart({ dhcp: false, subnet: '10.0.0.0/16' }, nobs());
  assert.deepEqual(ids(plain.plan.steps), ['sysctl:net.ipv4.ip_forward', 'masquerade']);
  assert.deepEqual(argvs(plain.plan.steps[1]?.run ?? []), [
    'iptables -w -t nat -I POSTROUTING 1 -s 10.0.0.0/16 -o eth0 -m comment --comment xen-nethooks:network-nat:eth0 -j MASQUERADE',
  ]);
  assert.deepEqual(argvs(plain.plan.steps[1]?.undo ?? []), [
    'iptables -w -t nat -D POSTROUTING -s 10.0.0.0/16 -o eth0 -m comment --comment xen-nethooks:network-nat:eth0 -j MASQUERADE',
  ]);
  const dhcp = planNetworkNatStart({ dhcp: true, subnet: '10.0.0.0/16' }, nobs());
  assert.deepEqual(ids(dhcp.plan.steps), ['sysctl:net.ipv4.ip_forward', 'masquerade', 'dnsmasq-files', 'dnsmasq']);
  const dnsmasq = dhcp.plan.steps[3] as Step;
  assert.deepEqual(dnsmasq.run[0]?.argv, dnsmasqArgv(files, parseIpv4Net('10.0.0.0/16')));
  assert.match(argvs(dnsmasq.undo)[0] ?? '', /^start-stop-daemon --stop --pidfile \S+dnsmasq.pid --exec \/usr\/sbin\/dnsmasq/);
});

test('dnsmasq: static leases for the subnet on vif*, its own files, no DNS, no system config', () => {
  const argv = dnsmasqArgv(files, parseIpv4Net('10.0.0.0/16'));
  for (const a of [
    '--conf-file=/dev/null', '--port=0', '--bind-dynamic', '--interface=vif*', '--dhcp-range=10.0.0.0,static,255.255.0.0',
    `--dhcp-hostsdir=${files.hostsDir}`, `--dhcp-leasefile=${files.leaseFile}`, `--pid-file=${files.pidFile}`,
  ]) assert.ok(argv.includes(a), a);
  assert.equal(hostEntry('00:16:3e:00:01:00', '10.0.1.1', 'dom1'), '00:16:3e:00:01:00,10.0.1.1,dom1\n');
  assert.deepEqual(parseLeases('1796117409 00:16:3e:00:01:00 10.0.1.1 dom1 01:00:16:3e:00:01:00\n\n'), [
    { expires: 1796117409, mac: '00:16:3e:00:01:00', ip: '10.0.1.1', hostname: 'dom1' },
  ]);
});

test('network-nat start dhcp=yes refuses: no dnsmasq, a second DHCP server, a directory nobody cannot enter', () => {
  const req = { dhcp: true, subnet: '10.0.0.0/16' };
  assert.throws(() => planNetworkNatStart(req, nobs({ installed: false })), /apt-get install dnsmasq-base/);
  assert.throws(() => planNetworkNatStart(req, nobs({ heldBy: 'eth1' })), /netdev=eth1 already runs/);
  assert.throws(() => planNetworkNatStart(req, nobs({ unreachable: '/root' })), /cannot enter \/root/);
});

test('network-nat stop: dnsmasq ended by the checked pid, or nothing to end; then files, rule, ip_forward', () => {
  const { plan } = planNetworkNatStart({ dhcp: true, subnet: '10.0.0.0/16' }, nobs());
  const record: NatRecord = { version: 1, hook: 'network-nat', key: 'eth0', netdev: 'eth0', subnet: '10.0.0.0/16', dhcp: files, startedAt: 'x', steps: plan.steps };
  const stop = planNetworkNatStop(record, [record], 1234).plan;
  assert.deepEqual(ids(stop.steps), ['undo-dnsmasq', 'undo-dnsmasq-files', 'undo-masquerade', 'undo-sysctl:net.ipv4.ip_forward']);
  assert.deepEqual(argvs(stop.steps[0]?.run ?? []), ['start-stop-daemon --stop --pid 1234 --exec /usr/sbin/dnsmasq --retry TERM/5/KILL/1 --oknodo']);
  assert.deepEqual(planNetworkNatStop(record, [], undefined).plan.steps[0]?.run, []);
});

const vreq = (r: Partial<VifNatRequest> = {}): VifNatRequest => ({
  command: 'online', typeIf: 'vif', dev: 'vif1.0', ip: [], mac: '00:16:3e:00:01:00', antispoof: true, domid: 1, handle: 0, ...r,
});
const vobs = (o: Partial<VifNatObserved> = {}): VifNatObserved => ({
  host, proxyArpWas: '0', ipForward: '1', network: { subnet: '10.0.0.0/16', dhcp: files }, dnsmasqPid: 77, ...o,
});

test('vif-nat online: guard (with DHCP discovery), router /32, up, proxy ARP, host route, the hosts-dir file (the shell adds the report)', () => {
  const on = planVifNatOnline(vreq(), vobs());
  assert.deepEqual(ids(on.plan.steps), ['guard', 'address', 'up', 'proxy-arp', 'route:4:10.0.1.1', 'dhcp-host']);
  const step = (id: string) => on.plan.steps.find((s) => s.id === id) as Step;
  assert.deepEqual(argvs(step('address').run), ['ip -4 addr add 10.0.1.128/32 dev vif1.0']);
  assert.deepEqual(argvs(step('route:4:10.0.1.1').run), ['ip -4 route add 10.0.1.1 dev vif1.0 metric 2 src 10.0.1.128']);
  assert.deepEqual(argvs(step('dhcp-host').run), [`tee -- ${files.hostsDir}/vif1.0`]);
  assert.equal(step('dhcp-host').run[0]?.input, '00:16:3e:00:01:00,10.0.1.1,dom1\n');
  // Rollback and offline make dnsmasq forget the host: a removed file alone does not.
  assert.deepEqual(argvs(step('dhcp-host').undo), [`rm -f -- ${files.hostsDir}/vif1.0`, 'kill -HUP 77']);
  assert.deepEqual(on.layout.guard, { dev: 'vif1.0', ipv4: ['10.0.1.1'], ipv6: [], dhcp: true });
  assert.deepEqual(on.warnings, []);
  const off = planVifNatOffline(on.layout, 88);
  assert.equal(off.steps[0]?.id, 'undo-dhcp-host');
  assert.deepEqual(argvs(off.steps[0]?.run ?? []), [`rm -f -- ${files.hostsDir}/vif1.0`, 'kill -HUP 88']);
});

test('vif-nat DHCP: by default only where network-nat runs dnsmasq; dhcp=yes without one, or without a MAC, is refused', () => {
  assert.ok(!ids(planVifNatOnline(vreq(), vobs({ network: { subnet: '10.0.0.0/16', dhcp: null } })).plan.steps).includes('dhcp-host'));
  assert.ok(!ids(planVifNatOnline(vreq({ dhcp: false }), vobs()).plan.steps).includes('dhcp-host'));
  assert.throws(() => planVifNatOnline(vreq({ dhcp: true }), vobs({ network: undefined })), /run network-nat start dhcp=yes first/);
  assert.throws(() => planVifNatOnline(vreq({ mac: undefined }), vobs()), /DHCP needs the guest's MAC/);
});

test('vif-nat warns: an address outside the NAT subnet, a name dnsmasq does not serve, dnsmasq not running', () => {
  const w = planVifNatOnline(vreq({ domid: 300, vifname: 'web0' }), vobs({ dnsmasqPid: undefined })).warnings.join('\n');
  assert.match(w, /10\.1\.44\.1 is outside network-nat's subnet 10\.0\.0\.0\/16/);
  assert.match(w, /web0 does not match dnsmasq's --interface=vif\*/);
  assert.match(w, /dnsmasq is not running/);
});

test('subnet= takes an IPv4 network with no host bits', () => {
  assert.equal(parseValue({ kind: 'ipv4net' }, '10.0.0.0/16'), '10.0.0.0/16');
  for (const bad of ['10.0.1.0/16', '10.0.0.0', '2001:db8::/64', '10.0.0.0/33']) {
    assert.throws(() => parseValue({ kind: 'ipv4net' }, bad), bad);
  }
  assert.deepEqual(masqueradeRule('10.0.0.0/16', 'eth0').slice(0, 4), ['-s', '10.0.0.0/16', '-o', 'eth0']);
});
