#!/usr/bin/env bash
# Tier 2 (a Debian kernel under qemu): everything the VM needs, installed once and cached.
#
#   bash test/vm/setup.sh        install/download what is missing, print what it did
#
# What it installs, and where:
#   - Debian package qemu-system-x86 (apt-get install --no-install-recommends, ~65 MB): the
#     only change to the host system. `apt-get update` runs once, only if something is missing.
#   - The Debian kernel linux-image-6.1.0-*-amd64 (the version linux-image-amd64 depends on, or
#     VM_KERNEL_PKG), by `apt-get download` + `dpkg-deb -x` into $VM_CACHE/kernel/ (~400 MB):
#     vmlinuz and /lib/modules/<ver>, never the host's /boot or /lib/modules.
#   - busybox-static, the same way, into $VM_CACHE/busybox/ (for the initramfs; the host's
#     busybox package is dynamically linked, and busybox-static would conflict with it).
#   - Debian 12's nodejs 18.x with libnode108 and the libraries it needs, the same way, into
#     <repo>/.cache/node/ (~90 MB, test/debian-node.sh fetch): the guests run under it.
# VM_CACHE defaults to <repo>/.cache/vm (.cache/ is ignored by git). Delete it to start over.
#
# Prints `VM_KERNEL=… VM_MODULES=… VM_KVER=… VM_BUSYBOX=… VM_NODE_ROOT=… VM_NODE_VERSION=…` lines
# on fd 3 if it is open (vm.sh).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cache=${VM_CACHE:-$root/.cache/vm}
mkdir -p "$cache"

