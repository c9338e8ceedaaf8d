/**
 * network-nat's commands: the impure shell around lib/plans/network-nat.ts. start observes the host and
 * records what it did; stop takes exactly that back, ending dnsmasq by its checked pid.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { Flags } from '../cli/args.ts';
import { DNSMASQ, dnsmasqFiles, findDnsmasq, parseLeases, unreachableAncestor } from '../dhcp/dnsmasq.ts';
import { run } from '../exec.ts';
import { execute } from '../executor.ts';
import { iptablesCmd } from '../firewall/iptables.ts';
import { withLock } from '../lock.ts';
import { planPrograms, requireTools } from '../tools.ts';
import type { Output } from '../log.ts';
import { observeHost } from '../net/host.ts';
import { readSysctl } from '../net/sysctl.ts';
import { masqueradeRule, planNetworkNatStart, planNetworkNatStop, type NatRecord, type NetworkNatRequest } from '../plans/network-nat.ts';
import { IP_FORWARD, resolveUplink } from '../plans/routing.ts';
import { byNetdev, natRecords, pickForStop, pickRecord, vifNatRecords } from '../records.ts';
import { type BadRecord, stateDir } from '../state.ts';
import { allStartRecords, FORWARDING_LOCK, keepSharedFor, saveHandOver, untrustedStart } from './shared-forwarding.ts';
import { printPlan } from './plan-output.ts';

export interface Context {
  env: NodeJS.ProcessEnv;
  flags: Flags;
  out: Output;
}

export async function start(req: NetworkNatRequest, ctx: Context): Promise<number> {
  const { env, out, flags } = ctx;
  const store = natRecords(env);
  if (!flags.dryRun) requireTools(['ip', 'flock'], env, 'network-nat start');
  return withLock(FORWARDING_LOCK, env, async () => {
    const host = await observeHost();
    const netdev = resolveUplink(req, host);
    const existing = store.read(netdev);
    if (existing) {
      out.say(`NAT out of ${netdev} is already started (since ${existing.startedAt}); nothing to do`);
      return 0;
    }
    const files = dnsmasqFiles(stateDir(env));
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
    if (flags.dryRun) {
      printPlan(`start NAT for ${req.subnet} out of ${netdev}`, plan, flags, { command: 'start', netdev, subnet: req.subnet, dhcp: req.dhcp });
      return 0;
    }
    out.log.info({ netdev, subnet: req.subnet, dhcp: req.dhcp, steps: plan.steps.length }, 'start');
    requireTools(planPrograms(plan), env, 'network-nat start');
    const steps = await execute(plan, { log: out.log, say: out.say, fault: env.XEN_NETHOOKS_FAULT });
    const record: NatRecord = {
      version: 1, hook: 'network-nat', key: netdev, netdev, subnet: req.subnet, dhcp: req.dhcp ? files : null,
      startedAt: new Date().toISOString(), steps,
    };
    store.write(netdev, record);
    const pid = record.dhcp ? findDnsmasq(record.dhcp) : undefined;
    out.say(`started: ${req.subnet} is masqueraded out of ${netdev}` + (record.dhcp ? `, dnsmasq (pid ${pid ?? '?'}) serves DHCP on vif*` : ''));
    return 0;
  });
}

export async function stop(req: NetworkNatRequest, ctx: Context): Promise<number> {
  const { env, out, flags } = ctx;
  const store = natRecords(env);
  return withLock(FORWARDING_LOCK, env, async () => {
    const mine: BadRecord[] = [];
    const all = store.all((b) => mine.push(b));
    const record = pickForStop(all, mine, byNetdev(req.netdev), await observeHost(), (b) => untrustedStart(b, 'network-nat'));
    if (!record) {
      out.say(`${req.netdev ?? 'NAT'} was not started by network-nat here; nothing to do` +
        (all.size ? ` (started out of: ${[...all.keys()].join(', ')}; name one with netdev=)` : ''));
      return 0;
    }
    const pid = record.dhcp ? findDnsmasq(record.dhcp) : undefined;
    const bad: BadRecord[] = [];
    const stopping = planNetworkNatStop(record, allStartRecords(env, (b) => bad.push(b)), pid);
    const { handOver } = stopping;
    const plan = keepSharedFor(stopping.plan, bad, out.say);
    if (flags.dryRun) {
      printPlan(`stop NAT out of ${record.netdev}`, plan, flags, { command: 'stop', netdev: record.netdev });
      return 0;
    }
    out.log.info({ netdev: record.netdev, dnsmasq: pid, steps: plan.steps.length }, 'stop');
    await execute(plan, { log: out.log, say: out.say, fault: env.XEN_NETHOOKS_FAULT });
    saveHandOver(env, handOver);
    store.remove(record.key);
    out.say(`stopped: no masquerading out of ${record.netdev}` + (record.dhcp ? ', dnsmasq ended and its files removed' : ''));
    return 0;
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
