import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { VifGuard } from '../../lib/firewall/guard.ts';
import { nftApply, nftCompanionApply } from '../../lib/firewall/nft.ts';
import { guardListing, guardRemoval, parseGuardListing, removeInOneCommit } from '../../lib/firewall/xtables-nft.ts';
import type { HostState } from '../../lib/net/host.ts';
import { firewallRemoval, planOnline, type VifRequest } from '../../lib/plans/vif-bridge.ts';

// Issue 14 item 1: NOTRACK for traffic bridged through only, never for what dom0 routes or receives.

const guard = (g: Partial<VifGuard> = {}): VifGuard => ({
  dev: 'vif1.0', mac: '00:16:3e:00:01:00', ipv4: ['192.0.2.11'], ipv6: ['2001:db8::11'], antispoof: true, notrack: true, ...g,
});
const lines = (s: string | undefined) => (s ?? '').split('\n');
const host: HostState = {
  links: [{ ifname: 'xenbr0', ifindex: 1, flags: [], mtu: 1500, linkinfo: { info_kind: 'bridge' } }, { ifname: 'vif1.0', ifindex: 2, flags: [], mtu: 1500 }],
  routes4: [], routes6: [],
};

test('NOTRACK only for frames bridged through (PACKET_OTHERHOST), in both backends; no raw-table NOTRACK', () => {
  for (const s of [nftApply(guard()).input ?? '', nftCompanionApply(guard())?.input ?? '']) {
    const pre = lines(s).filter((l) => l.startsWith('add rule bridge xen-nethooks prerouting'));
    assert.deepEqual(pre, ['add rule bridge xen-nethooks prerouting iifname @untracked meta pkttype other notrack']);
  }
  const p = planOnline({ command: 'online', typeIf: 'vif', dev: 'vif1.0', bridge: 'xenbr0', ip: ['192.0.2.11'], mac: '00:16:3e:00:01:00', firewall: 'iptables', notrack: true, antispoof: true, nft: true }, host);
  const scripts = p.plan.steps[0]?.run.map((c) => c.input ?? '').join('\n') ?? '';
  assert.doesNotMatch(scripts, /NOTRACK|\*raw/);
  assert.match(scripts, /untracked \{ "vif1.0" \}/);
});

test('firewall=iptables without nft: no NOTRACK at all, with a warning; notrack=no silences it', () => {
  const r: VifRequest = { command: 'online', typeIf: 'vif', dev: 'vif1.0', bridge: 'xenbr0', ip: ['192.0.2.11'], mac: '00:16:3e:00:01:00', firewall: 'iptables', notrack: true, antispoof: true, nft: false };
  const p = planOnline(r, host);
  assert.equal(p.guard?.notrack, false);
  assert.doesNotMatch(p.plan.steps[0]?.run.map((c) => c.input ?? '').join('\n') ?? '', /NOTRACK|untracked/);
  assert.match(p.warnings.join('\n'), /no NOTRACK/);
  assert.doesNotMatch(planOnline({ ...r, notrack: false }, host).warnings.join('\n'), /no NOTRACK/);
});

test('removal of a guard an earlier version laid (raw-table NOTRACK): the raw jump and chain too, only then', () => {
  const ipt = (raw: boolean) => firewallRemoval('iptables', 'vif1.0', true, true, raw).find((c) => c.argv[0] === 'iptables-restore')?.input ?? '';
  assert.match(ipt(true), /^\*raw\n-D PREROUTING -m physdev --physdev-in vif1\.0 -m comment --comment xen-nethooks:vif:vif1\.0 -j XNH-vif1\.0\n-F XNH-vif1\.0\n-X XNH-vif1\.0\nCOMMIT$/m);
  assert.doesNotMatch(ipt(false), /raw|PREROUTING/);
  const nft = firewallRemoval('iptables', 'vif1.0', true, true).find((c) => c.argv[0] === 'nft')?.input ?? '';
  assert.match(nft, /^delete element bridge xen-nethooks untracked \{ "vif1.0" \}$/m);
});

test('xtables-nft: the companion\'s NOTRACK set entry is listed and removed in the same transaction', () => {
  assert.match(guardListing('XNH-vif1.0', 'vif1.0').input ?? '', /^list set bridge xen-nethooks untracked$/m);
  const meta = { metainfo: { version: '1.0.6' } };
  const set = (elem: string[]) => JSON.stringify({ nftables: [meta, { set: { family: 'bridge', table: 'xen-nethooks', name: 'untracked', type: 'ifname', handle: 1, elem } }] });
  const seen = parseGuardListing(set(['vif1.00', 'vif1.0']), 'XNH-vif1.0', 'vif1.0');
  assert.deepEqual(seen.companion, { element: false, chain: false, untracked: true });
  assert.equal(removeInOneCommit('XNH-vif1.0', seen, [], 'vif1.0').input, 'delete element bridge xen-nethooks untracked { "vif1.0" }\n');
  assert.equal(guardRemoval('XNH-vif1.0', seen, [], 'vif1.0').length, 1, 'a NOTRACK entry alone is still something to remove');
  assert.deepEqual(parseGuardListing(set(['vif1.00']), 'XNH-vif1.0', 'vif1.0').companion, { element: false, chain: false, untracked: false });
});
