/**
 * xenstore for the vif hooks: over xenstored's Unix socket in-process (lib/xenstore-socket.ts)
 * when there is one, else through the real xenstore-utils clients (the same programs Xen's own
 * scripts use), which also know /dev/xen/xenbus for a xenstored in a stub domain. Both find the
 * daemon through XENSTORED_PATH (tests) or the default socket, and both give the same results
 * and the same errors. XEN_NETHOOKS_XENSTORE=cli forces the clients.
 *
 * A client run is a fork+exec: ~1-3 ms on a bare host but ~44 ms in a dom0 under Xen, and a
 * hook has libxl's 40 s for everything. So the API is shaped around few calls: one
 * `xenstore-ls -f` reads a whole backend directory (missing keys simply absent, values with
 * spaces and newlines intact), one `xenstore-write k1 v1 k2 v2 …` writes every key in one
 * transaction. A vif-bridge online needs two: readDir(backend), then write() of the frontend
 * mtu and hotplug-status together. Over the socket the same calls are a few round trips on one
 * connection and no process at all.
 *
 * Plans keep naming `xenstore-write` (writeCommand), so --dry-run and the log read the same
 * either way; the socket serves it as a builtin of lib/exec.ts, registered below.
 *
 * The clients quote values (xenstore-ls always, xenstore-read too) and unquote what
 * xenstore-write is given: backslash escapes, as tools/xenstore/xenstore_client.c's
 * sanitise_value/unsanitise_value. escapeValue/unescapeValue here are those rules.
 */
import { registerBuiltin, run, type Command } from './exec.ts';
import { readBytes, readTree, removePaths, writePairs, XsReplyError } from './xenstore-socket.ts';

/** Where a relative path lives: the caller is dom0 (XENBUS_PATH=backend/vif/1/0 is relative). */
export const DOM0_HOME = '/local/domain/0';

// ---------------------------------------------------------------------------------------------
// Paths (pure)

/** xenstored's node-name rule: these characters only, no empty component, no trailing slash. */
const PATH_CHARS = /^[A-Za-z0-9_@/-]+$/;

export function isValidPath(path: string): boolean {
  if (path === '/') return true;
  return path !== '' && PATH_CHARS.test(path) && !path.endsWith('/') && !path.includes('//') && !path.startsWith('@');
}

/**
 * Resolves a path the way xenstored does for a caller whose home is `home` (dom0's by default):
 * relative paths are under it.
 */
export function absolutePath(path: string, home: string = DOM0_HOME): string {
  if (!isValidPath(path)) throw new XenstorePathError(path);
  return path.startsWith('/') ? path : `${home}/${path}`;
}

/** The domid of a /local/domain/<domid> home. */
export function domidOfHome(home: string): number {
  const m = /^\/local\/domain\/(\d+)$/.exec(home);
  return m ? Number(m[1]) : 0;
}

export function joinPath(dir: string, key: string): string {
  return dir === '/' ? `/${key}` : `${dir}/${key}`;
}

/** A vif, as both ends name it. */
export interface VifId {
  /** The guest's domain. */
  domid: number;
  /** The device index within the guest (the N in ethN, xenstore's <devid>/handle). */
  devid: number;
  /** The domain running netback: dom0, or a driver domain. */
  backendDomid: number;
}

const BACKEND_VIF = /^\/local\/domain\/(\d+)\/backend\/vif\/(\d+)\/(\d+)$/;

/** domid/devid from a backend path (absolute or, as libxl passes XENBUS_PATH, relative). */
export function parseBackendPath(path: string): VifId {
  const m = BACKEND_VIF.exec(absolutePath(path));
  if (!m) {
    throw new XenstorePathError(path, 'is not a vif backend path (expected backend/vif/<domid>/<devid> or /local/domain/<id>/backend/vif/<domid>/<devid>)');
  }
  return { backendDomid: Number(m[1]), domid: Number(m[2]), devid: Number(m[3]) };
}

