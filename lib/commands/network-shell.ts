/**
 * The part of a network-* hook (network-bridge, network-route, network-nat) that is the same
 * whatever the layout: under the hook's lock, observe the host, find the record a start left
 * (already started?) or the one a stop means, plan, print the plan on --dry-run or execute it,
 * then write or remove the record. A layout supplies only its planning and its words.
 * (vif-hotplug.ts is the vif hooks' shell.)
 */
import type { Flags } from '../cli/args.ts';
import { printPlan } from '../dry-run.ts';
import { execute } from '../executor.ts';
import { withLock } from '../lock.ts';
import type { Output } from '../log.ts';
import { observeHost, type HostState } from '../net/host.ts';
import type { Plan, Step } from '../plan.ts';
import { pickForStop, type RecordChoice } from '../records.ts';
import type { BadRecord, StateStore } from '../state.ts';
import { planPrograms, requireTools } from '../tools.ts';

export interface Context {
  env: NodeJS.ProcessEnv;
  flags: Flags;
  out: Output;
}

/** A plan to run, how --dry-run and the log present it. */
export interface Planned {
  plan: Plan;
  /** The --dry-run heading. */
  title: string;
  /** What --dry-run --json and the log say besides the steps. */
  facts: Record<string, unknown>;
  /** What only the log says besides. */
  logged?: Record<string, unknown>;
}

export interface NetworkStart<R, P extends Planned = Planned> {
  hook: string;
  lock: string;
  store: StateStore<R>;
  /** The record's key (its file name) for this start, given the host as observed. */
  key(host: HostState): string;
  /** The message when a record under that key says it is started already. */
  already(existing: R): string;
  plan(host: HostState, key: string): P;
  /** The record of a start that ran `steps`, as `planned`. */
  record(key: string, steps: Step[], planned: P): R;
  done(record: R): string;
}

export async function runNetworkStart<R, P extends Planned = Planned>(ctx: Context, s: NetworkStart<R, P>): Promise<number> {
  const { env, out, flags } = ctx;
  if (!flags.dryRun) requireTools(['ip', 'flock'], env, `${s.hook} start`);
  return withLock(s.lock, env, async () => {
    const host = await observeHost();
    const key = s.key(host);
    const existing = s.store.read(key);
    if (existing) {
      out.say(s.already(existing));
      return 0;
    }
    const planned = s.plan(host, key);
    const { plan, title, facts } = planned;
    if (flags.dryRun) {
      printPlan(title, plan, flags, { command: 'start', ...facts });
      return 0;
    }
    out.log.info({ ...facts, steps: plan.steps.length }, 'start');
    requireTools(planPrograms(plan), env, `${s.hook} start`);
    const steps = await execute(plan, { log: out.log, say: out.say, fault: env.XEN_NETHOOKS_FAULT });
    const record = s.record(key, steps, planned);
    s.store.write(key, record);
    out.say(s.done(record));
    return 0;
  });
}

export interface NetworkStop<R, H> {
  hook: string;
  lock: string;
  /** For the lock's holder file; without it, the lock is taken without naming a holder. */
  holder?: { hook: string; what: string } | undefined;
  store: StateStore<R>;
  /** Which record this stop means (records.ts). */
  choice: RecordChoice<R>;
  /** The error for a record asked for that cannot be trusted: what to do by hand. */
  untrusted(bad: BadRecord): Error;
  /** What to say when no record is meant: nothing to do. */
  notStarted(all: ReadonlyMap<string, R>, bad: readonly BadRecord[]): string;
  /** Records of other keys that cannot be trusted, once the one meant is found. */
  othersBad?(record: R, bad: readonly BadRecord[]): void;
  plan(record: R, all: ReadonlyMap<string, R>, host: HostState): Planned & { handOver: H[] };
  /** Saves the records that inherit a shared setting's original value, after the plan ran. */
  saveHandOver(heirs: readonly H[]): void;
  keyOf(record: R): string;
  done(record: R, heirs: readonly H[]): string;
}

export async function runNetworkStop<R, H>(ctx: Context, s: NetworkStop<R, H>): Promise<number> {
  const { env, out, flags } = ctx;
  const body = async () => {
    const bad: BadRecord[] = [];
    const all = s.store.all((b) => bad.push(b));
    const host = await observeHost();
    const record = pickForStop(all, bad, s.choice, host, s.untrusted);
    if (!record) {
      out.say(s.notStarted(all, bad));
      return 0;
    }
    s.othersBad?.(record, bad);
    const { plan, title, facts, logged, handOver } = s.plan(record, all, host);
    if (flags.dryRun) {
      printPlan(title, plan, flags, { command: 'stop', ...facts });
      return 0;
    }
    out.log.info({ ...facts, ...logged, steps: plan.steps.length }, 'stop');
    await execute(plan, { log: out.log, say: out.say, fault: env.XEN_NETHOOKS_FAULT });
    s.saveHandOver(handOver);
    s.store.remove(s.keyOf(record));
    out.say(s.done(record, handOver));
    return 0;
  };
  return s.holder ? withLock(s.lock, env, body, s.holder, out.log) : withLock(s.lock, env, body);
}
