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

Where a Debian package owns NAME (dpkg -S; Debian's vif-bridge, vif-nat and vif-route belong to
xen-utils-common), NAME is moved to NAME.xen-orig with 'dpkg-divert --local --rename' instead,
so that an upgrade of that package installs its new NAME there and never prompts or overwrites
ours. If the Debian package xen-nethooks is installed, install.sh refuses: upgrade the package.
On Debian, the package is the better way: npm run package; apt install ./dist/xen-nethooks_*.deb

  --dir DIR     install into DIR instead of /etc/xen/scripts (then without the systemd units,
                which run the hooks from /etc/xen/scripts)
  --uninstall   put every NAME.xen-orig back as NAME (byte for byte, same mode; a diversion is
                removed with dpkg-divert --rename) and remove our hooks that replaced nothing
  --dry-run     print what would be done and change nothing
  --help        this text

Environment:
  DESTDIR       prefix for DIR (staged installs, packaging, tests): files go to \$DESTDIR\$DIR,
                and the dpkg database consulted is the one under \$DESTDIR (dpkg --root)

With the default DIR it also installs the systemd units that lay the guests' firewall guards
again after a firewall reload (packaging/xen-nethooks-repair*) into /etc/systemd/system, and
enables none: systemctl enable --now xen-nethooks-repair.service (and
xen-nethooks-repair-check.timer for the reloads systemd does not see).

The hooks start with '#!/usr/bin/env node' and need Node.js 18.19+ or 20.5+ (Debian 12: apt-get install nodejs).
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

# --- dpkg: the database of the system whose root is $DESTDIR (/ without it) ---------------------
dpkg_root=${DESTDIR:-/}
has_dpkg() {
  command -v dpkg-query >/dev/null 2>&1 && command -v dpkg-divert >/dev/null 2>&1 &&
    [[ -f $dpkg_root/var/lib/dpkg/status ]]
}
# dpkg_owner PATH: the packages (comma-separated) whose file PATH is, or nothing.
dpkg_owner() {
  dpkg-query --root="$dpkg_root" -S "$1" 2>/dev/null |
    awk -v p="$1" '!/^diversion by / && substr($0, length($0) - length(p) - 1) == ": " p { print substr($0, 1, length($0) - length(p) - 2) }'
}
# divert_owner PATH: the package that diverts PATH, LOCAL for an admin's (our) diversion, or nothing.
divert_owner() { dpkg-divert --root="$dpkg_root" --listpackage "$1" 2>/dev/null; }
divert_to() { dpkg-divert --root="$dpkg_root" --truename "$1" 2>/dev/null; }

# dpkg_check HOOK...: refuse before anything is changed where dpkg has a say; print the hooks
# whose file a package owns and that must be diverted first.
dpkg_check() {
  local h p div owner
  for h in "$@"; do
    p=$dir/$h
    div=$(divert_owner "$p")
    owner=$(dpkg_owner "$p")
    if [[ $div == xen-nethooks || ", $owner," == *", xen-nethooks,"* ]]; then
      die "$p belongs to the Debian package xen-nethooks: upgrade that package instead (npm run package; apt install ./dist/xen-nethooks_<version>_all.deb), or remove it first (apt remove xen-nethooks)"
    fi
    if [[ -n $div && $div != LOCAL ]]; then
      die "$p is diverted by the package $div (dpkg-divert --list $p); install.sh leaves it alone"
    fi
    if [[ $div == LOCAL ]]; then
      [[ $(divert_to "$p") == "$p.xen-orig" ]] ||
        die "$p has a local diversion to $(divert_to "$p"), not to $p.xen-orig: not made by install.sh; remove it first (dpkg-divert --local --rename --remove $p)"
      continue
    fi
    [[ -n $owner ]] || continue
    if [[ -e $target/$h.xen-orig || -L $target/$h.xen-orig ]]; then
      die "$p belongs to the package $owner and $p.xen-orig exists without a diversion (an older install.sh overwrote it): run './install.sh --uninstall' first, then install again"
    fi
    printf '%s %s\n' "$h" "$owner"
  done
}

