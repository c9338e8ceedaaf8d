/**
 * vif-bridge, as pure functions from a request and the observed host to a plan: attach a guest's
 * interface to a bridge (SPEC §2) with its firewall guard in place before the port comes up, and
 * take both away again on offline.
 */
import type { Command } from '../exec.ts';
import { ebtablesApply, ebtablesRemove } from '../firewall/ebtables.ts';
import { chainName, splitAddresses, tag, type FirewallBackend, type VifGuard } from '../firewall/guard.ts';
import { l3Apply, l3Remove } from '../firewall/iptables.ts';
import { nftApply, nftCompanionApply, nftCompanionRemove, nftRemove } from '../firewall/nft.ts';
import { guardRemoval, type XtablesGuard } from '../firewall/xtables-nft.ts';
import { isValidIfname } from '../cli/values.ts';
import { findLink, type HostState } from '../net/host.ts';
import { isBridge, linkCmd } from '../net/link.ts';
import { PlanError, step, type Plan, type Step } from '../plan.ts';

export type VifCommand = 'online' | 'offline' | 'add' | 'remove';
export type TypeIf = 'vif' | 'tap';

export interface VifRequest {
  command: VifCommand;
  typeIf: TypeIf;
  /** The device as the kernel named it: $vif (vif<domid>.<devid>) or $INTERFACE (…-emu). */
  dev: string;
  bridge?: string | undefined;
  ip: string[];
  mac?: string | undefined;
  mtu?: number | undefined;
  vifname?: string | undefined;
  firewall: FirewallBackend;
  notrack: boolean;
  antispoof: boolean;
  /** `nft` is installed (observed): firewall=iptables then adds its nft companion (nft.ts). */
  nft?: boolean | undefined;
}

/** The MAC every vif gets, so that the bridge never takes a guest's port address as its own. */
export const VIF_MAC = 'fe:ff:ff:ff:ff:ff';

export interface OnlinePlan {
  plan: Plan;
  /** The device once online (renamed to vifname if asked). */
  dev: string;
  bridge: string;
  mtu: number;
  guard: VifGuard | undefined;
  warnings: string[];
}

/** The device name after a vifname rename: `<vifname>` for a PV vif, `<vifname>-emu` for tap. */
export function targetName(req: Pick<VifRequest, 'dev' | 'vifname' | 'typeIf'>): string {
  if (!req.vifname) return req.dev;
  return req.typeIf === 'tap' ? `${req.vifname}-emu` : req.vifname;
}

/** The ethN bridge that stands for xenbrN on hosts bridged the old way (SPEC §2.1), if `name` is one. */
export function xenbrAlias(name: string | undefined): string | undefined {
  const m = /^xenbr(\d+)$/.exec(name ?? '');
  return m ? `eth${m[1]}` : undefined;
}

/** SPEC §2.1: the given bridge, else the first one by name; xenbrN asked on an ethN-bridge layout → ethN. */
export function resolveBridge(host: HostState, wanted: string | undefined): string {
  const bridges = host.links.filter(isBridge).map((l) => l.ifname);
  if (!wanted) {
    // The original takes the first line of `brctl show`, which lists bridges sorted by name.
    const first = [...bridges].sort()[0];
    if (!first) throw new PlanError('Could not find bridge, and none was specified: create one (network-bridge start) or set bridge= in the vif line');
    return first;
  }
  const link = findLink(host, wanted);
  if (link && isBridge(link)) return wanted;
  const alias = xenbrAlias(wanted);
  if (!link && alias) {
    const eth = findLink(host, alias);
    if (eth && isBridge(eth)) return eth.ifname;
  }
  if (link) throw new PlanError(`bridge=${wanted} is a ${link.linkinfo?.info_kind ?? 'network'} device, not a bridge`);
  throw new PlanError(
    `Could not find bridge device ${wanted}` + (bridges.length ? ` (bridges here: ${bridges.join(', ')})` : ' (there is no bridge on this host)') +
      '; fix bridge= in the vif line or create the bridge first',
  );
}

function guardOf(req: VifRequest, dev: string): VifGuard {
  const { ipv4, ipv6 } = splitAddresses(req.ip);
  // antispoof=no: no MAC, ARP, source or server checks at all (ACCEPT rules and NOTRACK remain).
  const companion = req.firewall === 'iptables' && req.nft === true;
  // firewall=iptables has its NOTRACK in the nft companion (nft.ts: only nft can tell bridged
  // from routed frames); without nft, none: tracked is slower, untracked routed traffic is broken.
  const notrack = req.notrack && (req.firewall !== 'iptables' || companion);
  return { dev, mac: req.antispoof ? req.mac : undefined, ipv4, ipv6, antispoof: req.antispoof && req.ip.length > 0, l2: req.antispoof, notrack, companion };
}

