/**
 * network-nat (SPEC §5) as pure functions: start masquerades the guests' subnet out of dom0's
 * uplink and, with dhcp=yes, runs dnsmasq as their DHCP server; stop takes back exactly what
 * start did, ip_forward included (shared-settings.ts), where the original leaves it.
 */
import { comment, iptablesCmd } from '../firewall/iptables.ts';
import { dnsmasqArgv, stopByPid, stopByPidFile, type DnsmasqFiles } from '../dhcp/dnsmasq.ts';
import type { HostState } from '../net/host.ts';
import { parseIpv4Net } from '../net/ipv4.ts';
import { PlanError, step, type Plan, type Step } from '../plan.ts';
import { IP_FORWARD, requireUplink, resolveUplink, sysctlStep } from './routing.ts';
import { planRelease, type StartRecord } from './shared-settings.ts';

export const DEFAULT_SUBNET = '10.0.0.0/16';


export interface NetworkNatRequest {
  netdev?: string | undefined;
  dhcp: boolean;
  subnet: string;
}

export interface NetworkNatObserved {
  host: HostState;
  ipForward: string | undefined;
  dnsmasq: {
    files: DnsmasqFiles;
    installed: boolean;
    /** A directory on the way to files.dir that dnsmasq, once it is nobody, cannot enter. */
    unreachable?: string | undefined;
    /** The netdev of another network-nat here that already runs dnsmasq. */
    heldBy?: string | undefined;
  };
}

export interface NatRecord extends StartRecord {
  version: 1;
  netdev: string;
  subnet: string;
  dhcp: DnsmasqFiles | null;
}

export function natTag(netdev: string): string {
  return `xen-nethooks:network-nat:${netdev}`;
}

export function masqueradeRule(subnet: string, netdev: string): string[] {
  return ['-s', subnet, '-o', netdev, ...comment(natTag(netdev)), '-j', 'MASQUERADE'];
}

export function planNetworkNatStart(req: NetworkNatRequest, obs: NetworkNatObserved): { netdev: string; plan: Plan } {
  const netdev = resolveUplink(req, obs.host);
  requireUplink(obs.host, netdev);
  const subnet = parseIpv4Net(req.subnet);
  const steps: Step[] = [sysctlStep(IP_FORWARD, '1', obs.ipForward, true)];
  const rule = masqueradeRule(req.subnet, netdev);
  steps.push(step('masquerade', `masquerade ${req.subnet} out of ${netdev}`,
    [iptablesCmd.insert('POSTROUTING', rule, 4, 'nat')], [iptablesCmd.delete('POSTROUTING', rule, 4, 'nat')]));
  if (req.dhcp) {
    const d = obs.dnsmasq;
    if (!d.installed) throw new PlanError('dhcp=yes needs dnsmasq: apt-get install dnsmasq-base (or set dhcp=no)');
    if (d.heldBy !== undefined) {
      throw new PlanError(`dhcp=yes: network-nat netdev=${d.heldBy} already runs the guests' DHCP server here; one serves every vif, so start this one with dhcp=no`);
    }
    if (d.unreachable !== undefined) {
      throw new PlanError(`dhcp=yes: dnsmasq runs as nobody and cannot enter ${d.unreachable} to read ${d.files.hostsDir}; make it world-searchable (chmod o+x) or set XEN_NETHOOKS_STATE_DIR elsewhere`);
    }
    const f = d.files;
    steps.push(step('dnsmasq-files', `make ${f.dir} for dnsmasq's pid, lease and hosts files`,
      [{ argv: ['mkdir', '-p', '-m', '0755', '--', f.dir] }, { argv: ['mkdir', '-m', '0755', '--', f.hostsDir] }],
      [{ argv: ['rm', '-rf', '--', f.dir] }]));
    steps.push(step('dnsmasq', `start dnsmasq as the DHCP server for ${req.subnet} on vif*`,
      [{ argv: dnsmasqArgv(f, subnet) }], [stopByPidFile(f)]));
  }
  return { netdev, plan: { steps } };
}

/**
 * stop: start's steps taken back (see shared-settings.ts), dnsmasq ended by the pid findDnsmasq
 * checked; if it is not running any more, there is nothing to end.
 */
export function planNetworkNatStop(record: NatRecord, others: readonly StartRecord[], dnsmasqPid: number | undefined) {
  const { plan, handOver } = planRelease<StartRecord>(record, others);
  const steps = plan.steps.map((s) => {
    if (s.id !== 'undo-dnsmasq') return s;
    return dnsmasqPid === undefined
      ? { ...s, description: 'dnsmasq is not running any more: nothing to end', run: [] }
      : { ...s, description: `end dnsmasq (pid ${dnsmasqPid})`, run: [stopByPid(dnsmasqPid)] };
  });
  return { plan: { steps }, handOver };
}
