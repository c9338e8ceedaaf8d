import assert from 'node:assert/strict';
import { test } from 'node:test';
import { comparePieces, describeMissing, expectedPieces, toolsFor, type FirewallListing } from '../../lib/firewall/guard-check.ts';
import { chainName, type VifGuard } from '../../lib/firewall/guard.ts';
import { guardApply } from '../../lib/firewall/source-guard.ts';
import { firewallCommands } from '../../lib/plans/vif-bridge.ts';
import { checkVifBridgeRecord } from '../../lib/records.ts';

const guard = (g: Partial<VifGuard> = {}): VifGuard => ({
  dev: 'vif1.0', mac: '00:16:3e:00:01:00', ipv4: ['192.0.2.11'], ipv6: ['2001:db8::11'], antispoof: true, notrack: true, companion: true, ...g,
});
const want = (apply: ReturnType<typeof firewallCommands>['apply']) => new Map(expectedPieces(apply, [chainName('vif1.0')]).map((p) => [p.what, p.want]));

test("firewall=iptables: the pieces read off online's restore scripts (chains, their rules, the jumps to them)", () => {
  const w = want(firewallCommands('iptables', guard()).apply);
  assert.equal(w.get('ebtables filter chain XNH-vif1.0'), 1);
  assert.equal(w.get('ebtables filter FORWARD -> XNH-vif1.0'), 1);
  assert.equal(w.get('ebtables filter INPUT -> XNH-vif1.0'), 1);
  assert.ok((w.get('ebtables filter XNH-vif1.0') ?? 0) > 10, 'the ebtables chain with its rules');
  assert.equal(w.get('iptables filter FORWARD -> XNH-vif1.0'), 2, 'physdev-in and physdev-out');
  assert.equal(w.get('iptables raw PREROUTING -> XNH-vif1.0'), undefined, 'NOTRACK is not in the raw table (it is the companion\'s)');
  assert.equal(w.get('ip6tables raw PREROUTING -> XNH-vif1.0'), undefined);
  // The nft companion: its chain, its rules, its map element, its NOTRACK set element, and the
  // table's dispatch rules once.
  assert.equal(w.get('nft bridge xen-nethooks chain vif-vif1.0'), 1);
  assert.equal(w.get('nft bridge xen-nethooks vifs[vif1.0]'), 1);
  assert.equal(w.get('nft bridge xen-nethooks forward'), 1);
  assert.equal(w.get('nft bridge xen-nethooks untracked[vif1.0]'), 1, 'the companion carries the NOTRACK');
  assert.equal(w.get('nft bridge xen-nethooks prerouting'), 1);
  assert.deepEqual([...toolsFor(expectedPieces(firewallCommands('iptables', guard()).apply, ['XNH-vif1.0']))].sort(), ['ebtables', 'ip6tables', 'iptables', 'nft bridge xen-nethooks']);
});

test('notrack=no: no raw pieces; antispoof=no: an empty ebtables chain still counts (it must exist)', () => {
  const w = want(firewallCommands('iptables', guard({ notrack: false, companion: false })).apply);
  assert.equal(w.get('iptables raw PREROUTING -> XNH-vif1.0'), undefined);
  assert.equal(w.get('nft bridge xen-nethooks vifs[vif1.0]'), undefined);
  const open = want(firewallCommands('iptables', guard({ l2: false, antispoof: false, companion: false })).apply);
  assert.equal(open.get('ebtables filter chain XNH-vif1.0'), 1);
  assert.equal(open.get('ebtables filter XNH-vif1.0'), undefined);
});

test('firewall=nft: chain, rules, map and NOTRACK set elements', () => {
  const w = want(firewallCommands('nft', guard()).apply);
  assert.equal(w.get('nft bridge xen-nethooks untracked[vif1.0]'), 1);
  assert.equal(w.get('nft bridge xen-nethooks vifs[vif1.0]'), 1);
  assert.equal(w.get('nft bridge xen-nethooks prerouting'), 1);
  assert.ok((w.get('nft bridge xen-nethooks vif-vif1.0') ?? 0) > 5);
});

test('the routed source guard: raw chain and PREROUTING jump, both families', () => {
  const g = { dev: 'vif1.0', ipv4: ['192.0.2.10'], ipv6: [], dhcp: false };
  const w = new Map(expectedPieces([guardApply(4, g), guardApply(6, g)], ['XNH-vif1.0']).map((p) => [p.what, p.want]));
  assert.equal(w.get('iptables raw PREROUTING -> XNH-vif1.0'), 1);
  assert.equal(w.get('iptables raw XNH-vif1.0'), 2);
  assert.equal(w.get('ip6tables raw XNH-vif1.0'), 1, 'no IPv6 address: DROP only');
});

test('compared with a listing: what is missing or doubled, by where and how many', () => {
  const pieces = expectedPieces(firewallCommands('iptables', guard({ companion: false })).apply, ['XNH-vif1.0']);
  const all = new Map(pieces.map((p) => [p.what, p.want]));
  assert.deepEqual(describeMissing(comparePieces(pieces, { counts: all, failed: new Map() })), []);
  const seen: FirewallListing = { counts: new Map(all), failed: new Map() };
  seen.counts.delete('ebtables filter chain XNH-vif1.0');
  seen.counts.set('iptables filter FORWARD -> XNH-vif1.0', 4);
  assert.deepEqual(describeMissing(comparePieces(pieces, seen)), ['ebtables filter chain XNH-vif1.0: 0 of 1', 'iptables filter FORWARD -> XNH-vif1.0: 4 of 2']);
});

test('a vif-bridge record: the guard inputs are optional (older records stay valid), and checked when present', () => {
  const old = { version: 1, dev: 'vif1.0', bridge: 'xenbr0', firewall: 'iptables', notrack: true, onlineAt: '2026-01-01T00:00:00Z' };
  assert.deepEqual(checkVifBridgeRecord(old), old);
  const now = { ...old, ip: ['192.0.2.11'], guard: guard() };
  assert.deepEqual(checkVifBridgeRecord(now), { ...now, guard: { ...guard(), l2: undefined } });
  assert.throws(() => checkVifBridgeRecord({ ...old, guard: { ...guard(), ipv4: '192.0.2.11' } }), /guard\.ipv4 is a string, not a list/);
});
