/**
 * Xen's hotplug lock protocol, so that our hooks and Xen's own shell scripts (block,
 * vif-openvswitch, …) on the same host exclude each other. Two protocols, by Xen version, both
 * under /var/run/xen-hotplug; we take the one the host's own locking.sh uses, and log which:
 *
 * - flock (Xen 4.x, tools/hotplug/Linux/locking.sh): open NAME, take flock -x on it, and retry if
 *   the path no longer names the file we locked (a releaser removed it meanwhile); release by
 *   removing the file, then closing. Node has no flock(2), so util-linux flock(1) (run by execa, as every
 *   command is) takes the lock on a descriptor it inherits from us: the lock belongs to the open file description, which we
 *   keep open after flock(1) exits.
 * - mkdir (Xen 3.x): the lock is the directory NAME, made with mkdir (atomic); its `owner` file
 *   says "<pid>: <script>"; release by removing the directory.
 *
 * Time: libxl SIGKILLs a hotplug script after 40 s (no hotplug-error: the guest just fails "timed
 * out"). So a hook waits for a lock only until LOCK_DEADLINE_S after it started, leaving the rest
 * for its own work, and then fails with an error that names the lock and, where the lock says
 * (we write "pid=… hook=… what=… since=…" into ours), who holds it.
 *
 * The lock directory must be a real directory owned by root, and the lock file is opened without
 * following a symbolic link (safe-file.ts): a planted link would otherwise make root create or
 * truncate whatever it points at.
 */
