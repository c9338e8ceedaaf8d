/**
 * vif-route: routes a Xen guest's interface from dom0 (no bridge), with antispoofing that works
 * for routed traffic, as libxl (`online|offline type_if=vif`, `add|remove type_if=tap`) and xend
 * call it.
 */
import type { Options } from '../lib/cli/options.ts';
import type { HookSpec } from '../lib/cli/spec.ts';
import { TYPE_IF, vifCommands, vifEpilog } from '../lib/cli/vif-spec.ts';
import { vifRequest, type VifCall } from '../lib/commands/vif-hotplug.ts';
import { vifRoute, type VifRouteAsked } from '../lib/commands/vif-route.ts';
import { openOutput } from '../lib/log.ts';
import { hookMain } from '../lib/runtime.ts';

const spec: HookSpec = {
  name: 'vif-route',
  summary: "route a Xen guest's interface from dom0, guarded so the guest sends from its own addresses only",
  commands: vifCommands({ online: "dom0's address, host routes to the guest, guard", offline: 'remove exactly what online added', add: "its routes have metric 1, the PV vif's 2" }),
  options: [
    TYPE_IF,
    {
      key: 'ip',
      type: { kind: 'guest-ips' },
      description: "The guest's addresses or prefixes, IPv4 and IPv6 (xenstore `ip` wins). Required: each gets a host route through the device, and they are the only sources the guest may use. dom0's own addresses and gateways are refused.",
    },
    {
      key: 'netdev',
      type: { kind: 'ifname' },
      description: "dom0's uplink, whose primary IPv4 the device gets as a /32 and on which dom0 answers neighbour solicitations for the guest's IPv6 addresses. Default: the one network-route started here, else the device of the default route.",
    },
    { key: 'mtu', type: { kind: 'int', min: 68, max: 65535 }, description: "MTU of the device and the guest (xenstore `mtu` wins). Default: the device's own. Below 1280 it is refused for a guest with IPv6 addresses (the kernel turns IPv6 off on the device)." },
    { key: 'vifname', type: { kind: 'ifname' }, description: 'Rename the device to this (xenstore `vifname` wins); tap devices get <vifname>-emu.' },
    {
      key: 'antispoof',
      type: { kind: 'bool' },
      default: 'yes',
      description: "Drop what arrives on the device from any source but the guest's addresses, to dom0 itself too (iptables and ip6tables, raw PREROUTING); router advertisements from the guest are dropped. Without IPv6 addresses all its IPv6 is dropped.",
    },
  ],
  epilog: vifEpilog({
    hook: 'vif-route',
    intro: `The guest: its address (ip=), and as gateway any address on dom0's side (proxy ARP answers for
all); for IPv6 the device's link-local address (fe80::fcff:ffff:feff:ffff with netback's MAC).
dom0: run network-route start first (forwarding, proxy ARP/NDP on netdev).`,
    example: 'ip=192.0.2.10',
    hookVars: 'ip, netdev',
  }),
};

/** Keys read from the backend directory; they override argv and the environment (SPEC §1). */
const XENSTORE_KEYS = ['ip', 'mtu', 'vifname'] as const;

function toRequest(o: Options, call: VifCall): VifRouteAsked {
  return { ...vifRequest(o, call), netdev: o.text('netdev') };
}

void hookMain(spec, async (inv) =>
  vifRoute(
    { spec, inv, env: process.env, flags: inv.flags, out: await openOutput(spec.name, process.env, { command: inv.command, vif: process.env.vif ?? process.env.INTERFACE }) },
    { xenstoreKeys: XENSTORE_KEYS, toRequest },
  ),
);
