#!/usr/bin/env bash
# Tier 3 (real Xen under qemu): everything the Xen VM needs, fetched once and cached. Xen itself is
# never installed on this host.
#
#   bash test/xen/setup.sh        fetch/unpack what is missing, say what it did
#
# What it does, and where:
#   - test/vm/setup.sh (tier 2's): installs qemu-system-x86 (apt-get --no-install-recommends) and
#     unpacks the Debian 6.1 kernel + modules and busybox-static into tier 2's cache (.cache/vm/),
#     which both tiers share.
#   - The Xen 4.17 packages, by `apt-get download` + `dpkg-deb -x` into $XEN_CACHE/root/ (never /):
#     xen-hypervisor-4.17-amd64, xen-utils-4.17, xen-utils-common, xenstore-utils, their libraries
#     (libxen*, libyajl2). dom0 gets them copied over its root at boot (test/xen/dom0-init.sh).
#   - $XEN_CACHE/xen.elf: /boot/xen-4.17-amd64.gz unzipped (qemu's multiboot loader takes an ELF).
#   - Whatever dom0 runs from this host's root and is missing here (apt-get install
#     --no-install-recommends; tier 1 needs most of them too): iproute2, iptables, nftables,
#     ebtables, tcpdump, dnsmasq-base, xenstore-utils (clients only), iputils-ping, procps,
#     util-linux, dash, sysvinit-utils (/etc/init.d/xen's helpers), diffutils.
# XEN_CACHE defaults to <repo>/.cache/xen (.cache/ is ignored by git). Delete it to start over.
#
# Prints XEN_* and VM_* variable lines on fd 3 if it is open (run.sh reads them).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cache=${XEN_CACHE:-$root/.cache/xen}
mkdir -p "$cache"

say() { printf 'xen setup: %s\n' "$*" >&2; }
die() { printf 'xen setup: %s\n' "$*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || die "must run as root (apt-get)"
command -v apt-get >/dev/null || die "needs apt-get (Debian 12)"

# --- qemu, the kernel, busybox-static: tier 2's setup -----------------------------------------------
vm_vars=$(bash "$root/test/vm/setup.sh" 3>&1 1>&2) || die "test/vm/setup.sh failed"
eval "$vm_vars" # VM_KERNEL VM_MODULES VM_KVER VM_BUSYBOX
[[ -n ${VM_MODULES:-} && -n ${VM_KVER:-} && -x ${VM_BUSYBOX:-} ]] || die "test/vm/setup.sh did not say where the kernel and busybox are"
kdir=${VM_MODULES%/lib/modules/*}
# Xen loads the uncompressed ELF kernel directly (no decompression in Xen or libxenguest under
# TCG); fall back to the bzImage.
kernel=$kdir/boot/vmlinux-$VM_KVER
[[ -s $kernel ]] || kernel=$kdir/boot/vmlinuz-$VM_KVER
[[ -s $kernel ]] || die "no kernel image in $kdir/boot"

# --- what dom0 runs from the host's root ---------------------------------------------------------------
# dom0's root is this host's / (read-only, over 9p): the hooks' tools and the tests' come from here.
# (xenstore-utils: the clients tier 1's test xenstored helpers use for scenario 6, on this host.)
host_pkgs=(iproute2 iptables nftables ebtables tcpdump dnsmasq-base xenstore-utils iputils-ping procps util-linux dash
  sysvinit-utils diffutils)
missing=()
for p in "${host_pkgs[@]}"; do
  [[ $(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null) == installed ]] || missing+=("$p")
done
if ((${#missing[@]})); then
  say "installing Debian packages dom0 uses from this host: ${missing[*]} (--no-install-recommends)"
  apt-get update -qq </dev/null || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >&2 ||
    die "installing ${missing[*]} failed; run: apt-get install -y --no-install-recommends ${missing[*]}"
fi
command -v node >/dev/null || die "node is missing (the hooks run with #!/usr/bin/env node; Debian 12: apt-get install nodejs)"

# --- the Xen packages -------------------------------------------------------------------------------
pkgs=(xen-hypervisor-4.17-amd64 xen-utils-4.17 xen-utils-common xenstore-utils
  libxenmisc4.17 libxencall1 libxenevtchn1 libxenforeignmemory1 libxengnttab1 libxenstore4
  libxentoollog1 libxenhypfs1 libxendevicemodel1 libxentoolcore1 libyajl2)
stamp="${pkgs[*]}"
if [[ ! -f $cache/root/.ready || $(cat "$cache/root/.ready") != "$stamp" ]]; then
  t0=$SECONDS
  tmp=$(mktemp -d "$cache/.dl.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  say "downloading ${pkgs[*]} (apt-get download)"
  if ! (cd "$tmp" && apt-get download -qq -o APT::Sandbox::User=root "${pkgs[@]}" </dev/null >&2); then
    say "+ apt-get update"
    apt-get update -qq </dev/null || die "apt-get update failed"
    (cd "$tmp" && apt-get download -qq -o APT::Sandbox::User=root "${pkgs[@]}" </dev/null >&2) ||
      die "apt-get download ${pkgs[*]} failed"
  fi
  rm -rf "$cache/root.tmp"
  mkdir -p "$cache/root.tmp"
  for deb in "$tmp"/*.deb; do
    dpkg-deb -x "$deb" "$cache/root.tmp" || die "dpkg-deb -x $deb failed"
  done
  (cd "$tmp" && ls ./*.deb | sed 's|^\./||') >"$cache/root.tmp/.debs"
  rm -rf "$cache/root.tmp/usr/share/doc" "$cache/root.tmp/usr/share/man"
  echo "$stamp" >"$cache/root.tmp/.ready"
  rm -rf "$cache/root" "$cache/xen.elf"
  mv "$cache/root.tmp" "$cache/root"
  say "Xen packages unpacked into ${cache#"$root"/}/root in $((SECONDS - t0)) s"
fi
xen_gz=$(ls "$cache"/root/boot/xen-4.17*-amd64.gz 2>/dev/null | head -n 1)
[[ -n $xen_gz ]] || die "no boot/xen-4.17-amd64.gz in ${cache#"$root"/}/root"
if [[ ! -s $cache/xen.elf ]]; then
  gzip -dc "$xen_gz" >"$cache/xen.elf.tmp" && mv "$cache/xen.elf.tmp" "$cache/xen.elf" || die "unzipping $xen_gz failed"
fi
[[ -x $cache/root/usr/lib/xen-4.17/bin/xl && -x $cache/root/usr/lib/xen-4.17/bin/oxenstored ]] ||
  die "the unpacked xen-utils-4.17 has no xl/oxenstored"

if { true >&3; } 2>/dev/null; then
  {
    echo "$vm_vars"
    printf 'XEN_ELF=%q\nXEN_ROOT=%q\nXEN_DOM0_KERNEL=%q\n' "$cache/xen.elf" "$cache/root" "$kernel"
  } >&3
fi
say "ready: Xen $(sed -n 's/^xen-hypervisor-4.17-amd64_\([^_]*\)_.*/\1/p' "$cache/root/.debs"), kernel $VM_KVER"
