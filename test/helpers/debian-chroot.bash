# A minimal Debian 12 (bookworm) with xen-utils-common, nodejs, iproute2 and logrotate, for testing the
# package in a dpkg database that is not the test machine's own.
#
# debian_chroot_tarball   prints the path of the cached tarball, made with debootstrap
#                         (network: the Debian archive) if it is missing
# debian_chroot_unpack D  unpacks it into the empty directory D
#
# The tarball lives in <repo>/.cache/ (gitignored): from nothing it takes about a minute
# (debootstrap --variant=minbase), from the cache a few seconds. The xen-utils-common .deb that
# debootstrap installed is kept in it as /root/debs/xen-utils-common.deb: the tests compare
# against its contents and rebuild it as a stand-in newer version.
#
# Environment: DEBIAN_MIRROR (http://deb.debian.org/debian)

# Bump when the recipe below changes, so that an old cache is not used.
DEBIAN_CHROOT_RECIPE=2
DEBIAN_CHROOT_SUITE=bookworm
DEBIAN_CHROOT_PACKAGES=xen-utils-common,nodejs,iproute2,logrotate

debian_chroot_tarball() {
  local repo cache tarball tmp
  repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  cache=$repo/.cache
  tarball=$cache/debian-$DEBIAN_CHROOT_SUITE-xen-nodejs-r$DEBIAN_CHROOT_RECIPE.tar.zst
  if [[ -s $tarball ]]; then
    echo "$tarball"
    return 0
  fi
  _debian_chroot_tools || return 1
  mkdir -p "$cache"
  tmp=$(mktemp -d "$cache/debootstrap.XXXXXX")
  echo "# debootstrap $DEBIAN_CHROOT_SUITE (minbase + $DEBIAN_CHROOT_PACKAGES) into $tmp" >&2
  if ! debootstrap --variant=minbase --include="$DEBIAN_CHROOT_PACKAGES" \
    "$DEBIAN_CHROOT_SUITE" "$tmp/root" "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" >"$tmp/log" 2>&1; then
    echo "debootstrap failed (is the Debian archive reachable? DEBIAN_MIRROR=${DEBIAN_MIRROR:-unset}); its log:" >&2
    tail -20 "$tmp/log" >&2
    _debian_chroot_rm "$tmp"
    return 1
  fi
  # Services never start in here: invoke-rc.d asks policy-rc.d, and 101 means "not allowed".
  printf '#!/bin/sh\nexit 101\n' >"$tmp/root/usr/sbin/policy-rc.d"
  chmod 755 "$tmp/root/usr/sbin/policy-rc.d"
  mkdir -p "$tmp/root/root/debs"
  mv "$tmp/root"/var/cache/apt/archives/xen-utils-common_*.deb "$tmp/root/root/debs/xen-utils-common.deb" || {
    _debian_chroot_rm "$tmp"
    return 1
  }
  # Smaller is faster to unpack: no downloaded .debs or package lists (nothing is installed from
  # the network in there later), and no documentation or translations except xen-utils-common's
  # own files (the tests run dpkg -V on it).
  rm -rf "$tmp/root"/var/cache/apt/archives/*.deb "$tmp/root"/var/lib/apt/lists/* "$tmp/root"/var/cache/apt/*.bin
  chroot "$tmp/root" dpkg -L xen-utils-common >"$tmp/keep" || {
    _debian_chroot_rm "$tmp"
    return 1
  }
  (cd "$tmp/root" && find usr/share/doc usr/share/man usr/share/locale usr/share/info \( -type f -o -type l \) -printf '/%p\n' 2>/dev/null) |
    grep -vxFf "$tmp/keep" | sed 's|^/||' | (cd "$tmp/root" && xargs -r -d '\n' rm -f)
  tar -C "$tmp/root" -cf - . | zstd -q -T0 -o "$tmp/root.tar.zst" || {
    _debian_chroot_rm "$tmp"
    return 1
  }
  mv "$tmp/root.tar.zst" "$tarball"
  # Tarballs of older recipes are of no further use.
  find "$cache" -maxdepth 1 -name "debian-$DEBIAN_CHROOT_SUITE-xen-nodejs-r*.tar.zst" ! -path "$tarball" -delete
  _debian_chroot_rm "$tmp"
  echo "$tarball"
}

debian_chroot_unpack() {
  local tarball
  tarball=$(debian_chroot_tarball) || return 1
  tar -C "$1" --zstd -xf "$tarball"
}

# debootstrap and zstd, from apt as test/run.sh gets the other packages.
_debian_chroot_tools() {
  local missing=() p
  for p in debootstrap zstd; do
    command -v "$p" >/dev/null || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  echo "# apt-get install ${missing[*]}" >&2
  { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y \
    --no-install-recommends "${missing[@]}"; } </dev/null >&2 ||
    { echo "cannot install ${missing[*]}: apt-get install ${missing[*]}" >&2; return 1; }
}

# A chroot tree may still have something mounted if a run was killed: never rm -rf through a
# mount point.
_debian_chroot_rm() {
  local m
  while read -r m; do umount -l "$m" 2>/dev/null; done < <(awk -v d="$1/" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r)
  rm -rf --one-file-system "$1"
}
