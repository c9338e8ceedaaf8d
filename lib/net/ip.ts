/**
 * IP addresses and prefixes as text: the one parser every address from xenstore, argv, the
 * environment and the config file goes through, and the canonical form it hands on.
 *
 * Strict on purpose. The firewall tools and `ip` read `192.0.2.011` as octal (192.0.2.9) and
 * refuse `192.0.2.08` with an error that names no key, so what one tool accepts another misreads:
 * IPv4 is four decimal octets 0-255 without leading zeros, IPv6 is RFC 4291 text without a zone
 * index, handed on in RFC 5952 form (lowercase, no leading zeros, the longest run of zero groups
 * as `::`), which is what `ip -j` prints back, so records and rules compare equal.
 */
import type { Family } from './route.ts';

export type { Family };

/** A reason a text is not an address, said so the operator can fix it. */
export class AddressError extends Error {}

export interface IpAddress {
  family: Family;
  /** 4 or 16 bytes, network order. */
  bytes: number[];
  /** Canonical text: decimal dotted quad, or RFC 5952. */
  text: string;
}

export interface IpPrefix extends IpAddress {
  /** undefined when the text had no /prefix. */
  prefix: number | undefined;
}

/** Longer than any address could be written (45 for IPv6 with a dotted tail, + /128). */
const MAX_TEXT = 49;

const OCTET = /^(0|[1-9][0-9]{0,2})$/;

function parseIpv4Bytes(text: string, whole: string): number[] {
  const parts = text.split('.');
  if (parts.includes('')) throw new AddressError(`${JSON.stringify(whole)} has an empty octet (a dot at an end, or two together)`);
  if (parts.length !== 4) {
    throw new AddressError(`${JSON.stringify(whole)} is not an IPv4 address: it has ${parts.length} dot-separated part${parts.length === 1 ? '' : 's'}, not 4`);
  }
  return parts.map((p) => {
    if (/^0[0-9]+$/.test(p)) {
      throw new AddressError(`${JSON.stringify(whole)}: octet "${p}" has a leading zero (tools read it as octal or refuse it); write it without`);
    }
    if (!OCTET.test(p)) throw new AddressError(`${JSON.stringify(whole)}: octet "${p}" is not a decimal number 0-255`);
    const n = Number(p);
    if (n > 255) throw new AddressError(`${JSON.stringify(whole)}: octet ${p} is above 255`);
    return n;
  });
}

function parseIpv6Bytes(text: string): number[] {
  const bad = (why: string) => new AddressError(`${JSON.stringify(text)} is not an IPv6 address: ${why}`);
  if (text.includes('%')) throw bad('a zone index (%...) is not accepted; the device is known already');
  if (!/^[0-9A-Fa-f:.]+$/.test(text)) throw bad('only hex digits, ":" and a dotted IPv4 tail may appear');
  const halves = text.split('::');
  if (halves.length > 2) throw bad('"::" may appear only once');
  const groupsOf = (s: string): string[] => (s === '' ? [] : s.split(':'));
  const head = groupsOf(halves[0] ?? '');
  const tail = halves.length === 2 ? groupsOf(halves[1] ?? '') : [];
  const words: number[][] = [[], []];
  [head, tail].forEach((groups, side) => {
    groups.forEach((g, i) => {
      const last = side === (halves.length === 2 ? 1 : 0) && i === groups.length - 1;
      if (g.includes('.')) {
        if (!last) throw bad('a dotted IPv4 part may only end the address');
        const b = parseIpv4Bytes(g, text);
        (words[side] as number[]).push(((b[0] as number) << 8) | (b[1] as number), ((b[2] as number) << 8) | (b[3] as number));
        return;
      }
      if (g === '') throw bad('an empty group (a single ":" at an end, or ":::")');
      if (g.length > 4) throw bad(`group "${g}" has more than 4 hex digits`);
      (words[side] as number[]).push(parseInt(g, 16));
    });
  });
  const [h, t] = words as [number[], number[]];
  const count = h.length + t.length;
  if (halves.length === 2 ? count > 7 : count !== 8) {
    throw bad(halves.length === 2 ? `too many groups for "::" to stand for any (${count})` : `${count} groups, not 8`);
  }
  const all = [...h, ...new Array<number>(8 - count).fill(0), ...t];
  return all.flatMap((w) => [w >> 8, w & 255]);
}

