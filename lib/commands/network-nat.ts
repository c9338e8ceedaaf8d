/**
 * network-nat's commands: the impure shell around lib/plans/network-nat.ts. start observes the host and
 * records what it did; stop takes exactly that back, ending dnsmasq by its checked pid.
 */
import { existsSync, readFileSync } from 'node:fs';
import { DNSMASQ, dnsmasqFiles, findDnsmasq, parseLeases, unreachableAncestor } from '../dhcp/dnsmasq.ts';
import { run } from '../exec.ts';
import { iptablesCmd } from '../firewall/iptables.ts';
import { observeHost } from '../net/host.ts';
import { readSysctl } from '../net/sysctl.ts';
import { masqueradeRule, planNetworkNatStart, planNetworkNatStop, type NatRecord, type NetworkNatRequest } from '../plans/network-nat.ts';
import { IP_FORWARD, resolveUplink } from '../plans/routing.ts';
import { byNetdev, natRecords, pickRecord, vifNatRecords } from '../records.ts';
import { stateDir } from '../state.ts';
import { FORWARDING_LOCK, stopForwarding } from './shared-forwarding.ts';
import { runNetworkStart, type Context } from './network-shell.ts';

export type { Context };

export function start(req: NetworkNatRequest, ctx: Context): Promise<number> {
  const { env } = ctx;
  const store = natRecords(env);
  const files = dnsmasqFiles(stateDir(env));
  return runNetworkStart(ctx, {
    hook: 'network-nat',
    lock: FORWARDING_LOCK,
    store,
    key: (host) => resolveUplink(req, host),
    already: (existing) => `NAT out of ${existing.netdev} is already started (since ${existing.startedAt}); nothing to do`,
    plan(host, netdev) {
      const { plan } = planNetworkNatStart(req, {
        host,
        ipForward: readSysctl(IP_FORWARD),
        dnsmasq: {
          files,
          installed: existsSync(DNSMASQ),
          unreachable: req.dhcp ? unreachableAncestor(files.dir) : undefined,
          heldBy: [...store.all().values()].find((r) => r.dhcp !== null)?.netdev,
        },
      });
      return { plan, title: `start NAT for ${req.subnet} out of ${netdev}`, facts: { netdev, subnet: req.subnet, dhcp: req.dhcp } };
    },
    record: (netdev, steps): NatRecord => ({
      version: 1, hook: 'network-nat', key: netdev, netdev, subnet: req.subnet, dhcp: req.dhcp ? files : null,
      startedAt: new Date().toISOString(), steps,
    }),
    done(record) {
      const pid = record.dhcp ? findDnsmasq(record.dhcp) : undefined;
      return `started: ${req.subnet} is masqueraded out of ${record.netdev}` + (record.dhcp ? `, dnsmasq (pid ${pid ?? '?'}) serves DHCP on vif*` : '');
    },
  });
}

export function stop(req: NetworkNatRequest, ctx: Context): Promise<number> {
  return stopForwarding(ctx, {
    hook: 'network-nat',
    store: natRecords(ctx.env),
    netdev: req.netdev,
    notStarted: (all) => `${req.netdev ?? 'NAT'} was not started by network-nat here; nothing to do` +
      (all.size ? ` (started out of: ${[...all.keys()].join(', ')}; name one with netdev=)` : ''),
    title: (r) => `stop NAT out of ${r.netdev}`,
    release(record, others) {
      const pid = record.dhcp ? findDnsmasq(record.dhcp) : undefined;
      return { ...planNetworkNatStop(record, others, pid), logged: { dnsmasq: pid } };
    },
    done: (r) => `stopped: no masquerading out of ${r.netdev}` + (r.dhcp ? ', dnsmasq ended and its files removed' : ''),
  });
}

export async function status(req: NetworkNatRequest, ctx: Context): Promise<number> {
  const host = await observeHost();
  const record = pickRecord(natRecords(ctx.env).all(), byNetdev(req.netdev), host);
  const netdev = record?.netdev ?? resolveUplink(req, host);
  const subnet = record?.subnet ?? req.subnet;
  const check = await run(iptablesCmd.check('POSTROUTING', masqueradeRule(subnet, netdev), 4, 'nat'));
  const pid = record?.dhcp ? findDnsmasq(record.dhcp) : undefined;
  let leases: ReturnType<typeof parseLeases> = [];
  if (record?.dhcp) {
    try {
      leases = parseLeases(readFileSync(record.dhcp.leaseFile, 'utf8'));
    } catch {
      /* no lease file: no leases */
    }
  }
  const guests = [...vifNatRecords(ctx.env).all((b) => ctx.out.say(`warning: ${b.message}`)).values()].map((r) => ({
    dev: r.layout.dev, address: r.layout.routes[0]?.dst, router: r.layout.local, dhcp: r.layout.dhcp !== undefined,
  }));
  const view = {
    netdev, subnet, started: record !== undefined, startedAt: record?.startedAt, masquerade: check.exitCode === 0,
    ipForward: readSysctl(IP_FORWARD), dhcp: record?.dhcp ? { pid: pid ?? null, running: pid !== undefined, leases } : null, guests,
  };
  if (ctx.flags.json) {
    process.stdout.write(JSON.stringify(view, null, 2) + '\n');
  } else {
    process.stdout.write(
      [
        `NAT for ${subnet} out of ${netdev}: ` + (record ? `started by network-nat at ${record.startedAt}` : 'not started by network-nat'),
        `  masquerade rule: ${view.masquerade ? 'present' : 'absent'}, ip_forward=${view.ipForward ?? '-'}`,
        `  dhcp:      ${view.dhcp ? `dnsmasq ${pid !== undefined ? `pid ${pid}` : 'NOT running'}, ${leases.length} lease(s)${leases.map((l) => ` ${l.hostname}=${l.ip}`).join('')}` : 'off'}`,
        `  guests:    ${guests.map((g) => `${g.dev} (${g.address} via ${g.router})`).join(', ') || '(none)'}`,
      ].join('\n') + '\n',
    );
  }
  return record ? 0 : 3;
}
