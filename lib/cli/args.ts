/**
 * The xend calling convention: the first word without `=` is the command, every `key=value` word
 * sets an option. Options are merged from defaults < config file < environment < argv; vif hooks
 * later lay xenstore on top. Anything unknown or malformed is a UsageError (exit 2).
 */
import { readFileSync } from 'node:fs';
import minimist from 'minimist';
import type { HookSpec } from './spec.ts';
import { InvalidValue, parseValue, type OptionValue } from './values.ts';
import type { SectionLine } from './policy.ts';

export const DEFAULT_CONF = '/etc/xen/nethooks.conf';

export class UsageError extends Error {}

/**
 * A command the hook does not have. Xen's scripts answer that with exit 1 and "Invalid command"
 * (SPEC §1), and callers may test for it, so it keeps that status rather than usage's 2.
 */
export class InvalidCommand extends UsageError {}

export interface Flags {
  help: boolean;
  dryRun: boolean;
  json: boolean;
}

export type Source = 'default' | 'config' | 'env' | 'argv';

export interface Invocation {
  command: string | undefined;
  options: Map<string, OptionValue>;
  /** Where each option's value came from: logged, and shown by --dry-run. */
  sources: Map<string, Source>;
  flags: Flags;
  /**
   * The config file's policy sections (`[guest NAME]` and what follows, policy.ts), unchecked:
   * vif-bridge checks them when it runs, so that a vif online reports a bad one to xenstore.
   */
  config?: { path: string; sections: SectionLine[] } | undefined;
}

const FLAG_NAMES = ['help', 'dry-run', 'json'] as const;

function setOption(spec: HookSpec, inv: Invocation, key: string, raw: string, source: Source, where: string): void {
  const opt = spec.options.find((o) => o.key === key);
  if (!opt) {
    const known = spec.options.map((o) => o.key).join(', ');
    throw new UsageError(`${spec.name}: unknown key '${key}'${where}; accepted keys: ${known}`);
  }
  try {
    inv.options.set(key, parseValue(opt.type, raw));
    inv.sources.set(key, source);
  } catch (e) {
    if (!(e instanceof InvalidValue)) throw e;
    throw new UsageError(`${spec.name}: invalid ${key}=${JSON.stringify(raw)}${where}: ${e.message}`);
  }
}

/**
 * Reads `key=value` lines. A key may be scoped to one hook as `network-bridge.antispoof=yes`;
 * unscoped keys apply to every hook that has them, so one file can serve all hooks. From the
 * first `[kind value]` header on, lines belong to per-guest policy sections (policy.ts): they go
 * to `sections`, as written, for vif-bridge to check.
 */
