import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CommandError, run, runJson, runOk, splitEnvPrefix } from '../../lib/exec.ts';
import { execute } from '../../lib/executor.ts';
import { silentLogger } from '../../lib/log.ts';
import { step } from '../../lib/plan.ts';

test('stdin is the command input, stdout comes back whole (final newline kept)', async () => {
  const r = await run({ argv: ['cat'], input: 'flush ruleset\nadd table bridge x\n' });
  assert.equal(r.exitCode, 0);
  assert.equal(r.stdout, 'flush ruleset\nadd table bridge x\n');
  assert.ok(r.durationMs >= 0);
});

test('without input, stdin is closed: a reader sees end of file at once', async () => {
  const r = await run({ argv: ['sh', '-c', 'wc -c; echo read done'] });
  assert.equal(r.stdout.trim().split('\n').pop(), 'read done');
  assert.match(r.stdout, /^\s*0\n/);
});

test('no shell: words with shell syntax reach the program as they are', async () => {
  const r = await run({ argv: ['printf', '%s|', '$(id)', 'a;b', '`x`', '*'] });
  assert.equal(r.stdout, '$(id)|a;b|`x`|*|');
});

test('a non-zero exit is a result with exit status and stderr; runOk turns it into a CommandError', async () => {
  const cmd = { argv: ['sh', '-c', 'echo "RTNETLINK answers: No such device" >&2; exit 2'] };
  const r = await run(cmd);
  assert.equal(r.exitCode, 2);
  assert.equal(r.stderr, 'RTNETLINK answers: No such device\n');
  await assert.rejects(runOk(cmd), (e: unknown) => {
    assert.ok(e instanceof CommandError);
    assert.equal(e.exitCode, 2);
    assert.equal(e.stderr, 'RTNETLINK answers: No such device\n');
    assert.equal(e.timedOut, false);
    assert.deepEqual(e.command, cmd);
    assert.equal(e.message, `sh -c 'echo "RTNETLINK answers: No such device" >&2; exit 2' exited 2: RTNETLINK answers: No such device`);
    return true;
  });
});

test('the message of a CommandError leaves out standard input (a whole ruleset)', async () => {
  await assert.rejects(runOk({ argv: ['sh', '-c', 'cat >/dev/null; exit 1'], input: '*filter\n-A FORWARD -j DROP\nCOMMIT\n' }), (e: unknown) => {
    assert.ok(e instanceof CommandError);
    assert.equal(e.message, `sh -c 'cat >/dev/null; exit 1' exited 1`);
    return true;
  });
});

test('a missing program is exit 127 with a sentence naming it', async () => {
  const r = await run({ argv: ['xnh-no-such-program'] });
  assert.equal(r.exitCode, 127);
  assert.equal(r.stderr, 'xnh-no-such-program: command not found on PATH');
});

test('a command past its timeout is killed and reported as timed out, with its stderr so far', async () => {
  const started = Date.now();
  const cmd = { argv: ['sh', '-c', 'echo waiting >&2; exec sleep 30'], timeoutMs: 300 };
  const r = await run(cmd);
  assert.ok(Date.now() - started < 5000, 'killed long before it would have ended');
  assert.equal(r.timedOut, true);
  assert.equal(r.signal, 'SIGTERM');
  assert.equal(r.exitCode, 143);
  assert.equal(r.stderr, 'waiting\nsh: timed out after 0.3 s, killed by SIGTERM');
  await assert.rejects(runOk(cmd), (e: unknown) => e instanceof CommandError && e.timedOut && e.exitCode === 143);
});

test('a program that ignores SIGTERM is killed with SIGKILL soon after its timeout', async () => {
  const started = Date.now();
  const r = await run({ argv: ['sh', '-c', "trap '' TERM; while :; do sleep 0.05; done"], timeoutMs: 200 });
  assert.ok(Date.now() - started < 8000);
  assert.equal(r.timedOut, true);
  assert.equal(r.signal, 'SIGKILL');
  assert.equal(r.exitCode, 137);
});

test('a command killed by a signal reports 128 + the signal number', async () => {
  const r = await run({ argv: ['sh', '-c', 'kill -KILL $$'] });
  assert.equal(r.exitCode, 137);
  assert.equal(r.signal, 'SIGKILL');
  assert.equal(r.stderr, 'killed by SIGKILL');
});

test('commands run in the C locale, with the rest of the environment inherited', async () => {
  process.env.XNH_EXEC_TEST = 'inherited';
  const r = await run({ argv: ['sh', '-c', 'echo "$LC_ALL $XNH_EXEC_TEST"'] });
  delete process.env.XNH_EXEC_TEST;
  assert.equal(r.stdout, 'C inherited\n');
});

test('tolerate: a failure whose stderr says "already so" counts as done', async () => {
  const cmd = { argv: ['sh', '-c', 'echo "RTNETLINK answers: File exists" >&2; exit 2'], tolerate: ['File exists'] };
  assert.equal((await run(cmd)).exitCode, 0);
  assert.equal((await run({ ...cmd, tolerate: ['No such device'] })).exitCode, 2);
});

test('fallback: the longer way runs when the short one is refused with a matching stderr', async () => {
  const lines: string[] = [];
  const log = { ...silentLogger, info: (f: Record<string, unknown>, m: string) => void lines.push(`${m}: ${String(f.cmd)}`) };
  const cmd = {
    argv: ['sh', '-c', 'echo "Device or resource busy" >&2; exit 2'],
    fallback: { when: ['resource busy'], commands: [{ argv: ['true'] }, { argv: ['echo', 'renamed'] }] },
  };
  await execute({ steps: [step('rename', 'rename', [cmd], [])] }, { log, say: () => {} });
  assert.deepEqual(lines.slice(0, 3), [
    `run rename: taking the fallback: sh -c 'echo "Device or resource busy" >&2; exit 2'`,
    'run rename: true',
    'run rename: echo renamed',
  ]);
});

test('env NAME=VALUE / -u NAME before a program runs the program with that environment (no env process)', async () => {
  process.env.XNH_EXEC_DROP = 'x';
  const r = await run({ argv: ['env', 'HOME=/nonexistent', '-u', 'XNH_EXEC_DROP', 'sh', '-c', 'echo "$HOME ${XNH_EXEC_DROP-unset} $PPID"'] });
  delete process.env.XNH_EXEC_DROP;
  const [home, drop, ppid] = r.stdout.trim().split(' ');
  assert.deepEqual([home, drop], ['/nonexistent', 'unset']);
  assert.equal(Number(ppid), process.pid, 'the program is our child, not env(1)');
  assert.deepEqual(splitEnvPrefix(['env', 'A=1', '-u', 'B', 'nft', '-f', '-']), { argv: ['nft', '-f', '-'], set: { A: '1' }, unset: ['B'] });
  assert.equal(splitEnvPrefix(['env', '-i', 'nft']), undefined, 'an env option not modelled: env(1) runs');
  assert.equal(splitEnvPrefix(['env', 'A=1']), undefined, 'env without a program prints the environment: env(1) runs');
  assert.equal(splitEnvPrefix(['nft', 'A=1']), undefined);
});

test('runJson parses the output, and names a command whose output is not JSON', async () => {
  assert.deepEqual(await runJson({ argv: ['echo', '[{"ifname":"xenbr0"}]'] }), [{ ifname: 'xenbr0' }]);
  await assert.rejects(runJson({ argv: ['echo', 'not json'] }), /echo 'not json' exited 0: output is not JSON: not json/);
});
