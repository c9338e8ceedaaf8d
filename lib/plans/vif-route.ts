/**
 * vif-route (SPEC §4) as pure functions: a guest's interface gets dom0's address and host routes
 * to the guest's own addresses, guarded so that the guest can send from nothing else. The routed
 * vif's steps (routedVifSteps) are vif-nat's too, which adds its DHCP host on top.
 *
 * Unlike the original, vif-route refuses a guest without `ip` (it would silently have no routes),
 * IPv6 is routed too, and offline takes away exactly what online added.
 */
import { dom0Clash } from '../net/guest-address.ts';
import { ipFamily, IPV6_MIN_MTU, parsePrefix } from '../net/ip.ts';
import { chainName } from '../firewall/guard.ts';
import { describeSourceGuard, guardApply, guardRemove, type SourceGuard } from '../firewall/source-guard.ts';
import { guardRemoval, type XtablesGuard } from '../firewall/xtables-nft.ts';
import type { HostState } from '../net/host.ts';
import { linkCmd, unlessGone } from '../net/link.ts';
import { devSysctl, writeSysctl } from '../net/sysctl.ts';
import { PlanError, reversePlan, step, type Plan, type Step } from '../plan.ts';
import { IP_FORWARD, IPV6_FORWARDING, requireUplink } from './routing.ts';
import { renameStep, resolveVifName, type TypeIf, type VifCommand } from './vif.ts';


export interface HostRoute {
  family: 4 | 6;
  dst: string;
  src?: string | undefined;
  metric?: number | undefined;
}

/**
 * Everything online did to one guest interface, as data: online turns it into steps, and
 * offline reverses the same steps, from the copy saved in the state directory.
 */
export interface RoutedVif {
  /** The name libxl gave the device ($vif or $INTERFACE). */
  kernelName: string;
  /** The name once online (vifname). */
  dev: string;
  /** vifname: rename from kernelName to dev. */
  rename: boolean;
  mtu?: { want: number; was: number } | undefined;
  /** dom0's address on the device, as a /32. */
  local: string;
  proxyArpWas: string | undefined;
  routes: HostRoute[];
  /** Guest IPv6 addresses dom0 answers neighbour solicitations for on the uplink. */
  ndpProxies: { addr: string; dev: string }[];
  guard?: SourceGuard | undefined;
}

const routeSelector = (r: HostRoute, dev: string): string[] =>
  [r.dst, 'dev', dev, ...(r.metric !== undefined ? ['metric', String(r.metric)] : [])];

const routeKeyOf = (r: HostRoute) => `${r.family}:${r.dst}`;

/**
 * The online steps, in order: the guard is in place before the device comes up. `seen`: the
 * guard as nft listed it (xtables-nft.ts), for an offline that takes it out in one transaction.
 */
