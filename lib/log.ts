/**
 * Two audiences: xen-hotplug.log gets one JSON line per step (command, exit status, duration) for
 * whoever debugs later; stderr gets short sentences for the operator at the prompt (and for xl,
 * which copies a hook's stderr into its own log).
 *
 * The lines are pino's format (level as a number, ISO time, the bindings, the fields, msg), so
 * pino-pretty and jq read them, but written here in a few lines: pino's bundle alone cost ~12 ms
 * of a hook's start (bench/). Every line is one synchronous append: a hook is a short process,
 * and a buffered or asynchronous writer would lose the last lines at exit; lines of hooks that
 * run at once interleave whole, since an O_APPEND write of one line is atomic in practice.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

export const DEFAULT_LOG = '/var/log/xen/xen-hotplug.log';

/** pino's level numbers: tools filter on them (`jq 'select(.level >= 50)'`). */
const LEVELS = { debug: 20, info: 30, warn: 40, error: 50 } as const;
type Level = keyof typeof LEVELS;

export type Fields = Record<string, unknown>;

export interface Logger {
  debug(fields: Fields, msg: string): void;
  info(fields: Fields, msg: string): void;
  warn(fields: Fields, msg: string): void;
  error(fields: Fields, msg: string): void;
}

/** A logger that writes JSON lines to `path` with `bindings` on every line; none if path is undefined. */
export function jsonLogger(path: string | undefined, bindings: Fields, onError?: (e: Error) => void): Logger {
  let broken = path === undefined;
  const write = (level: Level, fields: Fields, msg: string) => {
    if (broken) return;
    const line = JSON.stringify({ level: LEVELS[level], time: new Date().toISOString(), ...bindings, ...fields, msg });
    try {
      appendFileSync(path!, line + '\n');
    } catch (e) {
      broken = true; // say it once, then carry on without the log
      onError?.(e as Error);
    }
  };
  return {
    debug: (f, m) => write('debug', f, m),
    info: (f, m) => write('info', f, m),
    warn: (f, m) => write('warn', f, m),
    error: (f, m) => write('error', f, m),
  };
}

/** A logger that drops everything (unit tests, and a hook whose log cannot be opened). */
export const silentLogger: Logger = jsonLogger(undefined, {});

export interface Output {
  log: Logger;
  /** A line for the operator on stderr, prefixed with the hook's name. */
  say(message: string): void;
}

export function openOutput(hook: string, env: NodeJS.ProcessEnv, bindings: Record<string, unknown>): Output {
  const path = env.XEN_NETHOOKS_LOG || DEFAULT_LOG;
  // Losing the log must never cost dom0 its network: carry on without it, and say so.
  const warn = (e: Error) => process.stderr.write(`${hook}: warning: cannot write log ${path}: ${e.message}\n`);
  let usable: string | undefined = path;
  try {
    mkdirSync(dirname(path), { recursive: true });
  } catch (e) {
    warn(e as Error);
    usable = undefined;
  }
  return {
    log: jsonLogger(usable, { hook, pid: process.pid, ...bindings }, warn),
    say(message: string) {
      process.stderr.write(`${hook}: ${message}\n`);
    },
  };
}
