/**
 * Layer-2 antispoofing with ebtables (nft or legacy backend): a chain per vif, jumped to from
 * FORWARD (to other ports) and INPUT (to dom0) for frames entering from the vif. The chain's
 * policy is DROP: a frame leaves it (RETURN) only if it is something the guest may send. It works
 * whatever the iptables FORWARD policy is and without br_netfilter.
 *
 * What ebtables cannot express (a neighbour advertisement's target; whether a frame is an IPv6
 * fragment, which its ip6 match steps over or stops at) is checked by a companion chain in nft's
 * bridge table where nft is installed (nft.ts, `nftCompanionApply`).
 */
import type { Command } from '../exec.ts';
import { chainName, ownIPv6, type VifGuard } from './guard.ts';

/**
 * ARP that is Ethernet/IPv4 with 6- and 4-byte addresses, from `mac`: the kernel's arp match
 * checks the hardware address only when the hardware type is Ethernet and its length 6, and the
 * protocol address only when the protocol is IPv4 and its length 4, and answers "no match"
 * otherwise (an inverted check included). So an ARP packet leaves the chain only through a rule
 * that names both addresses, which proves it well-formed; without a MAC, "not all zeros" does.
 */
function arpFrom(mac: string | undefined, ip: string): string {
  return `-p ARP --arp-mac-src ${mac ?? '! 00:00:00:00:00:00'} --arp-ip-src ${ip}`;
}

/**
 * Tagged frames: none, but the trunk's VLAN ids (see guard.ts). ebtables legacy calls any tag
 * 802_1Q, ebtables-nft reads the outer one.
 */
function tagged(r: (spec: string) => string, vlans: readonly number[]): string[] {
  return [...vlans.map((id) => r(`-p 802_1Q --vlan-id ${id} -j RETURN`)), r('-p 802_1Q -j DROP'), r('-p 0x88a8 -j DROP')];
}

/** The policy's ethertypes (AoE…): after the MAC check, nothing more to check in them. */
function ethertypes(r: (spec: string) => string, types: readonly number[]): string[] {
  return types.map((t) => r(`-p 0x${t.toString(16).padStart(4, '0')} -j RETURN`));
}

function rules(g: VifGuard): string[] {
  const c = chainName(g.dev);
  const r = (spec: string) => `-A ${c} ${spec}`;
  const out: string[] = [];
  if (g.l2 === false) return out; // antispoof=no: the chain stays, empty, policy RETURN
  if (g.mac) out.push(r(`-s ! ${g.mac} -j DROP`));
  out.push(...tagged(r, g.vlans ?? []));
  out.push(...ethertypes(r, g.ethertypes ?? []));
  // ARP of another hardware or protocol type (type 6, IEEE 802, is taken by Linux on Ethernet).
  out.push(r('-p ARP --arp-htype ! 1 -j DROP'));
  out.push(r('-p ARP --arp-ptype ! 0x0800 -j DROP'));
  if (g.mac) out.push(r(`-p ARP --arp-mac-src ! ${g.mac} -j DROP`));
  // A guest is never a DHCP server nor a router for its neighbours (unless its policy says it
  // serves). A server's reply is one to a client's port (68, 546), whatever port it comes from;
  // a relay's, one from the server port.
  const serve = g.serve ?? [];
  if (!serve.includes('dhcp')) {
    out.push(r('-p IPv4 --ip-proto udp --ip-dport 68 -j DROP'));
    out.push(r('-p IPv4 --ip-proto udp --ip-sport 67 -j DROP'));
  }
  if (!serve.includes('dhcpv6')) {
    out.push(r('-p IPv6 --ip6-proto udp --ip6-dport 546 -j DROP'));
    out.push(r('-p IPv6 --ip6-proto udp --ip6-sport 547 -j DROP'));
  }
  if (!serve.includes('ra')) out.push(r('-p IPv6 --ip6-proto ipv6-icmp --ip6-icmp-type router-advertisement -j DROP'));
  out.push(r('-p IPv6 --ip6-proto ipv6-icmp --ip6-icmp-type redirect -j DROP'));
  if (!g.antispoof) {
    // Any address, but well-formed ARP from its own MAC only.
    out.push(r(`${arpFrom(g.mac, '0.0.0.0/0')} -j RETURN`));
    out.push(r('-p ARP -j DROP'));
    out.push(r('-j RETURN'));
    return out;
  }
  // IPv4: its own addresses, and DHCP discovery from 0.0.0.0.
  out.push(r('-p IPv4 --ip-src 0.0.0.0 --ip-proto udp --ip-sport 68 --ip-dport 67 -j RETURN'));
  for (const a of g.ipv4) out.push(r(`-p IPv4 --ip-src ${a} -j RETURN`));
  // ARP: sender its own MAC and address, or 0.0.0.0 for an address probe (RFC 5227).
  for (const a of [...g.ipv4, '0.0.0.0']) out.push(r(`${arpFrom(g.mac, a)} -j RETURN`));
  // IPv6: its own addresses and link-local address (NDP, DHCPv6 client).
  for (const a of ownIPv6(g)) out.push(r(`-p IPv6 --ip6-src ${a} -j RETURN`));
  // From ::, only what duplicate address detection sends: its neighbour solicitation, and the
  // MLD reports (v2, v1) that join the solicited-node group before there is a link-local address.
  for (const t of ['neighbour-solicitation', '143', '131']) {
    out.push(r(`-p IPv6 --ip6-src ::/128 --ip6-proto ipv6-icmp --ip6-icmp-type ${t} -j RETURN`));
  }
  // Everything else, other ethertypes included, meets the chain policy: DROP.
  return out;
}

export function ebtablesApply(g: VifGuard): Command {
  const c = chainName(g.dev);
  const script = [
    '*filter',
    `:${c} ${g.antispoof && g.l2 !== false ? 'DROP' : 'RETURN'}`,
    ...rules(g),
    `-A FORWARD -i ${g.dev} -j ${c}`,
    `-A INPUT -i ${g.dev} -j ${c}`,
    '',
  ].join('\n');
  return { argv: ['ebtables-restore', '--noflush'], input: script };
}

/**
 * Removal by name, in one transaction. Should a piece be missing (removed by hand), the whole
 * restore fails, and the piecewise commands that tolerate "not there" take over, so that offline
 * always finishes.
 */
export function ebtablesRemove(dev: string): Command {
  const c = chainName(dev);
  const gone = ['No chain', 'does not exist', 'Bad rule', "doesn't exist", 'No such file', 'Illegal target'];
  return {
    argv: ['ebtables-restore', '--noflush'],
    input: ['*filter', `-D FORWARD -i ${dev} -j ${c}`, `-D INPUT -i ${dev} -j ${c}`, `-F ${c}`, `-X ${c}`, ''].join('\n'),
    fallback: {
      when: [''],
      commands: [
        { argv: ['ebtables', '-D', 'FORWARD', '-i', dev, '-j', c], tolerate: gone },
        { argv: ['ebtables', '-D', 'INPUT', '-i', dev, '-j', c], tolerate: gone },
        { argv: ['ebtables', '-F', c], tolerate: gone },
        { argv: ['ebtables', '-X', c], tolerate: gone },
      ],
    },
  };
}
