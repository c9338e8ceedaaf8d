/**
 * The guest's own IPv6 addresses as neighbour discovery sees them: the link-local address its
 * kernel forms from its MAC, and each address or prefix as the 128-bit number nft compares a
 * neighbour advertisement's target with (nft 1.0.6 has no `icmpv6 taddr`, so the target is read
 * as raw payload, `@th,64,128`, and raw payload compares with numbers, not addresses).
 */

/** The modified EUI-64 link-local address of a MAC (RFC 4291 appendix A), as the kernel forms it. */
export function eui64LinkLocal(mac: string): string {
  const b = mac.split(':').map((h) => parseInt(h, 16));
  if (b.length !== 6 || b.some((x) => !(x >= 0 && x <= 255))) throw new Error(`not a MAC: ${mac}`);
  const [b0 = 0, b1 = 0, b2 = 0, b3 = 0, b4 = 0, b5 = 0] = b;
  const groups = [0xfe80, 0, 0, 0, ((b0 ^ 0x02) << 8) | b1, (b2 << 8) | 0xff, 0xfe00 | b3, (b4 << 8) | b5];
  return formatIPv6(groups);
}

/** RFC 5952 text: lowercase, no leading zeros, the longest run (≥ 2) of zero groups as `::`. */
function formatIPv6(groups: readonly number[]): string {
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j === i ? i + 1 : j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/** An IPv6 address (already validated text, `::` and a dotted IPv4 tail allowed) as a number. */
function ipv6Number(addr: string): bigint {
  let text = addr;
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    text = text.slice(0, dotted.index) + `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const part = (s: string) => (s ? s.split(':') : []);
  const h = part(head);
  const t = tail === undefined ? [] : part(tail);
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  if (groups.length !== 8) throw new Error(`not an IPv6 address: ${addr}`);
  return groups.reduce((n, g) => (n << 16n) | BigInt(parseInt(g, 16)), 0n);
}

const hex128 = (n: bigint) => `0x${n.toString(16).padStart(32, '0')}`;

/** `ADDR` or `ADDR/PREFIX` as an nft set element over 128-bit numbers: one value, or a range. */
export function nftNumber(cidr: string): string {
  const [addr = '', prefix] = cidr.split('/');
  const n = ipv6Number(addr);
  const len = prefix === undefined ? 128 : Number(prefix);
  if (len >= 128) return hex128(n);
  const host = (1n << BigInt(128 - len)) - 1n;
  const first = n & ~host & ((1n << 128n) - 1n);
  return `${hex128(first)}-${hex128(first | host)}`;
}
