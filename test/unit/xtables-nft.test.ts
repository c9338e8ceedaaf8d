import assert from 'node:assert/strict';
import { test } from 'node:test';
import { guardListing, guardRemoval, isNftVariant, listingComplete, parseGuardListing, removeInOneCommit } from '../../lib/firewall/xtables-nft.ts';
import { planBlindOffline } from '../../lib/plans/vif-route.ts';
import { planOffline, planOnline } from '../../lib/plans/vif-bridge.ts';

// What nft 1.0.6 prints for `list chain …` in interactive JSON mode: a document per line. The
// iptables-nft rules' matches are opaque ("xt"), their jump targets and handles are not.
const meta = { metainfo: { version: '1.0.6', json_schema_version: 1 } };
const xt = (name: string) => ({ xt: { type: 'match', name } });
const rule = (family: string, table: string, chain: string, handle: number, verdict: object) => ({
  rule: { family, table, chain, handle, expr: [xt('physdev'), xt('comment'), { counter: { packets: 0, bytes: 0 } }, verdict] },
});
const doc = (...objects: object[]) => JSON.stringify({ nftables: [meta, ...objects] });
const listing = [
  doc({ chain: { family: 'ip', table: 'filter', name: 'FORWARD', handle: 2 } },
    rule('ip', 'filter', 'FORWARD', 11, { jump: { target: 'XNH-vif1.0' } }),
    rule('ip', 'filter', 'FORWARD', 10, { jump: { target: 'XNH-vif1.0' } }),
    rule('ip', 'filter', 'FORWARD', 9, { jump: { target: 'XNH-vif1.00' } }), // another vif: a longer name
    rule('ip', 'filter', 'FORWARD', 8, { accept: null })),
  '\x1b[?1034h' + doc({ chain: { family: 'bridge', table: 'filter', name: 'INPUT', handle: 5 } },
    { rule: { family: 'bridge', table: 'filter', chain: 'INPUT', handle: 7, expr: [{ match: {} }, { jump: { target: 'XNH-vif1.0' } }] } }),
  doc({ chain: { family: 'ip', table: 'filter', name: 'XNH-vif1.0', handle: 3 } },
    // Inside the vif's own chain: flushed with it, never deleted one by one.
    rule('ip', 'filter', 'XNH-vif1.0', 12, { accept: null })),
  'Error: No such file or directory',
  doc({ chain: { family: 'bridge', table: 'filter', name: 'XNH-vif1.0', handle: 6 } }),
  '',
].join('\n');

test('the listing: jumps to the vif chain from built-in chains, and where that chain exists', () => {
  const g = parseGuardListing(listing, 'XNH-vif1.0');
  assert.deepEqual(g.jumps, [
    { family: 'ip', table: 'filter', chain: 'FORWARD', handle: 11 },
    { family: 'ip', table: 'filter', chain: 'FORWARD', handle: 10 },
    { family: 'bridge', table: 'filter', chain: 'INPUT', handle: 7 },
  ]);
  assert.deepEqual(g.chains, [{ family: 'ip', table: 'filter' }, { family: 'bridge', table: 'filter' }]);
  assert.equal(g.listed, 4, 'four chains listed (one listing failed)');
  assert.deepEqual(parseGuardListing('not json\n{broken', 'XNH-vif1.0'), { listed: 0, jumps: [], chains: [] });
});

test('the listing is one nft process that cannot touch root\'s history file', () => {
  const c = guardListing('XNH-vif1.0');
  assert.deepEqual(c.argv, ['env', 'HOME=/nonexistent', 'nft', '-j', '-a', '-i']);
  assert.match(c.input ?? '', /^list chain ip filter FORWARD$/m);
  assert.match(c.input ?? '', /^list chain bridge filter XNH-vif1\.0$/m);
});

test('removal: one transaction, jumps by handle before their chains; the restores as fallback', () => {
  const restores = [{ argv: ['iptables-restore'] }];
  const c = removeInOneCommit('XNH-vif1.0', parseGuardListing(listing, 'XNH-vif1.0'), restores);
  assert.deepEqual(c.argv, ['nft', '-f', '-']);
  assert.equal(c.input, [
    'delete rule ip filter FORWARD handle 11', 'delete rule ip filter FORWARD handle 10', 'delete rule bridge filter INPUT handle 7',
    'flush chain ip filter XNH-vif1.0', 'flush chain bridge filter XNH-vif1.0',
    'delete chain ip filter XNH-vif1.0', 'delete chain bridge filter XNH-vif1.0', ''].join('\n'));
  assert.deepEqual(c.fallback, { when: [''], commands: restores });
});

