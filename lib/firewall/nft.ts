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
 * NOTRACK is for what the bridge carries *through*, never for what goes up to dom0: traffic dom0
 * routes or NATs for the guest (MASQUERADE needs conntrack) and traffic for dom0 itself (a
 * stateful INPUT policy needs it). The bridge tells them apart before this hook: a frame to the
 * bridge device's own MAC is marked PACKET_HOST (br_handle_frame, before the bridge family's
 * prerouting), a unicast frame to anyone else stays PACKET_OTHERHOST (eth_type_trans on the vif),
 * and dom0 can neither route nor receive those. Broadcast and multicast go up to dom0 too, so
 * they stay tracked. `meta pkttype other` is what no iptables rule can test: by iptables' raw
 * table br_netfilter has turned PACKET_OTHERHOST into PACKET_HOST; so firewall=iptables puts its
 * NOTRACK here too, in the companion (nftCompanionApply).
 *
 * Note: this cannot override an iptables FORWARD policy of DROP (network-bridge antispoof=yes):
 * a drop in any table is final. Use firewall=iptables there.
 */
import type { Command } from '../exec.ts';
import { ownIPv6, type VifGuard } from './guard.ts';
import { nftNumber } from './nd-addresses.ts';

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
    `add rule ${T} prerouting iifname @untracked meta pkttype other notrack`,
    `flush chain ${T} forward`,
    `add rule ${T} forward iifname vmap @vifs`,
    `flush chain ${T} input`,
    `add rule ${T} input iifname vmap @vifs`,
  ];
}

function set(items: readonly string[]): string {
  return `{ ${items.join(', ')} }`;
}

/**
 * Tagged frames: none, but one 802.1Q tag with a trunk's VLAN id (see guard.ts). `ether type`
 * reads the outer tag's type, `vlan type` what the tag carries.
 */
function tagged(r: (expr: string) => string, vlans: readonly number[]): string[] {
  if (!vlans.length) return [r('ether type { 8021q, 8021ad } drop')];
  return [
    r(`ether type 8021q vlan id != ${set(vlans.map(String))} drop`),
    r('ether type 8021q vlan type { 8021q, 8021ad } drop'),
    r('ether type 8021ad drop'),
  ];
}

/**
 * How a rule names the protocol of the frame it checks: untagged, nft infers `ether type` from
 * the match (`ip saddr` means an IPv4 frame); inside an allowed 802.1Q tag the type is the
 * tag's (`vlan type ip`), and the inner headers are read as the outer ones would be.
 */
interface Frame {
  ip: string;
  ip6: string;
  arp: string;
  /** A match on the frame's type itself: `ether type` or `vlan type`. */
  type: string;
}
const UNTAGGED: Frame = { ip: '', ip6: '', arp: '', type: 'ether type' };
const IN_TAG: Frame = { ip: 'vlan type ip ', ip6: 'vlan type ip6 ', arp: 'vlan type arp ', type: 'vlan type' };

/** The policy's ethertypes (AoE…): after the MAC check, nothing more to check in them. */
function ethertypes(r: (expr: string) => string, types: readonly number[], f: Frame): string[] {
  return types.length ? [r(`${f.type} ${set(types.map((t) => `0x${t.toString(16).padStart(4, '0')}`))} return`)] : [];
}

/**
 * Fragmented ICMPv6, and fragments whose fragmentable part starts with
 * an extension header: neighbour discovery is never fragmented (RFC 6980), and a first fragment
 * must carry the whole header chain (RFC 7112). Matching the fragment header's next header
 * catches every fragment of such a packet, the first one included, whether or not the ICMPv6
 * header is in it. The cost: a ping larger than the MTU from the guest does not get through.
 */
function fragments(r: (expr: string) => string): string[] {
  // hop-by-hop, routing, fragment, AH, ICMPv6, destination options, mobility, HIP, shim6, experiments
  return [r('frag nexthdr { 0, 43, 44, 51, 58, 60, 135, 139, 140, 253, 254 } drop')];
}

/**
 * A neighbour advertisement names its target at ICMPv6 offset 8: only the guest's own
 * addresses, or it re-points its neighbours' entries for another's address to itself.
 */
function naTarget(g: VifGuard, r: (expr: string) => string): string[] {
  return [r(`icmpv6 type nd-neighbor-advert @th,64,128 != ${set(ownIPv6(g).map(nftNumber))} drop`)];
}