/** The guard's rules in, as one transaction per tool, and the commands that take them out. */
export function firewallCommands(backend: FirewallBackend, g: VifGuard): { apply: Command[]; remove: Command[] } {
  if (backend === 'none') return { apply: [], remove: [] };
  if (backend === 'nft') return { apply: [nftApply(g)], remove: firewallRemoval(backend, g.dev, g.notrack) };
  const base = { dev: g.dev, chain: chainName(g.dev), tag: tag(g.dev) };
  const companion = g.companion ? nftCompanionApply(g) : undefined;
  return {
    apply: [
      ebtablesApply(g),
      ...(companion ? [companion] : []),
      l3Apply(4, { ...base, sources: g.antispoof ? g.ipv4 : undefined, dhcp: true }),
      l3Apply(6, { ...base, sources: g.antispoof ? g.ipv6 : undefined, dhcp: false }),
    ],
    remove: firewallRemoval(backend, g.dev, g.notrack),
  };
}

/**
 * `rawNotrack`: the guard may be an earlier version's, whose firewall=iptables put NOTRACK in
 * iptables' raw table (iptables.ts, VifL3Removal): take that out too.
 */
export function firewallRemoval(backend: FirewallBackend, dev: string, notrack: boolean, rawNotrack = false): Command[] {
  if (backend === 'none') return [];
  if (backend === 'nft') return [nftRemove(dev, notrack)];
  const base = { dev, chain: chainName(dev), tag: tag(dev), raw: rawNotrack };
  // The nft companion too: whether online could add one is not known here (nft may have come or gone).
  return [ebtablesRemove(dev), l3Remove(4, base), l3Remove(6, base), nftCompanionRemove(dev, notrack)];
}

const ipBatch = (lines: string[], force = false): Command => ({
  argv: ['ip', ...(force ? ['-force'] : []), '-batch', '-'],
  input: lines.join('\n') + '\n',
});

/** Port setup (SPEC §2.2) in one ip process: down, fixed MAC, no addresses, MTU, enslave, up. */
function portSetup(dev: string, bridge: string, mtu: number, enslaved: boolean): Command {
  return ipBatch([
    `link set dev ${dev} down`,
    `link set dev ${dev} address ${VIF_MAC}`,
    `addr flush dev ${dev}`,
    `link set dev ${dev} mtu ${mtu}`,
    ...(enslaved ? [] : [`link set dev ${dev} master ${bridge}`]),
    `link set dev ${dev} up`,
  ]);
}

/** Port teardown (SPEC §2.3): down and released; a device that is gone already is fine. */
export function portTeardown(dev: string): Command {
  return { ...ipBatch([`link set dev ${dev} down`, `link set dev ${dev} nomaster`], true), tolerate: [''] };
}

/** A guard an earlier online of the same device left in place (a re-run, or no offline came). */
export interface LeftoverGuard {
  dev: string;
  firewall: FirewallBackend;
  notrack: boolean;
  /** Laid by an earlier version, or not known: firewallRemoval's `rawNotrack`. */
  rawNotrack?: boolean | undefined;
}

/**
 * online (vif) / add (tap). `finish` are the xenstore writes that report success; they run last,
 * so `hotplug-status connected` is only written once everything else is in place. A `leftover`
 * guard is removed first, in the firewall step, so that every rule exists once whatever ran
 * before (the ebtables/iptables jumps would otherwise be inserted a second time, and one offline
 * could not remove them).
 */
