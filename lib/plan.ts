/**
 * A plan is the whole of what a hook will do to the host, as data: an ordered list of steps, each
 * with the commands that make the change and the commands that take it back. Planning code
 * (lib/plans/) builds plans from a request and an observed state and never runs anything.
 *
 * The undo models the hooks use, all built on Step.undo:
 * - Rollback (every hook): a step that fails makes the executor run the undo of the completed
 *   steps, last first (executor.ts), so a failed start/online leaves the host as it found it.
 * - Recorded steps reversed (network-bridge, network-route, network-nat stop): start saves the
 *   steps it ran, undo commands included, and stop runs reversePlan of them.
 * - Recorded layout replanned (vif-route, vif-nat offline): online saves the layout as data
 *   (RoutedVif), and offline plans its steps again and reverses them.
 * - Removal by name (vif-bridge offline; any vif hook without a record): the guard and port are
 *   taken out by the device's chain and link names, every command tolerating what is gone.
 * - Shared settings (Step.shared: ip_forward, bridge-nf-call-*, the FORWARD policy): only the
 *   last holder puts back the original value (plans/shared-settings.ts).
 */
import type { Command } from './exec.ts';

export interface Step {
  /** Stable name, unique within the plan; fault injection and logs refer to it. */
  id: string;
  /** What the step does, for a reader of --dry-run and the log. */
  description: string;
  run: Command[];
  /** Restores what `run` changed; run in order. Empty for steps that change nothing lasting. */
  undo: Command[];
  /**
   * Names a host-wide setting (a sysctl, a firewall policy) that several bridges may change. The
   * stop planner lets only the last holder restore the original value.
   */
  shared?: string;
  /**
   * The run commands are independent of each other (one transaction each for ebtables, iptables
   * and ip6tables): the executor starts them at once. A vif hook's cost is mostly waiting for
   * such processes, and libxl waits for the hook.
   */
  concurrent?: boolean;
  /**
   * Needs no host lock: the step changes nothing that Xen's scripts change under the lock the
   * hook holds (a vif's own link, its xenstore nodes; not the firewall). When the executor is
   * given a lock (ExecuteOptions.lock) it runs such steps without it, so that hooks started at
   * once for many guests wait for each other only while they change the firewall.
   */
  unlocked?: boolean;
}

/** The request cannot be carried out on this host; the message says why and what to change. */
export class PlanError extends Error {}

export interface Plan {
  steps: Step[];
}

export function step(id: string, description: string, run: Command[], undo: Command[], shared?: string): Step {
  return shared === undefined ? { id, description, run, undo } : { id, description, run, undo, shared };
}

/** The plan that takes back a completed one: every step's undo, last step first, redo as its undo. */
export function reversePlan(steps: readonly Step[]): Plan {
  return {
    steps: [...steps].reverse().map((s) => {
      const r: Step = { id: `undo-${s.id}`, description: `undo: ${s.description}`, run: s.undo, undo: s.run };
      if (s.shared !== undefined) r.shared = s.shared;
      if (s.unlocked) r.unlocked = true;
      return r;
    }),
  };
}

/** The step, marked as needing no host lock (Step.unlocked). */
export function unlocked(s: Step): Step {
  return { ...s, unlocked: true };
}

export function assertUniqueIds(plan: Plan): void {
  const seen = new Set<string>();
  for (const s of plan.steps) {
    if (seen.has(s.id)) throw new Error(`internal error: duplicate step id ${s.id}`);
    seen.add(s.id);
  }
}
