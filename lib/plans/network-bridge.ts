/**
 * network-bridge, as a pure function from a request and the observed host to a plan.
 *
 * The layout is Xen 3.2+'s: the physical device `eth0` becomes the port `peth0` of a bridge that
 * takes the name `eth0`, so dom0 keeps its interface name and everything configured on it. Unlike
 * the original this never calls ifdown/ifup (ifdown destroys VLAN devices and clears bond slaves);
 * it moves each address and route explicitly, and dom0's VLAN devices go on the bridge, dom0's
 * side, where they get their frames from the bridge instead of fighting it for them on the port.
 */
import { iptablesCmd, comment, type Policy } from '../firewall/iptables.ts';
import type { Command } from '../exec.ts';
import { addAddress, cidrOf, delAddress, isKernelGenerated, type Address } from '../net/address.ts';
import {
  defaultRouteDevice,
  findLink,
  portsOf,
  userRoutes,
  vlansUnder,
  type HostState,
} from '../net/host.ts';
import { isBridge, isUp, isVlan, linkCmd, type Link } from '../net/link.ts';
import { addRoute, byDependency, delRoute, describeRoute, routeKey, type Family, type Route } from '../net/route.ts';
import { writeSysctl } from '../net/sysctl.ts';
import type { VlanSpec } from '../cli/values.ts';
import { isValidIfname } from '../net/ifname.ts';
import { PlanError, reversePlan, step, type Plan, type Step } from '../plan.ts';
import { releaseShared } from './shared-settings.ts';

export interface BridgeRequest {
  bridge?: string | undefined;
  /** A device, `none` for a host-only bridge; undefined for the default-route device. */
  netdev?: string | undefined;
  vifnum?: number | undefined;
  antispoof: boolean;
  vlans: VlanSpec[];
}

/** What the planner needs besides links and routes. */
export interface BridgeObserved {
  host: HostState;
  /** /proc/sys/net/bridge exists (br_netfilter loaded). */
  brNetfilter: boolean;
  /** Current values of BRIDGE_NF_SYSCTLS (undefined while br_netfilter is not loaded). */
  sysctls: Record<string, string | undefined>;
  /** FORWARD policy, read only when antispoof is asked for; undefined if iptables is unusable. */
  forwardPolicy?: Policy | undefined;
}

export interface BridgeNames {
  bridge: string;
  /** null for a host-only bridge. */
  netdev: string | null;
  /** The device that becomes the bridge's port (p<netdev> when the bridge takes netdev's name). */
  pdev: string | null;
}

export type StartDecision =
  | { kind: 'noop'; message: string }
  | { kind: 'plan'; names: BridgeNames; plan: Plan; warnings: string[] };


export const BRIDGE_NF_SYSCTLS = ['net.bridge.bridge-nf-call-iptables', 'net.bridge.bridge-nf-call-ip6tables'] as const;
export const FORWARD_POLICY_KEY = 'iptables:FORWARD-policy';

export function antispoofTag(bridge: string): string {
  return `xen-nethooks:network-bridge:${bridge}`;
}

export function resolveNames(req: BridgeRequest, host: HostState): BridgeNames {
  const vifnum = req.vifnum ?? 0;
  const netdev = req.netdev ?? defaultRouteDevice(host) ?? `eth${vifnum}`;
  if (netdev === 'none') return { bridge: req.bridge ?? `xenbr${vifnum}`, netdev: null, pdev: null };
  const bridge = req.bridge ?? netdev;
  return { bridge, netdev, pdev: bridge === netdev ? `p${netdev}` : netdev };
}

interface IpConfig {
  addrs: Address[];
  routes: { family: Family; route: Route }[];
}

function ipConfigOf(host: HostState, link: Link): IpConfig {
  return {
    addrs: (link.addr_info ?? []).filter((a) => !isKernelGenerated(a)),
    routes: [
      ...byDependency(userRoutes(host, link.ifname, 4)).map((route) => ({ family: 4 as const, route })),
      ...byDependency(userRoutes(host, link.ifname, 6)).map((route) => ({ family: 6 as const, route })),
    ],
  };
}

