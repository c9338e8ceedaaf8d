/**
 * Every record a hook leaves in the state directory (state.ts), in one place: the store each hook
 * writes (its name), the record's type, checked field by field when it is read back
 * (record-shape.ts) so that stop/offline act on what the type says or say exactly which file is
 * wrong and how, and which record a bare stop/status means (pickRecord).
 */
import type { DnsmasqFiles } from './dhcp/dnsmasq.ts';
import type { SourceGuard } from './firewall/source-guard.ts';
import type { BridgeRecord } from './plans/network-bridge.ts';
import type { NatRecord } from './plans/network-nat.ts';
import type { RouteRecord } from './plans/network-route.ts';
import type { NatVif } from './plans/vif-nat.ts';
import type { HostRoute, RoutedVif } from './plans/vif-route.ts';
import type { FirewallBackend, VifGuard } from './firewall/guard.ts';
import { SERVES, type GuestPolicy, type ScopeKind } from './cli/policy.ts';
import { defaultRouteDevice, type HostState } from './net/host.ts';
import { BadRecord, StateStore } from './state.ts';
import {
  array, boolean, nullableString, number, object, oneOf, optionalBoolean, optionalNumber, optionalObject, optionalString, planStep, string, stringItem,
  ShapeError, type Fields,
} from './record-shape.ts';

export interface VifBridgeRecord {
  version: 1;
  dev: string;
  bridge: string;
  firewall: FirewallBackend;
  /** NOTRACK is in place (for firewall=iptables: in the nft companion; without nft, none). */
  notrack: boolean;
  /**
   * Written since NOTRACK covers frames bridged through only (nft.ts). A record without it is an
   * earlier version's, whose firewall=iptables put NOTRACK in iptables' raw table for everything
   * from the vif: its removal takes that out too.
   */
  notrackBridgedOnly?: true;
  /**
   * The config file's policy online applied (cli/policy.ts), as it was then: what the guard
   * allowed beyond the strict one. Absent: the strict guard (and every earlier version's record).
   */
  policy?: GuestPolicy;
  onlineAt: string;
  /**
   * The guest's addresses as online took them (xenstore `ip`), for status. Optional: records of
   * earlier versions lack it and stay valid.
   */
  ip?: string[] | undefined;
  /**
   * What online laid the guard from (firewall iptables/nft), so that repair can lay exactly that
   * again. Optional as `ip`: a record without it cannot be repaired, only reported.
   */
  guard?: VifGuard | undefined;
}

function vifGuard(o: Fields, where: string): VifGuard {
  return {
    dev: string(o, 'dev', where),
    mac: optionalString(o, 'mac', where),
    ipv4: array(o, 'ipv4', stringItem, where),
    ipv6: array(o, 'ipv6', stringItem, where),
    antispoof: boolean(o, 'antispoof', where),
    l2: optionalBoolean(o, 'l2', where),
    notrack: boolean(o, 'notrack', where),
    companion: optionalBoolean(o, 'companion', where),
    // A per-guest policy's allowances (cli/policy.ts), so that repair lays the guest's own guard.
    ...guardPolicyFields(o, where),
  };
}

/** A flag that is present only as `true`. */
function trueOnly(o: Fields, key: string): true {
  if (!boolean(o, key)) throw new ShapeError(`${key} is false, but is written only as true`);
  return true;
}

export function checkVifBridgeRecord(v: unknown): VifBridgeRecord {
  const o = object(v, '');
  return {
    version: oneOf(o, 'version', [1]),
    dev: string(o, 'dev'),
    bridge: string(o, 'bridge'),
    firewall: oneOf<FirewallBackend>(o, 'firewall', ['iptables', 'nft', 'none']),
    notrack: boolean(o, 'notrack'),
    ...(o['notrackBridgedOnly'] === undefined ? {} : { notrackBridgedOnly: trueOnly(o, 'notrackBridgedOnly') }),
    ...(o['policy'] === undefined ? {} : { policy: guestPolicy(object(o['policy'], 'policy'), 'policy') }),
    onlineAt: string(o, 'onlineAt'),
    ...(o.ip === undefined ? {} : { ip: array(o, 'ip', stringItem) }),
    ...(o.guard === undefined ? {} : { guard: optionalObject(o, 'guard', vifGuard) }),
  };
}

function numberItem(v: unknown, where: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new ShapeError(`${where} is not an integer`);
  return v;
}

/**
 * A stored VifGuard's policy fields (firewall/guard.ts: vlans, ethertypes, serve), each optional:
 * whatever reads a whole VifGuard back from a record (repair lays the guard from it) spreads
 * these in, or a repaired guard would be the strict one.
 */
