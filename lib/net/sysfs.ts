/**
 * Links read from /sys/class/net rather than from `ip -j -d addr show`, for the vif hooks: they
 * run once per guest interface and need a handful of facts about three devices or so, while ip
 * prints every link with every address (at 500 guests that is ~0.5 MB of JSON to make and parse,
 * and a process to start). Read-only.
 *
 * sysfs shows the network namespace of whoever mounted it, not necessarily the caller's (a hook
 * run under `nsenter --net` without a fresh /sys mount). /proc/self/net/dev is always the
 * caller's: when the two do not list the same devices, the caller gets undefined and uses ip.
 */
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { Link } from './link.ts';

/** The IFF_* bits of /sys/class/net/<dev>/flags, named as ip(8) names them. */
const FLAG_BITS: ReadonlyArray<readonly [number, string]> = [
  [0x1, 'UP'], [0x2, 'BROADCAST'], [0x8, 'LOOPBACK'], [0x10, 'POINTOPOINT'], [0x80, 'NOARP'],
  [0x100, 'PROMISC'], [0x200, 'ALLMULTI'], [0x1000, 'MULTICAST'],
];

export function decodeFlags(hex: string): string[] {
  const v = parseInt(hex.trim(), 16);
  return Number.isNaN(v) ? [] : FLAG_BITS.filter(([bit]) => (v & bit) !== 0).map(([, name]) => name);
}

/** Device names in /proc/<self>/net/dev ("  eth0: 123 ..." after two header lines). */
export function parseProcNetDev(text: string): string[] {
  return text.split('\n').slice(2).map((l) => l.slice(0, l.indexOf(':')).trim()).filter((n) => n !== '');
}

export interface SysfsRoots {
  net: string;
  procNetDev: string;
}

const ROOTS: SysfsRoots = { net: '/sys/class/net', procNetDev: '/proc/self/net/dev' };

/**
 * The named devices that exist, and every bridge, as Link objects with the fields the vif
 * planners use (ifname, ifindex, flags, mtu, address, master, linkinfo.info_kind); no addresses.
 * undefined when sysfs cannot be trusted for this namespace.
 */
export function sysfsLinks(names: readonly string[], roots: SysfsRoots = ROOTS): Link[] | undefined {
  let present: string[];
  let mine: string[];
  try {
    present = readdirSync(roots.net);
    mine = parseProcNetDev(readFileSync(roots.procNetDev, 'utf8'));
  } catch {
    return undefined;
  }
  // Sets: with hundreds of vifs on the host, a list search per name would be quadratic.
  const here = new Set(present);
  if (present.length !== mine.length || !mine.every((n) => here.has(n))) return undefined;
  const bridges = new Set(present.filter((n) => existsSync(join(roots.net, n, 'bridge'))));
  const wanted = new Set([...names.filter((n) => here.has(n)), ...bridges]);
  const links: Link[] = [];
  for (const n of [...wanted].sort()) {
    const link = readLink(roots.net, n, bridges.has(n));
    if (link) links.push(link);
  }
  return links;
}

function readLink(root: string, name: string, bridge: boolean): Link | undefined {
  const dir = join(root, name);
  const attr = (a: string) => readFileSync(join(dir, a), 'utf8').trim();
  try {
    const link: Link = { ifname: name, ifindex: Number(attr('ifindex')), flags: decodeFlags(attr('flags')), mtu: Number(attr('mtu')) };
    const address = attr('address');
    if (address) link.address = address;
    try {
      link.master = basename(readlinkSync(join(dir, 'master')));
    } catch {
      /* not enslaved */
    }
    const kind = bridge ? 'bridge' : /^DEVTYPE=(.+)$/m.exec(attr('uevent'))?.[1];
    if (kind) link.linkinfo = { info_kind: kind };
    return link;
  } catch {
    return undefined; // gone while we looked: as if it never was
  }
}

/**
 * Waits until one of `names` exists in the caller's namespace (/proc/self/net/dev, which is always
 * the caller's), polling every 50 ms for up to `timeoutMs`. True once one does; false on timeout,
 * and also when the list cannot be read (the caller's observation then says what it finds).
 */
export async function waitForDevice(names: readonly string[], timeoutMs: number, procNetDev = ROOTS.procNetDev): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let here: string[];
    try {
      here = parseProcNetDev(readFileSync(procNetDev, 'utf8'));
    } catch {
      return true;
    }
    if (names.some((n) => here.includes(n))) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
}