export function backendPath(vif: Pick<VifId, 'domid' | 'devid'> & { backendDomid?: number }): string {
  return `/local/domain/${vif.backendDomid ?? 0}/backend/vif/${vif.domid}/${vif.devid}`;
}

/** The guest's side: where netfront reads mtu, mac, handle. */
export function frontendPath(vif: Pick<VifId, 'domid' | 'devid'>): string {
  return `/local/domain/${vif.domid}/device/vif/${vif.devid}`;
}

/**
 * The frontend of a backend: libxl's `frontend` key when the backend directory has a usable one,
 * else derived from the backend path. Never from the device name: after a vifname rename the
 * name says nothing about the domain.
 */
export function frontendPathOf(backend: string, dir?: ReadonlyMap<string, string>): string {
  const given = dir?.get('frontend');
  if (given && given.startsWith('/') && isValidPath(given)) return given;
  return frontendPath(parseBackendPath(backend));
}

const VIF_NAME = /^vif(\d+)\.(\d+)(-emu)?$/;

/** domid/devid from libxl's device names: vif<domid>.<devid> (PV) or vif<domid>.<devid>-emu (tap). */
export function parseVifName(name: string): { domid: number; devid: number; emulated: boolean } | undefined {
  const m = VIF_NAME.exec(name);
  if (!m) return undefined;
  return { domid: Number(m[1]), devid: Number(m[2]), emulated: m[3] !== undefined };
}

/**
 * The tap rule of the originals: an emulated NIC's hook gets only INTERFACE=vif<domid>.<devid>-emu,
 * and its xenstore directory is the PV vif's backend, /local/domain/0/backend/vif/<domid>/<devid>.
 */
export function tapBackendPath(ifname: string, backendDomid = 0): string {
  const v = parseVifName(ifname);
  if (!v || !v.emulated) {
    throw new XenstorePathError(ifname, 'is not an emulated NIC name (expected vif<domid>.<devid>-emu)');
  }
  return backendPath({ ...v, backendDomid });
}

// ---------------------------------------------------------------------------------------------
// Value quoting (pure), as xenstore_client.c

/**
 * What xenstore-ls/xenstore-read print for a value: printable ASCII except backslash as is;
 * \t \n \r \\; other bytes below 8 as \ooo, the rest as \xhh.
 */
export function sanitiseValue(value: string | Uint8Array): string {
  const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  let out = '';
  for (const c of bytes) {
    if (c >= 0x20 && c <= 0x7e && c !== 0x5c) out += String.fromCharCode(c);
    else if (c === 0x09) out += '\\t';
    else if (c === 0x0a) out += '\\n';
    else if (c === 0x0d) out += '\\r';
    else if (c === 0x5c) out += '\\\\';
    else if (c < 0o10) out += '\\' + c.toString(8).padStart(3, '0');
    else out += '\\x' + c.toString(16).padStart(2, '0');
  }
  return out;
}

/** The inverse, as xenstore-write applies it to every value it is given (unsanitise_value). */
export function unsanitiseBytes(text: string): Buffer {
  const input = Buffer.from(text, 'utf8');
  const out: number[] = [];
  let i = 0;
  while (i < input.length) {
    let c = input[i++]!;
    if (c === 0x5c) {
      const e = input[i++];
      switch (e) {
        case undefined: // a trailing backslash becomes a NUL, as in C (the escape eats the terminator)
          c = 0;
          break;
        case 0x74: c = 0x09; break; // \t
        case 0x6e: c = 0x0a; break; // \n
        case 0x72: c = 0x0d; break; // \r
        case 0x5c: c = 0x5c; break;
        case 0x78: { // \x: up to two hex digits (sscanf %2x); none leaves 'x'
          const m = /^[0-9a-fA-F]{1,2}/.exec(input.subarray(i, i + 2).toString('latin1'));
          if (m) {
            c = parseInt(m[0], 16);
            i += m[0].length;
          } else c = e;
          break;
        }
        default:
          if (e >= 0x30 && e <= 0x37) { // \ooo: up to three octal digits (sscanf %3o)
            const m = /^[0-7]{1,3}/.exec(input.subarray(i - 1, i + 2).toString('latin1'))!;
            c = parseInt(m[0], 8) & 0xff;
            i += m[0].length - 1;
          } else c = e; // any other escaped character is itself
      }
    }
    out.push(c);
  }
  return Buffer.from(out);
}

