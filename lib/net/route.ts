/** Routes as `ip -j route show table all` reports them, and commands that recreate one exactly. */
import type { Command } from '../exec.ts';

export interface Route {
  type?: string;
  dst: string;
  gateway?: string;
  dev?: string;
  protocol?: string;
  scope?: string;
  prefsrc?: string;
  metric?: number;
  flags?: string[];
  table?: string;
  pref?: string;
  tos?: string;
  metrics?: Record<string, number | [string, number] | unknown>[];
  /** A multipath route: no top-level gateway or dev. */
  nexthops?: Nexthop[];
}

export interface Nexthop {
  gateway?: string;
  dev?: string;
  weight?: number;
  flags?: string[];
}

export type Family = 4 | 6;

/**
 * Routes the kernel makes and remakes by itself (prefix routes of addresses, local and broadcast
 * entries, IPv6 link-local and multicast, routes learnt from router advertisements): moving an
 * address or a link recreates them, so copying them would only collide.
 */
export function isKernelRoute(r: Route): boolean {
  return r.protocol === 'kernel' || r.protocol === 'ra' || r.table === 'local';
}

const ADD_TOLERATE = ['File exists'];
const DEL_TOLERATE = ['No such process', 'No such file or directory'];

function selector(r: Route, dev: string): string[] {
  const a: string[] = [];
  if (r.type && r.type !== 'unicast') a.push(r.type);
  a.push(r.dst);
  if (r.tos) a.push('tos', r.tos);
  if (!r.nexthops) {
    if (r.gateway) a.push('via', r.gateway);
    a.push('dev', dev);
  }
  if (r.table && r.table !== 'main') a.push('table', r.table);
  if (r.metric !== undefined) a.push('metric', String(r.metric));
  return a;
}

/** The nexthop list of a multipath route, with the hops through `from` moved to `to`. */
function nexthopArgs(r: Route, from: string, to: string): string[] {
  return (r.nexthops ?? []).flatMap((n) => [
    'nexthop',
    ...(n.gateway ? ['via', n.gateway] : []),
    ...(n.dev ? ['dev', n.dev === from ? to : n.dev] : []),
    ...(n.weight !== undefined && n.weight !== 1 ? ['weight', String(n.weight)] : []),
    ...(n.flags?.includes('onlink') ? ['onlink'] : []),
  ]);
}

function metricArgs(r: Route): string[] {
  const a: string[] = [];
  for (const m of r.metrics ?? []) {
    for (const [k, v] of Object.entries(m)) {
      if (Array.isArray(v)) a.push(k, ...v.map(String)); // ["lock", 1400]
      else a.push(k, String(v));
    }
  }
  return a;
}

/**
 * `ip route add` that recreates `r` through `dev`. For a multipath route only the hops through
 * `from` (the device it was observed on) move to `dev`; the others stay where they are.
 */
export function addRoute(r: Route, family: Family, dev: string, from: string = dev): Command {
  const argv = ['ip', `-${family}`, 'route', 'add', ...selector(r, dev)];
  if (r.protocol && r.protocol !== 'boot') argv.push('proto', r.protocol);
  if (r.scope && r.scope !== 'global' && r.scope !== 'universe') argv.push('scope', r.scope);
  if (r.prefsrc) argv.push('src', r.prefsrc);
  if (r.pref && r.pref !== 'medium') argv.push('pref', r.pref);
  if (!r.nexthops && r.flags?.includes('onlink')) argv.push('onlink');
  argv.push(...metricArgs(r));
  argv.push(...nexthopArgs(r, from, dev));
  return { argv, tolerate: ADD_TOLERATE };
}

export function delRoute(r: Route, family: Family, dev: string): Command {
  return { argv: ['ip', `-${family}`, 'route', 'del', ...selector(r, dev)], tolerate: DEL_TOLERATE };
}

/** Gateway routes need their nexthop's prefix route first; delete them first, add them last. */
export function byDependency(routes: readonly Route[]): Route[] {
  return [...routes.filter((r) => !r.gateway), ...routes.filter((r) => r.gateway)];
}

/** A name for a route without spaces, unique per device and family: for step ids. */
export function routeKey(r: Route): string {
  return [r.dst, r.gateway && `via=${r.gateway}`, r.table && r.table !== 'main' && `table=${r.table}`, r.metric !== undefined && `metric=${r.metric}`, r.tos && `tos=${r.tos}`]
    .filter(Boolean)
    .join(',');
}

export function describeRoute(r: Route): string {
  return [r.dst, r.gateway ? `via ${r.gateway}` : '', r.table && r.table !== 'main' ? `table ${r.table}` : '']
    .filter(Boolean)
    .join(' ');
}
