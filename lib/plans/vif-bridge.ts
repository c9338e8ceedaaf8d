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
import { findLink, type HostState } from '../net/host.ts';
import { IPV6_MIN_MTU } from '../net/ip.ts';
import { isBridge, linkCmd } from '../net/link.ts';
import { PlanError, step, unlocked, type Plan, type Step } from '../plan.ts';
import { describePolicy, whyPolicy, type GuestPolicy } from '../cli/policy.ts';
import { checkedTargetName, renameStep, resolveVifName, type TypeIf, type VifCommand } from './vif.ts';

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
  /** The config file's policy for this guest (cli/policy.ts); undefined: the strict guard. */
  policy?: GuestPolicy | undefined;
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

/** The ethN bridge that stands for xenbrN on hosts bridged the old way (SPEC §2.1), if `name` is one. */
export function xenbrAlias(name: string | undefined): string | undefined {
  const n = xenbrNumber(name);
  return n === undefined ? undefined : `eth${n}`;
}

/** N of a `xenbrN` name: the vifnum Xen 3.0/3.1's network-bridge named its bridge after. */
export function xenbrNumber(name: string | undefined): number | undefined {
  const m = /^xenbr(\d+)$/.exec(name ?? '');
  return m ? Number(m[1]) : undefined;
}

/** A bridge network-bridge started here, from its record: the name and the vifnum it was given. */
export interface StartedBridge {
  bridge: string;
  vifnum: number;
}

interface Resolved {
  bridge: string;
  /** Why another bridge than the one asked for: said as a warning. */
  why?: string;
}

function pickBridge(host: HostState, wanted: string | undefined, started: readonly StartedBridge[]): Resolved {
  const bridges = host.links.filter(isBridge).map((l) => l.ifname);
  if (!wanted) {
    // The original takes the first line of `brctl show`, which lists bridges sorted by name.
    const first = [...bridges].sort()[0];
    if (!first) throw new PlanError('Could not find bridge, and none was specified: create one (network-bridge start) or set bridge= in the vif line');
    return { bridge: first };
  }
  const link = findLink(host, wanted);
  if (link && isBridge(link)) return { bridge: wanted };
  const n = xenbrNumber(wanted);
  if (!link && n !== undefined) {
    // Xen 3.0/3.1 configs: network-bridge started with vifnum=N made xenbrN; ours names the
    // bridge after netdev (or bridge=), and its record keeps the vifnum.
    const byVifnum = started.filter((s) => s.vifnum === n && bridges.includes(s.bridge));
    if (byVifnum.length > 1) {
      throw new PlanError(`Could not find bridge device ${wanted}, and network-bridge started several bridges with vifnum=${n} (${byVifnum.map((s) => s.bridge).join(', ')}): set bridge= in the vif line to one of them`);
    }
    if (byVifnum[0]) {
      const b = byVifnum[0].bridge;
      return { bridge: b, why: `bridge ${wanted} does not exist: using ${b}, the bridge network-bridge started with vifnum=${n} (Xen 3.0/3.1 named it ${wanted}); set bridge=${b} in the vif line to say so` };
    }
    const eth = findLink(host, `eth${n}`);
    if (eth && isBridge(eth)) return { bridge: eth.ifname };
  }
  if (link) throw new PlanError(`bridge=${wanted} is a ${link.linkinfo?.info_kind ?? 'network'} device, not a bridge`);
  throw new PlanError(
    `Could not find bridge device ${wanted}` + (bridges.length ? ` (bridges here: ${bridges.join(', ')})` : ' (there is no bridge on this host)') +
      '; fix bridge= in the vif line or create the bridge first',
  );
}

/**
 * SPEC §2.1: the given bridge, else the first one by name; xenbrN asked and missing → the bridge
 * network-bridge started with vifnum=N (`started`), else an ethN bridge (old configs on the
 * 3.2+ layout).
 */
export function resolveBridge(host: HostState, wanted: string | undefined, started: readonly StartedBridge[] = []): string {
  return pickBridge(host, wanted, started).bridge;
}

