/**
 * Antispoofing for the routed layouts (vif-route, vif-nat): what arrives on a guest's interface
 * must come from the guest's own addresses. The originals reused vif-bridge's
 * `--physdev-is-bridged` rules, which never match routed traffic, so nothing was filtered.
 *
 * One chain per vif in the raw table, jumped to from PREROUTING for `-i <vif>`, in iptables and
 * ip6tables. PREROUTING, because a spoofed packet to dom0 itself never reaches FORWARD; raw,
 * because it runs before conntrack, so a dropped packet leaves no connection entry behind. The
 * chain RETURNs what the guest may send and DROPs the rest; everything else in raw PREROUTING
 * is left alone. Removal is by chain name, so offline needs nothing but the device name.
 */
import type { Command } from '../exec.ts';
import { chainName, tag } from './guard.ts';
import { removeInOneGo, restoreCmd } from './iptables.ts';
import { observeXtablesGuard, type XtablesGuard } from './xtables-nft.ts';

export interface SourceGuard {
  /** The guest's interface as named once online. */
  dev: string;
  /** Source addresses or prefixes the guest may use. */
  ipv4: string[];
  ipv6: string[];
  /** Let DHCP discovery from 0.0.0.0 through (vif-nat with DHCP). */
  dhcp: boolean;
}

function jump(dev: string, op: '-I' | '-D'): string {
  return `${op} PREROUTING${op === '-I' ? ' 1' : ''} -i ${dev} -m comment --comment ${tag(dev)} -j ${chainName(dev)}`;
}

/** The chain's rules for one family, in order. */
export function guardRules(family: 4 | 6, g: SourceGuard): string[] {
  const c = chainName(g.dev);
  const ret = (spec: string) => `-A ${c} ${spec} -j RETURN`;
  const out: string[] = [];
  if (family === 4) {
    out.push(...g.ipv4.map((a) => ret(`-s ${a}`)));
    if (g.dhcp) out.push(ret('-s 0.0.0.0/32 -p udp --sport 68 --dport 67'));
  } else if (g.ipv6.length > 0) {
    // A guest is never dom0's router.
    out.push(`-A ${c} -p ipv6-icmp --icmpv6-type router-advertisement -j DROP`);
    out.push(`-A ${c} -p ipv6-icmp --icmpv6-type redirect -j DROP`);
    out.push(...g.ipv6.map((a) => ret(`-s ${a}`)));
    // Neighbour discovery from its link-local address, duplicate address detection from ::.
    out.push(ret('-s fe80::/10'));
    out.push(ret('-s ::/128 -p ipv6-icmp'));
  }
  // A guest without addresses of a family may send nothing of that family (as Qubes does).
  out.push(`-A ${c} -j DROP`);
  return out;
}

export function guardApply(family: 4 | 6, g: SourceGuard): Command {
  return restoreCmd(family, ['*raw', `:${chainName(g.dev)} - [0:0]`, ...guardRules(family, g), jump(g.dev, '-I'), 'COMMIT', ''].join('\n'));
}

export function guardRemove(family: 4 | 6, dev: string): Command {
  const c = chainName(dev);
  return removeInOneGo(family, 'raw', [jump(dev, '-D'), `-F ${c}`, `-X ${c}`]);
}

export function describeSourceGuard(g: SourceGuard): string {
  const all = [...g.ipv4, ...g.ipv6];
  return `only sources ${all.join(' ') || '(none)'}${g.dhcp ? ' and DHCP discovery' : ''} from ${g.dev}`;
}

/** The guard of `dev` as nft lists it (xtables-nft.ts), so that offline takes it out in one transaction. */
export function observeSourceGuard(env: NodeJS.ProcessEnv, dev: string): Promise<XtablesGuard | undefined> {
  return observeXtablesGuard(env, chainName(dev), ['iptables', 'ip6tables']);
}