test('offline plan: one nft command when the guard was listed, nothing when there is none, restores when not looked at', () => {
  const seen = parseGuardListing(listing, 'XNH-vif1.0');
  const fw = (p: ReturnType<typeof planOffline>) => p.steps.find((s) => s.id === 'firewall')?.run.map((c) => c.argv.join(' '));
  assert.deepEqual(fw(planOffline('vif1.0', 'iptables', true, true, seen)), ['nft -f -']);
  assert.equal(fw(planOffline('vif1.0', 'iptables', true, true, { listed: 6, jumps: [], chains: [] })), undefined);
  assert.deepEqual(fw(planOffline('vif1.0', 'iptables', true, true)), [
    'ebtables-restore --noflush', 'iptables-restore -w --noflush', 'ip6tables-restore -w --noflush', 'nft -f -']);
  assert.deepEqual(fw(planOffline('vif1.0', 'iptables', true, false)), [
    'ebtables-restore --noflush', 'iptables-restore -w --noflush', 'ip6tables-restore -w --noflush'], 'no nft installed: no companion to remove, nothing that needs nft');
  assert.deepEqual(fw(planOffline('vif1.0', 'nft', true, true, seen)), ['nft -f -'], 'firewall=nft keeps its own removal');
});

test('which binaries write nftables rules', () => {
  for (const p of ['/usr/sbin/xtables-nft-multi', '/usr/sbin/iptables-nft', '/usr/sbin/ebtables-nft', '/usr/sbin/ip6tables-nft']) assert.ok(isNftVariant(p), p);
  for (const p of ['/usr/sbin/xtables-legacy-multi', '/usr/sbin/iptables-legacy', '/usr/sbin/ebtables-legacy', '/usr/sbin/iptables']) assert.ok(!isNftVariant(p), p);
});

test('the invariant the removal rests on: the built-in chains get nothing but jumps to the vif chain', () => {
  const on = planOnline({
    command: 'online', typeIf: 'vif', dev: 'vif1.0', bridge: 'xenbr0', ip: ['192.0.2.11', '2001:db8::11'], mac: '00:16:3e:00:01:00',
    firewall: 'iptables', notrack: true, antispoof: true, nft: true,
  }, { links: [{ ifname: 'xenbr0', ifindex: 1, flags: [], mtu: 1500, linkinfo: { info_kind: 'bridge' } }, { ifname: 'vif1.0', ifindex: 2, flags: [], mtu: 1500 }], routes4: [], routes6: [] });
  const scripts = on.plan.steps.find((s) => s.id === 'firewall')?.run.map((c) => c.input ?? '') ?? [];
  assert.equal(scripts.length, 4, 'ebtables, the nft companion (its own table), iptables, ip6tables');
  const builtin = scripts.flatMap((s) => s.split('\n')).filter((l) => /^-[AI] (FORWARD|INPUT|PREROUTING)\b/.test(l));
  assert.equal(builtin.length, 2 + 2 + 2, 'ebtables FORWARD+INPUT, FORWARD in and out for each of iptables and ip6tables (NOTRACK is in the nft companion)');
  for (const l of builtin) assert.match(l, / -j XNH-vif1\.0$/);
});

test('guardRemoval: the restores when not looked at, nothing when nothing was listed, else one transaction; the routed offline uses it', () => {
  const restores = [{ argv: ['iptables-restore'] }, { argv: ['ip6tables-restore'] }];
  const seen = parseGuardListing(listing, 'XNH-vif1.0');
  assert.deepEqual(guardRemoval('XNH-vif1.0', undefined, restores), restores);
  assert.deepEqual(guardRemoval('XNH-vif1.0', { listed: 3, jumps: [], chains: [] }, restores), []);
  assert.deepEqual(guardRemoval('XNH-vif1.0', seen, restores).map((c) => c.argv.join(' ')), ['nft -f -']);
  const blind = planBlindOffline('vif1.0', seen).steps.find((s) => s.id === 'guard');
  assert.deepEqual(blind?.run.map((c) => c.argv.join(' ')), ['nft -f -']);
  assert.deepEqual(planBlindOffline('vif1.0').steps.find((s) => s.id === 'guard')?.run.map((c) => c.argv[0]), ['iptables-restore', 'ip6tables-restore']);
});

test('a listing is complete when its only complaints are chains that do not exist', () => {
  assert.ok(listingComplete(''));
  assert.ok(listingComplete('Error: No such file or directory\nlist chain ip raw XNH-vif1.0\n                  ^^^^^^^^^^\n'));
  assert.ok(listingComplete("Error: No such file or directory; did you mean table 'filter' in family bridge?\n"));
  assert.ok(!listingComplete('Error: No such file or directory\nError: unknown expression type match\n'));
  assert.ok(!listingComplete('Error: Could not process rule: Operation not supported\n'));
});
