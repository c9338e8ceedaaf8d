/**
 * The part of a vif hook that is the same whatever the layout (SPEC §1): which device and which
 * backend directory this call is about, xenstore over argv, the plan run under Xen's `iptables`
 * lock, the record online leaves for offline, hotplug-status/-error, and the vif-post.d hooks.
 * A layout (vif-route, vif-nat) supplies only its online and offline planning.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Flags, Invocation } from '../cli/args.ts';
import type { HookSpec } from '../cli/spec.ts';
import type { Options } from '../cli/options.ts';
import { optionsOf, overXenstore } from '../cli/precedence.ts';
import { run, type Command } from '../exec.ts';
import { execute, PlanFailed } from '../executor.ts';
import { LockTimeout, stepLock, withLock, type Holder } from '../lock.ts';
import { UnsafePath } from '../safe-file.ts';
import type { Output } from '../log.ts';
import { PlanError, step, unlocked, type Plan } from '../plan.ts';
import type { TypeIf, VifCommand } from '../plans/vif.ts';
import { waitForDevice } from '../net/sysfs.ts';
import { BadRecord, type StateStore } from '../state.ts';
import { planPrograms, requireTools } from '../tools.ts';
import { absolutePath, backendPath, callerHome, DOM0_HOME, domidOfHome, frontendPathOf, parseVifName, readAsCaller, readDir, tapBackendPath, writeCommand, XenstoreError } from '../xenstore.ts';
import { printPlan } from '../dry-run.ts';

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
  /** Everything online changes but the report to xenstore, which runVifHook adds last (withReport). */
  plan: Plan;
  /** The MTU the frontend is told (a PV vif's report). */
  mtu: number;
  record: R;
  /** The device's name once online. */
  dev: string;
  title: string;
  summary: string;
  warnings: string[];
  /** Said by --dry-run besides the plan (and logged by the layout): why the guard is as it is. */
  notes?: string[] | undefined;
  /** Variables for the vif-post.d hooks besides command, dev, XENBUS_PATH, vif, type_if. */
  hookVars: Record<string, string>;
}

export interface Offline {
  plan: Plan;
  dev: string;
  hookVars: Record<string, string>;
}

export interface VifLayout<R> {
  /** The hook's store (records.ts): where online leaves the record offline reads. */
  records(env: NodeJS.ProcessEnv): StateStore<R>;
  online(call: VifCall): Promise<Online<R>>;
  /**
   * The layout's online plans around what an earlier online of the same vif left (vif-bridge
   * removes a leftover guard in its firewall step). Otherwise runVifHook takes that out first.
   */
  plansLeftovers?: boolean;
  offline(call: VifCall, record: R | undefined): Promise<Offline>;
}

function fail(message: string): never {
  throw new PlanError(message);
}

/** Without XENBUS_PATH (a run by hand), libxl's own name says where the backend is. */
function pvBackendPath(dev: string, backendDomid: number): string {
  const v = parseVifName(dev);
  if (!v || v.emulated) fail(`XENBUS_PATH is not set in the environment, and ${dev} is not named vif<domid>.<devid>: set XENBUS_PATH=backend/vif/<domid>/<devid>`);
  return backendPath({ ...v, backendDomid });
}

/**
 * The home of the domain this hook runs in, where a relative XENBUS_PATH lives: dom0's, or a
 * network driver domain's. dom0 says so in /proc/xen/capabilities (no question to xenstored
 * then); elsewhere xenstored is asked (its relative key `domid`, xenstore.ts callerHome).
 */
async function domainHome(env: NodeJS.ProcessEnv): Promise<string> {
  if (env.XENBUS_PATH?.startsWith('/')) return DOM0_HOME; // not needed: the path is absolute
  try {
    if (readFileSync('/proc/xen/capabilities', 'utf8').includes('control_d')) return DOM0_HOME;
  } catch {
    /* no xenfs here (tests, or not mounted): ask xenstored */
  }
  try {
    return await callerHome();
  } catch {
    return DOM0_HOME; // xenstored does not answer: the backend read below says so
  }
}

