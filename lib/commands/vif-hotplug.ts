/**
 * The part of a vif hook that is the same whatever the layout (SPEC §1): which device and which
 * backend directory this call is about, xenstore over argv, the plan run under Xen's `iptables`
 * lock, the record online leaves for offline, hotplug-status/-error, and the vif-post.d hooks.
 * A layout (vif-route, vif-nat) supplies only its online and offline planning.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Flags, Invocation } from '../cli/args.ts';
import type { HookSpec } from '../cli/spec.ts';
import { InvalidValue, parseValue, type OptionValue } from '../cli/values.ts';
import { run, type Command } from '../exec.ts';
import { execute } from '../executor.ts';
import { stepLock } from '../lock.ts';
import type { Output } from '../log.ts';
import { PlanError, type Plan } from '../plan.ts';
import type { TypeIf, VifCommand } from '../plans/vif-bridge.ts';
import { StateStore } from '../state.ts';
import { absolutePath, backendPath, frontendPathOf, parseVifName, readDir, tapBackendPath, writeCommand, XenstoreError } from '../xenstore.ts';
import { printPlan } from './plan-output.ts';

export const HOOK_DIR = '/etc/xen/scripts/vif-post.d';

export interface VifContext {
  spec: HookSpec;
  inv: Invocation;
  env: NodeJS.ProcessEnv;
  flags: Flags;
  out: Output;
}

/** One call of a vif hook, located: the device, its backend directory, what xenstore holds. */
export interface VifCall {
  command: VifCommand;
  typeIf: TypeIf;
  up: boolean;
  /** $vif or $INTERFACE: the device as libxl named it. */
  dev: string;
  backend: string;
  /** The state record's key: <domid>.<devid>.<type_if>. */
  key: string;
  /** The backend directory; empty on offline when libxl removed it already. */
  xs: Map<string, string>;
}

export interface Online<R> {
  plan: Plan;
  record: R;
  /** The device's name once online. */
  dev: string;
  title: string;
  summary: string;
  warnings: string[];
  /** Variables for the vif-post.d hooks besides command, dev, XENBUS_PATH, vif, type_if. */
  hookVars: Record<string, string>;
}

export interface Offline {
  plan: Plan;
  dev: string;
  hookVars: Record<string, string>;
}

export interface VifLayout<R> {
  /** The state store's prefix: the hook's name. */
  name: string;
  online(call: VifCall): Promise<Online<R>>;
  offline(call: VifCall, record: R | undefined): Promise<Offline>;
}

/** A failure of the request itself (bad xenstore value), reported like any other. */
export class VifFailure extends Error {}

function fail(message: string): never {
  throw new PlanError(message);
}

/** Without XENBUS_PATH (a run by hand), libxl's own name says where the backend is. */
function pvBackendPath(dev: string): string {
  const v = parseVifName(dev);
  if (!v || v.emulated) fail(`XENBUS_PATH is not set in the environment, and ${dev} is not named vif<domid>.<devid>: set XENBUS_PATH=backend/vif/<domid>/<devid>`);
  return backendPath(v);
}

/** undefined when this call is not for this type_if: online/offline are PV, add/remove tap. */
function locate(ctx: VifContext): Omit<VifCall, 'xs'> | undefined {
  const { env, inv, spec } = ctx;
  const command = inv.command as VifCommand;
  const typeIf = ((inv.options.get('type_if') as string | undefined) ?? 'vif') as TypeIf;
  const wanted: TypeIf = command === 'online' || command === 'offline' ? 'vif' : 'tap';
  if (typeIf !== wanted) return undefined;
  const dev = typeIf === 'vif' ? env.vif : env.INTERFACE;
  if (!dev) {
    fail(`${typeIf === 'vif' ? 'vif' : 'INTERFACE'} is not set in the environment: ${spec.name} is run by libxl/udev with it; by hand, e.g. vif=vif1.0 XENBUS_PATH=backend/vif/1/0 ${spec.name} online`);
  }
  const backend = absolutePath(typeIf === 'vif' ? env.XENBUS_PATH || pvBackendPath(dev) : tapBackendPath(dev));
  return { command, typeIf, up: command === 'online' || command === 'add', dev, backend, key: `${backend.split('/').slice(-2).join('.')}.${typeIf}` };
}

/**
 * The invocation's options with the backend's `keys` laid over them (SPEC §1 precedence). A
 * malformed xenstore value fails the request, unless `onInvalid` is given (offline: what online
 * set up must come out whatever xenstore says now); then the key is left out and reported to it.
 */
export function withXenstore(
  ctx: VifContext,
  xs: ReadonlyMap<string, string>,
  keys: readonly string[],
  onInvalid?: (message: string) => void,
): Map<string, OptionValue> {
  const o = new Map(ctx.inv.options);
  for (const key of keys) {
    const raw = xs.get(key);
    if (raw === undefined || raw.trim() === '') continue;
    const opt = ctx.spec.options.find((x) => x.key === key);
    if (!opt) continue;
    try {
      o.set(key, parseValue(opt.type, raw.trim()));
    } catch (e) {
      if (!(e instanceof InvalidValue)) throw e;
      const message = `invalid xenstore ${key}=${JSON.stringify(raw)}: expected ${e.message}`;
      if (!onInvalid) throw new VifFailure(message);
      onInvalid(`${message} (ignored)`);
    }
  }
  return o;
}

