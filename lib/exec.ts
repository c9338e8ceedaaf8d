/**
 * Running host commands. Every command is an argument array handed to execa without a shell, so
 * no interface name or address from xenstore or argv can ever be interpreted by one; standard
 * input is a string (ip -batch -, iptables-restore, nft -f -), and every command has a timeout so
 * that none outlives the 40 s after which libxl kills the hook and calls the device failed.
 *
 * execa is loaded on the first command, not at start-up (a dynamic import that esbuild keeps lazy
 * in the bundle): --help, and any call that runs no program, never pay for it.
 */
import { constants } from 'node:os';
import { monotonicMs } from './clock.ts';

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
  /** Kill the command after this long (default COMMAND_TIMEOUT_MS). */
  timeoutMs?: number;
}

/**
 * libxl kills a hook 40 s after it started it; a command still running then would be orphaned
 * with the host half-changed. 25 s, plus up to 2 s for a SIGTERM to turn into SIGKILL, leaves
 * the hook the time to roll back what it did and say which command hung.
 */
export const COMMAND_TIMEOUT_MS = 25_000;
const FORCE_KILL_AFTER_MS = 2_000;

export interface CommandResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  durationMs: number;
  /** Killed because it ran past its timeout (exitCode is then 128 + the signal's number). */
  timedOut?: boolean;
  /** The signal that ended it, if one did. */
  signal?: string;
}

/** A command that exited non-zero or could not start; carries everything an operator needs. */
export class CommandError extends Error {
  readonly command: Command;
  readonly exitCode: number;
  readonly stderr: string;
  readonly timedOut: boolean;
  constructor(command: Command, exitCode: number, stderr: string, timedOut = false) {
    // The command line without its standard input: that can be a whole ruleset, and this
    // message ends up in xenstore's hotplug-error and xl's output; the log has the input.
    super(`${formatCommand({ argv: command.argv })} exited ${exitCode}${stderr ? `: ${stderr.trim()}` : ''}`);
    this.name = 'CommandError';
    this.command = command;
    this.exitCode = exitCode;
    this.stderr = stderr;
    this.timedOut = timedOut;
  }
}