/** RFC 5952 §4: lowercase hex, no leading zeros, the first longest run (≥ 2) of zero groups as `::`. */
function formatIpv6(bytes: readonly number[]): string {
  const words: number[] = [];
  for (let i = 0; i < 16; i += 2) words.push(((bytes[i] as number) << 8) | (bytes[i + 1] as number));
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j;
  }
  const hex = (ws: number[]) => ws.map((w) => w.toString(16)).join(':');
  if (best < 0) return hex(words);
  return `${hex(words.slice(0, best))}::${hex(words.slice(best + bestLen))}`;
}

export function formatAddress(family: Family, bytes: readonly number[]): string {
  return family === 4 ? bytes.join('.') : formatIpv6(bytes);
}

/** One address, no prefix. */
export function parseAddress(text: string): IpAddress {
  if (text.length > MAX_TEXT) throw new AddressError(`${JSON.stringify(text.slice(0, 20))}... is too long (${text.length} characters) to be an address`);
  if (text === '') throw new AddressError('an empty address');
  if (/\s/.test(text)) throw new AddressError(`${JSON.stringify(text)} contains whitespace`);
  const family: Family = text.includes(':') ? 6 : 4;
  if (family === 4 && text.split('.').some((p) => /^0x/i.test(p))) {
    throw new AddressError(`${JSON.stringify(text)}: hexadecimal octets are not accepted; write the address in decimal`);
  }
  const bytes = family === 4 ? parseIpv4Bytes(text, text) : parseIpv6Bytes(text);
  if (family === 6 && bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 255 && bytes[11] === 255) {
    throw new AddressError(`${JSON.stringify(text)} is an IPv4-mapped IPv6 address (::ffff:a.b.c.d): give the IPv4 address itself`);
  }
  return { family, bytes, text: formatAddress(family, bytes) };
}

/** `ADDR` or `ADDR/PREFIX`; with `needPrefix`, the prefix must be there. */
export function parsePrefix(text: string, needPrefix = false): IpPrefix {
  const slash = text.indexOf('/');
  const addr = parseAddress(slash < 0 ? text : text.slice(0, slash));
  if (slash < 0) {
    if (needPrefix) throw new AddressError(`${JSON.stringify(text)} has no /prefix length`);
    return { ...addr, prefix: undefined };
  }
  const p = text.slice(slash + 1);
  const max = maxPrefix(addr.family);
  if (!/^(0|[1-9][0-9]{0,2})$/.test(p) || Number(p) > max) {
    throw new AddressError(`${JSON.stringify(text)}: prefix length "${p}" is not a decimal number 0-${max}`);
  }
  return { ...addr, prefix: Number(p) };
}

export const maxPrefix = (family: Family): number => (family === 4 ? 32 : 128);

/** The canonical text: the address, and `/prefix` if it had one. */
export function formatPrefix(p: IpPrefix): string {
  return p.prefix === undefined ? p.text : `${p.text}/${p.prefix}`;
}

/** The prefix length, a bare address counting as a host route. */
export const lengthOf = (p: IpPrefix): number => p.prefix ?? maxPrefix(p.family);

/** Bits past the prefix length that are set: 192.0.2.11/24. */
export function hostBitsSet(p: IpPrefix): boolean {
  const len = lengthOf(p);
  return p.bytes.some((b, i) => {
    const keep = Math.max(0, Math.min(8, len - i * 8));
    return (b & (0xff >> keep)) !== 0;
  });
}

/** Whether the first `len` bits of two same-family addresses agree. */
function samePrefix(a: readonly number[], b: readonly number[], len: number): boolean {
  for (let i = 0; i * 8 < len; i++) {
    const keep = Math.min(8, len - i * 8);
    const mask = (0xff << (8 - keep)) & 0xff;
    if (((a[i] as number) & mask) !== ((b[i] as number) & mask)) return false;
  }
  return true;
}

/** Two prefixes (bare addresses: single hosts) share any address. */
export function overlaps(a: IpPrefix, b: IpPrefix): boolean {
  return a.family === b.family && samePrefix(a.bytes, b.bytes, Math.min(lengthOf(a), lengthOf(b)));
}

/** The family of an address or prefix that parsePrefix already took (canonical text). */
export function ipFamily(text: string): Family {
  return text.includes(':') ? 6 : 4;
}

/** IPv6's minimum link MTU (RFC 8200 §5): below it the kernel removes a device's IPv6 addresses and turns IPv6 off there. */
export const IPV6_MIN_MTU = 1280;
