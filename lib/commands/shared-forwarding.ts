/**
 * network-route and network-nat both hold net.ipv4.ip_forward: each one's stop looks at the
 * other's records too (shared-settings.ts), and both take the same lock.
 */
import type { StartRecord } from '../plans/shared-settings.ts';
import type { Plan } from '../plan.ts';
import { byNetdev, natRecords, routeRecords, type NatRecord, type RouteRecord } from '../records.ts';
import type { BadRecord, StateStore } from '../state.ts';
import { runNetworkStop, type Context } from './network-shell.ts';

export const FORWARDING_LOCK = 'ip-forward';

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

/** Saves the records that inherited an original value from the one that stopped. */
export function saveHandOver(env: NodeJS.ProcessEnv, heirs: readonly StartRecord[]): void {
  for (const h of heirs) {
    if (h.hook === 'network-route') routeRecords(env).write(h.key, h as RouteRecord);
    else if (h.hook === 'network-nat') natRecords(env).write(h.key, h as NatRecord);
  }
}

/** What differs between network-route's and network-nat's stop: words, and the plan of the release. */
export interface ForwardingStop<R extends StartRecord & { netdev: string }> {
  hook: 'network-route' | 'network-nat';
  store: StateStore<R>;
  netdev: string | undefined;
  notStarted(all: ReadonlyMap<string, R>): string;
  title(record: R): string;
  /** start's steps taken back, given every start record of both hooks (shared-settings.ts). */
  release(record: R, others: StartRecord[]): { plan: Plan; handOver: StartRecord[]; logged?: Record<string, unknown> };
  done(record: R, heirs: readonly StartRecord[]): string;
}

/**
 * stop of network-route or network-nat: under the lock both take, the record meant, its release
 * with the shared settings left alone when another start's record cannot be trusted, the records
 * that inherit ip_forward's original value saved.
 */
export function stopForwarding<R extends StartRecord & { netdev: string }>(ctx: Context, s: ForwardingStop<R>): Promise<number> {
  const { env, out } = ctx;
  return runNetworkStop<R, StartRecord>(ctx, {
    hook: s.hook,
    lock: FORWARDING_LOCK,
    store: s.store,
    choice: byNetdev(s.netdev),
    untrusted: (b) => untrustedStart(b, s.hook),
    notStarted: (all) => s.notStarted(all),
    plan(record) {
      const bad: BadRecord[] = [];
      const released = s.release(record, allStartRecords(env, (b) => bad.push(b)));
      const plan = keepSharedFor(released.plan, bad, out.say);
      return { plan, title: s.title(record), facts: { netdev: record.netdev }, logged: released.logged, handOver: released.handOver };
    },
    saveHandOver: (heirs) => saveHandOver(env, heirs),
    keyOf: (r) => r.key,
    done: (r, heirs) => s.done(r, heirs),
  });
}
