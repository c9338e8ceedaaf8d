/**
 * network-bridge: creates (start) or removes (stop) a bridge for guests over dom0's uplink, as
 * xend's `(network-script network-bridge …)` or an operator calls it. See --help.
 */
import type { Invocation } from '../lib/cli/args.ts';
import { optionsOf } from '../lib/cli/precedence.ts';
import type { HookSpec } from '../lib/cli/spec.ts';
import { start, status, stop, type Context } from '../lib/commands/network-bridge.ts';
import { openOutput } from '../lib/log.ts';
import type { BridgeRequest } from '../lib/plans/network-bridge.ts';
import { hookMain } from '../lib/runtime.ts';

export const spec: HookSpec = {
  name: 'network-bridge',
  summary: "bridge dom0's uplink for Xen guests, without ifdown, keeping dom0's addresses, routes and VLANs",
  commands: [
    { name: 'start', description: 'create the bridge and move dom0\'s configuration of netdev onto it' },
    { name: 'stop', description: 'undo exactly what start did' },
    { name: 'status', description: 'show the bridge, its ports, addresses and routes (exit 3 if it is not there)' },
  ],
  options: [
    {
      key: 'bridge',
      type: { kind: 'ifname', special: ['null'] },
      description:
        "Bridge to create. Default: netdev's own name, in which case netdev is renamed p<netdev> and becomes the port (Xen 3.2+ layout). Any other name (xenbr1) leaves netdev's name alone. null: do nothing.",
    },
    {
      key: 'netdev',
      type: { kind: 'ifname', special: ['none'] },
      description:
        'Device to bridge: physical, VLAN (eth0.10) or bond. Default: the device of the IPv4 default route, else eth<vifnum>. none: a host-only bridge with no physical port.',
    },
    { key: 'vifnum', type: { kind: 'int', min: 0, max: 255 }, description: 'Number used for defaults: eth<vifnum> and, with netdev=none, xenbr<vifnum>.' },
    {
      key: 'antispoof',
      type: { kind: 'bool' },
      default: 'no',
      description:
        'Set the iptables FORWARD policy to DROP, accept what enters from the physical port, and pass bridged traffic through iptables (bridge-nf-call-iptables/ip6tables=1); vif-bridge then accepts each guest\'s own addresses. Undone by stop; other FORWARD rules are kept.',
    },
    {
      key: 'vlans',
      type: { kind: 'vlans' },
      default: '',
      description:
        "VLANs for dom0 to create on the bridge (dom0's side), named <bridge>.<id>, each optionally with addresses: vlans=30,40@192.0.2.1/24@2001:db8:40::1/64. Removed by stop. dom0's existing VLAN devices on netdev are moved to the bridge without this.",
    },
  ],
  epilog: `
Examples:
  network-bridge start                                  # bridge the default-route device
  network-bridge start netdev=eth1 bridge=xenbr1        # keep eth1's name, bridge it as xenbr1
  network-bridge start netdev=eth0.10 bridge=xenbr10    # bridge a VLAN device (it survives)
  network-bridge start netdev=none bridge=dmz           # host-only bridge
  network-bridge stop bridge=xenbr1
  network-bridge status --json

Files and environment:
  /etc/xen/nethooks.conf   optional defaults, key=value per line (XEN_NETHOOKS_CONF overrides the path);
                           a key may be scoped: network-bridge.antispoof=yes
  /run/xen-nethooks/       what start changed, per network namespace (XEN_NETHOOKS_STATE_DIR)
  /var/log/xen/xen-hotplug.log   one JSON line per command (XEN_NETHOOKS_LOG)
  /var/run/xen-hotplug/network-bridge   the lock shared with Xen's own scripts (XEN_NETHOOKS_LOCK_DIR)
  XEN_NETHOOKS_FAULT=<step id>   tests only: fail that step (ids: --dry-run --json) to exercise rollback

Exit status: 0 done or nothing to do, 1 failed (the host was rolled back), 2 bad arguments, 3 status: no bridge.
`,
};

function toRequest(inv: Invocation): BridgeRequest {
  const o = optionsOf(inv);
  return {
    bridge: o.text('bridge'),
    netdev: o.text('netdev'),
    vifnum: o.int('vifnum'),
    antispoof: o.flag('antispoof') === true,
    vlans: o.vlans('vlans') ?? [],
  };
}

void hookMain(spec, async (inv) => {
  const ctx: Context = { env: process.env, flags: inv.flags, out: await openOutput(spec.name, process.env, { command: inv.command }) };
  const req = toRequest(inv);
  if (inv.command === 'start') return start(req, ctx);
  if (inv.command === 'stop') return stop(req, ctx);
  return status(req, ctx);
});
