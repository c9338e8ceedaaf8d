/** One read of the host's network state, the input every planner works from. Read-only. */
import { runJson } from '../exec.ts';
import type { Link } from './link.ts';
import { sysfsLinks } from './sysfs.ts';
import { isKernelRoute, type Family, type Route } from './route.ts';

export interface HostState {
  links: Link[];
  routes4: Route[];
  routes6: Route[];
}

export async function observeHost(): Promise<HostState> {
  const [links, routes4, routes6] = await Promise.all([
    runJson<Link[]>({ argv: ['ip', '-j', '-d', 'addr', 'show'] }),
    runJson<Route[]>({ argv: ['ip', '-j', '-4', 'route', 'show', 'table', 'all'] }),
    runJson<Route[]>({ argv: ['ip', '-j', '-6', 'route', 'show', 'table', 'all'] }),
  ]);
  return { links: links ?? [], routes4: routes4 ?? [], routes6: routes6 ?? [] };
}

/**
 * Links and their addresses only, in one process: for planners that never look at routes (a vif
 * hook runs once per guest interface, so every process it spares counts).
 */
export async function observeLinks(): Promise<HostState> {
  const links = await runJson<Link[]>({ argv: ['ip', '-j', '-d', 'addr', 'show'] });
  return { links: links ?? [], routes4: [], routes6: [] };
}

/**
 * The named devices and every bridge, from sysfs without a process when it shows our namespace,
 * else from ip: what vif-bridge plans from (it needs no addresses and no routes).
 */
export async function observeDevices(names: readonly string[]): Promise<HostState> {
  const links = sysfsLinks(names);
  if (links) return { links, routes4: [], routes6: [] };
  return observeLinks();
}

export function findLink(host: HostState, name: string): Link | undefined {
  return host.links.find((l) => l.ifname === name);
}

/** The device of the IPv4 default route in the main table with the lowest metric. */
export function defaultRouteDevice(host: HostState): string | undefined {
  const defaults = host.routes4
    .filter((r) => r.dst === 'default' && (r.table === undefined || r.table === 'main') && r.dev && (r.type ?? 'unicast') === 'unicast')
    .sort((a, b) => (a.metric ?? 0) - (b.metric ?? 0));
  return defaults[0]?.dev;
}

/**
 * Routes through `dev` that an operator or a DHCP client made (not kernel-made), in order;
 * multipath routes count when one of their hops goes through `dev`.
 */
export function userRoutes(host: HostState, dev: string, family: Family): Route[] {
  return (family === 4 ? host.routes4 : host.routes6).filter(
    (r) => !isKernelRoute(r) && (r.dev === dev || (r.nexthops ?? []).some((n) => n.dev === dev)),
  );
}

export function portsOf(host: HostState, bridge: string): Link[] {
  return host.links.filter((l) => l.master === bridge);
}

export function vlansOn(host: HostState, dev: string): Link[] {
  return host.links.filter((l) => l.linkinfo?.info_kind === 'vlan' && l.link === dev);
}

/**
 * Every VLAN device stacked on `dev`: its VLANs, their VLANs (802.1ad + 802.1Q, "QinQ") and so on,
 * each after the one it sits on. Deleting a VLAN device deletes the ones on it too.
 */
export function vlansUnder(host: HostState, dev: string): Link[] {
  const out: Link[] = [];
  const queue = [dev];
  for (let d = queue.shift(); d !== undefined; d = queue.shift()) {
    for (const v of vlansOn(host, d)) {
      if (v.ifname === dev || out.includes(v)) continue;
      out.push(v);
      queue.push(v.ifname);
    }
  }
  return out;
}
