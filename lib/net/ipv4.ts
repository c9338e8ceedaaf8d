/** IPv4 addresses as numbers, for the address arithmetic of the routed and NAT layouts. */
import { parsePrefix, type IpPrefix } from './ip.ts';

/** The text through the one strict parser (ip.ts); anything but IPv4 is a programming error here. */
function ipv4(text: string): IpPrefix {
  const p = parsePrefix(text);
  if (p.family !== 4) throw new Error(`${text} is not an IPv4 address`);
  return p;
}

/** The address as an unsigned 32-bit number. */
export function ipv4ToInt(addr: string): number {
  return ipv4(addr).bytes.reduce((n, b) => n * 256 + b, 0);
}

export function intToIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export function prefixMask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

export interface Ipv4Net {
  network: string;
  prefix: number;
  netmask: string;
}

/** `10.0.0.0/16` → network, prefix and dotted netmask; a bare address is a /32. */
export function parseIpv4Net(cidr: string): Ipv4Net {
  const p = ipv4(cidr);
  const prefix = p.prefix ?? 32;
  const mask = prefixMask(prefix);
  return { network: intToIpv4((ipv4ToInt(p.text) & mask) >>> 0), prefix, netmask: intToIpv4(mask) };
}

export function ipv4InNet(addr: string, net: Ipv4Net): boolean {
  const mask = prefixMask(net.prefix);
  return ((ipv4ToInt(addr) & mask) >>> 0) === ipv4ToInt(net.network);
}

