/**
 * network-nat: masquerades the Xen guests' subnet out of dom0's uplink and, with dhcp=yes, runs
 * dnsmasq as their DHCP server; as xend's `(network-script network-nat …)` or an operator calls it.
 */
import type { Invocation } from '../lib/cli/args.ts';
import { optionsOf } from '../lib/cli/precedence.ts';
import type { HookSpec } from '../lib/cli/spec.ts';
import { start, status, stop, type Context } from '../lib/commands/network-nat.ts';
import { openOutput } from '../lib/log.ts';
import { DEFAULT_SUBNET, type NetworkNatRequest } from '../lib/plans/network-nat.ts';
import { hookMain } from '../lib/runtime.ts';

const spec: HookSpec = {
  name: 'network-nat',
  summary: "NAT for Xen guests out of dom0's uplink, with dnsmasq as their DHCP server; undone by stop",
  commands: [
    { name: 'start', description: 'turn on forwarding, masquerade the subnet out of netdev, start dnsmasq (dhcp=yes)' },
    { name: 'stop', description: 'end dnsmasq, remove the rule and its files, put ip_forward back as start found it' },
    { name: 'status', description: 'show the rule, dnsmasq, its leases and the guests (exit 3 if not started here)' },
  ],
  options: [
    { key: 'netdev', type: { kind: 'ifname' }, description: "dom0's uplink the guests' traffic leaves by. Default: the device of the IPv4 default route, else eth0." },
    {
      key: 'dhcp',
      type: { kind: 'bool' },
      default: 'no',
      description: 'Run dnsmasq (Debian dnsmasq-base) as the guests\' DHCP server on vif*: static leases only, one per vif that vif-nat online announces, no DNS.',
    },
    { key: 'subnet', type: { kind: 'ipv4net' }, default: DEFAULT_SUBNET, description: "The guests' subnet: masqueraded out of netdev, and the netmask dnsmasq hands out." },
  ],
  epilog: `
Examples:
  network-nat start dhcp=yes                 # the default-route device, 10.0.0.0/16
  network-nat start netdev=eth1 subnet=10.0.0.0/16
  network-nat stop
  network-nat status --json

Files and environment:
  /run/xen-nethooks/netns-<inode>/dnsmasq/   dnsmasq.pid, leases, hosts.d/ (XEN_NETHOOKS_STATE_DIR)
  /run/xen-nethooks/       what start changed, per network namespace
  /etc/xen/nethooks.conf   optional defaults, key=value per line (XEN_NETHOOKS_CONF)
  /var/log/xen/xen-hotplug.log   one JSON line per command (XEN_NETHOOKS_LOG); dnsmasq logs to syslog
  /var/run/xen-hotplug/ip-forward   the lock network-route and network-nat share (XEN_NETHOOKS_LOCK_DIR)
  XEN_NETHOOKS_FAULT=<step id>   tests only: fail that step (ids: --dry-run --json) to exercise rollback

Exit status: 0 done or nothing to do, 1 failed (the host was rolled back), 2 bad arguments, 3 status: not started.
`,
};

function toRequest(inv: Invocation): NetworkNatRequest {
  const o = optionsOf(inv);
  return { netdev: o.text('netdev'), dhcp: o.flag('dhcp') === true, subnet: o.text('subnet') ?? DEFAULT_SUBNET };
}

void hookMain(spec, async (inv) => {
  const ctx: Context = { env: process.env, flags: inv.flags, out: await openOutput(spec.name, process.env, { command: inv.command }) };
  const req = toRequest(inv);
  if (inv.command === 'start') return start(req, ctx);
  if (inv.command === 'stop') return stop(req, ctx);
  return status(req, ctx);
});