/** undefined when this call is not for this type_if: online/offline are PV, add/remove tap. */
function locate(ctx: VifContext, home: string): Omit<VifCall, 'xs'> | undefined {
  const { env, inv, spec } = ctx;
  const command = inv.command as VifCommand;
  const typeIf: TypeIf = optionsOf(inv).choice('type_if', ['vif', 'tap']) ?? 'vif';
  const wanted: TypeIf = command === 'online' || command === 'offline' ? 'vif' : 'tap';
  if (typeIf !== wanted) return undefined;
  const dev = typeIf === 'vif' ? env.vif : env.INTERFACE;
  if (!dev) {
    fail(`${typeIf === 'vif' ? 'vif' : 'INTERFACE'} is not set in the environment: ${spec.name} is run by libxl/udev with it; by hand, e.g. vif=vif1.0 XENBUS_PATH=backend/vif/1/0 ${spec.name} online`);
  }
  const domid = domidOfHome(home);
  const backend = absolutePath(typeIf === 'vif' ? env.XENBUS_PATH || pvBackendPath(dev, domid) : tapBackendPath(dev, domid), home);
  return { command, typeIf, up: command === 'online' || command === 'add', dev, backend, key: `${backend.split('/').slice(-2).join('.')}.${typeIf}` };
}

/** The invocation's options with the backend's `keys` laid over them (cli/precedence.ts). */
export function withXenstore(ctx: VifContext, xs: ReadonlyMap<string, string>, keys: readonly string[], onInvalid?: (message: string) => void): Options {
  return overXenstore(ctx.spec, ctx.inv, xs, keys, onInvalid);
}

/**
 * How a vif hook's entry (hooks/<hook>.ts) makes its typed request, as the network-* entries do
 * theirs: the xenstore keys that win over argv, and the typed read of the options so laid.
 */
export interface VifRequestOf<Req> {
  xenstoreKeys: readonly string[];
  toRequest(o: Options, call: VifCall): Req;
}

/** What every vif hook's request has, read from the options as the entries read them. */
export function vifRequest(o: Options, call: VifCall): { command: VifCommand; typeIf: TypeIf; dev: string; ip: string[]; vifname: string | undefined; mtu: number | undefined; antispoof: boolean } {
  return { command: call.command, typeIf: call.typeIf, dev: call.dev, ip: o.list('ip') ?? [], vifname: o.text('vifname'), mtu: o.int('mtu'), antispoof: o.flag('antispoof') !== false };
}

/** The request of this call: defaults < config < env < argv < xenstore, read by type. */
export function requestOf<Req>(ctx: VifContext, asked: VifRequestOf<Req>, call: VifCall, onInvalid?: (message: string) => void): Req {
  return asked.toRequest(withXenstore(ctx, call.xs, asked.xenstoreKeys, onInvalid), call);
}

/**
 * Success, in one transaction, for a PV vif: the frontend's mtu and `connected`. An emulated NIC
 * (tap) writes neither, as the originals do (set_mtu writes the frontend only for type_if=vif,
 * and libxl waits for no hotplug-status there).
 */
export function reportSuccess(call: VifCall, mtu: number): Command[] {
  if (call.typeIf !== 'vif') return [];
  return [writeCommand([[`${frontendPathOf(call.backend, call.xs)}/mtu`, String(mtu)], [`${call.backend}/hotplug-status`, 'connected']])];
}

/**
 * The layout's online plan with the report last: `hotplug-status connected` is written only once
 * everything else is in place, and a failure of the write itself rolls back the rest. The vif's
 * own xenstore nodes: no lock (Step.unlocked).
 */
