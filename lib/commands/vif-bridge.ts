/**
 * vif-bridge's commands: read the backend's xenstore directory, plan, execute under Xen's
 * `iptables` lock, and report to xenstore the way libxl and xend wait for it.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Flags, Invocation } from '../cli/args.ts';
import type { HookSpec } from '../cli/spec.ts';
import { InvalidValue, parseValue } from '../cli/values.ts';
import { run } from '../exec.ts';
import { execute, renderPlan } from '../executor.ts';
import { chainName, type FirewallBackend } from '../firewall/guard.ts';
import { withLock } from '../lock.ts';
import type { Output } from '../log.ts';
import { observeHost } from '../net/host.ts';
import { PlanError, type Plan } from '../plan.ts';
import { planOffline, planOnline, targetName, type LeftoverGuard, type TypeIf, type VifCommand, type VifRequest } from '../plans/vif-bridge.ts';
import { StateStore } from '../state.ts';
import { absolutePath, frontendPathOf, readDir, tapBackendPath, writeCommand, XenstoreError } from '../xenstore.ts';

export const HOOK_DIR = '/etc/xen/scripts/vif-post.d';

/** Keys read from the backend directory; they override argv and the environment (SPEC §1). */
const XENSTORE_KEYS = ['bridge', 'ip', 'mac', 'mtu', 'vifname'] as const;

interface VifRecord {
  version: 1;
  dev: string;
  bridge: string;
  firewall: FirewallBackend;
  notrack: boolean;
  onlineAt: string;
}

export interface Context {
  spec: HookSpec;
  inv: Invocation;
  env: NodeJS.ProcessEnv;
  flags: Flags;
  out: Output;
}

/** A failure to report through xenstore (hotplug-error) as well as stderr. */
class VifFailure extends Error {}


/**
 * argv/env overridden by xenstore. A malformed xenstore value fails the request, unless
 * `skipInvalid` is given (offline: what online set up must come out whatever xenstore says now);
 * then the key is left out and reported to it.
 */
function requestFrom(ctx: Context, command: VifCommand, typeIf: TypeIf, dev: string, xs: ReadonlyMap<string, string>, skipInvalid?: (message: string) => void): VifRequest {
  const o = new Map(ctx.inv.options);
  for (const key of XENSTORE_KEYS) {
    const raw = xs.get(key);
    if (raw === undefined || raw.trim() === '') continue;
    const opt = ctx.spec.options.find((x) => x.key === key);
    if (!opt) continue;
    try {
      o.set(key, parseValue(opt.type, raw.trim()));
    } catch (e) {
      if (!(e instanceof InvalidValue)) throw e;
      const message = `invalid xenstore ${key}=${JSON.stringify(raw)}: expected ${e.message}`;
      if (!skipInvalid) throw new VifFailure(message);
      skipInvalid(`${message} (ignored)`);
    }
  }
  const ip = (o.get('ip') as string[] | undefined) ?? [];
  return {
    command,
    typeIf,
    dev,
    bridge: o.get('bridge') as string | undefined,
    ip,
    mac: o.get('mac') as string | undefined,
    mtu: o.get('mtu') as number | undefined,
    vifname: o.get('vifname') as string | undefined,
    firewall: (o.get('firewall') as FirewallBackend | undefined) ?? 'iptables',
    notrack: o.get('notrack') !== false,
    antispoof: o.get('antispoof') !== false,
  };
}

/** Scripts in vif-post.d are bash fragments that the originals source; run them the same way. */
async function runPostHooks(ctx: Context, vars: Record<string, string>): Promise<void> {
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
 * The guard an earlier online of this vif left: the state record's, else (a run killed before it
 * wrote one, an offline that failed) the iptables backend's ebtables chain, found by name. The
 * nft backend needs no probe: its transaction replaces a vif's chain and map entry in place.
 */
async function leftoverGuard(record: VifRecord | undefined, req: VifRequest): Promise<LeftoverGuard | undefined> {
  if (record) return { dev: record.dev, firewall: record.firewall, notrack: record.notrack };
  if (req.firewall !== 'iptables') return undefined;
  const dev = targetName(req);
  const r = await run({ argv: ['ebtables', '-L', chainName(dev)] });
  return r.exitCode === 0 ? { dev, firewall: 'iptables', notrack: true } : undefined;
}

function printPlan(title: string, plan: Plan, flags: Flags, extra: Record<string, unknown>): void {
  if (flags.json) process.stdout.write(JSON.stringify({ dryRun: true, ...extra, steps: plan.steps }, null, 2) + '\n');
  else process.stdout.write(`${title} (dry run: nothing is changed)\n${renderPlan(plan)}`);
}

