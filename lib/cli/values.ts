/**
 * The value types a hook option can have, each with its parser and the sentence an error shows
 * ("what is accepted"), so that every rejection names the key, the value and the fix.
 */
import { guestAddressProblem, PREFIX_FLOOR } from '../net/guest-address.ts';
import { IFNAME_MAX, isValidIfname } from '../net/ifname.ts';
import { AddressError, formatPrefix, hostBitsSet, ipFamily, parsePrefix } from '../net/ip.ts';

export type OptionType =
  | { kind: 'ifname'; special?: readonly string[] }
  | { kind: 'bool' }
  | { kind: 'int'; min: number; max: number }
  | { kind: 'enum'; values: readonly string[] }
  | { kind: 'ipv4net' }
  | { kind: 'mac' }
  | { kind: 'vlans' }
  /** A guest's addresses (`ip`), checked by guest-address.ts; `netmask`: the prefix is the netmask it is handed. */
  | { kind: 'guest-ips'; netmask?: boolean };

/** A VLAN to create on dom0's side of a bridge: `30` or `30@192.0.2.1/24`. */
export interface VlanSpec {
  id: number;
  addresses: string[];
}

export type OptionValue = string | boolean | number | VlanSpec[] | string[];

/**
 * A value the type does not take. The message is complete after "invalid key=value: ": the
 * reason when there is one more precise than the type, then what is accepted.
 */
export class InvalidValue extends Error {
  constructor(accepted: string, reason?: string) {
    super(reason ? `${reason}; expected ${accepted}` : `expected ${accepted}`);
  }
}

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
    case 'ipv4net':
      return `an IPv4 network in decimal with its prefix length /${PREFIX_FLOOR[4]}-/32 and no host bits set, e.g. 10.0.0.0/16`;
    case 'mac':
      return 'a MAC address like 00:16:3e:12:34:56';
    case 'guest-ips':
      return t.netmask
        ? `one IPv4 address (four decimal octets 0-255, no leading zeros) with an optional /prefix ${PREFIX_FLOOR[4]}-32 as its netmask, not unspecified, loopback, multicast or broadcast, e.g. 10.0.5.1/16`
        : 'addresses separated by spaces or commas, each IPv4 (four decimal octets 0-255, no leading zeros) or IPv6 (no zone index), ' +
          `alone or as a network with a /prefix of at least /${PREFIX_FLOOR[4]} (IPv4) or /${PREFIX_FLOOR[6]} (IPv6) and no host bits set, ` +
          'not unspecified, loopback, multicast or broadcast, e.g. "192.0.2.10 2001:db8::10"';
    case 'vlans':
      return 'a comma-separated list of VLAN ids 1-4094, each optionally with @ADDRESS/PREFIX addresses (IPv4 in decimal without leading zeros, or IPv6), e.g. 30,40@192.0.2.1/24';
  }
}

export function isValidMac(v: string): boolean {
  return /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(v);
}

export function parseValue(t: OptionType, raw: string): OptionValue {
  const bad = (reason?: string) => new InvalidValue(describeType(t), reason);
  /** The strict address parser (net/ip.ts), its reason carried into the message. */
  const prefixOf = (text: string, needPrefix = false) => {
    try {
      return parsePrefix(text, needPrefix);
    } catch (e) {
      if (e instanceof AddressError) throw bad(e.message);
      throw e;
    }
  };
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
    case 'ipv4net': {
      const p = prefixOf(raw, true);
      if (p.family !== 4) throw bad(`${raw} is not IPv4`);
      if (hostBitsSet(p)) throw bad(`${raw} has host bits set`);
      if ((p.prefix as number) < PREFIX_FLOOR[4]) throw bad(`a /${p.prefix} is shorter than /${PREFIX_FLOOR[4]}`);
      return formatPrefix(p);
    }
    case 'mac':
      if (!isValidMac(raw)) throw bad();
      return raw.toLowerCase();
    case 'guest-ips': {
      const list = raw.split(/[\s,]+/).filter(Boolean);
      const out = list.map((a) => {
        const p = prefixOf(a);
        const problem = guestAddressProblem(p, { prefixIsNetmask: t.netmask === true });
        if (problem) throw bad(problem);
        return formatPrefix(p);
      });
      if (t.netmask && (out.length > 1 || out.some((a) => ipFamily(a) === 6))) {
        throw bad(`${list.length > 1 ? `${list.length} addresses` : `${raw} is IPv6`}: NAT guests are IPv4 only, one address`);
      }
      return [...new Set(out)];
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
        return { id, addresses: addrs.map((a) => formatPrefix(prefixOf(a, true))) };
      });
    }
  }
}
