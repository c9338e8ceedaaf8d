/** vif-route's layout for the vif hook shell (vif-hotplug.ts): observe, plan with lib/plans/vif-route.ts. */
import { existsSync } from 'node:fs';
import { observeSourceGuard } from '../firewall/source-guard.ts';
import { observeHost, type HostState } from '../net/host.ts';
import { devSysctl, readSysctl } from '../net/sysctl.ts';
import { IP_FORWARD, IPV6_FORWARDING, resolveUplink } from '../plans/routing.ts';
import { targetName } from '../plans/vif.ts';
import { planBlindOffline, planRoutedOffline, planVifRouteOnline, type VifRouteRequest } from '../plans/vif-route.ts';
import { routeRecords, vifRouteRecords, type VifRouteRecord } from '../records.ts';
import { guardRepair, guardStatus, routedGuardEntry, type GuardLayout } from './vif-guards.ts';
import { requestOf, runVifHook, withXenstore, type VifCall, type VifContext, type VifRequestOf } from './vif-hotplug.ts';

/** What the entry asks for: the request, with netdev as given (uplink() resolves it). */
export type VifRouteAsked = Omit<VifRouteRequest, 'netdev'> & { netdev?: string | undefined };

export type { VifRouteRecord };

/** The uplink: netdev= if given, else the one network-route started here, else the default route's. */
function uplink(ctx: VifContext, given: string | undefined, host: HostState): string {
  if (given) return given;
  const started = [...routeRecords(ctx.env).all().values()];
  if (started.length === 1 && started[0]) return started[0].netdev;
  return resolveUplink({}, host);
}

/** dom0 without IPv6: no IPv6 stack (ipv6.disable=1) or IPv6 turned off for every device. */
function ipv6Disabled(): boolean {
  return !existsSync('/proc/sys/net/ipv6') || readSysctl('net.ipv6.conf.all.disable_ipv6') === '1';
}

/** status/repair (vif-guards.ts): the guests' source guards. */
const VIF_ROUTE_GUARDS: GuardLayout<VifRouteRecord> = { name: 'vif-route', records: vifRouteRecords, entry: (r) => routedGuardEntry(r.layout) };

export function vifRoute(ctx: VifContext, asked: VifRequestOf<VifRouteAsked>): Promise<number> {
  if (ctx.inv.command === 'status') return guardStatus(ctx, VIF_ROUTE_GUARDS);
  if (ctx.inv.command === 'repair') return guardRepair(ctx, VIF_ROUTE_GUARDS);
  const store = vifRouteRecords(ctx.env);
  return runVifHook<VifRouteRecord>(ctx, {
    records: vifRouteRecords,
    async online(call: VifCall) {
      const given = requestOf(ctx, asked, call);
      const host = await observeHost();
      const req: VifRouteRequest = { ...given, netdev: uplink(ctx, given.netdev, host) };
      const on = planVifRouteOnline(req, {
        host,
        proxyArpWas: readSysctl(devSysctl(4, call.dev, 'proxy_arp')),
        ipForward: readSysctl(IP_FORWARD),
        ipv6Forwarding: readSysctl(IPV6_FORWARDING),
        ipv6Disabled: ipv6Disabled(),
      });
      const { layout } = on;
      return {
        plan: on.plan,
        mtu: on.mtu,
        record: { version: 1, layout, onlineAt: new Date().toISOString() },
        dev: layout.dev,
        title: `${call.command} ${layout.dev}: routed via ${req.netdev}`,
        summary: `${call.command} ${layout.dev}: routes to ${req.ip.join(' ')} via dom0's ${layout.local}` +
          (layout.guard ? ', sources guarded' : ', no antispoofing'),
        warnings: on.warnings,
        hookVars: { ip: req.ip.join(' '), netdev: req.netdev },
      };
    },
    async offline(call: VifCall, record: VifRouteRecord | undefined) {
      if (!record) {
        const o = withXenstore(ctx, call.xs, ['vifname'], (m) => ctx.out.say(`warning: ${m}`));
        const dev = targetName({ dev: call.dev, typeIf: call.typeIf, vifname: o.text('vifname') });
        return { plan: planBlindOffline(dev, await observeSourceGuard(ctx.env, dev)), dev, hookVars: { ip: '' } };
      }
      // An HVM guest's emulated and PV NICs share its addresses: leave what the other still needs.
      const others = [...store.all((b) => ctx.out.say(`warning: ${b.message} (its NDP proxies are not kept)`))].filter(([k]) => k !== call.key).flatMap(([, r]) => r.layout.ndpProxies.map((p) => p.addr));
      const { layout } = record;
      const seen = layout.guard ? await observeSourceGuard(ctx.env, layout.dev) : undefined;
      return { plan: planRoutedOffline(layout, others, seen), dev: layout.dev, hookVars: { ip: layout.routes.map((r) => r.dst).join(' ') } };
    },
  });
}
