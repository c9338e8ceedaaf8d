/**
 * The value types a hook option can have, each with its parser and the sentence an error shows
 * ("what is accepted"), so that every rejection names the key, the value and the fix.
 */
import { parseIpv4Net } from '../net/ipv4.ts';

export type OptionType =
  | { kind: 'ifname'; special?: readonly string[] }
  | { kind: 'bool' }
  | { kind: 'int'; min: number; max: number }
  | { kind: 'enum'; values: readonly string[] }
  | { kind: 'cidr' }
  | { kind: 'ipv4net' }
  | { kind: 'mac' }
  | { kind: 'vlans' }
  | { kind: 'cidrs' };

/** A VLAN to create on dom0's side of a bridge: `30` or `30@192.0.2.1/24`. */
export interface VlanSpec {
  id: number;
  addresses: string[];
}

export type OptionValue = string | boolean | number | VlanSpec[] | string[];

export class InvalidValue extends Error {}

const IFNAME_MAX = 15; // IFNAMSIZ - 1: the kernel refuses longer names

export function describeType(t: OptionType): string {
  switch (t.kind) {
    case 'ifname':
      return `an interface name of 1-${IFNAME_MAX} bytes without '/', ':' or whitespace` +
        (t.special?.length ? `, or ${t.special.join(' or ')}` : '');
    case 'bool':
      return 'yes or no';
    case 'int':
      return `an integer from ${t.min} to ${t.max}`;
    case 'enum':
      return `one of ${t.values.join(', ')}`;
    case 'cidr':
      return 'an IPv4 or IPv6 address with an optional /prefix, e.g. 192.0.2.10/24 or 2001:db8::1/64';
    case 'ipv4net':
      return 'an IPv4 network with its prefix length and no host bits set, e.g. 10.0.0.0/16';
    case 'mac':
      return 'a MAC address like 00:16:3e:12:34:56';
    case 'cidrs':
      return 'addresses separated by spaces or commas, each IPv4 or IPv6 with an optional /prefix, e.g. "192.0.2.10 2001:db8::10/128"';
    case 'vlans':
      return 'a comma-separated list of VLAN ids 1-4094, each optionally with @ADDRESS/PREFIX addresses, e.g. 30,40@192.0.2.1/24';
  }
}

export function isValidIfname(v: string): boolean {
  return v.length > 0 && Buffer.byteLength(v) <= IFNAME_MAX && !/[/:\s]/.test(v) && v !== '.' && v !== '..';
}

function isIPv4(v: string): boolean {
  const parts = v.split('.');
  return parts.length === 4 && parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255);
}

function isIPv6(v: string): boolean {
  if (!/^[0-9a-fA-F:.]+$/.test(v) || !v.includes(':')) return false;
  const dbl = v.split('::');
  if (dbl.length > 2) return false;
  const groups = (s: string) => (s === '' ? [] : s.split(':'));
  let head = groups(dbl[0] ?? '');
  let tail = dbl.length === 2 ? groups(dbl[1] ?? '') : [];
  const all = [...head, ...tail];
  let count = all.length;
  const last = all[all.length - 1];
  if (last !== undefined && last.includes('.')) {
    if (!isIPv4(last)) return false;
    count += 1; // an embedded IPv4 takes two groups
    if (tail.length) tail = tail.slice(0, -1);
    else head = head.slice(0, -1);
  }
  if (![...head, ...tail].every((g) => /^[0-9a-fA-F]{1,4}$/.test(g))) return false;
  return dbl.length === 2 ? count <= 7 : count === 8;
}

/** `ADDR` or `ADDR/PREFIX`, IPv4 or IPv6. */
export function isValidCidr(v: string): boolean {
  const [addr, prefix, extra] = v.split('/');
  if (addr === undefined || extra !== undefined) return false;
  const v4 = isIPv4(addr);
  if (!v4 && !isIPv6(addr)) return false;
  if (prefix === undefined) return true;
  if (!/^\d{1,3}$/.test(prefix)) return false;
  return Number(prefix) <= (v4 ? 32 : 128);
}

export function ipFamily(addr: string): 4 | 6 {
  return addr.includes(':') ? 6 : 4;
}

export function isValidMac(v: string): boolean {
  return /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(v);
}

export function parseValue(t: OptionType, raw: string): OptionValue {
  const bad = () => new InvalidValue(describeType(t));
  switch (t.kind) {
    case 'ifname':
      if (t.special?.includes(raw)) return raw;
      if (!isValidIfname(raw)) throw bad();
      return raw;
    case 'bool': {
      const v = raw.toLowerCase();
      if (['yes', 'y', 'true', 'on', '1'].includes(v)) return true;
      if (['no', 'n', 'false', 'off', '0'].includes(v)) return false;
      throw bad();
    }
    case 'int': {
      if (!/^\d+$/.test(raw)) throw bad();
      const n = Number(raw);
      if (n < t.min || n > t.max) throw bad();
      return n;
    }
    case 'enum':
      if (!t.values.includes(raw)) throw bad();
      return raw;
    case 'cidr':
      if (!isValidCidr(raw)) throw bad();
      return raw;
    case 'ipv4net': {
      const [addr = '', prefix] = raw.split('/');
      if (!isIPv4(addr) || prefix === undefined || !isValidCidr(raw)) throw bad();
      if (parseIpv4Net(raw).network !== addr) throw bad();
      return raw;
    }
    case 'mac':
      if (!isValidMac(raw)) throw bad();
      return raw.toLowerCase();
    case 'cidrs': {
      const list = raw.split(/[\s,]+/).filter(Boolean);
      if (!list.every(isValidCidr)) throw bad();
      return list;
    }
    case 'vlans': {
      if (raw.trim() === '') return [];
      const seen = new Set<number>();
      return raw.split(',').map((item) => {
        const [idText, ...addrs] = item.trim().split('@');
        if (!idText || !/^\d+$/.test(idText)) throw bad();
        const id = Number(idText);
        if (id < 1 || id > 4094 || seen.has(id)) throw bad();
        seen.add(id);
        for (const a of addrs) if (!isValidCidr(a) || !a.includes('/')) throw bad();
        return { id, addresses: addrs };
      });
    }
  }
}