say() { printf 'vm setup: %s\n' "$*" >&2; }
die() { printf 'vm setup: %s\n' "$*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || die "must run as root (apt-get)"
command -v apt-get >/dev/null || die "needs apt-get (Debian 12)"

apt_updated=false
apt_update() {
  if ! $apt_updated; then
    say "+ apt-get update"
    apt-get update -qq </dev/null || die "apt-get update failed"
    apt_updated=true
  fi
}

# --- qemu ---------------------------------------------------------------------------------------
if ! command -v qemu-system-x86_64 >/dev/null; then
  apt_update
  say "installing Debian package qemu-system-x86 (--no-install-recommends)"
  t0=$SECONDS
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-system-x86 </dev/null >"$cache/apt.log" 2>&1; then
    tail -n 20 "$cache/apt.log" >&2
    die "installing qemu-system-x86 failed; run: apt-get update && apt-get install -y --no-install-recommends qemu-system-x86"
  fi
  say "qemu-system-x86 installed in $((SECONDS - t0)) s"
fi

# --- a package extracted into the cache -----------------------------------------------------------
# fetch_extract PKG DIR: apt-get download PKG and dpkg-deb -x it into DIR (atomically: DIR.tmp first).
fetch_extract() {
  local pkg=$1 dir=$2 t0=$SECONDS tmp
  tmp=$(mktemp -d "$cache/.dl.XXXXXX")
  say "downloading $pkg (apt-get download) and extracting it into ${dir#"$root"/}"
  if ! (cd "$tmp" && apt-get download -qq -o APT::Sandbox::User=root "$pkg" </dev/null >&2); then
    apt_update
    (cd "$tmp" && apt-get download -qq -o APT::Sandbox::User=root "$pkg" </dev/null >&2) || { rm -rf "$tmp"; die "apt-get download $pkg failed"; }
  fi
  rm -rf "$dir.tmp"
  dpkg-deb -x "$tmp"/*.deb "$dir.tmp" || { rm -rf "$tmp" "$dir.tmp"; die "dpkg-deb -x of $pkg failed"; }
  rm -rf "$tmp" "$dir"
  mv "$dir.tmp" "$dir"
  say "$pkg ready in $((SECONDS - t0)) s"
}

# --- busybox-static -----------------------------------------------------------------------------
bb=$cache/busybox/bin/busybox
if [[ ! -x $bb ]]; then
  fetch_extract busybox-static "$cache/busybox"
  [[ -x $bb ]] || die "busybox-static has no bin/busybox"
fi

# --- the kernel ---------------------------------------------------------------------------------
kdir=$cache/kernel
if [[ ! -f $kdir/.ready ]]; then
  pkg=${VM_KERNEL_PKG:-}
  if [[ -z $pkg ]]; then
    # The kernel Debian 12 currently ships: what the linux-image-amd64 metapackage depends on.
    pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: *\(linux-image-6\.1\.0-[0-9]*-amd64\)$/\1/p' | head -n 1)
    if [[ -z $pkg ]]; then
      apt_update
      pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: *\(linux-image-6\.1\.0-[0-9]*-amd64\)$/\1/p' | head -n 1)
    fi
    [[ -n $pkg ]] || die "cannot find the Debian 12 kernel package (apt-cache depends linux-image-amd64); set VM_KERNEL_PKG=linux-image-6.1.0-N-amd64"
  fi
  fetch_extract "$pkg" "$kdir"
  kver=$(ls "$kdir/lib/modules" | head -n 1)
  [[ -n $kver && -f $kdir/boot/vmlinuz-$kver ]] || die "$pkg has no boot/vmlinuz-<ver> + lib/modules/<ver>"
  # The package's postinst would run depmod; do it here (busybox's depmod: no kmod needed).
  if [[ ! -f $kdir/lib/modules/$kver/modules.dep ]]; then
    "$bb" depmod -b "$kdir" "$kver" || die "depmod for $kver failed"
  fi
  echo "$pkg" >"$kdir/.ready"
fi
kver=$(ls "$kdir/lib/modules" | head -n 1)

# The bzImage decompresses itself (xz) for ~6 s under TCG; qemu boots the uncompressed ELF
# directly through its PVH entry point (Debian's kernels have CONFIG_PVH), so decompress it once.
kernel=$kdir/boot/vmlinuz-$kver
vmlinux=$kdir/boot/vmlinux-$kver
if [[ ! -s $vmlinux && ${VM_BZIMAGE:-} != 1 ]]; then
  off=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$kernel" 2>/dev/null | head -n 1 | cut -d: -f1)
  if [[ -n $off ]] && ! command -v xz >/dev/null; then
    # busybox's unxz lacks the x86 BCJ filter the kernel is packed with.
    apt_update
    say "installing Debian package xz-utils (to decompress the kernel once)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends xz-utils </dev/null >"$cache/apt.log" 2>&1 ||
      say "installing xz-utils failed: booting the compressed kernel (~6 s slower)"
  fi
  if [[ -n $off ]] && command -v xz >/dev/null; then
    # xz stops at the end of the stream; what follows it in the bzImage is not xz data.
    tail -c +$((off + 1)) "$kernel" | xz -dcq >"$vmlinux.tmp" 2>/dev/null || true
    if [[ $(head -c 4 "$vmlinux.tmp" | od -An -c | tr -d ' ') == '177ELF' ]]; then
      mv "$vmlinux.tmp" "$vmlinux"
      say "decompressed the kernel to ${vmlinux#"$root"/} (PVH boot, ~6 s faster)"
    fi
  fi
  rm -f "$vmlinux.tmp"
fi
[[ -s $vmlinux && ${VM_BZIMAGE:-} != 1 ]] && kernel=$vmlinux

# --- Debian 12's own nodejs (18.x): test/debian-node.sh fetches it (into .cache/node/) ---------------
node_vars=$(bash "$root/test/debian-node.sh" fetch 3>&1 1>&2) || die "test/debian-node.sh fetch failed"
eval "$node_vars" # DEBIAN_NODE_ROOT DEBIAN_NODE_VERSION

if { true >&3; } 2>/dev/null; then
  {
    echo "VM_NODE_ROOT=$DEBIAN_NODE_ROOT"
    echo "VM_NODE_VERSION=$DEBIAN_NODE_VERSION"
    echo "VM_KERNEL=$kernel"
    echo "VM_MODULES=$kdir/lib/modules/$kver"
    echo "VM_KVER=$kver"
    echo "VM_BUSYBOX=$bb"
  } >&3
fi
say "ready: qemu $(qemu-system-x86_64 --version | head -n 1 | awk '{print $4}'), kernel $kver ($(cat "$kdir/.ready")), busybox-static, nodejs $DEBIAN_NODE_VERSION"
