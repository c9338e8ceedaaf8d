/**
 * What a hook must remember between calls (what `start` changed, so that `stop` can take exactly
 * that back) lives in /run/xen-nethooks/netns-<inode>/<name>.json. Keyed by network namespace,
 * because every namespace is a separate host as far as the kernel is concerned: hooks run in
 * different namespaces (as the tests do) never see each other's records. /run is a tmpfs, so a
 * reboot, which undoes everything anyway, also forgets the records.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const DEFAULT_STATE_DIR = '/run/xen-nethooks';

export function stateDir(env: NodeJS.ProcessEnv): string {
  const ns = statSync('/proc/self/ns/net').ino;
  return join(env.XEN_NETHOOKS_STATE_DIR || DEFAULT_STATE_DIR, `netns-${ns}`);
}

export class StateStore<T> {
  readonly dir: string;
  private readonly prefix: string;

  constructor(env: NodeJS.ProcessEnv, prefix: string) {
    this.dir = stateDir(env);
    this.prefix = prefix;
  }

  path(key: string): string {
    return join(this.dir, `${this.prefix}.${key}.json`);
  }

  read(key: string): T | undefined {
    try {
      return JSON.parse(readFileSync(this.path(key), 'utf8')) as T;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new Error(`state file ${this.path(key)} is unreadable: ${(e as Error).message}`);
    }
  }

  /** Atomic: a crash leaves either the old record or the new one, never half of one. */
  write(key: string, value: T): void {
    mkdirSync(this.dir, { recursive: true });
    const tmp = `${this.path(key)}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(value, null, 2) + '\n', { mode: 0o600 });
    renameSync(tmp, this.path(key));
  }

  remove(key: string): void {
    try {
      unlinkSync(this.path(key));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }

  /** Every record of this kind in this namespace, by key. */
  all(): Map<string, T> {
    const out = new Map<string, T>();
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return out;
    }
    for (const n of names) {
      if (!n.startsWith(`${this.prefix}.`) || !n.endsWith('.json')) continue;
      const key = n.slice(this.prefix.length + 1, -'.json'.length);
      const v = this.read(key);
      if (v !== undefined) out.set(key, v);
    }
    return out;
  }
}
