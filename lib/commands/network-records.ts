/**
 * The records network-route and network-nat leave in the state directory. Both hold
 * net.ipv4.ip_forward, so each one's stop looks at the other's records too (shared-steps.ts),
 * and both take the same lock.
 */
import { defaultRouteDevice, type HostState } from '../net/host.ts';
import type { NatRecord } from '../plans/nat.ts';
import type { RouteRecord } from '../plans/route.ts';
import type { StartRecord } from '../plans/shared-steps.ts';
import { checkNatRecord, checkRouteRecord } from '../record-checks.ts';
import { StateStore } from '../state.ts';

export const FORWARDING_LOCK = 'ip-forward';

export const routeRecords = (env: NodeJS.ProcessEnv) => new StateStore<RouteRecord>(env, 'network-route', checkRouteRecord);
export const natRecords = (env: NodeJS.ProcessEnv) => new StateStore<NatRecord>(env, 'network-nat', checkNatRecord);

export function allStartRecords(env: NodeJS.ProcessEnv): StartRecord[] {
  return [...routeRecords(env).all().values(), ...natRecords(env).all().values()];
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
