import assert from 'node:assert/strict';
import { test } from 'node:test';
import { withReport, type VifCall } from '../../lib/commands/vif-hotplug.ts';
import { step } from '../../lib/plan.ts';

const call = (typeIf: 'vif' | 'tap'): VifCall => ({
  command: typeIf === 'vif' ? 'online' : 'add', typeIf, up: true, dev: 'vif1.0', backend: '/local/domain/0/backend/vif/1/0', key: '1.0.vif',
  xs: new Map([['frontend', '/local/domain/1/device/vif/0']]),
});
const plan = { steps: [step('port', 'attach', [{ argv: ['ip', 'link'] }], [])] };

test("the vif shell reports last, the planner's mtu to the frontend and connected, without the lock", () => {
  const p = withReport(plan, call('vif'), 1400);
  assert.deepEqual(p.steps.map((s) => s.id), ['port', 'report']);
  const report = p.steps[1];
  assert.equal(report?.unlocked, true);
  assert.deepEqual(report?.undo, []);
  const cmd = report?.run[0];
  assert.equal(cmd?.argv[0], 'xenstore-write');
  const text = [...(cmd?.argv ?? []), cmd?.input ?? ''].join(' ');
  assert.match(text, /\/local\/domain\/1\/device\/vif\/0\/mtu/);
  assert.match(text, /1400/);
  assert.match(text, /hotplug-status/);
  assert.match(text, /connected/);
});

test('an emulated NIC (tap) reports nothing: its plan is left as it is', () => {
  assert.equal(withReport(plan, call('tap'), 1400), plan);
});
