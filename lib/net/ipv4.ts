/** IPv4 addresses as numbers, for the address arithmetic of the routed and NAT layouts. */

/** The address as an unsigned 32-bit number; the text must be a dotted quad (values.ts checks). */
export function ipv4ToInt(addr: string): number {
  return addr.split('.').reduce((n, part) => n * 256 + Number(part), 0);
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
  const [addr = '', p] = cidr.split('/');
  const prefix = p === undefined ? 32 : Number(p);
  const mask = prefixMask(prefix);
  return { network: intToIpv4((ipv4ToInt(addr) & mask) >>> 0), prefix, netmask: intToIpv4(mask) };
}

export function ipv4InNet(addr: string, net: Ipv4Net): boolean {
  const mask = prefixMask(net.prefix);
  return ((ipv4ToInt(addr) & mask) >>> 0) === ipv4ToInt(net.network);
}

