/**
 * Two audiences: xen-hotplug.log gets one pino JSON line per step (command, exit status,
 * duration) for whoever debugs later; stderr gets short sentences for the operator at the prompt
 * (and for xl, which copies a hook's stderr into its own log).
 *
 * The file destination is synchronous: a hook is a short process, and an asynchronous or
 * worker-thread destination would lose the last lines at exit and does not survive bundling.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import pino from 'pino';

export const DEFAULT_LOG = '/var/log/xen/xen-hotplug.log';

export type Logger = pino.Logger;

export interface Output {
  log: Logger;
  /** A line for the operator on stderr, prefixed with the hook's name. */
  say(message: string): void;
}

export function openOutput(hook: string, env: NodeJS.ProcessEnv, bindings: Record<string, unknown>): Output {
  const path = env.XEN_NETHOOKS_LOG || DEFAULT_LOG;
  let log: Logger;
  try {
    mkdirSync(dirname(path), { recursive: true });
    const dest = pino.destination({ dest: path, sync: true, append: true });
    log = pino({ base: { hook, pid: process.pid, ...bindings }, timestamp: pino.stdTimeFunctions.isoTime }, dest);
  } catch (e) {
    // Losing the log must never cost dom0 its network: carry on without it, and say so.
    process.stderr.write(`${hook}: warning: cannot write log ${path}: ${(e as Error).message}\n`);
    log = pino({ enabled: false });
  }
  return {
    log,
    say(message: string) {
      process.stderr.write(`${hook}: ${message}\n`);
    },
  };
}
