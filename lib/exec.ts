/**
 * Running host commands. Every command is an argument array handed to the kernel's execve without
 * a shell, so no interface name or address from xenstore or argv can ever be interpreted by one.
 *
 * Built on node:child_process rather than execa: a hook is a process that lives ~50 ms and runs
 * a handful of commands, and loading execa's bundle alone cost ~30 ms per call (bench/). What a
 * hook needs of it is small: stdin as a string, stdout and stderr collected, the exit status, a
 * missing program reported as 127, a clear error. That is all this module does.
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';

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
  const [file, ...args] = cmd.argv;
  if (!file) throw new Error('empty command');
  const started = performance.now();
  const builtin = builtins.get(file);
  const r = (builtin && (await builtin(cmd))) || (await spawnCollect(file, args, cmd.input));
  const durationMs = Math.round((performance.now() - started) * 10) / 10;
  let exitCode = r.exitCode;
  if (exitCode !== 0 && cmd.tolerate?.some((t) => r.stderr.includes(t))) exitCode = 0;
  return { exitCode, stdout: r.stdout, stderr: r.stderr, durationMs };
}

function spawnCollect(file: string, args: string[], input: string | undefined): Promise<Omit<CommandResult, 'durationMs'>> {
  return new Promise((resolve) => {
    const child = spawn(file, args, {
      stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      // The C locale: the tolerate/fallback fragments match English messages.
      env: { ...process.env, LC_ALL: 'C' },
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let spawnError: NodeJS.ErrnoException | undefined;
    child.stdout!.on('data', (b: Buffer) => out.push(b));
    child.stderr!.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e: NodeJS.ErrnoException) => {
      spawnError = e;
    });
    if (input !== undefined) {
      // A program that exits without reading all of its input (a usage error) closes the pipe;
      // its exit status tells the story, not the EPIPE.
      child.stdin!.on('error', () => {});
      child.stdin!.end(input);
    }
    child.on('close', (code, signal) => {
      const stderr = Buffer.concat(err).toString('utf8');
      if (spawnError) {
        // Cannot start: 127 as a shell says it ("command not found"), 126 for the rest.
        const exitCode = spawnError.code === 'ENOENT' ? 127 : 126;
        resolve({ exitCode, stdout: '', stderr: stderr || `${file}: ${spawnError.code === 'ENOENT' ? 'command not found on PATH' : spawnError.message}` });
        return;
      }
      resolve({ exitCode: code ?? 128 + signalNumber(signal), stdout: Buffer.concat(out).toString('utf8'), stderr: stderr || (signal ? `killed by ${signal}` : '') });
    });
  });
}

function signalNumber(signal: NodeJS.Signals | null): number {
  return signal ? (constants.signals[signal] ?? 0) : 0;
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