/**
 * Takes addresses and routes off `dev`, one step each so that each can be put back: routes first
 * (gateway routes before the prefix they depend on), then addresses, secondaries before their
 * primary (deleting a primary would take its secondaries with it).
 */
function detachSteps(dev: string, cfg: IpConfig): Step[] {
  const routeSteps = [...cfg.routes].reverse().map(({ family, route }) =>
    step(`route-off:${dev}:${family}:${routeKey(route)}`, `take route ${describeRoute(route)} off ${dev}`,
      [delRoute(route, family, dev)], [addRoute(route, family, dev)]),
  );
  const addrSteps = [...cfg.addrs].reverse().map((a) =>
    step(`addr-off:${dev}:${cidrOf(a)}`, `take address ${cidrOf(a)} off ${dev}`, [delAddress(a, dev)], [addAddress(a, dev)]),
  );
  return [...routeSteps, ...addrSteps];
}

/** Puts an IP configuration observed on `from` onto `to`, in the order it was found. */
function attachSteps(to: string, from: string, cfg: IpConfig): Step[] {
  return [
    ...cfg.addrs.map((a) =>
      step(`addr-on:${to}:${cidrOf(a)}`, `put address ${cidrOf(a)} on ${to}`, [addAddress(a, to, from)], [delAddress(a, to)]),
    ),
    ...cfg.routes.map(({ family, route }) =>
      step(`route-on:${to}:${family}:${routeKey(route)}`, `put route ${describeRoute(route)} on ${to}`,
        [addRoute(route, family, to, from)], [delRoute(route, family, to)]),
    ),
  ];
}

/**
 * Commands that make a VLAN device like `v` (id, protocol, flags, QoS maps, MAC, MTU, queue length,
 * alias, master, up) on `parent`.
 */
function makeVlan(v: Link, parent: string): Command[] {
  const data = v.linkinfo?.info_data ?? {};
  const cmds: Command[] = [
    linkCmd.addVlan(v.ifname, parent, {
      id: Number(data.id),
      ...(data.protocol ? { protocol: data.protocol } : {}),
      // ip -j leaves "flags" out when none is set (reorder_hdr off): that is no flags, not the default.
      flags: data.flags ?? [],
      ...(data.ingress_qos ? { ingressQos: data.ingress_qos } : {}),
      ...(data.egress_qos ? { egressQos: data.egress_qos } : {}),
      ...(v.address ? { mac: v.address } : {}),
      mtu: v.mtu,
      ...(v.txqlen !== undefined ? { txqlen: v.txqlen } : {}),
    }),
  ];
  if (v.ifalias) cmds.push(linkCmd.alias(v.ifname, v.ifalias));
  if (v.master) cmds.push(linkCmd.master(v.ifname, v.master));
  if (isUp(v)) cmds.push(linkCmd.up(v.ifname));
  return cmds;
}

function checkName(name: string, what: string, fix: string): void {
  if (!isValidIfname(name)) throw new PlanError(`${what} '${name}' is not a valid interface name (1-15 bytes, no '/', ':' or spaces); ${fix}`);
}

