/** vif-nat's layout for the vif hook shell (vif-hotplug.ts): observe, plan with lib/plans/vif-nat.ts. */
import { findDnsmasq, type DnsmasqFiles } from '../dhcp/dnsmasq.ts';
import { observeSourceGuard } from '../firewall/source-guard.ts';
import { observeHost } from '../net/host.ts';
import { devSysctl, readSysctl } from '../net/sysctl.ts';
import { blindDhcpCleanup, MAX_DOMID, MAX_NAT_HANDLE, planVifNatOffline, planVifNatOnline, type NatNetwork, type VifNatRequest } from '../plans/vif-nat.ts';
import { IP_FORWARD } from '../plans/routing.ts';
import { targetName } from '../plans/vif.ts';
import { planBlindOffline } from '../plans/vif-route.ts';
import { parseBackendPath } from '../xenstore.ts';
import { natRecords, vifNatRecords, type VifNatRecord } from '../records.ts';
import type { BadRecord } from '../state.ts';
import { InvalidXenstore } from '../cli/precedence.ts';
import { startRules } from './start-rules.ts';
import { guardRepair, guardStatus, routedGuardEntry, type GuardLayout } from './vif-guards.ts';
import { requestOf, runVifHook, withXenstore, type VifCall, type VifContext, type VifRequestOf } from './vif-hotplug.ts';

/** What the entry asks for: the request without the guest's domid and handle, which the backend has. */
export type VifNatAsked = Omit<VifNatRequest, 'domid' | 'handle'>;

export type { VifNatRecord };

/** network-nat as started here: the one running dnsmasq, else any. */
function natNetwork(env: NodeJS.ProcessEnv, onBad?: (bad: BadRecord) => void): NatNetwork | undefined {
  const all = [...natRecords(env).all(onBad).values()];
  const r = all.find((x) => x.dhcp !== null) ?? all[0];
  return r ? { subnet: r.subnet, dhcp: r.dhcp } : undefined;
}

const pidOf = (files: DnsmasqFiles | null | undefined) => (files ? findDnsmasq(files) : undefined);

/**
 * A number xenstore holds (frontend-id, handle), else the one the backend path implies, in
 * decimal without leading zeros and at most `max`: the default guest address is made of them,
 * so a value that cannot form it is refused here, by name, not by iptables later.
 */
function xsNumber(call: VifCall, key: string, fallback: number, max: number, accepted: string): number {
  const raw = call.xs.get(key)?.trim();
  const given = raw !== undefined && raw !== '';
  const text = given ? raw : String(fallback);
  if (!/^(0|[1-9][0-9]{0,9})$/.test(text) || Number(text) > max) {
    const what = given ? `xenstore ${key}=${JSON.stringify(raw)}` : `${key} ${fallback} (from the backend path ${call.backend})`;
    throw new InvalidXenstore(`invalid ${what}: expected ${accepted}`);
  }
  return Number(text);
}

const DEVID_MAX = 2 ** 31 - 1;

/** status/repair (vif-guards.ts): the guests' source guards, and network-nat's MASQUERADE. */
const VIF_NAT_GUARDS: GuardLayout<VifNatRecord> = {
  name: 'vif-nat',
  records: vifNatRecords,
  entry: (r) => routedGuardEntry(r.layout),
  starts: (env, onBad) => startRules('network-nat', natRecords(env), /^masquerade$/, (r) => r.netdev, 'MASQUERADE', onBad),
};

export function vifNat(ctx: VifContext, asked: VifRequestOf<VifNatAsked>): Promise<number> {
  if (ctx.inv.command === 'status') return guardStatus(ctx, VIF_NAT_GUARDS);
  if (ctx.inv.command === 'repair') return guardRepair(ctx, VIF_NAT_GUARDS);
  return runVifHook<VifNatRecord>(ctx, {
    records: vifNatRecords,
    async online(call: VifCall) {
      const given = requestOf(ctx, asked, call);
      const id = parseBackendPath(call.backend);
      const { ip } = given;
      const domid = xsNumber(call, 'frontend-id', id.domid, MAX_DOMID, `a domain id 0-${MAX_DOMID}`);
      // With ip= the handle only names the DHCP host; without, it is the last octet.
      const handle = ip.length
        ? xsNumber(call, 'handle', id.devid, DEVID_MAX, `a device handle 0-${DEVID_MAX}`)
        : xsNumber(call, 'handle', id.devid, MAX_NAT_HANDLE,
          `a device handle 0-${MAX_NAT_HANDLE}: the default guest address 10.<domid/256>.<domid%256>.<handle+1> needs room for its router 127 above it (at most .254); or set ip= for this vif`);
      const network = natNetwork(ctx.env);
      const dnsmasqPid = pidOf(network?.dhcp);
      const on = planVifNatOnline({ ...given, domid, handle }, {
        host: await observeHost(),
        proxyArpWas: readSysctl(devSysctl(4, call.dev, 'proxy_arp')),
        ipForward: readSysctl(IP_FORWARD),
        network,
        dnsmasqPid,
      });
      const { layout, addressing: a } = on;
      return {
        plan: on.plan,
        mtu: on.mtu,
        record: { version: 1, layout, onlineAt: new Date().toISOString() },
        dev: layout.dev,
        title: `${call.command} ${layout.dev}: guest ${a.guest}/${a.prefix}, router ${a.router}`,
        summary: `${call.command} ${layout.dev}: guest ${a.guest}/${a.prefix} via router ${a.router}` +
          (layout.dhcp ? ', served by DHCP' : '') + (layout.guard ? ', sources guarded' : ', no antispoofing'),
        warnings: on.warnings,
        hookVars: { ip: a.guest },
      };
    },
    async offline(call: VifCall, record: VifNatRecord | undefined) {
      // offline goes on past a broken network-nat record: the guest's own rules must come out.
      const files = natNetwork(ctx.env, (b) => ctx.out.say(`warning: ${b.message}`))?.dhcp;
      const dnsmasqPid = pidOf(files);
      if (record) {
        const { layout } = record;
        const seen = layout.guard ? await observeSourceGuard(ctx.env, layout.dev) : undefined;
        return { plan: planVifNatOffline(layout, dnsmasqPid, seen), dev: layout.dev, hookVars: { ip: layout.routes[0]?.dst ?? '' } };
      }
      const o = withXenstore(ctx, call.xs, ['vifname'], (m) => ctx.out.say(`warning: ${m}`));
      const dev = targetName({ dev: call.dev, typeIf: call.typeIf, vifname: o.text('vifname') });
      const plan = planBlindOffline(dev, await observeSourceGuard(ctx.env, dev));
      if (files) plan.steps.unshift(blindDhcpCleanup(files, call.dev, dnsmasqPid));
      return { plan, dev, hookVars: { ip: '' } };
    },
  });
}
