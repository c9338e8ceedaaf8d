/**
 * What a hook must remember between calls (what `start` changed, so that `stop` can take exactly
 * that back) lives in /run/xen-nethooks/netns-<inode>/<name>.json. Keyed by network namespace,
 * because every namespace is a separate host as far as the kernel is concerned: hooks run in
 * different namespaces (as the tests do) never see each other's records. /run is a tmpfs, so a
 * reboot, which undoes everything anyway, also forgets the records.
 *
 * Directories 0755 and records 0644 whatever the umask, never written or read through a symbolic
 * link, written under a random temporary name and renamed (safe-file.ts). A record is checked
 * against its type when read (record-shape.ts): one that is truncated, empty, `null` or of
 * another shape is a BadRecord that names the file, and a caller decides what a bad record of
 * its own means; the records of other keys stay usable (`all` with `onBad`).
 */
import { readdirSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { ShapeError } from './record-shape.ts';
import { ensureDir, readNoFollow, UnsafePath, writeAtomic } from './safe-file.ts';

export const DEFAULT_STATE_DIR = '/run/xen-nethooks';

export function stateDir(env: NodeJS.ProcessEnv): string {
  const ns = statSync('/proc/self/ns/net').ino;
  return join(env.XEN_NETHOOKS_STATE_DIR || DEFAULT_STATE_DIR, `netns-${ns}`);
}

/** Turns a parsed record into its type, or throws ShapeError saying what is wrong. */
export type RecordCheck<T> = (v: unknown) => T;

/** A record that is there but cannot be trusted: the file and what is wrong with it. */
export class BadRecord extends Error {
  readonly path: string;
  readonly key: string;
  readonly problem: string;
  constructor(path: string, key: string, problem: string) {
    super(`state record ${path} cannot be trusted: ${problem}`);
    this.name = 'BadRecord';
    this.path = path;
    this.key = key;
    this.problem = problem;
  }
}

export class StateStore<T> {
  readonly dir: string;
  private readonly prefix: string;
  private readonly check: RecordCheck<T>;

  constructor(env: NodeJS.ProcessEnv, prefix: string, check: RecordCheck<T>) {
    this.dir = stateDir(env);
    this.prefix = prefix;
    this.check = check;
  }

  path(key: string): string {
    return join(this.dir, `${this.prefix}.${key}.json`);
  }

  /** The record, undefined when there is none; a BadRecord when there is one that cannot be used. */
  read(key: string): T | undefined {
    const path = this.path(key);
    let text: string | undefined;
    try {
      text = readNoFollow(path);
    } catch (e) {
      throw new BadRecord(path, key, e instanceof UnsafePath ? e.message.replace(`${path} `, 'it ') : `unreadable: ${(e as Error).message}`);
    }
    if (text === undefined) return undefined;
    if (text.trim() === '') throw new BadRecord(path, key, 'it is empty (a write cut short?)');
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (e) {
      throw new BadRecord(path, key, `it is not JSON (truncated?): ${(e as Error).message}`);
    }
    try {
      return this.check(parsed);
    } catch (e) {
      if (e instanceof ShapeError) throw new BadRecord(path, key, `it has the wrong shape: ${e.message}`);
      throw e;
    }
  }

  /** Atomic: a crash leaves either the old record or the new one, never half of one. */
  write(key: string, value: T): void {
    this.ensureDirs();
    writeAtomic(this.path(key), JSON.stringify(value, null, 2) + '\n', 0o644);
  }

  remove(key: string): void {
    try {
      unlinkSync(this.path(key));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }

  /**
   * Every record of this kind in this namespace, by key. A bad one is handed to `onBad` and left
   * out, so that one broken file does not make the others unusable; without `onBad` it throws.
   */
  all(onBad?: (bad: BadRecord) => void): Map<string, T> {
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
      try {
        const v = this.read(key);
        if (v !== undefined) out.set(key, v);
      } catch (e) {
        if (!(e instanceof BadRecord) || !onBad) throw e;
        onBad(e);
      }
    }
    return out;
  }

  private ensureDirs(): void {
    // The base first: a link planted there would otherwise carry the namespace's directory elsewhere.
    ensureDir(join(this.dir, '..'), 0o755);
    ensureDir(this.dir, 0o755);
  }
}
