#!/usr/bin/env bash
# Installs the built hooks (dist/<hook>) into Xen's script directory, keeping the originals.
# Run ./install.sh --help for the options.
set -euo pipefail

prog=install.sh
root=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
dist=$root/dist
dir=/etc/xen/scripts
mode=install
dry=0
# Any of our hooks contains this string (the names of its XEN_NETHOOKS_* variables); Xen's own
# scripts never do. It tells our earlier install from an original that must be kept.
marker=XEN_NETHOOKS_

usage() {
  cat <<EOF
Usage: ./install.sh [--dir DIR] [--dry-run] [--uninstall] [--help]

Installs every hook built in dist/ (network-bridge, ...) into DIR, by default
/etc/xen/scripts, where Xen runs them by name. Builds dist/ first if it is missing or older than
the sources (running 'npm ci' first if node_modules/ is missing).

Before replacing an existing script NAME it keeps it as NAME.xen-orig; a NAME.xen-orig that
already exists is never overwritten, so re-running is safe and the first original is kept.
Installing the same build again changes nothing.

  --dir DIR     install into DIR instead of /etc/xen/scripts
  --uninstall   put every NAME.xen-orig back as NAME (byte for byte, same mode) and remove our
                hooks that replaced nothing
  --dry-run     print what would be done and change nothing
  --help        this text

Environment:
  DESTDIR       prefix for DIR (staged installs, packaging, tests): files go to \$DESTDIR\$DIR

The hooks start with '#!/usr/bin/env node' and need Node.js >= 18 (Debian 12: apt-get install nodejs).
EOF
}

say() { printf '%s\n' "$*"; }
die() { printf '%s: error: %s\n' "$prog" "$*" >&2; exit 1; }
# run CMD...: do it, or with --dry-run only say it.
run() {
  if ((dry)); then say "would run: $*"; else "$@"; fi
}

while (($#)); do
  case $1 in
    --dir) (($# >= 2)) || die "--dir needs a directory"; dir=$2; shift 2 ;;
    --dir=*) dir=${1#--dir=}; shift ;;
    --uninstall) mode=uninstall; shift ;;
    --dry-run) dry=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
[[ -n $dir ]] || die "--dir needs a directory"
target=${DESTDIR:-}$dir

is_ours() { [[ -f $1 ]] && grep -qF "$marker" "$1" 2>/dev/null; }

check_node() {
  local v major
  command -v node >/dev/null 2>&1 ||
    die "Node.js >= 18 is required (the hooks run with '#!/usr/bin/env node'), but 'node' is not on PATH; on Debian 12: apt-get install nodejs"
  v=$(node --version 2>/dev/null) || die "'node --version' failed; Node.js >= 18 is required"
  major=${v#v}
  major=${major%%.*}
  [[ $major =~ ^[0-9]+$ ]] || die "cannot tell the Node.js version from 'node --version': '$v'; Node.js >= 18 is required"
  ((major >= 18)) ||
    die "Node.js >= 18 is required, but 'node --version' says $v ($(command -v node)); on Debian 12: apt-get install nodejs (18.x), or a newer Node.js first on PATH"
}

# The hooks in dist/: executable regular files (not dist/package.json, not source maps).
dist_hooks() {
  local f
  for f in "$dist"/*; do
    [[ -f $f && -x $f ]] || continue
    case ${f##*/} in package.json | *.map | *.json) continue ;; esac
    printf '%s\n' "${f##*/}"
  done
}

# Why dist/ must be (re)built, or nothing if it is up to date.
stale_reason() {
  local hooks h src name newer
  [[ -d $dist ]] || { echo "dist/ is missing"; return; }
  hooks=$(dist_hooks)
  [[ -n $hooks ]] || { echo "dist/ holds no hooks"; return; }
  for src in "$root"/hooks/*.ts; do
    [[ -f $src ]] || continue
    name=$(basename "$src" .ts)
    [[ -x $dist/$name ]] || { echo "dist/$name is missing"; return; }
  done
  local sources=()
  for src in hooks lib build package.json package-lock.json tsconfig.json; do
    [[ -e $root/$src ]] && sources+=("$root/$src")
  done
  ((${#sources[@]})) || return 0
  for h in $hooks; do
    newer=$(find "${sources[@]}" -type f -newer "$dist/$h" -print -quit 2>/dev/null)
    if [[ -n $newer ]]; then echo "${newer#"$root"/} is newer than dist/$h"; return; fi
  done
}

build() {
  local why
  why=$(stale_reason)
  [[ -n $why ]] || return 0
  [[ -f $root/package.json ]] || die "$why, and there is no package.json in $root to build it from"
  command -v npm >/dev/null 2>&1 || die "$why, and npm is not on PATH to build it"
  say "building: $why"
  if [[ ! -d $root/node_modules ]]; then
    run npm --prefix "$root" ci --no-audit --no-fund
  fi
  run npm --prefix "$root" run --silent build
}

do_install() {
  local h src dst orig hooks
  check_node
  build
  hooks=$(dist_hooks)
  if [[ -z $hooks ]]; then
    ((dry)) && { say "would install the hooks that the build writes to dist/"; return 0; }
    die "no hooks in $dist after building"
  fi
  if [[ ! -d $target ]]; then
    run mkdir -p "$target"
  fi
  for h in $hooks; do
    src=$dist/$h
    dst=$target/$h
    orig=$dst.xen-orig
    if [[ -e $dst || -L $dst ]] && ! is_ours "$dst"; then
      if [[ -e $orig || -L $orig ]]; then
        say "warning: $dst is not ours, but $orig already exists and is kept; $dst is replaced" >&2
      else
        say "keeping the original $dst as $orig"
        run cp -a "$dst" "$orig"
      fi
    fi
    if [[ -f $dst && ! -L $dst ]] && cmp -s "$src" "$dst"; then
      say "up to date: $dst"
      continue
    fi
    say "installing $dst"
    # Copy next to it, then rename: Xen may run the script at any moment, and must never see
    # half a file.
    run install -m 0755 "$src" "$dst.xen-nethooks.tmp"
    run mv -f "$dst.xen-nethooks.tmp" "$dst"
  done
  ((dry)) && say "dry run: nothing was changed"
  return 0
}

do_uninstall() {
  local f name did=0
  local -A restored=()
  if [[ ! -d $target ]]; then
    say "nothing to uninstall: $target does not exist"
    return 0
  fi
  # Originals first: NAME.xen-orig goes back to NAME, unless NAME is no longer ours.
  for f in "$target"/*.xen-orig; do
    [[ -e $f || -L $f ]] || continue
    name=${f%.xen-orig}
    if [[ (-e $name || -L $name) ]] && ! is_ours "$name"; then
      say "warning: $name is not ours (replaced since the install?): left alone, and $f kept" >&2
      continue
    fi
    say "restoring the original $name"
    run mv -f "$f" "$name"
    restored[$name]=1
    did=1
  done
  # Then our hooks that replaced nothing.
  for f in "$target"/*; do
    [[ -f $f && ! -L $f ]] || continue
    case $f in *.xen-orig) continue ;; esac
    [[ -z ${restored[$f]:-} ]] || continue
    if [[ $f == *.xen-nethooks.tmp ]] || is_ours "$f"; then
      say "removing $f (there was no original)"
      run rm -f "$f"
      did=1
    fi
  done
  ((did)) || say "nothing to uninstall in $target"
  ((dry)) && say "dry run: nothing was changed"
  return 0
}

if [[ $mode == install ]]; then do_install; else do_uninstall; fi
