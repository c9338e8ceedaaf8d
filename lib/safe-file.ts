/**
 * Files and directories the hooks create as root in shared places (/run/xen-nethooks,
 * /var/run/xen-hotplug, /var/log/xen): with fixed modes whatever the caller's umask (libxl and
 * udev may run us under umask 000), and never through a symbolic link someone planted there (a
 * root process that follows one truncates or overwrites whatever file it points at).
 *
 * Everything opens with O_NOFOLLOW and checks what it opened with fstat (not stat, then open: the
 * path could change in between); a new file is made under a random name with O_CREAT|O_EXCL
 * (which never follows a link) and renamed into place, so that no one can plant its name first.
 */
import { chmodSync, closeSync, constants, fchmodSync, fstatSync, lstatSync, mkdirSync, openSync, readSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

const { O_APPEND, O_CREAT, O_EXCL, O_NOFOLLOW, O_RDONLY, O_WRONLY } = constants;

/**
 * `n` random bytes from the kernel, as hex. Not node:crypto's randomBytes: loading node:crypto
 * (some 35 of Node's internal modules) cost every hook ~3 ms of CPU at start-up, for one name.
 */
function randomHex(n: number): string {
  const b = Buffer.alloc(n);
  const fd = openSync('/dev/urandom', O_RDONLY);
  try {
    for (let off = 0; off < n; ) off += readSync(fd, b, off, n - off, null);
  } finally {
    closeSync(fd);
  }
  return b.toString('hex');
}

/** A path we will not use as it is; the message names the path, what is wrong and the fix. */
export class UnsafePath extends Error {}

function errno(e: unknown): string | undefined {
  return e instanceof Error && 'code' in e && typeof e.code === 'string' ? e.code : undefined;
}

function owner(): number {
  return process.geteuid ? process.geteuid() : 0;
}

/**
 * `path` as a directory with `mode` (0755 or 0700), created with its missing parents (each with
 * `mode`) when absent. Refused: a symbolic link, something that is not a directory, a directory
 * owned by another user (who could swap what is in it), or one others may write to.
 */
export function ensureDir(path: string, mode: number): void {
  let st;
  try {
    st = lstatSync(path);
  } catch (e) {
    if (errno(e) !== 'ENOENT') throw e;
    const parent = dirname(path);
    if (parent !== path) {
      try {
        lstatSync(parent);
      } catch (pe) {
        if (errno(pe) !== 'ENOENT') throw pe;
        ensureDir(parent, mode);
      }
    }
    try {
      mkdirSync(path, { mode });
      // mkdir's mode passes through the umask: set it exactly.
      chmodSync(path, mode);
    } catch (me) {
      if (errno(me) !== 'EEXIST') throw me; // made by a hook running at the same time: check it below
    }
    st = lstatSync(path);
  }
  if (st.isSymbolicLink()) {
    throw new UnsafePath(`refusing directory ${path}: it is a symbolic link (not followed, as root); remove it (rm ${path}) and run again`);
  }
  if (!st.isDirectory()) throw new UnsafePath(`refusing directory ${path}: it is not a directory; move it away and run again`);
  if (st.uid !== owner()) {
    throw new UnsafePath(`refusing directory ${path}: it belongs to uid ${st.uid}, not to uid ${owner()} (root); remove it (rm -r ${path}) and run again`);
  }
  if (st.mode & 0o022) {
    throw new UnsafePath(`refusing directory ${path}: others may write to it (mode ${(st.mode & 0o7777).toString(8)}); chmod go-w ${path} and run again`);
  }
}

/** Opens an existing or new file for appending, never through a symbolic link; a new one gets `mode` exactly. */
export function openAppend(path: string, mode: number): number {
  let fd: number | undefined;
  let made = false;
  try {
    // A lock file comes and goes (its holder removes it on release): retry if it went between the two opens.
    for (let i = 0; fd === undefined; i++) {
      try {
        fd = openSync(path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_NOFOLLOW, mode);
        made = true;
      } catch (e) {
        if (errno(e) !== 'EEXIST') throw e;
        try {
          fd = openSync(path, O_WRONLY | O_APPEND | O_NOFOLLOW);
        } catch (e2) {
          if (errno(e2) !== 'ENOENT' || i >= 100) throw e2;
        }
      }
    }
  } catch (e) {
    if (errno(e) === 'ELOOP' || errno(e) === 'EEXIST') {
      throw new UnsafePath(`refusing ${path}: it is a symbolic link (not followed, as root); remove it (rm ${path}) and run again`);
    }
    throw e;
  }
  const st = fstatSync(fd);
  if (!st.isFile()) {
    closeSync(fd);
    throw new UnsafePath(`refusing ${path}: it is not a regular file; move it away and run again`);
  }
  // A file just made has mode & ~umask: set it exactly. One that was there keeps its own.
  if (made) fchmodSync(fd, mode);
  return fd;
}

/** The whole of a file, never through a symbolic link; undefined when there is none. */
export function readNoFollow(path: string): string | undefined {
  let fd: number;
  try {
    fd = openSync(path, O_RDONLY | O_NOFOLLOW);
  } catch (e) {
    if (errno(e) === 'ENOENT') return undefined;
    if (errno(e) === 'ELOOP') throw new UnsafePath(`${path} is a symbolic link (not followed, as root)`);
    throw e;
  }
  try {
    if (!fstatSync(fd).isFile()) throw new UnsafePath(`${path} is not a regular file`);
    const chunks: Buffer[] = [];
    const buf = Buffer.alloc(65536);
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      chunks.push(Buffer.from(buf.subarray(0, n)));
    }
    return Buffer.concat(chunks).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/**
 * `data` as the file `path` with `mode`, atomically: written to a new file of a random name
 * beside it (O_CREAT|O_EXCL|O_NOFOLLOW), then renamed over `path` (rename replaces a link
 * planted at `path` itself, never what it points at). A crash leaves the old file or the new one.
 */
export function writeAtomic(path: string, data: string, mode: number): void {
  const tmp = `${path}.${randomHex(6)}.tmp`;
  const fd = openSync(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode);
  try {
    fchmodSync(fd, mode);
    const b = Buffer.from(data, 'utf8');
    let off = 0;
    while (off < b.length) off += writeSync(fd, b, off, b.length - off);
  } catch (e) {
    closeSync(fd);
    unlinkSync(tmp);
    throw e;
  }
  closeSync(fd);
  try {
    renameSync(tmp, path);
  } catch (e) {
    unlinkSync(tmp);
    throw e;
  }
}
