import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  absolutePath,
  backendPath,
  escapeValue,
  frontendPath,
  frontendPathOf,
  isValidPath,
  parseBackendPath,
  parseLsFlat,
  parseVifName,
  sanitiseValue,
  tapBackendPath,
  unsanitiseBytes,
  unsanitiseValue,
  writeCommand,
  XenstorePathError,
} from '../../lib/xenstore.ts';

describe('paths', () => {
  it('resolves relative paths under dom0, as xenstored does for a dom0 caller', () => {
    assert.equal(absolutePath('backend/vif/1/0'), '/local/domain/0/backend/vif/1/0');
    assert.equal(absolutePath('/local/domain/3/device/vif/0'), '/local/domain/3/device/vif/0');
    assert.equal(absolutePath('/'), '/');
  });

  it('refuses what xenstored would refuse', () => {
    for (const bad of ['', 'a b', '/a/', '/a//b', 'backend/vif/1/0/', '/a\nb', '/é', '@releaseDomain', 'a;rm']) {
      assert.equal(isValidPath(bad), false, bad);
      assert.throws(() => absolutePath(bad), XenstorePathError, bad);
    }
    for (const ok of ['/', '/a', 'a', '/local/domain/0/backend/vif/1/0/hotplug-status', '/a_b-c@d/e']) {
      assert.equal(isValidPath(ok), true, ok);
    }
  });

  it('reads domid and devid from a backend path, relative or absolute', () => {
    assert.deepEqual(parseBackendPath('backend/vif/12/3'), { backendDomid: 0, domid: 12, devid: 3 });
    assert.deepEqual(parseBackendPath('/local/domain/0/backend/vif/1/0'), { backendDomid: 0, domid: 1, devid: 0 });
    // A driver domain's backend (netback outside dom0).
    assert.deepEqual(parseBackendPath('/local/domain/7/backend/vif/2/1'), { backendDomid: 7, domid: 2, devid: 1 });
  });

  it('names the problem with a path that is not a vif backend', () => {
    for (const bad of ['backend/vbd/1/51712', 'backend/vif/1', 'backend/vif/1/0/mac', '/local/domain/0/backend/vif/x/0', 'backend/vif/1/0/']) {
      assert.throws(() => parseBackendPath(bad), (e: Error) => e instanceof XenstorePathError && e.message.includes(JSON.stringify(bad)), bad);
    }
  });

  it('derives both ends', () => {
    assert.equal(backendPath({ domid: 4, devid: 1 }), '/local/domain/0/backend/vif/4/1');
    assert.equal(backendPath({ domid: 4, devid: 1, backendDomid: 9 }), '/local/domain/9/backend/vif/4/1');
    assert.equal(frontendPath({ domid: 4, devid: 1 }), '/local/domain/4/device/vif/1');
  });

  it('takes the frontend from the backend\'s frontend key, else from the backend path', () => {
    const be = 'backend/vif/5/2';
    assert.equal(frontendPathOf(be), '/local/domain/5/device/vif/2');
    assert.equal(frontendPathOf(be, new Map([['frontend', '/local/domain/5/device/vif/2']])), '/local/domain/5/device/vif/2');
    // libxl's key wins (it is what netfront uses) …
    assert.equal(frontendPathOf(be, new Map([['frontend', '/local/domain/6/device/vif/0']])), '/local/domain/6/device/vif/0');
    // … unless it is unusable.
    for (const junk of ['', 'relative/path', '/bad path', '/a/']) {
      assert.equal(frontendPathOf(be, new Map([['frontend', junk]])), '/local/domain/5/device/vif/2', junk);
    }
  });

  it('parses libxl device names and applies the tap rule', () => {
    assert.deepEqual(parseVifName('vif3.0'), { domid: 3, devid: 0, emulated: false });
    assert.deepEqual(parseVifName('vif12.1-emu'), { domid: 12, devid: 1, emulated: true });
    for (const other of ['vif3', 'vif3.0.1', 'eth0', 'vif3.0-emux', 'xvif3.0', 'web-frontend']) assert.equal(parseVifName(other), undefined, other);
    assert.equal(tapBackendPath('vif3.0-emu'), '/local/domain/0/backend/vif/3/0');
    assert.equal(tapBackendPath('vif12.10-emu'), '/local/domain/0/backend/vif/12/10');
    assert.throws(() => tapBackendPath('vif3.0'), /emulated NIC/);
    assert.throws(() => tapBackendPath('web-emu'), /emulated NIC/);
  });
});

