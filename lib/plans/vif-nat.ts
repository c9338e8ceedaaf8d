/**
 * vif-nat (SPEC §5) as pure functions: one guest routed (vif-route's steps, with a router address
 * of its own on the vif) and told to network-nat's dnsmasq through a hosts-dir file.
 *
 * Unlike the original: there is no daemon restart per guest; offline removes the address and
 * route too.
 */
import {
  hostEntry,
  hostEntryPath,
  reloadHosts,
  removeHostEntry,
  writeHostEntry,
  type DnsmasqFiles,
} from '../dhcp/dnsmasq.ts';
import type { HostState } from '../net/host.ts';
import { dom0Clash } from '../net/guest-address.ts';
import { ipFamily, parsePrefix } from '../net/ip.ts';
import { intToIpv4, ipv4InNet, ipv4ToInt, parseIpv4Net } from '../net/ipv4.ts';
import type { XtablesGuard } from '../firewall/xtables-nft.ts';
import { PlanError, reversePlan, step, type Plan, type Step } from '../plan.ts';
import { IP_FORWARD } from './routing.ts';
import { resolveVifName, type TypeIf, type VifCommand } from './vif.ts';
import { routedVifSteps, routeMetric, type RoutedVif } from './vif-route.ts';


export interface NatAddressing {
  /** The guest's address, and the prefix length it is handed with. */
  guest: string;
  prefix: number;
  /** dom0's end on the vif: the guest's address + 127 in the last octet. */
  router: string;
}

/** Xen's highest domain id a guest can have (DOMID_FIRST_RESERVED - 1). */
export const MAX_DOMID = 0x7ff0 - 1;
/** The highest handle (devid) whose default address, .<handle+1>, leaves room for its router at +127 ≤ .254. */
export const MAX_NAT_HANDLE = 126;

/**
 * SPEC §5: 10.<domid/256>.<domid%256>.<handle+1>/16 by default, else the guest's `ip` (one IPv4
 * address; a prefix, default /16, is the netmask it is handed); the router is +127.
 */
export function natAddressing(ip: readonly string[], domid: number, handle: number): NatAddressing {
  let guest: string;
  let prefix = 16;
  if (ip.length === 0) {
    // vif-nat.ts refuses these values by their xenstore key; this keeps the planner from making
    // an address like 10.256.0.1 or 10.0.1.201 (router .328) whoever calls it.
    if (!Number.isInteger(domid) || domid < 0 || domid > MAX_DOMID) throw new PlanError(`domid ${domid}: expected a domain id 0-${MAX_DOMID} to form the guest's address 10.<domid/256>.<domid%256>.<handle+1>`);
    if (!Number.isInteger(handle) || handle < 0 || handle > MAX_NAT_HANDLE) {
      throw new PlanError(`handle ${handle}: the default guest address 10.x.y.<handle+1> needs a handle 0-${MAX_NAT_HANDLE} (its router is +127, at most .254); set ip= for this vif`);
    }
    guest = `10.${Math.floor(domid / 256)}.${domid % 256}.${handle + 1}`;
  } else {
    if (ip.length > 1 || ipFamily(ip[0] as string) !== 4) {
      throw new PlanError(`vif-nat takes one IPv4 address in ip, got "${ip.join(' ')}": NAT guests are IPv4 only`);
    }
    const p = parsePrefix(ip[0] as string);
    guest = p.text;
    if (p.prefix !== undefined) prefix = p.prefix;
  }
  const last = ipv4ToInt(guest) & 255;
  if (last + 127 > 254) {
    throw new PlanError(`guest address ${guest}: its router would be ${guest.replace(/\d+$/, String(last + 127))}, past .254; vif-nat puts the router 127 above the guest, so use a last octet of 127 or less`);
  }
  return { guest, prefix, router: intToIpv4(ipv4ToInt(guest) + 127) };
}

/** The original's host names: dom<domid> for the first vif, dom<domid>-<handle+1> for others. */
export function natHostname(domid: number, handle: number): string {
  return handle === 0 ? `dom${domid}` : `dom${domid}-${handle + 1}`;
}

export interface VifNatRequest {
  command: VifCommand;
  typeIf: TypeIf;
  dev: string;
  ip: string[];
  mac?: string | undefined;
  vifname?: string | undefined;
  mtu?: number | undefined;
  antispoof: boolean;
  /** undefined: use DHCP when network-nat runs dnsmasq here. */
  dhcp?: boolean | undefined;
  domid: number;
  handle: number;
}

/** What vif-nat knows about network-nat here. */
export interface NatNetwork {
  subnet: string;
  /** dnsmasq's files, when network-nat started it. */
  dhcp: DnsmasqFiles | null;
}

export interface VifNatObserved {
  host: HostState;
  proxyArpWas: string | undefined;
  ipForward: string | undefined;
  network: NatNetwork | undefined;
  /** The running dnsmasq's pid (findDnsmasq), told to forget a removed host. */
  dnsmasqPid: number | undefined;
}