export function guardPolicyFields(o: Fields, where: string): Pick<VifGuard, 'vlans' | 'ethertypes' | 'serve'> {
  return {
    ...(o['vlans'] === undefined ? {} : { vlans: array(o, 'vlans', numberItem, where) }),
    ...(o['ethertypes'] === undefined ? {} : { ethertypes: array(o, 'ethertypes', numberItem, where) }),
    ...(o['serve'] === undefined ? {} : { serve: array(o, 'serve', serveItem, where) }),
  };
}

function serveItem(v: unknown, w: string): GuestPolicy['serve'][number] {
  if (typeof v !== 'string' || !(SERVES as readonly string[]).includes(v)) throw new ShapeError(`${w} is not one of ${SERVES.join(', ')}`);
  return v as GuestPolicy['serve'][number];
}

function guestPolicy(o: Fields, where: string): GuestPolicy {
  const scope = object(o['scope'], `${where}.scope`);
  return {
    scope: { kind: oneOf<ScopeKind>(scope, 'kind', ['guest', 'mac', 'vifname'], `${where}.scope`), value: string(scope, 'value', `${where}.scope`) },
    where: string(o, 'where', where),
    guard: boolean(o, 'guard', where),
    route: boolean(o, 'route', where),
    trunk: array(o, 'trunk', numberItem, where),
    serve: array(o, 'serve', serveItem, where),
    ethertypes: array(o, 'ethertypes', numberItem, where),
  };
}

export function checkBridgeRecord(v: unknown): BridgeRecord {
  const o = object(v, '');
  return {
    version: oneOf(o, 'version', [1]),
    bridge: string(o, 'bridge'),
    netdev: nullableString(o, 'netdev'),
    pdev: nullableString(o, 'pdev'),
    ...(o['vifnum'] === undefined ? {} : { vifnum: number(o, 'vifnum') }),
    startedAt: string(o, 'startedAt'),
    steps: array(o, 'steps', planStep),
  };
}

function startFields(o: Fields): { hook: string; key: string; startedAt: string; steps: RouteRecord['steps'] } {
  return { hook: string(o, 'hook'), key: string(o, 'key'), startedAt: string(o, 'startedAt'), steps: array(o, 'steps', planStep) };
}

export function checkRouteRecord(v: unknown): RouteRecord {
  const o = object(v, '');
  return { ...startFields(o), version: oneOf(o, 'version', [1]), netdev: string(o, 'netdev'), ipv6: boolean(o, 'ipv6') };
}

function dnsmasqFiles(v: unknown, where: string): DnsmasqFiles {
  const o = object(v, where);
  return { dir: string(o, 'dir', where), pidFile: string(o, 'pidFile', where), leaseFile: string(o, 'leaseFile', where), hostsDir: string(o, 'hostsDir', where) };
}

export function checkNatRecord(v: unknown): NatRecord {
  const o = object(v, '');
  return {
    ...startFields(o),
    version: oneOf(o, 'version', [1]),
    netdev: string(o, 'netdev'),
    subnet: string(o, 'subnet'),
    dhcp: o.dhcp === null ? null : dnsmasqFiles(o.dhcp, 'dhcp'),
  };
}

function hostRoute(v: unknown, where: string): HostRoute {
  const o = object(v, where);
  return { family: oneOf(o, 'family', [4, 6], where), dst: string(o, 'dst', where), src: optionalString(o, 'src', where), metric: optionalNumber(o, 'metric', where) };
}

function sourceGuard(o: Fields, where: string): SourceGuard {
  return { dev: string(o, 'dev', where), ipv4: array(o, 'ipv4', stringItem, where), ipv6: array(o, 'ipv6', stringItem, where), dhcp: boolean(o, 'dhcp', where) };
}

function routedVif(o: Fields, where: string): RoutedVif {
  return {
    kernelName: string(o, 'kernelName', where),
    dev: string(o, 'dev', where),
    rename: boolean(o, 'rename', where),
    mtu: optionalObject(o, 'mtu', (m, w) => ({ want: number(m, 'want', w), was: number(m, 'was', w) }), where),
    local: string(o, 'local', where),
    proxyArpWas: optionalString(o, 'proxyArpWas', where),
    routes: array(o, 'routes', hostRoute, where),
    ndpProxies: array(o, 'ndpProxies', (p, w) => {
      const f = object(p, w);
      return { addr: string(f, 'addr', w), dev: string(f, 'dev', w) };
    }, where),
    guard: optionalObject(o, 'guard', sourceGuard, where),
  };
}

