import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { silentLogger } from '../../lib/log.ts';
import type { Command } from '../../lib/exec.ts';
import { renderPlan } from '../../lib/dry-run.ts';
import { execute, PlanFailed } from '../../lib/executor.ts';
import { reversePlan, step, unlocked, type Plan } from '../../lib/plan.ts';

// Harmless real commands stand in for host changes: a step creates a file, its undo removes it.
const dir = mkdtempSync(join(tmpdir(), 'xnh-exec-'));
const touch = (n: string): Command => ({ argv: ['touch', join(dir, n)] });
const rm = (n: string): Command => ({ argv: ['rm', join(dir, n)] });
const fail = (msg: string): Command => ({ argv: ['sh', '-c', `echo '${msg}' >&2; exit 3`] });
const quiet = { log: silentLogger, say: () => {} };

function files(...names: string[]): boolean[] {
  return names.map((n) => existsSync(join(dir, n)));
}

test('runs every step in order', async () => {
  const plan: Plan = { steps: [step('a', 'a', [touch('a1')], [rm('a1')]), step('b', 'b', [touch('b1')], [rm('b1')])] };
  const done = await execute(plan, quiet);
  assert.deepEqual(done.map((s) => s.id), ['a', 'b']);
  assert.deepEqual(files('a1', 'b1'), [true, true]);
  await execute(reversePlan(done), quiet);
  assert.deepEqual(files('a1', 'b1'), [false, false]);
});

test('a failing step rolls back the completed ones, last first, and names the command', async () => {
  const order = join(dir, 'order');
  writeFileSync(order, '');
  const log = (w: string): Command => ({ argv: ['sh', '-c', `echo ${w} >> ${order}`] });
  const plan: Plan = {
    steps: [
      step('one', 'first', [touch('r1'), log('run1')], [rm('r1'), log('undo1')]),
      step('two', 'second', [touch('r2'), log('run2')], [rm('r2'), log('undo2')]),
      step('three', 'third', [fail('no such device')], [log('undo3')]),
    ],
  };
  await assert.rejects(execute(plan, quiet), (e: unknown) => {
    assert.ok(e instanceof PlanFailed);
    assert.equal(e.step.id, 'three');
    assert.match(e.message, /step 'third' failed: sh -c .* exited 3: no such device; every completed step was rolled back/);
    return true;
  });
  assert.deepEqual(files('r1', 'r2'), [false, false]);
  // The failed step never ran a command, so its undo is not run.
  assert.equal(readFileSync(order, 'utf8'), 'run1\nrun2\nundo2\nundo1\n');
});

test('a step that failed part-way is undone too', async () => {
  const plan: Plan = { steps: [step('p', 'partial', [touch('p1'), fail('boom')], [rm('p1')])] };
  await assert.rejects(execute(plan, quiet), PlanFailed);
  assert.deepEqual(files('p1'), [false]);
});

test('fault injection fails the named step after it ran, and it is rolled back', async () => {
  const plan: Plan = { steps: [step('x', 'x', [touch('f1')], [rm('f1')]), step('y', 'y', [touch('f2')], [rm('f2')])] };
  await assert.rejects(execute(plan, { ...quiet, fault: 'y' }), /injected fault/);
  assert.deepEqual(files('f1', 'f2'), [false, false]);
});

test('rollback carries on past an undo that fails and reports it', async () => {
  const plan: Plan = {
    steps: [step('a', 'a', [touch('u1')], [rm('u1')]), step('b', 'b', [touch('u2')], [fail('undo broke')]), step('c', 'c', [fail('x')], [])],
  };
  await assert.rejects(execute(plan, quiet), (e: unknown) => {
    assert.ok(e instanceof PlanFailed);
    assert.equal(e.rollbackFailures.length, 1);
    assert.match(e.message, /rollback incomplete, 1 undo command\(s\) failed: .*undo broke/);
    return true;
  });
  assert.deepEqual(files('u1', 'u2'), [false, true]);
});

test('tolerated errors count as done', async () => {
  const plan: Plan = { steps: [step('t', 't', [{ ...fail('RTNETLINK answers: File exists'), tolerate: ['File exists'] }], [])] };
  assert.equal((await execute(plan, quiet)).length, 1);
});

