/**
 * Layer-2 antispoofing with ebtables (nft or legacy backend): a chain per vif, jumped to from
 * FORWARD (to other ports) and INPUT (to dom0) for frames entering from the vif. The chain's
 * policy is DROP: a frame leaves it (RETURN) only if it is something the guest may send. It works
 * whatever the iptables FORWARD policy is and without br_netfilter.
 */
import type { Command } from '../exec.ts';
import { chainName, type VifGuard } from './guard.ts';

function rules(g: VifGuard): string[] {
  const c = chainName(g.dev);
  const r = (spec: string) => `-A ${c} ${spec}`;
  const out: string[] = [];
  if (g.l2 === false) return out; // antispoof=no: the chain stays, empty, policy RETURN
  if (g.mac) {
    out.push(r(`-s ! ${g.mac} -j DROP`));
    out.push(r(`-p ARP --arp-mac-src ! ${g.mac} -j DROP`));
  }
  // A guest is never a DHCP server nor a router for its neighbours.
  out.push(r('-p IPv4 --ip-proto udp --ip-sport 67 -j DROP'));
  out.push(r('-p IPv6 --ip6-proto ipv6-icmp --ip6-icmp-type router-advertisement -j DROP'));
  out.push(r('-p IPv6 --ip6-proto ipv6-icmp --ip6-icmp-type redirect -j DROP'));
  out.push(r('-p IPv6 --ip6-proto udp --ip6-sport 547 -j DROP'));
  if (!g.antispoof) {
    out.push(r('-j RETURN'));
    return out;
  }
  // IPv4: its own addresses, and DHCP discovery from 0.0.0.0.
  out.push(r('-p IPv4 --ip-src 0.0.0.0 --ip-proto udp --ip-sport 68 --ip-dport 67 -j RETURN'));
  for (const a of g.ipv4) out.push(r(`-p IPv4 --ip-src ${a} -j RETURN`));
  // ARP: sender must be its own address, or 0.0.0.0 for an address probe (RFC 5227).
  for (const a of g.ipv4) out.push(r(`-p ARP --arp-ip-src ${a} -j RETURN`));
  out.push(r('-p ARP --arp-ip-src 0.0.0.0 -j RETURN'));
  // IPv6: its own addresses, link-local (NDP, DHCPv6 client) and :: (duplicate address detection).
  for (const a of g.ipv6) out.push(r(`-p IPv6 --ip6-src ${a} -j RETURN`));
  out.push(r('-p IPv6 --ip6-src fe80::/10 -j RETURN'));
  out.push(r('-p IPv6 --ip6-src ::/128 -j RETURN'));
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