export function planStart(req: BridgeRequest, obs: BridgeObserved): StartDecision {
  if (req.bridge === 'null') return { kind: 'noop', message: 'bridge=null: nothing to do' };
  const { host } = obs;
  const names = resolveNames(req, host);
  const { bridge, netdev, pdev } = names;
  const steps: Step[] = [];
  const warnings: string[] = [];
  const existingBridge = findLink(host, bridge);
  let nd: Link | undefined;

  if (netdev === null) {
    if (existingBridge) {
      if (isBridge(existingBridge)) return { kind: 'noop', message: `bridge ${bridge} already exists; nothing to do` };
      throw new PlanError(`bridge=${bridge}: a ${existingBridge.linkinfo?.info_kind ?? 'network'} device of that name exists; choose another bridge=`);
    }
    steps.push(step('bridge-add', `create host-only bridge ${bridge}`, [linkCmd.addBridge(bridge, {})], [linkCmd.del(bridge)]));
    steps.push(step('bridge-up', `bring ${bridge} up`, [linkCmd.up(bridge)], [linkCmd.down(bridge)]));
  } else {
    nd = findLink(host, netdev);
    const rename = bridge === netdev;
    if (!nd) {
      const port = pdev ? findLink(host, pdev) : undefined;
      if (rename && port?.master === bridge) return { kind: 'noop', message: `${bridge} is already bridged over ${pdev}; nothing to do` };
      const known = host.links.map((l) => l.ifname).filter((n) => n !== 'lo').join(', ');
      throw new PlanError(
        `netdev=${netdev}: no such device (devices here: ${known || 'none'}); set netdev= to dom0's uplink, or netdev=none for a host-only bridge`,
      );
    }
    if (nd.flags.includes('LOOPBACK')) {
      throw new PlanError(`netdev=${netdev} is the loopback device, which cannot be bridged; set netdev= to dom0's uplink, or netdev=none for a host-only bridge`);
    }
    if (isBridge(nd)) {
      const ports = portsOf(host, netdev).map((l) => l.ifname);
      return { kind: 'noop', message: `${netdev} is already a bridge (ports: ${ports.join(', ') || 'none'}); nothing to do` };
    }
    if (nd.master) {
      if (nd.master === bridge) return { kind: 'noop', message: `${netdev} is already a port of ${bridge}; nothing to do` };
      throw new PlanError(`netdev=${netdev} is already enslaved to ${nd.master}; bridge ${nd.master} instead (netdev=${nd.master})`);
    }
    if (rename) {
      checkName(pdev as string, `the physical device's new name`, `bridge=${netdev} renames netdev to p<netdev>: give the bridge another name (bridge=xenbr0) to keep ${netdev} as it is`);
      if (findLink(host, pdev as string)) {
        throw new PlanError(`cannot rename ${netdev} to ${pdev}: a device ${pdev} already exists; remove it or give the bridge another name (bridge=xenbr0)`);
      }
    } else if (existingBridge) {
      throw new PlanError(
        `bridge=${bridge}: a device of that name already exists (${existingBridge.linkinfo?.info_kind ?? 'device'}); network-bridge creates the bridge itself: remove it (ip link del ${bridge}) or choose another bridge=`,
      );
    }

    // dom0's VLAN devices on netdev, and VLANs stacked on those (QinQ), each after its parent.
    const kids = vlansUnder(host, netdev);
    const kidCfg = new Map(kids.map((k) => [k.ifname, ipConfigOf(host, k)]));
    const cfg = ipConfigOf(host, nd);
    /** Where a VLAN device goes on the bridge's side: netdev's own VLANs on the bridge, the rest on theirs. */
    const parentOnBridge = (k: Link) => (k.link === netdev ? bridge : (k.link as string));

    // dom0's VLAN devices come off the physical device (the stacked ones first: deleting a VLAN
    // device deletes those on it); they are remade on the bridge below.
    for (const k of [...kids].reverse()) {
      steps.push(...detachSteps(k.ifname, kidCfg.get(k.ifname) as IpConfig));
      steps.push(step(`vlan-off:${k.ifname}`, `remove VLAN device ${k.ifname} from ${k.link} (remade on ${parentOnBridge(k)})`,
        [linkCmd.del(k.ifname)], makeVlan(k, k.link as string)));
    }
    steps.push(...detachSteps(netdev, cfg));
    if (rename) {
      const mv = isUp(nd) ? linkCmd.renameLive : linkCmd.rename;
      steps.push(step('netdev-rename', `rename ${netdev} to ${pdev}`, [mv(netdev, pdev as string)], [mv(pdev as string, netdev)]));
    }
    steps.push(step('bridge-add', `create bridge ${bridge} with ${netdev}'s MAC ${nd.address ?? '?'} and MTU ${nd.mtu}`,
      [linkCmd.addBridge(bridge, { ...(nd.address ? { mac: nd.address } : {}), mtu: nd.mtu })], [linkCmd.del(bridge)]));
    steps.push(step('port-add', `add ${pdev} to ${bridge}`, [linkCmd.master(pdev as string, bridge)], [linkCmd.nomaster(pdev as string)]));
    if (isUp(nd)) {
      steps.push(step('bridge-up', `bring ${bridge} up`, [linkCmd.up(bridge)], [linkCmd.down(bridge)]));
    } else {
      warnings.push(`${netdev} was down; ${bridge} is left down too`);
    }
    steps.push(...attachSteps(bridge, netdev, cfg));
    for (const k of kids) {
      steps.push(step(`vlan-on:${k.ifname}`, `make VLAN device ${k.ifname} on ${parentOnBridge(k)} (dom0's side of the bridge)`,
        makeVlan(k, parentOnBridge(k)), [linkCmd.del(k.ifname)]));
      steps.push(...attachSteps(k.ifname, k.ifname, kidCfg.get(k.ifname) as IpConfig));
    }
  }

  for (const v of req.vlans) {
    const name = `${bridge}.${v.id}`;
    checkName(name, `VLAN device`, `use a shorter bridge= name`);
    if (findLink(host, name)) throw new PlanError(`vlans=${v.id}: a device ${name} already exists; drop ${v.id} from vlans=`);
    steps.push(step(`vlan-new:${name}`, `create VLAN ${v.id} as ${name} on ${bridge}`,
      [linkCmd.addVlan(name, bridge, { id: v.id }), linkCmd.up(name)], [linkCmd.del(name)]));
    for (const a of v.addresses) {
      steps.push(step(`addr-on:${name}:${a}`, `put address ${a} on ${name}`,
        [{ argv: ['ip', 'addr', 'add', a, 'dev', name] }], [{ argv: ['ip', 'addr', 'del', a, 'dev', name] }]));
    }
  }

  if (req.antispoof) steps.push(...antispoofSteps(names, obs));
  return { kind: 'plan', names, plan: { steps }, warnings };
}

