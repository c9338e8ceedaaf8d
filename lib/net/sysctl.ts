/** Kernel parameters under /proc/sys, read directly (no process) and written with sysctl(8). */
import { readFileSync } from 'node:fs';
import type { Command } from '../exec.ts';

export function sysctlPath(key: string): string {
  return `/proc/sys/${key.replace(/\./g, '/')}`;
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
