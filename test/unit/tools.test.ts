import assert from 'node:assert/strict';
import { mkdtempSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { step } from '../../lib/plan.ts';
import { withSystemPath } from '../../lib/runtime.ts';
import { findProgram, MissingTools, planPrograms, requireTools } from '../../lib/tools.ts';

test("a plan's programs: run, undo and fallback commands, and what env(1) runs", () => {
  const plan = {
    steps: [
      step('a', 'a', [{ argv: ['ebtables-restore', '--noflush'], fallback: { when: [''], commands: [{ argv: ['ebtables', '-D', 'x'] }] } }], [{ argv: ['iptables', '-D'] }]),
      step('b', 'b', [{ argv: ['env', 'HOME=/nonexistent', 'nft', '-j'] }, { argv: ['xenstore-write', 'k', 'v'] }], []),
    ],
  };
  assert.deepEqual(planPrograms(plan).sort(), ['ebtables', 'ebtables-restore', 'env', 'iptables', 'nft', 'xenstore-write']);
});

test('requireTools names every missing program with its Debian package, and only those', () => {
  const dir = mkdtempSync(join(tmpdir(), 'xnh-tools-'));
  symlinkSync(process.execPath, join(dir, 'ip'));
  const env = { PATH: dir };
  assert.equal(findProgram('ip', env), join(dir, 'ip'));
  assert.equal(findProgram('ebtables', env), undefined);
  requireTools(['ip', 'xenstore-write'], env, 'x'); // xenstore-* served in-process: not required
  assert.throws(
    () => requireTools(['ip', 'ebtables-restore', 'nft', 'ip6tables-restore', 'flock', 'frobnicate'], env, 'vif-bridge online'),
    (e: Error) =>
      e instanceof MissingTools &&
      e.message.startsWith('vif-bridge online needs ebtables-restore (apt-get install ebtables), flock (apt-get install util-linux), frobnicate, ip6tables-restore (apt-get install iptables), nft (apt-get install nftables)') &&
      e.message.includes(`PATH=${dir}`) && e.message.endsWith('nothing was changed'),
  );
});

test('XEN_NETHOOKS_SYSTEM_PATH replaces the system directories appended to PATH (the test seam)', () => {
  assert.equal(withSystemPath('/t', ''), '/t');
  assert.equal(withSystemPath('/t', '/a::/b'), '/t:/a:/b');
  assert.equal(withSystemPath('/t', undefined), '/t:/usr/sbin:/usr/bin:/sbin:/bin');
});
