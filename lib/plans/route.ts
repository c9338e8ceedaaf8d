/**
 * The routed layout (SPEC §4) as pure functions: network-route makes dom0 a router for its
 * guests, vif-route gives each guest's interface dom0's address and host routes to the guest's
 * own addresses, guarded so that the guest can send from nothing else.
 *
 * Unlike the originals, network-route stop puts back the settings start found, vif-route refuses
 * a guest without `ip` (it would silently have no routes), IPv6 is routed too, and offline takes
 * away exactly what online added.
 */
import { isValidIfname } from '../cli/values.ts';
import { dom0Clash } from '../net/guest-address.ts';
import { ipFamily, parsePrefix } from '../net/ip.ts';
import type { Command } from '../exec.ts';
import { chainName } from '../firewall/guard.ts';
import { describeSourceGuard, guardApply, guardRemove, type SourceGuard } from '../firewall/source-guard.ts';
import { guardRemoval, type XtablesGuard } from '../firewall/xtables-nft.ts';
import { defaultRouteDevice, findLink, type HostState } from '../net/host.ts';
import { linkCmd, type Link } from '../net/link.ts';
import { devSysctl, writeSysctl } from '../net/sysctl.ts';
import { PlanError, reversePlan, step, type Plan, type Step } from '../plan.ts';
import type { StartRecord } from './shared-steps.ts';
import { targetName, type TypeIf, type VifCommand } from './vif-bridge.ts';

export const IP_FORWARD = 'net.ipv4.ip_forward';
export const IPV6_FORWARDING = 'net.ipv6.conf.all.forwarding';
/** RFC 8200 §5: below this the kernel removes a device's IPv6 addresses and turns IPv6 off there. */
export const IPV6_MIN_MTU = 1280;

/** A device that libxl or netback removed meanwhile: nothing left to take back on it. */
const GONE = ['Cannot find device', 'No such device', 'No such file or directory'];

const tolerant = (cmd: Command, more: readonly string[] = []): Command => ({ ...cmd, tolerate: [...GONE, ...more] });

/**
 * Sets a sysctl and puts the value found back on undo. `shared` marks a host-wide setting that
 * other starts may hold too (see shared-steps.ts).
 */
export function sysctlStep(key: string, want: string, was: string | undefined, shared = false): Step {
  const before = was ?? want;
  return step(`sysctl:${key}`, `set ${key}=${want} (was ${was ?? 'unset'})`, [writeSysctl(key, want)],
    [tolerant(writeSysctl(key, before))], shared ? `sysctl:${key}` : undefined);
}

// ---------------------------------------------------------------------------------------------
// network-route

export interface NetworkRouteRequest {
  netdev?: string | undefined;
  vifnum?: number | undefined;
}

export interface NetworkRouteObserved {
  host: HostState;
  /** Current values of networkRouteSysctls(netdev). */
  sysctls: Readonly<Record<string, string | undefined>>;
}

/** The SPEC §4 default: the uplink is the default route's device, else eth<vifnum>. */
export function resolveUplink(req: NetworkRouteRequest, host: HostState): string {
  return req.netdev ?? defaultRouteDevice(host) ?? `eth${req.vifnum ?? 0}`;
}

export function networkRouteSysctls(netdev: string): string[] {
  return [IP_FORWARD, IPV6_FORWARDING, devSysctl(4, netdev, 'proxy_arp'), devSysctl(6, netdev, 'proxy_ndp'), devSysctl(6, netdev, 'accept_ra')];
}

/** dom0 has a global IPv6 address somewhere, so routing IPv6 to guests can be of use. */
export function hasGlobalIpv6(host: HostState): boolean {
  return host.links.some((l) => l.ifname !== 'lo' && (l.addr_info ?? []).some((a) => a.family === 'inet6' && a.scope === 'global'));
}

