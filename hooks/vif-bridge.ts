/**
 * vif-bridge: attaches a guest's network interface to a bridge and guards it (antispoofing,
 * NOTRACK), as libxl (`online|offline type_if=vif`, `add|remove type_if=tap`) and xend call it.
 */
import type { HookSpec } from '../lib/cli/spec.ts';
import { vifBridge } from '../lib/commands/vif-bridge.ts';
import { openOutput } from '../lib/log.ts';
import { hookMain } from '../lib/runtime.ts';

const spec: HookSpec = {
  name: 'vif-bridge',
  summary: "attach a Xen guest's interface to a bridge, with antispoofing and NOTRACK",
  commands: [
    { name: 'online', description: 'PV vif came up: set up the port, write hotplug-status connected (type_if=vif)' },
    { name: 'offline', description: 'PV vif went away: remove its rules, release the port (type_if=vif)' },
    { name: 'add', description: 'emulated NIC (tap) came up (type_if=tap)' },
    { name: 'remove', description: 'emulated NIC (tap) went away (type_if=tap)' },
  ],
  options: [
    { key: 'type_if', type: { kind: 'enum', values: ['vif', 'tap'] }, default: 'vif', description: 'Kind of device: vif (PV, $vif) or tap (emulated, $INTERFACE).' },
    { key: 'bridge', type: { kind: 'ifname' }, description: 'Bridge to attach to (xenstore `bridge` wins). Default: the first bridge; xenbrN falls back to ethN when only that exists.' },
    { key: 'ip', type: { kind: 'cidrs' }, description: "The guest's addresses (xenstore `ip` wins); the only source addresses it may use." },
    { key: 'mac', type: { kind: 'mac' }, description: "The guest's MAC (xenstore `mac` wins); the only source MAC it may use." },
    { key: 'mtu', type: { kind: 'int', min: 68, max: 65535 }, description: "MTU of the port and the guest (xenstore `mtu` wins). Default: the bridge's." },
    { key: 'vifname', type: { kind: 'ifname' }, description: 'Rename the device to this (xenstore `vifname` wins); tap devices get <vifname>-emu.' },
    { key: 'firewall', type: { kind: 'enum', values: ['iptables', 'nft', 'none'] }, default: 'iptables', description: 'Firewall backend: iptables (iptables-restore + ebtables-restore; works with network-bridge antispoof=yes), nft (one nft transaction in a bridge-family table; needs the iptables FORWARD policy ACCEPT), none.' },
    { key: 'antispoof', type: { kind: 'bool' }, default: 'yes', description: "Drop what the guest sends from addresses, MACs or ARP identities not its own, DHCP server and router-advertisement traffic. Without `ip`, only the MAC is enforced." },
    { key: 'notrack', type: { kind: 'bool' }, default: 'yes', description: "Keep the guest's traffic out of dom0's conntrack table (raw table NOTRACK)." },
  ],
  epilog: `
Environment (set by libxl or udev): vif, XENBUS_PATH (backend/vif/<domid>/<devid>), INTERFACE (tap).
By hand:  vif=vif1.0 XENBUS_PATH=backend/vif/1/0 vif-bridge online --dry-run

Reports: hotplug-status=connected on success (online); on failure hotplug-error=<message>,
hotplug-status=error and exit 1, with everything this run changed rolled back.
Afterwards runs the executable *.hook in /etc/xen/scripts/vif-post.d (XEN_NETHOOKS_HOOK_DIR) with
command, dev, bridge, ip, XENBUS_PATH set, as the originals did.
Files: /etc/xen/nethooks.conf (XEN_NETHOOKS_CONF), /var/log/xen/xen-hotplug.log (XEN_NETHOOKS_LOG),
/run/xen-nethooks/ (XEN_NETHOOKS_STATE_DIR), lock /var/run/xen-hotplug/iptables (XEN_NETHOOKS_LOCK_DIR).
xenstore: over xenstored's socket (XENSTORED_PATH), else the xenstore-* clients; XEN_NETHOOKS_XENSTORE=cli
forces the clients.
Exit status: 0 done (offline/remove: always, as libxl ignores their errors), 1 failed, 2 bad arguments.
`,
};

void hookMain(spec, async (inv) =>
  vifBridge({ spec, inv, env: process.env, flags: inv.flags, out: openOutput(spec.name, process.env, { command: inv.command, vif: process.env.vif ?? process.env.INTERFACE }) }),
);
