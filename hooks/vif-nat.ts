/**
 * vif-nat: routes a Xen guest's interface behind dom0's NAT, with a router address of its own
 * and, when network-nat runs dnsmasq, a DHCP lease for it; as libxl (`online|offline
 * type_if=vif`, `add|remove type_if=tap`) and xend call it.
 */
import type { Options } from '../lib/cli/options.ts';
import type { HookSpec } from '../lib/cli/spec.ts';
import { TYPE_IF, vifCommands, vifEpilog } from '../lib/cli/vif-spec.ts';
import { vifRequest, type VifCall } from '../lib/commands/vif-hotplug.ts';
import { vifNat, type VifNatAsked } from '../lib/commands/vif-nat.ts';
import { openOutput } from '../lib/log.ts';
import { hookMain } from '../lib/runtime.ts';

const spec: HookSpec = {
  name: 'vif-nat',
  summary: "route a Xen guest's interface behind dom0's NAT, with its DHCP lease and antispoofing",
  commands: vifCommands({ online: 'router address, host route, DHCP host, guard', offline: 'remove exactly what online added' }),
  options: [
    TYPE_IF,
    {
      key: 'ip',
      type: { kind: 'guest-ips', netmask: true },
      description: "The guest's IPv4 address, with the prefix length it is handed (default /16) (xenstore `ip` wins). Default: 10.<domid/256>.<domid%256>.<handle+1>/16, as the original. dom0's end, the guest's router, is the address +127 in the last octet.",
    },
    { key: 'mac', type: { kind: 'mac' }, description: "The guest's MAC (xenstore `mac` wins): its DHCP identity." },
    {
      key: 'dhcp',
      type: { kind: 'bool' },
      description: "Give the guest its address by DHCP: a file in dnsmasq's hosts directory (MAC,IP,dom<domid>[-<n>]), read by dnsmasq without a restart. Default: yes when network-nat started dnsmasq here (dhcp=yes), else no.",
    },
    { key: 'mtu', type: { kind: 'int', min: 68, max: 65535 }, description: "MTU of the device and the guest (xenstore `mtu` wins). Default: the device's own." },
    { key: 'vifname', type: { kind: 'ifname' }, description: "Rename the device to this (xenstore `vifname` wins); tap devices get <vifname>-emu. dnsmasq serves only names matching vif*." },
    {
      key: 'antispoof',
      type: { kind: 'bool' },
      default: 'yes',
      description: "Drop what arrives on the device from any source but the guest's address (and DHCP discovery), to dom0 itself too (iptables raw PREROUTING); all IPv6 from the guest is dropped.",
    },
  ],
  epilog: vifEpilog({
    hook: 'vif-nat',
    intro: 'dom0: run network-nat start (masquerading; dhcp=yes for dnsmasq) first.',
    hookVars: 'ip',
    stateNote: "dnsmasq's hosts directory is dnsmasq/hosts.d there",
  }),
};

/** Keys read from the backend directory; they override argv and the environment (SPEC §1). */
const XENSTORE_KEYS = ['ip', 'mac', 'mtu', 'vifname'] as const;

function toRequest(o: Options, call: VifCall): VifNatAsked {
  return { ...vifRequest(o, call), mac: o.text('mac'), dhcp: o.flag('dhcp') };
}

void hookMain(spec, async (inv) =>
  vifNat(
    { spec, inv, env: process.env, flags: inv.flags, out: await openOutput(spec.name, process.env, { command: inv.command, vif: process.env.vif ?? process.env.INTERFACE }) },
    { xenstoreKeys: XENSTORE_KEYS, toRequest },
  ),
);