/** The drops that hold with and without ip=: ARP shape and MAC, servers, routers, fragments. */
function shapeChecks(g: VifGuard, r: (expr: string) => string, f: Frame): string[] {
  const out: string[] = [];
  // Ethernet/IPv4 ARP only: `arp saddr` reads fixed offsets, right only for 6- and 4-byte addresses.
  out.push(r(`${f.arp}arp htype != 1 drop`), r(`${f.arp}arp ptype != ip drop`), r(`${f.arp}arp hlen != 6 drop`), r(`${f.arp}arp plen != 4 drop`));
  if (g.mac) out.push(r(`${f.arp}arp saddr ether != ${g.mac} drop`));
  // A guest is never a DHCP server nor a router (unless its policy says it serves): a server's
  // reply goes to a client's port (68, 546) from whatever port; a relay's comes from the
  // server's (67, 547).
  const serve = g.serve ?? [];
  if (f === UNTAGGED) {
    const client = [...(serve.includes('dhcp') ? [] : ['68']), ...(serve.includes('dhcpv6') ? [] : ['546'])];
    const server = [...(serve.includes('dhcp') ? [] : ['67']), ...(serve.includes('dhcpv6') ? [] : ['547'])];
    if (client.length) out.push(r(`udp dport ${client.length > 1 ? set(client) : client[0]} drop`));
    if (server.length) out.push(r(`udp sport ${server.length > 1 ? set(server) : server[0]} drop`));
  } else {
    if (!serve.includes('dhcp')) out.push(r(`${f.ip}udp dport 68 drop`), r(`${f.ip}udp sport 67 drop`));
    if (!serve.includes('dhcpv6')) out.push(r(`${f.ip6}udp dport 546 drop`), r(`${f.ip6}udp sport 547 drop`));
  }
  out.push(r(`${f.ip6}icmpv6 type ${serve.includes('ra') ? 'nd-redirect' : '{ nd-router-advert, nd-redirect }'} drop`));
  out.push(...fragments((e) => r(`${f.ip6}${e}`)));
  return out;
}

/** With ip=: what leaves the chain (its own sources), before the final drop. */
function sourceReturns(g: VifGuard, r: (expr: string) => string, f: Frame): string[] {
  const out: string[] = [];
  out.push(r(`${f.ip}ip saddr 0.0.0.0 udp sport 68 udp dport 67 return`));
  if (g.ipv4.length) {
    out.push(r(`${f.ip}ip saddr ${set(g.ipv4)} return`));
    out.push(r(`${f.arp}arp saddr ip ${set([...g.ipv4, '0.0.0.0'])} return`));
  } else {
    out.push(r(`${f.arp}arp saddr ip 0.0.0.0 return`));
  }
  out.push(...naTarget(g, (e) => r(`${f.ip6}${e}`)));
  out.push(r(`${f.ip6}ip6 saddr ${set(ownIPv6(g))} return`));
  // From ::, only duplicate address detection: its solicitation and MLD reports.
  out.push(r(`${f.ip6}ip6 saddr :: icmpv6 type { nd-neighbor-solicit, mld-listener-report, mld2-listener-report } return`));
  return out;
}

/**
 * The vif's chain. With a trunk, a frame in an allowed 802.1Q tag meets the same checks as an
 * untagged one, on what the tag carries (the `vlan type` rules): its MAC, ARP, servers, routers,
 * fragments and, with ip=, its sources.
 */
function rules(g: VifGuard): string[] {
  const r = (expr: string) => `add rule ${T} ${chain(g.dev)} ${expr}`;
  const out: string[] = [];
  if (g.l2 === false) return out; // antispoof=no: the chain stays, empty (NOTRACK still applies)
  const trunk = (g.vlans ?? []).length > 0;
  const frames = trunk ? [UNTAGGED, IN_TAG] : [UNTAGGED];
  if (g.mac) out.push(r(`ether saddr != ${g.mac} drop`));
  out.push(...tagged(r, g.vlans ?? []));
  for (const f of frames) out.push(...ethertypes(r, g.ethertypes ?? [], f));
  for (const f of frames) out.push(...shapeChecks(g, r, f));
  if (!g.antispoof) return out;
  for (const f of frames) out.push(...sourceReturns(g, r, f));
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

/**
 * firewall=iptables: the checks ebtables cannot express, in this table's chain for the vif
 * (fragmented ICMPv6, and with ip= a neighbour advertisement's target); they only drop, so they
 * add to ebtables' guard whichever of the two sees a frame first. With antispoof=no the chain
 * stays empty. And NOTRACK, for frames bridged through only (see the top of this file). None
 * when there is neither a guard nor NOTRACK.
 */
export function nftCompanionApply(g: VifGuard): Command | undefined {
  if (g.l2 === false && !g.notrack) return undefined;
  const c = chain(g.dev);
  const r = (expr: string) => `add rule ${T} ${c} ${expr}`;
  const script = [
    ...base(),
    `add chain ${T} ${c}`,
    `flush chain ${T} ${c}`,
    ...(g.l2 === false ? [] : fragments(r)),
    ...(g.l2 !== false && g.antispoof ? naTarget(g, r) : []),
    `add element ${T} vifs { "${g.dev}" : jump ${c} }`,
    ...(g.notrack ? [`add element ${T} untracked { "${g.dev}" }`] : []),
    '',
  ].join('\n');
  return { argv: ['nft', '-f', '-'], input: script };
}

/** Its removal: as the nft backend's; where there is none, nothing to do. */
export function nftCompanionRemove(dev: string, notrack: boolean): Command {
  return nftRemove(dev, notrack);
}

/** The companion's pieces, for one nft transaction that removes a whole guard (xtables-nft.ts). */
export const NFT_COMPANION = { table: NFT_TABLE, family: 'bridge', map: 'vifs', untracked: 'untracked', chain } as const;
