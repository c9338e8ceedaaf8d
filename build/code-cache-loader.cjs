// The start of every dist/<hook> (build/build.mjs puts it there; it is not run from here).
// The hook's bundle follows this code in the same file, each of its lines behind `//` in the body
// of an empty function, so that Node's own compile of the file skips it as a comment. This code takes it out, compiles it with
// vm.Script and a V8 code cache, and runs it as the CommonJS module it was built as.
//
// Why: compiling the bundle is much of what a hook costs before it does anything (bench/ item 5),
// and a hook runs for every guest interface; V8's code cache replaces the compile with a
// deserialization. Node 22 has module.enableCompileCache; the floor here is Node 18.
//
// The cache is a file per bundle and Node version in XEN_NETHOOKS_CODE_CACHE (a directory; "off"
// disables it), else /var/cache/xen-nethooks. It is used only if it is ours (owned by our
// effective uid, writable by no one else, in a directory that is the same), and V8 itself rejects
// one made by another V8 or for other source; a missing, stale or rejected cache just means a
// compile, and the first call that then changes the host writes a new one (temp file, O_EXCL,
// rename: readers see all of it or none). Nothing here can fail a hook.
// XEN_NETHOOKS_CODE_CACHE_REPORT=1: the hook says on stderr what became of the cache (used,
// absent, rejected, off), for bench/ and whoever wonders whether it works.
'use strict';
/* global BUNDLE_HASH, xenNethooksBundle */
const fs = require('node:fs');
const vm = require('node:vm');
const path = require('node:path');

// Built at run time so that this code does not itself hold the marker it looks for.
const MARK = ['', '//# xen-nethooks bundle', '//'].join('\n');
// The commented-out bundle is the body of function xenNethooksBundle, after this code: its text
// comes from V8's copy of this file's source, not from reading the file a second time.
const self = Function.prototype.toString.call(xenNethooksBundle);
const at = self.indexOf(MARK);
const source = self.slice(at + MARK.length, self.lastIndexOf('\n}')).split('\n//').join('\n');
const wrapped = '(function (exports, require, module, __filename, __dirname) {' + source + '\n})';

const setting = process.env.XEN_NETHOOKS_CODE_CACHE;
const dir = setting === 'off' ? undefined : setting || '/var/cache/xen-nethooks';
const cacheFile = dir && path.join(dir, `${path.basename(__filename)}-${BUNDLE_HASH}-${process.version}-${process.arch}.v8`);
const euid = process.geteuid ? process.geteuid() : -1;

/** A file or directory only we can have written. */
function trusted(st) {
  return st.uid === euid && (st.mode & 0o022) === 0;
}

function readCache() {
  if (!cacheFile) return undefined;
  try {
    if (!trusted(fs.lstatSync(dir))) return undefined;
    const fd = fs.openSync(cacheFile, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    try {
      const st = fs.fstatSync(fd);
      return st.isFile() && trusted(st) ? fs.readFileSync(fd) : undefined;
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return undefined;
  }
}

function writeCache(script) {
  let tmp;
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
    if (!trusted(fs.lstatSync(dir))) return;
    const data = script.createCachedData();
    tmp = path.join(dir, `.${path.basename(cacheFile)}.${process.pid}.tmp`);
    const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o644);
    try {
      fs.writeSync(fd, data);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, cacheFile);
    tmp = undefined;
  } catch {
    // No cache this time: the next call compiles again and tries again.
  } finally {
    if (tmp) fs.rmSync(tmp, { force: true });
  }
}

const cachedData = readCache();
const script = new vm.Script(wrapped, { filename: __filename, cachedData });
if (process.env.XEN_NETHOOKS_CODE_CACHE_REPORT) {
  const state = !cacheFile ? 'off' : cachedData === undefined ? 'absent' : script.cachedDataRejected ? 'rejected' : 'used';
  fs.writeSync(2, `${path.basename(__filename)}: code cache ${state}${cacheFile ? ` (${cacheFile})` : ''}\n`);
}
if (cacheFile && (cachedData === undefined || script.cachedDataRejected)) {
  // Made at exit, so that it holds the functions this call compiled, not only the top level;
  // by a call that did the work (not --help or --dry-run, and succeeded), so that those are the
  // functions a hook runs.
  const args = process.argv.slice(2);
  if (!args.some((a) => a === '--help' || a === '-h' || a === '--dry-run')) {
    process.once('exit', (code) => {
      if (code === 0) writeCache(script);
    });
  }
}
script.runInThisContext()(exports, require, module, __filename, __dirname);
