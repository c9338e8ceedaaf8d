/**
 * network-bridge's commands: the impure shell around lib/plans/network-bridge.ts. Each one observes the
 * host, asks the planner, and hands the plan to the executor under Xen's `network-bridge` lock.
 */
import { existsSync } from 'node:fs';
import { execute } from '../executor.ts';
import { reversePlan, type Step } from '../plan.ts';
import { readPolicy } from '../firewall/iptables.ts';
import { withLock } from '../lock.ts';
import { cidrOf, isKernelGenerated } from '../net/address.ts';
import { findLink, observeHost, portsOf, userRoutes } from '../net/host.ts';
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
} from '../plans/network-bridge.ts';
import { bridgeRecords, pickRecord, type RecordChoice } from '../records.ts';
import { BadRecord } from '../state.ts';
import { planPrograms, requireTools } from '../tools.ts';
import { printPlan } from '../dry-run.ts';
import { runNetworkStop, type Context } from './network-shell.ts';

export type { Context };

/**
 * A record of a start that cannot be trusted: network-bridge does not guess what that start
 * changed; the error says what is wrong and how to finish by hand. Other bridges are unaffected.
 */
export class UntrustedRecord extends Error {
  constructor(bad: BadRecord) {
    const b = bad.key;
    super(
      `${bad.message}. network-bridge will not guess what start did to ${b}. To clean up by hand: see what is there ` +
        `(ip -d link show ${b}; ip addr show; ip route show; iptables-save), move the uplink's addresses and routes from ${b} ` +
        `back to the physical device, delete the bridge if start made it (ip link del ${b}), then remove the record ` +
        `(rm ${bad.path}); start and stop of ${b} work again after that`,
    );
    this.name = 'UntrustedRecord';
  }
}


export async function start(req: BridgeRequest, ctx: Context): Promise<number> {
  const { out, env, flags } = ctx;
  const store = bridgeRecords(env);
  if (!flags.dryRun) requireTools(['ip', 'flock', ...(req.antispoof ? ['iptables'] : [])], env, 'network-bridge start');
  return withLock('network-bridge', env, async () => {
    let host = await observeHost();
    const names = resolveNames(req, host);
    let existing: BridgeRecord | undefined;
    try {
      existing = req.bridge === 'null' ? undefined : store.read(names.bridge);
    } catch (e) {
      throw e instanceof BadRecord ? new UntrustedRecord(e) : e;
    }
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
  }, { hook: 'network-bridge', what: `start ${req.bridge ?? req.netdev ?? ''}` }, out.log);
}

/** Which bridge a bare `stop`/`status` means (records.ts pickRecord): bridge=, else netdev=, else the default route's. */
const asked = (req: BridgeRequest): RecordChoice<BridgeRecord> => ({
  key: req.bridge,
  netdev: req.netdev,
  netdevOf: (r) => r.netdev ?? 'none',
  devicesOf: (_key, r) => [r.bridge, ...(r.netdev !== null ? [r.netdev] : [])],
});

export function stop(req: BridgeRequest, ctx: Context): Promise<number> {
  const { out, env } = ctx;
  if (req.bridge === 'null') {
    out.say('bridge=null: nothing to do');
    return Promise.resolve(0);
  }
  const store = bridgeRecords(env);
  return runNetworkStop<BridgeRecord, BridgeRecord>(ctx, {
    hook: 'network-bridge',
    lock: 'network-bridge',
    holder: { hook: 'network-bridge', what: `stop ${req.bridge ?? req.netdev ?? ''}` },
    store,
    choice: asked(req),
    untrusted: (b) => new UntrustedRecord(b),
    notStarted: (all, bad) => `${req.bridge ?? req.netdev ?? 'the default bridge'} was not started by network-bridge here; nothing to do` +
      (all.size ? ` (started: ${[...all.keys()].join(', ')}; name one with bridge=)` : '') +
      (bad.length ? ` (records that cannot be trusted: ${bad.map((b) => b.path).join(', ')})` : ''),
    othersBad(record, bad) {
      for (const b of bad) {
        // Not this bridge's: stop goes on, but a host-wide setting that bridge shares is not handed to it.
        out.say(`warning: ${b.message} (not ${record.bridge}'s: ignored here)`);
        out.log.warn({ file: b.path, problem: b.problem }, 'record of another bridge cannot be trusted');
      }
    },
    plan(record, all, host) {
      const others = [...all.values()].filter((r) => r.bridge !== record.bridge);
      const { plan, handOver } = planStop(record, others, host);
      return { plan, title: `stop bridge ${record.bridge}`, facts: { bridge: record.bridge }, handOver };
    },
    saveHandOver: (heirs) => {
      for (const heir of heirs) store.write(heir.bridge, heir);
    },
    keyOf: (r) => r.bridge,
    done: (r) => `stopped ${r.bridge}: ${r.netdev ?? 'host-only bridge'} is as it was before start`,
  });
}

export async function status(req: BridgeRequest, ctx: Context): Promise<number> {
  const host = await observeHost();
  const bad: BadRecord[] = [];
  const all = bridgeRecords(ctx.env).all((b) => bad.push(b));
  const record = pickRecord(all, asked(req), host);
  const name = record?.bridge ?? req.bridge ?? resolveNames(req, host).bridge;
  const badRecord = record ? undefined : bad.find((b) => b.key === name);
  const link = findLink(host, name);
  const present = link !== undefined && isBridge(link);
  const view = {
    bridge: name,
    present,
    startedByNetworkBridge: record !== undefined,
    recordProblem: badRecord?.message,
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
  if (badRecord) process.stderr.write(`warning: ${new UntrustedRecord(badRecord).message}\n`);
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
