/**
 * network-route's commands: the impure shell around lib/plans/network-route.ts. start observes the host,
 * plans, executes and records the steps; stop takes exactly those back.
 */
import type { Flags } from '../cli/args.ts';
import { execute } from '../executor.ts';
import { withLock } from '../lock.ts';
import { planPrograms, requireTools } from '../tools.ts';
import type { Output } from '../log.ts';
import { observeHost } from '../net/host.ts';
import { devSysctl, readSysctl } from '../net/sysctl.ts';
import { networkRouteSysctls, planNetworkRouteStart, type NetworkRouteRequest } from '../plans/network-route.ts';
import { IP_FORWARD, IPV6_FORWARDING, resolveUplink } from '../plans/routing.ts';
import { planRelease } from '../plans/shared-settings.ts';
import { byNetdev, pickForStop, pickRecord, routeRecords, vifRouteRecords } from '../records.ts';
import type { BadRecord } from '../state.ts';
import { allStartRecords, FORWARDING_LOCK, keepSharedFor, saveHandOver, untrustedStart } from './shared-forwarding.ts';
import { printPlan } from './plan-output.ts';

export interface Context {
  env: NodeJS.ProcessEnv;
  flags: Flags;
  out: Output;
}

export async function start(req: NetworkRouteRequest, ctx: Context): Promise<number> {
  const { env, out, flags } = ctx;
  const store = routeRecords(env);
  if (!flags.dryRun) requireTools(['ip', 'flock'], env, 'network-route start');
  return withLock(FORWARDING_LOCK, env, async () => {
    const host = await observeHost();
    const netdev = resolveUplink(req, host);
    const existing = store.read(netdev);
    if (existing) {
      out.say(`routing over ${netdev} is already started (since ${existing.startedAt}); nothing to do`);
      return 0;
    }
    const sysctls = Object.fromEntries(networkRouteSysctls(netdev).map((k) => [k, readSysctl(k)]));
    const { plan, ipv6 } = planNetworkRouteStart(req, { host, sysctls });
    if (flags.dryRun) {
      printPlan(`start routing over ${netdev}`, plan, flags, { command: 'start', netdev, ipv6 });
      return 0;
    }
    out.log.info({ netdev, ipv6, steps: plan.steps.length }, 'start');
    requireTools(planPrograms(plan), env, 'network-route start');
    const steps = await execute(plan, { log: out.log, say: out.say, fault: env.XEN_NETHOOKS_FAULT });
    store.write(netdev, { version: 1, hook: 'network-route', key: netdev, netdev, ipv6, startedAt: new Date().toISOString(), steps });
    out.say(`started: dom0 routes for its guests over ${netdev} (IPv4${ipv6 ? ' and IPv6' : ''})`);
    return 0;
  });
}

export async function stop(req: NetworkRouteRequest, ctx: Context): Promise<number> {
  const { env, out, flags } = ctx;
  const store = routeRecords(env);
  return withLock(FORWARDING_LOCK, env, async () => {
    const mine: BadRecord[] = [];
    const all = store.all((b) => mine.push(b));
    const record = pickForStop(all, mine, byNetdev(req.netdev), await observeHost(), (b) => untrustedStart(b, 'network-route'));
    if (!record) {
      out.say(`${req.netdev ?? 'routing'} was not started by network-route here; nothing to do` +
        (all.size ? ` (started over: ${[...all.keys()].join(', ')}; name one with netdev=)` : ''));
      return 0;
    }
    const bad: BadRecord[] = [];
    const released = planRelease(record, allStartRecords(env, (b) => bad.push(b)));
    const { handOver } = released;
    const plan = keepSharedFor(released.plan, bad, out.say);
    if (flags.dryRun) {
      printPlan(`stop routing over ${record.netdev}`, plan, flags, { command: 'stop', netdev: record.netdev });
      return 0;
    }
    out.log.info({ netdev: record.netdev, steps: plan.steps.length }, 'stop');
    await execute(plan, { log: out.log, say: out.say, fault: env.XEN_NETHOOKS_FAULT });
    saveHandOver(env, handOver);
    store.remove(record.key);
    out.say(`stopped: the settings of ${record.netdev} and forwarding are as before start` +
      (handOver.length ? ` (forwarding stays on for ${handOver.map((h) => `${h.hook} ${h.key}`).join(', ')})` : ''));
    return 0;
  });
}

export async function status(req: NetworkRouteRequest, ctx: Context): Promise<number> {
  const host = await observeHost();
  const all = routeRecords(ctx.env).all();
  const record = pickRecord(all, byNetdev(req.netdev), host);
  const netdev = record?.netdev ?? resolveUplink(req, host);
  const guests = [...vifRouteRecords(ctx.env).all((b) => ctx.out.say(`warning: ${b.message}`)).values()].map((r) => ({
    dev: r.layout.dev,
    addresses: r.layout.routes.map((x) => x.dst),
  }));
  const view = {
    netdev,
    started: record !== undefined,
    startedAt: record?.startedAt,
    ipForward: readSysctl(IP_FORWARD),
    ipv6Forwarding: readSysctl(IPV6_FORWARDING),
    proxyArp: readSysctl(devSysctl(4, netdev, 'proxy_arp')),
    proxyNdp: readSysctl(devSysctl(6, netdev, 'proxy_ndp')),
    guests,
  };
  if (ctx.flags.json) {
    process.stdout.write(JSON.stringify(view, null, 2) + '\n');
  } else {
    process.stdout.write(
      [
        `routing over ${netdev}: ` + (record ? `started by network-route at ${record.startedAt}` : 'not started by network-route'),
        `  ip_forward=${view.ipForward ?? '-'} ipv6 forwarding=${view.ipv6Forwarding ?? '-'} proxy_arp=${view.proxyArp ?? '-'} proxy_ndp=${view.proxyNdp ?? '-'}`,
        `  guests:    ${guests.map((g) => `${g.dev} (${g.addresses.join(' ')})`).join(', ') || '(none)'}`,
      ].join('\n') + '\n',
    );
  }
  return record ? 0 : 3;
}
