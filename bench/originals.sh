#!/usr/bin/env bash
# Xen's original vif scripts, from Debian's xen-utils-common, for the benchmarks (bench/run.sh)
# and the differential suite (test/bats/differential.bats). Never installed on the host: the
# package has udev rules and init scripts. Instead:
#
#   apt-get download xen-utils-common; dpkg-deb -x  ->  .cache/xen-orig/pkg/   (pristine)
#
# and two runnable copies of /etc/xen/scripts made from it, both git-ignored (.cache/):
#
#   .cache/xen-orig/orig/      as shipped. The only change: three hard-coded host paths become
#                              overridable, with the shipped path as the default, so that a run
#                              touches nothing of the host's:
#                                xen-hotplug-common.sh  exec 2>>/var/log/xen/xen-hotplug.log
#                                                       -> ${XEN_ORIG_LOG:-/var/log/xen/xen-hotplug.log}
#                                locking.sh             LOCK_BASEDIR=/var/run/xen-hotplug
#                                                       -> ${XEN_ORIG_LOCK_DIR:-/var/run/xen-hotplug}
#                                xen-hotplug-common.sh  call_hooks /etc/xen/scripts/<dev>-<hook>.d
#                                                       -> ${XEN_ORIG_SCRIPT_DIR:-/etc/xen/scripts}/…
#                              (a parameter expansion each: no extra process, no change in cost)
#   .cache/xen-orig/orig-fw/   the same, with the firewall step on: the one line `return 0` that
#                              Debian put first in vif-common.sh's handle_iptable (Debian bug
#                              #894013) removed. Made here, at bench/test time; never committed.
#
# The scripts find their helpers through `dirname $0`, so they run from there as they are:
#   XENBUS_PATH=backend/vif/1/0 vif=vif1.0 .cache/xen-orig/orig/vif-bridge online type_if=vif
# xenstore-read/-write honour XENSTORED_PATH (the test xenstored).
#
#   bash bench/originals.sh          fetch + extract + patch if needed; prints the .cache/xen-orig
#                                    directory on stdout. Idempotent, safe to run concurrently.
#   bash bench/originals.sh --check  exit 0 if ready, 1 if not (fetches nothing)
#
# Exit 0: ready. Exit 3: the package cannot be had here (no apt-get / no network / not root);
# the reason is on stderr, so a caller can skip with it.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${XEN_ORIG_CACHE:-$root/.cache/xen-orig}
pkg=xen-utils-common
# Bump when the patches below change: a stale copy is then made again.
recipe=1

unavailable() {
  echo "bench/originals.sh: the original scripts are not available: $*" >&2
  exit 3
}

ready() {
  [[ -f $cache/READY && $(sed -n 's/^recipe=//p' "$cache/READY") == "$recipe" &&
    -x $cache/orig/vif-bridge && -x $cache/orig-fw/vif-bridge ]]
}

if [[ ${1:-} == --check ]]; then
  ready
  exit
fi

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock -x 9
if ready; then
  echo "$cache"
  exit 0
fi

command -v apt-get >/dev/null || unavailable "apt-get is not available (a Debian host is needed)"
command -v dpkg-deb >/dev/null || unavailable "dpkg-deb is not available"

work=$(mktemp -d "$cache/.work.XXXXXX")
trap 'rm -rf "$work"' EXIT
# apt drops privileges to _apt for the download; let it write here (else it warns and runs as root).
chmod 755 "$work"
chown _apt "$work" 2>/dev/null || :

download() {
  (cd "$work" && apt-get download "$pkg" </dev/null >"$work/apt.out" 2>&1)
}
if ! download; then
  # A fresh machine has stale package lists: refresh once and try again.
  echo "bench/originals.sh: apt-get download $pkg failed; apt-get update and retry" >&2
  if [[ $(id -u) -ne 0 ]]; then unavailable "apt-get download failed and apt-get update needs root: $(tail -n 3 "$work/apt.out")"; fi
  apt-get update </dev/null >"$work/update.out" 2>&1 || unavailable "apt-get update failed: $(tail -n 3 "$work/update.out")"
  download || unavailable "apt-get download $pkg failed: $(tail -n 3 "$work/apt.out")"
fi
deb=$(ls "$work"/"$pkg"_*.deb 2>/dev/null | head -n 1)
[[ -n $deb ]] || unavailable "apt-get download left no .deb: $(tail -n 3 "$work/apt.out")"
version=$(dpkg-deb -f "$deb" Version)