/**
 * Success, in one transaction, last in the plan, for a PV vif: the frontend's mtu and `connected`.
 * An emulated NIC (tap) writes neither, as the originals do (set_mtu writes the frontend only for
 * type_if=vif, and libxl waits for no hotplug-status there).
 */
export function reportSuccess(call: VifCall, mtu: number): Command[] {
  if (call.typeIf !== 'vif') return [];
  return [writeCommand([[`${frontendPathOf(call.backend, call.xs)}/mtu`, String(mtu)], [`${call.backend}/hotplug-status`, 'connected']])];
}

/** Scripts in vif-post.d are bash fragments that the originals source; run them the same way. */
async function runPostHooks(ctx: VifContext, vars: Record<string, string>): Promise<void> {
  const dir = ctx.env.XEN_NETHOOKS_HOOK_DIR || HOOK_DIR;
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.hook')).sort();
  } catch {
    return; // no hook directory: nothing to run
  }
  for (const n of names) {
    const file = join(dir, n);
    if (!(statSync(file).mode & 0o111)) continue;
    const r = await run({ argv: ['env', ...Object.entries(vars).map(([k, v]) => `${k}=${v}`), 'bash', '-c', '. "$1"', 'vif-post', file] });
    ctx.out.log.info({ hook: file, exit: r.exitCode }, 'vif-post hook');
    if (r.exitCode !== 0) ctx.out.say(`warning: ${file} exited ${r.exitCode}: ${r.stderr.trim()}`);
  }
}

export async function runVifHook<R>(ctx: VifContext, layout: VifLayout<R>): Promise<number> {
  const { env, out, flags } = ctx;
  const where = locate(ctx);
  if (!where) {
    out.log.info({ command: ctx.inv.command, typeIf: ctx.inv.options.get('type_if') }, 'nothing to do for this type_if');
    return 0;
  }
  const store = new StateStore<R>(env, layout.name);
  let xs = new Map<string, string>();
  try {
    xs = await readDir(where.backend);
  } catch (e) {
    // offline often runs after libxl removed the backend; the state record knows the rest.
    if (where.up || !(e instanceof XenstoreError)) throw e;
  }
  const call: VifCall = { ...where, xs };
  const vars = (dev: string, more: Record<string, string>) =>
    // XENBUS_PATH as the originals give it to their hooks: libxl's own (relative) for a vif.
    ({ command: call.command, dev, XENBUS_PATH: (call.typeIf === 'vif' && env.XENBUS_PATH) || call.backend, vif: call.dev, type_if: call.typeIf, bridge: '', ...more });

  if (!call.up) {
    const record = store.read(call.key);
    if (flags.dryRun) {
      const off = await layout.offline(call, record);
      printPlan(`${call.command} ${off.dev}`, off.plan, flags, { command: call.command, dev: off.dev });
      return 0;
    }
    // Planned under the lock too: a plan may delete rules by the handles its observation saw.
    // The executor lets it go once the firewall steps are done (Step.unlocked: the port's own
    // teardown needs no lock).
    const lock = stepLock('iptables', env);
    await lock.claim();
    let off;
    try {
      off = await layout.offline(call, record);
      try {
        await execute(off.plan, { log: out.log, say: out.say, lock });
      } catch (e) {
        // libxl ignores failures on remove; leave a trace and carry on, as the originals do.
        out.say(`warning: ${(e as Error).message}`);
      }
    } finally {
      lock.release();
    }
    store.remove(call.key);
    await runPostHooks(ctx, vars(off.dev, off.hookVars));
    out.say(`${call.command} ${off.dev}: removed`);
    return 0;
  }

  try {
    const on = await layout.online(call);
    for (const w of on.warnings) {
      out.say(`warning: ${w}`);
      out.log.warn({ dev: on.dev }, w); // the hotplug log is where an operator looks later
    }
    if (flags.dryRun) {
      printPlan(on.title, on.plan, flags, { command: call.command, record: on.record });
      return 0;
    }
    out.log.info({ record: on.record }, call.command);
    // Planned outside the lock, as before; the lock is now held only around the steps that
    // change the firewall (Step.unlocked marks the others).
    await execute(on.plan, { log: out.log, say: out.say, fault: env.XEN_NETHOOKS_FAULT, lock: stepLock('iptables', env) });
    store.write(call.key, on.record);
    await runPostHooks(ctx, vars(on.dev, on.hookVars));
    out.say(on.summary);
    return 0;
  } catch (e) {
    const message = (e as Error).message;
    out.log.error({ error: message }, `${call.command} failed`);
    if (!flags.dryRun) {
      const r = await run(writeCommand([[`${call.backend}/hotplug-error`, message], [`${call.backend}/hotplug-status`, 'error']]));
      if (r.exitCode !== 0) out.say(`warning: could not report the error to xenstore: ${r.stderr.trim()}`);
    }
    throw e;
  }
}