/**
 * antispoof=yes: bridged traffic goes through iptables (bridge-nf-call-*), the FORWARD policy
 * becomes DROP, and traffic entering from the physical port is accepted; vif-bridge then accepts
 * each guest's own addresses. Unlike the original, FORWARD is never flushed and all is undone.
 */
function antispoofSteps(names: BridgeNames, obs: BridgeObserved): Step[] {
  if (obs.forwardPolicy === undefined) {
    throw new PlanError('antispoof=yes needs a working iptables (iptables -S FORWARD failed): apt-get install iptables, or set antispoof=no');
  }
  const steps: Step[] = [];
  if (!obs.brNetfilter) {
    steps.push(step('br-netfilter', 'load br_netfilter so bridged traffic can be filtered', [{ argv: ['modprobe', 'br_netfilter'] }], []));
  }
  for (const key of BRIDGE_NF_SYSCTLS) {
    // Unknown before br_netfilter is loaded; the module's own default is 1.
    const previous = obs.sysctls[key] ?? '1';
    steps.push(step(`sysctl:${key}`, `set ${key}=1 (was ${previous})`, [writeSysctl(key, '1')], [writeSysctl(key, previous)], `sysctl:${key}`));
  }
  if (names.pdev) {
    const rule = ['-m', 'physdev', '--physdev-in', names.pdev, ...comment(antispoofTag(names.bridge)), '-j', 'ACCEPT'];
    steps.push(step('antispoof-accept', `accept forwarded traffic entering from ${names.pdev}`,
      [iptablesCmd.insert('FORWARD', rule)], [iptablesCmd.delete('FORWARD', rule)]));
  }
  steps.push(step('forward-policy', 'set the iptables FORWARD policy to DROP', [iptablesCmd.setPolicy('FORWARD', 'DROP')],
    [iptablesCmd.setPolicy('FORWARD', obs.forwardPolicy)], FORWARD_POLICY_KEY));
  return steps;
}