export function planOnline(req: VifRequest, host: HostState, finish: (mtu: number) => Command[], leftover?: LeftoverGuard): OnlinePlan {
  const warnings: string[] = [];
  const link = findLink(host, req.dev);
  const dev = targetName(req);
  if (!isValidIfname(dev)) {
    throw new PlanError(`vifname=${req.vifname}: '${dev}' is not a valid interface name (at most 15 bytes${req.typeIf === 'tap' ? ', -emu included' : ''}, no '/', ':' or spaces)`);
  }
  // The name goes into ruleset scripts (ebtables/iptables-restore, nft -f): keep it to characters
  // none of their parsers treat specially.
  if (req.firewall !== 'none' && !/^[A-Za-z0-9_.-]+$/.test(dev)) {
    throw new PlanError(`device name '${dev}' has characters the firewall cannot take (letters, digits, '_', '.', '-' only): choose another vifname, or set firewall=none`);
  }
  const steps: Step[] = [];
  if (!link) {
    // Re-run of online after a rename: the device already carries its vifname.
    if (dev === req.dev || !findLink(host, dev)) {
      throw new PlanError(`device ${req.dev} does not exist (the guest's backend is gone, or vif= names the wrong device)`);
    }
  } else if (dev !== req.dev) {
    if (findLink(host, dev)) throw new PlanError(`Cannot rename interface ${req.dev} to ${dev}: a device named ${dev} already exists (vifname= must be unique)`);
    steps.push(step('rename', `rename ${req.dev} to ${dev} (vifname)`,
      [linkCmd.down(req.dev), linkCmd.rename(req.dev, dev)], [{ ...linkCmd.rename(dev, req.dev), tolerate: [''] }]));
  }
  const bridge = resolveBridge(host, req.bridge);
  const bridgeLink = findLink(host, bridge);
  const mtu = req.mtu ?? bridgeLink?.mtu ?? 1500;
  let guard: VifGuard | undefined;
  const stale = leftover ? firewallRemoval(leftover.firewall, leftover.dev, leftover.notrack, leftover.rawNotrack) : [];
  if (req.firewall !== 'none') {
    guard = guardOf(req, dev);
    if (req.antispoof && req.ip.length === 0) {
      warnings.push(`guest has no ip in xenstore: only its MAC is enforced; set ip= in the vif line to enforce its addresses`);
    }
    if (!req.mac) warnings.push('guest has no mac in xenstore: source MACs are not checked');
    if (req.firewall === 'iptables' && req.antispoof && !req.nft) {
      warnings.push('nft is not installed: neighbour advertisements naming another address, and fragmented ICMPv6, are not checked (ebtables cannot see them); install nftables');
    }
    if (req.firewall === 'iptables' && req.notrack && !req.nft) {
      warnings.push("nft is not installed: no NOTRACK, the guest's bridged traffic goes through conntrack (only nft can tell it from traffic dom0 routes); install nftables, or set notrack=no to silence this");
    }
    const fw = firewallCommands(req.firewall, guard);
    const guardStep = step('firewall', `guard ${dev}: ${describeGuard(guard)}`, [...stale, ...fw.apply], fw.remove);
    // The three tools' transactions touch different tables; stale removals must come first.
    if (stale.length === 0 && fw.apply.length > 1) guardStep.concurrent = true;
    steps.push(guardStep);
  } else if (leftover && stale.length) {
    steps.push(step('firewall', `remove the firewall guard an earlier online left on ${leftover.dev}`, stale, []));
  }
  const enslaved = (findLink(host, dev) ?? link)?.master === bridge;
  steps.push(step('port', `attach ${dev} to ${bridge} (MAC ${VIF_MAC}, MTU ${mtu})`, [portSetup(dev, bridge, mtu, enslaved)], [portTeardown(dev)]));
  const report = finish(mtu);
  if (report.length) steps.push(step('report', 'report to xenstore', report, []));
  return { plan: { steps }, dev, bridge, mtu, guard, warnings };
}

export function describeGuard(g: VifGuard): string {
  const parts: string[] = [];
  if (g.mac) parts.push(`MAC ${g.mac}`);
  parts.push(g.antispoof ? `sources ${[...g.ipv4, ...g.ipv6].join(' ')}` : 'any source address');
  if (g.notrack) parts.push('NOTRACK for bridged traffic');
  return parts.join(', ');
}

/**
 * offline/remove: firewall out, port released; every command tolerates what is already gone.
 * `seen`: the guard as nft lists it (iptables backend on nftables, xtables-nft.ts), when looked at.
 */
export function planOffline(dev: string, firewall: FirewallBackend, notrack: boolean, seen?: XtablesGuard, rawNotrack = false): Plan {
  const steps: Step[] = [];
  const restores = firewallRemoval(firewall, dev, notrack, rawNotrack);
  const fw = firewall === 'iptables' ? guardRemoval(chainName(dev), seen, restores, dev) : restores;
  // Restores one after the other: removals wait for the kernel (an RCU grace period per nftables
  // commit that deletes) and those commits serialize, so starting them at once gains nothing.
  if (fw.length) steps.push(step('firewall', `remove ${dev}'s firewall guard`, fw, []));
  steps.push(step('port', `detach ${dev}`, [portTeardown(dev)], []));
  return { steps };
}