export function guardOf(req: VifRequest, dev: string): VifGuard {
  const { ipv4, ipv6 } = splitAddresses(req.ip);
  const p = req.policy;
  // antispoof=no, or a policy's guard=no: no MAC, ARP, source or server checks at all (ACCEPT
  // rules and NOTRACK remain).
  const l2 = req.antispoof && p?.guard !== false;
  const companion = req.firewall === 'iptables' && req.nft === true;
  // firewall=iptables has its NOTRACK in the nft companion (nft.ts: only nft can tell bridged
  // from routed frames); without nft, none: tracked is slower, untracked routed traffic is broken.
  const notrack = req.notrack && (req.firewall !== 'iptables' || companion);
  const g: VifGuard = {
    dev, mac: l2 ? req.mac : undefined, ipv4, ipv6,
    // route=yes: any source address (and ARP sender address); its MAC stays enforced.
    antispoof: l2 && req.ip.length > 0 && p?.route !== true,
    l2, notrack, companion,
  };
  if (l2 && p) {
    if (p.trunk.length) g.vlans = [...p.trunk];
    if (p.ethertypes.length) g.ethertypes = [...p.ethertypes];
    if (p.serve.length) g.serve = [...p.serve];
  }
  return g;
}

/** The guard's rules in, as one transaction per tool, and the commands that take them out. */
export function firewallCommands(backend: FirewallBackend, g: VifGuard): { apply: Command[]; remove: Command[] } {
  if (backend === 'none') return { apply: [], remove: [] };
  if (backend === 'nft') return { apply: [nftApply(g)], remove: firewallRemoval(backend, g.dev, g.notrack, true) };
  const base = { dev: g.dev, chain: chainName(g.dev), tag: tag(g.dev) };
  const companion = g.companion ? nftCompanionApply(g) : undefined;
  return {
    apply: [
      ebtablesApply(g),
      ...(companion ? [companion] : []),
      l3Apply(4, { ...base, sources: g.antispoof ? g.ipv4 : undefined, dhcp: true }),
      l3Apply(6, { ...base, sources: g.antispoof ? g.ipv6 : undefined, dhcp: false }),
    ],
    remove: firewallRemoval(backend, g.dev, g.notrack, g.companion === true),
  };
}

/**
 * `nft`: nft is installed (observed). With firewall=iptables the companion comes out too, whether
 * or not this vif's online added one (nft may have come since); where nft is not installed there
 * is no companion to remove, and no removal that would need the program.
 * `rawNotrack`: the guard may be an earlier version's, whose firewall=iptables put NOTRACK in
 * iptables' raw table (iptables.ts, VifL3Removal): take that out too.
 */
export function firewallRemoval(backend: FirewallBackend, dev: string, notrack: boolean, nft: boolean, rawNotrack = false): Command[] {
  if (backend === 'none') return [];
  if (backend === 'nft') return [nftRemove(dev, notrack)];
  const base = { dev, chain: chainName(dev), tag: tag(dev), raw: rawNotrack };
  return [ebtablesRemove(dev), l3Remove(4, base), l3Remove(6, base), ...(nft ? [nftCompanionRemove(dev, notrack)] : [])];
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
 * online (vif) / add (tap). The plan does not report to xenstore: the vif hook shell adds that
 * step last (vif-hotplug.ts, with `mtu`), so `hotplug-status connected` is only written once
 * everything else is in place. A `leftover`
 * guard is removed first, in the firewall step, so that every rule exists once whatever ran
 * before (the ebtables/iptables jumps would otherwise be inserted a second time, and one offline
 * could not remove them).
 */
export function planOnline(
  req: VifRequest,
  host: HostState,
  leftover?: LeftoverGuard,
  started: readonly StartedBridge[] = [],
): OnlinePlan {
  const warnings: string[] = [];
  const target = checkedTargetName(req);
  // The name goes into ruleset scripts (ebtables/iptables-restore, nft -f): keep it to characters
  // none of their parsers treat specially.
  if (req.firewall !== 'none' && !/^[A-Za-z0-9_.-]+$/.test(target)) {
    throw new PlanError(`device name '${target}' has characters the firewall cannot take (letters, digits, '_', '.', '-' only): choose another vifname, or set firewall=none`);
  }
  const { dev, rename, link } = resolveVifName(req, host, target);
  const steps: Step[] = rename ? [renameStep(req.dev, dev)] : [];
  const resolved = pickBridge(host, req.bridge, started);
  const bridge = resolved.bridge;
  if (resolved.why) warnings.push(resolved.why);
  const bridgeLink = findLink(host, bridge);
  const mtu = req.mtu ?? bridgeLink?.mtu ?? 1500;
  // The kernel lowers a bridge's MTU to its smallest port's (unless an MTU was set on the bridge
  // itself) and raises it again when that port leaves: Xen's own vif-bridge lives with that, and
  // guests configured with a smaller mtu (a tunnelled uplink) rely on it, so it stays allowed, with
  // a warning. Below 1280, though, the kernel takes every IPv6 address off the bridge, dom0's
  // included, and does not put them back when the MTU rises again: that a guest's mtu must never do.
  if (req.mtu !== undefined && bridgeLink && req.mtu < bridgeLink.mtu) {
    if (req.mtu < IPV6_MIN_MTU && bridgeLink.mtu >= IPV6_MIN_MTU) {
      throw new PlanError(
        `mtu=${req.mtu} is below ${IPV6_MIN_MTU}: as a port of bridge ${bridge} (MTU ${bridgeLink.mtu}) it would lower the bridge below IPv6's minimum, ` +
          `and the kernel would remove dom0's IPv6 addresses from ${bridge} for good; set mtu to ${IPV6_MIN_MTU} or more, or leave it unset to use ${bridgeLink.mtu}`,
      );
    }
    warnings.push(`mtu=${req.mtu} is below bridge ${bridge}'s MTU ${bridgeLink.mtu}: the kernel lowers ${bridge} to ${req.mtu} while this guest is on it (as with Xen's vif-bridge), and raises it again when it leaves`);
  }
  let guard: VifGuard | undefined;
  const stale = leftover ? firewallRemoval(leftover.firewall, leftover.dev, leftover.notrack, req.nft === true, leftover.rawNotrack) : [];
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
    const policy = req.policy ? `policy ${whyPolicy(req.policy)}: ${describePolicy(req.policy)}; ` : '';
    const guardStep = step('firewall', `guard ${dev}: ${policy}${describeGuard(guard)}`, [...stale, ...fw.apply], fw.remove);
    // The three tools' transactions touch different tables; stale removals must come first.
    if (stale.length === 0 && fw.apply.length > 1) guardStep.concurrent = true;
    steps.push(guardStep);
  } else if (leftover && stale.length) {
    steps.push(step('firewall', `remove the firewall guard an earlier online left on ${leftover.dev}`, stale, []));
  }
  const enslaved = link.master === bridge;
  // A rollback gives the device its own MTU back, not the one the port had.
  const undoMtu = link.mtu !== mtu ? [{ ...linkCmd.mtu(dev, link.mtu), tolerate: [''] }] : [];
  // The guest's own link and xenstore nodes: no other hook changes them, so no lock (Step.unlocked);
  // only the firewall is Xen's scripts' shared `iptables` lock's.
  steps.push(unlocked(step('port', `attach ${dev} to ${bridge} (MAC ${VIF_MAC}, MTU ${mtu})`, [portSetup(dev, bridge, mtu, enslaved)], [portTeardown(dev), ...undoMtu])));
  return { plan: { steps }, dev, bridge, mtu, guard, warnings };
}