export function routedVifSteps(v: RoutedVif, seen?: XtablesGuard): Step[] {
  const { dev } = v;
  const steps: Step[] = [];
  if (v.rename) {
    steps.push(renameStep(v.kernelName, dev));
  }
  if (v.guard) {
    const g = v.guard;
    steps.push(step('guard', `guard ${dev}: ${describeSourceGuard(g)}`,
      [guardApply(4, g), guardApply(6, g)], guardRemoval(chainName(dev), seen, [guardRemove(4, dev), guardRemove(6, dev)])));
  }
  if (v.mtu) {
    steps.push(step('mtu', `set ${dev}'s MTU to ${v.mtu.want}`, [linkCmd.mtu(dev, v.mtu.want)], [unlessGone(linkCmd.mtu(dev, v.mtu.was))]));
  }
  steps.push(step('address', `give ${dev} dom0's address ${v.local}/32`,
    [{ argv: ['ip', '-4', 'addr', 'add', `${v.local}/32`, 'dev', dev] }],
    [unlessGone({ argv: ['ip', '-4', 'addr', 'del', `${v.local}/32`, 'dev', dev] }, ['Cannot assign requested address', 'Address not found'])]));
  steps.push(step('up', `bring ${dev} up`, [linkCmd.up(dev)], [unlessGone(linkCmd.down(dev))]));
  const proxyArp = devSysctl(4, dev, 'proxy_arp');
  steps.push(step('proxy-arp', `answer ARP for the rest of the network on ${dev} (proxy_arp)`,
    [writeSysctl(proxyArp, '1')], [unlessGone(writeSysctl(proxyArp, v.proxyArpWas ?? '0'))]));
  for (const r of v.routes) {
    const add = ['ip', `-${r.family}`, 'route', 'add', ...routeSelector(r, dev), ...(r.src ? ['src', r.src] : [])];
    steps.push(step(`route:${routeKeyOf(r)}`, `route ${r.dst} to ${dev}`, [{ argv: add }],
      [unlessGone({ argv: ['ip', `-${r.family}`, 'route', 'del', ...routeSelector(r, dev)] }, ['No such process'])]));
  }
  for (const p of v.ndpProxies) {
    steps.push(step(`ndp-proxy:${p.addr}`, `answer neighbour solicitations for ${p.addr} on ${p.dev}`,
      [{ argv: ['ip', '-6', 'neigh', 'add', 'proxy', p.addr, 'dev', p.dev], tolerate: ['File exists'] }],
      [unlessGone({ argv: ['ip', '-6', 'neigh', 'del', 'proxy', p.addr, 'dev', p.dev] })]));
  }
  return steps;
}

/**
 * The routed offline: online's steps reversed. IPv6 proxy entries another online guest
 * interface still needs (an HVM guest's emulated and PV NIC share addresses) stay.
 */
export function planRoutedOffline(v: RoutedVif, stillNeeded: readonly string[] = [], seen?: XtablesGuard): Plan {
  return reversePlan(routedVifSteps({ ...v, ndpProxies: v.ndpProxies.filter((p) => !stillNeeded.includes(p.addr)) }, seen));
}

/** Offline without a record of online (state lost): what the device name alone finds. */
export function planBlindOffline(dev: string, seen?: XtablesGuard): Plan {
  return {
    steps: [
      step('guard', `remove ${dev}'s source guard`, guardRemoval(chainName(dev), seen, [guardRemove(4, dev), guardRemove(6, dev)]), []),
      step('down', `bring ${dev} down`, [unlessGone(linkCmd.down(dev))], []),
    ],
  };
}

/** The address dom0 uses on the guest side: the primary IPv4 of the uplink (SPEC §4). */
export function primaryIpv4(host: HostState, netdev: string): string {
  const link = requireUplink(host, netdev);
  const v4 = (link.addr_info ?? []).filter((a) => a.family === 'inet');
  const primary = v4.find((a) => a.secondary !== true && a.scope === 'global') ?? v4.find((a) => a.secondary !== true);
  if (!primary) {
    throw new PlanError(`${netdev} has no IPv4 address: vif-route gives guests dom0's address on netdev; bring it up or name another interface with netdev=`);
  }
  return primary.local;
}

export interface VifRouteRequest {
  command: VifCommand;
  typeIf: TypeIf;
  dev: string;
  ip: string[];
  vifname?: string | undefined;
  mtu?: number | undefined;
  /** The uplink whose address the vif borrows; resolved by the caller. */
  netdev: string;
  antispoof: boolean;
}

export interface VifRouteObserved {
  host: HostState;
  proxyArpWas: string | undefined;
  ipForward: string | undefined;
  ipv6Forwarding: string | undefined;
  /**
   * dom0 has no IPv6 (net.ipv6.conf.all.disable_ipv6=1, or no IPv6 stack at all: Qubes issue
   * 5110): the guest's IPv6 addresses get no route or NDP proxy (the kernel refuses both), and
   * the guard drops the guest's IPv6 as for a guest without any.
   */
  ipv6Disabled?: boolean;
}

