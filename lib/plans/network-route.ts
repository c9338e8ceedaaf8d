/**
 * network-route (SPEC §4) as pure functions: start makes dom0 a router for its guests (ip_forward,
 * proxy ARP on the uplink, IPv6 forwarding and proxy NDP when dom0 has global IPv6); stop puts
 * back the settings start found (shared-settings.ts), where the original leaves them.
 */
import { devSysctl } from '../net/sysctl.ts';
import type { HostState } from '../net/host.ts';
import type { Plan, Step } from '../plan.ts';
import { IP_FORWARD, IPV6_FORWARDING, requireUplink, resolveUplink, sysctlStep } from './routing.ts';
import type { StartRecord } from './shared-settings.ts';

export interface NetworkRouteRequest {
  netdev?: string | undefined;
  vifnum?: number | undefined;
}

export interface NetworkRouteObserved {
  host: HostState;
  /** Current values of networkRouteSysctls(netdev). */
  sysctls: Readonly<Record<string, string | undefined>>;
}


export function networkRouteSysctls(netdev: string): string[] {
  return [IP_FORWARD, IPV6_FORWARDING, devSysctl(4, netdev, 'proxy_arp'), devSysctl(6, netdev, 'proxy_ndp'), devSysctl(6, netdev, 'accept_ra')];
}

/** dom0 has a global IPv6 address somewhere, so routing IPv6 to guests can be of use. */
export function hasGlobalIpv6(host: HostState): boolean {
  return host.links.some((l) => l.ifname !== 'lo' && (l.addr_info ?? []).some((a) => a.family === 'inet6' && a.scope === 'global'));
}


export interface RouteRecord extends StartRecord {
  version: 1;
  netdev: string;
  ipv6: boolean;
}

export function planNetworkRouteStart(req: NetworkRouteRequest, obs: NetworkRouteObserved): { netdev: string; ipv6: boolean; plan: Plan } {
  const netdev = resolveUplink(req, obs.host);
  requireUplink(obs.host, netdev);
  const v = obs.sysctls;
  const steps: Step[] = [sysctlStep(IP_FORWARD, '1', v[IP_FORWARD], true)];
  steps.push(sysctlStep(devSysctl(4, netdev, 'proxy_arp'), '1', v[devSysctl(4, netdev, 'proxy_arp')]));
  const ipv6 = hasGlobalIpv6(obs.host) && v[IPV6_FORWARDING] !== undefined;
  if (ipv6) {
    // A router ignores router advertisements at accept_ra=1: dom0 would lose a SLAAC default
    // route on its uplink. 2 keeps accepting them.
    const ra = devSysctl(6, netdev, 'accept_ra');
    if (v[ra] === '1') steps.push(sysctlStep(ra, '2', v[ra]));
    steps.push(sysctlStep(IPV6_FORWARDING, '1', v[IPV6_FORWARDING], true));
    steps.push(sysctlStep(devSysctl(6, netdev, 'proxy_ndp'), '1', v[devSysctl(6, netdev, 'proxy_ndp')]));
  }
  return { netdev, ipv6, plan: { steps } };
}