export async function vifBridge(ctx: Context): Promise<number> {
  const { env, out, inv } = ctx;
  const command = inv.command as VifCommand;
  const typeIf = ((inv.options.get('type_if') as string | undefined) ?? 'vif') as TypeIf;
  // SPEC §1: online/offline concern PV vifs only, add/remove emulated (tap) NICs only.
  const wanted: TypeIf = command === 'online' || command === 'offline' ? 'vif' : 'tap';
  if (typeIf !== wanted) {
    out.log.info({ command, typeIf }, 'nothing to do for this type_if');
    return 0;
  }
  const dev = typeIf === 'vif' ? env.vif : env.INTERFACE;
  if (!dev) throw new PlanError(`${typeIf === 'vif' ? 'vif' : 'INTERFACE'} is not set in the environment: vif-bridge is run by libxl/udev with it; by hand, e.g. vif=vif1.0 XENBUS_PATH=backend/vif/1/0 vif-bridge online`);
  const backend = absolutePath(typeIf === 'vif' ? (env.XENBUS_PATH ?? '') || fail('XENBUS_PATH is not set in the environment') : tapBackendPath(dev));
  const stateKey = `${backend.split('/').slice(-2).join('.')}.${typeIf}`;
  const store = new StateStore<VifRecord>(env, 'vif-bridge');
  const up = command === 'online' || command === 'add';

  let xs: Map<string, string> = new Map();
  try {
    xs = await readDir(backend);
  } catch (e) {
    // offline often runs after libxl removed the backend; the state record knows the rest.
    if (up || !(e instanceof XenstoreError)) throw e;
  }

  if (!up) {
    const record = store.read(stateKey);
    const req = requestFrom(ctx, command, typeIf, dev, xs, (m) => out.say(`warning: ${m}`));
    const name = record?.dev ?? targetName(req);
    const plan = planOffline(name, record?.firewall ?? req.firewall, record?.notrack ?? req.notrack);
    if (ctx.flags.dryRun) {
      printPlan(`${command} ${name}`, plan, ctx.flags, { command, dev: name });
      return 0;
    }
    try {
      await withLock('iptables', env, () => execute(plan, { log: out.log, say: out.say }));
    } catch (e) {
      // libxl ignores failures on remove; leave a trace and carry on, as the original does.
      out.say(`warning: ${(e as Error).message}`);
    }
    store.remove(stateKey);
    await runPostHooks(ctx, { command, dev: name, bridge: record?.bridge ?? req.bridge ?? '', ip: req.ip.join(' '), XENBUS_PATH: backend, vif: dev, type_if: typeIf });
    out.say(`${command} ${name}: detached`);
    return 0;
  }

  try {
    const req = requestFrom(ctx, command, typeIf, dev, xs);
    const host = await observeHost();
    const frontend = frontendPathOf(backend, xs);
    const leftover = await leftoverGuard(store.read(stateKey), req);
    const online = planOnline(req, host, (mtu) =>
      [writeCommand([[`${frontend}/mtu`, String(mtu)], ...(typeIf === 'vif' ? [[`${backend}/hotplug-status`, 'connected'] as [string, string]] : [])])],
    leftover);
    for (const w of online.warnings) {
      out.say(`warning: ${w}`);
      out.log.warn({ dev: online.dev }, w); // the hotplug log is where an operator looks later
    }
    if (ctx.flags.dryRun) {
      printPlan(`${command} ${online.dev} on ${online.bridge}`, online.plan, ctx.flags, { command, dev: online.dev, bridge: online.bridge, mtu: online.mtu });
      return 0;
    }
    out.log.info({ dev: online.dev, bridge: online.bridge, mtu: online.mtu, ip: req.ip }, command);
    await withLock('iptables', env, () => execute(online.plan, { log: out.log, say: out.say, fault: env.XEN_NETHOOKS_FAULT }));
    store.write(stateKey, { version: 1, dev: online.dev, bridge: online.bridge, firewall: req.firewall, notrack: req.notrack, onlineAt: new Date().toISOString() });
    await runPostHooks(ctx, { command, dev: online.dev, bridge: online.bridge, ip: req.ip.join(' '), XENBUS_PATH: backend, vif: dev, type_if: typeIf });
    out.say(`${command} ${online.dev}: on ${online.bridge}, MTU ${online.mtu}` + (online.guard ? `, guarded (${req.firewall})` : ', no firewall'));
    return 0;
  } catch (e) {
    const message = (e as Error).message;
    out.log.error({ error: message }, `${command} failed`);
    if (!ctx.flags.dryRun) {
      const r = await run(writeCommand([[`${backend}/hotplug-error`, message], [`${backend}/hotplug-status`, 'error']]));
      if (r.exitCode !== 0) out.say(`warning: could not report the error to xenstore: ${r.stderr.trim()}`);
    }
    throw e;
  }
}

function fail(message: string): never {
  throw new PlanError(message);
}
