/**
 * --dry-run, in one place: what a hook would do, printed instead of executed. The rendered steps
 * (each with its exact commands and its undo), or with --json the plan as data.
 */
import type { Flags } from './cli/args.ts';
import { formatCommand, type Command } from './exec.ts';
import type { Plan } from './plan.ts';

/** The --dry-run rendering: every step, its exact commands and its undo. */
export function renderPlan(plan: Plan): string {
  if (plan.steps.length === 0) return '  (nothing to do)\n';
  return plan.steps
    .map((s, i) => {
      const lines = [`${String(i + 1).padStart(3)}. ${s.description}  [${s.id}]${s.concurrent ? ' (run at once)' : ''}`];
      const show = (c: Command, prefix: string) => {
        lines.push(`       ${prefix}${formatCommand(c)}`);
        if (c.fallback) lines.push(`       ${' '.repeat(prefix.length)}  (if refused: ${c.fallback.commands.map(formatCommand).join('; ')})`);
      };
      for (const c of s.run) show(c, '');
      for (const c of s.undo) show(c, 'undo: ');
      return lines.join('\n');
    })
    .join('\n') + '\n';
}

export function printPlan(title: string, plan: Plan, flags: Flags, extra: Record<string, unknown>): void {
  if (flags.json) process.stdout.write(JSON.stringify({ dryRun: true, ...extra, steps: plan.steps }, null, 2) + '\n');
  else process.stdout.write(`${title} (dry run: nothing is changed)\n${renderPlan(plan)}`);
}