export function unsanitiseValue(text: string): string {
  return unsanitiseBytes(text).toString('utf8');
}

/**
 * A value as an argument for xenstore-write, so that it stores exactly `value`: backslashes and
 * control characters escaped, other text (UTF-8 included) as is.
 */
export function escapeValue(value: string): string {
  let out = '';
  for (const ch of value) {
    const c = ch.codePointAt(0)!;
    if (ch === '\\') out += '\\\\';
    else if (c === 0x09) out += '\\t';
    else if (c === 0x0a) out += '\\n';
    else if (c === 0x0d) out += '\\r';
    else if (c < 0x20 || c === 0x7f) out += '\\x' + c.toString(16).padStart(2, '0');
    else out += ch;
  }
  return out;
}

/**
 * Parses `xenstore-ls -f DIR` output into key (relative to dir, "a/b" for nested) → value.
 * A line is `PATH = "SANITISED"`, or `PATH:` for a node whose value could not be read. Paths
 * have no spaces and sanitised values no newlines, so the first ` = "` and the last `"` frame
 * the value even when it holds quotes or ` = "` itself.
 */
export function parseLsFlat(output: string, dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const prefix = dir === '/' ? '/' : `${dir}/`;
  for (const line of output.split('\n')) {
    if (line === '') continue;
    const sep = line.indexOf(' = "');
    let path: string;
    let value: string | undefined;
    if (sep > 0 && line.endsWith('"')) {
      path = line.slice(0, sep);
      value = unsanitiseValue(line.slice(sep + 4, -1));
    } else if (line.endsWith(':') && !line.includes(' ')) {
      path = line.slice(0, -1); // unreadable value: the node exists, its value is unknown
    } else {
      throw new Error(`unexpected xenstore-ls line: ${JSON.stringify(line)}`);
    }
    if (!path.startsWith(prefix)) throw new Error(`xenstore-ls listed ${path}, outside ${dir}`);
    if (value !== undefined) out.set(path.slice(prefix.length), value);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Errors

export type XenstoreOp = 'read' | 'list' | 'write' | 'rm' | 'exists';

/** A request xenstore refused or could not serve; `path` is the node it was about. */
export class XenstoreError extends Error {
  readonly op: XenstoreOp;
  readonly path: string;
  /** not-found: no such node; unavailable: no xenstored to talk to; failed: anything else. */
  readonly reason: 'not-found' | 'unavailable' | 'failed';
  readonly stderr: string;
  constructor(op: XenstoreOp, path: string, reason: XenstoreError['reason'], stderr: string) {
    const what = { read: 'read', list: 'list', write: 'write', rm: 'remove', exists: 'check' }[op];
    const detail = stderr.trim().split('\n').pop() ?? '';
    const why =
      reason === 'not-found'
        ? 'no such xenstore node'
        : reason === 'unavailable'
          ? `cannot reach xenstored, is it running? (${detail})`
          : detail || 'xenstore client failed';
    super(`cannot ${what} ${path}: ${why}`);
    this.name = 'XenstoreError';
    this.op = op;
    this.path = path;
    this.reason = reason;
    this.stderr = stderr;
  }
}

export class XenstorePathError extends Error {
  readonly path: string;
  constructor(path: string, problem = 'is not a valid xenstore path') {
    super(`${JSON.stringify(path)} ${problem}`);
    this.name = 'XenstorePathError';
    this.path = path;
  }
}

/**
 * Maps a client's failure to its cause. The clients name the path but not the errno
 * ("couldn't read path X"), except xenstore-ls, which uses err(3); for dom0 a failed read is a
 * missing node in practice (dom0 may read anything).
 */
function classify(stderr: string): XenstoreError['reason'] {
  if (/xs_open|xs_daemon_open|xs_domain_open|Connection refused/.test(stderr)) return 'unavailable';
  if (/No such file or directory|couldn't read path|could not list path/.test(stderr)) return 'not-found';
  return 'failed';
}

/** The path a multi-path client run stopped at, from its message, if it names one. */
function failedPath(stderr: string, fallback: string): string {
  const m = /(?:couldn't read|could not write|could not remove|could not list) path (\S+)/.exec(stderr);
  return m?.[1] ?? fallback;
}

// ---------------------------------------------------------------------------------------------
// Running the clients

export interface XenstoreOptions {
  /**
   * Environment whose XENSTORED_PATH the clients should use. lib/exec.ts hands children
   * process.env (plus LC_ALL), so this matters only when it differs from process.env; then the
   * client runs under env(1) with it set or unset.
   */
  env?: NodeJS.ProcessEnv;
}

function client(argv: string[], opts: XenstoreOptions | undefined): Command {
  const want = opts?.env ? opts.env.XENSTORED_PATH : process.env.XENSTORED_PATH;
  if (want === process.env.XENSTORED_PATH) return { argv };
  return { argv: want === undefined ? ['env', '-u', 'XENSTORED_PATH', ...argv] : ['env', `XENSTORED_PATH=${want}`, ...argv] };
}

/**
 * The environment the socket is looked up in (lib/xenstore-socket.ts socketPaths), the one the
 * client would run with; undefined when XEN_NETHOOKS_XENSTORE=cli rules the socket out.
 */
function socketEnv(opts: XenstoreOptions | undefined): NodeJS.ProcessEnv | undefined {
  if (process.env.XEN_NETHOOKS_XENSTORE === 'cli') return undefined;
  if (!opts?.env) return process.env;
  const env = { ...process.env, XENSTORED_PATH: opts.env.XENSTORED_PATH };
  if (env.XENSTORED_PATH === undefined) delete env.XENSTORED_PATH;
  return env;
}

/** What xenstored refused, as an XenstoreError; stderr in the clients' style, with the errno. */
function replyError(op: XenstoreOp, e: XsReplyError): XenstoreError {
  const reason = e.errno === 'ENOENT' ? 'not-found' : 'failed';
  return new XenstoreError(op, e.path, reason, `xenstored: ${e.message}\n`);
}

/** fn over the socket; undefined when the clients should run instead. */
async function viaSocket<T>(op: XenstoreOp, opts: XenstoreOptions | undefined, fn: (env: NodeJS.ProcessEnv) => Promise<T | undefined>): Promise<T | undefined> {
  const env = socketEnv(opts);
  if (!env) return undefined;
  try {
    return await fn(env);
  } catch (e) {
    throw e instanceof XsReplyError ? replyError(op, e) : e;
  }
}

/**
 * Every key under dir (recursively, "sub/key" for nested ones) with its value, as
 * `xenstore-ls -f` lists them. Missing keys are simply absent from the map; a missing dir is a
 * not-found XenstoreError.
 */
export async function readDir(dir: string, opts?: XenstoreOptions): Promise<Map<string, string>> {
  const abs = absolutePath(dir);
  const tree = await viaSocket('list', opts, (env) => readTree(abs, env));
  if (tree) return new Map([...tree].map(([k, v]) => [k, v.toString('utf8')]));
  const r = await run(client(['xenstore-ls', '-f', '--', abs], opts));
  if (r.exitCode !== 0) throw new XenstoreError('list', abs, classify(r.stderr), r.stderr);
  return parseLsFlat(r.stdout, abs);
}

/** One value; a missing node is a not-found XenstoreError. */
export async function read(path: string, opts?: XenstoreOptions): Promise<string> {
  return readAs(absolutePath(path), opts);
}

/**
 * One value, or undefined when the node does not exist, with a relative path sent as it is:
 * xenstored resolves it under the home of the domain the caller runs in (dom0's, or a driver
 * domain's), as the originals' `xenstore-read libxl/disable_udev` is.
 */
export async function readAsCaller(path: string, opts?: XenstoreOptions): Promise<string | undefined> {
  if (!isValidPath(path)) throw new XenstorePathError(path);
  try {
    return await readAs(path, opts);
  } catch (e) {
    if (e instanceof XenstoreError && e.reason === 'not-found') return undefined;
    throw e;
  }
}

/**
 * The running domain's home, /local/domain/<domid>: where xenstored puts a relative path. Asked
 * of xenstored (its relative key `domid`), not assumed to be dom0's: a network driver domain
 * runs the hooks too. dom0's when xenstored does not say.
 */
export async function callerHome(opts?: XenstoreOptions): Promise<string> {
  const domid = (await readAsCaller('domid', opts))?.trim();
  return domid !== undefined && /^[0-9]+$/.test(domid) ? `/local/domain/${Number(domid)}` : DOM0_HOME;
}

async function readAs(abs: string, opts: XenstoreOptions | undefined): Promise<string> {
  const bytes = await viaSocket('read', opts, (env) => readBytes(abs, env));
  if (bytes) return bytes.toString('utf8');
  const r = await run(client(['xenstore-read', '--', abs], opts));
  if (r.exitCode !== 0) throw new XenstoreError('read', abs, classify(r.stderr), r.stderr);
  // One line per path, the value sanitised (so it holds no newline) plus "\n".
  return unsanitiseValue(r.stdout.replace(/\n$/, ''));
}

/** One value, or undefined when the node does not exist. */
export async function readOptional(path: string, opts?: XenstoreOptions): Promise<string | undefined> {
  try {
    return await read(path, opts);
  } catch (e) {
    if (e instanceof XenstoreError && e.reason === 'not-found') return undefined;
    throw e;
  }
}

export type Pairs = ReadonlyMap<string, string> | Readonly<Record<string, string>> | ReadonlyArray<readonly [string, string]>;

function entries(pairs: Pairs): Array<readonly [string, string]> {
  if (pairs instanceof Map) return [...(pairs as ReadonlyMap<string, string>)];
  if (Array.isArray(pairs)) return [...(pairs as ReadonlyArray<readonly [string, string]>)];
  return Object.entries(pairs as Readonly<Record<string, string>>);
}

/**
 * The one xenstore-write run that writes every pair, as data (for a plan's steps, which the
 * executor runs and --dry-run shows). Paths resolved, values escaped so they are stored exactly;
 * "--" so that a value such as "-1" is not read as an option. Run through lib/exec.ts, it goes
 * over the socket when it can (the builtin below).
 */
export function writeCommand(pairs: Pairs): Command {
  const list = entries(pairs).map(([k, v]) => [absolutePath(k), escapeValue(v)] as const);
  if (list.length === 0) throw new Error('writeCommand: nothing to write');
  return { argv: ['xenstore-write', '--', ...list.flat()] };
}

/**
 * xenstore-write's effect and result over the socket: the same bytes stored (each value
 * unsanitised as the client does it), the same exit status and message shape on failure
 * ("could not write path X", which failedPath and classify read). undefined when this argv is
 * not one to imitate (options other than "--", an odd count: the client's own usage error) or
 * the socket cannot be reached.
 */
async function writeOverSocket(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<{ exitCode: number; stdout: string; stderr: string } | undefined> {
  let args = argv.slice(1);
  if (args[0] === '--') args = args.slice(1);
  else if (args.some((a) => a.startsWith('-'))) return undefined; // getopt would take it for an option
  if (args.length === 0 || args.length % 2 !== 0) return undefined;
  const pairs: Array<[string, Buffer]> = [];
  for (let i = 0; i < args.length; i += 2) pairs.push([args[i]!, unsanitiseBytes(args[i + 1]!)]);
  try {
    return (await writePairs(pairs, env)) ? { exitCode: 0, stdout: '', stderr: '' } : undefined;
  } catch (e) {
    if (!(e instanceof XsReplyError)) throw e;
    const what = e.op === 'TRANSACTION_START' ? "couldn't start transaction" : e.op === 'TRANSACTION_END' ? "couldn't end transaction" : `could not write path ${e.path}`;
    return { exitCode: 1, stdout: '', stderr: `xenstore-write: ${what} (${e.errno})\n` };
  }
}

// Registered on import: every plan that writes xenstore gets its writeCommand from this module,
// so by the time the executor runs one, the builtin is in place. The child's environment is
// process.env (lib/exec.ts), so that is where the socket is looked up.
registerBuiltin('xenstore-write', async (cmd) => {
  const env = socketEnv(undefined);
  if (!env || cmd.input !== undefined) return undefined;
  return writeOverSocket(cmd.argv, env);
});

/**
 * Writes every pair in one go, which (for more than one pair) is one xenstore transaction:
 * either all keys are written or none. Parents are created as needed.
 */
export async function write(pairs: Pairs, opts?: XenstoreOptions): Promise<void> {
  const list = entries(pairs);
  if (list.length === 0) return;
  const cmd = writeCommand(list);
  // Without an env of its own the builtin serves it (and falls back to the client itself);
  // with one, the client runs under env(1), which no builtin stands in for.
  const env = opts?.env ? socketEnv(opts) : undefined;
  const r = (env && (await writeOverSocket(cmd.argv, env))) || (await run(client([...cmd.argv], opts)));
  if (r.exitCode !== 0) {
    const first = absolutePath(list[0]![0]);
    throw new XenstoreError('write', failedPath(r.stderr, first), classify(r.stderr) === 'unavailable' ? 'unavailable' : 'failed', r.stderr);
  }
}

/**
 * Removes each path with everything under it. A path that is already gone is fine. One
 * transaction in the usual case; xenstored refuses to remove a node whose parent is gone too,
 * which aborts the whole transaction, so then each path is retried on its own and only those
 * failures count that leave the path still there.
 */
export async function rm(paths: readonly string[], opts?: XenstoreOptions): Promise<void> {
  const list = paths.map((p) => absolutePath(p));
  if (list.length === 0) return;
  if (await viaSocket('rm', opts, (env) => removePaths(list, env))) return;
  const r = await run(client(['xenstore-rm', '--', ...list], opts));
  if (r.exitCode === 0) return;
  if (classify(r.stderr) === 'unavailable') throw new XenstoreError('rm', list[0]!, 'unavailable', r.stderr);
  for (const p of list) {
    const one = await run(client(['xenstore-rm', '--', p], opts));
    if (one.exitCode !== 0 && (await exists(p, opts))) throw new XenstoreError('rm', p, 'failed', one.stderr);
  }
}

/** Whether the node exists (xenstore-exists: exit 0 yes, 1 no, with no message). */
export async function exists(path: string, opts?: XenstoreOptions): Promise<boolean> {
  const abs = absolutePath(path);
  const found = await viaSocket('exists', opts, async (env) => {
    try {
      return (await readBytes(abs, env)) ? true : undefined;
    } catch (e) {
      // What xenstore-exists reports as "no" (it only tries to read): gone, or not readable.
      if (e instanceof XsReplyError && (e.errno === 'ENOENT' || e.errno === 'EACCES')) return false;
      throw e;
    }
  });
  if (found !== undefined) return found;
  const r = await run(client(['xenstore-exists', '--', abs], opts));
  if (r.exitCode === 0) return true;
  if (r.stderr.trim() === '') return false;
  throw new XenstoreError('exists', abs, classify(r.stderr), r.stderr);
}
