/**
 * What the firewall must enforce for one guest interface, as data. The backends (iptables.ts with
 * ebtables.ts, nft.ts) render it to one restore script per tool; removal is by the per-vif chain
 * name alone, so offline never needs xenstore (which may have changed or be gone by then).
 */
import { ipFamily } from '../net/ip.ts';
import { eui64LinkLocal } from './nd-addresses.ts';

export interface VifGuard {
  /** The port device as it is named once online (after a vifname rename). */
  dev: string;
  /** The guest's MAC (xenstore `mac`); frames from any other source MAC are dropped. */
  mac?: string | undefined;
  ipv4: string[];
  ipv6: string[];
  /** Enforce source addresses (else only MAC checks, for a guest without `ip`). */
  antispoof: boolean;
  /**
   * false with antispoof=no: no layer-2 filtering at all, not even the DHCP-server and
   * router-advertisement drops (a guest that is the router or DHCP server of the others).
   * Undefined counts as true.
   */
  l2?: boolean | undefined;
  /**
   * Keep the guest's traffic that is bridged through out of dom0's conntrack table (never what
   * goes up to dom0: routed, NATed, for dom0 itself; nft.ts). Always in nft's bridge table.
   */
  notrack: boolean;
  /**
   * firewall=iptables only: also put the checks ebtables cannot express (a neighbour
   * advertisement's target, fragmented ICMPv6), and NOTRACK, in nft's bridge table (nft.ts,
   * `nftCompanionApply`). Set where `nft` is installed.
   */
  companion?: boolean | undefined;
  /** Policy `trunk` (cli/policy.ts): 802.1Q VLAN ids whose tagged frames pass (see below). */
  vlans?: number[] | undefined;
  /** Policy `ethertypes`: other ethertypes that pass, e.g. 0x88a2 (AoE). */
  ethertypes?: number[] | undefined;
  /** Policy `serve`: the DHCP (v4) or DHCPv6 server-reply drops, or the RA drop, left out. */
  serve?: ('dhcp' | 'dhcpv6' | 'ra')[] | undefined;
}

/*
 * Tagged frames (802.1Q, 802.1ad; one tag or two): every check reads the headers of an untagged
 * frame, and a tag moves them, so each backend drops every tagged frame from a guest (its
 * `tagged` rules). A trunk policy (`vlans`) lets single 802.1Q tags with those ids through after
 * the source MAC check. nft then checks what the tag carries as it checks an untagged frame
 * (`vlan type` rules: ARP shape and MAC, servers, routers, fragments, with ip= its sources, so
 * a trunk guest's VLAN addresses belong in ip=), and drops a second tag. ebtables cannot: its IP
 * and ARP matches stop at a tag, and its vlan match reads the outer tag only; so with
 * firewall=iptables only the outer source MAC holds inside an allowed tag.
 */

/**
 * The link-local addresses a guest may send from and name as a neighbour advertisement's target,
 * besides those listed in ip=: the one its kernel forms from its MAC (EUI-64). A guest that uses
 * another (stable-privacy addresses, RFC 7217) must list it in ip=. Without a MAC there is no
 * telling which is its own: any link-local address.
 */
export function ownLinkLocals(g: Pick<VifGuard, 'mac'>): string[] {
  return g.mac ? [eui64LinkLocal(g.mac)] : ['fe80::/10'];
}

/** The guest's own IPv6 addresses and prefixes: its ip= entries and its link-local address. */
export function ownIPv6(g: Pick<VifGuard, 'mac' | 'ipv6'>): string[] {
  return [...g.ipv6, ...ownLinkLocals(g).filter((a) => !g.ipv6.includes(a))];
}

export const FIREWALL_BACKENDS = ['iptables', 'nft', 'none'] as const;
export type FirewallBackend = (typeof FIREWALL_BACKENDS)[number];

export function splitAddresses(ips: readonly string[]): { ipv4: string[]; ipv6: string[] } {
  return {
    ipv4: ips.filter((a) => ipFamily(a) === 4),
    ipv6: ips.filter((a) => ipFamily(a) === 6),
  };
}

/** Chain names carry the device name, so that rules are found again by it (≤ 15 + 4 bytes). */
export function chainName(dev: string): string {
  return `XNH-${dev}`;
}

export function tag(dev: string): string {
  return `xen-nethooks:vif:${dev}`;
}