import { closeSync, fstatSync, mkdirSync, rmSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { ensureDir, openAppend, readNoFollow, writeAtomic } from './safe-file.ts';
import { monotonicMs } from './clock.ts';

export const DEFAULT_LOCK_DIR = '/var/run/xen-hotplug';
export const DEFAULT_LOCKING_SH = '/etc/xen/scripts/locking.sh';
/** Seconds after the hook started by which it has the lock or gives up: libxl kills at 40. */
const LOCK_DEADLINE_S = 25;

export type LockProtocol = 'flock' | 'mkdir';

export interface Lock {
  path: string;
  protocol: LockProtocol;
  release(): void;
}

/** What a lock-taker says about itself in the lock file, for whoever waits for it. */
export interface Holder {
  hook: string;
  /** The call: "online vif1.0", "start xenbr0". */
  what: string;
}

interface LockLog {
  info(fields: Record<string, unknown>, msg: string): void;
}

export function lockDir(env: NodeJS.ProcessEnv): string {
  return env.XEN_NETHOOKS_LOCK_DIR || DEFAULT_LOCK_DIR;
}

/**
 * The protocol the host's locking.sh speaks: Xen 3.x's locks with `mkdir` and has no flock;
 * anything else, no locking.sh included (a host with only our hooks), is Xen 4's flock.
 */
export function lockProtocol(env: NodeJS.ProcessEnv): { protocol: LockProtocol; why: string } {
  const file = env.XEN_NETHOOKS_LOCKING_SH || DEFAULT_LOCKING_SH;
  let text: string | undefined;
  try {
    text = readNoFollow(file);
  } catch {
    text = undefined;
  }
  if (text === undefined) return { protocol: 'flock', why: `${file} not found: Xen 4's flock` };
  const code = text.split('\n').filter((l) => !l.trim().startsWith('#')).join('\n');
  if (!/\bflock\b/.test(code) && /\bmkdir\b[^\n]*\$/.test(code)) return { protocol: 'mkdir', why: `${file} locks with mkdir (Xen 3.x)` };
  return { protocol: 'flock', why: `${file} locks with flock` };
}

/** Seconds left to wait for a lock; XEN_NETHOOKS_LOCK_WAIT (seconds) overrides, for tests. */
function waitSeconds(env: NodeJS.ProcessEnv): number {
  const given = Number(env.XEN_NETHOOKS_LOCK_WAIT);
  if (env.XEN_NETHOOKS_LOCK_WAIT && Number.isFinite(given) && given >= 0) return given;
  return Math.max(1, LOCK_DEADLINE_S - process.uptime());
}

function holderLine(h: Holder | undefined): string {
  return `pid=${process.pid} hook=${h?.hook ?? 'xen-nethooks'} what=${(h?.what ?? '').trim().replace(/\s+/g, '_') || '-'} since=${new Date().toISOString()}\n`;
}

/** Who holds a lock, as its file says, for the error message. */
function describeHolder(text: string | undefined, path: string, protocol: LockProtocol): string {
  const last = text?.trim().split('\n').pop()?.trim();
  if (last) {
    const pid = /^(?:pid=)?(\d+)/.exec(last)?.[1];
    const alive = pid !== undefined && isAlive(Number(pid));
    return `it is held by ${last}` + (pid === undefined ? '' : alive ? ` (pid ${pid} is running)` : ` (pid ${pid} is gone: remove ${path} by hand if no script runs)`);
  }
  return protocol === 'flock'
    ? `its holder did not say who it is (Xen's own scripts do not): see 'fuser -v ${path}'`
    : `its holder did not say who it is: see ls -l ${path}`;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export class LockTimeout extends Error {}

export async function claimLock(name: string, env: NodeJS.ProcessEnv, holder?: Holder, log?: LockLog): Promise<Lock> {
  const dir = lockDir(env);
  ensureDir(dir, 0o755);
  const path = join(dir, name);
  const { protocol, why } = lockProtocol(env);
  const started = monotonicMs();
  const lock = protocol === 'mkdir' ? await mkdirLock(path, env, holder) : await flockLock(path, env, holder);
  log?.info({ lock: path, protocol, why, waitedMs: Math.round(monotonicMs() - started) }, `took lock ${name} (${protocol})`);
  return lock;
}

async function flockLock(path: string, env: NodeJS.ProcessEnv, holder: Holder | undefined): Promise<Lock> {
  const start = monotonicMs();
  const deadline = start + waitSeconds(env) * 1000;
  for (;;) {
    const fd = openAppend(path, 0o644);
    const left = Math.max(0, (deadline - monotonicMs()) / 1000);
    const r = await flock(fd, left);
    if (r.exitCode !== 0) {
      closeSync(fd);
      let text: string | undefined;
      try {
        text = readNoFollow(path);
      } catch {
        text = undefined;
      }
      const waited = Math.round((monotonicMs() - start) / 100) / 10;
      throw new LockTimeout(
        `could not take the hotplug lock ${path} within ${waited} s (given up before libxl's 40 s kill)` +
          (r.exitCode === 1 && !r.stderr ? '' : ` (flock exit ${r.exitCode}${r.stderr ? `: ${r.stderr}` : ''})`) +
          `: ${describeHolder(text, path, 'flock')}`,
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
      try {
        writeSync(fd, holderLine(holder));
      } catch {
        /* who holds it is a courtesy to waiters: the lock itself is taken */
      }
      let released = false;
      return {
        path,
        protocol: 'flock',
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
async function flock(fd: number, seconds: number): Promise<{ exitCode: number; stderr: string }> {
  const { execa } = await import('execa');
  const wait = seconds > 0 ? ['-w', seconds.toFixed(2)] : ['-n'];
  const r = await execa('flock', ['-x', ...wait, '3'], {
    // execa's types take an inherited descriptor only as a small literal; Node takes any fd.
    stdio: ['ignore', 'ignore', 'pipe', fd as unknown as 3],
    reject: false,
    // flock gives up by itself at the deadline; this only bounds a flock that hangs (still under libxl's 40 s).
    timeout: (seconds + 5) * 1000,
    forceKillAfterDelay: 1000,
    cleanup: false, // as in exec.ts: no signal-exit handlers
  });
  if (r.exitCode === undefined && r.signal === undefined) {
    return { exitCode: 127, stderr: `flock: ${r.originalMessage || r.shortMessage} (util-linux flock(1) is needed)` };
  }
  return { exitCode: r.exitCode ?? 1, stderr: String(r.stderr ?? '').trim() };
}

/** The lock NAME as the executor takes it (StepLock): claimed at most once at a time. */
export function stepLock(name: string, env: NodeJS.ProcessEnv, holder?: Holder, log?: LockLog): { claim(): Promise<void>; release(): void } {
  let held: Lock | undefined;
  let claiming: Promise<void> | undefined;
  return {
    claim() {
      if (held) return Promise.resolve();
      return (claiming ??= claimLock(name, env, holder, log).then(
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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Xen 3.x's lock: mkdir NAME. Its claim_lock spins a few times, then sleeps 1 s between tries
 * (and steals the lock after 100 of them); we poll every 50 ms and never steal: we give up by
 * the deadline and say who holds it.
 */
async function mkdirLock(path: string, env: NodeJS.ProcessEnv, holder: Holder | undefined): Promise<Lock> {
  const wait = waitSeconds(env);
  const deadline = monotonicMs() + wait * 1000;
  for (;;) {
    try {
      mkdirSync(path, { mode: 0o755 });
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    if (monotonicMs() >= deadline) {
      let owner: string | undefined;
      try {
        owner = readNoFollow(join(path, 'owner'));
      } catch {
        owner = undefined;
      }
      throw new LockTimeout(`could not take the hotplug lock ${path} (a Xen 3.x mkdir lock) within ${Math.round(wait)} s (given up before libxl's 40 s kill): ${describeHolder(owner, path, 'mkdir')}`);
    }
    await sleep(50);
  }
  // locking.sh's own format first ("<pid>: <script>"), so that its _steal_lock message reads the same.
  writeAtomic(join(path, 'owner'), `${process.pid}: ${holderLine(holder).trim()}\n`, 0o644);
  let released = false;
  return {
    path,
    protocol: 'mkdir',
    release() {
      if (released) return;
      released = true;
      rmSync(path, { recursive: true, force: true });
    },
  };
}

export async function withLock<T>(name: string, env: NodeJS.ProcessEnv, fn: () => Promise<T>, holder?: Holder, log?: LockLog): Promise<T> {
  const lock = await claimLock(name, env, holder, log);
  try {
    return await fn();
  } finally {
    lock.release();
  }
}
