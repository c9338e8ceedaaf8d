/**
 * vif-bridge: attaches a guest's network interface to a bridge and guards it (antispoofing,
 * NOTRACK), as libxl (`online|offline type_if=vif`, `add|remove type_if=tap`) and xend call it.
 */
import type { Options } from '../lib/cli/options.ts';
import type { HookSpec } from '../lib/cli/spec.ts';
import { TYPE_IF, vifCommands, vifEpilog } from '../lib/cli/vif-spec.ts';
import { vifBridge, type VifAsked } from '../lib/commands/vif-bridge.ts';
import { vifRequest, type VifCall } from '../lib/commands/vif-hotplug.ts';
import { FIREWALL_BACKENDS } from '../lib/firewall/guard.ts';
import { openOutput } from '../lib/log.ts';
import { hookMain } from '../lib/runtime.ts';

const spec: HookSpec = {
  name: 'vif-bridge',
  summary: "attach a Xen guest's interface to a bridge, with antispoofing and NOTRACK",
  commands: vifCommands({ online: 'set up the port', offline: 'remove its rules, release the port' }),
  options: [
    TYPE_IF,
    { key: 'bridge', type: { kind: 'ifname' }, description: 'Bridge to attach to (xenstore `bridge` wins). Default: the first bridge. A missing xenbrN is the bridge network-bridge started with vifnum=N (Xen 3.0/3.1 names), else ethN when that is a bridge.' },
    { key: 'ip', type: { kind: 'guest-ips' }, description: "The guest's addresses (xenstore `ip` wins); the only source addresses it may use." },
    { key: 'mac', type: { kind: 'mac' }, description: "The guest's MAC (xenstore `mac` wins); the only source MAC it may use." },
    { key: 'mtu', type: { kind: 'int', min: 68, max: 65535 }, description: "MTU of the port and the guest (xenstore `mtu` wins). Default: the bridge's. A lower one lowers the bridge's MTU while the guest is on it (a warning says so); below 1280 it is refused on a bridge at 1280 or more (the kernel would strip dom0's IPv6 addresses from the bridge)." },
    { key: 'vifname', type: { kind: 'ifname' }, description: 'Rename the device to this (xenstore `vifname` wins); tap devices get <vifname>-emu.' },
    { key: 'firewall', type: { kind: 'enum', values: FIREWALL_BACKENDS }, default: 'iptables', description: 'Firewall backend: iptables (iptables-restore + ebtables-restore; works with network-bridge antispoof=yes), nft (one nft transaction in a bridge-family table; needs the iptables FORWARD policy ACCEPT), none.' },
    { key: 'antispoof', type: { kind: 'bool' }, default: 'yes', description: "Drop what the guest sends from addresses, MACs or ARP identities not its own, DHCP server and router-advertisement traffic. Without `ip`, only the MAC is enforced." },
    { key: 'notrack', type: { kind: 'bool' }, default: 'yes', description: "Keep the guest's traffic out of dom0's conntrack table (raw table NOTRACK)." },
  ],
  epilog: vifEpilog({
    hook: 'vif-bridge',
    hookVars: 'bridge, ip',
    intro: `Per-guest policies, in /etc/xen/nethooks.conf after the top-level keys (README: Per-guest policies):
  [guest NAME] | [mac MAC] | [vifname NAME]     the guest's domain name, or one vif (most specific wins)
  route = yes            any source address (it forwards for others); its MAC still enforced
  trunk = 10, 20         802.1Q frames with these VLAN ids
  serve = dhcp, dhcpv6, ra   DHCP/DHCPv6 server replies and router advertisements
  ethertypes = 0x88a2    other ethertypes (AoE)
  guard = no             no layer-2 guard at all
A malformed section fails online (file and line in hotplug-error, exit 2).`,
  }),
};

/** Keys read from the backend directory; they override argv and the environment (SPEC §1). */
const XENSTORE_KEYS = ['bridge', 'ip', 'mac', 'mtu', 'vifname'] as const;

function toRequest(o: Options, call: VifCall): VifAsked {
  return {
    ...vifRequest(o, call),
    bridge: o.text('bridge'),
    mac: o.text('mac'),
    firewall: o.choice('firewall', FIREWALL_BACKENDS) ?? 'iptables',
    notrack: o.flag('notrack') !== false,
  };
}

void hookMain(spec, async (inv) =>
  vifBridge(
    { spec, inv, env: process.env, flags: inv.flags, out: await openOutput(spec.name, process.env, { command: inv.command, vif: process.env.vif ?? process.env.INTERFACE }) },
    { xenstoreKeys: XENSTORE_KEYS, toRequest },
  ),
);
