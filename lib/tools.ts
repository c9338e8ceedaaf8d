/**
 * The programs a hook runs, checked before it changes anything: without ebtables (or iptables,
 * nft, ...) a hook would otherwise get half-way and fail on "spawn ebtables-restore ENOENT", and a
 * guest start would fail with a tool error that does not say what to install. The programs are
 * read off the plan itself (every command, its undo and its fallbacks), so whatever backend or
 * option the request chose, the check asks for exactly what that plan will run.
 */
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import type { Command } from './exec.ts';
import type { Plan } from './plan.ts';

/** Debian's package for each program the hooks run. */
export const DEBIAN_PACKAGE: Readonly<Record<string, string>> = {
  ip: 'iproute2',
  bridge: 'iproute2',
  ebtables: 'ebtables',
  'ebtables-restore': 'ebtables',
  'ebtables-save': 'ebtables',
  iptables: 'iptables',
  'iptables-restore': 'iptables',
  'iptables-save': 'iptables',
  ip6tables: 'iptables',
  'ip6tables-restore': 'iptables',
  'ip6tables-save': 'iptables',
  nft: 'nftables',
  dnsmasq: 'dnsmasq-base',
  flock: 'util-linux',
  sysctl: 'procps',
  kill: 'procps',
  modprobe: 'kmod',
  'start-stop-daemon': 'dpkg',
};

/**
 * Programs served in-process when xenstored's socket answers (lib/xenstore.ts registers them
 * with lib/exec.ts), so their absence is no reason to refuse.
 */
const SERVED_IN_PROCESS = /^xenstore-/;

/** Where `program` is: an absolute path as it is, else the first PATH directory holding it. */
export function findProgram(program: string, env: NodeJS.ProcessEnv): string | undefined {
  const candidates = program.includes('/') ? [program] : (env.PATH ?? '').split(':').filter((d) => d !== '').map((d) => join(d, program));
  for (const path of candidates) {
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

/** The program a command runs: argv[0], or for `env [VAR=value...] PROG` that PROG. */
function programOf(cmd: Command): string | undefined {
  const [first, ...rest] = cmd.argv;
  if (first !== 'env') return first;
  return rest.find((w) => !w.includes('=') && !w.startsWith('-'));
}

/** Every program the plan may run: its steps' commands, their undo (rollback, stop) and fallbacks. */
export function planPrograms(plan: Plan): string[] {
  const out = new Set<string>();
  const add = (cmds: readonly Command[]) => {
    for (const c of cmds) {
      const p = programOf(c);
      if (p !== undefined) out.add(p);
      if (c.argv[0] === 'env') out.add('env');
      if (c.fallback) add(c.fallback.commands);
    }
  };
  for (const s of plan.steps) {
    add(s.run);
    add(s.undo);
  }
  return [...out];
}

export class MissingTools extends Error {
  readonly missing: string[];
  constructor(missing: string[], what: string, path: string) {
    const named = missing.map((p) => {
      const pkg = DEBIAN_PACKAGE[p.replace(/^.*\//, '')];
      return pkg ? `${p} (apt-get install ${pkg})` : p;
    });
    super(`${what} needs ${named.join(', ')}, not found on PATH=${path}; nothing was changed`);
    this.name = 'MissingTools';
    this.missing = missing;
  }
}

/** Throws MissingTools naming every program of `programs` that cannot be found, and its package. */
export function requireTools(programs: Iterable<string>, env: NodeJS.ProcessEnv, what: string): void {
  const missing = [...new Set(programs)].filter((p) => !SERVED_IN_PROCESS.test(p) && findProgram(p, env) === undefined);
  if (missing.length) throw new MissingTools(missing.sort(), what, env.PATH ?? '');
}
