/**
 * Which addresses may be a guest's (`ip`): what the guard lets it send from and, with vif-route
 * and vif-nat, what dom0 routes to it. A value that parses but cannot be meant is refused here,
 * because accepted it silently widens the guard (`0.0.0.0/0` lets the guest send from anything)
 * or takes dom0's own traffic (a default route through the guest, dom0's gateway on a vif).
 */
import type { HostState } from './host.ts';
import { formatAddress, formatPrefix, hostBitsSet, lengthOf, overlaps, parsePrefix, type Family, type IpPrefix } from './ip.ts';

/**
 * The shortest prefix a guest may be given. IPv4 /8: the largest block ever assigned to one
 * network (a legacy class A); anything shorter spans several registries' space. IPv6 /16: RIRs
 * get /12s from IANA and the largest allocations to single organisations are around /19-/20, so
 * no guest, even a guest that is itself a router, is handed anything near /16; shorter prefixes
 * (::/0, 2000::/3) only ever come from a typo or from meaning "anything".
 */
export const PREFIX_FLOOR: Readonly<Record<Family, number>> = { 4: 8, 6: 16 };

/** Addresses no guest can own: as a source they are spoofing, as a route they take dom0's. */
const RESERVED: readonly { net: IpPrefix; what: string }[] = [
  ['0.0.0.0/8', 'the unspecified/"this network" range (0.0.0.0/8)'],
  ['127.0.0.0/8', 'loopback (127.0.0.0/8)'],
  ['224.0.0.0/4', 'multicast (224.0.0.0/4)'],
  ['255.255.255.255/32', 'the broadcast address'],
  ['::/128', 'the unspecified address (::)'],
  ['::1/128', 'loopback (::1)'],
  ['ff00::/8', 'multicast (ff00::/8)'],
].map(([net, what]) => ({ net: parsePrefix(net as string), what: what as string }));

export interface GuestAddressRules {
  /**
   * The prefix is the netmask the guest is handed (vif-nat), not a range of its addresses: host
   * bits are expected there.
   */
  prefixIsNetmask?: boolean;
}

/** Why `p` cannot be a guest's address, or undefined if it can. */
export function guestAddressProblem(p: IpPrefix, rules: GuestAddressRules = {}): string | undefined {
  const shown = formatPrefix(p);
  const floor = PREFIX_FLOOR[p.family];
  if (lengthOf(p) < floor) {
    return `${shown}: a /${lengthOf(p)} is shorter than /${floor}, the shortest IPv${p.family} prefix a guest may have (it would let the guest use ${p.prefix === 0 ? 'any address' : 'a vast range'})`;
  }
  if (!rules.prefixIsNetmask && hostBitsSet(p)) {
    const masked = p.bytes.map((b, i) => b & ((0xff << (8 - Math.max(0, Math.min(8, lengthOf(p) - i * 8)))) & 0xff));
    const net = `${formatAddress(p.family, masked)}/${lengthOf(p)}`;
    return `${shown} has host bits set: write the address alone (${p.text}) or the network (${net})`;
  }
  const hit = RESERVED.find((r) => overlaps(r.net, p));
  if (hit) return `${shown} is or includes ${hit.what}, which no guest can own`;
  return undefined;
}

/** An address as ip -j printed it; one the strict parser would refuse is not ours to judge. */
function kernelAddress(text: string): IpPrefix | undefined {
  try {
    return parsePrefix(text);
  } catch {
    return undefined;
  }
}

/**
 * dom0's own addresses and the gateways of its routes: none may be a guest's address or in its
 * range (vif-route, vif-nat). Addresses on the vif itself (an online run again) are its own.
 */
export function dom0Clash(host: HostState, guest: IpPrefix, exceptDevs: readonly string[]): string | undefined {
  for (const l of host.links) {
    if (exceptDevs.includes(l.ifname)) continue;
    for (const a of l.addr_info ?? []) {
      if (a.family !== 'inet' && a.family !== 'inet6') continue;
      const mine = kernelAddress(a.local);
      if (mine && overlaps(mine, guest)) return `${formatPrefix(guest)} ${lengthOf(guest) === lengthOf(mine) ? 'is' : 'includes'} dom0's own address ${mine.text} (on ${l.ifname})`;
    }
  }
  for (const r of [...host.routes4, ...host.routes6]) {
    for (const hop of [r, ...(r.nexthops ?? [])]) {
      if (!hop.gateway || (hop.dev && exceptDevs.includes(hop.dev))) continue;
      const gw = kernelAddress(hop.gateway);
      if (gw && overlaps(gw, guest)) return `${formatPrefix(guest)} ${lengthOf(guest) === lengthOf(gw) ? 'is' : 'includes'} dom0's gateway ${gw.text} (route ${r.dst}${hop.dev ? ` dev ${hop.dev}` : ''})`;
    }
  }
  return undefined;
}