export function requireUplink(host: HostState, netdev: string): Link {
  const link = findLink(host, netdev);
  if (!link) {
    const known = host.links.map((l) => l.ifname).filter((n) => n !== 'lo').join(', ');
    throw new PlanError(`netdev=${netdev}: no such device (devices here: ${known || 'none'}); set netdev= to dom0's uplink`);
  }
  return link;
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

// ---------------------------------------------------------------------------------------------
// A guest's interface in a routed layout (vif-route, and vif-nat on top of it)

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
    steps.push(step('rename', `rename ${v.kernelName} to ${dev} (vifname)`,
      [linkCmd.down(v.kernelName), linkCmd.rename(v.kernelName, dev)], [tolerant(linkCmd.rename(dev, v.kernelName))]));
  }
  if (v.guard) {
    const g = v.guard;
    steps.push(step('guard', `guard ${dev}: ${describeSourceGuard(g)}`,
      [guardApply(4, g), guardApply(6, g)], guardRemoval(chainName(dev), seen, [guardRemove(4, dev), guardRemove(6, dev)])));
  }
  if (v.mtu) {
    steps.push(step('mtu', `set ${dev}'s MTU to ${v.mtu.want}`, [linkCmd.mtu(dev, v.mtu.want)], [tolerant(linkCmd.mtu(dev, v.mtu.was))]));
  }
  steps.push(step('address', `give ${dev} dom0's address ${v.local}/32`,
    [{ argv: ['ip', '-4', 'addr', 'add', `${v.local}/32`, 'dev', dev] }],
    [tolerant({ argv: ['ip', '-4', 'addr', 'del', `${v.local}/32`, 'dev', dev] }, ['Cannot assign requested address', 'Address not found'])]));
  steps.push(step('up', `bring ${dev} up`, [linkCmd.up(dev)], [tolerant(linkCmd.down(dev))]));
  const proxyArp = devSysctl(4, dev, 'proxy_arp');
  steps.push(step('proxy-arp', `answer ARP for the rest of the network on ${dev} (proxy_arp)`,
    [writeSysctl(proxyArp, '1')], [tolerant(writeSysctl(proxyArp, v.proxyArpWas ?? '0'))]));
  for (const r of v.routes) {
    const add = ['ip', `-${r.family}`, 'route', 'add', ...routeSelector(r, dev), ...(r.src ? ['src', r.src] : [])];
    steps.push(step(`route:${routeKeyOf(r)}`, `route ${r.dst} to ${dev}`, [{ argv: add }],
      [tolerant({ argv: ['ip', `-${r.family}`, 'route', 'del', ...routeSelector(r, dev)] }, ['No such process'])]));
  }
  for (const p of v.ndpProxies) {
    steps.push(step(`ndp-proxy:${p.addr}`, `answer neighbour solicitations for ${p.addr} on ${p.dev}`,
      [{ argv: ['ip', '-6', 'neigh', 'add', 'proxy', p.addr, 'dev', p.dev], tolerate: ['File exists'] }],
      [tolerant({ argv: ['ip', '-6', 'neigh', 'del', 'proxy', p.addr, 'dev', p.dev] })]));
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
      step('down', `bring ${dev} down`, [tolerant(linkCmd.down(dev))], []),
    ],
  };
}

/** The device's name once online, checked against the host; a rename step is needed when `rename`. */
export function resolveVifName(req: { dev: string; vifname?: string | undefined; typeIf: TypeIf }, host: HostState): { dev: string; rename: boolean; link: Link } {
  const dev = targetName(req);
  if (!isValidIfname(dev)) {
    throw new PlanError(`vifname=${req.vifname}: '${dev}' is not a valid interface name (at most 15 bytes${req.typeIf === 'tap' ? ', -emu included' : ''}, no '/', ':' or spaces)`);
  }
  const link = findLink(host, req.dev);
  if (!link) {
    // online again after a rename: the device already carries its vifname.
    const renamed = dev !== req.dev ? findLink(host, dev) : undefined;
    if (!renamed) throw new PlanError(`device ${req.dev} does not exist (the guest's backend is gone, or vif= names the wrong device)`);
    return { dev, rename: false, link: renamed };
  }
  if (dev !== req.dev && findLink(host, dev)) {
    throw new PlanError(`Cannot rename interface ${req.dev} to ${dev}: a device named ${dev} already exists (vifname= must be unique)`);
  }
  return { dev, rename: dev !== req.dev, link };
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

// ---------------------------------------------------------------------------------------------
// vif-route

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
  mtu: number;
}

/** The original's metrics: an emulated NIC's route wins over the PV vif's while both exist. */
export const routeMetric = (typeIf: TypeIf): number => (typeIf === 'tap' ? 1 : 2);

const isHostAddress = (cidr: string) => !cidr.includes('/') || cidr.endsWith(ipFamily(cidr) === 4 ? '/32' : '/128');
const bare = (cidr: string) => cidr.split('/')[0] ?? cidr;

export function planVifRouteOnline(req: VifRouteRequest, obs: VifRouteObserved, report: (mtu: number) => Command[]): RoutedOnline {
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
  const steps = routedVifSteps(layout);
  const r = report(mtu);
  if (r.length) steps.push(step('report', 'report to xenstore', r, []));
  return { layout, plan: { steps }, warnings, mtu };
}
