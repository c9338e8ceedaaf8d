/**
 * network-bridge's commands: the impure shell around lib/plans/bridge.ts. Each one observes the
 * host, asks the planner, and hands the plan to the executor under Xen's `network-bridge` lock.
 */
import { existsSync } from 'node:fs';
import type { Flags } from '../cli/args.ts';
import { execute } from '../executor.ts';
import { reversePlan, type Step } from '../plan.ts';
import { readPolicy } from '../firewall/iptables.ts';
import { withLock } from '../lock.ts';
import type { Output } from '../log.ts';
import { cidrOf, isKernelGenerated } from '../net/address.ts';
import { defaultRouteDevice, findLink, observeHost, portsOf, userRoutes, type HostState } from '../net/host.ts';
import { isBridge } from '../net/link.ts';
import { describeRoute } from '../net/route.ts';
import { readSysctl } from '../net/sysctl.ts';
import {
  BRIDGE_NF_SYSCTLS,
  planRebuild,
  planStart,
  planStop,
  resolveNames,
  type BridgeRecord,
  type BridgeRequest,
} from '../plans/bridge.ts';
import { StateStore } from '../state.ts';
import { planPrograms, requireTools } from '../tools.ts';
import { printPlan } from './plan-output.ts';

export interface Context {
  env: NodeJS.ProcessEnv;
  flags: Flags;
  out: Output;
}

const records = (env: NodeJS.ProcessEnv) => new StateStore<BridgeRecord>(env, 'network-bridge');

export async function start(req: BridgeRequest, ctx: Context): Promise<number> {
  const { out, env, flags } = ctx;
  const store = records(env);
  if (!flags.dryRun) requireTools(['ip', 'flock', ...(req.antispoof ? ['iptables'] : [])], env, 'network-bridge start');
  return withLock('network-bridge', env, async () => {
    let host = await observeHost();
    const names = resolveNames(req, host);
    const existing = req.bridge === 'null' ? undefined : store.read(names.bridge);
    const rebuild = existing ? planRebuild(existing, host) : undefined;
    if (existing && !rebuild) {
      out.say(`bridge ${names.bridge} is already started (since ${existing.startedAt}); nothing to do`);
      return 0;
    }
    if (rebuild) {
      // The record says started, the host says otherwise: say what was found, then build again.
      out.say(`${rebuild.found}: building it again`);
      out.log.warn({ bridge: names.bridge, found: rebuild.found, reset: rebuild.reset.steps.map((s) => s.id) }, 'rebuild');
      if (flags.dryRun) {
        printPlan(`put back what went with bridge ${names.bridge} (then start is planned as usual)`, rebuild.reset, flags, { command: 'start', rebuild: true });
        return 0;
      }
      requireTools(planPrograms(rebuild.reset), env, `network-bridge start (rebuilding ${names.bridge})`);
      await execute(rebuild.reset, { log: out.log, say: out.say });
      host = await observeHost();
    }
    // What went with the bridge is back: a failure from here on takes it away again, so the host
    // ends as this start found it.
    const undoReset = async () => {
      if (rebuild?.reset.steps.length) await execute(reversePlan(rebuild.reset.steps), { log: out.log, say: out.say });
    };
    const keep = rebuild?.keep ?? [];
    const plannedReq = keep.length ? { ...req, antispoof: false } : req;
    let decision: ReturnType<typeof planStart>;
    try {
      decision = planStart(plannedReq, {
        host,
        brNetfilter: existsSync('/proc/sys/net/bridge'),
        sysctls: Object.fromEntries(BRIDGE_NF_SYSCTLS.map((k) => [k, readSysctl(k)])),
        forwardPolicy: plannedReq.antispoof ? await readPolicy('FORWARD') : undefined,
      });
    } catch (e) {
      await undoReset();
      throw e;
    }
    if (decision.kind === 'noop') {
      await undoReset();
      out.say(decision.message);
      return 0;
    }
    for (const w of decision.warnings) out.say(`warning: ${w}`);
    const { bridge, netdev, pdev } = decision.names;
    const title = `start bridge ${bridge}` + (netdev ? ` over ${pdev}` : ' (host-only)');
    if (flags.dryRun) {
      printPlan(title, decision.plan, flags, { command: 'start', ...decision.names });
      return 0;
    }
    out.log.info({ bridge, netdev, pdev, steps: decision.plan.steps.length }, 'start');
    let done: Step[];
    try {
      requireTools(planPrograms(decision.plan), env, `network-bridge start (${title})`);
      done = await execute(decision.plan, { log: out.log, say: out.say, fault: env.XEN_NETHOOKS_FAULT });
    } catch (e) {
      await undoReset();
      throw e;
    }
    // A rebuild's record replaces the stale one; what outlived the bridge (antispoof) stays in
    // it, after the new steps, so that stop takes it back as the first start's stop would have.
    store.write(bridge, { version: 1, bridge, netdev, pdev, vifnum: req.vifnum ?? 0, startedAt: new Date().toISOString(), steps: [...done, ...keep] });
    out.say(`started ${bridge}` + (netdev ? ` with port ${pdev}` : ' (host-only)') + ` in ${done.length} steps`);
    return 0;
  });
}