export interface RoutedOnline {
  layout: RoutedVif;
  plan: Plan;
  warnings: string[];
  /** The MTU the frontend is told (the shell's report step). */
  mtu: number;
}

/** The original's metrics: an emulated NIC's route wins over the PV vif's while both exist. */
export const routeMetric = (typeIf: TypeIf): number => (typeIf === 'tap' ? 1 : 2);

const isHostAddress = (cidr: string) => !cidr.includes('/') || cidr.endsWith(ipFamily(cidr) === 4 ? '/32' : '/128');
const bare = (cidr: string) => cidr.split('/')[0] ?? cidr;

/**
 * online (vif) / add (tap). The plan does not report to xenstore: the vif hook shell adds that
 * step last (vif-hotplug.ts, with `mtu`).
 */
export function planVifRouteOnline(req: VifRouteRequest, obs: VifRouteObserved): RoutedOnline {
  if (req.ip.length === 0) {
    throw new PlanError(
      "vif-route needs the guest's addresses in xenstore `ip` (in the domain config: vif = ['ip=192.0.2.10, script=vif-route']): without them dom0 has no route to the guest",
    );
  }
  const { host } = obs;
  const local = primaryIpv4(host, req.netdev);
  const { dev, rename, link } = resolveVifName(req, host);
  for (const a of req.ip) {
    const clash = dom0Clash(host, parsePrefix(a), [req.dev, dev]);
    if (clash) throw new PlanError(`ip=${a}: ${clash}; a guest's addresses must be its own: fix ip in the vif line`);
  }
  const metric = routeMetric(req.typeIf);
  const v4 = req.ip.filter((a) => ipFamily(a) === 4);
  const asked6 = req.ip.filter((a) => ipFamily(a) === 6);
  const v6 = obs.ipv6Disabled ? [] : asked6;
  if (v6.length && req.mtu !== undefined && req.mtu < IPV6_MIN_MTU) {
    throw new PlanError(`mtu=${req.mtu}: below ${IPV6_MIN_MTU}, the kernel turns IPv6 off on ${dev}, and the guest has IPv6 addresses (${v6.join(' ')}): set mtu to ${IPV6_MIN_MTU} or more`);
  }
  const warnings: string[] = [];
  if (obs.ipForward !== '1') warnings.push(`${IP_FORWARD} is ${obs.ipForward ?? 'unset'}: dom0 does not forward for the guest; run network-route start`);
  if (obs.ipv6Disabled && asked6.length) {
    warnings.push(`IPv6 is disabled in dom0: the guest's IPv6 addresses (${asked6.join(' ')}) are not routed, and the guard drops its IPv6; enable IPv6 in dom0 to route them`);
  }
  if (v6.length && obs.ipv6Forwarding !== '1') warnings.push(`${IPV6_FORWARDING} is ${obs.ipv6Forwarding ?? 'unset'}: the guest's IPv6 is not forwarded; network-route start turns it on when dom0 has global IPv6`);
  const layout: RoutedVif = {
    kernelName: req.dev,
    dev,
    rename,
    mtu: req.mtu !== undefined && req.mtu !== link.mtu ? { want: req.mtu, was: link.mtu } : undefined,
    local,
    proxyArpWas: obs.proxyArpWas,
    routes: [
      ...v4.map((dst) => ({ family: 4 as const, dst, src: local, metric })),
      ...v6.map((dst) => ({ family: 6 as const, dst, metric })),
    ],
    ndpProxies: v6.filter(isHostAddress).map((a) => ({ addr: bare(a), dev: req.netdev })),
    guard: req.antispoof ? { dev, ipv4: v4, ipv6: v6, dhcp: false } : undefined,
  };
  const mtu = req.mtu ?? link.mtu;
  return { layout, plan: { steps: routedVifSteps(layout) }, warnings, mtu };
}