test('a fallback runs when the kernel refuses the short way', async () => {
  const cmd: Command = { ...fail('Device or resource busy'), fallback: { when: ['busy'], commands: [touch('fb1'), touch('fb2')] } };
  await execute({ steps: [step('f', 'f', [cmd], [])] }, quiet);
  assert.deepEqual(files('fb1', 'fb2'), [true, true]);
  const other: Command = { ...fail('Operation not permitted'), fallback: { when: ['busy'], commands: [touch('fb3')] } };
  await assert.rejects(execute({ steps: [step('g', 'g', [other], [])] }, quiet), /Operation not permitted/);
  assert.deepEqual(files('fb3'), [false]);
});

test('a missing program is a failure with a message, not a crash', async () => {
  await assert.rejects(execute({ steps: [step('m', 'm', [{ argv: ['/nonexistent/ip', 'link'] }], [])] }, quiet), /exited 127/);
});

test('renderPlan shows every command and its undo', () => {
  const text = renderPlan({ steps: [step('s1', 'make it', [{ argv: ['ip', 'link', 'add', 'name', 'br x'] }], [{ argv: ['ip', 'link', 'del', 'br x'] }])] });
  assert.match(text, /1\. make it {2}\[s1\]/);
  assert.match(text, /ip link add name 'br x'/);
  assert.match(text, /undo: ip link del 'br x'/);
  assert.equal(renderPlan({ steps: [] }), '  (nothing to do)\n');
});

test('a concurrent step starts its commands at once, and is undone whole when one fails', async () => {
  // The first command waits for the file that only the second creates: run one after the other,
  // it would give up after 5 s and fail the step.
  const flag = join(dir, 'c-flag');
  const waitFor: Command = { argv: ['sh', '-c', `i=0; while [ ! -e ${flag} ]; do i=$((i+1)); [ $i -gt 500 ] && exit 9; sleep 0.01; done`] };
  const ok = step('c', 'together', [waitFor, { argv: ['touch', flag] }], [rm('c-flag')]);
  ok.concurrent = true;
  await execute({ steps: [ok] }, quiet);
  assert.deepEqual(files('c-flag'), [true]);
  assert.match(renderPlan({ steps: [ok] }), /together {2}\[c\] \(run at once\)/);
  await execute(reversePlan([ok]), quiet);

  const bad = step('d', 'together, one fails', [touch('d1'), fail('refused')], [rm('d1')]);
  bad.concurrent = true;
  await assert.rejects(execute({ steps: [bad] }, quiet), (e: unknown) => e instanceof PlanFailed && /refused/.test(e.message));
  assert.deepEqual(files('d1'), [false]);
});

test('a lock is held only around the steps that need it, released early, and taken again for their undo', async () => {
  const events: string[] = [];
  let held = false;
  const lock = {
    async claim() {
      if (!held) events.push('claim');
      held = true;
    },
    release() {
      if (held) events.push('release');
      held = false;
    },
  };
  const note = (w: string): Command => ({ argv: ['true', w] });
  const log = { ...silentLogger, info: (f: Record<string, unknown>) => void (f.cmd && events.push(`${String(f.cmd).split(' ')[1]}${held ? '+lock' : ''}`)) };
  const plan: Plan = {
    steps: [
      unlocked(step('rename', 'rename', [note('rename')], [note('unrename')])),
      step('firewall', 'firewall', [note('guard')], [note('unguard')]),
      unlocked(step('port', 'port', [note('port')], [note('unport')])),
      unlocked(step('report', 'report', [note('report')], [])),
    ],
  };
  await execute(plan, { log, say: () => {}, lock });
  assert.deepEqual(events, ['rename', 'claim', 'guard+lock', 'release', 'port', 'report']);

  // Claimed by the caller before planning: let go as soon as no step left needs it.
  events.length = 0;
  await lock.claim();
  await execute({ steps: [unlocked(step('port', 'port', [note('port')], []))] }, { log, say: () => {}, lock });
  assert.deepEqual(events, ['claim', 'release', 'port']);

  // A failure after the lock was let go: the firewall's undo takes it again, and it is let go at the end.
  events.length = 0;
  const failing: Plan = { steps: [...plan.steps.slice(0, 2), unlocked(step('port', 'port', [fail('no such device')], [note('unport')]))] };
  await assert.rejects(execute(failing, { log, say: () => {}, lock }), PlanFailed);
  assert.deepEqual(events, ['rename', 'claim', 'guard+lock', 'release', 'claim', 'unguard+lock', 'unrename+lock', 'release']);
  assert.equal(held, false);
});
