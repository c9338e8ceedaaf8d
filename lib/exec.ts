/**
 * Running host commands. Every command is an argument array handed to execa without a shell, so
 * no interface name or address from xenstore or argv can ever be interpreted by one.
 */
import { execa } from 'execa';

/** One command line, as data: what the plan shows in --dry-run and what the executor runs. */
export interface Command {
  argv: readonly string[];
  /** Text fed to standard input (ip -batch -, iptables-restore, nft -f -). */
  input?: string;
  /**
   * stderr fragments that mean "already so" (deleting an address that is gone, adding a route
   * that exists): the command counts as done. Lets stop and rollback finish on a host that has
   * drifted a little since start, instead of stopping half-way.
   */
  tolerate?: readonly string[];
  /**
   * Run instead when the command fails with one of `fallback.when` in its stderr: the longer way
   * to the same end on kernels that refuse the short one (renaming a device that is up).
   */
  fallback?: { when: readonly string[]; commands: readonly Command[] };
}

export interface CommandResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  durationMs: number;
}

/** A command that exited non-zero or could not start; carries everything an operator needs. */
export class CommandError extends Error {
  readonly command: Command;
  readonly exitCode: number;
  readonly stderr: string;
  constructor(command: Command, exitCode: number, stderr: string) {
    // The command line without its standard input: that can be a whole ruleset, and this
    // message ends up in xenstore's hotplug-error and xl's output; the log has the input.
    super(`${formatCommand({ argv: command.argv })} exited ${exitCode}${stderr ? `: ${stderr.trim()}` : ''}`);
    this.name = 'CommandError';
    this.command = command;
    this.exitCode = exitCode;
    this.stderr = stderr;
  }
}

/** Shell-like rendering for logs and --dry-run; quoting only so a reader can paste it. */
export function formatCommand(cmd: Command): string {
  const words = cmd.argv.map((w) => (/^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`));
  return words.join(' ') + (cmd.input !== undefined ? ' <<EOF\n' + cmd.input.replace(/\n?$/, '\nEOF') : '');
}

/** Runs a command and returns its result whatever the exit status. */
export async function run(cmd: Command): Promise<CommandResult> {
  const [file, ...args] = cmd.argv;
  if (!file) throw new Error('empty command');
  const started = performance.now();
  const r = await execa(file, args, {
    reject: false,
    input: cmd.input,
    stdin: cmd.input === undefined ? 'ignore' : undefined,
    stripFinalNewline: false,
    env: { LC_ALL: 'C' },
  });
  const durationMs = Math.round((performance.now() - started) * 10) / 10;
  // execa reports a missing binary as a failed spawn without an exit code.
  let exitCode = r.exitCode ?? (r.failed ? 127 : 0);
  const stderr = String(r.stderr ?? '') || (r.exitCode === undefined && r.failed ? (r.shortMessage ?? '') : '');
  if (exitCode !== 0 && cmd.tolerate?.some((t) => stderr.includes(t))) exitCode = 0;
  return { exitCode, stdout: String(r.stdout ?? ''), stderr, durationMs };
}

/** Runs a command and throws CommandError unless it exits 0; returns stdout. */
export async function runOk(cmd: Command): Promise<string> {
  const r = await run(cmd);
  if (r.exitCode !== 0) throw new CommandError(cmd, r.exitCode, r.stderr);
  return r.stdout;
}

/** Runs a read-only query that prints JSON (ip -j, nft -j). */
export async function runJson<T>(cmd: Command): Promise<T> {
  const out = await runOk(cmd);
  try {
    return JSON.parse(out || 'null') as T;
  } catch {
    throw new CommandError(cmd, 0, `output is not JSON: ${out.slice(0, 200)}`);
  }
}
