import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { HostState } from '../../lib/net/host.ts';
import { byNetdev, pickForStop, pickRecord, type RecordChoice } from '../../lib/records.ts';
import { BadRecord } from '../../lib/state.ts';

const host = (dev?: string): HostState => ({ links: [], routes4: dev ? [{ dst: 'default', dev }] : [], routes6: [] } as HostState);

interface B { bridge: string; netdev: string | null }
const bridges = new Map<string, B>([['eth0', { bridge: 'eth0', netdev: 'eth0' }], ['xenbr1', { bridge: 'xenbr1', netdev: 'eth1' }], ['dmz', { bridge: 'dmz', netdev: null }]]);
const asked = (key?: string, netdev?: string): RecordChoice<B> => ({
  key, netdev, netdevOf: (r) => r.netdev ?? 'none', devicesOf: (_k, r) => [r.bridge, ...(r.netdev !== null ? [r.netdev] : [])],
});

test('pickRecord: the one named, else over the netdev named, else over the default route, else the only one', () => {
  assert.equal(pickRecord(bridges, asked('xenbr1'), host('eth0'))?.bridge, 'xenbr1');
  assert.equal(pickRecord(bridges, asked(undefined, 'eth1'), host())?.bridge, 'xenbr1');
  assert.equal(pickRecord(bridges, asked(undefined, 'none'), host())?.bridge, 'dmz');
  assert.equal(pickRecord(bridges, asked(), host('xenbr1'))?.bridge, 'xenbr1', 'the default route through the bridge');
  assert.equal(pickRecord(bridges, asked(), host('eth0'))?.bridge, 'eth0');
  assert.equal(pickRecord(bridges, asked(), host()), undefined, 'several and none by default: none');
  assert.equal(pickRecord(new Map([['dmz', bridges.get('dmz') as B]]), asked(), host())?.bridge, 'dmz', 'the only one');
  const routes = new Map([['eth0', { netdev: 'eth0' }], ['eth1', { netdev: 'eth1' }]]);
  assert.equal(pickRecord(routes, byNetdev('eth1'), host('eth0'))?.netdev, 'eth1');
  assert.equal(pickRecord(routes, byNetdev(undefined), host('eth0'))?.netdev, 'eth0');
  assert.equal(pickRecord(routes, byNetdev('eth9'), host('eth0')), undefined);
});

test('pickForStop: a record asked for (or the only one) that cannot be trusted is an error, not "nothing to do"', () => {
  const bad = [new BadRecord('/run/x/network-route.eth1.json', 'eth1', 'it is empty')];
  const untrusted = (b: BadRecord) => new Error(`untrusted ${b.key}`);
  assert.throws(() => pickForStop(new Map(), bad, byNetdev('eth1'), host(), untrusted), /untrusted eth1/);
  assert.throws(() => pickForStop(new Map(), bad, byNetdev(undefined), host(), untrusted), /untrusted eth1/);
  assert.equal(pickForStop(new Map([['eth0', { netdev: 'eth0' }]]), bad, byNetdev(undefined), host(), untrusted)?.netdev, 'eth0');
  assert.equal(pickForStop(new Map(), bad, byNetdev('eth0'), host(), untrusted), undefined);
});
