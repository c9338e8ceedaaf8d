/**
 * The nft backend: one table in the bridge family holds every vif's guard. Each vif has its own
 * chain, reached through a verdict map keyed by input interface, and its NOTRACK is one element
 * of a set; so a vif goes in as one `nft -f` transaction and comes out as one, by name alone.
 * The forward and input chains sit at priority -200 (the bridge family's `filter`, ebtables'
 * own): br_netfilter hooks in at 0 and, with bridge-nf-call-iptables=1 (its default, and
 * loaded by anything that uses iptables' physdev match), takes IP frames away there and hands
 * them on past its own priority, so a chain at 0 never sees them (seen under real Xen: spoofed
 * IPv4, IPv6 and MACs went through). prerouting at -300 puts the untracked mark on frames
 * before conntrack (at -200 in the IP families) sees them.
 *
 * Note: this cannot override an iptables FORWARD policy of DROP (network-bridge antispoof=yes):
 * a drop in any table is final. Use firewall=iptables there.
 */
import type { Command } from '../exec.ts';
import type { VifGuard } from './guard.ts';

export const NFT_TABLE = 'xen-nethooks';
const T = `bridge ${NFT_TABLE}`;

const chain = (dev: string) => `vif-${dev}`;

/** Idempotent: creates what is missing, and re-lays the dispatch rules in the same transaction. */
function base(): string[] {
  return [
    `add table ${T}`,
    `add set ${T} untracked { type ifname; }`,
    `add map ${T} vifs { type ifname : verdict; }`,
    `add chain ${T} prerouting { type filter hook prerouting priority -300; policy accept; }`,
    `add chain ${T} forward { type filter hook forward priority -200; policy accept; }`,
    `add chain ${T} input { type filter hook input priority -200; policy accept; }`,
    `flush chain ${T} prerouting`,
    `add rule ${T} prerouting iifname @untracked notrack`,
    `flush chain ${T} forward`,
    `add rule ${T} forward iifname vmap @vifs`,
    `flush chain ${T} input`,
    `add rule ${T} input iifname vmap @vifs`,
  ];
}

function set(items: readonly string[]): string {
  return `{ ${items.join(', ')} }`;
}

function rules(g: VifGuard): string[] {
  const r = (expr: string) => `add rule ${T} ${chain(g.dev)} ${expr}`;
  const out: string[] = [];
  if (g.l2 === false) return out; // antispoof=no: the chain stays, empty (NOTRACK still applies)
  if (g.mac) {
    out.push(r(`ether saddr != ${g.mac} drop`));
    out.push(r(`arp saddr ether != ${g.mac} drop`));
  }
  out.push(r('ip protocol udp udp sport 67 drop'));
  out.push(r('icmpv6 type { nd-router-advert, nd-redirect } drop'));
  out.push(r('ip6 nexthdr udp udp sport 547 drop'));
  if (!g.antispoof) return out;
  out.push(r('ip saddr 0.0.0.0 udp sport 68 udp dport 67 return'));
  if (g.ipv4.length) {
    out.push(r(`ip saddr ${set(g.ipv4)} return`));
    out.push(r(`arp saddr ip ${set([...g.ipv4, '0.0.0.0'])} return`));
  } else {
    out.push(r('arp saddr ip 0.0.0.0 return'));
  }
  out.push(r(`ip6 saddr ${set([...g.ipv6, 'fe80::/10', '::'])} return`));
  out.push(r('drop'));
  return out;
}

export function nftApply(g: VifGuard): Command {
  const c = chain(g.dev);
  const script = [
    ...base(),
    `add chain ${T} ${c}`,
    `flush chain ${T} ${c}`,
    ...rules(g),
    `add element ${T} vifs { "${g.dev}" : jump ${c} }`,
    ...(g.notrack ? [`add element ${T} untracked { "${g.dev}" }`] : []),
    '',
  ].join('\n');
  return { argv: ['nft', '-f', '-'], input: script };
}

/** One transaction; if a piece is already gone the transaction fails whole, so retry per piece. */
export function nftRemove(dev: string, notrack: boolean): Command {
  const c = chain(dev);
  const lines = [
    `delete element ${T} vifs { "${dev}" }`,
    ...(notrack ? [`delete element ${T} untracked { "${dev}" }`] : []),
    `flush chain ${T} ${c}`,
    `delete chain ${T} ${c}`,
  ];
  return {
    argv: ['nft', '-f', '-'],
    input: lines.join('\n') + '\n',
    fallback: {
      when: [''],
      commands: lines.map((l) => ({ argv: ['nft', '-f', '-'], input: `${l}\n`, tolerate: [''] })),
    },
  };
}