/** Shell-like rendering for logs and --dry-run; quoting only so a reader can paste it. */
export function formatCommand(cmd: Command): string {
  const words = cmd.argv.map((w) => (/^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`));
  return words.join(' ') + (cmd.input !== undefined ? ' <<EOF\n' + cmd.input.replace(/\n?$/, '\nEOF') : '');
}

/**
 * An in-process implementation of a program with the same effect and the same result shape
 * (xenstore-write over xenstored's socket, say). It answers undefined when it cannot serve this
 * call, and the program itself runs. Plans keep naming the program, so --dry-run and the log
 * read the same whichever way a command ran.
 */
export type Builtin = (cmd: Command) => Promise<Omit<CommandResult, 'durationMs'> | undefined>;

const builtins = new Map<string, Builtin>();

export function registerBuiltin(program: string, impl: Builtin): void {
  builtins.set(program, impl);
}

/** Runs a command and returns its result whatever the exit status. */
export async function run(cmd: Command): Promise<CommandResult> {
  const [file] = cmd.argv;
  if (!file) throw new Error('empty command');
  const started = monotonicMs();
  const builtin = builtins.get(file);
  const r = (builtin && (await builtin(cmd))) || (await runProgram(cmd));
  const durationMs = Math.round((monotonicMs() - started) * 10) / 10;
  let exitCode = r.exitCode;
  if (exitCode !== 0 && cmd.tolerate?.some((t) => r.stderr.includes(t))) exitCode = 0;
  return { ...r, exitCode, durationMs };
}

type Execa = typeof import('execa');
let engine: Promise<Execa> | undefined;

/** execa, imported once, when the first command runs. */
function loadExeca(): Promise<Execa> {
  return (engine ??= import('execa'));
}

/**
 * `env [-u NAME]... [NAME=VALUE]... PROGRAM ARGS...` as data: plans write a program's environment
 * that way (so --dry-run and the log show it), and it is run here as PROGRAM with that environment,
 * which spares a hook one fork and exec of env(1). Undefined for any other form of env.
 */
export function splitEnvPrefix(argv: readonly string[]): { argv: string[]; set: Record<string, string>; unset: string[] } | undefined {
  if (argv[0] !== 'env') return undefined;
  const set: Record<string, string> = {};
  const unset: string[] = [];
  let i = 1;
  for (; i < argv.length; i++) {
    const w = argv[i]!;
    if (w === '-u' && i + 1 < argv.length) unset.push(argv[++i]!);
    else if (/^[A-Za-z_][A-Za-z0-9_]*=/.test(w)) set[w.slice(0, w.indexOf('='))] = w.slice(w.indexOf('=') + 1);
    else if (w.startsWith('-')) return undefined; // an option of env(1) we do not model: let env run
    else break;
  }
  if (i >= argv.length) return undefined;
  return { argv: argv.slice(i), set, unset };
}

async function runProgram(cmd: Command): Promise<Omit<CommandResult, 'durationMs'>> {
  const { execa } = await loadExeca();
  const direct = splitEnvPrefix(cmd.argv);
  const [file, ...args] = direct?.argv ?? cmd.argv;
  // The C locale: the tolerate/fallback fragments match English messages.
  const env: Record<string, string | undefined> = { ...process.env, LC_ALL: 'C', ...direct?.set };
  for (const name of direct?.unset ?? []) delete env[name];
  const r = await execa(file!, args, {
    shell: false,
    reject: false,
    // stdin is the command's input, or nothing: a hook's own stdin is libxl's /dev/null or a tty.
    ...(cmd.input === undefined ? { stdin: 'ignore' as const } : { input: cmd.input }),
    stripFinalNewline: false,
    extendEnv: false,
    env,
    timeout: cmd.timeoutMs ?? COMMAND_TIMEOUT_MS,
    forceKillAfterDelay: FORCE_KILL_AFTER_MS,
    // No signal-exit handlers (one per signal, installed on the first command: a measurable part
    // of a hook's CPU time): a hook exits only after every command it started has ended, the
    // timeout kills a hung one, and libxl's SIGKILL is one that no handler sees anyway.
    cleanup: false,
  });
  const stdout = typeof r.stdout === 'string' ? r.stdout : '';
  const stderr = typeof r.stderr === 'string' ? r.stderr : '';
  if (r.timedOut) {
    const signal = r.signal ?? 'SIGTERM';
    const why = `${file}: timed out after ${(cmd.timeoutMs ?? COMMAND_TIMEOUT_MS) / 1000} s, killed by ${signal}`;
    return { exitCode: 128 + signalNumber(signal), stdout, stderr: stderr ? `${stderr.trimEnd()}\n${why}` : why, timedOut: true, signal };
  }
  if (r.exitCode === undefined && r.signal === undefined) {
    // Could not start: 127 as a shell says it ("command not found"), 126 for the rest.
    const code = (r as { code?: string }).code;
    const exitCode = code === 'ENOENT' ? 127 : 126;
    return { exitCode, stdout: '', stderr: stderr || `${file}: ${code === 'ENOENT' ? 'command not found on PATH' : r.originalMessage || r.shortMessage}` };
  }
  if (r.signal !== undefined) {
    return { exitCode: 128 + signalNumber(r.signal), stdout, stderr: stderr || `killed by ${r.signal}`, signal: r.signal };
  }
  return { exitCode: r.exitCode ?? 0, stdout, stderr };
}

function signalNumber(signal: string): number {
  return constants.signals[signal as NodeJS.Signals] ?? 0;
}

/** Runs a command and throws CommandError unless it exits 0; returns stdout. */
export async function runOk(cmd: Command): Promise<string> {
  const r = await run(cmd);
  if (r.exitCode !== 0) throw new CommandError(cmd, r.exitCode, r.stderr, r.timedOut);
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