export interface VifRouteRecord {
  version: 1;
  layout: RoutedVif;
  onlineAt: string;
}

export interface VifNatRecord {
  version: 1;
  layout: NatVif;
  onlineAt: string;
}

export function checkVifRouteRecord(v: unknown): VifRouteRecord {
  const o = object(v, '');
  return { version: oneOf(o, 'version', [1]), layout: routedVif(object(o.layout, 'layout'), 'layout'), onlineAt: string(o, 'onlineAt') };
}

export function checkVifNatRecord(v: unknown): VifNatRecord {
  const o = object(v, '');
  const layout = object(o.layout, 'layout');
  return {
    version: oneOf(o, 'version', [1]),
    layout: {
      ...routedVif(layout, 'layout'),
      dhcp: optionalObject(layout, 'dhcp', (d, w) => ({ file: string(d, 'file', w), entry: string(d, 'entry', w) }), 'layout'),
    },
    onlineAt: string(o, 'onlineAt'),
  };
}

export type { BridgeRecord, NatRecord, NatVif, RouteRecord, RoutedVif };

/** The stores, one per hook, named as the hook: `<hook>.<key>.json` in the state directory. */
export const bridgeRecords = (env: NodeJS.ProcessEnv) => new StateStore<BridgeRecord>(env, 'network-bridge', checkBridgeRecord);
export const routeRecords = (env: NodeJS.ProcessEnv) => new StateStore<RouteRecord>(env, 'network-route', checkRouteRecord);
export const natRecords = (env: NodeJS.ProcessEnv) => new StateStore<NatRecord>(env, 'network-nat', checkNatRecord);
export const vifBridgeRecords = (env: NodeJS.ProcessEnv) => new StateStore<VifBridgeRecord>(env, 'vif-bridge', checkVifBridgeRecord);
export const vifRouteRecords = (env: NodeJS.ProcessEnv) => new StateStore<VifRouteRecord>(env, 'vif-route', checkVifRouteRecord);
export const vifNatRecords = (env: NodeJS.ProcessEnv) => new StateStore<VifNatRecord>(env, 'vif-nat', checkVifNatRecord);

/** What a stop/status call asks for, and how a network-* hook's records answer it. */
export interface RecordChoice<R> {
  /** The record's key (its file name) when the call names it: network-bridge's bridge=, network-route/-nat's netdev=. */
  key?: string | undefined;
  /** Else the record over this netdev, when the call names one (network-bridge's netdev=). */
  netdev?: string | undefined;
  /** The netdev a record is over, compared with `netdev`. */
  netdevOf(r: R): string;
  /** The devices a default route through which means this record. */
  devicesOf(key: string, r: R): readonly string[];
}

/**
 * Which record a bare stop/status means: the one named, else the one over the netdev named, else
 * the one over the default route's device, else the only one.
 */
export function pickRecord<R>(all: ReadonlyMap<string, R>, choice: RecordChoice<R>, host: HostState): R | undefined {
  if (choice.key !== undefined) return all.get(choice.key);
  const entries = [...all.entries()];
  if (choice.netdev !== undefined) return entries.find(([, r]) => choice.netdevOf(r) === choice.netdev)?.[1];
  const dev = defaultRouteDevice(host);
  const byDefault = dev === undefined ? undefined : entries.find(([k, r]) => choice.devicesOf(k, r).includes(dev))?.[1];
  if (byDefault) return byDefault;
  return all.size === 1 ? entries[0]?.[1] : undefined;
}

/**
 * pickRecord for a stop, which must not take "no record" for "nothing to do" when the record
 * asked for (or, none asked for, the only one there is) cannot be trusted: then the error
 * `untrusted` makes of it, saying what to do by hand.
 */
export function pickForStop<R>(all: ReadonlyMap<string, R>, bad: readonly BadRecord[], choice: RecordChoice<R>, host: HostState, untrusted: (bad: BadRecord) => Error): R | undefined {
  const record = pickRecord(all, choice, host);
  if (record) return record;
  const hit = bad.find((b) => b.key === choice.key) ?? (choice.key === undefined && choice.netdev === undefined && all.size === 0 ? bad[0] : undefined);
  if (hit) throw untrusted(hit);
  return undefined;
}

/** network-route's and network-nat's records: named by netdev, which is their key. */
export const byNetdev = <R extends { netdev: string }>(netdev: string | undefined): RecordChoice<R> => ({
  key: netdev,
  netdevOf: (r) => r.netdev,
  devicesOf: (key) => [key],
});
