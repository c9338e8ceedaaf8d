/**
 * Xen's hotplug lock protocol (tools/hotplug/Linux/locking.sh), so that our hooks and Xen's own
 * shell scripts (block, vif-openvswitch, …) on the same host exclude each other:
 * open /var/run/xen-hotplug/NAME, take flock -x on it, and retry if the path no longer names the
 * file we locked (a releaser removed it meanwhile); release by removing the file, then closing.
 *
 * Node has no flock(2), so util-linux flock(1) takes the lock on a descriptor it inherits from us
 * (run by execa, as every command is). A flock lock belongs to the open file description, which
 * we keep open after flock(1) exits.
 */
import { closeSync, fstatSync, mkdirSync, openSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';

export const DEFAULT_LOCK_DIR = '/var/run/xen-hotplug';
/**
 * libxl kills a hook 40 s after it started it: waiting longer for the lock gains nothing, and a
 * flock(1) still waiting then would outlive the hook. 30 s leaves the hook time to do its work.
 */
const WAIT_SECONDS = 30;

export interface Lock {
  path: string;
  release(): void;
}

export function lockDir(env: NodeJS.ProcessEnv): string {
  return env.XEN_NETHOOKS_LOCK_DIR || DEFAULT_LOCK_DIR;
}

export async function claimLock(name: string, env: NodeJS.ProcessEnv): Promise<Lock> {
  const dir = lockDir(env);
  mkdirSync(dir, { recursive: true });
  const path = join(dir, name);
  for (;;) {
    const fd = openSync(path, 'a');
    const r = await flock(fd);
    if (r.exitCode !== 0) {
      closeSync(fd);
      throw new Error(
        `could not take lock ${path} within ${WAIT_SECONDS} s (flock exit ${r.exitCode}${r.stderr ? `: ${r.stderr}` : ''}); ` +
          `another hotplug script holds it: see 'fuser -v ${path}'`,
      );
    }
    const held = fstatSync(fd);
    let current;
    try {
      current = statSync(path);
    } catch {
      current = undefined;
    }
    if (current && current.ino === held.ino && current.dev === held.dev) {
      let released = false;
      return {
        path,
        release() {
          if (released) return;
          released = true;
          // Remove while still holding it, as locking.sh does, so waiters re-open a fresh file.
          try {
            unlinkSync(path);
          } catch {
            /* already gone: nothing to remove */
          }
          closeSync(fd);
        },
      };
    }
    closeSync(fd); // we locked a file that was removed meanwhile: try the new one
  }
}

/** flock(1) on our descriptor, handed to it as its fd 3: the lock stays with our open file. */
async function flock(fd: number): Promise<{ exitCode: number; stderr: string }> {
  const { execa } = await import('execa');
  const r = await execa('flock', ['-x', '-w', String(WAIT_SECONDS), '3'], {
    // execa's types take an inherited descriptor only as a small literal; Node takes any fd.
    stdio: ['ignore', 'ignore', 'pipe', fd as unknown as 3],
    reject: false,
    // flock gives up by itself after WAIT_SECONDS; this only bounds a flock that hangs (35 s, under libxl's 40).
    timeout: (WAIT_SECONDS + 5) * 1000,
    forceKillAfterDelay: 1000,
    cleanup: false, // as in exec.ts: no signal-exit handlers
  });
  if (r.exitCode === undefined && r.signal === undefined) {
    return { exitCode: 127, stderr: `flock: ${r.originalMessage || r.shortMessage} (util-linux flock(1) is needed)` };
  }
  return { exitCode: r.exitCode ?? 1, stderr: String(r.stderr ?? '').trim() };
}

/** The lock NAME as the executor takes it (StepLock): claimed at most once at a time. */
export function stepLock(name: string, env: NodeJS.ProcessEnv): { claim(): Promise<void>; release(): void } {
  let held: Lock | undefined;
  let claiming: Promise<void> | undefined;
  return {
    claim() {
      if (held) return Promise.resolve();
      return (claiming ??= claimLock(name, env).then(
        (l) => {
          held = l;
          claiming = undefined;
        },
        (e: unknown) => {
          claiming = undefined;
          throw e;
        },
      ));
    },
    release() {
      held?.release();
      held = undefined;
    },
  };
}

export async function withLock<T>(name: string, env: NodeJS.ProcessEnv, fn: () => Promise<T>): Promise<T> {
  const lock = await claimLock(name, env);
  try {
    return await fn();
  } finally {
    lock.release();
  }
}
