/**
 * network-route's commands: the impure shell around lib/plans/network-route.ts. start observes the host,
 * plans, executes and records the steps; stop takes exactly those back.
 */
import { observeHost } from '../net/host.ts';
import { devSysctl, readSysctl } from '../net/sysctl.ts';
import { networkRouteSysctls, planNetworkRouteStart, type NetworkRouteRequest, type RouteRecord } from '../plans/network-route.ts';
import { IP_FORWARD, IPV6_FORWARDING, resolveUplink } from '../plans/routing.ts';
import { planRelease } from '../plans/shared-settings.ts';
import { byNetdev, pickRecord, routeRecords, vifRouteRecords } from '../records.ts';
import { FORWARDING_LOCK, stopForwarding } from './shared-forwarding.ts';
import { runNetworkStart, type Context } from './network-shell.ts';

export type { Context };

export function start(req: NetworkRouteRequest, ctx: Context): Promise<number> {
  return runNetworkStart(ctx, {
    hook: 'network-route',
    lock: FORWARDING_LOCK,
    store: routeRecords(ctx.env),
    key: (host) => resolveUplink(req, host),
    already: (existing) => `routing over ${existing.netdev} is already started (since ${existing.startedAt}); nothing to do`,
    plan(host, netdev) {
      const sysctls = Object.fromEntries(networkRouteSysctls(netdev).map((k) => [k, readSysctl(k)]));
      const { plan, ipv6 } = planNetworkRouteStart(req, { host, sysctls });
      return { plan, title: `start routing over ${netdev}`, facts: { netdev, ipv6 }, ipv6 };
    },
    record: (netdev, steps, p): RouteRecord => ({ version: 1, hook: 'network-route', key: netdev, netdev, ipv6: p.ipv6, startedAt: new Date().toISOString(), steps }),
    done: (r) => `started: dom0 routes for its guests over ${r.netdev} (IPv4${r.ipv6 ? ' and IPv6' : ''})`,
  });
}

export function stop(req: NetworkRouteRequest, ctx: Context): Promise<number> {
  return stopForwarding(ctx, {
    hook: 'network-route',
    store: routeRecords(ctx.env),
    netdev: req.netdev,
    notStarted: (all) => `${req.netdev ?? 'routing'} was not started by network-route here; nothing to do` +
      (all.size ? ` (started over: ${[...all.keys()].join(', ')}; name one with netdev=)` : ''),
    title: (r) => `stop routing over ${r.netdev}`,
    release: (record, others) => planRelease(record, others),
    done: (r, heirs) => `stopped: the settings of ${r.netdev} and forwarding are as before start` +
      (heirs.length ? ` (forwarding stays on for ${heirs.map((h) => `${h.hook} ${h.key}`).join(', ')})` : ''),
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
