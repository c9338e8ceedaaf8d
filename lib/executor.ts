/**
 * The one place that changes the host. Runs a plan's steps in order and logs each command; on the
 * first failure it runs the undo of every completed step in reverse, so that a hook that fails
 * half-way leaves the host as it found it. It has no dry-run mode: --dry-run never reaches it
 * (dry-run.ts prints the plan instead).
 *
 * Fault injection, for tests only: XEN_NETHOOKS_FAULT=<step id> makes that step fail right after
 * its commands have run, as a failure that has already changed the host would; the step is then
 * rolled back with the others. The variable is ignored unless it names a step of the plan.
 */
import { monotonicMs } from './clock.ts';
import { CommandError, formatCommand, run, type Command } from './exec.ts';
import type { Logger } from './log.ts';
import type { Plan, Step } from './plan.ts';

/** A host lock the executor takes only around the steps that need it (see Step.unlocked). */
export interface StepLock {
  /** Takes the lock; does nothing while it is held. */
  claim(): Promise<void>;
  /** Lets it go; does nothing while it is not held. */
  release(): void;
}

export interface ExecuteOptions {
  log: Logger;
  say(message: string): void;
  fault?: string | undefined;
  /**
   * Held from the first step that needs it and let go as soon as no step left needs it (also if
   * the caller claimed it before planning); taken again for the undo of such steps on rollback.
   */
  lock?: StepLock;
}

export interface UndoFailure {
  step: string;
  command: string;
  error: string;
}

/** The plan failed; the host was rolled back (rollbackFailures lists what could not be undone). */
export class PlanFailed extends Error {
  readonly step: Step;
  override readonly cause: CommandError;
  readonly rollbackFailures: UndoFailure[];
  constructor(step: Step, cause: CommandError, rollbackFailures: UndoFailure[]) {
    const tail = rollbackFailures.length
      ? `; rollback incomplete, ${rollbackFailures.length} undo command(s) failed: ` +
        rollbackFailures.map((f) => `${f.command} (${f.error})`).join('; ')
      : '; every completed step was rolled back';
    super(`step '${step.description}' failed: ${cause.message}${tail}`);
    this.name = 'PlanFailed';
    this.step = step;
    this.cause = cause;
    this.rollbackFailures = rollbackFailures;
  }
}

async function runLogged(cmd: Command, log: Logger, stepId: string, phase: 'run' | 'undo'): Promise<CommandError | undefined> {
  const r = await run(cmd);
  const entry = { step: stepId, phase, cmd: formatCommand(cmd), exit: r.exitCode, ms: r.durationMs };
  if (r.exitCode === 0) {
    log.info(entry, `${phase} ${stepId}`);
    return undefined;
  }
  if (cmd.fallback && cmd.fallback.when.some((w) => r.stderr.includes(w))) {
    log.info({ ...entry, stderr: r.stderr.trim() }, `${phase} ${stepId}: taking the fallback`);
    for (const alt of cmd.fallback.commands) {
      const err = await runLogged(alt, log, stepId, phase);
      if (err) return err;
    }
    return undefined;
  }
  log.error({ ...entry, stderr: r.stderr.trim() }, `${phase} ${stepId} failed`);
  return new CommandError(cmd, r.exitCode, r.stderr);
}

async function rollback(done: readonly Step[], opts: ExecuteOptions): Promise<UndoFailure[]> {
  const failures: UndoFailure[] = [];
  for (const s of [...done].reverse()) {
    if (opts.lock && !s.unlocked && s.undo.length) await opts.lock.claim();
    for (const cmd of s.undo) {
      // Keep going: every undo that still works brings the host closer to where it was.
      const err = await runLogged(cmd, opts.log, s.id, 'undo');
      if (err) failures.push({ step: s.id, command: formatCommand(cmd), error: err.stderr.trim() || `exit ${err.exitCode}` });
    }
  }
  return failures;
}

/** Runs the plan; resolves with the steps done, or rejects with PlanFailed after rolling back. */
export async function execute(plan: Plan, opts: ExecuteOptions): Promise<Step[]> {
  try {
    return await executeSteps(plan, opts);
  } finally {
    opts.lock?.release();
  }
}

async function executeSteps(plan: Plan, opts: ExecuteOptions): Promise<Step[]> {
  const done: Step[] = [];
  const started = monotonicMs();
  const { lock } = opts;
  for (const [i, s] of plan.steps.entries()) {
    if (lock) {
      if (!s.unlocked) await lock.claim();
      else if (plan.steps.slice(i).every((x) => x.unlocked)) lock.release();
    }
    let failure: CommandError | undefined;
    let ranAny = false;
    if (s.concurrent) {
      const errors = await Promise.all(s.run.map((cmd) => runLogged(cmd, opts.log, s.id, 'run')));
      failure = errors.find((e) => e !== undefined);
      ranAny = errors.some((e) => e === undefined);
    } else {
      for (const cmd of s.run) {
        failure = await runLogged(cmd, opts.log, s.id, 'run');
        if (failure) break;
        ranAny = true;
      }
    }
    if (!failure && opts.fault === s.id) {
      failure = new CommandError({ argv: ['XEN_NETHOOKS_FAULT', s.id] }, 1, 'injected fault (XEN_NETHOOKS_FAULT)');
      opts.log.warn({ step: s.id }, 'injected fault');
    }
    if (failure) {
      // A step that got part-way counts as done: its undo commands tolerate what never happened.
      if (ranAny || opts.fault === s.id) done.push(s);
      opts.say(`${s.description}: failed: ${failure.message}`);
      opts.say(`rolling back ${done.length} step(s)`);
      const failures = await rollback(done, opts);
      opts.log.error({ step: s.id, rollbackFailures: failures.length }, 'plan failed, rolled back');
      throw new PlanFailed(s, failure, failures);
    }
    done.push(s);
  }
  opts.log.info({ steps: done.length, ms: Math.round(monotonicMs() - started) }, 'plan done');
  return done;
}