check_node() {
  # The floor is execa's (package.json engines): 18.19 and later 18.x, or 20.5 and later. Debian 12
  # ships 18.19.
  local v major minor need="Node.js 18.19+ (or 20.5+)"
  command -v node >/dev/null 2>&1 ||
    die "$need is required (the hooks run with '#!/usr/bin/env node'), but 'node' is not on PATH; on Debian 12: apt-get install nodejs"
  v=$(node --version 2>/dev/null) || die "'node --version' failed; $need is required"
  major=${v#v}
  minor=${major#*.}
  major=${major%%.*}
  minor=${minor%%.*}
  [[ $major =~ ^[0-9]+$ && $minor =~ ^[0-9]+$ ]] || die "cannot tell the Node.js version from 'node --version': '$v'; $need is required"
  if ! (((major == 18 && minor >= 19) || (major == 20 && minor >= 5) || major > 20)); then
    die "$need is required, but 'node --version' says $v ($(command -v node)); on Debian 12: apt-get install nodejs (18.19), or a newer Node.js first on PATH"
  fi
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

# The repair units (issue 14): packaging/'s, for the default script directory only (their
# ExecStart names /etc/xen/scripts), where the tree has them and dist/ has the vif hooks.
units=(xen-nethooks-repair.service xen-nethooks-repair-check.service xen-nethooks-repair-check.timer)
unit_dir=${DESTDIR:-}/etc/systemd/system
with_units() {
  [[ $dir == /etc/xen/scripts && -f $root/packaging/${units[0]} && -x $dist/vif-bridge ]]
}
systemd_here() {
  [[ -z ${DESTDIR:-} && -d /run/systemd/system ]] && command -v systemctl >/dev/null
}

install_units() {
  local u changed=0
  with_units || return 0
  [[ -d $unit_dir ]] || run mkdir -p "$unit_dir"
  for u in "${units[@]}"; do
    if [[ -f $unit_dir/$u ]] && cmp -s "$root/packaging/$u" "$unit_dir/$u"; then
      say "up to date: $unit_dir/$u"
      continue
    fi
    say "installing $unit_dir/$u"
    run install -m 0644 "$root/packaging/$u" "$unit_dir/$u"
    changed=1
  done
  if ((changed)); then
    if systemd_here; then run systemctl daemon-reload; fi
    say "to re-lay guards after firewall reloads: systemctl enable --now xen-nethooks-repair.service xen-nethooks-repair-check.timer"
  fi
  return 0
}

uninstall_units() {
  local u did=0
  [[ $dir == /etc/xen/scripts ]] || return 0
  for u in "${units[@]}"; do
    # Only ours: each names xen-nethooks in its Description.
    if [[ -f $unit_dir/$u ]] && grep -qF xen-nethooks "$unit_dir/$u"; then
      if systemd_here; then run systemctl disable --now "$u" || :; fi
      say "removing $unit_dir/$u"
      run rm -f "$unit_dir/$u"
      did=1
    fi
  done
  if ((did)); then
    # The directories only where an install under DESTDIR made them (never a host's own).
    ((dry)) || rmdir --ignore-fail-on-non-empty "$unit_dir" "$(dirname "$unit_dir")" 2>/dev/null || :
    if systemd_here; then run systemctl daemon-reload; fi
  fi
  return 0
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
  local -A divert=()
  if has_dpkg; then
    local line
    line=$(dpkg_check $hooks) || exit 1
    while read -r h owner; do [[ -z $h ]] || divert[$h]=$owner; done <<<"$line"
  fi
  if [[ ! -d $target ]]; then
    run mkdir -p "$target"
  fi
  for h in $hooks; do
    src=$dist/$h
    dst=$target/$h
    orig=$dst.xen-orig
    if [[ -n ${divert[$h]:-} ]]; then
      say "diverting $dir/$h (a file of the package ${divert[$h]}) to $dir/$h.xen-orig: its upgrades go there"
      run dpkg-divert --root="$dpkg_root" --local --rename --divert "$dir/$h.xen-orig" --add "$dir/$h"
    fi
    # (A diverted file is already NAME.xen-orig; under --dry-run it only would be.)
    if [[ -z ${divert[$h]:-} ]] && [[ -e $dst || -L $dst ]] && ! is_ours "$dst"; then
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
  install_units
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
    if has_dpkg && [[ $(divert_owner "${name#"${DESTDIR:-}"}") == LOCAL ]]; then
      say "restoring the original $name (removing the diversion)"
      run rm -f "$name"
      run dpkg-divert --root="$dpkg_root" --local --rename --remove "${name#"${DESTDIR:-}"}"
    else
      say "restoring the original $name"
      run mv -f "$f" "$name"
    fi
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
  uninstall_units
  ((dry)) && say "dry run: nothing was changed"
  return 0
}

if [[ $mode == install ]]; then do_install; else do_uninstall; fi