export function describeGuard(g: VifGuard): string {
  const parts: string[] = [];
  if (g.mac) parts.push(`MAC ${g.mac}`);
  parts.push(g.antispoof ? `sources ${[...g.ipv4, ...g.ipv6].join(' ')}` : 'any source address');
  if (g.vlans?.length) parts.push(`802.1Q VLAN ${g.vlans.join(',')}`);
  if (g.ethertypes?.length) parts.push(`ethertypes ${g.ethertypes.map((t) => `0x${t.toString(16).padStart(4, '0')}`).join(',')}`);
  if (g.serve?.length) parts.push(`may serve ${g.serve.join(', ')}`);
  if (g.notrack) parts.push('NOTRACK for bridged traffic');
  return parts.join(', ');
}

/**
 * offline/remove: firewall out, port released; every command tolerates what is already gone.
 * `seen`: the guard as nft lists it (iptables backend on nftables, xtables-nft.ts), when looked at.
 * firewall 'unknown' (no record, or one that cannot be trusted): both backends' guards come out,
 * by the device's chain names (XNH-<dev>, vif-<dev>), NOTRACK included.
 */
export function planOffline(dev: string, firewall: FirewallBackend | 'unknown', notrack: boolean, nft: boolean, seen?: XtablesGuard, rawNotrack = false): Plan {
  const steps: Step[] = [];
  const fw = firewall === 'unknown'
    ? [...guardRemoval(chainName(dev), seen, firewallRemoval('iptables', dev, true, nft, rawNotrack), dev), ...(nft ? firewallRemoval('nft', dev, true, nft) : [])]
    : firewall === 'iptables'
      ? guardRemoval(chainName(dev), seen, firewallRemoval(firewall, dev, notrack, nft, rawNotrack), dev)
      : firewallRemoval(firewall, dev, notrack, nft);
  // Restores one after the other: removals wait for the kernel (an RCU grace period per nftables
  // commit that deletes) and those commits serialize, so starting them at once gains nothing.
  if (fw.length) steps.push(step('firewall', `remove ${dev}'s firewall guard`, fw, []));
  steps.push(unlocked(step('port', `detach ${dev}`, [portTeardown(dev)], [])));
  return { steps };
}