/** What start leaves in the state directory: exactly the steps it ran, so stop can reverse them. */
export interface BridgeRecord {
  version: 1;
  bridge: string;
  netdev: string | null;
  pdev: string | null;
  /**
   * The vifnum start was given (0 by default): vif-bridge maps a guest's missing `xenbrN` to the
   * bridge started with vifnum=N, as Xen 3.0/3.1 named it. Absent in records of older versions.
   */
  vifnum?: number;
  startedAt: string;
  steps: Step[];
}

export interface StopDecision {
  plan: Plan;
  /** Other bridges' records that inherit a shared setting's original value, to be saved after. */
  handOver: BridgeRecord[];
}

/**
 * The record's steps, with those about dom0's VLAN devices (the ones start remade on the bridge's
 * side) rebuilt from how each is now. Between start and stop another bridge may have been started
 * over one of them or stopped (seed 004's trunk bridge with seed 000's bridge per VLAN), changing
 * its master, addresses and routes: stop must move it back as it is, not as it was at start (a
 * master that is gone, addresses that came back later and would be lost).
 */
function withCurrentVlans(record: BridgeRecord, host: HostState): Step[] {
  const kids = new Map<string, Link>();
  for (const s of record.steps) {
    if (!s.id.startsWith('vlan-on:')) continue;
    const cur = findLink(host, s.id.slice('vlan-on:'.length));
    if (cur && isVlan(cur) && cur.link) kids.set(cur.ifname, cur);
  }
  if (kids.size === 0) return record.steps;
  // Interface names have no ':', so the first field after the kind is the device.
  const deviceOf = (id: string) => /^(?:(?:addr|route)-(?:off|on)|vlan-(?:off|on)):([^:]+)/.exec(id)?.[1];
  const steps: Step[] = [];
  const done = new Set<string>();
  for (const s of record.steps) {
    const name = deviceOf(s.id);
    const cur = name === undefined ? undefined : kids.get(name);
    if (!cur || !name) {
      steps.push(s);
      continue;
    }
    const cfg = ipConfigOf(host, cur);
    const on = s.id.startsWith('vlan-on:') || /^(?:addr|route)-on:/.test(s.id);
    if (!on && !done.has(`off:${name}`)) {
      done.add(`off:${name}`);
      // Where stop remakes it: on netdev (the bridge's old name, when it took it), or its parent VLAN.
      const parent = cur.link === record.bridge ? (record.netdev as string) : (cur.link as string);
      steps.push(...detachSteps(name, cfg));
      steps.push(step(`vlan-off:${name}`, `remove VLAN device ${name} from ${parent} (remade on ${cur.link})`,
        [linkCmd.del(name)], makeVlan(cur, parent)));
    } else if (on && !done.has(`on:${name}`)) {
      done.add(`on:${name}`);
      steps.push(step(`vlan-on:${name}`, `make VLAN device ${name} on ${cur.link} (dom0's side of the bridge)`,
        makeVlan(cur, cur.link as string), [linkCmd.del(name)]));
      steps.push(...attachSteps(name, name, cfg));
    }
  }
  return steps;
}

/**
 * stop runs start's undo, last step first; dom0's VLAN devices go back as they are now (`host`,
 * see withCurrentVlans). A shared setting (sysctl, FORWARD policy) is put back only by the last
 * bridge that needs it: while others still hold it, the oldest holder keeps the value from before
 * any bridge, and the others simply stop holding it.
 */
export function planStop(record: BridgeRecord, others: readonly BridgeRecord[], host?: HostState): StopDecision {
  const { keep, heirs } = releaseShared(record, host ? withCurrentVlans(record, host) : record.steps, others, (r) => r.bridge);
  return { plan: reversePlan(keep), handOver: heirs };
}

