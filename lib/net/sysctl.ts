/** Kernel parameters under /proc/sys, read directly (no process) and written with sysctl(8). */
import { readFileSync } from 'node:fs';
import type { Command } from '../exec.ts';

/**
 * A key is dotted (net.ipv4.ip_forward) or, when a part holds dots itself as interface names
 * do (vif1.0), slashed (net/ipv4/conf/vif1.0/proxy_arp): sysctl(8) reads both forms.
 */
export function sysctlPath(key: string): string {
  return `/proc/sys/${key.includes('/') ? key : key.replace(/\./g, '/')}`;
}

/** A per-interface key, e.g. devSysctl(4, 'vif1.0', 'proxy_arp'), in the slashed form. */
export function devSysctl(family: 4 | 6, dev: string, name: string): string {
  return `net/ipv${family}/conf/${dev}/${name}`;
}

/** The current value, or undefined where the kernel has no such parameter. */
export function readSysctl(key: string): string | undefined {
  try {
    return readFileSync(sysctlPath(key), 'utf8').trim();
  } catch {
    return undefined;
  }
}

export function writeSysctl(key: string, value: string): Command {
  return { argv: ['sysctl', '-q', '-w', `${key}=${value}`] };
}
