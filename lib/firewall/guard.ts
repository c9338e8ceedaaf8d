/**
 * What the firewall must enforce for one guest interface, as data. The backends (iptables.ts with
 * ebtables.ts, nft.ts) render it to one restore script per tool; removal is by the per-vif chain
 * name alone, so offline never needs xenstore (which may have changed or be gone by then).
 */
import { ipFamily } from '../net/ip.ts';

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
  /** Keep the guest's traffic out of dom0's conntrack table. */
  notrack: boolean;
}

export type FirewallBackend = 'iptables' | 'nft' | 'none';

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
