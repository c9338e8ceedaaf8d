/**
 * What dom0 as a router needs, shared by the routed hooks (network-route, network-nat, vif-route,
 * vif-nat): its forwarding sysctls, set so that undo puts back the value found, and its uplink.
 */
import { defaultRouteDevice, findLink, type HostState } from '../net/host.ts';
import { unlessGone, type Link } from '../net/link.ts';
import { writeSysctl } from '../net/sysctl.ts';
import { PlanError, step, type Step } from '../plan.ts';

export const IP_FORWARD = 'net.ipv4.ip_forward';
export const IPV6_FORWARDING = 'net.ipv6.conf.all.forwarding';

/**
 * Sets a sysctl and puts the value found back on undo. `shared` marks a host-wide setting that
 * other starts may hold too (see shared-settings.ts).
 */
export function sysctlStep(key: string, want: string, was: string | undefined, shared = false): Step {
  const before = was ?? want;
  return step(`sysctl:${key}`, `set ${key}=${want} (was ${was ?? 'unset'})`, [writeSysctl(key, want)],
    [unlessGone(writeSysctl(key, before))], shared ? `sysctl:${key}` : undefined);
}

/** The SPEC §4 default: the uplink is the default route's device, else eth<vifnum>. */
export function resolveUplink(req: { netdev?: string | undefined; vifnum?: number | undefined }, host: HostState): string {
  return req.netdev ?? defaultRouteDevice(host) ?? `eth${req.vifnum ?? 0}`;
}

export function requireUplink(host: HostState, netdev: string): Link {
  const link = findLink(host, netdev);
  if (!link) {
    const known = host.links.map((l) => l.ifname).filter((n) => n !== 'lo').join(', ');
    throw new PlanError(`netdev=${netdev}: no such device (devices here: ${known || 'none'}); set netdev= to dom0's uplink`);
  }
  return link;
}
