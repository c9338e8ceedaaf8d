import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { decodeFlags, parseProcNetDev, sysfsLinks } from '../../lib/net/sysfs.ts';

const PROC_HEAD = 'Inter-|   Receive\n face |bytes    packets\n';

/** A fake /sys/class/net and /proc/self/net/dev; `devs`: name → attributes (+ bridge/master). */
function fakeHost(devs: Record<string, { flags: string; mtu: number; bridge?: boolean; master?: string; devtype?: string }>, procNames = Object.keys(devs)) {
  const root = mkdtempSync(join(tmpdir(), 'xnh-sysfs-'));
  const net = join(root, 'net');
  mkdirSync(net);
  let i = 1;
  for (const [name, d] of Object.entries(devs)) {
    const dir = join(net, name);
    mkdirSync(dir);
    writeFileSync(join(dir, 'ifindex'), `${i++}\n`);
    writeFileSync(join(dir, 'flags'), `${d.flags}\n`);
    writeFileSync(join(dir, 'mtu'), `${d.mtu}\n`);
    writeFileSync(join(dir, 'address'), 'fe:ff:ff:ff:ff:ff\n');
    writeFileSync(join(dir, 'uevent'), `INTERFACE=${name}\n${d.devtype ? `DEVTYPE=${d.devtype}\n` : ''}`);
    if (d.bridge) mkdirSync(join(dir, 'bridge'));
    if (d.master) symlinkSync(`../${d.master}`, join(dir, 'master'));
  }
  const procNetDev = join(root, 'dev');
  writeFileSync(procNetDev, PROC_HEAD + procNames.map((n) => `${n.padStart(6)}: 0 0 0\n`).join(''));
  return { net, procNetDev };
}

test('flags decode to the names ip prints', () => {
  assert.deepEqual(decodeFlags('0x1003'), ['UP', 'BROADCAST', 'MULTICAST']);
  assert.deepEqual(decodeFlags('0x1002'), ['BROADCAST', 'MULTICAST']);
  assert.deepEqual(decodeFlags('junk'), []);
});

test('/proc/net/dev names', () => {
  assert.deepEqual(parseProcNetDev(PROC_HEAD + '    lo: 1 2\n  vif1.0: 3 4\n'), ['lo', 'vif1.0']);
});

test('the named devices and every bridge, with master and kind', () => {
  const roots = fakeHost({
    lo: { flags: '0x9', mtu: 65536 },
    xenbr0: { flags: '0x1003', mtu: 1500, bridge: true },
    xenbr1: { flags: '0x1002', mtu: 9000, bridge: true },
    'vif1.0': { flags: '0x1003', mtu: 1500, master: 'xenbr0' },
    'vif2.0': { flags: '0x1002', mtu: 1500 },
    'eth0.10': { flags: '0x1003', mtu: 1500, devtype: 'vlan' },
  });
  const links = sysfsLinks(['vif1.0', 'eth0.10', 'nosuch'], roots)!;
  assert.deepEqual(links.map((l) => l.ifname), ['eth0.10', 'vif1.0', 'xenbr0', 'xenbr1']);
  const vif = links.find((l) => l.ifname === 'vif1.0')!;
  assert.equal(vif.master, 'xenbr0');
  assert.deepEqual(vif.flags, ['UP', 'BROADCAST', 'MULTICAST']);
  assert.equal(vif.linkinfo, undefined);
  assert.equal(links.find((l) => l.ifname === 'xenbr1')!.mtu, 9000);
  assert.equal(links.find((l) => l.ifname === 'xenbr1')!.linkinfo?.info_kind, 'bridge');
  assert.equal(links.find((l) => l.ifname === 'eth0.10')!.linkinfo?.info_kind, 'vlan');
});

test("sysfs of another namespace is not trusted", () => {
  // /sys mounted for the host while the hook runs in a namespace that has only lo and its vif.
  const roots = fakeHost({ lo: { flags: '0x9', mtu: 65536 }, eth0: { flags: '0x1003', mtu: 1500 } }, ['lo', 'vif1.0']);
  assert.equal(sysfsLinks(['vif1.0'], roots), undefined);
  assert.equal(sysfsLinks(['vif1.0'], { net: '/nonexistent', procNetDev: roots.procNetDev }), undefined);
});
