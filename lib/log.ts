/**
 * Two audiences: xen-hotplug.log gets one pino JSON line per step (command, exit status,
 * duration) for whoever debugs later; stderr gets short sentences for the operator at the prompt
 * (and for xl, which copies a hook's stderr into its own log).
 *
 * The lines are pino's own, with its standard fields (level as a number, time in epoch ms, pid,
 * hostname, msg), so pino-pretty and pino's tooling read the log as it is. The destination is
 * synchronous (pino.destination with sync: true on a descriptor we open): a hook is a short
 * process, and an asynchronous or worker-thread destination would lose the last lines at exit and
 * does not survive bundling into one file. Lines of hooks that run at once interleave whole: each
 * is one write(2) on an O_APPEND descriptor.
 *
 * pino is imported when a hook opens its log, not at start-up: --help never loads it.
 */
import { chmodSync, closeSync, constants, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';

export const DEFAULT_LOG = '/var/log/xen/xen-hotplug.log';

/** The log's mode; the umask can only take bits away (another issue sets modes house-wide). */
const LOG_MODE = 0o640;
/** A directory we create for the log gets this whatever the umask (000 included). */
const LOG_DIR_MODE = 0o755;

export type Fields = Record<string, unknown>;

/** What the hooks use of a logger: pino's Logger is one. */
export interface Logger {
  debug(fields: Fields, msg: string): void;
  info(fields: Fields, msg: string): void;
  warn(fields: Fields, msg: string): void;
  error(fields: Fields, msg: string): void;
}

const drop = (): void => {};
/** A logger that drops everything (unit tests, and a hook whose log cannot be opened). */
export const silentLogger: Logger = { debug: drop, info: drop, warn: drop, error: drop };

export interface Output {
  log: Logger;
  /** A line for the operator on stderr, prefixed with the hook's name. */
  say(message: string): void;
}

/**
 * Opens `path` for appending, creating it (and its directory) if need be. O_NOFOLLOW: a symlink
 * planted where the log goes (by whoever can write its directory) must not make a root hook
 * append to, or create, the file it points at; the open fails instead (ELOOP).
 */
export function openLogFile(path: string): number {
  const dir = dirname(path);
  const created = mkdirSync(dir, { recursive: true, mode: LOG_DIR_MODE });
  if (created !== undefined) {
    // mkdir's mode passes through the umask; the directories made here get exactly LOG_DIR_MODE.
    for (let d = dir; d.length >= created.length; d = dirname(d)) {
      chmodSync(d, LOG_DIR_MODE);
      if (d === created) break;
    }
  }
  return openSync(path, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW, LOG_MODE);
}

/** A pino logger writing synchronously to descriptor `fd`, with `bindings` on every line. */
export async function pinoLogger(fd: number, bindings: Fields, onError?: (e: Error) => void): Promise<Logger> {
  const { default: pino } = await import('pino');
  const dest = pino.destination({ fd, sync: true });
  // A write that fails (disk full, say) must not end the hook: say it once, then log no more.
  let broken = false;
  dest.on('error', (e: Error) => {
    if (broken) return;
    broken = true;
    onError?.(e);
  });
  const logger: Logger = pino({ level: 'debug' }, dest).child(bindings);
  return logger;
}

export async function openOutput(hook: string, env: NodeJS.ProcessEnv, bindings: Fields): Promise<Output> {
  const path = env.XEN_NETHOOKS_LOG || DEFAULT_LOG;
  // Losing the log must never cost dom0 its network: carry on without it, and say so.
  const warn = (e: Error) => process.stderr.write(`${hook}: warning: cannot write log ${path}: ${e.message}\n`);
  let log = silentLogger;
  let fd: number | undefined;
  try {
    fd = openLogFile(path);
    log = await pinoLogger(fd, { hook, ...bindings }, warn);
  } catch (e) {
    if (fd !== undefined) closeSync(fd);
    warn(e as Error);
  }
  return {
    log,
    say(message: string) {
      process.stderr.write(`${hook}: ${message}\n`);
    },
  };
}