/** Steps of a start record that act on the host outside the bridge (antispoof): they outlive it. */
const OUTLIVES_BRIDGE = /^(br-netfilter|sysctl:.*|antispoof-accept|forward-policy)$/;

export interface Rebuild {
  /** What was found, for the operator. */
  found: string;
  /**
   * Takes the physical side back to how it was before the first start, as far as the bridge's
   * loss left it changed: netdev's name (from p<netdev>), and dom0's addresses and routes when
   * they died with the bridge. Empty when netdev is as it was (a distro restart put them back).
   */
  reset: Plan;
  /** The record's steps still in effect (antispoof): carried into the new record, not redone. */
  keep: Step[];
}

/**
 * A record whose bridge is gone (deleted by a distro network restart, `ip link del`): how to
 * build it again. undefined while the bridge is there. dom0's configuration is taken from where
 * it is now; only what went away with the bridge comes back from the record.
 */
export function planRebuild(record: BridgeRecord, host: HostState): Rebuild | undefined {
  const br = findLink(host, record.bridge);
  if (br && isBridge(br)) return undefined;
  const found: string[] = [`bridge ${record.bridge} (started ${record.startedAt}) is ${br ? `a ${br.linkinfo?.info_kind ?? 'non-bridge'} device now` : 'gone'}`];
  if (br) {
    throw new PlanError(`${found[0]}; network-bridge will not touch it: remove it (ip link del ${record.bridge}) and start again`);
  }
  const undo: Step[] = [];
  const { netdev, pdev } = record;
  if (netdev !== null && pdev !== null) {
    let nd = findLink(host, netdev);
    const renamed = record.steps.find((s) => s.id === 'netdev-rename');
    if (!nd && renamed) {
      const p = findLink(host, pdev);
      if (!p) throw new PlanError(`${found[0]}, and so are ${netdev} and ${pdev}: nothing to build it over; set netdev= to dom0's uplink`);
      if (p.master) throw new PlanError(`${found[0]}, and ${pdev} is a port of ${p.master} now: stop using it there first`);
      found.push(`${netdev} is still named ${pdev}`);
      undo.push(renamed);
      nd = p;
    }
    if (!nd) throw new PlanError(`${found[0]}, and so is ${netdev}: nothing to build it over; set netdev= to dom0's uplink`);
    const own = (nd.addr_info ?? []).filter((a) => !isKernelGenerated(a));
    const configOf = (dev: string) => record.steps.filter((s) => s.id.startsWith(`addr-off:${dev}:`) || s.id.startsWith(`route-off:${dev}:`));
    const lost = configOf(netdev);
    if (own.length > 0) {
      found.push(`${netdev} has addresses of its own again (${own.map(cidrOf).join(' ')}): they move to the bridge as they are`);
    } else if (lost.length > 0) {
      found.push(`dom0's addresses and routes went with it: they come back from the record (${lost.filter((s) => s.id.startsWith('addr-off:')).map((s) => s.id.split(':').slice(2).join(':')).join(' ') || 'routes only'})`);
      undo.push(...lost);
    }
    // dom0's VLAN devices start remade on the bridge died with it: made again where they were
    // before start (on netdev), with their configuration, so that start moves them as usual.
    const goneVlans = record.steps
      .filter((s) => s.id.startsWith('vlan-off:'))
      .map((s) => ({ s, name: s.id.slice('vlan-off:'.length) }))
      .filter(({ name }) => !findLink(host, name));
    if (goneVlans.length) {
      found.push(`so are dom0's VLAN devices ${goneVlans.map((v) => v.name).join(', ')}: made again from the record`);
      for (const v of goneVlans) undo.push(v.s, ...configOf(v.name));
    }
  }
  // Undone in the reverse of the record's order: the name back first, then addresses, then routes.
  const ids = new Set(undo.map((s) => s.id));
  return { found: found.join('; '), reset: reversePlan(record.steps.filter((s) => ids.has(s.id))), keep: record.steps.filter((s) => OUTLIVES_BRIDGE.test(s.id)) };
}
