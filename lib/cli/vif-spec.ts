/**
 * What the three vif hooks' specs (--help, accepted keys) have in common: libxl's four commands,
 * type_if, and the closing part of --help about how they are called, what they report and
 * where their files are. Each hook adds its own options and words.
 */
import type { CommandSpec, OptionSpec } from './spec.ts';

export interface VifCommandHelp {
  online: string;
  offline: string;
  add?: string;
}

export function vifCommands(help: VifCommandHelp): CommandSpec[] {
  return [
    { name: 'online', description: `PV vif came up: ${help.online}; write hotplug-status connected (type_if=vif)` },
    { name: 'offline', description: `PV vif went away: ${help.offline} (type_if=vif)` },
    { name: 'add', description: `emulated NIC (tap) came up (type_if=tap)${help.add ? `; ${help.add}` : ''}` },
    { name: 'remove', description: 'emulated NIC (tap) went away (type_if=tap)' },
    { name: 'status', description: 'every vif online here (from the state records): domain, addresses, policy, whether its guard is complete in the firewall; exit 3 when one is not (--json: an array)' },
    { name: 'repair', description: 'lay again exactly the guards a firewall reload removed, from the records, under the iptables lock; changes nothing when all are complete (run by xen-nethooks-repair.service)' },
  ];
}

export const TYPE_IF: OptionSpec = {
  key: 'type_if',
  type: { kind: 'enum', values: ['vif', 'tap'] },
  default: 'vif',
  description: 'Kind of device: vif (PV, $vif) or tap (emulated, $INTERFACE).',
};

export interface VifEpilog {
  hook: string;
  /** Words before the common part (what dom0 must run first, what the guest sees). */
  intro?: string;
  /** Keys of the by-hand example after `online`. */
  example?: string;
  /** Variables the vif-post.d hooks get besides command, dev and XENBUS_PATH. */
  hookVars: string;
  /** Files of this hook's own, after the state directory. */
  stateNote?: string;
}

export function vifEpilog(e: VifEpilog): string {
  return `${e.intro ? `\n${e.intro.trim()}\n` : ''}
Environment (set by libxl or udev): vif, XENBUS_PATH (backend/vif/<domid>/<devid>), INTERFACE (tap).
By hand:  vif=vif1.0 XENBUS_PATH=backend/vif/1/0 ${e.hook} online ${e.example ? `${e.example} ` : ''}--dry-run

Reports: hotplug-status=connected on success (online); on failure hotplug-error=<message>,
hotplug-status=error and exit 1, with everything this run changed rolled back.
Afterwards runs the executable *.hook in /etc/xen/scripts/vif-post.d (XEN_NETHOOKS_HOOK_DIR) with
command, dev, ${e.hookVars}, XENBUS_PATH set, as the originals did.
Files: /etc/xen/nethooks.conf (XEN_NETHOOKS_CONF), /var/log/xen/xen-hotplug.log (XEN_NETHOOKS_LOG),
/run/xen-nethooks/ (XEN_NETHOOKS_STATE_DIR${e.stateNote ? `; ${e.stateNote}` : ''}),
lock /var/run/xen-hotplug/iptables (XEN_NETHOOKS_LOCK_DIR).
xenstore: over xenstored's socket (XENSTORED_PATH), else the xenstore-* clients; XEN_NETHOOKS_XENSTORE=cli
forces the clients.
By hand, any time:  ${e.hook} status [--json];  ${e.hook} repair [--dry-run]
Exit status: 0 done (offline/remove: always, as libxl ignores their errors), 1 failed, 2 bad arguments,
3 (status, repair) a guard is incomplete or cannot be checked.
`;
}