export function withReport(plan: Plan, call: VifCall, mtu: number): Plan {
  const report = reportSuccess(call, mtu);
  return report.length ? { steps: [...plan.steps, unlocked(step('report', 'report to xenstore', report, []))] } : plan;
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

/**
 * Xen 4.2–4.4 under xl: udev runs the vif scripts too (UDEV_CALL=1), after libxl ran them. libxl
 * writes `libxl/disable_udev` (relative: the home of the domain the backend runs in) to say it
 * runs them itself, and xen-hotplug-common.sh then exits 0 before anything else. Any failure to
 * read it counts as "not there", as `xenstore-read ... >/dev/null 2>&1` does.
 */
async function udevCallDisabled(env: NodeJS.ProcessEnv): Promise<boolean> {
  if (!env.UDEV_CALL) return false;
  try {
    return (await readAsCaller('libxl/disable_udev')) !== undefined;
  } catch {
    return false;
  }
}

/** How long online waits for its device to appear (DEVICE_WAIT_MS; tests may shorten it). */
export const DEVICE_WAIT_MS = 5000;

/**
 * A driver domain's netback (Qubes issue 4446) may run the hook before the device is there:
 * wait for it, bounded, then fail with a hotplug-error that says so. The device may already
 * carry its vifname (online run again), which counts as there.
 */
async function awaitDevice(ctx: VifContext, call: VifCall): Promise<void> {
  const vifname = (call.xs.get('vifname')?.trim() || optionsOf(ctx.inv).text('vifname')) ?? undefined;
  const names = [call.dev, ...(vifname ? [call.typeIf === 'tap' ? `${vifname}-emu` : vifname] : [])];
  const waitMs = Number(ctx.env.XEN_NETHOOKS_DEVICE_WAIT_MS) || DEVICE_WAIT_MS;
  const started = Date.now();
  if (await waitForDevice(names, waitMs)) {
    const waited = Date.now() - started;
    if (waited >= 50) ctx.out.log.info({ dev: call.dev, waitedMs: waited }, 'device appeared');
    return;
  }
  throw new PlanError(`device ${call.dev} does not exist: waited ${waitMs / 1000} s for netback to create it (the guest's backend is gone, netback is not loaded in the backend domain, or vif= names the wrong device)`);
}

/**
 * An earlier online of this vif left its record (runVifHook writes it before changing anything):
 * it was killed half-way (libxl's SIGKILL at its timeout), or ran twice with no offline between
 * (udev and libxl both calling). Its offline plan takes out what it set up, so that this online
 * starts from a clean slate instead of adding every rule a second time.
 */
async function clearLeftover<R>(ctx: VifContext, layout: VifLayout<R>, call: VifCall, store: StateStore<R>, holder: Holder): Promise<void> {
  const { out, env } = ctx;
  let record: R | undefined;
  try {
    record = store.read(call.key);
  } catch (e) {
    if (!(e instanceof BadRecord)) throw e;
    out.say(`warning: ${e.message}; replaced by this online's`);
    out.log.warn({ file: e.path, problem: e.problem }, 'leftover record cannot be trusted');
    return;
  }
  if (record === undefined) return;
  const m = `an earlier online of ${call.dev} left its record ${store.path(call.key)} (killed half-way, or no offline came): taking out what it set up first`;
  out.say(`warning: ${m}`);
  out.log.warn({ file: store.path(call.key) }, m);
  await withLock('iptables', env, async () => {
    const off = await layout.offline(call, record);
    // Best effort, step by step, never rolled back: the earlier online got only part-way, so
    // some of its pieces are not there to remove, and "undoing" a removal would put them back.
    for (const s of off.plan.steps) {
      try {
        await execute({ steps: [{ ...s, undo: [] }] }, { log: out.log, say: out.say });
      } catch (e) {
        out.log.info({ step: s.id, error: (e as Error).message }, 'leftover: nothing to remove here');
      }
    }
    store.remove(call.key);
  }, holder, out.log);
}

export async function runVifHook<R>(ctx: VifContext, layout: VifLayout<R>): Promise<number> {
  const { env, out, flags } = ctx;
  if (await udevCallDisabled(env)) {
    out.log.info({ command: ctx.inv.command, vif: env.vif, INTERFACE: env.INTERFACE }, 'called by udev (UDEV_CALL) while libxl/disable_udev is set: libxl runs this hook itself; nothing to do');
    return 0;
  }
  const where = locate(ctx, await domainHome(env));
  if (!where) {
    out.log.info({ command: ctx.inv.command, typeIf: ctx.inv.options.get('type_if') }, 'nothing to do for this type_if');
    return 0;
  }
  const store = layout.records(env);
  let xs = new Map<string, string>();
  try {
    xs = await readDir(where.backend);
  } catch (e) {
    // offline often runs after libxl removed the backend; the state record knows the rest.
    if (where.up || !(e instanceof XenstoreError)) throw e;
  }
  const call: VifCall = { ...where, xs };
  const holder = { hook: ctx.spec.name, what: `${call.command} ${call.dev}` };
  const vars = (dev: string, more: Record<string, string>) =>
    // XENBUS_PATH as the originals give it to their hooks: libxl's own (relative) for a vif.
    ({ command: call.command, dev, XENBUS_PATH: (call.typeIf === 'vif' && env.XENBUS_PATH) || call.backend, vif: call.dev, type_if: call.typeIf, bridge: '', ...more });

  if (!call.up) {
    // offline must take out whatever online put in, and exit 0 (libxl ignores offline failures,
    // so a failure here would strand the guard for good): a record that cannot be trusted is
    // reported, naming its file, and the layout removes by the device's names instead.
    let record: R | undefined;
    try {
      record = store.read(call.key);
    } catch (e) {
      if (!(e instanceof BadRecord)) throw e;
      const m = `${e.message}; removing ${call.dev}'s guard and port by their names instead (both firewall backends), then the record`;
      out.say(`warning: ${m}`);
      out.log.warn({ file: e.path, problem: e.problem }, m);
    }
    if (flags.dryRun) {
      const off = await layout.offline(call, record);
      printPlan(`${call.command} ${off.dev}`, off.plan, flags, { command: call.command, dev: off.dev });
      return 0;
    }
    // Planned under the lock too: a plan may delete rules by the handles its observation saw.
    // The executor lets it go once the firewall steps are done (Step.unlocked: the port's own
    // teardown needs no lock).
    const lock = stepLock('iptables', env, holder, out.log);
    let locked = true;
    try {
      await lock.claim();
    } catch (e) {
      if (!(e instanceof LockTimeout || e instanceof UnsafePath)) throw e;
      // Rules stranded for good are worse than a removal that races another script: a handle
      // that changed meanwhile fails its nft transaction whole, and the restores by rule text
      // take over.
      const m = `${e.message}; removing without the lock`;
      out.say(`warning: ${m}`);
      out.log.error({}, m);
      locked = false;
    }
    let off: Offline;
    try {
      off = await layout.offline(call, record);
      try {
        await execute(off.plan, { log: out.log, say: out.say, ...(locked ? { lock } : {}) });
      } catch (e) {
        // libxl ignores failures on remove; leave a trace and carry on, as the originals do.
        out.say(`warning: ${(e as Error).message}`);
        out.log.error({ error: (e as Error).message }, `${call.command}: removal incomplete`);
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
    // ip observes the device, flock takes Xen's lock: both before anything else.
    if (!flags.dryRun) requireTools(['ip', 'flock'], env, `${ctx.spec.name} ${call.command}`);
    await awaitDevice(ctx, call);
    if (!layout.plansLeftovers && !flags.dryRun) await clearLeftover(ctx, layout, call, store, holder);
    const planned = await layout.online(call);
    const on = { ...planned, plan: withReport(planned.plan, call, planned.mtu) };
    // What this plan runs, for the backend and options chosen: all there before any of it runs.
    if (!flags.dryRun) requireTools(planPrograms(on.plan), env, `${ctx.spec.name} ${call.command} (${on.title})`);
    for (const w of on.warnings) {
      out.say(`warning: ${w}`);
      out.log.warn({ dev: on.dev }, w); // the hotplug log is where an operator looks later
    }
    if (flags.dryRun) {
      for (const n of on.notes ?? []) out.say(n);
      printPlan(on.title, on.plan, flags, { command: call.command, record: on.record });
      return 0;
    }
    out.log.info({ record: on.record }, call.command);
    // The `iptables` lock is held only around the steps that change the firewall (Step.unlocked
    // marks the others; the executor lets it go after the last one). It is taken before the
    // record goes down, so that a lock that cannot be had (a planted link, a time-out) leaves
    // nothing behind. The record goes down before anything changes: a run killed half-way
    // (libxl's SIGKILL after its timeout, a crash) leaves it, so the next online removes what
    // this one put in before adding it again (no rule twice), and an offline knows what to take out.
    const lock = stepLock('iptables', env, holder, out.log);
    try {
      await lock.claim();
      store.write(call.key, on.record);
    } catch (e) {
      lock.release();
      throw e;
    }
    try {
      await execute(on.plan, { log: out.log, say: out.say, fault: env.XEN_NETHOOKS_FAULT, lock });
    } catch (e) {
      // Rolled back: nothing of this online is left, unless an undo failed; then the record
      // stays, so that offline still takes out what is left.
      if (!(e instanceof PlanFailed) || e.rollbackFailures.length === 0) store.remove(call.key);
      throw e;
    }
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
