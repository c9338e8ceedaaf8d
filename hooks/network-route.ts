/**
 * network-route: makes dom0 a router for guests whose vifs vif-route sets up, as xend's
 * `(network-script network-route …)` or an operator calls it. See --help.
 */
import type { Invocation } from '../lib/cli/args.ts';
import { optionsOf } from '../lib/cli/precedence.ts';
import type { HookSpec } from '../lib/cli/spec.ts';
import { start, status, stop, type Context } from '../lib/commands/network-route.ts';
import { openOutput } from '../lib/log.ts';
import type { NetworkRouteRequest } from '../lib/plans/network-route.ts';
import { hookMain } from '../lib/runtime.ts';

const spec: HookSpec = {
  name: 'network-route',
  summary: 'make dom0 a router for its Xen guests (forwarding, proxy ARP/NDP), undone by stop',
  commands: [
    { name: 'start', description: 'turn on forwarding (IPv6 too where dom0 has global IPv6) and proxy ARP/NDP on netdev' },
    { name: 'stop', description: 'put back every setting start changed, as start found it' },
    { name: 'status', description: 'show the settings and the routed guests (exit 3 if not started here)' },
  ],
  options: [
    { key: 'netdev', type: { kind: 'ifname' }, description: "dom0's uplink. Default: the device of the IPv4 default route, else eth<vifnum>." },
    { key: 'vifnum', type: { kind: 'int', min: 0, max: 255 }, description: 'Number for the default netdev eth<vifnum>.' },
  ],
  epilog: `
start sets net.ipv4.ip_forward=1 and proxy_arp=1 on netdev; where dom0 has a global IPv6 address
also net.ipv6.conf.all.forwarding=1 and proxy_ndp=1 on netdev (accept_ra 1 becomes 2 there, so
dom0 keeps its router-advertised default route). Forwarding stays on while network-nat or another
network-route start still needs it.

Examples:
  network-route start                  # the default-route device
  network-route start netdev=eth1
  network-route stop
  network-route status --json

Files and environment:
  /etc/xen/nethooks.conf   optional defaults, key=value per line (XEN_NETHOOKS_CONF)
  /run/xen-nethooks/       what start changed, per network namespace (XEN_NETHOOKS_STATE_DIR)
  /var/log/xen/xen-hotplug.log   one JSON line per command (XEN_NETHOOKS_LOG)
  /var/run/xen-hotplug/ip-forward   the lock network-route and network-nat share (XEN_NETHOOKS_LOCK_DIR)
  XEN_NETHOOKS_FAULT=<step id>   tests only: fail that step (ids: --dry-run --json) to exercise rollback

Exit status: 0 done or nothing to do, 1 failed (the host was rolled back), 2 bad arguments, 3 status: not started.
`,
};

function toRequest(inv: Invocation): NetworkRouteRequest {
  const o = optionsOf(inv);
  return { netdev: o.text('netdev'), vifnum: o.int('vifnum') };
}

void hookMain(spec, async (inv) => {
  const ctx: Context = { env: process.env, flags: inv.flags, out: await openOutput(spec.name, process.env, { command: inv.command }) };
  const req = toRequest(inv);
  if (inv.command === 'start') return start(req, ctx);
  if (inv.command === 'stop') return stop(req, ctx);
  return status(req, ctx);
});
