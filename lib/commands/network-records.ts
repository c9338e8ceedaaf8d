/**
 * The records network-route and network-nat leave in the state directory. Both hold
 * net.ipv4.ip_forward, so each one's stop looks at the other's records too (shared-settings.ts),
 * and both take the same lock.
 */
import { defaultRouteDevice, type HostState } from '../net/host.ts';
import type { NatRecord } from '../plans/network-nat.ts';
import type { RouteRecord } from '../plans/network-route.ts';
import type { StartRecord } from '../plans/shared-settings.ts';
import { checkNatRecord, checkRouteRecord } from '../record-checks.ts';
import type { Plan } from '../plan.ts';
import { BadRecord, StateStore } from '../state.ts';

export const FORWARDING_LOCK = 'ip-forward';

export const routeRecords = (env: NodeJS.ProcessEnv) => new StateStore<RouteRecord>(env, 'network-route', checkRouteRecord);
export const natRecords = (env: NodeJS.ProcessEnv) => new StateStore<NatRecord>(env, 'network-nat', checkNatRecord);

/** Every start record of both hooks; the ones that cannot be trusted go to `onBad` (else they throw). */
export function allStartRecords(env: NodeJS.ProcessEnv, onBad?: (bad: BadRecord) => void): StartRecord[] {
  return [...routeRecords(env).all(onBad).values(), ...natRecords(env).all(onBad).values()];
}

/** A start record that cannot be trusted, as the error for a stop of that start: what to do by hand. */
export function untrustedStart(bad: BadRecord, hook: string): Error {
  return new Error(
    `${bad.message}. ${hook} will not guess what start did over ${bad.key}. To clean up by hand: see what is there ` +
      `(sysctl net.ipv4.ip_forward net.ipv4.conf.${bad.key}.proxy_arp; iptables-save -t nat), set back what start changed, ` +
      `then remove the record (rm ${bad.path}); start and stop over ${bad.key} work again after that`,
  );
}

/**
 * A stop while another start's record cannot be trusted: that start may hold a shared setting
 * (ip_forward) too, so the shared steps are left as they are rather than guessed at.
 */
export function keepSharedFor(plan: Plan, bad: readonly BadRecord[], say: (m: string) => void): Plan {
  if (bad.length === 0) return plan;
  const left = plan.steps.filter((s) => s.shared !== undefined);
  for (const b of bad) say(`warning: ${b.message}; ${left.length ? `left as they are (that start may hold them too): ${left.map((s) => s.shared).join(', ')}` : 'ignored'}`);
  return { steps: plan.steps.filter((s) => s.shared === undefined) };
}

/** Which record a stop means, or the error when it is one that cannot be trusted. */
export function pickForStop<R extends { netdev: string }>(all: ReadonlyMap<string, R>, bad: readonly BadRecord[], netdev: string | undefined, host: HostState, hook: string): R | undefined {
  const record = pickRecord(all, netdev, host);
  if (record) return record;
  const hit = bad.find((b) => b.key === netdev) ?? (netdev === undefined && all.size === 0 ? bad[0] : undefined);
  if (hit) throw untrustedStart(hit, hook);
  return undefined;
}

/** Saves the records that inherited an original value from the one that stopped. */
export function saveHandOver(env: NodeJS.ProcessEnv, heirs: readonly StartRecord[]): void {
  for (const h of heirs) {
    if (h.hook === 'network-route') routeRecords(env).write(h.key, h as RouteRecord);
    else if (h.hook === 'network-nat') natRecords(env).write(h.key, h as NatRecord);
  }
}

/** Which start a bare stop/status means: the netdev named, else the default route's, else the only one. */
export function pickRecord<R extends { netdev: string }>(all: ReadonlyMap<string, R>, netdev: string | undefined, host: HostState): R | undefined {
  if (netdev !== undefined) return all.get(netdev);
  const dev = defaultRouteDevice(host);
  const byDefault = dev === undefined ? undefined : all.get(dev);
  if (byDefault) return byDefault;
  return all.size === 1 ? [...all.values()][0] : undefined;
}
