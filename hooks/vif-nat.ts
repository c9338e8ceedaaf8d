/**
 * vif-nat: routes a Xen guest's interface behind dom0's NAT, with a router address of its own
 * and, when network-nat runs dnsmasq, a DHCP lease for it; as libxl (`online|offline
 * type_if=vif`, `add|remove type_if=tap`) and xend call it.
 */
import type { HookSpec } from '../lib/cli/spec.ts';
import { vifNat } from '../lib/commands/vif-nat.ts';
import { openOutput } from '../lib/log.ts';
import { hookMain } from '../lib/runtime.ts';

const spec: HookSpec = {
  name: 'vif-nat',
  summary: "route a Xen guest's interface behind dom0's NAT, with its DHCP lease and antispoofing",
  commands: [
    { name: 'online', description: 'PV vif came up: router address, host route, DHCP host, guard; write hotplug-status connected (type_if=vif)' },
    { name: 'offline', description: 'PV vif went away: remove exactly what online added (type_if=vif)' },
    { name: 'add', description: 'emulated NIC (tap) came up (type_if=tap)' },
    { name: 'remove', description: 'emulated NIC (tap) went away (type_if=tap)' },
  ],
  options: [
    { key: 'type_if', type: { kind: 'enum', values: ['vif', 'tap'] }, default: 'vif', description: 'Kind of device: vif (PV, $vif) or tap (emulated, $INTERFACE).' },
    {
      key: 'ip',
      type: { kind: 'cidrs' },
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
  epilog: `
dom0: run network-nat start (masquerading; dhcp=yes for dnsmasq) first.

Environment (set by libxl or udev): vif, XENBUS_PATH (backend/vif/<domid>/<devid>), INTERFACE (tap).
By hand:  vif=vif1.0 XENBUS_PATH=backend/vif/1/0 vif-nat online --dry-run

Reports: hotplug-status=connected on success (online); on failure hotplug-error=<message>,
hotplug-status=error and exit 1, with everything this run changed rolled back.
Afterwards runs the executable *.hook in /etc/xen/scripts/vif-post.d (XEN_NETHOOKS_HOOK_DIR) with
command, dev, ip, XENBUS_PATH set, as the originals did.
Files: /etc/xen/nethooks.conf (XEN_NETHOOKS_CONF), /var/log/xen/xen-hotplug.log (XEN_NETHOOKS_LOG),
/run/xen-nethooks/ (XEN_NETHOOKS_STATE_DIR; dnsmasq's hosts directory is dnsmasq/hosts.d there),
lock /var/run/xen-hotplug/iptables (XEN_NETHOOKS_LOCK_DIR).
xenstore: over xenstored's socket (XENSTORED_PATH), else the xenstore-* clients; XEN_NETHOOKS_XENSTORE=cli
forces the clients.
Exit status: 0 done (offline/remove: always, as libxl ignores their errors), 1 failed, 2 bad arguments.
`,
};

void hookMain(spec, async (inv) =>
  vifNat({ spec, inv, env: process.env, flags: inv.flags, out: openOutput(spec.name, process.env, { command: inv.command, vif: process.env.vif ?? process.env.INTERFACE }) }),
);
