import assert from 'node:assert/strict';
import { test } from 'node:test';
import { withSystemPath } from '../../lib/runtime.ts';

test("a minimal PATH (cron's, xl's) gets the sbin directories appended, the caller's first", () => {
  assert.equal(withSystemPath('/usr/bin:/bin'), '/usr/bin:/bin:/usr/sbin:/sbin');
  assert.equal(withSystemPath('/opt/trap:/usr/sbin:/usr/bin:/sbin:/bin'), '/opt/trap:/usr/sbin:/usr/bin:/sbin:/bin');
  assert.equal(withSystemPath(undefined), '/usr/sbin:/usr/bin:/sbin:/bin');
  assert.equal(withSystemPath('::/usr/bin:'), '/usr/bin:/usr/sbin:/sbin:/bin');
});