export interface NatVif extends RoutedVif {
  dhcp?: { file: string; entry: string } | undefined;
}

function dhcpStep(v: NatVif, dnsmasqPid: number | undefined): Step[] {
  if (!v.dhcp) return [];
  const { file, entry } = v.dhcp;
  return [step('dhcp-host', `tell dnsmasq: ${entry.trim()}`, [writeHostEntry(file, entry)],
    [removeHostEntry(file), ...(dnsmasqPid !== undefined ? [reloadHosts(dnsmasqPid)] : [])])];
}

export function natVifSteps(v: NatVif, dnsmasqPid: number | undefined, seen?: XtablesGuard): Step[] {
  return [...routedVifSteps(v, seen), ...dhcpStep(v, dnsmasqPid)];
}

function wantsDhcp(req: VifNatRequest, network: NatNetwork | undefined): DnsmasqFiles | undefined {
  if (req.dhcp === false) return undefined;
  const files = network?.dhcp ?? undefined;
  if (req.dhcp === true && !files) {
    throw new PlanError('dhcp=yes, but no DHCP server runs here: run network-nat start dhcp=yes first, or set dhcp=no');
  }
  return files;
}

/**
 * online (vif) / add (tap). The plan does not report to xenstore: the vif hook shell adds that
 * step last (vif-hotplug.ts, with `mtu`).
 */
export function planVifNatOnline(req: VifNatRequest, obs: VifNatObserved) {
  const { host, network } = obs;
  const addr = natAddressing(req.ip, req.domid, req.handle);
  const { dev, rename, link } = resolveVifName(req, host);
  const given = req.ip.length ? `ip=${req.ip[0]}` : `the default guest address (frontend-id ${req.domid}, handle ${req.handle})`;
  for (const [what, a] of [['guest', addr.guest], ['router', addr.router]] as const) {
    const clash = dom0Clash(host, parsePrefix(a), [req.dev, dev]);
    if (clash) throw new PlanError(`${given}: the ${what} address ${clash}; choose another ip for this vif`);
  }
  const warnings: string[] = [];
  if (obs.ipForward !== '1') warnings.push(`${IP_FORWARD} is ${obs.ipForward ?? 'unset'}: the guest reaches dom0 only; run network-nat start`);
  if (network && !ipv4InNet(addr.guest, parseIpv4Net(network.subnet))) {
    warnings.push(`guest address ${addr.guest} is outside network-nat's subnet ${network.subnet}: it is not masqueraded${network.dhcp ? ' and dnsmasq does not serve it' : ''}`);
  }
  const files = wantsDhcp(req, network);
  let dhcp: NatVif['dhcp'];
  if (files) {
    if (!req.mac) throw new PlanError('DHCP needs the guest\'s MAC (xenstore mac, or mac=); set dhcp=no to configure the guest by hand');
    if (!dev.startsWith('vif')) warnings.push(`${dev} does not match dnsmasq's --interface=vif*: the guest gets no DHCP answer (drop vifname=, or set dhcp=no)`);
    if (obs.dnsmasqPid === undefined) warnings.push('network-nat\'s dnsmasq is not running: the guest gets no DHCP answer until it is started again');
    dhcp = { file: hostEntryPath(files, req.dev), entry: hostEntry(req.mac, addr.guest, natHostname(req.domid, req.handle)) };
  }
  const layout: NatVif = {
    kernelName: req.dev,
    dev,
    rename,
    mtu: req.mtu !== undefined && req.mtu !== link.mtu ? { want: req.mtu, was: link.mtu } : undefined,
    local: addr.router,
    proxyArpWas: obs.proxyArpWas,
    routes: [{ family: 4, dst: addr.guest, src: addr.router, metric: routeMetric(req.typeIf) }],
    ndpProxies: [],
    // NAT guests are IPv4 only: all IPv6 from them is dropped.
    guard: req.antispoof ? { dev, ipv4: [addr.guest], ipv6: [], dhcp: dhcp !== undefined } : undefined,
    dhcp,
  };
  const mtu = req.mtu ?? link.mtu;
  return { layout, addressing: addr, plan: { steps: natVifSteps(layout, obs.dnsmasqPid) } as Plan, warnings, mtu };
}

/** `seen`: the source guard as nft listed it (xtables-nft.ts). */
export function planVifNatOffline(v: NatVif, dnsmasqPid: number | undefined, seen?: XtablesGuard): Plan {
  return reversePlan(natVifSteps(v, dnsmasqPid, seen));
}

/** Offline without a record: the hosts-dir file is found by the device name too. */
export function blindDhcpCleanup(files: DnsmasqFiles, kernelName: string, dnsmasqPid: number | undefined): Step {
  return step('dhcp-host', `forget ${kernelName}'s DHCP host`,
    [removeHostEntry(hostEntryPath(files, kernelName)), ...(dnsmasqPid !== undefined ? [reloadHosts(dnsmasqPid)] : [])], []);
}
