/** --dry-run output of a plan: the rendered steps, or with --json the steps as data. */
import type { Flags } from '../cli/args.ts';
import { renderPlan } from '../executor.ts';
import type { Plan } from '../plan.ts';

export function printPlan(title: string, plan: Plan, flags: Flags, extra: Record<string, unknown>): void {
  if (flags.json) process.stdout.write(JSON.stringify({ dryRun: true, ...extra, steps: plan.steps }, null, 2) + '\n');
  else process.stdout.write(`${title} (dry run: nothing is changed)\n${renderPlan(plan)}`);
}