describe('value quoting (xenstore_client.c sanitise/unsanitise)', () => {
  it('prints values as the clients do', () => {
    assert.equal(sanitiseValue('10.0.0.2 10.0.0.3/24'), '10.0.0.2 10.0.0.3/24');
    assert.equal(sanitiseValue('a\nb\tc\rd\\e'), 'a\\nb\\tc\\rd\\\\e');
    assert.equal(sanitiseValue('say "hi"'), 'say "hi"');
    assert.equal(sanitiseValue(Buffer.from([0, 1, 7, 8, 0x1b, 0x7f, 0x80, 0xff])), '\\000\\001\\007\\x08\\x1b\\x7f\\x80\\xff');
    assert.equal(sanitiseValue('é'), '\\xc3\\xa9');
  });

  it('unquotes as xenstore-write does', () => {
    assert.equal(unsanitiseValue('a\\nb\\tc\\rd\\\\e'), 'a\nb\tc\rd\\e');
    assert.equal(unsanitiseValue('c:\\x\\\\y'), 'c:x\\y'); // \x without hex digits is "x" (seen with the real client)
    assert.deepEqual([...unsanitiseBytes('\\001\\177\\x41')], [1, 0x7f, 0x41]); // as the real client wrote it
    assert.deepEqual([...unsanitiseBytes('\\1234')], [0o123, 0x34]); // at most three octal digits
    assert.deepEqual([...unsanitiseBytes('\\x4142')], [0x41, 0x34, 0x32]); // at most two hex digits
    assert.deepEqual([...unsanitiseBytes('\\q')], [0x71]); // any other escape is the character
    assert.deepEqual([...unsanitiseBytes('a\\')], [0x61, 0]);
    assert.equal(unsanitiseValue('\\xc3\\xa9'), 'é');
  });

  it('escapes any string so that xenstore-write stores exactly it', () => {
    const samples = [
      '',
      'plain',
      '-1',
      'with spaces  and "quotes" = "x"',
      'multi\nline\r\nvalue\t',
      'back\\slash\\\\ and \\n literal',
      '\\x41 \\101',
      'ünïcødé ✓ 🚀',
      '\u0000\u0001\u001f\u007f',
    ];
    let seed = 7;
    const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let n = 0; n < 300; n++) {
      let s = '';
      const len = Math.floor(rnd() * 20);
      for (let i = 0; i < len; i++) s += String.fromCharCode(rnd() < 0.8 ? Math.floor(rnd() * 128) : 0xa0 + Math.floor(rnd() * 0x500));
      samples.push(s);
    }
    for (const s of samples) {
      const arg = escapeValue(s);
      assert.equal(unsanitiseValue(arg), s, JSON.stringify(s));
      // What the clients print for it comes back the same way.
      assert.equal(unsanitiseValue(sanitiseValue(s)), s, JSON.stringify(s));
    }
  });
});

describe('parseLsFlat (xenstore-ls -f output)', () => {
  const dir = '/local/domain/0/backend/vif/1/0';

  it('maps keys relative to the directory, nested ones with a slash', () => {
    const out = [
      `${dir}/frontend = "/local/domain/1/device/vif/0"`,
      `${dir}/mac = "00:16:3e:00:00:01"`,
      `${dir}/ip = "10.0.0.2 10.0.0.3"`,
      `${dir}/hotplug-status = ""`,
      `${dir}/sub = ""`,
      `${dir}/sub/key = "v"`,
      '',
    ].join('\n');
    assert.deepEqual(
      parseLsFlat(out, dir),
      new Map([
        ['frontend', '/local/domain/1/device/vif/0'],
        ['mac', '00:16:3e:00:00:01'],
        ['ip', '10.0.0.2 10.0.0.3'],
        ['hotplug-status', ''],
        ['sub', ''],
        ['sub/key', 'v'],
      ]),
    );
  });

  it('keeps values holding quotes, " = " and escapes intact', () => {
    const out = `${dir}/msg = "say "hi" = "x""\n${dir}/nl = "a\\nb\\\\c"\n`;
    assert.deepEqual(parseLsFlat(out, dir), new Map([['msg', 'say "hi" = "x"'], ['nl', 'a\nb\\c']]));
  });

  it('skips nodes whose value could not be read, and handles the root', () => {
    assert.deepEqual(parseLsFlat(`${dir}/secret:\n${dir}/a = "1"\n`, dir), new Map([['a', '1']]));
    assert.deepEqual(parseLsFlat('/local = ""\n/local/domain = ""\n', '/'), new Map([['local', ''], ['local/domain', '']]));
    assert.deepEqual(parseLsFlat('', dir), new Map());
  });

  it('refuses output it does not understand rather than guessing', () => {
    assert.throws(() => parseLsFlat('garbage line\n', dir), /unexpected xenstore-ls line/);
    assert.throws(() => parseLsFlat('/elsewhere/a = "1"\n', dir), /outside/);
    // Without -f the client prints indented basenames: not this format.
    assert.throws(() => parseLsFlat(' mac = "x"\n', dir));
  });
});

describe('writeCommand', () => {
  it('is one xenstore-write with resolved paths and escaped values, options ended by --', () => {
    assert.deepEqual(
      writeCommand([
        ['backend/vif/1/0/hotplug-error', 'line 1\nline "2" \\'],
        ['/local/domain/1/device/vif/0/mtu', '-1'],
      ]).argv,
      ['xenstore-write', '--', '/local/domain/0/backend/vif/1/0/hotplug-error', 'line 1\\nline "2" \\\\', '/local/domain/1/device/vif/0/mtu', '-1'],
    );
    assert.deepEqual(writeCommand({ '/a': 'b' }).argv, ['xenstore-write', '--', '/a', 'b']);
    assert.deepEqual(writeCommand(new Map([['/a', '']])).argv, ['xenstore-write', '--', '/a', '']);
    assert.throws(() => writeCommand([]), /nothing to write/);
    assert.throws(() => writeCommand([['bad path', 'x']]), XenstorePathError);
  });
});