mkdir "$work/pkg"
dpkg-deb -x "$deb" "$work/pkg"
src=$work/pkg/etc/xen/scripts
for f in vif-bridge vif-common.sh xen-hotplug-common.sh xen-network-common.sh xen-script-common.sh locking.sh logging.sh hotplugpath.sh; do
  [[ -f $src/$f ]] || unavailable "$pkg $version has no /etc/xen/scripts/$f"
done

# patch FILE SED-EXPR GREP-AFTER: apply, and insist the result has GREP-AFTER (fixed string).
patch_one() {
  local file=$1 expr=$2 want=$3
  sed -i -e "$expr" "$file"
  grep -qF -- "$want" "$file" || { echo "bench/originals.sh: patching $(basename "$file") failed (no '$want'): has $pkg changed?" >&2; exit 1; }
}

make_copy() {
  local dst=$1
  cp -a "$src" "$dst"
  patch_one "$dst/xen-hotplug-common.sh" \
    's|^exec 2>>/var/log/xen/xen-hotplug.log$|exec 2>>"${XEN_ORIG_LOG:-/var/log/xen/xen-hotplug.log}"|' \
    'exec 2>>"${XEN_ORIG_LOG:-/var/log/xen/xen-hotplug.log}"'
  patch_one "$dst/xen-hotplug-common.sh" \
    's|for f in /etc/xen/scripts/\${1}-\${2}\.d/\*\.hook|for f in ${XEN_ORIG_SCRIPT_DIR:-/etc/xen/scripts}/${1}-${2}.d/*.hook|' \
    'for f in ${XEN_ORIG_SCRIPT_DIR:-/etc/xen/scripts}/${1}-${2}.d/*.hook'
  patch_one "$dst/locking.sh" \
    's|^LOCK_BASEDIR=/var/run/xen-hotplug$|LOCK_BASEDIR=${XEN_ORIG_LOCK_DIR:-/var/run/xen-hotplug}|' \
    'LOCK_BASEDIR=${XEN_ORIG_LOCK_DIR:-/var/run/xen-hotplug}'
  # Nothing else of the host's may be written: no other absolute path under /var or /etc in the
  # files vif-bridge sources, besides the ones just made overridable and dhcpd's (vif-nat only).
  local left
  left=$(grep -nE '>>? */(var|etc)/|/var/(log|run)/xen' "$dst"/{vif-bridge,vif-common.sh,xen-hotplug-common.sh,xen-network-common.sh,locking.sh,logging.sh} |
    grep -vF -e ':-/var/log/xen/xen-hotplug.log}' -e ':-/var/run/xen-hotplug}' || :)
  [[ -z $left ]] || { echo "bench/originals.sh: unexpected host paths in $pkg $version:" >&2; echo "$left" >&2; exit 1; }
}

make_copy "$work/orig"
make_copy "$work/orig-fw"
# The firewall step on: drop the `return 0` right after Debian's comment, and only that line.
fw=$work/orig-fw/vif-common.sh
before=$(wc -l <"$fw")
sed -i -e '/This function is disabled in Debian packaging/{n;/^[[:space:]]*return 0[[:space:]]*$/d;}' "$fw"
after=$(wc -l <"$fw")
expected=$(sed -n '/^handle_iptable()/,/^}/p' "$src/vif-common.sh" | awk '!done && /^[[:space:]]*return 0[[:space:]]*$/ { done = 1; next } { print }')
actual=$(sed -n '/^handle_iptable()/,/^}/p' "$fw")
if ((after != before - 1)) || [[ $expected != "$actual" ]] || ! grep -q 'iptables_w -L -n' <<<"$actual"; then
  echo "bench/originals.sh: could not turn the firewall step on in vif-common.sh (expected to remove exactly the one 'return 0' in handle_iptable)" >&2
  exit 1
fi

rm -rf "$cache/pkg" "$cache/orig" "$cache/orig-fw"
mv "$work/pkg" "$cache/pkg"
mv "$work/orig" "$cache/orig"
mv "$work/orig-fw" "$cache/orig-fw"
cp "$deb" "$cache/"
printf 'package=%s\nversion=%s\nrecipe=%s\n' "$pkg" "$version" "$recipe" >"$cache/READY"
echo "bench/originals.sh: $pkg $version ready in $cache (orig: as shipped, orig-fw: firewall step on)" >&2
echo "$cache"