/** Which bridge a bare `stop`/`status` means: the one named, else the one over netdev, else the only one. */
function pickRecord(req: BridgeRequest, host: HostState, all: Map<string, BridgeRecord>): BridgeRecord | undefined {
  if (req.bridge !== undefined) return all.get(req.bridge);
  if (req.netdev !== undefined) return [...all.values()].find((r) => (r.netdev ?? 'none') === req.netdev);
  const dev = defaultRouteDevice(host);
  const byDefault = [...all.values()].find((r) => r.bridge === dev || r.netdev === dev);
  if (byDefault) return byDefault;
  return all.size === 1 ? [...all.values()][0] : undefined;
}

export async function stop(req: BridgeRequest, ctx: Context): Promise<number> {
  const { out, env, flags } = ctx;
  const store = records(env);
  return withLock('network-bridge', env, async () => {
    if (req.bridge === 'null') {
      out.say('bridge=null: nothing to do');
      return 0;
    }
    const all = store.all();
    const host = await observeHost();
    const record = pickRecord(req, host, all);
    if (!record) {
      const which = req.bridge ?? req.netdev ?? 'the default bridge';
      out.say(`${which} was not started by network-bridge here; nothing to do` +
        (all.size ? ` (started: ${[...all.keys()].join(', ')}; name one with bridge=)` : ''));
      return 0;
    }
    const others = [...all.values()].filter((r) => r.bridge !== record.bridge);
    const { plan, handOver } = planStop(record, others, host);
    if (flags.dryRun) {
      printPlan(`stop bridge ${record.bridge}`, plan, flags, { command: 'stop', bridge: record.bridge });
      return 0;
    }
    out.log.info({ bridge: record.bridge, steps: plan.steps.length }, 'stop');
    await execute(plan, { log: out.log, say: out.say, fault: env.XEN_NETHOOKS_FAULT });
    for (const heir of handOver) store.write(heir.bridge, heir);
    store.remove(record.bridge);
    out.say(`stopped ${record.bridge}: ${record.netdev ?? 'host-only bridge'} is as it was before start`);
    return 0;
  });
}

export async function status(req: BridgeRequest, ctx: Context): Promise<number> {
  const host = await observeHost();
  const all = records(ctx.env).all();
  const record = pickRecord(req, host, all);
  const name = record?.bridge ?? req.bridge ?? resolveNames(req, host).bridge;
  const link = findLink(host, name);
  const present = link !== undefined && isBridge(link);
  const view = {
    bridge: name,
    present,
    startedByNetworkBridge: record !== undefined,
    startedAt: record?.startedAt,
    netdev: record?.netdev,
    pdev: record?.pdev,
    state: link?.operstate,
    mtu: link?.mtu,
    mac: link?.address,
    ports: present ? portsOf(host, name).map((l) => l.ifname) : [],
    addresses: (link?.addr_info ?? []).filter((a) => !isKernelGenerated(a)).map(cidrOf),
    routes: present ? [...userRoutes(host, name, 4), ...userRoutes(host, name, 6)].map(describeRoute) : [],
    otherBridges: [...all.keys()].filter((k) => k !== name),
  };
  if (ctx.flags.json) {
    process.stdout.write(JSON.stringify(view, null, 2) + '\n');
  } else if (!present) {
    process.stdout.write(`bridge ${name}: not present` + (view.otherBridges.length ? ` (started here: ${view.otherBridges.join(', ')})` : '') + '\n');
  } else {
    process.stdout.write(
      [
        `bridge ${name}: ${view.state ?? 'unknown'}, mtu ${view.mtu}, mac ${view.mac}` +
          (record ? `, started by network-bridge at ${record.startedAt}` : ', not started by network-bridge'),
        `  ports:     ${view.ports.join(' ') || '(none)'}`,
        `  addresses: ${view.addresses.join(' ') || '(none)'}`,
        `  routes:    ${view.routes.join('; ') || '(none)'}`,
      ].join('\n') + '\n',
    );
  }
  return present ? 0 : 3;
}