export function parseConfig(text: string, path: string, sections: SectionLine[] = []): { key: string; value: string; line: number; hook?: string }[] {
  const out: { key: string; value: string; line: number; hook?: string }[] = [];
  let section: { kind: string; value: string } | undefined;
  text.split('\n').forEach((rawLine, i) => {
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#')) return;
    const header = /^\[\s*(\S+)\s*(.*?)\s*\]$/.exec(line);
    if (header) {
      section = { kind: header[1] as string, value: header[2] as string };
      sections.push({ ...section, line: i + 1 });
      return;
    }
    if (section) {
      const kv = /^([^=\s]+)\s*=\s*(.*)$/.exec(line);
      if (!kv) throw new UsageError(`${path}:${i + 1}: expected key=value in [${section.kind} ${section.value}], got ${JSON.stringify(line)}`);
      sections.push({ ...section, key: kv[1] as string, raw: (kv[2] as string).trim(), line: i + 1 });
      return;
    }
    const m = /^([A-Za-z][\w-]*(?:\.[A-Za-z][\w-]*)?)\s*=\s*(.*)$/.exec(line);
    if (!m) throw new UsageError(`${path}:${i + 1}: expected key=value, got ${JSON.stringify(line)}`);
    const full = m[1] as string;
    let value = (m[2] as string).trim();
    if (/^(["']).*\1$/.test(value)) value = value.slice(1, -1);
    const dot = full.indexOf('.');
    if (dot >= 0) out.push({ hook: full.slice(0, dot), key: full.slice(dot + 1), value, line: i + 1 });
    else out.push({ key: full, value, line: i + 1 });
  });
  return out;
}

export function parseInvocation(spec: HookSpec, argv: readonly string[], env: NodeJS.ProcessEnv): Invocation {
  const inv: Invocation = {
    command: undefined,
    options: new Map(),
    sources: new Map(),
    flags: { help: false, dryRun: false, json: false },
  };
  const parsed = minimist([...argv], { boolean: [...FLAG_NAMES, 'h'], string: ['_'], stopEarly: false });
  for (const name of Object.keys(parsed)) {
    if (name === '_' || (FLAG_NAMES as readonly string[]).includes(name) || name === 'h') continue;
    throw new UsageError(`${spec.name}: unknown option --${name}; accepted: --help, --dry-run, --json`);
  }
  inv.flags = { help: Boolean(parsed.help || parsed.h), dryRun: Boolean(parsed['dry-run']), json: Boolean(parsed.json) };

  for (const opt of spec.options) {
    if (opt.default !== undefined) setOption(spec, inv, opt.key, opt.default, 'default', ' (built-in default)');
  }

  const confPath = env.XEN_NETHOOKS_CONF || DEFAULT_CONF;
  let confText: string | undefined;
  try {
    confText = readFileSync(confPath, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    // The default file is optional; a file the operator named explicitly must exist.
    if (!(code === 'ENOENT' && !env.XEN_NETHOOKS_CONF)) {
      throw new UsageError(`${spec.name}: cannot read config file ${confPath}: ${(e as Error).message}`);
    }
  }
  if (confText !== undefined) {
    const sections: SectionLine[] = [];
    const entries = parseConfig(confText, confPath, sections);
    if (sections.length) inv.config = { path: confPath, sections };
    // A key of this hook's below a section header belongs to the section (a policy key) and
    // would be ignored here: say so, rather than run without it. vif-bridge checks its sections
    // itself (policy.ts), so that an online reports a bad one to xenstore.
    if (spec.name !== 'vif-bridge') {
      for (const l of sections) {
        if (l.key === undefined) continue;
        const dot = l.key.indexOf('.');
        const key = dot >= 0 && l.key.slice(0, dot) === spec.name ? l.key.slice(dot + 1) : l.key;
        if (spec.options.some((o) => o.key === key)) {
          throw new UsageError(`${spec.name}: ${confPath}:${l.line}: ${l.key} is below the section [${l.kind} ${l.value}], where only guest policy keys go: move it before the first section`);
        }
      }
    }
    for (const entry of entries) {
      if (entry.hook !== undefined && entry.hook !== spec.name) continue;
      const known = spec.options.some((o) => o.key === entry.key);
      if (!known && entry.hook === undefined) continue; // another hook's key
      setOption(spec, inv, entry.key, entry.value, 'config', ` in ${confPath}:${entry.line}`);
    }
  }

  // Xen's scripts take their variables from the environment too; an empty one counts as unset
  // because libxl exports some (netdev=) empty.
  for (const opt of spec.options) {
    const v = env[opt.key];
    if (v !== undefined && v !== '') setOption(spec, inv, opt.key, v, 'env', ' (from the environment)');
  }

  for (const word of parsed._.map(String)) {
    // xend splits its (network-script '...') on single spaces, so a double or trailing space
    // hands us an empty word; the originals' `for arg in "$@"` loops ignore it, and so do we.
    if (word === '') continue;
    const eq = word.indexOf('=');
    if (eq < 0) {
      if (inv.command !== undefined) {
        throw new UsageError(`${spec.name}: unexpected word '${word}' after command '${inv.command}'; options are key=value`);
      }
      inv.command = word;
      continue;
    }
    setOption(spec, inv, word.slice(0, eq), word.slice(eq + 1), 'argv', '');
  }
  if (inv.command !== undefined && !inv.flags.help && !spec.commands.some((c) => c.name === inv.command)) {
    throw new InvalidCommand(
      `${spec.name}: Invalid command '${inv.command}'; expected one of ${spec.commands.map((c) => c.name).join(', ')}`,
    );
  }
  return inv;
}
