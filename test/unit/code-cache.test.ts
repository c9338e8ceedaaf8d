// The loader in front of every dist/<hook> (build/code-cache-loader.cjs), run on a small bundle:
// the V8 code cache is written by a successful call, used when it fits, rebuilt when stale,
// ignored when someone else could have written it, and never the cause of a failure.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { composeHook } from '../../build/code-cache.mjs';

const dir = mkdtempSync(join(tmpdir(), 'xnh-cc-'));
// A bundle as esbuild writes one (CommonJS, several lines, a template literal across lines, a
// line that starts with //), that says what it got and exits as a hook does.
const bundle = [
  '"use strict";',
  'const os = require("node:os");',
  'const text = `two',
  '//lines`;',
  'const code = /^[0-9]+$/.test(process.argv[2] ?? "") ? Number(process.argv[2]) : 0;',
  'process.stdout.write(JSON.stringify({ text, file: __filename, hasModule: typeof module.exports, os: typeof os.hostname }) + "\\n");',
  'process.exit(code);',
].join('\n');

async function hook(name: string): Promise<{ path: string; hash: string }> {
  const { text, hash } = await composeHook(bundle);
  const path = join(dir, name);
  writeFileSync(path, text, { mode: 0o755 });
  return { path, hash };
}

function call(path: string, cache: string, ...args: string[]) {
  const r = spawnSync(process.execPath, [path, ...args], { env: { ...process.env, XEN_NETHOOKS_CODE_CACHE: cache }, encoding: 'utf8' });
  return { status: r.status, out: r.stdout ? (JSON.parse(r.stdout) as Record<string, string>) : undefined, stderr: r.stderr };
}

const cacheFiles = (cache: string) => {
  try {
    return readdirSync(cache);
  } catch {
    return [];
  }
};

test('the bundle runs as the CommonJS module it was built as, its text intact', async () => {
  const { path } = await hook('h1');
  const r = call(path, 'off');
  assert.equal(r.status, 0);
  assert.deepEqual(r.out, { text: 'two\n//lines', file: path, hasModule: 'object', os: 'function' });
});

test('a successful call writes the cache (named for bundle and Node), atomically; later calls keep it', async () => {
  const { path, hash } = await hook('h2');
  const cache = join(dir, 'cache2');
  assert.equal(call(path, cache, '--help').status, 0);
  assert.deepEqual(cacheFiles(cache), [], '--help writes none');
  assert.equal(call(path, cache, '3').status, 3);
  assert.deepEqual(cacheFiles(cache), [], 'a failed call writes none');
  assert.equal(call(path, cache).status, 0);
  const name = `h2-${hash}-${process.version}-${process.arch}.v8`;
  assert.deepEqual(cacheFiles(cache), [name], 'one file, no temp file left');
  assert.equal(statSync(cache).mode & 0o777, 0o755);
  const first = statSync(join(cache, name));
  assert.ok(first.size > 0);
  assert.equal(call(path, cache).status, 0);
  assert.equal(statSync(join(cache, name)).mtimeMs, first.mtimeMs, 'accepted, so not rewritten');
});

test('a stale or damaged cache is rejected by V8 and replaced; the call runs all the same', async () => {
  const { path, hash } = await hook('h3');
  const cache = join(dir, 'cache3');
  mkdirSync(cache, { mode: 0o755 });
  const file = join(cache, `h3-${hash}-${process.version}-${process.arch}.v8`);
  writeFileSync(file, 'not a code cache', { mode: 0o644 });
  const r = call(path, cache);
  assert.equal(r.status, 0);
  assert.equal(r.out?.text, 'two\n//lines');
  assert.notEqual(readFileSync(file, 'utf8'), 'not a code cache');
});

test('a cache anyone else could have written is not read, and its directory not written to', async () => {
  const { path, hash } = await hook('h4');
  const cache = join(dir, 'cache4');
  mkdirSync(cache);
  chmodSync(cache, 0o777);
  const file = join(cache, `h4-${hash}-${process.version}-${process.arch}.v8`);
  writeFileSync(file, 'planted');
  assert.equal(call(path, cache).status, 0);
  assert.equal(readFileSync(file, 'utf8'), 'planted', 'left alone: the directory is not ours alone');
});

test('a cache that cannot be made (the path is a file) costs nothing but the compile', async () => {
  const { path } = await hook('h5');
  const notDir = join(dir, 'a-file');
  writeFileSync(notDir, '');
  const r = call(path, join(notDir, 'cache'));
  assert.equal(r.status, 0);
  assert.equal(r.stderr, '');
});

test('XEN_NETHOOKS_CODE_CACHE_REPORT=1 says on stderr what became of the cache: absent, used, rejected, off', async () => {
  const { path, hash } = await hook('h6');
  const cache = join(dir, 'cache6');
  const report = (setting: string) => {
    const r = spawnSync(process.execPath, [path], {
      env: { ...process.env, XEN_NETHOOKS_CODE_CACHE: setting, XEN_NETHOOKS_CODE_CACHE_REPORT: '1' },
      encoding: 'utf8',
    });
    assert.equal(r.status, 0);
    return r.stderr;
  };
  const file = join(cache, `h6-${hash}-${process.version}-${process.arch}.v8`);
  assert.equal(report(cache), `h6: code cache absent (${file})\n`);
  assert.equal(report(cache), `h6: code cache used (${file})\n`);
  writeFileSync(file, 'not a code cache');
  assert.equal(report(cache), `h6: code cache rejected (${file})\n`);
  assert.equal(report('off'), 'h6: code cache off\n');
  assert.equal(call(path, cache).stderr, '', 'silent without it');
});
