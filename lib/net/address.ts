/** IP addresses as `ip -j addr` reports them, and the commands that put one back exactly. */
import type { Command } from '../exec.ts';

export interface Address {
  family: 'inet' | 'inet6';
  local: string;
  prefixlen: number;
  /** The peer of a point-to-point address. */
  address?: string;
  broadcast?: string;
  scope?: string;
  label?: string;
  valid_life_time?: number;
  preferred_life_time?: number;
  [flag: string]: unknown;
}

const FOREVER = 4294967295;
/** Address flags that `ip addr add` can set; the others are kernel state. */
const SETTABLE_FLAGS = ['home', 'mngtmpaddr', 'nodad', 'optimistic', 'noprefixroute', 'autojoin'] as const;
/** Errors that mean the address is already where the command wanted it. */
const ADD_TOLERATE = ['File exists'];
const DEL_TOLERATE = ['Cannot assign requested address'];

/** Kernel-made addresses (IPv6 link-local) that come back by themselves on the new device. */
export function isKernelGenerated(a: Address): boolean {
  return a.family === 'inet6' && a.scope === 'link';
}

export function cidrOf(a: Address): string {
  return `${a.local}/${a.prefixlen}`;
}

/** Labels (eth0:1) must start with the device name; keep the suffix on another device. */
function relabel(label: string | undefined, from: string, to: string): string | undefined {
  if (label === undefined || label === from) return label === undefined ? undefined : to;
  if (label.startsWith(from)) {
    const moved = to + label.slice(from.length);
    return Buffer.byteLength(moved) <= 15 ? moved : undefined;
  }
  return label;
}

/** `ip addr add` that recreates `a` on `dev` (observed on `origDev`), lifetimes as they are now. */
export function addAddress(a: Address, dev: string, origDev: string = dev): Command {
  const v6 = a.family === 'inet6';
  const argv = ['ip', v6 ? '-6' : '-4', 'addr', 'add'];
  if (a.address && a.address !== a.local) argv.push(a.local, 'peer', `${a.address}/${a.prefixlen}`);
  else argv.push(cidrOf(a));
  if (a.broadcast) argv.push('broadcast', a.broadcast);
  const label = v6 ? undefined : relabel(a.label, origDev, dev);
  if (label !== undefined && label !== dev) argv.push('label', label);
  if (a.scope && a.scope !== 'global') argv.push('scope', a.scope);
  const valid = a.valid_life_time ?? FOREVER;
  const preferred = a.preferred_life_time ?? FOREVER;
  if (valid !== FOREVER || preferred !== FOREVER) {
    // The kernel does not take a preferred lifetime above the valid one.
    argv.push('valid_lft', valid === FOREVER ? 'forever' : String(valid));
    argv.push('preferred_lft', preferred === FOREVER ? 'forever' : String(Math.min(preferred, valid)));
  }
  for (const f of SETTABLE_FLAGS) if (a[f] === true) argv.push(f);
  argv.push('dev', dev);
  return { argv, tolerate: ADD_TOLERATE };
}

export function delAddress(a: Address, dev: string): Command {
  const v6 = a.family === 'inet6';
  const target = a.address && a.address !== a.local ? [a.local, 'peer', `${a.address}/${a.prefixlen}`] : [cidrOf(a)];
  return { argv: ['ip', v6 ? '-6' : '-4', 'addr', 'del', ...target, 'dev', dev], tolerate: DEL_TOLERATE };
}
